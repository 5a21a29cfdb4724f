/*
 * Resource limits of the servers against hostile clients: what a client
 * that never reads its replies costs, idle sockets that never finish the
 * handshake, and a server out of descriptors.  Real kona-memnode and
 * kona-rackctl processes, measured from /proc.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kona-link.h"
#include "kona-rack.h"
#include "kona-sock.h"
#include "mn-testutil.h"

#define TIMEOUT_MS 5000
#define MiB (1ull << 20)

static MnProc *start(const char *bin, const char *dir, const char *name,
                     const char *const *extra)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    MnProc *p;

    g_ptr_array_add(a, g_strdup_printf("--listen=unix:%s/%s.sock", dir, name));
    for (const char *const *e = extra; e && *e; e++) {
        g_ptr_array_add(a, g_strdup(*e));
    }
    g_ptr_array_add(a, NULL);
    p = mn_proc_start(bin, (const char *const *)a->pdata);
    g_ptr_array_free(a, TRUE);
    return p;
}

/* ---- a client that never reads ---- */

/*
 * Send pipelined 1-byte READs and empty PINGs on every link's socket and
 * never read a reply, until no socket takes more for a while (the server
 * stopped reading all of them).  Returns the requests sent.
 */
static uint64_t flood_tiny(KonaLink **links, const uint64_t *slabs,
                           unsigned n)
{
    typedef struct Pending {
        uint8_t buf[64 * (KONA_HDR_SIZE + sizeof(KonaReadReq))];
        size_t off, len;
    } Pending;
    g_autofree Pending *pd = g_new0(Pending, n);
    uint64_t sent = 0, id = 1000;
    int64_t idle_since = kona_now_ms();

    for (unsigned i = 0; i < n; i++) {
        kona_set_nonblock(kona_link_fd(links[i]), true);
    }
    while (kona_now_ms() - idle_since < 500) {
        bool progress = false;

        for (unsigned i = 0; i < n; i++) {
            Pending *q = &pd[i];
            ssize_t r;

            if (q->off == q->len) {
                /* a new batch: READ, PING, READ, ... */
                q->off = q->len = 0;
                for (unsigned k = 0; k < 64; k++, id++) {
                    uint8_t *p = q->buf + q->len;

                    if (k & 1) {
                        kona_hdr_encode(p, KONA_OP_PING, id, 0, 0);
                        q->len += KONA_HDR_SIZE;
                        continue;
                    }
                    kona_hdr_encode(p, KONA_OP_READ, id, 0,
                                    sizeof(KonaReadReq));
                    kona_st64(p + 24, slabs[i]);
                    kona_st64(p + 32, id % 4096);
                    kona_st32(p + 40, 1);
                    kona_st32(p + 44, 0);
                    q->len += KONA_HDR_SIZE + sizeof(KonaReadReq);
                }
                sent += 64;
            }
            r = send(kona_link_fd(links[i]), q->buf + q->off, q->len - q->off,
                     MSG_NOSIGNAL);
            if (r > 0) {
                q->off += (size_t)r;
                progress = true;
            } else {
                g_assert_cmpint(errno, ==, EAGAIN);
            }
        }
        if (progress) {
            idle_since = kona_now_ms();
        } else {
            g_usleep(20 * 1000);
        }
        g_assert_cmpuint(sent, <, 100000000);
    }
    return sent;
}

/*
 * The attack of the review: N clients pipelining tiny READs and PINGs and
 * never reading.  The memnode's memory grows by at most about
 * --max-inflight per client plus a small constant, however many requests
 * the clients send.
 */
static void test_tiny_read_flood(void)
{
    const char *env_n = g_getenv("KONA_FLOOD_CLIENTS");
    const char *env_inflight = g_getenv("KONA_FLOOD_INFLIGHT");
    unsigned n = env_n ? (unsigned)atoi(env_n) : 16;
    uint64_t inflight = MiB;
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *opt = NULL;
    g_autofree KonaLink **links = g_new0(KonaLink *, n);
    g_autofree uint64_t *slabs = g_new0(uint64_t, n);
    g_autoptr(GError) err = NULL;
    uint64_t rss0, rss1, sent, bound;
    MnProc *p;

    if (env_inflight) {
        g_assert_true(kona_parse_size(env_inflight, &inflight, NULL));
    }
    opt = g_strdup_printf("--max-inflight=%" G_GUINT64_FORMAT, inflight);
    p = start(mn_memnode_bin(), dir, "mn", (const char *const[]){ opt, NULL });
    for (unsigned i = 0; i < n; i++) {
        links[i] = mn_link_to(p->addrs[0]);
        g_assert_cmpint(kona_link_slab_alloc(links[i], 64 * 1024, &slabs[i],
                                             &err), ==, 0);
    }
    rss0 = mn_proc_rss_kib(p->pid);
    sent = flood_tiny(links, slabs, n);
    rss1 = mn_proc_rss_kib(p->pid);
    /* per client: the allowance, input buffer and queue arena; plus slack */
    bound = n * (inflight + 512 * 1024) / 1024 + 8 * 1024;
    g_test_message("%u clients, --max-inflight %" G_GUINT64_FORMAT " KiB: "
                   "%" G_GUINT64_FORMAT " requests sent; memnode RSS %"
                   G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT " KiB (+%"
                   G_GUINT64_FORMAT " KiB, bound %" G_GUINT64_FORMAT " KiB)",
                   n, inflight >> 10, sent, rss0, rss1, rss1 - rss0, bound);
    g_assert_cmpuint(sent, >, 1000);
    g_assert_cmpuint(rss1 - MIN(rss0, rss1), <, bound);
    for (unsigned i = 0; i < n; i++) {
        kona_link_close(links[i]);
    }
    g_assert_cmpint(mn_proc_stop(p), ==, 0);
    mn_proc_free(p);
    mn_rm_rf(dir);
}

/* ---- idle sockets ---- */

/*
 * Many more idle sockets than --max-clients, none of which ever says
 * HELLO: a real client still gets in (again and again), and the idle ones
 * do not count as clients.
 */
static void idle_lockout(const char *bin, bool rack)
{
    g_autofree char *dir = mn_tmpdir();
    g_autoptr(GError) err = NULL;
    MnProc *p = start(bin, dir, "srv",
                      (const char *const[]){ "--max-clients=4", NULL });
    int idle[40];

    for (unsigned i = 0; i < G_N_ELEMENTS(idle); i++) {
        idle[i] = kona_connect(p->addrs[0], TIMEOUT_MS, &err);
        g_assert_no_error(err);
    }
    for (int round = 0; round < 3; round++) {
        g_autoptr(KonaLink) l = mn_link_to(p->addrs[0]);

        g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
        if (rack) {
            g_autoptr(KonaRackStatus) st = NULL;
            g_assert_cmpint(kona_rack_status(l, &st, &err), ==, 0);
        }
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(idle); i++) {
        close(idle[i]);
    }
    g_assert_cmpint(mn_proc_stop(p), ==, 0);
    mn_proc_free(p);
    mn_rm_rf(dir);
}

static void test_idle_lockout_memnode(void)
{
    idle_lockout(mn_memnode_bin(), false);
}

static void test_idle_lockout_rackctl(void)
{
    idle_lockout(mn_rackctl_bin(), true);
}

/*
 * --max-clients counts clients past the handshake: the one too many is
 * told so in its HELLO reply; the controller's idle sockets meet the
 * same handshake deadline as the memnode's.
 */
static void test_max_clients(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autoptr(GError) err = NULL;
    MnProc *p = start(mn_rackctl_bin(), dir, "ctl",
                      (const char *const[]){ "--max-clients=2",
                                             "--handshake-timeout=1",
                                             NULL });
    g_autoptr(KonaLink) a = mn_link_to(p->addrs[0]);
    g_autoptr(KonaLink) b = mn_link_to(p->addrs[0]);
    int64_t t0;
    char c;
    int fd;

    g_assert_null(kona_link_connect(p->addrs[0], TIMEOUT_MS, &err));
    g_assert_error(err, KONA_ERROR, EMFILE);
    g_assert_nonnull(strstr(err->message, "2 clients connected"));
    g_clear_error(&err);
    g_assert_cmpint(kona_link_ping(a, &err), ==, 0);
    /* an idle socket is closed at the deadline */
    fd = kona_connect(p->addrs[0], TIMEOUT_MS, &err);
    g_assert_cmpint(fd, >=, 0);
    t0 = kona_now_ms();
    g_assert_cmpint(recv(fd, &c, 1, 0), ==, 0);
    g_assert_cmpint(kona_now_ms() - t0, >=, 900);
    g_assert_cmpint(kona_now_ms() - t0, <, 3000);
    close(fd);
    g_assert_cmpint(kona_link_ping(b, &err), ==, 0);
    kona_link_close(g_steal_pointer(&a));
    kona_link_close(g_steal_pointer(&b));
    g_assert_cmpint(mn_proc_stop(p), ==, 0);
    mn_proc_free(p);
    mn_rm_rf(dir);
}

/* ---- out of descriptors ---- */

/*
 * A memnode whose descriptor limit is used up by clients: the listener's
 * pending connections must not make it spin (accept4 failing with EMFILE
 * on a level-triggered listener), and once a client leaves, the pending
 * ones get in.
 */
static void test_emfile(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autoptr(GError) err = NULL;
    MnProc *p = start(mn_memnode_bin(), dir, "mn", NULL);
    struct rlimit rl;
    GPtrArray *links = g_ptr_array_new();
    /* long enough for a busy machine: only the last one times out */
    KonaLinkOptions o = {
        .connect_timeout_ms = 1500, .timeout_ms = 1500, .no_reconnect = true,
    };
    int pending[8];
    uint64_t cpu0, cpu1;
    KonaLink *l;

    rl.rlim_cur = rl.rlim_max = mn_proc_fds(p->pid) + 12;
    g_assert_cmpint(prlimit(p->pid, RLIMIT_NOFILE, &rl, NULL), ==, 0);
    /* fill the descriptor table with real (HELLO'd) clients */
    while ((l = kona_link_connect_opts(p->addrs[0], &o, &err))) {
        g_ptr_array_add(links, l);
        g_assert_cmpuint(links->len, <, 100);
    }
    /* timed out in the backlog, or dropped for a newer connection */
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_cmpuint(links->len, >=, 5);
    for (unsigned i = 0; i < G_N_ELEMENTS(pending); i++) {
        pending[i] = kona_connect(p->addrs[0], TIMEOUT_MS, &err);
        g_assert_no_error(err);
    }
    cpu0 = mn_proc_cpu_ms(p->pid);
    g_usleep(2 * G_USEC_PER_SEC);
    cpu1 = mn_proc_cpu_ms(p->pid);
    g_test_message("%u clients fill the descriptors; the memnode used %"
                   G_GUINT64_FORMAT " ms of CPU in 2 s with 8 connections "
                   "pending", links->len, cpu1 - cpu0);
    g_assert_cmpuint(cpu1 - cpu0, <, 300);
    /* the clients it has are served */
    l = g_ptr_array_index(links, 0);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    /* room again: a new client gets in */
    for (unsigned i = 0; i < G_N_ELEMENTS(pending); i++) {
        close(pending[i]);
    }
    for (guint i = 0; i < links->len; i++) {
        kona_link_close(g_ptr_array_index(links, i));
    }
    g_ptr_array_free(links, TRUE);
    o.connect_timeout_ms = o.timeout_ms = TIMEOUT_MS;
    l = kona_link_connect_opts(p->addrs[0], &o, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    kona_link_close(l);
    g_assert_cmpint(mn_proc_stop(p), ==, 0);
    mn_proc_free(p);
    mn_rm_rf(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/limits/tiny-read-flood", test_tiny_read_flood);
    g_test_add_func("/limits/idle-lockout/memnode", test_idle_lockout_memnode);
    g_test_add_func("/limits/idle-lockout/rackctl", test_idle_lockout_rackctl);
    g_test_add_func("/limits/max-clients", test_max_clients);
    g_test_add_func("/limits/emfile", test_emfile);
    return g_test_run();
}

/*
 * kona-faultproxy: a TCP/unix proxy that sits between kona-cxl (or any
 * kona-link client) and a memory node and injects network faults on
 * command, for tests of slow, broken and vanishing memory nodes.
 *
 *   kona-faultproxy --listen ADDR --target ADDR --control ADDR
 *
 * Every connection accepted on --listen is relayed to --target.  Commands,
 * one per line on a --control connection, each answered "ok" or "error:":
 *   delay MS        hold each relayed chunk MS milliseconds (both ways)
 *   blackhole on|off  swallow relayed data: the peer hears nothing
 *   cut             close every relayed connection now; acknowledged
 *                   once they are closed (an error after 5 s if not)
 *   refuse on|off   close new connections as soon as they are accepted
 *   partition on|off  a network partition: nothing gets through either
 *                   way, new connections are refused, and a client's
 *                   close is lost: the memnode's side stays half-open,
 *                   even once the partition heals, until a "cut"
 *   truncate N      relay N more bytes towards the client, then cut
 *   drop N          swallow the next N reply frames (whole frames)
 *   reorder on|off  swap each pair of reply frames that are in flight
 *                   together (a lone frame goes out after 200 ms)
 *   shared off|on   clear KONA_CAP_SHARED in the HELLO replies of new
 *                   connections: the client sees a memnode without the
 *                   shared-memory path (off: hide it; on: relay it)
 *   shm-fault short|unmappable|off
 *                   replace the descriptor of the next SLAB_MAP replies
 *                   with a memfd half the slab's size, or with one that
 *                   cannot be mapped (a pipe), until "shm-fault off"
 *   pass            clear every fault
 *   stats           "connections N bytes N cuts N fds N"
 *
 * Descriptors the memnode sends with SLAB_MAP replies (SCM_RIGHTS) are
 * relayed with their frame, so a proxied unix memnode still offers the
 * shared path; a proxy listening on TCP clears KONA_CAP_SHARED itself,
 * since no descriptor can cross TCP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kona-proto.h"
#include "kona-sock.h"
#include "kona-util.h"

#define die(...) kona_die("kona-faultproxy", __VA_ARGS__)
#define CHUNK (64 * 1024)
#define POLL_MS 50
#define HOLD_MS 200
#define HDR_SIZE KONA_HDR_SIZE  /* u32 len first */
#define MAX_FDS 16              /* per recvmsg */

typedef enum ShmFault {
    SHM_FAULT_OFF,
    SHM_FAULT_SHORT,
    SHM_FAULT_UNMAPPABLE,
} ShmFault;

/* The faults in force; read by relay threads under @lock. */
static struct {
    GMutex lock;
    unsigned delay_ms;
    bool blackhole;
    bool refuse;
    bool partition;
    int64_t truncate_left;      /* < 0: no truncation armed */
    unsigned drop_frames;
    bool reorder;
    bool shared_off;
    ShmFault shm_fault;
    uint64_t cut_generation;    /* bumped by "cut" */
    unsigned relaying;          /* connections being relayed */
    unsigned cut_closing;       /* of them, started before the last cut */
    GCond closed;               /* a connection ended */
    uint64_t connections, bytes, cuts, fds;
} faults = { .truncate_left = -1 };

/* How long "cut" waits for the connections it cut to close. */
#define CUT_WAIT_S 5

static bool listen_is_tcp;

static char *opt_listen, *opt_target, *opt_control;
static int opt_ready_fd = -1;

static GOptionEntry entries[] = {
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &opt_listen,
      "Accept clients at ADDR (unix:PATH or tcp:HOST:PORT)", "ADDR" },
    { "target", 't', 0, G_OPTION_ARG_STRING, &opt_target,
      "Relay them to the memory node at ADDR", "ADDR" },
    { "control", 'c', 0, G_OPTION_ARG_STRING, &opt_control,
      "Take fault commands at ADDR", "ADDR" },
    { "ready-fd", 0, 0, G_OPTION_ARG_INT, &opt_ready_fd,
      "Write 'READY listen-addr control-addr' to FD once listening", "FD" },
    { 0 }
};

typedef struct Relay {
    int from, to;
    bool towards_client;
    uint64_t generation;        /* cut_generation when it started */
    /* Towards the client the stream is cut into frames, for drop/reorder. */
    GByteArray *pending;        /* bytes of an incomplete frame */
    GByteArray *held;           /* a frame kept back by reorder */
    int held_fd;                /* and its descriptor, or -1 */
    int64_t held_since;
    GArray *fds;                /* descriptors received, for SLAB_MAP replies */
    bool shared_off;            /* hide KONA_CAP_SHARED on this connection */
} Relay;

static bool relay_cut(Relay *r)
{
    bool cut;

    g_mutex_lock(&faults.lock);
    cut = faults.cut_generation != r->generation;
    g_mutex_unlock(&faults.lock);
    return cut;
}

static bool relay_partitioned(void)
{
    bool on;

    g_mutex_lock(&faults.lock);
    on = faults.partition;
    g_mutex_unlock(&faults.lock);
    return on;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Decide what to do with @n bytes just read; returns bytes to forward,
 * sets *then_cut when a truncation ends here. */
static size_t apply_faults(Relay *r, size_t n, unsigned *delay,
                           bool *then_cut)
{
    g_mutex_lock(&faults.lock);
    *delay = faults.delay_ms;
    *then_cut = false;
    if (faults.blackhole || faults.partition) {
        n = 0;
    } else if (r->towards_client && faults.truncate_left >= 0) {
        if ((int64_t)n >= faults.truncate_left) {
            n = (size_t)faults.truncate_left;
            faults.truncate_left = -1;
            *then_cut = true;
        } else {
            faults.truncate_left -= (int64_t)n;
        }
    }
    faults.bytes += n;
    g_mutex_unlock(&faults.lock);
    return n;
}

/* Send the first bytes with @fd attached (SCM_RIGHTS), the rest plainly. */
static bool write_all_fd(int to, const uint8_t *p, size_t n, int fd)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;
    struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    ssize_t w;

    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    do {
        w = sendmsg(to, &m, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w <= 0) {
        return false;
    }
    return write_all(to, p + w, n - (size_t)w);
}

/*
 * Send @n bytes through the byte-level faults, with @fd (owned, closed
 * here; -1 for none) on the first of them; false: end the relay.
 */
static bool relay_send(Relay *r, const uint8_t *buf, size_t n, int fd)
{
    unsigned delay;
    bool then_cut, ok;
    size_t fwd = apply_faults(r, n, &delay, &then_cut);

    if (delay) {
        g_usleep(delay * 1000ull);
    }
    if (relay_cut(r)) {
        ok = false;
    } else if (fd >= 0 && fwd) {
        ok = write_all_fd(r->to, buf, fwd, fd);
    } else {
        ok = write_all(r->to, buf, fwd);
    }
    if (fd >= 0) {
        close(fd);
    }
    return ok && !then_cut;
}

/* The descriptor the client gets instead of a slab's, per shm-fault. */
static int fault_fd(ShmFault f, uint64_t slab_size)
{
    int p[2], fd;

    if (f == SHM_FAULT_UNMAPPABLE) {
        if (pipe2(p, O_CLOEXEC) < 0) {
            return -1;
        }
        close(p[1]);
        return p[0];
    }
    fd = memfd_create("kona-faultproxy-short", MFD_CLOEXEC);
    if (fd >= 0 && ftruncate(fd, (off_t)(slab_size / 2)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/*
 * Reply frames that concern the shared path: hide KONA_CAP_SHARED in a
 * HELLO reply, pair a SLAB_MAP reply with its descriptor (and replace it
 * per shm-fault).  Returns the descriptor to send with @frame, or -1.
 */
static int frame_shared(Relay *r, uint8_t *frame, size_t len)
{
    KonaHdr h;
    ShmFault f;
    int fd = -1;

    kona_hdr_decode(frame, &h);
    if (h.op == (KONA_OP_HELLO | KONA_OP_REPLY) && !h.status &&
        len == HDR_SIZE + sizeof(KonaHelloRep) && r->shared_off) {
        uint8_t *caps = frame + HDR_SIZE + 8;
        kona_st64(caps, kona_ld64(caps) & ~KONA_CAP_SHARED);
    }
    if (h.op != (KONA_OP_SLAB_MAP | KONA_OP_REPLY) || h.status ||
        len != HDR_SIZE + sizeof(KonaSlabMapRep)) {
        return -1;
    }
    if (r->fds->len) {
        fd = g_array_index(r->fds, int, 0);
        g_array_remove_index(r->fds, 0);
    }
    g_mutex_lock(&faults.lock);
    f = faults.shm_fault;
    faults.fds += fd >= 0;
    g_mutex_unlock(&faults.lock);
    if (f != SHM_FAULT_OFF) {
        if (fd >= 0) {
            close(fd);
        }
        fd = fault_fd(f, kona_ld64(frame + HDR_SIZE));
    }
    return fd;
}

/* One whole reply frame: drop it, hold it back, or send it. */
static bool relay_frame(Relay *r, uint8_t *frame, size_t len)
{
    bool drop, reorder;
    int fd = frame_shared(r, frame, len);

    g_mutex_lock(&faults.lock);
    drop = faults.drop_frames > 0;
    faults.drop_frames -= drop;
    reorder = faults.reorder;
    g_mutex_unlock(&faults.lock);
    if (drop) {
        if (fd >= 0) {
            close(fd);
        }
        return true;
    }
    if (reorder && !r->held->len) {
        g_byte_array_append(r->held, frame, len);
        r->held_fd = fd;
        r->held_since = g_get_monotonic_time();
        return true;
    }
    if (!relay_send(r, frame, len, fd)) {
        return false;
    }
    /* The frame that came second went first; now the held one. */
    if (r->held->len) {
        bool ok = relay_send(r, r->held->data, r->held->len, r->held_fd);

        r->held_fd = -1;
        g_byte_array_set_size(r->held, 0);
        return ok;
    }
    return true;
}

/* Cut the client-bound stream into frames as they complete. */
static bool relay_frames(Relay *r, const uint8_t *buf, size_t n)
{
    g_byte_array_append(r->pending, buf, n);
    while (r->pending->len >= HDR_SIZE) {
        uint8_t *p = r->pending->data;
        size_t len = HDR_SIZE + (p[0] | p[1] << 8 | p[2] << 16 |
                                 (uint32_t)p[3] << 24);

        if (r->pending->len < len) {
            break;
        }
        if (!relay_frame(r, p, len)) {
            return false;
        }
        g_byte_array_remove_range(r->pending, 0, len);
    }
    return true;
}

/* A held frame waits for a partner at most HOLD_MS. */
static bool relay_release_held(Relay *r)
{
    bool ok = true;

    if (r->held->len &&
        g_get_monotonic_time() - r->held_since >= HOLD_MS * 1000) {
        ok = relay_send(r, r->held->data, r->held->len, r->held_fd);
        r->held_fd = -1;
        g_byte_array_set_size(r->held, 0);
    }
    return ok;
}

/* recvmsg that keeps the descriptors that come along, in order. */
static ssize_t relay_recv(Relay *r, uint8_t *buf, size_t len)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } cm;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
    };
    ssize_t n = recvmsg(r->from, &m, MSG_CMSG_CLOEXEC);

    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; c;
         c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfd; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (r->towards_client) {
                    g_array_append_val(r->fds, fd);
                } else {
                    close(fd);      /* clients send none */
                }
            }
        }
    }
    return n;
}

static void *relay_thread(void *opaque)
{
    Relay *r = opaque;
    g_autofree uint8_t *buf = g_malloc(CHUNK);

    r->pending = g_byte_array_new();
    r->held = g_byte_array_new();
    r->held_fd = -1;
    r->fds = g_array_new(FALSE, FALSE, sizeof(int));
    for (;;) {
        struct pollfd pfd = { .fd = r->from, .events = POLLIN };
        ssize_t n;

        if (relay_cut(r) || !relay_release_held(r)) {
            break;
        }
        if (poll(&pfd, 1, POLL_MS) <= 0) {
            continue;
        }
        n = relay_recv(r, buf, CHUNK);
        if (n <= 0) {
            break;
        }
        if (!(r->towards_client ? relay_frames(r, buf, (size_t)n)
                                : relay_send(r, buf, (size_t)n, -1))) {
            break;
        }
    }
    for (guint i = 0; i < r->fds->len; i++) {
        close(g_array_index(r->fds, int, i));
    }
    g_array_free(r->fds, TRUE);
    if (r->held_fd >= 0) {
        close(r->held_fd);
    }
    g_byte_array_unref(r->pending);
    g_byte_array_unref(r->held);
    /*
     * A client's close during a partition is lost: the memnode keeps the
     * connection half-open after the partition heals, until a "cut".
     */
    if (!r->towards_client && relay_partitioned()) {
        while (!relay_cut(r)) {
            g_usleep(POLL_MS * 1000);
        }
    }
    /* Wake the twin: both directions end together. */
    shutdown(r->from, SHUT_RDWR);
    shutdown(r->to, SHUT_RDWR);
    return NULL;
}

/* Relay one client until either side closes or a fault cuts it. */
static void *connection_thread(void *opaque)
{
    int client = GPOINTER_TO_INT(opaque);
    g_autoptr(GError) err = NULL;
    int server = kona_connect(opt_target, 5000, &err);
    Relay up, down;
    pthread_t t;

    if (server < 0) {
        fprintf(stderr, "kona-faultproxy: %s\n", err->message);
        close(client);
        return NULL;
    }
    g_mutex_lock(&faults.lock);
    up = (Relay) { .from = client, .to = server,
                   .generation = faults.cut_generation,
                   .shared_off = faults.shared_off || listen_is_tcp };
    faults.relaying++;
    g_mutex_unlock(&faults.lock);
    down = up;
    down.from = server;
    down.to = client;
    down.towards_client = true;
    pthread_create(&t, NULL, relay_thread, &up);
    relay_thread(&down);
    pthread_join(t, NULL);
    close(client);
    close(server);
    /* Closed for good: a "cut" waiting for this connection may answer. */
    g_mutex_lock(&faults.lock);
    faults.relaying--;
    if (up.generation != faults.cut_generation) {
        faults.cut_closing--;
    }
    g_cond_broadcast(&faults.closed);
    g_mutex_unlock(&faults.lock);
    return NULL;
}

static const char *run_command(char *line)
{
    g_auto(GStrv) w = g_strsplit_set(g_strstrip(line), " \t", -1);
    unsigned n = g_strv_length(w);
    static char reply[128];

    if (n == 0 || !w[0][0]) {
        return "error: empty command";
    }
    g_mutex_lock(&faults.lock);
    if (g_str_equal(w[0], "delay") && n == 2) {
        faults.delay_ms = (unsigned)g_ascii_strtoull(w[1], NULL, 10);
    } else if (g_str_equal(w[0], "blackhole") && n == 2) {
        faults.blackhole = g_str_equal(w[1], "on");
    } else if (g_str_equal(w[0], "refuse") && n == 2) {
        faults.refuse = g_str_equal(w[1], "on");
    } else if (g_str_equal(w[0], "partition") && n == 2) {
        faults.partition = g_str_equal(w[1], "on");
    } else if (g_str_equal(w[0], "truncate") && n == 2) {
        faults.truncate_left = (int64_t)g_ascii_strtoull(w[1], NULL, 10);
    } else if (g_str_equal(w[0], "drop") && n == 2) {
        faults.drop_frames = (unsigned)g_ascii_strtoull(w[1], NULL, 10);
    } else if (g_str_equal(w[0], "reorder") && n == 2) {
        faults.reorder = g_str_equal(w[1], "on");
    } else if (g_str_equal(w[0], "shared") && n == 2 &&
               (g_str_equal(w[1], "on") || g_str_equal(w[1], "off"))) {
        faults.shared_off = g_str_equal(w[1], "off");
    } else if (g_str_equal(w[0], "shm-fault") && n == 2 &&
               (g_str_equal(w[1], "short") ||
                g_str_equal(w[1], "unmappable") ||
                g_str_equal(w[1], "off"))) {
        faults.shm_fault = g_str_equal(w[1], "short") ? SHM_FAULT_SHORT :
                           g_str_equal(w[1], "unmappable") ?
                           SHM_FAULT_UNMAPPABLE : SHM_FAULT_OFF;
    } else if (g_str_equal(w[0], "cut") && n == 1) {
        gint64 deadline = g_get_monotonic_time() + CUT_WAIT_S * G_TIME_SPAN_SECOND;

        /*
         * Done when answered: a client whose writes all go through its
         * mapping learns of the cut only from its socket's close.
         */
        faults.cut_generation++;
        faults.cuts++;
        faults.cut_closing = faults.relaying;
        while (faults.cut_closing > 0 &&
               g_cond_wait_until(&faults.closed, &faults.lock, deadline)) {
            continue;
        }
        if (faults.cut_closing > 0) {
            snprintf(reply, sizeof(reply), "error: %u connections still "
                     "open %d s after the cut", faults.cut_closing,
                     CUT_WAIT_S);
            g_mutex_unlock(&faults.lock);
            return reply;
        }
    } else if (g_str_equal(w[0], "pass") && n == 1) {
        faults.delay_ms = 0;
        faults.blackhole = faults.refuse = faults.reorder = false;
        faults.partition = false;
        faults.shared_off = false;
        faults.shm_fault = SHM_FAULT_OFF;
        faults.truncate_left = -1;
        faults.drop_frames = 0;
    } else if (g_str_equal(w[0], "stats") && n == 1) {
        snprintf(reply, sizeof(reply), "connections %" G_GUINT64_FORMAT
                 " bytes %" G_GUINT64_FORMAT " cuts %" G_GUINT64_FORMAT
                 " fds %" G_GUINT64_FORMAT,
                 faults.connections, faults.bytes, faults.cuts, faults.fds);
        g_mutex_unlock(&faults.lock);
        return reply;
    } else {
        g_mutex_unlock(&faults.lock);
        return "error: unknown command";
    }
    g_mutex_unlock(&faults.lock);
    return "ok";
}

/* One control client: read lines, answer each. */
static void *control_thread(void *opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    char buf[512];
    size_t got = 0;

    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        char *nl;

        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        buf[got] = 0;
        while ((nl = strchr(buf, '\n'))) {
            g_autofree char *answer = NULL;

            *nl = 0;
            answer = g_strdup_printf("%s\n", run_command(buf));
            if (!write_all(fd, (uint8_t *)answer, strlen(answer))) {
                goto out;
            }
            got -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, got + 1);
        }
        if (got == sizeof(buf) - 1) {
            break;      /* a line too long to be a command */
        }
    }
out:
    close(fd);
    return NULL;
}

/* Unix socket files to remove when told to stop. */
static char *socket_paths[2];

static void on_terminate(int sig)
{
    for (int i = 0; i < 2; i++) {
        if (socket_paths[i]) {
            unlink(socket_paths[i]);
        }
    }
    _exit(0);
}

static void spawn_detached(void *(*fn)(void *), int fd)
{
    pthread_t t;

    if (pthread_create(&t, NULL, fn, GINT_TO_POINTER(fd)) != 0) {
        close(fd);
        return;
    }
    pthread_detach(t);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("- fault injector");
    g_autoptr(GError) err = NULL;
    g_autofree char *listen_addr = NULL, *control_addr = NULL;
    g_autofree char *addrs = NULL;
    struct pollfd pfd[2];
    bool loopback;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        die("%s (see --help)", err->message);
    }
    if (!opt_listen || !opt_target || !opt_control) {
        die("--listen, --target and --control are required (see --help)");
    }
    signal(SIGPIPE, SIG_IGN);
    pfd[0].fd = kona_listen(opt_listen, &listen_addr, &loopback, &err);
    if (pfd[0].fd < 0) {
        die("--listen: %s", err->message);
    }
    pfd[1].fd = kona_listen(opt_control, &control_addr, &loopback, &err);
    if (pfd[1].fd < 0) {
        die("--control: %s", err->message);
    }
    listen_is_tcp = g_str_has_prefix(listen_addr, "tcp:");
    for (int i = 0; i < 2; i++) {
        const char *a = i ? control_addr : listen_addr;

        if (g_str_has_prefix(a, "unix:")) {
            socket_paths[i] = g_strdup(a + 5);
        }
    }
    signal(SIGTERM, on_terminate);
    signal(SIGINT, on_terminate);
    addrs = g_strdup_printf("%s %s", listen_addr, control_addr);
    kona_announce_ready("kona-faultproxy", addrs, NULL, opt_ready_fd);

    pfd[0].events = pfd[1].events = POLLIN;
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("poll: %s", g_strerror(errno));
        }
        for (int i = 0; i < 2; i++) {
            int fd;

            if (!(pfd[i].revents & POLLIN)) {
                continue;
            }
            fd = accept(pfd[i].fd, NULL, NULL);
            if (fd < 0) {
                continue;
            }
            if (i == 1) {
                spawn_detached(control_thread, fd);
                continue;
            }
            g_mutex_lock(&faults.lock);
            faults.connections++;
            if (faults.refuse || faults.partition) {
                g_mutex_unlock(&faults.lock);
                close(fd);
                continue;
            }
            g_mutex_unlock(&faults.lock);
            spawn_detached(connection_thread, fd);
        }
    }
}

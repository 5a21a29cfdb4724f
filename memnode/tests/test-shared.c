/*
 * Integration tests of the shared-memory path (KONA_CAP_SHARED, SLAB_MAP,
 * WROTE_LINES): real kona-memnode processes, real sockets, the real
 * kona-link client.  The fault-proxy cases (/shared/faultproxy/...) are
 * registered only when $KONA_FAULTPROXY names the proxy; the test
 * 'memnode-shared-faultproxy' runs them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kona-link-int.h"
#include "kona-sock.h"
#include "mn-testutil.h"

#define TIMEOUT_MS 5000

/* the key of the tests' named volumes */
static const uint8_t test_volkey[KONA_KEY_SIZE] = "test-volume-key";
#define SLAB (1u << 20)

typedef MnNode Node;

static Node *node_start(const char *const *extra)
{
    return mn_node_start(NULL, extra);
}

/*
 * Map slab @id (@want bytes): a memfd, sealed so that it never shrinks,
 * or with @file a --data-dir file, which may be cut under the mapping.
 */
static uint8_t *map_slab_of(KonaLink *l, uint64_t id, uint64_t want,
                            bool file)
{
    g_autoptr(GError) err = NULL;
    uint64_t size = 0;
    bool can_shrink = !file;
    uint8_t *m = kona_link_slab_map(l, id, &size, &can_shrink, &err);

    g_assert_no_error(err);
    g_assert_nonnull(m);
    g_assert_cmpuint(size, ==, want);
    g_assert_true(can_shrink == file);
    return m;
}

static uint8_t *map_slab(KonaLink *l, uint64_t id, uint64_t want)
{
    return map_slab_of(l, id, want, false);
}

static KonaMemnodeStats stats(KonaLink *l)
{
    g_autoptr(GError) err = NULL;
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    return st;
}

/* Send @bytes on a fresh link with @slab open; the server must close it. */
static void expect_closed(KonaLink *l, const void *bytes, size_t len)
{
    g_autoptr(GError) err = NULL;
    int64_t t0 = kona_now_ms();
    char c;

    g_assert_cmpint(kona_link_send_raw(l, bytes, len, &err), ==, 0);
    g_assert_cmpint(recv(kona_link_fd(l), &c, 1, 0), ==, 0);
    g_assert_cmpint(kona_now_ms() - t0, <, TIMEOUT_MS);
}

/* ---- mapping and visibility ---- */

/* What goes through the mapping is what READ sees, and the reverse. */
static void test_map_visibility(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) other = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB), full = ~0ull;
    g_autofree uint8_t *pat = g_malloc(SLAB);
    uint8_t page[KONA_PAGE_SIZE], got[KONA_PAGE_SIZE], key[KONA_KEY_SIZE];
    uint8_t *m;

    g_assert_true(kona_link_offers_shared(l));
    g_assert_true(kona_link_caps(l) & KONA_CAP_SHARED);
    m = map_slab(l, slab, SLAB);
    /* fresh memory is zeros */
    for (size_t i = 0; i < SLAB; i += 4093) {
        g_assert_cmpuint(m[i], ==, 0);
    }
    /* mapping -> socket READ, on this link and on another one */
    mn_fill(pat, SLAB, 1);
    memcpy(m, pat, SLAB);
    g_assert_cmpint(kona_link_read(l, slab, 12345, got, sizeof(got), &err),
                    ==, 0);
    g_assert_cmpmem(got, sizeof(got), pat + 12345, sizeof(got));
    kona_link_slab_info(l, slab, key, NULL);
    g_assert_cmpint(kona_link_slab_open(other, slab, key, NULL, &err), ==, 0);
    g_assert_cmpint(kona_link_read(other, slab, SLAB - 4096, got, 4096, &err),
                    ==, 0);
    g_assert_cmpmem(got, 4096, pat + SLAB - 4096, 4096);
    /* socket WRITE_LINES (from the other link) -> mapping */
    mn_fill(page, sizeof(page), 2);
    g_assert_cmpint(kona_link_write_lines(other, slab, 8192, 1, &full, page,
                                          &err), ==, 0);
    g_assert_cmpmem(m + 8192, KONA_PAGE_SIZE, page, KONA_PAGE_SIZE);
    /* a second mapping of the same slab is the same memory */
    {
        uint8_t *m2 = map_slab(other, slab, SLAB);
        m2[77] = 0x5a;
        g_assert_cmpuint(m[77], ==, 0x5a);
        kona_link_slab_unmap(m2, SLAB);
    }
    g_assert_cmpuint(stats(l).maps, ==, 2);
    g_assert_cmpuint(stats(l).mapped_slabs, ==, 1);
    g_assert_cmpint(kona_link_check(l, &err), ==, 0);
    kona_link_slab_unmap(m, SLAB);
    mn_node_free(n);
}

/* WROTE_LINES counts exactly what WRITE_LINES of the same lines counts. */
static void test_wrote_lines_counters(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t a = mn_alloc_slab(l, SLAB), b = mn_alloc_slab(l, SLAB);
    g_autofree uint8_t *data = g_malloc(16 * KONA_PAGE_SIZE);
    uint64_t masks[16];
    KonaMemnodeStats s0, s1, s2;
    GRand *r = g_rand_new_with_seed(3);
    uint8_t *m = map_slab(l, b, SLAB);
    uint64_t calls[40][3];

    for (int i = 0; i < 40; i++) {
        calls[i][0] = g_rand_int_range(r, 0, SLAB / KONA_PAGE_SIZE - 16) *
                      (uint64_t)KONA_PAGE_SIZE;
        calls[i][1] = g_rand_int_range(r, 1, 17);
        calls[i][2] = g_rand_int(r);
    }
    mn_fill(data, 16 * KONA_PAGE_SIZE, 4);
    s0 = stats(l);
    for (int i = 0; i < 40; i++) {
        for (int p = 0; p < 16; p++) {
            masks[p] = ((uint64_t)g_rand_int(r) << 32 | calls[i][2]) >> p;
        }
        g_assert_cmpint(kona_link_write_lines(l, a, calls[i][0],
                                              (uint32_t)calls[i][1], masks,
                                              data, &err), ==, 0);
        /* the same lines, written through the mapping and noted */
        kona_lines_unpack_pages(m + calls[i][0], masks,
                                (uint32_t)calls[i][1], data);
        g_assert_cmpint(kona_link_note_lines(l, b, calls[i][0],
                                             (uint32_t)calls[i][1], masks,
                                             &err), ==, 0);
    }
    /* compare: the write-lines half was counted before the flush */
    s1 = stats(l);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    s2 = stats(l);
    g_assert_cmpuint(s1.writes - s0.writes, ==, 40);
    g_assert_cmpuint(s2.writes - s1.writes, ==, s1.writes - s0.writes);
    g_assert_cmpuint(s2.lines_written - s1.lines_written, ==,
                     s1.lines_written - s0.lines_written);
    g_assert_cmpuint(s2.bytes_written - s1.bytes_written, ==,
                     s1.bytes_written - s0.bytes_written);
    g_assert_cmpuint(s2.lines_written - s1.lines_written, >, 40);
    /* and the two slabs hold the same bytes */
    {
        g_autofree uint8_t *buf = g_malloc(SLAB);
        g_assert_cmpint(kona_link_read(l, a, 0, buf, SLAB, &err), ==, 0);
        g_assert_true(memcmp(buf, m, SLAB) == 0);
    }
    kona_link_slab_unmap(m, SLAB);
    g_rand_free(r);
    mn_node_free(n);
}

/* Notes wait in the link until flush (or a full batch) sends them. */
static void test_notes_batched(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, 8 << 20), mask = 0xff;
    g_autofree uint64_t *masks = g_new(uint64_t, KONA_MAX_NOTE_PAGES);
    KonaMemnodeStats s0, s;

    s0 = stats(l);
    g_assert_cmpint(kona_link_note_lines(l, slab, 0, 1, &mask, &err), ==, 0);
    g_assert_cmpint(kona_link_note_lines(l, slab, 4096, 1, &mask, &err), ==,
                    0);
    s = stats(l);
    g_assert_cmpuint(s.writes, ==, s0.writes);      /* still in the link */
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    s = stats(l);
    g_assert_cmpuint(s.writes - s0.writes, ==, 2);
    g_assert_cmpuint(s.lines_written - s0.lines_written, ==, 16);
    g_assert_cmpuint(s.bytes_written - s0.bytes_written, ==, 16 * 64);

    /* a full batch goes out by itself, without waiting for its reply */
    for (unsigned i = 0; i < KONA_MAX_NOTE_PAGES; i++) {
        masks[i] = 1;
    }
    s0 = s;
    g_assert_cmpint(kona_link_note_lines(l, slab, 0, KONA_MAX_NOTE_PAGES - 1,
                                         masks, &err), ==, 0);
    g_assert_cmpint(kona_link_note_lines(l, slab, 0, 1, masks, &err), ==, 0);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);   /* ordered after it */
    s = stats(l);
    g_assert_cmpuint(s.writes - s0.writes, ==, 2);
    g_assert_cmpuint(s.lines_written - s0.lines_written, ==,
                     KONA_MAX_NOTE_PAGES);
    g_assert_cmpuint(kona_link_inflight(l), ==, 0);     /* reply consumed */
    /* push_notes sends a partial batch; the reply is consumed later */
    g_assert_cmpint(kona_link_note_lines(l, slab, 0, 1, &mask, &err), ==, 0);
    g_assert_cmpint(kona_link_push_notes(l, &err), ==, 0);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    g_assert_cmpuint(stats(l).writes - s0.writes, ==, 3);
    /* a note the node refuses (the slab went away) surfaces at flush */
    g_assert_cmpint(kona_link_slab_free(l, slab, &err), ==, 0);
    g_assert_cmpint(kona_link_note_lines(l, slab, 0, 1, &mask, &err), ==, 0);
    g_assert_cmpint(kona_link_flush(l, &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    /* bad notes are refused locally */
    g_assert_cmpint(kona_link_note_lines(l, slab, 100, 1, &mask, &err), ==,
                    -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_note_lines(l, slab, 0, 0, &mask, &err), ==,
                    -EINVAL);
    mn_node_free(n);
}

/* ---- who gets the shared path ---- */

/*
 * The link does not offer the shared path; with @server, the server
 * refuses SLAB_MAP too (behind the fault proxy's "shared off" it would
 * not: only the client is told otherwise).
 */
static void expect_no_shared(KonaLink *l, uint64_t slab, bool server)
{
    g_autoptr(GError) err = NULL;
    uint64_t size;
    uint8_t p[8];

    g_assert_false(kona_link_offers_shared(l));
    g_assert_false(kona_link_caps(l) & KONA_CAP_SHARED);
    g_assert_null(kona_link_slab_map(l, slab, &size, NULL, &err));
    g_assert_error(err, KONA_ERROR, EOPNOTSUPP);
    g_clear_error(&err);
    if (!server) {
        return;
    }
    /* the server refuses too, whatever the client library thinks */
    kona_st64(p, slab);
    g_assert_cmpint(kona_link_call(l, KONA_OP_SLAB_MAP, p, sizeof(p), NULL,
                                   &err), ==, -EOPNOTSUPP);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
}

static void test_tcp_refused(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->tcp_addr);

    expect_no_shared(l, mn_alloc_slab(l, SLAB), true);
    mn_node_free(n);
}

static void test_no_shared_option(void)
{
    Node *n = node_start((const char *const[]){ "--no-shared", NULL });
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);

    expect_no_shared(l, mn_alloc_slab(l, SLAB), true);
    g_assert_cmpuint(stats(l).maps, ==, 0);
    mn_node_free(n);
}

static void test_not_open_refused(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) a = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) b = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(a, SLAB), size;

    g_assert_null(kona_link_slab_map(b, slab, &size, NULL, &err));
    g_assert_error(err, KONA_ERROR, EACCES);
    g_clear_error(&err);
    g_assert_null(kona_link_slab_map(b, slab + 100, &size, NULL, &err));
    g_assert_error(err, KONA_ERROR, EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_ping(b, &err), ==, 0);
    g_assert_cmpuint(stats(b).maps, ==, 0);
    g_assert_cmpuint(stats(b).bad_frames, ==, 0);
    mn_node_free(n);
}

/* On an auth-required listener SLAB_MAP before AUTH is malformed. */
static void test_auth_before_map(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *sf = g_build_filename(dir, "secret", NULL);
    g_autofree char *sopt = g_strdup_printf("--secret-file=%s", sf);
    const char *secret = "correct horse battery staple";
    g_autoptr(GError) err = NULL;
    uint8_t f[KONA_HDR_SIZE + sizeof(KonaHelloReq) + KONA_HDR_SIZE + 8] = { 0 };
    uint8_t rep[KONA_HDR_SIZE + sizeof(KonaHelloRep)];
    KonaLinkOptions o = {
        .timeout_ms = TIMEOUT_MS, .secret = secret,
        .secret_len = strlen(secret),
    };
    KonaLink *l;
    uint64_t slab;
    uint8_t *m;
    Node *n;
    int fd;
    char c;

    g_assert_true(g_file_set_contents(sf, secret, -1, NULL));
    chmod(sf, 0600);
    n = node_start((const char *const[]){ sopt, "--auth-all", NULL });
    fd = kona_connect(n->unix_addr, TIMEOUT_MS, &err);
    g_assert_cmpint(fd, >=, 0);
    kona_hdr_encode(f, KONA_OP_HELLO, 1, 0, sizeof(KonaHelloReq));
    kona_st32(f + 24, KONA_PROTO_MAGIC);
    kona_st16(f + 28, 1);
    kona_st64(f + 32, KONA_CAP_ALL);
    kona_hdr_encode(f + 24 + sizeof(KonaHelloReq), KONA_OP_SLAB_MAP, 2, 0, 8);
    kona_st64(f + 48 + sizeof(KonaHelloReq), 1);
    g_assert_cmpint(write(fd, f, sizeof(f)), ==, sizeof(f));
    g_assert_cmpint(recv(fd, rep, sizeof(rep), MSG_WAITALL), ==, sizeof(rep));
    g_assert_cmpint(kona_ld16(rep + 24 + 6) & KONA_HELLO_F_AUTH_REQUIRED, !=,
                    0);
    g_assert_cmpint(recv(fd, &c, 1, 0), ==, 0);
    close(fd);
    /* after AUTH the same listener maps */
    l = kona_link_connect_opts(n->unix_addr, &o, &err);
    g_assert_no_error(err);
    g_assert_true(kona_link_offers_shared(l));
    slab = mn_alloc_slab(l, SLAB);
    m = map_slab(l, slab, SLAB);
    kona_link_slab_unmap(m, SLAB);
    kona_link_close(l);
    mn_node_free(n);
    mn_rm_rf(dir);
}

/* ---- lifetime and isolation ---- */

/*
 * SLAB_FREE of a mapped slab: the mapping keeps working, the memory stays
 * counted until the mapping connection closes, and no new slab gets it.
 */
static void test_free_mapped(void)
{
    Node *n = node_start((const char *const[]){ "--capacity=6M", NULL });
    g_autoptr(KonaLink) owner = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) other = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t old = mn_alloc_slab(owner, 4 << 20), fresh, id;
    g_autofree uint8_t *buf = g_malloc(2 << 20);
    uint8_t *m = map_slab(owner, old, 4 << 20);
    uint8_t *m2;
    KonaMemnodeStats st;

    memset(m, 0xa5, 4 << 20);
    g_assert_cmpint(kona_link_slab_free(owner, old, &err), ==, 0);
    /* still ours to use, and still counted */
    g_assert_cmpuint(m[12345], ==, 0xa5);
    m[12345] = 0x11;
    st = stats(other);
    g_assert_cmpuint(st.slabs, ==, 0);
    g_assert_cmpuint(st.slab_bytes, ==, 4 << 20);
    g_assert_cmpuint(st.mapped_slabs, ==, 1);
    g_assert_cmpint(kona_link_slab_alloc(other, 4 << 20, &id, &err), ==,
                    -ENOSPC);
    g_clear_error(&err);
    /* a new slab is other memory, whatever we write to the old one */
    fresh = mn_alloc_slab(owner, 2 << 20);
    memset(m, 0x5a, 4 << 20);
    g_assert_cmpint(kona_link_read(owner, fresh, 0, buf, 1 << 20, &err), ==,
                    0);
    g_assert_cmpint(kona_link_read(owner, fresh, 1 << 20, buf + (1 << 20),
                                   1 << 20, &err), ==, 0);
    for (size_t i = 0; i < (2u << 20); i++) {
        if (buf[i]) {
            g_error("byte %zu of the new slab is %#x, not 0", i, buf[i]);
        }
    }
    m2 = map_slab(owner, fresh, 2 << 20);
    g_assert_cmpuint(m2[0], ==, 0);
    g_assert_cmpuint(m2[(2 << 20) - 1], ==, 0);
    kona_link_slab_unmap(m2, 2 << 20);
    /* the mapping connection goes: the old slab's memory is released */
    kona_link_close(owner);
    owner = NULL;
    for (int i = 0; i < 500; i++) {
        st = stats(other);
        if (st.clients == 1) {
            break;
        }
        g_usleep(1000);
    }
    g_assert_cmpuint(st.slab_bytes, ==, 2 << 20);   /* the lingering new one */
    g_assert_cmpuint(st.mapped_slabs, ==, 0);
    id = mn_alloc_slab(other, 4 << 20);
    /* our mapping is still valid memory, just orphaned */
    g_assert_cmpuint(m[99], ==, 0x5a);
    kona_link_slab_unmap(m, 4 << 20);
    mn_node_free(n);
}

/* A memnode killed under a mapping: no SIGBUS, and check sees it gone. */
static void test_kill_while_mapped(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB);
    uint8_t *m = map_slab(l, slab, SLAB);

    memset(m, 1, SLAB / 2);
    g_assert_cmpint(kona_link_check(l, &err), ==, 0);
    mn_proc_kill(n->proc);
    /* untouched and touched pages alike */
    for (size_t i = 0; i < SLAB; i += KONA_PAGE_SIZE) {
        g_assert_cmpuint(m[i], ==, i < SLAB / 2 ? 1 : 0);
        m[i] = 2;
        g_assert_cmpuint(m[i], ==, 2);
    }
    g_assert_cmpint(kona_link_check(l, &err), ==, -ECONNRESET);
    g_assert_false(kona_link_connected(l));
    g_clear_error(&err);
    /* and it stays reported, without reconnecting */
    g_assert_cmpint(kona_link_check(l, &err), ==, -ECONNRESET);
    kona_link_slab_unmap(m, SLAB);
    mn_node_free(n);
}

/* ---- data directory ---- */

static char *slab_file(const char *dd, uint64_t id)
{
    return g_strdup_printf("%s/slab-%016" G_GINT64_MODIFIER "x.mem", dd, id);
}

/* FLUSH syncs what was written through the mapping: the file has it. */
static void test_flush_syncs(void)
{
    g_autofree char *dd = mn_tmpdir();
    Node *n = mn_node_start(dd, NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB), mask = 0xf0f0;
    g_autofree char *path = slab_file(dd, slab);
    uint8_t page[KONA_PAGE_SIZE], got[KONA_PAGE_SIZE], *m;
    struct stat sb;
    int fd;

    /* created in full: no holes for a full disk to turn into SIGBUS */
    g_assert_cmpint(stat(path, &sb), ==, 0);
    g_assert_cmpint((int64_t)sb.st_blocks * 512, >=, SLAB);
    m = map_slab_of(l, slab, SLAB, true);
    mn_fill(page, sizeof(page), 7);
    kona_lines_unpack(m + 65536, mask, page);
    g_assert_cmpint(kona_link_note_lines(l, slab, 65536, 1, &mask, &err), ==,
                    0);
    memcpy(m + 3 * 65536, page, sizeof(page));      /* not noted */
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, got, sizeof(got), 65536), ==, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), m + 65536, sizeof(got));
    g_assert_cmpuint(got[4 * 64], ==, page[0]);     /* first packed line */
    g_assert_cmpint(pread(fd, got, sizeof(got), 3 * 65536), ==, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), page, sizeof(page));
    close(fd);
    kona_link_slab_unmap(m, SLAB);
    mn_node_free(n);
    mn_rm_rf(dd);
}

/* A restarted data-dir memnode: reopen, map again, same file. */
static void test_data_dir_restart(void)
{
    g_autofree char *dd = mn_tmpdir();
    Node *n = mn_node_start(dd, NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB), full = ~0ull;
    uint8_t page[KONA_PAGE_SIZE], *m, *m2;

    m = map_slab_of(l, slab, SLAB, true);
    mn_fill(page, sizeof(page), 8);
    memcpy(m + 8192, page, sizeof(page));
    g_assert_cmpint(kona_link_note_lines(l, slab, 8192, 1, &full, &err), ==,
                    0);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    mn_node_restart(n, true, NULL);
    /* the link reconnects and reopens the slab by key, then maps it */
    m2 = map_slab_of(l, slab, SLAB, true);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 1);
    g_assert_cmpmem(m2 + 8192, sizeof(page), page, sizeof(page));
    /* the same file: the old mapping and the new one share it */
    m[100] = 0x77;
    g_assert_cmpuint(m2[100], ==, 0x77);
    {
        uint8_t b;
        g_assert_cmpint(kona_link_read(l, slab, 100, &b, 1, &err), ==, 0);
        g_assert_cmpuint(b, ==, 0x77);
    }
    kona_link_slab_unmap(m, SLAB);
    kona_link_slab_unmap(m2, SLAB);
    mn_node_free(n);
    mn_rm_rf(dd);
}

/*
 * A --data-dir slab file cut under the memnode (anyone who may write it
 * can): requests that touch the lost pages fail with EIO, and the memnode
 * serves on, its other slabs and this connection included.  It died of
 * SIGBUS before.
 */
static void test_data_dir_cut(void)
{
    g_autofree char *dd = mn_tmpdir();
    Node *n = mn_node_start(dd, NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB), other = mn_alloc_slab(l, SLAB);
    g_autofree char *path = slab_file(dd, slab);
    g_autofree uint8_t *big = g_malloc(SLAB / 4);
    uint8_t page[KONA_PAGE_SIZE], got[KONA_PAGE_SIZE];
    uint64_t full = ~0ull;

    mn_fill(page, sizeof(page), 5);
    g_assert_cmpint(kona_link_write_lines(l, slab, 4096, 1, &full, page,
                                          &err), ==, 0);
    g_assert_cmpint(truncate(path, 0), ==, 0);

    /* A small read (copied), a large one, a write, a zeroing */
    g_assert_cmpint(kona_link_read(l, slab, 4096, got, 64, &err), ==, -EIO);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_read(l, slab, 0, big, SLAB / 4, &err), ==,
                    -EIO);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_write_lines(l, slab, 8192, 1, &full, page,
                                          &err), ==, -EIO);
    g_clear_error(&err);

    /* The memnode, this connection and the other slab serve on. */
    g_assert_cmpint(kona_link_write_lines(l, other, 4096, 1, &full, page,
                                          &err), ==, 0);
    g_assert_cmpint(kona_link_read(l, other, 4096, got, sizeof(got), &err),
                    ==, 0);
    g_assert_cmpmem(got, sizeof(got), page, sizeof(page));
    g_assert_cmpuint(stats(l).slabs, ==, 2);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 0);
    mn_node_free(n);
    mn_rm_rf(dd);
}

/* A data-dir slab bigger than the free space: -ENOSPC, not a later SIGBUS. */
static void test_full_disk(void)
{
    g_autofree char *dd = mn_tmpdir();
    g_autoptr(GError) err = NULL;
    KonaLink *l;
    uint64_t id, size;
    bool created;
    Node *n;

    if (mount("kona-test", dd, "tmpfs", 0, "size=2M,mode=0700") < 0) {
        g_test_skip("cannot mount a small tmpfs here");
        mn_rm_rf(dd);
        return;
    }
    n = mn_node_start(dd, NULL);
    l = mn_link_to(n->unix_addr);
    g_assert_cmpint(kona_link_slab_alloc(l, 4 << 20, &id, &err), ==, -ENOSPC);
    g_assert_nonnull(strstr(err->message, "no room"));
    g_clear_error(&err);
    g_assert_cmpint(kona_link_slab_attach_key(l, "big", 4 << 20,
                                              KONA_ATTACH_F_CREATE,
                                              test_volkey, &id, &size,
                                              &created, &err), ==, -ENOSPC);
    g_clear_error(&err);
    /* nothing left behind, and what fits still works */
    {
        g_autoptr(GDir) d = g_dir_open(dd, 0, NULL);
        g_assert_null(g_dir_read_name(d));
    }
    id = mn_alloc_slab(l, 1 << 20);
    {
        uint8_t *m = map_slab_of(l, id, 1 << 20, true);
        memset(m, 3, 1 << 20);      /* every page is there: no SIGBUS */
        kona_link_slab_unmap(m, 1 << 20);
    }
    g_assert_cmpuint(stats(l).slab_bytes, ==, 1 << 20);
    kona_link_close(l);
    mn_node_free(n);
    g_assert_cmpint(umount(dd), ==, 0);
    mn_rm_rf(dd);
}

/* ---- malformed and greedy clients ---- */

/* A WROTE_LINES frame of @n ranges (each @pages pages at @off). */
static size_t wrote_frame(uint8_t *f, uint64_t slab, uint32_t n,
                          uint32_t pages, uint64_t off, int32_t len_adjust)
{
    uint8_t *p = f + KONA_HDR_SIZE, *r = p + 8;
    size_t len = 8 + (size_t)n * 24 + 8ull * n * pages;

    kona_st32(p, n);
    kona_st32(p + 4, 0);
    for (uint32_t i = 0; i < n; i++, r += 24) {
        kona_st64(r, slab);
        kona_st64(r + 8, off);
        kona_st32(r + 16, pages);
        kona_st32(r + 20, 0);
    }
    memset(r, 0xff, 8ull * n * pages);
    len += len_adjust;
    kona_hdr_encode(f, KONA_OP_WROTE_LINES, 1000, 0, (uint32_t)len);
    return KONA_HDR_SIZE + len;
}

static void test_wrote_lines_malformed(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) good = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    KonaLinkOptions o = { .timeout_ms = TIMEOUT_MS, .no_reconnect = true };
    static uint8_t f[64 << 10];
    uint64_t gslab = mn_alloc_slab(good, SLAB);
    KonaMemnodeStats s0, s1;
    int cases = 0;

    s0 = stats(good);
    for (int c = 0; c < 5; c++) {
        g_autoptr(KonaLink) l = kona_link_connect_opts(n->unix_addr, &o, &err);
        uint64_t slab = mn_alloc_slab(l, SLAB);
        size_t len;

        switch (c) {
        case 0:     /* no ranges */
            len = wrote_frame(f, slab, 1, 1, 0, 0);
            kona_st32(f + KONA_HDR_SIZE, 0);
            break;
        case 1:     /* range beyond the end of the slab */
            len = wrote_frame(f, slab, 1, 2, SLAB - 4096, 0);
            break;
        case 2:     /* too many pages in all */
            len = wrote_frame(f, slab, 2, KONA_MAX_NOTE_PAGES / 2 + 1, 0, 0);
            break;
        case 3:     /* length does not match the ranges */
            len = wrote_frame(f, slab, 2, 3, 0, -8);
            break;
        default:    /* page offset not aligned */
            len = wrote_frame(f, slab, 1, 1, 100, 0);
            break;
        }
        expect_closed(l, f, len), cases++;
    }
    /* a slab not open here: refused, nothing counted, connection kept */
    {
        g_autoptr(KonaLink) l = kona_link_connect_opts(n->unix_addr, &o, &err);
        uint64_t mine = mn_alloc_slab(l, SLAB), mask = ~0ull;
        uint8_t p[8 + 2 * 24 + 16];

        kona_st32(p, 2);
        kona_st32(p + 4, 0);
        kona_st64(p + 8, mine);
        kona_st64(p + 16, 0);
        kona_st32(p + 24, 1);
        kona_st32(p + 28, 0);
        kona_st64(p + 32, gslab);
        kona_st64(p + 40, 0);
        kona_st32(p + 48, 1);
        kona_st32(p + 52, 0);
        memcpy(p + 56, &mask, 8);
        memcpy(p + 64, &mask, 8);
        s1 = stats(good);
        g_assert_cmpint(kona_link_call(l, KONA_OP_WROTE_LINES, p, sizeof(p),
                                       NULL, &err), ==, -EACCES);
        g_clear_error(&err);
        g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
        g_assert_cmpuint(stats(good).writes, ==, s1.writes);
        g_assert_cmpuint(stats(good).lines_written, ==, s1.lines_written);
    }
    g_assert_cmpint(kona_link_ping(good, &err), ==, 0);
    g_assert_cmpuint(stats(good).bad_frames - s0.bad_frames, ==, cases);
    mn_node_free(n);
}

/*
 * A client that asks for descriptors and never reads them holds at most
 * KONA_MAX_QUEUED_FDS of the memnode's descriptors.
 */
static void test_greedy_mapper(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) good = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) greedy = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(greedy, SLAB);
    unsigned before = mn_proc_fds(n->proc->pid), peak = 0;
    uint8_t f[KONA_HDR_SIZE + 8];

    /* until the node stops reading us (or 20000 requests) */
    for (int i = 0; i < 20000; i++) {
        kona_hdr_encode(f, KONA_OP_SLAB_MAP, 1000 + i, 0, 8);
        kona_st64(f + KONA_HDR_SIZE, slab);
        if (send(kona_link_fd(greedy), f, sizeof(f),
                 MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(f)) {
            g_assert_cmpint(errno, ==, EAGAIN);
            break;
        }
        if (i % 500 == 499) {
            /* a round trip on another link: the node has looked at us */
            g_assert_cmpint(kona_link_ping(good, &err), ==, 0);
            peak = MAX(peak, mn_proc_fds(n->proc->pid));
        }
    }
    peak = MAX(peak, mn_proc_fds(n->proc->pid));
    g_test_message("memnode fds: %u before, peak %u", before, peak);
    /*
     * What the socket buffer took is the kernel's (in flight to us, in
     * our receive queue); the node itself holds no more than the limit.
     */
    g_assert_cmpuint(peak, <=, before + KONA_MAX_QUEUED_FDS);
    g_assert_cmpint(kona_link_ping(good, &err), ==, 0);
    mn_node_free(n);
}

/* ---- through the fault proxy ---- */

static void test_proxy_relays(void)
{
    Node *n = node_start(NULL);
    MnProxy *p = mn_proxy_start(n->unix_addr);
    g_autoptr(KonaLink) l = mn_link_to(p->proc->addrs[0]);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB), size;
    uint8_t got[64], *m;

    g_assert_true(kona_link_offers_shared(l));
    m = map_slab(l, slab, SLAB);
    memset(m + 4096, 0x3c, 64);
    g_assert_cmpint(kona_link_read(l, slab, 4096, got, 64, &err), ==, 0);
    g_assert_cmpuint(got[63], ==, 0x3c);
    kona_link_slab_unmap(m, SLAB);

    /* a descriptor shorter than the slab, or one that cannot be mapped */
    mn_proxy_cmd(p, "shm-fault short");
    g_assert_null(kona_link_slab_map(l, slab, &size, NULL, &err));
    g_assert_error(err, KONA_ERROR, EINVAL);
    g_assert_nonnull(strstr(err->message, "shorter than the slab"));
    g_clear_error(&err);
    mn_proxy_cmd(p, "shm-fault unmappable");
    g_assert_null(kona_link_slab_map(l, slab, &size, NULL, &err));
    g_assert_error(err, KONA_ERROR, EINVAL);
    g_clear_error(&err);
    /* the link survived both, and the real descriptor works again */
    mn_proxy_cmd(p, "shm-fault off");
    m = map_slab(l, slab, SLAB);
    g_assert_cmpuint(m[4096], ==, 0x3c);
    kona_link_slab_unmap(m, SLAB);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 0);
    mn_node_free(n);
    mn_proxy_free(p);
}

static void test_proxy_shared_off(void)
{
    Node *n = node_start(NULL);
    MnProxy *p = mn_proxy_start(n->unix_addr);
    g_autoptr(GError) err = NULL;
    KonaLink *l;

    mn_proxy_cmd(p, "shared off");
    l = mn_link_to(p->proc->addrs[0]);
    expect_no_shared(l, mn_alloc_slab(l, SLAB), false);
    kona_link_close(l);
    mn_proxy_cmd(p, "shared on");
    l = mn_link_to(p->proc->addrs[0]);
    g_assert_true(kona_link_offers_shared(l));
    kona_link_close(l);
    mn_node_free(n);
    mn_proxy_free(p);
}

/*
 * "cut" is done when it is acknowledged: every connection relayed before
 * it is closed by then. A client that writes only through its mapping
 * sends nothing over its socket, so only the socket's close tells it the
 * link is gone: a test that cuts and then writes must find it closed
 * (qtest-kona-remote-test's resync case failed on a loaded machine
 * because the relays noticed the cut only at their next 50 ms poll).
 */
static void test_proxy_cut_acked_closed(void)
{
    Node *n = node_start(NULL);
    MnProxy *p = mn_proxy_start(n->unix_addr);
    g_autoptr(GError) err = NULL;

    for (int i = 0; i < 10; i++) {
        g_autoptr(KonaLink) l = mn_link_to(p->proc->addrs[0]);
        struct pollfd pfd = { .fd = kona_link_fd(l), .events = POLLIN };
        char c;

        g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
        mn_proxy_cmd(p, "cut");
        g_assert_cmpint(poll(&pfd, 1, 0), ==, 1);
        g_assert_cmpint(recv(pfd.fd, &c, 1, MSG_DONTWAIT), ==, 0);
    }
    mn_node_free(n);
    mn_proxy_free(p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/shared/map-visibility", test_map_visibility);
    g_test_add_func("/shared/wrote-lines-counters", test_wrote_lines_counters);
    g_test_add_func("/shared/notes-batched", test_notes_batched);
    g_test_add_func("/shared/tcp-refused", test_tcp_refused);
    g_test_add_func("/shared/no-shared-option", test_no_shared_option);
    g_test_add_func("/shared/not-open-refused", test_not_open_refused);
    g_test_add_func("/shared/auth-before-map", test_auth_before_map);
    g_test_add_func("/shared/free-mapped", test_free_mapped);
    g_test_add_func("/shared/kill-while-mapped", test_kill_while_mapped);
    g_test_add_func("/shared/flush-syncs", test_flush_syncs);
    g_test_add_func("/shared/data-dir-restart", test_data_dir_restart);
    g_test_add_func("/shared/data-dir-cut", test_data_dir_cut);
    g_test_add_func("/shared/full-disk", test_full_disk);
    g_test_add_func("/shared/wrote-lines-malformed",
                    test_wrote_lines_malformed);
    g_test_add_func("/shared/greedy-mapper", test_greedy_mapper);
    if (g_getenv("KONA_FAULTPROXY")) {
        g_test_add_func("/shared/faultproxy/relays", test_proxy_relays);
        g_test_add_func("/shared/faultproxy/cut-acked-closed",
                        test_proxy_cut_acked_closed);
        g_test_add_func("/shared/faultproxy/shared-off",
                        test_proxy_shared_off);
    }
    return g_test_run();
}

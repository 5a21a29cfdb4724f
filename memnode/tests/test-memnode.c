/*
 * Integration tests: real kona-memnode processes, real sockets, the real
 * kona-link client.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kona-link.h"
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

/* Write @mask's lines of @src page into the model and to the node. */
static void write_page(KonaLink *l, uint64_t slab, uint8_t *model,
                       uint64_t page_off, uint64_t mask, const uint8_t *src)
{
    g_autoptr(GError) err = NULL;
    uint8_t packed[KONA_PAGE_SIZE];
    size_t n = kona_lines_pack(src, mask, packed);

    g_assert_cmpuint(n, ==, kona_lines_count(mask) * 64u);
    kona_lines_unpack(model + page_off, mask, packed);
    g_assert_cmpint(kona_link_write_lines(l, slab, page_off, 1, &mask, packed,
                                          &err), ==, 0);
    g_assert_no_error(err);
}

static void check_slab(KonaLink *l, uint64_t slab, const uint8_t *model,
                       size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *buf = g_malloc(size);

    for (size_t off = 0; off < size; off += KONA_MAX_IO) {
        uint32_t n = (uint32_t)MIN(size - off, (size_t)KONA_MAX_IO);
        g_assert_cmpint(kona_link_read(l, slab, off, buf + off, n, &err), ==, 0);
        g_assert_no_error(err);
    }
    for (size_t i = 0; i < size; i++) {
        if (buf[i] != model[i]) {
            g_error("slab %" G_GUINT64_FORMAT " byte %zu: got %#x, want %#x",
                    slab, i, buf[i], model[i]);
        }
    }
}

/* ---- data path ---- */

static void roundtrip(const char *addr)
{
    g_autoptr(KonaLink) l = mn_link_to(addr);
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *model = g_malloc0(SLAB);
    g_autofree uint8_t *src = g_malloc(SLAB);
    uint64_t slab = mn_alloc_slab(l, SLAB);
    GRand *r = g_rand_new_with_seed(42);
    uint8_t small[64];

    /* fresh slabs read as zeros */
    check_slab(l, slab, model, SLAB);

    /* full pages, then sparse random masks over them */
    mn_fill(src, SLAB, 1);
    for (uint64_t p = 0; p < SLAB / KONA_PAGE_SIZE; p += 7) {
        write_page(l, slab, model, p * KONA_PAGE_SIZE, ~0ull,
                   src + p * KONA_PAGE_SIZE);
    }
    mn_fill(src, SLAB, 2);
    for (int i = 0; i < 2000; i++) {
        uint64_t p = g_rand_int_range(r, 0, SLAB / KONA_PAGE_SIZE);
        uint64_t mask = (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);
        mask &= (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);  /* sparser */
        write_page(l, slab, model, p * KONA_PAGE_SIZE, mask,
                   src + p * KONA_PAGE_SIZE);
    }
    check_slab(l, slab, model, SLAB);

    /* multi-page WRITE_LINES */
    {
        uint64_t masks[16];
        g_autofree uint8_t *packed = g_malloc(16 * KONA_PAGE_SIZE);
        size_t n;

        for (int i = 0; i < 16; i++) {
            masks[i] = i % 3 ? 0x8000000000000001ull << (i % 2) : 0;
        }
        masks[5] = ~0ull;
        mn_fill(src, 16 * KONA_PAGE_SIZE, 3);
        n = kona_lines_pack_pages(src, masks, 16, packed);
        kona_lines_unpack_pages(model + 32 * KONA_PAGE_SIZE, masks, 16, packed);
        g_assert_cmpint(kona_link_write_lines(l, slab, 32 * KONA_PAGE_SIZE, 16,
                                              masks, packed, &err), ==, 0);
        g_assert_cmpuint(n, ==, kona_lines_bytes(masks, 16));
    }
    check_slab(l, slab, model, SLAB);

    /* unaligned small reads */
    g_assert_cmpint(kona_link_read(l, slab, 12345, small, 37, &err), ==, 0);
    g_assert_cmpmem(small, 37, model + 12345, 37);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_free(l, slab, &err), ==, 0);
    g_rand_free(r);
}

static void test_roundtrip_unix(void)
{
    Node *n = node_start(NULL);
    roundtrip(n->unix_addr);
    mn_node_free(n);
}

static void test_roundtrip_tcp(void)
{
    Node *n = node_start(NULL);
    roundtrip(n->tcp_addr);
    mn_node_free(n);
}

/* Only the masked lines change; the rest of the page keeps its bytes. */
static void test_only_masked_lines(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, 64 * 1024);
    uint8_t page[KONA_PAGE_SIZE], ones[KONA_PAGE_SIZE], got[KONA_PAGE_SIZE];
    uint8_t packed[KONA_PAGE_SIZE];
    uint64_t mask = (1ull << 0) | (1ull << 7) | (1ull << 8) | (1ull << 63);

    memset(page, 0xAA, sizeof(page));
    memset(ones, 0x55, sizeof(ones));
    g_assert_cmpint(kona_link_write_lines(l, slab, 4096, 1,
                                          (uint64_t[]){ ~0ull }, page, &err),
                    ==, 0);
    kona_lines_pack(ones, mask, packed);
    g_assert_cmpint(kona_link_write_lines(l, slab, 4096, 1, &mask, packed,
                                          &err), ==, 0);
    g_assert_cmpint(kona_link_read(l, slab, 4096, got, sizeof(got), &err),
                    ==, 0);
    for (int j = 0; j < 64; j++) {
        uint8_t want = (mask >> j) & 1 ? 0x55 : 0xAA;
        for (int b = 0; b < 64; b++) {
            g_assert_cmphex(got[j * 64 + b], ==, want);
        }
    }
    /* neighbouring pages untouched */
    g_assert_cmpint(kona_link_read(l, slab, 0, got, sizeof(got), &err), ==, 0);
    for (size_t i = 0; i < sizeof(got); i++) {
        g_assert_cmphex(got[i], ==, 0);
    }
    /* an empty mask writes nothing */
    mask = 0;
    g_assert_cmpint(kona_link_write_lines(l, slab, 4096, 1, &mask, packed,
                                          &err), ==, 0);
    g_assert_cmpint(kona_link_read(l, slab, 4096, got, 64, &err), ==, 0);
    g_assert_cmphex(got[0], ==, 0x55);
    mn_node_free(n);
}

/* Pipelined reads and writes: order kept, waiting out of order works. */
static void test_pipeline(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, SLAB);
    enum { N = 64 };
    uint64_t ids[2 * N];
    static uint8_t before[N][KONA_PAGE_SIZE], after[N][KONA_PAGE_SIZE];
    static uint8_t data[N][KONA_PAGE_SIZE];
    uint64_t full = ~0ull;

    /* read, write, read the same page in one pipeline: the first read sees
     * zeros and the second the data, whatever order we wait in */
    for (int i = 0; i < N; i++) {
        mn_fill(data[i], KONA_PAGE_SIZE, 100 + i);
        ids[2 * i] = kona_link_submit_read(l, slab, i * 8192ull, before[i],
                                           KONA_PAGE_SIZE, &err);
        g_assert_cmpuint(ids[2 * i], !=, 0);
        ids[2 * i + 1] = kona_link_submit_write_lines(l, slab, i * 8192ull, 1,
                                                      &full, data[i], &err);
        g_assert_cmpuint(ids[2 * i + 1], !=, 0);
    }
    g_assert_cmpuint(kona_link_inflight(l), <=, 2 * N);
    for (int i = 2 * N - 1; i >= 0; i--) {
        g_assert_cmpint(kona_link_wait(l, ids[i], &err), ==, 0);
    }
    g_assert_cmpuint(kona_link_inflight(l), ==, 0);
    for (int i = 0; i < N; i++) {
        ids[i] = kona_link_submit_read(l, slab, i * 8192ull, after[i],
                                       KONA_PAGE_SIZE, &err);
    }
    for (int i = 0; i < N; i++) {
        static const uint8_t zero[KONA_PAGE_SIZE];
        g_assert_cmpint(kona_link_wait(l, ids[i], &err), ==, 0);
        g_assert_cmpmem(before[i], KONA_PAGE_SIZE, zero, KONA_PAGE_SIZE);
        g_assert_cmpmem(after[i], KONA_PAGE_SIZE, data[i], KONA_PAGE_SIZE);
    }
    /* an unknown request id is an error, not a hang */
    g_assert_cmpint(kona_link_wait(l, 999999, &err), ==, -EINVAL);
    mn_node_free(n);
}

/* Large pipelined reads exceed the socket buffers and the in-flight cap. */
static void test_pipeline_large(void)
{
    Node *n = node_start((const char *const[]){ "--max-inflight=1M", NULL });
    g_autoptr(KonaLink) l = mn_link_to(n->tcp_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, 16 * SLAB);
    g_autofree uint8_t *src = g_malloc(16 * SLAB);
    g_autofree uint8_t *dst = g_malloc0(16 * SLAB);
    g_autofree uint64_t *masks = g_new(uint64_t, KONA_MAX_WRITE_PAGES);
    uint64_t ids[16];

    mn_fill(src, 16 * SLAB, 9);
    for (unsigned i = 0; i < KONA_MAX_WRITE_PAGES; i++) {
        masks[i] = ~0ull;
    }
    for (int i = 0; i < 16; i++) {
        ids[i] = kona_link_submit_write_lines(l, slab, (uint64_t)i * SLAB,
                                              KONA_MAX_WRITE_PAGES, masks,
                                              src + (size_t)i * SLAB, &err);
        g_assert_no_error(err);
    }
    for (int i = 0; i < 16; i++) {
        g_assert_cmpint(kona_link_wait(l, ids[i], &err), ==, 0);
    }
    for (int i = 0; i < 16; i++) {
        ids[i] = kona_link_submit_read(l, slab, (uint64_t)i * SLAB,
                                       dst + (size_t)i * SLAB, SLAB, &err);
        g_assert_no_error(err);
    }
    for (int i = 0; i < 16; i++) {
        g_assert_cmpint(kona_link_wait(l, ids[i], &err), ==, 0);
    }
    g_assert_true(memcmp(src, dst, 16 * SLAB) == 0);
    mn_node_free(n);
}

/*
 * A reader that lets the replies back up.  The first 1 MiB reply that
 * the socket cannot take leaves the server with a reply queue over
 * --max-inflight and requests still in its input buffer; those must go
 * through once the queue drains, although the client sends nothing more.
 */
static void test_pipeline_slow_reader(void)
{
    Node *n = node_start((const char *const[]){ "--max-inflight=1M", NULL });
    g_autoptr(KonaLink) l = mn_link_to(n->tcp_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, 16 * SLAB);
    g_autofree uint8_t *dst = g_malloc0(16 * SLAB);
    uint64_t ids[16];

    for (int i = 0; i < 16; i++) {
        ids[i] = kona_link_submit_read(l, slab, (uint64_t)i * SLAB,
                                       dst + (size_t)i * SLAB, SLAB, &err);
        g_assert_no_error(err);
    }
    /* 16 MiB of replies: more than both socket buffers hold */
    g_usleep(300 * 1000);
    for (int i = 0; i < 16; i++) {
        g_assert_cmpint(kona_link_wait(l, ids[i], &err), ==, 0);
    }
    mn_node_free(n);
}

/* ---- 16 concurrent clients ---- */

#define NCLIENTS 16
#define CSLAB (256u << 10)

typedef struct Worker {
    const char *addr;
    int idx;
    uint64_t own;               /* this worker's slab */
    uint64_t shared;            /* everyone's slab: line idx (mod 16) is ours */
    uint8_t shared_key[KONA_KEY_SIZE];
    uint8_t *own_model;
    uint8_t *shared_model;      /* only our lines are meaningful */
    uint8_t own_key[KONA_KEY_SIZE];
    char *error;
} Worker;

/* Compare a read-back page with what we expect of it: the whole page for
 * our own slab, only our lines for the shared one. */
static bool page_matches(const uint8_t *got, const uint8_t *want,
                         uint64_t lines)
{
    for (int j = 0; j < 64; j++) {
        if (((lines >> j) & 1) && memcmp(got + 64 * j, want + 64 * j, 64)) {
            return false;
        }
    }
    return true;
}

static gpointer worker_main(gpointer opaque)
{
    enum { DEPTH = 8, OPS = 1500 };
    Worker *w = opaque;
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = kona_link_connect(w->addr, TIMEOUT_MS, &err);
    GRand *r = g_rand_new_with_seed(w->idx + 1);
    uint64_t our_lines = 0;
    uint8_t src[KONA_PAGE_SIZE], packed[KONA_PAGE_SIZE];
    static __thread uint8_t rd[DEPTH][KONA_PAGE_SIZE], exp[DEPTH][KONA_PAGE_SIZE];
    uint64_t pend[DEPTH] = { 0 }, pend_w[DEPTH], pend_lines[DEPTH];

    for (int j = w->idx; j < 64; j += NCLIENTS) {
        our_lines |= 1ull << j;
    }
    if (!l || kona_link_slab_alloc(l, CSLAB, &w->own, &err) < 0 ||
        kona_link_slab_open(l, w->shared, w->shared_key, NULL, &err) < 0) {
        goto fail;
    }
    kona_link_slab_info(l, w->own, w->own_key, NULL);
    /* DEPTH write+read pairs in flight; each read must see its write */
    for (int i = 0; i < OPS + DEPTH; i++) {
        int slot = i % DEPTH;
        bool own = g_rand_boolean(r);
        uint64_t slab = own ? w->own : w->shared;
        uint8_t *model = own ? w->own_model : w->shared_model;
        uint64_t off = g_rand_int_range(r, 0, CSLAB / KONA_PAGE_SIZE) *
                       (uint64_t)KONA_PAGE_SIZE;
        uint64_t mask = (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);

        if (pend[slot]) {
            if (kona_link_wait(l, pend_w[slot], &err) < 0 ||
                kona_link_wait(l, pend[slot], &err) < 0) {
                goto fail;
            }
            if (!page_matches(rd[slot], exp[slot], pend_lines[slot])) {
                w->error = g_strdup_printf("worker %d: read-back differs",
                                           w->idx);
                g_rand_free(r);
                return NULL;
            }
            pend[slot] = 0;
        }
        if (i >= OPS) {
            continue;
        }
        if (!own) {
            mask &= our_lines;
        }
        mn_fill(src, sizeof(src), (uint64_t)w->idx << 32 | (uint64_t)i);
        kona_lines_pack(src, mask, packed);
        kona_lines_unpack(model + off, mask, packed);
        memcpy(exp[slot], model + off, KONA_PAGE_SIZE);
        pend_lines[slot] = own ? ~0ull : our_lines;
        pend_w[slot] = kona_link_submit_write_lines(l, slab, off, 1, &mask,
                                                    packed, &err);
        if (!pend_w[slot]) {
            goto fail;
        }
        pend[slot] = kona_link_submit_read(l, slab, off, rd[slot],
                                           KONA_PAGE_SIZE, &err);
        if (!pend[slot]) {
            goto fail;
        }
    }
    if (kona_link_flush(l, &err) < 0) {
        goto fail;
    }
    g_rand_free(r);
    return NULL;

fail:
    w->error = g_strdup_printf("worker %d: %s", w->idx,
                               err ? err->message : "?");
    g_rand_free(r);
    return NULL;
}

static void concurrent(const char *addr)
{
    g_autoptr(KonaLink) l = mn_link_to(addr);
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *shared_model = g_malloc0(CSLAB);
    Worker w[NCLIENTS];
    GThread *t[NCLIENTS];
    uint64_t shared = mn_alloc_slab(l, CSLAB);
    uint8_t key[KONA_KEY_SIZE];
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_slab_info(l, shared, key, NULL), ==, 0);
    for (int i = 0; i < NCLIENTS; i++) {
        w[i] = (Worker){
            .addr = addr, .idx = i, .shared = shared,
            .own_model = g_malloc0(CSLAB),
            .shared_model = g_malloc0(CSLAB),
        };
        memcpy(w[i].shared_key, key, sizeof(key));
        t[i] = g_thread_new("worker", worker_main, &w[i]);
    }
    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    for (int i = 0; i < NCLIENTS; i++) {
        g_thread_join(t[i]);
        if (w[i].error) {
            g_error("%s", w[i].error);
        }
    }
    /* merge the workers' disjoint lines of the shared slab */
    for (size_t off = 0; off < CSLAB; off += 64) {
        int owner = (int)((off / 64) % 64) % NCLIENTS;
        memcpy(shared_model + off, w[owner].shared_model + off, 64);
    }
    check_slab(l, shared, shared_model, CSLAB);
    for (int i = 0; i < NCLIENTS; i++) {
        /* the worker's link is gone; its slab lingers and opens by key */
        g_assert_cmpint(kona_link_slab_open(l, w[i].own, w[i].own_key, NULL,
                                            &err), ==, 0);
        check_slab(l, w[i].own, w[i].own_model, CSLAB);
        g_free(w[i].own_model);
        g_free(w[i].shared_model);
    }
    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    g_assert_cmpuint(st.writes, ==, NCLIENTS * 1500);
    g_assert_cmpuint(st.bad_frames, ==, 0);
    g_assert_cmpuint(st.clients_total, ==, NCLIENTS + 1);
}

static void test_concurrent_unix(void)
{
    Node *n = node_start(NULL);
    concurrent(n->unix_addr);
    mn_node_free(n);
}

static void test_concurrent_tcp(void)
{
    Node *n = node_start(NULL);
    concurrent(n->tcp_addr);
    mn_node_free(n);
}

/* ---- isolation ---- */

static void test_isolation(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) a = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) b = mn_link_to(n->tcp_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(a, 64 * 1024), mask = 1, size;
    uint8_t buf[64] = { 1 }, key[KONA_KEY_SIZE];
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_read(b, slab, 0, buf, 64, &err), ==, -EACCES);
    g_assert_error(err, KONA_ERROR, EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_write_lines(b, slab, 0, 1, &mask, buf, &err),
                    ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_slab_free(b, slab, &err), ==, -EACCES);
    g_clear_error(&err);
    /* a wrong key is refused just like a wrong id */
    kona_link_slab_info(a, slab, key, NULL);
    key[0] ^= 1;
    g_assert_cmpint(kona_link_slab_open(b, slab, key, NULL, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_slab_open(b, slab + 1000, key, NULL, &err), ==,
                    -EACCES);
    g_clear_error(&err);
    /* the refusals did not cost b its connection */
    g_assert_cmpint(kona_link_ping(b, &err), ==, 0);
    /* a's data is intact; with the right key b gets in */
    g_assert_cmpint(kona_link_read(a, slab, 0, buf, 64, &err), ==, 0);
    g_assert_cmphex(buf[0], ==, 0);
    key[0] ^= 1;
    g_assert_cmpint(kona_link_slab_open(b, slab, key, &size, &err), ==, 0);
    g_assert_cmpuint(size, ==, 64 * 1024);
    g_assert_cmpint(kona_link_read(b, slab, 0, buf, 64, &err), ==, 0);
    g_assert_cmpint(kona_link_stats(a, &st, &err), ==, 0);
    g_assert_cmpuint(st.refused, ==, 5);
    g_assert_cmpuint(st.bad_frames, ==, 0);
    mn_node_free(n);
}

/* ---- malformed frames ---- */

static void hdr(uint8_t *b, uint32_t len, uint16_t op, uint64_t id)
{
    kona_hdr_encode(b, op, id, 0, len);
}

/* Send @bytes on a fresh HELLO'd connection; the server must close it. */
static void expect_closed(const char *addr, const void *bytes, size_t len,
                          bool half_close)
{
    KonaLinkOptions o = { .timeout_ms = TIMEOUT_MS, .no_reconnect = true };
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = kona_link_connect_opts(addr, &o, &err);
    int64_t t0 = kona_now_ms();
    char c;

    g_assert_no_error(err);
    g_assert_cmpint(kona_link_send_raw(l, bytes, len, &err), ==, 0);
    if (half_close) {
        /* a truncated frame: the stream ends inside it */
        shutdown(kona_link_fd(l), SHUT_WR);
    }
    /* the server closes: we see end of stream, not a reply */
    g_assert_cmpint(recv(kona_link_fd(l), &c, 1, 0), ==, 0);
    g_assert_cmpint(kona_now_ms() - t0, <, TIMEOUT_MS);
}

/* A raw ZERO for @slab (opened by key on a fresh link): the node closes. */
/* A ZERO frame, built by hand to be sent raw. */
static void zero_frame(uint8_t f[KONA_HDR_SIZE + sizeof(KonaZeroReq)],
                       uint64_t id, uint64_t slab, uint64_t off, uint64_t len)
{
    hdr(f, sizeof(KonaZeroReq), KONA_OP_ZERO, id);
    kona_st64(f + KONA_HDR_SIZE, slab);
    kona_st64(f + KONA_HDR_SIZE + 8, off);
    kona_st64(f + KONA_HDR_SIZE + 16, len);
}

static void expect_zero_closed(Node *n, KonaLink *owner, uint64_t slab,
                               uint64_t off, uint64_t len)
{
    KonaLinkOptions o = { .timeout_ms = TIMEOUT_MS, .no_reconnect = true };
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = kona_link_connect_opts(n->unix_addr, &o, &err);
    uint8_t key[KONA_KEY_SIZE], f[KONA_HDR_SIZE + sizeof(KonaZeroReq)];
    char c;

    kona_link_slab_info(owner, slab, key, NULL);
    g_assert_cmpint(kona_link_slab_open_shared(l, slab, key, NULL, &err), ==,
                    0);
    zero_frame(f, 100, slab, off, len);
    g_assert_cmpint(kona_link_send_raw(l, f, sizeof(f), &err), ==, 0);
    g_assert_cmpint(recv(kona_link_fd(l), &c, 1, 0), ==, 0);
}

/*
 * ZERO: the range reads as zeroes and, on an anonymous memnode, its memory
 * goes back (the node's resident set shrinks); the rest of the slab is
 * untouched; a range that is not page-aligned or runs past the slab is a
 * malformed frame; another connection's slab is refused.  On a data
 * directory the zeroes survive a crash after FLUSH and the file stays
 * fully allocated.
 */
static void test_zero(void)
{
    const uint64_t size = 64u << 20, zoff = 1u << 20, zlen = 32u << 20;
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) other = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *model = g_malloc(size);
    g_autofree uint64_t *full = g_malloc(8 * KONA_MAX_WRITE_PAGES);
    uint64_t slab = mn_alloc_slab(l, size), rss_full, rss_zeroed;
    KonaMemnodeStats st0, st;

    g_assert_true(kona_link_caps(l) & KONA_CAP_ZERO);
    memset(full, 0xff, 8 * KONA_MAX_WRITE_PAGES);
    mn_fill(model, size, 3);
    for (uint64_t off = 0; off < size; off += KONA_MAX_IO) {
        g_assert_cmpint(kona_link_write_lines(l, slab, off,
                                              KONA_MAX_WRITE_PAGES, full,
                                              model + off, &err), ==, 0);
    }
    g_assert_cmpint(kona_link_stats(l, &st0, &err), ==, 0);
    rss_full = mn_proc_rss_kib(n->proc->pid);

    g_assert_cmpint(kona_link_zero(l, slab, zoff, zlen, &err), ==, 0);
    g_assert_no_error(err);
    /* (before reading it back: a READ of a hole allocates its pages) */
    rss_zeroed = mn_proc_rss_kib(n->proc->pid);
    memset(model + zoff, 0, zlen);
    check_slab(l, slab, model, size);
    g_assert_cmpuint(rss_zeroed + (zlen >> 10) - (4u << 10), <=, rss_full);
    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    g_assert_cmpuint(st.zeroes - st0.zeroes, ==, 1);
    g_assert_cmpuint(st.bytes_zeroed - st0.bytes_zeroed, ==, zlen);
    g_assert_cmpuint(st.bytes_written, ==, st0.bytes_written);

    /* not this connection's slab: refused, and nothing zeroed */
    g_assert_cmpint(kona_link_zero(other, slab, 0, 4096, &err), ==, -EACCES);
    g_clear_error(&err);
    check_slab(l, slab, model, size);

    expect_zero_closed(n, l, slab, 100, 4096);          /* unaligned */
    expect_zero_closed(n, l, slab, 0, 0);               /* empty */
    expect_zero_closed(n, l, slab, size - 4096, 8192);  /* past the end */
    expect_zero_closed(n, l, slab, 4096, UINT64_MAX - 4095);   /* wraps */
    check_slab(l, slab, model, SLAB);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    mn_node_free(n);

    /* a data directory: durable after FLUSH, still allocated */
    {
        g_autofree char *dir = mn_tmpdir();
        Node *d = mn_node_start(dir, NULL);
        g_autoptr(KonaLink) dl = mn_link_to(d->unix_addr);
        g_autofree uint8_t *dmodel = g_malloc(SLAB);
        uint64_t dslab = mn_alloc_slab(dl, SLAB);
        g_autofree char *path = NULL;
        struct stat sb;

        mn_fill(dmodel, SLAB, 4);
        g_assert_cmpint(kona_link_write_lines(dl, dslab, 0,
                                              SLAB / KONA_PAGE_SIZE, full,
                                              dmodel, &err), ==, 0);
        g_assert_cmpint(kona_link_zero(dl, dslab, 8192, 65536, &err), ==, 0);
        g_assert_cmpint(kona_link_flush(dl, &err), ==, 0);
        memset(dmodel + 8192, 0, 65536);
        mn_node_restart(d, true, NULL);
        check_slab(dl, dslab, dmodel, SLAB);
        path = g_strdup_printf("%s/slab-%016" G_GINT64_MODIFIER "x.mem",
                               dir, dslab);
        g_assert_cmpint(stat(path, &sb), ==, 0);
        g_assert_cmpint((int64_t)sb.st_blocks * 512, >=, SLAB);
        mn_node_free(d);
        mn_rm_rf(dir);
    }
}

/*
 * A ZERO of a large range goes in steps, the other clients served in
 * between: another connection's STATS, sent while a ZERO of 512 MiB of
 * resident memory is under way, is answered before it ends and shows it
 * part-done (bytes_zeroed counts each step, zeroes the whole request).
 * The zeroing client's own next request is answered after its ZERO.
 * Before, one ZERO held the loop until all of it was zeroed: the STATS
 * saw it finished.  (If the test itself is held up until the ZERO is
 * over, it tries again.)
 */
static void test_zero_in_steps(void)
{
    const uint64_t size = 512u << 20;
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) other = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    g_autofree uint64_t *full = g_malloc(8 * KONA_MAX_WRITE_PAGES);
    g_autofree uint8_t *data = g_malloc(KONA_MAX_IO);
    g_autofree uint8_t *got = g_malloc(KONA_MAX_IO);
    uint8_t f[KONA_HDR_SIZE + sizeof(KonaZeroReq)], rep[KONA_HDR_SIZE];
    uint64_t slab = mn_alloc_slab(l, size);
    KonaMemnodeStats st0, mid, st;
    bool seen_mid = false;
    KonaHdr h;

    memset(full, 0xff, 8 * KONA_MAX_WRITE_PAGES);
    memset(data, 0x5a, KONA_MAX_IO);
    for (int attempt = 0; attempt < 3 && !seen_mid; attempt++) {
        for (uint64_t off = 0; off < size; off += KONA_MAX_IO) {
            g_assert_cmpint(kona_link_write_lines(l, slab, off,
                                                  KONA_MAX_WRITE_PAGES, full,
                                                  data, &err), ==, 0);
        }
        g_assert_cmpint(kona_link_stats(other, &st0, &err), ==, 0);
        zero_frame(f, 1000 + attempt, slab, 0, size);
        g_assert_cmpint(kona_link_send_raw(l, f, sizeof(f), &err), ==, 0);
        g_usleep(2000);                 /* the node is at it by now */
        g_assert_cmpint(kona_link_stats(other, &mid, &err), ==, 0);
        seen_mid = mid.zeroes == st0.zeroes &&
                   mid.bytes_zeroed - st0.bytes_zeroed < size;

        /* the ZERO's reply, then the same client's next request's */
        g_assert_cmpint(recv(kona_link_fd(l), rep, sizeof(rep), MSG_WAITALL),
                        ==, sizeof(rep));
        kona_hdr_decode(rep, &h);
        g_assert_cmpuint(h.op, ==, KONA_OP_ZERO | KONA_OP_REPLY);
        g_assert_cmpuint(h.req_id, ==, 1000 + attempt);
        g_assert_cmpint(h.status, ==, 0);
        g_assert_cmpint(kona_link_read(l, slab, size - KONA_MAX_IO, got,
                                       KONA_MAX_IO, &err), ==, 0);
        g_assert_true(got[0] == 0 && !memcmp(got, got + 1, KONA_MAX_IO - 1));
        g_assert_cmpint(kona_link_stats(other, &st, &err), ==, 0);
        g_assert_cmpuint(st.zeroes - st0.zeroes, ==, 1);
        g_assert_cmpuint(st.bytes_zeroed - st0.bytes_zeroed, ==, size);
    }
    g_assert_true(seen_mid);
    mn_node_free(n);
}

static void test_malformed(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) good = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(good, 64 * 1024);
    uint8_t data[KONA_PAGE_SIZE], got[KONA_PAGE_SIZE];
    uint8_t f[256];
    uint64_t full = ~0ull;
    KonaMemnodeStats st;
    int cases = 0;

    mn_fill(data, sizeof(data), 5);
    g_assert_cmpint(kona_link_write_lines(good, slab, 0, 1, &full, data, &err),
                    ==, 0);

    /* oversize length */
    hdr(f, KONA_MAX_PAYLOAD + 1, KONA_OP_PING, 1);
    expect_closed(n->unix_addr, f, KONA_HDR_SIZE, false), cases++;
    /* length wrong for the op */
    hdr(f, 7, KONA_OP_READ, 1);
    memset(f + KONA_HDR_SIZE, 0, 7);
    expect_closed(n->tcp_addr, f, KONA_HDR_SIZE + 7, false), cases++;
    /* unknown op */
    hdr(f, 0, 0x7777, 1);
    expect_closed(n->unix_addr, f, KONA_HDR_SIZE, false), cases++;
    /* a reply op sent as a request */
    hdr(f, 0, KONA_OP_PING | KONA_OP_REPLY, 1);
    expect_closed(n->unix_addr, f, KONA_HDR_SIZE, false), cases++;
    /* reserved header bits */
    hdr(f, 0, KONA_OP_PING, 1);
    f[20] = 1;
    expect_closed(n->unix_addr, f, KONA_HDR_SIZE, false), cases++;
    /* request id 0 */
    hdr(f, 0, KONA_OP_PING, 0);
    expect_closed(n->unix_addr, f, KONA_HDR_SIZE, false), cases++;
    /* truncated: the stream ends in the middle of a frame */
    hdr(f, 24, KONA_OP_READ, 1);
    expect_closed(n->unix_addr, f, KONA_HDR_SIZE + 10, true), cases++;
    /* READ beyond the end of the slab (the slab is ours: opened by key) */
    {
        KonaLinkOptions o = { .timeout_ms = TIMEOUT_MS, .no_reconnect = true };
        g_autoptr(KonaLink) l = kona_link_connect_opts(n->unix_addr, &o, &err);
        uint8_t key[KONA_KEY_SIZE];
        char c;

        kona_link_slab_info(good, slab, key, NULL);
        g_assert_cmpint(kona_link_slab_open(l, slab, key, NULL, &err), ==, 0);
        hdr(f, 24, KONA_OP_READ, 100);
        kona_st64(f + 24, slab);
        kona_st64(f + 32, 64 * 1024 - 100);
        kona_st32(f + 40, 4096);
        kona_st32(f + 44, 0);
        g_assert_cmpint(kona_link_send_raw(l, f, 48, &err), ==, 0);
        g_assert_cmpint(recv(kona_link_fd(l), &c, 1, 0), ==, 0);
        cases++;
    }
    /* WRITE_LINES whose data does not match its masks */
    hdr(f, 24 + 8 + 64, KONA_OP_WRITE_LINES, 1);
    kona_st64(f + 24, slab);
    kona_st64(f + 32, 0);
    kona_st32(f + 40, 1);
    kona_st32(f + 44, 0);
    kona_st64(f + 48, 3);       /* two lines claimed, one sent */
    expect_closed(n->unix_addr, f, 24 + 24 + 8 + 64, false), cases++;
    /* WRITE_LINES at an unaligned block offset */
    hdr(f, 24 + 8 + 64, KONA_OP_WRITE_LINES, 1);
    kona_st64(f + 32, 64);
    kona_st64(f + 48, 1);
    expect_closed(n->unix_addr, f, 24 + 24 + 8 + 64, false), cases++;
    /* a second HELLO */
    {
        uint8_t h2[KONA_HDR_SIZE + sizeof(KonaHelloReq)] = { 0 };
        hdr(h2, sizeof(KonaHelloReq), KONA_OP_HELLO, 1);
        kona_st32(h2 + 24, KONA_PROTO_MAGIC);
        kona_st16(h2 + 28, 1);
        expect_closed(n->unix_addr, h2, sizeof(h2), false), cases++;
    }
    /* no HELLO at all: garbage straight after connecting */
    {
        int fd = kona_connect(n->unix_addr, TIMEOUT_MS, &err);
        char c;
        g_assert_cmpint(fd, >=, 0);
        const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        g_assert_cmpint(write(fd, http, strlen(http)), ==, strlen(http));
        g_assert_cmpint(recv(fd, &c, 1, 0), ==, 0);
        close(fd);
        cases++;
    }

    /* the well-behaved client never noticed */
    g_assert_cmpint(kona_link_ping(good, &err), ==, 0);
    g_assert_cmpint(kona_link_read(good, slab, 0, got, sizeof(got), &err), ==, 0);
    g_assert_cmpmem(got, sizeof(got), data, sizeof(data));
    g_assert_cmpint(kona_link_stats(good, &st, &err), ==, 0);
    g_assert_cmpuint(st.bad_frames, ==, cases - 1);  /* truncation is EOF */
    g_assert_cmpuint(st.clients, ==, 1);
    g_assert_cmpuint(kona_link_reconnects(good), ==, 0);
    mn_node_free(n);
}

/*
 * A greedy client floods 1 MiB READs and never reads a reply: the server
 * stops reading it once --max-inflight bytes are queued for it, and the
 * other clients go on at full speed.
 */
static void test_greedy_client(void)
{
    Node *n = node_start((const char *const[]){ "--max-inflight=2M", NULL });
    g_autoptr(KonaLink) greedy = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) good = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t gslab = mn_alloc_slab(greedy, 4 << 20), slab = mn_alloc_slab(good, SLAB);
    uint8_t f[48], data[KONA_PAGE_SIZE], got[KONA_PAGE_SIZE];
    uint64_t full = ~0ull;
    size_t sent = 0;
    int64_t t0;
    KonaMemnodeStats st;

    kona_set_nonblock(kona_link_fd(greedy), true);
    for (uint64_t id = 1000;; id++) {
        ssize_t r;

        kona_hdr_encode(f, KONA_OP_READ, id, 0, 24);
        kona_st64(f + 24, gslab);
        kona_st64(f + 32, (id % 4) << 20);
        kona_st32(f + 40, 1 << 20);
        kona_st32(f + 44, 0);
        r = send(kona_link_fd(greedy), f, sizeof(f), MSG_NOSIGNAL);
        if (r < 0) {
            g_assert_cmpint(errno, ==, EAGAIN);
            break;              /* the server stopped reading us */
        }
        g_assert_cmpint(r, ==, sizeof(f));
        sent++;
        g_assert_cmpuint(sent, <, 1000000);
    }
    /* far more was asked for than the server queued */
    g_assert_cmpuint(sent, >, 100);
    t0 = kona_now_ms();
    for (int i = 0; i < 500; i++) {
        mn_fill(data, sizeof(data), i);
        g_assert_cmpint(kona_link_write_lines(good, slab, (i % 256) * 4096ull,
                                              1, &full, data, &err), ==, 0);
        g_assert_cmpint(kona_link_read(good, slab, (i % 256) * 4096ull, got,
                                       sizeof(got), &err), ==, 0);
        g_assert_cmpmem(got, sizeof(got), data, sizeof(data));
    }
    g_assert_cmpint(kona_now_ms() - t0, <, 3000);
    g_assert_cmpint(kona_link_stats(good, &st, &err), ==, 0);
    /* the greedy client got at most its in-flight allowance answered */
    g_test_message("greedy client sent %zu 1 MiB READs; %" G_GUINT64_FORMAT
                   " MiB were read for everyone", sent, st.bytes_read >> 20);
    g_assert_cmpuint(st.bytes_read, <, (uint64_t)(sent / 2) << 20);
    g_assert_cmpuint(st.clients, ==, 2);
    mn_node_free(n);
}

/* Connections that never say HELLO are dropped; idle ready ones are not. */
static void test_handshake_timeout(void)
{
    Node *n = node_start((const char *const[]){ "--handshake-timeout=1",
                                                NULL });
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    int fd = kona_connect(n->tcp_addr, TIMEOUT_MS, &err);
    int64_t t0 = kona_now_ms();
    char c;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(recv(fd, &c, 1, 0), ==, 0);
    g_assert_cmpint(kona_now_ms() - t0, >=, 900);
    g_assert_cmpint(kona_now_ms() - t0, <, 3000);
    close(fd);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 0);
    mn_node_free(n);
}

/* ---- persistence and reconnection ---- */

static void test_persistence(void)
{
    g_autofree char *data_dir = mn_tmpdir();
    g_autofree char *dd_opt = g_strdup_printf("--data-dir=%s", data_dir);
    const char *const args[] = { dd_opt, NULL };
    Node *n = node_start(args);
    g_autoptr(GError) err = NULL;
    KonaLink *l = mn_link_to(n->unix_addr);
    g_autofree uint8_t *model = g_malloc0(SLAB);
    g_autofree uint8_t *src = g_malloc(SLAB);
    uint64_t slab = mn_alloc_slab(l, SLAB), vol, vsize;
    uint8_t key[KONA_KEY_SIZE], buf[64];
    g_autofree char *old_unix = g_strdup(n->unix_addr);
    bool created;

    g_assert_true(kona_link_caps(l) & KONA_CAP_PERSIST);
    mn_fill(src, SLAB, 77);
    for (uint64_t p = 0; p < SLAB / KONA_PAGE_SIZE; p += 3) {
        write_page(l, slab, model, p * KONA_PAGE_SIZE, 0xF0F0F0F0F0F0F0F0ull,
                   src + p * KONA_PAGE_SIZE);
    }
    g_assert_cmpint(kona_link_slab_attach_key(l, "vm-disk.0", 65536,
                                              KONA_ATTACH_F_CREATE,
                                              test_volkey, &vol, &vsize,
                                              &created, &err), ==, 0);
    g_assert_true(created);
    mn_fill(buf, sizeof(buf), 8);
    g_assert_cmpint(kona_link_write_lines(l, vol, 8192, 1,
                                          (uint64_t[]){ 1ull << 5 }, buf,
                                          &err), ==, 0);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    kona_link_slab_info(l, slab, key, NULL);

    /* restart the memnode on the same socket path and data directory */
    g_assert_cmpint(mn_proc_stop(n->proc), ==, 0);
    g_assert_false(g_file_test(old_unix + 5, G_FILE_TEST_EXISTS));
    mn_proc_free(n->proc);
    {
        g_autofree char *l1 = g_strdup_printf("--listen=%s", old_unix);
        const char *const a2[] = { l1, dd_opt, NULL };
        n->proc = mn_proc_start(mn_memnode_bin(), a2);
    }

    /* the old link notices, reconnects and reopens its slab by key */
    check_slab(l, slab, model, SLAB);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 1);
    kona_link_close(l);

    /* a new client: the slab by key, the volume by name */
    l = mn_link_to(old_unix);
    g_assert_cmpint(kona_link_slab_open(l, slab, key, NULL, &err), ==, 0);
    check_slab(l, slab, model, SLAB);
    g_assert_cmpint(kona_link_slab_attach_key(l, "vm-disk.0", 0, 0,
                                              test_volkey, &vol, &vsize,
                                              &created, &err), ==, 0);
    g_assert_false(created);
    g_assert_cmpuint(vsize, ==, 65536);
    {
        uint8_t got[64];
        g_assert_cmpint(kona_link_read(l, vol, 8192 + 5 * 64, got, 64, &err),
                        ==, 0);
        g_assert_cmpmem(got, 64, buf, 64);
    }
    /* a crash (SIGKILL) after FLUSH loses nothing either */
    mn_fill(buf, sizeof(buf), 9);
    g_assert_cmpint(kona_link_write_lines(l, vol, 0, 1, (uint64_t[]){ 1 }, buf,
                                          &err), ==, 0);
    g_assert_cmpint(kona_link_flush(l, &err), ==, 0);
    mn_proc_kill(n->proc);
    mn_proc_free(n->proc);
    {
        g_autofree char *l1 = g_strdup_printf("--listen=%s", old_unix);
        const char *const a2[] = { l1, dd_opt, NULL };
        n->proc = mn_proc_start(mn_memnode_bin(), a2);
    }
    {
        uint8_t got[64];
        g_assert_cmpint(kona_link_read(l, vol, 0, got, 64, &err), ==, 0);
        g_assert_cmpmem(got, 64, buf, 64);
    }
    /* freeing removes the files */
    g_assert_cmpint(kona_link_slab_free(l, vol, &err), ==, 0);
    g_assert_cmpint(kona_link_slab_free(l, slab, &err), ==, 0);
    kona_link_close(l);
    {
        g_autoptr(GDir) d = g_dir_open(data_dir, 0, NULL);
        g_assert_null(g_dir_read_name(d));
    }
    mn_node_free(n);
    mn_rm_rf(data_dir);
}

/* Without a data directory a restart loses the slabs, and says so. */
static void test_restart_anonymous(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, 65536);
    uint8_t buf[64];
    g_autofree char *l1 = g_strdup_printf("--listen=%s", n->unix_addr);
    const char *const a2[] = { l1, NULL };

    mn_proc_kill(n->proc);
    mn_proc_free(n->proc);
    n->proc = mn_proc_start(mn_memnode_bin(), a2);
    g_assert_cmpint(kona_link_read(l, slab, 0, buf, 64, &err), ==, -EACCES);
    g_clear_error(&err);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 1);
    mn_node_free(n);
}

/* Orphaned slabs linger for their owner, then go. */
static void test_linger(void)
{
    const char *const args0[] = { "--linger=0", NULL };
    Node *n = node_start(args0);
    g_autoptr(GError) err = NULL;
    KonaLink *a = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) b = mn_link_to(n->unix_addr);
    uint64_t slab = mn_alloc_slab(a, 65536);
    uint8_t key[KONA_KEY_SIZE];
    KonaMemnodeStats st;

    kona_link_slab_info(a, slab, key, NULL);
    kona_link_close(a);
    /* a's slab went with a (linger 0); b's STATS is ordered after a's
     * close only once the server saw the close, so poll briefly */
    for (int i = 0; i < 500; i++) {
        g_assert_cmpint(kona_link_stats(b, &st, &err), ==, 0);
        if (st.clients == 1) {
            break;
        }
        g_usleep(1000);
    }
    g_assert_cmpuint(st.slabs, ==, 0);
    g_assert_cmpint(kona_link_slab_open(b, slab, key, NULL, &err), ==,
                    -EACCES);
    mn_node_free(n);
}

/* ---- limits ---- */

static void test_limits(void)
{
    const char *const args[] = { "--capacity=1M", "--max-client-slabs=3",
                                 NULL };
    Node *n = node_start(args);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(KonaLink) m = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t id, big;

    mn_alloc_slab(l, 4096);
    mn_alloc_slab(l, 4096);
    mn_alloc_slab(l, 4096);
    g_assert_cmpint(kona_link_slab_alloc(l, 4096, &id, &err), ==, -EMFILE);
    g_assert_nonnull(strstr(err->message, "slabs open"));
    g_clear_error(&err);
    /* the other client is not affected by l's limit, only by capacity */
    g_assert_cmpint(kona_link_slab_alloc(m, 2 << 20, &id, &err), ==, -ENOSPC);
    g_assert_nonnull(strstr(err->message, "out of capacity"));
    g_clear_error(&err);
    g_assert_cmpint(kona_link_slab_alloc(m, 12345, &id, &err), ==, -EINVAL);
    g_clear_error(&err);
    big = mn_alloc_slab(m, 1024 * 1024 - 3 * 4096);
    g_assert_cmpint(kona_link_slab_alloc(m, 4096, &id, &err), ==, -ENOSPC);
    g_clear_error(&err);
    /* out-of-range I/O on a known slab is refused locally, link intact */
    {
        uint8_t b[64];
        g_assert_cmpint(kona_link_read(m, big, 1 << 20, b, 64, &err), ==,
                        -EINVAL);
        g_clear_error(&err);
        g_assert_cmpint(kona_link_read(m, big, 0, b, 0, &err), ==, -EINVAL);
        g_clear_error(&err);
        g_assert_cmpint(kona_link_ping(m, &err), ==, 0);
    }
    mn_node_free(n);
}

/* ---- timeouts and reconnection ---- */

static void test_timeout_reconnect(void)
{
    Node *n = node_start(NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = NULL;
    uint64_t slab;
    uint8_t buf[64];
    int64_t t0;

    l = kona_link_connect(n->unix_addr, 300, &err);
    g_assert_no_error(err);
    slab = mn_alloc_slab(l, 65536);
    /* a stopped server: the request times out, bounded */
    kill(n->proc->pid, SIGSTOP);
    t0 = kona_now_ms();
    g_assert_cmpint(kona_link_read(l, slab, 0, buf, 64, &err), ==,
                    -ETIMEDOUT);
    g_assert_cmpint(kona_now_ms() - t0, >=, 250);
    g_assert_cmpint(kona_now_ms() - t0, <, 3000);
    g_assert_nonnull(strstr(err->message, n->unix_addr));
    g_clear_error(&err);
    g_assert_false(kona_link_connected(l));
    kill(n->proc->pid, SIGCONT);
    /* the next call reconnects and reopens the slab */
    g_assert_cmpint(kona_link_read(l, slab, 0, buf, 64, &err), ==, 0);
    g_assert_cmpuint(kona_link_reconnects(l), ==, 1);
    mn_node_free(n);
}

static void test_connect_errors(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *path = g_strdup_printf("unix:%s/none.sock", dir);
    g_autofree char *bound = NULL;
    bool lo;
    int lfd;
    int64_t t0;

    g_assert_null(kona_link_connect(path, 1000, &err));
    g_assert_error(err, KONA_ERROR, ENOENT);
    g_clear_error(&err);
    g_assert_null(kona_link_connect("bogus", 1000, &err));
    g_assert_error(err, KONA_ERROR, EINVAL);
    g_clear_error(&err);
    g_assert_null(kona_link_connect("tcp:127.0.0.1:99999", 1000, &err));
    g_clear_error(&err);
    /* a listener that never answers HELLO: bounded by the timeout */
    lfd = kona_listen(path, &bound, &lo, &err);
    g_assert_cmpint(lfd, >=, 0);
    t0 = kona_now_ms();
    g_assert_null(kona_link_connect(path, 200, &err));
    g_assert_error(err, KONA_ERROR, ETIMEDOUT);
    g_assert_cmpint(kona_now_ms() - t0, <, 2000);
    close(lfd);
    mn_rm_rf(dir);
}

/*
 * A fake server that answers HELLO properly, then answers the next
 * request one byte every 20 ms: progress, but never in time.
 */
typedef struct Dribbler {
    int lfd;
    int64_t ran_ms;             /* how long it dribbled before the close */
} Dribbler;

static bool read_full(int fd, void *buf, size_t len)
{
    return recv(fd, buf, len, MSG_WAITALL) == (ssize_t)len;
}

static gpointer dribbler_main(gpointer opaque)
{
    Dribbler *d = opaque;
    uint8_t in[KONA_HDR_SIZE + sizeof(KonaHelloReq)];
    uint8_t out[KONA_HDR_SIZE + sizeof(KonaHelloRep)] = { 0 };
    uint8_t rep[KONA_HDR_SIZE + 1000] = { 0 };
    int64_t t0;
    KonaHdr h;
    int fd;

    kona_set_nonblock(d->lfd, false);
    fd = accept(d->lfd, NULL, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_true(read_full(fd, in, sizeof(in)));
    kona_hdr_decode(in, &h);
    kona_hdr_encode(out, KONA_OP_HELLO | KONA_OP_REPLY, h.req_id, 0,
                    sizeof(KonaHelloRep));
    kona_st32(out + 24, KONA_PROTO_MAGIC);
    kona_st16(out + 28, KONA_PROTO_VERSION);
    g_assert_cmpint(write(fd, out, sizeof(out)), ==, sizeof(out));
    /* a PING carrying 1000 bytes */
    g_assert_true(read_full(fd, in, KONA_HDR_SIZE));
    kona_hdr_decode(in, &h);
    g_assert_cmpuint(h.len, ==, 1000);
    g_assert_true(read_full(fd, rep, 1000));
    kona_hdr_encode(rep, KONA_OP_PING | KONA_OP_REPLY, h.req_id, 0, 1000);
    t0 = kona_now_ms();
    for (size_t i = 0; i < sizeof(rep) && kona_now_ms() - t0 < 3000; i++) {
        if (send(fd, rep + i, 1, MSG_NOSIGNAL) != 1) {
            break;              /* the client gave up: good */
        }
        g_usleep(20 * 1000);
    }
    d->ran_ms = kona_now_ms() - t0;
    close(fd);
    return NULL;
}

/* The request timeout holds even while the server keeps sending a little. */
static void test_dribble_timeout(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *addr = g_strdup_printf("unix:%s/drib.sock", dir);
    g_autofree char *bound = NULL;
    g_autoptr(GError) err = NULL;
    KonaLinkOptions o = { .timeout_ms = 300, .no_reconnect = true };
    Dribbler d = { 0 };
    uint8_t data[1000] = { 0 };
    GThread *t;
    KonaLink *l;
    int64_t t0;
    bool lo;

    d.lfd = kona_listen(addr, &bound, &lo, &err);
    g_assert_cmpint(d.lfd, >=, 0);
    t = g_thread_new("dribbler", dribbler_main, &d);
    l = kona_link_connect_opts(addr, &o, &err);
    g_assert_no_error(err);
    t0 = kona_now_ms();
    g_assert_cmpint(kona_link_ping_data(l, data, sizeof(data), &err), ==,
                    -ETIMEDOUT);
    g_assert_cmpint(kona_now_ms() - t0, >=, 290);
    g_assert_cmpint(kona_now_ms() - t0, <, 800);
    g_assert_false(kona_link_connected(l));
    kona_link_close(l);
    g_thread_join(t);
    g_assert_cmpint(d.ran_ms, <, 2500);
    close(d.lfd);
    mn_rm_rf(dir);
}

/* ---- authentication ---- */

/*
 * A client with a secret refuses a server that does not ask for it (an
 * impostor on the memnode's address would look like that), unless told
 * to accept such servers.
 */
static void test_auth_downgrade(void)
{
    Node *n = node_start(NULL);
    const char *secret = "correct horse battery staple";
    KonaLinkOptions o = {
        .timeout_ms = TIMEOUT_MS,
        .secret = secret,
        .secret_len = strlen(secret),
    };
    g_autoptr(GError) err = NULL;
    KonaLink *l;

    g_assert_null(kona_link_connect_opts(n->unix_addr, &o, &err));
    g_assert_error(err, KONA_ERROR, EACCES);
    g_assert_nonnull(strstr(err->message, "does not ask for authentication"));
    g_clear_error(&err);
    g_assert_null(kona_link_connect_opts(n->tcp_addr, &o, &err));
    g_assert_error(err, KONA_ERROR, EACCES);
    g_clear_error(&err);
    o.allow_unauthenticated = true;
    l = kona_link_connect_opts(n->unix_addr, &o, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    kona_link_close(l);
    mn_node_free(n);
}

static void test_auth(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *sf = g_build_filename(dir, "secret", NULL);
    g_autofree char *sopt = g_strdup_printf("--secret-file=%s", sf);
    const char *secret = "correct horse battery staple";
    const char *const args[] = { sopt, "--auth-all", NULL };
    g_autoptr(GError) err = NULL;
    KonaLinkOptions o = { .timeout_ms = TIMEOUT_MS };
    KonaLink *l;
    Node *n;

    g_assert_true(g_file_set_contents(sf, secret, -1, NULL));
    chmod(sf, 0600);
    n = node_start(args);

    g_assert_null(kona_link_connect(n->unix_addr, TIMEOUT_MS, &err));
    g_assert_error(err, KONA_ERROR, EACCES);
    g_clear_error(&err);
    o.secret = "wrong horse battery staple!";
    o.secret_len = strlen(o.secret);
    g_assert_null(kona_link_connect_opts(n->tcp_addr, &o, &err));
    g_assert_error(err, KONA_ERROR, EACCES);
    g_clear_error(&err);
    o.secret = secret;
    o.secret_len = strlen(secret);
    l = kona_link_connect_opts(n->tcp_addr, &o, &err);
    g_assert_no_error(err);
    g_assert_true(kona_link_caps(l) & KONA_CAP_AUTH);
    mn_alloc_slab(l, 4096);
    kona_link_close(l);

    /* ops before AUTH are a protocol violation */
    {
        uint8_t f[KONA_HDR_SIZE + sizeof(KonaHelloReq) + KONA_HDR_SIZE] = { 0 };
        int fd = kona_connect(n->unix_addr, TIMEOUT_MS, &err);
        uint8_t rep[KONA_HDR_SIZE + sizeof(KonaHelloRep)];
        char c;

        kona_hdr_encode(f, KONA_OP_HELLO, 1, 0, sizeof(KonaHelloReq));
        kona_st32(f + 24, KONA_PROTO_MAGIC);
        kona_st16(f + 28, 1);
        kona_hdr_encode(f + 24 + sizeof(KonaHelloReq), KONA_OP_PING, 2, 0, 0);
        g_assert_cmpint(write(fd, f, sizeof(f)), ==, sizeof(f));
        g_assert_cmpint(recv(fd, rep, sizeof(rep), MSG_WAITALL), ==,
                        sizeof(rep));
        g_assert_cmpint(kona_ld16(rep + 24 + 6) & KONA_HELLO_F_AUTH_REQUIRED,
                        !=, 0);
        g_assert_cmpint(recv(fd, &c, 1, 0), ==, 0);
        close(fd);
    }
    mn_node_free(n);
    mn_rm_rf(dir);
}

/* A non-loopback listener without a secret is refused at startup. */
static void test_cli(void)
{
    g_autofree char *out = NULL, *errs = NULL;
    const char *bin = mn_memnode_bin();
    int st;
    char *argv[] = { (char *)bin, (char *)"--help", NULL };
    char *argv2[] = { (char *)bin, (char *)"--listen=tcp:0.0.0.0:0", NULL };
    char *argv3[] = { (char *)bin, (char *)"--capacity=lots", NULL };
    char *argv4[] = { (char *)bin, (char *)"--listen=udp:x", NULL };

    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &errs, &st, NULL));
    g_assert_true(g_spawn_check_wait_status(st, NULL));
    g_assert_nonnull(strstr(out, "--data-dir"));
    g_assert_nonnull(strstr(out, "--ready-fd"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&errs, g_free);
    g_assert_true(g_spawn_sync(NULL, argv2, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &errs, &st, NULL));
    g_assert_false(g_spawn_check_wait_status(st, NULL));
    g_assert_nonnull(strstr(errs, "--secret-file"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&errs, g_free);
    g_assert_true(g_spawn_sync(NULL, argv3, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &errs, &st, NULL));
    g_assert_false(g_spawn_check_wait_status(st, NULL));
    g_assert_nonnull(strstr(errs, "bad size 'lots'"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&errs, g_free);
    g_assert_true(g_spawn_sync(NULL, argv4, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &errs, &st, NULL));
    g_assert_false(g_spawn_check_wait_status(st, NULL));
    g_assert_nonnull(strstr(errs, "bad address 'udp:x'"));
}

/* SIGTERM: exit 0, socket file removed, clients see end of stream. */
static void test_sigterm(void)
{
    Node *n = node_start(NULL);
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(kona_link_ping(l, &err), ==, 0);
    g_assert_cmpint(mn_proc_stop(n->proc), ==, 0);
    g_assert_false(g_file_test(n->unix_addr + 5, G_FILE_TEST_EXISTS));
    g_assert_cmpint(kona_link_ping(l, &err), <, 0);
    mn_node_free(n);
}

static void test_stats(void)
{
    Node *n = node_start((const char *const[]){ "--capacity=64M", NULL });
    g_autoptr(KonaLink) l = mn_link_to(n->unix_addr);
    g_autoptr(GError) err = NULL;
    uint64_t slab = mn_alloc_slab(l, 1 << 20), mask = 0x0F;
    uint8_t buf[4096] = { 0 };
    KonaMemnodeStats st;

    g_assert_cmpint(kona_link_write_lines(l, slab, 0, 1, &mask, buf, &err),
                    ==, 0);
    g_assert_cmpint(kona_link_read(l, slab, 0, buf, 4096, &err), ==, 0);
    g_assert_cmpint(kona_link_ping_data(l, "hello", 5, &err), ==, 0);
    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    g_assert_cmpuint(st.lines_written, ==, 4);
    g_assert_cmpuint(st.bytes_written, ==, 256);
    g_assert_cmpuint(st.bytes_read, ==, 4096);
    g_assert_cmpuint(st.reads, ==, 1);
    g_assert_cmpuint(st.writes, ==, 1);
    g_assert_cmpuint(st.slabs, ==, 1);
    g_assert_cmpuint(st.slab_bytes, ==, 1 << 20);
    g_assert_cmpuint(st.capacity, ==, 64 << 20);
    g_assert_cmpuint(st.clients, ==, 1);
    mn_node_free(n);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/memnode/roundtrip/unix", test_roundtrip_unix);
    g_test_add_func("/memnode/roundtrip/tcp", test_roundtrip_tcp);
    g_test_add_func("/memnode/only-masked-lines", test_only_masked_lines);
    g_test_add_func("/memnode/pipeline", test_pipeline);
    g_test_add_func("/memnode/pipeline-large", test_pipeline_large);
    g_test_add_func("/memnode/pipeline-slow-reader",
                    test_pipeline_slow_reader);
    g_test_add_func("/memnode/concurrent/unix", test_concurrent_unix);
    g_test_add_func("/memnode/concurrent/tcp", test_concurrent_tcp);
    g_test_add_func("/memnode/isolation", test_isolation);
    g_test_add_func("/memnode/malformed", test_malformed);
    g_test_add_func("/memnode/zero", test_zero);
    g_test_add_func("/memnode/zero-in-steps", test_zero_in_steps);
    g_test_add_func("/memnode/greedy-client", test_greedy_client);
    g_test_add_func("/memnode/handshake-timeout", test_handshake_timeout);
    g_test_add_func("/memnode/persistence", test_persistence);
    g_test_add_func("/memnode/restart-anonymous", test_restart_anonymous);
    g_test_add_func("/memnode/linger", test_linger);
    g_test_add_func("/memnode/limits", test_limits);
    g_test_add_func("/memnode/timeout-reconnect", test_timeout_reconnect);
    g_test_add_func("/memnode/connect-errors", test_connect_errors);
    g_test_add_func("/memnode/dribble-timeout", test_dribble_timeout);
    g_test_add_func("/memnode/auth", test_auth);
    g_test_add_func("/memnode/auth-downgrade", test_auth_downgrade);
    g_test_add_func("/memnode/cli", test_cli);
    g_test_add_func("/memnode/sigterm", test_sigterm);
    g_test_add_func("/memnode/stats", test_stats);
    return g_test_run();
}

/*
 * Unit tests: framing, payload decoders, the line-mask codec, the output
 * queue, placement, addresses, sizes and auth MACs.  No processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kona-auth.h"
#include "kona-lines.h"
#include "kona-outq.h"
#include "kona-proto.h"
#include "kona-sock.h"
#include "kona-util.h"
#include "memnode-slab.h"
#include "mn-testutil.h"
#include "rackctl-place.h"

/* ---- framing ---- */

static void test_hdr_roundtrip(void)
{
    uint8_t b[KONA_HDR_SIZE];
    KonaHdr h;

    kona_hdr_encode(b, KONA_OP_READ | KONA_OP_REPLY, 0x0123456789abcdefull,
                    -EACCES, 0xdeadbeef);
    /* little endian on the wire, whatever the host */
    g_assert_cmphex(b[0], ==, 0xef);
    g_assert_cmphex(b[3], ==, 0xde);
    g_assert_cmphex(b[4], ==, 0x20);
    g_assert_cmphex(b[5], ==, 0x80);
    g_assert_cmphex(b[8], ==, 0xef);
    g_assert_cmphex(b[15], ==, 0x01);
    kona_hdr_decode(b, &h);
    g_assert_cmpuint(h.len, ==, 0xdeadbeef);
    g_assert_cmpuint(h.op, ==, KONA_OP_READ | KONA_OP_REPLY);
    g_assert_cmpuint(h.req_id, ==, 0x0123456789abcdefull);
    g_assert_cmpint(h.status, ==, -EACCES);
    g_assert_cmpuint(h.flags, ==, 0);
    g_assert_cmpuint(h.reserved, ==, 0);
}

static const char *check_req(uint16_t op, uint32_t len)
{
    KonaHdr h = { .len = len, .op = op, .req_id = 1 };
    return kona_check_request_hdr(&h);
}

static void test_request_hdr_checks(void)
{
    KonaHdr h = { .len = 0, .op = KONA_OP_PING, .req_id = 1 };

    g_assert_null(check_req(KONA_OP_PING, 0));
    g_assert_null(check_req(KONA_OP_PING, KONA_MAX_PING));
    g_assert_nonnull(check_req(KONA_OP_PING, KONA_MAX_PING + 1));
    g_assert_null(check_req(KONA_OP_READ, 24));
    g_assert_nonnull(check_req(KONA_OP_READ, 23));
    g_assert_nonnull(check_req(KONA_OP_READ, 25));
    g_assert_null(check_req(KONA_OP_HELLO, 48));
    g_assert_nonnull(check_req(KONA_OP_HELLO, 47));
    g_assert_nonnull(check_req(KONA_OP_FLUSH, 1));
    g_assert_nonnull(check_req(KONA_OP_WRITE_LINES, 24));
    g_assert_null(check_req(KONA_OP_WRITE_LINES, 32));
    g_assert_null(check_req(KONA_OP_WRITE_LINES, 24 + 8 * 256 + (1 << 20)));
    g_assert_nonnull(check_req(KONA_OP_WRITE_LINES,
                               24 + 8 * 256 + (1 << 20) + 1));
    g_assert_nonnull(check_req(KONA_OP_SLAB_ATTACH, 16));
    g_assert_null(check_req(KONA_OP_SLAB_ATTACH, 17));
    g_assert_nonnull(check_req(0x99, 0));
    g_assert_nonnull(check_req(0, 0));
    g_assert_nonnull(check_req(KONA_OP_PING | KONA_OP_REPLY, 0));
    g_assert_nonnull(check_req(KONA_OP_PING, UINT32_MAX));
    h.req_id = 0;
    g_assert_nonnull(kona_check_request_hdr(&h));
    h.req_id = 1;
    h.flags = 1;
    g_assert_nonnull(kona_check_request_hdr(&h));
    h.flags = 0;
    h.status = -1;
    g_assert_nonnull(kona_check_request_hdr(&h));
    h.status = 0;
    h.reserved = 1;
    g_assert_nonnull(kona_check_request_hdr(&h));
}

static void test_reply_hdr_checks(void)
{
    KonaHdr h = { .op = KONA_OP_READ | KONA_OP_REPLY, .req_id = 1,
                  .len = 4096 };

    g_assert_null(kona_check_reply_hdr(&h, KONA_OP_READ));
    g_assert_nonnull(kona_check_reply_hdr(&h, KONA_OP_PING + 1));
    h.len = KONA_MAX_IO + 1;
    g_assert_nonnull(kona_check_reply_hdr(&h, KONA_OP_READ));
    h.status = -EIO;
    h.len = KONA_MAX_ERRMSG;
    g_assert_null(kona_check_reply_hdr(&h, KONA_OP_READ));
    h.len = KONA_MAX_ERRMSG + 1;
    g_assert_nonnull(kona_check_reply_hdr(&h, KONA_OP_READ));
    h.status = 5;
    h.len = 0;
    g_assert_nonnull(kona_check_reply_hdr(&h, KONA_OP_READ));
    h = (KonaHdr){ .op = KONA_OP_SLAB_ALLOC | KONA_OP_REPLY, .len = 40 };
    g_assert_null(kona_check_reply_hdr(&h, KONA_OP_SLAB_ALLOC));
    h.len = 39;
    g_assert_nonnull(kona_check_reply_hdr(&h, KONA_OP_SLAB_ALLOC));
}

static void test_decode_write_lines(void)
{
    uint8_t p[24 + 16 + 3 * 64] = { 0 };
    KonaWriteLinesReq req;
    const uint8_t *masks, *data;

    kona_st64(p, 7);
    kona_st64(p + 8, 8192);
    kona_st32(p + 16, 2);
    kona_st64(p + 24, 0x3);                 /* 2 lines */
    kona_st64(p + 32, 1ull << 63);          /* 1 line */
    g_assert_null(kona_decode_write_lines_req(p, sizeof(p), &req, &masks,
                                              &data));
    g_assert_cmpuint(req.slab_id, ==, 7);
    g_assert_cmpuint(req.npages, ==, 2);
    g_assert_true(masks == p + 24);
    g_assert_true(data == p + 40);
    /* data one line short or long */
    g_assert_nonnull(kona_decode_write_lines_req(p, sizeof(p) - 64, &req,
                                                 &masks, &data));
    g_assert_nonnull(kona_decode_write_lines_req(p, sizeof(p) - 1, &req,
                                                 &masks, &data));
    /* masks cut off */
    g_assert_nonnull(kona_decode_write_lines_req(p, 30, &req, &masks, &data));
    /* unaligned block */
    kona_st64(p + 8, 8191);
    g_assert_nonnull(kona_decode_write_lines_req(p, sizeof(p), &req, &masks,
                                                 &data));
    kona_st64(p + 8, 8192);
    /* zero pages, too many pages */
    kona_st32(p + 16, 0);
    g_assert_nonnull(kona_decode_write_lines_req(p, sizeof(p), &req, &masks,
                                                 &data));
    kona_st32(p + 16, KONA_MAX_WRITE_PAGES + 1);
    g_assert_nonnull(kona_decode_write_lines_req(p, sizeof(p), &req, &masks,
                                                 &data));
    kona_st32(p + 16, 2);
    kona_st32(p + 20, 1);
    g_assert_nonnull(kona_decode_write_lines_req(p, sizeof(p), &req, &masks,
                                                 &data));
}

static void test_decode_misc(void)
{
    uint8_t p[64] = { 0 };
    KonaReadReq rd;
    KonaSlabAttachReq at;
    KonaSlabGenReq gen;
    KonaZeroReq zero;
    KonaHelloReq hi;
    const uint8_t *key;
    const char *name;

    kona_st64(p, 1);
    kona_st64(p + 8, 100);
    kona_st32(p + 16, 4096);
    g_assert_null(kona_decode_read_req(p, 24, &rd));
    kona_st32(p + 16, 0);
    g_assert_nonnull(kona_decode_read_req(p, 24, &rd));
    kona_st32(p + 16, KONA_MAX_IO + 1);
    g_assert_nonnull(kona_decode_read_req(p, 24, &rd));

    memset(p, 0, sizeof(p));
    kona_st16(p + 8, 5);
    memcpy(p + 16, "vm-01", 5);
    g_assert_null(kona_decode_slab_attach_req(p, 21, &at, &key, &name));
    g_assert_cmpmem(name, 5, "vm-01", 5);
    g_assert_null(key);
    g_assert_nonnull(kona_decode_slab_attach_req(p, 22, &at, &key, &name));
    memcpy(p + 16, "vm/01", 5);
    g_assert_nonnull(kona_decode_slab_attach_req(p, 21, &at, &key, &name));
    memcpy(p + 16, ".hide", 5);
    g_assert_nonnull(kona_decode_slab_attach_req(p, 21, &at, &key, &name));
    /* with a key: 16 bytes before the name */
    kona_st16(p + 10, KONA_ATTACH_F_KEY | KONA_ATTACH_F_EXCLUSIVE);
    memset(p + 16, 0xab, KONA_KEY_SIZE);
    memcpy(p + 32, "vm-01", 5);
    g_assert_null(kona_decode_slab_attach_req(p, 37, &at, &key, &name));
    g_assert_true(key == p + 16);
    g_assert_cmpmem(name, 5, "vm-01", 5);
    g_assert_nonnull(kona_decode_slab_attach_req(p, 21, &at, &key, &name));
    g_assert_nonnull(kona_decode_slab_attach_req(p, 36, &at, &key, &name));
    kona_st16(p + 10, 0x8);         /* unknown flag */
    g_assert_nonnull(kona_decode_slab_attach_req(p, 37, &at, &key, &name));
    /* SLAB_GEN */
    kona_st64(p, 7);
    kona_st64(p + 8, 42);
    g_assert_null(kona_decode_slab_gen_req(p, 16, &gen));
    g_assert_cmpuint(gen.slab_id, ==, 7);
    g_assert_cmpuint(gen.set, ==, 42);
    g_assert_nonnull(kona_decode_slab_gen_req(p, 8, &gen));
    /* ZERO: page-aligned, not empty, not wrapping */
    kona_st64(p, 7);
    kona_st64(p + 8, 8192);
    kona_st64(p + 16, 4096);
    g_assert_null(kona_decode_zero_req(p, 24, &zero));
    g_assert_cmpuint(zero.offset, ==, 8192);
    g_assert_cmpuint(zero.len, ==, 4096);
    g_assert_nonnull(kona_decode_zero_req(p, 16, &zero));
    kona_st64(p + 8, 8193);
    g_assert_nonnull(kona_decode_zero_req(p, 24, &zero));
    kona_st64(p + 8, 0);
    kona_st64(p + 16, 0);
    g_assert_nonnull(kona_decode_zero_req(p, 24, &zero));
    kona_st64(p + 8, KONA_MAX_SLAB_SIZE);
    kona_st64(p + 16, 4096);
    g_assert_nonnull(kona_decode_zero_req(p, 24, &zero));
    kona_st64(p + 8, 4096);
    kona_st64(p + 16, UINT64_MAX & ~4095ull);
    g_assert_nonnull(kona_decode_zero_req(p, 24, &zero));

    memset(p, 0, sizeof(p));
    kona_st32(p, KONA_PROTO_MAGIC);
    kona_st16(p + 4, 1);
    g_assert_null(kona_decode_hello_req(p, 48, &hi));
    kona_st32(p, 0x12345678);
    g_assert_nonnull(kona_decode_hello_req(p, 48, &hi));

    g_assert_true(kona_name_valid("a", 1));
    g_assert_false(kona_name_valid("", 0));
    g_assert_false(kona_name_valid("a b", 3));
    g_assert_cmpstr(kona_op_name(KONA_OP_WRITE_LINES | KONA_OP_REPLY), ==,
                    "WRITE_LINES");
    g_assert_cmpstr(kona_op_name(0x4242), ==, "?");
}

/* ---- line-mask codec ---- */

/* The obvious byte-by-byte reference. */
static size_t ref_pack(const uint8_t *page, uint64_t mask, uint8_t *out)
{
    size_t n = 0;

    for (int j = 0; j < 64; j++) {
        if (mask & (1ull << j)) {
            for (int b = 0; b < 64; b++) {
                out[n++] = page[j * 64 + b];
            }
        }
    }
    return n;
}

static void test_lines_codec(void)
{
    static uint8_t page[4096], packed[4096], ref[4096], out[4096];
    GRand *r = g_rand_new_with_seed(7);
    const uint64_t special[] = { 0, ~0ull, 1, 1ull << 63, 0x5555555555555555ull,
                                 0xF00000000000000Full, 0x00FFFF0000FFFF00ull };

    mn_fill(page, sizeof(page), 1);
    for (int i = 0; i < 3000; i++) {
        uint64_t mask = i < (int)G_N_ELEMENTS(special) ? special[i] :
                        ((uint64_t)g_rand_int(r) << 32 | g_rand_int(r)) &
                        (i % 2 ? ~0ull : (uint64_t)g_rand_int(r) << 32);
        size_t n = kona_lines_pack(page, mask, packed);
        size_t rn = ref_pack(page, mask, ref);

        g_assert_cmpuint(n, ==, rn);
        g_assert_cmpuint(n, ==, kona_lines_count(mask) * 64u);
        g_assert_cmpmem(packed, n, ref, rn);
        /* unpack into a different page: masked lines copied, rest kept */
        memset(out, 0xEE, sizeof(out));
        g_assert_cmpuint(kona_lines_unpack(out, mask, packed), ==, n);
        for (int j = 0; j < 64; j++) {
            if (mask & (1ull << j)) {
                g_assert_cmpmem(out + 64 * j, 64, page + 64 * j, 64);
            } else {
                for (int b = 0; b < 64; b++) {
                    g_assert_cmphex(out[64 * j + b], ==, 0xEE);
                }
            }
        }
        /* copy page to page: the same lines, the rest kept */
        memset(ref, 0xEE, sizeof(ref));
        kona_lines_copy(ref, page, mask);
        g_assert_cmpmem(ref, sizeof(ref), out, sizeof(out));
        /* diff finds exactly the lines that changed */
        memset(out, 0xEE, sizeof(out));
        memcpy(ref, out, sizeof(out));
        kona_lines_unpack(ref, mask, packed);
        g_assert_cmphex(kona_lines_diff(out, ref), ==,
                        kona_lines_diff(out, ref) & mask);
    }
    g_rand_free(r);
}

static void test_lines_pages(void)
{
    static uint8_t pages[8 * 4096], back[8 * 4096], packed[8 * 4096];
    uint64_t masks[8] = { 0, ~0ull, 1, 3, 1ull << 40, 0, 0xFF00, ~1ull };
    size_t n;

    mn_fill(pages, sizeof(pages), 3);
    n = kona_lines_pack_pages(pages, masks, 8, packed);
    g_assert_cmpuint(n, ==, kona_lines_bytes(masks, 8));
    g_assert_cmpuint(n, ==, (64 + 1 + 2 + 1 + 8 + 63) * 64u);
    memset(back, 0, sizeof(back));
    g_assert_cmpuint(kona_lines_unpack_pages(back, masks, 8, packed), ==, n);
    for (int p = 0; p < 8; p++) {
        g_assert_cmphex(kona_lines_diff(back + p * 4096, pages + p * 4096) &
                        masks[p], ==, 0);
    }
    /* the first page (mask 0) untouched */
    g_assert_cmphex(back[0], ==, 0);
    g_assert_cmphex(kona_lines_diff(pages, pages), ==, 0);
}

/* ---- output queue ---- */

static void test_outq(void)
{
    KonaOutq q;
    KonaOutTag tag = { G_QUEUE_INIT };
    int sv[2];
    static uint8_t ext[100000], got[300000];
    size_t total = 0, rcvd = 0;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    kona_set_nonblock(sv[0], true);
    kona_outq_init(&q, 1024);
    mn_fill(ext, sizeof(ext), 11);
    /* small pieces coalesce in the arena, big ones get their own block,
     * external memory is referenced */
    for (int i = 0; i < 200; i++) {
        uint8_t *p = kona_outq_reserve(&q, 24);
        memset(p, i, 24);
        total += 24;
        if (i % 10 == 0) {
            kona_outq_put_ext(&q, &tag, ext + i * 100, 1000);
            total += 1000;
        }
    }
    g_assert_cmpuint(q.bytes, ==, total);
    g_assert_cmpuint(q.n_ext, ==, 20);
    /* detach: the queue now carries its own copy */
    kona_outq_detach(&tag, ext, ext + 500);
    g_assert_cmpuint(q.n_ext, ==, 19);      /* only the first overlaps */
    g_assert_cmpuint(tag.refs.length, ==, 19);
    memset(ext, 0, 500);
    kona_outq_detach(&tag, NULL, NULL);
    g_assert_cmpuint(q.n_ext, ==, 0);
    g_assert_cmpuint(tag.refs.length, ==, 0);
    while (!kona_outq_empty(&q) || rcvd < total) {
        int r = kona_outq_flush(&q, sv[0]);
        ssize_t n;

        g_assert_cmpint(r, >=, 0);
        n = read(sv[1], got + rcvd, sizeof(got) - rcvd);
        g_assert_cmpint(n, >, 0);
        rcvd += (size_t)n;
    }
    g_assert_cmpuint(rcvd, ==, total);
    /* first piece: 24 bytes of 0, then ext[0..1000) as it was at detach */
    g_assert_cmphex(got[0], ==, 0);
    {
        uint8_t orig[1000];
        mn_fill(ext, sizeof(ext), 11);
        memcpy(orig, ext, sizeof(orig));
        g_assert_cmpmem(got + 24, 1000, orig, 1000);
    }
    /* arena wrap-around: many small replies through a tiny arena */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 7; i++) {
            memset(kona_outq_reserve(&q, 100), round, 100);
            kona_outq_put_ext(&q, &tag, ext, 1);    /* breaks coalescing */
        }
        g_assert_cmpint(kona_outq_flush(&q, sv[0]), ==, 0);
        g_assert_cmpint(read(sv[1], got, sizeof(got)), ==, 7 * 101);
        g_assert_cmphex(got[0], ==, round);
        g_assert_cmphex(got[7 * 101 - 2], ==, round);
    }
    g_assert_cmpuint(kona_outq_cost(&q), ==, 0);
    kona_outq_destroy(&q);
    close(sv[0]);
    close(sv[1]);
}

/*
 * The cost covers what a queue really holds: entries, allocations and
 * references, not only bytes; a detach finds a tag's references in every
 * queue and nothing else.
 */
static void test_outq_cost(void)
{
    KonaOutq a, b;
    KonaOutTag t1 = { G_QUEUE_INIT }, t2 = { G_QUEUE_INIT };
    static uint8_t m1[4096], m2[4096];
    KonaHdr h = { .op = KONA_OP_READ, .req_id = 1 };

    kona_outq_init(&a, 1024);
    kona_outq_init(&b, 1024);
    /* 10000 one-byte replies referenced: far more than 10000 bytes */
    for (int i = 0; i < 10000; i++) {
        kona_outq_reply(&a, &h, 0);
        kona_outq_put_ext(&a, i & 1 ? &t1 : &t2, (i & 1 ? m1 : m2) + i % 4096,
                          1);
    }
    g_assert_cmpuint(a.bytes, ==, 10000 * 25);
    g_assert_cmpuint(kona_outq_cost(&a), >=,
                     a.bytes + 10000 * (sizeof(KonaOutEnt) + 32));
    g_assert_cmpuint(a.cap, >=, a.count);
    /* the same references in a second queue */
    kona_outq_put_ext(&b, &t1, m1, 100);
    kona_outq_put_ext(&b, &t2, m2 + 200, 100);
    g_assert_cmpuint(t1.refs.length, ==, 5001);
    /* detach by range: only t1's refs that overlap, in both queues */
    kona_outq_detach(&t1, m1, m1 + 50);
    g_assert_cmpuint(b.n_ext, ==, 1);
    g_assert_cmpuint(t2.refs.length, ==, 5001);
    kona_outq_detach(&t1, NULL, NULL);
    g_assert_cmpuint(t1.refs.length, ==, 0);
    g_assert_cmpuint(a.n_ext, ==, 5000);
    /* dropping the queue drops its references from the tags */
    kona_outq_clear(&a);
    g_assert_cmpuint(kona_outq_cost(&a), ==, 0);
    g_assert_cmpuint(a.cap, ==, 64);        /* the long ring went back */
    g_assert_cmpuint(t2.refs.length, ==, 1);
    kona_outq_destroy(&b);
    g_assert_cmpuint(t2.refs.length, ==, 0);
    kona_outq_destroy(&a);
}

/* Build a WROTE_LINES payload of @n ranges of @pages pages each. */
static uint32_t wrote_payload(uint8_t *p, uint32_t n, uint32_t pages,
                              uint64_t off)
{
    uint8_t *r = p + sizeof(KonaWroteLinesReq);

    kona_st32(p, n);
    kona_st32(p + 4, 0);
    for (uint32_t i = 0; i < n; i++, r += sizeof(KonaWroteRange)) {
        kona_st64(r, i + 1);
        kona_st64(r + 8, off);
        kona_st32(r + 16, pages);
        kona_st32(r + 20, 0);
    }
    memset(r, 0xff, 8ull * n * pages);
    return (uint32_t)(r - p) + 8 * n * pages;
}

static void test_decode_wrote_lines(void)
{
    static uint8_t p[KONA_MAX_PAYLOAD];
    KonaWroteLinesReq req;
    KonaWroteRange r;
    const uint8_t *masks;
    uint32_t len;
    KonaHdr h = { .op = KONA_OP_WROTE_LINES, .req_id = 1 };

    len = wrote_payload(p, 3, 2, 8192);
    g_assert_null(kona_decode_wrote_lines_req(p, len, &req, &masks));
    g_assert_cmpuint(req.nranges, ==, 3);
    g_assert_true(masks == p + 8 + 3 * 24);
    kona_wrote_range(p, 2, &r);
    g_assert_cmpuint(r.slab_id, ==, 3);
    g_assert_cmpuint(r.block_off, ==, 8192);
    g_assert_cmpuint(r.npages, ==, 2);
    /* exact length only */
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len - 8, &req, &masks));
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len + 8, &req, &masks));
    /* no ranges */
    kona_st32(p, 0);
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len, &req, &masks));
    /* unaligned offset, zero pages, reserved bits */
    len = wrote_payload(p, 1, 1, 100);
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len, &req, &masks));
    len = wrote_payload(p, 1, 1, 0);
    kona_st32(p + 8 + 16, 0);
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len - 8, &req, &masks));
    len = wrote_payload(p, 1, 1, 0);
    kona_st32(p + 8 + 20, 1);
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len, &req, &masks));
    /* the page limit over all ranges, and the header bound that goes
     * with it */
    len = wrote_payload(p, 2, KONA_MAX_NOTE_PAGES / 2, 0);
    g_assert_null(kona_decode_wrote_lines_req(p, len, &req, &masks));
    h.len = len;
    g_assert_null(kona_check_request_hdr(&h));
    len = wrote_payload(p, 2, KONA_MAX_NOTE_PAGES / 2 + 1, 0);
    g_assert_nonnull(kona_decode_wrote_lines_req(p, len, &req, &masks));
    h.len = sizeof(KonaWroteLinesReq) +
            (sizeof(KonaWroteRange) + 8) * KONA_MAX_NOTE_PAGES + 1;
    g_assert_nonnull(kona_check_request_hdr(&h));
    h.len = 8 + 24;
    g_assert_nonnull(kona_check_request_hdr(&h));
}

/* A descriptor rides with its reply's first byte; unsent ones are closed. */
static void test_outq_fd(void)
{
    KonaOutq q;
    KonaHdr h = { .op = KONA_OP_SLAB_MAP, .req_id = 7 };
    int sv[2], p[2], fd_sent, fd_unsent;
    uint8_t got[256];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    struct iovec iov = { .iov_base = got, .iov_len = sizeof(got) };
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
    };
    struct cmsghdr *c;
    struct stat st;
    ssize_t n;
    int rfd;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    g_assert_cmpint(pipe(p), ==, 0);
    fd_sent = p[0];
    fd_unsent = p[1];
    kona_outq_init(&q, 1024);
    /* a reply before it, the one with the descriptor, one after */
    memset(kona_outq_reply(&q, &h, 8), 1, 8);
    memset(kona_outq_reply_fd(&q, &h, 24, fd_sent), 2, 24);
    memset(kona_outq_reply(&q, &h, 8), 3, 8);
    g_assert_cmpuint(q.n_fds, ==, 1);
    g_assert_cmpint(kona_outq_flush(&q, sv[0]), ==, 0);
    g_assert_cmpuint(q.n_fds, ==, 0);
    /* our copy is closed once sent */
    g_assert_cmpint(fcntl(fd_sent, F_GETFD), ==, -1);
    g_assert_cmpint(errno, ==, EBADF);
    /*
     * One recvmsg may return the bytes before the descriptor's too: the
     * client pairs descriptors with SLAB_MAP replies, not with bytes.
     */
    n = recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC);
    g_assert_cmpint(n, ==, 3 * KONA_HDR_SIZE + 8 + 24 + 8);
    g_assert_cmphex(got[KONA_HDR_SIZE], ==, 1);
    g_assert_cmphex(got[2 * KONA_HDR_SIZE + 8], ==, 2);
    c = CMSG_FIRSTHDR(&m);
    g_assert_nonnull(c);
    g_assert_cmpint(c->cmsg_type, ==, SCM_RIGHTS);
    g_assert_cmpuint(c->cmsg_len, ==, CMSG_LEN(sizeof(int)));
    memcpy(&rfd, CMSG_DATA(c), sizeof(int));
    g_assert_cmpint(fstat(rfd, &st), ==, 0);
    g_assert_true(S_ISFIFO(st.st_mode));
    close(rfd);
    /* a queue cleared before sending closes the descriptor it owns */
    kona_outq_reply_fd(&q, &h, 24, fd_unsent);
    kona_outq_destroy(&q);
    g_assert_cmpint(fcntl(fd_unsent, F_GETFD), ==, -1);
    close(sv[0]);
    close(sv[1]);
}

/* ---- slab store ---- */

/* An anonymous slab is a sealed memfd: it can neither shrink nor grow. */
static void test_slab_memfd(void)
{
    g_autoptr(GError) err = NULL;
    MnSlabStore *st = mn_store_new(1 << 30, NULL, 0, &err);
    MnSlab *s = mn_store_alloc(st, 1 << 20, NULL, NULL, &err);
    int seals;

    g_assert_no_error(err);
    g_assert_nonnull(s);
    seals = fcntl(s->fd, F_GET_SEALS);
    g_assert_cmpint(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), ==,
                    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    g_assert_cmpint(ftruncate(s->fd, 4096), ==, -1);
    g_assert_cmpint(ftruncate(s->fd, 2 << 20), ==, -1);
    s->mem[12345] = 7;
    {
        /* the descriptor and the node's mapping are the same memory */
        uint8_t b = 0;
        g_assert_cmpint(pread(s->fd, &b, 1, 12345), ==, 1);
        g_assert_cmpuint(b, ==, 7);
    }
    mn_slab_ref(st, s);
    mn_slab_unref(st, s);       /* linger 0: destroyed */
    g_assert_cmpuint(st->used, ==, 0);
    mn_store_free(st);
}

/* A freed slab someone mapped stays in use until the last mapper goes. */
static void test_slab_map_accounting(void)
{
    g_autoptr(GError) err = NULL;
    MnSlabStore *st = mn_store_new(1 << 30, NULL, 60000, &err);
    MnSlab *a = mn_store_alloc(st, 1 << 20, NULL, NULL, &err);
    MnSlab *b;

    mn_slab_ref(st, a);
    mn_slab_map_ref(st, a);
    mn_slab_map_ref(st, a);     /* a second connection */
    g_assert_cmpuint(st->mapped_slabs, ==, 1);
    mn_store_destroy(st, a);
    mn_slab_unref(st, a);
    g_assert_cmpuint(st->used, ==, 1 << 20);
    g_assert_null(mn_store_lookup(st, a->id));
    /* the capacity it holds is really not available */
    st->capacity = 3 << 20;
    b = mn_store_alloc(st, 3 << 20, NULL, NULL, &err);
    g_assert_null(b);
    g_assert_error(err, KONA_ERROR, ENOSPC);
    g_clear_error(&err);
    mn_slab_map_unref(st, a);
    g_assert_cmpuint(st->used, ==, 1 << 20);
    mn_slab_map_unref(st, a);   /* frees the struct too */
    g_assert_cmpuint(st->used, ==, 0);
    g_assert_cmpuint(st->mapped_slabs, ==, 0);
    b = mn_store_alloc(st, 3 << 20, NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(b);
    mn_store_free(st);
}

/*
 * A failed msync is reported by that FLUSH and by the next one, and the
 * range is retried, not forgotten.  The failure is a real one: msync of a
 * range that is not mapped fails with ENOMEM.
 */
static void test_slab_sync_error(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = mn_tmpdir();
    MnSlabStore *st = mn_store_new(1 << 30, dir, 0, &err);
    MnSlab *s = mn_store_alloc(st, 1 << 20, NULL, NULL, &err);
    void *m;

    g_assert_no_error(err);
    s->mem[8192] = 42;
    mn_slab_dirty(s, 8192, 4096);
    g_assert_cmpint(mn_slab_sync(st, s, false), ==, 0);
    g_assert_cmpuint(s->dirty_hi, ==, 0);

    s->mem[8192] = 43;
    mn_slab_dirty(s, 8192, 4096);
    g_assert_cmpint(munmap(s->mem, s->size), ==, 0);
    g_assert_cmpint(mn_slab_sync(st, s, false), ==, -ENOMEM);
    /* the range is still to be synced */
    g_assert_cmpuint(s->dirty_hi, ==, 8192 + 4096);
    m = mmap(s->mem, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
             s->fd, 0);
    g_assert_true(m == s->mem);
    /* the retry works, but the failure is reported once more */
    g_assert_cmpint(mn_slab_sync(st, s, false), ==, -ENOMEM);
    g_assert_cmpuint(s->dirty_hi, ==, 0);
    g_assert_cmpint(mn_slab_sync(st, s, false), ==, 0);
    /* the whole-file sync of a mapped slab fails the same way */
    g_assert_cmpint(mn_slab_sync(st, s, true), ==, 0);
    mn_store_free(st);
    mn_rm_rf(dir);
}

/* A data-directory slab is allocated in full: no holes, no later SIGBUS. */
static void test_slab_file_allocated(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = mn_tmpdir();
    MnSlabStore *st = mn_store_new(1 << 30, dir, 0, &err);
    MnSlab *s = mn_store_alloc(st, 4 << 20, NULL, NULL, &err);
    struct stat sb;

    g_assert_no_error(err);
    g_assert_cmpint(fstat(s->fd, &sb), ==, 0);
    g_assert_cmpint((int64_t)sb.st_blocks * 512, >=, 4 << 20);
    mn_store_free(st);
    mn_rm_rf(dir);
}

/* ---- placement ---- */

static void test_place(void)
{
    RcPlaceNode n[3] = { { 16 << 20, true }, { 16 << 20, true },
                         { 16 << 20, false } };
    unsigned of[64], cursor = 0;
    int r;

    r = rc_place(n, 3, 20 << 20, 4 << 20, 64, &cursor, of);
    g_assert_cmpint(r, ==, 5);
    g_assert_cmpuint(of[0], ==, 0);
    g_assert_cmpuint(of[1], ==, 1);
    g_assert_cmpuint(of[2], ==, 0);     /* node 2 is dead */
    g_assert_cmpuint(n[0].free, ==, 4 << 20);
    g_assert_cmpuint(n[1].free, ==, 8 << 20);
    /* does not fit: nothing charged */
    r = rc_place(n, 3, 16 << 20, 4 << 20, 64, &cursor, of);
    g_assert_cmpint(r, ==, -ENOSPC);
    g_assert_cmpuint(n[0].free, ==, 4 << 20);
    g_assert_cmpuint(n[1].free, ==, 8 << 20);
    /* round-robin resumes after the last node used; a short last stripe
     * fits where a full one would not */
    r = rc_place(n, 3, 9 << 20, 4 << 20, 64, &cursor, of);
    g_assert_cmpint(r, ==, 3);
    g_assert_cmpuint(of[0], ==, 1);
    g_assert_cmpuint(of[1], ==, 0);
    g_assert_cmpuint(of[2], ==, 1);
    g_assert_cmpuint(n[0].free, ==, 0);
    g_assert_cmpuint(n[1].free, ==, 3 << 20);
    g_assert_cmpint(rc_place(n, 3, 4 << 20, 4 << 20, 64, &cursor, of), ==,
                    -ENOSPC);
    g_assert_cmpint(rc_place(n, 3, 3 << 20, 4 << 20, 64, &cursor, of), ==, 1);
    g_assert_cmpuint(n[1].free, ==, 0);
    g_assert_cmpint(rc_place(n, 3, 4096, 0, 64, &cursor, of), ==, -EINVAL);
    g_assert_cmpint(rc_place(n, 3, 100, 4096, 64, &cursor, of), ==, -EINVAL);
    g_assert_cmpint(rc_place(n, 3, 65 * 4096, 4096, 64, &cursor, of), ==,
                    -EINVAL);
    g_assert_cmpint(rc_place(n, 0, 4096, 4096, 64, &cursor, of), ==, -ENOSPC);
}

/* ---- addresses, sizes, auth ---- */

static void test_addr(void)
{
    g_autoptr(GError) err = NULL;
    KonaAddr a;

    g_assert_true(kona_addr_parse("unix:/tmp/x.sock", &a, &err));
    g_assert_cmpint(a.kind, ==, KONA_ADDR_UNIX);
    g_assert_cmpstr(a.path, ==, "/tmp/x.sock");
    kona_addr_clear(&a);
    g_assert_true(kona_addr_parse("tcp:127.0.0.1:7077", &a, &err));
    g_assert_cmpstr(a.host, ==, "127.0.0.1");
    g_assert_cmpstr(a.port, ==, "7077");
    kona_addr_clear(&a);
    g_assert_true(kona_addr_parse("tcp:[::1]:0", &a, &err));
    g_assert_cmpstr(a.host, ==, "::1");
    kona_addr_clear(&a);
    g_assert_false(kona_addr_parse("tcp:host", &a, NULL));
    g_assert_false(kona_addr_parse("tcp::80", &a, NULL));
    g_assert_false(kona_addr_parse("tcp:h:70000", &a, NULL));
    g_assert_false(kona_addr_parse("unix:", &a, NULL));
    g_assert_false(kona_addr_parse("udp:h:1", &a, NULL));
}

static void test_sizes(void)
{
    uint64_t v;
    char buf[32];

    g_assert_true(kona_parse_size("4096", &v, NULL));
    g_assert_cmpuint(v, ==, 4096);
    g_assert_true(kona_parse_size("64M", &v, NULL));
    g_assert_cmpuint(v, ==, 64ull << 20);
    g_assert_true(kona_parse_size("2GiB", &v, NULL));
    g_assert_cmpuint(v, ==, 2ull << 30);
    g_assert_true(kona_parse_size("1t", &v, NULL));
    g_assert_cmpuint(v, ==, 1ull << 40);
    g_assert_false(kona_parse_size("", &v, NULL));
    g_assert_false(kona_parse_size("12Q", &v, NULL));
    g_assert_false(kona_parse_size("-1", &v, NULL));
    g_assert_false(kona_parse_size("99999999999999T", &v, NULL));
    g_assert_cmpstr(kona_format_size(64 << 20, buf, sizeof(buf)), ==,
                    "64 MiB");
    g_assert_cmpstr(kona_format_size(4097, buf, sizeof(buf)), ==, "4097 B");
}

static void test_auth_mac(void)
{
    uint8_t sn[KONA_NONCE_SIZE], cn[KONA_NONCE_SIZE];
    uint8_t m1[KONA_MAC_SIZE], m2[KONA_MAC_SIZE], m3[KONA_MAC_SIZE];
    const uint8_t secret[] = "0123456789abcdef";

    mn_fill(sn, sizeof(sn), 1);
    mn_fill(cn, sizeof(cn), 2);
    kona_auth_mac(secret, 16, KONA_AUTH_CLIENT, sn, cn, m1);
    kona_auth_mac(secret, 16, KONA_AUTH_CLIENT, sn, cn, m2);
    g_assert_true(kona_auth_equal(m1, m2, sizeof(m1)));
    /* the server's answer differs from the client's proof */
    kona_auth_mac(secret, 16, KONA_AUTH_SERVER, sn, cn, m3);
    g_assert_false(kona_auth_equal(m1, m3, sizeof(m1)));
    /* any other nonce or secret gives another MAC */
    sn[0] ^= 1;
    kona_auth_mac(secret, 16, KONA_AUTH_CLIENT, sn, cn, m2);
    g_assert_false(kona_auth_equal(m1, m2, sizeof(m1)));
    sn[0] ^= 1;
    kona_auth_mac(secret, 15, KONA_AUTH_CLIENT, sn, cn, m2);
    g_assert_false(kona_auth_equal(m1, m2, sizeof(m1)));
}

static void test_secret_file(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *f = g_build_filename(dir, "s", NULL);
    g_autoptr(GError) err = NULL;
    GBytes *b;

    g_assert_true(g_file_set_contents(f, "short\n", -1, NULL));
    chmod(f, 0600);
    g_assert_null(kona_auth_load_secret(f, &err));
    g_clear_error(&err);
    g_assert_true(g_file_set_contents(f, "a-long-enough-secret\n", -1, NULL));
    chmod(f, 0644);
    g_assert_null(kona_auth_load_secret(f, &err));
    g_assert_nonnull(strstr(err->message, "chmod 600"));
    g_clear_error(&err);
    chmod(f, 0600);
    b = kona_auth_load_secret(f, &err);
    g_assert_nonnull(b);
    g_assert_cmpuint(g_bytes_get_size(b), ==, 20);   /* newline stripped */
    g_bytes_unref(b);
    mn_rm_rf(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proto/hdr-roundtrip", test_hdr_roundtrip);
    g_test_add_func("/proto/request-hdr-checks", test_request_hdr_checks);
    g_test_add_func("/proto/reply-hdr-checks", test_reply_hdr_checks);
    g_test_add_func("/proto/decode-write-lines", test_decode_write_lines);
    g_test_add_func("/proto/decode-misc", test_decode_misc);
    g_test_add_func("/proto/decode-wrote-lines", test_decode_wrote_lines);
    g_test_add_func("/lines/codec", test_lines_codec);
    g_test_add_func("/lines/pages", test_lines_pages);
    g_test_add_func("/outq/basic", test_outq);
    g_test_add_func("/outq/cost", test_outq_cost);
    g_test_add_func("/outq/fd", test_outq_fd);
    g_test_add_func("/slab/memfd-sealed", test_slab_memfd);
    g_test_add_func("/slab/map-accounting", test_slab_map_accounting);
    g_test_add_func("/slab/sync-error-kept", test_slab_sync_error);
    g_test_add_func("/slab/file-allocated", test_slab_file_allocated);
    g_test_add_func("/rack/place", test_place);
    g_test_add_func("/util/addr", test_addr);
    g_test_add_func("/util/sizes", test_sizes);
    g_test_add_func("/auth/mac", test_auth_mac);
    g_test_add_func("/auth/secret-file", test_secret_file);
    return g_test_run();
}

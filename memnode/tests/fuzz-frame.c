/*
 * libFuzzer target: the memnode's frame parser and request dispatch, fed
 * from a buffer instead of a socket, plus the payload decoders the client
 * uses on replies.  Built with clang -fsanitize=fuzzer,address,undefined
 * when available (see meson.build).
 *
 * Input layout: byte 0 selects the mode (bit 0: start with a valid HELLO
 * and SLAB_ALLOC so the fuzzer reaches the data path at once; bit 1: the
 * connection must authenticate; bits 2-7: read chunk size, to exercise
 * frames split across reads); the rest is the byte stream.  The
 * connection counts as a unix socket, so SLAB_MAP hands out (and the
 * queue then closes) real memfd descriptors.
 */
#include <stdint.h>
#include <string.h>

#include "kona-proto.h"
#include "memnode-server.h"

static size_t put_frame(uint8_t *b, uint16_t op, uint64_t id,
                        const uint8_t *p, uint32_t len)
{
    kona_hdr_encode(b, op, id, 0, len);
    memcpy(b + KONA_HDR_SIZE, p, len);
    return KONA_HDR_SIZE + len;
}

/* Process what is buffered, a long request's steps (ZERO) included. */
static bool process(KonaConn *c)
{
    for (;;) {
        if (!kona_conn_process(c)) {
            return false;
        }
        if (!c->busy) {
            return true;
        }
        while (!kona_conn_resume(c)) {
            continue;
        }
    }
}

static bool feed(KonaConn *c, const uint8_t *data, size_t size, size_t chunk)
{
    while (size) {
        size_t space, n;
        uint8_t *p = kona_conn_in_space(c, &space);

        if (!space) {
            /* input full of frames held back by replies: drop replies */
            kona_outq_clear(&c->out);
            if (!process(c)) {
                return false;
            }
            p = kona_conn_in_space(c, &space);
            if (!space) {
                return true;
            }
        }
        n = MIN(MIN(size, space), chunk);
        memcpy(p, data, n);
        kona_conn_in_commit(c, n);
        data += n;
        size -= n;
        if (!process(c)) {
            return false;
        }
        if (c->out.bytes > (4u << 20) ||
            c->out.n_fds >= KONA_MAX_QUEUED_FDS) {
            kona_outq_clear(&c->out);
        }
    }
    return true;
}

static void fuzz_decoders(const uint8_t *d, size_t n)
{
    uint32_t len = (uint32_t)MIN(n, (size_t)KONA_MAX_PAYLOAD);
    KonaHelloRep hr;
    KonaSlabRep sr;
    KonaSlabMapRep mr;
    KonaWriteLinesReq wr;
    KonaWroteLinesReq wl;
    KonaRackRegisterReq rr;
    KonaRackAllocReq ra;
    KonaSlabAttachReq sa;
    KonaSlabGenReq sg;
    KonaZeroReq zr;
    KonaHdr h;
    const uint8_t *m, *dd;
    const char *s;

    kona_decode_hello_rep(d, len, &hr);
    kona_decode_slab_rep(d, len, &sr);
    kona_decode_write_lines_req(d, len, &wr, &m, &dd);
    kona_decode_slab_map_rep(d, len, &mr);
    kona_decode_wrote_lines_req(d, len, &wl, &m);
    kona_decode_rack_register_req(d, len, &rr, &s);
    kona_decode_rack_alloc_req(d, len, &ra, &m, &s);
    kona_decode_slab_attach_req(d, len, &sa, &m, &s);
    kona_decode_slab_gen_req(d, len, &sg);
    kona_decode_zero_req(d, len, &zr);
    if (n >= KONA_HDR_SIZE) {
        kona_hdr_decode(d, &h);
        kona_check_reply_hdr(&h, d[0] & 0x3f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static GBytes *secret;
    MnConfig cfg = {
        .net = {
            .max_clients = 4,
            .max_handshakes = 4,
            .max_inflight = 2 << 20,
        },
        .capacity = 64 << 20,
        .linger_ms = 0,
        .max_client_slabs = 8,
    };
    uint8_t pre[256];
    size_t npre = 0, chunk;
    MnServer *srv;
    KonaConn *c;
    uint8_t mode;

    if (!size) {
        return 0;
    }
    if (!secret) {
        secret = g_bytes_new_static("fuzzing-secret-0123", 19);
    }
    cfg.net.secret = secret;
    mode = data[0];
    data++;
    size--;
    chunk = ((size_t)(mode >> 2) + 1) * 37;
    fuzz_decoders(data, size);

    srv = mn_server_new(&cfg, NULL);
    c = kona_conn_new(srv->ks, -1, "fuzz", mode & 2, true);
    if ((mode & 1) && !(mode & 2)) {
        uint8_t hello[sizeof(KonaHelloReq)] = { 0 };
        uint8_t alloc[sizeof(KonaSlabAllocReq)] = { 0 };

        kona_st32(hello, KONA_PROTO_MAGIC);
        kona_st16(hello + 4, KONA_PROTO_VERSION);
        kona_st64(hello + 8, KONA_CAP_ALL);
        npre += put_frame(pre + npre, KONA_OP_HELLO, 1, hello, sizeof(hello));
        kona_st64(alloc, 1 << 20);      /* slab id 1, 1 MiB */
        npre += put_frame(pre + npre, KONA_OP_SLAB_ALLOC, 2, alloc,
                          sizeof(alloc));
    }
    if (feed(c, pre, npre, npre ? npre : 1)) {
        feed(c, data, size, chunk);
    }
    kona_conn_free(c);
    mn_server_free(srv);
    return 0;
}

/*
 * Kona wire protocol: header checks and bounds-checked payload decoders.
 * Every byte that arrives from a socket goes through these functions
 * first, so they are also what the fuzz target exercises.
 */
#include "kona-proto.h"

#include <assert.h>
#include <string.h>

/* The wire images must have no implicit padding (see kona-proto.h). */
static_assert(sizeof(KonaHdr) == KONA_HDR_SIZE, "KonaHdr");
static_assert(sizeof(KonaHelloReq) == 48, "KonaHelloReq");
static_assert(sizeof(KonaHelloRep) == 72, "KonaHelloRep");
static_assert(sizeof(KonaAuthReq) == 64, "KonaAuthReq");
static_assert(sizeof(KonaSlabRep) == 40, "KonaSlabRep");
static_assert(sizeof(KonaSlabAttachReq) == 16, "KonaSlabAttachReq");
static_assert(sizeof(KonaReadReq) == 24, "KonaReadReq");
static_assert(sizeof(KonaSlabGenReq) == 16, "KonaSlabGenReq");
static_assert(sizeof(KonaZeroReq) == 24, "KonaZeroReq");
static_assert(sizeof(KonaWriteLinesReq) == 24, "KonaWriteLinesReq");
static_assert(sizeof(KonaSlabMapRep) == 24, "KonaSlabMapRep");
static_assert(sizeof(KonaWroteLinesReq) == 8, "KonaWroteLinesReq");
static_assert(sizeof(KonaWroteRange) == 24, "KonaWroteRange");
static_assert(sizeof(KonaRackRegisterReq) == 16, "KonaRackRegisterReq");
static_assert(sizeof(KonaRackAllocReq) == 24, "KonaRackAllocReq");
static_assert(sizeof(KonaRackAllocRep) == 24, "KonaRackAllocRep");
static_assert(sizeof(KonaRackPlacement) == 48, "KonaRackPlacement");
static_assert(sizeof(KonaRackStatusRep) == 24, "KonaRackStatusRep");
static_assert(sizeof(KonaRackNode) == 32, "KonaRackNode");
static_assert(sizeof(KonaRackReclaimReq) == 24, "KonaRackReclaimReq");
static_assert(KONA_MAX_PAYLOAD >= sizeof(KonaWriteLinesReq) +
              8 * KONA_MAX_WRITE_PAGES + KONA_MAX_IO, "max payload");
static_assert(KONA_MAX_PAYLOAD >= sizeof(KonaWroteLinesReq) +
              (sizeof(KonaWroteRange) + 8) * KONA_MAX_NOTE_PAGES,
              "max WROTE_LINES payload");

uint64_t kona_ld64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint32_t kona_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint16_t kona_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void kona_st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void kona_st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void kona_st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

const char *kona_op_name(unsigned op)
{
    switch (op & ~KONA_OP_REPLY) {
    case KONA_OP_HELLO:         return "HELLO";
    case KONA_OP_AUTH:          return "AUTH";
    case KONA_OP_PING:          return "PING";
    case KONA_OP_STATS:         return "STATS";
    case KONA_OP_SLAB_ALLOC:    return "SLAB_ALLOC";
    case KONA_OP_SLAB_FREE:     return "SLAB_FREE";
    case KONA_OP_SLAB_OPEN:     return "SLAB_OPEN";
    case KONA_OP_SLAB_ATTACH:   return "SLAB_ATTACH";
    case KONA_OP_SLAB_MAP:      return "SLAB_MAP";
    case KONA_OP_SLAB_GEN:      return "SLAB_GEN";
    case KONA_OP_READ:          return "READ";
    case KONA_OP_WRITE_LINES:   return "WRITE_LINES";
    case KONA_OP_FLUSH:         return "FLUSH";
    case KONA_OP_WROTE_LINES:   return "WROTE_LINES";
    case KONA_OP_ZERO:          return "ZERO";
    case KONA_OP_RACK_REGISTER: return "RACK_REGISTER";
    case KONA_OP_RACK_ALLOC:    return "RACK_ALLOC";
    case KONA_OP_RACK_FREE:     return "RACK_FREE";
    case KONA_OP_RACK_STATUS:   return "RACK_STATUS";
    case KONA_OP_RACK_RECLAIM:  return "RACK_RECLAIM";
    default:                    return "?";
    }
}

void kona_hdr_encode(uint8_t *buf, uint16_t op, uint64_t req_id,
                     int32_t status, uint32_t len)
{
    kona_st32(buf, len);
    kona_st16(buf + 4, op);
    kona_st16(buf + 6, 0);
    kona_st64(buf + 8, req_id);
    kona_st32(buf + 16, (uint32_t)status);
    kona_st32(buf + 20, 0);
}

void kona_hdr_decode(const uint8_t *buf, KonaHdr *h)
{
    h->len = kona_ld32(buf);
    h->op = kona_ld16(buf + 4);
    h->flags = kona_ld16(buf + 6);
    h->req_id = kona_ld64(buf + 8);
    h->status = (int32_t)kona_ld32(buf + 16);
    h->reserved = kona_ld32(buf + 20);
}

/*
 * Payload bounds of each request op, checked on the header alone so that
 * an oversize frame is refused before any of its payload is buffered.
 */
static bool request_len_bounds(unsigned op, uint32_t *min, uint32_t *max)
{
    switch (op) {
    case KONA_OP_HELLO:
        *min = *max = sizeof(KonaHelloReq);
        return true;
    case KONA_OP_AUTH:
        *min = *max = sizeof(KonaAuthReq);
        return true;
    case KONA_OP_PING:
        *min = 0;
        *max = KONA_MAX_PING;
        return true;
    case KONA_OP_STATS:
    case KONA_OP_FLUSH:
    case KONA_OP_RACK_STATUS:
        *min = *max = 0;
        return true;
    case KONA_OP_SLAB_ALLOC:
        *min = *max = sizeof(KonaSlabAllocReq);
        return true;
    case KONA_OP_SLAB_FREE:
    case KONA_OP_SLAB_MAP:
        *min = *max = 8;
        return true;
    case KONA_OP_RACK_FREE:
        *min = 8;
        *max = 8 + KONA_KEY_SIZE;
        return true;
    case KONA_OP_RACK_RECLAIM:
        *min = *max = sizeof(KonaRackReclaimReq);
        return true;
    case KONA_OP_SLAB_OPEN:
        *min = KONA_SLAB_OPEN_REQ_SIZE;
        *max = KONA_SLAB_OPEN_REQ_SIZE + 4;
        return true;
    case KONA_OP_SLAB_ATTACH:
        *min = sizeof(KonaSlabAttachReq) + 1;
        *max = sizeof(KonaSlabAttachReq) + KONA_KEY_SIZE + KONA_MAX_NAME;
        return true;
    case KONA_OP_SLAB_GEN:
        *min = *max = sizeof(KonaSlabGenReq);
        return true;
    case KONA_OP_READ:
        *min = *max = sizeof(KonaReadReq);
        return true;
    case KONA_OP_ZERO:
        *min = *max = sizeof(KonaZeroReq);
        return true;
    case KONA_OP_WRITE_LINES:
        *min = sizeof(KonaWriteLinesReq) + 8;
        *max = sizeof(KonaWriteLinesReq) + 8 * KONA_MAX_WRITE_PAGES +
               KONA_MAX_IO;
        return true;
    case KONA_OP_WROTE_LINES:
        /* one range of one page at least; every page costs a range at most */
        *min = sizeof(KonaWroteLinesReq) + sizeof(KonaWroteRange) + 8;
        *max = sizeof(KonaWroteLinesReq) +
               (sizeof(KonaWroteRange) + 8) * KONA_MAX_NOTE_PAGES;
        return true;
    case KONA_OP_RACK_REGISTER:
        *min = sizeof(KonaRackRegisterReq) + 1;
        *max = sizeof(KonaRackRegisterReq) + KONA_MAX_ADDR;
        return true;
    case KONA_OP_RACK_ALLOC:
        *min = sizeof(KonaRackAllocReq);
        *max = sizeof(KonaRackAllocReq) + KONA_KEY_SIZE + KONA_MAX_NAME;
        return true;
    default:
        return false;
    }
}

const char *kona_check_request_hdr(const KonaHdr *h)
{
    uint32_t min, max;

    if (h->op & KONA_OP_REPLY) {
        return "reply op in a request";
    }
    if (!request_len_bounds(h->op, &min, &max)) {
        return "unknown op";
    }
    if (h->flags || h->reserved) {
        return "reserved header field not zero";
    }
    if (h->status) {
        return "status set in a request";
    }
    if (!h->req_id) {
        return "request id 0";
    }
    if (h->len > KONA_MAX_PAYLOAD) {
        return "oversize frame";
    }
    if (h->len < min || h->len > max) {
        return "payload length wrong for op";
    }
    return NULL;
}

const char *kona_check_reply_hdr(const KonaHdr *h, unsigned req_op)
{
    uint32_t max;

    if (h->op != (req_op | KONA_OP_REPLY)) {
        return "reply op does not match the request";
    }
    if (h->flags || h->reserved) {
        return "reserved header field not zero";
    }
    if (h->len > KONA_MAX_PAYLOAD) {
        return "oversize frame";
    }
    if (h->status > 0) {
        return "positive status";
    }
    if (h->status < 0) {
        return h->len <= KONA_MAX_ERRMSG ? NULL : "error message too long";
    }
    switch (req_op) {
    case KONA_OP_HELLO:
        return h->len == sizeof(KonaHelloRep) ? NULL : "bad HELLO reply";
    case KONA_OP_AUTH:
        return h->len == sizeof(KonaAuthRep) ? NULL : "bad AUTH reply";
    case KONA_OP_SLAB_ALLOC:
    case KONA_OP_SLAB_OPEN:
    case KONA_OP_SLAB_ATTACH:
        return h->len == sizeof(KonaSlabRep) ? NULL : "bad slab reply";
    case KONA_OP_SLAB_MAP:
        return h->len == sizeof(KonaSlabMapRep) ? NULL :
               "bad SLAB_MAP reply";
    case KONA_OP_SLAB_GEN:
        return h->len == sizeof(KonaSlabGenRep) ? NULL :
               "bad SLAB_GEN reply";
    case KONA_OP_RACK_REGISTER:
        return h->len == sizeof(KonaRackRegisterRep) ? NULL :
               "bad RACK_REGISTER reply";
    case KONA_OP_PING:
        max = KONA_MAX_PING;
        break;
    case KONA_OP_READ:
        max = KONA_MAX_IO;
        break;
    case KONA_OP_STATS:
        max = sizeof(KonaStatsRep) + 8 * KONA_MAX_STATS_FIELDS;
        break;
    case KONA_OP_RACK_ALLOC:
    case KONA_OP_RACK_RECLAIM:
    case KONA_OP_RACK_STATUS:
        max = KONA_MAX_PAYLOAD;
        break;
    default:
        max = 0;
        break;
    }
    return h->len <= max ? NULL : "reply payload too long";
}

bool kona_name_valid(const char *name, size_t len)
{
    if (len < 1 || len > KONA_MAX_NAME || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

const char *kona_decode_hello_req(const uint8_t *p, uint32_t len,
                                  KonaHelloReq *out)
{
    if (len != sizeof(*out)) {
        return "bad HELLO length";
    }
    out->magic = kona_ld32(p);
    out->version = kona_ld16(p + 4);
    out->reserved = kona_ld16(p + 6);
    out->caps = kona_ld64(p + 8);
    memcpy(out->name, p + 16, sizeof(out->name));
    out->name[sizeof(out->name) - 1] = 0;
    if (out->magic != KONA_PROTO_MAGIC) {
        return "bad HELLO magic";
    }
    if (out->version == 0) {
        return "HELLO version 0";
    }
    return NULL;
}

const char *kona_decode_hello_rep(const uint8_t *p, uint32_t len,
                                  KonaHelloRep *out)
{
    if (len != sizeof(*out)) {
        return "bad HELLO reply length";
    }
    out->magic = kona_ld32(p);
    out->version = kona_ld16(p + 4);
    out->flags = kona_ld16(p + 6);
    out->caps = kona_ld64(p + 8);
    out->max_payload = kona_ld32(p + 16);
    out->max_io = kona_ld32(p + 20);
    out->max_inflight = kona_ld64(p + 24);
    out->node_id = kona_ld64(p + 32);
    memcpy(out->nonce, p + 40, KONA_NONCE_SIZE);
    if (out->magic != KONA_PROTO_MAGIC) {
        return "bad HELLO reply magic";
    }
    if (out->version != KONA_PROTO_VERSION) {
        return "unsupported protocol version in HELLO reply";
    }
    return NULL;
}

const char *kona_decode_read_req(const uint8_t *p, uint32_t len,
                                 KonaReadReq *out)
{
    if (len != sizeof(*out)) {
        return "bad READ length";
    }
    out->slab_id = kona_ld64(p);
    out->offset = kona_ld64(p + 8);
    out->len = kona_ld32(p + 16);
    out->reserved = kona_ld32(p + 20);
    if (out->reserved) {
        return "READ reserved field not zero";
    }
    if (out->len == 0 || out->len > KONA_MAX_IO) {
        return "READ length out of range";
    }
    if (out->offset >= KONA_MAX_SLAB_SIZE) {
        return "READ offset out of range";
    }
    return NULL;
}

const char *kona_decode_write_lines_req(const uint8_t *p, uint32_t len,
                                        KonaWriteLinesReq *out,
                                        const uint8_t **masks,
                                        const uint8_t **data)
{
    uint64_t lines = 0;

    if (len < sizeof(*out)) {
        return "WRITE_LINES truncated";
    }
    out->slab_id = kona_ld64(p);
    out->block_off = kona_ld64(p + 8);
    out->npages = kona_ld32(p + 16);
    out->reserved = kona_ld32(p + 20);
    if (out->reserved) {
        return "WRITE_LINES reserved field not zero";
    }
    if (out->npages == 0 || out->npages > KONA_MAX_WRITE_PAGES) {
        return "WRITE_LINES page count out of range";
    }
    if (out->block_off % KONA_PAGE_SIZE ||
        out->block_off >= KONA_MAX_SLAB_SIZE) {
        return "WRITE_LINES block offset not page aligned or out of range";
    }
    if (len < sizeof(*out) + 8ull * out->npages) {
        return "WRITE_LINES masks truncated";
    }
    *masks = p + sizeof(*out);
    for (uint32_t i = 0; i < out->npages; i++) {
        lines += (uint64_t)__builtin_popcountll(kona_ld64(*masks + 8 * i));
    }
    if (len != sizeof(*out) + 8ull * out->npages + lines * KONA_LINE_SIZE) {
        return "WRITE_LINES data length does not match the masks";
    }
    *data = *masks + 8ull * out->npages;
    return NULL;
}

const char *kona_decode_slab_alloc_req(const uint8_t *p, uint32_t len,
                                       KonaSlabAllocReq *out)
{
    if (len != sizeof(*out)) {
        return "bad SLAB_ALLOC length";
    }
    out->size = kona_ld64(p);
    out->flags = kona_ld64(p + 8);
    if (out->flags) {
        return "SLAB_ALLOC flags not zero";
    }
    return NULL;
}

const char *kona_decode_slab_id_req(const uint8_t *p, uint32_t len,
                                    KonaSlabIdReq *out)
{
    if (len != sizeof(*out)) {
        return "bad slab id length";
    }
    out->slab_id = kona_ld64(p);
    return NULL;
}

const char *kona_decode_slab_open_req(const uint8_t *p, uint32_t len,
                                      KonaSlabOpenReq *out)
{
    if (len != KONA_SLAB_OPEN_REQ_SIZE && len != KONA_SLAB_OPEN_REQ_SIZE + 4) {
        return "bad SLAB_OPEN length";
    }
    out->slab_id = kona_ld64(p);
    memcpy(out->key, p + 8, KONA_KEY_SIZE);
    out->flags = len > KONA_SLAB_OPEN_REQ_SIZE ?
                 kona_ld32(p + KONA_SLAB_OPEN_REQ_SIZE) : 0;
    if (out->flags & ~KONA_OPEN_F_ALL) {
        return "unknown SLAB_OPEN flags";
    }
    return NULL;
}

const char *kona_decode_slab_attach_req(const uint8_t *p, uint32_t len,
                                        KonaSlabAttachReq *out,
                                        const uint8_t **key,
                                        const char **name)
{
    uint32_t klen;

    if (len < sizeof(*out)) {
        return "SLAB_ATTACH truncated";
    }
    out->size = kona_ld64(p);
    out->name_len = kona_ld16(p + 8);
    out->flags = kona_ld16(p + 10);
    out->reserved = kona_ld32(p + 12);
    if (out->reserved || (out->flags & ~KONA_ATTACH_F_ALL)) {
        return "SLAB_ATTACH reserved bits set";
    }
    klen = out->flags & KONA_ATTACH_F_KEY ? KONA_KEY_SIZE : 0;
    if (len != sizeof(*out) + klen + out->name_len) {
        return "SLAB_ATTACH name length does not match the frame";
    }
    *key = klen ? p + sizeof(*out) : NULL;
    *name = (const char *)p + sizeof(*out) + klen;
    if (!kona_name_valid(*name, out->name_len)) {
        return "SLAB_ATTACH invalid volume name";
    }
    return NULL;
}

const char *kona_decode_slab_gen_req(const uint8_t *p, uint32_t len,
                                     KonaSlabGenReq *out)
{
    if (len != sizeof(*out)) {
        return "bad SLAB_GEN length";
    }
    out->slab_id = kona_ld64(p);
    out->set = kona_ld64(p + 8);
    return NULL;
}

const char *kona_decode_zero_req(const uint8_t *p, uint32_t len,
                                 KonaZeroReq *out)
{
    if (len != sizeof(*out)) {
        return "bad ZERO length";
    }
    out->slab_id = kona_ld64(p);
    out->offset = kona_ld64(p + 8);
    out->len = kona_ld64(p + 16);
    if ((out->offset | out->len) & (KONA_PAGE_SIZE - 1)) {
        return "ZERO range not page-aligned";
    }
    if (out->len == 0 || out->len > KONA_MAX_SLAB_SIZE ||
        out->offset > KONA_MAX_SLAB_SIZE - out->len) {
        return "ZERO range out of range";
    }
    return NULL;
}

const char *kona_decode_slab_rep(const uint8_t *p, uint32_t len,
                                 KonaSlabRep *out)
{
    if (len != sizeof(*out)) {
        return "bad slab reply length";
    }
    out->slab_id = kona_ld64(p);
    out->size = kona_ld64(p + 8);
    memcpy(out->key, p + 16, KONA_KEY_SIZE);
    out->flags = kona_ld32(p + 32);
    out->reserved = kona_ld32(p + 36);
    return NULL;
}

const char *kona_decode_slab_map_rep(const uint8_t *p, uint32_t len,
                                     KonaSlabMapRep *out)
{
    if (len != sizeof(*out)) {
        return "bad SLAB_MAP reply length";
    }
    out->size = kona_ld64(p);
    out->offset = kona_ld64(p + 8);
    out->flags = kona_ld32(p + 16);
    out->reserved = kona_ld32(p + 20);
    if (out->flags || out->reserved) {
        return "SLAB_MAP reply reserved field not zero";
    }
    if (out->size < KONA_MIN_SLAB_SIZE || out->size > KONA_MAX_SLAB_SIZE ||
        out->size % KONA_PAGE_SIZE || out->offset % KONA_PAGE_SIZE ||
        out->offset > KONA_MAX_SLAB_SIZE) {
        return "SLAB_MAP reply size or offset out of range";
    }
    return NULL;
}

void kona_wrote_range(const uint8_t *p, uint32_t i, KonaWroteRange *out)
{
    const uint8_t *r = p + sizeof(KonaWroteLinesReq) +
                       (size_t)i * sizeof(KonaWroteRange);

    out->slab_id = kona_ld64(r);
    out->block_off = kona_ld64(r + 8);
    out->npages = kona_ld32(r + 16);
    out->reserved = kona_ld32(r + 20);
}

const char *kona_decode_wrote_lines_req(const uint8_t *p, uint32_t len,
                                        KonaWroteLinesReq *out,
                                        const uint8_t **masks)
{
    uint64_t pages = 0, ranges_end;

    if (len < sizeof(*out)) {
        return "WROTE_LINES truncated";
    }
    out->nranges = kona_ld32(p);
    out->reserved = kona_ld32(p + 4);
    if (out->reserved) {
        return "WROTE_LINES reserved field not zero";
    }
    if (out->nranges == 0 || out->nranges > KONA_MAX_NOTE_PAGES) {
        return "WROTE_LINES range count out of range";
    }
    ranges_end = sizeof(*out) + (uint64_t)out->nranges * sizeof(KonaWroteRange);
    if (len < ranges_end) {
        return "WROTE_LINES ranges truncated";
    }
    for (uint32_t i = 0; i < out->nranges; i++) {
        KonaWroteRange r;

        kona_wrote_range(p, i, &r);
        if (r.reserved) {
            return "WROTE_LINES range reserved field not zero";
        }
        if (r.npages == 0 || r.npages > KONA_MAX_NOTE_PAGES) {
            return "WROTE_LINES range page count out of range";
        }
        if (r.block_off % KONA_PAGE_SIZE ||
            r.block_off >= KONA_MAX_SLAB_SIZE) {
            return "WROTE_LINES block offset not page aligned or out of range";
        }
        pages += r.npages;
    }
    if (pages > KONA_MAX_NOTE_PAGES) {
        return "WROTE_LINES too many pages";
    }
    if (len != ranges_end + 8 * pages) {
        return "WROTE_LINES length does not match the ranges";
    }
    *masks = p + ranges_end;
    return NULL;
}

const char *kona_decode_rack_register_req(const uint8_t *p, uint32_t len,
                                          KonaRackRegisterReq *out,
                                          const char **addr)
{
    if (len < sizeof(*out)) {
        return "RACK_REGISTER truncated";
    }
    out->capacity = kona_ld64(p);
    out->addr_len = kona_ld16(p + 8);
    out->reserved0 = kona_ld16(p + 10);
    out->reserved1 = kona_ld32(p + 12);
    if (out->reserved0 || out->reserved1) {
        return "RACK_REGISTER reserved field not zero";
    }
    if (out->addr_len == 0 || out->addr_len > KONA_MAX_ADDR ||
        len != sizeof(*out) + out->addr_len) {
        return "RACK_REGISTER address length wrong";
    }
    *addr = (const char *)p + sizeof(*out);
    if (memchr(*addr, 0, out->addr_len)) {
        return "RACK_REGISTER address contains NUL";
    }
    return NULL;
}

const char *kona_decode_rack_alloc_req(const uint8_t *p, uint32_t len,
                                       KonaRackAllocReq *out,
                                       const uint8_t **key,
                                       const char **name)
{
    uint32_t klen;

    if (len < sizeof(*out)) {
        return "RACK_ALLOC truncated";
    }
    out->size = kona_ld64(p);
    out->slab_size = kona_ld64(p + 8);
    out->name_len = kona_ld16(p + 16);
    out->flags = kona_ld16(p + 18);
    out->reserved = kona_ld32(p + 20);
    if ((out->flags & ~KONA_RACK_ALLOC_F_ALL) || out->reserved) {
        return "RACK_ALLOC reserved field not zero";
    }
    klen = out->flags & KONA_RACK_ALLOC_F_KEY ? KONA_KEY_SIZE : 0;
    if (len != sizeof(*out) + klen + out->name_len) {
        return "RACK_ALLOC name length does not match the frame";
    }
    *key = klen ? p + sizeof(*out) : NULL;
    *name = (const char *)p + sizeof(*out) + klen;
    if (out->name_len && !kona_name_valid(*name, out->name_len)) {
        return "RACK_ALLOC invalid name";
    }
    return NULL;
}

const char *kona_decode_rack_free_req(const uint8_t *p, uint32_t len,
                                      KonaRackFreeReq *out,
                                      const uint8_t **key)
{
    if (len != sizeof(*out) && len != sizeof(*out) + KONA_KEY_SIZE) {
        return "bad RACK_FREE length";
    }
    out->alloc_id = kona_ld64(p);
    *key = len > sizeof(*out) ? p + sizeof(*out) : NULL;
    return NULL;
}

const char *kona_decode_rack_reclaim_req(const uint8_t *p, uint32_t len,
                                         KonaRackReclaimReq *out)
{
    if (len != sizeof(*out)) {
        return "bad RACK_RECLAIM length";
    }
    out->alloc_id = kona_ld64(p);
    memcpy(out->key, p + 8, KONA_KEY_SIZE);
    return NULL;
}

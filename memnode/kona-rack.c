/*
 * Rack controller client (see kona-rack.h and "Rack controller" in
 * kona-proto.h).
 */
#include "kona-rack.h"
#include "kona-auth.h"
#include "kona-link-int.h"

#include <errno.h>
#include <string.h>

static int bad_reply(KonaLink *ctl, KonaReq *req, GError **errp,
                     const char *what)
{
    kona_link_req_finish(ctl, req);
    g_set_error(errp, KONA_ERROR, EPROTO, "rack controller %s: malformed %s "
                "reply", kona_link_addr(ctl), what);
    return -EPROTO;
}

int kona_rack_register(KonaLink *ctl, uint64_t capacity, const char *addr,
                       uint64_t *node_id, GError **errp)
{
    size_t alen = strlen(addr);
    uint8_t p[sizeof(KonaRackRegisterReq) + KONA_MAX_ADDR] = { 0 };
    KonaReq *req;
    int r;

    if (alen == 0 || alen > KONA_MAX_ADDR) {
        g_set_error(errp, KONA_ERROR, EINVAL, "address '%s' is empty or "
                    "longer than %d bytes", addr, KONA_MAX_ADDR);
        return -EINVAL;
    }
    kona_st64(p, capacity);
    kona_st16(p + 8, (uint16_t)alen);
    memcpy(p + sizeof(KonaRackRegisterReq), addr, alen);
    r = kona_link_call(ctl, KONA_OP_RACK_REGISTER, p,
                       (uint32_t)(sizeof(KonaRackRegisterReq) + alen), &req,
                       errp);
    if (r < 0) {
        return r;
    }
    if (node_id) {
        *node_id = kona_ld64(req->rep);
    }
    kona_link_req_finish(ctl, req);
    return 0;
}

void kona_rack_alloc_free(KonaRackAlloc *a)
{
    if (!a) {
        return;
    }
    for (unsigned i = 0; i < a->count; i++) {
        g_free(a->placements[i].addr);
    }
    g_free(a->placements);
    g_free(a);
}

/* Decode a RACK_ALLOC / RACK_RECLAIM reply into *out (finishes @req). */
static int alloc_reply(KonaLink *ctl, KonaReq *req, const char *what,
                       KonaRackAlloc **out, GError **errp)
{
    g_autoptr(KonaRackAlloc) a = NULL;
    const uint8_t *q, *end;

    if (req->rep_len < sizeof(KonaRackAllocRep)) {
        return bad_reply(ctl, req, errp, what);
    }
    a = g_new0(KonaRackAlloc, 1);
    a->alloc_id = kona_ld64(req->rep);
    a->size = kona_ld64(req->rep + 8);
    a->count = kona_ld32(req->rep + 16);
    if (a->count > KONA_MAX_PLACEMENTS) {
        a->count = 0;
        return bad_reply(ctl, req, errp, what);
    }
    a->placements = g_new0(KonaRackPlacementInfo, a->count);
    q = req->rep + sizeof(KonaRackAllocRep);
    end = req->rep + req->rep_len;
    for (unsigned i = 0; i < a->count; i++) {
        KonaRackPlacementInfo *pl = &a->placements[i];
        uint16_t alen;

        if ((size_t)(end - q) < sizeof(KonaRackPlacement)) {
            return bad_reply(ctl, req, errp, what);
        }
        pl->offset = kona_ld64(q);
        pl->slab_id = kona_ld64(q + 8);
        pl->size = kona_ld64(q + 16);
        memcpy(pl->key, q + 24, KONA_KEY_SIZE);
        alen = kona_ld16(q + 40);
        q += sizeof(KonaRackPlacement);
        if (!alen || alen > KONA_MAX_ADDR ||
            (size_t)(end - q) < kona_pad8(alen)) {
            return bad_reply(ctl, req, errp, what);
        }
        pl->addr = g_strndup((const char *)q, alen);
        q += kona_pad8(alen);
    }
    /* the allocation key, from controllers that have them */
    if (end - q == KONA_KEY_SIZE) {
        memcpy(a->key, q, KONA_KEY_SIZE);
        a->has_key = true;
    } else if (end != q) {
        return bad_reply(ctl, req, errp, what);
    }
    kona_link_req_finish(ctl, req);
    if (a->has_key && (kona_link_caps(ctl) & KONA_CAP_RECLAIM)) {
        /* a reconnect of this link takes the allocation back */
        uint8_t p[sizeof(KonaRackReclaimReq)];

        kona_st64(p, a->alloc_id);
        memcpy(p + 8, a->key, KONA_KEY_SIZE);
        kona_link_replay_add(ctl, a->alloc_id, KONA_OP_RACK_RECLAIM, p,
                             sizeof(p));
    }
    *out = g_steal_pointer(&a);
    return 0;
}

int kona_rack_alloc_opts(KonaLink *ctl, const KonaRackAllocOpts *o,
                         KonaRackAlloc **out, GError **errp)
{
    size_t nlen = o->name ? strlen(o->name) : 0;
    uint8_t p[sizeof(KonaRackAllocReq) + KONA_KEY_SIZE + KONA_MAX_NAME] = {
        0
    };
    uint8_t *q = p + sizeof(KonaRackAllocReq);
    uint16_t flags = 0;
    KonaReq *req;
    int r;

    if (o->name && !kona_name_valid(o->name, nlen)) {
        g_set_error(errp, KONA_ERROR, EINVAL, "bad allocation name '%s'",
                    o->name);
        return -EINVAL;
    }
    if ((o->key || o->exclusive) &&
        !(kona_link_caps(ctl) & KONA_CAP_RECLAIM)) {
        g_set_error(errp, KONA_ERROR, EOPNOTSUPP, "rack controller %s has "
                    "no allocation keys (an older controller)",
                    kona_link_addr(ctl));
        return -EOPNOTSUPP;
    }
    if (o->key) {
        flags |= KONA_RACK_ALLOC_F_KEY;
        memcpy(q, o->key, KONA_KEY_SIZE);
        q += KONA_KEY_SIZE;
    }
    if (o->exclusive) {
        flags |= KONA_RACK_ALLOC_F_EXCLUSIVE;
    }
    kona_st64(p, o->size);
    kona_st64(p + 8, o->slab_size);
    kona_st16(p + 16, (uint16_t)nlen);
    kona_st16(p + 18, flags);
    memcpy(q, o->name ? o->name : "", nlen);
    r = kona_link_call(ctl, KONA_OP_RACK_ALLOC, p, (uint32_t)(q + nlen - p),
                       &req, errp);
    if (r < 0) {
        return r;
    }
    return alloc_reply(ctl, req, "RACK_ALLOC", out, errp);
}

int kona_rack_alloc(KonaLink *ctl, uint64_t size, uint64_t slab_size,
                    const char *name, KonaRackAlloc **out, GError **errp)
{
    KonaRackAllocOpts o = {
        .size = size, .slab_size = slab_size, .name = name,
    };
    GBytes *secret = kona_link_secret(ctl);
    uint8_t key[KONA_KEY_SIZE];

    if (name && secret && kona_name_valid(name, strlen(name)) &&
        (kona_link_caps(ctl) & KONA_CAP_RECLAIM)) {
        gsize slen;
        const uint8_t *s = g_bytes_get_data(secret, &slen);

        kona_auth_volume_key(s, slen, name, key);
        o.key = key;
    }
    return kona_rack_alloc_opts(ctl, &o, out, errp);
}

int kona_rack_reclaim(KonaLink *ctl, uint64_t alloc_id,
                      const uint8_t key[KONA_KEY_SIZE], KonaRackAlloc **out,
                      GError **errp)
{
    uint8_t p[sizeof(KonaRackReclaimReq)];
    KonaReq *req;
    int r;

    if (!(kona_link_caps(ctl) & KONA_CAP_RECLAIM)) {
        g_set_error(errp, KONA_ERROR, EOPNOTSUPP, "rack controller %s has no "
                    "RACK_RECLAIM (an older controller)", kona_link_addr(ctl));
        return -EOPNOTSUPP;
    }
    kona_st64(p, alloc_id);
    memcpy(p + 8, key, KONA_KEY_SIZE);
    r = kona_link_call(ctl, KONA_OP_RACK_RECLAIM, p, sizeof(p), &req, errp);
    if (r < 0) {
        return r;
    }
    return alloc_reply(ctl, req, "RACK_RECLAIM", out, errp);
}

static int rack_free(KonaLink *ctl, uint64_t alloc_id, const uint8_t *key,
                     GError **errp)
{
    uint8_t p[8 + KONA_KEY_SIZE];
    int r;

    if (key && !(kona_link_caps(ctl) & KONA_CAP_RECLAIM)) {
        g_set_error(errp, KONA_ERROR, EOPNOTSUPP, "rack controller %s has "
                    "no allocation keys (an older controller)",
                    kona_link_addr(ctl));
        return -EOPNOTSUPP;
    }
    kona_st64(p, alloc_id);
    if (key) {
        memcpy(p + 8, key, KONA_KEY_SIZE);
    }
    r = kona_link_call(ctl, KONA_OP_RACK_FREE, p, key ? sizeof(p) : 8, NULL,
                       errp);
    if (r == 0 || r == -ENOENT) {
        kona_link_replay_remove(ctl, alloc_id);
    }
    return r;
}

int kona_rack_free(KonaLink *ctl, uint64_t alloc_id, GError **errp)
{
    return rack_free(ctl, alloc_id, NULL, errp);
}

int kona_rack_free_key(KonaLink *ctl, uint64_t alloc_id,
                       const uint8_t key[KONA_KEY_SIZE], GError **errp)
{
    return rack_free(ctl, alloc_id, key, errp);
}

void kona_rack_status_free(KonaRackStatus *s)
{
    if (!s) {
        return;
    }
    for (unsigned i = 0; i < s->nnodes; i++) {
        g_free(s->nodes[i].addr);
    }
    g_free(s->nodes);
    g_free(s);
}

int kona_rack_status(KonaLink *ctl, KonaRackStatus **out, GError **errp)
{
    g_autoptr(KonaRackStatus) s = NULL;
    const uint8_t *q, *end;
    KonaReq *req;
    unsigned n;
    int r;

    r = kona_link_call(ctl, KONA_OP_RACK_STATUS, NULL, 0, &req, errp);
    if (r < 0) {
        return r;
    }
    if (req->rep_len < sizeof(KonaRackStatusRep)) {
        return bad_reply(ctl, req, errp, "RACK_STATUS");
    }
    s = g_new0(KonaRackStatus, 1);
    s->capacity = kona_ld64(req->rep);
    s->used = kona_ld64(req->rep + 8);
    n = kona_ld32(req->rep + 16);
    s->nallocs = kona_ld32(req->rep + 20);
    if (n > KONA_MAX_PLACEMENTS) {
        return bad_reply(ctl, req, errp, "RACK_STATUS");
    }
    s->nodes = g_new0(KonaRackNodeInfo, n);
    q = req->rep + sizeof(KonaRackStatusRep);
    end = req->rep + req->rep_len;
    for (unsigned i = 0; i < n; i++) {
        KonaRackNodeInfo *ni = &s->nodes[i];
        uint16_t alen;

        if ((size_t)(end - q) < sizeof(KonaRackNode)) {
            return bad_reply(ctl, req, errp, "RACK_STATUS");
        }
        ni->node_id = kona_ld64(q);
        ni->capacity = kona_ld64(q + 8);
        ni->used = kona_ld64(q + 16);
        alen = kona_ld16(q + 24);
        ni->alive = kona_ld16(q + 26) & KONA_RACK_NODE_F_ALIVE;
        q += sizeof(KonaRackNode);
        if (alen > KONA_MAX_ADDR || (size_t)(end - q) < kona_pad8(alen)) {
            return bad_reply(ctl, req, errp, "RACK_STATUS");
        }
        ni->addr = g_strndup((const char *)q, alen);
        q += kona_pad8(alen);
        s->nnodes++;
    }
    kona_link_req_finish(ctl, req);
    *out = g_steal_pointer(&s);
    return 0;
}

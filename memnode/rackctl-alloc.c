/*
 * kona-rackctl's allocations: placement on the memory nodes, who holds
 * them, leases, reclaim and free (see "Rack controller" in kona-proto.h).
 *
 * The controller allocates each slab itself, over its own connection to
 * the memnode, and hands the client the slab id and key; its connection
 * keeps the slab alive until the allocation is freed.  An allocation is
 * held by client connections: an unnamed one nobody holds any more (its
 * client's connection dropped) is kept for the lease time so that the
 * client can reconnect and reclaim it, which is what keeps a running
 * VM's memory alive across a controller connection cut.
 */
#include "rackctl.h"
#include "kona-auth.h"
#include "kona-util.h"
#include "rackctl-place.h"

#include <errno.h>
#include <string.h>

typedef struct RcStripe {
    RcNode *node;
    uint64_t offset;
    uint64_t size;
    uint64_t slab_id;
    uint8_t key[KONA_KEY_SIZE];
} RcStripe;

typedef struct RcAlloc {
    uint64_t id;
    char *name;                 /* named: lives until RACK_FREE */
    uint64_t size;
    uint8_t key[KONA_KEY_SIZE]; /* the allocation key */
    GArray *stripes;            /* RcStripe */
    GPtrArray *holders;         /* RcConn* holding it */
    bool exclusive;             /* its holder keeps everyone else out */
    int64_t lease_until_ms;     /* unnamed and unheld: freed then */
} RcAlloc;

#define reply(c, h, len) kona_reply((c)->kc, h, len)
#define reply_err(c, h, err, ...) kona_reply_err((c)->kc, h, err, __VA_ARGS__)

void rc_alloc_init(void)
{
    rack.allocs = g_hash_table_new(g_int64_hash, g_int64_equal);
    rack.named = g_hash_table_new(g_str_hash, g_str_equal);
    rack.leased = g_hash_table_new(NULL, NULL);
}

static void alloc_destroy(RcAlloc *a)
{
    for (guint i = 0; i < a->stripes->len; i++) {
        RcStripe *s = &g_array_index(a->stripes, RcStripe, i);
        g_autoptr(GError) err = NULL;

        s->node->used -= s->size;
        /* drops the controller's reference: clients still holding the
         * slab on the memnode keep it until they let go */
        if (s->node->link &&
            kona_link_slab_free(s->node->link, s->slab_id, &err) < 0) {
            /* a dead node's slabs went with it */
            rc_log("freeing slab %" G_GUINT64_FORMAT " on %s: %s", s->slab_id,
                   s->node->addr, err->message);
        }
    }
    g_hash_table_remove(rack.allocs, &a->id);
    g_hash_table_remove(rack.leased, a);
    if (a->name) {
        g_hash_table_remove(rack.named, a->name);
    }
    g_array_free(a->stripes, TRUE);
    g_ptr_array_free(a->holders, TRUE);
    g_free(a->name);
    g_free(a);
}

static bool alloc_held_by(RcAlloc *a, RcConn *c)
{
    return g_ptr_array_find(a->holders, c, NULL);
}

/* Does anyone but @c hold @a? */
static bool alloc_held_by_other(RcAlloc *a, RcConn *c)
{
    return a->holders->len > (alloc_held_by(a, c) ? 1u : 0u);
}

/* @c holds @a from now on (alone if @only); no lease runs. */
static void alloc_hold(RcAlloc *a, RcConn *c, bool only)
{
    if (only) {
        g_ptr_array_set_size(a->holders, 0);
    }
    if (!alloc_held_by(a, c)) {
        g_ptr_array_add(a->holders, c);
    }
    if (a->lease_until_ms) {
        g_hash_table_remove(rack.leased, a);
        a->lease_until_ms = 0;
    }
}

static void put_alloc_reply(RcConn *c, const KonaHdr *h, RcAlloc *a)
{
    uint32_t len = sizeof(KonaRackAllocRep) + KONA_KEY_SIZE;
    uint8_t *p;

    for (guint i = 0; i < a->stripes->len; i++) {
        RcStripe *s = &g_array_index(a->stripes, RcStripe, i);
        len += sizeof(KonaRackPlacement) +
               kona_pad8((uint32_t)strlen(s->node->addr));
    }
    p = reply(c, h, len);
    memset(p, 0, len);
    kona_st64(p, a->id);
    kona_st64(p + 8, a->size);
    kona_st32(p + 16, a->stripes->len);
    p += sizeof(KonaRackAllocRep);
    for (guint i = 0; i < a->stripes->len; i++) {
        RcStripe *s = &g_array_index(a->stripes, RcStripe, i);
        size_t alen = strlen(s->node->addr);

        kona_st64(p, s->offset);
        kona_st64(p + 8, s->slab_id);
        kona_st64(p + 16, s->size);
        memcpy(p + 24, s->key, KONA_KEY_SIZE);
        kona_st16(p + 40, (uint16_t)alen);
        p += sizeof(KonaRackPlacement);
        memcpy(p, s->node->addr, alen);
        p += kona_pad8((uint32_t)alen);
    }
    /* last, where clients that do not know of it stop reading */
    memcpy(p, a->key, KONA_KEY_SIZE);
}

/* RACK_ALLOC of an existing name: only with its key. */
static void alloc_existing(RcConn *c, const KonaHdr *h, RcAlloc *a,
                           const KonaRackAllocReq *req, const uint8_t *key)
{
    bool excl = req->flags & KONA_RACK_ALLOC_F_EXCLUSIVE;

    if (!kona_auth_equal(a->key, key, KONA_KEY_SIZE)) {
        /* the same answer as for a name that does not exist */
        reply_err(c, h, EACCES, "no allocation %s with that key", a->name);
        return;
    }
    if (req->size && (req->size + KONA_PAGE_SIZE - 1) /
        KONA_PAGE_SIZE * KONA_PAGE_SIZE != a->size) {
        reply_err(c, h, EEXIST, "allocation %s exists with %"
                  G_GUINT64_FORMAT " bytes", a->name, a->size);
        return;
    }
    if (a->exclusive && alloc_held_by_other(a, c)) {
        reply_err(c, h, EBUSY, "allocation %s is held exclusively by "
                  "another connection", a->name);
        return;
    }
    if (excl && alloc_held_by_other(a, c)) {
        reply_err(c, h, EBUSY, "allocation %s is held by another "
                  "connection", a->name);
        return;
    }
    alloc_hold(a, c, false);
    a->exclusive = a->exclusive || excl;
    put_alloc_reply(c, h, a);
}

bool rc_op_alloc(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackAllocReq req;
    const char *name_p, *why;
    const uint8_t *key;
    g_autofree char *name = NULL;
    g_autofree RcPlaceNode *pn = NULL;
    g_autofree unsigned *node_of = NULL;
    uint64_t size, slab, free_total = 0, largest = 0;
    unsigned nnodes = rack.nodes->len, live = 0;
    char b1[32], b2[32], b3[32], b4[32];
    RcAlloc *a;
    int n;

    why = kona_decode_rack_alloc_req(payload, h->len, &req, &key, &name_p);
    if (why) {
        return kona_bad_frame(c->kc, h, why);
    }
    if (req.name_len) {
        name = g_strndup(name_p, req.name_len);
        if (!key) {
            reply_err(c, h, EACCES, "allocation %s: a named allocation "
                      "needs its key (KONA_RACK_ALLOC_F_KEY)", name);
            return true;
        }
        a = g_hash_table_lookup(rack.named, name);
        if (a) {
            alloc_existing(c, h, a, &req, key);
            return true;
        }
    }
    if (!req.size || req.size > (KONA_MAX_SLAB_SIZE * KONA_MAX_PLACEMENTS)) {
        reply_err(c, h, EINVAL, "cannot allocate %" G_GUINT64_FORMAT
                  " bytes", req.size);
        return true;
    }
    size = (req.size + KONA_PAGE_SIZE - 1) / KONA_PAGE_SIZE * KONA_PAGE_SIZE;
    slab = req.slab_size ? req.slab_size : rack.slab_size;
    if (slab % KONA_PAGE_SIZE || slab > KONA_MAX_SLAB_SIZE) {
        reply_err(c, h, EINVAL, "slab size %" G_GUINT64_FORMAT " must be a "
                  "multiple of 4096 up to 1 TiB", slab);
        return true;
    }
    if ((size + slab - 1) / slab > KONA_MAX_PLACEMENTS) {
        reply_err(c, h, EINVAL, "%s in slabs of %s is more than %d slabs; "
                  "ask for bigger slabs",
                  kona_format_size(size, b1, sizeof(b1)),
                  kona_format_size(slab, b2, sizeof(b2)), KONA_MAX_PLACEMENTS);
        return true;
    }
    pn = g_new0(RcPlaceNode, MAX(nnodes, 1));
    for (unsigned i = 0; i < nnodes; i++) {
        RcNode *nd = g_ptr_array_index(rack.nodes, i);
        pn[i].alive = nd->alive;
        pn[i].free = nd->capacity > nd->used ? nd->capacity - nd->used : 0;
        if (nd->alive) {
            live++;
            free_total += pn[i].free;
            largest = MAX(largest, pn[i].free);
        }
    }
    node_of = g_new(unsigned, KONA_MAX_PLACEMENTS);
    n = rc_place(pn, nnodes, size, slab, KONA_MAX_PLACEMENTS, &rack.cursor,
                 node_of);
    if (n < 0) {
        reply_err(c, h, -n, "rack cannot place %s in slabs of %s: %s free "
                  "across %u live memory node%s (largest free %s)",
                  kona_format_size(size, b1, sizeof(b1)),
                  kona_format_size(slab, b2, sizeof(b2)),
                  kona_format_size(free_total, b3, sizeof(b3)), live,
                  live == 1 ? "" : "s",
                  kona_format_size(largest, b4, sizeof(b4)));
        return true;
    }

    a = g_new0(RcAlloc, 1);
    a->id = ++rack.next_alloc;
    a->size = size;
    a->stripes = g_array_new(FALSE, TRUE, sizeof(RcStripe));
    a->holders = g_ptr_array_new();
    if (key) {
        memcpy(a->key, key, KONA_KEY_SIZE);
    } else {
        kona_random_bytes(a->key, KONA_KEY_SIZE);
    }
    g_hash_table_insert(rack.allocs, &a->id, a);
    for (int i = 0; i < n; i++) {
        RcStripe s = {
            .node = g_ptr_array_index(rack.nodes, node_of[i]),
            .offset = (uint64_t)i * slab,
            .size = MIN(slab, size - (uint64_t)i * slab),
        };
        g_autoptr(GError) err = NULL;
        KonaLink *l = rc_node_link(s.node, &err);

        if (!l || kona_link_slab_alloc(l, s.size, &s.slab_id, &err) < 0) {
            reply_err(c, h, err->code, "memory node %s: %s", s.node->addr,
                      err->message);
            alloc_destroy(a);
            return true;
        }
        kona_link_slab_info(l, s.slab_id, s.key, NULL);
        s.node->used += s.size;
        g_array_append_val(a->stripes, s);
    }
    if (name) {
        a->name = g_steal_pointer(&name);
        g_hash_table_insert(rack.named, a->name, a);
    }
    alloc_hold(a, c, true);
    a->exclusive = req.flags & KONA_RACK_ALLOC_F_EXCLUSIVE;
    rc_log("%s: allocation %" G_GUINT64_FORMAT ": %s in %d slabs",
           c->kc->peer, a->id, kona_format_size(size, b1, sizeof(b1)), n);
    put_alloc_reply(c, h, a);
    return true;
}

/*
 * RACK_RECLAIM: a client back after its connection dropped (or before
 * we saw it drop) takes its allocation over with the key.
 */
bool rc_op_reclaim(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackReclaimReq req;
    const char *why = kona_decode_rack_reclaim_req(payload, h->len, &req);
    RcAlloc *a;

    if (why) {
        return kona_bad_frame(c->kc, h, why);
    }
    a = g_hash_table_lookup(rack.allocs, &req.alloc_id);
    if (!a || !kona_auth_equal(a->key, req.key, KONA_KEY_SIZE)) {
        reply_err(c, h, EACCES, "no allocation %" G_GUINT64_FORMAT
                  " with that key", req.alloc_id);
        return true;
    }
    /* an unnamed or exclusive allocation is the new connection's alone */
    alloc_hold(a, c, !a->name || a->exclusive);
    rc_log("%s: reclaimed allocation %" G_GUINT64_FORMAT, c->kc->peer,
           a->id);
    put_alloc_reply(c, h, a);
    return true;
}

bool rc_op_free(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackFreeReq req;
    const uint8_t *key;
    const char *why = kona_decode_rack_free_req(payload, h->len, &req, &key);
    RcAlloc *a;

    if (why) {
        return kona_bad_frame(c->kc, h, why);
    }
    a = g_hash_table_lookup(rack.allocs, &req.alloc_id);
    if (!a || !(alloc_held_by(a, c) ||
                (key && kona_auth_equal(a->key, key, KONA_KEY_SIZE)))) {
        reply_err(c, h, ENOENT, "no allocation %" G_GUINT64_FORMAT
                  " of this client", req.alloc_id);
        return true;
    }
    alloc_destroy(a);
    reply(c, h, 0);
    return true;
}

void rc_alloc_conn_gone(RcConn *c)
{
    GHashTableIter it;
    gpointer v;
    GSList *now = NULL;

    g_hash_table_iter_init(&it, rack.allocs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        RcAlloc *a = v;

        if (!g_ptr_array_remove(a->holders, c) || a->holders->len) {
            continue;
        }
        a->exclusive = false;
        if (a->name) {
            continue;           /* named: until freed */
        }
        if (rack.lease_ms <= 0) {
            now = g_slist_prepend(now, a);
            continue;
        }
        a->lease_until_ms = kona_now_ms() + rack.lease_ms;
        g_hash_table_add(rack.leased, a);
        rc_log("allocation %" G_GUINT64_FORMAT " leased for %" G_GINT64_FORMAT
               " ms (its client left)", a->id, rack.lease_ms);
    }
    for (GSList *l = now; l; l = l->next) {
        alloc_destroy(l->data);
    }
    g_slist_free(now);
}

int64_t rc_alloc_expire(void)
{
    int64_t now = kona_now_ms(), next = -1;
    GHashTableIter it;
    gpointer k;
    GSList *dead = NULL;

    g_hash_table_iter_init(&it, rack.leased);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        RcAlloc *a = k;

        if (a->lease_until_ms <= now) {
            dead = g_slist_prepend(dead, a);
        } else if (next < 0 || a->lease_until_ms - now < next) {
            next = a->lease_until_ms - now;
        }
    }
    for (GSList *l = dead; l; l = l->next) {
        RcAlloc *a = l->data;
        rc_log("allocation %" G_GUINT64_FORMAT ": lease expired, freeing",
               a->id);
        alloc_destroy(a);
    }
    g_slist_free(dead);
    return next;
}

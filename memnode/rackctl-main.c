/*
 * kona-rackctl: the rack controller.  Memory nodes register their
 * capacity; clients ask for memory and get slabs striped across nodes
 * (see "Rack controller" in kona-proto.h).
 *
 * The controller allocates each slab itself, over its own kona-link
 * connection to the memnode, and hands the client the slab id and key;
 * its connection keeps the slab alive until the allocation is freed.
 * It is a control plane: one thread, and the calls to memnodes block the
 * loop for at most their timeouts.
 */
#include "kona-auth.h"
#include "kona-link.h"
#include "kona-server-loop.h"
#include "kona-server-opts.h"
#include "kona-sock.h"
#include "kona-util.h"
#include "rackctl-place.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct RcNode {
    uint64_t id;
    char *addr;
    uint64_t capacity;
    uint64_t used;
    bool alive;                 /* its registration connection is open */
    KonaLink *link;             /* our client connection to it */
} RcNode;

typedef struct RcStripe {
    RcNode *node;
    uint64_t offset;
    uint64_t size;
    uint64_t slab_id;
    uint8_t key[KONA_KEY_SIZE];
} RcStripe;

typedef struct RcConn RcConn;

typedef struct RcAlloc {
    uint64_t id;
    char *name;                 /* named: lives until RACK_FREE */
    uint64_t size;
    GArray *stripes;            /* RcStripe */
    RcConn *owner;              /* unnamed: freed when the owner leaves */
} RcAlloc;

/* A connection's controller state (KonaConn.priv). */
struct RcConn {
    KonaConn *kc;
    RcNode *node;               /* the memnode registered on this conn */
};

static KonaServerOpts sopt;

static struct {
    char *slab_size_s;
} opt;

static struct {
    KonaServerConfig cfg;
    KonaServer *ks;
    GPtrArray *nodes;           /* RcNode*, index = placement node index */
    GHashTable *allocs;         /* id -> RcAlloc* */
    GHashTable *named;          /* name -> RcAlloc* */
    uint64_t next_alloc;
    unsigned cursor;
    uint64_t slab_size;
} rack;

static GOptionEntry entries[] = {
    { "slab-size", 0, 0, G_OPTION_ARG_STRING, &opt.slab_size_s,
      "Default stripe/slab size (default 64M)", "SIZE" },
    { 0 }
};

#define die(...) kona_die("kona-rackctl", __VA_ARGS__)

static void G_GNUC_PRINTF(1, 2) vlog(const char *fmt, ...)
{
    va_list ap;

    if (!sopt.verbose) {
        return;
    }
    fprintf(stderr, "kona-rackctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- replies ---- */

#define reply(c, h, len) kona_reply((c)->kc, h, len)
#define reply_err(c, h, err, ...) kona_reply_err((c)->kc, h, err, __VA_ARGS__)

/* ---- nodes and allocations ---- */

static KonaLink *node_link(RcNode *n, GError **errp)
{
    KonaLinkOptions o = {
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
        .name = "kona-rackctl",
    };
    gsize slen = 0;

    if (n->link) {
        return n->link;
    }
    if (rack.cfg.secret) {
        o.secret = g_bytes_get_data(rack.cfg.secret, &slen);
        o.secret_len = slen;
    }
    n->link = kona_link_connect_opts(n->addr, &o, errp);
    return n->link;
}

static void alloc_destroy(RcAlloc *a)
{
    for (guint i = 0; i < a->stripes->len; i++) {
        RcStripe *s = &g_array_index(a->stripes, RcStripe, i);
        g_autoptr(GError) err = NULL;

        s->node->used -= s->size;
        if (s->node->link &&
            kona_link_slab_free(s->node->link, s->slab_id, &err) < 0) {
            /* a dead node's slabs went with it */
            vlog("freeing slab %" G_GUINT64_FORMAT " on %s: %s", s->slab_id,
                 s->node->addr, err->message);
        }
    }
    g_hash_table_remove(rack.allocs, &a->id);
    if (a->name) {
        g_hash_table_remove(rack.named, a->name);
    }
    g_array_free(a->stripes, TRUE);
    g_free(a->name);
    g_free(a);
}

static void put_alloc_reply(RcConn *c, const KonaHdr *h, RcAlloc *a)
{
    uint32_t len = sizeof(KonaRackAllocRep);
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
}

static void op_alloc(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackAllocReq req;
    const char *name_p, *why;
    g_autofree char *name = NULL;
    g_autofree RcPlaceNode *pn = NULL;
    g_autofree unsigned *node_of = NULL;
    uint64_t size, slab, free_total = 0, largest = 0;
    unsigned nnodes = rack.nodes->len, live = 0;
    char b1[32], b2[32], b3[32], b4[32];
    RcAlloc *a;
    int n;

    why = kona_decode_rack_alloc_req(payload, h->len, &req, &name_p);
    if (why) {
        reply_err(c, h, EINVAL, "%s", why);
        return;
    }
    if (req.name_len) {
        name = g_strndup(name_p, req.name_len);
        a = g_hash_table_lookup(rack.named, name);
        if (a) {
            if (req.size && (req.size + KONA_PAGE_SIZE - 1) /
                KONA_PAGE_SIZE * KONA_PAGE_SIZE != a->size) {
                reply_err(c, h, EEXIST, "allocation %s exists with %"
                          G_GUINT64_FORMAT " bytes", name, a->size);
                return;
            }
            put_alloc_reply(c, h, a);
            return;
        }
    }
    if (!req.size || req.size > (KONA_MAX_SLAB_SIZE * KONA_MAX_PLACEMENTS)) {
        reply_err(c, h, EINVAL, "cannot allocate %" G_GUINT64_FORMAT
                  " bytes", req.size);
        return;
    }
    size = (req.size + KONA_PAGE_SIZE - 1) / KONA_PAGE_SIZE * KONA_PAGE_SIZE;
    slab = req.slab_size ? req.slab_size : rack.slab_size;
    if (slab % KONA_PAGE_SIZE || slab > KONA_MAX_SLAB_SIZE) {
        reply_err(c, h, EINVAL, "slab size %" G_GUINT64_FORMAT " must be a "
                  "multiple of 4096 up to 1 TiB", slab);
        return;
    }
    if ((size + slab - 1) / slab > KONA_MAX_PLACEMENTS) {
        reply_err(c, h, EINVAL, "%s in slabs of %s is more than %d slabs; "
                  "ask for bigger slabs",
                  kona_format_size(size, b1, sizeof(b1)),
                  kona_format_size(slab, b2, sizeof(b2)), KONA_MAX_PLACEMENTS);
        return;
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
        return;
    }

    a = g_new0(RcAlloc, 1);
    a->id = ++rack.next_alloc;
    a->size = size;
    a->stripes = g_array_new(FALSE, TRUE, sizeof(RcStripe));
    g_hash_table_insert(rack.allocs, &a->id, a);
    for (int i = 0; i < n; i++) {
        RcStripe s = {
            .node = g_ptr_array_index(rack.nodes, node_of[i]),
            .offset = (uint64_t)i * slab,
            .size = MIN(slab, size - (uint64_t)i * slab),
        };
        g_autoptr(GError) err = NULL;
        KonaLink *l = node_link(s.node, &err);

        if (!l || kona_link_slab_alloc(l, s.size, &s.slab_id, &err) < 0) {
            reply_err(c, h, err->code, "memory node %s: %s", s.node->addr,
                      err->message);
            alloc_destroy(a);
            return;
        }
        kona_link_slab_info(l, s.slab_id, s.key, NULL);
        s.node->used += s.size;
        g_array_append_val(a->stripes, s);
    }
    if (name) {
        a->name = g_steal_pointer(&name);
        g_hash_table_insert(rack.named, a->name, a);
    } else {
        a->owner = c;
    }
    vlog("%s: allocation %" G_GUINT64_FORMAT ": %s in %d slabs", c->kc->peer,
         a->id, kona_format_size(size, b1, sizeof(b1)), n);
    put_alloc_reply(c, h, a);
}

static void op_free(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackFreeReq req;
    RcAlloc *a;

    kona_decode_rack_free_req(payload, h->len, &req);
    a = g_hash_table_lookup(rack.allocs, &req.alloc_id);
    if (!a || (!a->name && a->owner != c)) {
        reply_err(c, h, ENOENT, "no allocation %" G_GUINT64_FORMAT
                  " of this client", req.alloc_id);
        return;
    }
    alloc_destroy(a);
    reply(c, h, 0);
}

static void op_register(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackRegisterReq req;
    const char *addr_p, *why;
    g_autofree char *addr = NULL;
    g_autoptr(GError) err = NULL;
    RcNode *n = NULL;
    KonaAddr ka;

    why = kona_decode_rack_register_req(payload, h->len, &req, &addr_p);
    if (why) {
        reply_err(c, h, EINVAL, "%s", why);
        return;
    }
    addr = g_strndup(addr_p, req.addr_len);
    if (!kona_addr_parse(addr, &ka, &err)) {
        reply_err(c, h, EINVAL, "%s", err->message);
        return;
    }
    kona_addr_clear(&ka);
    if (c->node) {
        reply_err(c, h, EEXIST, "this connection already registered %s",
                  c->node->addr);
        return;
    }
    for (guint i = 0; i < rack.nodes->len; i++) {
        RcNode *x = g_ptr_array_index(rack.nodes, i);
        if (!strcmp(x->addr, addr)) {
            n = x;
        }
    }
    if (n && n->alive) {
        reply_err(c, h, EEXIST, "a memory node at %s is already registered",
                  addr);
        return;
    }
    if (!n) {
        n = g_new0(RcNode, 1);
        n->id = rack.nodes->len + 1;
        n->addr = g_steal_pointer(&addr);
        g_ptr_array_add(rack.nodes, n);
    }
    n->capacity = req.capacity;
    n->alive = true;
    c->node = n;
    vlog("memory node %" G_GUINT64_FORMAT " at %s registered with %"
         G_GUINT64_FORMAT " bytes", n->id, n->addr, n->capacity);
    kona_st64(reply(c, h, 8), n->id);
}

static void op_status(RcConn *c, const KonaHdr *h)
{
    uint32_t len = sizeof(KonaRackStatusRep);
    uint64_t cap = 0, used = 0;
    uint8_t *p;

    for (guint i = 0; i < rack.nodes->len; i++) {
        RcNode *n = g_ptr_array_index(rack.nodes, i);
        len += sizeof(KonaRackNode) + kona_pad8((uint32_t)strlen(n->addr));
        if (n->alive) {
            cap += n->capacity;
        }
        used += n->used;
    }
    p = reply(c, h, len);
    memset(p, 0, len);
    kona_st64(p, cap);
    kona_st64(p + 8, used);
    kona_st32(p + 16, rack.nodes->len);
    kona_st32(p + 20, g_hash_table_size(rack.allocs));
    p += sizeof(KonaRackStatusRep);
    for (guint i = 0; i < rack.nodes->len; i++) {
        RcNode *n = g_ptr_array_index(rack.nodes, i);
        size_t alen = strlen(n->addr);

        kona_st64(p, n->id);
        kona_st64(p + 8, n->capacity);
        kona_st64(p + 16, n->used);
        kona_st16(p + 24, (uint16_t)alen);
        kona_st16(p + 26, n->alive ? KONA_RACK_NODE_F_ALIVE : 0);
        p += sizeof(KonaRackNode);
        memcpy(p, n->addr, alen);
        p += kona_pad8((uint32_t)alen);
    }
}

/* ---- connections ---- */

static bool rc_dispatch(KonaConn *kc, const KonaHdr *h, const uint8_t *p)
{
    RcConn *c = kc->priv;

    switch (h->op) {
    case KONA_OP_RACK_REGISTER:
        op_register(c, h, p);
        return true;
    case KONA_OP_RACK_ALLOC:
        op_alloc(c, h, p);
        return true;
    case KONA_OP_RACK_FREE:
        op_free(c, h, p);
        return true;
    case KONA_OP_RACK_STATUS:
        op_status(c, h);
        return true;
    default:
        reply_err(c, h, EOPNOTSUPP, "%s: this is the rack controller; "
                  "slab and data ops go to memory nodes", kona_op_name(h->op));
        return true;
    }
}

static uint64_t rc_caps(KonaConn *kc, uint64_t asked)
{
    return asked & (KONA_CAP_RACK | KONA_CAP_AUTH | KONA_CAP_ERRMSG |
                    KONA_CAP_PIPELINE);
}

static void *rc_conn_new(KonaConn *kc)
{
    RcConn *c = g_new0(RcConn, 1);

    c->kc = kc;
    return c;
}

static void rc_conn_gone(KonaConn *kc)
{
    RcConn *c = kc->priv;
    GHashTableIter it;
    gpointer v;
    GSList *mine = NULL;

    if (c->node) {
        c->node->alive = false;
        vlog("memory node %s went away", c->node->addr);
    }
    g_hash_table_iter_init(&it, rack.allocs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        RcAlloc *a = v;
        if (a->owner == c) {
            mine = g_slist_prepend(mine, a);
        }
    }
    for (GSList *l = mine; l; l = l->next) {
        alloc_destroy(l->data);
    }
    g_slist_free(mine);
    g_free(c);
    kc->priv = NULL;
}

static const KonaServerOps rc_ops = {
    .conn_new = rc_conn_new,
    .caps = rc_caps,
    .dispatch = rc_dispatch,
    .conn_gone = rc_conn_gone,
};

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;

    kona_server_opts_parse(&sopt, "kona-rackctl", "tcp:127.0.0.1:7078",
        "- Kona rack controller",
        "Memory nodes (kona-memnode --controller ADDR) register here;\n"
        "clients get memory as slabs striped across them.  Prints a ready\n"
        "line on stdout once it listens; SIGTERM shuts it down.", entries,
        argc, argv);
    rack.slab_size = 64 << 20;
    if (opt.slab_size_s &&
        !kona_parse_size(opt.slab_size_s, &rack.slab_size, &err)) {
        die("--slab-size: %s", err->message);
    }
    if (!rack.slab_size || rack.slab_size % KONA_PAGE_SIZE) {
        die("--slab-size must be a non-zero multiple of 4096");
    }
    kona_server_opts_config(&sopt, &rack.cfg);
    rack.nodes = g_ptr_array_new();
    rack.allocs = g_hash_table_new(g_int64_hash, g_int64_equal);
    rack.named = g_hash_table_new(g_str_hash, g_str_equal);
    rack.ks = kona_server_new(&rack.cfg, &rc_ops, NULL);
    kona_server_opts_listen(&sopt, rack.ks);
    kona_server_opts_ready(&sopt, rack.ks);

    kona_server_run(rack.ks);

    kona_server_shutdown(rack.ks);
    /* named allocations' slabs stay on the memnodes (they linger there) */
    for (guint i = 0; i < rack.nodes->len; i++) {
        RcNode *nd = g_ptr_array_index(rack.nodes, i);
        kona_link_close(nd->link);
    }
    kona_server_free(rack.ks);
    kona_server_opts_finish(&sopt, &rack.cfg);
    return 0;
}

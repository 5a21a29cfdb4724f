/*
 * kona-rackctl: the rack controller.  Memory nodes register their
 * capacity; clients ask for memory and get slabs striped across nodes
 * (see "Rack controller" in kona-proto.h; allocations are in
 * rackctl-alloc.c).
 *
 * It is a control plane: one thread, and the calls to memnodes block the
 * loop for at most their timeouts.
 */
#include "kona-link.h"
#include "kona-server-loop.h"
#include "kona-server-opts.h"
#include "kona-sock.h"
#include "kona-util.h"
#include "rackctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static KonaServerOpts sopt;

static struct {
    char *slab_size_s;
    int lease_s;
} opt = { .lease_s = 60 };

static GOptionEntry entries[] = {
    { "slab-size", 0, 0, G_OPTION_ARG_STRING, &opt.slab_size_s,
      "Default stripe/slab size (default 64M)", "SIZE" },
    { "lease", 0, 0, G_OPTION_ARG_INT, &opt.lease_s,
      "Keep an unnamed allocation whose client's connection dropped this "
      "long, for the client to reclaim (default 60; 0 frees at once)",
      "SECONDS" },
    { 0 }
};

#define die(...) kona_die("kona-rackctl", __VA_ARGS__)

/* ---- replies ---- */

#define reply(c, h, len) kona_reply((c)->kc, h, len)
#define reply_err(c, h, err, ...) kona_reply_err((c)->kc, h, err, __VA_ARGS__)

/* ---- memory nodes ---- */

static bool op_register(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaRackRegisterReq req;
    const char *addr_p, *why;
    g_autofree char *addr = NULL;
    g_autoptr(GError) err = NULL;
    RcNode *n = NULL;
    KonaAddr ka;

    why = kona_decode_rack_register_req(payload, h->len, &req, &addr_p);
    if (why) {
        return kona_bad_frame(c->kc, h, why);
    }
    addr = g_strndup(addr_p, req.addr_len);
    if (!kona_addr_parse(addr, &ka, &err)) {
        reply_err(c, h, EINVAL, "%s", err->message);
        return true;
    }
    kona_addr_clear(&ka);
    if (c->node) {
        reply_err(c, h, EEXIST, "this connection already registered %s",
                  c->node->addr);
        return true;
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
        return true;
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
    rc_log("memory node %" G_GUINT64_FORMAT " at %s registered with %"
           G_GUINT64_FORMAT " bytes", n->id, n->addr, n->capacity);
    kona_st64(reply(c, h, 8), n->id);
    return true;
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
        return op_register(c, h, p);
    case KONA_OP_RACK_ALLOC:
        return rc_op_alloc(c, h, p);
    case KONA_OP_RACK_RECLAIM:
        return rc_op_reclaim(c, h, p);
    case KONA_OP_RACK_FREE:
        return rc_op_free(c, h, p);
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
                    KONA_CAP_PIPELINE | KONA_CAP_RECLAIM);
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

    if (c->node) {
        c->node->alive = false;
        rc_log("memory node %s went away", c->node->addr);
    }
    rc_alloc_conn_gone(c);
    g_free(c);
    kc->priv = NULL;
}

static int64_t rc_timer(void *opaque)
{
    return rc_alloc_expire();
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
    if (opt.lease_s < 0) {
        die("--lease must be >= 0");
    }
    rack.lease_ms = (int64_t)opt.lease_s * 1000;
    kona_server_opts_config(&sopt, &rack.cfg);
    rack.verbose = sopt.verbose;
    rack.nodes = g_ptr_array_new();
    rc_alloc_init();
    rack.ks = kona_server_new(&rack.cfg, &rc_ops, NULL);
    kona_server_set_timer(rack.ks, rc_timer, NULL);
    kona_server_opts_listen(&sopt, rack.ks);
    kona_server_opts_ready(&sopt, rack.ks);

    kona_server_run(rack.ks);

    /* allocations are not freed: their slabs linger on the memnodes */
    kona_server_shutdown(rack.ks);
    for (guint i = 0; i < rack.nodes->len; i++) {
        RcNode *nd = g_ptr_array_index(rack.nodes, i);
        kona_link_close(nd->link);
    }
    kona_server_free(rack.ks);
    kona_server_opts_finish(&sopt, &rack.cfg);
    return 0;
}

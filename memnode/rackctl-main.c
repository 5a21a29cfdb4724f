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
#include "kona-outq.h"
#include "kona-sock.h"
#include "kona-util.h"
#include "rackctl-place.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS  64
#define IN_BUF_INIT (16u << 10)

typedef enum WatchKind { WATCH_LISTENER, WATCH_CONN, WATCH_SIGNAL } WatchKind;
typedef struct Watch { WatchKind kind; } Watch;

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

typedef enum { ST_HELLO, ST_AUTH, ST_READY } ConnState;

struct RcConn {
    Watch w;
    int fd;
    char *peer;
    bool auth_required;
    ConnState state;
    uint8_t nonce[KONA_NONCE_SIZE];
    uint8_t *in;
    size_t in_off, in_len, in_cap;
    KonaOutq out;
    bool closing;
    uint32_t events;
    RcNode *node;               /* the memnode registered on this conn */
};

typedef struct Listener {
    Watch w;
    int fd;
    char *addr;
    char *unix_path;
    bool auth_required;
} Listener;

static struct {
    char **listen;
    char *slab_size_s;
    char *secret_file;
    gboolean auth_all;
    int ready_fd;
    char *pid_file;
    gboolean verbose;
} opt = { .ready_fd = -1 };

static struct {
    int epfd;
    GPtrArray *listeners;
    GPtrArray *nodes;           /* RcNode*, index = placement node index */
    GHashTable *allocs;         /* id -> RcAlloc* */
    GHashTable *named;          /* name -> RcAlloc* */
    GList *conns;
    uint64_t next_alloc;
    unsigned cursor;
    uint64_t slab_size;
    GBytes *secret;
    uint64_t clients_total;
} rack;

static GOptionEntry entries[] = {
    { "listen", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt.listen,
      "Listen on ADDR: unix:/path or tcp:host:port (port 0 picks one); "
      "repeatable (default tcp:127.0.0.1:7078)", "ADDR" },
    { "slab-size", 0, 0, G_OPTION_ARG_STRING, &opt.slab_size_s,
      "Default stripe/slab size (default 64M)", "SIZE" },
    { "secret-file", 's', 0, G_OPTION_ARG_FILENAME, &opt.secret_file,
      "Shared secret: clients and memnodes authenticate with it, and the "
      "controller uses it towards memnodes", "FILE" },
    { "auth-all", 0, 0, G_OPTION_ARG_NONE, &opt.auth_all,
      "Require authentication on loopback listeners too", NULL },
    { "ready-fd", 0, 0, G_OPTION_ARG_INT, &opt.ready_fd,
      "Write 'READY addr...' to FD and close it once listening", "FD" },
    { "pid-file", 0, 0, G_OPTION_ARG_FILENAME, &opt.pid_file,
      "Write the process id to FILE once listening", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt.verbose,
      "Log registrations and allocations", NULL },
    { 0 }
};

#define die(...) kona_die("kona-rackctl", __VA_ARGS__)

static void G_GNUC_PRINTF(1, 2) vlog(const char *fmt, ...)
{
    va_list ap;

    if (!opt.verbose) {
        return;
    }
    fprintf(stderr, "kona-rackctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- replies ---- */

static uint8_t *reply(RcConn *c, const KonaHdr *h, uint32_t len)
{
    return kona_outq_reply(&c->out, h, len);
}

static void G_GNUC_PRINTF(4, 5)
reply_err(RcConn *c, const KonaHdr *h, int err, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    kona_outq_reply_error(&c->out, h, err, msg);
    vlog("%s: %s refused: %s", c->peer, kona_op_name(h->op), msg);
}

static bool bad_frame(RcConn *c, const KonaHdr *h, const char *why)
{
    fprintf(stderr, "kona-rackctl: closing %s: malformed %s frame: %s\n",
            c->peer, kona_op_name(h->op), why);
    return false;
}

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
    if (rack.secret) {
        o.secret = g_bytes_get_data(rack.secret, &slen);
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
    vlog("%s: allocation %" G_GUINT64_FORMAT ": %s in %d slabs", c->peer,
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

static bool op_hello(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    KonaHelloReq req;
    const char *why = kona_decode_hello_req(payload, h->len, &req);
    uint8_t *r;

    if (why) {
        return bad_frame(c, h, why);
    }
    r = reply(c, h, sizeof(KonaHelloRep));
    kona_st32(r, KONA_PROTO_MAGIC);
    kona_st16(r + 4, KONA_PROTO_VERSION);
    kona_st16(r + 6, c->auth_required ? KONA_HELLO_F_AUTH_REQUIRED : 0);
    kona_st64(r + 8, req.caps & (KONA_CAP_RACK | KONA_CAP_AUTH |
                                 KONA_CAP_ERRMSG | KONA_CAP_PIPELINE));
    kona_st32(r + 16, KONA_MAX_PAYLOAD);
    kona_st32(r + 20, 0);
    kona_st64(r + 24, 0);
    kona_st64(r + 32, 0);
    memcpy(r + 40, c->nonce, KONA_NONCE_SIZE);
    c->state = c->auth_required ? ST_AUTH : ST_READY;
    return true;
}

static void op_auth(RcConn *c, const KonaHdr *h, const uint8_t *payload)
{
    uint8_t want[KONA_MAC_SIZE];
    const uint8_t *secret;
    gsize slen;

    secret = g_bytes_get_data(rack.secret, &slen);
    kona_auth_mac(secret, slen, KONA_AUTH_CLIENT, c->nonce, payload, want);
    if (!kona_auth_equal(want, payload + KONA_NONCE_SIZE, KONA_MAC_SIZE)) {
        reply_err(c, h, EACCES, "authentication failed (wrong secret)");
        c->closing = true;
        return;
    }
    kona_auth_mac(secret, slen, KONA_AUTH_SERVER, c->nonce, payload,
                  reply(c, h, KONA_MAC_SIZE));
    c->state = ST_READY;
}

static bool dispatch(RcConn *c, const KonaHdr *h, const uint8_t *p)
{
    if (c->state == ST_HELLO) {
        return h->op == KONA_OP_HELLO ? op_hello(c, h, p)
               : bad_frame(c, h, "first frame must be HELLO");
    }
    if (c->state == ST_AUTH) {
        if (h->op != KONA_OP_AUTH) {
            return bad_frame(c, h, "authentication required before this op");
        }
        op_auth(c, h, p);
        return true;
    }
    switch (h->op) {
    case KONA_OP_PING:
        memcpy(reply(c, h, h->len), p, h->len);
        return true;
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
    case KONA_OP_HELLO:
    case KONA_OP_AUTH:
        return bad_frame(c, h, "handshake op after the handshake");
    default:
        reply_err(c, h, EOPNOTSUPP, "%s: this is the rack controller; "
                  "slab and data ops go to memory nodes", kona_op_name(h->op));
        return true;
    }
}

static bool conn_process(RcConn *c)
{
    while (!c->closing) {
        size_t avail = c->in_len - c->in_off;
        const char *why;
        KonaHdr h;

        if (avail < KONA_HDR_SIZE) {
            break;
        }
        kona_hdr_decode(c->in + c->in_off, &h);
        why = kona_check_request_hdr(&h);
        if (why) {
            return bad_frame(c, &h, why);
        }
        if (avail < KONA_HDR_SIZE + (size_t)h.len) {
            size_t need = KONA_HDR_SIZE + (size_t)h.len;
            memmove(c->in, c->in + c->in_off, avail);
            c->in_off = 0;
            c->in_len = avail;
            if (need > c->in_cap) {
                c->in_cap = need;
                c->in = g_realloc(c->in, need);
            }
            break;
        }
        if (!dispatch(c, &h, c->in + c->in_off + KONA_HDR_SIZE)) {
            return false;
        }
        c->in_off += KONA_HDR_SIZE + h.len;
    }
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
    }
    return true;
}

static void conn_close(RcConn *c)
{
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
    epoll_ctl(rack.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    rack.conns = g_list_remove(rack.conns, c);
    kona_outq_destroy(&c->out);
    g_free(c->in);
    g_free(c->peer);
    g_free(c);
}

static void conn_event(RcConn *c, uint32_t events)
{
    struct epoll_event ev = { .data.ptr = c };
    int r;

    if (events & EPOLLIN) {
        ssize_t n;

        if (c->in_len == c->in_cap) {
            c->in_cap *= 2;
            c->in = g_realloc(c->in, c->in_cap);
        }
        n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            c->in_len += (size_t)n;
        }
    } else if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(c);
        return;
    }
    if (!conn_process(c)) {
        kona_outq_flush(&c->out, c->fd);
        conn_close(c);
        return;
    }
    r = kona_outq_flush(&c->out, c->fd);
    if (r < 0 || (c->closing && r == 0)) {
        conn_close(c);
        return;
    }
    ev.events = (c->closing ? 0 : EPOLLIN) | (r == 1 ? EPOLLOUT : 0);
    if (ev.events != c->events) {
        epoll_ctl(rack.epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->events = ev.events;
    }
}

static void accept_clients(Listener *ls)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN };
        RcConn *c;

        if (fd < 0) {
            return;
        }
        c = g_new0(RcConn, 1);
        c->w.kind = WATCH_CONN;
        c->fd = fd;
        c->peer = g_strdup_printf("client %" G_GUINT64_FORMAT " on %s",
                                  ++rack.clients_total, ls->addr);
        c->auth_required = ls->auth_required;
        c->in_cap = IN_BUF_INIT;
        c->in = g_malloc(c->in_cap);
        c->events = EPOLLIN;
        kona_outq_init(&c->out, 16 << 10);
        kona_random_bytes(c->nonce, sizeof(c->nonce));
        ev.data.ptr = c;
        epoll_ctl(rack.epfd, EPOLL_CTL_ADD, fd, &ev);
        rack.conns = g_list_prepend(rack.conns, c);
    }
}

/* ---- setup ---- */

static void add_listener(const char *addr)
{
    g_autoptr(GError) err = NULL;
    Listener *ls = g_new0(Listener, 1);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ls };
    bool loopback;

    ls->w.kind = WATCH_LISTENER;
    ls->fd = kona_listen(addr, &ls->addr, &loopback, &err);
    if (ls->fd < 0) {
        die("%s", err->message);
    }
    if (g_str_has_prefix(addr, "unix:")) {
        ls->unix_path = g_strdup(addr + 5);
    }
    if (!loopback && !rack.secret) {
        die("%s is reachable from other hosts: give --secret-file so "
            "clients must authenticate", ls->addr);
    }
    ls->auth_required = !loopback || opt.auth_all;
    epoll_ctl(rack.epfd, EPOLL_CTL_ADD, ls->fd, &ev);
    g_ptr_array_add(rack.listeners, ls);
}

static void announce_ready(void)
{
    GString *addrs = g_string_new(NULL);

    for (guint i = 0; i < rack.listeners->len; i++) {
        Listener *ls = g_ptr_array_index(rack.listeners, i);
        g_string_append_printf(addrs, "%s%s", i ? " " : "", ls->addr);
    }
    kona_announce_ready("kona-rackctl", addrs->str, opt.pid_file, opt.ready_fd);
    g_string_free(addrs, TRUE);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) err = NULL;
    struct epoll_event ev[MAX_EVENTS];
    Watch sig_watch = { WATCH_SIGNAL };
    struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &sig_watch };
    sigset_t set;
    int sigfd;
    bool quit = false;

    ctx = g_option_context_new("- Kona rack controller");
    g_option_context_set_summary(ctx,
        "Memory nodes (kona-memnode --controller ADDR) register here;\n"
        "clients get memory as slabs striped across them.  Prints a ready\n"
        "line on stdout once it listens; SIGTERM shuts it down.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        die("%s (see --help)", err->message);
    }
    if (argc > 1) {
        die("unexpected argument '%s' (see --help)", argv[1]);
    }
    rack.slab_size = 64 << 20;
    if (opt.slab_size_s &&
        !kona_parse_size(opt.slab_size_s, &rack.slab_size, &err)) {
        die("--slab-size: %s", err->message);
    }
    if (!rack.slab_size || rack.slab_size % KONA_PAGE_SIZE) {
        die("--slab-size must be a non-zero multiple of 4096");
    }
    if (opt.secret_file) {
        rack.secret = kona_auth_load_secret(opt.secret_file, &err);
        if (!rack.secret) {
            die("%s", err->message);
        }
    } else if (opt.auth_all) {
        die("--auth-all needs --secret-file");
    }

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    rack.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sigfd < 0 || rack.epfd < 0) {
        die("signalfd/epoll: %s", g_strerror(errno));
    }
    epoll_ctl(rack.epfd, EPOLL_CTL_ADD, sigfd, &sev);
    rack.listeners = g_ptr_array_new();
    rack.nodes = g_ptr_array_new();
    rack.allocs = g_hash_table_new(g_int64_hash, g_int64_equal);
    rack.named = g_hash_table_new(g_str_hash, g_str_equal);
    if (!opt.listen) {
        add_listener("tcp:127.0.0.1:7078");
    }
    for (char **a = opt.listen; a && *a; a++) {
        add_listener(*a);
    }
    announce_ready();

    while (!quit) {
        int n = epoll_wait(rack.epfd, ev, MAX_EVENTS, -1);

        for (int i = 0; i < n; i++) {
            Watch *w = ev[i].data.ptr;

            if (w->kind == WATCH_LISTENER) {
                accept_clients((Listener *)w);
            } else if (w->kind == WATCH_CONN) {
                conn_event((RcConn *)w, ev[i].events);
            } else {
                quit = true;
            }
        }
    }
    fprintf(stderr, "kona-rackctl: shutting down\n");
    while (rack.conns) {
        conn_close(rack.conns->data);
    }
    for (guint i = 0; i < rack.listeners->len; i++) {
        Listener *ls = g_ptr_array_index(rack.listeners, i);
        close(ls->fd);
        if (ls->unix_path) {
            unlink(ls->unix_path);
        }
    }
    /* named allocations' slabs stay on the memnodes (they linger there) */
    for (guint i = 0; i < rack.nodes->len; i++) {
        RcNode *nd = g_ptr_array_index(rack.nodes, i);
        kona_link_close(nd->link);
    }
    if (opt.pid_file) {
        unlink(opt.pid_file);
    }
    return 0;
}

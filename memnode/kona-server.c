/*
 * Server core shared by kona-memnode and kona-rackctl: connections,
 * framing, the handshake and the per-connection limits (see
 * kona-server.h).
 *
 * A connection costs what its buffers hold: the input buffer (small
 * until the handshake is done, then IN_BUF_INIT, more only for one frame
 * that needs it) and the output queue, whose cost (kona_outq_cost: bytes,
 * entries, allocations) is kept under --max-inflight by not processing
 * more requests while it is over.  So a client that sends small requests
 * and never reads its replies holds at most about max_inflight plus
 * these buffers.
 */
#include "kona-server.h"
#include "kona-auth.h"
#include "kona-util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define IN_BUF_HANDSHAKE    (4u << 10)  /* HELLO and AUTH are tiny */
#define IN_BUF_INIT         (64u << 10)
#define IN_BUF_KEEP         (256u << 10)    /* shrink back to INIT when idle */
#define OUT_ARENA           (64u << 10)

KonaServer *kona_server_new(const KonaServerConfig *cfg,
                            const KonaServerOps *ops, void *opaque)
{
    KonaServer *s = g_new0(KonaServer, 1);

    s->cfg = *cfg;
    if (cfg->secret) {
        s->cfg.secret = g_bytes_ref(cfg->secret);
    }
    s->ops = ops;
    s->opaque = opaque;
    kona_random_bytes(&s->node_id, sizeof(s->node_id));
    return s;
}

void kona_server_free(KonaServer *s)
{
    if (!s) {
        return;
    }
    while (s->handshaking.head) {
        kona_conn_free(s->handshaking.head->data);
    }
    while (s->ready.head) {
        kona_conn_free(s->ready.head->data);
    }
    if (s->cfg.secret) {
        g_bytes_unref(s->cfg.secret);
    }
    g_free(s);
}

unsigned kona_server_conns(const KonaServer *s)
{
    return s->handshaking.length + s->ready.length;
}

KonaConn *kona_conn_new(KonaServer *s, int fd, const char *peer,
                        bool auth_required, bool unix_sock)
{
    KonaConn *c = g_new0(KonaConn, 1);

    c->srv = s;
    c->fd = fd;
    c->peer = g_strdup(peer);
    c->auth_required = auth_required;
    c->unix_sock = unix_sock;
    c->in_cap = IN_BUF_HANDSHAKE;
    c->in = g_malloc(c->in_cap);
    kona_outq_init(&c->out, OUT_ARENA);
    kona_random_bytes(c->nonce, sizeof(c->nonce));
    c->handshake_deadline_ms = kona_now_ms() + s->cfg.handshake_ms;
    c->link.data = c;
    c->busy_link.data = c;
    g_queue_push_tail_link(&s->handshaking, &c->link);
    s->stats.conns_total++;
    c->priv = s->ops->conn_new ? s->ops->conn_new(c) : NULL;
    return c;
}

void kona_conn_free(KonaConn *c)
{
    KonaServer *s = c->srv;

    /* the queued replies may point into the daemon's memory: first */
    kona_outq_destroy(&c->out);
    if (s->ops->conn_gone) {
        s->ops->conn_gone(c);
    }
    g_queue_unlink(c->state == KONA_CONN_READY ? &s->ready : &s->handshaking,
                   &c->link);
    if (c->busy) {
        g_queue_unlink(&s->busy, &c->busy_link);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    g_free(c->watch);
    g_free(c->in);
    g_free(c->peer);
    g_free(c);
}

uint8_t *kona_conn_in_space(KonaConn *c, size_t *space)
{
    /* compact so the whole tail of the buffer is free */
    if (c->in_off && c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
    } else if (c->in_off && c->in_cap - c->in_len < c->in_cap / 4) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    *space = c->in_cap - c->in_len;
    return c->in + c->in_len;
}

void kona_conn_in_commit(KonaConn *c, size_t n)
{
    c->in_len += n;
}

/*
 * Room for more replies: their cost, and descriptors (a client that asks
 * for descriptors and never reads them would otherwise use up ours).
 */
bool kona_conn_out_room(const KonaConn *c)
{
    return kona_outq_cost(&c->out) < c->srv->cfg.max_inflight &&
           c->out.n_fds < KONA_MAX_QUEUED_FDS;
}

void kona_conn_set_busy(KonaConn *c)
{
    g_assert(!c->busy && c->srv->ops->resume);
    c->busy = true;
    g_queue_push_tail_link(&c->srv->busy, &c->busy_link);
}

bool kona_conn_resume(KonaConn *c)
{
    KonaServer *s = c->srv;

    g_queue_unlink(&s->busy, &c->busy_link);
    if (s->ops->resume(c)) {
        c->busy = false;
        return true;
    }
    /* the others' turn first */
    g_queue_push_tail_link(&s->busy, &c->busy_link);
    return false;
}

bool kona_conn_want_read(const KonaConn *c)
{
    return !c->closing && !c->busy && kona_conn_out_room(c) &&
           c->in_len - c->in_off < c->in_cap;
}

int kona_conn_flush(KonaConn *c)
{
    return kona_outq_flush(&c->out, c->fd);
}

/* ---- replies ---- */

uint8_t *kona_reply(KonaConn *c, const KonaHdr *h, uint32_t len)
{
    return kona_outq_reply(&c->out, h, len);
}

void kona_reply_err(KonaConn *c, const KonaHdr *h, int err,
                    const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    kona_outq_reply_error(&c->out, h, err, msg);
    c->srv->stats.refused++;
    if (c->srv->cfg.verbose) {
        fprintf(stderr, "%s: %s: %s refused: %s\n", c->srv->cfg.prog,
                c->peer, kona_op_name(h->op), msg);
    }
}

bool kona_bad_frame(KonaConn *c, const KonaHdr *h, const char *why)
{
    c->srv->stats.bad_frames++;
    fprintf(stderr, "%s: closing %s: malformed %s frame: %s\n",
            c->srv->cfg.prog, c->peer, h ? kona_op_name(h->op) : "?", why);
    return false;
}

/* ---- handshake ---- */

/* The handshake is done: the connection counts as a client from now on. */
static void conn_ready(KonaConn *c)
{
    KonaServer *s = c->srv;

    g_queue_unlink(&s->handshaking, &c->link);
    g_queue_push_tail_link(&s->ready, &c->link);
    c->state = KONA_CONN_READY;
    if (c->in_cap < IN_BUF_INIT) {
        c->in_cap = IN_BUF_INIT;
        c->in = g_realloc(c->in, c->in_cap);
    }
}

/*
 * Refuse a client past --max-clients: its handshake reply says why, then
 * the connection closes.  Returns false if it was refused.
 */
static bool conn_admit(KonaConn *c, const KonaHdr *h)
{
    KonaServer *s = c->srv;

    if (s->ready.length < s->cfg.max_clients) {
        return true;
    }
    s->stats.full++;
    kona_reply_err(c, h, EMFILE, "%u clients connected (the limit)",
                   s->cfg.max_clients);
    fprintf(stderr, "%s: refusing %s: %u clients connected "
            "(--max-clients)\n", s->cfg.prog, c->peer, s->cfg.max_clients);
    c->closing = true;
    return false;
}

static bool op_hello(KonaConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaServer *s = c->srv;
    KonaHelloReq req;
    const char *why = kona_decode_hello_req(p, h->len, &req);
    uint8_t *r;

    if (why) {
        return kona_bad_frame(c, h, why);
    }
    if (!c->auth_required && !conn_admit(c, h)) {
        return true;
    }
    g_strlcpy(c->name, req.name, sizeof(c->name));
    c->caps = s->ops->caps(c, req.caps);
    r = kona_reply(c, h, sizeof(KonaHelloRep));
    kona_st32(r, KONA_PROTO_MAGIC);
    kona_st16(r + 4, KONA_PROTO_VERSION);
    kona_st16(r + 6, c->auth_required ? KONA_HELLO_F_AUTH_REQUIRED : 0);
    kona_st64(r + 8, c->caps);
    kona_st32(r + 16, KONA_MAX_PAYLOAD);
    kona_st32(r + 20, s->cfg.max_io);
    kona_st64(r + 24, s->cfg.max_inflight);
    kona_st64(r + 32, s->node_id);
    memcpy(r + 40, c->nonce, KONA_NONCE_SIZE);
    if (c->auth_required) {
        c->state = KONA_CONN_AUTH;
    } else {
        conn_ready(c);
    }
    return true;
}

static bool op_auth(KonaConn *c, const KonaHdr *h, const uint8_t *p)
{
    const uint8_t *client_nonce = p, *mac = p + KONA_NONCE_SIZE;
    uint8_t want[KONA_MAC_SIZE];
    GBytes *secret = c->srv->cfg.secret;
    const uint8_t *sdata;
    gsize slen;

    if (!secret) {
        /* cannot happen: auth is only required where a secret exists */
        kona_reply_err(c, h, EACCES, "no secret configured");
        c->closing = true;
        return true;
    }
    sdata = g_bytes_get_data(secret, &slen);
    kona_auth_mac(sdata, slen, KONA_AUTH_CLIENT, c->nonce, client_nonce, want);
    if (!kona_auth_equal(want, mac, KONA_MAC_SIZE)) {
        kona_reply_err(c, h, EACCES, "authentication failed (wrong secret)");
        fprintf(stderr, "%s: %s: authentication failed\n", c->srv->cfg.prog,
                c->peer);
        c->closing = true;
        return true;
    }
    if (!conn_admit(c, h)) {
        return true;
    }
    kona_auth_mac(sdata, slen, KONA_AUTH_SERVER, c->nonce, client_nonce,
                  kona_reply(c, h, KONA_MAC_SIZE));
    conn_ready(c);
    return true;
}

static bool dispatch(KonaConn *c, const KonaHdr *h, const uint8_t *p)
{
    c->srv->stats.ops++;

    switch (c->state) {
    case KONA_CONN_HELLO:
        return h->op == KONA_OP_HELLO ? op_hello(c, h, p) :
               kona_bad_frame(c, h, "first frame must be HELLO");
    case KONA_CONN_AUTH:
        return h->op == KONA_OP_AUTH ? op_auth(c, h, p) :
               kona_bad_frame(c, h, "authentication required before this "
                              "op");
    case KONA_CONN_READY:
        break;
    }
    if (h->op == KONA_OP_HELLO) {
        return kona_bad_frame(c, h, "second HELLO");
    }
    if (h->op == KONA_OP_AUTH) {
        return kona_bad_frame(c, h, "AUTH not asked for");
    }
    if (h->op == KONA_OP_PING) {
        memcpy(kona_reply(c, h, h->len), p, h->len);
        return true;
    }
    return c->srv->ops->dispatch(c, h, p);
}

bool kona_conn_process(KonaConn *c)
{
    while (!c->closing && !c->busy && kona_conn_out_room(c)) {
        size_t avail = c->in_len - c->in_off;
        const char *why;
        KonaHdr h;

        if (avail < KONA_HDR_SIZE) {
            break;
        }
        kona_hdr_decode(c->in + c->in_off, &h);
        why = kona_check_request_hdr(&h);
        if (why) {
            return kona_bad_frame(c, &h, why);
        }
        if (avail < KONA_HDR_SIZE + (size_t)h.len) {
            size_t need = KONA_HDR_SIZE + (size_t)h.len;
            /* make room for the whole frame: it is bounded by the check */
            if (need > c->in_cap - c->in_off) {
                memmove(c->in, c->in + c->in_off, avail);
                c->in_off = 0;
                c->in_len = avail;
                if (need > c->in_cap) {
                    c->in_cap = need;
                    c->in = g_realloc(c->in, c->in_cap);
                }
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
        if (c->in_cap > IN_BUF_KEEP) {
            c->in_cap = IN_BUF_INIT;
            c->in = g_realloc(c->in, c->in_cap);
        }
    }
    return true;
}

int64_t kona_server_handshake_expired(KonaServer *s, GPtrArray *expired)
{
    int64_t now = kona_now_ms(), next = -1;

    /* in accept order, so deadlines are ascending */
    for (GList *l = s->handshaking.head; l; l = l->next) {
        KonaConn *c = l->data;

        if (c->handshake_deadline_ms <= now) {
            g_ptr_array_add(expired, c);
        } else {
            next = c->handshake_deadline_ms - now;
            break;
        }
    }
    return next;
}

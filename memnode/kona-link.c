/*
 * kona-link: the memory-node client (see kona-link.h).
 *
 * The socket is blocking with SO_RCVTIMEO, so waiting for a reply is a
 * single recv() (no poll first): the round trip costs what the raw socket
 * costs.  Sends use MSG_DONTWAIT; if the socket is full we read replies
 * while waiting for room, because the server stops reading a client whose
 * replies pile up and both sides would otherwise wait for each other.
 *
 * Replies come back in request order (a protocol guarantee), so the reply
 * to a large READ can be received straight into the caller's buffer: the
 * header and payload are read with one recvmsg into [header, buffer].
 *
 * Every receive is a recvmsg with room for SCM_RIGHTS (a plain recv would
 * silently drop a descriptor).  Descriptors come only with SLAB_MAP
 * replies, one each, on the reply's first bytes; a recvmsg may also hold
 * bytes of earlier replies, so received descriptors wait in a FIFO and a
 * successful SLAB_MAP reply takes the oldest.  More descriptors than
 * SLAB_MAP requests in flight is a protocol error.
 *
 * WROTE_LINES notes are batched in the link and sent without waiting for
 * the reply ("detached" requests); the replies are consumed by whatever
 * call receives next, and a refusal is reported by the next flush.
 */
#include "kona-link-int.h"
#include "kona-auth.h"
#include "kona-sock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONNECT_TIMEOUT_MS  5000
#define DEFAULT_TIMEOUT_MS          10000
#define IB_CAP                      (256u << 10)
#define DIRECT_MIN                  (16u << 10) /* recv straight to buffer */
#define RX_MAX_FDS                  KONA_MAX_QUEUED_FDS /* per recvmsg */
/* a wait this close to a fresh request's full timeout may block in recv */
#define FRESH_SLACK_NS              (1000 * 1000)

typedef struct KonaLinkSlab {
    uint64_t id;
    uint64_t size;
    uint8_t key[KONA_KEY_SIZE];
} KonaLinkSlab;

struct KonaLink {
    char *addr;
    int fd;                     /* -1: not connected */
    unsigned connect_timeout_ms;
    unsigned timeout_ms;
    GBytes *secret;
    char name[32];
    bool no_reconnect;
    bool allow_unauthenticated;

    uint64_t caps;
    uint64_t node_id;
    uint64_t next_id;
    uint64_t reconnects;
    char *break_reason;         /* why the last connection was dropped */
    int64_t last_rx_ns;         /* last reply (or connect) */
    bool sent_nothing;          /* the last send_all put no byte out */

    GQueue inflight;            /* KonaReq*, in send order */
    GHashTable *reqs;           /* id -> KonaReq*, until finished */

    /* receive state: buffered bytes and the reply being received */
    uint8_t *ib;
    size_t ib_off, ib_len, ib_cap;
    KonaReq *cur;
    KonaHdr cur_hdr;
    uint8_t *cur_dst;
    uint32_t cur_got;

    /* descriptors received and not yet claimed by a SLAB_MAP reply */
    GArray *rx_fds;
    unsigned maps_inflight;     /* SLAB_MAP requests not answered yet */

    /* WROTE_LINES batch: ranges' and masks' wire images */
    uint8_t *note_ranges;
    uint8_t *note_masks;
    uint32_t note_nranges, note_npages;
    int note_err;               /* a refused WROTE_LINES, for the next flush */
    char *note_errmsg;

    GHashTable *slabs;          /* id -> KonaLinkSlab: reopened on reconnect */
    GHashTable *replays;        /* tag -> KonaReplay: sent after reconnect */
};

typedef struct KonaReplay {
    uint16_t op;
    GBytes *payload;
} KonaReplay;

static void replay_free(gpointer p)
{
    KonaReplay *r = p;

    g_bytes_unref(r->payload);
    g_free(r);
}

/* ---- errors and connection state ---- */

static int G_GNUC_PRINTF(4, 5)
fail(KonaLink *l, GError **errp, int err, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, KONA_ERROR, err, "memnode %s: %s", l->addr, msg);
    return -err;
}

/*
 * Drop the connection: every request in flight fails with @err.  The
 * socket is closed so that no late reply can land in a caller's buffer
 * after the caller was told the request failed.
 */
static void req_free(KonaReq *req)
{
    if (req->fd >= 0) {
        close(req->fd);
    }
    g_free(req->rep);
    g_free(req->errmsg);
    g_free(req);
}

static void rx_fds_close(KonaLink *l)
{
    for (guint i = 0; i < l->rx_fds->len; i++) {
        close(g_array_index(l->rx_fds, int, i));
    }
    g_array_set_size(l->rx_fds, 0);
}

static void G_GNUC_PRINTF(3, 4)
link_break(KonaLink *l, int err, const char *fmt, ...)
{
    va_list ap;
    KonaReq *req;

    g_free(l->break_reason);
    va_start(ap, fmt);
    l->break_reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    while ((req = g_queue_pop_head(&l->inflight))) {
        if (req->detached) {
            /* a note nobody waits for: its server is gone */
            g_hash_table_remove(l->reqs, &req->id);
            req_free(req);
            continue;
        }
        req->done = true;
        req->status = -err;
        req->errmsg = g_strdup(l->break_reason);
    }
    l->cur = NULL;
    l->ib_off = l->ib_len = 0;
    rx_fds_close(l);
    l->maps_inflight = 0;
}

void kona_link_req_finish(KonaLink *l, KonaReq *req)
{
    g_hash_table_remove(l->reqs, &req->id);
    req_free(req);
}

/* ---- receiving ---- */

/* A reply header arrived: check it against the oldest request. */
static int rx_start(KonaLink *l, const uint8_t *hb)
{
    KonaReq *req = g_queue_peek_head(&l->inflight);
    KonaHdr h;
    const char *why;

    kona_hdr_decode(hb, &h);
    if (!req) {
        link_break(l, EPROTO, "reply with no request outstanding");
        return -EPROTO;
    }
    if (h.req_id != req->id) {
        link_break(l, EPROTO, "reply to request %" G_GUINT64_FORMAT
                   " while %" G_GUINT64_FORMAT " was next", h.req_id, req->id);
        return -EPROTO;
    }
    why = kona_check_reply_hdr(&h, req->op);
    if (!why && req->op == KONA_OP_READ && !h.status && h.len != req->len) {
        why = "READ reply of the wrong length";
    }
    if (why) {
        link_break(l, EPROTO, "bad %s reply: %s", kona_op_name(req->op), why);
        return -EPROTO;
    }
    l->cur = req;
    l->cur_hdr = h;
    l->cur_got = 0;
    if (req->op == KONA_OP_READ && !h.status) {
        l->cur_dst = req->buf;
    } else {
        req->rep = g_malloc(h.len + 1);
        req->rep[h.len] = 0;    /* error text becomes a C string */
        req->rep_len = h.len;
        l->cur_dst = req->rep;
    }
    return 0;
}

/* A note (WROTE_LINES) was answered: remember a refusal for the flush. */
static void note_answered(KonaLink *l, KonaReq *req)
{
    if (req->status < 0 && !l->note_err) {
        l->note_err = req->status;
        l->note_errmsg = req->rep_len ? g_strdup((char *)req->rep) :
                         g_strdup(g_strerror(-req->status));
    }
    g_hash_table_remove(l->reqs, &req->id);
    req_free(req);
}

/* More descriptors than SLAB_MAP replies can take is a protocol error. */
static int rx_fds_check(KonaLink *l)
{
    if (l->rx_fds->len > l->maps_inflight) {
        link_break(l, EPROTO, "the server sent a descriptor nobody asked for");
        return -EPROTO;
    }
    return 0;
}

static int rx_finish(KonaLink *l)
{
    KonaReq *req = g_queue_pop_head(&l->inflight);

    g_assert(req == l->cur);
    req->status = l->cur_hdr.status;
    req->done = true;
    l->cur = NULL;
    l->last_rx_ns = kona_now_ns();
    if (req->op == KONA_OP_SLAB_MAP) {
        l->maps_inflight--;
        if (req->status == 0) {
            if (!l->rx_fds->len) {
                link_break(l, EPROTO, "SLAB_MAP reply without a descriptor");
                return -EPROTO;
            }
            req->fd = g_array_index(l->rx_fds, int, 0);
            g_array_remove_index(l->rx_fds, 0);
        } else if (rx_fds_check(l) < 0) {
            return -EPROTO;
        }
    }
    if (req->detached) {
        note_answered(l, req);
    }
    return 0;
}

/* Consume what is buffered in ib. */
static int rx_parse(KonaLink *l)
{
    for (;;) {
        size_t n;

        if (!l->cur) {
            if (l->ib_len - l->ib_off < KONA_HDR_SIZE) {
                return 0;
            }
            if (rx_start(l, l->ib + l->ib_off) < 0) {
                return -EPROTO;
            }
            l->ib_off += KONA_HDR_SIZE;
        }
        n = MIN(l->ib_len - l->ib_off, (size_t)(l->cur_hdr.len - l->cur_got));
        if (n) {
            memcpy(l->cur_dst + l->cur_got, l->ib + l->ib_off, n);
            l->cur_got += n;
            l->ib_off += n;
        }
        if (l->cur_got < l->cur_hdr.len) {
            return 0;
        }
        if (rx_finish(l) < 0) {
            return -EPROTO;
        }
    }
}

static void ib_reserve(KonaLink *l, size_t need)
{
    if (l->ib_off == l->ib_len) {
        l->ib_off = l->ib_len = 0;
    } else if (l->ib_off && l->ib_cap - l->ib_len < need) {
        memmove(l->ib, l->ib + l->ib_off, l->ib_len - l->ib_off);
        l->ib_len -= l->ib_off;
        l->ib_off = 0;
    }
    if (l->ib_cap - l->ib_len < need) {
        l->ib_cap = l->ib_len + need;
        l->ib = g_realloc(l->ib, l->ib_cap);
    }
}

/*
 * One receive system call, then parse.  Returns > 0 on progress, 0 when
 * the peer closed, -errno (-EAGAIN: nothing within the socket timeout or,
 * with @nowait, nothing now).  Protocol errors break the link.
 */
/*
 * recvmsg with room for descriptors, which join the FIFO.  Returns what
 * recvmsg returns, or -EPROTO (link broken) for descriptors nobody can
 * take.
 */
static ssize_t rx_recvmsg(KonaLink *l, struct iovec *iov, int iovcnt,
                          int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(RX_MAX_FDS * sizeof(int))];
    } cm;
    struct msghdr m = {
        .msg_iov = iov, .msg_iovlen = (size_t)iovcnt,
        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
    };
    bool got_fds = false;
    ssize_t n = recvmsg(l->fd, &m, flags | MSG_CMSG_CLOEXEC);

    if (n < 0) {
        return -errno;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfd; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                g_array_append_val(l->rx_fds, fd);
            }
            got_fds = true;
        }
    }
    if (m.msg_flags & MSG_CTRUNC) {
        link_break(l, EPROTO, "the server sent more descriptors than fit");
        return -EPROTO;
    }
    if (got_fds && rx_fds_check(l) < 0) {
        return -EPROTO;
    }
    return n;
}

static ssize_t rx_once(KonaLink *l, bool nowait)
{
    int flags = nowait ? MSG_DONTWAIT : 0;
    KonaReq *head = g_queue_peek_head(&l->inflight);
    bool ib_empty = l->ib_off == l->ib_len;
    ssize_t n;

    if (l->cur && l->cur_dst == l->cur->buf && ib_empty) {
        /* rest of a READ payload: straight into the caller's buffer */
        struct iovec iov = {
            .iov_base = l->cur_dst + l->cur_got,
            .iov_len = l->cur_hdr.len - l->cur_got,
        };

        n = rx_recvmsg(l, &iov, 1, flags);
        if (n > 0) {
            l->cur_got += (uint32_t)n;
            if (l->cur_got == l->cur_hdr.len && rx_finish(l) < 0) {
                return -EPROTO;
            }
        }
    } else if (!l->cur && ib_empty && head && head->op == KONA_OP_READ &&
               head->len >= DIRECT_MIN) {
        /* header into ib, payload (if it is what we expect) to the buffer */
        struct iovec iov[2] = {
            { .iov_base = l->ib, .iov_len = KONA_HDR_SIZE },
            { .iov_base = head->buf, .iov_len = head->len },
        };
        KonaHdr h;

        l->ib_off = l->ib_len = 0;
        n = rx_recvmsg(l, iov, 2, flags);
        if (n <= KONA_HDR_SIZE) {
            l->ib_len = n > 0 ? (size_t)n : 0;
        } else {
            size_t extra = (size_t)n - KONA_HDR_SIZE;

            kona_hdr_decode(l->ib, &h);
            if (h.op == (KONA_OP_READ | KONA_OP_REPLY) &&
                h.req_id == head->id && !h.status && !h.flags &&
                !h.reserved && h.len == head->len) {
                if (rx_start(l, l->ib) < 0) {
                    return -EPROTO;
                }
                l->cur_got = (uint32_t)extra;
                if (l->cur_got == l->cur_hdr.len && rx_finish(l) < 0) {
                    return -EPROTO;
                }
            } else {
                /* not the expected payload: move it where parsing looks */
                ib_reserve(l, KONA_HDR_SIZE + extra);
                memcpy(l->ib + KONA_HDR_SIZE, head->buf, extra);
                l->ib_len = KONA_HDR_SIZE + extra;
            }
        }
    } else {
        struct iovec iov;

        ib_reserve(l, 4096);
        iov.iov_base = l->ib + l->ib_len;
        iov.iov_len = l->ib_cap - l->ib_len;
        n = rx_recvmsg(l, &iov, 1, flags);
        if (n > 0) {
            l->ib_len += (size_t)n;
        }
    }
    if (n < 0) {
        return n == -EWOULDBLOCK ? -EAGAIN : n;
    }
    if (n == 0) {
        return 0;
    }
    return rx_parse(l) < 0 ? -EPROTO : n;
}

/* Turn a failed rx_once into a broken link (unless it was just "no data"). */
static void rx_fail(KonaLink *l, ssize_t r)
{
    if (l->fd < 0) {
        return;                 /* already broken (protocol error) */
    }
    if (r == 0) {
        link_break(l, ECONNRESET, "the server closed the connection");
    } else {
        link_break(l, (int)-r, "receive failed: %s", g_strerror((int)-r));
    }
}

/*
 * The deadline holds whatever the server sends: a server that dribbles a
 * byte now and then makes progress, but not in time.  A fresh request
 * blocks in recv (SO_RCVTIMEO is the full timeout, so it cannot overshoot
 * by more than FRESH_SLACK_NS): the fast path is one system call.  Later
 * waits poll for no longer than what is left.
 */
int kona_link_req_wait(KonaLink *l, KonaReq *req, GError **errp)
{
    int64_t timeout_ns = (int64_t)l->timeout_ms * 1000000;

    while (!req->done) {
        int64_t left = req->deadline_ns - kona_now_ns();
        ssize_t r;

        if (left <= 0) {
            link_break(l, ETIMEDOUT, "no reply to %s within %u ms",
                       kona_op_name(req->op), l->timeout_ms);
            break;
        }
        if (left >= timeout_ns - FRESH_SLACK_NS) {
            r = rx_once(l, false);
        } else {
            struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
            int rc = poll(&pfd, 1, (int)((left + 999999) / 1000000));

            if (rc < 0 && errno != EINTR) {
                r = -errno;
            } else {
                r = rc > 0 ? rx_once(l, true) : -EAGAIN;
            }
        }
        if (r > 0 || r == -EAGAIN || r == -EINTR) {
            continue;
        }
        rx_fail(l, r);
    }
    if (req->status < 0) {
        const char *msg = req->errmsg ? req->errmsg :
                          req->rep_len ? (const char *)req->rep :
                          g_strerror(-req->status);
        return fail(l, errp, -req->status, "%s: %s", kona_op_name(req->op),
                    msg);
    }
    return 0;
}

/* ---- sending ---- */

static int send_all(KonaLink *l, struct iovec *iov, int iovcnt,
                    int64_t deadline_ns, GError **errp)
{
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };

    l->sent_nothing = true;

    while (m.msg_iovlen) {
        ssize_t n = sendmsg(l->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = l->fd, .events = POLLIN | POLLOUT };
            int64_t left_ms = (deadline_ns - kona_now_ns()) / 1000000;
            int rc;

            if (left_ms <= 0) {
                link_break(l, ETIMEDOUT, "send timed out after %u ms",
                           l->timeout_ms);
                return fail(l, errp, ETIMEDOUT, "%s", l->break_reason);
            }
            rc = poll(&pfd, 1, (int)MIN(left_ms, (int64_t)G_MAXINT));
            if (rc > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
                /* drain replies so the server can go on reading us */
                ssize_t r = rx_once(l, true);
                if (r <= 0 && r != -EAGAIN && r != -EINTR) {
                    rx_fail(l, r);
                    return fail(l, errp, ECONNRESET, "%s", l->break_reason);
                }
            }
            continue;
        }
        if (n < 0) {
            int err = errno;
            if (err == EINTR) {
                continue;
            }
            link_break(l, err, "send failed: %s", g_strerror(err));
            return fail(l, errp, err, "%s", l->break_reason);
        }
        l->sent_nothing = false;
        while (n > 0 && m.msg_iovlen) {
            if ((size_t)n >= m.msg_iov->iov_len) {
                n -= (ssize_t)m.msg_iov->iov_len;
                m.msg_iov++;
                m.msg_iovlen--;
            } else {
                m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + n;
                m.msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return 0;
}

static int link_open(KonaLink *l, GError **errp);

/*
 * Has the server gone away while we were idle (restart, crash)?  Checked
 * before a request on a link idle for a while, so that the request goes
 * to a fresh connection instead of failing; a busy link pays nothing.
 */
#define IDLE_CHECK_NS   (10 * 1000000)

static void check_idle_peer(KonaLink *l)
{
    char c;
    ssize_t n;

    if (l->fd < 0 || l->inflight.length ||
        kona_now_ns() - l->last_rx_ns < IDLE_CHECK_NS) {
        return;
    }
    {
        /* a peek dups any descriptor into our table: room for it, closed */
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(RX_MAX_FDS * sizeof(int))];
        } cm;
        struct iovec iov = { .iov_base = &c, .iov_len = 1 };
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
        };

        n = recvmsg(l->fd, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; h;
             h = CMSG_NXTHDR(&m, h)) {
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                size_t nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < nfd; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                    close(fd);
                }
            }
        }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        link_break(l, ECONNRESET, "the server closed the connection");
    } else if (n > 0) {
        link_break(l, EPROTO, "unsolicited data from the server");
    }
}

static int ensure_connected(KonaLink *l, GError **errp)
{
    check_idle_peer(l);
    if (l->fd >= 0) {
        return 0;
    }
    if (l->no_reconnect) {
        return fail(l, errp, ENOTCONN, "not connected (%s)",
                    l->break_reason ? l->break_reason : "closed");
    }
    return kona_link_reconnect(l, errp);
}

/*
 * Send one request.  A READ's destination (@rbuf, @rlen) is recorded
 * before anything is sent, since its reply may be received while a later
 * part of this send waits for room.
 */
static KonaReq *submit_iov_noconnect(KonaLink *l, uint16_t op,
                                     const struct iovec *iov, int iovcnt,
                                     void *rbuf, uint32_t rlen,
                                     GError **errp)
{
    struct iovec v[8];
    uint8_t hdr[KONA_HDR_SIZE];
    uint32_t len = 0;
    KonaReq *req;

    g_assert(iovcnt < 8);
    for (int i = 0; i < iovcnt; i++) {
        len += (uint32_t)iov[i].iov_len;
        v[i + 1] = iov[i];
    }
    req = g_new0(KonaReq, 1);
    req->fd = -1;
    req->id = l->next_id++;
    req->op = op;
    req->buf = rbuf;
    req->len = rlen;
    req->deadline_ns = kona_now_ns() + (int64_t)l->timeout_ms * 1000000;
    kona_hdr_encode(hdr, op, req->id, 0, len);
    v[0].iov_base = hdr;
    v[0].iov_len = sizeof(hdr);
    g_hash_table_insert(l->reqs, &req->id, req);
    g_queue_push_tail(&l->inflight, req);
    if (op == KONA_OP_SLAB_MAP) {
        l->maps_inflight++;
    }
    if (send_all(l, v, iovcnt + 1, req->deadline_ns, errp) < 0) {
        /* link_break failed it (and everything else in flight) */
        kona_link_req_finish(l, req);
        return NULL;
    }
    return req;
}

/*
 * Connect if needed and send.  If the connection turns out to be dead
 * before a single byte of the request left (EPIPE: the server is gone)
 * and nothing else was in flight, the server cannot have seen the
 * request, so it is sent once more on a new connection.
 */
static KonaReq *submit(KonaLink *l, uint16_t op, const struct iovec *iov,
                       int iovcnt, void *rbuf, uint32_t rlen, GError **errp)
{
    GError *err = NULL;
    bool idle;
    KonaReq *req;

    if (ensure_connected(l, errp) < 0) {
        return NULL;
    }
    idle = l->inflight.length == 0;
    req = submit_iov_noconnect(l, op, iov, iovcnt, rbuf, rlen, &err);
    if (!req && idle && l->sent_nothing && !l->no_reconnect &&
        (err->code == EPIPE || err->code == ECONNRESET)) {
        g_clear_error(&err);
        if (kona_link_reconnect(l, errp) < 0) {
            return NULL;
        }
        req = submit_iov_noconnect(l, op, iov, iovcnt, rbuf, rlen, &err);
    }
    if (err) {
        g_propagate_error(errp, err);
    }
    return req;
}

KonaReq *kona_link_submit_iov(KonaLink *l, uint16_t op,
                              const struct iovec *iov, int iovcnt,
                              GError **errp)
{
    return submit(l, op, iov, iovcnt, NULL, 0, errp);
}

static int call_noconnect(KonaLink *l, uint16_t op, const void *payload,
                          uint32_t len, KonaReq **reqp, GError **errp)
{
    struct iovec iov = { .iov_base = (void *)payload, .iov_len = len };
    KonaReq *req = submit_iov_noconnect(l, op, &iov, len ? 1 : 0, NULL, 0,
                                        errp);
    int r;

    if (!req) {
        return l->fd < 0 ? -ECONNRESET : -EIO;
    }
    r = kona_link_req_wait(l, req, errp);
    if (reqp && r == 0) {
        *reqp = req;
    } else {
        kona_link_req_finish(l, req);
    }
    return r;
}

int kona_link_call(KonaLink *l, uint16_t op, const void *payload,
                   uint32_t len, KonaReq **reqp, GError **errp)
{
    struct iovec iov = { .iov_base = (void *)payload, .iov_len = len };
    KonaReq *req = submit(l, op, &iov, len ? 1 : 0, NULL, 0, errp);
    int r;

    if (!req) {
        return -(errp && *errp ? (*errp)->code : EIO);
    }
    r = kona_link_req_wait(l, req, errp);
    if (reqp && r == 0) {
        *reqp = req;
    } else {
        kona_link_req_finish(l, req);
    }
    return r;
}

/* ---- connecting ---- */

static int handshake(KonaLink *l, GError **errp)
{
    uint8_t hello[sizeof(KonaHelloReq)] = { 0 };
    KonaHelloRep rep;
    KonaReq *req;
    const char *why;
    int r;

    kona_st32(hello, KONA_PROTO_MAGIC);
    kona_st16(hello + 4, KONA_PROTO_VERSION);
    kona_st64(hello + 8, KONA_CAP_ALL);
    memcpy(hello + 16, l->name, sizeof(l->name));
    r = call_noconnect(l, KONA_OP_HELLO, hello, sizeof(hello), &req, errp);
    if (r < 0) {
        return r;
    }
    why = kona_decode_hello_rep(req->rep, req->rep_len, &rep);
    kona_link_req_finish(l, req);
    if (why) {
        link_break(l, EPROTO, "%s", why);
        return fail(l, errp, EPROTO, "HELLO: %s", why);
    }
    l->caps = rep.caps;
    l->node_id = rep.node_id;

    if (!(rep.flags & KONA_HELLO_F_AUTH_REQUIRED) && l->secret &&
        !l->allow_unauthenticated) {
        /*
         * Whoever listens there would be trusted with our memory without
         * proving it knows the secret: an impostor on the memnode's
         * address looks exactly like this.
         */
        link_break(l, EACCES, "server did not ask for authentication");
        return fail(l, errp, EACCES, "the server does not ask for "
                    "authentication although we have a shared secret: "
                    "refusing it (it may be an impostor; start the memnode "
                    "with --auth-all, or allow unauthenticated servers "
                    "explicitly)");
    }
    if (rep.flags & KONA_HELLO_F_AUTH_REQUIRED) {
        uint8_t auth[sizeof(KonaAuthReq)], want[KONA_MAC_SIZE];
        const uint8_t *secret;
        gsize slen;

        if (!l->secret) {
            link_break(l, EACCES, "authentication required");
            return fail(l, errp, EACCES, "the server requires authentication "
                        "and no shared secret was given");
        }
        secret = g_bytes_get_data(l->secret, &slen);
        kona_random_bytes(auth, KONA_NONCE_SIZE);
        kona_auth_mac(secret, slen, KONA_AUTH_CLIENT, rep.nonce, auth,
                      auth + KONA_NONCE_SIZE);
        r = call_noconnect(l, KONA_OP_AUTH, auth, sizeof(auth), &req, errp);
        if (r < 0) {
            link_break(l, -r, "authentication failed");
            return r;
        }
        kona_auth_mac(secret, slen, KONA_AUTH_SERVER, rep.nonce, auth, want);
        r = kona_auth_equal(want, req->rep, KONA_MAC_SIZE);
        kona_link_req_finish(l, req);
        if (!r) {
            link_break(l, EACCES, "server failed authentication");
            return fail(l, errp, EACCES, "the server does not know the "
                        "shared secret (its AUTH answer is wrong)");
        }
    }
    return 0;
}

/* Reopen the slabs this link had before the connection broke. */
static void reopen_slabs(KonaLink *l)
{
    GHashTableIter it;
    gpointer v;
    GSList *lost = NULL;

    g_hash_table_iter_init(&it, l->slabs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        KonaLinkSlab *s = v;
        uint8_t p[KONA_SLAB_OPEN_REQ_SIZE];

        kona_st64(p, s->id);
        memcpy(p + 8, s->key, KONA_KEY_SIZE);
        if (call_noconnect(l, KONA_OP_SLAB_OPEN, p, sizeof(p), NULL,
                           NULL) < 0) {
            /*
             * gone (memnode restarted without a data dir): later ops on
             * it fail with -EACCES from the server
             */
            lost = g_slist_prepend(lost, s);
        }
        if (l->fd < 0) {
            break;
        }
    }
    for (GSList *e = lost; e; e = e->next) {
        g_hash_table_remove(l->slabs, &((KonaLinkSlab *)e->data)->id);
    }
    g_slist_free(lost);
}

/* Send the replays (kona_link_replay_add) again; replies are ignored. */
static void replay_requests(KonaLink *l)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, l->replays);
    while (g_hash_table_iter_next(&it, NULL, &v) && l->fd >= 0) {
        KonaReplay *r = v;
        gsize len;
        const void *p = g_bytes_get_data(r->payload, &len);

        call_noconnect(l, r->op, p, (uint32_t)len, NULL, NULL);
    }
}

static int link_open(KonaLink *l, GError **errp)
{
    struct timeval tv;
    int fd;

    fd = kona_connect(l->addr, l->connect_timeout_ms, errp);
    if (fd < 0) {
        return fd;
    }
    tv.tv_sec = l->timeout_ms / 1000;
    tv.tv_usec = (l->timeout_ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    l->fd = fd;
    l->last_rx_ns = kona_now_ns();
    l->ib_off = l->ib_len = 0;
    l->cur = NULL;
    /* notes were for the old connection's server: dropped (see header) */
    l->note_nranges = l->note_npages = 0;
    if (handshake(l, errp) < 0) {
        if (l->fd >= 0) {
            link_break(l, EPROTO, "handshake failed");
        }
        return -(errp && *errp ? (*errp)->code : EPROTO);
    }
    reopen_slabs(l);
    replay_requests(l);
    if (l->fd < 0) {
        return fail(l, errp, ECONNRESET, "connection lost while reopening "
                    "slabs: %s", l->break_reason);
    }
    return 0;
}

KonaLink *kona_link_connect_opts(const char *addr, const KonaLinkOptions *o,
                                 GError **errp)
{
    KonaLink *l = g_new0(KonaLink, 1);

    l->addr = g_strdup(addr);
    l->fd = -1;
    l->connect_timeout_ms = o && o->connect_timeout_ms ?
                            o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    l->timeout_ms = o && o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (o && o->secret) {
        l->secret = g_bytes_new(o->secret, o->secret_len);
    }
    g_strlcpy(l->name, o && o->name ? o->name : g_get_prgname() ?
              g_get_prgname() : "kona-link", sizeof(l->name));
    l->no_reconnect = o && o->no_reconnect;
    l->allow_unauthenticated = o && o->allow_unauthenticated;
    l->next_id = 1;
    l->rx_fds = g_array_new(FALSE, FALSE, sizeof(int));
    l->reqs = g_hash_table_new(g_int64_hash, g_int64_equal);
    l->slabs = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                     g_free);
    l->replays = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                       replay_free);
    l->ib_cap = IB_CAP;
    l->ib = g_malloc(l->ib_cap);
    if (link_open(l, errp) < 0) {
        kona_link_close(l);
        return NULL;
    }
    return l;
}

KonaLink *kona_link_connect(const char *addr, unsigned timeout_ms,
                            GError **errp)
{
    KonaLinkOptions o = {
        .connect_timeout_ms = timeout_ms,
        .timeout_ms = timeout_ms,
    };

    return kona_link_connect_opts(addr, &o, errp);
}

void kona_link_close(KonaLink *l)
{
    GHashTableIter it;
    gpointer v;

    if (!l) {
        return;
    }
    if (l->fd >= 0) {
        link_break(l, ECONNABORTED, "closed");
    }
    g_hash_table_iter_init(&it, l->reqs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        req_free(v);
    }
    g_hash_table_destroy(l->reqs);
    g_hash_table_destroy(l->slabs);
    g_hash_table_destroy(l->replays);
    rx_fds_close(l);
    g_array_free(l->rx_fds, TRUE);
    g_free(l->note_ranges);
    g_free(l->note_masks);
    g_free(l->note_errmsg);
    if (l->secret) {
        g_bytes_unref(l->secret);
    }
    g_free(l->break_reason);
    g_free(l->ib);
    g_free(l->addr);
    g_free(l);
}

int kona_link_reconnect(KonaLink *l, GError **errp)
{
    if (l->fd >= 0) {
        link_break(l, ECONNRESET, "reconnecting");
    }
    l->reconnects++;
    return link_open(l, errp);
}

void kona_link_set_timeout(KonaLink *l, unsigned timeout_ms)
{
    l->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    if (l->fd >= 0) {
        struct timeval tv = {
            .tv_sec = l->timeout_ms / 1000,
            .tv_usec = (l->timeout_ms % 1000) * 1000,
        };
        setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
}

const char *kona_link_addr(const KonaLink *l)
{
    return l->addr;
}

bool kona_link_connected(const KonaLink *l)
{
    return l->fd >= 0;
}

int kona_link_fd(const KonaLink *l)
{
    return l->fd;
}

uint64_t kona_link_caps(const KonaLink *l)
{
    return l->caps;
}

uint64_t kona_link_node_id(const KonaLink *l)
{
    return l->node_id;
}

uint64_t kona_link_reconnects(const KonaLink *l)
{
    return l->reconnects;
}

GBytes *kona_link_secret(const KonaLink *l)
{
    return l->secret;
}

void kona_link_replay_add(KonaLink *l, uint64_t tag, uint16_t op,
                          const void *payload, uint32_t len)
{
    KonaReplay *r = g_new0(KonaReplay, 1);

    r->op = op;
    r->payload = g_bytes_new(payload, len);
    g_hash_table_replace(l->replays, g_memdup2(&tag, sizeof(tag)), r);
}

void kona_link_replay_remove(KonaLink *l, uint64_t tag)
{
    g_hash_table_remove(l->replays, &tag);
}

unsigned kona_link_inflight(const KonaLink *l)
{
    return l->inflight.length;
}

/* ---- slabs ---- */

static void remember_slab(KonaLink *l, const KonaSlabRep *rep)
{
    KonaLinkSlab *s = g_new0(KonaLinkSlab, 1);

    s->id = rep->slab_id;
    s->size = rep->size;
    memcpy(s->key, rep->key, KONA_KEY_SIZE);
    g_hash_table_replace(l->slabs, &s->id, s);
}

/* Decode a slab reply and remember the slab. */
static int slab_reply(KonaLink *l, KonaReq *req, KonaSlabRep *rep,
                      GError **errp)
{
    const char *why = kona_decode_slab_rep(req->rep, req->rep_len, rep);

    kona_link_req_finish(l, req);
    if (why) {
        link_break(l, EPROTO, "%s", why);
        return fail(l, errp, EPROTO, "%s", why);
    }
    remember_slab(l, rep);
    return 0;
}

int kona_link_slab_alloc(KonaLink *l, uint64_t size, uint64_t *slab_id,
                         GError **errp)
{
    uint8_t p[sizeof(KonaSlabAllocReq)] = { 0 };
    KonaSlabRep rep;
    KonaReq *req;
    int r;

    kona_st64(p, size);
    r = kona_link_call(l, KONA_OP_SLAB_ALLOC, p, sizeof(p), &req, errp);
    if (r < 0) {
        return r;
    }
    r = slab_reply(l, req, &rep, errp);
    if (r < 0) {
        return r;
    }
    *slab_id = rep.slab_id;
    return 0;
}

static int slab_open(KonaLink *l, uint64_t slab_id,
                     const uint8_t key[KONA_KEY_SIZE], uint32_t flags,
                     uint64_t *size, GError **errp)
{
    uint8_t p[KONA_SLAB_OPEN_REQ_SIZE + 4];
    KonaSlabRep rep;
    KonaReq *req;
    int r;

    kona_st64(p, slab_id);
    memcpy(p + 8, key, KONA_KEY_SIZE);
    kona_st32(p + KONA_SLAB_OPEN_REQ_SIZE, flags);
    /* Without flags, the form every server knows. */
    r = kona_link_call(l, KONA_OP_SLAB_OPEN, p,
                       KONA_SLAB_OPEN_REQ_SIZE + (flags ? 4 : 0), &req,
                       errp);
    if (r < 0) {
        return r;
    }
    r = slab_reply(l, req, &rep, errp);
    if (r < 0) {
        return r;
    }
    if (size) {
        *size = rep.size;
    }
    return 0;
}

int kona_link_slab_open(KonaLink *l, uint64_t slab_id,
                        const uint8_t key[KONA_KEY_SIZE], uint64_t *size,
                        GError **errp)
{
    return slab_open(l, slab_id, key, 0, size, errp);
}

int kona_link_slab_open_shared(KonaLink *l, uint64_t slab_id,
                               const uint8_t key[KONA_KEY_SIZE],
                               uint64_t *size, GError **errp)
{
    if (ensure_connected(l, errp) < 0) {
        return -(errp && *errp ? (*errp)->code : ENOTCONN);
    }
    if (!(l->caps & KONA_CAP_OPEN_SHARE)) {
        return fail(l, errp, ENOTSUP, "the server cannot open a slab "
                    "beside its exclusive holder (an older memnode)");
    }
    return slab_open(l, slab_id, key, KONA_OPEN_F_SHARE, size, errp);
}

int kona_link_slab_attach_key(KonaLink *l, const char *name, uint64_t size,
                              unsigned flags,
                              const uint8_t key[KONA_KEY_SIZE],
                              uint64_t *slab_id, uint64_t *size_out,
                              bool *created, GError **errp)
{
    size_t nlen = strlen(name);
    uint8_t p[sizeof(KonaSlabAttachReq) + KONA_KEY_SIZE + KONA_MAX_NAME] = {
        0
    };
    uint8_t *q = p + sizeof(KonaSlabAttachReq);
    KonaSlabRep rep;
    KonaReq *req;
    int r;

    if (!kona_name_valid(name, nlen)) {
        return fail(l, errp, EINVAL, "bad volume name '%s' (1..%d of "
                    "[A-Za-z0-9._-], not starting with '.')", name,
                    KONA_MAX_NAME);
    }
    flags &= KONA_ATTACH_F_CREATE | KONA_ATTACH_F_EXCLUSIVE;
    if ((key || flags & KONA_ATTACH_F_EXCLUSIVE) &&
        ensure_connected(l, errp) < 0) {
        return -(errp && *errp ? (*errp)->code : ENOTCONN);
    }
    if ((key || flags & KONA_ATTACH_F_EXCLUSIVE) &&
        !(l->caps & KONA_CAP_VOLKEY)) {
        return fail(l, errp, EOPNOTSUPP, "SLAB_ATTACH: the memnode has no "
                    "volume keys or exclusive attach (an older memnode)");
    }
    if (key) {
        flags |= KONA_ATTACH_F_KEY;
        memcpy(q, key, KONA_KEY_SIZE);
        q += KONA_KEY_SIZE;
    }
    kona_st64(p, size);
    kona_st16(p + 8, (uint16_t)nlen);
    kona_st16(p + 10, (uint16_t)flags);
    memcpy(q, name, nlen);
    r = kona_link_call(l, KONA_OP_SLAB_ATTACH, p, (uint32_t)(q + nlen - p),
                       &req, errp);
    if (r < 0) {
        return r;
    }
    r = slab_reply(l, req, &rep, errp);
    if (r < 0) {
        return r;
    }
    *slab_id = rep.slab_id;
    if (size_out) {
        *size_out = rep.size;
    }
    if (created) {
        *created = rep.flags & KONA_SLAB_F_CREATED;
    }
    return 0;
}

int kona_link_slab_attach(KonaLink *l, const char *name, uint64_t size,
                          bool create, uint64_t *slab_id, uint64_t *size_out,
                          bool *created, GError **errp)
{
    uint8_t key[KONA_KEY_SIZE];
    const uint8_t *secret;
    gsize slen;

    if (ensure_connected(l, errp) < 0) {
        return -(errp && *errp ? (*errp)->code : ENOTCONN);
    }
    if (!l->secret || !(l->caps & KONA_CAP_VOLKEY)) {
        /* no key to give (the memnode says so), or an older memnode */
        return kona_link_slab_attach_key(l, name, size,
                                         create ? KONA_ATTACH_F_CREATE : 0,
                                         NULL, slab_id, size_out, created,
                                         errp);
    }
    secret = g_bytes_get_data(l->secret, &slen);
    kona_auth_volume_key(secret, slen, name, key);
    return kona_link_slab_attach_key(l, name, size,
                                     create ? KONA_ATTACH_F_CREATE : 0, key,
                                     slab_id, size_out, created, errp);
}

int kona_link_slab_generation(KonaLink *l, uint64_t slab_id, uint64_t set,
                              uint64_t *gen, GError **errp)
{
    uint8_t p[sizeof(KonaSlabGenReq)];
    KonaReq *req;
    int r;

    if (ensure_connected(l, errp) < 0) {
        return -(errp && *errp ? (*errp)->code : ENOTCONN);
    }
    if (!(l->caps & KONA_CAP_GENERATION)) {
        return fail(l, errp, EOPNOTSUPP, "SLAB_GEN: the memnode has no copy "
                    "generations (an older memnode)");
    }
    kona_st64(p, slab_id);
    kona_st64(p + 8, set);
    r = kona_link_call(l, KONA_OP_SLAB_GEN, p, sizeof(p), &req, errp);
    if (r < 0) {
        return r;
    }
    if (gen) {
        *gen = kona_ld64(req->rep);
    }
    kona_link_req_finish(l, req);
    return 0;
}

int kona_link_slab_info(KonaLink *l, uint64_t slab_id,
                        uint8_t key[KONA_KEY_SIZE], uint64_t *size)
{
    KonaLinkSlab *s = g_hash_table_lookup(l->slabs, &slab_id);

    if (!s) {
        return -ENOENT;
    }
    if (key) {
        memcpy(key, s->key, KONA_KEY_SIZE);
    }
    if (size) {
        *size = s->size;
    }
    return 0;
}

int kona_link_slab_free(KonaLink *l, uint64_t slab_id, GError **errp)
{
    uint8_t p[8];
    int r;

    kona_st64(p, slab_id);
    r = kona_link_call(l, KONA_OP_SLAB_FREE, p, sizeof(p), NULL, errp);
    if (r == 0 || r == -EACCES) {
        g_hash_table_remove(l->slabs, &slab_id);
    }
    return r;
}

/* ---- data ---- */

/* Refuse locally what the server would close the connection for. */
static int check_range(KonaLink *l, const char *op, uint64_t slab_id,
                       uint64_t off, uint64_t len, GError **errp)
{
    KonaLinkSlab *s = g_hash_table_lookup(l->slabs, &slab_id);

    if (s && (off > s->size || len > s->size - off)) {
        return fail(l, errp, EINVAL, "%s [%" G_GUINT64_FORMAT ", +%"
                    G_GUINT64_FORMAT ") is outside slab %" G_GUINT64_FORMAT
                    " (%" G_GUINT64_FORMAT " bytes)", op, off, len, slab_id,
                    s->size);
    }
    return 0;
}

uint64_t kona_link_submit_read(KonaLink *l, uint64_t slab_id, uint64_t offset,
                               void *buf, uint32_t len, GError **errp)
{
    uint8_t p[sizeof(KonaReadReq)];
    struct iovec iov = { .iov_base = p, .iov_len = sizeof(p) };
    KonaReq *req;

    if (len == 0 || len > KONA_MAX_IO) {
        fail(l, errp, EINVAL, "READ of %u bytes (1..%u allowed)", len,
             KONA_MAX_IO);
        return 0;
    }
    if (check_range(l, "READ", slab_id, offset, len, errp) < 0) {
        return 0;
    }
    kona_st64(p, slab_id);
    kona_st64(p + 8, offset);
    kona_st32(p + 16, len);
    kona_st32(p + 20, 0);
    req = submit(l, KONA_OP_READ, &iov, 1, buf, len, errp);
    if (!req) {
        return 0;
    }
    return req->id;
}

uint64_t kona_link_submit_write_lines(KonaLink *l, uint64_t slab_id,
                                      uint64_t block_off, uint32_t npages,
                                      const uint64_t *masks, const void *data,
                                      GError **errp)
{
    uint8_t p[sizeof(KonaWriteLinesReq)];
    struct iovec iov[3];
    size_t dlen;
    KonaReq *req;
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
    g_autofree uint8_t *lemasks = NULL;
#endif

    if (npages == 0 || npages > KONA_MAX_WRITE_PAGES ||
        block_off % KONA_PAGE_SIZE) {
        fail(l, errp, EINVAL, "WRITE_LINES needs a page-aligned offset and "
             "1..%u pages (got offset %" G_GUINT64_FORMAT ", %u pages)",
             KONA_MAX_WRITE_PAGES, block_off, npages);
        return 0;
    }
    if (check_range(l, "WRITE_LINES", slab_id, block_off,
                    (uint64_t)npages * KONA_PAGE_SIZE, errp) < 0) {
        return 0;
    }
    dlen = kona_lines_bytes(masks, npages);
    kona_st64(p, slab_id);
    kona_st64(p + 8, block_off);
    kona_st32(p + 16, npages);
    kona_st32(p + 20, 0);
    iov[0].iov_base = p;
    iov[0].iov_len = sizeof(p);
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
    iov[1].iov_base = (void *)masks;    /* already the wire format */
#else
    lemasks = g_malloc(8 * npages);
    for (uint32_t i = 0; i < npages; i++) {
        kona_st64(lemasks + 8 * i, masks[i]);
    }
    iov[1].iov_base = lemasks;
#endif
    iov[1].iov_len = 8 * (size_t)npages;
    iov[2].iov_base = (void *)data;
    iov[2].iov_len = dlen;
    req = submit(l, KONA_OP_WRITE_LINES, iov, dlen ? 3 : 2, NULL, 0, errp);
    return req ? req->id : 0;
}

uint64_t kona_link_submit_flush(KonaLink *l, GError **errp)
{
    KonaReq *req = kona_link_submit_iov(l, KONA_OP_FLUSH, NULL, 0, errp);

    return req ? req->id : 0;
}

int kona_link_wait(KonaLink *l, uint64_t req_id, GError **errp)
{
    KonaReq *req = g_hash_table_lookup(l->reqs, &req_id);
    int r;

    if (!req) {
        return fail(l, errp, EINVAL, "no request %" G_GUINT64_FORMAT
                    " outstanding", req_id);
    }
    r = kona_link_req_wait(l, req, errp);
    kona_link_req_finish(l, req);
    return r;
}

int kona_link_read(KonaLink *l, uint64_t slab_id, uint64_t offset, void *buf,
                   uint32_t len, GError **errp)
{
    uint64_t id = kona_link_submit_read(l, slab_id, offset, buf, len, errp);

    if (!id) {
        return -(errp && *errp ? (*errp)->code : EIO);
    }
    return kona_link_wait(l, id, errp);
}

int kona_link_write_lines(KonaLink *l, uint64_t slab_id, uint64_t block_off,
                          uint32_t npages, const uint64_t *masks,
                          const void *data, GError **errp)
{
    uint64_t id = kona_link_submit_write_lines(l, slab_id, block_off, npages,
                                               masks, data, errp);

    if (!id) {
        return -(errp && *errp ? (*errp)->code : EIO);
    }
    return kona_link_wait(l, id, errp);
}

static int push_notes(KonaLink *l, GError **errp);

/* A note the server refused since the last flush: report it once. */
static int note_error(KonaLink *l, GError **errp)
{
    int err = l->note_err;

    if (!err) {
        return 0;
    }
    fail(l, errp, -err, "WROTE_LINES: %s", l->note_errmsg);
    l->note_err = 0;
    g_clear_pointer(&l->note_errmsg, g_free);
    return err;
}

int kona_link_zero(KonaLink *l, uint64_t slab_id, uint64_t offset,
                   uint64_t len, GError **errp)
{
    uint8_t p[sizeof(KonaZeroReq)];
    int r;

    if (ensure_connected(l, errp) < 0) {
        return -(errp && *errp ? (*errp)->code : ENOTCONN);
    }
    if (!(l->caps & KONA_CAP_ZERO)) {
        return fail(l, errp, EOPNOTSUPP, "ZERO: the memnode cannot zero a "
                    "range (an older memnode)");
    }
    /* Lines written through the mapping before this are noted first. */
    r = push_notes(l, errp);
    if (r < 0) {
        return r;
    }
    kona_st64(p, slab_id);
    kona_st64(p + 8, offset);
    kona_st64(p + 16, len);
    return kona_link_call(l, KONA_OP_ZERO, p, sizeof(p), NULL, errp);
}

int kona_link_flush(KonaLink *l, GError **errp)
{
    int r = push_notes(l, errp);

    if (r < 0) {
        return r;
    }
    r = kona_link_call(l, KONA_OP_FLUSH, NULL, 0, NULL, errp);
    if (r < 0) {
        return r;
    }
    return note_error(l, errp);
}

int kona_link_ping(KonaLink *l, GError **errp)
{
    return kona_link_call(l, KONA_OP_PING, NULL, 0, NULL, errp);
}

int kona_link_ping_data(KonaLink *l, const void *data, uint32_t len,
                        GError **errp)
{
    KonaReq *req;
    int r;

    if (len > KONA_MAX_PING) {
        return fail(l, errp, EINVAL, "PING of %u bytes (max %u)", len,
                    KONA_MAX_PING);
    }
    r = kona_link_call(l, KONA_OP_PING, data, len, &req, errp);
    if (r < 0) {
        return r;
    }
    if (req->rep_len != len || memcmp(req->rep, data, len)) {
        r = fail(l, errp, EPROTO, "PING echo differs from what was sent");
    }
    kona_link_req_finish(l, req);
    return r;
}

int kona_link_stats(KonaLink *l, KonaMemnodeStats *out, GError **errp)
{
    uint64_t f[KONA_STAT__COUNT] = { 0 };
    KonaReq *req;
    uint32_t n;
    int r;

    r = kona_link_call(l, KONA_OP_STATS, NULL, 0, &req, errp);
    if (r < 0) {
        return r;
    }
    n = req->rep_len >= sizeof(KonaStatsRep) ? kona_ld32(req->rep) : 0;
    if (req->rep_len != sizeof(KonaStatsRep) + 8ull * n) {
        kona_link_req_finish(l, req);
        link_break(l, EPROTO, "bad STATS reply");
        return fail(l, errp, EPROTO, "bad STATS reply");
    }
    for (uint32_t i = 0; i < MIN(n, (uint32_t)KONA_STAT__COUNT); i++) {
        f[i] = kona_ld64(req->rep + sizeof(KonaStatsRep) + 8 * i);
    }
    kona_link_req_finish(l, req);
    out->bytes_read = f[KONA_STAT_BYTES_READ];
    out->bytes_written = f[KONA_STAT_BYTES_WRITTEN];
    out->lines_written = f[KONA_STAT_LINES_WRITTEN];
    out->ops = f[KONA_STAT_OPS];
    out->reads = f[KONA_STAT_READS];
    out->writes = f[KONA_STAT_WRITES];
    out->flushes = f[KONA_STAT_FLUSHES];
    out->clients = f[KONA_STAT_CLIENTS];
    out->clients_total = f[KONA_STAT_CLIENTS_TOTAL];
    out->slabs = f[KONA_STAT_SLABS];
    out->slab_bytes = f[KONA_STAT_SLAB_BYTES];
    out->capacity = f[KONA_STAT_CAPACITY];
    out->bad_frames = f[KONA_STAT_BAD_FRAMES];
    out->refused = f[KONA_STAT_REFUSED];
    out->uptime_ms = f[KONA_STAT_UPTIME_MS];
    out->maps = f[KONA_STAT_MAPS];
    out->mapped_slabs = f[KONA_STAT_MAPPED_SLABS];
    out->zeroes = f[KONA_STAT_ZEROES];
    out->bytes_zeroed = f[KONA_STAT_BYTES_ZEROED];
    return 0;
}

int kona_link_send_raw(KonaLink *l, const void *buf, size_t len,
                       GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    if (ensure_connected(l, errp) < 0) {
        return -ENOTCONN;
    }
    return send_all(l, &iov, 1,
                    kona_now_ns() + (int64_t)l->timeout_ms * 1000000, errp);
}

/* ---- shared memory (KONA_CAP_SHARED) ---- */

bool kona_link_offers_shared(const KonaLink *l)
{
    return g_str_has_prefix(l->addr, "unix:") && (l->caps & KONA_CAP_SHARED);
}

/*
 * Can @fd be mapped as @size bytes at @offset?  A regular file (memfd or
 * data-directory file) long enough, and a memfd (shmem and unlinked)
 * sealed against shrinking.  *@can_shrink: a file that is not such a
 * memfd (a data-directory file), whose mapping can fault with SIGBUS if
 * someone shrinks it later.
 */
static int check_slab_fd(KonaLink *l, int fd, uint64_t size, uint64_t offset,
                         bool *can_shrink, GError **errp)
{
    struct stat st;
    int seals;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return fail(l, errp, EINVAL, "SLAB_MAP: the descriptor is not a "
                    "regular file");
    }
    if ((uint64_t)st.st_size < offset || (uint64_t)st.st_size - offset < size) {
        return fail(l, errp, EINVAL, "SLAB_MAP: the descriptor has %jd "
                    "bytes, shorter than the slab (%" G_GUINT64_FORMAT
                    " at %" G_GUINT64_FORMAT ")", (intmax_t)st.st_size, size,
                    offset);
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && st.st_nlink == 0 && !(seals & F_SEAL_SHRINK)) {
        return fail(l, errp, EINVAL, "SLAB_MAP: the memfd is not sealed "
                    "against shrinking (a mapping of it could fault)");
    }
    *can_shrink = seals < 0 || !(seals & F_SEAL_SHRINK);
    return 0;
}

void *kona_link_slab_map(KonaLink *l, uint64_t slab_id, uint64_t *size,
                         bool *can_shrink, GError **errp)
{
    bool shrinks = true;
    KonaLinkSlab *known;
    KonaSlabMapRep rep;
    uint8_t p[8];
    const char *why;
    KonaReq *req;
    void *mem;
    int fd;

    if (ensure_connected(l, errp) < 0) {
        return NULL;
    }
    if (!kona_link_offers_shared(l)) {
        fail(l, errp, EOPNOTSUPP, "no shared memory on this link (%s)",
             g_str_has_prefix(l->addr, "unix:") ?
             "the memnode does not offer it" : "not a unix socket");
        return NULL;
    }
    kona_st64(p, slab_id);
    if (kona_link_call(l, KONA_OP_SLAB_MAP, p, sizeof(p), &req, errp) < 0) {
        return NULL;
    }
    why = kona_decode_slab_map_rep(req->rep, req->rep_len, &rep);
    fd = req->fd;
    req->fd = -1;
    kona_link_req_finish(l, req);
    if (why) {
        close(fd);
        link_break(l, EPROTO, "%s", why);
        fail(l, errp, EPROTO, "%s", why);
        return NULL;
    }
    known = g_hash_table_lookup(l->slabs, &slab_id);
    if (known && known->size != rep.size) {
        close(fd);
        fail(l, errp, EINVAL, "SLAB_MAP: slab %" G_GUINT64_FORMAT " has %"
             G_GUINT64_FORMAT " bytes, the reply says %" G_GUINT64_FORMAT,
             slab_id, known->size, rep.size);
        return NULL;
    }
    if (check_slab_fd(l, fd, rep.size, rep.offset, &shrinks, errp) < 0) {
        close(fd);
        return NULL;
    }
    mem = mmap(NULL, rep.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
               (off_t)rep.offset);
    if (mem == MAP_FAILED) {
        int err = errno;
        close(fd);
        fail(l, errp, EINVAL, "SLAB_MAP: cannot map the descriptor: %s",
             g_strerror(err));
        return NULL;
    }
    /* the mapping keeps the memory; the descriptor is not needed */
    close(fd);
    *size = rep.size;
    if (can_shrink) {
        *can_shrink = shrinks;
    }
    return mem;
}

void kona_link_slab_unmap(void *mem, uint64_t size)
{
    if (mem) {
        munmap(mem, size);
    }
}

/* Send the batch of notes without waiting for the reply. */
static int push_notes(KonaLink *l, GError **errp)
{
    uint8_t h[sizeof(KonaWroteLinesReq)];
    struct iovec iov[3];
    KonaReq *req;

    if (!l->note_nranges) {
        return 0;
    }
    if (ensure_connected(l, errp) < 0) {
        return -(errp && *errp ? (*errp)->code : ENOTCONN);
    }
    if (!l->note_nranges) {
        return 0;               /* reconnected: dropped with the old server */
    }
    kona_st32(h, l->note_nranges);
    kona_st32(h + 4, 0);
    iov[0] = (struct iovec){ h, sizeof(h) };
    iov[1] = (struct iovec){ l->note_ranges,
                             (size_t)l->note_nranges * sizeof(KonaWroteRange) };
    iov[2] = (struct iovec){ l->note_masks, 8 * (size_t)l->note_npages };
    l->note_nranges = l->note_npages = 0;
    req = submit_iov_noconnect(l, KONA_OP_WROTE_LINES, iov, 3, NULL, 0, errp);
    if (!req) {
        return -(errp && *errp ? (*errp)->code : ECONNRESET);
    }
    if (req->done) {
        /* answered while we were sending (a full socket) */
        note_answered(l, req);
    } else {
        req->detached = true;
    }
    return 0;
}

int kona_link_note_lines(KonaLink *l, uint64_t slab_id, uint64_t block_off,
                         uint32_t npages, const uint64_t *masks, GError **errp)
{
    uint8_t *r;
    int ret;

    if (npages == 0 || npages > KONA_MAX_NOTE_PAGES ||
        block_off % KONA_PAGE_SIZE) {
        return fail(l, errp, EINVAL, "WROTE_LINES needs a page-aligned offset "
                    "and 1..%u pages (got offset %" G_GUINT64_FORMAT
                    ", %u pages)", KONA_MAX_NOTE_PAGES, block_off, npages);
    }
    ret = check_range(l, "WROTE_LINES", slab_id, block_off,
                      (uint64_t)npages * KONA_PAGE_SIZE, errp);
    if (ret < 0) {
        return ret;
    }
    if (!l->note_ranges) {
        l->note_ranges = g_malloc(sizeof(KonaWroteRange) * KONA_MAX_NOTE_PAGES);
        l->note_masks = g_malloc(8 * KONA_MAX_NOTE_PAGES);
    }
    if (l->note_npages + npages > KONA_MAX_NOTE_PAGES) {
        ret = push_notes(l, errp);
        if (ret < 0) {
            return ret;
        }
    }
    r = l->note_ranges + (size_t)l->note_nranges * sizeof(KonaWroteRange);
    kona_st64(r, slab_id);
    kona_st64(r + 8, block_off);
    kona_st32(r + 16, npages);
    kona_st32(r + 20, 0);
    for (uint32_t i = 0; i < npages; i++) {
        kona_st64(l->note_masks + 8 * (size_t)(l->note_npages + i), masks[i]);
    }
    l->note_nranges++;
    l->note_npages += npages;
    if (l->note_npages == KONA_MAX_NOTE_PAGES) {
        return push_notes(l, errp);
    }
    return 0;
}

int kona_link_push_notes(KonaLink *l, GError **errp)
{
    int r = push_notes(l, errp);

    return r < 0 ? r : note_error(l, errp);
}

int kona_link_check(KonaLink *l, GError **errp)
{
    if (l->fd < 0) {
        return fail(l, errp, ECONNRESET, "not connected (%s)",
                    l->break_reason ? l->break_reason : "closed");
    }
    for (;;) {
        ssize_t r = rx_once(l, true);

        if (r > 0) {
            continue;
        }
        if (r == -EAGAIN || r == -EINTR) {
            return 0;
        }
        rx_fail(l, r);
        return fail(l, errp, r == 0 ? ECONNRESET : (int)-r, "%s",
                    l->break_reason);
    }
}

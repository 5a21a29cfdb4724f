/*
 * Output queue: writev batching, a FIFO arena for small pieces and
 * zero-copy references to slab memory (see kona-outq.h).
 *
 * Cost: every entry is charged twice its size (the ring is at most twice
 * as long as the entries in it), plus its arena bytes, or its allocation
 * with malloc's overhead, or for a reference the allocation its copy
 * would need and the reference itself.  The arena is allocated once, at
 * the first reply, and is part of a connection's fixed cost.
 */
#include "kona-outq.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define OUTQ_IOV_MAX 1024       /* Linux IOV_MAX */
#define OUTQ_RING_MIN 64
#define ENT_COST    (2 * sizeof(KonaOutEnt))
#define REF_COST    64          /* a KonaOutRef and its malloc chunk */

/* What g_malloc(@len) takes from the heap: chunk header, 16-byte steps. */
static size_t malloc_cost(size_t len)
{
    return MAX((len + 8 + 15) & ~(size_t)15, (size_t)32);
}

void kona_outq_init(KonaOutq *q, size_t arena_cap)
{
    memset(q, 0, sizeof(*q));
    q->cap = OUTQ_RING_MIN;
    q->ents = g_new(KonaOutEnt, q->cap);
    /* the arena comes with the first reply: idle connections have none */
    q->arena_cap = arena_cap;
}

void kona_outq_destroy(KonaOutq *q)
{
    kona_outq_clear(q);
    g_free(q->ents);
    g_free(q->arena);
    memset(q, 0, sizeof(*q));
}

static inline KonaOutEnt *ent_at(KonaOutq *q, size_t i)
{
    return &q->ents[(q->head + i) % q->cap];
}

static KonaOutEnt *push_ent(KonaOutq *q)
{
    KonaOutEnt *e;

    if (q->count == q->cap) {
        KonaOutEnt *n = g_new(KonaOutEnt, q->cap * 2);
        for (size_t i = 0; i < q->count; i++) {
            n[i] = *ent_at(q, i);
        }
        g_free(q->ents);
        q->ents = n;
        q->head = 0;
        q->cap *= 2;
    }
    e = ent_at(q, q->count++);
    memset(e, 0, sizeof(*e));
    e->fd = -1;
    e->cost = ENT_COST;
    q->cost += ENT_COST;
    return e;
}

static void ref_drop(KonaOutEnt *e)
{
    g_queue_unlink(&e->ext->refs, &e->ref->link);
    g_free(e->ref);
    e->ref = NULL;
    e->ext = NULL;
}

/* Release a fully sent (or dropped) entry at the head. */
static void pop_ent(KonaOutq *q)
{
    KonaOutEnt *e = &q->ents[q->head];

    if (e->arena) {
        q->a_head = (q->a_head + e->arena) % q->arena_cap;
        q->a_used -= e->arena;
        if (!q->a_used) {
            q->a_head = q->a_tail = 0;
        }
    }
    if (e->ext) {
        ref_drop(e);
        q->n_ext--;
    }
    if (e->fd >= 0) {
        /* never sent: the connection is going away */
        close(e->fd);
        q->n_fds--;
    }
    g_free(e->owned);
    q->bytes -= e->len;
    q->cost -= e->cost;
    q->head = (q->head + 1) % q->cap;
    q->head_seq++;
    q->count--;
    if (!q->count && q->cap > OUTQ_RING_MIN) {
        /* a burst is over: give the long ring back */
        g_free(q->ents);
        q->cap = OUTQ_RING_MIN;
        q->ents = g_new(KonaOutEnt, q->cap);
        q->head = 0;
    }
}

/*
 * Carve @len contiguous bytes from the arena; sets *release to what the
 * entry must give back (including bytes skipped at the arena's end).
 */
static uint8_t *arena_alloc(KonaOutq *q, size_t len, size_t *release)
{
    size_t off;

    if (!q->arena) {
        q->arena = g_malloc(q->arena_cap);
    }
    if (q->a_used == q->arena_cap && q->a_used) {
        return NULL;
    }
    if (q->a_tail >= q->a_head) {
        if (q->arena_cap - q->a_tail >= len) {
            off = q->a_tail;
            *release = len;
        } else if (q->a_head >= len) {
            /* wrap: waste the tail end, which a_head will skip over */
            *release = q->arena_cap - q->a_tail + len;
            off = 0;
        } else {
            return NULL;
        }
    } else if (q->a_head - q->a_tail >= len) {
        off = q->a_tail;
        *release = len;
    } else {
        return NULL;
    }
    q->a_tail = (off + len) % q->arena_cap;
    q->a_used += *release;
    return q->arena + off;
}

/* @fresh: start a new entry (its first byte may carry a descriptor). */
static uint8_t *outq_reserve(KonaOutq *q, size_t len, bool fresh)
{
    KonaOutEnt *e;
    uint8_t *p;
    size_t release;

    if (q->count && !fresh) {
        /* grow the last arena piece in place: one iovec for many replies */
        KonaOutEnt *last = ent_at(q, q->count - 1);
        if (last->arena && !last->owned &&
            last->base + last->len == q->arena + q->a_tail &&
            q->a_used + len <= q->arena_cap &&
            (q->a_tail >= q->a_head ? q->a_tail + len <= q->arena_cap
                                    : q->a_head - q->a_tail >= len)) {
            p = q->arena + q->a_tail;
            q->a_tail = (q->a_tail + len) % q->arena_cap;
            q->a_used += len;
            last->len += len;
            last->arena += len;
            last->cost += len;
            q->bytes += len;
            q->cost += len;
            return p;
        }
    }
    p = len <= q->arena_cap / 4 ? arena_alloc(q, len, &release) : NULL;
    e = push_ent(q);
    if (p) {
        e->arena = release;
        e->cost += release;
        q->cost += release;
    } else {
        p = e->owned = g_malloc(len);
        e->cost += malloc_cost(len);
        q->cost += malloc_cost(len);
    }
    e->base = p;
    e->len = len;
    q->bytes += len;
    return p;
}

uint8_t *kona_outq_reserve(KonaOutq *q, size_t len)
{
    return outq_reserve(q, len, false);
}

void kona_outq_put_owned(KonaOutq *q, uint8_t *buf, size_t len)
{
    KonaOutEnt *e = push_ent(q);

    e->base = e->owned = buf;
    e->len = len;
    e->cost += malloc_cost(len);
    q->cost += malloc_cost(len);
    q->bytes += len;
}

void kona_outq_put_ext(KonaOutq *q, KonaOutTag *tag, void *base, size_t len)
{
    KonaOutEnt *e = push_ent(q);
    KonaOutRef *ref = g_new(KonaOutRef, 1);

    ref->q = q;
    ref->seq = q->head_seq + q->count - 1;
    ref->link.data = ref;
    ref->link.prev = ref->link.next = NULL;
    g_queue_push_tail_link(&tag->refs, &ref->link);
    e->base = base;
    e->len = len;
    e->ext = tag;
    e->ref = ref;
    /* charged as the copy a detach would make */
    e->cost += REF_COST + malloc_cost(len);
    q->cost += REF_COST + malloc_cost(len);
    q->n_ext++;
    q->bytes += len;
}

void kona_outq_detach(KonaOutTag *tag, const uint8_t *lo, const uint8_t *hi)
{
    GList *l = tag->refs.head;

    while (l) {
        KonaOutRef *ref = l->data;
        KonaOutq *q = ref->q;
        KonaOutEnt *e = ent_at(q, (size_t)(ref->seq - q->head_seq));

        l = l->next;
        if (lo && (e->base >= hi || e->base + e->len <= lo)) {
            continue;
        }
        e->owned = g_memdup2(e->base, e->len);
        e->base = e->owned;
        ref_drop(e);
        q->n_ext--;
    }
}

int kona_outq_flush(KonaOutq *q, int fd)
{
    struct iovec iov[OUTQ_IOV_MAX];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;

    while (q->count) {
        size_t n = MIN(q->count, (size_t)OUTQ_IOV_MAX);
        KonaOutEnt *head = ent_at(q, 0);
        ssize_t sent;

        for (size_t i = 0; i < n; i++) {
            KonaOutEnt *e = ent_at(q, i);
            if (i && e->fd >= 0) {
                /* it goes first in the next call, with its descriptor */
                n = i;
                break;
            }
            iov[i].iov_base = e->base;
            iov[i].iov_len = e->len;
        }
        if (head->fd >= 0) {
            struct msghdr m = {
                .msg_iov = iov, .msg_iovlen = n,
                .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
            };
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);

            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &head->fd, sizeof(int));
            sent = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent > 0) {
                /* it went with the first bytes: the peer has its copy */
                close(head->fd);
                head->fd = -1;
                q->n_fds--;
            }
        } else {
            sent = writev(fd, iov, (int)n);
        }
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? 1 : -errno;
        }
        while (sent > 0) {
            KonaOutEnt *e = &q->ents[q->head];
            if ((size_t)sent >= e->len) {
                sent -= (ssize_t)e->len;
                pop_ent(q);
            } else {
                e->base += sent;
                e->len -= (size_t)sent;
                q->bytes -= (size_t)sent;
                sent = 0;
            }
        }
    }
    return 0;
}

void kona_outq_clear(KonaOutq *q)
{
    while (q->count) {
        pop_ent(q);
    }
}

uint8_t *kona_outq_reply(KonaOutq *q, const KonaHdr *h, uint32_t len)
{
    uint8_t *p = kona_outq_reserve(q, KONA_HDR_SIZE + len);

    kona_hdr_encode(p, h->op | KONA_OP_REPLY, h->req_id, 0, len);
    return p + KONA_HDR_SIZE;
}

uint8_t *kona_outq_reply_fd(KonaOutq *q, const KonaHdr *h, uint32_t len,
                            int fd)
{
    uint8_t *p = outq_reserve(q, KONA_HDR_SIZE + len, true);
    KonaOutEnt *e = ent_at(q, q->count - 1);

    e->fd = fd;
    q->n_fds++;
    kona_hdr_encode(p, h->op | KONA_OP_REPLY, h->req_id, 0, len);
    return p + KONA_HDR_SIZE;
}

void kona_outq_reply_error(KonaOutq *q, const KonaHdr *h, int err,
                           const char *msg)
{
    uint32_t len = MIN(strlen(msg), (size_t)KONA_MAX_ERRMSG);
    uint8_t *p = kona_outq_reserve(q, KONA_HDR_SIZE + len);

    kona_hdr_encode(p, h->op | KONA_OP_REPLY, h->req_id, -err, len);
    memcpy(p + KONA_HDR_SIZE, msg, len);
}

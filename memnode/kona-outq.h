/*
 * Output queue of a non-blocking server connection.
 *
 * Replies are queued as iovecs and sent with writev, many replies per
 * system call.  Small pieces (headers, small payloads) are carved from a
 * FIFO byte arena, so a reply costs no allocation; READ payloads are
 * queued as references to slab memory (zero copy).  Because a referenced
 * slab can change or go away before the bytes leave, the owner of that
 * memory calls kona_outq_detach() first: it copies the affected pieces
 * into the queues' own memory, so a reply always carries the data as it
 * was when the request was processed.  Every reference is listed in its
 * owner's KonaOutTag, so a detach touches only the references to that
 * owner, in whatever queues they are.
 *
 * The queue keeps its cost: what it holds in memory (bytes, entries of
 * the ring, allocations and their overhead, references), or could come
 * to hold (a reference costs what its copy would), so a server can bound
 * what a client that never reads costs, whatever the size of its
 * replies.
 *
 * A reply may carry a file descriptor (SLAB_MAP): it is sent with
 * SCM_RIGHTS on the reply's first bytes, and the queue owns it until then
 * (closed once sent, or when the queue is cleared).
 */
#ifndef KONA_OUTQ_H
#define KONA_OUTQ_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kona-proto.h"

/* The owner of external memory: lists the queued references to it. */
typedef struct KonaOutTag {
    GQueue refs;                /* KonaOutRef.link */
} KonaOutTag;

typedef struct KonaOutq KonaOutq;

/* A queued reference to external memory (entry seq of queue q). */
typedef struct KonaOutRef {
    KonaOutq *q;
    uint64_t seq;
    GList link;
} KonaOutRef;

typedef struct KonaOutEnt {
    uint8_t *base;              /* next unsent byte */
    size_t len;                 /* unsent bytes */
    void *owned;                /* g_malloc'ed block freed when sent */
    size_t arena;               /* arena bytes released when sent */
    KonaOutTag *ext;            /* owner of external memory, or NULL */
    KonaOutRef *ref;            /* with ext: in ext->refs */
    size_t cost;                /* charged to the queue's cost */
    int fd;                     /* sent with the first byte of base, or -1 */
} KonaOutEnt;

struct KonaOutq {
    KonaOutEnt *ents;           /* ring of cap entries */
    size_t cap, head, count;
    uint64_t head_seq;          /* sequence number of the head entry */
    size_t bytes;               /* unsent bytes in the queue */
    size_t cost;                /* see above */
    size_t n_ext;               /* entries referencing external memory */
    size_t n_fds;               /* descriptors waiting to be sent */
    uint8_t *arena;
    size_t arena_cap, a_head, a_tail, a_used;
};

void kona_outq_init(KonaOutq *q, size_t arena_cap);

/*
 * Queue the header of the reply to @h with @len payload bytes to follow;
 * returns where the caller writes those bytes.
 */
uint8_t *kona_outq_reply(KonaOutq *q, const KonaHdr *h, uint32_t len);
/*
 * Queue an error reply to @h: status -@err and @msg (cut to
 * KONA_MAX_ERRMSG bytes) as its payload.
 */
void kona_outq_reply_error(KonaOutq *q, const KonaHdr *h, int err,
                           const char *msg);
/*
 * Like kona_outq_reply, and @fd (which the queue now owns) goes with the
 * reply's first bytes.  Needs a unix socket.
 */
uint8_t *kona_outq_reply_fd(KonaOutq *q, const KonaHdr *h, uint32_t len,
                            int fd);
void kona_outq_destroy(KonaOutq *q);

/* Append @len bytes to the queue and return them for the caller to fill. */
uint8_t *kona_outq_reserve(KonaOutq *q, size_t len);

/*
 * Append @len bytes at @buf, a g_malloc'ed block the queue now owns (not
 * copied; freed once sent or cleared).
 */
void kona_outq_put_owned(KonaOutq *q, uint8_t *buf, size_t len);

/* Append a reference to @len bytes at @base owned by @tag (not copied). */
void kona_outq_put_ext(KonaOutq *q, KonaOutTag *tag, void *base, size_t len);

/*
 * Copy the queued pieces referencing @tag's memory that overlap [lo, hi)
 * (all of them if @lo is NULL), in every queue, into the queues' own
 * memory.  Costs what @tag has queued, nothing per other piece.
 */
void kona_outq_detach(KonaOutTag *tag, const uint8_t *lo, const uint8_t *hi);

/*
 * Send as much as the socket takes.  Returns 0 when the queue is empty,
 * 1 when the socket is full (wait for EPOLLOUT), -errno on error.
 * Descriptors are closed once they are sent.
 */
int kona_outq_flush(KonaOutq *q, int fd);

/* Drop everything unsent (used when closing, and by the fuzz target). */
void kona_outq_clear(KonaOutq *q);

/* What the queue holds, for the server's per-connection limit. */
static inline size_t kona_outq_cost(const KonaOutq *q)
{
    return q->cost;
}

static inline bool kona_outq_empty(const KonaOutq *q)
{
    return q->count == 0;
}

#endif /* KONA_OUTQ_H */

/*
 * kona-link internals shared with kona-rack.c (the rack controller client
 * rides on the same connection code).  Not for the device.
 */
#ifndef KONA_LINK_INT_H
#define KONA_LINK_INT_H

#include <sys/uio.h>

#include "kona-link.h"

typedef struct KonaReq {
    uint64_t id;
    uint16_t op;
    bool done;
    int status;                 /* once done: 0 or -errno */
    uint8_t *buf;               /* READ: the caller's buffer */
    uint32_t len;               /* READ: bytes expected */
    uint8_t *rep;               /* other replies and error text */
    uint32_t rep_len;
    int64_t deadline_ns;
    char *errmsg;               /* local failure (timeout, broken link) */
    int fd;                     /* SLAB_MAP: the descriptor received, or -1 */
    bool detached;              /* nobody waits: freed when answered */
} KonaReq;

/*
 * Send a request whose payload is @iov (the header is added).  Returns
 * the request (tracked until kona_link_req_finish) or NULL with *errp.
 */
KonaReq *kona_link_submit_iov(KonaLink *l, uint16_t op,
                              const struct iovec *iov, int iovcnt,
                              GError **errp);

/*
 * Wait for @req; returns its status, *errp set on failure.  The request
 * stays valid (rep readable) until kona_link_req_finish().
 */
int kona_link_req_wait(KonaLink *l, KonaReq *req, GError **errp);
void kona_link_req_finish(KonaLink *l, KonaReq *req);

/* Submit, wait and hand back the reply; caller finishes the request. */
int kona_link_call(KonaLink *l, uint16_t op, const void *payload,
                   uint32_t len, KonaReq **reqp, GError **errp);

/* The link's shared secret, or NULL. */
GBytes *kona_link_secret(const KonaLink *l);

/*
 * A request to send again (its reply ignored) on every new connection
 * after a reconnect, after the slabs are reopened: e.g. RACK_RECLAIM of
 * the rack allocations this link holds.  @tag names it for removal; a
 * new one with the same tag replaces it.
 */
void kona_link_replay_add(KonaLink *l, uint64_t tag, uint16_t op,
                          const void *payload, uint32_t len);
void kona_link_replay_remove(KonaLink *l, uint64_t tag);

#endif /* KONA_LINK_INT_H */

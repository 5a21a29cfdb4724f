/*
 * kona-link: client of the Kona memory-node protocol (kona-proto.h).
 *
 * Plain C + GLib, no QEMU dependency: QEMU's kona-cxl device and the
 * tests both link it.  A KonaLink is one connection to one memnode (or
 * to the rack controller, see kona-rack.h) and is used by one thread at
 * a time: the caller serialises.
 *
 * Every int-returning function returns 0 on success or a negative errno
 * and sets *errp (domain KONA_ERROR, code = the positive errno) with a
 * message that names the server and the operation.  Notable errors:
 *   -ETIMEDOUT     no reply within the request timeout (the connection is
 *                  dropped so a late reply cannot land in a reused buffer)
 *   -ECONNRESET    the connection broke with requests in flight
 *   -EACCES        the slab is not ours (never allocated, opened or
 *                  attached on this link), or authentication failed
 *   -ENOSPC        the node is out of capacity
 *   -EBUSY         a volume (or rack allocation) held by another
 *                  connection, exclusively or against an exclusive ask
 *   -EMFILE        the server has its maximum of clients (at connect)
 *   -EPROTO        the server broke the protocol
 *
 * A broken connection is re-established automatically by the next call
 * (or explicitly with kona_link_reconnect()): the handshake is redone and
 * every slab this link had open is reopened with its key.  Requests that
 * were in flight when it broke have failed and must be retried by the
 * caller.  WROTE_LINES notes still batched for the old connection are
 * dropped (they described writes to the old server's memory: map the
 * slabs again after a reconnect).
 *
 * With a secret, the link refuses (-EACCES) a server that does not ask
 * for authentication, unless allow_unauthenticated is set: otherwise an
 * impostor listening on the memnode's address would be trusted.
 */
#ifndef KONA_LINK_H
#define KONA_LINK_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-lines.h"
#include "kona-proto.h"
#include "kona-util.h"

typedef struct KonaLink KonaLink;          /* one connection to one memnode */

typedef struct KonaLinkOptions {
    unsigned connect_timeout_ms;    /* 0: 5000 */
    unsigned timeout_ms;            /* per request; 0: 10000 */
    const void *secret;             /* shared secret for AUTH, or NULL */
    size_t secret_len;
    const char *name;               /* client name for the server's logs */
    bool no_reconnect;              /* fail instead of reconnecting */
    bool allow_unauthenticated;     /* with a secret, still accept a server
                                     * that does not ask for AUTH */
} KonaLinkOptions;

/* What STATS returns (KONA_STAT_* fields of the reply). */
typedef struct KonaMemnodeStats {
    uint64_t bytes_read;
    uint64_t bytes_written;         /* dirty-line bytes applied */
    uint64_t lines_written;
    uint64_t ops;
    uint64_t reads;
    uint64_t writes;
    uint64_t flushes;
    uint64_t clients;               /* connected now */
    uint64_t clients_total;
    uint64_t slabs;
    uint64_t slab_bytes;
    uint64_t capacity;
    uint64_t bad_frames;            /* connections closed for bad frames */
    uint64_t refused;               /* requests answered with an error */
    uint64_t uptime_ms;
    uint64_t maps;                  /* slab descriptors handed out */
    uint64_t mapped_slabs;          /* slabs mapped by connected clients */
    uint64_t zeroes;                /* ZERO requests */
    uint64_t bytes_zeroed;
} KonaMemnodeStats;

/*
 * "unix:/path" or "tcp:host:port"; @timeout_ms bounds the connect and
 * every request (0: defaults).
 */
KonaLink *kona_link_connect(const char *addr, unsigned timeout_ms,
                            GError **errp);
KonaLink *kona_link_connect_opts(const char *addr, const KonaLinkOptions *o,
                                 GError **errp);
void kona_link_close(KonaLink *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KonaLink, kona_link_close)

/* Drop the connection (if any) and connect again, reopening our slabs. */
int kona_link_reconnect(KonaLink *l, GError **errp);
void kona_link_set_timeout(KonaLink *l, unsigned timeout_ms);
const char *kona_link_addr(const KonaLink *l);
bool kona_link_connected(const KonaLink *l);
int kona_link_fd(const KonaLink *l);           /* -1 when disconnected */
uint64_t kona_link_caps(const KonaLink *l);     /* negotiated KONA_CAP_* */
uint64_t kona_link_node_id(const KonaLink *l);
uint64_t kona_link_reconnects(const KonaLink *l);

/* ---- slabs ---- */
int kona_link_slab_alloc(KonaLink *l, uint64_t size, uint64_t *slab_id,
                         GError **errp);
int kona_link_slab_free(KonaLink *l, uint64_t slab_id, GError **errp);
/*
 * Open a slab someone granted us (id + key, e.g. from the controller).
 * This takes an exclusive hold on it over (see kona-proto.h): it is how
 * the holder comes back on a new connection.
 */
int kona_link_slab_open(KonaLink *l, uint64_t slab_id,
                        const uint8_t key[KONA_KEY_SIZE], uint64_t *size,
                        GError **errp);
/*
 * The same beside the holder, whose exclusive hold stays where it is
 * (KONA_OPEN_F_SHARE): -ENOTSUP from a server without it.
 */
int kona_link_slab_open_shared(KonaLink *l, uint64_t slab_id,
                               const uint8_t key[KONA_KEY_SIZE],
                               uint64_t *size, GError **errp);
/*
 * Attach to the named volume @name with its volume key @key; @flags:
 * KONA_ATTACH_F_CREATE (make it, @size bytes, with @key if missing),
 * KONA_ATTACH_F_EXCLUSIVE (no other connection may hold it).  *created
 * says which happened (may be NULL).  -EACCES: no volume of that name
 * with that key (or none at all, without CREATE); -EBUSY: held by
 * another connection (exclusively, or at all for an exclusive attach).
 * A reconnect of this link takes an exclusive hold over (SLAB_OPEN).
 */
int kona_link_slab_attach_key(KonaLink *l, const char *name, uint64_t size,
                              unsigned flags,
                              const uint8_t key[KONA_KEY_SIZE],
                              uint64_t *slab_id, uint64_t *size_out,
                              bool *created, GError **errp);
/*
 * The same with the key derived from the link's secret
 * (kona_auth_volume_key), not exclusive; with @create, make the volume
 * (@size bytes) if missing.  A link without a secret has no key: the
 * memnode refuses (-EACCES).
 */
int kona_link_slab_attach(KonaLink *l, const char *name, uint64_t size,
                          bool create, uint64_t *slab_id, uint64_t *size_out,
                          bool *created, GError **errp);
/*
 * The copy generation of slab @slab_id (open on this link): raised to
 * @set if that is more than it has (0: only read), *gen the value after
 * (durable on a memnode with a data directory).
 */
int kona_link_slab_generation(KonaLink *l, uint64_t slab_id, uint64_t set,
                              uint64_t *gen, GError **errp);
/* Key and size of a slab open on this link (to grant it to others). */
int kona_link_slab_info(KonaLink *l, uint64_t slab_id,
                        uint8_t key[KONA_KEY_SIZE], uint64_t *size);

/* ---- data ---- */
int kona_link_read(KonaLink *l, uint64_t slab_id, uint64_t offset, void *buf,
                   uint32_t len, GError **errp);
/*
 * block_off multiple of 4096; masks[i] covers page i of the range (bit j =
 * line j of 64 B); data holds only the masked lines, in order
 */
int kona_link_write_lines(KonaLink *l, uint64_t slab_id, uint64_t block_off,
                          uint32_t npages, const uint64_t *masks,
                          const void *data, GError **errp);
/*
 * [offset, offset + len) of the slab reads as zeroes (page-aligned), its
 * memory given back on an anonymous memnode: -EOPNOTSUPP from a memnode
 * without KONA_CAP_ZERO.  Durable after the next kona_link_flush().
 */
int kona_link_zero(KonaLink *l, uint64_t slab_id, uint64_t offset,
                   uint64_t len, GError **errp);
/*
 * Every earlier write of this link is in the node's memory (and synced to
 * its data directory) when this returns 0.  Sends the batch of notes
 * (kona_link_note_lines) first, and reports a note the server refused
 * since the last flush (e.g. -EACCES) after the FLUSH itself succeeded.
 */
int kona_link_flush(KonaLink *l, GError **errp);
int kona_link_ping(KonaLink *l, GError **errp);
/* PING carrying @len bytes (<= KONA_MAX_PING), checks the echo. */
int kona_link_ping_data(KonaLink *l, const void *data, uint32_t len,
                        GError **errp);
int kona_link_stats(KonaLink *l, KonaMemnodeStats *out, GError **errp);

/*
 * Pipelining: submit without waiting (returns a request id, 0 on failure
 * with *errp set), then kona_link_wait() for it.  A read's @buf must stay
 * valid until its wait returns; a write's masks and data are copied to
 * the socket before submit returns.  Requests are answered in order, and
 * waiting for one also completes the ones before it.  Every submitted
 * request must be waited for (its result is kept until then).
 */
uint64_t kona_link_submit_read(KonaLink *l, uint64_t slab_id, uint64_t offset,
                               void *buf, uint32_t len, GError **errp);
uint64_t kona_link_submit_write_lines(KonaLink *l, uint64_t slab_id,
                                      uint64_t block_off, uint32_t npages,
                                      const uint64_t *masks, const void *data,
                                      GError **errp);
uint64_t kona_link_submit_flush(KonaLink *l, GError **errp);
int kona_link_wait(KonaLink *l, uint64_t req_id, GError **errp);
/* Requests submitted and not yet answered. */
unsigned kona_link_inflight(const KonaLink *l);

/* ---- shared memory (KONA_CAP_SHARED, co-located memnodes) ---- */

/* Does this link offer the shared path (unix socket and KONA_CAP_SHARED)? */
bool kona_link_offers_shared(const KonaLink *l);
/*
 * Map slab @slab_id (open on this link) read-write, MAP_SHARED.  Returns the
 * mapping of exactly the slab's size (*size), or NULL with *errp set:
 * -EOPNOTSUPP if the link does not offer the shared path, -EINVAL if the
 * descriptor is unusable (shorter than the slab, cannot be mapped, a memfd
 * without F_SEAL_SHRINK), -EACCES as for READ.  The descriptor is closed;
 * the caller owns the mapping and releases it with kona_link_slab_unmap().
 * The mapping stays valid memory whatever happens to the server (a crash
 * leaves it orphaned; a freed slab's memory is never given to anyone else
 * while mapped).  Map again after a reconnect.  *@can_shrink (if not NULL)
 * says whether the slab is a file that cannot be sealed (a --data-dir
 * slab): whoever may write that file can shrink it, and an access of the
 * mapping past its new end raises SIGBUS.  A memfd slab never can.
 */
void *kona_link_slab_map(KonaLink *l, uint64_t slab_id, uint64_t *size,
                         bool *can_shrink, GError **errp);
void kona_link_slab_unmap(void *mem, uint64_t size);
/*
 * Report lines written through a mapping (same masks layout as
 * kona_link_write_lines).  Batched: queued in the link and sent as one
 * WROTE_LINES frame without waiting once the batch is full
 * (KONA_MAX_NOTE_PAGES pages), and by kona_link_flush() (which sends the
 * batch first) and kona_link_push_notes().  Replies are consumed as they
 * come (by any later call on the link); a refusal is reported by the next
 * kona_link_flush() or kona_link_push_notes().  Notes pending when the
 * connection breaks are dropped.
 */
int kona_link_note_lines(KonaLink *l, uint64_t slab_id, uint64_t block_off,
                         uint32_t npages, const uint64_t *masks,
                         GError **errp);
int kona_link_push_notes(KonaLink *l, GError **errp);
/*
 * Without blocking: consume replies that have arrived and check that the
 * server is still there.  0, or -ECONNRESET (or another -errno) with the
 * link broken (no reconnect is attempted here; the next call that needs the
 * server reconnects as usual).
 */
int kona_link_check(KonaLink *l, GError **errp);

/* For tests: put raw bytes on the wire (no framing, no checks). */
int kona_link_send_raw(KonaLink *l, const void *buf, size_t len,
                       GError **errp);

#endif /* KONA_LINK_H */

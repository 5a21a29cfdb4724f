/*
 * Kona-CXL: where the media really lives.
 *
 * The media is laid out over extents, each a slab on one memory node:
 * either one slab on the memnode named by property 'memnode' (and, with
 * 'replica', a second copy on another memnode), or the placements the rack
 * controller named by 'rackctl' hands out.  With neither, the device has no
 * remote memory: blocks start zero-filled and write-back has nowhere to go,
 * so the cache must hold the whole media.
 *
 * Two paths to a memnode.  Over a socket, a fetch is a READ request and a
 * write-back a WRITE_LINES carrying the dirty lines.  A memnode on this
 * host (unix: address) may also hand over each slab's memory as a
 * descriptor (the shared path, KONA_CAP_SHARED): the slab is mapped, a
 * fetch is a copy from the mapping, a write-back copies the dirty lines
 * into it and tells the memnode which (WROTE_LINES, batched), and FLUSH
 * is the same request on both paths.  Property 'remote-path' picks: auto
 * (the shared path wherever a memnode offers it), socket or shared.  A
 * mapped copy's memnode is checked for life at most once a millisecond
 * (and the batched notes sent then, so the memnode's counters lag by
 * about that much, and not at all after a FLUSH or a guest command); one
 * that went away is reconnected and the slab mapped again, or the copy
 * fails like a socket copy whose memnode is gone.
 *
 * Replication: a write-back completes once every live copy has it; a copy
 * whose memnode fails is declared dead and the device runs on the others
 * (failovers); a dead copy's memnode is retried at most once a second and,
 * once it answers, gets a fresh slab filled from a live copy (resync).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_REMOTE_H
#define KONA_REMOTE_H

#include "kona-copy.h"
#include "kona-resync.h"

typedef struct KonaRemoteConfig {
    const char *memnode;        /* "unix:PATH" | "tcp:HOST:PORT" */
    const char *replica;        /* a second memnode for a second copy */
    const char *rackctl;
    const char *volume;         /* named allocation: survives QEMU */
    const char *secret_file;    /* shared secret for memnode AUTH */
    KonaCopyPath path;
    uint64_t size;
    uint32_t block_size;
    unsigned timeout_ms;
} KonaRemoteConfig;

typedef struct KonaRemote {
    KonaRemoteConfig cfg;       /* strings owned */
    KonaCopyConfig copy_cfg;    /* for every copy: secret owned */
    KonaLink *rack;             /* controller link, keeps the allocation */
    GPtrArray *links;           /* KonaLink *, one per memnode */
    KonaExtent *extents;
    unsigned nextents;
    KonaResync resync;
    uint64_t failovers, resyncs, resync_bytes;
    /*
     * A Sanitize has not reached every extent yet: nothing is read or
     * written back until it has (a fetch would see the erased data).
     */
    bool zero_pending;
    /* Write-back staging: masks and packed lines of one request. */
    uint64_t *masks;
    uint8_t *lines;
} KonaRemote;

/* Connect and get the media's slabs; errors name the property at fault. */
bool kona_remote_open(KonaRemote *r, const KonaRemoteConfig *cfg,
                      Error **errp);
void kona_remote_close(KonaRemote *r);

static inline bool kona_remote_present(const KonaRemote *r)
{
    return r->nextents > 0;
}

/*
 * Read media [offset, offset + len) (inside one extent).  With @data NULL
 * into @buf; otherwise *data is where the bytes are: in a copy's mapping
 * (valid until the next call on @r, no copy made) or, read from a socket,
 * in @buf.
 */
int kona_remote_read(KonaRemote *r, uint64_t offset, void *buf, uint32_t len,
                     const uint8_t **data, Error **errp);

/*
 * Write the lines set in @masks (one per 4 KiB page from @page_base) to
 * the memnode; the data of line i of page p is at
 * @data + (page_base + p * 4096 + i * 64 - data_base).
 */
int kona_remote_write_lines(KonaRemote *r, uint64_t page_base,
                            uint32_t npages, const uint64_t *masks,
                            const uint8_t *data, uint64_t data_base,
                            Error **errp);

/* Every write so far is in the memnodes' memory (FLUSH on each link). */
int kona_remote_flush(KonaRemote *r, Error **errp);
/*
 * Every byte of every live copy becomes zero, then FLUSH (Sanitize): one
 * ZERO request per copy.  Until that has worked, every read and
 * write-back tries it again first, and fails if it still cannot.
 */
int kona_remote_zero(KonaRemote *r, Error **errp);

/*
 * The memnodes have counted every write-back through a mapping so far
 * (the batched WROTE_LINES notes sent and answered).
 */
void kona_remote_sync_notes(KonaRemote *r);

/* Are media offsets @a and @b held by the same memory nodes? */
bool kona_remote_same_nodes(KonaRemote *r, uint64_t a, uint64_t b);

/*
 * An idle device makes no request, so a connection that broke would go
 * unnoticed until the memnode freed an unnamed slab (its --linger) or the
 * rack controller an unnamed allocation (its --lease): notice it now and
 * connect again, which reopens the slabs and reclaims the allocation.
 * Links that are down already are left to the next access (or resync).
 */
void kona_remote_keepalive(KonaRemote *r);

/* Live copies served through a mapping, of all copies. */
void kona_remote_paths(KonaRemote *r, unsigned *mapped, unsigned *copies);

#endif /* KONA_REMOTE_H */

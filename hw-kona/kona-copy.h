/*
 * Kona-CXL: one copy of an extent of the media, on one memory node.
 *
 * A copy is a slab on a memnode reached through a kona-link connection,
 * either over the socket (READ, WRITE_LINES) or, where the memnode offers
 * it, through a mapping of the slab (the shared path: a fetch is a copy
 * from the mapping, a write-back copies the dirty lines into it and notes
 * them to the memnode).  These functions know one copy only: which copies
 * exist, which are live and what to do when one fails is kona-remote.c's
 * business.  Nothing here touches QEMU state: the device calls them with
 * its lock held and the BQL released, the resync thread (kona-resync.c)
 * on copies of its own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_COPY_H
#define KONA_COPY_H

#include "hw/kona-memnode/kona-link.h"

#define KONA_MAX_COPIES 2

typedef enum KonaCopyPath {
    KONA_COPY_PATH_AUTO,        /* mapped wherever the memnode offers it */
    KONA_COPY_PATH_SOCKET,
    KONA_COPY_PATH_SHARED,      /* mapped, or an error */
} KonaCopyPath;

/* What every connection and slab of a device shares. */
typedef struct KonaCopyConfig {
    unsigned timeout_ms;        /* connect and per request */
    GBytes *secret;             /* for AUTH, or NULL */
    KonaCopyPath path;
    const char *volume;         /* named allocation, or NULL */
    uint64_t size;              /* of a slab a copy gets (memnode/replica) */
} KonaCopyConfig;

typedef struct KonaCopy {
    KonaLink *link;
    char *addr;
    uint64_t slab_id;
    bool live;
    bool shared;                /* served through a mapping of the slab */
    uint8_t *map;               /* the mapping; NULL while it is lost */
    uint64_t map_size;
    bool can_shrink;            /* its file may be cut under it (SIGBUS) */
    int64_t checked_ns;         /* when the memnode was last seen alive */
    char *refused;              /* a note the memnode refused, for FLUSH */
    uint64_t gen;               /* the slab's generation (newer: larger) */
} KonaCopy;

/* A range of the media and its copies. */
typedef struct KonaExtent {
    uint64_t offset;            /* media range [offset, offset + size) */
    uint64_t size;
    KonaCopy copies[KONA_MAX_COPIES];
    unsigned ncopies;
} KonaExtent;

/* A connection with the device's timeouts and secret. */
KonaLink *kona_copy_connect(const KonaCopyConfig *cfg, const char *addr,
                            GError **gerr);
/* The media's slab on @l: the named volume, or a fresh slab. */
int kona_copy_get_slab(const KonaCopyConfig *cfg, KonaLink *l,
                       uint64_t *slab, const char *prop, Error **errp);
/*
 * Serve @c through a mapping of its slab (at least @need bytes) where the
 * path allows: auto maps wherever the memnode offers it (an unusable
 * descriptor falls back to the socket, with a warning), shared insists,
 * socket never maps.
 */
bool kona_copy_map(const KonaCopyConfig *cfg, KonaCopy *c, uint64_t need,
                   Error **errp);
void kona_copy_unmap(KonaCopy *c);
/*
 * A mapped copy is usable if its memnode is still there (checked at most
 * once a millisecond, or now with @now; the batched notes go out then).
 * One that went away is reconnected and mapped again, or the copy fails.
 */
bool kona_copy_ready(KonaCopy *c, bool now, GError **gerr);
/*
 * Read [off, off + len) of @c's slab: into @buf, or with @data (not NULL)
 * straight from the mapping, *data pointing there (or at @buf).
 */
int kona_copy_read(KonaCopy *c, uint64_t off, void *buf, uint32_t len,
                   const uint8_t **data, GError **gerr);
/*
 * Write the lines @masks select (one mask per 4 KiB page from slab offset
 * @off), with retries: through the mapping from @pages (the pages' bytes),
 * or the packed @lines over the socket.
 */
int kona_copy_write(KonaCopy *c, uint64_t off, uint32_t npages,
                    const uint64_t *masks, const uint8_t *pages,
                    const uint8_t *lines, GError **gerr);

/*
 * [off, off + len) of @c's slab reads as zeroes (page-aligned), with
 * retries: ZERO requests of 64 MiB each (every one answered within
 * timeout-ms however much memory the memnode frees for it), which give
 * the memory back on an anonymous memnode, or the zeroes written where
 * the memnode is too old for them.
 */
int kona_copy_zero(KonaCopy *c, uint64_t off, uint64_t len, GError **gerr);

/*
 * Copy [off, off + len) of one copy's slab to another's (page-aligned), in
 * reads of at most KONA_MAX_IO through @buf (that many bytes).
 */
int kona_copy_extent(KonaCopy *from, KonaCopy *to, uint64_t off,
                     uint64_t len, uint8_t *buf, GError **gerr);

#endif /* KONA_COPY_H */

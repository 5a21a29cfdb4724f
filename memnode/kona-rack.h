/*
 * Client of the rack controller (kona-rackctl): memnodes register their
 * capacity, clients get memory as slabs striped across memnodes.  Uses a
 * KonaLink connected to the controller's address.
 */
#ifndef KONA_RACK_H
#define KONA_RACK_H

#include "kona-link.h"

typedef struct KonaRackPlacementInfo {
    uint64_t offset;            /* where this slab starts in the allocation */
    uint64_t size;
    uint64_t slab_id;
    uint8_t key[KONA_KEY_SIZE]; /* for kona_link_slab_open on the memnode */
    char *addr;                 /* the memnode's address */
} KonaRackPlacementInfo;

typedef struct KonaRackAlloc {
    uint64_t alloc_id;
    uint64_t size;
    unsigned count;
    KonaRackPlacementInfo *placements;
} KonaRackAlloc;

typedef struct KonaRackNodeInfo {
    uint64_t node_id;
    uint64_t capacity;
    uint64_t used;
    bool alive;
    char *addr;
} KonaRackNodeInfo;

typedef struct KonaRackStatus {
    uint64_t capacity;          /* of live nodes */
    uint64_t used;
    unsigned nallocs;
    unsigned nnodes;
    KonaRackNodeInfo *nodes;
} KonaRackStatus;

/* A memnode announces itself: @capacity bytes reachable at @addr. */
int kona_rack_register(KonaLink *ctl, uint64_t capacity, const char *addr,
                       uint64_t *node_id, GError **errp);

/*
 * Ask for @size bytes in slabs of @slab_size (0: the controller's
 * default), striped across memnodes.  A @name (may be NULL) makes the
 * allocation persistent and re-obtainable by name; unnamed allocations
 * are released when this controller connection closes.
 */
int kona_rack_alloc(KonaLink *ctl, uint64_t size, uint64_t slab_size,
                    const char *name, KonaRackAlloc **out, GError **errp);
void kona_rack_alloc_free(KonaRackAlloc *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KonaRackAlloc, kona_rack_alloc_free)

int kona_rack_free(KonaLink *ctl, uint64_t alloc_id, GError **errp);

int kona_rack_status(KonaLink *ctl, KonaRackStatus **out, GError **errp);
void kona_rack_status_free(KonaRackStatus *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KonaRackStatus, kona_rack_status_free)

#endif /* KONA_RACK_H */

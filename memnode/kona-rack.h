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
    bool has_key;               /* false from a controller without keys */
    uint8_t key[KONA_KEY_SIZE]; /* the allocation key (RACK_RECLAIM) */
} KonaRackAlloc;

typedef struct KonaRackAllocOpts {
    uint64_t size;              /* bytes wanted */
    uint64_t slab_size;         /* stripe unit; 0: the controller's */
    const char *name;           /* named allocation, or NULL */
    const uint8_t *key;         /* a named allocation's key (needed) */
    bool exclusive;             /* no other connection may hold it */
} KonaRackAllocOpts;

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
 * Ask for o->size bytes in slabs of o->slab_size, striped across
 * memnodes.  A name makes the allocation persistent and re-obtainable by
 * name with its key (-EACCES with another key, or none); an unnamed one
 * whose controller connection drops is kept for the controller's lease
 * time.  This link reclaims what it holds by itself when it reconnects
 * to the controller (RACK_RECLAIM with the allocation key), so an
 * allocation survives a cut connection.  -EBUSY: o->exclusive and
 * another connection holds it, or it is held exclusively.
 */
int kona_rack_alloc_opts(KonaLink *ctl, const KonaRackAllocOpts *o,
                         KonaRackAlloc **out, GError **errp);
/*
 * The same, not exclusive, with a named allocation's key derived from
 * the link's secret (kona_auth_volume_key); without a secret the
 * controller refuses a name.
 */
int kona_rack_alloc(KonaLink *ctl, uint64_t size, uint64_t slab_size,
                    const char *name, KonaRackAlloc **out, GError **errp);
void kona_rack_alloc_free(KonaRackAlloc *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KonaRackAlloc, kona_rack_alloc_free)

/*
 * Take allocation @alloc_id over with its key (e.g. on a new controller
 * connection after a crash of the old client): it is this connection's
 * from then on.  -EACCES: no such allocation with that key (its lease ran
 * out, or the key is wrong).
 */
int kona_rack_reclaim(KonaLink *ctl, uint64_t alloc_id,
                      const uint8_t key[KONA_KEY_SIZE], KonaRackAlloc **out,
                      GError **errp);

/* Free an allocation this connection holds. */
int kona_rack_free(KonaLink *ctl, uint64_t alloc_id, GError **errp);
/* Free any allocation whose key we have. */
int kona_rack_free_key(KonaLink *ctl, uint64_t alloc_id,
                       const uint8_t key[KONA_KEY_SIZE], GError **errp);

int kona_rack_status(KonaLink *ctl, KonaRackStatus **out, GError **errp);
void kona_rack_status_free(KonaRackStatus *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KonaRackStatus, kona_rack_status_free)

#endif /* KONA_RACK_H */

/*
 * Slab placement for the rack controller: which memnode gets which
 * stripe of an allocation.  Pure logic so it is unit-tested on its own.
 */
#ifndef RACKCTL_PLACE_H
#define RACKCTL_PLACE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct RcPlaceNode {
    uint64_t free;              /* bytes still unallocated on the node */
    bool alive;
} RcPlaceNode;

/*
 * Split @size bytes (a multiple of 4 KiB) into stripes of @slab_size (the
 * last one may be shorter) and give them to nodes round-robin, starting
 * after *@cursor, skipping dead nodes and nodes too full for the stripe.
 * Consecutive stripes land on different nodes whenever more than one
 * node has room, so sequential access spreads over the rack.
 *
 * On success returns the number of stripes, fills @node_of[i] (node
 * index of stripe i; the caller provides room for all stripes), charges
 * the nodes' free bytes and advances *@cursor.  Returns -ENOSPC (nothing
 * charged) if the stripes do not fit, -EINVAL for bad sizes or more than
 * @max_stripes stripes.
 */
int rc_place(RcPlaceNode *nodes, unsigned nnodes, uint64_t size,
             uint64_t slab_size, unsigned max_stripes, unsigned *cursor,
             unsigned *node_of);

#endif /* RACKCTL_PLACE_H */

/*
 * Slab placement: round-robin striping with capacity accounting.
 */
#include "rackctl-place.h"
#include "kona-proto.h"

#include <errno.h>

int rc_place(RcPlaceNode *nodes, unsigned nnodes, uint64_t size,
             uint64_t slab_size, unsigned max_stripes, unsigned *cursor,
             unsigned *node_of)
{
    g_autofree uint64_t *free_left = NULL;
    uint64_t nstripes;
    unsigned next;

    if (!size || size % KONA_PAGE_SIZE || !slab_size ||
        slab_size % KONA_PAGE_SIZE) {
        return -EINVAL;
    }
    nstripes = (size + slab_size - 1) / slab_size;
    if (nstripes > max_stripes) {
        return -EINVAL;
    }
    if (!nnodes) {
        return -ENOSPC;
    }
    /* plan on a copy so a failure charges nothing */
    free_left = g_new(uint64_t, nnodes);
    for (unsigned n = 0; n < nnodes; n++) {
        free_left[n] = nodes[n].alive ? nodes[n].free : 0;
    }
    next = *cursor % nnodes;
    for (uint64_t i = 0; i < nstripes; i++) {
        uint64_t want = MIN(slab_size, size - i * slab_size);
        unsigned tried;

        for (tried = 0; tried < nnodes; tried++) {
            unsigned n = (next + tried) % nnodes;
            if (free_left[n] >= want) {
                free_left[n] -= want;
                node_of[i] = n;
                next = (n + 1) % nnodes;
                break;
            }
        }
        if (tried == nnodes) {
            return -ENOSPC;
        }
    }
    for (unsigned n = 0; n < nnodes; n++) {
        if (nodes[n].alive) {
            nodes[n].free = free_left[n];
        }
    }
    *cursor = next;
    return (int)nstripes;
}

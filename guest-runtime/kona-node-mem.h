/*
 * Anonymous memory bound to one NUMA node, in small pages, for the guest
 * programs that measure or probe the Kona node (konabench, kona-pattern,
 * kona-poison-probe).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_NODE_MEM_H
#define KONA_NODE_MEM_H

#include <stddef.h>

/*
 * Map @bytes of private anonymous memory whose pages can only come from
 * node @node (mbind MPOL_BIND, strict), without huge pages: one huge page
 * would put 512 pages' worth of faults, first touches or failed loads on
 * one.  NULL on failure, with a message on stderr that starts with @prog.
 */
void *kona_node_map(const char *prog, int node, size_t bytes);

#endif /* KONA_NODE_MEM_H */

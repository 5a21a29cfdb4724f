/*
 * Anonymous memory bound to one NUMA node (see kona-node-mem.h).  Without
 * libnuma: the programs are static, and the system call is one line.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "kona-node-mem.h"

#define MPOL_BIND 2
#define MPOL_MF_STRICT (1 << 0)
#define MPOL_MF_MOVE (1 << 1)

void *kona_node_map(const char *prog, int node, size_t bytes)
{
    unsigned long mask;
    void *p;

    if (node < 0 || node >= 64) {
        fprintf(stderr, "%s: no node %d\n", prog, node);
        return NULL;
    }
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "%s: mmap of %zu bytes: %s\n", prog, bytes,
                strerror(errno));
        return NULL;
    }
    madvise(p, bytes, MADV_NOHUGEPAGE);
    mask = 1ul << node;
    if (syscall(SYS_mbind, p, bytes, MPOL_BIND, &mask, 64,
                MPOL_MF_STRICT | MPOL_MF_MOVE) < 0) {
        fprintf(stderr, "%s: mbind to node %d: %s\n", prog, node,
                strerror(errno));
        munmap(p, bytes);
        return NULL;
    }
    return p;
}

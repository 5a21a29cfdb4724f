/*
 * Kona-CXL: the media as host memory whose misses are caught by
 * userfaultfd (tracking=fast and tracking=stores).
 *
 * The guest-visible media is one anonymous host mapping, the media's size
 * (reserved, not committed), that the mode exposes to the guest as RAM
 * (fast) or as a ROM device (stores).  Only resident blocks have pages.
 * Touching any other page faults in the host; userfaultfd hands the fault
 * to this file's thread, which makes the block resident through the
 * common miss path (kona_fault_in: room, fetch) and the mode installs it
 * with UFFDIO_COPY, which wakes the faulting thread.  Under TCG and KVM
 * alike: a KVM vCPU's fault on a memslot page is a host fault too.
 *
 * Nothing may touch a missing or write-protected page of the media while
 * holding the device lock, or it would wait for the fault thread, which
 * waits for the lock: the device's own accesses touch resident blocks only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_UFFD_H
#define KONA_UFFD_H

#include "qemu/thread.h"

typedef struct KonaCxlState KonaCxlState;

typedef struct KonaUffdMedia {
    uint8_t *mem;               /* the media, by address; NULL: unused */
    uint64_t size;
    int uffd;
    int stop_fd;                /* eventfd that ends the fault thread */
    QemuThread thread;
    bool running;
    bool stopping;
    bool giving_up;             /* QEMU shuts down: stop waiting on fetches */
} KonaUffdMedia;

/* Can this host serve the media this way?  Errors name a property. */
bool kona_uffd_check(KonaCxlState *s, bool write_protect, Error **errp);
/* Map and register the media (not yet the thread). */
bool kona_uffd_init(KonaCxlState *s, bool write_protect, Error **errp);
/* Once the guest region over the media exists: resolve faults. */
void kona_uffd_start(KonaCxlState *s);
/* Stop the fault thread (unrealize). */
void kona_uffd_stop(KonaCxlState *s);
/*
 * QEMU is shutting down: a vCPU waiting for a block that cannot be fetched
 * would keep its vCPUs from ever pausing, so such waits end now (the page
 * reads as zeros: no guest runs on to use it).
 */
void kona_uffd_give_up(KonaCxlState *s);
/* Everything, the media's memory too (instance finalize). */
void kona_uffd_destroy(KonaCxlState *s);

/* The media's bytes of @block. */
static inline uint8_t *kona_uffd_block(KonaUffdMedia *m, uint64_t block,
                                       unsigned block_shift)
{
    /*
     * Callers copy into, protect and discard what this returns: a block
     * past the media would do that to the rest of QEMU's memory (under
     * KVM, the guest's own RAM), so stop here instead.
     */
    g_assert(block < m->size >> block_shift);
    return m->mem + (block << block_shift);
}

/* Populate @block's pages with @src (block_size bytes), waking waiters. */
int kona_uffd_install(KonaCxlState *s, uint64_t block, const uint8_t *src,
                      Error **errp);
/* (Un)write-protect @block's pages: a store to them waits meanwhile. */
void kona_uffd_protect(KonaCxlState *s, uint64_t block, bool wp);
/* Drop @block's pages; its next touch faults it back in. */
void kona_uffd_discard(KonaCxlState *s, uint64_t block);

#endif /* KONA_UFFD_H */

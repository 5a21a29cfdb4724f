/*
 * Kona-CXL: bringing a dead copy back, in the background.
 *
 * A copy whose memnode failed is declared dead and the device runs on the
 * other (kona-remote.c).  Bringing it back means connecting to its memnode
 * (which may take connections and never answer: up to timeout-ms per try),
 * getting a fresh slab there and copying the whole extent into it: far too
 * long to do inside a guest access holding the device lock, as it once
 * was.  Here a thread of its own does it with connections of its own: it
 * reads the live copy and fills the fresh one while the guest goes on.
 * What the guest writes back meanwhile is noted (the pages) and copied
 * again under the device lock when the thread is done, then the fresh copy
 * replaces the dead one.  A failed attempt is retried no sooner than a
 * second after it ended.
 *
 * The device drives it from its remote accesses (fetches and write-backs),
 * lock held, so it moves on with the device's traffic: kona_resync_poll()
 * starts a job, finishes a done one or notes a failure; every write-back
 * to an extent being copied reports its pages (kona_resync_note_write).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_RESYNC_H
#define KONA_RESYNC_H

#include "qemu/thread.h"
#include "kona-copy.h"

typedef enum KonaResyncState {
    KONA_RESYNC_IDLE,
    KONA_RESYNC_COPYING,        /* the thread works on the job */
    KONA_RESYNC_READY,          /* copied: the device finishes it */
    KONA_RESYNC_FAILED,         /* the device notes it and backs off */
} KonaResyncState;

typedef struct KonaResync {
    const KonaCopyConfig *cfg;
    QemuThread thread;
    QemuMutex lock;             /* guards state, stop and the job's result */
    QemuCond cond;
    bool running;
    bool stop;
    KonaResyncState state;

    /* The job, set by the device under its lock while IDLE. */
    KonaExtent *extent;
    unsigned dead;              /* index of the copy to bring back */
    char *from_addr;            /* the live copy: where, which slab, key */
    uint64_t from_slab;
    uint8_t from_key[KONA_KEY_SIZE];
    bool dead_known;            /* the dead copy's slab, if its link kept it */
    uint64_t dead_slab;
    uint8_t dead_key[KONA_KEY_SIZE];
    /* Device lock: a job began and is not finished; its pages written. */
    bool active;
    GHashTable *rewrite;
    bool zeroed;                /* the extent was zeroed meanwhile */

    /* The thread's result. */
    KonaCopy fresh;
    char *error;
    int64_t ended_ms;           /* when the last attempt ended */
} KonaResync;

void kona_resync_init(KonaResync *rs, const KonaCopyConfig *cfg);
/* Stop the thread (waits for an attempt in progress) and free it all. */
void kona_resync_destroy(KonaResync *rs);

/*
 * Device lock held.  Start bringing back a dead copy (at most once a second
 * after the last attempt), or finish a job the thread has done: the pages
 * written meanwhile are copied again from the live copy, and the fresh
 * copy replaces the dead one; its new link goes into @links.  Returns the
 * bytes resynced (0 if nothing was finished).
 */
uint64_t kona_resync_poll(KonaResync *rs, KonaExtent *extents,
                          unsigned nextents, GPtrArray *links);

/*
 * Device lock held: every live copy of @e was zeroed (Sanitize).  A copy
 * being brought back is zeroed too before the pages written since are
 * copied into it.
 */
void kona_resync_note_zero(KonaResync *rs, KonaExtent *e);

/* Device lock held: a write-back of pages [off, off + npages * 4 KiB). */
void kona_resync_note_write(KonaResync *rs, KonaExtent *e, uint64_t off,
                            uint32_t npages);

#endif /* KONA_RESYNC_H */

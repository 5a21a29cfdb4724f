/*
 * Kona-CXL: tracking=fast, resident data served at RAM speed.
 *
 * The media is host memory with userfaultfd misses (kona-uffd.c), mapped
 * into the guest as RAM at a committed decoder's range (kona-direct.c):
 * loads, stores and instruction fetches of resident blocks are plain
 * memory accesses, under TCG and KVM alike.
 *
 * Stores are not seen one by one.  Each resident block keeps a clean copy
 * (the cache's frame memory holds it: the cost is one more copy of the
 * cache), and at write-back the lines that differ from it are the dirty
 * ones.  So a store that leaves a line's value unchanged dirties nothing
 * here, where hardware and tracking=exact count it.  To write back without
 * racing the guest, the block is write-protected (userfaultfd WP: a store
 * waits) while it is compared and sent, then either dropped (its next
 * touch faults again) or, if it stays resident, its clean copy renewed and
 * the protection lifted.  A block is write-protected only while the thread
 * writing it back holds the device lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "kona-state.h"
#include "kona-track.h"
#include "kona-uffd.h"

typedef struct KonaFast {
    MemoryRegion ram;
    bool ram_live;              /* until unrealize */
} KonaFast;

static uint64_t kona_fast_block_of(KonaCxlState *s, uint32_t frame)
{
    return s->cache.frames[frame].block;
}

static uint8_t *kona_fast_data(KonaCxlState *s, uint32_t frame)
{
    return kona_uffd_block(&s->uffd, kona_fast_block_of(s, frame),
                           s->cache.block_shift);
}

/* The clean copy of @frame's block: what the memory node holds. */
static uint8_t *kona_fast_clean(KonaCxlState *s, uint32_t frame)
{
    return kona_cache_frame_mem(&s->cache, frame);
}

static int kona_fast_install(KonaCxlState *s, uint32_t frame,
                             const uint8_t *src, Error **errp)
{
    uint8_t *clean = kona_fast_clean(s, frame);

    if (kona_uffd_install(s, kona_fast_block_of(s, frame), src, errp) < 0) {
        return -EIO;
    }
    /* After the copy that woke the vCPU: the clean copy, if elsewhere. */
    if (src != clean) {
        memcpy(clean, src, s->cache.block_size);
    }
    return 0;
}

static void kona_fast_stored(KonaCxlState *s, uint32_t frame, uint64_t addr,
                             uint32_t off, unsigned len)
{
    /* Found by comparison at write-back, like the guest's own stores. */
}

static void kona_fast_sync_dirty(KonaCxlState *s, uint32_t frame)
{
    kona_cache_diff_dirty(&s->cache, frame, kona_fast_data(s, frame),
                          kona_fast_clean(s, frame));
}

static void kona_fast_writeback_begin(KonaCxlState *s, uint32_t frame,
                                      bool evicting)
{
    kona_uffd_protect(s, kona_fast_block_of(s, frame), true);
    kona_fast_sync_dirty(s, frame);
}

static void kona_fast_writeback_end(KonaCxlState *s, uint32_t frame,
                                    bool written, bool dropping)
{
    if (dropping) {
        return;     /* stays protected until it is dropped */
    }
    if (written) {
        /* Protected since the comparison: the data is what was sent. */
        memcpy(kona_fast_clean(s, frame), kona_fast_data(s, frame),
               s->cache.block_size);
    }
    kona_uffd_protect(s, kona_fast_block_of(s, frame), false);
}

static void kona_fast_drop(KonaCxlState *s, uint32_t frame)
{
    kona_uffd_discard(s, kona_fast_block_of(s, frame));
}

static bool kona_fast_check(KonaCxlState *s, Error **errp)
{
    if (s->window_ms) {
        error_setg(errp, "kona-cxl: property 'window-ms' needs "
                   "tracking=exact or stores: with tracking=fast the device "
                   "does not see each store");
        return false;
    }
    return kona_uffd_check(s, true, errp);
}

static KonaFast *kona_fast_state(KonaCxlState *s)
{
    return s->track_priv;
}

static bool kona_fast_init(KonaCxlState *s, Error **errp)
{
    KonaFast *f;

    if (!kona_uffd_init(s, true, errp)) {
        return false;
    }
    f = s->track_priv = g_new0(KonaFast, 1);
    memory_region_init_ram_ptr(&f->ram, OBJECT(s), "kona-fast-media",
                               s->size, s->uffd.mem);
    f->ram_live = true;
    kona_uffd_start(s);
    return true;
}

static MemoryRegion *kona_fast_guest_region(KonaCxlState *s)
{
    return &kona_fast_state(s)->ram;
}

static void kona_fast_stop(KonaCxlState *s)
{
    KonaFast *f = kona_fast_state(s);

    kona_uffd_stop(s);
    if (f && f->ram_live) {
        object_unparent(OBJECT(&f->ram));
        f->ram_live = false;
    }
}

static void kona_fast_destroy(KonaCxlState *s)
{
    kona_uffd_destroy(s);
    g_clear_pointer(&s->track_priv, g_free);
}

const KonaTrackOps kona_track_fast = {
    .name = "fast",
    .sees_stores = false,
    .sees_loads = false,
    .kvm_ok = true,
    .check = kona_fast_check,
    .init = kona_fast_init,
    .stop = kona_fast_stop,
    .destroy = kona_fast_destroy,
    .guest_region = kona_fast_guest_region,
    .data = kona_fast_data,
    .fetch_buffer = kona_fast_clean,
    .install = kona_fast_install,
    .stored = kona_fast_stored,
    .sync_dirty = kona_fast_sync_dirty,
    .writeback_begin = kona_fast_writeback_begin,
    .writeback_end = kona_fast_writeback_end,
    .drop = kona_fast_drop,
};

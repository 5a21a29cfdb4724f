/*
 * Kona-CXL: tracking=exact, every load and store through the device.
 *
 * The guest reaches the media only through the device's I/O region
 * (kona-media.c's handlers), so the device sees each access as a coherent
 * device would: a store dirties its lines as it happens (an unchanged
 * value too, as a coherence write-back of a modified line would), and
 * reads set the access bits the replacement policy and konad use.  The
 * data lives in the cache's frames.  TCG only: KVM cannot run guest code
 * from an I/O region, so a code page on the node would kill the guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "kona-state.h"
#include "kona-track.h"

static MemoryRegion *kona_exact_guest_region(KonaCxlState *s)
{
    return &s->media_io;
}

static uint8_t *kona_exact_data(KonaCxlState *s, uint32_t frame)
{
    return kona_cache_frame_mem(&s->cache, frame);
}

static int kona_exact_install(KonaCxlState *s, uint32_t frame,
                              const uint8_t *src, Error **errp)
{
    uint8_t *dst = kona_cache_frame_mem(&s->cache, frame);

    if (src != dst) {
        memcpy(dst, src, s->cache.block_size);
    }
    return 0;
}

/* Every store: its lines are dirty, and the window tracker counts them. */
void kona_track_note_store(KonaCxlState *s, uint32_t frame, uint64_t addr,
                           uint32_t off, unsigned len)
{
    s->stats[KONA_DEV_STAT_LINES_DIRTIED] +=
        kona_cache_mark_dirty(&s->cache, frame, off, len);
    kona_window_note_write(&s->window, addr, len);
}

const KonaTrackOps kona_track_exact = {
    .name = "exact",
    .sees_stores = true,
    .sees_loads = true,
    .kvm_ok = false,
    .guest_region = kona_exact_guest_region,
    .data = kona_exact_data,
    .fetch_buffer = kona_exact_data,
    .install = kona_exact_install,
    .stored = kona_track_note_store,
};

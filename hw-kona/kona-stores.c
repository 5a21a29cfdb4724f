/*
 * Kona-CXL: tracking=stores, loads and code at RAM speed, every store seen.
 *
 * The media is host memory with userfaultfd misses (kona-uffd.c), exposed
 * to the guest as a ROM device (qemu-patches/0006): loads and instruction
 * fetches of resident blocks read that memory directly (TCG's fast path,
 * a read-only memslot under KVM), and every store traps to the device's
 * media handlers, which record its 64-byte lines as exact mode does (a
 * store of an unchanged value is a dirty line too), count it in the
 * per-window tracker, and perform it.  A load of a block that is not
 * resident faults in the host and is resolved as in fast mode; a store to
 * one is a miss of the handler itself.
 *
 * Since every store goes through the device lock, a block's data cannot
 * change under a write-back: no clean copy, and the dirty lines need no
 * comparison.  The exception under TCG (property 'promote') is a page
 * whose lines are all dirty already: it takes stores at RAM speed until
 * its write-back takes it back (kona-promote.c).  A store the device
 * performs into the region's memory invalidates TCG's translations of that
 * range, as QEMU's own writes to RAM do, so code the guest rewrites on the
 * node runs in its new form.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "qapi/error.h"
#include "kona-code.h"
#include "kona-state.h"
#include "kona-media.h"
#include "kona-track.h"
#include "kona-uffd.h"

typedef struct KonaStores {
    MemoryRegion rom;
    ram_addr_t rom_base;        /* the ROM's RAM block, for its dirty bits */
    bool rom_live;              /* until unrealize */
    uint8_t *staging;           /* one block: a socket fetch lands here */
} KonaStores;

static KonaStores *kona_stores_state(KonaCxlState *s)
{
    return s->track_priv;
}

static uint64_t kona_stores_block_of(KonaCxlState *s, uint32_t frame)
{
    return s->cache.frames[frame].block;
}

static uint8_t *kona_stores_data(KonaCxlState *s, uint32_t frame)
{
    return kona_uffd_block(&s->uffd, kona_stores_block_of(s, frame),
                           s->cache.block_shift);
}

/* Fetches are serialised by the device lock: one buffer is enough. */
static uint8_t *kona_stores_fetch_buffer(KonaCxlState *s, uint32_t frame)
{
    return kona_stores_state(s)->staging;
}

static int kona_stores_install(KonaCxlState *s, uint32_t frame,
                               const uint8_t *src, Error **errp)
{
    return kona_uffd_install(s, kona_stores_block_of(s, frame), src, errp);
}

static void kona_stores_stored(KonaCxlState *s, uint32_t frame,
                               uint64_t addr, uint32_t off, unsigned len)
{
    KonaStores *st = kona_stores_state(s);

    kona_track_note_store(s, frame, addr, off, len);
    /* Translated code of this range is stale now (TCG). */
    kona_code_stored(&st->rom, st->rom_base, addr, len);
    kona_promote_stored(s, frame, addr, len);
}

static void kona_stores_drop(KonaCxlState *s, uint32_t frame)
{
    kona_uffd_discard(s, kona_stores_block_of(s, frame));
}

static bool kona_stores_check(KonaCxlState *s, Error **errp)
{
    /* Promotion write-protects an evicted page against late stores. */
    return kona_uffd_check(s, s->promote.enabled, errp);
}

static bool kona_stores_init(KonaCxlState *s, Error **errp)
{
    KonaStores *st;

    if (!kona_uffd_init(s, s->promote.enabled, errp)) {
        return false;
    }
    st = s->track_priv = g_new0(KonaStores, 1);
    st->staging = qemu_memalign(qemu_real_host_page_size(), s->block_size);
    memory_region_init_rom_device_ptr(&st->rom, OBJECT(s), &kona_media_ops,
                                      s, "kona-stores-media", s->size,
                                      s->uffd.mem);
    /* The store handlers are the media's: the same locking applies. */
    st->rom.disable_reentrancy_guard = true;
    memory_region_enable_lockless_io(&st->rom);
    memory_region_set_lockless_pair(&st->rom, kona_media_pair);
    st->rom_base = memory_region_get_ram_addr(&st->rom);
    st->rom_live = true;
    kona_promote_init(s, s->uffd.mem);
    kona_uffd_start(s);
    return true;
}

static MemoryRegion *kona_stores_guest_region(KonaCxlState *s)
{
    return &kona_stores_state(s)->rom;
}

static void kona_stores_stop(KonaCxlState *s)
{
    KonaStores *st = kona_stores_state(s);

    kona_uffd_stop(s);
    if (st && st->rom_live) {
        object_unparent(OBJECT(&st->rom));
        st->rom_live = false;
    }
}

static void kona_stores_destroy(KonaCxlState *s)
{
    KonaStores *st = kona_stores_state(s);

    kona_uffd_destroy(s);
    kona_promote_destroy(s);
    if (st) {
        qemu_vfree(st->staging);
        g_free(st);
        s->track_priv = NULL;
    }
}

const KonaTrackOps kona_track_stores = {
    .name = "stores",
    .sees_stores = true,
    .sees_loads = false,
    .kvm_ok = true,
    .check = kona_stores_check,
    .init = kona_stores_init,
    .stop = kona_stores_stop,
    .destroy = kona_stores_destroy,
    .guest_region = kona_stores_guest_region,
    .data = kona_stores_data,
    .fetch_buffer = kona_stores_fetch_buffer,
    .install = kona_stores_install,
    .stored = kona_stores_stored,
    /* Fully dirty pages at RAM speed: giving and taking back. */
    .writeback_begin = kona_promote_writeback_begin,
    .writeback_end = kona_promote_writeback_end,
    .drop = kona_stores_drop,
    .late_store = kona_promote_late_store,
    .hold_stores = kona_promote_hold,
    .release_stores = kona_promote_release,
};

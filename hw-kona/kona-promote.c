/*
 * Kona-CXL: in tracking=stores, fully dirty pages take stores at RAM speed
 * (see kona-promote.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qapi/error.h"
#include "exec/cpu-common.h"
#include "exec/tlb-romd.h"
#include "hw/core/cpu.h"
#include "system/tcg.h"
#include "kona-state.h"
#include "kona-media.h"
#include "kona-promote.h"
#include "kona-uffd.h"
#include "trace.h"

#define KONA_PAGE_SHIFT 12
/*
 * Stores a fully dirty page takes through the device before it is given
 * RAM writes.  A page written once and then evicted, as by a stream with a
 * small cache, gains nothing from RAM writes and would still pay for
 * their take-back (a TLB walk and a write-protection, ~15 us a page here);
 * a page written again and again gives the device these few stores once.
 */
#define KONA_PROMOTE_AFTER 64

bool kona_promote_check(KonaCxlState *s, Error **errp)
{
    bool stores = s->track == &kona_track_stores;

    s->promote.enabled = false;
    switch (s->promote_prop) {
    case ON_OFF_AUTO_OFF:
        return true;
    case ON_OFF_AUTO_AUTO:
        s->promote.enabled = stores && tcg_enabled() && !s->window_ms;
        return true;
    default:
        break;
    }
    if (!stores) {
        error_setg(errp, "kona-cxl: property 'promote': promote=on needs "
                   "tracking=stores (exact and fast mode have no pages to "
                   "give RAM writes), not tracking=%s", s->tracking);
    } else if (!tcg_enabled()) {
        error_setg(errp, "kona-cxl: property 'promote': promote=on works "
                   "under TCG only (under KVM the media is one read-only "
                   "memory slot); use promote=auto or off");
    } else if (s->window_ms) {
        error_setg(errp, "kona-cxl: property 'promote': promote=on cannot "
                   "be used with 'window-ms' (windows count every store)");
    } else {
        s->promote.enabled = true;
        return true;
    }
    return false;
}

/*
 * The TLB's question (qemu-patches/0013): without locks, from any vCPU.
 * A yes first marks the page filled, so that a take-back knows a TLB may
 * hold it: the take-back clears the page's bit, then reads this mark
 * (kona_promote_take_back), and with a barrier on both sides either it
 * sees the mark or this sees the bit cleared.
 */
static bool kona_promote_writable(MemoryRegion *mr, hwaddr offset,
                                  bool fill)
{
    KonaPromote *p;
    uint64_t page = offset >> KONA_PAGE_SHIFT;

    if (mr->ops != &kona_media_ops) {
        return false;
    }
    p = &((KonaCxlState *)mr->opaque)->promote;
    if (!p->enabled || page >= p->npages || !test_bit(page, p->ram)) {
        return false;
    }
    if (!fill) {
        return true;            /* a question, not yet an entry */
    }
    if (!test_bit(page, p->filled)) {
        set_bit_atomic(page, p->filled);
    }
    smp_mb();
    return test_bit(page, p->ram);
}

void kona_promote_init(KonaCxlState *s, uint8_t *mem)
{
    KonaPromote *p = &s->promote;

    if (!p->enabled) {
        return;
    }
    p->mem = mem;
    p->npages = s->size >> KONA_PAGE_SHIFT;
    p->ram = bitmap_new(p->npages);
    p->filled = bitmap_new(p->npages);
    p->frame_ram = g_new0(uint16_t, s->cache.nframes);
    p->stores = g_new0(uint8_t, (size_t)s->cache.nframes *
                                kona_cache_block_pages(&s->cache));
    p->guarded = KONA_NO_FRAME;
    tlb_romd_set_writable_hook(kona_promote_writable);
}

void kona_promote_destroy(KonaCxlState *s)
{
    KonaPromote *p = &s->promote;

    g_free(p->ram);
    p->ram = NULL;
    g_free(p->filled);
    p->filled = NULL;
    g_free(p->frame_ram);
    p->frame_ram = NULL;
    g_free(p->stores);
    p->stores = NULL;
    p->enabled = false;
}

/* @frame's block's first page, by page number in the media. */
static uint64_t kona_promote_first_page(KonaCxlState *s, uint32_t frame)
{
    return (s->cache.frames[frame].block << s->cache.block_shift) >>
           KONA_PAGE_SHIFT;
}

static void kona_promote_give(KonaCxlState *s, KonaPromote *p,
                              uint32_t frame, uint64_t page)
{
    set_bit_atomic(page, p->ram);
    p->frame_ram[frame]++;
    p->nram++;
    s->stats[KONA_DEV_STAT_RAM_PAGES]++;
    trace_kona_promote(page << KONA_PAGE_SHIFT);
}

/* @frame's stores counter for @page (a page of its block). */
static uint8_t *kona_promote_stores(KonaCxlState *s, KonaPromote *p,
                                    uint32_t frame, uint64_t page)
{
    return &p->stores[(size_t)frame * kona_cache_block_pages(&s->cache) +
                      (page - kona_promote_first_page(s, frame))];
}

/* A new block, or pages taken back: their counts start again. */
static void kona_promote_reset_stores(KonaCxlState *s, KonaPromote *p,
                                      uint32_t frame)
{
    uint32_t npages = kona_cache_block_pages(&s->cache);

    memset(&p->stores[(size_t)frame * npages], 0, npages);
}

/*
 * Give @page (of @frame's block) RAM writes if all its lines are dirty,
 * unless a command or the window tracker needs every store now; @now
 * false: only once it has taken KONA_PROMOTE_AFTER stores so.
 */
static void kona_promote_try(KonaCxlState *s, KonaPromote *p, uint32_t frame,
                             uint64_t page, bool now)
{
    uint64_t first = kona_promote_first_page(s, frame);
    uint8_t *stores;

    if (p->hold || kona_window_enabled(&s->window) ||
        test_bit(page, p->ram) ||
        kona_cache_page_mask(&s->cache, frame, page - first) != UINT64_MAX) {
        return;
    }
    stores = kona_promote_stores(s, p, frame, page);
    if (!now && ++*stores < KONA_PROMOTE_AFTER) {
        return;
    }
    *stores = 0;
    kona_promote_give(s, p, frame, page);
}

void kona_promote_stored(KonaCxlState *s, uint32_t frame, uint64_t addr,
                         unsigned len)
{
    KonaPromote *p = &s->promote;
    uint64_t page = addr >> KONA_PAGE_SHIFT;
    uint64_t last = (addr + len - 1) >> KONA_PAGE_SHIFT;

    if (!p->enabled) {
        return;
    }
    /*
     * This vCPU's TLB entry is filled again after this store (0013), the
     * other vCPUs' when they next miss: until then their stores come here.
     */
    for (; page <= last; page++) {
        kona_promote_try(s, p, frame, page, false);
    }
}

/*
 * Take @frame's pages' RAM writes out of every vCPU's TLB.  False if no
 * TLB was ever filled with one of them as RAM: then no store can be on
 * its way to them without the device either.
 */
static bool kona_promote_take_back(KonaCxlState *s, KonaPromote *p,
                                   uint32_t frame)
{
    uint64_t first = kona_promote_first_page(s, frame);
    uint32_t npages = kona_cache_block_pages(&s->cache);
    bool filled = false;

    for (uint32_t i = 0; i < npages; i++) {
        clear_bit_atomic(first + i, p->ram);
    }
    p->nram -= p->frame_ram[frame];
    p->frame_ram[frame] = 0;
    smp_mb();   /* see kona_promote_writable */
    for (uint32_t i = 0; i < npages; i++) {
        if (test_bit(first + i, p->filled)) {
            clear_bit_atomic(first + i, p->filled);
            filled = true;
        }
    }
    if (filled) {
        /* Under each TLB's lock, which a fill holds around its question. */
        tlb_romd_take_back_writes(p->mem + (first << KONA_PAGE_SHIFT),
                                  s->cache.block_size);
    }
    return filled;
}

void kona_promote_writeback_begin(KonaCxlState *s, uint32_t frame,
                                  bool evicting)
{
    KonaPromote *p = &s->promote;

    if (!p->enabled || !p->frame_ram[frame] || !evicting) {
        /* Kept blocks' pages stay RAM-writable and dirty (writeback_end). */
        return;
    }
    if (!kona_promote_take_back(s, p, frame)) {
        return;
    }
    /*
     * A store already past its TLB check may still come: it waits on the
     * protection until the block is dropped, then faults it back in and
     * is counted (kona_promote_late_store).  The device itself stores to
     * no block it is writing back.
     */
    kona_uffd_protect(s, s->cache.frames[frame].block, true);
    p->guarded = frame;
}

void kona_promote_writeback_end(KonaCxlState *s, uint32_t frame,
                                bool written, bool dropping)
{
    KonaPromote *p = &s->promote;
    uint64_t first;
    uint32_t npages;

    if (!p->enabled) {
        return;
    }
    first = kona_promote_first_page(s, frame);
    npages = kona_cache_block_pages(&s->cache);
    if (written && dropping) {
        kona_promote_reset_stores(s, p, frame);
    }
    if (p->guarded == frame) {
        p->guarded = KONA_NO_FRAME;
        if (written && dropping) {
            return;             /* the drop ends the protection */
        }
        /* The write-back failed: every line is still dirty. */
        kona_uffd_protect(s, s->cache.frames[frame].block, false);
        for (uint32_t i = 0; i < npages; i++) {
            kona_promote_try(s, p, frame, first + i, true);
        }
        return;
    }
    if (!written || dropping || !p->frame_ram[frame]) {
        return;
    }
    /*
     * Written back while the guest could store to these pages without the
     * device (not from a guest command, see kona_promote_hold): they stay
     * dirty, so nothing stored meanwhile is lost.
     */
    for (uint32_t i = 0; i < npages; i++) {
        if (test_bit(first + i, p->ram)) {
            kona_cache_mark_dirty(&s->cache, frame,
                                  i * KONA_CACHE_PAGE_SIZE,
                                  KONA_CACHE_PAGE_SIZE);
        }
    }
}

void kona_promote_late_store(KonaCxlState *s, uint32_t frame, uint64_t addr)
{
    KonaPromote *p = &s->promote;
    uint64_t page = addr >> KONA_PAGE_SHIFT;
    uint64_t first = kona_promote_first_page(s, frame);

    if (!p->enabled) {
        return;
    }
    /* Which of its lines it wrote is not known: all of them count. */
    s->stats[KONA_DEV_STAT_LINES_DIRTIED] +=
        kona_cache_mark_dirty(&s->cache, frame,
                              (page - first) * KONA_CACHE_PAGE_SIZE,
                              KONA_CACHE_PAGE_SIZE);
    s->stats[KONA_DEV_STAT_LATE_STORES]++;
    trace_kona_late_store(addr);
    kona_promote_try(s, p, frame, page, true);
}

/*
 * Exclusive: no vCPU runs, so no store is between its TLB check and its
 * memory, and no TLB is being filled.  Every page's writes come back.
 */
static void kona_promote_take_back_all(CPUState *cpu, run_on_cpu_data data)
{
    KonaCxlState *s = data.host_ptr;
    KonaPromote *p = &s->promote;
    KonaLockState ls;

    kona_lock(s, &ls);
    if (p->nram) {
        bitmap_zero(p->ram, p->npages);
        bitmap_zero(p->filled, p->npages);
        memset(p->frame_ram, 0, s->cache.nframes * sizeof(*p->frame_ram));
        memset(p->stores, 0, (size_t)s->cache.nframes *
                             kona_cache_block_pages(&s->cache));
        p->nram = 0;
        tlb_romd_take_back_writes(p->mem, s->size);
    }
    kona_unlock(s, &ls);
}

void kona_promote_hold(KonaCxlState *s, KonaLockState *ls)
{
    KonaPromote *p = &s->promote;
    CPUState *cpu = current_cpu;

    if (!p->enabled) {
        return;
    }
    p->hold = true;
    if (!p->nram || !cpu) {
        /* Nothing to take back, or no vCPU to run it (see writeback_end). */
        return;
    }
    /*
     * Run the take-back exclusively, then this command's access again:
     * this vCPU leaves its translated code here and, before it runs the
     * access again, runs the work with every vCPU stopped.  The hold keeps
     * any page from being given RAM writes until the command is done.
     */
    trace_kona_promote_take_back_all(p->nram);
    kona_unlock(s, ls);
    async_safe_run_on_cpu(cpu, kona_promote_take_back_all,
                          RUN_ON_CPU_HOST_PTR(s));
    cpu_loop_exit_restore(cpu, cpu->mem_io_pc);
}

void kona_promote_release(KonaCxlState *s)
{
    s->promote.hold = false;
}

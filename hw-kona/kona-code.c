/*
 * Kona-CXL: stores the device performs into guest-visible RAM, and TCG's
 * translated code of that RAM.
 *
 * In tracking=stores every guest store to the node is performed by the
 * device, into memory that TCG also translates code from.  Most of those
 * stores land on pages TCG never translated code from, whose
 * DIRTY_MEMORY_CODE bit is set: the bit is tested first, as TCG's own path
 * for a store to RAM does (notdirty_write in accel/tcg/cputlb.c), and the
 * full invalidation runs only for pages with code or while dirty logging
 * (migration, dirty rate) is on.  Calling the full path for every store
 * cost 9% of a store-bound guest's time.  Target-specific because QEMU's
 * dirty bitmaps are indexed by target pages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "exec/ram_addr.h"
#include "system/tcg.h"
#include "kona-code.h"

/* Has TCG no translated code of this page (its DIRTY_MEMORY_CODE bit set)? */
static inline bool kona_code_page_free(ram_addr_t addr)
{
    unsigned long page = addr >> TARGET_PAGE_BITS;
    DirtyMemoryBlocks *blocks =
        qatomic_rcu_read(&ram_list.dirty_memory[DIRTY_MEMORY_CODE]);

    return test_bit(page % DIRTY_MEMORY_BLOCK_SIZE,
                    blocks->blocks[page / DIRTY_MEMORY_BLOCK_SIZE]);
}

/*
 * Called from the media's write handler, that is from within a memory
 * dispatch, which holds the RCU read lock that the dirty bitmaps need (a
 * guard of its own here cost two calls per store).
 */
void kona_code_stored(MemoryRegion *rom, ram_addr_t rom_base, hwaddr addr,
                      unsigned len)
{
    ram_addr_t start = rom_base + addr;
    ram_addr_t last = start + len - 1;

    if (likely(!global_dirty_tracking)) {
        if (!tcg_enabled()) {
            return;
        }
        /* A store of 1-16 bytes spans at most two pages. */
        if (kona_code_page_free(start) &&
            ((start ^ last) < TARGET_PAGE_SIZE ||
             kona_code_page_free(last))) {
            return;
        }
    }
    memory_region_flush_rom_device(rom, addr, len);
}

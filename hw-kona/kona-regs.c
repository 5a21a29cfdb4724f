/*
 * Kona-CXL control registers: the guest runtime's window into the device.
 *
 * Any value the guest writes anywhere is either applied, ignored or answered
 * with an error status: nothing here may abort QEMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "kona-state.h"
#include "kona-control.h"
#include "kona-media.h"
#include "kona-stats.h"
#include "trace.h"

/* A command's [ARG0, ARG0 + ARG1) range is valid if it lies in the media. */
static bool kona_cmd_range_ok(KonaCxlState *s)
{
    uint64_t addr = s->cmd_arg[0], len = s->cmd_arg[1];

    return len <= s->size && addr <= s->size - len;
}

/* Frames [ARG0, ARG0 + ARG1) exist. */
static bool kona_cmd_frames_ok(KonaCxlState *s)
{
    uint64_t first = s->cmd_arg[0], n = s->cmd_arg[1];

    return n <= s->cache.nframes && first <= s->cache.nframes - n;
}

/*
 * Lines that a command cleans must be seen dirty again by the next store:
 * stores that skip the device (kona-track.h) stop until it is done.
 */
static void kona_hold_stores(KonaCxlState *s, KonaLockState *ls)
{
    if (s->track->hold_stores) {
        s->track->hold_stores(s, ls);
    }
}

static void kona_release_stores(KonaCxlState *s)
{
    if (s->track->release_stores) {
        s->track->release_stores(s);
    }
}

/* Commands that may wait on memory nodes; status and result out. */
static uint32_t kona_run_io_command(KonaCxlState *s, KonaLockState *ls,
                                    uint32_t cmd, uint64_t *result)
{
    Error *err = NULL;
    int ret;

    switch (cmd) {
    case KONA_CMD_CLEAN:
    case KONA_CMD_EVICT:
        if (!kona_cmd_range_ok(s)) {
            return KONA_CMD_STATUS_INVALID_ARG;
        }
        if (cmd == KONA_CMD_EVICT && !kona_remote_present(&s->remote)) {
            return KONA_CMD_STATUS_INVALID_ARG;     /* nowhere to evict to */
        }
        if (cmd == KONA_CMD_CLEAN) {
            kona_hold_stores(s, ls);
        }
        ret = kona_clean_range(s, ls, s->cmd_arg[0], s->cmd_arg[1],
                               cmd == KONA_CMD_EVICT, result, &err);
        kona_release_stores(s);
        break;
    case KONA_CMD_EVICT_FRAME:
        if (s->cmd_arg[0] >= s->cache.nframes ||
            !kona_remote_present(&s->remote)) {
            return KONA_CMD_STATUS_INVALID_ARG;
        }
        *result = s->cache.frames[s->cmd_arg[0]].resident;
        ret = *result ? kona_evict_frame(s, ls, s->cmd_arg[0], false, &err)
                      : 0;
        break;
    case KONA_CMD_FLUSH:
        kona_hold_stores(s, ls);
        ret = kona_flush_all(s, ls, result, &err);
        kona_release_stores(s);
        break;
    default:
        return KONA_CMD_STATUS_UNKNOWN_CMD;
    }
    if (ret < 0) {
        kona_remote_failed(s, err);
        return KONA_CMD_STATUS_REMOTE_ERROR;
    }
    if (cmd != KONA_CMD_FLUSH && kona_remote_present(&s->remote)) {
        /* Answered once the memnodes have counted its write-backs. */
        kona_remote_sync_notes(&s->remote);
    }
    return KONA_CMD_STATUS_OK;
}

static void kona_run_command(KonaCxlState *s, uint32_t cmd)
{
    uint32_t status = KONA_CMD_STATUS_OK;
    uint64_t result = 0;
    KonaLockState ls;

    kona_lock(s, &ls);
    switch (cmd) {
    case KONA_CMD_NOP:
        break;
    case KONA_CMD_COUNT_DIRTY:
        if (!kona_cmd_range_ok(s)) {
            status = KONA_CMD_STATUS_INVALID_ARG;
            break;
        }
        kona_sync_dirty(s, s->cmd_arg[0], s->cmd_arg[1]);
        result = kona_cache_count_dirty(&s->cache, s->cmd_arg[0],
                                        s->cmd_arg[1]);
        break;
    case KONA_CMD_RESET_STATS:
        kona_cxl_stats_reset(s);
        break;
    case KONA_CMD_CLOSE_WINDOW:
        if (!kona_windows_close_now(s)) {
            status = KONA_CMD_STATUS_INVALID_ARG;
            break;
        }
        result = s->window.count;
        break;
    case KONA_CMD_CLEAR_ACCESSED:
        if (!kona_cmd_frames_ok(s)) {
            status = KONA_CMD_STATUS_INVALID_ARG;
            break;
        }
        for (uint64_t f = s->cmd_arg[0]; f < s->cmd_arg[0] + s->cmd_arg[1];
             f++) {
            result += s->cache.frames[f].accessed;
            s->cache.frames[f].accessed = false;
        }
        break;
    default:
        status = kona_run_io_command(s, &ls, cmd, &result);
        break;
    }
    s->cmd_status = status;
    s->cmd_result = result;
    kona_unlock(s, &ls);
    trace_kona_cmd(cmd, s->cmd_arg[0], s->cmd_arg[1], status, result);
}

static uint64_t kona_frame_state(KonaCxlState *s, uint64_t f)
{
    KonaFrame *fr;

    if (f >= s->cache.nframes || !s->cache.frames[f].resident) {
        return 0;
    }
    fr = &s->cache.frames[f];
    if (s->track->sync_dirty) {
        s->track->sync_dirty(s, f);
    }
    return KONA_FRAME_BLOCK(fr->block) |
           (uint64_t)MIN(fr->ndirty, 0xffff) << 40 | KONA_FRAME_RESIDENT |
           (fr->accessed ? KONA_FRAME_ACCESSED : 0);
}

static uint64_t kona_status(KonaCxlState *s)
{
    return KONA_STATUS_MEDIA_READY |
           (kona_remote_present(&s->remote) ? KONA_STATUS_REMOTE : 0) |
           (kona_cache_resident(&s->cache) > s->high_wm
            ? KONA_STATUS_ABOVE_HIGH : 0) |
           (s->remote_error ? KONA_STATUS_REMOTE_ERR : 0);
}

/* The 64-bit register containing @addr (8-byte aligned); lock held. */
static uint64_t kona_reg_get(KonaCxlState *s, hwaddr addr)
{
    switch (addr) {
    case KONA_REG_MAGIC:
        return KONA_REGS_MAGIC_VALUE |
               (uint64_t)KONA_REGS_VERSION_VALUE << 32;
    case KONA_REG_STATUS:
        return kona_status(s);
    case KONA_REG_MEDIA_SIZE:
        return s->size;
    case KONA_REG_LINE_SIZE:
        return KONA_DEV_LINE_SIZE | (uint64_t)s->cache.block_size << 32;
    case KONA_REG_CACHE_SIZE:
        return s->cache_size;
    case KONA_REG_NFRAMES:
        return s->cache.nframes |
               (uint64_t)kona_cache_resident(&s->cache) << 32;
    case KONA_REG_LOW_WM:
        return s->low_wm | (uint64_t)s->high_wm << 32;
    case KONA_REG_POLICY_MODE:
        return s->policy_mode | (uint64_t)s->cache.policy << 32;
    case KONA_REG_CMD:
        return (uint64_t)s->cmd_status << 32;
    case KONA_REG_CMD_ARG0:
        return s->cmd_arg[0];
    case KONA_REG_CMD_ARG1:
        return s->cmd_arg[1];
    case KONA_REG_CMD_RESULT:
        return s->cmd_result;
    case KONA_REG_DIRTY_SEL:
        return s->dirty_sel;
    case KONA_REG_DIRTY_MASK:
        if (s->dirty_sel < s->size / KONA_CACHE_PAGE_SIZE) {
            kona_sync_dirty(s, s->dirty_sel * KONA_CACHE_PAGE_SIZE,
                            KONA_CACHE_PAGE_SIZE);
        }
        return kona_cache_dirty_group(&s->cache, s->dirty_sel);
    case KONA_REG_FRAME_SEL:
        return s->frame_sel;
    case KONA_REG_WINDOW_NS:
        return s->window_ns;
    case KONA_REG_WINDOW_COUNT:
        return s->window.count;
    case KONA_REG_WINDOW_SEL:
        return s->window_sel;
    case KONA_REG_WINDOW_LINES:
    case KONA_REG_WINDOW_PAGES:
    case KONA_REG_WINDOW_HUGE: {
        KonaWindowRecord rec;

        kona_window_get(&s->window, s->window_sel, &rec);
        return addr == KONA_REG_WINDOW_LINES ? rec.lines :
               addr == KONA_REG_WINDOW_PAGES ? rec.pages : rec.huge_pages;
    }
    }
    if (addr >= KONA_REG_STATS && addr < KONA_REG_STATS_END) {
        return kona_stat_get(s, (addr - KONA_REG_STATS) / 8);
    }
    if (addr >= KONA_REG_HIST && addr < KONA_REG_HIST_END) {
        return s->hist[(addr - KONA_REG_HIST) / 8];
    }
    if (addr >= KONA_REG_FRAME_STATE) {
        uint64_t i = (addr - KONA_REG_FRAME_STATE) / 8;

        /* frame_sel is guest-chosen: add without wrapping. */
        return s->frame_sel > UINT64_MAX - i ? 0
               : kona_frame_state(s, s->frame_sel + i);
    }
    return 0;
}

static uint64_t kona_regs_read(void *opaque, hwaddr addr, unsigned size)
{
    KonaCxlState *s = opaque;
    hwaddr reg = addr & ~7ull;
    KonaLockState ls;
    uint64_t val;

    if (reg >= KONA_REG_STATS && reg < KONA_REG_STATS_END) {
        kona_stats_sync(s, (reg - KONA_REG_STATS) / 8);    /* takes the lock */
    }
    kona_lock(s, &ls);
    val = kona_reg_get(s, reg);
    kona_unlock(s, &ls);
    if (size == 4) {
        val = (uint32_t)(val >> ((addr & 4) * 8));
    }
    trace_kona_reg_read(addr, size, val);
    return val;
}

/* Merge a 32-bit write into one half of a 64-bit register. */
static uint64_t kona_merge(uint64_t old, hwaddr addr, uint64_t val,
                           unsigned size)
{
    unsigned shift = (addr & 4) * 8;

    if (size == 8) {
        return val;
    }
    return (old & ~(0xffffffffull << shift)) | (val << shift);
}

/* Watermarks take effect only as a consistent pair. */
static void kona_set_watermarks(KonaCxlState *s, uint64_t pair)
{
    uint32_t low = pair, high = pair >> 32;

    if (low <= high && high <= s->cache.nframes) {
        s->low_wm = low;
        s->high_wm = high;
    }
}

static void kona_regs_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    KonaCxlState *s = opaque;
    hwaddr reg = addr & ~7ull;
    KonaLockState ls;

    trace_kona_reg_write(addr, size, val);
    if (reg == KONA_REG_CMD) {
        /* The low half is CMD; the high half (CMD_STATUS) is read only. */
        if (!(addr & 4)) {
            kona_run_command(s, (uint32_t)val);
        }
        return;
    }
    kona_lock(s, &ls);
    switch (reg) {
    case KONA_REG_LOW_WM:
        kona_set_watermarks(s, kona_merge(s->low_wm |
                                          (uint64_t)s->high_wm << 32,
                                          addr, val, size));
        break;
    case KONA_REG_POLICY_MODE:
        if (!(addr & 4) && (uint32_t)val <= KONA_MODE_GUEST) {
            s->policy_mode = val;
        }
        break;
    case KONA_REG_CMD_ARG0:
        s->cmd_arg[0] = kona_merge(s->cmd_arg[0], addr, val, size);
        break;
    case KONA_REG_CMD_ARG1:
        s->cmd_arg[1] = kona_merge(s->cmd_arg[1], addr, val, size);
        break;
    case KONA_REG_DIRTY_SEL:
        s->dirty_sel = kona_merge(s->dirty_sel, addr, val, size);
        break;
    case KONA_REG_FRAME_SEL:
        s->frame_sel = kona_merge(s->frame_sel, addr, val, size);
        break;
    case KONA_REG_WINDOW_NS:
        /* Out of range (also a half-written value): ignored. */
        val = kona_merge(s->window_ns, addr, val, size);
        if (val == 0 ||
            (val >= KONA_WINDOW_NS_MIN && val <= KONA_WINDOW_NS_MAX)) {
            /* Windows count every store from their start. */
            kona_hold_stores(s, &ls);
            kona_windows_set_period(s, val);
            kona_release_stores(s);
        }
        break;
    case KONA_REG_WINDOW_SEL:
        s->window_sel = kona_merge(s->window_sel, addr, val, size);
        break;
    default:
        /* Read-only or reserved: ignored. */
        break;
    }
    kona_unlock(s, &ls);
}

static const MemoryRegionOps kona_regs_ops = {
    .read = kona_regs_read,
    .write = kona_regs_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
};

void kona_control_init(KonaCxlState *s)
{
    memory_region_init_io(&s->regs, OBJECT(s), &kona_regs_ops, s,
                          "kona-regs", KONA_REGS_SIZE);
    /* Commands wait on memory nodes with the BQL released (kona-media.c). */
    s->regs.disable_reentrancy_guard = true;
    pci_register_bar(PCI_DEVICE(s), KONA_REGS_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY, &s->regs);
}

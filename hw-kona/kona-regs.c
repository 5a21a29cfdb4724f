/*
 * Kona-CXL control registers: the guest runtime's window into the device.
 *
 * Any value the guest writes anywhere is either applied, ignored or answered
 * with an error status: nothing here may abort QEMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "kona-cxl.h"
#include "trace.h"

/* A command's [ARG0, ARG0 + ARG1) range is valid if it lies in the media. */
static bool kona_cmd_range_ok(KonaCxlState *s)
{
    uint64_t addr = s->cmd_arg[0], len = s->cmd_arg[1];

    return len <= s->size && addr <= s->size - len;
}

static void kona_run_command(KonaCxlState *s, uint32_t cmd)
{
    uint32_t status = KONA_CMD_STATUS_OK;
    uint64_t result = 0;

    switch (cmd) {
    case KONA_CMD_NOP:
        break;
    case KONA_CMD_CLEAR_DIRTY:
    case KONA_CMD_COUNT_DIRTY:
        if (!kona_cmd_range_ok(s)) {
            status = KONA_CMD_STATUS_INVALID_ARG;
        } else if (cmd == KONA_CMD_CLEAR_DIRTY) {
            result = kona_dirty_clear(&s->lines, s->cmd_arg[0],
                                         s->cmd_arg[1]);
        } else {
            result = kona_dirty_count(&s->lines, s->cmd_arg[0],
                                         s->cmd_arg[1]);
        }
        break;
    case KONA_CMD_RESET_STATS:
        kona_cxl_stats_reset(s);
        break;
    default:
        status = KONA_CMD_STATUS_UNKNOWN_CMD;
        break;
    }
    s->cmd_status = status;
    s->cmd_result = result;
    trace_kona_cmd(cmd, s->cmd_arg[0], s->cmd_arg[1], status, result);
}

/* The 64-bit register containing @addr (8-byte aligned). */
static uint64_t kona_reg_get(KonaCxlState *s, hwaddr addr)
{
    switch (addr) {
    case KONA_REG_MAGIC:
        return KONA_REGS_MAGIC_VALUE |
               (uint64_t)KONA_REGS_VERSION_VALUE << 32;
    case KONA_REG_STATUS:
        return KONA_STATUS_MEDIA_READY;
    case KONA_REG_MEDIA_SIZE:
        return s->size;
    case KONA_REG_LINE_SIZE:
        return KONA_DEV_LINE_SIZE | (uint64_t)KONA_BLOCK_SIZE << 32;
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
        return kona_dirty_group(&s->lines, s->dirty_sel);
    }
    if (addr >= KONA_REG_STATS && addr < KONA_REG_STATS_END) {
        unsigned i = (addr - KONA_REG_STATS) / 8;

        return i == KONA_DEV_STAT_DIRTY_LINES ? s->lines.dirty : s->stats[i];
    }
    return 0;
}

static uint64_t kona_regs_read(void *opaque, hwaddr addr, unsigned size)
{
    KonaCxlState *s = opaque;
    uint64_t val = kona_reg_get(s, addr & ~7ull);

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

static void kona_regs_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    KonaCxlState *s = opaque;
    hwaddr reg = addr & ~7ull;

    trace_kona_reg_write(addr, size, val);
    switch (reg) {
    case KONA_REG_CMD:
        /* The low half is CMD; the high half (CMD_STATUS) is read only. */
        if (!(addr & 4)) {
            kona_run_command(s, (uint32_t)val);
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
    default:
        /* Read-only or reserved: ignored. */
        break;
    }
}

const MemoryRegionOps kona_regs_ops = {
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

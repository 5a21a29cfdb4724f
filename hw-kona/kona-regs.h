/*
 * Kona-CXL control registers (PCI BAR 5 of -device kona-cxl).
 *
 * Shared by the device model and the in-guest runtime, so it uses only
 * <stdint.h> types.  All registers are little endian and are accessed with
 * naturally aligned 32-bit or 64-bit loads and stores; a 32-bit access to a
 * 64-bit register reads or writes that half.  Reserved offsets read as zero
 * and ignore writes.
 *
 * The layout is versioned: KONA_REG_VERSION changes whenever a register moves
 * or changes meaning; new registers and statistics may be added at the end of
 * their range without a version change.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_REGS_H
#define KONA_REGS_H

#include <stdint.h>

#define KONA_REGS_BAR           5
#define KONA_REGS_SIZE          0x1000
#define KONA_REGS_MAGIC_VALUE   0x414e4f4bu  /* "KONA" */
#define KONA_REGS_VERSION_VALUE 1u
#define KONA_DEV_LINE_SIZE      64u

/* Identity and geometry (read only). */
#define KONA_REG_MAGIC          0x000   /* u32 KONA_REGS_MAGIC_VALUE */
#define KONA_REG_VERSION        0x004   /* u32 KONA_REGS_VERSION_VALUE */
#define KONA_REG_STATUS         0x008   /* u32 KONA_STATUS_* */
#define KONA_REG_MEDIA_SIZE     0x010   /* u64 bytes the guest sees */
#define KONA_REG_LINE_SIZE      0x018   /* u32 dirty-tracking unit, 64 */
#define KONA_REG_BLOCK_SIZE     0x01c   /* u32 fetch unit in bytes */

#define KONA_STATUS_MEDIA_READY (1u << 0)

/*
 * Commands: write ARG0/ARG1, then the command number to CMD.  The command
 * runs synchronously; CMD_STATUS and CMD_RESULT then hold its outcome.
 */
#define KONA_REG_CMD            0x040   /* u32 write: KONA_CMD_* */
#define KONA_REG_CMD_STATUS     0x044   /* u32 KONA_CMD_STATUS_* */
#define KONA_REG_CMD_ARG0       0x048   /* u64 */
#define KONA_REG_CMD_ARG1       0x050   /* u64 */
#define KONA_REG_CMD_RESULT     0x058   /* u64 */

enum KonaCmd {
    KONA_CMD_NOP = 0,
    /* Mark [ARG0, ARG0 + ARG1) clean; RESULT = lines that were dirty. */
    KONA_CMD_CLEAR_DIRTY = 1,
    /* Zero every statistics counter except the dirty-line gauge. */
    KONA_CMD_RESET_STATS = 2,
    /* RESULT = dirty lines in [ARG0, ARG0 + ARG1). */
    KONA_CMD_COUNT_DIRTY = 3,
};

enum KonaCmdStatus {
    KONA_CMD_STATUS_OK = 0,
    KONA_CMD_STATUS_INVALID_ARG = 1,
    KONA_CMD_STATUS_UNKNOWN_CMD = 2,
};

/*
 * Dirty-line window: write the index of a group of 64 lines (group g covers
 * media bytes [g * 4096, g * 4096 + 4096)) to DIRTY_SEL, read its dirty mask
 * from DIRTY_MASK (bit i = line i of the group).
 */
#define KONA_REG_DIRTY_SEL      0x080   /* u64 */
#define KONA_REG_DIRTY_MASK     0x088   /* u64, read only */

/* Statistics: u64 counters, KONA_REG_STATS + 8 * KonaStat. */
#define KONA_REG_STATS          0x100

enum KonaDevStat {
    KONA_DEV_STAT_READS = 0,        /* guest read accesses */
    KONA_DEV_STAT_WRITES,           /* guest write accesses */
    KONA_DEV_STAT_READ_BYTES,
    KONA_DEV_STAT_WRITE_BYTES,
    KONA_DEV_STAT_DIRTY_LINES,      /* gauge: lines dirty now */
    KONA_DEV_STAT_LINES_DIRTIED,    /* clean -> dirty transitions */
    KONA_DEV_STAT__COUNT
};

#define KONA_REG_STATS_END      (KONA_REG_STATS + 8 * KONA_DEV_STAT__COUNT)

#endif /* KONA_REGS_H */

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

/* Identity and geometry (read only unless marked rw). */
#define KONA_REG_MAGIC          0x000   /* u32 KONA_REGS_MAGIC_VALUE */
#define KONA_REG_VERSION        0x004   /* u32 KONA_REGS_VERSION_VALUE */
#define KONA_REG_STATUS         0x008   /* u32 KONA_STATUS_* */
#define KONA_REG_MEDIA_SIZE     0x010   /* u64 bytes the guest sees */
#define KONA_REG_LINE_SIZE      0x018   /* u32 dirty-tracking unit, 64 */
#define KONA_REG_BLOCK_SIZE     0x01c   /* u32 fetch unit in bytes */
#define KONA_REG_CACHE_SIZE     0x020   /* u64 local cache in bytes */
#define KONA_REG_NFRAMES        0x028   /* u32 cache frames (blocks) */
#define KONA_REG_RESIDENT       0x02c   /* u32 frames holding a block now */
/*
 * Watermarks in frames: set both with one 64-bit store at LOW_WM; a pair
 * with LOW_WM > HIGH_WM or HIGH_WM > NFRAMES is ignored.
 */
#define KONA_REG_LOW_WM         0x030   /* u32 rw */
#define KONA_REG_HIGH_WM        0x034   /* u32 rw */
#define KONA_REG_POLICY_MODE    0x038   /* u32 rw, KONA_MODE_* */
#define KONA_REG_POLICY         0x03c   /* u32 built-in policy, KONA_POLICY_* */

#define KONA_STATUS_MEDIA_READY (1u << 0)
#define KONA_STATUS_REMOTE      (1u << 1)   /* backed by memory nodes */
#define KONA_STATUS_ABOVE_HIGH  (1u << 2)   /* RESIDENT > HIGH_WM */
#define KONA_STATUS_REMOTE_ERR  (1u << 3)   /* a remote access failed */

/*
 * Who decides evictions.  DEVICE: the built-in policy evicts down to LOW_WM
 * whenever RESIDENT passes HIGH_WM.  GUEST: a guest runtime evicts with the
 * commands below; the built-in policy only evicts when the cache is full
 * and a miss needs a frame (counted as forced-evictions), so the guest
 * never stalls forever.
 */
#define KONA_MODE_DEVICE        0u
#define KONA_MODE_GUEST         1u

/* Built-in replacement policies (property 'policy'). */
#define KONA_POLICY_ID_CLOCK    0u
#define KONA_POLICY_ID_FIFO     1u
#define KONA_POLICY_ID_RANDOM   2u

/*
 * Commands: write ARG0/ARG1, then the command number to CMD.  The command
 * runs synchronously (it may wait on memory nodes); CMD_STATUS and
 * CMD_RESULT then hold its outcome.
 */
#define KONA_REG_CMD            0x040   /* u32 write: KONA_CMD_* */
#define KONA_REG_CMD_STATUS     0x044   /* u32 KONA_CMD_STATUS_* */
#define KONA_REG_CMD_ARG0       0x048   /* u64 */
#define KONA_REG_CMD_ARG1       0x050   /* u64 */
#define KONA_REG_CMD_RESULT     0x058   /* u64 */

enum KonaCmd {
    KONA_CMD_NOP = 0,
    /*
     * Write back the dirty lines of [ARG0, ARG0 + ARG1), keep the blocks
     * resident; RESULT = lines written back.
     */
    KONA_CMD_CLEAN = 1,
    /* Zero the statistics counters and the histogram (not the gauges). */
    KONA_CMD_RESET_STATS = 2,
    /* RESULT = dirty lines in [ARG0, ARG0 + ARG1). */
    KONA_CMD_COUNT_DIRTY = 3,
    /*
     * Write back and drop the resident blocks overlapping
     * [ARG0, ARG0 + ARG1); RESULT = blocks evicted.
     */
    KONA_CMD_EVICT = 4,
    /*
     * Clear the access bits of frames [ARG0, ARG0 + ARG1);
     * RESULT = frames whose bit was set.
     */
    KONA_CMD_CLEAR_ACCESSED = 5,
    /* Evict the block in frame ARG0; RESULT = 1 if one was resident. */
    KONA_CMD_EVICT_FRAME = 6,
    /*
     * Write back every dirty line and FLUSH the memory nodes;
     * RESULT = lines written back.
     */
    KONA_CMD_FLUSH = 7,
    /*
     * End the current per-window tracking window now (a shorter one) and
     * start the next, so that the tail of a run is counted too; RESULT =
     * windows closed.  INVALID_ARG while tracking is off.
     */
    KONA_CMD_CLOSE_WINDOW = 8,
};

enum KonaCmdStatus {
    KONA_CMD_STATUS_OK = 0,
    KONA_CMD_STATUS_INVALID_ARG = 1,
    KONA_CMD_STATUS_UNKNOWN_CMD = 2,
    KONA_CMD_STATUS_REMOTE_ERROR = 3,   /* a memory node failed; retry */
};

/*
 * Dirty-line window: write the index of a group of 64 lines (group g covers
 * media bytes [g * 4096, g * 4096 + 4096)) to DIRTY_SEL, read its dirty mask
 * from DIRTY_MASK (bit i = line i of the group).
 */
#define KONA_REG_DIRTY_SEL      0x080   /* u64 */
#define KONA_REG_DIRTY_MASK     0x088   /* u64, read only */

/*
 * Frame window: FRAME_STATE[i] describes frame FRAME_SEL + i (i < 256):
 * bits 0..39 the block it holds (block b = media [b * BLOCK_SIZE, ...)),
 * bits 40..55 its dirty lines (saturating at 0xffff), bit 56 resident,
 * bit 57 accessed.  Zero for a free frame or past NFRAMES.
 */
#define KONA_REG_FRAME_SEL      0x090   /* u64 */
#define KONA_REG_FRAME_STATE    0x800   /* u64 x 256 */
#define KONA_FRAME_WINDOW       256
#define KONA_FRAME_BLOCK(v)     ((v) & ((1ull << 40) - 1))
#define KONA_FRAME_DIRTY(v)     (((v) >> 40) & 0xffff)
#define KONA_FRAME_RESIDENT     (1ull << 56)
#define KONA_FRAME_ACCESSED     (1ull << 57)

/*
 * Per-window write tracking, as the Kona paper measured amplification: in
 * each window of WINDOW_NS nanoseconds of guest time the device counts the
 * distinct 64 B lines, 4 KiB pages and 2 MiB pages written.  Writing
 * WINDOW_NS (0: off, else 1 ms .. 1 h; other values are ignored) or
 * RESET_STATS drops the recorded windows and starts a new one.  Write the
 * index of a window (0 = the first since then) to WINDOW_SEL and read its
 * counts; WINDOW_COUNT windows have closed, the last KONA_WINDOWS_KEPT of
 * them are kept (older ones read as zero).
 */
#define KONA_REG_WINDOW_NS      0x0a0   /* u64 rw */
#define KONA_REG_WINDOW_COUNT   0x0a8   /* u64 */
#define KONA_REG_WINDOW_SEL     0x0b0   /* u64 rw */
#define KONA_REG_WINDOW_LINES   0x0b8   /* u64 */
#define KONA_REG_WINDOW_PAGES   0x0c0   /* u64 */
#define KONA_REG_WINDOW_HUGE    0x0c8   /* u64 */
#define KONA_WINDOWS_KEPT       4096
#define KONA_WINDOW_NS_MIN      UINT64_C(1000000)
#define KONA_WINDOW_NS_MAX      UINT64_C(3600000000000)

/* Statistics: u64 counters, KONA_REG_STATS + 8 * KonaDevStat. */
#define KONA_REG_STATS          0x100

enum KonaDevStat {
    KONA_DEV_STAT_READS = 0,        /* guest read accesses */
    KONA_DEV_STAT_WRITES,           /* guest write accesses */
    KONA_DEV_STAT_READ_BYTES,
    KONA_DEV_STAT_WRITE_BYTES,
    KONA_DEV_STAT_DIRTY_LINES,      /* gauge: lines dirty now */
    KONA_DEV_STAT_LINES_DIRTIED,    /* clean -> dirty transitions */
    KONA_DEV_STAT_HITS,             /* accesses to resident blocks */
    KONA_DEV_STAT_MISSES,           /* accesses that had to fetch */
    KONA_DEV_STAT_FETCHES,          /* blocks fetched */
    KONA_DEV_STAT_FETCH_BYTES,
    KONA_DEV_STAT_EVICTIONS,        /* blocks dropped */
    KONA_DEV_STAT_FORCED_EVICTIONS, /* ... by the built-in policy */
    KONA_DEV_STAT_GUEST_EVICTIONS,  /* ... by command */
    KONA_DEV_STAT_WRITEBACKS,       /* blocks written back (had dirt) */
    KONA_DEV_STAT_WRITEBACK_LINES,  /* dirty lines written back */
    KONA_DEV_STAT_WRITEBACK_BYTES,  /* = 64 * WRITEBACK_LINES */
    KONA_DEV_STAT_PAGE_WB_BYTES,    /* a 4 KiB-page runtime's write-back */
    KONA_DEV_STAT_HUGE_WB_BYTES,    /* a 2 MiB-page runtime's write-back */
    KONA_DEV_STAT_STALL_NS,         /* vCPU time waiting on fetches and
                                     * write-backs: real + modelled */
    KONA_DEV_STAT_RESIDENT_BLOCKS,  /* gauge */
    KONA_DEV_STAT_DIRTY_BLOCKS,     /* gauge: resident blocks with dirt */
    KONA_DEV_STAT_REMOTE_ERRORS,    /* failed fetches and write-backs */
    KONA_DEV_STAT_FAILOVERS,        /* copies declared dead (replica) */
    KONA_DEV_STAT_RESYNCS,          /* copies brought back */
    KONA_DEV_STAT_RESYNC_BYTES,
    KONA_DEV_STAT_STALL_REAL_NS,    /* of STALL_NS: real memnode I/O */
    KONA_DEV_STAT_STALL_MODEL_NS,   /* of STALL_NS: waiting for the model */
    KONA_DEV_STAT_FAILED_ACCESSES,  /* guest accesses answered with an
                                     * error (no copy could be fetched) */
    KONA_DEV_STAT_RAM_PAGES,        /* pages given RAM writes, fully dirty
                                     * (tracking=stores, promote) */
    KONA_DEV_STAT_LATE_STORES,      /* stores that raced a page's take-back:
                                     * the page counted as written whole */
    KONA_DEV_STAT__COUNT
};

#define KONA_REG_STATS_END      (KONA_REG_STATS + 8 * KONA_DEV_STAT__COUNT)

/*
 * Names of the statistics, as QMP and konactl print them:
 * static const char *const names[] = KONA_DEV_STAT_NAMES;
 */
#define KONA_DEV_STAT_NAMES { \
    [KONA_DEV_STAT_READS] = "reads", \
    [KONA_DEV_STAT_WRITES] = "writes", \
    [KONA_DEV_STAT_READ_BYTES] = "read-bytes", \
    [KONA_DEV_STAT_WRITE_BYTES] = "write-bytes", \
    [KONA_DEV_STAT_DIRTY_LINES] = "dirty-lines", \
    [KONA_DEV_STAT_LINES_DIRTIED] = "lines-dirtied", \
    [KONA_DEV_STAT_HITS] = "hits", \
    [KONA_DEV_STAT_MISSES] = "misses", \
    [KONA_DEV_STAT_FETCHES] = "fetches", \
    [KONA_DEV_STAT_FETCH_BYTES] = "fetch-bytes", \
    [KONA_DEV_STAT_EVICTIONS] = "evictions", \
    [KONA_DEV_STAT_FORCED_EVICTIONS] = "forced-evictions", \
    [KONA_DEV_STAT_GUEST_EVICTIONS] = "guest-evictions", \
    [KONA_DEV_STAT_WRITEBACKS] = "writebacks", \
    [KONA_DEV_STAT_WRITEBACK_LINES] = "writeback-lines", \
    [KONA_DEV_STAT_WRITEBACK_BYTES] = "writeback-bytes", \
    [KONA_DEV_STAT_PAGE_WB_BYTES] = "page-writeback-bytes", \
    [KONA_DEV_STAT_HUGE_WB_BYTES] = "hugepage-writeback-bytes", \
    [KONA_DEV_STAT_STALL_NS] = "stall-ns", \
    [KONA_DEV_STAT_RESIDENT_BLOCKS] = "resident-blocks", \
    [KONA_DEV_STAT_DIRTY_BLOCKS] = "dirty-blocks", \
    [KONA_DEV_STAT_REMOTE_ERRORS] = "remote-errors", \
    [KONA_DEV_STAT_FAILOVERS] = "failovers", \
    [KONA_DEV_STAT_RESYNCS] = "resyncs", \
    [KONA_DEV_STAT_RESYNC_BYTES] = "resync-bytes", \
    [KONA_DEV_STAT_STALL_REAL_NS] = "stall-real-ns", \
    [KONA_DEV_STAT_STALL_MODEL_NS] = "stall-model-ns", \
    [KONA_DEV_STAT_FAILED_ACCESSES] = "failed-accesses", \
    [KONA_DEV_STAT_RAM_PAGES] = "ram-write-pages", \
    [KONA_DEV_STAT_LATE_STORES] = "late-stores", \
}

/*
 * Histogram of dirty lines per 4 KiB page at write-back: HIST + 8 * n
 * counts the pages written back with n dirty lines (1 <= n <= 64).
 */
#define KONA_REG_HIST           0x400
#define KONA_HIST_BUCKETS       65
#define KONA_REG_HIST_END       (KONA_REG_HIST + 8 * KONA_HIST_BUCKETS)

#endif /* KONA_REGS_H */

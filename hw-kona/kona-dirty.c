/*
 * Kona-CXL: the 64-byte dirty-line log.
 *
 * Only standard and GLib headers here: this file is also built outside
 * QEMU's tree for the unit tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>

#include "kona-dirty.h"

void kona_dirty_init(KonaDirtyLog *log, uint64_t media_size)
{
    log->nlines = media_size >> KONA_LINE_SHIFT;
    log->ngroups = (log->nlines + KONA_DIRTY_GROUP_LINES - 1) /
                   KONA_DIRTY_GROUP_LINES;
    log->groups = g_new0(uint64_t, log->ngroups);
    log->dirty = 0;
}

void kona_dirty_destroy(KonaDirtyLog *log)
{
    g_free(log->groups);
    log->groups = NULL;
    log->nlines = log->ngroups = log->dirty = 0;
}

/* Mask of lines [first, last] within one group (both in 0..63). */
static inline uint64_t group_mask(unsigned first, unsigned last)
{
    uint64_t upto_last = last == 63 ? ~0ull : (2ull << last) - 1;
    return upto_last & ~((1ull << first) - 1);
}

/*
 * Visit each group touched by the line range of [addr, addr + len) with the
 * mask of the lines concerned; fn returns the count it contributes.
 */
typedef uint64_t (*GroupFn)(KonaDirtyLog *log, uint64_t g, uint64_t mask);

static uint64_t for_each_group(KonaDirtyLog *log, uint64_t addr, uint64_t len,
                               GroupFn fn)
{
    uint64_t first, last, g, total = 0;

    if (len == 0) {
        return 0;
    }
    first = addr >> KONA_LINE_SHIFT;
    last = (addr + len - 1) >> KONA_LINE_SHIFT;
    g_assert(last < log->nlines);

    for (g = first / KONA_DIRTY_GROUP_LINES; g <= last / KONA_DIRTY_GROUP_LINES;
         g++) {
        uint64_t lo = MAX(first, g * KONA_DIRTY_GROUP_LINES);
        uint64_t hi = MIN(last, g * KONA_DIRTY_GROUP_LINES + 63);

        total += fn(log, g, group_mask(lo % 64, hi % 64));
    }
    return total;
}

static uint64_t mark_group(KonaDirtyLog *log, uint64_t g, uint64_t mask)
{
    uint64_t added = mask & ~log->groups[g];

    log->groups[g] |= mask;
    log->dirty += __builtin_popcountll(added);
    return __builtin_popcountll(added);
}

static uint64_t clear_group(KonaDirtyLog *log, uint64_t g, uint64_t mask)
{
    uint64_t removed = mask & log->groups[g];

    log->groups[g] &= ~mask;
    log->dirty -= __builtin_popcountll(removed);
    return __builtin_popcountll(removed);
}

static uint64_t count_group(KonaDirtyLog *log, uint64_t g, uint64_t mask)
{
    return __builtin_popcountll(mask & log->groups[g]);
}

uint64_t kona_dirty_mark(KonaDirtyLog *log, uint64_t addr, uint64_t len)
{
    /* Fast path: the access (<= 8 bytes) lies within one line. */
    if (len && (addr >> KONA_LINE_SHIFT) ==
               ((addr + len - 1) >> KONA_LINE_SHIFT)) {
        uint64_t line = addr >> KONA_LINE_SHIFT;
        uint64_t bit = 1ull << (line % 64);
        uint64_t *word = &log->groups[line / 64];

        g_assert(line < log->nlines);
        if (*word & bit) {
            return 0;
        }
        *word |= bit;
        log->dirty++;
        return 1;
    }
    return for_each_group(log, addr, len, mark_group);
}

uint64_t kona_dirty_clear(KonaDirtyLog *log, uint64_t addr, uint64_t len)
{
    return for_each_group(log, addr, len, clear_group);
}

uint64_t kona_dirty_count(const KonaDirtyLog *log, uint64_t addr,
                             uint64_t len)
{
    /* count_group does not modify the log. */
    return for_each_group((KonaDirtyLog *)log, addr, len, count_group);
}

bool kona_dirty_test(const KonaDirtyLog *log, uint64_t line)
{
    return line < log->nlines && (log->groups[line / 64] >> (line % 64)) & 1;
}

uint64_t kona_dirty_group(const KonaDirtyLog *log, uint64_t group)
{
    return group < log->ngroups ? log->groups[group] : 0;
}

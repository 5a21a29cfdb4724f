/*
 * Kona-CXL: the 64-byte dirty-line log.
 *
 * One bit per 64 B line of device media, set when the guest writes any byte
 * of the line and cleared when the line has been written back.  Pure logic
 * with no QEMU dependency, so it is unit-tested outside QEMU's tree.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_DIRTY_H
#define KONA_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#define KONA_LINE_SHIFT      6
#define KONA_DIRTY_GROUP_LINES 64     /* one uint64_t of the bitmap: 4 KiB */

typedef struct KonaDirtyLog {
    uint64_t nlines;
    uint64_t ngroups;
    uint64_t *groups;       /* bit i of groups[g] = line g * 64 + i */
    uint64_t dirty;         /* number of set bits */
} KonaDirtyLog;

void kona_dirty_init(KonaDirtyLog *log, uint64_t media_size);
void kona_dirty_destroy(KonaDirtyLog *log);

/*
 * Mark every line touched by [addr, addr + len) dirty; returns how many of
 * them were clean before.  The range must lie inside the media.
 */
uint64_t kona_dirty_mark(KonaDirtyLog *log, uint64_t addr, uint64_t len);

/* Clear [addr, addr + len) (whole lines it touches); returns lines cleared. */
uint64_t kona_dirty_clear(KonaDirtyLog *log, uint64_t addr, uint64_t len);

/* Dirty lines among those touched by [addr, addr + len). */
uint64_t kona_dirty_count(const KonaDirtyLog *log, uint64_t addr,
                             uint64_t len);

bool kona_dirty_test(const KonaDirtyLog *log, uint64_t line);

/* Dirty mask of group g (lines g * 64 .. g * 64 + 63); 0 past the end. */
uint64_t kona_dirty_group(const KonaDirtyLog *log, uint64_t group);

#endif /* KONA_DIRTY_H */

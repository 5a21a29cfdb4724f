/*
 * Kona-CXL: write amplification per window of guest time.
 *
 * The Kona paper measured amplification with a tracker that, in each
 * 1-second window, counted the distinct 64 B cache lines and the distinct
 * 4 KiB pages written.  A page-granular runtime must copy a whole page for
 * any line written to it in a window, so pages * 4096 / (lines * 64) is
 * what page-granular dirty tracking costs over line-granular tracking at
 * that tracking interval, independent of when the cache evicts.
 *
 * Cost: up to 16 bytes per 4 KiB page of media (allocated only while
 * tracking is on; touched only where written) and O(1) per write; closing
 * a window is O(pages written in it).
 *
 * Pure bookkeeping, no QEMU dependency: unit-tested outside QEMU's tree.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_WINDOW_H
#define KONA_WINDOW_H

#include <stdbool.h>
#include <stdint.h>
#include "kona-regs.h"

/* Windows kept for reading back; older ones are dropped. */
#define KONA_WINDOW_RING        KONA_WINDOWS_KEPT

typedef struct KonaWindowRecord {
    uint64_t lines;             /* distinct 64 B lines written */
    uint64_t pages;             /* distinct 4 KiB pages written */
    uint64_t huge_pages;        /* distinct 2 MiB pages written */
} KonaWindowRecord;

typedef struct KonaWindow {
    uint64_t media_size;
    /* NULL while tracking is off */
    uint64_t *page_lines;       /* per page: lines written this window */
    uint8_t *huge_seen;         /* per 2 MiB page: written this window */
    uint64_t *touched;          /* pages with page_lines != 0 */
    uint64_t *touched_huge;     /* 2 MiB pages with huge_seen set */
    KonaWindowRecord cur;
    KonaWindowRecord ring[KONA_WINDOW_RING];
    uint64_t count;             /* windows closed since the last reset */
} KonaWindow;

void kona_window_init(KonaWindow *w, uint64_t media_size);
/* Start tracking (false if the bitmaps cannot be allocated). */
bool kona_window_enable(KonaWindow *w);
void kona_window_disable(KonaWindow *w);
static inline bool kona_window_enabled(const KonaWindow *w)
{
    return w->page_lines != NULL;
}
/* A write of @len bytes at media offset @addr; no-op while disabled. */
void kona_window_note_write(KonaWindow *w, uint64_t addr, uint64_t len);
/* End the current window: record it and start an empty one. */
void kona_window_close(KonaWindow *w);
/* Drop the recorded windows and the current window's writes. */
void kona_window_reset(KonaWindow *w);
/* Window @index (0 = first since the reset), if still kept. */
bool kona_window_get(const KonaWindow *w, uint64_t index,
                     KonaWindowRecord *rec);

#endif /* KONA_WINDOW_H */

/*
 * Kona-CXL: the statistics (kona-stats.c) and the per-window write
 * tracker (kona-window-stats.c) as QOM properties, and what the control
 * registers need of them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_STATS_H
#define KONA_STATS_H

#include "kona-state.h"

extern const char *const kona_stat_names[KONA_DEV_STAT__COUNT];
/* Lock held, or a racy but harmless read of naturally aligned words. */
uint64_t kona_stat_get(KonaCxlState *s, unsigned stat);
/*
 * Modes that find dirty lines by comparison: bring the dirty gauges up to
 * date before @stat (KONA_DEV_STAT__COUNT: all) is read.  Takes the device
 * lock itself, a chunk of the cache at a time: call it without the lock.
 */
void kona_stats_sync(KonaCxlState *s, unsigned stat);
void kona_cxl_stats_add_properties(ObjectClass *oc);
void kona_cxl_stats_reset(KonaCxlState *s);

/* Per-window tracking: set the window length (0: off); lock held. */
bool kona_windows_set_period(KonaCxlState *s, uint64_t ns);
void kona_windows_restart(KonaCxlState *s);
/* Close the current window now (false if tracking is off); lock held. */
bool kona_windows_close_now(KonaCxlState *s);
void kona_windows_arm(KonaCxlState *s);
/* No window closes any more (unplug; the tracker stays until destroy). */
void kona_windows_stop(KonaCxlState *s);
bool kona_windows_init(KonaCxlState *s, Error **errp);
void kona_windows_destroy(KonaCxlState *s);
void kona_cxl_windows_add_properties(ObjectClass *oc);

#endif /* KONA_STATS_H */

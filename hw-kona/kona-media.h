/*
 * Kona-CXL: the media access path, the same for every tracking mode: the
 * device lock, hits and misses, fetches, write-backs and evictions.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_MEDIA_H
#define KONA_MEDIA_H

#include "kona-state.h"

/* Guest accesses of the media that reach the device (1..8 bytes). */
extern const MemoryRegionOps kona_media_ops;

void kona_lock(KonaCxlState *s, KonaLockState *ls);
/* Held around both halves of a 16-byte guest access (lock: true/false). */
void kona_media_pair(void *opaque, bool lock);
void kona_unlock(KonaCxlState *s, KonaLockState *ls);

/*
 * Make @block resident (room, fetch, install); its frame, or KONA_NO_FRAME
 * if the memory node failed.  Lock held.
 */
uint32_t kona_fault_in(KonaCxlState *s, KonaLockState *ls, uint64_t block);

/*
 * One guest access of [addr, addr + len) (any length, any alignment):
 * hits, misses, the store's effect on dirty lines.  Lock held.
 */
MemTxResult kona_access(KonaCxlState *s, KonaLockState *ls, uint64_t addr,
                        uint8_t *buf, unsigned len, bool write);

/* Write back (and with @evict, drop) resident blocks in a media range. */
int kona_clean_range(KonaCxlState *s, KonaLockState *ls, uint64_t addr,
                     uint64_t len, bool evict, uint64_t *count, Error **errp);
int kona_evict_frame(KonaCxlState *s, KonaLockState *ls, uint32_t frame,
                     bool forced, Error **errp);
/* Sanitize: drop the cache unwritten, zero the memory nodes. */
int kona_sanitize(KonaCxlState *s, Error **errp);
/* Write back every dirty line and flush the memory nodes. */
int kona_flush_all(KonaCxlState *s, KonaLockState *ls, uint64_t *lines,
                   Error **errp);

/*
 * Bring the dirty bitmaps of resident blocks in [addr, addr + len) up to
 * date (modes that find dirty lines by comparison).  Lock held.
 */
void kona_sync_dirty(KonaCxlState *s, uint64_t addr, uint64_t len);

/* The memory nodes' connections checked and re-made (kona-remote.h). */
void kona_keepalive(KonaCxlState *s);

/* Count, flag and (rate-limited) report a failed remote access. */
void kona_remote_failed(KonaCxlState *s, Error *err);

/* Anonymous memory, populated only when touched; errors name @prop. */
void *kona_map_anon(uint64_t size, const char *prop, Error **errp);

#endif /* KONA_MEDIA_H */

/*
 * Kona-CXL: tracking modes, one interface.
 *
 * How the guest reaches resident data, and so how the device learns what
 * it wrote, is the tracking mode, chosen at realize by property
 * 'tracking'.  The access path (kona-media.c) is the same for every mode
 * and asks the mode only through this table:
 *
 *   exact   (kona-exact.c)   every load and store runs through the device
 *   fast    (kona-fast.c)    resident data is guest RAM; misses by
 *                            userfaultfd; dirty lines found by comparison
 *                            with a clean copy at write-back
 *   stores  (kona-stores.c)  resident data is read-only guest RAM: loads
 *                            and code at RAM speed, every store traps to
 *                            the device but, under TCG, those to pages
 *                            whose lines are all dirty (kona-promote.c);
 *                            misses as in fast
 *
 * A new mode is one new file with one of these tables.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_TRACK_H
#define KONA_TRACK_H

typedef struct KonaCxlState KonaCxlState;
typedef struct KonaLockState KonaLockState;

typedef struct KonaTrackOps {
    const char *name;
    /* Every guest store reaches the device: per-window tracking works. */
    bool sees_stores;
    /* Every guest load reaches the device: hits and access bits count. */
    bool sees_loads;
    /* Works under KVM (code on the node must run from a memslot). */
    bool kvm_ok;

    /* Property checks, before anything is allocated; errors name one. */
    bool (*check)(KonaCxlState *s, Error **errp);
    /* After the cache exists; may start threads. */
    bool (*init)(KonaCxlState *s, Error **errp);
    /* Unrealize: no guest access can arrive through the mode any more. */
    void (*stop)(KonaCxlState *s);
    /* Instance finalize: release the rest. */
    void (*destroy)(KonaCxlState *s);
    /* What direct decode maps over the CXL window. */
    MemoryRegion *(*guest_region)(KonaCxlState *s);

    /* Where @frame's block's data is while it is resident. */
    uint8_t *(*data)(KonaCxlState *s, uint32_t frame);
    /* Where a fetch of @frame's block from a socket may land. */
    uint8_t *(*fetch_buffer)(KonaCxlState *s, uint32_t frame);
    /*
     * The fetched block (@src, block_size bytes) becomes @frame's data and
     * visible to the guest.  Device lock held.
     */
    int (*install)(KonaCxlState *s, uint32_t frame, const uint8_t *src,
                   Error **errp);
    /*
     * The device has just performed a guest store of [off, off + len) in
     * @frame (at media address @addr).  Device lock held.
     */
    void (*stored)(KonaCxlState *s, uint32_t frame, uint64_t addr,
                   uint32_t off, unsigned len);
    /*
     * Modes that find dirty lines by comparison: bring @frame's dirty
     * bitmap up to date.  NULL where every store is seen.
     */
    void (*sync_dirty)(KonaCxlState *s, uint32_t frame);
    /*
     * Around a write-back of @frame: begin makes its data stable (and its
     * dirty bitmap exact); end with @written renews what "clean" means,
     * and with @dropping the frame is dropped next.  May be NULL.
     */
    void (*writeback_begin)(KonaCxlState *s, uint32_t frame, bool evicting);
    void (*writeback_end)(KonaCxlState *s, uint32_t frame, bool written,
                          bool dropping);
    /* @frame's block is no longer resident: its next touch misses. */
    void (*drop)(KonaCxlState *s, uint32_t frame);
    /*
     * The host's MMU caught a guest store to @frame's block (resident
     * again) at media address @addr: a write fault the mode did not
     * cause itself.  Device lock held.  May be NULL.
     */
    void (*late_store)(KonaCxlState *s, uint32_t frame, uint64_t addr);
    /*
     * A guest command needs every store to reach the device from now on
     * (a write-back that keeps the block, windows starting): the mode
     * takes back whatever lets stores skip it, until release_stores.
     * Device lock held; may instead unlock and run the guest's access
     * again once the mode is ready, never returning then.  May be NULL.
     */
    void (*hold_stores)(KonaCxlState *s, KonaLockState *ls);
    void (*release_stores)(KonaCxlState *s);
} KonaTrackOps;

/*
 * Modes that see every store: dirty its lines, count it in the window
 * tracker (kona-exact.c).
 */
void kona_track_note_store(KonaCxlState *s, uint32_t frame, uint64_t addr,
                           uint32_t off, unsigned len);

extern const KonaTrackOps kona_track_exact;
extern const KonaTrackOps kona_track_fast;
extern const KonaTrackOps kona_track_stores;

#endif /* KONA_TRACK_H */

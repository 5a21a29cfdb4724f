/*
 * Kona-CXL: in tracking=stores, fully dirty pages take stores at RAM speed
 * (TCG).
 *
 * Once all 64 lines of a 4 KiB page are dirty, its stores tell the device
 * nothing until the page is written back: as the paper's hardware logs a
 * store to a modified line for free, the page is then filled into TCG's
 * TLBs as RAM (qemu-patches/0013), and its stores skip the device.  The
 * counts stay those of stores mode: every line of such a page is dirty
 * already, and is written back as dirty.
 *
 * The hard part is taking a page back: before its lines may count as clean,
 * no vCPU may store to it without the device, and a store that passed its
 * TLB check just before the take-back (its vCPU preempted between the check
 * and the store) must not land unseen.  So:
 *
 *  - eviction (write-back, then drop; any thread): the page's writes are
 *    taken out of every vCPU's TLB, then the block is write-protected
 *    (userfaultfd) until it is dropped.  A late store waits in the host's
 *    fault; kona-uffd.c hands it here (kona_promote_late_store) once the
 *    block is back, and its page counts as written whole: never a lost
 *    store, at worst 63 lines too many, counted in 'late-stores'.
 *  - a write-back that keeps the block (CLEAN, FLUSH) and windows starting,
 *    both guest commands: every page is taken back in an exclusive section
 *    (no vCPU runs, so no store is in flight) and the command's access is
 *    run again; until the command is done, no page is given RAM writes.
 *    Elsewhere (QEMU's own flush at exit) such pages are written back and
 *    stay dirty.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_PROMOTE_H
#define KONA_PROMOTE_H

typedef struct KonaCxlState KonaCxlState;
typedef struct KonaLockState KonaLockState;

typedef struct KonaPromote {
    bool enabled;
    uint8_t *mem;               /* the memory whose pages get RAM writes */
    uint64_t npages;
    unsigned long *ram;         /* per 4 KiB page: takes stores as RAM */
    unsigned long *filled;      /* ... and a TLB may hold it as RAM */
    uint16_t *frame_ram;        /* per frame: how many of its pages do */
    uint8_t *stores;            /* per page of each frame: stores to it
                                 * fully dirty, before it takes them as RAM */
    uint64_t nram;              /* pages with RAM writes, all frames */
    bool hold;                  /* a command needs every store seen */
    uint32_t guarded;           /* frame write-protected for its eviction */
} KonaPromote;

/* Property 'promote' against the rest; errors name it.  Sets enabled. */
bool kona_promote_check(KonaCxlState *s, Error **errp);
/* @mem: the host memory of the ROM device the guest stores to. */
void kona_promote_init(KonaCxlState *s, uint8_t *mem);
void kona_promote_destroy(KonaCxlState *s);

/*
 * The rest have KonaTrackOps' signatures (kona-track.h): stores mode's
 * table names them.  Device lock held.
 */
/* The device performed a store at media address @addr. */
void kona_promote_stored(KonaCxlState *s, uint32_t frame, uint64_t addr,
                         unsigned len);
void kona_promote_writeback_begin(KonaCxlState *s, uint32_t frame,
                                  bool evicting);
void kona_promote_writeback_end(KonaCxlState *s, uint32_t frame,
                                bool written, bool dropping);
/* A store the host's MMU caught in @frame's block at @addr. */
void kona_promote_late_store(KonaCxlState *s, uint32_t frame, uint64_t addr);
void kona_promote_hold(KonaCxlState *s, KonaLockState *ls);
void kona_promote_release(KonaCxlState *s);

#endif /* KONA_PROMOTE_H */

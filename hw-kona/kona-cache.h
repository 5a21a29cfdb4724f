/*
 * Kona-CXL: the device's local cache of remote memory.
 *
 * The media the guest sees (media_size bytes) is cut into blocks of
 * block_size bytes, the fetch unit.  A block is either resident in one of
 * the cache's frames or only on its memory node.  Each frame keeps a
 * dirty bitmap with one bit per 64-byte line and an access bit for the
 * replacement policy.
 *
 * The metadata grows with the cache, not with the media: a frame costs 16
 * bytes, 4 on the free stack, lines_per_block / 8 of dirty bitmap and 16
 * to 32 of block table (with 4 KiB blocks and a power-of-two number of
 * frames: 44 bytes, 1.1% of the cache), and the media a bit per 2 MiB
 * page (64 bytes per GiB, for KonaWriteback.huge_pages).
 * kona_cache_metadata_bytes() adds it up.
 *
 * Pure bookkeeping: no I/O and no locking (the device serialises), and no
 * QEMU dependency, so it is unit-tested outside QEMU's tree.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_CACHE_H
#define KONA_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KONA_CACHE_LINE_SHIFT   6
#define KONA_CACHE_LINE_SIZE    64u
#define KONA_CACHE_PAGE_SIZE    4096u
#define KONA_CACHE_HUGE_SHIFT   21
#define KONA_CACHE_HUGE_SIZE    (1u << KONA_CACHE_HUGE_SHIFT)
#define KONA_CACHE_MIN_BLOCK    64u
#define KONA_CACHE_MAX_BLOCK    (2u << 20)
#define KONA_NO_FRAME           UINT32_MAX
/*
 * Slots of the block table per frame, at least.  At 2 (load 1/2) a hit
 * over a full 64 MiB cache took 5-9 ns instead of 2-4 (a hit not in its
 * home slot, one in three, costs a mispredicted branch after two
 * dependent loads: tests/unit/bench-kona-cache.c), for 8 bytes a frame
 * less.
 */
#define KONA_CACHE_SLOTS_PER_FRAME  4
/* Fibonacci hashing: runs of consecutive blocks land in distant slots. */
#define KONA_CACHE_HASH_MUL     0x9e3779b97f4a7c15ull

typedef enum KonaPolicy {
    KONA_POLICY_CLOCK = 0,      /* second chance on the access bit */
    KONA_POLICY_FIFO = 1,       /* oldest installed first */
    KONA_POLICY_RANDOM = 2,
    KONA_POLICY__MAX
} KonaPolicy;

/*
 * One per frame, so kept to 16 bytes: the dirty bitmap is found with
 * kona_cache_dirty_bits() and the FIFO links live apart (FIFO only).
 */
typedef struct KonaFrame {
    uint64_t block;             /* block index, valid if resident */
    uint32_t ndirty;            /* dirty lines, bits set in the bitmap */
    bool resident;
    bool accessed;
} KonaFrame;

/* Install order of the resident frames, for the FIFO policy. */
typedef struct KonaFifoLink {
    uint32_t prev, next;
} KonaFifoLink;

/* What writing back one frame's dirty lines costs, and would have cost. */
typedef struct KonaWriteback {
    uint64_t lines;             /* dirty 64 B lines written */
    uint64_t pages;             /* distinct 4 KiB pages with a dirty line */
    /*
     * What a runtime managing 2 MiB pages would have written for it: such
     * a runtime writes a dirty 2 MiB page back whole when it cleans it,
     * and the page is then clean until a store dirties it again.  So 1 if
     * a line of the block's 2 MiB page became dirty since the page was
     * last counted (the runtime would write the page now), else 0 (the
     * block's dirty lines went out with the page's last counted
     * write-back).  Line-granular: a store to a line that is dirty
     * already does not make the page dirty again.  Every line written
     * back is covered by a 2 MiB write-back counted at or before it, so
     * the counterfactual is never below the dirty lines' bytes.  (The old
     * count, 1 for every dirty block, inflated it up to 512x with 4 KiB
     * blocks.)
     */
    uint64_t huge_pages;
} KonaWriteback;

typedef struct KonaCache {
    uint64_t media_size;
    uint32_t block_size;
    unsigned block_shift;
    uint32_t lines_per_block;
    uint32_t words_per_block;   /* uint64_t words of a dirty bitmap */
    uint64_t nblocks;
    uint32_t nframes;

    uint8_t *mem;               /* nframes * block_size bytes */
    /*
     * Block -> frame: open addressing over the resident frames, keyed by
     * frames[f].block, linear probing, backward-shift deletion.  A power
     * of two >= KONA_CACHE_SLOTS_PER_FRAME x nframes slots keeps the load
     * at most 1/4: a hit probes 1.17 slots on average, a miss 1.39.
     */
    uint32_t *slots;            /* frame ids, or KONA_NO_FRAME if empty */
    uint64_t slot_mask;         /* number of slots - 1 */
    unsigned slot_shift;        /* 64 - log2(number of slots) */
    KonaFrame *frames;
    uint64_t *dirty_words;      /* every frame's bitmap, words_per_block each */
    KonaFifoLink *fifo;         /* per frame; NULL unless the policy is FIFO */

    uint32_t *free;             /* stack of free frames */
    uint32_t nfree;
    uint32_t fifo_head, fifo_tail;  /* oldest, newest resident frame */

    KonaPolicy policy;
    uint32_t clock_hand;
    uint64_t rand_state;

    /*
     * Per 2 MiB page of media, for KonaWriteback.huge_pages, a bit: a line
     * of it became dirty since it was last counted.  64 bytes per GiB
     * (64 KiB for 1 TiB), touched when a line turns dirty and at a
     * write-back.
     */
    uint64_t nhuge;             /* 2 MiB pages of media, rounded up */
    uint64_t *huge_dirty;

    uint64_t dirty_lines;       /* sum of ndirty */
    uint64_t dirty_frames;      /* frames with ndirty > 0 */
} KonaCache;

/* Checks the geometry; returns false with *why set (static text) if bad. */
bool kona_cache_geometry_ok(uint64_t media_size, uint64_t cache_size,
                            uint64_t block_size, const char **why);
/* @mem: cache_size bytes the caller owns (e.g. an mmap). */
void kona_cache_init(KonaCache *c, uint64_t media_size, uint64_t cache_size,
                     uint32_t block_size, KonaPolicy policy, void *mem);
void kona_cache_destroy(KonaCache *c);
/* Bytes of metadata the cache allocated (the frames' memory not counted). */
size_t kona_cache_metadata_bytes(const KonaCache *c);

static inline uint64_t kona_cache_block_of(const KonaCache *c, uint64_t addr)
{
    return addr >> c->block_shift;
}

/* Where the probe for @block starts. */
static inline uint64_t kona_cache_slot_of(const KonaCache *c, uint64_t block)
{
    return (block * KONA_CACHE_HASH_MUL) >> c->slot_shift;
}

/* The frame holding @block, or KONA_NO_FRAME (any @block). */
static inline uint32_t kona_cache_frame_of(const KonaCache *c,
                                           uint64_t block)
{
    for (uint64_t i = kona_cache_slot_of(c, block);;
         i = (i + 1) & c->slot_mask) {
        uint32_t f = c->slots[i];

        if (f == KONA_NO_FRAME || c->frames[f].block == block) {
            return f;
        }
    }
}

/* @f's dirty bitmap: bit l of word l / 64 is line l of the block. */
static inline uint64_t *kona_cache_dirty_bits(const KonaCache *c, uint32_t f)
{
    return c->dirty_words + (size_t)f * c->words_per_block;
}

static inline uint8_t *kona_cache_frame_mem(const KonaCache *c, uint32_t f)
{
    return c->mem + (size_t)f * c->block_size;
}

/* A free frame, or KONA_NO_FRAME if the cache is full. */
uint32_t kona_cache_take_free(KonaCache *c);
/* Give back a frame taken with kona_cache_take_free() but not installed. */
void kona_cache_put_free(KonaCache *c, uint32_t frame);
/* The frame the policy would evict next (the cache must not be empty). */
uint32_t kona_cache_pick_victim(KonaCache *c);
/* Make @frame (just taken from the free list) hold @block, clean. */
void kona_cache_install(KonaCache *c, uint32_t frame, uint64_t block);
/* Forget @frame's block (its dirty lines must have been written back). */
void kona_cache_drop(KonaCache *c, uint32_t frame);

static inline void kona_cache_touch(KonaCache *c, uint32_t frame)
{
    c->frames[frame].accessed = true;
}

/*
 * Mark the lines of [off, off + len) within @frame dirty; the range must
 * not leave the block.  Returns how many lines were clean before.
 */
uint32_t kona_cache_mark_dirty(KonaCache *c, uint32_t frame, uint32_t off,
                               uint32_t len);

/*
 * Make @frame's dirty lines exactly those where @now differs from @clean
 * (each block_size bytes): dirty tracking by comparison with a clean copy.
 * Returns the frame's dirty line count.
 */
uint32_t kona_cache_diff_dirty(KonaCache *c, uint32_t frame,
                               const uint8_t *now, const uint8_t *clean);

/*
 * Dirty-line mask of 4 KiB page @page of @frame's block (page 0 starts at
 * the block, or for blocks under 4 KiB at the 4 KiB page holding it: then
 * only the block's own lines can be set).
 */
uint64_t kona_cache_page_mask(const KonaCache *c, uint32_t frame,
                              uint32_t page);
/* Pages a write-back of one block covers: max(1, block_size / 4096). */
uint32_t kona_cache_block_pages(const KonaCache *c);
/* Media offset of page 0 of kona_cache_page_mask() for @frame. */
uint64_t kona_cache_page_base(const KonaCache *c, uint32_t frame);

/*
 * Account for writing back @frame's dirty lines (counts only; copying the
 * data is the caller's job), then mark the frame clean.  @hist, if not
 * NULL, has 65 buckets: hist[n] += pages with n dirty lines (n >= 1).
 */
KonaWriteback kona_cache_clean(KonaCache *c, uint32_t frame, uint64_t *hist);
/*
 * Start the write-back counterfactuals afresh, with the device's counters:
 * every 2 MiB page with a dirty line now counts again at its next
 * write-back.  O(frames).
 */
void kona_cache_reset_counterfactuals(KonaCache *c);

/*
 * The resident frames whose blocks lie in [first, last], each once, in no
 * particular order: by looking the blocks up when the range is short, by
 * scanning the frames otherwise, whichever is cheaper.  Between calls the
 * frame last returned may be cleaned or dropped; nothing may be installed.
 *
 *     kona_cache_walk_init(c, &w, first, last);
 *     while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) { ... }
 */
/*
 * A walk looks its blocks up if they are fewer than nframes / this: a
 * lookup of a block that is not resident costs as much as scanning 4-8
 * frames (tests/unit/bench-kona-cache.c).
 */
#define KONA_CACHE_WALK_RATIO   8

typedef struct KonaCacheWalk {
    uint64_t next;              /* block or frame to look at next */
    uint64_t first, last;       /* blocks */
    bool by_block;
} KonaCacheWalk;

void kona_cache_walk_init(const KonaCache *c, KonaCacheWalk *w,
                          uint64_t first, uint64_t last);
uint32_t kona_cache_walk_next(const KonaCache *c, KonaCacheWalk *w);

/* Dirty mask of media lines [group * 64, group * 64 + 64) (one 4 KiB). */
uint64_t kona_cache_dirty_group(const KonaCache *c, uint64_t group);
/* Dirty lines in media range [addr, addr + len): O(min(blocks, frames)). */
uint64_t kona_cache_count_dirty(const KonaCache *c, uint64_t addr,
                                uint64_t len);

static inline uint32_t kona_cache_resident(const KonaCache *c)
{
    return c->nframes - c->nfree;
}

#endif /* KONA_CACHE_H */

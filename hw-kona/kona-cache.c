/*
 * Kona-CXL: the device's local cache of remote memory (bookkeeping).
 *
 * Only standard and GLib headers here: this file is also built outside
 * QEMU's tree for the unit tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "kona-cache.h"

/*
 * Block numbers have 40 bits where the guest reads them (the frame window,
 * KONA_FRAME_BLOCK in kona-regs.h): 64 TiB of media in 64 B blocks.  No
 * table here grows with the number of blocks.
 */
#define KONA_CACHE_MAX_BLOCKS   (1ull << 40)

bool kona_cache_geometry_ok(uint64_t media_size, uint64_t cache_size,
                            uint64_t block_size, const char **why)
{
    if (block_size < KONA_CACHE_MIN_BLOCK ||
        block_size > KONA_CACHE_MAX_BLOCK ||
        (block_size & (block_size - 1))) {
        *why = "must be a power of two from 64 B to 2 MiB";
        return false;
    }
    if (media_size % block_size) {
        *why = "must divide the media size";
        return false;
    }
    if (media_size / block_size > KONA_CACHE_MAX_BLOCKS) {
        *why = "is too small for this media size (at most 2^40 blocks)";
        return false;
    }
    if (cache_size < block_size || cache_size % block_size ||
        cache_size > media_size || cache_size / block_size > UINT32_MAX - 1) {
        *why = "must make the cache a whole number of blocks, at least one, "
               "and no larger than the media";
        return false;
    }
    return true;
}

/* log2 of the block table's slots for @nframes. */
static unsigned slot_bits(uint32_t nframes)
{
    unsigned bits = 1;

    while ((1ull << bits) < (uint64_t)KONA_CACHE_SLOTS_PER_FRAME * nframes) {
        bits++;
    }
    return bits;
}

void kona_cache_init(KonaCache *c, uint64_t media_size, uint64_t cache_size,
                     uint32_t block_size, KonaPolicy policy, void *mem)
{
    unsigned bits;

    memset(c, 0, sizeof(*c));
    c->media_size = media_size;
    c->block_size = block_size;
    c->block_shift = __builtin_ctz(block_size);
    c->lines_per_block = block_size / KONA_CACHE_LINE_SIZE;
    c->words_per_block = (c->lines_per_block + 63) / 64;
    c->nblocks = media_size / block_size;
    c->nframes = cache_size / block_size;
    c->mem = mem;
    c->policy = policy;
    c->rand_state = 0x9e3779b97f4a7c15ull;

    bits = slot_bits(c->nframes);
    c->slot_mask = (1ull << bits) - 1;
    c->slot_shift = 64 - bits;
    c->slots = g_new(uint32_t, c->slot_mask + 1);
    memset(c->slots, 0xff, (c->slot_mask + 1) * sizeof(uint32_t));
    c->frames = g_new0(KonaFrame, c->nframes);
    c->dirty_words = g_new0(uint64_t,
                            (size_t)c->nframes * c->words_per_block);
    if (policy == KONA_POLICY_FIFO) {
        c->fifo = g_new(KonaFifoLink, c->nframes);
    }
    c->nhuge = (media_size + KONA_CACHE_HUGE_SIZE - 1) >> KONA_CACHE_HUGE_SHIFT;
    c->huge_dirty = g_new0(uint64_t, (c->nhuge + 63) / 64);
    c->free = g_new(uint32_t, c->nframes);
    for (uint32_t f = 0; f < c->nframes; f++) {
        /* Hand out frame 0 first. */
        c->free[f] = c->nframes - 1 - f;
    }
    c->nfree = c->nframes;
    c->fifo_head = c->fifo_tail = KONA_NO_FRAME;
}

void kona_cache_destroy(KonaCache *c)
{
    g_free(c->slots);
    g_free(c->frames);
    g_free(c->dirty_words);
    g_free(c->fifo);
    g_free(c->huge_dirty);
    g_free(c->free);
    memset(c, 0, sizeof(*c));
}

size_t kona_cache_metadata_bytes(const KonaCache *c)
{
    size_t n = sizeof(*c);

    n += (c->slot_mask + 1) * sizeof(uint32_t);
    n += (size_t)c->nframes * (sizeof(KonaFrame) + sizeof(uint32_t) +
                               c->words_per_block * sizeof(uint64_t));
    if (c->fifo) {
        n += (size_t)c->nframes * sizeof(KonaFifoLink);
    }
    n += (c->nhuge + 63) / 64 * sizeof(uint64_t);
    return n;
}

uint32_t kona_cache_take_free(KonaCache *c)
{
    return c->nfree ? c->free[--c->nfree] : KONA_NO_FRAME;
}

void kona_cache_put_free(KonaCache *c, uint32_t frame)
{
    g_assert(!c->frames[frame].resident && c->nfree < c->nframes);
    c->free[c->nfree++] = frame;
}

static uint64_t next_random(KonaCache *c)
{
    /* xorshift64*: deterministic, so runs are repeatable. */
    c->rand_state ^= c->rand_state >> 12;
    c->rand_state ^= c->rand_state << 25;
    c->rand_state ^= c->rand_state >> 27;
    return c->rand_state * 0x2545f4914f6cdd1dull;
}

uint32_t kona_cache_pick_victim(KonaCache *c)
{
    g_assert(kona_cache_resident(c) > 0);

    switch (c->policy) {
    case KONA_POLICY_FIFO:
        return c->fifo_head;
    case KONA_POLICY_RANDOM:
        for (;;) {
            uint32_t f = next_random(c) % c->nframes;

            if (c->frames[f].resident) {
                return f;
            }
        }
    case KONA_POLICY_CLOCK:
    default:
        /* At most two sweeps: the first clears every access bit. */
        for (;;) {
            KonaFrame *fr = &c->frames[c->clock_hand];
            uint32_t f = c->clock_hand;

            c->clock_hand = (c->clock_hand + 1) % c->nframes;
            if (!fr->resident) {
                continue;
            }
            if (!fr->accessed) {
                return f;
            }
            fr->accessed = false;
        }
    }
}

/* The slot holding resident @frame. */
static uint64_t slot_find(const KonaCache *c, uint32_t frame)
{
    uint64_t i = kona_cache_slot_of(c, c->frames[frame].block);

    while (c->slots[i] != frame) {
        g_assert(c->slots[i] != KONA_NO_FRAME);
        i = (i + 1) & c->slot_mask;
    }
    return i;
}

static void slot_insert(KonaCache *c, uint32_t frame, uint64_t block)
{
    uint64_t i = kona_cache_slot_of(c, block);

    while (c->slots[i] != KONA_NO_FRAME) {
        g_assert(c->frames[c->slots[i]].block != block);
        i = (i + 1) & c->slot_mask;
    }
    c->slots[i] = frame;
}

/*
 * Empty slot @i without cutting a probe chain (Knuth's algorithm R): each
 * later entry of the run whose home slot is not cyclically in (i, j]
 * moves back into the hole, which moves to where it was.
 */
static void slot_remove(KonaCache *c, uint64_t i)
{
    uint64_t j = i;

    for (;;) {
        uint32_t f;
        uint64_t home;

        j = (j + 1) & c->slot_mask;
        f = c->slots[j];
        if (f == KONA_NO_FRAME) {
            break;
        }
        home = kona_cache_slot_of(c, c->frames[f].block);
        if (((j - home) & c->slot_mask) >= ((j - i) & c->slot_mask)) {
            c->slots[i] = f;
            i = j;
        }
    }
    c->slots[i] = KONA_NO_FRAME;
}

static void fifo_append(KonaCache *c, uint32_t frame)
{
    c->fifo[frame].prev = c->fifo_tail;
    c->fifo[frame].next = KONA_NO_FRAME;
    if (c->fifo_tail != KONA_NO_FRAME) {
        c->fifo[c->fifo_tail].next = frame;
    } else {
        c->fifo_head = frame;
    }
    c->fifo_tail = frame;
}

static void fifo_unlink(KonaCache *c, uint32_t frame)
{
    KonaFifoLink *l = &c->fifo[frame];

    if (l->prev != KONA_NO_FRAME) {
        c->fifo[l->prev].next = l->next;
    } else {
        c->fifo_head = l->next;
    }
    if (l->next != KONA_NO_FRAME) {
        c->fifo[l->next].prev = l->prev;
    } else {
        c->fifo_tail = l->prev;
    }
}

void kona_cache_install(KonaCache *c, uint32_t frame, uint64_t block)
{
    KonaFrame *fr = &c->frames[frame];

    g_assert(block < c->nblocks && !fr->resident);
    fr->block = block;
    fr->resident = true;
    fr->accessed = true;
    fr->ndirty = 0;
    memset(kona_cache_dirty_bits(c, frame), 0,
           c->words_per_block * sizeof(uint64_t));
    slot_insert(c, frame, block);
    if (c->fifo) {
        fifo_append(c, frame);
    }
}

void kona_cache_drop(KonaCache *c, uint32_t frame)
{
    KonaFrame *fr = &c->frames[frame];

    g_assert(fr->resident && fr->ndirty == 0);
    slot_remove(c, slot_find(c, frame));
    fr->resident = false;
    fr->accessed = false;

    if (c->fifo) {
        fifo_unlink(c, frame);
    }
    c->free[c->nfree++] = frame;
}

static uint64_t huge_of(const KonaCache *c, uint32_t frame)
{
    return c->frames[frame].block >> (KONA_CACHE_HUGE_SHIFT - c->block_shift);
}

/* A line of @frame's block became dirty: so did its 2 MiB page. */
static void huge_dirtied(KonaCache *c, uint32_t frame)
{
    uint64_t h = huge_of(c, frame);

    c->huge_dirty[h / 64] |= 1ull << (h % 64);
}

/* Whether a 2 MiB-page runtime would write @frame's page back now. */
static bool huge_writeback(KonaCache *c, uint32_t frame)
{
    uint64_t h = huge_of(c, frame);
    uint64_t bit = 1ull << (h % 64);
    bool dirty = c->huge_dirty[h / 64] & bit;

    c->huge_dirty[h / 64] &= ~bit;
    return dirty;
}

void kona_cache_reset_counterfactuals(KonaCache *c)
{
    for (uint32_t f = 0; f < c->nframes; f++) {
        if (c->frames[f].resident && c->frames[f].ndirty) {
            huge_dirtied(c, f);
        }
    }
}

uint32_t kona_cache_mark_dirty(KonaCache *c, uint32_t frame, uint32_t off,
                               uint32_t len)
{
    KonaFrame *fr = &c->frames[frame];
    uint64_t *dirty = kona_cache_dirty_bits(c, frame);
    uint32_t first = off >> KONA_CACHE_LINE_SHIFT;
    uint32_t last = (off + len - 1) >> KONA_CACHE_LINE_SHIFT;
    uint32_t added = 0;

    g_assert(len > 0 && last < c->lines_per_block);
    for (uint32_t l = first; l <= last; l++) {
        uint64_t bit = 1ull << (l % 64);
        uint64_t *w = &dirty[l / 64];

        if (!(*w & bit)) {
            *w |= bit;
            added++;
        }
    }
    if (added) {
        c->dirty_frames += fr->ndirty == 0;
        huge_dirtied(c, frame);
        fr->ndirty += added;
        c->dirty_lines += added;
    }
    return added;
}

uint32_t kona_cache_diff_dirty(KonaCache *c, uint32_t frame,
                               const uint8_t *now, const uint8_t *clean)
{
    KonaFrame *fr = &c->frames[frame];
    uint64_t *dirty = kona_cache_dirty_bits(c, frame);
    bool added = false;
    uint32_t n = 0;

    for (uint32_t w = 0; w < c->words_per_block; w++) {
        uint32_t lines = MIN(64, c->lines_per_block - w * 64);
        uint64_t bits = 0;

        for (uint32_t i = 0; i < lines; i++) {
            size_t off = ((size_t)w * 64 + i) * KONA_CACHE_LINE_SIZE;

            if (memcmp(now + off, clean + off, KONA_CACHE_LINE_SIZE)) {
                bits |= 1ull << i;
            }
        }
        added |= (bits & ~dirty[w]) != 0;
        dirty[w] = bits;
        n += __builtin_popcountll(bits);
    }
    c->dirty_lines += n;
    c->dirty_lines -= fr->ndirty;
    c->dirty_frames += (n != 0) - (fr->ndirty != 0);
    if (added) {
        huge_dirtied(c, frame);
    }
    fr->ndirty = n;
    return n;
}

uint32_t kona_cache_block_pages(const KonaCache *c)
{
    return c->block_size >= KONA_CACHE_PAGE_SIZE
           ? c->block_size / KONA_CACHE_PAGE_SIZE : 1;
}

uint64_t kona_cache_page_base(const KonaCache *c, uint32_t frame)
{
    uint64_t start = c->frames[frame].block << c->block_shift;

    return start & ~(uint64_t)(KONA_CACHE_PAGE_SIZE - 1);
}

uint64_t kona_cache_page_mask(const KonaCache *c, uint32_t frame,
                              uint32_t page)
{
    const uint64_t *dirty = kona_cache_dirty_bits(c, frame);

    if (c->lines_per_block >= 64) {
        return dirty[page];
    }
    /* A sub-page block: its lines sit at its position within the page. */
    return dirty[0] << ((c->frames[frame].block << c->block_shift) %
                            KONA_CACHE_PAGE_SIZE / KONA_CACHE_LINE_SIZE);
}

KonaWriteback kona_cache_clean(KonaCache *c, uint32_t frame, uint64_t *hist)
{
    KonaFrame *fr = &c->frames[frame];
    KonaWriteback wb = { 0 };
    uint32_t npages = kona_cache_block_pages(c);

    if (fr->ndirty == 0) {
        return wb;
    }
    for (uint32_t p = 0; p < npages; p++) {
        unsigned n = __builtin_popcountll(kona_cache_page_mask(c, frame, p));

        if (n) {
            wb.pages++;
            if (hist) {
                hist[n]++;
            }
        }
    }
    /* A block never spans two 2 MiB pages (blocks are at most 2 MiB). */
    wb.lines = fr->ndirty;
    wb.huge_pages = huge_writeback(c, frame);

    c->dirty_lines -= fr->ndirty;
    c->dirty_frames--;
    fr->ndirty = 0;
    memset(kona_cache_dirty_bits(c, frame), 0,
           c->words_per_block * sizeof(uint64_t));
    return wb;
}

/* Dirty bits of lines [first, first + n) of @frame, n <= 64. */
static uint64_t frame_bits(const KonaCache *c, uint32_t frame, uint32_t first,
                           uint32_t n)
{
    const uint64_t *d = kona_cache_dirty_bits(c, frame);
    uint64_t lo = d[first / 64] >> (first % 64);

    if (first % 64 && first / 64 + 1 < c->words_per_block) {
        lo |= d[first / 64 + 1] << (64 - first % 64);
    }
    return n == 64 ? lo : lo & ((1ull << n) - 1);
}

uint64_t kona_cache_dirty_group(const KonaCache *c, uint64_t group)
{
    uint64_t line = group * 64, mask = 0;
    uint32_t per_block = c->lines_per_block;

    if (group >= c->media_size / KONA_CACHE_PAGE_SIZE) {
        return 0;
    }
    /* The group covers one block, part of one, or several whole ones. */
    for (uint32_t done = 0; done < 64;) {
        uint64_t block = (line + done) / per_block;
        uint32_t in_block = (line + done) % per_block;
        uint32_t n = MIN(64 - done, per_block - in_block);
        uint32_t f = kona_cache_frame_of(c, block);

        if (f != KONA_NO_FRAME && c->frames[f].ndirty) {
            mask |= frame_bits(c, f, in_block, n) << done;
        }
        done += n;
    }
    return mask;
}

void kona_cache_walk_init(const KonaCache *c, KonaCacheWalk *w,
                          uint64_t first, uint64_t last)
{
    w->first = first;
    w->last = MIN(last, c->nblocks - 1);
    w->by_block = first <= w->last &&
                  w->last - first < c->nframes / KONA_CACHE_WALK_RATIO;
    w->next = w->by_block ? first : 0;
}

uint32_t kona_cache_walk_next(const KonaCache *c, KonaCacheWalk *w)
{
    if (w->first > w->last) {
        return KONA_NO_FRAME;
    }
    if (w->by_block) {
        while (w->next <= w->last) {
            uint32_t f = kona_cache_frame_of(c, w->next++);

            if (f != KONA_NO_FRAME) {
                return f;
            }
        }
        return KONA_NO_FRAME;
    }
    while (w->next < c->nframes) {
        const KonaFrame *fr = &c->frames[w->next++];

        if (fr->resident && fr->block >= w->first && fr->block <= w->last) {
            return w->next - 1;
        }
    }
    return KONA_NO_FRAME;
}

/* Dirty lines among lines [lo, hi] of @frame's block. */
static uint32_t frame_count_lines(const KonaCache *c, uint32_t frame,
                                  uint32_t lo, uint32_t hi)
{
    const uint64_t *d = kona_cache_dirty_bits(c, frame);
    uint32_t n = 0;

    for (uint32_t w = lo / 64; w <= hi / 64; w++) {
        uint64_t m = d[w];

        if (w == lo / 64) {
            m &= ~0ull << (lo % 64);
        }
        if (w == hi / 64) {
            m &= ~0ull >> (63 - hi % 64);
        }
        n += __builtin_popcountll(m);
    }
    return n;
}

uint64_t kona_cache_count_dirty(const KonaCache *c, uint64_t addr,
                                uint64_t len)
{
    uint32_t per_block = c->lines_per_block;
    uint64_t first, last, count = 0;
    KonaCacheWalk w;
    uint32_t f;

    if (len == 0 || addr >= c->media_size) {
        return 0;
    }
    len = MIN(len, c->media_size - addr);
    first = addr >> KONA_CACHE_LINE_SHIFT;
    last = (addr + len - 1) >> KONA_CACHE_LINE_SHIFT;
    kona_cache_walk_init(c, &w, first / per_block, last / per_block);
    while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) {
        const KonaFrame *fr = &c->frames[f];
        uint64_t b0 = fr->block * per_block;
        uint32_t lo, hi;

        if (!fr->ndirty) {
            continue;
        }
        lo = MAX(first, b0) - b0;
        hi = MIN(last, b0 + per_block - 1) - b0;
        count += lo == 0 && hi == per_block - 1
                 ? fr->ndirty : frame_count_lines(c, f, lo, hi);
    }
    return count;
}

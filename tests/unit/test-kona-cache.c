/*
 * Unit tests of the cache bookkeeping (hw-kona/kona-cache.c): frames,
 * replacement policies, dirty lines, write-back accounting.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "kona-cache.h"

typedef struct Fixture {
    KonaCache c;
    void *mem;
} Fixture;

static void setup(Fixture *fx, uint64_t media, uint64_t cache, uint32_t bs,
                  KonaPolicy policy)
{
    fx->mem = g_malloc0(cache);
    kona_cache_init(&fx->c, media, cache, bs, policy, fx->mem);
}

static void teardown(Fixture *fx)
{
    kona_cache_destroy(&fx->c);
    g_free(fx->mem);
}

/* Fetch @block into a frame, evicting (without data) if full. */
static uint32_t bring_in(KonaCache *c, uint64_t block)
{
    uint32_t f = kona_cache_take_free(c);

    if (f == KONA_NO_FRAME) {
        f = kona_cache_pick_victim(c);
        kona_cache_clean(c, f, NULL);
        kona_cache_drop(c, f);
        f = kona_cache_take_free(c);
    }
    kona_cache_install(c, f, block);
    return f;
}

static void test_geometry(void)
{
    const char *why = NULL;

    g_assert_true(kona_cache_geometry_ok(1 << 28, 1 << 20, 4096, &why));
    g_assert_true(kona_cache_geometry_ok(1 << 28, 1 << 28, 64, &why));
    /* 1 TiB: with 4 KiB blocks, and as the device checks it, cache = media. */
    g_assert_true(kona_cache_geometry_ok(1ull << 40, 64 << 20, 4096, &why));
    g_assert_true(kona_cache_geometry_ok(1ull << 40, 1ull << 40, 4096, &why));
    g_assert_true(kona_cache_geometry_ok(1ull << 40, 1 << 20, 64, &why));
    g_assert_true(kona_cache_geometry_ok(1ull << 46, 1 << 20, 64, &why));
    g_assert_true(kona_cache_geometry_ok(1ull << 40, 1 << 21, 2 << 20, &why));

    g_assert_false(kona_cache_geometry_ok(1 << 28, 1 << 20, 3000, &why));
    g_assert_cmpstr(why, ==, "must be a power of two from 64 B to 2 MiB");
    why = NULL;
    g_assert_false(kona_cache_geometry_ok(1 << 28, 1 << 20, 32, &why));
    g_assert_nonnull(strstr(why, "power of two"));
    why = NULL;
    g_assert_false(kona_cache_geometry_ok(1 << 28, 1 << 20, 4 << 20, &why));
    g_assert_nonnull(strstr(why, "power of two"));
    g_assert_false(kona_cache_geometry_ok((1 << 28) + 4096, 1 << 20, 8192,
                                          &why));
    g_assert_cmpstr(why, ==, "must divide the media size");
    g_assert_false(kona_cache_geometry_ok(1 << 28, 1 << 29, 4096, &why));
    g_assert_nonnull(strstr(why, "whole number of blocks"));
    why = NULL;
    g_assert_false(kona_cache_geometry_ok(1 << 28, 1000, 4096, &why));
    g_assert_nonnull(strstr(why, "whole number of blocks"));
    why = NULL;
    g_assert_false(kona_cache_geometry_ok(1 << 28, 0, 4096, &why));
    g_assert_nonnull(strstr(why, "whole number of blocks"));
    /* Frame numbers are 32-bit: 2^34 frames of 64 B are too many. */
    why = NULL;
    g_assert_false(kona_cache_geometry_ok(1ull << 40, 1ull << 40, 64, &why));
    g_assert_nonnull(strstr(why, "whole number of blocks"));
    /* Block numbers have 40 bits in the frame window. */
    g_assert_false(kona_cache_geometry_ok(1ull << 47, 1 << 20, 64, &why));
    g_assert_cmpstr(why, ==,
                    "is too small for this media size (at most 2^40 blocks)");
}

/*
 * The block table's invariants: every resident frame sits in exactly one
 * slot, found by its block, and no empty slot lies between an entry's
 * home slot and the entry (or linear probing would stop short of it).
 */
static void check_table(const KonaCache *c)
{
    uint64_t used = 0;

    for (uint64_t i = 0; i <= c->slot_mask; i++) {
        uint32_t f = c->slots[i];

        if (f == KONA_NO_FRAME) {
            continue;
        }
        used++;
        g_assert_cmpuint(f, <, c->nframes);
        g_assert_true(c->frames[f].resident);
        for (uint64_t j = kona_cache_slot_of(c, c->frames[f].block); j != i;
             j = (j + 1) & c->slot_mask) {
            g_assert_cmpuint(c->slots[j], !=, KONA_NO_FRAME);
        }
    }
    g_assert_cmpuint(used, ==, kona_cache_resident(c));
    for (uint32_t f = 0; f < c->nframes; f++) {
        if (c->frames[f].resident) {
            g_assert_cmpuint(kona_cache_frame_of(c, c->frames[f].block), ==,
                             f);
        }
    }
}

/* The table sizes itself by the frames: 4 to 8 slots a frame. */
static void test_table_size(void)
{
    static const uint32_t nframes[] = { 1, 2, 3, 64, 100, 3000, 16384 };

    for (unsigned i = 0; i < G_N_ELEMENTS(nframes); i++) {
        KonaCache c;

        kona_cache_init(&c, 1ull << 40, nframes[i] * 4096ull, 4096,
                        KONA_POLICY_CLOCK, NULL);
        g_assert_cmpuint(c.slot_mask + 1, >=,
                         KONA_CACHE_SLOTS_PER_FRAME * nframes[i]);
        g_assert_cmpuint(c.slot_mask + 1, <,
                         2ull * KONA_CACHE_SLOTS_PER_FRAME * nframes[i]);
        g_assert_cmpuint(c.slot_mask & (c.slot_mask + 1), ==, 0);
        g_assert_cmpuint(c.slot_shift, ==,
                         64 - __builtin_ctzll(c.slot_mask + 1));
        kona_cache_destroy(&c);
    }
}

/* A block for the model test: often from a hot set, so blocks come back. */
static uint64_t model_block(GRand *rnd, const uint64_t *hot, unsigned nhot,
                            uint64_t nblocks)
{
    switch (g_rand_int_range(rnd, 0, 8)) {
    case 0:
        return g_rand_boolean(rnd) ? 0 : nblocks - 1;
    case 1:
    case 2:
    case 3:
        return ((uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd)) % nblocks;
    default:
        return hot[g_rand_int_range(rnd, 0, nhot)];
    }
}

/*
 * Random installs, drops and lookups over 1 TiB of 4 KiB blocks (2^28 of
 * them, a few thousand resident) against a GHashTable.
 */
static void test_table_against_model(void)
{
    const uint64_t media = 1ull << 40;
    const uint32_t nframes = 3000;
    GRand *rnd = g_rand_new_with_seed(42);
    GHashTable *model = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                              g_free, NULL);
    uint64_t hot[6000];
    KonaCache cache, *c = &cache;
    uint64_t installs = 0, drops = 0, hits = 0, misses = 0;

    kona_cache_init(c, media, nframes * 4096ull, 4096, KONA_POLICY_CLOCK,
                    NULL);
    for (unsigned i = 0; i < G_N_ELEMENTS(hot); i++) {
        hot[i] = ((uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd)) %
                 c->nblocks;
    }
    for (int op = 0; op < 300000; op++) {
        uint64_t b = model_block(rnd, hot, G_N_ELEMENTS(hot), c->nblocks);
        gpointer want = g_hash_table_lookup(model, &b);
        uint32_t f = kona_cache_frame_of(c, b);
        int r = g_rand_int_range(rnd, 0, 10);

        g_assert_cmpuint(f, ==, want ? GPOINTER_TO_UINT(want) - 1
                                     : KONA_NO_FRAME);
        hits += f != KONA_NO_FRAME;
        misses += f == KONA_NO_FRAME;
        if (r < 4 && f == KONA_NO_FRAME) {
            f = kona_cache_take_free(c);
            if (f == KONA_NO_FRAME) {
                f = kona_cache_pick_victim(c);
                g_assert_true(g_hash_table_remove(model,
                                                  &c->frames[f].block));
                kona_cache_drop(c, f);
                f = kona_cache_take_free(c);
            }
            kona_cache_install(c, f, b);
            g_hash_table_insert(model, g_memdup2(&b, sizeof(b)),
                                GUINT_TO_POINTER(f + 1));
            installs++;
        } else if (r < 7 && kona_cache_resident(c)) {
            /* Drop a resident frame, any one, as a guest eviction might. */
            f = g_rand_int_range(rnd, 0, nframes);
            while (!c->frames[f].resident) {
                f = (f + 1) % nframes;
            }
            g_assert_true(g_hash_table_remove(model, &c->frames[f].block));
            kona_cache_drop(c, f);
            g_assert_cmpuint(kona_cache_frame_of(c, c->frames[f].block), ==,
                             KONA_NO_FRAME);
            drops++;
        }
        g_assert_cmpuint(kona_cache_resident(c), ==, g_hash_table_size(model));
        if (op % 20000 == 0) {
            check_table(c);
        }
    }
    check_table(c);
    /* The sequence did what it is for: a full cache, churn, both answers. */
    g_assert_cmpuint(installs, >, 50000);
    g_assert_cmpuint(drops, >, 50000);
    g_assert_cmpuint(hits, >, 20000);
    g_assert_cmpuint(misses, >, 20000);
    g_hash_table_destroy(model);
    g_rand_free(rnd);
    kona_cache_destroy(c);
}

/* @n blocks of @c whose probes all start at slot @home. */
static void blocks_homed_at(const KonaCache *c, uint64_t home, uint64_t *out,
                            unsigned n)
{
    for (uint64_t b = 1000; n; b++) {
        if (kona_cache_slot_of(c, b) == home) {
            *out++ = b;
            n--;
        }
    }
}

/*
 * Deletion in long collision chains: three interleaved chains whose run
 * wraps around the end of the table; after every drop and re-install
 * every block must still be found.
 */
static void test_table_collisions(void)
{
    KonaCache cache, *c = &cache;
    uint64_t blocks[60];
    uint32_t frame_of[60];
    bool in[60] = { false };
    GRand *rnd = g_rand_new_with_seed(7);
    uint64_t mask;

    kona_cache_init(c, 1ull << 40, 64 * 4096, 4096, KONA_POLICY_FIFO, NULL);
    mask = c->slot_mask;
    g_assert_cmpuint(mask, >=, 127);
    blocks_homed_at(c, mask - 1, blocks, 30);
    blocks_homed_at(c, mask, blocks + 30, 15);
    blocks_homed_at(c, 2, blocks + 45, 15);
    /* Interleave the chains' installs. */
    for (unsigned k = 0; k < 15; k++) {
        unsigned order[4] = { 2 * k, 30 + k, 2 * k + 1, 45 + k };

        for (unsigned j = 0; j < 4; j++) {
            frame_of[order[j]] = kona_cache_take_free(c);
            kona_cache_install(c, frame_of[order[j]], blocks[order[j]]);
            in[order[j]] = true;
        }
    }
    check_table(c);
    /* One run of 60 entries from slot mask - 1 across slot 0. */
    for (uint64_t i = mask - 1; i != 58; i = (i + 1) & mask) {
        g_assert_cmpuint(c->slots[i], !=, KONA_NO_FRAME);
    }
    g_assert_cmpuint(c->slots[58], ==, KONA_NO_FRAME);

    /* Heads, middles and tails of chains; then at random, with re-installs. */
    for (int op = 0; op < 3000; op++) {
        unsigned k = op < 3 ? (unsigned[]){ 0, 30, 59 }[op]
                            : g_rand_int_range(rnd, 0, 60);

        if (in[k]) {
            kona_cache_drop(c, frame_of[k]);
        } else {
            frame_of[k] = kona_cache_take_free(c);
            kona_cache_install(c, frame_of[k], blocks[k]);
        }
        in[k] = !in[k];
        for (unsigned j = 0; j < 60; j++) {
            g_assert_cmpuint(kona_cache_frame_of(c, blocks[j]), ==,
                             in[j] ? frame_of[j] : KONA_NO_FRAME);
        }
        check_table(c);
    }
    g_rand_free(rnd);
    kona_cache_destroy(c);
}

/* 1 TiB of media: the far end works, and the metadata does not grow. */
static void test_terabyte(void)
{
    KonaCache small, big;
    size_t meta_small, meta_big;
    uint32_t f;

    kona_cache_init(&small, 256 << 20, 64 << 20, 4096, KONA_POLICY_CLOCK,
                    NULL);
    kona_cache_init(&big, 1ull << 40, 64 << 20, 4096, KONA_POLICY_CLOCK,
                    NULL);
    g_assert_cmpuint(big.nblocks, ==, 1ull << 28);
    meta_small = kona_cache_metadata_bytes(&small);
    meta_big = kona_cache_metadata_bytes(&big);
    /*
     * 44 bytes a frame (kona-cache.h), and 64 bytes per GiB of media for
     * the 2 MiB pages: 1 TiB costs 64 KiB more than 256 MiB.
     */
    g_assert_cmpuint(meta_small, <=, 44 * 16384 + sizeof(KonaCache) + 16);
    g_assert_cmpuint(meta_big - meta_small, <=, 1024 * 64);

    f = kona_cache_take_free(&big);
    kona_cache_install(&big, f, big.nblocks - 1);
    g_assert_cmpuint(kona_cache_frame_of(&big, big.nblocks - 1), ==, f);
    g_assert_cmpuint(kona_cache_frame_of(&big, big.nblocks - 2), ==,
                     KONA_NO_FRAME);
    g_assert_cmpuint(kona_cache_frame_of(&big, 0), ==, KONA_NO_FRAME);
    kona_cache_mark_dirty(&big, f, 4032, 64);
    g_assert_cmphex(kona_cache_dirty_group(&big, big.nblocks - 1), ==,
                    1ull << 63);
    g_assert_cmpuint(kona_cache_count_dirty(&big, (1ull << 40) - 64, 64), ==,
                     1);
    kona_cache_clean(&big, f, NULL);
    kona_cache_drop(&big, f);
    g_assert_cmpuint(kona_cache_frame_of(&big, big.nblocks - 1), ==,
                     KONA_NO_FRAME);
    kona_cache_destroy(&small);
    kona_cache_destroy(&big);
}

static void test_install_lookup_drop(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;
    uint32_t f;

    setup(&fx, 1 << 20, 16384, 4096, KONA_POLICY_CLOCK);
    g_assert_cmpuint(c->nframes, ==, 4);
    g_assert_cmpuint(kona_cache_frame_of(c, 7), ==, KONA_NO_FRAME);
    f = bring_in(c, 7);
    g_assert_cmpuint(kona_cache_frame_of(c, 7), ==, f);
    g_assert_cmpuint(kona_cache_block_of(c, 7 * 4096 + 5), ==, 7);
    g_assert_cmpuint(kona_cache_resident(c), ==, 1);
    kona_cache_drop(c, f);
    g_assert_cmpuint(kona_cache_frame_of(c, 7), ==, KONA_NO_FRAME);
    g_assert_cmpuint(kona_cache_resident(c), ==, 0);
    for (uint64_t b = 0; b < 4; b++) {
        bring_in(c, b);
    }
    g_assert_cmpuint(kona_cache_take_free(c), ==, KONA_NO_FRAME);
    teardown(&fx);
}

static void test_clock_second_chance(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;
    uint32_t f[4], v;

    setup(&fx, 1 << 20, 16384, 4096, KONA_POLICY_CLOCK);
    for (int i = 0; i < 4; i++) {
        f[i] = bring_in(c, i);
    }
    /* Every frame was just accessed: one sweep clears, then frame 0. */
    v = kona_cache_pick_victim(c);
    g_assert_cmpuint(c->frames[v].block, ==, 0);
    /* Blocks 1 and 3 touched again: the hand skips them, takes 2. */
    kona_cache_touch(c, f[1]);
    kona_cache_touch(c, f[3]);
    kona_cache_touch(c, f[0]);
    v = kona_cache_pick_victim(c);
    g_assert_cmpuint(c->frames[v].block, ==, 2);
    teardown(&fx);
}

static void test_fifo_order(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;

    setup(&fx, 1 << 20, 16384, 4096, KONA_POLICY_FIFO);
    for (int i = 0; i < 4; i++) {
        bring_in(c, 10 + i);
    }
    /* Access bits do not matter to FIFO. */
    kona_cache_touch(c, kona_cache_frame_of(c, 10));
    for (int i = 0; i < 8; i++) {
        uint32_t v = kona_cache_pick_victim(c);

        g_assert_cmpuint(c->frames[v].block, ==, 10 + i);
        kona_cache_drop(c, v);
        bring_in(c, 14 + i);
    }
    teardown(&fx);
}

static void test_random_policy_evicts_resident(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;

    setup(&fx, 1 << 20, 64 * 4096, 4096, KONA_POLICY_RANDOM);
    for (int i = 0; i < 1000; i++) {
        uint64_t b = g_random_int_range(0, 256);
        uint32_t f = kona_cache_frame_of(c, b);

        if (f == KONA_NO_FRAME) {
            f = bring_in(c, b);
        }

        g_assert_true(c->frames[f].resident);
        g_assert_cmpuint(kona_cache_frame_of(c, b), ==, f);
    }
    g_assert_cmpuint(kona_cache_resident(c), ==, 64);
    teardown(&fx);
}

static void test_dirty_and_writeback(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;
    uint64_t hist[65] = { 0 };
    KonaWriteback wb;
    uint32_t f;

    /* 16 KiB blocks: four 4 KiB pages per block. */
    setup(&fx, 1 << 20, 4 * 16384, 16384, KONA_POLICY_CLOCK);
    f = bring_in(c, 3);
    g_assert_cmpuint(kona_cache_mark_dirty(c, f, 0, 8), ==, 1);
    g_assert_cmpuint(kona_cache_mark_dirty(c, f, 60, 8), ==, 1);   /* 0, 1 */
    g_assert_cmpuint(kona_cache_mark_dirty(c, f, 8192, 4096), ==, 64);
    g_assert_cmpuint(kona_cache_mark_dirty(c, f, 16383, 1), ==, 1);
    g_assert_cmpuint(c->dirty_lines, ==, 67);
    g_assert_cmpuint(c->dirty_frames, ==, 1);
    g_assert_cmphex(kona_cache_page_mask(c, f, 0), ==, 3);
    g_assert_cmphex(kona_cache_page_mask(c, f, 1), ==, 0);
    g_assert_cmphex(kona_cache_page_mask(c, f, 2), ==, ~0ull);
    g_assert_cmphex(kona_cache_page_mask(c, f, 3), ==, 1ull << 63);
    g_assert_cmpuint(kona_cache_block_pages(c), ==, 4);
    g_assert_cmpuint(kona_cache_page_base(c, f), ==, 3 * 16384);

    /* Media view: group = 4 KiB of media. */
    g_assert_cmphex(kona_cache_dirty_group(c, 12), ==, 3);
    g_assert_cmphex(kona_cache_dirty_group(c, 14), ==, ~0ull);
    g_assert_cmphex(kona_cache_dirty_group(c, 11), ==, 0);
    g_assert_cmpuint(kona_cache_count_dirty(c, 0, 1 << 20), ==, 67);
    g_assert_cmpuint(kona_cache_count_dirty(c, 3 * 16384 + 64, 64), ==, 1);

    wb = kona_cache_clean(c, f, hist);
    g_assert_cmpuint(wb.lines, ==, 67);
    g_assert_cmpuint(wb.pages, ==, 3);
    g_assert_cmpuint(wb.huge_pages, ==, 1);
    g_assert_cmpuint(hist[1], ==, 1);
    g_assert_cmpuint(hist[2], ==, 1);
    g_assert_cmpuint(hist[64], ==, 1);
    g_assert_cmpuint(c->dirty_lines, ==, 0);
    g_assert_cmpuint(c->dirty_frames, ==, 0);
    wb = kona_cache_clean(c, f, hist);
    g_assert_cmpuint(wb.lines, ==, 0);
    teardown(&fx);
}

/* Write back @f (dirty or not): the 2 MiB pages it counts. */
static uint64_t wb_huge(KonaCache *c, uint32_t f)
{
    return kona_cache_clean(c, f, NULL).huge_pages;
}

/*
 * The 2 MiB counterfactual: a 2 MiB page costs one write-back when one of
 * its blocks is written back if a line of it became dirty since it was
 * last counted, however many of its blocks are written back.
 * Hand-computed patterns, 4 KiB blocks.
 */
static void test_hugepage_writeback(void)
{
    const uint64_t hp = 512;                    /* blocks per 2 MiB */
    KonaCache cache, *c = &cache;
    uint32_t a, b, d, e;

    kona_cache_init(c, 64 << 20, 64 * 4096, 4096, KONA_POLICY_CLOCK, NULL);
    g_assert_cmpuint(c->nhuge, ==, 32);
    a = bring_in(c, 0);
    b = bring_in(c, 511);                       /* both in 2 MiB page 0 */
    d = bring_in(c, hp);                        /* 2 MiB page 1 */
    e = bring_in(c, 31 * hp + 7);               /* the last 2 MiB page */

    /* Two blocks of one page written back: 2 MiB once. */
    kona_cache_mark_dirty(c, a, 0, 64);
    kona_cache_mark_dirty(c, b, 64, 4000);
    g_assert_cmpuint(wb_huge(c, a), ==, 1);
    g_assert_cmpuint(wb_huge(c, b), ==, 0);
    /* Clean frames cost nothing and change nothing. */
    g_assert_cmpuint(wb_huge(c, a), ==, 0);
    g_assert_cmpuint(wb_huge(c, d), ==, 0);

    /* Dirtied again after both were cleaned: 2 MiB again. */
    kona_cache_mark_dirty(c, b, 0, 1);
    kona_cache_mark_dirty(c, a, 0, 1);
    g_assert_cmpuint(wb_huge(c, b), ==, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 0);

    /* Two different 2 MiB pages: 4 MiB. */
    kona_cache_mark_dirty(c, a, 0, 1);
    kona_cache_mark_dirty(c, d, 0, 1);
    kona_cache_mark_dirty(c, e, 4095, 1);
    g_assert_cmpuint(wb_huge(c, a) + wb_huge(c, d) + wb_huge(c, e), ==, 3);

    /*
     * Dirtied again after its write-back while b stays dirty: the page
     * was written whole at a's write-back and a's new line dirties it
     * again, so the next write-back (b's) writes it again; a's then
     * costs nothing more.
     */
    kona_cache_mark_dirty(c, a, 0, 1);
    kona_cache_mark_dirty(c, b, 0, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 1);
    kona_cache_mark_dirty(c, a, 128, 64);
    g_assert_cmpuint(wb_huge(c, b), ==, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 0);

    /* A hot page that is never completely clean: every round counts. */
    kona_cache_mark_dirty(c, b, 0, 1);
    for (int i = 0; i < 3; i++) {
        kona_cache_mark_dirty(c, a, 0, 1);
        g_assert_cmpuint(wb_huge(c, a), ==, 1);
    }
    /* A store to a line dirty already does not dirty the page again. */
    kona_cache_mark_dirty(c, b, 0, 1);
    g_assert_cmpuint(wb_huge(c, b), ==, 0);

    /* Evicted and fetched again: its new dirty line dirties the page. */
    kona_cache_mark_dirty(c, a, 0, 1);
    kona_cache_mark_dirty(c, b, 0, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 1);
    kona_cache_drop(c, a);
    a = bring_in(c, 0);
    kona_cache_mark_dirty(c, a, 0, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 1);
    g_assert_cmpuint(wb_huge(c, b), ==, 0);

    /* The device's counters reset: a page dirty across it counts again. */
    kona_cache_mark_dirty(c, a, 0, 1);
    kona_cache_mark_dirty(c, b, 0, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 1);
    kona_cache_reset_counterfactuals(c);
    g_assert_cmpuint(wb_huge(c, b), ==, 1);
    g_assert_cmphex(c->huge_dirty[0], ==, 0);
    kona_cache_destroy(c);
}

/* tracking=fast: a line changed back leaves the 2 MiB page clean. */
static void test_hugepage_diff(void)
{
    KonaCache cache, *c = &cache;
    g_autofree uint8_t *now = g_malloc0(4096);
    g_autofree uint8_t *clean = g_malloc0(4096);
    uint32_t a, b;

    kona_cache_init(c, 64 << 20, 8 * 4096, 4096, KONA_POLICY_CLOCK, NULL);
    a = bring_in(c, 2);
    b = bring_in(c, 3);
    now[100] = 1;
    g_assert_cmpuint(kona_cache_diff_dirty(c, a, now, clean), ==, 1);
    g_assert_cmpuint(kona_cache_diff_dirty(c, b, now, clean), ==, 1);
    g_assert_cmpuint(wb_huge(c, a), ==, 1);
    /* Found dirty again, b's line is not new: the page stays clean. */
    g_assert_cmpuint(kona_cache_diff_dirty(c, b, now, clean), ==, 1);
    g_assert_cmphex(c->huge_dirty[0], ==, 0);
    /* Changed back, then changed again: newly dirty. */
    g_assert_cmpuint(kona_cache_diff_dirty(c, b, clean, clean), ==, 0);
    g_assert_cmphex(c->huge_dirty[0], ==, 0);
    g_assert_cmpuint(kona_cache_diff_dirty(c, b, now, clean), ==, 1);
    g_assert_cmphex(c->huge_dirty[0], ==, 1);
    g_assert_cmpuint(wb_huge(c, b), ==, 1);
    /* A second line of b: new. */
    now[4000] = 1;
    g_assert_cmpuint(kona_cache_diff_dirty(c, b, now, clean), ==, 2);
    g_assert_cmphex(c->huge_dirty[0], ==, 1);
    kona_cache_destroy(c);
}

/* Blocks of 64 B and of 2 MiB: the page is found from the block. */
static void test_hugepage_block_sizes(void)
{
    KonaCache cache, *c = &cache;
    uint32_t f[4];

    /* 64 B blocks: 32768 to a 2 MiB page. */
    kona_cache_init(c, 8 << 20, 4096, 64, KONA_POLICY_CLOCK, NULL);
    f[0] = bring_in(c, 0);
    f[1] = bring_in(c, 32767);
    f[2] = bring_in(c, 32768);
    f[3] = bring_in(c, 4 * 32768 - 1);
    for (int i = 0; i < 4; i++) {
        kona_cache_mark_dirty(c, f[i], 0, 64);
    }
    g_assert_cmpuint(wb_huge(c, f[0]) + wb_huge(c, f[1]) + wb_huge(c, f[2]) +
                     wb_huge(c, f[3]), ==, 3);
    kona_cache_destroy(c);

    /* 2 MiB blocks: every write-back of a dirty block is a page's first. */
    kona_cache_init(c, 8 << 20, 4 << 20, 2 << 20, KONA_POLICY_CLOCK, NULL);
    f[0] = bring_in(c, 3);
    for (int i = 0; i < 3; i++) {
        kona_cache_mark_dirty(c, f[0], (2 << 20) - 1, 1);
        g_assert_cmpuint(wb_huge(c, f[0]), ==, 1);
    }
    kona_cache_destroy(c);
}

/* tracking=fast: the dirty lines are the ones that differ from a copy. */
static void test_diff_dirty(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;
    g_autofree uint8_t *now = g_malloc0(8192);
    g_autofree uint8_t *clean = g_malloc0(8192);
    uint32_t f, g;

    setup(&fx, 1 << 20, 4 * 8192, 8192, KONA_POLICY_CLOCK);
    f = bring_in(c, 5);
    g = bring_in(c, 6);
    g_assert_cmpuint(kona_cache_diff_dirty(c, f, now, clean), ==, 0);
    now[0] = 1;                 /* line 0 */
    now[63] = 1;                /* still line 0 */
    now[64 * 70 + 9] = 2;       /* line 70: the second bitmap word */
    now[8191] = 3;              /* line 127 */
    g_assert_cmpuint(kona_cache_diff_dirty(c, f, now, clean), ==, 3);
    g_assert_cmphex(kona_cache_dirty_bits(c, f)[0], ==, 1);
    g_assert_cmphex(kona_cache_dirty_bits(c, f)[1], ==, 1ull << 6 | 1ull << 63);
    g_assert_cmpuint(c->dirty_lines, ==, 3);
    g_assert_cmpuint(c->dirty_frames, ==, 1);
    /* Another frame adds to the gauges; a line changed back leaves. */
    g_assert_cmpuint(kona_cache_diff_dirty(c, g, now, clean), ==, 3);
    g_assert_cmpuint(c->dirty_frames, ==, 2);
    now[0] = now[63] = 0;
    g_assert_cmpuint(kona_cache_diff_dirty(c, f, now, clean), ==, 2);
    g_assert_cmpuint(c->dirty_lines, ==, 5);
    g_assert_cmpuint(kona_cache_count_dirty(c, 5 * 8192, 8192), ==, 2);
    memcpy(clean, now, 8192);
    g_assert_cmpuint(kona_cache_diff_dirty(c, f, now, clean), ==, 0);
    g_assert_cmpuint(c->dirty_lines, ==, 3);
    g_assert_cmpuint(c->dirty_frames, ==, 1);
    teardown(&fx);
}

static void test_subpage_blocks(void)
{
    Fixture fx;
    KonaCache *c = &fx.c;
    uint32_t f;

    /* 1 KiB blocks: block 5 is the second quarter of page 1. */
    setup(&fx, 1 << 20, 8 * 1024, 1024, KONA_POLICY_CLOCK);
    f = bring_in(c, 5);
    kona_cache_mark_dirty(c, f, 0, 1);
    kona_cache_mark_dirty(c, f, 1023, 1);
    g_assert_cmpuint(kona_cache_block_pages(c), ==, 1);
    g_assert_cmpuint(kona_cache_page_base(c, f), ==, 4096);
    g_assert_cmphex(kona_cache_page_mask(c, f, 0), ==,
                    (1ull << 16) | (1ull << 31));
    g_assert_cmphex(kona_cache_dirty_group(c, 1), ==,
                    (1ull << 16) | (1ull << 31));
    f = bring_in(c, 7);
    kona_cache_mark_dirty(c, f, 64, 64);
    g_assert_cmphex(kona_cache_dirty_group(c, 1), ==,
                    (1ull << 16) | (1ull << 31) | (1ull << 49));
    g_assert_cmpuint(kona_cache_count_dirty(c, 4096, 4096), ==, 3);
    teardown(&fx);
}

/* Blocks near the end of 1 TiB: dirty lines counted over ranges, by hand. */
static void test_ranges(void)
{
    const uint64_t media = 1ull << 40;
    const uint64_t b = (media >> 12) - 8;       /* blocks b .. b + 3 */
    const uint64_t a = b << 12;
    KonaCache cache, *c = &cache;
    uint32_t f0, f1, f3;

    kona_cache_init(c, media, 64 * 4096, 4096, KONA_POLICY_CLOCK, NULL);
    f0 = bring_in(c, b);
    f1 = bring_in(c, b + 1);
    bring_in(c, b + 2);                         /* resident, clean */
    f3 = bring_in(c, b + 3);
    kona_cache_mark_dirty(c, f0, 0, 1);                 /* line 0 */
    kona_cache_mark_dirty(c, f0, 4095, 1);              /* line 63 */
    kona_cache_mark_dirty(c, f1, 64, 3 * 64);           /* lines 1..3 */
    kona_cache_mark_dirty(c, f3, 5 * 64 + 7, 2);        /* line 5 */
    bring_in(c, 100);                           /* elsewhere, clean */
    kona_cache_mark_dirty(c, bring_in(c, 101), 0, 4096);

    g_assert_cmphex(kona_cache_dirty_group(c, b), ==, 1ull | 1ull << 63);
    g_assert_cmphex(kona_cache_dirty_group(c, b + 1), ==, 0xe);
    g_assert_cmphex(kona_cache_dirty_group(c, b + 2), ==, 0);
    g_assert_cmphex(kona_cache_dirty_group(c, b + 3), ==, 1ull << 5);
    g_assert_cmphex(kona_cache_dirty_group(c, b + 4), ==, 0);
    g_assert_cmphex(kona_cache_dirty_group(c, 101), ==, ~0ull);
    g_assert_cmphex(kona_cache_dirty_group(c, media >> 12), ==, 0);

    g_assert_cmpuint(kona_cache_count_dirty(c, a, 64), ==, 1);
    g_assert_cmpuint(kona_cache_count_dirty(c, a + 1, 1), ==, 1);
    g_assert_cmpuint(kona_cache_count_dirty(c, a + 64, 4096 - 128), ==, 0);
    /* Across a block boundary: line 63 of b, lines 0 and 1 of b + 1. */
    g_assert_cmpuint(kona_cache_count_dirty(c, a + 4032, 129), ==, 2);
    g_assert_cmpuint(kona_cache_count_dirty(c, a + 4096 + 128, 64), ==, 1);
    g_assert_cmpuint(kona_cache_count_dirty(c, a, 4 * 4096), ==, 6);
    g_assert_cmpuint(kona_cache_count_dirty(c, a + 4096, 3 * 4096 - 1), ==, 4);
    g_assert_cmpuint(kona_cache_count_dirty(c, a + 2 * 4096, 4096), ==, 0);
    /* Whole media (the frames are scanned), and past its end (clipped). */
    g_assert_cmpuint(kona_cache_count_dirty(c, 0, media), ==, 70);
    g_assert_cmpuint(kona_cache_count_dirty(c, a, 1ull << 20), ==, 6);
    g_assert_cmpuint(kona_cache_count_dirty(c, media, 4096), ==, 0);
    g_assert_cmpuint(kona_cache_count_dirty(c, 100 * 4096, 2 * 4096), ==, 64);
    g_assert_cmpuint(kona_cache_count_dirty(c, 0, 0), ==, 0);
    kona_cache_destroy(c);
}

/* Resident frames with blocks in [first, last], the slow way. */
static GArray *frames_in(const KonaCache *c, uint64_t first, uint64_t last)
{
    GArray *a = g_array_new(false, false, sizeof(uint32_t));

    for (uint32_t f = 0; f < c->nframes; f++) {
        if (c->frames[f].resident && c->frames[f].block >= first &&
            c->frames[f].block <= last) {
            g_array_append_val(a, f);
        }
    }
    return a;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Range walks: each resident frame of the range once, by blocks when the
 * range is short, and still right when the caller drops what it is given.
 */
static void test_walk(void)
{
    KonaCache cache, *c = &cache;
    GRand *rnd = g_rand_new_with_seed(11);
    const uint64_t band = 1ull << 27;
    unsigned by_block = 0, by_frame = 0;

    kona_cache_init(c, 1ull << 40, 256 * 4096, 4096, KONA_POLICY_CLOCK, NULL);
    for (int round = 0; round < 400; round++) {
        uint64_t first = band + g_rand_int_range(rnd, 0, 1000);
        uint64_t last = first + (g_rand_boolean(rnd)
                                 ? g_rand_int_range(rnd, 0, 2 * 256 /
                                                    KONA_CACHE_WALK_RATIO)
                                 : g_rand_int_range(rnd, 0, 1 << 20));
        g_autoptr(GArray) want = NULL;
        g_autoptr(GArray) got = g_array_new(false, false, sizeof(uint32_t));
        bool drop = round % 2;
        KonaCacheWalk w;
        uint32_t f;

        /* Fill the cache: mostly blocks near the band, some far away. */
        while ((f = kona_cache_take_free(c)) != KONA_NO_FRAME) {
            uint64_t blk;

            do {
                blk = g_rand_int_range(rnd, 0, 8) ? band +
                      g_rand_int_range(rnd, 0, 1100)
                      : g_rand_int_range(rnd, 0, 1 << 28);
            } while (kona_cache_frame_of(c, blk) != KONA_NO_FRAME);
            kona_cache_install(c, f, blk);
        }
        want = frames_in(c, first, last);
        kona_cache_walk_init(c, &w, first, last);
        g_assert_cmpint(w.by_block, ==,
                        last - first < 256 / KONA_CACHE_WALK_RATIO);
        by_block += w.by_block;
        by_frame += !w.by_block;
        while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) {
            g_array_append_val(got, f);
            if (drop) {
                kona_cache_drop(c, f);
            }
        }
        g_array_sort(got, cmp_u32);
        g_assert_cmpuint(got->len, ==, want->len);
        g_assert_cmpmem(got->data, got->len * 4, want->data, want->len * 4);
        if (drop) {
            g_autoptr(GArray) left = frames_in(c, first, last);

            g_assert_cmpuint(left->len, ==, 0);
            g_assert_cmpuint(kona_cache_resident(c), ==, 256 - want->len);
            check_table(c);
        }
    }
    g_assert_cmpuint(by_block, >, 60);
    g_assert_cmpuint(by_frame, >, 100);
    /* Empty and clipped ranges. */
    {
        KonaCacheWalk w;

        kona_cache_walk_init(c, &w, 5, 4);
        g_assert_cmpuint(kona_cache_walk_next(c, &w), ==, KONA_NO_FRAME);
        kona_cache_walk_init(c, &w, c->nblocks, UINT64_MAX);
        g_assert_cmpuint(kona_cache_walk_next(c, &w), ==, KONA_NO_FRAME);
        kona_cache_walk_init(c, &w, c->nblocks - 1, UINT64_MAX);
        g_assert_true(w.by_block);
    }
    g_rand_free(rnd);
    kona_cache_destroy(c);
}

/* Dirty lines per 64 B line, and the 2 MiB counterfactual, by definition. */
typedef struct Model {
    guint8 *line;
    uint64_t hp_lines[4];       /* dirty lines per 2 MiB page */
    bool hp_dirty[4];           /* a line turned dirty since it counted */
    uint64_t huge;              /* 2 MiB write-backs expected */
    uint64_t lines;             /* lines written back */
} Model;

static void model_dirty(Model *m, uint64_t l)
{
    uint64_t hp = l * 64 / KONA_CACHE_HUGE_SIZE;

    if (!m->line[l]) {
        m->line[l] = 1;
        m->hp_lines[hp]++;
        m->hp_dirty[hp] = true;
    }
}

/* Lines [first, first + n) written back. */
static void model_writeback(Model *m, uint64_t first, uint64_t n)
{
    uint64_t hp = first * 64 / KONA_CACHE_HUGE_SIZE, dirty = 0;

    for (uint64_t l = first; l < first + n; l++) {
        dirty += m->line[l];
        m->line[l] = 0;
    }
    if (dirty) {
        m->huge += m->hp_dirty[hp];
        m->hp_dirty[hp] = false;
        m->hp_lines[hp] -= dirty;
        m->lines += dirty;
    }
}

/* Random dirtying against a per-line model, for several block sizes. */
static void test_random_against_model(gconstpointer data)
{
    uint32_t bs = GPOINTER_TO_UINT(data);
    const uint64_t media = 8 << 20;
    const uint64_t nlines = media / 64;
    g_autofree guint8 *line = g_new0(guint8, nlines);
    g_autofree uint64_t *prefix = g_new0(uint64_t, nlines + 1);
    Model m = { .line = line };
    GRand *rnd = g_rand_new_with_seed(bs);
    uint64_t huge = 0, pages = 0, writebacks = 0;
    Fixture fx;
    KonaCache *c = &fx.c;

    setup(&fx, media, media / 4, bs, KONA_POLICY_CLOCK);
    for (int i = 0; i < 20000; i++) {
        /* Half the writes within 64 KiB of the start of a 2 MiB page. */
        uint64_t addr = g_rand_boolean(rnd)
                        ? g_rand_int_range(rnd, 0, media - 8)
                        : g_rand_int_range(rnd, 0, 4) * KONA_CACHE_HUGE_SIZE +
                          g_rand_int_range(rnd, 0, 65536);
        uint32_t len = g_rand_int_range(rnd, 1, 9);
        uint64_t end = addr + len;

        if (i % 500 == 499) {
            /* A guest CLEAN of one 2 MiB page: it ends up clean. */
            uint64_t hp = g_rand_int_range(rnd, 0, 4);
            uint64_t per = KONA_CACHE_HUGE_SIZE / bs;
            KonaCacheWalk w;
            uint32_t f;

            kona_cache_walk_init(c, &w, hp * per, hp * per + per - 1);
            while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) {
                KonaWriteback wb;

                model_writeback(&m, c->frames[f].block * bs / 64, bs / 64);
                wb = kona_cache_clean(c, f, NULL);
                huge += wb.huge_pages;
                pages += wb.pages;
                writebacks += wb.lines != 0;
            }
            g_assert_cmpuint(m.hp_lines[hp], ==, 0);
        }
        /* Like the device: split at the block boundary. */
        while (addr < end) {
            uint64_t block = addr / bs;
            uint64_t stop = MIN(end, (block + 1) * bs);
            uint32_t f = kona_cache_frame_of(c, block);

            if (f == KONA_NO_FRAME) {
                f = kona_cache_take_free(c);
                if (f == KONA_NO_FRAME) {
                    KonaWriteback wb;

                    f = kona_cache_pick_victim(c);
                    model_writeback(&m, c->frames[f].block * bs / 64,
                                    bs / 64);
                    wb = kona_cache_clean(c, f, NULL);
                    huge += wb.huge_pages;
                    pages += wb.pages;
                    writebacks += wb.lines != 0;
                    kona_cache_drop(c, f);
                    f = kona_cache_take_free(c);
                }
                kona_cache_install(c, f, block);
            }
            kona_cache_mark_dirty(c, f, addr % bs, stop - addr);
            for (uint64_t l = addr / 64; l <= (stop - 1) / 64; l++) {
                model_dirty(&m, l);
            }
            addr = stop;
        }
    }
    for (uint64_t g = 0; g < media / 4096; g++) {
        uint64_t want = 0;

        for (int i = 0; i < 64; i++) {
            want |= (uint64_t)line[g * 64 + i] << i;
        }
        g_assert_cmphex(kona_cache_dirty_group(c, g), ==, want);
    }
    for (uint64_t l = 0; l < nlines; l++) {
        prefix[l + 1] = prefix[l] + line[l];
    }
    g_assert_cmpuint(c->dirty_lines, ==, prefix[nlines]);
    g_assert_cmpuint(kona_cache_count_dirty(c, 0, media), ==, prefix[nlines]);
    /* Ranges of every length: within a line, a block, many blocks. */
    for (int i = 0; i < 3000; i++) {
        uint64_t addr = g_rand_int_range(rnd, 0, media);
        uint64_t max = (uint64_t[]){ 64, 4 * bs, media }[i % 3];
        uint64_t len = g_rand_int_range(rnd, 1, MIN(max, media - addr) + 1);

        g_assert_cmpuint(kona_cache_count_dirty(c, addr, len), ==,
                         prefix[(addr + len - 1) / 64 + 1] - prefix[addr / 64]);
    }
    /* Flush: every dirty frame written back, in frame order. */
    for (uint32_t f = 0; f < c->nframes; f++) {
        if (c->frames[f].resident) {
            KonaWriteback wb;

            model_writeback(&m, c->frames[f].block * bs / 64, bs / 64);
            wb = kona_cache_clean(c, f, NULL);
            huge += wb.huge_pages;
            pages += wb.pages;
            writebacks += wb.lines != 0;
        }
    }
    g_test_message("%u B blocks: %" G_GUINT64_FORMAT " write-backs, %"
                   G_GUINT64_FORMAT " of a 2 MiB page", bs, writebacks, huge);
    g_assert_cmpuint(huge, ==, m.huge);
    g_assert_cmpuint(c->dirty_lines, ==, 0);
    /*
     * Never below the dirty lines themselves; and, blocks being whole
     * pages, never below the 4 KiB counterfactual: between two counted
     * write-backs of a 2 MiB page each of its blocks goes out at most once.
     */
    g_assert_cmpuint(huge * (KONA_CACHE_HUGE_SIZE / 64), >=, m.lines);
    if (bs >= KONA_CACHE_PAGE_SIZE) {
        g_assert_cmpuint(huge * (KONA_CACHE_HUGE_SIZE / KONA_CACHE_PAGE_SIZE),
                         >=, pages);
    }
    /* Blocks smaller than 2 MiB share pages: fewer than one per block. */
    g_assert_cmpuint(huge, >=, 40);
    g_assert_cmpuint(huge, <, writebacks);
    g_rand_free(rnd);
    teardown(&fx);
}

int main(int argc, char **argv)
{
    static const uint32_t sizes[] = { 64, 1024, 4096, 65536 };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kona-cache/geometry", test_geometry);
    g_test_add_func("/kona-cache/table/size", test_table_size);
    g_test_add_func("/kona-cache/table/model", test_table_against_model);
    g_test_add_func("/kona-cache/table/collisions", test_table_collisions);
    g_test_add_func("/kona-cache/terabyte", test_terabyte);
    g_test_add_func("/kona-cache/ranges", test_ranges);
    g_test_add_func("/kona-cache/walk", test_walk);
    g_test_add_func("/kona-cache/install-lookup-drop",
                    test_install_lookup_drop);
    g_test_add_func("/kona-cache/clock-second-chance",
                    test_clock_second_chance);
    g_test_add_func("/kona-cache/fifo-order", test_fifo_order);
    g_test_add_func("/kona-cache/random-policy",
                    test_random_policy_evicts_resident);
    g_test_add_func("/kona-cache/dirty-and-writeback",
                    test_dirty_and_writeback);
    g_test_add_func("/kona-cache/subpage-blocks", test_subpage_blocks);
    g_test_add_func("/kona-cache/diff-dirty", test_diff_dirty);
    g_test_add_func("/kona-cache/hugepage/writeback",
                    test_hugepage_writeback);
    g_test_add_func("/kona-cache/hugepage/diff", test_hugepage_diff);
    g_test_add_func("/kona-cache/hugepage/block-sizes",
                    test_hugepage_block_sizes);
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree char *name = g_strdup_printf("/kona-cache/model/%u",
                                                sizes[i]);

        g_test_add_data_func(name, GUINT_TO_POINTER(sizes[i]),
                             test_random_against_model);
    }
    return g_test_run();
}

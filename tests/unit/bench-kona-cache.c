/*
 * What the cache's bookkeeping (hw-kona/kona-cache.c) costs: a benchmark,
 * not a test (meson builds it, does not run it).
 *
 *   build/kona/tests/bench-kona-cache
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
 *       build/kona/tests/bench-kona-cache --callgrind
 *   callgrind_annotate /tmp/cg.out | grep lookups_
 *
 * (a) Metadata bytes of a 64 MiB cache of 4 KiB blocks over 256 MiB,
 *     64 GiB and 1 TiB of media: the dense block table it had before
 *     (computed: 4 bytes a block, 32-byte frames) and now
 *     (kona_cache_metadata_bytes()).
 * (b) kona_cache_frame_of() for hits over a full cache, ns per lookup,
 *     against a copy of the old lookup (one load from a dense table),
 *     random and sequential, alone and with the access bit the device
 *     sets on every hit.  Old and new alternate and the best of the
 *     rounds counts: this machine's speed drifts by 2x.  --callgrind runs
 *     each loop once, for instruction counts.
 * (c) A range walk's two ways: scanning a frame against looking up a
 *     block that is not resident (KONA_CACHE_WALK_RATIO).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kona-cache.h"

#define CACHE_SIZE      (64ull << 20)
#define BLOCK_SIZE      4096u
#define NKEYS           (1u << 20)

/* The old KonaFrame: block, bitmap pointer, ndirty, flags, FIFO links. */
#define OLD_FRAME_BYTES 32

/* The old layout: table + frames + bitmaps + free stack. */
static uint64_t old_metadata_bytes(uint64_t media, uint64_t cache,
                                   uint32_t bs)
{
    uint64_t nblocks = media / bs, nframes = cache / bs;
    uint64_t words = (bs / KONA_CACHE_LINE_SIZE + 63) / 64;

    return sizeof(KonaCache) + nblocks * sizeof(uint32_t) +
           nframes * (OLD_FRAME_BYTES + words * 8 + sizeof(uint32_t));
}

static void report_metadata(void)
{
    static const struct {
        const char *name;
        uint64_t media;
    } sizes[] = {
        { "256 MiB", 256ull << 20 },
        { "64 GiB", 64ull << 30 },
        { "256 GiB", 256ull << 30 },
        { "1 TiB", 1ull << 40 },
    };

    printf("(a) metadata of a 64 MiB cache, 4 KiB blocks (bytes)\n");
    printf("%-8s %14s %10s %10s %10s\n", "media", "old", "new",
           "old/cache", "new/cache");
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint64_t old = old_metadata_bytes(sizes[i].media, CACHE_SIZE,
                                          BLOCK_SIZE);
        KonaCache c;
        size_t now;

        kona_cache_init(&c, sizes[i].media, CACHE_SIZE, BLOCK_SIZE,
                        KONA_POLICY_CLOCK, NULL);
        now = kona_cache_metadata_bytes(&c);
        printf("%-8s %13" G_GUINT64_FORMAT "%s %10zu %9.2f%% %9.2f%%\n",
               sizes[i].name, old,
               sizes[i].media / BLOCK_SIZE > (1ull << 26) ? "*" : " ", now,
               100.0 * old / CACHE_SIZE, 100.0 * now / CACHE_SIZE);
        kona_cache_destroy(&c);
    }
    printf("* refused before (more than 2^26 blocks); what it would take\n\n");
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The old lookup, kept for the comparison. */
static inline uint32_t old_frame_of(const uint32_t *table, uint64_t block)
{
    return table[block];
}

static uint64_t __attribute__((noinline))
lookups_old(const uint32_t *table, const uint64_t *keys, size_t n)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        sum += old_frame_of(table, keys[i]);
    }
    return sum;
}

static uint64_t __attribute__((noinline))
lookups_new(const KonaCache *c, const uint64_t *keys, size_t n)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        sum += kona_cache_frame_of(c, keys[i]);
    }
    return sum;
}

/* The device's hit path: the lookup, then the frame's access bit. */
static uint64_t __attribute__((noinline))
lookups_old_touch(KonaCache *c, const uint32_t *table, const uint64_t *keys,
                  size_t n)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t f = old_frame_of(table, keys[i]);

        kona_cache_touch(c, f);
        sum += f;
    }
    return sum;
}

static uint64_t __attribute__((noinline))
lookups_new_touch(KonaCache *c, const uint64_t *keys, size_t n)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t f = kona_cache_frame_of(c, keys[i]);

        kona_cache_touch(c, f);
        sum += f;
    }
    return sum;
}

typedef struct Setup {
    const char *name;
    uint64_t media;
    bool contiguous;            /* resident blocks 0 .. nframes - 1 */
} Setup;

/* A full cache over @s, and the old table describing the same frames. */
static uint32_t *fill(KonaCache *c, const Setup *s, GRand *rnd)
{
    uint32_t *table;
    uint32_t f;

    kona_cache_init(c, s->media, CACHE_SIZE, BLOCK_SIZE, KONA_POLICY_CLOCK,
                    NULL);
    table = g_new(uint32_t, c->nblocks);
    memset(table, 0xff, c->nblocks * sizeof(uint32_t));
    for (uint64_t i = 0; (f = kona_cache_take_free(c)) != KONA_NO_FRAME;
         i++) {
        uint64_t b = i;

        while (!s->contiguous) {
            b = ((uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd)) %
                c->nblocks;
            if (table[b] == KONA_NO_FRAME) {
                break;
            }
        }
        kona_cache_install(c, f, b);
        table[b] = f;
    }
    return table;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Keys: random resident blocks, or 8-byte steps through them in order. */
static void make_keys(const KonaCache *c, uint64_t *keys, bool sequential,
                      GRand *rnd)
{
    g_autofree uint64_t *sorted = g_new(uint64_t, c->nframes);

    for (uint32_t f = 0; f < c->nframes; f++) {
        sorted[f] = c->frames[f].block;
    }
    if (!sequential) {
        for (size_t i = 0; i < NKEYS; i++) {
            keys[i] = sorted[g_rand_int_range(rnd, 0, c->nframes)];
        }
        return;
    }
    qsort(sorted, c->nframes, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < NKEYS; i++) {
        keys[i] = sorted[i / (BLOCK_SIZE / 8) % c->nframes];
    }
}

static void report_lookups(bool callgrind)
{
    static const Setup setups[] = {
        { "256 MiB", 256ull << 20, false },
        { "64 GiB", 64ull << 30, false },
        { "64 GiB, blocks 0..n", 64ull << 30, true },
        { "256 GiB", 256ull << 30, false },
    };
    g_autofree uint64_t *keys = g_new(uint64_t, NKEYS);
    GRand *rnd = g_rand_new_with_seed(1);
    const int rounds = callgrind ? 1 : 15;
    const size_t n = callgrind ? NKEYS / 16 : NKEYS;

    if (!callgrind) {
        printf("(b) hits over a full 64 MiB cache (16384 frames), "
               "ns per lookup, best of %d\n", rounds);
        printf("%-20s %-10s %8s %8s %8s %12s %12s\n", "media", "keys",
               "old", "new", "new/old", "old+touch", "new+touch");
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(setups); i++) {
        for (int seq = 0; seq < 2; seq++) {
            double best[4] = { 1e30, 1e30, 1e30, 1e30 };
            uint64_t sums[4];
            KonaCache c;
            uint32_t *table = fill(&c, &setups[i], rnd);

            make_keys(&c, keys, seq, rnd);
            for (int r = 0; r < rounds; r++) {
                uint64_t t[5];

                t[0] = now_ns();
                sums[0] = lookups_old(table, keys, n);
                t[1] = now_ns();
                sums[1] = lookups_new(&c, keys, n);
                t[2] = now_ns();
                sums[2] = lookups_old_touch(&c, table, keys, n);
                t[3] = now_ns();
                sums[3] = lookups_new_touch(&c, keys, n);
                t[4] = now_ns();
                for (int k = 0; k < 4; k++) {
                    best[k] = MIN(best[k], (double)(t[k + 1] - t[k]) / n);
                }
            }
            /* Both tables answer the same. */
            g_assert_cmpuint(sums[0], ==, sums[1]);
            g_assert_cmpuint(sums[2], ==, sums[3]);
            if (!callgrind) {
                printf("%-20s %-10s %8.2f %8.2f %7.2fx %12.2f %12.2f\n",
                       setups[i].name, seq ? "sequential" : "random",
                       best[0], best[1], best[1] / best[0], best[2],
                       best[3]);
            }
            g_free(table);
            kona_cache_destroy(&c);
        }
    }
    if (callgrind) {
        printf("callgrind: each lookups_* function ran %zu lookups x %zu "
               "runs (%zu calls)\n", n, G_N_ELEMENTS(setups) * 2,
               G_N_ELEMENTS(setups) * 2 * n);
    }
    g_rand_free(rnd);
    printf("\n");
}

static uint64_t __attribute__((noinline))
walk(const KonaCache *c, uint64_t first, uint64_t last)
{
    KonaCacheWalk w;
    uint64_t n = 0;

    kona_cache_walk_init(c, &w, first, last);
    while (kona_cache_walk_next(c, &w) != KONA_NO_FRAME) {
        n++;
    }
    return n;
}

/* What a range walk pays per frame scanned and per block looked up. */
static void report_walk(void)
{
    const Setup s = { "64 GiB", 64ull << 30, false };
    GRand *rnd = g_rand_new_with_seed(2);
    double frame_ns = 1e30, block_ns = 1e30;
    KonaCache c;
    g_autofree uint32_t *table = fill(&c, &s, rnd);
    /* Ranges just past and just under the switch-over. */
    uint64_t nframe_range = c.nframes, nblock_range = c.nframes / 8;

    for (int r = 0; r < 15; r++) {
        uint64_t t0 = now_ns(), t1, t2;
        uint64_t first = g_rand_int_range(rnd, 0, c.nblocks - nframe_range);

        walk(&c, first, first + nframe_range - 1);
        t1 = now_ns();
        walk(&c, first, first + nblock_range - 1);
        t2 = now_ns();
        frame_ns = MIN(frame_ns, (double)(t1 - t0) / c.nframes);
        block_ns = MIN(block_ns, (double)(t2 - t1) / nblock_range);
    }
    printf("(c) range walk over 16384 frames: %.2f ns per frame scanned, "
           "%.2f ns per block looked up (ratio %.1f)\n", frame_ns, block_ns,
           block_ns / frame_ns);
    kona_cache_destroy(&c);
    g_rand_free(rnd);
}

int main(int argc, char **argv)
{
    bool callgrind = argc > 1 && !strcmp(argv[1], "--callgrind");

    if (!callgrind) {
        report_metadata();
    }
    report_lookups(callgrind);
    if (!callgrind) {
        report_walk();
    }
    return 0;
}

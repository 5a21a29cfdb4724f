/*
 * kona-sort: a sort and a hash join, their data on one NUMA node.
 *
 *   kona-sort sort --node N [--mib M]
 *   kona-sort join --node N [--mib M]
 *
 * --mib M is the whole footprint on the node, so that a cache sized as a
 * fraction of M is that fraction of what the workload touches.
 *
 * sort (workload "sort"): M/2 MiB of random 64-bit keys, sorted by an LSD
 * radix sort (11-bit digits, 6 passes) into an M/2 MiB buffer and back,
 * both on the node.  Verified: sorted, and the keys' sum and xor
 * unchanged.
 * Metrics: seconds (the sort), throughput (Mkeys/s).
 *
 * join (workload "hash-join"): a build relation of M/8 MiB of 16-byte
 * (key, payload) tuples, a linear-probing hash table of twice as many slots
 * (M/4 MiB) and a probe relation of 5M/8 MiB, all on the node; half the probe
 * tuples, chosen at random, carry a build key.  Verified: the number of
 * matches and the sum of the matched payloads are the ones the generator
 * counted.  Metrics: seconds (build + probe), throughput (Mprobes/s, the
 * probe phase alone).
 *
 * Loads and stores to the node (counted with valgrind's lackey), which is
 * what a run on the slow node costs: sort 15 per key (13 of them in the
 * sort), about 1M per MiB of M; join about 0.3M per MiB (0.2M timed).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "kona-wl.h"

#define RADIX_BITS 11
#define RADIX_BUCKETS (1 << RADIX_BITS)
#define RADIX_PASSES 6 /* even, so that the keys end where they started */
#define SORT_SEED 0x50271ull
#define JOIN_SEED 0x10171ull
#define PAYLOAD_SALT 0x7061796c6f6164ull

static const char usage[] =
    "usage: kona-sort sort|join --node N [--mib M]\n"
    "  sort   radix-sort M/2 MiB of random 64-bit keys through an M/2 MiB\n"
    "         buffer (workload sort)\n"
    "  join   hash join: build M/8 MiB, table M/4 MiB, probe 5M/8 MiB of\n"
    "         16-byte tuples, 50% of the probes match (workload hash-join)\n"
    "  --node N   NUMA node for every array (required)\n"
    "  --mib M    footprint on the node, MiB (default 4)\n";

typedef struct Tuple {
    uint64_t key;
    uint64_t payload;
} Tuple;

static void radix_sort(uint64_t *keys, uint64_t *tmp, size_t n)
{
    /* Bookkeeping, not data: in ordinary memory, like a real sort's. */
    static size_t count[RADIX_PASSES][RADIX_BUCKETS];
    uint64_t *src = keys, *dst = tmp, *t;

    memset(count, 0, sizeof(count));
    /* Every digit's histogram in one read pass, not one per digit. */
    for (size_t i = 0; i < n; i++) {
        uint64_t k = keys[i];

        for (int p = 0; p < RADIX_PASSES; p++) {
            count[p][(k >> (p * RADIX_BITS)) & (RADIX_BUCKETS - 1)]++;
        }
    }
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *pos = count[p], sum = 0;
        int shift = p * RADIX_BITS;

        for (int b = 0; b < RADIX_BUCKETS; b++) {
            size_t c = pos[b];

            pos[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t k = src[i];

            dst[pos[(k >> shift) & (RADIX_BUCKETS - 1)]++] = k;
        }
        t = src;
        src = dst;
        dst = t;
    }
}

static void run_sort(int node, long mib)
{
    size_t n = ((size_t)mib << 20) / 2 / sizeof(uint64_t);
    uint64_t *keys = kona_wl_alloc(n * sizeof(uint64_t), node);
    uint64_t *tmp = kona_wl_alloc(n * sizeof(uint64_t), node);
    uint64_t seed = SORT_SEED, sum = 0, xor = 0, vsum = 0, vxor = 0, prev;
    double t0, sort_s;

    t0 = kona_wl_now();
    for (size_t i = 0; i < n; i++) {
        uint64_t k = kona_wl_rand(&seed);

        keys[i] = k;
        sum += k;
        xor ^= k;
    }
    kona_wl_phase("sort", "generate", kona_wl_now() - t0);

    t0 = kona_wl_now();
    radix_sort(keys, tmp, n);
    sort_s = kona_wl_now() - t0;
    kona_wl_phase("sort", "sort", sort_s);

    t0 = kona_wl_now();
    prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = keys[i];  /* one load per key */

        if (k < prev) {
            kona_wl_fail("sort", "keys[%zu] > keys[%zu]", i - 1, i);
        }
        prev = k;
        vsum += k;
        vxor ^= k;
    }
    if (vsum != sum || vxor != xor) {
        kona_wl_fail("sort", "checksum changed (sum %016llx -> %016llx, "
                     "xor %016llx -> %016llx)", (unsigned long long)sum,
                     (unsigned long long)vsum, (unsigned long long)xor,
                     (unsigned long long)vxor);
    }
    kona_wl_phase("sort", "verify", kona_wl_now() - t0);
    kona_wl_info("sort", "keys=%zu sum=%016llx xor=%016llx", n,
                 (unsigned long long)sum, (unsigned long long)xor);
    kona_wl_result("sort", "seconds", sort_s, "s");
    kona_wl_result("sort", "throughput", n / sort_s / 1e6, "Mkeys/s");
}

/*
 * Build keys are mix64(2i + 2), keys that match nothing mix64(odd): mix64
 * is a bijection with mix64(0) == 0, so keys are distinct, never 0 (the
 * empty slot) and a non-matching key can never hit.
 */
static uint64_t build_payload(uint64_t i)
{
    return kona_wl_mix64(i ^ PAYLOAD_SALT);
}

static size_t slot_of(uint64_t key, int bits)
{
    return (key * 0x9e3779b97f4a7c15ull) >> (64 - bits);
}

static void run_join(int node, long mib)
{
    size_t nbuild = ((size_t)mib << 20) / 8 / sizeof(Tuple);
    size_t nprobe = ((size_t)mib << 20) * 5 / 8 / sizeof(Tuple);
    int bits = 1;
    size_t nslots, mask, matches = 0, want_matches = 0;
    Tuple *build, *probe, *table;
    uint64_t seed = JOIN_SEED, psum = 0, want_psum = 0;
    double t0, build_s, probe_s;

    while (((size_t)1 << bits) < 2 * nbuild) {
        bits++;
    }
    nslots = (size_t)1 << bits;
    mask = nslots - 1;
    build = kona_wl_alloc(nbuild * sizeof(Tuple), node);
    probe = kona_wl_alloc(nprobe * sizeof(Tuple), node);
    table = kona_wl_alloc(nslots * sizeof(Tuple), node);

    t0 = kona_wl_now();
    for (size_t i = 0; i < nbuild; i++) {
        build[i].key = kona_wl_mix64(2 * i + 2);
        build[i].payload = build_payload(i);
    }
    for (size_t j = 0; j < nprobe; j++) {
        uint64_t r = kona_wl_rand(&seed);

        if (r & 1) {
            uint64_t i = kona_wl_below(&seed, nbuild);

            probe[j].key = kona_wl_mix64(2 * i + 2);
            want_matches++;
            want_psum += build_payload(i);
        } else {
            probe[j].key = kona_wl_mix64((r >> 1) | 1);
        }
        probe[j].payload = j;
    }
    kona_wl_phase("hash-join", "generate", kona_wl_now() - t0);

    t0 = kona_wl_now();
    for (size_t i = 0; i < nbuild; i++) {
        uint64_t key = build[i].key;
        size_t s = slot_of(key, bits);

        while (table[s].key) {
            s = (s + 1) & mask;
        }
        table[s].key = key;
        table[s].payload = build[i].payload;
    }
    build_s = kona_wl_now() - t0;
    kona_wl_phase("hash-join", "build", build_s);

    t0 = kona_wl_now();
    for (size_t j = 0; j < nprobe; j++) {
        uint64_t key = probe[j].key;

        for (size_t s = slot_of(key, bits); table[s].key; s = (s + 1) & mask) {
            if (table[s].key == key) {
                matches++;
                psum += table[s].payload;
                break;
            }
        }
    }
    probe_s = kona_wl_now() - t0;
    kona_wl_phase("hash-join", "probe", probe_s);

    if (matches != want_matches || psum != want_psum) {
        kona_wl_fail("hash-join", "%zu matches (payload sum %016llx), "
                     "expected %zu (%016llx)", matches,
                     (unsigned long long)psum, want_matches,
                     (unsigned long long)want_psum);
    }
    kona_wl_info("hash-join", "build=%zu probe=%zu slots=%zu matches=%zu "
                 "payload-sum=%016llx", nbuild, nprobe, nslots, matches,
                 (unsigned long long)psum);
    kona_wl_result("hash-join", "seconds", build_s + probe_s, "s");
    kona_wl_result("hash-join", "throughput", nprobe / probe_s / 1e6,
                   "Mprobes/s");
}

int main(int argc, char **argv)
{
    static const char *const subcommands[] = { "sort", "join", NULL };
    long node = -1, mib = 4;
    const KonaWlOpt opts[] = {
        { "node", &node, 0, 63 },
        { "mib", &mib, 1, 65536 },
        { NULL },
    };

    kona_wl_prog = "kona-sort";
    if (kona_wl_args(argc, argv, subcommands, opts, usage) == 0) {
        run_sort(node, mib);
    } else {
        run_join(node, mib);
    }
    return 0;
}

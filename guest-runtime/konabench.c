/*
 * konabench: in-guest memory micro-benchmark, for one NUMA node at a time.
 *
 *   konabench NODE MIB [REPS]
 *
 * Maps MIB MiB, binds it to NODE (mbind, MPOL_BIND) and measures, printing
 * one "RESULT node=N metric=NAME value=V unit=U" line each:
 *   first-touch   faulting the pages in (the kernel zeroes them)
 *   seq-write     8-byte stores over the buffer, MB/s
 *   seq-read      8-byte loads over the buffer, MB/s
 *   memset        libc memset, MB/s
 *   chase         dependent loads along a random cycle at 64 B stride, ns
 *                 (checked: the cycle ends where it began, or konabench
 *                 fails)
 * Each measurement covers the whole buffer at least once and runs for at
 * least 0.5 s; it is repeated REPS times (default 3), in rounds of all of
 * them, and the best kept: the speed of a (virtual) host drifts, here by
 * up to 2x over seconds, and the best of tries spread over the run is the
 * closest to what the code itself costs.  Static; needs no
 * libnuma.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kona-node-mem.h"

#define MIN_SECONDS 0.5
#define DEFAULT_REPS 3
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void result(int node, const char *metric, double value,
                   const char *unit)
{
    printf("RESULT node=%d metric=%s value=%.3f unit=%s\n", node, metric,
           value, unit);
    fflush(stdout);
}

/* Keeps the compiler from dropping loads whose values are unused. */
static volatile uint64_t sink;

typedef void (*PassFn)(uint64_t *buf, size_t words);

static void pass_write(uint64_t *buf, size_t words)
{
    for (size_t i = 0; i < words; i++) {
        buf[i] = i;
    }
}

static void pass_read(uint64_t *buf, size_t words)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < words; i++) {
        sum += buf[i];
    }
    sink = sum;
}

static void pass_memset(uint64_t *buf, size_t words)
{
    memset(buf, 0x5a, words * 8);
}

/* MB/s of @fn over the whole buffer, repeated for at least MIN_SECONDS. */
static double bandwidth(PassFn fn, uint64_t *buf, size_t bytes)
{
    double t0 = now(), t;
    size_t done = 0;

    do {
        fn(buf, bytes / 8);
        done += bytes;
        t = now() - t0;
    } while (t < MIN_SECONDS);
    return done / t / 1e6;
}

/* Lay a random cycle (Sattolo) of 64 B slots over the buffer. */
static void chase_setup(uint64_t *buf, size_t bytes)
{
    size_t n = bytes / 64, stride = 64 / 8;
    size_t *order = malloc(n * sizeof(*order));

    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }
    srand(42);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand() % i;
        size_t tmp = order[i];

        order[i] = order[j];
        order[j] = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        buf[order[i] * stride] = order[(i + 1) % n] * stride;
    }
    free(order);
}

/*
 * ns per dependent load along the cycle, for at least MIN_SECONDS; 0 if
 * the cycle is broken.  One cycle through all n slots ends where it
 * began: a slot that read back anything but what chase_setup stored would
 * end it elsewhere (or fault), and a fast time would mean a wrong one.
 */
static double chase(uint64_t *buf, size_t bytes)
{
    size_t n = bytes / 64;
    uint64_t p = 0, steps = 0;
    double t0 = now(), t;

    do {
        for (size_t i = 0; i < n; i++) {
            p = buf[p];
        }
        steps += n;
        t = now() - t0;
    } while (t < MIN_SECONDS && p == 0);
    sink = p;
    return p == 0 ? t / steps * 1e9 : 0;
}

int main(int argc, char **argv)
{
    int node, reps = DEFAULT_REPS;
    size_t bytes;
    uint64_t *buf;
    double t0, t;
    double best_write = 0, best_read = 0, best_memset = 0, best_chase = 0;

    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: konabench NODE MIB [REPS]\n");
        return 2;
    }
    node = atoi(argv[1]);
    bytes = (size_t)atoi(argv[2]) << 20;
    if (argc == 4) {
        reps = atoi(argv[3]);
    }
    if (node < 0 || node >= 64 || bytes == 0 || reps < 1 || reps > 100) {
        fprintf(stderr, "konabench: bad node, size or repetitions\n");
        return 2;
    }
    /* Small pages: a huge page's first touch would dominate everything. */
    buf = kona_node_map("konabench", node, bytes);
    if (!buf) {
        return 1;
    }
    t0 = now();
    for (size_t i = 0; i < bytes / 8; i += 4096 / 8) {
        buf[i] = 1;
    }
    result(node, "first-touch", (now() - t0) * 1e6 / (bytes / 4096),
           "us/page");
    /*
     * Rounds of every measurement rather than each one REPS times in a
     * row: the host's speed drifts over seconds, and this spreads each
     * measurement's tries over the whole run.
     */
    for (int r = 0; r < reps; r++) {
        best_write = MAX(best_write, bandwidth(pass_write, buf, bytes));
        best_read = MAX(best_read, bandwidth(pass_read, buf, bytes));
        best_memset = MAX(best_memset, bandwidth(pass_memset, buf, bytes));
        chase_setup(buf, bytes);
        t = chase(buf, bytes);
        if (t == 0) {
            fprintf(stderr, "konabench: node %d: the chase's cycle is "
                    "broken: memory did not read back what was stored\n",
                    node);
            return 1;
        }
        best_chase = r == 0 ? t : MIN(best_chase, t);
    }
    result(node, "seq-write", best_write, "MB/s");
    result(node, "seq-read", best_read, "MB/s");
    result(node, "memset", best_memset, "MB/s");
    result(node, "chase", best_chase, "ns");
    return 0;
}

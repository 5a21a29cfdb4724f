/*
 * Kona-CXL: the modelled latency of a fetch.
 *
 * The device emulates remote memory whose latency is not this host's: a
 * memnode on the same host answers in a memory copy, one across a real
 * network in tens of microseconds.  The model says how long a fetch of one
 * block should take; a miss then takes max(real cost, modelled latency),
 * so that what the guest measures is the model wherever the host is fast
 * enough, and the real cost (never hidden) where it is not.
 *
 * The model is given at three points, a 64 B line, a 4 KiB block and a
 * 64 KiB block (0: not given), and is linear in the block size between
 * them: latency = a + size / bandwidth, as a network transfer is.  Below
 * the first given point it is that point's value, above the last it goes
 * on with the last segment's slope (flat if only one point is given).
 * The Kona paper's figures are a preset: 2.42 us, 3.11 us, 9.28 us.
 *
 * Pure arithmetic plus a wait: no QEMU dependency, unit-tested outside
 * QEMU's tree.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_LATENCY_H
#define KONA_LATENCY_H

#include <stdbool.h>
#include <stdint.h>

#define KONA_LATENCY_POINTS     3

/* The paper's remote read latencies (ns) at 64 B, 4 KiB and 64 KiB. */
#define KONA_PAPER_LINE_NS      2420
#define KONA_PAPER_PAGE_NS      3110
#define KONA_PAPER_64K_NS       9280
/* The page-fault runtimes the paper compares with (ns per 4 KiB fault). */
#define KONA_LEGOOS_PAGE_NS     10000
#define KONA_INFINISWAP_PAGE_NS 40000

typedef struct KonaLatency {
    uint32_t size[KONA_LATENCY_POINTS];     /* the given points, ascending */
    uint64_t ns[KONA_LATENCY_POINTS];
    unsigned n;
} KonaLatency;

/* A model from the three points (0: not given); all 0: no model. */
void kona_latency_init(KonaLatency *m, uint64_t line_ns, uint64_t page_ns,
                       uint64_t big_ns);

static inline bool kona_latency_enabled(const KonaLatency *m)
{
    return m->n > 0;
}

/* The modelled latency of fetching @size bytes (0 without a model). */
uint64_t kona_latency_ns(const KonaLatency *m, uint64_t size);

/* CLOCK_MONOTONIC in ns. */
int64_t kona_latency_now(void);

/*
 * Wait until kona_latency_now() >= @deadline_ns: sleep while the rest is
 * long, then spin (a sleep overshoots by tens of microseconds, more than
 * the latencies modelled).  Returns the time it returns at.
 */
int64_t kona_latency_wait_until(int64_t deadline_ns);

#endif /* KONA_LATENCY_H */

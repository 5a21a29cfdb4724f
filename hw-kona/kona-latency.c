/*
 * Kona-CXL: the modelled latency of a fetch (see kona-latency.h).
 *
 * Only standard headers here: this file is also built outside QEMU's tree
 * for the unit tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <time.h>

#include "kona-latency.h"

/* Sleep only when more than this is left; spin the rest. */
#define KONA_LATENCY_SPIN_NS    200000

static inline void kona_latency_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

void kona_latency_init(KonaLatency *m, uint64_t line_ns, uint64_t page_ns,
                       uint64_t big_ns)
{
    static const uint32_t sizes[KONA_LATENCY_POINTS] = { 64, 4096, 65536 };
    const uint64_t ns[KONA_LATENCY_POINTS] = { line_ns, page_ns, big_ns };

    m->n = 0;
    for (unsigned i = 0; i < KONA_LATENCY_POINTS; i++) {
        if (ns[i]) {
            m->size[m->n] = sizes[i];
            m->ns[m->n] = ns[i];
            m->n++;
        }
    }
}

/* The line through points @i and @i + 1, at @size (never below 0). */
static uint64_t kona_latency_line(const KonaLatency *m, unsigned i,
                                  uint64_t size)
{
    double slope = ((double)m->ns[i + 1] - (double)m->ns[i]) /
                   (double)(m->size[i + 1] - m->size[i]);
    double v = (double)m->ns[i] + slope * ((double)size - m->size[i]);

    return v > 0 ? (uint64_t)(v + 0.5) : 0;
}

uint64_t kona_latency_ns(const KonaLatency *m, uint64_t size)
{
    unsigned i;

    if (m->n == 0) {
        return 0;
    }
    if (m->n == 1 || size <= m->size[0]) {
        return m->ns[0];
    }
    for (i = 0; i + 2 < m->n && size > m->size[i + 1]; i++) {
        /* find the segment: the last one extrapolates */
    }
    return kona_latency_line(m, i, size);
}

int64_t kona_latency_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kona_latency_wait_until(int64_t deadline_ns)
{
    int64_t now = kona_latency_now();

    while (now < deadline_ns) {
        int64_t left = deadline_ns - now;

        if (left > KONA_LATENCY_SPIN_NS) {
            struct timespec ts = {
                .tv_sec = (left - KONA_LATENCY_SPIN_NS) / 1000000000,
                .tv_nsec = (left - KONA_LATENCY_SPIN_NS) % 1000000000,
            };

            nanosleep(&ts, NULL);
        } else {
            kona_latency_relax();
        }
        now = kona_latency_now();
    }
    return now;
}

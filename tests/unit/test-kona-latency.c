/*
 * Unit tests of the fetch latency model (hw-kona/kona-latency.c): the
 * three points, interpolation and extrapolation, and the wait.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>

#include "kona-latency.h"

static void test_none(void)
{
    KonaLatency m;

    kona_latency_init(&m, 0, 0, 0);
    g_assert_false(kona_latency_enabled(&m));
    g_assert_cmpuint(kona_latency_ns(&m, 4096), ==, 0);
    g_assert_cmpuint(kona_latency_ns(&m, 2 << 20), ==, 0);
}

static void test_paper(void)
{
    KonaLatency m;

    kona_latency_init(&m, KONA_PAPER_LINE_NS, KONA_PAPER_PAGE_NS,
                      KONA_PAPER_64K_NS);
    g_assert_true(kona_latency_enabled(&m));
    /* The given points exactly. */
    g_assert_cmpuint(kona_latency_ns(&m, 64), ==, 2420);
    g_assert_cmpuint(kona_latency_ns(&m, 4096), ==, 3110);
    g_assert_cmpuint(kona_latency_ns(&m, 65536), ==, 9280);
    /* Linear between them: 1 KiB is 960/4032 of the way to 4 KiB. */
    g_assert_cmpuint(kona_latency_ns(&m, 1024), ==,
                     2420 + (uint64_t)(690.0 * 960 / 4032 + 0.5));
    /* 16 KiB: 12288/61440 of 6170 ns past 4 KiB. */
    g_assert_cmpuint(kona_latency_ns(&m, 16384), ==, 3110 + 1234);
    /* 2 MiB: the 4 KiB .. 64 KiB slope goes on. */
    g_assert_cmpuint(kona_latency_ns(&m, 2 << 20), ==,
                     (uint64_t)(3110 + 6170.0 * ((2 << 20) - 4096) / 61440
                                + 0.5));
}

static void test_one_point(void)
{
    KonaLatency m;

    /* One point: the same latency for every block size. */
    kona_latency_init(&m, 0, 10000, 0);
    g_assert_cmpuint(kona_latency_ns(&m, 64), ==, 10000);
    g_assert_cmpuint(kona_latency_ns(&m, 4096), ==, 10000);
    g_assert_cmpuint(kona_latency_ns(&m, 2 << 20), ==, 10000);
}

static void test_two_points(void)
{
    KonaLatency m;

    /* Line and 64 KiB only: one straight line through both. */
    kona_latency_init(&m, 1000, 0, 1000 + 65472);
    g_assert_cmpuint(kona_latency_ns(&m, 64), ==, 1000);
    g_assert_cmpuint(kona_latency_ns(&m, 4096), ==, 1000 + 4032);
    g_assert_cmpuint(kona_latency_ns(&m, 65536), ==, 1000 + 65472);
    g_assert_cmpuint(kona_latency_ns(&m, 131072), ==, 1000 + 131008);
    /* A falling line never goes below zero. */
    kona_latency_init(&m, 0, 5000, 100);
    g_assert_cmpuint(kona_latency_ns(&m, 2 << 20), ==, 0);
    g_assert_cmpuint(kona_latency_ns(&m, 64), ==, 5000);
}

static void test_wait(void)
{
    int64_t t0 = kona_latency_now();
    int64_t end = kona_latency_wait_until(t0 + 5000);

    /* Never early; the bound above only catches a wait that hangs. */
    g_assert_cmpint(end, >=, t0 + 5000);
    g_assert_cmpint(kona_latency_now(), >=, t0 + 5000);
    g_assert_cmpint(end - t0, <, 1000000000);
    /* A deadline in the past returns at once. */
    t0 = kona_latency_now();
    g_assert_cmpint(kona_latency_wait_until(t0 - 1000), >=, t0);
    /* Long waits sleep first and still end on time, not before. */
    t0 = kona_latency_now();
    g_assert_cmpint(kona_latency_wait_until(t0 + 3000000), >=, t0 + 3000000);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kona-latency/none", test_none);
    g_test_add_func("/kona-latency/paper", test_paper);
    g_test_add_func("/kona-latency/one-point", test_one_point);
    g_test_add_func("/kona-latency/two-points", test_two_points);
    g_test_add_func("/kona-latency/wait", test_wait);
    return g_test_run();
}

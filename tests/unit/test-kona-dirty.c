/*
 * Unit tests of the 64-byte dirty-line log (hw-kona/kona-dirty.c), checked
 * against a byte-per-line reference model.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "kona-dirty.h"

#define MEDIA (1u << 20)    /* 16384 lines, 256 groups */

static void test_single_and_crossing(void)
{
    KonaDirtyLog log;

    kona_dirty_init(&log, MEDIA);
    g_assert_cmpuint(log.nlines, ==, MEDIA / 64);
    g_assert_cmpuint(kona_dirty_mark(&log, 0, 8), ==, 1);
    g_assert_cmpuint(kona_dirty_mark(&log, 63, 1), ==, 0);
    g_assert_cmpuint(kona_dirty_mark(&log, 60, 8), ==, 1);   /* 0 + 1 */
    g_assert_cmpuint(kona_dirty_mark(&log, 4094, 4), ==, 2); /* 63, 64 */
    g_assert_cmpuint(log.dirty, ==, 4);
    g_assert_cmphex(kona_dirty_group(&log, 0), ==,
                    0x8000000000000003ull);
    g_assert_cmphex(kona_dirty_group(&log, 1), ==, 1);
    g_assert_cmphex(kona_dirty_group(&log, 100000), ==, 0);
    g_assert_true(kona_dirty_test(&log, 64));
    g_assert_false(kona_dirty_test(&log, 65));
    g_assert_false(kona_dirty_test(&log, MEDIA));
    g_assert_cmpuint(kona_dirty_mark(&log, MEDIA - 1, 1), ==, 1);
    g_assert_cmpuint(kona_dirty_count(&log, 0, MEDIA), ==, 5);
    g_assert_cmpuint(kona_dirty_clear(&log, 64, 64), ==, 1);
    g_assert_cmpuint(kona_dirty_count(&log, 0, MEDIA), ==, 4);
    g_assert_cmpuint(kona_dirty_mark(&log, 0, 0), ==, 0);
    kona_dirty_destroy(&log);
}

/* Random marks and clears of random ranges against a reference model. */
static void test_random_against_model(void)
{
    g_autofree guint8 *model = g_new0(guint8, MEDIA / 64);
    GRand *rnd = g_rand_new_with_seed(42);
    KonaDirtyLog log;
    uint64_t model_dirty = 0;

    kona_dirty_init(&log, MEDIA);
    for (int i = 0; i < 20000; i++) {
        uint64_t len = g_rand_boolean(rnd) ? g_rand_int_range(rnd, 1, 9)
                                           : g_rand_int_range(rnd, 1, 20000);
        uint64_t addr = g_rand_int_range(rnd, 0, MEDIA - len + 1);
        int op = g_rand_int_range(rnd, 0, 10);
        uint64_t want = 0, got;

        for (uint64_t l = addr / 64; l <= (addr + len - 1) / 64; l++) {
            if (op < 6) {           /* mark */
                want += !model[l];
                model_dirty += !model[l];
                model[l] = 1;
            } else if (op < 8) {    /* clear */
                want += model[l];
                model_dirty -= model[l];
                model[l] = 0;
            } else {                /* count */
                want += model[l];
            }
        }
        got = op < 6 ? kona_dirty_mark(&log, addr, len)
            : op < 8 ? kona_dirty_clear(&log, addr, len)
                     : kona_dirty_count(&log, addr, len);
        g_assert_cmpuint(got, ==, want);
        g_assert_cmpuint(log.dirty, ==, model_dirty);
    }
    for (uint64_t l = 0; l < MEDIA / 64; l++) {
        g_assert_cmpint(kona_dirty_test(&log, l), ==, model[l]);
    }
    g_rand_free(rnd);
    kona_dirty_destroy(&log);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kona-dirty/single-and-crossing",
                    test_single_and_crossing);
    g_test_add_func("/kona-dirty/random-against-model",
                    test_random_against_model);
    return g_test_run();
}

/*
 * Unit tests of the per-window write tracker (hw-kona/kona-window.c),
 * against a model that keeps sets of lines, pages and 2 MiB pages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>

#include "kona-window.h"

#define MEDIA   (64ull << 20)

typedef struct Model {
    GHashTable *lines, *pages, *huge;
} Model;

static void model_init(Model *m)
{
    m->lines = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    m->pages = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    m->huge = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

static void model_add(GHashTable *set, uint64_t v)
{
    uint64_t *key;

    if (!g_hash_table_contains(set, &v)) {
        key = g_new(uint64_t, 1);
        *key = v;
        g_hash_table_add(set, key);
    }
}

static void model_write(Model *m, uint64_t addr, uint64_t len)
{
    for (uint64_t a = addr; a < addr + len; a++) {
        model_add(m->lines, a >> 6);
        model_add(m->pages, a >> 12);
        model_add(m->huge, a >> 21);
    }
}

static void model_close(Model *m, KonaWindowRecord *rec)
{
    rec->lines = g_hash_table_size(m->lines);
    rec->pages = g_hash_table_size(m->pages);
    rec->huge_pages = g_hash_table_size(m->huge);
    g_hash_table_remove_all(m->lines);
    g_hash_table_remove_all(m->pages);
    g_hash_table_remove_all(m->huge);
}

static void model_destroy(Model *m)
{
    KonaWindowRecord rec;

    model_close(m, &rec);
    g_hash_table_unref(m->lines);
    g_hash_table_unref(m->pages);
    g_hash_table_unref(m->huge);
}

/* Hand-checked cases: what crosses a line, a page, a 2 MiB page. */
static void test_known(void)
{
    KonaWindow w;
    KonaWindowRecord rec;

    kona_window_init(&w, MEDIA);
    kona_window_note_write(&w, 0, 8);   /* ignored: tracking is off */
    g_assert_true(kona_window_enable(&w));
    kona_window_note_write(&w, 0, 8);
    kona_window_note_write(&w, 8, 8);           /* same line */
    kona_window_note_write(&w, 60, 8);          /* lines 0 and 1 */
    kona_window_note_write(&w, 4092, 8);        /* lines 63 and 64, 2 pages */
    kona_window_note_write(&w, (2 << 20) - 4, 8);   /* 2 huge pages */
    kona_window_note_write(&w, MEDIA - 4, 8);   /* clipped at the end */
    kona_window_close(&w);
    g_assert_true(kona_window_get(&w, 0, &rec));
    /* lines 0, 1, 63, 64, 32767, 32768, last: 7; pages 0, 1, 511, 512,
     * last: 5; huge pages 0, 1, last: 3 */
    g_assert_cmpuint(rec.lines, ==, 7);
    g_assert_cmpuint(rec.pages, ==, 5);
    g_assert_cmpuint(rec.huge_pages, ==, 3);

    /* The next window starts empty; the same lines count again. */
    kona_window_note_write(&w, 0, 1);
    kona_window_close(&w);
    g_assert_true(kona_window_get(&w, 1, &rec));
    g_assert_cmpuint(rec.lines, ==, 1);
    g_assert_cmpuint(rec.pages, ==, 1);
    g_assert_cmpuint(rec.huge_pages, ==, 1);
    g_assert_false(kona_window_get(&w, 2, &rec));
    g_assert_cmpuint(rec.lines, ==, 0);

    kona_window_reset(&w);
    g_assert_cmpuint(w.count, ==, 0);
    g_assert_false(kona_window_get(&w, 0, &rec));
    kona_window_disable(&w);
    g_assert_false(kona_window_enabled(&w));
}

/* Random writes, some clustered, against the model, over many windows. */
static void test_model(void)
{
    GRand *rand = g_rand_new_with_seed(7);
    KonaWindow w;
    Model m;

    kona_window_init(&w, MEDIA);
    g_assert_true(kona_window_enable(&w));
    model_init(&m);
    for (int win = 0; win < 20; win++) {
        KonaWindowRecord want, got;
        int writes = g_rand_int_range(rand, 0, 400);

        for (int i = 0; i < writes; i++) {
            uint64_t hot = g_rand_int_range(rand, 0, 4) * (1 << 20);
            uint64_t addr = g_rand_boolean(rand)
                            ? hot + g_rand_int_range(rand, 0, 16384)
                            : (uint64_t)g_rand_double_range(rand, 0, MEDIA);
            uint64_t len = g_rand_int_range(rand, 1, 9);

            len = MIN(len, MEDIA - addr);
            kona_window_note_write(&w, addr, len);
            model_write(&m, addr, len);
        }
        kona_window_close(&w);
        model_close(&m, &want);
        g_assert_true(kona_window_get(&w, win, &got));
        g_assert_cmpuint(got.lines, ==, want.lines);
        g_assert_cmpuint(got.pages, ==, want.pages);
        g_assert_cmpuint(got.huge_pages, ==, want.huge_pages);
    }
    model_destroy(&m);
    kona_window_disable(&w);
    g_rand_free(rand);
}

/* Only the last KONA_WINDOW_RING windows are kept. */
static void test_ring(void)
{
    KonaWindow w;
    KonaWindowRecord rec;
    uint64_t n = KONA_WINDOW_RING + 10;

    kona_window_init(&w, MEDIA);
    g_assert_true(kona_window_enable(&w));
    for (uint64_t i = 0; i < n; i++) {
        kona_window_note_write(&w, 0, (i % 64 + 1) * 64);
        kona_window_close(&w);
    }
    g_assert_cmpuint(w.count, ==, n);
    g_assert_false(kona_window_get(&w, 9, &rec));
    g_assert_true(kona_window_get(&w, 10, &rec));
    g_assert_cmpuint(rec.lines, ==, 10 % 64 + 1);
    g_assert_true(kona_window_get(&w, n - 1, &rec));
    g_assert_cmpuint(rec.lines, ==, (n - 1) % 64 + 1);
    kona_window_disable(&w);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kona-window/known", test_known);
    g_test_add_func("/kona-window/model", test_model);
    g_test_add_func("/kona-window/ring", test_ring);
    return g_test_run();
}

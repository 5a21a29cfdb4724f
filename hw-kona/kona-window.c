/*
 * Kona-CXL: write amplification per window of guest time (bookkeeping).
 *
 * Only standard and GLib headers here: this file is also built outside
 * QEMU's tree for the unit tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "kona-window.h"

#define KONA_WINDOW_PAGE_SHIFT  12
#define KONA_WINDOW_HUGE_SHIFT  21
#define KONA_WINDOW_LINE_SHIFT  6

void kona_window_init(KonaWindow *w, uint64_t media_size)
{
    memset(w, 0, sizeof(*w));
    w->media_size = media_size;
}

bool kona_window_enable(KonaWindow *w)
{
    uint64_t npages = w->media_size >> KONA_WINDOW_PAGE_SHIFT;
    uint64_t nhuge = (w->media_size + (1ull << KONA_WINDOW_HUGE_SHIFT) - 1) >>
                     KONA_WINDOW_HUGE_SHIFT;

    if (kona_window_enabled(w)) {
        return true;
    }
    /* Large but sparse: calloc'd pages stay untouched until written. */
    w->page_lines = g_try_new0(uint64_t, npages);
    w->touched = g_try_new(uint64_t, npages);
    w->huge_seen = g_try_new0(uint8_t, nhuge);
    w->touched_huge = g_try_new(uint64_t, nhuge);
    if (!w->page_lines || !w->touched || !w->huge_seen || !w->touched_huge) {
        kona_window_disable(w);
        return false;
    }
    memset(&w->cur, 0, sizeof(w->cur));
    return true;
}

void kona_window_disable(KonaWindow *w)
{
    g_clear_pointer(&w->page_lines, g_free);
    g_clear_pointer(&w->touched, g_free);
    g_clear_pointer(&w->huge_seen, g_free);
    g_clear_pointer(&w->touched_huge, g_free);
    memset(&w->cur, 0, sizeof(w->cur));
}

/* Lines [first, last] of one page (first <= last, same page). */
static void kona_window_note_page(KonaWindow *w, uint64_t page,
                                  unsigned first, unsigned last)
{
    uint64_t bits = (last == 63 ? ~0ull : (1ull << (last + 1)) - 1) &
                    ~((1ull << first) - 1);
    uint64_t *mask = &w->page_lines[page];
    uint64_t huge = page >> (KONA_WINDOW_HUGE_SHIFT - KONA_WINDOW_PAGE_SHIFT);

    if (!*mask) {
        w->touched[w->cur.pages++] = page;
        if (!w->huge_seen[huge]) {
            w->huge_seen[huge] = 1;
            w->touched_huge[w->cur.huge_pages++] = huge;
        }
    }
    w->cur.lines += __builtin_popcountll(bits & ~*mask);
    *mask |= bits;
}

void kona_window_note_write(KonaWindow *w, uint64_t addr, uint64_t len)
{
    uint64_t line, last_line;

    if (!kona_window_enabled(w) || len == 0 || addr >= w->media_size) {
        return;
    }
    len = MIN(len, w->media_size - addr);
    line = addr >> KONA_WINDOW_LINE_SHIFT;
    last_line = (addr + len - 1) >> KONA_WINDOW_LINE_SHIFT;
    while (line <= last_line) {
        uint64_t page = line >> (KONA_WINDOW_PAGE_SHIFT -
                                 KONA_WINDOW_LINE_SHIFT);
        uint64_t page_last = (page << 6) + 63;
        uint64_t end = MIN(last_line, page_last);

        kona_window_note_page(w, page, line & 63, end & 63);
        line = end + 1;
    }
}

/* Forget the current window's writes, visiting only what it touched. */
static void kona_window_clear_current(KonaWindow *w)
{
    if (kona_window_enabled(w)) {
        for (uint64_t i = 0; i < w->cur.pages; i++) {
            w->page_lines[w->touched[i]] = 0;
        }
        for (uint64_t i = 0; i < w->cur.huge_pages; i++) {
            w->huge_seen[w->touched_huge[i]] = 0;
        }
    }
    memset(&w->cur, 0, sizeof(w->cur));
}

void kona_window_close(KonaWindow *w)
{
    w->ring[w->count % KONA_WINDOW_RING] = w->cur;
    w->count++;
    kona_window_clear_current(w);
}

void kona_window_reset(KonaWindow *w)
{
    kona_window_clear_current(w);
    w->count = 0;
}

bool kona_window_get(const KonaWindow *w, uint64_t index,
                     KonaWindowRecord *rec)
{
    if (index >= w->count || w->count - index > KONA_WINDOW_RING) {
        memset(rec, 0, sizeof(*rec));
        return false;
    }
    *rec = w->ring[index % KONA_WINDOW_RING];
    return true;
}

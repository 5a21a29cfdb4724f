/*
 * Kona-CXL: per-window write tracking in the device (the bookkeeping is
 * kona-window.c): a timer on guest time closes a window every window_ns,
 * and the recorded windows are readable through QMP:
 *   { "execute": "qom-get", "arguments": {
 *       "path": "/machine/peripheral/kona0", "property": "windows" } }
 * returns the kept windows, oldest first, as {lines, pages, huge-pages}.
 * The guest sets the window length and reads the same windows through the
 * control registers (KONA_REG_WINDOW_*).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "kona-state.h"
#include "kona-media.h"
#include "kona-stats.h"
#include "trace.h"

/* Guest time, so a slow emulated guest still gets the windows it asked for. */
void kona_windows_arm(KonaCxlState *s)
{
    if (s->window_ns) {
        timer_mod_ns(s->window_timer,
                     qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + s->window_ns);
    } else {
        timer_del(s->window_timer);
    }
}

bool kona_windows_close_now(KonaCxlState *s)
{
    KonaWindowRecord rec;

    if (!s->window_ns) {
        return false;
    }
    rec = s->window.cur;
    kona_window_close(&s->window);
    trace_kona_window(s->window.count - 1, rec.lines, rec.pages,
                      rec.huge_pages);
    /* The next window is a whole one from now. */
    kona_windows_arm(s);
    return true;
}

static void kona_windows_tick(void *opaque)
{
    KonaCxlState *s = opaque;
    KonaLockState ls;

    kona_lock(s, &ls);
    kona_windows_close_now(s);
    kona_unlock(s, &ls);
}

bool kona_windows_set_period(KonaCxlState *s, uint64_t ns)
{
    /* A mode that does not see each store cannot count them. */
    if (ns && (!s->track->sees_stores || !kona_window_enable(&s->window))) {
        return false;
    }
    if (!ns) {
        kona_window_disable(&s->window);
    }
    s->window_ns = ns;
    kona_window_reset(&s->window);
    kona_windows_arm(s);
    return true;
}

/* RESET_STATS: drop the recorded windows, start a new one now. */
void kona_windows_restart(KonaCxlState *s)
{
    kona_window_reset(&s->window);
    kona_windows_arm(s);
}

static void kona_get_windows(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    KonaCxlState *s = KONA_CXL(obj);
    g_autofree KonaWindowRecord *recs = NULL;
    uint64_t first, n = 0;
    KonaLockState ls;
    bool ok = true;

    /* A copy, so the visitor runs without the device lock. */
    kona_lock(s, &ls);
    first = s->window.count > KONA_WINDOWS_KEPT
            ? s->window.count - KONA_WINDOWS_KEPT : 0;
    recs = g_new(KonaWindowRecord, s->window.count - first);
    for (uint64_t i = first; i < s->window.count; i++) {
        kona_window_get(&s->window, i, &recs[n++]);
    }
    kona_unlock(s, &ls);

    if (!visit_start_list(v, name, NULL, 0, errp)) {
        return;
    }
    for (uint64_t i = 0; ok && i < n; i++) {
        ok = visit_start_struct(v, NULL, NULL, 0, errp);
        if (ok) {
            ok = visit_type_uint64(v, "lines", &recs[i].lines, errp) &&
                 visit_type_uint64(v, "pages", &recs[i].pages, errp) &&
                 visit_type_uint64(v, "huge-pages", &recs[i].huge_pages,
                                   errp) &&
                 visit_check_struct(v, errp);
            visit_end_struct(v, NULL);
        }
    }
    if (ok) {
        visit_check_list(v, errp);
    }
    visit_end_list(v, NULL);
}

static void kona_get_window_count(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    uint64_t count = qatomic_read(&KONA_CXL(obj)->window.count);

    visit_type_uint64(v, name, &count, errp);
}

void kona_cxl_windows_add_properties(ObjectClass *oc)
{
    object_class_property_add(oc, "windows", "KonaWindows", kona_get_windows,
                              NULL, NULL, NULL);
    object_class_property_add(oc, "window-count", "uint64",
                              kona_get_window_count, NULL, NULL, NULL);
}

bool kona_windows_init(KonaCxlState *s, Error **errp)
{
    kona_window_init(&s->window, s->size);
    s->window_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, kona_windows_tick, s);
    if (s->window_ms > KONA_WINDOW_NS_MAX / SCALE_MS) {
        error_setg(errp, "kona-cxl: property 'window-ms' must be at most %"
                   PRIu64 " (one hour)", KONA_WINDOW_NS_MAX / SCALE_MS);
        return false;
    }
    if (s->window_ms && !kona_window_enable(&s->window)) {
        error_setg(errp, "kona-cxl: property 'window-ms': cannot allocate "
                   "the per-window tracker for %" PRIu64 " bytes of media",
                   s->size);
        return false;
    }
    /* Armed by kona_windows_arm() once the device is complete. */
    s->window_ns = (uint64_t)s->window_ms * SCALE_MS;
    return true;
}

void kona_windows_stop(KonaCxlState *s)
{
    if (s->window_timer) {
        timer_del(s->window_timer);
    }
}

void kona_windows_destroy(KonaCxlState *s)
{
    if (s->window_timer) {
        timer_free(s->window_timer);
        s->window_timer = NULL;
    }
    kona_window_disable(&s->window);
    s->window_ns = 0;
}

/*
 * Kona-CXL statistics as QOM properties, readable through QMP:
 *   { "execute": "qom-get",
 *     "arguments": { "path": "/machine/peripheral/kona0", "property": "stats" } }
 * returns every counter, the amplification ratios and the histogram of
 * dirty lines per 4 KiB page as one object; each counter is also a property
 * of its own ("stat-reads", ...), and "stats-text" is the same as text for
 * HMP: qom-get /machine/peripheral/kona0 stats-text
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "kona-state.h"
#include "kona-direct.h"
#include "kona-media.h"
#include "kona-stats.h"

const char *const kona_stat_names[KONA_DEV_STAT__COUNT] = KONA_DEV_STAT_NAMES;

/* Lock held, or a racy but harmless read of naturally aligned words. */
uint64_t kona_stat_get(KonaCxlState *s, unsigned stat)
{
    switch (stat) {
    case KONA_DEV_STAT_DIRTY_LINES:
        return qatomic_read(&s->cache.dirty_lines);
    case KONA_DEV_STAT_RESIDENT_BLOCKS:
        return s->cache.nframes - qatomic_read(&s->cache.nfree);
    case KONA_DEV_STAT_DIRTY_BLOCKS:
        return qatomic_read(&s->cache.dirty_frames);
    case KONA_DEV_STAT_FAILOVERS:
        return qatomic_read(&s->remote.failovers);
    case KONA_DEV_STAT_RESYNCS:
        return qatomic_read(&s->remote.resyncs);
    case KONA_DEV_STAT_RESYNC_BYTES:
        return qatomic_read(&s->remote.resync_bytes);
    default:
        return qatomic_read(&s->stats[stat]);
    }
}

/* Frames compared per hold of the device lock. */
#define KONA_SYNC_CHUNK 256

void kona_stats_sync(KonaCxlState *s, unsigned stat)
{
    KonaCache *c = &s->cache;
    KonaLockState ls;

    if (!s->track->sync_dirty || (stat != KONA_DEV_STAT_DIRTY_LINES &&
                                  stat != KONA_DEV_STAT_DIRTY_BLOCKS &&
                                  stat != KONA_DEV_STAT__COUNT)) {
        return;
    }
    /*
     * Comparing the whole cache takes milliseconds: a chunk of frames per
     * hold of the lock, so the guest's accesses go on in between.
     */
    for (uint32_t f0 = 0; f0 < c->nframes; f0 += KONA_SYNC_CHUNK) {
        kona_lock(s, &ls);
        for (uint32_t f = f0; f < MIN(f0 + KONA_SYNC_CHUNK, c->nframes);
             f++) {
            if (c->frames[f].resident) {
                s->track->sync_dirty(s, f);
            }
        }
        kona_unlock(s, &ls);
    }
}

/* Bytes a page-granular runtime would write back per byte we write back. */
static double kona_amplification(KonaCxlState *s, unsigned stat)
{
    uint64_t ours = kona_stat_get(s, KONA_DEV_STAT_WRITEBACK_BYTES);

    return ours ? (double)kona_stat_get(s, stat) / ours : 0.0;
}

static void kona_get_stats(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    KonaCxlState *s = KONA_CXL(obj);
    double page_amp = kona_amplification(s, KONA_DEV_STAT_PAGE_WB_BYTES);
    double huge_amp = kona_amplification(s, KONA_DEV_STAT_HUGE_WB_BYTES);
    bool ok = true;
    unsigned i;

    kona_stats_sync(s, KONA_DEV_STAT__COUNT);
    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
    for (i = 0; ok && i < KONA_DEV_STAT__COUNT; i++) {
        uint64_t val = kona_stat_get(s, i);

        ok = visit_type_uint64(v, kona_stat_names[i], &val, errp);
    }
    ok = ok && visit_type_number(v, "page-amplification", &page_amp, errp);
    ok = ok && visit_type_number(v, "hugepage-amplification", &huge_amp,
                                 errp);
    /* dirty-lines-per-page[n]: pages written back with n dirty lines */
    if (ok && visit_start_list(v, "dirty-lines-per-page", NULL, 0, errp)) {
        for (i = 0; ok && i < KONA_HIST_BUCKETS; i++) {
            uint64_t val = qatomic_read(&s->hist[i]);

            ok = visit_type_uint64(v, NULL, &val, errp);
        }
        if (ok) {
            ok = visit_check_list(v, errp);
        }
        visit_end_list(v, NULL);
    } else {
        ok = false;
    }
    if (ok) {
        visit_check_struct(v, errp);
    }
    visit_end_struct(v, NULL);
}

static void kona_get_one_stat(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    KonaCxlState *s = KONA_CXL(obj);
    uint64_t val;

    kona_stats_sync(s, GPOINTER_TO_UINT(opaque));
    val = kona_stat_get(s, GPOINTER_TO_UINT(opaque));
    visit_type_uint64(v, name, &val, errp);
}

static char *kona_get_stats_text(Object *obj, Error **errp)
{
    KonaCxlState *s = KONA_CXL(obj);
    GString *out = g_string_new(NULL);
    unsigned i;

    kona_stats_sync(s, KONA_DEV_STAT__COUNT);
    g_string_append_printf(out, "kona-cxl %s: size %" PRIu64 " cache %"
                           PRIu64 " block %u policy %s remote %s "
                           "tracking %s\n",
                           DEVICE(s)->id ?: "(no id)", s->size, s->cache_size,
                           s->cache.block_size, s->policy,
                           s->memnode ?: s->rackctl ?: "none", s->tracking);
    if (s->replica) {
        g_string_append_printf(out, "  replica %s\n", s->replica);
    }
    if (kona_remote_present(&s->remote)) {
        unsigned mapped, copies;

        kona_remote_paths(&s->remote, &mapped, &copies);
        g_string_append_printf(out, "  remote path: %s, %u of %u cop%s "
                               "mapped\n", s->remote_path, mapped, copies,
                               copies == 1 ? "y" : "ies");
    }
    if (!s->track->sees_loads) {
        g_string_append_printf(out, "  tracking=%s: reads and hits count "
                               "only accesses through the CXL window, not "
                               "loads of mapped resident data\n",
                               s->track->name);
    }
    if (s->writeback_pages) {
        g_string_append(out, "  writeback=pages: dirty pages sent whole "
                        "(a page-granular runtime)\n");
    }
    if (kona_latency_enabled(&s->latency)) {
        g_string_append_printf(out, "  latency model: %" PRIu64 " ns per "
                               "%u-byte fetch (%s)\n",
                               kona_latency_ns(&s->latency,
                                               s->cache.block_size),
                               s->cache.block_size,
                               s->latency_preset ?: "latency-*-ns");
    }
    for (i = 0; i < KONA_DEV_STAT__COUNT; i++) {
        g_string_append_printf(out, "  %-26s %" PRIu64 "\n",
                               kona_stat_names[i], kona_stat_get(s, i));
    }
    g_string_append_printf(out, "  %-26s %.3f\n  %-26s %.3f\n",
                           "page-amplification",
                           kona_amplification(s, KONA_DEV_STAT_PAGE_WB_BYTES),
                           "hugepage-amplification",
                           kona_amplification(s, KONA_DEV_STAT_HUGE_WB_BYTES));
    g_string_append(out, "  dirty lines per 4 KiB page at write-back "
                    "(lines: pages):");
    for (i = 1; i < KONA_HIST_BUCKETS; i++) {
        uint64_t n = qatomic_read(&s->hist[i]);

        if (n) {
            g_string_append_printf(out, " %u:%" PRIu64, i, n);
        }
    }
    g_string_append_c(out, '\n');
    g_string_append_printf(out, "  direct decode: %s, %u decoder range(s) "
                           "mapped\n", s->direct_decode ? "on" : "off",
                           kona_direct_mapped(s));
    if (s->window_ns) {
        g_string_append_printf(out, "  per-window tracking: %" PRIu64
                               " windows of %" PRIu64 " ms closed "
                               "(qom-get windows)\n", s->window.count,
                               s->window_ns / SCALE_MS);
    }
    return g_string_free(out, false);
}

static void kona_get_direct_decoders(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    uint32_t n = kona_direct_mapped(KONA_CXL(obj));

    visit_type_uint32(v, name, &n, errp);
}

/* Guest-physical reads direct decode made to check decoders (BQL). */
static void kona_get_direct_probes(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    uint64_t n = KONA_CXL(obj)->direct_probes;

    visit_type_uint64(v, name, &n, errp);
}

void kona_cxl_stats_add_properties(ObjectClass *oc)
{
    unsigned i;

    object_class_property_add(oc, "direct-decoders", "uint32",
                              kona_get_direct_decoders, NULL, NULL, NULL);
    object_class_property_add(oc, "direct-probes", "uint64",
                              kona_get_direct_probes, NULL, NULL, NULL);

    object_class_property_add(oc, "stats", "KonaStats", kona_get_stats,
                              NULL, NULL, NULL);
    object_class_property_add_str(oc, "stats-text", kona_get_stats_text,
                                  NULL);
    for (i = 0; i < KONA_DEV_STAT__COUNT; i++) {
        g_autofree char *name = g_strdup_printf("stat-%s", kona_stat_names[i]);

        object_class_property_add(oc, name, "uint64", kona_get_one_stat,
                                  NULL, NULL, GUINT_TO_POINTER(i));
    }
}

void kona_cxl_stats_reset(KonaCxlState *s)
{
    memset(s->stats, 0, sizeof(s->stats));
    /* 2 MiB pages dirty across the reset count again at their write-back. */
    kona_cache_reset_counterfactuals(&s->cache);
    memset(s->hist, 0, sizeof(s->hist));
    kona_windows_restart(s);
}

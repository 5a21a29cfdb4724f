/*
 * Kona-CXL statistics as QOM properties, readable through QMP:
 *   { "execute": "qom-get",
 *     "arguments": { "path": "/machine/peripheral/kona0", "property": "stats" } }
 * returns every counter as one object; each counter is also a property of
 * its own ("stat-reads", ...).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "kona-cxl.h"

const char *const kona_stat_names[KONA_DEV_STAT__COUNT] = {
    [KONA_DEV_STAT_READS] = "reads",
    [KONA_DEV_STAT_WRITES] = "writes",
    [KONA_DEV_STAT_READ_BYTES] = "read-bytes",
    [KONA_DEV_STAT_WRITE_BYTES] = "write-bytes",
    [KONA_DEV_STAT_DIRTY_LINES] = "dirty-lines",
    [KONA_DEV_STAT_LINES_DIRTIED] = "lines-dirtied",
};

static uint64_t kona_stat_value(KonaCxlState *s, unsigned i)
{
    return i == KONA_DEV_STAT_DIRTY_LINES ? s->lines.dirty : s->stats[i];
}

static void kona_get_stats(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    KonaCxlState *s = KONA_CXL(obj);
    bool ok;
    unsigned i;

    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
    for (i = 0, ok = true; ok && i < KONA_DEV_STAT__COUNT; i++) {
        uint64_t val = kona_stat_value(s, i);

        ok = visit_type_uint64(v, kona_stat_names[i], &val, errp);
    }
    if (ok) {
        visit_check_struct(v, errp);
    }
    visit_end_struct(v, NULL);
}

static void kona_get_one_stat(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    uint64_t val = kona_stat_value(KONA_CXL(obj), GPOINTER_TO_UINT(opaque));

    visit_type_uint64(v, name, &val, errp);
}

void kona_cxl_stats_add_properties(ObjectClass *oc)
{
    unsigned i;

    object_class_property_add(oc, "stats", "KonaStats", kona_get_stats,
                              NULL, NULL, NULL);
    for (i = 0; i < KONA_DEV_STAT__COUNT; i++) {
        g_autofree char *name = g_strdup_printf("stat-%s", kona_stat_names[i]);

        object_class_property_add(oc, name, "uint64", kona_get_one_stat,
                                  NULL, NULL, GUINT_TO_POINTER(i));
    }
}

void kona_cxl_stats_reset(KonaCxlState *s)
{
    memset(s->stats, 0, sizeof(s->stats));
}

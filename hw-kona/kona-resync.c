/*
 * Kona-CXL: bringing a dead copy back, in the background (see
 * kona-resync.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "kona-resync.h"
#include "trace.h"

#define KONA_RESYNC_INTERVAL_MS 1000

/*
 * The slab for the fresh copy, on its new link: the dead copy's own slab if
 * its memnode still has it (a partition, a restart with --data-dir), taken
 * over from the device's old connection, which that memnode may still see
 * holding the volume; else a new one (or the volume attached again).
 */
static int kona_resync_fresh_slab(KonaResync *rs, Error **errp)
{
    if (rs->dead_known &&
        kona_link_slab_open(rs->fresh.link, rs->dead_slab, rs->dead_key, NULL,
                            NULL) == 0) {
        rs->fresh.slab_id = rs->dead_slab;
        return 0;
    }
    return kona_copy_get_slab(rs->cfg, rs->fresh.link, &rs->fresh.slab_id,
                              "replica", errp);
}

/* The thread's part: a fresh copy filled from its own view of the live one. */
static int kona_resync_run(KonaResync *rs, GError **gerr)
{
    const KonaCopyConfig *cfg = rs->cfg;
    KonaExtent *e = rs->extent;
    KonaCopy from = { .addr = rs->from_addr, .slab_id = rs->from_slab };
    g_autofree uint8_t *buf = g_malloc(KONA_MAX_IO);
    Error *err = NULL;
    uint64_t size;
    int ret = -EIO;

    rs->fresh = (KonaCopy) { .addr = e->copies[rs->dead].addr, .live = true };
    rs->fresh.link = kona_copy_connect(cfg, rs->fresh.addr, gerr);
    if (!rs->fresh.link) {
        return -EIO;
    }
    if (kona_resync_fresh_slab(rs, &err) < 0 ||
        !kona_copy_map(cfg, &rs->fresh, e->size, &err)) {
        g_set_error(gerr, KONA_ERROR, EIO, "%s", error_get_pretty(err));
        error_free(err);
        return -EIO;
    }
    from.link = kona_copy_connect(cfg, from.addr, gerr);
    if (!from.link) {
        return -EIO;
    }
    /* Beside the device's own connection, which keeps its hold. */
    if (kona_link_slab_open_shared(from.link, from.slab_id, rs->from_key,
                                   &size, gerr) == 0 &&
        kona_copy_map(cfg, &from, e->size, &err)) {
        ret = kona_copy_extent(&from, &rs->fresh, 0, e->size, buf, gerr);
    } else if (err) {
        g_set_error(gerr, KONA_ERROR, EIO, "%s", error_get_pretty(err));
        error_free(err);
    }
    kona_copy_unmap(&from);
    kona_link_close(from.link);
    return ret == 0 ? kona_link_flush(rs->fresh.link, gerr) : ret;
}

static void kona_resync_discard_fresh(KonaResync *rs)
{
    kona_copy_unmap(&rs->fresh);
    g_clear_pointer(&rs->fresh.link, kona_link_close);
    g_free(rs->fresh.refused);
    memset(&rs->fresh, 0, sizeof(rs->fresh));
}

static void *kona_resync_thread(void *opaque)
{
    KonaResync *rs = opaque;

    qemu_mutex_lock(&rs->lock);
    for (;;) {
        g_autoptr(GError) gerr = NULL;
        int ret;

        while (!rs->stop && rs->state != KONA_RESYNC_COPYING) {
            qemu_cond_wait(&rs->cond, &rs->lock);
        }
        if (rs->stop) {
            break;
        }
        qemu_mutex_unlock(&rs->lock);
        ret = kona_resync_run(rs, &gerr);
        if (ret < 0) {
            kona_resync_discard_fresh(rs);
        }
        qemu_mutex_lock(&rs->lock);
        rs->ended_ms = get_clock() / SCALE_MS;
        if (ret < 0) {
            rs->error = g_strdup(gerr ? gerr->message : "error");
        }
        rs->state = ret < 0 ? KONA_RESYNC_FAILED : KONA_RESYNC_READY;
    }
    qemu_mutex_unlock(&rs->lock);
    return NULL;
}

void kona_resync_init(KonaResync *rs, const KonaCopyConfig *cfg)
{
    memset(rs, 0, sizeof(*rs));
    rs->cfg = cfg;
    qemu_mutex_init(&rs->lock);
    qemu_cond_init(&rs->cond);
    rs->rewrite = g_hash_table_new(NULL, NULL);
}

void kona_resync_destroy(KonaResync *rs)
{
    if (!rs->rewrite) {
        return;
    }
    if (rs->running) {
        qemu_mutex_lock(&rs->lock);
        rs->stop = true;
        qemu_cond_signal(&rs->cond);
        qemu_mutex_unlock(&rs->lock);
        qemu_thread_join(&rs->thread);
        rs->running = false;
    }
    kona_resync_discard_fresh(rs);
    g_free(rs->from_addr);
    g_free(rs->error);
    g_hash_table_destroy(rs->rewrite);
    rs->rewrite = NULL;
    qemu_cond_destroy(&rs->cond);
    qemu_mutex_destroy(&rs->lock);
}

/* A dead copy of some extent and a live one to fill it from. */
static bool kona_resync_find(KonaExtent *extents, unsigned n, KonaExtent **e,
                             unsigned *dead, KonaCopy **from)
{
    for (unsigned i = 0; i < n; i++) {
        *from = NULL;
        for (unsigned j = 0; j < extents[i].ncopies; j++) {
            if (extents[i].copies[j].live) {
                *from = &extents[i].copies[j];
            }
        }
        for (unsigned j = 0; *from && j < extents[i].ncopies; j++) {
            if (!extents[i].copies[j].live) {
                *e = &extents[i];
                *dead = j;
                return true;
            }
        }
    }
    return false;
}

/* Hand the thread a job: bring back @dead of @e from @from. */
static void kona_resync_start(KonaResync *rs, KonaExtent *e, unsigned dead,
                              KonaCopy *from)
{
    if (kona_link_slab_info(from->link, from->slab_id, rs->from_key,
                            NULL) < 0) {
        return;     /* the live copy's link lost its slab: try later */
    }
    rs->extent = e;
    rs->dead = dead;
    rs->dead_slab = e->copies[dead].slab_id;
    rs->dead_known = e->copies[dead].link &&
        kona_link_slab_info(e->copies[dead].link, rs->dead_slab,
                            rs->dead_key, NULL) == 0;
    g_free(rs->from_addr);
    rs->from_addr = g_strdup(from->addr);
    rs->from_slab = from->slab_id;
    g_hash_table_remove_all(rs->rewrite);
    rs->zeroed = false;
    rs->active = true;
    if (!rs->running) {
        qemu_thread_create(&rs->thread, "kona-resync", kona_resync_thread,
                           rs, QEMU_THREAD_JOINABLE);
        rs->running = true;
    }
    rs->state = KONA_RESYNC_COPYING;
    qemu_cond_signal(&rs->cond);
}

/*
 * The thread filled the fresh copy: copy again the pages written since it
 * began (from the live copy, under the device lock: nothing changes now),
 * flush, and put it in place of the dead one.
 */
static uint64_t kona_resync_finish(KonaResync *rs, GPtrArray *links)
{
    KonaExtent *e = rs->extent;
    KonaCopy *dead = &e->copies[rs->dead];
    KonaCopy *from = NULL;
    g_autoptr(GError) gerr = NULL;
    g_autofree uint8_t *page = g_malloc(4096);
    GHashTableIter it;
    gpointer key;
    int ret = 0;

    for (unsigned j = 0; j < e->ncopies; j++) {
        from = e->copies[j].live ? &e->copies[j] : from;
    }
    if (!from || dead->live) {
        kona_resync_discard_fresh(rs);
        return 0;
    }
    /* What it copied before a Sanitize is gone from the live copy too. */
    if (rs->zeroed) {
        ret = kona_copy_zero(&rs->fresh, 0, e->size, &gerr);
    }
    g_hash_table_iter_init(&it, rs->rewrite);
    while (ret == 0 && g_hash_table_iter_next(&it, &key, NULL)) {
        uint64_t off = (GPOINTER_TO_SIZE(key) - 1) * 4096;

        ret = kona_copy_extent(from, &rs->fresh, off, 4096, page, &gerr);
    }
    if (ret == 0) {
        ret = kona_link_flush(rs->fresh.link, &gerr);
    }
    /* As new as the copy it was filled from (memnodes that keep one). */
    if (ret == 0 &&
        kona_link_slab_generation(rs->fresh.link, rs->fresh.slab_id,
                                  from->gen, &rs->fresh.gen, NULL) < 0) {
        rs->fresh.gen = from->gen;
    }
    if (ret < 0) {
        warn_report("kona-cxl: resync of '%s' failed: %s", dead->addr,
                    gerr ? gerr->message : "error");
        kona_resync_discard_fresh(rs);
        rs->ended_ms = get_clock() / SCALE_MS;
        return 0;
    }
    kona_copy_unmap(dead);
    g_free(dead->refused);
    g_ptr_array_remove(links, dead->link);
    g_ptr_array_add(links, rs->fresh.link);
    *dead = rs->fresh;
    memset(&rs->fresh, 0, sizeof(rs->fresh));
    info_report("kona-cxl: '%s' is back and resynced (%" PRIu64 " bytes, "
                "%u pages again)", dead->addr, e->size,
                g_hash_table_size(rs->rewrite));
    trace_kona_remote_resync(dead->addr, e->size);
    return e->size;
}

uint64_t kona_resync_poll(KonaResync *rs, KonaExtent *extents,
                          unsigned nextents, GPtrArray *links)
{
    int64_t now = get_clock() / SCALE_MS;
    KonaResyncState state;
    uint64_t bytes = 0;
    KonaExtent *e;
    KonaCopy *from;
    unsigned dead;

    qemu_mutex_lock(&rs->lock);
    state = rs->state;
    switch (state) {
    case KONA_RESYNC_COPYING:
        break;
    case KONA_RESYNC_READY:
        bytes = kona_resync_finish(rs, links);
        rs->state = KONA_RESYNC_IDLE;
        rs->active = false;
        break;
    case KONA_RESYNC_FAILED:
        rs->active = false;
        warn_report("kona-cxl: resync of '%s' failed: %s",
                    rs->extent->copies[rs->dead].addr, rs->error);
        g_clear_pointer(&rs->error, g_free);
        rs->state = KONA_RESYNC_IDLE;
        break;
    case KONA_RESYNC_IDLE:
        if (now - rs->ended_ms >= KONA_RESYNC_INTERVAL_MS &&
            kona_resync_find(extents, nextents, &e, &dead, &from)) {
            kona_resync_start(rs, e, dead, from);
        }
        break;
    }
    qemu_mutex_unlock(&rs->lock);
    return bytes;
}

void kona_resync_note_zero(KonaResync *rs, KonaExtent *e)
{
    if (rs->active && rs->extent == e) {
        rs->zeroed = true;
    }
}

void kona_resync_note_write(KonaResync *rs, KonaExtent *e, uint64_t off,
                            uint32_t npages)
{
    /* From the job's start to its end, both under the device lock. */
    if (!rs->active || rs->extent != e) {
        return;
    }
    for (uint32_t p = 0; p < npages; p++) {
        g_hash_table_add(rs->rewrite,
                         GSIZE_TO_POINTER(off / 4096 + p + 1));
    }
}

/*
 * Kona-CXL: the media's remote memory, through kona-link.
 *
 * Runs with the device lock held and the BQL released (see kona-media.c):
 * nothing here may touch QEMU state other than the KonaRemote.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/kona-memnode/kona-auth.h"
#include "hw/kona-memnode/kona-rack.h"
#include "kona-remote.h"
#include "trace.h"

/* Fetch chunks: blocks are at most 2 MiB, a READ at most 1 MiB. */
#define KONA_REMOTE_MAX_CHUNKS 2
#define KONA_REMOTE_TRIES 3


static KonaLink *remote_link_for(KonaRemote *r, const char *addr,
                                 const char *prop, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    KonaLink *l;

    for (guint i = 0; i < r->links->len; i++) {
        l = g_ptr_array_index(r->links, i);
        if (g_str_equal(kona_link_addr(l), addr)) {
            return l;
        }
    }
    l = kona_copy_connect(&r->copy_cfg, addr, &gerr);
    if (!l) {
        error_setg(errp, "kona-cxl: property '%s': cannot reach memory node "
                   "'%s': %s", prop, addr, gerr->message);
        return NULL;
    }
    g_ptr_array_add(r->links, l);
    return l;
}





/*
 * A reattached volume's copies may differ: one missed the writes made
 * while it was dead (the device failed over, then QEMU ended).  The
 * memnodes keep each copy's generation, raised at every failover; a copy
 * older than another is brought up to date from it now, before the guest
 * reads anything, and refused as a start-up error if that fails.
 */
static bool remote_reconcile(KonaRemote *r, KonaExtent *e, Error **errp)
{
    KonaCopy *newest = NULL;
    g_autofree uint8_t *buf = NULL;

    for (unsigned i = 0; i < e->ncopies; i++) {
        KonaCopy *c = &e->copies[i];

        if (kona_link_slab_generation(c->link, c->slab_id, 0, &c->gen,
                                      NULL) < 0) {
            c->gen = 0;
        }
        if (!newest || c->gen > newest->gen) {
            newest = c;
        }
    }
    for (unsigned i = 0; i < e->ncopies; i++) {
        KonaCopy *c = &e->copies[i];
        g_autoptr(GError) gerr = NULL;

        if (c->gen == newest->gen) {
            continue;
        }
        warn_report("kona-cxl: the copy of volume '%s' on '%s' is older "
                    "(generation %" PRIu64 ") than the one on '%s' (%"
                    PRIu64 "): bringing it up to date", r->cfg.volume,
                    c->addr, c->gen, newest->addr, newest->gen);
        buf = buf ? buf : g_malloc(KONA_MAX_IO);
        if (kona_copy_extent(newest, c, 0, e->size, buf, &gerr) < 0 ||
            kona_link_flush(c->link, &gerr) < 0 ||
            kona_link_slab_generation(c->link, c->slab_id, newest->gen,
                                      &c->gen, &gerr) < 0) {
            error_setg(errp, "kona-cxl: property 'replica': the copy on "
                       "'%s' is older than the one on '%s' and cannot be "
                       "brought up to date: %s", c->addr, newest->addr,
                       gerr ? gerr->message : "error");
            return false;
        }
        r->resyncs++;
        r->resync_bytes += e->size;
    }
    return true;
}

static bool remote_open_memnode(KonaRemote *r, Error **errp)
{
    const char *addrs[KONA_MAX_COPIES] = { r->cfg.memnode, r->cfg.replica };
    const char *props[KONA_MAX_COPIES] = { "memnode", "replica" };
    KonaExtent *e;

    if (r->cfg.replica && g_str_equal(r->cfg.replica, r->cfg.memnode)) {
        error_setg(errp, "kona-cxl: property 'replica' must name another "
                   "memory node than 'memnode'");
        return false;
    }
    r->extents = g_new0(KonaExtent, 1);
    r->nextents = 1;
    e = &r->extents[0];
    e->size = r->cfg.size;
    for (unsigned i = 0; i < KONA_MAX_COPIES && addrs[i]; i++) {
        KonaCopy *c = &e->copies[e->ncopies];

        c->link = remote_link_for(r, addrs[i], props[i], errp);
        if (!c->link || kona_copy_get_slab(&r->copy_cfg, c->link,
                                           &c->slab_id, props[i], errp) < 0) {
            return false;
        }
        c->addr = g_strdup(addrs[i]);
        c->live = true;
        e->ncopies++;
        trace_kona_remote_extent(0, e->size, addrs[i], c->slab_id);
        if (!kona_copy_map(&r->copy_cfg, c, e->size, errp)) {
            return false;
        }
    }
    return e->ncopies < 2 || remote_reconcile(r, e, errp);
}

/*
 * The media's allocation from the rack controller: unnamed (a lease the
 * controller keeps across a dropped connection, reclaimed by kona-rack on
 * reconnect), or the named volume with its key from the secret, held
 * exclusively.
 */
static int remote_rack_alloc(KonaRemote *r, KonaRackAlloc **alloc,
                             GError **gerr)
{
    uint8_t key[KONA_KEY_SIZE];
    KonaRackAllocOpts o = {
        .size = r->cfg.size,
        .name = r->cfg.volume,
        .exclusive = r->cfg.volume != NULL,
    };

    if (r->cfg.volume) {
        gsize len;
        const uint8_t *secret = g_bytes_get_data(r->copy_cfg.secret, &len);

        kona_auth_volume_key(secret, len, r->cfg.volume, key);
        o.key = key;
    }
    return kona_rack_alloc_opts(r->rack, &o, alloc, gerr);
}

static bool remote_open_rack(KonaRemote *r, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(KonaRackAlloc) alloc = NULL;
    uint64_t align = MAX(r->cfg.block_size, 4096);

    r->rack = kona_copy_connect(&r->copy_cfg, r->cfg.rackctl, &gerr);
    if (!r->rack) {
        error_setg(errp, "kona-cxl: property 'rackctl': cannot reach rack "
                   "controller '%s': %s", r->cfg.rackctl, gerr->message);
        return false;
    }
    if (remote_rack_alloc(r, &alloc, &gerr) < 0) {
        error_setg(errp, "kona-cxl: property 'rackctl': rack controller "
                   "'%s' refused %" PRIu64 " bytes: %s", r->cfg.rackctl,
                   r->cfg.size, gerr->message);
        return false;
    }
    r->extents = g_new0(KonaExtent, alloc->count);
    for (unsigned i = 0; i < alloc->count; i++) {
        KonaRackPlacementInfo *p = &alloc->placements[i];
        KonaExtent *e = &r->extents[i];
        KonaCopy *c = &e->copies[0];
        uint64_t size;

        c->link = remote_link_for(r, p->addr, "rackctl", errp);
        if (!c->link) {
            return false;
        }
        if (kona_link_slab_open(c->link, p->slab_id, p->key, &size,
                                &gerr) < 0) {
            error_setg(errp, "kona-cxl: property 'rackctl': cannot open slab "
                       "%" PRIu64 " on '%s': %s", p->slab_id, p->addr,
                       gerr->message);
            return false;
        }
        if (p->offset % align || p->size % align || size < p->size) {
            error_setg(errp, "kona-cxl: property 'rackctl': slab %" PRIu64
                       " on '%s' (%" PRIu64 " bytes at %" PRIu64 ") is not "
                       "a whole number of %" PRIu64 "-byte blocks",
                       p->slab_id, p->addr, p->size, p->offset, align);
            return false;
        }
        e->offset = p->offset;
        e->size = p->size;
        c->addr = g_strdup(p->addr);
        c->slab_id = p->slab_id;
        c->live = true;
        e->ncopies = 1;
        r->nextents++;
        trace_kona_remote_extent(p->offset, p->size, p->addr, p->slab_id);
        if (!kona_copy_map(&r->copy_cfg, c, p->size, errp)) {
            return false;
        }
    }
    if (!r->nextents ||
        r->extents[r->nextents - 1].offset +
        r->extents[r->nextents - 1].size < r->cfg.size) {
        error_setg(errp, "kona-cxl: property 'rackctl': the placements of "
                   "'%s' do not cover %" PRIu64 " bytes", r->cfg.rackctl,
                   r->cfg.size);
        return false;
    }
    return true;
}

bool kona_remote_open(KonaRemote *r, const KonaRemoteConfig *cfg,
                      Error **errp)
{
    bool ok = true;

    memset(r, 0, sizeof(*r));
    r->cfg = *cfg;
    r->cfg.memnode = g_strdup(cfg->memnode);
    r->cfg.replica = g_strdup(cfg->replica);
    r->cfg.rackctl = g_strdup(cfg->rackctl);
    r->cfg.volume = g_strdup(cfg->volume);
    r->cfg.secret_file = g_strdup(cfg->secret_file);
    r->links = g_ptr_array_new_with_free_func((GDestroyNotify)kona_link_close);
    r->copy_cfg = (KonaCopyConfig) {
        .timeout_ms = cfg->timeout_ms,
        .path = cfg->path,
        .volume = r->cfg.volume,
        .size = cfg->size,
    };
    kona_resync_init(&r->resync, &r->copy_cfg);
    if (cfg->secret_file) {
        g_autoptr(GError) gerr = NULL;

        r->copy_cfg.secret = kona_auth_load_secret(cfg->secret_file, &gerr);
        if (!r->copy_cfg.secret) {
            error_setg(errp, "kona-cxl: property 'secret-file': %s",
                       gerr->message);
            kona_remote_close(r);
            return false;
        }
    }
    if (cfg->memnode && cfg->rackctl) {
        error_setg(errp, "kona-cxl: properties 'memnode' and 'rackctl' "
                   "exclude each other");
        ok = false;
    } else if (cfg->replica && !cfg->memnode) {
        error_setg(errp, "kona-cxl: property 'replica' needs 'memnode'");
        ok = false;
    } else if (cfg->volume && !cfg->memnode && !cfg->rackctl) {
        error_setg(errp, "kona-cxl: property 'volume' needs 'memnode' or "
                   "'rackctl'");
        ok = false;
    } else if (cfg->volume && !r->copy_cfg.secret) {
        error_setg(errp, "kona-cxl: property 'volume' needs 'secret-file': "
                   "the volume's key is derived from the secret (a name "
                   "alone would let anyone on the host attach it)");
        ok = false;
    } else if (cfg->memnode) {
        ok = remote_open_memnode(r, errp);
    } else if (cfg->rackctl) {
        ok = remote_open_rack(r, errp);
    }
    if (!ok) {
        kona_remote_close(r);
        return false;
    }
    r->masks = g_new(uint64_t, KONA_MAX_WRITE_PAGES);
    r->lines = g_malloc(KONA_MAX_IO);
    return true;
}

void kona_remote_close(KonaRemote *r)
{
    /* First: its thread works with the copies' addresses and config. */
    kona_resync_destroy(&r->resync);
    for (unsigned i = 0; r->extents && i < r->nextents; i++) {
        for (unsigned j = 0; j < r->extents[i].ncopies; j++) {
            kona_copy_unmap(&r->extents[i].copies[j]);
            g_free(r->extents[i].copies[j].addr);
            g_free(r->extents[i].copies[j].refused);
        }
    }
    g_clear_pointer(&r->links, g_ptr_array_unref);
    g_clear_pointer(&r->rack, kona_link_close);
    g_clear_pointer(&r->extents, g_free);
    g_clear_pointer(&r->masks, g_free);
    g_clear_pointer(&r->lines, g_free);
    g_free((char *)r->cfg.memnode);
    g_free((char *)r->cfg.replica);
    g_free((char *)r->cfg.rackctl);
    g_free((char *)r->cfg.volume);
    g_free((char *)r->cfg.secret_file);
    g_clear_pointer(&r->copy_cfg.secret, g_bytes_unref);
    memset(&r->cfg, 0, sizeof(r->cfg));
    r->nextents = 0;
}

/* Dead copies come back in the background (kona-resync.c). */
static void remote_resync(KonaRemote *r)
{
    uint64_t bytes = kona_resync_poll(&r->resync, r->extents, r->nextents,
                                      r->links);

    if (bytes) {
        r->resyncs++;
        r->resync_bytes += bytes;
    }
}

/* The extent holding media [offset, offset + len), or NULL. */
static KonaExtent *remote_extent(KonaRemote *r, uint64_t offset,
                                 uint64_t len)
{
    for (unsigned i = 0; i < r->nextents; i++) {
        KonaExtent *e = &r->extents[i];

        if (offset >= e->offset && offset + len <= e->offset + e->size) {
            return e;
        }
    }
    return NULL;
}

/*
 * The copies that stay live are now newer than @dead: raise their
 * generation on their memnodes before any write-back reaches only them,
 * so that a later reattach knows which copy to trust.
 */
static void remote_bump_generation(KonaExtent *e)
{
    uint64_t next = 0;

    for (unsigned i = 0; i < e->ncopies; i++) {
        next = MAX(next, e->copies[i].gen + 1);
    }
    for (unsigned i = 0; i < e->ncopies; i++) {
        KonaCopy *c = &e->copies[i];

        if (c->live &&
            kona_link_slab_generation(c->link, c->slab_id, next, &c->gen,
                                      NULL) < 0) {
            c->gen = next;      /* a memnode without generations */
        }
    }
}

/* A copy failed even after retries: run on the others from now on. */
static void remote_copy_failed(KonaRemote *r, KonaExtent *e, KonaCopy *c,
                               const char *what, GError *gerr)
{
    unsigned live = 0;

    for (unsigned i = 0; i < e->ncopies; i++) {
        live += e->copies[i].live;
    }
    if (e->ncopies > 1 && live > 1) {
        c->live = false;
        r->failovers++;
        remote_bump_generation(e);
        warn_report("kona-cxl: %s on '%s' failed (%s): running on the other "
                    "copy until it is back", what, c->addr,
                    gerr ? gerr->message : "error");
        trace_kona_remote_failover(c->addr, what);
    }
}

/* Zero every extent on its live copies, then flush them. */
static int remote_zero_all(KonaRemote *r, Error **errp)
{
    for (unsigned i = 0; i < r->nextents; i++) {
        KonaExtent *e = &r->extents[i];
        g_autoptr(GError) gerr = NULL;
        unsigned zeroed = 0;

        for (unsigned j = 0; j < e->ncopies; j++) {
            KonaCopy *c = &e->copies[j];

            if (!c->live) {
                continue;
            }
            g_clear_error(&gerr);
            if (kona_copy_zero(c, 0, e->size, &gerr) == 0) {
                zeroed++;
            } else {
                remote_copy_failed(r, e, c, "sanitize", gerr);
            }
        }
        kona_resync_note_zero(&r->resync, e);
        if (!zeroed) {
            error_setg(errp, "kona-cxl: sanitize of [0x%" PRIx64 ", +0x%"
                       PRIx64 ") failed: %s", e->offset, e->size,
                       gerr ? gerr->message : "no live copy");
            return -EIO;
        }
    }
    return kona_remote_flush(r, errp);
}

/* A Sanitize still owed to the memnodes: done now, or this access fails. */
static int remote_zero_owed(KonaRemote *r, Error **errp)
{
    if (likely(!r->zero_pending)) {
        return 0;
    }
    if (remote_zero_all(r, errp) < 0) {
        error_prepend(errp, "the media's Sanitize is not done yet: ");
        return -EIO;
    }
    r->zero_pending = false;
    return 0;
}

int kona_remote_zero(KonaRemote *r, Error **errp)
{
    r->zero_pending = true;
    remote_resync(r);
    return remote_zero_owed(r, errp);
}

int kona_remote_read(KonaRemote *r, uint64_t offset, void *buf, uint32_t len,
                     const uint8_t **data, Error **errp)
{
    KonaExtent *e = remote_extent(r, offset, len);
    g_autoptr(GError) gerr = NULL;
    const char *addr = "none";
    int ret = -EIO;

    if (!e) {
        error_setg(errp, "kona-cxl: no extent holds [0x%" PRIx64 ", +%u)",
                   offset, len);
        return -EINVAL;
    }
    g_assert(len <= KONA_REMOTE_MAX_CHUNKS * KONA_MAX_IO);
    remote_resync(r);
    if (remote_zero_owed(r, errp) < 0) {
        return -EIO;
    }
    for (unsigned i = 0; i < e->ncopies; i++) {
        KonaCopy *c = &e->copies[i];

        if (!c->live) {
            continue;
        }
        addr = c->addr;
        for (int t = 0; t < KONA_REMOTE_TRIES; t++) {
            g_clear_error(&gerr);
            ret = kona_copy_read(c, offset - e->offset, buf, len, data,
                                   &gerr);
            if (ret == 0) {
                return 0;
            }
            trace_kona_copy_retry("read", offset, gerr ? gerr->message : "");
        }
        remote_copy_failed(r, e, c, "fetch", gerr);
    }
    error_setg(errp, "kona-cxl: fetch of [0x%" PRIx64 ", +%u) from '%s' "
               "failed: %s", offset, len, addr,
               gerr ? gerr->message : "no live copy");
    return ret;
}

/* Pack the masked lines of @npages pages into r->lines; returns bytes. */
static size_t remote_pack(KonaRemote *r, uint64_t page_base, uint32_t npages,
                          const uint64_t *masks, const uint8_t *data,
                          uint64_t data_base)
{
    size_t out = 0;

    for (uint32_t p = 0; p < npages; p++) {
        uint64_t m = masks[p];

        while (m) {
            unsigned line = __builtin_ctzll(m);
            uint64_t at = page_base + (uint64_t)p * 4096 + line * 64;

            memcpy(r->lines + out, data + (at - data_base), 64);
            out += 64;
            m &= m - 1;
        }
    }
    return out;
}



/* Does any live copy of @e take its writes over a socket? */
static bool remote_needs_packing(KonaExtent *e)
{
    for (unsigned i = 0; i < e->ncopies; i++) {
        if (e->copies[i].live && !e->copies[i].shared) {
            return true;
        }
    }
    return false;
}

int kona_remote_write_lines(KonaRemote *r, uint64_t page_base,
                            uint32_t npages, const uint64_t *masks,
                            const uint8_t *data, uint64_t data_base,
                            Error **errp)
{
    KonaExtent *e = remote_extent(r, page_base, (uint64_t)npages * 4096);

    if (!e) {
        error_setg(errp, "kona-cxl: no extent holds pages [0x%" PRIx64
                   ", +%u)", page_base, npages);
        return -EINVAL;
    }
    remote_resync(r);
    if (remote_zero_owed(r, errp) < 0) {
        return -EIO;
    }
    for (uint32_t done = 0; done < npages;) {
        uint32_t n = MIN(npages - done, KONA_MAX_WRITE_PAGES);
        uint64_t base = page_base + (uint64_t)done * 4096;
        /* Where page @base's bytes are (lines outside the block unused). */
        const uint8_t *pages = data + (base - data_base);
        g_autoptr(GError) gerr = NULL;
        unsigned written = 0;

        if (remote_needs_packing(e)) {
            remote_pack(r, base, n, masks + done, data, data_base);
        }
        /* Complete when every live copy has it. */
        for (unsigned i = 0; i < e->ncopies; i++) {
            KonaCopy *c = &e->copies[i];

            if (!c->live) {
                continue;
            }
            g_clear_error(&gerr);
            if (kona_copy_write(c, base - e->offset, n, masks + done,
                                  pages, r->lines, &gerr) == 0) {
                written++;
            } else {
                remote_copy_failed(r, e, c, "write-back", gerr);
            }
        }
        /* A copy being brought back gets these pages again. */
        kona_resync_note_write(&r->resync, e, base - e->offset, n);
        if (!written) {
            error_setg(errp, "kona-cxl: write-back of pages [0x%" PRIx64
                       ", +%u) failed: %s", base, n,
                       gerr ? gerr->message : "no live copy");
            return -EIO;
        }
        done += n;
    }
    return 0;
}

static void remote_free_error(gpointer err)
{
    if (err) {
        g_error_free(err);
    }
}

/*
 * FLUSH on @l once per kona_remote_flush (many extents of a rack may share
 * one memnode): the first answer is kept in @done for the others.
 */
static int remote_flush_link(KonaLink *l, GHashTable *done, GError **gerr)
{
    GError *prev;

    if (g_hash_table_lookup_extended(done, l, NULL, (gpointer *)&prev)) {
        if (prev) {
            *gerr = g_error_copy(prev);
            return -EIO;
        }
        return 0;
    }
    if (kona_link_flush(l, gerr) < 0) {
        g_hash_table_insert(done, l, g_error_copy(*gerr));
        return -EIO;
    }
    g_hash_table_insert(done, l, NULL);
    return 0;
}

int kona_remote_flush(KonaRemote *r, Error **errp)
{
    g_autoptr(GHashTable) done = g_hash_table_new_full(
        NULL, NULL, NULL, remote_free_error);
    int ret = 0;

    /* Every link is flushed, even after one failed: the others are fine. */
    for (unsigned i = 0; i < r->nextents; i++) {
        KonaExtent *e = &r->extents[i];

        for (unsigned j = 0; j < e->ncopies; j++) {
            KonaCopy *c = &e->copies[j];
            g_autoptr(GError) gerr = NULL;

            if (!c->live) {
                continue;
            }
            if (kona_copy_ready(c, true, &gerr) &&
                remote_flush_link(c->link, done, &gerr) == 0) {
                if (!c->refused) {
                    continue;
                }
                g_set_error(&gerr, KONA_ERROR, EACCES, "%s", c->refused);
            }
            g_clear_pointer(&c->refused, g_free);
            remote_copy_failed(r, e, c, "flush", gerr);
            if (c->live && ret == 0) {
                error_setg(errp, "kona-cxl: flush of '%s' failed: %s",
                           c->addr, gerr ? gerr->message : "error");
                ret = -EIO;
            }
        }
    }
    return ret;
}

void kona_remote_sync_notes(KonaRemote *r)
{
    for (guint i = 0; i < r->links->len; i++) {
        KonaLink *l = g_ptr_array_index(r->links, i);

        /* In order: the PING's answer comes after the notes'. */
        if (kona_link_connected(l) && kona_link_push_notes(l, NULL) == 0) {
            kona_link_ping(l, NULL);
        }
    }
}

void kona_remote_paths(KonaRemote *r, unsigned *mapped, unsigned *copies)
{
    *mapped = *copies = 0;
    for (unsigned i = 0; i < r->nextents; i++) {
        for (unsigned j = 0; j < r->extents[i].ncopies; j++) {
            KonaCopy *c = &r->extents[i].copies[j];

            *mapped += c->live && c->shared;
            (*copies)++;
        }
    }
}

bool kona_remote_same_nodes(KonaRemote *r, uint64_t a, uint64_t b)
{
    KonaExtent *ea = remote_extent(r, a, 1), *eb = remote_extent(r, b, 1);

    if (ea == eb) {
        return true;
    }
    if (!ea || !eb || ea->ncopies != eb->ncopies) {
        return false;
    }
    /* Rack stripes on the same memnodes share their links. */
    for (unsigned i = 0; i < ea->ncopies; i++) {
        if (ea->copies[i].link != eb->copies[i].link) {
            return false;
        }
    }
    return true;
}

void kona_remote_keepalive(KonaRemote *r)
{
    if (r->rack && kona_link_connected(r->rack) &&
        kona_link_check(r->rack, NULL) < 0) {
        /* The reconnect reclaims the allocation (kona-rack replays it). */
        kona_link_reconnect(r->rack, NULL);
    }
    for (guint i = 0; i < r->links->len; i++) {
        KonaLink *l = g_ptr_array_index(r->links, i);

        if (kona_link_connected(l) && kona_link_check(l, NULL) < 0) {
            kona_link_reconnect(l, NULL);       /* reopens its slabs */
        }
    }
}

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

/* A broken connection is re-made by kona-link on the next call; retry. */
#define KONA_REMOTE_TRIES 3
/* Chunks of one fetch: blocks are at most 2 MiB, a READ at most 1 MiB. */
#define KONA_REMOTE_MAX_CHUNKS 2
#define KONA_RESYNC_INTERVAL_MS 1000
/* A mapped copy's memnode is checked for life at most this often. */
#define KONA_REMOTE_CHECK_NS    (1000 * 1000)

/* Every connection of the device: same timeouts, same secret. */
static KonaLink *remote_connect(KonaRemote *r, const char *addr,
                                GError **gerr)
{
    KonaLinkOptions o = {
        .connect_timeout_ms = r->cfg.timeout_ms,
        .timeout_ms = r->cfg.timeout_ms,
        .name = "kona-cxl",
    };
    gsize len = 0;

    if (r->secret) {
        o.secret = g_bytes_get_data(r->secret, &len);
        o.secret_len = len;
    }
    return kona_link_connect_opts(addr, &o, gerr);
}

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
    l = remote_connect(r, addr, &gerr);
    if (!l) {
        error_setg(errp, "kona-cxl: property '%s': cannot reach memory node "
                   "'%s': %s", prop, addr, gerr->message);
        return NULL;
    }
    g_ptr_array_add(r->links, l);
    return l;
}

/* The media's slab on @l: the named volume, or a fresh slab. */
static int remote_get_slab(KonaRemote *r, KonaLink *l, uint64_t *slab,
                           const char *prop, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    uint64_t size = r->cfg.size;
    bool created = true;
    int ret;

    if (r->cfg.volume) {
        ret = kona_link_slab_attach(l, r->cfg.volume, r->cfg.size, true,
                                    slab, &size, &created, &gerr);
    } else {
        ret = kona_link_slab_alloc(l, r->cfg.size, slab, &gerr);
    }
    if (ret < 0) {
        error_setg(errp, "kona-cxl: property '%s': memory node '%s' gave no "
                   "slab of %" PRIu64 " bytes: %s", prop, kona_link_addr(l),
                   r->cfg.size, gerr->message);
        return ret;
    }
    if (size != r->cfg.size) {
        error_setg(errp, "kona-cxl: property 'volume': volume '%s' on '%s' "
                   "holds %" PRIu64 " bytes but property 'size' is %" PRIu64,
                   r->cfg.volume, kona_link_addr(l), size, r->cfg.size);
        return -EINVAL;
    }
    return 0;
}

/*
 * Serve @c through a mapping of its slab where the path allows: auto maps
 * wherever the memnode offers it (an unusable descriptor falls back to
 * the socket, with a warning), shared insists, socket never maps.
 */
static bool remote_map_copy(KonaRemote *r, KonaCopy *c, uint64_t need,
                            Error **errp)
{
    bool insist = r->cfg.path == KONA_REMOTE_PATH_SHARED;
    g_autoptr(GError) gerr = NULL;
    uint64_t size = 0;
    void *map;

    if (r->cfg.path == KONA_REMOTE_PATH_SOCKET) {
        return true;
    }
    if (!kona_link_offers_shared(c->link)) {
        if (insist) {
            error_setg(errp, "kona-cxl: property 'remote-path': memory node "
                       "'%s' does not offer the shared path (only a memnode "
                       "on this host, reached at a unix: address and not "
                       "started with --no-shared, does)", c->addr);
            return false;
        }
        return true;
    }
    map = kona_link_slab_map(c->link, c->slab_id, &size, &gerr);
    if (map && size < need) {
        kona_link_slab_unmap(map, size);
        map = NULL;
        g_set_error(&gerr, KONA_ERROR, EINVAL, "the mapping holds %"
                    PRIu64 " bytes, the slab %" PRIu64, size, need);
    }
    if (!map) {
        if (insist) {
            error_setg(errp, "kona-cxl: property 'remote-path': cannot map "
                       "slab %" PRIu64 " of memory node '%s': %s",
                       c->slab_id, c->addr, gerr->message);
            return false;
        }
        warn_report("kona-cxl: memory node '%s': cannot map slab %" PRIu64
                    " (%s): using the socket path", c->addr, c->slab_id,
                    gerr->message);
        return true;
    }
    c->shared = true;
    c->map = map;
    c->map_size = size;
    c->checked_ns = get_clock();
    trace_kona_remote_mapped(c->addr, c->slab_id, size);
    return true;
}

static void remote_unmap_copy(KonaCopy *c)
{
    if (c->map) {
        kona_link_slab_unmap(c->map, c->map_size);
        c->map = NULL;
    }
}

/*
 * A mapped copy is usable if its memnode is still there (checked at most
 * every KONA_REMOTE_CHECK_NS, or now with @now).  One that went away is
 * reconnected, its slab reopened by kona-link and mapped again: a memnode
 * restarted with --data-dir gives back the same file; without, the slab
 * is gone and the copy fails as a socket copy would.
 */
static bool remote_copy_ready(KonaCopy *c, bool now, GError **gerr)
{
    int64_t t = get_clock();
    uint64_t size;

    if (!c->shared) {
        return true;
    }
    if (c->map && !now && t - c->checked_ns < KONA_REMOTE_CHECK_NS) {
        return true;
    }
    if (c->map && kona_link_check(c->link, NULL) == 0) {
        g_autoptr(GError) refused = NULL;

        c->checked_ns = t;
        /* The memnode's counters lag the write-backs by this much. */
        if (kona_link_push_notes(c->link, &refused) < 0 && !c->refused) {
            /* Reported by the next FLUSH, as the link itself would. */
            c->refused = g_strdup(refused->message);
        }
        return true;
    }
    remote_unmap_copy(c);
    if (!kona_link_connected(c->link) &&
        kona_link_reconnect(c->link, gerr) < 0) {
        return false;
    }
    c->map = kona_link_slab_map(c->link, c->slab_id, &size, gerr);
    if (!c->map) {
        return false;
    }
    c->map_size = size;
    c->checked_ns = t;
    trace_kona_remote_mapped(c->addr, c->slab_id, size);
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
        if (!c->link || remote_get_slab(r, c->link, &c->slab_id, props[i],
                                        errp) < 0) {
            return false;
        }
        c->addr = g_strdup(addrs[i]);
        c->live = true;
        e->ncopies++;
        trace_kona_remote_extent(0, e->size, addrs[i], c->slab_id);
        if (!remote_map_copy(r, c, e->size, errp)) {
            return false;
        }
    }
    return true;
}

static bool remote_open_rack(KonaRemote *r, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(KonaRackAlloc) alloc = NULL;
    uint64_t align = MAX(r->cfg.block_size, 4096);

    r->rack = remote_connect(r, r->cfg.rackctl, &gerr);
    if (!r->rack) {
        error_setg(errp, "kona-cxl: property 'rackctl': cannot reach rack "
                   "controller '%s': %s", r->cfg.rackctl, gerr->message);
        return false;
    }
    if (kona_rack_alloc(r->rack, r->cfg.size, 0, r->cfg.volume, &alloc,
                        &gerr) < 0) {
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
        if (!remote_map_copy(r, c, p->size, errp)) {
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
    if (cfg->secret_file) {
        g_autoptr(GError) gerr = NULL;

        r->secret = kona_auth_load_secret(cfg->secret_file, &gerr);
        if (!r->secret) {
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
    } else if (cfg->memnode) {
        ok = remote_open_memnode(r, errp);
    } else if (cfg->rackctl) {
        ok = remote_open_rack(r, errp);
    } else if (cfg->volume) {
        error_setg(errp, "kona-cxl: property 'volume' needs 'memnode' or "
                   "'rackctl'");
        ok = false;
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
    for (unsigned i = 0; r->extents && i < r->nextents; i++) {
        for (unsigned j = 0; j < r->extents[i].ncopies; j++) {
            remote_unmap_copy(&r->extents[i].copies[j]);
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
    g_clear_pointer(&r->secret, g_bytes_unref);
    memset(&r->cfg, 0, sizeof(r->cfg));
    r->nextents = 0;
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
        warn_report("kona-cxl: %s on '%s' failed (%s): running on the other "
                    "copy until it is back", what, c->addr,
                    gerr ? gerr->message : "error");
        trace_kona_remote_failover(c->addr, what);
    }
}

/*
 * Read [off, off + len) of @c's slab: into @buf, or with @data (not NULL)
 * straight from the mapping, *data pointing there (or at @buf).
 */
static int remote_read_copy(KonaCopy *c, uint64_t off, void *buf,
                            uint32_t len, const uint8_t **data,
                            GError **gerr)
{
    uint64_t ids[KONA_REMOTE_MAX_CHUNKS];
    unsigned n = 0;
    int ret;

    if (c->shared) {
        if (!remote_copy_ready(c, false, gerr)) {
            return -EIO;
        }
        if (data) {
            *data = c->map + off;
        } else {
            memcpy(buf, c->map + off, len);
        }
        return 0;
    }
    if (data) {
        *data = buf;
    }

    /* Pipelined: every chunk of a large block in flight at once. */
    for (uint32_t done = 0; done < len; done += KONA_MAX_IO) {
        ids[n] = kona_link_submit_read(c->link, c->slab_id, off + done,
                                       (uint8_t *)buf + done,
                                       MIN(len - done, KONA_MAX_IO), gerr);
        if (!ids[n]) {
            break;
        }
        n++;
    }
    ret = *gerr ? -EIO : 0;
    /* Every submitted request is waited for, even after a failure. */
    for (unsigned i = 0; i < n; i++) {
        int r2 = kona_link_wait(c->link, ids[i], *gerr ? NULL : gerr);

        ret = ret ? ret : r2;
    }
    return ret;
}

static void remote_try_resync(KonaRemote *r);

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
    remote_try_resync(r);
    for (unsigned i = 0; i < e->ncopies; i++) {
        KonaCopy *c = &e->copies[i];

        if (!c->live) {
            continue;
        }
        addr = c->addr;
        for (int t = 0; t < KONA_REMOTE_TRIES; t++) {
            g_clear_error(&gerr);
            ret = remote_read_copy(c, offset - e->offset, buf, len, data,
                                   &gerr);
            if (ret == 0) {
                return 0;
            }
            trace_kona_remote_retry("read", offset, gerr ? gerr->message : "");
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

/*
 * Copy the masked lines of @npages pages at @pages into @c's mapping at
 * slab offset @off, and tell the memnode (batched).
 */
static int remote_write_mapped(KonaCopy *c, uint64_t off, uint32_t npages,
                               const uint64_t *masks, const uint8_t *pages,
                               GError **gerr)
{
    if (!remote_copy_ready(c, false, gerr)) {
        return -EIO;
    }
    for (uint32_t p = 0; p < npages; p++) {
        uint8_t *dst = c->map + off + (uint64_t)p * 4096;
        const uint8_t *src = pages + (uint64_t)p * 4096;

        if (masks[p] == UINT64_MAX) {
            memcpy(dst, src, 4096);
        } else {
            kona_lines_copy(dst, src, masks[p]);
        }
    }
    return kona_link_note_lines(c->link, c->slab_id, off, npages, masks,
                                gerr);
}

/*
 * Write the masked lines to one copy, with retries: through its mapping
 * from @pages, or the packed @lines over its socket.
 */
static int remote_write_copy(KonaCopy *c, uint64_t off, uint32_t npages,
                             const uint64_t *masks, const uint8_t *pages,
                             const uint8_t *lines, GError **gerr)
{
    int ret = -EIO;

    for (int t = 0; t < KONA_REMOTE_TRIES; t++) {
        g_clear_error(gerr);
        ret = c->shared
              ? remote_write_mapped(c, off, npages, masks, pages, gerr)
              : kona_link_write_lines(c->link, c->slab_id, off, npages,
                                      masks, lines, gerr);
        if (ret == 0) {
            return 0;
        }
        trace_kona_remote_retry("write", off,
                                *gerr ? (*gerr)->message : "error");
    }
    return ret;
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
    remote_try_resync(r);
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
            if (remote_write_copy(c, base - e->offset, n, masks + done,
                                  pages, r->lines, &gerr) == 0) {
                written++;
            } else {
                remote_copy_failed(r, e, c, "write-back", gerr);
            }
        }
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
        NULL, NULL, NULL, (GDestroyNotify)g_error_free);
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
            if (remote_copy_ready(c, true, &gerr) &&
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

/* Copy the whole extent from a live copy to @to, then flush @to. */
static int remote_copy_extent(KonaRemote *r, KonaExtent *e, KonaCopy *from,
                              KonaCopy *to, GError **gerr)
{
    uint64_t full[KONA_MAX_WRITE_PAGES];
    g_autofree uint8_t *buf = g_malloc(KONA_MAX_IO);

    memset(full, 0xff, sizeof(full));
    for (uint64_t off = 0; off < e->size; off += KONA_MAX_IO) {
        uint32_t len = MIN(e->size - off, KONA_MAX_IO);
        const uint8_t *src;
        int ret = remote_read_copy(from, off, buf, len, &src, gerr);

        if (ret == 0) {
            ret = remote_write_copy(to, off, len / 4096, full, src, src,
                                    gerr);
        }
        if (ret < 0) {
            return ret;
        }
    }
    r->resync_bytes += e->size;
    return kona_link_flush(to->link, gerr);
}

/*
 * Bring dead copies back: at most once a second, reconnect to a dead
 * copy's memnode; if it answers, give the copy a slab there (the volume by
 * name, or a new one) and fill it from a live copy.
 */
static void remote_try_resync(KonaRemote *r)
{
    int64_t now = get_clock() / SCALE_MS;

    if (now < r->next_resync_ms) {
        return;
    }
    r->next_resync_ms = now + KONA_RESYNC_INTERVAL_MS;
    for (unsigned i = 0; i < r->nextents; i++) {
        KonaExtent *e = &r->extents[i];
        KonaCopy *from = NULL;

        for (unsigned j = 0; j < e->ncopies; j++) {
            from = e->copies[j].live ? &e->copies[j] : from;
        }
        for (unsigned j = 0; from && j < e->ncopies; j++) {
            KonaCopy *c = &e->copies[j];
            g_autoptr(GError) gerr = NULL;
            Error *err = NULL;
            KonaCopy fresh = { .addr = c->addr, .live = true };

            if (c->live) {
                continue;
            }
            fresh.link = remote_connect(r, c->addr, &gerr);
            if (!fresh.link) {
                continue;
            }
            if (remote_get_slab(r, fresh.link, &fresh.slab_id, "replica",
                                &err) < 0 ||
                !remote_map_copy(r, &fresh, e->size, &err) ||
                remote_copy_extent(r, e, from, &fresh, &gerr) < 0) {
                warn_report("kona-cxl: resync of '%s' failed: %s", c->addr,
                            err ? error_get_pretty(err) :
                            gerr ? gerr->message : "error");
                error_free(err);
                remote_unmap_copy(&fresh);
                kona_link_close(fresh.link);
                continue;
            }
            /* The new connection and slab replace the dead ones. */
            remote_unmap_copy(c);
            g_free(c->refused);
            g_ptr_array_remove(r->links, c->link);
            g_ptr_array_add(r->links, fresh.link);
            *c = fresh;
            r->resyncs++;
            info_report("kona-cxl: '%s' is back and resynced (%" PRIu64
                        " bytes)", c->addr, e->size);
            trace_kona_remote_resync(c->addr, e->size);
        }
    }
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

bool kona_remote_same_extent(KonaRemote *r, uint64_t a, uint64_t b)
{
    return remote_extent(r, a, 1) == remote_extent(r, b, 1);
}

/*
 * Kona-CXL: the media's remote memory, through kona-link.
 *
 * Runs with the device lock held and the BQL released (see kona-media.c):
 * nothing here may touch QEMU state other than the KonaRemote.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/kona-memnode/kona-rack.h"
#include "kona-remote.h"
#include "trace.h"

/* A broken connection is re-made by kona-link on the next call; retry. */
#define KONA_REMOTE_TRIES 3
/* Chunks of one fetch: blocks are at most 2 MiB, a READ at most 1 MiB. */
#define KONA_REMOTE_MAX_CHUNKS 2

static KonaLink *remote_link_for(KonaRemote *r, const char *addr,
                                 unsigned timeout_ms, const char *prop,
                                 Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    KonaLink *l;

    for (guint i = 0; i < r->links->len; i++) {
        l = g_ptr_array_index(r->links, i);
        if (g_str_equal(kona_link_addr(l), addr)) {
            return l;
        }
    }
    l = kona_link_connect(addr, timeout_ms, &gerr);
    if (!l) {
        error_setg(errp, "kona-cxl: property '%s': cannot reach memory node "
                   "'%s': %s", prop, addr, gerr->message);
        return NULL;
    }
    g_ptr_array_add(r->links, l);
    return l;
}

static bool remote_open_memnode(KonaRemote *r, const KonaRemoteConfig *cfg,
                                Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    KonaLink *l = remote_link_for(r, cfg->memnode, cfg->timeout_ms,
                                  "memnode", errp);
    uint64_t slab, size = cfg->size;
    bool created = true;
    int ret;

    if (!l) {
        return false;
    }
    if (cfg->volume) {
        ret = kona_link_slab_attach(l, cfg->volume, cfg->size, true, &slab,
                                    &size, &created, &gerr);
    } else {
        ret = kona_link_slab_alloc(l, cfg->size, &slab, &gerr);
    }
    if (ret < 0) {
        error_setg(errp, "kona-cxl: property '%s': memory node '%s' gave no "
                   "slab of %" PRIu64 " bytes: %s",
                   cfg->volume ? "volume" : "memnode", cfg->memnode,
                   cfg->size, gerr->message);
        return false;
    }
    if (size != cfg->size) {
        error_setg(errp, "kona-cxl: property 'volume': volume '%s' on '%s' "
                   "holds %" PRIu64 " bytes but property 'size' is %" PRIu64,
                   cfg->volume, cfg->memnode, size, cfg->size);
        return false;
    }
    r->extents = g_new0(KonaExtent, 1);
    r->extents[0] = (KonaExtent) {
        .offset = 0, .size = size, .slab_id = slab, .link = l,
    };
    r->nextents = 1;
    trace_kona_remote_extent(0, size, cfg->memnode, slab);
    return true;
}

static bool remote_open_rack(KonaRemote *r, const KonaRemoteConfig *cfg,
                             Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(KonaRackAlloc) alloc = NULL;
    uint64_t align = MAX(cfg->block_size, 4096);

    r->rack = kona_link_connect(cfg->rackctl, cfg->timeout_ms, &gerr);
    if (!r->rack) {
        error_setg(errp, "kona-cxl: property 'rackctl': cannot reach rack "
                   "controller '%s': %s", cfg->rackctl, gerr->message);
        return false;
    }
    if (kona_rack_alloc(r->rack, cfg->size, 0, cfg->volume, &alloc,
                        &gerr) < 0) {
        error_setg(errp, "kona-cxl: property 'rackctl': rack controller "
                   "'%s' refused %" PRIu64 " bytes: %s", cfg->rackctl,
                   cfg->size, gerr->message);
        return false;
    }
    r->extents = g_new0(KonaExtent, alloc->count);
    for (unsigned i = 0; i < alloc->count; i++) {
        KonaRackPlacementInfo *p = &alloc->placements[i];
        KonaExtent *e = &r->extents[i];
        uint64_t size;

        e->link = remote_link_for(r, p->addr, cfg->timeout_ms, "rackctl",
                                  errp);
        if (!e->link) {
            return false;
        }
        if (kona_link_slab_open(e->link, p->slab_id, p->key, &size,
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
        *e = (KonaExtent) {
            .offset = p->offset, .size = p->size, .slab_id = p->slab_id,
            .link = e->link,
        };
        r->nextents++;
        trace_kona_remote_extent(p->offset, p->size, p->addr, p->slab_id);
    }
    if (!r->nextents ||
        r->extents[r->nextents - 1].offset +
        r->extents[r->nextents - 1].size < cfg->size) {
        error_setg(errp, "kona-cxl: property 'rackctl': the placements of "
                   "'%s' do not cover %" PRIu64 " bytes", cfg->rackctl,
                   cfg->size);
        return false;
    }
    return true;
}

bool kona_remote_open(KonaRemote *r, const KonaRemoteConfig *cfg,
                      Error **errp)
{
    bool ok = true;

    memset(r, 0, sizeof(*r));
    r->links = g_ptr_array_new_with_free_func((GDestroyNotify)kona_link_close);
    if (cfg->memnode && cfg->rackctl) {
        error_setg(errp, "kona-cxl: properties 'memnode' and 'rackctl' "
                   "exclude each other");
        ok = false;
    } else if (cfg->memnode) {
        ok = remote_open_memnode(r, cfg, errp);
    } else if (cfg->rackctl) {
        ok = remote_open_rack(r, cfg, errp);
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
    g_clear_pointer(&r->links, g_ptr_array_unref);
    g_clear_pointer(&r->rack, kona_link_close);
    g_clear_pointer(&r->extents, g_free);
    g_clear_pointer(&r->masks, g_free);
    g_clear_pointer(&r->lines, g_free);
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

int kona_remote_read(KonaRemote *r, uint64_t offset, void *buf, uint32_t len,
                     Error **errp)
{
    KonaExtent *e = remote_extent(r, offset, len);
    g_autoptr(GError) gerr = NULL;
    int ret = -EINVAL;

    if (!e) {
        error_setg(errp, "kona-cxl: no extent holds [0x%" PRIx64 ", +%u)",
                   offset, len);
        return -EINVAL;
    }
    g_assert(len <= KONA_REMOTE_MAX_CHUNKS * KONA_MAX_IO);
    for (int t = 0; t < KONA_REMOTE_TRIES; t++) {
        uint64_t ids[KONA_REMOTE_MAX_CHUNKS];
        unsigned n = 0;

        g_clear_error(&gerr);
        /* Pipelined: every chunk of a large block in flight at once. */
        for (uint32_t done = 0; done < len; done += KONA_MAX_IO) {
            ids[n] = kona_link_submit_read(e->link, e->slab_id,
                                           offset - e->offset + done,
                                           (uint8_t *)buf + done,
                                           MIN(len - done, KONA_MAX_IO),
                                           &gerr);
            if (!ids[n]) {
                break;
            }
            n++;
        }
        ret = gerr ? -EIO : 0;
        /* Every submitted request is waited for, even after a failure. */
        for (unsigned i = 0; i < n; i++) {
            int r2 = kona_link_wait(e->link, ids[i], gerr ? NULL : &gerr);

            ret = ret ? ret : r2;
        }
        if (ret == 0) {
            return 0;
        }
        trace_kona_remote_retry("read", offset, gerr ? gerr->message : "");
    }
    error_setg(errp, "kona-cxl: fetch of [0x%" PRIx64 ", +%u) from '%s' "
               "failed: %s", offset, len, kona_link_addr(e->link),
               gerr ? gerr->message : "error");
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

int kona_remote_write_lines(KonaRemote *r, uint64_t page_base,
                            uint32_t npages, const uint64_t *masks,
                            const uint8_t *data, uint64_t data_base,
                            Error **errp)
{
    KonaExtent *e = remote_extent(r, page_base, (uint64_t)npages * 4096);
    g_autoptr(GError) gerr = NULL;
    int ret = -EINVAL;

    if (!e) {
        error_setg(errp, "kona-cxl: no extent holds pages [0x%" PRIx64
                   ", +%u)", page_base, npages);
        return -EINVAL;
    }
    for (uint32_t done = 0; done < npages;) {
        uint32_t n = MIN(npages - done, KONA_MAX_WRITE_PAGES);
        uint64_t base = page_base + (uint64_t)done * 4096;

        remote_pack(r, base, n, masks + done, data, data_base);
        for (int t = 0; t < KONA_REMOTE_TRIES; t++) {
            g_clear_error(&gerr);
            ret = kona_link_write_lines(e->link, e->slab_id,
                                        base - e->offset, n, masks + done,
                                        r->lines, &gerr);
            if (ret == 0) {
                break;
            }
            trace_kona_remote_retry("write", base, gerr->message);
        }
        if (ret < 0) {
            error_setg(errp, "kona-cxl: write-back of pages [0x%" PRIx64
                       ", +%u) to '%s' failed: %s", base, n,
                       kona_link_addr(e->link), gerr->message);
            return ret;
        }
        done += n;
    }
    return 0;
}

int kona_remote_flush(KonaRemote *r, Error **errp)
{
    for (guint i = 0; r->links && i < r->links->len; i++) {
        KonaLink *l = g_ptr_array_index(r->links, i);
        g_autoptr(GError) gerr = NULL;

        if (kona_link_flush(l, &gerr) < 0) {
            error_setg(errp, "kona-cxl: flush of '%s' failed: %s",
                       kona_link_addr(l), gerr->message);
            return -EIO;
        }
    }
    return 0;
}

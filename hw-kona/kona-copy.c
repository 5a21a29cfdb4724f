/*
 * Kona-CXL: one copy of an extent of the media, on one memory node (see
 * kona-copy.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/kona-memnode/kona-auth.h"
#include "hw/kona-memnode/kona-guard.h"
#include "hw/kona-memnode/kona-sock.h"
#include "kona-copy.h"
#include "trace.h"

/* A broken connection is re-made by kona-link on the next call; retry. */
#define KONA_COPY_TRIES         3
/* Chunks of one fetch: blocks are at most 2 MiB, a READ at most 1 MiB. */
#define KONA_COPY_MAX_CHUNKS    2
/*
 * Tries of an exclusive attach that is busy, 100 ms apart.  A volume held by a QEMU that died stays held until its memnode notices:
 * at once for a close, within KONA_SOCK_DEAD_S for a close lost in a
 * partition.  Attaching waits that long and a little more.
 */
#define KONA_COPY_BUSY_TRIES    ((KONA_SOCK_DEAD_S + 4) * 10)
/* A mapped copy's memnode is checked for life at most this often. */
#define KONA_COPY_CHECK_NS      (1000 * 1000)

/* Every connection of the device: same timeouts, same secret. */
KonaLink *kona_copy_connect(const KonaCopyConfig *cfg, const char *addr,
                            GError **gerr)
{
    KonaLinkOptions o = {
        .connect_timeout_ms = cfg->timeout_ms,
        .timeout_ms = cfg->timeout_ms,
        .name = "kona-cxl",
    };
    gsize len = 0;

    if (cfg->secret) {
        o.secret = g_bytes_get_data(cfg->secret, &len);
        o.secret_len = len;
    }
    return kona_link_connect_opts(addr, &o, gerr);
}

/* The media's slab on @l: the named volume, or a fresh slab. */
int kona_copy_get_slab(const KonaCopyConfig *cfg, KonaLink *l,
                       uint64_t *slab, const char *prop, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    uint64_t size = cfg->size;
    bool created = true;
    int ret;

    if (cfg->volume) {
        uint8_t key[KONA_KEY_SIZE];
        gsize len;
        const uint8_t *secret = g_bytes_get_data(cfg->secret, &len);

        /*
         * The volume's key comes from the secret, so a QEMU restarted with
         * the same secret-file gets it back and nobody else can; held
         * exclusively, so a second QEMU cannot write it under this one.
         */
        kona_auth_volume_key(secret, len, cfg->volume, key);
        /* A QEMU that just died may hold it until its memnode notices. */
        for (int t = 0; t < KONA_COPY_BUSY_TRIES; t++) {
            g_clear_error(&gerr);
            ret = kona_link_slab_attach_key(l, cfg->volume, cfg->size,
                                            KONA_ATTACH_F_CREATE |
                                            KONA_ATTACH_F_EXCLUSIVE, key,
                                            slab, &size, &created, &gerr);
            if (ret != -EBUSY) {
                break;
            }
            g_usleep(100 * 1000);
        }
        if (ret == -EBUSY) {
            error_setg(errp, "kona-cxl: property 'volume': volume '%s' on "
                       "'%s' is in use by another QEMU", cfg->volume,
                       kona_link_addr(l));
            return ret;
        }
    } else {
        ret = kona_link_slab_alloc(l, cfg->size, slab, &gerr);
    }
    if (ret < 0) {
        error_setg(errp, "kona-cxl: property '%s': memory node '%s' gave no "
                   "slab of %" PRIu64 " bytes: %s", prop, kona_link_addr(l),
                   cfg->size, gerr->message);
        return ret;
    }
    if (size != cfg->size) {
        error_setg(errp, "kona-cxl: property 'volume': volume '%s' on '%s' "
                   "holds %" PRIu64 " bytes but property 'size' is %" PRIu64,
                   cfg->volume, kona_link_addr(l), size, cfg->size);
        return -EINVAL;
    }
    return 0;
}

/*
 * Serve @c through a mapping of its slab where the path allows: auto maps
 * wherever the memnode offers it (an unusable descriptor falls back to
 * the socket, with a warning), shared insists, socket never maps.
 */
bool kona_copy_map(const KonaCopyConfig *cfg, KonaCopy *c, uint64_t need,
                   Error **errp)
{
    bool insist = cfg->path == KONA_COPY_PATH_SHARED;
    g_autoptr(GError) gerr = NULL;
    uint64_t size = 0;
    void *map;

    /*
     * Realize maps the device's first copies, in the main loop's thread,
     * which keeps SIGBUS blocked outside guarded copies (kona-guard.h).
     */
    kona_guard_init(true);
    if (cfg->path == KONA_COPY_PATH_SOCKET) {
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
    map = kona_link_slab_map(c->link, c->slab_id, &size, &c->can_shrink,
                             &gerr);
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
    trace_kona_copy_mapped(c->addr, c->slab_id, size);
    return true;
}

void kona_copy_unmap(KonaCopy *c)
{
    if (c->map) {
        kona_link_slab_unmap(c->map, c->map_size);
        c->map = NULL;
    }
}

/*
 * A mapped copy is usable if its memnode is still there (checked at most
 * every KONA_COPY_CHECK_NS, or now with @now).  One that went away is
 * reconnected, its slab reopened by kona-link and mapped again: a memnode
 * restarted with --data-dir gives back the same file; without, the slab
 * is gone and the copy fails as a socket copy would.
 */
bool kona_copy_ready(KonaCopy *c, bool now, GError **gerr)
{
    int64_t t = get_clock();
    uint64_t size;

    if (!c->shared) {
        return true;
    }
    if (c->map && !now && t - c->checked_ns < KONA_COPY_CHECK_NS) {
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
    kona_copy_unmap(c);
    if (!kona_link_connected(c->link) &&
        kona_link_reconnect(c->link, gerr) < 0) {
        return false;
    }
    c->map = kona_link_slab_map(c->link, c->slab_id, &size, &c->can_shrink,
                                gerr);
    if (!c->map) {
        return false;
    }
    c->map_size = size;
    c->checked_ns = t;
    trace_kona_copy_mapped(c->addr, c->slab_id, size);
    return true;
}

/*
 * A copy to or from a mapping: @len bytes, or with @masks the masked lines
 * of @len / 4096 pages.
 */
typedef struct KonaMapCopy {
    uint8_t *dst;
    const uint8_t *src;
    uint64_t len;
    const uint64_t *masks;
} KonaMapCopy;

static void kona_map_copy(void *opaque)
{
    KonaMapCopy *m = opaque;

    if (!m->masks) {
        memcpy(m->dst, m->src, m->len);
        return;
    }
    for (uint64_t p = 0; p < m->len / 4096; p++) {
        if (m->masks[p] == UINT64_MAX) {
            memcpy(m->dst + p * 4096, m->src + p * 4096, 4096);
        } else {
            kona_lines_copy(m->dst + p * 4096, m->src + p * 4096,
                            m->masks[p]);
        }
    }
}

/*
 * Copy through @c's mapping.  A mapping of a file that may shrink
 * (--data-dir) is copied under a guard: if its file was cut, the copy
 * fails instead of QEMU, and the mapping is dropped (the next use maps
 * the slab again, which a cut file fails).
 */
static bool kona_copy_through_map(KonaCopy *c, KonaMapCopy *m, GError **gerr)
{
    if (!c->can_shrink) {
        kona_map_copy(m);
        return true;
    }
    if (kona_guard_run(kona_map_copy, m)) {
        return true;
    }
    trace_kona_copy_sigbus(c->addr, c->slab_id);
    g_set_error(gerr, KONA_ERROR, EIO, "memnode %s: the file of slab %"
                PRIu64 " was cut under its mapping (SIGBUS)", c->addr,
                c->slab_id);
    kona_copy_unmap(c);
    return false;
}

/*
 * Read [off, off + len) of @c's slab: into @buf, or with @data (not NULL)
 * straight from the mapping where it cannot fault, *data pointing there
 * (or at @buf).
 */
int kona_copy_read(KonaCopy *c, uint64_t off, void *buf, uint32_t len,
                   const uint8_t **data, GError **gerr)
{
    uint64_t ids[KONA_COPY_MAX_CHUNKS];
    unsigned n = 0;
    int ret;

    if (c->shared) {
        KonaMapCopy m = { .dst = buf, .len = len };

        if (!kona_copy_ready(c, false, gerr)) {
            return -EIO;
        }
        if (data && !c->can_shrink) {
            *data = c->map + off;
            return 0;
        }
        m.src = c->map + off;
        if (!kona_copy_through_map(c, &m, gerr)) {
            return -EIO;
        }
        if (data) {
            *data = buf;
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

/*
 * Copy the masked lines of @npages pages at @pages into @c's mapping at
 * slab offset @off, and tell the memnode (batched).
 */
static int kona_copy_write_mapped(KonaCopy *c, uint64_t off, uint32_t npages,
                               const uint64_t *masks, const uint8_t *pages,
                               GError **gerr)
{
    KonaMapCopy m = {
        .src = pages, .len = (uint64_t)npages * 4096, .masks = masks,
    };

    if (!kona_copy_ready(c, false, gerr)) {
        return -EIO;
    }
    m.dst = c->map + off;
    if (!kona_copy_through_map(c, &m, gerr)) {
        return -EIO;
    }
    return kona_link_note_lines(c->link, c->slab_id, off, npages, masks,
                                gerr);
}

/*
 * Write the masked lines to one copy, with retries: through its mapping
 * from @pages, or the packed @lines over its socket.
 */
int kona_copy_write(KonaCopy *c, uint64_t off, uint32_t npages,
                    const uint64_t *masks, const uint8_t *pages,
                    const uint8_t *lines, GError **gerr)
{
    int ret = -EIO;

    for (int t = 0; t < KONA_COPY_TRIES; t++) {
        g_clear_error(gerr);
        ret = c->shared
              ? kona_copy_write_mapped(c, off, npages, masks, pages, gerr)
              : kona_link_write_lines(c->link, c->slab_id, off, npages,
                                      masks, lines, gerr);
        if (ret == 0) {
            return 0;
        }
        trace_kona_copy_retry("write", off,
                                *gerr ? (*gerr)->message : "error");
    }
    return ret;
}

/* Every line of KONA_MAX_WRITE_PAGES pages. */
static const uint64_t kona_copy_full[KONA_MAX_WRITE_PAGES] = {
    [0 ... KONA_MAX_WRITE_PAGES - 1] = UINT64_MAX,
};

/* A memnode without ZERO: every page written, as whole lines of zeroes. */
static int kona_copy_write_zeroes(KonaCopy *c, uint64_t off, uint64_t len,
                                  GError **gerr)
{
    g_autofree uint8_t *zeroes = g_malloc0(KONA_MAX_IO);

    for (uint64_t done = 0; done < len; done += KONA_MAX_IO) {
        uint32_t n = MIN(len - done, KONA_MAX_IO) / 4096;
        int ret = kona_copy_write(c, off + done, n, kona_copy_full, zeroes,
                                  zeroes, gerr);

        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * The most one ZERO request asks for: its reply must come within
 * timeout-ms, and a memnode frees resident pages (some 5-10 ms per 64 MiB
 * here) or zeroes a data file (tmpfs: punch and allocate again, about
 * 30 ms) for all of it first.  A 1 TiB device is then 16384 requests,
 * under a second's worth of round trips.
 */
#define KONA_COPY_ZERO_PIECE    (64ull << 20)

static int kona_copy_zero_piece(KonaCopy *c, uint64_t off, uint64_t len,
                                GError **gerr)
{
    int ret = -EIO;

    for (int t = 0; t < KONA_COPY_TRIES; t++) {
        g_clear_error(gerr);
        /* A mapped copy's memnode may have come back: map it again first. */
        if (c->shared && !kona_copy_ready(c, true, gerr)) {
            continue;
        }
        ret = kona_link_zero(c->link, c->slab_id, off, len, gerr);
        if (ret == -EOPNOTSUPP) {
            g_clear_error(gerr);
            return kona_copy_write_zeroes(c, off, len, gerr);
        }
        if (ret == 0) {
            return 0;
        }
        trace_kona_copy_retry("zero", off, *gerr ? (*gerr)->message : "error");
    }
    return ret;
}

int kona_copy_zero(KonaCopy *c, uint64_t off, uint64_t len, GError **gerr)
{
    for (uint64_t done = 0; done < len; done += KONA_COPY_ZERO_PIECE) {
        int ret = kona_copy_zero_piece(c, off + done,
                                       MIN(len - done, KONA_COPY_ZERO_PIECE),
                                       gerr);

        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

int kona_copy_extent(KonaCopy *from, KonaCopy *to, uint64_t off,
                     uint64_t len, uint8_t *buf, GError **gerr)
{
    for (uint64_t done = 0; done < len; done += KONA_MAX_IO) {
        uint32_t n = MIN(len - done, KONA_MAX_IO);
        const uint8_t *src;
        int ret = kona_copy_read(from, off + done, buf, n, &src, gerr);

        /* Whole pages: their packed lines are the pages themselves. */
        if (ret == 0) {
            ret = kona_copy_write(to, off + done, n / 4096, kona_copy_full,
                                  src, src, gerr);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

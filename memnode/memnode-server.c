/*
 * kona-memnode protocol engine.
 *
 * One thread runs everything, so a request is applied to slab memory in
 * full before the next one is looked at: that makes FLUSH trivially
 * ordered after earlier writes and keeps the data path free of locks.
 * The price is that nothing here may block for long; the only blocking
 * call is msync on FLUSH with a data directory.  A ZERO of a large range
 * is the one request that goes in steps (its connection busy meanwhile,
 * its later requests after it): the other clients are served between
 * them.
 *
 * Connections, framing, the handshake and the limits are the shared
 * server core's (kona-server.c); this file is what the frames mean.
 *
 * Clients on the same host may map slabs (SLAB_MAP, KONA_CAP_SHARED) and
 * write through the mapping; they report those lines with WROTE_LINES so
 * the counters and FLUSH see them.  Such writes bypass this thread, so
 * the node cannot order them against its own socket traffic: a READ reply
 * still queued can carry bytes a client wrote through its mapping after
 * the READ was answered (as any concurrent access to shared memory).
 */
#include "memnode-server.h"
#include "kona-auth.h"
#include "kona-lines.h"
#include "kona-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* READ replies up to this size are copied, bigger ones referenced */
#define READ_COPY_MAX   256

static const uint64_t server_caps =
    KONA_CAP_WRITE_LINES | KONA_CAP_PIPELINE | KONA_CAP_ATTACH |
    KONA_CAP_AUTH | KONA_CAP_ERRMSG | KONA_CAP_VOLKEY | KONA_CAP_GENERATION |
    KONA_CAP_OPEN_SHARE | KONA_CAP_ZERO;

/* ---- replies ---- */

#define reply(c, h, len) kona_reply((c)->kc, h, len)
#define reply_err(c, h, err, ...) kona_reply_err((c)->kc, h, err, __VA_ARGS__)
#define bad_frame(c, h, why) kona_bad_frame((c)->kc, h, why)
#define OUT(c) (&(c)->kc->out)

static void put_slab_rep(MnConn *c, const KonaHdr *h, MnSlab *s,
                         uint32_t flags)
{
    uint8_t *p = reply(c, h, sizeof(KonaSlabRep));

    kona_st64(p, s->id);
    kona_st64(p + 8, s->size);
    memcpy(p + 16, s->key, KONA_KEY_SIZE);
    kona_st32(p + 32, flags);
    kona_st32(p + 36, 0);
}

/* ---- slab access ---- */

/* @c lets go of @s (which it has open): its exclusive hold too. */
static void conn_release(MnConn *c, MnSlab *s)
{
    if (s->excl == c) {
        s->excl = NULL;
    }
    mn_slab_unref(c->srv->store, s);
}

static void conn_drop_slab(MnConn *c, MnSlab *s)
{
    if (c->last == s) {
        c->last = NULL;
    }
    g_hash_table_remove(c->open, &s->id);
    conn_release(c, s);
}

/* The slab @id if this connection may touch it, else NULL. */
static MnSlab *conn_slab(MnConn *c, uint64_t id)
{
    MnSlab *s = c->last;

    if (!s || s->id != id) {
        s = g_hash_table_lookup(c->open, &id);
    }
    if (s && s->freed) {
        /* another connection freed it */
        conn_drop_slab(c, s);
        s = NULL;
    }
    c->last = s;
    return s;
}

/*
 * The open slab @id, or NULL after refusing the request with -EACCES (the
 * reply does not say whether the slab exists).
 */
static MnSlab *conn_slab_or_refuse(MnConn *c, const KonaHdr *h, uint64_t id)
{
    MnSlab *s = conn_slab(c, id);

    if (!s) {
        reply_err(c, h, EACCES, "slab %" G_GUINT64_FORMAT
                  " is not open on this connection", id);
    }
    return s;
}

/* At --max-client-slabs: refuse @h and return true. */
static bool conn_slabs_full(MnConn *c, const KonaHdr *h)
{
    if (g_hash_table_size(c->open) < c->srv->cfg.max_client_slabs) {
        return false;
    }
    reply_err(c, h, EMFILE,
              "this connection already has %u slabs open (the limit)",
              c->srv->cfg.max_client_slabs);
    return true;
}

static bool conn_add_slab(MnConn *c, const KonaHdr *h, MnSlab *s)
{
    if (g_hash_table_contains(c->open, &s->id)) {
        return true;
    }
    if (conn_slabs_full(c, h)) {
        return false;
    }
    mn_slab_ref(c->srv->store, s);
    g_hash_table_insert(c->open, &s->id, s);
    return true;
}

/*
 * Copy queued READ replies that point into [lo, hi) of @s (all of @s if
 * @lo is NULL) before the bytes change, so replies keep the data of the
 * moment they were answered.  Touches only @s's queued references.
 */
static void detach_slab_refs(MnSlab *s, const uint8_t *lo, const uint8_t *hi)
{
    kona_outq_detach(&s->out_tag, lo, hi);
}

/* ---- operations ---- */

static bool op_stats(MnConn *c, const KonaHdr *h, const uint8_t *unused)
{
    MnServer *srv = c->srv;
    uint8_t *p = reply(c, h, sizeof(KonaStatsRep) + 8 * KONA_STAT__COUNT);

    srv->stats[KONA_STAT_SLABS] = g_hash_table_size(srv->store->by_id);
    srv->stats[KONA_STAT_SLAB_BYTES] = srv->store->used;
    srv->stats[KONA_STAT_UPTIME_MS] = (uint64_t)(kona_now_ms() - srv->start_ms);
    srv->stats[KONA_STAT_MAPPED_SLABS] = srv->store->mapped_slabs;
    srv->stats[KONA_STAT_OPS] = srv->ks->stats.ops;
    srv->stats[KONA_STAT_CLIENTS] = kona_server_conns(srv->ks);
    srv->stats[KONA_STAT_CLIENTS_TOTAL] = srv->ks->stats.conns_total;
    srv->stats[KONA_STAT_BAD_FRAMES] = srv->ks->stats.bad_frames;
    srv->stats[KONA_STAT_REFUSED] = srv->ks->stats.refused;
    kona_st32(p, KONA_STAT__COUNT);
    kona_st32(p + 4, 0);
    for (int i = 0; i < KONA_STAT__COUNT; i++) {
        kona_st64(p + 8 + 8 * i, srv->stats[i]);
    }
    return true;
}

/* A copy out of a slab (mn_slab_guarded). */
typedef struct MnCopy {
    uint8_t *dst;
    const uint8_t *src;
    size_t len;
} MnCopy;

static void mn_copy_run(void *opaque)
{
    MnCopy *cp = opaque;

    memcpy(cp->dst, cp->src, cp->len);
}

static bool op_read(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaReadReq req;
    const char *why = kona_decode_read_req(p, h->len, &req);
    MnSlab *s;
    uint8_t *r;

    if (why) {
        return bad_frame(c, h, why);
    }
    s = conn_slab_or_refuse(c, h, req.slab_id);
    if (!s) {
        return true;
    }
    if (req.offset > s->size || req.len > s->size - req.offset) {
        return bad_frame(c, h, "READ beyond the end of the slab");
    }
    if (c->srv->store->data_dir) {
        /*
         * A data file may be cut under the mapping: copied under a guard
         * (a queued reference could not fail), into a buffer that the
         * queue then owns, so that a failed copy leaves no reply behind.
         */
        uint8_t *buf = g_malloc(req.len);
        MnCopy cp = { buf, s->mem + req.offset, req.len };

        if (!mn_slab_guarded(c->srv->store, mn_copy_run, &cp)) {
            g_free(buf);
            reply_err(c, h, EIO, "slab %" G_GUINT64_FORMAT ": its file was "
                      "cut under the memnode", req.slab_id);
            return true;
        }
        r = kona_outq_reserve(OUT(c), KONA_HDR_SIZE);
        kona_hdr_encode(r, h->op | KONA_OP_REPLY, h->req_id, 0, req.len);
        kona_outq_put_owned(OUT(c), buf, req.len);
    } else if (req.len <= READ_COPY_MAX) {
        /* cheaper copied than referenced (an entry, a reference) */
        memcpy(reply(c, h, req.len), s->mem + req.offset, req.len);
    } else {
        r = kona_outq_reserve(OUT(c), KONA_HDR_SIZE);
        kona_hdr_encode(r, h->op | KONA_OP_REPLY, h->req_id, 0, req.len);
        kona_outq_put_ext(OUT(c), &s->out_tag, s->mem + req.offset, req.len);
    }
    c->srv->stats[KONA_STAT_READS]++;
    c->srv->stats[KONA_STAT_BYTES_READ] += req.len;
    return true;
}

/* The lines of WRITE_LINES into the slab (mn_slab_guarded). */
typedef struct MnUnpack {
    uint8_t *dst;
    const uint8_t *masks, *data;
    uint32_t npages;
    uint64_t lines;
} MnUnpack;

static void mn_unpack_run(void *opaque)
{
    MnUnpack *u = opaque;
    const uint8_t *data = u->data;

    for (uint32_t i = 0; i < u->npages; i++) {
        uint64_t m = kona_ld64(u->masks + 8 * i);

        data += kona_lines_unpack(u->dst + (size_t)i * KONA_PAGE_SIZE, m,
                                  data);
        u->lines += kona_lines_count(m);
    }
}

static bool op_write_lines(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaWriteLinesReq req;
    const uint8_t *masks, *data;
    const char *why = kona_decode_write_lines_req(p, h->len, &req, &masks,
                                                  &data);
    uint64_t span;
    MnUnpack u;
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    s = conn_slab_or_refuse(c, h, req.slab_id);
    if (!s) {
        return true;
    }
    span = (uint64_t)req.npages * KONA_PAGE_SIZE;
    if (req.block_off > s->size || span > s->size - req.block_off) {
        return bad_frame(c, h, "WRITE_LINES beyond the end of the slab");
    }
    u = (MnUnpack) {
        .dst = s->mem + req.block_off, .masks = masks, .data = data,
        .npages = req.npages, .lines = 0,
    };
    if (s->out_tag.refs.length) {
        detach_slab_refs(s, u.dst, u.dst + span);
    }
    if (!mn_slab_guarded(c->srv->store, mn_unpack_run, &u)) {
        reply_err(c, h, EIO, "slab %" G_GUINT64_FORMAT ": its file was cut "
                  "under the memnode", req.slab_id);
        return true;
    }
    mn_slab_dirty(s, req.block_off, span);
    c->srv->stats[KONA_STAT_WRITES]++;
    c->srv->stats[KONA_STAT_LINES_WRITTEN] += u.lines;
    c->srv->stats[KONA_STAT_BYTES_WRITTEN] += u.lines * KONA_LINE_SIZE;
    reply(c, h, 0);
    return true;
}

/*
 * WROTE_LINES: lines a client wrote through its mapping.  Nothing to copy;
 * count them as WRITE_LINES would and mark them for FLUSH.
 */
static bool op_wrote_lines(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaWroteLinesReq req;
    const uint8_t *masks;
    const char *why = kona_decode_wrote_lines_req(p, h->len, &req, &masks);
    uint64_t lines = 0, refused = 0;
    bool any_refused = false;
    MnServer *srv = c->srv;

    if (why) {
        return bad_frame(c, h, why);
    }
    /* check every range first: all or nothing */
    for (uint32_t i = 0; i < req.nranges; i++) {
        KonaWroteRange r;
        MnSlab *s;

        kona_wrote_range(p, i, &r);
        s = conn_slab(c, r.slab_id);
        if (!s) {
            any_refused = true;
            refused = r.slab_id;
            continue;
        }
        if (r.block_off > s->size ||
            (uint64_t)r.npages * KONA_PAGE_SIZE > s->size - r.block_off) {
            return bad_frame(c, h, "WROTE_LINES beyond the end of the slab");
        }
    }
    if (any_refused) {
        reply_err(c, h, EACCES, "slab %" G_GUINT64_FORMAT
                  " is not open on this connection", refused);
        return true;
    }
    for (uint32_t i = 0; i < req.nranges; i++) {
        KonaWroteRange r;

        kona_wrote_range(p, i, &r);
        for (uint32_t j = 0; j < r.npages; j++) {
            lines += kona_lines_count(kona_ld64(masks));
            masks += 8;
        }
        mn_slab_dirty(conn_slab(c, r.slab_id), r.block_off,
                      (uint64_t)r.npages * KONA_PAGE_SIZE);
    }
    srv->stats[KONA_STAT_WRITES] += req.nranges;
    srv->stats[KONA_STAT_LINES_WRITTEN] += lines;
    srv->stats[KONA_STAT_BYTES_WRITTEN] += lines * KONA_LINE_SIZE;
    reply(c, h, 0);
    return true;
}

/*
 * What one ZERO step zeroes before the loop serves the other clients
 * again: a hole punched in 32 MiB of resident memory takes a few ms here,
 * the memset fallback some more; a 1 TiB ZERO on one turn held every
 * other client for as long as freeing its resident pages took.
 */
#define ZERO_STEP       (32ull << 20)

/*
 * One step of the connection's ZERO; true once it is done and answered.
 * The slab is looked up again each step: another connection may have
 * freed it meanwhile.
 */
static bool zero_step(MnConn *c)
{
    MnSlab *s = conn_slab(c, c->zero.slab_id);
    uint64_t off = c->zero.off, n = MIN(c->zero.end - off, ZERO_STEP);
    int err;

    if (!s) {
        reply_err(c, &c->zero.h, ENOENT, "slab %" G_GUINT64_FORMAT
                  " was freed while being zeroed", c->zero.slab_id);
        return true;
    }
    /* queued READ replies of the range keep the bytes they answered with */
    if (s->out_tag.refs.length) {
        detach_slab_refs(s, s->mem + off, s->mem + off + n);
    }
    err = mn_slab_zero(c->srv->store, s, off, n);
    if (err) {
        reply_err(c, &c->zero.h, -err, "cannot zero the range: %s",
                  g_strerror(-err));
        return true;
    }
    c->zero.off += n;
    c->srv->stats[KONA_STAT_BYTES_ZEROED] += n;
    if (c->zero.off < c->zero.end) {
        return false;
    }
    c->srv->stats[KONA_STAT_ZEROES]++;
    reply(c, &c->zero.h, 0);
    return true;
}

/*
 * ZERO: a range reads as zeroes, without a byte on the wire; a large one
 * in steps, the other clients served in between (this connection's later
 * requests wait for it).
 */
static bool op_zero(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaZeroReq req;
    const char *why = kona_decode_zero_req(p, h->len, &req);
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    s = conn_slab_or_refuse(c, h, req.slab_id);
    if (!s) {
        return true;
    }
    if (req.offset > s->size || req.len > s->size - req.offset) {
        return bad_frame(c, h, "ZERO beyond the end of the slab");
    }
    c->zero.h = *h;
    c->zero.slab_id = req.slab_id;
    c->zero.off = req.offset;
    c->zero.end = req.offset + req.len;
    if (!zero_step(c)) {
        kona_conn_set_busy(c->kc);
    }
    return true;
}

static bool mn_resume(KonaConn *kc)
{
    return zero_step(kc->priv);
}

/* SLAB_MAP: hand the slab's descriptor to a client on this host. */
static bool op_slab_map(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaSlabIdReq req;
    const char *why = kona_decode_slab_id_req(p, h->len, &req);
    MnSlab *s;
    uint8_t *r;
    int fd;

    if (why) {
        return bad_frame(c, h, why);
    }
    if (!(c->kc->caps & KONA_CAP_SHARED)) {
        reply_err(c, h, EOPNOTSUPP, "no shared memory on this connection (%s)",
                  !c->kc->unix_sock ? "not a unix socket" :
                  c->srv->cfg.no_shared ? "the memnode runs with --no-shared" :
                  "the client did not ask for it in HELLO");
        return true;
    }
    s = conn_slab_or_refuse(c, h, req.slab_id);
    if (!s) {
        return true;
    }
    fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        reply_err(c, h, err, "cannot pass the slab's descriptor: %s",
                  g_strerror(err));
        return true;
    }
    r = kona_outq_reply_fd(OUT(c), h, sizeof(KonaSlabMapRep), fd);
    kona_st64(r, s->size);
    kona_st64(r + 8, 0);
    kona_st32(r + 16, 0);
    kona_st32(r + 20, 0);
    if (!g_hash_table_contains(c->mapped, s)) {
        g_hash_table_add(c->mapped, s);
        mn_slab_map_ref(c->srv->store, s);
    }
    c->srv->stats[KONA_STAT_MAPS]++;
    return true;
}

static bool op_flush(MnConn *c, const KonaHdr *h, const uint8_t *unused)
{
    GHashTableIter it;
    gpointer v;
    int err = 0;

    /*
     * Writes are applied as they arrive; only files need syncing: what
     * came through the socket or WROTE_LINES (the dirty range), and all
     * of every slab this client has mapped, whose writes we may not have
     * been told about (a mapped slab is open until freed, and a freed one
     * has no file left to sync).
     */
    g_hash_table_iter_init(&it, c->open);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        int r = mn_slab_sync(c->srv->store, v,
                             g_hash_table_contains(c->mapped, v));
        err = err ? err : r;
    }
    c->srv->stats[KONA_STAT_FLUSHES]++;
    if (err) {
        reply_err(c, h, -err, "msync failed: %s", g_strerror(-err));
    } else {
        reply(c, h, 0);
    }
    return true;
}

static bool op_slab_alloc(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaSlabAllocReq req;
    const char *why = kona_decode_slab_alloc_req(p, h->len, &req);
    g_autoptr(GError) err = NULL;
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    if (conn_slabs_full(c, h)) {
        return true;
    }
    s = mn_store_alloc(c->srv->store, req.size, NULL, NULL, &err);
    if (!s) {
        reply_err(c, h, err->code, "%s", err->message);
        return true;
    }
    conn_add_slab(c, h, s);
    put_slab_rep(c, h, s, KONA_SLAB_F_CREATED);
    return true;
}

static bool op_slab_free(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaSlabIdReq req;
    const char *why = kona_decode_slab_id_req(p, h->len, &req);
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    s = conn_slab_or_refuse(c, h, req.slab_id);
    if (!s) {
        return true;
    }
    /* ours goes; the memory when no other connection holds it either */
    mn_store_doom(c->srv->store, s);
    conn_drop_slab(c, s);
    reply(c, h, 0);
    return true;
}

static bool op_slab_open(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaSlabOpenReq req;
    const char *why = kona_decode_slab_open_req(p, h->len, &req);
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    s = mn_store_lookup(c->srv->store, req.slab_id);
    if (!s || !kona_auth_equal(s->key, req.key, KONA_KEY_SIZE)) {
        /* same answer for "no such slab" and "wrong key" */
        reply_err(c, h, EACCES, "no slab %" G_GUINT64_FORMAT
                  " with that key", req.slab_id);
        return true;
    }
    if (!conn_add_slab(c, h, s)) {
        return true;
    }
    if (s->excl && s->excl != c && !(req.flags & KONA_OPEN_F_SHARE)) {
        /*
         * the holder of an exclusive attach reconnecting (only it has
         * the slab key): its old connection may not have been seen to
         * break yet, and must not write to the volume any more
         */
        MnConn *old = s->excl;

        if (c->srv->cfg.net.verbose) {
            fprintf(stderr, "kona-memnode: %s takes volume %s over from %s\n",
                    c->kc->peer, s->name, old->kc->peer);
        }
        conn_drop_slab(old, s);
        s->excl = c;
    }
    put_slab_rep(c, h, s, 0);
    return true;
}

static bool op_slab_attach(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaSlabAttachReq req;
    const uint8_t *key;
    const char *name_p;
    const char *why = kona_decode_slab_attach_req(p, h->len, &req, &key,
                                                  &name_p);
    bool excl, exists;
    g_autofree char *name = NULL;
    g_autoptr(GError) err = NULL;
    uint32_t flags = 0;
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    name = g_strndup(name_p, req.name_len);
    excl = req.flags & KONA_ATTACH_F_EXCLUSIVE;
    if (!key) {
        reply_err(c, h, EACCES, "volume %s: attaching needs the volume key "
                  "(KONA_ATTACH_F_KEY)", name);
        return true;
    }
    s = mn_store_lookup_name(c->srv->store, name);
    exists = s != NULL;
    if (s && (!s->has_volkey ||
              !kona_auth_equal(s->volkey, key, KONA_KEY_SIZE))) {
        s = NULL;
    }
    if (!s && (exists || !(req.flags & KONA_ATTACH_F_CREATE) || !req.size)) {
        /* the same answer whether the name exists or the key is wrong */
        reply_err(c, h, EACCES, "no volume %s with that key", name);
        return true;
    }
    if (s && req.size && req.size != s->size) {
        reply_err(c, h, EINVAL, "volume %s has %" G_GUINT64_FORMAT
                  " bytes, not %" G_GUINT64_FORMAT, name, s->size, req.size);
        return true;
    }
    if (s && s->excl && s->excl != c) {
        reply_err(c, h, EBUSY, "volume %s is attached exclusively by "
                  "another connection", name);
        return true;
    }
    if (s && excl &&
        s->refs > (g_hash_table_contains(c->open, &s->id) ? 1u : 0u)) {
        reply_err(c, h, EBUSY, "volume %s is attached by another connection",
                  name);
        return true;
    }
    if (!s) {
        if (conn_slabs_full(c, h)) {
            return true;
        }
        s = mn_store_alloc(c->srv->store, req.size, name, key, &err);
        if (!s) {
            reply_err(c, h, err->code, "%s", err->message);
            return true;
        }
        flags = KONA_SLAB_F_CREATED;
    }
    if (!conn_add_slab(c, h, s)) {
        return true;
    }
    if (excl) {
        s->excl = c;
    }
    put_slab_rep(c, h, s, flags);
    return true;
}

static bool op_slab_gen(MnConn *c, const KonaHdr *h, const uint8_t *p)
{
    KonaSlabGenReq req;
    const char *why = kona_decode_slab_gen_req(p, h->len, &req);
    g_autoptr(GError) err = NULL;
    MnSlab *s;

    if (why) {
        return bad_frame(c, h, why);
    }
    s = conn_slab_or_refuse(c, h, req.slab_id);
    if (!s) {
        return true;
    }
    if (!mn_slab_set_generation(c->srv->store, s, req.set, &err)) {
        reply_err(c, h, err->code, "cannot store the generation: %s",
                  err->message);
        return true;
    }
    kona_st64(reply(c, h, sizeof(KonaSlabGenRep)), s->generation);
    return true;
}

typedef bool MnOpFn(MnConn *c, const KonaHdr *h, const uint8_t *p);

/* What each op means on a memnode (after the handshake; PING is core's). */
static MnOpFn *const mn_op_table[] = {
    [KONA_OP_READ] = op_read,
    [KONA_OP_WRITE_LINES] = op_write_lines,
    [KONA_OP_FLUSH] = op_flush,
    [KONA_OP_WROTE_LINES] = op_wrote_lines,
    [KONA_OP_ZERO] = op_zero,
    [KONA_OP_SLAB_MAP] = op_slab_map,
    [KONA_OP_STATS] = op_stats,
    [KONA_OP_SLAB_ALLOC] = op_slab_alloc,
    [KONA_OP_SLAB_FREE] = op_slab_free,
    [KONA_OP_SLAB_OPEN] = op_slab_open,
    [KONA_OP_SLAB_ATTACH] = op_slab_attach,
    [KONA_OP_SLAB_GEN] = op_slab_gen,
};

static bool mn_dispatch(KonaConn *kc, const KonaHdr *h, const uint8_t *p)
{
    MnConn *c = kc->priv;

    if (h->op < G_N_ELEMENTS(mn_op_table) && mn_op_table[h->op]) {
        return mn_op_table[h->op](c, h, p);
    }
    reply_err(c, h, EOPNOTSUPP, "%s: this is a memory node, not a "
              "rack controller", kona_op_name(h->op));
    return true;
}

static uint64_t mn_caps(KonaConn *kc, uint64_t asked)
{
    MnServer *srv = kc->srv->opaque;

    return asked & (server_caps |
                    (srv->cfg.data_dir ? KONA_CAP_PERSIST : 0) |
                    (kc->unix_sock && !srv->cfg.no_shared ?
                     KONA_CAP_SHARED : 0));
}

static void *mn_conn_new(KonaConn *kc)
{
    MnConn *c = g_new0(MnConn, 1);

    c->kc = kc;
    c->srv = kc->srv->opaque;
    c->open = g_hash_table_new(g_int64_hash, g_int64_equal);
    c->mapped = g_hash_table_new(NULL, NULL);
    return c;
}

static void mn_conn_gone(KonaConn *kc)
{
    MnConn *c = kc->priv;
    MnServer *srv = c->srv;
    GHashTableIter it;
    gpointer v;

    /* the core dropped the queued replies (they may point into slabs) */
    g_hash_table_iter_init(&it, c->open);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        g_hash_table_iter_remove(&it);
        conn_release(c, v);
    }
    g_hash_table_destroy(c->open);
    /* our client's mappings end with its connection (as far as we can see) */
    g_hash_table_iter_init(&it, c->mapped);
    while (g_hash_table_iter_next(&it, &v, NULL)) {
        g_hash_table_iter_remove(&it);
        mn_slab_map_unref(srv->store, v);
    }
    g_hash_table_destroy(c->mapped);
    g_free(c);
    kc->priv = NULL;
}

static const KonaServerOps mn_ops = {
    .conn_new = mn_conn_new,
    .caps = mn_caps,
    .dispatch = mn_dispatch,
    .conn_gone = mn_conn_gone,
    .resume = mn_resume,
};

MnServer *mn_server_new(const MnConfig *cfg, GError **errp)
{
    MnServer *srv = g_new0(MnServer, 1);

    srv->cfg = *cfg;
    srv->cfg.data_dir = g_strdup(cfg->data_dir);
    srv->store = mn_store_new(cfg->capacity, cfg->data_dir, cfg->linger_ms,
                              errp);
    if (!srv->store) {
        mn_server_free(srv);
        return NULL;
    }
    srv->cfg.net.prog = "kona-memnode";
    srv->cfg.net.max_io = KONA_MAX_IO;
    srv->ks = kona_server_new(&srv->cfg.net, &mn_ops, srv);
    srv->start_ms = kona_now_ms();
    srv->stats[KONA_STAT_CAPACITY] = cfg->capacity;
    return srv;
}

void mn_server_free(MnServer *srv)
{
    if (!srv) {
        return;
    }
    /* the connections first: they hold slab references */
    kona_server_free(srv->ks);
    mn_store_free(srv->store);
    g_free((char *)srv->cfg.data_dir);
    g_free(srv);
}

int64_t mn_server_tick(MnServer *srv)
{
    return mn_store_expire(srv->store, kona_now_ms());
}

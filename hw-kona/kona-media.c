/*
 * Kona-CXL: the media access path.
 *
 * Every guest load and store of the media arrives here (1..8 bytes, any
 * alignment), without the BQL when it comes straight from a vCPU (the
 * region is lockless: qemu-patches/0004) and with it through the CXL
 * window or from QEMU itself.  A hit is served from the local cache; a
 * miss fetches the block from its memory node, first making room by
 * writing back a victim's dirty lines (only those) and dropping it.
 *
 * Waiting on the network with the BQL held would stop every other vCPU and
 * the main loop, so network I/O happens with the BQL released (as
 * hw/remote/mpqemu-link.c does) and the device's own lock held.  A thread
 * holding the BQL never blocks on that lock: it try-locks, and on failure
 * releases the BQL before waiting (kona_lock).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/coroutine.h"
#include "qemu/processor.h"
#include "qapi/error.h"
#include "kona-state.h"
#include "kona-direct.h"
#include "kona-media.h"
#include "kona-poison.h"
#include "trace.h"

/*
 * Tries before sleeping on a held lock: another vCPU's hit holds it for
 * well under a microsecond, and sleeping and waking on the futex costs
 * more than that many times over (two vCPUs on the Kona node ran at half
 * their aggregate speed without it).
 */
#define KONA_LOCK_SPINS 2000

void kona_lock(KonaCxlState *s, KonaLockState *ls)
{
    ls->bql_dropped = false;
    for (int i = 0; i < KONA_LOCK_SPINS; i++) {
        if (qemu_rec_mutex_trylock(&s->lock) == 0) {
            return;
        }
        cpu_relax();
    }
    if (bql_locked() && !qemu_in_coroutine()) {
        bql_unlock();
        ls->bql_dropped = true;
    }
    qemu_rec_mutex_lock(&s->lock);
}

/* What an access counts, and a replayed attempt of one takes back. */
static const int kona_pair_stats[KONA_PAIR_STATS] = {
    KONA_DEV_STAT_READS, KONA_DEV_STAT_WRITES, KONA_DEV_STAT_READ_BYTES,
    KONA_DEV_STAT_WRITE_BYTES, KONA_DEV_STAT_HITS, KONA_DEV_STAT_MISSES,
};

/*
 * The pieces TCG makes of one guest access (both halves of a 16-byte
 * access, an unaligned access's aligned pieces, a page-crossing access's
 * parts) under one hold of the lock (qemu-patches/0007, 0012): nothing
 * comes between them.  The lock is recursive, so the pieces take it again
 * inside, and holds nest (a page-crossing part is itself pieces).  An
 * access that a failed piece ends early (kona_media_access) has let go of
 * every hold already.
 */
void kona_media_pair(void *opaque, bool lock)
{
    KonaCxlState *s = opaque;

    if (lock) {
        qemu_rec_mutex_lock(&s->lock);
        if (s->pair.depth++ == 0) {
            s->pair.failed = false;
            for (int i = 0; i < KONA_PAIR_STATS; i++) {
                s->pair.stats[i] = s->stats[kona_pair_stats[i]];
            }
        }
    } else if (s->pair.depth) {
        if (--s->pair.depth == 0) {
            s->pair.failed = false;
        }
        qemu_rec_mutex_unlock(&s->lock);
    }
}

/*
 * A piece of an open access failed, and TCG is about to replay the access
 * alone (kona_poison_will_replay): it leaves the handler by longjmp, past
 * the access's end, so the access lets go of its holds of the lock here,
 * and takes back what its other pieces counted: the replay counts it.
 */
static void kona_pair_abandon(KonaCxlState *s)
{
    for (int i = 0; i < KONA_PAIR_STATS; i++) {
        s->stats[kona_pair_stats[i]] = s->pair.stats[i];
    }
    for (; s->pair.depth; s->pair.depth--) {
        qemu_rec_mutex_unlock(&s->lock);
    }
}

void kona_unlock(KonaCxlState *s, KonaLockState *ls)
{
    qemu_rec_mutex_unlock(&s->lock);
    if (ls->bql_dropped) {
        bql_lock();
        ls->bql_dropped = false;
    }
}

/* Before blocking on a memory node: let the rest of QEMU run. */
static void kona_release_bql(KonaLockState *ls)
{
    if (!ls->bql_dropped && bql_locked() && !qemu_in_coroutine()) {
        bql_unlock();
        ls->bql_dropped = true;
    }
}

void kona_keepalive(KonaCxlState *s)
{
    KonaLockState ls;

    kona_lock(s, &ls);
    kona_release_bql(&ls);      /* a reconnect may take timeout-ms */
    kona_remote_keepalive(&s->remote);
    kona_unlock(s, &ls);
}

void kona_remote_failed(KonaCxlState *s, Error *err)
{
    uint64_t n = ++s->stats[KONA_DEV_STAT_REMOTE_ERRORS];

    s->remote_error = true;
    /* A guest can hammer a dead memory node: log the 1st, 2nd, 4th, ... */
    if (!(n & (n - 1))) {
        error_prepend(&err, "(remote error %" PRIu64 ") ", n);
        error_report_err(err);
    } else {
        error_free(err);
    }
}

/* Where @frame's block's data is, as the mode serves it. */
static uint8_t *kona_frame_data(KonaCxlState *s, uint32_t frame)
{
    return s->track->data(s, frame);
}

void *kona_map_anon(uint64_t size, const char *prop, Error **errp)
{
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (mem == MAP_FAILED) {
        error_setg_errno(errp, errno, "kona-cxl: property '%s': cannot map "
                         "%" PRIu64 " bytes", prop, size);
        return NULL;
    }
    return mem;
}

/* A vCPU waited @real_ns on memory nodes and @model_ns for the model. */
static void kona_stall(KonaCxlState *s, int64_t real_ns, int64_t model_ns)
{
    s->stats[KONA_DEV_STAT_STALL_NS] += real_ns + model_ns;
    s->stats[KONA_DEV_STAT_STALL_REAL_NS] += real_ns;
    s->stats[KONA_DEV_STAT_STALL_MODEL_NS] += model_ns;
}

/*
 * A fetch that began at @t0 and took until @now takes at least the
 * modelled latency of a block: wait out the rest, and account for both.
 */
static void kona_fetch_latency(KonaCxlState *s, int64_t t0, int64_t now)
{
    int64_t model = kona_latency_ns(&s->latency, s->cache.block_size);
    int64_t end = now - t0 < model ? kona_latency_wait_until(t0 + model)
                                   : now;

    kona_stall(s, now - t0, end - now);
}

/* Send @frame's dirty lines to the memory node and account for them. */
static int kona_writeback_lines(KonaCxlState *s, KonaLockState *ls,
                                uint32_t frame, Error **errp)
{
    KonaCache *c = &s->cache;
    uint32_t npages = kona_cache_block_pages(c);
    uint64_t masks[KONA_CACHE_MAX_BLOCK / KONA_CACHE_PAGE_SIZE];
    uint64_t block = c->frames[frame].block;
    uint64_t block_start = block << c->block_shift;
    KonaWriteback wb;

    if (kona_remote_present(&s->remote)) {
        int64_t t0 = kona_latency_now();
        int ret;

        for (uint32_t p = 0; p < npages; p++) {
            masks[p] = kona_cache_page_mask(c, frame, p);
            /* A page-granular runtime sends a dirty page whole. */
            if (s->writeback_pages && masks[p]) {
                masks[p] = UINT64_MAX;
            }
        }
        kona_release_bql(ls);
        ret = kona_remote_write_lines(&s->remote,
                                      kona_cache_page_base(c, frame), npages,
                                      masks, kona_frame_data(s, frame),
                                      block_start, errp);
        kona_stall(s, kona_latency_now() - t0, 0);
        if (ret < 0) {
            return ret;
        }
    }
    wb = kona_cache_clean(c, frame, s->hist);
    if (s->writeback_pages) {
        wb.lines = wb.pages * (KONA_CACHE_PAGE_SIZE / KONA_DEV_LINE_SIZE);
    }
    s->stats[KONA_DEV_STAT_WRITEBACKS]++;
    s->stats[KONA_DEV_STAT_WRITEBACK_LINES] += wb.lines;
    s->stats[KONA_DEV_STAT_WRITEBACK_BYTES] += wb.lines * KONA_DEV_LINE_SIZE;
    s->stats[KONA_DEV_STAT_PAGE_WB_BYTES] += wb.pages * KONA_CACHE_PAGE_SIZE;
    s->stats[KONA_DEV_STAT_HUGE_WB_BYTES] += wb.huge_pages *
                                             KONA_CACHE_HUGE_SIZE;
    trace_kona_writeback(block, frame, wb.lines, wb.pages);
    return 0;
}

/*
 * Write back @frame's dirty lines, if any.  Modes that find dirty lines by
 * comparison make the block stable and its bitmap exact first; after a
 * successful eviction's write-back the block stays so until it is dropped.
 */
static int kona_writeback(KonaCxlState *s, KonaLockState *ls, uint32_t frame,
                          bool evicting, Error **errp)
{
    const KonaTrackOps *t = s->track;
    uint32_t lines;
    int ret = 0;

    if (t->writeback_begin) {
        t->writeback_begin(s, frame, evicting);
    }
    lines = s->cache.frames[frame].ndirty;
    if (lines) {
        ret = kona_writeback_lines(s, ls, frame, errp);
    }
    if (t->sync_dirty && ret == 0) {
        /* Lines are found dirty here, not as the guest writes them. */
        s->stats[KONA_DEV_STAT_LINES_DIRTIED] += lines;
    }
    if (t->writeback_end) {
        t->writeback_end(s, frame, ret == 0, evicting && ret == 0);
    }
    return ret;
}

int kona_evict_frame(KonaCxlState *s, KonaLockState *ls, uint32_t frame,
                     bool forced, Error **errp)
{
    KonaCache *c = &s->cache;
    uint64_t block;
    int ret;

    if (!kona_remote_present(&s->remote)) {
        /* The cache is the only copy: nothing can be dropped. */
        error_setg(errp, "kona-cxl: no memory node to evict to");
        return -ENOTSUP;
    }
    ret = kona_writeback(s, ls, frame, true, errp);
    if (ret < 0) {
        return ret;
    }
    block = c->frames[frame].block;
    trace_kona_evict(block, frame, forced);
    if (s->track->drop) {
        s->track->drop(s, frame);
    }
    kona_cache_drop(c, frame);
    s->stats[KONA_DEV_STAT_EVICTIONS]++;
    s->stats[forced ? KONA_DEV_STAT_FORCED_EVICTIONS
                    : KONA_DEV_STAT_GUEST_EVICTIONS]++;
    return 0;
}

/*
 * The policy's victim could not be written back (its memory node failed):
 * evict another frame that does not need that memory node, clean ones
 * first.  One pass over the frames, on this failure path only; frames
 * whose own memory node fails too are skipped with theirs.
 */
static void kona_evict_other(KonaCxlState *s, KonaLockState *ls,
                             uint32_t failed)
{
    KonaCache *c = &s->cache;
    uint64_t bad[4] = { c->frames[failed].block << c->block_shift };
    unsigned nbad = 1;

    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t f = 0; f < c->nframes; f++) {
            KonaFrame *fr = &c->frames[f];
            uint64_t at = fr->block << c->block_shift;
            Error *err = NULL;
            bool skip = false;

            if (!fr->resident || f == failed || (pass == 0) != !fr->ndirty) {
                continue;
            }
            for (unsigned i = 0; i < nbad && fr->ndirty; i++) {
                skip |= kona_remote_same_nodes(&s->remote, at, bad[i]);
            }
            if (skip) {
                continue;
            }
            if (kona_evict_frame(s, ls, f, true, &err) == 0) {
                return;
            }
            kona_remote_failed(s, err);
            if (nbad == ARRAY_SIZE(bad)) {
                return;
            }
            bad[nbad++] = at;
        }
    }
}

/*
 * Most frames one miss evicts: the watermarks are the guest's to set, and
 * a LOW_WM of 0 must not make a miss write back the whole cache with the
 * device lock held.  Hysteresis goes on over the next misses.
 */
static uint32_t kona_evict_batch(const KonaCache *c)
{
    return MAX(1, MIN(256, c->nframes / 8));
}

/*
 * Make room for one more block: in DEVICE mode, a fetch that would take
 * the cache past HIGH_WM first evicts down to LOW_WM; in any mode, a full
 * cache evicts one victim.  Returns a free frame or KONA_NO_FRAME.
 */
static uint32_t kona_make_room(KonaCxlState *s, KonaLockState *ls)
{
    KonaCache *c = &s->cache;
    uint32_t resident = kona_cache_resident(c);
    uint32_t target = resident;

    if (s->policy_mode == KONA_MODE_DEVICE && resident + 1 > s->high_wm) {
        uint32_t batch = kona_evict_batch(c);

        /* Down to LOW_WM, a batch at a time, and below HIGH_WM at least. */
        target = MAX(s->low_wm, MIN(s->high_wm ? s->high_wm - 1 : 0,
                                    resident > batch ? resident - batch : 0));
    }
    target = MIN(target, c->nframes - 1);
    while (kona_cache_resident(c) > target) {
        uint32_t victim = kona_cache_pick_victim(c);
        Error *err = NULL;

        if (kona_evict_frame(s, ls, victim, true, &err) < 0) {
            kona_remote_failed(s, err);
            /*
             * A memory node is failing: room for this one block only (a
             * frame evicted in the victim's place frees one).  Going on
             * with the batch would try the policy's next victims, dirty
             * ones on the same node too, and fail each.
             */
            kona_evict_other(s, ls, victim);
            break;
        }
    }
    return kona_cache_take_free(c);
}

/*
 * How long a block whose fetch failed fails again at once, when the
 * failed access is to be replayed.  TCG replays a failed mid-block access
 * alone (qemu-patches/0005) to deliver the machine check on its
 * instruction: the replay must not wait out every retry against an
 * unreachable memnode again.  Any other access tries the memnode again.
 */
#define KONA_FAILED_HOLD_NS     (50 * 1000 * 1000)

/*
 * @block could not be made resident (no room, or no fetch): if this very
 * access is to be replayed, its replay fails at once.
 */
static void kona_hold_failed(KonaCxlState *s, uint64_t block)
{
    if (kona_poison_will_replay()) {
        s->failed_block = block;
        s->failed_ns = kona_latency_now();
    }
}

uint32_t kona_fault_in(KonaCxlState *s, KonaLockState *ls, uint64_t block)
{
    KonaCache *c = &s->cache;
    const uint8_t *data;
    uint8_t *buf;
    Error *err = NULL;
    uint32_t frame;
    int64_t t0;

    if (block == s->failed_block &&
        kona_latency_now() - s->failed_ns < KONA_FAILED_HOLD_NS) {
        return KONA_NO_FRAME;
    }
    frame = kona_make_room(s, ls);
    if (frame == KONA_NO_FRAME) {
        kona_hold_failed(s, block);
        return KONA_NO_FRAME;
    }
    buf = s->track->fetch_buffer(s, frame);
    if (kona_remote_present(&s->remote)) {
        t0 = kona_latency_now();
        kona_release_bql(ls);
        if (kona_remote_read(&s->remote, block << c->block_shift, buf,
                             c->block_size, &data, &err) < 0) {
            kona_cache_put_free(c, frame);
            kona_remote_failed(s, err);
            kona_hold_failed(s, block);
            return KONA_NO_FRAME;
        }
        kona_fetch_latency(s, t0, kona_latency_now());
        s->stats[KONA_DEV_STAT_FETCHES]++;
        s->stats[KONA_DEV_STAT_FETCH_BYTES] += c->block_size;
    } else {
        /* Local media: a block's first touch finds zeroes. */
        memset(buf, 0, c->block_size);
        data = buf;
    }
    kona_cache_install(c, frame, block);
    if (s->track->install(s, frame, data, &err) < 0) {
        /* No page of it may stay mapped without the cache knowing. */
        if (s->track->drop) {
            s->track->drop(s, frame);
        }
        kona_cache_drop(c, frame);
        kona_remote_failed(s, err);
        return KONA_NO_FRAME;
    }
    trace_kona_fetch(block, frame);
    return frame;
}

/* One access that does not cross a block boundary. */
static bool kona_access_block(KonaCxlState *s, KonaLockState *ls,
                              uint64_t addr, uint8_t *buf, unsigned len,
                              bool write)
{
    KonaCache *c = &s->cache;
    uint64_t block = kona_cache_block_of(c, addr);
    uint32_t off = addr & (c->block_size - 1);
    uint32_t frame = kona_cache_frame_of(c, block);
    uint8_t *p;

    if (likely(frame != KONA_NO_FRAME)) {
        s->stats[KONA_DEV_STAT_HITS]++;
    } else {
        s->stats[KONA_DEV_STAT_MISSES]++;
        frame = kona_fault_in(s, ls, block);
        if (frame == KONA_NO_FRAME) {
            return false;
        }
    }
    p = kona_frame_data(s, frame) + off;
    kona_cache_touch(c, frame);
    if (write) {
        memcpy(p, buf, len);
        s->track->stored(s, frame, addr, off, len);
    } else {
        memcpy(buf, p, len);
    }
    return true;
}

MemTxResult kona_access(KonaCxlState *s, KonaLockState *ls, uint64_t addr,
                        uint8_t *buf, unsigned len, bool write)
{
    uint32_t bs = s->cache.block_size;
    unsigned first = MIN(len, bs - (addr & (bs - 1)));
    uint64_t hits = s->stats[KONA_DEV_STAT_HITS];
    uint64_t misses = s->stats[KONA_DEV_STAT_MISSES];
    bool ok;

    s->stats[write ? KONA_DEV_STAT_WRITES : KONA_DEV_STAT_READS]++;
    s->stats[write ? KONA_DEV_STAT_WRITE_BYTES : KONA_DEV_STAT_READ_BYTES] +=
        len;
    ok = kona_access_block(s, ls, addr, buf, first, write);
    if (ok && first < len) {
        /* Unaligned, across a block boundary: the rest is the next block. */
        ok = kona_access_block(s, ls, addr + first, buf + first, len - first,
                               write);
    }
    if (ok) {
        return MEMTX_OK;
    }
    if (kona_poison_will_replay()) {
        /*
         * TCG runs this access again alone before the guest hears of the
         * failure: that run counts it, its hits and the miss that failed
         * it.  (A block this attempt did fetch stays in the fetches: its
         * fetch happened.)
         */
        s->stats[write ? KONA_DEV_STAT_WRITES : KONA_DEV_STAT_READS]--;
        s->stats[write ? KONA_DEV_STAT_WRITE_BYTES :
                 KONA_DEV_STAT_READ_BYTES] -= len;
        s->stats[KONA_DEV_STAT_HITS] = hits;
        s->stats[KONA_DEV_STAT_MISSES] = misses;
    } else {
        s->stats[KONA_DEV_STAT_FAILED_ACCESSES]++;
    }
    return MEMTX_ERROR;
}

/*
 * A guest access of the media: served, or failed with a memory error
 * reported to the vCPU making it (once for all the pieces of one access).
 */
static MemTxResult kona_media_access(KonaCxlState *s, hwaddr addr,
                                     uint8_t *buf, unsigned size, bool write)
{
    KonaLockState ls;
    MemTxResult r;

    if (unlikely(s->direct_pending)) {
        kona_direct_slow_access(s);
    }
    kona_lock(s, &ls);
    if (unlikely(s->pair.failed)) {
        /* Another piece of this access failed and was reported. */
        kona_unlock(s, &ls);
        return MEMTX_ERROR;
    }
    r = kona_access(s, &ls, addr, buf, size, write);
    if (unlikely(r != MEMTX_OK && s->pair.depth)) {
        if (kona_poison_will_replay()) {
            kona_pair_abandon(s);
        } else {
            s->pair.failed = true;
        }
    }
    kona_unlock(s, &ls);
    if (r != MEMTX_OK) {
        BQL_LOCK_GUARD();   /* a machine check runs work on every vCPU */
        kona_report_poison(CXL_TYPE3(s), addr);
    }
    return r;
}

static MemTxResult kona_media_read(void *opaque, hwaddr addr, uint64_t *data,
                                   unsigned size, MemTxAttrs attrs)
{
    KonaCxlState *s = opaque;
    uint8_t buf[8];
    MemTxResult r;

    if (unlikely(kona_direct_probing(s))) {
        /* kona-direct.c checking QEMU's decode, from this very thread. */
        s->direct_probe_dpa = addr;
        *data = 0;
        return MEMTX_OK;
    }
    /*
     * A block that cannot be fetched reads as all ones, like no device,
     * and the vCPU gets a memory error for it: never silent bad data.
     */
    r = kona_media_access(s, addr, buf, size, false);
    *data = r == MEMTX_OK ? ldn_le_p(buf, size) : MAKE_64BIT_MASK(0, 8 * size);
    trace_kona_media_read(addr, size, *data);
    return r;
}

static MemTxResult kona_media_write(void *opaque, hwaddr addr, uint64_t data,
                                    unsigned size, MemTxAttrs attrs)
{
    KonaCxlState *s = opaque;
    uint8_t buf[8];
    MemTxResult r;

    stn_le_p(buf, size, data);
    /* A store that fails is lost with its block: reported like a load. */
    r = kona_media_access(s, addr, buf, size, true);
    trace_kona_media_write(addr, size, data);
    return r;
}

const MemoryRegionOps kona_media_ops = {
    .read_with_attrs = kona_media_read,
    .write_with_attrs = kona_media_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* Whatever the CXL window forwards: 1..8 bytes at any alignment. */
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/*
 * Sanitize (Overwrite): the resident blocks leave the cache unwritten,
 * dirty lines and all, and every byte on the memory nodes becomes zero.
 * Like a real device's overwrite, it takes the time of writing `size`
 * bytes; the guest polls the mailbox meanwhile.
 */
int kona_sanitize(KonaCxlState *s, Error **errp)
{
    const KonaTrackOps *t = s->track;
    KonaCache *c = &s->cache;
    KonaLockState ls;
    KonaCacheWalk w;
    uint32_t f;
    int ret = 0;

    kona_lock(s, &ls);
    kona_cache_walk_init(c, &w, 0, (s->size - 1) >> c->block_shift);
    while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) {
        if (t->writeback_begin) {
            t->writeback_begin(s, f, true); /* the dirty bitmap made exact */
        }
        kona_cache_clean(c, f, NULL);   /* discarded, not written */
        if (t->writeback_end) {
            t->writeback_end(s, f, true, true);
        }
        if (t->drop) {
            t->drop(s, f);
        }
        kona_cache_drop(c, f);
    }
    if (kona_remote_present(&s->remote)) {
        kona_release_bql(&ls);
        ret = kona_remote_zero(&s->remote, errp);
    }
    trace_kona_sanitize(s->size, ret);
    kona_unlock(s, &ls);
    return ret;
}

int kona_clean_range(KonaCxlState *s, KonaLockState *ls, uint64_t addr,
                     uint64_t len, bool evict, uint64_t *count, Error **errp)
{
    KonaCache *c = &s->cache;
    Error *first_err = NULL;
    unsigned failed = 0, nbad = 0;
    uint64_t first, last, bad[4];
    KonaCacheWalk w;
    uint32_t f;

    *count = 0;
    if (len == 0) {
        return 0;
    }
    first = kona_cache_block_of(c, addr);
    last = kona_cache_block_of(c, addr + len - 1);
    /*
     * Only resident blocks can need work: the cache's walk visits the
     * range's blocks or the frames, whichever is cheaper.  A block whose memory node fails stays
     * (dirty) and the others go on: one dead node must not keep the lines
     * of the healthy ones from being written.
     */
    kona_cache_walk_init(c, &w, first, last);
    while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) {
        uint64_t lines = s->stats[KONA_DEV_STAT_WRITEBACK_LINES];
        uint64_t at = c->frames[f].block << c->block_shift;
        Error *err = NULL;
        bool skip = false;
        int ret;

        /*
         * A memory node that failed once in this pass fails again: its
         * other blocks are counted as failed without each waiting out the
         * timeouts (a blackholed node would make an exit take minutes).
         */
        for (unsigned i = 0; i < nbad && c->frames[f].ndirty; i++) {
            skip |= kona_remote_same_nodes(&s->remote, at, bad[i]);
        }
        if (skip) {
            failed++;
            s->stats[KONA_DEV_STAT_REMOTE_ERRORS]++;
            continue;
        }
        ret = evict ? kona_evict_frame(s, ls, f, false, &err)
                    : kona_writeback(s, ls, f, false, &err);
        if (ret < 0) {
            if (!failed++) {
                first_err = err;
            } else {
                kona_remote_failed(s, err);     /* counted, logged */
            }
            if (nbad < ARRAY_SIZE(bad)) {
                bad[nbad++] = at;
            }
            continue;
        }
        *count += evict ? 1 : s->stats[KONA_DEV_STAT_WRITEBACK_LINES] - lines;
    }
    if (failed) {
        error_propagate_prepend(errp, first_err, "kona-cxl: %u block(s) "
                                "could not be written back; the first: ",
                                failed);
        return -EIO;
    }
    return 0;
}

void kona_sync_dirty(KonaCxlState *s, uint64_t addr, uint64_t len)
{
    KonaCache *c = &s->cache;
    KonaCacheWalk w;
    uint32_t f;

    if (!s->track->sync_dirty || len == 0 || addr >= c->media_size) {
        return;
    }
    len = MIN(len, c->media_size - addr);
    kona_cache_walk_init(c, &w, kona_cache_block_of(c, addr),
                         kona_cache_block_of(c, addr + len - 1));
    while ((f = kona_cache_walk_next(c, &w)) != KONA_NO_FRAME) {
        s->track->sync_dirty(s, f);
    }
}

int kona_flush_all(KonaCxlState *s, KonaLockState *ls, uint64_t *lines,
                   Error **errp)
{
    uint64_t before = s->stats[KONA_DEV_STAT_WRITEBACK_LINES];
    uint64_t count;
    int ret;

    ret = kona_clean_range(s, ls, 0, s->size, false, &count, errp);
    /* What did reach the healthy memory nodes is flushed there all the same. */
    if (kona_remote_present(&s->remote)) {
        kona_release_bql(ls);
        if (ret == 0) {
            ret = kona_remote_flush(&s->remote, errp);
        } else {
            kona_remote_flush(&s->remote, NULL);
        }
    }
    if (lines) {
        *lines = s->stats[KONA_DEV_STAT_WRITEBACK_LINES] - before;
    }
    return ret;
}

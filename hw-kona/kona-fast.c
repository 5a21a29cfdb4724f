/*
 * Kona-CXL: tracking=fast, resident data served at RAM speed.
 *
 * The guest-visible media is one anonymous host mapping, the media's size
 * (reserved, not committed), that kona-direct.c maps into the guest's
 * physical address space at a committed decoder's range: loads, stores and
 * instruction fetches of resident blocks are plain memory accesses, under
 * TCG and KVM alike.  Only resident blocks have pages.  Touching any other
 * page faults in the host; userfaultfd hands the fault to this file's
 * thread, which makes the block resident as the exact mode would (room,
 * fetch from the memory node) and installs it with UFFDIO_COPY, which
 * wakes the faulting thread.
 *
 * Stores are not seen one by one.  Each resident block keeps a clean copy
 * (the cache's frame memory holds it: the cost is one more copy of the
 * cache), and at write-back the lines that differ from it are the dirty
 * ones.  So a store that leaves a line's value unchanged dirties nothing
 * here, where hardware and tracking=exact count it.  To write back without
 * racing the guest, the block is write-protected (userfaultfd WP: a store
 * waits) while it is compared and sent, then either dropped (MADV_DONTNEED:
 * its next touch faults again) or, if it stays resident, its clean copy
 * renewed and the protection lifted.
 *
 * Locking is the device's (kona-cxl.h); the fault thread takes the device
 * lock and never the BQL.  Nothing may touch a missing or write-protected
 * page of the media while holding the device lock, or it would wait for
 * this thread, which waits for the lock: the device's own accesses touch
 * only resident blocks, and a block is write-protected only while the
 * thread writing it back holds the lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/madvise.h"
#include "qemu/userfaultfd.h"
#include "qapi/error.h"
#include "system/system.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include "kona-cxl.h"
#include "trace.h"

/* A fetch that fails is retried this often while the access waits. */
#define KONA_FAST_RETRY_MS      100

static uint64_t kona_fast_block_of(KonaCxlState *s, uint64_t hva)
{
    return (hva - (uintptr_t)s->fast.mem) >> s->cache.block_shift;
}

uint8_t *kona_fast_block(KonaCxlState *s, uint64_t block)
{
    return s->fast.mem + (block << s->cache.block_shift);
}

static uint8_t *kona_fast_frame_data(KonaCxlState *s, uint32_t frame)
{
    return kona_fast_block(s, s->cache.frames[frame].block);
}

int kona_fast_install(KonaCxlState *s, uint32_t frame, Error **errp)
{
    uint32_t bs = s->cache.block_size;
    uint8_t *dst = kona_fast_frame_data(s, frame);
    uint8_t *clean = kona_cache_frame_mem(&s->cache, frame);
    struct uffdio_copy copy = {
        .dst = (uintptr_t)dst, .src = (uintptr_t)clean, .len = bs,
    };

    if (ioctl(s->fast.uffd, UFFDIO_COPY, &copy) == 0) {
        return 0;
    }
    if (errno != EEXIST) {
        error_setg_errno(errp, errno, "kona-cxl: UFFDIO_COPY of block %"
                         PRIu64, s->cache.frames[frame].block);
        return -errno;
    }
    /*
     * Some page of the block is there already (QEMU itself populated it,
     * say): the pages that are not are copied, the others overwritten.
     */
    for (uint32_t off = 0; off < bs; off += qemu_real_host_page_size()) {
        copy.dst = (uintptr_t)(dst + off);
        copy.src = (uintptr_t)(clean + off);
        copy.len = qemu_real_host_page_size();
        if (ioctl(s->fast.uffd, UFFDIO_COPY, &copy) < 0) {
            if (errno != EEXIST) {
                error_setg_errno(errp, errno, "kona-cxl: UFFDIO_COPY");
                return -errno;
            }
            memcpy(dst + off, clean + off, qemu_real_host_page_size());
        }
    }
    return 0;
}

static void kona_fast_protect(KonaCxlState *s, uint32_t frame, bool wp)
{
    struct uffdio_writeprotect prot = {
        .range.start = (uintptr_t)kona_fast_frame_data(s, frame),
        .range.len = s->cache.block_size,
        .mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };

    /* Cannot fail on a registered, populated range but for bugs. */
    if (ioctl(s->fast.uffd, UFFDIO_WRITEPROTECT, &prot) < 0) {
        error_report("kona-cxl: UFFDIO_WRITEPROTECT (%d) of block %" PRIu64
                     ": %s", wp, s->cache.frames[frame].block,
                     strerror(errno));
    }
}

uint32_t kona_fast_sync_dirty(KonaCxlState *s, uint32_t frame)
{
    return kona_cache_diff_dirty(&s->cache, frame,
                                 kona_fast_frame_data(s, frame),
                                 kona_cache_frame_mem(&s->cache, frame));
}

void kona_fast_sync_range(KonaCxlState *s, uint64_t addr, uint64_t len)
{
    KonaCache *c = &s->cache;
    uint64_t first, last;

    if (!kona_fast_enabled(s) || len == 0 || addr >= c->media_size) {
        return;
    }
    len = MIN(len, c->media_size - addr);
    first = kona_cache_block_of(c, addr);
    last = kona_cache_block_of(c, addr + len - 1);
    if (last - first < c->nframes) {
        for (uint64_t b = first; b <= last; b++) {
            uint32_t f = kona_cache_frame_of(c, b);

            if (f != KONA_NO_FRAME) {
                kona_fast_sync_dirty(s, f);
            }
        }
        return;
    }
    for (uint32_t f = 0; f < c->nframes; f++) {
        if (c->frames[f].resident && c->frames[f].block >= first &&
            c->frames[f].block <= last) {
            kona_fast_sync_dirty(s, f);
        }
    }
}

void kona_fast_begin_writeback(KonaCxlState *s, uint32_t frame)
{
    kona_fast_protect(s, frame, true);
    kona_fast_sync_dirty(s, frame);
}

void kona_fast_end_writeback(KonaCxlState *s, uint32_t frame, bool written)
{
    if (written) {
        /* Protected since the comparison: the data is what was sent. */
        memcpy(kona_cache_frame_mem(&s->cache, frame),
               kona_fast_frame_data(s, frame), s->cache.block_size);
    }
    kona_fast_protect(s, frame, false);
}

void kona_fast_discard(KonaCxlState *s, uint64_t block)
{
    uint8_t *p = kona_fast_block(s, block);
    struct uffdio_range range = {
        .start = (uintptr_t)p, .len = s->cache.block_size,
    };

    if (qemu_madvise(p, s->cache.block_size, QEMU_MADV_DONTNEED) < 0) {
        error_report("kona-cxl: MADV_DONTNEED of block %" PRIu64 ": %s",
                     block, strerror(errno));
    }
    /* Stores that waited on the protection now fault the block back in. */
    ioctl(s->fast.uffd, UFFDIO_WAKE, &range);
}

/* One fault: make the page's block resident (or just wake, if it is). */
static void kona_fast_fault(KonaCxlState *s, uint64_t hva, bool wp)
{
    uint64_t block = kona_fast_block_of(s, hva);
    struct uffdio_range range = {
        .start = hva & qemu_real_host_page_mask(),
        .len = qemu_real_host_page_size(),
    };
    KonaLockState ls;

    if (block >= s->cache.nblocks) {
        return;
    }
    trace_kona_fast_fault(block, wp);
    for (;;) {
        uint32_t frame;

        kona_lock(s, &ls);
        if (kona_cache_frame_of(&s->cache, block) != KONA_NO_FRAME) {
            /* Resident (a write-back lifted its protection, or a race). */
            kona_unlock(s, &ls);
            ioctl(s->fast.uffd, UFFDIO_WAKE, &range);
            return;
        }
        s->stats[KONA_DEV_STAT_MISSES]++;
        frame = kona_fault_in(s, &ls, block);
        kona_unlock(s, &ls);
        if (frame != KONA_NO_FRAME || qatomic_read(&s->fast.stopping)) {
            return;
        }
        /*
         * The memory node failed: the access waits, as it would on a page
         * fault of a far-memory runtime, and the fetch is tried again.
         */
        g_usleep(KONA_FAST_RETRY_MS * 1000);
    }
}

static void *kona_fast_thread(void *opaque)
{
    KonaCxlState *s = opaque;
    struct pollfd fds[2] = {
        { .fd = s->fast.uffd, .events = POLLIN },
        { .fd = s->fast.stop_fd, .events = POLLIN },
    };
    struct uffd_msg msgs[16];

    while (!qatomic_read(&s->fast.stopping)) {
        int n;

        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_report("kona-cxl: fault thread: poll: %s", strerror(errno));
            break;
        }
        if (fds[1].revents) {
            break;
        }
        n = uffd_read_events(s->fast.uffd, msgs, ARRAY_SIZE(msgs));
        for (int i = 0; i < n; i++) {
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
                kona_fast_fault(s, msgs[i].arg.pagefault.address,
                                msgs[i].arg.pagefault.flags &
                                UFFD_PAGEFAULT_FLAG_WP);
            }
        }
    }
    return NULL;
}

bool kona_fast_check(KonaCxlState *s, Error **errp)
{
    uint64_t features = 0;

    if (s->block_size < qemu_real_host_page_size()) {
        error_setg(errp, "kona-cxl: property 'block-size' (%" PRIu64 ") must "
                   "be at least the host page size (%zu) with tracking=fast: "
                   "the host maps and faults whole pages", s->block_size,
                   qemu_real_host_page_size());
        return false;
    }
    if (s->window_ms) {
        error_setg(errp, "kona-cxl: property 'window-ms' needs "
                   "tracking=exact: with tracking=fast the device does not "
                   "see each store");
        return false;
    }
    if (should_mlock(mlock_state)) {
        error_setg(errp, "kona-cxl: property 'tracking': tracking=fast "
                   "cannot be used with -overcommit mem-lock (locking the "
                   "media would fault it all in)");
        return false;
    }
    if (uffd_query_features(&features) < 0 ||
        !(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
        error_setg(errp, "kona-cxl: property 'tracking': tracking=fast "
                   "needs userfaultfd with write-protection (Linux 5.7 or "
                   "later; as a user, vm.unprivileged_userfaultfd=1 or "
                   "access to /dev/userfaultfd)");
        return false;
    }
    return true;
}

bool kona_fast_init(KonaCxlState *s, Error **errp)
{
    KonaFast *f = &s->fast;

    f->uffd = f->stop_fd = -1;
    f->mem = kona_map_anon(s->size, "size", errp);
    if (!f->mem) {
        return false;
    }
    /* Host pages of the block size's granularity, never collapsed. */
    qemu_madvise(f->mem, s->size, QEMU_MADV_NOHUGEPAGE);
    f->uffd = uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP, true);
    if (f->uffd < 0 ||
        uffd_register_memory(f->uffd, f->mem, s->size,
                             UFFDIO_REGISTER_MODE_MISSING |
                             UFFDIO_REGISTER_MODE_WP, NULL) < 0) {
        error_setg_errno(errp, errno, "kona-cxl: property 'tracking': "
                         "cannot set up userfaultfd for tracking=fast");
        goto fail;
    }
    f->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (f->stop_fd < 0) {
        error_setg_errno(errp, errno, "kona-cxl: eventfd");
        goto fail;
    }
    memory_region_init_ram_ptr(&f->ram, OBJECT(s), "kona-fast-media",
                               s->size, f->mem);
    qemu_thread_create(&f->thread, "kona-fault", kona_fast_thread, s,
                       QEMU_THREAD_JOINABLE);
    f->running = true;
    return true;

fail:
    kona_fast_destroy(s);
    return false;
}

void kona_fast_stop(KonaCxlState *s)
{
    KonaFast *f = &s->fast;
    uint64_t one = 1;

    if (f->running) {
        qatomic_set(&f->stopping, true);
        if (write(f->stop_fd, &one, sizeof(one)) != sizeof(one)) {
            error_report("kona-cxl: cannot stop the fault thread");
        }
        qemu_thread_join(&f->thread);
        f->running = false;
        object_unparent(OBJECT(&f->ram));
    }
}

void kona_fast_destroy(KonaCxlState *s)
{
    KonaFast *f = &s->fast;

    kona_fast_stop(s);
    if (f->stop_fd >= 0) {
        close(f->stop_fd);
        f->stop_fd = -1;
    }
    if (f->uffd >= 0) {
        uffd_close_fd(f->uffd);
        f->uffd = -1;
    }
    if (f->mem) {
        munmap(f->mem, s->size);
        f->mem = NULL;
    }
}

/*
 * Kona-CXL: the media as host memory with userfaultfd misses (see
 * kona-uffd.h).
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
#include "kona-state.h"
#include "kona-media.h"
#include "kona-uffd.h"
#include "trace.h"

/* A fetch that fails is retried this often while the access waits. */
#define KONA_UFFD_RETRY_MS      100

bool kona_uffd_check(KonaCxlState *s, bool write_protect, Error **errp)
{
    uint64_t features = 0;

    if (s->block_size < qemu_real_host_page_size()) {
        error_setg(errp, "kona-cxl: property 'block-size' (%" PRIu64 ") must "
                   "be at least the host page size (%zu) with tracking=%s: "
                   "the host maps and faults whole pages", s->block_size,
                   qemu_real_host_page_size(), s->tracking);
        return false;
    }
    if (should_mlock(mlock_state)) {
        error_setg(errp, "kona-cxl: property 'tracking': tracking=%s cannot "
                   "be used with -overcommit mem-lock (locking the media "
                   "would fault it all in)", s->tracking);
        return false;
    }
    if (uffd_query_features(&features) < 0 ||
        (write_protect && !(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))) {
        error_setg(errp, "kona-cxl: property 'tracking': tracking=%s needs "
                   "userfaultfd%s (Linux 5.7 or later; as a user, "
                   "vm.unprivileged_userfaultfd=1 or access to "
                   "/dev/userfaultfd)", s->tracking,
                   write_protect ? " with write-protection" : "");
        return false;
    }
    return true;
}

/*
 * UFFDIO_COPY of [dst, dst + len) from @src.  The kernel may copy part of
 * it and answer EAGAIN (the mm changed meanwhile): go on from where it
 * stopped, so that no page is left mapped without the cache knowing.  A
 * page that is there already (QEMU itself touched it, say) is overwritten.
 */
static int kona_uffd_copy(KonaUffdMedia *m, uint8_t *dst, const uint8_t *src,
                          uint64_t len)
{
    size_t page = qemu_real_host_page_size();
    uint64_t done = 0;

    while (done < len) {
        struct uffdio_copy copy = {
            .dst = (uintptr_t)(dst + done),
            .src = (uintptr_t)(src + done),
            .len = len - done,
        };

        if (ioctl(m->uffd, UFFDIO_COPY, &copy) == 0) {
            return 0;
        }
        if (copy.copy > 0) {
            done += copy.copy;
            continue;
        }
        if (errno == EAGAIN) {
            continue;
        }
        if (errno != EEXIST) {
            return -errno;
        }
        /* The first page exists: overwrite it, copy on from the next. */
        memcpy(dst + done, src + done, page);
        done += page;
    }
    /* Pages overwritten in place had no waiter; the others woke theirs. */
    return 0;
}

int kona_uffd_install(KonaCxlState *s, uint64_t block, const uint8_t *src,
                      Error **errp)
{
    KonaUffdMedia *m = &s->uffd;
    uint8_t *dst = kona_uffd_block(m, block, s->cache.block_shift);
    int ret = kona_uffd_copy(m, dst, src, s->cache.block_size);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "kona-cxl: UFFDIO_COPY of block %"
                         PRIu64, block);
    }
    return ret;
}

void kona_uffd_protect(KonaCxlState *s, uint64_t block, bool wp)
{
    struct uffdio_writeprotect prot = {
        .range.start = (uintptr_t)kona_uffd_block(&s->uffd, block,
                                                  s->cache.block_shift),
        .range.len = s->cache.block_size,
        .mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };

    /* Cannot fail on a registered, populated range but for bugs. */
    if (ioctl(s->uffd.uffd, UFFDIO_WRITEPROTECT, &prot) < 0) {
        error_report("kona-cxl: UFFDIO_WRITEPROTECT (%d) of block %" PRIu64
                     ": %s", wp, block, strerror(errno));
    }
}

void kona_uffd_discard(KonaCxlState *s, uint64_t block)
{
    uint8_t *p = kona_uffd_block(&s->uffd, block, s->cache.block_shift);
    struct uffdio_range range = {
        .start = (uintptr_t)p, .len = s->cache.block_size,
    };

    if (qemu_madvise(p, s->cache.block_size, QEMU_MADV_DONTNEED) < 0) {
        error_report("kona-cxl: MADV_DONTNEED of block %" PRIu64 ": %s",
                     block, strerror(errno));
    }
    /* Stores that waited on a protection now fault the block back in. */
    ioctl(s->uffd.uffd, UFFDIO_WAKE, &range);
}

/*
 * A store that faulted: the mode learns of it once its block is resident
 * (tracking=stores: one that raced a page's take-back, kona-promote.c).
 * Fast mode's stores fault only on its own write-protection: no news.
 */
static void kona_uffd_stored(KonaCxlState *s, uint64_t block, uint64_t hva,
                             uint64_t flags)
{
    uint32_t frame = kona_cache_frame_of(&s->cache, block);

    if (s->track->late_store && frame != KONA_NO_FRAME &&
        (flags & (UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP))) {
        s->track->late_store(s, frame, hva - (uintptr_t)s->uffd.mem);
    }
}

/* One fault: make the page's block resident (or just wake, if it is). */
static void kona_uffd_fault(KonaCxlState *s, uint64_t hva, uint64_t flags)
{
    bool wp = flags & UFFD_PAGEFAULT_FLAG_WP;
    KonaUffdMedia *m = &s->uffd;
    uint64_t block = (hva - (uintptr_t)m->mem) >> s->cache.block_shift;
    struct uffdio_range range = {
        .start = hva & qemu_real_host_page_mask(),
        .len = qemu_real_host_page_size(),
    };
    KonaLockState ls;

    if (block >= s->cache.nblocks) {
        return;
    }
    trace_kona_uffd_fault(block, wp);
    for (;;) {
        uint32_t frame;

        kona_lock(s, &ls);
        if (kona_cache_frame_of(&s->cache, block) != KONA_NO_FRAME) {
            /* Resident (a write-back lifted its protection, or a race). */
            kona_uffd_stored(s, block, hva, flags);
            kona_unlock(s, &ls);
            ioctl(m->uffd, UFFDIO_WAKE, &range);
            return;
        }
        s->stats[KONA_DEV_STAT_MISSES]++;
        frame = kona_fault_in(s, &ls, block);
        kona_uffd_stored(s, block, hva, flags);
        kona_unlock(s, &ls);
        if (frame != KONA_NO_FRAME || qatomic_read(&m->stopping)) {
            return;
        }
        if (qatomic_read(&m->giving_up)) {
            struct uffdio_zeropage zero = { .range = range };

            ioctl(m->uffd, UFFDIO_ZEROPAGE, &zero);
            return;
        }
        /*
         * The memory node failed: the access waits, as it would on a page
         * fault of a far-memory runtime, and the fetch is tried again.
         */
        g_usleep(KONA_UFFD_RETRY_MS * 1000);
    }
}

static void *kona_uffd_thread(void *opaque)
{
    KonaCxlState *s = opaque;
    KonaUffdMedia *m = &s->uffd;
    struct pollfd fds[2] = {
        { .fd = m->uffd, .events = POLLIN },
        { .fd = m->stop_fd, .events = POLLIN },
    };
    struct uffd_msg msgs[16];

    while (!qatomic_read(&m->stopping)) {
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
        n = uffd_read_events(m->uffd, msgs, ARRAY_SIZE(msgs));
        for (int i = 0; i < n; i++) {
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
                kona_uffd_fault(s, msgs[i].arg.pagefault.address,
                                msgs[i].arg.pagefault.flags);
            }
        }
    }
    return NULL;
}

bool kona_uffd_init(KonaCxlState *s, bool write_protect, Error **errp)
{
    KonaUffdMedia *m = &s->uffd;

    m->uffd = m->stop_fd = -1;
    m->size = s->size;
    m->mem = kona_map_anon(s->size, "size", errp);
    if (!m->mem) {
        return false;
    }
    m->uffd = uffd_create_fd(write_protect ? UFFD_FEATURE_PAGEFAULT_FLAG_WP
                                           : 0, true);
    if (m->uffd < 0 ||
        uffd_register_memory(m->uffd, m->mem, s->size,
                             UFFDIO_REGISTER_MODE_MISSING |
                             (write_protect ? UFFDIO_REGISTER_MODE_WP : 0),
                             NULL) < 0) {
        error_setg_errno(errp, errno, "kona-cxl: property 'tracking': "
                         "cannot set up userfaultfd for tracking=%s",
                         s->tracking);
        goto fail;
    }
    m->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (m->stop_fd < 0) {
        error_setg_errno(errp, errno, "kona-cxl: eventfd");
        goto fail;
    }
    return true;

fail:
    kona_uffd_destroy(s);
    return false;
}

void kona_uffd_start(KonaCxlState *s)
{
    KonaUffdMedia *m = &s->uffd;

    /*
     * Host pages of the block size's granularity, never collapsed.  Here,
     * after the guest region exists: creating a RAM block advises huge
     * pages on its memory.
     */
    qemu_madvise(m->mem, m->size, QEMU_MADV_NOHUGEPAGE);
    qemu_thread_create(&m->thread, "kona-fault", kona_uffd_thread, s,
                       QEMU_THREAD_JOINABLE);
    m->running = true;
}

void kona_uffd_give_up(KonaCxlState *s)
{
    qatomic_set(&s->uffd.giving_up, true);
}

void kona_uffd_stop(KonaCxlState *s)
{
    KonaUffdMedia *m = &s->uffd;
    uint64_t one = 1;

    if (m->running) {
        qatomic_set(&m->stopping, true);
        if (write(m->stop_fd, &one, sizeof(one)) != sizeof(one)) {
            error_report("kona-cxl: cannot stop the fault thread");
        }
        qemu_thread_join(&m->thread);
        m->running = false;
    }
}

void kona_uffd_destroy(KonaCxlState *s)
{
    KonaUffdMedia *m = &s->uffd;

    kona_uffd_stop(s);
    if (m->stop_fd >= 0) {
        close(m->stop_fd);
        m->stop_fd = -1;
    }
    if (m->uffd >= 0) {
        uffd_close_fd(m->uffd);
        m->uffd = -1;
    }
    if (m->mem) {
        munmap(m->mem, m->size);
        m->mem = NULL;
    }
}

/*
 * What this host charges for the operations tracking=fast and stores are
 * built on, measured with nothing of QEMU in the way:
 *   - a userfaultfd MISSING fault resolved by another thread with
 *     UFFDIO_COPY (the miss path: fault, wake-up, copy, wake-up);
 *   - MADV_DONTNEED of one page while another thread runs in the same
 *     process (an eviction: the TLB shoot-down reaches every CPU that runs
 *     a vCPU), one call per page and batched 16 pages per process_madvise;
 *   - UFFDIO_WRITEPROTECT of one page, on and off (fast mode's write-back).
 * Medians and p90 of N pages.  A benchmark: it prints numbers, it asserts
 * nothing (run by hand: build/kona/tests/bench-host-costs [PAGES]).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static int uffd;
static char *src;
static volatile int stop;

static double now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;

    return d < 0 ? -1 : d > 0;
}

static void report(const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp);
    printf("%-46s p50 %8.2f us   p90 %8.2f us\n", what, v[n / 2] / 1e3,
           v[n * 9 / 10] / 1e3);
}

/* The fault thread: what kona-uffd.c's does, nothing else. */
static void *fault_thread(void *opaque)
{
    struct uffd_msg m;

    while (!stop) {
        struct pollfd p = { .fd = uffd, .events = POLLIN };

        if (poll(&p, 1, 100) <= 0 || read(uffd, &m, sizeof(m)) != sizeof(m)) {
            continue;
        }
        struct uffdio_copy c = {
            .dst = m.arg.pagefault.address & ~(uint64_t)(PAGE - 1),
            .src = (uintptr_t)src, .len = PAGE,
        };
        ioctl(uffd, UFFDIO_COPY, &c);
    }
    return NULL;
}

/* Another thread of the process, running, as a vCPU would. */
static void *busy_thread(void *opaque)
{
    volatile char *p = opaque;

    while (!stop) {
        (void)p[0];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 2048;
    double *lat = calloc(n, sizeof(double));
    char *mem = mmap(NULL, 2 * n * PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_api api = {
        .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP,
    };
    struct uffdio_register reg = {
        .range = { (uintptr_t)mem, 2 * n * PAGE },
        .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
    };
    int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    pthread_t ft, bt;

    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0 ||
        ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
        perror("userfaultfd");
        return 1;
    }
    src = aligned_alloc(PAGE, PAGE);
    memset(src, 1, PAGE);
    pthread_create(&ft, NULL, fault_thread, NULL);
    pthread_create(&bt, NULL, busy_thread, src);

    for (size_t i = 0; i < n; i++) {
        double a = now_ns();

        (void)*(volatile char *)(mem + 2 * i * PAGE);
        lat[i] = now_ns() - a;
    }
    report("uffd MISSING fault, resolved by a thread", lat, n);

    for (size_t i = 0; i < n; i++) {
        struct uffdio_writeprotect wp = {
            .range = { (uintptr_t)(mem + 2 * i * PAGE), PAGE },
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        double a = now_ns();

        ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
        wp.mode = 0;
        ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
        lat[i] = now_ns() - a;
    }
    report("UFFDIO_WRITEPROTECT on + off, one page", lat, n);

    for (size_t i = 0; i < n; i++) {
        double a = now_ns();

        madvise(mem + 2 * i * PAGE, PAGE, MADV_DONTNEED);
        lat[i] = now_ns() - a;
    }
    report("MADV_DONTNEED, one page", lat, n);

    for (size_t i = 0; i < n; i++) {
        (void)*(volatile char *)(mem + 2 * i * PAGE);     /* back in */
    }
    for (size_t i = 0; i + 16 <= n; i += 16) {
        struct iovec iov[16];
        double a = now_ns();

        for (int j = 0; j < 16; j++) {
            iov[j].iov_base = mem + 2 * (i + j) * PAGE;
            iov[j].iov_len = PAGE;
        }
        if (syscall(SYS_process_madvise, pidfd, iov, 16, MADV_DONTNEED,
                    0) < 0) {
            perror("process_madvise");
            break;
        }
        lat[i / 16] = (now_ns() - a) / 16;
    }
    report("MADV_DONTNEED, 16 pages per process_madvise", lat, n / 16);
    stop = 1;
    pthread_join(ft, NULL);
    pthread_join(bt, NULL);
    return 0;
}

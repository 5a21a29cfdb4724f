/*
 * kona-poison-probe: what a process sees of data the device cannot fetch.
 *
 *   kona-poison-probe NODE PAGES SECONDS
 *
 * Maps PAGES pages bound to NODE (mbind: only the data, not the page
 * tables, lives there), writes a pattern into each, prints
 * "KONA-FAULT-NOW", sleeps SECONDS (the test cuts the memory node
 * meanwhile), then loads one word of each page.  Each load sits in the
 * middle of a loop body: under TCG it is not the last instruction of its
 * translation block, so the device's failure of it is replayed alone
 * before its machine check (qemu-patches/0005).
 *
 * A load the device cannot serve must end in SIGBUS, si_code
 * BUS_MCEERR_AR, at that page's address (the guest kernel's memory
 * failure handling of the device's machine check); every other load must
 * return the pattern.  Prints
 *   probe: PAGES pages, GOOD good, MCE machine checks, BAD bad
 * and exits 1 if any load returned other data or a SIGBUS was not such a
 * report for the page being read.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE_SIZE 4096
#define MPOL_BIND 2
#define MPOL_MF_STRICT (1 << 0)
#define MPOL_MF_MOVE (1 << 1)

static sigjmp_buf probe_jmp;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    siglongjmp(probe_jmp, 1);
}

static uint64_t pattern(size_t page)
{
    return 0x6b6f6e6100000000ull | page;
}

int main(int argc, char **argv)
{
    struct sigaction sa = { 0 };
    size_t pages, good = 0, mce = 0, bad = 0;
    unsigned long mask;
    volatile uint64_t *buf;
    int node, seconds;

    if (argc != 4) {
        fprintf(stderr, "usage: kona-poison-probe NODE PAGES SECONDS\n");
        return 2;
    }
    node = atoi(argv[1]);
    pages = strtoul(argv[2], NULL, 0);
    seconds = atoi(argv[3]);
    if (node < 0 || node >= 64 || pages == 0 || seconds < 0) {
        fprintf(stderr, "kona-poison-probe: bad node, pages or seconds\n");
        return 2;
    }
    buf = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("kona-poison-probe: mmap");
        return 1;
    }
    /* A huge page would take 512 pages down with one failed load. */
    madvise((void *)buf, pages * PAGE_SIZE, MADV_NOHUGEPAGE);
    mask = 1ul << node;
    if (syscall(SYS_mbind, buf, pages * PAGE_SIZE, MPOL_BIND, &mask, 64,
                MPOL_MF_STRICT | MPOL_MF_MOVE) < 0) {
        fprintf(stderr, "kona-poison-probe: mbind to node %d: %s\n", node,
                strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < pages; i++) {
        buf[i * (PAGE_SIZE / 8)] = pattern(i);
    }
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    printf("KONA-FAULT-NOW\n");
    fflush(stdout);
    sleep(seconds);

    for (size_t i = 0; i < pages; i++) {
        volatile uint64_t *word = &buf[i * (PAGE_SIZE / 8)];
        uint64_t v;

        if (sigsetjmp(probe_jmp, 1)) {
            if (fault_code != BUS_MCEERR_AR || fault_addr != (void *)word) {
                fprintf(stderr, "probe: page %zu: SIGBUS code %d at %p, "
                        "not a memory error at %p\n", i, fault_code,
                        (void *)fault_addr, (void *)word);
                bad++;
            } else {
                mce++;
            }
            continue;
        }
        v = *word;
        if (v == pattern(i)) {
            good++;
        } else {
            fprintf(stderr, "probe: page %zu: read %#llx\n", i,
                    (unsigned long long)v);
            bad++;
        }
    }
    printf("probe: %zu pages, %zu good, %zu machine checks, %zu bad\n",
           pages, good, mce, bad);
    return bad ? 1 : 0;
}

/*
 * kona-poison-probe: what a process sees of data the device cannot fetch.
 *
 *   kona-poison-probe NODE PAGES SECONDS [WIDTH]
 *
 * Maps PAGES pages bound to NODE (mbind: only the data, not the page
 * tables, lives there), writes a pattern into each, prints
 * "KONA-FAULT-NOW", sleeps SECONDS (the test cuts the memory node
 * meanwhile), then loads from each page with one instruction of WIDTH:
 *   8      the default: the page's first word
 *   16     its first 16 bytes (one SSE load, which TCG serves as a pair of
 *          8-byte device accesses under one hold of the device's lock,
 *          qemu-patches/0007)
 *   cross  8 bytes across the end of the page into the next: TCG serves
 *          it as two device accesses, one in each page (qemu-patches/0012);
 *          the next page is not loaded on its own, so pages go in twos
 *   both   8 and 16 on alternate pages
 *   all    8, 16 and cross, in turn over groups of four pages
 * Each load sits in the middle of a loop body: under TCG it is not the
 * last instruction of its translation block, so the device's failure of
 * it is replayed alone before its machine check (qemu-patches/0005).
 *
 * A load the device cannot serve must end in one SIGBUS, si_code
 * BUS_MCEERR_AR, in a page it reads (the guest kernel's memory failure
 * handling of the device's machine check); every other load must return
 * the pattern.  Prints
 *   probe: LOADS pages, GOOD good, MCE machine checks, BAD bad
 * and exits 1 if any load returned other data or a SIGBUS was not such a
 * report for the page being read.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <emmintrin.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kona-node-mem.h"

#define PAGE_SIZE 4096

static sigjmp_buf probe_jmp;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    siglongjmp(probe_jmp, 1);
}

/* Word @word (0 or 1) of page @page. */
static uint64_t pattern(size_t page, int word)
{
    return (0x6b6f6e6100000000ull | page) ^ (word ? ~0ull : 0);
}

/* Widths: 8 and 16 bytes, and 8 bytes across the end of the page. */
#define WIDTH_CROSS     -1
#define WIDTH_BOTH      0       /* 8 and 16 on alternate pages */
#define WIDTH_ALL       1       /* 8, 16, cross, over groups of 4 pages */
#define CROSS_OFFSET    (PAGE_SIZE - 4)

/* The load that page @page's probe makes (0: none, the page before's). */
static int width_of(int width, size_t page)
{
    static const int all[4] = { 8, 16, WIDTH_CROSS, 0 };

    if (width == WIDTH_BOTH) {
        return page % 2 ? 16 : 8;
    }
    if (width == WIDTH_ALL) {
        return all[page % 4];
    }
    if (width == WIDTH_CROSS) {
        return page % 2 ? 0 : WIDTH_CROSS;
    }
    return width;
}

/* An unaligned 8-byte load at @p: one instruction, as the test needs. */
static uint64_t load_cross(volatile uint8_t *p)
{
    uint64_t v;

    __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(p) : "memory");
    return v;
}

/* The load from page @page at @p matches its pattern? */
static bool load_matches(volatile uint64_t *p, size_t page, int width)
{
    if (width == WIDTH_CROSS) {
        return load_cross((volatile uint8_t *)p + CROSS_OFFSET) ==
               pattern(page, 0);
    }
    if (width == 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);

        return (uint64_t)_mm_cvtsi128_si64(v) == pattern(page, 0) &&
               (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)) ==
               pattern(page, 1);
    }
    return *p == pattern(page, 0);
}

int main(int argc, char **argv)
{
    struct sigaction sa = { 0 };
    size_t pages;
    /* Changed between sigsetjmp() and the SIGBUS handler's longjmp. */
    volatile size_t loads = 0, good = 0, mce = 0, bad = 0;
    volatile uint64_t *buf;
    int node, seconds, width;

    if (argc != 4 && argc != 5) {
        fprintf(stderr,
                "usage: kona-poison-probe NODE PAGES SECONDS [WIDTH]\n");
        return 2;
    }
    node = atoi(argv[1]);
    pages = strtoul(argv[2], NULL, 0);
    seconds = atoi(argv[3]);
    width = argc < 5 ? 8 : !strcmp(argv[4], "both") ? WIDTH_BOTH :
            !strcmp(argv[4], "all") ? WIDTH_ALL :
            !strcmp(argv[4], "cross") ? WIDTH_CROSS : atoi(argv[4]);
    if (node < 0 || node >= 64 || pages == 0 || seconds < 0 ||
        (width != WIDTH_BOTH && width != WIDTH_ALL && width != WIDTH_CROSS &&
         width != 8 && width != 16)) {
        fprintf(stderr, "kona-poison-probe: bad node, pages, seconds or "
                "width (8, 16, cross, both or all)\n");
        return 2;
    }
    /* Small pages: a huge page would go down with one failed load. */
    buf = kona_node_map("kona-poison-probe", node, pages * PAGE_SIZE);
    if (!buf) {
        return 1;
    }
    for (size_t i = 0; i < pages; i++) {
        buf[i * (PAGE_SIZE / 8)] = pattern(i, 0);
        buf[i * (PAGE_SIZE / 8) + 1] = pattern(i, 1);
    }
    /* Over the next page's first word: that page is not loaded itself. */
    for (size_t i = 0; i + 1 < pages; i++) {
        if (width_of(width, i) == WIDTH_CROSS) {
            uint64_t v = pattern(i, 0);

            memcpy((uint8_t *)&buf[i * (PAGE_SIZE / 8)] + CROSS_OFFSET, &v,
                   sizeof(v));
        }
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
        int w = width_of(width, i);

        if (w == 0 || (w == WIDTH_CROSS && i + 1 == pages)) {
            continue;
        }
        loads++;
        if (sigsetjmp(probe_jmp, 1)) {
            uintptr_t at = (uintptr_t)fault_addr & ~(uintptr_t)(PAGE_SIZE - 1);
            /* The pages the load reads: its machine check names one. */
            size_t span = w == WIDTH_CROSS ? 2 : 1;

            if (fault_code != BUS_MCEERR_AR || at < (uintptr_t)word ||
                at >= (uintptr_t)word + span * PAGE_SIZE) {
                fprintf(stderr, "probe: page %zu: SIGBUS code %d at %p, "
                        "not a memory error in %p (+%zu pages)\n", i,
                        fault_code, (void *)fault_addr, (void *)word, span);
                bad++;
            } else {
                mce++;
            }
            continue;
        }
        if (load_matches(word, i, w)) {
            good++;
        } else {
            fprintf(stderr, "probe: page %zu: read %#llx %#llx\n", i,
                    (unsigned long long)word[0], (unsigned long long)word[1]);
            bad++;
        }
    }
    printf("probe: %zu pages, %zu good, %zu machine checks, %zu bad\n",
           (size_t)loads, good, mce, bad);
    return bad ? 1 : 0;
}

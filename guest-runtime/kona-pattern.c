/*
 * kona-pattern: known patterns of stores on the Kona node, and what the
 * device writes back for them (tests/guest/pattern-test).
 *
 *   kona-pattern NODE PAGES EVICTIONS
 *
 * Binds PAGES 4 KiB pages to NODE and, with the device's counters read
 * through its control registers (BAR 5) around each step, prints one
 * "PATTERN step=S key=value..." line per step:
 *   whole    every byte of every page written, 8 passes, then FLUSH: the
 *            lines written back (PAGES * 64 expected), the pages written
 *            back with all 64 lines dirty, and the pages the device gave
 *            RAM writes meanwhile (tracking=stores, promote)
 *   one      after that FLUSH, one 8-byte store per page, in line
 *            page % 64, then FLUSH: PAGES lines and PAGES pages with one
 *            dirty line expected, in every tracking mode: the flush must
 *            have taken every page back
 *   evicted  the pages written whole again, every block evicted, the data
 *            read back: the words that differ (0 expected)
 *   race     a thread writes pass after pass over the pages while this one
 *            evicts every block EVICTIONS times, each time after three
 *            more of its passes (so that, in stores mode, its pages have
 *            been given RAM writes again); then the thread's last pass is
 *            read back after one more eviction: the words that differ (0
 *            expected: no store lost), the pages given RAM writes, and the
 *            stores that raced a page's take-back (counted as whole pages)
 * Exits 0 if it could run, whatever the counts (the test judges them).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "kona-bar.h"
#include "kona-node-mem.h"

#define PAGE 4096
#define WORDS_PER_PAGE (PAGE / 8)

static KonaBar bar;
static uint64_t *buf;
static size_t pages;

static void die(const char *what)
{
    fprintf(stderr, "kona-pattern: %s\n", what);
    exit(1);
}

static uint64_t cmd(uint32_t c, uint64_t a0, uint64_t a1)
{
    uint64_t result = 0;
    uint32_t st = kona_bar_cmd(&bar, c, a0, a1, &result);

    if (st != KONA_CMD_STATUS_OK) {
        fprintf(stderr, "kona-pattern: command %u: %s\n", c,
                kona_cmd_status_str(st));
        exit(1);
    }
    return result;
}

static uint64_t flush(void)
{
    return cmd(KONA_CMD_FLUSH, 0, 0);
}

static void evict_all(void)
{
    cmd(KONA_CMD_EVICT, 0, kona_rd64(&bar, KONA_REG_MEDIA_SIZE));
}

static uint64_t hist(unsigned lines)
{
    return kona_rd64(&bar, KONA_REG_HIST + 8 * lines);
}

static void write_pass(uint64_t value)
{
    for (size_t i = 0; i < pages * WORDS_PER_PAGE; i++) {
        ((volatile uint64_t *)buf)[i] = value + i;
    }
}

static uint64_t count_wrong(uint64_t value)
{
    uint64_t wrong = 0;

    for (size_t i = 0; i < pages * WORDS_PER_PAGE; i++) {
        wrong += ((volatile uint64_t *)buf)[i] != value + i;
    }
    return wrong;
}

static void step_whole(void)
{
    uint64_t ram0 = kona_stat(&bar, KONA_DEV_STAT_RAM_PAGES), h0, lines;

    flush();
    h0 = hist(64);
    for (int pass = 0; pass < 8; pass++) {
        write_pass(1000 + pass);
    }
    lines = flush();
    printf("PATTERN step=whole lines=%" PRIu64 " full-pages=%" PRIu64
           " ram-pages=%" PRIu64 "\n", lines, hist(64) - h0,
           kona_stat(&bar, KONA_DEV_STAT_RAM_PAGES) - ram0);
}

static void step_one(void)
{
    uint64_t h0 = hist(1), lines;

    for (size_t p = 0; p < pages; p++) {
        ((volatile uint64_t *)buf)[p * WORDS_PER_PAGE + (p % 64) * 8] = p;
    }
    lines = flush();
    printf("PATTERN step=one lines=%" PRIu64 " one-line-pages=%" PRIu64
           "\n", lines, hist(1) - h0);
}

static void step_evicted(void)
{
    for (int pass = 0; pass < 4; pass++) {
        write_pass(2000 + pass);
    }
    evict_all();
    printf("PATTERN step=evicted wrong-words=%" PRIu64 "\n",
           count_wrong(2003));
}

static atomic_int stop;
static atomic_uint_fast64_t last_pass;
static atomic_uint_fast64_t passes;

static void *writer(void *arg)
{
    uint64_t v = 1 << 20;

    (void)arg;
    do {
        v += 1 << 20;
        write_pass(v);
        atomic_store(&last_pass, v);
        atomic_fetch_add(&passes, 1);
    } while (!atomic_load(&stop));
    return NULL;
}

/*
 * Three passes from now: the one under way may have met the eviction
 * half-way, the next makes every page fully dirty, the third takes the
 * stores that give it RAM writes (kona-promote.c: 64 of them).
 */
static void wait_passes(void)
{
    uint64_t from = atomic_load(&passes);

    while (atomic_load(&passes) < from + 3) {
        sched_yield();
    }
}

static void step_race(int evictions)
{
    uint64_t late0 = kona_stat(&bar, KONA_DEV_STAT_LATE_STORES);
    uint64_t ram0 = kona_stat(&bar, KONA_DEV_STAT_RAM_PAGES);
    pthread_t t;

    if (pthread_create(&t, NULL, writer, NULL)) {
        die("pthread_create");
    }
    for (int i = 0; i < evictions; i++) {
        wait_passes();
        evict_all();
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    evict_all();
    printf("PATTERN step=race evictions=%d wrong-words=%" PRIu64
           " late-stores=%" PRIu64 " ram-pages=%" PRIu64 "\n", evictions,
           count_wrong(atomic_load(&last_pass)),
           kona_stat(&bar, KONA_DEV_STAT_LATE_STORES) - late0,
           kona_stat(&bar, KONA_DEV_STAT_RAM_PAGES) - ram0);
}

int main(int argc, char **argv)
{
    char err[KONA_ERR_LEN];
    int node, evictions;

    if (argc != 4) {
        fprintf(stderr, "usage: kona-pattern NODE PAGES EVICTIONS\n");
        return 2;
    }
    node = atoi(argv[1]);
    pages = strtoul(argv[2], NULL, 0);
    evictions = atoi(argv[3]);
    if (pages == 0 || pages > 65536 || evictions < 0) {
        fprintf(stderr, "kona-pattern: bad page count or evictions\n");
        return 2;
    }
    if (kona_bar_open(&bar, NULL, err) < 0) {
        fprintf(stderr, "kona-pattern: %s\n", err);
        return 1;
    }
    buf = kona_node_map("kona-pattern", node, pages * PAGE);
    if (!buf) {
        return 1;
    }
    /* Resident from here on: a fault would move nothing, the pages stay. */
    if (mlock(buf, pages * PAGE) < 0) {
        die("mlock");
    }
    step_whole();
    step_one();
    step_evicted();
    step_race(evictions);
    kona_bar_close(&bar);
    return 0;
}

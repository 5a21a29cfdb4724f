/*
 * kona-wl: helpers shared by the in-guest workload programs; see kona-wl.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "kona-wl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* From <numaif.h>, which is libnuma's: the guest has no libnuma. */
#define MPOL_BIND 2
#define MPOL_MF_STRICT (1 << 0)
#define MPOL_MF_MOVE (1 << 1)
#define PAGE_SIZE 4096

const char *kona_wl_prog = "kona-wl";

double kona_wl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void *kona_wl_alloc(size_t bytes, int node)
{
    unsigned long mask;
    size_t len = (bytes + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1);
    /* volatile: the stores that fault the pages in must not be elided. */
    volatile char *p;

    if (len == 0) {
        len = PAGE_SIZE;
    }
    if (node < 0 || node >= 64) {
        fprintf(stderr, "%s: node %d out of range (0..63)\n", kona_wl_prog,
                node);
        exit(1);
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "%s: mmap %zu bytes: %s\n", kona_wl_prog, len,
                strerror(errno));
        exit(1);
    }
    /* Small pages: a huge page's first touch would dominate everything. */
    madvise((void *)p, len, MADV_NOHUGEPAGE);
    mask = 1ul << node;
    if (syscall(SYS_mbind, p, len, MPOL_BIND, &mask, 64,
                MPOL_MF_STRICT | MPOL_MF_MOVE) < 0) {
        fprintf(stderr, "%s: mbind %zu bytes to node %d: %s\n", kona_wl_prog,
                len, node, strerror(errno));
        exit(1);
    }
    /*
     * Fault every page in now, so that no timed phase pays for page faults
     * (and the kernel zeroing the page on the node): konabench measures
     * first touch on its own.
     */
    for (size_t i = 0; i < len; i += PAGE_SIZE) {
        p[i] = 0;
    }
    return (void *)p;
}

uint64_t kona_wl_mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t kona_wl_rand(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ull;
    return kona_wl_mix64(*state);
}

uint64_t kona_wl_below(uint64_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)kona_wl_rand(state) * n) >> 64);
}

void kona_wl_bad_args(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", kona_wl_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    exit(2);
}

void kona_wl_fail(const char *workload, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: %s: verification failed: ", kona_wl_prog, workload);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Strict: the whole of @s is a decimal integer in [min, max]. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

void kona_wl_parse(int argc, char **argv, int first, const KonaWlOpt *opts,
                   const char *usage)
{
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i], *val, *eq;
        const KonaWlOpt *o;
        size_t len;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2)) {
            kona_wl_bad_args(usage, "unexpected argument '%s'", arg);
        }
        arg += 2;
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        for (o = opts; o->name; o++) {
            if (strlen(o->name) == len && !strncmp(o->name, arg, len)) {
                break;
            }
        }
        if (!o->name) {
            kona_wl_bad_args(usage, "unknown option '%s'", argv[i]);
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            kona_wl_bad_args(usage, "--%s needs a value", o->name);
        }
        if (parse_long(val, o->min, o->max, o->value) < 0) {
            kona_wl_bad_args(usage, "--%s: '%s' is not an integer in "
                             "[%ld, %ld]", o->name, val, o->min, o->max);
        }
    }
}

int kona_wl_args(int argc, char **argv, const char *const *subcommands,
                 const KonaWlOpt *opts, const char *usage)
{
    int sub;

    /* Help wins wherever it is, even in place of the subcommand. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
    }
    if (argc < 2) {
        kona_wl_bad_args(usage, "missing subcommand");
    }
    for (sub = 0; subcommands[sub]; sub++) {
        if (!strcmp(argv[1], subcommands[sub])) {
            break;
        }
    }
    if (!subcommands[sub]) {
        kona_wl_bad_args(usage, "unknown subcommand '%s'", argv[1]);
    }
    kona_wl_parse(argc, argv, 2, opts, usage);
    for (; opts->name; opts++) {
        if (!strcmp(opts->name, "node") && *opts->value < 0) {
            kona_wl_bad_args(usage, "--node is required");
        }
    }
    return sub;
}

void kona_wl_result(const char *workload, const char *metric, double value,
                    const char *unit)
{
    printf("RESULT workload=%s metric=%s value=%.6g unit=%s\n", workload,
           metric, value, unit);
    fflush(stdout);
}

void kona_wl_phase(const char *workload, const char *name, double seconds)
{
    printf("PHASE workload=%s name=%s seconds=%.6g\n", workload, name,
           seconds);
    fflush(stdout);
}

void kona_wl_info(const char *workload, const char *fmt, ...)
{
    va_list ap;

    printf("INFO workload=%s ", workload);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

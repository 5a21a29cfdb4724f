/*
 * kona-wl: helpers shared by the in-guest workload programs (kona-sort,
 * kona-mapreduce, kona-graph).
 *
 * Every program keeps its data set in memory bound to one NUMA node (the
 * Kona-CXL node or node 0 for reference), prints one
 *   RESULT workload=W metric=M value=V unit=U
 * line per metric (as guest-runtime/workloads/bench.sh and bench/collect.py
 * expect) and one
 *   PHASE workload=W name=P seconds=S
 * line per phase, timed or not, so that a slow run can be explained, and
 * INFO lines with what it verified.
 * Exit status: 0 success, 1 failed verification (or no memory on the node),
 * 2 bad arguments.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_WL_H
#define KONA_WL_H

#include <stddef.h>
#include <stdint.h>

/* Set by each program's main(); prefixes every message on stderr. */
extern const char *kona_wl_prog;

/* One "--NAME N" option: *value holds the default and receives the value. */
typedef struct KonaWlOpt {
    const char *name;
    long *value;
    long min;
    long max;
} KonaWlOpt;

double kona_wl_now(void);

/*
 * @bytes of zeroed memory on @node: mmap, no huge pages, mbind (MPOL_BIND,
 * strict, move), every page faulted in.  Exits 1 with a message on failure.
 */
void *kona_wl_alloc(size_t bytes, int node);

/* splitmix64: a bijective mix, and the generator built on it. */
uint64_t kona_wl_mix64(uint64_t x);
uint64_t kona_wl_rand(uint64_t *state);
/* Uniform in [0, n), n > 0 (multiply-high, no division). */
uint64_t kona_wl_below(uint64_t *state, uint64_t n);

/*
 * Parses argv[first..argc) against @opts (terminated by a NULL name):
 * "--NAME N" or "--NAME=N", N a decimal integer in [min, max].  "--help"
 * or "-h" prints @usage to stdout and exits 0; anything else exits 2.
 */
void kona_wl_parse(int argc, char **argv, int first, const KonaWlOpt *opts,
                   const char *usage);
/*
 * "PROG SUBCOMMAND [--NAME N]...": parses the options as kona_wl_parse()
 * does and returns the index of SUBCOMMAND in @subcommands (terminated by
 * NULL).  @opts must have "node" (default -1): --node is required.
 */
int kona_wl_args(int argc, char **argv, const char *const *subcommands,
                 const KonaWlOpt *opts, const char *usage);
/* Prints the message and @usage to stderr, exits 2. */
void kona_wl_bad_args(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* Prints "PROG: WORKLOAD: verification failed: ..." to stderr, exits 1. */
void kona_wl_fail(const char *workload, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

void kona_wl_result(const char *workload, const char *metric, double value,
                    const char *unit);
void kona_wl_phase(const char *workload, const char *name, double seconds);
/*
 * "INFO workload=W ..." on stdout: what was verified (counts, checksums),
 * the same for the same arguments, to compare runs.
 */
void kona_wl_info(const char *workload, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

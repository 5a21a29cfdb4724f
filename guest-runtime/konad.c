/*
 * konad: the Kona-CXL eviction-policy daemon (the paper's KLib runtime).
 *
 * It switches the device to guest-driven eviction (POLICY_MODE=GUEST) and
 * keeps the cache occupancy between a low and a high watermark: whenever
 * more than HIGH frames are resident it asks a policy for victims and
 * evicts them (EVICT_FRAME) until LOW are left.  The device still evicts
 * on its own when the cache is completely full (forced-evictions), so a
 * slow, stopped or killed konad costs performance, never a hang.  On
 * SIGTERM/SIGINT it restores POLICY_MODE=DEVICE and the old watermarks.
 *
 * Policies are pluggable (KonadPolicy below, --policy NAME):
 *   clock        CLOCK on the device's access bits
 *   clock-clean  CLOCK, but cold clean frames go before cold dirty ones,
 *                so fewer evictions need a write-back (default)
 *   random       random resident frames (a baseline)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "kona-bar.h"

#define PROG "konad"

typedef struct Konad Konad;

/* A frame chosen for eviction and its state when it was chosen. */
typedef struct KonadVictim {
    uint32_t frame;
    uint64_t state;
} KonadVictim;

/*
 * An eviction policy.  pick() fills @out with up to @want victims and
 * returns how many; it reads frame states with konad_read_window() and may
 * clear access bits with konad_clear_accessed().  The daemon re-checks each
 * victim just before evicting it, so a stale choice is skipped, not harmful.
 */
typedef struct KonadPolicy {
    const char *name;
    const char *desc;
    int (*init)(Konad *d);
    unsigned (*pick)(Konad *d, KonadVictim *out, unsigned want);
    void (*fini)(Konad *d);
} KonadPolicy;

typedef struct KonadTotals {
    uint64_t passes;            /* passes that had to evict */
    uint64_t evicted;
    uint64_t evicted_clean;
    uint64_t evicted_dirty;
    uint64_t dirty_lines;       /* dirty lines of evicted frames */
    uint64_t skipped;           /* victims that changed before eviction */
    uint64_t scanned;           /* frame states read */
    uint64_t errors;            /* failed commands */
} KonadTotals;

struct Konad {
    KonaBar bar;
    const KonadPolicy *policy;
    void *policy_state;
    uint32_t nframes;
    uint32_t low, high;
    uint32_t clock_hand;
    uint64_t rng;
    KonadTotals tot;
    uint64_t forced_at_start;
    /* what to restore on exit */
    uint32_t saved_mode;
    uint64_t saved_wm;
};

/* ------------------------------------------------------------ options */

static struct {
    const char *policy;
    const char *low, *high;
    unsigned interval_ms;
    unsigned batch;
    int verbose;
    const char *log_path;
    const char *pidfile;
    const char *device;
    bool once;
    bool no_rt;
} opt = {
    .policy = "clock-clean",
    .low = "80%",
    .high = "90%",
    .interval_ms = 10,
};

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t report_requested;
static FILE *log_file;
static struct timespec t_start;

/* ------------------------------------------------------------ logging */

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t_start.tv_sec) + (t.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* Log levels: errors and warnings even with -q, then normal, -v, -vv. */
#define LOG_ERR (-1)

/* Log at @level (LOG_ERR, 0: default, 1: -v, 2: -vv). */
static void __attribute__((format(printf, 2, 3)))
logmsg(int level, const char *fmt, ...)
{
    va_list ap;

    if (level > opt.verbose) {
        return;
    }
    fprintf(log_file, PROG "[%d] %9.3f: ", (int)getpid(), now_s());
    va_start(ap, fmt);
    vfprintf(log_file, fmt, ap);
    va_end(ap);
    fputc('\n', log_file);
    fflush(log_file);
}

/* ------------------------------------------------- helpers for policies */

/* Read the states of frames [first, first + n) (n <= window); returns n. */
static unsigned konad_read_window(Konad *d, uint32_t first, unsigned n,
                                  uint64_t *states)
{
    if (n > KONA_FRAME_WINDOW) {
        n = KONA_FRAME_WINDOW;
    }
    if (n > d->nframes - first) {
        n = d->nframes - first;
    }
    kona_bar_lock(&d->bar);
    kona_bar_read_frames_locked(&d->bar, first, n, states);
    kona_bar_unlock(&d->bar);
    d->tot.scanned += n;
    return n;
}

static void konad_clear_accessed(Konad *d, uint32_t first, uint32_t n)
{
    if (n && kona_bar_cmd(&d->bar, KONA_CMD_CLEAR_ACCESSED, first, n,
                          NULL) != KONA_CMD_STATUS_OK) {
        d->tot.errors++;
    }
}

static bool frame_cold(uint64_t v)
{
    return (v & KONA_FRAME_RESIDENT) && !(v & KONA_FRAME_ACCESSED);
}

/* xorshift64: the random policy does not need more. */
static uint64_t konad_rand(Konad *d)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return d->rng;
}

/* --------------------------------------------------------------- CLOCK */

/*
 * Which cold frames a sweep takes: all of them (CLOCK), or only clean ones
 * while the dirty ones are remembered as a fallback (clock-clean).
 */
typedef struct Sweep {
    KonadVictim *out;
    unsigned want, n;
    bool clean_only;
    KonadVictim *dirty;         /* clean_only: cold dirty frames seen */
    unsigned dirty_n, dirty_max;
} Sweep;

static bool sweep_take(Sweep *s, uint32_t frame, uint64_t v)
{
    if (!frame_cold(v)) {
        return false;
    }
    if (s->clean_only && KONA_FRAME_DIRTY(v)) {
        if (s->dirty_n < s->dirty_max) {
            s->dirty[s->dirty_n++] = (KonadVictim){ frame, v };
        }
        return false;
    }
    s->out[s->n++] = (KonadVictim){ frame, v };
    return true;
}

/*
 * Move the clock hand over up to @budget frames, a window at a time.  A
 * frame whose access bit is set gets a second chance: the bits of the part
 * of the window the hand passed are cleared after it was read (one command
 * per window instead of one per frame; an access between the read and the
 * clear is lost, which only makes that frame look colder once).
 */
static void clock_sweep(Konad *d, Sweep *s, uint32_t budget)
{
    uint64_t states[KONA_FRAME_WINDOW];

    while (s->n < s->want && budget > 0) {
        uint32_t first = d->clock_hand;
        unsigned n = konad_read_window(d, first, budget, states);
        unsigned i;

        for (i = 0; i < n && s->n < s->want; i++) {
            sweep_take(s, first + i, states[i]);
        }
        /* i frames passed: clear their bits, move the hand past them. */
        konad_clear_accessed(d, first, i);
        d->clock_hand = first + i >= d->nframes ? 0 : first + i;
        budget -= i;
    }
}

static unsigned clock_pick(Konad *d, KonadVictim *out, unsigned want)
{
    Sweep s = { .out = out, .want = want };

    /* Two turns: the first clears every access bit it passes. */
    clock_sweep(d, &s, 2 * d->nframes);
    return s.n;
}

/*
 * Prefer clean: one turn of the hand takes only cold clean frames, which
 * cost no write-back; if they are not enough, the cold dirty frames seen on
 * the way, then whatever a plain CLOCK turn finds.
 */
static unsigned clock_clean_pick(Konad *d, KonadVictim *out, unsigned want)
{
    KonadVictim *dirty = d->policy_state;
    Sweep s = { .out = out, .want = want, .clean_only = true,
                .dirty = dirty, .dirty_max = d->nframes };
    unsigned i;

    clock_sweep(d, &s, d->nframes);
    for (i = 0; i < s.dirty_n && s.n < want; i++) {
        out[s.n++] = dirty[i];
    }
    if (s.n < want) {
        s.clean_only = false;
        clock_sweep(d, &s, 2 * d->nframes);
    }
    return s.n;
}

static int clock_clean_init(Konad *d)
{
    d->policy_state = calloc(d->nframes, sizeof(KonadVictim));
    return d->policy_state ? 0 : -ENOMEM;
}

static void free_state(Konad *d)
{
    free(d->policy_state);
    d->policy_state = NULL;
}

/* -------------------------------------------------------------- random */

static unsigned random_pick(Konad *d, KonadVictim *out, unsigned want)
{
    uint64_t st;
    unsigned n = 0, tries;

    for (tries = 0; n < want && tries < 8 * want + 64; tries++) {
        uint32_t f = konad_rand(d) % d->nframes;

        konad_read_window(d, f, 1, &st);
        if (st & KONA_FRAME_RESIDENT) {
            out[n++] = (KonadVictim){ f, st };
        }
    }
    return n;
}

static const KonadPolicy policies[] = {
    { "clock-clean", "CLOCK on access bits, cold clean frames before "
      "cold dirty ones", clock_clean_init, clock_clean_pick, free_state },
    { "clock", "CLOCK on access bits (second chance)", NULL, clock_pick,
      NULL },
    { "random", "random resident frames (baseline)", NULL, random_pick,
      NULL },
};

static const KonadPolicy *find_policy(const char *name)
{
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        if (strcmp(policies[i].name, name) == 0) {
            return &policies[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ eviction */

/*
 * Evict one victim if it still holds the block it held when chosen and was
 * not touched since (if it was cold then).  Returns 1 evicted, 0 skipped,
 * -1 on a device error.
 */
static int konad_evict(Konad *d, const KonadVictim *v)
{
    uint64_t now, result = 0;
    uint32_t st;

    kona_bar_lock(&d->bar);
    kona_bar_read_frames_locked(&d->bar, v->frame, 1, &now);
    if (!(now & KONA_FRAME_RESIDENT) ||
        KONA_FRAME_BLOCK(now) != KONA_FRAME_BLOCK(v->state) ||
        ((now & KONA_FRAME_ACCESSED) && !(v->state & KONA_FRAME_ACCESSED))) {
        kona_bar_unlock(&d->bar);
        logmsg(2, "frame %u: block %" PRIu64 " changed or touched, skipped",
               v->frame, (uint64_t)KONA_FRAME_BLOCK(v->state));
        d->tot.skipped++;
        return 0;
    }
    st = kona_bar_cmd_locked(&d->bar, KONA_CMD_EVICT_FRAME, v->frame, 0,
                             &result);
    kona_bar_unlock(&d->bar);
    if (st != KONA_CMD_STATUS_OK) {
        logmsg(LOG_ERR, "warning: EVICT_FRAME %u: %s", v->frame,
               kona_cmd_status_str(st));
        d->tot.errors++;
        return -1;
    }
    if (!result) {
        d->tot.skipped++;
        return 0;
    }
    logmsg(2, "frame %u: evicted block %" PRIu64 " (%u dirty lines)",
           v->frame, (uint64_t)KONA_FRAME_BLOCK(now),
           (unsigned)KONA_FRAME_DIRTY(now));
    d->tot.evicted++;
    if (KONA_FRAME_DIRTY(now)) {
        d->tot.evicted_dirty++;
        d->tot.dirty_lines += KONA_FRAME_DIRTY(now);
    } else {
        d->tot.evicted_clean++;
    }
    return 1;
}

/* One pass: if above HIGH, evict down to LOW.  Returns frames evicted. */
static unsigned konad_pass(Konad *d, KonadVictim *victims)
{
    uint32_t resident = kona_rd32(&d->bar, KONA_REG_RESIDENT);
    KonadTotals before = d->tot;
    double t0 = now_s();
    unsigned want, n, i, done = 0;
    uint64_t forced;

    if (resident <= d->high) {
        return 0;
    }
    want = resident - d->low;
    if (opt.batch && want > opt.batch) {
        want = opt.batch;
    }
    n = d->policy->pick(d, victims, want);
    for (i = 0; i < n && !stop_signal; i++) {
        if (konad_evict(d, &victims[i]) > 0) {
            done++;
        }
    }
    d->tot.passes++;
    forced = kona_stat(&d->bar, KONA_DEV_STAT_FORCED_EVICTIONS);
    logmsg(1, "pass %" PRIu64 ": resident %u > high %u: evicted %u of %u "
           "wanted (%" PRIu64 " clean, %" PRIu64 " dirty, %" PRIu64
           " lines), %" PRIu64 " skipped, %" PRIu64 " scanned, "
           "resident now %u, device forced %" PRIu64 " so far, %.1f ms",
           d->tot.passes, resident, d->high, done, want,
           d->tot.evicted_clean - before.evicted_clean,
           d->tot.evicted_dirty - before.evicted_dirty,
           d->tot.dirty_lines - before.dirty_lines,
           d->tot.skipped - before.skipped, d->tot.scanned - before.scanned,
           kona_rd32(&d->bar, KONA_REG_RESIDENT),
           forced - d->forced_at_start, (now_s() - t0) * 1e3);
    return done;
}

static void konad_report(Konad *d, const char *why)
{
    logmsg(0, "%s: %" PRIu64 " passes, %" PRIu64 " evicted (%" PRIu64
           " clean, %" PRIu64 " dirty, %" PRIu64 " dirty lines), %" PRIu64
           " skipped, %" PRIu64 " errors; device: guest-evictions %" PRIu64
           " forced-evictions %" PRIu64 " (+%" PRIu64 " while konad ran)",
           why, d->tot.passes, d->tot.evicted, d->tot.evicted_clean,
           d->tot.evicted_dirty, d->tot.dirty_lines, d->tot.skipped,
           d->tot.errors, kona_stat(&d->bar, KONA_DEV_STAT_GUEST_EVICTIONS),
           kona_stat(&d->bar, KONA_DEV_STAT_FORCED_EVICTIONS),
           kona_stat(&d->bar, KONA_DEV_STAT_FORCED_EVICTIONS) -
           d->forced_at_start);
}

/* ----------------------------------------------------------- set-up */

/*
 * Run ahead of the workload: konad sleeps almost all the time, and when it
 * wakes the cache is filling; at normal priority a CPU-bound workload on
 * the same CPU keeps it waiting for its time slice while the device falls
 * back to forced evictions.  The kernel's RT throttling still leaves the
 * rest of the system 5% of each second should a pass spin.
 */
static const char *raise_priority(void)
{
    struct sched_param sp = { .sched_priority = 10 };

    if (opt.no_rt) {
        return "normal";
    }
    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0) {
        return "SCHED_FIFO 10";
    }
    if (setpriority(PRIO_PROCESS, 0, -10) == 0) {
        return "nice -10";
    }
    return "normal (could not raise it)";
}

static int konad_setup(Konad *d)
{
    KonaBar *b = &d->bar;
    uint32_t status = kona_rd32(b, KONA_REG_STATUS);

    if (!(status & KONA_STATUS_REMOTE)) {
        logmsg(LOG_ERR, "error: %s has no memory node (local media): "
               "there is nothing to evict to", b->bdf);
        return -1;
    }
    d->nframes = kona_rd32(b, KONA_REG_NFRAMES);
    if (!kona_parse_wm(opt.low, d->nframes, &d->low) ||
        !kona_parse_wm(opt.high, d->nframes, &d->high) || d->low > d->high) {
        logmsg(LOG_ERR, "error: watermarks --low %s --high %s: need "
               "LOW <= HIGH <= %u frames (numbers or percentages)", opt.low,
               opt.high, d->nframes);
        return -1;
    }
    /* The device evicts by itself once the cache is full: stay below. */
    if (d->high >= d->nframes) {
        d->high = d->nframes - 1;
    }
    if (d->low > d->high) {
        d->low = d->high;
    }
    d->saved_mode = kona_rd32(b, KONA_REG_POLICY_MODE);
    d->saved_wm = kona_rd64(b, KONA_REG_LOW_WM);
    if (d->saved_mode == KONA_MODE_GUEST) {
        /*
         * Another runtime set guest mode and is gone (killed) or still
         * running: its watermarks are not the ones to restore.  Restore
         * the device's reset state, both watermarks at NFRAMES.
         */
        logmsg(0, "guest mode was already on (a previous konad killed?); "
               "on exit the device's defaults are restored");
        d->saved_wm = d->nframes | (uint64_t)d->nframes << 32;
    }
    /* One 64-bit store: the device only takes a consistent pair. */
    kona_wr64(b, KONA_REG_LOW_WM, d->low | (uint64_t)d->high << 32);
    if (kona_rd32(b, KONA_REG_LOW_WM) != d->low ||
        kona_rd32(b, KONA_REG_HIGH_WM) != d->high) {
        logmsg(LOG_ERR, "error: the device refused watermarks %u/%u", d->low,
               d->high);
        return -1;
    }
    if (d->policy->init && d->policy->init(d) < 0) {
        logmsg(LOG_ERR, "error: policy %s: out of memory", d->policy->name);
        return -1;
    }
    d->forced_at_start = kona_stat(b, KONA_DEV_STAT_FORCED_EVICTIONS);
    kona_wr32(b, KONA_REG_POLICY_MODE, KONA_MODE_GUEST);
    logmsg(0, "managing %s: %u frames of %u bytes, watermarks %u/%u, "
           "policy %s, poll every %u ms, priority %s; POLICY_MODE=guest "
           "(was %s)", b->bdf, d->nframes,
           kona_rd32(b, KONA_REG_BLOCK_SIZE), d->low, d->high,
           d->policy->name, opt.interval_ms, raise_priority(),
           d->saved_mode == KONA_MODE_GUEST ? "guest" : "device");
    return 0;
}

static void konad_restore(Konad *d)
{
    kona_wr32(&d->bar, KONA_REG_POLICY_MODE, KONA_MODE_DEVICE);
    kona_wr64(&d->bar, KONA_REG_LOW_WM, d->saved_wm);
    if (d->policy->fini) {
        d->policy->fini(d);
    }
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        report_requested = 1;
    } else {
        stop_signal = sig;
    }
}

static void install_signals(void)
{
    struct sigaction sa = { .sa_handler = on_signal };
    int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };

    /* No SA_RESTART: a signal ends the poll sleep at once. */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);   /* a signal cuts it short: that is fine */
}

static int konad_loop(Konad *d)
{
    KonadVictim *victims = calloc(d->nframes, sizeof(*victims));

    if (!victims) {
        logmsg(LOG_ERR, "error: out of memory");
        return -1;
    }
    while (!stop_signal) {
        unsigned done = konad_pass(d, victims);

        if (report_requested) {
            report_requested = 0;
            konad_report(d, "report (SIGUSR1)");
        }
        if (opt.once) {
            break;
        }
        /* Still above HIGH after evicting: go again without sleeping. */
        if (done && kona_rd32(&d->bar, KONA_REG_RESIDENT) > d->high) {
            continue;
        }
        /*
         * While the workload is filling the cache, look again sooner: a
         * sequential read stream under TCG fetches a few blocks per ms,
         * enough to cross the headroom above HIGH within one interval.
         */
        sleep_ms(done ? (opt.interval_ms + 3) / 4 : opt.interval_ms);
    }
    free(victims);
    return 0;
}

/* ------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
"Usage: " PROG " [OPTIONS]\n"
"Kona-CXL eviction-policy daemon: sets the kona-cxl device to guest-driven\n"
"eviction and keeps its cache occupancy between the watermarks by evicting\n"
"the frames a policy picks.  SIGTERM/SIGINT restore device-driven eviction;\n"
"SIGUSR1 logs the totals.\n"
"\n"
"  -p, --policy NAME     eviction policy (default %s); --list-policies\n"
"  -l, --low WM          evict down to this many frames (default %s)\n"
"  -H, --high WM         start evicting above this many (default %s)\n"
"                        WM: frames, or N%% of the cache's frames\n"
"  -i, --interval MS     poll the occupancy every MS ms (default %u)\n"
"  -b, --batch N         evict at most N frames per pass (default: all)\n"
"  -1, --once            one pass, then restore and exit\n"
"  -d, --device BDF      the PCI device (default: the first kona-cxl)\n"
"      --no-rt           run at normal priority (default: SCHED_FIFO, so a\n"
"                        busy workload cannot delay the evictions)\n"
"  -o, --log FILE        log to FILE (appended) instead of stderr\n"
"  -P, --pidfile FILE    write the pid to FILE\n"
"  -v, --verbose         log every pass (-vv: every eviction)\n"
"  -q, --quiet           log errors and warnings only\n"
"      --list-policies   the policies and what they do\n"
"  -h, --help            this text\n",
            opt.policy, opt.low, opt.high, opt.interval_ms);
}

static void list_policies(void)
{
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        printf("%-12s %s\n", policies[i].name, policies[i].desc);
    }
}

/* 0 to go on, otherwise exit status + 1. */
static int parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "policy", required_argument, NULL, 'p' },
        { "low", required_argument, NULL, 'l' },
        { "high", required_argument, NULL, 'H' },
        { "interval", required_argument, NULL, 'i' },
        { "batch", required_argument, NULL, 'b' },
        { "once", no_argument, NULL, '1' },
        { "device", required_argument, NULL, 'd' },
        { "log", required_argument, NULL, 'o' },
        { "pidfile", required_argument, NULL, 'P' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "list-policies", no_argument, NULL, 'L' },
        { "no-rt", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t v;
    int c;

    while ((c = getopt_long(argc, argv, "p:l:H:i:b:1d:o:P:vqh", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'p':
            opt.policy = optarg;
            break;
        case 'l':
            opt.low = optarg;
            break;
        case 'H':
            opt.high = optarg;
            break;
        case 'i':
        case 'b':
            if (!kona_parse_u64(optarg, &v) || v > 1000000) {
                fprintf(stderr, PROG ": -%c %s: not a number\n", c, optarg);
                return 3;
            }
            *(c == 'i' ? &opt.interval_ms : &opt.batch) = v;
            break;
        case '1':
            opt.once = true;
            break;
        case 'd':
            opt.device = optarg;
            break;
        case 'o':
            opt.log_path = optarg;
            break;
        case 'P':
            opt.pidfile = optarg;
            break;
        case 'v':
            opt.verbose++;
            break;
        case 'q':
            opt.verbose = -1;
            break;
        case 'L':
            list_policies();
            return 1;
        case 'R':
            opt.no_rt = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 3;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return 3;
    }
    return 0;
}

static int open_log(void)
{
    log_file = stderr;
    if (opt.log_path) {
        log_file = fopen(opt.log_path, "a");
        if (!log_file) {
            log_file = stderr;
            fprintf(stderr, PROG ": cannot open log %s: %s\n", opt.log_path,
                    strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void write_pidfile(void)
{
    FILE *f;

    if (!opt.pidfile) {
        return;
    }
    f = fopen(opt.pidfile, "w");
    if (!f) {
        logmsg(LOG_ERR, "warning: cannot write %s: %s", opt.pidfile,
               strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

int main(int argc, char **argv)
{
    Konad d = { .bar = { .fd = -1 } };
    char err[KONA_ERR_LEN];
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t_start);
    rc = parse_options(argc, argv);
    if (rc) {
        return rc - 1;
    }
    if (open_log() < 0) {
        return 1;
    }
    d.policy = find_policy(opt.policy);
    if (!d.policy) {
        fprintf(stderr, PROG ": unknown policy '%s'; known:\n", opt.policy);
        list_policies();
        return 2;
    }
    if (kona_bar_open(&d.bar, opt.device, err) < 0) {
        logmsg(LOG_ERR, "error: %s", err);
        return 1;
    }
    d.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    install_signals();
    if (konad_setup(&d) < 0) {
        kona_bar_close(&d.bar);
        return 1;
    }
    write_pidfile();
    rc = konad_loop(&d);
    konad_restore(&d);
    konad_report(&d, stop_signal ? (stop_signal == SIGTERM ? "exit (SIGTERM)"
                                    : "exit (signal)") : "exit");
    logmsg(0, "POLICY_MODE=device restored");
    if (opt.pidfile) {
        unlink(opt.pidfile);
    }
    kona_bar_close(&d.bar);
    return rc < 0 ? 1 : 0;
}

/*
 * konactl: look at and command a kona-cxl device from inside the guest,
 * through its control registers (PCI BAR 5, hw-kona/kona-regs.h).
 *
 * The statistics report has the same names and layout as the device's
 * QMP "stats-text" on the host (scripts/lib/qmp.py SOCK text), so the two
 * views can be compared line by line.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kona-bar.h"

#define PROG "konactl"

static const char usage_text[] =
"Usage: " PROG " [-d BDF] [COMMAND [ARGS]]\n"
"Look at and command the kona-cxl device (control registers in PCI BAR 5).\n"
"\n"
"Commands (ADDR and LEN are device media offsets: 0 .. media size; for the\n"
"1-way region kona-online makes, host physical = region resource + ADDR;\n"
"numbers take 0x and K/M/G):\n"
"  stats [--json]        counters, amplification and the histogram of dirty\n"
"                        lines per 4 KiB page at write-back (default command)\n"
"  info                  identity, geometry, occupancy, watermarks, mode\n"
"  list                  the kona-cxl devices of this guest\n"
"  frames [FIRST [N]] [--all]\n"
"                        cache frames: block, dirty lines, resident, accessed\n"
"                        (resident ones unless --all)\n"
"  dirty ADDR            dirty-line mask of the 4 KiB group holding ADDR\n"
"  count-dirty ADDR LEN  dirty lines in a range\n"
"  clean ADDR LEN        write back a range's dirty lines, keep it cached\n"
"  evict ADDR LEN        write back and drop a range's cached blocks\n"
"  evict-frame FRAME     write back and drop one frame's block\n"
"  clear-accessed [FIRST N]  clear access bits (default: every frame)\n"
"  flush                 write back every dirty line, flush the memory nodes\n"
"  reset-stats           zero the counters and the histogram\n"
"  mode [device|guest]   show or set who decides evictions\n"
"  watermarks [LOW HIGH] show or set the watermarks (frames, or N% of them)\n"
"  windows [MS] [--json] per window of guest time: distinct 64 B lines, 4 KiB\n"
"                        and 2 MiB pages written (the paper's amplification\n"
"                        tracker); MS sets the window length and starts over\n"
"                        (0: off)\n"
"  close-window          end the current window now, so that a run's tail\n"
"                        is counted (tracking must be on)\n"
"\n"
"Options:\n"
"  -d, --device BDF      the PCI device (default: the first kona-cxl)\n"
"  -h, --help            this text\n";

typedef struct Cmd {
    const char *name;
    int min_args, max_args;
    int (*fn)(KonaBar *b, int argc, char **argv);
} Cmd;

/* An error message on stderr; returns exit status 1. */
static int __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static bool parse_arg(const char *what, const char *s, uint64_t *val)
{
    if (!kona_parse_u64(s, val)) {
        fprintf(stderr, PROG ": %s: '%s' is not a number\n", what, s);
        return false;
    }
    return true;
}

/* Has the argument list a flag like --json? Removes it. */
static bool take_flag(int *argc, char **argv, const char *flag)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            memmove(&argv[i], &argv[i + 1], (*argc - i) * sizeof(*argv));
            (*argc)--;
            return true;
        }
    }
    return false;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / b : 0.0;
}

static const char *mode_name(uint32_t mode)
{
    return mode == KONA_MODE_GUEST ? "guest" :
           mode == KONA_MODE_DEVICE ? "device" : "?";
}

static const char *policy_name(uint32_t p)
{
    return p == KONA_POLICY_ID_CLOCK ? "clock" :
           p == KONA_POLICY_ID_FIFO ? "fifo" :
           p == KONA_POLICY_ID_RANDOM ? "random" : "?";
}

static void print_header(KonaBar *b)
{
    printf("kona-cxl %s: size %" PRIu64 " cache %" PRIu64 " block %u "
           "policy %s mode %s frames %u resident %u watermarks %u/%u\n",
           b->bdf, kona_rd64(b, KONA_REG_MEDIA_SIZE),
           kona_rd64(b, KONA_REG_CACHE_SIZE),
           kona_rd32(b, KONA_REG_BLOCK_SIZE),
           policy_name(kona_rd32(b, KONA_REG_POLICY)),
           mode_name(kona_rd32(b, KONA_REG_POLICY_MODE)),
           kona_rd32(b, KONA_REG_NFRAMES), kona_rd32(b, KONA_REG_RESIDENT),
           kona_rd32(b, KONA_REG_LOW_WM), kona_rd32(b, KONA_REG_HIGH_WM));
}

/*
 * One snapshot of every counter and the histogram.  Read without the lock:
 * each register is a single load; the set is not atomic, as on the host.
 */
typedef struct Snapshot {
    uint64_t stat[KONA_DEV_STAT__COUNT];
    uint64_t hist[KONA_HIST_BUCKETS];
} Snapshot;

static void snapshot(KonaBar *b, Snapshot *s)
{
    for (unsigned i = 0; i < KONA_DEV_STAT__COUNT; i++) {
        s->stat[i] = kona_stat(b, i);
    }
    for (unsigned i = 0; i < KONA_HIST_BUCKETS; i++) {
        s->hist[i] = kona_rd64(b, KONA_REG_HIST + 8 * i);
    }
}

static void print_stats_text(KonaBar *b, const Snapshot *s)
{
    uint64_t wb = s->stat[KONA_DEV_STAT_WRITEBACK_BYTES];

    print_header(b);
    for (unsigned i = 0; i < KONA_DEV_STAT__COUNT; i++) {
        printf("  %-26s %" PRIu64 "\n", kona_bar_stat_names[i], s->stat[i]);
    }
    /* Bytes a page-granular runtime would write back per byte we do. */
    printf("  %-26s %.3f\n", "page-amplification",
           ratio(s->stat[KONA_DEV_STAT_PAGE_WB_BYTES], wb));
    printf("  %-26s %.3f\n", "hugepage-amplification",
           ratio(s->stat[KONA_DEV_STAT_HUGE_WB_BYTES], wb));
    printf("  dirty lines per 4 KiB page at write-back (lines: pages):");
    for (unsigned i = 1; i < KONA_HIST_BUCKETS; i++) {
        if (s->hist[i]) {
            printf(" %u:%" PRIu64, i, s->hist[i]);
        }
    }
    printf("\n");
}

static void print_stats_json(KonaBar *b, const Snapshot *s)
{
    uint64_t wb = s->stat[KONA_DEV_STAT_WRITEBACK_BYTES];

    printf("{\"device\": \"%s\"", b->bdf);
    for (unsigned i = 0; i < KONA_DEV_STAT__COUNT; i++) {
        printf(", \"%s\": %" PRIu64, kona_bar_stat_names[i], s->stat[i]);
    }
    printf(", \"page-amplification\": %.3f, \"hugepage-amplification\": %.3f",
           ratio(s->stat[KONA_DEV_STAT_PAGE_WB_BYTES], wb),
           ratio(s->stat[KONA_DEV_STAT_HUGE_WB_BYTES], wb));
    printf(", \"dirty-lines-per-page\": [");
    for (unsigned i = 0; i < KONA_HIST_BUCKETS; i++) {
        printf("%s%" PRIu64, i ? ", " : "", s->hist[i]);
    }
    printf("]}\n");
}

static int cmd_stats(KonaBar *b, int argc, char **argv)
{
    bool json = take_flag(&argc, argv, "--json");
    Snapshot s;

    if (argc) {
        return fail("stats: unexpected argument '%s'", argv[0]);
    }
    snapshot(b, &s);
    if (json) {
        print_stats_json(b, &s);
    } else {
        print_stats_text(b, &s);
    }
    return 0;
}

static int cmd_info(KonaBar *b, int argc, char **argv)
{
    uint32_t st = kona_rd32(b, KONA_REG_STATUS);

    printf("device        %s\n", b->bdf);
    printf("version       %u\n", kona_rd32(b, KONA_REG_VERSION));
    printf("status        %#x%s%s%s%s\n", st,
           st & KONA_STATUS_MEDIA_READY ? " media-ready" : "",
           st & KONA_STATUS_REMOTE ? " remote" : " local-only",
           st & KONA_STATUS_ABOVE_HIGH ? " above-high-watermark" : "",
           st & KONA_STATUS_REMOTE_ERR ? " remote-error" : "");
    printf("media-size    %" PRIu64 "\n", kona_rd64(b, KONA_REG_MEDIA_SIZE));
    printf("cache-size    %" PRIu64 "\n", kona_rd64(b, KONA_REG_CACHE_SIZE));
    printf("line-size     %u\n", kona_rd32(b, KONA_REG_LINE_SIZE));
    printf("block-size    %u\n", kona_rd32(b, KONA_REG_BLOCK_SIZE));
    printf("frames        %u\n", kona_rd32(b, KONA_REG_NFRAMES));
    printf("resident      %u\n", kona_rd32(b, KONA_REG_RESIDENT));
    printf("low-wm        %u\n", kona_rd32(b, KONA_REG_LOW_WM));
    printf("high-wm       %u\n", kona_rd32(b, KONA_REG_HIGH_WM));
    printf("mode          %s\n",
           mode_name(kona_rd32(b, KONA_REG_POLICY_MODE)));
    printf("policy        %s\n", policy_name(kona_rd32(b, KONA_REG_POLICY)));
    return 0;
}

static int cmd_list(KonaBar *unused, int argc, char **argv)
{
    char bdfs[16][KONA_BDF_LEN], err[KONA_ERR_LEN];
    int n = kona_bar_list(bdfs, 16, err);

    if (n < 0) {
        return fail("%s", err);
    }
    for (int i = 0; i < n && i < 16; i++) {
        printf("%s\n", bdfs[i]);
    }
    return n ? 0 : 1;
}

static int cmd_frames(KonaBar *b, int argc, char **argv)
{
    bool all = take_flag(&argc, argv, "--all");
    uint32_t nframes = kona_rd32(b, KONA_REG_NFRAMES);
    uint64_t first = 0, n = nframes, shown = 0;
    uint64_t states[KONA_FRAME_WINDOW];

    if ((argc > 0 && !parse_arg("FIRST", argv[0], &first)) ||
        (argc > 1 && !parse_arg("N", argv[1], &n))) {
        return 2;
    }
    if (argc > 2) {
        return fail("frames: unexpected argument '%s'", argv[2]);
    }
    if (first > nframes) {
        first = nframes;
    }
    n = n < nframes - first ? n : nframes - first;
    printf("%8s %12s %6s %s\n", "frame", "block", "dirty", "flags");
    for (uint64_t w = first; w < first + n; w += KONA_FRAME_WINDOW) {
        unsigned cnt = first + n - w < KONA_FRAME_WINDOW ?
                       first + n - w : KONA_FRAME_WINDOW;

        kona_bar_lock(b);
        kona_bar_read_frames_locked(b, w, cnt, states);
        kona_bar_unlock(b);
        for (unsigned i = 0; i < cnt; i++) {
            uint64_t v = states[i];

            if (!(v & KONA_FRAME_RESIDENT) && !all) {
                continue;
            }
            printf("%8" PRIu64 " %12" PRIu64 " %6u %s%s\n", w + i,
                   (uint64_t)KONA_FRAME_BLOCK(v),
                   (unsigned)KONA_FRAME_DIRTY(v),
                   v & KONA_FRAME_RESIDENT ? "resident" : "free",
                   v & KONA_FRAME_ACCESSED ? ",accessed" : "");
            shown++;
        }
    }
    printf("# %" PRIu64 " of frames %" PRIu64 "..%" PRIu64 " shown\n", shown,
           first, first + n);
    return 0;
}

static int cmd_dirty(KonaBar *b, int argc, char **argv)
{
    uint64_t addr, mask;

    if (!parse_arg("ADDR", argv[0], &addr)) {
        return 2;
    }
    if (addr >= kona_rd64(b, KONA_REG_MEDIA_SIZE)) {
        return fail("dirty: ADDR %s is past the media", argv[0]);
    }
    kona_bar_lock(b);
    kona_wr64(b, KONA_REG_DIRTY_SEL, addr / 4096);
    mask = kona_rd64(b, KONA_REG_DIRTY_MASK);
    kona_bar_unlock(b);
    printf("group %#" PRIx64 " (media %#" PRIx64 "..%#" PRIx64 ") "
           "dirty-mask 0x%016" PRIx64 " lines %d\n", addr / 4096,
           addr & ~(uint64_t)4095, (addr & ~(uint64_t)4095) + 4096, mask,
           __builtin_popcountll(mask));
    return 0;
}

/* A command with a result: print "NAME: RESULT WHAT" or the error. */
static int run_cmd(KonaBar *b, const char *name, uint32_t cmd, uint64_t a0,
                   uint64_t a1, const char *what)
{
    uint64_t result = 0;
    uint32_t st = kona_bar_cmd(b, cmd, a0, a1, &result);

    if (st != KONA_CMD_STATUS_OK) {
        fprintf(stderr, PROG ": %s: device says: %s\n", name,
                kona_cmd_status_str(st));
        return 1;
    }
    if (what) {
        printf("%s: %" PRIu64 " %s\n", name, result, what);
    }
    return 0;
}

static int range_cmd(KonaBar *b, int argc, char **argv, const char *name,
                     uint32_t cmd, const char *what)
{
    uint64_t addr, len;

    if (!parse_arg("ADDR", argv[0], &addr) ||
        !parse_arg("LEN", argv[1], &len)) {
        return 2;
    }
    return run_cmd(b, name, cmd, addr, len, what);
}

static int cmd_count_dirty(KonaBar *b, int argc, char **argv)
{
    return range_cmd(b, argc, argv, "count-dirty", KONA_CMD_COUNT_DIRTY,
                     "dirty lines");
}

static int cmd_clean(KonaBar *b, int argc, char **argv)
{
    return range_cmd(b, argc, argv, "clean", KONA_CMD_CLEAN,
                     "lines written back");
}

static int cmd_evict(KonaBar *b, int argc, char **argv)
{
    return range_cmd(b, argc, argv, "evict", KONA_CMD_EVICT,
                     "blocks evicted");
}

static int cmd_evict_frame(KonaBar *b, int argc, char **argv)
{
    uint64_t f;

    if (!parse_arg("FRAME", argv[0], &f)) {
        return 2;
    }
    return run_cmd(b, "evict-frame", KONA_CMD_EVICT_FRAME, f, 0,
                   "blocks evicted");
}

static int cmd_clear_accessed(KonaBar *b, int argc, char **argv)
{
    uint64_t first = 0, n = kona_rd32(b, KONA_REG_NFRAMES);

    if (argc == 1) {
        fprintf(stderr,
                PROG ": clear-accessed: give FIRST and N, or nothing\n");
        return 2;
    }
    if (argc == 2 && (!parse_arg("FIRST", argv[0], &first) ||
                      !parse_arg("N", argv[1], &n))) {
        return 2;
    }
    return run_cmd(b, "clear-accessed", KONA_CMD_CLEAR_ACCESSED, first, n,
                   "frames had their access bit set");
}

static int cmd_close_window(KonaBar *b, int argc, char **argv)
{
    return run_cmd(b, "close-window", KONA_CMD_CLOSE_WINDOW, 0, 0,
                   "windows closed");
}

static int cmd_flush(KonaBar *b, int argc, char **argv)
{
    return run_cmd(b, "flush", KONA_CMD_FLUSH, 0, 0, "lines written back");
}

static int cmd_reset_stats(KonaBar *b, int argc, char **argv)
{
    return run_cmd(b, "reset-stats", KONA_CMD_RESET_STATS, 0, 0, NULL);
}

static int cmd_mode(KonaBar *b, int argc, char **argv)
{
    uint32_t want;

    if (argc == 0) {
        printf("%s\n", mode_name(kona_rd32(b, KONA_REG_POLICY_MODE)));
        return 0;
    }
    if (strcmp(argv[0], "device") == 0) {
        want = KONA_MODE_DEVICE;
    } else if (strcmp(argv[0], "guest") == 0) {
        want = KONA_MODE_GUEST;
    } else {
        return fail("mode: '%s' is neither 'device' nor 'guest'", argv[0]);
    }
    kona_wr32(b, KONA_REG_POLICY_MODE, want);
    if (kona_rd32(b, KONA_REG_POLICY_MODE) != want) {
        return fail("mode: the device did not take mode %s", argv[0]);
    }
    return 0;
}

static int cmd_watermarks(KonaBar *b, int argc, char **argv)
{
    uint32_t nframes = kona_rd32(b, KONA_REG_NFRAMES), low, high;

    if (argc == 1) {
        fprintf(stderr, PROG ": watermarks: give LOW and HIGH, or nothing\n");
        return 2;
    }
    if (argc == 2) {
        if (!kona_parse_wm(argv[0], nframes, &low) ||
            !kona_parse_wm(argv[1], nframes, &high) || low > high) {
            fprintf(stderr, PROG ": watermarks: need LOW <= HIGH <= %u "
                    "frames (or percentages)\n", nframes);
            return 2;
        }
        /* Both at once: the device checks the pair. */
        kona_wr64(b, KONA_REG_LOW_WM, low | (uint64_t)high << 32);
        if (kona_rd32(b, KONA_REG_LOW_WM) != low ||
            kona_rd32(b, KONA_REG_HIGH_WM) != high) {
            fprintf(stderr, PROG ": watermarks: the device refused the pair\n");
            return 1;
        }
    }
    printf("low %u high %u frames %u\n", kona_rd32(b, KONA_REG_LOW_WM),
           kona_rd32(b, KONA_REG_HIGH_WM), nframes);
    return 0;
}

/* Bytes page-granular tracking copies per byte line-granular tracking does. */
static double window_amp(uint64_t units, uint64_t unit_size, uint64_t lines)
{
    return ratio(units * unit_size, lines * KONA_DEV_LINE_SIZE);
}

static int cmd_windows(KonaBar *b, int argc, char **argv)
{
    bool json = take_flag(&argc, argv, "--json");
    uint64_t ms, ns, count, first, sum_lines = 0, sum_pages = 0;

    if (argc == 1) {
        if (!parse_arg("windows", argv[0], &ms)) {
            return 2;
        }
        ns = ms * 1000000;
        if (ms > KONA_WINDOW_NS_MAX / 1000000 ||
            (ns && ns < KONA_WINDOW_NS_MIN)) {
            return fail("windows: %s ms is not 0 or 1 .. %" PRIu64, argv[0],
                        KONA_WINDOW_NS_MAX / 1000000);
        }
        kona_wr64(b, KONA_REG_WINDOW_NS, ns);
        if (kona_rd64(b, KONA_REG_WINDOW_NS) != ns) {
            return fail("windows: the device did not take %s ms (too little "
                        "host memory for the tracker?)", argv[0]);
        }
        return 0;
    }
    kona_bar_lock(b);
    ns = kona_rd64(b, KONA_REG_WINDOW_NS);
    count = kona_rd64(b, KONA_REG_WINDOW_COUNT);
    first = count > KONA_WINDOWS_KEPT ? count - KONA_WINDOWS_KEPT : 0;
    if (json) {
        printf("{\"device\": \"%s\", \"window-ns\": %" PRIu64
               ", \"count\": %" PRIu64 ", \"first\": %" PRIu64
               ", \"windows\": [", b->bdf, ns, count, first);
    } else {
        printf("windows of %.3f s of guest time: %" PRIu64 " closed\n"
               "%8s %10s %8s %6s %8s %8s\n", ns / 1e9, count, "window",
               "lines", "pages", "2M", "amp-4K", "amp-2M");
    }
    for (uint64_t i = first; i < count; i++) {
        uint64_t lines, pages, huge;

        kona_wr64(b, KONA_REG_WINDOW_SEL, i);
        lines = kona_rd64(b, KONA_REG_WINDOW_LINES);
        pages = kona_rd64(b, KONA_REG_WINDOW_PAGES);
        huge = kona_rd64(b, KONA_REG_WINDOW_HUGE);
        sum_lines += lines;
        sum_pages += pages;
        if (json) {
            printf("%s[%" PRIu64 ", %" PRIu64 ", %" PRIu64 "]",
                   i > first ? ", " : "", lines, pages, huge);
        } else {
            printf("%8" PRIu64 " %10" PRIu64 " %8" PRIu64 " %6" PRIu64
                   " %8.2f %8.1f\n", i, lines, pages, huge,
                   window_amp(pages, 4096, lines),
                   window_amp(huge, 2 << 20, lines));
        }
    }
    kona_bar_unlock(b);
    if (json) {
        printf("]}\n");
    } else {
        printf("all: %" PRIu64 " lines, %" PRIu64 " pages: 4 KiB "
               "amplification %.2f\n", sum_lines, sum_pages,
               window_amp(sum_pages, 4096, sum_lines));
    }
    return 0;
}

/* Arguments that are not flags (--json, --all). */
static int count_positional(int argc, char **argv)
{
    int n = 0;

    for (int i = 0; i < argc; i++) {
        n += strncmp(argv[i], "--", 2) != 0;
    }
    return n;
}

static const Cmd commands[] = {
    { "stats", 0, 0, cmd_stats },
    { "info", 0, 0, cmd_info },
    { "list", 0, 0, cmd_list },
    { "frames", 0, 2, cmd_frames },
    { "dirty", 1, 1, cmd_dirty },
    { "count-dirty", 2, 2, cmd_count_dirty },
    { "clean", 2, 2, cmd_clean },
    { "evict", 2, 2, cmd_evict },
    { "evict-frame", 1, 1, cmd_evict_frame },
    { "clear-accessed", 0, 2, cmd_clear_accessed },
    { "flush", 0, 0, cmd_flush },
    { "reset-stats", 0, 0, cmd_reset_stats },
    { "mode", 0, 1, cmd_mode },
    { "watermarks", 0, 2, cmd_watermarks },
    { "windows", 0, 1, cmd_windows },
    { "close-window", 0, 0, cmd_close_window },
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "device", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *bdf = NULL, *name = "stats";
    char err[KONA_ERR_LEN];
    const Cmd *cmd = NULL;
    KonaBar bar;
    int c, rc;

    /* '+': options end at the command, whose own flags (--json) follow. */
    while ((c = getopt_long(argc, argv, "+d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            bdf = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc > 0) {
        name = argv[0];
        argc--;
        argv++;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            cmd = &commands[i];
        }
    }
    if (!cmd) {
        fprintf(stderr, PROG ": unknown command '%s'\n\n%s", name, usage_text);
        return 2;
    }
    if (count_positional(argc, argv) < cmd->min_args ||
        count_positional(argc, argv) > cmd->max_args) {
        fprintf(stderr, PROG ": %s: wrong number of arguments\n\n%s", name,
                usage_text);
        return 2;
    }
    if (cmd->fn == cmd_list) {
        return cmd_list(NULL, argc, argv);
    }
    if (kona_bar_open(&bar, bdf, err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    rc = cmd->fn(&bar, argc, argv);
    kona_bar_close(&bar);
    return rc;
}

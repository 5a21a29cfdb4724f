/*
 * kona-mapreduce: Phoenix-style map-reduce kernels (the Kona paper's
 * linear regression and histogram), their data on one NUMA node.
 *
 *   kona-mapreduce linreg --node N [--mib M]
 *   kona-mapreduce histogram --node N [--mib M]
 *
 * As in Phoenix, the input is split into chunks; each map task reduces its
 * chunk into an intermediate record (the array of them on the node, as
 * Phoenix's intermediate buffers are in the process's memory) and a reduce
 * combines the records.  Single threaded: the map tasks run one after the
 * other.
 *
 * linreg (workload "linreg"): M MiB of int32 (x, y) points on the line
 * y = 2.5 x - 1000 plus uniform noise in [-100, 100]; the per-chunk record
 * holds n, sum x, sum y, sum xx, sum yy, sum xy.  Verified: the fitted
 * slope and intercept are within 1e-3 and 5 of the line's.
 *
 * histogram (workload "histogram"): M MiB of 24-bit RGB pixels; the
 * per-chunk record is 3 x 256 bins.  Verified: each channel counts every
 * pixel once and the bins equal a direct count (64-bit loads, no chunks).
 *
 * Metrics: seconds (map + reduce), throughput (input MB/s, MB = 10^6).
 * Loads and stores to the node (valgrind's lackey) per MiB: linreg 0.5M
 * (0.25M timed), histogram 1.3M (1.05M timed: one load per byte).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "kona-wl.h"

#define LINREG_CHUNK 4096  /* points: 32 KiB */
#define HIST_CHUNK 16384   /* pixels: 48 KiB */
#define LINE_SLOPE 2.5
#define LINE_INTERCEPT (-1000)
#define NOISE 100
#define LINREG_SEED 0x11e4ull
#define HIST_SEED 0x415706ull

static const char usage[] =
    "usage: kona-mapreduce linreg|histogram --node N [--mib M]\n"
    "  linreg     linear regression over M MiB of int32 (x, y) points\n"
    "  histogram  RGB histogram of M MiB of 24-bit pixels\n"
    "  --node N   NUMA node for every array (required)\n"
    "  --mib M    input size, MiB (default 4)\n";

typedef struct Point {
    int32_t x;
    int32_t y;
} Point;

typedef struct LinregSums {
    int64_t n, sx, sy, sxx, syy, sxy;
} LinregSums;

static void linreg_map(const Point *pts, size_t n, LinregSums *out)
{
    int64_t sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t x = pts[i].x, y = pts[i].y;

        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    out->n = n;
    out->sx = sx;
    out->sy = sy;
    out->sxx = sxx;
    out->syy = syy;
    out->sxy = sxy;
}

static void run_linreg(int node, long mib)
{
    size_t n = ((size_t)mib << 20) / sizeof(Point);
    size_t nchunks = (n + LINREG_CHUNK - 1) / LINREG_CHUNK;
    Point *pts = kona_wl_alloc(n * sizeof(Point), node);
    LinregSums *mid = kona_wl_alloc(nchunks * sizeof(LinregSums), node);
    /* 128-bit: n * sum(xy) overflows 64 bits from a few GiB of points. */
    __int128 tn = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    uint64_t seed = LINREG_SEED;
    double t0, secs, slope, intercept;

    t0 = kona_wl_now();
    for (size_t i = 0; i < n; i++) {
        int32_t x = kona_wl_below(&seed, 65536);
        int32_t noise = (int32_t)kona_wl_below(&seed, 2 * NOISE + 1) - NOISE;

        pts[i].x = x;
        pts[i].y = (int32_t)(LINE_SLOPE * x) + LINE_INTERCEPT + noise;
    }
    kona_wl_phase("linreg", "generate", kona_wl_now() - t0);

    t0 = kona_wl_now();
    for (size_t c = 0; c < nchunks; c++) {
        size_t first = c * LINREG_CHUNK;
        size_t len = n - first < LINREG_CHUNK ? n - first : LINREG_CHUNK;

        linreg_map(pts + first, len, &mid[c]);
    }
    for (size_t c = 0; c < nchunks; c++) {
        tn += mid[c].n;
        sx += mid[c].sx;
        sy += mid[c].sy;
        sxx += mid[c].sxx;
        sxy += mid[c].sxy;
    }
    slope = (double)(tn * sxy - sx * sy) / (double)(tn * sxx - sx * sx);
    intercept = ((double)sy - slope * (double)sx) / (double)tn;
    secs = kona_wl_now() - t0;
    kona_wl_phase("linreg", "map-reduce", secs);

    kona_wl_info("linreg", "points=%zu chunks=%zu slope=%.6f intercept=%.4f",
                 n, nchunks, slope, intercept);
    if ((size_t)tn != n || slope - LINE_SLOPE > 1e-3 ||
        LINE_SLOPE - slope > 1e-3 || intercept - LINE_INTERCEPT > 5 ||
        LINE_INTERCEPT - intercept > 5) {
        kona_wl_fail("linreg", "%zu points gave y = %.6f x + %.4f, expected "
                     "%zu points on y = %.1f x + %d", (size_t)tn, slope,
                     intercept, n, LINE_SLOPE, LINE_INTERCEPT);
    }
    kona_wl_result("linreg", "seconds", secs, "s");
    kona_wl_result("linreg", "throughput", n * sizeof(Point) / secs / 1e6,
                   "MB/s");
}

/* Phoenix's histogram map: byte by byte, into bins of its own. */
static void histogram_map(const uint8_t *px, size_t npix, uint32_t *out)
{
    uint32_t bins[3][256];

    memset(bins, 0, sizeof(bins));
    for (size_t i = 0; i < npix; i++) {
        bins[0][px[3 * i]]++;
        bins[1][px[3 * i + 1]]++;
        bins[2][px[3 * i + 2]]++;
    }
    memcpy(out, bins, sizeof(bins));
}

static void run_histogram(int node, long mib)
{
    size_t bytes = (size_t)mib << 20, npix = bytes / 3;
    size_t nchunks = (npix + HIST_CHUNK - 1) / HIST_CHUNK;
    uint64_t *words = kona_wl_alloc(bytes, node);
    const uint8_t *px = (const uint8_t *)words;
    uint32_t *mid = kona_wl_alloc(nchunks * 3 * 256 * sizeof(uint32_t), node);
    static uint64_t bins[3 * 256], direct[3 * 256];
    uint64_t seed = HIST_SEED, check = 0;
    double t0, secs;
    int ch = 0;

    t0 = kona_wl_now();
    /* AND of two random words: bits are 1 with p = 1/4, bins are skewed. */
    for (size_t i = 0; i < bytes / 8; i++) {
        words[i] = kona_wl_rand(&seed) & kona_wl_rand(&seed);
    }
    kona_wl_phase("histogram", "generate", kona_wl_now() - t0);

    t0 = kona_wl_now();
    for (size_t c = 0; c < nchunks; c++) {
        size_t first = c * HIST_CHUNK;
        size_t len = npix - first < HIST_CHUNK ? npix - first : HIST_CHUNK;

        histogram_map(px + 3 * first, len, mid + c * 3 * 256);
    }
    for (size_t c = 0; c < nchunks; c++) {
        for (int b = 0; b < 3 * 256; b++) {
            bins[b] += mid[c * 3 * 256 + b];
        }
    }
    secs = kona_wl_now() - t0;
    kona_wl_phase("histogram", "map-reduce", secs);

    t0 = kona_wl_now();
    for (size_t i = 0; i < bytes / 8; i++) {
        uint64_t w = words[i];

        for (int j = 0; j < 8 && 8 * i + j < 3 * npix; j++) {
            direct[ch * 256 + ((w >> (8 * j)) & 0xff)]++;
            ch = ch == 2 ? 0 : ch + 1;
        }
    }
    for (int c = 0; c < 3; c++) {
        uint64_t total = 0;

        for (int b = 0; b < 256; b++) {
            total += bins[c * 256 + b];
        }
        if (total != npix) {
            kona_wl_fail("histogram", "channel %d counts %llu pixels of %zu",
                         c, (unsigned long long)total, npix);
        }
    }
    for (int b = 0; b < 3 * 256; b++) {
        if (bins[b] != direct[b]) {
            kona_wl_fail("histogram", "channel %d bin %d: %llu, direct count "
                         "%llu", b / 256, b % 256,
                         (unsigned long long)bins[b],
                         (unsigned long long)direct[b]);
        }
        check = kona_wl_mix64(check ^ bins[b]);
    }
    kona_wl_phase("histogram", "verify", kona_wl_now() - t0);
    kona_wl_info("histogram", "pixels=%zu chunks=%zu red0=%llu bins=%016llx",
                 npix, nchunks, (unsigned long long)bins[0],
                 (unsigned long long)check);
    kona_wl_result("histogram", "seconds", secs, "s");
    kona_wl_result("histogram", "throughput", 3 * npix / secs / 1e6, "MB/s");
}

int main(int argc, char **argv)
{
    static const char *const subcommands[] = { "linreg", "histogram", NULL };
    long node = -1, mib = 4;
    const KonaWlOpt opts[] = {
        { "node", &node, 0, 63 },
        { "mib", &mib, 1, 65536 },
        { NULL },
    };

    kona_wl_prog = "kona-mapreduce";
    if (kona_wl_args(argc, argv, subcommands, opts, usage) == 0) {
        run_linreg(node, mib);
    } else {
        run_histogram(node, mib);
    }
    return 0;
}

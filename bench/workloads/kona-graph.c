/*
 * kona-graph: PageRank and connected components on a synthetic power-law
 * graph, every array on one NUMA node.
 *
 *   kona-graph pagerank --node N [--vertices V] [--degree D] [--iters I]
 *   kona-graph cc --node N [--vertices V] [--degree D]
 *
 * The graph: V vertices, V * D directed edges drawn by R-MAT (a = 0.57,
 * b = c = 0.19, as Graph500 does) over the next power of two, vertex ids
 * scrambled by a fixed bijection (so that the hubs are not all at the
 * start of every array) and edges with an end outside [0, V) drawn again.
 * Self loops and duplicates stay.  Stored as an edge list, then CSR
 * (uint32 offsets and neighbours).
 *
 * pagerank (workload "pagerank"): I pull iterations (default 5), damping
 * 0.85, dangling vertices' rank spread over all; CSR of in-edges plus
 * out-degrees, rank and contribution arrays (double).  Verified: the
 * ranks are positive and sum to 1 within 1e-6.
 *
 * cc (workload "cc"): label propagation over the CSR of out-edges, each
 * edge used both ways (the vertex pulls its neighbours' minimum and pushes
 * its own to larger ones), sweeps until one changes nothing.  Verified:
 * every label is the smallest vertex of its component as a union-find over
 * the edge list (parents on the node) finds it.
 *
 * Metrics: seconds (the iterations or sweeps; generation and CSR build are
 * PHASE lines only), throughput (edges visited per second, Medges/s).
 * Loads and stores to the node (valgrind's lackey), E = V * D: pagerank
 * about 14 E to generate and build plus 2.75 E per iteration; cc about
 * 32 E in all (3 or 4 sweeps).  About 15M at the defaults.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "kona-wl.h"

#define RMAT_A 0.57
#define RMAT_B 0.19
#define RMAT_C 0.19
#define DAMPING 0.85
#define GRAPH_SEED 0x6a9b4ull

static const char usage[] =
    "usage: kona-graph pagerank|cc --node N [--vertices V] [--degree D]"
    " [--iters I]\n"
    "  pagerank     I pull iterations of PageRank (workload pagerank)\n"
    "  cc           connected components by label propagation (workload cc)\n"
    "  --node N     NUMA node for every array (required)\n"
    "  --vertices V vertices (default 65536)\n"
    "  --degree D   edges per vertex: V * D directed edges (default 8)\n"
    "  --iters I    PageRank iterations (default 5; pagerank only)\n";

typedef struct Edge {
    uint32_t src;
    uint32_t dst;
} Edge;

typedef struct Graph {
    uint32_t nv;
    size_t ne;
    Edge *edges;    /* the generator's edge list */
    uint32_t *off;  /* CSR: off[v] .. off[v + 1] index adj */
    uint32_t *adj;
} Graph;

/*
 * A bijection of [0, 2^scale): an add (R-MAT's hub is vertex 0), odd
 * multiplies and right xorshifts, all mod 2^scale.
 */
static uint32_t scramble(uint64_t v, int scale)
{
    uint64_t mask = (1ull << scale) - 1;
    int half = (scale + 1) / 2;

    v = ((v + 0x5bd1e995) * 0x9e3779b97f4a7c15ull) & mask;
    v ^= v >> half;
    v = (v * 0xbf58476d1ce4e5b9ull) & mask;
    v ^= v >> half;
    return v;
}

static void generate(Graph *g, int node, uint32_t nv, size_t ne)
{
    const uint64_t ta = RMAT_A * 4294967296.0;
    const uint64_t tb = (RMAT_A + RMAT_B) * 4294967296.0;
    const uint64_t tc = (RMAT_A + RMAT_B + RMAT_C) * 4294967296.0;
    uint64_t seed = GRAPH_SEED;
    int scale = 1;

    while (((uint64_t)1 << scale) < nv) {
        scale++;
    }
    g->nv = nv;
    g->ne = ne;
    g->edges = kona_wl_alloc(ne * sizeof(Edge), node);
    for (size_t e = 0; e < ne; e++) {
        uint64_t s, d;

        do {
            s = d = 0;
            for (int l = 0; l < scale; l++) {
                /* 32 random bits per level: quadrant a, b, c or d. */
                uint64_t r = kona_wl_rand(&seed) >> 32;

                s = 2 * s + (r >= tb);
                d = 2 * d + ((r >= ta && r < tb) || r >= tc);
            }
            s = scramble(s, scale);
            d = scramble(d, scale);
        } while (s >= nv || d >= nv);
        g->edges[e].src = s;
        g->edges[e].dst = d;
    }
}

/*
 * CSR keyed by each edge's dst (in-edges) or src (out-edges), in place:
 * count into off[], prefix sums make off[v] the end of v's run, and each
 * edge placed at --off[v] leaves it at the run's start.
 */
static void build_csr(Graph *g, int node, int by_dst, uint32_t *outdeg)
{
    g->off = kona_wl_alloc((g->nv + 1) * sizeof(uint32_t), node);
    g->adj = kona_wl_alloc(g->ne * sizeof(uint32_t), node);
    for (size_t e = 0; e < g->ne; e++) {
        Edge ed = g->edges[e];

        g->off[by_dst ? ed.dst : ed.src]++;
        if (outdeg) {
            outdeg[ed.src]++;
        }
    }
    for (uint32_t v = 0, sum = 0; v < g->nv; v++) {
        sum += g->off[v];
        g->off[v] = sum;
    }
    g->off[g->nv] = g->ne;
    for (size_t e = 0; e < g->ne; e++) {
        Edge ed = g->edges[e];

        if (by_dst) {
            g->adj[--g->off[ed.dst]] = ed.src;
        } else {
            g->adj[--g->off[ed.src]] = ed.dst;
        }
    }
}

static void run_pagerank(Graph *g, int node, long iters)
{
    uint32_t nv = g->nv, *outdeg, top = 0;
    double *rank, *contrib, t0, secs, sum = 0;

    outdeg = kona_wl_alloc(nv * sizeof(uint32_t), node);
    rank = kona_wl_alloc(nv * sizeof(double), node);
    contrib = kona_wl_alloc(nv * sizeof(double), node);
    t0 = kona_wl_now();
    build_csr(g, node, 1, outdeg);
    kona_wl_phase("pagerank", "build", kona_wl_now() - t0);

    for (uint32_t v = 0; v < nv; v++) {
        rank[v] = 1.0 / nv;
    }
    t0 = kona_wl_now();
    for (long it = 0; it < iters; it++) {
        double dangling = 0, base;

        for (uint32_t u = 0; u < nv; u++) {
            if (outdeg[u]) {
                contrib[u] = rank[u] / outdeg[u];
            } else {
                contrib[u] = 0;
                dangling += rank[u];
            }
        }
        base = (1 - DAMPING) / nv + DAMPING * dangling / nv;
        for (uint32_t v = 0; v < nv; v++) {
            double s = 0;

            for (uint32_t j = g->off[v]; j < g->off[v + 1]; j++) {
                s += contrib[g->adj[j]];
            }
            rank[v] = base + DAMPING * s;
        }
    }
    secs = kona_wl_now() - t0;
    kona_wl_phase("pagerank", "pagerank", secs);

    for (uint32_t v = 0; v < nv; v++) {
        if (!(rank[v] > 0)) {
            kona_wl_fail("pagerank", "rank[%u] = %g", v, rank[v]);
        }
        sum += rank[v];
        if (rank[v] > rank[top]) {
            top = v;
        }
    }
    kona_wl_info("pagerank", "vertices=%u edges=%zu iters=%ld sum=%.9f "
                 "top=%u top-rank=%.9g", nv, g->ne, iters, sum, top,
                 rank[top]);
    if (sum < 1 - 1e-6 || sum > 1 + 1e-6) {
        kona_wl_fail("pagerank", "ranks sum to %.9f, not 1", sum);
    }
    kona_wl_result("pagerank", "seconds", secs, "s");
    kona_wl_result("pagerank", "throughput", iters * g->ne / secs / 1e6,
                   "Medges/s");
}

static uint32_t uf_find(uint32_t *parent, uint32_t v)
{
    while (parent[v] != v) {
        parent[v] = parent[parent[v]];  /* path halving */
        v = parent[v];
    }
    return v;
}

static void run_cc(Graph *g, int node)
{
    uint32_t nv = g->nv, *label, *parent, ncomp = 0;
    long sweeps = 0;
    int changed;
    double t0, secs;

    label = kona_wl_alloc(nv * sizeof(uint32_t), node);
    parent = kona_wl_alloc(nv * sizeof(uint32_t), node);
    t0 = kona_wl_now();
    build_csr(g, node, 0, NULL);
    kona_wl_phase("cc", "build", kona_wl_now() - t0);

    for (uint32_t v = 0; v < nv; v++) {
        label[v] = v;
    }
    t0 = kona_wl_now();
    do {
        changed = 0;
        for (uint32_t v = 0; v < nv; v++) {
            uint32_t lv = label[v], m = lv;

            for (uint32_t j = g->off[v]; j < g->off[v + 1]; j++) {
                uint32_t u = g->adj[j], lu = label[u];

                if (lu < m) {
                    m = lu;
                } else if (lu > m) {
                    label[u] = m;
                    changed = 1;
                }
            }
            if (m < lv) {
                label[v] = m;
                changed = 1;
            }
        }
        sweeps++;
    } while (changed);
    secs = kona_wl_now() - t0;
    kona_wl_phase("cc", "cc", secs);

    /* Union by smaller root: every set's root is its smallest vertex. */
    t0 = kona_wl_now();
    for (uint32_t v = 0; v < nv; v++) {
        parent[v] = v;
    }
    for (size_t e = 0; e < g->ne; e++) {
        uint32_t a = uf_find(parent, g->edges[e].src);
        uint32_t b = uf_find(parent, g->edges[e].dst);

        if (a < b) {
            parent[b] = a;
        } else if (b < a) {
            parent[a] = b;
        }
    }
    for (uint32_t v = 0; v < nv; v++) {
        uint32_t root = uf_find(parent, v);

        if (label[v] != root) {
            kona_wl_fail("cc", "label[%u] = %u, union-find says %u", v,
                         label[v], root);
        }
        ncomp += root == v;
    }
    kona_wl_phase("cc", "verify", kona_wl_now() - t0);
    kona_wl_info("cc", "vertices=%u edges=%zu sweeps=%ld components=%u", nv,
                 g->ne, sweeps, ncomp);
    kona_wl_result("cc", "seconds", secs, "s");
    kona_wl_result("cc", "throughput", sweeps * g->ne / secs / 1e6,
                   "Medges/s");
}

int main(int argc, char **argv)
{
    static const char *const subcommands[] = { "pagerank", "cc", NULL };
    long node = -1, nv = 65536, degree = 8, iters = -1;
    const KonaWlOpt opts[] = {
        { "node", &node, 0, 63 },
        { "vertices", &nv, 2, 1l << 30 },
        { "degree", &degree, 1, 1024 },
        { "iters", &iters, 1, 1000 },
        { NULL },
    };
    const char *workload;
    Graph g;
    double t0;

    kona_wl_prog = "kona-graph";
    workload = subcommands[kona_wl_args(argc, argv, subcommands, opts,
                                        usage)];
    if (!strcmp(workload, "pagerank")) {
        iters = iters < 0 ? 5 : iters;
    } else if (iters >= 0) {
        kona_wl_bad_args(usage, "--iters is for pagerank only");
    }
    /* uint32 edge offsets. */
    if ((uint64_t)nv * degree > UINT32_MAX) {
        kona_wl_bad_args(usage, "--vertices * --degree must be below 2^32");
    }

    t0 = kona_wl_now();
    generate(&g, node, nv, (size_t)nv * degree);
    kona_wl_phase(workload, "generate", kona_wl_now() - t0);
    if (iters > 0) {
        run_pagerank(&g, node, iters);
    } else {
        run_cc(&g, node);
    }
    return 0;
}

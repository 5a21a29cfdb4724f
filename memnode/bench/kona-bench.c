/*
 * kona-bench: loopback benchmark of kona-memnode against the raw socket.
 *
 *   kona-bench raw                   raw unix-socket ping-pong and stream
 *   kona-bench memnode ADDR          kona-link reads and dirty-line writes
 *   kona-bench shared ADDR           the shared-memory path (unix ADDR):
 *                                    4 KiB fetches from a mapped slab, cold
 *                                    and warm, and 8-line write-backs
 *                                    (copy + note), next to socket READs
 *
 * The raw numbers are the physical limit on this machine: the same
 * request/reply sizes as the memnode's READ (48-byte request, 24-byte
 * header + N bytes back) between two processes with blocking read/write
 * and nothing else.  scripts/bench-memnode runs both, plus redis, and
 * compares.  Every result is also printed as "RESULT key value" for the
 * script.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kona-link.h"

static const uint32_t sizes[] = { 64, 4096, 65536 };
static const char *const size_names[] = { "64B", "4KiB", "64KiB" };

static double lat_secs = 1.0;   /* per latency measurement */
static double tput_secs = 1.5;  /* per throughput measurement */

#define die(...) kona_die("kona-bench", __VA_ARGS__)

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct Lat {
    int64_t *ns;
    size_t n, cap;
} Lat;

static void lat_add(Lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->ns = g_renew(int64_t, l->ns, l->cap);
    }
    l->ns[l->n++] = ns;
}

static double lat_pct(Lat *l, double p)
{
    size_t i;

    qsort(l->ns, l->n, sizeof(int64_t), cmp_i64);
    i = (size_t)(p / 100.0 * (double)(l->n - 1));
    return (double)l->ns[i] / 1000.0;
}

static void report_lat(const char *key, const char *what, Lat *l)
{
    double p50 = lat_pct(l, 50), p99 = lat_pct(l, 99);

    printf("  %-34s p50 %8.2f us   p99 %8.2f us   (%zu ops)\n", what, p50,
           p99, l->n);
    printf("RESULT %s_p50_us %.3f\nRESULT %s_p99_us %.3f\n", key, p50, key,
           p99);
    g_free(l->ns);
    memset(l, 0, sizeof(*l));
}

/* ---- raw unix socket reference ---- */

/* Read or write exactly @len bytes; false once the peer is gone. */
static bool full_io(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Server process: answer each 48-byte request with 24 + size bytes, or
 * (mode 's') stream size-byte messages until the peer closes. */
static void raw_server(int lfd)
{
    uint8_t *buf = g_malloc0(24 + 65536);

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        uint8_t req[48];
        uint32_t size;

        if (fd < 0) {
            exit(0);
        }
        /* the same buffer sizes kona-memnode uses (kona_sock_tune) */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ 4 << 20 }, sizeof(int));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ 4 << 20 }, sizeof(int));
        if (full_io(fd, req, 48, false)) {
            size = MIN(kona_ld32(req + 4), 65536u);
            if (req[0] == 's') {
                while (full_io(fd, buf, size, true)) {
                }
            } else {
                while (full_io(fd, buf, 24 + size, true) &&
                       full_io(fd, req, 48, false)) {
                }
            }
        }
        close(fd);
    }
}

static int raw_connect(const char *path, char mode, uint32_t size)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), sz = 4 << 20;
    uint8_t req[48] = { (uint8_t)mode };

    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        die("connect %s: %s", path, g_strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    kona_st32(req + 4, size);
    if (!full_io(fd, req, sizeof(req), true)) {
        die("raw server went away");
    }
    return fd;
}

static void bench_raw(void)
{
    g_autofree char *dir = g_dir_make_tmp("kona-bench-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "raw.sock", NULL);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    uint8_t *buf = g_malloc(24 + 65536);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    pid_t pid;

    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(lfd, 16) < 0) {
        die("listen %s: %s", path, g_strerror(errno));
    }
    pid = fork();
    if (pid == 0) {
        raw_server(lfd);
    }
    close(lfd);

    printf("raw unix socket (blocking read/write, separate process)\n");
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        /* ping-pong: 48-byte request, 24 + size reply */
        int fd = raw_connect(path, 'p', sizes[i]);
        int64_t end = kona_now_ns() + (int64_t)(lat_secs * 1e9);
        uint8_t req[48] = { 0 };
        g_autofree char *key = g_strdup_printf("raw_pingpong_%s",
                                               size_names[i]);
        g_autofree char *what = g_strdup_printf("ping-pong %s", size_names[i]);
        Lat l = { 0 };

        if (!full_io(fd, buf, 24 + sizes[i], false)) {  /* warm-up reply */
            die("raw server went away");
        }
        while (kona_now_ns() < end) {
            int64_t t0 = kona_now_ns();
            if (!full_io(fd, req, sizeof(req), true) ||
                !full_io(fd, buf, 24 + sizes[i], false)) {
                die("raw server went away");
            }
            lat_add(&l, kona_now_ns() - t0);
        }
        close(fd);
        report_lat(key, what, &l);
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        int fd = raw_connect(path, 's', sizes[i]);
        int64_t t0 = kona_now_ns(), end = t0 + (int64_t)(tput_secs * 1e9);
        uint64_t bytes = 0;
        double gbs;

        while (kona_now_ns() < end) {
            if (!full_io(fd, buf, sizes[i], false)) {
                die("raw server went away");
            }
            bytes += sizes[i];
        }
        gbs = (double)bytes / ((double)(kona_now_ns() - t0));
        close(fd);
        printf("  stream %-27s %8.3f GB/s   (%.0f msgs/s)\n", size_names[i],
               gbs, gbs * 1e9 / sizes[i]);
        printf("RESULT raw_stream_%s_GBps %.4f\n", size_names[i], gbs);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(path);
    rmdir(dir);
    g_free(buf);
}

/* ---- memnode ---- */

#define BENCH_SLAB  (256ull << 20)

typedef struct Shared {
    const char *addr;
    uint64_t slab;
    uint8_t key[KONA_KEY_SIZE];
} Shared;

static KonaLink *bench_link(const Shared *sh)
{
    g_autoptr(GError) err = NULL;
    KonaLink *l = kona_link_connect(sh->addr, 10000, &err);

    if (!l || kona_link_slab_open(l, sh->slab, sh->key, NULL, &err) < 0) {
        die("%s", err->message);
    }
    return l;
}

/* Offsets spread over the slab, aligned to the access size. */
static uint64_t pick_off(GRand *r, uint32_t size)
{
    uint64_t slots = BENCH_SLAB / MAX(size, (uint32_t)KONA_PAGE_SIZE);
    return (uint64_t)g_rand_int_range(r, 0, (gint32)slots) *
           MAX(size, (uint32_t)KONA_PAGE_SIZE);
}

/* One write_lines covering @size bytes: 64 B = one line of a page,
 * 4 KiB = one full page, 64 KiB = 16 full pages. */
static uint64_t submit_write(KonaLink *l, uint64_t slab, uint64_t off,
                             uint32_t size, const uint8_t *data,
                             const uint64_t *full, GError **errp)
{
    if (size < KONA_PAGE_SIZE) {
        uint64_t mask = 1ull << ((off / 64) % 64);
        return kona_link_submit_write_lines(l, slab, off, 1, &mask, data,
                                            errp);
    }
    return kona_link_submit_write_lines(l, slab, off, size / KONA_PAGE_SIZE,
                                        full, data, errp);
}

typedef struct Worker {
    const Shared *sh;
    bool write;
    uint32_t size;
    unsigned depth;
    int64_t end_ns;
    uint64_t ops;
    Lat lat;
    unsigned seed;
} Worker;

static gpointer tput_worker(gpointer opaque)
{
    Worker *w = opaque;
    g_autoptr(GError) err = NULL;
    KonaLink *l = bench_link(w->sh);
    GRand *r = g_rand_new_with_seed(w->seed);
    uint64_t *ids = g_new0(uint64_t, w->depth);
    int64_t *t0 = g_new0(int64_t, w->depth);
    uint8_t *bufs = g_malloc0((size_t)w->depth * w->size);
    uint64_t full[16];

    memset(full, 0xff, sizeof(full));
    /* keep depth requests in flight; replace each as it completes */
    for (uint64_t i = 0;; i++) {
        unsigned s = (unsigned)(i % w->depth);
        uint8_t *b = bufs + (size_t)s * w->size;
        uint64_t off;
        int64_t now;

        if (ids[s]) {
            if (kona_link_wait(l, ids[s], &err) < 0) {
                die("%s", err->message);
            }
            now = kona_now_ns();
            lat_add(&w->lat, now - t0[s]);
            w->ops++;
            ids[s] = 0;
            if (now >= w->end_ns) {
                break;
            }
        }
        off = pick_off(r, w->size);
        t0[s] = kona_now_ns();
        ids[s] = w->write ?
                 submit_write(l, w->sh->slab, off, w->size, b, full, &err) :
                 kona_link_submit_read(l, w->sh->slab, off, b, w->size, &err);
        if (!ids[s]) {
            die("%s", err->message);
        }
    }
    for (unsigned s = 0; s < w->depth; s++) {
        if (ids[s] && kona_link_wait(l, ids[s], &err) < 0) {
            die("%s", err->message);
        }
    }
    kona_link_close(l);
    g_rand_free(r);
    g_free(ids);
    g_free(t0);
    g_free(bufs);
    return NULL;
}

static void run_tput(const Shared *sh, bool write, uint32_t size,
                     unsigned nclients, unsigned depth, const char *sname)
{
    Worker *w = g_new0(Worker, nclients);
    GThread **t = g_new(GThread *, nclients);
    int64_t start = kona_now_ns(), end = start + (int64_t)(tput_secs * 1e9);
    uint64_t ops = 0;
    Lat all = { 0 };
    double secs, opss;
    g_autofree char *key = NULL;

    for (unsigned i = 0; i < nclients; i++) {
        w[i] = (Worker){ .sh = sh, .write = write, .size = size,
                         .depth = depth, .end_ns = end, .seed = i + 1 };
        t[i] = g_thread_new("bench", tput_worker, &w[i]);
    }
    for (unsigned i = 0; i < nclients; i++) {
        g_thread_join(t[i]);
        ops += w[i].ops;
        for (size_t j = 0; j < w[i].lat.n; j++) {
            lat_add(&all, w[i].lat.ns[j]);
        }
        g_free(w[i].lat.ns);
    }
    secs = (double)(kona_now_ns() - start) / 1e9;
    opss = (double)ops / secs;
    printf("  %-5s %-6s %u client%s x depth %-3u %10.0f ops/s %8.3f GB/s"
           "   p50 %7.1f us  p99 %7.1f us\n",
           write ? "write" : "read", sname, nclients,
           nclients == 1 ? " " : "s", depth, opss, opss * size / 1e9,
           lat_pct(&all, 50), lat_pct(&all, 99));
    key = g_strdup_printf("memnode_%s_%s_%uc", write ? "write" : "read",
                          sname, nclients);
    printf("RESULT %s_ops %.0f\nRESULT %s_GBps %.4f\n", key, opss, key,
           opss * size / 1e9);
    g_free(all.ns);
    g_free(w);
    g_free(t);
}

static void bench_memnode(const char *addr)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = kona_link_connect(addr, 10000, &err);
    g_autofree uint8_t *buf = g_malloc0(1 << 20);
    g_autofree uint64_t *full = g_new(uint64_t, KONA_MAX_WRITE_PAGES);
    Shared sh = { .addr = addr };
    KonaMemnodeStats st;
    GRand *r = g_rand_new_with_seed(1);

    if (!l || kona_link_slab_alloc(l, BENCH_SLAB, &sh.slab, &err) < 0) {
        die("%s", err->message);
    }
    kona_link_slab_info(l, sh.slab, sh.key, NULL);
    /* touch the whole slab so reads hit real pages, not the zero page */
    memset(full, 0xff, 8 * KONA_MAX_WRITE_PAGES);
    memset(buf, 0xab, 1 << 20);
    for (uint64_t off = 0; off < BENCH_SLAB; off += 1 << 20) {
        if (kona_link_write_lines(l, sh.slab, off, KONA_MAX_WRITE_PAGES, full,
                                  buf, &err) < 0) {
            die("%s", err->message);
        }
    }

    printf("kona-memnode at %s (kona-link, one request at a time)\n", addr);
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        for (int wr = 0; wr < 2; wr++) {
            int64_t end = kona_now_ns() + (int64_t)(lat_secs * 1e9);
            g_autofree char *key = g_strdup_printf("memnode_%s_%s",
                                                   wr ? "write" : "read",
                                                   size_names[i]);
            g_autofree char *what = g_strdup_printf(
                "%s %s", wr ? "dirty-line write" : "read", size_names[i]);
            Lat lat = { 0 };

            while (kona_now_ns() < end) {
                uint64_t off = pick_off(r, sizes[i]);
                int64_t t0 = kona_now_ns();
                uint64_t id = wr ?
                    submit_write(l, sh.slab, off, sizes[i], buf, full, &err) :
                    kona_link_submit_read(l, sh.slab, off, buf, sizes[i],
                                          &err);
                if (!id || kona_link_wait(l, id, &err) < 0) {
                    die("%s", err->message);
                }
                lat_add(&lat, kona_now_ns() - t0);
            }
            report_lat(key, what, &lat);
        }
    }

    printf("kona-memnode throughput (pipelined, depth 16 per client)\n");
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        for (int wr = 0; wr < 2; wr++) {
            run_tput(&sh, wr, sizes[i], 1, 16, size_names[i]);
            run_tput(&sh, wr, sizes[i], 8, 16, size_names[i]);
        }
    }
    if (kona_link_stats(l, &st, &err) == 0) {
        printf("  memnode stats: %" G_GUINT64_FORMAT " ops, %.2f GB read, "
               "%.2f GB written (%" G_GUINT64_FORMAT " dirty lines), "
               "%" G_GUINT64_FORMAT " bad frames\n", st.ops,
               st.bytes_read / 1e9, st.bytes_written / 1e9, st.lines_written,
               st.bad_frames);
    }
    kona_link_slab_free(l, sh.slab, NULL);
    g_rand_free(r);
}

/* ---- shared memory ---- */

/*
 * A 4 KiB "fetch" is what the device does on a miss with the slab mapped:
 * memcpy of the block into its cache.  Cold: the first touch of each page
 * through this mapping (a minor fault: the memnode already has the page);
 * warm: the mapping pre-faulted.  A write-back of a block with 8 dirty
 * lines copies the lines into the mapping and notes them (the link sends
 * a WROTE_LINES per KONA_MAX_NOTE_PAGES notes, which shows in the p99).
 */
static void bench_shared(const char *addr)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = kona_link_connect(addr, 10000, &err);
    g_autofree uint8_t *buf = g_malloc0(1 << 20);
    g_autofree uint64_t *full = g_new(uint64_t, KONA_MAX_WRITE_PAGES);
    uint64_t npages = BENCH_SLAB / KONA_PAGE_SIZE, slab, size, ops = 0;
    g_autofree uint32_t *perm = g_new(uint32_t, npages);
    GRand *r = g_rand_new_with_seed(2);
    uint8_t *m;
    int64_t end;
    Lat lat = { 0 };
    KonaMemnodeStats st0, st;

    if (!l || kona_link_slab_alloc(l, BENCH_SLAB, &slab, &err) < 0) {
        die("%s", err->message);
    }
    if (!kona_link_offers_shared(l)) {
        die("%s does not offer the shared path (a unix socket, and a "
            "memnode without --no-shared)", addr);
    }
    /* the node's memory exists: cold fetches fault on page tables only */
    memset(full, 0xff, 8 * KONA_MAX_WRITE_PAGES);
    memset(buf, 0xab, 1 << 20);
    for (uint64_t off = 0; off < BENCH_SLAB; off += 1 << 20) {
        if (kona_link_write_lines(l, slab, off, KONA_MAX_WRITE_PAGES, full,
                                  buf, &err) < 0) {
            die("%s", err->message);
        }
    }
    m = kona_link_slab_map(l, slab, &size, NULL, &err);
    if (!m || kona_link_stats(l, &st0, &err) < 0) {
        die("%s", err->message);
    }

    printf("shared memory at %s (4 KiB memcpy from a mapped %u MiB slab)\n",
           addr, (unsigned)(BENCH_SLAB >> 20));
    /* cold: every page once, in random order, until time or pages run out */
    for (uint64_t i = 0; i < npages; i++) {
        perm[i] = (uint32_t)i;
    }
    for (uint64_t i = npages - 1; i > 0; i--) {
        uint64_t j = (uint64_t)g_rand_int_range(r, 0, (gint32)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    end = kona_now_ns() + (int64_t)(lat_secs * 1e9);
    for (uint64_t i = 0; i < npages && kona_now_ns() < end; i++) {
        int64_t t0 = kona_now_ns();
        memcpy(buf, m + (uint64_t)perm[i] * KONA_PAGE_SIZE, KONA_PAGE_SIZE);
        lat_add(&lat, kona_now_ns() - t0);
    }
    report_lat("shared_fetch_cold_4KiB", "fetch 4KiB, cold mapping", &lat);
    /* warm: the whole mapping faulted in first */
    for (uint64_t off = 0; off < BENCH_SLAB; off += KONA_PAGE_SIZE) {
        ((volatile uint8_t *)buf)[0] = ((volatile uint8_t *)m)[off];
    }
    end = kona_now_ns() + (int64_t)(lat_secs * 1e9);
    while (kona_now_ns() < end) {
        uint64_t off = pick_off(r, KONA_PAGE_SIZE);
        int64_t t0 = kona_now_ns();
        memcpy(buf, m + off, KONA_PAGE_SIZE);
        lat_add(&lat, kona_now_ns() - t0);
    }
    report_lat("shared_fetch_warm_4KiB", "fetch 4KiB, warm mapping", &lat);
    /* write-back: 8 dirty lines of a block, copied and noted */
    end = kona_now_ns() + (int64_t)(lat_secs * 1e9);
    while (kona_now_ns() < end) {
        uint64_t off = pick_off(r, KONA_PAGE_SIZE);
        uint64_t mask = 0x0101010101010101ull << g_rand_int_range(r, 0, 8);
        int64_t t0 = kona_now_ns();

        for (uint64_t mm = mask; mm; mm &= mm - 1) {
            unsigned j = (unsigned)__builtin_ctzll(mm);
            memcpy(m + off + 64 * j, buf + 64 * j, 64);
        }
        if (kona_link_note_lines(l, slab, off, 1, &mask, &err) < 0) {
            die("%s", err->message);
        }
        lat_add(&lat, kona_now_ns() - t0);
        ops++;
    }
    report_lat("shared_writeback_8lines", "write-back 8 lines (copy+note)",
               &lat);
    if (kona_link_flush(l, &err) < 0) {
        die("%s", err->message);
    }
    /* the socket path on the same node and slab, for the same table */
    end = kona_now_ns() + (int64_t)(lat_secs * 1e9);
    while (kona_now_ns() < end) {
        uint64_t off = pick_off(r, KONA_PAGE_SIZE);
        int64_t t0 = kona_now_ns();
        if (kona_link_read(l, slab, off, buf, KONA_PAGE_SIZE, &err) < 0) {
            die("%s", err->message);
        }
        lat_add(&lat, kona_now_ns() - t0);
    }
    report_lat("socket_read_4KiB", "socket READ 4KiB (same slab)", &lat);
    if (kona_link_stats(l, &st, &err) == 0) {
        /* every write-back reached the node's counters (WROTE_LINES) */
        printf("  memnode stats: %" G_GUINT64_FORMAT " write-backs counted "
               "of %" G_GUINT64_FORMAT " noted (%" G_GUINT64_FORMAT " lines)"
               ", %" G_GUINT64_FORMAT " slab mapped\n",
               st.writes - st0.writes, ops,
               st.lines_written - st0.lines_written, st.mapped_slabs);
    }
    kona_link_slab_unmap(m, size);
    kona_link_slab_free(l, slab, NULL);
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    const char *quick = g_getenv("KONA_BENCH_QUICK");

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (quick && *quick && strcmp(quick, "0")) {
        lat_secs = 0.3;
        tput_secs = 0.4;
    }
    if (argc == 2 && !strcmp(argv[1], "raw")) {
        bench_raw();
    } else if (argc == 3 && !strcmp(argv[1], "memnode")) {
        bench_memnode(argv[2]);
    } else if (argc == 3 && !strcmp(argv[1], "shared")) {
        bench_shared(argv[2]);
    } else {
        fprintf(stderr, "usage: kona-bench raw | kona-bench memnode ADDR | "
                "kona-bench shared ADDR\n"
                "  KONA_BENCH_QUICK=1 shortens every measurement\n");
        return 2;
    }
    return 0;
}

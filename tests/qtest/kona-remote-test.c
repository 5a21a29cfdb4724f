/*
 * QTest for kona-cxl backed by real kona-memnode processes: data survives
 * eviction and re-fetch, write-back carries exactly the dirty lines, the
 * page-granular counterfactual, the guest-policy registers, flush on exit,
 * and property errors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "kona-regs.h"
#include "kona-auth.h"
#include "kona-link.h"
#include "kona-sock.h"
#include "mn-testutil.h"
#include "kona-qtest-util.h"

#define TOPOLOGY \
    "-machine q35,cxl=on " \
    "-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 " \
    "-device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 " \
    "-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G "

typedef struct RemoteFixture {
    MnProc *memnode;
    char *dir;              /* holds the memnode's socket */
    char *addr;             /* the memnode's unix socket address */
    bool auth;              /* memnode and device share test_secret() */
    KonaQTest t;
} RemoteFixture;

/*
 * The secret the authenticated tests share with their memnodes: a named
 * volume's key is derived from it, so every test with a volume uses it.
 */
static const char *test_secret(void)
{
    static char *path;

    if (!path) {
        path = g_build_filename(g_get_tmp_dir(), "kona-qtest-secret", NULL);
        g_assert_true(g_file_set_contents(path, "kona-qtest-secret-0123456789"
                                          "abcdef", -1, NULL));
        g_assert_cmpint(chmod(path, 0600), ==, 0);
    }
    return path;
}

/* A test's own connection: with the test secret if asked (or offered). */
static KonaLink *test_link(const char *addr, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) secret = kona_auth_load_secret(test_secret(), &err);
    gsize len;
    KonaLinkOptions o = {
        .connect_timeout_ms = 5000,
        .timeout_ms = 5000,
        .allow_unauthenticated = true,
    };

    g_assert_no_error(err);
    o.secret = g_bytes_get_data(secret, &len);
    o.secret_len = len;
    return kona_link_connect_opts(addr, &o, errp);
}

static void memnode_start(RemoteFixture *fx)
{
    g_autofree char *listen = NULL;
    g_autofree char *secret = g_strdup_printf("--secret-file=%s",
                                              test_secret());

    fx->dir = mn_tmpdir();
    listen = g_strdup_printf("--listen=unix:%s/mn.sock", fx->dir);
    const char *argv[] = { listen, fx->auth ? secret : NULL, "--auth-all",
                           NULL };

    fx->memnode = mn_proc_start(mn_memnode_bin(), argv);
    fx->addr = g_strdup(fx->memnode->addrs[0]);
}

/* Boot QEMU with kona-cxl on a fresh memnode; @props after memnode=. */
static void remote_start(RemoteFixture *fx, const char *props)
{
    g_autofree char *all = NULL;

    memnode_start(fx);
    all = g_strdup_printf("size=256M,memnode=%s%s%s,%s", fx->addr,
                          fx->auth ? ",secret-file=" : "",
                          fx->auth ? test_secret() : "", props);
    kona_qtest_start(&fx->t, all);
}

/* The same with the test secret on both sides (named volumes need it). */
static void remote_start_auth(RemoteFixture *fx, const char *props)
{
    fx->auth = true;
    remote_start(fx, props);
}

static void remote_stop(RemoteFixture *fx)
{
    if (fx->t.qts) {
        kona_qtest_stop(&fx->t);
    }
    g_assert_cmpint(mn_proc_stop(fx->memnode), ==, 0);
    mn_proc_free(fx->memnode);
    mn_rm_rf(fx->dir);
    g_free(fx->dir);
    g_free(fx->addr);
}

static KonaMemnodeStats stats_at(const char *addr);
static void expect_failure(const char *props, const char *needle);
static void touch_blocks(KonaQTest *t, int first, int n);
static void check_blocks(KonaQTest *t, int first, int n);
static void check_zero_blocks(KonaQTest *t, int first, int n);

static KonaMemnodeStats memnode_stats(RemoteFixture *fx)
{
    return stats_at(fx->addr);
}

/* "remote path: P, N of M cop..." of stats-text: N, the mapped copies. */
static unsigned mapped_copies(KonaQTest *t)
{
    QDict *rsp = qtest_qmp(t->qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': '/machine/peripheral/kona0', "
                           "'property': 'stats-text' } }");
    const char *text = qdict_get_str(rsp, "return");
    const char *at = strstr(text, "remote path: ");
    unsigned n = UINT_MAX;

    g_assert_nonnull(at);
    at = strchr(at, ',');
    g_assert_nonnull(at);
    n = strtoul(at + 1, NULL, 10);
    qobject_unref(rsp);
    return n;
}

/* The path @props ask for: the shared one unless remote-path=socket. */
static unsigned want_mapped(const char *props, unsigned copies)
{
    return strstr(props, "remote-path=socket") ? 0 : copies;
}

static uint64_t hist(KonaQTest *t, unsigned lines)
{
    return kona_reg_readq(t, KONA_REG_HIST + 8 * lines);
}

/*
 * Write a pseudo-random pattern over many times the cache, then read it
 * back: every block was evicted and fetched again along the way.
 */
static void test_evict_refetch(gconstpointer data)
{
    const char *props = data;
    const size_t chunk = 64 * KiB;
    g_autofree uint8_t *buf = g_malloc(chunk);
    g_autofree uint8_t *back = g_malloc(chunk);
    RemoteFixture fx = { 0 };
    size_t total;

    remote_start(&fx, props);
    /* Four times the cache: every block is evicted at least once. */
    total = 4 * kona_reg_readq(&fx.t, KONA_REG_CACHE_SIZE);
    /* Every other chunk starts one byte late: unaligned accesses. */
    for (size_t off = 0; off < total; off += chunk) {
        size_t skew = off / chunk % 2;

        mn_fill(buf, chunk, off);
        qtest_bufwrite(fx.t.qts, fx.t.window + off + skew, buf, chunk - skew);
    }
    for (size_t off = 0; off < total; off += chunk) {
        size_t skew = off / chunk % 2;

        mn_fill(buf, chunk, off);
        qtest_bufread(fx.t.qts, fx.t.window + off + skew, back, chunk - skew);
        if (memcmp(buf, back, chunk - skew)) {
            g_error("%s: data at 0x%zx changed after eviction", props, off);
        }
    }
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "evictions"), >, 0);
    /* Each block once to write it, again unless still resident to read. */
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "fetches"), >=,
                     2 * total / kona_reg_readl(&fx.t, KONA_REG_BLOCK_SIZE) -
                     kona_reg_readl(&fx.t, KONA_REG_NFRAMES));
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "resident-blocks"), <=,
                     kona_reg_readl(&fx.t, KONA_REG_NFRAMES));
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "remote-errors"), ==, 0);
    remote_stop(&fx);
}

/* Write-back is exactly the dirty lines, and the memnode agrees. */
/* @data: extra properties ("", ",tracking=fast" or ",tracking=stores"). */
static void test_writeback_exact(gconstpointer data)
{
    g_autofree char *props = g_strdup_printf("cache-size=1M%s",
                                             (const char *)data);
    GRand *rnd = g_rand_new_with_seed(7);
    g_autoptr(GHashTable) lines = g_hash_table_new(g_direct_hash,
                                                   g_direct_equal);
    g_autoptr(GHashTable) pages = g_hash_table_new(g_direct_hash,
                                                   g_direct_equal);
    RemoteFixture fx = { 0 };
    KonaMemnodeStats before, after;
    uint64_t result, offs[300];
    const uint64_t span = 16 * MiB;     /* 16 x the 1 MiB cache */

    remote_start(&fx, props);
    /* A memnode on a unix socket: the shared path unless told otherwise. */
    g_assert_cmpuint(mapped_copies(&fx.t), ==, want_mapped(props, 1));
    before = memnode_stats(&fx);
    for (int i = 0; i < G_N_ELEMENTS(offs); i++) {
        /* Aligned 8-byte values, each in a line of its own. */
        do {
            offs[i] = g_rand_int_range(rnd, 0, span / 8) * 8;
        } while (g_hash_table_contains(lines,
                                       GSIZE_TO_POINTER(offs[i] / 64 + 1)));
        qtest_writeq(fx.t.qts, fx.t.window + offs[i], offs[i] ^ 0xa5a5);
        g_hash_table_add(lines, GSIZE_TO_POINTER(offs[i] / 64 + 1));
        g_hash_table_add(pages, GSIZE_TO_POINTER(offs[i] / 4096 + 1));
    }
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_EVICT, 0, 256 * MiB, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "resident-blocks"), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "dirty-lines"), ==, 0);

    /* Ours: 64 B per distinct dirty line, across every write-back. */
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "writeback-lines"), ==,
                     g_hash_table_size(lines));
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "writeback-bytes"), ==,
                     64 * g_hash_table_size(lines));
    /*
     * A page is written back once per stay in the cache that dirtied it:
     * at least once, at most once per line.  (test_amplification checks
     * exact numbers on a pattern without forced evictions.)
     */
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "page-writeback-bytes"), >=,
                     4096 * g_hash_table_size(pages));
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "page-writeback-bytes"), <=,
                     4096 * g_hash_table_size(lines));
    /* The memnode's: the same lines, and nothing else. */
    after = memnode_stats(&fx);
    g_assert_cmpuint(after.lines_written - before.lines_written, ==,
                     g_hash_table_size(lines));
    g_assert_cmpuint(after.bytes_written - before.bytes_written, ==,
                     64 * g_hash_table_size(lines));

    /* And the values came back from the memnode. */
    for (int i = 0; i < G_N_ELEMENTS(offs); i++) {
        g_assert_cmphex(qtest_readq(fx.t.qts, fx.t.window + offs[i]), ==,
                        offs[i] ^ 0xa5a5);
    }
    g_rand_free(rnd);
    remote_stop(&fx);
}

/* The 4 KiB-page counterfactual and histogram on a known pattern. */
static void test_amplification(gconstpointer data)
{
    g_autofree char *props = g_strdup_printf("cache-size=1M%s",
                                             (const char *)data);
    RemoteFixture fx = { 0 };
    uint8_t page[4096];
    uint64_t result;
    double amp;
    QDict *rsp;

    remote_start(&fx, props);
    /* Page 0: one line.  Page 5: three lines.  Page 9: all 64 lines. */
    qtest_writeq(fx.t.qts, fx.t.window + 8, 1);
    qtest_writeq(fx.t.qts, fx.t.window + 5 * 4096, 2);
    qtest_writel(fx.t.qts, fx.t.window + 5 * 4096 + 640, 3);
    qtest_writeb(fx.t.qts, fx.t.window + 5 * 4096 + 4095, 4);
    memset(page, 0x77, sizeof(page));
    qtest_bufwrite(fx.t.qts, fx.t.window + 9 * 4096, page, sizeof(page));
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_EVICT, 0, 16 * 4096, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 3);

    g_assert_cmpuint(kona_qmp_stat(&fx.t, "writeback-bytes"), ==, 68 * 64);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "page-writeback-bytes"), ==,
                     3 * 4096);
    g_assert_cmpuint(hist(&fx.t, 1), ==, 1);
    g_assert_cmpuint(hist(&fx.t, 3), ==, 1);
    g_assert_cmpuint(hist(&fx.t, 64), ==, 1);
    g_assert_cmpuint(hist(&fx.t, 2), ==, 0);

    rsp = qtest_qmp(fx.t.qts, "{ 'execute': 'qom-get', 'arguments': "
                    "{ 'path': '/machine/peripheral/kona0', "
                    "'property': 'stats' } }");
    amp = qdict_get_double(qdict_get_qdict(rsp, "return"),
                           "page-amplification");
    g_assert_cmpfloat_with_epsilon(amp, 3.0 * 4096 / (68 * 64), 1e-9);
    qobject_unref(rsp);
    remote_stop(&fx);
}

/*
 * writeback=pages: the device behaves as a page-granular runtime would, on
 * the pattern above: every page with a dirty line is sent whole, and the
 * memnode receives exactly that; the histogram still says how many lines
 * of each page were dirty.  With latency=legoos each fetch takes 10 us.
 */
static void test_page_runtime(void)
{
    RemoteFixture fx = { 0 };
    KonaMemnodeStats before, after;
    g_autofree char *text = NULL;
    uint8_t page[4096];
    uint64_t result;
    QDict *rsp;

    remote_start(&fx, "cache-size=1M,writeback=pages,latency=legoos");
    before = memnode_stats(&fx);
    qtest_writeq(fx.t.qts, fx.t.window + 8, 1);
    qtest_writeq(fx.t.qts, fx.t.window + 5 * 4096, 2);
    qtest_writel(fx.t.qts, fx.t.window + 5 * 4096 + 640, 3);
    qtest_writeb(fx.t.qts, fx.t.window + 5 * 4096 + 4095, 4);
    memset(page, 0x77, sizeof(page));
    qtest_bufwrite(fx.t.qts, fx.t.window + 9 * 4096, page, sizeof(page));
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_EVICT, 0, 16 * 4096, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "writeback-bytes"), ==, 3 * 4096);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "page-writeback-bytes"), ==,
                     3 * 4096);
    after = memnode_stats(&fx);
    g_assert_cmpuint(after.bytes_written - before.bytes_written, ==,
                     3 * 4096);
    g_assert_cmpuint(hist(&fx.t, 1), ==, 1);
    g_assert_cmpuint(hist(&fx.t, 3), ==, 1);
    g_assert_cmpuint(hist(&fx.t, 64), ==, 1);
    /* Three fetches of 10 us each, at least. */
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "fetches"), ==, 3);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "stall-ns"), >=, 3 * 10000);
    rsp = qtest_qmp(fx.t.qts, "{ 'execute': 'qom-get', 'arguments': "
                    "{ 'path': '/machine/peripheral/kona0', "
                    "'property': 'stats-text' } }");
    text = g_strdup(qdict_get_str(rsp, "return"));
    qobject_unref(rsp);
    g_assert_nonnull(strstr(text, "writeback=pages"));
    g_assert_nonnull(strstr(text, "latency model: 10000 ns per 4096-byte "
                            "fetch (legoos)"));
    /* The data itself is the guest's, whole pages or not. */
    g_assert_cmphex(qtest_readq(fx.t.qts, fx.t.window + 8), ==, 1);
    g_assert_cmphex(qtest_readb(fx.t.qts, fx.t.window + 5 * 4096 + 4095), ==,
                    4);
    remote_stop(&fx);

    remote_start(&fx, "cache-size=1M");
    text = g_strdup_printf("memnode=%s,writeback=pages,block-size=1K",
                           fx.addr);
    expect_failure(text, "writeback=pages needs 'block-size' of at least");
    g_free(text);
    text = g_strdup_printf("memnode=%s,writeback=dirty", fx.addr);
    expect_failure(text, "property 'writeback' must be lines or pages");
    remote_stop(&fx);
}

/* 16 KiB blocks: one write-back covers four pages. */
static void test_amplification_big_blocks(gconstpointer data)
{
    g_autofree char *props = g_strdup_printf("cache-size=1M,block-size=16K%s",
                                             (const char *)data);
    RemoteFixture fx = { 0 };
    uint64_t result;

    remote_start(&fx, props);
    qtest_writeq(fx.t.qts, fx.t.window + 0, 1);
    qtest_writeq(fx.t.qts, fx.t.window + 64, 1);
    qtest_writeq(fx.t.qts, fx.t.window + 3 * 4096, 1);
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_CLEAN, 0, 16384, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 3);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "writebacks"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "page-writeback-bytes"), ==,
                     2 * 4096);
    g_assert_cmpuint(hist(&fx.t, 2), ==, 1);
    g_assert_cmpuint(hist(&fx.t, 1), ==, 1);
    /* CLEAN keeps the block resident, and clean until written again. */
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "resident-blocks"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "dirty-lines"), ==, 0);
    qtest_writeq(fx.t.qts, fx.t.window + 128, 2);
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_COUNT_DIRTY, 0, 16384, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 1);
    remote_stop(&fx);
}

/*
 * A store that leaves a line's value as it was: a dirty line for the
 * modes that see every store (as for hardware), none for the fast mode's
 * comparison.  All write back byte-exact data.
 */
static void test_unchanged_store(void)
{
    static const struct {
        const char *props;
        bool sees_stores;
    } modes[] = {
        { "cache-size=1M", true },
        { "cache-size=1M,tracking=fast", false },
        { "cache-size=1M,tracking=stores", true },
    };

    for (int i = 0; i < G_N_ELEMENTS(modes); i++) {
        bool seen = modes[i].sees_stores;
        RemoteFixture fx = { 0 };
        uint64_t result, writes;

        remote_start(&fx, modes[i].props);
        /*
         * Served directly; in the fast mode as RAM, so the device does not
         * see the stores at all, only the misses they cause; in the stores
         * mode every store traps to the device.
         */
        g_assert_cmpuint(kona_qmp_direct_decoders(&fx.t, 1), ==, 1);
        writes = kona_qmp_stat(&fx.t, "writes");
        qtest_writeq(fx.t.qts, fx.t.window + 4096, 0);     /* as it was */
        qtest_writeq(fx.t.qts, fx.t.window + 8192, 0x42);  /* changed */
        g_assert_cmpuint(kona_qmp_stat(&fx.t, "writes"), ==,
                         writes + (seen ? 2 : 0));
        g_assert_cmpuint(kona_qmp_stat(&fx.t, "fetches"), ==, 2);
        g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_FLUSH, 0, 0, &result), ==,
                         KONA_CMD_STATUS_OK);
        g_assert_cmpuint(result, ==, seen ? 2 : 1);
        g_assert_cmpuint(kona_qmp_stat(&fx.t, "writeback-lines"), ==,
                         seen ? 2 : 1);
        g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_EVICT, 0, 256 * MiB,
                                  &result), ==, KONA_CMD_STATUS_OK);
        g_assert_cmphex(qtest_readq(fx.t.qts, fx.t.window + 8192), ==, 0x42);
        g_assert_cmphex(qtest_readq(fx.t.qts, fx.t.window + 4096), ==, 0);
        remote_stop(&fx);
    }
}

/* The guest runtime's view: frames, access bits, its own evictions. */
static void test_guest_policy(void)
{
    RemoteFixture fx = { 0 };
    uint64_t result, st;
    uint32_t nframes;
    int resident = 0;

    remote_start(&fx, "cache-size=64K");       /* 16 frames of 4 KiB */
    nframes = kona_reg_readl(&fx.t, KONA_REG_NFRAMES);
    g_assert_cmpuint(nframes, ==, 16);
    kona_reg_writel(&fx.t, KONA_REG_POLICY_MODE, KONA_MODE_GUEST);
    g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_POLICY_MODE), ==,
                     KONA_MODE_GUEST);
    for (int b = 0; b < 8; b++) {
        qtest_writeb(fx.t.qts, fx.t.window + b * 4096 + b, b);
    }
    kona_reg_writeq(&fx.t, KONA_REG_FRAME_SEL, 0);
    for (uint32_t f = 0; f < nframes; f++) {
        st = kona_reg_readq(&fx.t, KONA_REG_FRAME_STATE + 8 * f);
        if (st & KONA_FRAME_RESIDENT) {
            resident++;
            g_assert_true(st & KONA_FRAME_ACCESSED);
            g_assert_cmpuint(KONA_FRAME_DIRTY(st), ==, 1);
            g_assert_cmpuint(KONA_FRAME_BLOCK(st), <, 8);
        }
    }
    g_assert_cmpint(resident, ==, 8);

    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_CLEAR_ACCESSED, 0, nframes,
                              &result), ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 8);
    st = kona_reg_readq(&fx.t, KONA_REG_FRAME_STATE);
    g_assert_false(st & KONA_FRAME_ACCESSED);
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_CLEAR_ACCESSED, 10, 7, NULL),
                     ==, KONA_CMD_STATUS_INVALID_ARG);

    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_EVICT_FRAME, 0, 0, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 1);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "guest-evictions"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "resident-blocks"), ==, 7);

    /* Past the cache's end the device evicts by itself (forced). */
    for (int b = 8; b < 40; b++) {
        qtest_writeb(fx.t.qts, fx.t.window + b * 4096, b);
    }
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "forced-evictions"), ==,
                     40 - 1 - 16);
    for (int b = 0; b < 40; b++) {
        g_assert_cmpuint(qtest_readb(fx.t.qts, fx.t.window + b * 4096 +
                                     (b < 8 ? b : 0)), ==, b);
    }
    remote_stop(&fx);
}

/* DEVICE mode keeps the cache between the watermarks. */
static void test_watermarks(void)
{
    RemoteFixture fx = { 0 };

    remote_start(&fx, "cache-size=64K");
    /* A bad pair (low > high) is ignored. */
    kona_reg_writeq(&fx.t, KONA_REG_LOW_WM, 9 | (uint64_t)4 << 32);
    g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_HIGH_WM), ==, 16);
    kona_reg_writeq(&fx.t, KONA_REG_LOW_WM, 4 | (uint64_t)8 << 32);
    g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_LOW_WM), ==, 4);
    for (int b = 0; b < 30; b++) {
        qtest_writeb(fx.t.qts, fx.t.window + b * 4096, b);
        g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_RESIDENT), <=, 8);
    }
    g_assert_false(kona_reg_readl(&fx.t, KONA_REG_STATUS) &
                   KONA_STATUS_ABOVE_HIGH);
    for (int b = 0; b < 30; b++) {
        g_assert_cmpuint(qtest_readb(fx.t.qts, fx.t.window + b * 4096), ==,
                         b);
    }
    remote_stop(&fx);
}

/*
 * A guest that sets the low watermark to 0 asks for the whole cache to go
 * whenever the high one is passed: the device evicts in bounded batches
 * (an eighth of the cache per miss at most), not the whole cache under its
 * lock at once.
 */
static void test_watermark_batch(void)
{
    RemoteFixture fx = { 0 };
    uint64_t before;

    remote_start(&fx, "cache-size=64K");       /* 16 frames */
    kona_reg_writeq(&fx.t, KONA_REG_LOW_WM, 0 | (uint64_t)16 << 32);
    g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_LOW_WM), ==, 0);
    touch_blocks(&fx.t, 0, 16);
    g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_RESIDENT), ==, 16);
    before = kona_qmp_stat(&fx.t, "evictions");
    touch_blocks(&fx.t, 16, 1);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "evictions") - before, ==, 2);
    g_assert_cmpuint(kona_reg_readl(&fx.t, KONA_REG_RESIDENT), ==, 15);
    check_blocks(&fx.t, 0, 17);
    remote_stop(&fx);
}

/*
 * Hot-unplug (device_del, carried out when the slot is powered off, as a
 * guest would): every line written before it reaches the memnode, the
 * device's memory and mappings are released (the memnode sees no mapping
 * left), and QEMU goes on.
 */
static void test_unplug(gconstpointer mode)
{
    g_autofree char *props = g_strdup_printf("cache-size=1M,"
                                             "volume=unplug-test%s",
                                             (const char *)mode);
    RemoteFixture fx = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = NULL;
    uint8_t buf[4096], back[4096];
    KonaMemnodeStats st;
    uint64_t slab, size;
    QDict *rsp;

    remote_start_auth(&fx, props);
    mn_fill(buf, sizeof(buf), 7);
    for (int i = 0; i < 8; i++) {
        qtest_bufwrite(fx.t.qts, fx.t.window + i * MiB, buf, sizeof(buf));
    }
    g_assert_cmpuint(stats_at(fx.addr).mapped_slabs, ==, 1);
    qtest_qmp_device_del_send(fx.t.qts, "kona0");
    kona_qtest_slot_power_off(&fx.t);
    /*
     * Gone from the tree (QEMU 10.0 sends no DEVICE_DELETED for a CXL
     * type-3 device: it is never finalized; cxl-type3's own too).
     */
    for (int i = 0; i < 100; i++) {
        GString *json;
        bool present;

        rsp = qtest_qmp(fx.t.qts, "{ 'execute': 'qom-list', 'arguments': "
                        "{ 'path': '/machine/peripheral' } }");
        json = qobject_to_json(QOBJECT(rsp));
        present = strstr(json->str, "\"kona0\"") != NULL;
        g_string_free(json, true);
        qobject_unref(rsp);
        if (!present) {
            break;
        }
        g_usleep(50 * 1000);
    }
    rsp = qtest_qmp(fx.t.qts, "{ 'execute': 'query-status' }");
    g_assert_true(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);

    l = test_link(fx.addr, &err);
    g_assert_no_error(err);
    /* Written back and released a grace period after the unplug. */
    for (int i = 0; i < 100; i++) {
        g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
        if (!st.mapped_slabs) {
            break;
        }
        g_usleep(50 * 1000);
    }
    g_assert_cmpuint(st.mapped_slabs, ==, 0);
    g_assert_cmpint(kona_link_slab_attach(l, "unplug-test", 256 * MiB, false,
                                          &slab, &size, NULL, &err), ==, 0);
    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(kona_link_read(l, slab, i * MiB, back, sizeof(back),
                                       &err), ==, 0);
        g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    }
    remote_stop(&fx);
}

/*
 * One memnode serves 64 devices at once: 64 QEMUs, each with its own slab,
 * each writing and reading back a pattern of its own (with evictions: the
 * cache is smaller than what it writes), all connected together.
 */
static void test_many_devices(void)
{
    enum { N = 64 };
    RemoteFixture fx = { 0 };
    g_autofree char *props = NULL;
    g_autofree KonaQTest *t = g_new0(KonaQTest, N);
    uint8_t buf[4096], back[4096];
    KonaMemnodeStats st;

    memnode_start(&fx);
    props = g_strdup_printf("size=256M,memnode=%s,cache-size=16K", fx.addr);
    for (int i = 0; i < N; i++) {
        kona_qtest_start(&t[i], props);
        for (int b = 0; b < 8; b++) {
            mn_fill(buf, sizeof(buf), i * 1000 + b);
            qtest_bufwrite(t[i].qts, t[i].window + b * 4096, buf,
                           sizeof(buf));
        }
    }
    st = stats_at(fx.addr);
    g_assert_cmpuint(st.slabs, ==, N);
    g_assert_cmpuint(st.clients, >=, N);
    for (int i = 0; i < N; i++) {
        for (int b = 0; b < 8; b++) {
            mn_fill(buf, sizeof(buf), i * 1000 + b);
            qtest_bufread(t[i].qts, t[i].window + b * 4096, back,
                          sizeof(back));
            g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
        }
        g_assert_cmpuint(kona_qmp_stat(&t[i], "evictions"), >, 0);
        g_assert_cmpuint(kona_qmp_stat(&t[i], "remote-errors"), ==, 0);
    }
    for (int i = 0; i < N; i++) {
        kona_qtest_stop(&t[i]);
    }
    remote_stop(&fx);
}

/* At QEMU exit every dirty line reaches the memnode: reattach by name. */
static void test_flush_on_exit(void)
{
    RemoteFixture fx = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = NULL;
    uint8_t buf[4096], back[4096];
    uint64_t slab, size;
    bool created;

    remote_start_auth(&fx, "cache-size=1M,volume=flush-test");
    mn_fill(buf, sizeof(buf), 99);
    for (int i = 0; i < 8; i++) {
        qtest_bufwrite(fx.t.qts, fx.t.window + i * 1 * MiB, buf, sizeof(buf));
    }
    kona_qtest_stop(&fx.t);

    l = test_link(fx.addr, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_slab_attach(l, "flush-test", 256 * MiB, false,
                                          &slab, &size, &created, &err),
                    ==, 0);
    g_assert_false(created);
    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(kona_link_read(l, slab, i * 1 * MiB, back,
                                       sizeof(back), &err), ==, 0);
        g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    }
    remote_stop(&fx);
}

/* Random register writes, commands included, with a memnode behind. */
static void test_register_fuzz(void)
{
    GRand *rnd = g_rand_new_with_seed(1234);
    RemoteFixture fx = { 0 };

    remote_start(&fx, "cache-size=64K");
    qtest_writeq(fx.t.qts, fx.t.window + 12345 * 8, 0xfeedface);
    for (int i = 0; i < 3000; i++) {
        uint32_t off = g_rand_int_range(rnd, 0, KONA_REGS_SIZE / 4) * 4;
        uint64_t val = (uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd);

        if (i % 10 == 0) {
            /* A real command with random arguments. */
            kona_cmd(&fx.t, g_rand_int_range(rnd, 0, 9), val,
                     g_rand_int_range(rnd, 0, 1 << 20), NULL);
        } else if (off % 8 == 0 && g_rand_boolean(rnd)) {
            kona_reg_writeq(&fx.t, off, val);
        } else {
            kona_reg_writel(&fx.t, off, val);
        }
        kona_reg_readl(&fx.t, g_rand_int_range(rnd, 0, KONA_REGS_SIZE / 4) * 4);
        if (i % 100 == 0) {
            qtest_writeb(fx.t.qts,
                         fx.t.window + g_rand_int_range(rnd, 0, 1 << 24), i);
        }
    }
    g_rand_free(rnd);
    g_assert_cmphex(kona_reg_readl(&fx.t, KONA_REG_MAGIC), ==,
                    KONA_REGS_MAGIC_VALUE);
    g_assert_cmphex(qtest_readq(fx.t.qts, fx.t.window + 12345 * 8), ==,
                    0xfeedface);
    remote_stop(&fx);
}

static KonaMemnodeStats stats_at(const char *addr)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = test_link(addr, &err);
    KonaMemnodeStats st;

    g_assert_no_error(err);
    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    return st;
}

/*
 * Through the rack controller: the media is striped over two memnodes in
 * 4 MiB slabs, and data written over many times the cache comes back.
 */
static void test_rackctl(gconstpointer path)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *ctl_listen = g_strdup_printf("--listen=unix:%s/ctl.sock",
                                                  dir);
    const char *ctl_argv[] = { ctl_listen, "--slab-size=4M", NULL };
    MnProc *ctl = mn_proc_start(mn_rackctl_bin(), ctl_argv);
    g_autofree char *ctl_opt = g_strdup_printf("--controller=%s",
                                               ctl->addrs[0]);
    g_autofree char *props = g_strdup_printf("size=256M,rackctl=%s,"
                                             "cache-size=512K,remote-path=%s",
                                             ctl->addrs[0],
                                             (const char *)path);
    const size_t total = 16 * MiB;
    uint8_t buf[4096], back[4096];
    MnProc *node[2];
    KonaQTest t;

    for (int i = 0; i < 2; i++) {
        g_autofree char *l = g_strdup_printf("--listen=unix:%s/n%d.sock",
                                             dir, i);
        const char *argv[] = { l, ctl_opt, "--capacity=512M", NULL };

        node[i] = mn_proc_start(mn_memnode_bin(), argv);
    }
    kona_qtest_start(&t, props);
    /* 256 MiB in 4 MiB slabs: one copy per stripe. */
    g_assert_cmpuint(mapped_copies(&t), ==, want_mapped(props, 64));
    for (size_t off = 0; off < total; off += 64 * KiB) {
        mn_fill(buf, sizeof(buf), off);
        qtest_bufwrite(t.qts, t.window + off, buf, sizeof(buf));
    }
    for (size_t off = 0; off < total; off += 64 * KiB) {
        mn_fill(buf, sizeof(buf), off);
        qtest_bufread(t.qts, t.window + off, back, sizeof(back));
        g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    }
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);
    /*
     * Both memnodes hold part of the data the device wrote back (and have
     * counted it, write-backs through a mapping too, once flushed).
     */
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    for (int i = 0; i < 2; i++) {
        g_assert_cmpuint(stats_at(node[i]->addrs[0]).bytes_written, >, 0);
    }
    kona_qtest_stop(&t);
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(mn_proc_stop(node[i]), ==, 0);
        mn_proc_free(node[i]);
    }
    g_assert_cmpint(mn_proc_stop(ctl), ==, 0);
    mn_proc_free(ctl);
    mn_rm_rf(dir);
}

/* A memnode behind kona-faultproxy, and a control line to the proxy. */
typedef struct FaultFixture {
    RemoteFixture mn;
    MnProc *proxy;
    int control;
} FaultFixture;

static const char *faultproxy_bin(void)
{
    const char *bin = g_getenv("KONA_FAULTPROXY");

    g_assert(bin);
    return bin;
}

/* The proxy's answer to @cmd, in @buf. */
static void proxy_ask(FaultFixture *ff, const char *cmd, char *buf,
                      size_t size)
{
    g_autofree char *line = g_strdup_printf("%s\n", cmd);
    ssize_t n;

    g_assert_cmpint(write(ff->control, line, strlen(line)), ==,
                    strlen(line));
    n = read(ff->control, buf, size - 1);
    g_assert_cmpint(n, >, 0);
    buf[n] = 0;
}

static void proxy_command(FaultFixture *ff, const char *cmd)
{
    char buf[128];

    proxy_ask(ff, cmd, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "ok\n");
}

static void fault_start(FaultFixture *ff, const char *props)
{
    g_autofree char *listen = NULL, *control = NULL, *target = NULL;
    g_autofree char *all = NULL;
    g_autoptr(GError) err = NULL;

    memnode_start(&ff->mn);
    listen = g_strdup_printf("--listen=unix:%s/proxy.sock", ff->mn.dir);
    control = g_strdup_printf("--control=unix:%s/control.sock", ff->mn.dir);
    target = g_strdup_printf("--target=%s", ff->mn.addr);
    const char *argv[] = { listen, control, target, NULL };
    ff->proxy = mn_proc_start(faultproxy_bin(), argv);
    ff->control = kona_connect(ff->proxy->addrs[1], 5000, &err);
    g_assert_no_error(err);
    /*
     * Short timeouts: a vanished memnode is noticed within seconds.  The
     * faults are the network's, so the data must cross it: the socket
     * path (the shared one bypasses the proxy once mapped).
     */
    all = g_strdup_printf("size=256M,memnode=%s,timeout-ms=1000,"
                          "remote-path=socket,%s", ff->proxy->addrs[0],
                          props);
    kona_qtest_start(&ff->mn.t, all);
}

/*
 * The fixture's QEMU again, its device's two copies on @memnode and
 * @replica (one of them the proxy), @more properties after them.
 */
static void fault_restart_copies(FaultFixture *ff, const char *memnode,
                                 const char *replica, const char *more)
{
    g_autofree char *props = g_strdup_printf("size=256M,cache-size=64K,"
                                             "memnode=%s,replica=%s,%s",
                                             memnode, replica, more);

    kona_qtest_stop(&ff->mn.t);
    kona_qtest_start(&ff->mn.t, props);
}

static void fault_stop(FaultFixture *ff)
{
    close(ff->control);
    if (ff->mn.t.qts) {
        kona_qtest_stop(&ff->mn.t);
    }
    g_assert_cmpint(mn_proc_stop(ff->proxy), ==, 0);
    mn_proc_free(ff->proxy);
    remote_stop(&ff->mn);
}

/* Fetch blocks [first, first + n) by writing one byte in each. */
static void touch_blocks(KonaQTest *t, int first, int n)
{
    for (int b = first; b < first + n; b++) {
        qtest_writeb(t->qts, t->window + b * 4096 + 7, b);
    }
}

static void check_blocks(KonaQTest *t, int first, int n)
{
    for (int b = first; b < first + n; b++) {
        g_assert_cmpuint(qtest_readb(t->qts, t->window + b * 4096 + 7), ==,
                         b & 0xff);
    }
}

/* The bytes touch_blocks() wrote in blocks [first, first + n) read zero. */
static void check_zero_blocks(KonaQTest *t, int first, int n)
{
    for (int b = first; b < first + n; b++) {
        g_assert_cmpuint(qtest_readb(t->qts, t->window + b * 4096 + 7), ==,
                         0);
    }
}

/* A slow network stalls accesses (counted) but loses nothing. */
static void test_slow_network(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    uint64_t stall0, fetch0;
    int64_t t0;

    fault_start(&ff, "cache-size=64K");
    touch_blocks(t, 0, 20);
    stall0 = kona_qmp_stat(t, "stall-ns");
    fetch0 = kona_qmp_stat(t, "fetches");
    proxy_command(&ff, "delay 50");
    t0 = g_get_monotonic_time();
    touch_blocks(t, 20, 10);
    /* Each fetch waits for the delayed request and the delayed reply. */
    g_assert_cmpuint(kona_qmp_stat(t, "fetches") - fetch0, ==, 10);
    g_assert_cmpuint(kona_qmp_stat(t, "stall-ns") - stall0, >=,
                     10 * 100 * 1000000ull);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 10 * 100 * 1000);
    proxy_command(&ff, "pass");
    check_blocks(t, 0, 30);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, 0);
    fault_stop(&ff);
}

/*
 * The memnode vanishes: accesses that need it fail (counted, reads give
 * all ones), QEMU stays up, dirty data stays in the cache; when it is back
 * the device reconnects and nothing was lost.
 */
static void test_memnode_gone(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    QDict *rsp;

    fault_start(&ff, "cache-size=64K");
    touch_blocks(t, 0, 16);             /* fills the 16 frames, dirty */
    proxy_command(&ff, "refuse on");
    proxy_command(&ff, "cut");
    /* Needs a victim written back and a fetch: both impossible. */
    g_assert_cmphex(qtest_readq(t->qts, t->window + 100 * 4096), ==,
                    UINT64_MAX);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), >, 0);
    g_assert_true(kona_reg_readl(t, KONA_REG_STATUS) &
                  KONA_STATUS_REMOTE_ERR);
    rsp = qtest_qmp(t->qts, "{ 'execute': 'query-status' }");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    /* Resident data is still served without the memnode. */
    check_blocks(t, 0, 16);

    proxy_command(&ff, "pass");
    touch_blocks(t, 16, 16);            /* evicts all of 0..15 */
    check_blocks(t, 0, 32);
    fault_stop(&ff);
}

/*
 * A failed access does not hold its block failed for the next one: only
 * a vCPU's replay of the very access (TCG re-executes a failed mid-block
 * access alone to deliver its machine check) fails at once, and a QTest
 * access is never replayed.  Once the memnode is back, the next access
 * fetches, however soon it comes.
 */
static void test_failed_access_retry(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    uint64_t errors, misses;

    fault_start(&ff, "cache-size=64K");
    touch_blocks(t, 0, 16);             /* fills the 16 frames, dirty */
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    qtest_writeq(t->qts, t->window + 100 * 4096, 0x5a5a);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    proxy_command(&ff, "refuse on");
    proxy_command(&ff, "cut");
    errors = kona_qmp_stat(t, "remote-errors");
    misses = kona_qmp_stat(t, "misses");
    g_assert_cmpuint(kona_qmp_stat(t, "failed-accesses"), ==, 0);
    g_assert_cmphex(qtest_readq(t->qts, t->window + 100 * 4096), ==,
                    UINT64_MAX);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors") - errors, ==, 1);
    /* One access, one miss, answered with an error. */
    g_assert_cmpuint(kona_qmp_stat(t, "failed-accesses"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(t, "misses") - misses, ==, 1);
    proxy_command(&ff, "refuse off");
    g_assert_cmphex(qtest_readq(t->qts, t->window + 100 * 4096), ==,
                    0x5a5a);
    g_assert_cmpuint(kona_qmp_stat(t, "failed-accesses"), ==, 1);
    fault_stop(&ff);
}

/*
 * A miss that finds its memory node gone tries one dirty victim, not a
 * whole eviction batch: with half the cache dirty, the batch loop used to
 * try a dirty victim for every clean frame it evicted in its place (33
 * remote errors for this one read).  One failed write-back, one failed
 * fetch, one clean frame evicted to make room; the dirty lines stay in
 * the cache and reach the memnode once it is back.
 */
static void test_memnode_gone_batch(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    uint64_t errors, evictions;

    fault_start(&ff, "cache-size=1M");      /* 256 frames */
    touch_blocks(t, 0, 256);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    /* Every other block dirty again, the rest clean. */
    for (int b = 0; b < 256; b += 2) {
        qtest_writeb(t->qts, t->window + b * 4096 + 7, b);
    }
    /* A miss now evicts down to 192 frames, 64 at a time at most. */
    kona_reg_writeq(t, KONA_REG_LOW_WM, 192 | (uint64_t)256 << 32);
    proxy_command(&ff, "refuse on");
    proxy_command(&ff, "cut");
    errors = kona_qmp_stat(t, "remote-errors");
    evictions = kona_qmp_stat(t, "evictions");
    g_assert_cmphex(qtest_readq(t->qts, t->window + 1000 * 4096), ==,
                    UINT64_MAX);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors") - errors, ==, 2);
    g_assert_cmpuint(kona_qmp_stat(t, "evictions") - evictions, ==, 1);

    proxy_command(&ff, "refuse off");
    check_blocks(t, 0, 256);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    check_blocks(t, 0, 256);
    fault_stop(&ff);
}

/* A reply cut mid-frame: kona-link reconnects, the device retries. */
static void test_truncated_reply(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    uint64_t errors;

    fault_start(&ff, "cache-size=64K");
    touch_blocks(t, 0, 16);
    errors = kona_qmp_stat(t, "remote-errors");
    proxy_command(&ff, "truncate 1000");    /* inside the next 4 KiB reply */
    touch_blocks(t, 16, 4);
    check_blocks(t, 0, 20);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, errors);
    fault_stop(&ff);
}

static MnProc *memnode_at(const char *dir, const char *name)
{
    g_autofree char *l = g_strdup_printf("--listen=unix:%s/%s.sock", dir,
                                         name);
    const char *argv[] = { l, NULL };

    return mn_proc_start(mn_memnode_bin(), argv);
}

/* kona-cxl on @primary with a copy on @replica, over @path. */
static char *replica_props(MnProc *primary, MnProc *replica,
                           const char *path)
{
    return g_strdup_printf("size=256M,cache-size=64K,timeout-ms=2000,"
                           "memnode=%s,replica=%s,remote-path=%s",
                           primary->addrs[0], replica->addrs[0], path);
}

/*
 * A dead copy's memnode is back: it is tried at most 1 s after the last
 * attempt, and resynced in the background while the guest goes on.  Give
 * the device remote traffic (misses: blocks [first, first + n) written,
 * in turn) until it has finished, or 60 s.
 */
static void await_resync(KonaQTest *t, int first, int n)
{
    for (int i = 0; i < 3000 && !kona_qmp_stat(t, "resyncs"); i++) {
        touch_blocks(t, first + i % n, 1);
        g_usleep(20 * 1000);
    }
}

/*
 * With a replica: the primary dies (SIGKILL) and the guest's data keeps
 * flowing from the replica; a new primary is resynced from the replica;
 * then the replica dies and everything is still there, from the primary.
 */
static void test_replica_failover_resync(gconstpointer path)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *props = NULL;
    MnProc *primary = memnode_at(dir, "primary");
    MnProc *replica = memnode_at(dir, "replica");
    KonaQTest t;

    props = replica_props(primary, replica, path);
    kona_qtest_start(&t, props);
    g_assert_cmpuint(mapped_copies(&t), ==, want_mapped(props, 2));
    touch_blocks(&t, 0, 64);

    mn_proc_kill(primary);
    mn_proc_free(primary);
    touch_blocks(&t, 64, 64);
    check_blocks(&t, 0, 128);
    g_assert_cmpuint(kona_qmp_stat(&t, "failovers"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);

    /* A new primary at the same address. */
    primary = memnode_at(dir, "primary");
    await_resync(&t, 128, 32);
    touch_blocks(&t, 128, 8);
    g_assert_cmpuint(kona_qmp_stat(&t, "resyncs"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(&t, "resync-bytes"), ==, 256 * MiB);
    g_assert_cmpuint(mapped_copies(&t), ==, want_mapped(props, 2));

    mn_proc_kill(replica);
    mn_proc_free(replica);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    check_blocks(&t, 0, 136);
    g_assert_cmpuint(kona_qmp_stat(&t, "failovers"), ==, 2);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);

    kona_qtest_stop(&t);
    g_assert_cmpint(mn_proc_stop(primary), ==, 0);
    mn_proc_free(primary);
    mn_rm_rf(dir);
}

/*
 * The shared path is chosen where it is offered and only there:
 * remote-path=shared insists (start-up fails, naming the property, on a
 * TCP memnode, one started with --no-shared, or one whose descriptor is
 * short or cannot be mapped); auto falls back to the socket path in each
 * of those cases and the data is the same.
 */
static void test_shared_path_choice(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *unix_l = g_strdup_printf("--listen=unix:%s/mn.sock",
                                              dir);
    g_autofree char *plain_l = g_strdup_printf("--listen=unix:%s/plain.sock",
                                               dir);
    const char *argv[] = { unix_l, "--listen=tcp:127.0.0.1:0", NULL };
    const char *plain_argv[] = { plain_l, "--no-shared", NULL };
    MnProc *mn = mn_proc_start(mn_memnode_bin(), argv);
    MnProc *plain = mn_proc_start(mn_memnode_bin(), plain_argv);
    FaultFixture ff = { 0 };
    g_autofree char *props = NULL;
    static const char *const faults[] = {
        "shared off", "shm-fault short", "shm-fault unmappable",
    };

    props = g_strdup_printf("memnode=%s,remote-path=shared", mn->addrs[1]);
    expect_failure(props, "property 'remote-path': memory node");
    g_clear_pointer(&props, g_free);
    props = g_strdup_printf("memnode=%s,remote-path=shared",
                            plain->addrs[0]);
    expect_failure(props, "does not offer the shared path");
    g_clear_pointer(&props, g_free);
    props = g_strdup_printf("memnode=%s,remote-path=mmap", mn->addrs[0]);
    expect_failure(props, "property 'remote-path' must be auto, socket or "
                   "shared, not 'mmap'");
    g_clear_pointer(&props, g_free);

    /* auto: mapped where offered, the socket elsewhere; the same data. */
    for (int i = 0; i < 3; i++) {
        const char *addr = i == 0 ? mn->addrs[0] : i == 1 ? mn->addrs[1]
                                                          : plain->addrs[0];
        KonaQTest t;

        props = g_strdup_printf("size=256M,cache-size=64K,memnode=%s", addr);
        kona_qtest_start(&t, props);
        g_assert_cmpuint(mapped_copies(&t), ==, i == 0);
        touch_blocks(&t, 0, 32);
        check_blocks(&t, 0, 32);
        g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);
        kona_qtest_stop(&t);
        g_clear_pointer(&props, g_free);
    }

    /* Through the fault proxy, which relays descriptors or spoils them. */
    fault_start(&ff, "cache-size=64K");
    kona_qtest_stop(&ff.mn.t);
    for (int i = 0; i < G_N_ELEMENTS(faults); i++) {
        g_autofree char *err = NULL;

        proxy_command(&ff, "pass");
        proxy_command(&ff, "shm-fault off");
        proxy_command(&ff, "shared on");
        props = g_strdup_printf("size=256M,cache-size=64K,memnode=%s",
                                ff.proxy->addrs[0]);
        kona_qtest_start(&ff.mn.t, props);
        g_assert_cmpuint(mapped_copies(&ff.mn.t), ==, 1);
        kona_qtest_stop(&ff.mn.t);

        proxy_command(&ff, faults[i]);
        kona_qtest_start(&ff.mn.t, props);
        g_assert_cmpuint(mapped_copies(&ff.mn.t), ==, 0);
        touch_blocks(&ff.mn.t, 0, 32);
        check_blocks(&ff.mn.t, 0, 32);
        g_assert_cmpuint(kona_qmp_stat(&ff.mn.t, "remote-errors"), ==, 0);
        kona_qtest_stop(&ff.mn.t);
        g_clear_pointer(&props, g_free);

        props = g_strdup_printf(TOPOLOGY "-device kona-cxl,bus=rp0,"
                                "size=256M,memnode=%s,remote-path=shared",
                                ff.proxy->addrs[0]);
        g_assert_false(kona_qemu_starts(props, &err));
        g_assert_nonnull(strstr(err, "property 'remote-path'"));
        g_clear_pointer(&props, g_free);
    }
    ff.mn.t.qts = NULL;
    fault_stop(&ff);

    g_assert_cmpint(mn_proc_stop(plain), ==, 0);
    mn_proc_free(plain);
    g_assert_cmpint(mn_proc_stop(mn), ==, 0);
    mn_proc_free(mn);
    mn_rm_rf(dir);
}

/*
 * The memnode of a mapped slab dies (SIGKILL, no data directory): its
 * memory is gone, whatever the orphaned mapping still holds.  QEMU must not
 * die of it (no SIGBUS: the slab is a sealed memfd); the device notices
 * within a millisecond of its next remote access, and what needs the
 * memnode fails like on the socket path: counted, not silently served.
 */
static void test_shared_memnode_gone(void)
{
    RemoteFixture fx = { 0 };
    uint64_t result;
    QDict *rsp;

    remote_start(&fx, "cache-size=64K,timeout-ms=1000");
    g_assert_cmpuint(mapped_copies(&fx.t), ==, 1);
    touch_blocks(&fx.t, 0, 32);
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_FLUSH, 0, 0, &result), ==,
                     KONA_CMD_STATUS_OK);

    mn_proc_kill(fx.memnode);
    g_usleep(5 * 1000);
    /* Write-backs to make room need the memnode: they fail. */
    touch_blocks(&fx.t, 32, 32);
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_FLUSH, 0, 0, &result), ==,
                     KONA_CMD_STATUS_REMOTE_ERROR);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "remote-errors"), >, 0);
    g_assert_cmpuint(mapped_copies(&fx.t), ==, 1);
    /* QEMU is alive and answers. */
    rsp = qtest_qmp(fx.t.qts, "{ 'execute': 'query-status' }");
    g_assert_true(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    kona_qtest_stop(&fx.t);
    fx.t.qts = NULL;
    mn_proc_free(fx.memnode);
    mn_rm_rf(fx.dir);
    g_free(fx.dir);
    g_free(fx.addr);
}

/*
 * Slab isolation on the shared path: another client of the memnode cannot
 * read, map or free the device's slab (it is not open on its connection),
 * its own slab is other memory (zeros where the device wrote), and the
 * device's volume cannot be attached by its name: not without the key (the
 * device derives it from its secret), and not with it either while the
 * device holds it (exclusive: two QEMUs would corrupt each other).
 */
static void test_shared_isolation(void)
{
    RemoteFixture fx = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(KonaLink) l = NULL, keyed = NULL;
    uint8_t buf[4096], zero[4096] = { 0 };
    uint64_t mine, vol, size;
    KonaMemnodeStats st;

    remote_start_auth(&fx, "cache-size=64K,volume=iso");
    g_assert_cmpuint(mapped_copies(&fx.t), ==, 1);
    touch_blocks(&fx.t, 0, 32);
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);

    l = test_link(fx.addr, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
    g_assert_cmpuint(st.mapped_slabs, ==, 1);
    /* Slab ids are small numbers: try the first few. */
    for (uint64_t id = 1; id < 8; id++) {
        g_assert_cmpint(kona_link_read(l, id, 0, buf, sizeof(buf), &err), ==,
                        -EACCES);
        g_clear_error(&err);
        g_assert_cmpint(kona_link_slab_free(l, id, &err), ==, -EACCES);
        g_clear_error(&err);
        g_assert_null(kona_link_slab_map(l, id, &size, NULL, &err));
        g_clear_error(&err);
    }
    g_assert_cmpint(kona_link_slab_alloc(l, 256 * MiB, &mine, &err), ==, 0);
    for (int b = 0; b < 32; b++) {
        g_assert_cmpint(kona_link_read(l, mine, b * 4096, buf, sizeof(buf),
                                       &err), ==, 0);
        g_assert_cmpmem(buf, sizeof(buf), zero, sizeof(zero));
    }

    /* The name alone (a wrong key) opens nothing. */
    {
        uint8_t wrong[KONA_KEY_SIZE] = { 1, 2, 3 };

        g_assert_cmpint(kona_link_slab_attach_key(l, "iso", 0, 0, wrong,
                                                  &vol, &size, NULL, &err),
                        ==, -EACCES);
        g_clear_error(&err);
    }
    /* The right key (the same secret), while the device holds it: busy. */
    g_assert_cmpint(kona_link_slab_attach(l, "iso", 0, false, &vol, &size,
                                          NULL, &err), ==, -EBUSY);
    g_clear_error(&err);
    check_blocks(&fx.t, 0, 32);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "remote-errors"), ==, 0);
    kona_qtest_stop(&fx.t);
    fx.t.qts = NULL;
    /* The device is gone: its mapping is released, the volume free. */
    for (int i = 0; i < 50; i++) {
        g_assert_cmpint(kona_link_stats(l, &st, &err), ==, 0);
        if (st.mapped_slabs == 0) {
            break;
        }
        g_usleep(20 * 1000);
    }
    g_assert_cmpuint(st.mapped_slabs, ==, 0);
    keyed = test_link(fx.addr, &err);
    g_assert_cmpint(kona_link_slab_attach(keyed, "iso", 0, false, &vol,
                                          &size, NULL, &err), ==, 0);
    remote_stop(&fx);
}

/*
 * Replica failover on the shared path with the primary behind the fault
 * proxy (as tests/guest/replica-test has it): the primary memnode dies, the
 * proxy ends the device's connection, and the device notices on its next
 * access that needs the primary, even a read of a clean block through the
 * orphaned mapping, and carries on with the replica.
 */
static void test_shared_replica_via_proxy(void)
{
    FaultFixture ff = { 0 };
    g_autofree char *dir = mn_tmpdir();
    MnProc *replica = memnode_at(dir, "replica");
    KonaQTest *t = &ff.mn.t;

    fault_start(&ff, "cache-size=64K");
    fault_restart_copies(&ff, ff.proxy->addrs[0], replica->addrs[0],
                         "timeout-ms=2000,remote-path=shared");
    g_assert_cmpuint(mapped_copies(t), ==, 2);
    touch_blocks(t, 0, 64);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);

    mn_proc_kill(ff.mn.memnode);
    g_usleep(5 * 1000);
    check_blocks(t, 0, 64);
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 1);
    touch_blocks(t, 64, 64);
    check_blocks(t, 0, 128);
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 1);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, 0);
    g_assert_cmpuint(mapped_copies(t), ==, 1);

    kona_qtest_stop(t);
    t->qts = NULL;
    close(ff.control);
    g_assert_cmpint(mn_proc_stop(ff.proxy), ==, 0);
    mn_proc_free(ff.proxy);
    mn_proc_free(ff.mn.memnode);
    mn_rm_rf(ff.mn.dir);
    g_free(ff.mn.dir);
    g_free(ff.mn.addr);
    g_assert_cmpint(mn_proc_stop(replica), ==, 0);
    mn_proc_free(replica);
    mn_rm_rf(dir);
}

/*
 * Touch a block every 20 ms from @b on (the remote traffic drives the
 * resync) until the device reports one resync: the whole 256 MiB through
 * the proxy, so up to 90 s on a loaded machine.  Returns the next block.
 */
static int wait_resync(KonaQTest *t, int b)
{
    int64_t t0 = g_get_monotonic_time();

    while (kona_qmp_stat(t, "resyncs") == 0 &&
           g_get_monotonic_time() - t0 < 90 * G_USEC_PER_SEC) {
        touch_blocks(t, b++ % 256, 1);
        g_usleep(20 * 1000);
    }
    g_assert_cmpuint(kona_qmp_stat(t, "resyncs"), ==, 1);
    return b;
}

/*
 * After a resync of the replica: the primary dies and the replica alone
 * serves everything the test wrote (blocks 0..63, then 64..@b - 1, each
 * block's byte 7 its number).
 */
static void replica_alone(KonaQTest *t, MnProc *primary, int b)
{
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    mn_proc_kill(primary);
    mn_proc_free(primary);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    for (int i = 0; i < 256; i++) {
        uint8_t want = i < 64 || i < b ? i : 0;

        g_assert_cmpuint(qtest_readb(t->qts, t->window + i * 4096 + 7), ==,
                         want);
    }
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 2);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, 0);
}

/*
 * A dead replica's memnode is retried in the background: while it takes
 * connections and never answers (a blackholed host), no guest access
 * waits for the attempt (each would have waited a whole timeout), and once
 * it answers again it is resynced, with what was written meanwhile.
 */
static void test_resync_in_background(void)
{
    FaultFixture ff = { 0 };
    g_autofree char *dir = mn_tmpdir();
    MnProc *primary = memnode_at(dir, "primary");
    KonaQTest *t = &ff.mn.t;
    int64_t worst = 0, t0;
    int b = 64;

    fault_start(&ff, "cache-size=64K");
    fault_restart_copies(&ff, primary->addrs[0], ff.proxy->addrs[0],
                         "timeout-ms=1000");
    touch_blocks(t, 0, 32);
    proxy_command(&ff, "refuse on");
    proxy_command(&ff, "cut");
    touch_blocks(t, 32, 32);            /* write-backs: the replica fails */
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 1);

    /* Connections are taken and never answered: each try lasts 1 s. */
    proxy_command(&ff, "refuse off");
    proxy_command(&ff, "blackhole on");
    t0 = g_get_monotonic_time();
    while (g_get_monotonic_time() - t0 < 3 * G_USEC_PER_SEC) {
        int64_t a = g_get_monotonic_time();

        touch_blocks(t, b++ % 256, 1);
        worst = MAX(worst, g_get_monotonic_time() - a);
    }
    g_assert_cmpint(worst, <, G_USEC_PER_SEC / 2);
    g_assert_cmpuint(kona_qmp_stat(t, "resyncs"), ==, 0);

    /* The replica answers again: resynced in the background, then live. */
    proxy_command(&ff, "pass");
    b = wait_resync(t, b);
    replica_alone(t, primary, b);
    fault_stop(&ff);
    mn_rm_rf(dir);
}

/* A memnode with its own data directory and the test secret. */
static MnProc *memnode_data_at(const char *dir, const char *name)
{
    g_autofree char *l = g_strdup_printf("--listen=unix:%s/%s.sock", dir,
                                         name);
    g_autofree char *d = g_strdup_printf("--data-dir=%s/%s.data", dir, name);
    g_autofree char *secret = g_strdup_printf("--secret-file=%s",
                                              test_secret());
    const char *argv[] = { l, d, secret, "--auth-all", NULL };

    return mn_proc_start(mn_memnode_bin(), argv);
}

/*
 * A volume's replica is partitioned away and comes back: its memnode
 * still sees the device's old connection (the close was lost in the
 * partition), which holds the volume exclusively.  The background resync
 * must take the volume over from it (the device's own hold), and must
 * read the live copy without taking that copy away from the device.
 */
static void test_resync_volume_partition(void)
{
    FaultFixture ff = { 0 };
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *props = NULL, *first = NULL;
    MnProc *primary = memnode_data_at(dir, "primary");
    KonaQTest *t = &ff.mn.t;
    int b = 64;

    ff.mn.auth = true;                  /* volumes need the secret */
    first = g_strdup_printf("cache-size=64K,secret-file=%s", test_secret());
    fault_start(&ff, first);
    kona_qtest_stop(t);
    props = g_strdup_printf("size=256M,cache-size=64K,timeout-ms=1000,"
                            "remote-path=socket,volume=part,secret-file=%s,"
                            "memnode=%s,replica=%s", test_secret(),
                            primary->addrs[0], ff.proxy->addrs[0]);
    kona_qtest_start(t, props);
    touch_blocks(t, 0, 32);
    proxy_command(&ff, "partition on");
    touch_blocks(t, 32, 32);            /* write-backs: the replica fails */
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 1);

    proxy_command(&ff, "partition off");
    b = wait_resync(t, b);
    for (int i = 0; i < 16; i++) {      /* the primary still serves */
        touch_blocks(t, b++ % 256, 1);
    }
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, 0);
    replica_alone(t, primary, b);
    fault_stop(&ff);
    mn_rm_rf(dir);
}

/*
 * A volume with a replica, both memnodes keeping their slabs on disk: the
 * primary dies, the guest writes on (to the replica alone), QEMU ends, the
 * primary comes back with its old data.  A new QEMU on the volume must
 * read what the guest last wrote, not the primary's stale copy: the
 * memnodes keep a generation per copy, raised at the failover, and the
 * older copy is brought up to date before the guest reads anything.
 */
static void test_stale_copy_reattach(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *props = NULL;
    MnProc *primary = memnode_data_at(dir, "primary");
    MnProc *replica = memnode_data_at(dir, "replica");
    KonaQTest t;

    props = g_strdup_printf("size=256M,cache-size=64K,timeout-ms=2000,"
                            "volume=gen,secret-file=%s,memnode=%s,"
                            "replica=%s", test_secret(), primary->addrs[0],
                            replica->addrs[0]);
    kona_qtest_start(&t, props);
    touch_blocks(&t, 0, 32);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    mn_proc_kill(primary);
    mn_proc_free(primary);
    for (int b = 0; b < 32; b++) {
        qtest_writeb(t.qts, t.window + b * 4096 + 7, b + 100);
    }
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    g_assert_cmpuint(kona_qmp_stat(&t, "failovers"), ==, 1);
    kona_qtest_stop(&t);

    /* The primary is back with what it had when it died. */
    primary = memnode_data_at(dir, "primary");
    kona_qtest_start(&t, props);
    for (int b = 0; b < 32; b++) {
        g_assert_cmpuint(qtest_readb(t.qts, t.window + b * 4096 + 7), ==,
                         b + 100);
    }
    g_assert_cmpuint(kona_qmp_stat(&t, "resyncs"), ==, 1);
    /* Brought up to date: it alone serves the same data. */
    mn_proc_kill(replica);
    mn_proc_free(replica);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    for (int b = 0; b < 32; b++) {
        g_assert_cmpuint(qtest_readb(t.qts, t.window + b * 4096 + 7), ==,
                         b + 100);
    }
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);
    kona_qtest_stop(&t);
    g_assert_cmpint(mn_proc_stop(primary), ==, 0);
    mn_proc_free(primary);
    mn_rm_rf(dir);
}

/* Two memnodes under a rack controller, the media striped in 4 MiB. */
typedef struct RackFixture {
    char *dir;
    MnProc *ctl;
    MnProc *node[2];
    KonaQTest t;
} RackFixture;

static void rack_start(RackFixture *rf, const char *props)
{
    g_autofree char *ctl_listen = NULL, *ctl_opt = NULL, *all = NULL;

    rf->dir = mn_tmpdir();
    ctl_listen = g_strdup_printf("--listen=unix:%s/ctl.sock", rf->dir);
    const char *ctl_argv[] = { ctl_listen, "--slab-size=4M", NULL };
    rf->ctl = mn_proc_start(mn_rackctl_bin(), ctl_argv);
    ctl_opt = g_strdup_printf("--controller=%s", rf->ctl->addrs[0]);
    for (int i = 0; i < 2; i++) {
        g_autofree char *l = g_strdup_printf("--listen=unix:%s/n%d.sock",
                                             rf->dir, i);
        const char *argv[] = { l, ctl_opt, "--capacity=512M", NULL };

        rf->node[i] = mn_proc_start(mn_memnode_bin(), argv);
    }
    all = g_strdup_printf("size=256M,rackctl=%s,timeout-ms=1000,%s",
                          rf->ctl->addrs[0], props);
    kona_qtest_start(&rf->t, all);
}

/* Which node holds media offset @off: the one whose counters grow. */
static int rack_node_of(RackFixture *rf, uint64_t off)
{
    uint64_t before[2];

    for (int i = 0; i < 2; i++) {
        before[i] = stats_at(rf->node[i]->addrs[0]).lines_written;
    }
    qtest_writeb(rf->t.qts, rf->t.window + off, 0x5a);
    g_assert_cmpuint(kona_cmd(&rf->t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    for (int i = 0; i < 2; i++) {
        if (stats_at(rf->node[i]->addrs[0]).lines_written > before[i]) {
            return i;
        }
    }
    g_assert_not_reached();
}

static void rack_stop(RackFixture *rf)
{
    if (rf->t.qts) {
        kona_qtest_stop(&rf->t);
    }
    for (int i = 0; i < 2; i++) {
        if (rf->node[i]) {
            g_assert_cmpint(mn_proc_stop(rf->node[i]), ==, 0);
            mn_proc_free(rf->node[i]);
        }
    }
    g_assert_cmpint(mn_proc_stop(rf->ctl), ==, 0);
    mn_proc_free(rf->ctl);
    mn_rm_rf(rf->dir);
    g_free(rf->dir);
}

/*
 * An idle device's connection to the rack controller breaks (a proxy cuts
 * it): the controller keeps the unnamed allocation for its lease (2 s
 * here), and the device, though the guest does nothing, connects again
 * and reclaims it in time, so nothing it wrote is lost.
 */
static void test_rack_lease_keepalive(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *ctl_listen = g_strdup_printf("--listen=unix:%s/ctl.sock",
                                                  dir);
    const char *ctl_argv[] = { ctl_listen, "--slab-size=64M", "--lease=2",
                               NULL };
    MnProc *ctl = mn_proc_start(mn_rackctl_bin(), ctl_argv);
    g_autofree char *ctl_opt = g_strdup_printf("--controller=%s",
                                               ctl->addrs[0]);
    g_autofree char *l = g_strdup_printf("--listen=unix:%s/n0.sock", dir);
    const char *argv[] = { l, ctl_opt, "--capacity=512M", NULL };
    MnProc *node = mn_proc_start(mn_memnode_bin(), argv);
    g_autofree char *p_listen = g_strdup_printf("--listen=unix:%s/p.sock",
                                                dir);
    g_autofree char *p_control = g_strdup_printf("--control=unix:%s/pc.sock",
                                                 dir);
    g_autofree char *p_target = g_strdup_printf("--target=%s", ctl->addrs[0]);
    const char *p_argv[] = { p_listen, p_control, p_target, NULL };
    MnProc *proxy = mn_proc_start(faultproxy_bin(), p_argv);
    g_autofree char *props = g_strdup_printf("size=256M,cache-size=64K,"
                                             "rackctl=%s", proxy->addrs[0]);
    g_autoptr(GError) err = NULL;
    FaultFixture ff = { .proxy = proxy };
    KonaQTest t;

    ff.control = kona_connect(proxy->addrs[1], 5000, &err);
    g_assert_no_error(err);
    kona_qtest_start(&t, props);
    touch_blocks(&t, 0, 32);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    proxy_command(&ff, "cut");
    g_usleep(4 * G_USEC_PER_SEC);           /* twice the lease, idle */
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    check_blocks(&t, 0, 32);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);
    kona_qtest_stop(&t);
    close(ff.control);
    g_assert_cmpint(mn_proc_stop(proxy), ==, 0);
    mn_proc_free(proxy);
    g_assert_cmpint(mn_proc_stop(node), ==, 0);
    mn_proc_free(node);
    g_assert_cmpint(mn_proc_stop(ctl), ==, 0);
    mn_proc_free(ctl);
    mn_rm_rf(dir);
}

/*
 * One memnode of two dies with dirty lines bound for both: FLUSH (and so
 * the write-back at exit) still writes everything the healthy one should
 * get, whichever order the blocks are in, and reports the failures.
 */
static void test_flush_past_failure(gconstpointer path)
{
    g_autofree char *props = g_strdup_printf("cache-size=512K,"
                                             "remote-path=%s",
                                             (const char *)path);
    const uint64_t stripe = 4 * MiB;
    RackFixture rf = { 0 };
    uint64_t base, result;
    int dead, live;

    rack_start(&rf, props);
    dead = rack_node_of(&rf, 0);
    live = rack_node_of(&rf, stripe);
    g_assert_cmpint(dead, !=, live);
    /* Dirty blocks of the doomed node first: they come first in the cache. */
    for (int b = 1; b <= 8; b++) {
        qtest_writeb(rf.t.qts, rf.t.window + b * 4096, b);
    }
    for (int b = 1; b <= 8; b++) {
        qtest_writeb(rf.t.qts, rf.t.window + stripe + b * 4096, b);
    }
    base = stats_at(rf.node[live]->addrs[0]).lines_written;
    mn_proc_kill(rf.node[dead]);
    mn_proc_free(rf.node[dead]);
    rf.node[dead] = NULL;
    g_usleep(5 * 1000);

    g_assert_cmpuint(kona_cmd(&rf.t, KONA_CMD_FLUSH, 0, 0, &result), ==,
                     KONA_CMD_STATUS_REMOTE_ERROR);
    g_assert_cmpuint(stats_at(rf.node[live]->addrs[0]).lines_written - base,
                     ==, 8);
    /* Every block that could not be written back was counted. */
    g_assert_cmpuint(kona_qmp_stat(&rf.t, "remote-errors"), >=, 8);
    /* ... and kept, dirty: nothing was dropped. */
    g_assert_cmpuint(kona_qmp_stat(&rf.t, "dirty-lines"), ==, 8);
    rack_stop(&rf);
}

/*
 * A miss whose victim cannot be written back (its memnode is gone) takes
 * another victim, and the data from the healthy memnode arrives.
 */
static void test_room_past_failure(void)
{
    const uint64_t stripe = 4 * MiB;
    RackFixture rf = { 0 };
    int dead, live;

    rack_start(&rf, "cache-size=64K");     /* 16 frames */
    dead = rack_node_of(&rf, 0);
    live = rack_node_of(&rf, stripe);
    g_assert_cmpint(dead, !=, live);
    /* One block of the healthy node resident and clean, 15 dirty ones. */
    qtest_writeb(rf.t.qts, rf.t.window + stripe + 4096 + 7, 0x42);
    g_assert_cmpuint(kona_cmd(&rf.t, KONA_CMD_EVICT, 0, 256 * MiB, NULL),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(qtest_readb(rf.t.qts, rf.t.window + stripe + 4096 + 7),
                     ==, 0x42);
    for (int b = 1; b <= 15; b++) {
        qtest_writeb(rf.t.qts, rf.t.window + b * 4096, b);
    }
    g_assert_cmpuint(kona_qmp_stat(&rf.t, "resident-blocks"), ==, 16);
    mn_proc_kill(rf.node[dead]);
    mn_proc_free(rf.node[dead]);
    rf.node[dead] = NULL;
    g_usleep(5 * 1000);

    /* The healthy node's data still comes in. */
    qtest_writeb(rf.t.qts, rf.t.window + stripe + 2 * 4096 + 7, 0x43);
    g_assert_cmpuint(qtest_readb(rf.t.qts,
                                 rf.t.window + stripe + 2 * 4096 + 7), ==,
                     0x43);
    g_assert_cmpuint(kona_qmp_stat(&rf.t, "dirty-lines"), ==, 16);
    rack_stop(&rf);
}

/*
 * A memnode with a data directory restarts under a device that maps its
 * slab: the device reconnects, reopens the slab (same id and key, same
 * file) and maps it again; nothing is lost and nothing fails.
 */
static void test_shared_datadir_restart(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *listen = g_strdup_printf("--listen=unix:%s/mn.sock",
                                              dir);
    g_autofree char *data = g_strdup_printf("--data-dir=%s/data", dir);
    g_autofree char *secret = g_strdup_printf("--secret-file=%s",
                                              test_secret());
    g_autofree char *props = NULL;
    const char *argv[] = { listen, data, secret, "--auth-all", NULL };
    MnProc *mn = mn_proc_start(mn_memnode_bin(), argv);
    KonaQTest t;

    props = g_strdup_printf("size=256M,cache-size=64K,volume=dd,memnode=%s,"
                            "timeout-ms=2000,secret-file=%s", mn->addrs[0],
                            test_secret());
    kona_qtest_start(&t, props);
    g_assert_cmpuint(mapped_copies(&t), ==, 1);
    touch_blocks(&t, 0, 64);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);

    mn_proc_kill(mn);
    mn_proc_free(mn);
    mn = mn_proc_start(mn_memnode_bin(), argv);
    g_usleep(5 * 1000);
    touch_blocks(&t, 64, 64);
    check_blocks(&t, 0, 128);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);
    g_assert_cmpuint(mapped_copies(&t), ==, 1);
    kona_qtest_stop(&t);
    g_assert_cmpint(mn_proc_stop(mn), ==, 0);
    mn_proc_free(mn);
    mn_rm_rf(dir);
}

/* Cut every slab file in @dir to nothing, as anyone who may write them can. */
static void truncate_slab_files(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    unsigned n = 0;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        if (g_str_has_suffix(name, ".mem")) {
            g_assert_cmpint(truncate(path, 0), ==, 0);
            n++;
        }
    }
    g_assert_cmpuint(n, >, 0);
}

/*
 * A --data-dir slab file cannot be sealed, so someone may shrink it under
 * the device's mapping: a copy from or to the lost pages raises SIGBUS,
 * which ended QEMU.  Now the copy fails as a lost memnode would (the
 * access reads all ones, remote-errors counts it) and QEMU goes on.
 */
static void test_shared_datadir_truncated(void)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *listen = g_strdup_printf("--listen=unix:%s/mn.sock",
                                              dir);
    g_autofree char *data_dir = g_strdup_printf("%s/data", dir);
    g_autofree char *data = g_strdup_printf("--data-dir=%s", data_dir);
    g_autofree char *props = NULL;
    const char *argv[] = { listen, data, NULL };
    MnProc *mn = mn_proc_start(mn_memnode_bin(), argv);
    KonaQTest t;
    QDict *rsp;

    props = g_strdup_printf("size=256M,cache-size=64K,memnode=%s,"
                            "timeout-ms=1000,remote-path=shared",
                            mn->addrs[0]);
    kona_qtest_start(&t, props);
    g_assert_cmpuint(mapped_copies(&t), ==, 1);
    touch_blocks(&t, 0, 64);        /* 48 of them written back, 16 dirty */
    check_blocks(&t, 0, 8);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);

    truncate_slab_files(data_dir);
    /* Its fetch, and the write-back that makes room for it, fail. */
    g_assert_cmpuint(qtest_readb(t.qts, t.window + 20 * 4096 + 7), ==, 0xff);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), >, 0);
    g_assert_cmpuint(kona_qmp_stat(&t, "failed-accesses"), ==, 1);
    /* The cut file cannot be mapped again: the next fetch fails too. */
    g_assert_cmpuint(qtest_readb(t.qts, t.window + 21 * 4096 + 7), ==, 0xff);
    g_assert_cmpuint(kona_qmp_stat(&t, "failed-accesses"), ==, 2);
    rsp = qtest_qmp(t.qts, "{ 'execute': 'query-status' }");
    g_assert_true(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    kona_qtest_stop(&t);
    mn_proc_kill(mn);
    mn_proc_free(mn);
    mn_rm_rf(dir);
}

/* fetch-latency-ns models a slower network: every fetch waits that long. */
/*
 * The latency model: a miss takes max(real cost, modelled latency).  With
 * a 5 ms model every fetch waits for it, and the wait is counted as
 * modelled stall next to the real one.
 */
static void test_fetch_latency(void)
{
    RemoteFixture fx = { 0 };
    uint64_t stall, real, model;
    int64_t t0;

    remote_start(&fx, "cache-size=64K,fetch-latency-ns=5000000");
    t0 = g_get_monotonic_time();
    touch_blocks(&fx.t, 0, 20);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "fetches"), ==, 20);
    stall = kona_qmp_stat(&fx.t, "stall-ns");
    real = kona_qmp_stat(&fx.t, "stall-real-ns");
    model = kona_qmp_stat(&fx.t, "stall-model-ns");
    g_assert_cmpuint(stall, >=, 20 * 5000000ull);
    g_assert_cmpuint(stall, ==, real + model);
    /* A fetch here costs far less than 5 ms: the model is most of it. */
    g_assert_cmpuint(model, >, real);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 20 * 5000);
    check_blocks(&fx.t, 0, 20);
    remote_stop(&fx);

    /*
     * max(), not a sum: a model below the real cost of a socket fetch adds
     * nothing at all.
     */
    remote_start(&fx, "cache-size=64K,fetch-latency-ns=1,remote-path=socket");
    touch_blocks(&fx.t, 0, 20);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "fetches"), ==, 20);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "stall-model-ns"), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "stall-ns"), ==,
                     kona_qmp_stat(&fx.t, "stall-real-ns"));
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "stall-ns"), >, 0);
    remote_stop(&fx);
}

/* The paper's preset, its text, and the properties that exclude it. */
static void test_latency_preset(void)
{
    RemoteFixture fx = { 0 };
    g_autofree char *text = NULL;
    g_autofree char *props = NULL;
    QDict *rsp;

    remote_start(&fx, "cache-size=64K,block-size=64K,latency=kona-paper");
    rsp = qtest_qmp(fx.t.qts, "{ 'execute': 'qom-get', 'arguments': "
                    "{ 'path': '/machine/peripheral/kona0', "
                    "'property': 'stats-text' } }");
    text = g_strdup(qdict_get_str(rsp, "return"));
    qobject_unref(rsp);
    g_assert_nonnull(strstr(text, "latency model: 9280 ns per 65536-byte "
                            "fetch (kona-paper)"));
    for (int b = 0; b < 4; b++) {
        qtest_writeb(fx.t.qts, fx.t.window + b * 65536 + 7, b);
    }
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "fetches"), ==, 4);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "stall-ns"), >=,
                     kona_qmp_stat(&fx.t, "fetches") * 9280ull);
    remote_stop(&fx);

    remote_start(&fx, "cache-size=64K");
    props = g_strdup_printf("memnode=%s,latency=lan", fx.addr);
    expect_failure(props, "property 'latency' must be none, kona-paper, "
                   "legoos or infiniswap");
    g_clear_pointer(&props, g_free);
    props = g_strdup_printf("memnode=%s,latency=kona-paper,"
                            "latency-page-ns=100", fx.addr);
    expect_failure(props, "property 'latency' sets the latency-*-ns");
    g_clear_pointer(&props, g_free);
    props = g_strdup_printf("memnode=%s,fetch-latency-ns=10,"
                            "latency-line-ns=100", fx.addr);
    expect_failure(props, "property 'fetch-latency-ns' is one flat");
    g_clear_pointer(&props, g_free);
    props = g_strdup_printf("memnode=%s,latency-64k-ns=20000000000", fx.addr);
    expect_failure(props, "must be at most 10000000000 (10 s)");
    remote_stop(&fx);
}

/* A lost reply: the request times out and is retried on a new connection. */
static void test_dropped_reply(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    uint64_t stall0;

    fault_start(&ff, "cache-size=64K");
    touch_blocks(t, 0, 16);
    stall0 = kona_qmp_stat(t, "stall-ns");
    proxy_command(&ff, "drop 1");
    touch_blocks(t, 16, 1);
    check_blocks(t, 0, 17);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, 0);
    /* It waited for the 1 s request timeout. */
    g_assert_cmpuint(kona_qmp_stat(t, "stall-ns") - stall0, >=,
                     1000 * 1000000ull);
    fault_stop(&ff);
}

/*
 * Replies swapped in flight (a 2 MiB block is fetched as two pipelined
 * reads): the device must never take one chunk for the other.  The fetch
 * fails (all ones, counted) while the fault lasts and works after.
 */
static void test_reordered_replies(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;
    const uint64_t second = 4 * MiB + 1 * MiB + 8;  /* 2nd chunk of a block */

    fault_start(&ff, "cache-size=4M,block-size=2M");
    qtest_writeq(t->qts, t->window + second, 0x1234);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);
    proxy_command(&ff, "reorder on");
    g_assert_cmphex(qtest_readq(t->qts, t->window + second), ==, UINT64_MAX);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), >, 0);
    proxy_command(&ff, "pass");
    g_assert_cmphex(qtest_readq(t->qts, t->window + second), ==, 0x1234);
    fault_stop(&ff);
}

/*
 * QEMU's own resident memory, KiB (anonymous: not the memnode's slabs
 * that the shared path maps).
 */
static uint64_t qemu_rss_kib(KonaQTest *t)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status",
                                            qtest_pid(t->qts));
    g_autofree char *text = NULL;
    const char *at;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    at = strstr(text, "RssAnon:");
    g_assert_nonnull(at);
    return g_ascii_strtoull(at + 8, NULL, 10);
}

/* The CXL mailbox (BAR 2), CXL r3.1 8.2.8.4. */
#define MBOX            0x88
#define MBOX_CTRL       (MBOX + 0x04)
#define MBOX_CMD        (MBOX + 0x08)
#define MBOX_STS        (MBOX + 0x10)
#define MBOX_BG_STS     (MBOX + 0x18)
#define MBOX_SANITIZE   0x4400          /* command set 0x44, command 0 */
#define MBOX_BG_STARTED 1
#define MBOX_RC_INTERNAL_ERROR 4

/*
 * The guest's Sanitize (Overwrite) through the mailbox, run to completion
 * (a background command, ended on the virtual clock: 4 s here); returns
 * its return code.
 */
static unsigned mbox_sanitize(KonaQTest *t)
{
    uint64_t sts;
    int i;

    qtest_writeq(t->qts, t->devregs + MBOX_CMD, MBOX_SANITIZE);  /* len 0 */
    qtest_writel(t->qts, t->devregs + MBOX_CTRL, 1);     /* doorbell */
    for (i = 0; i < 100 && qtest_readl(t->qts, t->devregs + MBOX_CTRL) & 1;
         i++) {
        g_usleep(10 * 1000);
    }
    sts = qtest_readq(t->qts, t->devregs + MBOX_STS);
    g_assert_cmpuint(sts >> 32 & 0xffff, ==, MBOX_BG_STARTED);
    /* QEMU models 4 s for 512 MiB ... 30 s for 4 GiB */
    for (i = 0; i < 60; i++) {
        qtest_clock_step(t->qts, 1000 * 1000 * 1000);
        if ((qtest_readq(t->qts, t->devregs + MBOX_BG_STS) >> 16 & 0x7f) ==
            100) {
            break;
        }
    }
    sts = qtest_readq(t->qts, t->devregs + MBOX_BG_STS);
    g_assert_cmpuint(sts >> 16 & 0x7f, ==, 100);
    return sts >> 32 & 0xffff;
}

/*
 * The guest's Sanitize (Overwrite) through the mailbox: every byte the
 * guest sees afterwards is zero, the dirty lines in the cache included,
 * on the memnode too (a new look after evicting everything).  Neither
 * QEMU nor the memnode commits the media's size in RAM doing it: the
 * memnode is asked to ZERO each slab, which gives its memory back, where
 * writing zeroes over it would commit all of it (cxl-type3 zeroes its
 * backend with a memset, which for kona-cxl's reserved one committed
 * `size` bytes and erased nothing).
 */
static void test_sanitize(gconstpointer path)
{
    g_autofree char *props = g_strdup_printf("cache-size=64K,remote-path=%s",
                                             (const char *)path);
    RemoteFixture fx = { 0 };
    KonaQTest *t = &fx.t;
    KonaMemnodeStats before, after;
    uint64_t rss0, mn_rss0;

    remote_start(&fx, props);
    touch_blocks(t, 0, 32);             /* 16 written back, 16 dirty */
    before = memnode_stats(&fx);
    rss0 = qemu_rss_kib(t);
    mn_rss0 = mn_proc_rss_kib(fx.memnode->pid);

    g_assert_cmpuint(mbox_sanitize(t), ==, 0);          /* Success */

    g_assert_cmpuint(kona_qmp_stat(t, "resident-blocks"), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(t, "remote-errors"), ==, 0);
    after = memnode_stats(&fx);
    /*
     * The memnode zeroed all 256 MiB, and no zero crossed to do it (on the
     * shared path the notes of the earlier write-backs, batched, arrive
     * only now: a line or so of each of the 16 blocks).
     */
    g_assert_cmpuint(after.bytes_zeroed - before.bytes_zeroed, ==,
                     256 * MiB);
    g_assert_cmpuint(after.bytes_written - before.bytes_written, <=,
                     16 * 4096);
    g_assert_cmpuint(mn_proc_rss_kib(fx.memnode->pid), <, mn_rss0 + 16 * 1024);
    g_assert_cmpuint(qemu_rss_kib(t), <, rss0 + 64 * 1024);
    check_zero_blocks(t, 0, 32);
    /* And the device works on as before. */
    touch_blocks(t, 40, 32);
    check_blocks(t, 40, 32);
    remote_stop(&fx);
}

/*
 * A Sanitize while the memnode is unreachable fails (Internal Error), and
 * the data it was to erase never comes back: reads fail while the memnode
 * is away, and once it is back the device zeroes it before anything is
 * read or written back.
 */
static void test_sanitize_unreachable(void)
{
    FaultFixture ff = { 0 };
    KonaQTest *t = &ff.mn.t;

    fault_start(&ff, "cache-size=64K");
    touch_blocks(t, 0, 32);             /* 0..15 written back, 16.. dirty */
    proxy_command(&ff, "refuse on");
    proxy_command(&ff, "cut");
    g_assert_cmpuint(mbox_sanitize(t), ==, MBOX_RC_INTERNAL_ERROR);
    g_assert_cmpuint(kona_qmp_stat(t, "resident-blocks"), ==, 0);
    g_assert_cmphex(qtest_readq(t->qts, t->window + 4096), ==, UINT64_MAX);

    proxy_command(&ff, "refuse off");
    check_zero_blocks(t, 0, 32);
    g_assert_cmpuint(memnode_stats(&ff.mn).bytes_zeroed, ==, 256 * MiB);
    touch_blocks(t, 40, 32);
    check_blocks(t, 40, 32);
    fault_stop(&ff);
}

/*
 * A Sanitize while the replica's memnode is down: the live copy is zeroed
 * (Success), the dead one is declared so, and once a memnode is back at
 * its address it is resynced from the zeroed copy.  With the primary gone
 * too, the replica serves everything: zeroes where the guest sanitized,
 * and what it wrote since.
 */
static void test_replica_sanitize(gconstpointer path)
{
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *props = NULL;
    MnProc *primary = memnode_at(dir, "primary");
    MnProc *replica = memnode_at(dir, "replica");
    KonaQTest t;

    props = replica_props(primary, replica, path);
    kona_qtest_start(&t, props);
    touch_blocks(&t, 0, 64);            /* 48 written back to both copies */
    mn_proc_kill(replica);
    mn_proc_free(replica);

    g_assert_cmpuint(mbox_sanitize(&t), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&t, "failovers"), ==, 1);
    check_zero_blocks(&t, 0, 64);

    replica = memnode_at(dir, "replica");
    await_resync(&t, 128, 32);
    g_assert_cmpuint(kona_qmp_stat(&t, "resyncs"), ==, 1);
    touch_blocks(&t, 128, 32);          /* all of them, however few it took */
    touch_blocks(&t, 200, 8);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);

    mn_proc_kill(primary);
    mn_proc_free(primary);
    check_zero_blocks(&t, 0, 64);
    check_blocks(&t, 128, 32);
    check_blocks(&t, 200, 8);
    g_assert_cmpuint(kona_qmp_stat(&t, "failovers"), ==, 2);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);

    kona_qtest_stop(&t);
    g_assert_cmpint(mn_proc_stop(replica), ==, 0);
    mn_proc_free(replica);
    mn_rm_rf(dir);
}

/*
 * A Sanitize that takes the memnode longer than timeout-ms: the device
 * asks for the zeroing in pieces, each answered in time.  The test fills
 * a 4 GiB volume's slab through a mapping of its own first, so that the
 * memnode must free a million resident pages (0.15-0.3 s here); with
 * timeout-ms=50, one request for all of it timed out on every try ("no
 * reply to ZERO within 50 ms") and the Sanitize failed with Internal
 * Error.  A 64 MiB piece takes a few ms.
 */
static void test_sanitize_slow_zero(void)
{
    RemoteFixture fx = { .auth = true };
    g_autoptr(GError) err = NULL;
    g_autofree char *props = NULL;
    KonaLink *l;
    uint64_t vol, size;
    uint8_t *mem;

    memnode_start(&fx);
    l = test_link(fx.addr, &err);
    g_assert_no_error(err);
    g_assert_cmpint(kona_link_slab_attach(l, "slow-zero", 4 * GiB, true, &vol,
                                          &size, NULL, &err), ==, 0);
    mem = kona_link_slab_map(l, vol, &size, NULL, &err);
    g_assert_no_error(err);
    memset(mem, 0x5a, size);
    kona_link_slab_unmap(mem, size);
    kona_link_close(l);                 /* the device attaches it next */

    props = g_strdup_printf("size=4G,cache-size=64K,timeout-ms=50,"
                            "volume=slow-zero,secret-file=%s,memnode=%s",
                            test_secret(), fx.addr);
    kona_qtest_start(&fx.t, props);
    g_assert_cmphex(qtest_readb(fx.t.qts, fx.t.window + 7), ==, 0x5a);
    g_assert_cmpuint(mbox_sanitize(&fx.t), ==, 0);
    check_zero_blocks(&fx.t, 0, 32);
    g_assert_cmphex(qtest_readb(fx.t.qts, fx.t.window + 4 * GiB - 1), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&fx.t, "remote-errors"), ==, 0);
    g_assert_cmpuint(stats_at(fx.addr).bytes_zeroed, ==, 4 * GiB);
    remote_stop(&fx);
}

/* Bytes the proxy has relayed so far, both ways. */
static uint64_t proxy_bytes(FaultFixture *ff)
{
    uint64_t connections, bytes;
    char buf[160];

    proxy_ask(ff, "stats", buf, sizeof(buf));
    g_assert_cmpint(sscanf(buf, "connections %" SCNu64 " bytes %" SCNu64,
                           &connections, &bytes), ==, 2);
    return bytes;
}

/*
 * A Sanitize lands while a resync is filling a fresh replica from the
 * primary: what the resync copied before it is erased data, so the fresh
 * copy is zeroed when the resync finishes (kona_resync_note_zero) and then
 * gets the pages written since.  The replica is reached through the proxy
 * with the shared path hidden and every chunk held 3 ms, so its 256 MiB
 * take many seconds: the Sanitize comes once 16 MiB of them went through.
 * With the primary gone, the replica serves zeroes for all that was
 * written before the Sanitize and the data written after it.
 */
static void test_sanitize_mid_resync(void)
{
    FaultFixture ff = { 0 };
    g_autofree char *dir = mn_tmpdir();
    MnProc *primary = memnode_at(dir, "primary");
    KonaQTest *t = &ff.mn.t;
    uint64_t bytes0;
    int64_t t0;
    int i;

    fault_start(&ff, "cache-size=64K");
    fault_restart_copies(&ff, primary->addrs[0], ff.proxy->addrs[0],
                         "timeout-ms=1000");
    touch_blocks(t, 0, 64);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    proxy_command(&ff, "refuse on");
    proxy_command(&ff, "cut");
    touch_blocks(t, 64, 32);            /* write-backs: the replica fails */
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 1);

    proxy_command(&ff, "shared off");
    proxy_command(&ff, "delay 3");
    proxy_command(&ff, "refuse off");
    bytes0 = proxy_bytes(&ff);
    t0 = g_get_monotonic_time();
    /* The device's misses drive the resync; blocks 160..199 meanwhile. */
    for (i = 0; proxy_bytes(&ff) - bytes0 < 16 * MiB; i++) {
        g_assert_cmpint(g_get_monotonic_time() - t0, <,
                        60 * G_USEC_PER_SEC);
        touch_blocks(t, 160 + i % 40, 1);
        g_usleep(20 * 1000);
    }
    g_assert_cmpuint(kona_qmp_stat(t, "resyncs"), ==, 0);
    g_assert_cmpuint(mbox_sanitize(t), ==, 0);
    check_zero_blocks(t, 0, 256);

    /* After the Sanitize: blocks 200..255, then until the resync ends. */
    proxy_command(&ff, "delay 0");
    touch_blocks(t, 200, 56);
    await_resync(t, 200, 56);
    g_assert_cmpuint(kona_qmp_stat(t, "resyncs"), ==, 1);
    g_assert_cmpuint(kona_cmd(t, KONA_CMD_EVICT, 0, 256 * MiB, NULL), ==,
                     KONA_CMD_STATUS_OK);

    mn_proc_kill(primary);
    mn_proc_free(primary);
    check_zero_blocks(t, 0, 200);
    check_blocks(t, 200, 56);
    g_assert_cmpuint(kona_qmp_stat(t, "failovers"), ==, 2);
    fault_stop(&ff);
    mn_rm_rf(dir);
}

/*
 * QEMU dies (SIGKILL) after a FLUSH: a new QEMU with the same volume sees
 * every line written back before, and not the dirty lines that were only
 * in the dead QEMU's cache.
 */
static void test_crash_reattach(gconstpointer data)
{
    g_autofree char *first = g_strdup_printf("cache-size=64K,"
                                             "volume=crash-test%s",
                                             (const char *)data);
    RemoteFixture fx = { 0 };
    g_autofree char *props = NULL;
    KonaQTest t2;
    int status;

    remote_start_auth(&fx, first);
    touch_blocks(&fx.t, 0, 32);                 /* beyond the 16 frames */
    g_assert_cmpuint(kona_cmd(&fx.t, KONA_CMD_FLUSH, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    qtest_writeb(fx.t.qts, fx.t.window + 40 * 4096 + 7, 0x55);  /* unflushed */

    qtest_remove_abrt_handler(fx.t.qts);
    kill(qtest_pid(fx.t.qts), SIGKILL);
    waitpid(qtest_pid(fx.t.qts), &status, 0);
    g_assert_true(WIFSIGNALED(status));
    fx.t.qts = NULL;        /* dead: its QTestState is left alone */

    /* Read back in the exact mode, whichever mode wrote. */
    props = g_strdup_printf("size=256M,memnode=%s,cache-size=64K,"
                            "volume=crash-test,secret-file=%s", fx.addr,
                            test_secret());
    kona_qtest_start(&t2, props);
    check_blocks(&t2, 0, 32);
    g_assert_cmpuint(qtest_readb(t2.qts, t2.window + 40 * 4096 + 7), ==, 0);
    kona_qtest_stop(&t2);
    remote_stop(&fx);
}

/* Authentication towards a memnode that requires it. */
/*
 * Authentication towards a memnode that requires it: on TCP (the socket
 * path) and on a unix socket (@data "unix": the shared path, whose
 * descriptors are handed out only after AUTH).
 */
static void test_auth(gconstpointer data)
{
    bool on_unix = g_str_equal(data, "unix");
    g_autofree char *dir = mn_tmpdir();
    g_autofree char *secret = g_build_filename(dir, "secret", NULL);
    g_autofree char *wrong = g_build_filename(dir, "wrong", NULL);
    g_autofree char *opt = g_strdup_printf("--secret-file=%s", secret);
    g_autofree char *listen = on_unix
        ? g_strdup_printf("--listen=unix:%s/mn.sock", dir)
        : g_strdup("--listen=tcp:127.0.0.1:0");
    g_autofree char *args = NULL, *err = NULL;
    const char *argv[] = { listen, opt, "--auth-all", NULL };
    KonaQTest t;
    MnProc *mn;

    g_assert_true(g_file_set_contents(secret, "kona-test-secret-0123456789",
                                      -1, NULL));
    g_assert_true(g_file_set_contents(wrong, "not-the-secret-0123456789xx",
                                      -1, NULL));
    g_assert_cmpint(chmod(secret, 0600), ==, 0);
    g_assert_cmpint(chmod(wrong, 0600), ==, 0);
    mn = mn_proc_start(mn_memnode_bin(), argv);

    args = g_strdup_printf("size=256M,cache-size=64K,memnode=%s,"
                           "secret-file=%s", mn->addrs[0], secret);
    kona_qtest_start(&t, args);
    g_assert_cmpuint(mapped_copies(&t), ==, on_unix ? 1 : 0);
    touch_blocks(&t, 0, 32);
    check_blocks(&t, 0, 32);
    g_assert_cmpuint(kona_qmp_stat(&t, "remote-errors"), ==, 0);
    kona_qtest_stop(&t);
    g_free(args);
    args = g_strdup_printf(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,"
                           "memnode=%s", mn->addrs[0]);
    g_assert_false(kona_qemu_starts(args, &err));
    g_assert_nonnull(strstr(err, "property 'memnode'"));
    g_free(args);
    g_free(err);
    args = g_strdup_printf(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,"
                           "memnode=%s,secret-file=%s", mn->addrs[0], wrong);
    g_assert_false(kona_qemu_starts(args, &err));
    g_assert_nonnull(strstr(err, "property 'memnode'"));
    g_free(args);
    g_free(err);
    args = g_strdup_printf(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,"
                           "memnode=%s,secret-file=%s/none", mn->addrs[0],
                           dir);
    g_assert_false(kona_qemu_starts(args, &err));
    g_assert_nonnull(strstr(err, "property 'secret-file'"));
    g_assert_cmpint(mn_proc_stop(mn), ==, 0);
    mn_proc_free(mn);
    mn_rm_rf(dir);
}

static void expect_failure(const char *props, const char *needle)
{
    g_autofree char *args = g_strdup_printf(
        TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,%s", props);
    g_autofree char *err = NULL;

    g_assert_false(kona_qemu_starts(args, &err));
    if (!strstr(err, needle)) {
        g_error("'%s': expected '%s' in QEMU's error, got: %s", props,
                needle, err);
    }
}

static void test_bad_remote_properties(void)
{
    RemoteFixture fx = { 0 };
    g_autofree char *ok = NULL, *err = NULL, *props = NULL;

    memnode_start(&fx);
    ok = g_strdup_printf(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,"
                         "memnode=%s,cache-size=4M", fx.addr);
    if (!kona_qemu_starts(ok, &err)) {
        g_error("valid remote configuration failed to start: %s", err);
    }
    expect_failure("memnode=unix:/nonexistent/kona.sock",
                   "property 'memnode': cannot reach memory node "
                   "'unix:/nonexistent/kona.sock'");
    expect_failure("memnode=bogus", "property 'memnode'");
    expect_failure("rackctl=tcp:127.0.0.1:1", "property 'rackctl'");
    props = g_strdup_printf("memnode=%s,rackctl=%s", fx.addr, fx.addr);
    expect_failure(props, "properties 'memnode' and 'rackctl' exclude");
    g_free(props);
    props = g_strdup_printf("memnode=%s,cache-size=512M", fx.addr);
    expect_failure(props, "property 'cache-size' (536870912)");
    g_free(props);
    props = g_strdup_printf("memnode=%s,block-size=3000", fx.addr);
    expect_failure(props, "property 'block-size' (3000) must be a power "
                   "of two");
    g_free(props);
    props = g_strdup_printf("memnode=%s,policy=lru", fx.addr);
    expect_failure(props, "property 'policy' must be clock, fifo or random");
    expect_failure("cache-size=64M", "property 'cache-size' must equal "
                   "'size' without 'memnode'");
    expect_failure("volume=v1", "property 'volume' needs 'memnode'");
    g_free(props);
    props = g_strdup_printf("memnode=%s,volume=v1", fx.addr);
    expect_failure(props, "property 'volume' needs 'secret-file'");
    remote_stop(&fx);
}

int main(int argc, char **argv)
{
    static const char *const variants[][2] = {
        { "clock-4k", "cache-size=1M" },
        { "fifo-4k", "cache-size=512K,policy=fifo" },
        { "random-4k", "cache-size=512K,policy=random" },
        { "clock-64b", "cache-size=64K,block-size=64" },
        { "clock-1k", "cache-size=256K,block-size=1K" },
        { "clock-64k", "cache-size=1M,block-size=64K" },
        { "clock-2m", "cache-size=4M,block-size=2M" },
        { "fast-4k", "cache-size=1M,tracking=fast" },
        { "fast-64k", "cache-size=1M,block-size=64K,tracking=fast" },
        { "fast-2m", "cache-size=4M,block-size=2M,tracking=fast" },
        { "stores-4k", "cache-size=1M,tracking=stores" },
        { "stores-64k", "cache-size=1M,block-size=64K,tracking=stores" },
    };
    static const char *const modes[][2] = {
        { "exact", "" },
        { "fast", ",tracking=fast" },
        { "stores", ",tracking=stores" },
        { "exact-socket", ",remote-path=socket" },
        { "fast-socket", ",tracking=fast,remote-path=socket" },
    };

    g_test_init(&argc, &argv, NULL);
    g_assert(qtest_has_device("kona-cxl"));
    for (int i = 0; i < G_N_ELEMENTS(variants); i++) {
        g_autofree char *name = g_strdup_printf("/kona-remote/evict-refetch/%s",
                                                variants[i][0]);

        qtest_add_data_func(name, variants[i][1], test_evict_refetch);
    }
    for (int i = 0; i < G_N_ELEMENTS(modes); i++) {
        g_autofree char *wb = g_strdup_printf("/kona-remote/writeback-exact/%s",
                                              modes[i][0]);
        g_autofree char *amp = g_strdup_printf("/kona-remote/amplification/%s",
                                               modes[i][0]);
        g_autofree char *amp16 = g_strdup_printf(
            "/kona-remote/amplification-16k/%s", modes[i][0]);
        g_autofree char *crash = g_strdup_printf(
            "/kona-remote/fault/crash-reattach/%s", modes[i][0]);

        qtest_add_data_func(wb, modes[i][1], test_writeback_exact);
        qtest_add_data_func(amp, modes[i][1], test_amplification);
        qtest_add_data_func(amp16, modes[i][1],
                            test_amplification_big_blocks);
        qtest_add_data_func(crash, modes[i][1], test_crash_reattach);
    }
    qtest_add_func("/kona-remote/unchanged-store", test_unchanged_store);
    qtest_add_func("/kona-remote/guest-policy", test_guest_policy);
    qtest_add_func("/kona-remote/watermarks", test_watermarks);
    qtest_add_func("/kona-remote/watermark-batch", test_watermark_batch);
    qtest_add_func("/kona-remote/flush-on-exit", test_flush_on_exit);
    qtest_add_func("/kona-remote/many-devices", test_many_devices);
    qtest_add_data_func("/kona-remote/unplug/exact", "", test_unplug);
    qtest_add_data_func("/kona-remote/unplug/fast", ",tracking=fast",
                        test_unplug);
    qtest_add_data_func("/kona-remote/unplug/stores", ",tracking=stores",
                        test_unplug);
    qtest_add_func("/kona-remote/register-fuzz", test_register_fuzz);
    qtest_add_func("/kona-remote/bad-properties", test_bad_remote_properties);
    qtest_add_data_func("/kona-remote/rackctl/shared", "shared",
                        test_rackctl);
    qtest_add_data_func("/kona-remote/rackctl/socket", "socket",
                        test_rackctl);
    qtest_add_func("/kona-remote/fault/slow-network", test_slow_network);
    qtest_add_func("/kona-remote/fault/memnode-gone", test_memnode_gone);
    qtest_add_func("/kona-remote/fault/truncated-reply", test_truncated_reply);
    qtest_add_func("/kona-remote/fault/failed-access-retry",
                   test_failed_access_retry);
    qtest_add_func("/kona-remote/fault/memnode-gone-batch",
                   test_memnode_gone_batch);
    qtest_add_data_func("/kona-remote/fault/replica-failover-resync/shared",
                        "shared", test_replica_failover_resync);
    qtest_add_data_func("/kona-remote/fault/replica-failover-resync/socket",
                        "socket", test_replica_failover_resync);
    qtest_add_func("/kona-remote/fault/dropped-reply", test_dropped_reply);
    qtest_add_func("/kona-remote/fault/reordered-replies",
                   test_reordered_replies);
    qtest_add_data_func("/kona-remote/sanitize/socket", "socket",
                        test_sanitize);
    qtest_add_data_func("/kona-remote/sanitize/shared", "shared",
                        test_sanitize);
    qtest_add_func("/kona-remote/sanitize/unreachable",
                   test_sanitize_unreachable);
    qtest_add_data_func("/kona-remote/sanitize/replica/socket", "socket",
                        test_replica_sanitize);
    qtest_add_data_func("/kona-remote/sanitize/replica/shared", "shared",
                        test_replica_sanitize);
    qtest_add_func("/kona-remote/sanitize/mid-resync",
                   test_sanitize_mid_resync);
    qtest_add_func("/kona-remote/sanitize/slow-zero",
                   test_sanitize_slow_zero);
    qtest_add_data_func("/kona-remote/auth/tcp", "tcp", test_auth);
    qtest_add_data_func("/kona-remote/auth/unix", "unix", test_auth);
    qtest_add_func("/kona-remote/shared/path-choice",
                   test_shared_path_choice);
    qtest_add_func("/kona-remote/shared/memnode-gone",
                   test_shared_memnode_gone);
    qtest_add_func("/kona-remote/shared/isolation", test_shared_isolation);
    qtest_add_func("/kona-remote/shared/replica-via-proxy",
                   test_shared_replica_via_proxy);
    qtest_add_func("/kona-remote/fault/stale-copy-reattach",
                   test_stale_copy_reattach);
    qtest_add_func("/kona-remote/fault/rack-lease-keepalive",
                   test_rack_lease_keepalive);
    qtest_add_func("/kona-remote/fault/resync-in-background",
                   test_resync_in_background);
    qtest_add_func("/kona-remote/fault/resync-volume-partition",
                   test_resync_volume_partition);
    qtest_add_data_func("/kona-remote/fault/flush-past-failure/shared",
                        "shared", test_flush_past_failure);
    qtest_add_data_func("/kona-remote/fault/flush-past-failure/socket",
                        "socket", test_flush_past_failure);
    qtest_add_func("/kona-remote/fault/room-past-failure",
                   test_room_past_failure);
    qtest_add_func("/kona-remote/shared/datadir-restart",
                   test_shared_datadir_restart);
    qtest_add_func("/kona-remote/shared/datadir-truncated",
                   test_shared_datadir_truncated);
    qtest_add_func("/kona-remote/fetch-latency", test_fetch_latency);
    qtest_add_func("/kona-remote/latency-preset", test_latency_preset);
    qtest_add_func("/kona-remote/page-runtime", test_page_runtime);
    return g_test_run();
}

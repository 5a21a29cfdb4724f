/*
 * QTest for -device kona-cxl: data round-trips through the CXL window,
 * line-exact dirty tracking, control registers, property validation.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "kona-regs.h"
#include "kona-qtest-util.h"

#define MEDIA_PROPS "size=256M"

/* Bytes written through the window come back unchanged, at any size. */
static void test_roundtrip(void)
{
    KonaQTest t;
    QTestState *qts;
    g_autofree uint8_t *buf = g_malloc(8192);
    g_autofree uint8_t *back = g_malloc(8192);
    GRand *rnd = g_rand_new_with_seed(0x4b6f6e61);

    kona_qtest_start(&t, MEDIA_PROPS);
    qts = t.qts;
    g_assert_cmpuint(t.size, ==, 256 * MiB);

    qtest_writeq(qts, t.window, 0x1122334455667788ull);
    g_assert_cmphex(qtest_readq(qts, t.window), ==, 0x1122334455667788ull);
    g_assert_cmphex(qtest_readl(qts, t.window + 4), ==, 0x11223344);
    g_assert_cmphex(qtest_readw(qts, t.window + 1), ==, 0x6677);
    g_assert_cmphex(qtest_readb(qts, t.window + 7), ==, 0x11);

    /* Unaligned, crossing a 64 B line and a 4 KiB page. */
    qtest_writeq(qts, t.window + 60, 0xa1a2a3a4a5a6a7a8ull);
    g_assert_cmphex(qtest_readq(qts, t.window + 60), ==,
                    0xa1a2a3a4a5a6a7a8ull);
    qtest_writel(qts, t.window + 4094, 0xdeadbeef);
    g_assert_cmphex(qtest_readl(qts, t.window + 4094), ==, 0xdeadbeef);

    /* Random bytes at random places, last page of the media included. */
    for (int i = 0; i < 16; i++) {
        uint64_t off = g_rand_int_range(rnd, 0, (t.size - 8192) / 8) * 8 +
                       g_rand_int_range(rnd, 0, 8);

        if (i == 15) {
            off = t.size - 8192;
        }
        for (int j = 0; j < 8192; j++) {
            buf[j] = g_rand_int(rnd);
        }
        qtest_memwrite(qts, t.window + off, buf, 8192);
        qtest_memread(qts, t.window + off, back, 8192);
        g_assert_cmpmem(buf, 8192, back, 8192);
    }
    g_rand_free(rnd);
    kona_qtest_stop(&t);
}

/* Dirty mask of the 64 lines of group @g, read through the control BAR. */
static uint64_t dirty_group(KonaQTest *t, uint64_t g)
{
    kona_reg_writeq(t, KONA_REG_DIRTY_SEL, g);
    return kona_reg_readq(t, KONA_REG_DIRTY_MASK);
}

/*
 * Writes of every size and alignment mark exactly the 64 B lines they
 * touch; reads mark nothing.
 */
static void test_dirty_lines_exact(void)
{
    static const struct {
        uint64_t off;
        unsigned size;
    } writes[] = {
        { 0, 8 },                   /* line 0 */
        { 8, 1 },                   /* line 0 again */
        { 64 * 5 + 3, 2 },          /* line 5 */
        { 64 * 7 - 4, 8 },          /* lines 6 and 7 (crosses) */
        { 4096 - 2, 4 },            /* line 63 and line 64 (next page) */
        { 4096 * 100 + 64 * 33, 8 },/* group 100, line 33 */
        { 128 * MiB - 1, 1 },       /* last line of the first half */
        { 256 * MiB - 8, 8 },       /* last line of the media */
    };
    g_autoptr(GHashTable) expect = g_hash_table_new(g_int64_hash,
                                                    g_int64_equal);
    g_autofree uint64_t *lines = g_new(uint64_t, 2 * G_N_ELEMENTS(writes));
    unsigned nlines = 0;
    GHashTableIter it;
    gpointer key;
    KonaQTest t;
    uint64_t result;

    kona_qtest_start(&t, MEDIA_PROPS);
    g_assert_cmpuint(kona_qmp_stat(&t, "dirty-lines"), ==, 0);

    /* Reads never dirty a line. */
    for (int i = 0; i < 64; i++) {
        qtest_readq(t.qts, t.window + i * 4104);
    }
    g_assert_cmpuint(kona_qmp_stat(&t, "dirty-lines"), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&t, "reads"), ==, 64);

    for (int i = 0; i < G_N_ELEMENTS(writes); i++) {
        uint64_t a = t.window + writes[i].off;

        switch (writes[i].size) {
        case 1:
            qtest_writeb(t.qts, a, 0x5a);
            break;
        case 2:
            qtest_writew(t.qts, a, 0x5a5a);
            break;
        case 4:
            qtest_writel(t.qts, a, 0x5a5a5a5a);
            break;
        default:
            qtest_writeq(t.qts, a, 0x5a5a5a5a5a5a5a5aull);
            break;
        }
        for (uint64_t l = writes[i].off / 64;
             l <= (writes[i].off + writes[i].size - 1) / 64; l++) {
            if (!g_hash_table_contains(expect, &l)) {
                lines[nlines] = l;
                g_hash_table_add(expect, &lines[nlines++]);
            }
        }
    }
    g_assert_cmpuint(nlines, ==, 9);
    g_assert_cmpuint(kona_qmp_stat(&t, "dirty-lines"), ==, nlines);
    g_assert_cmpuint(kona_qmp_stat(&t, "lines-dirtied"), ==, nlines);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_STATS +
                                    8 * KONA_DEV_STAT_DIRTY_LINES), ==, nlines);

    /* Every group's mask holds exactly the expected lines. */
    g_hash_table_iter_init(&it, expect);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        uint64_t line = *(uint64_t *)key;
        uint64_t want = 0;

        for (unsigned i = 0; i < nlines; i++) {
            if (lines[i] / 64 == line / 64) {
                want |= 1ull << (lines[i] % 64);
            }
        }
        g_assert_cmphex(dirty_group(&t, line / 64), ==, want);
    }
    /* ... and untouched groups are clean. */
    g_assert_cmphex(dirty_group(&t, 2), ==, 0);
    g_assert_cmphex(dirty_group(&t, 99), ==, 0);
    g_assert_cmphex(dirty_group(&t, 101), ==, 0);

    /* COUNT_DIRTY and CLEAN agree with the log. */
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_COUNT_DIRTY, 0, 4096, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 5);    /* lines 0, 5, 6, 7 and 63 */
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_COUNT_DIRTY, 0, 8192, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 6);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_CLEAN, 0, 8192, &result),
                     ==, KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 6);
    /* Two blocks (pages) written back: 6 lines, against 2 whole pages. */
    g_assert_cmpuint(kona_qmp_stat(&t, "writebacks"), ==, 2);
    g_assert_cmpuint(kona_qmp_stat(&t, "writeback-bytes"), ==, 6 * 64);
    g_assert_cmpuint(kona_qmp_stat(&t, "page-writeback-bytes"), ==, 8192);
    g_assert_cmpuint(kona_qmp_stat(&t, "dirty-lines"), ==, nlines - 6);
    g_assert_cmphex(dirty_group(&t, 0), ==, 0);

    /* The same data written again dirties the lines again. */
    qtest_writeb(t.qts, t.window + 64 * 5 + 3, 0x5a);
    g_assert_cmpuint(kona_qmp_stat(&t, "dirty-lines"), ==, nlines - 5);
    g_assert_cmphex(dirty_group(&t, 0), ==, 1ull << 5);
    g_assert_cmpuint(kona_qmp_stat(&t, "writes"), ==,
                     G_N_ELEMENTS(writes) + 1);
    kona_qtest_stop(&t);
}

static void test_registers(void)
{
    KonaQTest t;
    uint64_t result = 1;

    kona_qtest_start(&t, MEDIA_PROPS);
    g_assert_cmpuint(kona_reg_readl(&t, KONA_REG_VERSION), ==,
                     KONA_REGS_VERSION_VALUE);
    g_assert_cmpuint(kona_reg_readl(&t, KONA_REG_LINE_SIZE), ==, 64);
    g_assert_cmpuint(kona_reg_readl(&t, KONA_REG_STATUS) &
                     KONA_STATUS_MEDIA_READY, ==, KONA_STATUS_MEDIA_READY);
    /* 32-bit halves of a 64-bit register. */
    g_assert_cmpuint(kona_reg_readl(&t, KONA_REG_MEDIA_SIZE), ==, 0x10000000);
    g_assert_cmpuint(kona_reg_readl(&t, KONA_REG_MEDIA_SIZE + 4), ==, 0);
    kona_reg_writel(&t, KONA_REG_CMD_ARG0 + 4, 0x12345678);
    kona_reg_writel(&t, KONA_REG_CMD_ARG0, 0x9abcdef0);
    g_assert_cmphex(kona_reg_readq(&t, KONA_REG_CMD_ARG0), ==,
                    0x123456789abcdef0ull);

    /* Ranges outside the media and unknown commands are refused. */
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_CLEAN, 256 * MiB - 64, 128,
                              &result), ==, KONA_CMD_STATUS_INVALID_ARG);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_COUNT_DIRTY, UINT64_MAX - 63, 128,
                              &result), ==, KONA_CMD_STATUS_INVALID_ARG);
    g_assert_cmpuint(kona_cmd(&t, 0xdead, 0, 0, &result), ==,
                     KONA_CMD_STATUS_UNKNOWN_CMD);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_NOP, 0, 0, &result), ==,
                     KONA_CMD_STATUS_OK);

    /* RESET_STATS zeroes the counters but not the dirty-line gauge. */
    qtest_writeq(t.qts, t.window + 128, 1);
    qtest_readq(t.qts, t.window + 128);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_RESET_STATS, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    g_assert_cmpuint(kona_qmp_stat(&t, "reads"), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&t, "writes"), ==, 0);
    g_assert_cmpuint(kona_qmp_stat(&t, "dirty-lines"), ==, 1);
    kona_qtest_stop(&t);
}

/* Random values at every register offset must not hurt QEMU or the data. */
static void test_register_garbage(void)
{
    GRand *rnd = g_rand_new_with_seed(0x6761726b);
    KonaQTest t;

    kona_qtest_start(&t, MEDIA_PROPS);
    qtest_writeq(t.qts, t.window + 4096, 0x0123456789abcdefull);
    for (int round = 0; round < 4; round++) {
        for (uint32_t off = 0; off < KONA_REGS_SIZE; off += 4) {
            uint64_t val = (uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd);

            if (off == KONA_REG_CMD && round == 0) {
                val = KONA_CMD_CLEAN;     /* a valid command, too */
            }
            if (off % 8 == 0 && g_rand_boolean(rnd)) {
                kona_reg_writeq(&t, off, val);
            } else {
                kona_reg_writel(&t, off, val);
            }
            kona_reg_readl(&t, off ^ 4);
        }
    }
    g_rand_free(rnd);
    /* The device still identifies itself and still holds the data. */
    g_assert_cmphex(kona_reg_readl(&t, KONA_REG_MAGIC), ==,
                    KONA_REGS_MAGIC_VALUE);
    g_assert_cmphex(qtest_readq(t.qts, t.window + 4096), ==,
                    0x0123456789abcdefull);
    kona_qtest_stop(&t);
}

/* The window selected by @index, through the registers. */
static void read_window(KonaQTest *t, uint64_t index, uint64_t *lines,
                        uint64_t *pages, uint64_t *huge)
{
    kona_reg_writeq(t, KONA_REG_WINDOW_SEL, index);
    *lines = kona_reg_readq(t, KONA_REG_WINDOW_LINES);
    *pages = kona_reg_readq(t, KONA_REG_WINDOW_PAGES);
    *huge = kona_reg_readq(t, KONA_REG_WINDOW_HUGE);
}

/*
 * Per-window tracking: distinct lines, pages and 2 MiB pages written in
 * each window of guest time, which qtest's virtual clock drives here.  In
 * every mode that sees each store (@data: extra properties).
 */
static void test_windows(gconstpointer data)
{
    g_autofree char *props = g_strdup_printf(MEDIA_PROPS "%s",
                                             (const char *)data);
    uint64_t lines, pages, huge, result;
    QDict *rsp;
    QList *list;
    QDict *first;
    KonaQTest t;

    kona_qtest_start(&t, props);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_NS), ==, 0);
    kona_reg_writeq(&t, KONA_REG_WINDOW_NS, NANOSECONDS_PER_SECOND);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_NS), ==,
                     NANOSECONDS_PER_SECOND);

    /* 4 lines (0, 1, 64, 32768), 3 pages, 2 huge pages; a read: none. */
    qtest_writeq(t.qts, t.window, 1);
    qtest_writeq(t.qts, t.window + 8, 2);
    qtest_writeq(t.qts, t.window + 60, 3);      /* lines 0 and 1 */
    qtest_writeb(t.qts, t.window + 4096, 4);
    qtest_writeq(t.qts, t.window + 2 * MiB, 5);
    qtest_readq(t.qts, t.window + 3 * MiB);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 0);
    qtest_clock_step(t.qts, NANOSECONDS_PER_SECOND);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 1);
    read_window(&t, 0, &lines, &pages, &huge);
    g_assert_cmpuint(lines, ==, 4);
    g_assert_cmpuint(pages, ==, 3);
    g_assert_cmpuint(huge, ==, 2);

    /* A new window counts the same line again; an idle one is empty. */
    qtest_writeq(t.qts, t.window, 6);
    qtest_clock_step(t.qts, NANOSECONDS_PER_SECOND);
    qtest_clock_step(t.qts, NANOSECONDS_PER_SECOND);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 3);
    read_window(&t, 1, &lines, &pages, &huge);
    g_assert_cmpuint(lines, ==, 1);
    g_assert_cmpuint(pages, ==, 1);
    read_window(&t, 2, &lines, &pages, &huge);
    g_assert_cmpuint(lines, ==, 0);
    read_window(&t, 3, &lines, &pages, &huge);   /* not closed yet */
    g_assert_cmpuint(pages, ==, 0);

    /* QMP sees the same windows. */
    rsp = qtest_qmp(t.qts, "{ 'execute': 'qom-get', 'arguments': "
                    "{ 'path': '/machine/peripheral/kona0', "
                    "'property': 'windows' } }");
    list = qdict_get_qlist(rsp, "return");
    g_assert_cmpuint(qlist_size(list), ==, 3);
    first = qobject_to(QDict, qlist_peek(list));
    g_assert_cmpuint(qdict_get_int(first, "lines"), ==, 4);
    g_assert_cmpuint(qdict_get_int(first, "pages"), ==, 3);
    g_assert_cmpuint(qdict_get_int(first, "huge-pages"), ==, 2);
    qobject_unref(rsp);

    /*
     * CLOSE_WINDOW ends the current window early, with what it saw so far,
     * and the next one is a whole window from then.
     */
    qtest_clock_step(t.qts, NANOSECONDS_PER_SECOND / 2);
    qtest_writeq(t.qts, t.window + 5 * 4096, 8);
    qtest_writeq(t.qts, t.window + 5 * 4096 + 64, 9);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_CLOSE_WINDOW, 0, 0, &result), ==,
                     KONA_CMD_STATUS_OK);
    g_assert_cmpuint(result, ==, 4);
    read_window(&t, 3, &lines, &pages, &huge);
    g_assert_cmpuint(lines, ==, 2);
    g_assert_cmpuint(pages, ==, 1);
    g_assert_cmpuint(huge, ==, 1);
    qtest_clock_step(t.qts, NANOSECONDS_PER_SECOND * 3 / 4);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 4);
    qtest_clock_step(t.qts, NANOSECONDS_PER_SECOND / 4);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 5);

    /* RESET_STATS drops them; out-of-range lengths are ignored; 0 is off. */
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_RESET_STATS, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_OK);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 0);
    kona_reg_writeq(&t, KONA_REG_WINDOW_NS, 500);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_NS), ==,
                     NANOSECONDS_PER_SECOND);
    kona_reg_writeq(&t, KONA_REG_WINDOW_NS, 0);
    g_assert_cmpuint(kona_cmd(&t, KONA_CMD_CLOSE_WINDOW, 0, 0, NULL), ==,
                     KONA_CMD_STATUS_INVALID_ARG);
    qtest_writeq(t.qts, t.window, 7);
    qtest_clock_step(t.qts, 3 * NANOSECONDS_PER_SECOND);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), ==, 0);
    /* The data itself is untouched by all this. */
    g_assert_cmpuint(qtest_readq(t.qts, t.window), ==, 7);
    kona_qtest_stop(&t);

    /* The property starts it at realize, in guest milliseconds. */
    kona_qtest_start(&t, MEDIA_PROPS ",window-ms=250");
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_NS), ==,
                     250 * SCALE_MS);
    qtest_writeq(t.qts, t.window + 8192, 1);
    qtest_clock_step(t.qts, 250 * SCALE_MS);
    g_assert_cmpuint(kona_reg_readq(&t, KONA_REG_WINDOW_COUNT), >=, 1);
    kona_qtest_stop(&t);
}

#define TOPOLOGY \
    "-machine q35,cxl=on " \
    "-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 " \
    "-device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 " \
    "-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G "

static void expect_start_failure(const char *device, const char *needle)
{
    g_autofree char *args = g_strdup_printf(TOPOLOGY "-device %s", device);
    g_autofree char *err = NULL;

    g_assert_false(kona_qemu_starts(args, &err));
    if (!strstr(err, needle)) {
        g_error("'-device %s': expected '%s' in QEMU's error, got: %s",
                device, needle, err);
    }
}

static void test_bad_properties(void)
{
    g_autofree char *err = NULL;

    /* The harness itself: a good configuration starts and quits. */
    if (!kona_qemu_starts(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M",
                          &err)) {
        g_error("valid kona-cxl configuration failed to start: %s", err);
    }
    expect_start_failure("kona-cxl,bus=rp0", "property 'size' must be set");
    expect_start_failure("kona-cxl,bus=rp0,size=100M",
                         "property 'size' (104857600) must be a multiple "
                         "of 256 MiB");
    expect_start_failure("kona-cxl,bus=rp0,size=2T",
                         "property 'size' (2199023255552) exceeds");
    expect_start_failure("kona-cxl,bus=rp0,size=lots", "'size'");
    expect_start_failure("kona-cxl,bus=pcie.0,size=256M",
                         "property 'bus' must name a CXL root port");
    /* No bus: QEMU itself picks pxb-cxl's bus, which takes only bridges. */
    expect_start_failure("kona-cxl,size=256M", "-device kona-cxl,size=256M: ");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,window-ms=3600001",
                         "property 'window-ms' must be at most 3600000");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,tracking=lazy",
                         "property 'tracking' must be exact, fast or "
                         "stores, not 'lazy'");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,tracking=fast,"
                         "block-size=1K", "property 'block-size' (1024) must "
                         "be at least the host page size");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,tracking=stores,"
                         "block-size=1K", "property 'block-size' (1024) must "
                         "be at least the host page size");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,tracking=fast,"
                         "window-ms=1000", "property 'window-ms' needs "
                         "tracking=exact or stores");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,direct-decode=maybe",
                         "direct-decode");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,promote=on",
                         "property 'promote': promote=on needs "
                         "tracking=stores");
    /* The qtest accelerator is not TCG: no TLB to give pages to. */
    expect_start_failure("kona-cxl,bus=rp0,size=256M,tracking=stores,"
                         "promote=on", "property 'promote': promote=on "
                         "works under TCG only");
    expect_start_failure("kona-cxl,bus=rp0,size=256M,promote=sometimes",
                         "promote");
    if (!kona_qemu_starts(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,"
                          "tracking=fast", &err)) {
        g_error("tracking=fast failed to start: %s", err);
    }
    if (!kona_qemu_starts(TOPOLOGY "-device kona-cxl,bus=rp0,size=256M,"
                          "tracking=stores,window-ms=1000", &err)) {
        g_error("tracking=stores failed to start: %s", err);
    }
    expect_start_failure("kona-cxl,bus=rp0,size=256M,volatile-memdev=m0 "
                         "-object memory-backend-ram,id=m0,size=256M",
                         "'volatile-memdev'");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    /* This suite exists to test kona-cxl: its absence is a failure. */
    g_assert(qtest_has_device("kona-cxl"));
    qtest_add_func("/kona-cxl/roundtrip", test_roundtrip);
    qtest_add_func("/kona-cxl/dirty-lines-exact", test_dirty_lines_exact);
    qtest_add_func("/kona-cxl/registers", test_registers);
    qtest_add_func("/kona-cxl/register-garbage", test_register_garbage);
    qtest_add_data_func("/kona-cxl/windows/exact", "", test_windows);
    qtest_add_data_func("/kona-cxl/windows/stores", ",tracking=stores",
                        test_windows);
    qtest_add_func("/kona-cxl/bad-properties", test_bad_properties);
    return g_test_run();
}

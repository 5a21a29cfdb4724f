/*
 * QTest for kona-cxl's direct decode: once the guest commits a decoder
 * that does not interleave, the device maps its media over the CXL window
 * itself.  The mapping must send every host address to the same device
 * address QEMU's own decode would, appear and disappear with the commit,
 * wait for the upstream decoders, and stay off when asked.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "kona-regs.h"
#include "kona-qtest-util.h"

#define PROPS "size=256M,cache-size=256M"

static bool mtree_has(KonaQTest *t, const char *name)
{
    g_autofree char *mtree = qtest_hmp(t->qts, "info mtree");

    return strstr(mtree, name) != NULL;
}

/* Dirty lines the device counts in media range [dpa, dpa + len). */
static uint64_t dirty_lines(KonaQTest *t, uint64_t dpa, uint64_t len)
{
    uint64_t n = 0;

    g_assert_cmpuint(kona_cmd(t, KONA_CMD_COUNT_DIRTY, dpa, len, &n), ==,
                     KONA_CMD_STATUS_OK);
    return n;
}

/*
 * Writes through the direct map land on the device addresses the window
 * decodes them to (dpa = hpa - window here), and the device sees each one.
 */
static void test_direct_maps_committed(void)
{
    static const uint64_t offs[] = {
        0, 64 * 3 + 5, 7 * 4096 + 64 * 9, 3 * MiB + 17, 256 * MiB - 1,
    };
    uint64_t writes;
    KonaQTest t;

    kona_qtest_start(&t, PROPS);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 1);
    g_assert_true(mtree_has(&t, "kona-direct"));
    writes = kona_qmp_stat(&t, "writes");
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        qtest_writeb(t.qts, t.window + offs[i], 0xa0 + i);
    }
    g_assert_cmpuint(kona_qmp_stat(&t, "writes"), ==,
                     writes + ARRAY_SIZE(offs));
    g_assert_cmpuint(dirty_lines(&t, 0, t.size), ==, ARRAY_SIZE(offs));
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        uint64_t line = offs[i] & ~63ull;

        g_assert_cmpuint(dirty_lines(&t, line, 64), ==, 1);
        g_assert_cmphex(qtest_readb(t.qts, t.window + offs[i]), ==, 0xa0 + i);
    }
    /* Wider accesses, unaligned, across a line and a block. */
    qtest_writeq(t.qts, t.window + 4096 - 4, 0x0102030405060708ull);
    g_assert_cmphex(qtest_readq(t.qts, t.window + 4096 - 4), ==,
                    0x0102030405060708ull);
    g_assert_cmpuint(dirty_lines(&t, 4096 - 64, 128), ==, 2);
    kona_qtest_stop(&t);
}

/* Uncommit unmaps; a new commit maps again, and the data is still there. */
static void test_direct_uncommit(void)
{
    KonaQTest t;

    kona_qtest_start(&t, PROPS);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 1);
    qtest_writeq(t.qts, t.window + 8192, 0x5555aaaa5555aaaaull);
    kona_qtest_uncommit(&t, false);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 0), ==, 0);
    g_assert_false(mtree_has(&t, "kona-direct"));
    kona_qtest_commit(&t, false);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 1);
    g_assert_cmphex(qtest_readq(t.qts, t.window + 8192), ==,
                    0x5555aaaa5555aaaaull);

    /* A reset uncommits every decoder without a register write. */
    qtest_qmp_assert_success(t.qts, "{ 'execute': 'system_reset' }");
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 0), ==, 0);
    kona_qtest_stop(&t);
}

/*
 * The endpoint committed before the host bridge: QEMU's decode does not
 * reach the device yet, so nothing is mapped; once it does, accesses
 * through the window make the device look again.
 */
static void test_direct_upstream_later(void)
{
    g_autofree uint8_t *buf = g_malloc(512 * KiB);
    KonaQTest t;

    kona_qtest_boot(&t, PROPS);
    kona_qtest_commit(&t, false);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 0);
    kona_qtest_commit(&t, true);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 0), ==, 0);
    /* 64 Ki accesses through the window's decode. */
    qtest_memread(t.qts, t.window, buf, 512 * KiB);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 1);
    qtest_writel(t.qts, t.window + 64, 0x12345678);
    g_assert_cmpuint(dirty_lines(&t, 64, 64), ==, 1);
    kona_qtest_stop(&t);
}

static void test_direct_off(void)
{
    KonaQTest t;

    kona_qtest_start(&t, PROPS ",direct-decode=off");
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 0);
    g_assert_false(mtree_has(&t, "kona-direct"));
    qtest_writeq(t.qts, t.window + 64, 0x1122334455667788ull);
    g_assert_cmphex(qtest_readq(t.qts, t.window + 64), ==,
                    0x1122334455667788ull);
    g_assert_cmpuint(dirty_lines(&t, 64, 64), ==, 1);
    kona_qtest_stop(&t);
}

static uint64_t direct_probes(KonaQTest *t)
{
    QDict *rsp = qtest_qmp(t->qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': '/machine/peripheral/kona0', "
                           "'property': 'direct-probes' } }");
    uint64_t n = qdict_get_int(rsp, "return");

    qobject_unref(rsp);
    return n;
}

/*
 * The decoder's base is the guest's choice.  The device checks it by
 * reading guest-physical addresses through QEMU's decode, so a base outside
 * the CXL window (over RAM or another device's registers, where a read can
 * have effects) must not be probed at all, nor mapped.
 */
static void test_direct_base_outside_window(void)
{
    KonaQTest t;

    kona_qtest_boot(&t, PROPS);
    kona_qtest_commit(&t, true);
    kona_qtest_commit_endpoint_at(&t, 16 * MiB);    /* guest RAM */
    g_usleep(200 * 1000);       /* the commit's bottom half has run */
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 0), ==, 0);
    g_assert_cmpuint(direct_probes(&t), ==, 0);
    /* Where the window is, the same decoder is probed and mapped. */
    kona_qtest_uncommit(&t, false);
    kona_qtest_commit(&t, false);
    g_assert_cmpuint(kona_qmp_direct_decoders(&t, 1), ==, 1);
    g_assert_cmpuint(direct_probes(&t), >, 0);
    kona_qtest_stop(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/kona-cxl/direct/maps-committed",
                   test_direct_maps_committed);
    qtest_add_func("/kona-cxl/direct/uncommit", test_direct_uncommit);
    qtest_add_func("/kona-cxl/direct/upstream-later",
                   test_direct_upstream_later);
    qtest_add_func("/kona-cxl/direct/off", test_direct_off);
    qtest_add_func("/kona-cxl/direct/base-outside-window",
                   test_direct_base_outside_window);
    return g_test_run();
}

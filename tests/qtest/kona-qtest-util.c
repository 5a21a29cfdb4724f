/*
 * Kona-CXL qtest helpers.
 *
 * There is no guest, so the test does what Linux's cxl_acpi/cxl_port/cxl_mem
 * drivers would: number the buses below the CXL host bridge, open the root
 * port's memory window, place the endpoint's BARs, and program and commit
 * the HDM decoders of the host bridge and of the endpoint.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qnum.h"
#include "kona-regs.h"
#include "kona-qtest-util.h"

/* Bus numbers: pxb-cxl's root bus 12 holds the root port 12:00.0. */
#define RP_BUS          12
#define EP_BUS          13

/* PCI memory the test hands out below 4 GiB. */
#define MMIO_BASE       0xe0000000ull
#define EP_COMPONENT    MMIO_BASE               /* BAR 0, 64 KiB */
#define EP_REGS         (MMIO_BASE + 0x100000)  /* BAR 5, 4 KiB */
#define EP_DEVREGS      (MMIO_BASE + 0x200000)  /* BAR 2, device registers */
#define MMIO_LIMIT      (MMIO_BASE + 0xffffff)

/* HDM decoder 0 within a component register block (cache_mem at 0x1000). */
#define HDM0_BASE_LO    0x1138
#define HDM0_BASE_HI    0x113c
#define HDM0_SIZE_LO    0x1140
#define HDM0_SIZE_HI    0x1144
#define HDM0_CTRL       0x1148
#define HDM0_TARGET_LO  0x114c
#define HDM_CTRL_COMMIT    (1u << 9)
#define HDM_CTRL_COMMITTED (1u << 10)

static void cfg_addr(QTestState *qts, int bus, int devfn, int reg)
{
    qtest_outl(qts, 0xcf8,
               0x80000000u | (bus << 16) | (devfn << 8) | (reg & 0xfc));
}

static void cfg_writel(QTestState *qts, int bus, int reg, uint32_t val)
{
    cfg_addr(qts, bus, 0, reg);
    qtest_outl(qts, 0xcfc, val);
}

static void cfg_writew(QTestState *qts, int bus, int reg, uint16_t val)
{
    cfg_addr(qts, bus, 0, reg);
    qtest_outw(qts, 0xcfc + (reg & 2), val);
}

static uint8_t cfg_readb(QTestState *qts, int bus, int reg)
{
    cfg_addr(qts, bus, 0, reg);
    return qtest_inb(qts, 0xcfc + (reg & 3));
}

static uint16_t cfg_readw(QTestState *qts, int bus, int reg)
{
    cfg_addr(qts, bus, 0, reg);
    return qtest_inw(qts, 0xcfc + (reg & 2));
}

void kona_qtest_slot_power_off(KonaQTest *t)
{
    uint8_t cap = cfg_readb(t->qts, RP_BUS, 0x34);
    uint16_t ctl;

    while (cap && cfg_readb(t->qts, RP_BUS, cap) != 0x10) {    /* PCIe */
        cap = cfg_readb(t->qts, RP_BUS, cap + 1);
    }
    g_assert_cmpuint(cap, !=, 0);
    /* Slot control: power indicator off, power controller off. */
    ctl = cfg_readw(t->qts, RP_BUS, cap + 0x18);
    cfg_writew(t->qts, RP_BUS, cap + 0x18, ctl | 0x0300 | 0x0400);
}

/* Start address of the first memory region named @name in "info mtree". */
static uint64_t mtree_find(QTestState *qts, const char *name)
{
    g_autofree char *mtree = qtest_hmp(qts, "info mtree");
    g_auto(GStrv) lines = g_strsplit(mtree, "\n", -1);
    size_t len = strlen(name);

    /* Lines: "  0000000110000000-000000020fffffff (prio 0, i/o): NAME" */
    for (char **l = lines; *l; l++) {
        const char *p = strstr(*l, "): ");

        if (p && strncmp(p + 3, name, len) == 0 &&
            strchr(" \r", p[3 + len])) {
            return g_ascii_strtoull(g_strchug(*l), NULL, 16);
        }
    }
    g_error("memory region '%s' not found in info mtree", name);
}

static void commit_hdm(QTestState *qts, uint64_t regs, uint64_t base,
                       uint64_t size)
{
    uint32_t ctrl;

    qtest_writel(qts, regs + HDM0_BASE_LO, (uint32_t)base);
    qtest_writel(qts, regs + HDM0_BASE_HI, base >> 32);
    qtest_writel(qts, regs + HDM0_SIZE_LO, (uint32_t)size);
    qtest_writel(qts, regs + HDM0_SIZE_HI, size >> 32);
    /* One way: the only target is port 0 (ignored by an endpoint). */
    qtest_writel(qts, regs + HDM0_TARGET_LO, 0);
    qtest_writel(qts, regs + HDM0_CTRL, HDM_CTRL_COMMIT);
    ctrl = qtest_readl(qts, regs + HDM0_CTRL);
    g_assert_cmphex(ctrl & HDM_CTRL_COMMITTED, ==, HDM_CTRL_COMMITTED);
}

static void uncommit_hdm(QTestState *qts, uint64_t regs)
{
    qtest_writel(qts, regs + HDM0_CTRL, 0);
    g_assert_cmphex(qtest_readl(qts, regs + HDM0_CTRL) & HDM_CTRL_COMMITTED,
                    ==, 0);
}

void kona_qtest_commit(KonaQTest *t, bool host_bridge)
{
    commit_hdm(t->qts, host_bridge ? t->host_regs : EP_COMPONENT, t->window,
               t->size);
}

void kona_qtest_commit_endpoint_at(KonaQTest *t, uint64_t base)
{
    commit_hdm(t->qts, EP_COMPONENT, base, t->size);
}

void kona_qtest_uncommit(KonaQTest *t, bool host_bridge)
{
    uncommit_hdm(t->qts, host_bridge ? t->host_regs : EP_COMPONENT);
}

void kona_qtest_start(KonaQTest *t, const char *device_props)
{
    kona_qtest_boot(t, device_props);
    kona_qtest_commit(t, true);
    kona_qtest_commit(t, false);
}

void kona_qtest_boot(KonaQTest *t, const char *device_props)
{
    QTestState *qts;

    qts = qtest_initf(
        "-machine q35,cxl=on -m 512M "
        "-device pxb-cxl,bus_nr=%d,bus=pcie.0,id=cxl.1,hdm_for_passthrough=on "
        "-device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 "
        "-device kona-cxl,bus=rp0,id=kona0,%s "
        "-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G",
        RP_BUS, device_props);
    t->qts = qts;
    t->size = 0;

    /* Root port: bus numbers, memory window, memory decoding on. */
    cfg_writel(qts, RP_BUS, 0x18, RP_BUS | EP_BUS << 8 | EP_BUS << 16);
    cfg_writel(qts, RP_BUS, 0x20,
               (MMIO_BASE >> 16) | ((MMIO_LIMIT >> 16) & 0xfff0) << 16);
    cfg_writew(qts, RP_BUS, 0x04, 0x0006);

    /*
     * Endpoint: BAR 0 (64-bit component registers), BAR 2 (64-bit device
     * registers: the mailbox), BAR 5 (kona regs).
     */
    cfg_writel(qts, EP_BUS, 0x10, (uint32_t)EP_COMPONENT);
    cfg_writel(qts, EP_BUS, 0x14, EP_COMPONENT >> 32);
    cfg_writel(qts, EP_BUS, 0x18, (uint32_t)EP_DEVREGS);
    cfg_writel(qts, EP_BUS, 0x1c, EP_DEVREGS >> 32);
    cfg_writel(qts, EP_BUS, 0x24, (uint32_t)EP_REGS);
    cfg_writew(qts, EP_BUS, 0x04, 0x0006);
    t->regs = EP_REGS;
    t->devregs = EP_DEVREGS;
    g_assert_cmphex(kona_reg_readl(t, KONA_REG_MAGIC), ==,
                    KONA_REGS_MAGIC_VALUE);
    t->size = kona_reg_readq(t, KONA_REG_MEDIA_SIZE);

    t->window = mtree_find(qts, "cxl-fixed-memory-region");
    t->host_regs = mtree_find(qts, "cxl_host_reg");
}

void kona_qtest_stop(KonaQTest *t)
{
    qtest_quit(t->qts);
    t->qts = NULL;
}

uint64_t kona_reg_readq(KonaQTest *t, uint32_t reg)
{
    return qtest_readq(t->qts, t->regs + reg);
}

uint32_t kona_reg_readl(KonaQTest *t, uint32_t reg)
{
    return qtest_readl(t->qts, t->regs + reg);
}

void kona_reg_writeq(KonaQTest *t, uint32_t reg, uint64_t val)
{
    qtest_writeq(t->qts, t->regs + reg, val);
}

void kona_reg_writel(KonaQTest *t, uint32_t reg, uint32_t val)
{
    qtest_writel(t->qts, t->regs + reg, val);
}

uint32_t kona_cmd(KonaQTest *t, uint32_t cmd, uint64_t arg0, uint64_t arg1,
                  uint64_t *result)
{
    kona_reg_writeq(t, KONA_REG_CMD_ARG0, arg0);
    kona_reg_writeq(t, KONA_REG_CMD_ARG1, arg1);
    kona_reg_writel(t, KONA_REG_CMD, cmd);
    if (result) {
        *result = kona_reg_readq(t, KONA_REG_CMD_RESULT);
    }
    return kona_reg_readl(t, KONA_REG_CMD_STATUS);
}

uint64_t kona_qmp_stat(KonaQTest *t, const char *name)
{
    QDict *rsp, *stats;
    uint64_t val;

    rsp = qtest_qmp(t->qts, "{ 'execute': 'qom-get', 'arguments': "
                    "{ 'path': '/machine/peripheral/kona0', "
                    "'property': 'stats' } }");
    g_assert(qdict_haskey(rsp, "return"));
    stats = qdict_get_qdict(rsp, "return");
    g_assert(qdict_haskey(stats, name));
    val = qnum_get_uint(qobject_to(QNum, qdict_get(stats, name)));
    qobject_unref(rsp);
    return val;
}

uint32_t kona_qmp_direct_decoders(KonaQTest *t, uint32_t want)
{
    gint64 deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
    uint32_t n;

    for (;;) {
        QDict *rsp = qtest_qmp(t->qts, "{ 'execute': 'qom-get', "
                               "'arguments': { 'path': "
                               "'/machine/peripheral/kona0', "
                               "'property': 'direct-decoders' } }");

        g_assert(qdict_haskey(rsp, "return"));
        n = qdict_get_int(rsp, "return");
        qobject_unref(rsp);
        if (n == want || g_get_monotonic_time() > deadline) {
            return n;
        }
        g_usleep(1000);
    }
}

bool kona_qemu_starts(const char *args, char **err)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    char *argv[] = { (char *)"/bin/sh", (char *)"-c", NULL, NULL };
    int status;
    GError *gerr = NULL;

    g_assert(qemu);
    /* If QEMU starts, the QMP commands on stdin make it quit at once. */
    cmd = g_strdup_printf(
        "printf '%%s\\n' '{\"execute\":\"qmp_capabilities\"}' "
        "'{\"execute\":\"quit\"}' | "
        "exec %s -accel qtest -display none -nodefaults -qmp stdio %s",
        qemu, args);
    argv[2] = cmd;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                      err, &status, &gerr)) {
        g_error("cannot run %s: %s", qemu, gerr->message);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Kona-CXL qtest helpers: boot a q35 CXL topology with a kona-cxl device and
 * program it the way a guest's CXL drivers would, without a guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_QTEST_UTIL_H
#define KONA_QTEST_UTIL_H

#include "libqtest.h"

typedef struct KonaQTest {
    QTestState *qts;
    uint64_t window;        /* host physical base of the committed HDM range */
    uint64_t size;          /* media size */
    uint64_t regs;          /* BAR 5, the kona control registers */
    uint64_t devregs;       /* BAR 2, CXL device registers (mailbox) */
    uint64_t host_regs;     /* the host bridge's component registers */
} KonaQTest;

/*
 * Boot q35 with a pxb-cxl host bridge (its HDM decoder in use), one CXL root
 * port and a kona-cxl device (id "kona0") with the given extra properties
 * (e.g. "size=256M"), then commit the host bridge and endpoint HDM decoders
 * so that [window, window + size) reaches the device's media.
 */
void kona_qtest_start(KonaQTest *t, const char *device_props);
void kona_qtest_stop(KonaQTest *t);
/* kona_qtest_start() without the commits: the test commits as it likes. */
void kona_qtest_boot(KonaQTest *t, const char *device_props);
/* (Un)commit HDM decoder 0 of the host bridge or of the endpoint. */
void kona_qtest_commit(KonaQTest *t, bool host_bridge);
void kona_qtest_uncommit(KonaQTest *t, bool host_bridge);
/*
 * Power the root port's slot off, as a guest does to complete an unplug
 * request (device_del): QEMU then removes the device.
 */
void kona_qtest_slot_power_off(KonaQTest *t);
/* Commit the endpoint's decoder 0 at host address @base (any, even bad). */
void kona_qtest_commit_endpoint_at(KonaQTest *t, uint64_t base);
/*
 * The device's "direct-decoders" property (decoder ranges it serves
 * itself), once it has settled: polled until it equals @want or a second
 * has passed.
 */
uint32_t kona_qmp_direct_decoders(KonaQTest *t, uint32_t want);

uint64_t kona_reg_readq(KonaQTest *t, uint32_t reg);
uint32_t kona_reg_readl(KonaQTest *t, uint32_t reg);
void kona_reg_writeq(KonaQTest *t, uint32_t reg, uint64_t val);
void kona_reg_writel(KonaQTest *t, uint32_t reg, uint32_t val);

/* Run a control command; returns its status, *result its result. */
uint32_t kona_cmd(KonaQTest *t, uint32_t cmd, uint64_t arg0, uint64_t arg1,
                  uint64_t *result);

/* One counter of the device's "stats" QOM property, read through QMP. */
uint64_t kona_qmp_stat(KonaQTest *t, const char *name);

/*
 * Start QEMU with @args and quit it through QMP.  Returns true if QEMU
 * started (and quit cleanly); otherwise false, with its error output in
 * *err (caller frees).
 */
bool kona_qemu_starts(const char *args, char **err);

#endif /* KONA_QTEST_UTIL_H */

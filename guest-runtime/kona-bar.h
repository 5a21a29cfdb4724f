/*
 * Kona-CXL guest runtime: find a kona-cxl device and map its control
 * registers (PCI BAR 5, layout in hw-kona/kona-regs.h) from user space.
 *
 * The device is a cxl-type3 subclass, so it has QEMU's cxl-type3 PCI ids;
 * what tells it apart from a plain cxl-type3 is KONA_REGS_MAGIC_VALUE at
 * offset 0 of BAR 5.  The BAR is mapped through sysfs
 * (/sys/bus/pci/devices/BDF/resource5): no kernel driver of our own, and
 * the stock cxl_pci driver keeps owning the device (it never touches BAR 5).
 *
 * Several processes may use the registers at once (konad and konactl):
 * a command is a sequence of stores (ARG0, ARG1, CMD) and the frame and
 * dirty windows are select-then-read, so every such sequence runs under
 * an advisory lock (flock on the resource file) shared by all of them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_BAR_H
#define KONA_BAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kona-regs.h"

/* QEMU's cxl-type3 (and so kona-cxl) PCI ids. */
#define KONA_PCI_VENDOR 0x8086
#define KONA_PCI_DEVICE 0x0d93

#define KONA_BDF_LEN    32
#define KONA_ERR_LEN    256

typedef struct KonaBar {
    int fd;                     /* open resource5, also the lock */
    volatile uint8_t *regs;     /* KONA_REGS_SIZE bytes of BAR 5 */
    size_t map_size;
    char bdf[KONA_BDF_LEN];     /* e.g. "0000:0d:00.0" */
} KonaBar;

/* Statistic names, the same as the device's QMP names (kona-stats.c). */
extern const char *const kona_bar_stat_names[KONA_DEV_STAT__COUNT];

/*
 * List the kona-cxl devices: fills up to @max BDFs, returns how many were
 * found (possibly more than @max), or -1 with @err set.
 */
int kona_bar_list(char (*bdfs)[KONA_BDF_LEN], int max, char *err);

/*
 * Map the control registers of the device @bdf, or of the first kona-cxl
 * device when @bdf is NULL or empty.  Returns 0, or -1 with @err set
 * (a sentence naming what is missing).
 */
int kona_bar_open(KonaBar *b, const char *bdf, char *err);
void kona_bar_close(KonaBar *b);

/* The advisory lock around multi-register sequences (see above). */
void kona_bar_lock(KonaBar *b);
void kona_bar_unlock(KonaBar *b);

static inline uint32_t kona_rd32(KonaBar *b, unsigned off)
{
    return *(volatile uint32_t *)(b->regs + off);
}

static inline uint64_t kona_rd64(KonaBar *b, unsigned off)
{
    return *(volatile uint64_t *)(b->regs + off);
}

static inline void kona_wr32(KonaBar *b, unsigned off, uint32_t val)
{
    *(volatile uint32_t *)(b->regs + off) = val;
}

static inline void kona_wr64(KonaBar *b, unsigned off, uint64_t val)
{
    *(volatile uint64_t *)(b->regs + off) = val;
}

static inline uint64_t kona_stat(KonaBar *b, unsigned stat)
{
    return kona_rd64(b, KONA_REG_STATS + 8 * stat);
}

/*
 * Run one command (caller holds the lock): ARG0, ARG1, CMD; returns
 * KONA_CMD_STATUS_*, and RESULT in @result if not NULL.
 */
uint32_t kona_bar_cmd_locked(KonaBar *b, uint32_t cmd, uint64_t arg0,
                             uint64_t arg1, uint64_t *result);
/* The same, taking the lock around it. */
uint32_t kona_bar_cmd(KonaBar *b, uint32_t cmd, uint64_t arg0, uint64_t arg1,
                      uint64_t *result);
const char *kona_cmd_status_str(uint32_t status);

/*
 * Read the frame window: states of frames [first, first + n), n <= 256
 * (caller holds the lock).
 */
void kona_bar_read_frames_locked(KonaBar *b, uint64_t first, unsigned n,
                                 uint64_t *states);

/* Parse a size or address: decimal, 0x hex, optional K/M/G suffix. */
bool kona_parse_u64(const char *s, uint64_t *val);
/* Parse a watermark: frames (<= @nframes), or N% of @nframes. */
bool kona_parse_wm(const char *s, uint32_t nframes, uint32_t *out);

#endif /* KONA_BAR_H */

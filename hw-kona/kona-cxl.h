/*
 * Kona-CXL: a CXL type-3 memory expander whose media passes through Kona
 * code on every guest access.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_KONA_CXL_H
#define HW_KONA_CXL_H

#include "hw/cxl/cxl_device.h"
#include "kona-dirty.h"
#include "kona-regs.h"

#define TYPE_KONA_CXL "kona-cxl"
OBJECT_DECLARE_TYPE(KonaCxlState, KonaCxlClass, KONA_CXL)

/* HDM decoders commit in 256 MiB units, so the media comes in those. */
#define KONA_SIZE_ALIGN (256 * MiB)
#define KONA_SIZE_MAX   (1 * TiB)
/* Fetch unit; the media is local for now, so it only sets the geometry. */
#define KONA_BLOCK_SIZE 4096

struct KonaCxlState {
    CXLType3Dev parent_obj;

    /* Properties */
    uint64_t size;

    /* Media: a RAM backend that cxl-type3 decodes to, overlaid by media_io */
    HostMemoryBackend *media_backend;
    MemoryRegion media_io;
    uint8_t *media;

    KonaDirtyLog lines;
    uint64_t stats[KONA_DEV_STAT__COUNT];

    /* Control registers (BAR 5) */
    MemoryRegion regs;
    uint32_t cmd_status;
    uint64_t cmd_arg[2];
    uint64_t cmd_result;
    uint64_t dirty_sel;
};

struct KonaCxlClass {
    CXLType3Class parent_class;

    void (*parent_realize)(PCIDevice *pci_dev, Error **errp);
    void (*parent_exit)(PCIDevice *pci_dev);
};

/* kona-regs.c */
extern const MemoryRegionOps kona_regs_ops;

/* kona-stats.c */
extern const char *const kona_stat_names[KONA_DEV_STAT__COUNT];
void kona_cxl_stats_add_properties(ObjectClass *oc);
void kona_cxl_stats_reset(KonaCxlState *s);

#endif /* HW_KONA_CXL_H */

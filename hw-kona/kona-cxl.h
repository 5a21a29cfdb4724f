/*
 * Kona-CXL: a CXL type-3 memory expander whose media is a local cache of
 * memory that lives on remote memory nodes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_KONA_CXL_H
#define HW_KONA_CXL_H

#include "qemu/notify.h"
#include "qemu/thread.h"
#include "hw/cxl/cxl_device.h"
#include "kona-cache.h"
#include "kona-regs.h"
#include "kona-remote.h"
#include "kona-window.h"

#define TYPE_KONA_CXL "kona-cxl"
OBJECT_DECLARE_TYPE(KonaCxlState, KonaCxlClass, KONA_CXL)

/* HDM decoders commit in 256 MiB units, so the media comes in those. */
#define KONA_SIZE_ALIGN         (256 * MiB)
#define KONA_SIZE_MAX           (1 * TiB)
#define KONA_DEFAULT_CACHE_SIZE (64 * MiB)
#define KONA_DEFAULT_BLOCK_SIZE 4096

struct KonaCxlState {
    CXLType3Dev parent_obj;

    /* Properties */
    uint64_t size;
    uint64_t cache_size;
    uint64_t block_size;
    char *memnode;
    char *replica;
    char *rackctl;
    char *volume;
    char *secret_file;
    char *policy;
    uint64_t fetch_latency_ns;
    uint32_t timeout_ms;
    uint32_t window_ms;

    /* cxl-type3 decodes to this backend's region; media_io overlays it */
    HostMemoryBackend *media_backend;
    MemoryRegion media_io;
    void *cache_mem;
    size_t cache_mem_size;

    /*
     * Everything below is guarded by @lock.  Lock order: the BQL, then
     * @lock; a thread that holds @lock never waits for the BQL, and one
     * that holds the BQL only ever try-locks @lock (kona-media.c).
     */
    QemuMutex lock;
    KonaCache cache;
    KonaRemote remote;
    uint64_t stats[KONA_DEV_STAT__COUNT];
    uint64_t hist[KONA_HIST_BUCKETS];
    uint32_t low_wm, high_wm;
    uint32_t policy_mode;
    bool remote_error;
    KonaWindow window;
    uint64_t window_ns;         /* 0: per-window tracking off */
    QEMUTimer *window_timer;    /* QEMU_CLOCK_VIRTUAL: guest time */

    /* Control registers (BAR 5) */
    MemoryRegion regs;
    uint32_t cmd_status;
    uint64_t cmd_arg[2];
    uint64_t cmd_result;
    uint64_t dirty_sel;
    uint64_t frame_sel;
    uint64_t window_sel;

    Notifier shutdown_notifier;
    Notifier exit_notifier;
    Error *migration_blocker;
};

struct KonaCxlClass {
    CXLType3Class parent_class;

    void (*parent_realize)(PCIDevice *pci_dev, Error **errp);
    void (*parent_exit)(PCIDevice *pci_dev);
};

/* kona-media.c: the access path and what it needs from memory nodes */
typedef struct KonaLockState {
    bool bql_dropped;
} KonaLockState;

extern const MemoryRegionOps kona_media_ops;
void kona_lock(KonaCxlState *s, KonaLockState *ls);
void kona_unlock(KonaCxlState *s, KonaLockState *ls);
/* Write back (and with @evict, drop) resident blocks in a media range. */
int kona_clean_range(KonaCxlState *s, KonaLockState *ls, uint64_t addr,
                     uint64_t len, bool evict, uint64_t *count, Error **errp);
int kona_evict_frame(KonaCxlState *s, KonaLockState *ls, uint32_t frame,
                     bool forced, Error **errp);
/* Count, flag and (rate-limited) report a failed remote access. */
void kona_remote_failed(KonaCxlState *s, Error *err);
/* Write back every dirty line and flush the memory nodes. */
int kona_flush_all(KonaCxlState *s, KonaLockState *ls, uint64_t *lines,
                   Error **errp);

/* kona-regs.c */
extern const MemoryRegionOps kona_regs_ops;

/* kona-stats.c */
extern const char *const kona_stat_names[KONA_DEV_STAT__COUNT];
uint64_t kona_stat_get(KonaCxlState *s, unsigned stat);
void kona_cxl_stats_add_properties(ObjectClass *oc);
void kona_cxl_stats_reset(KonaCxlState *s);
/* Per-window tracking: set the window length (0: off); lock held. */
bool kona_windows_set_period(KonaCxlState *s, uint64_t ns);
void kona_windows_restart(KonaCxlState *s);
/* Close the current window now (false if tracking is off); lock held. */
bool kona_windows_close_now(KonaCxlState *s);
void kona_windows_arm(KonaCxlState *s);
bool kona_windows_init(KonaCxlState *s, Error **errp);
void kona_windows_destroy(KonaCxlState *s);
void kona_cxl_windows_add_properties(ObjectClass *oc);

#endif /* HW_KONA_CXL_H */

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

/* tracking=fast (kona-fast.c): the media as guest RAM, faults by uffd */
typedef struct KonaFast {
    uint8_t *mem;               /* the media, by address; NULL: exact mode */
    MemoryRegion ram;
    int uffd;
    int stop_fd;                /* eventfd that ends the fault thread */
    QemuThread thread;
    bool running;
    bool stopping;
} KonaFast;

/* A committed decoder's host range, served by the device itself. */
typedef struct KonaDirect {
    MemoryRegion alias;         /* of the media, mapped at @hpa */
    uint64_t hpa, dpa, size;
    bool mapped;
} KonaDirect;

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
    bool direct_decode;
    char *tracking;

    /* cxl-type3 decodes to this backend's region; media_io overlays it */
    HostMemoryBackend *media_backend;
    MemoryRegion media_io;
    void *cache_mem;
    size_t cache_mem_size;
    KonaFast fast;

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

    /* Direct decode (kona-direct.c); BQL */
    KonaDirect direct[CXL_HDM_DECODER_COUNT];
    QEMUBH *direct_bh;
    bool direct_pending;        /* a committed decoder is not mapped yet */
    uint64_t direct_probe_dpa;  /* where the last probe landed */
    uint32_t direct_slow_count;

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
    ResettablePhases parent_phases;
};

/* kona-media.c: the access path and what it needs from memory nodes */
typedef struct KonaLockState {
    bool bql_dropped;
} KonaLockState;

extern const MemoryRegionOps kona_media_ops;
/*
 * Make @block resident (room, fetch, install); its frame, or KONA_NO_FRAME
 * if the memory node failed.  Lock held.
 */
uint32_t kona_fault_in(KonaCxlState *s, KonaLockState *ls, uint64_t block);
void kona_lock(KonaCxlState *s, KonaLockState *ls);
void kona_unlock(KonaCxlState *s, KonaLockState *ls);
/* Write back (and with @evict, drop) resident blocks in a media range. */
int kona_clean_range(KonaCxlState *s, KonaLockState *ls, uint64_t addr,
                     uint64_t len, bool evict, uint64_t *count, Error **errp);
int kona_evict_frame(KonaCxlState *s, KonaLockState *ls, uint32_t frame,
                     bool forced, Error **errp);
/* Anonymous memory, populated only when touched; errors name @prop. */
void *kona_map_anon(uint64_t size, const char *prop, Error **errp);
/* Count, flag and (rate-limited) report a failed remote access. */
void kona_remote_failed(KonaCxlState *s, Error *err);
/* Write back every dirty line and flush the memory nodes. */
int kona_flush_all(KonaCxlState *s, KonaLockState *ls, uint64_t *lines,
                   Error **errp);

/* kona-fast.c: tracking=fast */
static inline bool kona_fast_enabled(const KonaCxlState *s)
{
    return s->fast.mem != NULL;
}
bool kona_fast_check(KonaCxlState *s, Error **errp);
bool kona_fast_init(KonaCxlState *s, Error **errp);
/* Stop the fault thread and drop the guest mapping (unrealize). */
void kona_fast_stop(KonaCxlState *s);
/* Everything, the media's memory too (instance finalize). */
void kona_fast_destroy(KonaCxlState *s);
uint8_t *kona_fast_block(KonaCxlState *s, uint64_t block);
/* Map @frame's block, fetched into the frame (its clean copy). */
int kona_fast_install(KonaCxlState *s, uint32_t frame, Error **errp);
/* Dirty lines by comparison with the clean copy; lock held. */
uint32_t kona_fast_sync_dirty(KonaCxlState *s, uint32_t frame);
void kona_fast_sync_range(KonaCxlState *s, uint64_t addr, uint64_t len);
/* Write-protect @frame's block and find its dirty lines. */
void kona_fast_begin_writeback(KonaCxlState *s, uint32_t frame);
/* Lift the protection; @written: the data is the new clean copy. */
void kona_fast_end_writeback(KonaCxlState *s, uint32_t frame, bool written);
/* Drop a (dropped) block's pages; its next touch faults it back in. */
void kona_fast_discard(KonaCxlState *s, uint64_t block);

/* kona-direct.c: committed decoders served directly */
void kona_direct_init(KonaCxlState *s, MemoryRegion *target);
void kona_direct_destroy(KonaCxlState *s);
void kona_direct_decoder_changed(CXLType3Dev *ct3d, int which,
                                 bool committed);
void kona_direct_reset(KonaCxlState *s);
/* A media access came through the window while a decoder is unmapped. */
void kona_direct_slow_access(KonaCxlState *s);
uint32_t kona_direct_mapped(KonaCxlState *s);
/* Is this thread probing @s's decode (its media reads only record)? */
bool kona_direct_probing(KonaCxlState *s);

/* kona-regs.c */
extern const MemoryRegionOps kona_regs_ops;

/* kona-stats.c */
extern const char *const kona_stat_names[KONA_DEV_STAT__COUNT];
uint64_t kona_stat_get(KonaCxlState *s, unsigned stat);
/*
 * tracking=fast finds dirty lines by comparison: bring the dirty gauges
 * up to date before @stat (KONA_DEV_STAT__COUNT: all) is read; lock held.
 */
void kona_stats_sync(KonaCxlState *s, unsigned stat);
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

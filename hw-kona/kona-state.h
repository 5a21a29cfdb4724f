/*
 * Kona-CXL: a CXL type-3 memory expander whose media is a local cache of
 * memory that lives on remote memory nodes.  The device's state, shared
 * by its files; what each file offers is in its own header.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_KONA_STATE_H
#define HW_KONA_STATE_H

#include "qemu/notify.h"
#include "qemu/rcu.h"
#include "qemu/thread.h"
#include "hw/cxl/cxl_device.h"
#include "kona-cache.h"
#include "kona-latency.h"
#include "kona-promote.h"
#include "kona-regs.h"
#include "kona-remote.h"
#include "kona-track.h"
#include "kona-uffd.h"
#include "kona-window.h"

#define TYPE_KONA_CXL "kona-cxl"
OBJECT_DECLARE_TYPE(KonaCxlState, KonaCxlClass, KONA_CXL)

/* HDM decoders commit in 256 MiB units, so the media comes in those. */
#define KONA_SIZE_ALIGN         (256 * MiB)
#define KONA_SIZE_MAX           (1 * TiB)
#define KONA_DEFAULT_CACHE_SIZE (64 * MiB)
#define KONA_DEFAULT_BLOCK_SIZE 4096

/* A committed decoder's host range, served by the device itself. */
typedef struct KonaDirect {
    MemoryRegion alias;         /* of the media, mapped at @hpa */
    uint64_t hpa, dpa, size;
    bool mapped;
} KonaDirect;

/*
 * One guest access that TCG makes as several device accesses under one
 * hold of the device lock (kona_media_pair): a 16-byte access's halves,
 * an unaligned access's pieces, a page-crossing access's parts.  It fails
 * once, and a replay of it counts it once.
 */
#define KONA_PAIR_STATS 6
typedef struct KonaPair {
    unsigned depth;             /* holds of the lock for it (they nest) */
    bool failed;                /* a piece failed: the rest fail, uncounted */
    uint64_t stats[KONA_PAIR_STATS];    /* the access counters at its start */
} KonaPair;

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
    uint32_t timeout_ms;
    uint32_t window_ms;
    bool direct_decode;
    char *tracking;
    char *remote_path;
    char *writeback;
    OnOffAuto promote_prop;
    bool writeback_pages;       /* writeback=pages: whole dirty pages */
    uint64_t fetch_latency_ns;
    char *latency_preset;
    uint64_t latency_line_ns, latency_page_ns, latency_64k_ns;
    uint64_t hit_latency_ns, hit_bandwidth;     /* for the CDAT */

    /* The tracking mode (kona-track.h), chosen at realize. */
    const KonaTrackOps *track;
    void *track_priv;           /* the mode's own state */
    KonaLatency latency;        /* of a fetch, from the latency properties */

    /* cxl-type3 decodes to this backend's region; media_io overlays it */
    HostMemoryBackend *media_backend;
    MemoryRegion media_io;
    void *cache_mem;
    size_t cache_mem_size;
    /* tracking=fast and stores: the media as host memory (kona-uffd.c) */
    KonaUffdMedia uffd;

    /*
     * Everything below is guarded by @lock.  Lock order: the BQL, then
     * @lock; a thread that holds @lock never waits for the BQL, and one
     * that holds the BQL only ever try-locks @lock (kona-media.c).
     */
    QemuRecMutex lock;          /* recursive: see kona_media_pair() */
    KonaCache cache;
    KonaRemote remote;
    uint64_t stats[KONA_DEV_STAT__COUNT];
    uint64_t hist[KONA_HIST_BUCKETS];
    uint32_t low_wm, high_wm;
    uint32_t policy_mode;
    bool remote_error;
    uint64_t failed_block;      /* the last failed block to be replayed */
    int64_t failed_ns;          /* ... and when */
    KonaPair pair;
    KonaWindow window;
    KonaPromote promote;        /* tracking=stores: pages given RAM writes */
    uint64_t window_ns;         /* 0: per-window tracking off */
    QEMUTimer *window_timer;    /* QEMU_CLOCK_VIRTUAL: guest time */
    QEMUTimer *keepalive_timer; /* QEMU_CLOCK_REALTIME */

    /* Direct decode (kona-direct.c); BQL */
    KonaDirect direct[CXL_HDM_DECODER_COUNT];
    QEMUBH *direct_bh;
    bool direct_pending;        /* a committed decoder is not mapped yet */
    uint64_t direct_probe_dpa;  /* where the last probe landed */
    uint64_t direct_probes;     /* guest-physical reads made to probe */
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
    struct rcu_head unplug_rcu;
    Error *migration_blocker;
};

struct KonaCxlClass {
    CXLType3Class parent_class;

    void (*parent_realize)(PCIDevice *pci_dev, Error **errp);
    void (*parent_exit)(PCIDevice *pci_dev);
    ResettablePhases parent_phases;
};

/* Held across a media access or command (kona_lock, kona-media.c). */
typedef struct KonaLockState {
    bool bql_dropped;
} KonaLockState;

#endif /* HW_KONA_STATE_H */

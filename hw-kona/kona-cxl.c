/*
 * Kona-CXL: -device kona-cxl, a CXL type-3 memory expander for studying
 * disaggregated-memory runtimes (Kona, ASPLOS'21).
 *
 * The device is a subclass of cxl-type3 so that the guest's stock CXL
 * drivers enumerate it and can build a RAM region on it.  cxl-type3 decodes
 * every guest access of its volatile media into an address space rooted at
 * the media backend's memory region; we overlay that region with an I/O
 * region of the same size, so every guest load and store of the media runs
 * through kona-media.c.  The backend itself is never touched: the data
 * lives in a local cache (cache-size bytes) of memory held by memory nodes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qom/object_interfaces.h"
#include "hw/pci/pci_bridge.h"
#include "hw/qdev-properties.h"
#include "migration/blocker.h"
#include "system/hostmem.h"
#include "system/runstate.h"
#include "system/system.h"
#include "hw/cxl/cxl.h"
#include "system/kvm.h"
#include "kona-state.h"
#include "kona-cdat.h"
#include "kona-control.h"
#include "kona-direct.h"
#include "kona-media.h"
#include "kona-stats.h"
#include "trace.h"

QEMU_BUILD_BUG_ON(KONA_POLICY_ID_CLOCK != KONA_POLICY_CLOCK);
QEMU_BUILD_BUG_ON(KONA_POLICY_ID_FIFO != KONA_POLICY_FIFO);
QEMU_BUILD_BUG_ON(KONA_POLICY_ID_RANDOM != KONA_POLICY_RANDOM);

/* The tracking modes (kona-track.h), by property value. */
static const KonaTrackOps *const kona_track_modes[] = {
    &kona_track_exact,
    &kona_track_fast,
    &kona_track_stores,
};

static const char *const kona_remote_path_names[] = {
    [KONA_COPY_PATH_AUTO] = "auto",
    [KONA_COPY_PATH_SOCKET] = "socket",
    [KONA_COPY_PATH_SHARED] = "shared",
};

static const char *const kona_policy_names[KONA_POLICY__MAX] = {
    [KONA_POLICY_CLOCK] = "clock",
    [KONA_POLICY_FIFO] = "fifo",
    [KONA_POLICY_RANDOM] = "random",
};

/*
 * The guest can only reach the media through an HDM decoder of a CXL port,
 * so the device must sit below a CXL root port or switch downstream port.
 */
static bool kona_check_bus(PCIDevice *pci_dev, Error **errp)
{
    PCIBus *bus = pci_get_bus(pci_dev);
    PCIDevice *port = pci_bridge_get_device(bus);

    if (port && (object_dynamic_cast(OBJECT(port), "cxl-rp") ||
                 object_dynamic_cast(OBJECT(port), TYPE_CXL_DSP))) {
        return true;
    }
    error_setg(errp, "kona-cxl: property 'bus' must name a CXL root port "
               "(cxl-rp) or switch downstream port (cxl-downstream); "
               "bus '%s' is not one", BUS(bus)->name);
    return false;
}

static bool kona_check_size(KonaCxlState *s, Error **errp)
{
    CXLType3Dev *ct3d = CXL_TYPE3(s);

    if (ct3d->hostmem || ct3d->hostvmem || ct3d->hostpmem || ct3d->lsa ||
        ct3d->dc.num_regions) {
        error_setg(errp, "kona-cxl: properties 'memdev', 'volatile-memdev', "
                   "'persistent-memdev', 'lsa' and 'num-dc-regions' are not "
                   "supported: kona-cxl provides its own volatile media, "
                   "sized by property 'size'");
        return false;
    }
    if (s->size == 0) {
        error_setg(errp, "kona-cxl: property 'size' must be set "
                   "(e.g. size=256M)");
        return false;
    }
    if (s->size % KONA_SIZE_ALIGN) {
        error_setg(errp, "kona-cxl: property 'size' (%" PRIu64 ") must be a "
                   "multiple of 256 MiB, the CXL HDM decoder granularity",
                   s->size);
        return false;
    }
    if (s->size > KONA_SIZE_MAX) {
        error_setg(errp, "kona-cxl: property 'size' (%" PRIu64 ") exceeds "
                   "the maximum of %" PRIu64 " bytes", s->size,
                   (uint64_t)KONA_SIZE_MAX);
        return false;
    }
    return true;
}

/* Cache geometry and policy; fills in the cache-size default. */
static bool kona_check_cache(KonaCxlState *s, KonaPolicy *policy,
                             Error **errp)
{
    bool remote = s->memnode || s->rackctl;
    const char *why;
    unsigned i;

    if (!kona_cache_geometry_ok(s->size, s->block_size, s->block_size,
                                &why)) {
        error_setg(errp, "kona-cxl: property 'block-size' (%" PRIu64 ") %s",
                   s->block_size, why);
        return false;
    }
    if (!s->cache_size) {
        s->cache_size = remote ? MIN(KONA_DEFAULT_CACHE_SIZE, s->size)
                               : s->size;
    }
    if (!remote && s->cache_size != s->size) {
        error_setg(errp, "kona-cxl: property 'cache-size' must equal 'size' "
                   "without 'memnode' or 'rackctl': there is no memory node "
                   "to evict to");
        return false;
    }
    if (!kona_cache_geometry_ok(s->size, s->cache_size, s->block_size,
                                &why)) {
        error_setg(errp, "kona-cxl: property 'cache-size' (%" PRIu64 ") "
                   "must be a multiple of 'block-size' (%" PRIu64 "), at "
                   "least one block, at most 'size' and fewer than 2^32 "
                   "blocks", s->cache_size, s->block_size);
        return false;
    }
    for (i = 0; i < KONA_POLICY__MAX; i++) {
        if (g_str_equal(s->policy, kona_policy_names[i])) {
            *policy = i;
            break;
        }
    }
    if (i == KONA_POLICY__MAX) {
        error_setg(errp, "kona-cxl: property 'policy' must be clock, fifo or "
                   "random, not '%s'", s->policy);
        return false;
    }
    if (!s->timeout_ms) {
        error_setg(errp, "kona-cxl: property 'timeout-ms' must be positive");
        return false;
    }
    return true;
}

static bool kona_check_remote_path(KonaCxlState *s, KonaCopyPath *path,
                                   Error **errp)
{
    for (unsigned i = 0; i < ARRAY_SIZE(kona_remote_path_names); i++) {
        if (g_str_equal(s->remote_path, kona_remote_path_names[i])) {
            *path = i;
            return true;
        }
    }
    error_setg(errp, "kona-cxl: property 'remote-path' must be auto, socket "
               "or shared, not '%s'", s->remote_path);
    return false;
}

/*
 * Latency presets: the Kona paper's remote memory, and the page-fault
 * runtimes it compares with (one flat latency per fault).
 */
static const struct {
    const char *name;
    uint64_t line_ns, page_ns, big_ns;
} kona_latency_presets[] = {
    { "kona-paper", KONA_PAPER_LINE_NS, KONA_PAPER_PAGE_NS,
      KONA_PAPER_64K_NS },
    { "legoos", 0, KONA_LEGOOS_PAGE_NS, 0 },
    { "infiniswap", 0, KONA_INFINISWAP_PAGE_NS, 0 },
};

/* writeback=lines (Kona) or pages (a page-granular runtime). */
static bool kona_check_writeback(KonaCxlState *s, Error **errp)
{
    if (!g_str_equal(s->writeback, "lines") &&
        !g_str_equal(s->writeback, "pages")) {
        error_setg(errp, "kona-cxl: property 'writeback' must be lines or "
                   "pages, not '%s'", s->writeback);
        return false;
    }
    s->writeback_pages = g_str_equal(s->writeback, "pages");
    if (s->writeback_pages && s->block_size < KONA_CACHE_PAGE_SIZE) {
        error_setg(errp, "kona-cxl: property 'writeback': writeback=pages "
                   "needs 'block-size' of at least 4 KiB (a page is sent "
                   "whole from the cache)");
        return false;
    }
    return true;
}

/*
 * The latency model of a fetch: the three points, or a preset for them, or
 * fetch-latency-ns as one flat value for every block size.
 */
static bool kona_check_latency(KonaCxlState *s, Error **errp)
{
    bool points = s->latency_line_ns || s->latency_page_ns ||
                  s->latency_64k_ns;
    const uint64_t max = 10 * NANOSECONDS_PER_SECOND;

    if (s->latency_preset && !g_str_equal(s->latency_preset, "none")) {
        unsigned i;

        for (i = 0; i < ARRAY_SIZE(kona_latency_presets); i++) {
            if (g_str_equal(s->latency_preset, kona_latency_presets[i].name)) {
                break;
            }
        }
        if (i == ARRAY_SIZE(kona_latency_presets)) {
            error_setg(errp, "kona-cxl: property 'latency' must be none, "
                       "kona-paper, legoos or infiniswap, not '%s'",
                       s->latency_preset);
            return false;
        }
        if (points || s->fetch_latency_ns) {
            error_setg(errp, "kona-cxl: property 'latency' sets the "
                       "latency-*-ns properties: give one or the other");
            return false;
        }
        s->latency_line_ns = kona_latency_presets[i].line_ns;
        s->latency_page_ns = kona_latency_presets[i].page_ns;
        s->latency_64k_ns = kona_latency_presets[i].big_ns;
        points = true;
    }
    if (points && s->fetch_latency_ns) {
        error_setg(errp, "kona-cxl: property 'fetch-latency-ns' is one flat "
                   "latency for every block size; with latency-line-ns, "
                   "latency-page-ns or latency-64k-ns give only those");
        return false;
    }
    if (s->latency_line_ns > max || s->latency_page_ns > max ||
        s->latency_64k_ns > max || s->fetch_latency_ns > max) {
        error_setg(errp, "kona-cxl: properties 'latency-*-ns' and "
                   "'fetch-latency-ns' must be at most %" PRIu64 " (10 s)",
                   max);
        return false;
    }
    if (points) {
        kona_latency_init(&s->latency, s->latency_line_ns,
                          s->latency_page_ns, s->latency_64k_ns);
    } else {
        kona_latency_init(&s->latency, 0, s->fetch_latency_ns, 0);
    }
    return true;
}

/* The tracking mode: known, able to run here, its own checks passed. */
static bool kona_check_tracking(KonaCxlState *s, Error **errp)
{
    s->track = NULL;
    for (unsigned i = 0; i < ARRAY_SIZE(kona_track_modes); i++) {
        if (g_str_equal(s->tracking, kona_track_modes[i]->name)) {
            s->track = kona_track_modes[i];
        }
    }
    if (!s->track) {
        error_setg(errp, "kona-cxl: property 'tracking' must be exact, fast "
                   "or stores, not '%s'", s->tracking);
        return false;
    }
    if (kvm_enabled() && !s->track->kvm_ok) {
        error_setg(errp, "kona-cxl: property 'tracking': tracking=%s needs "
                   "TCG (every access of the media runs through the device, "
                   "and KVM cannot run guest code from it); under KVM use "
                   "tracking=fast or tracking=stores", s->tracking);
        return false;
    }
    /* Before the mode's checks: promotion needs write-protection. */
    return kona_promote_check(s, errp) &&
           (!s->track->check || s->track->check(s, errp));
}

/*
 * cxl-type3 needs a memory backend for its volatile media.  Ours is a child
 * object that no one else can map, and the overlay keeps guest accesses off
 * it, so it reserves address space only (MAP_NORESERVE).
 */
static bool kona_create_media_backend(KonaCxlState *s, Error **errp)
{
    Object *backend = object_new(TYPE_MEMORY_BACKEND_RAM);

    if (!object_property_set_uint(backend, "size", s->size, errp) ||
        !object_property_set_bool(backend, "reserve", false, errp) ||
        !object_property_set_bool(backend,
                                  "x-use-canonical-path-for-ramblock-id",
                                  true, errp)) {
        object_unref(backend);
        return false;
    }
    object_property_add_child(OBJECT(s), "media", backend);
    object_unref(backend);
    if (!user_creatable_complete(USER_CREATABLE(backend), errp)) {
        object_unparent(backend);
        return false;
    }
    s->media_backend = MEMORY_BACKEND(backend);
    CXL_TYPE3(s)->hostvmem = s->media_backend;
    return true;
}

static void kona_destroy_media_backend(KonaCxlState *s)
{
    if (s->media_backend) {
        CXL_TYPE3(s)->hostvmem = NULL;
        object_unparent(OBJECT(s->media_backend));
        s->media_backend = NULL;
    }
}

/* The local cache's memory: anonymous, touched only as blocks arrive. */
static bool kona_create_cache(KonaCxlState *s, KonaPolicy policy,
                              Error **errp)
{
    s->cache_mem_size = s->cache_size;
    s->cache_mem = kona_map_anon(s->cache_mem_size, "cache-size", errp);
    if (!s->cache_mem) {
        return false;
    }
    kona_cache_init(&s->cache, s->size, s->cache_size, s->block_size,
                    policy, s->cache_mem);
    s->low_wm = s->high_wm = s->cache.nframes;
    s->policy_mode = KONA_MODE_DEVICE;
    return true;
}

static void kona_destroy_cache(KonaCxlState *s)
{
    if (s->cache_mem) {
        kona_cache_destroy(&s->cache);
        munmap(s->cache_mem, s->cache_mem_size);
        s->cache_mem = NULL;
    }
}

/* Nothing the guest wrote may stay only in this process: write it back. */
static void kona_write_back_all(KonaCxlState *s, const char *why)
{
    KonaLockState ls;
    Error *err = NULL;
    uint64_t lines = 0;

    if (!s->cache_mem || !kona_remote_present(&s->remote)) {
        return;
    }
    kona_lock(s, &ls);
    if (kona_flush_all(s, &ls, &lines, &err) < 0) {
        error_reportf_err(err, "kona-cxl: write-back at %s failed: ", why);
    }
    kona_unlock(s, &ls);
    trace_kona_flush_all(why, lines);
}

/* Connections checked once a second, even while the guest is idle. */
#define KONA_KEEPALIVE_MS 1000

static void kona_keepalive_tick(void *opaque)
{
    KonaCxlState *s = opaque;

    kona_keepalive(s);
    timer_mod(s->keepalive_timer,
              qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + KONA_KEEPALIVE_MS);
}

static void kona_on_shutdown(Notifier *n, void *data)
{
    KonaCxlState *s = container_of(n, KonaCxlState, shutdown_notifier);

    /* Before QEMU pauses the vCPUs: none may wait on a dead memnode. */
    if (s->uffd.mem) {
        kona_uffd_give_up(s);
    }
    kona_write_back_all(s, "guest shutdown");
}

static void kona_on_exit(Notifier *n, void *data)
{
    kona_write_back_all(container_of(n, KonaCxlState, exit_notifier),
                        "QEMU exit");
}

static void kona_cxl_realize(PCIDevice *pci_dev, Error **errp)
{
    ERRP_GUARD();
    KonaCxlState *s = KONA_CXL(pci_dev);
    KonaCxlClass *kc = KONA_CXL_GET_CLASS(pci_dev);
    KonaRemoteConfig rcfg = {
        .memnode = s->memnode, .replica = s->replica,
        .rackctl = s->rackctl, .volume = s->volume,
        .secret_file = s->secret_file,
        .size = s->size, .block_size = s->block_size,
        .timeout_ms = s->timeout_ms,
    };
    KonaPolicy policy = KONA_POLICY_CLOCK;

    if (!kona_check_bus(pci_dev, errp) || !kona_check_size(s, errp) ||
        !kona_check_cache(s, &policy, errp) ||
        !kona_check_latency(s, errp) || !kona_check_writeback(s, errp) ||
        !kona_cdat_check(s, errp) ||
        !kona_check_tracking(s, errp) ||
        !kona_check_remote_path(s, &rcfg.path, errp)) {
        return;
    }
    if (!kona_remote_open(&s->remote, &rcfg, errp)) {
        return;
    }
    if (!kona_create_cache(s, policy, errp)) {
        goto fail_remote;
    }
    if (!kona_windows_init(s, errp)) {
        goto fail_windows;
    }
    if (s->track->init && !s->track->init(s, errp)) {
        goto fail_windows;
    }
    if (!kona_create_media_backend(s, errp)) {
        goto fail_windows;
    }
    kc->parent_realize(pci_dev, errp);
    if (*errp) {
        goto fail_backend;
    }
    if (!kona_cdat_install(s, errp)) {
        kc->parent_exit(pci_dev);
        goto fail_backend;
    }

    error_setg(&s->migration_blocker, "kona-cxl: the device's cache of "
               "remote memory cannot be migrated");
    if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
        kc->parent_exit(pci_dev);
        goto fail_backend;
    }

    qemu_rec_mutex_init(&s->lock);
    memory_region_init_io(&s->media_io, OBJECT(s), &kona_media_ops, s,
                          "kona-media", s->size);
    /*
     * QEMU refuses an access to a device while another access to it is in
     * flight (its re-entrancy guard).  Ours release the BQL to wait on
     * memory nodes, so another vCPU's access would be refused: a load
     * would read 0, a store vanish.  The device lock serialises them, and
     * the handlers never access the device again, so the guard is off.
     */
    s->media_io.disable_reentrancy_guard = true;
    /*
     * The device lock serialises accesses, so vCPUs need not take the BQL
     * for them: with two vCPUs on the Kona node, it made the pair slower
     * than one alone (qemu-patches/0004).  The handlers touch no CPU
     * state either, so TCG runs them in the middle of a translation block
     * instead of rewinding it to the accessing instruction (0005).
     */
    memory_region_enable_lockless_io(&s->media_io);
    memory_region_set_lockless_pair(&s->media_io, kona_media_pair);
    memory_region_add_subregion_overlap(
        host_memory_backend_get_memory(s->media_backend), 0, &s->media_io, 1);
    kona_direct_init(s, s->track->guest_region(s));
    kona_control_init(s);

    s->shutdown_notifier.notify = kona_on_shutdown;
    qemu_register_shutdown_notifier(&s->shutdown_notifier);
    s->exit_notifier.notify = kona_on_exit;
    qemu_add_exit_notifier(&s->exit_notifier);
    kona_windows_arm(s);
    if (kona_remote_present(&s->remote)) {
        s->keepalive_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                          kona_keepalive_tick, s);
        timer_mod(s->keepalive_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + KONA_KEEPALIVE_MS);
    }
    trace_kona_realize(s->size, s->cache_size, s->block_size,
                       kona_remote_present(&s->remote));
    return;

fail_backend:
    kona_destroy_media_backend(s);
fail_windows:
    if (s->track->stop) {
        s->track->stop(s);
    }
    kona_windows_destroy(s);
    kona_destroy_cache(s);
fail_remote:
    kona_remote_close(&s->remote);
}

/*
 * Unplug, second half: a grace period after the media left every address
 * space, so no guest access of it can be running (vCPUs reach the
 * lockless handlers without the BQL, inside RCU read sections; a fault of
 * the uffd modes is served by their thread, which is stopped only now).
 * Nothing the guest wrote can land after this write-back.
 */
static void kona_cxl_unplug_finish(struct rcu_head *head)
{
    KonaCxlState *s = container_of(head, KonaCxlState, unplug_rcu);

    notifier_remove(&s->shutdown_notifier);
    qemu_remove_exit_notifier(&s->exit_notifier);
    kona_write_back_all(s, "unplug");
    if (s->track->stop) {
        s->track->stop(s);
    }
    kona_destroy_cache(s);
    kona_windows_destroy(s);
    kona_remote_close(&s->remote);
    qemu_rec_mutex_destroy(&s->lock);
    object_unref(OBJECT(s));
}

static void kona_cxl_exit(PCIDevice *pci_dev)
{
    KonaCxlState *s = KONA_CXL(pci_dev);
    KonaCxlClass *kc = KONA_CXL_GET_CLASS(pci_dev);

    /*
     * Take the media out of every address space now; write back and free
     * it only once no access that began before can still be running
     * (waiting for that here could deadlock: an unplug is often carried
     * out inside an access, a guest's write to its slot's registers).
     */
    kona_direct_destroy(s);
    memory_region_del_subregion(
        host_memory_backend_get_memory(s->media_backend), &s->media_io);
    object_unparent(OBJECT(&s->media_io));
    kona_windows_stop(s);
    g_clear_pointer(&s->keepalive_timer, timer_free);
    migrate_del_blocker(&s->migration_blocker);
    kc->parent_exit(pci_dev);
    kona_destroy_media_backend(s);
    object_ref(OBJECT(s));
    call_rcu1(&s->unplug_rcu, kona_cxl_unplug_finish);
}

static const Property kona_cxl_props[] = {
    DEFINE_PROP_SIZE("size", KonaCxlState, size, 0),
    DEFINE_PROP_SIZE("cache-size", KonaCxlState, cache_size, 0),
    DEFINE_PROP_SIZE("block-size", KonaCxlState, block_size,
                     KONA_DEFAULT_BLOCK_SIZE),
    DEFINE_PROP_STRING("memnode", KonaCxlState, memnode),
    DEFINE_PROP_STRING("replica", KonaCxlState, replica),
    DEFINE_PROP_STRING("rackctl", KonaCxlState, rackctl),
    DEFINE_PROP_STRING("volume", KonaCxlState, volume),
    DEFINE_PROP_STRING("secret-file", KonaCxlState, secret_file),
    DEFINE_PROP_STRING("policy", KonaCxlState, policy),
    DEFINE_PROP_UINT64("fetch-latency-ns", KonaCxlState, fetch_latency_ns, 0),
    DEFINE_PROP_STRING("latency", KonaCxlState, latency_preset),
    DEFINE_PROP_UINT64("latency-line-ns", KonaCxlState, latency_line_ns, 0),
    DEFINE_PROP_UINT64("latency-page-ns", KonaCxlState, latency_page_ns, 0),
    DEFINE_PROP_UINT64("latency-64k-ns", KonaCxlState, latency_64k_ns, 0),
    DEFINE_PROP_UINT64("hit-latency-ns", KonaCxlState, hit_latency_ns,
                       KONA_DEFAULT_HIT_LATENCY_NS),
    DEFINE_PROP_SIZE("hit-bandwidth", KonaCxlState, hit_bandwidth,
                     KONA_DEFAULT_HIT_BANDWIDTH),
    DEFINE_PROP_UINT32("timeout-ms", KonaCxlState, timeout_ms, 10000),
    DEFINE_PROP_UINT32("window-ms", KonaCxlState, window_ms, 0),
    DEFINE_PROP_BOOL("direct-decode", KonaCxlState, direct_decode, true),
    DEFINE_PROP_STRING("tracking", KonaCxlState, tracking),
    DEFINE_PROP_STRING("remote-path", KonaCxlState, remote_path),
    DEFINE_PROP_STRING("writeback", KonaCxlState, writeback),
    DEFINE_PROP_ON_OFF_AUTO("promote", KonaCxlState, promote_prop,
                            ON_OFF_AUTO_AUTO),
};

/* A reset uncommits every decoder without telling us: unmap them. */
static void kona_cxl_reset_hold(Object *obj, ResetType type)
{
    KonaCxlState *s = KONA_CXL(obj);
    KonaCxlClass *kc = KONA_CXL_GET_CLASS(obj);

    if (kc->parent_phases.hold) {
        kc->parent_phases.hold(obj, type);
    }
    kona_direct_reset(s);
}

static void kona_cxl_instance_init(Object *obj)
{
    KonaCxlState *s = KONA_CXL(obj);

    s->policy = g_strdup("clock");
    s->tracking = g_strdup("exact");
    s->remote_path = g_strdup("auto");
    s->writeback = g_strdup("lines");
    s->uffd.uffd = s->uffd.stop_fd = -1;
    s->failed_block = UINT64_MAX;
}

/* After the last reference: no vCPU can still reach the mode's memory. */
static void kona_cxl_instance_finalize(Object *obj)
{
    KonaCxlState *s = KONA_CXL(obj);

    if (s->track && s->track->destroy) {
        s->track->destroy(s);
    }
}

/*
 * The guest's Sanitize (Overwrite), run when the mailbox's background
 * command completes (qemu-patches/0008): our media, not the reserved
 * backend that cxl-type3 would zero.  A memory node that cannot be
 * zeroed now fails the command (qemu-patches/0011); the device still
 * zeroes it before serving anything from it again (kona-remote.c).
 */
static bool kona_cxl_sanitize(CXLType3Dev *ct3d)
{
    Error *err = NULL;

    /* Counted and reported as any failed write-back (remote-errors). */
    if (kona_sanitize(KONA_CXL(ct3d), &err) < 0) {
        kona_remote_failed(KONA_CXL(ct3d), err);
        return false;
    }
    return true;
}

static void kona_cxl_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);
    CXLType3Class *cvc = CXL_TYPE3_CLASS(oc);
    KonaCxlClass *kc = KONA_CXL_CLASS(oc);

    kc->parent_realize = pc->realize;
    kc->parent_exit = pc->exit;
    pc->realize = kona_cxl_realize;
    pc->exit = kona_cxl_exit;
    cvc->hdm_decoder_changed = kona_direct_decoder_changed;
    cvc->sanitize_volatile = kona_cxl_sanitize;
    resettable_class_set_parent_phases(RESETTABLE_CLASS(oc), NULL,
                                       kona_cxl_reset_hold, NULL,
                                       &kc->parent_phases);

    dc->desc = "Kona CXL memory expander backed by remote memory nodes";
    device_class_set_props(dc, kona_cxl_props);
    object_class_property_set_description(oc, "size",
        "capacity the guest sees, a multiple of 256 MiB");
    object_class_property_set_description(oc, "cache-size",
        "local cache of the remote memory (default 64 MiB, or 'size' "
        "without a memory node)");
    object_class_property_set_description(oc, "block-size",
        "fetch unit, a power of two from 64 B to 2 MiB");
    object_class_property_set_description(oc, "memnode",
        "memory node holding the media: unix:PATH or tcp:HOST:PORT");
    object_class_property_set_description(oc, "replica",
        "second memory node keeping a copy of the media (with 'memnode')");
    object_class_property_set_description(oc, "rackctl",
        "rack controller that places the media on memory nodes");
    object_class_property_set_description(oc, "volume",
        "name of the remote allocation, to reattach to it later");
    object_class_property_set_description(oc, "secret-file",
        "file holding the secret shared with the memory nodes (required "
        "by memory nodes off loopback)");
    object_class_property_set_description(oc, "policy",
        "built-in eviction policy: clock, fifo or random");
    object_class_property_set_description(oc, "fetch-latency-ns",
        "modelled latency of every fetch, whatever the block size: a miss "
        "takes max(real cost, this)");
    object_class_property_set_description(oc, "latency",
        "latency model preset: none (default), kona-paper (2.42 us per "
        "64 B line, 3.11 us per 4 KiB, 9.28 us per 64 KiB), legoos (10 us "
        "per fetch) or infiniswap (40 us per fetch)");
    object_class_property_set_description(oc, "writeback",
        "lines (default: only the dirty 64 B lines, as Kona) or pages "
        "(every 4 KiB page with a dirty line, whole, as a page-granular "
        "far-memory runtime)");
    object_class_property_set_description(oc, "latency-line-ns",
        "modelled latency of fetching a 64 B block (a miss takes max(real "
        "cost, model); the model is linear in the block size between the "
        "given points)");
    object_class_property_set_description(oc, "latency-page-ns",
        "modelled latency of fetching a 4 KiB block");
    object_class_property_set_description(oc, "latency-64k-ns",
        "modelled latency of fetching a 64 KiB block");
    object_class_property_set_description(oc, "timeout-ms",
        "how long to wait for a memory node per request");
    object_class_property_set_description(oc, "tracking",
        "exact (default: every access through the device, stores tracked "
        "per line as they happen; TCG only), fast (resident data mapped as "
        "guest RAM, misses by userfaultfd, dirty lines found by comparison "
        "with a clean copy at write-back) or stores (resident data mapped "
        "read-only: loads and code at RAM speed, every store trapped and "
        "tracked per line)");
    object_class_property_set_description(oc, "promote",
        "tracking=stores under TCG: a 4 KiB page whose 64 lines are all "
        "dirty takes stores at RAM speed until it is written back, since "
        "they can dirty nothing more (auto, the default: wherever that "
        "works, i.e. not with window-ms; on; off: every store through the "
        "device)");
    object_class_property_set_description(oc, "remote-path",
        "how fetches and write-backs reach memory nodes: auto (default: "
        "through a shared mapping of the slab wherever the memnode offers "
        "it, i.e. on this host over unix:, else the socket), socket or "
        "shared (start-up fails where it is not offered)");
    object_class_property_set_description(oc, "direct-decode",
        "serve a committed, non-interleaved HDM decoder's host range "
        "directly instead of through the CXL window's decode (default on)");
    object_class_property_set_description(oc, "window-ms",
        "count distinct lines and pages written per window of this many "
        "ms of guest time (0: off; the guest may change it)");
    kona_cdat_class_init(oc);
    kona_cxl_stats_add_properties(oc);
    kona_cxl_windows_add_properties(oc);
}

static const TypeInfo kona_cxl_info = {
    .name = TYPE_KONA_CXL,
    .parent = TYPE_CXL_TYPE3,
    .instance_size = sizeof(KonaCxlState),
    .instance_init = kona_cxl_instance_init,
    .instance_finalize = kona_cxl_instance_finalize,
    .class_size = sizeof(KonaCxlClass),
    .class_init = kona_cxl_class_init,
};

static void kona_cxl_register_types(void)
{
    type_register_static(&kona_cxl_info);
}

type_init(kona_cxl_register_types)

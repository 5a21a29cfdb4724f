/*
 * Kona-CXL: committed HDM decoders served directly.
 *
 * QEMU sends a guest access of the CXL fixed memory window through the
 * window's own region, a search for the host bridge, root port and
 * endpoint (QOM casts included), the endpoint's HDM decoder walk, and a
 * second dispatch in the media address space: more than half of what an
 * access to kona-cxl costs.  Once the guest has committed a decoder that
 * does not interleave, host address hpa decodes to device address
 * dpa + (hpa - decoder base) over its whole range, so the device maps its
 * media there itself, over the window, and guest accesses dispatch
 * straight to it.
 *
 * The mapping is checked against QEMU's own decode before it is made:
 * probes through the system address space must arrive at this device at
 * the device addresses the linear map predicts (interleaving at any level
 * upstream would send some of them elsewhere, a media-disabled device
 * none).  A decoder that fails is retried now and then while it stays
 * committed, since the guest may commit the upstream decoders after the
 * endpoint's.  Uncommit and reset unmap.  What QEMU does not tell us: an
 * upstream decoder changing under a committed endpoint decoder (Linux
 * tears down from the endpoint up, so it does not).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "hw/cxl/cxl.h"
#include "kona-state.h"
#include "kona-direct.h"
#include "kona-poison.h"
#include "trace.h"

/*
 * Probe every 256 B (the finest interleave granule) of the first 512 KiB:
 * at most 16 ways of at most 16 KiB granules repeat within 256 KiB.  Plus
 * the range's last byte, for its size.
 */
#define KONA_DIRECT_PROBE_SPAN  (512 * KiB)
#define KONA_DIRECT_PROBE_STEP  256
/* Slow-path accesses between retries of a decoder that failed its probe. */
#define KONA_DIRECT_RETRY_EVERY 65536

/*
 * The device this thread is probing, if any: media accesses arrive without
 * the BQL from other vCPUs meanwhile, and only the probe's own are probes.
 */
static __thread KonaCxlState *kona_probing;

bool kona_direct_probing(KonaCxlState *s)
{
    return kona_probing == s;
}

/*
 * The linear map decoder @which would have, as cxl-type3 decodes: decoders
 * are walked in order, each one's DPA range following the ones before it
 * (plus its skip).  False unless it and every decoder before it are
 * committed, it does not interleave, and it lies in the media.
 */
static bool kona_direct_plan(KonaCxlState *s, int which, KonaDirect *plan)
{
    CXLType3Dev *ct3d = CXL_TYPE3(s);
    uint64_t dpa = 0;

    for (int i = 0; i <= which; i++) {
        KonaHdmDecoder d;
        int ways;

        kona_hdm_decoder_read(ct3d, i, &d);
        ways = cxl_interleave_ways_dec(FIELD_EX32(d.ctrl,
                                                  CXL_HDM_DECODER0_CTRL, IW),
                                       NULL);
        if (!FIELD_EX32(d.ctrl, CXL_HDM_DECODER0_CTRL, COMMITTED) || !ways) {
            return false;
        }
        dpa += d.dpa_skip;
        if (i < which) {
            dpa += d.size / ways;
            continue;
        }
        plan->hpa = d.base;
        plan->dpa = dpa;
        plan->size = d.size;
        return ways == 1 && d.size && dpa < s->size &&
               d.size <= s->size - dpa && plan->hpa + d.size > plan->hpa;
    }
    return false;
}

/* Does a read of @hpa through QEMU's decode reach this device at @dpa? */
static bool kona_direct_probe_one(KonaCxlState *s, uint64_t hpa, uint64_t dpa)
{
    uint8_t byte;

    s->direct_probe_dpa = UINT64_MAX;
    s->direct_probes++;
    address_space_read(&address_space_memory, hpa, MEMTXATTRS_UNSPECIFIED,
                       &byte, 1);
    return s->direct_probe_dpa == dpa;
}

static bool kona_direct_probe(KonaCxlState *s, const KonaDirect *plan)
{
    uint64_t span = MIN(plan->size, KONA_DIRECT_PROBE_SPAN);
    bool ok = true;

    /* Our media reads now only record where they land (kona-media.c). */
    kona_probing = s;
    for (uint64_t off = 0; ok && off < span; off += KONA_DIRECT_PROBE_STEP) {
        ok = kona_direct_probe_one(s, plan->hpa + off, plan->dpa + off);
    }
    ok = ok && kona_direct_probe_one(s, plan->hpa + plan->size - 1,
                                     plan->dpa + plan->size - 1);
    kona_probing = NULL;
    return ok;
}

static void kona_direct_unmap(KonaCxlState *s, int which)
{
    KonaDirect *d = &s->direct[which];

    if (d->mapped) {
        memory_region_del_subregion(get_system_memory(), &d->alias);
        d->mapped = false;
        trace_kona_direct_unmap(which, d->hpa, d->size);
    }
}

/*
 * Does [hpa, hpa + size) lie inside one CXL fixed memory window?  The
 * base is the guest's choice, and the probes read guest-physical memory:
 * over RAM or another device's registers a read may have effects, so
 * nothing outside a window is ever probed.
 */
static bool kona_direct_in_window(const KonaDirect *plan)
{
    MemoryRegionSection sec = memory_region_find(get_system_memory(),
                                                 plan->hpa, plan->size);
    bool ok = sec.mr &&
              sec.offset_within_address_space == plan->hpa &&
              int128_eq(sec.size, int128_make64(plan->size)) &&
              g_str_has_prefix(memory_region_name(sec.mr),
                               "cxl-fixed-memory-region");

    if (sec.mr) {
        memory_region_unref(sec.mr);
    }
    return ok;
}

/* Map decoder @which directly if it can be; true if it is mapped now. */
static bool kona_direct_try(KonaCxlState *s, int which)
{
    KonaDirect *d = &s->direct[which];
    KonaDirect plan;

    if (d->mapped) {
        return true;
    }
    if (!kona_direct_plan(s, which, &plan)) {
        return false;
    }
    if (!kona_direct_in_window(&plan)) {
        trace_kona_direct_refused(which, plan.hpa, plan.size);
        return false;
    }
    if (!kona_direct_probe(s, &plan)) {
        trace_kona_direct_refused(which, plan.hpa, plan.size);
        return false;
    }
    d->hpa = plan.hpa;
    d->dpa = plan.dpa;
    d->size = plan.size;
    memory_region_set_size(&d->alias, d->size);
    memory_region_set_alias_offset(&d->alias, d->dpa);
    /* Above the fixed memory window (priority 0), for this range only. */
    memory_region_add_subregion_overlap(get_system_memory(), d->hpa,
                                        &d->alias, 1);
    d->mapped = true;
    trace_kona_direct_map(which, d->hpa, d->dpa, d->size);
    return true;
}

/* Try every committed decoder; keep retrying the ones that failed. */
static void kona_direct_bh(void *opaque)
{
    KonaCxlState *s = opaque;
    bool pending = false;

    for (int i = 0; i < CXL_HDM_DECODER_COUNT; i++) {
        KonaHdmDecoder d;

        kona_hdm_decoder_read(CXL_TYPE3(s), i, &d);
        if (FIELD_EX32(d.ctrl, CXL_HDM_DECODER0_CTRL, COMMITTED) &&
            !kona_direct_try(s, i)) {
            pending = true;
        }
    }
    s->direct_pending = pending;
}

void kona_direct_slow_access(KonaCxlState *s)
{
    /* Racy without the BQL, and that is fine: it only paces retries. */
    if (qatomic_fetch_inc(&s->direct_slow_count) % KONA_DIRECT_RETRY_EVERY ==
        KONA_DIRECT_RETRY_EVERY - 1) {
        qemu_bh_schedule(s->direct_bh);
    }
}

void kona_direct_decoder_changed(CXLType3Dev *ct3d, int which,
                                 bool committed)
{
    KonaCxlState *s = KONA_CXL(ct3d);

    if (!s->direct_decode || which < 0 || which >= CXL_HDM_DECODER_COUNT) {
        return;
    }
    if (!committed) {
        /* Decoders after it no longer decode either (the walk stops). */
        for (int i = which; i < CXL_HDM_DECODER_COUNT; i++) {
            kona_direct_unmap(s, i);
        }
        return;
    }
    /* Not from inside the register write: the probes use the window. */
    s->direct_pending = true;
    qemu_bh_schedule(s->direct_bh);
}

void kona_direct_reset(KonaCxlState *s)
{
    for (int i = 0; i < CXL_HDM_DECODER_COUNT; i++) {
        kona_direct_unmap(s, i);
    }
    s->direct_pending = false;
}

void kona_direct_init(KonaCxlState *s, MemoryRegion *target)
{
    for (int i = 0; i < CXL_HDM_DECODER_COUNT; i++) {
        memory_region_init_alias(&s->direct[i].alias, OBJECT(s),
                                 "kona-direct", target, 0,
                                 memory_region_size(target));
    }
    s->direct_bh = qemu_bh_new_guarded(kona_direct_bh, s,
                                       &DEVICE(s)->mem_reentrancy_guard);
}

void kona_direct_destroy(KonaCxlState *s)
{
    kona_direct_reset(s);
    for (int i = 0; i < CXL_HDM_DECODER_COUNT; i++) {
        object_unparent(OBJECT(&s->direct[i].alias));
    }
    g_clear_pointer(&s->direct_bh, qemu_bh_delete);
}

uint32_t kona_direct_mapped(KonaCxlState *s)
{
    uint32_t n = 0;

    for (int i = 0; i < CXL_HDM_DECODER_COUNT; i++) {
        n += s->direct[i].mapped;
    }
    return n;
}

/*
 * Kona-CXL: the device's CDAT, built from its own model.
 *
 * How a cached two-level memory is expressed.  The device is a local
 * cache (cache-size bytes, block-size blocks, write-back, any block in any
 * frame) in front of remote memory.  CDAT describes device memory the way
 * ACPI's HMAT describes system memory, and HMAT has a native form for
 * this: a memory-side cache.  So the table has, for the one volatile DPA
 * range (DSMAS handle 0):
 *
 *   - DSLBIS with Memory Hierarchy "memory": the memory behind the cache,
 *     i.e. what an access that misses costs.  A miss of a read or of a
 *     write (the cache allocates on write) reaches the cache over the
 *     link and waits for the fetch of its block, so its latency is
 *     hit-latency-ns plus the latency model's fetch of one block
 *     (kona_latency_ns(block-size)), and the bandwidth of a stream of
 *     misses is a block per fetch (the device fetches one block at a
 *     time), at most the hit bandwidth.  Without a model (or without a
 *     memory node: a local device never fetches) the memory level is the
 *     hit level: the device then models no remote latency, and what a
 *     real round trip to the memnode costs here is not a property of the
 *     modelled hardware.
 *   - DSMSCIS: the cache's size, one level, write-back, line = block.
 *   - DSLBIS with Memory Hierarchy "1st-level memory-side cache": a hit,
 *     hit-latency-ns (the Kona paper's 130 ns over the coherent link) and
 *     hit-bandwidth.
 *   - DSEMTS as cxl-type3 has it (EFI_MEMORY_SP).
 *
 * Why not one "expected" latency (hits and misses weighted by a hit
 * ratio): the hit ratio belongs to the workload, not to the device, and
 * a table is read once at enumeration.  Why the miss latency, not the
 * hit latency, at the memory level: it is what HMAT means by it (the
 * memory-side cache levels carry the hit figures), and it is what Linux
 * uses.  Linux 6.12 (drivers/cxl/core/cdat.c) reads only DSMAS and the
 * DSLBIS entries of the memory level and ignores DSMSCIS and the cache
 * levels, so a node's access0/access1 attributes and its memory tier
 * follow the memory level: a device with a remote latency model lands
 * in a slower tier than one without, which is what tiering should do
 * with memory whose cold pages cost a network fetch.  The cache entries
 * are there for software that reads them.
 *
 * Latencies are read and write alike (DSLBIS read and write entries, as
 * cxl-type3 has them); write-backs happen at eviction, off the path of
 * the access that caused them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "hw/cxl/cxl.h"
#include "system/numa.h"
#include "kona-state.h"
#include "kona-cdat.h"
#include "trace.h"

/* A DSLBIS entry of 0xffff means "no value", 0 "not given". */
#define KONA_CDAT_ENTRY_MAX     0xfffe

/* Linux reads entry * base unit as a u32 of ps or MB/s, else nothing. */
#define KONA_CDAT_LINUX_MAX     UINT32_MAX

#define KONA_HIT_LATENCY_MAX_NS (1000 * 1000)          /* 1 ms */
#define KONA_HIT_BANDWIDTH_MIN  (1 * MiB)               /* per second */
#define KONA_HIT_BANDWIDTH_MAX  (1 * PiB)

/* HMAT cache attributes (ACPI 6.5 table 5.155), as DSMSCIS has them. */
#define KONA_CACHE_ATTR_LEVELS(n)       ((n) << 0)
#define KONA_CACHE_ATTR_LEVEL(n)        ((n) << 4)
#define KONA_CACHE_ATTR_COMPLEX         (2 << 8)
#define KONA_CACHE_ATTR_WRITE_BACK      (1 << 12)
#define KONA_CACHE_ATTR_LINE(n)         ((uint32_t)(n) << 16)

enum {
    KONA_CDAT_DSMAS,
    KONA_CDAT_MEM_READ_LAT,
    KONA_CDAT_MEM_WRITE_LAT,
    KONA_CDAT_MEM_READ_BW,
    KONA_CDAT_MEM_WRITE_BW,
    KONA_CDAT_DSMSCIS,
    KONA_CDAT_HIT_READ_LAT,
    KONA_CDAT_HIT_WRITE_LAT,
    KONA_CDAT_HIT_READ_BW,
    KONA_CDAT_HIT_WRITE_BW,
    KONA_CDAT_DSEMTS,
    KONA_CDAT_NUM_ENTRIES
};

bool kona_cdat_check(KonaCxlState *s, Error **errp)
{
    if (s->hit_latency_ns == 0 || s->hit_latency_ns > KONA_HIT_LATENCY_MAX_NS) {
        error_setg(errp, "kona-cxl: property 'hit-latency-ns' (%" PRIu64 ") "
                   "must be from 1 to %d (1 ms): the latency of an access "
                   "that hits the local cache", s->hit_latency_ns,
                   KONA_HIT_LATENCY_MAX_NS);
        return false;
    }
    if (s->hit_bandwidth < KONA_HIT_BANDWIDTH_MIN ||
        s->hit_bandwidth > KONA_HIT_BANDWIDTH_MAX) {
        error_setg(errp, "kona-cxl: property 'hit-bandwidth' (%" PRIu64 ") "
                   "must be from 1M to 1P bytes per second (e.g. 16G)",
                   s->hit_bandwidth);
        return false;
    }
    return true;
}

void kona_cdat_perf(KonaCxlState *s, KonaCdatPerf *p)
{
    bool remote = s->memnode || s->rackctl;
    uint64_t fetch_ns = remote ? kona_latency_ns(&s->latency, s->block_size)
                               : 0;

    p->hit_ns = s->hit_latency_ns;
    p->hit_mbs = s->hit_bandwidth / MiB;
    p->mem_ns = p->hit_ns + fetch_ns;
    p->mem_mbs = p->hit_mbs;
    if (fetch_ns) {
        /* One block per fetch: bytes/ns = 10^9 bytes/s. */
        uint64_t mbs = s->block_size * NANOSECONDS_PER_SECOND / fetch_ns / MiB;

        p->mem_mbs = MAX(MIN(mbs, p->hit_mbs), 1);
    }
}

/*
 * @value (ns or MiB/s) as a DSLBIS entry and base unit (@unit per 1 of
 * @value: 1000 ps per ns, 1 MB/s per MiB/s): exact while the value fits
 * in an entry, else the smallest power-of-ten base that makes it fit,
 * latencies rounded up and bandwidths down (never better than modelled).
 */
static void kona_cdat_encode(CDATDslbis *d, uint64_t value, uint64_t unit,
                             bool round_up)
{
    uint64_t base = 1;

    while ((round_up ? DIV_ROUND_UP(value, base) : value / base) >
           KONA_CDAT_ENTRY_MAX) {
        base *= 10;
    }
    d->entry_base_unit = base * unit;
    d->entry[0] = MAX(round_up ? DIV_ROUND_UP(value, base) : value / base, 1);
}

static CDATSubHeader *kona_cdat_dslbis(uint8_t hierarchy, uint8_t type,
                                       uint64_t value)
{
    CDATDslbis *d = g_new0(CDATDslbis, 1);
    bool latency = type <= HMAT_LB_DATA_WRITE_LATENCY;

    d->header.type = CDAT_TYPE_DSLBIS;
    d->header.length = sizeof(*d);
    d->handle = 0;
    d->flags = hierarchy;
    d->data_type = type;
    kona_cdat_encode(d, value, latency ? 1000 : 1, latency);
    /* Read and write entries carry the same values: say it once. */
    if ((type == HMAT_LB_DATA_READ_LATENCY ||
         type == HMAT_LB_DATA_READ_BANDWIDTH) &&
        d->entry_base_unit * d->entry[0] > KONA_CDAT_LINUX_MAX) {
        warn_report("kona-cxl: CDAT %s %" PRIu64 " %s is beyond what Linux "
                    "reads from a CDAT (a 32-bit count of %s): the guest "
                    "will see no value", latency ? "latency" : "bandwidth",
                    value, latency ? "ns" : "MiB/s",
                    latency ? "ps" : "MB/s");
    }
    return &d->header;
}

/*
 * The four DSLBIS entries of one level of the hierarchy, at t[0..3] (read
 * and write latency, read and write bandwidth: the table's order).
 */
static void kona_cdat_dslbis_set(CDATSubHeader **t, uint8_t hierarchy,
                                 uint64_t ns, uint64_t mbs)
{
    t[0] = kona_cdat_dslbis(hierarchy, HMAT_LB_DATA_READ_LATENCY, ns);
    t[1] = kona_cdat_dslbis(hierarchy, HMAT_LB_DATA_WRITE_LATENCY, ns);
    t[2] = kona_cdat_dslbis(hierarchy, HMAT_LB_DATA_READ_BANDWIDTH, mbs);
    t[3] = kona_cdat_dslbis(hierarchy, HMAT_LB_DATA_WRITE_BANDWIDTH, mbs);
}

static int kona_cdat_build_table(CDATSubHeader ***cdat_table, void *priv)
{
    KonaCxlState *s = priv;
    CDATSubHeader **t = g_new0(CDATSubHeader *, KONA_CDAT_NUM_ENTRIES);
    CDATDsmas *dsmas = g_new0(CDATDsmas, 1);
    /* Packed (1-aligned): allocated, and listed, through its header. */
    CDATSubHeader *dsmscis_hdr = g_malloc0(sizeof(CDATDsmscis));
    CDATDsmscis *dsmscis = (CDATDsmscis *)dsmscis_hdr;
    CDATDsemts *dsemts = g_new0(CDATDsemts, 1);
    /* An HMAT line size is 16 bits: a 64 KiB or larger block is "unknown". */
    uint32_t line = s->block_size <= UINT16_MAX ? s->block_size : 0;
    KonaCdatPerf p;

    kona_cdat_perf(s, &p);

    dsmas->header.type = CDAT_TYPE_DSMAS;
    dsmas->header.length = sizeof(*dsmas);
    dsmas->DSMADhandle = 0;
    dsmas->DPA_base = 0;
    dsmas->DPA_length = s->size;
    t[KONA_CDAT_DSMAS] = &dsmas->header;

    kona_cdat_dslbis_set(&t[KONA_CDAT_MEM_READ_LAT], HMAT_LB_MEM_MEMORY,
                         p.mem_ns, p.mem_mbs);

    dsmscis->header.type = CDAT_TYPE_DSMSCIS;
    dsmscis->header.length = sizeof(*dsmscis);
    dsmscis->DSMAS_handle = 0;
    dsmscis->memory_side_cache_size = s->cache_size;
    dsmscis->cache_attributes = KONA_CACHE_ATTR_LEVELS(1) |
                                KONA_CACHE_ATTR_LEVEL(1) |
                                KONA_CACHE_ATTR_COMPLEX |
                                KONA_CACHE_ATTR_WRITE_BACK |
                                KONA_CACHE_ATTR_LINE(line);
    t[KONA_CDAT_DSMSCIS] = dsmscis_hdr;

    kona_cdat_dslbis_set(&t[KONA_CDAT_HIT_READ_LAT],
                         HMAT_LB_MEM_CACHE_1ST_LEVEL, p.hit_ns, p.hit_mbs);

    dsemts->header.type = CDAT_TYPE_DSEMTS;
    dsemts->header.length = sizeof(*dsemts);
    dsemts->DSMAS_handle = 0;
    dsemts->EFI_memory_type_attr = 1;       /* EFI_MEMORY_SP, as cxl-type3 */
    dsemts->DPA_offset = 0;
    dsemts->DPA_length = s->size;
    t[KONA_CDAT_DSEMTS] = &dsemts->header;

    trace_kona_cdat(p.mem_ns, p.mem_mbs, s->cache_size, p.hit_ns, p.hit_mbs);
    *cdat_table = t;
    return KONA_CDAT_NUM_ENTRIES;
}

static void kona_cdat_free_table(CDATSubHeader **cdat_table, int num,
                                 void *priv)
{
    for (int i = 0; i < num; i++) {
        g_free(cdat_table[i]);
    }
    g_free(cdat_table);
}

bool kona_cdat_install(KonaCxlState *s, Error **errp)
{
    CXLComponentState *cstate = &CXL_TYPE3(s)->cxl_cstate;
    CDATObject *cdat = &cstate->cdat;

    if (cdat->filename) {
        return true;            /* the user's own table, loaded as given */
    }
    /*
     * cxl-type3's realize has built its table (it sets its own builder
     * just before): release it and build ours the same way, so that its
     * DOE responder and its exit path work on ours unchanged.
     */
    cxl_doe_cdat_release(cstate);
    cdat->entry = NULL;
    cdat->entry_len = 0;
    cdat->built_buf = NULL;
    cdat->built_buf_len = 0;
    cdat->build_cdat_table = kona_cdat_build_table;
    cdat->free_cdat_table = kona_cdat_free_table;
    cdat->private = s;
    return cxl_doe_cdat_init(cstate, errp);
}

void kona_cdat_class_init(ObjectClass *oc)
{
    object_class_property_set_description(oc, "hit-latency-ns",
        "latency of an access that hits the local cache, as the device "
        "reports it in its CDAT (default 130, the Kona paper's coherent "
        "link); a miss adds the latency model's fetch of a block");
    object_class_property_set_description(oc, "hit-bandwidth",
        "bandwidth of the local cache in bytes per second, as the device "
        "reports it in its CDAT (default 16G)");
}

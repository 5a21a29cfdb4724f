/*
 * Kona-CXL: the device's CDAT (Coherent Device Attribute Table), which
 * tells the guest the latency and bandwidth of the device's memory.
 *
 * cxl-type3's table hard-codes 150/250 ns; ours reports the device's own
 * model: the local cache reached over the link (hit-latency-ns,
 * hit-bandwidth) in front of remote memory whose fetch latency is the
 * latency model's (kona-latency.h).  The design is at the top of
 * kona-cdat.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_KONA_CDAT_H
#define HW_KONA_CDAT_H

#include "qemu/units.h"

typedef struct KonaCxlState KonaCxlState;

/* The Kona paper's access of the local cache over the coherent link. */
#define KONA_DEFAULT_HIT_LATENCY_NS     130
/* Bytes per second; the figure cxl-type3's table gives its media. */
#define KONA_DEFAULT_HIT_BANDWIDTH      (16 * GiB)

/* What the table says, per level; latencies in ns, bandwidths in MiB/s. */
typedef struct KonaCdatPerf {
    uint64_t hit_ns, hit_mbs;       /* the local cache (1st-level) */
    uint64_t mem_ns, mem_mbs;       /* the memory: an access that misses */
} KonaCdatPerf;

/* Check hit-latency-ns and hit-bandwidth (before the parent's realize). */
bool kona_cdat_check(KonaCxlState *s, Error **errp);

/* The figures of the table, from the properties and the latency model. */
void kona_cdat_perf(KonaCxlState *s, KonaCdatPerf *p);

/*
 * Replace the table cxl-type3's realize built with ours, unless the user
 * gave one (property 'cdat').  Call after the parent's realize.
 */
bool kona_cdat_install(KonaCxlState *s, Error **errp);

/* Property descriptions. */
void kona_cdat_class_init(ObjectClass *oc);

#endif /* HW_KONA_CDAT_H */

/*
 * Kona-CXL: reporting data the device cannot deliver.
 *
 * When no copy of a block can be fetched, the access completes with bytes
 * that are not the guest's data.  The guest must not take them silently:
 * the device reports a memory error at the access's host physical address
 * to the vCPU that made it, as a machine check on x86 (the guest kernel
 * logs it and, for a user page, kills the task that touched it).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_POISON_H
#define KONA_POISON_H

#include "hw/cxl/cxl_device.h"

/* Deliver a memory error at @hpa to @cpu; set by the target's code. */
typedef void (*KonaPoisonFn)(CPUState *cpu, uint64_t hpa);
extern KonaPoisonFn kona_poison_hook;

/* One HDM decoder's registers, from the endpoint's component registers. */
typedef struct KonaHdmDecoder {
    uint32_t ctrl;
    uint64_t base, size, dpa_skip;
} KonaHdmDecoder;

void kona_hdm_decoder_read(CXLType3Dev *ct3d, int which, KonaHdmDecoder *d);

/*
 * The host physical address the guest used for device address @dpa, from
 * the endpoint's committed HDM decoders (non-interleaved ones only).
 */
bool kona_dpa_to_hpa(CXLType3Dev *ct3d, uint64_t dpa, uint64_t *hpa);

/*
 * Report @dpa as poisoned to the vCPU making the current access, if any;
 * returns whether a report was delivered.
 */
bool kona_report_poison(CXLType3Dev *ct3d, uint64_t dpa);

/*
 * Whether a failure of the current access is replayed before its machine
 * check: a vCPU's access in the middle of a translation block (TCG runs
 * it again alone, qemu-patches/0005).
 */
bool kona_poison_will_replay(void);

#endif /* KONA_POISON_H */

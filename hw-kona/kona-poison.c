/*
 * Kona-CXL: reporting data the device cannot deliver (see kona-poison.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/core/cpu.h"
#include "hw/cxl/cxl.h"
#include "kona-poison.h"
#include "trace.h"

KonaPoisonFn kona_poison_hook;

/* The inverse of cxl-type3's HPA -> DPA decode, for 1-way decoders. */
bool kona_dpa_to_hpa(CXLType3Dev *ct3d, uint64_t dpa, uint64_t *hpa)
{
    int hdm_inc = R_CXL_HDM_DECODER1_BASE_LO - R_CXL_HDM_DECODER0_BASE_LO;
    uint32_t *cache_mem = ct3d->cxl_cstate.crb.cache_mem_registers;
    uint32_t cap = ldl_le_p(cache_mem + R_CXL_HDM_DECODER_CAPABILITY);
    unsigned count = cxl_decoder_count_dec(FIELD_EX32(cap,
                                           CXL_HDM_DECODER_CAPABILITY,
                                           DECODER_COUNT));
    uint64_t dpa_base = 0;

    for (unsigned i = 0; i < count; i++) {
        uint32_t *d = cache_mem + i * hdm_inc;
        uint32_t ctrl = ldl_le_p(d + R_CXL_HDM_DECODER0_CTRL);
        uint64_t base = (uint64_t)ldl_le_p(d + R_CXL_HDM_DECODER0_BASE_HI)
                        << 32 |
                        (ldl_le_p(d + R_CXL_HDM_DECODER0_BASE_LO) &
                         0xf0000000);
        uint64_t size = (uint64_t)ldl_le_p(d + R_CXL_HDM_DECODER0_SIZE_HI)
                        << 32 |
                        (ldl_le_p(d + R_CXL_HDM_DECODER0_SIZE_LO) &
                         0xf0000000);
        uint64_t skip = (uint64_t)ldl_le_p(d + R_CXL_HDM_DECODER0_DPA_SKIP_HI)
                        << 32 |
                        (ldl_le_p(d + R_CXL_HDM_DECODER0_DPA_SKIP_LO) &
                         0xf0000000);

        if (!FIELD_EX32(ctrl, CXL_HDM_DECODER0_CTRL, COMMITTED) ||
            FIELD_EX32(ctrl, CXL_HDM_DECODER0_CTRL, IW) != 0) {
            return false;
        }
        dpa_base += skip;
        if (dpa >= dpa_base && dpa - dpa_base < size) {
            *hpa = base + (dpa - dpa_base);
            return true;
        }
        dpa_base += size;
    }
    return false;
}

bool kona_report_poison(CXLType3Dev *ct3d, uint64_t dpa)
{
    uint64_t hpa;

    /* Only a vCPU's own access can take a machine check (not QMP, QTest). */
    if (!current_cpu || !kona_poison_hook ||
        !kona_dpa_to_hpa(ct3d, dpa, &hpa)) {
        trace_kona_poison(dpa, UINT64_MAX);
        return false;
    }
    /*
     * An access in the middle of a translation block (TCG, lockless
     * region) is replayed alone when it fails: the machine check waits
     * for that replay, so that it arrives on the faulting instruction.
     */
    if (!current_cpu->neg.can_do_io) {
        return false;
    }
    trace_kona_poison(dpa, hpa);
    kona_poison_hook(current_cpu, hpa);
    return true;
}

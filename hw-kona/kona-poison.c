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

/* A 64-bit decoder field: HI, then LO's top bits (256 MiB units). */
static uint64_t kona_hdm_field(const uint32_t *regs, int lo, int hi)
{
    return (uint64_t)ldl_le_p(regs + hi) << 32 |
           (ldl_le_p(regs + lo) & 0xf0000000);
}

void kona_hdm_decoder_read(CXLType3Dev *ct3d, int which, KonaHdmDecoder *d)
{
    int hdm_inc = R_CXL_HDM_DECODER1_BASE_LO - R_CXL_HDM_DECODER0_BASE_LO;
    const uint32_t *regs = ct3d->cxl_cstate.crb.cache_mem_registers +
                           which * hdm_inc;

    d->ctrl = ldl_le_p(regs + R_CXL_HDM_DECODER0_CTRL);
    d->base = kona_hdm_field(regs, R_CXL_HDM_DECODER0_BASE_LO,
                             R_CXL_HDM_DECODER0_BASE_HI);
    d->size = kona_hdm_field(regs, R_CXL_HDM_DECODER0_SIZE_LO,
                             R_CXL_HDM_DECODER0_SIZE_HI);
    d->dpa_skip = kona_hdm_field(regs, R_CXL_HDM_DECODER0_DPA_SKIP_LO,
                                 R_CXL_HDM_DECODER0_DPA_SKIP_HI);
}

/* The inverse of cxl-type3's HPA -> DPA decode, for 1-way decoders. */
bool kona_dpa_to_hpa(CXLType3Dev *ct3d, uint64_t dpa, uint64_t *hpa)
{
    uint32_t cap = ldl_le_p(ct3d->cxl_cstate.crb.cache_mem_registers +
                            R_CXL_HDM_DECODER_CAPABILITY);
    unsigned count = cxl_decoder_count_dec(FIELD_EX32(cap,
                                           CXL_HDM_DECODER_CAPABILITY,
                                           DECODER_COUNT));
    uint64_t dpa_base = 0;

    for (unsigned i = 0; i < count; i++) {
        KonaHdmDecoder d;

        kona_hdm_decoder_read(ct3d, i, &d);
        if (!FIELD_EX32(d.ctrl, CXL_HDM_DECODER0_CTRL, COMMITTED) ||
            FIELD_EX32(d.ctrl, CXL_HDM_DECODER0_CTRL, IW) != 0) {
            return false;
        }
        dpa_base += d.dpa_skip;
        if (dpa >= dpa_base && dpa - dpa_base < d.size) {
            *hpa = d.base + (dpa - dpa_base);
            return true;
        }
        dpa_base += d.size;
    }
    return false;
}

bool kona_poison_will_replay(void)
{
    return current_cpu && !current_cpu->neg.can_do_io;
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
    if (kona_poison_will_replay()) {
        return false;
    }
    trace_kona_poison(dpa, hpa);
    kona_poison_hook(current_cpu, hpa);
    return true;
}

/*
 * Kona-CXL: memory errors as x86 machine checks.
 *
 * The same signature KVM gives a guest for a host memory error hit by a
 * vCPU (target/i386/kvm/kvm.c, kvm_mce_inject with BUS_MCEERR_AR): an
 * uncorrected, action-required data load error with a valid physical
 * address, so Linux runs memory_failure() on the page and kills only the
 * task that touched it (on an AMD model, as TCG's "max" is, only if the
 * CPU advertises SUCCOR: qemu-patches/0010).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "kona-poison.h"

static void kona_mce_inject(CPUState *cs, uint64_t hpa)
{
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;
    uint64_t status = MCI_STATUS_VAL | MCI_STATUS_EN | MCI_STATUS_MISCV |
                      MCI_STATUS_ADDRV | MCI_STATUS_UC;
    uint64_t mcg_status = MCG_STATUS_MCIP | MCG_STATUS_RIPV |
                          MCG_STATUS_EIPV;

    if (!(env->mcg_cap & 0xff)) {
        return;     /* the guest CPU model has no machine-check banks */
    }
    if (IS_AMD_CPU(env)) {
        status |= MCI_STATUS_POISON;
        /*
         * QEMU gives every model MCG_SER_P, and a Linux guest that sees
         * it takes an uncorrected error without S (signalled) for one
         * that machine_check_poll() will find: it leaves the bank valid
         * and the task running on the all-ones data, and the next error
         * overflows the bank and panics.
         */
        if (env->mcg_cap & MCG_SER_P) {
            status |= MCI_STATUS_S;
        }
    } else {
        status |= MCI_STATUS_S | MCI_STATUS_AR | 0x134;
    }
    cpu_x86_inject_mce(NULL, cpu, 9, status, mcg_status, hpa,
                       (MCM_ADDR_PHYS << 6) | 0xc,
                       cpu_x86_support_mca_broadcast(env)
                       ? MCE_INJECT_BROADCAST : 0);
}

static void kona_mce_register(void)
{
    kona_poison_hook = kona_mce_inject;
}

type_init(kona_mce_register)

/*
 * Kona-CXL: copies through a mapping that may turn into SIGBUS (see
 * kona-guard.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <setjmp.h>
#include "qemu/atomic.h"
#include "qemu/thread.h"
#include "kona-guard.h"

typedef struct KonaGuard {
    sigjmp_buf env;
} KonaGuard;

/* The guard of the copy this thread is running, if any. */
static __thread KonaGuard *kona_guard;
/* This thread has SIGBUS unblocked for good (not the main loop's). */
static __thread bool kona_guard_unblocked;
static struct sigaction kona_guard_prev;
static QemuThread kona_guard_main;

static void kona_guard_sigbus(int sig, siginfo_t *info, void *ctx)
{
    KonaGuard *g = kona_guard;

    /* A machine check is QEMU's to handle (KVM forwards it to the guest). */
    if (g && info->si_code != BUS_MCEERR_AR && info->si_code != BUS_MCEERR_AO) {
        kona_guard = NULL;
        siglongjmp(g->env, 1);
    }
    if (kona_guard_prev.sa_flags & SA_SIGINFO) {
        kona_guard_prev.sa_sigaction(sig, info, ctx);
    } else if (kona_guard_prev.sa_handler != SIG_DFL &&
               kona_guard_prev.sa_handler != SIG_IGN) {
        kona_guard_prev.sa_handler(sig);
    } else {
        /* Returning faults again, and the default action ends QEMU. */
        signal(SIGBUS, SIG_DFL);
    }
}

static gpointer kona_guard_install(gpointer unused)
{
    struct sigaction sa = {
        .sa_sigaction = kona_guard_sigbus,
        .sa_flags = SA_SIGINFO,
    };

    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &kona_guard_prev);
    qemu_thread_get_self(&kona_guard_main);
    return NULL;
}

void kona_guard_init(void)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, kona_guard_install, NULL);
}

bool kona_guard_run(void (*fn)(void *opaque), void *opaque)
{
    bool restore = false;
    sigset_t bus, mask;
    KonaGuard g;

    /*
     * QEMU's threads run with SIGBUS blocked, and a fault's SIGBUS that is
     * blocked ends the process whatever the handler.  A thread of its own
     * (vCPU, fault thread) unblocks it for good at its first guarded copy:
     * a system call on every copy would cost more than the copy.  The main
     * loop takes machine checks from a signalfd and gets its mask back
     * after each copy.
     */
    sigemptyset(&bus);
    sigaddset(&bus, SIGBUS);
    if (!kona_guard_unblocked) {
        restore = qemu_thread_is_self(&kona_guard_main);
        pthread_sigmask(SIG_UNBLOCK, &bus, &mask);
        kona_guard_unblocked = !restore;
    }
    if (sigsetjmp(g.env, 0)) {
        /* The handler ran with SIGBUS blocked; no mask was saved. */
        pthread_sigmask(restore ? SIG_SETMASK : SIG_UNBLOCK,
                        restore ? &mask : &bus, NULL);
        return false;
    }
    kona_guard = &g;
    barrier();
    fn(opaque);
    barrier();
    kona_guard = NULL;
    if (restore) {
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
    }
    return true;
}

/*
 * Kona: copies through a mapping that may turn into SIGBUS (see
 * kona-guard.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "kona-guard.h"

#include <glib.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

typedef struct KonaGuard {
    sigjmp_buf env;
} KonaGuard;

/* The guard of the copy this thread is running, if any. */
static __thread KonaGuard *kona_guard;
/* This thread has SIGBUS unblocked for good. */
static __thread bool kona_guard_unblocked;
static struct sigaction kona_guard_prev;
static bool kona_guard_keep_mask;
static pthread_t kona_guard_keeper;

static void kona_guard_sigbus(int sig, siginfo_t *info, void *ctx)
{
    KonaGuard *g = kona_guard;

    /* A machine check is the process's to handle (KVM forwards it). */
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
        /* Returning faults again, and the default action ends us. */
        signal(SIGBUS, SIG_DFL);
    }
}

static gpointer kona_guard_install(gpointer keep_mask)
{
    struct sigaction sa = {
        .sa_sigaction = kona_guard_sigbus,
        .sa_flags = SA_SIGINFO,
    };

    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &kona_guard_prev);
    kona_guard_keep_mask = keep_mask != NULL;
    kona_guard_keeper = pthread_self();
    return NULL;
}

void kona_guard_init(bool keep_mask)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, kona_guard_install, keep_mask ? &once : NULL);
}

bool kona_guard_run(void (*fn)(void *opaque), void *opaque)
{
    volatile bool restore = false;  /* read after a siglongjmp */
    sigset_t bus, mask;
    KonaGuard g;

    /*
     * A fault's SIGBUS that is blocked ends the process whatever the
     * handler, and QEMU's threads run with it blocked.  A thread unblocks
     * it for good at its first guarded copy (a system call on every copy
     * would cost more than the copy), except one that keeps its mask: it
     * gets the mask back after each copy.
     */
    sigemptyset(&bus);
    sigaddset(&bus, SIGBUS);
    if (!kona_guard_unblocked) {
        restore = kona_guard_keep_mask &&
                  pthread_equal(pthread_self(), kona_guard_keeper);
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
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    fn(opaque);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    kona_guard = NULL;
    if (restore) {
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
    }
    return true;
}

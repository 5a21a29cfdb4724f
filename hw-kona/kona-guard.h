/*
 * Kona-CXL: copies through a mapping that may turn into SIGBUS.
 *
 * A memnode with --data-dir hands the device its slab's file, which cannot
 * be sealed: whoever may write the file can shrink it, and a load or
 * store of a mapped page past its new end raises SIGBUS, which QEMU
 * answers by ending itself (system/cpus.c re-raises every SIGBUS that is
 * not a machine check).  A copy run under kona_guard_run() ends instead,
 * and fails like a memory node that went away.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_GUARD_H
#define KONA_GUARD_H

/*
 * Install the SIGBUS handler the guards need, once per process (it hands
 * every other SIGBUS to the handler that was there before: QEMU's).  Call
 * before the first kona_guard_run(), from the main thread.
 */
void kona_guard_init(void);

/*
 * Run @fn(@opaque); false if it raised SIGBUS (not a machine check), which
 * ended it there.  @fn must leave nothing half done that a jump out of it
 * would break: no locks taken, no memory allocated.
 */
bool kona_guard_run(void (*fn)(void *opaque), void *opaque);

#endif /* KONA_GUARD_H */

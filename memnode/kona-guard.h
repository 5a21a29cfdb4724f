/*
 * Kona: copies through a mapping that may turn into SIGBUS.
 *
 * A memnode with --data-dir keeps each slab in a file, which cannot be
 * sealed like a memfd: whoever may write the file can shrink it, and a
 * load or store of a mapped page past its new end raises SIGBUS, which
 * ends the process (QEMU re-raises every SIGBUS that is not a machine
 * check).  Both the memnode and the kona-cxl device, which maps the file
 * too, copy through such mappings under kona_guard_run(): a copy that
 * meets a lost page ends there and fails instead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_GUARD_H
#define KONA_GUARD_H

#include <stdbool.h>

/*
 * Install the SIGBUS handler the guards need, once per process (it hands
 * every other SIGBUS to the handler that was there before).  With
 * @keep_mask the calling thread keeps SIGBUS blocked outside its guarded
 * copies (QEMU's main loop takes machine checks from a signalfd); any
 * other thread has it unblocked for good at its first guarded copy.
 */
void kona_guard_init(bool keep_mask);

/*
 * Run @fn(@opaque); false if it raised SIGBUS (not a machine check), which
 * ended it there.  @fn must leave nothing half done that a jump out of it
 * would break: no locks taken, no memory allocated.
 */
bool kona_guard_run(void (*fn)(void *opaque), void *opaque);

#endif /* KONA_GUARD_H */

/*
 * Kona-CXL: the control registers (PCI BAR 5) as the device implements
 * them (kona-regs.c); their layout, shared with the guest, is kona-regs.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_CONTROL_H
#define KONA_CONTROL_H

#include "kona-state.h"

/* Create the register region and register it as BAR 5. */
void kona_control_init(KonaCxlState *s);

#endif /* KONA_CONTROL_H */

/*
 * Kona-CXL: committed HDM decoders served directly (kona-direct.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KONA_DIRECT_H
#define KONA_DIRECT_H

#include "kona-state.h"

/* @target: the region direct decode maps (the mode's guest region). */
void kona_direct_init(KonaCxlState *s, MemoryRegion *target);
void kona_direct_destroy(KonaCxlState *s);
void kona_direct_decoder_changed(CXLType3Dev *ct3d, int which,
                                 bool committed);
void kona_direct_reset(KonaCxlState *s);
/* A media access came through the window while a decoder is unmapped. */
void kona_direct_slow_access(KonaCxlState *s);
uint32_t kona_direct_mapped(KonaCxlState *s);
/* Is this thread probing @s's decode (its media reads only record)? */
bool kona_direct_probing(KonaCxlState *s);

#endif /* KONA_DIRECT_H */

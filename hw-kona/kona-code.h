/*
 * Kona-CXL: stores the device performs into guest-visible RAM, and TCG's
 * translated code of that RAM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef KONA_CODE_H
#define KONA_CODE_H

#include "exec/memory.h"
#include "exec/cpu-common.h"

/*
 * The device stored LEN bytes at ADDR of the ROM device ROM, whose RAM
 * block starts at ROM_BASE (memory_region_get_ram_addr): drop TCG's
 * translations of that range and let dirty logging see the store, as a
 * vCPU's own store to RAM would.
 */
void kona_code_stored(MemoryRegion *rom, ram_addr_t rom_base, hwaddr addr,
                      unsigned len);

#endif /* KONA_CODE_H */

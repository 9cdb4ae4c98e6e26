/*
 * qemu-tiers RAS: dirty marking of retired pages.
 *
 * A file of its own because exec/ram_addr.h, which sets dirty bits per
 * client, is target specific (it includes cpu.h) while ras-policy.c is
 * built once for every target.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "exec/ram_addr.h"
#include "ras-dirty.h"

/*
 * A retirement moved @len bytes at @offset of @mr to other host pages
 * with the same contents.  Migration (and display) must send them again;
 * TCG's code tracking must not change.  memory_region_set_dirty() would
 * set DIRTY_MEMORY_CODE too, and under TCG a clear code bit is what says
 * "translated code lives on this page": setting it lets the guest's next
 * write to the page skip invalidating that code, which then runs stale.
 * The translated code itself stays valid: the bytes did not change.
 */
void ras_mark_moved(MemoryRegion *mr, hwaddr offset, hwaddr len)
{
    cpu_physical_memory_set_dirty_range(memory_region_get_ram_addr(mr) +
                                        offset, len,
                                        memory_region_get_dirty_log_mask(mr) &
                                        ~(1 << DIRTY_MEMORY_CODE));
}

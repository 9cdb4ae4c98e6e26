/*
 * qemu-tiers RAS: dirty marking of retired pages (ras-dirty.c).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_RAS_RAS_DIRTY_H
#define HW_RAS_RAS_DIRTY_H

#include "exec/memory.h"

void ras_mark_moved(MemoryRegion *mr, hwaddr offset, hwaddr len);

#endif

/*
 * qemu-tiers kernel tier: the ACPI PM timer (PIIX4 and ICH9).
 *
 * The timer is the virtual clock scaled to 3.579545 MHz, 24 bits wide:
 * no state, no lock (QEMU_CLOCK_VIRTUAL is read under its own seqlock),
 * and QEMU's model ignores writes.  The firmware places it (PM I/O base
 * + 8, through PCI configuration space), so its route follows the
 * "acpi-tmr" region.
 *
 * Served inline: aligned 4-byte reads (acpi_pm_tmr_get(), the function
 * QEMU's acpi_pm_tmr_read() uses) and 4-byte writes (ignored, as QEMU
 * does).  Narrower or unaligned accesses do not match the route
 * (access-size 4) and go to QEMU's model, which widens and extracts them.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "hw/acpi/acpi.h"
#include "hw/split/split-tier.h"

static ExitInlineResult pm_timer_inline_access(void *opaque,
                                               const ExitAccess *access,
                                               uint64_t *data)
{
    if (access->size != 4) {
        return EXIT_INLINE_DECLINE;
    }
    if (!access->is_write) {
        *data = acpi_pm_tmr_get(opaque);
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps pm_timer_inline_ops = {
    .access = pm_timer_inline_access,
};

static const SplitTierPorts pm_timer_ports[] = {
    { .route = "tier-pm-timer", .size = 4, .access_size = 4,
      .region = "acpi-tmr", .follow = true },
    { }
};

static void pm_timer_tier_init(void)
{
    split_tier_register("pm-timer", &pm_timer_inline_ops, NULL,
                        pm_timer_ports);
}

type_init(pm_timer_tier_init);

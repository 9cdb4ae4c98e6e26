/*
 * qemu-tiers kernel tier: the ACPI PM timer (PIIX4 and ICH9).
 *
 * The timer is the virtual clock scaled to 3.579545 MHz, 24 bits wide:
 * no state, no lock (QEMU_CLOCK_VIRTUAL is read under its own seqlock),
 * and QEMU's model ignores writes.  The firmware places it (PM I/O base
 * + 8, through PCI configuration space), so its route follows the
 * "acpi-tmr" region, and the handler works on the SplitTierPlace the tier
 * keeps for it: the region's state and where it is now.
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

static bool pm_timer_inline_owns(void *opaque, ExitEventType type,
                                 uint64_t start, uint64_t last)
{
    SplitTierPlace *place = opaque;
    uint64_t at = qatomic_read(&place->at);

    return at != UINT64_MAX &&
           split_tier_owns_ports(type, start, last, at, 4);
}

static ExitInlineResult pm_timer_inline_access(void *opaque,
                                               const ExitAccess *access,
                                               uint64_t *data)
{
    SplitTierPlace *place = opaque;

    /* Only where the timer is now: the firmware may have moved it. */
    if (access->type != EXIT_EVENT_PIO || access->size != 4 ||
        access->addr != qatomic_read(&place->at)) {
        return EXIT_INLINE_DECLINE;
    }
    if (!access->is_write) {
        *data = acpi_pm_tmr_get(place->opaque);
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps pm_timer_inline_ops = {
    .access = pm_timer_inline_access,
    .owns = pm_timer_inline_owns,
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

/*
 * qemu-tiers kernel tier: inline handlers for the hot legacy ports.
 *
 * Each device of the tier registers an inline handler with the exit
 * router and lists the port ranges it serves.  While the kernel tier is
 * on (exit_router_kernel_tier_enabled()), the tier installs one route per
 * range, "tier-<name>" in /objects, handler=inline at priority -1: a
 * user's route at the default priority 0 wins over it, and a user may
 * delete it with exit-route-del.  A range is installed only if QEMU's own
 * model of that port is the region that owns it (checked by name in
 * address_space_io), so a machine without the device, or with another
 * device on the port, keeps its vanilla path.
 *
 * Each handler also says which ports are its own (ExitInlineOps.owns):
 * a route that names it for any other port, or for MMIO or an MSR, is
 * refused, and its access function declines anything else.
 *
 * Locking: registration and route changes run with the BQL held
 * (asserted).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_SPLIT_SPLIT_TIER_H
#define HW_SPLIT_SPLIT_TIER_H

#include "accel/route/exit-router.h"

/* One port range a tier device serves. */
typedef struct SplitTierPorts {
    const char *route;          /* route id, "tier-..." */
    uint16_t start;
    uint16_t size;
    uint8_t access_size;        /* 0: any size the handler accepts */
    const char *region;         /* name of QEMU's MemoryRegion at @start */
    /*
     * The guest (firmware) places @region, e.g. the ACPI PM timer in the
     * PM I/O block: ignore @start; the route follows the region wherever
     * address_space_io maps it (a MemoryListener), and the handler's
     * opaque is the region's opaque.
     */
    bool follow;
} SplitTierPorts;

/*
 * Where a device's follow port is now: the opaque its inline handler is
 * registered with, instead of the device's own.  @opaque is the region's
 * opaque, @at its first port, or UINT64_MAX while the region is not
 * mapped.  Written under the BQL (tier.c), read by the handler with
 * qatomic_read(), which declines any other port.
 */
typedef struct SplitTierPlace {
    void *opaque;
    uint64_t at;
} SplitTierPlace;

/*
 * For ExitInlineOps.owns: is [@start, @last] of event @type within the
 * @n ports from @base?
 */
static inline bool split_tier_owns_ports(ExitEventType type, uint64_t start,
                                         uint64_t last, uint64_t base,
                                         unsigned n)
{
    return type == EXIT_EVENT_PIO && start <= last && start >= base &&
           last - base < n;
}

/*
 * Register the inline handler @name and its port ranges (@ports is
 * NULL-route terminated and must stay valid).  Routes are installed at
 * machine-init-done, or at once if that has passed.  A device with a
 * follow port gets a SplitTierPlace as its handler's opaque (@opaque is
 * then unused).  BQL held.
 */
void split_tier_register(const char *name, const ExitInlineOps *ops,
                         void *opaque, const SplitTierPorts *ports);

/* Remove the handler and its routes (device unrealize).  BQL held. */
void split_tier_unregister(const char *name);

/*
 * At machine-init-done, call @attach for every object of QOM type @type
 * in the machine (the device then calls split_tier_register() with its
 * state as opaque).  For type_init() time.
 */
void split_tier_register_type(const char *type, void (*attach)(Object *));

#endif

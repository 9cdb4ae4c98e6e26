/*
 * qemu-tiers kernel tier: port 0x61 (NMI status and control: speaker
 * data, PIT channel 2 gate and output, the refresh toggle).
 *
 * QEMU models it in the PC speaker (hw/audio/pcspk.c); the tier calls
 * that model's own port functions under its lock (pcspk_port_read/
 * write), which reach channel 2 under the PIT's lock.  Linux polls it in
 * tight loops while it calibrates the TSC against the PIT.
 *
 * Served inline: byte reads; byte writes while no audio voice is open.
 * Declined: writes with an audio backend attached (starting or stopping
 * the voice needs the BQL).
 *
 * Only with QEMU's own i8254.  With KVM's in-kernel PIT (kvm-pit, the
 * default under KVM), channel 2 lives in the kernel: reading it
 * (kvm_pit_get()) overwrites the whole userspace copy of the PIT and
 * setting its gate is a get/modify/put of all channels, which is safe
 * only under the BQL; two vCPUs doing either without it lose gate
 * writes.  There port 0x61 stays on QEMU's path.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qom/object.h"
#include "qapi/error.h"
#include "hw/audio/pcspk.h"
#include "hw/timer/i8254.h"
#include "hw/split/split-tier.h"
#include "trace.h"

static bool port61_inline_owns(void *opaque, ExitEventType type,
                               uint64_t start, uint64_t last)
{
    return split_tier_owns_ports(type, start, last, 0x61, 1);
}

static ExitInlineResult port61_inline_access(void *opaque,
                                             const ExitAccess *access,
                                             uint64_t *data)
{
    if (access->type != EXIT_EVENT_PIO || access->size != 1 ||
        access->addr != 0x61) {
        return EXIT_INLINE_DECLINE;
    }
    if (access->is_write) {
        return pcspk_port_write(opaque, access->data) ?
               EXIT_INLINE_DONE : EXIT_INLINE_DECLINE;
    }
    *data = pcspk_port_read(opaque);
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps port61_inline_ops = {
    .access = port61_inline_access,
    .owns = port61_inline_owns,
};

static const SplitTierPorts port61_ports[] = {
    { .route = "tier-port61", .start = 0x61, .size = 1, .access_size = 1,
      .region = "pcspk" },
    { }
};

static void port61_tier_attach(Object *obj)
{
    Object *pit = object_property_get_link(obj, "pit", &error_abort);

    if (!object_dynamic_cast(pit, TYPE_I8254)) {
        trace_split_port61_skip(object_get_typename(pit));
        return;
    }
    split_tier_register("port61", &port61_inline_ops, obj, port61_ports);
}

static void port61_tier_init(void)
{
    split_tier_register_type(TYPE_PC_SPEAKER, port61_tier_attach);
}

type_init(port61_tier_init);

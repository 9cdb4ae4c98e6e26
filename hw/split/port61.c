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
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qom/object.h"
#include "hw/audio/pcspk.h"
#include "hw/split/split-tier.h"

static ExitInlineResult port61_inline_access(void *opaque,
                                             const ExitAccess *access,
                                             uint64_t *data)
{
    if (access->size != 1) {
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
};

static const SplitTierPorts port61_ports[] = {
    { .route = "tier-port61", .start = 0x61, .size = 1, .access_size = 1,
      .region = "pcspk" },
    { }
};

static void port61_tier_attach(Object *obj)
{
    split_tier_register("port61", &port61_inline_ops, obj, port61_ports);
}

static void port61_tier_init(void)
{
    split_tier_register_type(TYPE_PC_SPEAKER, port61_tier_attach);
}

type_init(port61_tier_init);

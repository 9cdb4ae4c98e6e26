/*
 * qemu-tiers kernel tier: port 0x80, the POST-code / I/O-delay port.
 *
 * QEMU's model (ioport80 in hw/i386/pc.c) is a sink with no state:
 * writes vanish and reads float high.  Linux's outb_p() writes it after
 * slow ISA accesses under TCG (KVM guests get KVM_FEATURE_NOP_IO_DELAY),
 * so it is hot and the cheapest port to serve inline.
 *
 * Served inline: byte reads (0xff) and byte writes.  Declined: nothing
 * else reaches it, since the route is limited to one byte at 0x80 (a
 * wider access also touches 0x81, the DMA page register, and belongs to
 * the full model).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "hw/split/split-tier.h"

static bool port80_inline_owns(void *opaque, ExitEventType type,
                               uint64_t start, uint64_t last)
{
    return split_tier_owns_ports(type, start, last, 0x80, 1);
}

static ExitInlineResult port80_inline_access(void *opaque,
                                             const ExitAccess *access,
                                             uint64_t *data)
{
    if (access->type != EXIT_EVENT_PIO || access->size != 1 ||
        access->addr != 0x80) {
        return EXIT_INLINE_DECLINE;
    }
    if (!access->is_write) {
        *data = 0xff;
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps port80_inline_ops = {
    .access = port80_inline_access,
    .owns = port80_inline_owns,
};

static const SplitTierPorts port80_ports[] = {
    { .route = "tier-port80", .start = 0x80, .size = 1, .access_size = 1,
      .region = "ioport80" },
    { }
};

static void port80_tier_init(void)
{
    split_tier_register("port80", &port80_inline_ops, NULL, port80_ports);
}

type_init(port80_tier_init);

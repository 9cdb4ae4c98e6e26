/*
 * qemu-tiers kernel tier: the i8042 keyboard controller's status register.
 *
 * Drivers poll the status register (port 0x64) before every data byte
 * and command: IBF must be clear before a write, OBF set before a read.
 * Linux's i8042 driver does it thousands of times while it probes the
 * controller, the keyboard and the AUX port, and again on every key.
 *
 * Served inline: byte reads of 0x64, through QEMU's own model
 * (i8042_status_read_unlocked() in hw/input/pckbd.c): the status byte is
 * published in one store inside a sequence-counted writer section, and a
 * read that overlaps a write declines.
 * Declined: reads that race with an update of the model (the BQL path
 * then waits for it); every write to 0x64 (controller commands queue
 * bytes and change IRQ1/IRQ12, which needs the BQL).  Port 0x60 has no
 * route: a data read pops a PS/2 queue and lowers the IRQ line.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "hw/input/i8042.h"
#include "hw/split/split-tier.h"
#include "trace.h"

static bool i8042_inline_owns(void *opaque, ExitEventType type,
                              uint64_t start, uint64_t last)
{
    return split_tier_owns_ports(type, start, last, 0x64, 1);
}

static ExitInlineResult i8042_inline_access(void *opaque,
                                            const ExitAccess *access,
                                            uint64_t *data)
{
    uint8_t status;

    if (access->type != EXIT_EVENT_PIO || access->size != 1 ||
        access->is_write || access->addr != 0x64) {
        return EXIT_INLINE_DECLINE;
    }
    if (!i8042_status_read_unlocked(opaque, &status)) {
        trace_split_i8042_decline("status changing");
        return EXIT_INLINE_DECLINE;
    }
    *data = status;
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps i8042_inline_ops = {
    .access = i8042_inline_access,
    .owns = i8042_inline_owns,
};

static const SplitTierPorts i8042_ports[] = {
    { .route = "tier-i8042", .start = 0x64, .size = 1, .access_size = 1,
      .region = "i8042-cmd" },
    { }
};

static void i8042_tier_attach(Object *obj)
{
    split_tier_register("i8042", &i8042_inline_ops, I8042(obj), i8042_ports);
}

static void i8042_tier_init(void)
{
    split_tier_register_type(TYPE_I8042, i8042_tier_attach);
}

type_init(i8042_tier_init);

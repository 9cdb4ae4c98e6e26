/*
 * qemu-tiers kernel tier: the i8254 PIT.
 *
 * Works on QEMU's own PITCommonState (hw/timer/i8254.c), under the
 * device's lock, through pit_register_read/write, the port state machine
 * QEMU's MemoryRegionOps use too: one state, the same vmstate.  The
 * counters are derived from the virtual clock (read under its seqlock),
 * so counter reads need nothing else.
 *
 * Served inline (byte accesses; the route is limited to one byte):
 *  - every read: status (after read-back), latched count, live count in
 *    LSB/MSB/word order, and the control port (reads 0);
 *  - control words: counter latch, read-back (count and status latch),
 *    mode/access programming;
 *  - count writes to channels 1 and 2.
 * Declined, before any state change: every write to channel 0's count
 * port (base + 0).  A count byte there may complete a load, which
 * reprograms channel 0's IRQ timer and sets IRQ0 (qemu_set_irq needs the
 * BQL in QEMU 10.0); which byte does depends on the model's read/write
 * state, and the tier does not decode that a second time: it leaves the
 * whole port to QEMU's model.  Channel 0 is programmed rarely (its
 * counter is read often, and reads are served).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "hw/timer/i8254_internal.h"
#include "hw/split/split-tier.h"
#include "trace.h"

static bool pit_inline_owns(void *opaque, ExitEventType type,
                            uint64_t start, uint64_t last)
{
    PITCommonState *pit = opaque;

    return split_tier_owns_ports(type, start, last, pit->iobase, 4);
}

static ExitInlineResult pit_inline_access(void *opaque,
                                          const ExitAccess *access,
                                          uint64_t *data)
{
    PITCommonState *pit = opaque;
    uint64_t addr = access->addr - pit->iobase;

    if (access->type != EXIT_EVENT_PIO || access->size != 1 || addr > 3) {
        return EXIT_INLINE_DECLINE;
    }
    if (access->is_write && addr == 0) {
        trace_split_pit_decline(addr, "channel 0 count: QEMU's model");
        return EXIT_INLINE_DECLINE;
    }
    TIER_LOCK_GUARD(&pit->lock);
    if (access->is_write) {
        pit_register_write(pit, addr, access->data);
    } else {
        *data = pit_register_read(pit, addr);
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps pit_inline_ops = {
    .access = pit_inline_access,
    .owns = pit_inline_owns,
};

/* Register a QEMU i8254 (not kvm-i8254) with the tier. */
static void pit_tier_attach(Object *obj)
{
    PITCommonState *pit = PIT_COMMON(obj);
    SplitTierPorts *ports;

    ports = g_new0(SplitTierPorts, 2);
    ports[0] = (SplitTierPorts) {
        .route = "tier-pit", .start = pit->iobase, .size = 4,
        .access_size = 1, .region = "pit",
    };
    split_tier_register("pit", &pit_inline_ops, pit, ports);
}

static void pit_tier_init(void)
{
    split_tier_register_type(TYPE_I8254, pit_tier_attach);
}

type_init(pit_tier_init);

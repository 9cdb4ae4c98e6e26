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
 *  - count writes to channels 1 and 2, and the first byte of a word
 *    write to channel 0.
 * Declined, before any state change: loads of channel 0's count, which
 * reprogram its IRQ timer and set IRQ0 (qemu_set_irq needs the BQL in
 * QEMU 10.0).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "hw/timer/i8254_internal.h"
#include "hw/split/split-tier.h"
#include "trace.h"

static ExitInlineResult pit_inline_access(void *opaque,
                                          const ExitAccess *access,
                                          uint64_t *data)
{
    PITCommonState *pit = opaque;
    uint32_t addr = access->addr - pit->iobase;

    if (access->size != 1 || addr > 3) {
        return EXIT_INLINE_DECLINE;
    }
    TIER_LOCK_GUARD(&pit->lock);
    if (access->is_write) {
        if (pit_register_write_may_update(pit, addr)) {
            trace_split_pit_decline(addr, "channel 0 count load sets IRQ0");
            return EXIT_INLINE_DECLINE;
        }
        pit_register_write(pit, addr, access->data);
    } else {
        *data = pit_register_read(pit, addr);
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps pit_inline_ops = {
    .access = pit_inline_access,
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

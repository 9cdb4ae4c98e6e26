/*
 * qemu-tiers kernel tier: the i8259 PIC pair and its ELCRs.
 *
 * Works on QEMU's own PICCommonState (hw/intc/i8259.c), under the
 * device's lock, through the register helpers that QEMU's MemoryRegionOps
 * use too (pic_register_read/write, pic_elcr_read/write): one state, one
 * state machine, the same vmstate.
 *
 * Served inline (byte accesses; the routes are limited to one byte):
 *  - base+0 read: IRR or ISR, as OCW3's read-register select says;
 *  - base+1 read: IMR;
 *  - base+0 write: OCW3 (read select, poll command, special mask) and the
 *    OCW2 commands that only change state (rotate in AEOI set/clear,
 *    no-op);
 *  - base+1 write: ICW2, ICW3, ICW4 (during initialisation);
 *  - ELCR read and write.
 * Declined, before any state change, to QEMU's model:
 *  - reads in poll mode (a poll read acknowledges an interrupt);
 *  - ICW1 (init reset), the EOI and priority commands of OCW2, and OCW1
 *    (IMR writes): each may change the INT output line, and raising or
 *    lowering a line needs the BQL in QEMU 10.0 (interrupt_request is
 *    not atomic), which the tier does not take.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "hw/isa/i8259_internal.h"
#include "hw/split/split-tier.h"
#include "trace.h"

static ExitInlineResult pic_inline_access(void *opaque,
                                          const ExitAccess *access,
                                          uint64_t *data)
{
    PICCommonState *s = opaque;
    uint32_t addr;

    if (access->size != 1) {
        return EXIT_INLINE_DECLINE;
    }
    QEMU_LOCK_GUARD(&s->lock);
    if (access->addr == s->elcr_addr) {
        if (access->is_write) {
            pic_elcr_write(s, access->data);
        } else {
            *data = pic_elcr_read(s);
        }
        return EXIT_INLINE_DONE;
    }
    addr = access->addr - s->iobase;
    if (access->is_write) {
        if (pic_register_write_may_update(s, addr, access->data)) {
            trace_split_pic_decline(s->master, addr, "INT output may change");
            return EXIT_INLINE_DECLINE;
        }
        pic_register_write(s, addr, access->data);
    } else {
        if (pic_register_read_has_effects(s)) {
            trace_split_pic_decline(s->master, addr, "poll mode");
            return EXIT_INLINE_DECLINE;
        }
        *data = pic_register_read(s, addr);
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps pic_inline_ops = {
    .access = pic_inline_access,
};

/* Register a QEMU i8259 (not kvm-i8259) with the tier. */
static void pic_tier_attach(Object *obj)
{
    PICCommonState *s = PIC_COMMON(obj);
    SplitTierPorts *ports;
    const char *n;

    n = s->master ? "1" : "2";
    ports = g_new0(SplitTierPorts, 3);
    ports[0] = (SplitTierPorts) {
        .route = g_strdup_printf("tier-pic%s", n), .start = s->iobase,
        .size = 2, .access_size = 1, .region = "pic",
    };
    if (s->elcr_addr != (uint32_t)-1) {
        ports[1] = (SplitTierPorts) {
            .route = g_strdup_printf("tier-elcr%s", n),
            .start = s->elcr_addr, .size = 1, .access_size = 1,
            .region = "elcr",
        };
    }
    split_tier_register(s->master ? "pic-master" : "pic-slave",
                        &pic_inline_ops, s, ports);
}

static void pic_tier_init(void)
{
    split_tier_register_type("isa-i8259", pic_tier_attach);
}

type_init(pic_tier_init);

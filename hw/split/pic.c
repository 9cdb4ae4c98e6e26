/*
 * qemu-tiers kernel tier: the i8259 PIC pair and its ELCRs.
 *
 * Works on QEMU's own PICCommonState (hw/intc/i8259.c) through the
 * register helpers that QEMU's MemoryRegionOps use too (pic_register_read/
 * write, pic_elcr_read/write): one state, one state machine, the same
 * vmstate.  Writes run under the device's lock; reads under its sequence
 * count, without the lock (hw/split/tier-lock.h).
 *
 * Served inline (byte accesses; the routes are limited to one byte):
 *  - base+0 read: IRR or ISR, as OCW3's read-register select says;
 *  - base+1 read: IMR;
 *  - every write: ICW1..ICW4, OCW1 (IMR), OCW2 (EOI, specific EOI,
 *    rotate, set priority), OCW3 (read select, poll command, special
 *    mask);
 *  - ELCR read and write.
 * Declined, before any state change, to QEMU's model: reads in poll mode
 * (a poll read acknowledges an interrupt, which is the CPU's business and
 * runs under the BQL).
 *
 * The INT output.  Some writes (ICW1, OCW1, the EOI and priority
 * commands) make QEMU's model drive the INT line again
 * (pic_update_irq()), and driving a line needs the BQL in QEMU 10.0
 * (interrupt_request is not atomic).  The tier does not predict which:
 * it makes every register write under the device lock with the drive
 * deferred, so that the model itself records whether it wanted to drive
 * (update_deferred), then:
 *  - master, line last driven low (int_driven_low) and the registers
 *    still say low: nothing to drive (QEMU's model would lower a line
 *    that is already low, which changes nothing);
 *  - otherwise (an edge, a line that stays high, any slave change, which
 *    reaches the master's IRQ2 input): drop the device lock, take the
 *    BQL, and drive the line from the registers as they are then
 *    (pic_update_output()).  The BQL is taken only there, never with
 *    the device lock held (docs/locking.rst).  Under qtest the caller
 *    already holds the BQL.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "hw/isa/i8259_internal.h"
#include "hw/split/split-tier.h"
#include "trace.h"

/*
 * A register write made with the drive of the INT output deferred; see
 * "The INT output" above.  Returns whether the line must be driven.
 * s->lock held.
 */
static bool pic_write_deferring_output(PICCommonState *s, uint32_t addr,
                                       uint8_t val)
{
    /*
     * The line as last driven, not as the registers say now: OCW3's
     * special mask changes the latter without driving the line.
     */
    bool was_low = s->int_driven_low, after, drive;

    tier_lock_assert_held(&s->lock);
    s->defer_update = true;
    pic_register_write(s, addr, val);
    s->defer_update = false;
    after = pic_get_output(s);
    drive = s->update_deferred && (!s->master || !was_low || after);
    s->update_deferred = false;
    if (drive) {
        trace_split_pic_drive(s->master, addr, !was_low, after);
    }
    return drive;
}

/*
 * Drive the INT output from the registers as they are once the BQL and
 * the device lock are held, in that order (docs/locking.rst).  The
 * caller has dropped the device lock: a vCPU holding the BQL may be
 * waiting for it, e.g. in pic_read_irq().  Under qtest the caller
 * already holds the BQL.
 */
static void pic_drive_output(PICCommonState *s)
{
    bool bql_held = bql_locked();

    /* Order: BQL, then the device lock; never the other way round. */
    assert(!tier_lock_held(&s->lock));
    if (!bql_held) {
        bql_lock();
    }
    pic_update_output(s);
    if (!bql_held) {
        bql_unlock();
    }
}

/*
 * A register read, without the device lock: under its sequence count
 * (hw/split/tier-lock.h), since outside poll mode a read only looks at
 * IRR/ISR (OCW3's read-register select), IMR or the ELCR.
 */
static ExitInlineResult pic_inline_read(PICCommonState *s, uint16_t port,
                                        uint64_t *data)
{
    uint32_t addr = port - s->iobase;
    bool poll;
    TierReader r;

    tier_read_begin(&r, &s->lock);
    do {
        poll = false;
        if (port == s->elcr_addr) {
            *data = pic_elcr_read(s);
        } else if (pic_register_read_has_effects(s)) {
            poll = true;
        } else {
            *data = pic_register_peek(s, addr);
        }
    } while (tier_read_retry(&r));
    if (poll) {
        trace_split_pic_decline(s->master, addr, "poll mode");
        return EXIT_INLINE_DECLINE;
    }
    return EXIT_INLINE_DONE;
}

/* The chip's own ports: its two registers and its ELCR, if any. */
static bool pic_owns_port(const PICCommonState *s, uint64_t port)
{
    return port == s->iobase || port == s->iobase + 1 ||
           (s->elcr_addr != (uint32_t)-1 && port == s->elcr_addr);
}

static bool pic_inline_owns(void *opaque, ExitEventType type, uint64_t start,
                            uint64_t last)
{
    uint64_t p;

    if (type != EXIT_EVENT_PIO || start > last || last - start > 2) {
        return false;
    }
    for (p = start; p <= last; p++) {
        if (!pic_owns_port(opaque, p)) {
            return false;
        }
    }
    return true;
}

static ExitInlineResult pic_inline_access(void *opaque,
                                          const ExitAccess *access,
                                          uint64_t *data)
{
    PICCommonState *s = opaque;
    uint32_t addr;
    bool drive = false;

    if (access->type != EXIT_EVENT_PIO || access->size != 1 ||
        !pic_owns_port(s, access->addr)) {
        return EXIT_INLINE_DECLINE;
    }
    if (!access->is_write) {
        return pic_inline_read(s, access->addr, data);
    }
    addr = access->addr - s->iobase;
    tier_lock(&s->lock);
    if (access->addr == s->elcr_addr) {
        pic_elcr_write(s, access->data);
    } else {
        drive = pic_write_deferring_output(s, addr, access->data);
    }
    tier_unlock(&s->lock);
    if (drive) {
        pic_drive_output(s);
    }
    return EXIT_INLINE_DONE;
}

static const ExitInlineOps pic_inline_ops = {
    .access = pic_inline_access,
    .owns = pic_inline_owns,
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

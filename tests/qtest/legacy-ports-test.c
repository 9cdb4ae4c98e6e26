/*
 * qtest of the hot legacy ports on the pc machine: i8254 PIT, i8259 PIC
 * pair with ELCR, i8042 status, port 0x61 and the version QEMU reports.
 *
 * These are the ports the kernel tier will answer inline.  The test pins
 * down QEMU 10.0's behaviour through the guest-visible interface only, so
 * the same binary runs against the vanilla twin and the fork, and must
 * pass on both, with the tier on or off.
 *
 * Under qtest the virtual clock moves only with clock_step, so PIT counts
 * are exact, not approximate.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "qemu/timer.h"
#include "libqtest.h"
#include "qobject/qdict.h"

#define PIT_FREQ        1193182
#define PIT_CH0         0x40
#define PIT_CH2         0x42
#define PIT_MODE        0x43
#define PIC1_CMD        0x20
#define PIC1_DATA       0x21
#define PIC2_CMD        0xa0
#define PIC2_DATA       0xa1
#define ELCR1           0x4d0
#define ELCR2           0x4d1
#define KBD_DATA        0x60
#define KBD_STATUS      0x64
#define PORT_61         0x61

/* Control word: SC1 SC0 RW1 RW0 M2 M1 M0 BCD */
#define PIT_CW(ch, rw, mode)  (((ch) << 6) | ((rw) << 4) | ((mode) << 1))
#define PIT_RW_LOHI     3
#define PIT_LATCH(ch)   ((ch) << 6)
/* Read-back: 11, /COUNT, /STATUS, CNT2, CNT1, CNT0, 0 */
#define PIT_READBACK_STATUS(chmask)  (0xc0 | 0x20 | ((chmask) << 1))

static QTestState *start_pc(void)
{
    return qtest_init("-machine pc -nodefaults");
}

/*
 * Loads a count and returns the virtual time of the load.  qtest has no
 * "read the clock" command and refuses a zero step, so step 1 ns.
 */
static int64_t pit_load(QTestState *qts, int ch, int mode, uint16_t count)
{
    int64_t now = qtest_clock_step(qts, 1);

    qtest_outb(qts, PIT_MODE, PIT_CW(ch, PIT_RW_LOHI, mode));
    qtest_outb(qts, PIT_CH0 + ch, count & 0xff);
    qtest_outb(qts, PIT_CH0 + ch, count >> 8);
    return now;
}

static uint16_t pit_latch_read(QTestState *qts, int ch)
{
    uint16_t lo, hi;

    qtest_outb(qts, PIT_MODE, PIT_LATCH(ch));
    lo = qtest_inb(qts, PIT_CH0 + ch);
    hi = qtest_inb(qts, PIT_CH0 + ch);
    return lo | (hi << 8);
}

static uint64_t pit_ticks(int64_t ns)
{
    return muldiv64(ns, PIT_FREQ, NANOSECONDS_PER_SECOND);
}

/* Mode 2 (rate generator) counts down from the reload value and wraps. */
static void test_pit_mode2_count(void)
{
    QTestState *qts = start_pc();
    const uint16_t reload = 0x1000;
    int64_t step, t0;

    t0 = pit_load(qts, 0, 2, reload);
    g_assert_cmpuint(pit_latch_read(qts, 0), ==, reload);

    for (step = 1000000; step < 12000000; step += 3333333) {
        int64_t now = qtest_clock_step(qts, step);
        uint16_t expect = reload - pit_ticks(now - t0) % reload;

        g_assert_cmpuint(pit_latch_read(qts, 0), ==, expect);
    }
    qtest_quit(qts);
}

/* A latched count stays frozen until both bytes are read. */
static void test_pit_latch_holds(void)
{
    QTestState *qts = start_pc();
    uint16_t lo, hi, expect;
    int64_t t0, now;

    t0 = pit_load(qts, 0, 2, 0xffff);
    now = qtest_clock_step(qts, 2000000);
    expect = 0xffff - pit_ticks(now - t0) % 0xffff;
    qtest_outb(qts, PIT_MODE, PIT_LATCH(0));
    qtest_clock_step(qts, 5000000);
    lo = qtest_inb(qts, PIT_CH0);
    hi = qtest_inb(qts, PIT_CH0);
    g_assert_cmpuint(lo | (hi << 8), ==, expect);
    qtest_quit(qts);
}

/* Read-back status: OUT, null count (always 0 in QEMU), RW, mode, BCD. */
static void test_pit_readback_status(void)
{
    QTestState *qts = start_pc();

    pit_load(qts, 0, 0, 1000);
    qtest_outb(qts, PIT_MODE, PIT_READBACK_STATUS(1));
    g_assert_cmphex(qtest_inb(qts, PIT_CH0), ==, 0x30);

    /* Past terminal count, mode 0's OUT is high. */
    qtest_clock_step(qts, 2000000);
    qtest_outb(qts, PIT_MODE, PIT_READBACK_STATUS(1));
    g_assert_cmphex(qtest_inb(qts, PIT_CH0), ==, 0xb0);
    qtest_quit(qts);
}

/* Mode 0 raises IRQ0 at terminal count, and the PIC latches it in IRR. */
static void test_pit_irq0_terminal_count(void)
{
    QTestState *qts = start_pc();
    const uint16_t count = 1193;            /* ~1 ms */

    qtest_irq_intercept_in(qts, "ioapic");
    pit_load(qts, 0, 0, count);
    qtest_clock_step(qts, 500000);
    g_assert_false(qtest_get_irq(qts, 0));
    qtest_clock_step(qts, 600000);
    g_assert_true(qtest_get_irq(qts, 0));

    /* OCW3: read IRR on the next read of the command port. */
    qtest_outb(qts, PIC1_CMD, 0x0a);
    g_assert_cmphex(qtest_inb(qts, PIC1_CMD) & 0x01, ==, 0x01);
    qtest_quit(qts);
}

/* OCW1 sets the IMR; it reads back from the data port of each chip. */
static void test_pic_imr(void)
{
    QTestState *qts = start_pc();

    qtest_outb(qts, PIC1_DATA, 0xa5);
    qtest_outb(qts, PIC2_DATA, 0x5a);
    g_assert_cmphex(qtest_inb(qts, PIC1_DATA), ==, 0xa5);
    g_assert_cmphex(qtest_inb(qts, PIC2_DATA), ==, 0x5a);
    qtest_quit(qts);
}

/* ELCR: IRQ0-2 (master) and IRQ8, IRQ13 (slave) cannot be level-triggered. */
static void test_elcr_mask(void)
{
    QTestState *qts = start_pc();

    qtest_outb(qts, ELCR1, 0xff);
    qtest_outb(qts, ELCR2, 0xff);
    g_assert_cmphex(qtest_inb(qts, ELCR1), ==, 0xf8);
    g_assert_cmphex(qtest_inb(qts, ELCR2), ==, 0xde);
    qtest_outb(qts, ELCR1, 0x00);
    g_assert_cmphex(qtest_inb(qts, ELCR1), ==, 0x00);
    qtest_quit(qts);
}

/* i8042: status after reset, then "read command byte" fills the buffer. */
static void test_i8042_status(void)
{
    QTestState *qts = start_pc();

    /* KBD_STAT_CMD | KBD_STAT_UNLOCKED, output buffer empty */
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS), ==, 0x18);
    qtest_outb(qts, KBD_STATUS, 0x20);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS) & 0x01, ==, 0x01);
    /* KBD_MODE_KBD_INT | KBD_MODE_MOUSE_INT */
    g_assert_cmphex(qtest_inb(qts, KBD_DATA), ==, 0x03);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS) & 0x01, ==, 0x00);
    qtest_quit(qts);
}

/*
 * i8042 interrupts: a byte for the keyboard raises IRQ1 (mode bit 0), a
 * byte for the AUX port raises IRQ12 (mode bit 1) with MOUSE_OBF in the
 * status; reading the data port lowers the line.
 */
static void test_i8042_irq(void)
{
    QTestState *qts = start_pc();

    qtest_irq_intercept_in(qts, "ioapic");
    qtest_outb(qts, KBD_STATUS, 0xd2);      /* write keyboard output buffer */
    qtest_outb(qts, KBD_DATA, 0x5a);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS), ==, 0x19);
    g_assert_true(qtest_get_irq(qts, 1));
    g_assert_false(qtest_get_irq(qts, 12));
    g_assert_cmphex(qtest_inb(qts, KBD_DATA), ==, 0x5a);
    g_assert_false(qtest_get_irq(qts, 1));

    qtest_outb(qts, KBD_STATUS, 0xd3);      /* write AUX output buffer */
    qtest_outb(qts, KBD_DATA, 0xa5);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS), ==, 0x39);
    g_assert_true(qtest_get_irq(qts, 12));
    g_assert_cmphex(qtest_inb(qts, KBD_DATA), ==, 0xa5);
    g_assert_false(qtest_get_irq(qts, 12));

    /* Mode byte without KBD_INT: the byte waits, IRQ1 stays low. */
    qtest_outb(qts, KBD_STATUS, 0x60);
    qtest_outb(qts, KBD_DATA, 0x00);
    qtest_outb(qts, KBD_STATUS, 0xd2);
    qtest_outb(qts, KBD_DATA, 0x11);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS) & 0x01, ==, 0x01);
    g_assert_false(qtest_get_irq(qts, 1));
    g_assert_cmphex(qtest_inb(qts, KBD_DATA), ==, 0x11);

    /* Self-test: 0x55, and the system flag stays set afterwards. */
    qtest_outb(qts, KBD_STATUS, 0xaa);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS), ==, 0x1d);
    g_assert_cmphex(qtest_inb(qts, KBD_DATA), ==, 0x55);
    g_assert_cmphex(qtest_inb(qts, KBD_STATUS), ==, 0x1c);
    qtest_quit(qts);
}

/*
 * Port 0x61: bit 0 is PIT channel 2's gate, bit 1 speaker data, bit 4 the
 * refresh toggle (flips on every read), bit 5 channel 2's OUT.
 */
static void test_port61(void)
{
    QTestState *qts = start_pc();
    uint8_t a, b;

    qtest_outb(qts, PORT_61, 0x03);
    a = qtest_inb(qts, PORT_61);
    b = qtest_inb(qts, PORT_61);
    g_assert_cmphex(a & 0x03, ==, 0x03);
    g_assert_cmphex((a ^ b) & 0x10, ==, 0x10);

    /* Gate channel 2 in mode 0: OUT rises at terminal count. */
    pit_load(qts, 2, 0, 100);
    g_assert_cmphex(qtest_inb(qts, PORT_61) & 0x20, ==, 0x00);
    qtest_clock_step(qts, 1000000);
    g_assert_cmphex(qtest_inb(qts, PORT_61) & 0x20, ==, 0x20);
    qtest_quit(qts);
}

/*
 * query-version keeps upstream's numbers (libvirt parses them); the fork
 * identifies itself only in "package".  QT_EXPECT_PACKAGE, when set, is a
 * substring the package string must contain.
 */
static void test_query_version(void)
{
    QTestState *qts = start_pc();
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-version' }");
    QDict *ret = qdict_get_qdict(rsp, "return");
    QDict *q = qdict_get_qdict(ret, "qemu");
    const char *want = g_getenv("QT_EXPECT_PACKAGE");

    g_assert_cmpint(qdict_get_int(q, "major"), ==, 10);
    g_assert_cmpint(qdict_get_int(q, "minor"), ==, 0);
    g_assert_cmpint(qdict_get_int(q, "micro"), ==, 13);
    if (want) {
        g_assert_nonnull(strstr(qdict_get_str(ret, "package"), want));
    }
    qobject_unref(rsp);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/legacy-ports/pit/mode2-count", test_pit_mode2_count);
    qtest_add_func("/legacy-ports/pit/latch-holds", test_pit_latch_holds);
    qtest_add_func("/legacy-ports/pit/readback-status",
                   test_pit_readback_status);
    qtest_add_func("/legacy-ports/pit/irq0-terminal-count",
                   test_pit_irq0_terminal_count);
    qtest_add_func("/legacy-ports/pic/imr", test_pic_imr);
    qtest_add_func("/legacy-ports/pic/elcr-mask", test_elcr_mask);
    qtest_add_func("/legacy-ports/i8042/status", test_i8042_status);
    qtest_add_func("/legacy-ports/i8042/irq", test_i8042_irq);
    qtest_add_func("/legacy-ports/port61", test_port61);
    qtest_add_func("/legacy-ports/query-version", test_query_version);

    return g_test_run();
}

/*
 * Migration between the vanilla twin and the fork with the kernel tier
 * on: the tier works on QEMU's own device state and adds nothing to the
 * vmstate, so a stream saved by vanilla QEMU loads into the fork, and
 * what the fork saves again is the same stream, byte for byte (except
 * the host-clock offsets of the "timer" section); and back.  After the
 * load, the fork's inline tier and vanilla QEMU answer the same reads.
 *
 * QTEST_QEMU_BINARY is the fork, QT_VANILLA_QEMU the vanilla twin.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "tiers-qtest.h"

#define ARGS "-machine pc -nodefaults -rtc base=2020-01-01T00:00:00,clock=vm"

/* Programs the devices of the tier into a state worth migrating. */
static void program_devices(QTestState *qts)
{
    /* PICs: ICW1..4, masks, a pending edge on master IRQ3, OCW3 ISR */
    qtest_outb(qts, 0x20, 0x11);
    qtest_outb(qts, 0x21, 0x08);
    qtest_outb(qts, 0x21, 0x04);
    qtest_outb(qts, 0x21, 0x01);
    qtest_outb(qts, 0xa0, 0x11);
    qtest_outb(qts, 0xa1, 0x70);
    qtest_outb(qts, 0xa1, 0x02);
    qtest_outb(qts, 0xa1, 0x01);
    qtest_outb(qts, 0x21, 0xb2);
    qtest_outb(qts, 0xa1, 0x5a);
    qtest_outb(qts, 0x4d1, 0x0c);
    qtest_outb(qts, 0x20, 0x0b);
    /* PIT: channel 2 in mode 2, word access, latched half-read */
    qtest_outb(qts, 0x43, 0xb4);
    qtest_outb(qts, 0x42, 0x34);
    qtest_outb(qts, 0x42, 0x12);
    qtest_outb(qts, 0x61, 0x01);
    qtest_clock_step(qts, 777777);
    qtest_outb(qts, 0x43, 0x80);
    qtest_inb(qts, 0x42);
    /* PM block at 0x600 (PIIX4 PMBASE, PMIOSE) */
    qtest_outl(qts, 0xcf8, 0x80000b40);
    qtest_outl(qts, 0xcfc, 0x601);
    qtest_outl(qts, 0xcf8, 0x80000b80);
    qtest_outl(qts, 0xcfc, 0x1);
    qtest_clock_step(qts, 123456789);
}

/* A QEMU (fork or vanilla) that loads @path. */
static QTestState *load(const char *binary_var, const char *extra,
                        const char *path)
{
    g_autofree char *args = g_strdup_printf("%s %s -incoming defer",
                                            ARGS, extra);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    QTestState *qts = qtest_init_with_env(binary_var, args, true);

    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    for (;;) {
        QDict *q = qtest_qmp(qts, "{ 'execute': 'query-status' }");
        const char *st = qdict_get_str(qdict_get_qdict(q, "return"),
                                       "status");
        bool done = strcmp(st, "inmigrate") != 0;

        qobject_unref(q);
        if (done) {
            break;
        }
        g_usleep(10000);
    }
    return qts;
}

static void assert_same_stream(const char *pa, const char *pb)
{
    g_autofree char *a = NULL;
    gssize at = tiers_state_diff(pa, pb);
    gsize la;

    /* The tier's devices are in it. */
    g_assert_true(g_file_get_contents(pa, &a, &la, NULL));
    g_assert_nonnull(memmem(a, la, "\x05i8259", 6));
    g_assert_nonnull(memmem(a, la, "\x05i8254", 6));
    g_assert_nonnull(memmem(a, la, "\x05pcspk", 6));
    if (at >= 0) {
        g_error("%s and %s differ at byte %" G_GSSIZE_FORMAT, pa, pb, at);
    }
}

static void test_vanilla_fork_vanilla(void)
{
    g_autofree char *dir = g_dir_make_tmp("tier-mig-XXXXXX", NULL);
    g_autofree char *pa = g_strdup_printf("%s/vanilla", dir);
    g_autofree char *pb = g_strdup_printf("%s/fork", dir);
    g_autofree char *pc = g_strdup_printf("%s/vanilla-again", dir);
    g_autofree char *args = g_strdup_printf("%s", ARGS);
    QTestState *v, *f, *v2;
    static const uint16_t ports[] = {
        0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x42, 0x42, 0x61,
    };
    size_t i;

    if (!g_getenv("QT_VANILLA_QEMU")) {
        /* QEMU's own make check-qtest: no twin to migrate with. */
        g_test_skip("QT_VANILLA_QEMU (the vanilla twin) is not set; "
                    "make check runs this test");
        rmdir(dir);
        return;
    }
    v = qtest_init_with_env("QT_VANILLA_QEMU", args, true);
    program_devices(v);
    tiers_save_state(v, pa);
    qtest_quit(v);

    /* The fork, tier on (the default), loads vanilla's stream... */
    f = load("QTEST_QEMU_BINARY", "-machine kernel-tier=on", pa);
    g_assert_cmpint(route_count(f, "tier-pic1"), ==, 0);
    /* ...and saves the very same stream. */
    tiers_save_state(f, pb);
    assert_same_stream(pa, pb);

    /* Vanilla loads the fork's stream and saves it unchanged too. */
    v2 = load("QT_VANILLA_QEMU", "", pb);
    tiers_save_state(v2, pc);
    assert_same_stream(pb, pc);

    /* Resumed, the fork's tier and vanilla QEMU answer alike. */
    qtest_qmp_assert_success(f, "{ 'execute': 'cont' }");
    qtest_qmp_assert_success(v2, "{ 'execute': 'cont' }");
    for (i = 0; i < G_N_ELEMENTS(ports); i++) {
        g_assert_cmphex(qtest_inb(f, ports[i]), ==,
                        qtest_inb(v2, ports[i]));
    }
    g_assert_cmphex(qtest_inl(f, 0x608), ==, qtest_inl(v2, 0x608));
    g_assert_cmpint(route_count(f, "tier-pic1"), >, 0);
    g_assert_cmpint(route_count(f, "tier-pit"), >, 0);
    g_assert_cmpint(route_count(f, "tier-pm-timer"), >, 0);

    qtest_quit(f);
    qtest_quit(v2);
    unlink(pa);
    unlink(pb);
    unlink(pc);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/tier-migration/vanilla-fork-vanilla",
                   test_vanilla_fork_vanilla);
    return g_test_run();
}

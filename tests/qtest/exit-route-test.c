/*
 * qtest of the exit router: routes added, queried and deleted over QMP
 * and on the command line change what a port access does; bad input is
 * refused with a message naming it and changes nothing.
 *
 * Port 0x21 (master PIC IMR) is the probe: its device value is whatever
 * was last written, so a route's effect is visible in one inb.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "tiers-qtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qjson.h"
#include "qapi/error.h"

#define IMR 0x21

static QTestState *start(const char *extra)
{
    return qtest_initf("-machine pc -nodefaults %s", extra ? extra : "");
}


/* The route @id in a query-exit-routes list, or NULL. */
static QDict *find_route(QList *l, const char *id)
{
    QListEntry *e;

    QLIST_FOREACH_ENTRY(l, e) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(r, "id"), id)) {
            return r;
        }
    }
    return NULL;
}

/* Is route @id in the table? */
static bool has_route(QTestState *qts, const char *id)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-exit-routes' }");
    bool found = find_route(qdict_get_qlist(rsp, "return"), id);

    qobject_unref(rsp);
    return found;
}

static bool kernel_tier_on(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-exit-router' }");
    bool on = qdict_get_bool(qdict_get_qdict(rsp, "return"), "kernel-tier");

    qobject_unref(rsp);
    return on;
}

static bool vm_running(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    bool running = qdict_get_bool(qdict_get_qdict(rsp, "return"), "running");

    qobject_unref(rsp);
    return running;
}

static void test_ignore_add_del(void)
{
    QTestState *qts = start(NULL);

    qtest_outb(qts, IMR, 0x5a);
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x5a);

    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'r0', "
           "'event': 'pio', 'start': 33, 'direction': 'read', "
           "'handler': 'ignore' } }");
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0xff);
    /* Writes are not matched by a read route: they reach the PIC. */
    qtest_outb(qts, IMR, 0x33);
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0xff);
    g_assert_cmpint(route_count(qts, "r0"), ==, 2);

    qmp_ok(qts, "{ 'execute': 'exit-route-del', 'arguments': { 'id': 'r0' } }");
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x33);
    g_assert_cmpint(route_count(qts, "r0"), ==, -1);
    qtest_quit(qts);
}

static void test_device_and_log_stats(void)
{
    QTestState *qts = start(NULL);
    int i;

    qtest_outb(qts, IMR, 0x0f);
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'dev', "
           "'event': 'pio', 'start': 32, 'size': 2, 'handler': 'device' } }");
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'trace', "
           "'event': 'pio', 'start': 33, 'priority': 10, "
           "'handler': 'log' } }");
    for (i = 0; i < 5; i++) {
        g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x0f);
    }
    /* log counts and passes on; the device route then completes. */
    g_assert_cmpint(route_count(qts, "trace"), ==, 5);
    g_assert_cmpint(route_count(qts, "dev"), ==, 5);
    qtest_inb(qts, 0x20);
    g_assert_cmpint(route_count(qts, "dev"), ==, 6);
    g_assert_cmpint(route_count(qts, "trace"), ==, 5);

    qmp_ok(qts, "{ 'execute': 'exit-stats-reset' }");
    g_assert_cmpint(route_count(qts, "dev"), ==, 0);
    qtest_inb(qts, IMR);
    g_assert_cmpint(route_count(qts, "dev"), ==, 1);
    /* Misses are counted too, one by one. */
    {
        int64_t before = route_count(qts, "unrouted-pio");

        qtest_inb(qts, 0x1234);
        qtest_outb(qts, 0x1234, 1);
        g_assert_cmpint(route_count(qts, "unrouted-pio"), ==, before + 2);
    }
    qtest_quit(qts);
}

static void test_datamatch(void)
{
    QTestState *qts = start(NULL);

    qtest_outb(qts, IMR, 0x01);
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'dm', "
           "'event': 'pio', 'start': 33, 'direction': 'write', "
           "'datamatch': 17, 'handler': 'ignore' } }");
    qtest_outb(qts, IMR, 17);           /* matches: dropped */
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x01);
    qtest_outb(qts, IMR, 18);           /* does not: reaches the PIC */
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 18);
    qtest_quit(qts);
}

static void test_query_routes(void)
{
    QTestState *qts = start("-object exit-route,id=cl,event=pio,start=0x80,"
                            "direction=write,access-size=1,handler=ignore");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-exit-routes' }");
    QList *l = qdict_get_qlist(rsp, "return");
    QDict *r;
    g_autofree char *hmp = NULL;

    /*
     * Ours, and the kernel tier's routes: port 0x80 (below ours), the
     * two PICs and their ELCRs, the PIT, port 0x61, the i8042's status
     * (the PM timer's appears when firmware maps it).
     */
    g_assert_cmpint(qlist_size(l), ==, 9);
    g_assert_nonnull(find_route(l, "tier-pit"));
    g_assert_nonnull(find_route(l, "tier-i8042"));
    g_assert_nonnull(find_route(l, "tier-port61"));
    g_assert_nonnull(find_route(l, "tier-pic1"));
    g_assert_nonnull(find_route(l, "tier-pic2"));
    g_assert_nonnull(find_route(l, "tier-elcr1"));
    g_assert_nonnull(find_route(l, "tier-elcr2"));
    r = find_route(l, "tier-port80");
    g_assert_nonnull(r);
    g_assert_cmpint(qdict_get_int(r, "priority"), ==, -1);
    g_assert_cmpstr(qdict_get_str(r, "inline"), ==, "port80");
    r = find_route(l, "cl");
    g_assert_nonnull(r);
    g_assert_cmpstr(qdict_get_str(r, "event"), ==, "pio");
    g_assert_cmpint(qdict_get_int(r, "start"), ==, 0x80);
    g_assert_cmpint(qdict_get_int(r, "last"), ==, 0x80);
    g_assert_cmpstr(qdict_get_str(r, "direction"), ==, "write");
    g_assert_cmpint(qdict_get_int(r, "access-size"), ==, 1);
    g_assert_cmpstr(qdict_get_str(r, "handler"), ==, "ignore");
    qobject_unref(rsp);

    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'apic', "
           "'event': 'msr', 'start': 27, 'handler': 'log' } }");
    g_assert_true(has_route(qts, "apic"));
    g_assert_cmpint(route_count(qts, "unrouted-msr"), ==, 0);
    hmp = qtest_hmp(qts, "info exit-routes");
    g_assert_nonnull(strstr(hmp, "cl"));
    g_assert_nonnull(strstr(hmp, "ignore"));
    qtest_quit(qts);
}

/* The -object route attaches itself: no -accel option needed. */
static void test_command_line_route(void)
{
    QTestState *qts = start("-object exit-route,id=imr,event=pio,start=0x21,"
                            "direction=read,handler=ignore");

    qtest_outb(qts, IMR, 0x12);
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0xff);
    qtest_quit(qts);
}

/*
 * An inline route serves its handler's own ports: with the kernel tier
 * off, a user's route sends the master PIC's IMR to the tier's PIC
 * handler, which answers it from QEMU's own state; a word access does
 * not match the byte route and reaches QEMU's model.
 */
static void test_inline_handler(void)
{
    QTestState *qts = start("-machine kernel-tier=off");

    qtest_outb(qts, IMR, 0x3c);
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'inl', "
           "'event': 'pio', 'start': 33, 'access-size': 1, "
           "'handler': 'inline', 'inline': 'pic-master' } }");
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x3c);
    qtest_outb(qts, IMR, 0x99);
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x99);
    g_assert_cmpint(route_count(qts, "inl"), ==, 3);
    g_assert_cmpint(tiers_route_stat(qts, "inl", "declines"), ==, 0);
    /* Not a byte: the route does not match, the PIC answers. */
    g_assert_cmphex(qtest_inw(qts, 0x20) >> 8, ==, 0x99);
    g_assert_cmpint(route_count(qts, "inl"), ==, 3);
    /*
     * A handler declines what it does not serve inline, counted: the
     * i8042's serves status reads, and a controller command (0x20: read
     * the command byte) goes on to QEMU's model, which answers it.
     */
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'kbd', "
           "'event': 'pio', 'start': 100, 'access-size': 1, "
           "'handler': 'inline', 'inline': 'i8042' } }");
    qtest_outb(qts, 0x64, 0x20);
    g_assert_cmphex(qtest_inb(qts, 0x64) & 1, ==, 1);       /* OBF */
    g_assert_cmpint(route_count(qts, "kbd"), ==, 1);
    g_assert_cmpint(tiers_route_stat(qts, "kbd", "declines"), ==, 1);
    qmp_ok(qts, "{ 'execute': 'exit-route-del', "
           "'arguments': { 'id': 'inl' } }");
    g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x99);
    qtest_quit(qts);
}

/*
 * An inline handler serves its own device's ports only: a route that
 * sends another port, a wider range, MMIO or an MSR to it is refused
 * with a message naming the handler and the range, and changes nothing.
 * (The PIC's handler used to take any port for its IMR.)
 */
static void test_inline_foreign(void)
{
    static const struct {
        const char *args;
        const char *msg;
    } cases[] = {
        { "'event': 'pio', 'start': 768, 'handler': 'inline', "
          "'inline': 'pic-master'",
          "inline handler 'pic-master' does not serve pio 0x300..0x300" },
        { "'event': 'pio', 'start': 33, 'size': 2, 'handler': 'inline', "
          "'inline': 'pic-master'",
          "inline handler 'pic-master' does not serve pio 0x21..0x22" },
        { "'event': 'pio', 'start': 160, 'handler': 'inline', "
          "'inline': 'pic-master'",
          "inline handler 'pic-master' does not serve pio 0xa0..0xa0" },
        { "'event': 'mmio', 'start': 4275044352, 'size': 4, "
          "'handler': 'inline', 'inline': 'pic-master'",
          "inline handler 'pic-master' does not serve mmio "
          "0xfed00000..0xfed00003" },
        { "'event': 'pio', 'start': 33, 'handler': 'inline', "
          "'inline': 'pit'",
          "inline handler 'pit' does not serve pio 0x21..0x21" },
        { "'event': 'msr', 'start': 27, 'handler': 'inline', "
          "'inline': 'port80'",
          "inline handler 'port80' does not serve msr 0x1b..0x1b" },
        { "'event': 'pio', 'start': 100, 'handler': 'inline', "
          "'inline': 'port61'",
          "inline handler 'port61' does not serve pio 0x64..0x64" },
    };
    QTestState *qts = start(NULL);
    uint32_t hpet;
    size_t i;

    qtest_outb(qts, IMR, 0x44);
    qtest_outb(qts, 0xa1, 0x55);
    hpet = qtest_readl(qts, 0xfed00000);
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *json = g_strdup_printf("{ 'id': 'foreign', %s }",
                                                cases[i].args);
        QObject *args = qobject_from_json(json, &error_abort);
        g_autofree char *err = qmp_error(qts,
            "{ 'execute': 'exit-route-add', 'arguments': %p }", args);

        if (!err || !strstr(err, cases[i].msg)) {
            g_error("for %s: got '%s', want '%s'", cases[i].args, err,
                    cases[i].msg);
        }
        g_assert_cmpint(route_count(qts, "foreign"), ==, -1);
        qtest_outb(qts, 0x300, 0x5a);
        qtest_outb(qts, 0xa0, 0x0a);    /* OCW3 read IRR, slave */
        g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x44);
        g_assert_cmphex(qtest_inb(qts, 0xa1), ==, 0x55);
        g_assert_cmphex(qtest_readl(qts, 0xfed00000), ==, hpet);
        g_assert_true(vm_running(qts));
    }
    qtest_quit(qts);
}

/* Every way of selecting the kernel tier, and its default (on). */
static void test_kernel_tier_switch(void)
{
    static const struct {
        const char *args;
        bool on;
        const char *router;
    } cases[] = {
        { "", true, NULL },
        { "-machine kernel-tier=off", false, NULL },
        { "-machine kernel-tier=on", true, NULL },
        /* libqtest's own -accel qtest comes after: ours is the one used */
        { "-accel qtest,kernel-tier=off", false, NULL },
        { "-object exit-router,id=rt,kernel-tier=off", false, "rt" },
        { "-object exit-router,id=rt,kernel-tier=off "
          "-machine exit-router=rt,kernel-tier=on", true, "rt" },
        { "-object exit-router,id=rt "
          "-accel qtest,exit-router=rt,kernel-tier=auto", true, "rt" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        QTestState *qts = start(cases[i].args);
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-exit-router' }");
        QDict *ret = qdict_get_qdict(rsp, "return");

        g_test_message("%s", cases[i].args);
        g_assert_cmpint(qdict_get_bool(ret, "kernel-tier"), ==, cases[i].on);
        g_assert_cmpstr(qdict_get_try_str(ret, "router"), ==,
                        cases[i].router);
        g_assert_cmpint(has_route(qts, "tier-port80"), ==, cases[i].on);
        /* Either way port 0x80 behaves as QEMU's ioport80. */
        qtest_outb(qts, 0x80, 0x12);
        g_assert_cmphex(qtest_inb(qts, 0x80), ==, 0xff);
        if (cases[i].on) {
            g_assert_cmpint(route_count(qts, "tier-port80"), ==, 2);
        } else {
            g_assert_cmpint(route_count(qts, "tier-port80"), ==, -1);
        }
        qobject_unref(rsp);
        qtest_quit(qts);
    }
}

/* The tier switched at run time through the exit-router object. */
static void test_kernel_tier_runtime(void)
{
    QTestState *qts = start("-object exit-router,id=rt");

    g_assert_true(has_route(qts, "tier-port80"));
    qmp_ok(qts, "{ 'execute': 'qom-set', 'arguments': { 'path': "
           "'/objects/rt', 'property': 'kernel-tier', 'value': false } }");
    g_assert_false(kernel_tier_on(qts));
    g_assert_false(has_route(qts, "tier-port80"));
    g_assert_cmphex(qtest_inb(qts, 0x80), ==, 0xff);
    qmp_ok(qts, "{ 'execute': 'qom-set', 'arguments': { 'path': "
           "'/objects/rt', 'property': 'kernel-tier', 'value': true } }");
    g_assert_true(kernel_tier_on(qts));
    g_assert_true(has_route(qts, "tier-port80"));
    /* A tier route can be deleted like any other. */
    qmp_ok(qts, "{ 'execute': 'exit-route-del', "
           "'arguments': { 'id': 'tier-port80' } }");
    g_assert_false(has_route(qts, "tier-port80"));
    g_assert_cmphex(qtest_inb(qts, 0x80), ==, 0xff);
    /* The router object stays: the accelerator may link it. */
    g_assert_nonnull(qmp_error(qts, "{ 'execute': 'object-del', "
                               "'arguments': { 'id': 'rt' } }"));
    g_assert_true(vm_running(qts));
    qtest_quit(qts);
}

/* The next EXIT_ROUTE_CHANGED event must be about @id, added or not. */
static void expect_route_event(QTestState *qts, const char *id, bool added)
{
    QDict *ev = qtest_qmp_eventwait_ref(qts, "EXIT_ROUTE_CHANGED");
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "id"), ==, id);
    g_assert_cmpint(qdict_get_bool(data, "added"), ==, added);
    qobject_unref(ev);
}

/* Every change of the table is announced, whoever made it. */
static void test_route_events(void)
{
    QTestState *qts = start("-object exit-router,id=rt");

    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'ev', "
           "'event': 'pio', 'start': 33, 'handler': 'ignore' } }");
    expect_route_event(qts, "ev", true);
    qmp_ok(qts, "{ 'execute': 'exit-route-del', 'arguments': { 'id': 'ev' } }");
    expect_route_event(qts, "ev", false);
    /* A refused route changes nothing and announces nothing. */
    g_assert_nonnull(qmp_error(qts, "{ 'execute': 'exit-route-add', "
                               "'arguments': { 'id': 'bad', 'event': 'pio', "
                               "'start': 33, 'size': 0, "
                               "'handler': 'ignore' } }"));
    /* The kernel tier switched off removes its routes, one event each. */
    qmp_ok(qts, "{ 'execute': 'qom-set', 'arguments': { 'path': "
           "'/objects/rt', 'property': 'kernel-tier', 'value': false } }");
    g_assert_false(has_route(qts, "tier-port80"));
    for (;;) {
        QDict *ev = qtest_qmp_eventwait_ref(qts, "EXIT_ROUTE_CHANGED");
        QDict *data = qdict_get_qdict(ev, "data");
        bool last = !strcmp(qdict_get_str(data, "id"), "tier-port80");

        g_assert_true(g_str_has_prefix(qdict_get_str(data, "id"), "tier-"));
        g_assert_false(qdict_get_bool(data, "added"));
        qobject_unref(ev);
        if (last) {
            break;
        }
    }
    qtest_quit(qts);
}

/*
 * MMIO routes, probed on the HPET (0xfed00000): its capabilities
 * register reads the vendor 0x8086 in bits 16..31, and general
 * configuration (0x10) keeps what is written to its enable bit.
 */
#define HPET_BASE 0xfed00000ull
#define HPET_CFG  (HPET_BASE + 0x10)

static void test_mmio_routes(void)
{
    QTestState *qts = start(NULL);
    uint32_t cap = qtest_readl(qts, HPET_BASE);

    g_assert_cmphex(cap >> 16, ==, 0x8086);
    /* ignore: reads all-ones, of the access's size */
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'cap', "
           "'event': 'mmio', 'start': 4275044352, 'size': 8, "
           "'direction': 'read', 'handler': 'ignore' } }");
    g_assert_cmphex(qtest_readl(qts, HPET_BASE), ==, 0xffffffff);
    g_assert_cmphex(qtest_readw(qts, HPET_BASE), ==, 0xffff);
    g_assert_cmpint(route_count(qts, "cap"), ==, 2);
    /* Outside its range: the HPET answers. */
    g_assert_cmphex(qtest_readl(qts, HPET_CFG), ==, 0);

    /* Writes dropped while routed to ignore, datamatch on the value. */
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'en', "
           "'event': 'mmio', 'start': 4275044368, 'size': 4, "
           "'direction': 'write', 'datamatch': 1, 'handler': 'ignore' } }");
    qtest_writel(qts, HPET_CFG, 1);
    g_assert_cmphex(qtest_readl(qts, HPET_CFG), ==, 0);
    qtest_writel(qts, HPET_CFG, 3);     /* no match: reaches the HPET */
    g_assert_cmphex(qtest_readl(qts, HPET_CFG) & 1, ==, 1);
    qtest_writel(qts, HPET_CFG, 0);

    /* device and log: counted, values unchanged */
    qmp_ok(qts, "{ 'execute': 'exit-route-del', "
           "'arguments': { 'id': 'cap' } }");
    qmp_ok(qts, "{ 'execute': 'exit-route-del', "
           "'arguments': { 'id': 'en' } }");
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'dev', "
           "'event': 'mmio', 'start': 4275044352, 'size': 1024, "
           "'handler': 'device' } }");
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'lg', "
           "'event': 'mmio', 'start': 4275044352, 'size': 8, "
           "'priority': 1, 'handler': 'log' } }");
    g_assert_cmphex(qtest_readl(qts, HPET_BASE), ==, cap);
    g_assert_cmphex(qtest_readl(qts, HPET_CFG), ==, 0);
    g_assert_cmpint(route_count(qts, "lg"), ==, 1);
    g_assert_cmpint(route_count(qts, "dev"), ==, 2);
    /* Misses are counted as unrouted-mmio, one by one. */
    {
        int64_t before = route_count(qts, "unrouted-mmio");

        qtest_readl(qts, 0xfee00030);   /* LAPIC version */
        g_assert_cmpint(route_count(qts, "unrouted-mmio"), ==, before + 1);
    }
    qtest_quit(qts);
}

typedef struct BadRoute {
    const char *args;       /* QMP arguments besides id */
    const char *msg;        /* substring the error must contain */
} BadRoute;

static const BadRoute bad_routes[] = {
    { "'event': 'pio', 'start': 33, 'handler': 'ignore', 'size': 0",
      "size 0x0 at start 0x21 is empty" },
    { "'event': 'pio', 'start': 65535, 'size': 2, 'handler': 'ignore'",
      "past 0xffff" },
    { "'event': 'pio', 'start': 33, 'handler': 'ignore', 'datamatch': 1",
      "writes only" },
    { "'event': 'pio', 'start': 33, 'handler': 'inline'",
      "handler=inline needs inline=NAME" },
    { "'event': 'pio', 'start': 33, 'handler': 'inline', 'inline': 'nope'",
      "no inline handler 'nope'" },
    { "'event': 'pio', 'start': 33, 'handler': 'ignore', 'inline': 'x'",
      "inline=x needs handler=inline" },
    { "'event': 'msr', 'start': 4294967295, 'size': 2, "
      "'handler': 'ignore'", "goes past 0xffffffff" },
    { "'event': 'msr', 'start': 27, 'access-size': 4, 'handler': 'ignore'",
      "MSR accesses are 8 bytes wide" },
    { "'event': 'mmio', 'start': 18446744073709551615, 'size': 2, "
      "'handler': 'ignore'", "wraps" },
    { "'event': 'pio', 'start': 33, 'handler': 'ignore', 'access-size': 3",
      "'access-size' must be 1, 2, 4 or 8, not 3" },
    { "'event': 'pio', 'start': 33, 'handler': 'sideways'",
      "sideways" },
    { "'event': 'pio', 'start': 32, 'size': 4, 'handler': 'ignore'",
      "exit route 'bad' conflicts with 'good': both match pio 0x21..0x21 "
      "at priority 0" },
    /* Options of handler=external only. */
    { "'event': 'pio', 'start': 33, 'handler': 'ignore', "
      "'policy': 'round-robin'", "policy=round-robin needs handler=external" },
    { "'event': 'pio', 'start': 33, 'handler': 'device', "
      "'fallback': 'ignore'", "fallback=ignore needs handler=external" },
    { "'event': 'pio', 'start': 33, 'handler': 'log', "
      "'timeout-ms': 10", "timeout-ms=10 needs handler=external" },
    { "'event': 'pio', 'start': 33, 'handler': 'inline', "
      "'inline': 'pic-master', 'posted-writes': true",
      "posted-writes=on needs handler=external" },
};

static void test_bad_input(void)
{
    QTestState *qts = start(NULL);
    size_t i;

    qtest_outb(qts, IMR, 0x44);
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'good', "
           "'event': 'pio', 'start': 33, 'handler': 'device' } }");
    for (i = 0; i < G_N_ELEMENTS(bad_routes); i++) {
        g_autofree char *json = g_strdup_printf("{ 'id': 'bad', %s }",
                                                bad_routes[i].args);
        QObject *args = qobject_from_json(json, &error_abort);
        g_autofree char *err = qmp_error(qts,
            "{ 'execute': 'exit-route-add', 'arguments': %p }", args);

        g_assert_nonnull(err);
        if (!strstr(err, bad_routes[i].msg)) {
            g_error("for %s: got '%s', want '%s'", bad_routes[i].args, err,
                    bad_routes[i].msg);
        }
        /* Nothing changed, and the guest runs on. */
        g_assert_cmpint(route_count(qts, "bad"), ==, -1);
        g_assert_cmphex(qtest_inb(qts, IMR), ==, 0x44);
        g_assert_true(vm_running(qts));
    }
    {
        g_autofree char *err = qmp_error(qts,
            "{ 'execute': 'exit-route-del', 'arguments': { 'id': 'ghost' } }");

        g_assert_cmpstr(err, ==, "there is no exit route 'ghost'");
    }
    /* A failed add left the name free. */
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'bad', "
           "'event': 'pio', 'start': 160, 'handler': 'ignore' } }");
    qtest_quit(qts);
}

/*
 * A bad option stops QEMU at start-up with a message on stderr that
 * names the offending text.
 */
static void test_bad_command_line(void)
{
    static const struct {
        const char *opt, *val;
        const char *msg[2];
    } cases[] = {
        { "-object", "exit-route,id=x,event=pio,start=0xffff,size=2,"
          "handler=ignore", { "exit route 'x'", "past 0xffff" } },
        { "-machine", "pc,kernel-tier=maybe", { "kernel-tier", "'maybe'" } },
        { "-accel", "tcg,kernel-tier=sometimes",
          { "kernel-tier", "'sometimes'" } },
        { "-accel", "tcg,exit-router=nosuch", { "'nosuch'", "not found" } },
        { "-machine", "pc,exit-router=ghost", { "'ghost'", "not found" } },
        { "-object", "exit-handler,id=h,chardev=nosuch",
          { "exit-handler 'h'", "chardev 'nosuch' not found" } },
        { "-object", "exit-route,id=x,event=pio,start=0x80,handler=ignore,"
          "posted-writes=on",
          { "exit route 'x'", "posted-writes=on needs handler=external" } },
    };
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = NULL, *err = NULL;
        int status;
        /* A QEMU that wrongly accepts the option must not hang the test. */
        const char *argv[] = {
            "timeout", "30", qemu, "-nodefaults", "-display", "none",
            cases[i].opt, cases[i].val, NULL,
        };

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   &out, &err, &status, NULL));
        g_test_message("%s %s: %s", cases[i].opt, cases[i].val, err);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        g_assert_nonnull(strstr(err, cases[i].msg[0]));
        g_assert_nonnull(strstr(err, cases[i].msg[1]));
    }
    {
        g_autofree char *out = NULL, *err = NULL;
        int status;
        const char *argv[] = {
            qemu, "-machine", "none", "-nodefaults", "-display", "none",
            "-object", "exit-router,id=a", "-object", "exit-router,id=b",
            NULL,
        };

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL,
                                   NULL, &out, &err, &status, NULL));
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        g_assert_nonnull(strstr(err, "exit router 'b': 'a' is already"));
    }
}

/*
 * Every property of the router's objects says what it is in
 * "-object TYPE,help" (they used to print their types only).
 */
static void test_property_help(void)
{
    static const struct {
        const char *type;
        int props;
    } types[] = {
        { "exit-route", 18 }, { "exit-handler", 3 }, { "exit-router", 1 },
    };
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(types); i++) {
        g_autofree char *opt = g_strdup_printf("%s,help", types[i].type);
        g_autofree char *out = NULL, *err = NULL;
        g_auto(GStrv) lines = NULL;
        const char *argv[] = { qemu, "-object", opt, NULL };
        int status, props = 0, j;

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL,
                                   &out, &err, &status, NULL));
        lines = g_strsplit(out, "\n", -1);
        for (j = 0; lines[j]; j++) {
            if (!g_str_has_prefix(lines[j], "  ") ||
                g_str_has_prefix(lines[j], "  x-")) {
                continue;       /* the title; test-only properties */
            }
            props++;
            if (!strstr(lines[j], "> - ") && !strstr(lines[j], "  - ")) {
                g_error("%s: no description: '%s'", types[i].type, lines[j]);
            }
        }
        g_assert_cmpint(props, ==, types[i].props);
    }
}

/*
 * A handler whose chardev does not exist is refused when it is added,
 * and the VM goes on: before the machine is ready (-preconfig) it used
 * to be accepted, then stop QEMU at x-exit-preconfig (exit(1) in a
 * machine-init-done notifier).
 */
static void test_handler_bad_chardev_preconfig(void)
{
    QTestState *qts = qtest_init("-machine pc -nodefaults -preconfig");
    g_autofree char *err = qmp_error(qts, "{ 'execute': 'object-add', "
                                     "'arguments': { 'qom-type': "
                                     "'exit-handler', 'id': 'h', "
                                     "'chardev': 'nosuch' } }");

    g_assert_cmpstr(err, ==, "exit-handler 'h': chardev 'nosuch' not found");
    qmp_ok(qts, "{ 'execute': 'x-exit-preconfig' }");
    g_assert_true(vm_running(qts));
    qtest_quit(qts);
}

/*
 * KVM's MSR filter has 16 ranges; without KVM there is no filter and no
 * such limit: 17 MSR routes on the command line start (they used to
 * pass parsing and then stop QEMU at machine init), and are all in the
 * table.
 */
static void test_msr_routes_without_kvm(void)
{
    GString *args = g_string_new("");
    QTestState *qts;
    QDict *rsp;
    int i;

    for (i = 0; i < 17; i++) {
        g_string_append_printf(args, " -object exit-route,id=m%d,event=msr,"
                               "start=0x%x,handler=ignore", i, 0xc0010000 + i);
    }
    qts = start(args->str);
    rsp = qtest_qmp(qts, "{ 'execute': 'query-exit-routes' }");
    for (i = 0; i < 17; i++) {
        g_autofree char *id = g_strdup_printf("m%d", i);

        g_assert_nonnull(find_route(qdict_get_qlist(rsp, "return"), id));
    }
    qobject_unref(rsp);
    /* And over QMP, an 18th. */
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'm17', "
           "'event': 'msr', 'start': 27, 'handler': 'log' } }");
    g_assert_true(has_route(qts, "m17"));
    qtest_quit(qts);
    g_string_free(args, true);
}

/*
 * When the accelerator refuses a route change (KVM's MSR filter ioctl;
 * simulated with the exit-router's x-msr-filter-failures), an added
 * route is refused with the accelerator's error, naming the route, and
 * the table is unchanged.  A removal is never refused: a filter the
 * accelerator will not narrow stays wider, which costs exits only (a
 * failed delete used to abort QEMU).
 */
static void test_accel_refuses_change(void)
{
    QTestState *qts = start("-object exit-router,id=rt");
    g_autofree char *err = NULL;

    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'ab', "
           "'event': 'msr', 'start': 27, 'handler': 'ignore' } }");
    qmp_ok(qts, "{ 'execute': 'qom-set', 'arguments': { 'path': "
           "'/objects/rt', 'property': 'x-msr-filter-failures', "
           "'value': 1 } }");
    qmp_ok(qts, "{ 'execute': 'exit-route-del', 'arguments': { 'id': 'ab' } }");
    g_assert_false(has_route(qts, "ab"));
    g_assert_true(vm_running(qts));

    qmp_ok(qts, "{ 'execute': 'qom-set', 'arguments': { 'path': "
           "'/objects/rt', 'property': 'x-msr-filter-failures', "
           "'value': 1 } }");
    err = qmp_error(qts, "{ 'execute': 'exit-route-add', 'arguments': { "
                    "'id': 'cd', 'event': 'msr', 'start': 16, "
                    "'handler': 'ignore' } }");
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err, "exit route 'cd': the accelerator refused "
                            "the MSR filter"));
    g_assert_false(has_route(qts, "cd"));
    g_assert_true(vm_running(qts));

    /* Once the accelerator agrees, the same route goes in. */
    qmp_ok(qts, "{ 'execute': 'exit-route-add', 'arguments': { 'id': 'cd', "
           "'event': 'msr', 'start': 16, 'handler': 'ignore' } }");
    g_assert_true(has_route(qts, "cd"));
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/exit-route/ignore-add-del", test_ignore_add_del);
    qtest_add_func("/exit-route/device-and-log-stats",
                   test_device_and_log_stats);
    qtest_add_func("/exit-route/datamatch", test_datamatch);
    qtest_add_func("/exit-route/query-routes", test_query_routes);
    qtest_add_func("/exit-route/command-line-route", test_command_line_route);
    qtest_add_func("/exit-route/inline-handler", test_inline_handler);
    qtest_add_func("/exit-route/inline-foreign", test_inline_foreign);
    qtest_add_func("/exit-route/msr-routes-without-kvm",
                   test_msr_routes_without_kvm);
    qtest_add_func("/exit-route/accel-refuses-change",
                   test_accel_refuses_change);
    qtest_add_func("/exit-route/handler-bad-chardev-preconfig",
                   test_handler_bad_chardev_preconfig);
    qtest_add_func("/exit-route/property-help", test_property_help);
    qtest_add_func("/exit-route/mmio-routes", test_mmio_routes);
    qtest_add_func("/exit-route/kernel-tier-switch", test_kernel_tier_switch);
    qtest_add_func("/exit-route/kernel-tier-runtime",
                   test_kernel_tier_runtime);
    qtest_add_func("/exit-route/route-events", test_route_events);
    qtest_add_func("/exit-route/bad-input", test_bad_input);
    qtest_add_func("/exit-route/bad-command-line", test_bad_command_line);
    return g_test_run();
}

/*
 * Unit tests of the exit router's route table, without a VM.
 *
 * Edges of ranges, whole-access containment, precedence, conflict
 * refusal, data match, a randomized comparison against a brute-force
 * reference, and readers that look up while a writer swaps tables
 * under RCU.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/rcu.h"
#include "qemu/thread.h"
#include "route-table.h"
#include "route-noexit.h"

static RouteTableEntry pio(const char *name, uint64_t start, uint64_t last,
                           int32_t prio)
{
    return (RouteTableEntry) {
        .name = name,
        .opaque = (void *)name,
        .spec = {
            .type = EXIT_EVENT_PIO, .start = start, .last = last,
            .dir_mask = EXIT_DIR_ANY, .size_mask = EXIT_SIZE_ANY,
            .priority = prio,
        },
    };
}

static ExitAccess rd(uint64_t addr, unsigned size)
{
    return (ExitAccess) { .type = EXIT_EVENT_PIO, .addr = addr, .size = size };
}

static ExitAccess wr(uint64_t addr, unsigned size, uint64_t data)
{
    return (ExitAccess) {
        .type = EXIT_EVENT_PIO, .addr = addr, .size = size,
        .is_write = true, .data = data,
    };
}

/* Name of the first matching route, or NULL. */
static const char *first(const RouteTable *t, ExitAccess a)
{
    RouteCursor c;
    const RouteTableEntry *e;

    route_table_lookup(t, &a, &c);
    e = route_cursor_next(&c, &a);
    return e ? e->name : NULL;
}

static RouteTable *build_ok(const RouteTableEntry *e, size_t n)
{
    return route_table_build(e, n, &error_abort);
}

static void test_empty(void)
{
    RouteTable *t = build_ok(NULL, 0);

    g_assert_null(first(t, rd(0x60, 1)));
    g_assert_null(first(NULL, rd(0x60, 1)));
    g_assert_cmpuint(route_table_size(t), ==, 0);
    route_table_free(t);
}

static void test_range_edges(void)
{
    RouteTableEntry e[] = { pio("kbd", 0x60, 0x64, 0) };
    RouteTable *t = build_ok(e, 1);

    g_assert_null(first(t, rd(0x5f, 1)));
    g_assert_cmpstr(first(t, rd(0x60, 1)), ==, "kbd");
    g_assert_cmpstr(first(t, rd(0x64, 1)), ==, "kbd");
    g_assert_null(first(t, rd(0x65, 1)));
    /* Whole access only: a word at 0x64 straddles the end. */
    g_assert_null(first(t, rd(0x64, 2)));
    g_assert_cmpstr(first(t, rd(0x63, 2)), ==, "kbd");
    g_assert_null(first(t, rd(0x5f, 2)));
    g_assert_null(first(t, rd(0x61, 8)));
    /* Not a power-of-two size: never matches. */
    g_assert_null(first(t, rd(0x60, 3)));
    route_table_free(t);
}

/*
 * Port routes numerous enough that the per-port index cannot number
 * their segments (one route on every port: 65 536 segments): the table
 * falls back to the search, with the same answers.
 */
static void test_many_port_routes(void)
{
    size_t n = ROUTE_TABLE_PIO_PORTS, i;
    g_autofree RouteTableEntry *e = g_new(RouteTableEntry, n);
    g_autofree char *names = g_malloc0(n * 8);
    RouteTable *t;

    for (i = 0; i < n; i++) {
        char *name = names + i * 8;

        snprintf(name, 8, "p%zx", i);
        e[i] = pio(name, i, i, 0);
    }
    t = build_ok(e, n);
    g_assert_null(t->pio_seg);
    for (i = 0; i < n; i += 0x7ff) {
        g_assert_cmpstr(first(t, rd(i, 1)), ==, e[i].name);
        g_assert_null(first(t, rd(i, 2)));      /* spans two routes */
    }
    g_assert_cmpstr(first(t, rd(0xffff, 1)), ==, "pffff");
    route_table_free(t);

    /* One fewer: the index numbers them all; the same answers. */
    t = build_ok(e, n - 1);
    g_assert_nonnull(t->pio_seg);
    g_assert_cmpstr(first(t, rd(0, 1)), ==, "p0");
    g_assert_cmpstr(first(t, rd(0xfffe, 1)), ==, "pfffe");
    g_assert_null(first(t, rd(0xffff, 1)));
    route_table_free(t);
}

static void test_full_space(void)
{
    RouteTableEntry e = {
        .name = "all",
        .spec = {
            .type = EXIT_EVENT_MMIO, .start = 0, .last = UINT64_MAX,
            .dir_mask = EXIT_DIR_ANY, .size_mask = EXIT_SIZE_ANY,
        },
    };
    RouteTable *t = build_ok(&e, 1);
    ExitAccess a = { .type = EXIT_EVENT_MMIO, .addr = UINT64_MAX, .size = 1 };

    g_assert_cmpstr(first(t, a), ==, "all");
    a.addr = UINT64_MAX - 7;
    a.size = 8;
    g_assert_cmpstr(first(t, a), ==, "all");
    a.addr = UINT64_MAX - 6;
    g_assert_null(first(t, a));             /* would wrap */
    a.addr = 0;
    g_assert_cmpstr(first(t, a), ==, "all");
    /* Another event type does not see it. */
    g_assert_null(first(t, rd(0, 1)));
    route_table_free(t);
}

static void test_conflict_refused(void)
{
    RouteTableEntry e[] = { pio("a", 0x40, 0x43, 0), pio("b", 0x43, 0x50, 0) };
    Error *err = NULL;
    RouteTable *t = route_table_build(e, 2, &err);

    g_assert_null(t);
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "exit route 'b' conflicts with 'a': both match pio "
                    "0x43..0x43 at priority 0");
    error_free(err);
}

static void test_priority_and_decline(void)
{
    RouteTableEntry e[] = {
        pio("low", 0x20, 0x21, -1),
        pio("high", 0x21, 0x21, 5),
        pio("mid", 0x00, 0xff, 0),
    };
    RouteTable *t = build_ok(e, 3);
    ExitAccess a = rd(0x21, 1);
    RouteCursor c;

    route_table_lookup(t, &a, &c);
    /* A declined access goes on to the next route, best first. */
    g_assert_cmpstr(route_cursor_next(&c, &a)->name, ==, "high");
    g_assert_cmpstr(route_cursor_next(&c, &a)->name, ==, "mid");
    g_assert_cmpstr(route_cursor_next(&c, &a)->name, ==, "low");
    g_assert_null(route_cursor_next(&c, &a));

    g_assert_cmpstr(first(t, rd(0x20, 1)), ==, "mid");
    /* A word at 0x20 fits "low" and "mid", not the 1-port "high". */
    g_assert_cmpstr(first(t, rd(0x20, 2)), ==, "mid");
    g_assert_cmpstr(first(t, rd(0xff, 1)), ==, "mid");
    g_assert_null(first(t, rd(0x100, 1)));
    route_table_free(t);
}

static void test_datamatch(void)
{
    RouteTableEntry e[] = {
        pio("one", 0x80, 0x80, 0), pio("two", 0x80, 0x80, 0),
        pio("reads", 0x80, 0x80, 0),
    };
    RouteTable *t;
    Error *err = NULL;

    e[0].spec.dir_mask = e[1].spec.dir_mask = EXIT_DIR_WRITE;
    e[0].spec.has_datamatch = e[1].spec.has_datamatch = true;
    e[0].spec.datamatch = 1;
    e[1].spec.datamatch = 2;
    e[2].spec.dir_mask = EXIT_DIR_READ;
    t = build_ok(e, 3);
    g_assert_cmpstr(first(t, wr(0x80, 1, 1)), ==, "one");
    g_assert_cmpstr(first(t, wr(0x80, 1, 2)), ==, "two");
    g_assert_null(first(t, wr(0x80, 1, 3)));
    g_assert_cmpstr(first(t, rd(0x80, 1)), ==, "reads");
    route_table_free(t);

    /* Same data at the same priority: refused. */
    e[1].spec.datamatch = 1;
    g_assert_null(route_table_build(e, 2, &err));
    error_free_or_abort(&err);

    /* A data match on reads makes no sense: refused, named. */
    e[0].spec.dir_mask = EXIT_DIR_ANY;
    g_assert_null(route_table_build(e, 1, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "'one'"));
    g_assert_nonnull(strstr(error_get_pretty(err), "writes only"));
    error_free(err);
}

static void test_direction_and_size(void)
{
    RouteTableEntry e[] = { pio("r", 0x61, 0x61, 0), pio("w", 0x61, 0x61, 0),
                            pio("dword", 0x60, 0x63, 1) };
    RouteTable *t;

    e[0].spec.dir_mask = EXIT_DIR_READ;
    e[1].spec.dir_mask = EXIT_DIR_WRITE;
    e[2].spec.size_mask = 1u << 2;
    t = build_ok(e, 3);
    g_assert_cmpstr(first(t, rd(0x61, 1)), ==, "r");
    g_assert_cmpstr(first(t, wr(0x61, 1, 0)), ==, "w");
    g_assert_cmpstr(first(t, rd(0x60, 4)), ==, "dword");
    g_assert_null(first(t, rd(0x60, 2)));
    route_table_free(t);
}

static void test_bad_specs(void)
{
    RouteTableEntry e[] = { pio("wide", 0xfff0, 0x10000, 0) };
    Error *err = NULL;

    g_assert_null(route_table_build(e, 1, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "'wide'"));
    g_assert_nonnull(strstr(error_get_pretty(err), "past 0xffff"));
    error_free(err);
    err = NULL;

    e[0] = pio("backwards", 0x50, 0x40, 0);
    g_assert_null(route_table_build(e, 1, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "empty range"));
    error_free(err);
    err = NULL;

    e[0] = pio("nodir", 0x50, 0x50, 0);
    e[0].spec.dir_mask = 0;
    g_assert_null(route_table_build(e, 1, &err));
    error_free_or_abort(&err);
}

/*
 * Random tables against a brute-force reference: every matching route,
 * by priority (descending) then position.  Priorities are unique per
 * table position, so no table is refused.
 */
static void test_random_vs_reference(void)
{
    GRand *rng = g_rand_new_with_seed(0x7165);
    int round;

    for (round = 0; round < 200; round++) {
        unsigned n = g_rand_int_range(rng, 1, 40), i, k;
        RouteTableEntry *e = g_new0(RouteTableEntry, n);
        char **names = g_new0(char *, n + 1);
        RouteTable *t;

        for (i = 0; i < n; i++) {
            uint64_t start = g_rand_int_range(rng, 0, 256);

            names[i] = g_strdup_printf("r%u", i);
            e[i] = pio(names[i], start,
                       start + g_rand_int_range(rng, 0, 16), 0);
            e[i].spec.priority = g_rand_int_range(rng, -1000, 1000) * 64 + i;
            e[i].spec.dir_mask = g_rand_int_range(rng, 1, 4);
            e[i].spec.size_mask = g_rand_int_range(rng, 1, 16);
            if (e[i].spec.dir_mask == EXIT_DIR_WRITE &&
                g_rand_boolean(rng)) {
                e[i].spec.has_datamatch = true;
                e[i].spec.datamatch = g_rand_int_range(rng, 0, 3);
            }
        }
        t = build_ok(e, n);
        for (k = 0; k < 500; k++) {
            ExitAccess a = {
                .type = EXIT_EVENT_PIO,
                .addr = g_rand_int_range(rng, 0, 280),
                .size = 1u << g_rand_int_range(rng, 0, 4),
                .is_write = g_rand_boolean(rng),
                .data = g_rand_int_range(rng, 0, 3),
            };
            g_autofree int *order = g_new(int, n);
            unsigned m = 0, j;
            RouteCursor c;
            const RouteTableEntry *got;

            for (i = 0; i < n; i++) {
                if (exit_route_spec_matches(&e[i].spec, &a)) {
                    order[m++] = i;
                }
            }
            /* insertion sort by priority, descending */
            for (i = 1; i < m; i++) {
                for (j = i; j > 0 && e[order[j - 1]].spec.priority <
                            e[order[j]].spec.priority; j--) {
                    int tmp = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = tmp;
                }
            }
            route_table_lookup(t, &a, &c);
            for (i = 0; i < m; i++) {
                got = route_cursor_next(&c, &a);
                g_assert_nonnull(got);
                g_assert_cmpstr(got->name, ==, e[order[i]].name);
            }
            g_assert_null(route_cursor_next(&c, &a));
        }
        route_table_free(t);
        g_strfreev(names);
        g_free(e);
    }
    g_rand_free(rng);
}

/*
 * Swap under RCU while readers look up.  Table generation g routes port
 * 0x10 and port 0x20 to routes that both carry g; a reader must never
 * see two generations in one read-side critical section.
 */
#define SWAP_READERS 3
#define SWAPS 2000

typedef struct SwapTable {
    struct rcu_head rcu;
    RouteTable *table;
    uintptr_t gen;
} SwapTable;

static SwapTable *swap_current;
static bool swap_done;
static uint64_t swap_reads;

static void swap_table_free(SwapTable *s)
{
    route_table_free(s->table);
    g_free(s);
}

static SwapTable *swap_table_new(uintptr_t gen)
{
    SwapTable *s = g_new0(SwapTable, 1);
    RouteTableEntry e[] = { pio("a", 0x10, 0x10, 0), pio("b", 0x20, 0x20, 0) };

    e[0].opaque = e[1].opaque = (void *)gen;
    s->table = build_ok(e, 2);
    s->gen = gen;
    return s;
}

static void *swap_reader(void *arg)
{
    uint64_t reads = 0;

    rcu_register_thread();
    while (!qatomic_read(&swap_done)) {
        ExitAccess a = rd(0x10, 1), b = rd(0x20, 1);
        RouteCursor c;
        SwapTable *s;
        uintptr_t ga, gb;

        WITH_RCU_READ_LOCK_GUARD() {
            s = qatomic_rcu_read(&swap_current);
            route_table_lookup(s->table, &a, &c);
            ga = (uintptr_t)route_cursor_next(&c, &a)->opaque;
            route_table_lookup(s->table, &b, &c);
            gb = (uintptr_t)route_cursor_next(&c, &b)->opaque;
            g_assert_cmpuint(ga, ==, gb);
            g_assert_cmpuint(ga, ==, s->gen);
        }
        reads++;
    }
    qatomic_add(&swap_reads, reads);
    rcu_unregister_thread();
    return NULL;
}

static void test_swap_under_rcu(void)
{
    QemuThread th[SWAP_READERS];
    uintptr_t gen;
    int i;

    swap_current = swap_table_new(1);
    for (i = 0; i < SWAP_READERS; i++) {
        qemu_thread_create(&th[i], "reader", swap_reader, NULL,
                           QEMU_THREAD_JOINABLE);
    }
    for (gen = 2; gen <= SWAPS; gen++) {
        SwapTable *old = swap_current;

        qatomic_rcu_set(&swap_current, swap_table_new(gen));
        call_rcu(old, swap_table_free, rcu);
    }
    qatomic_set(&swap_done, true);
    for (i = 0; i < SWAP_READERS; i++) {
        qemu_thread_join(&th[i]);
    }
    g_assert_cmpuint(qatomic_read(&swap_reads), >, 0);
    synchronize_rcu();
    swap_table_free(swap_current);
}

/*
 * route_table_check_new() (used while -object routes are created) must
 * accept exactly what route_table_build() accepts, with the same
 * message: random route sets, added one by one, checked both ways.
 */
static void test_check_new_matches_build(void)
{
    GRand *rng = g_rand_new_with_seed(0x5eed);
    int round, refused = 0;

    for (round = 0; round < 300; round++) {
        unsigned n = g_rand_int_range(rng, 1, 24), i;
        g_autofree RouteTableEntry *e = g_new0(RouteTableEntry, n);
        g_auto(GStrv) names = g_new0(char *, n + 1);

        for (i = 0; i < n; i++) {
            uint64_t start = g_rand_int_range(rng, 0, 64);
            Error *err_new = NULL, *err_build = NULL;
            RouteTable *t;
            bool ok_new;

            names[i] = g_strdup_printf("r%u", i);
            e[i] = pio(names[i], start,
                       start + g_rand_int_range(rng, 0, 8), 0);
            e[i].spec.priority = g_rand_int_range(rng, 0, 3);
            e[i].spec.dir_mask = g_rand_int_range(rng, 1, 4);
            e[i].spec.size_mask = g_rand_int_range(rng, 1, 16);
            ok_new = route_table_check_new(e, i, &e[i], &err_new);
            t = route_table_build(e, i + 1, &err_build);
            g_assert_cmpint(ok_new, ==, t != NULL);
            if (!ok_new) {
                /* Both name the new route first. */
                g_assert_nonnull(strstr(error_get_pretty(err_new),
                                        names[i]));
                g_assert_nonnull(strstr(error_get_pretty(err_build),
                                        "conflicts with"));
                error_free(err_new);
                error_free(err_build);
                refused++;
                break;          /* the set stops growing, as QEMU's would */
            }
            route_table_free(t);
        }
    }
    /* The seeds must exercise both outcomes. */
    g_assert_cmpint(refused, >, 20);
    g_assert_cmpint(refused, <, 290);
    g_rand_free(rng);
}

/*
 * Event types are separate spaces; an MSR access covers one index
 * whatever its width, so an 8-byte RDMSR of the last MSR of a route
 * matches it (a PIO or MMIO access must fit in bytes).
 */
static void test_event_types(void)
{
    RouteTableEntry e[3] = {
        pio("port", 0x1b, 0x1b, 0),
        pio("apic", 0x1b, 0x1b, 0),
        pio("mem", 0x1b, 0x22, 0),
    };
    ExitAccess msr = { .type = EXIT_EVENT_MSR, .addr = 0x1b, .size = 8 };
    ExitAccess mmio = { .type = EXIT_EVENT_MMIO, .addr = 0x1b, .size = 8 };
    RouteTable *t;

    e[1].spec.type = EXIT_EVENT_MSR;
    e[2].spec.type = EXIT_EVENT_MMIO;
    t = build_ok(e, 3);             /* same range, no conflict */
    g_assert_cmpstr(first(t, rd(0x1b, 1)), ==, "port");
    g_assert_cmpstr(first(t, msr), ==, "apic");
    g_assert_cmpstr(first(t, mmio), ==, "mem");
    msr.addr = 0x1c;
    g_assert_null(first(t, msr));
    msr.addr = 0x1b;
    msr.is_write = true;
    g_assert_cmpstr(first(t, msr), ==, "apic");
    mmio.addr = 0x1c;               /* 0x1c..0x23 leaves the route */
    g_assert_null(first(t, mmio));
    route_table_free(t);
}

/*
 * KVM's matching of an ioeventfd (virt/kvm/eventfd.c, ioeventfd_in_range):
 * the address exactly, and the length exactly unless it is 0 ("any").
 */
static bool kick_absorbs(const ExitNoExitKick *kicks, unsigned n,
                         uint64_t addr, unsigned len)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (kicks[i].addr == addr && (!kicks[i].len || kicks[i].len == len)) {
            return true;
        }
    }
    return false;
}

/*
 * The ioeventfds a write-only route gets absorb exactly the writes the
 * route matches (so KVM agrees with TCG and qtest on every access): no
 * length-0 ioeventfd, which would also swallow a wider write that starts
 * on the route's last port and runs past it.
 */
static void test_noexit_plan(void)
{
    GRand *rng = g_rand_new_with_seed(0x10e7);
    ExitNoExitKick kicks[EXIT_NOEXIT_MAX_KICKS];
    int i;

    /* The defect's case: one port, any size; a word write straddles it. */
    {
        ExitRouteSpec sp = {
            .type = EXIT_EVENT_PIO, .start = 0x21, .last = 0x21,
            .dir_mask = EXIT_DIR_WRITE, .size_mask = EXIT_SIZE_ANY,
        };
        unsigned n = exit_noexit_plan(&sp, kicks);

        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpuint(kicks[0].addr, ==, 0x21);
        g_assert_cmpuint(kicks[0].len, ==, 1);
        g_assert_false(kick_absorbs(kicks, n, 0x21, 2));
    }
    for (i = 0; i < 20000; i++) {
        ExitRouteSpec sp = {
            .type = g_rand_boolean(rng) ? EXIT_EVENT_PIO : EXIT_EVENT_MMIO,
            .start = g_rand_int_range(rng, 0, 64),
            .dir_mask = g_rand_int_range(rng, 0, 8) ? EXIT_DIR_WRITE :
                        EXIT_DIR_ANY,
            .size_mask = g_rand_boolean(rng) ? EXIT_SIZE_ANY :
                         1u << g_rand_int_range(rng, 0, 4),
            .has_datamatch = g_rand_int_range(rng, 0, 4) == 0,
            .datamatch = 7,
        };
        unsigned n, len;
        uint64_t a;

        sp.last = sp.start + g_rand_int_range(rng, 0, 20);
        n = exit_noexit_plan(&sp, kicks);
        if (sp.dir_mask != EXIT_DIR_WRITE ||
            sp.last - sp.start + 1 > EXIT_NOEXIT_MAX_ADDRS) {
            g_assert_cmpuint(n, ==, 0);
            continue;
        }
        g_assert_cmpuint(n, <=, EXIT_NOEXIT_MAX_KICKS);
        for (a = 0; a < sp.last + 10; a++) {
            for (len = 1; len <= 8; len <<= 1) {
                ExitAccess w = {
                    .type = sp.type, .addr = a, .size = len,
                    .is_write = true, .data = 7,
                };

                if (sp.type == EXIT_EVENT_PIO && len == 8) {
                    continue;       /* no such port access */
                }
                if (kick_absorbs(kicks, n, a, len) !=
                    exit_route_spec_matches(&sp, &w)) {
                    g_error("route %s 0x%" PRIx64 "..0x%" PRIx64 " sizes "
                            "0x%x: a %u-byte write at 0x%" PRIx64 " is %s",
                            exit_event_type_name(sp.type), sp.start,
                            sp.last, sp.size_mask, len, a,
                            exit_route_spec_matches(&sp, &w) ?
                            "matched but not absorbed" :
                            "absorbed but not matched");
                }
            }
        }
    }
    g_rand_free(rng);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/route-table/empty", test_empty);
    g_test_add_func("/route-table/range-edges", test_range_edges);
    g_test_add_func("/route-table/full-space", test_full_space);
    g_test_add_func("/route-table/many-port-routes", test_many_port_routes);
    g_test_add_func("/route-table/conflict-refused", test_conflict_refused);
    g_test_add_func("/route-table/priority-and-decline",
                    test_priority_and_decline);
    g_test_add_func("/route-table/datamatch", test_datamatch);
    g_test_add_func("/route-table/direction-and-size",
                    test_direction_and_size);
    g_test_add_func("/route-table/bad-specs", test_bad_specs);
    g_test_add_func("/route-table/random-vs-reference",
                    test_random_vs_reference);
    g_test_add_func("/route-table/swap-under-rcu", test_swap_under_rcu);
    g_test_add_func("/route-table/noexit-plan", test_noexit_plan);
    g_test_add_func("/route-table/event-types", test_event_types);
    g_test_add_func("/route-table/check-new-matches-build",
                    test_check_new_matches_build);
    return g_test_run();
}

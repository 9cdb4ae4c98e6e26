/*
 * Differential test of the kernel tier: the same seeded I/O sequence runs
 * against the fork with the kernel tier on and against the vanilla twin
 * (the same QEMU source without our patches: QEMU's own device models,
 * before patches 16-20 refactored them), and every read value, every
 * change of the interrupt output and, at the end, the migration stream
 * must be identical.  A divergence reports the seed, the operation's
 * index and the operations before it.  So both the inline tier and the
 * refactored models of the fork are compared with QEMU's own.
 *
 * QT_VANILLA_QEMU names the twin's binary (tests/run-qtest.sh sets it);
 * without it, e.g. in QEMU's own `make check-qtest`, the tests skip.
 *
 * Sequences are random but biased towards the datasheet's features
 * (8259A: ICW1..ICW4 initialisation, OCW1 masks, OCW2 EOI/rotate/priority,
 * OCW3 read select, poll and special mask, AEOI, cascade through IRQ2;
 * PIIX ELCR), with IRQ input changes in between.  Hand-written sequences
 * for each feature come first.
 *
 * QT_DIFF_OPS sets the number of random operations per device (default
 * 1000000; `make check-diff-long` runs 10^7); QT_DIFF_SEED the PIC's
 * seed.
 *
 * Devices: the PIC pair with its ELCRs, the PIT with port 0x61, the
 * i8042 (status, data, controller and PS/2 commands, key events; IRQ1 and
 * IRQ12 compared at the I/O APIC), and the ACPI PM timer on pc and
 * q35 (clock steps, 24-bit wrap, narrow and unaligned reads, writes, and
 * the firmware moving the PM block, which the tier's route follows).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "tiers-qtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

typedef struct DiffVM {
    QTestState *qts;
    char *pic[2];               /* QOM paths: master, slave */
    char *pit;
} DiffVM;

typedef struct DiffOp {
    enum { OP_IN, OP_OUT, OP_IRQ, OP_INL, OP_OUTL, OP_CLOCK, OP_KEY } kind;
    uint16_t port;
    uint32_t val;               /* OUT: value; IRQ: level; CLOCK: ns */
                                /* KEY: qcode number << 1 | down */
    uint8_t chip, line;         /* IRQ: which PIC, which input */
} DiffOp;

#define HISTORY 32

typedef struct Diff {
    DiffVM fork, ref;           /* the fork, tier on; the vanilla twin */
    uint64_t seed;
    uint64_t n;                 /* operations done */
    DiffOp hist[HISTORY];
    uint64_t inline_before;     /* the fork's tier-pic* counts at start */
    uint32_t irq_lines;         /* intercepted lines compared (0: line 0) */
} Diff;

/* The QOM path of the one device of @type in /machine/unattached. */
static char *find_device(DiffVM *vm, const char *type)
{
    QDict *rsp = qtest_qmp(vm->qts, "{ 'execute': 'qom-list', 'arguments': "
                           "{ 'path': '/machine/unattached' } }");
    g_autofree char *want = g_strdup_printf("child<%s>", type);
    char *path = NULL;
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *p = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(p, "type"), want)) {
            g_assert_null(path);
            path = g_strdup_printf("/machine/unattached/%s",
                                   qdict_get_str(p, "name"));
        }
    }
    qobject_unref(rsp);
    g_assert_nonnull(path);
    return path;
}

/* The QOM paths of the machine's i8259s, master first. */
static void find_pics(DiffVM *vm)
{
    QDict *rsp = qtest_qmp(vm->qts, "{ 'execute': 'qom-list', 'arguments': "
                           "{ 'path': '/machine/unattached' } }");
    QListEntry *e;
    int n = 0;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *p = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(p, "type"), "child<isa-i8259>")) {
            g_assert_cmpint(n, <, 2);
            vm->pic[n++] = g_strdup_printf("/machine/unattached/%s",
                                           qdict_get_str(p, "name"));
        }
    }
    qobject_unref(rsp);
    g_assert_cmpint(n, ==, 2);
    /* i8259_init() creates the master first. */
}

/*
 * Start @vm: the fork with its kernel tier on, or the vanilla twin, with
 * the same machine options.  @intercept: where to intercept IRQ lines
 * (NULL: the master PIC's INT output).
 */
static void vm_start(DiffVM *vm, bool vanilla, const char *machine,
                     const char *intercept)
{
    g_autofree char *args = g_strdup_printf(
        "-machine %s%s -nodefaults -rtc base=2020-01-01T00:00:00,clock=vm",
        machine, vanilla ? "" : ",kernel-tier=on");
    QDict *rsp;

    vm->qts = vanilla ? qtest_init_with_env("QT_VANILLA_QEMU", args, true) :
                        qtest_init(args);
    /* The reference really is QEMU without the router. */
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'query-exit-router' }");
    g_assert_cmpint(qdict_haskey(rsp, "error"), ==, vanilla);
    qobject_unref(rsp);
    find_pics(vm);
    vm->pit = find_device(vm, "isa-pit");
    if (intercept) {
        qtest_irq_intercept_in(vm->qts, intercept);
    } else {
        qtest_irq_intercept_out(vm->qts, vm->pic[0]);
    }
}

/* Both VMs of @d, or false (the test is skipped) without the twin. */
static bool diff_start(Diff *d, const char *machine, const char *intercept)
{
    if (!g_getenv("QT_VANILLA_QEMU")) {
        g_test_skip("QT_VANILLA_QEMU (the vanilla twin, the reference) is "
                    "not set; make check runs this test");
        return false;
    }
    vm_start(&d->fork, false, machine, intercept);
    vm_start(&d->ref, true, machine, intercept);
    return true;
}

static void vm_stop(DiffVM *vm)
{
    qtest_quit(vm->qts);
    g_free(vm->pic[0]);
    g_free(vm->pic[1]);
    g_free(vm->pit);
}

static void diff_stop(Diff *d)
{
    vm_stop(&d->fork);
    vm_stop(&d->ref);
}

static uint64_t tier_pic_count(QTestState *qts)
{
    static const char *const ids[] = {
        "tier-pic1", "tier-pic2", "tier-elcr1", "tier-elcr2",
    };
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(ids); i++) {
        int64_t c = route_count(qts, ids[i]);

        g_assert_cmpint(c, >=, 0);
        sum += c;
    }
    return sum;
}

static void diff_fail(Diff *d, const char *what, uint64_t fork, uint64_t ref)
{
    uint64_t i, first = d->n > HISTORY ? d->n - HISTORY : 0;

    for (i = first; i <= d->n && i < first + HISTORY; i++) {
        const DiffOp *op = &d->hist[i % HISTORY];

        if (op->kind == OP_IRQ) {
            g_test_message("op %" PRIu64 ": irq chip %u line %u level %u", i,
                           op->chip, op->line, op->val);
        } else if (op->kind == OP_CLOCK) {
            g_test_message("op %" PRIu64 ": clock_step %u", i, op->val);
        } else if (op->kind == OP_KEY) {
            g_test_message("op %" PRIu64 ": key %u %s", i, op->val >> 1,
                           op->val & 1 ? "down" : "up");
        } else {
            static const char *const kinds[] = {
                [OP_IN] = "inb", [OP_OUT] = "outb", [OP_INL] = "inl",
                [OP_OUTL] = "outl",
            };

            g_test_message("op %" PRIu64 ": %s 0x%x 0x%x", i,
                           kinds[op->kind], op->port, op->val);
        }
    }
    g_error("seed 0x%" PRIx64 ", op %" PRIu64 ": %s differs: fork 0x%"
            PRIx64 ", vanilla 0x%" PRIx64, d->seed, d->n, what, fork, ref);
}

/* A key press or release from the keyboard, as a UI would send it. */
static void diff_key_event(QTestState *qts, unsigned key, bool down)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'input-send-event', "
                             "'arguments': { 'events': [ { 'type': 'key', "
                             "'data': { 'down': %i, 'key': { 'type': "
                             "'number', 'data': %u } } } ] } }", down, key);
}

/* Run one operation on both VMs and compare what the guest can see. */
static void diff_op(Diff *d, const DiffOp *op)
{
    int line;

    d->hist[d->n % HISTORY] = *op;
    switch (op->kind) {
    case OP_IN: {
        uint8_t a = qtest_inb(d->fork.qts, op->port);
        uint8_t b = qtest_inb(d->ref.qts, op->port);

        if (a != b) {
            diff_fail(d, "read", a, b);
        }
        break;
    }
    case OP_OUT:
        qtest_outb(d->fork.qts, op->port, op->val);
        qtest_outb(d->ref.qts, op->port, op->val);
        break;
    case OP_IRQ:
        qtest_set_irq_in(d->fork.qts, d->fork.pic[op->chip], NULL, op->line,
                         op->val);
        qtest_set_irq_in(d->ref.qts, d->ref.pic[op->chip], NULL, op->line,
                         op->val);
        break;
    case OP_INL: {
        uint32_t a = qtest_inl(d->fork.qts, op->port);
        uint32_t b = qtest_inl(d->ref.qts, op->port);

        if (a != b) {
            diff_fail(d, "read", a, b);
        }
        break;
    }
    case OP_OUTL:
        qtest_outl(d->fork.qts, op->port, op->val);
        qtest_outl(d->ref.qts, op->port, op->val);
        break;
    case OP_CLOCK:
        qtest_clock_step(d->fork.qts, op->val);
        qtest_clock_step(d->ref.qts, op->val);
        break;
    case OP_KEY:
        diff_key_event(d->fork.qts, op->val >> 1, op->val & 1);
        diff_key_event(d->ref.qts, op->val >> 1, op->val & 1);
        break;
    }
    for (line = 0; line < 32; line++) {
        if (((d->irq_lines ?: 1) & (1u << line)) &&
            qtest_get_irq(d->fork.qts, line) !=
            qtest_get_irq(d->ref.qts, line)) {
            diff_fail(d, line ? "IRQ line" : "INT output / IRQ0",
                      qtest_get_irq(d->fork.qts, line),
                      qtest_get_irq(d->ref.qts, line));
        }
    }
    d->n++;
}

/* The operations, as the sequences below write them. */
#define diff_do(d, ...) diff_op((d), &(DiffOp) { __VA_ARGS__ })
#define diff_in(d, p) diff_do(d, .kind = OP_IN, .port = (p))
#define diff_out(d, p, v) diff_do(d, .kind = OP_OUT, .port = (p), \
                                  .val = (uint8_t)(v))
#define diff_inl(d, p) diff_do(d, .kind = OP_INL, .port = (p))
#define diff_outl(d, p, v) diff_do(d, .kind = OP_OUTL, .port = (p), \
                                   .val = (v))
#define diff_clock_step(d, ns) diff_do(d, .kind = OP_CLOCK, .val = (ns))

static void diff_irq(Diff *d, int chip, int line, int level)
{
    DiffOp op = { .kind = OP_IRQ, .chip = chip, .line = line, .val = level };

    diff_op(d, &op);
}

/* Read every register both ways, leaving OCW3's read select as found. */
static void diff_read_all(Diff *d)
{
    static const uint16_t base[2] = { 0x20, 0xa0 };
    int c;

    for (c = 0; c < 2; c++) {
        diff_out(d, base[c], 0x0a);         /* OCW3: read IRR */
        diff_in(d, base[c]);
        diff_out(d, base[c], 0x0b);         /* OCW3: read ISR */
        diff_in(d, base[c]);
        diff_in(d, base[c] + 1);            /* IMR */
        diff_in(d, 0x4d0 + c);              /* ELCR */
    }
}

/* The datasheet's features, one by one. */
static void diff_edge_cases(Diff *d)
{
    static const uint16_t base[2] = { 0x20, 0xa0 };
    int c, i;

    for (c = 0; c < 2; c++) {
        /* ICW1 with ICW4, ICW2 vector base, ICW3 cascade, ICW4 8086 */
        diff_out(d, base[c], 0x11);
        diff_out(d, base[c] + 1, c ? 0x70 : 0x08);
        diff_out(d, base[c] + 1, c ? 0x02 : 0x04);
        diff_out(d, base[c] + 1, 0x01);
        diff_read_all(d);
    }
    /* Edge-triggered requests, masked and unmasked, and their EOI. */
    for (i = 0; i < 8; i++) {
        diff_out(d, 0x21, 0xff & ~(1 << i));
        diff_irq(d, 0, i, 1);
        diff_irq(d, 0, i, 0);
        diff_read_all(d);
        diff_out(d, 0x20, 0x0c);            /* OCW3: poll */
        diff_in(d, 0x20);                   /* acknowledges */
        diff_read_all(d);
        diff_out(d, 0x20, 0x20);            /* non-specific EOI */
        diff_read_all(d);
    }
    /* Cascade: slave line 3 through master IRQ2, specific EOIs. */
    diff_out(d, 0x21, 0x00);
    diff_out(d, 0xa1, 0x00);
    diff_irq(d, 1, 3, 1);
    diff_read_all(d);
    diff_out(d, 0xa0, 0x0c);
    diff_in(d, 0xa0);
    diff_out(d, 0xa0, 0x63);                /* specific EOI, IRQ3 */
    diff_out(d, 0x20, 0x62);                /* specific EOI, IRQ2 */
    diff_irq(d, 1, 3, 0);
    diff_read_all(d);
    /* Level-triggered through the ELCR (PIIX masks: 0xf8, 0xde). */
    diff_out(d, 0x4d0, 0xff);
    diff_out(d, 0x4d1, 0xff);
    diff_irq(d, 0, 5, 1);
    diff_read_all(d);
    diff_irq(d, 0, 5, 0);
    diff_read_all(d);
    /* Rotation: rotate on non-specific EOI, set priority, AEOI rotate. */
    diff_out(d, 0x20, 0xa0);
    diff_out(d, 0x20, 0xc3);
    diff_out(d, 0x20, 0x80);
    diff_out(d, 0x20, 0x00);
    diff_read_all(d);
    /* AEOI through ICW4, special fully nested mode on the master. */
    diff_out(d, 0x20, 0x11);
    diff_out(d, 0x21, 0x08);
    diff_out(d, 0x21, 0x04);
    diff_out(d, 0x21, 0x13);
    diff_irq(d, 0, 1, 1);
    diff_out(d, 0x20, 0x0c);
    diff_in(d, 0x20);
    diff_irq(d, 0, 1, 0);
    diff_read_all(d);
    /* Special mask mode set and cleared. */
    diff_out(d, 0x20, 0x68);
    diff_read_all(d);
    diff_out(d, 0x20, 0x48);
    diff_read_all(d);
    /* Single mode and no ICW4; a poll with nothing pending. */
    diff_out(d, 0xa0, 0x12);
    diff_out(d, 0xa1, 0x70);
    diff_out(d, 0xa0, 0x0c);
    diff_in(d, 0xa0);
    diff_in(d, 0xa1);
    diff_read_all(d);
}

/* One random operation, biased towards meaningful commands. */
static void diff_random_op(Diff *d, GRand *rng)
{
    static const uint16_t base[2] = { 0x20, 0xa0 };
    int c = g_rand_int_range(rng, 0, 2);
    int r = g_rand_int_range(rng, 0, 100);
    uint8_t v;

    if (r < 30) {                       /* reads, any register */
        static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1,
                                          0x4d0, 0x4d1 };

        diff_in(d, ports[g_rand_int_range(rng, 0, G_N_ELEMENTS(ports))]);
    } else if (r < 50) {                /* IRQ inputs */
        diff_irq(d, c, g_rand_int_range(rng, 0, 8),
                 g_rand_int_range(rng, 0, 2));
    } else if (r < 62) {                /* OCW3 */
        v = 0x08 | (g_rand_int(rng) & 0x67);
        diff_out(d, base[c], v);
    } else if (r < 74) {                /* OCW2 */
        v = (g_rand_int_range(rng, 0, 8) << 5) | g_rand_int_range(rng, 0, 8);
        diff_out(d, base[c], v);
    } else if (r < 84) {                /* OCW1, or ICW2..4 during init */
        diff_out(d, base[c] + 1, g_rand_int(rng));
    } else if (r < 90) {                /* ELCR */
        diff_out(d, 0x4d0 + c, g_rand_int(rng));
    } else if (r < 95) {                /* ICW1, random modes */
        v = 0x10 | (g_rand_int(rng) & 0x0b);
        diff_out(d, base[c], v);
    } else {                            /* anything */
        diff_out(d, base[c] + g_rand_int_range(rng, 0, 2), g_rand_int(rng));
    }
}

/* Random operations per device: QT_DIFF_OPS, default 10^6. */
static uint64_t diff_ops_per_device(void)
{
    const char *env = g_getenv("QT_DIFF_OPS");

    return env ? g_ascii_strtoull(env, NULL, 0) : 1000000;
}

/* Save both machines' state; the streams must be byte-identical. */
static void compare_state(Diff *d)
{
    g_autofree char *dir = g_dir_make_tmp("tier-diff-XXXXXX", NULL);
    g_autofree char *pa = g_strdup_printf("%s/fork", dir);
    g_autofree char *pb = g_strdup_printf("%s/vanilla", dir);
    gssize at;

    tiers_save_state(d->fork.qts, pa);
    tiers_save_state(d->ref.qts, pb);
    at = tiers_state_diff(pa, pb);
    if (at >= 0) {
        g_error("seed 0x%" PRIx64 ": migration streams differ at byte %"
                G_GSSIZE_FORMAT, d->seed, at);
    }
    unlink(pa);
    unlink(pb);
    rmdir(dir);
}

static void test_pic_diff(void)
{
    const char *seed_env = g_getenv("QT_DIFF_SEED");
    uint64_t ops = diff_ops_per_device();
    Diff d = {
        .seed = seed_env ? g_ascii_strtoull(seed_env, NULL, 0) : 0x8259,
    };
    GRand *rng;
    uint64_t i, served;

    if (!diff_start(&d, "pc", NULL)) {
        return;
    }
    rng = g_rand_new_with_seed(d.seed);
    d.inline_before = tier_pic_count(d.fork.qts);

    diff_edge_cases(&d);
    for (i = 0; i < ops; i++) {
        diff_random_op(&d, rng);
    }
    diff_read_all(&d);
    compare_state(&d);

    /* The tier really served (most of) it; a test that cannot fail... */
    served = tier_pic_count(d.fork.qts) - d.inline_before;
    g_test_message("%" PRIu64 " operations, %" PRIu64 " port accesses "
                   "served inline", d.n, served);
    g_assert_cmpuint(served, >, d.n / 4);

    g_rand_free(rng);
    diff_stop(&d);
}

/* ---- i8254 PIT and port 0x61 ------------------------------------------- */

/*
 * The PIT's IRQ0 is compared through the PIC (the PIT's own output goes
 * to the GSI splitter): unmask IRQ0, and the master's INT output and IRR
 * follow it; diff_op() compares INT after every operation.
 */
static void test_pit_diff(void)
{
    uint64_t ops = diff_ops_per_device();
    Diff d = { .seed = 0x8254 };
    GRand *rng;
    uint64_t i;
    int64_t served;
    int c;

    if (!diff_start(&d, "pc", NULL)) {
        return;
    }
    rng = g_rand_new_with_seed(d.seed);
    /* PIC: ICW1..4, IRQ0 unmasked; the PIT's IRQ0 reaches its INT. */
    diff_out(&d, 0x20, 0x11);
    diff_out(&d, 0x21, 0x08);
    diff_out(&d, 0x21, 0x04);
    diff_out(&d, 0x21, 0x01);
    diff_out(&d, 0x21, 0xfe);

    /* Datasheet features first: every mode, LSB/MSB/word, latch. */
    for (c = 0; c < 3; c++) {
        int mode;

        for (mode = 0; mode < 8; mode++) {
            int rw;

            for (rw = 1; rw <= 3; rw++) {
                diff_out(&d, 0x43, (c << 6) | (rw << 4) | (mode << 1));
                if (rw != 2) {
                    diff_out(&d, 0x40 + c, 0x34);
                }
                if (rw != 1) {
                    diff_out(&d, 0x40 + c, 0x12);
                }
                diff_clock_step(&d, 123457);
                diff_in(&d, 0x40 + c);
                diff_in(&d, 0x40 + c);
                diff_out(&d, 0x43, c << 6);             /* latch */
                diff_clock_step(&d, 1000);
                diff_in(&d, 0x40 + c);
                diff_in(&d, 0x40 + c);
                diff_out(&d, 0x43, 0xc0 | (2 << c));    /* read-back */
                diff_in(&d, 0x40 + c);
                diff_in(&d, 0x40 + c);
                diff_in(&d, 0x40 + c);
                diff_in(&d, 0x43);
            }
        }
    }
    for (i = 0; i < ops; i++) {
        int r = g_rand_int_range(rng, 0, 1000);

        c = g_rand_int_range(rng, 0, 3);
        if (r < 400) {
            diff_in(&d, 0x40 + c);
        } else if (r < 500) {
            /* counter latch or read-back of random channels/fields */
            diff_out(&d, 0x43, g_rand_boolean(rng) ? c << 6 :
                     0xc0 | (g_rand_int(rng) & 0x3e));
        } else if (r < 560) {
            /* mode and access programming, modes 6 and 7 included */
            diff_out(&d, 0x43, (c << 6) | (g_rand_int_range(rng, 1, 4) << 4) |
                     (g_rand_int(rng) & 0x0f));
        } else if (r < 760) {
            /* count bytes, 0 meaning 0x10000; small counts too */
            diff_out(&d, 0x40 + c, g_rand_boolean(rng) ? g_rand_int(rng) :
                     g_rand_int_range(rng, 0, 4));
        } else if (r < 900) {
            diff_clock_step(&d, g_rand_int_range(rng, 1, 200000));
        } else if (r < 960) {
            /* port 0x61: channel 2's gate, through QEMU's pcspk */
            diff_out(&d, 0x61, g_rand_int(rng) & 3);
        } else if (r < 980) {
            diff_in(&d, 0x61);
        } else {
            diff_in(&d, 0x43);
        }
    }
    compare_state(&d);
    /* port 0x61's own route served its share too */
    g_assert_cmpint(route_count(d.fork.qts, "tier-port61"), >, 0);
    served = route_count(d.fork.qts, "tier-pit") +
             route_count(d.fork.qts, "tier-port61");
    g_test_message("%" PRIu64 " operations, %" PRId64 " accesses served "
                   "inline", d.n, served);
    g_assert_cmpint(served, >, (int64_t)(d.n / 4));
    g_rand_free(rng);
    diff_stop(&d);
}

/* ---- i8042 keyboard controller ----------------------------------------- */

/*
 * Controller commands that neither reset the machine (0xd1 with bit 0
 * clear, 0xfe and the other pulses of bit 0) nor do nothing at all, plus
 * one unsupported command (logged by the model).
 */
static const uint8_t i8042_commands[] = {
    0x20, 0x60, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae, 0xc0, 0xd0,
    0xd2, 0xd3, 0xd4, 0xdd, 0xdf, 0xff, 0x42,
};

/* Bytes for the keyboard or the mouse (after 0xd4), and anything else. */
static const uint8_t ps2_commands[] = {
    0xff, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf0, 0xee, 0xed, 0xe8, 0xe9,
    0xea, 0xe6, 0xe7, 0x00, 0x01, 0x02, 0x64,
};

static void test_i8042_diff(void)
{
    uint64_t ops = diff_ops_per_device();
    Diff d = { .seed = 0x8042, .irq_lines = (1u << 1) | (1u << 12) };
    GRand *rng;
    uint64_t i;
    int64_t served;
    unsigned c;

    /*
     * IRQ1 and IRQ12 are compared at the I/O APIC's inputs (GSI 1 and
     * 12), where the i8042's outputs arrive unmodified by the PICs.
     */
    if (!diff_start(&d, "pc", "ioapic")) {
        return;
    }
    rng = g_rand_new_with_seed(d.seed);

    /* Each controller command, its answer and the status on the way. */
    for (c = 0; c < G_N_ELEMENTS(i8042_commands); c++) {
        diff_in(&d, 0x64);
        diff_out(&d, 0x64, i8042_commands[c]);
        diff_in(&d, 0x64);
        diff_out(&d, 0x60, 0x47);
        diff_in(&d, 0x64);
        diff_in(&d, 0x60);
        diff_in(&d, 0x64);
        diff_in(&d, 0x60);
        diff_in(&d, 0x64);
    }
    /* Enable the AUX port and the mouse's reporting, then go random. */
    diff_out(&d, 0x64, 0xa8);
    diff_out(&d, 0x64, 0xd4);
    diff_out(&d, 0x60, 0xf4);
    for (i = 0; i < ops; i++) {
        int r = g_rand_int_range(rng, 0, 1000);

        if (r < 450) {
            diff_in(&d, 0x64);
        } else if (r < 620) {
            diff_in(&d, 0x60);
        } else if (r < 760) {
            diff_out(&d, 0x64, i8042_commands[
                         g_rand_int_range(rng, 0,
                                          G_N_ELEMENTS(i8042_commands))]);
        } else if (r < 930) {
            /* a PS/2 command, or any byte (mode, output buffer...) */
            diff_out(&d, 0x60, g_rand_boolean(rng) ? g_rand_int(rng) :
                     ps2_commands[g_rand_int_range(rng, 0,
                                  G_N_ELEMENTS(ps2_commands))]);
        } else if (r < 960) {
            diff_clock_step(&d, g_rand_int_range(rng, 1, 2000000));
        } else if (r < 962) {
            /* a key from the UI: queues scancodes, raises IRQ1 */
            diff_do(&d, .kind = OP_KEY,
                    .val = g_rand_int_range(rng, 1, 0x60) << 1 |
                           g_rand_boolean(rng));
        } else {
            /* strange sizes: the model's split into bytes on both */
            diff_inl(&d, 0x60 + 4 * g_rand_int_range(rng, 0, 2));
        }
    }
    compare_state(&d);
    served = route_count(d.fork.qts, "tier-i8042");
    g_test_message("%" PRIu64 " operations, %" PRId64 " status reads served "
                   "inline", d.n, served);
    g_assert_cmpint(served, >, (int64_t)(d.n / 4));
    g_rand_free(rng);
    diff_stop(&d);
}

/* ---- ACPI PM timer ------------------------------------------------------ */

/* PCI configuration write through 0xcf8/0xcfc, on both VMs. */
static void diff_pci_cfg_write(Diff *d, int dev, int fn, int reg, uint32_t v)
{
    uint32_t addr = 0x80000000u | (dev << 11) | (fn << 8) | (reg & 0xfc);

    diff_outl(d, 0xcf8, addr);
    diff_outl(d, 0xcfc, v);
}

/*
 * Program the PM I/O base as firmware does: PIIX4 PM (00:01.3) PMBASE at
 * 0x40 and PMIOSE at 0x80; ICH9 LPC (00:1f.0) PMBASE at 0x40 and
 * ACPI_CNTL enable (bit 7) at 0x44.  The timer is at base + 8.
 */
static uint16_t diff_pm_base(Diff *d, bool q35, uint16_t base)
{
    if (q35) {
        diff_pci_cfg_write(d, 0x1f, 0, 0x40, base | 1);
        diff_pci_cfg_write(d, 0x1f, 0, 0x44, 0x80);
    } else {
        diff_pci_cfg_write(d, 1, 3, 0x40, base | 1);
        diff_pci_cfg_write(d, 1, 3, 0x80, 1);
    }
    return base + 8;
}

static void test_pm_timer_diff(const void *opaque)
{
    bool q35 = (uintptr_t)opaque;
    uint64_t ops = diff_ops_per_device();
    Diff d = { .seed = 0x3579545 + q35 };

    /* The same timer model on both machines: q35 checks its placement. */
    if (q35) {
        ops /= 10;
    }
    GRand *rng = g_rand_new_with_seed(d.seed);
    uint16_t tmr;
    uint64_t i;
    int64_t served = 0;

    if (!diff_start(&d, q35 ? "q35" : "pc", NULL)) {
        g_rand_free(rng);
        return;
    }
    tmr = diff_pm_base(&d, q35, 0x600);
    g_assert_cmpint(route_count(d.fork.qts, "tier-pm-timer"), ==, 0);
    for (i = 0; i < ops; i++) {
        int r = g_rand_int_range(rng, 0, 1000);

        if (r < 600) {
            diff_inl(&d, tmr);
        } else if (r < 700) {
            /* 24-bit wrap-around and everything in between */
            diff_clock_step(&d, g_rand_int_range(rng, 1, 1 << 20) *
                            (int64_t)g_rand_int_range(rng, 1, 64));
        } else if (r < 850) {
            /* narrower, unaligned: QEMU's model on both */
            diff_in(&d, tmr + g_rand_int_range(rng, 0, 4));
        } else if (r < 950) {
            diff_outl(&d, tmr, g_rand_int(rng));
        } else if (r < 952) {
            /*
             * The firmware moves the PM block: the route follows (a new
             * route object, whose count starts again).
             */
            served += route_count(d.fork.qts, "tier-pm-timer");
            tmr = diff_pm_base(&d, q35, 0x600 + 0x40 *
                               g_rand_int_range(rng, 0, 4));
        } else {
            diff_inl(&d, 0x600 + 0x40 * g_rand_int_range(rng, 0, 4) + 8);
        }
    }
    compare_state(&d);
    served += route_count(d.fork.qts, "tier-pm-timer");
    g_test_message("%" PRIu64 " operations, %" PRId64 " accesses served "
                   "inline", d.n, served);
    g_assert_cmpint(served, >, (int64_t)(d.n / 4));
    g_rand_free(rng);
    diff_stop(&d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/tier-diff/pic", test_pic_diff);
    qtest_add_func("/tier-diff/pit", test_pit_diff);
    qtest_add_func("/tier-diff/i8042", test_i8042_diff);
    qtest_add_data_func("/tier-diff/pm-timer/pc", (void *)0,
                        test_pm_timer_diff);
    qtest_add_data_func("/tier-diff/pm-timer/q35", (void *)1,
                        test_pm_timer_diff);
    return g_test_run();
}

/*
 * qtests of external exit handlers (handler=external): the example
 * POST-code handler (accel/route/libexithandler/exit-handler-post, found
 * through $QT_EXIT_HANDLER) serves port 0x80 for QEMU, and is killed,
 * hung, slowed and fuzzed while the test keeps reading and writing.
 *
 * What must hold: QEMU never crashes; every access completes, either by
 * a handler or by the route's fallback, and never waits much past the
 * route's timeout; every DOWN and UP is reported; least-loaded moves
 * work away from a slowed handler; posted writes are never passed by a
 * read.
 *
 * QT_EXIT_KILLS sets the number of SIGKILLs of the kill test (default
 * 100; `make check-external-long` runs 1000).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif
#include "tiers-qtest.h"

#define POST_PORT 0x80

typedef struct Handler {
    const char *id;
    char *sock;
    pid_t pid;
    unsigned tag;
} Handler;

typedef struct Events {
    unsigned down[4], up[4];        /* per handler index */
    int64_t last_down_count[4];
    unsigned reasons[8];            /* by ExitHandlerDownReason */
    bool bad_order;                 /* a down-count that did not grow */
} Events;

typedef struct Fixture {
    QTestState *qts;
    char *dir;
    Handler h[4];
    unsigned n;
    Events ev;
} Fixture;

static const char *handler_bin(void)
{
    const char *p = getenv("QT_EXIT_HANDLER");

    g_assert(p && *p);
    return p;
}

static int handler_index(Fixture *f, const char *id)
{
    unsigned i;

    for (i = 0; i < f->n; i++) {
        if (!strcmp(f->h[i].id, id)) {
            return i;
        }
    }
    return -1;
}

static const char *const down_reasons[] = {
    "disconnected", "timeout", "protocol-error", "deleted",
};

static bool on_event(QTestState *s, const char *name, QDict *ev, void *opaque)
{
    Fixture *f = opaque;
    QDict *data = qdict_get_qdict(ev, "data");
    int i;

    if (!strcmp(name, "EXIT_HANDLER_DOWN")) {
        const char *why = qdict_get_str(data, "reason");
        int64_t dc = qdict_get_int(data, "down-count");
        unsigned r;

        i = handler_index(f, qdict_get_str(data, "id"));
        g_assert(i >= 0);
        f->ev.down[i]++;
        if (dc <= f->ev.last_down_count[i]) {
            f->ev.bad_order = true;
        }
        f->ev.last_down_count[i] = dc;
        for (r = 0; r < ARRAY_SIZE(down_reasons); r++) {
            if (!strcmp(why, down_reasons[r])) {
                f->ev.reasons[r]++;
            }
        }
        return true;
    }
    if (!strcmp(name, "EXIT_HANDLER_UP")) {
        i = handler_index(f, qdict_get_str(data, "id"));
        g_assert(i >= 0);
        f->ev.up[i]++;
        return true;
    }
    return false;
}

/* Process pending QMP events (the callback counts them). */
static void pump_events(Fixture *f)
{
    qtest_qmp_assert_success(f->qts, "{ 'execute': 'query-status' }");
}

/* Waits up to 10 s for *@counter to reach @want. */
static void wait_count(Fixture *f, unsigned *counter, unsigned want,
                       const char *what)
{
    int64_t end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (*counter < want) {
        if (g_get_monotonic_time() > end) {
            g_error("timed out waiting for %s (%u of %u)", what, *counter,
                    want);
        }
        g_usleep(2000);
        pump_events(f);
    }
}

static int64_t handler_stat(Fixture *f, const char *hid, const char *field);

/*
 * Waits until handler @i is first up.  Its EXIT_HANDLER_UP may precede
 * the test's QMP handshake (and be lost); the stats cannot.
 */
static void wait_up(Fixture *f, unsigned i)
{
    int64_t end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (handler_stat(f, f->h[i].id, "up") != 1) {
        if (g_get_monotonic_time() > end) {
            g_error("timed out waiting for %s to come up", f->h[i].id);
        }
        g_usleep(2000);
    }
    f->ev.up[i] = 1;
}

static void handler_start(Fixture *f, unsigned i, const char *extra)
{
    Handler *h = &f->h[i];
    g_autofree char *cmd = g_strdup_printf(
        "%s --socket %s --name %s --tag %u --quiet %s", handler_bin(),
        h->sock, h->id, h->tag, extra ? extra : "");
    g_auto(GStrv) argv = g_strsplit_set(cmd, " ", -1);
    GStrv a;
    GPtrArray *args = g_ptr_array_new();
    pid_t pid, parent;

    for (a = argv; *a; a++) {
        if (**a) {
            g_ptr_array_add(args, *a);
        }
    }
    g_ptr_array_add(args, NULL);
    parent = getpid();
    pid = fork();
    g_assert(pid >= 0);
    if (pid == 0) {
#ifdef CONFIG_LINUX
        /*
         * Die with the test: a handler left behind by a failed assertion
         * keeps the test's stdout open, and meson then waits for its
         * timeout (600 s, seen in CI) instead of reporting the failure.
         */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
            _exit(127);
        }
#endif
        execv(handler_bin(), (char **)args->pdata);
        _exit(127);
    }
    g_ptr_array_free(args, true);
    h->pid = pid;
}

static void handler_kill(Fixture *f, unsigned i)
{
    int st;

    if (f->h[i].pid > 0) {
        kill(f->h[i].pid, SIGKILL);
        waitpid(f->h[i].pid, &st, 0);
        f->h[i].pid = 0;
    }
}

/*
 * QEMU with @n handlers, their chardevs and one route on port 0x80.
 * @route: the route's extra properties.  Handlers start with @extra and
 * the test waits until each is up.
 */
static void fixture_start(Fixture *f, unsigned n, const char *route,
                          const char *extra, const char *handler_props)
{
    static const char *const ids[] = { "h0", "h1", "h2", "h3" };
    g_autoptr(GString) args = g_string_new("-machine pc -nodefaults ");
    unsigned i;

    memset(f, 0, sizeof(*f));
    f->dir = g_dir_make_tmp("exit-handler-XXXXXX", NULL);
    g_assert(f->dir);
    f->n = n;
    for (i = 0; i < n; i++) {
        f->h[i].id = ids[i];
        f->h[i].sock = g_strdup_printf("%s/%s.sock", f->dir, ids[i]);
        f->h[i].tag = 0xa0 + i;
        handler_start(f, i, extra);
        g_string_append_printf(args, "-chardev socket,id=c%u,path=%s,"
                               "reconnect-ms=20 -object exit-handler,id=%s,"
                               "chardev=c%u%s%s ", i, f->h[i].sock, ids[i], i,
                               handler_props ? "," : "",
                               handler_props ? handler_props : "");
    }
    g_string_append_printf(args, "-object exit-route,id=post,event=pio,"
                           "start=0x%x,priority=1,handler=external", POST_PORT);
    for (i = 0; i < n; i++) {
        g_string_append_printf(args, ",handlers=%s", ids[i]);
    }
    if (route) {
        g_string_append_printf(args, ",%s", route);
    }
    f->qts = qtest_init(args->str);
    qtest_qmp_set_event_callback(f->qts, on_event, f);
    for (i = 0; i < n; i++) {
        wait_up(f, i);
    }
}

static void fixture_stop(Fixture *f)
{
    unsigned i;

    qtest_quit(f->qts);
    for (i = 0; i < f->n; i++) {
        handler_kill(f, i);
        unlink(f->h[i].sock);
        g_free(f->h[i].sock);
    }
    rmdir(f->dir);
    g_free(f->dir);
}

/* @field of handler @hid in route "post"'s query-exit-stats entry. */
static int64_t handler_stat(Fixture *f, const char *hid, const char *field)
{
    QDict *rsp = qtest_qmp(f->qts, "{ 'execute': 'query-exit-stats' }");
    QListEntry *e, *he;
    int64_t v = -1;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *s = qobject_to(QDict, qlist_entry_obj(e));

        if (strcmp(qdict_get_str(s, "id"), "post")) {
            continue;
        }
        QLIST_FOREACH_ENTRY(qdict_get_qlist(s, "handlers"), he) {
            QDict *h = qobject_to(QDict, qlist_entry_obj(he));

            if (!strcmp(qdict_get_str(h, "id"), hid)) {
                v = qdict_get_bool(h, "up") && !strcmp(field, "up") ? 1 :
                    !strcmp(field, "up") ? 0 : qdict_get_int(h, field);
            }
        }
    }
    qobject_unref(rsp);
    return v;
}

/* A write then a read served by one handler: the value comes back. */
static void test_basic(void)
{
    Fixture f;
    g_autofree char *routes = NULL;

    fixture_start(&f, 1, NULL, NULL, NULL);
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0xa0);   /* the tag */
    qtest_outb(f.qts, POST_PORT, 0x12);
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0x12);
    qtest_outb(f.qts, POST_PORT, 0x34);
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0x34);
    g_assert_cmpint(handler_stat(&f, "h0", "requests"), ==, 5);
    g_assert_cmpint(handler_stat(&f, "h0", "up"), ==, 1);
    g_assert_cmpint(tiers_route_stat(f.qts, "post", "count"), ==, 5);
    g_assert_cmpint(tiers_route_stat(f.qts, "post", "fallbacks"), ==, 0);
    /* query-exit-routes shows the pool */
    routes = qtest_hmp(f.qts, "info exit-routes");
    g_assert(strstr(routes, "post"));

    /* Killed: the next accesses take the fallback, QEMU's device. */
    handler_kill(&f, 0);
    wait_count(&f, &f.ev.down[0], 1, "EXIT_HANDLER_DOWN");
    g_assert_cmpint(f.ev.reasons[0], ==, 1);
    qtest_outb(f.qts, POST_PORT, 0x56);
    qtest_inb(f.qts, POST_PORT);
    g_assert_cmpint(tiers_route_stat(f.qts, "post", "fallbacks"), ==, 2);

    /* Restarted: it reconnects and serves again (a fresh device). */
    handler_start(&f, 0, NULL);
    wait_count(&f, &f.ev.up[0], 2, "EXIT_HANDLER_UP after a restart");
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0xa0);
    fixture_stop(&f);
}

/*
 * SIGKILL a handler of a two-handler pool, again and again, at random
 * moments while the test writes and reads: every access completes
 * (served by a handler, which stored the value, or by the fallback,
 * which ignores it), QEMU stays up, every DOWN and UP is reported.
 */
static void test_kill_loop(void)
{
    const char *env = getenv("QT_EXIT_KILLS");
    unsigned kills = env ? atoi(env) : 100, k, i, ops = 0, served = 0;
    GRand *rnd = g_rand_new_with_seed(0x5eed);
    Fixture f;

    /* 300 us per request: most kills land while QEMU waits for a reply. */
    fixture_start(&f, 2, "policy=round-robin,fallback=ignore",
                  "--delay-us 300", NULL);
    for (k = 0; k < kills; k++) {
        unsigned victim = g_rand_int_range(rnd, 0, 2);
        unsigned delay_us = g_rand_int_range(rnd, 0, 20000);
        pid_t killer, target = f.h[victim].pid;
        bool killed = false;
        int64_t t_end;
        int st;

        /*
         * At least 200 ms per cycle: the events' rate limit (10 per
         * second per handler, a DOWN and an UP per cycle) must not drop
         * any of them here.
         */
        t_end = g_get_monotonic_time() + 200 * 1000;
        /* The kill comes from another process, at a random moment. */
        killer = fork();
        g_assert(killer >= 0);
        if (killer == 0) {
            g_usleep(delay_us);
            kill(target, SIGKILL);
            _exit(0);
        }
        while (!killed || g_get_monotonic_time() < t_end) {
            uint8_t v = g_rand_int_range(rnd, 0, 0x100), r;
            int64_t t0 = g_get_monotonic_time();

            qtest_outb(f.qts, POST_PORT, v);
            r = qtest_inb(f.qts, POST_PORT);
            /*
             * The handler that took the write keeps it; a read served by
             * the other one returns its own last write or its tag; the
             * fallback returns 0xff.
             */
            ops += 2;
            served += r == v;
            /* Never much longer than one timeout per handler tried. */
            g_assert_cmpint(g_get_monotonic_time() - t0, <, 2500 * 1000);
            if (!killed && waitpid(killer, &st, WNOHANG) == killer) {
                waitpid(target, &st, 0);
                f.h[victim].pid = 0;
                killed = true;
            }
        }
        wait_count(&f, &f.ev.down[victim], f.ev.down[victim] + 1,
                   "EXIT_HANDLER_DOWN after SIGKILL");
        handler_start(&f, victim, "--delay-us 300");
        wait_count(&f, &f.ev.up[victim], f.ev.up[victim] + 1,
                   "EXIT_HANDLER_UP after a restart");
    }
    pump_events(&f);
    g_assert_false(f.ev.bad_order);
    g_assert_cmpuint(f.ev.down[0] + f.ev.down[1], ==, kills);
    g_assert_cmpuint(f.ev.up[0] + f.ev.up[1], ==, kills + 2);
    /* A death is seen as one (the socket), never as a timeout. */
    g_assert_cmpuint(f.ev.reasons[0], ==, kills);
    for (i = 0; i < 2; i++) {
        g_assert_cmpint(handler_stat(&f, f.h[i].id, "down-count"), ==,
                        f.ev.down[i]);
        g_assert_cmpint(handler_stat(&f, f.h[i].id, "events-suppressed"),
                        ==, 0);
    }
    g_test_message("%u kills, %u accesses, %u reads returned the value "
                   "just written", kills, ops, served);
    /*
     * Every access completed exactly once: by one handler (a request
     * that died with its handler failed over and is counted where it
     * completed) or by the fallback.
     */
    g_assert_cmpint(route_count(f.qts, "post"), ==, ops);
    g_assert_cmpint(handler_stat(&f, "h0", "requests") +
                    handler_stat(&f, "h1", "requests") +
                    tiers_route_stat(f.qts, "post", "fallbacks"), ==, ops);
    g_rand_free(rnd);
    fixture_stop(&f);
}

/*
 * A handler that stops answering: the access waits one timeout, then
 * falls back, and the handler is reported down for "timeout".
 */
static void test_hang(void)
{
    Fixture f;
    int64_t t0, dt;
    unsigned i;

    fixture_start(&f, 1, "fallback=ignore,timeout-ms=100", "--hang-after 4",
                  NULL);
    for (i = 0; i < 2; i++) {
        qtest_outb(f.qts, POST_PORT, 0x40 + i);
        g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0x40 + i);
    }
    t0 = g_get_monotonic_time();
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0xff);
    dt = g_get_monotonic_time() - t0;
    g_assert_cmpint(dt, >=, 90 * 1000);
    g_assert_cmpint(dt, <, 600 * 1000);
    wait_count(&f, &f.ev.down[0], 1, "EXIT_HANDLER_DOWN for a hang");
    g_assert_cmpuint(f.ev.reasons[1], ==, 1);
    /* Down: no more waiting. */
    t0 = g_get_monotonic_time();
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0xff);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 90 * 1000);
    fixture_stop(&f);
}

/*
 * Malformed replies and garbage: QEMU survives, marks the handler down
 * for a protocol error, reconnects, and keeps completing accesses.
 */
static void test_fuzz(void)
{
    Fixture f;
    unsigned i, bad = 0;
    int64_t deadline;

    fixture_start(&f, 1, "fallback=ignore,timeout-ms=50", "--fuzz 7", NULL);
    /*
     * 3000 accesses, then on until a protocol error has been reported:
     * the events are rate-limited, and on a loaded machine the first
     * burst may hold only timeouts and disconnections (seen in CI).
     */
    deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    for (i = 0; i < 3000 || (!f.ev.reasons[2] &&
                             g_get_monotonic_time() < deadline); i++) {
        qtest_outb(f.qts, POST_PORT, i);
        bad += qtest_inb(f.qts, POST_PORT) != (i & 0xff);
        if (i % 100 == 0) {
            pump_events(&f);
        }
    }
    pump_events(&f);
    g_test_message("fuzz: %u accesses, %u downs (%u protocol errors, %u "
                   "timeouts), %u reads not matching, %" PRId64
                   " suppressed events", i,
                   (unsigned)handler_stat(&f, "h0", "down-count"),
                   f.ev.reasons[2], f.ev.reasons[1], bad,
                   handler_stat(&f, "h0", "events-suppressed"));
    g_assert_cmpint(handler_stat(&f, "h0", "down-count"), >, 0);
    g_assert_cmpint(handler_stat(&f, "h0", "failures"), >, 0);
    g_assert_cmpuint(f.ev.reasons[2], >, 0);
    /* The guest still runs and answers. */
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'query-status' }");
    fixture_stop(&f);
}

/* A handler whose HELLO_REPLY is wrong never comes up. */
static void test_bad_hello(void)
{
    Fixture f;
    QTestState *qts;
    g_autofree char *dir = g_dir_make_tmp("exit-handler-XXXXXX", NULL);

    memset(&f, 0, sizeof(f));
    f.dir = dir;
    f.n = 1;
    f.h[0].id = "h0";
    f.h[0].sock = g_strdup_printf("%s/h0.sock", dir);
    handler_start(&f, 0, "--bad-hello");
    qts = qtest_initf("-machine pc -nodefaults -chardev socket,id=c0,"
                      "path=%s,reconnect-ms=20 -object exit-handler,id=h0,"
                      "chardev=c0 -object exit-route,id=post,event=pio,"
                      "start=0x80,priority=1,handler=external,handlers=h0,"
                      "fallback=ignore", f.h[0].sock);
    g_usleep(300 * 1000);
    g_assert_cmphex(qtest_inb(qts, POST_PORT), ==, 0xff);
    g_assert_cmpint(tiers_route_stat(qts, "post", "fallbacks"), ==, 1);
    qtest_quit(qts);
    handler_kill(&f, 0);
    unlink(f.h[0].sock);
    g_free(f.h[0].sock);
    rmdir(dir);
}

/*
 * least-loaded: a handler restarted with a 3 ms service time loses the
 * work to the fast one; only the hysteresis-limited first tries and the
 * periodic probes reach it.
 */
static void test_least_loaded(void)
{
    Fixture f;
    int64_t before[2], after[2], slow_share;
    unsigned i, cur, slow;

    fixture_start(&f, 2, "policy=least-loaded", NULL, NULL);
    for (i = 0; i < 200; i++) {
        qtest_inb(f.qts, POST_PORT);
    }
    before[0] = handler_stat(&f, "h0", "requests");
    before[1] = handler_stat(&f, "h1", "requests");
    cur = before[1] > before[0];
    g_test_message("both fast: h0 %" PRId64 ", h1 %" PRId64, before[0],
                   before[1]);
    /* Slow the busier one down. */
    slow = cur;
    handler_kill(&f, slow);
    wait_count(&f, &f.ev.down[slow], 1, "EXIT_HANDLER_DOWN");
    handler_start(&f, slow, "--delay-us 3000");
    wait_count(&f, &f.ev.up[slow], 2, "EXIT_HANDLER_UP");
    before[0] = handler_stat(&f, "h0", "requests");
    before[1] = handler_stat(&f, "h1", "requests");
    for (i = 0; i < 640; i++) {
        qtest_inb(f.qts, POST_PORT);
    }
    after[0] = handler_stat(&f, "h0", "requests") - before[0];
    after[1] = handler_stat(&f, "h1", "requests") - before[1];
    slow_share = after[slow] * 100 / (after[0] + after[1]);
    g_test_message("h%u slowed: h0 %" PRId64 ", h1 %" PRId64 " (%" PRId64
                   "%% to the slow one)", slow, after[0], after[1],
                   slow_share);
    g_assert_cmpint(after[0] + after[1], ==, 640);
    g_assert_cmpint(slow_share, <=, 5);
    g_assert_cmpint(after[slow], >, 0);     /* probes */
    g_assert_cmpint(handler_stat(&f, f.h[slow].id, "service-ns"), >,
                    handler_stat(&f, f.h[!slow].id, "service-ns"));
    fixture_stop(&f);
}

/*
 * Posted writes: a slow handler with a small ring; writes do not wait,
 * a full ring makes one synchronous, and a read sees the last write.
 */
static void test_posted(void)
{
    Fixture f;
    unsigned i;
    int64_t t0, dt;

    fixture_start(&f, 1, "posted-writes=on", "--delay-us 1000",
                  "ring-slots=4");
    for (i = 0; i < 3; i++) {
        t0 = g_get_monotonic_time();
        qtest_outb(f.qts, POST_PORT, 0x60 + i);
        dt = g_get_monotonic_time() - t0;
        /* Ring not full: the write did not wait for the 1 ms handler. */
        g_test_message("posted write %u: %" PRId64 " us", i, dt);
    }
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0x62);
    for (i = 0; i < 40; i++) {
        qtest_outb(f.qts, POST_PORT, i);
    }
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 39);
    g_assert_cmpint(handler_stat(&f, "h0", "posted"), >, 3);
    g_assert_cmpint(handler_stat(&f, "h0", "posted"), <=, 43);
    g_assert_cmpint(handler_stat(&f, "h0", "requests"), ==, 45);
    fixture_stop(&f);
}

/* Bad input: each error names the culprit and changes nothing. */
/* A QMP command that must fail with an error containing @needle. */
static void G_GNUC_PRINTF(3, 4) assert_qmp_error(QTestState *qts,
                                                 const char *needle,
                                                 const char *fmt, ...)
{
    va_list ap;
    QDict *rsp;
    const char *desc;

    va_start(ap, fmt);
    rsp = qtest_vqmp(qts, fmt, ap);
    va_end(ap);
    g_assert(qdict_haskey(rsp, "error"));
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    if (!strstr(desc, needle)) {
        g_error("error '%s' does not say '%s'", desc, needle);
    }
    qobject_unref(rsp);
}

static void test_bad_input(void)
{
    Fixture f;

    fixture_start(&f, 1, NULL, NULL, NULL);
    assert_qmp_error(f.qts, "chardev 'nope' not found",
                     "{ 'execute': 'object-add', 'arguments': "
                     "{ 'qom-type': 'exit-handler', 'id': 'x', "
                     "'chardev': 'nope' } }");
    assert_qmp_error(f.qts, "ring-slots=3",
                     "{ 'execute': 'object-add', 'arguments': "
                     "{ 'qom-type': 'exit-handler', 'id': 'x', "
                     "'chardev': 'c0', 'ring-slots': 3 } }");
    assert_qmp_error(f.qts, "no exit-handler 'zz'",
                     "{ 'execute': 'exit-route-add', 'arguments': "
                     "{ 'id': 'r2', 'event': 'pio', 'start': 1280, "
                     "'handler': 'external', 'handlers': ['h0', 'zz'] } }");
    assert_qmp_error(f.qts, "needs handlers=",
                     "{ 'execute': 'exit-route-add', 'arguments': "
                     "{ 'id': 'r2', 'event': 'pio', 'start': 1280, "
                     "'handler': 'external' } }");
    assert_qmp_error(f.qts, "needs handler=external",
                     "{ 'execute': 'exit-route-add', 'arguments': "
                     "{ 'id': 'r2', 'event': 'pio', 'start': 1280, "
                     "'handler': 'ignore', 'handlers': ['h0'] } }");
    assert_qmp_error(f.qts, "timeout-ms=0",
                     "{ 'execute': 'exit-route-add', 'arguments': "
                     "{ 'id': 'r2', 'event': 'pio', 'start': 1280, "
                     "'handler': 'external', 'handlers': ['h0'], "
                     "'timeout-ms': 0 } }");
    /* In use by a route: cannot go. */
    assert_qmp_error(f.qts, "in use", "{ 'execute': 'object-del', "
                     "'arguments': { 'id': 'h0' } }");
    /* Nothing changed: the handler still serves. */
    qtest_outb(f.qts, POST_PORT, 0x77);
    g_assert_cmphex(qtest_inb(f.qts, POST_PORT), ==, 0x77);

    /* Hot add and remove: a second handler and route at run time. */
    f.h[1].id = "h1";
    f.h[1].sock = g_strdup_printf("%s/h1.sock", f.dir);
    f.h[1].tag = 0xb1;
    f.n = 2;
    handler_start(&f, 1, NULL);
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'chardev-add', "
                             "'arguments': { 'id': 'c1', 'backend': "
                             "{ 'type': 'socket', 'data': { 'addr': "
                             "{ 'type': 'unix', 'data': { 'path': %s } }, "
                             "'server': false, 'reconnect-ms': 20 } } } }",
                             f.h[1].sock);
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'object-add', "
                             "'arguments': { 'qom-type': 'exit-handler', "
                             "'id': 'h1', 'chardev': 'c1' } }");
    wait_count(&f, &f.ev.up[1], 1, "EXIT_HANDLER_UP of a hot-added handler");
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'exit-route-add', "
                             "'arguments': { 'id': 'r2', 'event': 'pio', "
                             "'start': 1280, 'handler': 'external', "
                             "'handlers': ['h1'] } }");
    g_assert_cmphex(qtest_inb(f.qts, 1280), ==, 0xb1);
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'exit-route-del', "
                             "'arguments': { 'id': 'r2' } }");
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'object-del', "
                             "'arguments': { 'id': 'h1' } }");
    wait_count(&f, &f.ev.down[1], 1, "EXIT_HANDLER_DOWN of a deleted one");
    g_assert_cmpuint(f.ev.reasons[3], ==, 1);
    qtest_qmp_assert_success(f.qts, "{ 'execute': 'chardev-remove', "
                             "'arguments': { 'id': 'c1' } }");
    g_assert_cmphex(qtest_inb(f.qts, 1280), ==, 0xff);     /* unassigned */
    fixture_stop(&f);
}

/*
 * Run from QEMU's own suite (make check-qtest-x86_64), the handler
 * program, which our own meson project builds, is not in the
 * environment: say so and skip instead of aborting.
 */
static void test_no_handler_program(void)
{
    g_test_skip("QT_EXIT_HANDLER (the exit-handler-post program, built by "
                "qemu-tiers' make) is not set; make check runs this test");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!g_getenv("QT_EXIT_HANDLER")) {
        qtest_add_func("/exit-handler/no-handler-program",
                       test_no_handler_program);
        return g_test_run();
    }
    qtest_add_func("/exit-handler/basic", test_basic);
    qtest_add_func("/exit-handler/bad-input", test_bad_input);
    qtest_add_func("/exit-handler/bad-hello", test_bad_hello);
    qtest_add_func("/exit-handler/hang", test_hang);
    qtest_add_func("/exit-handler/posted", test_posted);
    qtest_add_func("/exit-handler/least-loaded", test_least_loaded);
    qtest_add_func("/exit-handler/fuzz", test_fuzz);
    qtest_add_func("/exit-handler/kill-loop", test_kill_loop);
    return g_test_run();
}

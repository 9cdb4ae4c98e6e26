/*
 * Helpers shared by the qemu-tiers qtests.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TIERS_QTEST_H
#define TIERS_QTEST_H

#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

/*
 * @field ("count", "declines", ...) of route @id in query-exit-stats, or
 * -1 if the route is not listed.
 */
static inline int64_t tiers_route_stat(QTestState *qts, const char *id,
                                       const char *field)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-exit-stats' }");
    QListEntry *e;
    int64_t n = -1;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *s = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(s, "id"), id)) {
            n = qdict_get_int(s, field);
        }
    }
    qobject_unref(rsp);
    return n;
}

/* Runs a command; returns the error description, or NULL on success. */
static inline char *G_GNUC_PRINTF(2, 3)
qmp_error(QTestState *qts, const char *fmt, ...)
{
    va_list ap;
    QDict *rsp;
    char *desc = NULL;

    va_start(ap, fmt);
    rsp = qtest_vqmp(qts, fmt, ap);
    va_end(ap);
    if (qdict_haskey(rsp, "error")) {
        desc = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                      "desc"));
    }
    qobject_unref(rsp);
    return desc;
}

/* @cmd must be a literal: libqtest interpolates %-directives as JSON. */
#define qmp_ok(qts, cmd) do {                          \
        g_autofree char *err_ = qmp_error(qts, cmd);   \
        g_assert_cmpstr(err_, ==, NULL);               \
    } while (0)

static inline int64_t route_count(QTestState *qts, const char *id)
{
    return tiers_route_stat(qts, id, "count");
}

/* Stop @qts and save its state to @path; waits for completion. */
static inline void tiers_save_state(QTestState *qts, const char *path)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    qtest_qmp_assert_success(qts, "{ 'execute': 'stop' }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    for (;;) {
        QDict *q = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
        const char *st = qdict_get_try_str(qdict_get_qdict(q, "return"),
                                           "status");
        bool done = st && !strcmp(st, "completed");

        g_assert(!st || strcmp(st, "failed"));
        qobject_unref(q);
        if (done) {
            return;
        }
        g_usleep(10000);
    }
}

/*
 * The "timer" section (cpu_ticks_offset, a dummy, cpu_clock_offset) holds
 * offsets from the host's clocks, which differ between any two QEMUs:
 * blank those 24 bytes (after the name, instance id and version).
 */
static inline void tiers_mask_host_time(char *buf, gsize len)
{
    static const char name[] = "\x05timer";
    char *p = memmem(buf, len, name, sizeof(name) - 1);

    g_assert_nonnull(p);
    p += sizeof(name) - 1 + 4 + 4;
    g_assert_cmpuint(p + 24 - buf, <=, len);
    memset(p, 0, 24);
}

/*
 * Compare the device state of two saved streams byte for byte; returns
 * the offset (in @pa's device part) of the first difference, or -1 if
 * they are equal.  The device part is everything from the "timer"
 * section on: RAM comes first and is split into chunks at points that
 * depend on timing, while the device sections follow in a fixed order,
 * each complete.  (The tests leave RAM alone.)
 */
static inline gssize tiers_state_diff(const char *pa, const char *pb)
{
    static const char name[] = "\x05timer";
    g_autofree char *a = NULL, *b = NULL;
    const char *da, *db;
    gsize la, lb, i;

    g_assert_true(g_file_get_contents(pa, &a, &la, NULL));
    g_assert_true(g_file_get_contents(pb, &b, &lb, NULL));
    tiers_mask_host_time(a, la);
    tiers_mask_host_time(b, lb);
    da = memmem(a, la, name, sizeof(name) - 1);
    db = memmem(b, lb, name, sizeof(name) - 1);
    la -= da - a;
    lb -= db - b;
    g_assert_cmpuint(la, >, 64);
    for (i = 0; i < MIN(la, lb) && da[i] == db[i]; i++) {
        /* the first difference */
    }
    return i == la && la == lb ? -1 : (gssize)i;
}

#endif

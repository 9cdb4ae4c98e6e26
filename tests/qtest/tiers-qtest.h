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

static inline int64_t route_count(QTestState *qts, const char *id)
{
    return tiers_route_stat(qts, id, "count");
}

#endif

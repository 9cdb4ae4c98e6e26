/*
 * qemu-tiers exit router: QMP commands and their HMP twins.
 *
 *   exit-route-add / exit-route-del      (info exit-routes)
 *   query-exit-routes                    (info exit-routes)
 *   query-exit-stats, exit-stats-reset   (info exit-stats)
 *
 * query-exit-router is with the router's configuration (router-config.c).
 * All run in the main loop with the BQL held.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-exit-route.h"
#include "qapi/qapi-visit-qom.h"
#include "qom/object_interfaces.h"
#include "monitor/monitor.h"
#include "monitor/hmp.h"
#include "qobject/qdict.h"
#include "accel/route/router-internal.h"

void qmp_exit_route_add(ExitRouteAddArguments *args, Error **errp)
{
    ObjectOptions opts = {
        .qom_type = OBJECT_TYPE_EXIT_ROUTE,
        .id = args->id,
        .u.exit_route = *qapi_ExitRouteAddArguments_base(args),
    };

    user_creatable_add_qapi(&opts, errp);
}

void qmp_exit_route_del(const char *id, Error **errp)
{
    if (!exit_route_find(id)) {
        error_setg(errp, "there is no exit route '%s'", id);
        return;
    }
    user_creatable_del(id, errp);
}

ExitRouteInfoList *qmp_query_exit_routes(Error **errp)
{
    ExitRouteInfoList *head = NULL, **tail = &head;
    guint i;

    for (i = 0; exit_router.routes && i < exit_router.routes->len; i++) {
        QAPI_LIST_APPEND(tail, exit_route_info(
                             g_ptr_array_index(exit_router.routes, i)));
    }
    return head;
}

ExitRouteStatsList *qmp_query_exit_stats(Error **errp)
{
    ExitRouteStatsList *head = NULL, **tail = &head;
    guint i;

    exit_router_init_globals();
    for (i = 0; i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);
        ExitRouteStats *info;

        exit_route_collect_noexit(r);
        info = exit_stats_info(r->id, &r->stats);
        if (r->pool) {
            exit_handler_pool_stats(r->pool, info);
        }
        if (exit_event_is_platform(r->spec.type)) {
            info->has_delivered = info->has_suppressed = true;
            info->has_handled = true;
            info->delivered = r->verdicts[EXIT_EVENT_VERDICT_DELIVER];
            info->suppressed = r->verdicts[EXIT_EVENT_VERDICT_SUPPRESS];
            info->handled = r->verdicts[EXIT_EVENT_VERDICT_HANDLED];
        }
        QAPI_LIST_APPEND(tail, info);
    }
    QAPI_LIST_APPEND(tail, exit_stats_info("unrouted-pio",
                                           &exit_router.unrouted_pio));
    QAPI_LIST_APPEND(tail, exit_stats_info("unrouted-mmio",
                                           &exit_router.unrouted_mmio));
    QAPI_LIST_APPEND(tail, exit_stats_info("unrouted-msr",
                                           &exit_router.unrouted_msr));
    QAPI_LIST_APPEND(tail, exit_stats_info("unrouted-events",
                                           &exit_router.unrouted_events));
    return head;
}

void qmp_exit_stats_reset(Error **errp)
{
    guint i;

    exit_router_init_globals();
    for (i = 0; i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);

        exit_route_collect_noexit(r);
        exit_stats_reset(&r->stats);
        memset(r->verdicts, 0, sizeof(r->verdicts));
    }
    exit_stats_reset(&exit_router.unrouted_pio);
    exit_stats_reset(&exit_router.unrouted_mmio);
    exit_stats_reset(&exit_router.unrouted_msr);
    exit_stats_reset(&exit_router.unrouted_events);
}

void hmp_info_exit_routes(Monitor *mon, const QDict *qdict)
{
    ExitRouteInfoList *list = qmp_query_exit_routes(NULL), *l;

    if (!list) {
        monitor_printf(mon, "no exit routes: every exit goes to the device "
                       "model\n");
    }
    for (l = list; l; l = l->next) {
        ExitRouteInfo *i = l->value;

        monitor_printf(mon, "%-16s %-4s 0x%04" PRIx64 "-0x%04" PRIx64
                       " %-5s prio %-4d %s%s%s", i->id,
                       ExitRouteEvent_str(i->event), i->start, i->last,
                       ExitRouteDirection_str(i->direction), i->priority,
                       ExitRouteHandler_str(i->handler),
                       i->q_inline ? ":" : "", i->q_inline ? i->q_inline : "");
        if (i->has_access_size) {
            monitor_printf(mon, " size %u", i->access_size);
        }
        if (i->has_datamatch) {
            monitor_printf(mon, " data 0x%" PRIx64, i->datamatch);
        }
        if (i->no_exit) {
            monitor_printf(mon, " no-exit");
        }
        monitor_printf(mon, "\n");
    }
    qapi_free_ExitRouteInfoList(list);
}

void hmp_info_exit_stats(Monitor *mon, const QDict *qdict)
{
    ExitRouteStatsList *list = qmp_query_exit_stats(NULL), *l;

    monitor_printf(mon, "%-16s %12s %10s %14s %10s\n", "route", "count",
                   "declines", "time-ns (est)", "ns/access");
    for (l = list; l; l = l->next) {
        ExitRouteStats *s = l->value;

        monitor_printf(mon, "%-16s %12" PRIu64 " %10" PRIu64 " %14" PRIu64
                       " %10" PRIu64 "\n", s->id, s->count, s->declines,
                       s->time_ns, s->count ? s->time_ns / s->count : 0);
    }
    qapi_free_ExitRouteStatsList(list);
}

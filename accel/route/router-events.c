/*
 * qemu-tiers exit router: platform events.
 *
 * SMIs, NMIs, machine checks and host memory errors go through the same
 * route table as accesses (docs/platform-events.rst).  Each source calls
 * exit_route_event() before QEMU's own action and acts on the verdict:
 * deliver (QEMU's behaviour, possibly to another vCPU a handler chose),
 * suppress or handled (nothing reaches the guest).  An event no route
 * matches is delivered, exactly as in vanilla QEMU, and counted in the
 * pseudo route "unrouted-events".
 *
 * Locking: every source raises its events with the BQL held (port writes
 * through QEMU's device path, QMP/HMP, timers, the memory-error bottom
 * half), so routing runs under the BQL (asserted); the table is still
 * read under RCU, as for accesses.  The per-route verdict counters and
 * the event rate limit are BQL state.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-exit-route.h"
#include "accel/route/router-internal.h"
#include "trace.h"

/* PLATFORM_EVENT per route: a burst of this many, refilled at this rate. */
#define EXIT_EVENT_BURST            20
#define EXIT_EVENT_PER_SEC          10

static struct {
    const ExitPlatformOps *ops;     /* the platform handler; BQL */
    void *opaque;
} exit_platform;

void exit_router_register_platform(const ExitPlatformOps *ops, void *opaque)
{
    assert(bql_locked());
    assert(!ops || !exit_platform.ops || exit_platform.ops == ops);
    exit_platform.ops = ops;
    exit_platform.opaque = opaque;
}

static const ExitRouteEvent exit_route_event_enum[EXIT_EVENT__MAX] = {
    [EXIT_EVENT_SMI] = EXIT_ROUTE_EVENT_SMI,
    [EXIT_EVENT_NMI] = EXIT_ROUTE_EVENT_NMI,
    [EXIT_EVENT_MCE] = EXIT_ROUTE_EVENT_MCE,
    [EXIT_EVENT_MEMORY_ERROR] = EXIT_ROUTE_EVENT_MEMORY_ERROR,
};

/* May another PLATFORM_EVENT of @r go out now?  A token bucket.  BQL. */
static bool exit_route_event_allowed(ExitRoute *r)
{
    int64_t now = get_clock();

    if (!r->ev_stamp_ns) {
        r->ev_tokens = EXIT_EVENT_BURST;
    } else {
        r->ev_tokens += (double)(now - r->ev_stamp_ns) * EXIT_EVENT_PER_SEC /
                        NANOSECONDS_PER_SECOND;
        r->ev_tokens = MIN(r->ev_tokens, EXIT_EVENT_BURST);
    }
    r->ev_stamp_ns = now;
    if (r->ev_tokens < 1) {
        r->ev_unsent++;
        return false;
    }
    r->ev_tokens -= 1;
    return true;
}

static void exit_route_event_report(ExitRoute *r, const ExitPlatformEvent *ev,
                                    ExitEventVerdict verdict)
{
    bool mce = ev->type == EXIT_EVENT_MCE;
    bool memerr = ev->type == EXIT_EVENT_MEMORY_ERROR;

    r->verdicts[verdict]++;
    trace_exit_route_event(r->id, exit_event_type_name(ev->type),
                           exit_event_source_name(ev->source), ev->cpu,
                           ev->addr, ev->data, ExitEventVerdict_str(verdict));
    if (!exit_route_event_allowed(r)) {
        return;
    }
    qapi_event_send_platform_event(exit_route_event_enum[ev->type],
                                   (ExitEventSource)ev->source,
                                   ev->cpu >= 0, ev->cpu,
                                   mce || memerr, (ExitEventClass)ev->class,
                                   mce && ev->bank >= 0, ev->bank,
                                   mce || memerr, ev->addr,
                                   ev->type == EXIT_EVENT_SMI || mce,
                                   ev->data, r->id, r->handler, verdict,
                                   r->ev_unsent);
    r->ev_unsent = 0;
}

/* The platform handler's answer, or false: it declined (or there is none). */
static bool exit_route_event_platform(ExitPlatformEvent *ev,
                                      ExitEventVerdict *verdict)
{
    ExitPlatformResult res;

    if (!exit_platform.ops) {
        return false;
    }
    res = exit_platform.ops->event(exit_platform.opaque, ev);
    switch (res) {
    case EXIT_PLATFORM_DELIVER:
        *verdict = EXIT_EVENT_VERDICT_DELIVER;
        return true;
    case EXIT_PLATFORM_HANDLED:
        *verdict = EXIT_EVENT_VERDICT_HANDLED;
        return true;
    case EXIT_PLATFORM_DECLINE:
    default:
        return false;
    }
}

ExitEventVerdict exit_route_event(ExitPlatformEvent *ev)
{
    ExitAccess a = {
        .type = ev->type, .addr = ev->addr, .size = 8, .is_write = true,
        .data = ev->data, .source = ev->source, .class = ev->class,
        .bank = ev->bank, .cpu = ev->cpu,
    };
    ExitRouterSnapshot *snap;
    const RouteTableEntry *e;
    RouteCursor c;

    assert(bql_locked());
    assert(exit_event_is_platform(ev->type));
    exit_router_init_globals();
    RCU_READ_LOCK_GUARD();
    snap = qatomic_rcu_read(&exit_router.current);
    route_table_lookup(snap ? snap->table : NULL, &a, &c);
    while ((e = route_cursor_next(&c, &a))) {
        const ExitRouteSlot *slot = e->opaque;
        ExitRoute *r = slot->route;
        ExitEventVerdict verdict;

        exit_stats_done(exit_stats_slot(&r->stats), 0);
        switch (r->handler) {
        case EXIT_ROUTE_HANDLER_LOG:
            trace_exit_route_event_log(e->name,
                                       exit_event_type_name(a.type),
                                       exit_event_source_name(a.source),
                                       a.cpu, a.addr, a.data);
            continue;
        case EXIT_ROUTE_HANDLER_IGNORE:
            verdict = EXIT_EVENT_VERDICT_SUPPRESS;
            break;
        case EXIT_ROUTE_HANDLER_PLATFORM:
            if (!exit_route_event_platform(ev, &verdict)) {
                exit_stats_count_decline(exit_stats_slot(&r->stats));
                continue;
            }
            break;
        case EXIT_ROUTE_HANDLER_EXTERNAL:
            verdict = exit_handler_pool_event(r->pool, ev);
            break;
        case EXIT_ROUTE_HANDLER_DELIVER:
        default:
            verdict = EXIT_EVENT_VERDICT_DELIVER;
            break;
        }
        exit_route_event_report(r, ev, verdict);
        return verdict;
    }
    exit_stats_done(exit_stats_slot(&exit_router.unrouted_events), 0);
    return EXIT_EVENT_VERDICT_DELIVER;
}

/*
 * qemu-tiers exit router: external handler processes (handler=external).
 *
 * An exit-handler object is one handler process behind a socket chardev
 * (protocol: accel/route/exit-handler-proto.h, docs/external-handlers.rst).
 * An external route owns an ExitHandlerPool: the handlers it may use,
 * how it picks one, its timeout and whether writes are posted.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_ROUTE_EXTERNAL_H
#define ACCEL_ROUTE_EXTERNAL_H

#include "qapi/qapi-types-exit-route.h"
#include "accel/route/exit-router.h"

typedef struct ExitHandlerPool ExitHandlerPool;

/*
 * Resolves @names to exit-handler objects and builds the pool of route
 * @route_id.  Sets @errp naming the offending handler or value and
 * returns NULL on bad input.  BQL.
 */
ExitHandlerPool *exit_handler_pool_new(const char *route_id,
                                       const strList *names,
                                       ExitRoutePolicy policy,
                                       ExitRouteFallback fallback,
                                       uint32_t timeout_ms,
                                       bool posted_writes, Error **errp);

/*
 * The route enters (@in_table) or leaves the table: its handlers cannot
 * be deleted while they are in a published route.  BQL.
 */
void exit_handler_pool_set_published(ExitHandlerPool *p, bool in_table);

/* Freed with the route, after the last table that names it.  BQL. */
void exit_handler_pool_free(ExitHandlerPool *p);

/*
 * Offers one access to the pool (any thread, with or without the BQL;
 * never waits longer than the route's timeout in all, failovers included).
 * Returns true if a handler completed it (*@data: a read's value);
 * false if the route's fallback must.
 */
bool exit_handler_pool_access(ExitHandlerPool *p, const ExitAccess *a,
                              uint64_t *data);

/*
 * The route's fallback takes an access (one no handler completed, or a
 * rep batch, which is never offered): counts it and says which.
 */
ExitRouteFallback exit_handler_pool_take_fallback(ExitHandlerPool *p);

/*
 * Offers a platform event to the pool (BQL held); returns its verdict,
 * or the route's fallback's (device: deliver; ignore: suppress) when no
 * handler decided.
 */
ExitEventVerdict exit_handler_pool_event(ExitHandlerPool *p,
                                         ExitPlatformEvent *ev);

/* For query-exit-routes and query-exit-stats.  BQL. */
void exit_handler_pool_info(const ExitHandlerPool *p, ExitRouteInfo *info);
void exit_handler_pool_stats(const ExitHandlerPool *p,
                             ExitRouteStats *stats);

#endif

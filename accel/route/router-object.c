/*
 * qemu-tiers exit router: the exit-route object.
 *
 *   -object exit-route,id=ID,event=pio|mmio|msr,start=N[,size=N]
 *           [,direction=any|read|write][,access-size=1|2|4|8]
 *           [,datamatch=N][,priority=N],handler=device|inline|ignore|
 *           log|external[,inline=NAME][,handlers=ID...][,policy=...]
 *           [,fallback=...][,timeout-ms=N][,posted-writes=on|off]
 *
 * (also object-add and exit-route-add).  Its properties are the user's
 * input, kept as given; complete() checks them together, makes the
 * route's spec and puts it in the table.  Once in the table a route
 * never changes: delete it and add another.
 *
 * Locking: BQL for everything here.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-exit-route.h"
#include "qapi/qapi-visit-exit-route.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-builtin-visit.h"
#include "qapi/visitor.h"
#include "qom/object_interfaces.h"
#include "system/system.h"
#include "accel/route/router-internal.h"

/* ---- properties, from one table ------------------------------------------ */

typedef enum ExitRoutePropKind {
    EXIT_PROP_UINT64,
    EXIT_PROP_UINT32,
    EXIT_PROP_INT32,
    EXIT_PROP_UINT8,
    EXIT_PROP_BOOL,
    EXIT_PROP_ENUM,
    EXIT_PROP_STR,
    EXIT_PROP_STRLIST,
} ExitRoutePropKind;

typedef struct ExitRoutePropInfo {
    const char *name;
    ExitRoutePropKind kind;
    const char *enum_type;          /* EXIT_PROP_ENUM: the QAPI type */
    const QEnumLookup *lookup;
    size_t offset;                  /* the field in ExitRoute */
    ptrdiff_t has_offset;           /* its "given" flag, or -1 */
    const char *description;
} ExitRoutePropInfo;

#define EXIT_ROUTE_FIELD(f) offsetof(ExitRoute, f)
#define EXIT_ROUTE_NO_HAS   (-1)

static const ExitRoutePropInfo exit_route_props[] = {
    { "event", EXIT_PROP_ENUM, "ExitRouteEvent", &ExitRouteEvent_lookup,
      EXIT_ROUTE_FIELD(event), EXIT_ROUTE_NO_HAS,
      "The kind of exit: pio, mmio, msr, or a platform event: smi, nmi, "
      "mce, memory-error" },
    { "start", EXIT_PROP_UINT64, NULL, NULL,
      EXIT_ROUTE_FIELD(start), EXIT_ROUTE_FIELD(has_start),
      "First port, guest-physical address or MSR index" },
    { "size", EXIT_PROP_UINT64, NULL, NULL,
      EXIT_ROUTE_FIELD(size), EXIT_ROUTE_FIELD(has_size),
      "Number of ports, bytes or MSRs (default 1; platform events: every "
      "address)" },
    { "direction", EXIT_PROP_ENUM, "ExitRouteDirection",
      &ExitRouteDirection_lookup,
      EXIT_ROUTE_FIELD(direction), EXIT_ROUTE_NO_HAS,
      "Match reads, writes or both: read, write or any (default)" },
    { "access-size", EXIT_PROP_UINT8, NULL, NULL,
      EXIT_ROUTE_FIELD(access_size), EXIT_ROUTE_FIELD(has_access_size),
      "Match only accesses of this many bytes: 1, 2, 4 or 8 "
      "(default: any)" },
    { "datamatch", EXIT_PROP_UINT64, NULL, NULL,
      EXIT_ROUTE_FIELD(datamatch), EXIT_ROUTE_FIELD(has_datamatch),
      "Match only writes of this value (needs direction=write)" },
    { "priority", EXIT_PROP_INT32, NULL, NULL,
      EXIT_ROUTE_FIELD(priority), EXIT_ROUTE_NO_HAS,
      "The higher wins where routes overlap (default 0; the kernel "
      "tier's routes are at -1)" },
    { "handler", EXIT_PROP_ENUM, "ExitRouteHandler",
      &ExitRouteHandler_lookup,
      EXIT_ROUTE_FIELD(handler), EXIT_ROUTE_FIELD(has_handler),
      "Who completes a matching access: device (default), inline, "
      "ignore, log or external; for platform events deliver (default), "
      "ignore, log, platform or external" },
    { "inline", EXIT_PROP_STR, NULL, NULL,
      EXIT_ROUTE_FIELD(inline_name), EXIT_ROUTE_NO_HAS,
      "The inline handler (handler=inline): pic-master, pic-slave, pit, "
      "port61, port80, i8042 or pm-timer" },
    { "handlers", EXIT_PROP_STRLIST, NULL, NULL,
      EXIT_ROUTE_FIELD(handlers), EXIT_ROUTE_NO_HAS,
      "The exit-handler objects of the pool (handler=external)" },
    { "policy", EXIT_PROP_ENUM, "ExitRoutePolicy", &ExitRoutePolicy_lookup,
      EXIT_ROUTE_FIELD(policy), EXIT_ROUTE_FIELD(has_policy),
      "How the pool picks a handler (handler=external): first (default), "
      "round-robin or least-loaded" },
    { "fallback", EXIT_PROP_ENUM, "ExitRouteFallback",
      &ExitRouteFallback_lookup,
      EXIT_ROUTE_FIELD(fallback), EXIT_ROUTE_FIELD(has_fallback),
      "Who completes an access no handler of the pool could "
      "(handler=external): device (default) or ignore" },
    { "timeout-ms", EXIT_PROP_UINT32, NULL, NULL,
      EXIT_ROUTE_FIELD(timeout_ms), EXIT_ROUTE_FIELD(has_timeout_ms),
      "The longest a vCPU waits for the pool on one access, failovers "
      "included (handler=external; 1 to 60000, default 1000)" },
    { "posted-writes", EXIT_PROP_BOOL, NULL, NULL,
      EXIT_ROUTE_FIELD(posted_writes), EXIT_ROUTE_FIELD(has_posted_writes),
      "Writes do not wait for the handler's reply (handler=external; "
      "default off)" },
    { "source", EXIT_PROP_ENUM, "ExitEventSource", &ExitEventSource_lookup,
      EXIT_ROUTE_FIELD(source), EXIT_ROUTE_FIELD(has_source),
      "Platform events: only those from this source (apm, tco, qmp, hmp, "
      "watchdog, host)" },
    { "class", EXIT_PROP_ENUM, "ExitEventClass", &ExitEventClass_lookup,
      EXIT_ROUTE_FIELD(event_class), EXIT_ROUTE_FIELD(has_class),
      "MCE: only corrected, srao, srar or fatal; memory error: only ao or "
      "ar" },
    { "cpu", EXIT_PROP_UINT32, NULL, NULL,
      EXIT_ROUTE_FIELD(cpu), EXIT_ROUTE_FIELD(has_cpu),
      "SMI, NMI, MCE: only events for this vCPU (index)" },
    { "bank", EXIT_PROP_UINT8, NULL, NULL,
      EXIT_ROUTE_FIELD(bank), EXIT_ROUTE_FIELD(has_bank),
      "MCE: only machine checks in this bank" },
};

static void exit_route_prop_get(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    const ExitRoutePropInfo *p = opaque;
    void *field = (char *)obj + p->offset;

    switch (p->kind) {
    case EXIT_PROP_UINT64:
        visit_type_uint64(v, name, field, errp);
        break;
    case EXIT_PROP_UINT32:
        visit_type_uint32(v, name, field, errp);
        break;
    case EXIT_PROP_INT32:
        visit_type_int32(v, name, field, errp);
        break;
    case EXIT_PROP_UINT8:
        visit_type_uint8(v, name, field, errp);
        break;
    case EXIT_PROP_BOOL:
        visit_type_bool(v, name, field, errp);
        break;
    case EXIT_PROP_ENUM:
        visit_type_enum(v, name, field, p->lookup, errp);
        break;
    case EXIT_PROP_STR: {
        g_autofree char *s = g_strdup(*(char **)field ?: "");

        visit_type_str(v, name, &s, errp);
        break;
    }
    case EXIT_PROP_STRLIST: {
        strList *list = QAPI_CLONE(strList, *(strList **)field);

        visit_type_strList(v, name, &list, errp);
        qapi_free_strList(list);
        break;
    }
    }
}

/*
 * Visits the new value into a scratch copy first, so that bad input
 * leaves the route as it was; refuses any change once the route is in
 * the table.
 */
static void exit_route_prop_set(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);
    const ExitRoutePropInfo *p = opaque;
    void *field = (char *)obj + p->offset;
    union {
        uint64_t u64;
        uint32_t u32;
        int32_t i32;
        uint8_t u8;
        bool b;
        int e;
        char *s;
        strList *list;
    } val = { 0 };
    size_t len;
    bool ok = false;

    if (r->published) {
        error_setg(errp, "exit route '%s' is in use: property '%s' cannot "
                   "change (delete and add it again)", r->id, name);
        return;
    }
    switch (p->kind) {
    case EXIT_PROP_UINT64:
        ok = visit_type_uint64(v, name, &val.u64, errp);
        len = sizeof(val.u64);
        break;
    case EXIT_PROP_UINT32:
        ok = visit_type_uint32(v, name, &val.u32, errp);
        len = sizeof(val.u32);
        break;
    case EXIT_PROP_INT32:
        ok = visit_type_int32(v, name, &val.i32, errp);
        len = sizeof(val.i32);
        break;
    case EXIT_PROP_UINT8:
        ok = visit_type_uint8(v, name, &val.u8, errp);
        len = sizeof(val.u8);
        break;
    case EXIT_PROP_BOOL:
        ok = visit_type_bool(v, name, &val.b, errp);
        len = sizeof(val.b);
        break;
    case EXIT_PROP_ENUM:
        ok = visit_type_enum(v, name, &val.e, p->lookup, errp);
        len = sizeof(val.e);
        break;
    case EXIT_PROP_STR:
        ok = visit_type_str(v, name, &val.s, errp);
        if (ok) {
            g_free(*(char **)field);
        }
        len = sizeof(val.s);
        break;
    case EXIT_PROP_STRLIST:
        ok = visit_type_strList(v, name, &val.list, errp);
        if (ok) {
            qapi_free_strList(*(strList **)field);
        }
        len = sizeof(val.list);
        break;
    default:
        g_assert_not_reached();
    }
    if (!ok) {
        return;
    }
    memcpy(field, &val, len);
    if (p->has_offset != EXIT_ROUTE_NO_HAS) {
        *(bool *)((char *)obj + p->has_offset) = true;
    }
}

static const char *const exit_prop_type_names[] = {
    [EXIT_PROP_UINT64] = "uint64", [EXIT_PROP_UINT32] = "uint32",
    [EXIT_PROP_INT32] = "int32", [EXIT_PROP_UINT8] = "uint8",
    [EXIT_PROP_BOOL] = "bool", [EXIT_PROP_STR] = "str",
    [EXIT_PROP_STRLIST] = "strList",
};

static void exit_route_add_props(ObjectClass *oc)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(exit_route_props); i++) {
        const ExitRoutePropInfo *p = &exit_route_props[i];

        object_class_property_add(oc, p->name,
                                  p->kind == EXIT_PROP_ENUM ? p->enum_type :
                                  exit_prop_type_names[p->kind],
                                  exit_route_prop_get, exit_route_prop_set,
                                  NULL, (void *)p);
        object_class_property_set_description(oc, p->name, p->description);
    }
}

/* ---- from properties to a route ------------------------------------------ */

static const ExitEventType exit_route_event_types[] = {
    [EXIT_ROUTE_EVENT_PIO] = EXIT_EVENT_PIO,
    [EXIT_ROUTE_EVENT_MMIO] = EXIT_EVENT_MMIO,
    [EXIT_ROUTE_EVENT_MSR] = EXIT_EVENT_MSR,
    [EXIT_ROUTE_EVENT_SMI] = EXIT_EVENT_SMI,
    [EXIT_ROUTE_EVENT_NMI] = EXIT_EVENT_NMI,
    [EXIT_ROUTE_EVENT_MCE] = EXIT_EVENT_MCE,
    [EXIT_ROUTE_EVENT_MEMORY_ERROR] = EXIT_EVENT_MEMORY_ERROR,
};

/*
 * Which options each kind of platform event takes, and which handlers.
 * Refused elsewhere with a message that names the option.
 */
static bool exit_route_check_event_options(ExitRoute *r, Error **errp)
{
    ExitEventType t = exit_route_event_types[r->event];
    bool mce = t == EXIT_EVENT_MCE, memerr = t == EXIT_EVENT_MEMORY_ERROR;
    const char *opt = NULL;

    if (exit_event_is_platform(t) && !r->has_handler) {
        r->handler = EXIT_ROUTE_HANDLER_DELIVER;    /* QEMU's behaviour */
    }
    if (!exit_event_is_platform(t)) {
        opt = r->has_source ? "source" : r->has_class ? "class" :
              r->has_cpu ? "cpu" : r->has_bank ? "bank" : NULL;
        if (opt) {
            error_setg(errp, "exit route '%s': %s applies to platform "
                       "events (smi, nmi, mce, memory-error), not %s", r->id,
                       opt, ExitRouteEvent_str(r->event));
            return false;
        }
        if (r->handler == EXIT_ROUTE_HANDLER_DELIVER ||
            r->handler == EXIT_ROUTE_HANDLER_PLATFORM) {
            error_setg(errp, "exit route '%s': handler=%s is for platform "
                       "events; %s routes use device", r->id,
                       ExitRouteHandler_str(r->handler),
                       ExitRouteEvent_str(r->event));
            return false;
        }
        return true;
    }
    if (r->handler == EXIT_ROUTE_HANDLER_DEVICE ||
        r->handler == EXIT_ROUTE_HANDLER_INLINE) {
        error_setg(errp, "exit route '%s': handler=%s is for accesses; %s "
                   "routes use deliver, ignore, log, platform or external",
                   r->id, ExitRouteHandler_str(r->handler),
                   ExitRouteEvent_str(r->event));
        return false;
    }
    if (r->has_class && (!(mce || memerr) ||
        (mce && r->event_class > EXIT_EVENT_CLASS_FATAL) ||
        (memerr && r->event_class < EXIT_EVENT_CLASS_AO))) {
        error_setg(errp, "exit route '%s': class=%s does not apply to %s "
                   "events", r->id, ExitEventClass_str(r->event_class),
                   ExitRouteEvent_str(r->event));
        return false;
    }
    if (r->has_cpu && memerr) {
        opt = "cpu";
    } else if (r->has_bank && !mce) {
        opt = "bank";
    } else if (r->has_datamatch && t != EXIT_EVENT_SMI) {
        opt = "datamatch";
    } else if (r->has_access_size) {
        opt = "access-size";
    } else if (r->direction != EXIT_ROUTE_DIRECTION_ANY) {
        opt = "direction";
    }
    if (opt) {
        error_setg(errp, "exit route '%s': %s does not apply to %s events",
                   r->id, opt, ExitRouteEvent_str(r->event));
        return false;
    }
    return true;
}

static const unsigned exit_route_dir_masks[] = {
    [EXIT_ROUTE_DIRECTION_ANY] = EXIT_DIR_ANY,
    [EXIT_ROUTE_DIRECTION_READ] = EXIT_DIR_READ,
    [EXIT_ROUTE_DIRECTION_WRITE] = EXIT_DIR_WRITE,
};

/* The spec of the properties as given. */
static bool exit_route_make_spec(ExitRoute *r, Error **errp)
{
    ExitEventType t = exit_route_event_types[r->event];
    uint64_t last;

    if (!r->has_start && !exit_event_is_platform(t)) {
        error_setg(errp, "exit route '%s': %s routes need start=", r->id,
                   ExitRouteEvent_str(r->event));
        return false;
    }
    if (!r->has_size && exit_event_is_platform(t)) {
        last = UINT64_MAX;          /* events: every address */
    } else if (r->size == 0 || r->start + r->size - 1 < r->start) {
        error_setg(errp, "exit route '%s': size 0x%" PRIx64 " at start 0x%"
                   PRIx64 " is empty or wraps", r->id, r->size, r->start);
        return false;
    } else {
        last = r->start + r->size - 1;
    }
    if (r->has_access_size && r->access_size != 1 && r->access_size != 2 &&
        r->access_size != 4 && r->access_size != 8) {
        error_setg(errp, "exit route '%s': 'access-size' must be 1, 2, 4 or "
                   "8, not %u", r->id, r->access_size);
        return false;
    }
    r->spec = (ExitRouteSpec) {
        .type = t,
        .start = r->start,
        .last = last,
        .dir_mask = exit_route_dir_masks[r->direction],
        .size_mask = r->has_access_size ? r->access_size : EXIT_SIZE_ANY,
        .has_datamatch = r->has_datamatch,
        .datamatch = r->datamatch,
        .priority = r->priority,
        /* The QAPI enums number sources and classes as the table does. */
        .source_mask = r->has_source ? 1u << r->source : 0,
        .class_mask = r->has_class ? 1u << r->event_class : 0,
        .has_cpu = r->has_cpu,
        .cpu = r->cpu,
        .has_bank = r->has_bank,
        .bank = r->bank,
    };
    return exit_route_spec_check(&r->spec, r->id, errp);
}

/*
 * Options that only one handler kind takes are refused elsewhere, naming
 * the option as given, instead of being silently ignored.
 */
static bool exit_route_check_handler_options(ExitRoute *r, Error **errp)
{
    const char *needs = NULL;
    g_autofree char *opt = NULL;

    if (r->handler != EXIT_ROUTE_HANDLER_EXTERNAL) {
        needs = "handler=external";
        if (r->handlers) {
            opt = g_strdup_printf("handlers=%s", r->handlers->value);
        } else if (r->has_policy) {
            opt = g_strdup_printf("policy=%s",
                                  ExitRoutePolicy_str(r->policy));
        } else if (r->has_fallback) {
            opt = g_strdup_printf("fallback=%s",
                                  ExitRouteFallback_str(r->fallback));
        } else if (r->has_timeout_ms) {
            opt = g_strdup_printf("timeout-ms=%" PRIu32, r->timeout_ms);
        } else if (r->has_posted_writes) {
            opt = g_strdup_printf("posted-writes=%s",
                                  r->posted_writes ? "on" : "off");
        }
    }
    if (!opt && r->handler != EXIT_ROUTE_HANDLER_INLINE && r->inline_name) {
        needs = "handler=inline";
        opt = g_strdup_printf("inline=%s", r->inline_name);
    }
    if (opt) {
        error_setg(errp, "exit route '%s': %s needs %s", r->id, opt, needs);
        return false;
    }
    return true;
}

/* handler=inline: a registered handler that serves the whole range. */
static bool exit_route_check_inline(ExitRoute *r, Error **errp)
{
    const ExitInlineHandler *h;

    if (!r->inline_name) {
        error_setg(errp, "exit route '%s': handler=inline needs "
                   "inline=NAME", r->id);
        return false;
    }
    h = exit_router_find_inline(r->inline_name);
    if (!h) {
        error_setg(errp, "exit route '%s': no inline handler '%s'", r->id,
                   r->inline_name);
        return false;
    }
    if (!h->ops->owns(h->opaque, r->spec.type, r->spec.start,
                      r->spec.last)) {
        error_setg(errp, "exit route '%s': inline handler '%s' does not "
                   "serve %s 0x%" PRIx64 "..0x%" PRIx64, r->id,
                   r->inline_name, exit_event_type_name(r->spec.type),
                   r->spec.start, r->spec.last);
        error_append_hint(errp, "An inline handler serves only its own "
                          "device's ports.\n");
        return false;
    }
    return true;
}

/*
 * Writes to ignore need no answer: under KVM they need not leave the
 * kernel.  Installed after the route is in the table, so that until then
 * the ignore handler serves them the same way; and only once the machine
 * is ready, since -object routes exist before the machine.  BQL.
 */
static void exit_route_try_noexit(ExitRoute *r)
{
    if (r->handler == EXIT_ROUTE_HANDLER_IGNORE && r->published &&
        !r->noexit && exit_router.machine_ready) {
        r->noexit = exit_noexit_install(&r->spec);
    }
}

static void exit_route_complete(UserCreatable *uc, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(uc);

    exit_router_init_globals();
    g_free(r->id);
    r->id = g_strdup(object_get_canonical_path_component(OBJECT(r)));
    if (!exit_route_check_event_options(r, errp) ||
        !exit_route_make_spec(r, errp) ||
        !exit_route_check_handler_options(r, errp) ||
        (r->handler == EXIT_ROUTE_HANDLER_INLINE &&
         !exit_route_check_inline(r, errp))) {
        return;
    }
    if (r->handler == EXIT_ROUTE_HANDLER_EXTERNAL) {
        exit_handler_pool_free(r->pool);
        r->pool = exit_handler_pool_new(r->id, r->handlers, r->policy,
                                        r->fallback, r->timeout_ms,
                                        r->posted_writes, errp);
        if (!r->pool) {
            return;
        }
    }
    exit_stats_set_sample_period(&r->stats,
                                 r->handler == EXIT_ROUTE_HANDLER_DEVICE ?
                                 EXIT_DEVICE_SAMPLE_PERIOD :
                                 EXIT_STATS_SAMPLE_PERIOD);
    if (!exit_router_publish(r, NULL, errp)) {
        return;
    }
    g_ptr_array_add(exit_router.routes, r);
    r->published = true;
    if (r->pool) {
        exit_handler_pool_set_published(r->pool, true);
    }
    exit_route_try_noexit(r);
    qapi_event_send_exit_route_changed(r->id, true);
}

void exit_route_collect_noexit(ExitRoute *r)
{
    assert(bql_locked());
    if (r->noexit) {
        r->stats.absorbed += exit_noexit_collect(r->noexit);
    }
}

static void exit_route_unparent(Object *obj)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (r->noexit) {
        /* Before the table: the ignore handler takes over meanwhile. */
        exit_route_collect_noexit(r);
        exit_noexit_remove(r->noexit);
        r->noexit = NULL;
    }
    if (r->published) {
        /*
         * Removing a route cannot be refused (router-publish.c).  When
         * the whole /objects container is being finalized
         * (user_creatable_cleanup: QEMU exits, vCPUs are stopped),
         * rebuilding the table once per route would be quadratic for
         * nothing: the last snapshot keeps its references and is never
         * used again.
         */
        if (!OBJECT(r)->parent || qatomic_read(&OBJECT(r)->parent->ref)) {
            exit_router_publish(NULL, r, &error_abort);
            qapi_event_send_exit_route_changed(r->id, false);
        }
        g_ptr_array_remove(exit_router.routes, r);
        r->published = false;
        if (r->pool) {
            /* Its handlers may go; a late reader finds them down. */
            exit_handler_pool_set_published(r->pool, false);
        }
    }
}

ExitRoute *exit_route_find(const char *id)
{
    guint i;

    for (i = 0; exit_router.routes && i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);

        if (!strcmp(r->id, id)) {
            return r;
        }
    }
    return NULL;
}

ExitRouteInfo *exit_route_info(ExitRoute *r)
{
    ExitRouteInfo *info = g_new0(ExitRouteInfo, 1);

    info->id = g_strdup(r->id);
    info->event = r->event;
    info->start = r->spec.start;
    info->last = r->spec.last;
    info->direction = r->direction;
    info->has_access_size = r->has_access_size;
    info->access_size = r->access_size;
    info->has_datamatch = r->has_datamatch;
    info->datamatch = r->datamatch;
    info->priority = r->priority;
    info->handler = r->handler;
    info->q_inline = g_strdup(r->inline_name);
    info->no_exit = r->noexit != NULL;
    info->has_source = r->has_source;
    info->source = r->source;
    info->has_q_class = r->has_class;
    info->q_class = r->event_class;
    info->has_cpu = r->has_cpu;
    info->cpu = r->cpu;
    info->has_bank = r->has_bank;
    info->bank = r->bank;
    if (r->pool) {
        exit_handler_pool_info(r->pool, info);
    }
    return info;
}

static void exit_route_instance_init(Object *obj)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    r->event = EXIT_ROUTE_EVENT_PIO;
    r->size = 1;            /* platform events: every address, unless set */
    r->direction = EXIT_ROUTE_DIRECTION_ANY;
    r->handler = EXIT_ROUTE_HANDLER_DEVICE;
    r->policy = EXIT_ROUTE_POLICY_FIRST;
    r->fallback = EXIT_ROUTE_FALLBACK_DEVICE;
    r->timeout_ms = 1000;
    exit_stats_init(&r->stats, EXIT_STATS_SAMPLE_PERIOD);
}

static void exit_route_instance_finalize(Object *obj)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    exit_stats_destroy(&r->stats);
    exit_handler_pool_free(r->pool);
    qapi_free_strList(r->handlers);
    g_free(r->inline_name);
    g_free(r->id);
}

static void exit_route_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = exit_route_complete;
    oc->unparent = exit_route_unparent;
    exit_route_add_props(oc);
}

static const TypeInfo exit_route_info_type = {
    .name = TYPE_EXIT_ROUTE,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(ExitRoute),
    .instance_init = exit_route_instance_init,
    .instance_finalize = exit_route_instance_finalize,
    .class_init = exit_route_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

/* ---- the router's start -------------------------------------------------- */

/*
 * The machine is ready: allocate the counters (their slots depend on
 * -smp), build the table once from every -object route, and install the
 * no-exit paths.
 */
static void exit_router_machine_init_done(Notifier *n, void *data)
{
    guint i;

    exit_router.machine_ready = true;
    exit_router_init_globals();
    exit_stats_alloc(&exit_router.unrouted_pio);
    exit_stats_alloc(&exit_router.unrouted_mmio);
    exit_stats_alloc(&exit_router.unrouted_msr);
    exit_stats_alloc(&exit_router.unrouted_events);
    for (i = 0; i < exit_router.routes->len; i++) {
        exit_stats_alloc(&((ExitRoute *)
                           g_ptr_array_index(exit_router.routes, i))->stats);
    }
    /*
     * Every route was checked when it was added, the accelerator's part
     * too (exit-route objects are created after the accelerator): a
     * table of routes that were each accepted cannot be refused.
     */
    exit_router_publish(NULL, NULL, &error_abort);
    for (i = 0; i < exit_router.routes->len; i++) {
        exit_route_try_noexit(g_ptr_array_index(exit_router.routes, i));
    }
}

static Notifier exit_router_machine_done = {
    .notify = exit_router_machine_init_done,
};

static void exit_route_register_types(void)
{
    type_register_static(&exit_route_info_type);
    qemu_add_machine_init_done_notifier(&exit_router_machine_done);
}

type_init(exit_route_register_types);

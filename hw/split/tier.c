/*
 * qemu-tiers kernel tier: registry of the tier's devices and the routes
 * that send their ports to the inline handlers.
 *
 * Locking: BQL for everything here (machine-init-done, QOM property
 * setters, device realize), asserted at each entry point.  The registry
 * is not device state: it only lists which inline handler serves which
 * ports (and where a follow port is now).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qom/object_interfaces.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "system/system.h"
#include "hw/split/split-tier.h"
#include "trace.h"

typedef struct SplitTierDevice {
    char *name;
    const ExitInlineOps *ops;
    void *opaque;
    const SplitTierPorts *ports;
    bool follows;               /* has a follow port: handler gets @place */
    SplitTierPlace place;
} SplitTierDevice;

/* What the device's inline handler is registered with. */
static void *split_tier_handler_opaque(SplitTierDevice *d)
{
    return d->follows ? &d->place : d->opaque;
}

typedef struct SplitTierType {
    const char *type;
    void (*attach)(Object *obj);
} SplitTierType;

static struct {
    GPtrArray *devices;         /* SplitTierDevice *; BQL */
    GArray *types;              /* SplitTierType; type_init, then BQL */
    bool machine_ready;         /* machine-init-done has run */
    Notifier init_done;
    Notifier kernel_tier;
    MemoryListener follow;      /* for SplitTierPorts.follow */
    bool follow_registered;
} split_tier;

/* Is QEMU's own model of this port the region that owns it? */
static bool split_tier_region_owns(const SplitTierPorts *p)
{
    MemoryRegionSection sec = memory_region_find(get_system_io(), p->start,
                                                 p->size);
    bool owns = sec.mr && sec.size == int128_make64(p->size) &&
                !strcmp(memory_region_name(sec.mr), p->region);

    if (sec.mr) {
        memory_region_unref(sec.mr);
    }
    return owns;
}

static void split_tier_add_route(SplitTierDevice *d, const SplitTierPorts *p,
                                 uint16_t at)
{
    g_autofree char *start = g_strdup_printf("%u", at);
    g_autofree char *size = g_strdup_printf("%u", p->size);
    g_autofree char *asize = g_strdup_printf("%u", p->access_size);
    Error *err = NULL;
    Object *route;

    route = object_new_with_props("exit-route", object_get_objects_root(),
                                      p->route, &err,
                                      "event", "pio", "start", start,
                                      "size", size, "handler", "inline",
                                      "inline", d->name, "priority", "-1",
                                      p->access_size ? "access-size" : NULL,
                                      asize, NULL);
    if (!route) {
        /* A user's route already claims these ports at priority -1. */
        warn_reportf_err(err, "kernel tier: %s not installed: ", p->route);
        return;
    }
    trace_split_tier_install(p->route, at, p->size, d->name);
}

static void split_tier_install(SplitTierDevice *d)
{
    const SplitTierPorts *p;

    for (p = d->ports; p->route; p++) {
        if (p->follow ||
            object_resolve_path_component(object_get_objects_root(),
                                          p->route)) {
            continue;           /* follow: the listener installs it */
        }
        if (!split_tier_region_owns(p)) {
            trace_split_tier_skip(p->route, p->start, p->region);
            continue;
        }
        split_tier_add_route(d, p, p->start);
    }
}

static void split_tier_remove_route(SplitTierDevice *d,
                                    const SplitTierPorts *p)
{
    Object *route = object_resolve_path_component(object_get_objects_root(),
                                                  p->route);
    g_autofree char *inl = NULL;

    if (!route || !object_dynamic_cast(route, "exit-route")) {
        return;
    }
    inl = object_property_get_str(route, "inline", NULL);
    if (g_strcmp0(inl, d->name)) {
        return;                 /* a user's route of the same name */
    }
    object_unparent(route);
    trace_split_tier_uninstall(p->route);
}

/*
 * A region appeared in or left address_space_io: (un)install the routes
 * of the follow ports named after it.  Runs under the BQL, from
 * memory_region_transaction_commit() (e.g. the firmware programming the
 * PM I/O base through PCI configuration space).
 */
static void split_tier_follow(MemoryRegionSection *sec, bool add)
{
    const char *name = memory_region_name(sec->mr);
    guint i;

    assert(bql_locked());
    for (i = 0; split_tier.devices && i < split_tier.devices->len; i++) {
        SplitTierDevice *d = g_ptr_array_index(split_tier.devices, i);
        const SplitTierPorts *p;

        for (p = d->ports; p->route; p++) {
            if (!p->follow || strcmp(name, p->region) ||
                int128_ne(sec->size, int128_make64(p->size))) {
                continue;
            }
            split_tier_remove_route(d, p);
            qatomic_set(&d->place.at, UINT64_MAX);
            if (add && exit_router_kernel_tier_enabled()) {
                /* The handler works on the region's own state, there. */
                d->place.opaque = sec->mr->opaque;
                qatomic_set(&d->place.at, sec->offset_within_address_space);
                exit_router_register_inline(d->name, d->ops, &d->place);
                split_tier_add_route(d, p,
                                     sec->offset_within_address_space);
            }
        }
    }
}

static void split_tier_region_add(MemoryListener *l,
                                  MemoryRegionSection *sec)
{
    split_tier_follow(sec, true);
}

static void split_tier_region_del(MemoryListener *l,
                                  MemoryRegionSection *sec)
{
    split_tier_follow(sec, false);
}

/* (Re)register the listener: registration replays every mapped region. */
static void split_tier_follow_sync(void)
{
    if (split_tier.follow_registered) {
        memory_listener_unregister(&split_tier.follow);
    }
    split_tier.follow = (MemoryListener) {
        .name = "qemu-tiers-kernel-tier",
        .region_add = split_tier_region_add,
        .region_del = split_tier_region_del,
        .priority = MEMORY_LISTENER_PRIORITY_MIN,
    };
    memory_listener_register(&split_tier.follow, &address_space_io);
    split_tier.follow_registered = true;
}

static void split_tier_uninstall(SplitTierDevice *d)
{
    const SplitTierPorts *p;

    for (p = d->ports; p->route; p++) {
        split_tier_remove_route(d, p);
    }
}

static void split_tier_attach(SplitTierDevice *d)
{
    exit_router_register_inline(d->name, d->ops,
                                split_tier_handler_opaque(d));
    if (exit_router_kernel_tier_enabled()) {
        split_tier_install(d);
    }
}

void split_tier_register(const char *name, const ExitInlineOps *ops,
                         void *opaque, const SplitTierPorts *ports)
{
    SplitTierDevice *d = g_new0(SplitTierDevice, 1);
    const SplitTierPorts *p;

    assert(bql_locked());
    if (!split_tier.devices) {
        split_tier.devices = g_ptr_array_new();
    }
    *d = (SplitTierDevice) {
        .name = g_strdup(name), .ops = ops, .opaque = opaque, .ports = ports,
        .place = { .at = UINT64_MAX },
    };
    for (p = ports; p->route; p++) {
        d->follows |= p->follow;
    }
    g_ptr_array_add(split_tier.devices, d);
    if (split_tier.machine_ready) {
        split_tier_attach(d);
    }
}

void split_tier_unregister(const char *name)
{
    guint i;

    assert(bql_locked());
    for (i = 0; split_tier.devices && i < split_tier.devices->len; i++) {
        SplitTierDevice *d = g_ptr_array_index(split_tier.devices, i);

        if (strcmp(d->name, name)) {
            continue;
        }
        if (split_tier.machine_ready) {
            split_tier_uninstall(d);
            exit_router_unregister_inline(d->name);
        }
        g_ptr_array_remove_index(split_tier.devices, i);
        g_free(d->name);
        g_free(d);
        return;
    }
}

void split_tier_register_type(const char *type, void (*attach)(Object *))
{
    SplitTierType t = { .type = type, .attach = attach };

    if (!split_tier.types) {
        split_tier.types = g_array_new(false, false, sizeof(SplitTierType));
    }
    g_array_append_val(split_tier.types, t);
}

static int split_tier_find_devices(Object *obj, void *opaque)
{
    guint i;

    for (i = 0; i < split_tier.types->len; i++) {
        SplitTierType *t = &g_array_index(split_tier.types, SplitTierType, i);

        if (object_dynamic_cast(obj, t->type)) {
            t->attach(obj);
        }
    }
    return 0;
}

static void split_tier_machine_init_done(Notifier *n, void *data)
{
    guint i;

    assert(bql_locked());
    if (split_tier.types) {
        object_child_foreach_recursive(object_get_root(),
                                       split_tier_find_devices, NULL);
    }
    split_tier.machine_ready = true;
    for (i = 0; split_tier.devices && i < split_tier.devices->len; i++) {
        split_tier_attach(g_ptr_array_index(split_tier.devices, i));
    }
    split_tier_follow_sync();
}

/* The switch flipped at run time: add or remove every tier route. */
static void split_tier_kernel_tier_changed(Notifier *n, void *data)
{
    bool on = *(bool *)data;
    guint i;

    assert(bql_locked());
    if (!split_tier.machine_ready) {
        return;
    }
    for (i = 0; split_tier.devices && i < split_tier.devices->len; i++) {
        SplitTierDevice *d = g_ptr_array_index(split_tier.devices, i);

        if (on) {
            split_tier_install(d);
        } else {
            split_tier_uninstall(d);
        }
    }
    if (on) {
        split_tier_follow_sync();
    }
}

static void split_tier_init(void)
{
    split_tier.init_done.notify = split_tier_machine_init_done;
    qemu_add_machine_init_done_notifier(&split_tier.init_done);
    split_tier.kernel_tier.notify = split_tier_kernel_tier_changed;
    exit_router_add_kernel_tier_notifier(&split_tier.kernel_tier);
}

type_init(split_tier_init);

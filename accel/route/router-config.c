/*
 * qemu-tiers exit router: how a VM selects its router configuration.
 *
 *   -object exit-router,id=rt0,kernel-tier=on|off
 *   -accel kvm|tcg|qtest,exit-router=rt0,kernel-tier=on|off|auto
 *   -machine kernel-tier=on|off,exit-router=rt0      (sugar for -accel)
 *
 * The accelerator properties live on TYPE_ACCEL, so every accelerator
 * has them.  The -machine sugar exists because libvirt always writes its
 * own -accel first (QEMU ignores a second one: it is a fallback list) and
 * libqtest appends -accel qtest after a test's arguments.  For the same
 * reason an exit-router object attaches itself to the VM: there is at
 * most one, and an accelerator link only confirms which.
 *
 * Locking: everything here runs in the main loop with the BQL held
 * (option parsing, accelerator set-up, QOM property setters).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-exit-route.h"
#include "qapi/qapi-types-common.h"
#include "qapi/qapi-visit-common.h"
#include "qemu/accel.h"
#include "qemu/main-loop.h"
#include "qom/object_interfaces.h"
#include "accel/route/exit-router.h"
#include "trace.h"

#define TYPE_EXIT_ROUTER "exit-router"
OBJECT_DECLARE_SIMPLE_TYPE(ExitRouterConfig, EXIT_ROUTER)

struct ExitRouterConfig {
    Object parent_obj;
    bool kernel_tier;
    uint32_t msr_filter_failures;   /* x-msr-filter-failures, for tests */
};

static struct {
    /* BQL */
    ExitRouterConfig *object;   /* the VM's exit-router object, if any */
    bool resolved;              /* kernel_tier holds the effective state */
    bool kernel_tier;
    NotifierList kernel_tier_notifiers;
    /*
     * kernel_tier once resolved, for threads without the BQL: written
     * under the BQL with qatomic_set, read with qatomic_read.
     */
    bool active;
} exit_router_config = {
    .kernel_tier_notifiers =
        NOTIFIER_LIST_INITIALIZER(exit_router_config.kernel_tier_notifiers),
};

static void exit_router_kernel_tier_resolve(void)
{
    AccelState *accel = current_accel();
    ExitRouterConfig *rt = exit_router_config.object;
    const char *from = "default";
    bool on = true;

    if (accel && accel->kernel_tier != ON_OFF_AUTO_AUTO) {
        on = accel->kernel_tier == ON_OFF_AUTO_ON;
        from = "accelerator";
    } else if (rt) {
        on = rt->kernel_tier;
        from = "exit-router object";
    }
    exit_router_config.kernel_tier = on;
    exit_router_config.resolved = true;
    qatomic_set(&exit_router_config.active, on);
    trace_exit_router_kernel_tier(on, from);
}

bool exit_router_kernel_tier_enabled(void)
{
    assert(bql_locked());
    if (!exit_router_config.resolved) {
        exit_router_kernel_tier_resolve();
    }
    return exit_router_config.kernel_tier;
}

bool exit_router_kernel_tier_active(void)
{
    return qatomic_read(&exit_router_config.active);
}

void exit_router_add_kernel_tier_notifier(Notifier *n)
{
    notifier_list_add(&exit_router_config.kernel_tier_notifiers, n);
}

/* A run-time change, made through the exit-router object. */
static void exit_router_kernel_tier_set(bool on)
{
    if (!exit_router_config.resolved || exit_router_config.kernel_tier == on) {
        return;
    }
    exit_router_config.kernel_tier = on;
    qatomic_set(&exit_router_config.active, on);
    trace_exit_router_kernel_tier(on, "qom-set");
    notifier_list_notify(&exit_router_config.kernel_tier_notifiers, &on);
}

/* ---- the exit-router object --------------------------------------------- */

static bool exit_router_get_kernel_tier(Object *obj, Error **errp)
{
    return EXIT_ROUTER(obj)->kernel_tier;
}

static void exit_router_set_kernel_tier(Object *obj, bool value,
                                        Error **errp)
{
    ExitRouterConfig *rt = EXIT_ROUTER(obj);

    rt->kernel_tier = value;
    if (exit_router_config.object == rt) {
        exit_router_kernel_tier_set(value);
    }
}

bool exit_router_msr_filter_failure_injected(void)
{
    ExitRouterConfig *rt = exit_router_config.object;

    assert(bql_locked());
    if (!rt || !rt->msr_filter_failures) {
        return false;
    }
    rt->msr_filter_failures--;
    return true;
}

static void exit_router_complete(UserCreatable *uc, Error **errp)
{
    ExitRouterConfig *rt = EXIT_ROUTER(uc);

    if (exit_router_config.object) {
        error_setg(errp, "exit router '%s': '%s' is already this VM's exit "
                   "router (there can be only one)",
                   object_get_canonical_path_component(OBJECT(rt)),
                   object_get_canonical_path_component(
                       OBJECT(exit_router_config.object)));
        return;
    }
    exit_router_config.object = rt;
}

static bool exit_router_can_be_deleted(UserCreatable *uc)
{
    /* The accelerator may link it, and the tier follows it. */
    return false;
}

static void exit_router_instance_init(Object *obj)
{
    ExitRouterConfig *rt = EXIT_ROUTER(obj);

    rt->kernel_tier = true;
    object_property_add_uint32_ptr(obj, "x-msr-filter-failures",
                                   &rt->msr_filter_failures,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_set_description(obj, "x-msr-filter-failures",
        "For tests: fail the next N changes of the accelerator's MSR "
        "filter as if the accelerator refused them");
}

static void exit_router_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = exit_router_complete;
    ucc->can_be_deleted = exit_router_can_be_deleted;
    object_class_property_add_bool(oc, "kernel-tier",
                                   exit_router_get_kernel_tier,
                                   exit_router_set_kernel_tier);
    object_class_property_set_description(oc, "kernel-tier",
        "Serve the hot legacy ports inline (the kernel tier); "
        "off is vanilla QEMU");
}

static const TypeInfo exit_router_info = {
    .name = TYPE_EXIT_ROUTER,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(ExitRouterConfig),
    .instance_init = exit_router_instance_init,
    .class_init = exit_router_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void exit_router_register_types(void)
{
    type_register_static(&exit_router_info);
}

type_init(exit_router_register_types);

/* ---- accelerator properties --------------------------------------------- */

static int accel_get_kernel_tier(Object *obj, Error **errp)
{
    return ACCEL(obj)->kernel_tier;
}

static void accel_set_kernel_tier(Object *obj, int value, Error **errp)
{
    ACCEL(obj)->kernel_tier = value;
}

/* Linking a router other than the VM's one would be meaningless. */
static void accel_check_exit_router(const Object *obj, const char *name,
                                    Object *val, Error **errp)
{
    if (exit_router_config.object &&
        val != OBJECT(exit_router_config.object)) {
        error_setg(errp, "exit router '%s' is not this VM's exit router",
                   object_get_canonical_path_component(val));
    }
}

void exit_router_accel_class_init(ObjectClass *oc)
{
    object_class_property_add_enum(oc, "kernel-tier", "OnOffAuto",
                                   &OnOffAuto_lookup, accel_get_kernel_tier,
                                   accel_set_kernel_tier);
    object_class_property_set_description(oc, "kernel-tier",
        "Serve the hot legacy ports inline: on, off (vanilla QEMU), or "
        "auto (the exit-router object's setting, else on)");
    object_class_property_add_link(oc, "exit-router", TYPE_EXIT_ROUTER,
                                   offsetof(AccelState, exit_router),
                                   accel_check_exit_router,
                                   OBJ_PROP_LINK_STRONG);
    object_class_property_set_description(oc, "exit-router",
        "The exit-router object that configures this VM's exit router");
}

ExitRouterInfo *qmp_query_exit_router(Error **errp)
{
    ExitRouterInfo *info = g_new0(ExitRouterInfo, 1);

    info->kernel_tier = exit_router_kernel_tier_enabled();
    if (exit_router_config.object) {
        info->router = g_strdup(object_get_canonical_path_component(
                                    OBJECT(exit_router_config.object)));
    }
    return info;
}

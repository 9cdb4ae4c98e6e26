/*
 * qemu-tiers exit router: the published table.
 *
 * Every change (a route added or removed, an inline handler registered)
 * builds a new immutable snapshot of all routes and publishes it with
 * qatomic_rcu_set(); the old one is freed after an RCU grace period.  A
 * snapshot is refused, changing nothing, when two routes conflict or
 * when the accelerator refuses what the new table needs from it (KVM's
 * MSR filter).  Everything here runs with the BQL held.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "accel/route/router-internal.h"
#include "trace.h"

ExitRouterState exit_router;

ExitPioCountMap *exit_route_pio_count_map;

ExitRouteFilter exit_route_filter = {
    .mmio_lo = UINT64_MAX,
    .msr_lo = UINT64_MAX,
};

void exit_router_init_globals(void)
{
    if (!exit_router.routes) {
        exit_router.routes = g_ptr_array_new();
        exit_router.inline_handlers = g_hash_table_new_full(
            g_str_hash, g_str_equal, g_free, g_free);
        /* What no route matched: QEMU's own path, timed less often. */
        exit_stats_init(&exit_router.unrouted_pio,
                        EXIT_UNROUTED_SAMPLE_PERIOD);
        exit_stats_init(&exit_router.unrouted_mmio,
                        EXIT_UNROUTED_SAMPLE_PERIOD);
        exit_stats_init(&exit_router.unrouted_msr,
                        EXIT_UNROUTED_SAMPLE_PERIOD);
        exit_stats_init(&exit_router.unrouted_events,
                        EXIT_UNROUTED_SAMPLE_PERIOD);
    }
}

const ExitInlineHandler *exit_router_find_inline(const char *name)
{
    exit_router_init_globals();
    return g_hash_table_lookup(exit_router.inline_handlers, name);
}

static void exit_router_snapshot_free(ExitRouterSnapshot *snap)
{
    size_t i;

    for (i = 0; i < snap->n; i++) {
        if (snap->slots[i].route) {
            object_unref(OBJECT(snap->slots[i].route));
        }
        g_free(snap->slots[i].name);
    }
    route_table_free(snap->table);
    g_free(snap->pio_fast);
    g_free(snap->pio_count);
    g_free(snap->slots);
    g_free(snap);
}

/* The flattened best routes of the PIO segments (ExitPioFast). */
static void exit_router_pio_fast_build(ExitRouterSnapshot *snap)
{
    const RouteTable *t = snap->table;
    uint32_t i;

    if (!t->pio_seg || !t->n_segs[EXIT_EVENT_PIO]) {
        return;
    }
    snap->pio_seg = t->pio_seg;
    snap->pio_fast = g_new0(ExitPioFast, t->n_segs[EXIT_EVENT_PIO]);
    for (i = 0; i < t->n_segs[EXIT_EVENT_PIO]; i++) {
        const RouteSegment *seg = &t->segs[EXIT_EVENT_PIO][i];
        const RouteTableEntry *e;
        const ExitRouteSlot *slot;

        e = &t->entries[t->cand[seg->first]];
        slot = e->opaque;
        if (slot->route->handler == EXIT_ROUTE_HANDLER_INLINE) {
            if (!slot->inl.ops) {
                continue;
            }
            snap->pio_fast[i].access = slot->inl.ops->access;
            snap->pio_fast[i].opaque = slot->inl.opaque;
        } else if (slot->route->handler != EXIT_ROUTE_HANDLER_DEVICE) {
            continue;
        }
        snap->pio_fast[i].spec = e->spec;
        snap->pio_fast[i].stats = &slot->route->stats;
        snap->pio_fast[i].name = slot->name;
        snap->pio_fast[i].more = seg->n > 1;
        snap->pio_fast[i].valid = true;
    }
}

/*
 * The accesses a device route decides alone (ExitPioCountMap): for each
 * port of a segment whose best route is a device route without a data
 * match, the sizes and directions that route matches there.  The same
 * test the general path makes (exit_route_spec_matches()), made once per
 * port and kind of access.  NULL when no port has one.
 */
static void exit_router_pio_count_build(ExitRouterSnapshot *snap)
{
    static const unsigned sizes[] = { 1, 2, 4 };
    const RouteTable *t = snap->table;
    ExitPioCountMap *m = NULL;
    uint32_t i, k, w;
    uint64_t p;

    for (i = 0; snap->pio_fast && i < t->n_segs[EXIT_EVENT_PIO]; i++) {
        const RouteSegment *seg = &t->segs[EXIT_EVENT_PIO][i];
        const ExitPioFast *f = &snap->pio_fast[i];

        if (!f->valid || f->access || f->spec.has_datamatch) {
            continue;
        }
        if (!m) {
            m = g_malloc0(sizeof(*m) + t->n_segs[EXIT_EVENT_PIO] *
                          sizeof(m->slots[0]));
        }
        assert(f->stats->slots);        /* allocated at machine-ready */
        m->slots[i] = f->stats->slots;
        for (p = seg->start; p <= seg->last; p++) {
            uint32_t bits = 0;

            for (w = 0; w < 2; w++) {
                for (k = 0; k < ARRAY_SIZE(sizes); k++) {
                    ExitAccess a = {
                        .type = EXIT_EVENT_PIO, .addr = p,
                        .size = sizes[k], .is_write = w,
                    };

                    if (exit_route_spec_matches(&f->spec, &a)) {
                        bits |= EXIT_PIO_COUNT_BIT(a.size, a.is_write);
                    }
                }
            }
            if (bits) {
                m->port[p] = bits | (i + 1);
            }
        }
    }
    snap->pio_count = m;
}

/*
 * The MSR ranges @routes need the accelerator to send to the router: one
 * per MSR route whose handler is not "device" (a device route needs no
 * exit: the kernel's handling is the device path).  Under KVM that is
 * KVM's MSR filter, whose 16 ranges are shared with QEMU's own MSR
 * handlers; TCG's helpers always ask the router, so without KVM there is
 * no filter and no limit (route-noexit.h).
 *
 * Done before a snapshot is built, so that a refusal changes nothing.
 * A change that only removes routes is never refused: if the accelerator
 * will not narrow its filter, it stays wider, which costs exits and
 * changes no behaviour (the router passes the extra MSRs on to the device
 * path, the kernel's own handling).
 */
static bool exit_router_msr_sync(GPtrArray *routes, ExitRoute *extra,
                                 ExitRoute *without, Error **errp)
{
    g_autofree ExitMsrRange *ranges = g_new(ExitMsrRange, routes->len + 1);
    unsigned n = 0, i;
    int ret;

    for (i = 0; i <= routes->len; i++) {
        ExitRoute *r = i < routes->len ? g_ptr_array_index(routes, i) : extra;

        if (!r || r == without || r->spec.type != EXIT_EVENT_MSR ||
            r->handler == EXIT_ROUTE_HANDLER_DEVICE) {
            continue;
        }
        ranges[n++] = (ExitMsrRange) {
            .base = r->spec.start,
            .count = r->spec.last - r->spec.start + 1,
            .read = r->spec.dir_mask & EXIT_DIR_READ,
            .write = r->spec.dir_mask & EXIT_DIR_WRITE,
        };
    }
    if (n == exit_router.n_msr_ranges &&
        !memcmp(ranges, exit_router.msr_ranges, n * sizeof(ranges[0]))) {
        return true;
    }
    ret = exit_router_msr_filter_failure_injected() ? -EIO :
          exit_noexit_msr_filter(ranges, n);
    if (ret < 0) {
        if (!extra) {
            warn_report("exit router: the accelerator refused to narrow its "
                        "MSR filter (%s); the MSRs of removed routes still "
                        "exit to QEMU, which completes them as before",
                        strerror(-ret));
            return true;
        }
        if (ret == -ENOSPC) {
            error_setg(errp, "exit route '%s': KVM's MSR filter has no room "
                       "for it (%u MSR routes would need a filter range; "
                       "KVM has 16, shared with QEMU's own MSR handlers)",
                       extra->id, n);
        } else {
            error_setg_errno(errp, -ret, "exit route '%s': the accelerator "
                             "refused the MSR filter for %u MSR route(s)",
                             extra->id, n);
        }
        return false;
    }
    g_free(exit_router.msr_ranges);
    exit_router.msr_ranges = g_steal_pointer(&ranges);
    exit_router.n_msr_ranges = n;
    return true;
}

/*
 * The miss filter.  Every access asks it first, without a lock and
 * without RCU: a miss (most port and MMIO accesses, which no route
 * covers) then costs a load or two and no read-side section.  It cannot
 * live in the snapshot, because reading the snapshot pointer needs the
 * read-side section the miss is meant to avoid; so it is a conservative
 * copy of the snapshot's coverage, kept correct by its one writer:
 * exit_router_publish() widens it to cover the new snapshot before
 * publishing it and narrows it to exactly the new snapshot afterwards.
 * At every instant it covers every route of the current table: a reader
 * that finds no bit is right about the table of that instant, one that
 * finds a bit looks the access up in whatever table is current.  A torn
 * lo/hi pair is a superset during a change (widen: both move out; narrow:
 * both move in, after publication).
 */
static void exit_router_filter_update(const ExitRouterSnapshot *snap,
                                      bool widen)
{
    size_t i;

    for (i = 0; i < BITS_TO_LONGS(65536); i++) {
        unsigned long w = snap->pio_map[i];

        if (widen) {
            w |= exit_route_filter.pio[i];
        }
        qatomic_set(&exit_route_filter.pio[i], w);
    }
    qatomic_set(&exit_route_filter.mmio_lo, widen ?
                MIN(exit_route_filter.mmio_lo, snap->mmio_lo) :
                snap->mmio_lo);
    qatomic_set(&exit_route_filter.mmio_hi, widen ?
                MAX(exit_route_filter.mmio_hi, snap->mmio_hi) :
                snap->mmio_hi);
    qatomic_set(&exit_route_filter.msr_lo, widen ?
                MIN(exit_route_filter.msr_lo, snap->msr_lo) : snap->msr_lo);
    qatomic_set(&exit_route_filter.msr_hi, widen ?
                MAX(exit_route_filter.msr_hi, snap->msr_hi) : snap->msr_hi);
}

/* Would @extra be accepted beside @routes?  O(n), builds nothing. */
static bool exit_router_check_new(GPtrArray *routes, ExitRoute *extra,
                                  Error **errp)
{
    g_autofree RouteTableEntry *entries = g_new0(RouteTableEntry,
                                                 routes->len + 1);
    RouteTableEntry e = { .spec = extra->spec, .name = extra->id };
    guint i;

    for (i = 0; i < routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(routes, i);

        entries[i] = (RouteTableEntry) { .spec = r->spec, .name = r->id };
    }
    return route_table_check_new(entries, routes->len, &e, errp);
}

/* The snapshot of @routes + @extra - @without, or NULL on a conflict. */
static ExitRouterSnapshot *exit_router_snapshot_new(GPtrArray *routes,
                                                    ExitRoute *extra,
                                                    ExitRoute *without,
                                                    Error **errp)
{
    g_autofree RouteTableEntry *entries = g_new0(RouteTableEntry,
                                                 routes->len + 1);
    ExitRouterSnapshot *snap = g_new0(ExitRouterSnapshot, 1);
    size_t i;

    snap->slots = g_new0(ExitRouteSlot, routes->len + 1);
    for (i = 0; i <= routes->len; i++) {
        ExitRoute *r = i < routes->len ? g_ptr_array_index(routes, i) : extra;
        ExitRouteSlot *slot = &snap->slots[snap->n];

        if (!r || r == without) {
            continue;
        }
        slot->route = r;
        slot->name = g_strdup(r->id);
        entries[snap->n] = (RouteTableEntry) {
            .spec = r->spec, .name = slot->name, .opaque = slot,
        };
        if (r->handler == EXIT_ROUTE_HANDLER_INLINE) {
            const ExitInlineHandler *h = exit_router_find_inline(
                r->inline_name);

            if (h) {
                slot->inl = *h;
            }
        }
        snap->n++;
    }
    snap->table = route_table_build(entries, snap->n, errp);
    if (!snap->table) {
        for (i = 0; i < snap->n; i++) {
            snap->slots[i].route = NULL;        /* not referenced yet */
        }
        exit_router_snapshot_free(snap);
        return NULL;
    }
    for (i = 0; i < snap->n; i++) {
        object_ref(OBJECT(snap->slots[i].route));
    }
    snap->mmio_lo = UINT64_MAX;
    snap->msr_lo = UINT64_MAX;
    for (i = 0; i < snap->n; i++) {
        const ExitRouteSpec *sp = &snap->slots[i].route->spec;

        if (sp->type == EXIT_EVENT_PIO) {
            bitmap_set(snap->pio_map, sp->start, sp->last - sp->start + 1);
        } else if (sp->type == EXIT_EVENT_MMIO) {
            snap->mmio_lo = MIN(snap->mmio_lo, sp->start);
            snap->mmio_hi = MAX(snap->mmio_hi, sp->last);
        } else if (sp->type == EXIT_EVENT_MSR) {
            snap->msr_lo = MIN(snap->msr_lo, sp->start);
            snap->msr_hi = MAX(snap->msr_hi, sp->last);
        }
    }
    return snap;
}

bool exit_router_publish(ExitRoute *extra, ExitRoute *without, Error **errp)
{
    GPtrArray *routes = exit_router.routes;
    ExitRouterSnapshot *snap, *old;

    assert(bql_locked());
    if (!exit_router.machine_ready) {
        /*
         * Before the machine is ready nothing dispatches, and -object
         * may create thousands of routes: check the new one in O(n) and
         * build the table once, at machine-init-done.  What the
         * accelerator must do for the routes is asked now, so that a
         * refusal names the route that does not fit.
         */
        return (!extra || exit_router_check_new(routes, extra, errp)) &&
               exit_router_msr_sync(routes, extra, without, errp);
    }
    snap = exit_router_snapshot_new(routes, extra, without, errp);
    if (!snap) {
        return false;
    }
    if (!exit_router_msr_sync(routes, extra, without, errp)) {
        exit_router_snapshot_free(snap);
        return false;
    }
    exit_router_pio_fast_build(snap);
    exit_router_pio_count_build(snap);
    old = exit_router.current;
    exit_router_filter_update(snap, true);
    qatomic_rcu_set(&exit_router.current, snap->n ? snap : NULL);
    /* Freed with its snapshot: by then no reader sees either. */
    qatomic_rcu_set(&exit_route_pio_count_map,
                    snap->n ? snap->pio_count : NULL);
    exit_router_filter_update(snap, false);
    trace_exit_route_table_publish(snap->n);
    if (!snap->n) {
        exit_router_snapshot_free(snap);
    }
    if (old) {
        call_rcu(old, exit_router_snapshot_free, rcu);
    }
    return true;
}

void exit_router_register_inline(const char *name, const ExitInlineOps *ops,
                                 void *opaque)
{
    ExitInlineHandler *h = g_new(ExitInlineHandler, 1);

    assert(bql_locked());
    assert(ops->access && ops->owns);
    exit_router_init_globals();
    *h = (ExitInlineHandler) { .ops = ops, .opaque = opaque };
    g_hash_table_replace(exit_router.inline_handlers, g_strdup(name), h);
    /* Routes already naming it start using it; cannot conflict anew. */
    exit_router_publish(NULL, NULL, &error_abort);
}

void exit_router_unregister_inline(const char *name)
{
    assert(bql_locked());
    exit_router_init_globals();
    g_hash_table_remove(exit_router.inline_handlers, name);
    exit_router_publish(NULL, NULL, &error_abort);
}

/*
 * qemu-tiers exit router: the route table (see route-table.h).
 *
 * Layout: per event type, the address space is cut into disjoint segments
 * at every route boundary; each segment that some route covers keeps the
 * list of those routes, best first.  A lookup is a binary search for the
 * segment, then a walk of a list that is one entry long in the common,
 * non-overlapping case.  The cut is made once, when the table is built,
 * so readers never sort, allocate or lock.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "route-table.h"


static const char *const event_type_names[EXIT_EVENT__MAX] = {
    [EXIT_EVENT_PIO] = "pio",
    [EXIT_EVENT_MMIO] = "mmio",
    [EXIT_EVENT_MSR] = "msr",
    [EXIT_EVENT_SMI] = "smi",
    [EXIT_EVENT_NMI] = "nmi",
    [EXIT_EVENT_MCE] = "mce",
    [EXIT_EVENT_MEMORY_ERROR] = "memory-error",
};

static const char *const event_source_names[EXIT_SOURCE__MAX] = {
    [EXIT_SOURCE_APM] = "apm",
    [EXIT_SOURCE_TCO] = "tco",
    [EXIT_SOURCE_QMP] = "qmp",
    [EXIT_SOURCE_HMP] = "hmp",
    [EXIT_SOURCE_WATCHDOG] = "watchdog",
    [EXIT_SOURCE_HOST] = "host",
};

static const char *const event_class_names[EXIT_CLASS__MAX] = {
    [EXIT_CLASS_CORRECTED] = "corrected",
    [EXIT_CLASS_SRAO] = "srao",
    [EXIT_CLASS_SRAR] = "srar",
    [EXIT_CLASS_FATAL] = "fatal",
    [EXIT_CLASS_AO] = "ao",
    [EXIT_CLASS_AR] = "ar",
};

const char *exit_event_type_name(ExitEventType type)
{
    return type < EXIT_EVENT__MAX ? event_type_names[type] : "?";
}

const char *exit_event_source_name(ExitPlatformSource source)
{
    return source < EXIT_SOURCE__MAX ? event_source_names[source] : "?";
}

const char *exit_event_class_name(ExitErrorClass class)
{
    return class < EXIT_CLASS__MAX ? event_class_names[class] : "?";
}

bool exit_route_spec_check(const ExitRouteSpec *spec, const char *name,
                           Error **errp)
{
    if (spec->type >= EXIT_EVENT__MAX) {
        error_setg(errp, "exit route '%s': unknown event type %d",
                   name, spec->type);
        return false;
    }
    if (spec->start > spec->last) {
        error_setg(errp, "exit route '%s': empty range 0x%" PRIx64
                   "..0x%" PRIx64, name, spec->start, spec->last);
        return false;
    }
    if (spec->type == EXIT_EVENT_PIO && spec->last > 0xffff) {
        error_setg(errp, "exit route '%s': port range 0x%" PRIx64 "..0x%"
                   PRIx64 " goes past 0xffff", name, spec->start, spec->last);
        return false;
    }
    if (spec->type == EXIT_EVENT_MSR && spec->last > 0xffffffffull) {
        error_setg(errp, "exit route '%s': MSR range 0x%" PRIx64 "..0x%"
                   PRIx64 " goes past 0xffffffff", name, spec->start,
                   spec->last);
        return false;
    }
    if (spec->type == EXIT_EVENT_MSR && spec->size_mask != EXIT_SIZE_ANY &&
        spec->size_mask != (1u << 3)) {
        error_setg(errp, "exit route '%s': MSR accesses are 8 bytes wide",
                   name);
        return false;
    }
    if (!spec->dir_mask || (spec->dir_mask & ~EXIT_DIR_ANY)) {
        error_setg(errp, "exit route '%s': bad direction mask 0x%x",
                   name, spec->dir_mask);
        return false;
    }
    if (!spec->size_mask || (spec->size_mask & ~EXIT_SIZE_ANY)) {
        error_setg(errp, "exit route '%s': bad access-size mask 0x%x",
                   name, spec->size_mask);
        return false;
    }
    if (spec->has_datamatch && !exit_event_is_platform(spec->type) &&
        spec->dir_mask != EXIT_DIR_WRITE) {
        error_setg(errp, "exit route '%s': a data match applies to writes "
                   "only (set direction=write)", name);
        return false;
    }
    if (!exit_event_is_platform(spec->type) &&
        (spec->source_mask || spec->class_mask || spec->has_cpu ||
         spec->has_bank)) {
        error_setg(errp, "exit route '%s': source, class, cpu and bank "
                   "apply to platform events only", name);
        return false;
    }
    if ((spec->source_mask & ~((1u << EXIT_SOURCE__MAX) - 1)) ||
        (spec->class_mask & ~((1u << EXIT_CLASS__MAX) - 1))) {
        error_setg(errp, "exit route '%s': unknown event source or class",
                   name);
        return false;
    }
    return true;
}

/* Do two "zero: any" masks share a member? */
static bool masks_overlap(uint32_t a, uint32_t b)
{
    return !a || !b || (a & b);
}

/* Could one platform event match both specs?  (Same type, overlap.) */
static bool event_specs_conflict(const ExitRouteSpec *a,
                                 const ExitRouteSpec *b)
{
    return masks_overlap(a->source_mask, b->source_mask) &&
           masks_overlap(a->class_mask, b->class_mask) &&
           !(a->has_cpu && b->has_cpu && a->cpu != b->cpu) &&
           !(a->has_bank && b->has_bank && a->bank != b->bank) &&
           !(a->has_datamatch && b->has_datamatch &&
             a->datamatch != b->datamatch);
}

/* Could one access match both specs?  (Same type assumed.) */
static bool specs_conflict(const ExitRouteSpec *a, const ExitRouteSpec *b)
{
    if (a->priority != b->priority || a->last < b->start ||
        b->last < a->start) {
        return false;
    }
    if (exit_event_is_platform(a->type)) {
        return event_specs_conflict(a, b);
    }
    if (!(a->dir_mask & b->dir_mask) || !(a->size_mask & b->size_mask)) {
        return false;
    }
    return !(a->has_datamatch && b->has_datamatch &&
             a->datamatch != b->datamatch);
}

static int cmp_by_start(const void *pa, const void *pb, void *opaque)
{
    const RouteTable *t = opaque;
    const ExitRouteSpec *a = &t->entries[*(const uint32_t *)pa].spec;
    const ExitRouteSpec *b = &t->entries[*(const uint32_t *)pb].spec;

    if (a->type != b->type) {
        return a->type < b->type ? -1 : 1;
    }
    if (a->start != b->start) {
        return a->start < b->start ? -1 : 1;
    }
    return 0;
}

/* Best first: higher priority, then the earlier entry. */
static int cmp_by_precedence(const void *pa, const void *pb, void *opaque)
{
    const RouteTable *t = opaque;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    int32_t a = t->entries[ia].spec.priority, b = t->entries[ib].spec.priority;

    if (a != b) {
        return a > b ? -1 : 1;
    }
    return ia < ib ? -1 : ia > ib;
}

static int cmp_u64(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

    return a < b ? -1 : a > b;
}

/*
 * Sweep the routes of one type (indexes @idx, sorted by start) and
 * refuse any pair that can match the same access at the same priority.
 */
static bool check_conflicts(const RouteTable *t, const uint32_t *idx,
                            size_t n, Error **errp)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        const RouteTableEntry *a = &t->entries[idx[i]];

        for (j = i + 1; j < n; j++) {
            const RouteTableEntry *b = &t->entries[idx[j]];

            if (b->spec.start > a->spec.last) {
                break;          /* sorted by start: no later overlap */
            }
            if (specs_conflict(&a->spec, &b->spec)) {
                const RouteTableEntry *first = idx[i] < idx[j] ? a : b;
                const RouteTableEntry *second = first == a ? b : a;

                error_setg(errp, "exit route '%s' conflicts with '%s': both "
                           "match %s 0x%" PRIx64 "..0x%" PRIx64 " at priority "
                           "%" PRId32, second->name, first->name,
                           exit_event_type_name(a->spec.type),
                           MAX(a->spec.start, b->spec.start),
                           MIN(a->spec.last, b->spec.last), a->spec.priority);
                error_append_hint(errp, "Give one of them another priority, "
                                  "direction, access size or data match.\n");
                return false;
            }
        }
    }
    return true;
}

/*
 * The PIO segments by port, for a lookup without a search: one uint16_t
 * per port (128 KiB), 0 or the index of the port's segment plus one.
 * Only an accelerator of the lookup: with more segments than a uint16_t
 * can number (tens of thousands of disjoint port routes) there is no
 * index and port lookups use the binary search like other types.
 */
static void build_pio_index(RouteTable *t)
{
    const RouteSegment *segs = t->segs[EXIT_EVENT_PIO];
    uint32_t i;
    uint64_t p;

    if (t->n_segs[EXIT_EVENT_PIO] > UINT16_MAX) {
        return;
    }
    t->pio_seg = g_new0(uint16_t, ROUTE_TABLE_PIO_PORTS);
    for (i = 0; i < t->n_segs[EXIT_EVENT_PIO]; i++) {
        for (p = segs[i].start;
             p <= segs[i].last && p < ROUTE_TABLE_PIO_PORTS; p++) {
            t->pio_seg[p] = i + 1;
        }
    }
}

/*
 * Cut one type's routes (indexes @idx, sorted by start) into segments;
 * appends candidate lists to @cand.  A sweep: every route boundary starts
 * a segment, so a route that is active at a segment's start covers all of
 * it.  Linear in routes + segments when routes do not overlap.
 */
static void build_segments(RouteTable *t, ExitEventType type,
                           const uint32_t *idx, size_t n, GArray *cand)
{
    g_autofree uint64_t *bounds = g_new(uint64_t, 2 * n);
    g_autofree uint32_t *active = g_new(uint32_t, n);
    g_autofree uint32_t *sorted = g_new(uint32_t, n);
    GArray *segs = g_array_new(false, false, sizeof(RouteSegment));
    size_t nb = 0, nact = 0, next = 0, b, i, k;

    for (i = 0; i < n; i++) {
        const ExitRouteSpec *s = &t->entries[idx[i]].spec;

        bounds[nb++] = s->start;
        if (s->last != UINT64_MAX) {
            bounds[nb++] = s->last + 1;
        }
    }
    qsort(bounds, nb, sizeof(uint64_t), cmp_u64);

    for (b = 0; b < nb; b++) {
        uint64_t start = bounds[b];
        RouteSegment seg;

        if (b > 0 && bounds[b - 1] == start) {
            continue;
        }
        /* Retire routes that ended before this segment... */
        for (i = k = 0; i < nact; i++) {
            if (t->entries[active[i]].spec.last >= start) {
                active[k++] = active[i];
            }
        }
        nact = k;
        /* ...and admit those that start here. */
        while (next < n && t->entries[idx[next]].spec.start <= start) {
            active[nact++] = idx[next++];
        }
        if (!nact) {
            continue;
        }
        seg = (RouteSegment) {
            .start = start, .last = UINT64_MAX, .first = cand->len, .n = nact,
        };
        /* The segment ends just before the next distinct bound. */
        for (i = b + 1; i < nb; i++) {
            if (bounds[i] != start) {
                seg.last = bounds[i] - 1;
                break;
            }
        }
        memcpy(sorted, active, nact * sizeof(uint32_t));
        g_qsort_with_data(sorted, nact, sizeof(uint32_t), cmp_by_precedence,
                          t);
        g_array_append_vals(cand, sorted, nact);
        g_array_append_val(segs, seg);
    }
    t->n_segs[type] = segs->len;
    t->segs[type] = (RouteSegment *)g_array_free(segs, false);
    if (type == EXIT_EVENT_PIO) {
        build_pio_index(t);
    }
}

RouteTable *route_table_build(const RouteTableEntry *entries, size_t n,
                              Error **errp)
{
    RouteTable *t = g_new0(RouteTable, 1);
    g_autofree uint32_t *idx = g_new(uint32_t, n ? n : 1);
    GArray *cand = g_array_new(false, false, sizeof(uint32_t));
    size_t i, from;

    t->entries = g_memdup2(entries, n * sizeof(*entries));
    t->n_entries = n;
    for (i = 0; i < n; i++) {
        if (!exit_route_spec_check(&entries[i].spec, entries[i].name, errp)) {
            goto fail;
        }
        idx[i] = i;
    }
    g_qsort_with_data(idx, n, sizeof(uint32_t), cmp_by_start, t);

    for (from = 0; from < n; from = i) {
        ExitEventType type = t->entries[idx[from]].spec.type;

        for (i = from; i < n && t->entries[idx[i]].spec.type == type; i++) {
            /* find the end of this type's run */
        }
        if (!check_conflicts(t, idx + from, i - from, errp)) {
            goto fail;
        }
        build_segments(t, type, idx + from, i - from, cand);
    }
    t->cand = (uint32_t *)g_array_free(cand, false);
    return t;

fail:
    g_array_free(cand, true);
    route_table_free(t);
    return NULL;
}

bool route_table_check_new(const RouteTableEntry *entries, size_t n,
                           const RouteTableEntry *e, Error **errp)
{
    size_t i;

    if (!exit_route_spec_check(&e->spec, e->name, errp)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        const ExitRouteSpec *o = &entries[i].spec;

        if (o->type == e->spec.type && specs_conflict(o, &e->spec)) {
            error_setg(errp, "exit route '%s' conflicts with '%s': both "
                       "match %s 0x%" PRIx64 "..0x%" PRIx64 " at priority "
                       "%" PRId32, e->name, entries[i].name,
                       exit_event_type_name(o->type),
                       MAX(o->start, e->spec.start),
                       MIN(o->last, e->spec.last), o->priority);
            error_append_hint(errp, "Give one of them another priority, "
                              "direction, access size or data match.\n");
            return false;
        }
    }
    return true;
}

void route_table_free(RouteTable *t)
{
    int i;

    if (!t) {
        return;
    }
    for (i = 0; i < EXIT_EVENT__MAX; i++) {
        g_free(t->segs[i]);
    }
    g_free(t->pio_seg);
    g_free(t->cand);
    g_free(t->entries);
    g_free(t);
}

size_t route_table_size(const RouteTable *t)
{
    return t ? t->n_entries : 0;
}

const RouteTableEntry *route_table_entry(const RouteTable *t, size_t i)
{
    return i < t->n_entries ? &t->entries[i] : NULL;
}


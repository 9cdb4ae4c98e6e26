/*
 * qemu-tiers exit router: the route table.
 *
 * A route table is an immutable snapshot.  It is built once from a list
 * of route specifications (route_table_build), published with
 * qatomic_rcu_set() and freed after a grace period; readers look it up
 * with no lock.  Nothing here touches QOM, the BQL or any device, so the
 * table is unit-tested without a VM (tests/unit/test-route-table.c).
 *
 * Precedence: for an access, the candidates are the routes whose range
 * contains the whole access [addr, addr + size), of the access's event
 * type, that accept its direction, size and (if set) data match; they are
 * tried in descending priority.  Two routes that could both match one
 * access at the same priority are refused when the table is built.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_ROUTE_TABLE_H
#define ACCEL_ROUTE_TABLE_H

#include "qemu/host-utils.h"

/*
 * Kinds of exit a route can match: accesses (port I/O, MMIO, MSRs) and
 * platform events (docs/platform-events.rst).
 */
typedef enum ExitEventType {
    EXIT_EVENT_PIO,
    EXIT_EVENT_MMIO,
    EXIT_EVENT_MSR,
    EXIT_EVENT_SMI,
    EXIT_EVENT_NMI,
    EXIT_EVENT_MCE,
    EXIT_EVENT_MEMORY_ERROR,
    EXIT_EVENT__MAX,
} ExitEventType;

/* A platform event, not an access? */
static inline bool exit_event_is_platform(ExitEventType type)
{
    return type >= EXIT_EVENT_SMI && type < EXIT_EVENT__MAX;
}

/*
 * Where a platform event comes from (ExitAccess.source; a route matches a
 * set of them).  The same numbers as the QAPI enum ExitEventSource.
 */
typedef enum ExitPlatformSource {
    EXIT_SOURCE_APM,            /* SMI: a write of the APM control port */
    EXIT_SOURCE_TCO,            /* SMI: the ICH9 TCO watchdog */
    EXIT_SOURCE_QMP,            /* inject-smi, inject-nmi, inject-mce */
    EXIT_SOURCE_HMP,            /* nmi, mce */
    EXIT_SOURCE_WATCHDOG,       /* NMI: a watchdog's inject-nmi action */
    EXIT_SOURCE_HOST,           /* MCE, memory error: the host's SIGBUS */
    EXIT_SOURCE__MAX,
} ExitPlatformSource;

/* What kind of error (MCE, memory error); QAPI's ExitEventClass. */
typedef enum ExitErrorClass {
    EXIT_CLASS_CORRECTED,       /* MCE: logged in the bank, no #MC */
    EXIT_CLASS_SRAO,            /* MCE: uncorrected, action optional */
    EXIT_CLASS_SRAR,            /* MCE: uncorrected, action required */
    EXIT_CLASS_FATAL,           /* MCE: uncorrected, processor context corrupt */
    EXIT_CLASS_AO,              /* memory error: SIGBUS BUS_MCEERR_AO */
    EXIT_CLASS_AR,              /* memory error: SIGBUS BUS_MCEERR_AR */
    EXIT_CLASS__MAX,
} ExitErrorClass;

/* Direction mask bits. */
#define EXIT_DIR_READ   (1u << 0)
#define EXIT_DIR_WRITE  (1u << 1)
#define EXIT_DIR_ANY    (EXIT_DIR_READ | EXIT_DIR_WRITE)

/* Access-size mask: bit n set = accesses of 1 << n bytes (1, 2, 4, 8). */
#define EXIT_SIZE_ANY   0xfu

/*
 * One access, as an accelerator reports it, or one platform event.  An
 * event has @size 8 and @is_write set; @addr is its guest-physical
 * address (MCE, memory error; 0 for the others) and @data its value
 * (SMI: the APM command byte; MCE: MCi_STATUS).
 */
typedef struct ExitAccess {
    ExitEventType type;
    uint64_t addr;              /* port, guest-physical address or MSR */
    unsigned size;              /* bytes: 1, 2, 4 or 8 */
    bool is_write;
    uint64_t data;              /* the value written (writes only) */
    /* Platform events only: */
    uint8_t source;             /* ExitPlatformSource */
    uint8_t class;              /* ExitErrorClass (MCE, memory error) */
    int16_t bank;               /* MCE bank, or -1 */
    int32_t cpu;                /* the target vCPU, or -1 (all, or none) */
} ExitAccess;

/*
 * What a route matches.  [start, last] is inclusive so that a route may
 * cover the whole 64-bit space.
 */
typedef struct ExitRouteSpec {
    ExitEventType type;
    uint64_t start;
    uint64_t last;
    unsigned dir_mask;          /* EXIT_DIR_* */
    unsigned size_mask;         /* EXIT_SIZE_ANY or a subset */
    bool has_datamatch;         /* writes only: match data == datamatch */
    uint64_t datamatch;
    int32_t priority;           /* higher wins */
    /* Platform events only (zero: any): */
    uint32_t source_mask;       /* bit per ExitPlatformSource */
    uint32_t class_mask;        /* bit per ExitErrorClass */
    bool has_cpu;               /* only events for this vCPU */
    uint32_t cpu;
    bool has_bank;              /* only MCEs of this bank */
    uint8_t bank;
} ExitRouteSpec;

/*
 * One route as the table stores it.  @opaque is the caller's (the router
 * keeps its ExitRoute object there) and must outlive the table.
 */
typedef struct RouteTableEntry {
    ExitRouteSpec spec;
    const char *name;           /* for error messages */
    void *opaque;
} RouteTableEntry;

/*
 * The table's layout is here only so that the lookup below can be inlined
 * into the dispatch path; everything else goes through the functions.
 * Entries of one event type are cut into disjoint segments, each with its
 * candidates (indexes into @entries) in precedence order.
 */
typedef struct RouteSegment {
    uint64_t start;
    uint64_t last;
    uint32_t first;             /* into RouteTable.cand */
    uint32_t n;
} RouteSegment;

#define ROUTE_TABLE_PIO_PORTS 0x10000

typedef struct RouteTable {
    RouteTableEntry *entries;
    size_t n_entries;
    uint32_t *cand;
    RouteSegment *segs[EXIT_EVENT__MAX];
    uint32_t n_segs[EXIT_EVENT__MAX];
    /* PIO: segment index + 1 per port, 0 for none; NULL: search instead */
    uint16_t *pio_seg;
} RouteTable;

/* Walks the candidates of one access, best first. */
typedef struct RouteCursor {
    const RouteTable *table;
    const uint32_t *cand;       /* indexes into the table's entries */
    uint32_t n, i;
} RouteCursor;

/*
 * Builds a table from @n entries (copied; names and opaque pointers are
 * not).  On a conflict (two routes that can match the same access at the
 * same priority) or an invalid spec, sets @errp naming the route(s) and
 * returns NULL.
 */
RouteTable *route_table_build(const RouteTableEntry *entries, size_t n,
                              Error **errp);
void route_table_free(RouteTable *table);

/*
 * Would adding @e to the @n @entries be accepted by route_table_build()?
 * The same checks and messages, in O(n), without building anything.
 */
bool route_table_check_new(const RouteTableEntry *entries, size_t n,
                           const RouteTableEntry *e, Error **errp);

size_t route_table_size(const RouteTable *table);
const RouteTableEntry *route_table_entry(const RouteTable *table, size_t i);

/* Checks one spec on its own (range, masks); sets @errp naming @name. */
bool exit_route_spec_check(const ExitRouteSpec *spec, const char *name,
                           Error **errp);

/* Does @spec accept the platform event @a (type, address, fields)? */
static inline bool exit_route_spec_matches_event(const ExitRouteSpec *spec,
                                                 const ExitAccess *a)
{
    return spec->type == a->type && a->addr >= spec->start &&
           a->addr <= spec->last &&
           (!spec->source_mask || (spec->source_mask & (1u << a->source))) &&
           (!spec->class_mask || (spec->class_mask & (1u << a->class))) &&
           (!spec->has_cpu || (a->cpu >= 0 && (uint32_t)a->cpu == spec->cpu)) &&
           (!spec->has_bank || (a->bank >= 0 && a->bank == spec->bank)) &&
           (!spec->has_datamatch || a->data == spec->datamatch);
}

/* Does @spec accept @a (type, whole range, direction, size, data)? */
static inline bool exit_route_spec_matches(const ExitRouteSpec *spec,
                                           const ExitAccess *a)
{
    unsigned extent;

    if (exit_event_is_platform(a->type)) {
        return exit_route_spec_matches_event(spec, a);
    }
    /* Sizes 1, 2, 4, 8 are size_mask bits 0..3; anything else never. */
    if (spec->type != a->type || !is_power_of_2(a->size) || a->size > 8 ||
        !(spec->size_mask & a->size)) {
        return false;
    }
    /*
     * The whole access must lie in the route: [addr, addr + size - 1];
     * an MSR access covers one index, whatever its width.
     */
    extent = a->type == EXIT_EVENT_MSR ? 1 : a->size;
    if (a->addr < spec->start || a->addr > spec->last ||
        extent - 1 > spec->last - a->addr) {
        return false;
    }
    if (!(spec->dir_mask & (a->is_write ? EXIT_DIR_WRITE : EXIT_DIR_READ))) {
        return false;
    }
    return !spec->has_datamatch || (a->is_write && a->data == spec->datamatch);
}

/*
 * Positions @c on the candidates for @a; an empty or NULL @t gives no
 * candidates.  Port I/O: one load from the per-port index when the table
 * has one; otherwise a binary search over the table's disjoint segments
 * of the access's type.
 */
static inline void route_table_lookup(const RouteTable *t,
                                      const ExitAccess *a, RouteCursor *c)
{
    const RouteSegment *segs, *seg;
    uint32_t lo = 0, hi;

    *c = (RouteCursor) { .table = t };
    if (!t || a->type >= EXIT_EVENT__MAX) {
        return;
    }
    segs = t->segs[a->type];
    if (a->type == EXIT_EVENT_PIO && t->pio_seg) {
        if (a->addr >= ROUTE_TABLE_PIO_PORTS || !t->pio_seg[a->addr]) {
            return;
        }
        seg = &segs[t->pio_seg[a->addr] - 1];
    } else {
        hi = t->n_segs[a->type];
        /* Last segment whose start <= addr. */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;

            if (segs[mid].start <= a->addr) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo == 0 || a->addr > segs[lo - 1].last) {
            return;
        }
        seg = &segs[lo - 1];
    }
    c->cand = t->cand + seg->first;
    c->n = seg->n;
}

/* The next matching candidate, best first, or NULL when none is left. */
static inline const RouteTableEntry *route_cursor_next(RouteCursor *c,
                                                       const ExitAccess *a)
{
    while (c->i < c->n) {
        const RouteTableEntry *e = &c->table->entries[c->cand[c->i++]];

        if (exit_route_spec_matches(&e->spec, a)) {
            return e;
        }
    }
    return NULL;
}

const char *exit_event_type_name(ExitEventType type);
const char *exit_event_source_name(ExitPlatformSource source);
const char *exit_event_class_name(ExitErrorClass class);

#endif

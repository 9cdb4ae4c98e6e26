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

/* Kinds of exit a route can match. */
typedef enum ExitEventType {
    EXIT_EVENT_PIO,
    EXIT_EVENT_MMIO,
    EXIT_EVENT_MSR,
    EXIT_EVENT_INTERRUPT,       /* reserved for later handler kinds */
    EXIT_EVENT_EXCEPTION,       /* reserved */
    EXIT_EVENT_PLATFORM,        /* reserved */
    EXIT_EVENT__MAX,
} ExitEventType;

/* Direction mask bits. */
#define EXIT_DIR_READ   (1u << 0)
#define EXIT_DIR_WRITE  (1u << 1)
#define EXIT_DIR_ANY    (EXIT_DIR_READ | EXIT_DIR_WRITE)

/* Access-size mask: bit n set = accesses of 1 << n bytes (1, 2, 4, 8). */
#define EXIT_SIZE_ANY   0xfu

/* One access, as an accelerator reports it. */
typedef struct ExitAccess {
    ExitEventType type;
    uint64_t addr;              /* port, guest-physical address or MSR */
    unsigned size;              /* bytes: 1, 2, 4 or 8 */
    bool is_write;
    uint64_t data;              /* the value written (writes only) */
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

typedef struct RouteTable RouteTable;

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

/* Does @spec accept @access (type, whole range, direction, size, data)? */
bool exit_route_spec_matches(const ExitRouteSpec *spec,
                             const ExitAccess *access);

/*
 * Positions @cursor on the candidates for @access; an empty or NULL
 * @table gives no candidates.  O(log n): one binary search over the
 * table's disjoint segments of this event type.
 */
void route_table_lookup(const RouteTable *table, const ExitAccess *access,
                        RouteCursor *cursor);

/* The next matching candidate, best first, or NULL when none is left. */
const RouteTableEntry *route_cursor_next(RouteCursor *cursor,
                                         const ExitAccess *access);

const char *exit_event_type_name(ExitEventType type);

#endif

/*
 * qemu-tiers exit router: what its files share.  Not for use outside
 * accel/route/.
 *
 *   router-stats.c     per-route counters (ExitStats)
 *   router-publish.c   the published snapshot: build, publish, inline
 *                      handler registry, the miss filter, MSR filter sync
 *   router-dispatch.c  the hot path: exit_route_pio/mmio/msr()
 *   router-object.c    the exit-route QOM object and the router's start
 *   router-qmp.c       QMP commands and their HMP twins
 *
 * Locking (docs/locking.rst has the full table):
 *  - exit_router.current: the published snapshot.  Written only with the
 *    BQL held (route add/del, inline (un)registration), read by any
 *    thread inside rcu_read_lock().  Old snapshots are freed by call_rcu.
 *  - exit_router.routes, exit_router.inline_handlers, msr_ranges: BQL.
 *  - The miss filter (exit_route_filter, exit-router.h): written under
 *    the BQL by exit_router_publish() only, read by anyone without a
 *    lock (see router-publish.c for why that is safe).
 *  - ExitRoute properties: set before the route is published, immutable
 *    afterwards.
 *  - ExitRouteCpuStats: each slot is written by one thread only (its
 *    vCPU; the last slot by callers without a vCPU, under the BQL), with
 *    qatomic_set; readers sum with qatomic_read.  Reset moves a baseline
 *    instead of writing the slots, so it races with no writer.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_ROUTE_ROUTER_INTERNAL_H
#define ACCEL_ROUTE_ROUTER_INTERNAL_H

#include "qapi/qapi-types-exit-route.h"
#include "qemu/bitmap.h"
#include "qemu/host-utils.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "hw/core/cpu.h"
#include "accel/route/exit-router.h"
#include "accel/route/route-noexit.h"
#include "accel/route/external.h"

#define TYPE_EXIT_ROUTE "exit-route"
OBJECT_DECLARE_SIMPLE_TYPE(ExitRoute, EXIT_ROUTE)

/* ---- statistics (router-stats.c) ----------------------------------------- */

#define EXIT_STATS_SAMPLE_PERIOD 64     /* power of two */
/*
 * A device route's accesses take QEMU's own path, as unrouted ones do,
 * and are timed as rarely: two clock reads (~120 cycles) in 64 accesses
 * would cost each ~2 cycles, as much as the route itself (issue 17 item
 * 10, bench/RESULTS.md).
 */
#define EXIT_DEVICE_SAMPLE_PERIOD EXIT_UNROUTED_SAMPLE_PERIOD

typedef struct ExitRouteStatsSum {
    uint64_t count, declines, sampled_ns;
    uint64_t hist[EXIT_STATS_HIST_BUCKETS];
} ExitRouteStatsSum;

/* Counters of a route: per-thread slots plus the baseline of the last reset. */
typedef struct ExitStats {
    ExitRouteCpuStats *slots;
    unsigned n_slots;           /* max_cpus + 1: the last is for non-vCPU */
    unsigned sample_period;     /* a power of two */
    ExitRouteStatsSum base;     /* BQL */
    uint64_t absorbed;          /* BQL: writes taken by no-exit paths */
} ExitStats;

void exit_stats_init(ExitStats *st, unsigned sample_period);
void exit_stats_alloc(ExitStats *st);
void exit_stats_set_sample_period(ExitStats *st, unsigned sample_period);
void exit_stats_destroy(ExitStats *st);
void exit_stats_reset(ExitStats *st);
ExitRouteStats *exit_stats_info(const char *id, const ExitStats *st);

ExitRouteCpuStats *exit_stats_slot_find(ExitStats *st);

/* This thread's slot: its vCPU's, or the shared one under the BQL. */
static inline ExitRouteCpuStats *exit_stats_slot(ExitStats *st)
{
    int i = exit_stats_thread_slot;

    if (likely(i >= 0)) {
        return &st->slots[i];
    }
    return exit_stats_slot_find(st);
}

/*
 * Returns a start time when the next access is to be timed (one in the
 * stats' sample period), else 0.  Single writer per slot.
 */
static inline int64_t exit_stats_start(ExitRouteCpuStats *s)
{
    return (qatomic_read(&s->count) & s->sample_mask) ? 0 : get_clock();
}

/* Count a completed access, and its time if it was sampled. */
static inline void exit_stats_done(ExitRouteCpuStats *s, int64_t t0)
{
    uint64_t ns;
    int bucket;

    qatomic_set(&s->count, qatomic_read(&s->count) + 1);
    if (!t0) {
        return;
    }
    ns = MAX(get_clock() - t0, 1);
    bucket = MIN(63 - clz64(ns), EXIT_STATS_HIST_BUCKETS - 1);
    qatomic_set(&s->sampled_ns, qatomic_read(&s->sampled_ns) + ns);
    qatomic_set(&s->hist[bucket], qatomic_read(&s->hist[bucket]) + 1);
}

static inline void exit_stats_count_decline(ExitRouteCpuStats *s)
{
    qatomic_set(&s->declines, qatomic_read(&s->declines) + 1);
}

/* ---- routes (router-object.c) -------------------------------------------- */

struct ExitRoute {
    Object parent_obj;

    /*
     * Properties: the user's input as given (has_*: given at all), set
     * by the table-driven accessors, fixed once published.
     */
    ExitRouteEvent event;
    uint64_t start;
    uint64_t size;
    ExitRouteDirection direction;
    bool has_access_size;
    uint8_t access_size;
    bool has_datamatch;
    uint64_t datamatch;
    int32_t priority;
    ExitRouteHandler handler;
    char *inline_name;
    strList *handlers;
    bool has_policy;
    ExitRoutePolicy policy;
    bool has_fallback;
    ExitRouteFallback fallback;
    bool has_timeout_ms;
    uint32_t timeout_ms;
    bool has_posted_writes;
    bool posted_writes;
    bool has_start;
    bool has_size;
    bool has_handler;
    /* Platform events: */
    bool has_source;
    ExitEventSource source;
    bool has_class;
    ExitEventClass event_class;
    bool has_cpu;
    uint32_t cpu;
    bool has_bank;
    uint8_t bank;

    /* Made from them at complete: */
    ExitRouteSpec spec;
    char *id;                   /* the object's name */
    ExitHandlerPool *pool;      /* handler=external; freed at finalize */

    /* BQL */
    bool published;
    ExitNoExit *noexit;         /* KVM ioeventfds, if installed */

    ExitStats stats;
    /* Platform events, BQL: verdicts, and PLATFORM_EVENT's rate limit */
    uint64_t verdicts[EXIT_EVENT_VERDICT__MAX];
    double ev_tokens;
    int64_t ev_stamp_ns;
    uint64_t ev_unsent;
};

/* Count the writes the no-exit paths absorbed.  BQL. */
void exit_route_collect_noexit(ExitRoute *r);
/* The route called @id, or NULL.  BQL. */
ExitRoute *exit_route_find(const char *id);
/* For query-exit-routes.  BQL. */
ExitRouteInfo *exit_route_info(ExitRoute *r);

/* ---- the published table (router-publish.c) ------------------------------ */

/* An inline handler, as registered by a device of the kernel tier. */
typedef struct ExitInlineHandler {
    const ExitInlineOps *ops;
    void *opaque;
} ExitInlineHandler;

/* What a published snapshot stores per route. */
typedef struct ExitRouteSlot {
    ExitRoute *route;           /* referenced until the snapshot is freed */
    char *name;                 /* the route's id, for traces */
    ExitInlineHandler inl;      /* resolved at publication; ops may be NULL */
} ExitRouteSlot;

typedef ExitInlineResult ExitInlineAccessFn(void *opaque,
                                            const ExitAccess *access,
                                            uint64_t *data);

/*
 * The best route of a PIO segment, flattened at publication when it is
 * an inline or a device route, so that the access finds what to do in a
 * few dependent loads instead of walking segment, candidate list, entry,
 * slot and route (a perf profile of an inline port 0x80 write had that
 * walk at ~40 % of the access).  The kernel tier's ports, and device
 * routes that only count, are decided here; the walk runs only when the
 * best route does not match the access or declines it and the segment
 * has more candidates (@more), and then starts after the best.
 */
typedef struct ExitPioFast {
    ExitRouteSpec spec;
    ExitInlineAccessFn *access; /* inline: the handler; device: NULL */
    void *opaque;
    ExitStats *stats;           /* the route's */
    const char *name;           /* the slot's, for traces */
    bool valid;                 /* false: walk the table */
    bool more;                  /* the segment has other candidates */
} ExitPioFast;

typedef struct ExitRouterSnapshot {
    struct rcu_head rcu;
    RouteTable *table;
    ExitRouteSlot *slots;
    size_t n;
    /*
     * The table's per-port segment index (copied: one load less per
     * access), and an entry per PIO segment:
     */
    const uint16_t *pio_seg;
    ExitPioFast *pio_fast;
    /* What TCG's helpers decide inline (exit_route_pio_count_only()). */
    ExitPioCountMap *pio_count;
    /* What the miss filter must cover for this snapshot. */
    DECLARE_BITMAP(pio_map, 65536);
    uint64_t mmio_lo, mmio_hi;  /* lo > hi: no MMIO route */
    uint64_t msr_lo, msr_hi;
} ExitRouterSnapshot;

typedef struct ExitRouterState {
    ExitRouterSnapshot *current;        /* RCU; written under the BQL */
    GPtrArray *routes;                  /* ExitRoute *, in order added; BQL */
    GHashTable *inline_handlers;        /* name -> ExitInlineHandler; BQL */
    ExitStats unrouted_pio;             /* accesses no route matched */
    ExitStats unrouted_mmio;
    ExitStats unrouted_msr;
    ExitStats unrouted_events;          /* platform events: delivered */
    bool machine_ready;                 /* BQL: no-exit paths may go in */

    /* BQL: the MSR ranges the accelerator's filter sends to us */
    ExitMsrRange *msr_ranges;
    unsigned n_msr_ranges;
} ExitRouterState;

extern ExitRouterState exit_router;

void exit_router_init_globals(void);
/*
 * Build a snapshot of exit_router.routes, plus @extra (being added) or
 * without @without (being removed), and publish it; on a conflict or a
 * refusal of the accelerator nothing changes and false is returned.
 * BQL held.
 */
bool exit_router_publish(ExitRoute *extra, ExitRoute *without, Error **errp);
/* The inline handler registered as @name, or NULL.  BQL. */
const ExitInlineHandler *exit_router_find_inline(const char *name);

#endif

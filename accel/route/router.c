/*
 * qemu-tiers exit router: routes, the published table, dispatch of port
 * I/O exits, statistics and the QMP/HMP interface.
 *
 * Locking (docs/locking.rst has the full table):
 *  - exit_router.current: the published snapshot.  Written only with the
 *    BQL held (route add/del, inline (un)registration), read by any
 *    thread inside rcu_read_lock().  Old snapshots are freed by call_rcu.
 *  - exit_router.routes, exit_router.q_inlinehandlers: BQL.
 *  - ExitRoute configuration fields: set before the route is published,
 *    immutable afterwards.
 *  - ExitRouteCpuStats: each slot is written by one thread only (its
 *    vCPU; the last slot by callers without a vCPU, under the BQL), with
 *    qatomic_set; readers sum with qatomic_read.  Reset moves a baseline
 *    instead of writing the slots, so it races with no writer.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-exit-route.h"
#include "qapi/qapi-events-exit-route.h"
#include "qapi/qapi-visit-exit-route.h"
#include "qapi/qapi-visit-qom.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-builtin-visit.h"
#include "qapi/visitor.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qom/object_interfaces.h"
#include "hw/core/cpu.h"
#include "hw/boards.h"
#include "system/system.h"
#include "exec/address-spaces.h"
#include "exec/ioport.h"
#include "monitor/monitor.h"
#include "monitor/hmp.h"
#include "qobject/qdict.h"
#include "accel/route/exit-router.h"
#include "accel/route/route-noexit.h"
#include "accel/route/external.h"
#include "trace.h"

#define TYPE_EXIT_ROUTE "exit-route"
OBJECT_DECLARE_SIMPLE_TYPE(ExitRoute, EXIT_ROUTE)

#define EXIT_STATS_SAMPLE_PERIOD 64     /* power of two */
#define EXIT_STATS_HIST_BUCKETS  32

/* One thread's counters for one route, on cache lines of their own. */
typedef struct ExitRouteCpuStats {
    uint64_t count;
    uint64_t declines;
    uint64_t sampled_ns;
    uint64_t hist[EXIT_STATS_HIST_BUCKETS];
} QEMU_ALIGNED(64) ExitRouteCpuStats;

typedef struct ExitRouteStatsSum {
    uint64_t count, declines, sampled_ns;
    uint64_t hist[EXIT_STATS_HIST_BUCKETS];
} ExitRouteStatsSum;

/*
 * Counters of a route: per-thread slots plus the baseline of the last
 * reset.
 */
typedef struct ExitStats {
    ExitRouteCpuStats *slots;
    unsigned n_slots;           /* max_cpus + 1: the last is for non-vCPU */
    ExitRouteStatsSum base;     /* BQL */
    uint64_t absorbed;          /* BQL: writes taken by no-exit paths */
} ExitStats;

struct ExitRoute {
    Object parent_obj;

    /* Configuration: set by properties, immutable once published. */
    ExitRouteSpec spec;
    ExitRouteHandler handler;
    char *q_inlinename;
    bool has_access_size;
    uint8_t access_size;
    uint64_t size;
    char *id;                   /* the object's name, set at complete */
    bool published;
    ExitNoExit *noexit;         /* BQL: KVM ioeventfds, if installed */
    /* handler=external */
    strList *handlers;
    ExitRoutePolicy policy;
    ExitRouteFallback fallback;
    uint32_t timeout_ms;
    bool posted_writes;
    ExitHandlerPool *pool;      /* built at complete, freed at finalize */

    ExitStats stats;
};

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

/*
 * A PIO segment that one inline route covers alone (each of the kernel
 * tier's ports), flattened at publication: the access finds its handler
 * in a few dependent loads instead of walking segment, candidate list,
 * entry, slot and route (a perf profile of an inline port 0x80 write had
 * that walk at ~40 % of the access).
 */
typedef ExitInlineResult ExitInlineAccessFn(void *opaque,
                                            const ExitAccess *access,
                                            uint64_t *data);

typedef struct ExitPioFast {
    ExitRouteSpec spec;
    ExitInlineAccessFn *access;     /* NULL: walk the table */
    void *opaque;
    ExitStats *stats;           /* the route's */
    const char *name;           /* the slot's, for traces */
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
    /*
     * Quick rejection of misses, the common case: a bit per port that
     * some PIO route covers, and the span of the MMIO routes.
     */
    DECLARE_BITMAP(pio_map, 65536);
    uint64_t mmio_lo, mmio_hi;  /* lo > hi: no MMIO route */
    uint64_t msr_lo, msr_hi;
} ExitRouterSnapshot;

/* MSR routes that need an exit under KVM, at most (KVM has 16 in all). */
#define EXIT_MSR_RANGES_MAX 16

static struct {
    ExitRouterSnapshot *current;        /* RCU; written under the BQL */
    GPtrArray *routes;                  /* ExitRoute *, in order added; BQL */
    GHashTable *q_inlinehandlers;        /* name -> ExitInlineHandler; BQL */
    ExitStats unrouted_pio;             /* accesses no route matched */
    ExitStats unrouted_mmio;
    ExitStats unrouted_msr;
    bool machine_ready;                 /* BQL: no-exit paths may go in */
    Notifier machine_init_done;

    /*
     * Miss filter, read without RCU on every access: a bit per port that
     * some published PIO route covers, and the span of MMIO routes.
     * Written only in exit_router_publish() (BQL): widened before a new
     * snapshot is published and narrowed to it afterwards, so a reader
     * that finds no bit (or an address outside the span) is right about
     * the table current at that instant, and a reader that finds one
     * looks the access up in whatever table is current.
     */
    unsigned long pio_filter[BITS_TO_LONGS(65536)];
    uint64_t mmio_lo, mmio_hi;          /* lo > hi: none */
    uint64_t msr_lo, msr_hi;

    /* BQL: the MSR ranges KVM's filter sends to userspace for us */
    ExitMsrRange msr_ranges[EXIT_MSR_RANGES_MAX];
    int n_msr_ranges;
} exit_router = {
    .mmio_lo = UINT64_MAX,
    .msr_lo = UINT64_MAX,
};

/* ---- statistics --------------------------------------------------------- */

/*
 * One slot per possible vCPU, plus one.  -object routes are created
 * before -smp is applied to the machine, so the slots are allocated once
 * the machine is ready (nothing dispatches before).
 */
static void exit_stats_alloc(ExitStats *st)
{
    if (st->slots || !exit_router.machine_ready) {
        return;
    }
    st->n_slots = MAX(current_machine->smp.max_cpus, 1) + 1;
    st->slots = qemu_memalign(64, st->n_slots * sizeof(ExitRouteCpuStats));
    memset(st->slots, 0, st->n_slots * sizeof(ExitRouteCpuStats));
}

static void exit_stats_init(ExitStats *st)
{
    memset(st, 0, sizeof(*st));
    exit_stats_alloc(st);
}

static void exit_stats_destroy(ExitStats *st)
{
    qemu_vfree(st->slots);
    st->slots = NULL;
}

/* This thread's slot: its vCPU's, or the shared one under the BQL. */
static inline ExitRouteCpuStats *exit_stats_slot(ExitStats *st)
{
    assert(st->slots);
    if (current_cpu && current_cpu->cpu_index < st->n_slots - 1) {
        return &st->slots[current_cpu->cpu_index];
    }
    assert(bql_locked());
    return &st->slots[st->n_slots - 1];
}

/*
 * Returns a start time when the next access is to be timed (one in
 * EXIT_STATS_SAMPLE_PERIOD), else 0.  Single writer per slot.
 */
static inline int64_t exit_stats_start(ExitRouteCpuStats *s)
{
    return (qatomic_read(&s->count) & (EXIT_STATS_SAMPLE_PERIOD - 1)) ?
           0 : get_clock();
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

static void exit_stats_count_decline(ExitStats *st)
{
    ExitRouteCpuStats *s = exit_stats_slot(st);

    qatomic_set(&s->declines, qatomic_read(&s->declines) + 1);
}

static void exit_stats_sum(const ExitStats *st, ExitRouteStatsSum *sum)
{
    unsigned i, b;

    memset(sum, 0, sizeof(*sum));
    sum->count = st->absorbed;
    for (i = 0; i < st->n_slots; i++) {
        const ExitRouteCpuStats *s = &st->slots[i];

        sum->count += qatomic_read(&s->count);
        sum->declines += qatomic_read(&s->declines);
        sum->sampled_ns += qatomic_read(&s->sampled_ns);
        for (b = 0; b < EXIT_STATS_HIST_BUCKETS; b++) {
            sum->hist[b] += qatomic_read(&s->hist[b]);
        }
    }
}

/* ---- the published table ------------------------------------------------ */

static void exit_router_snapshot_free(ExitRouterSnapshot *snap)
{
    size_t i;

    for (i = 0; i < snap->n; i++) {
        object_unref(OBJECT(snap->slots[i].route));
        g_free(snap->slots[i].name);
    }
    route_table_free(snap->table);
    g_free(snap->pio_fast);
    g_free(snap->slots);
    g_free(snap);
}

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

        if (seg->n != 1) {
            continue;
        }
        e = &t->entries[t->cand[seg->first]];
        slot = e->opaque;
        if (slot->route->handler != EXIT_ROUTE_HANDLER_INLINE ||
            !slot->inl.ops) {
            continue;
        }
        snap->pio_fast[i] = (ExitPioFast) {
            .spec = e->spec,
            .access = slot->inl.ops->access,
            .opaque = slot->inl.opaque,
            .stats = &slot->route->stats,
            .name = slot->name,
        };
    }
}

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

/*
 * Under KVM an MSR access reaches userspace only if KVM's MSR filter
 * sends it there: ask for the MSR routes whose handler is not "device"
 * (a device route needs no exit: the kernel's handling is the device
 * path).  Done before the snapshot is published, so that a refusal (KVM
 * has 16 filter ranges, shared with QEMU's own) changes nothing.  BQL.
 */
static bool exit_router_msr_sync(const ExitRouterSnapshot *snap,
                                 Error **errp)
{
    ExitMsrRange ranges[EXIT_MSR_RANGES_MAX];
    int n = 0, ret;
    size_t i;

    for (i = 0; i < snap->n; i++) {
        const ExitRoute *r = snap->slots[i].route;

        if (r->spec.type != EXIT_EVENT_MSR ||
            r->handler == EXIT_ROUTE_HANDLER_DEVICE) {
            continue;
        }
        if (n == EXIT_MSR_RANGES_MAX) {
            error_setg(errp, "exit route '%s': too many MSR routes (at most "
                       "%d need an MSR filter range)", r->id,
                       EXIT_MSR_RANGES_MAX);
            return false;
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
    ret = exit_noexit_msr_filter(ranges, n);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "the accelerator refused the MSR "
                         "filter for %d MSR route(s)", n);
        return false;
    }
    memcpy(exit_router.msr_ranges, ranges, n * sizeof(ranges[0]));
    exit_router.n_msr_ranges = n;
    return true;
}

/*
 * Widen the miss filter to also cover @snap (@widen), or set it to
 * exactly @snap.  BQL.
 */
static void exit_router_filter_update(const ExitRouterSnapshot *snap,
                                      bool widen)
{
    size_t i;

    for (i = 0; i < BITS_TO_LONGS(65536); i++) {
        unsigned long w = snap->pio_map[i];

        if (widen) {
            w |= exit_router.pio_filter[i];
        }
        qatomic_set(&exit_router.pio_filter[i], w);
    }
    qatomic_set(&exit_router.mmio_lo, widen ?
                MIN(exit_router.mmio_lo, snap->mmio_lo) : snap->mmio_lo);
    qatomic_set(&exit_router.mmio_hi, widen ?
                MAX(exit_router.mmio_hi, snap->mmio_hi) : snap->mmio_hi);
    qatomic_set(&exit_router.msr_lo, widen ?
                MIN(exit_router.msr_lo, snap->msr_lo) : snap->msr_lo);
    qatomic_set(&exit_router.msr_hi, widen ?
                MAX(exit_router.msr_hi, snap->msr_hi) : snap->msr_hi);
}

/*
 * Build a snapshot of @routes (plus @extra, when adding) and publish it;
 * on a conflict nothing changes.  BQL held.
 */
static bool exit_router_publish(GPtrArray *routes, ExitRoute *extra,
                                ExitRoute *without, Error **errp)
{
    g_autofree RouteTableEntry *entries = NULL;
    ExitRouterSnapshot *snap, *old;
    size_t n = 0, i;
    RouteTable *table;

    assert(bql_locked());
    if (!exit_router.machine_ready) {
        /*
         * Before the machine is ready nothing dispatches, and -object
         * may create thousands of routes: check the new one in O(n) and
         * build the table once, at machine-init-done.
         */
        return !extra || exit_router_check_new(routes, extra, errp);
    }
    entries = g_new0(RouteTableEntry, routes->len + 1);
    snap = g_new0(ExitRouterSnapshot, 1);
    snap->slots = g_new0(ExitRouteSlot, routes->len + 1);
    for (i = 0; i <= routes->len; i++) {
        ExitRoute *r = i < routes->len ? g_ptr_array_index(routes, i) : extra;

        if (!r || r == without) {
            continue;
        }
        snap->slots[n].route = r;
        snap->slots[n].name = g_strdup(r->id);
        entries[n] = (RouteTableEntry) {
            .spec = r->spec,
            .name = snap->slots[n].name,
            .opaque = &snap->slots[n],
        };
        if (r->handler == EXIT_ROUTE_HANDLER_INLINE) {
            ExitInlineHandler *h = g_hash_table_lookup(
                exit_router.q_inlinehandlers, r->q_inlinename);

            if (h) {
                snap->slots[n].inl = *h;
            }
        }
        n++;
    }
    table = route_table_build(entries, n, errp);
    if (!table) {
        for (i = 0; i < n; i++) {
            g_free(snap->slots[i].name);
        }
        g_free(snap->slots);
        g_free(snap);
        return false;
    }
    snap->n = n;
    if (!exit_router_msr_sync(snap, errp)) {
        route_table_free(table);
        for (i = 0; i < n; i++) {
            g_free(snap->slots[i].name);
        }
        g_free(snap->slots);
        g_free(snap);
        return false;
    }
    snap->mmio_lo = UINT64_MAX;
    snap->msr_lo = UINT64_MAX;
    for (i = 0; i < n; i++) {
        const ExitRouteSpec *sp = &snap->slots[i].route->spec;

        object_ref(OBJECT(snap->slots[i].route));
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
    snap->table = table;
    snap->n = n;
    exit_router_pio_fast_build(snap);
    old = exit_router.current;
    exit_router_filter_update(snap, true);
    qatomic_rcu_set(&exit_router.current, n ? snap : NULL);
    exit_router_filter_update(snap, false);
    if (!n) {
        exit_router_snapshot_free(snap);
    }
    if (old) {
        call_rcu(old, exit_router_snapshot_free, rcu);
    }
    trace_exit_route_table_publish(n);
    return true;
}

static void exit_router_init_globals(void)
{
    if (!exit_router.routes) {
        exit_router.routes = g_ptr_array_new();
        exit_router.q_inlinehandlers = g_hash_table_new_full(
            g_str_hash, g_str_equal, g_free, g_free);
        exit_stats_init(&exit_router.unrouted_pio);
        exit_stats_init(&exit_router.unrouted_mmio);
        exit_stats_init(&exit_router.unrouted_msr);
    }
}

void exit_router_register_inline(const char *name, const ExitInlineOps *ops,
                                 void *opaque)
{
    ExitInlineHandler *h = g_new(ExitInlineHandler, 1);

    exit_router_init_globals();
    *h = (ExitInlineHandler) { .ops = ops, .opaque = opaque };
    g_hash_table_replace(exit_router.q_inlinehandlers, g_strdup(name), h);
    /* Routes already naming it start using it; cannot conflict anew. */
    exit_router_publish(exit_router.routes, NULL, NULL, &error_abort);
}

void exit_router_unregister_inline(const char *name)
{
    exit_router_init_globals();
    g_hash_table_remove(exit_router.q_inlinehandlers, name);
    exit_router_publish(exit_router.routes, NULL, NULL, &error_abort);
}

/* ---- dispatch ----------------------------------------------------------- */

/* One access on the device path each caller used before the router. */
static uint32_t pio_device_read(ExitPioPath path, uint16_t port,
                                MemTxAttrs attrs, unsigned size)
{
    AddressSpace *as = &address_space_io;
    uint8_t buf[8];

    switch (path) {
    case EXIT_PIO_PATH_RW:
        address_space_rw(as, port, attrs, buf, size, false);
        return ldn_he_p(buf, size);
    case EXIT_PIO_PATH_LDST:
        /* x86's I/O space is little-endian: the _le forms. */
        return size == 1 ? address_space_ldub(as, port, attrs, NULL) :
               size == 2 ? address_space_lduw_le(as, port, attrs, NULL) :
               address_space_ldl_le(as, port, attrs, NULL);
    case EXIT_PIO_PATH_CPU_IO:
    default:
        return size == 1 ? cpu_inb(port) :
               size == 2 ? cpu_inw(port) : cpu_inl(port);
    }
}

static void pio_device_write(ExitPioPath path, uint16_t port,
                             MemTxAttrs attrs, uint32_t val, unsigned size)
{
    AddressSpace *as = &address_space_io;
    uint8_t buf[8];

    switch (path) {
    case EXIT_PIO_PATH_RW:
        stn_he_p(buf, size, val);
        address_space_rw(as, port, attrs, buf, size, true);
        break;
    case EXIT_PIO_PATH_LDST:
        if (size == 1) {
            address_space_stb(as, port, val, attrs, NULL);
        } else if (size == 2) {
            address_space_stw_le(as, port, val, attrs, NULL);
        } else {
            address_space_stl_le(as, port, val, attrs, NULL);
        }
        break;
    case EXIT_PIO_PATH_CPU_IO:
    default:
        if (size == 1) {
            cpu_outb(port, val);
        } else if (size == 2) {
            cpu_outw(port, val);
        } else {
            cpu_outl(port, val);
        }
        break;
    }
}

static void pio_device(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                       uint8_t *ptr, unsigned size, bool is_write,
                       uint32_t count)
{
    uint32_t i;

    for (i = 0; i < count; i++, ptr += size) {
        if (is_write) {
            pio_device_write(path, port, attrs, ldn_he_p(ptr, size), size);
        } else {
            stn_he_p(ptr, size, pio_device_read(path, port, attrs, size));
        }
    }
}

/*
 * Walks the routes that match @a, best first.  Returns true when a
 * handler completed the access (*val holds a read's value: all-ones for
 * ignore); false when it goes to the device model, with *dev_stats set
 * to the counters to charge: the device route's, or @unrouted.
 * @count > 1 is a rep batch, which inline handlers never see.
 */
/* Might a published route match this access?  No lock (see above). */
static inline bool exit_route_maybe_pio(uint16_t port)
{
    return qatomic_read(&exit_router.pio_filter[BIT_WORD(port)]) &
           BIT_MASK(port);
}

static inline bool exit_route_maybe_mmio(uint64_t addr)
{
    return addr >= qatomic_read(&exit_router.mmio_lo) &&
           addr <= qatomic_read(&exit_router.mmio_hi);
}

/*
 * Offers @a to an inline handler, counted in @stats (@s: this thread's
 * slot of them).  False if it declined, which it does before changing
 * any state: the access goes on to the next route.
 */
static inline QEMU_ALWAYS_INLINE bool
exit_route_run_inline(ExitInlineAccessFn *access, void *opaque,
                      ExitStats *stats, ExitRouteCpuStats *s,
                      const char *name, const ExitAccess *a, uint64_t *val)
{
    int64_t t0;

    /* Inline handlers never run under the BQL on a vCPU. */
    assert(!current_cpu || !bql_locked());
    t0 = exit_stats_start(s);
    if (access(opaque, a, val) == EXIT_INLINE_DECLINE) {
        exit_stats_count_decline(stats);
        trace_exit_route_decline(name, a->addr, a->size);
        return false;
    }
    exit_stats_done(s, t0);
    return true;
}

/*
 * The inline route that alone covers @a's port (ExitPioFast): the same
 * decision as the walk below makes for a one-candidate segment.
 */
static inline QEMU_ALWAYS_INLINE bool
exit_route_pio_fast(const ExitPioFast *f, const ExitAccess *a, uint64_t *val)
{
    return exit_route_spec_matches(&f->spec, a) &&
           exit_route_run_inline(f->access, f->opaque, f->stats,
                                 exit_stats_slot(f->stats), f->name, a, val);
}

static inline QEMU_ALWAYS_INLINE bool
exit_route_decide(const ExitAccess *a, uint32_t count,
                              uint64_t *val, ExitStats *unrouted,
                              ExitStats **dev_stats)
{
    ExitRouterSnapshot *snap = qatomic_rcu_read(&exit_router.current);
    const RouteTableEntry *e;
    ExitRouteCpuStats *s;
    RouteCursor c;
    int64_t t0;

    *dev_stats = unrouted;
    if (!snap) {
        return false;
    }
    if (a->type == EXIT_EVENT_PIO && count == 1 && snap->pio_fast &&
        a->addr < ROUTE_TABLE_PIO_PORTS) {
        uint16_t seg = snap->pio_seg[a->addr];

        if (seg && snap->pio_fast[seg - 1].access) {
            return exit_route_pio_fast(&snap->pio_fast[seg - 1], a, val);
        }
    }
    route_table_lookup(snap->table, a, &c);
    while ((e = route_cursor_next(&c, a))) {
        const ExitRouteSlot *slot = e->opaque;
        ExitRoute *r = slot->route;

        s = exit_stats_slot(&r->stats);
        switch (r->handler) {
        case EXIT_ROUTE_HANDLER_LOG:
            exit_stats_done(s, 0);
            trace_exit_route_log(e->name, exit_event_type_name(a->type),
                                 a->is_write ? "write" : "read", a->addr,
                                 a->size, a->data);
            continue;
        case EXIT_ROUTE_HANDLER_INLINE:
            /* Single accesses only: a rep batch is never split. */
            if (count != 1 || !slot->inl.ops ||
                !exit_route_run_inline(slot->inl.ops->access,
                                       slot->inl.opaque, &r->stats, s,
                                       e->name, a, val)) {
                continue;
            }
            return true;
        case EXIT_ROUTE_HANDLER_EXTERNAL:
            /* A rep batch is never split: it takes the fallback. */
            t0 = exit_stats_start(s);
            if (count == 1 && exit_handler_pool_access(r->pool, a, val)) {
                exit_stats_done(s, t0);
                return true;
            }
            if (exit_handler_pool_take_fallback(r->pool) ==
                EXIT_ROUTE_FALLBACK_IGNORE) {
                exit_stats_done(s, t0);
                *val = MAKE_64BIT_MASK(0, a->size * 8);
                return true;
            }
            *dev_stats = &r->stats;
            return false;
        case EXIT_ROUTE_HANDLER_IGNORE:
            exit_stats_done(s, 0);
            *val = MAKE_64BIT_MASK(0, a->size * 8);
            return true;
        case EXIT_ROUTE_HANDLER_DEVICE:
        default:
            *dev_stats = &r->stats;
            return false;
        }
    }
    return false;
}

/*
 * Every port access ends in one of these two when no handler completed
 * it: the device path, counted (and one in EXIT_STATS_SAMPLE_PERIOD
 * timed) against @st.  @st is a route's (the caller holds the RCU read
 * lock) or an unrouted pseudo route's (never freed).
 */
static inline uint32_t pio_read_counted(ExitStats *st, ExitPioPath path,
                                        uint16_t port, MemTxAttrs attrs,
                                        unsigned size)
{
    ExitRouteCpuStats *s = exit_stats_slot(st);
    int64_t t0 = exit_stats_start(s);
    uint32_t v = pio_device_read(path, port, attrs, size);

    exit_stats_done(s, t0);
    return v;
}

static inline void pio_write_counted(ExitStats *st, ExitPioPath path,
                                     uint16_t port, MemTxAttrs attrs,
                                     uint32_t val, unsigned size)
{
    ExitRouteCpuStats *s = exit_stats_slot(st);
    int64_t t0 = exit_stats_start(s);

    pio_device_write(path, port, attrs, val, size);
    exit_stats_done(s, t0);
}

void exit_route_pio(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                    void *data, unsigned size, bool is_write, uint32_t count)
{
    ExitAccess a = {
        .type = EXIT_EVENT_PIO, .addr = port, .size = size,
        .is_write = is_write, .data = is_write ? ldn_he_p(data, size) : 0,
    };
    ExitStats *dev_stats = &exit_router.unrouted_pio;
    ExitRouteCpuStats *s;
    uint64_t val = 0;
    uint32_t i;
    int64_t t0;

    RCU_READ_LOCK_GUARD();
    if (exit_route_maybe_pio(port) &&
        exit_route_decide(&a, count, &val, &exit_router.unrouted_pio,
                          &dev_stats)) {
        for (i = 0; !is_write && i < count; i++) {
            stn_he_p((uint8_t *)data + i * size, size, val);
        }
        return;
    }
    s = exit_stats_slot(dev_stats);
    t0 = exit_stats_start(s);
    pio_device(path, port, attrs, data, size, is_write, count);
    exit_stats_done(s, t0);
}

bool exit_route_mmio(uint64_t addr, unsigned size, bool is_write,
                     uint64_t *data)
{
    ExitAccess a = {
        .type = EXIT_EVENT_MMIO, .addr = addr, .size = size,
        .is_write = is_write, .data = is_write ? *data : 0,
    };
    ExitStats *dev_stats;
    uint64_t val = 0;

    if (!exit_route_maybe_mmio(addr) ||
        (size != 1 && size != 2 && size != 4 && size != 8)) {
        /* A piece of a page-crossing access: the device model's. */
        exit_stats_done(exit_stats_slot(&exit_router.unrouted_mmio), 0);
        return false;
    }
    RCU_READ_LOCK_GUARD();
    if (exit_route_decide(&a, 1, &val, &exit_router.unrouted_mmio,
                          &dev_stats)) {
        if (!is_write) {
            *data = val;
        }
        return true;
    }
    /* The caller runs its device path; it is counted, not timed. */
    exit_stats_done(exit_stats_slot(dev_stats), 0);
    return false;
}

bool exit_route_msr(uint32_t msr, bool is_write, uint64_t *data)
{
    ExitAccess a = {
        .type = EXIT_EVENT_MSR, .addr = msr, .size = 8,
        .is_write = is_write, .data = is_write ? *data : 0,
    };
    ExitStats *dev_stats;
    uint64_t val = 0;

    if (msr < qatomic_read(&exit_router.msr_lo) ||
        msr > qatomic_read(&exit_router.msr_hi)) {
        exit_stats_done(exit_stats_slot(&exit_router.unrouted_msr), 0);
        return false;
    }
    RCU_READ_LOCK_GUARD();
    if (exit_route_decide(&a, 1, &val, &exit_router.unrouted_msr,
                          &dev_stats)) {
        if (!is_write) {
            *data = val;
        }
        return true;
    }
    exit_stats_done(exit_stats_slot(dev_stats), 0);
    return false;
}

/*
 * The single-access forms, called in an RCU read-side section.  TCG's
 * port helpers (EXIT_PIO_PATH_LDST) always run inside cpu_exec()'s,
 * which keeps the snapshot alive for them: they skip a nested lock (two
 * out-of-line TLS lookups per access).  KVM and qtest take one.
 */
static inline QEMU_ALWAYS_INLINE uint32_t
exit_route_pio_read_rcu(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                        unsigned size)
{
    ExitAccess a = {
        .type = EXIT_EVENT_PIO, .addr = port, .size = size,
    };
    ExitStats *dev_stats;
    uint64_t val = 0;

    if (exit_route_decide(&a, 1, &val, &exit_router.unrouted_pio,
                          &dev_stats)) {
        return val;
    }
    return pio_read_counted(dev_stats, path, port, attrs, size);
}

static inline QEMU_ALWAYS_INLINE void
exit_route_pio_write_rcu(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                         uint32_t val, unsigned size)
{
    ExitAccess a = {
        .type = EXIT_EVENT_PIO, .addr = port, .size = size,
        .is_write = true, .data = val,
    };
    ExitStats *dev_stats;
    uint64_t unused;

    if (exit_route_decide(&a, 1, &unused, &exit_router.unrouted_pio,
                          &dev_stats)) {
        return;
    }
    pio_write_counted(dev_stats, path, port, attrs, val, size);
}

/* A miss in the filter (the common case) takes no lock at all. */
uint32_t exit_route_pio_read(ExitPioPath path, uint16_t port,
                             MemTxAttrs attrs, unsigned size)
{
    if (likely(!exit_route_maybe_pio(port))) {
        return pio_read_counted(&exit_router.unrouted_pio, path, port, attrs,
                                size);
    }
    if (path == EXIT_PIO_PATH_LDST) {
        return exit_route_pio_read_rcu(path, port, attrs, size);
    }
    RCU_READ_LOCK_GUARD();
    return exit_route_pio_read_rcu(path, port, attrs, size);
}

void exit_route_pio_write(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                          uint32_t val, unsigned size)
{
    if (likely(!exit_route_maybe_pio(port))) {
        pio_write_counted(&exit_router.unrouted_pio, path, port, attrs, val,
                          size);
        return;
    }
    if (path == EXIT_PIO_PATH_LDST) {
        exit_route_pio_write_rcu(path, port, attrs, val, size);
        return;
    }
    RCU_READ_LOCK_GUARD();
    exit_route_pio_write_rcu(path, port, attrs, val, size);
}

bool exit_route_mmio_buf(uint64_t addr, void *buf, unsigned len,
                         bool is_write)
{
    uint64_t val;

    if (len != 1 && len != 2 && len != 4 && len != 8) {
        return false;
    }
    val = is_write ? ldn_le_p(buf, len) : 0;
    if (!exit_route_mmio(addr, len, is_write, &val)) {
        return false;
    }
    if (!is_write) {
        stn_le_p(buf, len, val);
    }
    return true;
}

/* ---- the exit-route object ---------------------------------------------- */

/* Properties are fixed once the route is in the table. */
static bool exit_route_check_unpublished(ExitRoute *r, const char *prop,
                                         Error **errp)
{
    if (r->published) {
        error_setg(errp, "exit route '%s' is in use: property '%s' cannot "
                   "change (delete and add it again)", r->id, prop);
        return false;
    }
    return true;
}

static void exit_route_get_u64(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    uint64_t *field = (uint64_t *)((char *)obj + (uintptr_t)opaque);

    visit_type_uint64(v, name, field, errp);
}

static void exit_route_set_u64(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);
    uint64_t *field = (uint64_t *)((char *)obj + (uintptr_t)opaque);

    if (!exit_route_check_unpublished(r, name, errp)) {
        return;
    }
    visit_type_uint64(v, name, field, errp);
}

static void exit_route_set_datamatch(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (!exit_route_check_unpublished(r, name, errp) ||
        !visit_type_uint64(v, name, &r->spec.datamatch, errp)) {
        return;
    }
    r->spec.has_datamatch = true;
}

static void exit_route_get_priority(Object *obj, Visitor *v,
                                    const char *name, void *opaque,
                                    Error **errp)
{
    visit_type_int32(v, name, &EXIT_ROUTE(obj)->spec.priority, errp);
}

static void exit_route_set_priority(Object *obj, Visitor *v,
                                    const char *name, void *opaque,
                                    Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (!exit_route_check_unpublished(r, name, errp)) {
        return;
    }
    visit_type_int32(v, name, &r->spec.priority, errp);
}

static void exit_route_get_access_size(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    visit_type_uint8(v, name, &EXIT_ROUTE(obj)->access_size, errp);
}

static void exit_route_set_access_size(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);
    uint8_t size;

    if (!exit_route_check_unpublished(r, name, errp) ||
        !visit_type_uint8(v, name, &size, errp)) {
        return;
    }
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        error_setg(errp, "exit route property 'access-size' must be 1, 2, 4 "
                   "or 8, not %u", size);
        return;
    }
    r->access_size = size;
    r->has_access_size = true;
}

static int exit_route_get_event(Object *obj, Error **errp)
{
    switch (EXIT_ROUTE(obj)->spec.type) {
    case EXIT_EVENT_MMIO:
        return EXIT_ROUTE_EVENT_MMIO;
    case EXIT_EVENT_MSR:
        return EXIT_ROUTE_EVENT_MSR;
    default:
        return EXIT_ROUTE_EVENT_PIO;
    }
}

static void exit_route_set_event(Object *obj, int value, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (!exit_route_check_unpublished(r, "event", errp)) {
        return;
    }
    r->spec.type = value == EXIT_ROUTE_EVENT_MMIO ? EXIT_EVENT_MMIO :
                   value == EXIT_ROUTE_EVENT_MSR ? EXIT_EVENT_MSR :
                   EXIT_EVENT_PIO;
}

static int exit_route_get_direction(Object *obj, Error **errp)
{
    switch (EXIT_ROUTE(obj)->spec.dir_mask) {
    case EXIT_DIR_READ:
        return EXIT_ROUTE_DIRECTION_READ;
    case EXIT_DIR_WRITE:
        return EXIT_ROUTE_DIRECTION_WRITE;
    default:
        return EXIT_ROUTE_DIRECTION_ANY;
    }
}

static void exit_route_set_direction(Object *obj, int value, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (!exit_route_check_unpublished(r, "direction", errp)) {
        return;
    }
    r->spec.dir_mask = value == EXIT_ROUTE_DIRECTION_READ ? EXIT_DIR_READ :
                       value == EXIT_ROUTE_DIRECTION_WRITE ? EXIT_DIR_WRITE :
                       EXIT_DIR_ANY;
}

static int exit_route_get_handler(Object *obj, Error **errp)
{
    return EXIT_ROUTE(obj)->handler;
}

static void exit_route_set_handler(Object *obj, int value, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (!exit_route_check_unpublished(r, "handler", errp)) {
        return;
    }
    r->handler = value;
}

static char *exit_route_get_inline(Object *obj, Error **errp)
{
    return g_strdup(EXIT_ROUTE(obj)->q_inlinename);
}

static void exit_route_set_inline(Object *obj, const char *value,
                                  Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (!exit_route_check_unpublished(r, "inline", errp)) {
        return;
    }
    g_free(r->q_inlinename);
    r->q_inlinename = g_strdup(value);
}

static void exit_route_get_handlers(Object *obj, Visitor *v,
                                    const char *name, void *opaque,
                                    Error **errp)
{
    strList *list = QAPI_CLONE(strList, EXIT_ROUTE(obj)->handlers);

    visit_type_strList(v, name, &list, errp);
    qapi_free_strList(list);
}

static void exit_route_set_handlers(Object *obj, Visitor *v,
                                    const char *name, void *opaque,
                                    Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);
    strList *list = NULL;

    if (!exit_route_check_unpublished(r, name, errp) ||
        !visit_type_strList(v, name, &list, errp)) {
        return;
    }
    qapi_free_strList(r->handlers);
    r->handlers = list;
}

static int exit_route_get_policy(Object *obj, Error **errp)
{
    return EXIT_ROUTE(obj)->policy;
}

static void exit_route_set_policy(Object *obj, int value, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (exit_route_check_unpublished(r, "policy", errp)) {
        r->policy = value;
    }
}

static int exit_route_get_fallback(Object *obj, Error **errp)
{
    return EXIT_ROUTE(obj)->fallback;
}

static void exit_route_set_fallback(Object *obj, int value, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (exit_route_check_unpublished(r, "fallback", errp)) {
        r->fallback = value;
    }
}

static void exit_route_get_timeout(Object *obj, Visitor *v,
                                   const char *name, void *opaque,
                                   Error **errp)
{
    visit_type_uint32(v, name, &EXIT_ROUTE(obj)->timeout_ms, errp);
}

static void exit_route_set_timeout(Object *obj, Visitor *v,
                                   const char *name, void *opaque,
                                   Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);
    uint32_t value;

    if (!exit_route_check_unpublished(r, name, errp) ||
        !visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    r->timeout_ms = value;
}

static bool exit_route_get_posted(Object *obj, Error **errp)
{
    return EXIT_ROUTE(obj)->posted_writes;
}

static void exit_route_set_posted(Object *obj, bool value, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    if (exit_route_check_unpublished(r, "posted-writes", errp)) {
        r->posted_writes = value;
    }
}

/*
 * Writes to ignore need no answer: under KVM they need not leave the
 * kernel.  Installed after the route is in the table, so that until then
 * the ignore handler serves them the same way; and only once the machine
 * is ready, since -object routes exist before the accelerator.  BQL.
 */
static void exit_route_try_noexit(ExitRoute *r)
{
    if (r->handler == EXIT_ROUTE_HANDLER_IGNORE && r->published &&
        !r->noexit && exit_router.machine_ready) {
        r->noexit = exit_noexit_install(&r->spec, r->has_access_size ?
                                        r->access_size : 0);
    }
}

static void exit_router_machine_init_done(Notifier *n, void *data)
{
    guint i;

    exit_router.machine_ready = true;
    exit_router_init_globals();
    exit_stats_alloc(&exit_router.unrouted_pio);
    exit_stats_alloc(&exit_router.unrouted_mmio);
    exit_stats_alloc(&exit_router.unrouted_msr);
    for (i = 0; i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);

        exit_stats_alloc(&r->stats);
    }
    /*
     * Every route was checked when it was added; what can still fail is
     * the accelerator's MSR filter, which did not exist then.
     */
    exit_router_publish(exit_router.routes, NULL, NULL, &error_fatal);
    for (i = 0; exit_router.routes && i < exit_router.routes->len; i++) {
        exit_route_try_noexit(g_ptr_array_index(exit_router.routes, i));
    }
}

static void exit_route_complete(UserCreatable *uc, Error **errp)
{
    ExitRoute *r = EXIT_ROUTE(uc);
    const char *id;

    exit_router_init_globals();
    g_free(r->id);
    r->id = g_strdup(object_get_canonical_path_component(OBJECT(r)));
    id = r->id;
    if (r->spec.type >= EXIT_EVENT_INTERRUPT) {
        error_setg(errp, "exit route '%s': event '%s' is not routed yet "
                   "(only 'pio', 'mmio' and 'msr')", id,
                   exit_event_type_name(r->spec.type));
        return;
    }
    if (r->size == 0 || r->spec.start + r->size - 1 < r->spec.start) {
        error_setg(errp, "exit route '%s': size 0x%" PRIx64 " at start 0x%"
                   PRIx64 " is empty or wraps", id, r->size, r->spec.start);
        return;
    }
    r->spec.last = r->spec.start + r->size - 1;
    r->spec.size_mask = r->has_access_size ?
                        1u << ctz32(r->access_size) : EXIT_SIZE_ANY;
    if (r->handler == EXIT_ROUTE_HANDLER_INLINE) {
        if (!r->q_inlinename) {
            error_setg(errp, "exit route '%s': handler=inline needs "
                       "inline=NAME", id);
            return;
        }
        if (!g_hash_table_contains(exit_router.q_inlinehandlers,
                                   r->q_inlinename)) {
            error_setg(errp, "exit route '%s': no inline handler '%s'", id,
                       r->q_inlinename);
            return;
        }
    } else if (r->q_inlinename) {
        error_setg(errp, "exit route '%s': inline=%s needs handler=inline",
                   id, r->q_inlinename);
        return;
    }
    if (r->handler == EXIT_ROUTE_HANDLER_EXTERNAL) {
        exit_handler_pool_free(r->pool);
        r->pool = exit_handler_pool_new(id, r->handlers, r->policy,
                                        r->fallback, r->timeout_ms,
                                        r->posted_writes, errp);
        if (!r->pool) {
            return;
        }
    } else if (r->handlers) {
        error_setg(errp, "exit route '%s': handlers=%s needs "
                   "handler=external", id, r->handlers->value);
        return;
    }
    if (!exit_router_publish(exit_router.routes, r, NULL, errp)) {
        return;
    }
    g_ptr_array_add(exit_router.routes, r);
    r->published = true;
    if (r->pool) {
        exit_handler_pool_set_published(r->pool, true);
    }
    exit_route_try_noexit(r);
    qapi_event_send_exit_route_changed(id, true);
}

/* Count the writes the no-exit paths absorbed.  BQL. */
static void exit_route_collect_noexit(ExitRoute *r)
{
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
         * Removing a route cannot create a conflict.  When the whole
         * /objects container is being finalized (user_creatable_cleanup:
         * QEMU exits, vCPUs are stopped), rebuilding the table once per
         * route would be quadratic for nothing: the last snapshot keeps
         * its references and is never used again.
         */
        if (!OBJECT(r)->parent || qatomic_read(&OBJECT(r)->parent->ref)) {
            exit_router_publish(exit_router.routes, NULL, r, &error_abort);
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

static void exit_route_instance_init(Object *obj)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    r->spec.type = EXIT_EVENT_PIO;
    r->spec.dir_mask = EXIT_DIR_ANY;
    r->spec.size_mask = EXIT_SIZE_ANY;
    r->size = 1;
    r->handler = EXIT_ROUTE_HANDLER_DEVICE;
    r->policy = EXIT_ROUTE_POLICY_FIRST;
    r->fallback = EXIT_ROUTE_FALLBACK_DEVICE;
    r->timeout_ms = 1000;
    exit_stats_init(&r->stats);
}

static void exit_route_instance_finalize(Object *obj)
{
    ExitRoute *r = EXIT_ROUTE(obj);

    exit_stats_destroy(&r->stats);
    exit_handler_pool_free(r->pool);
    qapi_free_strList(r->handlers);
    g_free(r->q_inlinename);
    g_free(r->id);
}

static void exit_route_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = exit_route_complete;
    oc->unparent = exit_route_unparent;

    object_class_property_add_enum(oc, "event", "ExitRouteEvent",
                                   &ExitRouteEvent_lookup,
                                   exit_route_get_event, exit_route_set_event);
    object_class_property_add(oc, "start", "uint64", exit_route_get_u64,
                              exit_route_set_u64, NULL,
                              (void *)offsetof(ExitRoute, spec.start));
    object_class_property_add(oc, "size", "uint64", exit_route_get_u64,
                              exit_route_set_u64, NULL,
                              (void *)offsetof(ExitRoute, size));
    object_class_property_add_enum(oc, "direction", "ExitRouteDirection",
                                   &ExitRouteDirection_lookup,
                                   exit_route_get_direction,
                                   exit_route_set_direction);
    object_class_property_add(oc, "access-size", "uint8",
                              exit_route_get_access_size,
                              exit_route_set_access_size, NULL, NULL);
    object_class_property_add(oc, "datamatch", "uint64", exit_route_get_u64,
                              exit_route_set_datamatch, NULL,
                              (void *)offsetof(ExitRoute, spec.datamatch));
    object_class_property_add(oc, "priority", "int32",
                              exit_route_get_priority,
                              exit_route_set_priority, NULL, NULL);
    object_class_property_add_enum(oc, "handler", "ExitRouteHandler",
                                   &ExitRouteHandler_lookup,
                                   exit_route_get_handler,
                                   exit_route_set_handler);
    object_class_property_add_str(oc, "inline", exit_route_get_inline,
                                  exit_route_set_inline);
    object_class_property_add(oc, "handlers", "strList",
                              exit_route_get_handlers,
                              exit_route_set_handlers, NULL, NULL);
    object_class_property_add_enum(oc, "policy", "ExitRoutePolicy",
                                   &ExitRoutePolicy_lookup,
                                   exit_route_get_policy,
                                   exit_route_set_policy);
    object_class_property_add_enum(oc, "fallback", "ExitRouteFallback",
                                   &ExitRouteFallback_lookup,
                                   exit_route_get_fallback,
                                   exit_route_set_fallback);
    object_class_property_add(oc, "timeout-ms", "uint32",
                              exit_route_get_timeout,
                              exit_route_set_timeout, NULL, NULL);
    object_class_property_add_bool(oc, "posted-writes",
                                   exit_route_get_posted,
                                   exit_route_set_posted);
}

static const TypeInfo exit_route_info = {
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

static void exit_route_register_types(void)
{
    type_register_static(&exit_route_info);
    exit_router.machine_init_done.notify = exit_router_machine_init_done;
    qemu_add_machine_init_done_notifier(&exit_router.machine_init_done);
}

type_init(exit_route_register_types);

/* ---- QMP and HMP -------------------------------------------------------- */

void qmp_exit_route_add(ExitRouteAddArguments *args, Error **errp)
{
    ObjectOptions opts = {
        .qom_type = OBJECT_TYPE_EXIT_ROUTE,
        .id = args->id,
        .u.exit_route = *qapi_ExitRouteAddArguments_base(args),
    };

    user_creatable_add_qapi(&opts, errp);
}

static ExitRoute *exit_route_find(const char *id)
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

void qmp_exit_route_del(const char *id, Error **errp)
{
    if (!exit_route_find(id)) {
        error_setg(errp, "there is no exit route '%s'", id);
        return;
    }
    user_creatable_del(id, errp);
}

ExitRouteInfoList *qmp_query_exit_routes(Error **errp)
{
    ExitRouteInfoList *head = NULL, **tail = &head;
    guint i;

    for (i = 0; exit_router.routes && i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);
        ExitRouteInfo *info = g_new0(ExitRouteInfo, 1);

        info->id = g_strdup(r->id);
        info->event = exit_route_get_event(OBJECT(r), NULL);
        info->start = r->spec.start;
        info->last = r->spec.last;
        info->direction = exit_route_get_direction(OBJECT(r), NULL);
        info->has_access_size = r->has_access_size;
        info->access_size = r->access_size;
        info->has_datamatch = r->spec.has_datamatch;
        info->datamatch = r->spec.datamatch;
        info->priority = r->spec.priority;
        info->handler = r->handler;
        info->q_inline = g_strdup(r->q_inlinename);
        info->no_exit = r->noexit != NULL;
        if (r->pool) {
            exit_handler_pool_info(r->pool, info);
        }
        QAPI_LIST_APPEND(tail, info);
    }
    return head;
}

static ExitRouteStats *exit_route_stats_info(const char *id, ExitStats *st)
{
    ExitRouteStats *info = g_new0(ExitRouteStats, 1);
    uint64List **tail = &info->histogram;
    ExitRouteStatsSum sum;
    uint64_t timed = 0;
    int b;

    exit_stats_sum(st, &sum);
    info->id = g_strdup(id);
    info->count = sum.count - st->base.count;
    info->declines = sum.declines - st->base.declines;
    info->sample_period = EXIT_STATS_SAMPLE_PERIOD;
    for (b = 0; b < EXIT_STATS_HIST_BUCKETS; b++) {
        uint64_t n = sum.hist[b] - st->base.hist[b];

        timed += n;
        QAPI_LIST_APPEND(tail, n);
    }
    /* Scale the sampled time up to all counted accesses (an estimate). */
    info->time_ns = timed ? (uint64_t)((double)(sum.sampled_ns -
                                                st->base.sampled_ns) *
                                       info->count / timed) : 0;
    return info;
}

ExitRouteStatsList *qmp_query_exit_stats(Error **errp)
{
    ExitRouteStatsList *head = NULL, **tail = &head;
    guint i;

    exit_router_init_globals();
    for (i = 0; i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);

        ExitRouteStats *info;

        exit_route_collect_noexit(r);
        info = exit_route_stats_info(r->id, &r->stats);
        if (r->pool) {
            exit_handler_pool_stats(r->pool, info);
        }
        QAPI_LIST_APPEND(tail, info);
    }
    QAPI_LIST_APPEND(tail, exit_route_stats_info("unrouted-pio",
                                                 &exit_router.unrouted_pio));
    QAPI_LIST_APPEND(tail, exit_route_stats_info("unrouted-mmio",
                                                 &exit_router.unrouted_mmio));
    QAPI_LIST_APPEND(tail, exit_route_stats_info("unrouted-msr",
                                                 &exit_router.unrouted_msr));
    return head;
}

static void exit_stats_reset_one(ExitStats *st)
{
    exit_stats_sum(st, &st->base);
}

void qmp_exit_stats_reset(Error **errp)
{
    guint i;

    exit_router_init_globals();
    for (i = 0; i < exit_router.routes->len; i++) {
        ExitRoute *r = g_ptr_array_index(exit_router.routes, i);

        exit_route_collect_noexit(r);
        exit_stats_reset_one(&r->stats);
    }
    exit_stats_reset_one(&exit_router.unrouted_pio);
    exit_stats_reset_one(&exit_router.unrouted_mmio);
    exit_stats_reset_one(&exit_router.unrouted_msr);
}

void hmp_info_exit_routes(Monitor *mon, const QDict *qdict)
{
    ExitRouteInfoList *list = qmp_query_exit_routes(NULL), *l;

    if (!list) {
        monitor_printf(mon, "no exit routes: every exit goes to the device "
                       "model\n");
    }
    for (l = list; l; l = l->next) {
        ExitRouteInfo *i = l->value;

        monitor_printf(mon, "%-16s %-4s 0x%04" PRIx64 "-0x%04" PRIx64
                       " %-5s prio %-4d %s%s%s", i->id,
                       ExitRouteEvent_str(i->event), i->start, i->last,
                       ExitRouteDirection_str(i->direction), i->priority,
                       ExitRouteHandler_str(i->handler),
                       i->q_inline ? ":" : "", i->q_inline ? i->q_inline : "");
        if (i->has_access_size) {
            monitor_printf(mon, " size %u", i->access_size);
        }
        if (i->has_datamatch) {
            monitor_printf(mon, " data 0x%" PRIx64, i->datamatch);
        }
        if (i->no_exit) {
            monitor_printf(mon, " no-exit");
        }
        monitor_printf(mon, "\n");
    }
    qapi_free_ExitRouteInfoList(list);
}

void hmp_info_exit_stats(Monitor *mon, const QDict *qdict)
{
    ExitRouteStatsList *list = qmp_query_exit_stats(NULL), *l;

    monitor_printf(mon, "%-16s %12s %10s %14s %10s\n", "route", "count",
                   "declines", "time-ns (est)", "ns/access");
    for (l = list; l; l = l->next) {
        ExitRouteStats *s = l->value;

        monitor_printf(mon, "%-16s %12" PRIu64 " %10" PRIu64 " %14" PRIu64
                       " %10" PRIu64 "\n", s->id, s->count, s->declines,
                       s->time_ns, s->count ? s->time_ns / s->count : 0);
    }
    qapi_free_ExitRouteStatsList(list);
}

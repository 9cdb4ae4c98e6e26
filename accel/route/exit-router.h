/*
 * qemu-tiers exit router: the one entry point for port I/O, MMIO and
 * MSR exits.
 *
 * KVM (kvm_handle_io), TCG (helper_in[bwl], helper_out[bwl]) and qtest
 * (inb, outb...) call exit_route_pio() instead of address_space_*() on
 * address_space_io.  KVM_EXIT_MMIO, TCG's MMIO slow path and qtest's
 * readX/writeX offer MMIO to exit_route_mmio() before their own path.
 * It looks the access up in the current route table (RCU, no lock) and
 * hands it to the route's handler:
 *
 *   device   QEMU's device model: the unchanged address_space path
 *   inline   a registered in-process handler (the kernel tier); it may
 *            decline, and the access goes on to the next route
 *   ignore   reads return all-ones, writes are dropped
 *   external a pool of handler processes (external.h), with a fallback
 *   log      counted and traced, then passed on to the next route
 *
 * An access no route matches takes the device path: one table lookup is
 * all the router adds.  Rep-string I/O (count > 1) is decided once, on
 * its first element, and never split between handlers; inline handlers
 * see single accesses only, so a batch passes them by.
 *
 * Locking: see docs/locking.rst.  Lookups run under rcu_read_lock() and
 * take no lock.  Route changes are serialised by the BQL and publish a
 * new table with qatomic_rcu_set(); the old one is freed after a grace
 * period.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_ROUTE_EXIT_ROUTER_H
#define ACCEL_ROUTE_EXIT_ROUTER_H

#include "exec/memattrs.h"
#include "qapi/qapi-types-exit-route.h"
#include "qemu/atomic.h"
#include "qemu/bitops.h"
#include "qemu/notify.h"
#include "accel/route/route-table.h"

/* What an inline handler did with an access. */
typedef enum ExitInlineResult {
    EXIT_INLINE_DONE,           /* completed; *data holds a read's value */
    EXIT_INLINE_DECLINE,        /* not touched: try the next route */
} ExitInlineResult;

/*
 * An inline handler.  @access is called in the vCPU thread without the
 * BQL (or from qtest with it).  It must decide to decline before it
 * changes any state, so that the next handler sees an untouched device,
 * and it declines any access that is not to its own device's ports.
 * @owns says whether it serves every address of [@start, @last] of
 * event @type (BQL); a route naming it for anything else is refused.
 */
typedef struct ExitInlineOps {
    ExitInlineResult (*access)(void *opaque, const ExitAccess *access,
                               uint64_t *data);
    bool (*owns)(void *opaque, ExitEventType type, uint64_t start,
                 uint64_t last);
} ExitInlineOps;

/*
 * Register/unregister an inline handler under @name, which routes name
 * with handler=inline,inline=@name.  Called with the BQL held.
 */
void exit_router_register_inline(const char *name, const ExitInlineOps *ops,
                                 void *opaque);
void exit_router_unregister_inline(const char *name);

/*
 * How each caller reached the device model before the router existed.
 * The device handler keeps that exact path, so that "device" is
 * bit-for-bit the vanilla behaviour of that accelerator (they differ for
 * accesses that straddle two regions: address_space_rw splits them,
 * address_space_ld/st hands them whole to the first region).
 */
typedef enum ExitPioPath {
    EXIT_PIO_PATH_RW,           /* KVM: address_space_rw() per element */
    EXIT_PIO_PATH_LDST,         /* TCG: address_space_ld*()/st*() */
    EXIT_PIO_PATH_CPU_IO,       /* qtest: cpu_in*()/cpu_out*() */
} ExitPioPath;

/*
 * Completes one port I/O exit: @count accesses of @size bytes at @port,
 * reading into or writing from @data (consecutive elements in host byte
 * order, as KVM's kvm_run I/O area lays them out).
 */
void exit_route_pio(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                    void *data, unsigned size, bool is_write, uint32_t count);

/* Single-access forms for TCG's in/out helpers and qtest. */
uint32_t exit_route_pio_read(ExitPioPath path, uint16_t port,
                             MemTxAttrs attrs, unsigned size);
void exit_route_pio_write(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                          uint32_t val, unsigned size);

/*
 * The miss filter: a bit per port that some published route covers, and
 * the spans of the MMIO and MSR routes (lo > hi: none).  Written by the
 * router under the BQL, read by anyone without a lock; it always covers
 * every route of the current table (router-publish.c says how).
 */
typedef struct ExitRouteFilter {
    unsigned long pio[BITS_TO_LONGS(65536)];
    uint64_t mmio_lo, mmio_hi;
    uint64_t msr_lo, msr_hi;
} ExitRouteFilter;

extern ExitRouteFilter exit_route_filter;

/*
 * This vCPU thread's counter of unrouted port and MMIO accesses, once its
 * first miss has gone through the router (NULL before, and always in
 * threads without a vCPU).  Written by this thread only.
 */
extern __thread uint64_t *exit_route_unrouted_pio_count;
extern __thread uint64_t *exit_route_unrouted_mmio_count;

/* One unrouted port access in this many is timed (by the router). */
#define EXIT_UNROUTED_SAMPLE_PERIOD 1024

/*
 * The miss path inlined into TCG's port helpers: if no route can match
 * an access to @port, count it and return true, and the caller runs its
 * device path itself (the one the router would run).  False: call the
 * router (a possible hit; this thread's first miss; a miss that the
 * router times).  A miss then costs a few instructions and no call.
 */
static inline bool exit_route_pio_miss(uint16_t port)
{
    uint64_t *count, c;

    if (qatomic_read(&exit_route_filter.pio[BIT_WORD(port)]) &
        BIT_MASK(port)) {
        return false;
    }
    count = exit_route_unrouted_pio_count;
    if (unlikely(!count)) {
        return false;
    }
    c = qatomic_read(count);
    if (unlikely(!(c & (EXIT_UNROUTED_SAMPLE_PERIOD - 1)))) {
        return false;
    }
    qatomic_set(count, c + 1);
    return true;
}

/* The same for TCG's MMIO slow path; misses are counted, not timed. */
static inline bool exit_route_mmio_miss(uint64_t addr)
{
    uint64_t *count;

    if (addr >= qatomic_read(&exit_route_filter.mmio_lo) &&
        addr <= qatomic_read(&exit_route_filter.mmio_hi)) {
        return false;
    }
    count = exit_route_unrouted_mmio_count;
    if (unlikely(!count)) {
        return false;
    }
    qatomic_set(count, qatomic_read(count) + 1);
    return true;
}

/* ---- statistics slots (router-stats.c) ----------------------------------- */

#define EXIT_STATS_HIST_BUCKETS  32

/*
 * One thread's counters for one route, on cache lines of their own.
 * Public for exit_route_pio_count_only() only: everything else goes
 * through the router.
 */
typedef struct ExitRouteCpuStats {
    uint64_t count;
    uint64_t sample_mask;       /* the stats' sample period - 1 */
    uint64_t declines;
    uint64_t sampled_ns;
    uint64_t hist[EXIT_STATS_HIST_BUCKETS];
} QEMU_ALIGNED(64) ExitRouteCpuStats;

/*
 * This vCPU thread's slot index in every route's counters (its
 * cpu_index), once found; -1 before, and always in threads without a
 * vCPU.
 */
extern __thread int exit_stats_thread_slot;

/*
 * The accesses that a device route decides alone, precomputed per port
 * when a table is published (router-publish.c): the best route of the
 * port's segment is a device route without a data match, and the access
 * (size, direction, last byte) matches it.  It only counts such an
 * access, so TCG's helpers count it here and run their device path
 * without a call into the router (issue 17 item 10: an explicit device
 * route cost +4 ns as a call).  Part of the published snapshot, freed
 * with it; exit_route_pio_count_map is NULL while no port has one.
 */
typedef struct ExitPioCountMap {
    /* Per port: EXIT_PIO_COUNT_BIT()s | (1 + index into @slots), or 0. */
    uint32_t port[ROUTE_TABLE_PIO_PORTS];
    ExitRouteCpuStats *slots[];         /* per index: the route's slots */
} ExitPioCountMap;

#define EXIT_PIO_COUNT_INDEX_MASK   0x00ffffffu
/* @size 1, 2 or 4 bytes: bits 24-26 for reads, 27-29 for writes. */
#define EXIT_PIO_COUNT_BIT(size, is_write) \
    (1u << (24 + ((size) >> 1) + 3 * !!(is_write)))

/* RCU: published with, and freed after, the snapshot that holds it. */
extern ExitPioCountMap *exit_route_pio_count_map;

/*
 * For TCG's port helpers, after exit_route_pio_miss() said no and inside
 * cpu_exec()'s RCU read-side section: if a device route decides this
 * access alone and this thread's slot need not time it, count it and
 * return true; the caller runs its own device path (the router's
 * EXIT_PIO_PATH_LDST).  False: call exit_route_pio_read/write().
 */
static inline bool exit_route_pio_count_only(uint16_t port, unsigned size,
                                             bool is_write)
{
    const ExitPioCountMap *m = qatomic_rcu_read(&exit_route_pio_count_map);
    int slot = exit_stats_thread_slot;
    ExitRouteCpuStats *s;
    uint32_t e;
    uint64_t c;

    if (!m || slot < 0) {
        return false;
    }
    e = m->port[port];
    if (!(e & EXIT_PIO_COUNT_BIT(size, is_write))) {
        return false;
    }
    s = &m->slots[(e & EXIT_PIO_COUNT_INDEX_MASK) - 1][slot];
    c = qatomic_read(&s->count);
    if (unlikely(!(c & s->sample_mask))) {
        return false;           /* one to time: the router's */
    }
    qatomic_set(&s->count, c + 1);
    return true;
}

/*
 * Offers one MMIO access of @size bytes at guest-physical @addr to the
 * router (KVM_EXIT_MMIO, TCG's MMIO slow path, qtest's read/write
 * commands).  *@data is the value written, or receives the value read
 * (x86 order: the value whose little-endian bytes are in memory).
 * Returns true if a route's handler completed the access; false if the
 * caller must run its own device path, unchanged.  Accesses of other
 * sizes than 1, 2, 4, 8 (pieces of a page-crossing access) always go to
 * the device path.
 */
bool exit_route_mmio(uint64_t addr, unsigned size, bool is_write,
                     uint64_t *data);

/* The same for an access held in memory order in @buf (KVM, qtest). */
bool exit_route_mmio_buf(uint64_t addr, void *buf, unsigned len,
                         bool is_write);

/*
 * Offers one RDMSR (@is_write false) or WRMSR of MSR @msr to the router
 * (TCG's helper_rdmsr/helper_wrmsr after the SVM intercept check; KVM's
 * MSR-filter exits).  *@data is the value written, or receives the value
 * read.  Returns true if a route's handler completed the access; false
 * if the caller must run its own path.
 */
bool exit_route_msr(uint32_t msr, bool is_write, uint64_t *data);

/*
 * A platform event (docs/platform-events.rst): an SMI, NMI, machine check
 * or host memory error, about to be raised.  The source fills it in and
 * calls exit_route_event(), then acts on the verdict.
 */
typedef struct ExitPlatformEvent {
    ExitEventType type;         /* EXIT_EVENT_SMI ... _MEMORY_ERROR */
    ExitPlatformSource source;
    ExitErrorClass class;       /* MCE, memory error */
    int bank;                   /* MCE: the bank; else -1 */
    int cpu;                    /* target vCPU, -1: all or none; retargetable */
    uint64_t addr;              /* MCE, memory error: guest-physical */
    uint64_t data;              /* SMI: APM command; MCE: MCi_STATUS */
} ExitPlatformEvent;

/*
 * Routes @ev (BQL held) and returns what to do: deliver it as QEMU would
 * (to vCPU @ev->cpu, which a handler may have changed), or nothing
 * (suppress, handled).  An event no route matches is delivered: with no
 * event routes, QEMU behaves as vanilla QEMU.
 */
ExitEventVerdict exit_route_event(ExitPlatformEvent *ev);

/* What the platform handler (handler=platform) did with an event. */
typedef enum ExitPlatformResult {
    EXIT_PLATFORM_DECLINE,      /* not its business: the next route */
    EXIT_PLATFORM_DELIVER,      /* forward it to the guest */
    EXIT_PLATFORM_HANDLED,      /* dealt with: the guest does not see it */
} ExitPlatformResult;

typedef struct ExitPlatformOps {
    /* Called with the BQL held; may change @ev->cpu. */
    ExitPlatformResult (*event)(void *opaque, ExitPlatformEvent *ev);
} ExitPlatformOps;

/*
 * The in-process platform handler (one per VM: the RAS policy), or NULL
 * to remove it.  BQL.
 */
void exit_router_register_platform(const ExitPlatformOps *ops, void *opaque);

/*
 * An SMI about to be raised by @source (APM: @cmd is the command byte
 * written) on vCPU @cpu (-1: every vCPU, or the caller's own choice).
 * Returns true if the caller is to raise it as QEMU does; false if not:
 * suppressed, handled, or raised here on the vCPU a handler chose.  BQL.
 * (platform-x86.c)
 */
bool exit_route_smi(ExitPlatformSource source, uint8_t cmd, int cpu);

/*
 * Raises an NMI from @source on vCPU @cpu_index (-1: every vCPU, through
 * nmi_monitor_handle(@monitor_cpu), QEMU's path), if the router says
 * deliver.  Sets @errp for a vCPU that does not exist.  BQL.
 */
void exit_route_nmi(int64_t cpu_index, ExitPlatformSource source,
                    int monitor_cpu, Error **errp);

/*
 * A host memory error (SIGBUS with BUS_MCEERR_AO or _AR at host address
 * @addr) without KVM: queued for the main loop, which routes it (event
 * memory-error, source host) and, when told to deliver, raises the vMCE
 * KVM's path builds; AR in QEMU's own memory stops QEMU with a message.
 * Called from sigbus_handler(), in a vCPU thread (@cpu) as a signal
 * handler: async-signal-safe.  False: it cannot be queued (before the
 * main loop runs, or too many at once), and QEMU's old behaviour stands.
 * (platform-x86.c)
 */
struct CPUState;
bool exit_route_host_memory_error(int code, void *addr,
                                  struct CPUState *cpu);

/*
 * The running vCPU read poisoned guest memory at @gpa (the RAS policy's
 * overlay of a poisoned page): raises the action-required machine check
 * a read of poisoned DRAM raises, through the router as a host memory
 * error's vMCE.  Without a running vCPU (qtest, a device's DMA) nothing
 * is raised.  BQL.  (platform-x86.c)
 */
void exit_route_poison_consumed(uint64_t gpa);

/*
 * The kernel-tier switch.  Resolved once the accelerator exists, from
 * (first match wins): -accel ...,kernel-tier=on|off (or its -machine
 * sugar), the exit-router object's kernel-tier property, on.  May change
 * at run time through the exit-router object (qom-set); the kernel tier
 * listens with exit_router_add_kernel_tier_notifier(), whose notifiers
 * get a bool * with the new state.  All with the BQL held.
 */
bool exit_router_kernel_tier_enabled(void);
void exit_router_add_kernel_tier_notifier(Notifier *n);

/*
 * The same switch, for threads without the BQL (a vCPU about to enter
 * the guest): false until it is resolved, then what
 * exit_router_kernel_tier_enabled() says.  A change is seen at the next
 * read.
 */
bool exit_router_kernel_tier_active(void);

/*
 * For tests: the exit-router object's x-msr-filter-failures makes the
 * next that many MSR filter changes fail as if the accelerator refused
 * them.  True (and one used up) if this one must.  BQL.
 */
bool exit_router_msr_filter_failure_injected(void);

/*
 * Adds the exit-router and kernel-tier properties to TYPE_ACCEL, so that
 * every accelerator (kvm, tcg, qtest...) has them (patches/0009).
 */
void exit_router_accel_class_init(ObjectClass *oc);

#endif

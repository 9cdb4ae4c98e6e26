/*
 * qemu-tiers exit router: dispatch, the hot path.
 *
 * Every port access, and every MMIO or MSR access an accelerator offers,
 * comes through here.  A miss (no route covers the address: most
 * accesses) is decided by the miss filter without a lock; a hit looks
 * the access up in the published snapshot inside an RCU read-side
 * section and runs the route's handler, or goes on to the device path
 * each caller used before the router existed.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "exec/address-spaces.h"
#include "exec/ioport.h"
#include "accel/route/router-internal.h"
#include "trace.h"

/* ---- the device path ----------------------------------------------------- */

/* One access on the device path each caller used before the router. */
static inline QEMU_ALWAYS_INLINE uint32_t
pio_device_read(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                unsigned size)
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

static inline QEMU_ALWAYS_INLINE void
pio_device_write(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                 uint32_t val, unsigned size)
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

/*
 * The device path for every access no handler completed, counted (and
 * one in EXIT_STATS_SAMPLE_PERIOD timed) in @s: this thread's slot of a
 * route's counters (the caller holds the RCU read lock) or of an
 * unrouted pseudo route's (never freed).
 */
static inline QEMU_ALWAYS_INLINE uint32_t
pio_read_counted(ExitRouteCpuStats *s, ExitPioPath path, uint16_t port,
                 MemTxAttrs attrs, unsigned size)
{
    int64_t t0 = exit_stats_start(s);
    uint32_t v = pio_device_read(path, port, attrs, size);

    exit_stats_done(s, t0);
    return v;
}

static inline QEMU_ALWAYS_INLINE void
pio_write_counted(ExitRouteCpuStats *s, ExitPioPath path, uint16_t port,
                  MemTxAttrs attrs, uint32_t val, unsigned size)
{
    int64_t t0 = exit_stats_start(s);

    pio_device_write(path, port, attrs, val, size);
    exit_stats_done(s, t0);
}

/*
 * A vCPU thread's slots of the unrouted counters, found on its first
 * miss: later misses count with one TLS load instead of finding the slot
 * from current_cpu, and TCG's helpers count them inline
 * (exit_route_pio_miss() in exit-router.h).  Threads without a vCPU
 * share one slot under the BQL and find it every time
 * (exit_stats_slot() asserts the BQL).
 */
__thread uint64_t *exit_route_unrouted_pio_count;
__thread uint64_t *exit_route_unrouted_mmio_count;

static inline ExitRouteCpuStats *exit_unrouted_slot(ExitStats *st,
                                                    uint64_t **count)
{
    ExitRouteCpuStats *s;

    if (likely(*count)) {
        return container_of(*count, ExitRouteCpuStats, count);
    }
    s = exit_stats_slot(st);
    if (current_cpu) {
        *count = &s->count;
    }
    return s;
}

/* ---- the decision -------------------------------------------------------- */

/* Might a published route match this access?  No lock (router-publish.c). */
static inline bool exit_route_maybe_pio(uint16_t port)
{
    return qatomic_read(&exit_route_filter.pio[BIT_WORD(port)]) &
           BIT_MASK(port);
}

static inline bool exit_route_maybe_mmio(uint64_t addr)
{
    return addr >= qatomic_read(&exit_route_filter.mmio_lo) &&
           addr <= qatomic_read(&exit_route_filter.mmio_hi);
}

static inline bool exit_route_maybe_msr(uint32_t msr)
{
    return msr >= qatomic_read(&exit_route_filter.msr_lo) &&
           msr <= qatomic_read(&exit_route_filter.msr_hi);
}

/*
 * Offers @a to an inline handler, counted in @s (this thread's slot of
 * the route's counters).  False if it declined, which it does before
 * changing any state: the access goes on to the next route.
 */
static inline QEMU_ALWAYS_INLINE bool
exit_route_run_inline(ExitInlineAccessFn *access, void *opaque,
                      ExitRouteCpuStats *s, const char *name,
                      const ExitAccess *a, uint64_t *val)
{
    int64_t t0;

    /* Inline handlers never run under the BQL on a vCPU. */
    assert(!current_cpu || !bql_locked());
    t0 = exit_stats_start(s);
    if (access(opaque, a, val) == EXIT_INLINE_DECLINE) {
        exit_stats_count_decline(s);
        trace_exit_route_decline(name, a->addr, a->size);
        return false;
    }
    exit_stats_done(s, t0);
    return true;
}

/*
 * The walk over the candidates of @a, from the @skip'th on: see
 * exit_route_decide().  Out of line: the fast path below decides most
 * accesses to a route without it.
 */
static bool __attribute__((noinline))
exit_route_walk(const ExitRouterSnapshot *snap, const ExitAccess *a,
                uint32_t count, uint32_t skip, uint64_t *val,
                ExitStats **dev_stats)
{
    const RouteTableEntry *e;
    ExitRouteCpuStats *s;
    RouteCursor c;
    int64_t t0;

    route_table_lookup(snap->table, a, &c);
    c.i = skip;
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
                                       slot->inl.opaque, s, e->name, a,
                                       val)) {
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
 * Decides one access: returns true when a handler completed it (*val
 * holds a read's value: all-ones for ignore); false when it goes to the
 * device model, with *dev_stats set to the counters to charge: the
 * device route's, or @unrouted.  @count > 1 is a rep batch, which inline
 * handlers never see.  Called inside an RCU read-side section.
 */
static inline QEMU_ALWAYS_INLINE bool
exit_route_decide(const ExitAccess *a, uint32_t count, uint64_t *val,
                  ExitStats *unrouted, ExitStats **dev_stats)
{
    ExitRouterSnapshot *snap = qatomic_rcu_read(&exit_router.current);
    uint32_t skip = 0;

    *dev_stats = unrouted;
    if (!snap) {
        return false;
    }
    /* A port whose best route is inline or device: decided here. */
    if (a->type == EXIT_EVENT_PIO && count == 1 && snap->pio_fast &&
        a->addr < ROUTE_TABLE_PIO_PORTS) {
        uint16_t seg = snap->pio_seg[a->addr];
        const ExitPioFast *f = seg ? &snap->pio_fast[seg - 1] : NULL;

        if (f && f->valid) {
            if (exit_route_spec_matches(&f->spec, a)) {
                if (!f->access) {
                    *dev_stats = f->stats;
                    return false;
                }
                if (exit_route_run_inline(f->access, f->opaque,
                                          exit_stats_slot(f->stats), f->name,
                                          a, val)) {
                    return true;
                }
            }
            if (!f->more) {
                return false;
            }
            skip = 1;           /* the walk goes on after the best */
        }
    }
    return exit_route_walk(snap, a, count, skip, val, dev_stats);
}

/* ---- entry points -------------------------------------------------------- */

void exit_route_pio(ExitPioPath path, uint16_t port, MemTxAttrs attrs,
                    void *data, unsigned size, bool is_write, uint32_t count)
{
    ExitAccess a = {
        .type = EXIT_EVENT_PIO, .addr = port, .size = size,
        .is_write = is_write, .data = is_write ? ldn_he_p(data, size) : 0,
    };
    ExitStats *dev_stats = &exit_router.unrouted_pio;
    ExitRouteCpuStats *s;
    uint8_t *ptr = data;
    uint64_t val = 0;
    uint32_t i;
    int64_t t0;

    RCU_READ_LOCK_GUARD();
    if (exit_route_maybe_pio(port) &&
        exit_route_decide(&a, count, &val, &exit_router.unrouted_pio,
                          &dev_stats)) {
        for (i = 0; !is_write && i < count; i++) {
            stn_he_p(ptr + i * size, size, val);
        }
        return;
    }
    s = exit_stats_slot(dev_stats);
    t0 = exit_stats_start(s);
    for (i = 0; i < count; i++, ptr += size) {
        if (is_write) {
            pio_device_write(path, port, attrs, ldn_he_p(ptr, size), size);
        } else {
            stn_he_p(ptr, size, pio_device_read(path, port, attrs, size));
        }
    }
    exit_stats_done(s, t0);
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
    return pio_read_counted(exit_stats_slot(dev_stats), path, port, attrs,
                            size);
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
    pio_write_counted(exit_stats_slot(dev_stats), path, port, attrs, val,
                      size);
}

/* A miss in the filter (the common case) takes no lock at all. */
uint32_t exit_route_pio_read(ExitPioPath path, uint16_t port,
                             MemTxAttrs attrs, unsigned size)
{
    if (likely(!exit_route_maybe_pio(port))) {
        return pio_read_counted(exit_unrouted_slot(
                                    &exit_router.unrouted_pio,
                                    &exit_route_unrouted_pio_count),
                                path, port, attrs, size);
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
        pio_write_counted(exit_unrouted_slot(&exit_router.unrouted_pio,
                                             &exit_route_unrouted_pio_count),
                          path, port, attrs, val, size);
        return;
    }
    if (path == EXIT_PIO_PATH_LDST) {
        exit_route_pio_write_rcu(path, port, attrs, val, size);
        return;
    }
    RCU_READ_LOCK_GUARD();
    exit_route_pio_write_rcu(path, port, attrs, val, size);
}

/*
 * MMIO and MSR accesses are offered: false sends the caller on to its own
 * path, which the router counts but does not time.
 */
static bool exit_route_offer(ExitAccess *a, uint64_t *data,
                             ExitStats *unrouted)
{
    ExitStats *dev_stats;
    uint64_t val = 0;

    RCU_READ_LOCK_GUARD();
    if (exit_route_decide(a, 1, &val, unrouted, &dev_stats)) {
        if (!a->is_write) {
            *data = val;
        }
        return true;
    }
    exit_stats_done(exit_stats_slot(dev_stats), 0);
    return false;
}

bool exit_route_mmio(uint64_t addr, unsigned size, bool is_write,
                     uint64_t *data)
{
    ExitAccess a = {
        .type = EXIT_EVENT_MMIO, .addr = addr, .size = size,
        .is_write = is_write, .data = is_write ? *data : 0,
    };

    if (!exit_route_maybe_mmio(addr) ||
        (size != 1 && size != 2 && size != 4 && size != 8)) {
        /* A miss, or a piece of a page-crossing access: the model's. */
        exit_stats_done(exit_unrouted_slot(&exit_router.unrouted_mmio,
                                           &exit_route_unrouted_mmio_count),
                        0);
        return false;
    }
    return exit_route_offer(&a, data, &exit_router.unrouted_mmio);
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

bool exit_route_msr(uint32_t msr, bool is_write, uint64_t *data)
{
    ExitAccess a = {
        .type = EXIT_EVENT_MSR, .addr = msr, .size = 8,
        .is_write = is_write, .data = is_write ? *data : 0,
    };

    if (!exit_route_maybe_msr(msr)) {
        exit_stats_done(exit_stats_slot(&exit_router.unrouted_msr), 0);
        return false;
    }
    return exit_route_offer(&a, data, &exit_router.unrouted_msr);
}

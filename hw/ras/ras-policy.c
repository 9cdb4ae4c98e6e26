/*
 * qemu-tiers RAS: the ras-policy object, the platform handler that
 * retires failing guest pages while the guest runs.
 *
 *   -object ras-policy,id=ID[,pool-pages=N][,ce-threshold=N]
 *           [,ce-decay-ms=N]
 *   -object exit-route,id=R,event=mce,handler=platform
 *
 * Retirement of a guest page (docs/ras.rst): keep every vCPU out of
 * guest code (an exclusive section), copy the page into a page of the
 * sequestered pool (a memfd the guest never maps), map that pool page
 * over the old one at the same host address, mark it dirty for
 * migration, let the vCPUs go.  Guest-physical address, memory
 * slot and host virtual address stay; only the host page behind them
 * changes.  KVM follows through its MMU notifier, TCG's softmmu TLB holds
 * host addresses and needs no flush.
 *
 * Policy (the platform handler, for routes handler=platform): a
 * corrected machine check with a valid address counts against its page
 * (halved every ce-decay-ms, as Linux's CEC decays its counts); at
 * ce-threshold the page is retired and the error handled, the guest
 * sees nothing.  A host memory error that is action optional (a
 * predicted failure: nothing consumed the data yet) retires its page at
 * once, copying it with pwrite() so that a page the host really poisoned
 * fails the copy with EFAULT instead of killing QEMU with SIGBUS; such a
 * page is retired blank and poisoned.  Uncorrected errors that the guest
 * consumed are forwarded to it (their data is gone: never a silent
 * substitute page) and the page is poisoned.  Everything else is
 * declined (the next route decides).
 *
 * A poisoned page gets an overlay region over its RAM: a guest read
 * raises an action-required machine check on the reading vCPU (as
 * poisoned DRAM does), a write is dropped.  The list of poisoned pages
 * travels in the migration stream (this object's section) and the
 * destination installs the same overlays: the page's RAM goes as data,
 * the poison as a marker.
 *
 * Locking: the BQL for everything here (QMP, the bottom half, the
 * platform handler); retirements run in the main loop only, never on a
 * vCPU thread, because they keep every vCPU out of guest code.  The
 * copy and the mmap run in the exclusive section with the BQL dropped,
 * touching only their RasRemap and the pool.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qapi/error.h"
#include "qapi/qapi-commands-ras.h"
#include "qapi/qapi-events-ras.h"
#include "qapi/qapi-visit-ras.h"
#include "qapi/visitor.h"
#include "qemu/main-loop.h"
#include "qemu/memfd.h"
#include "qemu/timer.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "qom/object_interfaces.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "exec/cpu-common.h"
#include "hw/core/cpu.h"
#include "system/cpus.h"
#include "system/runstate.h"
#include "migration/vmstate.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qobject/qdict.h"
#include "qemu/log.h"
#include "accel/route/exit-router.h"
#include "ras-dirty.h"
#include "trace.h"

#define TYPE_RAS_POLICY "ras-policy"
OBJECT_DECLARE_SIMPLE_TYPE(RasPolicy, RAS_POLICY)

#define RAS_DEFAULT_POOL_PAGES      64
/*
 * Linux's CEC offlines at 1023 errors with a 24 h decay; a VMM sees the
 * errors a host already filtered, and a page that keeps failing under a
 * running guest should go sooner: 16, halved every minute.
 */
#define RAS_DEFAULT_CE_THRESHOLD    16
#define RAS_DEFAULT_CE_DECAY_MS     60000

/* MCi_STATUS.ADDRV: MCi_ADDR holds the error's address. */
#define RAS_MCI_STATUS_ADDRV        (1ULL << 58)

/* One guest page the policy knows of.  BQL. */
typedef struct RasPage {
    uint64_t addr;              /* guest-physical, page aligned */
    uint32_t ce_count;          /* corrected errors, decayed */
    int64_t ce_stamp_ms;        /* when ce_count was last decayed */
    bool retired;
    bool pending;               /* a retirement is queued */
    bool poisoned;              /* an uncorrected error was forwarded */
    MemoryRegion *poison;       /* its overlay, once installed */
} RasPage;

/*
 * What the platform handler asked for (it may run on a vCPU thread, in
 * the middle of a memory access), done in the bottom half: a retirement
 * (with a reserved pool page), or a poison overlay to install.
 */
typedef struct RasRequest {
    uint64_t addr;
    RasRetireReason reason;
    bool poison;
} RasRequest;

/* The most pages one ras-retire-pages stops the vCPUs for. */
#define RAS_MAX_BATCH               512
/* Poison overlays sit above RAM and anything else mapped there. */
#define RAS_POISON_PRIORITY         1000

struct RasPolicy {
    Object parent_obj;

    /* Properties; fixed once complete. */
    uint32_t pool_pages;
    uint32_t ce_threshold;
    uint64_t ce_decay_ms;
    bool skip_copy;

    /* The pool: a memfd, mapped here for the copies only.  BQL. */
    int pool_fd;
    uint8_t *pool_base;
    size_t page_size;
    uint32_t pool_used;         /* pages mapped into the guest */
    uint32_t pool_reserved;     /* pages promised to queued retirements */

    GHashTable *pages;          /* addr -> RasPage; BQL */
    GArray *retired;            /* RasRetiredPage, in order; BQL */
    GArray *queue;              /* RasRequest; BQL */
    QEMUBH *bh;

    /* The migration section: the poisoned pages, filled by pre_save. */
    uint32_t mig_npoisoned;
    uint64_t *mig_poisoned;
};

/* The one ras-policy of the VM, or NULL. */
static RasPolicy *ras_policy_find(void)
{
    Object *o = object_resolve_path_type("", TYPE_RAS_POLICY, NULL);

    return o ? RAS_POLICY(o) : NULL;
}

static RasPage *ras_page_get(RasPolicy *p, uint64_t addr)
{
    RasPage *pg = g_hash_table_lookup(p->pages, &addr);

    if (!pg) {
        pg = g_new0(RasPage, 1);
        pg->addr = addr;
        g_hash_table_insert(p->pages, &pg->addr, pg);
    }
    return pg;
}

/*
 * Checks that the page at @addr can be retired, and finds its host
 * address and RAM.  Changes nothing.  BQL.
 */
static bool ras_page_check(RasPolicy *p, uint64_t addr, MemoryRegion **mrp,
                           uint64_t *offsetp, Error **errp)
{
    MemoryRegionSection sec;
    MemoryRegion *mr;
    RAMBlock *rb;
    RasPage *pg;

    pg = g_hash_table_lookup(p->pages, &addr);
    if (pg && pg->poisoned) {
        error_setg(errp, "the page at 0x%" PRIx64 " is poisoned: its data "
                   "is gone, there is nothing to move", addr);
        return false;
    }
    sec = memory_region_find(get_system_memory(), addr, 1);
    mr = sec.mr;
    if (!mr) {
        error_setg(errp, "0x%" PRIx64 " is not guest RAM (nothing there)",
                   addr);
        return false;
    }
    if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) ||
        memory_region_is_rom(mr) || mr->readonly) {
        error_setg(errp, "0x%" PRIx64 " is not guest RAM ('%s')", addr,
                   memory_region_name(mr));
        goto fail;
    }
    rb = mr->ram_block;
    if (qemu_ram_pagesize(rb) != p->page_size) {
        error_setg(errp, "0x%" PRIx64 " is in RAM backend '%s' of %zu KiB "
                   "pages: a retirement would move the whole huge page",
                   addr, qemu_ram_get_idstr(rb), qemu_ram_pagesize(rb) / KiB);
        goto fail;
    }
    if (qemu_ram_is_shared(rb) || qemu_ram_get_fd(rb) >= 0) {
        error_setg(errp, "0x%" PRIx64 " is in RAM backend '%s', which is "
                   "shared or file memory: another mapper would keep the "
                   "old page", addr, qemu_ram_get_idstr(rb));
        goto fail;
    }
    if (pg && (pg->retired || pg->pending)) {
        error_setg(errp, "the page at 0x%" PRIx64 " is already retired",
                   addr);
        goto fail;
    }
    *mrp = mr;
    *offsetp = sec.offset_within_region;
    return true;

fail:
    memory_region_unref(mr);
    return false;
}

/*
 * Checks that the @pages pages from @addr can be retired together: each
 * can be retired, and they are consecutive pages of one RAM region, so
 * one mapping of consecutive pool pages covers them.  Changes nothing.
 * On success the caller holds a reference to *@mrp.  BQL.
 */
static bool ras_range_check(RasPolicy *p, uint64_t addr, uint32_t pages,
                            MemoryRegion **mrp, uint64_t *offsetp,
                            Error **errp)
{
    MemoryRegion *mr, *next_mr;
    uint64_t offset, next_offset, next;
    uint32_t i;

    if (!ras_page_check(p, addr, &mr, &offset, errp)) {
        return false;
    }
    for (i = 1; i < pages; i++) {
        next = addr + (uint64_t)i * p->page_size;
        if (!ras_page_check(p, next, &next_mr, &next_offset, errp)) {
            memory_region_unref(mr);
            return false;
        }
        memory_region_unref(next_mr);
        if (next_mr != mr ||
            next_offset != offset + (uint64_t)i * p->page_size) {
            error_setg(errp, "0x%" PRIx64 " and 0x%" PRIx64 " are not in "
                       "one RAM region: a batch must be", addr, next);
            memory_region_unref(mr);
            return false;
        }
    }
    *mrp = mr;
    *offsetp = offset;
    return true;
}

/*
 * The next @pages pool pages (consecutive), or false if the pool is
 * full (queued retirements hold their pages).  Pool pages are used in
 * order and never given back, and retirements run one at a time in the
 * main loop, so the next ones are always the first unused.
 */
static bool ras_pool_take(RasPolicy *p, uint32_t pages, uint32_t *index)
{
    if ((uint64_t)p->pool_used + p->pool_reserved + pages > p->pool_pages) {
        return false;
    }
    *index = p->pool_used;
    return true;
}

static void ras_pool_exhausted(uint64_t addr, RasRetireReason reason)
{
    warn_report_once("ras-policy: the sequestered pool is full; failing "
                     "pages are left in place and their errors forwarded");
    trace_ras_pool_exhausted(addr, RasRetireReason_str(reason));
    qapi_event_send_ras_pool_exhausted(addr, reason);
}

/*
 * Copies guest page @src into pool page @index.  A page a memory error
 * reported may really be poisoned in the host: pwrite() copies it in
 * the kernel, which fails with EFAULT where a load here would raise
 * SIGBUS.  Returns false, the pool page blank, if it could not be read.
 */
static bool ras_copy_page(RasPolicy *p, uint32_t index, const uint8_t *src,
                          RasRetireReason reason)
{
    uint8_t *dst = p->pool_base + (size_t)index * p->page_size;

    if (p->skip_copy) {
        return true;
    }
    if (reason != RAS_RETIRE_REASON_PREDICTED) {
        memcpy(dst, src, p->page_size);
        return true;
    }
    if (pwrite(p->pool_fd, src, p->page_size,
               (off_t)index * p->page_size) == (ssize_t)p->page_size) {
        return true;
    }
    memset(dst, 0, p->page_size);
    return false;
}

static void ras_poison_install(RasPolicy *p, RasPage *pg);

/*
 * The part of a retirement done while no vCPU runs guest code: the copy,
 * the mmap and the dirty marking.  Filled by ras_retire(), run by
 * ras_remap() in the exclusive section.
 */
typedef struct RasRemap {
    RasPolicy *p;
    MemoryRegion *mr;
    uint64_t offset;
    uint8_t *hva;
    uint32_t index, pages;
    RasRetireReason reason;
    bool *lost;
    int map_errno;              /* the mmap's errno, 0 if it worked */
    int64_t t_copy, t_done;     /* get_clock() before the copy, after all */
} RasRemap;

static void ras_remap(RasRemap *w)
{
    RasPolicy *p = w->p;
    size_t len = (size_t)w->pages * p->page_size;
    uint32_t i;
    void *map;

    w->t_copy = get_clock();
    for (i = 0; i < w->pages; i++) {
        w->lost[i] = !ras_copy_page(p, w->index + i,
                                    w->hva + (size_t)i * p->page_size,
                                    w->reason);
    }
    map = mmap(w->hva, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
               p->pool_fd, (off_t)w->index * p->page_size);
    w->map_errno = map == MAP_FAILED ? errno : 0;
    if (!w->map_errno) {
        /* The migration bitmap: the pages are sent again. */
        ras_mark_moved(w->mr, w->offset, len);
    }
    w->t_done = get_clock();
}

/*
 * Runs @w with every vCPU out of guest code: an exclusive section,
 * entered from the main loop (patch 34): start_exclusive() makes each
 * vCPU in KVM_RUN or the TCG loop leave at its next instruction boundary
 * and wait in cpu_exec_start() until end_exclusive().  Not
 * pause_all_vcpus(): that parks each vCPU on its halt condition through
 * the BQL and wakes each again, ~70 us on two busy host cores.  The BQL
 * is dropped meanwhile, as pause_all_vcpus() drops it: a vCPU inside an
 * MMIO access may need it to finish and leave.
 */
static void ras_remap_with_vcpus_out(RasRemap *w)
{
    bql_unlock();
    start_exclusive();
    ras_remap(w);
    end_exclusive();
    bql_lock();
}

/*
 * Retires the @pages pages from @addr (page aligned) in one exclusive
 * section of the vCPUs: copies each into the next pool page, maps the
 * run of pool pages over them at the same host address, marks them dirty.
 * Main loop, BQL (dropped during the exclusive section).  Fills
 * @out[0..@pages-1] if not NULL.  On failure nothing has changed.
 */
static bool ras_retire(RasPolicy *p, uint64_t addr, uint32_t pages,
                       RasRetireReason reason, bool reserved,
                       RasRetiredPage *out, Error **errp)
{
    g_autofree bool *lost = g_new0(bool, pages);
    RasRemap w = { .p = p, .pages = pages, .reason = reason, .lost = lost };
    uint32_t i;
    int64_t t0, pause_ns;

    assert(bql_locked());
    assert(!current_cpu);
    if (reserved) {
        p->pool_reserved -= pages;
    }
    if (!ras_range_check(p, addr, pages, &w.mr, &w.offset, errp)) {
        return false;
    }
    if (!ras_pool_take(p, pages, &w.index)) {
        memory_region_unref(w.mr);
        ras_pool_exhausted(addr, reason);
        error_setg(errp, "the sequestered pool is full (%u pages, %u free, "
                   "%u asked for)", p->pool_pages,
                   p->pool_pages - p->pool_used - p->pool_reserved, pages);
        return false;
    }
    w.hva = (uint8_t *)memory_region_get_ram_ptr(w.mr) + w.offset;

    t0 = get_clock();
    ras_remap_with_vcpus_out(&w);
    memory_region_unref(w.mr);
    if (w.map_errno) {
        error_setg_errno(errp, w.map_errno, "cannot map pool pages %u-%u "
                         "over guest pages 0x%" PRIx64 "+%u", w.index,
                         w.index + pages - 1, addr, pages);
        return false;
    }
    /* From the request to stop the vCPUs until they were let go. */
    pause_ns = w.t_done - t0;

    for (i = 0; i < pages; i++) {
        uint64_t a = addr + (uint64_t)i * p->page_size;
        RasPage *pg = ras_page_get(p, a);
        RasRetiredPage r = {
            .addr = a, .reason = reason, .pause_ns = pause_ns,
            .pool_index = w.index + i, .remap_ns = w.t_done - w.t_copy,
            .lost = lost[i],
        };

        pg->retired = true;
        g_array_append_val(p->retired, r);
        trace_ras_retire(a, RasRetireReason_str(reason), w.index + i,
                         pause_ns);
        if (lost[i]) {
            trace_ras_copy_lost(a);
            pg->poisoned = true;
            ras_poison_install(p, pg);
        }
        qapi_event_send_memory_page_retired(a, reason, pause_ns);
        if (out) {
            out[i] = r;
        }
    }
    p->pool_used += pages;
    return true;
}

/* ---- poisoned pages ------------------------------------------------------ */

static uint64_t ras_poison_read(void *opaque, hwaddr offset, unsigned size)
{
    RasPage *pg = opaque;

    trace_ras_poison_read(pg->addr + offset, size);
    exit_route_poison_consumed(pg->addr + offset);
    return ~0ULL;               /* what a read of lost data returns */
}

static void ras_poison_write(void *opaque, hwaddr offset, uint64_t value,
                             unsigned size)
{
    RasPage *pg = opaque;

    trace_ras_poison_write(pg->addr + offset, size);
    qemu_log_mask(LOG_GUEST_ERROR, "ras-policy: write to poisoned guest "
                  "page 0x%" PRIx64 " dropped\n", pg->addr);
}

static const MemoryRegionOps ras_poison_ops = {
    .read = ras_poison_read,
    .write = ras_poison_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/* Puts @pg's overlay over its RAM.  Main loop, BQL. */
static void ras_poison_install(RasPolicy *p, RasPage *pg)
{
    g_autofree char *name = NULL;

    assert(bql_locked());
    if (pg->poison) {
        return;
    }
    name = g_strdup_printf("ras-poison-0x%" PRIx64, pg->addr);
    pg->poison = g_new0(MemoryRegion, 1);
    memory_region_init_io(pg->poison, OBJECT(p), &ras_poison_ops, pg, name,
                          p->page_size);
    memory_region_add_subregion_overlap(get_system_memory(), pg->addr,
                                        pg->poison, RAS_POISON_PRIORITY);
    trace_ras_poison_install(pg->addr);
}

/*
 * Records @pg as poisoned and queues its overlay (the caller may be in
 * the middle of a memory access on a vCPU).  BQL.
 */
static void ras_poison_queue(RasPolicy *p, RasPage *pg)
{
    RasRequest req = { .addr = pg->addr, .poison = true };

    if (pg->poisoned) {
        return;
    }
    pg->poisoned = true;
    trace_ras_poisoned(pg->addr);
    g_array_append_val(p->queue, req);
    qemu_bh_schedule(p->bh);
}

/* What the platform handler queued. */
static void ras_policy_bh(void *opaque)
{
    RasPolicy *p = opaque;
    g_autoptr(GArray) q = p->queue;
    Error *err = NULL;
    guint i;

    p->queue = g_array_new(false, false, sizeof(RasRequest));
    for (i = 0; i < q->len; i++) {
        RasRequest *req = &g_array_index(q, RasRequest, i);
        RasPage *pg = ras_page_get(p, req->addr);

        if (req->poison) {
            ras_poison_install(p, pg);
            continue;
        }
        pg->pending = false;
        if (!ras_retire(p, req->addr, 1, req->reason, true, NULL, &err)) {
            warn_reportf_err(err, "ras-policy: ");
            err = NULL;
        }
    }
}

/* Halves @pg's count once per decay period since it was last decayed. */
static void ras_page_decay(RasPolicy *p, RasPage *pg, int64_t now_ms)
{
    int64_t periods;

    if (!pg->ce_stamp_ms) {
        pg->ce_stamp_ms = now_ms;
        return;
    }
    periods = (now_ms - pg->ce_stamp_ms) / (int64_t)p->ce_decay_ms;
    if (periods > 0) {
        pg->ce_count = periods >= 32 ? 0 : pg->ce_count >> periods;
        pg->ce_stamp_ms += periods * (int64_t)p->ce_decay_ms;
    }
}

/* Reserves a pool page and queues @pg's retirement.  BQL. */
static ExitPlatformResult ras_retire_queue(RasPolicy *p, RasPage *pg,
                                           RasRetireReason reason)
{
    RasRequest req = { .addr = pg->addr, .reason = reason };
    uint32_t index;

    if (!ras_pool_take(p, 1, &index)) {
        ras_pool_exhausted(pg->addr, reason);
        return EXIT_PLATFORM_DELIVER;
    }
    p->pool_reserved++;
    pg->pending = true;
    g_array_append_val(p->queue, req);
    qemu_bh_schedule(p->bh);
    return EXIT_PLATFORM_HANDLED;
}

/*
 * A host memory error at guest page @pg.  Action optional: nothing has
 * consumed the data yet, so the page moves now and the guest sees
 * nothing (if the host really poisoned it, the copy finds out and the
 * page is poisoned for the guest instead).  Action required: a vCPU
 * consumed it; the guest gets its machine check.  BQL.
 */
static ExitPlatformResult ras_memory_error(RasPolicy *p, RasPage *pg,
                                           ExitPlatformEvent *ev)
{
    if (ev->class == EXIT_CLASS_AR) {
        ras_poison_queue(p, pg);
        return EXIT_PLATFORM_DELIVER;
    }
    if (pg->retired || pg->pending) {
        return EXIT_PLATFORM_HANDLED;   /* a stale report of the old page */
    }
    if (pg->poisoned) {
        return EXIT_PLATFORM_DELIVER;
    }
    return ras_retire_queue(p, pg, RAS_RETIRE_REASON_PREDICTED);
}

/* The platform handler: called with the BQL held, maybe on a vCPU. */
static ExitPlatformResult ras_policy_event(void *opaque, ExitPlatformEvent *ev)
{
    RasPolicy *p = opaque;
    uint64_t addr = ev->addr & ~((uint64_t)p->page_size - 1);
    RasPage *pg;

    assert(bql_locked());
    if (ev->type == EXIT_EVENT_MEMORY_ERROR) {
        return ras_memory_error(p, ras_page_get(p, addr), ev);
    }
    if (ev->type != EXIT_EVENT_MCE || !(ev->data & RAS_MCI_STATUS_ADDRV)) {
        return EXIT_PLATFORM_DECLINE;
    }
    pg = ras_page_get(p, addr);
    if (ev->class != EXIT_CLASS_CORRECTED) {
        /* Consumed or lost data: only the guest can deal with it. */
        ras_poison_queue(p, pg);
        return EXIT_PLATFORM_DELIVER;
    }
    if (pg->retired || pg->pending) {
        return EXIT_PLATFORM_HANDLED;   /* a stale report of the old page */
    }
    ras_page_decay(p, pg, qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
    pg->ce_count++;
    trace_ras_corrected(addr, pg->ce_count);
    if (pg->ce_count < p->ce_threshold) {
        return EXIT_PLATFORM_HANDLED;
    }
    return ras_retire_queue(p, pg, RAS_RETIRE_REASON_CORRECTED_ERRORS);
}

static const ExitPlatformOps ras_policy_ops = {
    .event = ras_policy_event,
};

/* ---- QMP ----------------------------------------------------------------- */

static RasPolicy *ras_policy_needed(Error **errp)
{
    RasPolicy *p = ras_policy_find();

    if (!p || p->pool_fd < 0) {
        error_setg(errp, "no ras-policy object (-object ras-policy,id=...)");
        return NULL;
    }
    return p;
}

RasRetiredPage *qmp_ras_retire_page(uint64_t addr, Error **errp)
{
    RasPolicy *p = ras_policy_needed(errp);
    RasRetiredPage r;

    if (!p) {
        return NULL;
    }
    addr &= ~((uint64_t)p->page_size - 1);
    if (!ras_retire(p, addr, 1, RAS_RETIRE_REASON_QMP, false, &r, errp)) {
        return NULL;
    }
    return g_memdup2(&r, sizeof(r));
}

/* Whether @pages is a batch size ras-retire-pages takes (QMP, HMP). */
static bool ras_batch_check(int64_t pages, Error **errp)
{
    if (pages < 1 || pages > RAS_MAX_BATCH) {
        error_setg(errp, "pages=%" PRId64 ": a batch is 1 to %u pages",
                   pages, RAS_MAX_BATCH);
        return false;
    }
    return true;
}

RasRetiredPageList *qmp_ras_retire_pages(uint64_t addr, uint32_t pages,
                                         Error **errp)
{
    RasPolicy *p = ras_policy_needed(errp);
    RasRetiredPageList *head = NULL, **tail = &head;
    g_autofree RasRetiredPage *r = NULL;
    uint32_t i;

    if (!p) {
        return NULL;
    }
    if (!ras_batch_check(pages, errp)) {
        return NULL;
    }
    addr &= ~((uint64_t)p->page_size - 1);
    r = g_new(RasRetiredPage, pages);
    if (!ras_retire(p, addr, pages, RAS_RETIRE_REASON_QMP, false, r, errp)) {
        return NULL;
    }
    for (i = 0; i < pages; i++) {
        QAPI_LIST_APPEND(tail, g_memdup2(&r[i], sizeof(r[i])));
    }
    return head;
}

static gint ras_addr_cmp(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The poisoned pages' addresses, sorted.  BQL. */
static GArray *ras_poisoned_addrs(RasPolicy *p)
{
    GArray *a = g_array_new(false, false, sizeof(uint64_t));
    GHashTableIter it;
    RasPage *pg;

    g_hash_table_iter_init(&it, p->pages);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&pg)) {
        if (pg->poisoned) {
            g_array_append_val(a, pg->addr);
        }
    }
    g_array_sort(a, ras_addr_cmp);
    return a;
}

RasPoisonedPageList *qmp_query_poisoned_pages(Error **errp)
{
    RasPolicy *p = ras_policy_needed(errp);
    g_autoptr(GArray) a = NULL;
    RasPoisonedPageList *head = NULL, **tail = &head;
    guint i;

    if (!p) {
        return NULL;
    }
    a = ras_poisoned_addrs(p);
    for (i = 0; i < a->len; i++) {
        RasPoisonedPage *pp = g_new0(RasPoisonedPage, 1);

        pp->addr = g_array_index(a, uint64_t, i);
        QAPI_LIST_APPEND(tail, pp);
    }
    return head;
}

RasRetiredPageList *qmp_query_retired_pages(Error **errp)
{
    RasPolicy *p = ras_policy_needed(errp);
    RasRetiredPageList *head = NULL, **tail = &head;
    guint i;

    if (!p) {
        return NULL;
    }
    for (i = 0; i < p->retired->len; i++) {
        QAPI_LIST_APPEND(tail, g_memdup2(&g_array_index(p->retired,
                                                        RasRetiredPage, i),
                                         sizeof(RasRetiredPage)));
    }
    return head;
}

RasPoolInfo *qmp_query_ras_pool(Error **errp)
{
    RasPolicy *p = ras_policy_needed(errp);
    RasPoolInfo *info;

    if (!p) {
        return NULL;
    }
    info = g_new0(RasPoolInfo, 1);
    info->size = (uint64_t)p->pool_pages * p->page_size;
    info->used = p->pool_used;
    info->free = p->pool_pages - p->pool_used;
    return info;
}

/* ---- HMP ----------------------------------------------------------------- */

void hmp_info_retired_pages(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(RasRetiredPageList) list = qmp_query_retired_pages(&err);
    RasRetiredPageList *e;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "%-18s %-16s %10s %10s %5s %s\n", "address",
                   "reason", "pause-ns", "remap-ns", "pool", "lost");
    for (e = list; e; e = e->next) {
        monitor_printf(mon, "0x%016" PRIx64 " %-16s %10" PRIu64 " %10"
                       PRIu64 " %5u %s\n", e->value->addr,
                       RasRetireReason_str(e->value->reason),
                       e->value->pause_ns, e->value->remap_ns,
                       e->value->pool_index, e->value->lost ? "yes" : "no");
    }
}

void hmp_info_poisoned_pages(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(RasPoisonedPageList) list = qmp_query_poisoned_pages(&err);
    RasPoisonedPageList *e;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    for (e = list; e; e = e->next) {
        monitor_printf(mon, "0x%016" PRIx64 "\n", e->value->addr);
    }
}

void hmp_info_ras_pool(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(RasPoolInfo) info = qmp_query_ras_pool(&err);

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "size %" PRIu64 " bytes, %u pages used, %u free\n",
                   info->size, info->used, info->free);
}

void hmp_ras_retire_page(Monitor *mon, const QDict *qdict)
{
    uint64_t addr = qdict_get_int(qdict, "addr");
    int64_t pages = qdict_get_try_int(qdict, "pages", 1);
    g_autoptr(RasRetiredPageList) list = NULL;
    Error *err = NULL;

    if (ras_batch_check(pages, &err)) {
        list = qmp_ras_retire_pages(addr, pages, &err);
    }
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "retired %" PRId64 " page(s) from 0x%" PRIx64
                   ", vCPUs stopped %" PRIu64 " ns\n", pages,
                   list->value->addr, list->value->pause_ns);
}

/* ---- migration ---------------------------------------------------------- */

static int ras_policy_pre_save(void *opaque)
{
    RasPolicy *p = opaque;
    GArray *a = ras_poisoned_addrs(p);

    g_free(p->mig_poisoned);
    p->mig_npoisoned = a->len;
    p->mig_poisoned = (uint64_t *)g_array_free(a, false);
    return 0;
}

/* The destination poisons what the source had poisoned. */
static int ras_policy_post_load(void *opaque, int version_id)
{
    RasPolicy *p = opaque;
    uint32_t i;

    for (i = 0; i < p->mig_npoisoned; i++) {
        RasPage *pg = ras_page_get(p, p->mig_poisoned[i] &
                                      ~((uint64_t)p->page_size - 1));

        pg->poisoned = true;
        ras_poison_install(p, pg);
    }
    g_clear_pointer(&p->mig_poisoned, g_free);
    p->mig_npoisoned = 0;
    return 0;
}

/*
 * The policy's section: the poisoned pages (retired pages need nothing:
 * their RAM travels as any RAM, and the destination's pages are not
 * failing).  Both sides must have a ras-policy, as for any device.
 */
static const VMStateDescription vmstate_ras_policy = {
    .name = "qemu-tiers/ras-policy",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = ras_policy_pre_save,
    .post_load = ras_policy_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(mig_npoisoned, RasPolicy),
        VMSTATE_VARRAY_UINT32_ALLOC(mig_poisoned, RasPolicy, mig_npoisoned,
                                    0, vmstate_info_uint64, uint64_t),
        VMSTATE_END_OF_LIST()
    },
};

/* ---- the object --------------------------------------------------------- */

static void ras_policy_complete(UserCreatable *uc, Error **errp)
{
    RasPolicy *p = RAS_POLICY(uc);
    bool ambiguous = false;
    size_t size;

    object_resolve_path_type("", TYPE_RAS_POLICY, &ambiguous);
    if (ambiguous) {
        error_setg(errp, "only one ras-policy object per VM");
        return;
    }
    if (!p->pool_pages) {
        error_setg(errp, "pool-pages must be at least 1");
        return;
    }
    if (!p->ce_threshold) {
        error_setg(errp, "ce-threshold must be at least 1");
        return;
    }
    if (!p->ce_decay_ms) {
        error_setg(errp, "ce-decay-ms must be at least 1");
        return;
    }
    p->page_size = qemu_real_host_page_size();
    size = (size_t)p->pool_pages * p->page_size;
    p->pool_fd = qemu_memfd_create("qemu-tiers-ras-pool", size, false, 0, 0,
                                   errp);
    if (p->pool_fd < 0) {
        return;
    }
    p->pool_base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                        p->pool_fd, 0);
    if (p->pool_base == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot map the sequestered pool");
        close(p->pool_fd);
        p->pool_fd = -1;
        p->pool_base = NULL;
        return;
    }
    /*
     * Write every pool page now: the copy into it, while the vCPUs are
     * stopped, must not be its first write (a page allocation, or with
     * MAP_POPULATE a write-protect fault on a shared mapping: ~7 us
     * each here, most of a 512-page batch's pause; bench/ras.py).
     */
    memset(p->pool_base, 0, size);
    p->bh = qemu_bh_new(ras_policy_bh, p);
    exit_router_register_platform(&ras_policy_ops, p);
    vmstate_register_any(NULL, &vmstate_ras_policy, p);
}

static bool ras_policy_can_be_deleted(UserCreatable *uc)
{
    RasPolicy *p = RAS_POLICY(uc);
    g_autoptr(GArray) poisoned = ras_poisoned_addrs(p);

    /* Retired pages stay mapped from the pool for the VM's life. */
    return !p->pool_used && !poisoned->len;
}

#define RAS_PROP_U32(field)                                                 \
static void ras_get_##field(Object *obj, Visitor *v, const char *n,        \
                            void *opaque, Error **errp)                     \
{                                                                           \
    visit_type_uint32(v, n, &RAS_POLICY(obj)->field, errp);                 \
}                                                                           \
static void ras_set_##field(Object *obj, Visitor *v, const char *n,        \
                            void *opaque, Error **errp)                     \
{                                                                           \
    visit_type_uint32(v, n, &RAS_POLICY(obj)->field, errp);                 \
}

RAS_PROP_U32(pool_pages)
RAS_PROP_U32(ce_threshold)

static void ras_get_ce_decay_ms(Object *obj, Visitor *v, const char *n,
                                void *opaque, Error **errp)
{
    visit_type_uint64(v, n, &RAS_POLICY(obj)->ce_decay_ms, errp);
}

static void ras_set_ce_decay_ms(Object *obj, Visitor *v, const char *n,
                                void *opaque, Error **errp)
{
    visit_type_uint64(v, n, &RAS_POLICY(obj)->ce_decay_ms, errp);
}

static bool ras_get_skip_copy(Object *obj, Error **errp)
{
    return RAS_POLICY(obj)->skip_copy;
}

static void ras_set_skip_copy(Object *obj, bool value, Error **errp)
{
    RAS_POLICY(obj)->skip_copy = value;
}

static void ras_policy_init(Object *obj)
{
    RasPolicy *p = RAS_POLICY(obj);

    p->pool_fd = -1;
    p->pool_pages = RAS_DEFAULT_POOL_PAGES;
    p->ce_threshold = RAS_DEFAULT_CE_THRESHOLD;
    p->ce_decay_ms = RAS_DEFAULT_CE_DECAY_MS;
    p->pages = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                     g_free);
    p->retired = g_array_new(false, false, sizeof(RasRetiredPage));
    p->queue = g_array_new(false, false, sizeof(RasRequest));
}

static void ras_policy_finalize(Object *obj)
{
    RasPolicy *p = RAS_POLICY(obj);

    if (p->bh) {
        vmstate_unregister(NULL, &vmstate_ras_policy, p);
        exit_router_register_platform(NULL, NULL);
        qemu_bh_delete(p->bh);
    }
    if (p->pool_base) {
        munmap(p->pool_base, (size_t)p->pool_pages * p->page_size);
    }
    if (p->pool_fd >= 0) {
        close(p->pool_fd);
    }
    g_hash_table_destroy(p->pages);
    g_array_free(p->retired, true);
    g_array_free(p->queue, true);
    g_free(p->mig_poisoned);
}

static void ras_policy_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = ras_policy_complete;
    ucc->can_be_deleted = ras_policy_can_be_deleted;
    object_class_property_add(oc, "pool-pages", "uint32", ras_get_pool_pages,
                              ras_set_pool_pages, NULL, NULL);
    object_class_property_set_description(oc, "pool-pages",
        "Pages in the sequestered pool (default 64)");
    object_class_property_add(oc, "ce-threshold", "uint32",
                              ras_get_ce_threshold, ras_set_ce_threshold,
                              NULL, NULL);
    object_class_property_set_description(oc, "ce-threshold",
        "Corrected errors on one page that retire it (default 16)");
    object_class_property_add(oc, "ce-decay-ms", "uint64",
                              ras_get_ce_decay_ms, ras_set_ce_decay_ms,
                              NULL, NULL);
    object_class_property_set_description(oc, "ce-decay-ms",
        "Each page's count of corrected errors is halved this often "
        "(default 60000)");
    object_class_property_add_bool(oc, "x-skip-copy", ras_get_skip_copy,
                                   ras_set_skip_copy);
    object_class_property_set_description(oc, "x-skip-copy",
        "Test only: retire pages without copying them (broken on purpose)");
}

static const TypeInfo ras_policy_info = {
    .name = TYPE_RAS_POLICY,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(RasPolicy),
    .instance_init = ras_policy_init,
    .instance_finalize = ras_policy_finalize,
    .class_init = ras_policy_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void ras_policy_register_types(void)
{
    type_register_static(&ras_policy_info);
}

type_init(ras_policy_register_types);

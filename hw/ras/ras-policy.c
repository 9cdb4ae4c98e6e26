/*
 * qemu-tiers RAS: the ras-policy object, the platform handler that
 * retires failing guest pages while the guest runs.
 *
 *   -object ras-policy,id=ID[,pool-pages=N][,ce-threshold=N]
 *           [,ce-decay-ms=N]
 *   -object exit-route,id=R,event=mce,handler=platform
 *
 * Retirement of a guest page (docs/ras.rst): stop the vCPUs, copy the
 * page into a page of the sequestered pool (a memfd the guest never
 * maps), map that pool page over the old one at the same host address,
 * mark it dirty for migration, resume.  Guest-physical address, memory
 * slot and host virtual address stay; only the host page behind them
 * changes.  KVM follows through its MMU notifier, TCG's softmmu TLB holds
 * host addresses and needs no flush.
 *
 * Policy (the platform handler, for routes handler=platform): a
 * corrected machine check with a valid address counts against its page
 * (halved every ce-decay-ms, as Linux's CEC decays its counts); at
 * ce-threshold the page is retired and the error handled, the guest
 * sees nothing.  Uncorrected errors are forwarded to the guest (their
 * data is gone: never a silent substitute page) and the page is recorded
 * as poisoned.  Everything else is declined (the next route decides).
 *
 * Locking: the BQL for everything here (QMP, the bottom half, the
 * platform handler); retirements run in the main loop only, never on a
 * vCPU thread, because they stop every vCPU.
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
#include "accel/route/exit-router.h"
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
} RasPage;

/* A retirement the platform handler asked for, run in the bottom half. */
typedef struct RasRequest {
    uint64_t addr;
    RasRetireReason reason;
} RasRequest;

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
    pg = g_hash_table_lookup(p->pages, &addr);
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
 * Retires the page at @addr (page aligned) into pool page @index, which
 * the caller has taken.  Main loop, BQL; stops the vCPUs while it
 * copies and maps.  On failure nothing has changed.
 */
static bool ras_retire(RasPolicy *p, uint64_t addr, RasRetireReason reason,
                       uint32_t index, RasRetiredPage *out, Error **errp)
{
    MemoryRegion *mr;
    uint64_t offset;
    uint8_t *hva;
    void *map;
    int64_t t0, t1;
    RasPage *pg;
    RasRetiredPage r;

    assert(bql_locked());
    assert(!current_cpu);
    if (!ras_page_check(p, addr, &mr, &offset, errp)) {
        return false;
    }
    hva = (uint8_t *)memory_region_get_ram_ptr(mr) + offset;

    t0 = get_clock();
    pause_all_vcpus();
    if (!p->skip_copy) {
        memcpy(p->pool_base + (size_t)index * p->page_size, hva,
               p->page_size);
    }
    map = mmap(hva, p->page_size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED, p->pool_fd,
               (off_t)index * p->page_size);
    if (map == MAP_FAILED) {
        resume_all_vcpus();
        error_setg_errno(errp, errno, "cannot map pool page %u over guest "
                         "page 0x%" PRIx64, index, addr);
        memory_region_unref(mr);
        return false;
    }
    /* The migration bitmap: the page is sent again, whatever it held. */
    memory_region_set_dirty(mr, offset, p->page_size);
    resume_all_vcpus();
    t1 = get_clock();
    memory_region_unref(mr);

    pg = ras_page_get(p, addr);
    pg->retired = true;
    r = (RasRetiredPage) {
        .addr = addr, .reason = reason, .pause_ns = t1 - t0,
        .pool_index = index,
    };
    g_array_append_val(p->retired, r);
    p->pool_used++;
    trace_ras_retire(addr, RasRetireReason_str(reason), index, t1 - t0);
    qapi_event_send_memory_page_retired(addr, reason, t1 - t0);
    if (out) {
        *out = r;
    }
    return true;
}

/*
 * The pool page for the next retirement, or false if the pool is full
 * (queued retirements hold their page).  Pool pages are used in order
 * and never given back, and retirements run one at a time, so the next
 * one is always the first unused.
 */
static bool ras_pool_take(RasPolicy *p, uint32_t *index)
{
    if (p->pool_used + p->pool_reserved >= p->pool_pages) {
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

/* The retirements the platform handler queued. */
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
        uint32_t index;

        pg->pending = false;
        p->pool_reserved--;
        if (!ras_pool_take(p, &index)) {
            ras_pool_exhausted(req->addr, req->reason);
            continue;
        }
        if (!ras_retire(p, req->addr, req->reason, index, NULL, &err)) {
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

/* The platform handler: called with the BQL held, maybe on a vCPU. */
static ExitPlatformResult ras_policy_event(void *opaque, ExitPlatformEvent *ev)
{
    RasPolicy *p = opaque;
    uint64_t addr = ev->addr & ~((uint64_t)p->page_size - 1);
    RasPage *pg;
    RasRequest req;
    uint32_t index;

    assert(bql_locked());
    if (ev->type != EXIT_EVENT_MCE || !(ev->data & RAS_MCI_STATUS_ADDRV)) {
        return EXIT_PLATFORM_DECLINE;
    }
    if (ev->class != EXIT_CLASS_CORRECTED) {
        /* Consumed or lost data: only the guest can deal with it. */
        ras_page_get(p, addr)->poisoned = true;
        trace_ras_poisoned(addr);
        return EXIT_PLATFORM_DELIVER;
    }
    pg = ras_page_get(p, addr);
    if (pg->retired || pg->pending) {
        return EXIT_PLATFORM_HANDLED;   /* a stale report of the old page */
    }
    ras_page_decay(p, pg, qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
    pg->ce_count++;
    trace_ras_corrected(addr, pg->ce_count);
    if (pg->ce_count < p->ce_threshold) {
        return EXIT_PLATFORM_HANDLED;
    }
    if (!ras_pool_take(p, &index)) {
        ras_pool_exhausted(addr, RAS_RETIRE_REASON_CORRECTED_ERRORS);
        return EXIT_PLATFORM_DELIVER;
    }
    p->pool_reserved++;
    pg->pending = true;
    req = (RasRequest) { addr, RAS_RETIRE_REASON_CORRECTED_ERRORS };
    g_array_append_val(p->queue, req);
    qemu_bh_schedule(p->bh);
    return EXIT_PLATFORM_HANDLED;
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
    MemoryRegion *mr;
    uint64_t offset;
    uint32_t index;

    if (!p) {
        return NULL;
    }
    addr &= ~((uint64_t)p->page_size - 1);
    /* Say what is wrong with the page before saying the pool is full. */
    if (!ras_page_check(p, addr, &mr, &offset, errp)) {
        return NULL;
    }
    memory_region_unref(mr);
    if (!ras_pool_take(p, &index)) {
        ras_pool_exhausted(addr, RAS_RETIRE_REASON_QMP);
        error_setg(errp, "the sequestered pool is full (%u pages)",
                   p->pool_pages);
        return NULL;
    }
    if (!ras_retire(p, addr, RAS_RETIRE_REASON_QMP, index, &r, errp)) {
        return NULL;
    }
    return g_memdup2(&r, sizeof(r));
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
    p->bh = qemu_bh_new(ras_policy_bh, p);
    exit_router_register_platform(&ras_policy_ops, p);
}

static bool ras_policy_can_be_deleted(UserCreatable *uc)
{
    /* Retired pages stay mapped from the pool for the VM's life. */
    return !RAS_POLICY(uc)->pool_used;
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

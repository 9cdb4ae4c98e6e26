/*
 * qemu-tiers exit router: platform events on x86 -- raising them.
 *
 * The QMP commands inject-smi and inject-mce, NMIs from QMP, HMP and
 * watchdogs (exit_route_nmi()), and the vMCE a host memory error becomes
 * (exit_route_memory_error_mce()).  Each asks the router first
 * (exit_route_event(), router-events.c) and, when told to deliver, does
 * what QEMU does: cpu_interrupt(CPU_INTERRUPT_SMI), an NMI through the
 * LAPIC (or the CPU's NMI line without one), cpu_x86_inject_mce().
 *
 * Locking: everything here runs with the BQL held (QMP, HMP, device
 * emulation, bottom halves).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-exit-route.h"
#include "qapi/qapi-events-run-state.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "system/system.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "hw/i386/x86.h"
#include "hw/i386/apic.h"
#include "hw/nmi.h"
#include "monitor/hmp.h"
#include "qobject/qdict.h"
#include "system/hw_accel.h"
#include "target/i386/cpu.h"
#include "accel/route/exit-router-x86.h"

/* An event of @type from @source, with no fields set yet. */
static ExitPlatformEvent exit_event_new(ExitEventType type,
                                        ExitPlatformSource source, int cpu)
{
    return (ExitPlatformEvent) {
        .type = type, .source = source, .bank = -1, .cpu = cpu,
    };
}

/* The vCPU with index @index, or NULL with @errp set. */
static CPUState *exit_event_cpu(int64_t index, Error **errp)
{
    CPUState *cs = index >= 0 && index <= INT_MAX ? qemu_get_cpu(index) :
                   NULL;

    if (!cs) {
        error_setg(errp, "there is no vCPU with index %" PRId64, index);
    }
    return cs;
}

/*
 * A handler may send the event to another vCPU; one that does not exist
 * keeps the original target (router-events.c validated its answer).
 */
static CPUState *exit_event_target(const ExitPlatformEvent *ev)
{
    return ev->cpu >= 0 ? qemu_get_cpu(ev->cpu) : NULL;
}

/* ---- SMI ----------------------------------------------------------------- */

/* inject-smi and HMP smi: every vCPU (@cpu_index -1), or one. */
static void exit_inject_smi(int64_t cpu_index, ExitPlatformSource source,
                            Error **errp)
{
    ExitPlatformEvent ev;
    CPUState *cs;

    if (cpu_index >= 0 && !exit_event_cpu(cpu_index, errp)) {
        return;
    }
    if (!object_dynamic_cast(OBJECT(current_machine), TYPE_X86_MACHINE) ||
        !x86_machine_is_smm_enabled(X86_MACHINE(current_machine))) {
        error_setg(errp, "the machine has no SMM (smm=off, or an "
                   "accelerator without it): no SMI to raise");
        return;
    }
    ev = exit_event_new(EXIT_EVENT_SMI, source, cpu_index);
    if (exit_route_event(&ev) != EXIT_EVENT_VERDICT_DELIVER) {
        return;
    }
    cs = exit_event_target(&ev);
    if (cs) {
        cpu_interrupt(cs, CPU_INTERRUPT_SMI);
        return;
    }
    CPU_FOREACH(cs) {
        cpu_interrupt(cs, CPU_INTERRUPT_SMI);
    }
}

void qmp_inject_smi(bool has_cpu_index, uint32_t cpu_index, Error **errp)
{
    exit_inject_smi(has_cpu_index ? (int64_t)cpu_index : -1, EXIT_SOURCE_QMP,
                    errp);
}

void hmp_smi(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    exit_inject_smi(qdict_get_try_int(qdict, "cpu_index", -1),
                    EXIT_SOURCE_HMP, &err);
    hmp_handle_error(mon, err);
}

bool exit_route_smi(ExitPlatformSource source, uint8_t cmd, int cpu)
{
    ExitPlatformEvent ev = exit_event_new(EXIT_EVENT_SMI, source, cpu);
    CPUState *cs;

    ev.data = cmd;
    if (exit_route_event(&ev) != EXIT_EVENT_VERDICT_DELIVER) {
        return false;
    }
    cs = exit_event_target(&ev);
    if (ev.cpu == cpu || !cs) {
        return true;
    }
    cpu_interrupt(cs, CPU_INTERRUPT_SMI);
    return false;
}

/* ---- NMI ----------------------------------------------------------------- */

/* What x86_nmi() does for each vCPU, for one. */
static void exit_nmi_deliver_one(CPUState *cs)
{
    X86CPU *cpu = X86_CPU(cs);

    if (cpu_is_apic_enabled(cpu->apic_state)) {
        apic_deliver_nmi(cpu->apic_state);
    } else {
        cpu_interrupt(cs, CPU_INTERRUPT_NMI);
    }
}

void exit_route_nmi(int64_t cpu_index, ExitPlatformSource source,
                    int monitor_cpu, Error **errp)
{
    ExitPlatformEvent ev;
    CPUState *cs;

    if (cpu_index >= 0 && !exit_event_cpu(cpu_index, errp)) {
        return;
    }
    ev = exit_event_new(EXIT_EVENT_NMI, source, cpu_index);
    if (exit_route_event(&ev) != EXIT_EVENT_VERDICT_DELIVER) {
        return;
    }
    cs = exit_event_target(&ev);
    if (cs) {
        exit_nmi_deliver_one(cs);
        return;
    }
    /* Every vCPU: QEMU's own path (x86_nmi() ignores the index). */
    nmi_monitor_handle(monitor_cpu, errp);
}

/* ---- MCE ----------------------------------------------------------------- */

/*
 * The status words of a memory error of @class, as QEMU builds them for
 * a host memory error on an Intel CPU (kvm_mce_inject()): MCi_STATUS,
 * MCG_STATUS; MCi_MISC is the physical address at page granularity.
 */
static void exit_mce_preset(ExitErrorClass class, uint64_t *status,
                            uint64_t *mcg_status)
{
    const uint64_t base = MCI_STATUS_VAL | MCI_STATUS_EN |
                          MCI_STATUS_MISCV | MCI_STATUS_ADDRV;

    switch (class) {
    case EXIT_CLASS_CORRECTED:
        /* A memory controller read error (MCA code 1MMMCCCC: 0x9f). */
        *status = base | 0x9f;
        *mcg_status = 0;
        break;
    case EXIT_CLASS_SRAR:
        *status = base | MCI_STATUS_UC | MCI_STATUS_S | MCI_STATUS_AR |
                  0x134;
        *mcg_status = MCG_STATUS_MCIP | MCG_STATUS_EIPV;
        break;
    case EXIT_CLASS_FATAL:
        *status = MCI_STATUS_VAL | MCI_STATUS_UC | MCI_STATUS_EN |
                  MCI_STATUS_PCC;
        *mcg_status = MCG_STATUS_MCIP;
        break;
    case EXIT_CLASS_SRAO:
    default:
        *status = base | MCI_STATUS_UC | MCI_STATUS_S | 0xc0;
        *mcg_status = MCG_STATUS_MCIP | MCG_STATUS_RIPV;
        break;
    }
}

/* The class of a machine check with this MCi_STATUS. */
static ExitErrorClass exit_mce_class(uint64_t status)
{
    if (!(status & MCI_STATUS_UC)) {
        return EXIT_CLASS_CORRECTED;
    }
    if (status & MCI_STATUS_PCC) {
        return EXIT_CLASS_FATAL;
    }
    return status & MCI_STATUS_AR ? EXIT_CLASS_SRAR : EXIT_CLASS_SRAO;
}

bool exit_route_mce(X86CPU *cpu, int bank, uint64_t status,
                    uint64_t mcg_status, uint64_t addr, uint64_t misc,
                    int flags, ExitPlatformSource source, Monitor *mon)
{
    ExitPlatformEvent ev = exit_event_new(EXIT_EVENT_MCE, source,
                                          CPU(cpu)->cpu_index);
    CPUState *cs;

    ev.class = exit_mce_class(status);
    ev.bank = bank;
    ev.addr = addr;
    ev.data = status;
    if (exit_route_event(&ev) != EXIT_EVENT_VERDICT_DELIVER) {
        return false;
    }
    cs = exit_event_target(&ev);
    cpu_x86_inject_mce(mon, cs ? X86_CPU(cs) : cpu, bank, status, mcg_status,
                       addr, misc, flags);
    return true;
}

void qmp_inject_mce(uint32_t cpu_index, bool has_bank, uint8_t bank,
                    bool has_class, ExitEventClass class,
                    bool has_status, uint64_t status,
                    bool has_mcg_status, uint64_t mcg_status,
                    bool has_addr, uint64_t addr,
                    bool has_misc, uint64_t misc,
                    bool has_broadcast, bool broadcast, Error **errp)
{
    CPUState *cs = exit_event_cpu(cpu_index, errp);
    uint64_t preset_status, preset_mcg;
    unsigned banks;
    X86CPU *cpu;

    if (!cs) {
        return;
    }
    cpu = X86_CPU(cs);
    banks = cpu->env.mcg_cap & 0xff;
    if (!has_bank) {
        bank = 9;
    }
    if (bank >= banks) {
        error_setg(errp, "bank %u is beyond vCPU %u's %u machine-check "
                   "banks", bank, cpu_index, banks);
        return;
    }
    if (!has_class) {
        class = EXIT_EVENT_CLASS_SRAO;
    }
    if (class > EXIT_EVENT_CLASS_FATAL) {
        error_setg(errp, "class=%s is a memory-error class; inject-mce "
                   "takes corrected, srao, srar or fatal",
                   ExitEventClass_str(class));
        return;
    }
    exit_mce_preset((ExitErrorClass)class, &preset_status, &preset_mcg);
    status = has_status ? status : preset_status;
    mcg_status = has_mcg_status ? mcg_status : preset_mcg;
    misc = has_misc ? misc : (MCM_ADDR_PHYS << 6) | 0xc;
    addr = has_addr ? addr : 0;
    if (!(status & MCI_STATUS_VAL)) {
        error_setg(errp, "status 0x%" PRIx64 " is not valid (VAL, bit 63, "
                   "is clear)", status);
        return;
    }
    exit_route_mce(cpu, bank, status, mcg_status, addr, misc,
                   has_broadcast && broadcast ? MCE_INJECT_BROADCAST : 0,
                   EXIT_SOURCE_QMP, NULL);
}

/* ---- host memory errors (SIGBUS BUS_MCEERR_AO/AR) ------------------------ */

/*
 * Without KVM a host memory error used to kill QEMU (the KVM stubs make
 * sigbus_handler() re-raise it).  Now it reaches the router as under KVM:
 * in a vCPU thread it arrives as a signal, so it is queued here without a
 * lock and a bottom half routes it in the main loop; the main thread
 * gets it through signalfd, in the main loop too.
 *
 * The limit of this path: an action-required error that a real fault of
 * a TCG access raised faults again when the access is retried, before
 * the bottom half has run; injected (queued) signals do not.  Replacing
 * the failing page is the RAS policy's job.
 */
#define EXIT_SIGBUS_SLOTS 8

enum { EXIT_SIGBUS_FREE, EXIT_SIGBUS_FILLING, EXIT_SIGBUS_READY };

typedef struct ExitSigbus {
    int state;                  /* EXIT_SIGBUS_*, atomic */
    int code;
    void *addr;
    int cpu;                    /* the vCPU whose thread got it, or -1 */
} ExitSigbus;

static ExitSigbus exit_sigbus[EXIT_SIGBUS_SLOTS];
static QEMUBH *exit_sigbus_bh;  /* set once, in the main loop */

typedef struct ExitGpaSearch {
    const MemoryRegion *mr;
    ram_addr_t offset;
    hwaddr gpa;
    bool found;
} ExitGpaSearch;

static bool exit_gpa_range(Int128 start, Int128 len, const MemoryRegion *mr,
                           hwaddr offset_in_region, void *opaque)
{
    ExitGpaSearch *s = opaque;

    if (mr != s->mr || s->offset < offset_in_region ||
        s->offset - offset_in_region >= int128_get64(len)) {
        return false;
    }
    s->gpa = int128_get64(start) + s->offset - offset_in_region;
    s->found = true;
    return true;
}

/* The guest-physical address of host address @host, if it is guest RAM. */
static bool exit_host_to_gpa(void *host, hwaddr *gpa)
{
    ExitGpaSearch s = { 0 };

    RCU_READ_LOCK_GUARD();
    s.mr = memory_region_from_host(host, &s.offset);
    if (!s.mr || !memory_region_is_ram((MemoryRegion *)s.mr)) {
        return false;
    }
    flatview_for_each_range(address_space_to_flatview(&address_space_memory),
                            exit_gpa_range, &s);
    *gpa = s.gpa;
    return s.found;
}

/*
 * The vMCE of a host memory error at @gpa, as kvm_mce_inject() builds it
 * (Intel: SRAO 0xc0 or SRAR 0x134, UC S; AMD: deferred/poison), raised
 * through the router as an MCE of source host.
 */
static void exit_memory_error_mce(X86CPU *cpu, hwaddr gpa, bool ar)
{
    CPUX86State *env = &cpu->env;
    uint64_t status = MCI_STATUS_VAL | MCI_STATUS_EN | MCI_STATUS_MISCV |
                      MCI_STATUS_ADDRV;
    uint64_t mcg_status = MCG_STATUS_MCIP | MCG_STATUS_RIPV;
    int flags;

    if (!IS_AMD_CPU(env)) {
        status |= MCI_STATUS_S | MCI_STATUS_UC;
        status |= ar ? MCI_STATUS_AR | 0x134 : 0xc0;
        mcg_status |= ar ? MCG_STATUS_EIPV : 0;
    } else {
        status |= ar ? MCI_STATUS_UC | MCI_STATUS_POISON :
                       MCI_STATUS_DEFERRED | MCI_STATUS_POISON;
        mcg_status |= ar ? MCG_STATUS_EIPV : 0;
    }
    flags = cpu_x86_support_mca_broadcast(env) ? MCE_INJECT_BROADCAST : 0;
    cpu_synchronize_state(CPU(cpu));
    if (env->mcg_ext_ctl & MCG_EXT_CTL_LMCE_EN) {
        mcg_status |= MCG_STATUS_LMCE;
        flags = 0;
    }
    exit_route_mce(cpu, 9, status, mcg_status, gpa,
                   (MCM_ADDR_PHYS << 6) | 0xc, flags, EXIT_SOURCE_HOST, NULL);
}

bool exit_route_memory_error(CPUState *cs, int code, hwaddr gpa)
{
    bool ar = code == BUS_MCEERR_AR;
    ExitPlatformEvent ev = exit_event_new(EXIT_EVENT_MEMORY_ERROR,
                                          EXIT_SOURCE_HOST, -1);
    ExitEventVerdict verdict;

    ev.class = ar ? EXIT_CLASS_AR : EXIT_CLASS_AO;
    ev.addr = gpa;
    ev.cpu = cs ? cs->cpu_index : -1;
    verdict = exit_route_event(&ev);
    if (ar && verdict == EXIT_EVENT_VERDICT_SUPPRESS) {
        /*
         * The vCPU cannot complete the access: without the #MC it would
         * fault again at once.  Only a handler that dealt with the page
         * (handled) may keep it from the guest.
         */
        warn_report_once("an action-required memory error cannot be "
                         "ignored: its vMCE is delivered");
        return true;
    }
    return verdict == EXIT_EVENT_VERDICT_DELIVER;
}

void exit_route_poison_consumed(uint64_t gpa)
{
    assert(bql_locked());
    if (!current_cpu) {
        return;
    }
    exit_memory_error_mce(X86_CPU(current_cpu), gpa, true);
}

static void exit_memory_failure_event(MemoryFailureAction action, bool ar)
{
    MemoryFailureFlags mff = { .action_required = ar, .recursive = false };

    qapi_event_send_memory_failure(MEMORY_FAILURE_RECIPIENT_HYPERVISOR,
                                   action, &mff);
}

/*
 * One host memory error without KVM, in the main loop, handled as
 * kvm_arch_on_sigbus_vcpu() handles it under KVM.  BQL.
 */
static void exit_memory_error(int code, void *addr, int cpu_index)
{
    bool ar = code == BUS_MCEERR_AR;
    CPUState *cs = cpu_index >= 0 ? qemu_get_cpu(cpu_index) : NULL;
    X86CPU *cpu = X86_CPU(cs ?: first_cpu);
    hwaddr gpa;

    if ((cpu->env.mcg_cap & MCG_SER_P) && addr &&
        exit_host_to_gpa(addr, &gpa)) {
        if (exit_route_memory_error(cs, code, gpa)) {
            exit_memory_error_mce(cpu, gpa, ar);
        }
        (ar ? error_report : warn_report)("Guest MCE Memory Error at QEMU "
            "addr %p and GUEST addr 0x%" HWADDR_PRIx " of type %s routed",
            addr, gpa, ar ? "BUS_MCEERR_AR" : "BUS_MCEERR_AO");
        return;
    }
    /* QEMU's own memory, or a vCPU model that cannot be told (no SER_P) */
    if (ar) {
        exit_memory_failure_event(MEMORY_FAILURE_ACTION_FATAL, true);
        error_report("QEMU got Hardware memory error at addr %p", addr);
        exit(1);
    }
    warn_report("Hardware memory error at addr %p of type %s for memory "
                "used by QEMU itself instead of guest system!", addr,
                "BUS_MCEERR_AO");
    exit_memory_failure_event(MEMORY_FAILURE_ACTION_IGNORE, false);
}

static void exit_sigbus_bh_run(void *opaque)
{
    unsigned i;

    for (i = 0; i < EXIT_SIGBUS_SLOTS; i++) {
        ExitSigbus *s = &exit_sigbus[i];

        if (qatomic_load_acquire(&s->state) != EXIT_SIGBUS_READY) {
            continue;
        }
        exit_memory_error(s->code, s->addr, s->cpu);
        qatomic_store_release(&s->state, EXIT_SIGBUS_FREE);
    }
}

bool exit_route_host_memory_error(int code, void *addr, CPUState *cpu)
{
    QEMUBH *bh = qatomic_read(&exit_sigbus_bh);
    unsigned i;

    /* Async-signal-safe: atomics, and qemu_bh_schedule() takes no lock. */
    if (!bh) {
        return false;           /* before the main loop: as before */
    }
    if (code == BUS_MCEERR_AR) {
        /*
         * The same action-required error again before the main loop took
         * the first: the vCPU is re-executing a load from a poisoned page.
         * Under TCG that access cannot be unwound safely, so QEMU stops as
         * it always did, saying why.
         */
        for (i = 0; i < EXIT_SIGBUS_SLOTS; i++) {
            ExitSigbus *s = &exit_sigbus[i];

            if (qatomic_load_acquire(&s->state) == EXIT_SIGBUS_READY &&
                s->code == code && s->addr == addr) {
                static const char msg[] = "qemu: host memory error "
                    "(action required) repeats on guest RAM: a real "
                    "poisoned-page fault, which TCG cannot unwind\n";

                if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
                    /* nothing more a signal handler can do */
                }
                return false;
            }
        }
    }
    for (i = 0; i < EXIT_SIGBUS_SLOTS; i++) {
        ExitSigbus *s = &exit_sigbus[i];

        if (qatomic_cmpxchg(&s->state, EXIT_SIGBUS_FREE,
                            EXIT_SIGBUS_FILLING) != EXIT_SIGBUS_FREE) {
            continue;
        }
        s->code = code;
        s->addr = addr;
        s->cpu = cpu ? cpu->cpu_index : -1;
        qatomic_store_release(&s->state, EXIT_SIGBUS_READY);
        qemu_bh_schedule(bh);
        return true;
    }
    return false;               /* a storm of them: as before */
}

static void exit_sigbus_init(Notifier *n, void *data)
{
    qatomic_set(&exit_sigbus_bh, qemu_bh_new(exit_sigbus_bh_run, NULL));
}

static Notifier exit_sigbus_machine_done = {
    .notify = exit_sigbus_init,
};

static void exit_platform_x86_init(void)
{
    qemu_add_machine_init_done_notifier(&exit_sigbus_machine_done);
}

type_init(exit_platform_x86_init);

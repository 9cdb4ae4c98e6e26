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
#include "qemu/main-loop.h"
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

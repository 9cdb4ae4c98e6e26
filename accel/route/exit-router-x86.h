/*
 * qemu-tiers exit router: platform events of x86 targets, for target
 * code (platform-x86.c).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_ROUTE_EXIT_ROUTER_X86_H
#define ACCEL_ROUTE_EXIT_ROUTER_X86_H

#include "accel/route/exit-router.h"
#include "target/i386/cpu.h"

/*
 * A machine check about to be raised by @source (cpu_x86_inject_mce()'s
 * arguments); raises it (on the vCPU a handler chose, or @cpu) if the
 * router says deliver, and returns whether it did.  BQL.
 */
bool exit_route_mce(X86CPU *cpu, int bank, uint64_t status,
                    uint64_t mcg_status, uint64_t addr, uint64_t misc,
                    int flags, ExitPlatformSource source, Monitor *mon);

/*
 * A host memory error (SIGBUS @code BUS_MCEERR_AO or _AR) at guest address
 * @gpa, seen by vCPU @cs (NULL: the main thread): routes the event
 * memory-error, source host.  True: raise its vMCE (QEMU's behaviour).
 * An AR error cannot be ignored (the access would fault again); only a
 * handler that dealt with the page keeps it from the guest.  BQL.
 */
bool exit_route_memory_error(CPUState *cs, int code, hwaddr gpa);

#endif

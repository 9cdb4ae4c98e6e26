/*
 * qemu-tiers exit router: no-exit paths.
 *
 * A route whose handler needs no synchronous answer (today: ignore on
 * writes) can be served without the guest leaving the kernel: under KVM
 * an ioeventfd per address absorbs the write in the kernel.  The data is
 * discarded, which is exactly what "ignore" does, so there is nothing to
 * flush before a later read.  The eventfd's counter is the number of
 * writes absorbed, so the route's statistics stay exact.  Without KVM,
 * or when KVM refuses, the route is served by a normal exit.
 *
 * Locking: install/remove/count run with the BQL held; KVM serialises
 * its io bus changes itself (kvm_io_bus swapped under SRCU).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_ROUTE_NOEXIT_H
#define ACCEL_ROUTE_NOEXIT_H

#include "accel/route/route-table.h"

typedef struct ExitNoExit ExitNoExit;

/* Most addresses one route may cover with no-exit paths. */
#define EXIT_NOEXIT_MAX_ADDRS 16

/*
 * Install no-exit paths for the writes @spec matches; @access_size is 0
 * for any size.  Returns NULL (and installs nothing) when the
 * accelerator cannot absorb them all.
 */
ExitNoExit *exit_noexit_install(const ExitRouteSpec *spec,
                                unsigned access_size);
void exit_noexit_remove(ExitNoExit *ne);

/* Writes absorbed since the last call. */
uint64_t exit_noexit_collect(ExitNoExit *ne);

/*
 * MSRs the router must see.  Under KVM, MSR accesses are handled in the
 * kernel unless its MSR filter sends them to userspace; the router asks
 * for one filter range per MSR route whose handler is not "device"
 * (replacing the previous set).  Returns 0, or a negative errno when the
 * ranges do not fit (KVM has 16, shared with QEMU's own MSR handlers).
 * Without KVM: nothing to do (TCG's helpers always ask the router).
 */
typedef struct ExitMsrRange {
    uint32_t base, count;
    bool read, write;
} ExitMsrRange;
int exit_noexit_msr_filter(const ExitMsrRange *ranges, int n);

#endif

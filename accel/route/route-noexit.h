/*
 * qemu-tiers exit router: no-exit paths.
 *
 * A route whose handler needs no synchronous answer (today: ignore on
 * writes) can be served without the guest leaving the kernel: under KVM
 * an ioeventfd per address absorbs the write in the kernel.  The data is
 * discarded, which is exactly what "ignore" does, so there is nothing to
 * flush before a later read.  The eventfd's counter is the number of
 * writes absorbed, so the route's statistics stay exact.  Without KVM,
 * or when KVM refuses, the route is served by a normal exit.  The
 * ioeventfds match exactly the writes the route matches
 * (exit_noexit_plan()), so the accelerators agree on every access.
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
/* At most one ioeventfd per address and access size. */
#define EXIT_NOEXIT_MAX_KICKS (EXIT_NOEXIT_MAX_ADDRS * 4)

/* One ioeventfd: writes of exactly @len bytes at exactly @addr. */
typedef struct ExitNoExitKick {
    uint64_t addr;
    unsigned len;
} ExitNoExitKick;

/*
 * The ioeventfds that absorb exactly the writes @spec matches, into
 * @kicks; returns how many, or 0 if it cannot be done (then the route's
 * writes exit as usual).  A KVM ioeventfd matches one address and, with
 * a length, one access size; without a length (0) it matches any width,
 * including a write that starts on the route's last port and runs past
 * it, which the route does not match (TCG and qtest send that write to
 * the device).  So: one ioeventfd per address and per access size the
 * route accepts whose whole extent lies in the route, never length 0.
 * Pure: unit-tested in tests/unit/test-route-table.c.
 */
static inline unsigned exit_noexit_plan(const ExitRouteSpec *spec,
                                        ExitNoExitKick *kicks)
{
    uint64_t addrs = spec->last - spec->start + 1, a;
    unsigned n = 0, len;

    if ((spec->type != EXIT_EVENT_PIO && spec->type != EXIT_EVENT_MMIO) ||
        spec->dir_mask != EXIT_DIR_WRITE || spec->start > spec->last ||
        addrs > EXIT_NOEXIT_MAX_ADDRS) {
        return 0;
    }
    for (a = spec->start; a <= spec->last; a++) {
        /* Port I/O is at most 4 bytes wide. */
        for (len = 1; len <= (spec->type == EXIT_EVENT_PIO ? 4 : 8);
             len <<= 1) {
            if ((spec->size_mask & len) && len - 1 <= spec->last - a) {
                kicks[n++] = (ExitNoExitKick) { .addr = a, .len = len };
            }
        }
    }
    return n;
}

/*
 * Install the no-exit paths exit_noexit_plan() gives for @spec.  Returns
 * NULL (and installs nothing) when the accelerator cannot absorb them
 * all.
 */
ExitNoExit *exit_noexit_install(const ExitRouteSpec *spec);
void exit_noexit_remove(ExitNoExit *ne);

/* Writes absorbed since the last call. */
uint64_t exit_noexit_collect(ExitNoExit *ne);

/*
 * MSRs the router must see.  Under KVM, MSR accesses are handled in the
 * kernel unless its MSR filter sends them to userspace; the router asks
 * for one filter range per MSR route whose handler is not "device"
 * (replacing the previous set).  Returns 0, or a negative errno when the
 * ranges do not fit (KVM has 16, shared with QEMU's own MSR handlers).
 * Without KVM: nothing to do and no limit (TCG's helpers always ask the
 * router).
 */
typedef struct ExitMsrRange {
    uint32_t base, count;
    bool read, write;
} ExitMsrRange;
int exit_noexit_msr_filter(const ExitMsrRange *ranges, int n);

#endif

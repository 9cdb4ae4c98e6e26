/*
 * qemu-tiers exit router: no-exit paths under KVM (ioeventfd).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "qemu/event_notifier.h"
#include "system/kvm.h"
#include "accel/route/route-noexit.h"
#ifdef TARGET_I386
#include "kvm/kvm_i386.h"
#endif
#include "trace.h"

struct ExitNoExit {
    EventNotifier notifier;     /* one eventfd, shared by every ioeventfd */
    ExitRouteSpec spec;
    ExitNoExitKick kicks[EXIT_NOEXIT_MAX_KICKS];
    unsigned n;                 /* ioeventfds registered so far */
};

static int exit_noexit_ioeventfd(ExitNoExit *ne, const ExitNoExitKick *k,
                                 bool assign)
{
    struct kvm_ioeventfd kick = {
        .addr = k->addr,
        .len = k->len,
        .fd = event_notifier_get_fd(&ne->notifier),
        .datamatch = ne->spec.datamatch,
    };

    if (ne->spec.type == EXIT_EVENT_PIO) {
        kick.flags |= KVM_IOEVENTFD_FLAG_PIO;
    }
    if (ne->spec.has_datamatch) {
        kick.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    }
    if (!assign) {
        kick.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    }
    return kvm_vm_ioctl(kvm_state, KVM_IOEVENTFD, &kick);
}

void exit_noexit_remove(ExitNoExit *ne)
{
    unsigned i;

    for (i = 0; i < ne->n; i++) {
        exit_noexit_ioeventfd(ne, &ne->kicks[i], false);
    }
    event_notifier_cleanup(&ne->notifier);
    g_free(ne);
}

ExitNoExit *exit_noexit_install(const ExitRouteSpec *spec)
{
    ExitNoExitKick kicks[EXIT_NOEXIT_MAX_KICKS];
    unsigned n = exit_noexit_plan(spec, kicks), i;
    ExitNoExit *ne;
    int r;

    if (!kvm_enabled() || !n) {
        return NULL;
    }
    ne = g_new0(ExitNoExit, 1);
    if (event_notifier_init(&ne->notifier, false) < 0) {
        g_free(ne);
        return NULL;
    }
    ne->spec = *spec;
    memcpy(ne->kicks, kicks, n * sizeof(kicks[0]));
    for (i = 0; i < n; i++) {
        r = exit_noexit_ioeventfd(ne, &kicks[i], true);
        if (r < 0) {
            trace_exit_noexit_refused(kicks[i].addr, kicks[i].len, r);
            exit_noexit_remove(ne);
            return NULL;
        }
        ne->n++;
    }
    trace_exit_noexit_install(spec->start, spec->last - spec->start + 1, n);
    return ne;
}

uint64_t exit_noexit_collect(ExitNoExit *ne)
{
    uint64_t n = 0;
    ssize_t len;

    /* An eventfd read returns the writes signalled since the last one. */
    len = read(event_notifier_get_fd(&ne->notifier), &n, sizeof(n));
    return len == sizeof(n) ? n : 0;
}

int exit_noexit_msr_filter(const ExitMsrRange *ranges, int n)
{
#ifdef TARGET_I386
    struct kvm_msr_filter_range kr[KVM_MSR_FILTER_MAX_RANGES] = { };
    int i;

    if (!kvm_enabled()) {
        return 0;               /* no filter: TCG asks the router anyway */
    }
    if (n > KVM_MSR_FILTER_MAX_RANGES) {
        return -ENOSPC;
    }
    for (i = 0; i < n; i++) {
        kr[i].base = ranges[i].base;
        kr[i].nmsrs = ranges[i].count;
        kr[i].flags = (ranges[i].read ? KVM_MSR_FILTER_READ : 0) |
                      (ranges[i].write ? KVM_MSR_FILTER_WRITE : 0);
    }
    return kvm_filter_routed_msrs(kvm_state, kr, n);
#else
    return n ? -ENOTSUP : 0;
#endif
}

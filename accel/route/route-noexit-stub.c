/*
 * qemu-tiers exit router: no no-exit paths without KVM.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "accel/route/route-noexit.h"

ExitNoExit *exit_noexit_install(const ExitRouteSpec *spec)
{
    return NULL;
}

void exit_noexit_remove(ExitNoExit *ne)
{
}

uint64_t exit_noexit_collect(ExitNoExit *ne)
{
    return 0;
}

int exit_noexit_msr_filter(const ExitMsrRange *ranges, int n)
{
    return 0;
}

/*
 * qemu-tiers exit router: per-route counters.
 *
 * Each route (and each unrouted pseudo route) counts its accesses in one
 * slot per vCPU, written by that vCPU only, plus a shared slot for
 * callers without a vCPU (qtest, the main loop), written under the BQL;
 * one access in EXIT_STATS_SAMPLE_PERIOD is timed into a histogram.
 * Queries sum the slots; a reset moves a baseline (see
 * router-internal.h).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "hw/boards.h"
#include "accel/route/router-internal.h"

/*
 * One slot per possible vCPU, plus one.  -object routes are created
 * before -smp is applied to the machine, so the slots are allocated once
 * the machine is ready (nothing dispatches before).
 */
void exit_stats_alloc(ExitStats *st)
{
    if (st->slots || !exit_router.machine_ready) {
        return;
    }
    st->n_slots = MAX(current_machine->smp.max_cpus, 1) + 1;
    st->slots = qemu_memalign(64, st->n_slots * sizeof(ExitRouteCpuStats));
    memset(st->slots, 0, st->n_slots * sizeof(ExitRouteCpuStats));
    exit_stats_set_sample_period(st, st->sample_period);
}

/* @sample_period: one access in this many is timed (a power of two). */
void exit_stats_init(ExitStats *st, unsigned sample_period)
{
    assert(is_power_of_2(sample_period));
    memset(st, 0, sizeof(*st));
    st->sample_period = sample_period;
    exit_stats_alloc(st);
}

/* Before the stats' route is published (nothing counted yet). */
void exit_stats_set_sample_period(ExitStats *st, unsigned sample_period)
{
    unsigned i;

    assert(is_power_of_2(sample_period));
    st->sample_period = sample_period;
    for (i = 0; st->slots && i < st->n_slots; i++) {
        st->slots[i].sample_mask = sample_period - 1;
    }
}

void exit_stats_destroy(ExitStats *st)
{
    qemu_vfree(st->slots);
    st->slots = NULL;
}

static void exit_stats_sum(const ExitStats *st, ExitRouteStatsSum *sum)
{
    unsigned i, b;

    memset(sum, 0, sizeof(*sum));
    sum->count = st->absorbed;
    for (i = 0; i < st->n_slots; i++) {
        const ExitRouteCpuStats *s = &st->slots[i];

        sum->count += qatomic_read(&s->count);
        sum->declines += qatomic_read(&s->declines);
        sum->sampled_ns += qatomic_read(&s->sampled_ns);
        for (b = 0; b < EXIT_STATS_HIST_BUCKETS; b++) {
            sum->hist[b] += qatomic_read(&s->hist[b]);
        }
    }
}

__thread int exit_stats_thread_slot = -1;

/*
 * exit_stats_slot() the first time in a vCPU thread (which then keeps its
 * index: every ExitStats has max_cpus + 1 slots), and every time in a
 * thread without a vCPU, which shares the last slot under the BQL.
 */
ExitRouteCpuStats *exit_stats_slot_find(ExitStats *st)
{
    assert(st->slots);
    if (current_cpu && current_cpu->cpu_index < st->n_slots - 1) {
        exit_stats_thread_slot = current_cpu->cpu_index;
        return &st->slots[current_cpu->cpu_index];
    }
    assert(bql_locked());
    return &st->slots[st->n_slots - 1];
}

/* BQL */
void exit_stats_reset(ExitStats *st)
{
    assert(bql_locked());
    exit_stats_sum(st, &st->base);
}

/* The counters since the last reset, for query-exit-stats.  BQL. */
ExitRouteStats *exit_stats_info(const char *id, const ExitStats *st)
{
    ExitRouteStats *info = g_new0(ExitRouteStats, 1);
    uint64List **tail = &info->histogram;
    ExitRouteStatsSum sum;
    uint64_t timed = 0;
    int b;

    assert(bql_locked());
    exit_stats_sum(st, &sum);
    info->id = g_strdup(id);
    info->count = sum.count - st->base.count;
    info->declines = sum.declines - st->base.declines;
    info->sample_period = st->sample_period;
    for (b = 0; b < EXIT_STATS_HIST_BUCKETS; b++) {
        uint64_t n = sum.hist[b] - st->base.hist[b];

        timed += n;
        QAPI_LIST_APPEND(tail, n);
    }
    /* Scale the sampled time up to all counted accesses (an estimate). */
    info->time_ns = timed ? (uint64_t)((double)(sum.sampled_ns -
                                                st->base.sampled_ns) *
                                       info->count / timed) : 0;
    return info;
}

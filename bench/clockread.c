/*
 * clockread: the cost of one bare read of QEMU's virtual clock, in TSC
 * cycles, for the kernel tier's clock-port goal (bench/run.py).
 *
 * Under TCG without icount, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) is
 * cpu_get_clock(): clock_gettime(CLOCK_MONOTONIC) plus an offset, read
 * inside a seqlock.  This times the clock_gettime() alone, so the figure
 * is a slight underestimate (the goal it feeds gets stricter, not
 * looser).  Prints the median of 9 batches of N reads:
 *
 *     clockread [N]          (N defaults to 1000000)
 *     clockread 52.3 cycles
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#include "bench-tool.h"

#define BATCHES 9

int main(int argc, char **argv)
{
    long n = 1000000;
    double cyc[BATCHES];
    struct timespec ts;

    if (argc == 2) {
        n = bench_parse_count(argv[1], 1000000000);
    }
    if (argc > 2 || n <= 0) {
        fprintf(stderr, "usage: clockread [N]\n");
        return 2;
    }
    for (int b = 0; b < BATCHES; b++) {
        uint64_t t0 = __rdtsc();

        for (long i = 0; i < n; i++) {
            clock_gettime(CLOCK_MONOTONIC, &ts);   /* a vDSO call */
        }
        cyc[b] = (double)(__rdtsc() - t0) / n;
    }
    printf("clockread %.1f cycles\n", bench_median(cyc, BATCHES));
    return 0;
}

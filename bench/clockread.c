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

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define BATCHES 9

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = 1000000;
    double cyc[BATCHES];
    struct timespec ts;

    if (argc == 2) {
        const char *p = argv[1];

        n = 0;
        while (*p >= '0' && *p <= '9' && n <= 1000000000) {
            n = n * 10 + (*p++ - '0');
        }
        n = *p ? 0 : n;
    }
    if (argc > 2 || n <= 0 || n > 1000000000) {
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
    qsort(cyc, BATCHES, sizeof(cyc[0]), cmp_double);
    printf("clockread %.1f cycles\n", cyc[BATCHES / 2]);
    return 0;
}

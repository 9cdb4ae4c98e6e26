/*
 * clockloop: what a Linux guest pays for the time of day, per call, on
 * every CPU at once.  Runs inside the bench's Linux guest (bench/linux.py;
 * a static binary in its initramfs).
 *
 * One process per CPU, pinned, all released together, each timing
 * ROUNDS rounds of N clock_gettime() calls with the CPU's TSC (under TCG
 * and KVM the host's TSC rate).  With the acpi_pm clocksource (no HPET,
 * TSC unstable: what Linux picks on a pc machine with hpet=off and two
 * vCPUs) CLOCK_MONOTONIC is a system call that reads the ACPI PM timer,
 * one port read; CLOCK_MONOTONIC_COARSE reads memory only (the control:
 * no device access).
 *
 *     clockloop N ROUNDS NCPUS monotonic|coarse
 *     CLOCKLOOP clock=monotonic cpu=0 n=N cycles=MEDIAN min=MIN
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "../bench-tool.h"

#define MAX_ROUNDS 1000

static void time_rounds(int cpu, clockid_t clk, const char *name, long n,
                        int rounds, int start_fd)
{
    static double cyc[MAX_ROUNDS];
    double lowest;
    struct timespec ts;
    char go;

    if (bench_pin(cpu) < 0) {
        bench_die("sched_setaffinity");
    }
    /* Wait for every CPU's process: they run at the same time. */
    if (read(start_fd, &go, 1) < 0) {
        bench_die("read start pipe");
    }
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = __rdtsc();

        for (long i = 0; i < n; i++) {
            clock_gettime(clk, &ts);
        }
        cyc[r] = (double)(__rdtsc() - t0) / n;
    }
    lowest = cyc[0];
    for (int r = 1; r < rounds; r++) {
        lowest = cyc[r] < lowest ? cyc[r] : lowest;
    }
    printf("CLOCKLOOP clock=%s cpu=%d n=%ld cycles=%.1f min=%.1f\n",
           name, cpu, n, bench_median(cyc, rounds), lowest);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long n, rounds, ncpus;
    clockid_t clk;
    int start[2], status, failed = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: clockloop N ROUNDS NCPUS monotonic|coarse\n");
        return 2;
    }
    n = bench_parse_count(argv[1], 1000000000);
    rounds = bench_parse_count(argv[2], MAX_ROUNDS);
    ncpus = bench_parse_count(argv[3], 64);
    if (!strcmp(argv[4], "monotonic")) {
        clk = CLOCK_MONOTONIC;
    } else if (!strcmp(argv[4], "coarse")) {
        clk = CLOCK_MONOTONIC_COARSE;
    } else {
        fprintf(stderr, "clockloop: unknown clock '%s' (monotonic, coarse)\n",
                argv[4]);
        return 2;
    }
    if (n <= 0 || rounds <= 0 || ncpus <= 0) {
        fprintf(stderr, "clockloop: N, ROUNDS and NCPUS must be positive "
                "numbers (ROUNDS <= %d)\n", MAX_ROUNDS);
        return 2;
    }
    if (pipe(start) < 0) {
        bench_die("pipe");
    }
    for (int cpu = 0; cpu < ncpus; cpu++) {
        pid_t pid = fork();

        if (pid < 0) {
            bench_die("fork");
        }
        if (pid == 0) {
            close(start[1]);
            time_rounds(cpu, clk, argv[4], n, rounds, start[0]);
            _exit(0);
        }
    }
    /* Closing the write end releases every reader at once (EOF). */
    close(start[0]);
    close(start[1]);
    while (wait(&status) > 0) {
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failed;
}

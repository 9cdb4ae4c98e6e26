/*
 * Helpers shared by the host-side bench tools (pingpong, clockread,
 * kvmwake): standalone programs, not linked with QEMU.  Include after
 * defining _GNU_SOURCE (sched_setaffinity, program_invocation_short_name).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BENCH_TOOL_H
#define BENCH_TOOL_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A decimal number up to @max, the whole string; -1 if it is not one. */
static inline long bench_parse_count(const char *p, long max)
{
    long v = 0;

    if (!*p) {
        return -1;
    }
    while (*p >= '0' && *p <= '9' && v <= max) {
        v = v * 10 + (*p++ - '0');
    }
    return *p || v > max ? -1 : v;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of @n samples (sorts them). */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(v[0]), bench_cmp_double);
    return v[n / 2];
}

/* Report a failed system call (errno) under the tool's name; exit 1. */
static inline void bench_die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
            strerror(errno));
    exit(1);
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/*
 * Busy for @ns, standing for a vCPU's own part of a round trip (the guest
 * and its exit).  No PAUSE: under nested virtualization a PAUSE loop may
 * exit to the host.
 */
static inline void bench_busy_ns(long ns)
{
    uint64_t end = bench_now_ns() + ns;

    while (bench_now_ns() < end) {
        /* spin */
    }
}

/* Run the calling process on @cpu only; -1 with errno on failure. */
static inline int bench_pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

/* One doorbell ring (eventfd), and waiting for one. */
static inline void bench_efd_write(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) != sizeof(one)) {
        if (errno != EINTR) {
            bench_die("eventfd write");
        }
    }
}

static inline void bench_efd_read(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) != sizeof(v)) {
        if (errno != EINTR) {
            bench_die("eventfd read");
        }
    }
}

#endif

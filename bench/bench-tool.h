/*
 * Helpers shared by the host-side bench tools (pingpong, clockread):
 * standalone programs, not linked with QEMU.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BENCH_TOOL_H
#define BENCH_TOOL_H

#include <stdlib.h>

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

#endif

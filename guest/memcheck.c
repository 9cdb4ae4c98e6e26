/*
 * memcheck: a memory checker for the Debian test guest (a static binary
 * in the initramfs of tests/boot/test-linux-ras.py).  One process per
 * CPU, each owning its share of MIB MiB of anonymous memory, populated
 * and locked: over and over, every word of every page is checked against
 * the pattern last written (the page's index and a generation) and the
 * next generation is written.  The host retires guest pages underneath;
 * a word that differs is a byte lost.  After each pass:
 *
 *     memcheck MIB NCPUS
 *     QT-MEMCHECK cpu=C pass=P bad=B
 *
 * B counts every differing word since the start.  Exit status 2 on bad
 * arguments, 1 if memory cannot be had.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE_WORDS 1024u

static uint32_t pattern(uint32_t page, uint32_t gen, uint32_t i)
{
    return page * 0x9e3779b1u ^ (gen << 16) ^ i;
}

static void check_forever(int cpu, size_t bytes)
{
    size_t pages = bytes / 4096, p;
    /* volatile: every word is read and written, in order, each pass. */
    volatile uint32_t *mem;
    uint64_t bad = 0;
    uint32_t gen = 0, pass, i;
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED || mlock((void *)mem, bytes)) {
        perror("memcheck: mmap/mlock");
        exit(1);
    }
    for (p = 0; p < pages; p++) {
        for (i = 0; i < PAGE_WORDS; i++) {
            mem[p * PAGE_WORDS + i] = pattern(p, 0, i);
        }
    }
    for (pass = 1;; pass++) {
        for (p = 0; p < pages; p++) {
            volatile uint32_t *w = mem + p * PAGE_WORDS; /* as mem */

            for (i = 0; i < PAGE_WORDS; i++) {
                bad += w[i] != pattern(p, gen, i);
            }
            for (i = 0; i < PAGE_WORDS; i++) {
                w[i] = pattern(p, gen + 1, i);
            }
        }
        gen++;
        printf("QT-MEMCHECK cpu=%d pass=%u bad=%llu\n", cpu, pass,
               (unsigned long long)bad);
        fflush(stdout);
    }
}

/* A decimal number, the whole string; 0 if it is not one. */
static long parse_count(const char *p)
{
    long v = 0;

    while (*p >= '0' && *p <= '9' && v < 1000000) {
        v = v * 10 + (*p++ - '0');
    }
    return *p ? 0 : v;
}

int main(int argc, char **argv)
{
    long mib = argc == 3 ? parse_count(argv[1]) : 0;
    long ncpus = argc == 3 ? parse_count(argv[2]) : 0;
    long c;

    if (mib < 1 || mib > 65536 || ncpus < 1 || ncpus > 64) {
        fprintf(stderr, "usage: memcheck MIB NCPUS\n");
        return 2;
    }
    for (c = 0; c < ncpus; c++) {
        if (fork() == 0) {
            check_forever(c, (size_t)(mib / ncpus) << 20);
        }
    }
    while (wait(NULL) > 0) {
        /* children run until the guest is stopped */
    }
    return 1;
}

/*
 * remapcost: the floor under a RAS retirement (bench/ras.py): copy a
 * 4 KiB page of anonymous memory into a memfd page and map that memfd
 * page over it with mmap(MAP_SHARED | MAP_FIXED), as hw/ras/ras-policy.c
 * does, without QEMU and without stopping anything.  The "guest" pages
 * are written first and asked for as transparent huge pages (as QEMU's
 * RAM is), the pool pages written first (as ras-policy does at start).  Single pages and
 * runs of 512 (one copy per page, one mmap for the run).  Prints the
 * median of N rounds, in microseconds:
 *
 *     remapcost [N]            (N defaults to 200)
 *     remapcost page 1.9 us batch512 310.2 us
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <sys/mman.h>

#include "bench-tool.h"

#define PAGE    4096
#define BATCH   512

/* One round: @pages fresh anonymous pages, written, then moved. */
static double round_us(int fd, unsigned pages)
{
    size_t len = (size_t)pages * PAGE;
    uint8_t *guest, *pool;
    uint64_t t0, t1;
    unsigned i;

    guest = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pool = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (guest == MAP_FAILED || pool == MAP_FAILED) {
        bench_die("mmap");
    }
    /* QEMU's guest RAM asks for transparent huge pages too. */
    madvise(guest, len, MADV_HUGEPAGE);
    memset(guest, 0x5a, len);
    memset(pool, 0, len);               /* the pool's pages exist */
    t0 = bench_now_ns();
    for (i = 0; i < pages; i++) {
        memcpy(pool + (size_t)i * PAGE, guest + (size_t)i * PAGE, PAGE);
    }
    if (mmap(guest, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
             fd, 0) == MAP_FAILED) {
        bench_die("mmap MAP_FIXED");
    }
    guest[0]++;                         /* fault the new page in */
    t1 = bench_now_ns();
    munmap(guest, len);
    munmap(pool, len);
    return (t1 - t0) / 1e3;
}

static double median_us(int fd, unsigned pages, long rounds)
{
    double *v = calloc(rounds, sizeof(*v)), m;
    long i;

    for (i = 0; i < rounds; i++) {
        v[i] = round_us(fd, pages);
    }
    m = bench_median(v, rounds);
    free(v);
    return m;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? bench_parse_count(argv[1], 1000000) : 200;
    int fd;

    if (rounds < 1) {
        fprintf(stderr, "usage: remapcost [ROUNDS]\n");
        return 2;
    }
    fd = memfd_create("remapcost", 0);
    if (fd < 0 || ftruncate(fd, (off_t)BATCH * PAGE) < 0) {
        bench_die("memfd");
    }
    printf("remapcost page %.1f us batch%d %.1f us\n",
           median_us(fd, 1, rounds), BATCH, median_us(fd, BATCH, rounds));
    return 0;
}

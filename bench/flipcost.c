/*
 * flipcost: what delivering a message by page flip costs against copying
 * it, without QEMU (issue 20: "measure that here, do not assume").  For
 * each size, one process stands for both sides:
 *
 *   read   nothing moves: the receiver reads its slot (the part every
 *          mode shares);
 *   copy   memcpy() from the sender's buffer into the receiver's, then
 *          the receiver reads every byte;
 *   flip   the pages move: the receiver's slot is mapped onto the
 *          sender's memfd pages (mmap MAP_SHARED|MAP_FIXED), the sender's
 *          slot onto fresh ones (so the sender no longer has the message),
 *          then the receiver reads every byte (first touches fault);
 *   flip+populate  the same with MAP_POPULATE on the receiver's mapping
 *          (one call maps every page: no fault per page).
 *
 * With 2 MiB huge pages (memfd MFD_HUGETLB), if the host has any
 * reserved; else that row says unavailable.  Prints the median of N
 * rounds per size, in microseconds:
 *
 *     flipcost [N]        (N defaults to 200)
 *     flipcost size=4096 read=0.1 copy=0.3 flip=22 flip_populate=18 huge=-
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <sys/mman.h>

#include "bench-tool.h"

#define MAX_SIZE (2u << 20)

static const size_t sizes[] = { 4096, 16384, 65536, 262144, 1u << 20,
                                MAX_SIZE };

/* The receiver reads the message: every 8 bytes, summed. */
static uint64_t read_all(const uint8_t *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < len / 8; i++) {
        sum += w[i];
    }
    return sum;
}

static volatile uint64_t sink; /* volatile: keeps read_all() from going */

static void *map_at(void *addr, size_t len, int fd, off_t off, int extra)
{
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | extra | (addr ? MAP_FIXED : 0), fd, off);

    if (p == MAP_FAILED) {
        bench_die("mmap");
    }
    return p;
}

/*
 * One round on memfd @fd holding two slots of @size: the sender's at
 * offset 0, the receiver's at @size.  Returns microseconds.
 */
static double round_us(int fd, size_t size, int mode, int populate)
{
    uint8_t *send = map_at(NULL, size, fd, 0, 0);
    uint8_t *recv = map_at(NULL, size, fd, size, 0);
    uint64_t t0, t1;

    memset(send, 0x5a, size);           /* the sender wrote its message */
    memset(recv, 0, size);              /* the receiver's slot is mapped */
    t0 = bench_now_ns();
    if (mode == 2) {
        /* Nothing moves: the receiver's read alone, the common part. */
    } else if (mode == 0) {
        memcpy(recv, send, size);
    } else {
        /* Swap: the receiver gets the sender's pages, the sender fresh. */
        map_at(recv, size, fd, 0, populate ? MAP_POPULATE : 0);
        map_at(send, size, fd, size, 0);
    }
    sink = read_all(recv, size);
    t1 = bench_now_ns();
    munmap(send, size);
    munmap(recv, size);
    return (t1 - t0) / 1e3;
}

static double median_us(int fd, size_t size, int mode, int populate,
                        long rounds)
{
    double *v = calloc(rounds, sizeof(*v)), m;
    long i;

    for (i = 0; i < rounds; i++) {
        v[i] = round_us(fd, size, mode, populate);
    }
    m = bench_median(v, rounds);
    free(v);
    return m;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? bench_parse_count(argv[1], 1000000) : 200;
    int fd, hfd;
    size_t i;

    if (rounds < 1) {
        fprintf(stderr, "usage: flipcost [ROUNDS]\n");
        return 2;
    }
    fd = memfd_create("flipcost", 0);
    if (fd < 0 || ftruncate(fd, 2 * MAX_SIZE) < 0) {
        bench_die("memfd");
    }
    /* Huge pages only if the host has reserved some: try to map them. */
    hfd = memfd_create("flipcost-huge", MFD_HUGETLB);
    if (hfd >= 0) {
        void *p = MAP_FAILED;

        if (ftruncate(hfd, 2 * MAX_SIZE) == 0) {
            p = mmap(NULL, 2 * MAX_SIZE, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_POPULATE, hfd, 0);
        }
        if (p == MAP_FAILED) {
            close(hfd);
            hfd = -1;
        } else {
            munmap(p, 2 * MAX_SIZE);
        }
    }
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t s = sizes[i];

        printf("flipcost size=%zu read=%.2f copy=%.2f flip=%.2f "
               "flip_populate=%.2f", s, median_us(fd, s, 2, 0, rounds),
               median_us(fd, s, 0, 0, rounds),
               median_us(fd, s, 1, 0, rounds),
               median_us(fd, s, 1, 1, rounds));
        if (hfd >= 0 && s == MAX_SIZE) {
            printf(" huge_read=%.2f huge_copy=%.2f huge_flip=%.2f\n",
                   median_us(hfd, s, 2, 0, rounds),
                   median_us(hfd, s, 0, 0, rounds),
                   median_us(hfd, s, 1, 0, rounds));
        } else {
            printf(" huge=%s\n", hfd >= 0 ? "-" : "unavailable");
        }
    }
    return 0;
}

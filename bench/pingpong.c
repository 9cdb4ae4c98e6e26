/*
 * pingpong: the floor for an external exit handler's round trip.
 *
 * Two processes (fork).  Blocking mode: the parent writes eventfd A, the
 * child, blocked in read(A), wakes and writes eventfd B, the parent
 * reads B.  --spin: both sides spin on counters in shared memory
 * instead (the floor with polling).  Reports the median of 5 batches of
 * N round trips, in ns per round trip:
 *
 *     pingpong [--spin|--poll] [--pin] [--work-ns=NS] [--timeout-ms=MS] [N]
 *                                         (N defaults to 200000)
 *     pingpong blocking 12345.6 ns
 *
 * --poll: each side sleeps in poll() on its doorbell and one end of a
 * socket pair before reading the doorbell, as QEMU and a handler do (they
 * also watch their connection); the floor with the syscalls a handler
 * round trip needs.  --timeout-ms=MS (with --poll): the parent's poll has
 * a timeout, as QEMU's wait for a handler has (the route's timeout, in
 * slices of 50 ms).  --work-ns=NS: the parent busy-waits NS between round
 * trips (standing for the guest's part of an exit); NS is subtracted from
 * the result.
 *
 * --pin pins the parent to CPU 0 and the child to CPU 1.  Unpinned, the
 * scheduler may keep both on one CPU, which makes a blocking wake-up
 * much cheaper than a cross-CPU one (under nested virtualization, about
 * 4.5 us against 55 us on the 2-core development machine).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench-tool.h"

#define BATCHES     5
#define WARMUP      1000

/* Two counters on separate cache lines (the mapping is page-aligned). */
typedef struct Shared {
    uint64_t ping;
    uint8_t pad[56];
    uint64_t pong;
} Shared;

/* PINGPONG_HAVE_PAUSE: set by meson.build on x86 hosts */
static inline void cpu_relax(void)
{
#ifdef PINGPONG_HAVE_PAUSE
    __builtin_ia32_pause();
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

static void pin(int cpu)
{
    if (bench_pin(cpu) < 0) {
        fprintf(stderr, "pingpong: cannot pin to CPU %d: %s\n", cpu,
                strerror(errno));
    }
}

/*
 * --poll: sleep until @fd is readable, also watching the socket @sock;
 * with a timeout of @timeout_ms unless it is 0 (--timeout-ms).
 */
static void efd_poll(int fd, int sock, long timeout_ms)
{
    struct pollfd p[2] = {
        { .fd = fd, .events = POLLIN },
        { .fd = sock, .events = POLLIN | POLLRDHUP },
    };
    struct timespec ts = {
        .tv_sec = timeout_ms / 1000, .tv_nsec = timeout_ms % 1000 * 1000000,
    };

    while (ppoll(p, 2, timeout_ms ? &ts : NULL, NULL) < 0) {
        if (errno != EINTR) {
            bench_die("poll");
        }
    }
}

static void spin_until(uint64_t *p, uint64_t v)
{
    while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != v) {
        cpu_relax();
    }
}

int main(int argc, char **argv)
{
    bool spin = false, do_pin = false, do_poll = false;
    int sp[2] = { -1, -1 };
    long n = 200000, work_ns = 0, timeout_ms = 0;
    uint64_t total, seq = 0;
    double ns[BATCHES];
    Shared *sh = NULL;
    int a = -1, b = -1, status;
    pid_t pid;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--spin")) {
            spin = true;
        } else if (!strcmp(argv[i], "--poll")) {
            do_poll = true;
        } else if (!strcmp(argv[i], "--pin")) {
            do_pin = true;
        } else if (!strncmp(argv[i], "--timeout-ms=", 13)) {
            timeout_ms = bench_parse_count(argv[i] + 13, 60000);
            if (timeout_ms < 1) {
                fprintf(stderr, "pingpong: bad %s\n", argv[i]);
                return 2;
            }
        } else if (!strncmp(argv[i], "--work-ns=", 10)) {
            work_ns = bench_parse_count(argv[i] + 10, 1000000);
            if (work_ns < 0) {
                fprintf(stderr, "pingpong: bad %s\n", argv[i]);
                return 2;
            }
        } else {
            n = bench_parse_count(argv[i], 1000000000);
            if (n <= 0) {
                fprintf(stderr,
                        "usage: pingpong [--spin|--poll] [--pin] "
                        "[--work-ns=NS] [--timeout-ms=MS] [N]\n");
                return 2;
            }
        }
    }
    if (spin && do_poll) {
        fprintf(stderr, "pingpong: --spin and --poll exclude each other\n");
        return 2;
    }
    if (timeout_ms && !do_poll) {
        fprintf(stderr, "pingpong: --timeout-ms needs --poll\n");
        return 2;
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        do_pin = false;
    }
    total = WARMUP + (uint64_t)n * BATCHES;

    if (spin) {
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED) {
            bench_die("mmap");
        }
    } else {
        a = eventfd(0, 0);
        b = eventfd(0, 0);
        if (a < 0 || b < 0) {
            bench_die("eventfd");
        }
        if (do_poll && socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) {
            bench_die("socketpair");
        }
    }

    pid = fork();
    if (pid < 0) {
        bench_die("fork");
    }
    if (pid == 0) {
        if (do_pin) {
            pin(1);
        }
        for (uint64_t i = 1; i <= total; i++) {
            if (spin) {
                spin_until(&sh->ping, i);
                __atomic_store_n(&sh->pong, i, __ATOMIC_RELEASE);
            } else {
                if (do_poll) {
                    efd_poll(a, sp[1], 0);
                }
                bench_efd_read(a);
                bench_efd_write(b);
            }
        }
        _exit(0);
    }

    if (do_pin) {
        pin(0);
    }
    for (int batch = -1; batch < BATCHES; batch++) {
        long count = batch < 0 ? WARMUP : n;
        uint64_t t0 = bench_now_ns();

        for (long i = 0; i < count; i++) {
            seq++;
            if (spin) {
                __atomic_store_n(&sh->ping, seq, __ATOMIC_RELEASE);
                spin_until(&sh->pong, seq);
            } else {
                bench_efd_write(a);
                if (do_poll) {
                    efd_poll(b, sp[0], timeout_ms);
                }
                bench_efd_read(b);
            }
            if (work_ns) {
                bench_busy_ns(work_ns);
            }
        }
        if (batch >= 0) {
            ns[batch] = (double)(bench_now_ns() - t0) / count - work_ns;
        }
    }

    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status)) {
        fprintf(stderr, "pingpong: the child failed\n");
        return 1;
    }
    printf("pingpong %s %.1f ns\n",
           spin ? "spin" : do_poll ? "blocking-poll" : "blocking",
           bench_median(ns, BATCHES));
    return 0;
}

/*
 * kvmwake: does leaving KVM_RUN make the next eventfd wake-up dearer?
 *
 * The external exit handler's blocking round trip under KVM exceeds the
 * eventfd ping-pong floor, and a syscall trace puts the excess in the
 * write that wakes the handler (bench/RESULTS.md).  This tool takes QEMU
 * out of the question: a bare KVM vCPU (a real-mode loop of OUT 0x80)
 * runs on CPU 0, a peer process blocks on CPU 1, and one run measures,
 * interleaved in blocks:
 *
 *   run      KVM_RUN alone (one port-I/O exit);
 *   exit+pp  KVM_RUN, then write(kick) and a blocking read(reply): the
 *            blocking external round trip with nothing of QEMU's;
 *   gap+pp   the same ping-pong after busy-waiting as long as a KVM_RUN
 *            takes (the gap without the guest);
 *   pp       the ping-pong back to back.
 *
 * For each, the median per iteration, and for the three ping-pongs the
 * median of the write(kick) system call alone.  If exit+pp minus run is
 * above gap+pp minus the gap, the extra cost comes from leaving the
 * guest, not from the work between wake-ups.
 *
 *   kvmwake [-n ITERATIONS] [-b BLOCKS]
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-tool.h"

enum { MODE_RUN, MODE_EXIT_PP, MODE_GAP_PP, MODE_PP, N_MODES };
static const char *const mode_name[N_MODES] = {
    "run", "exit+pp", "gap+pp", "pp",
};

typedef struct Vcpu {
    int fd;
    struct kvm_run *run;
} Vcpu;

static void pin(int cpu)
{
    if (bench_pin(cpu) < 0) {
        bench_die("sched_setaffinity");
    }
}

/* A real-mode guest at 0: out 0x80, al; jmp $-4. */
static void vcpu_create(Vcpu *v)
{
    static const uint8_t code[] = { 0xe6, 0x80, 0xeb, 0xfc };
    struct kvm_userspace_memory_region mem = { 0 };
    struct kvm_sregs sregs;
    struct kvm_regs regs = { .rip = 0, .rflags = 2 };
    int kvm, vm, size;
    void *ram;

    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        bench_die("/dev/kvm");
    }
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        bench_die("KVM_CREATE_VM");
    }
    ram = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED) {
        bench_die("mmap");
    }
    memcpy(ram, code, sizeof(code));
    mem.memory_size = 0x1000;
    mem.userspace_addr = (uintptr_t)ram;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mem)) {
        bench_die("KVM_SET_USER_MEMORY_REGION");
    }
    v->fd = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (v->fd < 0) {
        bench_die("KVM_CREATE_VCPU");
    }
    size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    v->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        bench_die("mmap kvm_run");
    }
    if (ioctl(v->fd, KVM_GET_SREGS, &sregs)) {
        bench_die("KVM_GET_SREGS");
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) ||
        ioctl(v->fd, KVM_SET_REGS, &regs)) {
        bench_die("KVM_SET_REGS");
    }
}

static void vcpu_exit_once(Vcpu *v)
{
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
        bench_die("KVM_RUN");
    }
    if (v->run->exit_reason != KVM_EXIT_IO || v->run->io.port != 0x80) {
        fprintf(stderr, "kvmwake: unexpected exit %u\n", v->run->exit_reason);
        exit(1);
    }
}

/* write(kick), timed; then block until the peer answers. */
static int64_t pingpong_once(int kick, int reply)
{
    uint64_t t0 = bench_now_ns(), t1;

    bench_efd_write(kick);
    t1 = bench_now_ns();
    bench_efd_read(reply);
    return t1 - t0;
}

int main(int argc, char **argv)
{
    long n = 20000, blocks = 10;
    int kick, reply, opt;
    double *iter[N_MODES], *wr[N_MODES];
    double gap_ns = 0;
    long filled = 0;
    Vcpu v;
    pid_t peer;

    while ((opt = getopt(argc, argv, "n:b:")) != -1) {
        long *dst = opt == 'n' ? &n : opt == 'b' ? &blocks : NULL;

        if (dst) {
            *dst = bench_parse_count(optarg, 100000000);
        }
        if (!dst || *dst < 1) {
            fprintf(stderr, "usage: kvmwake [-n ITERATIONS] [-b BLOCKS]\n");
            return 2;
        }
    }
    kick = eventfd(0, EFD_CLOEXEC);
    reply = eventfd(0, EFD_CLOEXEC);
    if (kick < 0 || reply < 0) {
        bench_die("eventfd");
    }
    peer = fork();
    if (peer < 0) {
        bench_die("fork");
    }
    if (peer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin(1);
        for (;;) {
            bench_efd_read(kick);
            bench_efd_write(reply);
        }
    }
    pin(0);
    vcpu_create(&v);
    for (int m = 0; m < N_MODES; m++) {
        iter[m] = calloc(n * blocks, sizeof(double));
        wr[m] = calloc(n * blocks, sizeof(double));
    }

    for (long b = 0; b < blocks; b++) {
        for (int m = 0; m < N_MODES; m++) {
            for (long i = 0; i < n; i++) {
                uint64_t t0 = bench_now_ns(), w = 0;

                switch (m) {
                case MODE_RUN:
                    vcpu_exit_once(&v);
                    break;
                case MODE_EXIT_PP:
                    vcpu_exit_once(&v);
                    w = pingpong_once(kick, reply);
                    break;
                case MODE_GAP_PP:
                    bench_busy_ns(gap_ns);
                    w = pingpong_once(kick, reply);
                    break;
                case MODE_PP:
                    w = pingpong_once(kick, reply);
                    break;
                }
                iter[m][filled + i] = bench_now_ns() - t0;
                wr[m][filled + i] = w;
            }
            if (m == MODE_RUN) {
                /* The gap for gap+pp: this block's median exit. */
                double *tmp = malloc(n * sizeof(double));

                memcpy(tmp, &iter[m][filled], n * sizeof(double));
                gap_ns = bench_median(tmp, n);
                free(tmp);
            }
        }
        filled += n;
    }
    kill(peer, SIGKILL);
    waitpid(peer, NULL, 0);

    printf("# kvmwake: %ld iterations x %ld blocks per mode, vCPU on CPU 0, "
           "peer on CPU 1; medians in ns\n", n, blocks);
    printf("%-8s %10s %10s\n", "mode", "iteration", "write");
    for (int m = 0; m < N_MODES; m++) {
        double it = bench_median(iter[m], filled);
        double w = bench_median(wr[m], filled);

        printf("%-8s %10.0f %10.0f\n", mode_name[m], it, w);
    }
    return 0;
}

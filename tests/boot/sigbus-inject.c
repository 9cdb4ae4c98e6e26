/*
 * sigbus-inject: preloaded into QEMU (LD_PRELOAD) by tests, to stage a
 * host memory error.  On SIGUSR2 it reads "TID CODE ADDR" (decimal,
 * decimal, hex) from the file named by $QT_SIGBUS_REQUEST and queues a
 * SIGBUS with si_code CODE (5: BUS_MCEERR_AO, 4: _AR) and si_addr ADDR
 * to thread TID of this process, or to the process if TID is 0, as the
 * kernel's memory-failure code does.  It writes "ok" or "error ERRNO" to
 * the same path with ".done" appended.
 *
 * Why in-process: Linux queues a signal with a kernel si_code (> 0) only
 * from the thread it is for (rt_tgsigqueueinfo() gives any other thread
 * or process EPERM; rt_sigqueueinfo() wants the main thread), so the
 * SIGUSR2 is passed on to that thread; and QEMU's threads block every
 * signal they do not use, so this helper keeps SIGUSR2 out of the masks
 * QEMU sets (pthread_sigmask() and sigprocmask() below).  The handler
 * uses async-signal-safe calls only.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char request_path[256];
static char done_path[262];

static const char *parse_number(const char *p, int base, uint64_t *out)
{
    uint64_t v = 0;

    while (*p == ' ' || *p == '\n') {
        p++;
    }
    if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
    }
    for (;; p++) {
        int d;

        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (base == 16 && *p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            break;
        }
        v = v * base + d;
    }
    *out = v;
    return p;
}

static void answer(const char *text, int err)
{
    char buf[32];
    int n = 0, fd;

    while (*text) {
        buf[n++] = *text++;
    }
    if (err) {
        char digits[12];
        int k = 0;

        buf[n++] = ' ';
        do {
            digits[k++] = '0' + err % 10;
            err /= 10;
        } while (err);
        while (k) {
            buf[n++] = digits[--k];
        }
    }
    buf[n++] = '\n';
    fd = open(done_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        if (write(fd, buf, n) < 0) {
            /* nothing to do about it in a signal handler */
        }
        close(fd);
    }
}

static void on_sigusr2(int sig)
{
    char buf[128];
    uint64_t tid, code, addr;
    const char *p;
    siginfo_t info;
    int fd, n, saved = errno;
    pid_t self, target;
    long r;

    (void)sig;
    fd = open(request_path, O_RDONLY);
    if (fd < 0) {
        answer("error", errno);
        goto out;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        answer("error", EINVAL);
        goto out;
    }
    buf[n] = 0;
    p = parse_number(buf, 10, &tid);
    p = parse_number(p, 10, &code);
    parse_number(p, 16, &addr);

    /*
     * Linux queues a signal with a kernel si_code only from the thread
     * it is for (or, for the process, from its main thread): pass the
     * request on to that thread, which runs this handler again.
     */
    self = syscall(SYS_gettid);
    target = tid ? (pid_t)tid : getpid();
    if (self != target) {
        syscall(SYS_tgkill, getpid(), target, SIGUSR2);
        goto out;
    }
    memset(&info, 0, sizeof(info));
    info.si_signo = SIGBUS;
    info.si_code = code;
    info.si_addr = (void *)(uintptr_t)addr;
    if (tid) {
        r = syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)tid, SIGBUS,
                    &info);
    } else {
        r = syscall(SYS_rt_sigqueueinfo, getpid(), SIGBUS, &info);
    }
    answer(r ? "error" : "ok", r ? errno : 0);
out:
    errno = saved;
}

typedef int (*SigmaskFn)(int how, const sigset_t *set, sigset_t *old);

static int sigmask_without_usr2(SigmaskFn real, int how, const sigset_t *set,
                                sigset_t *old)
{
    sigset_t s;

    if (!set || how == SIG_UNBLOCK) {
        return real(how, set, old);
    }
    s = *set;
    sigdelset(&s, SIGUSR2);
    return real(how, &s, old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    static SigmaskFn real;

    if (!real) {
        real = (SigmaskFn)dlsym(RTLD_NEXT, "pthread_sigmask");
    }
    return sigmask_without_usr2(real, how, set, old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    static SigmaskFn real;

    if (!real) {
        real = (SigmaskFn)dlsym(RTLD_NEXT, "sigprocmask");
    }
    return sigmask_without_usr2(real, how, set, old);
}

__attribute__((constructor))
static void sigbus_inject_init(void)
{
    const char *path = getenv("QT_SIGBUS_REQUEST");
    struct sigaction sa;

    if (!path || strlen(path) >= sizeof(request_path)) {
        return;
    }
    strcpy(request_path, path);
    strcpy(done_path, path);
    strcat(done_path, ".done");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigusr2;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

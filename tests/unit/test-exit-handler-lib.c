/*
 * Tests of the external exit handler library (accel/route/libexithandler)
 * and of the example handler exit-handler-post, with this program
 * playing QEMU's side of the protocol by hand: memfd ring, eventfds,
 * HELLO with SCM_RIGHTS, producer and doorbells.
 *
 * In-process (a handler thread on one end of a socketpair): the
 * handshake and feature negotiation, HELLO split over several reads,
 * refusals (version, magic, ring geometry, missing fds, short memfd),
 * reads, writes, masking, invalid requests, posted-write ordering with
 * ring wrap-around, junk on the socket, and serve() returning when QEMU
 * hangs up.  Out of process (exit-handler-post, its path in argv[1] or
 * $QT_EXIT_HANDLER): the device semantics, --tag, --log, reconnection
 * in both --connect and listen modes, --bad-hello, --poll,
 * --delay-us, --hang-after, --fuzz, and a clean exit on SIGTERM.
 *
 * Output is TAP.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "exit-handler-lib.h"

#define TIMEOUT_MS  5000
#define PATH_LEN    sizeof(((struct sockaddr_un *)0)->sun_path)

/* TAP */

static int test_num;
static int test_failed;
static bool cur_failed;

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond); \
            cur_failed = true; \
        } \
    } while (0)

static void run(const char *name, void (*fn)(void))
{
    cur_failed = false;
    fn();
    test_num++;
    if (cur_failed) {
        test_failed++;
    }
    printf("%sok %d - %s\n", cur_failed ? "not " : "", test_num, name);
    fflush(stdout);
}

static void skip(const char *name, const char *why)
{
    test_num++;
    printf("ok %d - %s # SKIP %s\n", test_num, name, why);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* QEMU's side */

typedef struct Q {
    int sock;
    int ring_fd, kick_fd, call_fd;
    void *ring;
    uint32_t slots;
    uint32_t bytes;
    ExitRingHdr *hdr;
    ExitRingSlot *slot;
    uint64_t posted;
} Q;

static void q_init(Q *q, int sock, uint32_t slots)
{
    memset(q, 0, sizeof(*q));
    q->sock = sock;
    q->slots = slots;
    q->bytes = exit_ring_bytes(slots);
    q->ring_fd = memfd_create("exit-ring", MFD_CLOEXEC);
    if (q->ring_fd < 0 || ftruncate(q->ring_fd, q->bytes) < 0) {
        perror("memfd");
        exit(1);
    }
    q->ring = mmap(NULL, q->bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                   q->ring_fd, 0);
    if (q->ring == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    q->hdr = q->ring;
    q->slot = (ExitRingSlot *)((char *)q->ring + EXIT_RING_HDR_BYTES);
    q->hdr->magic = EXIT_HANDLER_MAGIC;
    q->hdr->version = EXIT_HANDLER_VERSION;
    q->hdr->slots = slots;
    q->kick_fd = eventfd(0, EFD_CLOEXEC);
    q->call_fd = eventfd(0, EFD_CLOEXEC);
    if (q->kick_fd < 0 || q->call_fd < 0) {
        perror("eventfd");
        exit(1);
    }
}

static void q_close(Q *q)
{
    munmap(q->ring, q->bytes);
    close(q->ring_fd);
    close(q->kick_fd);
    close(q->call_fd);
    if (q->sock >= 0) {
        close(q->sock);
    }
    q->sock = -1;
}

static ExitHandlerHello q_hello(Q *q, uint64_t features)
{
    ExitHandlerHello h = {
        .magic = EXIT_HANDLER_MAGIC,
        .version = EXIT_HANDLER_VERSION,
        .features = features,
        .ring_slots = q->slots,
        .ring_bytes = q->bytes,
        .poll_us = 50,
    };

    snprintf(h.handler_id, sizeof(h.handler_id), "test-handler");
    return h;
}

/*
 * Sends HELLO with @nfds of (ring, kick, call).  With @split, the fds
 * ride on the first byte alone and the rest follows in two more pieces.
 */
static bool q_send_hello(Q *q, const ExitHandlerHello *hello, int nfds,
                         bool split)
{
    struct {
        ExitHandlerMsgHdr h;
        ExitHandlerHello p;
    } __attribute__((packed)) m = {
        .h = { EXIT_HANDLER_MSG_HELLO, sizeof(ExitHandlerHello) },
        .p = *hello,
    };
    union {
        char buf[CMSG_SPACE(sizeof(int) * 3)];
        struct cmsghdr align;
    } ctl;
    int fds[3] = { q->ring_fd, q->kick_fd, q->call_fd };
    size_t first = split ? 1 : sizeof(m);
    struct iovec iov = { .iov_base = &m, .iov_len = first };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cm;
    char *p = (char *)&m;

    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    if (sendmsg(q->sock, &msg, MSG_NOSIGNAL) != (ssize_t)first) {
        return false;
    }
    if (split) {
        sleep_ms(2);
        if (send(q->sock, p + 1, 5, MSG_NOSIGNAL) != 5) {
            return false;
        }
        sleep_ms(2);
        if (send(q->sock, p + 6, sizeof(m) - 6, MSG_NOSIGNAL) !=
            (ssize_t)(sizeof(m) - 6)) {
            return false;
        }
    }
    return true;
}

/* Reads exactly @len bytes within TIMEOUT_MS; false on EOF or timeout. */
static bool read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    uint64_t end = now_ms() + TIMEOUT_MS;

    while (len) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        ssize_t n;
        int left = (int)(end - now_ms());

        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            return false;
        }
        n = read(fd, p, len);
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* Receives one message; its payload (at most @max bytes) in @payload. */
static bool q_recv(Q *q, ExitHandlerMsgHdr *h, void *payload, size_t max)
{
    if (!read_full(q->sock, h, sizeof(*h)) || h->size > max) {
        return false;
    }
    return read_full(q->sock, payload, h->size);
}

/* True when the socket reaches EOF within TIMEOUT_MS. */
static bool q_eof(Q *q)
{
    char c;

    return !read_full(q->sock, &c, 1);
}

static bool q_recv_reply(Q *q, ExitHandlerHelloReply *r)
{
    ExitHandlerMsgHdr h;

    return q_recv(q, &h, r, sizeof(*r)) &&
           h.type == EXIT_HANDLER_MSG_HELLO_REPLY && h.size == sizeof(*r);
}

/*
 * Waits (at most @timeout_ms) until @n requests are completed or slot
 * @n % slots is no longer POSTED, sleeping on the call eventfd the way
 * QEMU does.  False on timeout.
 */
static bool q_wait(Q *q, uint64_t n, int timeout_ms)
{
    ExitRingSlot *s = &q->slot[n & (q->slots - 1)];
    uint64_t end = now_ms() + timeout_ms;

    for (;;) {
        struct pollfd pf = { .fd = q->call_fd, .events = POLLIN };
        uint64_t v;
        int left;

        for (int i = 0; i < 1000; i++) {
            if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) !=
                EXIT_SLOT_POSTED ||
                __atomic_load_n(&q->hdr->completed, __ATOMIC_ACQUIRE) > n) {
                return true;
            }
        }
        __atomic_store_n(&q->hdr->qemu_waiting, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != EXIT_SLOT_POSTED ||
            __atomic_load_n(&q->hdr->completed, __ATOMIC_ACQUIRE) > n) {
            __atomic_store_n(&q->hdr->qemu_waiting, 0, __ATOMIC_RELAXED);
            return true;
        }
        left = (int)(end - now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            __atomic_store_n(&q->hdr->qemu_waiting, 0, __ATOMIC_RELAXED);
            return false;
        }
        if (read(q->call_fd, &v, sizeof(v)) < 0) {
            perror("read call");
        }
        __atomic_store_n(&q->hdr->qemu_waiting, 0, __ATOMIC_RELAXED);
    }
}

/*
 * The handler publishes a slot's DONE before it bumps completed: waits
 * up to @ms for completed to pass @n, and tells whether it is now n + 1.
 */
static bool q_completed(Q *q, uint64_t n, int ms)
{
    uint64_t end = now_ms() + ms;
    uint64_t c;

    while ((c = __atomic_load_n(&q->hdr->completed, __ATOMIC_ACQUIRE)) <= n &&
           now_ms() < end) {
        sched_yield();
    }
    return c == n + 1;
}

/* Posts a request, waiting for room first; returns its number. */
static uint64_t q_post(Q *q, uint8_t event, uint64_t addr, uint8_t size,
                       uint8_t flags, uint64_t data)
{
    uint64_t n = q->posted;
    ExitRingSlot *s = &q->slot[n & (q->slots - 1)];

    if (n >= q->slots && !q_wait(q, n - q->slots, TIMEOUT_MS)) {
        printf("# no room in the ring for request %" PRIu64 "\n", n);
    }
    s->seq = (uint32_t)n;
    s->event = event;
    s->size = size;
    s->flags = flags;
    s->addr = addr;
    s->data = data;
    s->reply_seq = UINT32_MAX;
    s->status = UINT32_MAX;
    __atomic_store_n(&s->state, EXIT_SLOT_POSTED, __ATOMIC_RELEASE);
    q->posted = n + 1;
    __atomic_store_n(&q->hdr->posted, n + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&q->hdr->handler_sleeping, __ATOMIC_RELAXED)) {
        uint64_t one = 1;

        if (write(q->kick_fd, &one, sizeof(one)) < 0) {
            perror("kick");
        }
    }
    return n;
}

/*
 * One synchronous request; returns its status (UINT32_MAX on timeout or
 * a malformed reply) and the read value in *@val.
 */
static uint32_t q_access(Q *q, uint8_t event, uint64_t addr, uint8_t size,
                         uint8_t flags, uint64_t data, uint64_t *val)
{
    uint64_t n = q_post(q, event, addr, size, flags, data);
    ExitRingSlot *s = &q->slot[n & (q->slots - 1)];

    if (!q_wait(q, n, TIMEOUT_MS)) {
        printf("# request %" PRIu64 " timed out\n", n);
        return UINT32_MAX;
    }
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != EXIT_SLOT_DONE ||
        s->reply_seq != (uint32_t)n || !q_completed(q, n, TIMEOUT_MS)) {
        printf("# request %" PRIu64 ": malformed reply\n", n);
        return UINT32_MAX;
    }
    if (val) {
        *val = s->data;
    }
    return s->status;
}

static uint64_t q_read(Q *q, uint64_t addr, uint8_t size)
{
    uint64_t v = UINT64_MAX;

    if (q_access(q, EXIT_HANDLER_EV_PIO, addr, size, 0, 0, &v) !=
        EXIT_SLOT_OK) {
        return UINT64_MAX;
    }
    return v;
}

static uint32_t q_write(Q *q, uint64_t addr, uint8_t size, uint64_t data)
{
    return q_access(q, EXIT_HANDLER_EV_PIO, addr, size, EXIT_SLOT_F_WRITE,
                    data, NULL);
}

/*
 * One platform event; returns its status (UINT32_MAX on a timeout) and
 * the vCPU in the reply in *@cpu.
 */
static uint32_t q_event(Q *q, uint8_t event, uint8_t source, int32_t cpu,
                        uint8_t class, uint8_t bank, uint8_t size,
                        uint8_t flags, uint64_t data, int32_t *cpu_out)
{
    ExitRingSlot *s = &q->slot[q->posted & (q->slots - 1)];
    uint32_t status;

    s->source = source;
    s->cpu = cpu;
    s->class = class;
    s->bank = bank;
    status = q_access(q, event, 0x5000, size, flags, data, NULL);
    *cpu_out = s->cpu;
    return status;
}

/* In-process handler: a thread and a recording device */

#define DEV_LOG 1024

typedef struct TestDev {
    uint32_t nevents;
    ExitHandlerRequest last_event;
    uint32_t nwrites;
    uint64_t waddr[DEV_LOG];
    uint64_t wdata[DEV_LOG];
    uint8_t wsize[DEV_LOG];
    bool wposted[DEV_LOG];
} TestDev;

static uint32_t testdev_access(void *opaque, const ExitHandlerRequest *req,
                               uint64_t *data)
{
    TestDev *d = opaque;

    if (exit_handler_is_event(req)) {
        /* @data's low byte is the verdict; bit 8: retarget to data >> 16 */
        d->nevents++;
        d->last_event = *req;
        if (req->data & 0x100) {
            *data = req->data >> 16;
        }
        return req->data & 0xff;
    }
    if (req->addr == 0xdead) {
        return EXIT_SLOT_UNHANDLED;
    }
    if (req->is_write) {
        if (d->nwrites < DEV_LOG) {
            d->waddr[d->nwrites] = req->addr;
            d->wdata[d->nwrites] = req->data;
            d->wsize[d->nwrites] = req->size;
            d->wposted[d->nwrites] = req->posted;
        }
        d->nwrites++;
        return EXIT_SLOT_OK;
    }
    if (req->addr == 0xc0de) {
        *data = d->nwrites;
    } else if (req->addr == 0xffff) {
        *data = UINT64_C(0x1234567890abcdef);   /* the library masks */
    } else {
        *data = req->addr + 1;
    }
    return EXIT_SLOT_OK;
}

typedef struct HThread {
    pthread_t tid;
    int fd;
    uint64_t supported;
    TestDev dev;
    bool handshake_ok;
    char *err;
    int serve_ret;
} HThread;

static void *handler_thread(void *opaque)
{
    HThread *t = opaque;
    ExitHandlerConn *c;

    c = exit_handler_handshake(t->fd, "unit", t->supported, &t->err);
    t->handshake_ok = c != NULL;
    if (c) {
        t->serve_ret = exit_handler_serve(c, testdev_access, &t->dev);
        exit_handler_conn_close(c);
    }
    return NULL;
}

/* A socketpair with a handler thread on one end, QEMU's ring on the other */
static HThread *start(Q *q, uint32_t slots, uint64_t supported)
{
    HThread *t = calloc(1, sizeof(*t));
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        exit(1);
    }
    q_init(q, sv[0], slots);
    t->fd = sv[1];
    t->supported = supported;
    t->serve_ret = -2;
    pthread_create(&t->tid, NULL, handler_thread, t);
    return t;
}

/* Hangs up as QEMU; returns what serve() returned (-2: no handshake). */
static int finish(Q *q, HThread *t)
{
    int ret;

    q_close(q);
    pthread_join(t->tid, NULL);
    ret = t->handshake_ok ? t->serve_ret : -2;
    free(t->err);
    free(t);
    return ret;
}

/* Starts a thread and completes the handshake; NULL on failure. */
static HThread *start_ok(Q *q, uint32_t slots)
{
    ExitHandlerHello h;
    ExitHandlerHelloReply r;
    HThread *t = start(q, slots, EXIT_HANDLER_F_POSTED_WRITES);

    h = q_hello(q, EXIT_HANDLER_F_POSTED_WRITES);
    if (!q_send_hello(q, &h, 3, false) || !q_recv_reply(q, &r)) {
        CHECK(!"handshake");
        finish(q, t);
        return NULL;
    }
    return t;
}

/* In-process tests */

static void test_handshake(void)
{
    for (int split = 0; split < 2; split++) {
        ExitHandlerHello h;
        ExitHandlerHelloReply r;
        Q q;
        HThread *t = start(&q, 8, EXIT_HANDLER_F_POSTED_WRITES);

        h = q_hello(&q, EXIT_HANDLER_F_POSTED_WRITES | EXIT_HANDLER_F_POLL |
                        (1ull << 7));
        CHECK(q_send_hello(&q, &h, 3, split));
        CHECK(q_recv_reply(&q, &r));
        CHECK(r.magic == EXIT_HANDLER_MAGIC);
        CHECK(r.version == EXIT_HANDLER_VERSION);
        CHECK(r.features == EXIT_HANDLER_F_POSTED_WRITES);
        CHECK(!strcmp(r.name, "unit"));
        CHECK(q_read(&q, 0x10, 1) == 0x11);
        CHECK(finish(&q, t) == 0);
    }
}

/* HELLO that must be refused with ERROR @code, then EOF. */
static void expect_refusal(const ExitHandlerHello *h, Q *q, HThread *t,
                           int nfds, uint32_t code)
{
    ExitHandlerMsgHdr mh;
    ExitHandlerError e;

    CHECK(q_send_hello(q, h, nfds, false));
    CHECK(q_recv(q, &mh, &e, sizeof(e)));
    CHECK(mh.type == EXIT_HANDLER_MSG_ERROR);
    CHECK(mh.size == sizeof(e));
    CHECK(e.code == code);
    CHECK(memchr(e.text, '\0', sizeof(e.text)) != NULL);
    printf("#   refused: %u %.124s\n", e.code, e.text);
    CHECK(q_eof(q));
    pthread_join(t->tid, NULL);
    CHECK(!t->handshake_ok);
    CHECK(t->err != NULL);
    t->tid = pthread_self();
}

static void refuse(void (*mangle)(Q *q, ExitHandlerHello *h, int *nfds),
                   uint32_t code)
{
    ExitHandlerHello h;
    Q q;
    HThread *t = start(&q, 8, EXIT_HANDLER_F_POSTED_WRITES);
    int nfds = 3;

    h = q_hello(&q, EXIT_HANDLER_F_POSTED_WRITES);
    mangle(&q, &h, &nfds);
    expect_refusal(&h, &q, t, nfds, code);
    q_close(&q);
    free(t->err);
    free(t);
}

static void bad_version(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)q, (void)nfds;
    h->version = 2;
}

static void bad_magic(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)q, (void)nfds;
    h->magic = 0x12345678;
}

static void bad_slots(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)q, (void)nfds;
    h->ring_slots = 3;
}

static void big_slots(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)q, (void)nfds;
    h->ring_slots = EXIT_RING_SLOTS_MAX * 2;
    h->ring_bytes = exit_ring_bytes(h->ring_slots);
}

static void bad_bytes(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)q, (void)nfds;
    h->ring_bytes += 64;
}

static void two_fds(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)q, (void)h;
    *nfds = 2;
}

static void short_memfd(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)h, (void)nfds;
    CHECK(ftruncate(q->ring_fd, EXIT_RING_HDR_BYTES) == 0);
}

static void bad_ring_magic(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)h, (void)nfds;
    q->hdr->magic = 0;
}

static void bad_ring_slots(Q *q, ExitHandlerHello *h, int *nfds)
{
    (void)h, (void)nfds;
    q->hdr->slots = 4;
}

static void test_refusals(void)
{
    printf("# version and magic\n");
    refuse(bad_version, EXIT_HANDLER_ERR_VERSION);
    refuse(bad_magic, EXIT_HANDLER_ERR_VERSION);
    printf("# ring geometry and descriptors\n");
    refuse(bad_slots, EXIT_HANDLER_ERR_RING);
    refuse(big_slots, EXIT_HANDLER_ERR_RING);
    refuse(bad_bytes, EXIT_HANDLER_ERR_RING);
    refuse(two_fds, EXIT_HANDLER_ERR_RING);
    refuse(short_memfd, EXIT_HANDLER_ERR_RING);
    refuse(bad_ring_magic, EXIT_HANDLER_ERR_RING);
    refuse(bad_ring_slots, EXIT_HANDLER_ERR_RING);
}

static void test_wrong_message(void)
{
    struct {
        ExitHandlerMsgHdr h;
        char p[8];
    } m = { { EXIT_HANDLER_MSG_HELLO_REPLY, 8 }, { 0 } };
    ExitHandlerMsgHdr mh;
    ExitHandlerError e;
    Q q;
    HThread *t = start(&q, 8, 0);

    CHECK(send(q.sock, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m));
    CHECK(q_recv(&q, &mh, &e, sizeof(e)));
    CHECK(mh.type == EXIT_HANDLER_MSG_ERROR);
    CHECK(e.code == EXIT_HANDLER_ERR_INTERNAL);
    CHECK(q_eof(&q));
    CHECK(finish(&q, t) == -2);
}

static void test_requests(void)
{
    Q q;
    HThread *t = start_ok(&q, 8);
    uint64_t v;

    if (!t) {
        return;
    }
    CHECK(q_read(&q, 0x80, 1) == 0x81);
    CHECK(q_read(&q, 0xff, 1) == 0x00);         /* 0x100 masked to 1 byte */
    CHECK(q_read(&q, 0xffff, 2) == 0xcdef);
    CHECK(q_read(&q, 0xffff, 4) == 0x90abcdef);
    CHECK(q_read(&q, 0xffff, 8) == UINT64_C(0x1234567890abcdef));
    CHECK(q_write(&q, 0x80, 1, 0x1234) == EXIT_SLOT_OK);
    CHECK(t->dev.wdata[0] == 0x34);             /* masked before the device */
    CHECK(q_write(&q, 0x80, 4, UINT64_MAX) == EXIT_SLOT_OK);
    CHECK(t->dev.wdata[1] == 0xffffffff);
    CHECK(q_access(&q, EXIT_HANDLER_EV_MMIO, 0xfed00000, 8, 0, 0, &v) ==
          EXIT_SLOT_OK && v == 0xfed00001);
    CHECK(q_access(&q, EXIT_HANDLER_EV_MSR, 0x10, 8, 0, 0, &v) ==
          EXIT_SLOT_OK && v == 0x11);
    CHECK(q_read(&q, 0xdead, 1) == UINT64_MAX);  /* UNHANDLED */
    CHECK(q_write(&q, 0xdead, 1, 1) == EXIT_SLOT_UNHANDLED);

    printf("# invalid requests are UNHANDLED and never reach the device\n");
    CHECK(q_access(&q, EXIT_HANDLER_EV_PIO, 0x80, 3, 0, 0, NULL) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_access(&q, EXIT_HANDLER_EV_PIO, 0x80, 0, 0, 0, NULL) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_access(&q, EXIT_HANDLER_EV_PIO, 0x80, 16, 0, 0, NULL) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_access(&q, 9, 0x80, 1, 0, 0, NULL) == EXIT_SLOT_UNHANDLED);
    CHECK(q_access(&q, EXIT_HANDLER_EV_PIO, 0x80, 1, 0x80, 0, NULL) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_access(&q, EXIT_HANDLER_EV_PIO, 0x80, 1, EXIT_SLOT_F_POSTED, 0,
                   NULL) == EXIT_SLOT_UNHANDLED);
    CHECK(q_read(&q, 0xc0de, 4) == 2);

    printf("# junk from QEMU on the socket is ignored\n");
    CHECK(send(q.sock, "junk!", 5, MSG_NOSIGNAL) == 5);
    sleep_ms(10);
    CHECK(q_read(&q, 0x90, 2) == 0x91);

    CHECK(finish(&q, t) == 0);
}

static void test_events(void)
{
    const uint64_t f = EXIT_HANDLER_F_POSTED_WRITES | EXIT_HANDLER_F_EVENTS;
    ExitHandlerHello h;
    ExitHandlerHelloReply r;
    int32_t cpu;
    Q q;
    HThread *t = start(&q, 8, f);

    h = q_hello(&q, f);
    if (!q_send_hello(&q, &h, 3, false) || !q_recv_reply(&q, &r)) {
        CHECK(!"handshake");
        finish(&q, t);
        return;
    }
    CHECK(r.features == f);
    printf("# the fields reach the handler; each verdict comes back\n");
    CHECK(q_event(&q, EXIT_HANDLER_EV_MCE, EXIT_SLOT_SOURCE_QMP, 1,
                  EXIT_SLOT_CLASS_SRAO, 9, 8, 0, EXIT_SLOT_SUPPRESS, &cpu) ==
          EXIT_SLOT_SUPPRESS && cpu == 1);
    CHECK(t->dev.nevents == 1 &&
          t->dev.last_event.event == EXIT_HANDLER_EV_MCE &&
          t->dev.last_event.source == EXIT_SLOT_SOURCE_QMP &&
          t->dev.last_event.cpu == 1 &&
          t->dev.last_event.class == EXIT_SLOT_CLASS_SRAO &&
          t->dev.last_event.bank == 9 &&
          t->dev.last_event.addr == 0x5000 &&
          t->dev.last_event.data == EXIT_SLOT_SUPPRESS);
    CHECK(q_event(&q, EXIT_HANDLER_EV_NMI, EXIT_SLOT_SOURCE_QMP, 0, 0,
                  EXIT_SLOT_NO_BANK, 8, 0, EXIT_SLOT_OK | 0x100 | (3 << 16),
                  &cpu) == EXIT_SLOT_OK && cpu == 3);
    CHECK(q_event(&q, EXIT_HANDLER_EV_SMI, EXIT_SLOT_SOURCE_APM, -1, 0,
                  EXIT_SLOT_NO_BANK, 8, 0, EXIT_SLOT_HANDLED | 0x100 |
                  (5 << 16), &cpu) == EXIT_SLOT_HANDLED && cpu == -1);
    CHECK(q_event(&q, EXIT_HANDLER_EV_MEMORY_ERROR, EXIT_SLOT_SOURCE_HOST, 0,
                  EXIT_SLOT_CLASS_AO, EXIT_SLOT_NO_BANK, 8, 0, 7, &cpu) ==
          EXIT_SLOT_UNHANDLED && cpu == 0);
    CHECK(t->dev.nevents == 4);

    printf("# invalid events are UNHANDLED and never reach the handler\n");
    CHECK(q_event(&q, 7, 0, 0, 0, 0, 8, 0, 0, &cpu) == EXIT_SLOT_UNHANDLED);
    CHECK(q_event(&q, EXIT_HANDLER_EV_NMI, 0, 0, 0, 0, 4, 0, 0, &cpu) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_event(&q, EXIT_HANDLER_EV_NMI, 0, 0, 0, 0, 8, EXIT_SLOT_F_WRITE,
                  0, &cpu) == EXIT_SLOT_UNHANDLED);
    CHECK(q_event(&q, EXIT_HANDLER_EV_MCE, 0, 0, 9, 0, 8, 0, 0, &cpu) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_event(&q, EXIT_HANDLER_EV_MCE, 6, 0, 0, 0, 8, 0, 0, &cpu) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(q_event(&q, EXIT_HANDLER_EV_MCE, 0, -2, 0, 0, 8, 0, 0, &cpu) ==
          EXIT_SLOT_UNHANDLED);
    CHECK(t->dev.nevents == 4);
    CHECK(finish(&q, t) == 0);

    printf("# a handler that did not take events never sees one\n");
    t = start_ok(&q, 8);
    if (!t) {
        return;
    }
    CHECK(q_event(&q, EXIT_HANDLER_EV_NMI, 0, 0, 0, EXIT_SLOT_NO_BANK, 8, 0,
                  EXIT_SLOT_OK, &cpu) == EXIT_SLOT_UNHANDLED);
    CHECK(t->dev.nevents == 0);
    CHECK(finish(&q, t) == 0);
}

static void test_posted_order(void)
{
    enum { N = 500 };
    Q q;
    HThread *t = start_ok(&q, 16);
    bool in_order = true;

    if (!t) {
        return;
    }
    /* 500 posted writes through a 16-slot ring, then one read */
    for (int i = 0; i < N; i++) {
        q_post(&q, EXIT_HANDLER_EV_PIO, 0x400 + i % 7, 2,
               EXIT_SLOT_F_WRITE | EXIT_SLOT_F_POSTED, i);
    }
    CHECK(q_read(&q, 0xc0de, 4) == N);
    CHECK(q.hdr->completed == N + 1);
    CHECK(q.hdr->posted == N + 1);
    for (int i = 0; i < N; i++) {
        if (t->dev.waddr[i] != (uint64_t)(0x400 + i % 7) ||
            t->dev.wdata[i] != (uint64_t)i || !t->dev.wposted[i] ||
            t->dev.wsize[i] != 2) {
            in_order = false;
        }
    }
    CHECK(in_order);

    printf("# serve() returns 0 once QEMU closes the socket\n");
    close(q.sock);
    q.sock = -1;
    pthread_join(t->tid, NULL);
    CHECK(t->serve_ret == 0);
    t->tid = pthread_self();
    q_close(&q);
    free(t->err);
    free(t);
}

/* exit-handler-post, out of process */

static const char *post_exe;
static char tmpdir[64];

static pid_t spawn(const char *const *args)
{
    const char *argv[32];
    int n = 0;
    pid_t pid;

    argv[n++] = post_exe;
    while (*args && n < 31) {
        argv[n++] = *args++;
    }
    argv[n] = NULL;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execv(post_exe, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Exit status, or -1 if @pid does not exit within @ms (it is killed). */
static int reap(pid_t pid, int ms)
{
    uint64_t end = now_ms() + ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(5);
    }
}

static int stop(pid_t pid)
{
    kill(pid, SIGTERM);
    return reap(pid, TIMEOUT_MS);
}

static bool alive(pid_t pid)
{
    int status;

    return waitpid(pid, &status, WNOHANG) == 0;
}

static void sock_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4) < 0) {
        perror("listen");
        exit(1);
    }
    return fd;
}

static int accept_timeout(int lfd)
{
    struct pollfd pf = { .fd = lfd, .events = POLLIN };

    if (poll(&pf, 1, TIMEOUT_MS) <= 0) {
        return -1;
    }
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static int connect_timeout(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint64_t end = now_ms() + TIMEOUT_MS;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    while (now_ms() < end) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        close(fd);
        sleep_ms(5);
    }
    return -1;
}

/* Handshake on @fd as QEMU; the reply in *@r. */
static bool q_open(Q *q, int fd, uint32_t slots, uint64_t features,
                   ExitHandlerHelloReply *r)
{
    ExitHandlerHello h;
    ExitHandlerHelloReply dummy;

    if (fd < 0) {
        return false;
    }
    q_init(q, fd, slots);
    h = q_hello(q, features);
    if (!q_send_hello(q, &h, 3, false) || !q_recv_reply(q, r ? r : &dummy)) {
        q_close(q);
        return false;
    }
    return true;
}

static const uint64_t all_features =
    EXIT_HANDLER_F_POSTED_WRITES | EXIT_HANDLER_F_POLL;

static void test_post_device(void)
{
    char path[PATH_LEN], log[128], line[256], expect[1024] = "";
    const char *args[] = {
        "--socket", path, "--connect", "--tag", "0xab", "--log", log,
        "--quiet", "--name", "post-test", NULL,
    };
    ExitHandlerHelloReply r;
    FILE *f;
    Q q;
    pid_t pid;
    int lfd;

    sock_path(path, sizeof(path), "post-dev.sock");
    sock_path(log, sizeof(log), "post-dev.log");
    unlink(path);
    pid = spawn(args);
    sleep_ms(50);                   /* it retries while PATH is missing */
    lfd = listen_on(path);
    if (!q_open(&q, accept_timeout(lfd), 8, all_features, &r)) {
        CHECK(!"handshake with exit-handler-post --connect");
        close(lfd);
        stop(pid);
        return;
    }
    CHECK(r.magic == EXIT_HANDLER_MAGIC && r.version == 1);
    CHECK(r.features == EXIT_HANDLER_F_POSTED_WRITES);
    CHECK(!strcmp(r.name, "post-test"));

    CHECK(q_read(&q, 0x80, 1) == 0xab);
    CHECK(q_read(&q, 0x80, 2) == 0xab);
    CHECK(q_write(&q, 0x80, 2, 0x1234) == EXIT_SLOT_OK);
    CHECK(q_read(&q, 0x80, 1) == 0x34);
    CHECK(q_read(&q, 0x80, 4) == 0x1234);
    CHECK(q_write(&q, 0x80, 1, 0x5678) == EXIT_SLOT_OK);
    CHECK(q_read(&q, 0x80, 4) == 0x78);
    CHECK(q_access(&q, EXIT_HANDLER_EV_MMIO, 0x80, 4, 0, 0, NULL) ==
          EXIT_SLOT_OK);
    CHECK(q_access(&q, EXIT_HANDLER_EV_MMIO, 0xfee00000, 8,
                   EXIT_SLOT_F_WRITE, UINT64_C(0x1122334455667788), NULL) ==
          EXIT_SLOT_OK);
    CHECK(q_read(&q, 0xfee00000, 8) == 0xab);   /* PIO is another space */
    for (int i = 0; i < 40; i++) {
        q_post(&q, EXIT_HANDLER_EV_PIO, 0x3f8, 1,
               EXIT_SLOT_F_WRITE | EXIT_SLOT_F_POSTED, 'a' + i % 26);
    }
    CHECK(q_read(&q, 0x3f8, 1) == 'a' + 39 % 26);
    snprintf(expect, sizeof(expect),
             "W 0x80 2 0x1234\nW 0x80 1 0x78\n"
             "W 0xfee00000 8 0x1122334455667788\n");
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof(line), "W 0x3f8 1 0x%x\n", 'a' + i % 26);
        strncat(expect, line, sizeof(expect) - strlen(expect) - 1);
    }

    printf("# --connect reconnects; the device keeps its state\n");
    q_close(&q);
    if (!q_open(&q, accept_timeout(lfd), 4, all_features, NULL)) {
        CHECK(!"reconnection");
    } else {
        CHECK(q_read(&q, 0x80, 1) == 0x78);
        CHECK(q_read(&q, 0x81, 1) == 0xab);
        q_close(&q);
    }
    close(lfd);
    CHECK(stop(pid) == 0);

    f = fopen(log, "r");
    CHECK(f != NULL);
    if (f) {
        char got[2048];
        size_t n = fread(got, 1, sizeof(got) - 1, f);

        got[n] = '\0';
        fclose(f);
        CHECK(!strcmp(got, expect));
    }
}

static void test_post_events(void)
{
    static const char *const bad[] = {
        "nmi:bogus=suppress", "smi=handled@2", "xyz=deliver", "mce",
        "mce=deliver@", "mce=deliver@x", "nmi=maybe",
    };
    char path[PATH_LEN];
    const char *args[] = { "--socket", path, "--quiet", "--events",
        "mce:srao=deliver@1,mce=handled,nmi=suppress", NULL };
    ExitHandlerHelloReply r;
    int32_t cpu;
    Q q;
    pid_t pid;

    sock_path(path, sizeof(path), "post-events.sock");
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *bad_args[] = { "--socket", path, "--events", bad[i],
                                   NULL };

        CHECK(reap(spawn(bad_args), TIMEOUT_MS) == 2);
    }
    pid = spawn(args);
    if (!q_open(&q, connect_timeout(path), 8,
                all_features | EXIT_HANDLER_F_EVENTS, &r)) {
        CHECK(!"connection to exit-handler-post");
        stop(pid);
        return;
    }
    CHECK(r.features == (EXIT_HANDLER_F_POSTED_WRITES |
                         EXIT_HANDLER_F_EVENTS));
    CHECK(q_event(&q, EXIT_HANDLER_EV_MCE, EXIT_SLOT_SOURCE_QMP, 0,
                  EXIT_SLOT_CLASS_SRAO, 9, 8, 0, 0, &cpu) == EXIT_SLOT_OK &&
          cpu == 1);
    CHECK(q_event(&q, EXIT_HANDLER_EV_MCE, EXIT_SLOT_SOURCE_QMP, 0,
                  EXIT_SLOT_CLASS_CORRECTED, 9, 8, 0, 0, &cpu) ==
          EXIT_SLOT_HANDLED && cpu == 0);
    CHECK(q_event(&q, EXIT_HANDLER_EV_NMI, EXIT_SLOT_SOURCE_QMP, 0, 0,
                  EXIT_SLOT_NO_BANK, 8, 0, 0, &cpu) == EXIT_SLOT_SUPPRESS);
    CHECK(q_event(&q, EXIT_HANDLER_EV_SMI, EXIT_SLOT_SOURCE_APM, 0, 0,
                  EXIT_SLOT_NO_BANK, 8, 0, 0, &cpu) == EXIT_SLOT_UNHANDLED);
    q_close(&q);
    CHECK(stop(pid) == 0);
}

static void test_post_listen(void)
{
    char path[PATH_LEN];
    const char *args[] = { "--socket", path, "--poll", "--quiet", NULL };
    ExitHandlerHelloReply r;
    struct stat st;
    Q q;
    pid_t pid;

    sock_path(path, sizeof(path), "post-listen.sock");
    pid = spawn(args);
    for (int i = 0; i < 3; i++) {
        if (!q_open(&q, connect_timeout(path), 8, all_features, &r)) {
            CHECK(!"connection to exit-handler-post");
            break;
        }
        CHECK(r.features == all_features);      /* --poll */
        CHECK(q_write(&q, 0x100 + i, 1, i + 1) == EXIT_SLOT_OK);
        CHECK(q_read(&q, 0x100 + i, 1) == (uint64_t)i + 1);
        /* with F_POLL it spins 50 us, then sleeps: both paths */
        sleep_ms(5);
        CHECK(q_read(&q, 0x100, 1) == 1);
        q_close(&q);
    }
    CHECK(stop(pid) == 0);
    CHECK(stat(path, &st) < 0);                 /* it removed its socket */
}

static void test_post_bad_hello(void)
{
    char path[PATH_LEN];
    const char *args[] = { "--socket", path, "--bad-hello", "--quiet", NULL };
    ExitHandlerHelloReply r;
    Q q;
    pid_t pid;

    sock_path(path, sizeof(path), "post-bad.sock");
    pid = spawn(args);
    if (q_open(&q, connect_timeout(path), 8, all_features, &r)) {
        CHECK(r.magic != EXIT_HANDLER_MAGIC);
        q_close(&q);
    } else {
        CHECK(!"HELLO_REPLY from --bad-hello");
    }
    CHECK(alive(pid));
    CHECK(stop(pid) == 0);
}

static void test_post_delay_hang(void)
{
    char path[PATH_LEN];
    const char *args[] = {
        "--socket", path, "--delay-us", "20000", "--hang-after", "3",
        "--quiet", NULL,
    };
    uint64_t t0, n;
    Q q;
    pid_t pid;

    sock_path(path, sizeof(path), "post-hang.sock");
    pid = spawn(args);
    if (!q_open(&q, connect_timeout(path), 8, all_features, NULL)) {
        CHECK(!"connection");
        stop(pid);
        return;
    }
    t0 = now_ms();
    CHECK(q_read(&q, 1, 1) == 0);
    CHECK(now_ms() - t0 >= 20);                 /* --delay-us */
    CHECK(q_read(&q, 2, 1) == 0);
    CHECK(q_read(&q, 3, 1) == 0);
    n = q_post(&q, EXIT_HANDLER_EV_PIO, 4, 1, 0, 0);
    CHECK(!q_wait(&q, n, 300));                 /* --hang-after 3 */
    CHECK(alive(pid));
    CHECK(stop(pid) == 0);                      /* SIGTERM while hung */
    q_close(&q);
}

static void test_post_fuzz(void)
{
    char path[PATH_LEN];
    const char *args[] = { "--socket", path, "--fuzz", "42", "--quiet",
                           NULL };
    unsigned anomalies = 0, good = 0, junk = 0, conns = 1;
    Q q;
    pid_t pid;

    sock_path(path, sizeof(path), "post-fuzz.sock");
    pid = spawn(args);
    if (!q_open(&q, connect_timeout(path), 8, all_features, NULL)) {
        CHECK(!"connection");
        stop(pid);
        return;
    }
    /* the device processes every request, whatever the reply says */
    for (int i = 0; i < 400; i++) {
        bool is_write = !(i & 1);   /* a write, then a read of it */
        uint64_t n = q_post(&q, EXIT_HANDLER_EV_PIO, 0x80, 1,
                            is_write ? EXIT_SLOT_F_WRITE : 0, i & 0xff);
        ExitRingSlot *s = &q.slot[n & (q.slots - 1)];
        struct pollfd pf = { .fd = q.sock, .events = POLLIN };
        bool bad;

        bad = !q_wait(&q, n, 200) ||
              __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != EXIT_SLOT_DONE ||
              s->reply_seq != (uint32_t)n || s->status > 1 ||
              !q_completed(&q, n, 20) ||
              (!is_write && s->data != (uint64_t)((i - 1) & 0xff));
        if (poll(&pf, 1, 0) > 0) {
            junk++;
            bad = true;
        }
        if (!bad) {
            good++;
            continue;
        }
        /* QEMU gives up on this connection and makes a new one */
        anomalies++;
        q_close(&q);
        if (!q_open(&q, connect_timeout(path), 8, all_features, NULL)) {
            CHECK(!"reconnection after a malformed reply");
            break;
        }
        conns++;
    }
    printf("# fuzz: %u good replies, %u malformed (%u with junk on the "
           "socket), %u connections\n", good, anomalies, junk, conns);
    CHECK(anomalies > 0 && good > 0 && junk > 0);
    CHECK(alive(pid));
    q_close(&q);
    CHECK(stop(pid) == 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    post_exe = argc > 1 ? argv[1] : getenv("QT_EXIT_HANDLER");

    run("handshake, features, HELLO split over reads", test_handshake);
    run("refusals: ERROR VERSION / ERROR RING, then close", test_refusals);
    run("a message other than HELLO: ERROR INTERNAL", test_wrong_message);
    run("reads, writes, masking, invalid requests", test_requests);
    run("posted writes in order through a wrapping ring", test_posted_order);
    run("platform events: fields, verdicts, retargeting, refusals",
        test_events);

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-exit-handler-XXXXXX");
    if (!post_exe || access(post_exe, X_OK) < 0 || !mkdtemp(tmpdir)) {
        const char *why = "exit-handler-post not found (argv[1] or "
                          "QT_EXIT_HANDLER)";

        skip("exit-handler-post: device, --tag, --log, --connect", why);
        skip("exit-handler-post: listen mode, --poll, SIGTERM", why);
        skip("exit-handler-post: --bad-hello", why);
        skip("exit-handler-post: --delay-us, --hang-after", why);
        skip("exit-handler-post: --fuzz", why);
        skip("exit-handler-post: --events", why);
    } else {
        char cmd[128];

        run("exit-handler-post: device, --tag, --log, --connect",
            test_post_device);
        run("exit-handler-post: listen mode, --poll, SIGTERM",
            test_post_listen);
        run("exit-handler-post: --bad-hello", test_post_bad_hello);
        run("exit-handler-post: --delay-us, --hang-after",
            test_post_delay_hang);
        run("exit-handler-post: --fuzz", test_post_fuzz);
        run("exit-handler-post: --events", test_post_events);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) {
            printf("# could not remove %s\n", tmpdir);
        }
    }
    printf("1..%d\n", test_num);
    return test_failed ? 1 : 0;
}

/*
 * qemu-tiers external exit handlers: the handler's side of the protocol.
 *
 * See exit-handler-lib.h for the API and exit-handler-proto.h for the
 * wire format.  Nothing QEMU puts in the socket or the ring is trusted:
 * sizes, counts and indexes are checked before use, every ring field is
 * read once, and the handler's position in the ring is its own.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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

#include "exit-handler-lib.h"

/* The longest spin we honour for F_POLL, whatever HELLO asks. */
#define POLL_US_MAX     1000000u

/* At most this many fds are kept from one message; more is an error. */
#define MAX_FDS         3

struct ExitHandlerConn {
    int sock;
    int ring_fd;
    int kick_fd;
    int call_fd;
    void *ring;
    size_t ring_bytes;
    ExitRingHdr *hdr;
    ExitRingSlot *slots;
    uint32_t nslots;
    uint64_t next;              /* our consumer index */
    uint64_t requests;          /* completed on this connection */
    uint64_t features;          /* accepted */
    uint32_t poll_us;
    ExitHandlerHello hello;
    ExitHandlerTamperFn tamper;
    void *tamper_opaque;
};

/* Stopping */

static volatile sig_atomic_t stop_flag;
static int stop_fd = -1;

static void stop_fd_init(void)
{
    int fd, expected = -1;

    if (__atomic_load_n(&stop_fd, __ATOMIC_ACQUIRE) >= 0) {
        return;
    }
    fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        /* Without it a signal still interrupts poll() with EINTR. */
        return;
    }
    if (!__atomic_compare_exchange_n(&stop_fd, &expected, fd, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        close(fd);
    }
}

void exit_handler_request_stop(void)
{
    uint64_t one = 1;
    int fd, saved = errno;

    stop_flag = 1;
    fd = __atomic_load_n(&stop_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
        /* The counter stays non-zero either way. */
    }
    errno = saved;
}

bool exit_handler_stop_requested(void)
{
    return stop_flag != 0;
}

/* Helpers */

static void set_err(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (!err) {
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    free(*err);
    *err = s;
}

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}


/*
 * Waits until @fd has one of @events (returns 1), @timeout_ms passes
 * (0; negative waits forever) or a stop is requested (-1, ECANCELED).
 */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p[2] = {
        { .fd = fd, .events = events },
        { .fd = __atomic_load_n(&stop_fd, __ATOMIC_ACQUIRE),
          .events = POLLIN },
    };
    int r;

    for (;;) {
        if (stop_flag) {
            errno = ECANCELED;
            return -1;
        }
        r = poll(p, p[1].fd >= 0 ? 2 : 1, timeout_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            return 0;
        }
        if (p[1].revents) {
            continue;   /* stop_flag is set: report it above */
        }
        return 1;
    }
}

/* Sends all of @buf on @sock (no SIGPIPE). */
static int send_all(int sock, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = send(sock, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

static int send_msg(int sock, uint32_t type, const void *payload,
                    uint32_t size)
{
    char buf[sizeof(ExitHandlerMsgHdr) + EXIT_HANDLER_MSG_MAX];
    ExitHandlerMsgHdr h = { .type = type, .size = size };

    if (size > EXIT_HANDLER_MSG_MAX) {
        errno = EINVAL;
        return -1;
    }
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), payload, size);
    return send_all(sock, buf, sizeof(h) + size);
}

int exit_handler_send_error(int sock, uint32_t code, const char *text)
{
    ExitHandlerError e = { .code = code };

    snprintf(e.text, sizeof(e.text), "%s", text ? text : "");
    return send_msg(sock, EXIT_HANDLER_MSG_ERROR, &e, sizeof(e));
}

/*
 * Receives exactly @len bytes from @sock, keeping up to MAX_FDS
 * descriptors passed with any of them in @fds (*@nfds counts them).
 * More descriptors than that, or truncated ancillary data, set
 * *@fd_overflow.  Returns 0, or -1 with errno set (ECONNRESET when the
 * peer closed the socket, ECANCELED after a stop request).
 */
static int recv_full(int sock, void *buf, size_t len, int *fds, int *nfds,
                     bool *fd_overflow)
{
    char *p = buf;

    while (len) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * 16)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { .iov_base = p, .iov_len = len };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
        };
        struct cmsghdr *cm;
        ssize_t n;
        int r;

        r = wait_fd(sock, POLLIN, -1);
        if (r < 0) {
            return -1;
        }
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            int *in;
            size_t k;

            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
                continue;
            }
            in = (int *)CMSG_DATA(cm);
            k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;

                memcpy(&fd, &in[i], sizeof(fd));
                if (*nfds < MAX_FDS) {
                    fds[(*nfds)++] = fd;
                } else {
                    close(fd);
                    *fd_overflow = true;
                }
            }
        }
        if (msg.msg_flags & MSG_CTRUNC) {
            *fd_overflow = true;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

/* Sockets */

static int make_addr(const char *path, struct sockaddr_un *sa, char **err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (!path || !*path || strlen(path) >= sizeof(sa->sun_path)) {
        set_err(err, "socket path '%s' is empty or too long",
                path ? path : "");
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int exit_handler_listen(const char *path, char **err)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, saved;

    stop_fd_init();
    if (make_addr(path, &sa, err) < 0) {
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            set_err(err, "%s exists and is not a socket", path);
            errno = EEXIST;
            return -1;
        }
        if (unlink(path) < 0) {
            set_err(err, "cannot remove stale socket %s: %s", path,
                    strerror(errno));
            return -1;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 8) < 0) {
        saved = errno;
        set_err(err, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int exit_handler_accept(int listen_fd)
{
    stop_fd_init();
    for (;;) {
        int fd, r;

        r = wait_fd(listen_fd, POLLIN, -1);
        if (r < 0) {
            return -1;
        }
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            return -1;
        }
    }
}

int exit_handler_connect(const char *path, int retry_ms, char **err)
{
    struct sockaddr_un sa;

    stop_fd_init();
    if (make_addr(path, &sa, err) < 0) {
        return -1;
    }
    for (;;) {
        int fd, saved;

        if (stop_flag) {
            set_err(err, "stopped");
            errno = ECANCELED;
            return -1;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            set_err(err, "socket: %s", strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        saved = errno;
        close(fd);
        if (saved == EINTR) {
            continue;
        }
        if (retry_ms <= 0 ||
            (saved != ENOENT && saved != ECONNREFUSED && saved != EAGAIN)) {
            set_err(err, "cannot connect to %s: %s", path, strerror(saved));
            errno = saved;
            return -1;
        }
        /* A pause that a stop request cuts short. */
        if (wait_fd(-1, 0, retry_ms) < 0 && errno == ECANCELED) {
            set_err(err, "stopped");
            return -1;
        }
    }
}

/* Handshake */

static ExitHandlerConn *conn_new(int sock)
{
    ExitHandlerConn *c = calloc(1, sizeof(*c));

    if (!c) {
        return NULL;
    }
    c->sock = sock;
    c->ring_fd = c->kick_fd = c->call_fd = -1;
    return c;
}

void exit_handler_conn_close(ExitHandlerConn *c)
{
    if (!c) {
        return;
    }
    if (c->ring) {
        munmap(c->ring, c->ring_bytes);
    }
    close_fds(&c->ring_fd, 1);
    close_fds(&c->kick_fd, 1);
    close_fds(&c->call_fd, 1);
    close_fds(&c->sock, 1);
    free(c);
}

/* Fails the handshake: ERROR to QEMU if @code, then close everything. */
static ExitHandlerConn *hello_fail(ExitHandlerConn *c, int *fds, int nfds,
                                   uint32_t code, char **err,
                                   const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static ExitHandlerConn *hello_fail(ExitHandlerConn *c, int *fds, int nfds,
                                   uint32_t code, char **err,
                                   const char *fmt, ...)
{
    char text[sizeof(((ExitHandlerError *)0)->text)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    set_err(err, "%s", text);
    if (code) {
        exit_handler_send_error(c->sock, code, text);
    }
    close_fds(fds, nfds);
    exit_handler_conn_close(c);
    return NULL;
}

static bool is_pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

ExitHandlerConn *exit_handler_recv_hello(int sock, char **err)
{
    union {
        char buf[EXIT_HANDLER_MSG_MAX];
        ExitHandlerHello hello;
    } u;
    ExitHandlerConn *c;
    ExitHandlerMsgHdr h;
    ExitHandlerHello *hello = &u.hello;
    ExitRingHdr *rh;
    struct stat st;
    int fds[MAX_FDS] = { -1, -1, -1 };
    int nfds = 0;
    bool fd_overflow = false;
    uint32_t magic, version, slots, bytes;
    void *ring;

    stop_fd_init();
    c = conn_new(sock);
    if (!c) {
        close(sock);
        set_err(err, "out of memory");
        return NULL;
    }
    memset(&u, 0, sizeof(u));
    if (recv_full(sock, &h, sizeof(h), fds, &nfds, &fd_overflow) < 0) {
        return hello_fail(c, fds, nfds, 0, err, "no HELLO: %s",
                          errno == ECONNRESET ? "QEMU closed the socket"
                                              : strerror(errno));
    }
    if (h.type != EXIT_HANDLER_MSG_HELLO || h.size > EXIT_HANDLER_MSG_MAX) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_INTERNAL, err,
                          "expected HELLO, got message type %u size %u",
                          h.type, h.size);
    }
    if (recv_full(sock, u.buf, h.size, fds, &nfds, &fd_overflow) < 0) {
        return hello_fail(c, fds, nfds, 0, err, "short HELLO: %s",
                          errno == ECONNRESET ? "QEMU closed the socket"
                                              : strerror(errno));
    }
    magic = hello->magic;
    version = hello->version;
    if (h.size < 8 || magic != EXIT_HANDLER_MAGIC ||
        version != EXIT_HANDLER_VERSION) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_VERSION, err,
                          "unsupported protocol: magic 0x%08x version %u "
                          "(this handler speaks version %u)",
                          h.size >= 4 ? magic : 0,
                          h.size >= 8 ? version : 0, EXIT_HANDLER_VERSION);
    }
    if (h.size != sizeof(ExitHandlerHello)) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_INTERNAL, err,
                          "HELLO of %u bytes, expected %zu", h.size,
                          sizeof(ExitHandlerHello));
    }
    hello->handler_id[sizeof(hello->handler_id) - 1] = '\0';
    if (nfds != 3 || fd_overflow) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_RING, err,
                          "HELLO came with %d%s file descriptors, expected 3",
                          nfds, fd_overflow ? "+" : "");
    }
    slots = hello->ring_slots;
    bytes = hello->ring_bytes;
    if (!is_pow2(slots) || slots > EXIT_RING_SLOTS_MAX) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_RING, err,
                          "ring_slots %u is not a power of two <= %u",
                          slots, EXIT_RING_SLOTS_MAX);
    }
    if (bytes != exit_ring_bytes(slots)) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_RING, err,
                          "ring_bytes %u, expected %u for %u slots",
                          bytes, exit_ring_bytes(slots), slots);
    }
    if (fstat(fds[0], &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size < (off_t)bytes) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_RING, err,
                          "the ring fd is not a file of at least %u bytes",
                          bytes);
    }
    ring = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (ring == MAP_FAILED) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_RING, err,
                          "cannot map the ring: %s", strerror(errno));
    }
    c->ring = ring;
    c->ring_bytes = bytes;
    rh = ring;
    if (__atomic_load_n(&rh->magic, __ATOMIC_RELAXED) != EXIT_HANDLER_MAGIC ||
        __atomic_load_n(&rh->slots, __ATOMIC_RELAXED) != slots) {
        return hello_fail(c, fds, nfds, EXIT_HANDLER_ERR_RING, err,
                          "bad ring header (magic 0x%08x, %u slots)",
                          rh->magic, rh->slots);
    }
    c->ring_fd = fds[0];
    c->kick_fd = fds[1];
    c->call_fd = fds[2];
    c->hdr = rh;
    c->slots = (ExitRingSlot *)((char *)ring + EXIT_RING_HDR_BYTES);
    c->nslots = slots;
    c->next = __atomic_load_n(&rh->completed, __ATOMIC_ACQUIRE);
    c->hello = *hello;
    c->poll_us = hello->poll_us < POLL_US_MAX ? hello->poll_us : POLL_US_MAX;
    return c;
}

ExitHandlerHelloReply exit_handler_accept_features(const ExitHandlerConn *c,
                                                   const char *name,
                                                   uint64_t supported)
{
    ExitHandlerHelloReply r = {
        .magic = EXIT_HANDLER_MAGIC,
        .version = c->hello.version,
        .features = c->hello.features & supported,
    };

    snprintf(r.name, sizeof(r.name), "%s", name ? name : "");
    return r;
}

int exit_handler_send_reply(ExitHandlerConn *c,
                            const ExitHandlerHelloReply *reply, char **err)
{
    if (send_msg(c->sock, EXIT_HANDLER_MSG_HELLO_REPLY, reply,
                 sizeof(*reply)) < 0) {
        set_err(err, "cannot send HELLO_REPLY: %s", strerror(errno));
        return -1;
    }
    c->features = reply->features;
    return 0;
}

ExitHandlerConn *exit_handler_handshake(int sock, const char *name,
                                        uint64_t supported_features,
                                        char **err)
{
    ExitHandlerConn *c = exit_handler_recv_hello(sock, err);
    ExitHandlerHelloReply r;

    if (!c) {
        return NULL;
    }
    r = exit_handler_accept_features(c, name, supported_features);
    if (exit_handler_send_reply(c, &r, err) < 0) {
        exit_handler_conn_close(c);
        return NULL;
    }
    return c;
}

/* Serving */

enum {
    WAIT_AGAIN,     /* look at the ring again */
    WAIT_CLOSED,    /* QEMU closed the socket */
    WAIT_STOPPED,   /* a stop was requested */
    WAIT_ERROR,
};

static bool slot_posted(ExitRingSlot *s)
{
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == EXIT_SLOT_POSTED;
}

/* Reads and drops whatever QEMU sent; tells whether the socket is over. */
static int drain_socket(ExitHandlerConn *c)
{
    for (;;) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * 16)];
            struct cmsghdr align;
        } ctl;
        char buf[256];
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
        };
        struct cmsghdr *cm;
        ssize_t n;

        n = recvmsg(c->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return WAIT_AGAIN;
        }
        if (n <= 0) {
            return WAIT_CLOSED;
        }
        for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (size_t i = 0; i < k; i++) {
                    int fd;

                    memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
                    close(fd);
                }
            }
        }
    }
}

/*
 * Waits for the slot @s to be posted: spins for poll_us if F_POLL was
 * accepted, then announces handler_sleeping, checks again and sleeps on
 * the kick eventfd and the socket.
 */
static int wait_work(ExitHandlerConn *c, ExitRingSlot *s)
{
    struct pollfd p[3];
    uint64_t v;
    int n, r;

    if ((c->features & EXIT_HANDLER_F_POLL) && c->poll_us) {
        uint64_t end = now_ns() + (uint64_t)c->poll_us * 1000;

        do {
            /*
             * No PAUSE: under nested virtualization it may exit to the
             * host (pause-loop exiting) and cost microseconds.
             */
            for (int i = 0; i < 64; i++) {
                if (slot_posted(s)) {
                    return WAIT_AGAIN;
                }
            }
            if (stop_flag) {
                return WAIT_STOPPED;
            }
        } while (now_ns() < end);
    }

    __atomic_store_n(&c->hdr->handler_sleeping, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (slot_posted(s)) {
        __atomic_store_n(&c->hdr->handler_sleeping, 0, __ATOMIC_RELAXED);
        return WAIT_AGAIN;
    }

    p[0] = (struct pollfd) { .fd = c->kick_fd, .events = POLLIN };
    p[1] = (struct pollfd) { .fd = c->sock, .events = POLLIN };
    p[2] = (struct pollfd) {
        .fd = __atomic_load_n(&stop_fd, __ATOMIC_ACQUIRE), .events = POLLIN,
    };
    n = p[2].fd >= 0 ? 3 : 2;
    for (;;) {
        if (stop_flag) {
            r = WAIT_STOPPED;
            break;
        }
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = WAIT_ERROR;
            break;
        }
        r = WAIT_AGAIN;
        if (p[1].revents) {
            r = drain_socket(c);
            if (r != WAIT_AGAIN) {
                break;
            }
        }
        if (p[0].revents & (POLLERR | POLLNVAL)) {
            errno = EBADF;
            r = WAIT_ERROR;
            break;
        }
        if (p[0].revents & POLLIN) {
            if (read(c->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN &&
                errno != EINTR) {
                r = WAIT_ERROR;
                break;
            }
        }
        if (p[2].revents) {
            continue;   /* reported through stop_flag */
        }
        break;
    }
    __atomic_store_n(&c->hdr->handler_sleeping, 0, __ATOMIC_RELAXED);
    return r;
}

static bool request_valid(const ExitHandlerConn *c,
                          const ExitHandlerRequest *req, uint8_t flags)
{
    if (exit_handler_is_event(req)) {
        /* Only if the handshake took them; never writes, never posted. */
        return (c->features & EXIT_HANDLER_F_EVENTS) &&
               req->event <= EXIT_HANDLER_EV_MEMORY_ERROR &&
               req->size == 8 && flags == 0 &&
               req->source <= EXIT_SLOT_SOURCE_HOST &&
               req->class <= EXIT_SLOT_CLASS_AR && req->cpu >= -1;
    }
    if (req->size != 1 && req->size != 2 && req->size != 4 &&
        req->size != 8) {
        return false;
    }
    if (flags & ~(EXIT_SLOT_F_WRITE | EXIT_SLOT_F_POSTED)) {
        return false;
    }
    /* Only writes may be posted: nobody would read a posted read. */
    if ((flags & EXIT_SLOT_F_POSTED) && !(flags & EXIT_SLOT_F_WRITE)) {
        return false;
    }
    return true;
}

/* Handles the posted slot @s; returns false for EXIT_HANDLER_STOP. */
static bool handle_slot(ExitHandlerConn *c, ExitRingSlot *s,
                        ExitHandlerAccessFn fn, void *opaque)
{
    ExitHandlerRequest req;
    ExitHandlerReply rep;
    uint8_t flags;
    uint64_t data = 0;
    uint32_t status;
    bool event;

    /* Each field is read exactly once: QEMU may scribble meanwhile. */
    req.seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    req.event = __atomic_load_n(&s->event, __ATOMIC_RELAXED);
    req.size = __atomic_load_n(&s->size, __ATOMIC_RELAXED);
    flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
    req.addr = __atomic_load_n(&s->addr, __ATOMIC_RELAXED);
    req.data = __atomic_load_n(&s->data, __ATOMIC_RELAXED);
    req.is_write = flags & EXIT_SLOT_F_WRITE;
    req.posted = flags & EXIT_SLOT_F_POSTED;
    req.source = __atomic_load_n(&s->source, __ATOMIC_RELAXED);
    req.class = __atomic_load_n(&s->class, __ATOMIC_RELAXED);
    req.bank = __atomic_load_n(&s->bank, __ATOMIC_RELAXED);
    req.cpu = __atomic_load_n(&s->cpu, __ATOMIC_RELAXED);
    event = exit_handler_is_event(&req);

    if (request_valid(c, &req, flags)) {
        if (event) {
            data = (uint64_t)(int64_t)req.cpu;
        } else {
            req.data = req.is_write ? req.data & size_mask(req.size) : 0;
        }
        status = fn(opaque, &req, &data);
        if (status == EXIT_HANDLER_STOP) {
            return false;
        }
        if (status != EXIT_SLOT_OK &&
            (!event || (status != EXIT_SLOT_SUPPRESS &&
                        status != EXIT_SLOT_HANDLED))) {
            status = EXIT_SLOT_UNHANDLED;
        }
        if (!event) {
            data &= size_mask(req.size);
        }
    } else {
        status = EXIT_SLOT_UNHANDLED;
    }
    if (status != EXIT_SLOT_OK) {
        data = event ? (uint64_t)(int64_t)req.cpu : 0;
    }

    rep = (ExitHandlerReply) {
        .data = data,
        .status = status,
        .cpu = event ? (int32_t)data : req.cpu,
        .write_cpu = event,
        .reply_seq = req.seq,
        .state = EXIT_SLOT_DONE,
        .write_data = !req.is_write && !event,
        .completed = c->next + 1,
    };
    if (c->tamper) {
        c->tamper(c->tamper_opaque, c, &req, &rep);
    }
    if (rep.write_data) {
        __atomic_store_n(&s->data, rep.data, __ATOMIC_RELAXED);
    }
    if (rep.write_cpu) {
        __atomic_store_n(&s->cpu, rep.cpu, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&s->status, rep.status, __ATOMIC_RELAXED);
    __atomic_store_n(&s->reply_seq, rep.reply_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&s->state, rep.state, __ATOMIC_RELEASE);
    __atomic_store_n(&c->hdr->completed, rep.completed, __ATOMIC_RELEASE);
    c->next++;
    c->requests++;
    return true;
}

/* The call doorbell, rung only when QEMU said it is about to sleep. */
static int ring_call(ExitHandlerConn *c)
{
    uint64_t one = 1;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&c->hdr->qemu_waiting, __ATOMIC_RELAXED)) {
        return 0;
    }
    while (write(c->call_fd, &one, sizeof(one)) < 0) {
        if (errno == EAGAIN) {
            return 0;   /* the counter is saturated: QEMU will wake */
        }
        if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

int exit_handler_serve(ExitHandlerConn *c, ExitHandlerAccessFn fn,
                       void *opaque)
{
    for (;;) {
        ExitRingSlot *s = &c->slots[c->next & (c->nslots - 1)];

        if (stop_flag) {
            return 1;
        }
        if (!slot_posted(s)) {
            switch (wait_work(c, s)) {
            case WAIT_AGAIN:
                continue;
            case WAIT_CLOSED:
                return 0;
            case WAIT_STOPPED:
                return 1;
            default:
                return -1;
            }
        }
        if (!handle_slot(c, s, fn, opaque)) {
            return 1;
        }
        if (ring_call(c) < 0) {
            return -1;
        }
    }
}

void exit_handler_set_tamper(ExitHandlerConn *c, ExitHandlerTamperFn fn,
                             void *opaque)
{
    c->tamper = fn;
    c->tamper_opaque = opaque;
}

/* Accessors */

const ExitHandlerHello *exit_handler_conn_hello(const ExitHandlerConn *c)
{
    return &c->hello;
}

uint64_t exit_handler_conn_features(const ExitHandlerConn *c)
{
    return c->features;
}

int exit_handler_conn_socket(const ExitHandlerConn *c)
{
    return c->sock;
}

uint64_t exit_handler_conn_requests(const ExitHandlerConn *c)
{
    return c->requests;
}

/*
 * ivq-broker: connects the ivq devices of the VMs of one host.
 *
 *   ivq-broker -s SOCKET [-u UID]... [-n MAX_PEERS] [-q]
 *
 * One per host.  Every QEMU with `-device ivq,chardev=...` connects to
 * SOCKET (a UNIX stream socket) and sends HELLO with its region (a
 * sealed memfd) and its doorbell (an eventfd).  The broker checks the
 * connecting process with SO_PEERCRED (logs its uid and pid; with -u,
 * only the listed uids are let in), assigns a peer id (the one asked for
 * if it is free: a QEMU that reconnects after a broker restart keeps its
 * id), answers WELCOME, and hands every peer's region and doorbell to
 * every other peer (PEER_UP) over SCM_RIGHTS; when a peer's socket
 * closes it tells the others (PEER_DOWN).  It never maps a region and
 * holds no queue state: a restarted broker rebuilds everything from the
 * HELLOs of the QEMUs that reconnect.  Protocol: ../ivq-proto.h,
 * docs/intervm-queues.rst.
 *
 * Single-threaded, poll(); a peer whose socket cannot take a 64-byte
 * message at once is dropped rather than waited for.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ivq-proto.h"

#define MAX_CLIENTS     64
#define MAX_UIDS        16
#define REGION_MAX      (256ull << 20)

typedef struct Client {
    int fd;
    bool peer;                  /* WELCOMEd */
    bool dead;                  /* to be dropped by the main loop */
    bool banned;                /* uid not allowed: refused at HELLO */
    uint32_t id;
    uid_t uid;
    pid_t pid;
    char name[IVQ_NAME_MAX];
    uint64_t region_size;
    int region_fd;
    int doorbell_fd;
} Client;

static Client *clients[MAX_CLIENTS];
static Client *by_id[IVQ_MAX_PEERS];
static uint32_t max_peers = IVQ_MAX_PEERS;
static uid_t allowed[MAX_UIDS];
static int n_allowed;
static bool quiet;
static volatile sig_atomic_t stop;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logmsg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("ivq-broker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

#define say(...) do { if (!quiet) { logmsg(__VA_ARGS__); } } while (0)

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Sends one message (and fds); false, and the client is marked dead, if not. */
static bool send_msg(Client *c, const IvqProtoMsg *m, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (c->dead) {
        return false;
    }
    if (nfds) {
        struct cmsghdr *cm;

        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    do {
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n != sizeof(*m)) {
        say("peer %u '%s' (pid %d): cannot send to it (%s), dropping it",
            c->id, c->name, (int)c->pid, n < 0 ? strerror(errno) : "short");
        c->dead = true;
        return false;
    }
    return true;
}

static IvqProtoMsg msg_of(uint32_t type, uint32_t id)
{
    IvqProtoMsg m = {
        .magic = IVQ_PROTO_MAGIC, .type = type,
        .version = IVQ_PROTO_VERSION, .id = id,
    };

    return m;
}

static void refuse(Client *c, const char *why)
{
    IvqProtoMsg m = msg_of(IVQ_MSG_REFUSED, IVQ_NO_PEER);

    snprintf(m.name, sizeof(m.name), "%s", why);
    send_msg(c, &m, NULL, 0);
    c->dead = true;
}

/* Tells @to that @p is up, with @p's region and doorbell. */
static void announce(Client *to, Client *p)
{
    IvqProtoMsg m = msg_of(IVQ_MSG_PEER_UP, p->id);
    int fds[2] = { p->region_fd, p->doorbell_fd };

    m.region_size = p->region_size;
    m.uid = p->uid;
    m.pid = p->pid;
    memcpy(m.name, p->name, sizeof(m.name));
    send_msg(to, &m, fds, 2);
}

static void drop(int slot)
{
    Client *c = clients[slot];
    int i;

    clients[slot] = NULL;
    if (c->peer) {
        IvqProtoMsg m = msg_of(IVQ_MSG_PEER_DOWN, c->id);

        by_id[c->id] = NULL;
        memcpy(m.name, c->name, sizeof(m.name));
        say("peer %u '%s' down (uid %u pid %d)", c->id, c->name,
            (unsigned)c->uid, (int)c->pid);
        for (i = 0; i < IVQ_MAX_PEERS; i++) {
            if (by_id[i]) {
                send_msg(by_id[i], &m, NULL, 0);
            }
        }
    }
    close(c->fd);
    if (c->region_fd >= 0) {
        close(c->region_fd);
    }
    if (c->doorbell_fd >= 0) {
        close(c->doorbell_fd);
    }
    free(c);
}

static uint32_t assign_id(uint32_t want)
{
    uint32_t i;

    if (want < max_peers && !by_id[want]) {
        return want;
    }
    for (i = 0; i < max_peers; i++) {
        if (!by_id[i]) {
            return i;
        }
    }
    return IVQ_NO_PEER;
}

static void hello(Client *c, const IvqProtoMsg *m, int *fds, int nfds)
{
    IvqProtoMsg w;
    uint32_t id, i;

    if (m->type != IVQ_MSG_HELLO || nfds != 2 ||
        !memchr(m->name, 0, sizeof(m->name)) || !m->name[0] ||
        m->region_size < IVQ_CTL_SIZE || m->region_size > REGION_MAX) {
        say("pid %d: malformed HELLO (type %u, %d fds)", (int)c->pid,
            m->type, nfds);
        refuse(c, "malformed HELLO");
        return;
    }
    id = assign_id(m->id);
    if (id == IVQ_NO_PEER) {
        say("pid %d '%s': refused, %u peers already", (int)c->pid, m->name,
            max_peers);
        refuse(c, "the broker is full");
        return;
    }
    c->region_fd = fds[0];
    c->doorbell_fd = fds[1];
    fds[0] = fds[1] = -1;
    c->region_size = m->region_size;
    memcpy(c->name, m->name, sizeof(c->name));
    c->id = id;
    w = msg_of(IVQ_MSG_WELCOME, id);
    if (!send_msg(c, &w, NULL, 0)) {
        return;
    }
    c->peer = true;
    by_id[id] = c;
    say("peer %u '%s' up (uid %u pid %d%s)", id, c->name, (unsigned)c->uid,
        (int)c->pid, m->id != IVQ_NO_PEER && m->id != id ?
        ", not the id it asked for" : "");
    for (i = 0; i < IVQ_MAX_PEERS; i++) {
        if (by_id[i] && by_id[i] != c) {
            announce(c, by_id[i]);
            announce(by_id[i], c);
        }
    }
}

static void readable(Client *c)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    IvqProtoMsg m;
    struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *cm;
    int fds[4], nfds = 0, i;
    ssize_t n;

    do {
        n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        return;
    }
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (i = 0; i < k && nfds < 4; i++) {
                memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int),
                       sizeof(int));
            }
        }
    }
    if (n <= 0) {
        c->dead = true;
    } else if (c->banned) {
        refuse(c, "uid not allowed");
    } else if (n != sizeof(m) || m.magic != IVQ_PROTO_MAGIC ||
               m.version != IVQ_PROTO_VERSION) {
        say("pid %d: not an ivq HELLO (%zd bytes), dropping it", (int)c->pid,
            n);
        refuse(c, "protocol mismatch");
    } else if (c->peer) {
        say("peer %u '%s': unexpected message %u, dropping it", c->id,
            c->name, m.type);
        c->dead = true;
    } else {
        hello(c, &m, fds, nfds);
    }
    for (i = 0; i < nfds; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
}

static void accept_one(int lfd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    Client *c;
    int fd, slot, i;
    bool ok = n_allowed == 0;

    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        return;
    }
    for (slot = 0; slot < MAX_CLIENTS && clients[slot]; slot++) {
        /* a free slot */
    }
    if (slot == MAX_CLIENTS ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        say("connection refused: %s", slot == MAX_CLIENTS ?
            "too many connections" : strerror(errno));
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->uid = cred.uid;
    c->pid = cred.pid;
    c->id = IVQ_NO_PEER;
    c->region_fd = c->doorbell_fd = -1;
    clients[slot] = c;
    for (i = 0; i < n_allowed; i++) {
        ok |= allowed[i] == cred.uid;
    }
    if (!ok) {
        /* Told after its HELLO, so that it reads why. */
        say("pid %d: uid %u is not allowed, refused", (int)cred.pid,
            (unsigned)cred.uid);
        c->banned = true;
    }
}

/* A listening socket at @path; a stale one (no broker behind it) goes. */
static int listen_at(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char tmp[sizeof(sa.sun_path)];
    int fd;

    if (strlen(path) + 5 >= sizeof(sa.sun_path)) {
        logmsg("socket path too long: %s", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    strcpy(sa.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        logmsg("another broker is listening on %s", path);
        close(fd);
        return -1;
    }
    close(fd);
    /*
     * Bound and listening under a temporary name, then renamed: a
     * client that sees the path can connect.
     */
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    unlink(tmp);
    strcpy(sa.sun_path, tmp);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 16) < 0 || rename(tmp, path) < 0) {
        logmsg("cannot listen on %s: %s", path, strerror(errno));
        return -1;
    }
    return fd;
}

/* A decimal number below 2^31; -1 if @s is not one. */
static long parse_num(const char *s)
{
    long v = 0;

    if (!*s) {
        return -1;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (1L << 31) / 10) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ivq-broker -s SOCKET [-u UID]... [-n MAX_PEERS] [-q]\n"
            "  -s SOCKET     UNIX socket to listen on\n"
            "  -u UID        let only these uids in (repeatable; "
            "default: any)\n"
            "  -n MAX_PEERS  peer ids 0..MAX_PEERS-1 (1 to %d, default %d)\n"
            "  -q            log nothing but errors\n",
            IVQ_MAX_PEERS, IVQ_MAX_PEERS);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    struct sigaction sa = { .sa_handler = on_signal };
    int opt, lfd, i;

    while ((opt = getopt(argc, argv, "s:u:n:qh")) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'u':
            if (n_allowed == MAX_UIDS) {
                logmsg("at most %d -u", MAX_UIDS);
                return 2;
            }
            if (parse_num(optarg) < 0) {
                usage(stderr);
                return 2;
            }
            allowed[n_allowed++] = parse_num(optarg);
            break;
        case 'n':
            if (parse_num(optarg) < 1 || parse_num(optarg) > IVQ_MAX_PEERS) {
                usage(stderr);
                return 2;
            }
            max_peers = parse_num(optarg);
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);
    lfd = listen_at(path);
    if (lfd < 0) {
        return 1;
    }
    say("listening on %s (pid %d, %u peer ids)", path, (int)getpid(),
        max_peers);
    while (!stop) {
        struct pollfd pfd[MAX_CLIENTS + 1];
        int slot[MAX_CLIENTS + 1], n = 1;

        pfd[0] = (struct pollfd) { .fd = lfd, .events = POLLIN };
        for (i = 0; i < MAX_CLIENTS; i++) {
            if (clients[i]) {
                pfd[n] = (struct pollfd) { .fd = clients[i]->fd,
                                           .events = POLLIN };
                slot[n++] = i;
            }
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            logmsg("poll: %s", strerror(errno));
            break;
        }
        for (i = 1; i < n; i++) {
            Client *c = clients[slot[i]];

            if (c && (pfd[i].revents & POLLIN)) {
                readable(c);
            } else if (c && (pfd[i].revents & (POLLHUP | POLLERR))) {
                c->dead = true;
            }
        }
        if (pfd[0].revents & POLLIN) {
            accept_one(lfd);
        }
        /* Drops may mark more clients dead (a failed PEER_DOWN). */
        for (bool again = true; again;) {
            again = false;
            for (i = 0; i < MAX_CLIENTS; i++) {
                if (clients[i] && clients[i]->dead) {
                    drop(i);
                    again = true;
                }
            }
        }
    }
    unlink(path);
    say("stopped");
    return 0;
}

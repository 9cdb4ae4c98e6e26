/*
 * exit-handler-post: an example external exit handler, a POST-code /
 * debug-port device, and a test tool for QEMU's side of the protocol.
 *
 * A write stores the value (masked to the access size) for its address;
 * a read returns the last value written there masked to the access size,
 * or, if it was never written, the --tag value masked to the size.
 * Addresses are per event kind (port 0x80 and MMIO 0x80 differ); the
 * table holds 4096 of them and outlives connections.
 *
 * With --events RULES it is also a platform handler: it takes platform
 * events (EXIT_HANDLER_F_EVENTS) and decides each by the first rule that
 * matches its type and class (see usage()); --log records them too.
 *
 * Usage: exit-handler-post --socket PATH [options], see usage() below.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "exit-handler-lib.h"

#define TABLE_MAX       4096            /* addresses remembered */
#define TABLE_SLOTS     (2 * TABLE_MAX) /* open addressing, load <= 1/2 */
#define RETRY_MS        20

typedef struct Entry {
    bool used;
    uint8_t event;
    uint64_t addr;
    uint64_t value;
} Entry;

#define RULES_MAX       16

/* --events: TYPE[:CLASS]=VERDICT[@CPU] */
typedef struct Rule {
    uint8_t event;              /* EXIT_HANDLER_EV_SMI... */
    int class;                  /* EXIT_SLOT_CLASS_*, -1: any */
    uint32_t verdict;           /* EXIT_SLOT_OK (deliver), _SUPPRESS... */
    int cpu;                    /* deliver: retarget to this vCPU; -1: no */
} Rule;

typedef struct Post {
    const char *name;
    bool quiet;
    uint64_t tag;
    unsigned delay_us;
    bool hang;                  /* --hang-after given */
    uint64_t hang_after;
    uint64_t requests;          /* all connections */
    FILE *log;
    bool fuzz;
    uint64_t rng;
    unsigned used;
    unsigned nrules;
    Rule rules[RULES_MAX];
    Entry table[TABLE_SLOTS];
} Post;

static const char *const event_names[] = {
    [EXIT_HANDLER_EV_SMI] = "smi",
    [EXIT_HANDLER_EV_NMI] = "nmi",
    [EXIT_HANDLER_EV_MCE] = "mce",
    [EXIT_HANDLER_EV_MEMORY_ERROR] = "memory-error",
};

static const char *const class_names[] = {
    [EXIT_SLOT_CLASS_CORRECTED] = "corrected",
    [EXIT_SLOT_CLASS_SRAO] = "srao",
    [EXIT_SLOT_CLASS_SRAR] = "srar",
    [EXIT_SLOT_CLASS_FATAL] = "fatal",
    [EXIT_SLOT_CLASS_AO] = "ao",
    [EXIT_SLOT_CLASS_AR] = "ar",
};

static const char *const verdict_names[] = {
    [EXIT_SLOT_OK] = "deliver",
    [EXIT_SLOT_UNHANDLED] = "unhandled",
    [EXIT_SLOT_SUPPRESS] = "suppress",
    [EXIT_SLOT_HANDLED] = "handled",
};

static Post post;

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void msg(const char *fmt, ...)
{
    va_list ap;

    if (post.quiet) {
        return;
    }
    fprintf(stderr, "exit-handler-post[%s]: ", post.name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

/* The entry for (@event, @addr), or the free slot where it would go. */
static Entry *lookup(uint8_t event, uint64_t addr)
{
    uint64_t h = addr ^ ((uint64_t)event << 56);
    unsigned i = splitmix64(&h) & (TABLE_SLOTS - 1);

    for (;;) {
        Entry *e = &post.table[i];

        if (!e->used || (e->event == event && e->addr == addr)) {
            return e;
        }
        i = (i + 1) & (TABLE_SLOTS - 1);
    }
}

/* Blocks until a stop is requested (SIGTERM/SIGINT), without a race. */
static void hang_forever(void)
{
    sigset_t block, old;

    msg("hanging after %" PRIu64 " requests", post.requests);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!exit_handler_stop_requested()) {
        sigsuspend(&old);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* A platform event: the first rule for its type and class decides. */
static uint32_t post_event(const ExitHandlerRequest *req, uint64_t *data)
{
    uint32_t verdict = EXIT_SLOT_UNHANDLED;
    unsigned i;

    for (i = 0; i < post.nrules; i++) {
        const Rule *r = &post.rules[i];

        if (r->event == req->event &&
            (r->class < 0 || r->class == req->class)) {
            verdict = r->verdict;
            if (verdict == EXIT_SLOT_OK && r->cpu >= 0) {
                *data = r->cpu;
            }
            break;
        }
    }
    if (post.log) {
        fprintf(post.log, "E %s source=%u cpu=%d class=%s bank=%u "
                "addr=0x%" PRIx64 " data=0x%" PRIx64 " -> %s cpu=%d\n",
                event_names[req->event], req->source, req->cpu,
                class_names[req->class], req->bank, req->addr, req->data,
                verdict_names[verdict], (int)(int64_t)*data);
        fflush(post.log);
    }
    return verdict;
}

static uint32_t post_access(void *opaque, const ExitHandlerRequest *req,
                            uint64_t *data)
{
    Entry *e;

    (void)opaque;
    if (post.hang && post.requests >= post.hang_after) {
        hang_forever();
        return EXIT_HANDLER_STOP;
    }
    post.requests++;
    if (post.delay_us) {
        struct timespec ts = {
            .tv_sec = post.delay_us / 1000000,
            .tv_nsec = (post.delay_us % 1000000) * 1000L,
        };

        nanosleep(&ts, NULL);
    }

    if (exit_handler_is_event(req)) {
        return post_event(req, data);
    }
    e = lookup(req->event, req->addr);
    if (!req->is_write) {
        *data = (e->used ? e->value : post.tag) & mask(req->size);
        return EXIT_SLOT_OK;
    }
    if (post.log) {
        fprintf(post.log, "W 0x%" PRIx64 " %u 0x%" PRIx64 "\n",
                req->addr, req->size, req->data);
        fflush(post.log);
    }
    if (!e->used) {
        if (post.used >= TABLE_MAX) {
            return EXIT_SLOT_UNHANDLED;
        }
        post.used++;
        e->used = true;
        e->event = req->event;
        e->addr = req->addr;
    }
    e->value = req->data & mask(req->size);
    return EXIT_SLOT_OK;
}

/* Writes junk to the socket: random bytes or a bogus message header. */
static void fuzz_socket(ExitHandlerConn *c, uint64_t x)
{
    unsigned char buf[64];
    size_t len = 1 + (x >> 8) % sizeof(buf);

    for (size_t i = 0; i < len; i++) {
        buf[i] = splitmix64(&post.rng);
    }
    if (x & 0x80) {
        ExitHandlerMsgHdr h = {
            .type = EXIT_HANDLER_MSG_ERROR,
            .size = (x & 0x40) ? UINT32_MAX : EXIT_HANDLER_MSG_MAX + 1,
        };

        memcpy(buf, &h, sizeof(h));
        len = len < sizeof(h) ? sizeof(h) : len;
    }
    if (send(exit_handler_conn_socket(c), buf, len,
             MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* QEMU may well have hung up by now */
    }
}

/* --fuzz: corrupt about half of the replies, one way or another. */
static void post_tamper(void *opaque, ExitHandlerConn *c,
                        const ExitHandlerRequest *req, ExitHandlerReply *r)
{
    uint64_t x = splitmix64(&post.rng);

    (void)opaque;
    switch (x % 20) {
    case 0:     /* wrong reply_seq */
        r->reply_seq = req->seq + 1 + (uint32_t)(x >> 40);
        break;
    case 1:     /* an undefined status */
        r->status = 7;
        break;
    case 2:     /* an undefined state */
        r->state = 5;
        break;
    case 3:     /* garbage data, DONE as usual */
        r->data = splitmix64(&post.rng);
        r->write_data = true;
        break;
    case 4:     /* leave the slot POSTED, yet count it completed */
        r->state = EXIT_SLOT_POSTED;
        break;
    case 5:     /* completed runs ahead of what was posted */
        r->completed += 1 + (x >> 48) % 4;
        break;
    case 6:     /* DONE, but completed not bumped */
        r->completed -= 1;
        break;
    case 7:     /* the slot goes back to FREE */
        r->state = EXIT_SLOT_FREE;
        break;
    case 8:     /* a random status */
        r->status = (uint32_t)(x >> 32);
        break;
    case 9:
        fuzz_socket(c, x >> 8);
        break;
    default:    /* a correct reply */
        break;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    exit_handler_request_stop();
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: exit-handler-post --socket PATH [options]\n"
"A POST-code / debug-port device for qemu-tiers external exit handlers.\n"
"\n"
"  --socket PATH    the UNIX socket (listen on it, or with --connect\n"
"                   connect to it)\n"
"  --connect        connect to PATH (retrying every 20 ms) instead of\n"
"                   listening; reconnect after a disconnect\n"
"  --name NAME      the name sent in HELLO_REPLY (exit-handler-post)\n"
"  --tag T          what reads of never-written addresses return (0)\n"
"  --delay-us N     sleep N microseconds in every request\n"
"  --hang-after N   after N requests, stop serving (socket kept open)\n"
"  --fuzz SEED      corrupt replies at random (seeded), for testing QEMU\n"
"  --bad-hello      answer HELLO with a wrong magic\n"
"  --poll           accept EXIT_HANDLER_F_POLL\n"
"  --log FILE       append every write as \"W 0xADDR SIZE 0xDATA\"\n"
"                   and every event as \"E TYPE ... -> VERDICT cpu=N\"\n"
"  --events RULES   take platform events too, decided by the first of\n"
"                   the comma-separated RULES that matches, each\n"
"                   TYPE[:CLASS]=VERDICT[@CPU]: TYPE smi, nmi, mce or\n"
"                   memory-error; CLASS corrected, srao, srar, fatal, ao\n"
"                   or ar; VERDICT deliver (to vCPU CPU if given),\n"
"                   suppress, handled or unhandled (QEMU's fallback, as\n"
"                   for events no rule matches)\n"
"  --quiet          no connect/disconnect messages\n"
"  --help           this text\n");
}

/* A decimal or 0x-prefixed hexadecimal number that fits 64 bits. */
static bool parse_u64(const char *s, uint64_t *v)
{
    unsigned base = 10;
    uint64_t x = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        unsigned d;

        if (*s >= '0' && *s <= '9') {
            d = *s - '0';
        } else if (base == 16 && *s >= 'a' && *s <= 'f') {
            d = *s - 'a' + 10;
        } else if (base == 16 && *s >= 'A' && *s <= 'F') {
            d = *s - 'A' + 10;
        } else {
            return false;
        }
        if (x > (UINT64_MAX - d) / base) {
            return false;
        }
        x = x * base + d;
    }
    *v = x;
    return true;
}

static int name_index(const char *const *names, unsigned n,
                      const char *s, size_t len)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (names[i] && strlen(names[i]) == len && !strncmp(names[i], s, len)) {
            return i;
        }
    }
    return -1;
}

#define N_NAMES(a) (sizeof(a) / sizeof((a)[0]))

/* Parses --events RULES into post.rules; false on an error (said). */
static bool parse_rules(const char *arg)
{
    const char *p = arg;

    while (*p) {
        const char *end = p + strcspn(p, ",");
        const char *eq = memchr(p, '=', end - p);
        const char *colon, *at, *vend;
        Rule *r = &post.rules[post.nrules];
        int i;
        uint64_t cpu;
        char buf[24];

        if (post.nrules == RULES_MAX || !eq) {
            goto bad;
        }
        colon = memchr(p, ':', eq - p);
        i = name_index(event_names, N_NAMES(event_names), p,
                       (colon ? colon : eq) - p);
        if (i < 0) {
            goto bad;
        }
        r->event = i;
        r->class = -1;
        if (colon) {
            r->class = name_index(class_names, N_NAMES(class_names),
                                  colon + 1, eq - colon - 1);
            if (r->class < 0) {
                goto bad;
            }
        }
        at = memchr(eq, '@', end - eq);
        vend = at ? at : end;
        i = name_index(verdict_names, N_NAMES(verdict_names), eq + 1,
                       vend - eq - 1);
        if (i < 0) {
            goto bad;
        }
        r->verdict = i;
        r->cpu = -1;
        if (at) {
            if (i != EXIT_SLOT_OK || end - at - 1 <= 0 ||
                end - at - 1 >= (long)sizeof(buf)) {
                goto bad;
            }
            memcpy(buf, at + 1, end - at - 1);
            buf[end - at - 1] = 0;
            if (!parse_u64(buf, &cpu) || cpu > INT32_MAX) {
                goto bad;
            }
            r->cpu = cpu;
        }
        post.nrules++;
        p = *end ? end + 1 : end;
        continue;
bad:
        fprintf(stderr, "exit-handler-post: bad --events rule '%.*s'\n",
                (int)(end - p), p);
        return false;
    }
    return true;
}

enum {
    OPT_SOCKET = 256, OPT_CONNECT, OPT_NAME, OPT_TAG, OPT_DELAY,
    OPT_HANG, OPT_FUZZ, OPT_BAD_HELLO, OPT_POLL, OPT_LOG, OPT_QUIET,
    OPT_EVENTS, OPT_HELP,
};

static const struct option options[] = {
    { "socket", required_argument, NULL, OPT_SOCKET },
    { "connect", no_argument, NULL, OPT_CONNECT },
    { "name", required_argument, NULL, OPT_NAME },
    { "tag", required_argument, NULL, OPT_TAG },
    { "delay-us", required_argument, NULL, OPT_DELAY },
    { "hang-after", required_argument, NULL, OPT_HANG },
    { "fuzz", required_argument, NULL, OPT_FUZZ },
    { "bad-hello", no_argument, NULL, OPT_BAD_HELLO },
    { "poll", no_argument, NULL, OPT_POLL },
    { "log", required_argument, NULL, OPT_LOG },
    { "quiet", no_argument, NULL, OPT_QUIET },
    { "events", required_argument, NULL, OPT_EVENTS },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

/* The handshake, or with --bad-hello a reply with a wrong magic. */
static ExitHandlerConn *handshake(int fd, bool bad_hello,
                                  uint64_t supported, char **err)
{
    ExitHandlerConn *c;
    ExitHandlerHelloReply r;

    if (!bad_hello) {
        return exit_handler_handshake(fd, post.name, supported, err);
    }
    c = exit_handler_recv_hello(fd, err);
    if (!c) {
        return NULL;
    }
    r = exit_handler_accept_features(c, post.name, supported);
    r.magic = ~EXIT_HANDLER_MAGIC;
    if (exit_handler_send_reply(c, &r, err) < 0) {
        exit_handler_conn_close(c);
        return NULL;
    }
    msg("sent a HELLO_REPLY with a bad magic");
    return c;
}

static void pause_ms(int ms)
{
    struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *log_path = NULL;
    bool connect_mode = false, bad_hello = false, poll_mode = false;
    bool events = false;
    uint64_t supported, v;
    struct sigaction sa;
    int opt, lfd = -1, ret = 0;

    post.name = "exit-handler-post";
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_SOCKET:
            path = optarg;
            break;
        case OPT_CONNECT:
            connect_mode = true;
            break;
        case OPT_NAME:
            post.name = optarg;
            break;
        case OPT_TAG:
            if (!parse_u64(optarg, &post.tag)) {
                fprintf(stderr, "exit-handler-post: bad --tag %s\n", optarg);
                return 2;
            }
            break;
        case OPT_DELAY:
            if (!parse_u64(optarg, &v) || v > 60000000) {
                fprintf(stderr, "exit-handler-post: bad --delay-us %s\n",
                        optarg);
                return 2;
            }
            post.delay_us = v;
            break;
        case OPT_HANG:
            if (!parse_u64(optarg, &post.hang_after)) {
                fprintf(stderr, "exit-handler-post: bad --hang-after %s\n",
                        optarg);
                return 2;
            }
            post.hang = true;
            break;
        case OPT_FUZZ:
            if (!parse_u64(optarg, &post.rng)) {
                fprintf(stderr, "exit-handler-post: bad --fuzz %s\n", optarg);
                return 2;
            }
            post.fuzz = true;
            break;
        case OPT_BAD_HELLO:
            bad_hello = true;
            break;
        case OPT_POLL:
            poll_mode = true;
            break;
        case OPT_LOG:
            log_path = optarg;
            break;
        case OPT_QUIET:
            post.quiet = true;
            break;
        case OPT_EVENTS:
            if (!parse_rules(optarg)) {
                return 2;
            }
            events = true;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (log_path) {
        post.log = fopen(log_path, "ae");
        if (!post.log) {
            fprintf(stderr, "exit-handler-post: %s: %s\n", log_path,
                    strerror(errno));
            return 1;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    supported = EXIT_HANDLER_F_POSTED_WRITES;
    if (poll_mode) {
        supported |= EXIT_HANDLER_F_POLL;
    }
    if (events) {
        supported |= EXIT_HANDLER_F_EVENTS;
    }

    if (!connect_mode) {
        char *err = NULL;

        lfd = exit_handler_listen(path, &err);
        if (lfd < 0) {
            fprintf(stderr, "exit-handler-post: %s\n", err);
            free(err);
            return 1;
        }
        msg("listening on %s", path);
    }

    while (!exit_handler_stop_requested()) {
        ExitHandlerConn *c;
        char *err = NULL;
        int fd, r;

        if (connect_mode) {
            fd = exit_handler_connect(path, RETRY_MS, &err);
        } else {
            fd = exit_handler_accept(lfd);
            if (fd < 0 && errno != ECANCELED) {
                err = strdup(strerror(errno));
            }
        }
        if (fd < 0) {
            if (exit_handler_stop_requested()) {
                free(err);
                break;
            }
            fprintf(stderr, "exit-handler-post: %s\n", err ? err : "?");
            free(err);
            if (connect_mode) {
                ret = 1;
                break;
            }
            pause_ms(RETRY_MS);
            continue;
        }

        c = handshake(fd, bad_hello, supported, &err);
        if (!c) {
            if (!exit_handler_stop_requested()) {
                msg("handshake failed: %s", err ? err : "?");
                if (connect_mode) {
                    pause_ms(RETRY_MS);
                }
            }
            free(err);
            continue;
        }
        msg("connected: QEMU's id '%s', features 0x%" PRIx64,
            exit_handler_conn_hello(c)->handler_id,
            exit_handler_conn_features(c));
        if (post.fuzz) {
            exit_handler_set_tamper(c, post_tamper, NULL);
        }
        r = exit_handler_serve(c, post_access, NULL);
        if (r < 0) {
            msg("disconnected after %" PRIu64 " requests: %s",
                exit_handler_conn_requests(c), strerror(errno));
        } else {
            msg("disconnected after %" PRIu64 " requests%s",
                exit_handler_conn_requests(c), r ? " (stopping)" : "");
        }
        exit_handler_conn_close(c);
    }

    if (lfd >= 0) {
        close(lfd);
        unlink(path);
    }
    if (post.log) {
        fclose(post.log);
    }
    return ret;
}

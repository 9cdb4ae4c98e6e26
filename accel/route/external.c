/*
 * qemu-tiers exit router: external handler processes.
 *
 * An exit-handler object owns one connection at a time to a handler
 * process, through a socket chardev.  On every connection QEMU creates
 * a fresh request ring (a sealed memfd) and two eventfd doorbells and
 * sends them in its HELLO; the handler is "up" once its HELLO_REPLY is
 * valid.  vCPUs then post requests into the ring and, for reads and
 * synchronous writes, wait for the reply: spinning up to poll-us, then
 * sleeping on the call doorbell and the socket (whose hang-up means
 * the handler died), never longer than the route's timeout.
 *
 * Failure: a handler that dies, times out or replies malformed data is
 * marked down by whoever sees it first (a vCPU or the main loop);
 * EXIT_HANDLER_DOWN is sent from the main loop and the connection is
 * dropped, so that a restarted handler comes back through the
 * chardev's reconnection with a clean ring (EXIT_HANDLER_UP).  The
 * access fails over to the next handler of its route's pool, or to the
 * route's fallback.  Nothing read from the ring or the socket is
 * trusted: every field is read once and checked.
 *
 * Locking (docs/locking.rst):
 *  - ExitHandler.lock: held for a few instructions only, never across a
 *    wait: it protects ExitHandler.conn, .busy and each connection's
 *    reference count.  Taken by any thread that sends a request (vCPUs
 *    without the BQL; qtest with it) and by the main loop (with the BQL)
 *    to install or tear down a connection.  Order: BQL ->
 *    ExitHandler.lock.  Never held while taking the BQL.
 *  - The producer side of a connection's ring (ExitHandlerConn.next,
 *    .posted_end, the slots it fills): owned by the one thread that has
 *    claimed the handler (ExitHandler.busy), which may wait for the
 *    handler's reply; others wait for the claim on ExitHandler.idle, never
 *    longer than their own route's timeout (exit_handler_claim()).
 *  - A connection is freed by whoever drops its last reference: the main
 *    loop tearing it down, or the claimer still using it (it wakes up:
 *    the teardown rings its doorbell).  So the main loop never waits for
 *    a vCPU that waits for a handler.
 *  - ExitHandler.up and the counters: atomics.
 *  - Everything else in ExitHandler (chardev, handshake, event rate
 *    limit): BQL (asserted).
 *  - ExitHandlerPool: immutable once its route is published, except its
 *    atomic counters and least-loaded choice.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include "qapi/error.h"
#include "qapi/qapi-events-exit-route.h"
#include "qapi/visitor.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/host-utils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memfd.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qom/object_interfaces.h"
#include "hw/core/cpu.h"
#include "chardev/char-fe.h"
#include "chardev/char-socket.h"
#include "io/channel-socket.h"
#include "accel/route/exit-handler-proto.h"
#include "accel/route/external.h"
#include "trace.h"

#define TYPE_EXIT_HANDLER "exit-handler"
OBJECT_DECLARE_SIMPLE_TYPE(ExitHandler, EXIT_HANDLER)

#define EXIT_HANDLER_RING_SLOTS_DEFAULT 64
#define EXIT_HANDLER_POLL_US_MAX        10000
#define EXIT_HANDLER_WAIT_SLICE_NS      (50 * SCALE_MS)
#define EXIT_POOL_PROBE_PERIOD          64
/* Events per handler: a burst of this many, refilled at this rate. */
#define EXIT_HANDLER_EVENT_BURST        20
#define EXIT_HANDLER_EVENTS_PER_SEC     10

/* One connection: its ring and doorbells.  Owned by ExitHandler.lock. */
typedef struct ExitHandlerConn {
    ExitRingHdr *hdr;
    ExitRingSlot *slots;
    uint32_t nslots;
    uint32_t ring_bytes;
    int ring_fd;
    int kick_fd;                /* QEMU -> handler */
    int call_fd;                /* handler -> QEMU */
    int peer_fd;                /* a dup of the socket: its hang-up */
    uint64_t features;          /* accepted in HELLO_REPLY */
    uint64_t next;              /* requests posted so far */
    uint64_t posted_end;        /* next after the last posted write, 0: none */
    /* ExitHandler.lock */
    unsigned refs;              /* claimers using it */
    bool dropped;               /* no longer the handler's; atomic reads */
} ExitHandlerConn;

struct ExitHandler {
    Object parent_obj;

    /* Configuration: properties, fixed at complete. */
    char *chardev;
    uint32_t ring_slots;
    uint32_t poll_us;
    char *id;

    /* BQL */
    CharBackend chr;
    bool chr_attached;
    bool completed;
    ExitHandlerConn *pending;   /* sent HELLO, waiting for the reply */
    uint8_t rx[sizeof(ExitHandlerMsgHdr) + EXIT_HANDLER_MSG_MAX];
    uint32_t rx_len;
    char *peer_name;
    unsigned route_refs;        /* published routes naming it */
    double ev_tokens;
    int64_t ev_stamp_ns;
    uint64_t events_suppressed;

    /* The connection in use: see the locking rules above. */
    QemuMutex lock;
    QemuCond idle;              /* signalled when @busy clears */
    bool busy;                  /* a thread has claimed the ring */
    ExitHandlerConn *conn;

    /* Atomics */
    bool up;
    uint32_t down_reason;       /* ExitHandlerDownReason, for the BH */
    uint32_t depth;             /* requests posted and not completed */
    uint64_t requests, posted, unhandled, failures;
    uint64_t down_count, up_count;
    uint64_t service_ns;        /* moving average, synchronous requests */
};

struct ExitHandlerPool {
    char *route_id;
    ExitHandler **h;            /* referenced */
    unsigned n;
    ExitRoutePolicy policy;
    ExitRouteFallback fallback;
    uint32_t timeout_ms;
    bool posted_writes;
    bool in_table;

    /* Atomics */
    uint32_t rr;                /* round-robin and probe counter */
    uint32_t current;           /* least-loaded: the sticky choice */
    uint64_t fallbacks;
};

typedef enum ExitHandlerResult {
    EXIT_HANDLER_RESULT_DONE,
    EXIT_HANDLER_RESULT_UNHANDLED,
    EXIT_HANDLER_RESULT_FAILED,
} ExitHandlerResult;

static void exit_handler_conn_free(ExitHandlerConn *c)
{
    if (!c) {
        return;
    }
    if (c->hdr) {
        munmap(c->hdr, c->ring_bytes);
    }
    if (c->ring_fd >= 0) {
        close(c->ring_fd);
    }
    if (c->kick_fd >= 0) {
        close(c->kick_fd);
    }
    if (c->call_fd >= 0) {
        close(c->call_fd);
    }
    if (c->peer_fd >= 0) {
        close(c->peer_fd);
    }
    g_free(c);
}

/* ---- events ------------------------------------------------------------- */

/*
 * May another DOWN/UP event of @h go out now?  A token bucket, so that
 * a handler that flaps cannot flood the monitors.  BQL.
 */
static bool exit_handler_event_allowed(ExitHandler *h)
{
    int64_t now = get_clock();

    assert(bql_locked());
    h->ev_tokens += (double)(now - h->ev_stamp_ns) *
                    EXIT_HANDLER_EVENTS_PER_SEC / NANOSECONDS_PER_SECOND;
    h->ev_tokens = MIN(h->ev_tokens, EXIT_HANDLER_EVENT_BURST);
    h->ev_stamp_ns = now;
    if (h->ev_tokens < 1) {
        h->events_suppressed++;
        return false;
    }
    h->ev_tokens -= 1;
    return true;
}

static void exit_handler_send_down(ExitHandler *h, ExitHandlerDownReason why)
{
    trace_exit_handler_down(h->id, ExitHandlerDownReason_str(why));
    if (exit_handler_event_allowed(h)) {
        qapi_event_send_exit_handler_down(h->id, why,
                                          qatomic_read(&h->down_count));
    }
}

/* The main loop's half of marking a handler down (from a vCPU). */
static void exit_handler_down_bh(void *opaque)
{
    ExitHandler *h = opaque;

    exit_handler_send_down(h, qatomic_read(&h->down_reason));
    /* Drop the connection: a live handler gets a fresh one. */
    if (h->chr_attached) {
        qemu_chr_fe_disconnect(&h->chr);
    }
    object_unref(OBJECT(h));
}

/* Up -> down, once: true for the one caller that made the change. */
static bool exit_handler_take_down(ExitHandler *h)
{
    if (!qatomic_xchg(&h->up, false)) {
        return false;
    }
    qatomic_inc(&h->down_count);
    return true;
}

/*
 * Marks @h down if it is up.  Any thread; the event and the disconnect
 * happen in the main loop.
 */
static void exit_handler_mark_down(ExitHandler *h, ExitHandlerDownReason why)
{
    if (!exit_handler_take_down(h)) {
        return;
    }
    qatomic_set(&h->down_reason, why);
    object_ref(OBJECT(h));
    aio_bh_schedule_oneshot(qemu_get_aio_context(), exit_handler_down_bh, h);
}

/* The same from the main loop: the event goes out now.  BQL. */
static void exit_handler_mark_down_now(ExitHandler *h,
                                       ExitHandlerDownReason why)
{
    assert(bql_locked());
    if (exit_handler_take_down(h)) {
        exit_handler_send_down(h, why);
    }
}

/* A request to @h failed for @why: count it and mark @h down. */
static void exit_handler_failed(ExitHandler *h, ExitHandlerDownReason why)
{
    qatomic_inc(&h->failures);
    trace_exit_handler_fail(h->id, ExitHandlerDownReason_str(why));
    exit_handler_mark_down(h, why);
}

/* ---- requests (any thread) ---------------------------------------------- */

static void exit_handler_kick(ExitHandlerConn *c)
{
    uint64_t one = 1;

    /* The post is visible before we look at the sleeping flag. */
    smp_mb();
    if (qatomic_read(&c->hdr->handler_sleeping)) {
        if (write(c->kick_fd, &one, sizeof(one)) < 0) {
            /* Full counter or gone: the reply wait notices. */
        }
    }
}

/*
 * Claims @h's ring for this thread, waiting for another claimer at most
 * until @deadline: an access never waits longer than its own route's
 * timeout, whatever the route of the thread before it allows that one.
 * Returns the connection, referenced, or NULL (no connection, or the
 * deadline passed).
 */
static ExitHandlerConn *exit_handler_claim(ExitHandler *h, int64_t deadline)
{
    ExitHandlerConn *c = NULL;

    qemu_mutex_lock(&h->lock);
    while (h->busy) {
        int64_t left = deadline - get_clock();

        if (left <= 0) {
            goto out;
        }
        qemu_cond_timedwait(&h->idle, &h->lock, DIV_ROUND_UP(left, SCALE_MS));
    }
    c = h->conn;
    if (c) {
        h->busy = true;
        c->refs++;
    }
out:
    qemu_mutex_unlock(&h->lock);
    return c;
}

static void exit_handler_release(ExitHandler *h, ExitHandlerConn *c)
{
    bool last;

    qemu_mutex_lock(&h->lock);
    h->busy = false;
    last = --c->refs == 0 && c->dropped;
    qemu_cond_signal(&h->idle);
    qemu_mutex_unlock(&h->lock);
    if (last) {
        exit_handler_conn_free(c);
    }
}

/*
 * Waits until @slot is DONE.  Returns -1 on success, or why the handler
 * is to be marked down.  Called by the claimer of @c.
 */
static int exit_handler_wait(ExitHandler *h, ExitHandlerConn *c,
                             ExitRingSlot *slot, int64_t deadline)
{
    int64_t spin_end = get_clock() + (int64_t)h->poll_us * SCALE_US;
    int ret = -1;

    while (qatomic_load_acquire(&slot->state) != EXIT_SLOT_DONE) {
        int64_t now = get_clock(), slice;
        struct pollfd pfd[2];
        struct timespec ts;
        uint64_t cnt;

        if (now < spin_end) {
            /*
             * No PAUSE here: under nested virtualization each one may be
             * a pause-loop exit to the host, which made the polling
             * round trip 3 us slower (bench/RESULTS.md).
             */
            continue;
        }
        qatomic_set(&c->hdr->qemu_waiting, 1);
        /* Flag before re-check; pairs with the handler's DONE-then-flag. */
        smp_mb();
        if (qatomic_load_acquire(&slot->state) == EXIT_SLOT_DONE) {
            break;
        }
        if (!qatomic_read(&h->up) || qatomic_read(&c->dropped)) {
            /* Marked down or torn down meanwhile: give up now. */
            ret = EXIT_HANDLER_DOWN_REASON_DISCONNECTED;
            break;
        }
        if (now >= deadline) {
            ret = EXIT_HANDLER_DOWN_REASON_TIMEOUT;
            break;
        }
        slice = MIN(deadline - now, EXIT_HANDLER_WAIT_SLICE_NS);
        ts.tv_sec = slice / NANOSECONDS_PER_SECOND;
        ts.tv_nsec = slice % NANOSECONDS_PER_SECOND;
        pfd[0] = (struct pollfd) { .fd = c->call_fd, .events = POLLIN };
        pfd[1] = (struct pollfd) { .fd = c->peer_fd, .events = POLLRDHUP };
        if (ppoll(pfd, 2, &ts, NULL) < 0 && errno != EINTR) {
            ret = EXIT_HANDLER_DOWN_REASON_DISCONNECTED;
            break;
        }
        if (pfd[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
            /* The process is gone; unless it answered just before. */
            if (qatomic_load_acquire(&slot->state) != EXIT_SLOT_DONE) {
                ret = EXIT_HANDLER_DOWN_REASON_DISCONNECTED;
            }
            break;
        }
        if (pfd[0].revents & POLLIN) {
            /* Non-blocking; only clears the doorbell. */
            if (read(c->call_fd, &cnt, sizeof(cnt)) < 0) {
                /* EAGAIN: someone else's wake-up, harmless */
            }
        }
    }
    qatomic_set(&c->hdr->qemu_waiting, 0);
    return ret;
}

static void exit_handler_update_depth(ExitHandler *h, ExitHandlerConn *c)
{
    uint64_t done = qatomic_read(&c->hdr->completed);

    /* @completed is the handler's word: clamp it to what is possible. */
    qatomic_set(&h->depth, done > c->next ? 0 :
                MIN(c->next - done, c->nslots));
}

/* The ring's request kind for a route's event type. */
static uint8_t exit_handler_event_kind(ExitEventType type)
{
    /* The wire numbers are the router's (and QAPI's). */
    QEMU_BUILD_BUG_ON((int)EXIT_SOURCE_HOST != (int)EXIT_SLOT_SOURCE_HOST ||
                      (int)EXIT_SOURCE_APM != (int)EXIT_SLOT_SOURCE_APM);
    QEMU_BUILD_BUG_ON((int)EXIT_CLASS_CORRECTED !=
                      (int)EXIT_SLOT_CLASS_CORRECTED ||
                      (int)EXIT_CLASS_AR != (int)EXIT_SLOT_CLASS_AR);
    switch (type) {
    case EXIT_EVENT_PIO:
        return EXIT_HANDLER_EV_PIO;
    case EXIT_EVENT_MMIO:
        return EXIT_HANDLER_EV_MMIO;
    case EXIT_EVENT_MSR:
        return EXIT_HANDLER_EV_MSR;
    case EXIT_EVENT_SMI:
        return EXIT_HANDLER_EV_SMI;
    case EXIT_EVENT_NMI:
        return EXIT_HANDLER_EV_NMI;
    case EXIT_EVENT_MCE:
        return EXIT_HANDLER_EV_MCE;
    case EXIT_EVENT_MEMORY_ERROR:
    default:
        return EXIT_HANDLER_EV_MEMORY_ERROR;
    }
}

/*
 * Sends one access to @h: posted (returns once it is in the ring) or
 * synchronous.  Fails, marking @h down, if the handler dies, does not
 * answer before @deadline or replies malformed data.  Fails without
 * marking it down if, once this thread has @h to itself, less than
 * @min_left (or, for a request that waits for its reply, the handler's
 * recent service time) is left before @deadline: the time went on
 * waiting for other vCPUs' requests, and a short wait must not condemn a
 * healthy handler.
 */
static ExitHandlerResult exit_handler_request(ExitHandler *h,
                                              const ExitAccess *a, bool post,
                                              int64_t deadline,
                                              int64_t min_left,
                                              uint64_t *data,
                                              ExitPlatformEvent *ev)
{
    ExitHandlerConn *c;
    ExitHandlerResult res = EXIT_HANDLER_RESULT_FAILED;
    ExitRingSlot *slot;
    uint32_t seq, reply_seq, status;
    int32_t cpu;
    uint64_t val;
    int64_t t0, ns;
    int why = -1;

    c = exit_handler_claim(h, deadline);
    if (!c) {
        return EXIT_HANDLER_RESULT_FAILED;
    }
    /*
     * A request that waits for its reply is not sent with less left than
     * the handler's recent service time either: it would time out and
     * condemn a healthy handler for this thread's own wait.
     */
    if (ev && !(c->features & EXIT_HANDLER_F_EVENTS)) {
        /* It did not take events in its handshake: not its business. */
        res = EXIT_HANDLER_RESULT_UNHANDLED;
        goto out;
    }
    if (!qatomic_read(&h->up) ||
        deadline - get_clock() <
        MAX(min_left, post && a->is_write ? 0 :
                      (int64_t)qatomic_read(&h->service_ns))) {
        goto out;
    }
    slot = &c->slots[c->next & (c->nslots - 1)];
    if (qatomic_load_acquire(&slot->state) == EXIT_SLOT_POSTED) {
        /*
         * The ring is full: this slot still holds a write posted one lap
         * ago.  Wait for it, and do not post this one.
         */
        post = false;
        why = exit_handler_wait(h, c, slot, deadline);
        if (why >= 0) {
            goto out;
        }
    }
    post = post && !ev && a->is_write &&
           (c->features & EXIT_HANDLER_F_POSTED_WRITES);
    seq = (uint32_t)c->next;
    qatomic_set(&slot->seq, seq);
    qatomic_set(&slot->event, exit_handler_event_kind(a->type));
    if (ev) {
        qatomic_set(&slot->source, ev->source);
        qatomic_set(&slot->cpu, ev->cpu);
        qatomic_set(&slot->class, ev->class);
        qatomic_set(&slot->bank, ev->bank < 0 ? EXIT_SLOT_NO_BANK : ev->bank);
    }
    qatomic_set(&slot->size, a->size);
    qatomic_set(&slot->flags, (a->is_write && !ev ? EXIT_SLOT_F_WRITE : 0) |
                (post ? EXIT_SLOT_F_POSTED : 0));
    qatomic_set(&slot->addr, a->addr);
    qatomic_set(&slot->data, a->is_write || ev ? a->data : 0);
    qatomic_set(&slot->reply_seq, ~seq);
    qatomic_set(&slot->status, UINT32_MAX);
    qatomic_store_release(&slot->state, EXIT_SLOT_POSTED);
    c->next++;
    qatomic_set(&c->hdr->posted, c->next);
    t0 = get_clock();
    exit_handler_kick(c);
    trace_exit_handler_request(h->id, seq, a->addr, a->size, a->is_write,
                               post);

    if (post) {
        c->posted_end = c->next;
        qatomic_inc(&h->posted);
        qatomic_inc(&h->requests);
        exit_handler_update_depth(h, c);
        res = EXIT_HANDLER_RESULT_DONE;
        goto out;
    }
    why = exit_handler_wait(h, c, slot, deadline);
    if (why >= 0) {
        goto out;
    }
    /* Read each field once; the handler may still be writing them. */
    reply_seq = qatomic_read(&slot->reply_seq);
    status = qatomic_read(&slot->status);
    val = qatomic_read(&slot->data);
    cpu = qatomic_read(&slot->cpu);
    qatomic_store_release(&slot->state, EXIT_SLOT_FREE);
    if (reply_seq != seq ||
        status > (ev ? EXIT_SLOT_HANDLED : EXIT_SLOT_UNHANDLED)) {
        qemu_log_mask(LOG_GUEST_ERROR, "exit-handler '%s': malformed reply "
                      "to request %u (reply to %u, status %u)\n", h->id, seq,
                      reply_seq, status);
        why = EXIT_HANDLER_DOWN_REASON_PROTOCOL_ERROR;
        goto out;
    }
    /* In order: everything posted before this one is done too. */
    c->posted_end = 0;
    exit_handler_update_depth(h, c);
    ns = get_clock() - t0;
    /* A moving average over about 8 requests. */
    qatomic_set(&h->service_ns, qatomic_read(&h->service_ns) ?
                (qatomic_read(&h->service_ns) * 7 + ns) / 8 : ns);
    if (status == EXIT_SLOT_UNHANDLED) {
        qatomic_inc(&h->unhandled);
        res = EXIT_HANDLER_RESULT_UNHANDLED;
        goto out;
    }
    qatomic_inc(&h->requests);
    if (ev) {
        *data = status;
        ev->cpu = status == EXIT_SLOT_OK ? cpu : ev->cpu;
    } else {
        *data = a->size >= 8 ? val : val & MAKE_64BIT_MASK(0, a->size * 8);
    }
    res = EXIT_HANDLER_RESULT_DONE;

out:
    exit_handler_release(h, c);
    if (why >= 0) {
        exit_handler_failed(h, why);
    }
    return res;
}

/*
 * Waits until the writes posted to @h are done: a read of a route must
 * not pass them.  Marks @h down if they do not complete in time.
 */
static void exit_handler_flush(ExitHandler *h, int64_t deadline)
{
    ExitHandlerConn *c = exit_handler_claim(h, deadline);
    int why = -1;

    if (!c) {
        return;
    }
    if (c->posted_end) {
        why = exit_handler_wait(h, c, &c->slots[(c->posted_end - 1) &
                                                (c->nslots - 1)], deadline);
        if (why < 0) {
            c->posted_end = 0;
            exit_handler_update_depth(h, c);
        }
    }
    exit_handler_release(h, c);
    if (why >= 0) {
        exit_handler_failed(h, why);
    }
}

/* ---- pools -------------------------------------------------------------- */

/* Load of a handler for least-loaded: lower is better. */
static uint64_t exit_handler_load(ExitHandler *h)
{
    if (!qatomic_read(&h->up)) {
        return UINT64_MAX;
    }
    return (qatomic_read(&h->service_ns) + 1) *
           (1 + (uint64_t)qatomic_read(&h->depth));
}

/* The index of the handler to try first for this access. */
static unsigned exit_handler_pool_pick(ExitHandlerPool *p)
{
    unsigned cur, best, i, tick;
    uint64_t best_load, cur_load;

    switch (p->policy) {
    case EXIT_ROUTE_POLICY_ROUND_ROBIN:
        return qatomic_fetch_inc(&p->rr) % p->n;
    case EXIT_ROUTE_POLICY_LEAST_LOADED:
        break;
    case EXIT_ROUTE_POLICY_FIRST:
    default:
        return 0;
    }
    if (p->n == 1) {
        return 0;
    }
    cur = qatomic_read(&p->current) % p->n;
    tick = qatomic_fetch_inc(&p->rr);
    if (tick % EXIT_POOL_PROBE_PERIOD == EXIT_POOL_PROBE_PERIOD - 1) {
        /* Probe another handler now and then: its figures age. */
        return (cur + 1 + (tick / EXIT_POOL_PROBE_PERIOD) % (p->n - 1)) %
               p->n;
    }
    best = cur;
    best_load = cur_load = exit_handler_load(p->h[cur]);
    for (i = 0; i < p->n; i++) {
        uint64_t l = exit_handler_load(p->h[i]);

        if (l < best_load) {
            best = i;
            best_load = l;
        }
    }
    /* Hysteresis: move only to a clearly (25%) less loaded handler. */
    if (best != cur && (cur_load == UINT64_MAX ||
                        best_load < cur_load - cur_load / 4)) {
        qatomic_set(&p->current, best);
        trace_exit_handler_pool_move(p->route_id, p->h[cur]->id, cur_load,
                                     p->h[best]->id, best_load);
        cur = best;
    }
    return cur;
}

/* An access, or with @ev a platform event (BQL held), to @p's handlers. */
static bool exit_handler_pool_send(ExitHandlerPool *p, const ExitAccess *a,
                                   uint64_t *data, ExitPlatformEvent *ev)
{
    /*
     * One timeout for the whole access, failovers included; a handler is
     * only sent a request with at least half of it left.
     */
    int64_t timeout = (int64_t)p->timeout_ms * SCALE_MS;
    int64_t deadline = get_clock() + timeout;
    unsigned first = exit_handler_pool_pick(p), i;

    for (i = 0; i < p->n && get_clock() < deadline; i++) {
        ExitHandler *h = p->h[(first + i) % p->n];
        ExitHandlerResult res;
        unsigned j;

        if (!qatomic_read(&h->up)) {
            continue;
        }
        if (p->posted_writes && (!a->is_write || ev)) {
            /* Each ring is in order; the other rings must drain. */
            for (j = 0; j < p->n; j++) {
                if (p->h[j] != h) {
                    exit_handler_flush(p->h[j], deadline);
                }
            }
        }
        res = exit_handler_request(h, a, p->posted_writes, deadline,
                                   timeout / 2, data, ev);
        if (res == EXIT_HANDLER_RESULT_DONE) {
            return true;
        }
        if (res == EXIT_HANDLER_RESULT_UNHANDLED) {
            break;
        }
    }
    return false;
}

ExitRouteFallback exit_handler_pool_take_fallback(ExitHandlerPool *p)
{
    qatomic_inc(&p->fallbacks);
    return p->fallback;
}

bool exit_handler_pool_access(ExitHandlerPool *p, const ExitAccess *a,
                              uint64_t *data)
{
    return exit_handler_pool_send(p, a, data, NULL);
}

ExitEventVerdict exit_handler_pool_event(ExitHandlerPool *p,
                                         ExitPlatformEvent *ev)
{
    ExitAccess a = {
        .type = ev->type, .addr = ev->addr, .size = 8, .is_write = true,
        .data = ev->data,
    };
    int cpu = ev->cpu;
    uint64_t status;

    /*
     * With the BQL held, the main loop waits for the handler: at most the
     * route's timeout, as a vCPU waits for an access.
     */
    assert(bql_locked());
    if (!exit_handler_pool_send(p, &a, &status, ev)) {
        return exit_handler_pool_take_fallback(p) ==
               EXIT_ROUTE_FALLBACK_IGNORE ? EXIT_EVENT_VERDICT_SUPPRESS :
                                            EXIT_EVENT_VERDICT_DELIVER;
    }
    if (ev->cpu != cpu && (ev->cpu < 0 || !qemu_get_cpu(ev->cpu))) {
        qemu_log_mask(LOG_GUEST_ERROR, "exit route '%s': its handler "
                      "retargeted an event to vCPU %d, which does not "
                      "exist; delivered to %d\n", p->route_id, ev->cpu, cpu);
        ev->cpu = cpu;
    }
    switch (status) {
    case EXIT_SLOT_SUPPRESS:
        return EXIT_EVENT_VERDICT_SUPPRESS;
    case EXIT_SLOT_HANDLED:
        return EXIT_EVENT_VERDICT_HANDLED;
    default:
        return EXIT_EVENT_VERDICT_DELIVER;
    }
}

ExitHandlerPool *exit_handler_pool_new(const char *route_id,
                                       const strList *names,
                                       ExitRoutePolicy policy,
                                       ExitRouteFallback fallback,
                                       uint32_t timeout_ms,
                                       bool posted_writes, Error **errp)
{
    g_autoptr(GPtrArray) hs = g_ptr_array_new();
    ExitHandlerPool *p;
    const strList *l;

    assert(bql_locked());
    if (!names) {
        error_setg(errp, "exit route '%s': handler=external needs "
                   "handlers=ID[,...] (exit-handler objects)", route_id);
        return NULL;
    }
    if (timeout_ms < 1 || timeout_ms > 60000) {
        error_setg(errp, "exit route '%s': timeout-ms=%" PRIu32 " is out of "
                   "range (1 to 60000)", route_id, timeout_ms);
        return NULL;
    }
    for (l = names; l; l = l->next) {
        Object *o = object_resolve_path_component(object_get_objects_root(),
                                                  l->value);
        ExitHandler *h = o ? (ExitHandler *)object_dynamic_cast(
                                 o, TYPE_EXIT_HANDLER) : NULL;
        guint k;

        if (!h || !h->completed) {
            error_setg(errp, "exit route '%s': no exit-handler '%s'",
                       route_id, l->value);
            return NULL;
        }
        for (k = 0; k < hs->len; k++) {
            if (g_ptr_array_index(hs, k) == h) {
                error_setg(errp, "exit route '%s': exit-handler '%s' is "
                           "listed twice", route_id, l->value);
                return NULL;
            }
        }
        g_ptr_array_add(hs, h);
    }
    p = g_new0(ExitHandlerPool, 1);
    p->route_id = g_strdup(route_id);
    p->n = hs->len;
    p->h = g_new(ExitHandler *, p->n);
    for (unsigned i = 0; i < p->n; i++) {
        p->h[i] = g_ptr_array_index(hs, i);
        object_ref(OBJECT(p->h[i]));
    }
    p->policy = policy;
    p->fallback = fallback;
    p->timeout_ms = timeout_ms;
    p->posted_writes = posted_writes;
    return p;
}

void exit_handler_pool_set_published(ExitHandlerPool *p, bool in_table)
{
    unsigned i;

    assert(bql_locked());
    if (p->in_table == in_table) {
        return;
    }
    p->in_table = in_table;
    for (i = 0; i < p->n; i++) {
        p->h[i]->route_refs += in_table ? 1 : -1;
    }
}

void exit_handler_pool_free(ExitHandlerPool *p)
{
    unsigned i;

    if (!p) {
        return;
    }
    exit_handler_pool_set_published(p, false);
    for (i = 0; i < p->n; i++) {
        object_unref(OBJECT(p->h[i]));
    }
    g_free(p->h);
    g_free(p->route_id);
    g_free(p);
}

void exit_handler_pool_info(const ExitHandlerPool *p, ExitRouteInfo *info)
{
    strList **tail = &info->handlers;
    unsigned i;

    assert(bql_locked());
    for (i = 0; i < p->n; i++) {
        QAPI_LIST_APPEND(tail, g_strdup(p->h[i]->id));
    }
    info->has_handlers = true;
    info->has_policy = info->has_fallback = true;
    info->has_timeout_ms = info->has_posted_writes = true;
    info->policy = p->policy;
    info->fallback = p->fallback;
    info->timeout_ms = p->timeout_ms;
    info->posted_writes = p->posted_writes;
}

void exit_handler_pool_stats(const ExitHandlerPool *p, ExitRouteStats *stats)
{
    ExitHandlerLoadList **tail = &stats->handlers;
    unsigned i;

    assert(bql_locked());
    stats->has_fallbacks = stats->has_handlers = true;
    stats->fallbacks = qatomic_read(&p->fallbacks);
    for (i = 0; i < p->n; i++) {
        ExitHandler *h = p->h[i];
        ExitHandlerLoad *l = g_new0(ExitHandlerLoad, 1);

        l->id = g_strdup(h->id);
        l->up = qatomic_read(&h->up);
        l->name = g_strdup(h->peer_name);
        l->requests = qatomic_read(&h->requests);
        l->posted = qatomic_read(&h->posted);
        l->unhandled = qatomic_read(&h->unhandled);
        l->failures = qatomic_read(&h->failures);
        l->down_count = qatomic_read(&h->down_count);
        l->queue_depth = l->up ? qatomic_read(&h->depth) : 0;
        l->service_ns = qatomic_read(&h->service_ns);
        l->events_suppressed = h->events_suppressed;
        QAPI_LIST_APPEND(tail, l);
    }
}

/* ---- the connection (main loop, BQL) ------------------------------------ */

/* What QEMU offers in HELLO; a reply may accept only a subset. */
static uint64_t exit_handler_offered_features(const ExitHandler *h)
{
    return EXIT_HANDLER_F_POSTED_WRITES | EXIT_HANDLER_F_EVENTS |
           (h->poll_us ? EXIT_HANDLER_F_POLL : 0);
}

/*
 * Tears down the connection in use and any handshake.  A thread that has
 * claimed it keeps it until it lets go (woken by its doorbell), and frees
 * it then: this never waits for it.  BQL.
 */
static void exit_handler_drop_conn(ExitHandler *h)
{
    ExitHandlerConn *c;
    bool unused = true;

    assert(bql_locked());
    exit_handler_conn_free(h->pending);
    h->pending = NULL;
    h->rx_len = 0;
    qemu_mutex_lock(&h->lock);
    c = h->conn;
    h->conn = NULL;
    if (c) {
        qatomic_set(&c->dropped, true);
        unused = c->refs == 0;
        if (!unused) {
            uint64_t one = 1;

            if (write(c->call_fd, &one, sizeof(one)) < 0) {
                /* A full counter wakes the waiter just as well. */
            }
        }
    }
    qatomic_set(&h->depth, 0);
    qemu_mutex_unlock(&h->lock);
    if (unused) {
        exit_handler_conn_free(c);
    }
}

/* A new connection: a fresh ring and doorbells, sent with HELLO.  BQL. */
static void exit_handler_opened(ExitHandler *h)
{
    Chardev *chr = qemu_chr_fe_get_driver(&h->chr);
    SocketChardev *s = (SocketChardev *)object_dynamic_cast(
        OBJECT(chr), TYPE_CHARDEV_SOCKET);
    struct {
        ExitHandlerMsgHdr hdr;
        ExitHandlerHello hello;
    } QEMU_PACKED msg = {
        .hdr = { .type = EXIT_HANDLER_MSG_HELLO,
                 .size = sizeof(ExitHandlerHello) },
        .hello = {
            .magic = EXIT_HANDLER_MAGIC,
            .version = EXIT_HANDLER_VERSION,
            .features = exit_handler_offered_features(h),
            .ring_slots = h->ring_slots,
            .ring_bytes = exit_ring_bytes(h->ring_slots),
            .poll_us = h->poll_us,
        },
    };
    Error *err = NULL;
    ExitHandlerConn *c;
    int fds[3];

    assert(bql_locked());
    exit_handler_drop_conn(h);
    c = g_new0(ExitHandlerConn, 1);
    c->ring_fd = c->kick_fd = c->call_fd = c->peer_fd = -1;
    c->nslots = h->ring_slots;
    c->ring_bytes = exit_ring_bytes(c->nslots);
    if (!s || !s->sioc) {
        error_report("exit-handler '%s': chardev '%s' has no socket",
                     h->id, h->chardev);
        goto fail;
    }
    /* Sealed: a handler cannot shrink the ring under QEMU (SIGBUS). */
    c->ring_fd = qemu_memfd_create("qemu-tiers-exit-ring", c->ring_bytes,
                                   false, 0, F_SEAL_GROW | F_SEAL_SHRINK |
                                   F_SEAL_SEAL, &err);
    if (c->ring_fd < 0) {
        error_report_err(err);
        goto fail;
    }
    c->hdr = mmap(NULL, c->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                  c->ring_fd, 0);
    if (c->hdr == MAP_FAILED) {
        c->hdr = NULL;
        error_report("exit-handler '%s': cannot map its ring: %s", h->id,
                     strerror(errno));
        goto fail;
    }
    c->slots = (ExitRingSlot *)((char *)c->hdr + EXIT_RING_HDR_BYTES);
    c->hdr->magic = EXIT_HANDLER_MAGIC;
    c->hdr->version = EXIT_HANDLER_VERSION;
    c->hdr->slots = c->nslots;
    c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->peer_fd = dup(s->sioc->fd);
    if (c->kick_fd < 0 || c->call_fd < 0 || c->peer_fd < 0) {
        error_report("exit-handler '%s': cannot create its doorbells: %s",
                     h->id, strerror(errno));
        goto fail;
    }
    pstrcpy(msg.hello.handler_id, sizeof(msg.hello.handler_id), h->id);
    fds[0] = c->ring_fd;
    fds[1] = c->kick_fd;
    fds[2] = c->call_fd;
    h->pending = c;
    if (qemu_chr_fe_set_msgfds(&h->chr, fds, 3) < 0 ||
        qemu_chr_fe_write_all(&h->chr, (uint8_t *)&msg, sizeof(msg)) !=
        sizeof(msg)) {
        error_report("exit-handler '%s': cannot send HELLO", h->id);
        h->pending = NULL;
        goto fail;
    }
    trace_exit_handler_hello(h->id, c->nslots, h->poll_us);
    return;

fail:
    exit_handler_conn_free(c);
    qemu_chr_fe_disconnect(&h->chr);
}

/* A valid HELLO_REPLY: the handler is up.  BQL. */
static void exit_handler_hello_reply(ExitHandler *h,
                                     const ExitHandlerHelloReply *r)
{
    ExitHandlerConn *c = h->pending;
    uint64_t offered = exit_handler_offered_features(h);
    char name[sizeof(r->name) + 1];

    assert(bql_locked());
    if (!c || r->magic != EXIT_HANDLER_MAGIC ||
        r->version != EXIT_HANDLER_VERSION || (r->features & ~offered)) {
        qemu_log_mask(LOG_GUEST_ERROR, "exit-handler '%s': bad HELLO_REPLY "
                      "(magic 0x%" PRIx32 ", version %" PRIu32 ", features "
                      "0x%" PRIx64 ")\n", h->id, r->magic, r->version,
                      r->features);
        qemu_chr_fe_disconnect(&h->chr);
        return;
    }
    memcpy(name, r->name, sizeof(r->name));
    name[sizeof(r->name)] = 0;
    c->features = r->features;
    h->pending = NULL;
    qemu_mutex_lock(&h->lock);
    h->conn = c;
    qemu_mutex_unlock(&h->lock);
    g_free(h->peer_name);
    h->peer_name = g_strdup(name);
    qatomic_set(&h->service_ns, 0);
    qatomic_set(&h->depth, 0);
    qatomic_inc(&h->up_count);
    qatomic_set(&h->up, true);
    trace_exit_handler_up(h->id, name, c->features);
    if (exit_handler_event_allowed(h)) {
        qapi_event_send_exit_handler_up(h->id, name,
                                        qatomic_read(&h->up_count));
    }
}

static int exit_handler_chr_can_read(void *opaque)
{
    ExitHandler *h = opaque;

    return sizeof(h->rx) - h->rx_len;
}

/* Bytes from the handler's socket: the handshake reply, or an error. */
static void exit_handler_chr_read(void *opaque, const uint8_t *buf, int size)
{
    ExitHandler *h = opaque;
    ExitHandlerMsgHdr hdr;
    const void *payload = h->rx + sizeof(hdr);

    assert(bql_locked());
    size = MIN(size, (int)(sizeof(h->rx) - h->rx_len));
    memcpy(h->rx + h->rx_len, buf, size);
    h->rx_len += size;
    if (h->rx_len < sizeof(hdr)) {
        return;
    }
    memcpy(&hdr, h->rx, sizeof(hdr));
    if (hdr.size > EXIT_HANDLER_MSG_MAX) {
        goto bad;
    }
    if (h->rx_len < sizeof(hdr) + hdr.size) {
        return;
    }
    if (hdr.type == EXIT_HANDLER_MSG_HELLO_REPLY &&
        hdr.size == sizeof(ExitHandlerHelloReply) && h->pending) {
        ExitHandlerHelloReply r;

        memcpy(&r, payload, sizeof(r));
        h->rx_len = 0;
        exit_handler_hello_reply(h, &r);
        return;
    }
    if (hdr.type == EXIT_HANDLER_MSG_ERROR &&
        hdr.size == sizeof(ExitHandlerError)) {
        ExitHandlerError e;

        memcpy(&e, payload, sizeof(e));
        e.text[sizeof(e.text) - 1] = 0;
        error_report("exit-handler '%s': the handler reports error %" PRIu32
                     ": %s", h->id, e.code, e.text);
        h->rx_len = 0;
        exit_handler_mark_down_now(h, EXIT_HANDLER_DOWN_REASON_PROTOCOL_ERROR);
        qemu_chr_fe_disconnect(&h->chr);
        return;
    }
bad:
    qemu_log_mask(LOG_GUEST_ERROR, "exit-handler '%s': malformed message "
                  "(type %" PRIu32 ", size %" PRIu32 ")\n", h->id, hdr.type,
                  hdr.size);
    h->rx_len = 0;
    exit_handler_mark_down_now(h, EXIT_HANDLER_DOWN_REASON_PROTOCOL_ERROR);
    qemu_chr_fe_disconnect(&h->chr);
}

static void exit_handler_chr_event(void *opaque, QEMUChrEvent event)
{
    ExitHandler *h = opaque;

    assert(bql_locked());
    switch (event) {
    case CHR_EVENT_OPENED:
        exit_handler_opened(h);
        break;
    case CHR_EVENT_CLOSED:
        exit_handler_mark_down_now(h, EXIT_HANDLER_DOWN_REASON_DISCONNECTED);
        exit_handler_drop_conn(h);
        break;
    default:
        break;
    }
}

static bool exit_handler_attach(ExitHandler *h, Error **errp)
{
    Chardev *chr = qemu_chr_find(h->chardev);

    if (!chr) {
        error_setg(errp, "exit-handler '%s': chardev '%s' not found", h->id,
                   h->chardev);
        return false;
    }
    if (!object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)) {
        error_setg(errp, "exit-handler '%s': chardev '%s' is not a socket",
                   h->id, h->chardev);
        return false;
    }
    if (!qemu_chr_fe_init(&h->chr, chr, errp)) {
        return false;
    }
    h->chr_attached = true;
    qemu_chr_fe_set_handlers(&h->chr, exit_handler_chr_can_read,
                             exit_handler_chr_read, exit_handler_chr_event,
                             NULL, h, NULL, true);
    return true;
}

/* ---- the exit-handler object -------------------------------------------- */

static void exit_handler_complete(UserCreatable *uc, Error **errp)
{
    ExitHandler *h = EXIT_HANDLER(uc);

    g_free(h->id);
    h->id = g_strdup(object_get_canonical_path_component(OBJECT(h)));
    if (!h->chardev) {
        error_setg(errp, "exit-handler '%s': needs chardev=ID (a socket "
                   "chardev)", h->id);
        return;
    }
    if (h->ring_slots < 2 || h->ring_slots > EXIT_RING_SLOTS_MAX ||
        !is_power_of_2(h->ring_slots)) {
        error_setg(errp, "exit-handler '%s': ring-slots=%" PRIu32 " must be "
                   "a power of two from 2 to %d", h->id, h->ring_slots,
                   EXIT_RING_SLOTS_MAX);
        return;
    }
    if (h->poll_us > EXIT_HANDLER_POLL_US_MAX) {
        error_setg(errp, "exit-handler '%s': poll-us=%" PRIu32 " is above "
                   "%d", h->id, h->poll_us, EXIT_HANDLER_POLL_US_MAX);
        return;
    }
    /*
     * exit-handler is a late object (patches/0022): its chardev exists,
     * and a wrong one is reported against the option that named it.
     */
    if (!exit_handler_attach(h, errp)) {
        return;
    }
    h->completed = true;
}

static bool exit_handler_can_be_deleted(UserCreatable *uc)
{
    return EXIT_HANDLER(uc)->route_refs == 0;
}

static void exit_handler_unparent(Object *obj)
{
    ExitHandler *h = EXIT_HANDLER(obj);

    exit_handler_mark_down_now(h, EXIT_HANDLER_DOWN_REASON_DELETED);
    if (h->chr_attached) {
        qemu_chr_fe_deinit(&h->chr, false);
        h->chr_attached = false;
    }
    exit_handler_drop_conn(h);
}

static char *exit_handler_get_chardev(Object *obj, Error **errp)
{
    return g_strdup(EXIT_HANDLER(obj)->chardev);
}

static void exit_handler_set_chardev(Object *obj, const char *value,
                                     Error **errp)
{
    ExitHandler *h = EXIT_HANDLER(obj);

    if (h->completed) {
        error_setg(errp, "exit-handler '%s': chardev cannot change", h->id);
        return;
    }
    g_free(h->chardev);
    h->chardev = g_strdup(value);
}

static void exit_handler_get_u32(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    uint32_t *field = (uint32_t *)((char *)obj + (uintptr_t)opaque);

    visit_type_uint32(v, name, field, errp);
}

static void exit_handler_set_u32(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    ExitHandler *h = EXIT_HANDLER(obj);
    uint32_t *field = (uint32_t *)((char *)obj + (uintptr_t)opaque);

    if (h->completed) {
        error_setg(errp, "exit-handler '%s': %s cannot change", h->id, name);
        return;
    }
    visit_type_uint32(v, name, field, errp);
}

static void exit_handler_instance_init(Object *obj)
{
    ExitHandler *h = EXIT_HANDLER(obj);

    h->ring_slots = EXIT_HANDLER_RING_SLOTS_DEFAULT;
    h->ev_tokens = EXIT_HANDLER_EVENT_BURST;
    h->ev_stamp_ns = get_clock();
    qemu_mutex_init(&h->lock);
    qemu_cond_init(&h->idle);
}

static void exit_handler_instance_finalize(Object *obj)
{
    ExitHandler *h = EXIT_HANDLER(obj);

    exit_handler_drop_conn(h);
    qemu_cond_destroy(&h->idle);
    qemu_mutex_destroy(&h->lock);
    g_free(h->peer_name);
    g_free(h->chardev);
    g_free(h->id);
}

static void exit_handler_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = exit_handler_complete;
    ucc->can_be_deleted = exit_handler_can_be_deleted;
    oc->unparent = exit_handler_unparent;
    object_class_property_add_str(oc, "chardev", exit_handler_get_chardev,
                                  exit_handler_set_chardev);
    object_class_property_set_description(oc, "chardev",
        "The socket chardev that reaches the handler process (use its "
        "reconnect-ms, or server=on,wait=off, so that a restarted handler "
        "is used again)");
    object_class_property_add(oc, "ring-slots", "uint32",
                              exit_handler_get_u32, exit_handler_set_u32,
                              NULL,
                              (void *)offsetof(ExitHandler, ring_slots));
    object_class_property_set_description(oc, "ring-slots",
        "Requests the ring holds: a power of two, 2 to 1024 (default 64)");
    object_class_property_add(oc, "poll-us", "uint32",
                              exit_handler_get_u32, exit_handler_set_u32,
                              NULL, (void *)offsetof(ExitHandler, poll_us));
    object_class_property_set_description(oc, "poll-us",
        "Polling mode: both sides spin up to this many microseconds before "
        "sleeping on the doorbell (default 0, no polling; at most 10000)");
}

static const TypeInfo exit_handler_info = {
    .name = TYPE_EXIT_HANDLER,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(ExitHandler),
    .instance_init = exit_handler_instance_init,
    .instance_finalize = exit_handler_instance_finalize,
    .class_init = exit_handler_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void exit_handler_register_types(void)
{
    type_register_static(&exit_handler_info);
}

type_init(exit_handler_register_types);

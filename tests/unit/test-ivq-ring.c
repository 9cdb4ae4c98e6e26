/*
 * Unit test of the inter-VM queues' receive queue (hw/ivq/ivq-ring.c),
 * without a VM: FIFO order and contents through wrap-around and pad
 * records, QUEUE_FULL only when the record does not fit, TOO_BIG, pops
 * that do not add up (more than queued, a scribbled header) refused with
 * nothing changed, corrupt indices, region geometry checks, and the lock
 * of a process killed while holding it.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include <sys/wait.h>
#include "qemu/main-loop.h"
#include "../../hw/ivq/ivq-internal.h"

#define HDR         ((uint32_t)sizeof(IvqMsgHeader))
#define RING_OFF    4096
#define RING_SIZE   8192
#define REGION      (IVQ_CTL_SIZE + RING_OFF + RING_SIZE)

/* A fresh region (shared, so that a child process sees it). */
static void *region_new(IvqRing *r)
{
    void *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    g_assert_true(p != MAP_FAILED);
    ivq_ring_init_ctl(p, RING_OFF, RING_SIZE);
    g_assert_true(ivq_ring_attach(r, p, REGION));
    return p;
}

static uint32_t push(IvqRing *r, uint32_t len, uint64_t seq)
{
    uint8_t payload[RING_SIZE];
    IvqMsgHeader h = { .src = 1, .dst = 2, .len = len, .seq = seq };

    memset(payload, (uint8_t)seq, len);
    return ivq_ring_push(r, &h, payload);
}

/* The message at the head (after pads), checked against @seq. */
static void check_head(IvqRing *r, uint32_t len, uint64_t seq)
{
    uint32_t cur = r->ctl->head, i;
    IvqMsgHeader h;

    for (;;) {
        memcpy(&h, r->base + (cur & (r->size - 1)), HDR);
        if (!(h.flags & IVQ_HDR_F_PAD)) {
            break;
        }
        cur += ROUND_UP(HDR + h.len, IVQ_REC_ALIGN);
    }
    g_assert_cmpuint(h.seq, ==, seq);
    g_assert_cmpuint(h.len, ==, len);
    for (i = 0; i < len; i++) {
        g_assert_cmpuint(r->base[(cur & (r->size - 1)) + HDR + i], ==,
                         (uint8_t)seq);
    }
}

/* Random sizes through many wraps, against a queue of expected sizes. */
static void test_fifo(void)
{
    IvqRing r;
    void *p = region_new(&r);
    GQueue *model = g_queue_new();
    uint64_t next = 1, head_seq = 1, bytes;
    uint32_t max = ivq_ring_max_payload(&r), i, fulls = 0;
    GRand *rnd = g_rand_new_with_seed(20);

    g_assert_cmpuint(max, ==, RING_SIZE / 2 - HDR);
    for (i = 0; i < 200000; i++) {
        if (g_rand_boolean(rnd)) {
            uint32_t len = g_rand_int_range(rnd, 0, i % 97 ? 300 : max + 1);
            uint32_t head = r.ctl->head, tail = r.ctl->tail;
            uint32_t rec = ROUND_UP(HDR + len, IVQ_REC_ALIGN);
            uint32_t pos = tail & (RING_SIZE - 1);
            uint32_t pad = pos + rec > RING_SIZE ? RING_SIZE - pos : 0;
            uint32_t st = push(&r, len, next);

            if (tail - head + pad + rec <= RING_SIZE) {
                g_assert_cmpuint(st, ==, IVQ_ST_OK);
                g_queue_push_tail(model, GUINT_TO_POINTER(len));
                next++;
            } else {
                g_assert_cmpuint(st, ==, IVQ_ST_QUEUE_FULL);
                g_assert_cmpuint(r.ctl->tail, ==, tail);
                fulls++;
            }
        } else if (!g_queue_is_empty(model)) {
            uint32_t len = GPOINTER_TO_UINT(g_queue_pop_head(model));

            check_head(&r, len, head_seq);
            g_assert_cmpuint(ivq_ring_pop(&r, 1, &bytes), ==, IVQ_ST_OK);
            g_assert_cmpuint(bytes, ==, len);
            head_seq++;
        }
        g_assert_cmpuint(r.ctl->count, ==, g_queue_get_length(model));
    }
    g_assert_cmpuint(fulls, >, 100);
    g_assert_cmpuint(push(&r, max + 1, 0), ==, IVQ_ST_TOO_BIG);
    g_queue_free(model);
    g_rand_free(rnd);
    munmap(p, REGION);
}

/* Refused pops change nothing; a pop of several counts their bytes. */
static void test_bad_pop(void)
{
    IvqRing r;
    void *p = region_new(&r);
    uint64_t bytes = 0;
    IvqMsgHeader *h;
    uint32_t head;

    g_assert_cmpuint(ivq_ring_pop(&r, 1, &bytes), ==, IVQ_ST_BAD_VALUE);
    g_assert_cmpuint(push(&r, 10, 1), ==, IVQ_ST_OK);
    g_assert_cmpuint(push(&r, 20, 2), ==, IVQ_ST_OK);
    g_assert_cmpuint(ivq_ring_pop(&r, 0, &bytes), ==, IVQ_ST_BAD_VALUE);
    g_assert_cmpuint(ivq_ring_pop(&r, 3, &bytes), ==, IVQ_ST_BAD_VALUE);
    /* The guest scribbles on the second header: it runs past the tail. */
    h = (IvqMsgHeader *)(r.base + 64);
    h->len = 5000;
    head = r.ctl->head;
    g_assert_cmpuint(ivq_ring_pop(&r, 2, &bytes), ==, IVQ_ST_BAD_VALUE);
    g_assert_cmpuint(r.ctl->head, ==, head);
    g_assert_cmpuint(r.ctl->count, ==, 2);
    h->len = 20;
    g_assert_cmpuint(ivq_ring_pop(&r, 2, &bytes), ==, IVQ_ST_OK);
    g_assert_cmpuint(bytes, ==, 30);
    g_assert_cmpuint(r.ctl->head, ==, r.ctl->tail);

    /* Indices no honest party writes: the queue is refused. */
    r.ctl->tail = r.ctl->head + RING_SIZE + 32;
    g_assert_cmpuint(push(&r, 8, 3), ==, IVQ_ST_PEER_DOWN);
    r.ctl->tail = r.ctl->head + 8;
    r.ctl->count = 1;
    g_assert_cmpuint(push(&r, 8, 3), ==, IVQ_ST_PEER_DOWN);
    g_assert_cmpuint(ivq_ring_pop(&r, 1, &bytes), ==, IVQ_ST_BAD_VALUE);
    ivq_ring_flush(&r);
    g_assert_cmpuint(r.ctl->count, ==, 0);
    munmap(p, REGION);
}

/* A peer's region is used only if its geometry fits its size. */
static void test_attach(void)
{
    IvqRing r;
    void *p = region_new(&r);
    IvqRegionCtl *ctl = p;

    g_assert_false(ivq_ring_attach(&r, p, REGION - 1));
    g_assert_false(ivq_ring_attach(&r, p, 100));
    ctl->ring_size = 12288;
    g_assert_false(ivq_ring_attach(&r, p, REGION * 2));
    ctl->ring_size = RING_SIZE;
    ctl->ring_off = 4;
    g_assert_false(ivq_ring_attach(&r, p, REGION * 2));
    ctl->ring_off = RING_OFF;
    ctl->magic = 0;
    g_assert_false(ivq_ring_attach(&r, p, REGION));
    ctl->magic = IVQ_REGION_MAGIC;
    g_assert_true(ivq_ring_attach(&r, p, REGION));
    munmap(p, REGION);
}

/*
 * A process that dies holding the queue's lock (a QEMU killed in the
 * middle of a send) does not wedge the queue.
 */
static void test_dead_holder(void)
{
    IvqRing r;
    void *p = region_new(&r);
    uint64_t bytes;
    int status;
    pid_t pid;

    g_assert_cmpuint(push(&r, 16, 1), ==, IVQ_ST_OK);
    /* The lock a dead process held is owner-dead... */
    pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&r.ctl->lock);
        _exit(0);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_cmpint(pthread_mutex_trylock(&r.ctl->lock), ==, EOWNERDEAD);
    pthread_mutex_consistent(&r.ctl->lock);
    pthread_mutex_unlock(&r.ctl->lock);
    /* ...and the queue's code recovers it. */
    pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&r.ctl->lock);
        _exit(0);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_cmpuint(push(&r, 16, 2), ==, IVQ_ST_OK);
    g_assert_cmpuint(push(&r, 16, 3), ==, IVQ_ST_OK);
    g_assert_cmpuint(ivq_ring_pop(&r, 3, &bytes), ==, IVQ_ST_OK);
    g_assert_cmpuint(bytes, ==, 48);
    munmap(p, REGION);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /*
     * qemuutil's stub BQL: the only way to mark it held (the ring asserts
     * it is).
     */
    rust_bql_mock_lock();
    g_test_add_func("/ivq-ring/fifo", test_fifo);
    g_test_add_func("/ivq-ring/bad-pop", test_bad_pop);
    g_test_add_func("/ivq-ring/attach", test_attach);
    g_test_add_func("/ivq-ring/dead-holder", test_dead_holder);
    return g_test_run();
}

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
#define POOL_PAGE   ((IVQ_CTL_SIZE + RING_OFF + RING_SIZE) / IVQ_PAGE)
#define POOL_PAGES  2
#define REGION      ((POOL_PAGE + POOL_PAGES) * IVQ_PAGE)

/* A fresh region (shared, so that a child process sees it). */
static void *region_new(IvqRing *r)
{
    void *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    g_assert_true(p != MAP_FAILED);
    ivq_ring_init_ctl(p, RING_OFF, RING_SIZE, POOL_PAGE, POOL_PAGES);
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

/* ivq_ring_pop() for copied messages: their bytes. */
static uint32_t pop(IvqRing *r, uint32_t n, uint64_t *bytes)
{
    uint64_t fm, fb;
    uint32_t from, to, st = ivq_ring_pop(r, n, bytes, &fm, &fb, &from, &to);

    g_assert_cmpuint(fm, ==, 0);
    return st;
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
            g_assert_cmpuint(pop(&r, 1, &bytes), ==, IVQ_ST_OK);
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
    uint32_t head, from, to;

    g_assert_cmpuint(pop(&r, 1, &bytes), ==, IVQ_ST_BAD_VALUE);
    g_assert_cmpuint(push(&r, 10, 1), ==, IVQ_ST_OK);
    g_assert_cmpuint(push(&r, 20, 2), ==, IVQ_ST_OK);
    g_assert_cmpuint(pop(&r, 0, &bytes), ==, IVQ_ST_BAD_VALUE);
    g_assert_cmpuint(pop(&r, 3, &bytes), ==, IVQ_ST_BAD_VALUE);
    /* The guest scribbles on the second header: it runs past the tail. */
    h = (IvqMsgHeader *)(r.base + 64);
    h->len = 5000;
    head = r.ctl->head;
    g_assert_cmpuint(pop(&r, 2, &bytes), ==, IVQ_ST_BAD_VALUE);
    g_assert_cmpuint(r.ctl->head, ==, head);
    g_assert_cmpuint(r.ctl->count, ==, 2);
    h->len = 20;
    g_assert_cmpuint(pop(&r, 2, &bytes), ==, IVQ_ST_OK);
    g_assert_cmpuint(bytes, ==, 30);
    g_assert_cmpuint(r.ctl->head, ==, r.ctl->tail);

    /* Indices no honest party writes: the queue is refused. */
    r.ctl->tail = r.ctl->head + RING_SIZE + 32;
    g_assert_cmpuint(push(&r, 8, 3), ==, IVQ_ST_PEER_DOWN);
    r.ctl->tail = r.ctl->head + 8;
    r.ctl->count = 1;
    g_assert_cmpuint(push(&r, 8, 3), ==, IVQ_ST_PEER_DOWN);
    g_assert_cmpuint(pop(&r, 1, &bytes), ==, IVQ_ST_BAD_VALUE);
    ivq_ring_flush(&r, &from, &to);
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
    /* A pool past the region's end, or over the queue. */
    ctl->pool_pages = POOL_PAGES + 1;
    g_assert_false(ivq_ring_attach(&r, p, REGION));
    ctl->pool_pages = POOL_PAGES;
    ctl->pool_page = POOL_PAGE - 1;
    g_assert_false(ivq_ring_attach(&r, p, REGION));
    ctl->pool_page = POOL_PAGE;
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
    g_assert_cmpuint(pop(&r, 3, &bytes), ==, IVQ_ST_OK);
    g_assert_cmpuint(bytes, ==, 48);
    munmap(p, REGION);
}

/*
 * A flipped record: pads put its payload on a page of the ring (two in a
 * row when it also wraps), the descriptors say where and whose pages, no
 * payload is written; no room, or no free descriptor, is QUEUE_FULL and
 * writes nothing; lent runs go back to their lender in order.
 */
static void test_push_flip(void)
{
    enum { SIZE = 16384, POOL = (IVQ_CTL_SIZE + RING_OFF + SIZE) / 4096 };
    size_t len = POOL * 4096 + POOL_PAGES * 4096;
    IvqRing r;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    IvqMsgHeader h = { .src = 1, .dst = 2, .len = 4096, .seq = 7,
                       .flags = IVQ_HDR_F_FLIP };
    IvqFlipDesc run = { .pos = 0, .lender = 1, .page = 9, .npages = 1 };
    IvqFlipRun back = { .page = 9, .npages = 1 }, got[4];
    uint64_t bytes, fm, fb;
    uint32_t from, to, i;
    IvqMsgHeader g;

    g_assert_true(p != MAP_FAILED);
    ivq_ring_init_ctl(p, RING_OFF, SIZE, POOL, POOL_PAGES);
    g_assert_true(ivq_ring_attach(&r, p, len));

    /* 64 bytes queued: a pad from 64 to 4064, the header, the page. */
    g_assert_cmpuint(push(&r, 32, 1), ==, IVQ_ST_OK);
    g_assert_cmpuint(ivq_ring_push_flip(&r, &h, &run, 1), ==, IVQ_ST_OK);
    memcpy(&g, r.base + 64, HDR);
    g_assert_true(g.flags & IVQ_HDR_F_PAD);
    g_assert_cmpuint(64 + HDR + g.len, ==, 4096 - HDR);
    memcpy(&g, r.base + 4096 - HDR, HDR);
    g_assert_cmpuint(g.seq, ==, 7);
    g_assert_cmpuint(r.ctl->tail, ==, 8192);
    g_assert_cmpuint(r.ctl->ftail, ==, 1);
    g_assert_cmpuint(r.ctl->flip[0].rec, ==, 4096 - HDR);
    g_assert_cmpuint(r.ctl->flip[0].pos, ==, 4096);
    g_assert_cmpuint(r.ctl->flip[0].page, ==, 9);
    g_assert_cmpuint(r.ctl->count, ==, 2);
    /* Not whole pages: refused. */
    h.len = 100;
    g_assert_cmpuint(ivq_ring_push_flip(&r, &h, &run, 1), ==,
                     IVQ_ST_TOO_BIG);
    h.len = 4096;
    g_assert_cmpuint(ivq_ring_pop(&r, 2, &bytes, &fm, &fb, &from, &to), ==,
                     IVQ_ST_OK);
    g_assert_cmpuint(fm, ==, 1);
    g_assert_cmpuint(fb, ==, 4096);
    g_assert_cmpuint(bytes, ==, 4096 + 32);
    g_assert_cmpuint(from, ==, 0);
    g_assert_cmpuint(to, ==, 8192);

    /*
     * At offset 14336 the page does not fit before the end: a pad to the
     * end, a pad to 4064, the header, the page.
     */
    r.ctl->tail = r.ctl->head = SIZE + 14336;
    g_assert_cmpuint(ivq_ring_push_flip(&r, &h, &run, 1), ==, IVQ_ST_OK);
    memcpy(&g, r.base + 14336, HDR);
    g_assert_true(g.flags & IVQ_HDR_F_PAD);
    g_assert_cmpuint(g.len, ==, 2048 - HDR);
    memcpy(&g, r.base, HDR);
    g_assert_true(g.flags & IVQ_HDR_F_PAD);
    g_assert_cmpuint(g.len, ==, 4096 - 2 * HDR);
    memcpy(&g, r.base + 4096 - HDR, HDR);
    g_assert_cmpuint(g.seq, ==, 7);
    g_assert_cmpuint(r.ctl->flip[1].pos, ==, 4096);
    g_assert_cmpuint(r.ctl->flip[1].rec, ==, 2 * SIZE + 4096 - HDR);
    g_assert_cmpuint(r.ctl->tail, ==, 2 * SIZE + 8192);

    /* No room: 4 KiB free is not a page and its header. */
    r.ctl->head = r.ctl->tail - (SIZE - 4096);
    to = r.ctl->tail;
    g_assert_cmpuint(ivq_ring_push_flip(&r, &h, &run, 1), ==,
                     IVQ_ST_QUEUE_FULL);
    g_assert_cmpuint(r.ctl->tail, ==, to);
    /* Descriptors full: likewise. */
    r.ctl->head = r.ctl->tail;
    r.ctl->ftail = r.ctl->fhead + IVQ_FLIP_DESCS;
    g_assert_cmpuint(ivq_ring_push_flip(&r, &h, &run, 1), ==,
                     IVQ_ST_QUEUE_FULL);
    g_assert_cmpuint(r.ctl->tail, ==, to);

    /* Runs given back, taken back in order; a full list refuses. */
    for (i = 0; i < IVQ_FLIP_RUNS; i++) {
        back.page = 9 + i;
        g_assert_true(ivq_ring_return(&r, &back));
    }
    g_assert_false(ivq_ring_return(&r, &back));
    g_assert_cmpuint(ivq_ring_take_returns(&r, got, 4), ==, 4);
    g_assert_cmpuint(got[0].page, ==, 9);
    g_assert_cmpuint(got[3].page, ==, 12);
    munmap(p, len);
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
    g_test_add_func("/ivq-ring/push-flip", test_push_flip);
    return g_test_run();
}

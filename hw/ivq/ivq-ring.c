/*
 * qemu-tiers inter-VM queues: receive queues in shared memory.
 *
 * A device's receive queue lives in its region (ivq-proto.h), which every
 * peer's QEMU maps: senders push records at the tail, the owner pops at
 * the head.  The indices sit in the region's first page, which no guest
 * maps; the records sit in the owner's BAR2, which its guest reads (and
 * could scribble on: every header read back here is copied once and
 * checked).  All index changes happen under the region's lock, a
 * process-shared robust mutex: a QEMU killed while holding it leaves the
 * indices consistent, because they move only after the copy.
 *
 * Called with the BQL (docs/locking.rst: BQL, then one queue lock).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "ivq-internal.h"

#define IVQ_HDR_SIZE    ((uint32_t)sizeof(IvqMsgHeader))

QEMU_BUILD_BUG_ON(sizeof(IvqMsgHeader) != IVQ_REC_ALIGN);
QEMU_BUILD_BUG_ON(sizeof(IvqRegionCtl) > IVQ_CTL_SIZE);

/*
 * The queue lock this thread holds, if any: a thread holds at most one
 * (docs/locking.rst), and only inside push and pop.
 */
static __thread IvqRegionCtl *ivq_held;

/* The owner's set-up of its fresh (zeroed) region. */
void ivq_ring_init_ctl(IvqRegionCtl *ctl, uint32_t ring_off,
                       uint32_t ring_size, uint32_t pool_page,
                       uint32_t pool_pages)
{
    pthread_mutexattr_t a;

    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&ctl->lock, &a);
    pthread_mutex_init(&ctl->alive, &a);
    pthread_mutexattr_destroy(&a);
    ctl->ring_off = ring_off;
    ctl->ring_size = ring_size;
    ctl->pool_page = pool_page;
    ctl->pool_pages = pool_pages;
    ctl->head = ctl->tail = ctl->count = 0;
    ctl->fhead = ctl->ftail = ctl->rhead = ctl->rtail = 0;
    ctl->version = IVQ_PROTO_VERSION;
    /* The rest before the magic: a peer that sees it sees a whole ctl. */
    smp_wmb();
    ctl->magic = IVQ_REGION_MAGIC;
}

/*
 * Finds the queue in a mapped region (own or a peer's).  The geometry is
 * read once and checked against the mapping; false if it does not fit.
 */
bool ivq_ring_attach(IvqRing *r, void *region, size_t region_size)
{
    IvqRegionCtl *ctl = region;
    uint32_t off, size, pool_page, pool_pages;

    if (region_size < IVQ_CTL_SIZE || ctl->magic != IVQ_REGION_MAGIC ||
        ctl->version != IVQ_PROTO_VERSION) {
        return false;
    }
    off = qatomic_read(&ctl->ring_off);
    size = qatomic_read(&ctl->ring_size);
    pool_page = qatomic_read(&ctl->pool_page);
    pool_pages = qatomic_read(&ctl->pool_pages);
    if (size < 4096 || !is_power_of_2(size) || off % IVQ_PAGE ||
        (uint64_t)IVQ_CTL_SIZE + off + size > region_size ||
        (uint64_t)pool_page * IVQ_PAGE < IVQ_CTL_SIZE + off + size ||
        ((uint64_t)pool_page + pool_pages) * IVQ_PAGE > region_size) {
        return false;
    }
    r->ctl = ctl;
    r->base = (uint8_t *)region + IVQ_CTL_SIZE + off;
    r->size = size;
    r->send_pages = off / IVQ_PAGE;
    r->pool_page = pool_page;
    r->pool_pages = pool_pages;
    return true;
}

/* The largest payload a queue takes: half of it, less a header. */
uint32_t ivq_ring_max_payload(const IvqRing *r)
{
    return r->size / 2 - IVQ_HDR_SIZE;
}

/*
 * Takes the queue's lock.  A holder that died leaves consistent indices
 * (they move after the copy): mark the lock consistent and go on.  False
 * if the lock is unusable (a corrupt region).
 */
static bool ivq_ring_lock(IvqRing *r)
{
    int ret;

    assert(bql_locked() && !ivq_held);
    ret = pthread_mutex_lock(&r->ctl->lock);
    if (ret == EOWNERDEAD) {
        ret = pthread_mutex_consistent(&r->ctl->lock);
    }
    if (ret == 0) {
        ivq_held = r->ctl;
    }
    return ret == 0;
}

static void ivq_ring_unlock(IvqRing *r)
{
    assert(ivq_held == r->ctl);
    ivq_held = NULL;
    pthread_mutex_unlock(&r->ctl->lock);
}

/* Indices that no honest party writes: the queue is unusable. */
static bool ivq_ring_sane(IvqRing *r, uint32_t head, uint32_t tail)
{
    return tail - head <= r->size && !(head % IVQ_REC_ALIGN) &&
           !(tail % IVQ_REC_ALIGN);
}

/* A pad record of @bytes (header included) at ring offset @pos. */
static void ivq_ring_put_pad(IvqRing *r, uint32_t pos, uint32_t dst,
                             uint32_t bytes)
{
    IvqMsgHeader p = {
        .src = IVQ_NO_PEER, .dst = dst, .len = bytes - IVQ_HDR_SIZE,
        .flags = IVQ_HDR_F_PAD,
    };

    memcpy(r->base + pos, &p, sizeof(p));
}

/*
 * Appends one record: @hdr (its len says how much of @payload) and the
 * payload, after a pad record if the ring's end is too short.  Returns
 * IVQ_ST_OK, IVQ_ST_TOO_BIG (never fits), IVQ_ST_QUEUE_FULL (not now:
 * nothing written) or IVQ_ST_PEER_DOWN (the queue is corrupt).
 */
uint32_t ivq_ring_push(IvqRing *r, const IvqMsgHeader *hdr,
                       const void *payload)
{
    uint32_t rec, pos, pad, head, tail;

    assert(bql_locked());
    if (hdr->len > ivq_ring_max_payload(r)) {
        return IVQ_ST_TOO_BIG;
    }
    rec = ROUND_UP(IVQ_HDR_SIZE + hdr->len, IVQ_REC_ALIGN);
    if (!ivq_ring_lock(r)) {
        return IVQ_ST_PEER_DOWN;
    }
    head = qatomic_read(&r->ctl->head);
    tail = r->ctl->tail;
    if (!ivq_ring_sane(r, head, tail)) {
        ivq_ring_unlock(r);
        return IVQ_ST_PEER_DOWN;
    }
    pos = tail & (r->size - 1);
    pad = pos + rec > r->size ? r->size - pos : 0;
    if (tail - head + pad + rec > r->size) {
        ivq_ring_unlock(r);
        return IVQ_ST_QUEUE_FULL;
    }
    if (pad) {
        ivq_ring_put_pad(r, pos, hdr->dst, pad);
        tail += pad;
        pos = 0;
    }
    memcpy(r->base + pos, hdr, IVQ_HDR_SIZE);
    memcpy(r->base + pos + IVQ_HDR_SIZE, payload, hdr->len);
    /* Contents before the index: a reader that sees tail sees the data. */
    smp_wmb();
    qatomic_set(&r->ctl->tail, tail + rec);
    r->ctl->count++;
    ivq_ring_unlock(r);
    return IVQ_ST_OK;
}

/*
 * Appends one flipped record: pads until its payload starts on a page of
 * the ring, the header, and @nruns descriptors of the pages that make up
 * the payload (@runs[i].pos: the run's offset in the payload; the lender
 * and its pages).  No payload is written: the owner's QEMU maps the
 * lender's pages over the slots (ivq_flip_apply()).  The descriptors go
 * in before the tail moves, so an owner that sees the record sees them.
 * Returns as ivq_ring_push(); QUEUE_FULL also when the descriptors are.
 */
uint32_t ivq_ring_push_flip(IvqRing *r, const IvqMsgHeader *hdr,
                            const IvqFlipDesc *runs, uint32_t nruns)
{
    uint32_t head, tail, pos, wrap = 0, at, need, i, ftail;

    assert(bql_locked());
    if (hdr->len % IVQ_PAGE || hdr->len > ivq_ring_max_payload(r)) {
        return IVQ_ST_TOO_BIG;
    }
    if (!ivq_ring_lock(r)) {
        return IVQ_ST_PEER_DOWN;
    }
    head = qatomic_read(&r->ctl->head);
    tail = r->ctl->tail;
    ftail = r->ctl->ftail;
    if (!ivq_ring_sane(r, head, tail) ||
        ftail - qatomic_read(&r->ctl->fhead) > IVQ_FLIP_DESCS) {
        ivq_ring_unlock(r);
        return IVQ_ST_PEER_DOWN;
    }
    /* The header sits just before a page boundary; a record never wraps. */
    pos = tail & (r->size - 1);
    at = ROUND_UP(pos + IVQ_HDR_SIZE, IVQ_PAGE) - IVQ_HDR_SIZE;
    if (at + IVQ_HDR_SIZE + hdr->len > r->size) {
        wrap = r->size - pos;
        pos = 0;
        at = IVQ_PAGE - IVQ_HDR_SIZE;
    }
    need = wrap + (at - pos) + IVQ_HDR_SIZE + hdr->len;
    if (tail - head + need > r->size ||
        ftail - r->ctl->fhead + nruns > IVQ_FLIP_DESCS) {
        ivq_ring_unlock(r);
        return IVQ_ST_QUEUE_FULL;
    }
    if (wrap) {
        ivq_ring_put_pad(r, tail & (r->size - 1), hdr->dst, wrap);
        tail += wrap;
    }
    if (at > pos) {
        ivq_ring_put_pad(r, pos, hdr->dst, at - pos);
        tail += at - pos;
    }
    for (i = 0; i < nruns; i++) {
        IvqFlipDesc d = runs[i];

        d.rec = tail;
        d.pos = at + IVQ_HDR_SIZE + runs[i].pos;
        r->ctl->flip[(ftail + i) % IVQ_FLIP_DESCS] = d;
    }
    memcpy(r->base + at, hdr, IVQ_HDR_SIZE);
    /* Descriptors and header before the indices. */
    smp_wmb();
    qatomic_set(&r->ctl->ftail, ftail + nruns);
    qatomic_set(&r->ctl->tail, tail + IVQ_HDR_SIZE + hdr->len);
    r->ctl->count++;
    ivq_ring_unlock(r);
    return IVQ_ST_OK;
}

/*
 * Gives a run of pages back to the region's owner (the lender).  False
 * if its list is full or the region unusable: the pages stay lent.
 */
bool ivq_ring_return(IvqRing *r, const IvqFlipRun *run)
{
    uint32_t n;

    if (!ivq_ring_lock(r)) {
        return false;
    }
    n = r->ctl->rtail - r->ctl->rhead;
    if (n < IVQ_FLIP_RUNS) {
        r->ctl->ret[r->ctl->rtail % IVQ_FLIP_RUNS] = *run;
        r->ctl->rtail++;
    }
    ivq_ring_unlock(r);
    return n < IVQ_FLIP_RUNS;
}

/* The owner takes up to @max runs given back to it; returns how many. */
uint32_t ivq_ring_take_returns(IvqRing *r, IvqFlipRun *out, uint32_t max)
{
    uint32_t n = 0;

    if (!ivq_ring_lock(r)) {
        return 0;
    }
    while (n < max && r->ctl->rhead != r->ctl->rtail) {
        out[n++] = r->ctl->ret[r->ctl->rhead++ % IVQ_FLIP_RUNS];
    }
    ivq_ring_unlock(r);
    return n;
}

/*
 * Pops @n messages (and the pad records among them) at the head; their
 * payload bytes go to *@bytes.  IVQ_ST_BAD_VALUE, changing nothing, when
 * fewer are queued or a header the guest scribbled on does not add up.
 */
uint32_t ivq_ring_pop(IvqRing *r, uint32_t n, uint64_t *bytes,
                      uint64_t *flip_msgs, uint64_t *flip_bytes,
                      uint32_t *from, uint32_t *to)
{
    uint32_t head, tail, cur, i = 0;
    uint64_t b = 0, fm = 0, fb = 0;

    assert(bql_locked());
    if (!ivq_ring_lock(r)) {
        return IVQ_ST_BAD_VALUE;
    }
    head = r->ctl->head;
    tail = qatomic_read(&r->ctl->tail);
    if (n == 0 || n > r->ctl->count || !ivq_ring_sane(r, head, tail)) {
        ivq_ring_unlock(r);
        return IVQ_ST_BAD_VALUE;
    }
    cur = head;
    while (i < n) {
        uint32_t pos = cur & (r->size - 1);
        IvqMsgHeader h;
        uint64_t rec;

        if (cur == tail) {
            break;
        }
        memcpy(&h, r->base + pos, sizeof(h));
        rec = ROUND_UP(IVQ_HDR_SIZE + (uint64_t)h.len, IVQ_REC_ALIGN);
        if (rec > tail - cur || pos + rec > r->size) {
            break;
        }
        if (!(h.flags & IVQ_HDR_F_PAD)) {
            i++;
            b += h.len;
            if (h.flags & IVQ_HDR_F_FLIP) {
                fm++;
                fb += h.len;
            }
        }
        cur += rec;
    }
    if (i < n) {
        ivq_ring_unlock(r);
        return IVQ_ST_BAD_VALUE;
    }
    qatomic_set(&r->ctl->head, cur);
    r->ctl->count -= n;
    ivq_ring_unlock(r);
    *bytes = b;
    *flip_msgs = fm;
    *flip_bytes = fb;
    *from = head;
    *to = cur;
    return IVQ_ST_OK;
}

/*
 * Empties the queue (device reset): whatever its headers say.  [*@from,
 * *@to) is what went.
 */
void ivq_ring_flush(IvqRing *r, uint32_t *from, uint32_t *to)
{
    *from = *to = 0;
    if (!ivq_ring_lock(r)) {
        return;
    }
    *from = r->ctl->head;
    *to = r->ctl->tail;
    qatomic_set(&r->ctl->head, r->ctl->tail);
    r->ctl->count = 0;
    ivq_ring_unlock(r);
}

/*
 * The owner marks its region alive for as long as its process runs (the
 * lock is dropped by unrealize, or by the kernel when the process dies).
 */
bool ivq_ring_hold_alive(IvqRing *r)
{
    return pthread_mutex_trylock(&r->ctl->alive) == 0;
}

void ivq_ring_drop_alive(IvqRing *r)
{
    pthread_mutex_unlock(&r->ctl->alive);
}

/*
 * Whether the region's owner process died (its alive lock owner-dead);
 * false while it runs, and when it unrealized the device cleanly (it gave
 * back what it was lent first).  Never waits.
 */
bool ivq_ring_owner_dead(IvqRing *r)
{
    int ret = pthread_mutex_trylock(&r->ctl->alive);

    /*
     * Unlocked without pthread_mutex_consistent(), an owner-dead lock
     * stays ENOTRECOVERABLE: every other peer that asks learns it too.
     */
    if (ret == 0 || ret == EOWNERDEAD) {
        pthread_mutex_unlock(&r->ctl->alive);
    }
    return ret == EOWNERDEAD || ret == ENOTRECOVERABLE;
}

/* A snapshot of the indices, for the registers. */
void ivq_ring_indices(IvqRing *r, uint32_t *head, uint32_t *tail,
                      uint32_t *count)
{
    *head = qatomic_read(&r->ctl->head);
    *tail = qatomic_read(&r->ctl->tail);
    *count = qatomic_read(&r->ctl->count);
    /* Indices before contents: the guest reads records after this. */
    smp_rmb();
}

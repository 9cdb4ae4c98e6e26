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
                       uint32_t ring_size)
{
    pthread_mutexattr_t a;

    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&ctl->lock, &a);
    pthread_mutexattr_destroy(&a);
    ctl->ring_off = ring_off;
    ctl->ring_size = ring_size;
    ctl->head = ctl->tail = ctl->count = 0;
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
    uint32_t off, size;

    if (region_size < IVQ_CTL_SIZE || ctl->magic != IVQ_REGION_MAGIC ||
        ctl->version != IVQ_PROTO_VERSION) {
        return false;
    }
    off = qatomic_read(&ctl->ring_off);
    size = qatomic_read(&ctl->ring_size);
    if (size < 4096 || !is_power_of_2(size) || off % IVQ_REC_ALIGN ||
        (uint64_t)IVQ_CTL_SIZE + off + size > region_size) {
        return false;
    }
    r->ctl = ctl;
    r->base = (uint8_t *)region + IVQ_CTL_SIZE + off;
    r->size = size;
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
        IvqMsgHeader p = {
            .src = IVQ_NO_PEER, .dst = hdr->dst,
            .len = pad - IVQ_HDR_SIZE, .flags = IVQ_HDR_F_PAD,
        };

        memcpy(r->base + pos, &p, sizeof(p));
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
 * Pops @n messages (and the pad records among them) at the head; their
 * payload bytes go to *@bytes.  IVQ_ST_BAD_VALUE, changing nothing, when
 * fewer are queued or a header the guest scribbled on does not add up.
 */
uint32_t ivq_ring_pop(IvqRing *r, uint32_t n, uint64_t *bytes)
{
    uint32_t head, tail, cur, i = 0;
    uint64_t b = 0;

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
    return IVQ_ST_OK;
}

/* Empties the queue (device reset): whatever its headers say. */
void ivq_ring_flush(IvqRing *r)
{
    if (!ivq_ring_lock(r)) {
        return;
    }
    qatomic_set(&r->ctl->head, r->ctl->tail);
    r->ctl->count = 0;
    ivq_ring_unlock(r);
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

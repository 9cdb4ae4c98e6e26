/*
 * qemu-tiers: the lock of a device whose state both tiers share.
 *
 * A recursive mutex, as QEMU's models take it (recursive because, e.g.,
 * a slave PIC's INT output re-enters the master while pic_read_irq()
 * holds it), whose outermost acquisition and release also bump a
 * sequence count.  A reader that only looks at registers (the PIC's IMR,
 * ISR, IRR and ELCR; PIT channel 2's gate and OUT for port 0x61) can
 * then do without the mutex: it reads speculatively and reads again if
 * the count moved.  That keeps such reads off the mutex, which two vCPUs
 * polling one port otherwise pass back and forth (a contended mutex
 * sleeps in the kernel), and saves the lock/unlock pair on one vCPU.
 *
 * Rules (asserted: the lock knows its holder, tier_lock_held()):
 *  - every change to the protected fields is made with the lock held
 *    (the models' helpers assert it: tier_lock_assert_held()).  The one
 *    exception is a migration load, which runs with the VM stopped, when
 *    no reader runs;
 *  - a read section only reads, and its result is used only once
 *    tier_read_retry() returns false;
 *  - after TIER_READ_TRIES interrupted passes (a busy writer, or this
 *    thread holds the lock itself, so the count stays odd), the section
 *    runs once more under the mutex; never unbounded spinning.
 * Read sections load fields that writers store without atomics; the
 * sequence count makes that harmless, and the sections tell
 * ThreadSanitizer to ignore those loads.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_SPLIT_TIER_LOCK_H
#define HW_SPLIT_TIER_LOCK_H

#include "qemu/thread.h"
#include "qemu/seqlock.h"
#include "qemu/lockable.h"
#include "qemu/tsan.h"

typedef struct TierLock {
    QemuRecMutex mutex;
    /* Odd while a holder is inside its outermost section. */
    QemuSeqLock seq;
    /* The holder's nesting depth.  Under @mutex. */
    unsigned depth;
    /*
     * The holding thread (pthread_self()), 0 when free.  Set and cleared
     * by the holder, read atomically by anyone: only the holder can find
     * its own identity there.
     */
    unsigned long owner;
} TierLock;

/* Interrupted lock-free passes before a reader takes the mutex. */
#define TIER_READ_TRIES 16

static inline void tier_lock_init(TierLock *l)
{
    qemu_rec_mutex_init(&l->mutex);
    seqlock_init(&l->seq);
    l->depth = 0;
    l->owner = 0;
}

static inline unsigned long tier_lock_self(void)
{
    return (unsigned long)pthread_self();
}

/* Does the calling thread hold @l? */
static inline bool tier_lock_held(TierLock *l)
{
    return qatomic_read(&l->owner) == tier_lock_self();
}

/* "Called with the lock held", checked. */
#define tier_lock_assert_held(l) assert(tier_lock_held(l))

/*
 * No spinning before the mutex sleeps.  Tried twice with two vCPUs
 * polling one PIT channel under TCG (bench/RESULTS.md): waiting up to
 * 100 PAUSEs for the holder was 3-4x slower in two runs of three on this
 * nested host, and reading the sequence count up to 128 times without
 * PAUSE gave no gain beyond the runs' own spread (two passes).
 */
static inline void tier_lock(TierLock *l)
{
    qemu_rec_mutex_lock(&l->mutex);
    if (l->depth++ == 0) {
        qatomic_set(&l->owner, tier_lock_self());
        seqlock_write_begin(&l->seq);
    }
}

static inline void tier_unlock(TierLock *l)
{
    tier_lock_assert_held(l);
    assert(l->depth > 0);
    if (--l->depth == 0) {
        seqlock_write_end(&l->seq);
        qatomic_set(&l->owner, 0);
    }
    qemu_rec_mutex_unlock(&l->mutex);
}

static inline void tier_lock_cb(void *l)
{
    tier_lock(l);
}

static inline void tier_unlock_cb(void *l)
{
    tier_unlock(l);
}

/* QEMU_LOCK_GUARD / WITH_QEMU_LOCK_GUARD for a TierLock. */
#define TIER_LOCKABLE(l)                                                \
    (&(QemuLockable) { .object = (l), .lock = tier_lock_cb,             \
                       .unlock = tier_unlock_cb })
#define TIER_LOCK_GUARD(l) QEMU_LOCK_GUARD(TIER_LOCKABLE(l))
#define WITH_TIER_LOCK_GUARD(l) WITH_QEMU_LOCK_GUARD(TIER_LOCKABLE(l))

/*
 * A read section:
 *
 *     TierReader r;
 *
 *     tier_read_begin(&r, &s->lock);
 *     do {
 *         val = ...read registers only...;
 *     } while (tier_read_retry(&r));
 */
typedef struct TierReader {
    TierLock *lock;
    unsigned seq;
    unsigned tries;
    bool locked;
} TierReader;

static inline void tier_read_begin(TierReader *r, TierLock *l)
{
    r->lock = l;
    r->tries = 0;
    r->locked = false;
    r->seq = seqlock_read_begin(&l->seq);
    QEMU_TSAN_ANNOTATE_IGNORE_READS_BEGIN();
}

/* True: run the section again (its result so far is not to be used). */
static inline bool tier_read_retry(TierReader *r)
{
    if (r->locked) {
        tier_unlock(r->lock);
        return false;
    }
    QEMU_TSAN_ANNOTATE_IGNORE_READS_END();
    if (!seqlock_read_retry(&r->lock->seq, r->seq)) {
        return false;
    }
    if (++r->tries < TIER_READ_TRIES) {
        r->seq = seqlock_read_begin(&r->lock->seq);
        QEMU_TSAN_ANNOTATE_IGNORE_READS_BEGIN();
    } else {
        tier_lock(r->lock);
        r->locked = true;
    }
    return true;
}

#endif /* HW_SPLIT_TIER_LOCK_H */

/*
 * Unit tests of TierLock (hw/split/tier-lock.h), without a VM: the
 * sequence count follows the outermost holder only, a reader that holds
 * the lock itself falls back to the mutex instead of spinning, lock-free
 * readers never see a half-made change while writers run on other
 * threads, contending holders exclude each other, and the lock knows
 * its holder, so that "called with the lock held" is asserted.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/thread.h"
#include "hw/split/tier-lock.h"

/* Two registers a writer keeps equal; a torn read sees them differ. */
typedef struct Regs {
    TierLock lock;
    uint32_t a;
    uint32_t b;
    uint32_t writes;            /* atomic: the writer's progress */
    bool stop;
} Regs;

static unsigned read_section_passes(Regs *s, uint32_t *a, uint32_t *b)
{
    TierReader r;
    unsigned passes = 0;

    tier_read_begin(&r, &s->lock);
    do {
        passes++;
        *a = s->a;
        *b = s->b;
    } while (tier_read_retry(&r));
    return passes;
}

static void test_nesting(void)
{
    Regs s = { 0 };
    uint32_t a, b;

    tier_lock_init(&s.lock);
    g_assert_cmpuint(read_section_passes(&s, &a, &b), ==, 1);

    tier_lock(&s.lock);
    g_assert_cmpuint(s.lock.seq.sequence & 1, ==, 1);
    tier_lock(&s.lock);
    tier_unlock(&s.lock);
    /* The inner release must not end the write section. */
    g_assert_cmpuint(s.lock.seq.sequence & 1, ==, 1);
    tier_unlock(&s.lock);
    g_assert_cmpuint(s.lock.seq.sequence, ==, 2);

    /* A guard is an outermost section like any other. */
    WITH_TIER_LOCK_GUARD(&s.lock) {
        s.a = s.b = 7;
        g_assert_cmpuint(s.lock.depth, ==, 1);
    }
    g_assert_cmpuint(s.lock.seq.sequence, ==, 4);
    g_assert_cmpuint(read_section_passes(&s, &a, &b), ==, 1);
    g_assert_cmpuint(a, ==, 7);
}

/*
 * A thread that reads while holding the lock sees an odd count forever:
 * it must give up after TIER_READ_TRIES passes and read under the
 * (recursive) mutex, leaving the lock as it found it.
 */
static void test_reader_holding_lock(void)
{
    Regs s = { 0 };
    uint32_t a, b;

    tier_lock_init(&s.lock);
    tier_lock(&s.lock);
    s.a = s.b = 3;
    g_assert_cmpuint(read_section_passes(&s, &a, &b), ==,
                     TIER_READ_TRIES + 1);
    g_assert_cmpuint(a, ==, 3);
    g_assert_cmpuint(s.lock.depth, ==, 1);
    tier_unlock(&s.lock);
    g_assert_cmpuint(s.lock.depth, ==, 0);
    g_assert_cmpuint(s.lock.seq.sequence & 1, ==, 0);
}

static void *writer_thread(void *opaque)
{
    Regs *s = opaque;
    uint32_t i;

    for (i = 1; !qatomic_read(&s->stop); i++) {
        tier_lock(&s->lock);
        if (i & 1) {
            tier_lock(&s->lock);        /* nested, as the PIC's paths do */
        }
        s->a = i;
        /* Widen the window in which the registers differ. */
        for (int k = 0; k < 50; k++) {
            barrier();
        }
        s->b = i;
        if (i & 1) {
            tier_unlock(&s->lock);
        }
        tier_unlock(&s->lock);
        qatomic_set(&s->writes, i);
    }
    return NULL;
}

static void *reader_thread(void *opaque)
{
    Regs *s = opaque;
    uint64_t torn = 0, reads;
    uint32_t a, b;

    /* Until both have done enough, whatever the scheduler does. */
    for (reads = 0; reads < 1000000 || qatomic_read(&s->writes) < 100000;
         reads++) {
        read_section_passes(s, &a, &b);
        torn += a != b;
    }
    return (void *)(uintptr_t)torn;
}

static void test_concurrent(void)
{
    Regs s = { 0 };
    QemuThread w, r1, r2;
    uintptr_t torn;

    tier_lock_init(&s.lock);
    qemu_thread_create(&w, "writer", writer_thread, &s, QEMU_THREAD_JOINABLE);
    qemu_thread_create(&r1, "reader1", reader_thread, &s,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_create(&r2, "reader2", reader_thread, &s,
                       QEMU_THREAD_JOINABLE);
    torn = (uintptr_t)qemu_thread_join(&r1);
    torn += (uintptr_t)qemu_thread_join(&r2);
    qatomic_set(&s.stop, true);
    qemu_thread_join(&w);
    g_assert_cmpuint(torn, ==, 0);
}

#define COUNTER_ADDS 200000

/* Plain read-modify-write under the lock: lost updates if it fails. */
static void *counter_thread(void *opaque)
{
    Regs *s = opaque;

    for (int i = 0; i < COUNTER_ADDS; i++) {
        tier_lock(&s->lock);
        s->a++;
        barrier();
        s->b = s->a;
        tier_unlock(&s->lock);
    }
    return NULL;
}

/* Two holders contend: they exclude each other. */
static void test_contended(void)
{
    Regs s = { 0 };
    QemuThread t1, t2;
    uint32_t a, b;

    tier_lock_init(&s.lock);
    qemu_thread_create(&t1, "adder1", counter_thread, &s,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_create(&t2, "adder2", counter_thread, &s,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&t1);
    qemu_thread_join(&t2);
    read_section_passes(&s, &a, &b);
    g_assert_cmpuint(a, ==, 2 * COUNTER_ADDS);
    g_assert_cmpuint(b, ==, 2 * COUNTER_ADDS);
    g_assert_cmpuint(s.lock.seq.sequence, ==, 4 * COUNTER_ADDS);
}

static void *held_elsewhere_thread(void *opaque)
{
    return (void *)(uintptr_t)tier_lock_held(opaque);
}

/* The holder, and only the holder, finds itself the owner. */
static void test_owner(void)
{
    Regs s = { 0 };
    QemuThread t;

    tier_lock_init(&s.lock);
    g_assert_false(tier_lock_held(&s.lock));
    tier_lock(&s.lock);
    g_assert_true(tier_lock_held(&s.lock));
    tier_lock(&s.lock);
    tier_unlock(&s.lock);
    g_assert_true(tier_lock_held(&s.lock));     /* still the outer hold */
    qemu_thread_create(&t, "other", held_elsewhere_thread, &s.lock,
                       QEMU_THREAD_JOINABLE);
    g_assert_false((uintptr_t)qemu_thread_join(&t));
    tier_unlock(&s.lock);
    g_assert_false(tier_lock_held(&s.lock));
}

/* A helper's "lock held" rule is checked: it aborts without the lock. */
static void test_assert_held(void)
{
    if (g_test_subprocess()) {
        Regs s = { 0 };

        tier_lock_init(&s.lock);
        tier_lock_assert_held(&s.lock);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*tier_lock_held*");
}

static void *unlock_thread(void *opaque)
{
    tier_unlock(opaque);
    return NULL;
}

/* Releasing a lock another thread holds is caught, not a silent mess. */
static void test_unlock_by_other(void)
{
    if (g_test_subprocess()) {
        Regs s = { 0 };
        QemuThread t;

        tier_lock_init(&s.lock);
        tier_lock(&s.lock);
        qemu_thread_create(&t, "thief", unlock_thread, &s.lock,
                           QEMU_THREAD_JOINABLE);
        qemu_thread_join(&t);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*tier_lock_held*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tier-lock/nesting", test_nesting);
    g_test_add_func("/tier-lock/reader-holding-lock",
                    test_reader_holding_lock);
    g_test_add_func("/tier-lock/concurrent", test_concurrent);
    g_test_add_func("/tier-lock/contended", test_contended);
    g_test_add_func("/tier-lock/owner", test_owner);
    g_test_add_func("/tier-lock/assert-held", test_assert_held);
    g_test_add_func("/tier-lock/unlock-by-other", test_unlock_by_other);
    return g_test_run();
}

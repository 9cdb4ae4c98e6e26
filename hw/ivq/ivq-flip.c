/*
 * qemu-tiers inter-VM queues: page flip.
 *
 * A message whose payload is whole pages of the send area can be
 * delivered without a copy: the receiver's QEMU maps the sender's pages
 * over the slots of its queue that the record reserves, and the sender's
 * QEMU puts fresh pages behind its send area.  The sender's guest no
 * longer has the pages, so it cannot change a message it sent.  When the
 * receiver pops the message, its QEMU puts its own queue pages back and
 * gives the pages back to their lender, which zeroes them before it uses
 * them again (the receiver's guest may have written to them).
 *
 * Pages that can be lent: a region's send area pages and its pool (as
 * many pages again, after BAR2, never mapped by a guest unless lent).
 * Which pages the sender lends, and where the receiver maps them, goes in
 * descriptors in the receiver's control page, which no guest maps: a
 * guest cannot make a QEMU map another VM's pages.
 *
 * Whether a message flips: it must be whole pages at a page boundary of
 * the send area and at least flip-threshold bytes; "auto" measures at
 * realize what a copy and a flip of 1, 2, 4 ... pages cost on this host
 * and flips from the first size where the flip is cheaper ("never" if
 * none is).  A flip that cannot be made (no free pages, too many lent
 * runs) is a copy.
 *
 * Called with the BQL; queue locks as ivq-ring.c takes them.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "ivq-internal.h"
#include "trace.h"

#define IVQ_HDR_SIZE    ((uint32_t)sizeof(IvqMsgHeader))
#define IVQ_FLIP_NEVER  UINT64_MAX

/* Maps @npages of @fd at @page over @at, in place (the guest's view). */
static bool ivq_flip_map_at(uint8_t *at, int fd, uint32_t page,
                            uint32_t npages)
{
    void *p = mmap(at, (size_t)npages * IVQ_PAGE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, (off_t)page * IVQ_PAGE);

    return p == at;
}

static uint32_t ivq_region_pages(IvqState *s)
{
    return s->region_size / IVQ_PAGE;
}

/*
 * What a delivery of @n pages costs, in ns, best of three: a copy, and a
 * flip (three remaps of @n pages, each touched: the receiver maps them
 * in and back out, the sender puts fresh pages behind its slots).
 */
static void ivq_flip_cost(IvqState *s, uint32_t n, int64_t *copy,
                          int64_t *flip)
{
    uint32_t pool = s->ring.pool_page;
    size_t bytes = (size_t)n * IVQ_PAGE;
    uint8_t *src = s->region + (size_t)pool * IVQ_PAGE, *dst;
    int rep, k;

    *copy = *flip = INT64_MAX;
    dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
               s->region_fd, (off_t)(pool + n) * IVQ_PAGE);
    if (dst == MAP_FAILED) {
        return;
    }
    for (rep = 0; rep < 3; rep++) {
        int64_t t0 = get_clock();
        size_t i;

        memcpy(dst, src, bytes);
        *copy = MIN(*copy, get_clock() - t0);
        t0 = get_clock();
        for (k = 0; k < 3; k++) {
            if (!ivq_flip_map_at(dst, s->region_fd,
                                 pool + (k % 2 ? n : 0), n)) {
                *flip = INT64_MAX;
                goto out;
            }
            for (i = 0; i < bytes; i += IVQ_PAGE) {
                (void)qatomic_read(&dst[i]);
            }
        }
        *flip = MIN(*flip, get_clock() - t0);
    }
out:
    munmap(dst, bytes);
}

/* flip-threshold=auto: the smallest size at which a flip is cheaper. */
static uint64_t ivq_flip_measure(IvqState *s)
{
    uint32_t n, max = MIN(s->ring.pool_pages / 2, 512);
    uint64_t min = IVQ_FLIP_NEVER;
    int64_t copy, flip;

    for (n = 1; n <= max; n *= 2) {
        ivq_flip_cost(s, n, &copy, &flip);
        trace_ivq_flip_measure(s->name, n, copy, flip);
        if (flip < copy) {
            min = (uint64_t)n * IVQ_PAGE;
            break;
        }
    }
    /* The pool goes back to zeroed, unpopulated pages. */
    fallocate(s->region_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              (off_t)s->ring.pool_page * IVQ_PAGE,
              (off_t)s->ring.pool_pages * IVQ_PAGE);
    return min;
}

bool ivq_flip_init(IvqState *s, Error **errp)
{
    const char *t = s->flip_threshold ? s->flip_threshold : "auto";
    uint32_t i, pages = ivq_region_pages(s);
    uint64_t v;

    if (!strcmp(t, "auto")) {
        s->flip_auto = true;
    } else if (!strcmp(t, "never")) {
        s->flip_min = IVQ_FLIP_NEVER;
    } else if (qemu_strtosz(t, NULL, &v) == 0) {
        s->flip_min = v;
    } else {
        error_setg(errp, "ivq '%s': flip-threshold '%s': expected 'auto', "
                   "'never' or a size in bytes", s->name, t);
        return false;
    }
    s->send_backing = g_new(uint32_t, s->ring.send_pages);
    for (i = 0; i < s->ring.send_pages; i++) {
        s->send_backing[i] = 1 + i;
    }
    s->used = bitmap_new(pages);
    bitmap_set(s->used, 0, pages);
    bitmap_clear(s->used, s->ring.pool_page, s->ring.pool_pages);
    s->held_cap = s->queue_size / IVQ_PAGE;
    s->held = g_new0(IvqFlipDesc, s->held_cap);
    if (s->flip_auto) {
        s->flip_min = ivq_flip_measure(s);
    }
    return true;
}

void ivq_flip_cleanup(IvqState *s)
{
    while (s->ngone) {
        IvqFlipGone *g = &s->gone[--s->ngone];

        munmap(g->map, g->map_size);
    }
    g_free(s->send_backing);
    s->send_backing = NULL;
    g_free(s->used);
    s->used = NULL;
    g_free(s->held);
    s->held = NULL;
}

/* A region page this device may lend (send area or pool). */
static bool ivq_flip_lendable(const IvqRing *r, uint32_t page, uint32_t n)
{
    uint64_t end = (uint64_t)page + n;

    return n && ((page >= 1 && end <= 1 + (uint64_t)r->send_pages) ||
                 (page >= r->pool_page &&
                  end <= (uint64_t)r->pool_page + r->pool_pages));
}

/* Lent run @i is free again: zeroed, no longer in the lent list. */
static void ivq_flip_unlend(IvqState *s, uint32_t i)
{
    IvqFlipLent *l = &s->lent[i];

    fallocate(s->region_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              (off_t)l->page * IVQ_PAGE, (off_t)l->npages * IVQ_PAGE);
    bitmap_clear(s->used, l->page, l->npages);
    *l = s->lent[--s->lent_runs];
}

/* Everything lent to peer @id in its coming @gen is ours again. */
static void ivq_flip_reclaim(IvqState *s, uint32_t id, uint32_t gen)
{
    uint32_t i = 0;

    while (i < s->lent_runs) {
        if (s->lent[i].borrower == id && s->lent[i].gen == gen) {
            ivq_flip_unlend(s, i);      /* moves the last one to i */
        } else {
            i++;
        }
    }
}

/* Borrowers that went: those whose process is gone give back all. */
static void ivq_flip_check_gone(IvqState *s)
{
    uint32_t i = 0;

    while (i < s->ngone) {
        IvqFlipGone *g = &s->gone[i];

        if (ivq_ring_owner_dead(&g->ring)) {
            trace_ivq_flip_reclaim(s->name, g->id);
            ivq_flip_reclaim(s, g->id, g->gen);
            munmap(g->map, g->map_size);
            *g = s->gone[--s->ngone];
        } else {
            i++;
        }
    }
}

/*
 * Takes back the runs receivers popped: zeroed (the receiver's guest
 * could write to them), free to lend again.  Only runs we lent, whole.
 * And what borrowers whose process died held.
 */
static void ivq_flip_take_back(IvqState *s)
{
    IvqFlipRun runs[IVQ_FLIP_RUNS];
    uint32_t n = ivq_ring_take_returns(&s->ring, runs, IVQ_FLIP_RUNS), i, j;

    ivq_flip_check_gone(s);
    for (i = 0; i < n; i++) {
        for (j = 0; j < s->lent_runs; j++) {
            if (s->lent[j].page == runs[i].page &&
                s->lent[j].npages == runs[i].npages) {
                break;
            }
        }
        if (j == s->lent_runs) {
            error_report("ivq '%s': a peer gave back pages %" PRIu32
                         "+%" PRIu32 " that were not lent", s->name,
                         runs[i].page, runs[i].npages);
            continue;
        }
        ivq_flip_unlend(s, j);
    }
}

/* Pages lent and not given back yet (query-ivq): settled first. */
uint64_t ivq_flip_lent_pages(IvqState *s)
{
    uint64_t n = 0;
    uint32_t i;

    ivq_flip_take_back(s);
    for (i = 0; i < s->lent_runs; i++) {
        n += s->lent[i].npages;
    }
    return n;
}

/*
 * The runs of region pages behind send area pages [@first, +@n): one
 * descriptor each, pos their offset in the payload.  0 if more than
 * IVQ_FLIP_MAX_RUNS.
 */
static uint32_t ivq_flip_runs(IvqState *s, uint32_t first, uint32_t n,
                              IvqFlipDesc *runs)
{
    uint32_t i, nr = 0;

    for (i = 0; i < n; i++) {
        uint32_t page = s->send_backing[first + i];

        if (nr && runs[nr - 1].page + runs[nr - 1].npages == page) {
            runs[nr - 1].npages++;
            continue;
        }
        if (nr == IVQ_FLIP_MAX_RUNS) {
            return 0;
        }
        runs[nr++] = (IvqFlipDesc) {
            .pos = i * IVQ_PAGE, .lender = s->id, .page = page, .npages = 1,
        };
    }
    return nr;
}

/*
 * Delivers one message, by flip if it qualifies (*@flipped says which),
 * else by copy.  @off: the record's offset in the send area.
 */
uint32_t ivq_flip_send(IvqState *s, uint32_t dst, IvqRing *ring,
                       IvqMsgHeader *h, uint32_t off, bool *flipped)
{
    IvqFlipDesc runs[IVQ_FLIP_MAX_RUNS];
    uint32_t first = (off + IVQ_HDR_SIZE) / IVQ_PAGE;
    uint32_t n = h->len / IVQ_PAGE, nr, fresh, i, st;

    assert(bql_locked());
    *flipped = false;
    if (h->len < s->flip_min || !n || h->len % IVQ_PAGE ||
        (off + IVQ_HDR_SIZE) % IVQ_PAGE) {
        goto copy;
    }
    nr = ivq_flip_runs(s, first, n, runs);
    if (s->lent_runs + nr > IVQ_FLIP_RUNS || !nr) {
        ivq_flip_take_back(s);
    }
    if (!nr || s->lent_runs + nr > IVQ_FLIP_RUNS) {
        goto fallback;
    }
    fresh = bitmap_find_next_zero_area(s->used, ivq_region_pages(s), 1, n,
                                       0);
    if (fresh + n > ivq_region_pages(s)) {
        ivq_flip_take_back(s);
        fresh = bitmap_find_next_zero_area(s->used, ivq_region_pages(s), 1,
                                           n, 0);
        if (fresh + n > ivq_region_pages(s)) {
            goto fallback;
        }
    }
    h->flags = IVQ_HDR_F_FLIP;
    st = ivq_ring_push_flip(ring, h, runs, nr);
    if (st != IVQ_ST_OK) {
        return st;
    }
    /* Sent: fresh pages behind the send area; the old ones are lent. */
    bitmap_set(s->used, fresh, n);
    if (!ivq_flip_map_at(s->window + (size_t)first * IVQ_PAGE,
                         s->region_fd, fresh, n)) {
        error_report("ivq '%s': cannot remap its send area after a flip: "
                     "%s", s->name, strerror(errno));
    }
    for (i = 0; i < n; i++) {
        s->send_backing[first + i] = fresh + i;
    }
    for (i = 0; i < nr; i++) {
        s->lent[s->lent_runs++] = (IvqFlipLent) {
            .page = runs[i].page, .npages = runs[i].npages, .borrower = dst,
            .gen = dst == s->id ? 0 : s->peers[dst].gen,
        };
    }
    *flipped = true;
    trace_ivq_flip_send(s->name, dst, n, nr);
    return IVQ_ST_OK;

fallback:
    s->flip_fallbacks++;
copy:
    h->flags = IVQ_HDR_F_COPY;
    return ivq_ring_push(ring, h, s->window + off + IVQ_HDR_SIZE);
}

/* The lender's memfd and geometry for descriptor @d, or -1. */
static int ivq_flip_lender_fd(IvqState *s, const IvqFlipDesc *d,
                              const IvqRing **r)
{
    IvqPeer *p;

    if (d->lender == s->id) {
        *r = &s->ring;
        return s->region_fd;
    }
    if (d->lender >= IVQ_MAX_PEERS) {
        return -1;
    }
    p = &s->peers[d->lender];
    if (p->state != IVQ_PEER_UP || p->region_fd < 0) {
        return -1;
    }
    *r = &p->ring;
    return p->region_fd;
}

/*
 * Maps the pages of flipped messages that peers pushed since last time
 * over our queue's slots.  Before the guest learns of the records: with
 * the indices it reads (after them: a sender moves the descriptors
 * before the tail) and before INT_RX.
 */
void ivq_flip_apply(IvqState *s)
{
    IvqRegionCtl *ctl = s->ring.ctl;
    uint32_t fh = ctl->fhead, ft = qatomic_load_acquire(&ctl->ftail);

    assert(bql_locked());
    if (fh == ft) {
        return;
    }
    if (ft - fh > IVQ_FLIP_DESCS) {
        error_report("ivq '%s': corrupt flip descriptors (%" PRIu32
                     " .. %" PRIu32 ")", s->name, fh, ft);
        qatomic_store_release(&ctl->fhead, ft);
        return;
    }
    for (; fh != ft; fh++) {
        IvqFlipDesc d = ctl->flip[fh % IVQ_FLIP_DESCS];
        const IvqRing *lr = NULL;
        int fd = ivq_flip_lender_fd(s, &d, &lr);

        if (s->held_tail - s->held_head == s->held_cap) {
            error_report("ivq '%s': more flip descriptors than queue pages",
                         s->name);
            break;
        }
        if (fd < 0 || !ivq_flip_lendable(lr, d.page, d.npages) ||
            d.pos % IVQ_PAGE ||
            (uint64_t)d.pos + (uint64_t)d.npages * IVQ_PAGE > s->ring.size ||
            !ivq_flip_map_at(s->window + s->send_size + d.pos, fd, d.page,
                             d.npages)) {
            error_report("ivq '%s': cannot map flipped pages %" PRIu32
                         "+%" PRIu32 " of peer %" PRIu32, s->name, d.page,
                         d.npages, d.lender);
            d.page = 0;             /* not mapped: nothing to put back */
            d.lender = IVQ_NO_PEER;
        }
        s->held[s->held_tail++ % s->held_cap] = d;
    }
    qatomic_store_release(&ctl->fhead, fh);
}

/*
 * Held descriptor @d's slots show our own queue pages again; its pages go
 * back to their lender.
 */
static void ivq_flip_put_back(IvqState *s, const IvqFlipDesc *d)
{
    IvqFlipRun run = { .page = d->page, .npages = d->npages };
    uint32_t ring_page = (IVQ_CTL_SIZE + s->send_size + d->pos) / IVQ_PAGE;

    if (!d->page) {
        return;
    }
    if (!ivq_flip_map_at(s->window + s->send_size + d->pos, s->region_fd,
                         ring_page, d->npages)) {
        error_report("ivq '%s': cannot put its queue pages back: %s",
                     s->name, strerror(errno));
    }
    if (d->lender == s->id) {
        ivq_ring_return(&s->ring, &run);
    } else if (d->lender < IVQ_MAX_PEERS &&
               s->peers[d->lender].state == IVQ_PEER_UP) {
        ivq_ring_return(&s->peers[d->lender].ring, &run);
    }
    trace_ivq_flip_release(s->name, d->lender, d->npages);
}

/*
 * The guest popped (or a reset dropped) the records in [@from, @to): our
 * own queue pages go back over their slots, the lent ones to their
 * lender.
 */
void ivq_flip_release(IvqState *s, uint32_t from, uint32_t to)
{
    assert(bql_locked());
    while (s->held_head != s->held_tail) {
        IvqFlipDesc *d = &s->held[s->held_head % s->held_cap];

        if (d->rec - from >= to - from) {
            break;
        }
        s->held_head++;
        ivq_flip_put_back(s, d);
    }
}

/*
 * Unrealize: every page we were lent goes back now, while we are still
 * connected (the queue's records stay, over our own pages).
 */
void ivq_flip_release_all(IvqState *s)
{
    assert(bql_locked());
    ivq_flip_apply(s);
    while (s->held_head != s->held_tail) {
        ivq_flip_put_back(s, &s->held[s->held_head++ % s->held_cap]);
    }
}

/*
 * Peer @id went away.  As a lender: its pages stay mapped here until
 * popped, given back to no one.  As a borrower: what we lent it is ours
 * again once its process is gone (its alive lock owner-dead), which may
 * be after its connection closed (a QEMU that quits closes its sockets
 * first), and never while it is only disconnected (a broker restart: it
 * may still show them to its guest).  True if its region stays mapped,
 * in s->gone, until then.
 */
bool ivq_flip_peer_gone(IvqState *s, uint32_t id)
{
    IvqPeer *p = &s->peers[id];
    bool lent = false;
    uint32_t i;

    for (i = s->held_head; i != s->held_tail; i++) {
        IvqFlipDesc *d = &s->held[i % s->held_cap];

        if (d->lender == id) {
            d->lender = IVQ_NO_PEER;
        }
    }
    for (i = 0; i < s->lent_runs; i++) {
        lent |= s->lent[i].borrower == id && s->lent[i].gen == p->gen;
    }
    if (!lent) {
        return false;
    }
    if (ivq_ring_owner_dead(&p->ring)) {
        ivq_flip_reclaim(s, id, p->gen);
        return false;
    }
    if (s->ngone == ARRAY_SIZE(s->gone)) {
        return false;               /* lent for good */
    }
    s->gone[s->ngone++] = (IvqFlipGone) {
        .id = id, .gen = p->gen, .map = p->map, .map_size = p->map_size,
        .ring = p->ring,
    };
    return true;
}

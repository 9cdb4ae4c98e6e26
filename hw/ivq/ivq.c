/*
 * qemu-tiers inter-VM queues: the ivq PCI device.
 *
 *   -chardev socket,id=B,path=/run/ivq-broker.sock[,reconnect-ms=1000]
 *   -device ivq,chardev=B,name=NAME[,send-size=N][,queue-size=N]
 *           [,flip-threshold=auto|never|SIZE][,iothread=IOTHREAD]
 *
 * BAR0: registers (ivq-internal.h, docs/intervm-queues.rst); BAR1: MSI-X
 * (one vector; INTx when the guest has not enabled MSI-X); BAR2: the
 * message window, the send area then the receive queue, backed by this
 * device's region (a memfd that ivq-broker hands to every peer's QEMU).
 *
 * A send copies records from the send area into the destination's
 * receive queue with a header the VMM writes (the sender's id from the
 * broker, never from the guest), then rings the destination's doorbell.
 * Doorbell "exit" sends in the MMIO write; doorbell "no exit" is an
 * ioeventfd (no userspace exit under KVM), the send runs in the main loop,
 * or in the iothread named by the property iothread (with the BQL).
 *
 * Page flip (flip-threshold, ivq-flip.c): a message of whole pages at a
 * page of the send area, at least flip-threshold bytes, moves its pages
 * to the receiver instead of being copied.
 *
 * Locking: the BQL for all device state (ivq-internal.h).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memfd.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/blocker.h"
#include "migration/vmstate.h"
#include "block/aio.h"
#include "system/iothread.h"
#include "ivq-internal.h"
#include "trace.h"

#define IVQ_HDR_SIZE    ((uint32_t)sizeof(IvqMsgHeader))

static const char *const ivq_status_name[IVQ_ST__MAX] = {
    [IVQ_ST_OK] = "ok",
    [IVQ_ST_UNKNOWN_PEER] = "unknown-peer",
    [IVQ_ST_TOO_BIG] = "too-big",
    [IVQ_ST_QUEUE_FULL] = "queue-full",
    [IVQ_ST_BAD_VALUE] = "bad-value",
    [IVQ_ST_PEER_DOWN] = "peer-down",
};

static void ivq_update_irq(IvqState *s, uint32_t new_bits)
{
    PCIDevice *d = PCI_DEVICE(s);

    assert(bql_locked());
    if (msix_enabled(d)) {
        if (new_bits & s->int_mask) {
            msix_notify(d, 0);
        }
        pci_set_irq(d, 0);
    } else {
        pci_set_irq(d, !!(s->int_status & s->int_mask));
    }
}

void ivq_raise(IvqState *s, uint32_t bits)
{
    uint32_t fresh = bits & ~s->int_status;

    s->int_status |= bits;
    trace_ivq_irq(s->name, s->int_status, s->int_mask);
    ivq_update_irq(s, fresh);
}

/* Guest nonsense: logged, counted, refused. */
static void ivq_guest_error(IvqState *s, const char *what, hwaddr addr,
                            uint64_t val)
{
    qemu_log_mask(LOG_GUEST_ERROR, "ivq '%s': %s (register 0x%" HWADDR_PRIx
                  ", value 0x%" PRIx64 ")\n", s->name, what, addr, val);
    s->guest_errors++;
    s->errors[IVQ_ST_BAD_VALUE]++;
    s->status = IVQ_ST_BAD_VALUE;
}

/* The destination's queue, or NULL and why not. */
static IvqRing *ivq_dest_ring(IvqState *s, uint32_t dst, uint32_t *st)
{
    IvqPeer *p;

    if (!s->connected) {
        *st = IVQ_ST_PEER_DOWN;
        return NULL;
    }
    if (dst == s->id) {
        return &s->ring;
    }
    if (dst >= IVQ_MAX_PEERS || s->peers[dst].state == IVQ_PEER_NONE) {
        *st = IVQ_ST_UNKNOWN_PEER;
        return NULL;
    }
    p = &s->peers[dst];
    if (p->state != IVQ_PEER_UP) {
        *st = IVQ_ST_PEER_DOWN;
        return NULL;
    }
    return &p->ring;
}

/*
 * One send: @regs->count records from the send area at @regs->off.  A
 * single record goes to SEND_DEST with SEND_LEN bytes; in a batch each
 * record's own header says where and how long.  Stops at the first
 * failure: SEND_DONE says how many went, STATUS why the rest did not.
 */
static void ivq_send(IvqState *s, const IvqSendRegs *regs, bool exit)
{
    uint8_t *area = s->window;
    uint32_t off = regs->off, done = 0, st = IVQ_ST_OK, i;
    uint64_t bytes[2] = { 0, 0 }, msgs[2] = { 0, 0 };
    bool kick_self = false, flipped;

    assert(bql_locked());
    for (i = 0; i < regs->count; i++) {
        IvqMsgHeader g, h;
        IvqRing *ring;
        uint32_t dst, len;

        if (off % IVQ_REC_ALIGN || off > s->send_size - IVQ_HDR_SIZE) {
            st = IVQ_ST_BAD_VALUE;
            break;
        }
        /* The guest's header, read once; only dst, len, tag are used. */
        memcpy(&g, area + off, sizeof(g));
        dst = regs->count == 1 ? regs->dest : g.dst;
        len = regs->count == 1 ? regs->len : g.len;
        ring = ivq_dest_ring(s, dst, &st);
        if (!ring) {
            break;
        }
        if (len > ivq_ring_max_payload(ring)) {
            st = IVQ_ST_TOO_BIG;
            break;
        }
        if (len > s->send_size - off - IVQ_HDR_SIZE) {
            st = IVQ_ST_BAD_VALUE;
            break;
        }
        h = (IvqMsgHeader) {
            .src = s->id,       /* the broker's id: a forged one is lost */
            .dst = dst,
            .len = len,
            .tag = g.tag,
            .seq = s->seq + 1,
        };
        st = ivq_flip_send(s, dst, ring, &h, off, &flipped);
        if (st != IVQ_ST_OK) {
            break;
        }
        s->seq++;
        done++;
        msgs[flipped]++;
        bytes[flipped] += len;
        if (dst == s->id) {
            kick_self = true;
        } else {
            s->peers[dst].kick = true;
        }
        off += ROUND_UP(IVQ_HDR_SIZE + len, IVQ_REC_ALIGN);
    }
    for (i = 0; i < IVQ_MAX_PEERS; i++) {
        IvqPeer *p = &s->peers[i];
        uint64_t one = 1;

        if (p->kick && p->doorbell_fd >= 0 &&
            write(p->doorbell_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is saturated, the peer will look. */
        }
        p->kick = false;
    }
    if (kick_self) {
        /*
         * Our own queue grew, and we hold the BQL: raise INT_RX now
         * rather than through our doorbell, which would cost the main
         * loop a second wake-up per send (bench/ivq.py: +13 us a
         * DB_NOEXIT send under TCG).  Flipped pages first.
         */
        ivq_flip_apply(s);
        ivq_raise(s, IVQ_INT_RX);
    }
    for (i = 0; i < 2; i++) {
        s->tx_msgs[i] += msgs[i];
        s->tx_bytes[i] += bytes[i];
    }
    if (st != IVQ_ST_OK) {
        s->errors[st]++;
    }
    s->status = st;
    s->send_done = done;
    s->sends++;
    trace_ivq_send(s->name, exit, regs->count, done, ivq_status_name[st]);
}

/* Doorbell "no exit" rang (an ioeventfd, or the write handler).  BQL. */
static void ivq_noexit_notify(EventNotifier *e)
{
    IvqState *s = container_of(e, IvqState, db_noexit);
    IvqSendRegs regs;

    assert(bql_locked());
    if (!event_notifier_test_and_clear(e)) {
        return;
    }
    regs = s->send;
    ivq_send(s, &regs, false);
    ivq_raise(s, IVQ_INT_SENT);
}

/* The same, served by the device's iothread: without the BQL until here. */
static void ivq_noexit_notify_iothread(EventNotifier *e)
{
    BQL_LOCK_GUARD();
    ivq_noexit_notify(e);
}

static void ivq_noexit_serve(IvqState *s, bool on)
{
    if (s->iothread) {
        aio_set_event_notifier(iothread_get_aio_context(s->iothread),
                               &s->db_noexit,
                               on ? ivq_noexit_notify_iothread : NULL,
                               NULL, NULL);
    } else {
        event_notifier_set_handler(&s->db_noexit,
                                   on ? ivq_noexit_notify : NULL);
    }
}

/* A peer (or this device) added to our receive queue. */
static void ivq_doorbell_notify(EventNotifier *e)
{
    IvqState *s = container_of(e, IvqState, doorbell);

    if (event_notifier_test_and_clear(e)) {
        ivq_flip_apply(s);
        ivq_raise(s, IVQ_INT_RX);
    }
}

static uint32_t ivq_max_msg(IvqState *s)
{
    return MIN(s->send_size - IVQ_HDR_SIZE, ivq_ring_max_payload(&s->ring));
}

static uint64_t ivq_read(void *opaque, hwaddr addr, unsigned size)
{
    IvqState *s = opaque;
    uint32_t head, tail, count;

    assert(bql_locked());
    ivq_ring_indices(&s->ring, &head, &tail, &count);
    /* After the indices: every flipped record they show is mapped. */
    ivq_flip_apply(s);
    switch (addr) {
    case IVQ_REG_ID:
        return s->connected ? s->id : IVQ_NO_PEER;
    case IVQ_REG_PEERS:
        return ivq_peers_up(s);
    case IVQ_REG_STATUS:
        return s->status;
    case IVQ_REG_SEND_DONE:
        return s->send_done;
    case IVQ_REG_SEND_DEST:
        return s->send.dest;
    case IVQ_REG_SEND_LEN:
        return s->send.len;
    case IVQ_REG_SEND_OFF:
        return s->send.off;
    case IVQ_REG_SEND_COUNT:
        return s->send.count;
    case IVQ_REG_SENDS:
        return s->sends;
    case IVQ_REG_RX_HEAD:
        return head;
    case IVQ_REG_RX_TAIL:
        return tail;
    case IVQ_REG_RX_COUNT:
        return count;
    case IVQ_REG_INT_STATUS:
        return s->int_status;
    case IVQ_REG_INT_MASK:
        return s->int_mask;
    case IVQ_REG_MAX_MSG:
        return ivq_max_msg(s);
    case IVQ_REG_SEND_SIZE:
        return s->send_size;
    case IVQ_REG_RX_OFF:
        return s->send_size;
    case IVQ_REG_RX_SIZE:
        return s->queue_size;
    case IVQ_REG_ERRORS: {
        uint64_t n = 0;
        int i;

        for (i = 1; i < IVQ_ST__MAX; i++) {
            n += s->errors[i];
        }
        return n;
    }
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "ivq '%s': read of unknown register "
                      "0x%" HWADDR_PRIx "\n", s->name, addr);
        s->guest_errors++;
        return 0;
    }
}

static void ivq_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    IvqState *s = opaque;
    uint64_t bytes = 0, fmsgs = 0, fbytes = 0;
    uint32_t st, from, to;

    assert(bql_locked());
    switch (addr) {
    case IVQ_REG_SEND_DEST:
        s->send.dest = val;
        break;
    case IVQ_REG_SEND_LEN:
        s->send.len = val;
        break;
    case IVQ_REG_SEND_OFF:
        if (val % IVQ_REC_ALIGN || val > s->send_size - IVQ_HDR_SIZE) {
            ivq_guest_error(s, "SEND_OFF outside the send area", addr, val);
            break;
        }
        s->send.off = val;
        break;
    case IVQ_REG_SEND_COUNT:
        if (val == 0 || val > s->send_size / IVQ_REC_ALIGN) {
            ivq_guest_error(s, "bad SEND_COUNT", addr, val);
            break;
        }
        s->send.count = val;
        break;
    case IVQ_REG_DB_EXIT:
        ivq_send(s, &s->send, true);
        break;
    case IVQ_REG_DB_NOEXIT:
        /* Only without the ioeventfd: same path, later. */
        event_notifier_set(&s->db_noexit);
        break;
    case IVQ_REG_RX_POP:
        ivq_flip_apply(s);
        st = ivq_ring_pop(&s->ring, val, &bytes, &fmsgs, &fbytes, &from,
                          &to);
        if (st != IVQ_ST_OK) {
            ivq_guest_error(s, "RX_POP of more than is queued", addr, val);
            break;
        }
        ivq_flip_release(s, from, to);
        s->rx_msgs[IVQ_MODE_COPY] += val - fmsgs;
        s->rx_bytes[IVQ_MODE_COPY] += bytes - fbytes;
        s->rx_msgs[IVQ_MODE_FLIP] += fmsgs;
        s->rx_bytes[IVQ_MODE_FLIP] += fbytes;
        s->status = IVQ_ST_OK;
        break;
    case IVQ_REG_INT_STATUS:
        s->int_status &= ~val;
        ivq_update_irq(s, 0);
        break;
    case IVQ_REG_INT_MASK:
        if (val & ~IVQ_INT_ALL) {
            ivq_guest_error(s, "unknown INT_MASK bits", addr, val);
            break;
        }
        s->int_mask = val;
        ivq_update_irq(s, s->int_status & val);
        break;
    default:
        ivq_guest_error(s, "write to a read-only or unknown register", addr,
                        val);
        break;
    }
}

static const MemoryRegionOps ivq_bar0_ops = {
    .read = ivq_read,
    .write = ivq_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* The region: control page and window, zeroed, the queue ready. */
static bool ivq_region_create(IvqState *s, Error **errp)
{
    uint32_t pool_page;

    s->bar2_size = pow2ceil((uint64_t)s->send_size + s->queue_size);
    /* After BAR2, the flip pool: as many pages as the send area. */
    pool_page = (IVQ_CTL_SIZE + s->bar2_size) / IVQ_PAGE;
    s->region_size = IVQ_CTL_SIZE + s->bar2_size + s->send_size;
    /* Sealed: a peer that maps it can trust its size (no SIGBUS). */
    s->region_fd = qemu_memfd_create("qemu-tiers-ivq", s->region_size, false,
                                     0, F_SEAL_GROW | F_SEAL_SHRINK |
                                     F_SEAL_SEAL, errp);
    if (s->region_fd < 0) {
        return false;
    }
    s->region = mmap(NULL, s->region_size, PROT_READ | PROT_WRITE,
                     MAP_SHARED, s->region_fd, 0);
    if (s->region == MAP_FAILED) {
        s->region = NULL;
        error_setg_errno(errp, errno, "ivq '%s': cannot map its region",
                         s->name);
        close(s->region_fd);
        s->region_fd = -1;
        return false;
    }
    ivq_ring_init_ctl((IvqRegionCtl *)s->region, s->send_size,
                      s->queue_size, pool_page, s->send_size / IVQ_PAGE);
    if (!ivq_ring_attach(&s->ring, s->region, s->region_size) ||
        !ivq_ring_hold_alive(&s->ring)) {
        error_setg(errp, "ivq '%s': bad queue geometry", s->name);
        return false;
    }
    return true;
}

static void ivq_region_free(IvqState *s)
{
    if (s->ring.ctl) {
        ivq_ring_drop_alive(&s->ring);
        s->ring.ctl = NULL;
    }
    if (s->region) {
        munmap(s->region, s->region_size);
        s->region = NULL;
    }
    if (s->region_fd >= 0) {
        close(s->region_fd);
        s->region_fd = -1;
    }
}

static bool ivq_check_props(IvqState *s, Error **errp)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);

    if (!chr) {
        error_setg(errp, "ivq: 'chardev' (a socket to ivq-broker) is "
                   "required");
        return false;
    }
    if (!object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)) {
        error_setg(errp, "ivq: chardev '%s' is not a socket (ivq-broker "
                   "passes file descriptors)", chr->label);
        return false;
    }
    if (!s->name || !s->name[0] || strlen(s->name) >= IVQ_NAME_MAX) {
        error_setg(errp, "ivq: 'name' is required, 1 to %d characters",
                   IVQ_NAME_MAX - 1);
        return false;
    }
    if (!is_power_of_2(s->send_size) || s->send_size < 4 * KiB ||
        s->send_size > 64 * MiB) {
        error_setg(errp, "ivq '%s': send-size must be a power of two from "
                   "4 KiB to 64 MiB", s->name);
        return false;
    }
    if (!is_power_of_2(s->queue_size) || s->queue_size < 4 * KiB ||
        s->queue_size > 64 * MiB) {
        error_setg(errp, "ivq '%s': queue-size must be a power of two from "
                   "4 KiB to 64 MiB", s->name);
        return false;
    }
    return true;
}

static void ivq_realize(PCIDevice *d, Error **errp)
{
    IvqState *s = IVQ(d);

    s->region_fd = -1;
    if (!ivq_check_props(s, errp)) {
        return;
    }
    if (!ivq_region_create(s, errp)) {
        goto fail_region;
    }
    /*
     * The window is the region's memfd mapped again, as the guest's RAM:
     * a flip remaps its pages, and RAS refuses to retire pages of file
     * memory (another mapper, the peers, would keep the old page).
     */
    if (!memory_region_init_ram_from_fd(&s->bar2, OBJECT(s), "ivq-window",
                                        s->bar2_size, RAM_SHARED,
                                        s->region_fd, IVQ_CTL_SIZE, errp)) {
        goto fail_region;
    }
    s->window = memory_region_get_ram_ptr(&s->bar2);
    if (!ivq_flip_init(s, errp)) {
        goto fail_window;
    }
    if (event_notifier_init(&s->doorbell, 0) < 0) {
        error_setg_errno(errp, errno, "ivq '%s': cannot create its doorbell",
                         s->name);
        goto fail_window;
    }
    if (event_notifier_init(&s->db_noexit, 0) < 0) {
        error_setg_errno(errp, errno, "ivq '%s': cannot create its no-exit "
                         "doorbell", s->name);
        goto fail_doorbell;
    }
    if (msix_init_exclusive_bar(d, 1, 1, errp)) {
        goto fail_noexit;
    }
    msix_vector_use(d, 0);
    d->config[PCI_INTERRUPT_PIN] = 1;

    memory_region_init_io(&s->bar0, OBJECT(s), &ivq_bar0_ops, s,
                          "ivq-regs", IVQ_BAR0_SIZE);
    memory_region_add_eventfd(&s->bar0, IVQ_REG_DB_NOEXIT, 4, false, 0,
                              &s->db_noexit);
    pci_register_bar(d, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->bar0);

    vmstate_register_ram(&s->bar2, DEVICE(s));
    pci_register_bar(d, 2, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->bar2);

    event_notifier_set_handler(&s->doorbell, ivq_doorbell_notify);
    ivq_noexit_serve(s, true);
    s->id = s->want_id = IVQ_NO_PEER;
    s->send.count = 1;
    ivq_link_init(s);
    trace_ivq_realize(s->name, s->send_size, s->queue_size);
    return;

fail_noexit:
    event_notifier_cleanup(&s->db_noexit);
fail_doorbell:
    event_notifier_cleanup(&s->doorbell);
fail_window:
    ivq_flip_cleanup(s);
    object_unparent(OBJECT(&s->bar2));
fail_region:
    ivq_region_free(s);
}

static void ivq_exit(PCIDevice *d)
{
    IvqState *s = IVQ(d);

    /* What peers lent us goes back while they are still ours to reach. */
    ivq_flip_release_all(s);
    ivq_link_cleanup(s);
    /*
     * The broker learns we are gone when our socket closes: without
     * this, an unplugged device's peers would go on sending to it.
     */
    qemu_chr_fe_disconnect(&s->chr);
    event_notifier_set_handler(&s->doorbell, NULL);
    ivq_noexit_serve(s, false);
    memory_region_del_eventfd(&s->bar0, IVQ_REG_DB_NOEXIT, 4, false, 0,
                              &s->db_noexit);
    event_notifier_cleanup(&s->db_noexit);
    event_notifier_cleanup(&s->doorbell);
    msix_uninit_exclusive_bar(d);
    vmstate_unregister_ram(&s->bar2, DEVICE(s));
    ivq_flip_cleanup(s);
    ivq_region_free(s);
}

static void ivq_reset(DeviceState *dev)
{
    IvqState *s = IVQ(dev);
    uint32_t from, to;

    s->int_status = 0;
    s->int_mask = 0;
    s->status = IVQ_ST_OK;
    s->send_done = 0;
    s->send = (IvqSendRegs) { .dest = 0, .count = 1 };
    /* A reset guest starts with an empty queue. */
    ivq_flip_apply(s);
    ivq_ring_flush(&s->ring, &from, &to);
    ivq_flip_release(s, from, to);
    ivq_update_irq(s, 0);
}

/*
 * Migration: refused while connected to the broker (ivq-link.c adds the
 * blocker on WELCOME); a disconnected device migrates its registers and
 * its window, with the queue's indices.
 */
static int ivq_pre_save(void *opaque)
{
    IvqState *s = opaque;

    ivq_ring_indices(&s->ring, &s->mig_head, &s->mig_tail, &s->mig_count);
    return 0;
}

static int ivq_post_load(void *opaque, int version_id)
{
    IvqState *s = opaque;
    IvqRegionCtl *ctl = s->ring.ctl;

    if (s->mig_tail - s->mig_head > s->queue_size ||
        s->mig_head % IVQ_REC_ALIGN || s->mig_tail % IVQ_REC_ALIGN ||
        s->int_mask & ~IVQ_INT_ALL || s->send.count == 0 ||
        s->send.off % IVQ_REC_ALIGN || s->send.off >= s->send_size) {
        error_report("ivq '%s': inconsistent migrated state", s->name);
        return -EINVAL;
    }
    ctl->head = s->mig_head;
    ctl->tail = s->mig_tail;
    ctl->count = s->mig_count;
    ivq_update_irq(s, 0);
    return 0;
}

static const VMStateDescription ivq_vmstate = {
    .name = TYPE_IVQ,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = ivq_pre_save,
    .post_load = ivq_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IvqState),
        VMSTATE_MSIX(parent_obj, IvqState),
        VMSTATE_UINT32(status, IvqState),
        VMSTATE_UINT32(send_done, IvqState),
        VMSTATE_UINT32(sends, IvqState),
        VMSTATE_UINT32(send.dest, IvqState),
        VMSTATE_UINT32(send.len, IvqState),
        VMSTATE_UINT32(send.off, IvqState),
        VMSTATE_UINT32(send.count, IvqState),
        VMSTATE_UINT32(int_status, IvqState),
        VMSTATE_UINT32(int_mask, IvqState),
        VMSTATE_UINT64(seq, IvqState),
        VMSTATE_UINT32(mig_head, IvqState),
        VMSTATE_UINT32(mig_tail, IvqState),
        VMSTATE_UINT32(mig_count, IvqState),
        VMSTATE_END_OF_LIST()
    },
};

static const Property ivq_properties[] = {
    DEFINE_PROP_CHR("chardev", IvqState, chr),
    DEFINE_PROP_STRING("name", IvqState, name),
    DEFINE_PROP_UINT32("send-size", IvqState, send_size, 256 * KiB),
    DEFINE_PROP_UINT32("queue-size", IvqState, queue_size, 256 * KiB),
    DEFINE_PROP_STRING("flip-threshold", IvqState, flip_threshold),
    DEFINE_PROP_LINK("iothread", IvqState, iothread, TYPE_IOTHREAD,
                     IOThread *),
};

static void ivq_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = ivq_realize;
    k->exit = ivq_exit;
    k->vendor_id = IVQ_PCI_VENDOR;
    k->device_id = IVQ_PCI_DEVICE;
    k->class_id = PCI_CLASS_MEMORY_RAM;
    k->revision = 1;
    device_class_set_legacy_reset(dc, ivq_reset);
    device_class_set_props(dc, ivq_properties);
    dc->vmsd = &ivq_vmstate;
    dc->desc = "qemu-tiers inter-VM queue";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo ivq_info = {
    .name = TYPE_IVQ,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(IvqState),
    .class_init = ivq_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void ivq_register_types(void)
{
    type_register_static(&ivq_info);
}

type_init(ivq_register_types)

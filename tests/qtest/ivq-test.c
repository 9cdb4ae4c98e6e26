/*
 * qtest of inter-VM queues (the ivq device and ivq-broker): two QEMUs
 * (qtest, no guest OS) and the broker, in the style of QEMU's
 * ivshmem-test.  Ordering, the sender id stamped by the VMM (a forged
 * one is overwritten), no loss over 10^6 messages of mixed sizes, both
 * doorbells, flow control at a full queue, a peer killed mid-stream
 * (PEER_DOWN and IVQ_PEER_DOWN on the other side), a broker restart,
 * migration refused while connected, and bad input that gets its status
 * and changes nothing.
 *
 * Needs ivq-broker: QT_IVQ_BROKER (set by the top-level meson.build);
 * skips without it.  QT_IVQ_MESSAGES overrides the 10^6 of /ivq/no-loss.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/prctl.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include "qemu/host-utils.h"
#include "libqtest.h"
#include "tiers-qtest.h"
#include "libqos/libqos-pc.h"
#include "libqos/pci.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "../../hw/ivq/ivq-proto.h"

/* Registers (docs/intervm-queues.rst; hw/ivq/ivq-internal.h). */
enum {
    ID = 0x00, PEERS = 0x04, STATUS = 0x08, SEND_DONE = 0x0c,
    SEND_DEST = 0x10, SEND_LEN = 0x14, SEND_OFF = 0x18, SEND_COUNT = 0x1c,
    DB_EXIT = 0x20, DB_NOEXIT = 0x24, SENDS = 0x28, RX_HEAD = 0x2c,
    RX_TAIL = 0x30, RX_POP = 0x34, RX_COUNT = 0x38, INT_STATUS = 0x3c,
    INT_MASK = 0x40, MAX_MSG = 0x44, SEND_SIZE = 0x48, RX_OFF = 0x4c,
    RX_SIZE = 0x50, ERRORS = 0x54,
};
enum { OK, UNKNOWN_PEER, TOO_BIG, QUEUE_FULL, BAD_VALUE, PEER_DOWN };
#define INT_RX      1
#define INT_PEER    2
#define INT_SENT    4
#define HDR         ((uint32_t)sizeof(IvqMsgHeader))
#define FORGED      0xdeadbeefu
#define SLOT        4           /* PCI slot of the ivq device */

typedef struct Vm {
    QOSState *qs;
    QTestState *qts;
    QPCIDevice *dev;
    QPCIBar reg, win;
    uint32_t id, send_size, rx_off, rx_size;
} Vm;

typedef struct Env {
    char *dir, *sock;
    GPid broker;
    Vm a, b;
} Env;

static const char *broker_path;

static void child_dies_with_us(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GPid spawn(char **argv)
{
    g_autoptr(GError) err = NULL;
    GPid pid;

    g_assert_true(g_spawn_async(NULL, argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                G_SPAWN_STDOUT_TO_DEV_NULL,
                                child_dies_with_us, NULL, &pid, &err));
    return pid;
}

static void reap(GPid pid, int sig)
{
    kill(pid, sig);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
}

/* The broker, letting in only @uid (ours, unless a test says). */
static void broker_start_uid(Env *e, uid_t uid)
{
    g_autofree char *u = g_strdup_printf("%u", (unsigned)uid);
    char *argv[] = { (char *)broker_path, (char *)"-s", e->sock,
                     (char *)"-u", u, (char *)"-q", NULL };
    int i;

    e->broker = spawn(argv);
    for (i = 0; i < 500 && !g_file_test(e->sock, G_FILE_TEST_EXISTS); i++) {
        g_usleep(10000);
    }
    g_assert_true(g_file_test(e->sock, G_FILE_TEST_EXISTS));
}

static void broker_start(Env *e)
{
    broker_start_uid(e, getuid());
}

static uint32_t rd(Vm *v, uint32_t reg)
{
    return qpci_io_readl(v->dev, v->reg, reg);
}

static void wr(Vm *v, uint32_t reg, uint32_t val)
{
    qpci_io_writel(v->dev, v->reg, reg, val);
}

/* Polls @reg until (value & mask) == want; false after about 10 s. */
static bool wait_reg(Vm *v, uint32_t reg, uint32_t mask, uint32_t want)
{
    int i;

    for (i = 0; i < 10000; i++) {
        if ((rd(v, reg) & mask) == want) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

/* The device's BARs mapped, its geometry read. */
static void vm_map(Vm *v)
{
    uint64_t size;

    v->qts = v->qs->qts;
    v->dev = qpci_device_find(v->qs->pcibus, QPCI_DEVFN(SLOT, 0));
    g_assert_nonnull(v->dev);
    g_assert_cmphex(qpci_config_readw(v->dev, PCI_VENDOR_ID), ==, 0x1234);
    g_assert_cmphex(qpci_config_readw(v->dev, PCI_DEVICE_ID), ==, 0x11e9);
    v->reg = qpci_iomap(v->dev, 0, &size);
    g_assert_cmpuint(size, ==, 0x100);
    v->win = qpci_iomap(v->dev, 2, &size);
    qpci_device_enable(v->dev);
    v->send_size = rd(v, SEND_SIZE);
    v->rx_off = rd(v, RX_OFF);
    v->rx_size = rd(v, RX_SIZE);
    g_assert_cmpuint(v->rx_off + v->rx_size, <=, size);
}

#define VM_ARGS "-machine pc -m 32 -nodefaults -chardev socket,id=brk,path="
#define VM_DEV  "-device ivq,chardev=brk,id=q,addr=4.0,name="

/* A VM connected to the broker (its ID known). */
static void vm_start(Env *e, Vm *v, const char *name, const char *chr_opts,
                     const char *dev_opts)
{
    v->qs = qtest_pc_boot(VM_ARGS "%s%s " VM_DEV "%s%s", e->sock, chr_opts,
                          name, dev_opts);
    vm_map(v);
    g_assert_true(wait_reg(v, ID, 0x80000000, 0));
    v->id = rd(v, ID);
}

static void vm_stop(Vm *v)
{
    if (v->qs) {
        g_free(v->dev);
        qtest_shutdown(v->qs);
        v->qs = NULL;
    }
}

/* Broker and two VMs that see each other. */
static Env *env_start(const char *chr_opts, const char *dev_opts)
{
    Env *e = g_new0(Env, 1);

    e->dir = g_dir_make_tmp("ivq-test-XXXXXX", NULL);
    e->sock = g_build_filename(e->dir, "broker.sock", NULL);
    broker_start(e);
    vm_start(e, &e->a, "vm-a", chr_opts, dev_opts);
    vm_start(e, &e->b, "vm-b", chr_opts, dev_opts);
    g_assert_cmpuint(e->a.id, !=, e->b.id);
    g_assert_true(wait_reg(&e->a, PEERS, ~0u,
                           (1u << e->a.id) | (1u << e->b.id)));
    return e;
}

static void env_stop(Env *e)
{
    vm_stop(&e->a);
    vm_stop(&e->b);
    if (e->broker) {
        reap(e->broker, SIGTERM);
    }
    g_remove(e->sock);
    g_rmdir(e->dir);
    g_free(e->sock);
    g_free(e->dir);
    g_free(e);
}

/* The payload of message @idx: 32-bit words that name it. */
static void pattern(uint8_t *p, uint32_t len, uint64_t idx)
{
    uint32_t w = (uint32_t)idx * 0x9e3779b1u, i;

    for (i = 0; i < len; i++) {
        p[i] = (w + i / 4 * 0x01000193u) >> (8 * (i % 4));
    }
}

/* A record in the send area's format, with a forged sender id. */
static uint32_t put_record(uint8_t *buf, uint32_t dst, uint32_t len,
                           uint32_t tag, uint64_t idx)
{
    IvqMsgHeader h = {
        .src = FORGED, .dst = dst, .len = len, .tag = tag,
        .seq = 0x1234, .flags = IVQ_HDR_F_FLIP,
    };

    memcpy(buf, &h, sizeof(h));
    pattern(buf + HDR, len, idx);
    return ROUND_UP(HDR + len, IVQ_REC_ALIGN);
}

/*
 * One message to @dst, its record at @off in the send area, the payload
 * pattern(@tag); returns STATUS.
 */
static uint32_t send_at(Vm *v, uint32_t dst, uint32_t off, uint32_t len,
                        uint32_t tag, bool exit)
{
    g_autofree uint8_t *buf = g_malloc0(HDR + len + IVQ_REC_ALIGN);
    uint32_t n = put_record(buf, dst, len, tag, tag), sends = rd(v, SENDS);

    qtest_bufwrite(v->qts, v->win.addr + off, buf, n);
    wr(v, SEND_DEST, dst);
    wr(v, SEND_LEN, len);
    wr(v, SEND_OFF, off);
    wr(v, SEND_COUNT, 1);
    if (exit) {
        wr(v, DB_EXIT, 1);
        g_assert_cmpuint(rd(v, SENDS), ==, sends + 1);
    } else {
        wr(v, DB_NOEXIT, 1);
        g_assert_true(wait_reg(v, SENDS, ~0u, sends + 1));
    }
    return rd(v, STATUS);
}

/* One message to @dst, record at offset 0; returns STATUS. */
static uint32_t send_one(Vm *v, uint32_t dst, uint32_t len, uint32_t tag,
                         bool exit)
{
    return send_at(v, dst, 0, len, tag, exit);
}

typedef struct Msg {
    IvqMsgHeader h;
    uint8_t *data;
} Msg;

/*
 * Reads every message queued at @v (skipping pad records), checks their
 * records add up, pops them.  Returns how many; *@out gets them (free
 * with msgs_free) if not NULL.
 */
static uint32_t recv_all(Vm *v, GArray **out)
{
    uint32_t head = rd(v, RX_HEAD), tail = rd(v, RX_TAIL);
    uint32_t count = rd(v, RX_COUNT), n = 0, mask = v->rx_size - 1;
    g_autofree uint8_t *ring = NULL;
    uint32_t cur;

    if (out) {
        *out = g_array_new(false, true, sizeof(Msg));
    }
    if (!count) {
        return 0;
    }
    g_assert_cmpuint(tail - head, <=, v->rx_size);
    ring = g_malloc(v->rx_size);
    if ((head & mask) < (tail & mask) || head == tail) {
        qtest_bufread(v->qts, v->win.addr + v->rx_off + (head & mask),
                      ring + (head & mask), tail - head);
    } else {
        qtest_bufread(v->qts, v->win.addr + v->rx_off + (head & mask),
                      ring + (head & mask), v->rx_size - (head & mask));
        if (tail & mask) {
            qtest_bufread(v->qts, v->win.addr + v->rx_off, ring, tail & mask);
        }
    }
    for (cur = head; cur != tail;) {
        Msg m;

        memcpy(&m.h, ring + (cur & mask), HDR);
        g_assert_cmpuint(ROUND_UP(HDR + m.h.len, IVQ_REC_ALIGN), <=,
                         tail - cur);
        if (!(m.h.flags & IVQ_HDR_F_PAD)) {
            n++;
            if (out) {
                m.data = g_memdup2(ring + (cur & mask) + HDR, m.h.len);
                g_array_append_val(*out, m);
            }
        }
        cur += ROUND_UP(HDR + m.h.len, IVQ_REC_ALIGN);
    }
    g_assert_cmpuint(n, ==, count);
    wr(v, RX_POP, n);
    g_assert_cmpuint(rd(v, STATUS), ==, OK);
    return n;
}

static void msgs_free(GArray *a)
{
    guint i;

    for (i = 0; i < a->len; i++) {
        g_free(g_array_index(a, Msg, i).data);
    }
    g_array_free(a, true);
}

/*
 * The next @event about peer @id (earlier ones about others dropped).
 * Fails after about 10 s rather than waiting for the test's timeout: a
 * QMP command every 10 ms collects the events that came meanwhile.
 */
static QDict *wait_peer_event(Vm *v, const char *event, uint32_t id)
{
    int i;

    for (i = 0; i < 1000; i++) {
        QDict *ev;

        while ((ev = qtest_qmp_event_ref(v->qts, event))) {
            if (qdict_get_int(qdict_get_qdict(ev, "data"), "peer-id") ==
                id) {
                return ev;
            }
            qobject_unref(ev);
        }
        qobject_unref(qtest_qmp(v->qts, "{ 'execute': 'query-status' }"));
        g_usleep(10000);
    }
    g_test_message("no %s for peer %u in 10 s", event, id);
    g_assert_not_reached();
}

static QDict *ivq_info(Vm *v)
{
    QDict *rsp = qtest_qmp(v->qts, "{ 'execute': 'query-ivq' }");
    QList *l = qdict_get_qlist(rsp, "return");
    QDict *d;

    g_assert_cmpuint(qlist_size(l), ==, 1);
    d = qobject_to(QDict, qlist_peek(l));
    qobject_ref(d);
    qobject_unref(rsp);
    return d;
}

static int64_t info_int(Vm *v, const char *sub, const char *key)
{
    QDict *d = ivq_info(v);
    int64_t n = sub ? qdict_get_int(qdict_get_qdict(d, sub), key)
                    : qdict_get_int(d, key);

    qobject_unref(d);
    return n;
}

/*
 * Ordering and identity: three messages by each doorbell arrive in
 * order, with the sender's id from the broker (not the forged one in the
 * guest's header), the guest's tag, a rising sequence; interrupts by
 * MSI-X (B) and INTx (A).
 */
static void test_order_identity(void)
{
    Env *e = env_start("", "");
    Vm *a = &e->a, *b = &e->b;
    g_autofree char *hmp = NULL, *line = NULL;
    GArray *got;
    uint32_t i;

    qpci_msix_enable(b->dev);
    wr(b, INT_MASK, INT_RX | INT_PEER | INT_SENT);
    wr(b, INT_STATUS, ~0u);
    wr(a, INT_MASK, INT_RX);
    wr(a, INT_STATUS, ~0u);
    g_assert_false(qpci_config_readw(a->dev, PCI_STATUS) &
                   PCI_STATUS_INTERRUPT);

    for (i = 1; i <= 3; i++) {
        g_assert_cmpuint(send_one(a, b->id, 100 * i, i, true), ==, OK);
        g_assert_cmpuint(rd(a, SEND_DONE), ==, 1);
    }
    /* The exit doorbell: queued when the write returned. */
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 3);
    g_assert_true(wait_reg(b, INT_STATUS, INT_RX, INT_RX));
    g_assert_true(qpci_msix_pending(b->dev, 0));
    g_assert_cmpuint(recv_all(b, &got), ==, 3);
    for (i = 0; i < 3; i++) {
        Msg *m = &g_array_index(got, Msg, i);
        uint8_t want[300];

        g_assert_cmphex(m->h.src, ==, a->id);
        g_assert_cmpuint(m->h.dst, ==, b->id);
        g_assert_cmpuint(m->h.tag, ==, i + 1);
        g_assert_cmpuint(m->h.len, ==, 100 * (i + 1));
        g_assert_cmpuint(m->h.seq, ==, i + 1);
        g_assert_cmphex(m->h.flags, ==, IVQ_HDR_F_COPY);
        pattern(want, m->h.len, i + 1);
        g_assert_cmpmem(m->data, m->h.len, want, m->h.len);
    }
    msgs_free(got);
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 0);

    /* The no-exit doorbell, the other way; A's INTx. */
    for (i = 1; i <= 3; i++) {
        g_assert_cmpuint(send_one(b, a->id, i, 10 + i, false), ==, OK);
    }
    g_assert_true(rd(b, INT_STATUS) & INT_SENT);
    g_assert_true(wait_reg(a, RX_COUNT, ~0u, 3));
    g_assert_true(wait_reg(a, INT_STATUS, INT_RX, INT_RX));
    g_assert_true(qpci_config_readw(a->dev, PCI_STATUS) &
                  PCI_STATUS_INTERRUPT);
    wr(a, INT_STATUS, INT_RX);
    g_assert_false(qpci_config_readw(a->dev, PCI_STATUS) &
                   PCI_STATUS_INTERRUPT);
    g_assert_cmpuint(recv_all(a, &got), ==, 3);
    for (i = 0; i < 3; i++) {
        Msg *m = &g_array_index(got, Msg, i);

        g_assert_cmphex(m->h.src, ==, b->id);
        g_assert_cmpuint(m->h.tag, ==, 11 + i);
    }
    msgs_free(got);

    /* To itself: stamped all the same; INT_RX raised in the send. */
    wr(a, INT_STATUS, ~0u);
    g_assert_cmpuint(send_one(a, a->id, 8, 99, true), ==, OK);
    g_assert_true(rd(a, INT_STATUS) & INT_RX);
    g_assert_cmpuint(recv_all(a, &got), ==, 1);
    g_assert_cmphex(g_array_index(got, Msg, 0).h.src, ==, a->id);
    msgs_free(got);

    g_assert_cmpint(info_int(a, "sent", "copy-messages"), ==, 4);
    g_assert_cmpint(info_int(a, "sent", "copy-bytes"), ==, 608);
    g_assert_cmpint(info_int(b, "received", "copy-messages"), ==, 3);
    g_assert_cmpint(info_int(a, "received", "copy-messages"), ==, 4);
    g_assert_cmpint(info_int(a, NULL, "peer-id"), ==, a->id);
    hmp = qtest_hmp(a->qts, "info ivq");
    line = g_strdup_printf("'vm-a': peer %u, queue 0 messages", a->id);
    g_assert(strstr(hmp, line));
    g_assert(strstr(hmp, "sent 4 messages, 608 bytes; received 4 messages"));
    env_stop(e);
}

/* @m is message @tag of @len bytes from @src, delivered as @flags. */
static void check_msg(Msg *m, uint32_t src, uint32_t tag, uint32_t len,
                      uint32_t flags)
{
    g_autofree uint8_t *want = g_malloc(len);

    g_assert_cmphex(m->h.src, ==, src);
    g_assert_cmpuint(m->h.tag, ==, tag);
    g_assert_cmpuint(m->h.len, ==, len);
    g_assert_cmphex(m->h.flags, ==, flags);
    pattern(want, len, tag);
    g_assert_cmpmem(m->data, len, want, len);
}

/* @n messages from @a to @b, tags from @tag, records at @off. */
static void send_n(Vm *a, Vm *b, uint32_t off, uint32_t len, uint32_t tag,
                   uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        g_assert_cmpuint(send_at(a, b->id, off, len, tag + i, true), ==, OK);
    }
}

/* Exactly @n messages queued at @b, from @a, tags from @tag, flipped. */
static void recv_flipped(Vm *b, Vm *a, uint32_t len, uint32_t tag,
                         uint32_t n)
{
    GArray *got;
    uint32_t i;

    g_assert_cmpuint(recv_all(b, &got), ==, n);
    for (i = 0; i < n; i++) {
        check_msg(&g_array_index(got, Msg, i), a->id, tag + i, len,
                  IVQ_HDR_F_FLIP);
    }
    msgs_free(got);
}

/* Whether @len bytes of @v's window at @off are all zero. */
static bool window_zero(Vm *v, uint32_t off, uint32_t len)
{
    g_autofree uint8_t *got = g_malloc(len);
    uint32_t i;

    qtest_bufread(v->qts, v->win.addr + off, got, len);
    for (i = 0; i < len; i++) {
        if (got[i]) {
            return false;
        }
    }
    return true;
}

/*
 * Page flip (flip-threshold=4096): a payload of whole pages at a page of
 * the send area arrives by flip with the right contents; the sender no
 * longer has the pages (its send area reads zero, and what it writes
 * there does not change the message it sent); pages come back and are
 * reused (more flips than the pool has pages); several flipped messages
 * queued at once; to itself; anything else is copied; the receiver keeps
 * a flipped message whose sender died.
 */
static void test_flip(void)
{
    Env *e = env_start("", ",send-size=65536,flip-threshold=4096");
    Vm *a = &e->a, *b = &e->b;
    const uint32_t off = 4096 - HDR, len = 8192;
    GArray *got;
    uint32_t i, tag = 1;
    QDict *info = ivq_info(a);

    g_assert_false(qdict_get_bool(info, "flip-auto"));
    g_assert_cmpint(qdict_get_int(info, "flip-threshold"), ==, 4096);
    qobject_unref(info);

    /* 40 flips of 2 pages: the pool has 16, so pages come back. */
    for (i = 0; i < 40; i++, tag++) {
        g_assert_cmpuint(send_at(a, b->id, off, len, tag, i % 2), ==, OK);
        /* The sender's pages are gone: fresh zero pages instead. */
        g_assert_true(window_zero(a, off + HDR, len));
        /* What it writes now is not what it sent. */
        qtest_memset(a->qts, a->win.addr + off + HDR, 0x5a, len);
        g_assert_true(wait_reg(b, RX_COUNT, ~0u, 1));
        recv_flipped(b, a, len, tag, 1);
    }
    /* Five queued at once, then popped together. */
    send_n(a, b, off, len, tag, 5);
    recv_flipped(b, a, len, tag, 5);
    tag += 5;
    /* To itself. */
    send_n(a, a, off, len, tag, 1);
    recv_flipped(a, a, len, tag++, 1);
    /* Copied: not at a page, not whole pages, below the threshold. */
    g_assert_cmpuint(send_at(a, b->id, 0, len, tag, true), ==, OK);
    g_assert_cmpuint(send_at(a, b->id, off, len + 64, tag + 1, true), ==, OK);
    g_assert_cmpuint(send_at(a, b->id, off, 2048, tag + 2, true), ==, OK);
    g_assert_cmpuint(recv_all(b, &got), ==, 3);
    check_msg(&g_array_index(got, Msg, 0), a->id, tag, len, IVQ_HDR_F_COPY);
    check_msg(&g_array_index(got, Msg, 1), a->id, tag + 1, len + 64,
              IVQ_HDR_F_COPY);
    check_msg(&g_array_index(got, Msg, 2), a->id, tag + 2, 2048,
              IVQ_HDR_F_COPY);
    msgs_free(got);
    tag += 3;

    g_assert_cmpint(info_int(a, "sent", "flip-messages"), ==, 46);
    g_assert_cmpint(info_int(a, "sent", "flip-bytes"), ==, 46 * len);
    g_assert_cmpint(info_int(a, "sent", "copy-messages"), ==, 3);
    g_assert_cmpint(info_int(b, "received", "flip-messages"), ==, 45);
    g_assert_cmpint(info_int(b, "received", "copy-messages"), ==, 3);
    g_assert_cmpint(info_int(a, NULL, "flip-fallbacks"), ==, 0);

    /*
     * A reset drops 7 queued flips (14 of the 16 pages A can lend): their
     * pages go back to A, so 7 more flip again.
     */
    send_n(a, b, off, len, tag, 7);
    tag += 7;
    qtest_qmp_assert_success(b->qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(b->qts, "RESET");
    g_free(b->dev);
    vm_map(b);
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 0);
    send_n(a, b, off, len, tag, 7);
    recv_flipped(b, a, len, tag, 7);
    tag += 7;
    g_assert_cmpint(info_int(a, NULL, "flip-fallbacks"), ==, 0);

    /* The sender dies with a flipped message queued: it stays readable. */
    send_n(a, b, off, len, tag, 1);
    vm_stop(a);
    qobject_unref(wait_peer_event(b, "IVQ_PEER_DOWN", a->id));
    recv_flipped(b, a, len, tag, 1);
    env_stop(e);
}

/*
 * iothread=: the no-exit doorbell served by the device's iothread (which
 * takes the BQL for the send): messages arrive in order, INT_SENT and
 * INT_RX as from the main loop.
 */
static void test_noexit_iothread(void)
{
    Env *e = env_start("", ",iothread=io0 -object iothread,id=io0");
    Vm *a = &e->a, *b = &e->b;
    GArray *got;
    uint32_t i;

    wr(a, INT_MASK, INT_SENT);
    wr(b, INT_MASK, INT_RX);
    for (i = 1; i <= 20; i++) {
        wr(a, INT_STATUS, ~0u);
        g_assert_cmpuint(send_one(a, b->id, 16 * i, i, false), ==, OK);
        g_assert_true(rd(a, INT_STATUS) & INT_SENT);
    }
    g_assert_true(wait_reg(b, RX_COUNT, ~0u, 20));
    g_assert_true(rd(b, INT_STATUS) & INT_RX);
    g_assert_cmpuint(recv_all(b, &got), ==, 20);
    for (i = 0; i < 20; i++) {
        Msg *m = &g_array_index(got, Msg, i);

        g_assert_cmphex(m->h.src, ==, a->id);
        g_assert_cmpuint(m->h.tag, ==, i + 1);
        g_assert_cmpuint(m->h.len, ==, 16 * (i + 1));
    }
    msgs_free(got);
    env_stop(e);
}

/*
 * Flow control: a full queue refuses (QUEUE_FULL) and takes nothing; a
 * batch stops at the first that does not fit and says how many went;
 * after a pop the rest goes; nothing is lost or reordered.
 */
static void test_flow_control(void)
{
    Env *e = env_start("", ",queue-size=16384,send-size=16384");
    Vm *a = &e->a, *b = &e->b;
    uint32_t sent = 0, tail, total = 0, i, off, offs[8];
    uint8_t buf[16384];
    GArray *got;

    while (send_one(a, b->id, 1000, sent + 1, true) == OK) {
        sent++;
        g_assert_cmpuint(sent, <, 100);
    }
    g_assert_cmpuint(rd(a, STATUS), ==, QUEUE_FULL);
    g_assert_cmpuint(rd(a, SEND_DONE), ==, 0);
    g_assert_cmpuint(sent, >=, 10);
    tail = rd(b, RX_TAIL);
    g_assert_cmpuint(send_one(a, b->id, 1000, sent + 1, false), ==,
                     QUEUE_FULL);
    g_assert_cmpuint(rd(b, RX_TAIL), ==, tail);
    g_assert_cmpuint(rd(b, RX_COUNT), ==, sent);

    /* Room for about three: a batch of eight delivers a prefix. */
    wr(b, RX_POP, 3);
    total = 3;
    for (i = 0, off = 0; i < 8; i++) {
        offs[i] = off;
        off += put_record(buf + off, b->id, 1000, sent + 1 + i,
                          sent + 1 + i);
    }
    qtest_bufwrite(a->qts, a->win.addr, buf, off);
    wr(a, SEND_OFF, 0);
    wr(a, SEND_COUNT, 8);
    wr(a, DB_EXIT, 1);
    g_assert_cmpuint(rd(a, STATUS), ==, QUEUE_FULL);
    i = rd(a, SEND_DONE);
    g_assert_cmpuint(i, >=, 2);
    g_assert_cmpuint(i, <, 8);
    sent += i;
    /* Drain, then the rest of the batch, from where it stopped. */
    g_assert_true(recv_all(b, &got) > 0);
    for (guint k = 0; k < got->len; k++) {
        g_assert_cmpuint(g_array_index(got, Msg, k).h.tag, ==, total + 1);
        total++;
    }
    msgs_free(got);
    wr(a, SEND_OFF, offs[i]);
    wr(a, SEND_COUNT, 8 - i);
    wr(a, DB_EXIT, 1);
    g_assert_cmpuint(rd(a, STATUS), ==, OK);
    g_assert_cmpuint(rd(a, SEND_DONE), ==, 8 - i);
    sent += 8 - i;
    g_assert_cmpuint(recv_all(b, &got), ==, 8 - i);
    for (guint k = 0; k < got->len; k++) {
        Msg *m = &g_array_index(got, Msg, k);

        g_assert_cmpuint(m->h.tag, ==, total + 1);
        g_assert_cmpuint(m->h.seq, ==, total + 1);
        total++;
    }
    msgs_free(got);
    g_assert_cmpuint(total, ==, sent);
    g_assert_cmpint(info_int(a, "errors", "queue-full"), ==, 3);
    env_stop(e);
}

/*
 * Bad input: each gets its status, and neither the destination's queue
 * nor the sender's sequence nor the register written changes.
 */
static void test_bad_input(void)
{
    Env *e = env_start("", "");
    Vm *a = &e->a, *b = &e->b;
    uint32_t tail = rd(b, RX_TAIL), max = rd(a, MAX_MSG);
    uint8_t buf[256];
    GArray *got;

    g_assert_cmpuint(send_one(a, 17, 8, 1, true), ==, UNKNOWN_PEER);
    g_assert_cmpuint(send_one(a, IVQ_NO_PEER, 8, 1, true), ==,
                     UNKNOWN_PEER);
    g_assert_cmpuint(send_one(a, b->id, max + 1, 1, true), ==, TOO_BIG);
    g_assert_cmpuint(send_one(a, b->id, max + 1, 1, false), ==, TOO_BIG);
    wr(a, SEND_LEN, 0xffffffff);
    wr(a, DB_EXIT, 1);
    g_assert_cmpuint(rd(a, STATUS), ==, TOO_BIG);

    wr(a, SEND_COUNT, 0);
    g_assert_cmpuint(rd(a, STATUS), ==, BAD_VALUE);
    g_assert_cmpuint(rd(a, SEND_COUNT), ==, 1);
    wr(a, SEND_OFF, 3);
    g_assert_cmpuint(rd(a, STATUS), ==, BAD_VALUE);
    g_assert_cmpuint(rd(a, SEND_OFF), ==, 0);
    wr(a, SEND_OFF, a->send_size);
    g_assert_cmpuint(rd(a, SEND_OFF), ==, 0);
    wr(a, INT_MASK, 0x100);
    g_assert_cmpuint(rd(a, STATUS), ==, BAD_VALUE);
    g_assert_cmpuint(rd(a, INT_MASK), ==, 0);
    wr(a, ID, 5);
    g_assert_cmpuint(rd(a, STATUS), ==, BAD_VALUE);
    g_assert_cmpuint(rd(a, ID), ==, a->id);
    wr(b, RX_POP, 1);
    g_assert_cmpuint(rd(b, STATUS), ==, BAD_VALUE);
    wr(b, RX_POP, 0);
    g_assert_cmpuint(rd(b, STATUS), ==, BAD_VALUE);

    /* A batch whose second record names nobody: the first goes. */
    put_record(buf, b->id, 8, 1, 1);
    put_record(buf + 64, 29, 8, 2, 2);
    qtest_bufwrite(a->qts, a->win.addr, buf, 128);
    wr(a, SEND_COUNT, 2);
    wr(a, DB_EXIT, 1);
    g_assert_cmpuint(rd(a, STATUS), ==, UNKNOWN_PEER);
    g_assert_cmpuint(rd(a, SEND_DONE), ==, 1);
    g_assert_cmpuint(recv_all(b, &got), ==, 1);
    g_assert_cmpuint(g_array_index(got, Msg, 0).h.seq, ==, 1);
    msgs_free(got);
    tail = rd(b, RX_TAIL);
    /* A batch whose record runs past the send area. */
    put_record(buf, b->id, 8, 1, 1);
    qtest_bufwrite(a->qts, a->win.addr + a->send_size - 96, buf, 64);
    ((IvqMsgHeader *)buf)->len = 64;
    qtest_bufwrite(a->qts, a->win.addr + a->send_size - 32, buf, 32);
    wr(a, SEND_OFF, a->send_size - 96);
    wr(a, DB_EXIT, 1);
    g_assert_cmpuint(rd(a, STATUS), ==, BAD_VALUE);
    g_assert_cmpuint(rd(a, SEND_DONE), ==, 1);
    g_assert_cmpuint(recv_all(b, NULL), ==, 1);
    tail = rd(b, RX_TAIL);
    wr(a, SEND_COUNT, 1);
    wr(a, SEND_OFF, 0);

    /* Nothing of it reached B; the next good message is seq 3. */
    g_assert_cmpuint(rd(b, RX_TAIL), ==, tail);
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 0);
    g_assert_cmpuint(send_one(a, b->id, 8, 7, true), ==, OK);
    g_assert_cmpuint(recv_all(b, &got), ==, 1);
    g_assert_cmpuint(g_array_index(got, Msg, 0).h.seq, ==, 3);
    msgs_free(got);

    g_assert_cmpint(info_int(a, "errors", "unknown-peer"), ==, 3);
    g_assert_cmpint(info_int(a, "errors", "too-big"), ==, 3);
    g_assert_cmpint(info_int(a, "errors", "bad-value"), ==, 6);
    g_assert_cmpint(info_int(a, "errors", "guest-errors"), ==, 5);
    g_assert_cmpint(info_int(b, "errors", "bad-value"), ==, 2);
    env_stop(e);
}

/* Message @idx's size: mostly small, some up to 3 KiB. */
static uint32_t msg_len(uint64_t idx)
{
    uint32_t r = (uint32_t)(idx * 0x9e3779b97f4a7c15ull >> 32);

    return idx % 64 == 63 ? r % 3072 : r % 192;
}

/*
 * No loss: 10^6 messages of mixed sizes, A to B, in batches, by both
 * doorbells in turn; B checks each one's order, sender, size, contents.
 */
static void test_no_loss(void)
{
    Env *e = env_start("", "");
    Vm *a = &e->a, *b = &e->b;
    const char *env = g_getenv("QT_IVQ_MESSAGES");
    uint64_t n = env ? g_ascii_strtoull(env, NULL, 10) : 1000000;
    uint64_t built = 0, sent = 0, got_n = 0, batches = 0;
    g_autofree uint8_t *buf = g_malloc(a->send_size);
    g_autofree uint32_t *offs = g_new(uint32_t, a->send_size / 32);
    g_autofree uint8_t *want = g_malloc(4096);
    uint32_t first = 0, count = 0, full = 0;
    gint64 t0 = g_get_monotonic_time();

    while (got_n < n) {
        GArray *got;
        guint k;

        if (first == count && built < n) {
            uint32_t off = 0;

            for (count = 0; built < n; count++, built++) {
                uint32_t len = msg_len(built);

                if (off + HDR + len > a->send_size) {
                    break;
                }
                offs[count] = off;
                off += put_record(buf + off, b->id, len, (uint32_t)built,
                                  built);
            }
            qtest_bufwrite(a->qts, a->win.addr, buf, off);
            first = 0;
        }
        if (first < count) {
            uint32_t sends = rd(a, SENDS), done;
            IvqMsgHeader *h = (IvqMsgHeader *)(buf + offs[first]);

            wr(a, SEND_DEST, b->id);
            wr(a, SEND_LEN, h->len);
            wr(a, SEND_OFF, offs[first]);
            wr(a, SEND_COUNT, count - first);
            if (batches++ % 2) {
                wr(a, DB_NOEXIT, 1);
                g_assert_true(wait_reg(a, SENDS, ~0u, sends + 1));
            } else {
                wr(a, DB_EXIT, 1);
            }
            done = rd(a, SEND_DONE);
            if (rd(a, STATUS) == QUEUE_FULL) {
                full++;
            } else {
                g_assert_cmpuint(rd(a, STATUS), ==, OK);
                g_assert_cmpuint(done, ==, count - first);
            }
            first += done;
            sent += done;
        }
        recv_all(b, &got);
        for (k = 0; k < got->len; k++, got_n++) {
            Msg *m = &g_array_index(got, Msg, k);

            g_assert_cmpuint(m->h.seq, ==, got_n + 1);
            g_assert_cmpuint(m->h.tag, ==, (uint32_t)got_n);
            g_assert_cmphex(m->h.src, ==, a->id);
            g_assert_cmpuint(m->h.len, ==, msg_len(got_n));
            pattern(want, m->h.len, got_n);
            g_assert_true(!memcmp(m->data, want, m->h.len));
        }
        msgs_free(got);
    }
    g_assert_cmpuint(sent, ==, n);
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 0);
    g_assert_cmpint(info_int(b, "received", "copy-messages"), ==, n);
    g_assert_cmpint(info_int(a, "sent", "copy-messages"), ==, n);
    g_test_message("%" PRIu64 " messages in %" PRIu64 " sends (%u refused "
                   "QUEUE_FULL) in %.1f s", n, batches, full,
                   (g_get_monotonic_time() - t0) / 1e6);
    env_stop(e);
}

/*
 * A peer killed (SIGKILL) while A streams to it: A's next sends get
 * PEER_DOWN, A and B get IVQ_PEER_DOWN, its bit leaves PEERS; A and B
 * go on talking.
 */
static void test_peer_killed(void)
{
    Env *e = env_start("", "");
    Vm *a = &e->a, *b = &e->b;
    g_autofree char *chr = g_strdup_printf("socket,id=brk,path=%s", e->sock);
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    char *argv[] = {
        (char *)qemu, (char *)"-machine", (char *)"pc", (char *)"-m",
        (char *)"32", (char *)"-nodefaults", (char *)"-display",
        (char *)"none", (char *)"-S", (char *)"-chardev", chr,
        (char *)"-device", (char *)"ivq,chardev=brk,name=victim", NULL,
    };
    uint32_t peers = rd(a, PEERS), victim, sent = 0, st;
    GPid pid = spawn(argv);
    QDict *ev;

    int i;

    for (i = 0; i < 10000 && rd(a, PEERS) == peers; i++) {
        g_usleep(1000);
    }
    victim = ctz32(rd(a, PEERS) & ~peers);
    g_assert_cmpuint(victim, <, IVQ_MAX_PEERS);
    ev = wait_peer_event(a, "IVQ_PEER_UP", victim);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "peer-name"),
                    ==, "victim");
    qobject_unref(ev);

    /* Mid-stream: its queue may fill before A hears it is gone. */
    do {
        st = send_one(a, victim, 512, sent, sent % 2);
        sent += st == OK;
        if (sent == 20 && pid) {
            kill(pid, SIGKILL);
            reap(pid, SIGKILL);
            pid = 0;
        }
        g_assert_cmpuint(sent, <, 100000);
    } while (st == OK || st == QUEUE_FULL);
    g_assert_cmpuint(st, ==, PEER_DOWN);
    ev = wait_peer_event(a, "IVQ_PEER_DOWN", victim);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "peer-name"),
                    ==, "victim");
    qobject_unref(ev);
    qobject_unref(wait_peer_event(b, "IVQ_PEER_DOWN", victim));
    g_assert_cmpuint(rd(a, PEERS), ==, peers);
    g_assert_true(rd(a, INT_STATUS) & INT_PEER);
    g_assert_cmpuint(send_one(a, victim, 8, 0, true), ==, PEER_DOWN);
    g_assert_cmpuint(send_one(a, b->id, 8, 0, true), ==, OK);
    g_assert_cmpuint(recv_all(b, NULL), ==, 1);
    g_assert_cmpint(info_int(a, "errors", "peer-down"), ==, 2);
    env_stop(e);
}

/*
 * Broker restart: with reconnect-ms the VMs lose their peers (PEER_DOWN,
 * IVQ_PEER_DOWN), keep running, reconnect to the new broker with the
 * same ids and talk again.
 */
static void test_broker_restart(void)
{
    Env *e = env_start(",reconnect-ms=100", "");
    Vm *a = &e->a, *b = &e->b;
    uint32_t ida = a->id, idb = b->id;

    g_assert_cmpuint(send_one(a, b->id, 64, 1, true), ==, OK);
    reap(e->broker, SIGKILL);
    e->broker = 0;
    qobject_unref(wait_peer_event(a, "IVQ_PEER_DOWN", idb));
    g_assert_true(wait_reg(a, ID, ~0u, IVQ_NO_PEER));
    g_assert_cmpuint(send_one(a, idb, 64, 2, true), ==, PEER_DOWN);
    /* B's queue is B's: the message sent before is still there. */
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 1);

    g_remove(e->sock);
    broker_start(e);
    g_assert_true(wait_reg(a, ID, ~0u, ida));
    g_assert_true(wait_reg(b, ID, ~0u, idb));
    g_assert_true(wait_reg(a, PEERS, ~0u, (1u << ida) | (1u << idb)));
    g_assert_cmpuint(send_one(a, idb, 64, 3, true), ==, OK);
    g_assert_cmpuint(recv_all(b, NULL), ==, 2);
    env_stop(e);
}

/*
 * A reset guest starts with an empty queue and masked interrupts; it
 * stays connected, with its id.
 */
static void test_reset(void)
{
    Env *e = env_start("", "");
    Vm *a = &e->a, *b = &e->b;
    GArray *got;

    g_assert_cmpuint(send_one(a, b->id, 64, 1, true), ==, OK);
    g_assert_cmpuint(send_one(a, b->id, 64, 2, true), ==, OK);
    wr(b, INT_MASK, INT_RX);
    qtest_qmp_assert_success(b->qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(b->qts, "RESET");
    g_free(b->dev);
    vm_map(b);
    g_assert_cmpuint(rd(b, RX_COUNT), ==, 0);
    g_assert_cmpuint(rd(b, RX_HEAD), ==, rd(b, RX_TAIL));
    g_assert_cmpuint(rd(b, INT_MASK), ==, 0);
    g_assert_cmpuint(rd(b, SEND_COUNT), ==, 1);
    g_assert_cmpuint(rd(b, ID), ==, b->id);
    g_assert_cmpuint(send_one(a, b->id, 64, 3, true), ==, OK);
    g_assert_cmpuint(recv_all(b, &got), ==, 1);
    g_assert_cmpuint(g_array_index(got, Msg, 0).h.tag, ==, 3);
    msgs_free(got);
    env_stop(e);
}

/* A uid the broker does not allow: refused, the VM runs disconnected. */
static void test_uid_refused(void)
{
    Env *e = g_new0(Env, 1);
    Vm *a = &e->a;
    QDict *info;

    e->dir = g_dir_make_tmp("ivq-test-XXXXXX", NULL);
    e->sock = g_build_filename(e->dir, "broker.sock", NULL);
    broker_start_uid(e, getuid() + 1);
    a->qs = qtest_pc_boot(VM_ARGS "%s " VM_DEV "vm-a", e->sock);
    vm_map(a);
    g_usleep(200000);
    g_assert_cmphex(rd(a, ID), ==, IVQ_NO_PEER);
    g_assert_cmphex(rd(a, PEERS), ==, 0);
    g_assert_cmpuint(send_one(a, 0, 8, 1, true), ==, PEER_DOWN);
    info = ivq_info(a);
    g_assert_false(qdict_get_bool(info, "connected"));
    g_assert_false(qdict_haskey(info, "peer-id"));
    qobject_unref(info);
    env_stop(e);
}

/*
 * Disconnected (the broker gone, no reconnect), a VM migrates: the
 * registers, the window and the messages in its queue arrive.
 */
static void test_migration_disconnected(void)
{
    Env *e = env_start("", "");
    Vm *a = &e->a, dst = { 0 };
    g_autofree char *path = g_build_filename(e->dir, "state", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    GArray *got;
    uint32_t i;

    for (i = 1; i <= 3; i++) {
        g_assert_cmpuint(send_one(a, a->id, 40 * i, i, true), ==, OK);
    }
    wr(a, INT_MASK, INT_RX | INT_PEER);
    reap(e->broker, SIGTERM);
    e->broker = 0;
    g_assert_true(wait_reg(a, ID, ~0u, IVQ_NO_PEER));
    tiers_save_state(a->qts, path);

    /* No broker there either: it would reconnect in a minute. */
    dst.qs = qtest_pc_boot(VM_ARGS "%s,reconnect-ms=60000 " VM_DEV
                           "vm-a -incoming defer", e->sock);
    qtest_qmp_assert_success(dst.qs->qts, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    for (;;) {
        QDict *q = qtest_qmp(dst.qs->qts, "{ 'execute': 'query-status' }");
        bool done = strcmp(qdict_get_str(qdict_get_qdict(q, "return"),
                                         "status"), "inmigrate");

        qobject_unref(q);
        if (done) {
            break;
        }
        g_usleep(10000);
    }
    vm_map(&dst);
    g_assert_cmphex(rd(&dst, INT_MASK), ==, INT_RX | INT_PEER);
    g_assert_cmpuint(rd(&dst, RX_COUNT), ==, 3);
    g_assert_cmpuint(recv_all(&dst, &got), ==, 3);
    for (i = 0; i < 3; i++) {
        Msg *m = &g_array_index(got, Msg, i);
        uint8_t want[120];

        g_assert_cmpuint(m->h.src, ==, a->id);
        g_assert_cmpuint(m->h.tag, ==, i + 1);
        pattern(want, m->h.len, i + 1);
        g_assert_cmpmem(m->data, m->h.len, want, 40 * (i + 1));
    }
    msgs_free(got);
    vm_stop(&dst);
    env_stop(e);
}

/* QEMU refuses a bad configuration, and says which. */
static void test_bad_config(void)
{
    static const struct {
        const char *args, *msg;
    } cases[] = {
        { "-device ivq,name=x", "'chardev' (a socket to ivq-broker) is "
          "required" },
        { "-chardev null,id=n -device ivq,chardev=n,name=x",
          "chardev 'n' is not a socket" },
        { "-chardev socket,id=s,path=/nonexistent,reconnect-ms=1000 "
          "-device ivq,chardev=s", "'name' is required" },
        { "-chardev socket,id=s,path=/nonexistent,reconnect-ms=1000 "
          "-device ivq,chardev=s,name=x,queue-size=5000",
          "queue-size must be a power of two" },
        { "-chardev socket,id=s,path=/nonexistent,reconnect-ms=1000 "
          "-device ivq,chardev=s,name=x,send-size=2048",
          "send-size must be a power of two" },
        { "-chardev socket,id=s,path=/nonexistent,reconnect-ms=1000 "
          "-device ivq,chardev=s,name=x,flip-threshold=4k2",
          "flip-threshold '4k2': expected 'auto', 'never' or a size" },
    };
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *cmd = g_strdup_printf(
            "%s -machine pc -m 32 -nodefaults -display none -S %s",
            qemu, cases[i].args);
        g_autofree char *out = NULL, *err = NULL;
        g_auto(GStrv) argv = NULL;
        int status;

        g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
        g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT,
                                   child_dies_with_us, NULL, &out, &err,
                                   &status, NULL));
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        if (!strstr(err, cases[i].msg)) {
            g_test_message("%s: %s", cases[i].args, err);
        }
        g_assert_nonnull(strstr(err, cases[i].msg));
    }
}

/* Migration is refused while connected, with the reason. */
static void test_migration_blocked(void)
{
    Env *e = env_start("", "");
    g_autofree char *err = qmp_error(e->a.qts, "{ 'execute': 'migrate', "
                                     "'arguments': { 'uri': "
                                     "'exec:cat >/dev/null' } }");

    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err, "connected to ivq-broker"));
    env_stop(e);
}

/*
 * Pages lent to a receiver come back when it goes: when its process dies
 * (B killed with 7 flips of A's queued: A's 14 lent pages are A's again,
 * 7 more flips need them), and when its device is unplugged (B gives
 * them back first).  An unplugged device closes its broker connection:
 * its peers see it go (before, it stayed up for them, its queue filling
 * with messages no one would read: no IVQ_PEER_DOWN, the test failed).
 */
static void test_flip_receiver_gone(void)
{
    Env *e = env_start("", ",send-size=65536,flip-threshold=4096");
    Vm *a = &e->a, *b = &e->b;
    const uint32_t off = 4096 - HDR, len = 8192;
    uint32_t id_b = b->id;
    QDict *ev;

    send_n(a, b, off, len, 1, 7);
    g_assert_cmpint(info_int(a, NULL, "flip-lent-pages"), ==, 14);
    vm_stop(b);
    qobject_unref(wait_peer_event(a, "IVQ_PEER_DOWN", id_b));
    g_assert_cmpint(info_int(a, NULL, "flip-lent-pages"), ==, 0);
    send_n(a, a, off, len, 10, 7);
    recv_flipped(a, a, len, 10, 7);
    g_assert_cmpint(info_int(a, NULL, "flip-fallbacks"), ==, 0);

    /* A new B, unplugged with 7 of A's flips queued. */
    vm_start(e, b, "vm-b", "", ",send-size=65536,flip-threshold=4096");
    qobject_unref(wait_peer_event(a, "IVQ_PEER_UP", b->id));
    send_n(a, b, off, len, 20, 7);
    g_assert_cmpint(info_int(a, NULL, "flip-lent-pages"), ==, 14);
    qpci_unplug_acpi_device_test(b->qts, "q", SLOT);
    ev = wait_peer_event(a, "IVQ_PEER_DOWN", b->id);
    qobject_unref(ev);
    /* Gone for the copy path too (it used to stay up for its peers). */
    g_assert_cmpuint(send_one(a, b->id, 64, 40, true), ==, PEER_DOWN);
    /* Given back before B's connection closed: A took them on the way. */
    send_n(a, a, off, len, 30, 7);
    recv_flipped(a, a, len, 30, 7);
    g_assert_cmpint(info_int(a, NULL, "flip-lent-pages"), ==, 0);
    g_assert_cmpint(info_int(a, NULL, "flip-fallbacks"), ==, 0);
    env_stop(e);
}

/*
 * RAS does not retire a page of the message window: the peers map the
 * same memfd and would keep writing to the old page (before the window
 * was the memfd mapped as file RAM, the retirement went through).
 */
static void test_ras_refuses_window(void)
{
    Vm v = {
        .qs = qtest_pc_boot("-machine pc -m 32 -nodefaults "
                            "-object ras-policy,id=ras "
                            "-chardev socket,id=brk,path=/nonexistent,"
                            "reconnect-ms=1000 " VM_DEV "vm-a"),
    };
    g_autofree char *err = NULL;

    vm_map(&v);
    err = qmp_error(v.qts, "{ 'execute': 'ras-retire-page', 'arguments': "
                    "{ 'addr': %" PRIu64 " } }", v.win.addr + 4096);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err, "shared or file memory"));
    vm_stop(&v);
}

static void test_no_broker(void)
{
    g_test_skip("no ivq-broker (QT_IVQ_BROKER, set by make check)");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    broker_path = g_getenv("QT_IVQ_BROKER");
    if (!broker_path || !g_file_test(broker_path, G_FILE_TEST_IS_EXECUTABLE)) {
        qtest_add_func("/ivq/no-broker", test_no_broker);
        return g_test_run();
    }
    qtest_add_func("/ivq/order-identity", test_order_identity);
    qtest_add_func("/ivq/noexit-iothread", test_noexit_iothread);
    qtest_add_func("/ivq/flip", test_flip);
    qtest_add_func("/ivq/flip-receiver-gone", test_flip_receiver_gone);
    qtest_add_func("/ivq/ras-refuses-window", test_ras_refuses_window);
    qtest_add_func("/ivq/flow-control", test_flow_control);
    qtest_add_func("/ivq/bad-input", test_bad_input);
    qtest_add_func("/ivq/peer-killed", test_peer_killed);
    qtest_add_func("/ivq/broker-restart", test_broker_restart);
    qtest_add_func("/ivq/migration-blocked", test_migration_blocked);
    qtest_add_func("/ivq/migration-disconnected",
                   test_migration_disconnected);
    qtest_add_func("/ivq/uid-refused", test_uid_refused);
    qtest_add_func("/ivq/reset", test_reset);
    qtest_add_func("/ivq/bad-config", test_bad_config);
    qtest_add_func("/ivq/no-loss", test_no_loss);
    return g_test_run();
}

/*
 * qemu-tiers inter-VM queues: the ivq device's connection to ivq-broker
 * and its table of peers (protocol: ivq-proto.h, docs/intervm-queues.rst).
 *
 * On every connection of the chardev: HELLO with this device's region
 * and doorbell; the broker's WELCOME gives the id (the one held before,
 * if the broker restarted and it is free) and adds the migration
 * blocker; PEER_UP maps a peer's region and keeps its doorbell;
 * PEER_DOWN, or the connection's end, drops the peer: sends to it fail
 * with PEER_DOWN, the guest gets INT_PEER, QMP gets IVQ_PEER_DOWN.  A
 * chardev with reconnect-ms reconnects to a restarted broker; without
 * it the device stays disconnected and every send reports PEER_DOWN.
 *
 * All handlers run in the main loop with the BQL.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include <glib-unix.h>
#include "qapi/error.h"
#include "qapi/qapi-events-ivq.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/cutils.h"
#include "migration/blocker.h"
#include "ivq-internal.h"
#include "trace.h"

/* A peer's region: at least the control page and a minimal window. */
#define IVQ_REGION_MIN      (IVQ_CTL_SIZE + 8192)
#define IVQ_REGION_MAX      (256ull << 20)

/* The device's name for QMP: its qdev id, else its QOM path. */
static char *ivq_qmp_device(IvqState *s)
{
    DeviceState *d = DEVICE(s);

    return d->id ? g_strdup(d->id) : object_get_canonical_path(OBJECT(s));
}

uint32_t ivq_peers_up(IvqState *s)
{
    uint32_t bits = 0;
    int i;

    for (i = 0; i < IVQ_MAX_PEERS; i++) {
        if (s->peers[i].state == IVQ_PEER_UP) {
            bits |= 1u << i;
        }
    }
    if (s->connected && s->id < IVQ_MAX_PEERS) {
        bits |= 1u << s->id;
    }
    return bits;
}

void ivq_peer_drop(IvqState *s, uint32_t id, bool event)
{
    IvqPeer *p = &s->peers[id];
    g_autofree char *dev = NULL;

    assert(bql_locked());
    if (p->state != IVQ_PEER_UP) {
        return;
    }
    if (!ivq_flip_peer_gone(s, id)) {
        munmap(p->map, p->map_size);
    }
    p->map = NULL;
    memset(&p->ring, 0, sizeof(p->ring));
    if (p->doorbell_fd >= 0) {
        close(p->doorbell_fd);
        p->doorbell_fd = -1;
    }
    if (p->region_fd >= 0) {
        close(p->region_fd);
        p->region_fd = -1;
    }
    p->state = IVQ_PEER_GONE;
    trace_ivq_peer_down(s->name, id, p->name);
    if (event) {
        dev = ivq_qmp_device(s);
        qapi_event_send_ivq_peer_down(dev, s->name, id, p->name);
        ivq_raise(s, IVQ_INT_PEER);
    }
}

static void ivq_peer_up(IvqState *s, const IvqProtoMsg *m, int *fds,
                        int nfds)
{
    g_autofree char *dev = NULL;
    IvqPeer *p;
    struct stat st;
    int seals;
    void *map;

    if (m->id >= IVQ_MAX_PEERS || m->id == s->id || nfds != 2 ||
        m->region_size < IVQ_REGION_MIN || m->region_size > IVQ_REGION_MAX) {
        error_report("ivq '%s': broker announced a bad peer (id %" PRIu32
                     ", %d fds, region %" PRIu64 " bytes)", s->name, m->id,
                     nfds, m->region_size);
        return;
    }
    /* Sealed against shrinking: a peer cannot make our copies fault. */
    seals = fcntl(fds[0], F_GET_SEALS);
    if (fstat(fds[0], &st) < 0 || st.st_size < m->region_size ||
        seals < 0 || !(seals & F_SEAL_SHRINK)) {
        error_report("ivq '%s': peer %" PRIu32 "'s region is not a sealed "
                     "memfd of %" PRIu64 " bytes", s->name, m->id,
                     m->region_size);
        return;
    }
    map = mmap(NULL, m->region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
               fds[0], 0);
    if (map == MAP_FAILED) {
        error_report("ivq '%s': cannot map peer %" PRIu32 "'s region: %s",
                     s->name, m->id, strerror(errno));
        return;
    }
    p = &s->peers[m->id];
    ivq_peer_drop(s, m->id, true);
    if (!ivq_ring_attach(&p->ring, map, m->region_size)) {
        error_report("ivq '%s': peer %" PRIu32 "'s region has no valid "
                     "queue", s->name, m->id);
        munmap(map, m->region_size);
        return;
    }
    p->map = map;
    p->map_size = m->region_size;
    p->doorbell_fd = fds[1];
    fds[1] = -1;
    p->region_fd = fds[0];      /* kept: flipped pages are mapped from it */
    fds[0] = -1;
    g_unix_set_fd_nonblocking(p->doorbell_fd, true, NULL);
    memcpy(p->name, m->name, sizeof(p->name));
    p->name[sizeof(p->name) - 1] = 0;
    p->state = IVQ_PEER_UP;
    p->gen = ++s->peer_gen;
    trace_ivq_peer_up(s->name, m->id, p->name, m->uid, m->pid);
    dev = ivq_qmp_device(s);
    qapi_event_send_ivq_peer_up(dev, s->name, m->id, p->name);
    ivq_raise(s, IVQ_INT_PEER);
}

static void ivq_welcome(IvqState *s, const IvqProtoMsg *m)
{
    Error *err = NULL;

    if (m->id >= IVQ_MAX_PEERS || s->connected) {
        error_report("ivq '%s': bad WELCOME (id %" PRIu32 ")", s->name,
                     m->id);
        qemu_chr_fe_disconnect(&s->chr);
        return;
    }
    error_setg(&s->migration_blocker, "ivq '%s' is connected to ivq-broker "
               "as peer %" PRIu32 ": its peers map its queue, migration is "
               "not supported", s->name, m->id);
    if (migrate_add_blocker(&s->migration_blocker, &err) < 0) {
        error_report_err(err);
        qemu_chr_fe_disconnect(&s->chr);
        return;
    }
    s->peers[m->id].state = IVQ_PEER_NONE;
    s->id = s->want_id = m->id;
    s->connected = true;
    trace_ivq_welcome(s->name, m->id);
    ivq_raise(s, IVQ_INT_PEER);
}

/* Connected, or the connection's end: drop everything of the last one. */
static void ivq_disconnected(IvqState *s)
{
    int i;

    for (i = 0; i < IVQ_MAX_PEERS; i++) {
        ivq_peer_drop(s, i, true);
    }
    if (s->connected) {
        migrate_del_blocker(&s->migration_blocker);
        s->connected = false;
        ivq_raise(s, IVQ_INT_PEER);
    }
    s->id = IVQ_NO_PEER;
    s->rx_len = 0;
}

static void ivq_opened(IvqState *s)
{
    IvqProtoMsg m = {
        .magic = IVQ_PROTO_MAGIC,
        .type = IVQ_MSG_HELLO,
        .version = IVQ_PROTO_VERSION,
        .id = s->want_id,
        .region_size = s->region_size,
    };
    int fds[2] = { s->region_fd, event_notifier_get_fd(&s->doorbell) };

    ivq_disconnected(s);
    pstrcpy(m.name, sizeof(m.name), s->name);
    if (qemu_chr_fe_set_msgfds(&s->chr, fds, 2) < 0 ||
        qemu_chr_fe_write_all(&s->chr, (uint8_t *)&m, sizeof(m)) !=
        sizeof(m)) {
        error_report("ivq '%s': cannot send HELLO to the broker", s->name);
        qemu_chr_fe_disconnect(&s->chr);
        return;
    }
    trace_ivq_hello(s->name, s->want_id);
}

static int ivq_chr_can_read(void *opaque)
{
    IvqState *s = opaque;

    return sizeof(s->rx) - s->rx_len;
}

static void ivq_chr_read(void *opaque, const uint8_t *buf, int size)
{
    IvqState *s = opaque;
    int fds[2] = { -1, -1 };
    IvqProtoMsg m;
    int nfds, i;

    assert(bql_locked());
    size = MIN(size, (int)(sizeof(s->rx) - s->rx_len));
    memcpy(s->rx + s->rx_len, buf, size);
    s->rx_len += size;
    if (s->rx_len < sizeof(m)) {
        return;
    }
    memcpy(&m, s->rx, sizeof(m));
    s->rx_len = 0;
    nfds = qemu_chr_fe_get_msgfds(&s->chr, fds, 2);
    nfds = MAX(nfds, 0);
    if (m.magic != IVQ_PROTO_MAGIC || m.version != IVQ_PROTO_VERSION) {
        error_report("ivq '%s': not an ivq-broker (magic 0x%" PRIx32
                     ", version %" PRIu32 ")", s->name, m.magic, m.version);
        qemu_chr_fe_disconnect(&s->chr);
    } else if (m.type == IVQ_MSG_WELCOME) {
        ivq_welcome(s, &m);
    } else if (m.type == IVQ_MSG_PEER_UP && s->connected) {
        ivq_peer_up(s, &m, fds, nfds);
    } else if (m.type == IVQ_MSG_PEER_DOWN && s->connected &&
               m.id < IVQ_MAX_PEERS) {
        ivq_peer_drop(s, m.id, true);
    } else if (m.type == IVQ_MSG_REFUSED) {
        m.name[sizeof(m.name) - 1] = 0;
        error_report("ivq '%s': ivq-broker refused it: %s", s->name, m.name);
    } else {
        error_report("ivq '%s': unexpected broker message %" PRIu32,
                     s->name, m.type);
        qemu_chr_fe_disconnect(&s->chr);
    }
    for (i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
}

static void ivq_chr_event(void *opaque, QEMUChrEvent event)
{
    IvqState *s = opaque;

    assert(bql_locked());
    switch (event) {
    case CHR_EVENT_OPENED:
        ivq_opened(s);
        break;
    case CHR_EVENT_CLOSED:
        trace_ivq_closed(s->name);
        ivq_disconnected(s);
        break;
    default:
        break;
    }
}

void ivq_link_init(IvqState *s)
{
    int i;

    for (i = 0; i < IVQ_MAX_PEERS; i++) {
        s->peers[i].doorbell_fd = -1;
        s->peers[i].region_fd = -1;
    }
    qemu_chr_fe_set_handlers(&s->chr, ivq_chr_can_read, ivq_chr_read,
                             ivq_chr_event, NULL, s, NULL, true);
}

void ivq_link_cleanup(IvqState *s)
{
    qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL, NULL,
                             false);
    ivq_disconnected(s);
}

/*
 * qemu-tiers inter-VM queues: query-ivq and its HMP twin, info ivq.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-ivq.h"
#include "qemu/main-loop.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "ivq-internal.h"

static IvqTraffic *ivq_traffic(const uint64_t *msgs, const uint64_t *bytes)
{
    IvqTraffic *t = g_new0(IvqTraffic, 1);

    t->copy_messages = msgs[IVQ_MODE_COPY];
    t->copy_bytes = bytes[IVQ_MODE_COPY];
    t->flip_messages = msgs[IVQ_MODE_FLIP];
    t->flip_bytes = bytes[IVQ_MODE_FLIP];
    return t;
}

static IvqInfo *ivq_info(IvqState *s)
{
    DeviceState *d = DEVICE(s);
    IvqInfo *info = g_new0(IvqInfo, 1);
    IvqPeerInfoList **tail = &info->peers;
    uint32_t head, qtail, count;
    int i;

    ivq_ring_indices(&s->ring, &head, &qtail, &count);
    info->device = d->id ? g_strdup(d->id)
                         : object_get_canonical_path(OBJECT(s));
    info->name = g_strdup(s->name);
    info->connected = s->connected;
    info->has_peer_id = s->connected;
    info->peer_id = s->connected ? s->id : 0;
    info->queue_size = s->queue_size;
    info->queue_depth = count;
    info->queue_bytes = qtail - head;
    info->has_flip_threshold = s->flip_min != UINT64_MAX;
    info->flip_threshold = s->flip_min;
    info->flip_auto = s->flip_auto;
    info->flip_fallbacks = s->flip_fallbacks;
    info->flip_lent_pages = ivq_flip_lent_pages(s);
    info->sent = ivq_traffic(s->tx_msgs, s->tx_bytes);
    info->received = ivq_traffic(s->rx_msgs, s->rx_bytes);
    info->errors = g_new0(IvqErrors, 1);
    info->errors->unknown_peer = s->errors[IVQ_ST_UNKNOWN_PEER];
    info->errors->too_big = s->errors[IVQ_ST_TOO_BIG];
    info->errors->queue_full = s->errors[IVQ_ST_QUEUE_FULL];
    info->errors->bad_value = s->errors[IVQ_ST_BAD_VALUE];
    info->errors->peer_down = s->errors[IVQ_ST_PEER_DOWN];
    info->errors->guest_errors = s->guest_errors;
    for (i = 0; i < IVQ_MAX_PEERS; i++) {
        IvqPeer *p = &s->peers[i];
        IvqPeerInfo *pi;

        if (p->state == IVQ_PEER_NONE) {
            continue;
        }
        pi = g_new0(IvqPeerInfo, 1);
        pi->id = i;
        pi->name = g_strdup(p->name);
        pi->up = p->state == IVQ_PEER_UP;
        QAPI_LIST_APPEND(tail, pi);
    }
    return info;
}

static int ivq_collect(Object *obj, void *opaque)
{
    IvqInfoList ***tail = opaque;
    IvqState *s = (IvqState *)object_dynamic_cast(obj, TYPE_IVQ);

    if (s) {
        QAPI_LIST_APPEND(*tail, ivq_info(s));
    }
    return 0;
}

IvqInfoList *qmp_query_ivq(Error **errp)
{
    IvqInfoList *list = NULL, **tail = &list;

    assert(bql_locked());
    object_child_foreach_recursive(object_get_root(), ivq_collect, &tail);
    return list;
}

void hmp_info_ivq(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(IvqInfoList) list = qmp_query_ivq(&err);
    IvqInfoList *e;
    IvqPeerInfoList *p;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    if (!list) {
        monitor_printf(mon, "no ivq device\n");
    }
    for (e = list; e; e = e->next) {
        IvqInfo *i = e->value;

        monitor_printf(mon, "%s '%s': ", i->device, i->name);
        if (i->connected) {
            monitor_printf(mon, "peer %u", i->peer_id);
        } else {
            monitor_printf(mon, "not connected");
        }
        monitor_printf(mon, ", queue %u messages (%u of %u bytes)\n",
                       i->queue_depth, i->queue_bytes, i->queue_size);
        monitor_printf(mon, "  sent %" PRIu64 " messages, %" PRIu64
                       " bytes; received %" PRIu64 " messages, %" PRIu64
                       " bytes (copy)\n", i->sent->copy_messages,
                       i->sent->copy_bytes, i->received->copy_messages,
                       i->received->copy_bytes);
        monitor_printf(mon, "  refused: unknown-peer %" PRIu64 " too-big %"
                       PRIu64 " queue-full %" PRIu64 " bad-value %" PRIu64
                       " peer-down %" PRIu64 "\n",
                       i->errors->unknown_peer, i->errors->too_big,
                       i->errors->queue_full, i->errors->bad_value,
                       i->errors->peer_down);
        for (p = i->peers; p; p = p->next) {
            monitor_printf(mon, "  peer %u '%s' %s\n", p->value->id,
                           p->value->name, p->value->up ? "up" : "down");
        }
    }
}

/*
 * qemu-tiers inter-VM queues: the broker protocol and the shared memory
 * layout (version 2: page flip).
 *
 * Shared by QEMU's ivq device (hw/ivq/) and ivq-broker (hw/ivq/broker/).
 * docs/intervm-queues.rst is the specification; this is its C form.  Only
 * fixed-size types, host byte order (every party runs on the same host).
 *
 * Broker socket (UNIX stream; QEMU connects with a `-chardev socket`):
 *
 *   QEMU -> broker   IVQ_MSG_HELLO + 2 fds: its region (a memfd) and its
 *                    doorbell (an eventfd: "your receive queue grew")
 *   broker -> QEMU   IVQ_MSG_WELCOME (the id the broker assigned) or
 *                    IVQ_MSG_REFUSED (and closes)
 *   broker -> QEMU   IVQ_MSG_PEER_UP + the peer's 2 fds, for every peer
 *                    already there and every peer that joins later
 *   broker -> QEMU   IVQ_MSG_PEER_DOWN when a peer's socket closes
 *
 * Every message is one IvqProtoMsg (64 bytes), sent whole.  Closing the
 * socket is how either side says "I am gone".
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IVQ_PROTO_H
#define IVQ_PROTO_H

#include <stdint.h>

#define IVQ_PROTO_MAGIC     0x31515649u /* "IVQ1" */
#define IVQ_PROTO_VERSION   2

#define IVQ_MAX_PEERS       32          /* peer ids 0..31 */
#define IVQ_NO_PEER         0xffffffffu
#define IVQ_NAME_MAX        32          /* with the NUL */

enum {
    IVQ_MSG_HELLO = 1,
    IVQ_MSG_WELCOME = 2,
    IVQ_MSG_REFUSED = 3,
    IVQ_MSG_PEER_UP = 4,
    IVQ_MSG_PEER_DOWN = 5,
};

typedef struct IvqProtoMsg {
    uint32_t magic;             /* IVQ_PROTO_MAGIC */
    uint32_t type;              /* IVQ_MSG_* */
    uint32_t version;           /* IVQ_PROTO_VERSION */
    /*
     * HELLO: the id wanted (the one held before a broker restart) or
     * IVQ_NO_PEER; WELCOME: yours; PEER_UP/DOWN: the peer's.
     */
    uint32_t id;
    uint64_t region_size;       /* HELLO, PEER_UP: bytes of the memfd */
    uint32_t uid;               /* PEER_UP: the peer's (SO_PEERCRED) */
    uint32_t pid;
    char name[IVQ_NAME_MAX];    /* NUL-ended; REFUSED: the reason */
} IvqProtoMsg;

/*
 * A region: one per device, created by its QEMU, mapped by every peer's
 * QEMU (never by another guest).
 *
 *   [0, IVQ_CTL_SIZE)          IvqRegionCtl: the receive queue's indices
 *                              and lock; never mapped into a guest
 *   [IVQ_CTL_SIZE, +bar_size)  BAR2, the message window:
 *                                [0, send_size)   send area
 *                                [ring_off, +ring_size) receive queue
 */
#define IVQ_CTL_SIZE        4096
#define IVQ_REGION_MAGIC    0x47455251u /* "QREG" */

/*
 * The receive queue is a byte ring of records, each a header and its
 * payload, padded to IVQ_REC_ALIGN; a record never wraps: when the end
 * of the ring is too short, a pad record fills it.  head and tail are
 * free-running byte counts (offset = count & (ring_size - 1)).
 */
#define IVQ_REC_ALIGN       32

typedef struct IvqMsgHeader {
    uint32_t src;               /* sender's id: written by the VMM only */
    uint32_t dst;               /* receiver's id */
    uint32_t len;               /* payload bytes */
    uint32_t tag;               /* the sender guest's, passed on */
    uint64_t seq;               /* per sending device, from 1 */
    uint32_t flags;             /* IVQ_HDR_F_* */
    uint32_t reserved;
} IvqMsgHeader;

#define IVQ_HDR_F_PAD       (1u << 0)   /* filler up to the ring's end */
#define IVQ_HDR_F_COPY      (1u << 1)   /* delivered by copy */
#define IVQ_HDR_F_FLIP      (1u << 2)   /* delivered by page flip (later) */

#endif

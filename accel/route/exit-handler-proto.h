/*
 * qemu-tiers external exit handlers: the wire protocol (version 1).
 *
 * Shared by QEMU (accel/route/external.c) and the handler library
 * (accel/route/libexithandler/).  docs/external-handlers-protocol.rst
 * is the specification; this header is its C form (docs/
 * external-handlers.rst: how QEMU uses it).  Only fixed-size types,
 * all little-endian (both ends run on the same x86-64 host).
 *
 * A handler is a process on the other end of a UNIX stream socket (a
 * QEMU `-chardev socket`, either end may listen).  On every connection:
 *
 *   QEMU -> handler  EXIT_HANDLER_MSG_HELLO, with three file descriptors
 *                    as SCM_RIGHTS: the ring (a memfd), the kick
 *                    eventfd (QEMU -> handler) and the call eventfd
 *                    (handler -> QEMU)
 *   handler -> QEMU  EXIT_HANDLER_MSG_HELLO_REPLY
 *
 * After that the socket carries nothing but an optional
 * EXIT_HANDLER_MSG_ERROR from the handler before it closes; all requests
 * go through the ring.  Closing the socket is how either side says "I
 * am gone".
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef EXIT_HANDLER_PROTO_H
#define EXIT_HANDLER_PROTO_H

#include <stdint.h>

#define EXIT_HANDLER_MAGIC          0x48455451u /* "QTEH" */
#define EXIT_HANDLER_VERSION        1

/* Socket messages: a header, then @size bytes of payload. */
typedef struct ExitHandlerMsgHdr {
    uint32_t type;              /* EXIT_HANDLER_MSG_* */
    uint32_t size;              /* payload bytes after this header */
} ExitHandlerMsgHdr;

enum {
    EXIT_HANDLER_MSG_HELLO = 1,
    EXIT_HANDLER_MSG_HELLO_REPLY = 2,
    EXIT_HANDLER_MSG_ERROR = 3,
};

/* Feature bits, offered in HELLO and accepted (a subset) in the reply. */
#define EXIT_HANDLER_F_POSTED_WRITES (1ull << 0) /* QEMU may post writes */
#define EXIT_HANDLER_F_POLL          (1ull << 1) /* spin before sleeping */
#define EXIT_HANDLER_F_EVENTS        (1ull << 2) /* platform events too */

/* The largest payload either side accepts. */
#define EXIT_HANDLER_MSG_MAX        256

typedef struct ExitHandlerHello {
    uint32_t magic;             /* EXIT_HANDLER_MAGIC */
    uint32_t version;           /* EXIT_HANDLER_VERSION */
    uint64_t features;          /* offered */
    uint32_t ring_slots;        /* power of two */
    uint32_t ring_bytes;        /* size of the memfd */
    uint32_t poll_us;           /* with F_POLL: spin this long first */
    uint32_t reserved;
    char handler_id[32];        /* QEMU's name for this handler, NUL-ended */
} ExitHandlerHello;

typedef struct ExitHandlerHelloReply {
    uint32_t magic;
    uint32_t version;           /* must equal HELLO's */
    uint64_t features;          /* accepted: a subset of the offer */
    char name[32];              /* the handler's own name, for logs */
} ExitHandlerHelloReply;

typedef struct ExitHandlerError {
    uint32_t code;              /* EXIT_HANDLER_ERR_* */
    char text[124];             /* NUL-ended */
} ExitHandlerError;

enum {
    EXIT_HANDLER_ERR_VERSION = 1,   /* no common protocol version */
    EXIT_HANDLER_ERR_RING = 2,      /* the ring could not be mapped */
    EXIT_HANDLER_ERR_INTERNAL = 3,
};

/*
 * The ring: one header page, then @ring_slots slots of 64 bytes.
 *
 * QEMU is the only producer, the handler the only consumer, and the
 * handler completes slots strictly in order.  A slot's @state moves
 * FREE -> POSTED (QEMU, after filling the request) -> DONE (handler,
 * after filling the reply) -> FREE or POSTED again (QEMU).  Each @state
 * store is a release, each load an acquire.
 *
 * Doorbells: the side that is about to sleep sets its flag, issues a
 * full barrier and checks for work again; the other side, after
 * publishing work, issues a full barrier and rings the eventfd only if
 * the flag is set.  A spurious wake-up is harmless.
 */
#define EXIT_RING_HDR_BYTES         4096
#define EXIT_RING_SLOT_BYTES        64
#define EXIT_RING_SLOTS_MAX         1024

typedef struct ExitRingHdr {
    uint32_t magic;             /* EXIT_HANDLER_MAGIC */
    uint32_t version;
    uint32_t slots;
    uint32_t handler_sleeping;  /* handler: about to wait on kick */
    uint8_t pad0[48];
    uint32_t qemu_waiting;      /* QEMU: about to wait on call */
    uint8_t pad1[60];
    uint64_t posted;            /* QEMU: requests posted so far */
    uint8_t pad2[56];
    uint64_t completed;         /* handler: requests completed so far */
} ExitRingHdr;

enum {
    EXIT_SLOT_FREE = 0,
    EXIT_SLOT_POSTED = 1,
    EXIT_SLOT_DONE = 2,
};

/* Request kinds (ExitRingSlot.event), as the router's routes name them. */
enum {
    EXIT_HANDLER_EV_PIO = 0,
    EXIT_HANDLER_EV_MMIO = 1,
    EXIT_HANDLER_EV_MSR = 2,
    /* Platform events (with EXIT_HANDLER_F_EVENTS only) */
    EXIT_HANDLER_EV_SMI = 3,
    EXIT_HANDLER_EV_NMI = 4,
    EXIT_HANDLER_EV_MCE = 5,
    EXIT_HANDLER_EV_MEMORY_ERROR = 6,
};

/* ExitRingSlot.flags */
#define EXIT_SLOT_F_WRITE   (1u << 0)
#define EXIT_SLOT_F_POSTED  (1u << 1)   /* QEMU does not wait for it */

/*
 * ExitRingSlot.status, set by the handler.  For an access: OK or
 * UNHANDLED.  For a platform event: OK delivers it as QEMU would, to
 * the vCPU in the reply's @cpu (the handler may retarget it); SUPPRESS
 * drops it; HANDLED says the handler dealt with it (the guest sees
 * nothing); UNHANDLED takes the route's fallback.
 */
enum {
    EXIT_SLOT_OK = 0,
    EXIT_SLOT_UNHANDLED = 1,    /* QEMU takes the route's fallback */
    EXIT_SLOT_SUPPRESS = 2,     /* events: not delivered */
    EXIT_SLOT_HANDLED = 3,      /* events: the handler dealt with it */
};

/*
 * Platform events: ExitRingSlot.source (QEMU's ExitEventSource) and
 * .class (ExitEventClass); .bank is EXIT_SLOT_NO_BANK but for an MCE.
 */
enum {
    EXIT_SLOT_SOURCE_APM = 0,
    EXIT_SLOT_SOURCE_TCO = 1,
    EXIT_SLOT_SOURCE_QMP = 2,
    EXIT_SLOT_SOURCE_HMP = 3,
    EXIT_SLOT_SOURCE_WATCHDOG = 4,
    EXIT_SLOT_SOURCE_HOST = 5,
};

enum {
    EXIT_SLOT_CLASS_CORRECTED = 0,
    EXIT_SLOT_CLASS_SRAO = 1,
    EXIT_SLOT_CLASS_SRAR = 2,
    EXIT_SLOT_CLASS_FATAL = 3,
    EXIT_SLOT_CLASS_AO = 4,
    EXIT_SLOT_CLASS_AR = 5,
};

#define EXIT_SLOT_NO_BANK   0xff

/*
 * A platform event fills @event, @source, @cpu, @class and @bank; @addr
 * is the guest-physical address of an MCE or memory error, @data the APM
 * command of an SMI or the MCi_STATUS of an MCE, @size 8, and no flags.
 * A reply that delivers it may change @cpu (retarget it).
 */
typedef struct ExitRingSlot {
    uint32_t state;             /* EXIT_SLOT_* */
    uint32_t seq;               /* request number (low 32 bits of posted) */
    uint8_t event;              /* EXIT_HANDLER_EV_* */
    uint8_t size;               /* 1, 2, 4 or 8 */
    uint8_t flags;              /* EXIT_SLOT_F_* */
    uint8_t source;             /* events: EXIT_SLOT_SOURCE_* */
    uint32_t reply_seq;         /* handler: copies @seq into its reply */
    uint64_t addr;              /* port, guest-physical address, MSR */
    uint64_t data;              /* written value; the reply's read value */
    uint32_t status;            /* handler: EXIT_SLOT_OK, _UNHANDLED... */
    int32_t cpu;                /* events: the vCPU (-1: all or none) */
    uint8_t class;              /* events: EXIT_SLOT_CLASS_* */
    uint8_t bank;               /* MCE: the bank, else EXIT_SLOT_NO_BANK */
    uint16_t reserved1;
    uint32_t reserved2[5];
} ExitRingSlot;

_Static_assert(sizeof(ExitRingHdr) <= EXIT_RING_HDR_BYTES, "ring header");
_Static_assert(sizeof(ExitRingSlot) == EXIT_RING_SLOT_BYTES, "ring slot");

static inline uint32_t exit_ring_bytes(uint32_t slots)
{
    return EXIT_RING_HDR_BYTES + slots * EXIT_RING_SLOT_BYTES;
}

#endif

/*
 * qemu-tiers inter-VM queues: the ivq device's state, shared by its files
 * (ivq.c: the PCI device and its registers; ivq-ring.c: receive queues in
 * shared memory; ivq-link.c: the broker connection and the peers;
 * ivq-qmp.c: query-ivq; ivq-flip.c: page flip).
 *
 * Locking (docs/locking.rst): the BQL protects everything in IvqState
 * (MMIO, the doorbell and chardev handlers and QMP all run with it); a
 * region's IvqRegionCtl.lock (a process-shared robust mutex) protects
 * that region's queue indices against every QEMU that writes to it.
 * Order: BQL, then one queue lock; never two queue locks at once.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_IVQ_INTERNAL_H
#define HW_IVQ_INTERNAL_H

#include <pthread.h>
#include "hw/pci/pci_device.h"
#include "chardev/char-fe.h"
#include "qemu/event_notifier.h"
#include "ivq-proto.h"

#define TYPE_IVQ "ivq"
OBJECT_DECLARE_SIMPLE_TYPE(IvqState, IVQ)

/* PCI identity: QEMU's vendor id, a device id private to qemu-tiers. */
#define IVQ_PCI_VENDOR      0x1234
#define IVQ_PCI_DEVICE      0x11e9

/* BAR0 registers, 32 bits wide (docs/intervm-queues.rst). */
enum {
    IVQ_REG_ID          = 0x00, /* RO own peer id, IVQ_NO_PEER if none */
    IVQ_REG_PEERS       = 0x04, /* RO bit n: peer n is up */
    IVQ_REG_STATUS      = 0x08, /* RO IVQ_ST_* of the last operation */
    IVQ_REG_SEND_DONE   = 0x0c, /* RO messages the last send delivered */
    IVQ_REG_SEND_DEST   = 0x10, /* RW destination (single send) */
    IVQ_REG_SEND_LEN    = 0x14, /* RW payload bytes (single send) */
    IVQ_REG_SEND_OFF    = 0x18, /* RW first record in the send area */
    IVQ_REG_SEND_COUNT  = 0x1c, /* RW records to send, >= 1 */
    IVQ_REG_DB_EXIT     = 0x20, /* WO doorbell: sent when the write returns */
    IVQ_REG_DB_NOEXIT   = 0x24, /* WO doorbell: queued (ioeventfd) */
    IVQ_REG_SENDS       = 0x28, /* RO sends completed, both doorbells */
    IVQ_REG_RX_HEAD     = 0x2c, /* RO receive queue head (byte count) */
    IVQ_REG_RX_TAIL     = 0x30, /* RO receive queue tail (byte count) */
    IVQ_REG_RX_POP      = 0x34, /* WO pop this many messages */
    IVQ_REG_RX_COUNT    = 0x38, /* RO messages queued */
    IVQ_REG_INT_STATUS  = 0x3c, /* RW1C IVQ_INT_* */
    IVQ_REG_INT_MASK    = 0x40, /* RW IVQ_INT_* enabled */
    IVQ_REG_MAX_MSG     = 0x44, /* RO largest payload */
    IVQ_REG_SEND_SIZE   = 0x48, /* RO send area bytes (BAR2 offset 0) */
    IVQ_REG_RX_OFF      = 0x4c, /* RO receive queue's BAR2 offset */
    IVQ_REG_RX_SIZE     = 0x50, /* RO receive queue bytes */
    IVQ_REG_ERRORS      = 0x54, /* RO refused operations, all kinds */
    IVQ_BAR0_SIZE       = 0x100,
};

/* STATUS values. */
enum {
    IVQ_ST_OK = 0,
    IVQ_ST_UNKNOWN_PEER = 1,
    IVQ_ST_TOO_BIG = 2,
    IVQ_ST_QUEUE_FULL = 3,
    IVQ_ST_BAD_VALUE = 4,
    IVQ_ST_PEER_DOWN = 5,
    IVQ_ST__MAX
};

/* INT_STATUS / INT_MASK bits. */
#define IVQ_INT_RX          (1u << 0)   /* the receive queue grew */
#define IVQ_INT_PEER        (1u << 1)   /* a peer came up or went down */
#define IVQ_INT_SENT        (1u << 2)   /* a no-exit send completed */
#define IVQ_INT_ALL         (IVQ_INT_RX | IVQ_INT_PEER | IVQ_INT_SENT)

/*
 * Page flip (ivq-flip.c, docs/intervm-queues.rst).  A flipped message's
 * payload pages are the sender's: the receiver's QEMU maps them over its
 * queue's slots.  Descriptors say which, in the receiver's control page
 * (no guest maps it, so no guest can point a QEMU at another's pages).
 */
#define IVQ_PAGE            4096u
#define IVQ_FLIP_DESCS      128     /* descriptors a queue holds unmapped */
#define IVQ_FLIP_RUNS       96      /* runs a device lends at most */
#define IVQ_FLIP_MAX_RUNS   8       /* runs in one message, else copy */

typedef struct IvqFlipDesc {
    uint32_t rec;               /* free-running index of its record */
    uint32_t pos;               /* ring offset of the first page */
    uint32_t lender;            /* peer id whose region has the pages */
    uint32_t page;              /* first page, in the lender's region */
    uint32_t npages;
} IvqFlipDesc;

/* Pages given back to their lender when the receiver popped them. */
typedef struct IvqFlipRun {
    uint32_t page;
    uint32_t npages;
} IvqFlipRun;

/*
 * A run this device lent, and to whom (its own record, not shared): the
 * peer id and which coming of that peer (IvqPeer.gen; 0: ourselves).
 */
typedef struct IvqFlipLent {
    uint32_t page;
    uint32_t npages;
    uint32_t borrower;
    uint32_t gen;
} IvqFlipLent;


/* Page 0 of a region.  Written by every QEMU that sends to it. */
typedef struct IvqRegionCtl {
    uint32_t magic;             /* IVQ_REGION_MAGIC; set by the owner */
    uint32_t version;
    uint32_t ring_off;          /* in the window, after IVQ_CTL_SIZE */
    uint32_t ring_size;         /* power of two */
    uint32_t pool_page;         /* the flip pool's first page in the region */
    uint32_t pool_pages;
    pthread_mutex_t lock;       /* process-shared, robust */
    /*
     * Held by the owner's main thread from realize to unrealize, never
     * waited for: a peer that finds it owner-dead knows the owner's
     * process is gone (ivq_ring_owner_dead()), so the pages it was lent
     * are no longer mapped anywhere.
     */
    pthread_mutex_t alive;
    /* Under lock: */
    uint32_t head;              /* consumer: the owner's QEMU */
    uint32_t tail;              /* producers: every sender's QEMU */
    uint32_t count;             /* messages queued */
    /*
     * Flip descriptors: senders append at ftail under lock (before the
     * record's tail moves); the owner copies them out and moves fhead
     * (it alone, with a release store).
     */
    uint32_t fhead, ftail;
    IvqFlipDesc flip[IVQ_FLIP_DESCS];
    /* Runs given back to this region's owner, under lock. */
    uint32_t rhead, rtail;
    IvqFlipRun ret[IVQ_FLIP_RUNS];
} IvqRegionCtl;

/* A receive queue as one QEMU sees it (its own, or a peer's). */
typedef struct IvqRing {
    IvqRegionCtl *ctl;
    uint8_t *base;              /* the ring's first byte */
    uint32_t size;              /* read once: ctl is writable by others */
    /* Pages a flip may lend, read once: send area, then the pool. */
    uint32_t send_pages;        /* region pages [1, 1 + send_pages) */
    uint32_t pool_page, pool_pages;
} IvqRing;

/*
 * A borrower that went (PEER_DOWN) still holding our pages, its region
 * kept mapped until its alive lock says its process is gone.
 */
typedef struct IvqFlipGone {
    uint32_t id, gen;
    void *map;
    size_t map_size;
    IvqRing ring;
} IvqFlipGone;

typedef enum IvqPeerState {
    IVQ_PEER_NONE,              /* never seen: UNKNOWN_PEER */
    IVQ_PEER_UP,
    IVQ_PEER_GONE,              /* was up: PEER_DOWN */
} IvqPeerState;

typedef struct IvqPeer {
    IvqPeerState state;
    char name[IVQ_NAME_MAX];
    void *map;                  /* the peer's region */
    size_t map_size;
    IvqRing ring;
    int doorbell_fd;            /* the peer's eventfd, -1 if none */
    int region_fd;              /* its memfd: we map flipped pages from it */
    uint32_t gen;               /* which coming of this id (IvqFlipLent) */
    bool kick;                  /* rung when the current send ends */
} IvqPeer;

/* The next send, as the doorbell handler reads it. */
typedef struct IvqSendRegs {
    uint32_t dest;
    uint32_t len;
    uint32_t off;
    uint32_t count;
} IvqSendRegs;

struct IvqState {
    PCIDevice parent_obj;

    /* Properties, fixed after realize. */
    CharBackend chr;
    char *name;
    uint32_t send_size;
    uint32_t queue_size;
    char *flip_threshold;       /* "auto", "never" or a size */

    MemoryRegion bar0;
    MemoryRegion bar2;
    uint32_t bar2_size;

    /* Own region: a memfd, the window is BAR2. */
    int region_fd;
    uint8_t *region;
    size_t region_size;
    IvqRing ring;
    uint8_t *window;            /* BAR2 as the guest sees it (its RAMBlock) */
    EventNotifier doorbell;     /* peers ring it: our queue grew */
    EventNotifier db_noexit;    /* the guest rings it: send (no exit) */
    /*
     * Where db_noexit is served: this iothread (property iothread), or
     * the main loop.  Set before realize.  The handler takes the BQL in
     * the iothread: the device's state is the BQL's.
     */
    struct IOThread *iothread;

    /* Registers and device state; BQL. */
    uint32_t id;
    uint32_t want_id;           /* kept across broker restarts */
    uint32_t status;
    uint32_t send_done;
    uint32_t sends;
    IvqSendRegs send;
    uint32_t int_status;
    uint32_t int_mask;
    uint64_t seq;
    uint32_t mig_head, mig_tail, mig_count;    /* queue, while migrating */

    /* The broker connection; BQL. */
    uint8_t rx[sizeof(IvqProtoMsg)];
    uint32_t rx_len;
    bool connected;             /* WELCOME received */
    Error *migration_blocker;
    IvqPeer peers[IVQ_MAX_PEERS];

    /*
     * Page flip (ivq-flip.c); BQL.  flip_min: messages of at least this
     * many bytes flip (UINT64_MAX: never); flip_auto: measured at realize.
     * send_backing[i]: the region page behind send area page i.  used:
     * region pages not free to lend (everything but free pool pages).
     * held: descriptors of our queue whose pages are mapped, ring order.
     */
    uint64_t flip_min;
    bool flip_auto;
    uint32_t *send_backing;
    unsigned long *used;
    IvqFlipLent lent[IVQ_FLIP_RUNS];
    uint32_t lent_runs;
    uint32_t peer_gen;
    IvqFlipGone gone[IVQ_MAX_PEERS];
    uint32_t ngone;
    IvqFlipDesc *held;
    uint32_t held_head, held_tail, held_cap;
    uint64_t flip_fallbacks;

    /* Statistics (query-ivq); BQL. */
    uint64_t tx_msgs[2], tx_bytes[2];   /* by mode: copy, flip */
    uint64_t rx_msgs[2], rx_bytes[2];
    uint64_t errors[IVQ_ST__MAX];
    uint64_t guest_errors;
};

#define IVQ_MODE_COPY       0
#define IVQ_MODE_FLIP       1

/* ivq-ring.c */
void ivq_ring_init_ctl(IvqRegionCtl *ctl, uint32_t ring_off,
                       uint32_t ring_size, uint32_t pool_page,
                       uint32_t pool_pages);
bool ivq_ring_attach(IvqRing *r, void *region, size_t region_size);
uint32_t ivq_ring_push(IvqRing *r, const IvqMsgHeader *hdr,
                       const void *payload);
uint32_t ivq_ring_push_flip(IvqRing *r, const IvqMsgHeader *hdr,
                            const IvqFlipDesc *runs, uint32_t nruns);
uint32_t ivq_ring_pop(IvqRing *r, uint32_t n, uint64_t *bytes,
                      uint64_t *flip_msgs, uint64_t *flip_bytes,
                      uint32_t *from, uint32_t *to);
bool ivq_ring_return(IvqRing *r, const IvqFlipRun *run);
uint32_t ivq_ring_take_returns(IvqRing *r, IvqFlipRun *out, uint32_t max);
void ivq_ring_flush(IvqRing *r, uint32_t *from, uint32_t *to);
bool ivq_ring_hold_alive(IvqRing *r);
void ivq_ring_drop_alive(IvqRing *r);
bool ivq_ring_owner_dead(IvqRing *r);
void ivq_ring_indices(IvqRing *r, uint32_t *head, uint32_t *tail,
                      uint32_t *count);
uint32_t ivq_ring_max_payload(const IvqRing *r);

/* ivq-link.c */
void ivq_link_init(IvqState *s);
void ivq_link_cleanup(IvqState *s);
void ivq_peer_drop(IvqState *s, uint32_t id, bool event);
uint32_t ivq_peers_up(IvqState *s);

/* ivq-flip.c */
bool ivq_flip_init(IvqState *s, Error **errp);
void ivq_flip_cleanup(IvqState *s);
uint32_t ivq_flip_send(IvqState *s, uint32_t dst, IvqRing *ring,
                       IvqMsgHeader *h, uint32_t off, bool *flipped);
void ivq_flip_apply(IvqState *s);
void ivq_flip_release(IvqState *s, uint32_t from, uint32_t to);
void ivq_flip_release_all(IvqState *s);
bool ivq_flip_peer_gone(IvqState *s, uint32_t id);
uint64_t ivq_flip_lent_pages(IvqState *s);

/* ivq.c */
void ivq_raise(IvqState *s, uint32_t bits);

#endif

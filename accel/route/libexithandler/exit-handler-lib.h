/*
 * qemu-tiers external exit handlers: a small library for handler authors.
 *
 * It implements the handler's side of the protocol in
 * exit-handler-proto.h (docs/external-handlers-protocol.rst): the UNIX
 * socket, the HELLO handshake with its three file descriptors, and the
 * ring consumer with its doorbells.  Plain C, POSIX and Linux; no glib,
 * no QEMU headers.
 *
 * A handler's main loop:
 *
 *     int lfd = exit_handler_listen(path, &err);
 *     for (;;) {
 *         int fd = exit_handler_accept(lfd);
 *         ExitHandlerConn *c = exit_handler_handshake(fd, "mydev",
 *                                  EXIT_HANDLER_F_POSTED_WRITES, &err);
 *         if (c) {
 *             exit_handler_serve(c, my_access, my_state);
 *             exit_handler_conn_close(c);
 *         }
 *     }
 *
 * Error strings (@err) are malloc'ed and belong to the caller, who frees
 * them; @err may be NULL.  Functions returning an fd return -1 with errno
 * set on failure.  Every descriptor the library creates is close-on-exec.
 *
 * Stopping: exit_handler_request_stop() may be called from a signal
 * handler.  After it, every blocking call of the library returns soon:
 * exit_handler_serve() returns 1, the others fail with errno ECANCELED.
 * This state is process-wide.
 *
 * Threads: an ExitHandlerConn is used by one thread at a time; distinct
 * connections may be served by distinct threads.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef EXIT_HANDLER_LIB_H
#define EXIT_HANDLER_LIB_H

#include <stdbool.h>
#include <stdint.h>
#include "exit-handler-proto.h"

typedef struct ExitHandlerConn ExitHandlerConn;

/* One request from the ring, validated and copied out of shared memory. */
typedef struct ExitHandlerRequest {
    uint8_t event;      /* EXIT_HANDLER_EV_* */
    uint8_t size;       /* 1, 2, 4 or 8 */
    bool is_write;
    bool posted;        /* a posted write: QEMU is not waiting for it */
    uint32_t seq;       /* the slot's sequence number */
    uint64_t addr;      /* port, guest-physical address or MSR index */
    uint64_t data;      /* writes: the value, already masked to @size */
    /*
     * Platform events (EXIT_HANDLER_EV_SMI...): @addr and @data as the
     * protocol says (guest-physical address; APM command or MCi_STATUS)
     */
    uint8_t source;     /* EXIT_SLOT_SOURCE_* */
    uint8_t class;      /* EXIT_SLOT_CLASS_* (MCE, memory error) */
    uint8_t bank;       /* MCE: the bank; else EXIT_SLOT_NO_BANK */
    int32_t cpu;        /* the vCPU, -1: all or none */
} ExitHandlerRequest;

/* A platform event, not an access? */
static inline bool exit_handler_is_event(const ExitHandlerRequest *req)
{
    return req->event >= EXIT_HANDLER_EV_SMI;
}

/*
 * Handles one request.  For a read, store the value in *@data (the
 * library masks it to the access size; it is 0 on entry).  Return
 * EXIT_SLOT_OK or EXIT_SLOT_UNHANDLED (QEMU then takes the route's
 * fallback); any other value counts as EXIT_SLOT_UNHANDLED, except
 * EXIT_HANDLER_STOP: the request is left unanswered and
 * exit_handler_serve() returns 1 at once.
 *
 * A platform event (only with EXIT_HANDLER_F_EVENTS accepted): *@data
 * is the event's vCPU on entry; return EXIT_SLOT_OK to deliver it to the
 * vCPU left in *@data (the handler may retarget it), EXIT_SLOT_SUPPRESS,
 * EXIT_SLOT_HANDLED or EXIT_SLOT_UNHANDLED.
 */
typedef uint32_t (*ExitHandlerAccessFn)(void *opaque,
                                        const ExitHandlerRequest *req,
                                        uint64_t *data);

#define EXIT_HANDLER_STOP   0x80000000u

/*
 * What the library is about to publish for a request, in this order:
 * @data (reads only), @status and @reply_seq into the slot, then
 * @state (release store), then @completed into the ring header (release
 * store), then the call doorbell if QEMU waits.
 */
typedef struct ExitHandlerReply {
    uint64_t data;          /* the read value (written for reads only) */
    uint32_t status;        /* EXIT_SLOT_OK, EXIT_SLOT_UNHANDLED... */
    int32_t cpu;            /* events: the vCPU to deliver to */
    bool write_cpu;         /* store @cpu: true for events */
    uint32_t reply_seq;     /* the request's seq */
    uint32_t state;         /* EXIT_SLOT_DONE */
    bool write_data;        /* store @data: true for reads */
    uint64_t completed;     /* new ExitRingHdr.completed */
} ExitHandlerReply;

/*
 * A test hook: called with every reply before it is published and may
 * change any field, to send QEMU malformed replies (fuzzing).  The
 * library's own position in the ring still advances by one request.
 */
typedef void (*ExitHandlerTamperFn)(void *opaque, ExitHandlerConn *c,
                                    const ExitHandlerRequest *req,
                                    ExitHandlerReply *reply);

/* Sockets */

/*
 * Binds and listens on the UNIX socket @path.  A stale socket at @path
 * is unlinked first (anything else there is an error).  Returns the
 * listening fd.
 */
int exit_handler_listen(const char *path, char **err);

/*
 * Accepts one connection on @listen_fd, waiting as long as needed.
 * Returns the connected fd, or -1 (errno ECANCELED after a stop request).
 */
int exit_handler_accept(int listen_fd);

/*
 * Connects to the UNIX socket @path.  With @retry_ms > 0, while @path
 * does not exist or refuses connections, tries again every @retry_ms
 * milliseconds, until it succeeds or a stop is requested; with
 * @retry_ms <= 0 it tries once.  Returns the connected fd.
 */
int exit_handler_connect(const char *path, int retry_ms, char **err);

/* Handshake */

/*
 * The whole handshake on the connected socket @sock: receives and
 * validates HELLO, maps the ring, replies with HELLO_REPLY accepting
 * (offered & @supported_features) under @name (truncated to 31 bytes).
 * Takes ownership of @sock in every case: on failure it sends the
 * protocol's ERROR where one is due, closes @sock and returns NULL.
 */
ExitHandlerConn *exit_handler_handshake(int sock, const char *name,
                                        uint64_t supported_features,
                                        char **err);

/*
 * The two halves of exit_handler_handshake(), for handlers (and tests)
 * that want to look at HELLO or send a reply of their own.
 * exit_handler_recv_hello() takes ownership of @sock like
 * exit_handler_handshake().  exit_handler_send_reply() sends @reply as
 * it is (no check) and records reply->features as the accepted features;
 * exit_handler_accept_features() builds the correct reply.
 */
ExitHandlerConn *exit_handler_recv_hello(int sock, char **err);
ExitHandlerHelloReply exit_handler_accept_features(const ExitHandlerConn *c,
                                                   const char *name,
                                                   uint64_t supported);
int exit_handler_send_reply(ExitHandlerConn *c,
                            const ExitHandlerHelloReply *reply, char **err);

/* Sends EXIT_HANDLER_MSG_ERROR with @code and @text on @sock. */
int exit_handler_send_error(int sock, uint32_t code, const char *text);

/* Serving */

/*
 * Serves the ring: calls @fn for each request, strictly in order, and
 * publishes its reply.  Returns 0 when QEMU closes the socket, 1 after a
 * stop request (or EXIT_HANDLER_STOP from @fn), -1 on an error (errno
 * set).  May be called again after it returned 1.
 */
int exit_handler_serve(ExitHandlerConn *c, ExitHandlerAccessFn fn,
                       void *opaque);

/* Installs (or with @fn NULL removes) the tamper hook. */
void exit_handler_set_tamper(ExitHandlerConn *c, ExitHandlerTamperFn fn,
                             void *opaque);

/* Unmaps the ring and closes every descriptor of @c; NULL is a no-op. */
void exit_handler_conn_close(ExitHandlerConn *c);

/* Accessors */

/* HELLO as received (handler_id is NUL-terminated). */
const ExitHandlerHello *exit_handler_conn_hello(const ExitHandlerConn *c);
/* The features accepted in the reply. */
uint64_t exit_handler_conn_features(const ExitHandlerConn *c);
/* The connected socket (e.g. to write test garbage to it). */
int exit_handler_conn_socket(const ExitHandlerConn *c);
/* Requests completed on this connection. */
uint64_t exit_handler_conn_requests(const ExitHandlerConn *c);

/* Stopping (see above); exit_handler_request_stop is async-signal-safe. */
void exit_handler_request_stop(void);
bool exit_handler_stop_requested(void);

#endif

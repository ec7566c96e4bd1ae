/* RPC over TCP: length-prefixed protobuf Envelope frames (proto/rpc.proto) on libevent
 * bufferevents, with request/response correlation and per-request timeouts.
 *
 * Frame: 4-byte big-endian length, then the serialized Envelope. A frame longer than the
 * connection's max frame size (rpc.max-frame-size), an undecodable frame, a frame without a body
 * and a connection that ends inside a frame are protocol errors: the connection is closed with a
 * log line naming the peer, and its pending requests fail. Nothing a peer sends can crash us.
 *
 * All calls happen on the thread that runs the connection's event_base. */
#ifndef FLINT_RPC_H
#define FLINT_RPC_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "flint/status.h"
#include "rpc.pb-c.h"

typedef Flint__Rpc__Envelope rpc_envelope;
typedef struct rpc_conn rpc_conn;
typedef struct rpc_server rpc_server;

/* A message that is not a response. env is freed after the callback returns. */
typedef void (*rpc_message_fn)(rpc_conn *c, rpc_envelope *env, void *ud);
/* The connection is open (outgoing connections only). */
typedef void (*rpc_open_fn)(rpc_conn *c, void *ud);
/* The connection closed by the peer, by a protocol error or a failed connect: status and reason
 * say which. Called once; the connection is freed right after it returns. Not called for
 * rpc_close. */
typedef void (*rpc_close_fn)(rpc_conn *c, int status, const char *reason, void *ud);
/* The outcome of rpc_call: status FLINT_OK with the reply (freed after the callback returns), or
 * an error status (timeout, closed connection, or the peer's ErrorResponse) with a message and
 * reply NULL. */
typedef void (*rpc_reply_fn)(rpc_conn *c, int status, const char *message, rpc_envelope *reply,
                             void *ud);

typedef struct rpc_handlers {
    rpc_message_fn on_message;
    rpc_open_fn on_open;
    rpc_close_fn on_close;
    void *ud;
} rpc_handlers;

/* Accepted connection: the callee sets its handlers with rpc_conn_set_handlers. */
typedef void (*rpc_accept_fn)(rpc_conn *c, void *ud);

/* Listen for RPC connections on host:port (0 = any free port). NULL with err on failure. */
rpc_server *rpc_listen(struct event_base *base, const char *host, int port, size_t max_frame,
                       rpc_accept_fn on_accept, void *ud, flint_err *err);
int rpc_server_port(const rpc_server *s);
/* Stop listening and close (rpc_close) every accepted connection still open. */
void rpc_server_free(rpc_server *s);

/* Connect to host:port; h->on_open or h->on_close tells how it went. NULL with err when the host
 * does not resolve. The connection is owned by the caller until on_close or rpc_close. */
rpc_conn *rpc_connect(struct event_base *base, const char *host, int port, size_t max_frame,
                      const rpc_handlers *h, flint_err *err);
void rpc_conn_set_handlers(rpc_conn *c, const rpc_handlers *h);
/* The peer's "ip:port". */
const char *rpc_conn_peer(const rpc_conn *c);
/* The local address of the connection (the address this host uses to reach the peer). */
void rpc_conn_local_addr(const rpc_conn *c, char *buf, size_t len);
/* Any user pointer to hang on the connection (not owned). */
void rpc_conn_set_data(rpc_conn *c, void *data);
void *rpc_conn_data(const rpc_conn *c);

/* Send a one-way message. The envelope stays owned by the caller; its id is set here.
 * FLINT_TOO_LARGE when it exceeds the max frame size (nothing sent), FLINT_CLOSED after close. */
int rpc_send(rpc_conn *c, rpc_envelope *env);
/* Send a request and get the reply (or an error) through fn within timeout_ms. On a non-zero
 * return fn is not called. */
int rpc_call(rpc_conn *c, rpc_envelope *req, int64_t timeout_ms, rpc_reply_fn fn, void *ud);
/* Answer request req with reply (caller-owned). */
int rpc_reply(rpc_conn *c, const rpc_envelope *req, rpc_envelope *reply);
/* Answer request req with an ErrorResponse. */
int rpc_reply_error(rpc_conn *c, const rpc_envelope *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Close and free the connection, failing its pending requests with FLINT_CLOSED. Safe inside
 * this connection's callbacks: the memory is released once the callback returns. */
void rpc_close(rpc_conn *c);
/* Number of requests waiting for a reply. */
size_t rpc_pending_count(const rpc_conn *c);

/* Blocking request/response for short-lived clients (the CLI): connect to host:port, send req,
 * wait up to timeout_ms for the reply. On FLINT_OK *reply is the reply, which the caller frees
 * with rpc_envelope_free. An ErrorResponse from the peer is returned as its code and message. */
int rpc_call_sync(const char *host, int port, rpc_envelope *req, int64_t timeout_ms,
                  size_t max_frame, rpc_envelope **reply, flint_err *err);

void rpc_envelope_free(rpc_envelope *env);
/* The name of the envelope's body ("heartbeat"), for log lines. */
const char *rpc_body_name(const rpc_envelope *env);

#endif

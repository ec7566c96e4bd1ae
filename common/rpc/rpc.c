/* RPC framing, correlation and timeouts over libevent (see rpc.h). */
#include <assert.h>
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "rpc"
#include "rpc/net.h"
#include "rpc/rpc.h"
#include "util/alloc.h"
#include "util/log.h"

#define RPC_HEADER 4

/* A request waiting for its reply; owned by the connection's pending list. */
typedef struct rpc_pending {
    uint64_t id;
    rpc_reply_fn fn;
    void *ud;
    struct event *timer;
    int64_t timeout_ms;
    rpc_conn *conn;
    struct rpc_pending *next;
} rpc_pending;

struct rpc_conn {
    struct event_base *base;
    struct bufferevent *bev;   /* NULL once closed */
    rpc_handlers h;
    size_t max_frame;
    char peer[64];
    uint64_t next_id;
    rpc_pending *pending;
    size_t npending;
    int depth;                 /* nesting of user callbacks running on this connection */
    bool closed;
    void *data;
    rpc_server *server;        /* the server that accepted it, NULL for outgoing connections */
    rpc_conn *srv_prev, *srv_next;
};

struct rpc_server {
    net_listener *listener;
    rpc_conn *conns;           /* accepted connections still open */
    size_t max_frame;
    rpc_accept_fn on_accept;
    void *ud;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static rpc_conn *conn_new(struct event_base *base, struct bufferevent *bev, size_t max_frame) {
    rpc_conn *c = XNEW(rpc_conn);
    c->base = base;
    c->bev = bev;
    c->max_frame = max_frame;
    c->next_id = 1;
    bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return c;
}

static void pending_free(rpc_pending *p) {
    event_free(p->timer);
    free(p);
}

/* Unlink and return the pending request with this id, or NULL. */
static rpc_pending *pending_take(rpc_conn *c, uint64_t id) {
    for (rpc_pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id != id) continue;
        rpc_pending *p = *pp;
        *pp = p->next;
        c->npending--;
        return p;
    }
    return NULL;
}

static void conn_maybe_free(rpc_conn *c) {
    if (c->closed && c->depth == 0) {
        assert(c->pending == NULL && c->bev == NULL);
        free(c);
    }
}

/* Release the socket and fail every pending request; then tell the owner (unless it closed the
 * connection itself). The struct lives on until no callback runs on it. */
static void conn_shutdown(rpc_conn *c, int status, const char *reason, bool notify) {
    if (c->closed) return;
    c->closed = true;
    if (c->server) {
        if (c->srv_prev) c->srv_prev->srv_next = c->srv_next;
        else c->server->conns = c->srv_next;
        if (c->srv_next) c->srv_next->srv_prev = c->srv_prev;
        c->server = NULL;
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->depth++;
    while (c->pending) {
        rpc_pending *p = c->pending;
        c->pending = p->next;
        c->npending--;
        char msg[256];
        snprintf(msg, sizeof msg, "connection to %s closed before the reply: %s", c->peer, reason);
        p->fn(c, status == FLINT_OK ? FLINT_CLOSED : status, msg, NULL, p->ud);
        pending_free(p);
    }
    if (notify && c->h.on_close) c->h.on_close(c, status, reason, c->h.ud);
    c->depth--;
}

static void conn_protocol_error(rpc_conn *c, const char *fmt, ...) {
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    log_warn("closing connection from %s: protocol error: %s", c->peer, reason);
    conn_shutdown(c, FLINT_PROTOCOL, reason, true);
}

static void dispatch(rpc_conn *c, rpc_envelope *env) {
    if (env->reply_to) {
        rpc_pending *p = pending_take(c, env->reply_to);
        if (!p) {
            log_debug("reply %llu from %s matches no request (timed out?)",
                      (unsigned long long)env->reply_to, c->peer);
            return;
        }
        if (env->body_case == FLINT__RPC__ENVELOPE__BODY_ERROR) {
            unsigned code = env->error->code;
            p->fn(c, code && code < FLINT_STATUS_COUNT_ ? (int)code : FLINT_ERR,
                  env->error->message, NULL, p->ud);
        } else {
            p->fn(c, FLINT_OK, NULL, env, p->ud);
        }
        pending_free(p);
        return;
    }
    if (c->h.on_message) c->h.on_message(c, env, c->h.ud);
}

/* Decode every complete frame in the input buffer. */
static void conn_read_cb(struct bufferevent *bev, void *arg) {
    rpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->depth++;
    while (!c->closed) {
        size_t avail = evbuffer_get_length(in);
        if (avail < RPC_HEADER) break;
        unsigned char hdr[RPC_HEADER];
        evbuffer_copyout(in, hdr, RPC_HEADER);
        size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        if (len > c->max_frame) {
            conn_protocol_error(c, "frame of %zu bytes exceeds rpc.max-frame-size (%zu bytes)", len,
                                c->max_frame);
            break;
        }
        if (avail < RPC_HEADER + len) break;
        evbuffer_drain(in, RPC_HEADER);
        const uint8_t *data = evbuffer_pullup(in, (ssize_t)len);
        rpc_envelope *env = flint__rpc__envelope__unpack(NULL, len, data);
        evbuffer_drain(in, len);
        if (!env) {
            conn_protocol_error(c, "undecodable frame of %zu bytes", len);
            break;
        }
        if (env->body_case == FLINT__RPC__ENVELOPE__BODY__NOT_SET) {
            flint__rpc__envelope__free_unpacked(env, NULL);
            conn_protocol_error(c, "frame without a message body (unknown message type?)");
            break;
        }
        dispatch(c, env);
        flint__rpc__envelope__free_unpacked(env, NULL);
    }
    c->depth--;
    conn_maybe_free(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
    rpc_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        net_peer_addr(bev, c->peer, sizeof c->peer);
        c->depth++;
        if (c->h.on_open) c->h.on_open(c, c->h.ud);
        c->depth--;
        conn_maybe_free(c);
        return;
    }
    char reason[256];
    size_t left = evbuffer_get_length(bufferevent_get_input(bev));
    int status = FLINT_CLOSED;
    if (what & BEV_EVENT_ERROR) {
        snprintf(reason, sizeof reason, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        status = FLINT_UNAVAILABLE;
    } else if (left) {
        snprintf(reason, sizeof reason, "connection ended inside a frame (%zu bytes left)", left);
        log_warn("closing connection from %s: protocol error: %s", c->peer, reason);
        status = FLINT_PROTOCOL;
    } else {
        snprintf(reason, sizeof reason, "closed by peer");
    }
    conn_shutdown(c, status, reason, true);
    conn_maybe_free(c);
}

/* ---- servers and connections ----------------------------------------------------------- */

static void server_accept(struct bufferevent *bev, const char *peer, void *ud) {
    rpc_server *s = ud;
    rpc_conn *c = conn_new(bufferevent_get_base(bev), bev, s->max_frame);
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->server = s;
    c->srv_next = s->conns;
    if (s->conns) s->conns->srv_prev = c;
    s->conns = c;
    s->on_accept(c, s->ud);
}

rpc_server *rpc_listen(struct event_base *base, const char *host, int port, size_t max_frame,
                       rpc_accept_fn on_accept, void *ud, flint_err *err) {
    assert(base && on_accept && max_frame > 0);
    rpc_server *s = XNEW(rpc_server);
    s->max_frame = max_frame;
    s->on_accept = on_accept;
    s->ud = ud;
    s->listener = net_listen(base, host, port, server_accept, s, err);
    if (!s->listener) {
        free(s);
        return NULL;
    }
    return s;
}

int rpc_server_port(const rpc_server *s) { return net_listener_port(s->listener); }

void rpc_server_free(rpc_server *s) {
    if (!s) return;
    while (s->conns) rpc_close(s->conns);
    net_listener_free(s->listener);
    free(s);
}

rpc_conn *rpc_connect(struct event_base *base, const char *host, int port, size_t max_frame,
                      const rpc_handlers *h, flint_err *err) {
    struct bufferevent *bev = net_connect(base, host, port, err);
    if (!bev) return NULL;
    rpc_conn *c = conn_new(base, bev, max_frame);
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    if (h) c->h = *h;
    return c;
}

void rpc_conn_set_handlers(rpc_conn *c, const rpc_handlers *h) { c->h = *h; }
const char *rpc_conn_peer(const rpc_conn *c) { return c->peer; }
void rpc_conn_set_data(rpc_conn *c, void *data) { c->data = data; }
void *rpc_conn_data(const rpc_conn *c) { return c->data; }
size_t rpc_pending_count(const rpc_conn *c) { return c->npending; }

void rpc_conn_local_addr(const rpc_conn *c, char *buf, size_t len) {
    if (c->bev)
        net_local_addr(c->bev, buf, len, NULL);
    else
        snprintf(buf, len, "?");
}

void rpc_close(rpc_conn *c) {
    if (!c) return;
    conn_shutdown(c, FLINT_CLOSED, "closed locally", false);
    conn_maybe_free(c);
}

/* ---- sending ----------------------------------------------------------------------------- */

static int conn_write(rpc_conn *c, rpc_envelope *env) {
    if (c->closed) return FLINT_CLOSED;
    size_t len = flint__rpc__envelope__get_packed_size(env);
    if (len > c->max_frame) {
        log_error("refusing to send %s of %zu bytes to %s: exceeds rpc.max-frame-size (%zu bytes)",
                  rpc_body_name(env), len, c->peer, c->max_frame);
        return FLINT_TOO_LARGE;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(RPC_HEADER + len), &vec, 1) != 1) return FLINT_NOMEM;
    uint8_t *p = vec.iov_base;
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    flint__rpc__envelope__pack(env, p + RPC_HEADER);
    vec.iov_len = RPC_HEADER + len;
    evbuffer_commit_space(out, &vec, 1);
    return 0;
}

int rpc_send(rpc_conn *c, rpc_envelope *env) {
    assert(c && env && env->body_case != FLINT__RPC__ENVELOPE__BODY__NOT_SET);
    env->id = c->next_id++;
    return conn_write(c, env);
}

static void pending_timeout(evutil_socket_t fd, short what, void *arg) {
    rpc_pending *p = arg;
    rpc_conn *c = p->conn;
    (void)fd, (void)what;
    if (!pending_take(c, p->id)) return;
    char msg[128];
    snprintf(msg, sizeof msg, "no reply from %s within %lld ms", c->peer, (long long)p->timeout_ms);
    c->depth++;
    p->fn(c, FLINT_TIMEOUT, msg, NULL, p->ud);
    c->depth--;
    pending_free(p);
    conn_maybe_free(c);
}

int rpc_call(rpc_conn *c, rpc_envelope *req, int64_t timeout_ms, rpc_reply_fn fn, void *ud) {
    assert(c && req && fn && timeout_ms > 0);
    int rc = rpc_send(c, req);
    if (rc) return rc;
    rpc_pending *p = XNEW(rpc_pending);
    p->id = req->id;
    p->fn = fn;
    p->ud = ud;
    p->conn = c;
    p->timeout_ms = timeout_ms;
    p->timer = evtimer_new(c->base, pending_timeout, p);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    p->next = c->pending;
    c->pending = p;
    c->npending++;
    return 0;
}

int rpc_reply(rpc_conn *c, const rpc_envelope *req, rpc_envelope *reply) {
    assert(req->id != 0);
    reply->reply_to = req->id;
    return rpc_send(c, reply);
}

int rpc_reply_error(rpc_conn *c, const rpc_envelope *req, int code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Flint__Rpc__ErrorResponse er = FLINT__RPC__ERROR_RESPONSE__INIT;
    er.code = (uint32_t)code;
    er.message = msg;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_ERROR;
    env.error = &er;
    return rpc_reply(c, req, &env);
}

void rpc_envelope_free(rpc_envelope *env) {
    if (env) flint__rpc__envelope__free_unpacked(env, NULL);
}

const char *rpc_body_name(const rpc_envelope *env) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &flint__rpc__envelope__descriptor, (unsigned)env->body_case);
    return f ? f->name : "nothing";
}

/* ---- blocking calls ------------------------------------------------------------------------ */

typedef struct sync_call {
    rpc_envelope *req, *reply;
    int64_t timeout_ms;
    int status;
    char message[512];
    bool done;
    bool conn_gone;            /* on_close ran: the connection is already freed */
    struct event_base *base;
} sync_call;

static void sync_finish(sync_call *s, int status, const char *message) {
    if (s->done) return;
    s->done = true;
    s->status = status;
    snprintf(s->message, sizeof s->message, "%s", message ? message : "");
    event_base_loopbreak(s->base);
}

static void sync_reply(rpc_conn *c, int status, const char *message, rpc_envelope *reply, void *ud) {
    sync_call *s = ud;
    (void)c;
    if (status == FLINT_OK) {
        /* The reply is freed when we return: keep a copy. */
        size_t len = flint__rpc__envelope__get_packed_size(reply);
        uint8_t *buf = xmalloc(len);
        flint__rpc__envelope__pack(reply, buf);
        s->reply = flint__rpc__envelope__unpack(NULL, len, buf);
        free(buf);
    }
    sync_finish(s, status, message);
}

static void sync_open(rpc_conn *c, void *ud) {
    sync_call *s = ud;
    int rc = rpc_call(c, s->req, s->timeout_ms, sync_reply, s);
    if (rc) sync_finish(s, rc, "cannot send the request");
}

static void sync_close(rpc_conn *c, int status, const char *reason, void *ud) {
    sync_call *s = ud;
    (void)c;
    s->conn_gone = true;
    sync_finish(s, status, reason);
}

static void sync_deadline(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what;
    sync_finish(ud, FLINT_TIMEOUT, "no answer in time");
}

int rpc_call_sync(const char *host, int port, rpc_envelope *req, int64_t timeout_ms,
                  size_t max_frame, rpc_envelope **reply, flint_err *err) {
    *reply = NULL;
    sync_call s = {.req = req, .timeout_ms = timeout_ms, .base = event_base_new()};
    rpc_handlers h = {.on_open = sync_open, .on_close = sync_close, .ud = &s};
    rpc_conn *c = rpc_connect(s.base, host, port, max_frame, &h, err);
    if (!c) {
        event_base_free(s.base);
        return err ? err->code : FLINT_UNAVAILABLE;
    }
    struct event *deadline = evtimer_new(s.base, sync_deadline, &s);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(deadline, &tv);
    event_base_dispatch(s.base);
    event_free(deadline);
    if (!s.done) sync_finish(&s, FLINT_CLOSED, "connection closed");
    if (!s.conn_gone) rpc_close(c);
    event_base_free(s.base);
    if (s.status != FLINT_OK) {
        rpc_envelope_free(s.reply);
        return flint_err_set(err, s.status, "%s:%d: %s", host, port, s.message);
    }
    *reply = s.reply;
    return FLINT_OK;
}

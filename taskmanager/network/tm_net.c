/* The network environment: the segment pool, the partition registry and the I/O thread, which
 * runs its own libevent loop and owns every data connection. A consumer taskmanager opens one
 * connection per producer taskmanager and multiplexes its remote channels over it by channel id;
 * the producer side serves subpartitions to those channels against credit (see tm_net_wire.h for
 * the messages). Task threads reach the I/O thread through three queues under io_mu
 * (commands, channels with credit to announce, readers with buffers to send) and one libevent
 * user event. Producers write through their connections' bufferevents (segments by reference,
 * many per writev); consumers read their sockets themselves, payloads straight into segments. */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

#define LOG_MODULE "net"
#include "network/tm_net_int.h"
#include "network/tm_net_wire.h"
#include "rpc/net.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- channel id -> channel / reader ------------------------------------------------------------ */
typedef struct idmap {
    uint32_t *keys;
    void **vals;      /* NULL: empty slot; TOMB: deleted */
    uint32_t cap, used, count;
} idmap;

static char tomb_;
#define TOMB ((void *)&tomb_)

static uint32_t id_hash(uint32_t k) {
    k *= 0x9E3779B1u;
    return k ^ (k >> 15);
}

static void *idmap_get(const idmap *m, uint32_t k) {
    if (!m->cap) return NULL;
    for (uint32_t i = id_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i]) return NULL;
        if (m->vals[i] != TOMB && m->keys[i] == k) return m->vals[i];
    }
}

static void idmap_put(idmap *m, uint32_t k, void *v);

static void idmap_grow(idmap *m) {
    idmap old = *m;
    m->cap = old.cap ? (old.count * 4 > old.cap ? old.cap * 2 : old.cap) : 16;
    m->keys = xcalloc(m->cap, sizeof *m->keys);
    m->vals = xcalloc(m->cap, sizeof *m->vals);
    m->used = m->count = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.vals[i] && old.vals[i] != TOMB) idmap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

/* k must not be present. */
static void idmap_put(idmap *m, uint32_t k, void *v) {
    if ((m->used + 1) * 2 > m->cap) idmap_grow(m);
    uint32_t i = id_hash(k) & (m->cap - 1);
    while (m->vals[i]) i = (i + 1) & (m->cap - 1);
    m->keys[i] = k;
    m->vals[i] = v;
    m->used++;
    m->count++;
}

static void idmap_del(idmap *m, uint32_t k) {
    if (!m->cap) return;
    for (uint32_t i = id_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i]) return;
        if (m->vals[i] != TOMB && m->keys[i] == k) {
            m->vals[i] = TOMB;
            m->count--;
            return;
        }
    }
}

static void idmap_free(idmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- connections and server-side readers -------------------------------------------------------- */
#define SERVER_MAX_WRITE (4u << 20)   /* bytes per writev on a producer's connection at most */
#define RX_STAGE 16384     /* a client connection's staging area */
#define RX_BIG 4096        /* a Buffer this large is read into its segment alone, header apart */
#define RX_ROUNDS 16       /* readv calls per readable event at most (then other connections) */

/* A client connection's receiving state (consumer side, I/O thread). */
typedef struct tm_rx {
    struct event *ev;         /* EV_READ on the socket, from connected to destroyed */
    uint8_t *stage;           /* RX_STAGE bytes */
    uint32_t spos, slen;      /* staged bytes not parsed yet: stage[spos, slen) */
    bool body;                /* reading the payload of the Buffer hdr */
    bool big;                 /* the last Buffer was large: read the next header alone */
    tm_wire_hdr hdr;
    uint32_t have;            /* payload bytes read */
    tm_chan *ch;              /* the Buffer's channel and segment (NULL: the payload is dropped) */
    tm_buf *b;
} tm_rx;

typedef struct tm_conn {
    tm_dl link;               /* net->clients or net->servers */
    tm_net *net;
    struct bufferevent *bev;
    bool client, connected, closing;
    char addr[300];           /* the peer, "host:port" */
    char *rid;                /* client: the producer's resource id */
    char *host;               /* client: as given by the channel */
    int port;
    idmap map;                /* id -> tm_chan (client) or tm_reader (server) */
    tm_dl users;              /* client: tm_chan.conn_link; server: tm_reader.conn_link */
    uint32_t next_id;         /* client: next channel id */
    tm_rx rx;                 /* client */
} tm_conn;

/* A remote consumer's channel as seen by the producer: reads one subpartition. */
typedef struct tm_reader {
    tm_sub_reader sr;
    tm_conn *conn;
    uint32_t id;
    uint32_t seq;
    int64_t credit;
    bool in_ready;            /* under net->io_mu */
    tm_dl ready_link;         /* net->ready */
    tm_dl conn_link;
} tm_reader;

typedef struct io_cmd {
    tm_dl link;
    void (*fn)(tm_net *net, void *arg);
    void *arg;
    bool done;
} io_cmd;

static void wake_io_locked(tm_net *net, bool *wake) {
    *wake = !net->notify_pending;
    net->notify_pending = true;
}

static void wake_io(tm_net *net) { event_active(net->notify_ev, EV_READ, 0); }

/* Run fn(net, arg) on the I/O thread and wait for it. */
static void run_on_io(tm_net *net, void (*fn)(tm_net *, void *), void *arg) {
    assert(!pthread_equal(pthread_self(), net->thread));
    io_cmd c = {.fn = fn, .arg = arg};
    bool wake;
    pthread_mutex_lock(&net->io_mu);
    tm_dl_push(&net->cmds, &c.link);
    wake_io_locked(net, &wake);
    pthread_mutex_unlock(&net->io_mu);
    if (wake) wake_io(net);
    pthread_mutex_lock(&net->io_mu);
    while (!c.done) pthread_cond_wait(&net->io_cv, &net->io_mu);
    pthread_mutex_unlock(&net->io_mu);
}

/* ---- sending ---------------------------------------------------------------------------------- */

static void send_msg(tm_conn *c, uint8_t type, uint32_t chan, const void *payload, uint32_t size) {
    uint8_t h[TM_WIRE_HEADER];
    tm_wire_hdr hdr = {.type = type, .channel = chan, .size = size};
    tm_wire_encode(h, &hdr);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, h, sizeof h);
    if (size) evbuffer_add(out, payload, size);
}

static void send_error(tm_conn *c, uint32_t chan, uint32_t code, const char *msg) {
    uint8_t p[4 + TM_WIRE_MAX_MESSAGE];
    size_t n = strlen(msg);
    if (n > TM_WIRE_MAX_MESSAGE) n = TM_WIRE_MAX_MESSAGE;
    tm_wire_put32(p, code);
    memcpy(p + 4, msg, n);
    send_msg(c, TM_MSG_ERROR_RESPONSE, chan, p, (uint32_t)(4 + n));
}

static void buf_sent(const void *data, size_t len, void *extra) {
    (void)data, (void)len;
    tm_buf *b = extra;
    tm_pool_put(b->pool, b);
}

/* ---- producer side: serving subpartitions ---------------------------------------------------------- */

static void reader_notify(tm_sub_reader *sr) {
    tm_reader *r = TM_DL_ENTRY(sr, tm_reader, sr);
    tm_net *net = r->conn->net;
    bool wake = false;
    pthread_mutex_lock(&net->io_mu);
    if (!r->in_ready) {
        r->in_ready = true;
        tm_dl_push(&net->ready, &r->ready_link);
        wake_io_locked(net, &wake);
    }
    pthread_mutex_unlock(&net->io_mu);
    if (wake) wake_io(net);
}

static void reader_close(tm_reader *r) {
    tm_net *net = r->conn->net;
    idmap_del(&r->conn->map, r->id);
    tm_dl_del(&r->conn_link);
    tm_partition_detach(&r->sr);   /* no notify after this */
    pthread_mutex_lock(&net->io_mu);
    if (r->in_ready) tm_dl_del(&r->ready_link);
    r->in_ready = false;
    pthread_mutex_unlock(&net->io_mu);
    free(r);
}

/* Send what r's credit allows. */
static void reader_send(tm_reader *r) {
    tm_conn *c = r->conn;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (r->credit > 0) {
        int backlog, st;
        char msg[400];
        tm_buf *b = tm_partition_pop(&r->sr, &backlog, false, &st, msg, sizeof msg);
        if (!b) {
            if (st != FLINT_OK) {
                send_error(c, r->id, TM_WIRE_ERR_FATAL, msg);
                reader_close(r);
            }
            return;
        }
        bool eop = b->flags & TM_BUF_EOP;
        uint8_t h[TM_WIRE_HEADER];
        tm_wire_hdr hdr = {.type = TM_MSG_BUFFER,
                           .flags = (b->flags & TM_BUF_EVENT) ? TM_WIRE_FLAG_EVENT : 0,
                           .channel = r->id,
                           .seq = r->seq++,
                           .backlog = (uint32_t)backlog,
                           .size = b->size};
        tm_wire_encode(h, &hdr);
        evbuffer_add(out, h, sizeof h);
        /* Zero copy: the segment goes back to the pool once written to the socket. */
        if (evbuffer_add_reference(out, b->data, b->size, buf_sent, b) < 0) tm_pool_put(b->pool, b);
        r->credit--;
        if (eop) {
            reader_close(r);
            return;
        }
    }
}

static void server_destroy(tm_conn *c) {
    tm_dl *n;
    while ((n = c->users.next) != &c->users) reader_close(TM_DL_ENTRY(n, tm_reader, conn_link));
    tm_dl_del(&c->link);
    bufferevent_free(c->bev);
    idmap_free(&c->map);
    free(c);
}

static void server_protocol_error(tm_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void server_protocol_error(tm_conn *c, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_warn("protocol error on data connection from %s: %s; closing it", c->addr, msg);
    server_destroy(c);
}

/* A PartitionRequest. Returns false when it was a protocol error (c is destroyed). */
static bool server_request(tm_conn *c, const tm_wire_hdr *h, const uint8_t *p) {
    tm_net *net = c->net;
    if (h->size < 10) {
        server_protocol_error(c, "short PartitionRequest");
        return false;
    }
    uint32_t sub = tm_wire_get32(p), credit = tm_wire_get32(p + 4);
    uint16_t idlen = tm_wire_get16(p + 8);
    if (idlen == 0 || idlen > TM_WIRE_MAX_ID || 10u + idlen != h->size) {
        server_protocol_error(c, "bad partition id length %u in PartitionRequest", idlen);
        return false;
    }
    if (credit > TM_WIRE_MAX_CREDIT || sub > INT32_MAX || h->channel == TM_WIRE_NO_CHANNEL) {
        server_protocol_error(c, "bad PartitionRequest (credit %u, subpartition %u)", credit, sub);
        return false;
    }
    if (idmap_get(&c->map, h->channel)) {
        server_protocol_error(c, "PartitionRequest for channel %u, which is in use", h->channel);
        return false;
    }
    char pid[TM_WIRE_MAX_ID + 1];
    memcpy(pid, p + 10, idlen);
    pid[idlen] = '\0';
    tm_reader *r = XNEW(tm_reader);
    r->sr.notify = reader_notify;
    r->conn = c;
    r->id = h->channel;
    r->credit = credit;
    tm_dl_init(&r->ready_link);
    tm_dl_init(&r->conn_link);
    char msg[400];
    int rc = tm_partition_attach(net, pid, (int)sub, &r->sr, msg, sizeof msg);
    if (rc != FLINT_OK) {
        if (rc != FLINT_NOT_FOUND) log_info("refusing request from %s: %s", c->addr, msg);
        send_error(c, h->channel,
                   rc == FLINT_NOT_FOUND ? TM_WIRE_ERR_PARTITION_NOT_FOUND : TM_WIRE_ERR_FATAL, msg);
        free(r);
        return true;
    }
    idmap_put(&c->map, r->id, r);
    tm_dl_push(&c->users, &r->conn_link);
    reader_send(r);
    return true;
}

static void server_read(struct bufferevent *bev, void *arg) {
    tm_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < TM_WIRE_HEADER) return;
        uint8_t raw[TM_WIRE_HEADER];
        evbuffer_copyout(in, raw, sizeof raw);
        tm_wire_hdr h;
        const char *why;
        if (tm_wire_decode(raw, &h, &why)) {
            server_protocol_error(c, "%s", why);
            return;
        }
        if (h.size > TM_WIRE_MAX_CONTROL) {
            server_protocol_error(c, "message type %u of %u bytes", h.type, h.size);
            return;
        }
        if (avail < TM_WIRE_HEADER + h.size) return;
        uint8_t p[TM_WIRE_MAX_CONTROL];
        evbuffer_drain(in, TM_WIRE_HEADER);
        evbuffer_remove(in, p, h.size);
        tm_reader *r;
        switch (h.type) {
        case TM_MSG_PARTITION_REQUEST:
            if (!server_request(c, &h, p)) return;
            break;
        case TM_MSG_ADD_CREDIT: {
            uint32_t credit = h.size == 4 ? tm_wire_get32(p) : 0;
            if (credit == 0 || credit > TM_WIRE_MAX_CREDIT) {
                server_protocol_error(c, "bad AddCredit");
                return;
            }
            r = idmap_get(&c->map, h.channel);
            if (!r) break;   /* the channel has ended or was canceled */
            r->credit += credit;
            if (r->credit > TM_WIRE_MAX_CREDIT) {
                server_protocol_error(c, "credit of channel %u above %u", h.channel,
                                      TM_WIRE_MAX_CREDIT);
                return;
            }
            reader_send(r);
            break;
        }
        case TM_MSG_CANCEL_PARTITION:
            if (h.size) {
                server_protocol_error(c, "CancelPartition with a payload");
                return;
            }
            if ((r = idmap_get(&c->map, h.channel))) reader_close(r);
            break;
        case TM_MSG_CLOSE_REQUEST:
            log_debug("data connection from %s closed by the consumer", c->addr);
            server_destroy(c);
            return;
        default:
            server_protocol_error(c, "unexpected message type %u from a consumer", h.type);
            return;
        }
    }
}

static void server_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    tm_conn *c = arg;
    if (what & BEV_EVENT_ERROR)
        log_info("data connection from %s failed: %s", c->addr,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    else
        log_debug("data connection from %s closed", c->addr);
    server_destroy(c);
}

static void on_accept(struct bufferevent *bev, const char *peer, void *ud) {
    tm_net *net = ud;
    tm_conn *c = XNEW(tm_conn);
    c->net = net;
    c->bev = bev;
    c->connected = true;
    snprintf(c->addr, sizeof c->addr, "%s", peer);
    tm_dl_init(&c->users);
    tm_dl_push(&net->servers, &c->link);
    bufferevent_setcb(bev, server_read, NULL, server_event, c);
    /* Write whatever is queued (up to libevent's 128 segments) per writev, not 16 KiB. */
    bufferevent_set_max_single_write(bev, SERVER_MAX_WRITE);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    log_debug("data connection from %s", peer);
}

/* ---- consumer side: channels ------------------------------------------------------------------- */

static void chan_origin(const tm_chan *ch, char *buf, size_t len) {
    if (ch->local)
        snprintf(buf, len, "partition %s (subpartition %d) at the local taskmanager %s",
                 ch->partition_id, ch->subpartition, ch->producer_rid);
    else
        snprintf(buf, len, "partition %s (subpartition %d) from taskmanager %s at %s:%d",
                 ch->partition_id, ch->subpartition, ch->producer_rid, ch->host, ch->port);
}

static void client_destroy(tm_conn *c);
static void client_close(tm_conn *c);
static void rx_abandon(tm_conn *c);

/* ch no longer uses its connection. */
static void chan_release_conn(tm_chan *ch) {
    tm_conn *c = ch->conn;
    if (!c) return;
    if (c->rx.ch == ch) rx_abandon(c);
    if (ch->state == TM_CH_REQUESTED) idmap_del(&c->map, ch->id);
    tm_dl_del(&ch->conn_link);
    ch->conn = NULL;
    if (tm_dl_empty(&c->users)) client_close(c);
}

static void chan_fail(tm_chan *ch, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void chan_fail(tm_chan *ch, int status, const char *fmt, ...) {
    char msg[400], origin[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    chan_origin(ch, origin, sizeof origin);
    chan_release_conn(ch);
    ch->state = TM_CH_FAILED;
    if (!ch->local) tm_input_close_chan(ch);
    log_warn("input channel reading %s failed: %s", origin, msg);
    tm_input_fail(ch, status, "input channel reading %s failed: %s", origin, msg);
}

static void chan_request(tm_net *net, tm_chan *ch);

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    tm_chan *ch = arg;
    if (ch->state == TM_CH_RETRY) chan_request(ch->in->net, ch);
}

/* The partition is not there (yet): ask again after the backoff, or give up. */
static void chan_retry(tm_net *net, tm_chan *ch) {
    if (ch->conn && ch->state == TM_CH_REQUESTED) idmap_del(&ch->conn->map, ch->id);
    ch->state = TM_CH_RETRY;
    int64_t elapsed = time_mono_ms() - ch->first_request_ms;
    if (elapsed >= net->backoff_max_ms) {
        chan_fail(ch, FLINT_NOT_FOUND,
                  "the partition was not registered within %lld ms "
                  "(taskmanager.network.request-backoff.max)",
                  (long long)net->backoff_max_ms);
        return;
    }
    int64_t delay = ch->backoff_ms ? ch->backoff_ms * 2 : net->backoff_initial_ms;
    if (delay > net->backoff_max_ms - elapsed) delay = net->backoff_max_ms - elapsed;
    if (delay < 1) delay = 1;
    ch->backoff_ms = delay;
    if (!ch->retry_timer) ch->retry_timer = evtimer_new(net->base, on_retry, ch);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(ch->retry_timer, &tv);
    log_debug("partition %s not found yet, asking again in %lld ms", ch->partition_id,
              (long long)delay);
}

static void client_event(struct bufferevent *bev, short what, void *arg);

static tm_conn *client_get(tm_net *net, tm_chan *ch, char *err, size_t errlen) {
    for (tm_dl *n = net->clients.next; n != &net->clients; n = n->next) {
        tm_conn *c = TM_DL_ENTRY(n, tm_conn, link);
        if (!c->closing && c->port == ch->port && strcmp(c->host, ch->host) == 0 &&
            strcmp(c->rid, ch->producer_rid) == 0)
            return c;
    }
    flint_err e = {0};
    struct bufferevent *bev = net_connect(net->base, ch->host, ch->port, &e);
    if (!bev) {
        snprintf(err, errlen, "%s", e.msg);
        return NULL;
    }
    tm_conn *c = XNEW(tm_conn);
    c->net = net;
    c->bev = bev;
    c->client = true;
    c->rid = xstrdup(ch->producer_rid);
    c->host = xstrdup(ch->host);
    c->port = ch->port;
    c->next_id = 1;
    snprintf(c->addr, sizeof c->addr, "%s:%d", ch->host, ch->port);
    tm_dl_init(&c->users);
    tm_dl_push(&net->clients, &c->link);
    /* Reading starts once connected (client_event), outside the bufferevent. */
    bufferevent_setcb(bev, NULL, NULL, client_event, c);
    bufferevent_enable(bev, EV_WRITE);
    return c;
}

static void remote_request(tm_net *net, tm_chan *ch) {
    if (!ch->conn) {
        char err[sizeof(((flint_err *)0)->msg)];
        tm_conn *c = client_get(net, ch, err, sizeof err);
        if (!c) {
            chan_fail(ch, FLINT_IO, "%s", err);
            return;
        }
        ch->conn = c;
        tm_dl_push(&c->users, &ch->conn_link);
    }
    tm_conn *c = ch->conn;
    size_t idlen = strlen(ch->partition_id);
    if (idlen == 0 || idlen > TM_WIRE_MAX_ID) {
        chan_fail(ch, FLINT_INVALID, "bad partition id length %zu", idlen);
        return;
    }
    ch->id = c->next_id++;
    if (c->next_id == TM_WIRE_NO_CHANNEL) c->next_id = 1;
    idmap_put(&c->map, ch->id, ch);
    ch->state = TM_CH_REQUESTED;
    ch->expect_seq = 0;
    int credit = tm_input_take_credit(ch, true);
    uint8_t p[10 + TM_WIRE_MAX_ID];
    tm_wire_put32(p, (uint32_t)ch->subpartition);
    tm_wire_put32(p + 4, (uint32_t)credit);
    tm_wire_put16(p + 8, (uint16_t)idlen);
    memcpy(p + 10, ch->partition_id, idlen);
    send_msg(c, TM_MSG_PARTITION_REQUEST, ch->id, p, (uint32_t)(10 + idlen));
}

static void local_request(tm_net *net, tm_chan *ch) {
    char msg[400];
    int rc = tm_partition_attach(net, ch->partition_id, ch->subpartition, &ch->reader, msg,
                                 sizeof msg);
    if (rc == FLINT_OK) ch->state = TM_CH_REQUESTED;
    else if (rc == FLINT_NOT_FOUND) chan_retry(net, ch);
    else chan_fail(ch, rc, "%s", msg);
}

static void chan_request(tm_net *net, tm_chan *ch) {
    if (ch->local) local_request(net, ch);
    else remote_request(net, ch);
}

/* ---- consumer side: connections ------------------------------------------------------------------ */

static void client_destroy(tm_conn *c) {
    rx_abandon(c);
    if (c->rx.ev) event_free(c->rx.ev);
    free(c->rx.stage);
    tm_dl_del(&c->link);
    bufferevent_free(c->bev);
    idmap_free(&c->map);
    free(c->rid);
    free(c->host);
    free(c);
}

/* Close c with a failure: fail the channels waiting for data on it; channels waiting to retry
 * will connect again. */
static void client_fail(tm_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void client_fail(tm_conn *c, int status, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!tm_dl_empty(&c->users))
        log_warn("data connection to taskmanager %s at %s: %s", c->rid, c->addr, msg);
    rx_abandon(c);
    tm_dl *n;
    while ((n = c->users.next) != &c->users) {
        tm_chan *ch = TM_DL_ENTRY(n, tm_chan, conn_link);
        tm_dl_del(n);
        ch->conn = NULL;
        if (ch->state == TM_CH_REQUESTED) chan_fail(ch, status, "%s", msg);
    }
    client_destroy(c);
}

static void client_closed_write(struct bufferevent *bev, void *arg) {
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) client_destroy(arg);
}

/* No channel uses c any more: say goodbye and close once the output is written. */
static void client_close(tm_conn *c) {
    if (c->closing) return;
    c->closing = true;
    if (!c->connected) {
        client_destroy(c);
        return;
    }
    send_msg(c, TM_MSG_CLOSE_REQUEST, TM_WIRE_NO_CHANNEL, NULL, 0);
    bufferevent_setcb(c->bev, NULL, client_closed_write, client_event, c);
}

static void client_error_response(tm_conn *c, const tm_wire_hdr *h, const uint8_t *p) {
    tm_net *net = c->net;
    uint32_t code = tm_wire_get32(p);
    char msg[TM_WIRE_MAX_MESSAGE + 1];
    size_t n = h->size - 4;
    if (n > TM_WIRE_MAX_MESSAGE) n = TM_WIRE_MAX_MESSAGE;
    memcpy(msg, p + 4, n);
    msg[n] = '\0';
    for (size_t i = 0; i < n; i++)   /* keep log lines and messages printable */
        if ((unsigned char)msg[i] < 0x20) msg[i] = '?';
    if (h->channel == TM_WIRE_NO_CHANNEL) {
        client_fail(c, FLINT_IO, "the producer reported: %s", msg);
        return;
    }
    tm_chan *ch = idmap_get(&c->map, h->channel);
    if (!ch) return;   /* a channel we canceled */
    if (code == TM_WIRE_ERR_PARTITION_NOT_FOUND) chan_retry(net, ch);
    else chan_fail(ch, FLINT_STATE, "%s", msg);
}

/* ---- consumer side: receiving --------------------------------------------------------------------
 * The consumer reads its connections itself, not through the bufferevent (libevent reads at most
 * 4 KiB per call into its own chains, from which a payload would be copied once more): a
 * Buffer's payload is read from the socket straight into the channel's segment, together with
 * the next message's header in the same readv. Headers, control messages and runs of small
 * Buffers are read in bulk into the connection's staging area and parsed or copied from there. */

/* Give back the segment a Buffer was being read into (its channel goes away): the rest of the
 * payload is read and dropped. */
static void rx_abandon(tm_conn *c) {
    tm_rx *rx = &c->rx;
    if (rx->b) tm_input_untake(rx->ch, rx->b);
    rx->b = NULL;
    rx->ch = NULL;
}

/* A Buffer's header (h, checked against the segment size): start reading its payload. Returns
 * false when c was closed. */
static bool rx_begin_buffer(tm_conn *c, const tm_wire_hdr *h) {
    tm_rx *rx = &c->rx;
    tm_chan *ch = idmap_get(&c->map, h->channel);
    tm_buf *b = NULL;
    if (!ch && h->channel >= c->next_id) {
        client_fail(c, FLINT_PROTOCOL, "protocol error: Buffer for unknown channel %u", h->channel);
        return false;
    }
    if (ch) {   /* otherwise a channel we canceled: drop what was in flight */
        bool event = h->flags & TM_WIRE_FLAG_EVENT;
        if (h->size == 0 || (event && h->size < 4)) {
            client_fail(c, FLINT_PROTOCOL, "protocol error: Buffer of %u bytes", h->size);
            return false;
        }
        if (h->seq != ch->expect_seq) {
            client_fail(c, FLINT_PROTOCOL,
                        "protocol error: Buffer %u on channel %u out of sequence (expected %u)",
                        h->seq, h->channel, ch->expect_seq);
            return false;
        }
        if (!(b = tm_input_take_free(ch))) {
            client_fail(c, FLINT_PROTOCOL, "protocol error: Buffer on channel %u without credit",
                        h->channel);
            return false;
        }
    }
    rx->body = true;
    rx->big = h->size >= RX_BIG;
    rx->hdr = *h;
    rx->have = 0;
    rx->ch = ch;
    rx->b = b;
    return true;
}

/* A Buffer's payload is complete: hand it to its channel. Returns false when c is closing. */
static bool rx_end_buffer(tm_conn *c) {
    tm_rx *rx = &c->rx;
    tm_chan *ch = rx->ch;
    tm_buf *b = rx->b;
    rx->body = false;
    rx->ch = NULL;
    rx->b = NULL;
    if (!b) return true;
    b->size = rx->hdr.size;
    b->flags = 0;
    bool eop = false;
    if (rx->hdr.flags & TM_WIRE_FLAG_EVENT) {
        uint32_t t;
        memcpy(&t, b->data, 4);
        eop = le32toh(t) == TM_EVENT_END_OF_PARTITION;
        b->flags = TM_BUF_EVENT | (eop ? TM_BUF_EOP : 0);
    }
    ch->expect_seq++;
    uint32_t bl = rx->hdr.backlog;
    tm_input_deliver(ch, b, bl > (uint32_t)INT32_MAX / 2 ? INT32_MAX / 2 : (int)bl);
    /* b may be consumed and recycled from now on */
    if (eop) {
        /* Nothing more comes for this channel: release its spare buffers and the connection. */
        chan_release_conn(ch);
        ch->state = TM_CH_DONE;
        tm_input_close_chan(ch);
        if (c->closing) return false;
    }
    return true;
}

/* Handle the staged bytes. Returns false when c was closed or destroyed. */
static bool rx_parse(tm_conn *c) {
    tm_rx *rx = &c->rx;
    for (;;) {
        uint32_t staged = rx->slen - rx->spos;
        if (rx->body) {
            uint32_t k = rx->hdr.size - rx->have;
            if (k > staged) k = staged;
            if (rx->b) memcpy(rx->b->data + rx->have, rx->stage + rx->spos, k);
            rx->spos += k;
            rx->have += k;
            if (rx->have < rx->hdr.size) return true;
            if (!rx_end_buffer(c)) return false;
            continue;
        }
        if (staged < TM_WIRE_HEADER) return true;
        tm_wire_hdr h;
        const char *why;
        if (tm_wire_decode(rx->stage + rx->spos, &h, &why)) {
            client_fail(c, FLINT_PROTOCOL, "protocol error: %s", why);
            return false;
        }
        if (h.type == TM_MSG_BUFFER && h.size > c->net->seg_size) {
            client_fail(c, FLINT_PROTOCOL,
                        "protocol error: a Buffer of %u bytes exceeds the segment size of %u bytes "
                        "(taskmanager.memory.segment-size must be the same on all taskmanagers)",
                        h.size, c->net->seg_size);
            return false;
        }
        if (h.type == TM_MSG_BUFFER) {
            rx->spos += TM_WIRE_HEADER;
            if (!rx_begin_buffer(c, &h)) return false;
            continue;
        }
        if (h.size > TM_WIRE_MAX_CONTROL) {
            client_fail(c, FLINT_PROTOCOL, "protocol error: message type %u of %u bytes", h.type,
                        h.size);
            return false;
        }
        if (staged < TM_WIRE_HEADER + h.size) return true;
        const uint8_t *p = rx->stage + rx->spos + TM_WIRE_HEADER;
        rx->spos += TM_WIRE_HEADER + h.size;
        if (h.type == TM_MSG_ERROR_RESPONSE && h.size >= 4) {
            bool whole = h.channel == TM_WIRE_NO_CHANNEL;   /* then c is destroyed */
            client_error_response(c, &h, p);
            if (whole || c->closing) return false;
            continue;
        }
        client_fail(c, FLINT_PROTOCOL, "protocol error: unexpected message (type %u, %u bytes) "
                    "from a producer", h.type, h.size);
        return false;
    }
}

/* How many bytes to read into the stage: all there is room for, except after a large Buffer,
 * when only the next header (or the rest of a message being dropped, or of a control message) is
 * read, so that the next payload lands in its segment. */
static uint32_t rx_stage_want(const tm_rx *rx) {
    uint32_t staged = rx->slen - rx->spos, room = RX_STAGE - rx->slen;
    if (!rx->big) return room;
    uint32_t need = TM_WIRE_HEADER;
    if (rx->body && !rx->b) need += rx->hdr.size - rx->have;
    else if (!rx->body && staged >= TM_WIRE_HEADER)   /* a control message (checked by rx_parse) */
        need += tm_wire_get32(rx->stage + rx->spos + 16);
    need = need > staged ? need - staged : 0;
    return need < room ? need : room;
}

/* The socket of a client connection is readable. */
static void client_on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    tm_conn *c = arg;
    tm_rx *rx = &c->rx;
    for (int round = 0; round < RX_ROUNDS; round++) {
        uint32_t staged = rx->slen - rx->spos;
        if (rx->spos > 0) {
            memmove(rx->stage, rx->stage + rx->spos, staged);
            rx->spos = 0;
            rx->slen = staged;
        }
        struct iovec iov[2];
        int n = 0;
        size_t asked = 0;
        if (rx->b) iov[n++] = (struct iovec){rx->b->data + rx->have, rx->hdr.size - rx->have};
        uint32_t want = c->closing ? RX_STAGE - rx->slen : rx_stage_want(rx);
        if (want) iov[n++] = (struct iovec){rx->stage + rx->slen, want};
        for (int i = 0; i < n; i++) asked += iov[i].iov_len;
        assert(asked > 0);
        ssize_t k = readv(fd, iov, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            const char *reason = k == 0 ? "connection closed by the producer" : strerror(errno);
            if (c->closing) client_destroy(c);
            else client_fail(c, FLINT_IO, "lost the data connection: %s", reason);
            return;
        }
        if (c->closing) {   /* goodbye said: whatever still comes is dropped */
            rx->spos = rx->slen = 0;
            continue;
        }
        size_t into_seg = rx->b ? iov[0].iov_len : 0;
        if (into_seg > (size_t)k) into_seg = (size_t)k;
        rx->have += (uint32_t)into_seg;
        rx->slen += (uint32_t)((size_t)k - into_seg);
        if (!rx_parse(c)) return;
        if ((size_t)k < asked) return;   /* drained (the event is level-triggered) */
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg) {
    tm_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        c->rx.stage = xmalloc(RX_STAGE);
        c->rx.ev = event_new(c->net->base, bufferevent_getfd(bev), EV_READ | EV_PERSIST,
                             client_on_readable, c);
        event_add(c->rx.ev, NULL);
        return;
    }
    if (c->closing) {
        client_destroy(c);
        return;
    }
    const char *reason = (what & BEV_EVENT_EOF)
                             ? "connection closed by the producer"
                             : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
    if (!c->connected) client_fail(c, FLINT_IO, "cannot connect: %s", reason);
    else client_fail(c, FLINT_IO, "lost the data connection: %s", reason);
}

/* ---- the I/O thread ----------------------------------------------------------------------------- */
#define NOTIFY_BATCH 32   /* channels or readers taken off a queue per lock */

static void send_credit(tm_chan *ch) {
    if (ch->state != TM_CH_REQUESTED || !ch->conn || ch->conn->closing) return;
    int credit = tm_input_take_credit(ch, false);
    if (credit <= 0) return;
    uint8_t p[4];
    tm_wire_put32(p, (uint32_t)credit);
    send_msg(ch->conn, TM_MSG_ADD_CREDIT, ch->id, p, 4);
}

static void on_notify(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    tm_net *net = arg;
    pthread_mutex_lock(&net->io_mu);
    net->notify_pending = false;
    pthread_mutex_unlock(&net->io_mu);
    for (;;) {
        pthread_mutex_lock(&net->io_mu);
        tm_dl *n = tm_dl_pop(&net->cmds);
        pthread_mutex_unlock(&net->io_mu);
        if (!n) break;
        io_cmd *c = TM_DL_ENTRY(n, io_cmd, link);
        c->fn(net, c->arg);
        pthread_mutex_lock(&net->io_mu);
        c->done = true;   /* c lives on the caller's stack: not touched after this */
        pthread_cond_broadcast(&net->io_cv);
        pthread_mutex_unlock(&net->io_mu);
    }
    /* Channels with credit and readers with data, a batch per lock: nothing but this thread
     * takes them off their lists, or frees them, while a batch is handled. */
    for (;;) {
        tm_chan *chs[NOTIFY_BATCH];
        int n = 0;
        pthread_mutex_lock(&net->io_mu);
        for (tm_dl *d; n < NOTIFY_BATCH && (d = tm_dl_pop(&net->credits)); n++) {
            chs[n] = TM_DL_ENTRY(d, tm_chan, credit_link);
            chs[n]->credit_queued = false;
        }
        pthread_mutex_unlock(&net->io_mu);
        for (int i = 0; i < n; i++) send_credit(chs[i]);
        if (n < NOTIFY_BATCH) break;
    }
    for (;;) {
        tm_reader *rs[NOTIFY_BATCH];
        int n = 0;
        pthread_mutex_lock(&net->io_mu);
        for (tm_dl *d; n < NOTIFY_BATCH && (d = tm_dl_pop(&net->ready)); n++) {
            rs[n] = TM_DL_ENTRY(d, tm_reader, ready_link);
            rs[n]->in_ready = false;
        }
        pthread_mutex_unlock(&net->io_mu);
        for (int i = 0; i < n; i++) reader_send(rs[i]);
        if (n < NOTIFY_BATCH) break;
    }
}

static void *io_main(void *arg) {
    tm_net *net = arg;
    event_base_loop(net->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

void tm_net_queue_credit(tm_net *net, tm_chan *ch) {
    bool wake = false;
    pthread_mutex_lock(&net->io_mu);
    if (!ch->credit_queued) {
        ch->credit_queued = true;
        tm_dl_push(&net->credits, &ch->credit_link);
        wake_io_locked(net, &wake);
    }
    pthread_mutex_unlock(&net->io_mu);
    if (wake) wake_io(net);
}

static void cmd_input_start(tm_net *net, void *arg) {
    tm_input *in = arg;
    int64_t now = time_mono_ms();
    for (int g = 0; g < in->ngates; g++)
        for (int i = 0; i < in->gates[g].n; i++) {
            tm_chan *ch = &in->gates[g].chans[i];
            ch->first_request_ms = now;
            ch->backoff_ms = 0;
            chan_request(net, ch);
        }
}

static void cmd_input_stop(tm_net *net, void *arg) {
    tm_input *in = arg;
    for (int g = 0; g < in->ngates; g++)
        for (int i = 0; i < in->gates[g].n; i++) {
            tm_chan *ch = &in->gates[g].chans[i];
            if (ch->retry_timer) {
                event_free(ch->retry_timer);
                ch->retry_timer = NULL;
            }
            if (!ch->local) {
                if (ch->conn && ch->state == TM_CH_REQUESTED && !ch->conn->closing)
                    send_msg(ch->conn, TM_MSG_CANCEL_PARTITION, ch->id, NULL, 0);
                chan_release_conn(ch);
                tm_input_close_chan(ch);
            }
            if (ch->state != TM_CH_FAILED) ch->state = TM_CH_DONE;
            pthread_mutex_lock(&net->io_mu);
            if (ch->credit_queued) tm_dl_del(&ch->credit_link);
            ch->credit_queued = false;
            pthread_mutex_unlock(&net->io_mu);
        }
}

void tm_net_input_start(tm_net *net, tm_input *in) { run_on_io(net, cmd_input_start, in); }
void tm_net_input_stop(tm_net *net, tm_input *in) { run_on_io(net, cmd_input_stop, in); }

/* ---- the environment ------------------------------------------------------------------------------ */

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static void evthread_init(void) { evthread_use_pthreads(); }

tm_net *tm_net_new(const flint_config *cfg, const char *resource_id, flint_err *err) {
    assert(cfg && resource_id);
    pthread_once(&evthread_once, evthread_init);
    tm_net *net = XNEW(tm_net);
    net->resource_id = xstrdup(resource_id);
    net->seg_size = (uint32_t)config_int(cfg, CFG_TASKMANAGER_MEMORY_SEGMENT_SIZE);
    net->buffers_per_channel = (int)config_int(cfg, CFG_TASKMANAGER_NETWORK_BUFFERS_PER_CHANNEL);
    net->floating_per_gate = (int)config_int(cfg, CFG_TASKMANAGER_NETWORK_FLOATING_BUFFERS);
    net->backoff_initial_ms = config_int(cfg, CFG_TASKMANAGER_NETWORK_REQUEST_BACKOFF_INITIAL);
    net->backoff_max_ms = config_int(cfg, CFG_TASKMANAGER_NETWORK_REQUEST_BACKOFF_MAX);
    int cap = net->buffers_per_channel + net->floating_per_gate;
    net->sub_cap = cap < 2 ? 2 : cap;
    if (tm_pool_init(&net->pool, (uint64_t)config_int(cfg, CFG_TASKMANAGER_MEMORY_NETWORK_SIZE),
                     net->seg_size, err)) {
        free(net->resource_id);
        free(net);
        return NULL;
    }
    pthread_mutex_init(&net->reg_mu, NULL);
    tm_mutex_init(&net->io_mu);
    pthread_cond_init(&net->io_cv, NULL);
    tm_dl_init(&net->partitions);
    tm_dl_init(&net->cmds);
    tm_dl_init(&net->ready);
    tm_dl_init(&net->credits);
    tm_dl_init(&net->clients);
    tm_dl_init(&net->servers);
    net->base = event_base_new();
    if (!net->base) goto fail;
    net->notify_ev = event_new(net->base, -1, 0, on_notify, net);
    if (pthread_create(&net->thread, NULL, io_main, net) != 0) goto fail;
    return net;
fail:
    flint_err_set(err, FLINT_ERR, "cannot start the network I/O thread");
    if (net->notify_ev) event_free(net->notify_ev);
    if (net->base) event_base_free(net->base);
    tm_pool_destroy(&net->pool);
    free(net->resource_id);
    free(net);
    return NULL;
}

typedef struct listen_args {
    const char *host;
    int port;
    flint_err *err;
    int result;
} listen_args;

static void cmd_listen(tm_net *net, void *arg) {
    listen_args *a = arg;
    if (net->listener) {
        a->result = flint_err_set(a->err, FLINT_STATE, "the data server is already listening");
        return;
    }
    net->listener = net_listen(net->base, a->host, a->port, on_accept, net, a->err);
    a->result = net->listener ? net_listener_port(net->listener) : -1;
    if (a->result > 0) log_info("data server listening on %s:%d", a->host && a->host[0] ? a->host : "*",
                                a->result);
}

int tm_net_listen(tm_net *net, const char *host, int port, flint_err *err) {
    listen_args a = {host, port, err, -1};
    run_on_io(net, cmd_listen, &a);
    return a.result < 0 ? -1 : a.result;
}

static void cmd_shutdown(tm_net *net, void *arg) {
    (void)arg;
    if (net->listener) net_listener_free(net->listener);
    net->listener = NULL;
    tm_dl *n;
    while ((n = net->clients.next) != &net->clients)
        client_fail(TM_DL_ENTRY(n, tm_conn, link), FLINT_CLOSED, "the taskmanager shuts down");
    while ((n = net->servers.next) != &net->servers) server_destroy(TM_DL_ENTRY(n, tm_conn, link));
    event_base_loopbreak(net->base);
}

void tm_net_free(tm_net *net) {
    if (!net) return;
    run_on_io(net, cmd_shutdown, NULL);
    pthread_join(net->thread, NULL);
    tm_partition_drop_lingering(net, NULL);
    /* Frees the connections' buffers, whose references give segments back to the pool. */
    event_free(net->notify_ev);
    event_base_free(net->base);
    pthread_mutex_lock(&net->reg_mu);
    bool leaked = !tm_dl_empty(&net->partitions);
    pthread_mutex_unlock(&net->reg_mu);
    if (leaked) log_error("tm_net_free: result partitions still registered");
    if (atomic_load(&net->pool.nfree) != net->pool.total)
        log_warn("tm_net_free: %d network buffers still in use",
                 net->pool.total - atomic_load(&net->pool.nfree));
    tm_pool_destroy(&net->pool);
    pthread_cond_destroy(&net->io_cv);
    pthread_mutex_destroy(&net->io_mu);
    pthread_mutex_destroy(&net->reg_mu);
    free(net->resource_id);
    free(net);
}

int tm_net_segments_total(const tm_net *net) { return net->pool.total; }

int tm_net_segments_available(const tm_net *net) {
    return atomic_load(&((tm_net *)net)->pool.nfree);
}

void tm_net_release_job(tm_net *net, const char *job_id) {
    assert(net && job_id);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s.", job_id);
    tm_partition_drop_lingering(net, prefix);
}

typedef struct count_args {
    int clients, servers;
} count_args;

static void cmd_count(tm_net *net, void *arg) {
    count_args *a = arg;
    for (tm_dl *n = net->clients.next; n != &net->clients; n = n->next)
        if (!TM_DL_ENTRY(n, tm_conn, link)->closing) a->clients++;
    for (tm_dl *n = net->servers.next; n != &net->servers; n = n->next) a->servers++;
}

void tm_net_connection_count(tm_net *net, int *clients, int *servers) {
    count_args a = {0, 0};
    run_on_io(net, cmd_count, &a);
    *clients = a.clients;
    *servers = a.servers;
}

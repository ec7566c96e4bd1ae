/* Input gates: a task's channels (local ones read the producer's subpartition queue directly,
 * remote ones receive into their own buffers), a queue of channels with data read round robin a
 * buffer at a time (as Flink's input gate), the element deserializer (pointers into the buffer;
 * only an element that spans buffers is copied, into the channel's spill buffer), and the
 * receiver half of credit-based flow control: exclusive buffers per remote channel, floating
 * buffers per gate handed out according to the senders' backlog, credit announced as buffers
 * are recycled. */
#include <assert.h>
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LOG_MODULE "net"
#include "network/tm_net_int.h"
#include "util/alloc.h"
#include "util/log.h"

/* ---- setup ------------------------------------------------------------------------------------ */

tm_input *tm_input_new(tm_net *net, tm_waker *waker) {
    assert(net && waker);
    tm_input *in = XNEW(tm_input);
    in->net = net;
    in->waker = waker;
    tm_mutex_init(&in->mu);
    tm_dl_init(&in->avail);
    return in;
}

void tm_input_add_gate(tm_input *in, int n, const tm_channel_desc *channels) {
    assert(in && !in->started && n >= 0 && (n == 0 || channels));
    if (in->ngates == in->cap_gates) {
        in->cap_gates = in->cap_gates ? in->cap_gates * 2 : 4;
        in->gates = xrealloc(in->gates, (size_t)in->cap_gates * sizeof(tm_gate));
    }
    tm_gate *g = &in->gates[in->ngates];
    memset(g, 0, sizeof *g);
    g->idx = in->ngates++;
    g->n = n;
    g->chans = xcalloc(n ? (size_t)n : 1, sizeof(tm_chan));
    for (int i = 0; i < n; i++) {
        tm_chan *ch = &g->chans[i];
        const tm_channel_desc *d = &channels[i];
        assert(d->partition_id && d->producer_resource_id);
        ch->in = in;
        ch->gate_idx = g->idx;
        ch->idx = i;
        ch->partition_id = xstrdup(d->partition_id);
        ch->producer_rid = xstrdup(d->producer_resource_id);
        ch->host = xstrdup(d->host ? d->host : "");
        ch->port = d->data_port;
        ch->subpartition = d->subpartition;
        ch->local = strcmp(d->producer_resource_id, in->net->resource_id) == 0;
        ch->reader.notify = tm_input_local_notify;
        tm_dl_init(&ch->avail_link);
        tm_dl_init(&ch->float_link);
        tm_dl_init(&ch->credit_link);
        tm_dl_init(&ch->conn_link);
    }
}

int tm_input_gate_count(const tm_input *in) { return in->ngates; }

int tm_input_start(tm_input *in, flint_err *err) {
    assert(in && !in->started);
    tm_net *net = in->net;
    int nremote = 0;
    for (int g = 0; g < in->ngates; g++) {
        tm_gate *gate = &in->gates[g];
        tm_dl_init(&gate->float_waiters);
        bool remote = false;
        for (int i = 0; i < gate->n; i++) {
            gate->chans[i].gate = gate;   /* the gates array is final now */
            if (!gate->chans[i].local) nremote++, remote = true;
        }
        gate->float_limit = remote ? net->floating_per_gate : 0;
    }
    /* Exclusive buffers, all or nothing. */
    int need = nremote * net->buffers_per_channel;
    tm_bufq all = {0};
    if (need && !tm_pool_get_n(&net->pool, need, &all)) {
        return flint_err_set(err, FLINT_UNAVAILABLE,
                             "insufficient network buffers: %d remote input channels need %d "
                             "exclusive buffers (taskmanager.network.memory.buffers-per-channel = "
                             "%d), only %d of %d are free; raise taskmanager.memory.network.size",
                             nremote, need, net->buffers_per_channel,
                             tm_net_segments_available(net), tm_net_segments_total(net));
    }
    for (int g = 0; g < in->ngates; g++) {
        tm_gate *gate = &in->gates[g];
        for (int i = 0; i < gate->n; i++) {
            tm_chan *ch = &gate->chans[i];
            if (ch->local) continue;
            for (int k = 0; k < net->buffers_per_channel; k++) {
                tm_buf *b = tm_bufq_pop(&all);
                b->owner = TM_OWN_EXCLUSIVE;
                b->chan = ch;
                tm_bufq_push(&ch->freeq, b);
            }
            ch->nexclusive = net->buffers_per_channel;
        }
    }
    in->started = true;
    tm_net_input_start(net, in);
    return FLINT_OK;
}

/* ---- credit and buffers (under in->mu) ---------------------------------------------------------- */

/* Credit for k more buffers. The channel is queued for an AddCredit only when it had none
 * unannounced: otherwise it is queued already, or the I/O thread took it off the queue and has yet
 * to take its credit (which then includes k). */
static void add_credit_locked(tm_chan *ch, int k) {
    bool queue = ch->unannounced == 0;
    ch->unannounced += k;
    if (queue) tm_net_queue_credit(ch->in->net, ch);
}

static bool wants_more_locked(const tm_chan *ch) {
    return !ch->closed && ch->freeq.len < ch->backlog + ch->in->net->buffers_per_channel;
}

/* Floating buffers for ch up to what its backlog asks for, as far as the gate allows. */
static void request_floating_locked(tm_chan *ch) {
    tm_gate *g = ch->gate;
    while (wants_more_locked(ch)) {
        tm_buf *b = NULL;
        if (g->float_held < g->float_limit) b = tm_pool_get(&ch->in->net->pool);
        if (!b) {
            if (!ch->float_waiting && g->float_limit > 0) {
                ch->float_waiting = true;
                tm_dl_push(&g->float_waiters, &ch->float_link);
            }
            return;
        }
        g->float_held++;
        b->owner = TM_OWN_FLOATING;
        b->chan = ch;
        tm_bufq_push(&ch->freeq, b);
        add_credit_locked(ch, 1);
    }
}

/* A floating buffer came back: lend it to a channel that waits for one, else give it back. */
static void give_floating_locked(tm_gate *g, tm_buf *b, tm_bufq *topool) {
    tm_dl *n;
    while ((n = g->float_waiters.next) != &g->float_waiters) {
        tm_chan *w = TM_DL_ENTRY(n, tm_chan, float_link);
        if (!wants_more_locked(w)) {
            tm_dl_del(n);
            w->float_waiting = false;
            continue;
        }
        b->chan = w;
        tm_bufq_push(&w->freeq, b);
        add_credit_locked(w, 1);
        if (!wants_more_locked(w)) {
            tm_dl_del(n);
            w->float_waiting = false;
        }
        return;
    }
    g->float_held--;
    b->owner = TM_OWN_POOL;
    b->chan = NULL;
    tm_bufq_push(topool, b);
}

/* Take the last buffer of q (floating buffers queue behind the exclusive ones). */
static tm_buf *bufq_pop_tail(tm_bufq *q) {
    tm_buf *b = q->head, *prev = NULL;
    if (!b) return NULL;
    while (b->next) prev = b, b = b->next;
    if (prev) prev->next = NULL;
    else q->head = NULL;
    q->tail = prev;
    q->len--;
    return b;
}

static void recycle_locked(tm_buf *b, tm_bufq *topool) {
    tm_chan *ch = b->chan;
    if (b->owner == TM_OWN_EXCLUSIVE) {
        if (ch->closed) {
            ch->nexclusive--;
            b->owner = TM_OWN_POOL;
            b->chan = NULL;
            tm_bufq_push(topool, b);
        } else if (!wants_more_locked(ch) && ch->freeq.tail &&
                   ch->freeq.tail->owner == TM_OWN_FLOATING) {
            /* The channel has all it needs: the exclusive buffer takes the place of a floating
             * one (same credit), which goes back to the gate for channels that need it. */
            tm_buf *f = bufq_pop_tail(&ch->freeq);
            tm_bufq_push_head(&ch->freeq, b);
            give_floating_locked(ch->gate, f, topool);
        } else {
            tm_bufq_push_head(&ch->freeq, b);
            add_credit_locked(ch, 1);
        }
    } else {
        give_floating_locked(ch->gate, b, topool);
    }
}

/* Give a consumed buffer back (task thread). */
static void recycle(tm_input *in, tm_buf *b) {
    if (b->owner == TM_OWN_POOL) {
        tm_pool_put(&in->net->pool, b);
        return;
    }
    tm_bufq topool = {0};
    pthread_mutex_lock(&in->mu);
    recycle_locked(b, &topool);
    pthread_mutex_unlock(&in->mu);
    tm_pool_put_q(&in->net->pool, &topool);
}

/* Put ch on the queue of channels with data; wake the task if the queue was empty. */
static void make_available_locked(tm_chan *ch) {
    if (ch->queued) return;
    if (ch->blocked) { /* aligning barriers: looked at again when unblocked */
        ch->avail_blocked = true;
        return;
    }
    tm_input *in = ch->in;
    bool was_empty = tm_dl_empty(&in->avail);
    ch->queued = true;
    tm_dl_push(&in->avail, &ch->avail_link);
    if (was_empty) tm_waker_signal(in->waker);
}

/* ---- called on the I/O thread (and from partitions, for local channels) ------------------------- */

void tm_input_local_notify(tm_sub_reader *r) {
    tm_chan *ch = TM_DL_ENTRY(r, tm_chan, reader);
    pthread_mutex_lock(&ch->in->mu);
    make_available_locked(ch);
    pthread_mutex_unlock(&ch->in->mu);
}

tm_buf *tm_input_take_free(tm_chan *ch) {
    pthread_mutex_lock(&ch->in->mu);
    tm_buf *b = NULL;
    /* Credit the sender may use: free buffers minus those not announced yet. */
    if (!ch->closed && ch->freeq.len > ch->unannounced) b = tm_bufq_pop(&ch->freeq);
    pthread_mutex_unlock(&ch->in->mu);
    return b;
}

void tm_input_untake(tm_chan *ch, tm_buf *b) {
    tm_bufq topool = {0};
    pthread_mutex_lock(&ch->in->mu);
    if (ch->closed) recycle_locked(b, &topool);
    else if (b->owner == TM_OWN_EXCLUSIVE) tm_bufq_push_head(&ch->freeq, b);
    else tm_bufq_push(&ch->freeq, b);   /* floating buffers queue behind the exclusive ones */
    pthread_mutex_unlock(&ch->in->mu);
    tm_pool_put_q(&ch->in->net->pool, &topool);
}

void tm_input_deliver(tm_chan *ch, tm_buf *b, int backlog) {
    pthread_mutex_lock(&ch->in->mu);
    tm_bufq_push(&ch->recvq, b);
    ch->backlog = backlog;
    make_available_locked(ch);
    request_floating_locked(ch);
    pthread_mutex_unlock(&ch->in->mu);
}

int tm_input_take_credit(tm_chan *ch, bool request) {
    pthread_mutex_lock(&ch->in->mu);
    int c = request ? ch->freeq.len : ch->unannounced;
    ch->unannounced = 0;
    pthread_mutex_unlock(&ch->in->mu);
    return c;
}

void tm_input_close_chan(tm_chan *ch) {
    tm_bufq topool = {0};
    pthread_mutex_lock(&ch->in->mu);
    if (!ch->closed) {
        ch->closed = true;
        ch->unannounced = 0;
        if (ch->float_waiting) {
            tm_dl_del(&ch->float_link);
            ch->float_waiting = false;
        }
        tm_buf *b;
        while ((b = tm_bufq_pop(&ch->freeq))) recycle_locked(b, &topool);
    }
    pthread_mutex_unlock(&ch->in->mu);
    tm_pool_put_q(&ch->in->net->pool, &topool);
}

void tm_input_fail(tm_chan *ch, int status, const char *fmt, ...) {
    tm_input *in = ch->in;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&in->mu);
    if (!in->err_status) {
        in->err_status = status;
        snprintf(in->err_msg, sizeof in->err_msg, "%s", msg);
    }
    pthread_mutex_unlock(&in->mu);
    tm_waker_signal(in->waker);
}

/* ---- reading (task thread) ---------------------------------------------------------------------- */

static int fail_here(tm_input *in, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_here(tm_input *in, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->error, sizeof in->error, fmt, ap);
    va_end(ap);
    in->status = status;
    return status;
}

/* Where ch reads from, for messages. */
static void chan_origin(const tm_chan *ch, char *buf, size_t len) {
    if (ch->local)
        snprintf(buf, len, "partition %s (subpartition %d) at the local taskmanager %s",
                 ch->partition_id, ch->subpartition, ch->producer_rid);
    else
        snprintf(buf, len, "partition %s (subpartition %d) from taskmanager %s at %s:%d",
                 ch->partition_id, ch->subpartition, ch->producer_rid, ch->host, ch->port);
}

/* The next buffer to read into in->cur: 1, 0 when none is ready, or a failure status < 0
 * (in->status is set). */
static int fetch(tm_input *in) {
    for (;;) {
        pthread_mutex_lock(&in->mu);
        if (in->err_status) {
            in->status = in->err_status;
            snprintf(in->error, sizeof in->error, "%s", in->err_msg);
            pthread_mutex_unlock(&in->mu);
            return -1;
        }
        tm_dl *n = tm_dl_pop(&in->avail);
        if (!n) {
            pthread_mutex_unlock(&in->mu);
            return 0;
        }
        tm_chan *ch = TM_DL_ENTRY(n, tm_chan, avail_link);
        ch->queued = false;
        if (ch->blocked) { /* queued before it was blocked: leave its data where it is */
            ch->avail_blocked = true;
            pthread_mutex_unlock(&in->mu);
            continue;
        }
        tm_buf *b;
        if (!ch->local) {
            b = tm_bufq_pop(&ch->recvq);
            if (ch->recvq.len > 0) {   /* round robin: back to the end of the queue */
                ch->queued = true;
                tm_dl_push(&in->avail, &ch->avail_link);
            }
            pthread_mutex_unlock(&in->mu);
        } else {
            pthread_mutex_unlock(&in->mu);
            if (!ch->reader.part) continue;   /* ended, a stale notification */
            int backlog, st;
            char msg[400];
            b = tm_partition_pop(&ch->reader, &backlog, true, &st, msg, sizeof msg);
            atomic_store_explicit(&ch->local_backlog, b ? backlog : 0, memory_order_relaxed);
            if (!b && st != FLINT_OK) {
                char origin[600];
                chan_origin(ch, origin, sizeof origin);
                fail_here(in, st, "input channel reading %s failed: %s", origin, msg);
                return -1;
            }
        }
        if (!b) continue;
        in->cur = b;
        in->cur_ch = ch;
        in->pos = 0;
        if (!(b->flags & TM_BUF_EVENT))
            atomic_store_explicit(&in->bytes_in,
                                  atomic_load_explicit(&in->bytes_in, memory_order_relaxed) + b->size,
                                  memory_order_relaxed);
        return 1;
    }
}

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static int corrupt(tm_input *in, tm_chan *ch, const char *what) {
    char origin[600];
    chan_origin(ch, origin, sizeof origin);
    return fail_here(in, FLINT_PROTOCOL, "corrupt data from %s: %s", origin, what);
}

/* Turn wire kind k of an element (el->data, el->len: its bytes) into what tm_input_next reports:
 * plain records (the likely case) cost a store; 0 or -1 when the element is malformed. */
static inline int decode_kind(tm_element *el, unsigned k) {
    if (__builtin_expect(k == 0, 1)) {
        el->kind = TM_ELEM_RECORD;
        el->timestamp = INT64_MIN;    /* FLINT_NO_TIMESTAMP */
        return 0;
    }
    uint64_t v;
    if (k == TM_WIRE_RECORD_TS) {
        if (el->len < 8) return -1;
        memcpy(&v, el->data, 8);
        el->kind = TM_ELEM_RECORD;
        el->timestamp = (int64_t)le64toh(v);
        el->data += 8;
        el->len -= 8;
        return 0;
    }
    if (k == TM_ELEM_WATERMARK) {
        if (el->len == 8) {
            memcpy(&v, el->data, 8);
            el->kind = TM_ELEM_WATERMARK;
            el->timestamp = (int64_t)le64toh(v);
            return 0;
        }
        if (el->len == 1 && el->data[0] <= 1) {
            el->kind = TM_ELEM_STATUS;
            el->timestamp = INT64_MIN;
            return 0;
        }
    }
    return -1;
}

static inline void count_record(tm_input *in, tm_elem_kind kind) {
    if (kind == TM_ELEM_RECORD)
        atomic_store_explicit(&in->records_in,
                              atomic_load_explicit(&in->records_in, memory_order_relaxed) + 1,
                              memory_order_relaxed);
}

/* Continue (or start) an element that spans buffers with the bytes of in->cur from in->pos.
 * Returns 1 with *el when it is complete, 0 when the buffer ran out, or a failure < 0. */
static int read_spanning(tm_input *in, tm_chan *ch, tm_element *el) {
    tm_buf *b = in->cur;
    uint32_t pos = in->pos, size = b->size;
    while (pos < size) {
        if (ch->span_total == 0) {
            uint32_t k = 4 - ch->span_have;
            if (k > size - pos) k = size - pos;
            memcpy(ch->span_hdr + ch->span_have, b->data + pos, k);
            ch->span_have += k;
            pos += k;
            if (ch->span_have < 4) break;
            uint32_t h = rd32(ch->span_hdr);
            if ((h >> 30) > TM_WIRE_RECORD_TS) {
                in->pos = pos;
                return corrupt(in, ch, "bad element kind");
            }
            ch->span_total = 4 + (h & 0x3fffffffu);
            if (ch->spill_cap < ch->span_total - 4) {
                free(ch->spill);
                ch->spill_cap = ch->span_total - 4;
                ch->spill = xmalloc(ch->spill_cap ? ch->spill_cap : 1);
            }
        } else {
            uint32_t k = ch->span_total - ch->span_have;
            if (k > size - pos) k = size - pos;
            memcpy(ch->spill + (ch->span_have - 4), b->data + pos, k);
            ch->span_have += k;
            pos += k;
        }
        if (ch->span_total && ch->span_have == ch->span_total) {
            uint32_t h = rd32(ch->span_hdr);
            el->gate = ch->gate_idx;
            el->channel = ch->idx;
            el->data = ch->spill;
            el->len = ch->span_total - 4;
            ch->spanning = false;
            in->pos = pos;
            if (pos == size) {   /* the element lives in the spill buffer: recycle now */
                in->cur = NULL;
                recycle(in, b);
            }
            if (decode_kind(el, h >> 30)) return corrupt(in, ch, "malformed element");
            count_record(in, el->kind);
            return 1;
        }
    }
    in->cur = NULL;
    recycle(in, b);
    return 0;
}

/* An event buffer just fetched. Returns 1 with *el (the event, or the end of the channel or of
 * its gate), < 0 on failure. */
static int read_event(tm_input *in, tm_chan *ch, tm_element *el) {
    tm_buf *b = in->cur;
    if (ch->spanning) return corrupt(in, ch, "event inside a spanning element");
    if (b->size < 4) return corrupt(in, ch, "short event buffer");
    if (rd32(b->data) != TM_EVENT_END_OF_PARTITION) {
        el->kind = TM_ELEM_EVENT;
        el->gate = ch->gate_idx;
        el->channel = ch->idx;
        el->data = b->data;
        el->len = b->size;
        in->cur = NULL;
        in->done_buf = b;
        return 1;
    }
    in->cur = NULL;
    recycle(in, b);
    if (ch->ended) return corrupt(in, ch, "a second end of partition");
    ch->ended = true;
    if (ch->local) tm_partition_detach(&ch->reader);
    tm_gate *g = ch->gate;
    el->kind = TM_ELEM_CHANNEL_END;
    el->gate = g->idx;
    el->channel = ch->idx;
    el->data = NULL;
    el->len = 0;
    if (++g->ended == g->n) {
        g->end_reported = true;
        in->gates_ended++;
        el->kind = TM_ELEM_GATE_END;
        el->channel = -1;
    }
    return 1;
}

int tm_input_next(tm_input *in, tm_element *el) {
    assert(in->started);
    if (__builtin_expect(in->status != FLINT_OK, 0)) return in->status;
    if (in->done_buf) {
        recycle(in, in->done_buf);
        in->done_buf = NULL;
    }
    for (;;) {
        tm_buf *b = in->cur;
        if (b) {
            tm_chan *ch = in->cur_ch;
            if (!ch->spanning) {
                uint32_t pos = in->pos, rem = b->size - pos;
                if (__builtin_expect(rem >= 4, 1)) {
                    uint32_t h = rd32(b->data + pos);
                    uint32_t len = h & 0x3fffffffu;
                    if (__builtin_expect(rem - 4 >= len, 1)) {
                        el->gate = ch->gate_idx;
                        el->channel = ch->idx;
                        el->data = b->data + pos + 4;
                        el->len = len;
                        if (__builtin_expect(decode_kind(el, h >> 30) != 0, 0))
                            return corrupt(in, ch, "bad element kind");
                        in->pos = pos + 4 + len;
                        if (in->pos == b->size) {
                            in->cur = NULL;
                            in->done_buf = b;
                        }
                        count_record(in, el->kind);
                        return FLINT_OK;
                    }
                }
                if (rem == 0) {
                    in->cur = NULL;
                    recycle(in, b);
                    continue;
                }
                ch->spanning = true;
                ch->span_have = 0;
                ch->span_total = 0;
            }
            int rc = read_spanning(in, ch, el);
            if (rc < 0) return rc;
            if (rc > 0) return FLINT_OK;
            continue;
        }
        /* A gate without channels ends at once. */
        if (in->gates_ended < in->ngates) {
            for (int g = 0; g < in->ngates; g++) {
                if (in->gates[g].n == 0 && !in->gates[g].end_reported) {
                    in->gates[g].end_reported = true;
                    in->gates_ended++;
                    *el = (tm_element){.kind = TM_ELEM_GATE_END, .gate = g, .channel = -1};
                    return FLINT_OK;
                }
            }
        }
        if (in->gates_ended == in->ngates) return FLINT_CLOSED;
        int rc = fetch(in);
        if (rc < 0) return in->status;
        if (rc == 0) return FLINT_UNAVAILABLE;
        if (in->cur->flags & TM_BUF_EVENT) {
            rc = read_event(in, in->cur_ch, el);
            if (rc < 0) return rc;
            if (rc > 0) return FLINT_OK;
        }
    }
}

const char *tm_input_error(const tm_input *in) { return in->status ? in->error : ""; }

void tm_input_block(tm_input *in, int gate, int channel) {
    assert(gate >= 0 && gate < in->ngates && channel >= 0 && channel < in->gates[gate].n);
    pthread_mutex_lock(&in->mu);
    in->gates[gate].chans[channel].blocked = true;
    pthread_mutex_unlock(&in->mu);
}

void tm_input_unblock_all(tm_input *in) {
    pthread_mutex_lock(&in->mu);
    for (int g = 0; g < in->ngates; g++)
        for (int i = 0; i < in->gates[g].n; i++) {
            tm_chan *ch = &in->gates[g].chans[i];
            if (!ch->blocked) continue;
            ch->blocked = false;
            if (ch->avail_blocked) {
                ch->avail_blocked = false;
                make_available_locked(ch);
            }
        }
    pthread_mutex_unlock(&in->mu);
}

int tm_input_channel_count(const tm_input *in, int gate) {
    return gate >= 0 && gate < in->ngates ? in->gates[gate].n : 0;
}

void tm_input_metrics_get(const tm_input *in, tm_input_metrics *m) {
    tm_input *mi = (tm_input *)in;
    m->records_in = atomic_load_explicit(&mi->records_in, memory_order_relaxed);
    m->bytes_in = atomic_load_explicit(&mi->bytes_in, memory_order_relaxed);
}

void tm_input_buffers(tm_input *in, int *queued, int *capacity) {
    int q = 0, cap = 0;
    pthread_mutex_lock(&in->mu);
    for (int g = 0; g < in->ngates; g++) {
        tm_gate *gate = &in->gates[g];
        for (int i = 0; i < gate->n; i++) {
            tm_chan *ch = &gate->chans[i];
            if (ch->local) {
                q += atomic_load_explicit(&ch->local_backlog, memory_order_relaxed);
                cap += in->net->sub_cap;
            } else {
                q += ch->recvq.len;
                cap += in->net->buffers_per_channel;
            }
        }
        cap += gate->float_limit;
    }
    pthread_mutex_unlock(&in->mu);
    *queued = q;
    *capacity = cap;
}

void tm_input_free(tm_input *in) {
    if (!in) return;
    tm_pool *pool = &in->net->pool;
    if (in->started) tm_net_input_stop(in->net, in);
    /* The I/O thread no longer touches any channel: every buffer of this input is in a channel's
     * queues or being read here. */
    tm_bufq topool = {0};
    if (in->cur) tm_bufq_push(&topool, in->cur);
    if (in->done_buf) tm_bufq_push(&topool, in->done_buf);
    for (int g = 0; g < in->ngates; g++) {
        tm_gate *gate = &in->gates[g];
        for (int i = 0; i < gate->n; i++) {
            tm_chan *ch = &gate->chans[i];
            if (ch->local && ch->reader.part) tm_partition_detach(&ch->reader);
            tm_buf *b;
            while ((b = tm_bufq_pop(&ch->recvq))) tm_bufq_push(&topool, b);
            while ((b = tm_bufq_pop(&ch->freeq))) tm_bufq_push(&topool, b);
            free(ch->partition_id);
            free(ch->producer_rid);
            free(ch->host);
            free(ch->spill);
        }
        free(gate->chans);
    }
    for (tm_buf *b = topool.head; b; b = b->next) {
        b->owner = TM_OWN_POOL;
        b->chan = NULL;
    }
    tm_pool_put_q(pool, &topool);
    free(in->gates);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

/* Record writers: serialize elements (4-byte LE header: length | kind << 30, then the bytes)
 * into each subpartition's current buffer, spanning buffers when an element does not fit; hand
 * full buffers to the subpartition at once and partial ones on flush (buffer timeout). The
 * common case of a small record is a bounds check and two memcpy. A writer without a free
 * segment, or whose subpartition queue is at its cap, waits on the task's waker
 * (backpressure, measured). */
#include <assert.h>
#include <endian.h>
#include <string.h>

#include "network/tm_net_int.h"
#include "util/alloc.h"
#include "util/timeutil.h"

typedef struct tm_wsub {
    tm_buf *cur;            /* the buffer being filled, or NULL */
    uint8_t *wp, *end;      /* write position and end of cur (both NULL without a buffer) */
    int64_t start_ms;       /* when cur got its first bytes (buffer timeout) */
    bool full;              /* the queue reached its cap at the last push */
} tm_wsub;

struct tm_writer {
    tm_partition *p;
    tm_pool *pool;
    tm_waker *waker;
    int64_t timeout;
    int n;
    uint32_t seg;
    tm_wsub *subs;
    int64_t deadline;       /* oldest partial buffer's start + timeout, or INT64_MAX */
    bool ended;             /* end of partition written */
    _Atomic int64_t records, bytes, bp_ns, bp_start;
    atomic_uint bp_seq;
};

static inline void add_relaxed(_Atomic int64_t *a, int64_t v) {
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

tm_writer *tm_writer_new(tm_partition *p, int64_t buffer_timeout_ms, tm_waker *waker) {
    assert(p && waker && buffer_timeout_ms >= -1);
    tm_writer *w = XNEW(tm_writer);
    w->p = p;
    w->pool = &p->net->pool;
    w->waker = waker;
    w->timeout = buffer_timeout_ms;
    w->n = p->n;
    w->seg = p->net->seg_size;
    w->subs = xcalloc((size_t)w->n, sizeof(tm_wsub));
    w->deadline = INT64_MAX;
    pthread_mutex_lock(&p->mu);
    p->writer_waker = waker;
    pthread_mutex_unlock(&p->mu);
    return w;
}

void tm_writer_free(tm_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++)
        if (w->subs[i].cur) tm_pool_put(w->pool, w->subs[i].cur);
    pthread_mutex_lock(&w->p->mu);
    if (w->p->writer_waker == w->waker) {
        w->p->writer_waker = NULL;
        w->p->writer_waiting = false;
    }
    pthread_mutex_unlock(&w->p->mu);
    free(w->subs);
    free(w);
}

/* Backpressure time: bp_ns accumulated, plus now - bp_start while a wait is under way; a
 * seqlock (bp_seq odd while the writer updates) lets metrics readers see both consistently. */
static void bp_begin(tm_writer *w) {
    if (atomic_load_explicit(&w->bp_start, memory_order_relaxed)) return;
    atomic_fetch_add(&w->bp_seq, 1);
    atomic_store(&w->bp_start, time_mono_ns());
    atomic_fetch_add(&w->bp_seq, 1);
}

static void bp_end(tm_writer *w) {
    int64_t t0 = atomic_load_explicit(&w->bp_start, memory_order_relaxed);
    if (!t0) return;
    atomic_fetch_add(&w->bp_seq, 1);
    atomic_store(&w->bp_ns, atomic_load(&w->bp_ns) + (time_mono_ns() - t0));
    atomic_store(&w->bp_start, 0);
    atomic_fetch_add(&w->bp_seq, 1);
    /* The wait may have eaten a signal meant for the task's input or mailbox. */
    tm_waker_signal(w->waker);
}

/* A free segment for subpartition i, waiting first for room in its queue (data buffers only)
 * and then for the pool. FLINT_CANCELED when the waker is canceled while waiting. */
static int get_buffer(tm_writer *w, int i, bool event, tm_buf **out) {
    tm_wsub *s = &w->subs[i];
    int rc = FLINT_OK;
    tm_buf *b = NULL;
    *out = NULL;
    if (s->full && !event) {
        while (!tm_partition_has_room(w->p, i)) {
            if (tm_waker_canceled(w->waker)) {
                rc = FLINT_CANCELED;
                goto out;
            }
            bp_begin(w);
            tm_waker_wait(w->waker, INT64_MAX);
        }
        s->full = false;
    }
    if (!(b = tm_pool_get(w->pool))) {
        tm_pool_waiter pw;
        tm_dl_init(&pw.link);
        pw.waker = w->waker;
        while (!(b = tm_pool_get_or_wait(w->pool, &pw))) {
            if (tm_waker_canceled(w->waker)) {
                rc = FLINT_CANCELED;
                tm_pool_unwait(w->pool, &pw);
                goto out;
            }
            bp_begin(w);
            tm_waker_wait(w->waker, INT64_MAX);
            tm_pool_unwait(w->pool, &pw);
        }
    }
out:
    bp_end(w);
    *out = b;
    return rc;
}

static void recompute_deadline(tm_writer *w) {
    int64_t d = INT64_MAX;
    for (int i = 0; i < w->n; i++)
        if (w->subs[i].cur && w->subs[i].start_ms + w->timeout < d)
            d = w->subs[i].start_ms + w->timeout;
    w->deadline = d;
}

/* Hand subpartition i's current buffer to its queue. */
static void finish(tm_writer *w, int i) {
    tm_wsub *s = &w->subs[i];
    tm_buf *b = s->cur;
    b->size = (uint32_t)(s->wp - b->data);
    s->cur = NULL;
    s->wp = s->end = NULL;
    s->full = tm_partition_push(w->p, i, b) >= w->p->cap;
    if (w->timeout > 0 && s->start_ms + w->timeout == w->deadline) recompute_deadline(w);
}

static int start_buffer(tm_writer *w, int i) {
    tm_wsub *s = &w->subs[i];
    tm_buf *b;
    int rc = get_buffer(w, i, false, &b);
    if (rc != FLINT_OK) return rc;
    s->cur = b;
    s->wp = b->data;
    s->end = b->data + w->seg;
    if (w->timeout > 0) {
        s->start_ms = time_mono_ms();
        if (w->deadline == INT64_MAX) w->deadline = s->start_ms + w->timeout;
    }
    return FLINT_OK;
}

/* Write an element that does not fit in the current buffer (or there is none): the header of
 * wire kind kind, then pre[0..plen) (a record's timestamp), then data[0..len). */
static int put_slow(tm_writer *w, int i, unsigned kind, const void *pre, uint32_t plen, const void *data,
                    uint32_t len) {
    if (w->ended) return FLINT_STATE;
    if ((uint64_t)len + plen >= (1u << 30)) return FLINT_TOO_LARGE;
    tm_wsub *s = &w->subs[i];
    uint32_t h = htole32((len + plen) | (uint32_t)kind << 30);
    const uint8_t *src[3] = {(const uint8_t *)&h, pre, data};
    size_t left[3] = {4, plen, len};
    for (int part = 0; part < 3; part++) {
        while (left[part] > 0) {
            if (!s->cur) {
                int rc = start_buffer(w, i);
                if (rc != FLINT_OK) return rc;
            }
            size_t room = (size_t)(s->end - s->wp);
            size_t k = left[part] < room ? left[part] : room;
            memcpy(s->wp, src[part], k);
            s->wp += k;
            src[part] += k;
            left[part] -= k;
            if (s->wp == s->end) finish(w, i);
        }
    }
    return FLINT_OK;
}

static inline int put(tm_writer *w, int i, tm_elem_kind kind, const void *data, uint32_t len) {
    tm_wsub *s = &w->subs[i];
    uint64_t need = (uint64_t)len + 4;
    if (__builtin_expect((uint64_t)(s->end - s->wp) > need, 1)) {
        uint32_t h = htole32(len | (uint32_t)kind << 30);
        memcpy(s->wp, &h, 4);
        memcpy(s->wp + 4, data, len);
        s->wp += need;
        return FLINT_OK;
    }
    return put_slow(w, i, kind, NULL, 0, data, len);
}

/* A record with a timestamp: wire kind 2, 8-byte LE timestamp, the row. */
static inline int put_ts(tm_writer *w, int i, int64_t ts, const void *data, uint32_t len) {
    tm_wsub *s = &w->subs[i];
    uint64_t need = (uint64_t)len + 12;
    uint64_t t = htole64((uint64_t)ts);
    if (__builtin_expect((uint64_t)(s->end - s->wp) > need && len < (1u << 30) - 8, 1)) {
        uint32_t h = htole32((len + 8) | TM_WIRE_RECORD_TS << 30);
        memcpy(s->wp, &h, 4);
        memcpy(s->wp + 4, &t, 8);
        memcpy(s->wp + 12, data, len);
        s->wp += need;
        return FLINT_OK;
    }
    return put_slow(w, i, TM_WIRE_RECORD_TS, &t, 8, data, len);
}

int tm_writer_emit_ts(tm_writer *w, int subpartition, int64_t timestamp, const void *data, uint32_t len) {
    assert(subpartition >= 0 && subpartition < w->n);
    int rc = put_ts(w, subpartition, timestamp, data, len);
    if (__builtin_expect(rc != FLINT_OK, 0)) return rc;
    add_relaxed(&w->records, 1);
    add_relaxed(&w->bytes, (int64_t)len + 12);
    if (w->timeout == 0 && w->subs[subpartition].cur) finish(w, subpartition);
    return FLINT_OK;
}

int tm_writer_broadcast_ts(tm_writer *w, int64_t timestamp, const void *data, uint32_t len) {
    for (int i = 0; i < w->n; i++) {
        int rc = put_ts(w, i, timestamp, data, len);
        if (rc != FLINT_OK) return rc;
    }
    add_relaxed(&w->records, 1);
    add_relaxed(&w->bytes, ((int64_t)len + 12) * w->n);
    if (w->timeout == 0) return tm_writer_flush(w);
    return FLINT_OK;
}

int tm_writer_watermark(tm_writer *w, int64_t watermark) {
    uint64_t v = htole64((uint64_t)watermark);
    return tm_writer_broadcast(w, TM_ELEM_WATERMARK, &v, 8);
}

int tm_writer_status(tm_writer *w, bool idle) {
    uint8_t b = idle ? 1 : 0;
    return tm_writer_broadcast(w, TM_ELEM_WATERMARK, &b, 1);
}

int tm_writer_emit(tm_writer *w, int subpartition, tm_elem_kind kind, const void *data,
                   uint32_t len) {
    assert(subpartition >= 0 && subpartition < w->n);
    assert(kind == TM_ELEM_RECORD || kind == TM_ELEM_WATERMARK);
    int rc = put(w, subpartition, kind, data, len);
    if (__builtin_expect(rc != FLINT_OK, 0)) return rc;
    if (kind == TM_ELEM_RECORD) add_relaxed(&w->records, 1);
    add_relaxed(&w->bytes, (int64_t)len + 4);
    if (w->timeout == 0 && w->subs[subpartition].cur) finish(w, subpartition);
    return FLINT_OK;
}

int tm_writer_broadcast(tm_writer *w, tm_elem_kind kind, const void *data, uint32_t len) {
    assert(kind == TM_ELEM_RECORD || kind == TM_ELEM_WATERMARK);
    for (int i = 0; i < w->n; i++) {
        int rc = put(w, i, kind, data, len);
        if (rc != FLINT_OK) return rc;
    }
    if (kind == TM_ELEM_RECORD) add_relaxed(&w->records, 1);
    add_relaxed(&w->bytes, ((int64_t)len + 4) * w->n);
    if (w->timeout == 0) return tm_writer_flush(w);
    return FLINT_OK;
}

int tm_writer_flush(tm_writer *w) {
    for (int i = 0; i < w->n; i++) {
        tm_wsub *s = &w->subs[i];
        if (s->cur && s->wp != s->cur->data) finish(w, i);
    }
    if (w->timeout > 0) recompute_deadline(w);   /* only a buffer left empty by a cancel */
    return FLINT_OK;
}

int64_t tm_writer_flush_deadline(const tm_writer *w) {
    return w->timeout > 0 ? w->deadline : INT64_MAX;
}

int tm_writer_event(tm_writer *w, tm_event_type type, const void *payload, uint32_t len) {
    if (w->ended) return FLINT_STATE;
    if ((uint64_t)len + 4 > w->seg) return FLINT_TOO_LARGE;
    tm_writer_flush(w);
    for (int i = 0; i < w->n; i++) {
        tm_buf *b;
        int rc = get_buffer(w, i, true, &b);
        if (rc != FLINT_OK) return rc;
        uint32_t t = htole32((uint32_t)type);
        memcpy(b->data, &t, 4);
        if (len) memcpy(b->data + 4, payload, len);
        b->size = len + 4;
        b->flags = TM_BUF_EVENT | (type == TM_EVENT_END_OF_PARTITION ? TM_BUF_EOP : 0);
        w->subs[i].full = tm_partition_push(w->p, i, b) >= w->p->cap;
    }
    if (type == TM_EVENT_END_OF_PARTITION) {
        w->ended = true;
        for (int i = 0; i < w->n; i++) {
            if (w->subs[i].cur) tm_pool_put(w->pool, w->subs[i].cur);
            w->subs[i].cur = NULL;
            w->subs[i].wp = w->subs[i].end = NULL;
        }
    }
    return FLINT_OK;
}

void tm_writer_metrics_get(const tm_writer *w, tm_writer_metrics *m) {
    tm_writer *mw = (tm_writer *)w;
    m->records_out = atomic_load_explicit(&mw->records, memory_order_relaxed);
    m->bytes_out = atomic_load_explicit(&mw->bytes, memory_order_relaxed);
    unsigned s1, s2;
    int64_t ns, start;
    do {
        s1 = atomic_load(&mw->bp_seq);
        ns = atomic_load(&mw->bp_ns);
        start = atomic_load(&mw->bp_start);
        s2 = atomic_load(&mw->bp_seq);
    } while (s1 != s2 || (s1 & 1));
    m->back_pressured_ns = ns + (start ? time_mono_ns() - start : 0);
}

/* Unit tests of event time: the timer service (order, dedup, delete, firing from callbacks, key
 * groups, processing time), the watermark valve (min over channels, idleness, re-activation),
 * bounded out-of-orderness, the element framing of timestamps, watermarks and statuses on the
 * network, key decoding, and operators run as chains: timestamps_watermarks (periodic and final
 * watermarks, idleness), keyed_process with event- and processing-time timers, side outputs. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "graph/graph.h"
#include "network/tm_net.h"
#include "operators/operator.h"
#include "operators/time_ops.h"
#include "row/row_key.h"
#include "task/chain.h"
#include "task/tm_timers.h"
#include "task/tm_valve.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

#include "check_op_helpers.h"

/* ---- the timer service ---------------------------------------------------------------------------- */

typedef struct fired {
    char log[64][48];
    int n;
    tm_timer_queue *q;          /* for callbacks that register/delete */
    int reregister;             /* fire: register a timer at time + reregister (once per timer < 100) */
} fired;

static int record_fire(void *owner, const tm_timer *t) {
    fired *f = owner;
    ck_assert_int_lt(f->n, 64);
    snprintf(f->log[f->n++], sizeof f->log[0], "%c%lld:%.*s/%.*s@%d", t->domain == FLINT_EVENT_TIME ? 'e' : 'p',
             (long long)t->time, (int)t->key_len, (const char *)t->key, (int)t->ns_len, (const char *)t->ns,
             t->key_group);
    if (f->reregister && t->time < 100)
        tm_timer_register(f->q, t->domain, t->key, t->key_len, t->key_group, t->ns, t->ns_len,
                          t->time + f->reregister);
    return FLINT_OK;
}

#define REG(q, d, key, kg, ns, t) tm_timer_register(q, d, (const uint8_t *)(key), strlen(key), kg, (const uint8_t *)(ns), strlen(ns), t)
#define DEL(q, d, key, kg, ns, t) tm_timer_delete(q, d, (const uint8_t *)(key), strlen(key), kg, (const uint8_t *)(ns), strlen(ns), t)

static void expect_log(const fired *f, int n, ...) {
    va_list ap;
    va_start(ap, n);
    ck_assert_int_eq(f->n, n);
    for (int i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        ck_assert_str_eq(f->log[i], want);
    }
    va_end(ap);
}

START_TEST(test_timer_order_dedup_delete) {
    tm_timers *ts = tm_timers_new(128);
    fired f = {0};
    tm_timer_queue *q = tm_timers_queue_new(ts, &f, record_fire);
    f.q = q;
    ck_assert(REG(q, FLINT_EVENT_TIME, "b", 3, "", 30));
    ck_assert(REG(q, FLINT_EVENT_TIME, "a", 1, "", 10));
    ck_assert(REG(q, FLINT_EVENT_TIME, "c", 5, "", 20));
    ck_assert(!REG(q, FLINT_EVENT_TIME, "a", 1, "", 10));           /* dedup */
    ck_assert(REG(q, FLINT_EVENT_TIME, "a", 1, "w1", 10));          /* another namespace */
    ck_assert(REG(q, FLINT_PROCESSING_TIME, "a", 1, "", 10));       /* another domain */
    ck_assert(REG(q, FLINT_EVENT_TIME, "d", 7, "", 20));            /* tie with c: registration order */
    ck_assert(REG(q, FLINT_EVENT_TIME, "e", 7, "", 25));
    ck_assert_uint_eq(tm_timer_queue_count(q, FLINT_EVENT_TIME), 6);
    ck_assert_uint_eq(tm_timers_count(ts), 7);
    ck_assert(DEL(q, FLINT_EVENT_TIME, "e", 7, "", 25));
    ck_assert(!DEL(q, FLINT_EVENT_TIME, "e", 7, "", 25));           /* gone */
    ck_assert(!DEL(q, FLINT_EVENT_TIME, "b", 3, "", 31));           /* no such time */
    ck_assert_int_eq(tm_timer_queue_next_event_time(q), 10);
    ck_assert_int_eq(tm_timer_queue_advance_watermark(q, 9), 0);
    ck_assert_int_eq(f.n, 0);
    ck_assert_int_eq(tm_timer_queue_advance_watermark(q, 20), 0);
    expect_log(&f, 4, "e10:a/@1", "e10:a/w1@1", "e20:c/@5", "e20:d/@7");
    ck_assert_int_eq(tm_timer_queue_advance_watermark(q, INT64_MAX), 0);
    expect_log(&f, 5, "e10:a/@1", "e10:a/w1@1", "e20:c/@5", "e20:d/@7", "e30:b/@3");
    ck_assert_int_eq(tm_timer_queue_next_event_time(q), INT64_MAX);
    /* The processing-time timer is still there, then fires. */
    ck_assert_int_eq(tm_timers_next_processing_time(ts), 10);
    ck_assert_int_eq(tm_timers_fire_processing_time(ts, 9), 0);
    ck_assert_int_eq(f.n, 5);
    ck_assert_int_eq(tm_timers_fire_processing_time(ts, 10), 0);
    ck_assert_str_eq(f.log[5], "p10:a/@1");
    ck_assert_uint_eq(tm_timers_count(ts), 0);
    /* A deleted timer can be registered again. */
    ck_assert(REG(q, FLINT_EVENT_TIME, "e", 7, "", 25));
    ck_assert_uint_eq(tm_timers_count(ts), 1);
    tm_timers_free(ts);
}
END_TEST

START_TEST(test_timer_register_while_firing) {
    tm_timers *ts = tm_timers_new(16);
    fired f = {.reregister = 5};
    tm_timer_queue *q = tm_timers_queue_new(ts, &f, record_fire);
    f.q = q;
    REG(q, FLINT_EVENT_TIME, "k", 2, "", 1);
    /* 1 fires and registers 6, which is due too: it fires in the same advance; 11 is not. */
    ck_assert_int_eq(tm_timer_queue_advance_watermark(q, 10), 0);
    expect_log(&f, 2, "e1:k/@2", "e6:k/@2");
    ck_assert_int_eq(tm_timer_queue_next_event_time(q), 11);
    tm_timers_free(ts);
}
END_TEST

START_TEST(test_timer_many_random) {
    /* Heap order against a sort: 5000 timers with duplicates and deletions. */
    tm_timers *ts = tm_timers_new(128);
    fired f = {0};
    tm_timer_queue *q = tm_timers_queue_new(ts, NULL, NULL);
    (void)f;
    static char present[1000];
    memset(present, 0, sizeof present);
    unsigned seed = 7;
    for (int i = 0; i < 5000; i++) {
        seed = seed * 1103515245 + 12345;
        int t = (int)((seed >> 8) % 1000);
        char key[8];
        snprintf(key, sizeof key, "k");
        bool added = REG(q, FLINT_EVENT_TIME, key, 0, "", t);
        ck_assert(added == !present[t]);
        present[t] = 1;
        if (i % 3 == 0) {
            seed = seed * 1103515245 + 12345;
            int d = (int)((seed >> 8) % 1000);
            ck_assert(DEL(q, FLINT_EVENT_TIME, key, 0, "", d) == (bool)present[d]);
            present[d] = 0;
        }
    }
    size_t want = 0;
    for (int i = 0; i < 1000; i++) want += present[i];
    ck_assert_uint_eq(tm_timer_queue_count(q, FLINT_EVENT_TIME), want);
    int64_t last = -1;
    while (tm_timer_queue_next_event_time(q) != INT64_MAX) {
        int64_t t = tm_timer_queue_next_event_time(q);
        ck_assert_int_gt(t, last);
        ck_assert(present[t]);
        last = t;
        tm_timer_queue_advance_watermark(q, t);
    }
    tm_timers_free(ts);
}
END_TEST

static int count_visit(void *ud, const tm_timer *t) {
    (*(int *)ud)++;
    return 0;
}

START_TEST(test_timer_key_groups_and_queues) {
    tm_timers *ts = tm_timers_new(8);
    fired f1 = {0}, f2 = {0};
    tm_timer_queue *q1 = tm_timers_queue_new(ts, &f1, record_fire);
    tm_timer_queue *q2 = tm_timers_queue_new(ts, &f2, record_fire);
    REG(q1, FLINT_EVENT_TIME, "a", 3, "", 5);
    REG(q1, FLINT_PROCESSING_TIME, "b", 3, "", 50);
    REG(q1, FLINT_EVENT_TIME, "c", 4, "", 5);
    REG(q2, FLINT_EVENT_TIME, "a", 3, "", 5);        /* another operator: its own timer */
    REG(q2, FLINT_PROCESSING_TIME, "z", 7, "", 40);
    int n = 0;
    tm_timer_queue_foreach_key_group(q1, 3, count_visit, &n);
    ck_assert_int_eq(n, 2);
    n = 0;
    tm_timer_queue_foreach_key_group(q1, 4, count_visit, &n);
    ck_assert_int_eq(n, 1);
    n = 0;
    tm_timer_queue_foreach_key_group(q1, 7, count_visit, &n);
    ck_assert_int_eq(n, 0);
    /* Processing time: across queues in time order. */
    ck_assert_int_eq(tm_timers_next_processing_time(ts), 40);
    tm_timers_fire_processing_time(ts, 100);
    expect_log(&f2, 1, "p40:z/@7");
    expect_log(&f1, 1, "p50:b/@3");
    /* Event time is per queue. */
    tm_timer_queue_advance_watermark(q2, 5);
    ck_assert_int_eq(f1.n, 1);
    ck_assert_int_eq(f2.n, 2);
    n = 0;
    tm_timer_queue_foreach_key_group(q1, 3, count_visit, &n);
    ck_assert_int_eq(n, 1);
    tm_timers_free(ts);
}
END_TEST

/* ---- the watermark valve ------------------------------------------------------------------------ */

START_TEST(test_valve_min_over_channels) {
    tm_valve v;
    tm_valve_init(&v, 3);
    ck_assert_int_eq(tm_valve_watermark(&v, 0, 10), 0);         /* others still at MIN */
    ck_assert_int_eq(tm_valve_watermark(&v, 1, 5), 0);
    ck_assert_int_eq(tm_valve_watermark(&v, 2, 7), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 5);
    ck_assert_int_eq(tm_valve_watermark(&v, 1, 4), 0);          /* going back is ignored */
    ck_assert_int_eq(tm_valve_watermark(&v, 1, 20), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 7);
    ck_assert_int_eq(tm_valve_watermark(&v, 0, 12), 0);          /* min is still channel 2 */
    /* Channel 2 idle: the min of the others. */
    ck_assert_int_eq(tm_valve_status(&v, 2, true), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 12);
    ck_assert_int_eq(tm_valve_status(&v, 2, true), 0);
    /* Its watermarks while idle do not count. */
    ck_assert_int_eq(tm_valve_watermark(&v, 2, 9), 0);
    ck_assert_int_eq(tm_valve_watermark(&v, 0, 15), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 15);
    /* Active again behind (9 < 15): left out until it catches up, never moves the watermark back. */
    ck_assert_int_eq(tm_valve_status(&v, 2, false), 0);
    ck_assert_int_eq(tm_valve_watermark(&v, 0, 30), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 20);                              /* channel 1 */
    ck_assert_int_eq(tm_valve_watermark(&v, 1, 40), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 30);
    ck_assert_int_eq(tm_valve_watermark(&v, 2, 25), 0);          /* still behind 30 */
    ck_assert_int_eq(tm_valve_watermark(&v, 2, 35), 0);          /* aligned now; min 30 */
    ck_assert_int_eq(tm_valve_watermark(&v, 0, 50), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 35);                              /* channel 2 holds it */
    tm_valve_free(&v);
}
END_TEST

START_TEST(test_valve_all_idle) {
    tm_valve v;
    tm_valve_init(&v, 2);
    ck_assert_int_eq(tm_valve_status(&v, 0, true), 0);
    ck_assert_int_eq(tm_valve_status(&v, 1, true), TM_VALVE_IDLE);
    ck_assert(v.out_idle);
    ck_assert_int_eq(tm_valve_watermark(&v, 0, 100), 0);
    /* One comes back: active, and its watermark (100 > MIN) goes out. */
    ck_assert_int_eq(tm_valve_status(&v, 0, false), TM_VALVE_ACTIVE | TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 100);
    ck_assert_int_eq(tm_valve_status(&v, 0, true), TM_VALVE_IDLE);
    ck_assert_int_eq(tm_valve_status(&v, 1, false), TM_VALVE_ACTIVE);   /* behind: no watermark */
    ck_assert_int_eq(tm_valve_watermark(&v, 1, 150), TM_VALVE_WATERMARK);
    ck_assert_int_eq(v.out_wm, 150);
    tm_valve_free(&v);
}
END_TEST

/* ---- bounded out-of-orderness ------------------------------------------------------------------------ */

START_TEST(test_bounded_watermark) {
    ck_assert_int_eq(tm_bounded_watermark(INT64_MIN, 0), INT64_MIN);
    ck_assert_int_eq(tm_bounded_watermark(1000, 0), 999);
    ck_assert_int_eq(tm_bounded_watermark(1000, 200), 799);
    ck_assert_int_eq(tm_bounded_watermark(0, 5), -6);
    ck_assert_int_eq(tm_bounded_watermark(INT64_MIN + 3, 5), INT64_MIN);       /* no underflow */
    ck_assert_int_eq(tm_bounded_watermark(INT64_MAX, 0), INT64_MAX - 1);
}
END_TEST

/* ---- framing on the network ------------------------------------------------------------------------ */

static tm_net *mknet(void) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(cfg, "taskmanager.memory.segment-size=4kb", &err), 0);
    tm_net *n = tm_net_new(cfg, "tm-1", &err);
    config_free(cfg);
    ck_assert_msg(n != NULL, "%s", err.msg);
    return n;
}

static int next_el(tm_input *in, tm_waker *w, tm_element *el) {
    int64_t deadline = time_mono_ms() + 20000;
    for (;;) {
        int rc = tm_input_next(in, el);
        if (rc != FLINT_UNAVAILABLE) return rc;
        ck_assert_msg(time_mono_ms() < deadline, "no element in time");
        tm_waker_wait(w, time_mono_ms() + 100);
    }
}

static uint8_t big[10000];

/* The producer of test_framing, on its own thread (the consumer applies backpressure). */
static void *framing_writer(void *arg) {
    tm_writer *wr = arg;
    int rc = 0;
    rc |= tm_writer_emit(wr, 0, TM_ELEM_RECORD, "abc", 3);
    rc |= tm_writer_emit_ts(wr, 0, 1234567890123LL, "defg", 4);
    rc |= tm_writer_emit_ts(wr, 0, -5, "", 0);                    /* negative, empty */
    rc |= tm_writer_watermark(wr, 42);
    rc |= tm_writer_status(wr, true);
    rc |= tm_writer_status(wr, false);
    rc |= tm_writer_emit_ts(wr, 0, INT64_MAX - 1, big, sizeof big);   /* spans buffers */
    for (int i = 0; i < 2000; i++)   /* many, so that headers and timestamps straddle buffer ends */
        rc |= i % 2 ? tm_writer_emit_ts(wr, 0, i, big, (uint32_t)(i % 37))
                    : tm_writer_emit(wr, 0, TM_ELEM_RECORD, big, (uint32_t)(i % 41));
    rc |= tm_writer_watermark(wr, FLINT_MAX_WATERMARK);
    rc |= tm_writer_event(wr, TM_EVENT_END_OF_PARTITION, NULL, 0);
    return (void *)(intptr_t)rc;
}

START_TEST(test_framing) {
    tm_net *net = mknet();
    tm_waker *w = tm_waker_new(), *ww = tm_waker_new();
    flint_err err = {0};
    tm_partition *p = tm_partition_create(net, "job.e1.0", 1, &err);
    ck_assert_msg(p, "%s", err.msg);
    tm_writer *wr = tm_writer_new(p, -1, ww);
    tm_input *in = tm_input_new(net, w);
    tm_channel_desc d = {.partition_id = "job.e1.0", .subpartition = 0, .producer_resource_id = "tm-1",
                         .host = "127.0.0.1", .data_port = 0};
    tm_input_add_gate(in, 1, &d);
    ck_assert_int_eq(tm_input_start(in, &err), FLINT_OK);
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, framing_writer, wr), 0);

    tm_element el;
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
    ck_assert_int_eq(el.timestamp, FLINT_NO_TIMESTAMP);
    ck_assert_int_eq(el.len, 3);
    ck_assert(memcmp(el.data, "abc", 3) == 0);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
    ck_assert_int_eq(el.timestamp, 1234567890123LL);
    ck_assert_int_eq(el.len, 4);
    ck_assert(memcmp(el.data, "defg", 4) == 0);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
    ck_assert_int_eq(el.timestamp, -5);
    ck_assert_int_eq(el.len, 0);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_WATERMARK);
    ck_assert_int_eq(el.timestamp, 42);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_STATUS);
    ck_assert_int_eq(el.data[0], 1);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_STATUS);
    ck_assert_int_eq(el.data[0], 0);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
    ck_assert_int_eq(el.timestamp, INT64_MAX - 1);
    ck_assert_int_eq(el.len, sizeof big);
    ck_assert(memcmp(el.data, big, sizeof big) == 0);
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
        ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
        ck_assert_int_eq(el.timestamp, i % 2 ? i : FLINT_NO_TIMESTAMP);
        ck_assert_int_eq(el.len, i % 2 ? i % 37 : i % 41);
        ck_assert(el.len == 0 || memcmp(el.data, big, el.len) == 0);
    }
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_WATERMARK);
    ck_assert_int_eq(el.timestamp, FLINT_MAX_WATERMARK);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_GATE_END);
    ck_assert_int_eq(next_el(in, w, &el), FLINT_CLOSED);
    tm_input_metrics im;
    tm_input_metrics_get(in, &im);
    ck_assert_int_eq(im.records_in, 2004);                   /* watermarks are not records */
    void *wrc;
    pthread_join(th, &wrc);
    ck_assert_int_eq((int)(intptr_t)wrc, 0);

    tm_writer_free(wr);
    tm_partition_release(p, false);
    tm_input_free(in);
    tm_waker_free(w);
    tm_waker_free(ww);
    tm_net_free(net);
}
END_TEST

/* ---- key decoding ------------------------------------------------------------------------------------- */

START_TEST(test_key_decode) {
    flint_schema *s = NULL;
    flint_err err = {0};
    ck_assert_int_eq(flint_schema_parse("a INT, b STRING, c DOUBLE, d BOOLEAN, e TIMESTAMP(3), f BIGINT", &s, &err), 0);
    flint_row_builder b, kb;
    flint_row_builder_init(&b, s);
    flint_row_set_int(&b, 0, -7);
    flint_row_set_cstring(&b, 1, "hello");
    flint_row_set_double(&b, 2, 2.5);
    flint_row_set_bool(&b, 3, true);
    flint_row_set_long(&b, 4, 1700000000000LL);
    /* f stays NULL */
    flint_row r = flint_row_builder_row(&b);
    int fields[] = {5, 1, 0, 2, 3, 4};
    uint8_t key[256];
    size_t len = row_key_encode(&r, fields, 6, key, sizeof key);
    char *text = tm_key_schema_text(s, fields, 6);
    ck_assert_str_eq(text, "`f` BIGINT, `b` STRING, `a` INT, `c` DOUBLE, `d` BOOLEAN, `e` TIMESTAMP(3)");
    flint_schema *ks = NULL;
    ck_assert_int_eq(flint_schema_parse(text, &ks, &err), 0);
    free(text);
    flint_row_builder_init(&kb, ks);
    ck_assert_int_eq(tm_key_decode(key, len, &kb), FLINT_OK);
    flint_row k = flint_row_builder_row(&kb);
    char out[256];
    flint_row_format(&k, " ", out, sizeof out);
    ck_assert(flint_row_is_null(&k, 0));
    ck_assert_int_eq(flint_row_get_int(&k, 2), -7);
    ck_assert(flint_row_get_double(&k, 3) == 2.5);
    ck_assert(flint_row_get_bool(&k, 4));
    ck_assert_int_eq(flint_row_get_long(&k, 5), 1700000000000LL);
    size_t sl;
    const char *sv = flint_row_get_string(&k, 1, &sl);
    ck_assert_int_eq(sl, 5);
    ck_assert(memcmp(sv, "hello", 5) == 0);
    /* Re-encoding the decoded key gives the same bytes (same key group). */
    uint8_t again[256];
    ck_assert_uint_eq(row_key_encode(&k, NULL, 6, again, sizeof again), len);
    ck_assert(memcmp(again, key, len) == 0);
    /* Truncated or mistyped bytes are refused. */
    ck_assert_int_eq(tm_key_decode(key, len - 1, &kb), FLINT_INVALID);
    key[1] ^= 0x7f;   /* the tag of field b */
    ck_assert_int_eq(tm_key_decode(key, len, &kb), FLINT_INVALID);
    flint_row_builder_free(&kb);
    flint_row_builder_free(&b);
    flint_schema_free(ks);
    flint_schema_free(s);
}
END_TEST

/* ---- operators as chains --------------------------------------------------------------------------------- */

static Flint__Graph__JobVertex *mkvertex(int n, Flint__Graph__OperatorDef **ops) {
    Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(v);
    v->name = xstrdup("time vertex");
    v->parallelism = 1;
    v->operators = xcalloc((size_t)n, sizeof *v->operators);
    for (int i = 0; i < n; i++) v->operators[v->n_operators++] = ops[i];
    for (int i = 0; i + 1 < n; i++) {
        v->operators[i]->chained_outputs = xcalloc(1, sizeof(int32_t));
        v->operators[i]->chained_outputs[0] = i + 1;
        v->operators[i]->n_chained_outputs = 1;
    }
    return v;
}

/* User functions of the chains. */
static int64_t ts_times10(flint_ctx *ctx, const flint_row *in) { return flint_row_get_long(in, 1) * 10; }

/* keyed_process: per key (k STRING, ts BIGINT): remember the last ts in value state, an event-time
 * timer at ts + 10, a processing-time timer when ts == 999; on_timer emits "k last time domain". */
static flint_state *last_seen;
static int kp_open(flint_ctx *ctx) {
    flint_state_desc d = {.name = "last", .schema = "ts BIGINT"};
    last_seen = flint_state_value(ctx, &d);
    return last_seen ? 0 : 1;
}
static void kp_process(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    int64_t ts = flint_row_get_long(in, 1);
    flint_row_builder vb;
    flint_schema *vs = NULL;
    flint_err err = {0};
    flint_schema_parse("ts BIGINT", &vs, &err);
    flint_row_builder_init(&vb, vs);
    flint_row old;
    if (flint_value_get(last_seen, &old)) flint_timer_delete_event_time(ctx, flint_row_get_long(&old, 0) + 10);
    flint_row_set_long(&vb, 0, ts);
    flint_row v = flint_row_builder_row(&vb);
    flint_value_update(last_seen, &v);
    flint_row_builder_free(&vb);
    flint_schema_free(vs);
    flint_timer_register_event_time(ctx, ts + 10);
    if (ts == 999) flint_timer_register_processing_time(ctx, flint_ctx_current_processing_time(ctx) - 1);
    if (ts < 0) {   /* a side output of negative timestamps */
        flint_row_builder *sb = flint_side_out_row(out, "neg");
        flint_row_copy_field(sb, 0, in, 0);
        flint_row_set_long(sb, 1, flint_ctx_timestamp(ctx));
        flint_emit_side(out, "neg");
    }
}
static void kp_on_timer(flint_ctx *ctx, int64_t time, flint_time_domain domain, flint_collector *out) {
    flint_row key = flint_ctx_current_key(ctx);
    flint_row last;
    if (!flint_value_get(last_seen, &last)) return;   /* cleared by an earlier timer */
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, &key, 0);
    flint_row_set_long(b, 1, flint_row_get_long(&last, 0));
    flint_row_set_long(b, 2, domain == FLINT_EVENT_TIME ? time : -1);
    flint_row_set_long(b, 3, flint_ctx_current_watermark(ctx) == INT64_MIN ? -2 : flint_ctx_current_watermark(ctx));
    flint_emit(out);
    flint_state_clear(last_seen);
}

static struct {
    const char *name;
    void (*fn)(void);
} udfs[] = {
    {"ts_times10", (void (*)(void))ts_times10}, {"kp_open", (void (*)(void))kp_open},
    {"kp_process", (void (*)(void))kp_process}, {"kp_on_timer", (void (*)(void))kp_on_timer},
};

static void *resolve(void *ud, const char *name) {
    for (size_t i = 0; i < sizeof udfs / sizeof *udfs; i++)
        if (strcmp(udfs[i].name, name) == 0) {
            void *p;
            memcpy(&p, &udfs[i].fn, sizeof p);
            return p;
        }
    return NULL;
}

typedef struct chain_run {
    tm_runtime rt;
    tm_chain c;
    Flint__Graph__JobVertex *v;
    out_log out;
    flint_row_builder b;
} chain_run;

static void chain_start(chain_run *r, int n, Flint__Graph__OperatorDef **ops) {
    memset(r, 0, sizeof *r);
    r->rt = (tm_runtime){.subtask = 0, .parallelism = 1, .max_parallelism = 128, .task_name = "time (1/1)",
                         .resolve = resolve, .artifact = "abc", .timestamp = FLINT_NO_TIMESTAMP,
                         .auto_watermark_interval_ms = 50};
    r->rt.timers = tm_timers_new(128);
    r->v = mkvertex(n, ops);
    r->out.rt = &r->rt;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&r->c, r->v, &r->rt, &err) == 0, "%s", err.msg);
    tm_output o = {.fn = out_row, .ud = &r->out, .wm_fn = out_wm, .idle_fn = out_idle};
    tm_chain_add_output_tagged(&r->c, r->c.n - 1, &o, "");
    ck_assert_msg(tm_chain_open(&r->c) == 0, "%s", r->rt.err.msg);
    flint_row_builder_init(&r->b, r->c.ops[0]->in_schema);
}

static void chain_row(chain_run *r, const char *text, int64_t ts) {
    flint_err err = {0};
    flint_row_builder_reset(&r->b);
    ck_assert_int_eq(flint_row_parse(&r->b, text, strlen(text), ',', &err), 0);
    flint_row row = flint_row_builder_row(&r->b);
    r->rt.timestamp = ts;
    ck_assert_msg(tm_op_process(r->c.ops[0], &row) == 0, "%s", r->rt.err.msg);
}

static void chain_end(chain_run *r) {
    flint_row_builder_free(&r->b);
    tm_chain_close(&r->c);
    tm_timers_free(r->rt.timers);
    free(r->rt.ticks);
    flint__graph__job_vertex__free_unpacked(r->v, NULL);
}

START_TEST(test_timestamps_operator) {
    Flint__Graph__OperatorDef *ops[] = {
        mkop("timestamps_watermarks", "k STRING, ts BIGINT", "k STRING, ts BIGINT", "ts.field", "1",
             "out_of_orderness", "5", "idleness", "100", NULL)};
    chain_run r;
    chain_start(&r, 1, ops);
    chain_row(&r, "a,100", FLINT_NO_TIMESTAMP);
    chain_row(&r, "b,90", 7);                     /* the field wins over an earlier timestamp */
    /* Watermarks go out only on ticks: max 100 - 5 - 1. */
    int64_t now = time_mono_ms() + 1000;
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, now, NULL), 0);
    chain_row(&r, "c,120", FLINT_NO_TIMESTAMP);
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, now + 50, NULL), 0);
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, now + 100, NULL), 0);   /* nothing new: no watermark */
    /* No rows for 100 ms: idle; then a row makes it active again. */
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, now + 150, NULL), 0);
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, now + 200, NULL), 0);
    chain_row(&r, "d,121", FLINT_NO_TIMESTAMP);
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, now + 250, NULL), 0);
    /* Upstream watermarks are swallowed, except the end of input. */
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], 1000), 0);
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], FLINT_MAX_WATERMARK), 0);
    expect_out(&r.out, 10, "a 100 @100", "b 90 @90", "WM 94", "c 120 @120", "WM 114", "IDLE", "ACTIVE",
               "d 121 @121", "WM 115", "WM MAX");
    chain_end(&r);
    /* ... which in a fresh chain arrives after the rows */
    Flint__Graph__OperatorDef *ops2[] = {
        mkop("timestamps_watermarks", "k STRING, ts BIGINT", "k STRING, ts BIGINT", "fn", "ts_times10", NULL)};
    chain_start(&r, 1, ops2);
    chain_row(&r, "a,3", FLINT_NO_TIMESTAMP);
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], 5), 0);
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], FLINT_MAX_WATERMARK), 0);
    ck_assert_int_eq(tm_runtime_run_ticks(&r.rt, time_mono_ms() + 1000, NULL), 0);   /* nothing after MAX */
    expect_out(&r.out, 2, "a 3 @30", "WM MAX");
    chain_end(&r);
}
END_TEST

START_TEST(test_keyed_process_timers) {
    Flint__Graph__OperatorDef *ops[] = {
        mkop("keyed_process", "k STRING, ts BIGINT", "k STRING, last BIGINT, t BIGINT, wm BIGINT", "key.fields", "0",
             "fn", "kp_process", "fn.timer", "kp_on_timer", "fn.open", "kp_open", "side.neg", "k STRING, ts BIGINT",
             NULL)};
    chain_run r;
    chain_start(&r, 1, ops);
    out_log side = {.rt = &r.rt};
    tm_output so = {.fn = out_row, .ud = &side, .wm_fn = out_wm};
    tm_chain_add_output_tagged(&r.c, 0, &so, "neg");
    chain_row(&r, "a,100", 100);
    chain_row(&r, "b,105", 105);
    chain_row(&r, "a,108", 108);      /* moves a's timer from 110 to 118 */
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], 110), 0);   /* nothing due for a; b's is 115 */
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], 115), 0);   /* b fires */
    chain_row(&r, "c,-3", -3);        /* late, and to the side output */
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], 200), 0);   /* a at 118, c at 7 (late: fires now) */
    chain_row(&r, "d,999", 999);      /* a processing-time timer already due */
    ck_assert_int_eq(tm_timers_fire_processing_time(r.rt.timers, tm_timers_now_ms()), 0);
    ck_assert_int_eq(tm_op_watermark(r.c.ops[0], FLINT_MAX_WATERMARK), 0);   /* d's event timer: no state */
    expect_out(&r.out, 8, "WM 110", "b 105 115 115 @115", "WM 115", "c -3 7 200 @7", "a 108 118 200 @118",
               "WM 200", "d 999 -1 200", "WM MAX");
    expect_out(&side, 5, "WM 110", "WM 115", "c -3 @-3", "WM 200", "WM MAX");
    chain_end(&r);
}
END_TEST

/* ---- the job graph: watermark strategies, side outputs, two inputs ----------------------------------- */

void g_flat(flint_ctx *ctx, const flint_row *in, flint_collector *out) { (void)ctx, (void)in, (void)out; }
void g_timer(flint_ctx *ctx, int64_t t, flint_time_domain d, flint_collector *out) {
    (void)ctx, (void)t, (void)d, (void)out;
}
int64_t g_ts(flint_ctx *ctx, const flint_row *in) { return (void)ctx, (void)in, 0; }
void g_key(flint_ctx *ctx, const flint_row *in, flint_row_builder *key) { (void)ctx, (void)in, (void)key; }

static flint_env *genv(void) {
    graph_env_defaults d = {.parallelism = 2, .max_parallelism = 128, .buffer_timeout_ms = 100};
    return graph_env_new(&d);
}

static const char *const GROWS[] = {"a,1", "b,2"};

static const char *param(const Flint__Graph__OperatorDef *op, const char *key) {
    for (size_t i = 0; i < op->n_params; i++)
        if (strcmp(op->params[i]->key, key) == 0) return op->params[i]->value;
    return NULL;
}

START_TEST(test_graph_time) {
    flint_env *env = genv();
    flint_stream *a = flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS);
    flint_watermark_strategy ws = {.timestamp_field = "ts", .max_out_of_orderness_ms = 250, .idleness_ms = 9};
    flint_stream *t = flint_assign_timestamps_and_watermarks(a, ws);
    flint_stream *p = flint_keyed_process(flint_key_by(t, "k"), FLINT_FN(g_flat), FLINT_FN(g_timer), "k STRING");
    flint_stream *late = flint_side_output(p, "late", "k STRING, ts BIGINT");
    flint_sink_print(p);
    flint_set_parallelism(flint_sink_print(late), 1);          /* over the network */
    flint_sink_blackhole(flint_side_output(p, "late", "k STRING, ts BIGINT"));   /* chained */
    flint_stream *b = flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS);
    flint_stream *c = flint_co_process(flint_connect_keyed(flint_key_by(t, "k"), flint_key_by_fn(b, FLINT_FN(g_key), "x STRING")),
                                       FLINT_FN(g_flat), FLINT_FN(g_flat), FLINT_FN(g_timer), "n BIGINT");
    flint_sink_print(c);
    ck_assert_msg(flint_env_error(env) == NULL, "%s", flint_env_error(env));
    ck_assert_int_eq(flint_execute(env, "t"), FLINT_OK);
    Flint__Graph__JobGraph *job = graph_env_job(env);
    const Flint__Graph__OperatorDef *ts = NULL, *kp = NULL, *co = NULL;
    for (size_t v = 0; v < job->n_vertices; v++)
        for (size_t o = 0; o < job->vertices[v]->n_operators; o++) {
            const Flint__Graph__OperatorDef *op = job->vertices[v]->operators[o];
            if (strcmp(op->kind, "timestamps_watermarks") == 0) ts = op;
            if (strcmp(op->kind, "keyed_process") == 0) kp = op;
            if (strcmp(op->kind, "co_process") == 0) {
                co = op;
                ck_assert_int_eq(o, 0);                          /* a two-input operator heads its chain */
            }
        }
    ck_assert(ts && kp && co);
    ck_assert_str_eq(param(ts, "ts.field"), "1");
    ck_assert_str_eq(param(ts, "out_of_orderness"), "250");
    ck_assert_str_eq(param(ts, "idleness"), "9");
    ck_assert_str_eq(param(kp, "fn.timer"), "g_timer");
    ck_assert_str_eq(param(kp, "side.late"), "k STRING, ts BIGINT");
    /* Tags: the main print and the chained blackhole are chained outputs; the print at
     * parallelism 1 is an output edge tagged "late" carrying the side output's schema. */
    ck_assert_uint_eq(kp->n_chained_output_tags, kp->n_chained_outputs);
    ck_assert_uint_eq(kp->n_output_edge_tags, kp->n_output_edges);
    int main_chained = 0, late_chained = 0;
    for (size_t i = 0; i < kp->n_chained_outputs; i++) {
        if (kp->chained_output_tags[i][0] == 0) main_chained++;
        else if (strcmp(kp->chained_output_tags[i], "late") == 0) late_chained++;
    }
    ck_assert_int_eq(main_chained, 1);
    ck_assert_int_eq(late_chained, 1);
    ck_assert_uint_eq(kp->n_output_edges, 1);
    ck_assert_str_eq(kp->output_edge_tags[0], "late");
    for (size_t e = 0; e < job->n_edges; e++)
        if (job->edges[e]->id == kp->output_edges[0]) ck_assert_str_eq(job->edges[e]->schema, "k STRING, ts BIGINT");
    /* The co_process: input 0 from the timestamps operator's vertex, input 1 from b's; keys of both. */
    int in0 = 0, in1 = 0;
    for (size_t e = 0; e < job->n_edges; e++) {
        const Flint__Graph__JobEdge *je = job->edges[e];
        const Flint__Graph__JobVertex *tv = job->vertices[je->target_vertex - 1];
        if (tv->operators[0] != co) continue;
        ck_assert_int_eq(je->partitioner, FLINT__GRAPH__PARTITIONER__HASH);
        if (je->input_index == 0) in0++;
        if (je->input_index == 1) {
            in1++;
            ck_assert_str_eq(je->key_selector, "g_key");
        }
    }
    ck_assert_int_eq(in0, 1);
    ck_assert_int_eq(in1, 1);
    ck_assert_str_eq(param(co, "key.fields"), "0");
    ck_assert_str_eq(param(co, "key2.selector"), "g_key");
    ck_assert_str_eq(param(co, "key2.schema"), "x STRING");
    ck_assert_str_eq(param(co, "in2.schema"), "k STRING, ts BIGINT");
    graph_env_free(env);
}
END_TEST

static void expect_graph_error(flint_env *env, const char *what) {
    ck_assert_int_ne(flint_execute(env, "t"), FLINT_OK);
    const char *e = flint_env_error(env);
    ck_assert_msg(e && strstr(e, what), "error '%s' lacks '%s'", e ? e : "(none)", what);
    graph_env_free(env);
}

START_TEST(test_graph_time_errors) {
    flint_env *env = genv();
    flint_watermark_strategy ws = {.timestamp_field = "k"};
    flint_sink_print(flint_assign_timestamps_and_watermarks(flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS), ws));
    expect_graph_error(env, "timestamp field 'k' is STRING");

    env = genv();
    flint_watermark_strategy none = {0};
    flint_sink_print(flint_assign_timestamps_and_watermarks(flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS), none));
    expect_graph_error(env, "neither a timestamp_field nor a timestamp_fn");

    env = genv();
    flint_stream *a = flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS);
    flint_sink_print(flint_co_process(flint_connect_keyed(flint_key_by(a, "k"), flint_key_by(a, "ts")), FLINT_FN(g_flat),
                                      FLINT_FN(g_flat), (flint_fn){0}, "n BIGINT"));
    expect_graph_error(env, "keys of the two streams differ in type: (STRING) vs (BIGINT)");

    env = genv();
    a = flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS);
    flint_sink_print(flint_co_process(flint_connect(a, a), FLINT_FN(g_flat), FLINT_FN(g_flat), FLINT_FN(g_timer), "n BIGINT"));
    expect_graph_error(env, "timers need keyed streams");

    env = genv();
    a = flint_process(flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS), FLINT_FN(g_flat), "k STRING");
    flint_side_output(a, "x", "a BIGINT");
    flint_sink_print(flint_side_output(a, "x", "a STRING"));
    expect_graph_error(env, "side output 'x' declared with two schemas");

    env = genv();
    a = flint_from_elements(env, "k STRING, ts BIGINT", 2, GROWS);
    flint_sink_print(flint_side_output(flint_rebalance(a), "x", "a BIGINT"));
    expect_graph_error(env, "not an operator's output");
}
END_TEST

static Suite *time_suite(void) {
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("timers");
    tcase_add_test(tc, test_timer_order_dedup_delete);
    tcase_add_test(tc, test_timer_register_while_firing);
    tcase_add_test(tc, test_timer_many_random);
    tcase_add_test(tc, test_timer_key_groups_and_queues);
    suite_add_tcase(s, tc);
    tc = tcase_create("watermarks");
    tcase_add_test(tc, test_valve_min_over_channels);
    tcase_add_test(tc, test_valve_all_idle);
    tcase_add_test(tc, test_bounded_watermark);
    suite_add_tcase(s, tc);
    tc = tcase_create("framing");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_framing);
    tcase_add_test(tc, test_key_decode);
    suite_add_tcase(s, tc);
    tc = tcase_create("operators");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_timestamps_operator);
    tcase_add_test(tc, test_keyed_process_timers);
    suite_add_tcase(s, tc);
    tc = tcase_create("graph");
    tcase_add_test(tc, test_graph_time);
    tcase_add_test(tc, test_graph_time_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    log_init("check_time", NULL, LOG_WARN);
    SRunner *sr = srunner_create(time_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

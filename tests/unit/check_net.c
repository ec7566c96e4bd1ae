/* Unit tests for the network stack (taskmanager/network): wakers, the segment pool and
 * backpressure, record writers and input gates over local channels and over loopback TCP between
 * two tm_net instances in one process, multiplexing and credit-based flow control, buffer
 * timeouts, partition request backoff, hostile peers, shutdown and cancellation. Real threads and
 * sockets; every wait has a deadline, so a broken stack fails a test instead of hanging it. The
 * throughput tests print figures and assert nothing about time. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config/config.h"
#include "network/tm_net.h"
#include "network/tm_net_int.h"
#include "network/tm_net_wire.h"
#include "util/log.h"
#include "util/timeutil.h"

#define DEADLINE_MS 30000   /* longest anything that should happen may take (sanitizers, 2 cores) */

/* ---- helpers ------------------------------------------------------------------------------------ */

/* A configuration from "key=value" overrides (NULL-terminated). */
static flint_config *mkcfg(const char *const *kv) {
    flint_config *cfg = config_new();
    for (; kv && *kv; kv++) {
        flint_err err = {0};
        ck_assert_msg(config_set_override(cfg, *kv, &err) == 0, "%s: %s", *kv, err.msg);
    }
    return cfg;
}

/* A tm_net with resource id rid; listening on 127.0.0.1 when port is not NULL. */
static tm_net *mknet(const char *const *kv, const char *rid, int *port) {
    flint_config *cfg = mkcfg(kv);
    flint_err err = {0};
    tm_net *n = tm_net_new(cfg, rid, &err);
    config_free(cfg);
    ck_assert_msg(n != NULL, "tm_net_new: %s", err.msg);
    if (port) {
        *port = tm_net_listen(n, "127.0.0.1", 0, &err);
        ck_assert_msg(*port > 0, "tm_net_listen: %s", err.msg);
    }
    return n;
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Record i of a test stream: its length depends on the mode, its bytes on i. */
enum { MODE_SMALL, MODE_MIXED, MODE_1000, MODE_16 };

static uint32_t rec_len(uint64_t i, int mode) {
    switch (mode) {
    case MODE_MIXED:
        if (i % 250000 == 1000) return 1u << 20;          /* 1 MiB */
        if (i % 20000 == 10000) return 100u * 1024 + 3;    /* ~100 KiB */
        return 8 + (uint32_t)(i % 17);
    case MODE_1000: return 1000;
    case MODE_16: return 16;
    default: return 8 + (uint32_t)(i % 17);
    }
}

static void rec_fill(uint8_t *buf, uint64_t i, uint32_t len, int mode) {
    memcpy(buf, &i, 8);
    if (mode == MODE_16) return;
    for (uint32_t k = 8; k < len; k++) buf[k] = (uint8_t)(i * 7 + k);
}

static bool rec_ok(const uint8_t *d, uint32_t len, uint64_t i, int mode) {
    if (len != rec_len(i, mode)) return false;
    uint64_t v;
    memcpy(&v, d, 8);
    if (v != i) return false;
    if (mode == MODE_16) return true;
    for (uint32_t k = 8; k < len; k++)
        if (d[k] != (uint8_t)(i * 7 + k)) return false;
    return true;
}

/* A producer thread: n records (the same sequence to every subpartition), then end of
 * partition if eop. n == 0: until stop. */
typedef struct producer {
    tm_writer *w;
    tm_waker *waker;
    int nsub;
    uint64_t n;
    int mode;
    bool eop;
    atomic_bool stop;
    _Atomic uint64_t emitted;
    int rc;
    pthread_t th;
    uint8_t *buf;
} producer;

static void *producer_main(void *arg) {
    producer *p = arg;
    for (uint64_t i = 0; (p->n == 0 || i < p->n) && !atomic_load(&p->stop); i++) {
        uint32_t len = rec_len(i, p->mode);
        rec_fill(p->buf, i, len, p->mode);
        for (int s = 0; s < p->nsub; s++) {
            int rc = tm_writer_emit(p->w, s, TM_ELEM_RECORD, p->buf, len);
            if (rc != FLINT_OK) {
                p->rc = rc;
                return NULL;
            }
        }
        atomic_store(&p->emitted, i + 1);
    }
    if (p->eop) p->rc = tm_writer_event(p->w, TM_EVENT_END_OF_PARTITION, NULL, 0);
    return NULL;
}

static void producer_start(producer *p, tm_partition *part, int nsub, uint64_t n, int mode,
                           bool eop, int64_t timeout) {
    memset(p, 0, sizeof *p);
    p->waker = tm_waker_new();
    p->w = tm_writer_new(part, timeout, p->waker);
    p->nsub = nsub;
    p->n = n;
    p->mode = mode;
    p->eop = eop;
    p->buf = malloc((1u << 20) + 64);
    ck_assert_int_eq(pthread_create(&p->th, NULL, producer_main, p), 0);
}

/* Stop (cancelling a blocked writer) and join; returns the thread's status. */
static int producer_stop(producer *p, bool cancel) {
    atomic_store(&p->stop, true);
    if (cancel) tm_waker_cancel(p->waker);
    pthread_join(p->th, NULL);
    tm_writer_free(p->w);
    tm_waker_free(p->waker);
    free(p->buf);
    return p->rc;
}

static int64_t bp_ns(producer *p) {
    tm_writer_metrics m;
    tm_writer_metrics_get(p->w, &m);
    return m.back_pressured_ns;
}

/* What a consumer saw. */
typedef struct sink {
    int mode;
    uint64_t next[4][64];   /* next record index per gate and channel */
    uint64_t records;
    int gate_ends[4];
    int events, watermarks;
    uint8_t event[64];
    uint32_t event_len;
} sink;

/* (Check's ck_assert records a checkpoint on every success, which costs a write(2): hot loops
 * test with `if` and call ck_abort_msg only on failure.) */
#define CHECK(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

/* Read from in until `want` more records arrived (want 0: until the input is closed or fails).
 * Returns FLINT_OK (want reached), FLINT_CLOSED, or the failure status. Fails the test when the
 * records are wrong or the deadline passes. */
static int drain(tm_input *in, tm_waker *w, sink *s, uint64_t want, int64_t timeout_ms) {
    int64_t deadline = time_mono_ms() + timeout_ms;
    uint64_t target = s->records + want;
    for (;;) {
        if (want && s->records >= target) return FLINT_OK;
        tm_element el;
        int rc = tm_input_next(in, &el);
        if (rc == FLINT_UNAVAILABLE) {
            int64_t now = time_mono_ms();
            CHECK(now < deadline, "no data within %lld ms (%llu records so far)",
                  (long long)timeout_ms, (unsigned long long)s->records);
            tm_waker_wait(w, now + 100 < deadline ? now + 100 : deadline);
            continue;
        }
        if (rc != FLINT_OK) return rc;
        switch (el.kind) {
        case TM_ELEM_RECORD: {
            CHECK(el.gate < 4 && el.channel < 64, "gate %d channel %d", el.gate, el.channel);
            uint64_t *nx = &s->next[el.gate][el.channel];
            CHECK(rec_ok(el.data, el.len, *nx, s->mode), "gate %d channel %d: record %llu wrong (len %u)",
                  el.gate, el.channel, (unsigned long long)*nx, el.len);
            (*nx)++;
            s->records++;
            break;
        }
        case TM_ELEM_WATERMARK:
            CHECK(el.len == 8, "watermark of %u bytes", el.len);
            s->watermarks++;
            break;
        case TM_ELEM_EVENT:
            CHECK(el.len <= sizeof s->event, "event of %u bytes", el.len);
            memcpy(s->event, el.data, el.len);
            s->event_len = el.len;
            s->events++;
            break;
        case TM_ELEM_GATE_END:
            CHECK(el.channel == -1, "gate end with channel %d", el.channel);
            s->gate_ends[el.gate]++;
            break;
        case TM_ELEM_STATUS:
            s->watermarks++;
            break;
        case TM_ELEM_CHANNEL_END:
            CHECK(el.gate < 4 && el.channel >= 0, "channel end on gate %d channel %d", el.gate, el.channel);
            break;
        }
    }
}

/* An input on net of one gate with n channels reading subpartitions of partition ids. */
static tm_input *mkinput(tm_net *net, tm_waker *w, int n, const char *const *ids, const int *subs,
                         const char *rid, int port) {
    tm_input *in = tm_input_new(net, w);
    tm_channel_desc d[16];
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        d[i] = (tm_channel_desc){.partition_id = ids[i], .subpartition = subs ? subs[i] : 0,
                                 .producer_resource_id = rid, .host = "127.0.0.1",
                                 .data_port = port};
    tm_input_add_gate(in, n, d);
    flint_err err = {0};
    ck_assert_msg(tm_input_start(in, &err) == FLINT_OK, "%s", err.msg);
    return in;
}

static tm_partition *mkpart(tm_net *net, const char *id, int n) {
    flint_err err = {0};
    tm_partition *p = tm_partition_create(net, id, n, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    return p;
}

/* Wait until every segment of net is back in the pool (buffers in flight come back async). */
static void expect_pool_full(tm_net *net) {
    int64_t deadline = time_mono_ms() + 5000;
    while (tm_net_segments_available(net) != tm_net_segments_total(net) &&
           time_mono_ms() < deadline)
        sleep_ms(5);
    ck_assert_int_eq(tm_net_segments_available(net), tm_net_segments_total(net));
}

/* ---- wakers ------------------------------------------------------------------------------------- */

static void *signal_later(void *arg) {
    sleep_ms(50);
    tm_waker_signal(arg);
    return NULL;
}

START_TEST(test_waker) {
    tm_waker *w = tm_waker_new();
    /* a pending signal makes the next wait return at once, and only that one */
    tm_waker_signal(w);
    tm_waker_signal(w);
    int64_t t0 = time_mono_ms();
    tm_waker_wait(w, INT64_MAX);
    ck_assert_int_lt(time_mono_ms() - t0, 1000);
    t0 = time_mono_ms();
    tm_waker_wait(w, t0 + 50);
    int64_t el = time_mono_ms() - t0;
    ck_assert_int_ge(el, 49);
    ck_assert_int_lt(el, 5000);
    /* a signal from another thread */
    pthread_t th;
    t0 = time_mono_ms();
    pthread_create(&th, NULL, signal_later, w);
    tm_waker_wait(w, t0 + DEADLINE_MS);
    el = time_mono_ms() - t0;
    pthread_join(th, NULL);
    ck_assert_int_ge(el, 40);
    ck_assert_int_lt(el, DEADLINE_MS);
    /* cancel */
    ck_assert(!tm_waker_canceled(w));
    tm_waker_cancel(w);
    ck_assert(tm_waker_canceled(w));
    t0 = time_mono_ms();
    tm_waker_wait(w, INT64_MAX);
    ck_assert_int_lt(time_mono_ms() - t0, 1000);
    tm_waker_free(w);
}
END_TEST

/* ---- the pool and backpressure ----------------------------------------------------------------- */

/* Wait until p's writer stops making progress (blocked). */
static void wait_blocked(producer *p) {
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    uint64_t last = UINT64_MAX;
    for (;;) {
        ck_assert_msg(time_mono_ms() < deadline, "the writer never blocked");
        uint64_t e = atomic_load(&p->emitted);
        if (e == last && bp_ns(p) > 0) return;
        last = e;
        sleep_ms(100);
    }
}

START_TEST(test_pool_exhaustion) {
    /* 16 segments of 4 KiB; a queue cap (100 + 8) above the pool, so the pool runs dry first */
    const char *kv[] = {"taskmanager.memory.segment-size=4kb", "taskmanager.memory.network.size=64kb",
                        "taskmanager.network.memory.buffers-per-channel=100", NULL};
    tm_net *net = mknet(kv, "tm1", NULL);
    ck_assert_int_eq(tm_net_segments_total(net), 16);
    tm_partition *part = mkpart(net, "job.e1.0.0", 1);
    producer p;
    producer_start(&p, part, 1, 200, MODE_1000, true, -1);   /* ~50 segments of data */
    wait_blocked(&p);
    ck_assert_int_eq(tm_net_segments_available(net), 0);
    ck_assert_uint_lt(atomic_load(&p.emitted), 200);
    int64_t bp1 = bp_ns(&p);
    sleep_ms(100);
    ck_assert_int_gt(bp_ns(&p), bp1);   /* grows while blocked */

    /* a local consumer recycles buffers: the writer goes on and everything arrives */
    tm_waker *cw = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    tm_input *in = mkinput(net, cw, 1, ids, NULL, "tm1", 0);
    sink s = {.mode = MODE_1000};
    ck_assert_int_eq(drain(in, cw, &s, 0, DEADLINE_MS), FLINT_CLOSED);
    ck_assert_uint_eq(s.records, 200);
    ck_assert_int_eq(s.gate_ends[0], 1);
    ck_assert_int_eq(producer_stop(&p, false), FLINT_OK);
    tm_input_metrics im;
    tm_input_metrics_get(in, &im);
    ck_assert_int_eq(im.records_in, 200);
    ck_assert_int_eq(im.bytes_in, 200 * 1004);
    tm_input_free(in);
    tm_partition_release(part, false);
    tm_waker_free(cw);
    expect_pool_full(net);
    tm_net_free(net);
}
END_TEST

START_TEST(test_cancel_releases_writer) {
    const char *kv[] = {"taskmanager.memory.segment-size=4kb", NULL};
    tm_net *net = mknet(kv, "tm1", NULL);
    tm_partition *part = mkpart(net, "job.e1.0.0", 2);
    producer p;
    producer_start(&p, part, 2, 0, MODE_1000, false, -1);   /* nobody reads: blocks at the cap */
    wait_blocked(&p);
    /* bounded: two subpartitions at their cap of 10, plus the current buffers */
    ck_assert_int_le(tm_net_segments_total(net) - tm_net_segments_available(net), 2 * 11);
    int64_t t0 = time_mono_ms();
    ck_assert_int_eq(producer_stop(&p, true), FLINT_CANCELED);
    ck_assert_int_lt(time_mono_ms() - t0, 5000);
    tm_partition_release(part, true);
    expect_pool_full(net);
    tm_net_free(net);
}
END_TEST

/* ---- local and remote channels ------------------------------------------------------------------- */

/* n records of mode from a producer on prod to a consumer on cons (the same net: local). */
static double transfer(tm_net *prod, tm_net *cons, const char *prid, int port, uint64_t n,
                       int mode, bool check_conns) {
    tm_partition *part = mkpart(prod, "job.e1.0.0", 1);
    tm_waker *cw = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    int64_t t0 = time_mono_ns();
    tm_input *in = mkinput(cons, cw, 1, ids, NULL, prid, port);
    producer p;
    producer_start(&p, part, 1, n, mode, true, 100);
    sink s = {.mode = mode};
    ck_assert_int_eq(drain(in, cw, &s, 0, 120000), FLINT_CLOSED);
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    ck_assert_uint_eq(s.records, n);
    ck_assert_int_eq(s.gate_ends[0], 1);
    ck_assert_int_eq(producer_stop(&p, false), FLINT_OK);
    if (check_conns) {
        int c, sv;
        tm_net_connection_count(cons, &c, &sv);
        ck_assert_int_le(c, 1);
    }
    tm_element el;
    ck_assert_int_eq(tm_input_next(in, &el), FLINT_CLOSED);   /* stays closed */
    tm_input_free(in);
    tm_partition_release(part, false);
    tm_waker_free(cw);
    expect_pool_full(prod);
    expect_pool_full(cons);
    return secs;
}

START_TEST(test_local_records) {
    tm_net *net = mknet(NULL, "tm1", NULL);
    transfer(net, net, "tm1", 0, 1000000, MODE_MIXED, false);
    tm_net_free(net);
}
END_TEST

START_TEST(test_remote_records) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    transfer(a, b, "tmA", pa, 1000000, MODE_MIXED, true);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

START_TEST(test_throughput) {
    const uint64_t n = 5000000;
    tm_net *net = mknet(NULL, "tm1", NULL);
    double local = transfer(net, net, "tm1", 0, n, MODE_16, false);
    tm_net_free(net);
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    double remote = transfer(a, b, "tmA", pa, n, MODE_16, true);
    tm_net_free(b);
    tm_net_free(a);
    printf("throughput, %llu records of 16 bytes (producer and consumer threads, check included):\n"
           "  local channel:  %.2f M records/s (%.0f MB/s)\n"
           "  remote channel: %.2f M records/s (%.0f MB/s) over loopback TCP\n",
           (unsigned long long)n, n / local / 1e6, n * 20.0 / local / 1e6, n / remote / 1e6,
           n * 20.0 / remote / 1e6);
    fflush(stdout);
}
END_TEST

/* Several channels of two gates from one producer taskmanager share one connection. */
START_TEST(test_multiplexed) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    tm_partition *p1 = mkpart(a, "job.e1.0.0", 3);
    tm_partition *p2 = mkpart(a, "job.e2.0.0", 1);
    tm_waker *cw = tm_waker_new();
    tm_input *in = tm_input_new(b, cw);
    tm_channel_desc g0[3], g1[1];
    for (int i = 0; i < 3; i++)
        g0[i] = (tm_channel_desc){"job.e1.0.0", i, "tmA", "127.0.0.1", pa};
    g1[0] = (tm_channel_desc){"job.e2.0.0", 0, "tmA", "127.0.0.1", pa};
    tm_input_add_gate(in, 3, g0);
    tm_input_add_gate(in, 1, g1);
    ck_assert_int_eq(tm_input_gate_count(in), 2);
    flint_err err = {0};
    ck_assert_int_eq(tm_input_start(in, &err), FLINT_OK);
    producer q1, q2;
    producer_start(&q1, p1, 3, 100000, MODE_SMALL, true, 10);
    producer_start(&q2, p2, 1, 100000, MODE_SMALL, true, 10);
    sink s = {.mode = MODE_SMALL};
    ck_assert_int_eq(drain(in, cw, &s, 0, DEADLINE_MS), FLINT_CLOSED);
    ck_assert_uint_eq(s.records, 400000);
    for (int i = 0; i < 3; i++) ck_assert_uint_eq(s.next[0][i], 100000);
    ck_assert_uint_eq(s.next[1][0], 100000);
    ck_assert_int_eq(s.gate_ends[0], 1);
    ck_assert_int_eq(s.gate_ends[1], 1);
    int c, sv;
    tm_net_connection_count(b, &c, &sv);
    ck_assert_int_le(c, 1);   /* one (or none once every channel ended) */
    tm_net_connection_count(a, &c, &sv);
    ck_assert_int_le(sv, 1);
    ck_assert_int_eq(producer_stop(&q1, false), FLINT_OK);
    ck_assert_int_eq(producer_stop(&q2, false), FLINT_OK);
    tm_input_free(in);
    tm_partition_release(p1, false);
    tm_partition_release(p2, false);
    tm_waker_free(cw);
    expect_pool_full(a);
    expect_pool_full(b);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

/* A consumer that stops reading one channel stalls neither the other channel on the same
 * connection nor the pool; its producer becomes backpressured. */
START_TEST(test_credit_isolation) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    tm_partition *p1 = mkpart(a, "job.e1.0.0", 1);
    tm_partition *p2 = mkpart(a, "job.e2.0.0", 1);
    tm_waker *w1 = tm_waker_new(), *w2 = tm_waker_new();
    const char *id1[] = {"job.e1.0.0"}, *id2[] = {"job.e2.0.0"};
    tm_input *in1 = mkinput(b, w1, 1, id1, NULL, "tmA", pa);
    tm_input *in2 = mkinput(b, w2, 1, id2, NULL, "tmA", pa);
    producer q1, q2;
    producer_start(&q1, p1, 1, 0, MODE_SMALL, false, 5);
    producer_start(&q2, p2, 1, 0, MODE_SMALL, false, 5);
    sink s1 = {.mode = MODE_SMALL}, s2 = {.mode = MODE_SMALL};
    ck_assert_int_eq(drain(in2, w2, &s2, 1000, DEADLINE_MS), FLINT_OK);
    /* in2 is not read from now on; in1 keeps flowing */
    ck_assert_int_eq(drain(in1, w1, &s1, 2000000, DEADLINE_MS), FLINT_OK);
    wait_blocked(&q2);
    int64_t bp = bp_ns(&q2);
    ck_assert_int_eq(drain(in1, w1, &s1, 500000, DEADLINE_MS), FLINT_OK);
    ck_assert_int_gt(bp_ns(&q2), bp);
    int used_a = tm_net_segments_total(a) - tm_net_segments_available(a);
    int used_b = tm_net_segments_total(b) - tm_net_segments_available(b);
    printf("credit isolation: stalled producer backpressured %.0f ms; segments in use: "
           "producer %d, consumer %d\n", bp_ns(&q2) / 1e6, used_a, used_b);
    fflush(stdout);
    /* producer: 2 subpartitions x (cap 10 + current) + buffers on their way to the socket
     * (at most the credit: 2 channels x (2 exclusive + 8 floating)) */
    ck_assert_int_le(used_a, 2 * 11 + 2 * 10);
    /* consumer: 2 channels x (2 exclusive + 8 floating) */
    ck_assert_int_le(used_b, 2 * 10);
    /* the stalled channel resumes where it stopped */
    ck_assert_int_eq(drain(in2, w2, &s2, 100000, DEADLINE_MS), FLINT_OK);
    producer_stop(&q1, true);
    producer_stop(&q2, true);
    tm_input_free(in1);
    tm_input_free(in2);
    tm_partition_release(p1, true);
    tm_partition_release(p2, true);
    tm_waker_free(w1);
    tm_waker_free(w2);
    expect_pool_full(a);
    expect_pool_full(b);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

/* ---- buffer timeout -------------------------------------------------------------------------------- */

/* Whether one record arrives on in within ms. */
static bool arrives(tm_input *in, tm_waker *w, int ms) {
    int64_t deadline = time_mono_ms() + ms;
    for (;;) {
        tm_element el;
        int rc = tm_input_next(in, &el);
        if (rc == FLINT_OK) {
            ck_assert_int_eq(el.kind, TM_ELEM_RECORD);
            ck_assert_uint_eq(el.len, 5);
            ck_assert(memcmp(el.data, "hello", 5) == 0);
            return true;
        }
        ck_assert_int_eq(rc, FLINT_UNAVAILABLE);
        int64_t now = time_mono_ms();
        if (now >= deadline) return false;
        tm_waker_wait(w, deadline);
    }
}

START_TEST(test_buffer_timeout) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    tm_partition *p0 = mkpart(a, "job.e0.0.0", 1);
    tm_partition *pn = mkpart(a, "job.en.0.0", 1);
    tm_partition *pt = mkpart(a, "job.et.0.0", 1);
    tm_waker *pw = tm_waker_new();
    tm_writer *w0 = tm_writer_new(p0, 0, pw);
    tm_writer *wn = tm_writer_new(pn, -1, pw);
    tm_writer *wt = tm_writer_new(pt, 50, pw);
    tm_waker *c0 = tm_waker_new(), *cn = tm_waker_new();
    const char *id0[] = {"job.e0.0.0"}, *idn[] = {"job.en.0.0"};
    tm_input *in0 = mkinput(b, c0, 1, id0, NULL, "tmA", pa);
    tm_input *inn = mkinput(b, cn, 1, idn, NULL, "tmA", pa);

    /* 0: sent at once */
    ck_assert_int_eq(tm_writer_flush_deadline(w0), INT64_MAX);
    ck_assert_int_eq(tm_writer_emit(w0, 0, TM_ELEM_RECORD, "hello", 5), FLINT_OK);
    ck_assert_int_eq(tm_writer_flush_deadline(w0), INT64_MAX);
    ck_assert(arrives(in0, c0, DEADLINE_MS));
    /* -1: held until flushed */
    ck_assert_int_eq(tm_writer_emit(wn, 0, TM_ELEM_RECORD, "hello", 5), FLINT_OK);
    ck_assert_int_eq(tm_writer_flush_deadline(wn), INT64_MAX);
    ck_assert(!arrives(inn, cn, 300));
    ck_assert_int_eq(tm_writer_flush(wn), FLINT_OK);
    ck_assert(arrives(inn, cn, DEADLINE_MS));
    /* 50 ms: the deadline of the oldest partial buffer */
    ck_assert_int_eq(tm_writer_flush_deadline(wt), INT64_MAX);
    int64_t t0 = time_mono_ms();
    ck_assert_int_eq(tm_writer_emit(wt, 0, TM_ELEM_RECORD, "hello", 5), FLINT_OK);
    int64_t d = tm_writer_flush_deadline(wt);
    ck_assert_int_ge(d, t0 + 50);
    ck_assert_int_le(d, time_mono_ms() + 50);
    ck_assert_int_eq(tm_writer_emit(wt, 0, TM_ELEM_RECORD, "hello", 5), FLINT_OK);
    ck_assert_int_eq(tm_writer_flush_deadline(wt), d);
    tm_writer_flush(wt);
    ck_assert_int_eq(tm_writer_flush_deadline(wt), INT64_MAX);

    tm_input_free(in0);
    tm_input_free(inn);
    tm_writer_free(w0);
    tm_writer_free(wn);
    tm_writer_free(wt);
    tm_partition_release(p0, true);
    tm_partition_release(pn, true);
    tm_partition_release(pt, true);
    tm_waker_free(pw);
    tm_waker_free(c0);
    tm_waker_free(cn);
    expect_pool_full(a);
    expect_pool_full(b);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

/* ---- gates, events, watermarks, broadcast ------------------------------------------------------- */

static void gates_and_events(bool remote) {
    int pa = 0, pb = 0;
    tm_net *a = mknet(NULL, "tmA", remote ? &pa : NULL);
    tm_net *b = remote ? mknet(NULL, "tmB", &pb) : a;
    tm_partition *p1 = mkpart(a, "j.e1.0.0", 1), *p2 = mkpart(a, "j.e1.1.0", 1);
    tm_partition *p3 = mkpart(a, "j.e2.0.0", 1), *p4 = mkpart(a, "j.e3.0.0", 2);
    tm_waker *pw = tm_waker_new(), *cw = tm_waker_new();
    tm_input *in = tm_input_new(b, cw);
    tm_channel_desc g0[2] = {{"j.e1.0.0", 0, "tmA", "127.0.0.1", pa},
                             {"j.e1.1.0", 0, "tmA", "127.0.0.1", pa}};
    tm_channel_desc g1[1] = {{"j.e2.0.0", 0, "tmA", "127.0.0.1", pa}};
    tm_channel_desc g2[2] = {{"j.e3.0.0", 0, "tmA", "127.0.0.1", pa},
                             {"j.e3.0.0", 1, "tmA", "127.0.0.1", pa}};
    tm_input_add_gate(in, 2, g0);
    tm_input_add_gate(in, 1, g1);
    tm_input_add_gate(in, 2, g2);
    tm_input_add_gate(in, 0, NULL);
    flint_err err = {0};
    ck_assert_int_eq(tm_input_start(in, &err), FLINT_OK);

    tm_writer *w1 = tm_writer_new(p1, 100, pw), *w2 = tm_writer_new(p2, -1, pw);
    tm_writer *w3 = tm_writer_new(p3, 0, pw), *w4 = tm_writer_new(p4, 100, pw);
    uint8_t rec[32];
    for (uint64_t i = 0; i < 10; i++) {
        rec_fill(rec, i, rec_len(i, MODE_SMALL), MODE_SMALL);
        ck_assert_int_eq(tm_writer_emit(w1, 0, TM_ELEM_RECORD, rec, rec_len(i, MODE_SMALL)), 0);
        if (i < 5)
            ck_assert_int_eq(tm_writer_emit(w2, 0, TM_ELEM_RECORD, rec, rec_len(i, MODE_SMALL)), 0);
        if (i < 3)
            ck_assert_int_eq(tm_writer_broadcast(w4, TM_ELEM_RECORD, rec, rec_len(i, MODE_SMALL)), 0);
    }
    int64_t wm = 12345;
    ck_assert_int_eq(tm_writer_emit(w1, 0, TM_ELEM_WATERMARK, &wm, 8), FLINT_OK);
    ck_assert_int_eq(tm_writer_event(w1, 7, "hi", 2), FLINT_OK);
    ck_assert_int_eq(tm_writer_event(w1, TM_EVENT_END_OF_PARTITION, NULL, 0), FLINT_OK);
    ck_assert_int_eq(tm_writer_emit(w1, 0, TM_ELEM_RECORD, rec, 8), FLINT_STATE);   /* ended */
    ck_assert_int_eq(tm_writer_event(w2, TM_EVENT_END_OF_PARTITION, NULL, 0), FLINT_OK);
    ck_assert_int_eq(tm_writer_event(w3, TM_EVENT_END_OF_PARTITION, NULL, 0), FLINT_OK);
    ck_assert_int_eq(tm_writer_event(w4, TM_EVENT_END_OF_PARTITION, NULL, 0), FLINT_OK);
    tm_writer_metrics wmx;
    tm_writer_metrics_get(w4, &wmx);
    ck_assert_int_eq(wmx.records_out, 3);

    sink s = {.mode = MODE_SMALL};
    ck_assert_int_eq(drain(in, cw, &s, 0, DEADLINE_MS), FLINT_CLOSED);
    ck_assert_uint_eq(s.next[0][0], 10);
    ck_assert_uint_eq(s.next[0][1], 5);
    ck_assert_uint_eq(s.next[2][0], 3);
    ck_assert_uint_eq(s.next[2][1], 3);
    ck_assert_uint_eq(s.records, 21);
    ck_assert_int_eq(s.watermarks, 1);
    ck_assert_int_eq(s.events, 1);
    ck_assert_uint_eq(s.event_len, 6);
    ck_assert_int_eq(s.event[0], 7);
    ck_assert(memcmp(s.event + 4, "hi", 2) == 0);
    for (int g = 0; g < 4; g++) ck_assert_int_eq(s.gate_ends[g], 1);
    tm_input_metrics im;
    tm_input_metrics_get(in, &im);
    ck_assert_int_eq(im.records_in, 21);

    tm_input_free(in);
    tm_writer_free(w1);
    tm_writer_free(w2);
    tm_writer_free(w3);
    tm_writer_free(w4);
    tm_partition_release(p1, false);
    tm_partition_release(p2, false);
    tm_partition_release(p3, false);
    tm_partition_release(p4, false);
    tm_waker_free(pw);
    tm_waker_free(cw);
    expect_pool_full(a);
    if (remote) {
        expect_pool_full(b);
        tm_net_free(b);
    }
    tm_net_free(a);
}

START_TEST(test_gates_local) { gates_and_events(false); }
END_TEST

START_TEST(test_gates_remote) { gates_and_events(true); }
END_TEST

/* ---- partition requests ------------------------------------------------------------------------- */

START_TEST(test_late_partition) {
    const char *kv[] = {"taskmanager.network.request-backoff.initial=20 ms",
                        "taskmanager.network.request-backoff.max=10 s", NULL};
    int pa, pb;
    tm_net *a = mknet(kv, "tmA", &pa);
    tm_net *b = mknet(kv, "tmB", &pb);
    tm_waker *cr = tm_waker_new(), *cl = tm_waker_new();
    const char *idr[] = {"job.late.0.0"}, *idl[] = {"job.latelocal.0.0"};
    tm_input *inr = mkinput(b, cr, 1, idr, NULL, "tmA", pa);   /* remote */
    tm_input *inl = mkinput(a, cl, 1, idl, NULL, "tmA", pa);   /* local */
    sleep_ms(300);
    tm_element el;
    ck_assert_int_eq(tm_input_next(inr, &el), FLINT_UNAVAILABLE);
    ck_assert_int_eq(tm_input_next(inl, &el), FLINT_UNAVAILABLE);
    tm_partition *pr = mkpart(a, "job.late.0.0", 1), *pl = mkpart(a, "job.latelocal.0.0", 1);
    producer qr, ql;
    producer_start(&qr, pr, 1, 1000, MODE_SMALL, true, 100);
    producer_start(&ql, pl, 1, 1000, MODE_SMALL, true, 100);
    sink sr = {.mode = MODE_SMALL}, sl = {.mode = MODE_SMALL};
    ck_assert_int_eq(drain(inr, cr, &sr, 0, DEADLINE_MS), FLINT_CLOSED);
    ck_assert_int_eq(drain(inl, cl, &sl, 0, DEADLINE_MS), FLINT_CLOSED);
    ck_assert_uint_eq(sr.records, 1000);
    ck_assert_uint_eq(sl.records, 1000);
    ck_assert_int_eq(producer_stop(&qr, false), FLINT_OK);
    ck_assert_int_eq(producer_stop(&ql, false), FLINT_OK);
    tm_input_free(inr);
    tm_input_free(inl);
    tm_partition_release(pr, false);
    tm_partition_release(pl, false);
    tm_waker_free(cr);
    tm_waker_free(cl);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

/* Read until a failure (continuing s, or a fresh stream when NULL); returns its status and copies
 * the message. */
static int expect_failure(tm_input *in, tm_waker *w, sink *s, char *msg, size_t len) {
    sink fresh = {.mode = MODE_SMALL};
    int rc = drain(in, w, s ? s : &fresh, 0, DEADLINE_MS);
    snprintf(msg, len, "%s", tm_input_error(in));
    return rc;
}

START_TEST(test_missing_partition) {
    const char *kv[] = {"taskmanager.network.request-backoff.initial=20 ms",
                        "taskmanager.network.request-backoff.max=400 ms", NULL};
    int pa, pb;
    tm_net *a = mknet(kv, "tmA", &pa);
    tm_net *b = mknet(kv, "tmB", &pb);
    tm_waker *cr = tm_waker_new(), *cl = tm_waker_new();
    const char *idr[] = {"job.never.0.0"}, *idl[] = {"job.neverlocal.0.0"};
    int64_t t0 = time_mono_ms();
    tm_input *inr = mkinput(b, cr, 1, idr, NULL, "tmA", pa);
    tm_input *inl = mkinput(a, cl, 1, idl, NULL, "tmA", pa);
    char msg[600], want[64];
    int rc = expect_failure(inr, cr, NULL, msg, sizeof msg);
    int64_t el = time_mono_ms() - t0;
    ck_assert_int_eq(rc, FLINT_NOT_FOUND);
    ck_assert_int_ge(el, 390);
    ck_assert_ptr_nonnull(strstr(msg, "job.never.0.0"));
    snprintf(want, sizeof want, "127.0.0.1:%d", pa);
    ck_assert_msg(strstr(msg, want) && strstr(msg, "request-backoff.max"), "%s", msg);
    printf("missing remote partition: %s\n", msg);
    rc = expect_failure(inl, cl, NULL, msg, sizeof msg);
    ck_assert_int_eq(rc, FLINT_NOT_FOUND);
    ck_assert_msg(strstr(msg, "job.neverlocal.0.0") && strstr(msg, "request-backoff.max"), "%s", msg);
    tm_element e;
    ck_assert_int_eq(tm_input_next(inr, &e), FLINT_NOT_FOUND);   /* sticky */
    tm_input_free(inr);
    tm_input_free(inl);
    tm_waker_free(cr);
    tm_waker_free(cl);
    expect_pool_full(b);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

START_TEST(test_subpartition_errors) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    tm_partition *p = mkpart(a, "job.e1.0.0", 2);
    flint_err err = {0};
    ck_assert_ptr_null(tm_partition_create(a, "job.e1.0.0", 1, &err));   /* duplicate */
    ck_assert_int_eq(err.code, FLINT_EXISTS);
    tm_waker *w = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    int subs[] = {5};
    tm_input *in = mkinput(b, w, 1, ids, subs, "tmA", pa);
    char msg[600];
    ck_assert_int_ne(expect_failure(in, w, NULL, msg, sizeof msg), FLINT_OK);
    ck_assert_msg(strstr(msg, "no subpartition 5"), "%s", msg);
    tm_input_free(in);
    tm_partition_release(p, true);
    tm_waker_free(w);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

/* ---- hostile peers ------------------------------------------------------------------------------- */

static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Whether the peer closes fd (EOF) within the receive timeout, ignoring what it sends. */
static bool closed_by_peer(int fd) {
    char buf[256];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
    }
}

START_TEST(test_garbage_to_data_port) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    /* plain garbage */
    int fd = raw_connect(pa);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(send(fd, junk, sizeof junk - 1, 0), (ssize_t)sizeof junk - 1);
    ck_assert(closed_by_peer(fd));
    close(fd);
    /* well-formed header, lying partition id length */
    fd = raw_connect(pa);
    uint8_t m[TM_WIRE_HEADER + 12];
    tm_wire_hdr h = {.type = TM_MSG_PARTITION_REQUEST, .channel = 1, .size = 12};
    tm_wire_encode(m, &h);
    memset(m + TM_WIRE_HEADER, 0, 12);
    tm_wire_put16(m + TM_WIRE_HEADER + 8, 900);
    ck_assert_int_eq(send(fd, m, sizeof m, 0), (ssize_t)sizeof m);
    ck_assert(closed_by_peer(fd));
    close(fd);
    /* a huge control message */
    fd = raw_connect(pa);
    h = (tm_wire_hdr){.type = TM_MSG_ADD_CREDIT, .channel = 1, .size = 1u << 30};
    tm_wire_encode(m, &h);
    ck_assert_int_eq(send(fd, m, TM_WIRE_HEADER, 0), TM_WIRE_HEADER);
    ck_assert(closed_by_peer(fd));
    close(fd);
    /* a good connection next to a bad one: the bad one is closed, the good one keeps working */
    int idle = raw_connect(pa);
    transfer(a, b, "tmA", pa, 10000, MODE_SMALL, true);
    fd = raw_connect(pa);
    ck_assert_int_eq(send(fd, junk, sizeof junk - 1, 0), (ssize_t)sizeof junk - 1);
    ck_assert(closed_by_peer(fd));
    close(fd);
    close(idle);
    transfer(a, b, "tmA", pa, 10000, MODE_SMALL, true);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

/* A fake producer: accepts one connection, reads a little, then writes `reply`: in one piece, or
 * cut at the ncuts offsets cuts[] with a pause after each piece (so that the consumer reads the
 * messages in parts). */
typedef struct fake_producer {
    int lfd, port;
    const uint8_t *reply;
    size_t reply_len;
    const size_t *cuts;
    int ncuts;
    pthread_t th;
} fake_producer;

static void *fake_main(void *arg) {
    fake_producer *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    char buf[256];
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    (void)n;
    size_t from = 0;
    for (int i = 0; i <= f->ncuts; i++) {
        size_t to = i < f->ncuts ? f->cuts[i] : f->reply_len;
        ssize_t w = send(fd, f->reply + from, to - from, MSG_NOSIGNAL);
        (void)w;
        from = to;
        if (i < f->ncuts) sleep_ms(30);
    }
    sleep_ms(500);   /* keep it open: the consumer must close on its own */
    close(fd);
    return NULL;
}

static void fake_start(fake_producer *f, const uint8_t *reply, size_t len) {
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(f->lfd, 4), 0);
    socklen_t sl = sizeof sa;
    getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    f->reply = reply;
    f->reply_len = len;
    f->cuts = NULL;
    f->ncuts = 0;
    pthread_create(&f->th, NULL, fake_main, f);
}

static void fake_stop(fake_producer *f) {
    pthread_join(f->th, NULL);
    close(f->lfd);
}

static void consumer_sees_protocol_error(const uint8_t *reply, size_t len, const char *expect) {
    fake_producer f;
    fake_start(&f, reply, len);
    tm_net *b = mknet(NULL, "tmB", NULL);
    tm_waker *w = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    tm_input *in = mkinput(b, w, 1, ids, NULL, "fake", f.port);
    char msg[600], want[64];
    ck_assert_int_eq(expect_failure(in, w, NULL, msg, sizeof msg), FLINT_PROTOCOL);
    snprintf(want, sizeof want, "127.0.0.1:%d", f.port);
    ck_assert_msg(strstr(msg, want) && strstr(msg, "job.e1.0.0") && strstr(msg, expect), "%s",
                  msg);
    printf("bad producer: %s\n", msg);
    tm_input_free(in);
    tm_waker_free(w);
    expect_pool_full(b);
    tm_net_free(b);
    fake_stop(&f);
}

START_TEST(test_bad_producer) {
    const uint8_t junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    consumer_sees_protocol_error(junk, sizeof junk - 1, "bad magic");
    uint8_t m[TM_WIRE_HEADER];
    tm_wire_hdr h = {.type = TM_MSG_BUFFER, .channel = 1, .size = 1u << 20};
    tm_wire_encode(m, &h);
    consumer_sees_protocol_error(m, sizeof m, "segment size");
    h = (tm_wire_hdr){.type = TM_MSG_BUFFER, .channel = 77, .size = 4};
    uint8_t m2[TM_WIRE_HEADER + 4] = {0};
    tm_wire_encode(m2, &h);
    consumer_sees_protocol_error(m2, sizeof m2, "unknown channel");
    /* more buffers than the channel can ever have credit for (2 exclusive + 8 floating) */
    uint8_t m3[12 * (TM_WIRE_HEADER + 4)] = {0};
    for (int i = 0; i < 12; i++) {   /* event buffers (type 7), so the consumer accepts them */
        h = (tm_wire_hdr){.type = TM_MSG_BUFFER, .flags = TM_WIRE_FLAG_EVENT, .channel = 1,
                          .seq = (uint32_t)i, .size = 4};
        tm_wire_encode(m3 + i * (TM_WIRE_HEADER + 4), &h);
        m3[i * (TM_WIRE_HEADER + 4) + TM_WIRE_HEADER] = 7;
    }
    consumer_sees_protocol_error(m3, sizeof m3, "without credit");
}
END_TEST

/* A Buffer message on channel 1 (the consumer's first) into out; returns its length. */
static size_t buffer_msg(uint8_t *out, uint32_t seq, bool event, const uint8_t *payload,
                         uint32_t len) {
    tm_wire_hdr h = {.type = TM_MSG_BUFFER, .flags = event ? TM_WIRE_FLAG_EVENT : 0, .channel = 1,
                     .seq = seq, .size = len};
    tm_wire_encode(out, &h);
    memcpy(out + TM_WIRE_HEADER, payload, len);
    return TM_WIRE_HEADER + len;
}

/* Five MODE_1000 records as the payload of one Buffer (5020 bytes: read straight into the
 * segment), then an end of partition. */
static size_t five_records_then_end(uint8_t *out) {
    uint8_t payload[5 * 1004];
    for (uint64_t i = 0; i < 5; i++) {
        uint32_t h = htole32(1000);
        memcpy(payload + i * 1004, &h, 4);
        rec_fill(payload + i * 1004 + 4, i, 1000, MODE_1000);
    }
    size_t n = buffer_msg(out, 0, false, payload, sizeof payload);
    uint32_t eop = htole32(TM_EVENT_END_OF_PARTITION);
    return n + buffer_msg(out + n, 1, true, (const uint8_t *)&eop, 4);
}

/* The consumer reads Buffers in whatever parts the socket gives them: a header cut in two, a large
 * payload over several reads, the next header cut at the end of one. And a consumer that stops
 * while a Buffer is half read gives its segment back. */
START_TEST(test_split_messages) {
    uint8_t stream[2 * TM_WIRE_HEADER + 5 * 1004 + 4];
    size_t len = five_records_then_end(stream);
    ck_assert_uint_eq(len, sizeof stream);
    const size_t cuts[] = {7, TM_WIRE_HEADER + 100, 2120, TM_WIRE_HEADER + 5020 + 5};
    fake_producer f;
    fake_start(&f, stream, len);
    f.cuts = cuts;
    f.ncuts = 4;
    tm_net *b = mknet(NULL, "tmB", NULL);
    tm_waker *w = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    tm_input *in = mkinput(b, w, 1, ids, NULL, "fake", f.port);
    sink s = {.mode = MODE_1000};
    ck_assert_int_eq(drain(in, w, &s, 0, DEADLINE_MS), FLINT_CLOSED);
    ck_assert_uint_eq(s.records, 5);
    ck_assert_int_eq(s.gate_ends[0], 1);
    tm_input_free(in);
    expect_pool_full(b);
    fake_stop(&f);

    /* Half a Buffer, then the consumer goes away. */
    fake_start(&f, stream, TM_WIRE_HEADER + 100);
    in = mkinput(b, w, 1, ids, NULL, "fake", f.port);
    tm_chan *ch = &in->gates[0].chans[0];
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    for (int free_bufs = 2; free_bufs == 2; sleep_ms(5)) {   /* until a segment is being filled */
        ck_assert(time_mono_ms() < deadline);
        pthread_mutex_lock(&in->mu);
        free_bufs = ch->freeq.len;
        pthread_mutex_unlock(&in->mu);
    }
    tm_input_free(in);
    expect_pool_full(b);
    tm_waker_free(w);
    tm_net_free(b);
    fake_stop(&f);
}
END_TEST

/* ---- shutdown ------------------------------------------------------------------------------------ */

START_TEST(test_producer_goes_away) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    tm_partition *p = mkpart(a, "job.e1.0.0", 1);
    tm_waker *w = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    tm_input *in = mkinput(b, w, 1, ids, NULL, "tmA", pa);
    producer q;
    producer_start(&q, p, 1, 0, MODE_SMALL, false, 5);
    sink s = {.mode = MODE_SMALL};
    ck_assert_int_eq(drain(in, w, &s, 10000, DEADLINE_MS), FLINT_OK);
    /* the producer taskmanager goes away mid-stream */
    int prc = producer_stop(&q, true);
    ck_assert(prc == FLINT_OK || prc == FLINT_CANCELED);
    tm_partition_release(p, false);
    tm_net_free(a);
    char msg[600], want[64];
    int rc = drain(in, w, &s, 0, DEADLINE_MS);
    snprintf(msg, sizeof msg, "%s", tm_input_error(in));
    ck_assert_int_ne(rc, FLINT_OK);
    ck_assert_int_ne(rc, FLINT_CLOSED);
    snprintf(want, sizeof want, "127.0.0.1:%d", pa);
    ck_assert_msg(strstr(msg, want) && strstr(msg, "job.e1.0.0"), "%s", msg);
    printf("producer gone: %s\n", msg);
    tm_input_free(in);
    tm_waker_free(w);
    expect_pool_full(b);
    tm_net_free(b);
}
END_TEST

START_TEST(test_producer_canceled) {
    tm_net *a = mknet(NULL, "tmA", NULL);
    tm_partition *p = mkpart(a, "job.e1.0.0", 1);
    tm_waker *w = tm_waker_new();
    const char *ids[] = {"job.e1.0.0"};
    tm_input *in = mkinput(a, w, 1, ids, NULL, "tmA", 0);
    producer q;
    producer_start(&q, p, 1, 0, MODE_SMALL, false, 5);
    sink s = {.mode = MODE_SMALL};
    ck_assert_int_eq(drain(in, w, &s, 1000, DEADLINE_MS), FLINT_OK);
    producer_stop(&q, true);
    tm_partition_release(p, true);
    char msg[600];
    ck_assert_int_eq(expect_failure(in, w, &s, msg, sizeof msg), FLINT_STATE);
    ck_assert_msg(strstr(msg, "canceled") && strstr(msg, "job.e1.0.0"), "%s", msg);
    tm_input_free(in);
    tm_waker_free(w);
    expect_pool_full(a);
    tm_net_free(a);
}
END_TEST

/* A released partition stays readable until consumed; release_job drops what nobody reads. */
START_TEST(test_lingering_partition) {
    int pa, pb;
    tm_net *a = mknet(NULL, "tmA", &pa);
    tm_net *b = mknet(NULL, "tmB", &pb);
    tm_partition *p1 = mkpart(a, "jobx.e1.0.0", 1), *p2 = mkpart(a, "jobx.e2.0.0", 1);
    tm_waker *pw = tm_waker_new();
    tm_writer *w1 = tm_writer_new(p1, -1, pw), *w2 = tm_writer_new(p2, -1, pw);
    ck_assert_int_eq(tm_writer_emit(w1, 0, TM_ELEM_RECORD, "hello", 5), 0);
    ck_assert_int_eq(tm_writer_emit(w2, 0, TM_ELEM_RECORD, "hello", 5), 0);
    ck_assert_int_eq(tm_writer_event(w1, TM_EVENT_END_OF_PARTITION, NULL, 0), 0);
    ck_assert_int_eq(tm_writer_event(w2, TM_EVENT_END_OF_PARTITION, NULL, 0), 0);
    tm_writer_free(w1);
    tm_writer_free(w2);
    tm_partition_release(p1, false);   /* finished before anybody asked */
    tm_partition_release(p2, false);
    ck_assert_int_lt(tm_net_segments_available(a), tm_net_segments_total(a));
    tm_waker *cw = tm_waker_new();
    const char *ids[] = {"jobx.e1.0.0"};
    tm_input *in = mkinput(b, cw, 1, ids, NULL, "tmA", pa);
    ck_assert(arrives(in, cw, DEADLINE_MS));
    tm_element el;
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    int rc;
    while ((rc = tm_input_next(in, &el)) == FLINT_UNAVAILABLE && time_mono_ms() < deadline)
        tm_waker_wait(cw, time_mono_ms() + 100);
    ck_assert_int_eq(rc, FLINT_OK);
    ck_assert_int_eq(el.kind, TM_ELEM_GATE_END);
    ck_assert_int_eq(tm_input_next(in, &el), FLINT_CLOSED);
    tm_input_free(in);
    tm_net_release_job(a, "jobx");   /* drops e2, which nobody read */
    expect_pool_full(a);
    tm_waker_free(pw);
    tm_waker_free(cw);
    tm_net_free(b);
    tm_net_free(a);
}
END_TEST

static Suite *net_suite(void) {
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("waker");
    tcase_add_test(tc, test_waker);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pool_exhaustion);
    tcase_add_test(tc, test_cancel_releases_writer);
    suite_add_tcase(s, tc);

    tc = tcase_create("channels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_local_records);
    tcase_add_test(tc, test_remote_records);
    tcase_add_test(tc, test_multiplexed);
    tcase_add_test(tc, test_credit_isolation);
    tcase_add_test(tc, test_buffer_timeout);
    tcase_add_test(tc, test_gates_local);
    tcase_add_test(tc, test_gates_remote);
    suite_add_tcase(s, tc);

    tc = tcase_create("requests");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_late_partition);
    tcase_add_test(tc, test_missing_partition);
    tcase_add_test(tc, test_subpartition_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_garbage_to_data_port);
    tcase_add_test(tc, test_bad_producer);
    tcase_add_test(tc, test_split_messages);
    tcase_add_test(tc, test_producer_goes_away);
    tcase_add_test(tc, test_producer_canceled);
    tcase_add_test(tc, test_lingering_partition);
    suite_add_tcase(s, tc);

    tc = tcase_create("throughput");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_throughput);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    log_init("check_net", NULL, LOG_WARN);
    SRunner *sr = srunner_create(net_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

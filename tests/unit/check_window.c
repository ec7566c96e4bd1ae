/* Unit tests of the window decisions (taskmanager/operators/window_core.h): assigners with offsets
 * and negative timestamps, window namespaces, session merging, trigger decisions (event time,
 * processing time, count, purging), evictors, lateness and late routing, interval-join bounds;
 * the window, window-join and interval-join operators run as chains with exact watermarks, on
 * both state backends (late data to the side output, re-firing within the allowed lateness,
 * session merging of accumulators, element lists and timers, count windows, evictors, triggers,
 * processing time, state and timer cleanup); and the graph side of the window API (common/graph/graph_window.c). */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "operators/operator.h"
#include "operators/window_core.h"
#include "operators/window_ops.h"
#include "task/chain.h"
#include "util/alloc.h"

#include "check_op_helpers.h"

#define W(s, e) ((tm_window){(s), (e)})

static void assert_window(tm_window got, int64_t start, int64_t end) {
    ck_assert_msg(got.start == start && got.end == end, "window [%lld, %lld), expected [%lld, %lld)",
                  (long long)got.start, (long long)got.end, (long long)start, (long long)end);
}

static flint_window_spec tumbling(int64_t size, int64_t offset) {
    return (flint_window_spec){FLINT_WINDOW_TUMBLING, FLINT_EVENT_TIME, size, 0, offset, 0};
}
static flint_window_spec sliding(int64_t size, int64_t slide, int64_t offset) {
    return (flint_window_spec){FLINT_WINDOW_SLIDING, FLINT_EVENT_TIME, size, slide, offset, 0};
}
static flint_window_spec session(int64_t gap) {
    return (flint_window_spec){FLINT_WINDOW_SESSION, FLINT_EVENT_TIME, 0, 0, 0, gap};
}

/* ---- assigners ------------------------------------------------------------------------------- */

START_TEST(test_window_start) {
    ck_assert_int_eq(tm_window_start(0, 0, 5000), 0);
    ck_assert_int_eq(tm_window_start(4999, 0, 5000), 0);
    ck_assert_int_eq(tm_window_start(5000, 0, 5000), 5000);
    /* Negative timestamps round down (floor), not toward zero. */
    ck_assert_int_eq(tm_window_start(-1, 0, 5000), -5000);
    ck_assert_int_eq(tm_window_start(-5000, 0, 5000), -5000);
    ck_assert_int_eq(tm_window_start(-5001, 0, 5000), -10000);
    /* Offsets shift the grid. */
    ck_assert_int_eq(tm_window_start(500, 1000, 5000), -4000);
    ck_assert_int_eq(tm_window_start(1000, 1000, 5000), 1000);
    ck_assert_int_eq(tm_window_start(4500, -1000, 5000), 4000);
    ck_assert_int_eq(tm_window_start(-4500, -1000, 5000), -6000);
    /* Extremes do not overflow. */
    ck_assert(tm_window_start(INT64_MIN, 0, 1000) == INT64_MIN);
    ck_assert(tm_window_start(INT64_MAX, 0, 1000) == INT64_MAX - 807);
}
END_TEST

START_TEST(test_assign_tumbling) {
    tm_window w[4];
    flint_window_spec s = tumbling(5000, 0);
    ck_assert_int_eq(tm_window_assign(&s, 0, w, 4), 1);
    assert_window(w[0], 0, 5000);
    ck_assert_int_eq(tm_window_assign(&s, 4999, w, 4), 1);
    assert_window(w[0], 0, 5000);
    tm_window_assign(&s, -1, w, 4);
    assert_window(w[0], -5000, 0);
    s = tumbling(3600000, 900000); /* hourly windows starting at a quarter past */
    tm_window_assign(&s, 0, w, 4);
    assert_window(w[0], -2700000, 900000);
    s.domain = FLINT_PROCESSING_TIME;
    tm_window_assign(&s, 900000, w, 4);
    assert_window(w[0], 900000, 4500000);
    ck_assert_int_eq(tm_window_max_assigned(&s), 1);
}
END_TEST

START_TEST(test_assign_sliding) {
    tm_window w[8];
    flint_window_spec s = sliding(10, 5, 0);
    ck_assert_int_eq(tm_window_max_assigned(&s), 2);
    ck_assert_int_eq(tm_window_assign(&s, 7, w, 8), 2);
    assert_window(w[0], 5, 15); /* latest start first, as Flink */
    assert_window(w[1], 0, 10);
    ck_assert_int_eq(tm_window_assign(&s, -3, w, 8), 2);
    assert_window(w[0], -5, 5);
    assert_window(w[1], -10, 0);
    s = sliding(10, 3, 0);
    ck_assert_int_eq(tm_window_max_assigned(&s), 4);
    ck_assert_int_eq(tm_window_assign(&s, 0, w, 8), 4);
    assert_window(w[0], 0, 10);
    assert_window(w[1], -3, 7);
    assert_window(w[2], -6, 4);
    assert_window(w[3], -9, 1);
    ck_assert_int_eq(tm_window_assign(&s, 2, w, 8), 3); /* at most ceil(size/slide) */
    assert_window(w[2], -6, 4);
    /* Offset 1: windows start at 1, 4, 7, ... */
    s = sliding(6, 3, 1);
    ck_assert_int_eq(tm_window_assign(&s, 5, w, 8), 2);
    assert_window(w[0], 4, 10);
    assert_window(w[1], 1, 7);
    /* Every element lands in exactly size/slide windows, each containing it. */
    s = sliding(10000, 2000, 0);
    for (int64_t ts = -30000; ts < 30000; ts += 777) {
        int n = tm_window_assign(&s, ts, w, 8);
        ck_assert_int_eq(n, 5);
        for (int i = 0; i < n; i++) ck_assert(w[i].start <= ts && ts < w[i].end && w[i].end - w[i].start == 10000);
    }
}
END_TEST

START_TEST(test_assign_session_and_count) {
    tm_window w[2];
    flint_window_spec s = session(3000);
    ck_assert_int_eq(tm_window_assign(&s, 100, w, 2), 1);
    assert_window(w[0], 100, 3100);
    ck_assert(tm_window_is_merging(s.kind));
    flint_window_spec c = {FLINT_WINDOW_COUNT_TUMBLING, FLINT_EVENT_TIME, 3, 0, 0, 0};
    ck_assert_int_eq(tm_window_assign(&c, 12345, w, 2), 1);
    ck_assert(tm_window_is_global(w[0]));
    ck_assert(tm_window_max_ts(w[0]) == INT64_MAX);
    ck_assert(!tm_window_is_event_time(&c) && !tm_window_is_processing_time(&c));
}
END_TEST

START_TEST(test_spec_check) {
    flint_window_spec s = tumbling(5000, 0);
    ck_assert_ptr_null(tm_window_spec_check(&s));
    s.size = 0;
    ck_assert_ptr_nonnull(tm_window_spec_check(&s));
    s = tumbling(5000, 5000);
    ck_assert_ptr_nonnull(strstr(tm_window_spec_check(&s), "offset"));
    s = tumbling(5000, -4999);
    ck_assert_ptr_null(tm_window_spec_check(&s));
    s = sliding(10, 0, 0);
    ck_assert_ptr_nonnull(tm_window_spec_check(&s));
    s = sliding(10, 5, 5);
    ck_assert_ptr_nonnull(tm_window_spec_check(&s));
    s = session(0);
    ck_assert_ptr_nonnull(strstr(tm_window_spec_check(&s), "gap"));
    flint_window_spec c = {FLINT_WINDOW_COUNT_SLIDING, FLINT_EVENT_TIME, 3, 0, 0, 0};
    ck_assert_ptr_nonnull(tm_window_spec_check(&c));
    c.slide = 1;
    ck_assert_ptr_null(tm_window_spec_check(&c));
}
END_TEST

START_TEST(test_namespace_order) {
    tm_window ws[] = {W(INT64_MIN, -5), W(-10, 0), W(-5, 5), W(0, 10), W(0, 11), W(7, INT64_MAX)};
    uint8_t prev[TM_WINDOW_NS_LEN], cur[TM_WINDOW_NS_LEN];
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
        tm_window_ns_encode(ws[i], cur);
        tm_window back = tm_window_ns_decode(cur);
        ck_assert(tm_window_equal(back, ws[i]));
        if (i) ck_assert_msg(memcmp(prev, cur, TM_WINDOW_NS_LEN) < 0, "namespace %zu out of order", i);
        memcpy(prev, cur, sizeof cur);
    }
}
END_TEST

/* ---- session merging --------------------------------------------------------------------------- */

START_TEST(test_session_merging) {
    tm_window_set set = {0};
    tm_window res, merged[8];
    int nm;
    tm_window_set_add_merging(&set, W(0, 5), &res, merged, &nm);
    assert_window(res, 0, 5);
    ck_assert_int_eq(nm, 0);
    tm_window_set_add_merging(&set, W(10, 15), &res, merged, &nm);
    assert_window(res, 10, 15);
    ck_assert_int_eq(nm, 0);
    ck_assert_int_eq(set.n, 2);
    /* A window inside an active one: that one, no merge. */
    tm_window_set_add_merging(&set, W(1, 4), &res, merged, &nm);
    assert_window(res, 0, 5);
    ck_assert_int_eq(nm, 0);
    ck_assert_int_eq(set.n, 2);
    /* A bridge merges both neighbours (in start order). */
    tm_window_set_add_merging(&set, W(4, 11), &res, merged, &nm);
    assert_window(res, 0, 15);
    ck_assert_int_eq(nm, 2);
    assert_window(merged[0], 0, 5);
    assert_window(merged[1], 10, 15);
    ck_assert_int_eq(set.n, 1);
    assert_window(set.w[0], 0, 15);
    /* Touching windows merge, as Flink's TimeWindow#intersects says. */
    tm_window_set_add_merging(&set, W(15, 20), &res, merged, &nm);
    assert_window(res, 0, 20);
    ck_assert_int_eq(nm, 1);
    assert_window(merged[0], 0, 15);
    /* Extending to the left. */
    tm_window_set_add_merging(&set, W(-3, 2), &res, merged, &nm);
    assert_window(res, -3, 20);
    ck_assert_int_eq(nm, 1);
    /* Far away: separate, and the set stays sorted. */
    tm_window_set_add_merging(&set, W(-100, -90), &res, merged, &nm);
    ck_assert_int_eq(set.n, 2);
    assert_window(set.w[0], -100, -90);
    assert_window(set.w[1], -3, 20);
    ck_assert(tm_window_set_contains(&set, W(-3, 20)));
    ck_assert(tm_window_set_remove(&set, W(-3, 20)));
    ck_assert(!tm_window_set_remove(&set, W(-3, 20)));
    ck_assert_int_eq(set.n, 1);
    tm_window_set_free(&set);
}
END_TEST

/* Random sessions: the merged set equals the sessions computed by sorting all timestamps. */
START_TEST(test_session_merging_random) {
    srand(42);
    for (int round = 0; round < 200; round++) {
        int64_t gap = 1 + rand() % 20;
        int n = 1 + rand() % 40;
        int64_t ts[40];
        tm_window_set set = {0};
        tm_window res, merged[64];
        int nm;
        for (int i = 0; i < n; i++) {
            ts[i] = rand() % 300 - 100;
            tm_window_set_add_merging(&set, W(ts[i], ts[i] + gap), &res, merged, &nm);
            ck_assert(res.start <= ts[i] && ts[i] + gap <= res.end);
        }
        /* reference: sort, split where the next ts > current session end */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && ts[j - 1] > ts[j]; j--) {
                int64_t t = ts[j];
                ts[j] = ts[j - 1];
                ts[j - 1] = t;
            }
        int k = 0;
        int64_t s0 = ts[0], e0 = ts[0] + gap;
        for (int i = 1; i <= n; i++) {
            if (i < n && ts[i] <= e0) {
                if (ts[i] + gap > e0) e0 = ts[i] + gap;
                continue;
            }
            ck_assert_int_lt(k, set.n);
            assert_window(set.w[k], s0, e0);
            k++;
            if (i < n) {
                s0 = ts[i];
                e0 = ts[i] + gap;
            }
        }
        ck_assert_int_eq(k, set.n);
        tm_window_set_free(&set);
    }
}
END_TEST

/* ---- triggers ------------------------------------------------------------------------------------ */

typedef struct fake_ctx {
    int64_t reg[16], del[16];
    flint_time_domain reg_d[16], del_d[16];
    int nreg, ndel;
    int64_t count;
} fake_ctx;

static void f_reg(void *ud, flint_time_domain d, int64_t t) {
    fake_ctx *f = ud;
    f->reg_d[f->nreg] = d;
    f->reg[f->nreg++] = t;
}
static void f_del(void *ud, flint_time_domain d, int64_t t) {
    fake_ctx *f = ud;
    f->del_d[f->ndel] = d;
    f->del[f->ndel++] = t;
}
static int64_t f_add(void *ud, int64_t delta) { return ((fake_ctx *)ud)->count += delta; }
static void f_clear(void *ud) { ((fake_ctx *)ud)->count = 0; }

static tm_trigger_ctx tctx(fake_ctx *f, int64_t wm, int64_t now) {
    memset(f, 0, sizeof *f);
    return (tm_trigger_ctx){wm, now, f, f_reg, f_del, f_add, f_clear};
}

START_TEST(test_trigger_event_time) {
    fake_ctx f;
    flint_window_spec s = tumbling(10, 0);
    tm_trigger t;
    ck_assert_ptr_null(tm_trigger_resolve(&s, NULL, &t));
    ck_assert_int_eq(t.kind, TM_TRIG_EVENT_TIME);
    ck_assert(!t.purging);
    tm_trigger_ctx c = tctx(&f, 5, 0);
    ck_assert_int_eq(tm_trigger_on_element(&t, W(0, 10), &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(f.nreg, 1);
    ck_assert_int_eq(f.reg[0], 9);
    ck_assert_int_eq(f.reg_d[0], FLINT_EVENT_TIME);
    /* The watermark passed the window's end (allowed lateness): fire at once, no timer. */
    c = tctx(&f, 9, 0);
    ck_assert_int_eq(tm_trigger_on_element(&t, W(0, 10), &c), TM_TRIGGER_FIRE);
    ck_assert_int_eq(f.nreg, 0);
    ck_assert_int_eq(tm_trigger_on_time(&t, W(0, 10), FLINT_EVENT_TIME, 9, &c), TM_TRIGGER_FIRE);
    /* The cleanup timer (end - 1 + lateness) is not the trigger's. */
    ck_assert_int_eq(tm_trigger_on_time(&t, W(0, 10), FLINT_EVENT_TIME, 109, &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(tm_trigger_on_time(&t, W(0, 10), FLINT_PROCESSING_TIME, 9, &c), TM_TRIGGER_CONTINUE);
    /* Merging re-registers only a timer the watermark has not passed. */
    c = tctx(&f, 5, 0);
    tm_trigger_on_merge(&t, W(0, 20), &c);
    ck_assert_int_eq(f.nreg, 1);
    ck_assert_int_eq(f.reg[0], 19);
    c = tctx(&f, 19, 0);
    tm_trigger_on_merge(&t, W(0, 20), &c);
    ck_assert_int_eq(f.nreg, 0);
    tm_trigger_clear(&t, W(0, 20), &c);
    ck_assert_int_eq(f.ndel, 1);
    ck_assert_int_eq(f.del[0], 19);
    /* Purging. */
    flint_trigger ut = {FLINT_TRIGGER_EVENT_TIME, 0, true};
    ck_assert_ptr_null(tm_trigger_resolve(&s, &ut, &t));
    ck_assert_int_eq(tm_trigger_on_time(&t, W(0, 10), FLINT_EVENT_TIME, 9, &c), TM_TRIGGER_FIRE_AND_PURGE);
}
END_TEST

START_TEST(test_trigger_processing_time) {
    fake_ctx f;
    flint_window_spec s = tumbling(10, 0);
    s.domain = FLINT_PROCESSING_TIME;
    tm_trigger t;
    ck_assert_ptr_null(tm_trigger_resolve(&s, NULL, &t));
    ck_assert_int_eq(t.kind, TM_TRIG_PROCESSING_TIME);
    tm_trigger_ctx c = tctx(&f, INT64_MIN, 3);
    ck_assert_int_eq(tm_trigger_on_element(&t, W(0, 10), &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(f.nreg, 1);
    ck_assert_int_eq(f.reg_d[0], FLINT_PROCESSING_TIME);
    ck_assert_int_eq(f.reg[0], 9);
    ck_assert_int_eq(tm_trigger_on_time(&t, W(0, 10), FLINT_PROCESSING_TIME, 9, &c), TM_TRIGGER_FIRE);
    ck_assert_int_eq(tm_trigger_on_time(&t, W(0, 10), FLINT_EVENT_TIME, 9, &c), TM_TRIGGER_CONTINUE);
    tm_trigger_clear(&t, W(0, 10), &c);
    ck_assert_int_eq(f.del_d[0], FLINT_PROCESSING_TIME);
}
END_TEST

START_TEST(test_trigger_count) {
    fake_ctx f;
    flint_window_spec s = {FLINT_WINDOW_COUNT_TUMBLING, FLINT_EVENT_TIME, 3, 0, 0, 0};
    tm_trigger t;
    ck_assert_ptr_null(tm_trigger_resolve(&s, NULL, &t));
    ck_assert_int_eq(t.kind, TM_TRIG_COUNT);
    ck_assert_int_eq(t.count, 3);
    ck_assert(t.purging); /* countWindow(size) purges */
    tm_trigger_ctx c = tctx(&f, 0, 0);
    ck_assert_int_eq(tm_trigger_on_element(&t, TM_WINDOW_GLOBAL, &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(tm_trigger_on_element(&t, TM_WINDOW_GLOBAL, &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(tm_trigger_on_element(&t, TM_WINDOW_GLOBAL, &c), TM_TRIGGER_FIRE_AND_PURGE);
    ck_assert_int_eq(f.count, 0);
    ck_assert_int_eq(tm_trigger_on_element(&t, TM_WINDOW_GLOBAL, &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(f.count, 1);
    ck_assert_int_eq(f.nreg, 0);
    /* countWindow(size, slide): count(slide), not purging. */
    flint_window_spec sl = {FLINT_WINDOW_COUNT_SLIDING, FLINT_EVENT_TIME, 4, 2, 0, 0};
    ck_assert_ptr_null(tm_trigger_resolve(&sl, NULL, &t));
    ck_assert(t.kind == TM_TRIG_COUNT && t.count == 2 && !t.purging);
    c = tctx(&f, 0, 0);
    ck_assert_int_eq(tm_trigger_on_element(&t, TM_WINDOW_GLOBAL, &c), TM_TRIGGER_CONTINUE);
    ck_assert_int_eq(tm_trigger_on_element(&t, TM_WINDOW_GLOBAL, &c), TM_TRIGGER_FIRE);
    /* A count trigger on time windows; time triggers on count windows are refused. */
    flint_window_spec tw = tumbling(10, 0);
    flint_trigger ut = {FLINT_TRIGGER_COUNT, 2, false};
    ck_assert_ptr_null(tm_trigger_resolve(&tw, &ut, &t));
    ck_assert_int_eq(t.kind, TM_TRIG_COUNT);
    ut = (flint_trigger){FLINT_TRIGGER_COUNT, 0, false};
    ck_assert_ptr_nonnull(tm_trigger_resolve(&tw, &ut, &t));
    ut = (flint_trigger){FLINT_TRIGGER_EVENT_TIME, 0, false};
    ck_assert_ptr_nonnull(tm_trigger_resolve(&s, &ut, &t));
    /* The default trigger made purging. */
    ut = (flint_trigger){FLINT_TRIGGER_DEFAULT, 0, true};
    ck_assert_ptr_null(tm_trigger_resolve(&tw, &ut, &t));
    ck_assert(t.kind == TM_TRIG_EVENT_TIME && t.purging);
}
END_TEST

/* ---- evictors --------------------------------------------------------------------------------------- */

START_TEST(test_evictors) {
    int64_t ts[] = {1, 5, 10, 12, 3};
    bool ev[5];
    tm_evictor e = {TM_EVICT_COUNT, 2};
    ck_assert_int_eq(tm_evictor_apply(&e, ts, 5, ev), 2);
    ck_assert(ev[0] && ev[1] && ev[2] && !ev[3] && !ev[4]);
    e.value = 10;
    ck_assert_int_eq(tm_evictor_apply(&e, ts, 5, ev), 5);
    ck_assert(!ev[0] && !ev[4]);
    /* Time: keep those within value ms of the newest (12): cutoff 7, evict ts <= 7. */
    e = (tm_evictor){TM_EVICT_TIME, 5};
    ck_assert_int_eq(tm_evictor_apply(&e, ts, 5, ev), 2);
    ck_assert(ev[0] && ev[1] && !ev[2] && !ev[3] && ev[4]);
    int64_t none[] = {FLINT_NO_TIMESTAMP, FLINT_NO_TIMESTAMP};
    ck_assert_int_eq(tm_evictor_apply(&e, none, 2, ev), 2);
    e.kind = TM_EVICT_NONE;
    ck_assert_int_eq(tm_evictor_apply(&e, ts, 5, ev), 5);
}
END_TEST

/* ---- lateness ------------------------------------------------------------------------------------------- */

START_TEST(test_lateness) {
    flint_window_spec s = tumbling(10, 0);
    /* Window [0,10): max ts 9; cleanup at 9 + lateness. */
    ck_assert_int_eq(tm_window_cleanup_time(&s, W(0, 10), 0), 9);
    ck_assert_int_eq(tm_window_cleanup_time(&s, W(0, 10), 5), 14);
    ck_assert(tm_window_cleanup_time(&s, W(0, 10), INT64_MAX) == INT64_MAX);
    ck_assert(!tm_window_is_late(&s, W(0, 10), 0, 8));
    ck_assert(tm_window_is_late(&s, W(0, 10), 0, 9));
    ck_assert(!tm_window_is_late(&s, W(0, 10), 5, 13));
    ck_assert(tm_window_is_late(&s, W(0, 10), 5, 14));
    ck_assert(!tm_window_is_late(&s, W(0, 10), 0, INT64_MIN));
    /* Elements: ts + lateness <= watermark is late. */
    ck_assert(!tm_element_is_late(&s, 9, 0, 8));
    ck_assert(tm_element_is_late(&s, 9, 0, 9));
    ck_assert(!tm_element_is_late(&s, 9, 5, 13));
    ck_assert(tm_element_is_late(&s, 9, 5, 14));
    /* Routing: an element is dropped to the side output only when all its windows are late; with
     * sliding windows the newest window may still take it. */
    flint_window_spec sl = sliding(10, 5, 0);
    tm_window w[4];
    int n = tm_window_assign(&sl, 7, w, 4); /* [5,15) and [0,10) */
    int64_t wm = 10;
    int taken = 0;
    for (int i = 0; i < n; i++) taken += !tm_window_is_late(&sl, w[i], 0, wm);
    ck_assert_int_eq(taken, 1);
    ck_assert(tm_element_is_late(&sl, 7, 0, wm)); /* late, but a window took it: not routed */
    /* Processing time and count windows are never late; the global window is never cleaned. */
    flint_window_spec p = tumbling(10, 0);
    p.domain = FLINT_PROCESSING_TIME;
    ck_assert(!tm_window_is_late(&p, W(0, 10), 0, 1000));
    ck_assert(!tm_element_is_late(&p, 0, 0, 1000));
    ck_assert_int_eq(tm_window_cleanup_time(&p, W(0, 10), 100), 9);
    flint_window_spec c = {FLINT_WINDOW_COUNT_TUMBLING, FLINT_EVENT_TIME, 3, 0, 0, 0};
    ck_assert(tm_window_cleanup_time(&c, TM_WINDOW_GLOBAL, 0) == INT64_MAX);
    ck_assert(!tm_element_is_late(&c, 0, 0, 1000));
}
END_TEST

/* ---- interval join ------------------------------------------------------------------------------------------ */

START_TEST(test_interval_bounds) {
    /* b.ts in [a.ts - 2, a.ts + 3] */
    ck_assert(tm_interval_match(10, 8, -2, 3));
    ck_assert(tm_interval_match(10, 13, -2, 3));
    ck_assert(!tm_interval_match(10, 7, -2, 3));
    ck_assert(!tm_interval_match(10, 14, -2, 3));
    ck_assert(tm_interval_match(10, 10, 0, 0));
    ck_assert(!tm_interval_match(10, 11, 0, 0));
    /* Both bounds positive: b strictly after a. */
    ck_assert(!tm_interval_match(10, 10, 1, 5));
    ck_assert(tm_interval_match(10, 15, 1, 5));
    ck_assert(tm_interval_match(INT64_MAX - 1, INT64_MAX, 0, 10));
    ck_assert(tm_interval_match(INT64_MIN + 1, INT64_MIN, -10, 0));
    /* Cleanup: a left element waits for right ones up to ts + upper; a right one for left ones
     * up to ts - lower. */
    ck_assert_int_eq(tm_interval_cleanup_left(10, 3), 13);
    ck_assert_int_eq(tm_interval_cleanup_left(10, -1), 10);
    ck_assert_int_eq(tm_interval_cleanup_right(10, -2), 12);
    ck_assert_int_eq(tm_interval_cleanup_right(10, 1), 10);
    ck_assert(tm_time_add(INT64_MAX, 1) == INT64_MAX);
    ck_assert(tm_time_add(INT64_MIN, -1) == INT64_MIN);
}
END_TEST

/* A brute-force check: for random timestamps, a pair joins exactly when the rule says, and no pair
 * that joins is lost to cleanup: when the watermark has passed an element's cleanup time, no
 * later-arriving element (ts > watermark) can join it. */
START_TEST(test_interval_cleanup_safe) {
    srand(7);
    for (int i = 0; i < 20000; i++) {
        int64_t lower = rand() % 21 - 10, upper = lower + rand() % 15;
        int64_t a = rand() % 100, b = rand() % 100;
        int64_t wm = tm_interval_cleanup_left(a, upper);
        /* b arriving later must be > wm (not late) to be joined: then it cannot match. */
        if (b > wm) ck_assert(!tm_interval_match(a, b, lower, upper));
        wm = tm_interval_cleanup_right(b, lower);
        if (a > wm) ck_assert(!tm_interval_match(a, b, lower, upper));
    }
}
END_TEST

/* ---- the graph side ---------------------------------------------------------------------------------------------- */

static const char *const clicks[] = {"1000,alice,3", "2000,bob,5"};

/* Build a job and return its env (error or not); *plan gets the window operator's params. */
static flint_env *graph_of(void (*build)(flint_env *env)) {
    flint_env *env = graph_env_new(NULL);
    build(env);
    flint_execute(env, "t");
    return env;
}

static const Flint__Graph__OperatorDef *find_op(flint_env *env, const char *kind) {
    Flint__Graph__JobGraph *job = graph_env_job(env);
    ck_assert_ptr_nonnull(job);
    for (size_t v = 0; v < job->n_vertices; v++)
        for (size_t o = 0; o < job->vertices[v]->n_operators; o++)
            if (strcmp(job->vertices[v]->operators[o]->kind, kind) == 0) return job->vertices[v]->operators[o];
    ck_abort_msg("no operator of kind %s", kind);
    return NULL;
}

static const char *param(const Flint__Graph__OperatorDef *op, const char *k) {
    return graph_kv_get(op->params, op->n_params, k);
}

static void build_count(flint_env *env) {
    flint_stream *s = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_keyed_stream *k = flint_key_by(s, "user");
    flint_windowed_stream *w = flint_window(k, (flint_window_spec){FLINT_WINDOW_TUMBLING, FLINT_EVENT_TIME, 5000, 0, 1000, 0});
    w = flint_allowed_lateness(w, 2000);
    w = flint_side_output_late_data(w, "late");
    flint_sink_print(flint_window_sum(w, "n"));
}

START_TEST(test_graph_window_sum) {
    flint_env *env = graph_of(build_count);
    ck_assert_msg(!flint_env_error(env), "%s", flint_env_error(env));
    const Flint__Graph__OperatorDef *op = find_op(env, "window");
    ck_assert_str_eq(op->output_schema, "user STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), sum INT");
    ck_assert_str_eq(param(op, "window.kind"), "tumbling");
    ck_assert_str_eq(param(op, "window.size"), "5000");
    ck_assert_str_eq(param(op, "window.offset"), "1000");
    ck_assert_str_eq(param(op, "allowed_lateness"), "2000");
    ck_assert_str_eq(param(op, "late.tag"), "late");
    ck_assert_str_eq(param(op, "agg"), "sum");
    ck_assert_str_eq(param(op, "field"), "2");
    ck_assert_str_eq(param(op, "key.fields"), "1");
    ck_assert_ptr_nonnull(strstr(op->name, "TumblingEventTimeWindows(5000)"));
    graph_env_free(env);
}
END_TEST

void test_reduce_fn(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *o) { (void)ctx; (void)a; (void)b; (void)o; }
void test_process_fn(flint_ctx *ctx, const flint_time_window *w, flint_state_iter *it, flint_collector *out) {
    (void)ctx; (void)w; (void)it; (void)out;
}

static void build_reduce(flint_env *env) {
    flint_stream *s = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_windowed_stream *w =
        flint_window(flint_key_by(s, "user"), (flint_window_spec){FLINT_WINDOW_SESSION, FLINT_EVENT_TIME, 0, 0, 0, 3000});
    flint_sink_print(flint_window_reduce(w, FLINT_FN(test_reduce_fn)));
    flint_windowed_stream *c =
        flint_window(flint_key_by(s, "user"), (flint_window_spec){FLINT_WINDOW_COUNT_SLIDING, FLINT_EVENT_TIME, 4, 2, 0, 0});
    flint_sink_print(flint_window_process(flint_window_evict_count(c, 3), FLINT_FN(test_process_fn), "user STRING, n BIGINT"));
}

START_TEST(test_graph_window_reduce_process) {
    flint_env *env = graph_of(build_reduce);
    ck_assert_msg(!flint_env_error(env), "%s", flint_env_error(env));
    Flint__Graph__JobGraph *job = graph_env_job(env);
    int windows = 0;
    for (size_t v = 0; v < job->n_vertices; v++)
        for (size_t o = 0; o < job->vertices[v]->n_operators; o++) {
            const Flint__Graph__OperatorDef *op = job->vertices[v]->operators[o];
            if (strcmp(op->kind, "window") != 0) continue;
            windows++;
            if (strcmp(param(op, "function"), "reduce") == 0) {
                /* The key column is not repeated among the reduce's result columns. */
                ck_assert_str_eq(op->output_schema,
                                 "user STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), ts BIGINT, n INT");
                ck_assert_str_eq(param(op, "window.gap"), "3000");
                ck_assert_str_eq(param(op, "fn"), "test_reduce_fn");
            } else {
                ck_assert_str_eq(op->output_schema, "user STRING, n BIGINT");
                ck_assert_str_eq(param(op, "window.kind"), "count_sliding");
                ck_assert_str_eq(param(op, "evictor"), "count");
                ck_assert_str_eq(param(op, "evictor.value"), "3");
            }
        }
    ck_assert_int_eq(windows, 2);
    graph_env_free(env);
}
END_TEST

static void build_bad_field(flint_env *env) {
    flint_stream *s = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_windowed_stream *w =
        flint_window(flint_key_by(s, "user"), (flint_window_spec){FLINT_WINDOW_TUMBLING, FLINT_EVENT_TIME, 10, 0, 0, 0});
    flint_sink_print(flint_window_avg(w, "user"));
}
static void build_bad_spec(flint_env *env) {
    flint_stream *s = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_windowed_stream *w =
        flint_window(flint_key_by(s, "user"), (flint_window_spec){FLINT_WINDOW_SLIDING, FLINT_EVENT_TIME, 10, 0, 0, 0});
    flint_sink_print(flint_window_count(w));
}
static void build_bad_lateness(flint_env *env) {
    flint_stream *s = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_windowed_stream *w =
        flint_window(flint_key_by(s, "user"), (flint_window_spec){FLINT_WINDOW_TUMBLING, FLINT_EVENT_TIME, 10, 0, 0, 0});
    flint_sink_print(flint_window_max(flint_allowed_lateness(w, -1), "n"));
}

static void build_bad_late_schema(flint_env *env) {
    flint_stream *s = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_windowed_stream *w =
        flint_window(flint_key_by(s, "user"), (flint_window_spec){FLINT_WINDOW_TUMBLING, FLINT_EVENT_TIME, 10, 0, 0, 0});
    flint_stream *c = flint_window_count(flint_side_output_late_data(w, "late"));
    flint_sink_print(c);
    flint_sink_print(flint_side_output(c, "late", "user STRING"));
}
void test_join_fn(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *o) { (void)ctx; (void)a; (void)b; (void)o; }
static void build_joins(flint_env *env) {
    flint_stream *a = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_stream *b = flint_from_elements(env, "user STRING, page STRING", 0, NULL);
    flint_keyed_stream *ka = flint_key_by(a, "user"), *kb = flint_key_by(b, "user");
    flint_sink_print(flint_interval_join(ka, kb, -5, 10, FLINT_FN(test_join_fn), "user STRING, page STRING"));
    flint_sink_print(flint_window_join(ka, kb, (flint_window_spec){FLINT_WINDOW_SLIDING, FLINT_EVENT_TIME, 10, 5, 0, 0},
                                       FLINT_FN(test_join_fn), "user STRING, page STRING"));
}
static void build_bad_join(flint_env *env) {
    flint_stream *a = flint_from_elements(env, "ts BIGINT, user STRING, n INT", 2, clicks);
    flint_stream *b = flint_from_elements(env, "user STRING, page STRING", 0, NULL);
    flint_sink_print(flint_interval_join(flint_key_by(a, "n"), flint_key_by(b, "user"), 0, 10, FLINT_FN(test_join_fn),
                                         "user STRING"));
}

START_TEST(test_graph_joins) {
    flint_env *env = graph_of(build_joins);
    ck_assert_msg(!flint_env_error(env), "%s", flint_env_error(env));
    const Flint__Graph__OperatorDef *ij = find_op(env, "interval_join"), *wj = find_op(env, "window_join");
    ck_assert_str_eq(param(ij, "lower"), "-5");
    ck_assert_str_eq(param(ij, "upper"), "10");
    ck_assert_str_eq(param(ij, "key.fields"), "1");
    ck_assert_str_eq(param(ij, "key2.fields"), "0");
    ck_assert_str_eq(param(ij, "in2.schema"), "user STRING, page STRING");
    ck_assert_str_eq(param(wj, "window.kind"), "sliding");
    ck_assert_str_eq(param(wj, "function"), "join");
    /* The second input's edges are input 2. */
    Flint__Graph__JobGraph *job = graph_env_job(env);
    int second = 0;
    for (size_t e = 0; e < job->n_edges; e++) second += job->edges[e]->input_index == 1;
    ck_assert_int_eq(second, 2);
    graph_env_free(env);
    env = graph_of(build_bad_join);
    ck_assert_ptr_nonnull(flint_env_error(env));
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "keys of the two streams differ in type: (INT) vs (STRING)"));
    graph_env_free(env);
}
END_TEST

START_TEST(test_graph_window_errors) {
    flint_env *env = graph_of(build_bad_field);
    ck_assert_ptr_nonnull(flint_env_error(env));
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "cannot take the avg of field 'user' of type STRING"));
    graph_env_free(env);
    env = graph_of(build_bad_spec);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "slide > 0"));
    graph_env_free(env);
    env = graph_of(build_bad_lateness);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "allowed lateness must be >= 0"));
    graph_env_free(env);
    env = graph_of(build_bad_late_schema);
    ck_assert_ptr_nonnull(flint_env_error(env));
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "late records are rows of the window's input"));
    graph_env_free(env);
}
END_TEST

/* ---- operators as chains ------------------------------------------------------------------------ */

static int cmp_line(const void *a, const void *b) { return strcmp(a, b); }

/* User functions the chains name. */
static void sum_v(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, acc, 0);
    flint_row_set_long(out, 1, flint_row_get_long(acc, 1) + flint_row_get_long(in, 1));
}
/* process: (w, start, end, n, the v values in order) */
static void list_v(flint_ctx *ctx, const flint_time_window *w, flint_state_iter *it, flint_collector *out) {
    char buf[256] = "";
    size_t len = 0;
    int64_t n = 0;
    flint_row e;
    while (flint_state_iter_next(it, NULL, &e)) {
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%lld", n ? "," : "", (long long)flint_row_get_long(&e, 1));
        n++;
    }
    flint_row key = flint_ctx_current_key(ctx);
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, &key, 0);
    flint_row_set_long(b, 1, w->start);
    flint_row_set_long(b, 2, w->end);
    flint_row_set_long(b, 3, n);
    flint_row_set_cstring(b, 4, buf);
    flint_emit(out);
}
/* user aggregate: (n, total) -> mean as "total/n" text */
static void agg_create(flint_ctx *ctx, flint_row_builder *acc) {
    (void)ctx;
    flint_row_set_long(acc, 0, 0);
    flint_row_set_long(acc, 1, 0);
}
static void agg_add(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(acc, 0) + 1);
    flint_row_set_long(out, 1, flint_row_get_long(acc, 1) + flint_row_get_long(in, 1));
}
static void agg_merge(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(a, 0) + flint_row_get_long(b, 0));
    flint_row_set_long(out, 1, flint_row_get_long(a, 1) + flint_row_get_long(b, 1));
}
static void agg_result(flint_ctx *ctx, const flint_row *acc, flint_row_builder *out) {
    (void)ctx;
    char buf[64];
    snprintf(buf, sizeof buf, "%lld/%lld", (long long)flint_row_get_long(acc, 1), (long long)flint_row_get_long(acc, 0));
    flint_row_set_cstring(out, 0, buf);
}
static void join_ab(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, a, 0);
    flint_row_copy_field(out, 1, a, 1);
    flint_row_copy_field(out, 2, b, 1);
}

static struct {
    const char *name;
    void (*fn)(void);
} udfs[] = {
    {"sum_v", (void (*)(void))sum_v},         {"list_v", (void (*)(void))list_v},
    {"agg_create", (void (*)(void))agg_create}, {"agg_add", (void (*)(void))agg_add},
    {"agg_merge", (void (*)(void))agg_merge},   {"agg_result", (void (*)(void))agg_result},
    {"join_ab", (void (*)(void))join_ab},
};

static void *resolve(void *ud, const char *name) {
    (void)ud;
    for (size_t i = 0; i < sizeof udfs / sizeof *udfs; i++)
        if (strcmp(udfs[i].name, name) == 0) {
            void *p;
            memcpy(&p, &udfs[i].fn, sizeof p);
            return p;
        }
    return NULL;
}

static const char *const backends[] = {"hashmap", "rocksdb"};

typedef struct chain_run {
    tm_runtime rt;
    Flint__Graph__KeyValue *conf[2];
    tm_chain c;
    Flint__Graph__JobVertex *v;
    out_log out, side;
    flint_row_builder b, b2;
    flint_schema *in2;
} chain_run;

/* One operator as a chain on backend (0 hashmap, 1 rocksdb); side: the tag whose rows go to
 * r->side (or NULL). */
static void chain_start(chain_run *r, Flint__Graph__OperatorDef *op, int backend, const char *side) {
    memset(r, 0, sizeof *r);
    r->conf[0] = kv("state.backend.type", backends[backend]);
    r->conf[1] = kv("io.tmp.dirs", "/tmp");
    r->rt = (tm_runtime){.subtask = 0, .parallelism = 1, .max_parallelism = 128, .task_name = "window (1/1)",
                         .resolve = resolve, .artifact = "abc", .timestamp = FLINT_NO_TIMESTAMP,
                         .auto_watermark_interval_ms = 200, .job_config = r->conf, .n_job_config = 2};
    r->rt.timers = tm_timers_new(128);
    r->v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(r->v);
    r->v->name = xstrdup("window vertex");
    r->v->parallelism = 1;
    r->v->operators = xcalloc(1, sizeof *r->v->operators);
    r->v->operators[r->v->n_operators++] = op;
    r->out.rt = r->side.rt = &r->rt;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&r->c, r->v, &r->rt, &err) == 0, "%s", err.msg);
    tm_output o = {.fn = out_row, .ud = &r->out, .wm_fn = out_wm};
    tm_chain_add_output_tagged(&r->c, 0, &o, "");
    if (side) {
        tm_output so = {.fn = out_row, .ud = &r->side, .wm_fn = out_wm};
        tm_chain_add_output_tagged(&r->c, 0, &so, side);
    }
    ck_assert_msg(tm_chain_open(&r->c) == 0, "%s", r->rt.err.msg);
    flint_row_builder_init(&r->b, r->c.ops[0]->in_schema);
    for (size_t i = 0; i < op->n_params; i++)
        if (strcmp(op->params[i]->key, "in2.schema") == 0) {
            ck_assert_int_eq(flint_schema_parse(op->params[i]->value, &r->in2, &err), 0);
            flint_row_builder_init(&r->b2, r->in2);
        }
}

/* A row (text, ',' separated) with timestamp ts to input 1 or 2. */
static void chain_row2(chain_run *r, int input, const char *text, int64_t ts) {
    flint_err err = {0};
    flint_row_builder *b = input == 2 ? &r->b2 : &r->b;
    flint_row_builder_reset(b);
    ck_assert_int_eq(flint_row_parse(b, text, strlen(text), ',', &err), 0);
    flint_row row = flint_row_builder_row(b);
    r->rt.timestamp = ts;
    int rc = input == 2 ? tm_op_process2(r->c.ops[0], &row) : tm_op_process(r->c.ops[0], &row);
    ck_assert_msg(rc == 0, "%s", r->rt.err.msg);
}
static void chain_row(chain_run *r, const char *text, int64_t ts) { chain_row2(r, 1, text, ts); }

static void chain_wm(chain_run *r, int64_t wm) {
    ck_assert_msg(tm_op_watermark(r->c.ops[0], wm) == 0, "%s", r->rt.err.msg);
}

static tm_window_op_stats chain_stats(chain_run *r) {
    tm_window_op_stats st;
    ck_assert(tm_window_op_stats_get(r->c.ops[0], &st));
    return st;
}

static void chain_end(chain_run *r) {
    flint_row_builder_free(&r->b);
    if (r->in2) {
        flint_row_builder_free(&r->b2);
        flint_schema_free(r->in2);
    }
    tm_chain_close(&r->c);
    tm_timers_free(r->rt.timers);
    free(r->rt.ticks);
    flint__graph__job_vertex__free_unpacked(r->v, NULL);
    flint__graph__key_value__free_unpacked(r->conf[0], NULL);
    flint__graph__key_value__free_unpacked(r->conf[1], NULL);
}

#define WIN_IN "w STRING, v BIGINT"
#define WIN_OUT(res) "w STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), " res

/* Late data: re-firing within the allowed lateness, then the side output; state and timers go. */
START_TEST(test_op_lateness_and_late_data) {
    chain_run r;
    chain_start(&r,
                mkop("window", WIN_IN, WIN_OUT("`count` BIGINT"), "window.kind", "tumbling", "window.domain", "event",
                     "window.size", "10", "function", "aggregate", "agg", "count", "key.fields", "0", "allowed_lateness",
                     "5", "late.tag", "late", NULL),
                _i, "late");
    chain_row(&r, "a,1", 1);
    chain_row(&r, "a,3", 3);
    chain_row(&r, "b,12", 12);
    chain_wm(&r, 9);                  /* a's [0,10) fires */
    chain_row(&r, "a,5", 5);          /* late, within the lateness: fires again, updated */
    chain_wm(&r, 14);                 /* a's [0,10) is cleaned up */
    chain_row(&r, "a,7", 7);          /* too late: side output, unchanged */
    chain_row(&r, "a,9", 9);
    chain_row(&r, "c,10", 10);
    chain_wm(&r, FLINT_MAX_WATERMARK);
    expect_out(&r.out, 7, "a 0 10 2 @9", "WM 9", "a 0 10 3 @9", "WM 14", "b 10 20 1 @19", "c 10 20 1 @19", "WM MAX");
    expect_out(&r.side, 5, "WM 9", "WM 14", "a 7 @7", "a 9 @9", "WM MAX");
    tm_window_op_stats st = chain_stats(&r);
    ck_assert_uint_eq(st.state_entries, 0);
    ck_assert_uint_eq(st.event_timers, 0);
    ck_assert_int_eq(st.late_dropped, 0);
    chain_end(&r);

    /* No lateness, no side output consumer: dropped and counted. */
    chain_start(&r,
                mkop("window", WIN_IN, WIN_OUT("`sum` BIGINT"), "window.kind", "tumbling", "window.domain", "event",
                     "window.size", "10", "function", "aggregate", "agg", "sum", "field", "1", "key.fields", "0", "late.tag",
                     "late", NULL),
                _i, NULL);
    chain_row(&r, "a,1", 1);
    chain_wm(&r, 9);
    chain_row(&r, "a,5", 5);
    chain_row(&r, "a,10", 10);
    chain_wm(&r, FLINT_MAX_WATERMARK);
    expect_out(&r.out, 4, "a 0 10 1 @9", "WM 9", "a 10 20 10 @19", "WM MAX");
    ck_assert_int_eq(chain_stats(&r).late_dropped, 1);
    chain_end(&r);
}
END_TEST

/* Sliding windows with an offset over negative timestamps: avg, sum, min, max. */
START_TEST(test_op_sliding_aggregates) {
    const char *aggs[] = {"avg", "sum", "min", "max"};
    const char *types[] = {"DOUBLE", "BIGINT", "BIGINT", "BIGINT"};
    const char *want[4][4] = {
        {"a -8 2 -30 @1", "a -3 7 5 @6", "a 2 12 70 @11", "a 7 17 100 @16"},
        {"a -8 2 -30 @1", "a -3 7 10 @6", "a 2 12 140 @11", "a 7 17 100 @16"},
        {"a -8 2 -30 @1", "a -3 7 -30 @6", "a 2 12 40 @11", "a 7 17 100 @16"},
        {"a -8 2 -30 @1", "a -3 7 40 @6", "a 2 12 100 @11", "a 7 17 100 @16"},
    };
    for (int k = 0; k < 4; k++) {
        char outs[160];
        snprintf(outs, sizeof outs, WIN_OUT("`%s` %s"), aggs[k], types[k]);
        chain_run r;
        chain_start(&r,
                    mkop("window", WIN_IN, outs,
                         "window.kind", "sliding", "window.domain", "event", "window.size", "10", "window.slide", "5",
                         "window.offset", "2", "function", "aggregate", "agg", aggs[k], "field", "1", "key.fields", "0", NULL),
                    _i, NULL);
        chain_row(&r, "a,-30", -3);
        chain_row(&r, "a,40", 4);
        chain_row(&r, "a,100", 10);
        chain_wm(&r, FLINT_MAX_WATERMARK);
        expect_out(&r.out, 5, want[k][0], want[k][1], want[k][2], want[k][3], "WM MAX");
        chain_end(&r);
    }
}
END_TEST

/* Sessions: windows merge (accumulators via reduce, lists by concatenation) and their timers with
 * them: one firing per final session. */
START_TEST(test_op_session_merging) {
    for (int mode = 0; mode < 3; mode++) {
        chain_run r;
        Flint__Graph__OperatorDef *op;
        if (mode == 0)
            op = mkop("window", WIN_IN, WIN_OUT("v BIGINT"), "window.kind", "session", "window.domain", "event",
                      "window.gap", "5", "function", "reduce", "fn", "sum_v", "key.fields", "0", NULL);
        else if (mode == 1)
            op = mkop("window", WIN_IN, "w STRING, s BIGINT, e BIGINT, n BIGINT, vs STRING", "window.kind", "session",
                      "window.domain", "event", "window.gap", "5", "function", "process", "fn", "list_v", "key.fields", "0",
                      NULL);
        else
            op = mkop("window", WIN_IN, WIN_OUT("mean STRING"), "window.kind", "session", "window.domain", "event",
                      "window.gap", "5", "function", "aggregate", "agg", "user", "agg.create", "agg_create", "agg.add",
                      "agg_add", "agg.merge", "agg_merge", "agg.result", "agg_result", "acc.schema", "n BIGINT, total BIGINT",
                      "result.schema", "mean STRING", "key.fields", "0", NULL);
        chain_start(&r, op, _i, NULL);
        chain_row(&r, "a,1", 1);          /* [1,6) */
        chain_row(&r, "a,20", 20);        /* [20,25) */
        chain_row(&r, "a,10", 10);        /* [10,15) */
        chain_row(&r, "b,3", 3);          /* another key: its own session */
        chain_row(&r, "a,6", 6);          /* [6,11) touches [1,6) and overlaps [10,15): [1,15) */
        chain_wm(&r, 8);                  /* [1,6)'s timer went with the merge: nothing fires */
        chain_row(&r, "a,15", 15);        /* [15,20) bridges to [20,25): [1,25) */
        chain_wm(&r, FLINT_MAX_WATERMARK);
        if (mode == 0) expect_out(&r.out, 4, "b 3 8 3 @7", "WM 8", "a 1 25 52 @24", "WM MAX");
        else if (mode == 1) expect_out(&r.out, 4, "b 3 8 1 3 @7", "WM 8", "a 1 25 5 1,10,6,20,15 @24", "WM MAX");
        else expect_out(&r.out, 4, "b 3 8 3/1 @7", "WM 8", "a 1 25 52/5 @24", "WM MAX");
        tm_window_op_stats st = chain_stats(&r);
        ck_assert_uint_eq(st.state_entries, 0);
        ck_assert_uint_eq(st.event_timers, 0);
        chain_end(&r);
    }
}
END_TEST

START_TEST(test_op_count_windows) {
    chain_run r;
    chain_start(&r,
                mkop("window", WIN_IN, WIN_OUT("`sum` BIGINT"), "window.kind", "count_tumbling", "window.size", "3",
                     "function", "aggregate", "agg", "sum", "field", "1", "key.fields", "0", NULL),
                _i, NULL);
    for (int i = 1; i <= 7; i++) {
        char row[16];
        snprintf(row, sizeof row, "a,%d", i);
        chain_row(&r, row, FLINT_NO_TIMESTAMP);   /* count windows need no timestamps */
        if (i == 2) chain_row(&r, "b,100", 5);
    }
    chain_wm(&r, FLINT_MAX_WATERMARK);            /* the rest never fires (Flink's GlobalWindows) */
    expect_out(&r.out, 3, "a null null 6", "a null null 15", "WM MAX");
    chain_end(&r);

    /* countWindow(4, 2): every 2 elements, the last 4. */
    chain_start(&r,
                mkop("window", WIN_IN, WIN_OUT("`sum` BIGINT"), "window.kind", "count_sliding", "window.size", "4",
                     "window.slide", "2", "function", "aggregate", "agg", "sum", "field", "1", "key.fields", "0", NULL),
                _i, NULL);
    for (int i = 1; i <= 7; i++) {
        char row[16];
        snprintf(row, sizeof row, "a,%d", i);
        chain_row(&r, row, FLINT_NO_TIMESTAMP);
    }
    expect_out(&r.out, 3, "a null null 3", "a null null 10", "a null null 18");
    chain_end(&r);
}
END_TEST

START_TEST(test_op_evictors_and_triggers) {
    /* A time evictor before a process function: the elements within 10 ms of the newest. */
    chain_run r;
    chain_start(&r,
                mkop("window", WIN_IN, "w STRING, s BIGINT, e BIGINT, n BIGINT, vs STRING", "window.kind", "tumbling",
                     "window.domain", "event", "window.size", "100", "evictor", "time", "evictor.value", "10", "function",
                     "process", "fn", "list_v", "key.fields", "0", NULL),
                _i, NULL);
    int64_t ts[] = {1, 5, 12, 33, 30};
    for (int i = 0; i < 5; i++) {
        char row[16];
        snprintf(row, sizeof row, "a,%lld", (long long)ts[i]);
        chain_row(&r, row, ts[i]);
    }
    chain_wm(&r, FLINT_MAX_WATERMARK);
    expect_out(&r.out, 2, "a 0 100 2 33,30 @99", "WM MAX");
    chain_end(&r);

    /* A count evictor before a sum: the last 2. */
    chain_start(&r,
                mkop("window", WIN_IN, WIN_OUT("`sum` BIGINT"), "window.kind", "tumbling", "window.domain", "event",
                     "window.size", "100", "evictor", "count", "evictor.value", "2", "function", "aggregate", "agg", "sum",
                     "field", "1", "key.fields", "0", NULL),
                _i, NULL);
    for (int i = 0; i < 5; i++) {
        char row[16];
        snprintf(row, sizeof row, "a,%lld", (long long)ts[i]);
        chain_row(&r, row, ts[i]);
    }
    chain_wm(&r, FLINT_MAX_WATERMARK);
    expect_out(&r.out, 2, "a 0 100 63 @99", "WM MAX");
    chain_end(&r);

    /* A count trigger on event-time windows, then purging: fires every 2 elements, never on time. */
    for (int purge = 0; purge < 2; purge++) {
        chain_start(&r,
                    mkop("window", WIN_IN, WIN_OUT("`count` BIGINT"), "window.kind", "tumbling", "window.domain", "event",
                         "window.size", "100", "trigger", "count", "trigger.count", "2", "trigger.purging", purge ? "1" : "0",
                         "function", "aggregate", "agg", "count", "key.fields", "0", NULL),
                    _i, NULL);
        for (int i = 1; i <= 5; i++) chain_row(&r, "a,1", i);
        chain_wm(&r, FLINT_MAX_WATERMARK);
        if (purge) expect_out(&r.out, 3, "a 0 100 2 @99", "a 0 100 2 @99", "WM MAX");
        else expect_out(&r.out, 3, "a 0 100 2 @99", "a 0 100 4 @99", "WM MAX");
        ck_assert_uint_eq(chain_stats(&r).state_entries, 0);
        chain_end(&r);
    }
}
END_TEST

START_TEST(test_op_processing_time) {
    chain_run r;
    chain_start(&r,
                mkop("window", WIN_IN, WIN_OUT("`count` BIGINT"), "window.kind", "tumbling", "window.domain", "processing",
                     "window.size", "1000", "function", "aggregate", "agg", "count", "key.fields", "0", NULL),
                _i, NULL);
    int64_t before = tm_timers_now_ms();
    chain_row(&r, "a,1", FLINT_NO_TIMESTAMP);   /* processing time needs no timestamps */
    chain_row(&r, "a,2", 5);
    int64_t after = tm_timers_now_ms();
    ck_assert_uint_eq(chain_stats(&r).processing_timers, before / 1000 == after / 1000 ? 1 : 2);
    chain_wm(&r, FLINT_MAX_WATERMARK);          /* event time does not fire it */
    ck_assert_int_eq(r.out.n, 1);
    ck_assert_int_eq(tm_timers_fire_processing_time(r.rt.timers, after + 2000), 0);
    long long s, e, n, at;
    ck_assert_int_ge(r.out.n, 2);
    ck_assert_int_eq(sscanf(r.out.lines[1], "a %lld %lld %lld @%lld", &s, &e, &n, &at), 4);
    ck_assert(e - s == 1000 && at == e - 1 && s % 1000 == 0 && s <= after && e > before);
    ck_assert_uint_eq(chain_stats(&r).state_entries, 0);
    chain_end(&r);
}
END_TEST

START_TEST(test_op_window_join) {
    chain_run r;
    chain_start(&r,
                mkop("window_join", "k STRING, a BIGINT", "k STRING, a BIGINT, b BIGINT", "window.kind", "tumbling",
                     "window.domain", "event", "window.size", "10", "function", "join", "fn", "join_ab", "key.fields", "0",
                     "key2.fields", "0", "in2.schema", "k STRING, b BIGINT", NULL),
                _i, NULL);
    chain_row2(&r, 1, "k,1", 1);
    chain_row2(&r, 1, "k,2", 2);
    chain_row2(&r, 2, "k,5", 5);
    chain_row2(&r, 2, "j,6", 6);      /* no j on the left in [0,10) */
    chain_row2(&r, 1, "j,15", 15);
    chain_row2(&r, 2, "j,12", 12);
    chain_row2(&r, 2, "k,13", 13);
    chain_wm(&r, FLINT_MAX_WATERMARK);
    expect_out(&r.out, 4, "k 1 5 @9", "k 2 5 @9", "j 15 12 @19", "WM MAX");
    ck_assert_uint_eq(chain_stats(&r).state_entries, 0);
    chain_end(&r);

    /* Session join: both sides' rows make one session per key. */
    chain_start(&r,
                mkop("window_join", "k STRING, a BIGINT", "k STRING, a BIGINT, b BIGINT", "window.kind", "session",
                     "window.domain", "event", "window.gap", "5", "function", "join", "fn", "join_ab", "key.fields", "0",
                     "key2.fields", "0", "in2.schema", "k STRING, b BIGINT", NULL),
                _i, NULL);
    chain_row2(&r, 1, "k,1", 1);
    chain_row2(&r, 2, "k,9", 9);      /* [9,14): apart */
    chain_row2(&r, 2, "k,4", 4);      /* [4,9) bridges: [1,14) */
    chain_row2(&r, 2, "k,30", 30);
    chain_wm(&r, FLINT_MAX_WATERMARK);
    expect_out(&r.out, 3, "k 1 9 @13", "k 1 4 @13", "WM MAX");
    chain_end(&r);
}
END_TEST

START_TEST(test_op_interval_join) {
    chain_run r;
    chain_start(&r,
                mkop("interval_join", "k STRING, a BIGINT", "k STRING, a BIGINT, b BIGINT", "lower", "-2", "upper", "3",
                     "fn", "join_ab", "key.fields", "0", "key2.fields", "0", "in2.schema", "k STRING, b BIGINT", NULL),
                _i, NULL);
    chain_row2(&r, 1, "k,10", 10);
    chain_row2(&r, 2, "k,8", 8);      /* 8 in [8, 13] */
    chain_row2(&r, 2, "k,13", 13);    /* 13 in [8, 13] */
    chain_row2(&r, 2, "k,14", 14);    /* no */
    chain_row2(&r, 2, "j,10", 10);    /* another key */
    chain_row2(&r, 1, "k,11", 11);    /* [9, 14]: 13 and 14 */
    tm_window_op_stats st = chain_stats(&r);
    ck_assert_uint_eq(st.state_entries, 6);
    chain_wm(&r, 12);                 /* right 8 could join lefts up to 10: it goes (j's 10 stays to 12) */
    st = chain_stats(&r);
    ck_assert_uint_eq(st.state_entries, 5);
    chain_wm(&r, 20);
    st = chain_stats(&r);
    ck_assert_uint_eq(st.state_entries, 0);
    ck_assert_uint_eq(st.event_timers, 0);
    chain_row2(&r, 2, "k,19", 19);    /* behind the watermark: late, dropped */
    ck_assert_int_eq(chain_stats(&r).late_dropped, 1);
    /* The buffered rows of a key come in no particular order: sort each new row's pairs. */
    ck_assert_int_eq(r.out.n, 6);
    qsort(r.out.lines[2], 2, sizeof r.out.lines[0], cmp_line);
    expect_out(&r.out, 6, "k 10 8 @10", "k 10 13 @13", "k 11 13 @13", "k 11 14 @14", "WM 12", "WM 20");
    chain_end(&r);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------------------------------------- */

int main(void) {
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("assigners");
    tcase_add_test(tc, test_window_start);
    tcase_add_test(tc, test_assign_tumbling);
    tcase_add_test(tc, test_assign_sliding);
    tcase_add_test(tc, test_assign_session_and_count);
    tcase_add_test(tc, test_spec_check);
    tcase_add_test(tc, test_namespace_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("merging");
    tcase_add_test(tc, test_session_merging);
    tcase_add_test(tc, test_session_merging_random);
    suite_add_tcase(s, tc);
    tc = tcase_create("triggers");
    tcase_add_test(tc, test_trigger_event_time);
    tcase_add_test(tc, test_trigger_processing_time);
    tcase_add_test(tc, test_trigger_count);
    tcase_add_test(tc, test_evictors);
    suite_add_tcase(s, tc);
    tc = tcase_create("lateness");
    tcase_add_test(tc, test_lateness);
    tcase_add_test(tc, test_interval_bounds);
    tcase_add_test(tc, test_interval_cleanup_safe);
    suite_add_tcase(s, tc);
    tc = tcase_create("operators");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_op_lateness_and_late_data, 0, 2);
    tcase_add_loop_test(tc, test_op_sliding_aggregates, 0, 2);
    tcase_add_loop_test(tc, test_op_session_merging, 0, 2);
    tcase_add_loop_test(tc, test_op_count_windows, 0, 2);
    tcase_add_loop_test(tc, test_op_evictors_and_triggers, 0, 2);
    tcase_add_loop_test(tc, test_op_processing_time, 0, 2);
    tcase_add_loop_test(tc, test_op_window_join, 0, 2);
    tcase_add_loop_test(tc, test_op_interval_join, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("graph");
    tcase_add_test(tc, test_graph_window_sum);
    tcase_add_test(tc, test_graph_window_reduce_process);
    tcase_add_test(tc, test_graph_window_errors);
    tcase_add_test(tc, test_graph_joins);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

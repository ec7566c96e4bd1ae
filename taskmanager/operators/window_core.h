/* The decisions of windows, apart from state and timers (Flink's WindowAssigner, MergingWindowSet,
 * Trigger and Evictor classes, and the lateness rules of WindowOperator), as pure functions that
 * the window and join operators (window.c, join.c) drive and the unit tests check one by one.
 *
 * Windows are [start, end) in ms; their max timestamp is end - 1. Count windows live in the one
 * global window (start INT64_MIN, end INT64_MAX, max timestamp INT64_MAX). A window is a state
 * namespace: 16 bytes, start then end, each big-endian with the sign bit flipped, so that a
 * sorted store (RocksDB) keeps a key's windows in start order. */
#ifndef FLINT_TM_WINDOW_CORE_H
#define FLINT_TM_WINDOW_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint/flint.h"

typedef struct tm_window {
    int64_t start, end;
} tm_window;

#define TM_WINDOW_GLOBAL ((tm_window){INT64_MIN, INT64_MAX})
#define TM_WINDOW_NS_LEN 16

static inline bool tm_window_is_global(tm_window w) { return w.start == INT64_MIN && w.end == INT64_MAX; }
static inline int64_t tm_window_max_ts(tm_window w) { return w.end == INT64_MAX ? INT64_MAX : w.end - 1; }
static inline bool tm_window_equal(tm_window a, tm_window b) { return a.start == b.start && a.end == b.end; }
/* Flink's TimeWindow#intersects: touching windows ([0,5) and [5,9)) intersect, so sessions merge. */
static inline bool tm_window_intersects(tm_window a, tm_window b) { return a.start <= b.end && a.end >= b.start; }

void tm_window_ns_encode(tm_window w, uint8_t out[TM_WINDOW_NS_LEN]);
tm_window tm_window_ns_decode(const uint8_t *ns);

/* ---- assigners ------------------------------------------------------------------------------ */
bool tm_window_is_count(flint_window_kind k);
bool tm_window_is_merging(flint_window_kind k);
/* Event-time time windows (count windows are neither event nor processing time). */
bool tm_window_is_event_time(const flint_window_spec *s);
bool tm_window_is_processing_time(const flint_window_spec *s);
/* NULL when the spec is valid, else what is wrong (Flink's constructor checks: size > 0,
 * |offset| < size (tumbling) or < slide (sliding), slide > 0, gap > 0). */
const char *tm_window_spec_check(const flint_window_spec *s);
/* The start of the window of size (> 0) with offset holding ts: floor((ts - offset) / size) *
 * size + offset, correct for negative timestamps. */
int64_t tm_window_start(int64_t ts, int64_t offset, int64_t size);
/* How many windows one element may be assigned to (sliding: ceil(size / slide), else 1). */
int tm_window_max_assigned(const flint_window_spec *s);
/* The windows of an element with timestamp ts (event time) or arriving at ts (processing time):
 * tumbling one, sliding ceil(size/slide) windows from the latest start down (Flink's order),
 * session [ts, ts + gap), count windows the global window. Writes at most max; returns how many
 * there are. */
int tm_window_assign(const flint_window_spec *s, int64_t ts, tm_window *out, int max);

/* ---- merging window sets (sessions) ------------------------------------------------------------ */
/* The active windows of one key, sorted by start; no two of them intersect. */
typedef struct tm_window_set {
    tm_window *w;
    int n, cap;
} tm_window_set;

void tm_window_set_free(tm_window_set *s);
void tm_window_set_add(tm_window_set *s, tm_window w);     /* keeps the order */
bool tm_window_set_remove(tm_window_set *s, tm_window w);
bool tm_window_set_contains(const tm_window_set *s, tm_window w);

/* Flink's MergingWindowSet#addWindow with TimeWindow#mergeWindows: add w to the set, merging it
 * with every active window it intersects (transitively). *result is the window the element now
 * belongs to; merged[0..*n_merged) (room for s->n entries) are the previously active windows that
 * were merged into *result and left the set: their contents, trigger state and timers move to
 * *result (none of them equals *result). *n_merged == 0 means no merge happened (w is new and
 * alone, or lies within an active window, which is then *result). */
void tm_window_set_add_merging(tm_window_set *s, tm_window w, tm_window *result, tm_window *merged,
                               int *n_merged);

/* ---- triggers ---------------------------------------------------------------------------------- */
typedef enum tm_trigger_result {
    TM_TRIGGER_CONTINUE = 0,
    TM_TRIGGER_FIRE = 1,
    TM_TRIGGER_PURGE = 2,
    TM_TRIGGER_FIRE_AND_PURGE = 3
} tm_trigger_result;

typedef enum tm_trigger_kind { TM_TRIG_EVENT_TIME, TM_TRIG_PROCESSING_TIME, TM_TRIG_COUNT } tm_trigger_kind;

typedef struct tm_trigger {
    tm_trigger_kind kind;
    int64_t count;              /* TM_TRIG_COUNT */
    bool purging;               /* Flink's PurgingTrigger around it */
} tm_trigger;

/* What a trigger may do and see for one (key, window). The count state is the window's element
 * count of a count trigger (kept by the operator in the window's namespace). */
typedef struct tm_trigger_ctx {
    int64_t watermark;
    int64_t processing_time;
    void *ud;
    void (*register_timer)(void *ud, flint_time_domain d, int64_t time);
    void (*delete_timer)(void *ud, flint_time_domain d, int64_t time);
    int64_t (*count_add)(void *ud, int64_t delta);    /* returns the new count */
    void (*count_clear)(void *ud);
} tm_trigger_ctx;

/* The trigger windows of spec get when none is set (and with user trigger t, which may be
 * FLINT_TRIGGER_DEFAULT with purging): event time, processing time, count(size) purging for
 * tumbling count windows, count(slide) for sliding count windows (with a count evictor of size).
 * NULL, or a message when t does not fit (a count trigger without a count). */
const char *tm_trigger_resolve(const flint_window_spec *spec, const flint_trigger *t, tm_trigger *out);

tm_trigger_result tm_trigger_on_element(const tm_trigger *t, tm_window w, tm_trigger_ctx *c);
tm_trigger_result tm_trigger_on_time(const tm_trigger *t, tm_window w, flint_time_domain d, int64_t time,
                                     tm_trigger_ctx *c);
/* Windows merged into w (the count state was merged by the operator): re-register w's timer. */
void tm_trigger_on_merge(const tm_trigger *t, tm_window w, tm_trigger_ctx *c);
/* The window is purged for good: drop its timer and count. */
void tm_trigger_clear(const tm_trigger *t, tm_window w, tm_trigger_ctx *c);

/* ---- evictors ---------------------------------------------------------------------------------- */
typedef enum tm_evictor_kind { TM_EVICT_NONE, TM_EVICT_COUNT, TM_EVICT_TIME } tm_evictor_kind;
typedef struct tm_evictor {
    tm_evictor_kind kind;
    int64_t value;              /* count, or time in ms */
} tm_evictor;

/* Flink's CountEvictor / TimeEvictor (evictBefore): mark in evict[0..n) the elements (in the
 * window's order, timestamps ts[]) that go before the function runs. Count: all but the last
 * value. Time: those with ts <= max(ts) - value (none when no element has a timestamp). Returns
 * how many are kept. */
int tm_evictor_apply(const tm_evictor *e, const int64_t *ts, int n, bool *evict);

/* ---- lateness ------------------------------------------------------------------------------------ */
/* When a window's state goes: event time max_ts + allowed lateness (INT64_MAX on overflow),
 * processing time max_ts; the global window never (INT64_MAX). */
int64_t tm_window_cleanup_time(const flint_window_spec *s, tm_window w, int64_t allowed_lateness);
/* Flink's isWindowLate: an event-time window whose cleanup time the watermark has reached. */
bool tm_window_is_late(const flint_window_spec *s, tm_window w, int64_t allowed_lateness, int64_t watermark);
/* Flink's isElementLate: event time and ts + allowed lateness <= watermark. An element that no
 * window took (all its windows late) and that is late goes to the late-data side output. */
bool tm_element_is_late(const flint_window_spec *s, int64_t ts, int64_t allowed_lateness, int64_t watermark);

/* ---- interval join --------------------------------------------------------------------------------- */
/* b joins a when b_ts in [a_ts + lower, a_ts + upper] (bounds inclusive, no overflow). */
bool tm_interval_match(int64_t a_ts, int64_t b_ts, int64_t lower, int64_t upper);
/* When a buffered element can no longer join (Flink's IntervalJoinOperator): a left element at ts
 * is kept until ts + upper (ts when upper <= 0), a right one until ts - lower (ts when lower >= 0). */
int64_t tm_interval_cleanup_left(int64_t ts, int64_t upper);
int64_t tm_interval_cleanup_right(int64_t ts, int64_t lower);

/* Saturating addition of timestamps. */
int64_t tm_time_add(int64_t a, int64_t b);

#endif

/* Window decisions: assigners, merging window sets, triggers, evictors, lateness and interval
 * bounds (see window_core.h). No state, no timers, no allocation except the window sets. */
#include <stdlib.h>
#include <string.h>

#include "operators/window_core.h"
#include "util/alloc.h"

int64_t tm_time_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static void put_be(uint8_t *p, int64_t v) {
    uint64_t u = (uint64_t)v ^ (UINT64_C(1) << 63);
    for (int i = 7; i >= 0; i--, u >>= 8) p[i] = (uint8_t)u;
}

static int64_t get_be(const uint8_t *p) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | p[i];
    return (int64_t)(u ^ (UINT64_C(1) << 63));
}

void tm_window_ns_encode(tm_window w, uint8_t out[TM_WINDOW_NS_LEN]) {
    put_be(out, w.start);
    put_be(out + 8, w.end);
}

tm_window tm_window_ns_decode(const uint8_t *ns) { return (tm_window){get_be(ns), get_be(ns + 8)}; }

/* ---- assigners --------------------------------------------------------------------------------- */

bool tm_window_is_count(flint_window_kind k) {
    return k == FLINT_WINDOW_COUNT_TUMBLING || k == FLINT_WINDOW_COUNT_SLIDING;
}

bool tm_window_is_merging(flint_window_kind k) { return k == FLINT_WINDOW_SESSION; }

bool tm_window_is_event_time(const flint_window_spec *s) {
    return !tm_window_is_count(s->kind) && s->domain == FLINT_EVENT_TIME;
}

bool tm_window_is_processing_time(const flint_window_spec *s) {
    return !tm_window_is_count(s->kind) && s->domain == FLINT_PROCESSING_TIME;
}

const char *tm_window_spec_check(const flint_window_spec *s) {
    if (!tm_window_is_count(s->kind) && s->domain != FLINT_EVENT_TIME && s->domain != FLINT_PROCESSING_TIME)
        return "the time domain must be FLINT_EVENT_TIME or FLINT_PROCESSING_TIME";
    switch (s->kind) {
    case FLINT_WINDOW_TUMBLING:
        if (s->size <= 0) return "a tumbling window needs a size > 0 ms";
        if (s->offset <= -s->size || s->offset >= s->size)
            return "a tumbling window's offset must satisfy abs(offset) < size";
        return NULL;
    case FLINT_WINDOW_SLIDING:
        if (s->size <= 0 || s->slide <= 0) return "a sliding window needs a size > 0 ms and a slide > 0 ms";
        if (s->offset <= -s->slide || s->offset >= s->slide)
            return "a sliding window's offset must satisfy abs(offset) < slide";
        if (s->size / s->slide > 100000) return "a sliding window's size / slide must be at most 100000";
        return NULL;
    case FLINT_WINDOW_SESSION:
        if (s->gap <= 0) return "a session window needs a gap > 0 ms";
        return NULL;
    case FLINT_WINDOW_COUNT_TUMBLING:
        if (s->size <= 0) return "a count window needs a size > 0 elements";
        return NULL;
    case FLINT_WINDOW_COUNT_SLIDING:
        if (s->size <= 0 || s->slide <= 0) return "a sliding count window needs a size > 0 and a slide > 0 elements";
        return NULL;
    }
    return "unknown window kind";
}

int64_t tm_window_start(int64_t ts, int64_t offset, int64_t size) {
    int64_t rem = (int64_t)(((__int128)ts - offset) % size);
    if (rem < 0) rem += size;
    int64_t start;
    if (__builtin_sub_overflow(ts, rem, &start)) return INT64_MIN; /* the window starts before time */
    return start;
}

int tm_window_max_assigned(const flint_window_spec *s) {
    if (s->kind != FLINT_WINDOW_SLIDING) return 1;
    return (int)((s->size + s->slide - 1) / s->slide);
}

int tm_window_assign(const flint_window_spec *s, int64_t ts, tm_window *out, int max) {
    switch (s->kind) {
    case FLINT_WINDOW_TUMBLING: {
        int64_t start = tm_window_start(ts, s->offset, s->size);
        if (max > 0) out[0] = (tm_window){start, tm_time_add(start, s->size)};
        return 1;
    }
    case FLINT_WINDOW_SLIDING: {
        int n = 0;
        int64_t last = tm_window_start(ts, s->offset, s->slide);
        for (int64_t start = last; start > tm_time_add(ts, -s->size); start -= s->slide) {
            if (n < max) out[n] = (tm_window){start, tm_time_add(start, s->size)};
            n++;
            if (start < INT64_MIN + s->slide) break;
        }
        return n;
    }
    case FLINT_WINDOW_SESSION:
        if (max > 0) out[0] = (tm_window){ts, tm_time_add(ts, s->gap)};
        return 1;
    case FLINT_WINDOW_COUNT_TUMBLING:
    case FLINT_WINDOW_COUNT_SLIDING:
        if (max > 0) out[0] = TM_WINDOW_GLOBAL;
        return 1;
    }
    return 0;
}

/* ---- merging window sets ------------------------------------------------------------------------- */

void tm_window_set_free(tm_window_set *s) {
    free(s->w);
    memset(s, 0, sizeof *s);
}

void tm_window_set_add(tm_window_set *s, tm_window w) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->w = xrealloc(s->w, (size_t)s->cap * sizeof *s->w);
    }
    int i = s->n;
    while (i > 0 && (s->w[i - 1].start > w.start || (s->w[i - 1].start == w.start && s->w[i - 1].end > w.end))) {
        s->w[i] = s->w[i - 1];
        i--;
    }
    s->w[i] = w;
    s->n++;
}

bool tm_window_set_remove(tm_window_set *s, tm_window w) {
    for (int i = 0; i < s->n; i++)
        if (tm_window_equal(s->w[i], w)) {
            memmove(s->w + i, s->w + i + 1, (size_t)(s->n - i - 1) * sizeof *s->w);
            s->n--;
            return true;
        }
    return false;
}

bool tm_window_set_contains(const tm_window_set *s, tm_window w) {
    for (int i = 0; i < s->n; i++)
        if (tm_window_equal(s->w[i], w)) return true;
    return false;
}

void tm_window_set_add_merging(tm_window_set *s, tm_window w, tm_window *result, tm_window *merged,
                               int *n_merged) {
    /* TimeWindow.mergeWindows sorts all windows by start and merges runs that intersect the
     * current merge; the active windows never intersect each other, so only the run around w
     * merges. Collect it: the windows intersecting the growing union, in start order. */
    *n_merged = 0;
    tm_window u = w;
    bool grew = true;
    bool *in = s->n ? xcalloc((size_t)s->n, sizeof *in) : NULL;
    while (grew) {
        grew = false;
        for (int i = 0; i < s->n; i++) {
            if (in[i] || !tm_window_intersects(s->w[i], u)) continue;
            in[i] = true;
            if (s->w[i].start < u.start) u.start = s->w[i].start;
            if (s->w[i].end > u.end) u.end = s->w[i].end;
            grew = true;
        }
    }
    *result = u;
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (in[i]) {
            if (!tm_window_equal(s->w[i], u)) merged[(*n_merged)++] = s->w[i];
            continue;
        }
        s->w[k++] = s->w[i];
    }
    s->n = k;
    free(in);
    tm_window_set_add(s, u);
}

/* ---- triggers ------------------------------------------------------------------------------------- */

const char *tm_trigger_resolve(const flint_window_spec *spec, const flint_trigger *t, tm_trigger *out) {
    memset(out, 0, sizeof *out);
    switch (spec->kind) {
    case FLINT_WINDOW_COUNT_TUMBLING:
        *out = (tm_trigger){TM_TRIG_COUNT, spec->size, true};
        break;
    case FLINT_WINDOW_COUNT_SLIDING:
        *out = (tm_trigger){TM_TRIG_COUNT, spec->slide, false};
        break;
    default:
        out->kind = spec->domain == FLINT_PROCESSING_TIME ? TM_TRIG_PROCESSING_TIME : TM_TRIG_EVENT_TIME;
        break;
    }
    if (!t) return NULL;
    switch (t->kind) {
    case FLINT_TRIGGER_DEFAULT:
        if (t->purging) out->purging = true;
        return NULL;
    case FLINT_TRIGGER_EVENT_TIME:
        if (tm_window_is_count(spec->kind)) return "an event-time trigger never fires on count windows";
        *out = (tm_trigger){TM_TRIG_EVENT_TIME, 0, t->purging};
        return NULL;
    case FLINT_TRIGGER_PROCESSING_TIME:
        if (tm_window_is_count(spec->kind)) return "a processing-time trigger never fires on count windows";
        *out = (tm_trigger){TM_TRIG_PROCESSING_TIME, 0, t->purging};
        return NULL;
    case FLINT_TRIGGER_COUNT:
        if (t->count <= 0) return "a count trigger needs a count > 0";
        *out = (tm_trigger){TM_TRIG_COUNT, t->count, t->purging};
        return NULL;
    }
    return "unknown trigger kind";
}

static tm_trigger_result purge_if(const tm_trigger *t, tm_trigger_result r) {
    return t->purging && r == TM_TRIGGER_FIRE ? TM_TRIGGER_FIRE_AND_PURGE : r;
}

tm_trigger_result tm_trigger_on_element(const tm_trigger *t, tm_window w, tm_trigger_ctx *c) {
    switch (t->kind) {
    case TM_TRIG_EVENT_TIME:
        /* A window whose end the watermark passed already (allowed lateness) fires at once. */
        if (tm_window_max_ts(w) <= c->watermark) return purge_if(t, TM_TRIGGER_FIRE);
        c->register_timer(c->ud, FLINT_EVENT_TIME, tm_window_max_ts(w));
        return TM_TRIGGER_CONTINUE;
    case TM_TRIG_PROCESSING_TIME:
        c->register_timer(c->ud, FLINT_PROCESSING_TIME, tm_window_max_ts(w));
        return TM_TRIGGER_CONTINUE;
    case TM_TRIG_COUNT:
        if (c->count_add(c->ud, 1) >= t->count) {
            c->count_clear(c->ud);
            return purge_if(t, TM_TRIGGER_FIRE);
        }
        return TM_TRIGGER_CONTINUE;
    }
    return TM_TRIGGER_CONTINUE;
}

tm_trigger_result tm_trigger_on_time(const tm_trigger *t, tm_window w, flint_time_domain d, int64_t time,
                                     tm_trigger_ctx *c) {
    (void)c;
    if (t->kind == TM_TRIG_EVENT_TIME && d == FLINT_EVENT_TIME && time == tm_window_max_ts(w))
        return purge_if(t, TM_TRIGGER_FIRE);
    if (t->kind == TM_TRIG_PROCESSING_TIME && d == FLINT_PROCESSING_TIME) return purge_if(t, TM_TRIGGER_FIRE);
    return TM_TRIGGER_CONTINUE;
}

void tm_trigger_on_merge(const tm_trigger *t, tm_window w, tm_trigger_ctx *c) {
    int64_t max = tm_window_max_ts(w);
    if (t->kind == TM_TRIG_EVENT_TIME && max > c->watermark) c->register_timer(c->ud, FLINT_EVENT_TIME, max);
    if (t->kind == TM_TRIG_PROCESSING_TIME && max > c->processing_time)
        c->register_timer(c->ud, FLINT_PROCESSING_TIME, max);
}

void tm_trigger_clear(const tm_trigger *t, tm_window w, tm_trigger_ctx *c) {
    switch (t->kind) {
    case TM_TRIG_EVENT_TIME: c->delete_timer(c->ud, FLINT_EVENT_TIME, tm_window_max_ts(w)); break;
    case TM_TRIG_PROCESSING_TIME: c->delete_timer(c->ud, FLINT_PROCESSING_TIME, tm_window_max_ts(w)); break;
    case TM_TRIG_COUNT: c->count_clear(c->ud); break;
    }
}

/* ---- evictors ---------------------------------------------------------------------------------------- */

int tm_evictor_apply(const tm_evictor *e, const int64_t *ts, int n, bool *evict) {
    for (int i = 0; i < n; i++) evict[i] = false;
    if (e->kind == TM_EVICT_COUNT) {
        if (n <= e->value) return n;
        int64_t drop = n - e->value;
        for (int64_t i = 0; i < drop; i++) evict[i] = true;
        return (int)e->value;
    }
    if (e->kind == TM_EVICT_TIME) {
        int64_t max = INT64_MIN;
        bool any = false;
        for (int i = 0; i < n; i++)
            if (ts[i] != FLINT_NO_TIMESTAMP) {
                any = true;
                if (ts[i] > max) max = ts[i];
            }
        if (!any) return n;
        int64_t cutoff = tm_time_add(max, -e->value);
        int kept = n;
        for (int i = 0; i < n; i++)
            if (ts[i] != FLINT_NO_TIMESTAMP && ts[i] <= cutoff) {
                evict[i] = true;
                kept--;
            }
        return kept;
    }
    return n;
}

/* ---- lateness -------------------------------------------------------------------------------------------- */

int64_t tm_window_cleanup_time(const flint_window_spec *s, tm_window w, int64_t allowed_lateness) {
    if (tm_window_is_global(w)) return INT64_MAX;
    int64_t max = tm_window_max_ts(w);
    if (tm_window_is_event_time(s)) return tm_time_add(max, allowed_lateness);
    return max;
}

bool tm_window_is_late(const flint_window_spec *s, tm_window w, int64_t allowed_lateness, int64_t watermark) {
    return tm_window_is_event_time(s) && tm_window_cleanup_time(s, w, allowed_lateness) <= watermark;
}

bool tm_element_is_late(const flint_window_spec *s, int64_t ts, int64_t allowed_lateness, int64_t watermark) {
    return tm_window_is_event_time(s) && tm_time_add(ts, allowed_lateness) <= watermark;
}

/* ---- interval join ------------------------------------------------------------------------------------------ */

bool tm_interval_match(int64_t a_ts, int64_t b_ts, int64_t lower, int64_t upper) {
    return tm_time_add(a_ts, lower) <= b_ts && b_ts <= tm_time_add(a_ts, upper);
}

int64_t tm_interval_cleanup_left(int64_t ts, int64_t upper) { return upper > 0 ? tm_time_add(ts, upper) : ts; }
int64_t tm_interval_cleanup_right(int64_t ts, int64_t lower) { return lower < 0 ? tm_time_add(ts, -lower) : ts; }


/* Event time at the sources of a pipeline: the timestamps_watermarks operator (Flink's
 * TimestampsAndWatermarksOperator with a bounded out-of-orderness WatermarkGenerator and
 * WatermarksWithIdleness). Each row gets its timestamp from a field or a user function; the
 * watermark max timestamp - bound - 1 goes out every pipeline.auto-watermark-interval (a tick of
 * the task's mailbox loop, never on the per-record path); with idleness, a subtask that saw no row
 * for that long says so downstream until its next row. Upstream watermarks are swallowed except
 * the final FLINT_MAX_WATERMARK (end of input). */
#include <stdlib.h>

#include "operators/operator.h"
#include "operators/time_ops.h"
#include "util/alloc.h"

typedef struct ts_state {
    int field;                 /* the timestamp field, or -1 with fn */
    flint_type type;
    flint_timestamp_fn fn;
    int64_t bound, idleness;
    int64_t max_ts;            /* INT64_MIN before the first row */
    int64_t emitted;           /* the last watermark sent */
    int64_t last_active_ms;    /* monotonic: when a tick last saw rows */
    bool saw_row;              /* rows since the last tick */
    bool idle;
} ts_state;

static int ts_tick(tm_op *op, int64_t now_ms);

int64_t tm_bounded_watermark(int64_t max_ts, int64_t bound) {
    if (max_ts == INT64_MIN) return INT64_MIN;
    if (max_ts < INT64_MIN + bound + 1) return INT64_MIN;
    return max_ts - bound - 1;
}

static int ts_open(tm_op *op) {
    ts_state *s = XNEW(ts_state);
    op->state = s;
    s->field = -1;
    s->max_ts = INT64_MIN;
    s->emitted = INT64_MIN;
    int64_t f;
    int rc = tm_op_param_int(op, "ts.field", -1, &f);
    if (!rc) rc = tm_op_param_int(op, "out_of_orderness", 0, &s->bound);
    if (!rc) rc = tm_op_param_int(op, "idleness", 0, &s->idleness);
    if (rc) return rc;
    if (f >= 0) {
        if (!op->in_schema || f >= flint_schema_field_count(op->in_schema))
            return tm_op_fail(op, "timestamp field %lld out of range", (long long)f);
        s->field = (int)f;
        s->type = flint_schema_field_type(op->in_schema, s->field);
    } else {
        void (*fn)(void);
        rc = tm_op_symbol(op, "fn", true, &fn);
        if (rc) return rc;
        s->fn = (flint_timestamp_fn)fn;
        rc = tm_op_udf_open(op);
        if (rc) return rc;
    }
    int64_t every = op->rt->auto_watermark_interval_ms > 0 ? op->rt->auto_watermark_interval_ms : 200;
    tm_op_every(op, every, ts_tick);
    return FLINT_OK;
}

static int ts_process(tm_op *op, const flint_row *row) {
    ts_state *s = op->state;
    int64_t ts;
    if (s->field >= 0) {
        if (__builtin_expect(flint_row_is_null(row, s->field), 0))
            return tm_op_fail(op, "the timestamp field '%s' is NULL", flint_schema_field_name(op->in_schema, s->field));
        ts = s->type == FLINT_INT ? flint_row_get_int(row, s->field) : flint_row_get_long(row, s->field);
    } else {
        ts = s->fn(&op->ctx, row);
        if (op->ctx.failed) return tm_op_check_ctx(op);
    }
    s->saw_row = true;
    if (__builtin_expect(s->idle, 0)) {
        s->idle = false;
        int rc = tm_op_emit_idle(op, false);
        if (rc) return rc;
    }
    if (ts > s->max_ts) s->max_ts = ts;
    return tm_op_emit_ts(op, row, ts);
}

static int ts_tick(tm_op *op, int64_t now_ms) {
    ts_state *s = op->state;
    if (s->emitted == FLINT_MAX_WATERMARK) return FLINT_OK;
    if (s->saw_row || !s->last_active_ms) {
        s->saw_row = false;
        s->last_active_ms = now_ms;
    } else if (s->idleness > 0 && !s->idle && now_ms - s->last_active_ms >= s->idleness) {
        s->idle = true;
        return tm_op_emit_idle(op, true);
    }
    if (s->idle) return FLINT_OK;
    int64_t wm = tm_bounded_watermark(s->max_ts, s->bound);
    if (wm <= s->emitted) return FLINT_OK;
    s->emitted = wm;
    return tm_op_emit_watermark(op, wm);
}

/* Upstream watermarks: only the end of input passes. */
static int ts_watermark(tm_op *op, int64_t wm) {
    ts_state *s = op->state;
    if (wm != FLINT_MAX_WATERMARK || s->emitted == FLINT_MAX_WATERMARK) return FLINT_OK;
    if (s->idle) {
        s->idle = false;
        int rc = tm_op_emit_idle(op, false);
        if (rc) return rc;
    }
    s->emitted = FLINT_MAX_WATERMARK;
    return tm_op_emit_watermark(op, wm);
}

static void ts_close(tm_op *op) {
    ts_state *s = op->state;
    if (!s) return;
    if (s->fn) tm_op_udf_close(op);
    free(s);
    op->state = NULL;
}

const tm_op_kind tm_op_TIMESTAMPS = {.name = "timestamps_watermarks", .open = ts_open, .process = ts_process,
                                     .close = ts_close, .watermark = ts_watermark};

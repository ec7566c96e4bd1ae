/* The interval join (Flink's IntervalJoinOperator): rows a of the first input and b of the second
 * with equal keys and b.ts in [a.ts + lower, a.ts + upper] (event time, bounds inclusive).
 *
 * Both sides are buffered in the state backend, per key, in a map from timestamp (8 bytes,
 * big-endian, sign flipped) to the rows with that timestamp (a blob of 4-byte-length-prefixed
 * rows, the list layout of tm_state.h). A new row is added to its side's buffer and joined with
 * every buffered row of the other side whose timestamp fits; the join function builds one output
 * row per pair, emitted with timestamp max(a.ts, b.ts). A row whose timestamp is below the
 * watermark is late and dropped, as Flink does. Cleanup: each buffered timestamp gets an
 * event-time timer (namespace: side byte + timestamp) one millisecond after the last moment a row
 * of the other side could still join it (a.ts + upper, resp. b.ts - lower); when the watermark
 * passes it the bucket goes. (Flink removes at that moment itself, which can lose a pair with a
 * row exactly at the watermark; one millisecond later never does.) */
#include <stdlib.h>
#include <string.h>

#include "operators/keys.h"
#include "operators/operator.h"
#include "operators/time_ops.h"
#include "operators/window_core.h"
#include "operators/window_ops.h"
#include "state/tm_state.h"
#include "util/alloc.h"

typedef struct ij_state {
    tm_op *op;
    tm_keys keys[2];
    flint_schema *schema[2];          /* [0] borrowed (op->in_schema), [1] owned */
    flint_schema *key_schema;
    flint_row_builder keyb, outb;
    bool keyb_ready, outb_ready;
    int64_t lower, upper;
    flint_join_fn join;
    tm_state_backend *backend;
    tm_state *buf[2];
    uint8_t *tmp;                     /* a bucket being extended */
    size_t tmp_cap;
    int64_t late_dropped;
} ij_state;

static void put_ts(uint8_t *p, int64_t v) {
    uint64_t u = (uint64_t)v ^ (UINT64_C(1) << 63);
    for (int i = 7; i >= 0; i--, u >>= 8) p[i] = (uint8_t)u;
}

static int64_t get_ts(const uint8_t *p) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | p[i];
    return (int64_t)(u ^ (UINT64_C(1) << 63));
}

static int ij_state_fail(tm_op *op, ij_state *s, const char *what) {
    flint_err err = {0};
    if (tm_state_backend_error(s->backend, &err)) return tm_op_fail(op, "%s: %s", what, err.msg);
    return tm_op_fail(op, "%s failed", what);
}

/* Join in (of side) with the other side's buffered rows that fit. */
static int join_other(tm_op *op, ij_state *s, int side, const flint_row *in, int64_t ts) {
    int other = 1 - side;
    tm_state_iter *it = tm_state_map_iter(s->buf[other], NULL, 0);
    if (!it) return FLINT_OK;
    int nf = flint_schema_field_count(s->schema[other]);
    tm_state_entry e;
    int rc = FLINT_OK;
    bool key_set = false;
    while (!rc && tm_state_iter_next(it, &e)) {
        if (e.uklen != 8) continue;
        int64_t ots = get_ts(e.ukey);
        bool match = side == 0 ? tm_interval_match(ts, ots, s->lower, s->upper) : tm_interval_match(ots, ts, s->lower, s->upper);
        if (!match) continue;
        if (!key_set) {
            size_t klen;
            const uint8_t *key = tm_state_current_key(s->backend, &klen);
            if (tm_key_decode(key, klen, &s->keyb) == FLINT_OK) op->ctx.current_key = flint_row_builder_row(&s->keyb);
            key_set = true;
        }
        const uint8_t *pos = e.value, *end = e.value + e.vlen, *row;
        size_t len;
        op->rt->timestamp = ts > ots ? ts : ots;
        while (!rc && tm_state_list_next(&pos, end, &row, &len)) {
            flint_row o = flint_row_view(s->schema[other], row, (uint32_t)len, nf);
            flint_row_builder_reset(&s->outb);
            if (side == 0) s->join(&op->ctx, in, &o, &s->outb);
            else s->join(&op->ctx, &o, in, &s->outb);
            if (op->ctx.failed) {
                rc = tm_op_check_ctx(op);
                break;
            }
            flint_row out = flint_row_builder_row(&s->outb);
            rc = tm_op_emit(op, &out);
        }
    }
    tm_state_iter_close(it);
    op->rt->timestamp = ts;
    return rc;
}

static int ij_element(tm_op *op, const flint_row *in, int side) {
    ij_state *s = op->state;
    int64_t ts = op->rt->timestamp;
    if (ts == FLINT_NO_TIMESTAMP)
        return tm_op_fail(op, "a record has no timestamp (the interval join is in event time: is there a "
                              "flint_assign_timestamps_and_watermarks before it?)");
    if (op->watermark != INT64_MIN && ts < op->watermark) {
        s->late_dropped++;
        return FLINT_OK;
    }
    const uint8_t *key;
    size_t klen;
    flint_err err = {0};
    if (tm_keys_get(&s->keys[side], in, &key, &klen, &err)) {
        op->ctx.failed = false;
        return tm_op_fail(op, "key selector: %s", err.msg);
    }
    tm_state_set_key_hashed(s->backend, key, klen);
    /* Add to this side's bucket of ts. */
    uint8_t uk[8];
    put_ts(uk, ts);
    const uint8_t *v;
    size_t vlen = 0;
    bool have = tm_state_map_get(s->buf[side], NULL, 0, uk, 8, &v, &vlen);
    size_t need = (have ? vlen : 0) + 4 + in->len;
    if (need > s->tmp_cap) {
        s->tmp_cap = need * 2;
        s->tmp = xrealloc(s->tmp, s->tmp_cap);
    }
    if (have) memcpy(s->tmp, v, vlen);
    else vlen = 0;
    uint8_t *p = s->tmp + vlen;
    p[0] = (uint8_t)in->len;
    p[1] = (uint8_t)(in->len >> 8);
    p[2] = (uint8_t)(in->len >> 16);
    p[3] = (uint8_t)(in->len >> 24);
    memcpy(p + 4, in->data, in->len);
    if (tm_state_map_put(s->buf[side], NULL, 0, uk, 8, s->tmp, need)) return ij_state_fail(op, s, "buffering a row");
    int rc = join_other(op, s, side, in, ts);
    if (rc) return rc;
    /* The bucket's cleanup timer (one per key, side and timestamp). */
    if (!have) {
        int64_t t = side == 0 ? tm_interval_cleanup_left(ts, s->upper) : tm_interval_cleanup_right(ts, s->lower);
        t = tm_time_add(t, 1);
        uint8_t ns[9];
        ns[0] = (uint8_t)side;
        memcpy(ns + 1, uk, 8);
        const uint8_t *k = tm_state_current_key(s->backend, &klen);
        tm_timer_register(op->timers, FLINT_EVENT_TIME, k, klen, tm_state_current_key_group(s->backend), ns, 9, t);
    }
    return FLINT_OK;
}

static int ij_process(tm_op *op, const flint_row *in) { return ij_element(op, in, 0); }
static int ij_process2(tm_op *op, const flint_row *in) { return ij_element(op, in, 1); }

static int ij_on_timer(tm_op *op, const tm_timer *t) {
    ij_state *s = op->state;
    if (t->domain != FLINT_EVENT_TIME || t->ns_len != 9 || t->ns[0] > 1) return FLINT_OK;
    tm_state_set_key(s->backend, t->key, t->key_len, t->key_group);
    if (tm_state_map_remove(s->buf[t->ns[0]], NULL, 0, t->ns + 1, 8)) return ij_state_fail(op, s, "dropping a bucket");
    return FLINT_OK;
}

static int keys_init(tm_op *op, tm_keys *k, const char *prefix, const flint_schema *in) {
    char name[32];
    flint_err err = {0};
    snprintf(name, sizeof name, "%s.fields", prefix);
    const char *fields = tm_op_param(op, name);
    if (fields && fields[0]) {
        if (tm_keys_init_fields(k, fields, in, &err)) return tm_op_fail(op, "%s: %s", name, err.msg);
        return FLINT_OK;
    }
    snprintf(name, sizeof name, "%s.selector", prefix);
    if (!tm_op_param(op, name)) return tm_op_fail(op, "no key for %s: neither '%s.fields' nor '%s.selector' is set", prefix, prefix, prefix);
    void (*fn)(void);
    int rc = tm_op_symbol(op, name, true, &fn);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s.schema", prefix);
    if (tm_keys_init_selector(k, (flint_key_fn)fn, &op->ctx, tm_op_param(op, name), &err))
        return tm_op_fail(op, "%s: %s", name, err.msg);
    return FLINT_OK;
}

static int ij_open(tm_op *op) {
    ij_state *s = XNEW(ij_state);
    op->state = s;
    s->op = op;
    if (!op->in_schema || !op->out_schema) return tm_op_fail(op, "the operator needs input and output schemas");
    s->schema[0] = op->in_schema;
    flint_err err = {0};
    const char *in2 = tm_op_param(op, "in2.schema");
    if (!in2 || flint_schema_parse(in2, &s->schema[1], &err)) return tm_op_fail(op, "in2.schema: %s", in2 ? err.msg : "missing");
    int rc;
    if ((rc = tm_op_param_int(op, "lower", 0, &s->lower)) || (rc = tm_op_param_int(op, "upper", 0, &s->upper))) return rc;
    if (s->lower > s->upper) return tm_op_fail(op, "lower bound %lld > upper bound %lld", (long long)s->lower, (long long)s->upper);
    if ((rc = keys_init(op, &s->keys[0], "key", s->schema[0])) || (rc = keys_init(op, &s->keys[1], "key2", s->schema[1]))) return rc;
    if (s->keys[0].key_schema) {
        s->key_schema = flint_schema_copy(s->keys[0].key_schema);
    } else {
        char *text = tm_key_schema_text(s->schema[0], s->keys[0].fields, s->keys[0].nfields);
        rc = flint_schema_parse(text, &s->key_schema, &err);
        free(text);
        if (rc) return tm_op_fail(op, "key columns: %s", err.msg);
    }
    flint_row_builder_init(&s->keyb, s->key_schema);
    s->keyb_ready = true;
    flint_row_builder_init(&s->outb, op->out_schema);
    s->outb_ready = true;
    void (*fn)(void);
    if ((rc = tm_op_symbol(op, "fn", true, &fn))) return rc;
    s->join = (flint_join_fn)fn;
    if (!tm_op_timers(op)) return tm_op_fail(op, "the interval join needs the task's timer service");
    if ((rc = tm_state_op_open(op, &s->backend))) return rc;
    if (tm_state_register(s->backend, "interval-join-left", TM_STATE_MAP, 0, &s->buf[0], &err) ||
        tm_state_register(s->backend, "interval-join-right", TM_STATE_MAP, 0, &s->buf[1], &err))
        return tm_op_fail(op, "interval join state: %s", err.msg);
    return tm_op_udf_open(op);
}

static void ij_close(tm_op *op) {
    ij_state *s = op->state;
    if (!s) return;
    if (op->opened) tm_op_udf_close(op);
    if (s->backend) tm_state_op_close(op, s->backend);
    tm_keys_free(&s->keys[0]);
    tm_keys_free(&s->keys[1]);
    flint_schema_free(s->schema[1]);
    if (s->keyb_ready) flint_row_builder_free(&s->keyb);
    if (s->outb_ready) flint_row_builder_free(&s->outb);
    flint_schema_free(s->key_schema);
    free(s->tmp);
    free(s);
    op->state = NULL;
}

bool tm_interval_join_stats(tm_op *op, tm_window_op_stats *out) {
    ij_state *s = op->state;
    if (!s || !s->backend) return false;
    for (int i = 0; i < 2; i++)
        if (s->buf[i]) out->state_entries += tm_state_count(s->buf[i]);
    if (op->timers) out->event_timers = tm_timer_queue_count(op->timers, FLINT_EVENT_TIME);
    out->late_dropped = s->late_dropped;
    return true;
}

const tm_op_kind tm_op_INTERVAL_JOIN = {
    .name = "interval_join",
    .open = ij_open,
    .process = ij_process,
    .process2 = ij_process2,
    .on_timer = ij_on_timer,
    .close = ij_close,
};

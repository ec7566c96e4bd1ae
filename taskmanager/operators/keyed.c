/* Keyed rolling operators: reduce (a user function) and aggregate (sum, min, max, min_by,
 * max_by over one field), each emitting the key's new aggregate for every input row, as Flink's
 * KeyedStream#reduce/sum/min/... do:
 *   - the first row of a key is stored (copied) and emitted as it is;
 *   - sum/min/max update only the aggregated field and keep the other fields of the key's first
 *     row (done in place in the stored copy: fixed-size fields live in their 8-byte slots);
 *   - min_by/max_by keep the whole row holding the smallest/largest value (the first wins ties);
 *   - a NULL value never changes the aggregate; a NULL aggregate takes the first non-NULL value.
 * The key is "key.fields" (field indexes) or a "key.selector" function with "key.schema". The
 * aggregate of each key is value state "agg" of the operator's state backend (state/tm_state.h:
 * hashmap or rocksdb, per state.backend.type); sum/min/max overwrite the one field in the stored
 * aggregate (tm_state_value_overwrite: in place with the hashmap backend, however long the row). */
#include <stdlib.h>
#include <string.h>

#include "operators/keys.h"
#include "operators/operator.h"
#include "row/row_key.h"
#include "state/tm_state.h"
#include "util/alloc.h"

typedef enum agg_kind { AGG_SUM, AGG_MIN, AGG_MAX, AGG_MIN_BY, AGG_MAX_BY } agg_kind;

typedef struct keyed_state {
    tm_keys keys;
    tm_state_backend *backend;
    tm_state *agg_state;                 /* value state "agg": the key's aggregate */
    /* reduce */
    flint_reduce_fn fn;
    flint_row_builder out;
    bool has_out;
    /* aggregate */
    agg_kind agg;
    int field;
    flint_type type;
} keyed_state;

static int keyed_open_common(tm_op *op, keyed_state *s) {
    if (!op->in_schema) return tm_op_fail(op, "the operator has no input schema");
    flint_err err = {0};
    const char *sel = tm_op_param(op, "key.selector");
    if (sel && sel[0]) {
        void (*fn)(void);
        int rc = tm_op_symbol(op, "key.selector", true, &fn);
        if (rc) return rc;
        if (tm_keys_init_selector(&s->keys, (flint_key_fn)fn, &op->ctx, tm_op_param(op, "key.schema"), &err))
            return tm_op_fail(op, "key selector '%s': %s", sel, err.msg);
    } else {
        const char *fields = tm_op_param(op, "key.fields");
        if (!fields || !fields[0]) return tm_op_fail(op, "no key: neither 'key.fields' nor 'key.selector' is set");
        if (tm_keys_init_fields(&s->keys, fields, op->in_schema, &err))
            return tm_op_fail(op, "key.fields '%s': %s", fields, err.msg);
    }
    int rc = tm_state_op_open(op, &s->backend);
    if (rc) return rc;
    if (tm_state_register(s->backend, "agg", TM_STATE_VALUE, 0, &s->agg_state, &err))
        return tm_op_fail(op, "state: %s", err.msg);
    return FLINT_OK;
}

static void keyed_close(tm_op *op) {
    keyed_state *s = op->state;
    if (!s) return;
    if (s->fn) tm_op_udf_close(op);
    tm_keys_free(&s->keys);
    tm_state_op_close(op, s->backend);
    if (s->has_out) flint_row_builder_free(&s->out);
    free(s);
    op->state = NULL;
}

/* Make in's key the backend's current key. */
static int set_key(tm_op *op, keyed_state *s, const flint_row *in) {
    flint_err err;   /* filled on failure only: not cleared per record */
    const uint8_t *key;
    size_t klen;
    if (tm_keys_get(&s->keys, in, &key, &klen, &err)) {
        op->ctx.failed = false; /* reported here, with the selector's message */
        return tm_op_fail(op, "key selector: %s", err.msg);
    }
    if (!tm_state_set_key_hashed(s->backend, key, klen))
        return tm_op_fail(op, "a row of key group %d reached subtask %d, which does not own it",
                          row_key_group(row_key_hash(key, klen), op->rt->max_parallelism > 0 ? op->rt->max_parallelism : 128),
                          op->rt->subtask);
    return FLINT_OK;
}

/* The key's aggregate: true with a view of it in *acc; false when the key has none yet (or the
 * backend failed: *rc). */
static bool get_acc(tm_op *op, keyed_state *s, flint_row *acc, int *rc) {
    const uint8_t *v;
    size_t n;
    *rc = FLINT_OK;
    if (!tm_state_value_get(s->agg_state, NULL, 0, &v, &n)) {
        flint_err err = {0};
        if (tm_state_backend_error(s->backend, &err)) *rc = tm_op_fail(op, "state: %s", err.msg);
        return false;
    }
    *acc = flint_row_view(op->in_schema, v, (uint32_t)n, flint_schema_field_count(op->in_schema));
    return true;
}

/* A state write failed: fail the operator with the backend's message. */
static int state_failed(tm_op *op, keyed_state *s) {
    flint_err err = {0};
    tm_state_backend_error(s->backend, &err);
    return tm_op_fail(op, "state: %s", err.msg);
}

static int put_acc(tm_op *op, keyed_state *s, const void *data, size_t len) {
    return tm_state_value_put(s->agg_state, NULL, 0, data, len) ? state_failed(op, s) : FLINT_OK;
}

/* ---- reduce ------------------------------------------------------------------------------------ */

static int reduce_open(tm_op *op) {
    keyed_state *s = XNEW(keyed_state);
    op->state = s;
    int rc = keyed_open_common(op, s);
    if (rc) return rc;
    void (*fn)(void);
    if ((rc = tm_op_symbol(op, "fn", true, &fn))) return rc;
    s->fn = (flint_reduce_fn)fn;
    flint_row_builder_init(&s->out, op->in_schema);
    s->has_out = true;
    return tm_op_udf_open(op);
}

static int reduce_process(tm_op *op, const flint_row *in) {
    keyed_state *s = op->state;
    int rc = set_key(op, s, in);
    if (rc) return rc;
    flint_row acc;
    if (!get_acc(op, s, &acc, &rc)) {
        if (rc || (rc = put_acc(op, s, in->data, in->len))) return rc;
        return tm_op_emit(op, in);
    }
    flint_row_builder_reset(&s->out);
    s->fn(&op->ctx, &acc, in, &s->out);
    if (op->ctx.failed) return tm_op_check_ctx(op);
    if ((rc = put_acc(op, s, s->out.buf, s->out.len))) return rc;
    flint_row row = flint_row_builder_row(&s->out);
    return tm_op_emit(op, &row);
}

/* ---- aggregate ----------------------------------------------------------------------------------- */

static int agg_open(tm_op *op) {
    keyed_state *s = XNEW(keyed_state);
    op->state = s;
    int rc = keyed_open_common(op, s);
    if (rc) return rc;
    const char *agg, *f;
    if ((rc = tm_op_param_req(op, "agg", &agg)) || (rc = tm_op_param_req(op, "field", &f))) return rc;
    static const char *const names[] = {"sum", "min", "max", "min_by", "max_by"};
    int k = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(agg, names[i]) == 0) k = i;
    if (k < 0) return tm_op_fail(op, "unknown aggregation '%s' (expected sum, min, max, min_by or max_by)", agg);
    s->agg = (agg_kind)k;
    int64_t field;
    if ((rc = tm_op_param_int(op, "field", -1, &field))) return rc;
    int n = flint_schema_field_count(op->in_schema);
    if (field < 0 || field >= n)
        return tm_op_fail(op, "field %lld out of range (the input has %d fields: %s)", (long long)field, n,
                          flint_schema_text(op->in_schema));
    s->field = (int)field;
    s->type = flint_schema_field_type(op->in_schema, s->field);
    bool ok = s->type == FLINT_INT || s->type == FLINT_BIGINT || s->type == FLINT_DOUBLE ||
              (s->type == FLINT_TIMESTAMP && s->agg != AGG_SUM);
    if (!ok)
        return tm_op_fail(op, "cannot %s field '%s' of type %s", agg, flint_schema_field_name(op->in_schema, s->field),
                          flint_type_name(s->type));
    return FLINT_OK;
}

/* Compare field f of a and b (both non-NULL): <0, 0, >0. */
static int cmp_field(flint_type t, const flint_row *a, const flint_row *b, int f) {
    if (t == FLINT_DOUBLE) {
        double x = flint_row_get_double(a, f), y = flint_row_get_double(b, f);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = t == FLINT_INT ? flint_row_get_int(a, f) : flint_row_get_long(a, f);
    int64_t y = t == FLINT_INT ? flint_row_get_int(b, f) : flint_row_get_long(b, f);
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Set field f of the key's aggregate *acc to slot (not NULL) in the stored aggregate itself: the
 * slot, and the NULL bit's word when the field was NULL. *acc then views the stored aggregate. */
static int set_acc_field(tm_op *op, keyed_state *s, flint_row *acc, int f, uint64_t slot) {
    const uint8_t *v;
    size_t n;
    if (flint_row_is_null(acc, f)) {
        size_t at = (size_t)(f / 64) * 8;
        uint64_t w;
        memcpy(&w, acc->data + at, 8);
        w &= ~(UINT64_C(1) << (f % 64));
        if (tm_state_value_overwrite(s->agg_state, NULL, 0, at, &w, 8, &v, &n)) return state_failed(op, s);
    }
    size_t at = (size_t)((acc->nfields + 63) / 64) * 8 + (size_t)f * 8;
    if (tm_state_value_overwrite(s->agg_state, NULL, 0, at, &slot, 8, &v, &n)) return state_failed(op, s);
    acc->data = v;
    acc->len = (uint32_t)n;
    return FLINT_OK;
}

static uint64_t sum_slot(flint_type t, const flint_row *a, const flint_row *b, int f) {
    if (t == FLINT_DOUBLE) {
        double d = flint_row_get_double(a, f) + flint_row_get_double(b, f);
        uint64_t u;
        memcpy(&u, &d, 8);
        return u;
    }
    if (t == FLINT_INT) /* wraps around as Java's int does; kept widened to 64 bits */
        return (uint64_t)(int64_t)(int32_t)((uint32_t)flint_row_get_int(a, f) + (uint32_t)flint_row_get_int(b, f));
    return (uint64_t)flint_row_get_long(a, f) + (uint64_t)flint_row_get_long(b, f);
}

static int agg_process(tm_op *op, const flint_row *in) {
    keyed_state *s = op->state;
    int rc = set_key(op, s, in);
    if (rc) return rc;
    flint_row acc;
    if (!get_acc(op, s, &acc, &rc)) {
        if (rc || (rc = put_acc(op, s, in->data, in->len))) return rc;
        return tm_op_emit(op, in);
    }
    int f = s->field;
    if (!flint_row_is_null(in, f)) {
        bool acc_null = flint_row_is_null(&acc, f);
        int c = acc_null ? 0 : cmp_field(s->type, in, &acc, f);
        uint64_t slot = 0;
        bool set = false;
        switch (s->agg) {
        case AGG_SUM:
            slot = acc_null ? flint_row_slot_(in, f) : sum_slot(s->type, &acc, in, f);
            set = true;
            break;
        case AGG_MIN:
        case AGG_MAX:
            if (acc_null || (s->agg == AGG_MIN ? c < 0 : c > 0)) {
                slot = flint_row_slot_(in, f);
                set = true;
            }
            break;
        case AGG_MIN_BY:
        case AGG_MAX_BY:
            if (acc_null || (s->agg == AGG_MIN_BY ? c < 0 : c > 0)) {
                if ((rc = put_acc(op, s, in->data, in->len))) return rc;
                return tm_op_emit(op, in);
            }
            break;
        }
        if (set && (rc = set_acc_field(op, s, &acc, f, slot))) return rc;
    }
    return tm_op_emit(op, &acc);
}

const tm_op_kind tm_op_REDUCE = {.name = "reduce", .open = reduce_open, .process = reduce_process, .close = keyed_close};
const tm_op_kind tm_op_AGGREGATE = {.name = "aggregate", .open = agg_open, .process = agg_process, .close = keyed_close};

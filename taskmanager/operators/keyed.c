/* Keyed rolling operators: reduce (a user function) and aggregate (sum, min, max, min_by,
 * max_by over one field), each emitting the key's new aggregate for every input row, as Flink's
 * KeyedStream#reduce/sum/min/... do:
 *   - the first row of a key is stored (copied) and emitted as it is;
 *   - sum/min/max update only the aggregated field and keep the other fields of the key's first
 *     row (done in place in the stored copy: fixed-size fields live in their 8-byte slots);
 *   - min_by/max_by keep the whole row holding the smallest/largest value (the first wins ties);
 *   - a NULL value never changes the aggregate; a NULL aggregate takes the first non-NULL value.
 * The key is "key.fields" (field indexes) or a "key.selector" function with "key.schema". State
 * lives in tm_kstate (keyed_state.h): allocation only for new keys. */
#include <stdlib.h>
#include <string.h>

#include "operators/keyed_state.h"
#include "operators/keys.h"
#include "operators/operator.h"
#include "util/alloc.h"

typedef enum agg_kind { AGG_SUM, AGG_MIN, AGG_MAX, AGG_MIN_BY, AGG_MAX_BY } agg_kind;

typedef struct keyed_state {
    tm_keys keys;
    tm_kstate *state;
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
    s->state = tm_kstate_new();
    return FLINT_OK;
}

static void keyed_close(tm_op *op) {
    keyed_state *s = op->state;
    if (!s) return;
    if (s->fn) tm_op_udf_close(op);
    tm_keys_free(&s->keys);
    tm_kstate_free(s->state);
    if (s->has_out) flint_row_builder_free(&s->out);
    free(s);
    op->state = NULL;
}

static int key_of(tm_op *op, keyed_state *s, const flint_row *in, const uint8_t **key, size_t *klen) {
    flint_err err = {0};
    if (tm_keys_get(&s->keys, in, key, klen, &err)) {
        op->ctx.failed = false; /* reported here, with the selector's message */
        return tm_op_fail(op, "key selector: %s", err.msg);
    }
    return FLINT_OK;
}

/* The stored row of schema sch in v, as a view. */
static flint_row stored_row(const tm_op *op, const tm_kvalue *v) {
    return flint_row_view(op->in_schema, v->data, v->len, flint_schema_field_count(op->in_schema));
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
    const uint8_t *key;
    size_t klen;
    int rc = key_of(op, s, in, &key, &klen);
    if (rc) return rc;
    tm_kvalue *v = tm_kstate_get(s->state, key, klen);
    if (!v) {
        tm_kstate_put(s->state, key, klen, in->data, in->len);
        return tm_op_emit(op, in);
    }
    flint_row acc = stored_row(op, v);
    flint_row_builder_reset(&s->out);
    s->fn(&op->ctx, &acc, in, &s->out);
    if (op->ctx.failed) return tm_op_check_ctx(op);
    v = tm_kstate_put(s->state, key, klen, s->out.buf, (uint32_t)s->out.len);
    flint_row row = stored_row(op, v);
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

/* Write field f's slot (and clear its NULL bit) in a stored row of n fields. */
static void store_slot(tm_kvalue *v, int n, int f, uint64_t slot) {
    size_t words = (size_t)((n + 63) / 64);
    uint64_t w;
    memcpy(&w, v->data + (size_t)(f / 64) * 8, 8);
    w &= ~(UINT64_C(1) << (f % 64));
    memcpy(v->data + (size_t)(f / 64) * 8, &w, 8);
    memcpy(v->data + words * 8 + (size_t)f * 8, &slot, 8);
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
    const uint8_t *key;
    size_t klen;
    int rc = key_of(op, s, in, &key, &klen);
    if (rc) return rc;
    tm_kvalue *v = tm_kstate_get(s->state, key, klen);
    if (!v) {
        tm_kstate_put(s->state, key, klen, in->data, in->len);
        return tm_op_emit(op, in);
    }
    int f = s->field;
    flint_row acc = stored_row(op, v);
    if (!flint_row_is_null(in, f)) {
        bool acc_null = flint_row_is_null(&acc, f);
        int c = acc_null ? 0 : cmp_field(s->type, in, &acc, f);
        switch (s->agg) {
        case AGG_SUM:
            store_slot(v, acc.nfields, f, acc_null ? flint_row_slot_(in, f) : sum_slot(s->type, &acc, in, f));
            break;
        case AGG_MIN:
        case AGG_MAX:
            if (acc_null || (s->agg == AGG_MIN ? c < 0 : c > 0)) store_slot(v, acc.nfields, f, flint_row_slot_(in, f));
            break;
        case AGG_MIN_BY:
        case AGG_MAX_BY:
            if (acc_null || (s->agg == AGG_MIN_BY ? c < 0 : c > 0)) v = tm_kstate_put(s->state, key, klen, in->data, in->len);
            break;
        }
    }
    flint_row row = stored_row(op, v);
    return tm_op_emit(op, &row);
}

const tm_op_kind tm_op_REDUCE = {"reduce", reduce_open, reduce_process, NULL, NULL, keyed_close};
const tm_op_kind tm_op_AGGREGATE = {"aggregate", agg_open, agg_process, NULL, NULL, keyed_close};

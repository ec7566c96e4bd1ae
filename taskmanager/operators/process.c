/* Process functions with keys, timers, side outputs and two inputs: keyed_process (Flink's
 * KeyedProcessOperator), co_process (CoProcessOperator, and KeyedCoProcessOperator when keyed)
 * and broadcast_process (CoBroadcastWithNonKeyedOperator). Before each record or timer of a keyed
 * operator the current key is set everywhere it matters: the state backend's current key, the key
 * row flint_ctx_current_key returns, and the key timers registered from the user function get. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operators/keys.h"
#include "operators/operator.h"
#include "operators/time_ops.h"
#include "row/row_key.h"
#include "state/tm_state.h"
#include "util/alloc.h"

typedef struct proc_state {
    flint_flat_map_fn fn, fn2;
    flint_on_timer_fn on_timer;
    flint_collector coll;
    bool keyed, two_keys, broadcast;
    tm_keys keys, keys2;
    flint_schema *key_schema;          /* of the key row */
    flint_row_builder key_row;
    tm_state_backend *backend;
    bool state_opened;
    uint8_t *key;                      /* the current key's bytes (a copy) */
    size_t key_len, key_cap;
    int key_group;
    int emit_rc;
} proc_state;

/* ---- keys --------------------------------------------------------------------------------------- */

static inline uint64_t rd_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

int tm_key_decode(const uint8_t *key, size_t len, flint_row_builder *b) {
    flint_row_builder_reset(b);
    size_t pos = 0;
    int n = flint_schema_field_count(b->schema);
    for (int i = 0; i < n; i++) {
        if (pos >= len) return FLINT_INVALID;
        uint8_t tag = key[pos++];
        if (tag == 0) {
            flint_row_set_null(b, i);
            continue;
        }
        flint_type t = flint_schema_field_type(b->schema, i);
        if (tag != 1 + (int)t) return FLINT_INVALID;
        if (t == FLINT_STRING || t == FLINT_BYTES) {
            if (len - pos < 4) return FLINT_INVALID;
            uint32_t l = (uint32_t)key[pos] | (uint32_t)key[pos + 1] << 8 | (uint32_t)key[pos + 2] << 16 |
                         (uint32_t)key[pos + 3] << 24;
            pos += 4;
            if (len - pos < l) return FLINT_INVALID;
            if (t == FLINT_STRING) flint_row_set_string(b, i, (const char *)key + pos, l);
            else flint_row_set_bytes(b, i, key + pos, l);
            pos += l;
            continue;
        }
        if (len - pos < 8) return FLINT_INVALID;
        uint64_t v = rd_le64(key + pos);
        pos += 8;
        switch (t) {
        case FLINT_INT: flint_row_set_int(b, i, (int32_t)(int64_t)v); break;
        case FLINT_BOOLEAN: flint_row_set_bool(b, i, v != 0); break;
        case FLINT_DOUBLE: {
            double d;
            memcpy(&d, &v, 8);
            flint_row_set_double(b, i, d);
            break;
        }
        default: flint_row_set_long(b, i, (int64_t)v); break;
        }
    }
    return pos == len ? FLINT_OK : FLINT_INVALID;
}

char *tm_key_schema_text(const flint_schema *s, const int *fields, int n) {
    size_t cap = 64, len = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *name = flint_schema_field_name(s, fields[i]);
        const char *type = flint_type_name(flint_schema_field_type(s, fields[i]));
        size_t need = len + strlen(name) + strlen(type) + 8;
        if (need > cap) out = xrealloc(out, cap = need * 2);
        len += (size_t)sprintf(out + len, "%s`%s` %s", i ? ", " : "", name, type);
    }
    return out;
}

/* Keys of input 1 ("key.*") or 2 ("key2.*") from the operator's parameters. */
static int keys_init(tm_op *op, tm_keys *k, const char *prefix, const flint_schema *in, bool *found) {
    char name[32];
    flint_err err = {0};
    *found = false;
    snprintf(name, sizeof name, "%s.fields", prefix);
    const char *fields = tm_op_param(op, name);
    if (fields && fields[0]) {
        *found = true;
        if (!in) return tm_op_fail(op, "keyed input without a schema");
        if (tm_keys_init_fields(k, fields, in, &err)) return tm_op_fail(op, "%s: %s", name, err.msg);
        return FLINT_OK;
    }
    snprintf(name, sizeof name, "%s.selector", prefix);
    if (!tm_op_param(op, name)) return FLINT_OK;
    *found = true;
    void (*fn)(void);
    int rc = tm_op_symbol(op, name, true, &fn);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s.schema", prefix);
    if (tm_keys_init_selector(k, (flint_key_fn)fn, &op->ctx, tm_op_param(op, name), &err))
        return tm_op_fail(op, "%s: %s", name, err.msg);
    return FLINT_OK;
}

/* Make key bytes current: the backend's key, the key row, the key of timers. */
static int set_key(tm_op *op, proc_state *s, const uint8_t *key, size_t len, int key_group) {
    if (len > s->key_cap) {
        s->key_cap = len * 2;
        s->key = xrealloc(s->key, s->key_cap);
    }
    if (len) memcpy(s->key, key, len);
    s->key_len = len;
    s->key_group = key_group;
    if (s->backend) tm_state_set_key(s->backend, s->key, len, key_group);
    if (tm_key_decode(s->key, len, &s->key_row)) return tm_op_fail(op, "cannot decode a key of (%s)", flint_schema_text(s->key_schema));
    op->ctx.current_key = flint_row_builder_row(&s->key_row);
    return FLINT_OK;
}

static int key_of_row(tm_op *op, proc_state *s, tm_keys *k, const flint_row *row) {
    const uint8_t *key;
    size_t len;
    flint_err err = {0};
    if (tm_keys_get(k, row, &key, &len, &err)) {
        op->ctx.failed = false;
        return tm_op_fail(op, "key selector: %s", err.msg);
    }
    return set_key(op, s, key, len, row_key_group(row_key_hash(key, len), op->rt->max_parallelism));
}

/* flint_timer_* of the user function: timers of the current key. */
static void ctx_timer(void *ud, flint_time_domain d, int64_t time, bool del) {
    tm_op *op = ud;
    proc_state *s = op->state;
    if (!op->timers) return;
    if (del) tm_timer_delete(op->timers, d, s->key, s->key_len, s->key_group, NULL, 0, time);
    else tm_timer_register(op->timers, d, s->key, s->key_len, s->key_group, NULL, 0, time);
}

static const flint_ctx_timer_ops timer_ops = {ctx_timer};

/* ---- the operators ------------------------------------------------------------------------------ */

static void collector_emit(flint_collector *c, const flint_row *row) {
    tm_op *op = c->rt;
    proc_state *s = op->state;
    if (s->emit_rc) return;
    s->emit_rc = tm_op_emit(op, row);
}

/* After a user function: its failure, an emission's, a side emission's. */
static inline int after_udf(tm_op *op, proc_state *s) {
    if (op->ctx.failed) return tm_op_check_ctx(op);
    if (s->emit_rc) return s->emit_rc;
    if (op->side_rc) return op->side_rc;
    if (s->backend) {
        flint_err err = {0};
        if (tm_state_backend_error(s->backend, &err)) return tm_op_fail(op, "state: %s", err.msg);
    }
    return FLINT_OK;
}

static int proc_open(tm_op *op) {
    proc_state *s = XNEW(proc_state);
    op->state = s;
    if (!op->out_schema) return tm_op_fail(op, "the operator has no output schema");
    flint_row_builder_init(&s->coll.out, op->out_schema);
    s->coll.emit = collector_emit;
    s->coll.rt = op;
    tm_op_collector_sides(op, &s->coll);
    s->broadcast = strcmp(op->kind->name, "broadcast_process") == 0;
    void (*fn)(void);
    int rc = tm_op_symbol(op, "fn", true, &fn);
    if (rc) return rc;
    s->fn = (flint_flat_map_fn)fn;
    if (op->kind->process2) {
        rc = tm_op_symbol(op, "fn2", true, &fn);
        if (rc) return rc;
        s->fn2 = (flint_flat_map_fn)fn;
    }
    rc = tm_op_symbol(op, "fn.timer", false, &fn);
    if (rc) return rc;
    s->on_timer = (flint_on_timer_fn)fn;
    rc = keys_init(op, &s->keys, "key", op->in_schema, &s->keyed);
    if (rc) return rc;
    if (s->keyed) {
        if (op->kind->process2) {
            const char *in2 = tm_op_param(op, "in2.schema");
            flint_schema *s2 = NULL;
            flint_err err = {0};
            if (!in2 || flint_schema_parse(in2, &s2, &err)) return tm_op_fail(op, "in2.schema: %s", err.msg);
            rc = keys_init(op, &s->keys2, "key2", s2, &s->two_keys);
            flint_schema_free(s2);
            if (rc) return rc;
            if (!s->two_keys) return tm_op_fail(op, "the second input has no key (key2.*)");
        }
        if (s->keys.selector) {
            s->key_schema = flint_schema_copy(s->keys.key_schema);
        } else {
            char *text = tm_key_schema_text(op->in_schema, s->keys.fields, s->keys.nfields);
            flint_err err = {0};
            int prc = flint_schema_parse(text, &s->key_schema, &err);
            free(text);
            if (prc) return tm_op_fail(op, "key schema: %s", err.msg);
        }
        flint_row_builder_init(&s->key_row, s->key_schema);
        tm_op_timers(op);
        op->ctx.timer_ops = &timer_ops;
        op->ctx.timer_ud = op;
    }
    rc = tm_state_op_open(op, s->keyed ? &s->backend : NULL);
    if (rc) return rc;
    s->state_opened = true;
    return tm_op_udf_open(op);
}

static int proc_process(tm_op *op, const flint_row *row) {
    proc_state *s = op->state;
    if (s->keyed) {
        int rc = key_of_row(op, s, &s->keys, row);
        if (rc) return rc;
    }
    flint_row_builder_reset(&s->coll.out);
    s->fn(&op->ctx, row, &s->coll);
    return after_udf(op, s);
}

static int proc_process2(tm_op *op, const flint_row *row) {
    proc_state *s = op->state;
    if (s->keyed) {
        int rc = key_of_row(op, s, &s->keys2, row);
        if (rc) return rc;
    }
    flint_row_builder_reset(&s->coll.out);
    op->ctx.broadcast_writable = s->broadcast;
    s->fn2(&op->ctx, row, &s->coll);
    op->ctx.broadcast_writable = false;
    return after_udf(op, s);
}

static int proc_on_timer(tm_op *op, const tm_timer *t) {
    proc_state *s = op->state;
    if (!s->on_timer) return FLINT_OK;    /* timers without an on_timer function do nothing */
    int rc = set_key(op, s, t->key, t->key_len, t->key_group);
    if (rc) return rc;
    flint_row_builder_reset(&s->coll.out);
    s->on_timer(&op->ctx, t->time, t->domain, &s->coll);
    return after_udf(op, s);
}

static void proc_close(tm_op *op) {
    proc_state *s = op->state;
    if (!s) return;
    if (s->fn) tm_op_udf_close(op);
    if (s->state_opened) tm_state_op_close(op, s->backend);
    op->ctx.current_key = (flint_row){0};
    op->ctx.timer_ops = NULL;
    if (op->out_schema && s->coll.out.schema) flint_row_builder_free(&s->coll.out);
    if (s->key_schema) {
        flint_row_builder_free(&s->key_row);
        flint_schema_free(s->key_schema);
    }
    tm_keys_free(&s->keys);
    tm_keys_free(&s->keys2);
    free(s->key);
    free(s);
    op->state = NULL;
}

const tm_op_kind tm_op_KEYED_PROCESS = {.name = "keyed_process", .open = proc_open, .process = proc_process,
                                        .close = proc_close, .on_timer = proc_on_timer};
const tm_op_kind tm_op_CO_PROCESS = {.name = "co_process", .open = proc_open, .process = proc_process,
                                     .close = proc_close, .process2 = proc_process2, .on_timer = proc_on_timer};
const tm_op_kind tm_op_BROADCAST_PROCESS = {.name = "broadcast_process", .open = proc_open,
                                            .process = proc_process, .close = proc_close,
                                            .process2 = proc_process2};

/* The job API of windows and joins (flint/flint.h, "windows" and "joins"), graph-building side:
 * windowed streams collect the window spec, trigger, evictor, allowed lateness and late-data tag;
 * the window functions turn them into one "window" operator on the keyed stream, whose params
 * the taskmanager's window operator (taskmanager/operators/window.c) reads:
 *   window.kind (tumbling|sliding|session|count_tumbling|count_sliding), window.domain
 *   (event|processing), window.size, window.slide, window.offset, window.gap,
 *   trigger (default|event_time|processing_time|count), trigger.count, trigger.purging (0|1),
 *   evictor (count|time), evictor.value, allowed_lateness, late.tag,
 *   function (reduce|aggregate|process), agg (count|sum|min|max|avg|user), field (index),
 *   fn (reduce/process function), agg.create/agg.add/agg.merge/agg.result, acc.schema,
 *   result.schema (the result's columns), key.fields or key.selector + key.schema.
 * Output rows: (key columns..., window_start TIMESTAMP(3), window_end TIMESTAMP(3), result
 * columns...), except for process window functions, whose rows are the function's out_schema.
 *
 * Joins are two-input operators: "window_join" (window.* as above, function join, fn: the join
 * function) and "interval_join" (lower, upper, fn), both with key.* / key2.* and in2.schema. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "row/row_key.h"
#include "util/alloc.h"
#include "util/strutil.h"

struct flint_windowed_stream {
    flint_env *env;
    flint_keyed_stream *in;
    flint_window_spec spec;
    flint_trigger trigger;
    bool has_trigger;
    int evictor;                  /* 0 none, 1 count, 2 time */
    int64_t evictor_value;
    int64_t allowed_lateness;
    bool has_lateness;
    char late_tag[128];
    const char *error;            /* an argument error, reported on the window operator */
    char error_buf[256];
};

/* ---- small text helpers ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *text) {
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

/* ", `name` TYPE" (the comma when b is not empty). */
static void sb_column(sbuf *b, const char *name, const char *type) {
    if (b->len) sb_add(b, ", ");
    sb_add(b, "`");
    for (const char *p = name; *p; p++) sb_add(b, *p == '`' ? "``" : (char[]){*p, 0});
    sb_add(b, "` ");
    sb_add(b, type);
}

static void set_int(graph_node *n, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    graph_kvs_set(&n->params, key, buf);
}

static const char *kind_name(flint_window_kind k) {
    switch (k) {
    case FLINT_WINDOW_TUMBLING: return "tumbling";
    case FLINT_WINDOW_SLIDING: return "sliding";
    case FLINT_WINDOW_SESSION: return "session";
    case FLINT_WINDOW_COUNT_TUMBLING: return "count_tumbling";
    case FLINT_WINDOW_COUNT_SLIDING: return "count_sliding";
    }
    return "?";
}

static bool is_count(flint_window_kind k) {
    return k == FLINT_WINDOW_COUNT_TUMBLING || k == FLINT_WINDOW_COUNT_SLIDING;
}

/* NULL when spec is valid (the rules of window_core.c's tm_window_spec_check, which the
 * taskmanager applies again). */
static const char *spec_check(const flint_window_spec *s) {
    if (!is_count(s->kind) && s->domain != FLINT_EVENT_TIME && s->domain != FLINT_PROCESSING_TIME)
        return "the time domain must be FLINT_EVENT_TIME or FLINT_PROCESSING_TIME";
    switch (s->kind) {
    case FLINT_WINDOW_TUMBLING:
        if (s->size <= 0) return "a tumbling window needs a size > 0 ms";
        if (s->offset <= -s->size || s->offset >= s->size) return "a tumbling window's offset must satisfy abs(offset) < size";
        return NULL;
    case FLINT_WINDOW_SLIDING:
        if (s->size <= 0 || s->slide <= 0) return "a sliding window needs a size > 0 ms and a slide > 0 ms";
        if (s->offset <= -s->slide || s->offset >= s->slide) return "a sliding window's offset must satisfy abs(offset) < slide";
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

/* Flink's assigner names: "TumblingEventTimeWindows(5000)". */
static void assigner_label(const flint_window_spec *s, char *buf, size_t len) {
    const char *dom = s->domain == FLINT_PROCESSING_TIME ? "ProcessingTime" : "EventTime";
    switch (s->kind) {
    case FLINT_WINDOW_TUMBLING: snprintf(buf, len, "Tumbling%sWindows(%lld)", dom, (long long)s->size); break;
    case FLINT_WINDOW_SLIDING:
        snprintf(buf, len, "Sliding%sWindows(%lld, %lld)", dom, (long long)s->size, (long long)s->slide);
        break;
    case FLINT_WINDOW_SESSION: snprintf(buf, len, "%sSessionWindows(%lld)", dom, (long long)s->gap); break;
    case FLINT_WINDOW_COUNT_TUMBLING: snprintf(buf, len, "CountWindow(%lld)", (long long)s->size); break;
    case FLINT_WINDOW_COUNT_SLIDING:
        snprintf(buf, len, "CountWindow(%lld, %lld)", (long long)s->size, (long long)s->slide);
        break;
    default: snprintf(buf, len, "Window"); break;
    }
}

/* ---- windowed streams ---------------------------------------------------------------------------- */

flint_windowed_stream *flint_window(flint_keyed_stream *in, flint_window_spec spec) {
    if (!in) return NULL;
    flint_windowed_stream *w = XNEW(flint_windowed_stream);
    graph_env_own(in->env, w);
    w->env = in->env;
    w->in = in;
    w->spec = spec;
    const char *e = spec_check(&spec);
    if (e) {
        snprintf(w->error_buf, sizeof w->error_buf, "window: %s", e);
        w->error = w->error_buf;
    }
    return w;
}

static void ws_error(flint_windowed_stream *w, const char *fmt, long long v) {
    if (w->error) return;
    snprintf(w->error_buf, sizeof w->error_buf, fmt, v);
    w->error = w->error_buf;
}

flint_windowed_stream *flint_window_trigger(flint_windowed_stream *w, flint_trigger trigger) {
    if (!w) return NULL;
    if (trigger.kind < FLINT_TRIGGER_DEFAULT || trigger.kind > FLINT_TRIGGER_COUNT)
        ws_error(w, "window_trigger: unknown trigger kind %lld", (long long)trigger.kind);
    else if (trigger.kind == FLINT_TRIGGER_COUNT && trigger.count <= 0)
        ws_error(w, "window_trigger: a count trigger needs a count > 0, not %lld", (long long)trigger.count);
    else if (is_count(w->spec.kind) &&
             (trigger.kind == FLINT_TRIGGER_EVENT_TIME || trigger.kind == FLINT_TRIGGER_PROCESSING_TIME))
        ws_error(w, "window_trigger: a time trigger never fires on count windows%.0lld", 0LL);
    w->trigger = trigger;
    w->has_trigger = true;
    return w;
}

flint_windowed_stream *flint_window_evict_count(flint_windowed_stream *w, int64_t count) {
    if (!w) return NULL;
    if (count <= 0) ws_error(w, "window_evict_count: the count must be > 0, not %lld", (long long)count);
    w->evictor = 1;
    w->evictor_value = count;
    return w;
}

flint_windowed_stream *flint_window_evict_time(flint_windowed_stream *w, int64_t time_ms) {
    if (!w) return NULL;
    if (time_ms < 0) ws_error(w, "window_evict_time: the time must be >= 0 ms, not %lld", (long long)time_ms);
    w->evictor = 2;
    w->evictor_value = time_ms;
    return w;
}

flint_windowed_stream *flint_allowed_lateness(flint_windowed_stream *w, int64_t allowed_lateness_ms) {
    if (!w) return NULL;
    if (allowed_lateness_ms < 0)
        ws_error(w, "allowed_lateness: the allowed lateness must be >= 0 ms, not %lld", (long long)allowed_lateness_ms);
    w->allowed_lateness = allowed_lateness_ms;
    w->has_lateness = true;
    return w;
}

flint_windowed_stream *flint_side_output_late_data(flint_windowed_stream *w, const char *tag) {
    if (!w) return NULL;
    if (!tag || !*tag || strlen(tag) >= sizeof w->late_tag)
        ws_error(w, "side_output_late_data: the tag must be 1 to %lld characters", (long long)sizeof w->late_tag - 1);
    else
        snprintf(w->late_tag, sizeof w->late_tag, "%s", tag);
    return w;
}

/* ---- the window operator ------------------------------------------------------------------------ */

/* The key columns of the keyed stream behind w, appended to b; false when unknown. */
static bool key_columns(graph_node *n, const graph_key *key, sbuf *b) {
    if (key->nfields) {
        if (!n->in_schema) return false;
        for (int i = 0; i < key->nfields; i++)
            sb_column(b, flint_schema_field_name(n->in_schema, key->fields[i]),
                      flint_type_name(flint_schema_field_type(n->in_schema, key->fields[i])));
        return true;
    }
    if (key->key_schema) {
        flint_schema *ks = NULL;
        flint_err err = {0};
        if (flint_schema_parse(key->key_schema, &ks, &err)) return false;
        for (int i = 0; i < flint_schema_field_count(ks); i++)
            sb_column(b, flint_schema_field_name(ks, i), flint_type_name(flint_schema_field_type(ks, i)));
        flint_schema_free(ks);
        return true;
    }
    return false;
}

/* The window node over w with the settings params; the output schema is set by the caller. */
static graph_node *window_node(flint_windowed_stream *w, const char *api, const char *fn_label) {
    flint_env *env = w->env;
    char label[160], name[320];
    assigner_label(&w->spec, label, sizeof label);
    const char *trig = "EventTimeTrigger";
    flint_trigger_kind tk = w->has_trigger ? w->trigger.kind : FLINT_TRIGGER_DEFAULT;
    if (tk == FLINT_TRIGGER_DEFAULT)
        trig = is_count(w->spec.kind) ? "CountTrigger"
               : w->spec.domain == FLINT_PROCESSING_TIME ? "ProcessingTimeTrigger" : "EventTimeTrigger";
    else if (tk == FLINT_TRIGGER_PROCESSING_TIME) trig = "ProcessingTimeTrigger";
    else if (tk == FLINT_TRIGGER_COUNT) trig = "CountTrigger";
    bool purging = (w->has_trigger && w->trigger.purging) || (tk == FLINT_TRIGGER_DEFAULT && w->spec.kind == FLINT_WINDOW_COUNT_TUMBLING);
    snprintf(name, sizeof name, "Window(%s, %s%s%s, %s)", label, purging ? "PurgingTrigger(" : "", trig,
             purging ? ")" : "", fn_label);
    graph_node *n = graph_keyed_op(w->in, GRAPH_OP_WINDOW, api, name);
    n->takes_udf = true;
    flint_schema_free(n->out_schema);
    n->out_schema = NULL;
    if (w->error) graph_node_fail(n, env, "%s", w->error);
    graph_kvs_set(&n->params, "window.kind", kind_name(w->spec.kind));
    if (!is_count(w->spec.kind))
        graph_kvs_set(&n->params, "window.domain", w->spec.domain == FLINT_PROCESSING_TIME ? "processing" : "event");
    set_int(n, "window.size", w->spec.size);
    if (w->spec.kind == FLINT_WINDOW_SLIDING || w->spec.kind == FLINT_WINDOW_COUNT_SLIDING)
        set_int(n, "window.slide", w->spec.slide);
    if (w->spec.kind == FLINT_WINDOW_TUMBLING || w->spec.kind == FLINT_WINDOW_SLIDING)
        set_int(n, "window.offset", w->spec.offset);
    if (w->spec.kind == FLINT_WINDOW_SESSION) set_int(n, "window.gap", w->spec.gap);
    static const char *const tnames[] = {"default", "event_time", "processing_time", "count"};
    if (w->has_trigger && (unsigned)w->trigger.kind <= FLINT_TRIGGER_COUNT) {
        graph_kvs_set(&n->params, "trigger", tnames[w->trigger.kind]);
        if (w->trigger.kind == FLINT_TRIGGER_COUNT) set_int(n, "trigger.count", w->trigger.count);
        graph_kvs_set(&n->params, "trigger.purging", w->trigger.purging ? "1" : "0");
    }
    if (w->evictor) {
        graph_kvs_set(&n->params, "evictor", w->evictor == 1 ? "count" : "time");
        set_int(n, "evictor.value", w->evictor_value);
    }
    if (w->has_lateness) {
        if (!is_count(w->spec.kind) && w->spec.domain == FLINT_PROCESSING_TIME && w->allowed_lateness > 0)
            graph_node_fail(n, env, "allowed lateness applies to event-time windows only");
        set_int(n, "allowed_lateness", w->allowed_lateness);
    }
    if (w->late_tag[0]) graph_kvs_set(&n->params, "late.tag", w->late_tag);
    return n;
}

/* Set n's output schema to (key columns, window_start, window_end, result) and result.schema. */
static void set_window_output(flint_env *env, graph_node *n, const char *result_cols) {
    sbuf b = {0};
    sb_add(&b, "");
    if (!key_columns(n, n->key, &b)) {
        free(b.s);
        return; /* an earlier error (unknown input schema or key) is recorded already */
    }
    sb_column(&b, "window_start", "TIMESTAMP(3)");
    sb_column(&b, "window_end", "TIMESTAMP(3)");
    if (result_cols && *result_cols) {
        sb_add(&b, ", ");
        sb_add(&b, result_cols);
    }
    graph_kvs_set(&n->params, "result.schema", result_cols ? result_cols : "");
    n->out_schema = graph_parse_schema(env, n, "window result schema (key columns, window_start, window_end, result)",
                                       b.s);
    free(b.s);
}

/* The canonical text of the columns of s not named like a key column of n. */
static char *columns_without_key(graph_node *n, const flint_schema *s) {
    sbuf keys = {0};
    sb_add(&keys, "");
    flint_schema *ks = NULL;
    if (key_columns(n, n->key, &keys)) {
        flint_err err = {0};
        if (flint_schema_parse(keys.s, &ks, &err)) ks = NULL;
    }
    free(keys.s);
    sbuf b = {0};
    sb_add(&b, "");
    for (int i = 0; i < flint_schema_field_count(s); i++) {
        const char *name = flint_schema_field_name(s, i);
        if (ks && flint_schema_field_index(ks, name) >= 0) continue;
        sb_column(&b, name, flint_type_name(flint_schema_field_type(s, i)));
    }
    flint_schema_free(ks);
    return b.s;
}

flint_stream *flint_window_reduce(flint_windowed_stream *w, flint_fn reduce_fn) {
    if (!w) return NULL;
    graph_node *n = window_node(w, "window_reduce", "reduce");
    graph_kvs_set(&n->params, "function", "reduce");
    graph_set_fn(w->env, n, "fn", reduce_fn);
    if (n->in_schema) {
        char *cols = columns_without_key(n, n->in_schema);
        set_window_output(w->env, n, cols);
        free(cols);
    }
    return graph_op_stream(w->env, n);
}

static flint_stream *builtin(flint_windowed_stream *w, const char *agg, const char *field) {
    if (!w) return NULL;
    char label[160];
    snprintf(label, sizeof label, "%s(%.120s)", agg, field ? field : "*");
    const char *api = strcmp(agg, "count") == 0 ? "window_count"
                      : strcmp(agg, "sum") == 0 ? "window_sum"
                      : strcmp(agg, "min") == 0 ? "window_min"
                      : strcmp(agg, "max") == 0 ? "window_max"
                                                : "window_avg";
    graph_node *n = window_node(w, api, label);
    graph_kvs_set(&n->params, "function", "aggregate");
    graph_kvs_set(&n->params, "agg", agg);
    const flint_schema *s = n->in_schema;
    if (strcmp(agg, "count") == 0) {
        set_window_output(w->env, n, "`count` BIGINT");
        return graph_op_stream(w->env, n);
    }
    if (!field || !*field) {
        graph_node_fail(n, w->env, "no field given");
        return graph_op_stream(w->env, n);
    }
    if (!s) return graph_op_stream(w->env, n);
    int f = flint_schema_field_index(s, field);
    if (f < 0) {
        int64_t pos;
        if (str_parse_int(field, &pos) == 0 && pos >= 0 && pos < flint_schema_field_count(s)) f = (int)pos;
    }
    if (f < 0) {
        graph_node_fail(n, w->env, "no field '%s' in (%s)", field, flint_schema_text(s));
        return graph_op_stream(w->env, n);
    }
    flint_type t = flint_schema_field_type(s, f);
    bool minmax = strcmp(agg, "min") == 0 || strcmp(agg, "max") == 0;
    if (!flint_type_is_numeric(t) && !(minmax && t == FLINT_TIMESTAMP)) {
        graph_node_fail(n, w->env, "cannot take the %s of field '%s' of type %s (INT, BIGINT or DOUBLE%s only)", agg,
                        flint_schema_field_name(s, f), flint_type_name(t), minmax ? ", TIMESTAMP(3)" : "");
        return graph_op_stream(w->env, n);
    }
    set_int(n, "field", f);
    char col[64];
    snprintf(col, sizeof col, "`%s` %s", agg, strcmp(agg, "avg") == 0 ? "DOUBLE" : flint_type_name(t));
    set_window_output(w->env, n, col);
    return graph_op_stream(w->env, n);
}

flint_stream *flint_window_count(flint_windowed_stream *w) { return builtin(w, "count", NULL); }
flint_stream *flint_window_sum(flint_windowed_stream *w, const char *field) { return builtin(w, "sum", field); }
flint_stream *flint_window_min(flint_windowed_stream *w, const char *field) { return builtin(w, "min", field); }
flint_stream *flint_window_max(flint_windowed_stream *w, const char *field) { return builtin(w, "max", field); }
flint_stream *flint_window_avg(flint_windowed_stream *w, const char *field) { return builtin(w, "avg", field); }

flint_stream *flint_window_aggregate(flint_windowed_stream *w, flint_fn create, flint_fn add, flint_fn merge,
                                     flint_fn result, const char *acc_schema, const char *result_schema) {
    if (!w) return NULL;
    graph_node *n = window_node(w, "window_aggregate", "aggregate");
    graph_kvs_set(&n->params, "function", "aggregate");
    graph_kvs_set(&n->params, "agg", "user");
    graph_set_fn(w->env, n, "agg.create", create);
    graph_set_fn(w->env, n, "agg.add", add);
    graph_set_fn(w->env, n, "agg.merge", merge);
    graph_set_fn(w->env, n, "agg.result", result);
    flint_schema *acc = graph_parse_schema(w->env, n, "accumulator schema", acc_schema);
    flint_schema *res = graph_parse_schema(w->env, n, "result schema", result_schema);
    if (acc) graph_kvs_set(&n->params, "acc.schema", flint_schema_text(acc));
    if (res) set_window_output(w->env, n, flint_schema_text(res));
    flint_schema_free(acc);
    flint_schema_free(res);
    return graph_op_stream(w->env, n);
}

flint_stream *flint_window_process(flint_windowed_stream *w, flint_fn process_fn, const char *out_schema) {
    if (!w) return NULL;
    graph_node *n = window_node(w, "window_process", "process");
    graph_kvs_set(&n->params, "function", "process");
    graph_set_fn(w->env, n, "fn", process_fn);
    n->out_schema = graph_parse_schema(w->env, n, "output schema", out_schema);
    if (n->out_schema) graph_kvs_set(&n->params, "result.schema", flint_schema_text(n->out_schema));
    return graph_op_stream(w->env, n);
}

int graph_window_check(const flint_env *env, flint_err *err) {
    for (int i = 0; i < env->nnodes; i++) {
        const graph_node *n = env->nodes[i];
        if (n->kind != GRAPH_OP_WINDOW) continue;
        const char *tag = graph_kvs_get(&n->params, "late.tag");
        if (!tag || !n->in_schema) continue;
        char key[300];
        snprintf(key, sizeof key, "side.%s", tag);
        const char *declared = graph_kvs_get(&n->params, key);
        if (declared && strcmp(declared, flint_schema_text(n->in_schema)) != 0) {
            char *label = graph_node_label(n);
            flint_err_set(err, FLINT_INVALID,
                          "%s: the late data side output '%s' is declared as (%s), but late records are rows of the "
                          "window's input (%s)",
                          label, tag, declared, flint_schema_text(n->in_schema));
            free(label);
            return FLINT_INVALID;
        }
    }
    return FLINT_OK;
}

/* ---- joins ----------------------------------------------------------------------------------------
 * Two-input operators (graph_time.c's conventions): a's edges are input 1 (input_index 0), b's
 * input 2 (input_index 1); keys in "key.*" and "key2.*"; b's schema in "in2.schema". */

/* The key's column types ("BIGINT, STRING"); "" when unknown. */
static void join_key_types(flint_keyed_stream *ks, char *buf, size_t cap) {
    buf[0] = '\0';
    size_t len = 0;
    const graph_key *k = ks->key;
    if (k->selector) {
        flint_schema *s = NULL;
        flint_err err = {0};
        if (!k->key_schema || flint_schema_parse(k->key_schema, &s, &err)) return;
        for (int i = 0; i < flint_schema_field_count(s) && len < cap; i++)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", flint_type_name(flint_schema_field_type(s, i)));
        flint_schema_free(s);
        return;
    }
    const flint_schema *s = graph_stream_schema(ks->stream);
    if (!s) return;
    for (int i = 0; i < k->nfields && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "",
                                flint_type_name(flint_schema_field_type(s, k->fields[i])));
}

/* A two-input join node over a and b (keyed alike), with the join function and output schema. */
static graph_node *join_node(flint_keyed_stream *a, flint_keyed_stream *b, graph_op_kind kind, const char *api,
                             const char *name, flint_fn join_fn, const char *out_schema) {
    flint_env *env = a->env;
    graph_node *n = graph_node_new(env, kind, api, name);
    n->takes_udf = true;
    if (b->env != env) {
        graph_node_fail(n, env, "the streams belong to different environments");
        return n;
    }
    graph_connect_input(env, n, a->stream);
    flint_schema *first = n->in_schema;
    n->in_schema = NULL;
    int before = env->nedges;
    const flint_schema *sb = graph_connect_input(env, n, b->stream);
    for (int i = before; i < env->nedges; i++) env->edges[i]->input_index = 1;
    if (sb) graph_kvs_set(&n->params, "in2.schema", flint_schema_text(sb));
    flint_schema_free(n->in_schema);
    n->in_schema = first;
    n->key = a->key;
    graph_key_params(env, n, a->key, "key");
    graph_key_params(env, n, b->key, "key2");
    char ta[512], tb[512];
    join_key_types(a, ta, sizeof ta);
    join_key_types(b, tb, sizeof tb);
    if (ta[0] && tb[0] && strcmp(ta, tb) != 0)
        graph_node_fail(n, env, "the keys of the two streams differ in type: (%s) vs (%s)", ta, tb);
    graph_set_fn(env, n, "fn", join_fn);
    n->out_schema = graph_parse_schema(env, n, "output schema", out_schema);
    return n;
}

flint_stream *flint_window_join(flint_keyed_stream *a, flint_keyed_stream *b, flint_window_spec spec,
                                flint_fn join_fn, const char *out_schema) {
    if (!a || !b) return NULL;
    char label[160], name[200];
    assigner_label(&spec, label, sizeof label);
    snprintf(name, sizeof name, "Window Join(%s)", label);
    graph_node *n = join_node(a, b, GRAPH_OP_WINDOW_JOIN, "window_join", name, join_fn, out_schema);
    const char *e = spec_check(&spec);
    if (e) graph_node_fail(n, a->env, "%s", e);
    else if (is_count(spec.kind)) graph_node_fail(n, a->env, "window joins take time windows (tumbling, sliding or session), not count windows");
    graph_kvs_set(&n->params, "window.kind", kind_name(spec.kind));
    graph_kvs_set(&n->params, "window.domain", spec.domain == FLINT_PROCESSING_TIME ? "processing" : "event");
    set_int(n, "window.size", spec.size);
    set_int(n, "window.slide", spec.slide);
    set_int(n, "window.offset", spec.offset);
    set_int(n, "window.gap", spec.gap);
    graph_kvs_set(&n->params, "function", "join");
    return graph_op_stream(a->env, n);
}

flint_stream *flint_interval_join(flint_keyed_stream *a, flint_keyed_stream *b, int64_t lower_ms, int64_t upper_ms,
                                  flint_fn join_fn, const char *out_schema) {
    if (!a || !b) return NULL;
    char name[128];
    snprintf(name, sizeof name, "Interval Join [%lld, %lld]", (long long)lower_ms, (long long)upper_ms);
    graph_node *n = join_node(a, b, GRAPH_OP_INTERVAL_JOIN, "interval_join", name, join_fn, out_schema);
    if (lower_ms > upper_ms)
        graph_node_fail(n, a->env, "the lower bound (%lld ms) is greater than the upper bound (%lld ms)", (long long)lower_ms,
                        (long long)upper_ms);
    set_int(n, "lower", lower_ms);
    set_int(n, "upper", upper_ms);
    return graph_op_stream(a->env, n);
}

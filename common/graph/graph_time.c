/* The event-time half of the job API (flint.h, "Event time, state, timers..."): watermark
 * strategies, keyed process functions, side outputs and two-input operators (connect, co_process,
 * broadcast_process), as stream graph nodes and edges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "row/row_key.h"
#include "util/alloc.h"

struct flint_connected {
    flint_env *env;
    flint_stream *a, *b;                  /* for flint_connect */
    flint_keyed_stream *ka, *kb;          /* for flint_connect_keyed */
};

static void set_int_param(graph_node *n, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    graph_kvs_set(&n->params, key, buf);
}

/* ---- timestamps and watermarks ------------------------------------------------------------------- */

flint_stream *flint_assign_timestamps_and_watermarks(flint_stream *in, flint_watermark_strategy ws) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_node *n = graph_node_new(env, GRAPH_OP_TIMESTAMPS, "assign_timestamps_and_watermarks",
                                   "Timestamps/Watermarks");
    const flint_schema *s = graph_connect_input(env, n, in);
    if (s) n->out_schema = flint_schema_copy(s);
    if (ws.timestamp_field) {
        if (s) {
            int i = flint_schema_field_index(s, ws.timestamp_field);
            if (i < 0) {
                graph_node_fail(n, env, "timestamp field '%s' not found in (%s)", ws.timestamp_field,
                                flint_schema_text(s));
            } else {
                flint_type t = flint_schema_field_type(s, i);
                if (t != FLINT_TIMESTAMP && t != FLINT_BIGINT && t != FLINT_INT)
                    graph_node_fail(n, env, "timestamp field '%s' is %s; expected TIMESTAMP(3) or BIGINT (epoch ms)",
                                    ws.timestamp_field, flint_type_name(t));
                set_int_param(n, "ts.field", i);
            }
        }
    } else if (ws.timestamp_fn.ptr) {
        n->takes_udf = true;
        graph_set_fn(env, n, "fn", ws.timestamp_fn);
    } else {
        graph_node_fail(n, env, "the watermark strategy has neither a timestamp_field nor a timestamp_fn");
    }
    if (ws.max_out_of_orderness_ms < 0)
        graph_node_fail(n, env, "max_out_of_orderness_ms must not be negative (got %lld)",
                        (long long)ws.max_out_of_orderness_ms);
    if (ws.idleness_ms < 0)
        graph_node_fail(n, env, "idleness_ms must not be negative (got %lld)", (long long)ws.idleness_ms);
    set_int_param(n, "out_of_orderness", ws.max_out_of_orderness_ms);
    set_int_param(n, "idleness", ws.idleness_ms);
    return graph_op_stream(env, n);
}

/* ---- keyed process functions ------------------------------------------------------------------------ */

static flint_schema *out_schema(flint_env *env, graph_node *n, const char *text) {
    return graph_parse_schema(env, n, "output schema", text);
}

flint_stream *flint_keyed_process(flint_keyed_stream *in, flint_fn process_fn, flint_fn on_timer_fn,
                                  const char *schema) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_node *n = graph_keyed_op(in, GRAPH_OP_KEYED_PROCESS, "keyed_process", "KeyedProcess");
    n->takes_udf = true;
    graph_set_fn(env, n, "fn", process_fn);
    if (on_timer_fn.ptr || on_timer_fn.name) graph_set_fn(env, n, "fn.timer", on_timer_fn);
    flint_schema_free(n->out_schema);
    n->out_schema = out_schema(env, n, schema);
    return graph_op_stream(env, n);
}

/* ---- side outputs ------------------------------------------------------------------------------------ */

flint_stream *flint_side_output(flint_stream *op, const char *tag, const char *schema) {
    if (!op) return NULL;
    flint_env *env = op->env;
    if (op->ninputs != 1 || op->what || op->inputs[0].tag || op->is_sink) {
        graph_env_fail(env, FLINT_INVALID, "side_output(\"%s\"): the stream is not an operator's output "
                       "(call it on the stream an operator returned)", tag ? tag : "");
        return op;
    }
    graph_node *n = op->inputs[0].node;
    bool tag_ok = tag && *tag;
    for (const char *p = tag; tag_ok && *p; p++)
        if (*p == ',' || *p == ';' || *p == '=' || (unsigned char)*p < ' ') tag_ok = false;
    if (!tag_ok) {
        graph_node_fail(n, env, "side output tag '%s' is empty or has ',', ';', '=' or control characters",
                        tag ? tag : "");
        return op;
    }
    flint_schema *s = graph_parse_schema(env, n, "side output schema", schema);
    if (!s) return op;
    char key[300];
    snprintf(key, sizeof key, "side.%s", tag);
    const char *prev = graph_kvs_get(&n->params, key);
    if (prev && strcmp(prev, flint_schema_text(s)) != 0) {
        graph_node_fail(n, env, "side output '%s' declared with two schemas: (%s) and (%s)", tag, prev,
                        flint_schema_text(s));
        flint_schema_free(s);
        return op;
    }
    graph_kvs_set(&n->params, key, flint_schema_text(s));
    char *t = xstrdup(tag);
    graph_env_own(env, t);
    flint_stream *out = graph_op_stream(env, n);
    out->inputs[0].tag = t;
    out->inputs[0].schema = s;
    graph_env_own_schema(env, s);   /* lives as long as env: edges borrow it */
    return out;
}

/* ---- two inputs --------------------------------------------------------------------------------------- */

flint_connected *flint_connect(flint_stream *a, flint_stream *b) {
    if (!a || !b) return NULL;
    flint_connected *c = XNEW(flint_connected);
    c->env = a->env;
    c->a = a;
    c->b = b;
    graph_env_own(a->env, c);
    if (b->env != a->env) graph_env_fail(a->env, FLINT_INVALID, "connect: the streams belong to different environments");
    return c;
}

/* The key's column types as text ("BIGINT, STRING") for comparing keys. */
static void key_types(const flint_stream *s, const graph_key *k, char *buf, size_t cap) {
    buf[0] = '\0';
    size_t len = 0;
    if (k->selector) {
        flint_schema *ks = NULL;
        flint_err err = {0};
        if (!k->key_schema || flint_schema_parse(k->key_schema, &ks, &err)) return;
        for (int i = 0; i < flint_schema_field_count(ks) && len < cap; i++)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "",
                                    flint_type_name(flint_schema_field_type(ks, i)));
        flint_schema_free(ks);
        return;
    }
    const flint_schema *sc = graph_stream_schema(s);
    if (!sc) return;
    for (int i = 0; i < k->nfields && len < cap; i++) {
        flint_type t = flint_schema_field_type(sc, k->fields[i]);
        /* INT and BIGINT keys encode alike (row_key.h widens INT), but their key groups differ by
         * the type tag: they must match exactly. */
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", flint_type_name(t));
    }
}

flint_connected *flint_connect_keyed(flint_keyed_stream *a, flint_keyed_stream *b) {
    if (!a || !b) return NULL;
    flint_connected *c = XNEW(flint_connected);
    c->env = a->env;
    c->ka = a;
    c->kb = b;
    graph_env_own(a->env, c);
    if (b->env != a->env) {
        graph_env_fail(a->env, FLINT_INVALID, "connect: the streams belong to different environments");
        return c;
    }
    char ta[512], tb[512];
    key_types(a->stream, a->key, ta, sizeof ta);
    key_types(b->stream, b->key, tb, sizeof tb);
    if (ta[0] && tb[0] && strcmp(ta, tb) != 0)
        graph_env_fail(a->env, FLINT_INVALID, "connect: the keys of the two streams differ in type: (%s) vs (%s)", ta, tb);
    return c;
}

/* Connect a as the first input and b as the second of n (edges of b get input_index 1). */
static void connect_two(flint_env *env, graph_node *n, flint_stream *a, flint_stream *b) {
    graph_connect_input(env, n, a);
    flint_schema *first = n->in_schema;
    n->in_schema = NULL;
    int before = env->nedges;
    const flint_schema *sb = graph_connect_input(env, n, b);
    for (int i = before; i < env->nedges; i++) env->edges[i]->input_index = 1;
    if (sb) graph_kvs_set(&n->params, "in2.schema", flint_schema_text(sb));
    flint_schema_free(n->in_schema);
    n->in_schema = first;
}

flint_stream *flint_co_process(flint_connected *c, flint_fn process1_fn, flint_fn process2_fn,
                               flint_fn on_timer_fn, const char *schema) {
    if (!c) return NULL;
    flint_env *env = c->env;
    bool keyed = c->ka != NULL;
    graph_node *n = graph_node_new(env, GRAPH_OP_CO_PROCESS, "co_process", keyed ? "KeyedCoProcess" : "CoProcess");
    n->takes_udf = true;
    if (keyed) {
        connect_two(env, n, c->ka->stream, c->kb->stream);
        n->key = c->ka->key;
        graph_key_params(env, n, c->ka->key, "key");
        graph_key_params(env, n, c->kb->key, "key2");
    } else {
        connect_two(env, n, c->a, c->b);
    }
    graph_set_fn(env, n, "fn", process1_fn);
    graph_set_fn(env, n, "fn2", process2_fn);
    if (on_timer_fn.ptr || on_timer_fn.name) {
        if (!keyed) graph_node_fail(n, env, "timers need keyed streams (flint_connect_keyed)");
        else graph_set_fn(env, n, "fn.timer", on_timer_fn);
    }
    n->out_schema = out_schema(env, n, schema);
    return graph_op_stream(env, n);
}

flint_stream *flint_broadcast_process(flint_stream *in, flint_stream *bc, flint_fn process_fn,
                                      flint_fn process_bc_fn, const char *schema) {
    if (!in || !bc) return in ? in : bc;
    flint_env *env = in->env;
    graph_node *n = graph_node_new(env, GRAPH_OP_BROADCAST_PROCESS, "broadcast_process", "BroadcastProcess");
    n->takes_udf = true;
    connect_two(env, n, in, flint_broadcast(bc));
    graph_set_fn(env, n, "fn", process_fn);
    graph_set_fn(env, n, "fn2", process_bc_fn);
    n->out_schema = out_schema(env, n, schema);
    return graph_op_stream(env, n);
}

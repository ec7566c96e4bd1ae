/* The job API of flint/flint.h, graph-building side: the environment, sources, transformations,
 * sinks and operator settings, each recording stream nodes and edges and checking its arguments
 * at once. The first error is kept in the env with the operator's name; calls go on returning
 * usable streams so that a job's main runs to flint_execute, which reports it. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "graph/graph_internal.h"
#include "nexmark/nexmark.h"
#include "row/row_key.h"
#include "util/alloc.h"
#include "util/strutil.h"

#define GRAPH_PARALLELISM_LIMIT 32768   /* Flink's upper bound of (max) parallelism */

/* ---- key/value lists ------------------------------------------------------------------------ */

void graph_kvs_set(graph_kvs *kv, const char *key, const char *value) {
    for (int i = 0; i < kv->n; i++) {
        if (strcmp(kv->keys[i], key) == 0) {
            free(kv->values[i]);
            kv->values[i] = xstrdup(value);
            return;
        }
    }
    if (kv->n == kv->cap) {
        kv->cap = kv->cap ? kv->cap * 2 : 4;
        kv->keys = xrealloc(kv->keys, (size_t)kv->cap * sizeof *kv->keys);
        kv->values = xrealloc(kv->values, (size_t)kv->cap * sizeof *kv->values);
    }
    kv->keys[kv->n] = xstrdup(key);
    kv->values[kv->n] = xstrdup(value);
    kv->n++;
}

const char *graph_kvs_get(const graph_kvs *kv, const char *key) {
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0) return kv->values[i];
    return NULL;
}

void graph_kvs_free(graph_kvs *kv) {
    for (int i = 0; i < kv->n; i++) {
        free(kv->keys[i]);
        free(kv->values[i]);
    }
    free(kv->keys);
    free(kv->values);
    memset(kv, 0, sizeof *kv);
}

/* Append p to a growing array of pointers. */
#define PUSH(arr, n, cap, p)                                                   \
    do {                                                                       \
        if ((n) == (cap)) {                                                    \
            (cap) = (cap) ? (cap) * 2 : 8;                                     \
            (arr) = xrealloc((arr), (size_t)(cap) * sizeof *(arr));            \
        }                                                                      \
        (arr)[(n)++] = (p);                                                    \
    } while (0)

/* ---- errors --------------------------------------------------------------------------------- */

/* Equal ignoring case, spaces and underscores ("Flat Map" and "flat_map"). */
static bool loose_equal(const char *a, const char *b) {
    for (;;) {
        while (*a == ' ' || *a == '_') a++;
        while (*b == ' ' || *b == '_') b++;
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
        a++, b++;
    }
}

char *graph_node_label(const graph_node *n) {
    if (loose_equal(n->name, n->api)) return xstrdup(n->name);
    return xasprintf("%s (%s)", n->name, n->api);
}

static void compose_error(flint_env *env) {
    free(env->err_msg);
    if (env->err_node) {
        char *label = graph_node_label(env->err_node);
        env->err_msg = xasprintf("%s: %s", label, env->err_text);
        free(label);
    } else {
        env->err_msg = xstrdup(env->err_text);
    }
}

static void record_error(flint_env *env, int code, const graph_node *node, const char *fmt,
                         va_list ap) {
    if (env->err_code) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    env->err_code = code ? code : FLINT_ERR;
    env->err_node = node;
    env->err_text = xstrdup(buf);
    compose_error(env);
}

int graph_env_fail(flint_env *env, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record_error(env, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

/* An error about node n: "<name>: <message>". */
static void node_fail(graph_node *n, flint_env *env, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void node_fail(graph_node *n, flint_env *env, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record_error(env, FLINT_INVALID, n, fmt, ap);
    va_end(ap);
}

const char *flint_env_error(const flint_env *env) {
    return env && env->err_code ? env->err_msg : NULL;
}

int graph_env_error_code(const flint_env *env) { return env ? env->err_code : FLINT_INVALID; }

void flint_env_fail(flint_env *env, const char *fmt, ...) {
    if (!env) return;
    va_list ap;
    va_start(ap, fmt);
    record_error(env, FLINT_ERR, NULL, fmt, ap);
    va_end(ap);
}

/* ---- environment ---------------------------------------------------------------------------- */

flint_env *graph_env_new(const graph_env_defaults *d) {
    flint_env *env = XNEW(flint_env);
    env->defaults.parallelism = 1;
    env->defaults.max_parallelism = 128;
    env->defaults.buffer_timeout_ms = 100;
    if (d) {
        if (d->parallelism >= 1) env->defaults.parallelism = d->parallelism;
        if (d->max_parallelism >= 1) env->defaults.max_parallelism = d->max_parallelism;
        env->defaults.buffer_timeout_ms = d->buffer_timeout_ms;
    }
    return env;
}

static void key_free(graph_key *k) {
    free(k->fields);
    free(k->selector);
    free(k->key_schema);
    free(k);
}

static void node_free(graph_node *n) {
    free(n->name);
    free(n->uid);
    free(n->slot_sharing_group);
    flint_schema_free(n->in_schema);
    flint_schema_free(n->out_schema);
    graph_kvs_free(&n->params);
    graph_kvs_free(&n->user_params);
    for (int i = 0; i < n->nfns; i++) {
        free(n->fns[i].role);
        free(n->fns[i].symbol);
    }
    free(n);
}

void graph_env_free(flint_env *env) {
    if (!env) return;
    for (int i = 0; i < env->nnodes; i++) node_free(env->nodes[i]);
    free(env->nodes);
    for (int i = 0; i < env->nedges; i++) free(env->edges[i]);
    free(env->edges);
    for (int i = 0; i < env->nstreams; i++) {
        free(env->streams[i]->inputs);
        free(env->streams[i]);
    }
    free(env->streams);
    for (int i = 0; i < env->nkeyed; i++) free(env->keyed[i]);
    free(env->keyed);
    for (int i = 0; i < env->nkeys; i++) key_free(env->keys[i]);
    free(env->keys);
    for (int i = 0; i < env->nowned; i++) free(env->owned[i]);
    free(env->owned);
    for (int i = 0; i < env->nowned_schemas; i++) flint_schema_free(env->owned_schemas[i]);
    free(env->owned_schemas);
    graph_kvs_free(&env->config);
    graph_kvs_free(&env->params);
    free(env->err_text);
    free(env->err_msg);
    graph_job_free(env->job);
    free(env);
}

void graph_env_add_config(flint_env *env, const char *key, const char *value) {
    graph_kvs_set(&env->config, key, value);
}

void graph_env_set_execute_hook(flint_env *env, graph_execute_fn fn, void *ud) {
    env->hook = fn;
    env->hook_ud = ud;
}

bool graph_env_executed(const flint_env *env) { return env && env->executed; }

Flint__Graph__JobGraph *graph_env_job(const flint_env *env) { return env ? env->job : NULL; }

void flint_env_set_parallelism(flint_env *env, int parallelism) {
    if (!env) return;
    if (parallelism < 1 || parallelism > GRAPH_PARALLELISM_LIMIT) {
        graph_env_fail(env, FLINT_INVALID,
                       "flint_env_set_parallelism: %d is not a valid parallelism (1..%d)",
                       parallelism, GRAPH_PARALLELISM_LIMIT);
        return;
    }
    env->parallelism = parallelism;
}

void flint_env_set_max_parallelism(flint_env *env, int max_parallelism) {
    if (!env) return;
    if (max_parallelism < 1 || max_parallelism > GRAPH_PARALLELISM_LIMIT) {
        graph_env_fail(env, FLINT_INVALID,
                       "flint_env_set_max_parallelism: %d is not a valid maximum parallelism (1..%d)",
                       max_parallelism, GRAPH_PARALLELISM_LIMIT);
        return;
    }
    env->max_parallelism = max_parallelism;
}

void flint_env_set_buffer_timeout(flint_env *env, int64_t ms) {
    if (!env) return;
    if (ms < -1) {
        graph_env_fail(env, FLINT_INVALID,
                       "flint_env_set_buffer_timeout: %lld ms is not valid (-1, 0 or a positive number "
                       "of milliseconds)",
                       (long long)ms);
        return;
    }
    env->buffer_timeout_ms = ms;
    env->buffer_timeout_set = true;
}

void flint_env_disable_operator_chaining(flint_env *env) {
    if (env) env->chaining_disabled = true;
}

void flint_env_set_config(flint_env *env, const char *key, const char *value) {
    if (!env) return;
    if (!key || !*key || !value) {
        graph_env_fail(env, FLINT_INVALID, "flint_env_set_config: a key and a value are needed");
        return;
    }
    /* A known key gets its value checked now, as -D would. */
    if (config_find(key) >= 0) {
        flint_config *probe = config_new();
        flint_err err = {0};
        int rc = config_set(probe, key, value, "flint_env_set_config", &err);
        config_free(probe);
        if (rc) {
            graph_env_fail(env, FLINT_CONFIG, "%s", err.msg);
            return;
        }
    }
    graph_kvs_set(&env->config, key, value);
}

void flint_env_set_param(flint_env *env, const char *key, const char *value) {
    if (!env) return;
    if (!key || !*key || !value) {
        graph_env_fail(env, FLINT_INVALID, "flint_env_set_param: a key and a value are needed");
        return;
    }
    graph_kvs_set(&env->params, key, value);
}

int flint_execute(flint_env *env, const char *job_name) {
    if (!env) return FLINT_INVALID;
    if (env->executed)
        return graph_env_fail(env, FLINT_STATE,
                              "flint_execute: called twice; the main of a job executes one job");
    env->executed = true;
    if (env->err_code) return env->err_code;
    flint_err err = {0};
    Flint__Graph__JobGraph *job = NULL;
    int rc = graph_build(env, job_name, &job, &err);
    if (rc) return graph_env_fail(env, rc, "%s", err.msg);
    env->job = job;
    if (!env->hook) return FLINT_OK;
    rc = env->hook(env, job, env->hook_ud);
    if (rc && !env->err_code) graph_env_fail(env, rc, "flint_execute: %s", flint_strerror(rc));
    return rc;
}

/* ---- nodes, edges, streams ------------------------------------------------------------------ */

static graph_node *node_new(flint_env *env, graph_op_kind kind, const char *api, const char *name) {
    graph_node *n = XNEW(graph_node);
    n->id = env->nnodes + 1;
    n->kind = kind;
    n->api = api;
    n->name = xstrdup(name);
    n->chaining = GRAPH_CHAIN_ALWAYS;
    PUSH(env->nodes, env->nnodes, env->cap_nodes, n);
    return n;
}

static flint_stream *stream_new(flint_env *env, int ninputs, const char *what) {
    flint_stream *s = XNEW(flint_stream);
    s->env = env;
    s->ninputs = ninputs;
    s->inputs = xcalloc((size_t)(ninputs ? ninputs : 1), sizeof *s->inputs);
    s->what = what;
    PUSH(env->streams, env->nstreams, env->cap_streams, s);
    return s;
}

/* The stream of node n's output (or, for a sink, the handle for its settings). */
static flint_stream *op_stream(flint_env *env, graph_node *n) {
    flint_stream *s = stream_new(env, 1, NULL);
    s->inputs[0].node = n;
    s->inputs[0].partitioner = -1;
    s->is_sink = graph_op_kind_role(n->kind) == GRAPH_ROLE_SINK;
    return s;
}

/* A copy of in (its inputs) standing for a partitioning or a union. */
static flint_stream *virtual_stream(flint_stream *in, const char *what) {
    flint_stream *s = stream_new(in->env, in->ninputs, what);
    memcpy(s->inputs, in->inputs, (size_t)in->ninputs * sizeof *s->inputs);
    s->is_sink = in->is_sink;
    return s;
}

static graph_key *key_new(flint_env *env) {
    graph_key *k = XNEW(graph_key);
    PUSH(env->keys, env->nkeys, env->cap_keys, k);
    return k;
}

/* The schema of what stream s carries; NULL when unknown (after an error) or a sink. */
static const flint_schema *stream_schema(const flint_stream *s) {
    if (s->ninputs && s->inputs[0].tag) return s->inputs[0].schema;   /* a side output */
    return s->ninputs ? s->inputs[0].node->out_schema : NULL;
}

/* Connect every input of in to node n; returns the input schema (NULL when unknown). */
static const flint_schema *connect_input(flint_env *env, graph_node *n, flint_stream *in) {
    if (in->is_sink) {
        char *label = graph_node_label(in->inputs[0].node);
        node_fail(n, env, "the input is a sink (%s); a sink ends a stream", label);
        free(label);
        return NULL;
    }
    for (int i = 0; i < in->ninputs; i++) {
        graph_edge *e = XNEW(graph_edge);
        e->id = env->nedges + 1;
        e->src = in->inputs[i].node;
        e->dst = n;
        e->partitioner = in->inputs[i].partitioner;
        e->key = in->inputs[i].key;
        e->tag = in->inputs[i].tag;
        e->schema = in->inputs[i].schema;
        PUSH(env->edges, env->nedges, env->cap_edges, e);
    }
    const flint_schema *s = stream_schema(in);
    if (s) n->in_schema = flint_schema_copy(s);
    return s;
}

static bool is_identifier(const char *s) {
    if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return false;
    return true;
}

/* Record user function fn in role ("fn", "fn.open", ...) of n; replaces an earlier one. */
static void set_fn(flint_env *env, graph_node *n, const char *role, flint_fn fn) {
    if (!fn.ptr || !fn.name || !*fn.name) {
        node_fail(n, env, "no user function given for %s (use FLINT_FN(function))", role);
        return;
    }
    if (!is_identifier(fn.name)) {
        node_fail(n, env, "user function '%s' is not a function name (use FLINT_FN(function))",
                  fn.name);
        return;
    }
    int i = 0;
    while (i < n->nfns && strcmp(n->fns[i].role, role) != 0) i++;
    if (i == n->nfns) {
        if (n->nfns == GRAPH_MAX_FNS) return;
        n->fns[n->nfns++].role = xstrdup(role);
    } else {
        free(n->fns[i].symbol);
    }
    n->fns[i].symbol = xstrdup(fn.name);
    n->fns[i].ptr = fn.ptr;
    graph_kvs_set(&n->params, role, fn.name);
}

/* Parse a column list given for n ("output schema", "schema"); NULL after recording an error. */
static flint_schema *parse_schema(flint_env *env, graph_node *n, const char *what, const char *text) {
    const char *p = text;
    while (p && isspace((unsigned char)*p)) p++;
    if (!p || !*p) {
        node_fail(n, env, "%s missing", what);
        return NULL;
    }
    flint_schema *s = NULL;
    flint_err err = {0};
    if (flint_schema_parse(text, &s, &err)) {
        node_fail(n, env, "%s: %s", what, err.msg);
        return NULL;
    }
    return s;
}

/* A file path as the taskmanagers should see it: relative paths are taken relative to the
 * client's working directory (the daemons' is not the user's). Returns a new string. */
static char *absolute_path(const char *path) {
    if (!path || !*path) return xstrdup("");
    if (path[0] == '/') return xstrdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd) return xstrdup(path);
    const char *p = path;
    while (p[0] == '.' && p[1] == '/') p += 2;
    char *abs = xasprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", *p ? p : ".");
    free(cwd);
    return abs;
}

/* ---- sources -------------------------------------------------------------------------------- */

static graph_node *source_node(flint_env *env, graph_op_kind kind, const char *api, const char *name) {
    return node_new(env, kind, api, name);
}

flint_stream *flint_from_elements(flint_env *env, const char *schema, int n, const char *const *rows) {
    if (!env) return NULL;
    graph_node *node = source_node(env, GRAPH_OP_SOURCE_ELEMENTS, "from_elements",
                                   "Source: Collection Source");
    node->out_schema = parse_schema(env, node, "schema", schema);
    if (n < 0 || (n > 0 && !rows)) {
        node_fail(node, env, "%d elements given%s", n, n > 0 ? " but no rows" : "");
        n = 0;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (rows[i] ? strlen(rows[i]) : 0) + 1;
    char *joined = xmalloc(total + 1), *w = joined;
    flint_row_builder b;
    if (node->out_schema) flint_row_builder_init(&b, node->out_schema);
    for (int i = 0; i < n; i++) {
        if (!rows[i]) {
            node_fail(node, env, "element %d is NULL", i + 1);
            continue;
        }
        if (strchr(rows[i], '\n')) {
            node_fail(node, env, "element %d contains a line break", i + 1);
            continue;
        }
        if (node->out_schema) {
            flint_err err = {0};
            flint_row_builder_reset(&b);
            if (flint_row_parse(&b, rows[i], strlen(rows[i]), ',', &err))
                node_fail(node, env, "element %d ('%s'): %s", i + 1, rows[i], err.msg);
        }
        if (i) *w++ = '\n';
        size_t len = strlen(rows[i]);
        memcpy(w, rows[i], len);
        w += len;
    }
    *w = '\0';
    if (node->out_schema) flint_row_builder_free(&b);
    graph_kvs_set(&node->params, "rows", joined);
    free(joined);
    return op_stream(env, node);
}

flint_stream *flint_from_sequence(flint_env *env, int64_t from, int64_t to) {
    if (!env) return NULL;
    graph_node *node = source_node(env, GRAPH_OP_SOURCE_SEQUENCE, "from_sequence",
                                   "Source: Sequence Source");
    flint_err err = {0};
    if (flint_schema_parse("value BIGINT", &node->out_schema, &err))
        node_fail(node, env, "%s", err.msg);
    if (from > to)
        node_fail(node, env, "the start of the sequence (%lld) is greater than its end (%lld)",
                  (long long)from, (long long)to);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)from);
    graph_kvs_set(&node->params, "from", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)to);
    graph_kvs_set(&node->params, "to", buf);
    return op_stream(env, node);
}

flint_stream *flint_source_datagen(flint_env *env, const char *schema, int64_t count,
                                   double rows_per_second) {
    if (!env) return NULL;
    graph_node *node = source_node(env, GRAPH_OP_SOURCE_DATAGEN, "source_datagen", "Source: DataGen");
    node->out_schema = parse_schema(env, node, "schema", schema);
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", count < 0 ? -1LL : (long long)count);
    graph_kvs_set(&node->params, "count", buf);
    if (!(rows_per_second > 0)) rows_per_second = 0;   /* also NaN */
    snprintf(buf, sizeof buf, "%.15g", rows_per_second);
    graph_kvs_set(&node->params, "rate", buf);
    snprintf(buf, sizeof buf, "%d", node->id);
    graph_kvs_set(&node->params, "seed", buf);
    return op_stream(env, node);
}

flint_stream *flint_source_text_file(flint_env *env, const char *path) {
    if (!env) return NULL;
    char *abs = absolute_path(path);
    char *name = xasprintf("Source: %s", *abs ? abs : "(no path)");
    graph_node *node = source_node(env, GRAPH_OP_SOURCE_TEXT_FILE, "source_text_file", name);
    free(name);
    node->non_parallel = true;
    flint_err err = {0};
    if (flint_schema_parse("line STRING", &node->out_schema, &err)) node_fail(node, env, "%s", err.msg);
    if (!*abs) node_fail(node, env, "no file path given");
    graph_kvs_set(&node->params, "path", abs);
    free(abs);
    return op_stream(env, node);
}

flint_stream *flint_source_text_file_rate(flint_env *env, const char *path, double lines_per_second) {
    flint_stream *st = flint_source_text_file(env, path);
    if (!st) return NULL;
    if (!(lines_per_second > 0)) lines_per_second = 0;   /* also NaN */
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", lines_per_second);
    graph_kvs_set(&st->inputs[0].node->params, "rate", buf);
    return st;
}

flint_stream *flint_source_socket(flint_env *env, const char *host, int port) {
    if (!env) return NULL;
    graph_node *node = source_node(env, GRAPH_OP_SOURCE_SOCKET, "source_socket", "Source: Socket Stream");
    node->non_parallel = true;
    flint_err err = {0};
    if (flint_schema_parse("line STRING", &node->out_schema, &err)) node_fail(node, env, "%s", err.msg);
    if (!host || !*host) node_fail(node, env, "no host given");
    if (port < 1 || port > 65535) node_fail(node, env, "port %d is not in 1..65535", port);
    graph_kvs_set(&node->params, "host", host ? host : "");
    char buf[16];
    snprintf(buf, sizeof buf, "%d", port);
    graph_kvs_set(&node->params, "port", buf);
    return op_stream(env, node);
}

flint_stream *flint_source_nexmark(flint_env *env, const char *table, int64_t events,
                                   double events_per_second, int64_t seed) {
    if (!env) return NULL;
    graph_node *node = source_node(env, GRAPH_OP_SOURCE_NEXMARK, "source_nexmark", "Source: Nexmark");
    nexmark_table t = NEXMARK_TABLE_BID;
    if (!nexmark_table_parse(table, &t))
        node_fail(node, env, "unknown Nexmark table '%s' (person, auction, bid or all)", table ? table : "(null)");
    flint_err err = {0};
    if (flint_schema_parse(nexmark_table_schema(t), &node->out_schema, &err)) node_fail(node, env, "%s", err.msg);
    graph_kvs_set(&node->params, "table", nexmark_table_name(t));
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", events < 0 ? -1LL : (long long)events);
    graph_kvs_set(&node->params, "events", buf);
    if (!(events_per_second > 0) || isinf(events_per_second)) events_per_second = 0; /* also NaN */
    snprintf(buf, sizeof buf, "%.15g", events_per_second);
    graph_kvs_set(&node->params, "rate", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)seed);
    graph_kvs_set(&node->params, "seed", buf);
    return op_stream(env, node);
}

/* ---- transformations ------------------------------------------------------------------------ */

/* An operator running user function fn on one input; out_schema NULL keeps the input's schema. */
static flint_stream *udf_op(flint_stream *in, graph_op_kind kind, const char *api, const char *name,
                            flint_fn fn, bool has_out_schema, const char *out_schema) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_node *n = node_new(env, kind, api, name);
    n->takes_udf = true;
    const flint_schema *ins = connect_input(env, n, in);
    set_fn(env, n, "fn", fn);
    if (has_out_schema)
        n->out_schema = parse_schema(env, n, "output schema", out_schema);
    else if (ins)
        n->out_schema = flint_schema_copy(ins);
    return op_stream(env, n);
}

flint_stream *flint_map(flint_stream *in, flint_fn fn, const char *out_schema) {
    return udf_op(in, GRAPH_OP_MAP, "map", "Map", fn, true, out_schema);
}

flint_stream *flint_flat_map(flint_stream *in, flint_fn fn, const char *out_schema) {
    return udf_op(in, GRAPH_OP_FLAT_MAP, "flat_map", "Flat Map", fn, true, out_schema);
}

flint_stream *flint_filter(flint_stream *in, flint_fn fn) {
    return udf_op(in, GRAPH_OP_FILTER, "filter", "Filter", fn, false, NULL);
}

flint_stream *flint_process(flint_stream *in, flint_fn fn, const char *out_schema) {
    return udf_op(in, GRAPH_OP_PROCESS, "process", "Process", fn, true, out_schema);
}

flint_stream *flint_project(flint_stream *in, const char *fields) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_node *n = node_new(env, GRAPH_OP_PROJECT, "project", "Projection");
    const flint_schema *ins = connect_input(env, n, in);
    if (!ins) return op_stream(env, n);
    int from[FLINT_MAX_FIELDS];
    flint_err err = {0};
    int k = row_key_fields_parse(ins, fields, from, FLINT_MAX_FIELDS, &err);
    if (k < 0) {
        node_fail(n, env, "fields \"%s\": %s", fields ? fields : "", err.msg);
        return op_stream(env, n);
    }
    n->out_schema = flint_schema_select(ins, from, k);
    char buf[FLINT_MAX_FIELDS * 6];
    row_key_indexes_format(from, k, buf, sizeof buf);
    graph_kvs_set(&n->params, "fields", buf);
    return op_stream(env, n);
}

flint_stream *flint_union(flint_stream *a, flint_stream *b) {
    if (!a || !b) return a ? a : b;
    flint_env *env = a->env;
    if (b->env != env) {
        graph_env_fail(env, FLINT_INVALID, "union: the streams belong to different environments");
        return a;
    }
    if (a->is_sink || b->is_sink) {
        graph_env_fail(env, FLINT_INVALID, "union: a sink cannot be unioned; a sink ends a stream");
        return a;
    }
    for (int i = 0; i < a->ninputs; i++)
        for (int j = 0; j < b->ninputs; j++)
            if (a->inputs[i].node == b->inputs[j].node) {
                char *label = graph_node_label(a->inputs[i].node);
                graph_env_fail(env, FLINT_INVALID, "union: a stream cannot be unioned with itself (%s)",
                               label);
                free(label);
                return a;
            }
    const flint_schema *sa = stream_schema(a), *sb = stream_schema(b);
    if (sa && sb && !flint_schema_equal(sa, sb))
        graph_env_fail(env, FLINT_INVALID, "union: schemas differ: (%s) vs (%s)", flint_schema_text(sa),
                       flint_schema_text(sb));
    flint_stream *u = stream_new(env, a->ninputs + b->ninputs, "union");
    memcpy(u->inputs, a->inputs, (size_t)a->ninputs * sizeof *u->inputs);
    memcpy(u->inputs + a->ninputs, b->inputs, (size_t)b->ninputs * sizeof *u->inputs);
    return u;
}

/* The description of stream s's producer for messages about a key_by: "Flat Map". */
static char *producer_label(const flint_stream *s) {
    if (s->ninputs == 1) return graph_node_label(s->inputs[0].node);
    return xstrdup("a union");
}

static flint_keyed_stream *keyed_new(flint_stream *in, graph_key *key) {
    flint_env *env = in->env;
    flint_keyed_stream *ks = XNEW(flint_keyed_stream);
    ks->env = env;
    ks->key = key;
    ks->stream = virtual_stream(in, "key_by");
    for (int i = 0; i < ks->stream->ninputs; i++) {
        ks->stream->inputs[i].partitioner = FLINT__GRAPH__PARTITIONER__HASH;
        ks->stream->inputs[i].key = key;
    }
    PUSH(env->keyed, env->nkeyed, env->cap_keyed, ks);
    return ks;
}

flint_keyed_stream *flint_key_by(flint_stream *in, const char *fields) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_key *key = key_new(env);
    const flint_schema *s = stream_schema(in);
    if (in->is_sink) {
        graph_env_fail(env, FLINT_INVALID, "key_by: the input is a sink; a sink ends a stream");
    } else if (s) {
        int idx[FLINT_MAX_FIELDS];
        flint_err err = {0};
        int n = row_key_fields_parse(s, fields, idx, FLINT_MAX_FIELDS, &err);
        if (n < 0) {
            char *label = producer_label(in);
            graph_env_fail(env, FLINT_INVALID, "key_by(\"%s\") after %s: %s", fields ? fields : "",
                           label, err.msg);
            free(label);
        } else {
            key->fields = xmalloc((size_t)n * sizeof *key->fields);
            memcpy(key->fields, idx, (size_t)n * sizeof *idx);
            key->nfields = n;
        }
    }
    return keyed_new(in, key);
}

flint_keyed_stream *flint_key_by_fn(flint_stream *in, flint_fn fn, const char *key_schema) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_key *key = key_new(env);
    if (in->is_sink) graph_env_fail(env, FLINT_INVALID, "key_by: the input is a sink; a sink ends a stream");
    if (!fn.ptr || !fn.name || !is_identifier(fn.name)) {
        graph_env_fail(env, FLINT_INVALID,
                       "key_by: the key selector is not a function name (use FLINT_FN(function))");
    } else {
        key->selector = xstrdup(fn.name);
        key->selector_ptr = fn.ptr;
    }
    const char *p = key_schema;
    while (p && isspace((unsigned char)*p)) p++;
    if (!p || !*p) {
        graph_env_fail(env, FLINT_INVALID, "key_by: the key schema of key selector '%s' is missing",
                       fn.name ? fn.name : "");
    } else {
        flint_schema *ks = NULL;
        flint_err err = {0};
        if (flint_schema_parse(key_schema, &ks, &err)) {
            graph_env_fail(env, FLINT_INVALID, "key_by: key schema: %s", err.msg);
        } else {
            key->key_schema = xstrdup(flint_schema_text(ks));
            flint_schema_free(ks);
        }
    }
    return keyed_new(in, key);
}

/* A keyed operator on ks: node with the key params; output schema = input schema. */
static graph_node *keyed_op(flint_keyed_stream *ks, graph_op_kind kind, const char *api,
                            const char *name) {
    flint_env *env = ks->env;
    graph_node *n = node_new(env, kind, api, name);
    const flint_schema *ins = connect_input(env, n, ks->stream);
    if (ins) n->out_schema = flint_schema_copy(ins);
    n->key = ks->key;
    graph_key_params(env, n, ks->key, "key");
    return n;
}

flint_stream *flint_reduce(flint_keyed_stream *in, flint_fn fn) {
    if (!in) return NULL;
    graph_node *n = keyed_op(in, GRAPH_OP_REDUCE, "reduce", "Keyed Reduce");
    n->takes_udf = true;
    set_fn(in->env, n, "fn", fn);
    return op_stream(in->env, n);
}

static flint_stream *aggregate(flint_keyed_stream *in, const char *agg, const char *verb,
                               const char *field) {
    if (!in) return NULL;
    flint_env *env = in->env;
    graph_node *n = keyed_op(in, GRAPH_OP_AGGREGATE, agg, "Keyed Aggregation");
    graph_kvs_set(&n->params, "agg", agg);
    const flint_schema *s = n->in_schema;
    if (!field || !*field) {
        node_fail(n, env, "no field given");
        return op_stream(env, n);
    }
    if (s) {
        int f = flint_schema_field_index(s, field);
        if (f < 0) {
            /* A field position, as Flink's sum(int) takes. */
            int64_t pos;
            if (str_parse_int(field, &pos) == 0 && pos >= 0 && pos < flint_schema_field_count(s))
                f = (int)pos;
        }
        if (f < 0) {
            node_fail(n, env, "no field '%s' in (%s)", field, flint_schema_text(s));
        } else {
            flint_type t = flint_schema_field_type(s, f);
            if (!flint_type_is_numeric(t))
                node_fail(n, env, "cannot %s field '%s' of type %s (INT, BIGINT or DOUBLE only)", verb,
                          flint_schema_field_name(s, f), flint_type_name(t));
            char buf[16];
            snprintf(buf, sizeof buf, "%d", f);
            graph_kvs_set(&n->params, "field", buf);
        }
    }
    return op_stream(env, n);
}

flint_stream *flint_sum(flint_keyed_stream *in, const char *field) {
    return aggregate(in, "sum", "sum", field);
}
flint_stream *flint_min(flint_keyed_stream *in, const char *field) {
    return aggregate(in, "min", "take the min of", field);
}
flint_stream *flint_max(flint_keyed_stream *in, const char *field) {
    return aggregate(in, "max", "take the max of", field);
}
flint_stream *flint_min_by(flint_keyed_stream *in, const char *field) {
    return aggregate(in, "min_by", "take the min_by of", field);
}
flint_stream *flint_max_by(flint_keyed_stream *in, const char *field) {
    return aggregate(in, "max_by", "take the max_by of", field);
}

static flint_stream *partition(flint_stream *in, Flint__Graph__Partitioner p, const char *what) {
    if (!in) return NULL;
    if (in->is_sink) {
        graph_env_fail(in->env, FLINT_INVALID, "%s: the input is a sink; a sink ends a stream", what);
        return in;
    }
    flint_stream *s = virtual_stream(in, what);
    for (int i = 0; i < s->ninputs; i++) {
        s->inputs[i].partitioner = (int)p;
        s->inputs[i].key = NULL;
    }
    return s;
}

flint_stream *flint_rebalance(flint_stream *in) {
    return partition(in, FLINT__GRAPH__PARTITIONER__REBALANCE, "rebalance");
}
flint_stream *flint_rescale(flint_stream *in) {
    return partition(in, FLINT__GRAPH__PARTITIONER__RESCALE, "rescale");
}
flint_stream *flint_shuffle(flint_stream *in) {
    return partition(in, FLINT__GRAPH__PARTITIONER__SHUFFLE, "shuffle");
}
flint_stream *flint_broadcast(flint_stream *in) {
    return partition(in, FLINT__GRAPH__PARTITIONER__BROADCAST, "broadcast");
}
flint_stream *flint_forward(flint_stream *in) {
    return partition(in, FLINT__GRAPH__PARTITIONER__FORWARD, "forward");
}

/* ---- sinks ---------------------------------------------------------------------------------- */

static graph_node *sink_node(flint_stream *in, graph_op_kind kind, const char *api, const char *name) {
    graph_node *n = node_new(in->env, kind, api, name);
    connect_input(in->env, n, in);
    return n;
}

flint_stream *flint_sink_print(flint_stream *in) {
    if (!in) return NULL;
    return op_stream(in->env, sink_node(in, GRAPH_OP_SINK_PRINT, "sink_print", "Sink: Print to Std. Out"));
}

flint_stream *flint_sink_text_file(flint_stream *in, const char *dir) {
    if (!in) return NULL;
    char *abs = absolute_path(dir);
    char *name = xasprintf("Sink: %s", *abs ? abs : "(no directory)");
    graph_node *n = sink_node(in, GRAPH_OP_SINK_TEXT_FILE, "sink_text_file", name);
    free(name);
    if (!*abs) node_fail(n, in->env, "no directory given");
    graph_kvs_set(&n->params, "path", abs);
    free(abs);
    return op_stream(in->env, n);
}

flint_stream *flint_sink_file_exactly_once(flint_stream *in, const char *dir) {
    if (!in) return NULL;
    char *abs = absolute_path(dir);
    char *name = xasprintf("Sink: %s (exactly-once)", *abs ? abs : "(no directory)");
    graph_node *n = sink_node(in, GRAPH_OP_SINK_FILE_EXACTLY_ONCE, "sink_file_exactly_once", name);
    free(name);
    if (!*abs) node_fail(n, in->env, "no directory given");
    graph_kvs_set(&n->params, "path", abs);
    free(abs);
    return op_stream(in->env, n);
}

flint_stream *flint_sink_blackhole(flint_stream *in) {
    if (!in) return NULL;
    return op_stream(in->env, sink_node(in, GRAPH_OP_SINK_BLACKHOLE, "sink_blackhole",
                                        "Sink: Discarding Sink"));
}

flint_stream *flint_sink(flint_stream *in, flint_fn fn) {
    if (!in) return NULL;
    graph_node *n = sink_node(in, GRAPH_OP_SINK_FN, "sink", "Sink: Unnamed");
    n->takes_udf = true;
    set_fn(in->env, n, "fn", fn);
    return op_stream(in->env, n);
}

/* ---- operator settings ---------------------------------------------------------------------- */

/* The operator a setting applies to, or NULL (error recorded) when s is a partitioned stream. */
static graph_node *target(flint_stream *s, const char *setting) {
    if (!s) return NULL;
    if (s->what) {
        graph_env_fail(s->env, FLINT_INVALID,
                       "%s: %s() makes a partitioned stream, not an operator; set %s on an operator",
                       setting, s->what, setting);
        return NULL;
    }
    return s->inputs[0].node;
}

static bool blank(const char *s) {
    while (s && isspace((unsigned char)*s)) s++;
    return !s || !*s;
}

flint_stream *flint_name(flint_stream *s, const char *name) {
    graph_node *n = target(s, "name");
    if (!n) return s;
    if (blank(name)) {
        node_fail(n, s->env, "name: the name is empty");
        return s;
    }
    free(n->name);
    graph_op_role role = graph_op_kind_role(n->kind);
    if (role == GRAPH_ROLE_SOURCE && !str_starts_with(name, "Source: "))
        n->name = xasprintf("Source: %s", name);
    else if (role == GRAPH_ROLE_SINK && !str_starts_with(name, "Sink: "))
        n->name = xasprintf("Sink: %s", name);
    else
        n->name = xstrdup(name);
    n->named = true;
    if (s->env->err_node == n) compose_error(s->env);
    return s;
}

flint_stream *flint_uid(flint_stream *s, const char *uid) {
    graph_node *n = target(s, "uid");
    if (!n) return s;
    if (blank(uid)) {
        node_fail(n, s->env, "uid: the uid is empty");
        return s;
    }
    free(n->uid);
    n->uid = xstrdup(uid);
    return s;
}

flint_stream *flint_set_parallelism(flint_stream *s, int parallelism) {
    graph_node *n = target(s, "set_parallelism");
    if (!n) return s;
    if (parallelism < 1 || parallelism > GRAPH_PARALLELISM_LIMIT) {
        node_fail(n, s->env, "set_parallelism: %d is not a valid parallelism (1..%d)", parallelism,
                  GRAPH_PARALLELISM_LIMIT);
        return s;
    }
    if (n->non_parallel && parallelism != 1) {
        node_fail(n, s->env, "set_parallelism: the source is not parallel; its parallelism must be 1, not %d",
                  parallelism);
        return s;
    }
    n->parallelism = parallelism;
    return s;
}

flint_stream *flint_slot_sharing_group(flint_stream *s, const char *group) {
    graph_node *n = target(s, "slot_sharing_group");
    if (!n) return s;
    if (blank(group)) {
        node_fail(n, s->env, "slot_sharing_group: the group name is empty");
        return s;
    }
    free(n->slot_sharing_group);
    n->slot_sharing_group = xstrdup(group);
    return s;
}

flint_stream *flint_start_new_chain(flint_stream *s) {
    graph_node *n = target(s, "start_new_chain");
    if (n && n->chaining == GRAPH_CHAIN_ALWAYS) n->chaining = GRAPH_CHAIN_HEAD;
    return s;
}

flint_stream *flint_disable_chaining(flint_stream *s) {
    graph_node *n = target(s, "disable_chaining");
    if (n) n->chaining = GRAPH_CHAIN_NEVER;
    return s;
}

flint_stream *flint_param(flint_stream *s, const char *key, const char *value) {
    graph_node *n = target(s, "param");
    if (!n) return s;
    if (blank(key) || !value) {
        node_fail(n, s->env, "param: a key and a value are needed");
        return s;
    }
    graph_kvs_set(&n->user_params, key, value);
    return s;
}

static flint_stream *with_fn(flint_stream *s, const char *setting, const char *role, flint_fn fn) {
    graph_node *n = target(s, setting);
    if (!n) return s;
    if (!n->takes_udf) {
        node_fail(n, s->env, "%s: the operator runs no user function", setting);
        return s;
    }
    set_fn(s->env, n, role, fn);
    return s;
}

flint_stream *flint_with_open(flint_stream *s, flint_fn open_fn) {
    return with_fn(s, "with_open", "fn.open", open_fn);
}

flint_stream *flint_with_close(flint_stream *s, flint_fn close_fn) {
    return with_fn(s, "with_close", "fn.close", close_fn);
}

/* ---- user functions ------------------------------------------------------------------------- */

int graph_env_foreach_udf(const flint_env *env, int (*fn)(const graph_udf *u, void *ud), void *ud) {
    for (int i = 0; i < env->nnodes; i++) {
        const graph_node *n = env->nodes[i];
        if (!n->nfns) continue;
        char *label = graph_node_label(n);
        int rc = 0;
        for (int j = 0; j < n->nfns && !rc; j++) {
            graph_udf u = {label, n->fns[j].role, n->fns[j].symbol, n->fns[j].ptr};
            rc = fn(&u, ud);
        }
        free(label);
        if (rc) return rc;
    }
    return 0;
}

int graph_env_udf_count(const flint_env *env) {
    int c = 0;
    for (int i = 0; i < env->nnodes; i++) c += env->nodes[i]->nfns;
    return c;
}

/* ---- helpers for the other API files (graph_internal.h) --------------------------------------- */

graph_node *graph_node_new(flint_env *env, graph_op_kind kind, const char *api, const char *name) {
    return node_new(env, kind, api, name);
}
flint_stream *graph_op_stream(flint_env *env, graph_node *n) { return op_stream(env, n); }
const flint_schema *graph_connect_input(flint_env *env, graph_node *n, flint_stream *in) {
    return connect_input(env, n, in);
}
const flint_schema *graph_stream_schema(const flint_stream *s) { return stream_schema(s); }
graph_node *graph_keyed_op(flint_keyed_stream *ks, graph_op_kind kind, const char *api, const char *name) {
    return keyed_op(ks, kind, api, name);
}
void graph_set_fn(flint_env *env, graph_node *n, const char *role, flint_fn fn) { set_fn(env, n, role, fn); }
void graph_key_params(flint_env *env, graph_node *n, const graph_key *k, const char *prefix) {
    char name[32];
    if (k->nfields) {
        char buf[FLINT_MAX_FIELDS * 6];
        row_key_indexes_format(k->fields, k->nfields, buf, sizeof buf);
        snprintf(name, sizeof name, "%s.fields", prefix);
        graph_kvs_set(&n->params, name, buf);
    } else if (k->selector) {
        snprintf(name, sizeof name, "%s.schema", prefix);
        graph_kvs_set(&n->params, name, k->key_schema ? k->key_schema : "");
        snprintf(name, sizeof name, "%s.selector", prefix);
        set_fn(env, n, name, (flint_fn){k->selector_ptr, k->selector});
    }
}
flint_schema *graph_parse_schema(flint_env *env, graph_node *n, const char *what, const char *text) {
    return parse_schema(env, n, what, text);
}
void graph_node_fail(graph_node *n, flint_env *env, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record_error(env, FLINT_INVALID, n, fmt, ap);
    va_end(ap);
}
void graph_env_own(flint_env *env, void *p) { PUSH(env->owned, env->nowned, env->cap_owned, p); }
void graph_env_own_schema(flint_env *env, flint_schema *s) {
    PUSH(env->owned_schemas, env->nowned_schemas, env->cap_owned_schemas, s);
}

/* From stream graph to job graph: parallelism and slot sharing defaults, partitioner defaults and
 * checks, operator chaining (Flink's rules, branching chains included), the protobuf JobGraph, and
 * the printable plan of `flint info`. Also the operator catalog helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "graph/graph_internal.h"
#include "row/row_key.h"
#include "util/alloc.h"
#include "util/strutil.h"

/* ---- operator catalog ----------------------------------------------------------------------- */

static const struct {
    const char *name;
    graph_op_role role;
} op_kinds[] = {
#define OP_KIND(id, name, role) {name, GRAPH_ROLE_##role},
#include "graph/op_kinds.def"
#undef OP_KIND
};

const char *graph_op_kind_name(graph_op_kind kind) {
    return (unsigned)kind < GRAPH_OP_COUNT ? op_kinds[kind].name : NULL;
}

graph_op_role graph_op_kind_role(graph_op_kind kind) {
    return (unsigned)kind < GRAPH_OP_COUNT ? op_kinds[kind].role : GRAPH_ROLE_ONE_INPUT;
}

int graph_op_kind_find(const char *name) {
    for (int i = 0; name && i < GRAPH_OP_COUNT; i++)
        if (strcmp(op_kinds[i].name, name) == 0) return i;
    return -1;
}

const char *graph_partitioner_name(Flint__Graph__Partitioner p) {
    switch (p) {
    case FLINT__GRAPH__PARTITIONER__FORWARD: return "FORWARD";
    case FLINT__GRAPH__PARTITIONER__REBALANCE: return "REBALANCE";
    case FLINT__GRAPH__PARTITIONER__RESCALE: return "RESCALE";
    case FLINT__GRAPH__PARTITIONER__SHUFFLE: return "SHUFFLE";
    case FLINT__GRAPH__PARTITIONER__HASH: return "HASH";
    case FLINT__GRAPH__PARTITIONER__BROADCAST: return "BROADCAST";
    default: return "UNKNOWN";
    }
}

const char *graph_partitioner_label(const Flint__Graph__JobEdge *e, char *buf, size_t len) {
    const char *name = graph_partitioner_name(e->partitioner);
    if (e->partitioner != FLINT__GRAPH__PARTITIONER__HASH) {
        snprintf(buf, len, "%s", name);
        return buf;
    }
    if (e->key_selector && *e->key_selector) {
        snprintf(buf, len, "HASH[%s()]", e->key_selector);
        return buf;
    }
    flint_schema *s = NULL;
    flint_err err = {0};
    if (!e->schema || flint_schema_parse(e->schema, &s, &err)) s = NULL;
    size_t w = (size_t)snprintf(buf, len, "HASH[");
    for (size_t i = 0; i < e->n_key_fields && w < len; i++) {
        int f = e->key_fields[i];
        if (s && f >= 0 && f < flint_schema_field_count(s))
            w += (size_t)snprintf(buf + w, len - w, "%s%s", i ? "," : "", flint_schema_field_name(s, f));
        else
            w += (size_t)snprintf(buf + w, len - w, "%s#%d", i ? "," : "", f);
    }
    if (w < len) snprintf(buf + w, len - w, "]");
    flint_schema_free(s);
    return buf;
}

const char *graph_kv_get(Flint__Graph__KeyValue *const *kvs, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (kvs[i]->key && strcmp(kvs[i]->key, key) == 0) return kvs[i]->value;
    return NULL;
}

/* ---- protobuf helpers: everything heap-allocated, so that free_unpacked frees it all -------- */

static Flint__Graph__KeyValue **kvs_to_pb(const graph_kvs *kv, size_t *n) {
    *n = (size_t)kv->n;
    if (!kv->n) return NULL;
    Flint__Graph__KeyValue **out = xcalloc((size_t)kv->n, sizeof *out);
    for (int i = 0; i < kv->n; i++) {
        out[i] = XNEW(Flint__Graph__KeyValue);
        flint__graph__key_value__init(out[i]);
        out[i]->key = xstrdup(kv->keys[i]);
        out[i]->value = xstrdup(kv->values[i]);
    }
    return out;
}

void graph_job_free(Flint__Graph__JobGraph *job) {
    if (job) flint__graph__job_graph__free_unpacked(job, NULL);
}

/* ---- building ------------------------------------------------------------------------------- */

/* A numeric key of the job's configuration (-D, flint_env_set_config; checked when set), else
 * def. */
static int64_t config_value(const flint_env *env, config_key key, int64_t def) {
    const char *v = graph_kvs_get(&env->config, config_info(key)->name);
    if (!v) return def;
    flint_config *probe = config_new();
    int64_t out = def;
    if (config_set(probe, config_info(key)->name, v, "job", NULL) == FLINT_OK) out = config_int(probe, key);
    config_free(probe);
    return out;
}

/* What the builder works out for every node (indexed by node id). */
typedef struct node_info {
    int parallelism;
    const char *group;          /* slot sharing group */
    int nin;                    /* input edges */
    const graph_edge *chain_in; /* the chained input edge, NULL for a chain head */
    int vertex;                 /* 1-based vertex id */
    int index;                  /* position in the vertex's operator list */
} node_info;

typedef struct builder {
    const flint_env *env;
    node_info *info;            /* [nnodes + 1] */
    int *partitioner;           /* [nedges + 1]: resolved partitioner per stream edge */
    bool *chained;              /* [nedges + 1] */
    int *job_edge;              /* [nedges + 1]: job edge id of a non-chained stream edge */
    flint_err *err;
} builder;

static int fail_node(flint_err *err, const graph_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_node(flint_err *err, const graph_node *n, const char *fmt, ...) {
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    char *label = graph_node_label(n);
    flint_err_set(err, FLINT_INVALID, "%s: %s", label, text);
    free(label);
    return FLINT_INVALID;
}

static bool is_chainable(const builder *b, const graph_edge *e) {
    const node_info *up = &b->info[e->src->id], *down = &b->info[e->dst->id];
    return !b->env->chaining_disabled && b->partitioner[e->id] == FLINT__GRAPH__PARTITIONER__FORWARD &&
           up->parallelism == down->parallelism && down->nin == 1 &&
           e->src->chaining != GRAPH_CHAIN_NEVER && e->dst->chaining == GRAPH_CHAIN_ALWAYS &&
           strcmp(up->group, down->group) == 0;
}

/* The chained outputs of node n, in edge order, into out (returns their number). */
static int chained_outputs(const builder *b, const graph_node *n, const graph_edge **out) {
    int k = 0;
    for (int i = 0; i < b->env->nedges; i++) {
        const graph_edge *e = b->env->edges[i];
        if (e->src == n && b->chained[e->id]) out[k++] = e;
    }
    return k;
}

/* Flink's chained name: "A -> B", "A -> (B -> C, D)". Also assigns vertex indexes in preorder. */
static char *chain_walk(builder *b, const graph_node *n, int vertex, int *next_index,
                        const graph_node **order) {
    node_info *in = &b->info[n->id];
    in->vertex = vertex;
    in->index = (*next_index)++;
    order[in->index] = n;
    const graph_edge **outs = xcalloc((size_t)b->env->nedges + 1, sizeof *outs);
    int k = chained_outputs(b, n, outs);
    char *name;
    if (k == 0) {
        name = xstrdup(n->name);
    } else if (k == 1) {
        char *sub = chain_walk(b, outs[0]->dst, vertex, next_index, order);
        name = xasprintf("%s -> %s", n->name, sub);
        free(sub);
    } else {
        size_t cap = 64, len = 0;
        char *list = xmalloc(cap);
        list[0] = '\0';
        for (int i = 0; i < k; i++) {
            char *sub = chain_walk(b, outs[i]->dst, vertex, next_index, order);
            size_t need = len + strlen(sub) + 3;
            if (need > cap) list = xrealloc(list, cap = need * 2);
            len += (size_t)sprintf(list + len, "%s%s", i ? ", " : "", sub);
            free(sub);
        }
        name = xasprintf("%s -> (%s)", n->name, list);
        free(list);
    }
    free(outs);
    return name;
}

static int check_uids(const flint_env *env, flint_err *err) {
    for (int i = 0; i < env->nnodes; i++) {
        const graph_node *a = env->nodes[i];
        if (!a->uid) continue;
        for (int j = i + 1; j < env->nnodes; j++) {
            const graph_node *c = env->nodes[j];
            if (c->uid && strcmp(a->uid, c->uid) == 0) {
                char *la = graph_node_label(a), *lc = graph_node_label(c);
                flint_err_set(err, FLINT_INVALID, "uid '%s' is used by two operators: %s and %s",
                              a->uid, la, lc);
                free(la);
                free(lc);
                return FLINT_INVALID;
            }
        }
    }
    return FLINT_OK;
}

/* Parallelism, slot sharing groups, in-degrees, partitioners, chaining. */
static int resolve(builder *b, int maxp) {
    const flint_env *env = b->env;
    for (int i = 0; i < env->nedges; i++) b->info[env->edges[i]->dst->id].nin++;
    for (int i = 0; i < env->nnodes; i++) {
        const graph_node *n = env->nodes[i];
        node_info *in = &b->info[n->id];
        /* operator > env > -p > parallelism.default; non-parallel sources are always 1 */
        in->parallelism = n->parallelism    ? n->parallelism
                          : n->non_parallel ? 1
                          : env->parallelism ? env->parallelism
                                             : env->defaults.parallelism;
        if (in->parallelism > maxp)
            return fail_node(b->err, n,
                             "parallelism %d is higher than the maximum parallelism %d "
                             "(flint_env_set_max_parallelism or pipeline.max-parallelism)",
                             in->parallelism, maxp);
        if (graph_op_kind_role(n->kind) != GRAPH_ROLE_SOURCE && in->nin == 0)
            return fail_node(b->err, n, "the operator has no input");
        /* Slot sharing group: its own, else its inputs' when they all agree, else "default". */
        if (n->slot_sharing_group) {
            in->group = n->slot_sharing_group;
        } else {
            const char *g = NULL;
            bool same = true;
            for (int j = 0; j < env->nedges; j++) {
                const graph_edge *e = env->edges[j];
                if (e->dst != n) continue;
                const char *ug = b->info[e->src->id].group;
                if (!g) g = ug;
                else if (strcmp(g, ug) != 0) same = false;
            }
            in->group = g && same ? g : "default";
        }
    }
    for (int i = 0; i < env->nedges; i++) {
        const graph_edge *e = env->edges[i];
        int pu = b->info[e->src->id].parallelism, pd = b->info[e->dst->id].parallelism;
        int p = e->partitioner;
        if (p < 0)
            p = pu == pd ? FLINT__GRAPH__PARTITIONER__FORWARD : FLINT__GRAPH__PARTITIONER__REBALANCE;
        if (p == FLINT__GRAPH__PARTITIONER__FORWARD && pu != pd) {
            char *lu = graph_node_label(e->src);
            int rc = fail_node(b->err, e->dst,
                               "forward partitioning does not allow a change of parallelism (%s has "
                               "%d, this operator %d); use rebalance, rescale or shuffle",
                               lu, pu, pd);
            free(lu);
            return rc;
        }
        b->partitioner[e->id] = p;
    }
    for (int i = 0; i < env->nedges; i++) {
        const graph_edge *e = env->edges[i];
        b->chained[e->id] = is_chainable(b, e);
        if (b->chained[e->id]) b->info[e->dst->id].chain_in = e;
    }
    return FLINT_OK;
}

static Flint__Graph__OperatorDef *operator_def(const builder *b, const graph_node *n) {
    Flint__Graph__OperatorDef *op = XNEW(Flint__Graph__OperatorDef);
    flint__graph__operator_def__init(op);
    op->node_id = n->id;
    op->kind = xstrdup(graph_op_kind_name(n->kind));
    op->name = xstrdup(n->name);
    op->uid = xstrdup(n->uid ? n->uid : "");
    op->input_schema = xstrdup(n->in_schema ? flint_schema_text(n->in_schema) : "");
    op->output_schema = xstrdup(n->out_schema ? flint_schema_text(n->out_schema) : "");
    op->params = kvs_to_pb(&n->params, &op->n_params);
    op->user_params = kvs_to_pb(&n->user_params, &op->n_user_params);
    const flint_env *env = b->env;
    for (int i = 0; i < env->nedges; i++) {
        const graph_edge *e = env->edges[i];
        if (e->src != n) continue;
        if (b->chained[e->id]) {
            op->chained_outputs = xrealloc(op->chained_outputs,
                                           (op->n_chained_outputs + 1) * sizeof(int32_t));
            op->chained_outputs[op->n_chained_outputs++] = b->info[e->dst->id].index;
        } else {
            op->output_edges = xrealloc(op->output_edges, (op->n_output_edges + 1) * sizeof(int32_t));
            op->output_edges[op->n_output_edges++] = b->job_edge[e->id];
        }
    }
    /* Side outputs: tags parallel to chained_outputs and output_edges ("" = main output). */
    bool tagged = false;
    for (int i = 0; i < env->nedges; i++) tagged |= env->edges[i]->src == n && env->edges[i]->tag;
    if (tagged) {
        op->chained_output_tags = xcalloc(op->n_chained_outputs + 1, sizeof(char *));
        op->output_edge_tags = xcalloc(op->n_output_edges + 1, sizeof(char *));
        for (int i = 0; i < env->nedges; i++) {
            const graph_edge *e = env->edges[i];
            if (e->src != n) continue;
            char *t = xstrdup(e->tag ? e->tag : "");
            if (b->chained[e->id]) op->chained_output_tags[op->n_chained_output_tags++] = t;
            else op->output_edge_tags[op->n_output_edge_tags++] = t;
        }
    }
    return op;
}

/* The job graph of a resolved stream graph. */
static Flint__Graph__JobGraph *emit_job(builder *b, const char *job_name, int maxp) {
    const flint_env *env = b->env;
    Flint__Graph__JobGraph *job = XNEW(Flint__Graph__JobGraph);
    flint__graph__job_graph__init(job);
    char id[33];
    str_random_hex(id, 16);
    job->job_id = xstrdup(id);
    job->name = xstrdup(job_name && *job_name ? job_name : "Flint Streaming Job");
    job->config = kvs_to_pb(&env->config, &job->n_config);
    job->params = kvs_to_pb(&env->params, &job->n_params);
    job->artifact_sha256 = xstrdup("");
    job->max_parallelism = maxp;
    job->buffer_timeout_ms = env->buffer_timeout_set
                                 ? env->buffer_timeout_ms
                                 : config_value(env, CFG_EXECUTION_BUFFER_TIMEOUT,
                                                env->defaults.buffer_timeout_ms);

    /* Vertices: one per chain head, in node order; operators in chain preorder. */
    const graph_node **order = xcalloc((size_t)env->nnodes, sizeof *order);
    int nvertices = 0;
    for (int i = 0; i < env->nnodes; i++)
        if (!b->info[env->nodes[i]->id].chain_in) nvertices++;
    job->vertices = xcalloc((size_t)nvertices, sizeof *job->vertices);
    /* Job edges: the stream edges that are not chained, in edge order. */
    int njobedges = 0;
    for (int i = 0; i < env->nedges; i++)
        if (!b->chained[env->edges[i]->id]) b->job_edge[env->edges[i]->id] = ++njobedges;

    int vid = 0;
    for (int i = 0; i < env->nnodes; i++) {
        const graph_node *head = env->nodes[i];
        if (b->info[head->id].chain_in) continue;
        vid++;
        int nops = 0;
        char *name = chain_walk(b, head, vid, &nops, order);
        Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
        flint__graph__job_vertex__init(v);
        v->id = vid;
        v->name = name;
        v->parallelism = b->info[head->id].parallelism;
        v->max_parallelism = maxp;
        v->slot_sharing_group = xstrdup(b->info[head->id].group);
        v->n_operators = (size_t)nops;
        v->operators = xcalloc((size_t)nops, sizeof *v->operators);
        job->vertices[job->n_vertices++] = v;
        /* order[] is overwritten by the next vertex: turn it into operators now. Chained outputs
         * need the indexes of later operators, all assigned by chain_walk already. */
        for (int k = 0; k < nops; k++) v->operators[k] = operator_def(b, order[k]);
    }
    free(order);

    job->edges = xcalloc((size_t)(njobedges ? njobedges : 1), sizeof *job->edges);
    for (int i = 0; i < env->nedges; i++) {
        const graph_edge *e = env->edges[i];
        if (b->chained[e->id]) continue;
        Flint__Graph__JobEdge *je = XNEW(Flint__Graph__JobEdge);
        flint__graph__job_edge__init(je);
        je->id = b->job_edge[e->id];
        je->source_vertex = b->info[e->src->id].vertex;
        je->source_operator = b->info[e->src->id].index;
        je->target_vertex = b->info[e->dst->id].vertex;
        je->input_index = e->input_index;
        je->partitioner = (Flint__Graph__Partitioner)b->partitioner[e->id];
        je->key_selector = xstrdup("");
        je->key_schema = xstrdup("");
        if (je->partitioner == FLINT__GRAPH__PARTITIONER__HASH && e->key) {
            if (e->key->selector) {
                free(je->key_selector);
                free(je->key_schema);
                je->key_selector = xstrdup(e->key->selector);
                je->key_schema = xstrdup(e->key->key_schema ? e->key->key_schema : "");
            } else {
                je->n_key_fields = (size_t)e->key->nfields;
                je->key_fields = xmalloc((size_t)e->key->nfields * sizeof(int32_t));
                for (int k = 0; k < e->key->nfields; k++) je->key_fields[k] = e->key->fields[k];
            }
        }
        const flint_schema *es = e->tag ? e->schema : e->src->out_schema;
        je->schema = xstrdup(es ? flint_schema_text(es) : "");
        job->edges[job->n_edges++] = je;
    }
    return job;
}

int graph_build(const flint_env *env, const char *job_name, Flint__Graph__JobGraph **out,
                flint_err *err) {
    *out = NULL;
    if (env->err_code) return flint_err_set(err, env->err_code, "%s", env->err_msg);
    if (env->nnodes == 0)
        return flint_err_set(err, FLINT_INVALID,
                             "No operators defined in streaming topology. Cannot execute.");
    bool sink = false;
    for (int i = 0; i < env->nnodes; i++)
        if (graph_op_kind_role(env->nodes[i]->kind) == GRAPH_ROLE_SINK) sink = true;
    if (!sink)
        return flint_err_set(err, FLINT_INVALID,
                             "the job has no sink, so nothing would consume its streams "
                             "(add flint_sink_print or another sink)");
    int rc = check_uids(env, err);
    if (!rc) rc = graph_window_check(env, err);
    if (rc) return rc;
    /* max parallelism: env > the job's configuration > pipeline.max-parallelism of the client */
    int maxp = env->max_parallelism ? env->max_parallelism
                                    : (int)config_value(env, CFG_PIPELINE_MAX_PARALLELISM,
                                                        env->defaults.max_parallelism);

    builder b = {env, xcalloc((size_t)env->nnodes + 1, sizeof *b.info),
                 xcalloc((size_t)env->nedges + 1, sizeof(int)),
                 xcalloc((size_t)env->nedges + 1, sizeof(bool)),
                 xcalloc((size_t)env->nedges + 1, sizeof(int)), err};
    rc = resolve(&b, maxp);
    if (rc == FLINT_OK) *out = emit_job(&b, job_name, maxp);
    free(b.info);
    free(b.partitioner);
    free(b.chained);
    free(b.job_edge);
    return rc;
}

/* ---- the plan ------------------------------------------------------------------------------- */

static void print_params(FILE *out, const Flint__Graph__OperatorDef *op) {
    for (size_t i = 0; i < op->n_params; i++) {
        const char *k = op->params[i]->key, *v = op->params[i]->value;
        if (strcmp(k, "rows") == 0) {
            int rows = *v ? 1 : 0;
            for (const char *p = v; *p; p++) rows += *p == '\n';
            fprintf(out, " rows=<%d row%s>", rows, rows == 1 ? "" : "s");
        } else if (strlen(v) > 48) {
            fprintf(out, " %s=%.45s...", k, v);
        } else {
            fprintf(out, " %s=%s", k, v);
        }
    }
    for (size_t i = 0; i < op->n_user_params; i++)
        fprintf(out, " param.%s=%.40s", op->user_params[i]->key, op->user_params[i]->value);
}

static const Flint__Graph__JobVertex *find_vertex(const Flint__Graph__JobGraph *job, int id) {
    for (size_t i = 0; i < job->n_vertices; i++)
        if (job->vertices[i]->id == id) return job->vertices[i];
    return NULL;
}

void graph_plan_print(const Flint__Graph__JobGraph *job, FILE *out) {
    char bt[32];
    if (job->buffer_timeout_ms < 0) snprintf(bt, sizeof bt, "-1 (only full buffers)");
    else str_format_duration(job->buffer_timeout_ms, bt, sizeof bt);
    fprintf(out, "Job \"%s\"\n", job->name);
    fprintf(out, "  %zu vert%s, %zu edge%s, max parallelism %d, buffer timeout %s\n",
            job->n_vertices, job->n_vertices == 1 ? "ex" : "ices", job->n_edges,
            job->n_edges == 1 ? "" : "s", job->max_parallelism, bt);
    if (job->n_params) {
        fprintf(out, "  job parameters:");
        for (size_t i = 0; i < job->n_params; i++)
            fprintf(out, " %s=%s", job->params[i]->key, job->params[i]->value);
        fprintf(out, "\n");
    }
    if (job->n_config) {
        fprintf(out, "  configuration:");
        for (size_t i = 0; i < job->n_config; i++)
            fprintf(out, " %s=%s", job->config[i]->key, job->config[i]->value);
        fprintf(out, "\n");
    }
    if (job->artifact_sha256 && *job->artifact_sha256)
        fprintf(out, "  artifact sha256 %s\n", job->artifact_sha256);
    else
        fprintf(out, "  no artifact needed (built-in operators only)\n");
    for (size_t i = 0; i < job->n_vertices; i++) {
        const Flint__Graph__JobVertex *v = job->vertices[i];
        fprintf(out, "\nVertex %d: %s\n", v->id, v->name);
        fprintf(out, "  parallelism %d, slot sharing group \"%s\"\n", v->parallelism,
                v->slot_sharing_group);
        for (size_t k = 0; k < v->n_operators; k++) {
            const Flint__Graph__OperatorDef *op = v->operators[k];
            fprintf(out, "  %zu. %s [%s", k, op->name, op->kind);
            print_params(out, op);
            fprintf(out, "]");
            if (*op->uid) fprintf(out, " uid=%s", op->uid);
            if (*op->input_schema) fprintf(out, " (%s)", op->input_schema);
            if (*op->output_schema) fprintf(out, " -> (%s)", op->output_schema);
            if (op->n_chained_outputs || op->n_output_edges) {
                fprintf(out, " => ");
                for (size_t c = 0; c < op->n_chained_outputs; c++)
                    fprintf(out, "%sop %d", c ? ", " : "", op->chained_outputs[c]);
                for (size_t c = 0; c < op->n_output_edges; c++)
                    fprintf(out, "%sedge %d", c || op->n_chained_outputs ? ", " : "",
                            op->output_edges[c]);
            }
            fprintf(out, "\n");
        }
    }
    if (job->n_edges) fprintf(out, "\nEdges:\n");
    for (size_t i = 0; i < job->n_edges; i++) {
        const Flint__Graph__JobEdge *e = job->edges[i];
        const Flint__Graph__JobVertex *src = find_vertex(job, e->source_vertex);
        const Flint__Graph__JobVertex *dst = find_vertex(job, e->target_vertex);
        char label[256];
        graph_partitioner_label(e, label, sizeof label);
        const char *sop = src && e->source_operator >= 0 && (size_t)e->source_operator < src->n_operators
                              ? src->operators[e->source_operator]->name
                              : "?";
        fprintf(out, "  edge %d: vertex %d (%s) -> vertex %d (%s) %s, parallelism %d -> %d",
                e->id, e->source_vertex, sop, e->target_vertex,
                dst && dst->n_operators ? dst->operators[0]->name : "?", label,
                src ? src->parallelism : 0, dst ? dst->parallelism : 0);
        if (*e->schema) fprintf(out, " (%s)", e->schema);
        fprintf(out, "\n");
    }
}

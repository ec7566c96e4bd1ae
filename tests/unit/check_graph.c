/* Unit tests for common/graph (the job API's stream graph, chaining into a job graph, defaults and
 * validation), common/util/sha256 and the client's artifact loading (client/cli_artifact). */
#include <check.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_artifact.h"
#include "flint/flint.h"
#include "graph/graph.h"
#include "util/sha256.h"

/* User functions for the graphs below; never called. */
void t_map(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx, (void)in, (void)out;
}
void t_flat(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx, (void)in, (void)out;
}
bool t_filter(flint_ctx *ctx, const flint_row *in) {
    (void)ctx, (void)in;
    return true;
}
void t_key(flint_ctx *ctx, const flint_row *in, flint_row_builder *key) {
    (void)ctx, (void)in, (void)key;
}
void t_reduce(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx, (void)acc, (void)in, (void)out;
}
void t_sink(flint_ctx *ctx, const flint_row *in) { (void)ctx, (void)in; }
int t_open(flint_ctx *ctx) {
    (void)ctx;
    return 0;
}
void t_close(flint_ctx *ctx) { (void)ctx; }

static const char *const ROWS2[] = {"hello,1", "world,2"};
#define WORDS "word STRING, n BIGINT"

static flint_env *env_p(int p) {
    graph_env_defaults d = {.parallelism = p, .max_parallelism = 128, .buffer_timeout_ms = 100};
    return graph_env_new(&d);
}

static flint_stream *words(flint_env *env) { return flint_from_elements(env, WORDS, 2, ROWS2); }

/* Build env's job graph, failing the test on an error. */
static Flint__Graph__JobGraph *build_ok(flint_env *env) {
    ck_assert_msg(flint_env_error(env) == NULL, "unexpected error: %s", flint_env_error(env));
    ck_assert_int_eq(flint_execute(env, "test"), FLINT_OK);
    Flint__Graph__JobGraph *job = graph_env_job(env);
    ck_assert_ptr_nonnull(job);
    return job;
}

/* The error flint_execute reports for env. */
static const char *build_err(flint_env *env) {
    ck_assert_int_ne(flint_execute(env, "test"), FLINT_OK);
    ck_assert_ptr_null(graph_env_job(env));
    const char *e = flint_env_error(env);
    ck_assert_ptr_nonnull(e);
    return e;
}

static const Flint__Graph__JobVertex *vertex(const Flint__Graph__JobGraph *job, size_t i) {
    ck_assert_uint_lt(i, job->n_vertices);
    return job->vertices[i];
}

/* ---- chaining ----------------------------------------------------------------------------- */

START_TEST(test_forward_chain) {
    flint_env *env = env_p(2);
    flint_stream *s = words(env);
    s = flint_map(s, FLINT_FN(t_map), WORDS);
    s = flint_filter(s, FLINT_FN(t_filter));
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 1);
    ck_assert_uint_eq(job->n_edges, 0);
    const Flint__Graph__JobVertex *v = vertex(job, 0);
    ck_assert_str_eq(v->name, "Source: Collection Source -> Map -> Filter -> Sink: Print to Std. Out");
    ck_assert_int_eq(v->id, 1);
    ck_assert_int_eq(v->parallelism, 2);
    ck_assert_int_eq(v->max_parallelism, 128);
    ck_assert_str_eq(v->slot_sharing_group, "default");
    ck_assert_uint_eq(v->n_operators, 4);
    const char *kinds[] = {"source.elements", "map", "filter", "sink.print"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(v->operators[i]->kind, kinds[i]);
        ck_assert_int_eq(v->operators[i]->node_id, i + 1);
        if (i < 3) {
            ck_assert_uint_eq(v->operators[i]->n_chained_outputs, 1);
            ck_assert_int_eq(v->operators[i]->chained_outputs[0], i + 1);
        } else {
            ck_assert_uint_eq(v->operators[i]->n_chained_outputs, 0);
        }
        ck_assert_uint_eq(v->operators[i]->n_output_edges, 0);
    }
    ck_assert_str_eq(v->operators[0]->input_schema, "");
    ck_assert_str_eq(v->operators[1]->input_schema, WORDS);
    ck_assert_str_eq(v->operators[1]->output_schema, WORDS);
    ck_assert_str_eq(v->operators[3]->output_schema, "");
    ck_assert_str_eq(graph_kv_get(v->operators[1]->params, v->operators[1]->n_params, "fn"), "t_map");
    ck_assert_str_eq(graph_kv_get(v->operators[0]->params, v->operators[0]->n_params, "rows"),
                     "hello,1\nworld,2");
    graph_env_free(env);
}
END_TEST

/* Source -> X -> Map -> Sink where X is a partitioning: 2 vertices, one edge with partitioner p. */
static void check_breaks(flint_stream *(*part)(flint_stream *), Flint__Graph__Partitioner p) {
    flint_env *env = env_p(2);
    flint_stream *s = part(words(env));
    s = flint_map(s, FLINT_FN(t_map), WORDS);
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 2);
    ck_assert_uint_eq(job->n_edges, 1);
    ck_assert_str_eq(vertex(job, 0)->name, "Source: Collection Source");
    ck_assert_str_eq(vertex(job, 1)->name, "Map -> Sink: Print to Std. Out");
    const Flint__Graph__JobEdge *e = job->edges[0];
    ck_assert_int_eq(e->id, 1);
    ck_assert_int_eq(e->source_vertex, 1);
    ck_assert_int_eq(e->source_operator, 0);
    ck_assert_int_eq(e->target_vertex, 2);
    ck_assert_int_eq(e->input_index, 0);
    ck_assert_int_eq(e->partitioner, p);
    ck_assert_str_eq(e->schema, WORDS);
    ck_assert_uint_eq(vertex(job, 0)->operators[0]->n_output_edges, 1);
    ck_assert_int_eq(vertex(job, 0)->operators[0]->output_edges[0], 1);
    graph_env_free(env);
}

START_TEST(test_partitionings_break_chains) {
    check_breaks(flint_rebalance, FLINT__GRAPH__PARTITIONER__REBALANCE);
    check_breaks(flint_rescale, FLINT__GRAPH__PARTITIONER__RESCALE);
    check_breaks(flint_shuffle, FLINT__GRAPH__PARTITIONER__SHUFFLE);
    check_breaks(flint_broadcast, FLINT__GRAPH__PARTITIONER__BROADCAST);
}
END_TEST

START_TEST(test_explicit_forward_chains) {
    flint_env *env = env_p(2);
    flint_stream *s = flint_map(flint_forward(words(env)), FLINT_FN(t_map), WORDS);
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 1);
    graph_env_free(env);
}
END_TEST

START_TEST(test_key_by_breaks_chain) {
    flint_env *env = env_p(2);
    flint_stream *c = flint_sum(flint_key_by(words(env), "word"), "n");
    flint_sink_text_file(c, "/tmp/out");
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 2);
    ck_assert_str_eq(vertex(job, 1)->name, "Keyed Aggregation -> Sink: /tmp/out");
    const Flint__Graph__JobEdge *e = job->edges[0];
    ck_assert_int_eq(e->partitioner, FLINT__GRAPH__PARTITIONER__HASH);
    ck_assert_uint_eq(e->n_key_fields, 1);
    ck_assert_int_eq(e->key_fields[0], 0);
    ck_assert_str_eq(e->key_selector, "");
    char label[64];
    ck_assert_str_eq(graph_partitioner_label(e, label, sizeof label), "HASH[word]");
    const Flint__Graph__OperatorDef *agg = vertex(job, 1)->operators[0];
    ck_assert_str_eq(agg->kind, "aggregate");
    ck_assert_str_eq(graph_kv_get(agg->params, agg->n_params, "agg"), "sum");
    ck_assert_str_eq(graph_kv_get(agg->params, agg->n_params, "field"), "1");
    ck_assert_str_eq(graph_kv_get(agg->params, agg->n_params, "key.fields"), "0");
    ck_assert_str_eq(agg->output_schema, WORDS);
    const Flint__Graph__OperatorDef *sink = vertex(job, 1)->operators[1];
    ck_assert_str_eq(graph_kv_get(sink->params, sink->n_params, "path"), "/tmp/out");
    graph_env_free(env);
}
END_TEST

START_TEST(test_key_by_two_fields_and_selector) {
    flint_env *env = env_p(1);
    flint_stream *s = flint_from_elements(env, "user STRING, region STRING, n INT", 0, NULL);
    flint_sink_blackhole(flint_max_by(flint_key_by(s, "region, user"), "n"));
    flint_stream *t = flint_from_elements(env, "user STRING, region STRING, n INT", 0, NULL);
    flint_sink(flint_reduce(flint_key_by_fn(t, FLINT_FN(t_key), "u STRING"), FLINT_FN(t_reduce)),
               FLINT_FN(t_sink));
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_edges, 2);
    char label[64];
    ck_assert_str_eq(graph_partitioner_label(job->edges[0], label, sizeof label), "HASH[region,user]");
    ck_assert_str_eq(graph_partitioner_label(job->edges[1], label, sizeof label), "HASH[t_key()]");
    ck_assert_str_eq(job->edges[1]->key_selector, "t_key");
    ck_assert_str_eq(job->edges[1]->key_schema, "u STRING");
    ck_assert_uint_eq(job->edges[1]->n_key_fields, 0);
    const Flint__Graph__JobVertex *kv = vertex(job, 1);
    ck_assert_str_eq(kv->name, "Keyed Aggregation -> Sink: Discarding Sink");
    ck_assert_str_eq(graph_kv_get(kv->operators[0]->params, kv->operators[0]->n_params, "key.fields"),
                     "1,0");
    ck_assert_str_eq(graph_kv_get(kv->operators[0]->params, kv->operators[0]->n_params, "agg"), "max_by");
    const Flint__Graph__JobVertex *rv = vertex(job, 3);
    ck_assert_str_eq(rv->name, "Keyed Reduce -> Sink: Unnamed");
    const Flint__Graph__OperatorDef *r = rv->operators[0];
    ck_assert_str_eq(graph_kv_get(r->params, r->n_params, "key.selector"), "t_key");
    ck_assert_str_eq(graph_kv_get(r->params, r->n_params, "key.schema"), "u STRING");
    ck_assert_str_eq(graph_kv_get(r->params, r->n_params, "fn"), "t_reduce");
    ck_assert_ptr_null(graph_kv_get(r->params, r->n_params, "key.fields"));
    ck_assert_int_eq(graph_env_udf_count(env), 3);   /* t_key, t_reduce, t_sink */
    graph_env_free(env);
}
END_TEST

START_TEST(test_different_parallelism_breaks_chain) {
    flint_env *env = env_p(2);
    flint_stream *s = flint_set_parallelism(flint_map(words(env), FLINT_FN(t_map), WORDS), 3);
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 3);
    ck_assert_int_eq(vertex(job, 0)->parallelism, 2);
    ck_assert_int_eq(vertex(job, 1)->parallelism, 3);
    ck_assert_int_eq(vertex(job, 2)->parallelism, 2);
    ck_assert_int_eq(job->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__REBALANCE);
    ck_assert_int_eq(job->edges[1]->partitioner, FLINT__GRAPH__PARTITIONER__REBALANCE);
    graph_env_free(env);
}
END_TEST

START_TEST(test_disable_chaining) {
    flint_env *env = env_p(1);
    flint_stream *s = flint_disable_chaining(flint_map(words(env), FLINT_FN(t_map), WORDS));
    s = flint_filter(s, FLINT_FN(t_filter));
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 3);
    ck_assert_str_eq(vertex(job, 0)->name, "Source: Collection Source");
    ck_assert_str_eq(vertex(job, 1)->name, "Map");
    ck_assert_str_eq(vertex(job, 2)->name, "Filter -> Sink: Print to Std. Out");
    ck_assert_int_eq(job->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__FORWARD);
    ck_assert_int_eq(job->edges[1]->partitioner, FLINT__GRAPH__PARTITIONER__FORWARD);
    graph_env_free(env);
}
END_TEST

START_TEST(test_env_disables_chaining) {
    flint_env *env = env_p(1);
    flint_env_disable_operator_chaining(env);
    flint_sink_print(flint_map(words(env), FLINT_FN(t_map), WORDS));
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 3);
    ck_assert_uint_eq(job->n_edges, 2);
    graph_env_free(env);
}
END_TEST

START_TEST(test_start_new_chain) {
    flint_env *env = env_p(1);
    flint_stream *s = flint_map(words(env), FLINT_FN(t_map), WORDS);
    s = flint_start_new_chain(flint_filter(s, FLINT_FN(t_filter)));
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 2);
    ck_assert_str_eq(vertex(job, 0)->name, "Source: Collection Source -> Map");
    ck_assert_str_eq(vertex(job, 1)->name, "Filter -> Sink: Print to Std. Out");
    ck_assert_int_eq(job->edges[0]->source_operator, 1);
    ck_assert_int_eq(job->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__FORWARD);
    graph_env_free(env);
}
END_TEST

START_TEST(test_slot_sharing_group) {
    flint_env *env = env_p(1);
    flint_stream *s = flint_map(words(env), FLINT_FN(t_map), WORDS);
    s = flint_slot_sharing_group(s, "heavy");
    s = flint_filter(s, FLINT_FN(t_filter));   /* inherits "heavy" from its input */
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 2);
    ck_assert_str_eq(vertex(job, 0)->name, "Source: Collection Source");
    ck_assert_str_eq(vertex(job, 0)->slot_sharing_group, "default");
    ck_assert_str_eq(vertex(job, 1)->name, "Map -> Filter -> Sink: Print to Std. Out");
    ck_assert_str_eq(vertex(job, 1)->slot_sharing_group, "heavy");
    graph_env_free(env);
}
END_TEST

START_TEST(test_union_breaks_chain) {
    flint_env *env = env_p(1);
    flint_stream *a = words(env);
    flint_stream *b = flint_name(words(env), "more");
    flint_stream *m = flint_map(flint_union(a, b), FLINT_FN(t_map), WORDS);
    flint_sink_print(m);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 3);
    ck_assert_str_eq(vertex(job, 0)->name, "Source: Collection Source");
    ck_assert_str_eq(vertex(job, 1)->name, "Source: more");
    ck_assert_str_eq(vertex(job, 2)->name, "Map -> Sink: Print to Std. Out");
    ck_assert_uint_eq(job->n_edges, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(job->edges[i]->source_vertex, i + 1);
        ck_assert_int_eq(job->edges[i]->target_vertex, 3);
        ck_assert_int_eq(job->edges[i]->input_index, 0);
        ck_assert_int_eq(job->edges[i]->partitioner, FLINT__GRAPH__PARTITIONER__FORWARD);
    }
    graph_env_free(env);
}
END_TEST

START_TEST(test_branching_chain) {
    flint_env *env = env_p(2);
    flint_stream *s = words(env);
    flint_sink_print(flint_map(s, FLINT_FN(t_map), WORDS));
    flint_sink_blackhole(flint_filter(s, FLINT_FN(t_filter)));
    flint_stream *r = flint_rebalance(s);
    flint_sink_print(flint_name(flint_map(r, FLINT_FN(t_map), WORDS), "remote"));
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 2);
    const Flint__Graph__JobVertex *v = vertex(job, 0);
    ck_assert_str_eq(v->name, "Source: Collection Source -> (Map -> Sink: Print to Std. Out, "
                              "Filter -> Sink: Discarding Sink)");
    ck_assert_uint_eq(v->n_operators, 5);
    const Flint__Graph__OperatorDef *head = v->operators[0];
    ck_assert_uint_eq(head->n_chained_outputs, 2);
    ck_assert_int_eq(head->chained_outputs[0], 1);
    ck_assert_int_eq(head->chained_outputs[1], 3);
    ck_assert_uint_eq(head->n_output_edges, 1);
    ck_assert_int_eq(head->output_edges[0], 1);
    ck_assert_str_eq(v->operators[1]->kind, "map");
    ck_assert_str_eq(v->operators[2]->kind, "sink.print");
    ck_assert_str_eq(v->operators[3]->kind, "filter");
    ck_assert_str_eq(v->operators[4]->kind, "sink.blackhole");
    ck_assert_int_eq(v->operators[1]->chained_outputs[0], 2);
    ck_assert_int_eq(v->operators[3]->chained_outputs[0], 4);
    ck_assert_str_eq(vertex(job, 1)->name, "remote -> Sink: Print to Std. Out");
    ck_assert_int_eq(job->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__REBALANCE);
    graph_env_free(env);
}
END_TEST

/* ---- partitioners and parallelism ---------------------------------------------------------- */

START_TEST(test_partitioner_defaults) {
    flint_env *env = env_p(2);
    flint_stream *s = flint_disable_chaining(flint_map(words(env), FLINT_FN(t_map), WORDS));
    s = flint_set_parallelism(flint_filter(s, FLINT_FN(t_filter)), 4);
    flint_sink_print(s);
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_edges, 3);
    ck_assert_int_eq(job->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__FORWARD);   /* 2 -> 2 */
    ck_assert_int_eq(job->edges[1]->partitioner, FLINT__GRAPH__PARTITIONER__REBALANCE); /* 2 -> 4 */
    ck_assert_int_eq(job->edges[2]->partitioner, FLINT__GRAPH__PARTITIONER__REBALANCE); /* 4 -> 2 */
    graph_env_free(env);
}
END_TEST

START_TEST(test_forward_with_unequal_parallelism) {
    flint_env *env = env_p(2);
    flint_stream *s = flint_map(flint_forward(words(env)), FLINT_FN(t_map), WORDS);
    flint_set_parallelism(s, 3);
    flint_sink_print(s);
    const char *e = build_err(env);
    ck_assert_msg(strstr(e, "Map: forward partitioning does not allow a change of parallelism") == e,
                  "got: %s", e);
    ck_assert_ptr_nonnull(strstr(e, "Source: Collection Source (from_elements) has 2"));
    graph_env_free(env);
}
END_TEST

START_TEST(test_parallelism_precedence) {
    /* parallelism.default or -p (the client's default) */
    flint_env *env = env_p(3);
    flint_sink_print(flint_map(words(env), FLINT_FN(t_map), WORDS));
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_int_eq(vertex(job, 0)->parallelism, 3);
    graph_env_free(env);
    /* env beats the default */
    env = env_p(3);
    flint_env_set_parallelism(env, 5);
    flint_sink_print(flint_map(words(env), FLINT_FN(t_map), WORDS));
    job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 1);
    ck_assert_int_eq(vertex(job, 0)->parallelism, 5);
    graph_env_free(env);
    /* the operator beats env */
    env = env_p(3);
    flint_env_set_parallelism(env, 5);
    flint_stream *m = flint_set_parallelism(flint_map(words(env), FLINT_FN(t_map), WORDS), 2);
    flint_sink_print(m);
    job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 3);
    ck_assert_int_eq(vertex(job, 0)->parallelism, 5);
    ck_assert_int_eq(vertex(job, 1)->parallelism, 2);
    ck_assert_int_eq(vertex(job, 2)->parallelism, 5);
    graph_env_free(env);
    /* non-parallel sources stay at 1 */
    env = env_p(4);
    flint_env_set_parallelism(env, 4);
    flint_stream *t = flint_source_text_file(env, "/tmp/in.txt");
    flint_stream *k = flint_source_socket(env, "localhost", 9999);
    flint_sink_print(flint_union(t, k));
    job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 3);
    ck_assert_str_eq(vertex(job, 0)->name, "Source: /tmp/in.txt");
    ck_assert_int_eq(vertex(job, 0)->parallelism, 1);
    ck_assert_str_eq(vertex(job, 1)->name, "Source: Socket Stream");
    ck_assert_int_eq(vertex(job, 1)->parallelism, 1);
    ck_assert_int_eq(vertex(job, 2)->parallelism, 4);
    ck_assert_int_eq(job->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__REBALANCE);
    graph_env_free(env);
}
END_TEST

START_TEST(test_non_parallel_source_rejects_parallelism) {
    flint_env *env = env_p(1);
    flint_set_parallelism(flint_source_socket(env, "localhost", 9999), 2);
    ck_assert_str_eq(flint_env_error(env), "Source: Socket Stream (source_socket): set_parallelism: "
                                           "the source is not parallel; its parallelism must be 1, not 2");
    graph_env_free(env);
    env = env_p(1);
    flint_set_parallelism(flint_source_text_file(env, "x"), 1);   /* 1 is fine */
    ck_assert_ptr_null(flint_env_error(env));
    graph_env_free(env);
}
END_TEST

START_TEST(test_max_parallelism) {
    flint_env *env = env_p(1);
    Flint__Graph__JobGraph *job;
    flint_sink_print(words(env));
    job = build_ok(env);
    ck_assert_int_eq(job->max_parallelism, 128);
    graph_env_free(env);

    env = env_p(1);
    flint_env_set_max_parallelism(env, 16);
    flint_sink_print(flint_set_parallelism(flint_map(words(env), FLINT_FN(t_map), WORDS), 32));
    const char *e = build_err(env);
    ck_assert_msg(strstr(e, "Map: parallelism 32 is higher than the maximum parallelism 16") == e,
                  "got: %s", e);
    graph_env_free(env);

    /* the job's configuration (as -D) sets it too */
    env = env_p(1);
    graph_env_add_config(env, "pipeline.max-parallelism", "64");
    flint_env_set_config(env, "execution.buffer-timeout", "5 ms");
    flint_sink_print(words(env));
    job = build_ok(env);
    ck_assert_int_eq(job->max_parallelism, 64);
    ck_assert_int_eq(job->buffer_timeout_ms, 5);
    ck_assert_int_eq(vertex(job, 0)->max_parallelism, 64);
    graph_env_free(env);

    env = env_p(1);
    flint_env_set_max_parallelism(env, 0);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "0 is not a valid maximum parallelism"));
    graph_env_free(env);
}
END_TEST

START_TEST(test_buffer_timeout_and_config) {
    flint_env *env = env_p(1);
    flint_env_set_buffer_timeout(env, -1);
    graph_env_add_config(env, "state.backend.type", "hashmap");
    flint_env_set_config(env, "rest.port", "9000");
    flint_env_set_param(env, "threshold", "10");
    flint_sink_print(flint_param(flint_map(words(env), FLINT_FN(t_map), WORDS), "factor", "2"));
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_int_eq(job->buffer_timeout_ms, -1);
    ck_assert_str_eq(graph_kv_get(job->config, job->n_config, "state.backend.type"), "hashmap");
    ck_assert_str_eq(graph_kv_get(job->config, job->n_config, "rest.port"), "9000");
    ck_assert_str_eq(graph_kv_get(job->params, job->n_params, "threshold"), "10");
    const Flint__Graph__OperatorDef *m = vertex(job, 0)->operators[1];
    ck_assert_str_eq(graph_kv_get(m->user_params, m->n_user_params, "factor"), "2");
    graph_env_free(env);

    env = env_p(1);
    flint_env_set_config(env, "rest.port", "many");
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "rest.port"));
    graph_env_free(env);

    env = env_p(1);
    flint_env_set_buffer_timeout(env, -2);
    ck_assert_ptr_nonnull(flint_env_error(env));
    graph_env_free(env);
}
END_TEST

/* ---- validation ---------------------------------------------------------------------------- */

START_TEST(test_errors_name_the_operator) {
    flint_env *env = env_p(1);
    flint_stream *c = flint_sum(flint_key_by(words(env), "word"), "count");
    ck_assert_str_eq(flint_env_error(env),
                     "Keyed Aggregation (sum): no field 'count' in (word STRING, n BIGINT)");
    /* renaming the operator later shows in the message */
    flint_name(c, "Sum");
    ck_assert_str_eq(flint_env_error(env), "Sum: no field 'count' in (word STRING, n BIGINT)");
    flint_name(c, "Counter");
    ck_assert_str_eq(flint_env_error(env), "Counter (sum): no field 'count' in (word STRING, n BIGINT)");
    /* later errors do not replace the first; calls keep returning streams */
    flint_stream *m = flint_map(c, FLINT_FN(t_map), NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(flint_sink_print(m));
    ck_assert_ptr_nonnull(strstr(build_err(env), "Counter (sum): no field 'count'"));
    graph_env_free(env);

    env = env_p(1);
    flint_sum(flint_key_by(words(env), "n"), "word");
    ck_assert_str_eq(flint_env_error(env), "Keyed Aggregation (sum): cannot sum field 'word' of type "
                                           "STRING (INT, BIGINT or DOUBLE only)");
    graph_env_free(env);

    env = env_p(1);
    flint_map(words(env), FLINT_FN(t_map), "");
    ck_assert_str_eq(flint_env_error(env), "Map: output schema missing");
    graph_env_free(env);

    env = env_p(1);
    flint_flat_map(words(env), FLINT_FN(t_flat), "word FOO");
    ck_assert_msg(strncmp(flint_env_error(env), "Flat Map: output schema: ", 25) == 0, "got %s",
                  flint_env_error(env));
    graph_env_free(env);

    env = env_p(1);
    flint_stream *a = flint_from_elements(env, "a INT", 0, NULL);
    flint_stream *b = flint_from_elements(env, "a STRING", 0, NULL);
    ck_assert_ptr_nonnull(flint_union(a, b));
    ck_assert_str_eq(flint_env_error(env), "union: schemas differ: (a INT) vs (a STRING)");
    graph_env_free(env);

    env = env_p(1);
    flint_set_parallelism(flint_map(words(env), FLINT_FN(t_map), WORDS), 0);
    ck_assert_str_eq(flint_env_error(env), "Map: set_parallelism: 0 is not a valid parallelism (1..32768)");
    graph_env_free(env);

    env = env_p(1);
    flint_key_by(words(env), "wrd");
    ck_assert_msg(strstr(flint_env_error(env), "key_by(\"wrd\") after Source: Collection Source "
                                               "(from_elements): unknown key field 'wrd'") != NULL,
                  "got %s", flint_env_error(env));
    graph_env_free(env);
}
END_TEST

START_TEST(test_more_validation) {
    flint_env *env = env_p(1);
    flint_stream *p = flint_sink_print(words(env));
    flint_map(p, FLINT_FN(t_map), WORDS);
    ck_assert_str_eq(flint_env_error(env),
                     "Map: the input is a sink (Sink: Print to Std. Out (sink_print)); a sink ends a stream");
    graph_env_free(env);

    env = env_p(1);
    flint_name(flint_rebalance(words(env)), "x");
    ck_assert_str_eq(flint_env_error(env), "name: rebalance() makes a partitioned stream, not an "
                                           "operator; set name on an operator");
    graph_env_free(env);

    env = env_p(1);
    flint_with_open(words(env), FLINT_FN(t_open));
    ck_assert_str_eq(flint_env_error(env),
                     "Source: Collection Source (from_elements): with_open: the operator runs no user function");
    graph_env_free(env);

    env = env_p(1);
    flint_map(words(env), (flint_fn){NULL, NULL}, WORDS);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "Map: no user function given"));
    graph_env_free(env);

    env = env_p(1);
    flint_stream *w = words(env);
    flint_union(w, w);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "union: a stream cannot be unioned with itself"));
    graph_env_free(env);

    env = env_p(1);
    const char *bad[] = {"x,1", "y,notanumber"};
    flint_from_elements(env, WORDS, 2, bad);
    ck_assert_msg(strncmp(flint_env_error(env), "Source: Collection Source (from_elements): element 2 "
                                                "('y,notanumber'): ", 66) == 0,
                  "got %s", flint_env_error(env));
    graph_env_free(env);

    env = env_p(1);
    flint_from_sequence(env, 5, 1);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "Source: Sequence Source (from_sequence): the start"));
    graph_env_free(env);

    env = env_p(1);
    flint_source_socket(env, "localhost", 70000);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "port 70000 is not in 1..65535"));
    graph_env_free(env);

    env = env_p(1);
    flint_stream *u1 = flint_uid(flint_sink_print(words(env)), "same");
    flint_uid(flint_sink_print(words(env)), "same");
    ck_assert_ptr_nonnull(u1);
    ck_assert_ptr_nonnull(strstr(build_err(env), "uid 'same' is used by two operators"));
    graph_env_free(env);

    env = env_p(1);
    words(env);
    ck_assert_ptr_nonnull(strstr(build_err(env), "no sink"));
    graph_env_free(env);

    env = env_p(1);
    ck_assert_str_eq(build_err(env), "No operators defined in streaming topology. Cannot execute.");
    graph_env_free(env);

    env = env_p(1);
    flint_sink_print(words(env));
    build_ok(env);
    ck_assert_int_ne(flint_execute(env, "again"), FLINT_OK);
    ck_assert_ptr_nonnull(strstr(flint_env_error(env), "called twice"));
    graph_env_free(env);

    env = env_p(1);
    flint_env_fail(env, "bad argument %d", 3);
    flint_sink_print(words(env));
    ck_assert_str_eq(build_err(env), "bad argument 3");
    graph_env_free(env);

    /* NULL streams do not crash */
    ck_assert_ptr_null(flint_map(NULL, FLINT_FN(t_map), WORDS));
    ck_assert_ptr_null(flint_key_by(NULL, "x"));
    ck_assert_ptr_null(flint_sum(NULL, "x"));
    ck_assert_ptr_null(flint_name(NULL, "x"));
    ck_assert_ptr_null(flint_from_sequence(NULL, 1, 2));
}
END_TEST

/* ---- sources, names, user functions ------------------------------------------------------- */

START_TEST(test_relative_paths) {
    char *cwd = getcwd(NULL, 0);
    char want[PATH_MAX + 64];
    flint_env *env = env_p(1);
    flint_sink_text_file(flint_source_text_file(env, "./in.txt"), "out");
    Flint__Graph__JobGraph *job = build_ok(env);
    const Flint__Graph__OperatorDef *src = vertex(job, 0)->operators[0];
    snprintf(want, sizeof want, "%s/in.txt", cwd);
    ck_assert_str_eq(graph_kv_get(src->params, src->n_params, "path"), want);
    snprintf(want, sizeof want, "Source: %s/in.txt", cwd);
    ck_assert_str_eq(src->name, want);
    const Flint__Graph__OperatorDef *sink = vertex(job, 0)->operators[1];
    snprintf(want, sizeof want, "%s/out", cwd);
    ck_assert_str_eq(graph_kv_get(sink->params, sink->n_params, "path"), want);
    graph_env_free(env);
    free(cwd);

    env = env_p(1);
    flint_source_text_file(env, "");
    ck_assert_str_eq(flint_env_error(env), "Source: (no path) (source_text_file): no file path given");
    graph_env_free(env);
}
END_TEST

START_TEST(test_sources_and_names) {
    flint_env *env = env_p(1);
    flint_env_disable_operator_chaining(env);
    flint_sink_blackhole(flint_from_sequence(env, 1, 100));
    flint_sink_blackhole(flint_source_datagen(env, "id BIGINT, v DOUBLE", -5, 1000));
    flint_name(flint_sink_print(flint_name(flint_source_socket(env, "h", 7), "lines")), "console");
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(job->n_vertices, 6);
    const Flint__Graph__OperatorDef *seq = vertex(job, 0)->operators[0];
    ck_assert_str_eq(seq->name, "Source: Sequence Source");
    ck_assert_str_eq(seq->output_schema, "value BIGINT");
    ck_assert_str_eq(graph_kv_get(seq->params, seq->n_params, "from"), "1");
    ck_assert_str_eq(graph_kv_get(seq->params, seq->n_params, "to"), "100");
    ck_assert_str_eq(vertex(job, 1)->name, "Sink: Discarding Sink");
    const Flint__Graph__OperatorDef *dg = vertex(job, 2)->operators[0];
    ck_assert_str_eq(dg->name, "Source: DataGen");
    ck_assert_str_eq(dg->kind, "source.datagen");
    ck_assert_str_eq(graph_kv_get(dg->params, dg->n_params, "count"), "-1");
    ck_assert_str_eq(graph_kv_get(dg->params, dg->n_params, "rate"), "1000");
    ck_assert_ptr_nonnull(graph_kv_get(dg->params, dg->n_params, "seed"));
    const Flint__Graph__OperatorDef *so = vertex(job, 4)->operators[0];
    ck_assert_str_eq(so->name, "Source: lines");
    ck_assert_str_eq(so->output_schema, "line STRING");
    ck_assert_str_eq(graph_kv_get(so->params, so->n_params, "host"), "h");
    ck_assert_str_eq(graph_kv_get(so->params, so->n_params, "port"), "7");
    ck_assert_str_eq(vertex(job, 5)->name, "Sink: console");
    ck_assert_int_eq(graph_env_udf_count(env), 0);
    ck_assert_str_eq(job->artifact_sha256, "");
    graph_env_free(env);
}
END_TEST

typedef struct udf_list {
    char roles[8][64];
    int n;
} udf_list;

static int collect_udf(const graph_udf *u, void *ud) {
    udf_list *l = ud;
    snprintf(l->roles[l->n++], 64, "%s|%s|%s", u->operator_name, u->role, u->symbol);
    return 0;
}

START_TEST(test_udfs) {
    flint_env *env = env_p(1);
    flint_stream *s = flint_flat_map(words(env), FLINT_FN(t_flat), WORDS);
    flint_with_close(flint_with_open(flint_name(s, "tokenize"), FLINT_FN(t_open)), FLINT_FN(t_close));
    flint_sink(s, FLINT_FN(t_sink));
    udf_list l = {0};
    ck_assert_int_eq(graph_env_foreach_udf(env, collect_udf, &l), 0);
    ck_assert_int_eq(l.n, 4);
    ck_assert_str_eq(l.roles[0], "tokenize (flat_map)|fn|t_flat");
    ck_assert_str_eq(l.roles[1], "tokenize (flat_map)|fn.open|t_open");
    ck_assert_str_eq(l.roles[2], "tokenize (flat_map)|fn.close|t_close");
    ck_assert_str_eq(l.roles[3], "Sink: Unnamed (sink)|fn|t_sink");
    Flint__Graph__JobGraph *job = build_ok(env);
    const Flint__Graph__OperatorDef *f = vertex(job, 0)->operators[1];
    ck_assert_str_eq(graph_kv_get(f->params, f->n_params, "fn.open"), "t_open");
    ck_assert_str_eq(graph_kv_get(f->params, f->n_params, "fn.close"), "t_close");
    graph_env_free(env);
}
END_TEST

START_TEST(test_project) {
    flint_env *env = env_p(1);
    flint_sink_print(flint_project(words(env), "n, `word`"));
    Flint__Graph__JobGraph *job = build_ok(env);
    const Flint__Graph__OperatorDef *p = vertex(job, 0)->operators[1];
    ck_assert_str_eq(p->kind, "project");
    ck_assert_str_eq(p->name, "Projection");
    ck_assert_str_eq(p->output_schema, "n BIGINT, word STRING");
    ck_assert_str_eq(graph_kv_get(p->params, p->n_params, "fields"), "1,0");
    ck_assert_uint_eq(p->n_user_params, 0);
    graph_env_free(env);

    env = env_p(1);
    flint_project(words(env), "word, count");
    ck_assert_msg(strstr(flint_env_error(env), "Projection (project): fields \"word, count\": unknown key field 'count'"),
                  "%s", flint_env_error(env));
    graph_env_free(env);
}
END_TEST

/* The hook flint_execute calls once the graph is valid. */
static int hook_calls;
static int test_hook(flint_env *env, Flint__Graph__JobGraph *job, void *ud) {
    hook_calls++;
    ck_assert_ptr_eq(ud, &hook_calls);
    ck_assert_ptr_eq(job, graph_env_job(env));
    return hook_calls > 1 ? graph_env_fail(env, FLINT_UNAVAILABLE, "hook says no") : FLINT_OK;
}

START_TEST(test_execute_hook) {
    hook_calls = 0;
    flint_env *env = env_p(1);
    graph_env_set_execute_hook(env, test_hook, &hook_calls);
    flint_sink_print(words(env));
    ck_assert(!graph_env_executed(env));
    ck_assert_int_eq(flint_execute(env, "job"), FLINT_OK);
    ck_assert(graph_env_executed(env));
    ck_assert_int_eq(hook_calls, 1);
    graph_env_free(env);

    env = env_p(1);
    graph_env_set_execute_hook(env, test_hook, &hook_calls);
    flint_sink_print(words(env));
    ck_assert_int_eq(flint_execute(env, "job"), FLINT_UNAVAILABLE);
    ck_assert_str_eq(flint_env_error(env), "hook says no");
    graph_env_free(env);

    /* an invalid graph never reaches the hook */
    hook_calls = 0;
    env = env_p(1);
    graph_env_set_execute_hook(env, test_hook, &hook_calls);
    flint_map(words(env), FLINT_FN(t_map), NULL);
    ck_assert_int_ne(flint_execute(env, "job"), FLINT_OK);
    ck_assert_int_eq(hook_calls, 0);
    graph_env_free(env);
}
END_TEST

/* ---- protobuf and plan --------------------------------------------------------------------- */

START_TEST(test_job_graph_round_trip) {
    flint_env *env = env_p(2);
    flint_env_set_buffer_timeout(env, 7);
    flint_env_set_param(env, "k", "v");
    graph_env_add_config(env, "a.b", "c");
    flint_stream *s = flint_map(words(env), FLINT_FN(t_map), WORDS);
    flint_uid(s, "map-1");
    flint_sink_print(flint_sum(flint_key_by(s, "word"), "n"));
    Flint__Graph__JobGraph *job = build_ok(env);
    ck_assert_uint_eq(strlen(job->job_id), 32);
    ck_assert_uint_eq(strspn(job->job_id, "0123456789abcdef"), 32);
    ck_assert_str_eq(job->name, "test");

    size_t len = flint__graph__job_graph__get_packed_size(job);
    uint8_t *buf = malloc(len);
    ck_assert_uint_eq(flint__graph__job_graph__pack(job, buf), len);
    Flint__Graph__JobGraph *back = flint__graph__job_graph__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(back->job_id, job->job_id);
    ck_assert_str_eq(back->name, "test");
    ck_assert_int_eq(back->max_parallelism, 128);
    ck_assert_int_eq(back->buffer_timeout_ms, 7);
    ck_assert_str_eq(graph_kv_get(back->params, back->n_params, "k"), "v");
    ck_assert_str_eq(graph_kv_get(back->config, back->n_config, "a.b"), "c");
    ck_assert_uint_eq(back->n_vertices, job->n_vertices);
    ck_assert_uint_eq(back->n_edges, 1);
    for (size_t i = 0; i < job->n_vertices; i++) {
        const Flint__Graph__JobVertex *a = job->vertices[i], *b = back->vertices[i];
        ck_assert_str_eq(a->name, b->name);
        ck_assert_int_eq(a->id, b->id);
        ck_assert_int_eq(a->parallelism, b->parallelism);
        ck_assert_uint_eq(a->n_operators, b->n_operators);
        for (size_t k = 0; k < a->n_operators; k++) {
            ck_assert_str_eq(a->operators[k]->kind, b->operators[k]->kind);
            ck_assert_str_eq(a->operators[k]->uid, b->operators[k]->uid);
            ck_assert_uint_eq(a->operators[k]->n_params, b->operators[k]->n_params);
        }
    }
    ck_assert_str_eq(back->vertices[0]->operators[1]->uid, "map-1");
    ck_assert_int_eq(back->edges[0]->partitioner, FLINT__GRAPH__PARTITIONER__HASH);
    ck_assert_uint_eq(back->edges[0]->n_key_fields, 1);
    /* packing again gives the same bytes */
    uint8_t *buf2 = malloc(len);
    ck_assert_uint_eq(flint__graph__job_graph__pack(back, buf2), len);
    ck_assert(memcmp(buf, buf2, len) == 0);
    flint__graph__job_graph__free_unpacked(back, NULL);
    free(buf);
    free(buf2);
    graph_env_free(env);
}
END_TEST

START_TEST(test_plan) {
    flint_env *env = env_p(2);
    flint_stream *s = flint_flat_map(flint_source_text_file(env, "/data/in.txt"), FLINT_FN(t_flat), WORDS);
    flint_sink_text_file(flint_sum(flint_key_by(s, "word"), "n"), "/data/out");
    Flint__Graph__JobGraph *job = build_ok(env);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    graph_plan_print(job, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "Job \"test\""));
    ck_assert_ptr_nonnull(strstr(text, "Vertex 1: Source: /data/in.txt\n  parallelism 1, slot sharing group \"default\""));
    ck_assert_ptr_nonnull(strstr(text, "Vertex 2: Flat Map\n  parallelism 2"));
    ck_assert_ptr_nonnull(strstr(text, "Vertex 3: Keyed Aggregation -> Sink: /data/out\n"));
    ck_assert_ptr_nonnull(strstr(text, "REBALANCE"));
    ck_assert_ptr_nonnull(strstr(text, "HASH[word]"));
    free(text);
    graph_env_free(env);
}
END_TEST

START_TEST(test_op_catalog) {
    ck_assert_str_eq(graph_op_kind_name(GRAPH_OP_SOURCE_ELEMENTS), "source.elements");
    ck_assert_str_eq(graph_op_kind_name(GRAPH_OP_SINK_FN), "sink.fn");
    ck_assert_int_eq(graph_op_kind_find("aggregate"), GRAPH_OP_AGGREGATE);
    ck_assert_int_eq(graph_op_kind_find("nope"), -1);
    ck_assert_int_eq(graph_op_kind_role(GRAPH_OP_MAP), GRAPH_ROLE_ONE_INPUT);
    ck_assert_int_eq(graph_op_kind_role(GRAPH_OP_SOURCE_SOCKET), GRAPH_ROLE_SOURCE);
    ck_assert_int_eq(graph_op_kind_role(GRAPH_OP_SINK_PRINT), GRAPH_ROLE_SINK);
    ck_assert_ptr_null(graph_op_kind_name(GRAPH_OP_COUNT));
    ck_assert_str_eq(graph_partitioner_name(FLINT__GRAPH__PARTITIONER__BROADCAST), "BROADCAST");
}
END_TEST

/* ---- sha256 ------------------------------------------------------------------------------ */

START_TEST(test_sha256_vectors) {
    char hex[SHA256_HEX_LEN];
    sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces */
    sha256_ctx c;
    sha256_init(&c);
    char a[1024];
    memset(a, 'a', sizeof a);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        sha256_update(&c, a, n);
        left -= n;
        step = step % 997 + 13;
    }
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_final(&c, d);
    sha256_to_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* lengths around the padding boundary agree between one-shot and byte-wise */
    for (size_t n = 50; n < 70; n++) {
        char h1[SHA256_HEX_LEN], h2[SHA256_HEX_LEN];
        sha256_hex(a, n, h1);
        sha256_init(&c);
        for (size_t i = 0; i < n; i++) sha256_update(&c, a + i, 1);
        sha256_final(&c, d);
        sha256_to_hex(d, h2);
        ck_assert_str_eq(h1, h2);
    }
}
END_TEST

START_TEST(test_sha256_file) {
    char path[] = "/tmp/check_graph_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "abc", 3), 3);
    close(fd);
    char hex[SHA256_HEX_LEN];
    flint_err err = {0};
    ck_assert_int_eq(sha256_file_hex(path, hex, &err), FLINT_OK);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    unlink(path);
    ck_assert_int_eq(sha256_file_hex(path, hex, &err), FLINT_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
}
END_TEST

/* ---- client: artifacts ----------------------------------------------------------------------- */

START_TEST(test_artifact_errors) {
    cli_artifact a;
    flint_err err = {0};
    ck_assert_int_ne(cli_artifact_open(&a, "/nonexistent/job.so", &err), FLINT_OK);
    ck_assert_str_eq(err.msg, "/nonexistent/job.so: No such file or directory");

    char path[] = "/tmp/check_graph_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_eq(write(fd, "not elf", 7), 7);
    close(fd);
    ck_assert_int_eq(cli_artifact_open(&a, path, &err), FLINT_INVALID);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s: not a shared object: ", path);
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got %s", err.msg);
    unlink(path);

    /* libflint.so is a shared object without flint_job_main */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    char lib[PATH_MAX + 32];
    snprintf(lib, sizeof lib, "%s/../lib/libflint.so", dirname(exe));
    ck_assert_int_eq(cli_artifact_open(&a, lib, &err), FLINT_NOT_FOUND);
    snprintf(want, sizeof want, "%s: no function flint_job_main", lib);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

static Suite *graph_suite(void) {
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("chaining");
    tcase_add_test(tc, test_forward_chain);
    tcase_add_test(tc, test_partitionings_break_chains);
    tcase_add_test(tc, test_explicit_forward_chains);
    tcase_add_test(tc, test_key_by_breaks_chain);
    tcase_add_test(tc, test_key_by_two_fields_and_selector);
    tcase_add_test(tc, test_different_parallelism_breaks_chain);
    tcase_add_test(tc, test_disable_chaining);
    tcase_add_test(tc, test_env_disables_chaining);
    tcase_add_test(tc, test_start_new_chain);
    tcase_add_test(tc, test_slot_sharing_group);
    tcase_add_test(tc, test_union_breaks_chain);
    tcase_add_test(tc, test_branching_chain);
    suite_add_tcase(s, tc);
    tc = tcase_create("defaults");
    tcase_add_test(tc, test_partitioner_defaults);
    tcase_add_test(tc, test_forward_with_unequal_parallelism);
    tcase_add_test(tc, test_parallelism_precedence);
    tcase_add_test(tc, test_non_parallel_source_rejects_parallelism);
    tcase_add_test(tc, test_max_parallelism);
    tcase_add_test(tc, test_buffer_timeout_and_config);
    suite_add_tcase(s, tc);
    tc = tcase_create("validation");
    tcase_add_test(tc, test_errors_name_the_operator);
    tcase_add_test(tc, test_more_validation);
    tcase_add_test(tc, test_sources_and_names);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_test(tc, test_udfs);
    tcase_add_test(tc, test_project);
    tcase_add_test(tc, test_execute_hook);
    suite_add_tcase(s, tc);
    tc = tcase_create("protobuf");
    tcase_add_test(tc, test_job_graph_round_trip);
    tcase_add_test(tc, test_plan);
    tcase_add_test(tc, test_op_catalog);
    suite_add_tcase(s, tc);
    tc = tcase_create("sha256");
    tcase_add_test(tc, test_sha256_vectors);
    tcase_add_test(tc, test_sha256_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("artifact");
    tcase_add_test(tc, test_artifact_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(graph_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

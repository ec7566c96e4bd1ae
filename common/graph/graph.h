/* The stream graph behind the public job API (flint/flint.h), and its translation into the job
 * graph that `flint run` submits (proto/jobgraph.proto): defaults, validation, chaining, and the
 * printable plan of `flint info`. The client drives it; jobmanager and taskmanager use the operator
 * catalog helpers and graph_partitioner_label.
 *
 * Life of a job in the client:
 *   env = graph_env_new(&defaults);            -p / parallelism.default, max parallelism, ...
 *   graph_env_add_config(env, k, v);           each -D
 *   graph_env_set_execute_hook(env, fn, ud);   what flint_execute does after building the graph
 *   rc = flint_job_main(env, argc, argv);      the job builds its stream graph; flint_execute
 *                                              builds the job graph (graph_build) and calls fn
 *   graph_env_free(env);
 */
#ifndef FLINT_GRAPH_H
#define FLINT_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "flint/flint.h"
#include "jobgraph.pb-c.h"

/* ---- the operator catalog (op_kinds.def) ---------------------------------------------------- */
typedef enum graph_op_kind {
#define OP_KIND(id, name, role) GRAPH_OP_##id,
#include "graph/op_kinds.def"
#undef OP_KIND
    GRAPH_OP_COUNT
} graph_op_kind;

typedef enum graph_op_role {
    GRAPH_ROLE_SOURCE, GRAPH_ROLE_ONE_INPUT, GRAPH_ROLE_SINK,
    GRAPH_ROLE_TWO_INPUT      /* two inputs (edge input_index 0 and 1); never chained to them */
} graph_op_role;

/* "source.text_file" for GRAPH_OP_SOURCE_TEXT_FILE; NULL for a value outside the catalog. */
const char *graph_op_kind_name(graph_op_kind kind);
graph_op_role graph_op_kind_role(graph_op_kind kind);
/* The kind named name, or -1 when the catalog has no such kind. */
int graph_op_kind_find(const char *name);

/* ---- partitioners ------------------------------------------------------------------------------ */
/* "FORWARD", "REBALANCE", "RESCALE", "SHUFFLE", "HASH", "BROADCAST" (as Flink's web UI shows). */
const char *graph_partitioner_name(Flint__Graph__Partitioner p);
/* The edge's partitioner as a Flink user reads it: "FORWARD", "REBALANCE", "HASH[word]",
 * "HASH[user,region]", "HASH[user_key()]" (a key selector). Writes into buf[len] and returns buf. */
const char *graph_partitioner_label(const Flint__Graph__JobEdge *e, char *buf, size_t len);

/* ---- the environment as the client makes it ------------------------------------------------- */
typedef struct graph_env_defaults {
    int parallelism;              /* -p when given, else parallelism.default (>= 1) */
    int max_parallelism;          /* pipeline.max-parallelism (0: 128) */
    int64_t buffer_timeout_ms;    /* execution.buffer-timeout */
} graph_env_defaults;

/* A new environment for one run of a job's main (d NULL: parallelism 1, max parallelism 128,
 * buffer timeout 100 ms). Free it with graph_env_free, which frees every stream of the job. */
flint_env *graph_env_new(const graph_env_defaults *d);
void graph_env_free(flint_env *env);
/* A configuration entry of the job, before main runs (the client's -D key=value). Entries set
 * later, also by flint_env_set_config, replace earlier ones of the same key. */
void graph_env_add_config(flint_env *env, const char *key, const char *value);

/* What flint_execute does once the job graph is built and valid: the client checks the
 * artifact's symbols and submits (or prints the plan). It may fill job->artifact_sha256 (the
 * graph is owned by env). Returns FLINT_OK, or an error recorded with graph_env_fail. */
typedef int (*graph_execute_fn)(flint_env *env, Flint__Graph__JobGraph *job, void *ud);
void graph_env_set_execute_hook(flint_env *env, graph_execute_fn fn, void *ud);

/* Whether flint_execute was called, and whether it got as far as calling the hook. */
bool graph_env_executed(const flint_env *env);
/* The job graph built by flint_execute (owned by env), or NULL when it failed or never ran. */
Flint__Graph__JobGraph *graph_env_job(const flint_env *env);
/* Record an error unless one is recorded already (the first error wins); returns code. The
 * message names what failed; it is returned by flint_env_error. */
int graph_env_fail(flint_env *env, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The status of the first error (FLINT_OK when none). */
int graph_env_error_code(const flint_env *env);

/* A user function the stream graph names, as the client checks it against the artifact. */
typedef struct graph_udf {
    const char *operator_name;    /* as messages name it: "Flat Map", "tokenize (flat_map)" */
    const char *role;             /* "fn", "fn.open", "fn.close", "key.selector" */
    const char *symbol;           /* "split" */
    void (*ptr)(void);            /* the pointer FLINT_FN took */
} graph_udf;
/* Call fn for each user function (operators in id order); stops at the first non-zero return of
 * fn and returns it; 0 when all went through. */
int graph_env_foreach_udf(const flint_env *env, int (*fn)(const graph_udf *u, void *ud), void *ud);
/* Number of user functions the graph names (0: the job needs no artifact). */
int graph_env_udf_count(const flint_env *env);

/* ---- job graph -------------------------------------------------------------------------------- */
/* Validate the stream graph of env and chain it into a new job graph (name job_name, a random job
 * id, config, params, max parallelism, buffer timeout; artifact_sha256 ""). Every string and
 * array of the result is heap-allocated: free it with graph_job_free. On error returns a status
 * and err names the operator; *out is NULL. Does not touch env's error. */
int graph_build(const flint_env *env, const char *job_name, Flint__Graph__JobGraph **out,
                flint_err *err);
void graph_job_free(Flint__Graph__JobGraph *job);

/* Look up a KeyValue list (params, user_params, config) by key: the value or NULL. */
const char *graph_kv_get(Flint__Graph__KeyValue *const *kvs, size_t n, const char *key);

/* Write the plan of `flint info`: job, vertices with their chained operators, parallelism and
 * slot sharing group, and edges with their partitioners. */
void graph_plan_print(const Flint__Graph__JobGraph *job, FILE *out);

#endif

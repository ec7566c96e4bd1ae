/* Flint's job API: what a job artifact (a shared object built from C) uses to describe a
 * streaming job. A job exports
 *
 *     int flint_job_main(flint_env *env, int argc, char **argv);
 *
 * which builds a stream graph through the functions below and ends with flint_execute. The
 * client runs it, checks the graph, chains operators into a job graph and submits it; the
 * taskmanagers load the same artifact and call the user functions it names with FLINT_FN.
 *
 * Ownership: every flint_stream and flint_keyed_stream belongs to its env and lives until the job
 * is submitted; strings passed in are copied. API calls never fail in the middle of main: a
 * mistake (an unknown field, a sum over a string, a missing schema) is recorded with the
 * operator's name, the call returns a usable stream so main can go on, and flint_execute returns
 * the error, which `flint run` prints before anything is submitted. */
#ifndef FLINT_H
#define FLINT_H

#include <stdbool.h>
#include <stdint.h>

#include "flint/row.h"
#include "flint/status.h"
#include "flint/version.h"

typedef struct flint_env flint_env;
typedef struct flint_stream flint_stream;
typedef struct flint_keyed_stream flint_keyed_stream;
typedef struct flint_ctx flint_ctx;
typedef struct flint_collector flint_collector;

/* ---- user functions --------------------------------------------------------------------
 * User functions are ordinary exported (non-static) functions of the artifact. FLINT_FN(f)
 * records the pointer and the symbol name; the taskmanagers resolve the name with dlsym. */
typedef struct flint_fn {
    void (*ptr)(void);
    const char *name;
} flint_fn;
#define FLINT_FN(f) ((flint_fn){(void (*)(void))(f), #f})

/* One input row -> one output row: fill out (a builder of the output schema, already reset). */
typedef void (*flint_map_fn)(flint_ctx *ctx, const flint_row *in, flint_row_builder *out);
/* One input row -> zero or more output rows through out (flat_map and process). */
typedef void (*flint_flat_map_fn)(flint_ctx *ctx, const flint_row *in, flint_collector *out);
/* Keep the row when it returns true. */
typedef bool (*flint_filter_fn)(flint_ctx *ctx, const flint_row *in);
/* Extract the key of in into key (a builder of the key schema, already reset). */
typedef void (*flint_key_fn)(flint_ctx *ctx, const flint_row *in, flint_row_builder *key);
/* Combine the current aggregate acc with in into out (all of the stream's schema). */
typedef void (*flint_reduce_fn)(flint_ctx *ctx, const flint_row *acc, const flint_row *in,
                                flint_row_builder *out);
/* Consume a row at the end of a pipeline. */
typedef void (*flint_sink_fn)(flint_ctx *ctx, const flint_row *in);
/* Called once per subtask before the first row (open) and after the last (close); optional. */
typedef int (*flint_open_fn)(flint_ctx *ctx);
typedef void (*flint_close_fn)(flint_ctx *ctx);

/* ---- collectors (flat_map, process) ---------------------------------------------------- */
/* The builder for the next output row, reset. */
flint_row_builder *flint_out_row(flint_collector *out);
/* Emit the row built in flint_out_row(out) downstream (synchronously, through the chain). */
void flint_emit(flint_collector *out);
/* Emit an existing row of the output schema as it is. */
void flint_emit_row(flint_collector *out, const flint_row *row);

/* ---- runtime context --------------------------------------------------------------------- */
int flint_ctx_subtask(const flint_ctx *ctx);          /* 0-based subtask index */
int flint_ctx_parallelism(const flint_ctx *ctx);
const char *flint_ctx_task_name(const flint_ctx *ctx);
/* A parameter of this operator (flint_param) or else of the job (flint_env_set_param); NULL when
 * neither is set. */
const char *flint_ctx_param(const flint_ctx *ctx, const char *key);
/* A per-subtask pointer for the user function's own state (set in open, freed in close). */
void flint_ctx_set_user_data(flint_ctx *ctx, void *data);
void *flint_ctx_user_data(const flint_ctx *ctx);
/* Fail the task with a message; the job fails with it as the root cause. */
void flint_ctx_fail(flint_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- environment ---------------------------------------------------------------------------- */
void flint_env_set_parallelism(flint_env *env, int parallelism);
void flint_env_set_max_parallelism(flint_env *env, int max_parallelism);   /* default 128 */
/* execution.buffer-timeout in ms: 0 flushes after every record, -1 only when buffers are full. */
void flint_env_set_buffer_timeout(flint_env *env, int64_t ms);
void flint_env_disable_operator_chaining(flint_env *env);
/* Set a configuration key for this job (as -D does). */
void flint_env_set_config(flint_env *env, const char *key, const char *value);
/* A job parameter every user function can read with flint_ctx_param. */
void flint_env_set_param(flint_env *env, const char *key, const char *value);
/* The first error recorded while building the graph, or NULL. */
const char *flint_env_error(const flint_env *env);
/* Record an error of the job's own (bad arguments, say): flint_execute then fails with it. */
void flint_env_fail(flint_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Check, build and submit the job (or run it, per the client's mode). Returns FLINT_OK, or the
 * status of the first error with the message in flint_env_error. */
int flint_execute(flint_env *env, const char *job_name);

/* ---- sources ----------------------------------------------------------------------------- */
/* Bounded: the given rows, each in text form with fields separated by ',' (flint_row_parse). */
flint_stream *flint_from_elements(flint_env *env, const char *schema, int n, const char *const *rows);
/* Bounded: "value BIGINT" from from to to inclusive, split among the source's subtasks. */
flint_stream *flint_from_sequence(flint_env *env, int64_t from, int64_t to);
/* Rows of schema with generated values: the first BIGINT field counts 0, 1, 2, ... over all
 * subtasks, other fields are pseudo-random (seeded, so runs repeat). count < 0 is unbounded;
 * rows_per_second <= 0 is as fast as possible (both over all subtasks). */
flint_stream *flint_source_datagen(flint_env *env, const char *schema, int64_t count,
                                   double rows_per_second);
/* Bounded: the lines of a text file as "line STRING" (parallelism 1). */
flint_stream *flint_source_text_file(flint_env *env, const char *path);
/* Unbounded: lines read from a TCP server as "line STRING" (parallelism 1); ends when the server
 * closes the connection. */
flint_stream *flint_source_socket(flint_env *env, const char *host, int port);

/* ---- transformations ---------------------------------------------------------------------- */
flint_stream *flint_map(flint_stream *in, flint_fn fn, const char *out_schema);
flint_stream *flint_flat_map(flint_stream *in, flint_fn fn, const char *out_schema);
flint_stream *flint_filter(flint_stream *in, flint_fn fn);
/* A non-keyed process function: flat_map with the full context. */
flint_stream *flint_process(flint_stream *in, flint_fn fn, const char *out_schema);
/* Merge streams of equal schema. */
flint_stream *flint_union(flint_stream *a, flint_stream *b);

/* Key by comma-separated field names ("word" or "user, region"). */
flint_keyed_stream *flint_key_by(flint_stream *in, const char *fields);
/* Key by a key-selector function producing rows of key_schema. */
flint_keyed_stream *flint_key_by_fn(flint_stream *in, flint_fn fn, const char *key_schema);
/* Rolling aggregations per key, emitting the new aggregate for every input row, as Flink's.
 * sum/min/max update one numeric field and keep the other fields of the key's first row;
 * min_by/max_by emit the whole row holding the smallest/largest value so far (first wins ties). */
flint_stream *flint_reduce(flint_keyed_stream *in, flint_fn fn);
flint_stream *flint_sum(flint_keyed_stream *in, const char *field);
flint_stream *flint_min(flint_keyed_stream *in, const char *field);
flint_stream *flint_max(flint_keyed_stream *in, const char *field);
flint_stream *flint_min_by(flint_keyed_stream *in, const char *field);
flint_stream *flint_max_by(flint_keyed_stream *in, const char *field);

/* Partitioning of the next edge (Flink's DataStream#rebalance and friends). */
flint_stream *flint_rebalance(flint_stream *in);
flint_stream *flint_rescale(flint_stream *in);
flint_stream *flint_shuffle(flint_stream *in);
flint_stream *flint_broadcast(flint_stream *in);
flint_stream *flint_forward(flint_stream *in);

/* ---- sinks ------------------------------------------------------------------------------------ */
/* Rows as text ("hello 3") to the taskmanager's stdout (its .out file), prefixed "<subtask+1>> "
 * when the sink's parallelism is above 1, as Flink's print(). */
flint_stream *flint_sink_print(flint_stream *in);
/* Rows as text lines, one part file per subtask ("part-<subtask>") in directory dir. */
flint_stream *flint_sink_text_file(flint_stream *in, const char *dir);
/* Discard every row. */
flint_stream *flint_sink_blackhole(flint_stream *in);
/* A user sink function. */
flint_stream *flint_sink(flint_stream *in, flint_fn fn);

/* ---- operator settings: each returns its stream for chaining calls ----------------------- */
flint_stream *flint_name(flint_stream *s, const char *name);
flint_stream *flint_uid(flint_stream *s, const char *uid);
flint_stream *flint_set_parallelism(flint_stream *s, int parallelism);
flint_stream *flint_slot_sharing_group(flint_stream *s, const char *group);
flint_stream *flint_start_new_chain(flint_stream *s);
flint_stream *flint_disable_chaining(flint_stream *s);
/* An operator parameter for its user functions (flint_ctx_param). */
flint_stream *flint_param(flint_stream *s, const char *key, const char *value);
/* Open and close functions for the operator's user function. */
flint_stream *flint_with_open(flint_stream *s, flint_fn open_fn);
flint_stream *flint_with_close(flint_stream *s, flint_fn close_fn);

#endif

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
/* The same at most lines_per_second lines per second (<= 0: as fast as possible). Text file
 * sources are replayable: checkpoints record the offset of the next line. */
flint_stream *flint_source_text_file_rate(flint_env *env, const char *path, double lines_per_second);
/* Unbounded: lines read from a TCP server as "line STRING" (parallelism 1); ends when the server
 * closes the connection. */
flint_stream *flint_source_socket(flint_env *env, const char *host, int port);
/* The Nexmark benchmark's events (docs/nexmark.md) as rows of table "bid", "auction", "person"
 * (that type's columns) or "all" (every event as one wide row: event_type INT (0 person,
 * 1 auction, 2 bid), dateTime, then the nullable columns of the three types). events counts all
 * events of every type (events < 0: unbounded); events_per_second <= 0 is as fast as possible
 * (both over all subtasks). The same seed gives the same rows at any parallelism. */
flint_stream *flint_source_nexmark(flint_env *env, const char *table, int64_t events,
                                   double events_per_second, int64_t seed);

/* ---- transformations ---------------------------------------------------------------------- */
flint_stream *flint_map(flint_stream *in, flint_fn fn, const char *out_schema);
flint_stream *flint_flat_map(flint_stream *in, flint_fn fn, const char *out_schema);
flint_stream *flint_filter(flint_stream *in, flint_fn fn);
/* A non-keyed process function: flat_map with the full context. */
flint_stream *flint_process(flint_stream *in, flint_fn fn, const char *out_schema);
/* The input's fields named in fields ("auction, price"), in that order: a projection planned
 * once per operator (no user function; the output schema is those fields'). */
flint_stream *flint_project(flint_stream *in, const char *fields);
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
/* Exactly-once (two-phase commit bound to checkpoints, Flink's FileSink): rows as text lines in
 * part files "part-<subtask>-<n>" in dir, written hidden (".part-<subtask>-<n>.inprogress") and
 * renamed into place when the checkpoint that covers them completes (or at the end of the input);
 * readers of dir only ever see committed files. See docs/api.md ("Exactly-once file sink"). */
flint_stream *flint_sink_file_exactly_once(flint_stream *in, const char *dir);
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

/* ==== Event time, state, timers, windows and joins ==========================================
 * (DESIGN.md section 7.) Every record may carry an event timestamp (epoch ms) next to its row;
 * watermarks flow with the records. Keyed state is scoped to the current key and organised by
 * key group; every state kind works on both state backends (state.backend.type: hashmap,
 * rocksdb). */

#define FLINT_NO_TIMESTAMP INT64_MIN
#define FLINT_MAX_WATERMARK INT64_MAX

typedef enum flint_time_domain { FLINT_EVENT_TIME, FLINT_PROCESSING_TIME } flint_time_domain;

/* ---- timestamps and watermarks ----------------------------------------------------------- */
/* The event timestamp of a row, in epoch ms. */
typedef int64_t (*flint_timestamp_fn)(flint_ctx *ctx, const flint_row *in);

/* How a stream gets its timestamps and watermarks (Flink's WatermarkStrategy). Watermarks are
 * bounded out-of-orderness: max timestamp seen - max_out_of_orderness_ms - 1 (0 is Flink's
 * forMonotonousTimestamps), emitted every pipeline.auto-watermark-interval. With idleness_ms > 0
 * a subtask that sees no row for that long marks itself idle and is ignored downstream until its
 * next row. The end of a bounded input emits FLINT_MAX_WATERMARK. */
typedef struct flint_watermark_strategy {
    const char *timestamp_field;      /* a TIMESTAMP(3) or BIGINT field holding epoch ms, or: */
    flint_fn timestamp_fn;            /* a flint_timestamp_fn (when timestamp_field is NULL) */
    int64_t max_out_of_orderness_ms;
    int64_t idleness_ms;              /* 0: never idle */
} flint_watermark_strategy;

flint_stream *flint_assign_timestamps_and_watermarks(flint_stream *in, flint_watermark_strategy ws);

/* The current record's event timestamp (FLINT_NO_TIMESTAMP when it has none); in on_timer, the
 * timer's time. */
int64_t flint_ctx_timestamp(const flint_ctx *ctx);
/* The operator's current event-time watermark (INT64_MIN before the first). */
int64_t flint_ctx_current_watermark(const flint_ctx *ctx);
/* Wall clock, epoch ms, as the timer service sees it. */
int64_t flint_ctx_current_processing_time(const flint_ctx *ctx);

/* ---- keyed state ----------------------------------------------------------------------------
 * Obtained in an open function (flint_with_open) of a keyed operator and used in its process and
 * on_timer functions, where it is scoped to the current key. Handles belong to the operator.
 * ttl_ms > 0: an entry expires ttl_ms after it was last written (Flink's OnCreateAndWrite,
 * NeverReturnExpired); expired entries are dropped when read and when a snapshot is taken. Row
 * views returned by getters stay valid until the next call on any state of the operator. */
typedef struct flint_state flint_state;
typedef struct flint_state_iter flint_state_iter;

typedef struct flint_state_desc {
    const char *name;                 /* unique per operator */
    const char *schema;               /* value (VALUE, LIST, REDUCING), map value (MAP),
                                         accumulator (AGGREGATING) */
    const char *key_schema;           /* MAP: the user key's columns */
    flint_fn reduce_fn;               /* REDUCING: a flint_reduce_fn */
    flint_fn agg_create, agg_add, agg_merge, agg_result;   /* AGGREGATING: flint_agg_*_fn */
    const char *result_schema;        /* AGGREGATING: what agg_result builds */
    int64_t ttl_ms;
} flint_state_desc;

flint_state *flint_state_value(flint_ctx *ctx, const flint_state_desc *desc);
flint_state *flint_state_list(flint_ctx *ctx, const flint_state_desc *desc);
flint_state *flint_state_map(flint_ctx *ctx, const flint_state_desc *desc);
flint_state *flint_state_reducing(flint_ctx *ctx, const flint_state_desc *desc);
flint_state *flint_state_aggregating(flint_ctx *ctx, const flint_state_desc *desc);

/* Value state: false when there is no (unexpired) value. */
bool flint_value_get(flint_state *st, flint_row *out);
void flint_value_update(flint_state *st, const flint_row *value);
/* List state. */
void flint_list_add(flint_state *st, const flint_row *value);
void flint_list_update(flint_state *st, int n, const flint_row *values);
flint_state_iter *flint_list_iter(flint_state *st);
/* Map state. */
bool flint_map_get(flint_state *st, const flint_row *key, flint_row *out);
void flint_map_put(flint_state *st, const flint_row *key, const flint_row *value);
void flint_map_remove(flint_state *st, const flint_row *key);
bool flint_map_contains(flint_state *st, const flint_row *key);
flint_state_iter *flint_map_iter(flint_state *st);
/* Reducing and aggregating state: add folds the value in; get reads the result. */
void flint_state_add(flint_state *st, const flint_row *value);
bool flint_state_get(flint_state *st, flint_row *out);
/* Any kind: drop the current key's entry. */
void flint_state_clear(flint_state *st);
/* Iteration (list: values; map: key and value). The iterator is freed when it is exhausted or
 * with flint_state_iter_close. */
bool flint_state_iter_next(flint_state_iter *it, flint_row *key, flint_row *value);
void flint_state_iter_close(flint_state_iter *it);

/* Operator (non-keyed) state: a list per operator instance, redistributed round robin when the
 * parallelism changes (Flink's ListState of CheckpointedFunction). */
flint_state *flint_state_operator_list(flint_ctx *ctx, const flint_state_desc *desc);
/* Broadcast state: a map every parallel instance holds in full; writable only while processing
 * the broadcast input of flint_broadcast_process. */
flint_state *flint_state_broadcast(flint_ctx *ctx, const flint_state_desc *desc);

/* ---- aggregate functions (window aggregates, aggregating state) ------------------------------- */
typedef void (*flint_agg_create_fn)(flint_ctx *ctx, flint_row_builder *acc);
typedef void (*flint_agg_add_fn)(flint_ctx *ctx, const flint_row *acc, const flint_row *in,
                                 flint_row_builder *out_acc);
typedef void (*flint_agg_merge_fn)(flint_ctx *ctx, const flint_row *a, const flint_row *b,
                                   flint_row_builder *out_acc);
typedef void (*flint_agg_result_fn)(flint_ctx *ctx, const flint_row *acc, flint_row_builder *out);

/* ---- process functions, timers, side outputs ---------------------------------------------------- */
/* on_timer of a keyed process function: the timer's key is current (flint_ctx_current_key). */
typedef void (*flint_on_timer_fn)(flint_ctx *ctx, int64_t timestamp, flint_time_domain domain,
                                  flint_collector *out);

/* A keyed process function: process_fn is a flint_flat_map_fn with keyed state and timers;
 * on_timer_fn (FLINT_FN or (flint_fn){0}) fires registered timers. */
flint_stream *flint_keyed_process(flint_keyed_stream *in, flint_fn process_fn, flint_fn on_timer_fn,
                                  const char *out_schema);
/* Timers of the current key (keyed operators only). Registering the same time twice is one
 * timer. Event-time timers fire when the watermark passes them; processing-time timers when
 * the wall clock does. */
void flint_timer_register_event_time(flint_ctx *ctx, int64_t timestamp);
void flint_timer_delete_event_time(flint_ctx *ctx, int64_t timestamp);
void flint_timer_register_processing_time(flint_ctx *ctx, int64_t timestamp);
void flint_timer_delete_processing_time(flint_ctx *ctx, int64_t timestamp);
/* The current key as a row of the key's schema (key fields, or the key selector's schema). */
flint_row flint_ctx_current_key(const flint_ctx *ctx);

/* Side outputs: an operator emits rows of a declared tag; flint_side_output is that stream. */
flint_stream *flint_side_output(flint_stream *op, const char *tag, const char *schema);
flint_row_builder *flint_side_out_row(flint_collector *out, const char *tag);
void flint_emit_side(flint_collector *out, const char *tag);

/* ---- two inputs --------------------------------------------------------------------------------- */
typedef struct flint_connected flint_connected;
/* Connect two streams (each optionally keyed; keyed ones must have equal key types). */
flint_connected *flint_connect(flint_stream *a, flint_stream *b);
flint_connected *flint_connect_keyed(flint_keyed_stream *a, flint_keyed_stream *b);
/* process1_fn/process2_fn are flint_flat_map_fn for rows of a and b; on_timer_fn as in
 * flint_keyed_process (keyed connections only). */
flint_stream *flint_co_process(flint_connected *c, flint_fn process1_fn, flint_fn process2_fn,
                               flint_fn on_timer_fn, const char *out_schema);
/* Broadcast state pattern: rows of in go to process_fn (broadcast state read-only), rows of the
 * broadcast stream bc to every parallel instance's process_bc_fn (broadcast state writable). */
flint_stream *flint_broadcast_process(flint_stream *in, flint_stream *bc, flint_fn process_fn,
                                      flint_fn process_bc_fn, const char *out_schema);

/* ---- windows ----------------------------------------------------------------------------------- */
typedef enum flint_window_kind {
    FLINT_WINDOW_TUMBLING,            /* size_ms [, offset_ms] */
    FLINT_WINDOW_SLIDING,             /* size_ms, slide_ms [, offset_ms] */
    FLINT_WINDOW_SESSION,             /* gap_ms; merging */
    FLINT_WINDOW_COUNT_TUMBLING,      /* size (elements) */
    FLINT_WINDOW_COUNT_SLIDING        /* size, slide (elements) */
} flint_window_kind;

typedef struct flint_window_spec {
    flint_window_kind kind;
    flint_time_domain domain;         /* time windows */
    int64_t size, slide, offset, gap; /* ms, or elements for count windows */
} flint_window_spec;

typedef enum flint_trigger_kind {
    FLINT_TRIGGER_DEFAULT,            /* the assigner's: event time, processing time or count */
    FLINT_TRIGGER_EVENT_TIME,
    FLINT_TRIGGER_PROCESSING_TIME,
    FLINT_TRIGGER_COUNT               /* fires every count elements */
} flint_trigger_kind;

typedef struct flint_trigger {
    flint_trigger_kind kind;
    int64_t count;
    bool purging;                     /* PurgingTrigger: clear the window's contents on fire */
} flint_trigger;

typedef struct flint_windowed_stream flint_windowed_stream;

flint_windowed_stream *flint_window(flint_keyed_stream *in, flint_window_spec spec);
flint_windowed_stream *flint_window_trigger(flint_windowed_stream *w, flint_trigger trigger);
/* Evictors (window process functions only): keep the last count elements, or those within
 * time_ms of the newest. */
flint_windowed_stream *flint_window_evict_count(flint_windowed_stream *w, int64_t count);
flint_windowed_stream *flint_window_evict_time(flint_windowed_stream *w, int64_t time_ms);
/* Late records within allowed_lateness_ms of a fired window's end re-fire it (event time). */
flint_windowed_stream *flint_allowed_lateness(flint_windowed_stream *w, int64_t allowed_lateness_ms);
/* Records too late even for the allowed lateness go to this side output, unchanged. */
flint_windowed_stream *flint_side_output_late_data(flint_windowed_stream *w, const char *tag);

/* Window results are rows of (the key fields..., window_start TIMESTAMP(3), window_end
 * TIMESTAMP(3) (exclusive), the result's fields...), as Flink SQL's window aggregations; their
 * timestamp is window_end - 1. Count windows have window_start and window_end NULL. */
flint_stream *flint_window_reduce(flint_windowed_stream *w, flint_fn reduce_fn);
/* Built-in aggregates over one field (count takes NULL): result column "count BIGINT",
 * "sum <type>", "min <type>", "max <type>", "avg DOUBLE". */
flint_stream *flint_window_count(flint_windowed_stream *w);
flint_stream *flint_window_sum(flint_windowed_stream *w, const char *field);
flint_stream *flint_window_min(flint_windowed_stream *w, const char *field);
flint_stream *flint_window_max(flint_windowed_stream *w, const char *field);
flint_stream *flint_window_avg(flint_windowed_stream *w, const char *field);
/* A user aggregate: create/add/merge/result over an accumulator of acc_schema. */
flint_stream *flint_window_aggregate(flint_windowed_stream *w, flint_fn create, flint_fn add,
                                     flint_fn merge, flint_fn result, const char *acc_schema,
                                     const char *result_schema);
/* A process window function sees every element of the window. */
typedef struct flint_time_window { int64_t start, end; } flint_time_window;
typedef void (*flint_process_window_fn)(flint_ctx *ctx, const flint_time_window *w,
                                        flint_state_iter *elements, flint_collector *out);
flint_stream *flint_window_process(flint_windowed_stream *w, flint_fn process_fn,
                                   const char *out_schema);

/* ---- joins --------------------------------------------------------------------------------------- */
/* join_fn builds one output row per matching pair. */
typedef void (*flint_join_fn)(flint_ctx *ctx, const flint_row *left, const flint_row *right,
                              flint_row_builder *out);
/* Pairs of a and b with equal keys in the same window (tumbling, sliding or session, event or
 * processing time), emitted when the window fires. */
flint_stream *flint_window_join(flint_keyed_stream *a, flint_keyed_stream *b, flint_window_spec spec,
                                flint_fn join_fn, const char *out_schema);
/* Pairs with equal keys and b.ts in [a.ts + lower_ms, a.ts + upper_ms] (event time); state is
 * dropped as the watermark passes. Output timestamp: max(a.ts, b.ts). */
flint_stream *flint_interval_join(flint_keyed_stream *a, flint_keyed_stream *b, int64_t lower_ms,
                                  int64_t upper_ms, flint_fn join_fn, const char *out_schema);

/* ==== Kafka connectors ==========================================================================
 * (docs/connectors.md.) A partitioned source with offsets in checkpointed state (Flink's
 * KafkaSource) and a sink with three delivery guarantees (Flink's KafkaSink), over librdkafka in
 * the taskmanagers. Options are a struct (zero means the default) plus string properties for
 * everything else: "properties.<key>" goes to librdkafka as <key>; the connector's own keys
 * ("format.ignore-parse-errors", "json.*", "csv.*", ...) are listed in docs/connectors.md. An
 * unknown connector key or a bad value is an error at flint run, naming the operator. */

/* Where a source starts reading a partition it has no checkpointed offset for. */
typedef enum flint_kafka_startup {
    FLINT_KAFKA_EARLIEST,             /* the first offset of each partition (the default) */
    FLINT_KAFKA_LATEST,               /* the end of each partition when the job starts */
    FLINT_KAFKA_GROUP_OFFSETS,        /* the group's committed offsets; partitions without one: reset */
    FLINT_KAFKA_TIMESTAMP,            /* the first record with a timestamp >= startup_timestamp_ms */
    FLINT_KAFKA_SPECIFIC_OFFSETS      /* startup_offsets; partitions not listed: as GROUP_OFFSETS */
} flint_kafka_startup;

/* GROUP_OFFSETS: where a partition without a committed offset starts. */
typedef enum flint_kafka_reset {
    FLINT_KAFKA_RESET_EARLIEST,       /* the default */
    FLINT_KAFKA_RESET_LATEST,
    FLINT_KAFKA_RESET_NONE            /* fail the job */
} flint_kafka_reset;

/* A record whose value does not parse with the format fails the job (naming topic, partition,
 * offset and the reason) unless ignore_parse_errors (skipped and counted) or dead_letter_tag is
 * set: then it goes, unparsed, to that side output of the source, of this schema: */
#define FLINT_KAFKA_DEAD_LETTER_SCHEMA                                                             \
    "topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP(3), key BYTES, value BYTES, " \
    "error STRING"

typedef struct flint_kafka_source_options {
    const char *bootstrap_servers;    /* "host:port,host:port" (required) */
    const char *topics;               /* "orders" or "orders,returns", or instead: */
    const char *topic_pattern;        /* a POSIX extended regex topic names must match whole */
    const char *group_id;             /* offsets are committed for this group on checkpoint
                                         completion; NULL: nothing is committed */
    const char *format;               /* value format: "text" (default), "raw", "json", "csv" */
    flint_kafka_startup startup;
    flint_kafka_reset reset;
    int64_t startup_timestamp_ms;     /* FLINT_KAFKA_TIMESTAMP */
    const char *startup_offsets;      /* FLINT_KAFKA_SPECIFIC_OFFSETS: "topic:partition:offset,..." */
    bool bounded;                     /* stop at the end offsets seen at start; the job can finish */
    int64_t discovery_interval_ms;    /* look for new partitions this often: 0 = 5 min (never when
                                         bounded), < 0 = never */
    /* Event time: every row carries the Kafka record's timestamp unless the strategy names a
     * timestamp field or function. With a strategy, watermarks are generated per partition inside
     * the source and combined as their minimum; a partition without records for idleness_ms is
     * left out of it (all idle: the subtask is idle). NULL: no watermarks. */
    const flint_watermark_strategy *watermarks;
    bool ignore_parse_errors;         /* = property format.ignore-parse-errors */
    const char *dead_letter_tag;      /* a side output for records that do not parse */
    const char *const *properties;    /* NULL, or key, value, key, value, ..., NULL */
} flint_kafka_source_options;

/* Rows of schema from Kafka records. The value format fills the plain columns; columns declared
 * as in Flink SQL, "name TYPE METADATA [FROM 'key']", are filled from the record instead: key
 * (BYTES or STRING), topic (STRING), partition (INT), offset (BIGINT), timestamp (TIMESTAMP(3)
 * or BIGINT), timestamp-type (STRING), headers (STRING or BYTES: a JSON object of name -> value:
 * a string when UTF-8, {"base64": "..."} otherwise, null without a value, an array of those when
 * the name repeats; docs/connectors.md).
 * Partitions are assigned to subtasks as Flink's KafkaSourceEnumerator does: subtask =
 * ((hash(topic) * 31 & 0x7fffffff) % p + partition) % p (hash: Java's String.hashCode). */
flint_stream *flint_source_kafka(flint_env *env, const char *schema, const flint_kafka_source_options *opts);

typedef enum flint_kafka_delivery {
    FLINT_KAFKA_AT_LEAST_ONCE,        /* flush at every checkpoint; a failed delivery fails it */
    FLINT_KAFKA_NONE,                 /* fire and forget (failed deliveries are logged, counted) */
    FLINT_KAFKA_EXACTLY_ONCE          /* a transaction per checkpoint, committed on its completion */
} flint_kafka_delivery;

typedef enum flint_kafka_partitioner {
    FLINT_KAFKA_PARTITIONER_DEFAULT,  /* librdkafka's, murmur2 of the key as Kafka's Java client
                                         (records without a key: a random partition) */
    FLINT_KAFKA_PARTITIONER_FIXED,    /* subtask i writes to partition i % partitions (Flink's
                                         FlinkFixedPartitioner) */
    FLINT_KAFKA_PARTITIONER_ROUND_ROBIN
} flint_kafka_partitioner;

typedef struct flint_kafka_sink_options {
    const char *bootstrap_servers;    /* required */
    const char *topic;                /* every record goes to this topic, or: */
    const char *topic_field;          /* a STRING field naming each record's topic (not written
                                         into the value) */
    const char *key_fields;           /* "user, region": the record key, in key_format; NULL: none */
    const char *key_format;           /* "csv" (default), "text", "raw", "json" */
    const char *format;               /* value format: "text" (default), "raw", "json", "csv" */
    flint_kafka_partitioner partitioner;
    flint_kafka_delivery delivery;
    const char *transactional_id_prefix;  /* EXACTLY_ONCE (required): subtask i uses
                                             "<prefix>-<i>" */
    /* Record headers: static ones on every record (NULL, or name, value, ..., NULL), then those of
     * headers_field, a STRING or BYTES column holding a JSON object {"name": "value", ...} in the
     * encoding of the source's 'headers' metadata column (values also {"base64": "..."}, null or
     * arrays of those; written back byte for byte; a NULL column adds none; not written into the
     * value). */
    const char *const *headers;
    const char *headers_field;
    const char *const *properties;    /* NULL, or key, value, ..., NULL */
} flint_kafka_sink_options;

/* Write every row as a Kafka record; the record timestamp is the row's event timestamp when it
 * has one. */
flint_stream *flint_sink_kafka(flint_stream *in, const flint_kafka_sink_options *opts);

#endif

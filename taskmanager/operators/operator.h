/* Operators of a task's chain: each built-in kind of the operator catalog (common/graph/
 * op_kinds.def) is a table of callbacks registered by its name (Fluent Bit's plugin structs,
 * nginx's modules), and each operator of a chain is an instance of one (a tm_op). Rows pass down
 * the chain by pointer: tm_op_emit hands a row to every output of an operator, chained operators
 * (a direct call) and network outputs (record writers) alike, without copying it.
 *
 * Errors: a callback that fails records the message with tm_op_fail (the task's first failure
 * wins; it becomes the root cause the jobmanager shows) and returns its status; every caller up
 * the chain returns that status at once. FLINT_CANCELED travels the same way when the task is
 * canceled while a writer waits for a buffer. */
#ifndef FLINT_TM_OPERATOR_H
#define FLINT_TM_OPERATOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "flint/flint.h"
#include "checkpoint.pb-c.h"
#include "jobgraph.pb-c.h"
#include "metrics/metrics.h"
#include "runtime/runtime.h"
#include "task/tm_timers.h"

typedef struct tm_op tm_op;

/* A periodic action of an operator (tm_op_every), run by the task's mailbox loop. */
typedef int (*tm_tick_fn)(tm_op *op, int64_t now_ms);
typedef struct tm_tick {
    tm_op *op;
    tm_tick_fn fn;
    int64_t interval_ms, next_ms;             /* monotonic */
} tm_tick;

/* What a chain's operators share: the subtask they run in and its failure. One per task; used by
 * the task thread only. */
typedef struct tm_runtime {
    int subtask, parallelism, max_parallelism;
    const char *task_name;                    /* "Source: lines -> Map (1/2)"; not owned */
    Flint__Graph__KeyValue *const *job_params;    /* flint_env_set_param values; not owned */
    size_t n_job_params;
    /* User functions by symbol name: NULL when missing. Default (resolve NULL): dlsym(dl, name). */
    void *(*resolve)(void *ud, const char *symbol);
    void *resolve_ud;
    void *dl;                                 /* the job's artifact, NULL when it has none */
    const char *artifact;                     /* its sha256, for messages ("" when none) */
    int64_t idle_ns;                          /* time sources spent waiting for input */
    /* Event time (issue 5; see task/tm_timers.h): the current record's timestamp
     * (FLINT_NO_TIMESTAMP when none), set by the task from input elements and by operators that
     * emit with a new one; tm_op_emit keeps it per output. */
    int64_t timestamp;
    tm_timers *timers;                        /* the task's timer service (NULL in some tests) */
    /* State backends (issue 5, taskmanager/state/tm_state.h): the job's config (-D, flint_env_set_config)
     * over the taskmanager's, and the attempt's execution id for unique directory names. All may
     * be NULL (defaults). Not owned. */
    const struct flint_config *tm_config;
    Flint__Graph__KeyValue *const *job_config;
    size_t n_job_config;
    const char *execution_id;
    int64_t auto_watermark_interval_ms;       /* pipeline.auto-watermark-interval (job config) */
    tm_tick *ticks;                           /* tm_op_every; run by tm_runtime_run_ticks */
    int n_ticks;
    /* Checkpoints (issue 6, checkpoint/cp_task.h): the task's controller, NULL without one
     * (tests). tm_state_op_open restores through it. */
    struct tm_cp *cp;
    bool failed;                              /* the first failure, in err */
    flint_err err;
} tm_runtime;

/* A callback output (network writers, tests): receives every row the operator emits. */
typedef int (*tm_output_fn)(void *ud, const flint_row *row);
/* A callback output's watermarks and idle statuses (optional: NULL drops them). */
typedef int (*tm_output_wm_fn)(void *ud, int64_t watermark);
typedef int (*tm_output_idle_fn)(void *ud, bool idle);

typedef struct tm_output {
    tm_op *op;                                /* a chained operator, or NULL: */
    tm_output_fn fn;
    void *ud;
    tm_output_wm_fn wm_fn;
    tm_output_idle_fn idle_fn;
} tm_output;

/* A side output of an operator: a tag declared by a "side.<tag>" parameter (its schema) and/or
 * consumed by tagged outputs; the outputs consuming it (none: emitting drops the row). */
typedef struct tm_side_output {
    char *tag;                                /* owned */
    flint_schema *schema;                     /* owned; NULL when not declared by a parameter */
    flint_row_builder b;                      /* of schema: what flint_side_out_row hands out */
    tm_output *outs;
    int n_outs, cap_outs;
} tm_side_output;

/* Sources: what produce() says about the next call. */
typedef enum tm_source_status {
    TM_SOURCE_MORE,       /* more rows are ready: call again (after the mailbox) */
    TM_SOURCE_WAIT,       /* nothing before *wake_at_ms (rate limit); call again then */
    TM_SOURCE_END         /* bounded input done: end_input follows */
} tm_source_status;

typedef struct tm_op_kind {
    const char *name;                         /* the catalog name ("map") */
    /* Prepare the instance (op->state), resolve user functions, call fn.open. */
    int (*open)(tm_op *op);
    /* One input row (ONE_INPUT and SINK kinds; the first input of TWO_INPUT kinds). The row's
     * timestamp is op->rt->timestamp. */
    int (*process)(tm_op *op, const flint_row *row);
    /* Sources: emit a small batch of rows. Returns FLINT_OK with *st set, or an error. May block
     * at most until deadline_ms (monotonic) waiting for input (the socket source); time spent so
     * goes to op->rt->idle_ns. */
    int (*produce)(tm_op *op, int64_t deadline_ms, tm_source_status *st, int64_t *wake_at_ms);
    /* No more input: emit what is pending (optional). */
    int (*end_input)(tm_op *op);
    /* Release the instance: called once for every opened operator, also after failures. Calls
     * fn.close when the operator was opened successfully. */
    void (*close)(tm_op *op);
    /* ---- issue 5 (after the others: kinds are written with positional initializers) ---- */
    /* A row of the second input (TWO_INPUT kinds only). */
    int (*process2)(tm_op *op, const flint_row *row);
    /* The operator's watermark advanced to wm (op->watermark is already wm and its due event-time
     * timers have fired). NULL: forward it (tm_op_emit_watermark). A kind that sets it forwards
     * (or holds back) the watermark itself. */
    int (*watermark)(tm_op *op, int64_t wm);
    /* A due timer of op->timers (see task/tm_timers.h). */
    int (*on_timer)(tm_op *op, const tm_timer *timer);
    /* ---- issue 6: checkpoints (checkpoint/cp_task.h; docs/checkpointing-protocol.md) ----
     * Keyed, operator and broadcast state and timers are snapshotted and restored by the task;
     * these are for what a kind keeps itself. All optional. */
    /* The synchronous part of a snapshot: add source positions (tm_cp_add_split) and a
     * two-phase-commit sink's pending commits (tm_cp_add_commit) to out. */
    int (*snapshot_state)(tm_op *op, int64_t checkpoint_id, Flint__Checkpoint__OperatorSubtaskState *out);
    /* Restore this subtask's share of them, after open and before the first row. */
    int (*initialize_state)(tm_op *op, const Flint__Checkpoint__OperatorRestore *r);
    /* Checkpoint checkpoint_id completed (commit now) / was aborted. */
    int (*notify_checkpoint_complete)(tm_op *op, int64_t checkpoint_id);
    int (*notify_checkpoint_aborted)(tm_op *op, int64_t checkpoint_id);
} tm_op_kind;

struct tm_op {
    const tm_op_kind *kind;
    const Flint__Graph__OperatorDef *def;     /* not owned (the deployment descriptor) */
    tm_runtime *rt;
    int index;                                /* in the vertex */
    flint_schema *in_schema, *out_schema;     /* owned; NULL for sources / sinks */
    flint_ctx ctx;                            /* the context its user functions see */
    tm_output *outs;
    int n_outs, cap_outs;
    /* A direct hop (chain.c): outs[0].op when it is the one output, op has no side outputs and
     * is its only input; then tm_op_emit calls its process directly and counts the row once. */
    tm_op *only_out;
    int (*only_out_process)(tm_op *op, const flint_row *row);  /* only_out->kind->process */
    const tm_op *in_from;                     /* the op whose only_out this is: numRecordsIn is its numRecordsOut */
    tm_side_output *sides;                    /* tagged outputs (side outputs) */
    int n_sides;
    int n_inputs, ended_inputs;               /* chained predecessors (the head: 1, the task) */
    int64_t watermark;                        /* current event-time watermark (INT64_MIN at first) */
    tm_timer_queue *timers;                   /* tm_op_timers, or NULL */
    int side_rc;                              /* the first failure of a side emission from a UDF */
    bool opened;                              /* open succeeded: close calls fn.close */
    void *state;                              /* the kind's */
    /* Metrics (issue 8, common/metrics/metrics.h): written by the task thread, read by the task
     * executor's. Rows processed (not counted for sources), rows emitted, watermarks in and out;
     * records a source read but could not turn into rows (skipped or dead-lettered: Flink's
     * numRecordsInErrors, reported for sources only). num_records_in is not kept behind a direct
     * hop: in_from's num_records_out is the count. */
    metric_counter num_records_in, num_records_out, num_records_in_errors;
    metric_gauge current_input_watermark, current_output_watermark;
};

/* The kind registered under name, or NULL. Every kind of op_kinds.def has one. */
const tm_op_kind *tm_op_kind_find(const char *name);

static inline int tm_op_process(tm_op *op, const flint_row *row) {
    metric_counter_inc(&op->num_records_in);
    return op->kind->process(op, row);
}
/* Emit row to every output of op, in order (chained operators first), with the current
 * timestamp (op->rt->timestamp, the same for every output). rt->timestamp is as before when it
 * returns (whatever the outputs did to it). One chained output (the common chain) is a direct
 * call from here; the rest goes through tm_op_emit_outs_. */
int tm_op_emit_outs_(tm_op *op, const flint_row *row);
static inline int tm_op_emit(tm_op *op, const flint_row *row) {
    tm_op *next = op->only_out;
    if (!next) return tm_op_emit_outs_(op, row);
    int64_t ts = op->rt->timestamp;
    metric_counter_inc(&op->num_records_out);   /* and next's numRecordsIn (in_from) */
    int rc = op->only_out_process(next, row);
    op->rt->timestamp = ts;
    return rc;
}
/* Emit row with event timestamp ts (FLINT_NO_TIMESTAMP: none); rt->timestamp is restored. */
int tm_op_emit_ts(tm_op *op, const flint_row *row, int64_t ts);
static inline int tm_op_process2(tm_op *op, const flint_row *row) {
    metric_counter_inc(&op->num_records_in);
    return op->kind->process2(op, row);
}
/* Side outputs: the index of tag's side output (-1 when the tag is neither declared by a
 * "side.<tag>" param nor consumed); emit to it (a negative index, or no consumer, drops the row). */
int tm_op_side_output(const tm_op *op, const char *tag);
int tm_op_emit_side(tm_op *op, int side, const flint_row *row);
/* Event time: the watermark reaches op (sets op->watermark, fires due event-time timers, then
 * kind->watermark or forward). Watermarks that do not advance op->watermark are ignored. */
int tm_op_watermark(tm_op *op, int64_t wm);
/* Forward a watermark to every output of op (main and side outputs). */
int tm_op_emit_watermark(tm_op *op, int64_t wm);
/* Forward an idle (true) / active (false) status to every output of op. */
int tm_op_emit_idle(tm_op *op, bool idle);
/* Give a UDF collector (whose rt is op) flint_side_out_row / flint_emit_side over op's side
 * outputs; failures of side emissions land in op->side_rc. */
void tm_op_collector_sides(tm_op *op, flint_collector *c);
/* Call fn(op, now) every interval_ms (monotonic ms) from the task's mailbox loop, first after
 * one interval. */
void tm_op_every(tm_op *op, int64_t interval_ms, tm_tick_fn fn);
/* The task: run the due ticks; returns the first failure. *next_ms: the next tick (INT64_MAX when
 * none). */
int tm_runtime_run_ticks(tm_runtime *rt, int64_t now_ms, int64_t *next_ms);
/* The next tick (monotonic ms), INT64_MAX when none. */
int64_t tm_runtime_next_tick(const tm_runtime *rt);
/* The operator's timer queue, made on first use (needs rt->timers); on_timer receives its timers.
 * NULL when the runtime has no timer service. */
tm_timer_queue *tm_op_timers(tm_op *op);
/* Record the task's failure (unless one is recorded), prefixed with the operator's name; returns
 * FLINT_ERR so callbacks can `return tm_op_fail(...)`. */
int tm_op_fail(tm_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After calling a user function: if it called flint_ctx_fail, record that as the failure. */
int tm_op_check_ctx(tm_op *op);
/* An operator parameter (OperatorDef.params), or NULL. */
const char *tm_op_param(const tm_op *op, const char *key);
/* A parameter that must be there (fails the operator when it is missing). */
int tm_op_param_req(tm_op *op, const char *key, const char **out);
int tm_op_param_int(tm_op *op, const char *key, int64_t def, int64_t *out);
/* The user function named by parameter param: NULL in *fn when the parameter is absent and
 * !required; a missing symbol fails with "user function 'x' not found in artifact <sha>". */
int tm_op_symbol(tm_op *op, const char *param, bool required, void (**fn)(void));
/* Resolve a symbol by name in the runtime (the same message when missing). */
int tm_runtime_symbol(tm_runtime *rt, const char *name, void (**fn)(void), flint_err *err);

/* Call fn.open (if named) / fn.close for UDF operators. */
int tm_op_udf_open(tm_op *op);
void tm_op_udf_close(tm_op *op);

/* The print sink writes here (stdout unless a test changes it). */
extern FILE *tm_print_out;

#endif

/* The job master's model of one job: the execution graph (every job vertex expanded into its
 * subtasks, each with its slot, location, state and metrics), the job state machine, task state
 * tracking and the exceptions history. Pure logic: time is passed in, and what has to reach the
 * taskmanagers (cancel a task; the job is over) leaves through jm_job_ops, so that tests drive a
 * job without sockets.
 *
 * States and transitions follow Flink:
 *   job:  CREATED -> RUNNING (scheduling starts) -> FINISHED (every task FINISHED)
 *         RUNNING -> RESTARTING (a failure the restart strategy allows: every task is canceled;
 *                 once all are terminal and the restart delay passed, ops.restart redeploys them
 *                 as the next attempt, the job RUNNING again)
 *         RUNNING -> FAILING (a failure the restart strategy does not allow, or an unrecoverable
 *                 one) -> FAILED once every task is terminal; each failure that ended a run is a
 *                 root cause in the exception history, later ones are its concurrent failures
 *         CREATED/RUNNING/FAILING/RESTARTING -> CANCELLING (cancel) -> CANCELED once every task is
 *                 terminal
 *   task: CREATED -> SCHEDULED -> DEPLOYING (DeployTask sent) -> INITIALIZING -> RUNNING ->
 *         FINISHED | FAILED; CANCELING (CancelTask sent) -> CANCELED. A task that never deployed
 *         is CANCELED at once; one that does not confirm the cancel within the cancel timeout
 *         (rpc.ask.timeout) counts as CANCELED (logged).
 * Execution model (the taskmanagers rely on it): subtask i of a
 * vertex with an out-edge e has one result partition "<job>.<edge>.<i>.<attempt>" with one
 * subpartition per consumer subtask (FORWARD: 1); consumer subtask j has one input gate per
 * in-edge (ordered by edge id) with one channel per producer subtask reading subpartition j
 * (FORWARD: one channel, producer j, subpartition 0). */
#ifndef FLINT_JM_JOB_H
#define FLINT_JM_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint/status.h"
#include "checkpoint.pb-c.h"
#include "jobgraph.pb-c.h"

/* Job states: Flink's JobStatus, in its order (Flint uses CREATED..RESTARTING; the rest
 * exist so that REST shows every timestamp Flink shows). */
#define JM_JOB_STATES(X) \
    X(INITIALIZING) X(CREATED) X(RUNNING) X(FAILING) X(FAILED) X(CANCELLING) X(CANCELED) \
    X(FINISHED) X(RESTARTING) X(SUSPENDED) X(RECONCILING)
/* Task (execution) states: Flink's ExecutionState, in its order. */
#define JM_EXEC_STATES(X) \
    X(CREATED) X(SCHEDULED) X(DEPLOYING) X(RUNNING) X(FINISHED) X(CANCELING) X(CANCELED) \
    X(FAILED) X(RECONCILING) X(INITIALIZING)

typedef enum jm_job_state {
#define JM_X_(s) JM_JOB_##s,
    JM_JOB_STATES(JM_X_)
#undef JM_X_
    JM_JOB_STATE_COUNT
} jm_job_state;

typedef enum jm_exec_state {
#define JM_X_(s) JM_EXEC_##s,
    JM_EXEC_STATES(JM_X_)
#undef JM_X_
    JM_EXEC_STATE_COUNT
} jm_exec_state;

/* "RUNNING"; never NULL. */
const char *jm_job_state_name(jm_job_state s);
const char *jm_exec_state_name(jm_exec_state s);
/* The state named s (exact upper-case name), or -1. */
int jm_exec_state_parse(const char *s);
/* FINISHED, FAILED, CANCELED (and SUSPENDED for jobs). */
bool jm_job_state_terminal(jm_job_state s);
bool jm_exec_state_terminal(jm_exec_state s);

/* Both clocks: wall for what users see (timestamps), monotonic for timeouts. */
typedef struct jm_time {
    int64_t wall_ms;
    int64_t mono_ms;
} jm_time;

jm_time jm_time_now(void);

/* Where a subtask runs. */
typedef struct jm_location {
    char resource_id[128];
    char host[256];
    int data_port;
    int slot_index;               /* the slot on that taskmanager */
} jm_location;

/* The latest metrics a taskmanager reported for a task (cumulative counters, per-second rates). */
typedef struct jm_task_metrics {
    int64_t records_in, records_out, bytes_in, bytes_out;
    int64_t back_pressured_ms, busy_ms, idle_ms;   /* per second */
} jm_task_metrics;

struct jm_vertex;

/* One subtask attempt. Read-only outside jm_job.c. */
typedef struct jm_exec {
    struct jm_vertex *vertex;
    int subtask;                  /* 0-based */
    int attempt;
    int job_slot;                 /* the job's slot (slot sharing) it runs in: 0..slots_needed-1 */
    char id[33];                  /* execution id: 32 random hex digits, unique per attempt */
    jm_exec_state state;
    int64_t timestamps[JM_EXEC_STATE_COUNT];   /* wall ms it entered each state, 0 = never */
    bool has_location;
    jm_location loc;
    int64_t cancel_deadline_ms;   /* monotonic: a CANCELING task counts as CANCELED after it */
    bool has_metrics;
    jm_task_metrics metrics;
    char *failure;                /* FAILED: the cause as reported (owned) */
} jm_exec;

/* One job vertex and its subtasks. Read-only outside jm_job.c. */
typedef struct jm_vertex {
    const Flint__Graph__JobVertex *def;   /* in the job's graph */
    int index;                    /* position in the graph's vertex list */
    char id[33];                  /* REST id, see jm_vertex_rest_id */
    const char *name;             /* def->name, or "Vertex <id>" when empty (owned by the job) */
    int parallelism, max_parallelism;
    int group;                    /* slot sharing group index */
    jm_exec *execs;               /* [parallelism] */
    const Flint__Graph__JobEdge **in_edges;    /* edges into this vertex, by edge id */
    const Flint__Graph__JobEdge **out_edges;   /* edges out of it, by edge id */
    int n_in, n_out;
} jm_vertex;

/* One failure in the exceptions history. */
typedef struct jm_exception {
    int64_t timestamp;            /* wall ms */
    char *name;                   /* a class-like name: "flint.TaskException", ... */
    char *message;                /* full text: "Map (2/4) on 10.0.0.1:4000: <cause>" */
    char *task;                   /* "Map (2/4)", NULL for failures of the whole job */
    char *location;               /* "host:data_port", NULL when none */
    char *resource_id;            /* the taskmanager, NULL when none */
    int root;                     /* index of the root failure it belongs to (itself for roots) */
} jm_exception;

typedef struct jm_job jm_job;

/* What the job needs done outside. */
typedef struct jm_job_ops {
    /* Send CancelTask for ex (now CANCELING, with a location). Return 0 when sent; non-zero when
     * its taskmanager cannot be reached, and ex then counts as CANCELED at once. Must not call
     * back into the job. */
    int (*cancel_task)(void *ud, jm_job *job, jm_exec *ex);
    /* The job reached a terminal state: release its slots and tell its taskmanagers. Called once,
     * last thing in the call that made the job terminal. */
    void (*terminal)(void *ud, jm_job *job, jm_time now);
    /* A recoverable failure ended the run: return true to restart (after *delay_ms, OUT), false
     * to fail the job. NULL: never restart. Must not call back into the job. */
    bool (*should_restart)(void *ud, jm_job *job, jm_time now, int64_t *delay_ms);
    /* RESTARTING, every task terminal, the delay passed (from jm_job_tick): release the slots,
     * jm_job_reset_for_restart and schedule again -- or fail the job. */
    void (*restart)(void *ud, jm_job *job, jm_time now);
    /* The job's state changed (old state given); called after the change, before the tasks are
     * canceled. Must not call back into the job. */
    void (*state_changed)(void *ud, jm_job *job, jm_job_state old, jm_time now);
    /* A task's state changed (old state given); called after the change. Must not call back
     * into the job. */
    void (*task_state_changed)(void *ud, jm_job *job, jm_exec *ex, jm_exec_state old, jm_time now);
} jm_job_ops;

struct jm_restore;

/* A job. Read-only outside jm_job.c; change it through the functions below. */
struct jm_job {
    char id[33];
    char *name;                   /* owned; "Flint Streaming Job" when the graph has none */
    Flint__Graph__JobGraph *graph;   /* owned */
    jm_job_state state;
    int64_t timestamps[JM_JOB_STATE_COUNT];   /* wall ms it entered each state, 0 = never */
    int64_t start_time;           /* wall ms of submission */
    int64_t end_time;             /* wall ms it became terminal, -1 before */
    int64_t last_modification;    /* wall ms of the latest job or task state change */
    jm_vertex *vertices;
    int n_vertices;
    int n_execs;
    int n_groups;                 /* slot sharing groups */
    char **group_names;
    int *group_slots;             /* slots of each group: the largest parallelism in it */
    int *group_base;              /* first job slot of each group */
    int slots_needed;             /* sum of group_slots */
    jm_exception *exceptions;     /* every failure, oldest first */
    int n_exceptions;
    int root_exception;           /* index of the root cause, -1 when none */
    int64_t cancel_timeout_ms;
    jm_job_ops ops;
    void *ops_ud;
    int default_max_parallelism;  /* for vertices and graphs that set none */
    int64_t restart_at_ms;        /* RESTARTING: monotonic time the redeployment may start */
    int restarts;                 /* restarts so far (attempt of the latest run) */
    struct jm_restore *restore;   /* owned: state the next deployment restores, NULL for none */
    const Flint__Checkpoint__TaskCheckpointConfig *cp_config;   /* not owned, may be NULL */
};

/* ---- creation ---- */

/* Check a submitted graph: a job id of 32 lower-case hex digits, vertices present with unique
 * ids and operators, parallelism 1..max parallelism (vertex's, else the graph's, else
 * default_max_parallelism; at most 32768), unique edge ids with existing endpoints, a source
 * operator inside its vertex, FORWARD edges between equal parallelism, HASH edges with a key, no
 * cycle. FLINT_INVALID with a message naming the problem. */
int jm_job_validate(const Flint__Graph__JobGraph *graph, int default_max_parallelism,
                    flint_err *err);
/* A job in CREATED from a graph that passed jm_job_validate; takes ownership of graph. Every
 * subtask gets its execution id and job slot. Free with jm_job_free. */
jm_job *jm_job_new(Flint__Graph__JobGraph *graph, int default_max_parallelism, jm_time now);
void jm_job_free(jm_job *job);
void jm_job_set_ops(jm_job *job, const jm_job_ops *ops, void *ud, int64_t cancel_timeout_ms);

/* ---- scheduling ---- */

/* CREATED (or RESTARTING) -> RUNNING, every task CREATED -> SCHEDULED. */
void jm_job_start(jm_job *job, jm_time now);
/* Every subtask in job slot job_slot runs at loc. */
void jm_job_assign_slot(jm_job *job, int job_slot, const jm_location *loc);
/* SCHEDULED -> DEPLOYING: DeployTask is being sent. */
void jm_job_deploying(jm_job *job, jm_exec *ex, jm_time now);

/* ---- events ---- */

/* A taskmanager's UpdateTaskExecutionState for execution exec_id: state (a task state name) and,
 * for FAILED, the error. FLINT_NOT_FOUND for an unknown execution, FLINT_INVALID for a state a
 * taskmanager cannot report; updates for finished tasks are ignored (0). */
int jm_job_update_task(jm_job *job, const char *exec_id, const char *state, const char *error,
                       jm_time now, flint_err *err);
/* The deployment of ex failed (error reply, timeout, lost connection): name is the exception's
 * class-like name, error the cause. */
void jm_job_deploy_failed(jm_job *job, jm_exec *ex, const char *name, const char *error,
                          jm_time now);
/* The CancelTask for ex could not be delivered or was refused: it counts as CANCELED. */
void jm_job_cancel_failed(jm_job *job, jm_exec *ex, const char *error, jm_time now);
/* A taskmanager is gone: every unfinished task on it fails with message (a CANCELING one is
 * CANCELED). Returns how many tasks were affected. */
int jm_job_tm_lost(jm_job *job, const char *resource_id, const char *message, jm_time now);
/* A failure of the whole job (no slots, too many failed checkpoints): a root cause the restart
 * strategy sees (RESTARTING or FAILING). */
void jm_job_fail(jm_job *job, const char *name, const char *message, jm_time now);
/* A failure that no restart can cure (no usable checkpoint to restore): FAILING, then FAILED. */
void jm_job_fail_unrecoverable(jm_job *job, const char *name, const char *message, jm_time now);
/* ops.restart: every task becomes the next attempt (attempt + 1, a new execution id, CREATED,
 * no slot), restore (owned; NULL: start empty) replaces what the tasks restore. The job stays
 * RESTARTING until scheduled (jm_job_start). */
void jm_job_reset_for_restart(jm_job *job, struct jm_restore *restore, jm_time now);
/* Replace what the next deployment restores (owned; NULL for nothing). */
void jm_job_set_restore(jm_job *job, struct jm_restore *restore);
/* Cancel: FLINT_STATE with "Job <id> is already <STATE>" when terminal, else CANCELLING (a no-op
 * when already CANCELLING). */
int jm_job_cancel(jm_job *job, jm_time now, flint_err *err);
/* Timeouts: CANCELING tasks past their deadline count as CANCELED; a RESTARTING job whose tasks
 * are all terminal and whose restart delay passed restarts (ops.restart). */
void jm_job_tick(jm_job *job, jm_time now);
/* Store the latest metrics of a task. */
void jm_job_set_metrics(jm_job *job, jm_exec *ex, const jm_task_metrics *m);

/* ---- queries ---- */

jm_exec *jm_job_find_exec(const jm_job *job, const char *exec_id);
/* By REST id (32 hex digits, any case) or by the graph's vertex id in decimal; NULL if none. */
jm_vertex *jm_job_find_vertex(const jm_job *job, const char *id);
jm_vertex *jm_job_vertex_by_graph_id(const jm_job *job, int graph_vertex_id);
/* Subtasks per state over the whole job. */
void jm_job_state_counts(const jm_job *job, int counts[JM_EXEC_STATE_COUNT]);
bool jm_job_is_terminal(const jm_job *job);

/* Subtasks of v per state. */
void jm_vertex_state_counts(const jm_vertex *v, int counts[JM_EXEC_STATE_COUNT]);
/* Flink's aggregate vertex status: FAILED if any failed, else CANCELING, CANCELED, INITIALIZING,
 * RUNNING if any is in it (in that order), else FINISHED when all finished, RUNNING when some
 * finished, else CREATED. */
jm_exec_state jm_vertex_aggregate_state(const int counts[JM_EXEC_STATE_COUNT], int parallelism);
/* Sum of the latest metrics of v's subtasks. */
void jm_vertex_io(const jm_vertex *v, jm_task_metrics *sum);
/* The vertex id shown by REST (Flink uses 32 hex digits): the first 24 hex digits of the job id
 * followed by the graph's vertex id as 8 hex digits. Stable, and unique within the job. */
void jm_vertex_rest_id(const char *job_id, int graph_vertex_id, char out[33]);

/* "Map (2/4)". */
void jm_exec_task_name(const jm_exec *ex, char *buf, size_t len);
/* "host:data_port", or "(unassigned)" without a location. */
void jm_exec_location(const jm_exec *ex, char *buf, size_t len);

/* Flink's backpressure level of a back-pressured ratio (0..1): "ok" (<= 0.10), "low" (<= 0.5),
 * "high". */
const char *jm_backpressure_level(double ratio);

/* ---- execution graph expansion ---- */

/* The id of a result partition: "<job_id>.<edge_id>.<producer subtask>.<attempt>". */
void jm_partition_id(const char *job_id, int edge_id, int producer_subtask, int attempt,
                     char *buf, size_t len);
/* Subpartitions of each result partition of edge e: the consumer's parallelism, 1 for FORWARD. */
int jm_edge_subpartitions(const jm_job *job, const Flint__Graph__JobEdge *e);
/* The channels of consumer subtask j's gate for edge e: writes the producer subtask of each
 * channel into producers[] (room for the producer's parallelism) and the subpartition they read
 * into *subpartition; returns the number of channels. */
int jm_gate_channels(const jm_job *job, const Flint__Graph__JobEdge *e, int consumer_subtask,
                     int *producers, int *subpartition);

#endif

/* The dispatcher: the jobmanager's job registry. It validates and registers submitted jobs (graph
 * checks, artifact hash), hands them to the scheduler, routes what happens to a job (task state
 * updates, deployment and cancel outcomes, lost taskmanagers, metrics, timeouts) to its job
 * master (jm_job), answers list/get/cancel, and keeps finished jobs for REST and `flint list`.
 * Each job has a checkpoint coordinator (jm_checkpoint.h) and a restart strategy (jm_restart.h)
 * configured from the cluster configuration with the job's own configuration on top; the
 * dispatcher wires them to the job: failures go through the restart strategy, a restart
 * redeploys every task with the state of the latest completed checkpoint.
 * No sockets: jm_server turns RPC messages into these calls and passes the transport in. */
#ifndef FLINT_JM_DISPATCHER_H
#define FLINT_JM_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "flint/status.h"
#include "jm_artifacts.h"
#include "jm_checkpoint.h"
#include "jm_job.h"
#include "jm_restart.h"
#include "jm_rm.h"
#include "jm_scheduler.h"
#include "rpc.pb-c.h"

typedef struct jm_dispatcher_config {
    int64_t slot_request_timeout_ms;   /* slot.request.timeout */
    int64_t ask_timeout_ms;            /* rpc.ask.timeout: how long a cancel may go unconfirmed */
    int default_max_parallelism;       /* pipeline.max-parallelism */
    const flint_config *cfg;           /* the cluster configuration (not owned; NULL: defaults) */
} jm_dispatcher_config;

/* How checkpoint messages reach the taskmanagers (jm_server sends them over RPC; tests record
 * them). Without one, triggers are declined as UNSUPPORTED and notifications dropped. */
typedef struct jm_cp_transport {
    /* Send TriggerCheckpoint m to tm; 0 when sent (the outcome comes back through
     * jm_dispatcher_trigger_result), non-zero with err when it cannot be sent. */
    int (*trigger)(void *ud, jm_tm *tm, const Flint__Checkpoint__TriggerCheckpoint *m, flint_err *err);
    void (*notify_complete)(void *ud, jm_tm *tm, const Flint__Checkpoint__NotifyCheckpointComplete *m);
    void (*notify_aborted)(void *ud, jm_tm *tm, const Flint__Checkpoint__NotifyCheckpointAborted *m);
    void *ud;
} jm_cp_transport;

/* Options of a submission (flint run -s PATH [-n]). */
typedef struct jm_submit_options {
    const char *savepoint_path;        /* NULL or "": start with empty state */
    bool allow_non_restored;
} jm_submit_options;

typedef struct jm_dispatcher jm_dispatcher;

/* rm and artifacts (may be NULL: then no job may name an artifact) are not owned. Free with
 * jm_dispatcher_free, which frees every job. */
jm_dispatcher *jm_dispatcher_new(jm_rm *rm, jm_artifacts *artifacts, const jm_dispatcher_config *cfg,
                                 const jm_sched_transport *transport);
void jm_dispatcher_free(jm_dispatcher *d);
jm_sched *jm_dispatcher_sched(jm_dispatcher *d);
void jm_dispatcher_set_cp_transport(jm_dispatcher *d, const jm_cp_transport *t);

/* Validate a submission and register its job in CREATED: graph checks (jm_job_validate), a job
 * id not used before, and when the graph names an artifact, uploaded bytes whose sha256 matches
 * (stored) or an artifact already stored. graph and artifact are copied. On success *job (may be
 * NULL) is the new job; start it with jm_dispatcher_start once the client has its answer. On
 * error err says what is wrong and nothing is registered. */
int jm_dispatcher_submit(jm_dispatcher *d, const Flint__Graph__JobGraph *graph, const void *artifact,
                         size_t artifact_len, jm_time now, jm_job **job, flint_err *err);
/* jm_dispatcher_submit with options: also checks the job's checkpoint and restart configuration
 * and, with a savepoint path, reads its _metadata and maps its state onto the job (errors name
 * the file or the operator that cannot be mapped). */
int jm_dispatcher_submit_opts(jm_dispatcher *d, const Flint__Graph__JobGraph *graph, const void *artifact,
                              size_t artifact_len, const jm_submit_options *opts, jm_time now, jm_job **job,
                              flint_err *err);
/* Schedule a registered job: RUNNING, slots, deployment (see jm_sched_schedule). */
void jm_dispatcher_start(jm_dispatcher *d, jm_job *job, jm_time now);

jm_job *jm_dispatcher_find(const jm_dispatcher *d, const char *job_id);
/* Jobs newest first: index 0 .. jm_dispatcher_count-1. */
int jm_dispatcher_count(const jm_dispatcher *d);
jm_job *jm_dispatcher_get(const jm_dispatcher *d, int i);

/* Cancel a job: FLINT_NOT_FOUND "Job <id> not found", FLINT_STATE "Job <id> is already <STATE>". */
int jm_dispatcher_cancel(jm_dispatcher *d, const char *job_id, jm_time now, flint_err *err);

/* A taskmanager's UpdateTaskExecutionState (with the task's final metrics, when it carries them);
 * resource_id (NULL: unchecked) is the sender, which must be where the task runs. Errors: unknown
 * job or execution, a state it cannot report. */
int jm_dispatcher_update_task(jm_dispatcher *d, const char *resource_id,
                              const Flint__Rpc__UpdateTaskExecutionState *m, jm_time now, flint_err *err);
/* Outcome of a DeployTask / CancelTask (status FLINT_OK, or the error and its message: a
 * FLINT_CLOSED deployment counts as a lost taskmanager, a timeout or error reply fails the task
 * with that message). Unknown jobs and executions are ignored. */
void jm_dispatcher_deploy_result(jm_dispatcher *d, const char *job_id, const char *exec_id, int status,
                                 const char *message, jm_time now);
void jm_dispatcher_cancel_result(jm_dispatcher *d, const char *job_id, const char *exec_id, int status,
                                 const char *message, jm_time now);
/* jm_rm's lost hook: fail every unfinished task on tm with "TaskManager <id> at <host> lost:
 * <reason>". */
void jm_dispatcher_tm_lost(jm_dispatcher *d, const jm_tm *tm, const char *reason, jm_time now);
/* Metrics of one task from resource_id's heartbeat (ignored when they do not match a task there). */
void jm_dispatcher_metrics(jm_dispatcher *d, const char *resource_id, const Flint__Rpc__TaskMetrics *m);
/* Checkpoint messages from resource_id (NULL: unchecked), routed to the job's coordinator. */
int jm_dispatcher_ack_checkpoint(jm_dispatcher *d, const char *resource_id,
                                 const Flint__Checkpoint__AcknowledgeCheckpoint *m, jm_time now, flint_err *err);
int jm_dispatcher_decline_checkpoint(jm_dispatcher *d, const char *resource_id,
                                     const Flint__Checkpoint__DeclineCheckpoint *m, jm_time now, flint_err *err);
/* Outcome of a TriggerCheckpoint (see jm_cp_trigger_result). */
void jm_dispatcher_trigger_result(jm_dispatcher *d, const char *job_id, const char *exec_id, int64_t checkpoint_id,
                                  int status, const char *message, jm_time now);
/* Savepoints: type is SAVEPOINT (cancel_job: cancel once it is complete), SAVEPOINT_SUSPEND (stop)
 * or SAVEPOINT_TERMINATE (stop --drain); dir NULL or "" for state.savepoints.dir. The request id
 * goes to trigger_id. Errors: unknown job, no directory, job not running. */
int jm_dispatcher_trigger_savepoint(jm_dispatcher *d, const char *job_id, int type, const char *dir,
                                    bool cancel_job, jm_time now, char trigger_id[33], flint_err *err);
/* A savepoint request of a job; NULL with err (FLINT_NOT_FOUND) for an unknown job or request. */
const jm_cp_trigger *jm_dispatcher_savepoint_status(jm_dispatcher *d, const char *job_id, const char *trigger_id,
                                                    flint_err *err);
/* The coordinator and restart strategy of a job of this dispatcher. */
jm_cp *jm_dispatcher_job_checkpoints(const jm_dispatcher *d, const jm_job *job);
const jm_restart_config *jm_dispatcher_job_restart(const jm_dispatcher *d, const jm_job *job);
/* A taskmanager registered: waiting jobs may fit now. */
void jm_dispatcher_resources_changed(jm_dispatcher *d, jm_time now);
/* Timeouts: slot requests, unconfirmed cancels, restarts, checkpoints. Call every ~100 ms. */
void jm_dispatcher_tick(jm_dispatcher *d, jm_time now);

typedef struct jm_job_counts {
    int running;                  /* not yet terminal, as Flink's jobs-running */
    int finished, canceled, failed;
} jm_job_counts;
jm_job_counts jm_dispatcher_job_counts(const jm_dispatcher *d);

/* ---- protobuf views for the client gateway ---- */

/* A job's JobSummary / JobDetails; free with the matching function. */
Flint__Rpc__JobSummary *jm_job_summary_new(const jm_job *job);
void jm_job_summary_free(Flint__Rpc__JobSummary *s);
Flint__Rpc__JobDetails *jm_job_details_new(const jm_job *job);
void jm_job_details_free(Flint__Rpc__JobDetails *d);

#endif

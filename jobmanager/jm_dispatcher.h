/* The dispatcher: the jobmanager's job registry. It validates and registers submitted jobs (graph
 * checks, artifact hash), hands them to the scheduler, routes what happens to a job (task state
 * updates, deployment and cancel outcomes, lost taskmanagers, metrics, timeouts) to its job
 * master (jm_job), answers list/get/cancel, and keeps finished jobs for REST and `flint list`.
 * No sockets: jm_server turns RPC messages into these calls and passes the transport in. */
#ifndef FLINT_JM_DISPATCHER_H
#define FLINT_JM_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "flint/status.h"
#include "jm_artifacts.h"
#include "jm_job.h"
#include "jm_rm.h"
#include "jm_scheduler.h"
#include "rpc.pb-c.h"

typedef struct jm_dispatcher_config {
    int64_t slot_request_timeout_ms;   /* slot.request.timeout */
    int64_t ask_timeout_ms;            /* rpc.ask.timeout: how long a cancel may go unconfirmed */
    int default_max_parallelism;       /* pipeline.max-parallelism */
} jm_dispatcher_config;

typedef struct jm_dispatcher jm_dispatcher;

/* rm and artifacts (may be NULL: then no job may name an artifact) are not owned. Free with
 * jm_dispatcher_free, which frees every job. */
jm_dispatcher *jm_dispatcher_new(jm_rm *rm, jm_artifacts *artifacts, const jm_dispatcher_config *cfg,
                                 const jm_sched_transport *transport);
void jm_dispatcher_free(jm_dispatcher *d);
jm_sched *jm_dispatcher_sched(jm_dispatcher *d);

/* Validate a submission and register its job in CREATED: graph checks (jm_job_validate), a job
 * id not used before, and when the graph names an artifact, uploaded bytes whose sha256 matches
 * (stored) or an artifact already stored. graph and artifact are copied. On success *job (may be
 * NULL) is the new job; start it with jm_dispatcher_start once the client has its answer. On
 * error err says what is wrong and nothing is registered. */
int jm_dispatcher_submit(jm_dispatcher *d, const Flint__Graph__JobGraph *graph, const void *artifact,
                         size_t artifact_len, jm_time now, jm_job **job, flint_err *err);
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
/* A taskmanager registered: waiting jobs may fit now. */
void jm_dispatcher_resources_changed(jm_dispatcher *d, jm_time now);
/* Timeouts: slot requests, unconfirmed cancels. Call every ~100 ms. */
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

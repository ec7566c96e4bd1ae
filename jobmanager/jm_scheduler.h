/* The scheduler: takes the slots a job needs from the resource manager (slot sharing: subtask i
 * of every vertex in a slot sharing group shares the group's i-th slot; slots spread round robin
 * over the taskmanagers), waits for them up to slot.request.timeout, builds the task deployment
 * descriptors and deploys every subtask at once (eager scheduling, as Flink streaming); cancels
 * tasks and, when a job is over, releases it on its taskmanagers and frees its slots.
 *
 * Messages to taskmanagers leave through jm_sched_transport (jm_server sends them over RPC; tests
 * record them), and their outcomes come back through the dispatcher, so the scheduler holds no
 * socket and is driven with explicit times. */
#ifndef FLINT_JM_SCHEDULER_H
#define FLINT_JM_SCHEDULER_H

#include "flint/status.h"
#include "jm_job.h"
#include "jm_rm.h"
#include "rpc.pb-c.h"

typedef struct jm_sched_transport {
    /* Send DeployTask(tdd) for ex to tm. tdd stays owned by the caller (copy what must outlive the
     * call). Return 0 when sent (the outcome arrives later); non-zero with err when it cannot be
     * sent. */
    int (*deploy)(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex,
                  Flint__Rpc__TaskDeploymentDescriptor *tdd, flint_err *err);
    /* Send CancelTask for ex to tm: 0 when sent, non-zero when it cannot be. */
    int (*cancel)(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex);
    /* Send ReleaseJob(job_id) to tm. */
    void (*release)(void *ud, jm_tm *tm, const char *job_id);
    void *ud;
} jm_sched_transport;

typedef struct jm_sched jm_sched;

/* rm is not owned. Free with jm_sched_free. */
jm_sched *jm_sched_new(jm_rm *rm, int64_t slot_request_timeout_ms, const jm_sched_transport *t);
void jm_sched_free(jm_sched *s);

/* Start job (CREATED, or RESTARTING with its tasks reset): it switches to RUNNING; with enough free slots every subtask is deployed
 * now, else the job waits (jm_sched_retry) and fails after slot.request.timeout with "Could not
 * acquire the minimum required resources: the job needs N slots, the cluster has M (F free)". */
void jm_sched_schedule(jm_sched *s, jm_job *job, jm_time now);
/* Slots may have been freed or added: deploy waiting jobs that now fit, oldest first. */
void jm_sched_retry(jm_sched *s, jm_time now);
/* Fail waiting jobs whose slot request timed out. */
void jm_sched_tick(jm_sched *s, jm_time now);
/* Number of jobs waiting for slots. */
int jm_sched_waiting(const jm_sched *s);

/* jm_job_ops.cancel_task: send CancelTask for ex to its taskmanager (non-zero: unreachable). */
int jm_sched_cancel_task(jm_sched *s, jm_job *job, jm_exec *ex);
/* jm_job_ops.terminal: send ReleaseJob to every live taskmanager that ran a task of job, free
 * its slots, forget it if it was waiting, then retry waiting jobs. */
void jm_sched_job_terminal(jm_sched *s, jm_job *job, jm_time now);

/* A restart: forget job if it was waiting, send ReleaseJob to every live taskmanager holding one
 * of its slots and free them (waiting jobs are not retried: the job takes its slots again). */
void jm_sched_release_job(jm_sched *s, jm_job *job);

/* The deployment descriptor of ex, whose slot and every producer's slot are assigned. With
 * job->restore, it carries what ex restores; with job->cp_config, the checkpoint settings. It points
 * into job's graph (vertex, edges, config, params): use it while job lives, free it with
 * jm_tdd_free. */
Flint__Rpc__TaskDeploymentDescriptor *jm_tdd_build(const jm_job *job, const jm_exec *ex);
void jm_tdd_free(Flint__Rpc__TaskDeploymentDescriptor *tdd);

#endif

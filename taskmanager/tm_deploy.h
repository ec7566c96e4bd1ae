/* Job execution in the task executor: DeployTask (reply at once, then fetch the artifact,
 * resolve the user functions and start the task thread), CancelTask, ReleaseJob, the slots and
 * which job holds each, task state reports to the jobmanager (UpdateTaskExecutionState, in the
 * order the task thread made them) and the per-task metrics of heartbeats. All on the executor's
 * loop thread; task threads only queue their state changes (tm_deploy_post). */
#ifndef FLINT_TM_DEPLOY_H
#define FLINT_TM_DEPLOY_H

#include "rpc/rpc.h"
#include "tm_executor.h"

typedef struct tm_slot {
    char job_id[65];              /* "" when free */
} tm_slot;

/* Set up the slots, the state queue and the artifact cache. */
int tm_deploy_init(taskmanager *tm, flint_err *err);
/* Cancel every task, wait for the threads (a bounded time), free everything of job execution.
 * The jobmanager connection must be closed already. */
void tm_deploy_shutdown(taskmanager *tm);

/* Requests from the jobmanager (answered here). */
void tm_deploy_on_deploy(taskmanager *tm, rpc_conn *c, rpc_envelope *env);
void tm_deploy_on_cancel(taskmanager *tm, rpc_conn *c, rpc_envelope *env);
void tm_deploy_on_release(taskmanager *tm, rpc_conn *c, rpc_envelope *env);
/* TriggerCheckpoint, NotifyCheckpointComplete / Aborted (issue 6): handed to the task; a trigger
 * for a task that is not running is answered Ack and declined (TASK_NOT_READY, TASK_CLOSING). */
void tm_deploy_on_checkpoint(taskmanager *tm, rpc_conn *c, rpc_envelope *env);

/* The jobmanager is gone: cancel every task without reporting, free every slot, release every
 * job (as Flink's TaskExecutor does when it loses the JobMaster). */
void tm_deploy_jm_lost(taskmanager *tm, const char *reason);

/* Fill hb->slots and hb->tasks; tm_deploy_heartbeat_free releases what it allocated. */
void tm_deploy_heartbeat(taskmanager *tm, Flint__Rpc__Heartbeat *hb);
void tm_deploy_heartbeat_free(Flint__Rpc__Heartbeat *hb);
/* Sample every task's meters and mailbox latency (issue 8); about once per second. */
void tm_deploy_metrics_tick(taskmanager *tm, int64_t now_ns);

/* Number of tasks not yet ended (tests, logs). */
int tm_deploy_task_count(const taskmanager *tm);

#endif

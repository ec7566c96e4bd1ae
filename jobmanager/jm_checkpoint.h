/* The checkpoint coordinator of one job (Flink's CheckpointCoordinator): periodic triggers at the
 * source tasks every execution.checkpointing.interval (after tasks finished, also at the running
 * tasks whose upstream tasks all finished), pending checkpoints collecting the
 * acknowledgements of every task, aborts (timeout, decline, failed trigger, failover) with
 * NotifyCheckpointAborted, execution.checkpointing.min-pause, .max-concurrent-checkpoints and
 * .tolerable-failed-checkpoints, completion (the _metadata file written atomically, then
 * NotifyCheckpointComplete), state.checkpoints.num-retained with reference-counted shared files,
 * retention when the job ends, savepoints (also stop-with-savepoint), the restore point of a
 * restart (the latest usable completed checkpoint, falling back to older ones) and Flink's
 * checkpoint statistics for REST.
 *
 * Pure logic with time passed in, like jm_job: what must reach the tasks leaves through
 * jm_cp_ops, so tests drive it without sockets. It does touch the file system: it creates the
 * checkpoint directories, writes _metadata and deletes what is no longer retained.
 * Protocol and file layout: docs/checkpointing-protocol.md. */
#ifndef FLINT_JM_CHECKPOINT_H
#define FLINT_JM_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint.pb-c.h"
#include "config/config.h"
#include "flint/status.h"
#include "jm_job.h"
#include "jm_restore.h"

#define JM_CP_HISTORY 10          /* Flink's web.checkpoints.history */
#define JM_CP_SUMMARY 1000        /* completed checkpoints the summary statistics cover */
#define JM_CP_TRIGGERS 64         /* savepoint requests remembered per job */

/* execution.checkpointing.externalized-checkpoint-retention */
typedef enum jm_cp_retention {
    JM_CP_NO_EXTERNALIZED,        /* NO_EXTERNALIZED_CHECKPOINTS: deleted when the job ends */
    JM_CP_DELETE_ON_CANCELLATION, /* kept when the job fails, deleted when canceled or finished */
    JM_CP_RETAIN_ON_CANCELLATION, /* kept when the job fails or is canceled, deleted when finished */
} jm_cp_retention;

typedef struct jm_cp_config {
    int64_t interval_ms;          /* 0: no periodic checkpoints (savepoints still work) */
    bool exactly_once;            /* execution.checkpointing.mode */
    int64_t timeout_ms, min_pause_ms;
    int max_concurrent, tolerable_failed, num_retained;
    bool after_tasks_finish;      /* checkpoints-after-tasks-finish.enabled: finished tasks count as
                                   * acknowledged with their last state (docs/checkpointing-protocol.md) */
    jm_cp_retention retention;
    char checkpoints_dir[1024];   /* state.checkpoints.dir, or <io.tmp.dirs>/flint-checkpoints */
    bool checkpoints_dir_default; /* state.checkpoints.dir was empty */
    char savepoints_dir[1024];    /* state.savepoints.dir, "" when not set */
    char backend[32];             /* state.backend.type */
    bool incremental;             /* state.backend.incremental */
} jm_cp_config;

/* A job's effective configuration: cluster with the job graph's configuration (-D at flint run,
 * flint_env_set_config) on top. NULL with err naming the key when a job value is bad. */
flint_config *jm_cp_job_config(const flint_config *cluster, const Flint__Graph__JobGraph *g, flint_err *err);
/* The checkpoint settings of cfg (a job's effective configuration); FLINT_CONFIG naming the key
 * for a bad mode or retention. */
int jm_cp_config_load(const flint_config *cfg, jm_cp_config *out, flint_err *err);
/* "EXACTLY_ONCE" ... for REST; the name of a retention mode. */
const char *jm_cp_retention_name(jm_cp_retention r);

/* ---- statistics (Flink's names) ---- */

typedef enum jm_cp_status { JM_CP_IN_PROGRESS, JM_CP_COMPLETED, JM_CP_FAILED } jm_cp_status;

typedef struct jm_cp_record {
    int64_t id;
    jm_cp_status status;
    int type;                     /* Flint__Checkpoint__CheckpointType */
    bool is_savepoint;
    int64_t trigger_timestamp, latest_ack_timestamp, failure_timestamp;   /* wall ms; 0 = none */
    int64_t state_size, checkpointed_size;
    int64_t end_to_end_duration;  /* ms: trigger to completion (or to latest ack) */
    int64_t alignment_buffered;   /* bytes processed during alignment, over all subtasks */
    int64_t alignment_duration_max, sync_duration_max, async_duration_max;   /* ms, the slowest subtask */
    int num_subtasks, num_acknowledged_subtasks;
    char *external_path;          /* COMPLETED: the directory of its _metadata */
    bool discarded;               /* its files were deleted since */
    char *failure_message;        /* FAILED */
    int failure_reason;           /* Flint__Checkpoint__FailureReason */
} jm_cp_record;

typedef struct jm_cp_summary {
    int64_t min, max, avg, p50, p90, p95, p99, p999;
    int64_t count;
} jm_cp_summary;

typedef struct jm_cp_stats {
    int64_t restored, total, in_progress, completed, failed;
    const jm_cp_record *const *history;   /* newest first */
    int n_history;
    const jm_cp_record *latest_completed, *latest_savepoint, *latest_failed;   /* NULL when none */
    bool has_restored;
    int64_t restored_id, restore_timestamp;
    bool restored_is_savepoint;
    const char *restored_path;
    jm_cp_summary state_size, checkpointed_size, end_to_end_duration, alignment_buffered;
} jm_cp_stats;

/* ---- savepoint requests ---- */

typedef struct jm_cp_trigger {
    char id[33];                  /* the request id (Flink's trigger id) */
    int type;                     /* SAVEPOINT, SAVEPOINT_SUSPEND, SAVEPOINT_TERMINATE */
    bool cancel_job;
    int64_t checkpoint_id;
    bool done;                    /* COMPLETED (else IN_PROGRESS) */
    bool ok;                      /* done: location is valid, else failure says why */
    char *location, *failure;
    bool waiting_for_stop;        /* stop: the savepoint is complete, the job not finished yet */
    int64_t stop_deadline_ms;     /* monotonic */
} jm_cp_trigger;

/* ---- the coordinator ---- */

typedef struct jm_cp jm_cp;

/* The coordinator's way out. Every function may be NULL (trigger: the checkpoint is declined as
 * UNSUPPORTED). None may call back into the coordinator, except fail_job and cancel_job, which
 * are called last in the call that made them necessary. */
typedef struct jm_cp_ops {
    /* Send TriggerCheckpoint m to ex (a source task). 0 when sent: the outcome arrives through
     * jm_cp_trigger_result; non-zero with err when it cannot be sent. */
    int (*trigger)(void *ud, jm_job *job, jm_exec *ex, const Flint__Checkpoint__TriggerCheckpoint *m,
                   flint_err *err);
    void (*notify_complete)(void *ud, jm_job *job, jm_exec *ex, const Flint__Checkpoint__NotifyCheckpointComplete *m);
    void (*notify_aborted)(void *ud, jm_job *job, jm_exec *ex, const Flint__Checkpoint__NotifyCheckpointAborted *m);
    /* Too many consecutive failed checkpoints: fail the job (a failure the restart strategy sees). */
    void (*fail_job)(void *ud, jm_job *job, const char *message, jm_time now);
    /* A savepoint with cancel-job completed: cancel the job. */
    void (*cancel_job)(void *ud, jm_job *job, jm_time now);
} jm_cp_ops;

/* A coordinator for job (not owned; it must outlive the coordinator). Free with jm_cp_free. */
jm_cp *jm_cp_new(jm_job *job, const jm_cp_config *c, const jm_cp_ops *ops, void *ud);
void jm_cp_free(jm_cp *cp);
const jm_cp_config *jm_cp_get_config(const jm_cp *cp);
/* <checkpoints dir>/<job id> and its shared/ directory. */
const char *jm_cp_job_dir(const jm_cp *cp);
const char *jm_cp_shared_dir(const jm_cp *cp);

/* The job's state changed (call after every change): leaving RUNNING aborts pending checkpoints
 * (JOB_FAILOVER) and stops the periodic trigger; RUNNING (re)starts it, first trigger one
 * interval later; a terminal state applies the retention policy. */
void jm_cp_job_state(jm_cp *cp, jm_time now);
/* A task's state changed from old (call after every change): a task that left RUNNING while a
 * pending checkpoint still waits for its acknowledgement aborts that checkpoint at once
 * (NOT_ALL_TASKS_RUNNING when it finished, JOB_FAILOVER when it failed or was canceled; neither
 * counts) instead of leaving it pending until it expires. */
void jm_cp_task_state(jm_cp *cp, const jm_exec *ex, jm_exec_state old, jm_time now);
/* Timeouts, periodic triggers, stop-with-savepoint deadlines. Call every ~100 ms. */
void jm_cp_tick(jm_cp *cp, jm_time now);

/* Trigger a checkpoint now, regardless of interval, min pause and max concurrent (periodic
 * triggers go through jm_cp_tick). FLINT_STATE when the job or a task is not RUNNING; FLINT_IO
 * when the directory cannot be made. *id (may be NULL) is the new checkpoint's id. */
int jm_cp_trigger_checkpoint(jm_cp *cp, jm_time now, int64_t *id, flint_err *err);
/* Trigger a savepoint (type SAVEPOINT, or SAVEPOINT_SUSPEND / _TERMINATE for stop) into dir
 * (NULL or "": state.savepoints.dir); its request id goes to trigger_id. FLINT_INVALID when no
 * directory is given or configured, FLINT_STATE when the job cannot take one now. */
int jm_cp_trigger_savepoint(jm_cp *cp, int type, const char *dir, bool cancel_job, jm_time now,
                            char trigger_id[33], flint_err *err);
/* A savepoint request by id, or NULL. */
const jm_cp_trigger *jm_cp_find_trigger(const jm_cp *cp, const char *trigger_id);

/* Messages from tasks. FLINT_NOT_FOUND for an unknown execution or checkpoint (late messages of
 * aborted checkpoints are fine: 0). */
int jm_cp_acknowledge(jm_cp *cp, const Flint__Checkpoint__AcknowledgeCheckpoint *m, jm_time now, flint_err *err);
int jm_cp_decline(jm_cp *cp, const Flint__Checkpoint__DeclineCheckpoint *m, jm_time now, flint_err *err);
/* The outcome of a TriggerCheckpoint: FLINT_OK, or the error (FLINT_UNSUPPORTED: the taskmanager
 * cannot take checkpoints) which declines the checkpoint. */
void jm_cp_trigger_result(jm_cp *cp, const char *exec_id, int64_t checkpoint_id, int status,
                          const char *message, jm_time now);
/* A task could not restore checkpoint_id: never restore it again. */
void jm_cp_restore_failed(jm_cp *cp, int64_t checkpoint_id, const char *message);

/* Restoring. */
/* The job starts from a savepoint or retained checkpoint (flint run -s): plan (owned by the
 * caller, not taken) becomes the first entry of the completed store, never deleted; checkpoint ids
 * continue after its id. */
void jm_cp_restored_from(jm_cp *cp, const jm_restore *plan, jm_time now);
/* The restore point of a restart: the newest completed checkpoint whose _metadata and state files
 * check out (re-read from disk), falling back to older retained ones. *out = NULL when there is
 * none (start empty); an error naming the file when checkpoints exist but none is usable. */
int jm_cp_restore_latest(jm_cp *cp, jm_time now, jm_restore **out, flint_err *err);

/* Queries. */
void jm_cp_get_stats(const jm_cp *cp, jm_cp_stats *out);
int jm_cp_pending_count(const jm_cp *cp);
/* Completed checkpoints in the store (oldest first): id and directory. */
int jm_cp_completed_count(const jm_cp *cp);
int64_t jm_cp_completed_id(const jm_cp *cp, int i);
const char *jm_cp_completed_dir(const jm_cp *cp, int i);
/* References of a shared file (absolute path) held by completed checkpoints; 0 when unknown. */
int jm_cp_shared_refs(const jm_cp *cp, const char *path);
/* Monotonic time of the next periodic trigger, -1 when none is armed. */
int64_t jm_cp_next_trigger_ms(const jm_cp *cp);
/* Consecutive counted failures (towards tolerable-failed-checkpoints). */
int jm_cp_consecutive_failures(const jm_cp *cp);

/* "DECLINED" ...; Flint's name of a failure reason. */
const char *jm_cp_reason_name(int reason);
/* Whether a failure reason counts towards tolerable-failed-checkpoints. */
bool jm_cp_reason_counts(int reason);

#endif

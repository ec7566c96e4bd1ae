/* A task: one subtask of a job vertex, run by its own thread (Flink's StreamTask). The thread
 * sets up the chain (operators, result partitions and record writers, input gates), then runs the
 * mailbox loop: read input elements (or let the source produce a batch), push each record through
 * the chain, run mailbox actions between buffers and batches, flush writers whose buffer timeout
 * is due, and sleep on the task's waker when there is nothing to do. At the end of input it ends
 * the chain, sends end-of-partition on every writer, closes the operators and reports FINISHED
 * (with checkpoints after tasks finish it sends end-of-data first and ends its partitions only
 * once a checkpoint it took after that completed: checkpoint/cp_task.h, tm_cp_end_data); a
 * failure reports FAILED with the root cause, a cancel CANCELED.
 *
 * Event time (issue 5): each input element's timestamp becomes rt.timestamp for its record; the
 * watermarks and idle statuses of all input channels (of both inputs of a two-input head, whose
 * gates feed process2 when their edge's input_index is 1) are combined by a valve (tm_valve.h)
 * into the head's watermark; the operators' periodic ticks (tm_op_every) and due processing-time
 * timers (tm_timers.h) run between batches, and the loop never sleeps past the next of them.
 * A source ends its output with FLINT_MAX_WATERMARK; so does the end of a task's input.
 *
 * Threads: tm_task_new/start/cancel/join/free and tm_task_metrics_get are called by the task
 * executor (its event loop thread); everything else runs on the task thread, which reports its
 * state changes through the on_state callback (on the task thread: the callback must hand them
 * over to the executor's loop, never touch it). */
#ifndef FLINT_TM_TASK_H
#define FLINT_TM_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "flint/status.h"
#include "network/tm_net.h"
#include "rpc.pb-c.h"

typedef enum tm_task_state {
    TM_TASK_DEPLOYING,
    TM_TASK_INITIALIZING,
    TM_TASK_RUNNING,
    TM_TASK_FINISHED,
    TM_TASK_CANCELING,
    TM_TASK_CANCELED,
    TM_TASK_FAILED
} tm_task_state;

/* "RUNNING" etc., as Flink names execution states. */
const char *tm_task_state_name(tm_task_state s);
bool tm_task_state_is_terminal(tm_task_state s);

typedef struct tm_task tm_task;
struct metric_set;

/* A state change on the task thread. error: the root cause for FAILED, else NULL. The terminal
 * state is the thread's last act: after the callback returns it touches nothing of the task, so
 * the receiver may join and free it (once it has the callback's news on its own thread). */
typedef void (*tm_task_state_fn)(tm_task *t, tm_task_state state, const char *error, void *ud);

typedef struct tm_task_config {
    tm_net *net;
    void *dl;                      /* the job's artifact (dlopen handle), NULL when none */
    const char *artifact;          /* its sha256 ("" when none); copied */
    tm_task_state_fn on_state;
    void *ud;
    const struct flint_config *config;  /* the taskmanager's (state backends); may be NULL */
    /* Checkpoints (issue 6): hand an AcknowledgeCheckpoint / DeclineCheckpoint to the executor
     * (ud is the one above; called from the task and checkpoint threads; copies env). NULL:
     * dropped. */
    void (*send_to_jm)(void *ud, const Flint__Rpc__Envelope *env);
} tm_task_config;

typedef struct tm_task_metrics {
    int64_t records_in, records_out, bytes_in, bytes_out;
    int64_t back_pressured_ms_per_s, busy_ms_per_s, idle_ms_per_s;
    /* issue 8 */
    int64_t input_watermark, output_watermark;     /* INT64_MIN: none yet */
    double in_pool_usage, out_pool_usage;          /* 0..1 */
    double records_in_per_s, records_out_per_s, bytes_in_per_s, bytes_out_per_s;   /* meters */
} tm_task_metrics;

/* A task for tdd (not copied: it must outlive the task). Nothing runs until tm_task_start. */
tm_task *tm_task_new(const Flint__Rpc__TaskDeploymentDescriptor *tdd, const tm_task_config *cfg);
/* Start the thread. On failure (no thread) nothing was reported. */
int tm_task_start(tm_task *t, flint_err *err);
/* Ask the task to stop: blocked writers give up at once, the loop stops at its next mailbox
 * check, and the task reports CANCELED (unless it already ended). Any thread; idempotent. */
void tm_task_cancel(tm_task *t);
/* Wait for the thread to end (after its terminal state was reported). */
void tm_task_join(tm_task *t);
/* Join with a time limit; false when the thread is still running after timeout_ms. */
bool tm_task_join_timeout(tm_task *t, int64_t timeout_ms);
/* Free a task whose thread has ended (or never started). */
void tm_task_free(tm_task *t);
/* The latest published metrics (cumulative counts, per-second rates of the last second). Any
 * thread. */
void tm_task_metrics_get(tm_task *t, tm_task_metrics *m);
/* ---- metrics (issue 8, common/metrics/metrics.h) ----
 * The task executor calls tm_task_metrics_update about once per second: it samples the meters
 * (numRecordsInPerSecond, ...) and puts a mail in the mailbox that measures how long it waited
 * (mailboxLatencyMs). tm_task_metric_dump adds every metric of the task and of its operators
 * (operator metrics name their operator) to out. Both from the executor's thread. */
void tm_task_metrics_update(tm_task *t, int64_t now_ns);
void tm_task_metric_dump(tm_task *t, struct metric_set *out);
/* ---- checkpoints (issue 6, checkpoint/cp_task.h) ----
 * TriggerCheckpoint, NotifyCheckpointComplete / Aborted for this task: queued for its thread
 * (executor's thread). The restore failure of a task that FAILED restoring its state, else NULL
 * (after the thread ended). */
void tm_task_checkpoint_message(tm_task *t, const Flint__Rpc__Envelope *env);
const Flint__Checkpoint__StateRestoreFailure *tm_task_restore_failure(const tm_task *t);
/* "Map -> Sink (2/4)" */
const char *tm_task_name(const tm_task *t);
/* Whether the thread has reported a terminal state. Any thread. */
bool tm_task_ended(tm_task *t);

#endif

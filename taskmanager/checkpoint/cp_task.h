/* The checkpoint side of a task (issue 6; Flint's SubtaskCheckpointCoordinator and barrier
 * handling; protocol: docs/checkpointing-protocol.md). One per task, made with the task:
 *
 *  - triggers (TriggerCheckpoint, at sources) and notifications (NotifyCheckpointComplete /
 *    Aborted) arrive on the executor's thread (tm_cp_post_*) and run in the task thread as
 *    mailbox actions, between buffers or source batches;
 *  - barriers arrive in-band as TM_EVENT_CHECKPOINT_BARRIER event buffers (tm_cp_on_event): the
 *    barrier handler (cp_barrier.h) aligns them by mode, blocking channels in tm_input;
 *  - a snapshot has a short synchronous part in the task thread (every operator of the chain,
 *    head first: keyed state -- the hashmap backend serialized into memory, RocksDB a DB snapshot
 *    or, incremental, a RocksDB checkpoint of hard links --, timers, operator list and broadcast
 *    state, and what each kind adds itself through snapshot_state: source positions, sink
 *    commits), then the barrier goes to every output, then the asynchronous part writes the files
 *    on the task's checkpoint thread and acknowledges (AcknowledgeCheckpoint with the handles
 *    and sizes) or declines (DeclineCheckpoint with a reason);
 *  - restore (TaskDeploymentDescriptor.restore) happens while the operators open: keyed,
 *    operator and broadcast state and timers when an operator opens its state
 *    (tm_state_op_open -> tm_cp_restore_op), the kinds' own state (initialize_state) once the
 *    chain is open, before the task reports RUNNING; a failure names the file
 *    (UpdateTaskExecutionState.restore_failure);
 *  - stop-with-savepoint: a source that took a SAVEPOINT_SUSPEND / _TERMINATE savepoint stops
 *    emitting, finishes once it completes and resumes if it is aborted; the tasks downstream end
 *    without ending their input (no end-of-input output after a suspend savepoint);
 *  - checkpoints after tasks finish: at the end of its data a task sends end-of-data downstream
 *    and finishes only once a checkpoint it took after that completed (tm_cp_end_data); once its
 *    upstream tasks all finished, the coordinator triggers it like a source.
 *
 * File layout of what a task writes (all formats of full keyed state share it): see cp_state.h. */
#ifndef FLINT_CP_TASK_H
#define FLINT_CP_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint.pb-c.h"
#include "flint/status.h"
#include "network/tm_net.h"
#include "rpc.pb-c.h"

struct tm_chain;
struct tm_mailbox;
struct tm_op;
struct tm_runtime;
struct tm_state_backend;

typedef struct tm_cp tm_cp;

/* Hand a message for the jobmanager to the executor (any thread; the callee copies env). */
typedef void (*tm_cp_send_fn)(void *ud, const Flint__Rpc__Envelope *env);

typedef struct tm_cp_env {
    const Flint__Rpc__TaskDeploymentDescriptor *tdd;   /* not owned; outlives the controller */
    struct tm_runtime *rt;
    struct tm_mailbox *mailbox;
    tm_cp_send_fn send;            /* NULL: acknowledgements are dropped (tests) */
    void *send_ud;
    const char *task_name;
} tm_cp_env;

/* ---- the executor's side (its loop thread) ---- */
tm_cp *tm_cp_new(const tm_cp_env *env);
/* After the task's thread ended (tm_cp_stop ran). */
void tm_cp_free(tm_cp *cp);
/* A request for the task thread (copied). A trigger of a non-source task (its upstream tasks all
 * finished) counts as a barrier on every channel at its end; without final checkpoints it is
 * declined. */
void tm_cp_post_trigger(tm_cp *cp, const Flint__Checkpoint__TriggerCheckpoint *m);
void tm_cp_post_complete(tm_cp *cp, int64_t checkpoint_id);
void tm_cp_post_aborted(tm_cp *cp, int64_t checkpoint_id);
/* The restore failure of a task that FAILED restoring (else NULL). Read after the thread ended. */
const Flint__Checkpoint__StateRestoreFailure *tm_cp_restore_failure(const tm_cp *cp);
/* Send a DeclineCheckpoint for a task that is not there (finished, or not started yet). */
void tm_cp_decline_for(tm_cp_send_fn send, void *ud, const char *job_id, const char *execution_id,
                       int64_t checkpoint_id, int reason, const char *message);

/* ---- the task thread ---- */
/* The chain and the task's network ends, once set up (before the chain opens). writers: the
 * task's record writers (copied array); input: NULL for sources. */
void tm_cp_attach(tm_cp *cp, struct tm_chain *chain, tm_writer *const *writers, int n_writers,
                  tm_input *input, int n_channels);
/* Called by tm_state_op_open when op opened its state: restore op's keyed state (into keyed,
 * may be NULL), operator and broadcast state and timers from the deployment's restore
 * descriptor. FLINT_OK when there is nothing to restore; on failure the operator has failed
 * (tm_op_fail) and the restore failure is recorded. cp may be NULL. */
int tm_cp_restore_op(tm_cp *cp, struct tm_op *op, struct tm_state_backend *keyed);
/* The chain is open: restore the kinds' own state (initialize_state). Non-zero (the task failed,
 * the restore failure recorded) on error. Then checkpoints are taken from now on. */
int tm_cp_restore_finish(tm_cp *cp);
/* The mailbox action (put by tm_cp_post_*): run the queued requests. Returns a failure of the
 * task (an operator failed in a snapshot or notification), else FLINT_OK. */
int tm_cp_run_requests(tm_cp *cp);
/* An event element from the input (a barrier; other events are ignored). */
int tm_cp_on_event(tm_cp *cp, const tm_element *el);
/* Every input ended: a pending alignment can never complete (declined INPUT_END_OF_STREAM). */
void tm_cp_input_ended(tm_cp *cp);
/* A channel ended (end of partition) while others of its gate go on. After its end of data it
 * counts as having delivered every later barrier (the snapshot may be taken now: a failure of
 * the task is returned). Without, the checkpoint being aligned, if the channel still owed its
 * barrier, and every later one are declined (INPUT_END_OF_STREAM) and the blocked channels
 * unblocked. */
int tm_cp_channel_ended(tm_cp *cp, int gate, int channel);
/* Every channel of a gate ended: the same for each of them. */
int tm_cp_gate_ended(tm_cp *cp, int gate);
/* Checkpoints after tasks finish (TaskCheckpointConfig.final_checkpoints; FLIP-147): a task that
 * reaches the end of its data ends its operators, sends TM_EVENT_END_OF_DATA downstream instead of
 * ending its partitions, goes on taking checkpoints, and ends its partitions only once one it took
 * after its end of data completed. */
/* Non-sources: every input channel delivered its end of data; the task ends its data now. */
bool tm_cp_input_drained(const tm_cp *cp);
/* The task ends its data (once, before ending its chain): whether a final checkpoint follows. No
 * when the option is off, after a stop-with-savepoint, or (non-sources) when an input ended
 * without end of data. */
bool tm_cp_end_data(tm_cp *cp);
/* tm_cp_end_data said yes (two-phase-commit sinks commit on the final checkpoint then, not at
 * the end of input). */
bool tm_cp_final_checkpoint(const tm_cp *cp);
/* The task may end its partitions: no final checkpoint follows, or one completed. */
bool tm_cp_final_done(const tm_cp *cp);
/* Sources: stop emitting (a stop-with-savepoint savepoint is in progress). */
bool tm_cp_source_paused(const tm_cp *cp);
/* Sources: the stop-with-savepoint savepoint completed: finish now. *drain: it was a
 * SAVEPOINT_TERMINATE (end the input as usual), else end without end of input. */
bool tm_cp_source_stop(const tm_cp *cp, bool *drain);
/* Whether the task ends after a suspend savepoint: no end of input, no final watermark. */
bool tm_cp_suspended(const tm_cp *cp);
/* The input ended after a suspend savepoint's barrier, but its NotifyCheckpointComplete has
 * not arrived yet (it may come after the sources' end of partition): the task waits for it, so
 * that two-phase-commit sinks commit before they close. */
bool tm_cp_suspend_pending(const tm_cp *cp);
/* The task ends: decline what is queued or aligning (TASK_CLOSING), let the asynchronous parts
 * under way complete (finished) or give them up (failed, canceled), stop the checkpoint thread.
 * Before the operators close (their state backends must outlive the asynchronous parts). */
void tm_cp_stop(tm_cp *cp, bool finished);

/* ---- for kinds' snapshot_state ---- */
void tm_cp_add_split(Flint__Checkpoint__OperatorSubtaskState *out, const char *split_id, int64_t position,
                     const void *data, size_t len);
void tm_cp_add_commit(Flint__Checkpoint__OperatorSubtaskState *out, const char *id, int64_t checkpoint_id,
                      const void *data, size_t len);

#endif

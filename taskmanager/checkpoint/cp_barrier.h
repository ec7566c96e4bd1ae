/* Checkpoint barriers on the taskmanager (issue 6, docs/checkpointing-protocol.md): the payload of
 * a TM_EVENT_CHECKPOINT_BARRIER event buffer, and the barrier handler of a task with input
 * channels (Flink's CheckpointBarrierHandler): in EXACTLY_ONCE it aligns -- a channel that
 * delivered the barrier of the checkpoint being aligned is blocked until every channel has
 * delivered it, then the task snapshots and unblocks; in AT_LEAST_ONCE nothing is blocked and the
 * task snapshots when the last channel delivered the barrier (Flink's CheckpointBarrierTracker).
 * A barrier of a newer checkpoint aborts the alignment under way (declined as SUBSUMED); an
 * abort notification or a cancel aborts it too, and so does a channel that ends (end of
 * partition) without having delivered the pending barrier: that checkpoint, and every later one,
 * can no longer align (declined as INPUT_END_OF_STREAM; Flink's aligner did the same) -- unless
 * the channel delivered its end of data first (checkpoints after tasks finish, FLIP-147): then
 * it counts as having delivered every later barrier. A task whose upstream tasks all finished is
 * triggered by the coordinator instead (tm_aligner_on_trigger).
 *
 * The handler is pure logic (time passed in, actions returned), so tests drive it directly
 * (tests/unit/check_barrier.c); the task carries the actions out (block the channel in tm_input,
 * snapshot, decline, unblock). */
#ifndef FLINT_CP_BARRIER_H
#define FLINT_CP_BARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the barrier event ------------------------------------------------------------------------ */

/* The barrier carries where the checkpoint's files go (Flink's CheckpointOptions carry the
 * target location): the trigger's target and shared directories, so that every task writes a
 * savepoint into its directory. */
typedef struct tm_barrier {
    int64_t checkpoint_id;
    int64_t timestamp;        /* the trigger's wall-clock ms */
    int type;                 /* Flint__Checkpoint__CheckpointType */
    int mode;                 /* Flint__Checkpoint__CheckpointingMode */
    char target[1024];        /* TriggerCheckpoint.target_directory */
    char shared[1024];        /* TriggerCheckpoint.shared_directory ("" for savepoints) */
} tm_barrier;

/* Payload: i64 id, i64 timestamp (little-endian), u8 type, u8 mode, u16 target length, target,
 * u16 shared length, shared. */
#define TM_BARRIER_MAX (22 + 2 * 1024)

/* The payload of barrier b into out; returns its length. */
size_t tm_barrier_encode(const tm_barrier *b, uint8_t out[TM_BARRIER_MAX]);
/* Parse an event buffer's payload (after its 4-byte event type); false when malformed. */
bool tm_barrier_decode(const uint8_t *payload, size_t len, tm_barrier *out);

/* ---- the barrier handler ---------------------------------------------------------------------- */

typedef struct tm_aligner {
    int n;                    /* input channels, over all gates */
    bool exactly_once;
    int64_t pending;          /* the checkpoint being aligned (0: none) */
    int64_t max_seen;         /* the newest checkpoint id any barrier (or trigger) named */
    tm_barrier barrier;       /* of the pending checkpoint */
    bool *got;                /* per channel: delivered the pending checkpoint's barrier */
    int n_got;
    bool *drained;            /* per channel: delivered its end of data (TM_EVENT_END_OF_DATA) */
    bool *ended;              /* per channel: its end of partition arrived */
    int n_ended;
    int n_dead;               /* channels that ended without end of data */
    int64_t start_ns;         /* the first barrier of the pending checkpoint arrived */
} tm_aligner;

/* What the task does about one barrier. */
typedef struct tm_align_result {
    bool block;               /* block the channel the barrier came on (exactly-once) */
    int64_t aborted;          /* an older pending checkpoint was given up (SUBSUMED), or 0 */
    int64_t ended;            /* a checkpoint that cannot align because a channel ended before
                               * its barrier (INPUT_END_OF_STREAM), or 0 */
    bool unblock_all;         /* unblock every channel (after aborted or ended, or with trigger) */
    bool trigger;             /* every channel delivered the barrier: snapshot now */
    int64_t alignment_ns;     /* with trigger: first to last barrier */
} tm_align_result;

void tm_aligner_init(tm_aligner *a, int n_channels, bool exactly_once);
void tm_aligner_free(tm_aligner *a);
/* Barrier b arrived on channel ch (0..n-1) at now_ns (monotonic). A barrier of a checkpoint
 * older than the newest seen, or a second one from the same channel, is ignored. */
tm_align_result tm_aligner_on_barrier(tm_aligner *a, int ch, const tm_barrier *b, int64_t now_ns);
/* A TriggerCheckpoint for b reached a task whose upstream tasks have all finished (Flink's
 * triggerUnfinishedChannelsCheckpoint): no barrier comes through the network, so every channel
 * counts as delivering it at its end of partition, after the records still in it. Trigger at
 * once when every channel has ended already; ended when one ended without end of data; aborted
 * (= b's id) when b is not newer than every checkpoint seen. Nothing is ever blocked. */
tm_align_result tm_aligner_on_trigger(tm_aligner *a, const tm_barrier *b, int64_t now_ns);
/* Channel ch delivered its end of data: its end of partition will count as every later barrier. */
void tm_aligner_on_end_of_data(tm_aligner *a, int ch);
/* Channel ch ended (its end of partition) at now_ns. After its end of data it counts as having
 * delivered the pending barrier (trigger when it was the last one owed) and every later one;
 * without, it gives up the pending checkpoint (ended) when ch still owed its barrier, and
 * barriers of later checkpoints are given up at once (ended). A second end is ignored. */
tm_align_result tm_aligner_on_end(tm_aligner *a, int ch, int64_t now_ns);
/* Give up the pending checkpoint if it is id (id 0: whatever is pending). Returns the checkpoint
 * given up (its channels must be unblocked), or 0. Barriers of it that arrive later are ignored. */
int64_t tm_aligner_abort(tm_aligner *a, int64_t id);
/* The checkpoint being aligned (0: none). */
static inline int64_t tm_aligner_pending(const tm_aligner *a) { return a->pending; }

#endif

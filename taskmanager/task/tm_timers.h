/* The timer service of a task (Flink's InternalTimerService / InternalTimeServiceManager): event-
 * and processing-time timers of (operator, key, namespace, time), deduplicated, deletable, kept
 * by key group so that a checkpoint can snapshot them group by group.
 *
 * HOW TO USE (operators). A keyed operator that needs timers asks for its queue in open:
 *     op->timers = tm_op_timers(op);               (operator.h; one queue per operator)
 * registers them while processing a record or firing a timer:
 *     tm_timer_register(op->timers, FLINT_EVENT_TIME, key, key_len, key_group, ns, ns_len, t);
 *     tm_timer_delete(...same arguments...);
 * and implements tm_op_kind.on_timer, which the task calls with each due timer (the timer's key
 * bytes and key group, namespace bytes and time; for event time, rt->timestamp is the timer's
 * time while on_timer runs; for processing time it is FLINT_NO_TIMESTAMP). Registering an equal
 * (domain, key, namespace, time) again is one timer; deleting a missing timer does nothing; a
 * timer deleted or registered from inside on_timer takes effect at once (a newly registered
 * event-time timer <= the watermark being processed fires in the same advance, as in Flink).
 * Event-time timers fire when a watermark reaches the operator (tm_op_watermark fires the
 * operator's due timers in time order BEFORE its kind's watermark callback, then the watermark is
 * forwarded). Processing-time timers (epoch ms, wall clock) fire from the task's mailbox loop: the
 * loop sleeps until at most tm_timers_next_processing_time() and then calls
 * tm_timers_fire_processing_time(). Key bytes are what tm_keys_get makes (operators/keys.h; the
 * state backend's key bytes); namespaces are opaque bytes ("" for keyed process functions; a
 * window's start/end for windows). Nothing here is thread-safe: the task thread only.
 *
 * THE OPERATOR API ADDITIONS OF ISSUE 5 (taskmanager/operators/operator.h):
 *  - tm_runtime.timestamp: the current record's event timestamp (FLINT_NO_TIMESTAMP when none).
 *    The task sets it from each input element; a row handed down a chain keeps it (tm_op_emit
 *    sets it before each output and restores it after, so one output changing it never leaks
 *    into the next or back). An operator that emits with another timestamp calls
 *    tm_op_emit_ts(op, row, ts) (windows: window end - 1; assign_timestamps: the extracted one);
 *    on_timer runs with it set to the timer's time (event time) or FLINT_NO_TIMESTAMP. Network
 *    outputs write it (wire kind 2) unless it is FLINT_NO_TIMESTAMP.
 *  - tm_runtime.timers: the task's tm_timers. tm_op.timers: the operator's queue (or NULL).
 *  - tm_op.watermark: the operator's current event-time watermark (INT64_MIN at first).
 *  - tm_op_kind.watermark(op, wm): NULL = forward (tm_op_emit_watermark). tm_op_watermark(op, wm)
 *    is what callers use: it sets op->watermark, fires due event-time timers, then calls the
 *    kind's watermark (which must forward it itself, or hold it back) or forwards it.
 *  - tm_op_kind.on_timer(op, timer): one due timer (see above).
 *  - tm_op_kind.process2(op, row): a row of the second input (TWO_INPUT kinds); process is the
 *    first input. A two-input operator is always a chain head; the task routes each gate to input
 *    1 or 2 by its edge's input_index, and its watermark is the min over both inputs' channels.
 *  - Idleness: tm_op_emit_idle(op, idle) forwards an idle/active status down the chain to the
 *    network outputs (operators do not see it).
 *  - Side outputs: an operator's outputs with a tag (OperatorDef.chained_output_tags /
 *    output_edge_tags, parallel to chained_outputs / output_edges; "" is the main output) are its
 *    side outputs. int s = tm_op_side_output(op, "late") in open (-1: nobody consumes that tag:
 *    emitting to it drops the row); tm_op_emit_side(op, s, row) emits like tm_op_emit.
 *  - flint_ctx (common/runtime/runtime.h) gains what libflint needs for flint_ctx_timestamp,
 *    flint_ctx_current_watermark, flint_ctx_current_key, flint_timer_* and
 *    ctx.broadcast_writable (true only while a broadcast-process operator runs its broadcast side;
 *    flint_state_broadcast writes check it). */
#ifndef FLINT_TM_TIMERS_H
#define FLINT_TM_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint/flint.h"

typedef struct tm_timers tm_timers;            /* one per task */
typedef struct tm_timer_queue tm_timer_queue;  /* one per operator that uses timers */

/* A due timer, as on_timer sees it (pointers valid during the callback only). */
typedef struct tm_timer {
    flint_time_domain domain;
    int64_t time;                 /* event time or processing time (epoch ms) */
    int key_group;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *ns;
    size_t ns_len;
} tm_timer;

/* Fire one timer of the queue's owner: FLINT_OK or an error, which stops the firing and is
 * returned by the advance/fire call. */
typedef int (*tm_timer_fire_fn)(void *owner, const tm_timer *timer);

/* A service for a task of a job with max_parallelism key groups (timers are indexed by group). */
tm_timers *tm_timers_new(int max_parallelism);
void tm_timers_free(tm_timers *ts);

/* The queue of an operator (owner is handed back to fire). The service owns it. */
tm_timer_queue *tm_timers_queue_new(tm_timers *ts, void *owner, tm_timer_fire_fn fire);

/* Register a timer; returns true when it is new, false when an equal one exists. key_group must
 * be in [0, max_parallelism). Copies key and namespace. */
bool tm_timer_register(tm_timer_queue *q, flint_time_domain d, const uint8_t *key, size_t key_len,
                       int key_group, const uint8_t *ns, size_t ns_len, int64_t time);
/* Delete a timer; returns whether it existed. */
bool tm_timer_delete(tm_timer_queue *q, flint_time_domain d, const uint8_t *key, size_t key_len,
                     int key_group, const uint8_t *ns, size_t ns_len, int64_t time);

/* Event time: fire every timer of q with time <= watermark, in time order (ties: registration
 * order), including timers registered by the callbacks that are due. */
int tm_timer_queue_advance_watermark(tm_timer_queue *q, int64_t watermark);
/* The earliest event-time timer of q (INT64_MAX when none). */
int64_t tm_timer_queue_next_event_time(const tm_timer_queue *q);

/* Processing time: the earliest processing-time timer of any queue (epoch ms; INT64_MAX when
 * none). The mailbox loop's sleep deadline includes it. */
int64_t tm_timers_next_processing_time(const tm_timers *ts);
/* Fire every processing-time timer with time <= now_ms (epoch ms) of every queue, in time order.
 * Timers registered meanwhile for <= now_ms fire too. */
int tm_timers_fire_processing_time(tm_timers *ts, int64_t now_ms);

/* Counts (tests, metrics). */
size_t tm_timer_queue_count(const tm_timer_queue *q, flint_time_domain d);
size_t tm_timers_count(const tm_timers *ts);

/* Snapshots (issue 6): every timer of q in key group kg (any order). Return nonzero from fn to
 * stop; that value is returned. Restore = tm_timer_register of each. */
typedef int (*tm_timer_visit_fn)(void *ud, const tm_timer *timer);
int tm_timer_queue_foreach_key_group(const tm_timer_queue *q, int key_group, tm_timer_visit_fn fn,
                                     void *ud);

/* Wall clock, epoch ms (what flint_ctx_current_processing_time reports). */
int64_t tm_timers_now_ms(void);

#endif

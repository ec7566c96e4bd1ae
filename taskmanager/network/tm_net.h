/* The data plane of a taskmanager (DESIGN.md section 6): a fixed pool of network segments, result
 * partitions written by record writers, input gates read by tasks, local channels that read a
 * producer's queue directly, and remote channels multiplexed over one TCP connection per pair of
 * taskmanagers with credit-based flow control. The socket side runs on the network's own I/O
 * thread; tasks call the producer and consumer functions below from their own threads.
 *
 * Elements inside buffers: a 4-byte little-endian header (low 30 bits: length; top 2 bits: kind)
 * then the bytes; an element may span buffers. Wire kinds: 0 a record (the row); 1 a watermark
 * (8 bytes, int64 LE) or a watermark status (1 byte: 1 idle, 0 active); 2 a record with an event
 * timestamp (8 bytes int64 LE, then the row); 3 unused. Events (end of partition, checkpoint
 * barriers) travel as event buffers of their own, in order with the data before and after them.
 * No allocation per element or per buffer. */
#ifndef FLINT_TM_NET_H
#define FLINT_TM_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "flint/status.h"

/* Kinds of element in data buffers, and what tm_input_next reports. */
typedef enum tm_elem_kind {
    TM_ELEM_RECORD = 0,       /* a serialized row (el.timestamp: its event timestamp or
                               * FLINT_NO_TIMESTAMP) */
    TM_ELEM_WATERMARK = 1,    /* el.timestamp: the watermark (written as 8 bytes: int64 LE) */
    TM_ELEM_EVENT = 2,        /* an event buffer's payload (checkpoint barriers) */
    TM_ELEM_GATE_END = 3,     /* every channel of gate el.gate has ended (no data) */
    TM_ELEM_STATUS = 4,       /* reported only: a watermark status, el.data[0] 1 idle / 0 active */
    TM_ELEM_CHANNEL_END = 5   /* reported only: channel el.channel of gate el.gate ended (end of
                               * partition) while others of the gate go on (no data); the end of
                               * a gate's last channel is its TM_ELEM_GATE_END */
} tm_elem_kind;

/* Wire kind of a record with a timestamp (never reported: tm_input_next says TM_ELEM_RECORD). */
#define TM_WIRE_RECORD_TS 2u

/* Event types carried by event buffers. */
typedef enum tm_event_type {
    TM_EVENT_END_OF_PARTITION = 1,
    /* A checkpoint barrier (issue 6): payload taskmanager/checkpoint/cp_barrier.h encodes. */
    TM_EVENT_CHECKPOINT_BARRIER = 2,
    /* The producer's end of data, before its end of partition when it takes a final checkpoint
     * first (checkpoint/cp_task.h, tm_cp_end_data). No payload. */
    TM_EVENT_END_OF_DATA = 3
} tm_event_type;

/* ---- wakers ------------------------------------------------------------------------------------
 * A task sleeps on its waker when it has no input, or no output buffer (backpressure). The
 * network signals it when input arrives or buffers are recycled; the task's mailbox signals it for
 * actions (cancel, later checkpoints). Thread-safe. */
typedef struct tm_waker tm_waker;
tm_waker *tm_waker_new(void);
void tm_waker_free(tm_waker *w);
void tm_waker_signal(tm_waker *w);
/* Sleep until signalled since the previous wait returned, or until deadline_ms (monotonic;
 * INT64_MAX: no deadline). Returns at once if a signal is pending. */
void tm_waker_wait(tm_waker *w, int64_t deadline_ms);
/* Mark canceled (and signal): blocked writers return FLINT_CANCELED from then on. */
void tm_waker_cancel(tm_waker *w);
bool tm_waker_canceled(const tm_waker *w);

/* ---- the network environment ------------------------------------------------------------------ */
typedef struct tm_net tm_net;

/* Make the segment pool (taskmanager.memory.segment-size, taskmanager.memory.network.size) and
 * the I/O thread. resource_id is this taskmanager's: a channel whose producer has it is local.
 * NULL with err on failure. */
tm_net *tm_net_new(const flint_config *cfg, const char *resource_id, flint_err *err);
/* Start the data server on host:port (0: any free port). Returns the bound port, or -1 with err. */
int tm_net_listen(tm_net *net, const char *host, int port, flint_err *err);
/* Stop the I/O thread, close every connection, free the pool. Every partition, writer and input
 * must have been freed first. */
void tm_net_free(tm_net *net);
int tm_net_segments_total(const tm_net *net);
int tm_net_segments_available(const tm_net *net);
/* Drop the partitions of job job_id that their producers released but no consumer read to the
 * end (a consumer that never came, e.g. after a failure). Call on ReleaseJob. */
void tm_net_release_job(tm_net *net, const char *job_id);

/* ---- producer side ----------------------------------------------------------------------------- */
typedef struct tm_partition tm_partition;

/* Register a result partition with n subpartitions (one per consumer subtask) under partition_id,
 * so that consumers, local or remote, can request its subpartitions. The producer task owns it:
 * tm_partition_release when the task ends (after tm_writer_free). Buffers not yet consumed stay
 * readable after release if the producer finished (until consumed, tm_net_release_job or
 * tm_net_free); a canceled partition drops them. Each subpartition queues at most
 * max(2, buffers-per-channel + floating-buffers-per-gate) finished buffers: a writer that would
 * queue more waits (backpressure), so one slow consumer cannot drain the pool. */
tm_partition *tm_partition_create(tm_net *net, const char *partition_id, int num_subpartitions,
                                  flint_err *err);
void tm_partition_release(tm_partition *p, bool canceled);

typedef struct tm_writer tm_writer;

/* A record writer for p, used by one task thread. buffer_timeout_ms as
 * execution.buffer-timeout: 0 flushes after every element, -1 only when a buffer is full, else a
 * partial buffer is flushed once it is that old (see tm_writer_flush_deadline). The waker is the
 * task's: a writer waiting for a free buffer sleeps on it. */
tm_writer *tm_writer_new(tm_partition *p, int64_t buffer_timeout_ms, tm_waker *waker);
void tm_writer_free(tm_writer *w);
/* Append one element to a subpartition. Blocks while no buffer is free (backpressure, measured);
 * returns FLINT_OK, or FLINT_CANCELED once the waker is canceled. */
int tm_writer_emit(tm_writer *w, int subpartition, tm_elem_kind kind, const void *data, uint32_t len);
/* The same element to every subpartition. */
int tm_writer_broadcast(tm_writer *w, tm_elem_kind kind, const void *data, uint32_t len);
/* A record with an event timestamp (wire kind 2) to one / every subpartition. */
int tm_writer_emit_ts(tm_writer *w, int subpartition, int64_t timestamp, const void *data, uint32_t len);
int tm_writer_broadcast_ts(tm_writer *w, int64_t timestamp, const void *data, uint32_t len);
/* A watermark / an idle (true) or active status to every subpartition. */
int tm_writer_watermark(tm_writer *w, int64_t watermark);
int tm_writer_status(tm_writer *w, bool idle);
/* Hand every partial buffer to its consumers now. */
int tm_writer_flush(tm_writer *w);
/* Monotonic ms by which tm_writer_flush must be called to honour the buffer timeout, or
 * INT64_MAX when nothing waits. */
int64_t tm_writer_flush_deadline(const tm_writer *w);
/* Flush, then send an event buffer to every subpartition. After TM_EVENT_END_OF_PARTITION the
 * writer takes nothing more. */
int tm_writer_event(tm_writer *w, tm_event_type type, const void *payload, uint32_t len);

typedef struct tm_writer_metrics {
    int64_t records_out, bytes_out;
    int64_t back_pressured_ns;   /* total time spent waiting for a free buffer, including a wait
                                  * still under way (so it grows while the writer is blocked) */
} tm_writer_metrics;
void tm_writer_metrics_get(const tm_writer *w, tm_writer_metrics *m);
/* Buffers queued in p's subpartitions and how many they may queue at most (outPoolUsage, issue 8).
 * Any thread, while p exists. */
void tm_partition_buffers(tm_partition *p, int *queued, int *capacity);

/* ---- consumer side ----------------------------------------------------------------------------- */
typedef struct tm_channel_desc {
    const char *partition_id;
    int subpartition;
    const char *producer_resource_id;   /* equal to the local resource id: a local channel */
    const char *host;
    int data_port;
} tm_channel_desc;

typedef struct tm_input tm_input;

/* All input gates of one task; signals waker when an element becomes available. */
tm_input *tm_input_new(tm_net *net, tm_waker *waker);
/* Add gate number tm_input_gate_count() with n channels (copied). Before tm_input_start. */
void tm_input_add_gate(tm_input *in, int n, const tm_channel_desc *channels);
int tm_input_gate_count(const tm_input *in);
/* Request every subpartition (retrying one that is not registered yet, up to
 * taskmanager.network.request-backoff.max). */
int tm_input_start(tm_input *in, flint_err *err);

typedef struct tm_element {
    tm_elem_kind kind;
    int gate, channel;        /* channel is -1 for TM_ELEM_GATE_END */
    int64_t timestamp;        /* RECORD: event timestamp or FLINT_NO_TIMESTAMP (INT64_MIN);
                               * WATERMARK: the watermark */
    const uint8_t *data;      /* valid until the next tm_input_next or tm_input_free; for
                               * TM_ELEM_EVENT the event buffer: 4-byte LE event type, payload */
    uint32_t len;
} tm_element;

/* The next element, without blocking: FLINT_OK with *el; FLINT_UNAVAILABLE when nothing is ready
 * (wait on the waker); FLINT_CLOSED when every channel of every gate has ended; any other status
 * when a channel failed (a lost connection, a partition that never appeared), with the reason
 * in tm_input_error. */
int tm_input_next(tm_input *in, tm_element *el);
const char *tm_input_error(const tm_input *in);
void tm_input_free(tm_input *in);
/* Barrier alignment (issue 6): a blocked channel is not read (its buffers stay queued, so a
 * remote sender runs out of credit and a local producer's queue fills up: nothing is buffered
 * beyond the channel's own buffers) until unblocked; other channels go on. Task thread. */
void tm_input_block(tm_input *in, int gate, int channel);
void tm_input_unblock_all(tm_input *in);
/* Channels of gate (the gate's n of tm_input_add_gate). */
int tm_input_channel_count(const tm_input *in, int gate);

typedef struct tm_input_metrics {
    int64_t records_in, bytes_in;
} tm_input_metrics;
void tm_input_metrics_get(const tm_input *in, tm_input_metrics *m);
/* Buffers received but not yet read over in's channels (a local channel: what its subpartition
 * queued at the last read) and how many they may hold (inPoolUsage, issue 8). Any thread, while in
 * exists. */
void tm_input_buffers(tm_input *in, int *queued, int *capacity);

#endif

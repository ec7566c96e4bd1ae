/* The Kafka connectors of the taskmanager (source.kafka in kafka_source.c, sink.kafka in
 * kafka_sink.c): their checkpoint hooks, partition assignment and counters, for the task's
 * checkpointing and for tests. docs/connectors.md describes them for users.
 *
 * Checkpoints. The source's state is one split per partition it owns (Flink's
 * KafkaPartitionSplit): id "<topic>-<partition>", position = the next offset to read, data = text
 * lines "stop=<offset>" (bounded), "skip-before-ts=<ms>" (a TIMESTAMP start still skipping) and
 * "known=<topic>:<partitions>,..." (the partitions it had seen, so that a restored subtask does
 * not take a partition another subtask restored for a new one), plus one marker split
 * "#kafka-source/<subtask>" with the known partitions (so that a subtask that owned no partition
 * is restored too).
 * Snapshots are taken between produce() calls, so positions match the rows emitted before the
 * barrier exactly. On completion of checkpoint n the source commits the positions of n to the
 * group (asynchronously; only with a group_id and commit.offsets.on.checkpoint true).
 *
 * The sink: AT_LEAST_ONCE flushes at the snapshot and fails it (and the task) when a delivery
 * failed; EXACTLY_ONCE flushes the open transaction at the snapshot, records it as pending for
 * that checkpoint, begins the next one on another producer of its pool (transactional ids
 * "<prefix>-<subtask>-<k>"), and commits every pending transaction up to n on completion of n.
 * On open every producer of the pool calls init_transactions, which aborts what an earlier attempt
 * left open. */
#ifndef FLINT_CONNECTORS_KAFKA_H
#define FLINT_CONNECTORS_KAFKA_H

#include <stdbool.h>
#include <stdint.h>

#include "flint/status.h"

struct tm_op;

/* Flink's KafkaSourceEnumerator.getSplitOwner: ((javaHash(topic) * 31 & 0x7fffffff) % p + partition) % p. */
int kafka_split_owner(const char *topic, int32_t partition, int parallelism);
/* Java's String.hashCode of an ASCII/UTF-8 topic name (Kafka topic names are ASCII). */
int32_t kafka_java_string_hash(const char *s);

/* ---- source ------------------------------------------------------------------------------------ */
typedef struct kafka_split {
    char *id;                  /* "<topic>-<partition>" */
    int64_t position;          /* next offset */
    char *data;                /* lines "stop=<n>", "skip-before-ts=<ms>", "known=<topic>:<count>,..." */
} kafka_split;

void kafka_splits_free(kafka_split *splits, int n);

/* The source's splits as of now (between produce calls): every partition it owns, also finished
 * ones, with its next offset. Remembers them as pending for checkpoint_id. The caller frees them. */
int kafka_source_snapshot(struct tm_op *op, int64_t checkpoint_id, kafka_split **out, int *n, flint_err *err);
/* Restore (after open, before the first produce): the subtask owns exactly these partitions from
 * these offsets; partitions it sees later that no restored split knows start at the earliest
 * offset. n == 0 is a restore too (the subtask had nothing). */
int kafka_source_restore(struct tm_op *op, const kafka_split *splits, int n, flint_err *err);
/* Checkpoint checkpoint_id completed: commit its positions (and forget older pending ones). */
int kafka_source_checkpoint_complete(struct tm_op *op, int64_t checkpoint_id);

typedef struct kafka_source_stats {
    int64_t records;           /* rows emitted */
    int64_t parse_errors;      /* records that did not parse (skipped or dead-lettered) */
    int64_t dead_lettered;
    int64_t commits, commit_failures;
    int partitions;            /* owned */
    int finished;              /* bounded: partitions read to their stop offset */
} kafka_source_stats;
void kafka_source_get_stats(struct tm_op *op, kafka_source_stats *st);

/* ---- sink -------------------------------------------------------------------------------------- */
/* The snapshot of checkpoint_id (see above). A failure declines the checkpoint. */
int kafka_sink_snapshot(struct tm_op *op, int64_t checkpoint_id, flint_err *err);
/* Commit the pending transactions of checkpoints up to checkpoint_id. */
int kafka_sink_checkpoint_complete(struct tm_op *op, int64_t checkpoint_id);

typedef struct kafka_sink_stats {
    int64_t records, delivered, failed;
    int64_t txn_begun, txn_committed, txn_aborted;
    int pending;               /* transactions waiting for their checkpoint to complete */
} kafka_sink_stats;
void kafka_sink_get_stats(struct tm_op *op, kafka_sink_stats *st);

#endif

/* Channel selection of a record writer (the producer side of a job edge), as in the execution
 * model of the plan and Flink's partitioners:
 *   FORWARD   subpartition 0 (the edge has one);
 *   REBALANCE round robin, starting at the producer's subtask index (mod n);
 *   RESCALE   round robin over [i*n/p .. (i+1)*n/p) when n >= p, else the one target i*n/p
 *             (i: producer subtask, p: producer parallelism, n: consumers);
 *   SHUFFLE   pseudo-random (seeded by the subtask);
 *   HASH      key group of the key's hash: hash % max_parallelism, then
 *             key_group * n / max_parallelism (row_key.h);
 *   BROADCAST every subpartition. */
#ifndef FLINT_TM_PARTITIONER_H
#define FLINT_TM_PARTITIONER_H

#include <stdint.h>

#include "jobgraph.pb-c.h"

typedef struct tm_partitioner {
    Flint__Graph__Partitioner kind;
    int n;                    /* subpartitions (consumer subtasks) */
    int next;                 /* round robin: the next target */
    int lo, span;             /* targets lo .. lo+span-1 */
    uint64_t rng;
    int max_parallelism;
} tm_partitioner;

#define TM_PARTITION_ALL (-1)

void tm_partitioner_init(tm_partitioner *p, Flint__Graph__Partitioner kind, int num_subpartitions,
                         int subtask, int parallelism, int max_parallelism);
/* The target of the next record for every kind but HASH: a subpartition, or TM_PARTITION_ALL. */
int tm_partitioner_next(tm_partitioner *p);
/* HASH: the subpartition that owns a key with this hash. */
int tm_partitioner_hash(const tm_partitioner *p, uint64_t hash);

#endif

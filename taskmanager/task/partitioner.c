/* Record writers' channel selection (see partitioner.h). */
#include <assert.h>

#include "row/row_key.h"
#include "task/partitioner.h"

void tm_partitioner_init(tm_partitioner *p, Flint__Graph__Partitioner kind, int n, int subtask,
                         int parallelism, int max_parallelism) {
    assert(n >= 1 && parallelism >= 1 && subtask >= 0 && subtask < parallelism);
    p->kind = kind;
    p->n = n;
    p->max_parallelism = max_parallelism >= 1 ? max_parallelism : 128;
    p->lo = 0;
    p->span = n;
    p->next = subtask % n;
    p->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(subtask + 1) ^ 0xd1b54a32d192ed03ULL;
    if (kind == FLINT__GRAPH__PARTITIONER__RESCALE) {
        if (n >= parallelism) {
            p->lo = (int)((int64_t)subtask * n / parallelism);
            p->span = (int)((int64_t)(subtask + 1) * n / parallelism) - p->lo;
        } else {
            p->lo = (int)((int64_t)subtask * n / parallelism);
            p->span = 1;
        }
        p->next = 0;
    }
}

int tm_partitioner_next(tm_partitioner *p) {
    int t;
    switch (p->kind) {
    case FLINT__GRAPH__PARTITIONER__FORWARD:
        return 0;
    case FLINT__GRAPH__PARTITIONER__REBALANCE:
        t = p->next;
        p->next = p->next + 1 == p->n ? 0 : p->next + 1;
        return t;
    case FLINT__GRAPH__PARTITIONER__RESCALE:
        t = p->lo + p->next;
        p->next = p->next + 1 == p->span ? 0 : p->next + 1;
        return t;
    case FLINT__GRAPH__PARTITIONER__SHUFFLE:
        /* xorshift64* */
        p->rng ^= p->rng >> 12;
        p->rng ^= p->rng << 25;
        p->rng ^= p->rng >> 27;
        return (int)(((p->rng * 0x2545F4914F6CDD1DULL) >> 32) % (uint64_t)p->n);
    case FLINT__GRAPH__PARTITIONER__BROADCAST:
        return TM_PARTITION_ALL;
    default:
        assert(!"HASH uses tm_partitioner_hash");
        return 0;
    }
}

int tm_partitioner_hash(const tm_partitioner *p, uint64_t hash) {
    int maxp = p->max_parallelism;
    int n = p->n <= maxp ? p->n : maxp; /* JM refuses parallelism > max parallelism */
    return row_key_group_to_subtask(row_key_group(hash, maxp), maxp, n);
}

/* Stride splits: the rescalable positions of the built-in generator sources (source.datagen,
 * source.nexmark, source.elements), as Flink's NumberSequenceSource splits are for its
 * DataGeneratorSource; and the pacing of rate-limited sources.
 *
 * Such a source's work is a sequence of units 0, 1, 2, ... (datagen rows, elements, cycles of 50
 * Nexmark events), each of a fixed number of positions (1, or the 50 events of a cycle); split
 * r/m is the units r, r + m, r + 2m, ... Subtask i of p starts with the one split i/p. A
 * checkpoint records every split a subtask owns as a SourceSplitState "<kind>:<r>/<m>" with the
 * split's next position, the mechanism of the sequence source's ranges: when the parallelism
 * changes, the jobmanager deals the splits round robin to the new subtasks (jm_restore.c; a
 * subtask dealt none still restores, owning none), so a subtask may own several splits, or none,
 * and the union of the outputs stays the sequence, nothing lost or repeated. Splits are never
 * cut: scaling beyond the number of splits leaves subtasks idle, as in Flink.
 *
 * Positions are in the source's own terms (a row or element number, a Nexmark event number); a
 * subtask produces its splits in the order of their positions (src_splits_pick), so with
 * several splits its output stays in sequence order. */
#ifndef FLINT_SRC_SPLIT_H
#define FLINT_SRC_SPLIT_H

#include <stdint.h>

#include "operators/operator.h"

#define SRC_SPLIT_DONE INT64_MAX   /* the position of a split with nothing left */

typedef struct src_split {
    int64_t r, m;                  /* the units r, r + m, ... (0 <= r < m) */
    int64_t next;                  /* position of the next row, or SRC_SPLIT_DONE */
} src_split;

typedef struct src_splits {
    const char *kind;              /* "datagen", "nexmark", "elements": the split ids' prefix */
    int64_t unit;                  /* positions per unit */
    src_split *v;                  /* owned */
    int n;
} src_splits;

/* The split of subtask i of p ("<kind>:i/p"), at its first position (i * unit). */
void src_splits_init(src_splits *s, const char *kind, int64_t unit, int subtask, int parallelism);
void src_splits_free(src_splits *s);

/* This subtask's share of the source's work: the sum of 1/m over its splits (1/p at first); a
 * rate over all subtasks times it is this subtask's rate. */
double src_splits_share(const src_splits *s);

/* The split with the lowest next position below end (end < 0: unbounded), NULL when every split
 * is done. */
src_split *src_splits_pick(src_splits *s, int64_t end);

/* Pacing of a rate-limited source (rate rows/s of this subtask, > 0), rows counted in *emitted
 * since *start_ms (monotonic): how many of budget rows may go now; 0, with *wake_ms set to when
 * the next is due, when none. A backlog longer than a second (backpressure, a stopped task) is
 * forgotten, by moving *start_ms on, rather than caught up in a burst. */
int64_t src_rate_budget(double rate, int64_t *start_ms, int64_t emitted, int64_t budget, int64_t *wake_ms);

/* Checkpoints: every split to out; on restore, the splits r gives replace this subtask's (none:
 * it owns none). Fails naming the split when one is not "<kind>:<r>/<m>" with 0 <= r < m < 2^31,
 * or its position is not in one of its units. */
int src_splits_snapshot(const src_splits *s, Flint__Checkpoint__OperatorSubtaskState *out);
int src_splits_restore(src_splits *s, tm_op *op, const Flint__Checkpoint__OperatorRestore *r);

#endif

/* source.nexmark: the Nexmark benchmark's events (common/nexmark) as rows of one table (person,
 * auction, bid, or all events as wide rows), parallel, bounded or not, optionally rate-limited.
 *
 * Splitting: the event sequence is cut into cycles of 50 events (1 person, 3 auctions, 46 bids);
 * subtask i of p generates cycles i, i+p, i+2p, ... So every subtask gets the benchmark's mix, the
 * union over subtasks is the one sequence a single generator makes (events below `events` when
 * bounded), and each subtask's events are in event-time order, all subtasks advancing together
 * along the one timeline. The rate counts events (of every type) over all subtasks; a table of
 * one type skips the other events without generating them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/cp_task.h"
#include "nexmark/nexmark.h"
#include "operators/operator.h"
#include "util/alloc.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define EVENT_BATCH 512   /* events per produce() call: the mailbox is checked between batches */

typedef struct nexmark_source {
    nexmark_gen *gen;
    nexmark_table table;
    flint_row_builder b;
    bool has_b;
    int64_t cur;            /* next event number */
    int64_t cycle_end;      /* end of the current cycle (exclusive) */
    int64_t skip;           /* events from one of our cycles to our next: (p-1) * 50 */
    int64_t end;            /* bound (exclusive), -1 when unbounded */
    double rate;            /* events/s of this subtask, 0: unlimited */
    int64_t emitted, start_ms;  /* events generated (all types), for the rate */
} nexmark_source;

static void nexmark_close(tm_op *op) {
    nexmark_source *s = op->state;
    if (!s) return;
    if (s->has_b) flint_row_builder_free(&s->b);
    nexmark_gen_free(s->gen);
    free(s);
    op->state = NULL;
}

static int nexmark_open(tm_op *op) {
    nexmark_source *s = XNEW(nexmark_source);
    op->state = s;
    if (!op->out_schema) return tm_op_fail(op, "the source has no output schema");
    const char *table;
    int rc = tm_op_param_req(op, "table", &table);
    if (rc) return rc;
    if (!nexmark_table_parse(table, &s->table))
        return tm_op_fail(op, "parameter 'table': unknown Nexmark table '%s' (person, auction, bid or all)", table);
    flint_schema *want = NULL;
    flint_err err = {0};
    if (flint_schema_parse(nexmark_table_schema(s->table), &want, &err))
        return tm_op_fail(op, "the %s table's schema: %s", table, err.msg);
    bool same = flint_schema_equal(want, op->out_schema);
    flint_schema_free(want);
    if (!same)
        return tm_op_fail(op, "the output schema '%s' is not the Nexmark %s table's", flint_schema_text(op->out_schema),
                          table);
    int64_t events, seed;
    if ((rc = tm_op_param_int(op, "events", -1, &events)) || (rc = tm_op_param_int(op, "seed", 0, &seed))) return rc;
    const char *r = tm_op_param(op, "rate");
    double rate = 0;
    if (r && r[0] && (str_parse_double(r, &rate) || !(rate >= 0) || isinf(rate)))
        return tm_op_fail(op, "parameter 'rate': expected events per second, got '%s'", r);

    nexmark_config cfg;
    nexmark_config_init(&cfg);
    cfg.seed = seed;
    nexmark_config_set_rate(&cfg, rate);
    s->gen = nexmark_gen_new(&cfg);
    flint_row_builder_init(&s->b, op->out_schema);
    s->has_b = true;
    int p = op->rt->parallelism, i = op->rt->subtask;
    s->cur = (int64_t)i * NEXMARK_TOTAL_PROPORTION;
    s->cycle_end = s->cur + NEXMARK_TOTAL_PROPORTION;
    s->skip = (int64_t)(p - 1) * NEXMARK_TOTAL_PROPORTION;
    s->end = events < 0 ? -1 : events;
    s->rate = rate > 0 ? rate / p : 0;
    s->start_ms = time_mono_ms();
    return FLINT_OK;
}

static inline bool nexmark_done(const nexmark_source *s) { return s->end >= 0 && s->cur >= s->end; }

static int nexmark_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    nexmark_source *s = op->state;
    int64_t budget = EVENT_BATCH;
    if (s->rate > 0) {
        int64_t now = time_mono_ms();
        /* Events due by now; a backlog longer than a second (backpressure, a stopped task) is
         * forgotten rather than caught up in a burst. */
        int64_t due = (int64_t)((double)(now - s->start_ms) * s->rate / 1000.0) + 1;
        if (due - s->emitted > (int64_t)s->rate + 1) {
            s->start_ms = now - (int64_t)((double)s->emitted * 1000.0 / s->rate);
            due = s->emitted + 1;
        }
        if (due <= s->emitted) {
            *st = TM_SOURCE_WAIT;
            *wake = s->start_ms + (int64_t)ceil((double)s->emitted * 1000.0 / s->rate);
            if (*wake <= now) *wake = now + 1;
            return FLINT_OK;
        }
        if (due - s->emitted < budget) budget = due - s->emitted;
    }
    for (int64_t k = 0; k < budget && !nexmark_done(s); k++) {
        if (nexmark_gen_row(s->gen, s->cur, s->table, &s->b)) {
            flint_row row = flint_row_builder_row(&s->b);
            int rc = tm_op_emit(op, &row);
            if (rc) return rc;
        }
        s->emitted++;
        if (++s->cur == s->cycle_end) {
            if (s->cur > INT64_MAX - s->skip - NEXMARK_TOTAL_PROPORTION) {
                s->end = 0; /* the sequence is exhausted */
                break;
            }
            s->cur += s->skip;
            s->cycle_end = s->cur + NEXMARK_TOTAL_PROPORTION;
        }
    }
    *st = nexmark_done(s) ? TM_SOURCE_END : TM_SOURCE_MORE;
    return FLINT_OK;
}

/* Checkpoints (issue 6): the next event number as split "nexmark:<subtask>/<p>" (restored at
 * the same parallelism only: the cycles a subtask generates depend on it). */
static int nexmark_snapshot(tm_op *op, int64_t id, Flint__Checkpoint__OperatorSubtaskState *out) {
    nexmark_source *s = op->state;
    char split[64];
    snprintf(split, sizeof split, "nexmark:%d/%d", op->rt->subtask, op->rt->parallelism);
    tm_cp_add_split(out, split, s->cur, NULL, 0);
    return FLINT_OK;
}

static int nexmark_restore(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    nexmark_source *s = op->state;
    char want[64];
    snprintf(want, sizeof want, "nexmark:%d/%d", op->rt->subtask, op->rt->parallelism);
    for (size_t i = 0; i < r->n_source_splits; i++) {
        if (strcmp(r->source_splits[i]->split_id, want) != 0)
            return tm_op_fail(op, "cannot restore split '%s' as %s: Nexmark sources restore their positions at the "
                              "same parallelism only", r->source_splits[i]->split_id, want);
        int64_t cur = r->source_splits[i]->position;
        if (cur < 0) continue;
        s->cur = cur;
        s->cycle_end = (cur / NEXMARK_TOTAL_PROPORTION + 1) * NEXMARK_TOTAL_PROPORTION;
    }
    return FLINT_OK;
}

const tm_op_kind tm_op_SOURCE_NEXMARK = {
    .name = "source.nexmark", .open = nexmark_open, .produce = nexmark_produce, .close = nexmark_close,
    .snapshot_state = nexmark_snapshot, .initialize_state = nexmark_restore};

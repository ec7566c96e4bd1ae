/* source.nexmark: the Nexmark benchmark's events (common/nexmark) as rows of one table (person,
 * auction, bid, or all events as wide rows), parallel, bounded or not, optionally rate-limited.
 *
 * Splitting: the event sequence is cut into cycles of 50 events (1 person, 3 auctions, 46 bids);
 * the cycles are dealt out as stride splits (src_split.h): subtask i of p starts with split i/p,
 * the cycles i, i+p, i+2p, ... So every subtask gets the benchmark's mix, the union over subtasks
 * is the one sequence a single generator makes (events below `events` when bounded), and each
 * subtask's events are in event-time order, all subtasks advancing together along the one
 * timeline. A checkpoint records each split's next event; restored at another parallelism, a
 * subtask may own several splits (it generates them cycle by cycle in event order) or none.
 *
 * Every event is generated, whatever the table: the events of other types are generated and
 * dropped, as the benchmark's Flink source generates every event and the query filters, so that
 * events/s counts the same work (docs/nexmark.md). The rate counts events of every type over all
 * subtasks, each subtask's share by the splits it owns. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/cp_task.h"
#include "nexmark/nexmark.h"
#include "operators/operator.h"
#include "operators/src_split.h"
#include "util/alloc.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define EVENT_BATCH 512   /* events per produce() call: the mailbox is checked between batches */

typedef struct nexmark_source {
    nexmark_gen *gen;
    nexmark_table table;
    flint_row_builder b;
    bool has_b;
    nexmark_event dropped;  /* events of the other types are generated into it */
    src_splits splits;      /* positions: event numbers */
    src_split *sp;          /* the split being generated: the one of the lowest next event */
    int64_t end;            /* bound (exclusive), -1 when unbounded */
    double rate_total;      /* events/s over all subtasks, 0: unlimited */
    double rate;            /* events/s of this subtask (its splits' share), 0: unlimited */
    int64_t emitted, start_ms;  /* events generated (all types), for the rate */
} nexmark_source;

static void nexmark_close(tm_op *op) {
    nexmark_source *s = op->state;
    if (!s) return;
    if (s->has_b) flint_row_builder_free(&s->b);
    nexmark_gen_free(s->gen);
    src_splits_free(&s->splits);
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
    src_splits_init(&s->splits, "nexmark", NEXMARK_TOTAL_PROPORTION, i, p);
    s->end = events < 0 ? -1 : events;
    s->sp = src_splits_pick(&s->splits, s->end);
    s->rate_total = rate;
    s->rate = rate / p;
    s->start_ms = time_mono_ms();
    return FLINT_OK;
}

/* Past the last event of s->sp's cycle: on to the split's next cycle (m - 1 cycles on), then to
 * the split of the lowest next event. */
static void nexmark_next_cycle(nexmark_source *s) {
    src_split *sp = s->sp;
    int64_t skip = (sp->m - 1) * NEXMARK_TOTAL_PROPORTION;
    sp->next = sp->next > INT64_MAX - skip - NEXMARK_TOTAL_PROPORTION ? SRC_SPLIT_DONE : sp->next + skip;
    s->sp = src_splits_pick(&s->splits, s->end);
}

/* Events *n .. stop - 1 (OUT *n: the first one not emitted, stop unless the emission failed). */
static int nexmark_run(tm_op *op, nexmark_source *s, int64_t *n, int64_t stop) {
    nexmark_gen *gen = s->gen;
    nexmark_table table = s->table;
    flint_row_builder *b = &s->b;
    for (int64_t i = *n; i < stop; i++) {
        if (nexmark_gen_row(gen, i, table, b)) {
            flint_row row = flint_row_builder_row(b);
            int rc = tm_op_emit(op, &row);
            if (rc) {
                *n = i;
                return rc;
            }
        } else {
            nexmark_gen_event(gen, i, &s->dropped);
        }
    }
    *n = stop;
    return FLINT_OK;
}

static int nexmark_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    nexmark_source *s = op->state;
    int64_t budget = EVENT_BATCH;
    if (s->rate > 0 && s->sp && !(budget = src_rate_budget(s->rate, &s->start_ms, s->emitted, budget, wake))) {
        *st = TM_SOURCE_WAIT;
        return FLINT_OK;
    }
    while (budget > 0 && s->sp) {
        /* A run of the split's events up to the end of the cycle, the bound or the budget: nothing
         * is checked per event but the emission's status. */
        src_split *sp = s->sp;
        int64_t from = sp->next, run = NEXMARK_TOTAL_PROPORTION - from % NEXMARK_TOTAL_PROPORTION;
        if (run > budget) run = budget;
        if (s->end >= 0 && run > s->end - from) run = s->end - from;
        if (run > SRC_SPLIT_DONE - from) run = SRC_SPLIT_DONE - from;
        assert(run > 0);
        int64_t n = from;
        int rc = nexmark_run(op, s, &n, from + run);
        sp->next = n;
        s->emitted += n - from;
        if (rc) return rc;
        budget -= run;
        if (n % NEXMARK_TOTAL_PROPORTION == 0 || n == s->end || n == SRC_SPLIT_DONE) nexmark_next_cycle(s);
    }
    *st = s->sp ? TM_SOURCE_MORE : TM_SOURCE_END;
    return FLINT_OK;
}

/* Checkpoints (issue 6): the splits "nexmark:<r>/<m>" with their next event numbers. */
static int nexmark_snapshot(tm_op *op, int64_t id, Flint__Checkpoint__OperatorSubtaskState *out) {
    nexmark_source *s = op->state;
    return src_splits_snapshot(&s->splits, out);
}

static int nexmark_restore(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    nexmark_source *s = op->state;
    int rc = src_splits_restore(&s->splits, op, r);
    if (rc) return rc;
    s->sp = src_splits_pick(&s->splits, s->end);
    s->rate = s->rate_total * src_splits_share(&s->splits);
    return FLINT_OK;
}

const tm_op_kind tm_op_SOURCE_NEXMARK = {
    .name = "source.nexmark", .open = nexmark_open, .produce = nexmark_produce, .close = nexmark_close,
    .snapshot_state = nexmark_snapshot, .initialize_state = nexmark_restore};

/* Operators around one user function: map, flat_map, filter, process and sink.fn. Each resolves
 * its "fn" (and the optional "fn.open"/"fn.close") in the job's artifact when it opens; rows go to
 * the function by pointer, and a map's output builder is reused for every row. */
#include <stdlib.h>

#include "operators/operator.h"
#include "state/tm_state.h"
#include "util/alloc.h"

typedef struct udf_state {
    void (*fn)(void);
    flint_row_builder out;     /* map: the output row */
    flint_collector coll;      /* flat_map, process */
    int emit_rc;               /* the first failure of an emission inside the user function */
} udf_state;

static void collector_emit(flint_collector *c, const flint_row *row) {
    tm_op *op = c->rt;
    udf_state *s = op->state;
    if (s->emit_rc) return; /* downstream failed or the task is canceled: drop the rest */
    s->emit_rc = tm_op_emit(op, row);
}

static int udf_open(tm_op *op, bool needs_out) {
    udf_state *s = XNEW(udf_state);
    op->state = s;
    if (needs_out && !op->out_schema) return tm_op_fail(op, "the operator has no output schema");
    int rc = tm_op_symbol(op, "fn", true, &s->fn);
    if (rc) return rc;
    if (op->out_schema) {
        flint_row_builder_init(&s->out, op->out_schema);
        flint_row_builder_init(&s->coll.out, op->out_schema);
    }
    s->coll.emit = collector_emit;
    s->coll.rt = op;
    tm_op_collector_sides(op, &s->coll);   /* flint_side_out_row / flint_emit_side */
    if ((rc = tm_state_op_open(op, NULL))) return rc; /* operator list and broadcast state */
    return tm_op_udf_open(op);
}

static void udf_close(tm_op *op) {
    udf_state *s = op->state;
    if (!s) return;
    if (s->fn) tm_op_udf_close(op);
    tm_state_op_close(op, NULL);
    if (op->out_schema && s->out.schema) {
        flint_row_builder_free(&s->out);
        flint_row_builder_free(&s->coll.out);
    }
    free(s);
    op->state = NULL;
}

static int open_with_out(tm_op *op) { return udf_open(op, true); }
static int open_without_out(tm_op *op) { return udf_open(op, false); }

static int map_process(tm_op *op, const flint_row *in) {
    udf_state *s = op->state;
    flint_row_builder_reset(&s->out);
    ((flint_map_fn)s->fn)(&op->ctx, in, &s->out);
    if (op->ctx.failed) return tm_op_check_ctx(op);
    flint_row row = flint_row_builder_row(&s->out);
    return tm_op_emit(op, &row);
}

static int flat_map_process(tm_op *op, const flint_row *in) {
    udf_state *s = op->state;
    flint_row_builder_reset(&s->coll.out);
    ((flint_flat_map_fn)s->fn)(&op->ctx, in, &s->coll);
    if (op->ctx.failed) return tm_op_check_ctx(op);
    int rc = s->emit_rc;
    return rc ? rc : op->side_rc;
}

static int filter_process(tm_op *op, const flint_row *in) {
    udf_state *s = op->state;
    bool keep = ((flint_filter_fn)s->fn)(&op->ctx, in);
    if (op->ctx.failed) return tm_op_check_ctx(op);
    return keep ? tm_op_emit(op, in) : FLINT_OK;
}

static int sink_fn_process(tm_op *op, const flint_row *in) {
    udf_state *s = op->state;
    ((flint_sink_fn)s->fn)(&op->ctx, in);
    return op->ctx.failed ? tm_op_check_ctx(op) : FLINT_OK;
}

const tm_op_kind tm_op_MAP = {.name = "map", .open = open_with_out, .process = map_process, .close = udf_close};
const tm_op_kind tm_op_FLAT_MAP = {.name = "flat_map", .open = open_with_out, .process = flat_map_process, .close = udf_close};
const tm_op_kind tm_op_PROCESS = {.name = "process", .open = open_with_out, .process = flat_map_process, .close = udf_close};
const tm_op_kind tm_op_FILTER = {.name = "filter", .open = open_without_out, .process = filter_process, .close = udf_close};
const tm_op_kind tm_op_SINK_FN = {.name = "sink.fn", .open = open_without_out, .process = sink_fn_process, .close = udf_close};

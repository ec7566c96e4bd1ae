/* project: a projection planned once when the operator opens (what Flink generates for a SQL
 * SELECT of columns, or DataStream#project): each output field is an input field of the same
 * type ("fields": their indexes, in output order), copied with no check per field or row. */
#include <stdlib.h>

#include "operators/operator.h"
#include "row/row_key.h"
#include "util/alloc.h"

typedef struct project_state {
    flint_projection plan;
    flint_row_builder out;     /* the output row, reused */
    bool has_out;
} project_state;

static void project_close(tm_op *op) {
    project_state *s = op->state;
    if (!s) return;
    flint_projection_free(&s->plan);
    if (s->has_out) flint_row_builder_free(&s->out);
    free(s);
    op->state = NULL;
}

static int project_open(tm_op *op) {
    project_state *s = XNEW(project_state);
    op->state = s;
    if (!op->in_schema || !op->out_schema) return tm_op_fail(op, "the projection needs an input and an output schema");
    const char *text;
    int rc = tm_op_param_req(op, "fields", &text);
    if (rc) return rc;
    int from[FLINT_MAX_FIELDS];
    flint_err err = {0};
    int n = row_key_indexes_parse(text, flint_schema_field_count(op->in_schema), from, FLINT_MAX_FIELDS, &err);
    if (n < 0) return tm_op_fail(op, "parameter 'fields': %s", err.msg);
    if (flint_projection_plan(&s->plan, op->in_schema, op->out_schema, from, n, &err))
        return tm_op_fail(op, "parameter 'fields': %s", err.msg);
    flint_row_builder_init(&s->out, op->out_schema);
    s->has_out = true;
    return FLINT_OK;
}

static int project_process(tm_op *op, const flint_row *in) {
    project_state *s = op->state;
    flint_row_project(&s->out, &s->plan, in);
    flint_row row = flint_row_builder_row(&s->out);
    return tm_op_emit(op, &row);
}

const tm_op_kind tm_op_PROJECT = {.name = "project", .open = project_open, .process = project_process, .close = project_close};

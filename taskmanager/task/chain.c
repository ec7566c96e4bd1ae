/* Operator chains: building, opening, ending and closing the operators of a vertex (chain.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task/chain.h"
#include "util/alloc.h"

static void add_output(tm_op *op, tm_output out) {
    if (op->n_outs == op->cap_outs) {
        op->cap_outs = op->cap_outs ? op->cap_outs * 2 : 4;
        op->outs = xrealloc(op->outs, (size_t)op->cap_outs * sizeof *op->outs);
    }
    op->outs[op->n_outs++] = out;
}

/* tm_op_emit's direct call and one counter per hop: op's one output is the chained operator
 * next, op has no side outputs, and next no other input (nor a second one: process2). Then every
 * row op counts out is one row into next, and next's numRecordsIn is read from op's
 * numRecordsOut (tm_op.in_from). */
static void link_hop(tm_op *op) {
    tm_op *next = op->n_outs == 1 && op->n_sides == 0 ? op->outs[0].op : NULL;
    if (!next || next->n_inputs != 1 || next->kind->process2) return;
    op->only_out = next;
    op->only_out_process = next->kind->process;
    next->in_from = op;
}

/* An output added after the build (a network writer) ends op's direct hop, if it had one. */
static void unlink_hop(tm_op *op) {
    if (!op->only_out) return;
    op->only_out->in_from = NULL;
    op->only_out = NULL;
    op->only_out_process = NULL;
}

/* The side output of op tagged tag, made when missing. */
static tm_side_output *side_get(tm_op *op, const char *tag) {
    int i = tm_op_side_output(op, tag);
    if (i >= 0) return &op->sides[i];
    op->sides = xrealloc(op->sides, (size_t)(op->n_sides + 1) * sizeof *op->sides);
    tm_side_output *s = &op->sides[op->n_sides++];
    memset(s, 0, sizeof *s);
    s->tag = xstrdup(tag);
    return s;
}

static void side_add_output(tm_op *op, const char *tag, tm_output out) {
    tm_side_output *s = side_get(op, tag);
    if (s->n_outs == s->cap_outs) {
        s->cap_outs = s->cap_outs ? s->cap_outs * 2 : 2;
        s->outs = xrealloc(s->outs, (size_t)s->cap_outs * sizeof *s->outs);
    }
    s->outs[s->n_outs++] = out;
}

/* Side outputs declared by "side.<tag>" = schema parameters (flint_side_output). */
static int declare_sides(tm_op *op, flint_err *err) {
    const Flint__Graph__OperatorDef *d = op->def;
    for (size_t i = 0; i < d->n_params; i++) {
        const char *k = d->params[i]->key;
        if (!k || strncmp(k, "side.", 5) != 0 || !k[5]) continue;
        tm_side_output *s = side_get(op, k + 5);
        if (s->schema) continue;
        if (flint_schema_parse(d->params[i]->value, &s->schema, err)) {
            flint_err_prefix(err, "operator '%s': side output '%s' schema", d->name, k + 5);
            return FLINT_INVALID;
        }
        flint_row_builder_init(&s->b, s->schema);
    }
    return FLINT_OK;
}

static int parse_schema(const char *text, flint_schema **out, const char *what,
                        const Flint__Graph__OperatorDef *d, flint_err *err) {
    *out = NULL;
    if (!text || !text[0]) return FLINT_OK;
    if (flint_schema_parse(text, out, err)) {
        flint_err_prefix(err, "operator '%s': %s schema", d->name, what);
        return FLINT_INVALID;
    }
    return FLINT_OK;
}

int tm_chain_build(tm_chain *c, const Flint__Graph__JobVertex *v, tm_runtime *rt, flint_err *err) {
    memset(c, 0, sizeof *c);
    c->rt = rt;
    if (v->n_operators == 0) return flint_err_set(err, FLINT_INVALID, "vertex '%s' has no operators", v->name);
    c->n = (int)v->n_operators;
    c->ops = xcalloc((size_t)c->n, sizeof *c->ops);
    for (int i = 0; i < c->n; i++) {
        const Flint__Graph__OperatorDef *d = v->operators[i];
        tm_op *op = XNEW(tm_op);
        c->ops[i] = op;
        op->def = d;
        op->rt = rt;
        op->index = i;
        op->kind = tm_op_kind_find(d->kind);
        if (!op->kind) return flint_err_set(err, FLINT_UNSUPPORTED, "operator '%s': unknown kind '%s'", d->name, d->kind);
        if (parse_schema(d->input_schema, &op->in_schema, "input", d, err)) return FLINT_INVALID;
        if (parse_schema(d->output_schema, &op->out_schema, "output", d, err)) return FLINT_INVALID;
        op->ctx.subtask = rt->subtask;
        op->ctx.parallelism = rt->parallelism;
        op->ctx.task_name = rt->task_name;
        op->ctx.op_params = d->user_params;
        op->ctx.n_op_params = d->n_user_params;
        op->ctx.job_params = rt->job_params;
        op->ctx.n_job_params = rt->n_job_params;
        op->watermark = INT64_MIN;
        metric_gauge_init(&op->current_input_watermark, INT64_MIN);
        metric_gauge_init(&op->current_output_watermark, INT64_MIN);
        op->ctx.timestamp = &rt->timestamp;
        op->ctx.watermark = &op->watermark;
        if (declare_sides(op, err)) return FLINT_INVALID;
    }
    c->ops[0]->n_inputs = 1;
    for (int i = 0; i < c->n; i++) {
        const Flint__Graph__OperatorDef *d = v->operators[i];
        for (size_t j = 0; j < d->n_chained_outputs; j++) {
            int t = d->chained_outputs[j];
            if (t <= 0 || t >= c->n || t == i)
                return flint_err_set(err, FLINT_INVALID, "operator '%s': chained output %d out of range", d->name, t);
            const char *tag = j < d->n_chained_output_tags ? d->chained_output_tags[j] : "";
            if (tag && tag[0]) side_add_output(c->ops[i], tag, (tm_output){.op = c->ops[t]});
            else add_output(c->ops[i], (tm_output){.op = c->ops[t]});
            c->ops[t]->n_inputs++;
        }
    }
    for (int i = 1; i < c->n; i++)
        if (c->ops[i]->n_inputs == 0)
            return flint_err_set(err, FLINT_INVALID, "operator '%s' of vertex '%s' has no input", v->operators[i]->name,
                                 v->name);
    for (int i = 0; i < c->n; i++) link_hop(c->ops[i]);
    return FLINT_OK;
}

void tm_chain_add_output(tm_chain *c, int op, tm_output_fn fn, void *ud) {
    assert(op >= 0 && op < c->n && fn);
    unlink_hop(c->ops[op]);
    add_output(c->ops[op], (tm_output){.fn = fn, .ud = ud});
}

void tm_chain_add_output_tagged(tm_chain *c, int op, const tm_output *out, const char *tag) {
    assert(op >= 0 && op < c->n && out && out->fn);
    unlink_hop(c->ops[op]);
    if (tag && tag[0]) side_add_output(c->ops[op], tag, *out);
    else add_output(c->ops[op], *out);
}

int tm_chain_open(tm_chain *c) {
    for (int i = c->n - 1; i >= 0; i--) {
        tm_op *op = c->ops[i];
        int rc = op->kind->open ? op->kind->open(op) : FLINT_OK;
        if (rc) {
            if (!c->rt->failed) tm_op_fail(op, "cannot open (%s)", flint_strerror(rc));
            /* The kind's close still runs (its state may be half made); fn.close does not. */
            if (op->kind->close) op->kind->close(op);
            op->state = NULL;
            op->kind = NULL;
            return rc;
        }
        op->opened = true;
    }
    return FLINT_OK;
}

static int end_op(tm_op *op) {
    if (++op->ended_inputs < op->n_inputs) return FLINT_OK;
    if (op->kind->end_input) {
        int rc = op->kind->end_input(op);
        if (rc) return rc;
    }
    for (int i = 0; i < op->n_outs; i++) {
        if (!op->outs[i].op) continue;
        int rc = end_op(op->outs[i].op);
        if (rc) return rc;
    }
    return FLINT_OK;
}

int tm_chain_end_input(tm_chain *c) {
    return c->n ? end_op(c->ops[0]) : FLINT_OK;
}

void tm_chain_close(tm_chain *c) {
    for (int i = 0; i < c->n; i++) {
        tm_op *op = c->ops[i];
        if (!op) continue;
        if (op->opened && op->kind->close) op->kind->close(op);
        flint_schema_free(op->in_schema);
        flint_schema_free(op->out_schema);
        for (int s = 0; s < op->n_sides; s++) {
            tm_side_output *so = &op->sides[s];
            if (so->schema) flint_row_builder_free(&so->b);
            flint_schema_free(so->schema);
            free(so->tag);
            free(so->outs);
        }
        free(op->sides);
        free(op->outs);
        free(op);
    }
    free(c->ops);
    memset(c, 0, sizeof *c);
}

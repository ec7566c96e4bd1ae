/* The operator registry (one callback table per catalog kind) and what every operator uses:
 * emission to its outputs, failures, parameters and user-function symbols (see operator.h). */
#include <assert.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operators/operator.h"
#include "util/strutil.h"
#include "util/timeutil.h"

FILE *tm_print_out;

/* Each family file defines tm_op_<ID> for the kinds it implements: a kind of the catalog without
 * an implementation is a link error. */
#define OP_KIND(id, name, role) extern const tm_op_kind tm_op_##id;
#include "graph/op_kinds.def"
#undef OP_KIND

static const tm_op_kind *const kinds[] = {
#define OP_KIND(id, name, role) &tm_op_##id,
#include "graph/op_kinds.def"
#undef OP_KIND
};

const tm_op_kind *tm_op_kind_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

static inline int emit_outs(tm_op *op, tm_output *outs, int n, const flint_row *row) {
    /* Every output sees the timestamp the row was emitted with, whatever an earlier output did
     * to rt->timestamp. */
    int64_t ts = op->rt->timestamp;
    int rc = FLINT_OK;
    metric_counter_inc(&op->num_records_out);
    for (int i = 0; i < n && !rc; i++) {
        tm_output *o = &outs[i];
        op->rt->timestamp = ts;
        rc = o->op ? tm_op_process(o->op, row) : o->fn(o->ud, row);
    }
    op->rt->timestamp = ts;
    return rc;
}

int tm_op_emit_ts(tm_op *op, const flint_row *row, int64_t timestamp) {
    int64_t saved = op->rt->timestamp;
    op->rt->timestamp = timestamp;
    int rc = emit_outs(op, op->outs, op->n_outs, row);
    op->rt->timestamp = saved;
    return rc;
}

int tm_op_emit_outs_(tm_op *op, const flint_row *row) {
    return emit_outs(op, op->outs, op->n_outs, row);
}

int tm_op_side_output(const tm_op *op, const char *tag) {
    if (!tag) return -1;
    for (int i = 0; i < op->n_sides; i++)
        if (strcmp(op->sides[i].tag, tag) == 0) return i;
    return -1;
}

int tm_op_emit_side(tm_op *op, int side, const flint_row *row) {
    if (side < 0 || side >= op->n_sides) return FLINT_OK;
    return emit_outs(op, op->sides[side].outs, op->sides[side].n_outs, row);
}

static int wm_outs(tm_output *outs, int n, int64_t wm) {
    for (int i = 0; i < n; i++) {
        tm_output *o = &outs[i];
        int rc = o->op ? tm_op_watermark(o->op, wm) : o->wm_fn ? o->wm_fn(o->ud, wm) : FLINT_OK;
        if (rc) return rc;
    }
    return FLINT_OK;
}

int tm_op_emit_watermark(tm_op *op, int64_t wm) {
    metric_gauge_set(&op->current_output_watermark, wm);
    int rc = wm_outs(op->outs, op->n_outs, wm);
    for (int s = 0; !rc && s < op->n_sides; s++) rc = wm_outs(op->sides[s].outs, op->sides[s].n_outs, wm);
    return rc;
}

static int idle_outs(tm_output *outs, int n, bool idle) {
    for (int i = 0; i < n; i++) {
        tm_output *o = &outs[i];
        int rc = o->op ? tm_op_emit_idle(o->op, idle) : o->idle_fn ? o->idle_fn(o->ud, idle) : FLINT_OK;
        if (rc) return rc;
    }
    return FLINT_OK;
}

int tm_op_emit_idle(tm_op *op, bool idle) {
    int rc = idle_outs(op->outs, op->n_outs, idle);
    for (int s = 0; !rc && s < op->n_sides; s++) rc = idle_outs(op->sides[s].outs, op->sides[s].n_outs, idle);
    return rc;
}

int tm_op_watermark(tm_op *op, int64_t wm) {
    if (wm <= op->watermark) return FLINT_OK;
    op->watermark = wm;
    metric_gauge_set(&op->current_input_watermark, wm);
    if (op->timers) {
        int rc = tm_timer_queue_advance_watermark(op->timers, wm);
        if (rc) return rc;
    }
    if (op->kind->watermark) return op->kind->watermark(op, wm);
    return tm_op_emit_watermark(op, wm);
}

static int op_fire_timer(void *owner, const tm_timer *t) {
    tm_op *op = owner;
    if (!op->kind->on_timer) return tm_op_fail(op, "a timer fired, but the operator has no on_timer");
    int64_t saved = op->rt->timestamp;
    op->rt->timestamp = t->domain == FLINT_EVENT_TIME ? t->time : FLINT_NO_TIMESTAMP;
    int rc = op->kind->on_timer(op, t);
    op->rt->timestamp = saved;
    return rc;
}

tm_timer_queue *tm_op_timers(tm_op *op) {
    if (!op->timers && op->rt->timers) op->timers = tm_timers_queue_new(op->rt->timers, op, op_fire_timer);
    return op->timers;
}

static void runtime_fail(tm_runtime *rt, int code, const char *msg) {
    if (rt->failed) return;
    rt->failed = true;
    rt->err.code = code;
    snprintf(rt->err.msg, sizeof rt->err.msg, "%s", msg);
}

int tm_op_fail(tm_op *op, const char *fmt, ...) {
    char msg[sizeof op->rt->err.msg];
    int n = snprintf(msg, sizeof msg, "%s: ", op->def->name && op->def->name[0] ? op->def->name
                                                                                 : op->kind->name);
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    runtime_fail(op->rt, FLINT_ERR, msg);
    return FLINT_ERR;
}

int tm_op_check_ctx(tm_op *op) {
    if (!op->ctx.failed) return FLINT_OK;
    return tm_op_fail(op, "%s", op->ctx.error);
}

static const char *kv_get(Flint__Graph__KeyValue *const *kv, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (kv[i]->key && strcmp(kv[i]->key, key) == 0) return kv[i]->value;
    return NULL;
}

const char *tm_op_param(const tm_op *op, const char *key) {
    return kv_get(op->def->params, op->def->n_params, key);
}

int tm_op_param_req(tm_op *op, const char *key, const char **out) {
    *out = tm_op_param(op, key);
    if (!*out) return tm_op_fail(op, "parameter '%s' is missing", key);
    return FLINT_OK;
}

int tm_op_param_int(tm_op *op, const char *key, int64_t def, int64_t *out) {
    const char *v = tm_op_param(op, key);
    *out = def;
    if (!v || !v[0]) return FLINT_OK;
    if (str_parse_int(v, out)) return tm_op_fail(op, "parameter '%s': expected an integer, got '%s'", key, v);
    return FLINT_OK;
}

int tm_runtime_symbol(tm_runtime *rt, const char *name, void (**fn)(void), flint_err *err) {
    void *p = NULL;
    if (rt->resolve) p = rt->resolve(rt->resolve_ud, name);
    else if (rt->dl) p = dlsym(rt->dl, name);
    if (!p) {
        if (!rt->dl && !rt->resolve)
            return flint_err_set(err, FLINT_NOT_FOUND, "user function '%s' not found: the job has no artifact", name);
        return flint_err_set(err, FLINT_NOT_FOUND, "user function '%s' not found in artifact %s", name,
                             rt->artifact && rt->artifact[0] ? rt->artifact : "(none)");
    }
    /* Object pointer to function pointer, as dlsym's users must. */
    memcpy(fn, &p, sizeof p);
    return FLINT_OK;
}

int tm_op_symbol(tm_op *op, const char *param, bool required, void (**fn)(void)) {
    *fn = NULL;
    const char *name = tm_op_param(op, param);
    if (!name || !name[0]) {
        if (required) return tm_op_fail(op, "parameter '%s' is missing", param);
        return FLINT_OK;
    }
    flint_err err = {0};
    if (tm_runtime_symbol(op->rt, name, fn, &err)) return tm_op_fail(op, "%s", err.msg);
    return FLINT_OK;
}

int tm_op_udf_open(tm_op *op) {
    void (*fn)(void);
    int rc = tm_op_symbol(op, "fn.open", false, &fn);
    if (rc || !fn) return rc;
    int r = ((flint_open_fn)fn)(&op->ctx);
    if (op->ctx.failed) return tm_op_check_ctx(op);
    if (r) return tm_op_fail(op, "open function '%s' failed (returned %d)", tm_op_param(op, "fn.open"), r);
    return FLINT_OK;
}

void tm_op_udf_close(tm_op *op) {
    if (!op->opened) return;
    void (*fn)(void);
    if (tm_op_symbol(op, "fn.close", false, &fn) || !fn) return;
    ((flint_close_fn)fn)(&op->ctx);
    tm_op_check_ctx(op);
}

/* ---- side outputs of UDF collectors ------------------------------------------------------------ */

static flint_row_builder *coll_side_row(flint_collector *c, const char *tag) {
    tm_op *op = c->rt;
    int s = tm_op_side_output(op, tag);
    if (s < 0 || !op->sides[s].schema) {
        flint_ctx_fail(&op->ctx, "side output '%s' is not declared (flint_side_output on this operator's stream)",
                       tag ? tag : "(null)");
        return NULL;
    }
    flint_row_builder_reset(&op->sides[s].b);
    return &op->sides[s].b;
}

static void coll_side_emit(flint_collector *c, const char *tag) {
    tm_op *op = c->rt;
    int s = tm_op_side_output(op, tag);
    if (s < 0 || !op->sides[s].schema) {
        flint_ctx_fail(&op->ctx, "side output '%s' is not declared (flint_side_output on this operator's stream)",
                       tag ? tag : "(null)");
        return;
    }
    if (op->side_rc) return;
    flint_row row = flint_row_builder_row(&op->sides[s].b);
    op->side_rc = tm_op_emit_side(op, s, &row);
}

void tm_op_collector_sides(tm_op *op, flint_collector *c) {
    c->side_row = coll_side_row;
    c->side_emit = coll_side_emit;
}

/* ---- periodic actions ---------------------------------------------------------------------------- */

void tm_op_every(tm_op *op, int64_t interval_ms, tm_tick_fn fn) {
    tm_runtime *rt = op->rt;
    if (interval_ms < 1) interval_ms = 1;
    rt->ticks = realloc(rt->ticks, (size_t)(rt->n_ticks + 1) * sizeof *rt->ticks);
    if (!rt->ticks) abort();
    rt->ticks[rt->n_ticks++] = (tm_tick){op, fn, interval_ms, time_mono_ms() + interval_ms};
}

int64_t tm_runtime_next_tick(const tm_runtime *rt) {
    int64_t next = INT64_MAX;
    for (int i = 0; i < rt->n_ticks; i++)
        if (rt->ticks[i].next_ms < next) next = rt->ticks[i].next_ms;
    return next;
}

int tm_runtime_run_ticks(tm_runtime *rt, int64_t now_ms, int64_t *next_ms) {
    for (int i = 0; i < rt->n_ticks; i++) {
        tm_tick *t = &rt->ticks[i];
        if (t->next_ms > now_ms) continue;
        t->next_ms += t->interval_ms;
        if (t->next_ms <= now_ms) t->next_ms = now_ms + t->interval_ms;   /* fell behind: skip */
        if (!t->op->opened) continue;
        int rc = t->fn(t->op, now_ms);
        if (rc) return rc;
    }
    if (next_ms) *next_ms = tm_runtime_next_tick(rt);
    return FLINT_OK;
}

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

int tm_op_emit(tm_op *op, const flint_row *row) {
    for (int i = 0; i < op->n_outs; i++) {
        tm_output *o = &op->outs[i];
        int rc = o->op ? tm_op_process(o->op, row) : o->fn(o->ud, row);
        if (rc) return rc;
    }
    return FLINT_OK;
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

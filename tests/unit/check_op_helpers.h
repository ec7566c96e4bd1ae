/* Shared helpers of the operator unit suites (check_tm_ops.c, check_time.c, check_window.c,
 * check_kafka.c): operator definitions built in code, as the graph compiler would send them, and
 * a log of what a chain's last operator gives out. Header-only; each suite includes it once. */
#ifndef FLINT_CHECK_OP_HELPERS_H
#define FLINT_CHECK_OP_HELPERS_H

#include <assert.h>
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jobgraph.pb-c.h"
#include "operators/operator.h"
#include "util/alloc.h"

/* One operator parameter, owned by the message it is put in. */
static inline Flint__Graph__KeyValue *kv(const char *k, const char *v) {
    Flint__Graph__KeyValue *p = XNEW(Flint__Graph__KeyValue);
    flint__graph__key_value__init(p);
    p->key = xstrdup(k);
    p->value = xstrdup(v);
    return p;
}

/* mkop with the parameters as a va_list of key, value pairs ended by a NULL key. A NULL value
 * leaves its key out, so a test can make a parameter optional. */
static inline Flint__Graph__OperatorDef *mkopv(const char *kind, const char *in, const char *out,
                                               va_list ap) {
    Flint__Graph__OperatorDef *d = XNEW(Flint__Graph__OperatorDef);
    flint__graph__operator_def__init(d);
    d->kind = xstrdup(kind);
    d->name = xstrdup(kind);
    d->input_schema = xstrdup(in);
    d->output_schema = xstrdup(out);
    va_list count;
    va_copy(count, ap);
    size_t n = 0;
    while (va_arg(count, const char *)) {
        (void)va_arg(count, const char *);
        n++;
    }
    va_end(count);
    d->params = xcalloc(n + 1, sizeof *d->params);
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        if (v) d->params[d->n_params++] = kv(k, v);
    }
    assert(d->n_params <= n);
    return d;
}

/* An operator: kind, input and output schema ("" for none), then key/value params, NULL-ended.
 * Free with flint__graph__operator_def__free_unpacked (or with the vertex that holds it). */
static inline Flint__Graph__OperatorDef *mkop(const char *kind, const char *in, const char *out, ...) {
    va_list ap;
    va_start(ap, out);
    Flint__Graph__OperatorDef *d = mkopv(kind, in, out, ap);
    va_end(ap);
    return d;
}

/* ---- what a chain gives out ---- */

#define OUT_LOG_LINES 512

/* What the chain's last operator gives out, a line each: rows ("<fields> @<timestamp>" when the
 * row has one), watermarks ("WM <ms>", "WM MAX") and statuses ("IDLE", "ACTIVE"). rt is the
 * chain's runtime, for the timestamps. */
typedef struct out_log {
    char lines[OUT_LOG_LINES][128];
    int n;
    tm_runtime *rt;
} out_log;

static inline void out_add(out_log *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void out_add(out_log *o, const char *fmt, ...) {
    ck_assert_int_lt(o->n, OUT_LOG_LINES);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->lines[o->n++], sizeof o->lines[0], fmt, ap);
    va_end(ap);
}

/* tm_output callbacks with an out_log as ud. */
static inline int out_row(void *ud, const flint_row *row) {
    out_log *o = ud;
    char buf[100];
    flint_row_format(row, " ", buf, sizeof buf);
    if (o->rt->timestamp == FLINT_NO_TIMESTAMP) out_add(o, "%s", buf);
    else out_add(o, "%s @%lld", buf, (long long)o->rt->timestamp);
    return FLINT_OK;
}
static inline int out_wm(void *ud, int64_t wm) {
    out_add(ud, wm == FLINT_MAX_WATERMARK ? "WM MAX" : "WM %lld", (long long)wm);
    return FLINT_OK;
}
static inline int out_idle(void *ud, bool idle) {
    out_add(ud, idle ? "IDLE" : "ACTIVE");
    return FLINT_OK;
}

/* Asserts that o holds exactly the n lines given. */
static inline void expect_out(const out_log *o, int n, ...) {
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < o->n; i++) {
        const char *want = va_arg(ap, const char *);
        ck_assert_msg(strcmp(o->lines[i], want) == 0, "line %d: '%s', expected '%s'", i, o->lines[i], want);
    }
    va_end(ap);
    ck_assert_msg(o->n == n, "%d lines, expected %d (last: '%s')", o->n, n, o->n ? o->lines[o->n - 1] : "");
}

#endif

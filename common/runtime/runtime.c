/* The runtime side of the public job API over the layouts of runtime.h (see there for why these
 * live in libflint rather than in the taskmanager). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/runtime.h"

flint_row_builder *flint_out_row(flint_collector *out) {
    assert(out);
    flint_row_builder_reset(&out->out);
    return &out->out;
}

void flint_emit(flint_collector *out) {
    assert(out && out->emit);
    flint_row row = flint_row_builder_row(&out->out);
    out->emit(out, &row);
}

void flint_emit_row(flint_collector *out, const flint_row *row) {
    assert(out && out->emit && row);
    out->emit(out, row);
}

int flint_ctx_subtask(const flint_ctx *ctx) { return ctx->subtask; }
int flint_ctx_parallelism(const flint_ctx *ctx) { return ctx->parallelism; }
const char *flint_ctx_task_name(const flint_ctx *ctx) { return ctx->task_name ? ctx->task_name : ""; }

static const char *kv_find(Flint__Graph__KeyValue *const *kv, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0) return kv[i]->value;
    return NULL;
}

const char *flint_ctx_param(const flint_ctx *ctx, const char *key) {
    if (!key) return NULL;
    const char *v = kv_find(ctx->op_params, ctx->n_op_params, key);
    return v ? v : kv_find(ctx->job_params, ctx->n_job_params, key);
}

void flint_ctx_set_user_data(flint_ctx *ctx, void *data) { ctx->user_data = data; }
void *flint_ctx_user_data(const flint_ctx *ctx) { return ctx->user_data; }

void flint_ctx_fail(flint_ctx *ctx, const char *fmt, ...) {
    if (ctx->failed) return;
    ctx->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt ? fmt : "(no message)", ap);
    va_end(ap);
    if (!ctx->error[0]) snprintf(ctx->error, sizeof ctx->error, "flint_ctx_fail without a message");
}

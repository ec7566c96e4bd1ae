/* The runtime side of the public job API over the layouts of runtime.h (see there for why these
 * live in libflint rather than in the taskmanager). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* ---- event time, keys, timers, side outputs (issue 5) --------------------------------------------- */

int64_t flint_ctx_timestamp(const flint_ctx *ctx) {
    return ctx->timestamp ? *ctx->timestamp : FLINT_NO_TIMESTAMP;
}

int64_t flint_ctx_current_watermark(const flint_ctx *ctx) {
    return ctx->watermark ? *ctx->watermark : INT64_MIN;
}

int64_t flint_ctx_current_processing_time(const flint_ctx *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

flint_row flint_ctx_current_key(const flint_ctx *ctx) {
    if (!ctx->current_key.schema) flint_ctx_fail((flint_ctx *)ctx, "flint_ctx_current_key: the operator is not keyed");
    return ctx->current_key;
}

static void timer_call(flint_ctx *ctx, flint_time_domain d, int64_t time, bool del, const char *what) {
    if (!ctx->timer_ops) {
        flint_ctx_fail(ctx, "%s: timers are only available in keyed process functions (flint_keyed_process, "
                       "flint_co_process on flint_connect_keyed)", what);
        return;
    }
    ctx->timer_ops->timer(ctx->timer_ud, d, time, del);
}

void flint_timer_register_event_time(flint_ctx *ctx, int64_t timestamp) {
    timer_call(ctx, FLINT_EVENT_TIME, timestamp, false, "flint_timer_register_event_time");
}
void flint_timer_delete_event_time(flint_ctx *ctx, int64_t timestamp) {
    timer_call(ctx, FLINT_EVENT_TIME, timestamp, true, "flint_timer_delete_event_time");
}
void flint_timer_register_processing_time(flint_ctx *ctx, int64_t timestamp) {
    timer_call(ctx, FLINT_PROCESSING_TIME, timestamp, false, "flint_timer_register_processing_time");
}
void flint_timer_delete_processing_time(flint_ctx *ctx, int64_t timestamp) {
    timer_call(ctx, FLINT_PROCESSING_TIME, timestamp, true, "flint_timer_delete_processing_time");
}

flint_row_builder *flint_side_out_row(flint_collector *out, const char *tag) {
    assert(out);
    return out->side_row ? out->side_row(out, tag) : NULL;
}

void flint_emit_side(flint_collector *out, const char *tag) {
    assert(out);
    if (out->side_emit) out->side_emit(out, tag);
}

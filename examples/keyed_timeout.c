/* KeyedTimeout: alert when a key sees no event for N ms of event time (event-time timers and
 * value state in a keyed process function).
 *
 *   flint run build/examples/keyed_timeout.so --input FILE --output DIR --timeout-ms N
 *
 * Input lines are "<timestamp_ms> <key>" (other lines are skipped). Event time comes from the
 * timestamps, with no out-of-orderness allowed (watermark = the largest timestamp so far - 1).
 * For every key the job remembers the last timestamp seen and keeps one event-time timer at
 * last + N; when the watermark passes it (no event of that key in (last, last + N]) it writes
 * "<key> <last_seen_ts>" to DIR/part-<subtask>. An event that arrives after its key's timeout but
 * before the watermark fired the timer alerts at once, so the output does not depend on when
 * watermarks travel. At the end of the input the watermark jumps to the end of time, so every
 * key's last event alerts too. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* The timeout, from the job parameter "timeout.ms". */
static int64_t timeout_ms(flint_ctx *ctx) {
    const char *v = flint_ctx_param(ctx, "timeout.ms");
    return v ? strtoll(v, NULL, 10) : 1000;
}

/* flat_map: "<ts> <key>" -> (ts, key); anything else is skipped. */
void parse_event(flint_ctx *ctx, const flint_row *line, flint_collector *out) {
    (void)ctx;
    size_t len;
    const char *s = flint_row_get_string(line, 0, &len);
    size_t i = 0;
    while (i < len && s[i] == ' ') i++;
    int64_t ts = 0;
    size_t digits = 0;
    bool neg = i < len && s[i] == '-';
    if (neg) i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) ts = ts * 10 + (s[i] - '0');
    if (!digits || i >= len || s[i] != ' ') return;
    while (i < len && s[i] == ' ') i++;
    size_t k = i;
    while (i < len && s[i] != ' ' && s[i] != '\r') i++;
    if (i == k) return;
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_long(b, 0, neg ? -ts : ts);
    flint_row_set_string(b, 1, s + k, i - k);
    flint_emit(out);
}

/* Per subtask: the value state "last" (the key's last timestamp) and a builder for its rows. */
typedef struct timeout_data {
    flint_state *last;
    flint_schema *schema;
    flint_row_builder b;
} timeout_data;

int timeout_open(flint_ctx *ctx) {
    timeout_data *d = calloc(1, sizeof *d);
    flint_err err = {0};
    if (!d || flint_schema_parse("last BIGINT", &d->schema, &err)) {
        free(d);
        return 1;
    }
    flint_row_builder_init(&d->b, d->schema);
    flint_state_desc desc = {.name = "last", .schema = "last BIGINT"};
    d->last = flint_state_value(ctx, &desc);
    flint_ctx_set_user_data(ctx, d);
    return d->last ? 0 : 1;
}

void timeout_close(flint_ctx *ctx) {
    timeout_data *d = flint_ctx_user_data(ctx);
    if (!d) return;
    flint_row_builder_free(&d->b);
    flint_schema_free(d->schema);
    free(d);
}

static void alert(flint_ctx *ctx, int64_t last, flint_collector *out) {
    flint_row key = flint_ctx_current_key(ctx);
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, &key, 0);
    flint_row_set_long(b, 1, last);
    flint_emit(out);
}

static void store_last(timeout_data *d, int64_t v) {
    flint_row_builder_reset(&d->b);
    flint_row_set_long(&d->b, 0, v);
    flint_row row = flint_row_builder_row(&d->b);
    flint_value_update(d->last, &row);
}

/* keyed_process on (ts, key) keyed by key. */
void on_event(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)in;
    timeout_data *d = flint_ctx_user_data(ctx);
    int64_t n = timeout_ms(ctx), ts = flint_ctx_timestamp(ctx);
    flint_row prev;
    if (flint_value_get(d->last, &prev)) {
        int64_t last = flint_row_get_long(&prev, 0);
        if (ts <= last) return;                            /* late or repeated: nothing new */
        flint_timer_delete_event_time(ctx, last + n);
        if (ts > last + n) alert(ctx, last, out);          /* timed out, timer not fired yet */
    }
    store_last(d, ts);
    flint_timer_register_event_time(ctx, ts + n);
}

void on_timeout(flint_ctx *ctx, int64_t time, flint_time_domain domain, flint_collector *out) {
    (void)domain;
    timeout_data *d = flint_ctx_user_data(ctx);
    flint_row prev;
    if (!flint_value_get(d->last, &prev)) return;
    int64_t last = flint_row_get_long(&prev, 0);
    if (last + timeout_ms(ctx) != time) return;            /* an older timer */
    alert(ctx, last, out);
    flint_state_clear(d->last);
}

static const char usage[] = "usage: keyed_timeout.so --input FILE --output DIR --timeout-ms N";

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *input = NULL, *output = NULL, *timeout = NULL;
    for (int i = 1; i < argc; i++) {
        const char **dst = strcmp(argv[i], "--input") == 0 ? &input
                           : strcmp(argv[i], "--output") == 0 ? &output
                           : strcmp(argv[i], "--timeout-ms") == 0 ? &timeout
                                                                  : NULL;
        if (!dst) {
            flint_env_fail(env, "unknown argument '%s'; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        *dst = argv[++i];
    }
    char *end = NULL;
    long long n = timeout ? strtoll(timeout, &end, 10) : -1;
    if (!input || !output || !timeout || *end || n <= 0) {
        flint_env_fail(env, "%s (N > 0)", usage);
        return FLINT_INVALID;
    }
    flint_env_set_param(env, "timeout.ms", timeout);

    /* Source, parser and timestamps at parallelism 1: each key's events stay in file order. */
    flint_stream *lines = flint_source_text_file(env, input);
    flint_stream *events = flint_set_parallelism(
        flint_name(flint_flat_map(lines, FLINT_FN(parse_event), "ts BIGINT, key STRING"), "Parse"), 1);
    flint_watermark_strategy ws = {.timestamp_field = "ts", .max_out_of_orderness_ms = 0};
    flint_stream *timed = flint_set_parallelism(flint_assign_timestamps_and_watermarks(events, ws), 1);
    flint_stream *alerts = flint_keyed_process(flint_key_by(timed, "key"), FLINT_FN(on_event),
                                               FLINT_FN(on_timeout), "key STRING, last_seen BIGINT");
    alerts = flint_with_close(flint_with_open(flint_name(alerts, "Timeouts"), FLINT_FN(timeout_open)),
                              FLINT_FN(timeout_close));
    flint_sink_text_file(alerts, output);
    return flint_execute(env, "Keyed Timeout");
}

/* KeyedCount: counts the occurrences of each key of a text file, exactly once across failures.
 *
 *   flint run build/examples/keyed_count.so --input FILE --output DIR [--input FILE2 --output DIR2 ...]
 *                                           [--records-per-second N]
 *
 * Each line of FILE is a key (surrounding blanks dropped, empty lines skipped). For every line the
 * job writes "<key> <n>" where n counts that key's lines so far, so for a key seen n times the
 * output holds "<key> 1" ... "<key> n", each once. The text file source is replayable (checkpoints
 * record its offset), the count is value state of a keyed process function, and the sink is the
 * exactly-once file sink (part files DIR/part-<subtask>-<n>, committed when a checkpoint
 * completes): with checkpointing on (-D execution.checkpointing.interval=200ms) the committed
 * output stays exact when taskmanagers fail and the job restarts from its latest checkpoint.
 * --records-per-second limits each source's rate (so that a test can kill a taskmanager mid-run).
 * Each further --input/--output pair adds an independent pipeline of its own (a bounded job whose
 * pipelines, and so sink subtasks, finish at different times). Operators carry uids (those of the
 * first pipeline unsuffixed), so savepoints restore into the job at another parallelism. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* flat_map: a line -> its key (blanks around it dropped); empty lines give nothing. */
void parse_key(flint_ctx *ctx, const flint_row *line, flint_collector *out) {
    (void)ctx;
    size_t len;
    const char *s = flint_row_get_string(line, 0, &len);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) len--;
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    if (!len) return;
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_string(b, 0, s, len);
    flint_emit(out);
}

/* Per subtask: the value state "count" and a builder for its rows. */
typedef struct count_data {
    flint_state *count;
    flint_schema *schema;
    flint_row_builder b;
} count_data;

int count_open(flint_ctx *ctx) {
    count_data *d = calloc(1, sizeof *d);
    flint_err err = {0};
    if (!d || flint_schema_parse("n BIGINT", &d->schema, &err)) {
        free(d);
        return 1;
    }
    flint_row_builder_init(&d->b, d->schema);
    flint_state_desc desc = {.name = "count", .schema = "n BIGINT"};
    d->count = flint_state_value(ctx, &desc);
    flint_ctx_set_user_data(ctx, d);
    return d->count ? 0 : 1;
}

void count_close(flint_ctx *ctx) {
    count_data *d = flint_ctx_user_data(ctx);
    if (!d) return;
    flint_row_builder_free(&d->b);
    flint_schema_free(d->schema);
    free(d);
}

/* keyed_process on (key) keyed by key: count + 1, emit (key, count). */
void count_key(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    count_data *d = flint_ctx_user_data(ctx);
    flint_row prev;
    int64_t n = flint_value_get(d->count, &prev) ? flint_row_get_long(&prev, 0) + 1 : 1;
    flint_row_builder_reset(&d->b);
    flint_row_set_long(&d->b, 0, n);
    flint_row v = flint_row_builder_row(&d->b);
    flint_value_update(d->count, &v);
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, in, 0);
    flint_row_set_long(b, 1, n);
    flint_emit(out);
}

#define MAX_PIPELINES 8

static const char usage[] =
    "usage: keyed_count.so --input FILE --output DIR [--input FILE --output DIR ...] [--records-per-second N]";

/* The uid of operator what of pipeline i: "keyed-count-<what>", then "...-<what>-<i>". */
static const char *uid(char *buf, size_t len, const char *what, int i) {
    if (i == 0) snprintf(buf, len, "keyed-count-%s", what);
    else snprintf(buf, len, "keyed-count-%s-%d", what, i);
    return buf;
}

/* One pipeline: lines of input, keyed counts into output. */
static void pipeline(flint_env *env, const char *input, const char *output, double rps, int i) {
    char u[64];
    flint_stream *lines = flint_uid(flint_source_text_file_rate(env, input, rps), uid(u, sizeof u, "source", i));
    flint_stream *keys = flint_uid(flint_name(flint_flat_map(lines, FLINT_FN(parse_key), "key STRING"), "Parse"),
                                   uid(u, sizeof u, "parse", i));
    flint_stream *counts = flint_keyed_process(flint_key_by(keys, "key"), FLINT_FN(count_key), (flint_fn){0},
                                               "key STRING, n BIGINT");
    counts = flint_with_close(flint_with_open(flint_name(counts, "Count"), FLINT_FN(count_open)),
                              FLINT_FN(count_close));
    flint_uid(counts, uid(u, sizeof u, "count", i));
    flint_uid(flint_sink_file_exactly_once(counts, output), uid(u, sizeof u, "sink", i));
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *inputs[MAX_PIPELINES], *outputs[MAX_PIPELINES], *rate = NULL;
    int n_in = 0, n_out = 0;
    for (int i = 1; i < argc; i++) {
        bool in = strcmp(argv[i], "--input") == 0, out = strcmp(argv[i], "--output") == 0;
        if (!in && !out && strcmp(argv[i], "--records-per-second") != 0) {
            flint_env_fail(env, "unknown argument '%s'; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        if ((in && n_in == MAX_PIPELINES) || (out && n_out == MAX_PIPELINES)) {
            flint_env_fail(env, "at most %d pipelines (--input/--output pairs)", MAX_PIPELINES);
            return FLINT_INVALID;
        }
        const char *v = argv[++i];
        if (in) inputs[n_in++] = v;
        else if (out) outputs[n_out++] = v;
        else rate = v;
    }
    char *end = NULL;
    double rps = rate ? strtod(rate, &end) : 0;
    if (!n_in || n_in != n_out || (rate && (*end || !(rps > 0)))) {
        flint_env_fail(env, "%s (as many --input as --output, N > 0)", usage);
        return FLINT_INVALID;
    }
    for (int i = 0; i < n_in; i++) pipeline(env, inputs[i], outputs[i], rps, i);
    return flint_execute(env, "Keyed Count");
}

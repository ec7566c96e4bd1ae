/* Window and join configurations for tests/cluster/test_windows.sh.
 *
 *   flint run window_modes.so --input FILE --output DIR [--input2 FILE] [--window KIND] [--time T]
 *       [--size N] [--slide N] [--offset N] [--gap N] [--fn F] [--trigger count:N[:purge]]
 *       [--evict-count N] [--evict-time MS] [--ooo MS] [--datagen COUNT:RATE]
 *
 * Input lines "<ts> <key> <v>" (v an integer), or generated rows (--datagen: id, key "k<id % 5>",
 * v 1) for processing time. KIND: tumbling (default), sliding, session, count, count_sliding. T:
 * event (default) or processing. F: count, sum, min, max, avg (of v), reduce (sum of v, largest
 * ts), aggregate (a user aggregate: n and mean of v), process (n, sum of v, first and last ts of
 * the window's elements after eviction), join (a window join of --input and --input2 on key) or
 * interval (an interval join with --lower/--upper). Every result is written as one text line of
 * its fields ("null" for NULL, doubles with 3 decimals). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

void parse_row(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx;
    size_t len;
    const char *s = flint_row_get_string(in, 0, &len);
    char buf[256], key[128];
    if (len >= sizeof buf) return;
    memcpy(buf, s, len);
    buf[len] = '\0';
    long long ts, v;
    if (sscanf(buf, "%lld %127s %lld", &ts, key, &v) != 3) return;
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_long(b, 0, ts);
    flint_row_set_cstring(b, 1, key);
    flint_row_set_long(b, 2, v);
    flint_emit(out);
}

void from_datagen(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    int64_t id = flint_row_get_long(in, 0);
    char key[16];
    snprintf(key, sizeof key, "k%d", (int)(id % 5));
    flint_row_set_long(out, 0, id);
    flint_row_set_cstring(out, 1, key);
    flint_row_set_long(out, 2, 1);
}

/* Any row as one line. */
void to_line(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    char buf[1024];
    size_t n = 0;
    for (int i = 0; i < in->nfields && n < sizeof buf - 64; i++) {
        if (i) buf[n++] = ' ';
        if (flint_row_is_null(in, i)) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "null");
            continue;
        }
        switch (flint_schema_field_type(in->schema, i)) {
        case FLINT_DOUBLE: n += (size_t)snprintf(buf + n, sizeof buf - n, "%.3f", flint_row_get_double(in, i)); break;
        case FLINT_INT: n += (size_t)snprintf(buf + n, sizeof buf - n, "%d", flint_row_get_int(in, i)); break;
        case FLINT_STRING: {
            size_t l;
            const char *s = flint_row_get_string(in, i, &l);
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%.*s", (int)(l > 200 ? 200 : l), s);
            break;
        }
        default: n += (size_t)snprintf(buf + n, sizeof buf - n, "%lld", (long long)flint_row_get_long(in, i)); break;
        }
    }
    flint_row_set_string(out, 0, buf, n);
}

/* reduce: (ts, key, v): largest ts, sum of v */
void reduce_sum(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    int64_t a = flint_row_get_long(acc, 0), b = flint_row_get_long(in, 0);
    flint_row_set_long(out, 0, a > b ? a : b);
    flint_row_copy_field(out, 1, acc, 1);
    flint_row_set_long(out, 2, flint_row_get_long(acc, 2) + flint_row_get_long(in, 2));
}

void mean_create(flint_ctx *ctx, flint_row_builder *acc) {
    (void)ctx;
    flint_row_set_long(acc, 0, 0);
    flint_row_set_long(acc, 1, 0);
}
void mean_add(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(acc, 0) + 1);
    flint_row_set_long(out, 1, flint_row_get_long(acc, 1) + flint_row_get_long(in, 2));
}
void mean_merge(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(a, 0) + flint_row_get_long(b, 0));
    flint_row_set_long(out, 1, flint_row_get_long(a, 1) + flint_row_get_long(b, 1));
}
void mean_result(flint_ctx *ctx, const flint_row *acc, flint_row_builder *out) {
    (void)ctx;
    int64_t n = flint_row_get_long(acc, 0);
    flint_row_set_long(out, 0, n);
    flint_row_set_double(out, 1, n ? (double)flint_row_get_long(acc, 1) / (double)n : 0);
}

void summarize(flint_ctx *ctx, const flint_time_window *w, flint_state_iter *it, flint_collector *out) {
    int64_t n = 0, sum = 0, first = 0, last = 0;
    flint_row e;
    while (flint_state_iter_next(it, NULL, &e)) {
        int64_t ts = flint_row_get_long(&e, 0);
        if (!n || ts < first) first = ts;
        if (!n || ts > last) last = ts;
        sum += flint_row_get_long(&e, 2);
        n++;
    }
    flint_row key = flint_ctx_current_key(ctx);
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, &key, 0);
    if (w->start == INT64_MIN) {
        flint_row_set_null(b, 1);
        flint_row_set_null(b, 2);
    } else {
        flint_row_set_long(b, 1, w->start);
        flint_row_set_long(b, 2, w->end);
    }
    flint_row_set_long(b, 3, n);
    flint_row_set_long(b, 4, sum);
    flint_row_set_long(b, 5, first);
    flint_row_set_long(b, 6, last);
    flint_emit(out);
}

void join_rows(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, a, 1);
    flint_row_copy_field(out, 1, a, 0);
    flint_row_copy_field(out, 2, a, 2);
    flint_row_copy_field(out, 3, b, 0);
    flint_row_copy_field(out, 4, b, 2);
}

static flint_stream *rows_of(flint_env *env, const char *path, int64_t ooo, bool event_time) {
    flint_stream *s = flint_set_parallelism(
        flint_flat_map(flint_source_text_file(env, path), FLINT_FN(parse_row), "ts BIGINT, key STRING, v BIGINT"), 1);
    if (!event_time) return s;
    flint_watermark_strategy ws = {.timestamp_field = "ts", .max_out_of_orderness_ms = ooo};
    return flint_set_parallelism(flint_assign_timestamps_and_watermarks(s, ws), 1);
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *input = NULL, *input2 = NULL, *output = NULL, *kind = "tumbling", *time = "event", *fn = "count";
    const char *trigger = NULL, *datagen = NULL;
    long long size = 0, slide = 0, offset = 0, gap = 0, evict_count = 0, evict_time = -1, ooo = 0, lower = 0, upper = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value", argv[i]);
            return FLINT_INVALID;
        }
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--input") == 0) input = v;
        else if (strcmp(a, "--input2") == 0) input2 = v;
        else if (strcmp(a, "--output") == 0) output = v;
        else if (strcmp(a, "--window") == 0) kind = v;
        else if (strcmp(a, "--time") == 0) time = v;
        else if (strcmp(a, "--fn") == 0) fn = v;
        else if (strcmp(a, "--trigger") == 0) trigger = v;
        else if (strcmp(a, "--datagen") == 0) datagen = v;
        else if (strcmp(a, "--size") == 0) size = atoll(v);
        else if (strcmp(a, "--slide") == 0) slide = atoll(v);
        else if (strcmp(a, "--offset") == 0) offset = atoll(v);
        else if (strcmp(a, "--gap") == 0) gap = atoll(v);
        else if (strcmp(a, "--evict-count") == 0) evict_count = atoll(v);
        else if (strcmp(a, "--evict-time") == 0) evict_time = atoll(v);
        else if (strcmp(a, "--ooo") == 0) ooo = atoll(v);
        else if (strcmp(a, "--lower") == 0) lower = atoll(v);
        else if (strcmp(a, "--upper") == 0) upper = atoll(v);
        else {
            flint_env_fail(env, "unknown argument '%s'", a);
            return FLINT_INVALID;
        }
    }
    if ((!input && !datagen) || !output) {
        flint_env_fail(env, "--input (or --datagen) and --output are needed");
        return FLINT_INVALID;
    }
    flint_window_spec spec = {.domain = strcmp(time, "processing") == 0 ? FLINT_PROCESSING_TIME : FLINT_EVENT_TIME,
                              .size = size, .slide = slide, .offset = offset, .gap = gap};
    spec.kind = strcmp(kind, "sliding") == 0         ? FLINT_WINDOW_SLIDING
                : strcmp(kind, "session") == 0       ? FLINT_WINDOW_SESSION
                : strcmp(kind, "count") == 0         ? FLINT_WINDOW_COUNT_TUMBLING
                : strcmp(kind, "count_sliding") == 0 ? FLINT_WINDOW_COUNT_SLIDING
                                                     : FLINT_WINDOW_TUMBLING;
    bool event_time = spec.domain == FLINT_EVENT_TIME && spec.kind != FLINT_WINDOW_COUNT_TUMBLING &&
                      spec.kind != FLINT_WINDOW_COUNT_SLIDING;
    flint_stream *rows;
    if (datagen) {
        long long count = 0;
        double rate = 0;
        if (sscanf(datagen, "%lld:%lf", &count, &rate) != 2) {
            flint_env_fail(env, "--datagen COUNT:RATE");
            return FLINT_INVALID;
        }
        rows = flint_map(flint_source_datagen(env, "id BIGINT, r BIGINT", count, rate), FLINT_FN(from_datagen),
                         "ts BIGINT, key STRING, v BIGINT");
    } else {
        rows = rows_of(env, input, ooo, event_time || strcmp(fn, "interval") == 0);
    }
    flint_stream *result;
    if (strcmp(fn, "join") == 0 || strcmp(fn, "interval") == 0) {
        if (!input2) {
            flint_env_fail(env, "--fn %s needs --input2", fn);
            return FLINT_INVALID;
        }
        flint_stream *rows2 = rows_of(env, input2, ooo, event_time || strcmp(fn, "interval") == 0);
        const char *out = "key STRING, a_ts BIGINT, a_v BIGINT, b_ts BIGINT, b_v BIGINT";
        if (strcmp(fn, "join") == 0)
            result = flint_window_join(flint_key_by(rows, "key"), flint_key_by(rows2, "key"), spec, FLINT_FN(join_rows), out);
        else
            result = flint_interval_join(flint_key_by(rows, "key"), flint_key_by(rows2, "key"), lower, upper,
                                         FLINT_FN(join_rows), out);
    } else {
        flint_windowed_stream *w = flint_window(flint_key_by(rows, "key"), spec);
        if (trigger) {
            long long n = 0;
            char purge[16] = "";
            if (sscanf(trigger, "count:%lld:%15s", &n, purge) < 1) {
                flint_env_fail(env, "--trigger count:N[:purge]");
                return FLINT_INVALID;
            }
            w = flint_window_trigger(w, (flint_trigger){FLINT_TRIGGER_COUNT, n, strcmp(purge, "purge") == 0});
        }
        if (evict_count > 0) w = flint_window_evict_count(w, evict_count);
        if (evict_time >= 0) w = flint_window_evict_time(w, evict_time);
        if (strcmp(fn, "count") == 0) result = flint_window_count(w);
        else if (strcmp(fn, "sum") == 0) result = flint_window_sum(w, "v");
        else if (strcmp(fn, "min") == 0) result = flint_window_min(w, "v");
        else if (strcmp(fn, "max") == 0) result = flint_window_max(w, "v");
        else if (strcmp(fn, "avg") == 0) result = flint_window_avg(w, "v");
        else if (strcmp(fn, "reduce") == 0) result = flint_window_reduce(w, FLINT_FN(reduce_sum));
        else if (strcmp(fn, "aggregate") == 0)
            result = flint_window_aggregate(w, FLINT_FN(mean_create), FLINT_FN(mean_add), FLINT_FN(mean_merge),
                                            FLINT_FN(mean_result), "n BIGINT, total BIGINT", "n BIGINT, mean DOUBLE");
        else if (strcmp(fn, "process") == 0)
            result = flint_window_process(w, FLINT_FN(summarize),
                                          "key STRING, s BIGINT, e BIGINT, n BIGINT, total BIGINT, first BIGINT, last BIGINT");
        else {
            flint_env_fail(env, "unknown --fn '%s'", fn);
            return FLINT_INVALID;
        }
    }
    flint_sink_text_file(flint_map(result, FLINT_FN(to_line), "line STRING"), output);
    return flint_execute(env, "Window Modes");
}

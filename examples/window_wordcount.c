/* Windowed WordCount: words counted per event-time tumbling window.
 *
 *   flint run build/examples/window_wordcount.so --input FILE --output DIR --window-ms N
 *       --out-of-orderness-ms M [--allowed-lateness-ms L] [--late-output DIR2]
 *
 * Input lines are "<timestamp_ms> <word>", read by one source subtask in file order (lines that
 * do not parse are skipped). Timestamps may be out of order: the watermark is the largest
 * timestamp seen minus M minus 1, so a record is late once the watermark passed the end of its
 * window (plus L). For each word and window [start, start + N) the job writes
 * "<window_start> <window_end> <word> <count>" (end exclusive) to DIR's part files when the
 * watermark passes the window's end; with --allowed-lateness-ms, a late record within L of the
 * window's end fires the window again with the updated count (one line per firing). Records too
 * late even for that go, unchanged, to DIR2's part files with --late-output (else they are
 * dropped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* flat_map: "<ts> <word>" -> (ts, word, line); anything else is skipped. */
void parse_line(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx;
    size_t len;
    const char *s = flint_row_get_string(in, 0, &len);
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t ts_start = i;
    if (i < len && s[i] == '-') i++;
    size_t digits = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    if (i == digits || i - ts_start > 19 || i >= len || (s[i] != ' ' && s[i] != '\t')) return;
    char num[24];
    memcpy(num, s + ts_start, i - ts_start);
    num[i - ts_start] = '\0';
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t w = i;
    while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') i++;
    if (i == w) return;
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_long(b, 0, strtoll(num, NULL, 10));
    flint_row_set_string(b, 1, s + w, i - w);
    flint_row_set_string(b, 2, s, len);
    flint_emit(out);
}

/* (word, window_start, window_end, count) -> (window_start, window_end, word, count) */
void format_window(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(in, 1));   /* TIMESTAMP(3) -> BIGINT */
    flint_row_set_long(out, 1, flint_row_get_long(in, 2));
    flint_row_copy_field(out, 2, in, 0);
    flint_row_copy_field(out, 3, in, 3);
}

/* A late record: its line as it was. */
void late_line(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, in, 2);
}

static const char usage[] =
    "usage: window_wordcount.so --input FILE --output DIR --window-ms N --out-of-orderness-ms M "
    "[--allowed-lateness-ms L] [--late-output DIR2]";

static int parse_ms(flint_env *env, const char *name, const char *v, int64_t min, int64_t *out) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*v == '\0' || *end || x < min) {
        flint_env_fail(env, "%s: expected a number of milliseconds >= %lld, got '%s'", name, (long long)min, v);
        return -1;
    }
    *out = x;
    return 0;
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *input = NULL, *output = NULL, *late_output = NULL;
    int64_t window = -1, ooo = -1, lateness = -1;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", a, usage);
            return FLINT_INVALID;
        }
        const char *v = argv[i + 1];
        int rc = 0;
        if (strcmp(a, "--input") == 0) input = v;
        else if (strcmp(a, "--output") == 0) output = v;
        else if (strcmp(a, "--late-output") == 0) late_output = v;
        else if (strcmp(a, "--window-ms") == 0) rc = parse_ms(env, a, v, 1, &window);
        else if (strcmp(a, "--out-of-orderness-ms") == 0) rc = parse_ms(env, a, v, 0, &ooo);
        else if (strcmp(a, "--allowed-lateness-ms") == 0) rc = parse_ms(env, a, v, 0, &lateness);
        else {
            flint_env_fail(env, "unknown argument '%s'; %s", a, usage);
            return FLINT_INVALID;
        }
        if (rc) return FLINT_INVALID;
    }
    if (!input || !output || window < 0 || ooo < 0) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    /* One reader in file order: the source, the parser and the watermarks run in one subtask. */
    flint_stream *lines = flint_source_text_file(env, input);
    flint_stream *words = flint_set_parallelism(
        flint_name(flint_flat_map(lines, FLINT_FN(parse_line), "ts BIGINT, word STRING, line STRING"), "Parse"), 1);
    flint_watermark_strategy ws = {.timestamp_field = "ts", .max_out_of_orderness_ms = ooo};
    words = flint_set_parallelism(flint_assign_timestamps_and_watermarks(words, ws), 1);

    flint_windowed_stream *w = flint_window(flint_key_by(words, "word"),
                                            (flint_window_spec){.kind = FLINT_WINDOW_TUMBLING, .domain = FLINT_EVENT_TIME,
                                                                .size = window});
    if (lateness > 0) w = flint_allowed_lateness(w, lateness);
    if (late_output) w = flint_side_output_late_data(w, "late");
    flint_stream *counts = flint_window_count(w);
    flint_stream *out = flint_map(counts, FLINT_FN(format_window),
                                  "window_start BIGINT, window_end BIGINT, word STRING, count BIGINT");
    flint_sink_text_file(out, output);
    if (late_output) {
        flint_stream *late = flint_side_output(counts, "late", "ts BIGINT, word STRING, line STRING");
        flint_sink_text_file(flint_map(late, FLINT_FN(late_line), "line STRING"), late_output);
    }
    return flint_execute(env, "Window WordCount");
}

/* Session windows over user clicks.
 *
 *   flint run build/examples/session_clicks.so --input FILE --output DIR --gap-ms G
 *       [--out-of-orderness-ms M] [--function aggregate|process]
 *
 * Input lines are "<timestamp_ms> <user> [<page>]" (event time, out of order by at most M ms,
 * default 0). A user's session is a run of clicks each at most G ms after the previous one (event
 * time); it ends G ms after its last click. For every session the job writes
 * "<user> <session_start> <session_end> <clicks> <active_ms>" to DIR's part files, where
 * session_start is the first click, session_end the last click + G (exclusive, as Flink's session
 * windows) and active_ms the time from the first click to the last.
 *
 * Sessions are merging windows: each click opens [ts, ts + G), and windows that overlap or touch
 * merge, together with what they hold. --function aggregate (the default) keeps per session an
 * accumulator (clicks, first, last) whose merge function combines two sessions; --function process
 * keeps the clicks themselves (merged sessions concatenate their lists) and a process window
 * function counts them when the session closes. Both write the same lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

#include "timed_lines.h"   /* parse_timed_line: "<ts> <user> [<page>]" -> (ts, user, page) */

/* ---- --function aggregate: accumulator (clicks, first, last) ----------------------------------- */

void clicks_create(flint_ctx *ctx, flint_row_builder *acc) {
    (void)ctx;
    flint_row_set_long(acc, 0, 0);
    flint_row_set_long(acc, 1, INT64_MAX);
    flint_row_set_long(acc, 2, INT64_MIN);
}

void clicks_add(flint_ctx *ctx, const flint_row *acc, const flint_row *click, flint_row_builder *out) {
    (void)ctx;
    int64_t ts = flint_row_get_long(click, 0);
    int64_t first = flint_row_get_long(acc, 1), last = flint_row_get_long(acc, 2);
    flint_row_set_long(out, 0, flint_row_get_long(acc, 0) + 1);
    flint_row_set_long(out, 1, ts < first ? ts : first);
    flint_row_set_long(out, 2, ts > last ? ts : last);
}

void clicks_merge(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *out) {
    (void)ctx;
    int64_t fa = flint_row_get_long(a, 1), fb = flint_row_get_long(b, 1);
    int64_t la = flint_row_get_long(a, 2), lb = flint_row_get_long(b, 2);
    flint_row_set_long(out, 0, flint_row_get_long(a, 0) + flint_row_get_long(b, 0));
    flint_row_set_long(out, 1, fa < fb ? fa : fb);
    flint_row_set_long(out, 2, la > lb ? la : lb);
}

void clicks_result(flint_ctx *ctx, const flint_row *acc, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(acc, 0));
    flint_row_set_long(out, 1, flint_row_get_long(acc, 2) - flint_row_get_long(acc, 1));
}

/* (user, window_start, window_end, clicks, active_ms) -> the output line's columns. */
void format_session(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, in, 0);
    flint_row_set_long(out, 1, flint_row_get_long(in, 1));
    flint_row_set_long(out, 2, flint_row_get_long(in, 2));
    flint_row_copy_field(out, 3, in, 3);
    flint_row_copy_field(out, 4, in, 4);
}

/* ---- --function process: every click of the session ---------------------------------------------- */

void session_process(flint_ctx *ctx, const flint_time_window *w, flint_state_iter *clicks, flint_collector *out) {
    int64_t n = 0, first = INT64_MAX, last = INT64_MIN;
    flint_row click;
    while (flint_state_iter_next(clicks, NULL, &click)) {
        int64_t ts = flint_row_get_long(&click, 0);
        n++;
        if (ts < first) first = ts;
        if (ts > last) last = ts;
    }
    flint_row key = flint_ctx_current_key(ctx);
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, &key, 0);
    flint_row_set_long(b, 1, w->start);
    flint_row_set_long(b, 2, w->end);
    flint_row_set_long(b, 3, n);
    flint_row_set_long(b, 4, last - first);
    flint_emit(out);
}

static const char usage[] = "usage: session_clicks.so --input FILE --output DIR --gap-ms G [--out-of-orderness-ms M] "
                            "[--function aggregate|process]";

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *input = NULL, *output = NULL, *function = "aggregate";
    long long gap = -1, ooo = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        const char *a = argv[i], *v = argv[i + 1];
        char *end = NULL;
        if (strcmp(a, "--input") == 0) input = v;
        else if (strcmp(a, "--output") == 0) output = v;
        else if (strcmp(a, "--function") == 0) function = v;
        else if (strcmp(a, "--gap-ms") == 0) gap = strtoll(v, &end, 10);
        else if (strcmp(a, "--out-of-orderness-ms") == 0) ooo = strtoll(v, &end, 10);
        else {
            flint_env_fail(env, "unknown argument '%s'; %s", a, usage);
            return FLINT_INVALID;
        }
        if (end && (*end || end == v)) {
            flint_env_fail(env, "%s: expected a number, got '%s'", a, v);
            return FLINT_INVALID;
        }
    }
    bool process = strcmp(function, "process") == 0;
    if (!input || !output || gap <= 0 || ooo < 0 || (!process && strcmp(function, "aggregate") != 0)) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    flint_stream *clicks = flint_set_parallelism(
        flint_flat_map(flint_source_text_file(env, input), FLINT_FN(parse_timed_line), "ts BIGINT, user STRING, page STRING"), 1);
    flint_watermark_strategy ws = {.timestamp_field = "ts", .max_out_of_orderness_ms = ooo};
    clicks = flint_set_parallelism(flint_assign_timestamps_and_watermarks(clicks, ws), 1);
    flint_windowed_stream *w = flint_window(flint_key_by(clicks, "user"),
                                            (flint_window_spec){.kind = FLINT_WINDOW_SESSION, .domain = FLINT_EVENT_TIME, .gap = gap});
    const char *line = "user STRING, session_start BIGINT, session_end BIGINT, clicks BIGINT, active_ms BIGINT";
    flint_stream *sessions;
    if (process) {
        sessions = flint_window_process(w, FLINT_FN(session_process), line);
    } else {
        sessions = flint_window_aggregate(w, FLINT_FN(clicks_create), FLINT_FN(clicks_add), FLINT_FN(clicks_merge),
                                          FLINT_FN(clicks_result), "clicks BIGINT, first_ts BIGINT, last_ts BIGINT",
                                          "clicks BIGINT, active_ms BIGINT");
        sessions = flint_map(sessions, FLINT_FN(format_session), line);
    }
    flint_sink_text_file(sessions, output);
    return flint_execute(env, "Session Clicks");
}

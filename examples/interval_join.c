/* Interval join of two text inputs.
 *
 *   flint run build/examples/interval_join.so --left FILE --right FILE --output DIR
 *       --lower-ms L --upper-ms U [--out-of-orderness-ms M]
 *
 * Both inputs have lines "<timestamp_ms> <key> <value>" (event time, out of order by at most M ms,
 * default 0; each file is read by one source subtask). A left row a and a right row b join when
 * their keys are equal and b.ts lies in [a.ts + L, a.ts + U] (both bounds inclusive; L <= U,
 * either may be negative). For every pair the job writes
 * "<key> <a.ts> <a.value> <b.ts> <b.value>" to DIR's part files.
 *
 * Each side is buffered per key in the state backend; a new row is joined with the other side's
 * buffered rows at once, and a buffered row is dropped when the watermark (the smaller of the two
 * inputs' watermarks) shows that no row of the other side can join it any more. Rows behind the
 * watermark are late and dropped, as in Flink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

#include "timed_lines.h"   /* parse_timed_line: "<ts> <key> [<value>]" -> (ts, key, value) */

/* One output row per matching pair. */
void join_pair(flint_ctx *ctx, const flint_row *a, const flint_row *b, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, a, 1);
    flint_row_copy_field(out, 1, a, 0);
    flint_row_copy_field(out, 2, a, 2);
    flint_row_copy_field(out, 3, b, 0);
    flint_row_copy_field(out, 4, b, 2);
}

static const char usage[] = "usage: interval_join.so --left FILE --right FILE --output DIR --lower-ms L --upper-ms U "
                            "[--out-of-orderness-ms M]";

static flint_stream *events(flint_env *env, const char *path, const char *name, long long ooo) {
    flint_stream *s = flint_flat_map(flint_source_text_file(env, path), FLINT_FN(parse_timed_line), "ts BIGINT, key STRING, value STRING");
    s = flint_set_parallelism(flint_name(s, name), 1);
    flint_watermark_strategy ws = {.timestamp_field = "ts", .max_out_of_orderness_ms = ooo};
    return flint_set_parallelism(flint_assign_timestamps_and_watermarks(s, ws), 1);
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *left = NULL, *right = NULL, *output = NULL;
    long long lower = 0, upper = 0, ooo = 0;
    bool have_lower = false, have_upper = false;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        const char *a = argv[i], *v = argv[i + 1];
        char *end = NULL;
        if (strcmp(a, "--left") == 0) left = v;
        else if (strcmp(a, "--right") == 0) right = v;
        else if (strcmp(a, "--output") == 0) output = v;
        else if (strcmp(a, "--lower-ms") == 0) lower = strtoll(v, &end, 10), have_lower = true;
        else if (strcmp(a, "--upper-ms") == 0) upper = strtoll(v, &end, 10), have_upper = true;
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
    if (!left || !right || !output || !have_lower || !have_upper || ooo < 0) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    flint_keyed_stream *a = flint_key_by(events(env, left, "Parse left", ooo), "key");
    flint_keyed_stream *b = flint_key_by(events(env, right, "Parse right", ooo), "key");
    flint_stream *pairs = flint_interval_join(a, b, lower, upper, FLINT_FN(join_pair),
                                              "key STRING, left_ts BIGINT, left_value STRING, right_ts BIGINT, right_value STRING");
    flint_sink_text_file(pairs, output);
    return flint_execute(env, "Interval Join");
}

/* A pipeline for benchmarks: datagen -> map -> filter -> blackhole.
 *
 *   flint run build/examples/datagen_pipeline.so [--count N] [--rate R]
 *
 * Generates rows (id BIGINT, v INT, name STRING) — unbounded unless --count N is given, as fast
 * as possible unless --rate R (rows per second over all source subtasks) — derives a score in the
 * map, keeps even scores in the filter, and discards the rest. Records/s show in the web UI and
 * the REST API (numRecordsOut of the source). */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* (id, v, name) -> (id, score, name) */
void score(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    int64_t id = flint_row_get_long(in, 0);
    int32_t v = flint_row_get_int(in, 1);
    flint_row_set_long(out, 0, id);
    flint_row_set_long(out, 1, (int64_t)v * 31 + id);
    flint_row_copy_field(out, 2, in, 2);
}

bool even_score(flint_ctx *ctx, const flint_row *in) {
    (void)ctx;
    return (flint_row_get_long(in, 1) & 1) == 0;
}

static int parse_num(flint_env *env, const char *name, const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    if (*end || end == s || *out < 0) {
        flint_env_fail(env, "%s: expected a non-negative number, got '%s'", name, s);
        return -1;
    }
    return 0;
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    double count = -1, rate = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; usage: datagen_pipeline.so [--count N] [--rate R]", argv[i]);
            return FLINT_INVALID;
        }
        if (strcmp(argv[i], "--count") == 0) {
            if (parse_num(env, "--count", argv[i + 1], &count)) return FLINT_INVALID;
        } else if (strcmp(argv[i], "--rate") == 0) {
            if (parse_num(env, "--rate", argv[i + 1], &rate)) return FLINT_INVALID;
        } else {
            flint_env_fail(env, "unknown argument '%s'; usage: datagen_pipeline.so [--count N] [--rate R]", argv[i]);
            return FLINT_INVALID;
        }
    }
    flint_stream *rows = flint_source_datagen(env, "id BIGINT, v INT, name STRING", (int64_t)count, rate);
    flint_stream *scored = flint_name(flint_map(rows, FLINT_FN(score), "id BIGINT, score BIGINT, name STRING"), "Score");
    flint_stream *kept = flint_name(flint_filter(scored, FLINT_FN(even_score)), "Even scores");
    flint_sink_blackhole(kept);
    return flint_execute(env, "Datagen Pipeline");
}

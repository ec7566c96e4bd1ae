/* A test job (tests/cluster) whose user function fails while running: the job must end FAILED
 * with the function's message as the root cause.
 *
 *   flint run build/tests/jobs/fail_at_runtime.so [--after N]
 *
 * A sequence 1..1000000 through a map that calls flint_ctx_fail on value N (default 100). */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

void fail_on_value(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    const char *after = flint_ctx_param(ctx, "after");
    int64_t v = flint_row_get_long(in, 0);
    if (v == (after ? atoll(after) : 100)) {
        flint_ctx_fail(ctx, "fail_at_runtime: refusing value %lld on purpose", (long long)v);
        return;
    }
    flint_row_set_long(out, 0, v);
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *after = "100";
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
            after = argv[i + 1];
        } else {
            flint_env_fail(env, "unknown argument '%s'; usage: fail_at_runtime.so [--after N]", argv[i]);
            return FLINT_INVALID;
        }
    }
    flint_env_set_param(env, "after", after);
    flint_stream *s = flint_from_sequence(env, 1, 1000000);
    flint_stream *m = flint_name(flint_map(s, FLINT_FN(fail_on_value), "value BIGINT"), "Failing Map");
    flint_sink_blackhole(m);
    return flint_execute(env, "Fail At Runtime");
}

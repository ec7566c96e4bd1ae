/* A test job (tests/cluster) naming a user function that is static, hence not exported by the
 * artifact: the taskmanagers could not resolve it, so `flint run` must refuse the job naming the
 * symbol. */
#include <flint/flint.h>

static void hidden_map(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(in, 0) * 2);
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    (void)argc, (void)argv;
    flint_stream *s = flint_from_sequence(env, 1, 10);
    flint_sink_print(flint_map(s, FLINT_FN(hidden_map), "value BIGINT"));
    return flint_execute(env, "Missing Symbol");
}

/* A test job (tests/cluster) keyed by a field its stream does not have: `flint run` must name
 * the operator and the field, and exit 1 without submitting. */
#include <flint/flint.h>

int flint_job_main(flint_env *env, int argc, char **argv) {
    (void)argc, (void)argv;
    flint_stream *s = flint_from_sequence(env, 1, 10);
    flint_sink_print(flint_sum(flint_key_by(s, "no_such_field"), "value"));
    return flint_execute(env, "Unknown Field");
}

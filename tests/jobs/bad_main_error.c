/* A test job (tests/cluster) whose main fails before building anything: `flint run` must print
 * the reason and exit 1 without submitting. */
#include <flint/flint.h>

int flint_job_main(flint_env *env, int argc, char **argv) {
    (void)argc, (void)argv;
    flint_env_fail(env, "bad_main_error: this job always refuses to start");
    return FLINT_INVALID;
}

/* Job artifacts on the client side: load a job's shared object (dlopen, RTLD_NOW | RTLD_LOCAL),
 * find its flint_job_main, check that every user function the job graph names is an exported
 * symbol of the artifact, and read the artifact's bytes and sha256 for submission. */
#ifndef FLINT_CLI_ARTIFACT_H
#define FLINT_CLI_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

#include "flint/flint.h"
#include "util/sha256.h"

typedef int (*cli_job_main_fn)(flint_env *env, int argc, char **argv);

typedef struct cli_artifact {
    const char *path;          /* as given on the command line (not owned) */
    void *handle;              /* dlopen handle */
    cli_job_main_fn main;      /* flint_job_main */
} cli_artifact;

/* Load the artifact at path. Errors (FLINT_IO, FLINT_INVALID, FLINT_NOT_FOUND) read
 * "job.so: No such file or directory", "job.so: not a shared object: <dlerror>",
 * "job.so: no function flint_job_main". */
int cli_artifact_open(cli_artifact *a, const char *path, flint_err *err);
void cli_artifact_close(cli_artifact *a);

/* Check every user function of env's graph against the artifact: the name must resolve with
 * dlsym to the pointer FLINT_FN took. Error: "Map: user function 'split' is not an exported
 * symbol of job.so (static?)". */
int cli_artifact_check_udfs(const cli_artifact *a, const flint_env *env, flint_err *err);

/* Read the whole artifact into a new buffer (caller frees *data) and its sha256 in hex. */
int cli_artifact_read(const cli_artifact *a, uint8_t **data, size_t *len, char hex[SHA256_HEX_LEN],
                      flint_err *err);

#endif

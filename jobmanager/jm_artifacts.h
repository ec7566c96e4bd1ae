/* The jobmanager's artifact store: job shared objects, content-addressed by sha256, kept under
 * <first io.tmp.dirs entry>/flint-jm-<jobmanager id>/artifacts/<sha256>.so for the lifetime of
 * the jobmanager and served to taskmanagers (FetchArtifact). The directory is removed on close. */
#ifndef FLINT_JM_ARTIFACTS_H
#define FLINT_JM_ARTIFACTS_H

#include <stdbool.h>
#include <stddef.h>

#include "flint/status.h"

typedef struct jm_artifacts jm_artifacts;

/* Create the store's directory under the first directory of tmp_dirs (io.tmp.dirs: several
 * separated by ';', ',' or ':'). NULL with err naming the directory when it cannot be made. Free
 * with jm_artifacts_close. */
jm_artifacts *jm_artifacts_open(const char *tmp_dirs, const char *jm_id, flint_err *err);
/* Remove every stored artifact and the directory, and free the store. NULL is fine. */
void jm_artifacts_close(jm_artifacts *a);
/* The store's directory ("/tmp/flint-jm-<id>/artifacts"). */
const char *jm_artifacts_dir(const jm_artifacts *a);

/* Store data[0..len) after checking that its sha256 is sha256_hex (64 lower-case hex digits):
 * FLINT_INVALID naming both digests when it is not, FLINT_IO when the file cannot be written.
 * Storing an artifact that is already there is a no-op. */
int jm_artifacts_put(jm_artifacts *a, const void *data, size_t len, const char *sha256_hex,
                     flint_err *err);
bool jm_artifacts_has(const jm_artifacts *a, const char *sha256_hex);
/* Read a stored artifact into *data (malloc'ed, the caller frees) and *len. FLINT_NOT_FOUND when
 * it is not stored (or sha256_hex is malformed), FLINT_IO when it cannot be read. */
int jm_artifacts_get(const jm_artifacts *a, const char *sha256_hex, void **data, size_t *len,
                     flint_err *err);

#endif

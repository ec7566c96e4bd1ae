/* The taskmanager's artifact cache: job artifacts (the jobs' shared objects) fetched from the
 * jobmanager with FetchArtifact, checked against their sha256 and kept as
 * <io.tmp.dirs>/flint-tm-<pid>/artifacts/<sha256>.so until the taskmanager exits (the directory
 * is removed then). Each job's artifact is dlopen()ed (RTLD_NOW | RTLD_LOCAL) once per job, held
 * by the job's tasks, and dlclose()d when the job is released and no task of it is left.
 *
 * Jobs that share an artifact file share its loaded image (the dynamic loader opens a file once),
 * hence the globals of its code: keep job code free of writable globals, as Flint's API does.
 *
 * Runs on the task executor's event loop thread (the fetch is an rpc_call on it). */
#ifndef FLINT_TM_ARTIFACTS_H
#define FLINT_TM_ARTIFACTS_H

#include <stdint.h>

#include "flint/status.h"
#include "rpc/rpc.h"

typedef struct tm_artifacts tm_artifacts;

/* The job's artifact is ready (status FLINT_OK, dl its handle; NULL for a job without artifact)
 * or could not be had (error says why). */
typedef void (*tm_artifact_fn)(int status, const char *error, void *dl, void *ud);

/* Make the cache directory under the first of the ';'-separated tmp_dirs (removing the
 * flint-tm-<pid> directories there of taskmanagers that were killed). NULL with err. */
tm_artifacts *tm_artifacts_new(const char *tmp_dirs, flint_err *err);
/* dlclose every handle, remove the directory (and everything under flint-tm-<pid>). Tasks must
 * have ended; no fetch may be pending (close the jobmanager connection first). */
void tm_artifacts_free(tm_artifacts *a);
/* The cache directory ("/tmp/flint-tm-123/artifacts"). */
const char *tm_artifacts_dir(const tm_artifacts *a);

/* One task of job_id needs artifact sha ("" when the job has none): take a reference for it and
 * call fn once the artifact is loaded, fetching it through jm (timeout_ms) when the cache lacks
 * it. fn may run before this returns (the artifact is loaded already) or later on the loop. The
 * reference is held even when loading fails: drop it with tm_artifacts_put. */
void tm_artifacts_acquire(tm_artifacts *a, rpc_conn *jm, int64_t timeout_ms, const char *job_id,
                          const char *sha, tm_artifact_fn fn, void *ud);
/* A task of job_id no longer uses its artifact (its thread has ended). */
void tm_artifacts_put(tm_artifacts *a, const char *job_id);
/* Job job_id is over: its artifact is unloaded once no task of it holds a reference. */
void tm_artifacts_release_job(tm_artifacts *a, const char *job_id);
/* Every job is over (the jobmanager was lost): unload each artifact once no task holds it. */
void tm_artifacts_release_all(tm_artifacts *a);
/* Whether job_id's artifact is loaded (tests, logs). */
bool tm_artifacts_job_loaded(const tm_artifacts *a, const char *job_id);

/* Fetch completions (tests drive these without a jobmanager): deliver the bytes of sha, as the
 * FetchArtifactResponse does, or a failure. */
void tm_artifacts_deliver(tm_artifacts *a, const char *sha, int status, const char *error,
                          const uint8_t *data, size_t len);

#endif

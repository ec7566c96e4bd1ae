/* State on the jobmanager's side of a restore: operator ids, key-group ranges, the _metadata file
 * of checkpoints and savepoints (write atomically, read with checks), savepoint paths, and the
 * restore plan that maps a checkpoint's acknowledged state onto a job graph -- by operator id,
 * with keyed state redistributed by key group for the new parallelism, operator list state round
 * robin (union: to all), broadcast state to all, source splits and pending commits round robin.
 * No sockets, no clocks; see docs/checkpointing-protocol.md. */
#ifndef FLINT_JM_RESTORE_H
#define FLINT_JM_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.pb-c.h"
#include "flint/status.h"
#include "jobgraph.pb-c.h"

#define JM_METADATA_FILE "_metadata"
#define JM_METADATA_VERSION 1

/* ---- operator ids ---- */

/* Give every operator of g an operator_id (32 lower-case hex digits) where it has none: the
 * XXH3-128 of "uid:<uid>" when the operator has a uid, else of its node id, kind and the ids of
 * its inputs (so the same program gets the same ids at any parallelism). An operator_id already
 * set must be 32 hex digits. FLINT_INVALID when one is malformed or two operators share an id.
 * g must have passed jm_job_validate (acyclic, edges valid). */
int jm_graph_assign_operator_ids(Flint__Graph__JobGraph *g, flint_err *err);

/* ---- key groups ---- */

/* Key groups [*start, *end] of subtask i of p with max parallelism maxp (Flink's rule). */
void jm_key_group_range(int maxp, int p, int i, int *start, int *end);
/* The subtask that owns key group kg: kg * p / maxp. */
int jm_key_group_subtask(int maxp, int p, int kg);

/* ---- _metadata ---- */

/* Write m to dir/_metadata atomically (dir/_metadata.tmp, fsync, rename, fsync of dir). */
int jm_metadata_write(const char *dir, const Flint__Checkpoint__CheckpointMetadata *m, flint_err *err);
/* Read and check a _metadata file: header, version, length, checksum, fields. On success *out is
 * the message (free with flint__checkpoint__checkpoint_metadata__free_unpacked); every error
 * names the file ("<path> is corrupted: checksum mismatch"). */
int jm_metadata_read(const char *path, Flint__Checkpoint__CheckpointMetadata **out, flint_err *err);
/* Check that every state file m refers to exists and is as large as its handle says; relative
 * paths resolve against dir. The error names the first missing or short file. */
int jm_metadata_check_files(const Flint__Checkpoint__CheckpointMetadata *m, const char *dir,
                            flint_err *err);
/* Bytes of state m holds (the operators' state_size). */
int64_t jm_metadata_state_size(const Flint__Checkpoint__CheckpointMetadata *m);

/* ---- savepoint paths ---- */

/* A savepoint (or retained checkpoint) given by the user -- its directory or its _metadata file
 * -- as the _metadata path and its directory (both new strings, caller frees). FLINT_NOT_FOUND
 * naming the path when neither exists. */
int jm_savepoint_resolve(const char *path, char **metadata_path, char **dir, flint_err *err);
/* "<base>/savepoint-<first 6 of job_id>-<12 random hex digits>" (base without trailing '/'). */
void jm_savepoint_dir_name(const char *base, const char *job_id, char *out, size_t len);

/* ---- restore plans ---- */

typedef struct jm_restore jm_restore;

/* A plan to restore graph g from m (read from metadata_path; ownership of m passes to the plan,
 * also on error). Every operator of m that has state must map to an operator of g with the same
 * operator id, unless allow_non_restored (then it is skipped, logged); an operator with keyed
 * state must keep its max parallelism. default_maxp is the max parallelism of vertices and graphs
 * that set none. FLINT_INVALID with Flink's messages otherwise. Free with jm_restore_free. */
int jm_restore_new(Flint__Checkpoint__CheckpointMetadata *m, const char *metadata_path,
                   const Flint__Graph__JobGraph *g, int default_maxp, bool allow_non_restored,
                   jm_restore **out, flint_err *err);
void jm_restore_free(jm_restore *r);
int64_t jm_restore_checkpoint_id(const jm_restore *r);
bool jm_restore_is_savepoint(const jm_restore *r);
const char *jm_restore_metadata_path(const jm_restore *r);
const Flint__Checkpoint__CheckpointMetadata *jm_restore_metadata(const jm_restore *r);

/* What subtask `subtask` of vertex v (at parallelism p, max parallelism maxp) restores: a new
 * message with absolute paths (free with jm_restore_task_free), or NULL when none of v's
 * operators has state in the plan. */
Flint__Checkpoint__TaskRestore *jm_restore_task(const jm_restore *r, const Flint__Graph__JobVertex *v,
                                                int p, int maxp, int subtask);
void jm_restore_task_free(Flint__Checkpoint__TaskRestore *t);

/* A deep copy of any protobuf-c message (pack, unpack): free it with its free_unpacked. */
void *jm_msg_copy(const void *msg);

#endif

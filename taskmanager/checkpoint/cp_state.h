/* What a task's snapshot holds and how it is read back (issue 6): keyed state with timers by key
 * group, RocksDB snapshots and incremental checkpoints, operator list and broadcast state, files.
 *
 * Keyed state file (formats canonical-v1, hashmap-v1 and rocksdb-full-v1 share this layout: the
 * backend-independent block format of state/tm_state.h inside each key group, so that any of
 * them restores into either backend, at any key-group range). key_group_offsets[k] points at the
 * section of key group start + k; a section is self-delimiting, so a handle cut to fewer key
 * groups by the jobmanager still reads:
 *     "FCKG"  u64 S (little-endian)  S bytes: the state block of the key group ("FKG1" ...)
 *     u32 T, then T timers: u8 domain, i64 time, u32 key length, key, u32 namespace length, ns
 * Incremental RocksDB (rocksdb-incremental-v1): the SST files (shared), MANIFEST/CURRENT/OPTIONS
 * (private) and a meta file: "FRIM", u32 n states (u16 name length, name, u8 kind, i64 ttl,
 * u16 column family name length, name), then u32 key groups with timers, each: u16 key group,
 * u32 T, T timers as above. Restoring into a RocksDB backend at the handle's own key groups
 * makes the files its database (hard links, nothing read); otherwise the files are opened
 * read-only in a scratch directory and the entries of the subtask's key groups added to the
 * backend (any backend, any key groups).
 * Operator state file: the elements of each named state one after the other, each a 4-byte
 * big-endian length and its bytes (docs/checkpointing-protocol.md); SPLIT_DISTRIBUTE: one element
 * per list element; BROADCAST: one element, the whole map as its entries one after the other,
 * each (u32 LE key length, key, u32 LE value length, value). */
#ifndef FLINT_CP_STATE_H
#define FLINT_CP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.pb-c.h"
#include "flint/status.h"
#include "task/tm_timers.h"

struct tm_state_backend;
struct tm_op;

/* ---- a growable byte buffer ---- */
typedef struct cp_buf {
    uint8_t *p;
    size_t len, cap;
} cp_buf;
void cp_buf_add(cp_buf *b, const void *data, size_t n);
void cp_buf_u8(cp_buf *b, uint8_t v);
void cp_buf_u16(cp_buf *b, uint16_t v);     /* little-endian */
void cp_buf_u32(cp_buf *b, uint32_t v);
void cp_buf_u64(cp_buf *b, uint64_t v);
void cp_buf_free(cp_buf *b);
/* tm_state_write_fn over a cp_buf (ud). */
int cp_buf_write_fn(void *ud, const void *data, size_t len);
/* tm_state_read_fn over bytes (ud: a cp_mem_in). */
typedef struct cp_mem_in {
    const uint8_t *p;
    size_t len, pos;
} cp_mem_in;
long cp_mem_read(void *ud, void *buf, size_t len);

/* ---- keyed state: sections ---- */
/* The timers of q in key groups [first, last], one entry per key group: tb gets "u32 T, timers"
 * per key group, toffs[k] (last - first + 2 entries) where key group first + k starts in tb. q
 * may be NULL (no timers: T = 0). */
void cp_timers_capture(const tm_timer_queue *q, int first, int last, cp_buf *tb, size_t *toffs);
/* Append the section of one key group: its state block and its timers (tb bytes as above). */
void cp_section_add(cp_buf *out, const void *block, size_t blen, const void *timers, size_t tlen);
/* The whole keyed state file of backend b (may be NULL: timers only) and q for key groups
 * [first, last] into out, offsets[k] where key group first + k starts. */
int cp_keyed_capture_mem(struct tm_state_backend *b, const tm_timer_queue *q, int first, int last, cp_buf *out,
                         int64_t *offsets, flint_err *err);

/* A consistent view of backend b for an asynchronous full snapshot, taken in the task thread in
 * little time: a copy-on-write view of a hashmap backend (tm_state_view_new), a DB snapshot of a
 * RocksDB one (cp_rdb_view_new). The checkpoint thread writes its key groups' blocks while the
 * task goes on, then frees it (before the backend closes). */
typedef struct cp_keyed_view cp_keyed_view;
cp_keyed_view *cp_keyed_view_new(struct tm_state_backend *b, flint_err *err);
/* The state block of key group kg (any one thread). */
int cp_keyed_view_block(cp_keyed_view *v, int kg, cp_buf *out, flint_err *err);
void cp_keyed_view_free(cp_keyed_view *v);

/* Restore the timers in tb (u32 T, timers) into the queue got from get_q (called only when
 * there is a timer); key groups outside [first, last] are skipped. */
typedef tm_timer_queue *(*cp_queue_fn)(void *ud);
int cp_timers_restore(const uint8_t *tb, size_t len, int kg, int first, int last, cp_queue_fn get_q, void *ud,
                      flint_err *err);

/* Restore a full keyed handle (path absolute, or inline) into b and the timer queue. Errors name
 * the file; *bad (static or the handle's path) is the file to report. */
int cp_restore_keyed_full(const Flint__Checkpoint__KeyedStateHandle *h, struct tm_state_backend *b, int first,
                          int last, cp_queue_fn get_q, void *ud, const char **bad, flint_err *err);

/* ---- RocksDB (cp_rocksdb.c) ---- */
typedef struct cp_rdb_view cp_rdb_view;
/* A consistent view of a RocksDB backend for a full snapshot: a DB snapshot and its states (task
 * thread, quick). NULL with err when b is not a RocksDB backend. */
cp_rdb_view *cp_rdb_view_new(struct tm_state_backend *b, flint_err *err);
/* The state block of key group kg (any thread; the backend must stay open). */
int cp_rdb_view_block(cp_rdb_view *v, int kg, cp_buf *out, flint_err *err);
void cp_rdb_view_free(cp_rdb_view *v);
/* A RocksDB checkpoint (hard links, after a flush) of b into dir (which must not exist), and the
 * meta file's states part into meta (task thread). */
int cp_rdb_checkpoint(struct tm_state_backend *b, const char *dir, cp_buf *meta, flint_err *err);
/* The backend's local directory (for scratch directories beside it). */
const char *cp_rdb_dir(struct tm_state_backend *b);
/* Restore an incremental handle into b (entries of key groups [first, last]) and its timers;
 * scratch: a directory that may be created and is removed. A RocksDB backend without states yet
 * whose key groups are the handle's takes the files as its database. */
/* Whether restoring h into b at key groups [first, last] makes the handle's files b's database
 * (then b's SST files are the handle's shared files, under the same names). */
bool cp_rdb_restores_natively(const Flint__Checkpoint__KeyedStateHandle *h, struct tm_state_backend *b, int first,
                              int last);
int cp_restore_keyed_incremental(const Flint__Checkpoint__KeyedStateHandle *h, struct tm_state_backend *b,
                                 int first, int last, const char *scratch, cp_queue_fn get_q, void *ud,
                                 const char **bad, flint_err *err);

/* ---- operator (list and broadcast) state ---- */
/* op's operator state as a file image (out) and its handle (file path left empty; NULL when op
 * has no operator state). */
int cp_opstate_capture(struct tm_op *op, cp_buf *out, Flint__Checkpoint__OperatorStateHandle **h, flint_err *err);
/* Restore the given handles (this subtask's elements only) into op's operator state. */
int cp_opstate_restore(struct tm_op *op, Flint__Checkpoint__OperatorStateHandle *const *hs, size_t n,
                       const char **bad, flint_err *err);

/* ---- files ---- */
/* Write data to path (created exclusively: the directory must exist) and fsync it. */
int cp_write_file(const char *path, const void *data, size_t len, flint_err *err);
/* The bytes of a handle: its inline data or its file (path absolute). */
int cp_read_handle(const Flint__Checkpoint__StreamStateHandle *h, cp_buf *out, flint_err *err);
/* Hard-link src to dst, copying when a link is not possible; *copied: bytes copied (0 linked). */
int cp_link_or_copy(const char *src, const char *dst, int64_t *copied, flint_err *err);
int cp_copy_file(const char *src, const char *dst, flint_err *err);
void cp_rm_rf(const char *path);

#endif

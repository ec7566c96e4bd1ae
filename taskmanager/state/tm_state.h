/* Keyed state backends: the one interface keyed operators (rolling reduce, keyed process
 * functions, windows, joins) keep their state behind, with two implementations chosen by
 * state.backend.type: "hashmap" (tm_state_hashmap.c, in memory) and "rocksdb" (tm_state_rocksdb.c,
 * RocksDB under io.tmp.dirs, one instance per operator instance, a column family per state).
 *
 * How to use: an operator instance opens one backend in its open callback (tm_state_op_open, at
 * the end of this header, fills the config from the task: backend type, RocksDB options, key-group
 * range, max parallelism, a unique directory name), registers its states by name
 * (tm_state_register: kind + TTL), and before each record or timer sets the current key
 * (tm_state_set_key: key bytes as tm_keys / row_key_encode produce them, and the key group,
 * row_key_group(row_key_hash(key), maxp); or tm_state_set_key_hashed, which computes it). Every
 * operation then acts on the current key and a namespace: bytes, empty (NULL, 0) for plain keyed
 * state; windows pass their window (e.g. 16 bytes: start, end) so that state lives per (key,
 * window). Values are opaque bytes (serialized rows, flint_row layout): the backend copies them in
 * and hands back views. Reducing/aggregating state is value state whose read-modify-write the
 * caller does (the kind is kept for snapshots and checks). Snapshots are per key group in one
 * backend-independent format, so a snapshot of either backend restores into either, at any key
 * group range (rescaling, savepoints).
 *
 * Lifetimes: a view (value, list blob, map value, iterator entry) stays valid until the next read
 * on any state of the same backend, or a write or delete of the same entry (the hashmap backend
 * points into its entries, RocksDB into a pinned slice): so a list read may be appended to another
 * (key, namespace) while walking it. Errors: mutations return a status; reads return found/not
 * found and, on an I/O error (RocksDB), record it in the backend: tm_state_backend_error says
 * whether one happened. A backend is used by one thread (the task's); only a view
 * (tm_state_view_new) is written and freed by another. */
#ifndef FLINT_TM_STATE_H
#define FLINT_TM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint/status.h"

typedef struct tm_state_backend tm_state_backend;
typedef struct tm_state tm_state;              /* one registered state of a backend */
typedef struct tm_state_iter tm_state_iter;

typedef enum tm_state_kind {
    TM_STATE_VALUE = 1,
    TM_STATE_LIST,
    TM_STATE_MAP,
    TM_STATE_REDUCING,
    TM_STATE_AGGREGATING
} tm_state_kind;

typedef enum tm_backend_type { TM_BACKEND_HASHMAP, TM_BACKEND_ROCKSDB } tm_backend_type;

/* Millisecond clock for TTL (epoch ms); tests inject their own. */
typedef int64_t (*tm_state_clock_fn)(void *ud);

typedef struct tm_state_config {
    tm_backend_type type;
    int max_parallelism;                 /* number of key groups (pipeline.max-parallelism) */
    int kg_first, kg_last;               /* the key groups this instance owns (inclusive) */
    /* rocksdb: the instance lives in <tmp_dir>/flint-state-<name>/, removed on close (a stale
     * one from a crashed run is removed on open). name: unique per task attempt + operator, made
     * of [A-Za-z0-9._-] (others are replaced by '_'). tmp_dir: io.tmp.dirs (a list separated by
     * ';', ',', ':' or '|': instances spread over its directories by a hash of name). */
    const char *tmp_dir;
    const char *name;
    int64_t block_cache_size;            /* state.backend.rocksdb.block-cache-size, bytes */
    int64_t write_buffer_size;           /* state.backend.rocksdb.writebuffer.size, bytes */
    tm_state_clock_fn clock;             /* NULL: the wall clock */
    void *clock_ud;
} tm_state_config;

/* ---- backends -------------------------------------------------------------------------------- */
/* "hashmap" / "rocksdb" -> type; false for anything else. */
bool tm_backend_type_parse(const char *name, tm_backend_type *out);
const char *tm_backend_type_name(tm_backend_type t);
/* Open a backend. The config's strings are copied. The caller closes it. */
int tm_state_backend_open(const tm_state_config *cfg, tm_state_backend **out, flint_err *err);
/* Free everything (states, iterators must be closed first); rocksdb removes its directory. */
void tm_state_backend_close(tm_state_backend *b);
tm_backend_type tm_state_backend_type(const tm_state_backend *b);
/* The first I/O error since open (code and message), or FLINT_OK. */
int tm_state_backend_error(const tm_state_backend *b, flint_err *err);
/* The backend's clock (for TTL), epoch ms. */
int64_t tm_state_backend_now(const tm_state_backend *b);

/* ---- states ---------------------------------------------------------------------------------- */
/* Register the state called name, or return the one registered (or restored) under that name:
 * then kind must be equal and TTL on/off equal (a different positive ttl_ms is taken). ttl_ms > 0:
 * an entry (a value, a list element, a map entry) expires ttl_ms after its last write; expired
 * entries are never returned, dropped when read and left out of snapshots. The state belongs to
 * the backend. */
int tm_state_register(tm_state_backend *b, const char *name, tm_state_kind kind, int64_t ttl_ms,
                      tm_state **out, flint_err *err);
const char *tm_state_name(const tm_state *st);
tm_state_kind tm_state_kind_of(const tm_state *st);
tm_state_backend *tm_state_backend_of(const tm_state *st);

/* ---- the current key ------------------------------------------------------------------------- */
/* Set the key (bytes copied; no allocation once the largest key was seen) and its key group,
 * which must be in the backend's range. */
void tm_state_set_key(tm_state_backend *b, const void *key, size_t len, int key_group);
/* The same with the key group computed: row_key_group(row_key_hash(key), max_parallelism);
 * false (and the current key unchanged) when that key group is outside the backend's range. */
bool tm_state_set_key_hashed(tm_state_backend *b, const void *key, size_t len);
/* The current key (view) and key group. */
const uint8_t *tm_state_current_key(const tm_state_backend *b, size_t *len);
int tm_state_current_key_group(const tm_state_backend *b);

/* ---- value, reducing and aggregating state --------------------------------------------------- */
/* The current key's value in namespace ns: true with a view in *val and *len, false when absent or
 * expired. */
bool tm_state_value_get(tm_state *st, const void *ns, size_t nslen, const uint8_t **val, size_t *len);
int tm_state_value_put(tm_state *st, const void *ns, size_t nslen, const void *val, size_t len);
/* Overwrite n bytes at offset off of the current key's value in ns, which must exist and hold at
 * least off + n bytes; the rest of the value stays as it is. The hashmap backend writes in place
 * (a keyed aggregate changing one 8-byte field of a 1 KiB row copies 8 bytes, not the row); the
 * others read, patch and put the whole value. The value as it now is in *val, *len (a view, as
 * tm_state_value_get's). */
int tm_state_value_overwrite(tm_state *st, const void *ns, size_t nslen, size_t off, const void *bytes, size_t n,
                             const uint8_t **val, size_t *len);

/* ---- list state ------------------------------------------------------------------------------ *
 * A list is returned as one blob of elements, each a 4-byte little-endian length then the
 * element's bytes; walk it with tm_state_list_next. Appending never reads the list (RocksDB: a
 * merge). */
int tm_state_list_add(tm_state *st, const void *ns, size_t nslen, const void *val, size_t len);
/* The elements (unexpired) as a blob view; false when the list is empty or absent. */
bool tm_state_list_get(tm_state *st, const void *ns, size_t nslen, const uint8_t **blob, size_t *len);
/* Replace the list with vals[0..n) (n == 0 clears it). */
int tm_state_list_update(tm_state *st, const void *ns, size_t nslen, int n, const void *const *vals,
                         const size_t *lens);
/* Walk a list blob: the next element from *pos (start at the blob) before end; false at the end. */
static inline bool tm_state_list_next(const uint8_t **pos, const uint8_t *end, const uint8_t **elem,
                                      size_t *len) {
    if (*pos + 4 > end) return false;
    uint32_t n = (uint32_t)(*pos)[0] | (uint32_t)(*pos)[1] << 8 | (uint32_t)(*pos)[2] << 16 |
                 (uint32_t)(*pos)[3] << 24;
    if ((size_t)(end - *pos - 4) < n) return false;
    *elem = *pos + 4;
    *len = n;
    *pos += 4 + (size_t)n;
    return true;
}

/* ---- map state (user key -> value, per current key and namespace) ---------------------------- */
bool tm_state_map_get(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen,
                      const uint8_t **val, size_t *len);
int tm_state_map_put(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen,
                     const void *val, size_t len);
int tm_state_map_remove(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen);
bool tm_state_map_contains(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen);
/* The current key's map entries in ns (order unspecified). Removing the entry just returned is
 * allowed while iterating; other writes to this state are not. */
tm_state_iter *tm_state_map_iter(tm_state *st, const void *ns, size_t nslen);

/* ---- any kind -------------------------------------------------------------------------------- */
/* Drop the current key's entry in ns (a whole list, a whole map). */
int tm_state_clear(tm_state *st, const void *ns, size_t nslen);

/* ---- iteration ------------------------------------------------------------------------------- */
/* One entry: for VALUE/REDUCING/AGGREGATING (key, ns, value); LIST (key, ns, blob of the list);
 * MAP one entry per user key (key, ns, ukey, value). Views, valid until the next call. */
typedef struct tm_state_entry {
    int key_group;
    const uint8_t *key, *ns, *ukey, *value;
    size_t klen, nslen, uklen, vlen;
} tm_state_entry;

/* Every (unexpired) entry of st over all keys and namespaces, in key group order (within a key
 * group the order is unspecified). Clearing/removing the entry just returned (after setting its
 * key) is allowed; other writes to st while iterating are not. The current key is not changed. */
tm_state_iter *tm_state_iter_all(tm_state *st);
bool tm_state_iter_next(tm_state_iter *it, tm_state_entry *e);
void tm_state_iter_close(tm_state_iter *it);
/* Number of entries of st (map: user keys; list: lists), expired ones included: for tests and
 * metrics; RocksDB counts by iterating. */
size_t tm_state_count(tm_state *st);

/* ---- snapshots by key group ------------------------------------------------------------------
 * The format (backend-independent, little-endian), one block per key group:
 *   "FKG1" u16 key_group, then per state with entries in that key group:
 *     u8 1, u16 name length, name, u8 kind, i64 ttl_ms,
 *     entries: u8 1, u32 klen, key, u32 nslen, ns, [MAP: u32 uklen, ukey,] u32 vlen, value
 *     (the stored form: with TTL the value/element/map value starts with its i64 write time;
 *      a list value is its blob of elements)
 *     u8 0
 *   u8 0.
 * Writes go through write(ud, data, len) (a non-zero return aborts with that status). */
typedef int (*tm_state_write_fn)(void *ud, const void *data, size_t len);
/* Read up to len bytes into buf; returns the count (0 at the end, < 0 on error). */
typedef long (*tm_state_read_fn)(void *ud, void *buf, size_t len);

/* Write the blocks of key groups [kg_first, kg_last] (within the backend's range; an empty key
 * group still writes its empty block), expired entries left out. */
int tm_state_snapshot(tm_state_backend *b, int kg_first, int kg_last, tm_state_write_fn write,
                      void *ud, flint_err *err);
/* A consistent view of a hashmap backend for an asynchronous snapshot (Flink's copy-on-write
 * snapshot): taken in the task thread in O(states x key groups), it keeps the state (and the
 * states' names, kinds and TTLs, and the TTL clock) as it is now while the task goes on writing:
 * writes copy what the view still shares (tm_state_hashmap.c). Its blocks are then written, and
 * the view freed, by any one thread; the backend must stay open until then. NULL with err for a
 * backend without views (RocksDB has its own DB snapshots: checkpoint/cp_rocksdb.c). */
typedef struct tm_state_view tm_state_view;
tm_state_view *tm_state_view_new(tm_state_backend *b, flint_err *err);
/* The blocks of key groups [kg_first, kg_last] as tm_state_snapshot writes them. */
int tm_state_view_snapshot(tm_state_view *v, int kg_first, int kg_last, tm_state_write_fn write, void *ud,
                           flint_err *err);
void tm_state_view_free(tm_state_view *v);
/* Read blocks until the end of the input and add their entries: blocks of key groups outside the
 * backend's range are skipped (rescaling reads other subtasks' snapshots whole); states not
 * registered yet are registered with the snapshot's kind and TTL. */
int tm_state_restore(tm_state_backend *b, tm_state_read_fn read, void *ud, flint_err *err);

/* ---- operators (tm_state_api.c) ----------------------------------------------------------------
 * A keyed operator's open: tm_state_op_open(op, &b) builds the config from the task (job config
 * over the taskmanager's: state.backend.type, io.tmp.dirs, RocksDB options; the subtask's
 * key-group range of rt->max_parallelism; a directory name from the task and op->index), opens
 * the backend and attaches it to op->ctx, so that the user's open function can call
 * flint_state_value & co. Its close: tm_state_op_close(op, b). Non-keyed operators with user
 * functions call tm_state_op_open(op, NULL): operator list and broadcast state only (keyed state
 * calls then fail the operator). Both fail the operator (tm_op_fail) on error. */
struct tm_op;
int tm_state_op_open(struct tm_op *op, tm_state_backend **b);
void tm_state_op_close(struct tm_op *op, tm_state_backend *b);
/* Issue 6 (checkpoints): the keyed backend op opened with tm_state_op_open, or NULL. */
tm_state_backend *tm_state_op_keyed(struct tm_op *op);
/* The backend config tm_state_op_open uses (for operators that open more backends, and tests);
 * its strings point into tmp_buf and name_buf (the caller's). */
int tm_state_op_config(struct tm_op *op, tm_state_config *cfg, char tmp_buf[1024], char name_buf[256],
                       flint_err *err);

/* Operator (non-keyed) state of op: its operator list and broadcast states in one snapshot
 * ("FOS1" blocks; see tm_state_api.c). Restore reads the snapshots of all old subtasks one after
 * the other: list elements are dealt round robin over the new subtasks (element i of a state,
 * counted over all snapshots, goes to subtask i % parallelism), broadcast states are taken whole.
 * Restore before the user's open function creates the states (it finds them restored). */
int tm_state_op_snapshot_operator(struct tm_op *op, tm_state_write_fn write, void *ud, flint_err *err);
int tm_state_op_restore_operator(struct tm_op *op, tm_state_read_fn read, void *ud, flint_err *err);
/* The same without dealing: every list element read is this subtask's (the jobmanager assigned
 * the elements already: restore from a checkpoint's OperatorStateHandle). */
int tm_state_op_restore_operator_assigned(struct tm_op *op, tm_state_read_fn read, void *ud, flint_err *err);

#endif

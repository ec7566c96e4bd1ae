/* A write-back cache in front of the rocksdb state backend (tm_state_rocksdb.c): the keys (of one
 * column family each) the task wrote or deleted lately, with their value, and the keys it found
 * absent in RocksDB. A put or delete only changes the cache; dirty entries reach RocksDB in one
 * WriteBatch when the cache is full or when the backend flushes it (before iterating, merging
 * into the key, exporting the database to a checkpoint). Read-modify-write of hot keys (window
 * aggregates, counters) then costs hash lookups instead of memtable skip-list searches, and a key
 * written and deleted between two batches (a window that fires) never reaches RocksDB when
 * RocksDB never had it. What the task closes with is dropped with the instance.
 *
 * Views: a value view (rc_get) stays valid until the next rc_begin_read, or a write of the same
 * entry, as the backend promises (tm_state.h "Lifetimes"): buffers of entries dropped in between
 * are kept until then. One thread (the task's). */
#ifndef FLINT_TM_STATE_RDBCACHE_H
#define FLINT_TM_STATE_RDBCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

typedef struct rc_cache rc_cache;

/* What the cache knows of a key. */
typedef enum rc_lookup {
    RC_MISS,       /* nothing: ask RocksDB */
    RC_ABSENT,     /* absent (deleted, or RocksDB said so) */
    RC_PRESENT     /* present: the value view is set */
} rc_lookup;

/* Where writes go: the backend's database and write options (not owned; the database may change
 * between calls, as a restore reopens it, while the cache holds nothing dirty). */
typedef struct rc_db {
    rocksdb_t *db;
    rocksdb_writeoptions_t *wo;
} rc_db;

/* A cache of at most max_entries keys and about max_bytes of keys and values. */
rc_cache *rc_new(int max_entries, size_t max_bytes);
/* Free the cache (without writing what is dirty). */
void rc_free(rc_cache *c);

/* Start of a read: views handed out earlier may go. */
void rc_begin_read(rc_cache *c);
/* What the cache knows of (cf, key); RC_PRESENT with the value in *v, *vlen. */
rc_lookup rc_get(rc_cache *c, const rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
                 const uint8_t **v, size_t *vlen);
/* Remember that RocksDB has no value for (cf, key) (after an RC_MISS): a put and delete of it
 * before the next batch then never reach RocksDB. (A value RocksDB has is not cached: a put of
 * the key caches the new one.) Functions taking a rc_db may write dirty entries to make room:
 * FLINT_OK, or FLINT_IO with RocksDB's message in *err (the caller frees it with rocksdb_free). */
int rc_note_absent(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
                   char **err);
/* Put a value / delete (cf, key), in the cache. */
int rc_put(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen, const void *v,
           size_t vlen, char **err);
int rc_del(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen, char **err);
/* Write (cf, key)'s entry to RocksDB if it is dirty, and forget it (before a merge into the key,
 * or when RocksDB's copy changes behind the cache). */
int rc_evict(rc_cache *c, rc_db d, const rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
             char **err);
/* Write every dirty entry in one batch (they stay cached, clean). */
int rc_flush(rc_cache *c, rc_db d, char **err);

/* Counters, for tests: lookups answered, puts and deletes that never reached RocksDB (overwritten
 * in the cache, or deletes of keys RocksDB never had), entries written, batches. */
typedef struct rc_stats {
    int64_t hits, misses, writes_absorbed, entries_written, flushes;
    int entries;
} rc_stats;
void rc_get_stats(const rc_cache *c, rc_stats *st);

#endif

/* Internals shared by the state backends: the backend and state structs and the table of
 * primitive operations each backend implements (tm_state_hashmap.c, tm_state_rocksdb.c) under
 * the generic layer (tm_state.c), which owns the current key, TTL, iteration filtering and the
 * snapshot format. Backends see values in their stored form (with TTL: the 8-byte write time
 * first; a list: its blob of length-prefixed elements). */
#ifndef FLINT_TM_STATE_INT_H
#define FLINT_TM_STATE_INT_H

#include "state/tm_state.h"

/* A value handed to a backend in pieces (TTL header + payload), so nobody copies to join them. */
typedef struct tm_slice {
    const void *p;
    size_t n;
} tm_slice;

typedef struct tm_raw_iter tm_raw_iter;   /* a backend's iterator */

typedef struct tm_state_backend_vt {
    const char *name;
    int (*open)(tm_state_backend *b, flint_err *err);
    void (*close)(tm_state_backend *b);            /* frees st->impl of every state too */
    int (*add_state)(tm_state *st, flint_err *err);
    /* On the current key and namespace; uk/uklen only for MAP states (else NULL, 0). */
    bool (*get)(tm_state *st, const void *ns, size_t nslen, const void *uk, size_t uklen,
                const uint8_t **v, size_t *len);
    int (*put)(tm_state *st, const void *ns, size_t nslen, const void *uk, size_t uklen,
               const tm_slice *parts, int nparts);
    /* Optional (NULL: tm_state.c reads, patches and puts): overwrite n bytes at off of the value
     * of the current key and ns (not MAP, no TTL), which exists and holds at least off + n bytes;
     * the value's place afterwards in *v, *len. */
    int (*overwrite)(tm_state *st, const void *ns, size_t nslen, size_t off, const void *p, size_t n,
                     const uint8_t **v, size_t *len);
    /* LIST: append encoded elements (the concatenation of parts) to the list. */
    int (*append)(tm_state *st, const void *ns, size_t nslen, const tm_slice *parts, int nparts);
    /* Delete one entry (MAP: one user key). */
    int (*del)(tm_state *st, const void *ns, size_t nslen, const void *uk, size_t uklen);
    /* MAP: every user key of (current key, ns). */
    int (*clear_map)(tm_state *st, const void *ns, size_t nslen);
    /* Entries in stored form: one map (current key, ns), or all of key groups [first, last]. The
     * entry just returned may be deleted; e->key_group is set. */
    tm_raw_iter *(*iter_map)(tm_state *st, const void *ns, size_t nslen);
    tm_raw_iter *(*iter_range)(tm_state *st, int kg_first, int kg_last);
    bool (*iter_next)(tm_raw_iter *it, tm_state_entry *e);
    void (*iter_close)(tm_raw_iter *it);
    /* Consistent views (tm_state_view_new; NULL when the backend has none): view_new in the task
     * thread; view_iter (the entries of the view's state s in key group kg, walked with
     * iter_next/iter_close) and view_free in any one thread while the task goes on. */
    void *(*view_new)(tm_state_backend *b);
    tm_raw_iter *(*view_iter)(void *view, int s, int kg);
    void (*view_free)(void *view);
} tm_state_backend_vt;

extern const tm_state_backend_vt tm_state_hashmap_vt;
extern const tm_state_backend_vt tm_state_rocksdb_vt;

struct tm_state_backend {
    const tm_state_backend_vt *vt;
    tm_state_config cfg;                 /* strings: the copies below */
    char *tmp_dir, *name;
    /* the current key */
    uint8_t *key;
    size_t klen, kcap;
    int kg;
    uint64_t khash;                      /* XXH3 of the key (hashmap buckets) */
    tm_state **states;
    int n_states, cap_states;
    uint8_t *scratch, *scratch2;         /* TTL: stripped / filtered copies */
    size_t scap, scap2;
    int err_code;                        /* the first I/O error */
    char err_msg[512];
    void *impl;                          /* the backend's */
};

struct tm_state {
    tm_state_backend *b;
    char *name;
    tm_state_kind kind;
    int64_t ttl_ms;
    int index;
    void *impl;                          /* the backend's */
};

/* Issue 6 (taskmanager/checkpoint/cp_rocksdb.c): a RocksDB backend's rocksdb_t *, a state's
 * column family handle and the instance's directory (NULL for other backends). */
void *tm_state_rocksdb_db(tm_state_backend *b);
void *tm_state_rocksdb_cf(tm_state *st);
const char *tm_state_rocksdb_dir(tm_state_backend *b);
/* Restoring an incremental checkpoint at the same key groups (Flink's RocksDB incremental
 * restore): reset closes the database of a RocksDB backend without states and empties its
 * directory, the caller puts the checkpoint's files there, reopen opens the database on them with
 * the column families cf_names[0..n), each taken over by the state state_names[i] when that state
 * registers. A reopen that fails leaves an empty database (a usable backend) and says why. */
int tm_state_rocksdb_reset(tm_state_backend *b, flint_err *err);
int tm_state_rocksdb_reopen(tm_state_backend *b, int n, char *const *cf_names, char *const *state_names,
                            flint_err *err);

/* Record an I/O error of the backend (the first one stays); returns FLINT_IO. */
int tm_state_backend_fail(tm_state_backend *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void tm_put32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t tm_get32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void tm_put64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t tm_get64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif

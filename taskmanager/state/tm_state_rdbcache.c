/* The rocksdb backend's write-back cache (tm_state_rdbcache.h): an open-addressing table (linear
 * probing, at most half full) of entries, each one buffer holding the RocksDB key and the value.
 * Entries are never removed one by one: a forgotten entry stays in its slot without knowledge
 * (flags 0) until the table is emptied, which happens when it is full: dirty entries are written
 * in one WriteBatch, then every buffer is freed but the one the last view points into (kept until
 * the next read). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "flint/status.h"
#include "state/tm_state_rdbcache.h"
#include "util/alloc.h"

enum {
    F_KNOWN = 1,       /* the entry says something about its key (else: ask RocksDB) */
    F_PRESENT = 2,     /* it has a value (else absent) */
    F_DIRTY = 4,       /* RocksDB does not have it yet */
    F_IN_DB = 8        /* RocksDB may hold a value for the key */
};

typedef struct rc_entry {
    uint8_t *buf;                              /* key then value; NULL: a free slot */
    size_t klen, vlen, cap;
    uint64_t hash;
    rocksdb_column_family_handle_t *cf;
    int flags;
} rc_entry;

struct rc_cache {
    rc_entry *slots;
    size_t mask;                               /* slots - 1 (a power of two) */
    int n, max_entries;
    size_t bytes, max_bytes;
    const uint8_t *view;                       /* the buffer of the last view handed out */
    uint8_t **retired;                         /* dropped buffers a view may still point into */
    int n_retired, cap_retired;
    rc_stats st;
};

#define MIN_SLOTS 1024

rc_cache *rc_new(int max_entries, size_t max_bytes) {
    assert(max_entries > 0);
    rc_cache *c = XNEW(rc_cache);
    c->slots = xcalloc(MIN_SLOTS, sizeof *c->slots);
    c->mask = MIN_SLOTS - 1;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    return c;
}

static void free_retired(rc_cache *c) {
    for (int i = 0; i < c->n_retired; i++) free(c->retired[i]);
    c->n_retired = 0;
}

/* Empty the table; the last view's buffer survives until the next read. */
static void drop_all(rc_cache *c) {
    for (size_t i = 0; i <= c->mask; i++) {
        rc_entry *e = &c->slots[i];
        if (!e->buf) continue;
        assert(!(e->flags & F_DIRTY));
        if (e->buf == c->view) {
            if (c->n_retired == c->cap_retired) {
                c->cap_retired = c->cap_retired ? 2 * c->cap_retired : 4;
                c->retired = xrealloc(c->retired, (size_t)c->cap_retired * sizeof *c->retired);
            }
            c->retired[c->n_retired++] = e->buf;
        } else {
            free(e->buf);
        }
    }
    memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
    c->n = 0;
    c->bytes = 0;
}

void rc_free(rc_cache *c) {
    if (!c) return;
    c->view = NULL;
    for (size_t i = 0; i <= c->mask; i++) c->slots[i].flags &= ~F_DIRTY;
    drop_all(c);
    free_retired(c);
    free(c->retired);
    free(c->slots);
    free(c);
}

void rc_begin_read(rc_cache *c) {
    c->view = NULL;
    if (c->n_retired) free_retired(c);
}

static inline uint64_t hash_of(const void *cf, const uint8_t *key, size_t klen) {
    return XXH3_64bits_withSeed(key, klen, (uint64_t)(uintptr_t)cf);
}

/* The slot of (cf, key): its entry, or the free slot where it would go. */
static rc_entry *slot_of(rc_cache *c, const void *cf, const uint8_t *key, size_t klen, uint64_t h) {
    for (size_t i = h & c->mask;; i = (i + 1) & c->mask) {
        rc_entry *e = &c->slots[i];
        if (!e->buf || (e->hash == h && e->cf == cf && e->klen == klen && memcmp(e->buf, key, klen) == 0)) return e;
    }
}

rc_lookup rc_get(rc_cache *c, const rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
                 const uint8_t **v, size_t *vlen) {
    rc_entry *e = slot_of(c, cf, key, klen, hash_of(cf, key, klen));
    if (!e->buf || !(e->flags & F_KNOWN)) {
        c->st.misses++;
        return RC_MISS;
    }
    c->st.hits++;
    if (!(e->flags & F_PRESENT)) return RC_ABSENT;
    *v = e->buf + e->klen;
    *vlen = e->vlen;
    c->view = e->buf;
    return RC_PRESENT;
}

static void write_entry(rocksdb_writebatch_t *wb, const rc_entry *e) {
    if (e->flags & F_PRESENT)
        rocksdb_writebatch_put_cf(wb, e->cf, (const char *)e->buf, e->klen, (const char *)e->buf + e->klen, e->vlen);
    else
        rocksdb_writebatch_delete_cf(wb, e->cf, (const char *)e->buf, e->klen);
}

/* A write reached RocksDB: the entry is clean. */
static void written(rc_cache *c, rc_entry *e) {
    e->flags &= ~F_DIRTY;
    if (e->flags & F_PRESENT) e->flags |= F_IN_DB;
    else e->flags &= ~F_IN_DB;
    c->st.entries_written++;
}

/* Order of (column family, key): a batch sorted so lets RocksDB insert each key next to the one
 * before it in the memtable's skip list (its insert hint) instead of searching from the top. */
static int entry_cmp(const void *a, const void *b) {
    const rc_entry *x = *(rc_entry *const *)a, *y = *(rc_entry *const *)b;
    if (x->cf != y->cf) return (uintptr_t)x->cf < (uintptr_t)y->cf ? -1 : 1;
    int c = memcmp(x->buf, y->buf, x->klen < y->klen ? x->klen : y->klen);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

int rc_flush(rc_cache *c, rc_db d, char **err) {
    rc_entry **dirty = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i <= c->mask; i++) {
        rc_entry *e = &c->slots[i];
        if (!e->buf || !(e->flags & F_DIRTY)) continue;
        if (n == cap) dirty = xrealloc(dirty, (cap = cap ? 2 * cap : 256) * sizeof *dirty);
        dirty[n++] = e;
    }
    if (!n) return FLINT_OK;
    qsort(dirty, n, sizeof *dirty, entry_cmp);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) write_entry(wb, dirty[i]);
    rocksdb_write(d.db, d.wo, wb, err);
    rocksdb_writebatch_destroy(wb);
    if (!*err) {
        c->st.flushes++;
        for (size_t i = 0; i < n; i++) written(c, dirty[i]);
    }
    free(dirty);
    return *err ? FLINT_IO : FLINT_OK;
}

/* Twice the slots, while at most half of them are in use. */
static void grow(rc_cache *c) {
    size_t n = (c->mask + 1) * 2;
    rc_entry *old = c->slots, *slots = xcalloc(n, sizeof *slots);
    for (size_t i = 0; i <= c->mask; i++) {
        if (!old[i].buf) continue;
        size_t j = old[i].hash & (n - 1);
        while (slots[j].buf) j = (j + 1) & (n - 1);
        slots[j] = old[i];
    }
    free(old);
    c->slots = slots;
    c->mask = n - 1;
}

/* The entry for (cf, key) with room for a value of vlen bytes, its value and flags to be set by
 * the caller (flags 0 when new); NULL with *err when making room failed. */
static rc_entry *entry_for(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
                           size_t vlen, char **err) {
    uint64_t h = hash_of(cf, key, klen);
    rc_entry *e = slot_of(c, cf, key, klen, h);
    if (!e->buf) {
        if (c->n >= c->max_entries || c->bytes >= c->max_bytes) {
            if (rc_flush(c, d, err)) return NULL;
            drop_all(c);
            e = slot_of(c, cf, key, klen, h);
        } else if ((size_t)c->n + 1 > (c->mask + 1) / 2) {
            grow(c);
            e = slot_of(c, cf, key, klen, h);
        }
        size_t cap = klen + (vlen < 16 ? 16 : vlen);
        e->buf = xmalloc(cap);
        memcpy(e->buf, key, klen);
        e->klen = klen;
        e->cap = cap;
        e->hash = h;
        e->cf = cf;
        e->flags = 0;
        c->n++;
        c->bytes += cap;
    } else if (klen + vlen > e->cap) {
        size_t cap = klen + vlen + vlen / 2;
        if (e->buf == c->view) c->view = NULL;   /* a write of the viewed entry ends its view */
        e->buf = xrealloc(e->buf, cap);
        c->bytes += cap - e->cap;
        e->cap = cap;
    }
    return e;
}

int rc_note_absent(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
                   char **err) {
    rc_entry *e = entry_for(c, d, cf, key, klen, 0, err);
    if (!e) return FLINT_IO;
    assert(!(e->flags & F_KNOWN));
    e->flags = F_KNOWN;
    e->vlen = 0;
    return FLINT_OK;
}

int rc_put(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen, const void *v,
           size_t vlen, char **err) {
    /* The value may be a view of this very entry, whose buffer may move: copy it first. */
    uint8_t *copy = NULL;
    rc_entry *old = slot_of(c, cf, key, klen, hash_of(cf, key, klen));
    if (old->buf && (const uint8_t *)v >= old->buf && (const uint8_t *)v < old->buf + old->cap) {
        copy = xmalloc(vlen ? vlen : 1);
        memcpy(copy, v, vlen);
        v = copy;
    }
    rc_entry *e = entry_for(c, d, cf, key, klen, vlen, err);
    if (!e) {
        free(copy);
        return FLINT_IO;
    }
    if (e->flags & F_DIRTY) c->st.writes_absorbed++;
    /* Not known before: RocksDB may hold the key. */
    e->flags = F_KNOWN | F_PRESENT | F_DIRTY | ((e->flags & F_KNOWN) ? e->flags & F_IN_DB : F_IN_DB);
    e->vlen = vlen;
    if (vlen) memcpy(e->buf + klen, v, vlen);
    free(copy);
    return FLINT_OK;
}

int rc_del(rc_cache *c, rc_db d, rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen, char **err) {
    rc_entry *e = entry_for(c, d, cf, key, klen, 0, err);
    if (!e) return FLINT_IO;
    bool in_db = !(e->flags & F_KNOWN) || (e->flags & F_IN_DB);
    if ((e->flags & F_DIRTY) || !in_db) c->st.writes_absorbed++;
    if (e->buf == c->view) c->view = NULL;
    e->flags = F_KNOWN | (in_db ? F_DIRTY | F_IN_DB : 0);
    e->vlen = 0;
    return FLINT_OK;
}

int rc_evict(rc_cache *c, rc_db d, const rocksdb_column_family_handle_t *cf, const uint8_t *key, size_t klen,
             char **err) {
    rc_entry *e = slot_of(c, cf, key, klen, hash_of(cf, key, klen));
    if (!e->buf) return FLINT_OK;
    if (e->flags & F_DIRTY) {
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        write_entry(wb, e);
        rocksdb_write(d.db, d.wo, wb, err);
        rocksdb_writebatch_destroy(wb);
        if (*err) return FLINT_IO;
        written(c, e);
    }
    e->flags = 0;
    return FLINT_OK;
}

void rc_get_stats(const rc_cache *c, rc_stats *st) {
    *st = c->st;
    st->entries = c->n;
}

/* The hashmap state backend: keyed state in memory (Flink's HashMapStateBackend). Each state has
 * one chained hash table per key group of the backend's range (so that snapshots, iteration and
 * rescaling go key group by key group), keyed by (key, namespace); a map state's entry holds an
 * inner table keyed by user key. Entries own their key bytes inline and their value in a buffer
 * that only grows: reading or overwriting an existing entry allocates nothing. Iterators look one
 * entry ahead, so the entry just returned may be deleted (and an emptied map freed) under them.
 *
 * Snapshots are copy-on-write (Flink's CopyOnWriteStateMap): a view (hm_view_new, task thread)
 * bumps the backend's state version and keeps the headers of the tables (their bucket arrays as
 * they are: O(states x key groups)); another thread then walks the view while the task goes on.
 * Rules (asserted where they apply):
 *  - Every object a view can reach (a bucket array, an entry struct, a value buffer, an inner
 *    table with all it holds) carries the state version it was made at. `required` is the highest
 *    version of a live view (0: none); an object older than `required` may be read by a view, so
 *    the task thread neither writes nor frees it: it copies it first (a bucket array, the entry
 *    structs of a chain up to the one written, the value, an inner table's buckets and structs
 *    as Flink copies a map state's value), points the live table at the copy and retires the old
 *    one.
 *  - A struct older than `required` has a payload older too (a payload is replaced only through
 *    a private struct). A live entry owns its value buffer or inner table; a struct copied away
 *    from owns nothing (its payload went with the copy), an inner table copied away from its
 *    buckets and structs only (the values went with the copy); the retired list owns what it
 *    holds.
 *  - Retired objects are reachable only from views. Each is tagged with the version current when
 *    it was retired and freed when no live view has a version <= its tag, by the thread that
 *    frees the view (or at once when no view is live).
 *  - Views are taken, and objects retired, by the task thread; a view is walked and freed by any
 *    one thread. mu guards the view and retired lists; `required` is atomic.
 *  - No iterator over the live tables is open when a view is taken; a live iterator copies a
 *    shared inner table before walking it (so that deleting the entry just returned does not
 *    move the table from under it). A copied inner table has new structs and buckets but takes
 *    the values over (shared until written), so views of them stay valid. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "state/tm_state_int.h"
#include "util/alloc.h"

typedef struct hm_table hm_table;

typedef struct hm_entry {
    struct hm_entry *next;
    uint64_t hash;
    uint32_t klen, nslen;                /* key then namespace in kb (inner tables: the user key) */
    uint8_t *data;                       /* the stored value (not for map entries) */
    uint32_t len, cap;
    hm_table *map;                       /* MAP states: the user keys of (key, ns) */
    uint32_t ver;                        /* state version of this struct (next, data, len, cap, map) */
    uint32_t dver;                       /* state version of its payload (data or map) */
    uint8_t kb[];
} hm_entry;

struct hm_table {
    hm_entry **buckets;                  /* NULL until the first insert */
    uint32_t mask;
    uint32_t bver;                       /* state version of the bucket array */
    size_t count;
};

typedef struct hm_state {
    hm_table *tables;                    /* one per key group of the backend's range */
    int ntables;
} hm_state;

typedef enum ret_kind {
    RET_STRUCT,                          /* an entry struct, without its payload */
    RET_BUF,                             /* a value buffer or a bucket array */
    RET_TABLE,                           /* an inner table with its entries and their payloads */
    RET_TABLE_HUSK                       /* an inner table copied away from: the payloads went on */
} ret_kind;

/* An object replaced in the live tables that views may still read. */
typedef struct hm_retired {
    void *p;
    uint32_t tag;                        /* the state version when it was retired */
    ret_kind kind;
} hm_retired;

typedef struct hm_backend {
    uint32_t version;                    /* task thread: the version of objects made now */
    _Atomic uint32_t required;           /* the highest version of a live view, 0: none */
    int iters;                           /* task thread: open iterators over the live tables */
    pthread_mutex_t mu;                  /* views, rets */
    uint32_t *views;                     /* the versions of the live views */
    int n_views, cap_views;
    hm_retired *rets;                    /* tags ascending */
    size_t n_rets, cap_rets;
} hm_backend;

static inline uint32_t required_of(hm_backend *hb) {
    return atomic_load_explicit(&hb->required, memory_order_acquire);
}

/* ---- freeing and retiring ------------------------------------------------------------------------ */

static void table_free(hm_table *t);

/* An entry no view or table reaches any more, with its payload. */
static void entry_free(hm_entry *e) {
    if (e->map) {
        table_free(e->map);
        free(e->map);
    }
    free(e->data);
    free(e);
}

static void table_free(hm_table *t) {
    if (!t->buckets) return;
    for (uint32_t i = 0; i <= t->mask; i++) {
        hm_entry *e = t->buckets[i];
        while (e) {
            hm_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->count = 0;
}

/* The bucket array and entry structs of t, not their payloads. */
static void table_free_husk(hm_table *t) {
    if (!t->buckets) return;
    for (uint32_t i = 0; i <= t->mask; i++) {
        hm_entry *e = t->buckets[i];
        while (e) {
            hm_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
}

static void retired_free(const hm_retired *r) {
    if (r->kind == RET_TABLE) table_free(r->p);
    if (r->kind == RET_TABLE_HUSK) table_free_husk(r->p);
    free(r->p);
}

/* Hand p over to the live views (freed with the last of them), or free it when there is none
 * (a view freed since the caller read `required`). Task thread. */
static void retire(hm_backend *hb, void *p, ret_kind kind) {
    if (!p) return;
    hm_retired r = {p, hb->version, kind};
    pthread_mutex_lock(&hb->mu);
    bool kept = hb->n_views > 0;
    if (kept) {
        if (hb->n_rets == hb->cap_rets) {
            hb->cap_rets = hb->cap_rets ? 2 * hb->cap_rets : 1024;
            hb->rets = xrealloc(hb->rets, hb->cap_rets * sizeof *hb->rets);
        }
        assert(!hb->n_rets || hb->rets[hb->n_rets - 1].tag <= r.tag);
        hb->rets[hb->n_rets++] = r;
    }
    pthread_mutex_unlock(&hb->mu);
    if (!kept) retired_free(&r);
}

/* Let go of p, an object of version v the live tables no longer point at. */
static void drop(hm_backend *hb, void *p, ret_kind kind, uint32_t v, uint32_t req) {
    if (!p) return;
    if (v < req) {
        retire(hb, p, kind);
    } else {
        hm_retired r = {p, 0, kind};
        retired_free(&r);
    }
}

static void table_drop(hm_backend *hb, hm_table *t, uint32_t req);

/* An entry unlinked from a live table: its payload and struct. */
static void entry_drop(hm_backend *hb, hm_entry *e, uint32_t req) {
    assert(e->ver >= req || e->dver < req);
    drop(hb, e->data, RET_BUF, e->dver, req);
    if (e->map && e->dver >= req) table_drop(hb, e->map, req);
    else drop(hb, e->map, RET_TABLE, e->dver, req);
    drop(hb, e, RET_STRUCT, e->ver, req);
}

/* A private inner table let go of entry by entry: a copied one may share values with views. */
static void table_drop(hm_backend *hb, hm_table *t, uint32_t req) {
    for (uint32_t i = 0; t->buckets && i <= t->mask; i++) {
        hm_entry *e = t->buckets[i];
        while (e) {
            hm_entry *next = e->next;
            entry_drop(hb, e, req);
            e = next;
        }
    }
    drop(hb, t->buckets, RET_BUF, t->bver, req);
    free(t);
}

/* ---- tables ------------------------------------------------------------------------------------ */

/* The bucket of hash h: its high half, as the low bits pick the key group (hash % max parallelism)
 * and are nearly equal within one key group's table. */
static inline uint32_t bucket_of(uint64_t h, uint32_t mask) { return (uint32_t)(h >> 32) & mask; }

static hm_entry *table_find(const hm_table *t, uint64_t h, const void *k, size_t kl, const void *ns, size_t nl,
                            hm_entry ***link) {
    if (!t->buckets) return NULL;
    hm_entry **pp = &t->buckets[bucket_of(h, t->mask)];
    for (hm_entry *e = *pp; e; pp = &e->next, e = e->next) {
        if (e->hash == h && e->klen == kl && e->nslen == nl && memcmp(e->kb, k, kl) == 0 &&
            (nl == 0 || memcmp(e->kb + kl, ns, nl) == 0)) {
            if (link) *link = pp;
            return e;
        }
    }
    return NULL;
}

/* A private copy of the struct e (its payload goes with it); e is retired. */
static hm_entry *entry_copy(hm_backend *hb, hm_entry *e) {
    size_t n = sizeof *e + e->klen + e->nslen;
    hm_entry *c = xmalloc(n);
    memcpy(c, e, n);
    c->ver = hb->version;
    retire(hb, e, RET_STRUCT);
    return c;
}

/* t's bucket array made private. */
static void table_own_buckets(hm_backend *hb, hm_table *t, uint32_t req) {
    if (!t->buckets || t->bver >= req) return;
    size_t n = (size_t)t->mask + 1;
    hm_entry **nb = xmalloc(n * sizeof *nb);
    memcpy(nb, t->buckets, n * sizeof *nb);
    retire(hb, t->buckets, RET_BUF);
    t->buckets = nb;
    t->bver = hb->version;
}

/* Double the buckets; the entries a view shares are copied rather than relinked. */
static void table_grow(hm_backend *hb, hm_table *t, uint32_t req) {
    uint32_t n = t->buckets ? (t->mask + 1) * 2 : 16;
    hm_entry **nb = xcalloc(n, sizeof *nb);
    if (t->buckets) {
        for (uint32_t i = 0; i <= t->mask; i++) {
            hm_entry *e = t->buckets[i];
            while (e) {
                hm_entry *next = e->next;
                if (e->ver < req) e = entry_copy(hb, e);
                e->next = nb[bucket_of(e->hash, n - 1)];
                nb[bucket_of(e->hash, n - 1)] = e;
                e = next;
            }
        }
        drop(hb, t->buckets, RET_BUF, t->bver, req);
    }
    t->buckets = nb;
    t->mask = n - 1;
    t->bver = hb->version;
}

static hm_entry *table_insert(hm_backend *hb, hm_table *t, uint32_t req, uint64_t h, const void *k, size_t kl,
                              const void *ns, size_t nl) {
    if (!t->buckets || t->count >= (size_t)t->mask + 1) table_grow(hb, t, req);
    else table_own_buckets(hb, t, req);
    hm_entry *e = xmalloc(sizeof *e + kl + nl);
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->klen = (uint32_t)kl;
    e->nslen = (uint32_t)nl;
    e->ver = e->dver = hb->version;
    if (kl) memcpy(e->kb, k, kl);
    if (nl) memcpy(e->kb + kl, ns, nl);
    hm_entry **pp = &t->buckets[bucket_of(h, t->mask)];
    e->next = *pp;
    *pp = e;
    t->count++;
    return e;
}

/* The link (a bucket or a next field) that points at e in t, made writable: the bucket array and
 * the entries before e in its chain private. */
static hm_entry **chain_link(hm_backend *hb, hm_table *t, uint32_t req, const hm_entry *e) {
    table_own_buckets(hb, t, req);
    hm_entry **pp = &t->buckets[bucket_of(e->hash, t->mask)];
    while (*pp != e) {
        assert(*pp);
        if ((*pp)->ver < req) *pp = entry_copy(hb, *pp);
        pp = &(*pp)->next;
    }
    return pp;
}

/* e's struct made private (with its chain up to it): the live entry to write. */
static hm_entry *entry_own(hm_backend *hb, hm_table *t, uint32_t req, hm_entry *e) {
    assert(e->ver >= req || e->dver < req);
    if (e->ver >= req) return e;
    hm_entry **pp = chain_link(hb, t, req, e);
    return *pp = entry_copy(hb, e);
}

/* Unlink e (link: where find saw it, good while nothing is shared) and let it go. */
static void table_remove(hm_backend *hb, hm_table *t, uint32_t req, hm_entry *e, hm_entry **link) {
    if (req) link = chain_link(hb, t, req, e);
    assert(*link == e);
    *link = e->next;
    t->count--;
    entry_drop(hb, e, req);
}

/* A private copy of the inner table src into dst (chains in the same order): new bucket array and
 * entry structs, the values taken over (still shared: replaced when written). */
static void table_copy(hm_backend *hb, hm_table *dst, const hm_table *src) {
    *dst = *src;
    dst->bver = hb->version;
    if (!src->buckets) return;
    dst->buckets = xcalloc((size_t)src->mask + 1, sizeof *dst->buckets);
    for (uint32_t i = 0; i <= src->mask; i++) {
        hm_entry **tail = &dst->buckets[i];
        for (const hm_entry *e = src->buckets[i]; e; e = e->next) {
            size_t n = sizeof *e + e->klen + e->nslen;
            hm_entry *c = xmalloc(n);
            memcpy(c, e, n);
            assert(!e->map);
            c->ver = hb->version;
            c->next = NULL;
            *tail = c;
            tail = &c->next;
        }
    }
}

/* The inner table of the private map entry e, made (absent) or copied (shared) first. */
static hm_table *map_own(hm_backend *hb, hm_entry *e, uint32_t req) {
    assert(e->ver >= req);
    if (e->map && e->dver >= req) return e->map;
    hm_table *m = XNEW(hm_table);
    if (e->map) {
        table_copy(hb, m, e->map);
        retire(hb, e->map, RET_TABLE_HUSK);
    }
    e->map = m;
    e->dver = hb->version;
    return m;
}

/* Whether a piece points into e's own buffer (a value put back from a view of itself). */
static bool overlaps(const hm_entry *e, const tm_slice *parts, int np) {
    if (!e->data) return false;
    for (int i = 0; i < np; i++) {
        const uint8_t *p = parts[i].p;
        if (parts[i].n && p < e->data + e->cap && p + parts[i].n > e->data) return true;
    }
    return false;
}

static void copy_parts(uint8_t *dst, const tm_slice *parts, int np) {
    for (int i = 0; i < np; i++) {
        if (parts[i].n) memcpy(dst, parts[i].p, parts[i].n);
        dst += parts[i].n;
    }
}

/* Give the private entry e the buffer d (its first keep bytes already in place) and let the old
 * one go. */
static void entry_swap_data(hm_backend *hb, hm_entry *e, uint32_t req, uint8_t *d, uint32_t cap) {
    drop(hb, e->data, RET_BUF, e->dver, req);
    e->data = d;
    e->cap = cap;
    e->dver = hb->version;
}

/* Store parts into the private entry e's value buffer (grown only when too small, replaced when
 * a view shares it). */
static void entry_set(hm_backend *hb, hm_entry *e, uint32_t req, const tm_slice *parts, int np) {
    assert(e->ver >= req);
    size_t n = 0;
    for (int i = 0; i < np; i++) n += parts[i].n;
    if (n > e->cap || !e->data || e->dver < req || overlaps(e, parts, np)) {
        uint32_t cap = (uint32_t)(n < 16 ? 16 : n);
        if (cap < e->cap) cap = e->cap;
        uint8_t *d = xmalloc(cap);
        copy_parts(d, parts, np);
        entry_swap_data(hb, e, req, d, cap);
    } else {
        copy_parts(e->data, parts, np);
    }
    e->len = (uint32_t)n;
}

static void entry_append(hm_backend *hb, hm_entry *e, uint32_t req, const tm_slice *parts, int np) {
    assert(e->ver >= req);
    size_t n = e->len;
    for (int i = 0; i < np; i++) n += parts[i].n;
    if (n > e->cap || e->dver < req || overlaps(e, parts, np)) {
        size_t cap = e->cap ? 2 * (size_t)e->cap : 64;
        while (cap < n) cap *= 2;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        uint8_t *d = xmalloc(cap);
        if (e->len) memcpy(d, e->data, e->len);
        copy_parts(d + e->len, parts, np);
        entry_swap_data(hb, e, req, d, (uint32_t)cap);
    } else {
        copy_parts(e->data + e->len, parts, np);
    }
    e->len = (uint32_t)n;
}

/* ---- the current (key, ns) --------------------------------------------------------------------- */

static inline hm_table *kg_table(tm_state *st) {
    hm_state *hs = st->impl;
    return &hs->tables[st->b->kg - st->b->cfg.kg_first];
}

static inline uint64_t outer_hash(const tm_state_backend *b, const void *ns, size_t nl) {
    return nl ? XXH3_64bits_withSeed(ns, nl, b->khash) : b->khash;
}

static hm_entry *find_outer(tm_state *st, const void *ns, size_t nl, hm_entry ***link) {
    tm_state_backend *b = st->b;
    return table_find(kg_table(st), outer_hash(b, ns, nl), b->key ? b->key : (uint8_t *)"", b->klen, ns, nl, link);
}

/* The live entry of the current (key, ns) to write (private), added when absent. */
static hm_entry *outer_for_write(tm_state *st, const void *ns, size_t nl, uint32_t req) {
    tm_state_backend *b = st->b;
    hm_backend *hb = b->impl;
    hm_entry *e = find_outer(st, ns, nl, NULL);
    if (e) return entry_own(hb, kg_table(st), req, e);
    return table_insert(hb, kg_table(st), req, outer_hash(b, ns, nl), b->key ? b->key : (uint8_t *)"", b->klen,
                        ns, nl);
}

/* ---- the backend table ------------------------------------------------------------------------- */

static int hm_open(tm_state_backend *b, flint_err *err) {
    (void)err;
    hm_backend *hb = XNEW(hm_backend);
    atomic_init(&hb->required, 0);
    pthread_mutex_init(&hb->mu, NULL);
    b->impl = hb;
    return FLINT_OK;
}

static void hm_close(tm_state_backend *b) {
    hm_backend *hb = b->impl;
    assert(hb->n_views == 0 && hb->n_rets == 0 && hb->iters == 0);
    for (int i = 0; i < b->n_states; i++) {
        hm_state *hs = b->states[i]->impl;
        if (!hs) continue;
        for (int t = 0; t < hs->ntables; t++) table_free(&hs->tables[t]);
        free(hs->tables);
        free(hs);
    }
    pthread_mutex_destroy(&hb->mu);
    free(hb->views);
    free(hb->rets);
    free(hb);
    b->impl = NULL;
}

static int hm_add_state(tm_state *st, flint_err *err) {
    (void)err;
    hm_state *hs = XNEW(hm_state);
    hs->ntables = st->b->cfg.kg_last - st->b->cfg.kg_first + 1;
    hs->tables = xcalloc((size_t)hs->ntables, sizeof *hs->tables);
    st->impl = hs;
    return FLINT_OK;
}

static bool hm_get(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl, const uint8_t **v,
                   size_t *len) {
    hm_entry *e = find_outer(st, ns, nl, NULL);
    if (!e) return false;
    if (st->kind == TM_STATE_MAP) {
        e = e->map ? table_find(e->map, XXH3_64bits(uk, ukl), uk, ukl, NULL, 0, NULL) : NULL;
        if (!e) return false;
    }
    *v = e->data ? e->data : (const uint8_t *)"";
    *len = e->len;
    return true;
}

static int hm_put(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl, const tm_slice *parts,
                  int np) {
    hm_backend *hb = st->b->impl;
    uint32_t req = required_of(hb);
    hm_entry *e = outer_for_write(st, ns, nl, req);
    if (st->kind == TM_STATE_MAP) {
        hm_table *m = map_own(hb, e, req);
        uint64_t h = XXH3_64bits(uk, ukl);
        hm_entry *u = table_find(m, h, uk, ukl, NULL, 0, NULL);
        if (!u) u = table_insert(hb, m, req, h, uk, ukl, NULL, 0);
        e = u;
    }
    entry_set(hb, e, req, parts, np);
    return FLINT_OK;
}

static int hm_overwrite(tm_state *st, const void *ns, size_t nl, size_t off, const void *p, size_t n,
                        const uint8_t **v, size_t *len) {
    assert(st->kind != TM_STATE_MAP);
    hm_backend *hb = st->b->impl;
    uint32_t req = required_of(hb);
    hm_entry *e = find_outer(st, ns, nl, NULL);
    if (!e || off + n > e->len)
        return tm_state_backend_fail(st->b, "state '%s': no value of %zu bytes or more to overwrite", st->name, off + n);
    e = entry_own(hb, kg_table(st), req, e);
    if (e->data && e->dver < req) { /* a view reads the value: write a copy */
        uint8_t *d = xmalloc(e->cap);
        memcpy(d, e->data, e->len);
        entry_swap_data(hb, e, req, d, e->cap);
    }
    if (n) memcpy(e->data + off, p, n);
    *v = e->data ? e->data : (const uint8_t *)"";
    *len = e->len;
    return FLINT_OK;
}

static int hm_append(tm_state *st, const void *ns, size_t nl, const tm_slice *parts, int np) {
    hm_backend *hb = st->b->impl;
    uint32_t req = required_of(hb);
    entry_append(hb, outer_for_write(st, ns, nl, req), req, parts, np);
    return FLINT_OK;
}

static int hm_del(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl) {
    hm_backend *hb = st->b->impl;
    uint32_t req = required_of(hb);
    hm_table *t = kg_table(st);
    hm_entry **link;
    hm_entry *e = find_outer(st, ns, nl, &link);
    if (!e) return FLINT_OK;
    if (st->kind == TM_STATE_MAP) {
        uint64_t h = XXH3_64bits(uk, ukl);
        hm_entry **ulink;
        hm_entry *u = e->map ? table_find(e->map, h, uk, ukl, NULL, 0, &ulink) : NULL;
        if (!u) return FLINT_OK;
        if (e->dver < req) { /* the map is shared: remove from a private copy */
            e = entry_own(hb, t, req, e);
            u = table_find(map_own(hb, e, req), h, uk, ukl, NULL, 0, &ulink);
            assert(u);
        }
        table_remove(hb, e->map, req, u, ulink);
        if (e->map->count) return FLINT_OK; /* an emptied map goes with its entry */
    }
    table_remove(hb, t, req, e, link);
    return FLINT_OK;
}

static int hm_clear_map(tm_state *st, const void *ns, size_t nl) {
    hm_entry **link;
    hm_entry *e = find_outer(st, ns, nl, &link);
    if (e) table_remove(st->b->impl, kg_table(st), required_of(st->b->impl), e, link);
    return FLINT_OK;
}

/* ---- iteration --------------------------------------------------------------------------------- */

/* A position in one table: the entry to return next (NULL: none) and its bucket. */
typedef struct hm_cursor {
    hm_table *t;
    uint32_t bucket;
    hm_entry *e;
} hm_cursor;

/* The first entry of t from bucket b on. */
static void cursor_seek(hm_cursor *c, hm_table *t, uint32_t b) {
    c->t = t;
    c->e = NULL;
    if (!t || !t->buckets) return;
    for (; b <= t->mask; b++)
        if (t->buckets[b]) {
            c->bucket = b;
            c->e = t->buckets[b];
            return;
        }
}

/* Move past c->e (still alive). */
static void cursor_advance(hm_cursor *c) {
    if (c->e->next) {
        c->e = c->e->next;
        return;
    }
    if (c->bucket == c->t->mask) {
        c->e = NULL;
        return;
    }
    cursor_seek(c, c->t, c->bucket + 1);
}

struct tm_raw_iter {
    hm_backend *live;                    /* iterating the live tables (NULL: a view's) */
    hm_table *tables;                    /* one per key group from kg_first */
    int kg_first;
    bool is_map;
    /* the pending position: outer entry (range iterations) and, for maps, the user key in it */
    int kg_index, kg_end;                /* tables[kg_index] is the outer table */
    hm_cursor outer, inner;
    bool single;                         /* iter_map: only the inner table of one entry */
    const hm_entry *single_outer;
};

/* The live map entry e of table t, private with a private inner table, to walk while entries
 * are removed from it. */
static hm_entry *map_for_walk(hm_backend *hb, hm_table *t, hm_entry *e) {
    uint32_t req = required_of(hb);
    if (e->dver >= req) return e;
    e = entry_own(hb, t, req, e);
    map_own(hb, e, req);
    return e;
}

/* Settle the pending position on the next returnable entry, starting at the current outer one. */
static void settle(tm_raw_iter *it) {
    for (;;) {
        if (it->single) return;
        if (it->outer.e) {
            if (!it->is_map) return;
            if (it->inner.e) return;
            /* a map entry: start on its user keys, or skip it when it has none */
            if (it->inner.t != it->outer.e->map) {
                if (it->live) it->outer.e = map_for_walk(it->live, it->outer.t, it->outer.e);
                cursor_seek(&it->inner, it->outer.e->map, 0);
                if (it->inner.e) return;
            }
            it->inner.t = NULL;
            cursor_advance(&it->outer);
            continue;
        }
        if (++it->kg_index > it->kg_end) return;
        cursor_seek(&it->outer, &it->tables[it->kg_index], 0);
        it->inner.t = NULL;
        it->inner.e = NULL;
    }
}

static tm_raw_iter *iter_new(hm_backend *live, hm_table *tables, int kg_first, bool is_map) {
    tm_raw_iter *it = XNEW(tm_raw_iter);
    it->live = live;
    it->tables = tables;
    it->kg_first = kg_first;
    it->is_map = is_map;
    if (live) live->iters++;
    return it;
}

/* Key groups [first, last] of tables (whose first is kg_first). */
static tm_raw_iter *iter_range(hm_backend *live, hm_table *tables, int kg_first, bool is_map, int first, int last) {
    tm_raw_iter *it = iter_new(live, tables, kg_first, is_map);
    it->kg_index = first - kg_first - 1;
    it->kg_end = last - kg_first;
    settle(it);
    return it;
}

static tm_raw_iter *hm_iter_range(tm_state *st, int first, int last) {
    hm_state *hs = st->impl;
    return iter_range(st->b->impl, hs->tables, st->b->cfg.kg_first, st->kind == TM_STATE_MAP, first, last);
}

static tm_raw_iter *hm_iter_map(tm_state *st, const void *ns, size_t nl) {
    hm_state *hs = st->impl;
    tm_raw_iter *it = iter_new(st->b->impl, hs->tables, st->b->cfg.kg_first, true);
    it->single = true;
    hm_entry *e = find_outer(st, ns, nl, NULL);
    if (e) e = map_for_walk(it->live, kg_table(st), e);
    it->single_outer = e;
    it->kg_index = st->b->kg - st->b->cfg.kg_first;
    if (e) cursor_seek(&it->inner, e->map, 0);
    return it;
}

static bool hm_iter_next(tm_raw_iter *it, tm_state_entry *out) {
    const hm_entry *o, *u = NULL;
    int kg = it->kg_first + it->kg_index;
    if (it->single) {
        if (!it->inner.e) return false;
        o = it->single_outer;
        u = it->inner.e;
        cursor_advance(&it->inner);
    } else {
        if (!it->outer.e) return false;
        o = it->outer.e;
        if (it->is_map) {
            u = it->inner.e;
            cursor_advance(&it->inner);
            if (!it->inner.e) { /* the map is done: go on to the next outer entry now */
                cursor_advance(&it->outer);
                it->inner.t = NULL;
            }
        } else {
            cursor_advance(&it->outer);
        }
        settle(it);
    }
    out->key_group = kg;
    out->key = o->kb;
    out->klen = o->klen;
    out->ns = o->kb + o->klen;
    out->nslen = o->nslen;
    const hm_entry *v = u ? u : o;
    out->ukey = u ? u->kb : NULL;
    out->uklen = u ? u->klen : 0;
    out->value = v->data ? v->data : (const uint8_t *)"";
    out->vlen = v->len;
    return true;
}

static void hm_iter_close(tm_raw_iter *it) {
    if (it && it->live) {
        assert(it->live->iters > 0);
        it->live->iters--;
    }
    free(it);
}

/* ---- views ------------------------------------------------------------------------------------- */

typedef struct hm_view {
    hm_backend *hb;
    uint32_t version;
    int n, ntables, kg_first;
    bool *is_map;                        /* per state */
    hm_table *tables;                    /* n x ntables: the live tables' headers at the view */
} hm_view;

static void *hm_view_new(tm_state_backend *b) {
    hm_backend *hb = b->impl;
    assert(hb->iters == 0);
    hm_view *v = XNEW(hm_view);
    v->hb = hb;
    v->n = b->n_states;
    v->kg_first = b->cfg.kg_first;
    v->ntables = b->cfg.kg_last - b->cfg.kg_first + 1;
    v->is_map = xcalloc((size_t)v->n + 1, sizeof *v->is_map);
    v->tables = xcalloc((size_t)v->n * (size_t)v->ntables + 1, sizeof *v->tables);
    for (int s = 0; s < v->n; s++) {
        hm_state *hs = b->states[s]->impl;
        assert(hs->ntables == v->ntables);
        v->is_map[s] = b->states[s]->kind == TM_STATE_MAP;
        memcpy(&v->tables[(size_t)s * (size_t)v->ntables], hs->tables, (size_t)v->ntables * sizeof *hs->tables);
    }
    pthread_mutex_lock(&hb->mu);
    assert(hb->version < UINT32_MAX);
    v->version = ++hb->version;   /* everything there is now is older: shared */
    if (hb->n_views == hb->cap_views) {
        hb->cap_views = hb->cap_views ? 2 * hb->cap_views : 4;
        hb->views = xrealloc(hb->views, (size_t)hb->cap_views * sizeof *hb->views);
    }
    hb->views[hb->n_views++] = v->version;
    atomic_store_explicit(&hb->required, v->version, memory_order_release);
    pthread_mutex_unlock(&hb->mu);
    return v;
}

static tm_raw_iter *hm_view_iter(void *view, int s, int kg) {
    hm_view *v = view;
    assert(s >= 0 && s < v->n && kg >= v->kg_first && kg < v->kg_first + v->ntables);
    return iter_range(NULL, &v->tables[(size_t)s * (size_t)v->ntables], v->kg_first, v->is_map[s], kg, kg);
}

/* Any thread: the objects retired for this view and no older live one are freed. */
static void hm_view_free(void *view) {
    hm_view *v = view;
    if (!v) return;
    hm_backend *hb = v->hb;
    pthread_mutex_lock(&hb->mu);
    uint32_t max = 0, min = UINT32_MAX;
    int k = 0;
    for (int i = 0; i < hb->n_views; i++) {
        if (hb->views[i] == v->version) continue;
        hb->views[k++] = hb->views[i];
        if (hb->views[i] > max) max = hb->views[i];
        if (hb->views[i] < min) min = hb->views[i];
    }
    assert(k == hb->n_views - 1);
    hb->n_views = k;
    atomic_store_explicit(&hb->required, max, memory_order_release);
    size_t n = 0;
    while (n < hb->n_rets && hb->rets[n].tag < min) n++;
    hm_retired *gone = NULL;
    if (n == hb->n_rets) { /* all of them (the usual case): take the array */
        gone = hb->rets;
        hb->rets = NULL;
        hb->n_rets = hb->cap_rets = 0;
    } else if (n) {
        gone = xmalloc(n * sizeof *gone);
        memcpy(gone, hb->rets, n * sizeof *gone);
        memmove(hb->rets, hb->rets + n, (hb->n_rets - n) * sizeof *hb->rets);
        hb->n_rets -= n;
    }
    pthread_mutex_unlock(&hb->mu);
    for (size_t i = 0; i < n; i++) retired_free(&gone[i]);
    free(gone);
    free(v->is_map);
    free(v->tables);
    free(v);
}

const tm_state_backend_vt tm_state_hashmap_vt = {
    .name = "hashmap",
    .open = hm_open,
    .close = hm_close,
    .add_state = hm_add_state,
    .get = hm_get,
    .put = hm_put,
    .overwrite = hm_overwrite,
    .append = hm_append,
    .del = hm_del,
    .clear_map = hm_clear_map,
    .iter_map = hm_iter_map,
    .iter_range = hm_iter_range,
    .iter_next = hm_iter_next,
    .iter_close = hm_iter_close,
    .view_new = hm_view_new,
    .view_iter = hm_view_iter,
    .view_free = hm_view_free,
};

/* The hashmap state backend: keyed state in memory (Flink's HashMapStateBackend). Each state has
 * one chained hash table per key group of the backend's range (so that snapshots, iteration and
 * rescaling go key group by key group), keyed by (key, namespace); a map state's entry holds an
 * inner table keyed by user key. Entries own their key bytes inline and their value in a buffer
 * that only grows: reading or overwriting an existing entry allocates nothing. Iterators look one
 * entry ahead, so the entry just returned may be deleted (and an emptied map freed) under them. */
#include <assert.h>
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
    uint8_t kb[];
} hm_entry;

struct hm_table {
    hm_entry **buckets;                  /* NULL until the first insert */
    uint32_t mask;
    size_t count;
};

typedef struct hm_state {
    hm_table *tables;                    /* one per key group of the backend's range */
    int ntables;
} hm_state;

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

static void table_grow(hm_table *t) {
    uint32_t n = t->buckets ? (t->mask + 1) * 2 : 16;
    hm_entry **nb = xcalloc(n, sizeof *nb);
    if (t->buckets) {
        for (uint32_t i = 0; i <= t->mask; i++) {
            hm_entry *e = t->buckets[i];
            while (e) {
                hm_entry *next = e->next;
                e->next = nb[bucket_of(e->hash, n - 1)];
                nb[bucket_of(e->hash, n - 1)] = e;
                e = next;
            }
        }
        free(t->buckets);
    }
    t->buckets = nb;
    t->mask = n - 1;
}

static hm_entry *table_insert(hm_table *t, uint64_t h, const void *k, size_t kl, const void *ns, size_t nl) {
    if (!t->buckets || t->count >= (size_t)t->mask + 1) table_grow(t);
    hm_entry *e = xmalloc(sizeof *e + kl + nl);
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->klen = (uint32_t)kl;
    e->nslen = (uint32_t)nl;
    if (kl) memcpy(e->kb, k, kl);
    if (nl) memcpy(e->kb + kl, ns, nl);
    hm_entry **pp = &t->buckets[bucket_of(h, t->mask)];
    e->next = *pp;
    *pp = e;
    t->count++;
    return e;
}

static void table_free(hm_table *t);

static void entry_free(hm_entry *e) {
    if (e->map) {
        table_free(e->map);
        free(e->map);
    }
    free(e->data);
    free(e);
}

static void table_unlink(hm_table *t, hm_entry **link, hm_entry *e) {
    *link = e->next;
    t->count--;
    entry_free(e);
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

/* Store parts into e's value buffer (grown only when too small). */
static void entry_set(hm_entry *e, const tm_slice *parts, int np) {
    size_t n = 0;
    for (int i = 0; i < np; i++) n += parts[i].n;
    if (n > e->cap || !e->data || overlaps(e, parts, np)) {
        uint32_t cap = (uint32_t)(n < 16 ? 16 : n);
        if (cap < e->cap) cap = e->cap;
        uint8_t *d = xmalloc(cap);
        copy_parts(d, parts, np);
        free(e->data);
        e->data = d;
        e->cap = cap;
    } else {
        copy_parts(e->data, parts, np);
    }
    e->len = (uint32_t)n;
}

static void entry_append(hm_entry *e, const tm_slice *parts, int np) {
    size_t n = e->len;
    for (int i = 0; i < np; i++) n += parts[i].n;
    if (n > e->cap || overlaps(e, parts, np)) {
        size_t cap = e->cap ? 2 * (size_t)e->cap : 64;
        while (cap < n) cap *= 2;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        uint8_t *d = xmalloc(cap);
        if (e->len) memcpy(d, e->data, e->len);
        copy_parts(d + e->len, parts, np);
        free(e->data);
        e->data = d;
        e->cap = (uint32_t)cap;
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

static hm_entry *find_or_add_outer(tm_state *st, const void *ns, size_t nl) {
    hm_entry *e = find_outer(st, ns, nl, NULL);
    if (e) return e;
    tm_state_backend *b = st->b;
    return table_insert(kg_table(st), outer_hash(b, ns, nl), b->key ? b->key : (uint8_t *)"", b->klen, ns, nl);
}

/* ---- the backend table ------------------------------------------------------------------------- */

static int hm_open(tm_state_backend *b, flint_err *err) {
    (void)b;
    (void)err;
    return FLINT_OK;
}

static void hm_close(tm_state_backend *b) {
    for (int i = 0; i < b->n_states; i++) {
        hm_state *hs = b->states[i]->impl;
        if (!hs) continue;
        for (int t = 0; t < hs->ntables; t++) table_free(&hs->tables[t]);
        free(hs->tables);
        free(hs);
    }
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
    hm_entry *e = find_or_add_outer(st, ns, nl);
    if (st->kind == TM_STATE_MAP) {
        if (!e->map) e->map = XNEW(hm_table);
        uint64_t h = XXH3_64bits(uk, ukl);
        hm_entry *u = table_find(e->map, h, uk, ukl, NULL, 0, NULL);
        if (!u) u = table_insert(e->map, h, uk, ukl, NULL, 0);
        e = u;
    }
    entry_set(e, parts, np);
    return FLINT_OK;
}

static int hm_append(tm_state *st, const void *ns, size_t nl, const tm_slice *parts, int np) {
    entry_append(find_or_add_outer(st, ns, nl), parts, np);
    return FLINT_OK;
}

static int hm_del(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl) {
    hm_entry **link;
    hm_entry *e = find_outer(st, ns, nl, &link);
    if (!e) return FLINT_OK;
    if (st->kind == TM_STATE_MAP) {
        hm_entry **ulink;
        hm_entry *u = e->map ? table_find(e->map, XXH3_64bits(uk, ukl), uk, ukl, NULL, 0, &ulink) : NULL;
        if (!u) return FLINT_OK;
        table_unlink(e->map, ulink, u);
        if (e->map->count) return FLINT_OK; /* an emptied map goes with its entry */
    }
    table_unlink(kg_table(st), link, e);
    return FLINT_OK;
}

static int hm_clear_map(tm_state *st, const void *ns, size_t nl) {
    hm_entry **link;
    hm_entry *e = find_outer(st, ns, nl, &link);
    if (e) table_unlink(kg_table(st), link, e);
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
    tm_state *st;
    bool is_map;
    /* the pending position: outer entry (range iterations) and, for maps, the user key in it */
    int kg_index, kg_end;                /* tables[kg_index] is the outer table */
    hm_cursor outer, inner;
    bool single;                         /* iter_map: only the inner table of one entry */
    const hm_entry *single_outer;
};

/* Settle the pending position on the next returnable entry, starting at the current outer one. */
static void settle(tm_raw_iter *it) {
    hm_state *hs = it->st->impl;
    for (;;) {
        if (it->single) return;
        if (it->outer.e) {
            if (!it->is_map) return;
            if (it->inner.e) return;
            /* a map entry: start on its user keys, or skip it when it has none */
            if (it->inner.t != it->outer.e->map) {
                cursor_seek(&it->inner, it->outer.e->map, 0);
                if (it->inner.e) return;
            }
            it->inner.t = NULL;
            cursor_advance(&it->outer);
            continue;
        }
        if (++it->kg_index > it->kg_end) return;
        cursor_seek(&it->outer, &hs->tables[it->kg_index], 0);
        it->inner.t = NULL;
        it->inner.e = NULL;
    }
}

static tm_raw_iter *hm_iter_range(tm_state *st, int first, int last) {
    tm_raw_iter *it = XNEW(tm_raw_iter);
    it->st = st;
    it->is_map = st->kind == TM_STATE_MAP;
    it->kg_index = first - st->b->cfg.kg_first - 1;
    it->kg_end = last - st->b->cfg.kg_first;
    it->outer.e = NULL;
    settle(it);
    return it;
}

static tm_raw_iter *hm_iter_map(tm_state *st, const void *ns, size_t nl) {
    tm_raw_iter *it = XNEW(tm_raw_iter);
    it->st = st;
    it->is_map = true;
    it->single = true;
    hm_entry *e = find_outer(st, ns, nl, NULL);
    it->single_outer = e;
    it->kg_index = st->b->kg - st->b->cfg.kg_first;
    if (e) cursor_seek(&it->inner, e->map, 0);
    return it;
}

static bool hm_iter_next(tm_raw_iter *it, tm_state_entry *out) {
    const hm_entry *o, *u = NULL;
    int kg = it->st->b->cfg.kg_first + it->kg_index;
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

static void hm_iter_close(tm_raw_iter *it) { free(it); }

const tm_state_backend_vt tm_state_hashmap_vt = {
    .name = "hashmap",
    .open = hm_open,
    .close = hm_close,
    .add_state = hm_add_state,
    .get = hm_get,
    .put = hm_put,
    .append = hm_append,
    .del = hm_del,
    .clear_map = hm_clear_map,
    .iter_map = hm_iter_map,
    .iter_range = hm_iter_range,
    .iter_next = hm_iter_next,
    .iter_close = hm_iter_close,
};

/* In-memory keyed state: an open-addressing hash table (linear probing, XXH3 of the key bytes)
 * of owned key and value copies (see keyed_state.h). */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "operators/keyed_state.h"
#include "util/alloc.h"

typedef struct entry {
    uint64_t hash;
    uint8_t *key;              /* NULL: empty slot */
    uint32_t klen;
    tm_kvalue v;
} entry;

struct tm_kstate {
    entry *tab;
    size_t cap;                /* power of two */
    size_t count;
};

tm_kstate *tm_kstate_new(void) {
    tm_kstate *s = XNEW(tm_kstate);
    s->cap = 64;
    s->tab = xcalloc(s->cap, sizeof *s->tab);
    return s;
}

void tm_kstate_free(tm_kstate *s) {
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) {
        free(s->tab[i].key);
        free(s->tab[i].v.data);
    }
    free(s->tab);
    free(s);
}

static entry *find(tm_kstate *s, uint64_t h, const uint8_t *key, size_t klen) {
    size_t mask = s->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry *e = &s->tab[i];
        if (!e->key) return e;
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
    }
}

static void grow(tm_kstate *s) {
    entry *old = s->tab;
    size_t ocap = s->cap;
    s->cap *= 2;
    s->tab = xcalloc(s->cap, sizeof *s->tab);
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key) continue;
        entry *e = find(s, old[i].hash, old[i].key, old[i].klen);
        *e = old[i];
    }
    free(old);
}

tm_kvalue *tm_kstate_get(tm_kstate *s, const uint8_t *key, size_t klen) {
    entry *e = find(s, XXH3_64bits(key, klen), key, klen);
    return e->key ? &e->v : NULL;
}

tm_kvalue *tm_kstate_put(tm_kstate *s, const uint8_t *key, size_t klen, const void *val, uint32_t vlen) {
    uint64_t h = XXH3_64bits(key, klen);
    entry *e = find(s, h, key, klen);
    if (!e->key) {
        if ((s->count + 1) * 4 > s->cap * 3) {
            grow(s);
            e = find(s, h, key, klen);
        }
        e->hash = h;
        e->key = xmalloc(klen ? klen : 1);
        memcpy(e->key, key, klen);
        e->klen = (uint32_t)klen;
        s->count++;
    }
    if (e->v.cap < vlen) {
        uint32_t cap = e->v.cap ? e->v.cap : 64;
        while (cap < vlen) cap *= 2;
        uint8_t *data = xmalloc(cap);
        memcpy(data, val, vlen); /* val may point into the old value */
        free(e->v.data);
        e->v.data = data;
        e->v.cap = cap;
    } else {
        memmove(e->v.data, val, vlen);
    }
    e->v.len = vlen;
    return &e->v;
}

size_t tm_kstate_count(const tm_kstate *s) { return s->count; }

/* The timer service of a task (see tm_timers.h): per operator queue, a hash set for dedup and
 * delete, a binary min-heap per time domain for firing order, and a list per key group for
 * snapshots. One allocation per registered timer (key and namespace inline). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "task/tm_timers.h"
#include "util/alloc.h"

typedef struct tentry {
    struct tentry *hnext;                 /* hash chain */
    struct tentry *kprev, *knext;         /* key group list */
    uint64_t hash, seq;
    int64_t time;
    int heap_idx;
    int key_group;
    flint_time_domain domain;
    uint32_t key_len, ns_len;
    uint8_t bytes[];                      /* key, then namespace */
} tentry;

typedef struct theap {
    tentry **a;
    int n, cap;
} theap;

struct tm_timer_queue {
    tm_timers *ts;
    void *owner;
    tm_timer_fire_fn fire;
    tentry **buckets;
    size_t nbuckets, count;
    theap heaps[2];                       /* [FLINT_EVENT_TIME], [FLINT_PROCESSING_TIME] */
    tentry **kg_heads;                    /* max_parallelism lists */
    struct tm_timer_queue *next;
};

struct tm_timers {
    int max_parallelism;
    uint64_t seq;
    tm_timer_queue *queues, **tail;
};

int64_t tm_timers_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tm_timers *tm_timers_new(int max_parallelism) {
    tm_timers *ts = XNEW(tm_timers);
    ts->max_parallelism = max_parallelism > 0 ? max_parallelism : 1;
    ts->tail = &ts->queues;
    return ts;
}

static void queue_free(tm_timer_queue *q) {
    for (size_t b = 0; b < q->nbuckets; b++) {
        tentry *e = q->buckets[b];
        while (e) {
            tentry *n = e->hnext;
            free(e);
            e = n;
        }
    }
    free(q->buckets);
    free(q->heaps[0].a);
    free(q->heaps[1].a);
    free(q->kg_heads);
    free(q);
}

void tm_timers_free(tm_timers *ts) {
    if (!ts) return;
    tm_timer_queue *q = ts->queues;
    while (q) {
        tm_timer_queue *n = q->next;
        queue_free(q);
        q = n;
    }
    free(ts);
}

tm_timer_queue *tm_timers_queue_new(tm_timers *ts, void *owner, tm_timer_fire_fn fire) {
    tm_timer_queue *q = XNEW(tm_timer_queue);
    q->ts = ts;
    q->owner = owner;
    q->fire = fire;
    q->nbuckets = 64;
    q->buckets = xcalloc(q->nbuckets, sizeof *q->buckets);
    q->kg_heads = xcalloc((size_t)ts->max_parallelism, sizeof *q->kg_heads);
    *ts->tail = q;
    ts->tail = &q->next;
    return q;
}

/* ---- heap ---------------------------------------------------------------------------------- */

static inline bool before(const tentry *a, const tentry *b) {
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void heap_set(theap *h, int i, tentry *e) {
    h->a[i] = e;
    e->heap_idx = i;
}

static void heap_up(theap *h, int i) {
    tentry *e = h->a[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!before(e, h->a[p])) break;
        heap_set(h, i, h->a[p]);
        i = p;
    }
    heap_set(h, i, e);
}

static void heap_down(theap *h, int i) {
    tentry *e = h->a[i];
    for (;;) {
        int l = 2 * i + 1, m = i;
        tentry *best = e;
        if (l < h->n && before(h->a[l], best)) m = l, best = h->a[l];
        if (l + 1 < h->n && before(h->a[l + 1], best)) m = l + 1, best = h->a[l + 1];
        if (m == i) break;
        heap_set(h, i, best);
        i = m;
    }
    heap_set(h, i, e);
}

static void heap_push(theap *h, tentry *e) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->a = xrealloc(h->a, (size_t)h->cap * sizeof *h->a);
    }
    h->a[h->n] = e;
    e->heap_idx = h->n++;
    heap_up(h, h->n - 1);
}

static void heap_remove(theap *h, tentry *e) {
    int i = e->heap_idx;
    assert(i >= 0 && i < h->n && h->a[i] == e);
    h->n--;
    if (i == h->n) return;
    tentry *moved = h->a[h->n];
    heap_set(h, i, moved);
    heap_down(h, i);
    heap_up(h, moved->heap_idx);
}

/* ---- the hash set ----------------------------------------------------------------------------- */

static uint64_t timer_hash(flint_time_domain d, const uint8_t *key, size_t key_len, const uint8_t *ns,
                           size_t ns_len, int64_t time) {
    uint64_t h = XXH3_64bits_withSeed(key, key_len, (uint64_t)time * 2 + (uint64_t)d);
    return XXH3_64bits_withSeed(ns, ns_len, h);
}

static tentry **find_slot(tm_timer_queue *q, uint64_t h, flint_time_domain d, const uint8_t *key,
                          size_t key_len, int key_group, const uint8_t *ns, size_t ns_len, int64_t time) {
    tentry **pp = &q->buckets[h & (q->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        tentry *e = *pp;
        if (e->hash == h && e->time == time && e->domain == d && e->key_group == key_group &&
            e->key_len == key_len && e->ns_len == ns_len && (!key_len || memcmp(e->bytes, key, key_len) == 0) &&
            (!ns_len || memcmp(e->bytes + key_len, ns, ns_len) == 0))
            return pp;
    }
    return pp;
}

static void grow(tm_timer_queue *q) {
    size_t nb = q->nbuckets * 2;
    tentry **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < q->nbuckets; i++) {
        tentry *e = q->buckets[i];
        while (e) {
            tentry *n = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(q->buckets);
    q->buckets = b;
    q->nbuckets = nb;
}

/* Take e out of the hash set, its key group list and its heap (e stays allocated). */
static void unlink_entry(tm_timer_queue *q, tentry *e) {
    tentry **pp = &q->buckets[e->hash & (q->nbuckets - 1)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->kprev) e->kprev->knext = e->knext;
    else q->kg_heads[e->key_group] = e->knext;
    if (e->knext) e->knext->kprev = e->kprev;
    heap_remove(&q->heaps[e->domain], e);
    q->count--;
}

bool tm_timer_register(tm_timer_queue *q, flint_time_domain d, const uint8_t *key, size_t key_len,
                       int key_group, const uint8_t *ns, size_t ns_len, int64_t time) {
    assert(key_group >= 0 && key_group < q->ts->max_parallelism);
    assert(d == FLINT_EVENT_TIME || d == FLINT_PROCESSING_TIME);
    uint64_t h = timer_hash(d, key, key_len, ns, ns_len, time);
    tentry **pp = find_slot(q, h, d, key, key_len, key_group, ns, ns_len, time);
    if (*pp) return false;
    tentry *e = xmalloc(sizeof *e + key_len + ns_len);
    e->hnext = NULL;
    e->hash = h;
    e->seq = q->ts->seq++;
    e->time = time;
    e->key_group = key_group;
    e->domain = d;
    e->key_len = (uint32_t)key_len;
    e->ns_len = (uint32_t)ns_len;
    if (key_len) memcpy(e->bytes, key, key_len);
    if (ns_len) memcpy(e->bytes + key_len, ns, ns_len);
    *pp = e;
    e->kprev = NULL;
    e->knext = q->kg_heads[key_group];
    if (e->knext) e->knext->kprev = e;
    q->kg_heads[key_group] = e;
    heap_push(&q->heaps[d], e);
    if (++q->count > q->nbuckets) grow(q);
    return true;
}

bool tm_timer_delete(tm_timer_queue *q, flint_time_domain d, const uint8_t *key, size_t key_len,
                     int key_group, const uint8_t *ns, size_t ns_len, int64_t time) {
    uint64_t h = timer_hash(d, key, key_len, ns, ns_len, time);
    tentry *e = *find_slot(q, h, d, key, key_len, key_group, ns, ns_len, time);
    if (!e) return false;
    unlink_entry(q, e);
    free(e);
    return true;
}

static int fire_entry(tm_timer_queue *q, tentry *e) {
    unlink_entry(q, e);
    tm_timer t = {.domain = e->domain, .time = e->time, .key_group = e->key_group, .key = e->bytes,
                  .key_len = e->key_len, .ns = e->bytes + e->key_len, .ns_len = e->ns_len};
    int rc = q->fire ? q->fire(q->owner, &t) : 0;
    free(e);
    return rc;
}

int tm_timer_queue_advance_watermark(tm_timer_queue *q, int64_t watermark) {
    theap *h = &q->heaps[FLINT_EVENT_TIME];
    while (h->n > 0 && h->a[0]->time <= watermark) {
        int rc = fire_entry(q, h->a[0]);
        if (rc) return rc;
    }
    return 0;
}

int64_t tm_timer_queue_next_event_time(const tm_timer_queue *q) {
    const theap *h = &q->heaps[FLINT_EVENT_TIME];
    return h->n ? h->a[0]->time : INT64_MAX;
}

int64_t tm_timers_next_processing_time(const tm_timers *ts) {
    int64_t next = INT64_MAX;
    for (const tm_timer_queue *q = ts->queues; q; q = q->next) {
        const theap *h = &q->heaps[FLINT_PROCESSING_TIME];
        if (h->n && h->a[0]->time < next) next = h->a[0]->time;
    }
    return next;
}

int tm_timers_fire_processing_time(tm_timers *ts, int64_t now_ms) {
    for (;;) {
        tm_timer_queue *best = NULL;
        for (tm_timer_queue *q = ts->queues; q; q = q->next) {
            theap *h = &q->heaps[FLINT_PROCESSING_TIME];
            if (h->n && h->a[0]->time <= now_ms && (!best || before(h->a[0], best->heaps[FLINT_PROCESSING_TIME].a[0])))
                best = q;
        }
        if (!best) return 0;
        int rc = fire_entry(best, best->heaps[FLINT_PROCESSING_TIME].a[0]);
        if (rc) return rc;
    }
}

size_t tm_timer_queue_count(const tm_timer_queue *q, flint_time_domain d) {
    return (size_t)q->heaps[d].n;
}

size_t tm_timers_count(const tm_timers *ts) {
    size_t n = 0;
    for (const tm_timer_queue *q = ts->queues; q; q = q->next) n += q->count;
    return n;
}

int tm_timer_queue_foreach_key_group(const tm_timer_queue *q, int key_group, tm_timer_visit_fn fn,
                                     void *ud) {
    if (key_group < 0 || key_group >= q->ts->max_parallelism) return 0;
    for (const tentry *e = q->kg_heads[key_group]; e; e = e->knext) {
        tm_timer t = {.domain = e->domain, .time = e->time, .key_group = e->key_group, .key = e->bytes,
                      .key_len = e->key_len, .ns = e->bytes + e->key_len, .ns_len = e->ns_len};
        int rc = fn(ud, &t);
        if (rc) return rc;
    }
    return 0;
}

/* The segment pool: one anonymous mapping of taskmanager.memory.network.size cut into
 * taskmanager.memory.segment-size segments, handed out as buffers from a LIFO free list. The
 * mapping is MAP_NORESERVE and untouched segments cost no memory; recently recycled segments are
 * handed out first, so a lightly loaded taskmanager touches few pages. */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "network/tm_net_int.h"
#include "util/alloc.h"

int tm_pool_init(tm_pool *p, uint64_t bytes, uint32_t seg_size, flint_err *err) {
    assert(p && seg_size > 0);
    memset(p, 0, sizeof *p);
    uint64_t n = bytes / seg_size;
    if (n < 1 || n > INT32_MAX)
        return flint_err_set(err, FLINT_CONFIG,
                             "taskmanager.memory.network.size (%llu bytes) must hold between 1 and "
                             "%d segments of taskmanager.memory.segment-size (%u bytes)",
                             (unsigned long long)bytes, INT32_MAX, seg_size);
    p->mem_len = (size_t)n * seg_size;
    p->mem = mmap(NULL, p->mem_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p->mem == MAP_FAILED) {
        p->mem = NULL;
        return flint_err_set(err, FLINT_NOMEM, "cannot map %zu bytes of network memory: %s",
                             p->mem_len, strerror(errno));
    }
    p->seg_size = seg_size;
    p->total = (int)n;
    p->bufs = xcalloc((size_t)n, sizeof(tm_buf));
    /* Stack the segments so that the lowest addresses come out first. */
    for (int64_t i = (int64_t)n - 1; i >= 0; i--) {
        tm_buf *b = &p->bufs[i];
        b->data = p->mem + (size_t)i * seg_size;
        b->pool = p;
        b->next = p->free;
        p->free = b;
    }
    atomic_init(&p->nfree, (int)n);
    tm_mutex_init(&p->mu);
    tm_dl_init(&p->waiters);
    return FLINT_OK;
}

void tm_pool_destroy(tm_pool *p) {
    if (!p->mem) return;
    munmap(p->mem, p->mem_len);
    free(p->bufs);
    pthread_mutex_destroy(&p->mu);
    p->mem = NULL;
}

static inline tm_buf *pop_locked(tm_pool *p) {
    tm_buf *b = p->free;
    if (!b) return NULL;
    p->free = b->next;
    atomic_store_explicit(&p->nfree, atomic_load_explicit(&p->nfree, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    b->next = NULL;
    b->size = 0;
    b->flags = 0;
    b->owner = TM_OWN_POOL;
    b->chan = NULL;
    return b;
}

static inline void push_locked(tm_pool *p, tm_buf *b) {
    assert(b->pool == p);
    b->next = p->free;
    p->free = b;
    atomic_store_explicit(&p->nfree, atomic_load_explicit(&p->nfree, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void wake_waiters_locked(tm_pool *p) {
    for (tm_dl *n = p->waiters.next; n != &p->waiters; n = n->next)
        tm_waker_signal(TM_DL_ENTRY(n, tm_pool_waiter, link)->waker);
}

tm_buf *tm_pool_get(tm_pool *p) {
    pthread_mutex_lock(&p->mu);
    tm_buf *b = pop_locked(p);
    pthread_mutex_unlock(&p->mu);
    return b;
}

tm_buf *tm_pool_get_or_wait(tm_pool *p, tm_pool_waiter *w) {
    pthread_mutex_lock(&p->mu);
    tm_buf *b = pop_locked(p);
    if (!b) tm_dl_push(&p->waiters, &w->link);
    pthread_mutex_unlock(&p->mu);
    return b;
}

void tm_pool_unwait(tm_pool *p, tm_pool_waiter *w) {
    pthread_mutex_lock(&p->mu);
    if (tm_dl_linked(&w->link)) tm_dl_del(&w->link);
    pthread_mutex_unlock(&p->mu);
}

bool tm_pool_get_n(tm_pool *p, int n, tm_bufq *q) {
    pthread_mutex_lock(&p->mu);
    if (atomic_load_explicit(&p->nfree, memory_order_relaxed) < n) {
        pthread_mutex_unlock(&p->mu);
        return false;
    }
    for (int i = 0; i < n; i++) tm_bufq_push(q, pop_locked(p));
    pthread_mutex_unlock(&p->mu);
    return true;
}

void tm_pool_put(tm_pool *p, tm_buf *b) {
    pthread_mutex_lock(&p->mu);
    push_locked(p, b);
    if (!tm_dl_empty(&p->waiters)) wake_waiters_locked(p);
    pthread_mutex_unlock(&p->mu);
}

void tm_pool_put_q(tm_pool *p, tm_bufq *q) {
    if (!q->head) return;
    pthread_mutex_lock(&p->mu);
    tm_buf *b;
    while ((b = tm_bufq_pop(q))) push_locked(p, b);
    if (!tm_dl_empty(&p->waiters)) wake_waiters_locked(p);
    pthread_mutex_unlock(&p->mu);
}

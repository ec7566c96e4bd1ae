/* Wakers: what a task thread sleeps on when it has no input or no output buffer. A signal is
 * remembered until the next wait returns, so a signal sent between "nothing to do" and the wait
 * is never lost. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "network/tm_net_int.h"
#include "util/alloc.h"

tm_waker *tm_waker_new(void) {
    tm_waker *w = XNEW(tm_waker);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&w->pending, false);
    atomic_init(&w->canceled, false);
    return w;
}

void tm_waker_free(tm_waker *w) {
    if (!w) return;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void tm_waker_signal(tm_waker *w) {
    assert(w);
    pthread_mutex_lock(&w->mu);
    atomic_store_explicit(&w->pending, true, memory_order_release);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void tm_waker_wait(tm_waker *w, int64_t deadline_ms) {
    assert(w);
    pthread_mutex_lock(&w->mu);
    struct timespec ts;
    if (deadline_ms != INT64_MAX) {
        ts.tv_sec = deadline_ms / 1000;
        ts.tv_nsec = (deadline_ms % 1000) * 1000000;
    }
    while (!atomic_load_explicit(&w->pending, memory_order_relaxed)) {
        if (deadline_ms == INT64_MAX) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    atomic_store_explicit(&w->pending, false, memory_order_relaxed);
    pthread_mutex_unlock(&w->mu);
}

void tm_waker_cancel(tm_waker *w) {
    assert(w);
    atomic_store(&w->canceled, true);
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->pending, true);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool tm_waker_canceled(const tm_waker *w) {
    return atomic_load(&((tm_waker *)w)->canceled);
}

/* Wakers: what a task thread sleeps on when it has no input or no output buffer. A signal is
 * remembered until the next wait returns, so a signal sent between "nothing to do" and the wait
 * is never lost.
 *
 * Signals are frequent (every buffer that makes a task's input non-empty, every recycled segment
 * or queue slot a writer waits for) and most find the task busy: they then cost one atomic
 * exchange. A Linux futex on `pending` does the sleeping, without a mutex that signalers and the
 * waiter would contend for: the waiter announces itself (sleeping) and then looks at pending; a
 * signaler sets pending and then looks at sleeping; both sequentially consistent, so at least one
 * sees the other's write, and FUTEX_WAIT only sleeps while pending is still 0. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "network/tm_net_int.h"
#include "util/alloc.h"

tm_waker *tm_waker_new(void) {
    tm_waker *w = XNEW(tm_waker);
    atomic_init(&w->pending, 0);
    atomic_init(&w->sleeping, 0);
    atomic_init(&w->canceled, false);
    return w;
}

void tm_waker_free(tm_waker *w) { free(w); }

static void wake_sleepers(tm_waker *w) {
    syscall(SYS_futex, &w->pending, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void tm_waker_signal(tm_waker *w) {
    assert(w);
    if (atomic_exchange(&w->pending, 1)) return;   /* not consumed yet: the waiter will see it */
    if (atomic_load(&w->sleeping)) wake_sleepers(w);
}

void tm_waker_wait(tm_waker *w, int64_t deadline_ms) {
    assert(w);
    if (atomic_exchange(&w->pending, 0)) return;
    struct timespec ts, *abs = NULL;
    if (deadline_ms != INT64_MAX) {
        ts.tv_sec = deadline_ms / 1000;
        ts.tv_nsec = (deadline_ms % 1000) * 1000000;
        abs = &ts;
    }
    atomic_fetch_add(&w->sleeping, 1);
    while (!atomic_exchange(&w->pending, 0)) {
        /* Sleeps only while pending is 0; an absolute CLOCK_MONOTONIC deadline. */
        long rc = syscall(SYS_futex, &w->pending, FUTEX_WAIT_BITSET_PRIVATE, 0, abs, NULL,
                          FUTEX_BITSET_MATCH_ANY);
        if (rc < 0 && errno == ETIMEDOUT) break;
    }
    atomic_fetch_sub(&w->sleeping, 1);
}

void tm_waker_cancel(tm_waker *w) {
    assert(w);
    atomic_store(&w->canceled, true);
    atomic_store(&w->pending, 1);
    wake_sleepers(w);
}

bool tm_waker_canceled(const tm_waker *w) {
    return atomic_load(&((tm_waker *)w)->canceled);
}

/* Result partitions: one FIFO of finished buffers per subpartition, the registry through which
 * consumers (local channels, or the I/O thread for remote ones) find them, and the rules that keep
 * one slow consumer from draining the pool: a subpartition queues at most `cap` finished buffers
 * (max(2, buffers-per-channel + floating-buffers-per-gate): what a remote consumer could take in
 * at once); a writer that would exceed it waits, backpressured, until the reader has taken the
 * queue down to half the cap (so that a backpressured writer, woken, fills several buffers in a
 * row rather than sleeping and waking once per buffer). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#define LOG_MODULE "net"
#include "network/tm_net_int.h"
#include "util/alloc.h"
#include "util/log.h"

static void unref(tm_partition *p) {
    if (atomic_fetch_sub(&p->refs, 1) != 1) return;
    for (int i = 0; i < p->n; i++) tm_pool_put_q(&p->net->pool, &p->subs[i].q);
    pthread_mutex_destroy(&p->mu);
    free(p->subs);
    free(p->id);
    free(p);
}

static void unregister(tm_partition *p) {
    tm_net *net = p->net;
    bool was = false;
    pthread_mutex_lock(&net->reg_mu);
    if (p->registered) {
        p->registered = false;
        tm_dl_del(&p->reg_link);
        was = true;
    }
    pthread_mutex_unlock(&net->reg_mu);
    if (was) unref(p);
}

static bool all_consumed_locked(const tm_partition *p) {
    for (int i = 0; i < p->n; i++)
        if (!p->subs[i].consumed) return false;
    return true;
}

static void wake_writer_locked(tm_partition *p) {
    if (p->writer_waiting && p->writer_waker) {
        p->writer_waiting = false;
        tm_waker_signal(p->writer_waker);
    }
}

/* Cancel: drop every queued buffer (into *drop) and tell the readers. */
static void cancel_locked(tm_partition *p, tm_bufq *drop) {
    p->canceled = true;
    for (int i = 0; i < p->n; i++) {
        tm_subpart *sp = &p->subs[i];
        tm_buf *b;
        while ((b = tm_bufq_pop(&sp->q))) tm_bufq_push(drop, b);
        if (sp->reader) sp->reader->notify(sp->reader);
    }
    wake_writer_locked(p);
}

tm_partition *tm_partition_create(tm_net *net, const char *partition_id, int num_subpartitions,
                                  flint_err *err) {
    assert(net && partition_id && num_subpartitions > 0);
    if (strlen(partition_id) > 1024) {
        flint_err_set(err, FLINT_INVALID, "partition id longer than 1024 bytes");
        return NULL;
    }
    tm_partition *p = XNEW(tm_partition);
    p->net = net;
    p->id = xstrdup(partition_id);
    p->n = num_subpartitions;
    p->subs = xcalloc((size_t)num_subpartitions, sizeof(tm_subpart));
    tm_mutex_init(&p->mu);
    p->cap = net->sub_cap;
    atomic_init(&p->refs, 2);   /* producer + registry */
    tm_dl_init(&p->reg_link);

    pthread_mutex_lock(&net->reg_mu);
    for (tm_dl *n = net->partitions.next; n != &net->partitions; n = n->next) {
        if (strcmp(TM_DL_ENTRY(n, tm_partition, reg_link)->id, partition_id) == 0) {
            pthread_mutex_unlock(&net->reg_mu);
            flint_err_set(err, FLINT_EXISTS, "result partition %s is already registered",
                          partition_id);
            atomic_store(&p->refs, 1);
            unref(p);
            return NULL;
        }
    }
    p->registered = true;
    tm_dl_push(&net->partitions, &p->reg_link);
    pthread_mutex_unlock(&net->reg_mu);
    return p;
}

void tm_partition_release(tm_partition *p, bool canceled) {
    if (!p) return;
    if (canceled) unregister(p);
    tm_bufq drop = {0};
    pthread_mutex_lock(&p->mu);
    p->producer_released = true;
    p->writer_waker = NULL;
    p->writer_waiting = false;
    if (canceled) {
        cancel_locked(p, &drop);
    } else {
        /* Readers that drained a partition without its end must hear about the release. */
        for (int i = 0; i < p->n; i++)
            if (p->subs[i].reader && !p->subs[i].eop_written)
                p->subs[i].reader->notify(p->subs[i].reader);
    }
    bool done = all_consumed_locked(p);
    pthread_mutex_unlock(&p->mu);
    tm_pool_put_q(&p->net->pool, &drop);
    if (done) unregister(p);
    unref(p);
}

int tm_partition_push(tm_partition *p, int i, tm_buf *b) {
    pthread_mutex_lock(&p->mu);
    tm_subpart *sp = &p->subs[i];
    if (b->flags & TM_BUF_EOP) sp->eop_written = true;
    if (sp->discard || p->canceled) {
        pthread_mutex_unlock(&p->mu);
        tm_pool_put(&p->net->pool, b);
        return 0;
    }
    bool was_empty = sp->q.len == 0;
    tm_bufq_push(&sp->q, b);
    int len = sp->q.len;
    if (was_empty && sp->reader) sp->reader->notify(sp->reader);
    pthread_mutex_unlock(&p->mu);
    return len;
}

bool tm_partition_has_room(tm_partition *p, int i) {
    tm_subpart *sp = &p->subs[i];
    pthread_mutex_lock(&p->mu);
    bool room = sp->q.len < p->cap || sp->discard || p->canceled;
    if (!room) p->writer_waiting = true;
    pthread_mutex_unlock(&p->mu);
    return room;
}

int tm_partition_attach(tm_net *net, const char *id, int sub, tm_sub_reader *r, char *msg,
                        size_t msglen) {
    tm_partition *p = NULL;
    pthread_mutex_lock(&net->reg_mu);
    for (tm_dl *n = net->partitions.next; n != &net->partitions; n = n->next) {
        tm_partition *q = TM_DL_ENTRY(n, tm_partition, reg_link);
        if (strcmp(q->id, id) == 0) {
            p = q;
            atomic_fetch_add(&p->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&net->reg_mu);
    if (!p) {
        snprintf(msg, msglen, "partition %s not found", id);
        return FLINT_NOT_FOUND;
    }
    int rc = FLINT_OK;
    pthread_mutex_lock(&p->mu);
    if (sub < 0 || sub >= p->n) {
        snprintf(msg, msglen, "partition %s has %d subpartitions, there is no subpartition %d", id,
                 p->n, sub);
        rc = FLINT_INVALID;
    } else if (p->canceled) {
        snprintf(msg, msglen, "partition %s was canceled by its producer", id);
        rc = FLINT_STATE;
    } else if (p->subs[sub].claimed) {
        snprintf(msg, msglen, "subpartition %d of partition %s is already consumed", sub, id);
        rc = FLINT_STATE;
    } else {
        tm_subpart *sp = &p->subs[sub];
        sp->claimed = true;
        sp->reader = r;
        r->part = p;
        r->sub = sub;
        if (sp->q.len > 0 || (p->producer_released && !sp->eop_written)) r->notify(r);
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != FLINT_OK) unref(p);
    return rc;
}

tm_buf *tm_partition_pop(tm_sub_reader *r, int *backlog, bool renotify, int *status, char *msg,
                         size_t msglen) {
    tm_partition *p = r->part;
    tm_subpart *sp = &p->subs[r->sub];
    pthread_mutex_lock(&p->mu);
    tm_buf *b = tm_bufq_pop(&sp->q);
    *status = FLINT_OK;
    *backlog = sp->q.len;
    if (b) {
        if (b->flags & TM_BUF_EOP) sp->consumed = true;
        if (sp->q.len <= p->cap / 2) wake_writer_locked(p);
        if (renotify && sp->q.len > 0) r->notify(r);
    } else if (p->canceled) {
        snprintf(msg, msglen, "partition %s was canceled by its producer", p->id);
        *status = FLINT_STATE;
    } else if (p->producer_released && !sp->eop_written) {
        snprintf(msg, msglen, "partition %s was released by its producer before its end", p->id);
        *status = FLINT_STATE;
    }
    pthread_mutex_unlock(&p->mu);
    return b;
}

void tm_partition_detach(tm_sub_reader *r) {
    tm_partition *p = r->part;
    if (!p) return;
    tm_bufq drop = {0};
    pthread_mutex_lock(&p->mu);
    tm_subpart *sp = &p->subs[r->sub];
    if (sp->reader == r) sp->reader = NULL;
    if (!sp->consumed) {
        /* The consumer went away: nobody will read this subpartition again. */
        sp->consumed = true;
        sp->discard = true;
        tm_buf *b;
        while ((b = tm_bufq_pop(&sp->q))) tm_bufq_push(&drop, b);
        wake_writer_locked(p);
    }
    bool done = p->producer_released && all_consumed_locked(p);
    pthread_mutex_unlock(&p->mu);
    tm_pool_put_q(&p->net->pool, &drop);
    r->part = NULL;
    if (done) unregister(p);
    unref(p);
}

void tm_partition_drop_lingering(tm_net *net, const char *prefix) {
    size_t plen = prefix ? strlen(prefix) : 0;
    for (;;) {
        tm_partition *p = NULL;
        pthread_mutex_lock(&net->reg_mu);
        for (tm_dl *n = net->partitions.next; n != &net->partitions; n = n->next) {
            tm_partition *q = TM_DL_ENTRY(n, tm_partition, reg_link);
            pthread_mutex_lock(&q->mu);
            bool lingering = q->producer_released;
            pthread_mutex_unlock(&q->mu);
            if (lingering && (!prefix || strncmp(q->id, prefix, plen) == 0)) {
                p = q;
                atomic_fetch_add(&p->refs, 1);
                break;
            }
        }
        pthread_mutex_unlock(&net->reg_mu);
        if (!p) return;
        log_debug("dropping unconsumed partition %s", p->id);
        unregister(p);
        tm_bufq drop = {0};
        pthread_mutex_lock(&p->mu);
        cancel_locked(p, &drop);
        pthread_mutex_unlock(&p->mu);
        tm_pool_put_q(&net->pool, &drop);
        unref(p);
    }
}

void tm_partition_buffers(tm_partition *p, int *queued, int *capacity) {
    int q = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n; i++) q += p->subs[i].q.len;
    pthread_mutex_unlock(&p->mu);
    *queued = q;
    *capacity = p->n * p->cap;
}

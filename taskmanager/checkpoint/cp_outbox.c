/* The queue of messages from task threads to the jobmanager (cp_outbox.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/cp_outbox.h"
#include "util/alloc.h"

typedef struct msg {
    uint8_t *data;
    size_t len;
    struct msg *next;
} msg;

struct tm_outbox {
    pthread_mutex_t mu;
    msg *head, *tail;
    struct event *ev;
    tm_outbox_deliver_fn fn;
    void *ud;
};

static void on_event(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what;
    tm_outbox *o = ud;
    pthread_mutex_lock(&o->mu);
    msg *m = o->head;
    o->head = o->tail = NULL;
    pthread_mutex_unlock(&o->mu);
    while (m) {
        msg *next = m->next;
        Flint__Rpc__Envelope *env = flint__rpc__envelope__unpack(NULL, m->len, m->data);
        if (env) {
            o->fn(o->ud, env);
            flint__rpc__envelope__free_unpacked(env, NULL);
        }
        free(m->data);
        free(m);
        m = next;
    }
}

tm_outbox *tm_outbox_new(struct event_base *base, tm_outbox_deliver_fn fn, void *ud) {
    tm_outbox *o = XNEW(tm_outbox);
    pthread_mutex_init(&o->mu, NULL);
    o->ev = event_new(base, -1, 0, on_event, o);
    o->fn = fn;
    o->ud = ud;
    return o;
}

void tm_outbox_put(tm_outbox *o, const Flint__Rpc__Envelope *env) {
    msg *m = XNEW(msg);
    m->len = flint__rpc__envelope__get_packed_size(env);
    m->data = xmalloc(m->len ? m->len : 1);
    flint__rpc__envelope__pack(env, m->data);
    pthread_mutex_lock(&o->mu);
    if (o->tail) o->tail->next = m;
    else o->head = m;
    o->tail = m;
    pthread_mutex_unlock(&o->mu);
    event_active(o->ev, EV_READ, 0);
}

void tm_outbox_free(tm_outbox *o) {
    if (!o) return;
    for (msg *m = o->head, *n; m; m = n) {
        n = m->next;
        free(m->data);
        free(m);
    }
    event_free(o->ev);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

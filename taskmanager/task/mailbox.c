/* The task mailbox: a mutex-protected FIFO of mails with an atomic count for the cheap check the
 * task loop makes between buffers (see mailbox.h). Mails are rare (cancel), so each is one small
 * allocation. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "task/mailbox.h"
#include "util/alloc.h"

typedef struct mail {
    tm_mail_fn fn;
    void *arg;
    struct mail *next;
} mail;

struct tm_mailbox {
    pthread_mutex_t mu;
    mail *head, *tail;
    atomic_int count;
    void (*signal)(void *ud);
    void *ud;
};

tm_mailbox *tm_mailbox_new(void (*signal)(void *ud), void *ud) {
    tm_mailbox *mb = XNEW(tm_mailbox);
    pthread_mutex_init(&mb->mu, NULL);
    atomic_init(&mb->count, 0);
    mb->signal = signal;
    mb->ud = ud;
    return mb;
}

void tm_mailbox_free(tm_mailbox *mb) {
    if (!mb) return;
    for (mail *m = mb->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    pthread_mutex_destroy(&mb->mu);
    free(mb);
}

void tm_mailbox_put(tm_mailbox *mb, tm_mail_fn fn, void *arg) {
    mail *m = XNEW(mail);
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_lock(&mb->mu);
    if (mb->tail) mb->tail->next = m;
    else mb->head = m;
    mb->tail = m;
    atomic_fetch_add(&mb->count, 1);
    pthread_mutex_unlock(&mb->mu);
    if (mb->signal) mb->signal(mb->ud);
}

bool tm_mailbox_has_mail(tm_mailbox *mb) {
    return atomic_load_explicit(&mb->count, memory_order_acquire) > 0;
}

int tm_mailbox_run(tm_mailbox *mb) {
    if (!tm_mailbox_has_mail(mb)) return 0;
    pthread_mutex_lock(&mb->mu);
    mail *m = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->mu);
    int n = 0;
    while (m) {
        mail *next = m->next;
        atomic_fetch_sub(&mb->count, 1);
        m->fn(m->arg);
        free(m);
        m = next;
        n++;
    }
    return n;
}

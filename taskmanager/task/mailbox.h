/* A task's mailbox (Flink's mailbox model): other threads put actions ("mails": cancel now,
 * checkpoint triggers and timers later) that the task thread runs between input buffers or
 * source batches, so operators only ever run on the task thread. Putting a mail wakes the task
 * (the signal function given at creation: the task's tm_waker). */
#ifndef FLINT_TM_MAILBOX_H
#define FLINT_TM_MAILBOX_H

#include <stdbool.h>

typedef void (*tm_mail_fn)(void *arg);
typedef struct tm_mailbox tm_mailbox;

/* signal(ud) is called after each put (from the putting thread); may be NULL. */
tm_mailbox *tm_mailbox_new(void (*signal)(void *ud), void *ud);
/* Free the mailbox; mails never run are dropped without being called. */
void tm_mailbox_free(tm_mailbox *mb);
/* Queue fn(arg) for the task thread. Any thread. */
void tm_mailbox_put(tm_mailbox *mb, tm_mail_fn fn, void *arg);
/* Whether mail is waiting: a cheap check for the task loop. */
bool tm_mailbox_has_mail(tm_mailbox *mb);
/* Run the mails queued so far, in the order they were put (mails they put run on the next call).
 * Task thread only. Returns how many ran. */
int tm_mailbox_run(tm_mailbox *mb);

#endif

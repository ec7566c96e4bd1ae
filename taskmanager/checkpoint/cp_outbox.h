/* Messages from task and checkpoint threads to the jobmanager (issue 6): acknowledgements and
 * declines of checkpoints are packed by the calling thread and queued; the executor's loop
 * unpacks and sends them (only the loop thread touches the RPC connection). */
#ifndef FLINT_CP_OUTBOX_H
#define FLINT_CP_OUTBOX_H

#include <event2/event.h>

#include "rpc.pb-c.h"

typedef struct tm_outbox tm_outbox;

/* Called on the loop thread with each message (env is freed after it returns). */
typedef void (*tm_outbox_deliver_fn)(void *ud, Flint__Rpc__Envelope *env);

/* base must come from an event base made after evthread_use_pthreads(). */
tm_outbox *tm_outbox_new(struct event_base *base, tm_outbox_deliver_fn fn, void *ud);
/* Queue a copy of env (any thread). */
void tm_outbox_put(tm_outbox *o, const Flint__Rpc__Envelope *env);
/* Drop what is queued and free (loop thread, no thread may put any more). */
void tm_outbox_free(tm_outbox *o);

#endif

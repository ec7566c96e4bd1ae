/* Internals of the network stack shared by its files (tm_net.c, tm_pool.c, tm_partition.c,
 * tm_writer.c, tm_input.c, tm_waker.c): buffers, the segment pool, subpartition queues, input
 * channels and the I/O thread's queues. Not for use outside taskmanager/network/.
 *
 * Threads and locks. Task threads call the writer and input functions; the network's I/O thread
 * owns every socket, connection and timer. Locks, always taken in this order (never the other
 * way round), each held for a buffer's worth of work, never per element:
 *   partition->mu  ->  input->mu  ->  net->io_mu, pool->mu, waker->mu (leaves)
 *   net->reg_mu  ->  partition->mu (registry scans; nobody takes reg_mu under partition->mu).
 * A subpartition notifies its reader under partition->mu (a local reader then takes input->mu,
 * a remote one net->io_mu). Code running on the I/O thread never holds a lock while it calls into
 * libevent, except event_active (which only takes libevent's base lock). */
#ifndef FLINT_TM_NET_INT_H
#define FLINT_TM_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "network/tm_net.h"

struct event;
struct event_base;
struct net_listener;

/* The locks of the data path (partition, input, pool, I/O queues) guard a few list operations
 * each, and task and I/O threads take them per buffer: an adaptive mutex spins briefly before it
 * sleeps, which spares a context switch when the holder is running on the other core. */
static inline void tm_mutex_init(pthread_mutex_t *mu) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
}

/* ---- intrusive doubly linked lists ------------------------------------------------------------ */
typedef struct tm_dl {
    struct tm_dl *prev, *next;
} tm_dl;

static inline void tm_dl_init(tm_dl *h) { h->prev = h->next = h; }
static inline bool tm_dl_empty(const tm_dl *h) { return h->next == h; }
/* Whether node n (initialised with tm_dl_init) is on a list. */
static inline bool tm_dl_linked(const tm_dl *n) { return n->next != n; }
static inline void tm_dl_push(tm_dl *h, tm_dl *n) {
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void tm_dl_del(tm_dl *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
static inline tm_dl *tm_dl_pop(tm_dl *h) {
    if (tm_dl_empty(h)) return NULL;
    tm_dl *n = h->next;
    tm_dl_del(n);
    return n;
}
#define TM_DL_ENTRY(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

/* ---- buffers ------------------------------------------------------------------------------------
 * A buffer is one segment of the pool plus this header (kept in an array beside the segments, so
 * the segments themselves stay untouched until used). */
enum {
    TM_BUF_EVENT = 1,   /* an event buffer: 4-byte LE event type, then its payload */
    TM_BUF_EOP = 2      /* the end-of-partition event */
};
typedef enum tm_buf_owner {
    TM_OWN_POOL,        /* goes back to the pool when recycled */
    TM_OWN_EXCLUSIVE,   /* an exclusive buffer of remote channel chan */
    TM_OWN_FLOATING     /* a floating buffer of chan's gate, lent to chan */
} tm_buf_owner;

struct tm_chan;
typedef struct tm_buf {
    struct tm_buf *next;      /* queue link */
    uint8_t *data;            /* the segment */
    uint32_t size;            /* bytes filled */
    uint8_t flags;            /* TM_BUF_* */
    uint8_t owner;            /* tm_buf_owner */
    struct tm_chan *chan;     /* for EXCLUSIVE and FLOATING */
    struct tm_pool *pool;
} tm_buf;

/* A FIFO of buffers. */
typedef struct tm_bufq {
    tm_buf *head, *tail;
    int len;
} tm_bufq;

static inline void tm_bufq_push(tm_bufq *q, tm_buf *b) {
    b->next = NULL;
    if (q->tail) q->tail->next = b;
    else q->head = b;
    q->tail = b;
    q->len++;
}
static inline void tm_bufq_push_head(tm_bufq *q, tm_buf *b) {
    b->next = q->head;
    q->head = b;
    if (!q->tail) q->tail = b;
    q->len++;
}
static inline tm_buf *tm_bufq_pop(tm_bufq *q) {
    tm_buf *b = q->head;
    if (!b) return NULL;
    q->head = b->next;
    if (!q->head) q->tail = NULL;
    q->len--;
    b->next = NULL;
    return b;
}

/* ---- the segment pool (tm_pool.c) ----------------------------------------------------------- */
typedef struct tm_pool {
    pthread_mutex_t mu;
    uint8_t *mem;             /* one mmap of total * seg_size bytes */
    size_t mem_len;
    uint32_t seg_size;
    int total;
    tm_buf *bufs;             /* total headers */
    tm_buf *free;             /* LIFO stack (recently used segments first: fewer pages touched) */
    atomic_int nfree;
    tm_dl waiters;            /* tm_pool_waiter: writers waiting for a segment */
} tm_pool;

typedef struct tm_pool_waiter {
    tm_dl link;
    tm_waker *waker;
} tm_pool_waiter;

int tm_pool_init(tm_pool *p, uint64_t bytes, uint32_t seg_size, flint_err *err);
void tm_pool_destroy(tm_pool *p);
/* A free buffer (owner POOL, empty), or NULL when none is free. */
tm_buf *tm_pool_get(tm_pool *p);
/* As tm_pool_get, but when none is free registers w (not yet registered) so that its waker is
 * signalled by the next recycle; the caller then waits and calls tm_pool_unwait. */
tm_buf *tm_pool_get_or_wait(tm_pool *p, tm_pool_waiter *w);
void tm_pool_unwait(tm_pool *p, tm_pool_waiter *w);
/* n buffers at once into q, or none (returns false) when fewer than n are free. */
bool tm_pool_get_n(tm_pool *p, int n, tm_bufq *q);
/* Recycle one buffer / a whole queue; wakes waiting writers. */
void tm_pool_put(tm_pool *p, tm_buf *b);
void tm_pool_put_q(tm_pool *p, tm_bufq *q);

/* ---- wakers (tm_waker.c) ---------------------------------------------------------------------- */
struct tm_waker {
    atomic_int pending;       /* 1: a signal not consumed by a wait yet (the futex word) */
    atomic_int sleeping;      /* threads in a wait that found nothing pending */
    atomic_bool canceled;
};

/* ---- result partitions (tm_partition.c) -------------------------------------------------------
 * A subpartition's reader is a local input channel or a remote channel's server-side reader.
 * notify() runs under the partition's lock when the queue goes from empty to non-empty, and when
 * the partition is canceled or released (so the reader comes and looks). */
typedef struct tm_sub_reader {
    void (*notify)(struct tm_sub_reader *r);
    struct tm_partition *part;  /* set by tm_partition_attach under the partition's lock */
    int sub;
} tm_sub_reader;

typedef struct tm_subpart {
    tm_bufq q;                  /* finished buffers, oldest first */
    tm_sub_reader *reader;
    bool claimed;               /* a reader attached once (a subpartition is read once) */
    bool consumed;              /* end of partition read, or the reader went away */
    bool discard;               /* the reader went away early: drop whatever is written */
    bool eop_written;
} tm_subpart;

struct tm_partition {
    tm_net *net;
    char *id;
    int n;
    tm_subpart *subs;
    pthread_mutex_t mu;
    atomic_int refs;            /* producer + registry + attached readers */
    int cap;                    /* most finished buffers a subpartition queues (backpressure) */
    tm_waker *writer_waker;     /* the writer's, while it has one */
    bool writer_waiting;        /* the writer waits for a queue to drop below cap */
    bool producer_released, canceled;
    bool registered;            /* under net->reg_mu */
    tm_dl reg_link;             /* net->partitions, under net->reg_mu */
};

/* Push a finished buffer to subpartition i (writer side). Returns the queue's length after it
 * (0 when the buffer was dropped: canceled, or nobody will read the subpartition). */
int tm_partition_push(tm_partition *p, int i, tm_buf *b);
/* Whether subpartition i queues fewer than cap buffers (or drops what it gets). When not, the
 * writer's waker is signalled once a reader has taken the queue down to half the cap. */
bool tm_partition_has_room(tm_partition *p, int i);
/* Find partition id and attach r to subpartition sub, taking a reference. FLINT_NOT_FOUND when
 * no such partition is registered (yet), another status with msg when the request can never
 * succeed. Calls r->notify when data is already queued. */
int tm_partition_attach(tm_net *net, const char *id, int sub, tm_sub_reader *r, char *msg,
                        size_t msglen);
/* The next buffer of r's subpartition, or NULL. When NULL, *status is FLINT_OK (no data yet) or
 * FLINT_STATE with msg (canceled, or released before the end of the partition). *backlog gets
 * the buffers left queued. With renotify, r->notify is called again when more data remains. */
tm_buf *tm_partition_pop(tm_sub_reader *r, int *backlog, bool renotify, int *status, char *msg,
                         size_t msglen);
/* Detach r and drop its reference. consumed: it read the end of partition; otherwise whatever is
 * queued and later written for it is dropped. */
void tm_partition_detach(tm_sub_reader *r);
/* Drop lingering partitions (producer released, not fully consumed) whose id starts with prefix
 * (NULL: all). */
void tm_partition_drop_lingering(tm_net *net, const char *prefix);

/* ---- input gates and channels (tm_input.c) ---------------------------------------------------- */
typedef enum tm_chan_state {
    TM_CH_IDLE,        /* not requested yet */
    TM_CH_REQUESTED,   /* remote: PartitionRequest sent, mapped on conn by id; local: attached */
    TM_CH_RETRY,       /* waiting for the backoff timer */
    TM_CH_DONE,        /* end of partition received (remote) or attached and finished */
    TM_CH_FAILED
} tm_chan_state;

struct tm_conn;
struct tm_gate;

typedef struct tm_chan {
    struct tm_input *in;
    struct tm_gate *gate;
    int gate_idx, idx;
    char *partition_id, *producer_rid, *host;
    int port, subpartition;
    bool local;

    /* task thread: parsing */
    uint8_t *spill;           /* an element spanning buffers is assembled here */
    uint32_t spill_cap, span_have, span_total;   /* span_total 0: header not complete yet */
    uint8_t span_hdr[4];
    bool spanning;
    bool ended;               /* end of partition consumed */

    /* under in->mu */
    bool queued;              /* on in->avail */
    tm_dl avail_link;
    tm_bufq recvq;            /* remote: received buffers */
    tm_bufq freeq;            /* remote: buffers to receive into (exclusive first) */
    int nexclusive;           /* exclusive buffers owned (in freeq, recvq or being read) */
    int unannounced;          /* credit not yet sent */
    int backlog;              /* last backlog announced by the sender */
    bool float_waiting;       /* on gate->float_waiters */
    tm_dl float_link;
    bool closed;              /* no more data comes: recycled buffers go back to the pool */
    bool blocked;             /* barrier alignment: not read until unblocked (tm_input_block) */
    bool avail_blocked;       /* data arrived (or was queued) while blocked */

    /* local channel: the subpartition reader (attached on the I/O thread, read by the task) */
    tm_sub_reader reader;
    _Atomic int local_backlog;   /* buffers its subpartition queued at the last read (metrics) */

    /* under net->io_mu */
    bool credit_queued;
    tm_dl credit_link;

    /* I/O thread only */
    tm_chan_state state;
    struct tm_conn *conn;     /* remote, while REQUESTED or RETRY */
    tm_dl conn_link;          /* conn->users */
    uint32_t id;              /* channel id on conn */
    uint32_t expect_seq;
    int64_t first_request_ms, backoff_ms;
    struct event *retry_timer;
} tm_chan;

typedef struct tm_gate {
    int idx, n;
    tm_chan *chans;
    int ended;                /* channels that consumed end of partition (task thread) */
    bool end_reported;
    /* floating buffers, under in->mu */
    int float_limit, float_held;
    tm_dl float_waiters;      /* channels that want more buffers than they have */
} tm_gate;

struct tm_input {
    tm_net *net;
    tm_waker *waker;
    int ngates, cap_gates;
    tm_gate *gates;
    bool started;

    pthread_mutex_t mu;
    tm_dl avail;              /* channels with something to read */
    int err_status;           /* first failure, under mu */
    char err_msg[512];

    /* task thread */
    tm_chan *cur_ch;          /* channel whose buffer is being read */
    tm_buf *cur;
    uint32_t pos;
    tm_buf *done_buf;         /* to recycle on the next call */
    int gates_ended;
    int status;               /* sticky failure seen by tm_input_next */
    char error[512];

    _Atomic int64_t records_in, bytes_in;
};

/* Called on the I/O thread. */
/* A buffer to receive into for ch, or NULL (the sender exceeded its credit). */
tm_buf *tm_input_take_free(tm_chan *ch);
/* Give back a buffer taken by tm_input_take_free and not filled (ch goes away). */
void tm_input_untake(tm_chan *ch, tm_buf *b);
/* Hand a received buffer to ch's task; backlog as announced by the sender. */
void tm_input_deliver(tm_chan *ch, tm_buf *b, int backlog);
/* The credit ch may announce now (zeroed). request: for a new PartitionRequest (all free
 * buffers count). */
int tm_input_take_credit(tm_chan *ch, bool request);
/* ch will receive nothing more: its free buffers go back. */
void tm_input_close_chan(tm_chan *ch);
/* Fail the input because of ch (first failure wins), waking the task. */
void tm_input_fail(tm_chan *ch, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Local channel notify (subpartition reader). */
void tm_input_local_notify(tm_sub_reader *r);

/* ---- the environment and I/O thread (tm_net.c) ------------------------------------------------ */
struct tm_net {
    char *resource_id;
    uint32_t seg_size;
    int buffers_per_channel, floating_per_gate, sub_cap;
    int64_t backoff_initial_ms, backoff_max_ms;
    tm_pool pool;

    pthread_mutex_t reg_mu;
    tm_dl partitions;         /* registered tm_partition */

    struct event_base *base;
    pthread_t thread;
    struct event *notify_ev;
    pthread_mutex_t io_mu;
    pthread_cond_t io_cv;
    bool notify_pending;
    tm_dl cmds;               /* io_cmd */
    tm_dl ready;              /* server readers with data to send */
    tm_dl credits;            /* channels with credit to announce */

    /* I/O thread only */
    struct net_listener *listener;
    tm_dl clients, servers;   /* tm_conn */
};

/* Queue ch for an AddCredit (any thread; ch->in->mu may be held). */
void tm_net_queue_credit(tm_net *net, tm_chan *ch);
/* Start / stop every channel of in (task thread; runs on the I/O thread and waits). */
void tm_net_input_start(tm_net *net, tm_input *in);
void tm_net_input_stop(tm_net *net, tm_input *in);
/* Open data connections (for tests): outgoing ones not closing, incoming ones. */
void tm_net_connection_count(tm_net *net, int *clients, int *servers);

#endif

/* The task executor: a taskmanager's connection to the jobmanager (registration, heartbeats,
 * reconnection with backoff), its slots, its network stack (tm_net, whose data server it opens)
 * and the tasks the jobmanager deploys (tm_deploy.h). Runs on one libevent loop; task threads
 * hand their state changes to it through a queue (the event base must have been made after
 * evthread_use_pthreads()). */
#ifndef FLINT_TM_EXECUTOR_H
#define FLINT_TM_EXECUTOR_H

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "flint/status.h"
#include "rpc/net.h"
#include "rpc/rpc.h"

typedef enum tm_state {
    TM_DISCONNECTED,   /* waiting for the retry timer */
    TM_CONNECTING,     /* TCP connect under way */
    TM_REGISTERING,    /* RegisterTaskManager sent */
    TM_REGISTERED      /* heartbeating */
} tm_state;

typedef struct taskmanager {
    flint_config *cfg;             /* owned */
    struct event_base *base;       /* not owned */
    tm_state state;
    rpc_conn *jm;                  /* connection to the jobmanager, NULL when disconnected */
    char jm_addr[300];             /* "host:port" of the jobmanager, for log lines */
    char jm_id[33];                /* id of the jobmanager we are registered with */
    char resource_id[128];
    char host[256];                /* advertised address */
    int data_port;
    struct tm_net *net;            /* the network stack (its data server), once registered */
    int num_slots;
    int64_t backoff_ms;            /* next retry delay */
    int64_t heartbeat_interval_ms, heartbeat_timeout_ms;
    bool heartbeat_in_flight;
    struct event *retry_timer, *heartbeat_timer;

    /* job execution (tm_deploy.c) */
    struct tm_artifacts *artifacts;
    struct tm_slot *slots;         /* num_slots */
    struct tm_task_rec *tasks;     /* deployed tasks not yet ended */
    pthread_mutex_t q_mu;          /* task state changes from task threads: */
    struct tm_state_msg *q_head, *q_tail;
    struct event *q_ev;            /* activated by task threads; drains the queue on the loop */
    struct tm_outbox *cp_outbox;   /* checkpoint acks/declines from task threads (issue 6) */

    /* metrics (issue 8): samples meters every second; process metrics for heartbeats */
    struct event *metrics_timer;
    struct metric_process *proc;
    int64_t start_ms;              /* monotonic */
} taskmanager;

/* Start connecting to the jobmanager named by cfg (ownership of cfg passes to tm). Fails only for
 * local problems (the artifact cache cannot be made); an absent jobmanager is retried with
 * backoff, and the data port is bound when it is first reached. */
int tm_start(taskmanager *tm, flint_config *cfg, struct event_base *base, flint_err *err);
/* Close the connection, cancel and join the tasks, stop the timers and free what tm_start made
 * (not the event base). */
void tm_stop(taskmanager *tm);

#endif

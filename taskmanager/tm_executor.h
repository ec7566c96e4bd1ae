/* The task executor: a taskmanager's connection to the jobmanager (registration, heartbeats,
 * reconnection with backoff), its slots and its data server port. Runs on one libevent loop. */
#ifndef FLINT_TM_EXECUTOR_H
#define FLINT_TM_EXECUTOR_H

#include <event2/event.h>
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
    net_listener *data;            /* the network stack's data server */
    int num_slots;
    int64_t backoff_ms;            /* next retry delay */
    int64_t heartbeat_interval_ms, heartbeat_timeout_ms;
    bool heartbeat_in_flight;
    struct event *retry_timer, *heartbeat_timer;
} taskmanager;

/* Start connecting to the jobmanager named by cfg (ownership of cfg passes to tm). Fails only for
 * local problems (the data port cannot be bound); an absent jobmanager is retried with backoff. */
int tm_start(taskmanager *tm, flint_config *cfg, struct event_base *base, flint_err *err);
/* Close the connection, stop the timers and free what tm_start made (not the event base). */
void tm_stop(taskmanager *tm);

#endif

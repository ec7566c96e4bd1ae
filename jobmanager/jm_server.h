/* The jobmanager process: its RPC endpoint (taskmanager and client gateways), the resource
 * manager, the heartbeat monitor, the dispatcher (jobs), the artifact store and the REST server,
 * all on one libevent loop. */
#ifndef FLINT_JM_SERVER_H
#define FLINT_JM_SERVER_H

#include <event2/event.h>
#include <stdint.h>

#include "config/config.h"
#include "flint/status.h"
#include "jm_artifacts.h"
#include "jm_dispatcher.h"
#include "jm_rm.h"
#include "rpc/rpc.h"

typedef struct jm_rest jm_rest;

typedef struct jobmanager {
    flint_config *cfg;            /* owned */
    struct event_base *base;      /* owned */
    rpc_server *rpc;
    jm_rest *rest;
    jm_rm *rm;
    jm_dispatcher *dispatcher;
    jm_artifacts *artifacts;
    struct event *heartbeat_timer;
    struct event *job_timer;      /* job timeouts (slot requests, cancels) */
    int64_t ask_timeout_ms;       /* rpc.ask.timeout */
    bool stopping;                /* jm_stop runs: RPC outcomes are ignored */
    char id[33];                  /* random per start: taskmanagers notice a restart */
    int64_t start_time_ms;        /* wall clock */
    int rpc_port, rest_port;      /* bound ports */
    struct jm_metric_store *metrics;   /* issue 8: metrics from heartbeats (jm_metrics.h) */
    struct metric_process *proc;       /* the jobmanager's own process metrics */
} jobmanager;

/* Start the RPC and REST endpoints from cfg (ownership of cfg passes to jm). On error nothing
 * stays open and err says which endpoint failed. */
int jm_start(jobmanager *jm, flint_config *cfg, struct event_base *base, flint_err *err);
/* Close every endpoint and connection and free what jm_start made (not the event base). */
void jm_stop(jobmanager *jm);

#endif

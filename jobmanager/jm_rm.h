/* The resource manager: the taskmanagers registered with this jobmanager, their slots and their
 * heartbeats. Pure bookkeeping with time passed in (no sockets, no clocks), so the heartbeat
 * timeout logic is tested on its own; jm_server wires it to RPC and a timer. */
#ifndef FLINT_JM_RM_H
#define FLINT_JM_RM_H

#include <stdbool.h>
#include <stdint.h>

#include "flint/status.h"
#include "rpc/rpc.h"

typedef struct jm_hardware {
    int cpu_cores;
    int64_t physical_memory, free_memory, managed_memory;   /* bytes */
} jm_hardware;

/* One registered taskmanager. Owned by the resource manager; valid until it is unregistered. */
typedef struct jm_tm {
    char resource_id[128];
    char host[256];
    int data_port;
    int num_slots;
    int free_slots;
    jm_hardware hardware;
    int64_t registered_ms;        /* wall clock, for users */
    int64_t last_heartbeat_ms;    /* monotonic */
    rpc_conn *conn;               /* not owned */
} jm_tm;

typedef struct jm_rm jm_rm;

/* The caller frees it with jm_rm_free. */
jm_rm *jm_rm_new(int64_t heartbeat_timeout_ms);
void jm_rm_free(jm_rm *rm);

/* Register (or re-register) a taskmanager from its RegisterTaskManager message at monotonic time
 * now_ms. A re-registration under a known resource id replaces the old entry and returns the
 * old connection in *replaced (else NULL) for the caller to close. Invalid messages (no id, no
 * slots, bad port) fail with err naming the field. */
int jm_rm_register(jm_rm *rm, const Flint__Rpc__RegisterTaskManager *msg, rpc_conn *conn,
                   int64_t now_ms, rpc_conn **replaced, flint_err *err);
/* Record a heartbeat; FLINT_NOT_FOUND when the taskmanager is not registered. */
int jm_rm_heartbeat(jm_rm *rm, const char *resource_id, int64_t now_ms);
/* Drop a taskmanager (closed connection, expired heartbeat). Returns 0 or FLINT_NOT_FOUND. */
int jm_rm_unregister(jm_rm *rm, const char *resource_id, const char *reason);

/* Drop every taskmanager whose last heartbeat is older than the timeout at now_ms; fn (may be
 * NULL) sees each one just before it is dropped. Returns how many were dropped. */
int jm_rm_expire(jm_rm *rm, int64_t now_ms, void (*fn)(jm_tm *tm, void *ud), void *ud);

jm_tm *jm_rm_find(jm_rm *rm, const char *resource_id);
jm_tm *jm_rm_find_conn(jm_rm *rm, const rpc_conn *conn);

/* Iteration in registration order: index 0 .. jm_rm_count-1. */
int jm_rm_count(const jm_rm *rm);
jm_tm *jm_rm_get(jm_rm *rm, int i);
int jm_rm_slots_total(const jm_rm *rm);
int jm_rm_slots_free(const jm_rm *rm);

#endif

/* The resource manager: the taskmanagers registered with this jobmanager, their slots (which slot
 * of which taskmanager runs which job) and their heartbeats. Pure bookkeeping with time passed in
 * (no sockets, no clocks), so the heartbeat timeout and slot logic are tested on their own;
 * jm_server wires it to RPC and a timer. */
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
    int free_slots;               /* slots whose job is "" */
    char (*slot_job)[33];         /* [num_slots]: id of the job holding each slot, "" when free */
    bool lost;                    /* being dropped: the lost hook runs; never allocated from */
    jm_hardware hardware;
    int64_t registered_ms;        /* wall clock, for users */
    int64_t last_heartbeat_ms;    /* monotonic */
    rpc_conn *conn;               /* not owned */
} jm_tm;

typedef struct jm_rm jm_rm;

/* Called just before a taskmanager is dropped (unregistered, heartbeat expired, or replaced by a
 * re-registration under its resource id) while tm is still valid, with tm->lost set and a reason
 * for users ("connection closed (...)", "no heartbeat for 50012 ms"). The hook may allocate and
 * release slots of other taskmanagers but must not register or unregister any. */
typedef void (*jm_rm_lost_fn)(jm_tm *tm, const char *reason, void *ud);

/* One slot handed out by jm_rm_allocate. */
typedef struct jm_slot_ref {
    jm_tm *tm;
    int index;                    /* slot index on tm */
} jm_slot_ref;

/* The caller frees it with jm_rm_free. */
jm_rm *jm_rm_new(int64_t heartbeat_timeout_ms);
void jm_rm_free(jm_rm *rm);
void jm_rm_set_lost_hook(jm_rm *rm, jm_rm_lost_fn fn, void *ud);

/* Register (or re-register) a taskmanager from its RegisterTaskManager message at monotonic time
 * now_ms. A re-registration under a known resource id replaces the old entry and returns the
 * old connection in *replaced (else NULL) for the caller to close. Invalid messages (no id, no
 * slots, bad port) fail with err naming the field. */
int jm_rm_register(jm_rm *rm, const Flint__Rpc__RegisterTaskManager *msg, rpc_conn *conn,
                   int64_t now_ms, rpc_conn **replaced, flint_err *err);
/* Record a heartbeat; FLINT_NOT_FOUND when the taskmanager is not registered. */
int jm_rm_heartbeat(jm_rm *rm, const char *resource_id, int64_t now_ms);
/* Drop a taskmanager (closed connection, expired heartbeat); the lost hook sees it first.
 * Returns 0 or FLINT_NOT_FOUND. */
int jm_rm_unregister(jm_rm *rm, const char *resource_id, const char *reason);

/* Drop every taskmanager whose last heartbeat is older than the timeout at now_ms; the lost hook
 * and then fn (may be NULL) see each one just before it is dropped. Returns how many were
 * dropped. */
int jm_rm_expire(jm_rm *rm, int64_t now_ms, void (*fn)(jm_tm *tm, void *ud), void *ud);

jm_tm *jm_rm_find(jm_rm *rm, const char *resource_id);
jm_tm *jm_rm_find_conn(jm_rm *rm, const rpc_conn *conn);

/* Iteration in registration order: index 0 .. jm_rm_count-1. */
int jm_rm_count(const jm_rm *rm);
jm_tm *jm_rm_get(jm_rm *rm, int i);
int jm_rm_slots_total(const jm_rm *rm);
int jm_rm_slots_free(const jm_rm *rm);

/* ---- slots ---- */

/* Take n free slots for job_id, all or nothing, spread round robin over the taskmanagers: one
 * slot from each taskmanager with a free slot in turn (its lowest free index), in registration
 * order, starting where the previous allocation stopped. Fills out[0..n-1] and returns 0, or
 * FLINT_UNAVAILABLE with nothing taken when fewer than n slots are free. */
int jm_rm_allocate(jm_rm *rm, const char *job_id, int n, jm_slot_ref *out);
/* Free every slot held by job_id; returns how many were freed. */
int jm_rm_release_job(jm_rm *rm, const char *job_id);
/* Number of slots job_id holds. */
int jm_rm_job_slots(const jm_rm *rm, const char *job_id);

#endif

/* The jobmanager's RPC gateways (taskmanager -> JM, client -> JM), the heartbeat monitor and the
 * wiring of the resource manager and REST server (see jm_server.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "jobmanager"
#include "flint/version.h"
#include "jm_server.h"
#include "rest/rest.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/timeutil.h"

/* ---- taskmanager gateway --------------------------------------------------------------- */

static void on_register(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    flint_err err = {0};
    rpc_conn *replaced = NULL;
    if (jm_rm_register(jm->rm, env->register_task_manager, c, time_mono_ms(), &replaced, &err)) {
        log_warn("refused registration from %s: %s", rpc_conn_peer(c), err.msg);
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    if (replaced) rpc_close(replaced); /* the old connection of a re-registered taskmanager */
    Flint__Rpc__RegisterTaskManagerResponse r = FLINT__RPC__REGISTER_TASK_MANAGER_RESPONSE__INIT;
    r.jobmanager_id = jm->id;
    r.heartbeat_interval_ms = config_int(jm->cfg, CFG_HEARTBEAT_INTERVAL);
    r.heartbeat_timeout_ms = config_int(jm->cfg, CFG_HEARTBEAT_TIMEOUT);
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER_RESPONSE;
    reply.register_task_manager_response = &r;
    rpc_reply(c, env, &reply);
}

static void on_heartbeat(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const char *id = env->heartbeat->resource_id;
    jm_tm *tm = jm_rm_find(jm->rm, id);
    bool known = tm && tm->conn == c;
    if (known) jm_rm_heartbeat(jm->rm, id, time_mono_ms());
    Flint__Rpc__HeartbeatResponse r = FLINT__RPC__HEARTBEAT_RESPONSE__INIT;
    r.registered = known;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_HEARTBEAT_RESPONSE;
    reply.heartbeat_response = &r;
    rpc_reply(c, env, &reply);
}

/* ---- client gateway -------------------------------------------------------------------- */

static void on_overview(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    int n = jm_rm_count(jm->rm);
    Flint__Rpc__TaskManagerInfo *infos = xcalloc((size_t)n + 1, sizeof *infos);
    Flint__Rpc__HardwareDescription *hw = xcalloc((size_t)n + 1, sizeof *hw);
    Flint__Rpc__TaskManagerInfo **ptrs = xcalloc((size_t)n + 1, sizeof *ptrs);
    char **paths = xcalloc((size_t)n + 1, sizeof *paths);
    int64_t now = time_mono_ms();
    for (int i = 0; i < n; i++) {
        jm_tm *tm = jm_rm_get(jm->rm, i);
        flint__rpc__task_manager_info__init(&infos[i]);
        flint__rpc__hardware_description__init(&hw[i]);
        hw[i].cpu_cores = tm->hardware.cpu_cores;
        hw[i].physical_memory = tm->hardware.physical_memory;
        hw[i].free_memory = tm->hardware.free_memory;
        hw[i].managed_memory = tm->hardware.managed_memory;
        paths[i] = xasprintf("flint://%s:%d/taskmanager/%s", tm->host, tm->data_port, tm->resource_id);
        infos[i].resource_id = tm->resource_id;
        infos[i].path = paths[i];
        infos[i].host = tm->host;
        infos[i].data_port = (uint32_t)tm->data_port;
        infos[i].slots_number = (uint32_t)tm->num_slots;
        infos[i].free_slots = (uint32_t)tm->free_slots;
        infos[i].time_since_last_heartbeat = now - tm->last_heartbeat_ms;
        infos[i].hardware = &hw[i];
        ptrs[i] = &infos[i];
    }
    Flint__Rpc__OverviewResponse r = FLINT__RPC__OVERVIEW_RESPONSE__INIT;
    r.flint_version = FLINT_VERSION;
    r.slots_total = (uint32_t)jm_rm_slots_total(jm->rm);
    r.slots_available = (uint32_t)jm_rm_slots_free(jm->rm);
    r.n_taskmanagers = (size_t)n;
    r.taskmanagers = ptrs;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_OVERVIEW_RESPONSE;
    reply.overview_response = &r;
    rpc_reply(c, env, &reply);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(ptrs);
    free(hw);
    free(infos);
}

static void on_list_jobs(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    (void)jm;
    Flint__Rpc__ListJobsResponse r = FLINT__RPC__LIST_JOBS_RESPONSE__INIT;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_RESPONSE;
    reply.list_jobs_response = &r;
    rpc_reply(c, env, &reply);
}

/* ---- connections ------------------------------------------------------------------------- */

static void on_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    jobmanager *jm = ud;
    switch (env->body_case) {
    case FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER: on_register(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_HEARTBEAT: on_heartbeat(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_OVERVIEW_REQUEST: on_overview(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_REQUEST: on_list_jobs(jm, c, env); break;
    default:
        log_warn("unexpected %s from %s", rpc_body_name(env), rpc_conn_peer(c));
        if (env->id) rpc_reply_error(c, env, FLINT_UNSUPPORTED, "the jobmanager does not handle %s",
                                     rpc_body_name(env));
        break;
    }
}

static void on_close(rpc_conn *c, int status, const char *reason, void *ud) {
    jobmanager *jm = ud;
    (void)status;
    jm_tm *tm = jm_rm_find_conn(jm->rm, c);
    if (!tm) return;
    char why[300];
    snprintf(why, sizeof why, "connection closed (%s)", reason);
    jm_rm_unregister(jm->rm, tm->resource_id, why);
}

static void on_accept(rpc_conn *c, void *ud) {
    rpc_handlers h = {.on_message = on_message, .on_close = on_close, .ud = ud};
    rpc_conn_set_handlers(c, &h);
    log_debug("connection from %s", rpc_conn_peer(c));
}

static void expired(jm_tm *tm, void *ud) {
    (void)ud;
    rpc_close(tm->conn);
}

static void on_heartbeat_check(evutil_socket_t fd, short what, void *ud) {
    jobmanager *jm = ud;
    (void)fd, (void)what;
    jm_rm_expire(jm->rm, time_mono_ms(), expired, jm);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static const char *bind_host(const flint_config *cfg, config_key bind, config_key addr) {
    const char *h = config_str(cfg, bind);
    return h[0] ? h : config_str(cfg, addr);
}

int jm_start(jobmanager *jm, flint_config *cfg, struct event_base *base, flint_err *err) {
    assert(jm && cfg && base);
    memset(jm, 0, sizeof *jm);
    jm->cfg = cfg;
    jm->base = base;
    jm->start_time_ms = time_wall_ms();
    str_random_hex(jm->id, 16);
    jm->rm = jm_rm_new(config_int(cfg, CFG_HEARTBEAT_TIMEOUT));

    const char *rpc_host = bind_host(cfg, CFG_JOBMANAGER_BIND_HOST, CFG_JOBMANAGER_RPC_ADDRESS);
    jm->rpc = rpc_listen(base, rpc_host, (int)config_int(cfg, CFG_JOBMANAGER_RPC_PORT),
                         (size_t)config_int(cfg, CFG_RPC_MAX_FRAME_SIZE), on_accept, jm, err);
    if (!jm->rpc) {
        flint_err_prefix(err, "RPC endpoint (jobmanager.rpc.port): ");
        jm_stop(jm);
        return FLINT_UNAVAILABLE;
    }
    jm->rpc_port = rpc_server_port(jm->rpc);

    const char *rest_host = bind_host(cfg, CFG_REST_BIND_ADDRESS, CFG_REST_ADDRESS);
    jm->rest = jm_rest_start(jm, rest_host, (int)config_int(cfg, CFG_REST_PORT), err);
    if (!jm->rest) {
        flint_err_prefix(err, "REST endpoint (rest.port): ");
        jm_stop(jm);
        return FLINT_UNAVAILABLE;
    }
    jm->rest_port = jm_rest_port(jm->rest);

    /* Check often enough that a silent taskmanager is dropped soon after heartbeat.timeout. */
    int64_t every = config_int(cfg, CFG_HEARTBEAT_INTERVAL) / 2;
    if (every < 10) every = 10;
    jm->heartbeat_timer = event_new(base, -1, EV_PERSIST, on_heartbeat_check, jm);
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    event_add(jm->heartbeat_timer, &tv);

    log_info("Flint %s jobmanager %s started", FLINT_VERSION, jm->id);
    log_info("RPC endpoint listening on %s:%d", rpc_host, jm->rpc_port);
    log_info("REST endpoint listening on http://%s:%d/", rest_host, jm->rest_port);
    return 0;
}

void jm_stop(jobmanager *jm) {
    if (jm->heartbeat_timer) event_free(jm->heartbeat_timer);
    jm_rest_free(jm->rest);
    rpc_server_free(jm->rpc); /* closes every taskmanager and client connection */
    jm_rm_free(jm->rm);
    config_free(jm->cfg);
    memset(jm, 0, sizeof *jm);
}

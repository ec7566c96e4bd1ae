/* Task executor: registration with the jobmanager, heartbeats and reconnection (see
 * tm_executor.h). Connection life cycle:
 *   DISCONNECTED --retry timer--> CONNECTING --open--> REGISTERING --reply--> REGISTERED
 * and any failure (refused connect, closed connection, error reply, heartbeat timeout, the
 * jobmanager no longer knowing us) goes back to DISCONNECTED with a doubled retry delay
 * (cluster.registration.initial-timeout up to cluster.registration.max-timeout). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define LOG_MODULE "taskexecutor"
#include "flint/version.h"
#include "metrics/metrics.h"
#include "metrics/metrics_proto.h"
#include "network/tm_net.h"
#include "tm_deploy.h"
#include "tm_executor.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/timeutil.h"

static void connect_jm(taskmanager *tm);

static void set_timer(struct event *ev, int64_t ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(ev, &tv);
}

/* Drop the connection (if any) and retry after the current backoff, doubling it. Losing the
 * jobmanager cancels every task and frees every slot. */
static void disconnect(taskmanager *tm, const char *why) {
    if (tm->jm) {
        /* Cleared first: the callbacks of requests failed by rpc_close see it gone. */
        rpc_conn *c = tm->jm;
        tm->jm = NULL;
        rpc_close(c);
    }
    tm_deploy_jm_lost(tm, why);
    if (tm->state == TM_REGISTERED) log_warn("lost the jobmanager at %s: %s", tm->jm_addr, why);
    else log_info("cannot register at the jobmanager %s: %s; retrying in %lld ms", tm->jm_addr, why,
                  (long long)tm->backoff_ms);
    tm->state = TM_DISCONNECTED;
    tm->heartbeat_in_flight = false;
    event_del(tm->heartbeat_timer);
    set_timer(tm->retry_timer, tm->backoff_ms);
    int64_t max = config_int(tm->cfg, CFG_CLUSTER_REGISTRATION_MAX_TIMEOUT);
    tm->backoff_ms = tm->backoff_ms * 2 > max ? max : tm->backoff_ms * 2;
}

static void hardware(Flint__Rpc__HardwareDescription *hw) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    struct sysinfo si;
    hw->cpu_cores = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
    hw->physical_memory = (int64_t)pages * page;
    hw->free_memory = sysinfo(&si) == 0 ? (int64_t)si.freeram * si.mem_unit : 0;
    hw->managed_memory = 0;
}

/* ---- heartbeats ---------------------------------------------------------------------------- */

static void on_heartbeat_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply,
                               void *ud) {
    taskmanager *tm = ud;
    if (c != tm->jm) return; /* an answer on a connection we already dropped */
    tm->heartbeat_in_flight = false;
    if (status != FLINT_OK) {
        disconnect(tm, msg);
        return;
    }
    if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_HEARTBEAT_RESPONSE) {
        disconnect(tm, "unexpected answer to a heartbeat");
        return;
    }
    if (!reply->heartbeat_response->registered) disconnect(tm, "the jobmanager no longer knows us");
}

/* The taskmanager's own metrics (issue 8): process, network memory. */
static void tm_metrics(taskmanager *tm, Flint__Rpc__TaskManagerMetrics *m) {
    metric_process_sample(tm->proc);
    const metric_process *p = tm->proc;
    m->cpu_load = p->cpu_load;
    m->cpu_time_ms = p->cpu_time_ms;
    m->rss_bytes = p->rss_bytes;
    m->threads = p->threads;
    m->segments_total = tm->net ? tm_net_segments_total(tm->net) : 0;
    m->segments_available = tm->net ? tm_net_segments_available(tm->net) : 0;
    m->segment_size = config_int(tm->cfg, CFG_TASKMANAGER_MEMORY_SEGMENT_SIZE);
    m->network_memory_bytes = (int64_t)m->segments_total * m->segment_size;
    m->uptime_ms = time_mono_ms() - tm->start_ms;
    metric_set set;
    metric_set_init(&set);
    metric_set_add(&set, NULL, "Status.CPU.Load", METRIC_KIND_GAUGE, p->cpu_load);
    metric_set_add(&set, NULL, "Status.CPU.Time", METRIC_KIND_GAUGE, (double)p->cpu_time_ms);
    metric_set_add(&set, NULL, "Status.Memory.RSS", METRIC_KIND_GAUGE, (double)p->rss_bytes);
    metric_set_add(&set, NULL, "Status.Memory.VirtualSize", METRIC_KIND_GAUGE, (double)p->vm_bytes);
    metric_set_add(&set, NULL, "Status.Threads.Count", METRIC_KIND_GAUGE, p->threads);
    int used = m->segments_total - m->segments_available;
    metric_set_add(&set, NULL, "Status.Shuffle.Netty.TotalMemorySegments", METRIC_KIND_GAUGE, m->segments_total);
    metric_set_add(&set, NULL, "Status.Shuffle.Netty.AvailableMemorySegments", METRIC_KIND_GAUGE, m->segments_available);
    metric_set_add(&set, NULL, "Status.Shuffle.Netty.UsedMemorySegments", METRIC_KIND_GAUGE, used);
    metric_set_add(&set, NULL, "Status.Shuffle.Netty.TotalMemory", METRIC_KIND_GAUGE, (double)m->network_memory_bytes);
    metric_set_add(&set, NULL, "Status.Shuffle.Netty.UsedMemory", METRIC_KIND_GAUGE, (double)used * (double)m->segment_size);
    metric_set_add(&set, NULL, "Status.Shuffle.Netty.AvailableMemory", METRIC_KIND_GAUGE,
                   (double)m->segments_available * (double)m->segment_size);
    metric_set_add(&set, NULL, "Status.Uptime", METRIC_KIND_GAUGE, (double)m->uptime_ms);
    m->metrics = metric_set_to_proto(&set, &m->n_metrics);
    metric_set_clear(&set);
}

static void on_metrics_timer(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what;
    tm_deploy_metrics_tick(ud, time_mono_ns());
}

static void on_heartbeat_timer(evutil_socket_t fd, short what, void *ud) {
    taskmanager *tm = ud;
    (void)fd, (void)what;
    if (tm->state != TM_REGISTERED || tm->heartbeat_in_flight) return;
    Flint__Rpc__Heartbeat hb = FLINT__RPC__HEARTBEAT__INIT;
    hb.resource_id = tm->resource_id;
    tm_deploy_heartbeat(tm, &hb);
    Flint__Rpc__TaskManagerMetrics tmm = FLINT__RPC__TASK_MANAGER_METRICS__INIT;
    tm_metrics(tm, &tmm);
    hb.metrics = &tmm;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    /* A jobmanager that does not answer within heartbeat.timeout is considered lost. */
    int rc = rpc_call(tm->jm, &env, tm->heartbeat_timeout_ms, on_heartbeat_reply, tm);
    tm_deploy_heartbeat_free(&hb);
    metric_proto_free(tmm.metrics, tmm.n_metrics);
    if (rc) disconnect(tm, flint_strerror(rc));
    else tm->heartbeat_in_flight = true;
}

/* ---- registration -------------------------------------------------------------------------- */

static void on_register_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply,
                              void *ud) {
    taskmanager *tm = ud;
    if (c != tm->jm) return;
    if (status != FLINT_OK) {
        disconnect(tm, msg);
        return;
    }
    if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER_RESPONSE) {
        disconnect(tm, "unexpected answer to the registration");
        return;
    }
    Flint__Rpc__RegisterTaskManagerResponse *r = reply->register_task_manager_response;
    snprintf(tm->jm_id, sizeof tm->jm_id, "%s", r->jobmanager_id);
    tm->heartbeat_interval_ms = r->heartbeat_interval_ms > 0 ? r->heartbeat_interval_ms
                                                             : config_int(tm->cfg, CFG_HEARTBEAT_INTERVAL);
    tm->heartbeat_timeout_ms = r->heartbeat_timeout_ms > 0 ? r->heartbeat_timeout_ms
                                                           : config_int(tm->cfg, CFG_HEARTBEAT_TIMEOUT);
    tm->state = TM_REGISTERED;
    tm->backoff_ms = config_int(tm->cfg, CFG_CLUSTER_REGISTRATION_INITIAL_TIMEOUT);
    log_info("registered at jobmanager %s (%s) as %s with %d slots, data port %d", tm->jm_addr,
             tm->jm_id, tm->resource_id, tm->num_slots, tm->data_port);
    set_timer(tm->heartbeat_timer, tm->heartbeat_interval_ms);
}

/* The network stack and its data server start once we first reach the jobmanager: the
 * advertised host is taskmanager.host, else the local address of this connection. The resource
 * id names the network stack's local channels, so it is chosen before the data port is bound:
 * "<host>:<port>-<random>" with a configured taskmanager.data.port, else "<host>-<random>". */
static int open_data_server(taskmanager *tm, flint_err *err) {
    if (tm->net) return 0;
    const char *host = config_str(tm->cfg, CFG_TASKMANAGER_HOST);
    if (host[0]) snprintf(tm->host, sizeof tm->host, "%s", host);
    else rpc_conn_local_addr(tm->jm, tm->host, sizeof tm->host);
    int port = (int)config_int(tm->cfg, CFG_TASKMANAGER_DATA_PORT);
    const char *id = config_str(tm->cfg, CFG_TASKMANAGER_RESOURCE_ID);
    if (id[0]) {
        snprintf(tm->resource_id, sizeof tm->resource_id, "%s", id);
    } else {
        char rnd[7];
        str_random_hex(rnd, 3);
        if (port) snprintf(tm->resource_id, sizeof tm->resource_id, "%.100s:%d-%s", tm->host, port, rnd);
        else snprintf(tm->resource_id, sizeof tm->resource_id, "%.100s-%s", tm->host, rnd);
    }
    tm->net = tm_net_new(tm->cfg, tm->resource_id, err);
    if (!tm->net) return FLINT_UNAVAILABLE;
    const char *bind = config_str(tm->cfg, CFG_TASKMANAGER_BIND_HOST);
    tm->data_port = tm_net_listen(tm->net, bind[0] ? bind : tm->host, port, err);
    if (tm->data_port < 0) {
        tm_net_free(tm->net);
        tm->net = NULL;
        tm->data_port = 0;
        return FLINT_UNAVAILABLE;
    }
    log_info("data server listening on %s:%d (%d network buffers)", bind[0] ? bind : tm->host, tm->data_port,
             tm_net_segments_total(tm->net));
    return 0;
}

static void on_open(rpc_conn *c, void *ud) {
    taskmanager *tm = ud;
    assert(c == tm->jm && tm->state == TM_CONNECTING);
    flint_err err = {0};
    if (open_data_server(tm, &err)) {
        log_error("cannot open the data server: %s", err.msg);
        disconnect(tm, "no data server");
        return;
    }
    Flint__Rpc__HardwareDescription hw = FLINT__RPC__HARDWARE_DESCRIPTION__INIT;
    hardware(&hw);
    Flint__Rpc__RegisterTaskManager reg = FLINT__RPC__REGISTER_TASK_MANAGER__INIT;
    reg.resource_id = tm->resource_id;
    reg.host = tm->host;
    reg.data_port = (uint32_t)tm->data_port;
    reg.num_slots = (uint32_t)tm->num_slots;
    reg.hardware = &hw;
    reg.version = FLINT_VERSION;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER;
    env.register_task_manager = &reg;
    tm->state = TM_REGISTERING;
    int rc = rpc_call(c, &env, config_int(tm->cfg, CFG_RPC_ASK_TIMEOUT), on_register_reply, tm);
    if (rc) disconnect(tm, flint_strerror(rc));
}

#define LOG_MAX_BYTES (16LL * 1024 * 1024)   /* the most of its log a taskmanager sends at once */

/* RequestLog: the last bytes of this daemon's own log file (never any other file). */
static void on_request_log(rpc_conn *c, rpc_envelope *env) {
    int64_t max = env->request_log->max_bytes;
    if (max <= 0 || max > LOG_MAX_BYTES) max = LOG_MAX_BYTES;
    Flint__Rpc__LogFile lf = FLINT__RPC__LOG_FILE__INIT;
    char *data = NULL;
    size_t len = 0;
    int64_t size = 0;
    const char *path = log_file_path();
    if (path && log_file_tail(max, &data, &len, &size) == 0) {
        const char *base = strrchr(path, '/');
        lf.available = true;
        lf.name = (char *)(base ? base + 1 : path);
        lf.size = size;
        lf.data.data = (uint8_t *)data;
        lf.data.len = len;
    }
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_LOG_FILE;
    reply.log_file = &lf;
    rpc_reply(c, env, &reply);
    free(data);
}

static void on_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    taskmanager *tm = ud;
    if (c == tm->jm && tm->state == TM_REGISTERED) {
        switch (env->body_case) {
        case FLINT__RPC__ENVELOPE__BODY_REQUEST_LOG: on_request_log(c, env); return;
        case FLINT__RPC__ENVELOPE__BODY_DEPLOY_TASK: tm_deploy_on_deploy(tm, c, env); return;
        case FLINT__RPC__ENVELOPE__BODY_CANCEL_TASK: tm_deploy_on_cancel(tm, c, env); return;
        case FLINT__RPC__ENVELOPE__BODY_RELEASE_JOB: tm_deploy_on_release(tm, c, env); return;
        case FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT:
        case FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE:
        case FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_ABORTED: tm_deploy_on_checkpoint(tm, c, env); return;
        default: break;
        }
    }
    log_warn("unexpected %s from the jobmanager", rpc_body_name(env));
    if (env->id) rpc_reply_error(c, env, FLINT_UNSUPPORTED, "the taskmanager does not handle %s",
                                 rpc_body_name(env));
}

static void on_close(rpc_conn *c, int status, const char *reason, void *ud) {
    taskmanager *tm = ud;
    (void)status;
    if (c != tm->jm) return;
    tm->jm = NULL; /* already being freed */
    disconnect(tm, reason);
}

static void connect_jm(taskmanager *tm) {
    assert(tm->state == TM_DISCONNECTED && tm->jm == NULL);
    flint_err err = {0};
    rpc_handlers h = {.on_message = on_message, .on_open = on_open, .on_close = on_close, .ud = tm};
    tm->state = TM_CONNECTING;
    tm->jm = rpc_connect(tm->base, config_str(tm->cfg, CFG_JOBMANAGER_RPC_ADDRESS),
                         (int)config_int(tm->cfg, CFG_JOBMANAGER_RPC_PORT),
                         (size_t)config_int(tm->cfg, CFG_RPC_MAX_FRAME_SIZE), &h, &err);
    if (!tm->jm) disconnect(tm, err.msg);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what;
    connect_jm(ud);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int tm_start(taskmanager *tm, flint_config *cfg, struct event_base *base, flint_err *err) {
    assert(tm && cfg && base);
    memset(tm, 0, sizeof *tm);
    tm->cfg = cfg;
    tm->base = base;
    tm->num_slots = (int)config_int(cfg, CFG_TASKMANAGER_NUM_SLOTS);
    tm->backoff_ms = config_int(cfg, CFG_CLUSTER_REGISTRATION_INITIAL_TIMEOUT);
    tm->heartbeat_interval_ms = config_int(cfg, CFG_HEARTBEAT_INTERVAL);
    tm->heartbeat_timeout_ms = config_int(cfg, CFG_HEARTBEAT_TIMEOUT);
    snprintf(tm->jm_addr, sizeof tm->jm_addr, "%s:%lld", config_str(cfg, CFG_JOBMANAGER_RPC_ADDRESS),
             (long long)config_int(cfg, CFG_JOBMANAGER_RPC_PORT));
    tm->retry_timer = evtimer_new(base, on_retry_timer, tm);
    tm->heartbeat_timer = event_new(base, -1, EV_PERSIST, on_heartbeat_timer, tm);
    tm->proc = XNEW(metric_process);
    tm->start_ms = time_mono_ms();
    tm->metrics_timer = event_new(base, -1, EV_PERSIST, on_metrics_timer, tm);
    struct timeval one_s = {1, 0};
    event_add(tm->metrics_timer, &one_s);
    if (tm_deploy_init(tm, err)) {
        tm_stop(tm);
        return FLINT_IO;
    }
    log_info("Flint %s taskmanager starting with %d slots, jobmanager at %s", FLINT_VERSION,
             tm->num_slots, tm->jm_addr);
    tm->state = TM_DISCONNECTED;
    connect_jm(tm);
    return 0;
}

void tm_stop(taskmanager *tm) {
    if (tm->jm) {
        rpc_conn *c = tm->jm;
        tm->jm = NULL;
        rpc_close(c);
    }
    tm_deploy_shutdown(tm);
    if (tm->retry_timer) event_free(tm->retry_timer);
    if (tm->heartbeat_timer) event_free(tm->heartbeat_timer);
    if (tm->metrics_timer) event_free(tm->metrics_timer);
    free(tm->proc);
    config_free(tm->cfg);
    memset(tm, 0, sizeof *tm);
}

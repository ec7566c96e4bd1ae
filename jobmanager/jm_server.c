/* The jobmanager's RPC gateways (taskmanager -> JM, client -> JM), the JM -> taskmanager transport
 * of the scheduler, the heartbeat monitor and the wiring of the resource manager, dispatcher,
 * artifact store and REST server (see jm_server.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "jobmanager"
#include "flint/version.h"
#include "jm_metrics.h"
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
    /* After the answer, so that the taskmanager knows it is registered before deployments come. */
    jm_dispatcher_resources_changed(jm->dispatcher, jm_time_now());
}

static void on_heartbeat(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const char *id = env->heartbeat->resource_id;
    jm_tm *tm = jm_rm_find(jm->rm, id);
    bool known = tm && tm->conn == c;
    if (known) {
        jm_rm_heartbeat(jm->rm, id, time_mono_ms());
        for (size_t i = 0; i < env->heartbeat->n_tasks; i++) {
            jm_dispatcher_metrics(jm->dispatcher, id, env->heartbeat->tasks[i]);
            jm_metrics_task(jm->metrics, id, env->heartbeat->tasks[i], time_mono_ms());
        }
        if (env->heartbeat->metrics) jm_metrics_tm(jm->metrics, id, env->heartbeat->metrics, time_mono_ms());
    }
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
    jm_job_counts jobs = jm_dispatcher_job_counts(jm->dispatcher);
    r.jobs_running = (uint32_t)jobs.running;
    r.jobs_finished = (uint32_t)jobs.finished;
    r.jobs_cancelled = (uint32_t)jobs.canceled;
    r.jobs_failed = (uint32_t)jobs.failed;
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
    int n = jm_dispatcher_count(jm->dispatcher);
    Flint__Rpc__JobSummary **jobs = xcalloc((size_t)n + 1, sizeof *jobs);
    for (int i = 0; i < n; i++) {
        jobs[i] = jm_job_summary_new(jm_dispatcher_get(jm->dispatcher, i));
        jm_metrics_fill_summary(jm_dispatcher_get(jm->dispatcher, i), time_wall_ms(), jobs[i]);
    }
    Flint__Rpc__ListJobsResponse r = FLINT__RPC__LIST_JOBS_RESPONSE__INIT;
    r.n_jobs = (size_t)n;
    r.jobs = jobs;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_RESPONSE;
    reply.list_jobs_response = &r;
    rpc_reply(c, env, &reply);
    for (int i = 0; i < n; i++) jm_job_summary_free(jobs[i]);
    free(jobs);
}

static void reply_ack(rpc_conn *c, rpc_envelope *env) {
    Flint__Rpc__Ack ack = FLINT__RPC__ACK__INIT;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_ACK;
    reply.ack = &ack;
    rpc_reply(c, env, &reply);
}

/* SubmitJob: register (or refuse) the job, answer, then schedule it. */
static void on_submit_job(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const Flint__Rpc__SubmitJob *m = env->submit_job;
    jm_time now = jm_time_now();
    jm_job *job = NULL;
    flint_err err = {0};
    jm_submit_options opts = {.savepoint_path = m->savepoint_path,
                              .allow_non_restored = m->allow_non_restored_state};
    if (jm_dispatcher_submit_opts(jm->dispatcher, m->graph, m->artifact.data, m->artifact.len, &opts, now, &job,
                                  &err)) {
        log_warn("refused a job from %s: %s", rpc_conn_peer(c), err.msg);
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    Flint__Rpc__SubmitJobResponse r = FLINT__RPC__SUBMIT_JOB_RESPONSE__INIT;
    r.job_id = job->id;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB_RESPONSE;
    reply.submit_job_response = &r;
    rpc_reply(c, env, &reply);
    jm_dispatcher_start(jm->dispatcher, job, now);
}

static void on_get_job(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const char *id = env->get_job->job_id;
    jm_job *job = jm_dispatcher_find(jm->dispatcher, id);
    if (!job) {
        rpc_reply_error(c, env, FLINT_NOT_FOUND, "Job %.64s not found", id ? id : "");
        return;
    }
    Flint__Rpc__JobDetails *d = jm_job_details_new(job);
    jm_metrics_fill_details(jm->metrics, job, jm_dispatcher_job_checkpoints(jm->dispatcher, job), d);
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_JOB_DETAILS;
    reply.job_details = d;
    rpc_reply(c, env, &reply);
    jm_job_details_free(d);
}

static void on_cancel_job(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    flint_err err = {0};
    if (jm_dispatcher_cancel(jm->dispatcher, env->cancel_job->job_id, jm_time_now(), &err)) {
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    reply_ack(c, env);
}

/* ---- client gateway: savepoints ------------------------------------------------------------- */

static void reply_trigger_id(rpc_conn *c, rpc_envelope *env, const char *id) {
    Flint__Rpc__TriggerSavepointResponse r = FLINT__RPC__TRIGGER_SAVEPOINT_RESPONSE__INIT;
    r.trigger_id = (char *)id;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT_RESPONSE;
    reply.trigger_savepoint_response = &r;
    rpc_reply(c, env, &reply);
}

static void on_trigger_savepoint(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const Flint__Rpc__TriggerSavepoint *m = env->trigger_savepoint;
    char id[33];
    flint_err err = {0};
    if (jm_dispatcher_trigger_savepoint(jm->dispatcher, m->job_id, FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT,
                                        m->target_directory, m->cancel_job, jm_time_now(), id, &err)) {
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    reply_trigger_id(c, env, id);
}

static void on_stop_with_savepoint(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const Flint__Rpc__StopWithSavepoint *m = env->stop_with_savepoint;
    char id[33];
    flint_err err = {0};
    int type = m->drain ? FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_TERMINATE
                        : FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_SUSPEND;
    if (jm_dispatcher_trigger_savepoint(jm->dispatcher, m->job_id, type, m->target_directory, false, jm_time_now(),
                                        id, &err)) {
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    reply_trigger_id(c, env, id);
}

static void on_savepoint_status(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const Flint__Rpc__GetSavepointStatus *m = env->get_savepoint_status;
    flint_err err = {0};
    const jm_cp_trigger *t = jm_dispatcher_savepoint_status(jm->dispatcher, m->job_id, m->trigger_id, &err);
    if (!t) {
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    Flint__Rpc__SavepointStatus r = FLINT__RPC__SAVEPOINT_STATUS__INIT;
    r.status = t->done ? "COMPLETED" : "IN_PROGRESS";
    if (t->done && t->ok) r.location = t->location ? t->location : "";
    if (t->done && !t->ok) r.failure_cause = t->failure ? t->failure : "unknown";
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_SAVEPOINT_STATUS;
    reply.savepoint_status = &r;
    rpc_reply(c, env, &reply);
}

/* ---- taskmanager gateway: checkpoints --------------------------------------------------------- */

static void on_ack_checkpoint(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    jm_tm *tm = jm_rm_find_conn(jm->rm, c);
    flint_err err = {0};
    int rc = tm ? jm_dispatcher_ack_checkpoint(jm->dispatcher, tm->resource_id, env->acknowledge_checkpoint,
                                               jm_time_now(), &err)
                : flint_err_set(&err, FLINT_STATE, "checkpoint acknowledgement from %s, which is not a "
                                "registered taskmanager", rpc_conn_peer(c));
    if (rc) {
        log_warn("AcknowledgeCheckpoint from %s refused: %s", rpc_conn_peer(c), err.msg);
        if (env->id) rpc_reply_error(c, env, rc, "%s", err.msg);
        return;
    }
    if (env->id) reply_ack(c, env);
}

static void on_decline_checkpoint(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    jm_tm *tm = jm_rm_find_conn(jm->rm, c);
    flint_err err = {0};
    int rc = tm ? jm_dispatcher_decline_checkpoint(jm->dispatcher, tm->resource_id, env->decline_checkpoint,
                                                   jm_time_now(), &err)
                : flint_err_set(&err, FLINT_STATE, "checkpoint decline from %s, which is not a registered "
                                "taskmanager", rpc_conn_peer(c));
    if (rc) {
        log_warn("DeclineCheckpoint from %s refused: %s", rpc_conn_peer(c), err.msg);
        if (env->id) rpc_reply_error(c, env, rc, "%s", err.msg);
        return;
    }
    if (env->id) reply_ack(c, env);
}

/* ---- taskmanager gateway: jobs ---------------------------------------------------------------- */

static void on_update_task(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const Flint__Rpc__UpdateTaskExecutionState *m = env->update_task_execution_state;
    jm_tm *tm = jm_rm_find_conn(jm->rm, c);
    flint_err err = {0};
    if (tm && m->metrics) jm_metrics_task(jm->metrics, tm->resource_id, m->metrics, time_mono_ms());
    int rc = tm ? jm_dispatcher_update_task(jm->dispatcher, tm->resource_id, m, jm_time_now(), &err)
                : flint_err_set(&err, FLINT_STATE, "task state update from %s, which is not a "
                                "registered taskmanager", rpc_conn_peer(c));
    if (rc) {
        log_warn("task state update %s of %s/%s from %s refused: %s", m->state ? m->state : "?",
                 m->job_id ? m->job_id : "?", m->execution_id ? m->execution_id : "?",
                 rpc_conn_peer(c), err.msg);
        if (env->id) rpc_reply_error(c, env, rc, "%s", err.msg);
        return;
    }
    if (env->id) reply_ack(c, env);
}

static void on_fetch_artifact(jobmanager *jm, rpc_conn *c, rpc_envelope *env) {
    const char *sha = env->fetch_artifact->sha256;
    void *data = NULL;
    size_t len = 0;
    flint_err err = {0};
    if (jm_artifacts_get(jm->artifacts, sha, &data, &len, &err)) {
        log_warn("FetchArtifact from %s: %s", rpc_conn_peer(c), err.msg);
        rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    Flint__Rpc__FetchArtifactResponse r = FLINT__RPC__FETCH_ARTIFACT_RESPONSE__INIT;
    r.artifact.data = data;
    r.artifact.len = len;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT_RESPONSE;
    reply.fetch_artifact_response = &r;
    int rc = rpc_reply(c, env, &reply);
    if (rc) {
        log_warn("cannot send artifact %s (%zu bytes) to %s: %s", sha, len, rpc_conn_peer(c),
                 flint_strerror(rc));
        if (rc == FLINT_TOO_LARGE)
            rpc_reply_error(c, env, rc, "artifact %s (%zu bytes) exceeds rpc.max-frame-size", sha, len);
    } else {
        log_debug("sent artifact %s (%zu bytes) to %s", sha, len, rpc_conn_peer(c));
    }
    free(data);
}

/* ---- jobmanager -> taskmanager transport ------------------------------------------------------ */

/* What a pending DeployTask / CancelTask reply needs to find its task again: ids, not pointers. */
typedef struct task_call {
    jobmanager *jm;
    char job_id[33];
    char exec_id[33];
} task_call;

static task_call *task_call_new(jobmanager *jm, const jm_job *job, const jm_exec *ex) {
    task_call *t = XNEW(task_call);
    t->jm = jm;
    snprintf(t->job_id, sizeof t->job_id, "%s", job->id);
    snprintf(t->exec_id, sizeof t->exec_id, "%s", ex->id);
    return t;
}

static void on_deploy_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    task_call *t = ud;
    (void)c, (void)reply;
    if (!t->jm->stopping)
        jm_dispatcher_deploy_result(t->jm->dispatcher, t->job_id, t->exec_id, status, msg, jm_time_now());
    free(t);
}

static int t_deploy(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex,
                    Flint__Rpc__TaskDeploymentDescriptor *tdd, flint_err *err) {
    jobmanager *jm = ud;
    Flint__Rpc__DeployTask m = FLINT__RPC__DEPLOY_TASK__INIT;
    m.tdd = tdd;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_DEPLOY_TASK;
    env.deploy_task = &m;
    task_call *t = task_call_new(jm, job, ex);
    int rc = rpc_call(tm->conn, &env, jm->ask_timeout_ms, on_deploy_reply, t);
    if (rc) {
        free(t);
        return flint_err_set(err, rc, "Could not send the task to TaskManager %s at %s: %s",
                             tm->resource_id, tm->host, flint_strerror(rc));
    }
    return 0;
}

static void on_cancel_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    task_call *t = ud;
    (void)c, (void)reply;
    if (!t->jm->stopping)
        jm_dispatcher_cancel_result(t->jm->dispatcher, t->job_id, t->exec_id, status, msg, jm_time_now());
    free(t);
}

static int t_cancel(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex) {
    jobmanager *jm = ud;
    Flint__Rpc__CancelTask m = FLINT__RPC__CANCEL_TASK__INIT;
    m.execution_id = (char *)ex->id;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_CANCEL_TASK;
    env.cancel_task = &m;
    task_call *t = task_call_new(jm, job, ex);
    int rc = rpc_call(tm->conn, &env, jm->ask_timeout_ms, on_cancel_reply, t);
    if (rc) free(t);
    return rc;
}

static void on_release_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)reply;
    if (status != FLINT_OK)
        log_warn("ReleaseJob %s to %s: %s", (char *)ud, rpc_conn_peer(c), msg ? msg : flint_strerror(status));
    free(ud);
}

static void t_release(void *ud, jm_tm *tm, const char *job_id) {
    jobmanager *jm = ud;
    Flint__Rpc__ReleaseJob m = FLINT__RPC__RELEASE_JOB__INIT;
    m.job_id = (char *)job_id;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_RELEASE_JOB;
    env.release_job = &m;
    char *id = xstrdup(job_id);
    int rc = rpc_call(tm->conn, &env, jm->ask_timeout_ms, on_release_reply, id);
    if (rc) {
        log_warn("cannot send ReleaseJob %s to %s: %s", job_id, tm->resource_id, flint_strerror(rc));
        free(id);
    }
}

/* What a pending TriggerCheckpoint reply needs to find its checkpoint again. */
typedef struct trigger_call {
    jobmanager *jm;
    char job_id[33];
    char exec_id[33];
    int64_t checkpoint_id;
} trigger_call;

static void on_trigger_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    trigger_call *t = ud;
    (void)c, (void)reply;
    if (!t->jm->stopping && status != FLINT_OK)
        jm_dispatcher_trigger_result(t->jm->dispatcher, t->job_id, t->exec_id, t->checkpoint_id, status, msg,
                                     jm_time_now());
    free(t);
}

static int t_trigger(void *ud, jm_tm *tm, const Flint__Checkpoint__TriggerCheckpoint *m, flint_err *err) {
    jobmanager *jm = ud;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT;
    env.trigger_checkpoint = (Flint__Checkpoint__TriggerCheckpoint *)m;
    trigger_call *t = XNEW(trigger_call);
    t->jm = jm;
    snprintf(t->job_id, sizeof t->job_id, "%s", m->job_id);
    snprintf(t->exec_id, sizeof t->exec_id, "%s", m->execution_id);
    t->checkpoint_id = m->checkpoint_id;
    int rc = rpc_call(tm->conn, &env, jm->ask_timeout_ms, on_trigger_reply, t);
    if (rc) {
        free(t);
        return flint_err_set(err, rc, "cannot send TriggerCheckpoint to TaskManager %s: %s", tm->resource_id,
                             flint_strerror(rc));
    }
    return 0;
}

static void on_notify_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)reply, (void)ud;
    if (status != FLINT_OK)
        log_debug("checkpoint notification to %s: %s", rpc_conn_peer(c), msg ? msg : flint_strerror(status));
}

static void t_notify_complete(void *ud, jm_tm *tm, const Flint__Checkpoint__NotifyCheckpointComplete *m) {
    jobmanager *jm = ud;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE;
    env.notify_checkpoint_complete = (Flint__Checkpoint__NotifyCheckpointComplete *)m;
    rpc_call(tm->conn, &env, jm->ask_timeout_ms, on_notify_reply, NULL);
}

static void t_notify_aborted(void *ud, jm_tm *tm, const Flint__Checkpoint__NotifyCheckpointAborted *m) {
    jobmanager *jm = ud;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_ABORTED;
    env.notify_checkpoint_aborted = (Flint__Checkpoint__NotifyCheckpointAborted *)m;
    rpc_call(tm->conn, &env, jm->ask_timeout_ms, on_notify_reply, NULL);
}

static void on_tm_lost(jm_tm *tm, const char *reason, void *ud) {
    jobmanager *jm = ud;
    if (jm->stopping || !jm->dispatcher) return;
    if (jm->metrics) jm_metrics_tm_gone(jm->metrics, tm->resource_id);
    jm_dispatcher_tm_lost(jm->dispatcher, tm, reason, jm_time_now());
}

static void on_job_timer(evutil_socket_t fd, short what, void *ud) {
    jobmanager *jm = ud;
    (void)fd, (void)what;
    jm_dispatcher_tick(jm->dispatcher, jm_time_now());
}

/* ---- connections ------------------------------------------------------------------------- */

static void on_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    jobmanager *jm = ud;
    switch (env->body_case) {
    case FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER: on_register(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_HEARTBEAT: on_heartbeat(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_OVERVIEW_REQUEST: on_overview(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_REQUEST: on_list_jobs(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB: on_submit_job(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_GET_JOB: on_get_job(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_CANCEL_JOB: on_cancel_job(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_UPDATE_TASK_EXECUTION_STATE: on_update_task(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT: on_fetch_artifact(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_ACKNOWLEDGE_CHECKPOINT: on_ack_checkpoint(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_DECLINE_CHECKPOINT: on_decline_checkpoint(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT: on_trigger_savepoint(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_STOP_WITH_SAVEPOINT: on_stop_with_savepoint(jm, c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_GET_SAVEPOINT_STATUS: on_savepoint_status(jm, c, env); break;
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
    jm->ask_timeout_ms = config_int(cfg, CFG_RPC_ASK_TIMEOUT);
    jm->metrics = jm_metrics_new();
    jm->proc = XNEW(metric_process);
    metric_process_sample(jm->proc);
    jm->rm = jm_rm_new(config_int(cfg, CFG_HEARTBEAT_TIMEOUT));
    jm_rm_set_lost_hook(jm->rm, on_tm_lost, jm);
    jm->artifacts = jm_artifacts_open(config_str(cfg, CFG_IO_TMP_DIRS), jm->id, err);
    if (!jm->artifacts) {
        jm_stop(jm);
        return FLINT_IO;
    }
    jm_dispatcher_config dcfg = {
        .slot_request_timeout_ms = config_int(cfg, CFG_SLOT_REQUEST_TIMEOUT),
        .ask_timeout_ms = jm->ask_timeout_ms,
        .default_max_parallelism = (int)config_int(cfg, CFG_PIPELINE_MAX_PARALLELISM),
        .cfg = cfg,
    };
    jm_sched_transport transport = {.deploy = t_deploy, .cancel = t_cancel, .release = t_release, .ud = jm};
    jm->dispatcher = jm_dispatcher_new(jm->rm, jm->artifacts, &dcfg, &transport);
    jm_cp_transport cpt = {.trigger = t_trigger, .notify_complete = t_notify_complete,
                           .notify_aborted = t_notify_aborted, .ud = jm};
    jm_dispatcher_set_cp_transport(jm->dispatcher, &cpt);

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
    jm->job_timer = event_new(base, -1, EV_PERSIST, on_job_timer, jm);
    struct timeval job_tv = {0, 100 * 1000};
    event_add(jm->job_timer, &job_tv);

    log_info("Flint %s jobmanager %s started", FLINT_VERSION, jm->id);
    log_info("RPC endpoint listening on %s:%d", rpc_host, jm->rpc_port);
    log_info("REST endpoint listening on http://%s:%d/", rest_host, jm->rest_port);
    return 0;
}

void jm_stop(jobmanager *jm) {
    jm->stopping = true;
    if (jm->heartbeat_timer) event_free(jm->heartbeat_timer);
    if (jm->job_timer) event_free(jm->job_timer);
    jm_rest_free(jm->rest);
    rpc_server_free(jm->rpc); /* closes every connection; pending calls fail (ignored: stopping) */
    jm_dispatcher_free(jm->dispatcher);
    jm_artifacts_close(jm->artifacts);
    jm_rm_free(jm->rm);
    jm_metrics_free(jm->metrics);
    free(jm->proc);
    config_free(jm->cfg);
    memset(jm, 0, sizeof *jm);
}

/* The job registry and the routing of job events (see jm_dispatcher.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "dispatcher"
#include "jm_dispatcher.h"
#include "jm_restore.h"
#include "util/alloc.h"
#include "util/log.h"

/* What the dispatcher keeps per job besides the job master: its coordinator and restart
 * strategy. The job's ops_ud points here. */
typedef struct jm_master {
    struct jm_dispatcher *d;
    jm_job *job;                  /* owned */
    jm_cp *cp;                    /* owned */
    jm_restart *restart;          /* owned */
    Flint__Checkpoint__TaskCheckpointConfig tcc;   /* strings owned */
} jm_master;

struct jm_dispatcher {
    jm_rm *rm;                    /* not owned */
    jm_artifacts *artifacts;      /* not owned, may be NULL */
    jm_dispatcher_config cfg;
    jm_sched *sched;              /* owned */
    jm_cp_transport cpt;
    jm_job **jobs;                /* submission order (oldest first); owned through masters */
    jm_master **masters;          /* parallel to jobs */
    int n, cap;
};

static jm_master *master_of(const jm_job *job) { return job->ops_ud; }

/* ---- job ops: the job master's way out ---- */

static int op_cancel_task(void *ud, jm_job *job, jm_exec *ex) {
    jm_master *m = ud;
    return jm_sched_cancel_task(m->d->sched, job, ex);
}

static void op_terminal(void *ud, jm_job *job, jm_time now) {
    jm_master *m = ud;
    jm_sched_job_terminal(m->d->sched, job, now);
}

static bool op_should_restart(void *ud, jm_job *job, jm_time now, int64_t *delay_ms) {
    jm_master *m = ud;
    bool ok = jm_restart_on_failure(m->restart, now.mono_ms, delay_ms);
    if (!ok) {
        char desc[128];
        jm_restart_describe(jm_restart_get_config(m->restart), desc, sizeof desc);
        log_info("Job %s (%s): the restart strategy %s does not allow another restart", job->name, job->id, desc);
    }
    return ok;
}

static void op_restart(void *ud, jm_job *job, jm_time now) {
    jm_master *m = ud;
    jm_dispatcher *d = m->d;
    jm_sched_release_job(d->sched, job);
    jm_restore *plan = NULL;
    flint_err err = {0};
    if (jm_cp_restore_latest(m->cp, now, &plan, &err)) {
        jm_job_fail_unrecoverable(job, "flint.CheckpointException", err.msg, now);
        return;
    }
    log_info("Restarting job %s (%s), attempt %d%s", job->name, job->id, job->restarts + 1,
             plan ? "" : ", without state (no completed checkpoint)");
    jm_job_reset_for_restart(job, plan, now);
    jm_sched_schedule(d->sched, job, now);
    jm_sched_retry(d->sched, now);
}

static void op_state_changed(void *ud, jm_job *job, jm_job_state old, jm_time now) {
    jm_master *m = ud;
    (void)job, (void)old;
    if (m->cp) jm_cp_job_state(m->cp, now);
}

static void op_task_state_changed(void *ud, jm_job *job, jm_exec *ex, jm_exec_state old, jm_time now) {
    jm_master *m = ud;
    (void)job;
    if (m->cp) jm_cp_task_state(m->cp, ex, old, now);
}

static const jm_job_ops job_ops = {.cancel_task = op_cancel_task,
                                   .terminal = op_terminal,
                                   .should_restart = op_should_restart,
                                   .restart = op_restart,
                                   .state_changed = op_state_changed,
                                   .task_state_changed = op_task_state_changed};

/* ---- checkpoint ops: the coordinator's way out ---- */

static jm_tm *tm_of(jm_master *m, const jm_exec *ex) {
    if (!ex->has_location) return NULL;
    jm_tm *tm = jm_rm_find(m->d->rm, ex->loc.resource_id);
    return tm && !tm->lost ? tm : NULL;
}

static int cp_trigger(void *ud, jm_job *job, jm_exec *ex, const Flint__Checkpoint__TriggerCheckpoint *msg,
                      flint_err *err) {
    jm_master *m = ud;
    (void)job;
    if (!m->d->cpt.trigger) return flint_err_set(err, FLINT_UNSUPPORTED, "no checkpoint transport");
    jm_tm *tm = tm_of(m, ex);
    if (!tm) return flint_err_set(err, FLINT_UNAVAILABLE, "TaskManager %s is gone", ex->loc.resource_id);
    return m->d->cpt.trigger(m->d->cpt.ud, tm, msg, err);
}

static void cp_notify_complete(void *ud, jm_job *job, jm_exec *ex, const Flint__Checkpoint__NotifyCheckpointComplete *msg) {
    jm_master *m = ud;
    (void)job;
    jm_tm *tm = tm_of(m, ex);
    if (tm && m->d->cpt.notify_complete) m->d->cpt.notify_complete(m->d->cpt.ud, tm, msg);
}

static void cp_notify_aborted(void *ud, jm_job *job, jm_exec *ex, const Flint__Checkpoint__NotifyCheckpointAborted *msg) {
    jm_master *m = ud;
    (void)job;
    jm_tm *tm = tm_of(m, ex);
    if (tm && m->d->cpt.notify_aborted) m->d->cpt.notify_aborted(m->d->cpt.ud, tm, msg);
}

static void cp_fail_job(void *ud, jm_job *job, const char *message, jm_time now) {
    (void)ud;
    jm_job_fail(job, "flint.CheckpointException", message, now);
}

static void cp_cancel_job(void *ud, jm_job *job, jm_time now) {
    (void)ud;
    if (!jm_job_is_terminal(job)) {
        log_info("Cancelling job %s (%s) after its savepoint.", job->name, job->id);
        jm_job_cancel(job, now, NULL);
    }
}

static const jm_cp_ops cp_ops = {.trigger = cp_trigger,
                                 .notify_complete = cp_notify_complete,
                                 .notify_aborted = cp_notify_aborted,
                                 .fail_job = cp_fail_job,
                                 .cancel_job = cp_cancel_job};

static void master_free(jm_master *m) {
    if (!m) return;
    jm_cp_free(m->cp);
    jm_restart_free(m->restart);
    jm_job_free(m->job);
    free(m->tcc.job_directory);
    free(m->tcc.shared_directory);
    free(m->tcc.state_backend);
    free(m);
}

jm_dispatcher *jm_dispatcher_new(jm_rm *rm, jm_artifacts *artifacts, const jm_dispatcher_config *cfg,
                                 const jm_sched_transport *transport) {
    assert(rm && cfg && transport && cfg->slot_request_timeout_ms > 0 && cfg->ask_timeout_ms > 0 &&
           cfg->default_max_parallelism > 0);
    jm_dispatcher *d = XNEW(jm_dispatcher);
    d->rm = rm;
    d->artifacts = artifacts;
    d->cfg = *cfg;
    d->sched = jm_sched_new(rm, cfg->slot_request_timeout_ms, transport);
    return d;
}

void jm_dispatcher_free(jm_dispatcher *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) master_free(d->masters[i]);
    free(d->jobs);
    free(d->masters);
    jm_sched_free(d->sched);
    free(d);
}

jm_sched *jm_dispatcher_sched(jm_dispatcher *d) { return d->sched; }

void jm_dispatcher_set_cp_transport(jm_dispatcher *d, const jm_cp_transport *t) {
    if (t) d->cpt = *t;
    else memset(&d->cpt, 0, sizeof d->cpt);
}

jm_cp *jm_dispatcher_job_checkpoints(const jm_dispatcher *d, const jm_job *job) {
    (void)d;
    return master_of(job)->cp;
}

const jm_restart_config *jm_dispatcher_job_restart(const jm_dispatcher *d, const jm_job *job) {
    (void)d;
    return jm_restart_get_config(master_of(job)->restart);
}

jm_job *jm_dispatcher_find(const jm_dispatcher *d, const char *job_id) {
    if (!job_id) return NULL;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->jobs[i]->id, job_id) == 0) return d->jobs[i];
    return NULL;
}

int jm_dispatcher_count(const jm_dispatcher *d) { return d->n; }

jm_job *jm_dispatcher_get(const jm_dispatcher *d, int i) {
    assert(i >= 0 && i < d->n);
    return d->jobs[d->n - 1 - i];
}

/* ---- submission ---- */

/* A deep copy of a graph (pack and unpack), owned by the caller. */
static Flint__Graph__JobGraph *copy_graph(const Flint__Graph__JobGraph *g) {
    size_t n = flint__graph__job_graph__get_packed_size(g);
    uint8_t *buf = xmalloc(n ? n : 1);
    flint__graph__job_graph__pack(g, buf);
    Flint__Graph__JobGraph *copy = flint__graph__job_graph__unpack(NULL, n, buf);
    free(buf);
    if (!copy) {
        log_error("cannot copy a job graph (out of memory?)");
        abort();
    }
    return copy;
}

int jm_dispatcher_submit(jm_dispatcher *d, const Flint__Graph__JobGraph *graph, const void *artifact,
                         size_t artifact_len, jm_time now, jm_job **out, flint_err *err) {
    return jm_dispatcher_submit_opts(d, graph, artifact, artifact_len, NULL, now, out, err);
}

/* The savepoint to start from: read, checked and mapped onto g. */
static int savepoint_plan(const jm_dispatcher *d, const jm_submit_options *o, const Flint__Graph__JobGraph *g,
                          jm_restore **plan, flint_err *err) {
    char *meta_path = NULL, *dir = NULL;
    Flint__Checkpoint__CheckpointMetadata *meta = NULL;
    int rc = jm_savepoint_resolve(o->savepoint_path, &meta_path, &dir, err);
    if (!rc) rc = jm_metadata_read(meta_path, &meta, err);
    if (!rc) rc = jm_metadata_check_files(meta, dir, err);
    if (!rc) {
        rc = jm_restore_new(meta, meta_path, g, d->cfg.default_max_parallelism, o->allow_non_restored, plan, err);
        meta = NULL;
    }
    if (meta) flint__checkpoint__checkpoint_metadata__free_unpacked(meta, NULL);
    free(meta_path);
    free(dir);
    return rc;
}

int jm_dispatcher_submit_opts(jm_dispatcher *d, const Flint__Graph__JobGraph *graph, const void *artifact,
                              size_t artifact_len, const jm_submit_options *opts, jm_time now, jm_job **out,
                              flint_err *err) {
    flint_err local;
    if (!err) err = &local;
    if (out) *out = NULL;
    int rc = jm_job_validate(graph, d->cfg.default_max_parallelism, err);
    if (rc) return rc;
    if (jm_dispatcher_find(d, graph->job_id))
        return flint_err_set(err, FLINT_EXISTS, "Job %s has already been submitted", graph->job_id);
    const char *sha = graph->artifact_sha256;
    if (sha && sha[0]) {
        if (!d->artifacts)
            return flint_err_set(err, FLINT_UNAVAILABLE, "This jobmanager has no artifact store");
        if (artifact_len > 0) {
            rc = jm_artifacts_put(d->artifacts, artifact, artifact_len, sha, err);
            if (rc) return rc;
        } else if (!jm_artifacts_has(d->artifacts, sha)) {
            return flint_err_set(err, FLINT_INVALID,
                                 "The job graph names artifact %s, but no artifact was uploaded", sha);
        }
    } else if (artifact_len > 0) {
        log_info("job %s: ignoring an uploaded artifact of %zu bytes (the job graph names none)",
                 graph->job_id, artifact_len);
    }
    Flint__Graph__JobGraph *g = copy_graph(graph);
    rc = jm_graph_assign_operator_ids(g, err);
    flint_config *jcfg = rc ? NULL : jm_cp_job_config(d->cfg.cfg, g, err);
    jm_cp_config cpc;
    jm_restart_config rsc;
    jm_restore *plan = NULL;
    if (!rc && !jcfg) rc = err->code ? err->code : FLINT_CONFIG;
    if (!rc) rc = jm_cp_config_load(jcfg, &cpc, err);
    if (!rc) rc = jm_restart_config_load(jcfg, cpc.interval_ms > 0, &rsc, err);
    config_free(jcfg);
    if (!rc && opts && opts->savepoint_path && opts->savepoint_path[0]) rc = savepoint_plan(d, opts, g, &plan, err);
    if (rc) {
        flint__graph__job_graph__free_unpacked(g, NULL);
        return rc;
    }
    jm_job *job = jm_job_new(g, d->cfg.default_max_parallelism, now);
    jm_master *m = XNEW(jm_master);
    m->d = d;
    m->job = job;
    m->restart = jm_restart_new(&rsc);
    flint__checkpoint__task_checkpoint_config__init(&m->tcc);
    m->tcc.enabled = cpc.interval_ms > 0;
    m->tcc.mode = cpc.exactly_once ? FLINT__CHECKPOINT__CHECKPOINTING_MODE__EXACTLY_ONCE
                                   : FLINT__CHECKPOINT__CHECKPOINTING_MODE__AT_LEAST_ONCE;
    m->tcc.interval_ms = cpc.interval_ms;
    m->tcc.final_checkpoints = cpc.interval_ms > 0 && cpc.after_tasks_finish;
    m->tcc.incremental = cpc.incremental;
    m->tcc.state_backend = xstrdup(cpc.backend);
    m->cp = jm_cp_new(job, &cpc, &cp_ops, m);
    m->tcc.job_directory = xstrdup(jm_cp_job_dir(m->cp));
    m->tcc.shared_directory = xstrdup(jm_cp_shared_dir(m->cp));
    job->cp_config = &m->tcc;
    jm_job_set_ops(job, &job_ops, m, d->cfg.ask_timeout_ms);
    if (plan) {
        jm_cp_restored_from(m->cp, plan, now);
        log_info("Job %s (%s) starts from %s %lld at %s", job->name, job->id,
                 jm_restore_is_savepoint(plan) ? "savepoint" : "checkpoint",
                 (long long)jm_restore_checkpoint_id(plan), jm_restore_metadata_path(plan));
        jm_job_set_restore(job, plan);
    }
    if (cpc.interval_ms > 0 && cpc.checkpoints_dir_default)
        log_warn("Job %s: state.checkpoints.dir is not set; checkpoints go to %s, which only this host sees",
                 job->id, cpc.checkpoints_dir);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->jobs = xrealloc(d->jobs, (size_t)d->cap * sizeof *d->jobs);
        d->masters = xrealloc(d->masters, (size_t)d->cap * sizeof *d->masters);
    }
    d->masters[d->n] = m;
    d->jobs[d->n++] = job;
    char rs[128];
    jm_restart_describe(&rsc, rs, sizeof rs);
    log_info("Submitting job %s (%s): checkpoints %s, restart strategy %s.", job->name, job->id,
             cpc.interval_ms > 0 ? "enabled" : "disabled", rs);
    if (out) *out = job;
    return 0;
}

void jm_dispatcher_start(jm_dispatcher *d, jm_job *job, jm_time now) {
    if (job->state != JM_JOB_CREATED) return;
    jm_sched_schedule(d->sched, job, now);
}

int jm_dispatcher_cancel(jm_dispatcher *d, const char *job_id, jm_time now, flint_err *err) {
    jm_job *job = jm_dispatcher_find(d, job_id);
    if (!job) return flint_err_set(err, FLINT_NOT_FOUND, "Job %.64s not found", job_id ? job_id : "");
    if (!jm_job_is_terminal(job)) log_info("Cancelling job %s (%s).", job->name, job->id);
    return jm_job_cancel(job, now, err);
}

/* ---- events ---- */

static jm_task_metrics metrics_of(const Flint__Rpc__TaskMetrics *m) {
    jm_task_metrics t = {
        .records_in = m->num_records_in,
        .records_out = m->num_records_out,
        .bytes_in = m->num_bytes_in,
        .bytes_out = m->num_bytes_out,
        .back_pressured_ms = m->back_pressured_time_ms_per_second,
        .busy_ms = m->busy_time_ms_per_second,
        .idle_ms = m->idle_time_ms_per_second,
    };
    return t;
}

int jm_dispatcher_update_task(jm_dispatcher *d, const char *resource_id,
                              const Flint__Rpc__UpdateTaskExecutionState *m, jm_time now, flint_err *err) {
    jm_job *job = jm_dispatcher_find(d, m->job_id);
    if (!job) return flint_err_set(err, FLINT_NOT_FOUND, "Job %.64s not found", m->job_id ? m->job_id : "");
    jm_exec *ex = jm_job_find_exec(job, m->execution_id);
    if (ex && resource_id && ex->has_location && strcmp(ex->loc.resource_id, resource_id) != 0)
        return flint_err_set(err, FLINT_INVALID, "Execution %s of job %s does not run on taskmanager %s",
                             ex->id, job->id, resource_id);
    if (ex && m->metrics) {
        jm_task_metrics t = metrics_of(m->metrics);
        jm_job_set_metrics(job, ex, &t);
    }
    if (ex && m->restore_failure && m->restore_failure->checkpoint_id > 0) {
        char *why = xasprintf("%s%s%s", m->restore_failure->path ? m->restore_failure->path : "",
                              m->restore_failure->path && m->restore_failure->path[0] ? ": " : "",
                              m->restore_failure->message ? m->restore_failure->message : "");
        jm_cp_restore_failed(master_of(job)->cp, m->restore_failure->checkpoint_id, why);
        free(why);
    }
    return jm_job_update_task(job, m->execution_id, m->state, m->error, now, err);
}

static jm_exec *find_exec(jm_dispatcher *d, const char *job_id, const char *exec_id, jm_job **job) {
    *job = jm_dispatcher_find(d, job_id);
    return *job ? jm_job_find_exec(*job, exec_id) : NULL;
}

void jm_dispatcher_deploy_result(jm_dispatcher *d, const char *job_id, const char *exec_id, int status,
                                 const char *message, jm_time now) {
    if (status == FLINT_OK) return;
    jm_job *job;
    jm_exec *ex = find_exec(d, job_id, exec_id, &job);
    if (!ex) return;
    if (!message || !message[0]) message = flint_strerror(status);
    char *cause;
    const char *name = "flint.DeploymentException";
    if (status == FLINT_CLOSED) {
        name = "flint.TaskManagerLostException";
        cause = xasprintf("TaskManager %s at %s lost: %s", ex->loc.resource_id, ex->loc.host, message);
    } else if (status == FLINT_TIMEOUT) {
        cause = xasprintf("Could not deploy the task: %s", message);
    } else {
        cause = xstrdup(message);
    }
    jm_job_deploy_failed(job, ex, name, cause, now);
    free(cause);
}

void jm_dispatcher_cancel_result(jm_dispatcher *d, const char *job_id, const char *exec_id, int status,
                                 const char *message, jm_time now) {
    if (status == FLINT_OK) return;
    jm_job *job;
    jm_exec *ex = find_exec(d, job_id, exec_id, &job);
    if (ex) jm_job_cancel_failed(job, ex, message ? message : flint_strerror(status), now);
}

void jm_dispatcher_tm_lost(jm_dispatcher *d, const jm_tm *tm, const char *reason, jm_time now) {
    char *msg = xasprintf("TaskManager %s at %s lost: %s", tm->resource_id, tm->host,
                          reason && reason[0] ? reason : "unknown reason");
    for (int i = 0; i < d->n; i++) {
        jm_job *job = d->jobs[i];
        if (jm_job_is_terminal(job)) continue;
        int n = jm_job_tm_lost(job, tm->resource_id, msg, now);
        if (n) log_info("job %s: %d task%s lost with taskmanager %s", job->id, n, n == 1 ? "" : "s",
                        tm->resource_id);
    }
    free(msg);
}

void jm_dispatcher_metrics(jm_dispatcher *d, const char *resource_id, const Flint__Rpc__TaskMetrics *m) {
    jm_job *job;
    jm_exec *ex = find_exec(d, m->job_id, m->execution_id, &job);
    if (!ex || !ex->has_location || (resource_id && strcmp(ex->loc.resource_id, resource_id) != 0)) return;
    jm_task_metrics t = metrics_of(m);
    jm_job_set_metrics(job, ex, &t);
}

void jm_dispatcher_resources_changed(jm_dispatcher *d, jm_time now) { jm_sched_retry(d->sched, now); }

void jm_dispatcher_tick(jm_dispatcher *d, jm_time now) {
    jm_sched_tick(d->sched, now);
    for (int i = 0; i < d->n; i++)
        if (!jm_job_is_terminal(d->jobs[i])) jm_job_tick(d->jobs[i], now);
    for (int i = 0; i < d->n; i++)
        if (!jm_job_is_terminal(d->jobs[i])) jm_cp_tick(d->masters[i]->cp, now);
}

/* The job of a checkpoint message, checking that exec_id runs on resource_id. */
static jm_job *cp_job(jm_dispatcher *d, const char *resource_id, const char *job_id, const char *exec_id,
                      flint_err *err) {
    jm_job *job = jm_dispatcher_find(d, job_id);
    if (!job) {
        flint_err_set(err, FLINT_NOT_FOUND, "Job %.64s not found", job_id ? job_id : "");
        return NULL;
    }
    jm_exec *ex = jm_job_find_exec(job, exec_id);
    if (ex && resource_id && ex->has_location && strcmp(ex->loc.resource_id, resource_id) != 0) {
        flint_err_set(err, FLINT_INVALID, "Execution %s of job %s does not run on taskmanager %s", ex->id, job->id,
                      resource_id);
        return NULL;
    }
    return job;
}

int jm_dispatcher_ack_checkpoint(jm_dispatcher *d, const char *resource_id,
                                 const Flint__Checkpoint__AcknowledgeCheckpoint *m, jm_time now, flint_err *err) {
    jm_job *job = cp_job(d, resource_id, m->job_id, m->execution_id, err);
    if (!job) return err->code;
    return jm_cp_acknowledge(master_of(job)->cp, m, now, err);
}

int jm_dispatcher_decline_checkpoint(jm_dispatcher *d, const char *resource_id,
                                     const Flint__Checkpoint__DeclineCheckpoint *m, jm_time now, flint_err *err) {
    jm_job *job = cp_job(d, resource_id, m->job_id, m->execution_id, err);
    if (!job) return err->code;
    return jm_cp_decline(master_of(job)->cp, m, now, err);
}

void jm_dispatcher_trigger_result(jm_dispatcher *d, const char *job_id, const char *exec_id, int64_t checkpoint_id,
                                  int status, const char *message, jm_time now) {
    jm_job *job = jm_dispatcher_find(d, job_id);
    if (job) jm_cp_trigger_result(master_of(job)->cp, exec_id, checkpoint_id, status, message, now);
}

int jm_dispatcher_trigger_savepoint(jm_dispatcher *d, const char *job_id, int type, const char *dir,
                                    bool cancel_job, jm_time now, char trigger_id[33], flint_err *err) {
    jm_job *job = jm_dispatcher_find(d, job_id);
    if (!job) return flint_err_set(err, FLINT_NOT_FOUND, "Job %.64s not found", job_id ? job_id : "");
    int rc = jm_cp_trigger_savepoint(master_of(job)->cp, type, dir, cancel_job, now, trigger_id, err);
    if (!rc)
        log_info("Triggering %s for job %s (request %s).",
                 type == FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT ? "a savepoint" : "stop-with-savepoint",
                 job->id, trigger_id);
    return rc;
}

const jm_cp_trigger *jm_dispatcher_savepoint_status(jm_dispatcher *d, const char *job_id, const char *trigger_id,
                                                    flint_err *err) {
    jm_job *job = jm_dispatcher_find(d, job_id);
    if (!job) {
        flint_err_set(err, FLINT_NOT_FOUND, "Job %.64s not found", job_id ? job_id : "");
        return NULL;
    }
    const jm_cp_trigger *t = jm_cp_find_trigger(master_of(job)->cp, trigger_id);
    if (!t)
        flint_err_set(err, FLINT_NOT_FOUND, "There is no savepoint operation with triggerId=%.64s for job %s",
                      trigger_id ? trigger_id : "", job->id);
    return t;
}

jm_job_counts jm_dispatcher_job_counts(const jm_dispatcher *d) {
    jm_job_counts c = {0, 0, 0, 0};
    for (int i = 0; i < d->n; i++) {
        switch (d->jobs[i]->state) {
        case JM_JOB_FINISHED: c.finished++; break;
        case JM_JOB_CANCELED: c.canceled++; break;
        case JM_JOB_FAILED: c.failed++; break;
        default:
            if (!jm_job_is_terminal(d->jobs[i])) c.running++;
            break;
        }
    }
    return c;
}

/* ---- protobuf views ---- */

Flint__Rpc__JobSummary *jm_job_summary_new(const jm_job *job) {
    Flint__Rpc__JobSummary *s = XNEW(Flint__Rpc__JobSummary);
    flint__rpc__job_summary__init(s);
    s->job_id = xstrdup(job->id);
    s->name = xstrdup(job->name);
    s->state = xstrdup(jm_job_state_name(job->state));
    s->start_time = job->start_time;
    s->end_time = job->end_time;
    return s;
}

void jm_job_summary_free(Flint__Rpc__JobSummary *s) {
    if (!s) return;
    free(s->job_id);
    free(s->name);
    free(s->state);
    free(s);
}

static Flint__Rpc__JobException *exception_new(const jm_exception *x) {
    Flint__Rpc__JobException *e = XNEW(Flint__Rpc__JobException);
    flint__rpc__job_exception__init(e);
    e->timestamp = x->timestamp;
    e->exception = xstrdup(x->message);
    e->task_name = xstrdup(x->task ? x->task : "");
    e->location = xstrdup(x->location ? x->location : "");
    return e;
}

static void exception_free(Flint__Rpc__JobException *e) {
    if (!e) return;
    free(e->exception);
    free(e->task_name);
    free(e->location);
    free(e);
}

Flint__Rpc__JobDetails *jm_job_details_new(const jm_job *job) {
    Flint__Rpc__JobDetails *d = XNEW(Flint__Rpc__JobDetails);
    flint__rpc__job_details__init(d);
    d->job_id = xstrdup(job->id);
    d->name = xstrdup(job->name);
    d->state = xstrdup(jm_job_state_name(job->state));
    d->start_time = job->start_time;
    d->end_time = job->end_time;
    d->n_vertices = (size_t)job->n_vertices;
    d->vertices = xcalloc((size_t)job->n_vertices + 1, sizeof *d->vertices);
    for (int i = 0; i < job->n_vertices; i++) {
        const jm_vertex *v = &job->vertices[i];
        Flint__Rpc__VertexStatus *vs = XNEW(Flint__Rpc__VertexStatus);
        flint__rpc__vertex_status__init(vs);
        int counts[JM_EXEC_STATE_COUNT];
        jm_vertex_state_counts(v, counts);
        jm_task_metrics io;
        jm_vertex_io(v, &io);
        vs->id = v->def->id;
        vs->name = xstrdup(v->name);
        vs->parallelism = v->parallelism;
        vs->status = xstrdup(jm_exec_state_name(jm_vertex_aggregate_state(counts, v->parallelism)));
        vs->n_tasks = JM_EXEC_STATE_COUNT;
        vs->tasks = xcalloc(JM_EXEC_STATE_COUNT, sizeof *vs->tasks);
        for (int s = 0; s < JM_EXEC_STATE_COUNT; s++) {
            Flint__Rpc__VertexStatus__TasksEntry *t = XNEW(Flint__Rpc__VertexStatus__TasksEntry);
            flint__rpc__vertex_status__tasks_entry__init(t);
            t->key = xstrdup(jm_exec_state_name((jm_exec_state)s));
            t->value = counts[s];
            vs->tasks[s] = t;
        }
        vs->read_records = io.records_in;
        vs->write_records = io.records_out;
        vs->read_bytes = io.bytes_in;
        vs->write_bytes = io.bytes_out;
        d->vertices[i] = vs;
    }
    if (job->root_exception >= 0) d->root_exception = exception_new(&job->exceptions[job->root_exception]);
    d->n_exceptions = (size_t)job->n_exceptions;
    d->exceptions = xcalloc((size_t)job->n_exceptions + 1, sizeof *d->exceptions);
    for (int i = 0; i < job->n_exceptions; i++) d->exceptions[i] = exception_new(&job->exceptions[i]);
    return d;
}

void jm_job_details_free(Flint__Rpc__JobDetails *d) {
    if (!d) return;
    free(d->job_id);
    free(d->name);
    free(d->state);
    for (size_t i = 0; i < d->n_vertices; i++) {
        Flint__Rpc__VertexStatus *vs = d->vertices[i];
        free(vs->name);
        free(vs->status);
        for (size_t s = 0; s < vs->n_tasks; s++) {
            free(vs->tasks[s]->key);
            free(vs->tasks[s]);
        }
        free(vs->tasks);
        free(vs);
    }
    free(d->vertices);
    exception_free(d->root_exception);
    for (size_t i = 0; i < d->n_exceptions; i++) exception_free(d->exceptions[i]);
    free(d->exceptions);
    free(d);
}

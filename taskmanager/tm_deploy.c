/* Job execution in the task executor (see tm_deploy.h). A deployed task goes through
 *   DeployTask -> record (DEPLOYING) -> Ack -> artifact loaded -> user functions resolved ->
 *   thread started (INITIALIZING, RUNNING from the thread) -> terminal state from the thread ->
 *   joined, reported with its final metrics, freed.
 * The task thread's state changes come through a mutex-protected queue and event_active (safe
 * from any thread with evthread_use_pthreads), so reports to the jobmanager keep their order and
 * only the loop thread touches the RPC connection. */
#include <assert.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "taskexecutor"
#include "metrics/metrics_proto.h"
#include "checkpoint/cp_outbox.h"
#include "checkpoint/cp_task.h"
#include "network/tm_net.h"
#include "operators/operator.h"
#include "task/task.h"
#include "tm_artifacts.h"
#include "tm_deploy.h"
#include "util/alloc.h"
#include "util/log.h"

#define SHUTDOWN_JOIN_MS 10000

/* A deployed task, from DeployTask until its thread ended and its end was reported. */
typedef struct tm_task_rec {
    taskmanager *tm;
    Flint__Rpc__TaskDeploymentDescriptor *tdd;   /* owned (taken from the request) */
    tm_task *task;                 /* NULL until the artifact is loaded and the thread starts */
    tm_task_state state;           /* the last state reported */
    bool waiting_artifact;
    bool canceled;                 /* canceled before its thread started */
    bool report;                   /* false once the jobmanager was lost (or it was canceled early) */
    bool cancel_sent;              /* its thread was asked to stop */
    struct tm_task_rec *next;
} tm_task_rec;

/* A state change queued by a task thread. */
typedef struct tm_state_msg {
    tm_task_rec *rec;
    tm_task_state state;
    char *error;
    struct tm_state_msg *next;
} tm_state_msg;

/* ---- reports to the jobmanager -------------------------------------------------------------- */

static void on_update_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)c, (void)reply;
    char *what = ud;
    if (status != FLINT_OK && status != FLINT_CLOSED)
        log_warn("the jobmanager did not take the state update %s: %s", what, msg);
    free(what);
}

static void fill_metrics(Flint__Rpc__TaskMetrics *m, const tm_task_rec *r, const tm_task_metrics *tmm) {
    flint__rpc__task_metrics__init(m);
    m->execution_id = r->tdd->execution_id;
    m->job_id = r->tdd->job_id;
    m->vertex_id = r->tdd->vertex->id;
    m->subtask = r->tdd->subtask_index;
    m->num_records_in = tmm->records_in;
    m->num_records_out = tmm->records_out;
    m->num_bytes_in = tmm->bytes_in;
    m->num_bytes_out = tmm->bytes_out;
    m->back_pressured_time_ms_per_second = tmm->back_pressured_ms_per_s;
    m->busy_time_ms_per_second = tmm->busy_ms_per_s;
    m->idle_time_ms_per_second = tmm->idle_ms_per_s;
    m->attempt = r->tdd->attempt;
    m->current_input_watermark = tmm->input_watermark;
    m->current_output_watermark = tmm->output_watermark;
    m->in_pool_usage = tmm->in_pool_usage;
    m->out_pool_usage = tmm->out_pool_usage;
    m->num_records_in_per_second = tmm->records_in_per_s;
    m->num_records_out_per_second = tmm->records_out_per_s;
    m->num_bytes_in_per_second = tmm->bytes_in_per_s;
    m->num_bytes_out_per_second = tmm->bytes_out_per_s;
}

/* Every metric of r's task into m->metrics (issue 8); free with metric_proto_free(m->metrics,
 * m->n_metrics). */
static void fill_metric_dump(Flint__Rpc__TaskMetrics *m, const tm_task_rec *r) {
    metric_set set;
    metric_set_init(&set);
    tm_task_metric_dump(r->task, &set);
    m->metrics = metric_set_to_proto(&set, &m->n_metrics);
    metric_set_clear(&set);
}

static void report(tm_task_rec *r, tm_task_state s, const char *error) {
    taskmanager *tm = r->tm;
    r->state = s;
    if (!r->report || !tm->jm || tm->state != TM_REGISTERED) return;
    Flint__Rpc__UpdateTaskExecutionState u = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    u.job_id = r->tdd->job_id;
    u.execution_id = r->tdd->execution_id;
    u.state = (char *)tm_task_state_name(s);
    u.error = (char *)(error ? error : "");
    if (s == TM_TASK_FAILED && r->task) u.restore_failure = (Flint__Checkpoint__StateRestoreFailure *)tm_task_restore_failure(r->task);
    Flint__Rpc__TaskMetrics m;
    if (tm_task_state_is_terminal(s) && r->task) {
        tm_task_metrics tmm;
        tm_task_metrics_get(r->task, &tmm);
        fill_metrics(&m, r, &tmm);
        fill_metric_dump(&m, r);
        u.metrics = &m;
    }
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_UPDATE_TASK_EXECUTION_STATE;
    env.update_task_execution_state = &u;
    char *what = xasprintf("%s of %s", u.state, r->tdd->execution_id);
    int rc = rpc_call(tm->jm, &env, config_int(tm->cfg, CFG_RPC_ASK_TIMEOUT), on_update_reply, what);
    if (u.metrics) metric_proto_free(m.metrics, m.n_metrics);
    if (rc) {
        log_warn("cannot report %s: %s", what, flint_strerror(rc));
        free(what);
    }
}

/* ---- records ------------------------------------------------------------------------------------ */

static tm_task_rec *find_rec(taskmanager *tm, const char *execution_id) {
    for (tm_task_rec *r = tm->tasks; r; r = r->next)
        if (strcmp(r->tdd->execution_id, execution_id) == 0) return r;
    return NULL;
}

/* The task is over: report its terminal state (if not done yet), drop its artifact reference and
 * free it. Its thread, if any, has been joined. */
static void finish_rec(tm_task_rec *r, tm_task_state s, const char *error) {
    taskmanager *tm = r->tm;
    if (!tm_task_state_is_terminal(r->state)) report(r, s, error);
    for (tm_task_rec **pp = &tm->tasks; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    tm_task_free(r->task);
    tm_artifacts_put(tm->artifacts, r->tdd->job_id);
    flint__rpc__task_deployment_descriptor__free_unpacked(r->tdd, NULL);
    free(r);
}

/* ---- the state queue (task threads -> loop) -------------------------------------------------------- */

/* On a task thread. */
static void on_task_state(tm_task *t, tm_task_state s, const char *error, void *ud) {
    (void)t;
    tm_task_rec *r = ud;
    taskmanager *tm = r->tm;
    tm_state_msg *m = XNEW(tm_state_msg);
    m->rec = r;
    m->state = s;
    m->error = error ? xstrdup(error) : NULL;
    pthread_mutex_lock(&tm->q_mu);
    if (tm->q_tail) tm->q_tail->next = m;
    else tm->q_head = m;
    tm->q_tail = m;
    pthread_mutex_unlock(&tm->q_mu);
    event_active(tm->q_ev, EV_READ, 0);
}

static tm_state_msg *take_queue(taskmanager *tm) {
    pthread_mutex_lock(&tm->q_mu);
    tm_state_msg *m = tm->q_head;
    tm->q_head = tm->q_tail = NULL;
    pthread_mutex_unlock(&tm->q_mu);
    return m;
}

static void handle_msg(tm_state_msg *m) {
    tm_task_rec *r = m->rec;
    if (tm_task_state_is_terminal(m->state)) {
        tm_task_join(r->task);
        finish_rec(r, m->state, m->error);
    } else if (!tm_task_state_is_terminal(r->state) && r->state != TM_TASK_CANCELING) {
        report(r, m->state, NULL);
    }
}

static void on_queue(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what;
    taskmanager *tm = ud;
    for (tm_state_msg *m = take_queue(tm), *next; m; m = next) {
        next = m->next;
        handle_msg(m);
        free(m->error);
        free(m);
    }
}

/* ---- deployment ---------------------------------------------------------------------------------- */

static int check_symbol(tm_runtime *rt, const char *name, flint_err *err) {
    if (!name || !name[0]) return FLINT_OK;
    void (*fn)(void);
    return tm_runtime_symbol(rt, name, &fn, err);
}

/* Every user function the task names must be in the artifact before it starts. */
static int resolve_symbols(const Flint__Rpc__TaskDeploymentDescriptor *d, void *dl, flint_err *err) {
    tm_runtime rt = {.dl = dl, .artifact = d->artifact_sha256};
    static const char *const params[] = {"fn", "fn.open", "fn.close", "key.selector"};
    for (size_t i = 0; i < d->vertex->n_operators; i++) {
        const Flint__Graph__OperatorDef *op = d->vertex->operators[i];
        for (size_t k = 0; k < op->n_params; k++)
            for (size_t p = 0; p < sizeof params / sizeof *params; p++)
                if (strcmp(op->params[k]->key, params[p]) == 0 && check_symbol(&rt, op->params[k]->value, err))
                    return FLINT_NOT_FOUND;
    }
    for (size_t i = 0; i < d->n_out_edges; i++)
        if (check_symbol(&rt, d->out_edges[i]->key_selector, err)) return FLINT_NOT_FOUND;
    return FLINT_OK;
}

/* ---- checkpoints (issue 6) -------------------------------------------------------------------------- */

static void reply_ack(rpc_conn *c, rpc_envelope *req);

/* Task and checkpoint threads: an acknowledgement or decline for the jobmanager. */
static void send_to_jm(void *ud, const Flint__Rpc__Envelope *env) {
    tm_task_rec *r = ud;
    tm_outbox_put(r->tm->cp_outbox, env);
}

static void on_cp_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)c, (void)reply, (void)ud;
    if (status != FLINT_OK && status != FLINT_CLOSED)
        log_warn("the jobmanager did not take a checkpoint message: %s", msg ? msg : flint_strerror(status));
}

/* The loop thread: send what a task queued. */
static void deliver_cp(void *ud, Flint__Rpc__Envelope *env) {
    taskmanager *tm = ud;
    if (!tm->jm || tm->state != TM_REGISTERED) return;
    int rc = rpc_call(tm->jm, env, config_int(tm->cfg, CFG_RPC_ASK_TIMEOUT), on_cp_reply, NULL);
    if (rc) log_warn("cannot send a checkpoint message: %s", flint_strerror(rc));
}

static void outbox_put(void *ud, const Flint__Rpc__Envelope *env) { tm_outbox_put(ud, env); }

void tm_deploy_on_checkpoint(taskmanager *tm, rpc_conn *c, rpc_envelope *env) {
    const char *exec = "", *job = "";
    int64_t id = 0;
    bool trigger = env->body_case == FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT;
    if (trigger) exec = env->trigger_checkpoint->execution_id, job = env->trigger_checkpoint->job_id,
                 id = env->trigger_checkpoint->checkpoint_id;
    else if (env->body_case == FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE)
        exec = env->notify_checkpoint_complete->execution_id;
    else
        exec = env->notify_checkpoint_aborted->execution_id;
    tm_task_rec *r = find_rec(tm, exec ? exec : "");
    reply_ack(c, env);
    if (r && r->task && !tm_task_ended(r->task)) {
        tm_task_checkpoint_message(r->task, env);
    } else if (trigger) {
        /* not there (any more): not a failure of the checkpoint that counts */
        bool early = r && !tm_task_state_is_terminal(r->state) && !r->task;
        tm_cp_decline_for(outbox_put, tm->cp_outbox, job, exec, id,
                          early ? FLINT__CHECKPOINT__FAILURE_REASON__TASK_NOT_READY
                                : FLINT__CHECKPOINT__FAILURE_REASON__TASK_CLOSING,
                          early ? "the task is not running yet" : "the task is not running");
    }
}

static void on_artifact(int status, const char *error, void *dl, void *ud) {
    tm_task_rec *r = ud;
    taskmanager *tm = r->tm;
    r->waiting_artifact = false;
    if (r->canceled) {
        finish_rec(r, TM_TASK_CANCELED, NULL);
        return;
    }
    if (status != FLINT_OK) {
        log_warn("deployment of %s failed: %s", r->tdd->execution_id, error);
        finish_rec(r, TM_TASK_FAILED, error);
        return;
    }
    flint_err err = {0};
    if (resolve_symbols(r->tdd, dl, &err)) {
        log_warn("deployment of %s failed: %s", r->tdd->execution_id, err.msg);
        finish_rec(r, TM_TASK_FAILED, err.msg);
        return;
    }
    tm_task_config cfg = {.net = tm->net, .dl = dl, .artifact = r->tdd->artifact_sha256,
                          .on_state = on_task_state, .ud = r, .config = tm->cfg, .send_to_jm = send_to_jm};
    r->task = tm_task_new(r->tdd, &cfg);
    if (tm_task_start(r->task, &err)) {
        log_error("%s", err.msg);
        finish_rec(r, TM_TASK_FAILED, err.msg);
    }
}

static int validate(taskmanager *tm, const Flint__Rpc__TaskDeploymentDescriptor *d, flint_err *err) {
    if (!d) return flint_err_set(err, FLINT_INVALID, "DeployTask without a deployment descriptor");
    if (!d->job_id[0] || strlen(d->job_id) >= sizeof tm->slots[0].job_id)
        return flint_err_set(err, FLINT_INVALID, "bad job id '%.80s'", d->job_id);
    if (!d->execution_id[0]) return flint_err_set(err, FLINT_INVALID, "the deployment has no execution id");
    if (!d->vertex || d->vertex->n_operators == 0)
        return flint_err_set(err, FLINT_INVALID, "the deployment of %s has no operators", d->execution_id);
    if (d->subtask_index < 0 || (d->vertex->parallelism > 0 && d->subtask_index >= d->vertex->parallelism))
        return flint_err_set(err, FLINT_INVALID, "subtask %d out of range for parallelism %d", d->subtask_index,
                             d->vertex->parallelism);
    if (d->slot_index < 0 || d->slot_index >= tm->num_slots)
        return flint_err_set(err, FLINT_INVALID, "slot %d out of range: this taskmanager has %d slots", d->slot_index,
                             tm->num_slots);
    const char *holder = tm->slots[d->slot_index].job_id;
    if (holder[0] && strcmp(holder, d->job_id) != 0)
        return flint_err_set(err, FLINT_STATE, "slot %d is held by job %s", d->slot_index, holder);
    if (find_rec(tm, d->execution_id))
        return flint_err_set(err, FLINT_EXISTS, "execution %s is deployed already", d->execution_id);
    if (!tm->net) return flint_err_set(err, FLINT_UNAVAILABLE, "the network stack is not up");
    return FLINT_OK;
}

static void reply_ack(rpc_conn *c, rpc_envelope *req) {
    if (!req->id) return;
    Flint__Rpc__Ack ack = FLINT__RPC__ACK__INIT;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    rpc_reply(c, req, &env);
}

void tm_deploy_on_deploy(taskmanager *tm, rpc_conn *c, rpc_envelope *env) {
    Flint__Rpc__TaskDeploymentDescriptor *d = env->deploy_task->tdd;
    flint_err err = {0};
    if (validate(tm, d, &err)) {
        log_warn("refused a deployment: %s", err.msg);
        if (env->id) rpc_reply_error(c, env, err.code, "%s", err.msg);
        return;
    }
    /* Take the descriptor out of the request (freed with it otherwise): the task keeps it. */
    env->deploy_task->tdd = NULL;
    tm_task_rec *r = XNEW(tm_task_rec);
    r->tm = tm;
    r->tdd = d;
    r->report = true;
    r->state = TM_TASK_DEPLOYING;
    r->next = tm->tasks;
    tm->tasks = r;
    snprintf(tm->slots[d->slot_index].job_id, sizeof tm->slots[0].job_id, "%s", d->job_id);
    log_info("deploying %s (%d/%d) of job %s, execution %s, slot %d", d->vertex->name, d->subtask_index + 1,
             d->vertex->parallelism, d->job_id, d->execution_id, d->slot_index);
    reply_ack(c, env);
    report(r, TM_TASK_DEPLOYING, NULL);
    r->waiting_artifact = true;
    /* May complete (and even free r) before it returns. */
    tm_artifacts_acquire(tm->artifacts, tm->jm, config_int(tm->cfg, CFG_RPC_ASK_TIMEOUT), d->job_id,
                         d->artifact_sha256, on_artifact, r);
}

/* Cancel one task: its thread (which reports CANCELED when it stops) or, before it has one,
 * at once. Returns whether this asked it to stop (false: it is ending or asked already). */
static bool cancel_rec(tm_task_rec *r) {
    if (tm_task_state_is_terminal(r->state) || r->canceled || r->cancel_sent) return false;
    if (r->task) {
        if (tm_task_ended(r->task)) return false; /* its end is in the queue */
        r->cancel_sent = true;
        report(r, TM_TASK_CANCELING, NULL);
        tm_task_cancel(r->task);
        return true;
    }
    /* Still waiting for the artifact: done now; the record goes when the fetch completes. */
    r->canceled = true;
    report(r, TM_TASK_CANCELING, NULL);
    report(r, TM_TASK_CANCELED, NULL);
    return true;
}

void tm_deploy_on_cancel(taskmanager *tm, rpc_conn *c, rpc_envelope *env) {
    const char *id = env->cancel_task->execution_id;
    tm_task_rec *r = find_rec(tm, id);
    if (r) {
        log_info("canceling %s (%s)", r->task ? tm_task_name(r->task) : r->tdd->vertex->name, id);
        cancel_rec(r);
    }
    reply_ack(c, env);
}

void tm_deploy_on_release(taskmanager *tm, rpc_conn *c, rpc_envelope *env) {
    const char *job = env->release_job->job_id;
    int n = 0;
    for (tm_task_rec *r = tm->tasks; r; r = r->next)
        if (strcmp(r->tdd->job_id, job) == 0) n += cancel_rec(r);
    for (int i = 0; i < tm->num_slots; i++)
        if (strcmp(tm->slots[i].job_id, job) == 0) tm->slots[i].job_id[0] = '\0';
    tm_artifacts_release_job(tm->artifacts, job);
    if (tm->net) tm_net_release_job(tm->net, job);
    log_info("released job %s%s", job, n ? " (canceling its remaining tasks)" : "");
    reply_ack(c, env);
}

void tm_deploy_jm_lost(taskmanager *tm, const char *reason) {
    int n = 0;
    for (tm_task_rec *r = tm->tasks; r; r = r->next) {
        r->report = false;
        n += cancel_rec(r);
    }
    /* Every job this taskmanager knows: in a slot, or with a task left. */
    for (int i = 0; i < tm->num_slots; i++)
        if (tm->slots[i].job_id[0] && tm->net) tm_net_release_job(tm->net, tm->slots[i].job_id);
    for (tm_task_rec *r = tm->tasks; r; r = r->next)
        if (tm->net) tm_net_release_job(tm->net, r->tdd->job_id);
    for (int i = 0; i < tm->num_slots; i++) tm->slots[i].job_id[0] = '\0';
    if (tm->artifacts) tm_artifacts_release_all(tm->artifacts);
    if (n) log_warn("canceling %d task%s: the jobmanager was lost (%s)", n, n == 1 ? "" : "s", reason);
}

/* ---- heartbeats ------------------------------------------------------------------------------------ */

void tm_deploy_heartbeat(taskmanager *tm, Flint__Rpc__Heartbeat *hb) {
    Flint__Rpc__SlotStatus *slots = xcalloc((size_t)tm->num_slots, sizeof *slots);
    hb->slots = xcalloc((size_t)tm->num_slots, sizeof *hb->slots);
    hb->n_slots = (size_t)tm->num_slots;
    for (int i = 0; i < tm->num_slots; i++) {
        flint__rpc__slot_status__init(&slots[i]);
        slots[i].index = (uint32_t)i;
        slots[i].job_id = tm->slots[i].job_id;
        hb->slots[i] = &slots[i];
    }
    size_t n = 0;
    for (tm_task_rec *r = tm->tasks; r; r = r->next) n += r->task != NULL;
    hb->n_tasks = 0;
    hb->tasks = NULL;
    if (n == 0) return;
    Flint__Rpc__TaskMetrics *ms = xcalloc(n, sizeof *ms);   /* freed through hb->tasks[0] */
    hb->tasks = xcalloc(n, sizeof *hb->tasks);
    for (tm_task_rec *r = tm->tasks; r; r = r->next) {
        if (!r->task) continue;
        tm_task_metrics tmm;
        tm_task_metrics_get(r->task, &tmm);
        fill_metrics(&ms[hb->n_tasks], r, &tmm);
        fill_metric_dump(&ms[hb->n_tasks], r);
        hb->tasks[hb->n_tasks] = &ms[hb->n_tasks];
        hb->n_tasks++;
    }
}

void tm_deploy_metrics_tick(taskmanager *tm, int64_t now_ns) {
    for (tm_task_rec *r = tm->tasks; r; r = r->next)
        if (r->task) tm_task_metrics_update(r->task, now_ns);
}

void tm_deploy_heartbeat_free(Flint__Rpc__Heartbeat *hb) {
    for (size_t i = 0; i < hb->n_tasks; i++) {
        Flint__Rpc__TaskMetrics *m = hb->tasks[i];
        metric_proto_free(m->metrics, m->n_metrics);
    }
    if (hb->n_slots) free(hb->slots[0]);
    free(hb->slots);
    if (hb->n_tasks) free(hb->tasks[0]);
    free(hb->tasks);
    hb->slots = NULL;
    hb->tasks = NULL;
    hb->n_slots = hb->n_tasks = 0;
}

int tm_deploy_task_count(const taskmanager *tm) {
    int n = 0;
    for (const tm_task_rec *r = tm->tasks; r; r = r->next) n++;
    return n;
}

/* ---- life cycle ------------------------------------------------------------------------------------ */

int tm_deploy_init(taskmanager *tm, flint_err *err) {
    tm->slots = xcalloc((size_t)tm->num_slots, sizeof *tm->slots);
    pthread_mutex_init(&tm->q_mu, NULL);
    tm->q_ev = event_new(tm->base, -1, 0, on_queue, tm);
    tm->cp_outbox = tm_outbox_new(tm->base, deliver_cp, tm);
    tm->artifacts = tm_artifacts_new(config_str(tm->cfg, CFG_IO_TMP_DIRS), err);
    return tm->artifacts ? FLINT_OK : FLINT_IO;
}

void tm_deploy_shutdown(taskmanager *tm) {
    assert(!tm->jm);
    bool stuck = false;
    for (tm_task_rec *r = tm->tasks; r; r = r->next) {
        r->report = false;
        if (r->task) tm_task_cancel(r->task);
    }
    for (tm_task_rec *r = tm->tasks; r; r = r->next) {
        if (r->task && !tm_task_join_timeout(r->task, SHUTDOWN_JOIN_MS)) {
            log_error("%s did not stop within %d ms of its cancellation; leaving it", tm_task_name(r->task),
                      SHUTDOWN_JOIN_MS);
            stuck = true;
        }
    }
    if (stuck) return; /* its thread may still use the network and the artifact: free nothing */
    /* The threads ended: their last messages are in the queue. */
    if (tm->q_ev) on_queue(-1, 0, tm);
    while (tm->tasks) finish_rec(tm->tasks, TM_TASK_CANCELED, NULL);
    if (tm->q_ev) event_free(tm->q_ev);
    tm->q_ev = NULL;
    tm_outbox_free(tm->cp_outbox);
    tm->cp_outbox = NULL;
    pthread_mutex_destroy(&tm->q_mu);
    if (tm->net) tm_net_free(tm->net);
    tm->net = NULL;
    tm_artifacts_free(tm->artifacts);
    tm->artifacts = NULL;
    free(tm->slots);
    tm->slots = NULL;
}

/* The job registry and the routing of job events (see jm_dispatcher.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "dispatcher"
#include "jm_dispatcher.h"
#include "util/alloc.h"
#include "util/log.h"

struct jm_dispatcher {
    jm_rm *rm;                    /* not owned */
    jm_artifacts *artifacts;      /* not owned, may be NULL */
    jm_dispatcher_config cfg;
    jm_sched *sched;              /* owned */
    jm_job **jobs;                /* submission order (oldest first); owned */
    int n, cap;
};

/* ---- job ops: the job master's way out ---- */

static int op_cancel_task(void *ud, jm_job *job, jm_exec *ex) {
    jm_dispatcher *d = ud;
    return jm_sched_cancel_task(d->sched, job, ex);
}

static void op_terminal(void *ud, jm_job *job, jm_time now) {
    jm_dispatcher *d = ud;
    jm_sched_job_terminal(d->sched, job, now);
}

static const jm_job_ops job_ops = {.cancel_task = op_cancel_task, .terminal = op_terminal};

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
    for (int i = 0; i < d->n; i++) jm_job_free(d->jobs[i]);
    free(d->jobs);
    jm_sched_free(d->sched);
    free(d);
}

jm_sched *jm_dispatcher_sched(jm_dispatcher *d) { return d->sched; }

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
    jm_job *job = jm_job_new(copy_graph(graph), d->cfg.default_max_parallelism, now);
    jm_job_set_ops(job, &job_ops, d, d->cfg.ask_timeout_ms);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->jobs = xrealloc(d->jobs, (size_t)d->cap * sizeof *d->jobs);
    }
    d->jobs[d->n++] = job;
    log_info("Submitting job %s (%s).", job->name, job->id);
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

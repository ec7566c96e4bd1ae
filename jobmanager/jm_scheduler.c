/* Slot allocation with slot sharing, deployment descriptors, deployment, cancellation and release
 * (see jm_scheduler.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "scheduler"
#include "jm_restore.h"
#include "jm_scheduler.h"
#include "util/alloc.h"
#include "util/log.h"

typedef struct waiting_job {
    jm_job *job;                  /* not owned */
    int64_t deadline_ms;          /* monotonic */
} waiting_job;

struct jm_sched {
    jm_rm *rm;                    /* not owned */
    int64_t slot_timeout_ms;
    jm_sched_transport t;
    waiting_job *waiting;         /* oldest first */
    int n_waiting, cap_waiting;
    bool in_retry;                /* jm_sched_retry is running (it is not re-entered) */
};

jm_sched *jm_sched_new(jm_rm *rm, int64_t slot_timeout_ms, const jm_sched_transport *t) {
    assert(rm && slot_timeout_ms > 0 && t);
    jm_sched *s = XNEW(jm_sched);
    s->rm = rm;
    s->slot_timeout_ms = slot_timeout_ms;
    s->t = *t;
    return s;
}

void jm_sched_free(jm_sched *s) {
    if (!s) return;
    free(s->waiting);
    free(s);
}

int jm_sched_waiting(const jm_sched *s) { return s->n_waiting; }

static void remove_waiting(jm_sched *s, int i) {
    assert(i >= 0 && i < s->n_waiting);
    memmove(&s->waiting[i], &s->waiting[i + 1], (size_t)(s->n_waiting - i - 1) * sizeof *s->waiting);
    s->n_waiting--;
}

static int find_waiting(const jm_sched *s, const jm_job *job) {
    for (int i = 0; i < s->n_waiting; i++)
        if (s->waiting[i].job == job) return i;
    return -1;
}

/* ---- deployment descriptors ------------------------------------------------------------------ */

Flint__Rpc__TaskDeploymentDescriptor *jm_tdd_build(const jm_job *job, const jm_exec *ex) {
    assert(job && ex && ex->has_location);
    const jm_vertex *v = ex->vertex;
    const Flint__Graph__JobGraph *g = job->graph;
    Flint__Rpc__TaskDeploymentDescriptor *tdd = XNEW(Flint__Rpc__TaskDeploymentDescriptor);
    flint__rpc__task_deployment_descriptor__init(tdd);
    tdd->job_id = (char *)job->id;
    tdd->job_name = job->name;
    tdd->execution_id = (char *)ex->id;
    tdd->subtask_index = ex->subtask;
    tdd->attempt = ex->attempt;
    tdd->slot_index = ex->loc.slot_index;
    tdd->vertex = (Flint__Graph__JobVertex *)v->def;
    tdd->n_in_edges = (size_t)v->n_in;
    tdd->in_edges = (Flint__Graph__JobEdge **)v->in_edges;
    tdd->n_out_edges = (size_t)v->n_out;
    tdd->out_edges = (Flint__Graph__JobEdge **)v->out_edges;
    tdd->artifact_sha256 = g->artifact_sha256 ? g->artifact_sha256 : "";
    tdd->n_config = g->n_config;
    tdd->config = g->config;
    tdd->n_params = g->n_params;
    tdd->params = g->params;
    tdd->max_parallelism = v->max_parallelism;
    tdd->buffer_timeout_ms = g->buffer_timeout_ms;
    tdd->checkpointing = (Flint__Checkpoint__TaskCheckpointConfig *)job->cp_config;
    if (job->restore)
        tdd->restore = jm_restore_task(job->restore, v->def, v->parallelism, v->max_parallelism, ex->subtask);

    char id[160];
    tdd->n_partitions = (size_t)v->n_out;
    tdd->partitions = xcalloc((size_t)v->n_out + 1, sizeof *tdd->partitions);
    for (int k = 0; k < v->n_out; k++) {
        const Flint__Graph__JobEdge *e = v->out_edges[k];
        Flint__Rpc__ResultPartitionDescriptor *p = XNEW(Flint__Rpc__ResultPartitionDescriptor);
        flint__rpc__result_partition_descriptor__init(p);
        p->edge_id = e->id;
        jm_partition_id(job->id, e->id, ex->subtask, ex->attempt, id, sizeof id);
        p->partition_id = xstrdup(id);
        p->num_subpartitions = (uint32_t)jm_edge_subpartitions(job, e);
        tdd->partitions[k] = p;
    }

    tdd->n_gates = (size_t)v->n_in;
    tdd->gates = xcalloc((size_t)v->n_in + 1, sizeof *tdd->gates);
    for (int k = 0; k < v->n_in; k++) {
        const Flint__Graph__JobEdge *e = v->in_edges[k];
        const jm_vertex *src = jm_job_vertex_by_graph_id(job, e->source_vertex);
        assert(src);
        Flint__Rpc__InputGateDescriptor *gate = XNEW(Flint__Rpc__InputGateDescriptor);
        flint__rpc__input_gate_descriptor__init(gate);
        gate->edge_id = e->id;
        gate->input_index = e->input_index;
        int *producers = xcalloc((size_t)src->parallelism, sizeof *producers);
        int sub = 0;
        int n = jm_gate_channels(job, e, ex->subtask, producers, &sub);
        gate->n_channels = (size_t)n;
        gate->channels = xcalloc((size_t)n + 1, sizeof *gate->channels);
        for (int c = 0; c < n; c++) {
            const jm_exec *pe = &src->execs[producers[c]];
            Flint__Rpc__InputChannelDescriptor *ch = XNEW(Flint__Rpc__InputChannelDescriptor);
            flint__rpc__input_channel_descriptor__init(ch);
            jm_partition_id(job->id, e->id, pe->subtask, pe->attempt, id, sizeof id);
            ch->partition_id = xstrdup(id);
            ch->subpartition = (uint32_t)sub;
            ch->producer_resource_id = (char *)pe->loc.resource_id;
            ch->host = (char *)pe->loc.host;
            ch->data_port = (uint32_t)pe->loc.data_port;
            gate->channels[c] = ch;
        }
        free(producers);
        tdd->gates[k] = gate;
    }
    return tdd;
}

void jm_tdd_free(Flint__Rpc__TaskDeploymentDescriptor *tdd) {
    if (!tdd) return;
    jm_restore_task_free(tdd->restore);
    for (size_t k = 0; k < tdd->n_partitions; k++) {
        free(tdd->partitions[k]->partition_id);
        free(tdd->partitions[k]);
    }
    free(tdd->partitions);
    for (size_t k = 0; k < tdd->n_gates; k++) {
        Flint__Rpc__InputGateDescriptor *gate = tdd->gates[k];
        for (size_t c = 0; c < gate->n_channels; c++) {
            free(gate->channels[c]->partition_id);
            free(gate->channels[c]);
        }
        free(gate->channels);
        free(gate);
    }
    free(tdd->gates);
    free(tdd);
}

/* ---- scheduling ------------------------------------------------------------------------------ */

/* Send DeployTask for every scheduled subtask, while the job still runs. */
static void deploy_all(jm_sched *s, jm_job *job, jm_time now) {
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int k = 0; k < v->parallelism; k++) {
            if (job->state != JM_JOB_RUNNING) return;
            jm_exec *ex = &v->execs[k];
            if (ex->state != JM_EXEC_SCHEDULED) continue;
            jm_job_deploying(job, ex, now);
            jm_tm *tm = jm_rm_find(s->rm, ex->loc.resource_id);
            flint_err err = {0};
            int rc;
            if (!tm || tm->lost) {
                rc = flint_err_set(&err, FLINT_UNAVAILABLE, "TaskManager %s is gone", ex->loc.resource_id);
            } else {
                Flint__Rpc__TaskDeploymentDescriptor *tdd = jm_tdd_build(job, ex);
                rc = s->t.deploy(s->t.ud, tm, job, ex, tdd, &err);
                jm_tdd_free(tdd);
            }
            if (rc) jm_job_deploy_failed(job, ex, "flint.DeploymentException", err.msg, now);
        }
    }
}

/* Take the job's slots and assign them to its subtasks; false (nothing taken) when there are not
 * enough free slots. */
static bool take_slots(jm_sched *s, jm_job *job) {
    int n = job->slots_needed;
    jm_slot_ref *refs = xcalloc((size_t)n, sizeof *refs);
    if (jm_rm_allocate(s->rm, job->id, n, refs) != 0) {
        free(refs);
        return false;
    }
    for (int k = 0; k < n; k++) {
        jm_location loc = {0};
        snprintf(loc.resource_id, sizeof loc.resource_id, "%s", refs[k].tm->resource_id);
        snprintf(loc.host, sizeof loc.host, "%s", refs[k].tm->host);
        loc.data_port = refs[k].tm->data_port;
        loc.slot_index = refs[k].index;
        jm_job_assign_slot(job, k, &loc);
    }
    free(refs);
    log_info("Job %s (%s) got its %d slot%s; deploying %d subtasks", job->name, job->id, n,
             n == 1 ? "" : "s", job->n_execs);
    return true;
}

void jm_sched_schedule(jm_sched *s, jm_job *job, jm_time now) {
    assert(job->state == JM_JOB_CREATED || job->state == JM_JOB_RESTARTING);
    jm_job_start(job, now);
    if (take_slots(s, job)) {
        deploy_all(s, job, now);
        return;
    }
    log_info("Job %s (%s) needs %d slots, the cluster has %d (%d free): waiting up to %lld ms "
             "(slot.request.timeout)", job->name, job->id, job->slots_needed,
             jm_rm_slots_total(s->rm), jm_rm_slots_free(s->rm), (long long)s->slot_timeout_ms);
    if (s->n_waiting == s->cap_waiting) {
        s->cap_waiting = s->cap_waiting ? 2 * s->cap_waiting : 8;
        s->waiting = xrealloc(s->waiting, (size_t)s->cap_waiting * sizeof *s->waiting);
    }
    s->waiting[s->n_waiting].job = job;
    s->waiting[s->n_waiting].deadline_ms = now.mono_ms + s->slot_timeout_ms;
    s->n_waiting++;
}

void jm_sched_retry(jm_sched *s, jm_time now) {
    if (s->in_retry) return;   /* the running retry rescans until nothing fits */
    s->in_retry = true;
    for (bool progress = true; progress;) {
        progress = false;
        for (int i = 0; i < s->n_waiting; i++) {
            jm_job *job = s->waiting[i].job;
            if (!take_slots(s, job)) continue;
            remove_waiting(s, i);
            deploy_all(s, job, now);
            progress = true;
            break;   /* deploying may have changed the list: scan again */
        }
    }
    s->in_retry = false;
}

void jm_sched_tick(jm_sched *s, jm_time now) {
    for (int i = 0; i < s->n_waiting;) {
        if (now.mono_ms < s->waiting[i].deadline_ms) {
            i++;
            continue;
        }
        jm_job *job = s->waiting[i].job;
        remove_waiting(s, i);
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Could not acquire the minimum required resources: the job needs %d slots, the "
                 "cluster has %d (%d free)", job->slots_needed, jm_rm_slots_total(s->rm),
                 jm_rm_slots_free(s->rm));
        jm_job_fail(job, "flint.NoResourceAvailableException", msg, now);
        i = 0;   /* failing may have changed the list */
    }
}

int jm_sched_cancel_task(jm_sched *s, jm_job *job, jm_exec *ex) {
    jm_tm *tm = jm_rm_find(s->rm, ex->loc.resource_id);
    if (!tm || tm->lost) return FLINT_UNAVAILABLE;
    return s->t.cancel(s->t.ud, tm, job, ex);
}

void jm_sched_release_job(jm_sched *s, jm_job *job) {
    int w = find_waiting(s, job);
    if (w >= 0) remove_waiting(s, w);
    for (int i = 0, n = jm_rm_count(s->rm); i < n; i++) {
        jm_tm *tm = jm_rm_get(s->rm, i);
        if (tm->lost) continue;
        bool holds = false;
        for (int k = 0; k < tm->num_slots && !holds; k++) holds = strcmp(tm->slot_job[k], job->id) == 0;
        if (holds && s->t.release) s->t.release(s->t.ud, tm, job->id);
    }
    int freed = jm_rm_release_job(s->rm, job->id);
    log_info("Job %s (%s) restarts: released %d slot%s", job->name, job->id, freed, freed == 1 ? "" : "s");
}

void jm_sched_job_terminal(jm_sched *s, jm_job *job, jm_time now) {
    int w = find_waiting(s, job);
    if (w >= 0) remove_waiting(s, w);
    for (int i = 0, n = jm_rm_count(s->rm); i < n; i++) {
        jm_tm *tm = jm_rm_get(s->rm, i);
        if (tm->lost) continue;
        bool holds = false;
        for (int k = 0; k < tm->num_slots && !holds; k++) holds = strcmp(tm->slot_job[k], job->id) == 0;
        if (holds && s->t.release) s->t.release(s->t.ud, tm, job->id);
    }
    int freed = jm_rm_release_job(s->rm, job->id);
    log_info("Job %s (%s) is %s: released %d slot%s", job->name, job->id, jm_job_state_name(job->state),
             freed, freed == 1 ? "" : "s");
    jm_sched_retry(s, now);
}

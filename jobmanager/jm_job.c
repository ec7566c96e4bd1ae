/* The job master: execution graph, job state machine, task tracking, exceptions (see jm_job.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_MODULE "job"
#include "graph/graph.h"
#include "jm_job.h"
#include "jm_restore.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define JM_MAX_PARALLELISM 32768       /* Flink's upper bound of max parallelism */
#define JM_MAX_SUBTASKS 100000         /* a sanity bound on one job's subtasks */
#define JM_DEFAULT_JOB_NAME "Flint Streaming Job"

/* ---- states ---------------------------------------------------------------------------------- */

static const char *const job_state_names[] = {
#define JM_X_(s) #s,
    JM_JOB_STATES(JM_X_)
#undef JM_X_
};
static const char *const exec_state_names[] = {
#define JM_X_(s) #s,
    JM_EXEC_STATES(JM_X_)
#undef JM_X_
};

const char *jm_job_state_name(jm_job_state s) {
    return (unsigned)s < JM_JOB_STATE_COUNT ? job_state_names[s] : "UNKNOWN";
}

const char *jm_exec_state_name(jm_exec_state s) {
    return (unsigned)s < JM_EXEC_STATE_COUNT ? exec_state_names[s] : "UNKNOWN";
}

int jm_exec_state_parse(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < JM_EXEC_STATE_COUNT; i++)
        if (strcmp(s, exec_state_names[i]) == 0) return i;
    return -1;
}

bool jm_job_state_terminal(jm_job_state s) {
    return s == JM_JOB_FINISHED || s == JM_JOB_FAILED || s == JM_JOB_CANCELED || s == JM_JOB_SUSPENDED;
}

bool jm_exec_state_terminal(jm_exec_state s) {
    return s == JM_EXEC_FINISHED || s == JM_EXEC_FAILED || s == JM_EXEC_CANCELED;
}

/* How far a task got on its way to RUNNING: updates never move a task backwards. */
static int progress_rank(jm_exec_state s) {
    switch (s) {
    case JM_EXEC_CREATED: return 0;
    case JM_EXEC_SCHEDULED: return 1;
    case JM_EXEC_DEPLOYING: return 2;
    case JM_EXEC_INITIALIZING: return 3;
    case JM_EXEC_RUNNING: return 4;
    default: return 5;
    }
}

jm_time jm_time_now(void) {
    jm_time t = {time_wall_ms(), time_mono_ms()};
    return t;
}

/* ---- validation ------------------------------------------------------------------------------ */

static bool is_lower_hex(const char *s, size_t len) {
    if (!s || strlen(s) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static int find_vertex_index(const Flint__Graph__JobGraph *g, int id) {
    for (size_t i = 0; i < g->n_vertices; i++)
        if (g->vertices[i]->id == id) return (int)i;
    return -1;
}

static const char *vname(const Flint__Graph__JobVertex *v) {
    return v->name && v->name[0] ? v->name : "(unnamed)";
}

static int effective_max_parallelism(const Flint__Graph__JobGraph *g, const Flint__Graph__JobVertex *v,
                                     int default_maxp) {
    if (v->max_parallelism > 0) return v->max_parallelism;
    if (g->max_parallelism > 0) return g->max_parallelism;
    return default_maxp;
}

/* Kahn's algorithm over vertex indexes: false when the edges form a cycle. */
static bool is_acyclic(const Flint__Graph__JobGraph *g) {
    size_t n = g->n_vertices;
    int *indeg = xcalloc(n, sizeof *indeg), *queue = xcalloc(n, sizeof *queue);
    for (size_t e = 0; e < g->n_edges; e++) indeg[find_vertex_index(g, g->edges[e]->target_vertex)]++;
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0) queue[tail++] = (int)i;
    while (head < tail) {
        int v = queue[head++];
        for (size_t e = 0; e < g->n_edges; e++) {
            if (g->edges[e]->source_vertex != g->vertices[v]->id) continue;
            int t = find_vertex_index(g, g->edges[e]->target_vertex);
            if (--indeg[t] == 0) queue[tail++] = t;
        }
    }
    free(indeg);
    free(queue);
    return tail == n;
}

int jm_job_validate(const Flint__Graph__JobGraph *g, int default_maxp, flint_err *err) {
    if (!g) return flint_err_set(err, FLINT_INVALID, "The submission carries no job graph");
    if (!is_lower_hex(g->job_id, 32))
        return flint_err_set(err, FLINT_INVALID,
                             "Invalid job id '%.80s': expected 32 lower-case hex digits",
                             g->job_id ? g->job_id : "");
    if (g->n_vertices == 0) return flint_err_set(err, FLINT_INVALID, "The job graph has no vertices");
    if (g->max_parallelism < 0 || g->max_parallelism > JM_MAX_PARALLELISM)
        return flint_err_set(err, FLINT_INVALID, "The job's max parallelism %d is out of range 1..%d",
                             g->max_parallelism, JM_MAX_PARALLELISM);
    if (g->artifact_sha256 && g->artifact_sha256[0] && !is_lower_hex(g->artifact_sha256, 64))
        return flint_err_set(err, FLINT_INVALID,
                             "Invalid artifact_sha256 '%.80s': expected 64 lower-case hex digits",
                             g->artifact_sha256);
    long subtasks = 0;
    for (size_t i = 0; i < g->n_vertices; i++) {
        const Flint__Graph__JobVertex *v = g->vertices[i];
        if (find_vertex_index(g, v->id) != (int)i)
            return flint_err_set(err, FLINT_INVALID, "Two vertices of the job graph have the id %d", v->id);
        if (v->n_operators == 0)
            return flint_err_set(err, FLINT_INVALID, "Vertex '%s' (id %d) has no operators", vname(v), v->id);
        int maxp = effective_max_parallelism(g, v, default_maxp);
        if (maxp < 1 || maxp > JM_MAX_PARALLELISM)
            return flint_err_set(err, FLINT_INVALID,
                                 "Vertex '%s' (id %d) has max parallelism %d; expected 1..%d",
                                 vname(v), v->id, maxp, JM_MAX_PARALLELISM);
        if (v->parallelism < 1 || v->parallelism > maxp)
            return flint_err_set(err, FLINT_INVALID,
                                 "Vertex '%s' (id %d) has parallelism %d; expected 1..%d (its max "
                                 "parallelism)", vname(v), v->id, v->parallelism, maxp);
        subtasks += v->parallelism;
    }
    if (subtasks > JM_MAX_SUBTASKS)
        return flint_err_set(err, FLINT_INVALID, "The job has %ld subtasks; at most %d are supported",
                             subtasks, JM_MAX_SUBTASKS);
    for (size_t i = 0; i < g->n_edges; i++) {
        const Flint__Graph__JobEdge *e = g->edges[i];
        for (size_t j = 0; j < i; j++)
            if (g->edges[j]->id == e->id)
                return flint_err_set(err, FLINT_INVALID, "Two edges of the job graph have the id %d", e->id);
        int s = find_vertex_index(g, e->source_vertex), t = find_vertex_index(g, e->target_vertex);
        if (s < 0)
            return flint_err_set(err, FLINT_INVALID, "Edge %d comes from vertex %d, which does not exist",
                                 e->id, e->source_vertex);
        if (t < 0)
            return flint_err_set(err, FLINT_INVALID, "Edge %d goes to vertex %d, which does not exist",
                                 e->id, e->target_vertex);
        const Flint__Graph__JobVertex *sv = g->vertices[s], *tv = g->vertices[t];
        if (e->source_operator < 0 || (size_t)e->source_operator >= sv->n_operators)
            return flint_err_set(err, FLINT_INVALID,
                                 "Edge %d starts at operator %d of vertex '%s', which has %zu operators",
                                 e->id, e->source_operator, vname(sv), sv->n_operators);
        if (e->input_index < 0)
            return flint_err_set(err, FLINT_INVALID, "Edge %d has input index %d", e->id, e->input_index);
        if (strcmp(graph_partitioner_name(e->partitioner), "UNKNOWN") == 0)
            return flint_err_set(err, FLINT_INVALID, "Edge %d has an unknown partitioner (%d)", e->id,
                                 (int)e->partitioner);
        if (e->partitioner == FLINT__GRAPH__PARTITIONER__FORWARD && sv->parallelism != tv->parallelism)
            return flint_err_set(err, FLINT_INVALID,
                                 "Forward edge %d connects '%s' (parallelism %d) and '%s' (parallelism "
                                 "%d): a forward edge needs equal parallelism",
                                 e->id, vname(sv), sv->parallelism, vname(tv), tv->parallelism);
        if (e->partitioner == FLINT__GRAPH__PARTITIONER__HASH && e->n_key_fields == 0 &&
            !(e->key_selector && e->key_selector[0]))
            return flint_err_set(err, FLINT_INVALID, "Hash edge %d from '%s' to '%s' has no key", e->id,
                                 vname(sv), vname(tv));
    }
    if (!is_acyclic(g)) return flint_err_set(err, FLINT_INVALID, "The job graph has a cycle");
    return 0;
}

/* ---- creation -------------------------------------------------------------------------------- */

static int cmp_edge_id(const void *a, const void *b) {
    const Flint__Graph__JobEdge *x = *(const Flint__Graph__JobEdge *const *)a;
    const Flint__Graph__JobEdge *y = *(const Flint__Graph__JobEdge *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

void jm_vertex_rest_id(const char *job_id, int graph_vertex_id, char out[33]) {
    snprintf(out, 33, "%.24s%08" PRIx32, job_id, (uint32_t)graph_vertex_id);
}

static int group_of(jm_job *job, const char *name) {
    if (!name || !name[0]) name = "default";
    for (int i = 0; i < job->n_groups; i++)
        if (strcmp(job->group_names[i], name) == 0) return i;
    job->group_names = xrealloc(job->group_names, (size_t)(job->n_groups + 1) * sizeof *job->group_names);
    job->group_slots = xrealloc(job->group_slots, (size_t)(job->n_groups + 1) * sizeof *job->group_slots);
    job->group_base = xrealloc(job->group_base, (size_t)(job->n_groups + 1) * sizeof *job->group_base);
    job->group_names[job->n_groups] = xstrdup(name);
    job->group_slots[job->n_groups] = 0;
    job->group_base[job->n_groups] = 0;
    return job->n_groups++;
}

jm_job *jm_job_new(Flint__Graph__JobGraph *g, int default_maxp, jm_time now) {
    assert(g && g->n_vertices > 0);
    jm_job *job = XNEW(jm_job);
    snprintf(job->id, sizeof job->id, "%s", g->job_id);
    job->name = xstrdup(g->name && g->name[0] ? g->name : JM_DEFAULT_JOB_NAME);
    job->graph = g;
    job->state = JM_JOB_CREATED;
    job->start_time = job->last_modification = now.wall_ms;
    job->timestamps[JM_JOB_INITIALIZING] = job->timestamps[JM_JOB_CREATED] = now.wall_ms;
    job->end_time = -1;
    job->root_exception = -1;
    job->cancel_timeout_ms = 10000;
    job->default_max_parallelism = default_maxp;
    job->n_vertices = (int)g->n_vertices;
    job->vertices = xcalloc(g->n_vertices, sizeof *job->vertices);
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        const Flint__Graph__JobVertex *d = g->vertices[i];
        v->def = d;
        v->index = i;
        jm_vertex_rest_id(job->id, d->id, v->id);
        v->name = d->name && d->name[0] ? xstrdup(d->name) : xasprintf("Vertex %d", d->id);
        v->parallelism = d->parallelism;
        v->max_parallelism = effective_max_parallelism(g, d, default_maxp);
        v->group = group_of(job, d->slot_sharing_group);
        if (job->group_slots[v->group] < v->parallelism) job->group_slots[v->group] = v->parallelism;
        v->in_edges = xcalloc(g->n_edges + 1, sizeof *v->in_edges);
        v->out_edges = xcalloc(g->n_edges + 1, sizeof *v->out_edges);
        for (size_t e = 0; e < g->n_edges; e++) {
            if (g->edges[e]->target_vertex == d->id) v->in_edges[v->n_in++] = g->edges[e];
            if (g->edges[e]->source_vertex == d->id) v->out_edges[v->n_out++] = g->edges[e];
        }
        qsort(v->in_edges, (size_t)v->n_in, sizeof *v->in_edges, cmp_edge_id);
        qsort(v->out_edges, (size_t)v->n_out, sizeof *v->out_edges, cmp_edge_id);
    }
    for (int k = 0; k < job->n_groups; k++) {
        job->group_base[k] = job->slots_needed;
        job->slots_needed += job->group_slots[k];
    }
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        v->execs = xcalloc((size_t)v->parallelism, sizeof *v->execs);
        for (int s = 0; s < v->parallelism; s++) {
            jm_exec *ex = &v->execs[s];
            ex->vertex = v;
            ex->subtask = s;
            ex->attempt = 0;
            ex->job_slot = job->group_base[v->group] + s;
            str_random_hex(ex->id, 16);
            ex->state = JM_EXEC_CREATED;
            ex->timestamps[JM_EXEC_CREATED] = now.wall_ms;
            job->n_execs++;
        }
    }
    log_info("Job %s (%s) created: %d vertices, %d subtasks, %d slots needed", job->name, job->id,
             job->n_vertices, job->n_execs, job->slots_needed);
    return job;
}

void jm_job_free(jm_job *job) {
    if (!job) return;
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) free(v->execs[s].failure);
        free(v->execs);
        free(v->in_edges);
        free(v->out_edges);
        free((char *)v->name);
    }
    free(job->vertices);
    for (int k = 0; k < job->n_groups; k++) free(job->group_names[k]);
    free(job->group_names);
    free(job->group_slots);
    free(job->group_base);
    for (int i = 0; i < job->n_exceptions; i++) {
        jm_exception *x = &job->exceptions[i];
        free(x->name);
        free(x->message);
        free(x->task);
        free(x->location);
        free(x->resource_id);
    }
    free(job->exceptions);
    jm_restore_free(job->restore);
    free(job->name);
    if (job->graph) flint__graph__job_graph__free_unpacked(job->graph, NULL);
    free(job);
}

void jm_job_set_ops(jm_job *job, const jm_job_ops *ops, void *ud, int64_t cancel_timeout_ms) {
    assert(job && cancel_timeout_ms > 0);
    if (ops) job->ops = *ops;
    job->ops_ud = ud;
    job->cancel_timeout_ms = cancel_timeout_ms;
}

/* ---- names ----------------------------------------------------------------------------------- */

void jm_exec_task_name(const jm_exec *ex, char *buf, size_t len) {
    snprintf(buf, len, "%s (%d/%d)", ex->vertex->name, ex->subtask + 1, ex->vertex->parallelism);
}

void jm_exec_location(const jm_exec *ex, char *buf, size_t len) {
    if (!ex->has_location) {
        snprintf(buf, len, "(unassigned)");
        return;
    }
    bool v6 = strchr(ex->loc.host, ':') != NULL;
    snprintf(buf, len, "%s%s%s:%d", v6 ? "[" : "", ex->loc.host, v6 ? "]" : "", ex->loc.data_port);
}

const char *jm_backpressure_level(double ratio) {
    if (ratio <= 0.10) return "ok";
    if (ratio <= 0.5) return "low";
    return "high";
}

/* ---- state changes --------------------------------------------------------------------------- */

static void job_set_state_(jm_job *job, jm_job_state st, jm_time now);

static void job_set_state(jm_job *job, jm_job_state st, jm_time now) {
    jm_job_state old = job->state;
    job_set_state_(job, st, now);
    if (old != st && job->ops.state_changed) job->ops.state_changed(job->ops_ud, job, old, now);
}

static void job_set_state_(jm_job *job, jm_job_state st, jm_time now) {
    if (job->state == st) return;
    log_info("Job %s (%s) switched from state %s to %s.", job->name, job->id,
             jm_job_state_name(job->state), jm_job_state_name(st));
    job->state = st;
    job->timestamps[st] = now.wall_ms;
    job->last_modification = now.wall_ms;
    if (jm_job_state_terminal(st)) job->end_time = now.wall_ms;
}

static void exec_set_state(jm_job *job, jm_exec *ex, jm_exec_state st, jm_time now) {
    if (ex->state == st) return;
    char task[300], loc[300];
    jm_exec_task_name(ex, task, sizeof task);
    jm_exec_location(ex, loc, sizeof loc);
    log_info("%s (%s) switched from %s to %s%s%s.", task, ex->id, jm_exec_state_name(ex->state),
             jm_exec_state_name(st), ex->has_location ? " on " : "", ex->has_location ? loc : "");
    jm_exec_state old = ex->state;
    ex->state = st;
    ex->timestamps[st] = now.wall_ms;
    job->last_modification = now.wall_ms;
    if (job->ops.task_state_changed) job->ops.task_state_changed(job->ops_ud, job, ex, old, now);
}

static int add_exception(jm_job *job, const char *name, const char *message, const char *task,
                         const char *location, const char *resource_id, jm_time now) {
    job->exceptions = xrealloc(job->exceptions, (size_t)(job->n_exceptions + 1) * sizeof *job->exceptions);
    jm_exception *x = &job->exceptions[job->n_exceptions];
    x->timestamp = now.wall_ms;
    x->name = xstrdup(name);
    x->message = xstrdup(message);
    x->task = task ? xstrdup(task) : NULL;
    x->location = location ? xstrdup(location) : NULL;
    x->resource_id = resource_id ? xstrdup(resource_id) : NULL;
    x->root = -1;
    return job->n_exceptions++;
}

/* Mark ex FAILED with cause and record the failure; returns its exception index. */
static int exec_fail_mark(jm_job *job, jm_exec *ex, const char *name, const char *cause, jm_time now) {
    if (!cause || !cause[0]) cause = "unknown error";
    char task[300], loc[300];
    jm_exec_task_name(ex, task, sizeof task);
    jm_exec_location(ex, loc, sizeof loc);
    free(ex->failure);
    ex->failure = xstrdup(cause);
    exec_set_state(job, ex, JM_EXEC_FAILED, now);
    char *msg = xasprintf("%s on %s: %s", task, loc, cause);
    log_warn("%s", msg);
    int idx = add_exception(job, name, msg, task, ex->has_location ? loc : NULL,
                            ex->has_location ? ex->loc.resource_id : NULL, now);
    free(msg);
    return idx;
}

/* Cancel every unfinished task: never deployed -> CANCELED; deployed -> CANCELING and CancelTask
 * (CANCELED at once when it cannot be sent). */
static void cancel_all(jm_job *job, jm_time now) {
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) {
            jm_exec *ex = &v->execs[s];
            switch (ex->state) {
            case JM_EXEC_CREATED:
            case JM_EXEC_SCHEDULED:
                exec_set_state(job, ex, JM_EXEC_CANCELED, now);
                break;
            case JM_EXEC_DEPLOYING:
            case JM_EXEC_INITIALIZING:
            case JM_EXEC_RUNNING:
                exec_set_state(job, ex, JM_EXEC_CANCELING, now);
                ex->cancel_deadline_ms = now.mono_ms + job->cancel_timeout_ms;
                if (!ex->has_location ||
                    (job->ops.cancel_task && job->ops.cancel_task(job->ops_ud, job, ex) != 0))
                    exec_set_state(job, ex, JM_EXEC_CANCELED, now);
                break;
            default:
                break;
            }
        }
    }
}

/* Exceptions not yet attached to a root failure belong to the current one. */
static void adopt_concurrent(jm_job *job) {
    for (int i = 0; i < job->n_exceptions; i++)
        if (job->exceptions[i].root < 0) job->exceptions[i].root = job->root_exception >= 0 ? job->root_exception : i;
}

/* A failure (exception idx) happened: the first one while the job runs is a root cause and
 * starts RESTARTING (when recoverable and the restart strategy allows it) or FAILING; later ones
 * are concurrent. */
static void on_failure_ex(jm_job *job, int idx, bool recoverable, jm_time now) {
    if (job->state != JM_JOB_CREATED && job->state != JM_JOB_RUNNING) {
        adopt_concurrent(job);
        return;
    }
    job->root_exception = idx;
    job->exceptions[idx].root = idx;
    adopt_concurrent(job);
    int64_t delay = 0;
    if (recoverable && job->ops.should_restart && job->ops.should_restart(job->ops_ud, job, now, &delay)) {
        job->restart_at_ms = now.mono_ms + (delay > 0 ? delay : 0);
        log_info("Job %s (%s) restarts in %lld ms.", job->name, job->id, (long long)delay);
        job_set_state(job, JM_JOB_RESTARTING, now);
    } else {
        job_set_state(job, JM_JOB_FAILING, now);
    }
    cancel_all(job, now);
}

static void on_failure(jm_job *job, int idx, jm_time now) { on_failure_ex(job, idx, true, now); }

/* Derive the job's state once every task is terminal; tell the owner when it ends. */
static void check_done(jm_job *job, jm_time now) {
    if (jm_job_state_terminal(job->state) || job->state == JM_JOB_CREATED) return;
    bool all_finished = true;
    for (int i = 0; i < job->n_vertices; i++) {
        const jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) {
            if (!jm_exec_state_terminal(v->execs[s].state)) return;
            if (v->execs[s].state != JM_EXEC_FINISHED) all_finished = false;
        }
    }
    switch (job->state) {
    case JM_JOB_RUNNING: job_set_state(job, all_finished ? JM_JOB_FINISHED : JM_JOB_FAILED, now); break;
    case JM_JOB_FAILING: job_set_state(job, JM_JOB_FAILED, now); break;
    case JM_JOB_CANCELLING: job_set_state(job, JM_JOB_CANCELED, now); break;
    default: return;
    }
    if (job->ops.terminal) job->ops.terminal(job->ops_ud, job, now);
}

/* ---- scheduling ------------------------------------------------------------------------------ */

void jm_job_start(jm_job *job, jm_time now) {
    assert(job->state == JM_JOB_CREATED || job->state == JM_JOB_RESTARTING);
    job_set_state(job, JM_JOB_RUNNING, now);
    for (int i = 0; i < job->n_vertices; i++)
        for (int s = 0; s < job->vertices[i].parallelism; s++)
            exec_set_state(job, &job->vertices[i].execs[s], JM_EXEC_SCHEDULED, now);
}

void jm_job_assign_slot(jm_job *job, int job_slot, const jm_location *loc) {
    assert(job_slot >= 0 && job_slot < job->slots_needed && loc);
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) {
            if (v->execs[s].job_slot != job_slot) continue;
            v->execs[s].loc = *loc;
            v->execs[s].has_location = true;
        }
    }
}

void jm_job_deploying(jm_job *job, jm_exec *ex, jm_time now) {
    assert(ex->state == JM_EXEC_SCHEDULED && ex->has_location);
    exec_set_state(job, ex, JM_EXEC_DEPLOYING, now);
}

/* ---- events ---------------------------------------------------------------------------------- */

int jm_job_update_task(jm_job *job, const char *exec_id, const char *state, const char *error,
                       jm_time now, flint_err *err) {
    int st = jm_exec_state_parse(state);
    if (st < 0)
        return flint_err_set(err, FLINT_INVALID, "Unknown task state '%.40s'", state ? state : "");
    jm_exec *ex = jm_job_find_exec(job, exec_id);
    if (!ex)
        return flint_err_set(err, FLINT_NOT_FOUND, "Execution %.40s of job %s not found",
                             exec_id ? exec_id : "", job->id);
    if (jm_exec_state_terminal(ex->state)) {
        log_debug("ignoring %s for %s: it is already %s", state, ex->id, jm_exec_state_name(ex->state));
        return 0;
    }
    if (ex->state == JM_EXEC_CANCELING) {
        /* We asked it to stop: however it ends, it is canceled (as Flink). */
        if (jm_exec_state_terminal(st)) {
            if (st == JM_EXEC_FAILED && error && error[0])
                log_info("%s failed while canceling: %s", ex->id, error);
            exec_set_state(job, ex, JM_EXEC_CANCELED, now);
            check_done(job, now);
        }
        return 0;
    }
    switch (st) {
    case JM_EXEC_DEPLOYING:
    case JM_EXEC_INITIALIZING:
    case JM_EXEC_RUNNING:
        if (progress_rank(st) > progress_rank(ex->state)) exec_set_state(job, ex, st, now);
        break;
    case JM_EXEC_CANCELING:
        break;   /* CANCELED (a failure: nobody asked) or FINISHED follows */
    case JM_EXEC_FINISHED:
        exec_set_state(job, ex, JM_EXEC_FINISHED, now);
        break;
    case JM_EXEC_FAILED:
        on_failure(job, exec_fail_mark(job, ex, "flint.TaskException", error, now), now);
        break;
    case JM_EXEC_CANCELED:
        on_failure(job, exec_fail_mark(job, ex, "flint.TaskException",
                                       error && error[0] ? error
                                                         : "the task was canceled on its taskmanager "
                                                           "without a cancel request", now), now);
        break;
    default:
        return flint_err_set(err, FLINT_INVALID, "A taskmanager cannot report the task state %s", state);
    }
    check_done(job, now);
    return 0;
}

void jm_job_deploy_failed(jm_job *job, jm_exec *ex, const char *name, const char *error, jm_time now) {
    if (jm_exec_state_terminal(ex->state)) return;
    if (ex->state == JM_EXEC_CANCELING)
        exec_set_state(job, ex, JM_EXEC_CANCELED, now);
    else
        on_failure(job, exec_fail_mark(job, ex, name, error, now), now);
    check_done(job, now);
}

void jm_job_cancel_failed(jm_job *job, jm_exec *ex, const char *error, jm_time now) {
    if (ex->state != JM_EXEC_CANCELING) return;
    char task[300];
    jm_exec_task_name(ex, task, sizeof task);
    log_warn("%s (%s): cancel not confirmed (%s): counting it as CANCELED", task, ex->id,
             error ? error : "?");
    exec_set_state(job, ex, JM_EXEC_CANCELED, now);
    check_done(job, now);
}

int jm_job_tm_lost(jm_job *job, const char *resource_id, const char *message, jm_time now) {
    int affected = 0, first = -1;
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) {
            jm_exec *ex = &v->execs[s];
            if (jm_exec_state_terminal(ex->state) || !ex->has_location ||
                strcmp(ex->loc.resource_id, resource_id) != 0)
                continue;
            if (ex->state == JM_EXEC_CREATED || ex->state == JM_EXEC_SCHEDULED) continue;
            affected++;
            if (ex->state == JM_EXEC_CANCELING) {
                exec_set_state(job, ex, JM_EXEC_CANCELED, now);
                continue;
            }
            int idx = exec_fail_mark(job, ex, "flint.TaskManagerLostException", message, now);
            if (first < 0) first = idx;
        }
    }
    if (first >= 0) on_failure(job, first, now);
    check_done(job, now);
    return affected;
}

void jm_job_fail(jm_job *job, const char *name, const char *message, jm_time now) {
    if (jm_job_state_terminal(job->state)) return;
    log_warn("Job %s (%s) failed: %s", job->name, job->id, message);
    int idx = add_exception(job, name, message, NULL, NULL, NULL, now);
    on_failure(job, idx, now);
    check_done(job, now);
}

void jm_job_fail_unrecoverable(jm_job *job, const char *name, const char *message, jm_time now) {
    if (jm_job_state_terminal(job->state)) return;
    log_warn("Job %s (%s) failed: %s", job->name, job->id, message);
    int idx = add_exception(job, name, message, NULL, NULL, NULL, now);
    if (job->state == JM_JOB_RESTARTING) {
        /* a restart that cannot go on: this is the end */
        job->root_exception = idx;
        job->exceptions[idx].root = idx;
        job_set_state(job, JM_JOB_FAILING, now);
        cancel_all(job, now);
    } else {
        on_failure_ex(job, idx, false, now);
    }
    check_done(job, now);
}

void jm_job_set_restore(jm_job *job, struct jm_restore *restore) {
    if (job->restore != restore) jm_restore_free(job->restore);
    job->restore = restore;
}

void jm_job_reset_for_restart(jm_job *job, struct jm_restore *restore, jm_time now) {
    assert(job->state == JM_JOB_RESTARTING);
    jm_job_set_restore(job, restore);
    job->restarts++;
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) {
            jm_exec *ex = &v->execs[s];
            assert(jm_exec_state_terminal(ex->state));
            ex->attempt++;
            str_random_hex(ex->id, 16);
            ex->state = JM_EXEC_CREATED;
            memset(ex->timestamps, 0, sizeof ex->timestamps);
            ex->timestamps[JM_EXEC_CREATED] = now.wall_ms;
            ex->has_location = false;
            memset(&ex->loc, 0, sizeof ex->loc);
            ex->cancel_deadline_ms = 0;
            ex->has_metrics = false;
            memset(&ex->metrics, 0, sizeof ex->metrics);
            free(ex->failure);
            ex->failure = NULL;
        }
    }
    job->last_modification = now.wall_ms;
}

int jm_job_cancel(jm_job *job, jm_time now, flint_err *err) {
    if (jm_job_state_terminal(job->state))
        return flint_err_set(err, FLINT_STATE, "Job %s is already %s", job->id,
                             jm_job_state_name(job->state));
    if (job->state == JM_JOB_CANCELLING) return 0;
    job_set_state(job, JM_JOB_CANCELLING, now);
    cancel_all(job, now);
    check_done(job, now);
    return 0;
}

void jm_job_tick(jm_job *job, jm_time now) {
    if (jm_job_state_terminal(job->state)) return;
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++) {
            jm_exec *ex = &v->execs[s];
            if (ex->state != JM_EXEC_CANCELING || now.mono_ms < ex->cancel_deadline_ms) continue;
            char task[300];
            jm_exec_task_name(ex, task, sizeof task);
            log_warn("%s (%s) did not confirm its cancellation within %lld ms (rpc.ask.timeout): "
                     "counting it as CANCELED", task, ex->id, (long long)job->cancel_timeout_ms);
            exec_set_state(job, ex, JM_EXEC_CANCELED, now);
        }
    }
    check_done(job, now);
    if (job->state == JM_JOB_RESTARTING && now.mono_ms >= job->restart_at_ms && job->ops.restart) {
        for (int i = 0; i < job->n_vertices; i++)
            for (int s = 0; s < job->vertices[i].parallelism; s++)
                if (!jm_exec_state_terminal(job->vertices[i].execs[s].state)) return;
        job->ops.restart(job->ops_ud, job, now);
    }
}

void jm_job_set_metrics(jm_job *job, jm_exec *ex, const jm_task_metrics *m) {
    (void)job;
    ex->metrics = *m;
    ex->has_metrics = true;
}

/* ---- queries --------------------------------------------------------------------------------- */

jm_exec *jm_job_find_exec(const jm_job *job, const char *exec_id) {
    if (!exec_id) return NULL;
    for (int i = 0; i < job->n_vertices; i++) {
        jm_vertex *v = &job->vertices[i];
        for (int s = 0; s < v->parallelism; s++)
            if (strcmp(v->execs[s].id, exec_id) == 0) return &v->execs[s];
    }
    return NULL;
}

jm_vertex *jm_job_vertex_by_graph_id(const jm_job *job, int id) {
    for (int i = 0; i < job->n_vertices; i++)
        if (job->vertices[i].def->id == id) return &job->vertices[i];
    return NULL;
}

jm_vertex *jm_job_find_vertex(const jm_job *job, const char *id) {
    if (!id || !id[0]) return NULL;
    if (strlen(id) == 32) {
        for (int i = 0; i < job->n_vertices; i++)
            if (strcasecmp(job->vertices[i].id, id) == 0) return &job->vertices[i];
        return NULL;
    }
    int64_t n;
    if (strlen(id) > 11 || str_parse_int(id, &n) != 0 || n < INT32_MIN || n > INT32_MAX) return NULL;
    for (const char *p = id; *p; p++)
        if ((*p < '0' || *p > '9') && *p != '-') return NULL;
    return jm_job_vertex_by_graph_id(job, (int)n);
}

void jm_vertex_state_counts(const jm_vertex *v, int counts[JM_EXEC_STATE_COUNT]) {
    memset(counts, 0, JM_EXEC_STATE_COUNT * sizeof counts[0]);
    for (int s = 0; s < v->parallelism; s++) counts[v->execs[s].state]++;
}

void jm_job_state_counts(const jm_job *job, int counts[JM_EXEC_STATE_COUNT]) {
    memset(counts, 0, JM_EXEC_STATE_COUNT * sizeof counts[0]);
    for (int i = 0; i < job->n_vertices; i++)
        for (int s = 0; s < job->vertices[i].parallelism; s++) counts[job->vertices[i].execs[s].state]++;
}

bool jm_job_is_terminal(const jm_job *job) { return jm_job_state_terminal(job->state); }

jm_exec_state jm_vertex_aggregate_state(const int counts[JM_EXEC_STATE_COUNT], int parallelism) {
    if (counts[JM_EXEC_FAILED] > 0) return JM_EXEC_FAILED;
    if (counts[JM_EXEC_CANCELING] > 0) return JM_EXEC_CANCELING;
    if (counts[JM_EXEC_CANCELED] > 0) return JM_EXEC_CANCELED;
    if (counts[JM_EXEC_INITIALIZING] > 0) return JM_EXEC_INITIALIZING;
    if (counts[JM_EXEC_RUNNING] > 0) return JM_EXEC_RUNNING;
    if (counts[JM_EXEC_FINISHED] > 0)
        return counts[JM_EXEC_FINISHED] == parallelism ? JM_EXEC_FINISHED : JM_EXEC_RUNNING;
    return JM_EXEC_CREATED;
}

void jm_vertex_io(const jm_vertex *v, jm_task_metrics *sum) {
    memset(sum, 0, sizeof *sum);
    for (int s = 0; s < v->parallelism; s++) {
        const jm_exec *ex = &v->execs[s];
        if (!ex->has_metrics) continue;
        sum->records_in += ex->metrics.records_in;
        sum->records_out += ex->metrics.records_out;
        sum->bytes_in += ex->metrics.bytes_in;
        sum->bytes_out += ex->metrics.bytes_out;
        sum->back_pressured_ms += ex->metrics.back_pressured_ms;
        sum->busy_ms += ex->metrics.busy_ms;
        sum->idle_ms += ex->metrics.idle_ms;
    }
}

/* ---- execution graph expansion --------------------------------------------------------------- */

void jm_partition_id(const char *job_id, int edge_id, int producer_subtask, int attempt, char *buf,
                     size_t len) {
    snprintf(buf, len, "%s.%d.%d.%d", job_id, edge_id, producer_subtask, attempt);
}

int jm_edge_subpartitions(const jm_job *job, const Flint__Graph__JobEdge *e) {
    if (e->partitioner == FLINT__GRAPH__PARTITIONER__FORWARD) return 1;
    const jm_vertex *t = jm_job_vertex_by_graph_id(job, e->target_vertex);
    assert(t);
    return t->parallelism;
}

int jm_gate_channels(const jm_job *job, const Flint__Graph__JobEdge *e, int consumer_subtask,
                     int *producers, int *subpartition) {
    const jm_vertex *src = jm_job_vertex_by_graph_id(job, e->source_vertex);
    assert(src && consumer_subtask >= 0);
    if (e->partitioner == FLINT__GRAPH__PARTITIONER__FORWARD) {
        assert(consumer_subtask < src->parallelism);
        producers[0] = consumer_subtask;
        *subpartition = 0;
        return 1;
    }
    for (int i = 0; i < src->parallelism; i++) producers[i] = i;
    *subpartition = consumer_subtask;
    return src->parallelism;
}

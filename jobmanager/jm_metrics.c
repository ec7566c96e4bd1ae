/* The jobmanager's metric store and the metrics it computes itself (see jm_metrics.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "metrics"
#include "jm_metrics.h"
#include "metrics/metrics_proto.h"
#include "util/alloc.h"
#include "util/log.h"

struct jm_metric_store {
    jm_task_entry **tasks;
    int n_tasks, cap_tasks;
    jm_tm_entry **tms;
    int n_tms, cap_tms;
};

jm_metric_store *jm_metrics_new(void) { return XNEW(jm_metric_store); }

static void task_free(jm_task_entry *e) {
    metric_set_clear(&e->metrics);
    free(e);
}

void jm_metrics_free(jm_metric_store *s) {
    if (!s) return;
    for (int i = 0; i < s->n_tasks; i++) task_free(s->tasks[i]);
    for (int i = 0; i < s->n_tms; i++) {
        metric_set_clear(&s->tms[i]->metrics);
        free(s->tms[i]);
    }
    free(s->tasks);
    free(s->tms);
    free(s);
}

static void task_remove_at(jm_metric_store *s, int i) {
    task_free(s->tasks[i]);
    s->tasks[i] = s->tasks[--s->n_tasks];
}

void jm_metrics_task(jm_metric_store *s, const char *resource_id, const Flint__Rpc__TaskMetrics *m, int64_t now_ms) {
    if (!m || !m->execution_id || strlen(m->execution_id) != 32 || !m->job_id) return;
    jm_task_entry *e = NULL;
    for (int i = 0; i < s->n_tasks;) {
        jm_task_entry *x = s->tasks[i];
        if (strcmp(x->exec_id, m->execution_id) == 0) {
            e = x;
            i++;
        } else if (x->vertex_id == m->vertex_id && x->subtask == m->subtask && strcmp(x->job_id, m->job_id) == 0 &&
                   x->attempt < m->attempt) {
            task_remove_at(s, i);   /* an earlier attempt of the same subtask */
        } else {
            i++;
        }
    }
    if (!e) {
        if (s->n_tasks >= JM_METRICS_MAX_TASKS) {
            int oldest = 0;
            for (int i = 1; i < s->n_tasks; i++)
                if (s->tasks[i]->updated_ms < s->tasks[oldest]->updated_ms) oldest = i;
            task_remove_at(s, oldest);
        }
        if (s->n_tasks == s->cap_tasks) {
            s->cap_tasks = s->cap_tasks ? s->cap_tasks * 2 : 64;
            s->tasks = xrealloc(s->tasks, (size_t)s->cap_tasks * sizeof *s->tasks);
        }
        e = XNEW(jm_task_entry);
        snprintf(e->exec_id, sizeof e->exec_id, "%s", m->execution_id);
        snprintf(e->job_id, sizeof e->job_id, "%s", m->job_id);
        s->tasks[s->n_tasks++] = e;
    }
    snprintf(e->resource_id, sizeof e->resource_id, "%s", resource_id ? resource_id : "");
    e->vertex_id = m->vertex_id;
    e->subtask = m->subtask;
    e->attempt = m->attempt;
    e->updated_ms = now_ms;
    e->input_watermark = m->current_input_watermark;
    e->output_watermark = m->current_output_watermark;
    e->in_pool_usage = m->in_pool_usage;
    e->out_pool_usage = m->out_pool_usage;
    e->records_in_per_s = m->num_records_in_per_second;
    e->records_out_per_s = m->num_records_out_per_second;
    e->bytes_in_per_s = m->num_bytes_in_per_second;
    e->bytes_out_per_s = m->num_bytes_out_per_second;
    /* Older taskmanagers send no dump: keep the typed values only. */
    metric_set_from_proto(&e->metrics, m->metrics, m->n_metrics);
}

void jm_metrics_tm(jm_metric_store *s, const char *resource_id, const Flint__Rpc__TaskManagerMetrics *m,
                   int64_t now_ms) {
    if (!resource_id || !m) return;
    jm_tm_entry *e = NULL;
    for (int i = 0; i < s->n_tms && !e; i++)
        if (strcmp(s->tms[i]->resource_id, resource_id) == 0) e = s->tms[i];
    if (!e) {
        if (s->n_tms == s->cap_tms) {
            s->cap_tms = s->cap_tms ? s->cap_tms * 2 : 16;
            s->tms = xrealloc(s->tms, (size_t)s->cap_tms * sizeof *s->tms);
        }
        e = XNEW(jm_tm_entry);
        snprintf(e->resource_id, sizeof e->resource_id, "%s", resource_id);
        s->tms[s->n_tms++] = e;
    }
    e->updated_ms = now_ms;
    e->cpu_load = m->cpu_load;
    e->cpu_time_ms = m->cpu_time_ms;
    e->rss_bytes = m->rss_bytes;
    e->uptime_ms = m->uptime_ms;
    e->segment_size = m->segment_size;
    e->network_memory = m->network_memory_bytes;
    e->threads = m->threads;
    e->segments_total = m->segments_total;
    e->segments_available = m->segments_available;
    metric_set_from_proto(&e->metrics, m->metrics, m->n_metrics);
}

void jm_metrics_tm_gone(jm_metric_store *s, const char *resource_id) {
    for (int i = 0; i < s->n_tms; i++)
        if (strcmp(s->tms[i]->resource_id, resource_id) == 0) {
            metric_set_clear(&s->tms[i]->metrics);
            free(s->tms[i]);
            s->tms[i] = s->tms[--s->n_tms];
            return;
        }
}

const jm_task_entry *jm_metrics_find_task(const jm_metric_store *s, const char *exec_id) {
    if (!s || !exec_id) return NULL;
    for (int i = 0; i < s->n_tasks; i++)
        if (strcmp(s->tasks[i]->exec_id, exec_id) == 0) return s->tasks[i];
    return NULL;
}

const jm_tm_entry *jm_metrics_find_tm(const jm_metric_store *s, const char *resource_id) {
    if (!s || !resource_id) return NULL;
    for (int i = 0; i < s->n_tms; i++)
        if (strcmp(s->tms[i]->resource_id, resource_id) == 0) return s->tms[i];
    return NULL;
}

/* ---- computed views ------------------------------------------------------------------------------ */

static double op_metric(const jm_task_entry *e, const char *op, const char *name, bool *found) {
    const metric_value *v = metric_set_find(&e->metrics, op, name);
    if (v && found) *found = true;
    return v ? v->value : 0;
}

void jm_metrics_vertex(const jm_metric_store *s, const jm_vertex *v, jm_vertex_live *out) {
    memset(out, 0, sizeof *out);
    out->input_watermark = out->output_watermark = INT64_MAX;
    out->idle_min = 1000;
    const Flint__Graph__JobVertex *d = v->def;
    const char *head = d->n_operators > 0 ? d->operators[0]->name : NULL;
    const char *tail = d->n_operators > 0 ? d->operators[d->n_operators - 1]->name : NULL;
    for (int k = 0; k < v->parallelism; k++) {
        const jm_exec *ex = &v->execs[k];
        const jm_task_entry *e = jm_metrics_find_task(s, ex->id);
        if (ex->has_metrics) {
            if (ex->metrics.back_pressured_ms > out->back_pressured_max) out->back_pressured_max = ex->metrics.back_pressured_ms;
            if (ex->metrics.busy_ms > out->busy_max) out->busy_max = ex->metrics.busy_ms;
            if (ex->metrics.idle_ms < out->idle_min) out->idle_min = ex->metrics.idle_ms;
        }
        if (!e) {
            out->input_watermark = out->output_watermark = INT64_MIN;
            continue;
        }
        out->reporting++;
        out->records_in_per_s += e->records_in_per_s;
        out->records_out_per_s += e->records_out_per_s;
        out->bytes_in_per_s += e->bytes_in_per_s;
        out->bytes_out_per_s += e->bytes_out_per_s;
        if (e->input_watermark < out->input_watermark) out->input_watermark = e->input_watermark;
        if (e->output_watermark < out->output_watermark) out->output_watermark = e->output_watermark;
        if (e->in_pool_usage > out->in_pool_max) out->in_pool_max = e->in_pool_usage;
        if (e->out_pool_usage > out->out_pool_max) out->out_pool_max = e->out_pool_usage;
        if (head) {
            out->head_out += (int64_t)op_metric(e, head, "numRecordsOut", NULL);
            out->head_out_per_s += op_metric(e, head, "numRecordsOutPerSecond", NULL);
        }
        if (tail) {
            out->tail_in += (int64_t)op_metric(e, tail, "numRecordsIn", NULL);
            out->tail_in_per_s += op_metric(e, tail, "numRecordsInPerSecond", NULL);
        }
    }
    if (out->input_watermark == INT64_MAX) out->input_watermark = INT64_MIN;
    if (out->output_watermark == INT64_MAX) out->output_watermark = INT64_MIN;
    if (out->reporting == 0 && out->idle_min == 1000) out->idle_min = 0;
}

void jm_metrics_job_scope(const jm_job *job, const jm_cp *cp, int64_t now, metric_set *out) {
    int64_t running_since = job->timestamps[JM_JOB_RUNNING];
    double uptime = job->state == JM_JOB_RUNNING && running_since > 0 ? (double)(now - running_since) : 0;
    double downtime = 0;
    if (job->state == JM_JOB_FAILING || job->state == JM_JOB_RESTARTING)
        downtime = (double)(now - job->timestamps[job->state]);
    metric_set_add(out, NULL, "uptime", METRIC_KIND_GAUGE, uptime);
    metric_set_add(out, NULL, "downtime", METRIC_KIND_GAUGE, downtime);
    metric_set_add(out, NULL, "numRestarts", METRIC_KIND_GAUGE, job->restarts);
    metric_set_add(out, NULL, "fullRestarts", METRIC_KIND_GAUGE, job->restarts);
    jm_cp_stats st;
    memset(&st, 0, sizeof st);
    if (cp) jm_cp_get_stats(cp, &st);
    metric_set_add(out, NULL, "totalNumberOfCheckpoints", METRIC_KIND_GAUGE, (double)st.total);
    metric_set_add(out, NULL, "numberOfInProgressCheckpoints", METRIC_KIND_GAUGE, (double)st.in_progress);
    metric_set_add(out, NULL, "numberOfCompletedCheckpoints", METRIC_KIND_GAUGE, (double)st.completed);
    metric_set_add(out, NULL, "numberOfFailedCheckpoints", METRIC_KIND_GAUGE, (double)st.failed);
    const jm_cp_record *last = st.latest_completed;
    metric_set_add(out, NULL, "lastCheckpointDuration", METRIC_KIND_GAUGE, last ? (double)last->end_to_end_duration : -1);
    metric_set_add(out, NULL, "lastCheckpointSize", METRIC_KIND_GAUGE, last ? (double)last->checkpointed_size : -1);
    metric_set_add(out, NULL, "lastCheckpointFullSize", METRIC_KIND_GAUGE, last ? (double)last->state_size : -1);
    metric_set_add(out, NULL, "lastCheckpointRestoreTimestamp", METRIC_KIND_GAUGE,
                   st.has_restored ? (double)st.restore_timestamp : -1);
}

void jm_metrics_fill_details(const jm_metric_store *s, const jm_job *job, const jm_cp *cp, Flint__Rpc__JobDetails *d) {
    for (size_t i = 0; i < d->n_vertices; i++) {
        Flint__Rpc__VertexStatus *vs = d->vertices[i];
        const jm_vertex *v = jm_job_vertex_by_graph_id(job, vs->id);
        if (!v) continue;
        jm_vertex_live live;
        jm_metrics_vertex(s, v, &live);
        vs->records_in_per_second = live.records_in_per_s;
        vs->records_out_per_second = live.records_out_per_s;
        vs->back_pressured_ms_per_second = live.back_pressured_max;
        vs->busy_ms_per_second = live.busy_max;
        vs->watermark = live.input_watermark;
        if (v->n_in == 0) {   /* a source: what enters the job */
            d->records_in += live.head_out;
            d->records_in_per_second += live.head_out_per_s;
        }
        if (v->n_out == 0) {  /* a sink: what leaves it */
            d->records_out += live.tail_in;
            d->records_out_per_second += live.tail_in_per_s;
        }
    }
    d->num_restarts = job->restarts;
    if (!cp) return;
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    d->completed_checkpoints = st.completed;
    d->failed_checkpoints = st.failed;
    if (st.latest_completed) {
        const jm_cp_record *r = st.latest_completed;
        d->last_checkpoint_id = r->id;
        d->last_checkpoint_timestamp = r->latest_ack_timestamp ? r->latest_ack_timestamp
                                                               : r->trigger_timestamp + r->end_to_end_duration;
        d->last_checkpoint_duration = r->end_to_end_duration;
        d->last_checkpoint_size = r->checkpointed_size;
    }
}

void jm_metrics_fill_summary(const jm_job *job, int64_t now, Flint__Rpc__JobSummary *sum) {
    int counts[JM_EXEC_STATE_COUNT];
    jm_job_state_counts(job, counts);
    sum->tasks_total = job->n_execs;
    sum->tasks_running = counts[JM_EXEC_RUNNING];
    sum->duration = (job->end_time >= 0 ? job->end_time : now) - job->start_time;
}

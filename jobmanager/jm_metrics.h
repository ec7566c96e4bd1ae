/* The jobmanager's metric store (Flink's MetricStore): the latest metrics of every task and
 * taskmanager as the taskmanagers shipped them with heartbeats (and a task's final ones with its
 * terminal state), plus the metrics the jobmanager computes itself (jobmanager and job scopes:
 * slots, jobs, restarts, checkpoints, process). REST, the Prometheus endpoint and the CLI's
 * progress read it. Bounded: at most JM_METRICS_MAX_TASKS task entries (the oldest go first),
 * and a task's earlier attempts are dropped when a new one reports. */
#ifndef FLINT_JM_METRICS_H
#define FLINT_JM_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "jm_checkpoint.h"
#include "jm_job.h"
#include "metrics/metrics.h"
#include "rpc.pb-c.h"

#define JM_METRICS_MAX_TASKS 20000

/* One task attempt's latest metrics. */
typedef struct jm_task_entry {
    char exec_id[33], job_id[33];
    char resource_id[128];
    int vertex_id, subtask, attempt;
    int64_t updated_ms;                       /* monotonic */
    int64_t input_watermark, output_watermark;   /* INT64_MIN: none */
    double in_pool_usage, out_pool_usage;
    double records_in_per_s, records_out_per_s, bytes_in_per_s, bytes_out_per_s;
    metric_set metrics;                       /* every metric of the task and its operators */
} jm_task_entry;

/* One taskmanager's latest own metrics. */
typedef struct jm_tm_entry {
    char resource_id[128];
    int64_t updated_ms;                       /* monotonic */
    double cpu_load;
    int64_t cpu_time_ms, rss_bytes, uptime_ms, segment_size, network_memory;
    int threads, segments_total, segments_available;
    metric_set metrics;
} jm_tm_entry;

typedef struct jm_metric_store jm_metric_store;

jm_metric_store *jm_metrics_new(void);
void jm_metrics_free(jm_metric_store *s);

/* A task's metrics from resource_id's heartbeat or final state update. */
void jm_metrics_task(jm_metric_store *s, const char *resource_id, const Flint__Rpc__TaskMetrics *m, int64_t now_ms);
/* A taskmanager's own metrics from its heartbeat. */
void jm_metrics_tm(jm_metric_store *s, const char *resource_id, const Flint__Rpc__TaskManagerMetrics *m,
                   int64_t now_ms);
/* Forget a taskmanager (unregistered). */
void jm_metrics_tm_gone(jm_metric_store *s, const char *resource_id);

/* NULL when none stored. Valid until the next call that changes s. */
const jm_task_entry *jm_metrics_find_task(const jm_metric_store *s, const char *exec_id);
const jm_tm_entry *jm_metrics_find_tm(const jm_metric_store *s, const char *resource_id);

/* ---- computed views ---- */

/* What a vertex's subtasks report now (sums of rates, worst backpressure, lowest watermark). */
typedef struct jm_vertex_live {
    int reporting;                            /* subtasks with stored metrics */
    double records_in_per_s, records_out_per_s, bytes_in_per_s, bytes_out_per_s;
    int64_t back_pressured_max, busy_max, idle_min;   /* ms per second */
    int64_t input_watermark;                  /* min over subtasks; INT64_MIN when any has none */
    int64_t output_watermark;
    double in_pool_max, out_pool_max;
    /* the head operator's output (sources: what enters the job) and the last operator's input
     * (sinks: what leaves it) */
    int64_t head_out, tail_in;
    double head_out_per_s, tail_in_per_s;
} jm_vertex_live;

void jm_metrics_vertex(const jm_metric_store *s, const jm_vertex *v, jm_vertex_live *out);

/* The job scope (uptime, downtime, numRestarts, checkpoint counts and the last checkpoint) into
 * out; cp may be NULL. */
void jm_metrics_job_scope(const jm_job *job, const jm_cp *cp, int64_t now_wall_ms, metric_set *out);

/* The CLI's views: progress, checkpoint and per-vertex fields of JobDetails (issue 8 fields), task
 * counts and duration of a JobSummary. cp may be NULL. */
void jm_metrics_fill_details(const jm_metric_store *s, const jm_job *job, const jm_cp *cp, Flint__Rpc__JobDetails *d);
void jm_metrics_fill_summary(const jm_job *job, int64_t now_wall_ms, Flint__Rpc__JobSummary *sum);

#endif

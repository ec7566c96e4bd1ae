/* The metrics system: counters, gauges, meters (a rate over a window) and histograms, metric
 * dumps (the values of a scope, shipped from taskmanagers with heartbeats), process metrics
 * (CPU, RSS, threads) and the Prometheus text exposition format (docs/metrics.md).
 *
 * Cost on the record path: a counter increment, nothing else. A counter has one writer (the task
 * thread that owns it): metric_counter_inc is a relaxed load and store of an _Atomic int64_t --
 * a plain add on x86-64 and arm64, no lock, no locked instruction, no allocation -- and any other
 * thread may read it at any time (metric_counter_get). Gauges are the same with a set. Meters and
 * histograms are updated off the record path (a timer, a mail once per second) and read by the
 * thread that updates them, or under their lock (histograms).
 *
 * Scopes and names follow Flink: the jobmanager, a job on the jobmanager, a taskmanager, a task
 * (one subtask of a job vertex), an operator of a task's chain. Metric names are Flink's
 * ("numRecordsIn", "busyTimeMsPerSecond", "Status.CPU.Load"). */
#ifndef FLINT_METRICS_H
#define FLINT_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- counters and gauges ------------------------------------------------------------------- */

typedef struct metric_counter {
    _Atomic int64_t v;
} metric_counter;

/* One writer only (see above); any thread reads. */
static inline void metric_counter_add(metric_counter *c, int64_t n) {
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void metric_counter_inc(metric_counter *c) { metric_counter_add(c, 1); }
static inline int64_t metric_counter_get(const metric_counter *c) {
    return atomic_load_explicit(&((metric_counter *)c)->v, memory_order_relaxed);
}
static inline void metric_counter_init(metric_counter *c) { atomic_init(&c->v, 0); }

/* An integer gauge (watermarks, queue lengths): set by one thread, read by any. */
typedef struct metric_gauge {
    _Atomic int64_t v;
} metric_gauge;

static inline void metric_gauge_init(metric_gauge *g, int64_t v) { atomic_init(&g->v, v); }
static inline void metric_gauge_set(metric_gauge *g, int64_t v) {
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}
static inline int64_t metric_gauge_get(const metric_gauge *g) {
    return atomic_load_explicit(&((metric_gauge *)g)->v, memory_order_relaxed);
}

/* ---- meters ---------------------------------------------------------------------------------
 * A meter turns a growing count into a rate per second over a window (Flink's MeterView): the
 * updater samples the count (metric_meter_update, about once per second); the rate is the
 * difference between the newest sample and the oldest one still inside the window, divided by
 * the time between them. Updated and read by one thread (or under the owner's lock). */
#define METRIC_METER_SLOTS 64

typedef struct metric_meter {
    int64_t window_ns;
    int64_t t[METRIC_METER_SLOTS], c[METRIC_METER_SLOTS];   /* ring of samples */
    int head, n;
    double rate;
} metric_meter;

/* window_ms: how far back the rate looks (at least two samples are used). */
void metric_meter_init(metric_meter *m, int64_t window_ms);
/* Take a sample: the count at monotonic time now_ns. Returns the new rate. */
double metric_meter_update(metric_meter *m, int64_t count, int64_t now_ns);
static inline double metric_meter_rate(const metric_meter *m) { return m->rate; }

/* ---- histograms -----------------------------------------------------------------------------
 * The statistics of the last `capacity` values (Flink's DescriptiveStatisticsHistogram): a ring of
 * values under a mutex; meant for values recorded at most a few times per second. */
typedef struct metric_hist_stats {
    int64_t count;                /* values recorded since the start */
    double min, max, mean, stddev, p50, p75, p90, p95, p98, p99, p999;   /* of the window */
} metric_hist_stats;

typedef struct metric_histogram {
    pthread_mutex_t mu;
    int64_t *ring;
    int capacity, n, pos;
    int64_t count;
} metric_histogram;

void metric_histogram_init(metric_histogram *h, int capacity);
void metric_histogram_destroy(metric_histogram *h);
void metric_histogram_update(metric_histogram *h, int64_t value);
/* OUT: stats of the window (all 0 when empty). Any thread. */
void metric_histogram_stats(metric_histogram *h, metric_hist_stats *out);

/* ---- metric dumps ---------------------------------------------------------------------------
 * The values of one scope at one moment: what a taskmanager ships, what the jobmanager stores and
 * REST and Prometheus show. Operator metrics carry the operator's name. */
typedef enum metric_kind { METRIC_KIND_COUNTER, METRIC_KIND_GAUGE, METRIC_KIND_METER, METRIC_KIND_HISTOGRAM } metric_kind;

typedef struct metric_value {
    char *name;                   /* owned: "numRecordsIn" */
    char *op;                     /* owned: operator name, NULL for the scope itself */
    metric_kind kind;
    double value;                 /* counter, gauge, meter (per second); histogram: its count */
    metric_hist_stats hist;       /* histograms */
} metric_value;

typedef struct metric_set {
    metric_value *v;
    int n, cap;
} metric_set;

void metric_set_init(metric_set *s);
/* Free every value (the set itself is the caller's) and empty it. */
void metric_set_clear(metric_set *s);
/* Append a value (name and op are copied; op may be NULL). Returns it. */
metric_value *metric_set_add(metric_set *s, const char *op, const char *name, metric_kind kind, double value);
metric_value *metric_set_add_hist(metric_set *s, const char *op, const char *name, const metric_hist_stats *st);
/* The value named name in operator op (NULL: the scope's own), or NULL. */
const metric_value *metric_set_find(const metric_set *s, const char *op, const char *name);
/* Deep copy of src into dst (dst is cleared first). */
void metric_set_copy(metric_set *dst, const metric_set *src);

/* Flink's one-line description of a metric (for Prometheus' HELP); a generic one for unknown names. */
const char *metric_help(const char *name);
/* A name as Flink shows it in metric identifiers: every character outside [A-Za-z0-9_-] becomes
 * '_' ("Source: lines" -> "Source__lines"). Writes at most len-1 bytes. */
void metric_name_filter(const char *in, char *out, size_t len);
/* The values a histogram contributes to a flat view (REST): "<name>_p99" etc. Calls fn for each. */
void metric_hist_flatten(const char *name, const metric_hist_stats *st,
                         void (*fn)(const char *flat_name, double value, void *ud), void *ud);

/* ---- process metrics (Linux /proc) -------------------------------------------------------------- */
typedef struct metric_process {
    double cpu_load;              /* cores used since the previous sample (0..ncores) */
    int64_t cpu_time_ms;          /* user + system since the start */
    int64_t rss_bytes, vm_bytes;
    int threads;
    int cpu_cores;
    /* sampler state */
    int64_t prev_wall_ns, prev_cpu_ms;
} metric_process;

/* Sample this process; p keeps the previous sample for cpu_load (zero it before the first). */
void metric_process_sample(metric_process *p);

/* ---- Prometheus text exposition format (version 0.0.4) ----------------------------------------
 * Samples are collected by family (one metric name), then written with "# HELP" and "# TYPE"
 * before each family's samples. Names are "flint_<scope>_<metric>" with every character outside
 * [a-zA-Z0-9_:] as '_' (as Flink's Prometheus reporter); label values are escaped. Histograms
 * are summaries (quantile labels, _sum and _count). */
typedef struct prom_writer prom_writer;

typedef struct prom_label {
    const char *name;             /* job_id, job_name, task_name, subtask_index, tm_id, ... */
    const char *value;
} prom_label;

prom_writer *prom_new(void);
/* Add one value of scope ("jobmanager", "jobmanager_job", "taskmanager", "taskmanager_job_task",
 * "taskmanager_job_task_operator") with its labels (copied). */
void prom_add(prom_writer *w, const char *scope, const metric_value *v, const prom_label *labels, int nlabels);
/* The exposition text (caller frees); frees w. */
char *prom_finish(prom_writer *w, size_t *len);

#endif

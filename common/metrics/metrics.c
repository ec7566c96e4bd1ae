/* The metrics system: meters, histograms, metric dumps, metric descriptions and process metrics
 * (see metrics.h). */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "util/alloc.h"

/* ---- meters ------------------------------------------------------------------------------------ */

void metric_meter_init(metric_meter *m, int64_t window_ms) {
    memset(m, 0, sizeof *m);
    m->window_ns = (window_ms > 0 ? window_ms : 1000) * 1000000LL;
}

double metric_meter_update(metric_meter *m, int64_t count, int64_t now_ns) {
    int slot = (m->head + m->n) % METRIC_METER_SLOTS;
    if (m->n == METRIC_METER_SLOTS) {   /* full: drop the oldest */
        m->head = (m->head + 1) % METRIC_METER_SLOTS;
        slot = (m->head + m->n - 1) % METRIC_METER_SLOTS;
    } else {
        m->n++;
    }
    m->t[slot] = now_ns;
    m->c[slot] = count;
    /* Drop samples older than the window, keeping at least two. */
    while (m->n > 2 && now_ns - m->t[(m->head + 1) % METRIC_METER_SLOTS] >= m->window_ns) {
        m->head = (m->head + 1) % METRIC_METER_SLOTS;
        m->n--;
    }
    if (m->n < 2) return m->rate = 0;
    int64_t dt = now_ns - m->t[m->head];
    int64_t dc = count - m->c[m->head];
    m->rate = dt > 0 && dc > 0 ? (double)dc * 1e9 / (double)dt : 0;
    return m->rate;
}

/* ---- histograms ---------------------------------------------------------------------------------- */

void metric_histogram_init(metric_histogram *h, int capacity) {
    assert(capacity > 0);
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->ring = xcalloc((size_t)capacity, sizeof *h->ring);
    h->capacity = capacity;
}

void metric_histogram_destroy(metric_histogram *h) {
    if (!h->ring) return;
    pthread_mutex_destroy(&h->mu);
    free(h->ring);
    h->ring = NULL;
}

void metric_histogram_update(metric_histogram *h, int64_t value) {
    pthread_mutex_lock(&h->mu);
    h->ring[h->pos] = value;
    h->pos = (h->pos + 1) % h->capacity;
    if (h->n < h->capacity) h->n++;
    h->count++;
    pthread_mutex_unlock(&h->mu);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of n sorted values (linear interpolation between the closest ranks). */
static double quantile(const int64_t *v, int n, double q) {
    if (n == 1) return (double)v[0];
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1) return (double)v[n - 1];
    double frac = pos - lo;
    return (double)v[lo] + frac * (double)(v[lo + 1] - v[lo]);
}

void metric_histogram_stats(metric_histogram *h, metric_hist_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    out->count = h->count;
    int64_t *v = n ? xcalloc((size_t)n, sizeof *v) : NULL;
    if (n) memcpy(v, h->ring, (size_t)n * sizeof *v);   /* the window is the first n slots once full */
    pthread_mutex_unlock(&h->mu);
    if (!n) return;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += (double)v[i];
    out->mean = sum / n;
    for (int i = 0; i < n; i++) sq += ((double)v[i] - out->mean) * ((double)v[i] - out->mean);
    out->stddev = n > 1 ? sqrt(sq / (n - 1)) : 0;
    out->min = (double)v[0];
    out->max = (double)v[n - 1];
    out->p50 = quantile(v, n, 0.5);
    out->p75 = quantile(v, n, 0.75);
    out->p90 = quantile(v, n, 0.9);
    out->p95 = quantile(v, n, 0.95);
    out->p98 = quantile(v, n, 0.98);
    out->p99 = quantile(v, n, 0.99);
    out->p999 = quantile(v, n, 0.999);
    free(v);
}

/* ---- metric dumps ---------------------------------------------------------------------------------- */

void metric_set_init(metric_set *s) { memset(s, 0, sizeof *s); }

void metric_set_clear(metric_set *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].op);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

metric_value *metric_set_add(metric_set *s, const char *op, const char *name, metric_kind kind, double value) {
    assert(name);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    metric_value *v = &s->v[s->n++];
    memset(v, 0, sizeof *v);
    v->name = xstrdup(name);
    v->op = op && op[0] ? xstrdup(op) : NULL;
    v->kind = kind;
    v->value = value;
    return v;
}

metric_value *metric_set_add_hist(metric_set *s, const char *op, const char *name, const metric_hist_stats *st) {
    metric_value *v = metric_set_add(s, op, name, METRIC_KIND_HISTOGRAM, (double)st->count);
    v->hist = *st;
    return v;
}

const metric_value *metric_set_find(const metric_set *s, const char *op, const char *name) {
    for (int i = 0; i < s->n; i++) {
        const metric_value *v = &s->v[i];
        if (strcmp(v->name, name) != 0) continue;
        if ((!op || !op[0]) ? v->op == NULL : (v->op && strcmp(v->op, op) == 0)) return v;
    }
    return NULL;
}

void metric_set_copy(metric_set *dst, const metric_set *src) {
    metric_set_clear(dst);
    for (int i = 0; i < src->n; i++) {
        metric_value *v = metric_set_add(dst, src->v[i].op, src->v[i].name, src->v[i].kind, src->v[i].value);
        v->hist = src->v[i].hist;
    }
}

void metric_name_filter(const char *in, char *out, size_t len) {
    assert(len > 0);
    size_t i = 0;
    for (; in && in[i] && i + 1 < len; i++) {
        char ch = in[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

void metric_hist_flatten(const char *name, const metric_hist_stats *st,
                         void (*fn)(const char *flat_name, double value, void *ud), void *ud) {
    static const char *const sfx[] = {"count", "min", "max", "mean", "stddev", "median", "p75", "p90",
                                       "p95", "p98", "p99", "p999"};
    double vals[] = {(double)st->count, st->min, st->max, st->mean, st->stddev, st->p50, st->p75, st->p90,
                     st->p95, st->p98, st->p99, st->p999};
    char buf[256];
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(buf, sizeof buf, "%s_%s", name, sfx[i]);
        fn(buf, vals[i], ud);
    }
}

/* ---- descriptions ---------------------------------------------------------------------------------- */

static const struct {
    const char *name, *help;
} helps[] = {
    {"numRecordsIn", "The total number of records this task or operator has received."},
    {"numRecordsOut", "The total number of records this task or operator has emitted."},
    {"numRecordsInPerSecond", "The number of records this task or operator receives per second."},
    {"numRecordsOutPerSecond", "The number of records this task or operator sends per second."},
    {"numRecordsInErrors", "The total number of records a source failed to consume (they did not parse)."},
    {"numBytesIn", "The total number of bytes this task has read from the network."},
    {"numBytesOut", "The total number of bytes this task has written to the network."},
    {"numBytesInPerSecond", "The number of bytes this task reads per second."},
    {"numBytesOutPerSecond", "The number of bytes this task writes per second."},
    {"currentInputWatermark", "The last watermark this task or operator has received (in milliseconds)."},
    {"currentOutputWatermark", "The last watermark this task or operator has emitted (in milliseconds)."},
    {"backPressuredTimeMsPerSecond", "The time (in milliseconds) this task is back pressured per second."},
    {"busyTimeMsPerSecond", "The time (in milliseconds) this task is busy (neither idle nor back pressured) per second."},
    {"idleTimeMsPerSecond", "The time (in milliseconds) this task is idle (has no data to process) per second."},
    {"inPoolUsage", "An estimate of the input buffers usage (0..1)."},
    {"outPoolUsage", "An estimate of the output buffers usage (0..1)."},
    {"mailboxLatencyMs", "The time actions wait in the task's mailbox before they run (milliseconds)."},
    {"mailboxQueueSize", "The number of actions waiting in the task's mailbox."},
    {"lastCheckpointDuration", "The time it took to complete the last checkpoint (in milliseconds)."},
    {"lastCheckpointSize", "The checkpointed size of the last checkpoint (in bytes)."},
    {"lastCheckpointFullSize", "The full size of the last checkpoint (in bytes)."},
    {"numberOfCompletedCheckpoints", "The number of successfully completed checkpoints."},
    {"numberOfFailedCheckpoints", "The number of failed checkpoints."},
    {"numberOfInProgressCheckpoints", "The number of checkpoints in progress."},
    {"totalNumberOfCheckpoints", "The number of checkpoints triggered (completed, in progress and failed)."},
    {"lastCheckpointRestoreTimestamp", "When the job last restored from a checkpoint (epoch milliseconds, -1 never)."},
    {"numRestarts", "The total number of restarts since this job was submitted."},
    {"uptime", "The time this job has been running without interruption (in milliseconds); 0 when not running."},
    {"downtime", "For jobs failing or recovering, the time elapsed during this outage (in milliseconds)."},
    {"numRegisteredTaskManagers", "The number of registered taskmanagers."},
    {"numRunningJobs", "The number of running jobs."},
    {"taskSlotsAvailable", "The number of available task slots."},
    {"taskSlotsTotal", "The total number of task slots."},
    {"Status.CPU.Load", "The CPU used by the process since the previous sample, in cores."},
    {"Status.CPU.Time", "The CPU time used by the process (in milliseconds)."},
    {"Status.Memory.RSS", "The resident set size of the process (in bytes)."},
    {"Status.Memory.VirtualSize", "The virtual memory size of the process (in bytes)."},
    {"Status.Threads.Count", "The number of threads of the process."},
    {"Status.Shuffle.Netty.TotalMemorySegments", "The number of network memory segments of the taskmanager."},
    {"Status.Shuffle.Netty.AvailableMemorySegments", "The number of unused network memory segments."},
    {"Status.Shuffle.Netty.UsedMemorySegments", "The number of network memory segments in use."},
    {"Status.Shuffle.Netty.TotalMemory", "The network memory of the taskmanager (in bytes)."},
    {"Status.Shuffle.Netty.UsedMemory", "The network memory in use (in bytes)."},
    {"Status.Shuffle.Netty.AvailableMemory", "The unused network memory (in bytes)."},
    {"Status.Uptime", "The time since the process started (in milliseconds)."},
};

const char *metric_help(const char *name) {
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (strcmp(helps[i].name, name) == 0) return helps[i].help;
    return "A Flint metric (docs/metrics.md).";
}

/* ---- process metrics ------------------------------------------------------------------------------------ */

void metric_process_sample(metric_process *p) {
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    p->cpu_cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* After the command name's closing parenthesis: state is field 3; utime 14, stime 15,
         * num_threads 20, vsize 23, rss 24 (pages). */
        char *s = strrchr(buf, ')');
        if (s) {
            unsigned long long utime = 0, stime = 0, vsize = 0;
            long long rss = 0, threads = 0;
            int k = sscanf(s + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %lld %*d %*u %llu %lld",
                           &utime, &stime, &threads, &vsize, &rss);
            if (k == 5 && tick > 0) {
                p->cpu_time_ms = (int64_t)((utime + stime) * 1000ULL / (unsigned long long)tick);
                p->threads = (int)threads;
                p->vm_bytes = (int64_t)vsize;
                p->rss_bytes = rss * page;
            }
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (p->prev_wall_ns > 0 && now > p->prev_wall_ns) {
        double used_ms = (double)(p->cpu_time_ms - p->prev_cpu_ms);
        double wall_ms = (double)(now - p->prev_wall_ns) / 1e6;
        /* /proc counts in clock ticks (10 ms): very short intervals keep the previous load */
        if (wall_ms >= 200) {
            p->cpu_load = used_ms > 0 ? used_ms / wall_ms : 0;
            p->prev_wall_ns = now;
            p->prev_cpu_ms = p->cpu_time_ms;
        }
    } else {
        p->prev_wall_ns = now;
        p->prev_cpu_ms = p->cpu_time_ms;
    }
}

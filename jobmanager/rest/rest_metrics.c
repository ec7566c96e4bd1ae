/* REST handlers of the metrics system (issue 8), with Flink's paths and shapes:
 *   /jobmanager/metrics, /taskmanagers/:id/metrics, /jobs/:jid/metrics,
 *   /jobs/:jid/vertices/:vid/metrics          [{"id"}] without ?get, [{"id","value"}] with it
 *                                             (ids "<subtask>.<metric>", "<subtask>.<operator>.<metric>";
 *                                             values are strings, as Flink's)
 *   /jobs/:jid/vertices/:vid/subtasks/metrics [{"id","min","max","avg","sum","skew"}] over subtasks
 *   /jobs/:jid/vertices/:vid/watermarks       [{"id":"<subtask>.currentInputWatermark","value"}]
 *   /jobs/:jid/plan                           {"plan":{...}}
 *   /jobmanager/log, /taskmanagers/:id/log    the daemon's own log file (text/plain); a taskmanager's
 *                                             comes over RPC (RequestLog); never any other file
 *   /metrics                                  Prometheus text format 0.0.4 of every scope
 * Metric values come from the jobmanager's metric store (jm_metrics.h). */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define LOG_MODULE "rest"
#include "config/config.h"
#include "jm_dispatcher.h"
#include "jm_metrics.h"
#include "metrics/metrics.h"
#include "rest/rest_internal.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

#define TEXT_TYPE "text/plain; charset=UTF-8"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define LOG_TAIL_BYTES (4LL * 1024 * 1024)   /* the most of a log one request returns */
#define MAX_GET 64                            /* metric names in one ?get= */

/* ---- values and ids -------------------------------------------------------------------------------- */

/* Flink shows metric values as strings: integers without a fraction. */
static void fmt_value(double v, char *buf, size_t len) {
    if (isnan(v)) snprintf(buf, len, "NaN");
    else if (isinf(v)) snprintf(buf, len, v > 0 ? "Infinity" : "-Infinity");
    else if (v == (double)(int64_t)v && fabs(v) < 9.2e18) snprintf(buf, len, "%" PRId64, (int64_t)v);
    else snprintf(buf, len, "%.10g", v);
}

/* A flat view of metrics: id -> value. */
typedef struct flat {
    char **id;
    double *val;
    int n, cap;
} flat;

static void flat_add(flat *f, const char *id, double v) {
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->id = xrealloc(f->id, (size_t)f->cap * sizeof *f->id);
        f->val = xrealloc(f->val, (size_t)f->cap * sizeof *f->val);
    }
    f->id[f->n] = xstrdup(id);
    f->val[f->n++] = v;
}

static void flat_free(flat *f) {
    for (int i = 0; i < f->n; i++) free(f->id[i]);
    free(f->id);
    free(f->val);
}

typedef struct hist_ctx {
    flat *f;
    const char *prefix;
} hist_ctx;

static void hist_cb(const char *name, double v, void *ud) {
    hist_ctx *h = ud;
    char id[512];
    snprintf(id, sizeof id, "%s%s", h->prefix, name);
    flat_add(h->f, id, v);
}

/* Add s's values to f as "<prefix>[<operator>.]<name>" (histograms flattened, Flink's _p99 etc.). */
static void flat_add_set(flat *f, const char *prefix, const metric_set *s) {
    for (int i = 0; i < s->n; i++) {
        const metric_value *v = &s->v[i];
        char pre[400], opname[256];
        if (v->op) {
            metric_name_filter(v->op, opname, sizeof opname);
            snprintf(pre, sizeof pre, "%s%s.", prefix, opname);
        } else {
            snprintf(pre, sizeof pre, "%s", prefix);
        }
        if (v->kind == METRIC_KIND_HISTOGRAM) {
            hist_ctx h = {f, pre};
            metric_hist_flatten(v->name, &v->hist, hist_cb, &h);
        } else {
            char id[512];
            snprintf(id, sizeof id, "%s%s", pre, v->name);
            flat_add(f, id, v->value);
        }
    }
}

/* Split ?get=a,b,c (copied into buf) into names; returns how many (0 when absent). */
static int get_names(rest_call *c, char *buf, size_t len, const char **names) {
    const char *g = query_param(c, "get", buf, len);
    if (!g) return 0;
    int n = 0;
    for (char *tok = strtok(buf, ","); tok && n < MAX_GET; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (*tok) names[n++] = tok;
    }
    return n;
}

/* Flink's metrics answer: [{"id"}] without ?get (every id once), [{"id","value"}] for the ids asked
 * that exist. */
static void reply_flat(rest_call *c, const flat *f) {
    char buf[4096];
    const char *names[MAX_GET];
    int n = get_names(c, buf, sizeof buf, names);
    json_t *arr = jcheck(json_array());
    if (n == 0 && !query_param(c, "get", buf, sizeof buf)) {
        for (int i = 0; i < f->n; i++) {
            bool dup = false;
            for (int k = 0; k < i && !dup; k++) dup = strcmp(f->id[k], f->id[i]) == 0;
            if (!dup) json_array_append_new(arr, jcheck(json_pack("{s:o}", "id", jstr(f->id[i]))));
        }
    } else {
        for (int k = 0; k < n; k++)
            for (int i = 0; i < f->n; i++)
                if (strcmp(f->id[i], names[k]) == 0) {
                    char v[64];
                    fmt_value(f->val[i], v, sizeof v);
                    json_array_append_new(arr, jcheck(json_pack("{s:o, s:s}", "id", jstr(f->id[i]), "value", v)));
                    break;
                }
    }
    reply_json(c, HTTP_OK, arr);
}

/* ---- scopes computed by the jobmanager -------------------------------------------------------------- */

static void jobmanager_scope(const jobmanager *jm, metric_set *out) {
    metric_process_sample(jm->proc);
    const metric_process *p = jm->proc;
    jm_job_counts jobs = jm_dispatcher_job_counts(jm->dispatcher);
    metric_set_add(out, NULL, "numRegisteredTaskManagers", METRIC_KIND_GAUGE, jm_rm_count(jm->rm));
    metric_set_add(out, NULL, "numRunningJobs", METRIC_KIND_GAUGE, jobs.running);
    metric_set_add(out, NULL, "taskSlotsAvailable", METRIC_KIND_GAUGE, jm_rm_slots_free(jm->rm));
    metric_set_add(out, NULL, "taskSlotsTotal", METRIC_KIND_GAUGE, jm_rm_slots_total(jm->rm));
    metric_set_add(out, NULL, "Status.CPU.Load", METRIC_KIND_GAUGE, p->cpu_load);
    metric_set_add(out, NULL, "Status.CPU.Time", METRIC_KIND_GAUGE, (double)p->cpu_time_ms);
    metric_set_add(out, NULL, "Status.Memory.RSS", METRIC_KIND_GAUGE, (double)p->rss_bytes);
    metric_set_add(out, NULL, "Status.Memory.VirtualSize", METRIC_KIND_GAUGE, (double)p->vm_bytes);
    metric_set_add(out, NULL, "Status.Threads.Count", METRIC_KIND_GAUGE, p->threads);
    metric_set_add(out, NULL, "Status.Uptime", METRIC_KIND_GAUGE, (double)(time_wall_ms() - jm->start_time_ms));
}

static void job_scope(const jobmanager *jm, const jm_job *job, metric_set *out) {
    jm_metrics_job_scope(job, jm_dispatcher_job_checkpoints(jm->dispatcher, job), time_wall_ms(), out);
}

/* ---- handlers ------------------------------------------------------------------------------------------ */

void rest_h_jobmanager_metrics(rest_call *c) {
    metric_set s;
    metric_set_init(&s);
    jobmanager_scope(c->rest->jm, &s);
    flat f = {0};
    flat_add_set(&f, "", &s);
    reply_flat(c, &f);
    flat_free(&f);
    metric_set_clear(&s);
}

static jm_tm *find_tm(rest_call *c) {
    jm_tm *tm = jm_rm_find(c->rest->jm->rm, c->params[0]);
    if (!tm) {
        json_t *id = jpath(c->params[0]);
        char *msg = xasprintf("No TaskManager registered under %s.", json_string_value(id));
        json_decref(id);
        reply_error_json(c, HTTP_NOTFOUND, jstr(msg));
        free(msg);
    }
    return tm;
}

void rest_h_taskmanager_metrics(rest_call *c) {
    jm_tm *tm = find_tm(c);
    if (!tm) return;
    const jm_tm_entry *e = jm_metrics_find_tm(c->rest->jm->metrics, tm->resource_id);
    flat f = {0};
    if (e) flat_add_set(&f, "", &e->metrics);
    reply_flat(c, &f);
    flat_free(&f);
}

void rest_h_job_metrics(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    metric_set s;
    metric_set_init(&s);
    job_scope(c->rest->jm, job, &s);
    flat f = {0};
    flat_add_set(&f, "", &s);
    reply_flat(c, &f);
    flat_free(&f);
    metric_set_clear(&s);
}

/* Every subtask's metrics as "<subtask>.<id>" (with_subtask) or "<id>" per subtask (aggregation). */
static void vertex_flat(const jobmanager *jm, const jm_vertex *v, int subtask_only, flat *f, bool prefix) {
    for (int k = 0; k < v->parallelism; k++) {
        if (subtask_only >= 0 && k != subtask_only) continue;
        const jm_task_entry *e = jm_metrics_find_task(jm->metrics, v->execs[k].id);
        if (!e) continue;
        char pre[32] = "";
        if (prefix) snprintf(pre, sizeof pre, "%d.", k);
        flat_add_set(f, pre, &e->metrics);
    }
}

void rest_h_vertex_metrics(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    const jm_vertex *v = find_vertex(c, job);
    if (!v) return;
    flat f = {0};
    vertex_flat(c->rest->jm, v, -1, &f, true);
    reply_flat(c, &f);
    flat_free(&f);
}

/* Flink's aggregated subtask metrics: ?get=a,b [&agg=min,max,avg,sum,skew]. */
void rest_h_vertex_subtasks_metrics(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    const jm_vertex *v = find_vertex(c, job);
    if (!v) return;
    flat f = {0};
    vertex_flat(c->rest->jm, v, -1, &f, false);
    char buf[4096], aggbuf[128];
    const char *names[MAX_GET];
    int n = get_names(c, buf, sizeof buf, names);
    const char *agg = query_param(c, "agg", aggbuf, sizeof aggbuf);
    json_t *arr = jcheck(json_array());
    if (n == 0) {
        for (int i = 0; i < f.n; i++) {
            bool dup = false;
            for (int k = 0; k < i && !dup; k++) dup = strcmp(f.id[k], f.id[i]) == 0;
            if (!dup) json_array_append_new(arr, jcheck(json_pack("{s:o}", "id", jstr(f.id[i]))));
        }
    }
    for (int k = 0; k < n; k++) {
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        int cnt = 0;
        for (int i = 0; i < f.n; i++) {
            if (strcmp(f.id[i], names[k]) != 0) continue;
            double x = f.val[i];
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
            sum += x;
            cnt++;
        }
        if (!cnt) continue;
        double avg = sum / cnt;
        json_t *o = jcheck(json_pack("{s:o}", "id", jstr(names[k])));
        bool all = !agg || !agg[0];
        if (all || strstr(agg, "min")) json_object_set_new(o, "min", json_real(mn));
        if (all || strstr(agg, "max")) json_object_set_new(o, "max", json_real(mx));
        if (all || strstr(agg, "avg")) json_object_set_new(o, "avg", json_real(avg));
        if (all || strstr(agg, "sum")) json_object_set_new(o, "sum", json_real(sum));
        if (all || strstr(agg, "skew")) json_object_set_new(o, "skew", json_real(avg > 0 ? (mx - avg) / avg * 100 : 0));
        json_array_append_new(arr, o);
    }
    flat_free(&f);
    reply_json(c, HTTP_OK, arr);
}

/* Flink's watermarks of a vertex: one entry per subtask (Long.MIN_VALUE before the first). */
void rest_h_vertex_watermarks(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    const jm_vertex *v = find_vertex(c, job);
    if (!v) return;
    json_t *arr = jcheck(json_array());
    for (int k = 0; k < v->parallelism; k++) {
        const jm_task_entry *e = jm_metrics_find_task(c->rest->jm->metrics, v->execs[k].id);
        if (!e) continue;
        char id[64], val[64];
        snprintf(id, sizeof id, "%d.currentInputWatermark", k);
        snprintf(val, sizeof val, "%" PRId64, e->input_watermark);
        json_array_append_new(arr, jcheck(json_pack("{s:s, s:s}", "id", id, "value", val)));
    }
    reply_json(c, HTTP_OK, arr);
}

void rest_h_job_plan(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    reply_json(c, HTTP_OK, jcheck(json_pack("{s:o}", "plan", plan_json(job))));
}

/* ---- taskmanager details ------------------------------------------------------------------------------ */

void rest_tm_add_metrics(const jobmanager *jm, const jm_tm *tm, json_t *o) {
    const jm_tm_entry *e = jm_metrics_find_tm(jm->metrics, tm->resource_id);
    int64_t total = e ? e->segments_total : 0, avail = e ? e->segments_available : 0;
    int64_t seg = e ? e->segment_size : 0;
    json_t *m = jcheck(json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:i, s:I, s:o}",
        "memorySegmentsAvailable", (json_int_t)avail, "memorySegmentsTotal", (json_int_t)total,
        "nettyShuffleMemorySegmentsAvailable", (json_int_t)avail,
        "nettyShuffleMemorySegmentsUsed", (json_int_t)(total - avail),
        "nettyShuffleMemorySegmentsTotal", (json_int_t)total,
        "nettyShuffleMemoryAvailable", (json_int_t)(avail * seg),
        "nettyShuffleMemoryUsed", (json_int_t)((total - avail) * seg),
        "nettyShuffleMemoryTotal", (json_int_t)(total * seg),
        "cpuLoad", e ? e->cpu_load : 0.0,
        "cpuTime", (json_int_t)(e ? e->cpu_time_ms : 0),
        "threads", e ? e->threads : 0,
        "rss", (json_int_t)(e ? e->rss_bytes : 0),
        "garbageCollectors", jcheck(json_array())));
    json_object_set_new(o, "metrics", m);
    json_object_set_new(o, "memoryConfiguration",
                        jcheck(json_pack("{s:I, s:I, s:I}", "networkMemory", (json_int_t)(total * seg),
                                         "managedMemory", (json_int_t)tm->hardware.managed_memory,
                                         "totalProcessMemory", (json_int_t)(e ? e->rss_bytes : 0))));
    json_object_set_new(o, "uptime", json_integer(e ? e->uptime_ms : 0));
}

/* ---- logs ---------------------------------------------------------------------------------------------- */

void rest_h_jobmanager_log(rest_call *c) {
    char *data = NULL;
    size_t len = 0;
    int64_t size = 0;
    if (log_file_tail(LOG_TAIL_BYTES, &data, &len, &size) != 0) {
        reply_error(c, HTTP_NOTFOUND, "The jobmanager has no log file (it logs to stderr)");
        return;
    }
    reply_bytes(c, HTTP_OK, TEXT_TYPE, data, len);
    free(data);
}

/* A taskmanager's log request under way: the HTTP request waits for the RPC answer. */
typedef struct log_req {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    jm_rest *rest;
    bool gone;                    /* the HTTP connection closed first */
    char path[REST_MAX_PATH + 1];
} log_req;

static void on_log_http_closed(struct evhttp_connection *conn, void *arg) {
    (void)conn;
    log_req *lr = arg;
    lr->gone = true;
}

static void log_req_answer(log_req *lr, int code, const char *type, const void *data, size_t len) {
    if (lr->gone) return;
    evhttp_connection_set_closecb(lr->conn, NULL, NULL);
    rest_call c = {.rest = lr->rest, .req = lr->req, .raw_path = lr->path};
    if (type) {
        reply_bytes(&c, code, type, data, len);
    } else {
        char msg[600];
        snprintf(msg, sizeof msg, "%.*s", (int)len, (const char *)data);
        reply_error(&c, code, "%s", msg);
    }
}

static void on_log_reply(rpc_conn *conn, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)conn;
    log_req *lr = ud;
    if (status != FLINT_OK) {
        char m[400];
        snprintf(m, sizeof m, "Cannot fetch the taskmanager's log: %s", msg ? msg : flint_strerror(status));
        log_req_answer(lr, HTTP_SERVUNAVAIL, NULL, m, strlen(m));
    } else if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_LOG_FILE || !reply->log_file->available) {
        const char *m = "The taskmanager has no log file (it logs to stderr)";
        log_req_answer(lr, HTTP_NOTFOUND, NULL, m, strlen(m));
    } else {
        log_req_answer(lr, HTTP_OK, TEXT_TYPE, reply->log_file->data.data, reply->log_file->data.len);
    }
    if (lr->gone && lr->conn) { /* nothing: the connection is gone */
    }
    free(lr);
}

void rest_h_taskmanager_log(rest_call *c) {
    jm_tm *tm = find_tm(c);
    if (!tm) return;
    if (!tm->conn) {
        reply_error(c, HTTP_SERVUNAVAIL, "The taskmanager is not connected");
        return;
    }
    log_req *lr = XNEW(log_req);
    lr->req = c->req;
    lr->rest = c->rest;
    lr->conn = evhttp_request_get_connection(c->req);
    snprintf(lr->path, sizeof lr->path, "%s", c->raw_path);
    Flint__Rpc__RequestLog m = FLINT__RPC__REQUEST_LOG__INIT;
    m.max_bytes = LOG_TAIL_BYTES;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_REQUEST_LOG;
    env.request_log = &m;
    if (lr->conn) evhttp_connection_set_closecb(lr->conn, on_log_http_closed, lr);
    int rc = rpc_call(tm->conn, &env, c->rest->jm->ask_timeout_ms, on_log_reply, lr);
    if (rc) {
        if (lr->conn) evhttp_connection_set_closecb(lr->conn, NULL, NULL);
        reply_error(c, HTTP_SERVUNAVAIL, "Cannot ask the taskmanager for its log: %s", flint_strerror(rc));
        free(lr);
    }
}

/* ---- Prometheus ------------------------------------------------------------------------------------------ */

static void prom_set(prom_writer *w, const char *scope, const metric_set *s, const prom_label *labels, int n,
                     bool ops) {
    prom_label l[16];
    assert(n < 15);
    if (n > 0) memcpy(l, labels, (size_t)n * sizeof *l);
    for (int i = 0; i < s->n; i++) {
        const metric_value *v = &s->v[i];
        if (!v->op) {
            prom_add(w, scope, v, labels, n);
        } else if (ops) {
            l[n] = (prom_label){"operator_name", v->op};
            prom_add(w, "taskmanager_job_task_operator", v, l, n + 1);
        }
    }
}

void rest_h_prometheus(rest_call *c) {
    const jobmanager *jm = c->rest->jm;
    prom_writer *w = prom_new();
    metric_set s;
    metric_set_init(&s);
    jobmanager_scope(jm, &s);
    prom_set(w, "jobmanager", &s, NULL, 0, false);
    metric_set_clear(&s);
    for (int i = 0, n = jm_rm_count(jm->rm); i < n; i++) {
        const jm_tm *tm = jm_rm_get(jm->rm, i);
        const jm_tm_entry *e = jm_metrics_find_tm(jm->metrics, tm->resource_id);
        if (!e) continue;
        prom_label l[] = {{"tm_id", tm->resource_id}, {"host", tm->host}};
        prom_set(w, "taskmanager", &e->metrics, l, 2, false);
    }
    for (int j = 0, n = jm_dispatcher_count(jm->dispatcher); j < n; j++) {
        const jm_job *job = jm_dispatcher_get(jm->dispatcher, j);
        if (jm_job_is_terminal(job)) continue;   /* as Flink: a job's metrics end with it */
        prom_label jl[] = {{"job_id", job->id}, {"job_name", job->name}};
        job_scope(jm, job, &s);
        prom_set(w, "jobmanager_job", &s, jl, 2, false);
        metric_set_clear(&s);
        for (int vi = 0; vi < job->n_vertices; vi++) {
            const jm_vertex *v = &job->vertices[vi];
            for (int k = 0; k < v->parallelism; k++) {
                const jm_exec *ex = &v->execs[k];
                const jm_task_entry *e = jm_metrics_find_task(jm->metrics, ex->id);
                if (!e) continue;
                char sub[16], att[16];
                snprintf(sub, sizeof sub, "%d", k);
                snprintf(att, sizeof att, "%d", ex->attempt);
                prom_label tl[] = {{"job_id", job->id},         {"job_name", job->name},
                                   {"task_id", v->id},          {"task_name", v->name},
                                   {"subtask_index", sub},      {"task_attempt_num", att},
                                   {"task_attempt_id", ex->id}, {"tm_id", e->resource_id}};
                prom_set(w, "taskmanager_job_task", &e->metrics, tl, 8, true);
            }
        }
    }
    size_t len;
    char *text = prom_finish(w, &len);
    reply_bytes(c, HTTP_OK, PROM_TYPE, text, len);
    free(text);
}

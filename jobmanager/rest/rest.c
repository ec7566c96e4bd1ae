/* The jobmanager's REST server: Flink's REST paths and JSON field names over libevent's evhttp
 * (JSON built with jansson), and the web status page served from the table compiled into the
 * binary (rest/web_assets.h) -- a request never names a file that gets opened.
 *
 * Every request goes through one callback: the path (query ignored) is checked (no encoded slash,
 * backslash, NUL or percent), percent-decoded once, checked again (no "..", NUL, backslash or
 * control byte: such paths answer 404), split into segments and matched against
 * the route table (method mask, pattern with ":name" segments, handler), then against the asset
 * table. No match is 404, a match with another method is 405 with an Allow header, both with
 * Flink's error shape {"errors":["..."]}. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>

#define LOG_MODULE "rest"
#include "config/config.h"
#include "flint/version.h"
#include "jm_dispatcher.h"
#include "jm_job.h"
#include "jm_rm.h"
#include "jm_server.h"
#include "graph/graph.h"
#include "rest/rest.h"
#include "rest/rest_internal.h"
#include "rest/web_assets.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/timeutil.h"

/* Limits: bodies are small JSON objects (savepoint and stop requests), and no browser needs more
 * than a few KiB of headers. */
#define REST_MAX_HEADERS_SIZE (16 * 1024)
#define REST_MAX_BODY_SIZE (64 * 1024)
#define REST_TIMEOUT_S 30          /* an idle or stalled connection is closed after this */
#define REST_ERROR_PATH_MAX 200    /* how much of a bad path an error message echoes */
#define REST_MAX_EXCEPTIONS 20     /* Flink's default of the exceptions handler's maxExceptions */
#define HTTP_ACCEPTED_ 202
#define HTTP_CONFLICT_ 409

#define JSON_TYPE "application/json; charset=UTF-8"
#define HIDDEN_CONTENT "******"   /* Flink's mask for sensitive config values */
#define METHODS_GET (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define METHODS_ALL                                                                            \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

typedef void (*rest_handler)(rest_call *call);

typedef struct rest_route {
    unsigned methods;                 /* EVHTTP_REQ_* mask */
    const char *pattern;              /* "/taskmanagers/:taskmanagerid" */
    rest_handler fn;
} rest_route;

/* ---- JSON helpers ---------------------------------------------------------------------------- */

/* jansson returns NULL only when out of memory or on a malformed format: both are bugs or fatal. */
json_t *jcheck(json_t *v) {
    if (!v) {
        log_error("cannot build JSON (out of memory?)");
        abort();
    }
    return v;
}

/* A JSON string from text that may come from outside (config values, taskmanager ids, request
 * paths): invalid UTF-8 and control bytes become '?', so the answer is always valid JSON. */
json_t *jstr(const char *s) {
    if (!s) s = "";
    json_t *v = json_string(s);
    if (v) return v;
    char *copy = xstrdup(s);
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80 || *p < 0x20) *p = '?';
    v = jcheck(json_string(copy));
    free(copy);
    return v;
}

/* The text of a bad path for an error message: at most REST_ERROR_PATH_MAX bytes. */
json_t *jpath(const char *path) {
    char buf[REST_ERROR_PATH_MAX + 4];
    size_t n = strlen(path);
    if (n > REST_ERROR_PATH_MAX) {
        memcpy(buf, path, REST_ERROR_PATH_MAX);
        strcpy(buf + REST_ERROR_PATH_MAX, "...");
    } else {
        memcpy(buf, path, n + 1);
    }
    for (unsigned char *p = (unsigned char *)buf; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?';
    return jstr(buf);
}

/* ---- Responses ------------------------------------------------------------------------------- */

/* Send code with a body; data is copied. HEAD gets the headers (with the body's length) only. */
void reply_bytes(rest_call *c, int code, const char *type, const void *data, size_t len) {
    assert(c && c->req && type && (data || len == 0));
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        log_error("out of memory answering a request");
        abort();
    }
    if (evhttp_request_get_command(c->req) == EVHTTP_REQ_HEAD) {
        char lenstr[32];
        snprintf(lenstr, sizeof lenstr, "%zu", len);
        evhttp_add_header(h, "Content-Length", lenstr);
    } else {
        evbuffer_add(body, data, len);
    }
    evhttp_send_reply(c->req, code, NULL, body);
    evbuffer_free(body);
}

/* Send body (a reference is stolen) as JSON. */
void reply_json(rest_call *c, int code, json_t *body) {
    assert(body);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        log_error("cannot serialize a JSON answer (out of memory?)");
        abort();
    }
    reply_bytes(c, code, JSON_TYPE, text, strlen(text));
    free(text);
}

/* Flink's error shape: {"errors":["message"]}; msg is stolen. */
void reply_error_json(rest_call *c, int code, json_t *msg) {
    json_t *errors = jcheck(json_array());
    json_array_append_new(errors, msg);
    reply_json(c, code, jcheck(json_pack("{s:o}", "errors", errors)));
}

void reply_error(rest_call *c, int code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error_json(c, code, jstr(msg));
}

void reply_not_found(rest_call *c) {
    json_t *path = jpath(c->raw_path);
    char *msg = xasprintf("Not found: %s", json_string_value(path));
    json_decref(path);
    reply_error_json(c, HTTP_NOTFOUND, jstr(msg));
    free(msg);
}

/* ---- Cluster data ---------------------------------------------------------------------------- */

/* Job counts by state for /overview (jobs-running counts every job not yet terminal, as Flink). */
static jm_job_counts count_jobs(const jobmanager *jm) {
    assert(jm && jm->dispatcher);
    return jm_dispatcher_job_counts(jm->dispatcher);
}

/* Flink's task counts of a job overview: lower-case state names and "total". */
static json_t *job_task_counts_json(const jm_job *job) {
    int counts[JM_EXEC_STATE_COUNT];
    jm_job_state_counts(job, counts);
    json_t *o = jcheck(json_object());
    json_object_set_new(o, "total", json_integer(job->n_execs));
    for (int s = 0; s < JM_EXEC_STATE_COUNT; s++) {
        char name[32];
        snprintf(name, sizeof name, "%s", jm_exec_state_name((jm_exec_state)s));
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        json_object_set_new(o, name, json_integer(counts[s]));
    }
    return o;
}

/* Task counts by upper-case state name (vertex "tasks", job "status-counts"). */
static json_t *state_counts_json(const int counts[JM_EXEC_STATE_COUNT]) {
    json_t *o = jcheck(json_object());
    for (int s = 0; s < JM_EXEC_STATE_COUNT; s++)
        json_object_set_new(o, jm_exec_state_name((jm_exec_state)s), json_integer(counts[s]));
    return o;
}

static int64_t job_duration(const jm_job *job, int64_t now) {
    return (job->end_time >= 0 ? job->end_time : now) - job->start_time;
}

/* Append one object per job (newest first) to jobs: {"id","status"} for /jobs, Flink's job
 * overview ({"jid","name","state","start-time","end-time","duration","last-modification",
 * "tasks":{...}}) for /jobs/overview. */
static void add_jobs(const jobmanager *jm, json_t *jobs, bool overview) {
    assert(jm && json_is_array(jobs));
    int64_t now = time_wall_ms();
    for (int i = 0, n = jm_dispatcher_count(jm->dispatcher); i < n; i++) {
        const jm_job *job = jm_dispatcher_get(jm->dispatcher, i);
        const char *state = jm_job_state_name(job->state);
        if (!overview) {
            json_array_append_new(jobs, jcheck(json_pack("{s:s, s:s}", "id", job->id, "status", state)));
            continue;
        }
        json_array_append_new(
            jobs, jcheck(json_pack("{s:s, s:o, s:s, s:I, s:I, s:I, s:I, s:o}",
                                   "jid", job->id,
                                   "name", jstr(job->name),
                                   "state", state,
                                   "start-time", (json_int_t)job->start_time,
                                   "end-time", (json_int_t)job->end_time,
                                   "duration", (json_int_t)job_duration(job, now),
                                   "last-modification", (json_int_t)job->last_modification,
                                   "tasks", job_task_counts_json(job))));
    }
}

/* A taskmanager's address in Flink's "path" field: flint://host:dataPort/taskmanager/<id>, with
 * an IPv6 host in brackets. */
static void tm_path(const jm_tm *tm, char *buf, size_t len) {
    assert(tm && buf && len > 0);
    bool v6 = strchr(tm->host, ':') != NULL;
    snprintf(buf, len, "flint://%s%s%s:%d/taskmanager/%s", v6 ? "[" : "", tm->host, v6 ? "]" : "",
             tm->data_port, tm->resource_id);
}

/* Wall-clock ms of a monotonic timestamp (ms) taken in this process. */
int64_t mono_to_wall_ms(int64_t mono_ms) {
    return time_wall_ms() - (time_mono_ms() - mono_ms);
}

/* Flink's taskmanager info object. */
static json_t *tm_json(const jobmanager *jm, const jm_tm *tm) {
    assert(tm);
    char path[sizeof tm->host + sizeof tm->resource_id + 64];
    tm_path(tm, path, sizeof path);
    json_t *hw = jcheck(json_pack("{s:i, s:I, s:I, s:I}",
                                  "cpuCores", tm->hardware.cpu_cores,
                                  "physicalMemory", (json_int_t)tm->hardware.physical_memory,
                                  "freeMemory", (json_int_t)tm->hardware.free_memory,
                                  "managedMemory", (json_int_t)tm->hardware.managed_memory));
    json_t *o = jcheck(json_pack("{s:o, s:o, s:i, s:i, s:I, s:i, s:i, s:o, s:o, s:o}",
                            "id", jstr(tm->resource_id),
                            "path", jstr(path),
                            "dataPort", tm->data_port,
                            "jmxPort", -1,
                            "timeSinceLastHeartbeat",
                            (json_int_t)mono_to_wall_ms(tm->last_heartbeat_ms),
                            "slotsNumber", tm->num_slots,
                            "freeSlots", tm->free_slots,
                            "totalResource", jcheck(json_object()),
                            "freeResource", jcheck(json_object()),
                            "hardware", hw));
    rest_tm_add_metrics(jm, tm, o);
    return o;
}

/* Whether a config key holds a secret, by Flink's rule (GlobalConfiguration.isSensitive): its
 * value is shown as "******". */
static bool key_is_sensitive(const char *key) {
    static const char *const words[] = {"password", "secret", "fs.azure.account.key", "apikey",
                                        "api-key", "auth-params", "service-key", "token",
                                        "basic-auth", "jaas.config", "http-headers"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(key, words[i])) return true;
    return false;
}

/* /config's timezone: the local zone's abbreviation ("UTC", "CET") and its offset in ms. */
static void local_timezone(char *name, size_t len, int64_t *offset_ms) {
    time_t now = time(NULL);
    struct tm lt;
    if (!localtime_r(&now, &lt)) {
        snprintf(name, len, "UTC");
        *offset_ms = 0;
        return;
    }
    *offset_ms = (int64_t)lt.tm_gmtoff * 1000;
    if (lt.tm_gmtoff == 0 && (!lt.tm_zone || !strcmp(lt.tm_zone, "GMT") || !strcmp(lt.tm_zone, "UTC")))
        snprintf(name, len, "UTC");
    else
        snprintf(name, len, "%s", lt.tm_zone ? lt.tm_zone : "UTC");
}

/* ---- Handlers -------------------------------------------------------------------------------- */

static const web_asset *find_asset(const char *path) {
    for (int i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, path) == 0) return &web_assets[i];
    return NULL;
}

/* The assets are ours (index.html loads style.css and app.js from this server only). */
static void reply_asset(rest_call *c, const web_asset *a) {
    assert(a);
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                      "frame-ancestors 'none'; base-uri 'none'");
    reply_bytes(c, HTTP_OK, a->content_type, a->data, a->len);
}

static void h_index(rest_call *c) {
    const web_asset *a = find_asset("/index.html");
    if (!a) {
        reply_not_found(c);
        return;
    }
    reply_asset(c, a);
}

/* GET /overview: Flink's cluster overview. */
static void h_overview(rest_call *c) {
    const jobmanager *jm = c->rest->jm;
    jm_job_counts jobs = count_jobs(jm);
    reply_json(c, HTTP_OK,
               jcheck(json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s}",
                                "taskmanagers", jm_rm_count(jm->rm),
                                "slots-total", jm_rm_slots_total(jm->rm),
                                "slots-available", jm_rm_slots_free(jm->rm),
                                "jobs-running", jobs.running,
                                "jobs-finished", jobs.finished,
                                "jobs-cancelled", jobs.canceled,
                                "jobs-failed", jobs.failed,
                                "flink-version", FLINT_VERSION,
                                "flint-version", FLINT_VERSION,
                                "flink-commit", "")));
}

/* GET /config: Flink's dashboard configuration. */
static void h_config(rest_call *c) {
    const jobmanager *jm = c->rest->jm;
    char tz[64];
    int64_t tz_offset;
    local_timezone(tz, sizeof tz, &tz_offset);
    json_t *features = jcheck(json_pack("{s:b, s:b, s:b, s:b}", "web-submit", 0, "web-cancel",
                                        config_bool(jm->cfg, CFG_WEB_CANCEL_ENABLE),
                                        "web-rescale", 0, "web-history", 0));
    reply_json(c, HTTP_OK,
               jcheck(json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:o}",
                                "refresh-interval",
                                (json_int_t)config_int(jm->cfg, CFG_WEB_REFRESH_INTERVAL),
                                "timezone-name", tz,
                                "timezone-offset", (json_int_t)tz_offset,
                                "flink-version", FLINT_VERSION,
                                "flint-version", FLINT_VERSION,
                                "flink-revision", "",
                                "features", features)));
}

static void collect_config(const char *key, const char *value, void *ud) {
    json_t *map = ud;
    json_object_set_new(map, key, jstr(value));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET /jobmanager/config: the effective configuration as [{"key","value"}], sorted by key: every
 * key set by file or -D, plus the endpoints as bound (port 0 shows the port picked). */
static void h_jm_config(rest_call *c) {
    const jobmanager *jm = c->rest->jm;
    json_t *map = jcheck(json_object());
    config_foreach_set(jm->cfg, collect_config, map);
    char port[16];
    json_object_set_new(map, "jobmanager.rpc.address",
                        jstr(config_str(jm->cfg, CFG_JOBMANAGER_RPC_ADDRESS)));
    snprintf(port, sizeof port, "%d", jm->rpc_port);
    json_object_set_new(map, "jobmanager.rpc.port", jstr(port));
    json_object_set_new(map, "rest.address", jstr(config_str(jm->cfg, CFG_REST_ADDRESS)));
    snprintf(port, sizeof port, "%d", c->rest->port);
    json_object_set_new(map, "rest.port", jstr(port));
    json_object_set_new(map, "heartbeat.interval", jstr(config_get(jm->cfg, "heartbeat.interval")));
    json_object_set_new(map, "heartbeat.timeout", jstr(config_get(jm->cfg, "heartbeat.timeout")));

    size_t n = json_object_size(map), i = 0;
    const char **keys = xcalloc(n ? n : 1, sizeof *keys);
    const char *key;
    json_t *value;
    json_object_foreach(map, key, value) keys[i++] = key;
    assert(i == n);
    qsort(keys, n, sizeof *keys, cmp_str);

    json_t *entries = jcheck(json_array());
    for (i = 0; i < n; i++) {
        json_t *v = key_is_sensitive(keys[i]) ? jstr(HIDDEN_CONTENT)
                                              : json_incref(json_object_get(map, keys[i]));
        json_array_append_new(entries,
                              jcheck(json_pack("{s:o, s:o}", "key", jstr(keys[i]), "value", v)));
    }
    free(keys);
    json_decref(map);
    reply_json(c, HTTP_OK, entries);
}

/* GET /taskmanagers: every registered taskmanager, in registration order. */
static void h_taskmanagers(rest_call *c) {
    jm_rm *rm = c->rest->jm->rm;
    json_t *tms = jcheck(json_array());
    for (int i = 0, n = jm_rm_count(rm); i < n; i++) json_array_append_new(tms, tm_json(c->rest->jm, jm_rm_get(rm, i)));
    reply_json(c, HTTP_OK, jcheck(json_pack("{s:o}", "taskmanagers", tms)));
}

/* GET /taskmanagers/:taskmanagerid: one taskmanager. */
static void h_taskmanager(rest_call *c) {
    assert(c->nparams == 1);
    jm_tm *tm = jm_rm_find(c->rest->jm->rm, c->params[0]);
    if (!tm) {
        json_t *id = jpath(c->params[0]);
        char *msg = xasprintf("No TaskManager registered under %s.", json_string_value(id));
        json_decref(id);
        reply_error_json(c, HTTP_NOTFOUND, jstr(msg));
        free(msg);
        return;
    }
    reply_json(c, HTTP_OK, tm_json(c->rest->jm, tm));
}

/* GET /jobs: {"jobs":[{"id","status"}]}. */
static void h_jobs(rest_call *c) {
    json_t *jobs = jcheck(json_array());
    add_jobs(c->rest->jm, jobs, false);
    reply_json(c, HTTP_OK, jcheck(json_pack("{s:o}", "jobs", jobs)));
}

/* GET /jobs/overview: {"jobs":[<job overview>]}. */
static void h_jobs_overview(rest_call *c) {
    json_t *jobs = jcheck(json_array());
    add_jobs(c->rest->jm, jobs, true);
    reply_json(c, HTTP_OK, jcheck(json_pack("{s:o}", "jobs", jobs)));
}

/* ---- Jobs ------------------------------------------------------------------------------------ */

/* The job named by the first path parameter, or a 404 {"errors":["Job <id> not found"]}. */
jm_job *find_job(rest_call *c) {
    assert(c->nparams >= 1);
    jm_job *job = jm_dispatcher_find(c->rest->jm->dispatcher, c->params[0]);
    if (!job) {
        json_t *id = jpath(c->params[0]);
        char *msg = xasprintf("Job %s not found", json_string_value(id));
        json_decref(id);
        reply_error_json(c, HTTP_NOTFOUND, jstr(msg));
        free(msg);
    }
    return job;
}

/* The vertex named by the second path parameter (REST id or graph id), or a 404. */
jm_vertex *find_vertex(rest_call *c, const jm_job *job) {
    assert(c->nparams >= 2);
    jm_vertex *v = jm_job_find_vertex(job, c->params[1]);
    if (!v) {
        json_t *id = jpath(c->params[1]);
        char *msg = xasprintf("Vertex %s not found in job %s", json_string_value(id), job->id);
        json_decref(id);
        reply_error_json(c, HTTP_NOTFOUND, jstr(msg));
        free(msg);
    }
    return v;
}

/* Flink's vertex I/O metrics (all complete: every task reports them). */
static json_t *io_metrics_json(const jm_task_metrics *io) {
    return jcheck(json_pack("{s:I, s:b, s:I, s:b, s:I, s:b, s:I, s:b}",
                            "read-bytes", (json_int_t)io->bytes_in, "read-bytes-complete", 1,
                            "write-bytes", (json_int_t)io->bytes_out, "write-bytes-complete", 1,
                            "read-records", (json_int_t)io->records_in, "read-records-complete", 1,
                            "write-records", (json_int_t)io->records_out, "write-records-complete", 1));
}

/* Flink's rule for a vertex's times: start = earliest DEPLOYING of its subtasks; end = latest
 * state change once all are terminal, else -1; duration up to end or now; all -1 before any
 * subtask deployed. */
static void vertex_times(const jm_vertex *v, int64_t now, int64_t *start, int64_t *end, int64_t *duration) {
    int64_t st = INT64_MAX, en = -1;
    bool all_terminal = true;
    for (int k = 0; k < v->parallelism; k++) {
        const jm_exec *ex = &v->execs[k];
        int64_t deployed = ex->timestamps[JM_EXEC_DEPLOYING];
        if (deployed > 0 && deployed < st) st = deployed;
        all_terminal = all_terminal && jm_exec_state_terminal(ex->state);
        if (ex->timestamps[ex->state] > en) en = ex->timestamps[ex->state];
    }
    if (st == INT64_MAX) {
        *start = *end = *duration = -1;
    } else if (all_terminal) {
        *start = st;
        *end = en;
        *duration = en - st;
    } else {
        *start = st;
        *end = -1;
        *duration = now - st;
    }
}

static json_t *vertex_json(const jm_vertex *v, int64_t now) {
    int counts[JM_EXEC_STATE_COUNT];
    jm_vertex_state_counts(v, counts);
    jm_task_metrics io;
    jm_vertex_io(v, &io);
    int64_t start, end, duration;
    vertex_times(v, now, &start, &end, &duration);
    return jcheck(json_pack("{s:s, s:o, s:i, s:i, s:s, s:I, s:I, s:I, s:o, s:o}",
                            "id", v->id,
                            "name", jstr(v->name),
                            "maxParallelism", v->max_parallelism,
                            "parallelism", v->parallelism,
                            "status", jm_exec_state_name(jm_vertex_aggregate_state(counts, v->parallelism)),
                            "start-time", (json_int_t)start,
                            "end-time", (json_int_t)end,
                            "duration", (json_int_t)duration,
                            "tasks", state_counts_json(counts),
                            "metrics", io_metrics_json(&io)));
}

/* Flink's plan: one node per job vertex with its inputs (the edges into it). */
json_t *plan_json(const jm_job *job) {
    json_t *nodes = jcheck(json_array());
    for (int i = 0; i < job->n_vertices; i++) {
        const jm_vertex *v = &job->vertices[i];
        json_t *node = jcheck(json_pack("{s:s, s:i, s:s, s:s, s:o, s:o}",
                                        "id", v->id,
                                        "parallelism", v->parallelism,
                                        "operator", "",
                                        "operator_strategy", "",
                                        "description", jstr(v->name),
                                        "optimizer_properties", jcheck(json_object())));
        if (v->n_in > 0) {
            json_t *inputs = jcheck(json_array());
            for (int k = 0; k < v->n_in; k++) {
                const Flint__Graph__JobEdge *e = v->in_edges[k];
                char src[33];
                jm_vertex_rest_id(job->id, e->source_vertex, src);
                json_array_append_new(inputs, jcheck(json_pack("{s:i, s:s, s:s, s:s}",
                                                               "num", k,
                                                               "id", src,
                                                               "ship_strategy", graph_partitioner_name(e->partitioner),
                                                               "exchange", "pipelined_bounded")));
            }
            json_object_set_new(node, "inputs", inputs);
        }
        json_array_append_new(nodes, node);
    }
    return jcheck(json_pack("{s:s, s:o, s:s, s:o}", "jid", job->id, "name", jstr(job->name),
                            "type", "STREAMING", "nodes", nodes));
}

/* GET /jobs/:jobid: Flink's job details. */
static void h_job(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    int64_t now = time_wall_ms();
    json_t *timestamps = jcheck(json_object());
    for (int s = 0; s < JM_JOB_STATE_COUNT; s++)
        json_object_set_new(timestamps, jm_job_state_name((jm_job_state)s),
                            json_integer(job->timestamps[s]));
    json_t *vertices = jcheck(json_array());
    for (int i = 0; i < job->n_vertices; i++) json_array_append_new(vertices, vertex_json(&job->vertices[i], now));
    int counts[JM_EXEC_STATE_COUNT];
    jm_job_state_counts(job, counts);
    json_t *body = jcheck(json_pack("{s:s, s:o, s:b, s:s, s:s, s:I, s:I, s:I, s:i, s:I, s:o, s:o, s:o, s:o}",
                                    "jid", job->id,
                                    "name", jstr(job->name),
                                    "isStoppable", 0,
                                    "state", jm_job_state_name(job->state),
                                    "job-type", "STREAMING",
                                    "start-time", (json_int_t)job->start_time,
                                    "end-time", (json_int_t)job->end_time,
                                    "duration", (json_int_t)job_duration(job, now),
                                    "maxParallelism", job->graph->max_parallelism > 0 ? job->graph->max_parallelism : -1,
                                    "now", (json_int_t)now,
                                    "timestamps", timestamps,
                                    "vertices", vertices,
                                    "status-counts", state_counts_json(counts),
                                    "plan", plan_json(job)));
    reply_json(c, HTTP_OK, body);
}

/* A query parameter of the request, or NULL; *buf receives a copy. */
const char *query_param(rest_call *c, const char *name, char *buf, size_t len) {
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!q) return NULL;
    struct evkeyvalq params = {0};
    if (evhttp_parse_query_str(q, &params) != 0) {
        evhttp_clear_headers(&params);
        return NULL;
    }
    const char *v = evhttp_find_header(&params, name);
    const char *out = NULL;
    if (v) {
        snprintf(buf, len, "%s", v);
        out = buf;
    }
    evhttp_clear_headers(&params);
    return out;
}

static json_t *exception_entry_json(const jm_exception *x) {
    json_t *o = jcheck(json_pack("{s:s, s:o, s:I, s:o}", "exceptionName", x->name,
                                 "stacktrace", jstr(x->message), "timestamp", (json_int_t)x->timestamp,
                                 "failureLabels", jcheck(json_object())));
    if (x->task) json_object_set_new(o, "taskName", jstr(x->task));
    if (x->location) {
        json_object_set_new(o, "location", jstr(x->location));
        json_object_set_new(o, "endpoint", jstr(x->location));
    }
    if (x->resource_id) json_object_set_new(o, "taskManagerId", jstr(x->resource_id));
    return o;
}

/* GET /jobs/:jobid/exceptions[?maxExceptions=N]: Flink's exceptions with history. all-exceptions
 * lists every failed task (at most maxExceptions, default 20); the history has one entry per
 * failure that ended a run (a restart or the job's end), newest first, each with the failures
 * that happened while it was handled as concurrent exceptions. */
static void h_job_exceptions(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    int max = REST_MAX_EXCEPTIONS;
    char buf[32];
    const char *m = query_param(c, "maxExceptions", buf, sizeof buf);
    if (m) {
        int64_t n;
        if (str_parse_int(m, &n) != 0 || n < 0 || n > INT32_MAX) {
            reply_error(c, HTTP_BADREQUEST, "maxExceptions: expected a non-negative integer, got '%.20s'", m);
            return;
        }
        max = (int)n;
    }
    json_t *all = jcheck(json_array());
    bool truncated = false;
    for (int i = 0; i < job->n_exceptions; i++) {
        if (!job->exceptions[i].task) continue;   /* as Flink: the failed tasks only */
        if ((int)json_array_size(all) >= max) {
            truncated = true;
            break;
        }
        const jm_exception *x = &job->exceptions[i];
        json_t *o = jcheck(json_pack("{s:o, s:o, s:o, s:I}", "exception", jstr(x->message),
                                     "task", jstr(x->task ? x->task : ""),
                                     "location", jstr(x->location ? x->location : "(unassigned)"),
                                     "timestamp", (json_int_t)x->timestamp));
        if (x->resource_id) json_object_set_new(o, "taskManagerId", jstr(x->resource_id));
        json_array_append_new(all, o);
    }
    /* One history entry per failure that ended a run (newest first), with the failures that
     * happened while it was handled as its concurrent exceptions. */
    json_t *entries = jcheck(json_array());
    bool history_truncated = false;
    for (int r = job->n_exceptions - 1; r >= 0; r--) {
        const jm_exception *x = &job->exceptions[r];
        if (x->root != r) continue;
        if ((int)json_array_size(entries) >= max) {
            history_truncated = true;
            break;
        }
        json_t *root = exception_entry_json(x);
        json_t *concurrent = jcheck(json_array());
        for (int i = 0; i < job->n_exceptions; i++) {
            if (i == r || job->exceptions[i].root != r) continue;
            json_array_append_new(concurrent, exception_entry_json(&job->exceptions[i]));
        }
        json_object_set_new(root, "concurrentExceptions", concurrent);
        json_array_append_new(entries, root);
    }
    json_t *body = jcheck(json_pack("{s:o, s:b, s:o}", "all-exceptions", all, "truncated", truncated,
                                    "exceptionHistory",
                                    jcheck(json_pack("{s:o, s:b}", "entries", entries, "truncated",
                                                     history_truncated))));
    if (job->root_exception >= 0) {
        const jm_exception *root = &job->exceptions[job->root_exception];
        json_object_set_new(body, "root-exception", jstr(root->message));
        json_object_set_new(body, "timestamp", json_integer(root->timestamp));
    }
    reply_json(c, HTTP_OK, body);
}

double ratio_of(int64_t ms_per_second) {
    double r = (double)ms_per_second / 1000.0;
    return r < 0 ? 0 : r > 1 ? 1 : r;
}

/* GET /jobs/:jobid/vertices/:vertexid: Flink's vertex details with one entry per subtask. */
static void h_job_vertex(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    const jm_vertex *v = find_vertex(c, job);
    if (!v) return;
    int64_t now = time_wall_ms();
    json_t *subtasks = jcheck(json_array());
    for (int k = 0; k < v->parallelism; k++) {
        const jm_exec *ex = &v->execs[k];
        char loc[300];
        jm_exec_location(ex, loc, sizeof loc);
        int64_t start = ex->timestamps[JM_EXEC_DEPLOYING] > 0 ? ex->timestamps[JM_EXEC_DEPLOYING] : -1;
        int64_t end = jm_exec_state_terminal(ex->state) ? ex->timestamps[ex->state] : -1;
        int64_t duration = start < 0 ? -1 : (end >= 0 ? end : now) - start;
        json_array_append_new(
            subtasks,
            jcheck(json_pack("{s:i, s:s, s:i, s:o, s:I, s:I, s:I, s:o, s:o}",
                             "subtask", ex->subtask,
                             "status", jm_exec_state_name(ex->state),
                             "attempt", ex->attempt,
                             "endpoint", jstr(ex->has_location ? loc : "(unassigned)"),
                             "start-time", (json_int_t)start,
                             "end-time", (json_int_t)end,
                             "duration", (json_int_t)duration,
                             "metrics", io_metrics_json(&ex->metrics),
                             "taskmanager-id", jstr(ex->has_location ? ex->loc.resource_id : "(unassigned)"))));
    }
    reply_json(c, HTTP_OK,
               jcheck(json_pack("{s:s, s:o, s:i, s:i, s:I, s:o}", "id", v->id, "name", jstr(v->name),
                                "parallelism", v->parallelism, "maxParallelism", v->max_parallelism,
                                "now", (json_int_t)now, "subtasks", subtasks)));
}

/* GET /jobs/:jobid/vertices/:vertexid/backpressure: Flink's back pressure of a vertex from the
 * latest backPressuredTimeMsPerSecond of each subtask (levels ok <= 0.10 < low <= 0.5 < high); the
 * vertex's level is its worst subtask's. */
static void h_job_vertex_backpressure(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    const jm_vertex *v = find_vertex(c, job);
    if (!v) return;
    json_t *subtasks = jcheck(json_array());
    double worst = 0;
    for (int k = 0; k < v->parallelism; k++) {
        const jm_exec *ex = &v->execs[k];
        double bp = ratio_of(ex->metrics.back_pressured_ms), idle = ratio_of(ex->metrics.idle_ms),
               busy = ratio_of(ex->metrics.busy_ms);
        if (bp > worst) worst = bp;
        json_array_append_new(subtasks,
                              jcheck(json_pack("{s:i, s:i, s:s, s:f, s:f, s:f}",
                                               "subtask", ex->subtask,
                                               "attempt-number", ex->attempt,
                                               "backpressure-level", jm_backpressure_level(bp),
                                               "ratio", bp, "idleRatio", idle, "busyRatio", busy)));
    }
    reply_json(c, HTTP_OK,
               jcheck(json_pack("{s:s, s:s, s:I, s:o}", "status", "ok",
                                "backpressure-level", jm_backpressure_level(worst),
                                "end-timestamp", (json_int_t)time_wall_ms(), "subtasks", subtasks)));
}

/* PATCH /jobs/:jobid[?mode=cancel]: cancel the job; 202 {} as Flink. */
static void h_job_cancel(rest_call *c) {
    char buf[32];
    const char *mode = query_param(c, "mode", buf, sizeof buf);
    if (mode && strcmp(mode, "cancel") != 0) {
        json_t *m = jpath(mode);
        char *msg = xasprintf("Unsupported mode '%s': the only mode is 'cancel'", json_string_value(m));
        json_decref(m);
        reply_error_json(c, HTTP_BADREQUEST, jstr(msg));
        free(msg);
        return;
    }
    const jm_job *job = find_job(c);
    if (!job) return;
    flint_err err = {0};
    if (jm_dispatcher_cancel(c->rest->jm->dispatcher, job->id, jm_time_now(), &err)) {
        reply_error(c, err.code == FLINT_STATE ? HTTP_CONFLICT_ : HTTP_INTERNAL, "%s", err.msg);
        return;
    }
    reply_json(c, HTTP_ACCEPTED_, jcheck(json_object()));
}

/* ---- Checkpoints and savepoints --------------------------------------------------------------- */

static const char *cp_type_name(int type, bool is_savepoint) {
    if (!is_savepoint) return "CHECKPOINT";
    return type == FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT ? "SAVEPOINT" : "SYNC_SAVEPOINT";
}

/* Flink's checkpoint statistics object (history entries and "latest"). */
static json_t *cp_record_json(const jm_cp_record *r) {
    static const char *const classes[] = {".PendingCheckpointStatistics", ".CompletedCheckpointStatistics",
                                          ".FailedCheckpointStatistics"};
    static const char *const status[] = {"IN_PROGRESS", "COMPLETED", "FAILED"};
    json_t *o = jcheck(json_pack(
        "{s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:s, s:o, s:I, s:I, s:I}",
        "className", classes[r->status],
        "id", (json_int_t)r->id,
        "status", status[r->status],
        "is_savepoint", r->is_savepoint,
        "trigger_timestamp", (json_int_t)r->trigger_timestamp,
        "latest_ack_timestamp", (json_int_t)(r->latest_ack_timestamp ? r->latest_ack_timestamp : -1),
        "checkpointed_size", (json_int_t)r->checkpointed_size,
        "state_size", (json_int_t)r->state_size,
        "end_to_end_duration", (json_int_t)r->end_to_end_duration,
        "alignment_buffered", (json_int_t)r->alignment_buffered,
        "processed_data", (json_int_t)r->alignment_buffered,
        "persisted_data", (json_int_t)0,
        "num_subtasks", r->num_subtasks,
        "num_acknowledged_subtasks", r->num_acknowledged_subtasks,
        "checkpoint_type", cp_type_name(r->type, r->is_savepoint),
        "tasks", jcheck(json_object()),
        "alignment_duration", (json_int_t)r->alignment_duration_max,
        "sync_duration", (json_int_t)r->sync_duration_max,
        "async_duration", (json_int_t)r->async_duration_max));
    if (r->is_savepoint) json_object_set_new(o, "savepointFormat", json_string("CANONICAL"));
    if (r->status == JM_CP_COMPLETED) {
        json_object_set_new(o, "external_path", jstr(r->external_path));
        json_object_set_new(o, "discarded", json_boolean(r->discarded));
    } else if (r->status == JM_CP_FAILED) {
        json_object_set_new(o, "failure_timestamp", json_integer(r->failure_timestamp));
        json_object_set_new(o, "failure_message", jstr(r->failure_message));
    }
    return o;
}

static json_t *cp_summary_json(const jm_cp_summary *s) {
    return jcheck(json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "min", (json_int_t)s->min,
                            "max", (json_int_t)s->max, "avg", (json_int_t)s->avg, "p50", (json_int_t)s->p50,
                            "p90", (json_int_t)s->p90, "p95", (json_int_t)s->p95, "p99", (json_int_t)s->p99,
                            "p999", (json_int_t)s->p999));
}

/* GET /jobs/:jobid/checkpoints: Flink's checkpoint statistics (counts, summary, latest, history). */
static void h_job_checkpoints(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    jm_cp_stats st;
    jm_cp_get_stats(jm_dispatcher_job_checkpoints(c->rest->jm->dispatcher, job), &st);
    json_t *counts = jcheck(json_pack("{s:I, s:I, s:I, s:I, s:I}", "restored", (json_int_t)st.restored,
                                      "total", (json_int_t)st.total, "in_progress", (json_int_t)st.in_progress,
                                      "completed", (json_int_t)st.completed, "failed", (json_int_t)st.failed));
    jm_cp_summary zero = {0};
    json_t *summary = jcheck(json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
                                       "checkpointed_size", cp_summary_json(&st.checkpointed_size),
                                       "state_size", cp_summary_json(&st.state_size),
                                       "end_to_end_duration", cp_summary_json(&st.end_to_end_duration),
                                       "alignment_buffered", cp_summary_json(&st.alignment_buffered),
                                       "processed_data", cp_summary_json(&st.alignment_buffered),
                                       "persisted_data", cp_summary_json(&zero)));
    json_t *restored = json_null();
    if (st.has_restored)
        restored = jcheck(json_pack("{s:I, s:I, s:b, s:o}", "id", (json_int_t)st.restored_id,
                                    "restore_timestamp", (json_int_t)st.restore_timestamp,
                                    "is_savepoint", st.restored_is_savepoint,
                                    "external_path", jstr(st.restored_path)));
    json_t *latest = jcheck(json_pack("{s:o, s:o, s:o, s:o}",
                                      "completed", st.latest_completed ? cp_record_json(st.latest_completed) : json_null(),
                                      "savepoint", st.latest_savepoint ? cp_record_json(st.latest_savepoint) : json_null(),
                                      "failed", st.latest_failed ? cp_record_json(st.latest_failed) : json_null(),
                                      "restored", restored));
    json_t *history = jcheck(json_array());
    for (int i = 0; i < st.n_history; i++) json_array_append_new(history, cp_record_json(st.history[i]));
    reply_json(c, HTTP_OK, jcheck(json_pack("{s:o, s:o, s:o, s:o}", "counts", counts, "summary", summary,
                                            "latest", latest, "history", history)));
}

/* GET /jobs/:jobid/checkpoints/details/:checkpointid: one checkpoint of the history. */
static void h_job_checkpoint_details(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    int64_t id;
    if (str_parse_int(c->params[1], &id) != 0) {
        reply_error(c, HTTP_BADREQUEST, "checkpointid: expected a number");
        return;
    }
    jm_cp_stats st;
    jm_cp_get_stats(jm_dispatcher_job_checkpoints(c->rest->jm->dispatcher, job), &st);
    for (int i = 0; i < st.n_history; i++)
        if (st.history[i]->id == id) {
            reply_json(c, HTTP_OK, cp_record_json(st.history[i]));
            return;
        }
    reply_error(c, HTTP_NOTFOUND, "Could not find checkpointing statistics for checkpoint %lld.", (long long)id);
}

/* GET /jobs/:jobid/checkpoints/config: Flink's checkpoint configuration, plus Flint's storage and
 * restart settings. Without periodic checkpoints "interval" is Long.MAX_VALUE, as in Flink. */
static void h_job_checkpoints_config(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    jm_dispatcher *d = c->rest->jm->dispatcher;
    const jm_cp_config *k = jm_cp_get_config(jm_dispatcher_job_checkpoints(d, job));
    char restart[160];
    jm_restart_describe(jm_dispatcher_job_restart(d, job), restart, sizeof restart);
    bool rocks = strcasecmp(k->backend, "rocksdb") == 0;
    json_t *ext = jcheck(json_pack("{s:b, s:b}", "enabled", k->retention != JM_CP_NO_EXTERNALIZED,
                                   "delete_on_cancellation", k->retention != JM_CP_RETAIN_ON_CANCELLATION));
    json_t *o = jcheck(json_pack(
        "{s:s, s:I, s:I, s:I, s:i, s:o, s:s, s:s, s:b, s:i, s:I, s:b, s:b}",
        "mode", k->exactly_once ? "exactly_once" : "at_least_once",
        "interval", (json_int_t)(k->interval_ms > 0 ? k->interval_ms : INT64_MAX),
        "timeout", (json_int_t)k->timeout_ms,
        "min_pause", (json_int_t)k->min_pause_ms,
        "max_concurrent", k->max_concurrent,
        "externalization", ext,
        "state_backend", rocks ? "EmbeddedRocksDBStateBackend" : "HashMapStateBackend",
        "checkpoint_storage", "FileSystemCheckpointStorage",
        "unaligned_checkpoints", 0,
        "tolerable_failed_checkpoints", k->tolerable_failed,
        "aligned_checkpoint_timeout", (json_int_t)0,
        "checkpoints_after_tasks_finish", k->after_tasks_finish,
        "state_changelog_enabled", 0));
    json_object_set_new(o, "checkpointing_enabled", json_boolean(k->interval_ms > 0));
    json_object_set_new(o, "checkpoints_directory", jstr(jm_cp_job_dir(jm_dispatcher_job_checkpoints(d, job))));
    json_object_set_new(o, "savepoints_directory", jstr(k->savepoints_dir));
    json_object_set_new(o, "num_retained", json_integer(k->num_retained));
    json_object_set_new(o, "incremental", json_boolean(k->incremental));
    json_object_set_new(o, "externalized_checkpoint_retention", json_string(jm_cp_retention_name(k->retention)));
    json_object_set_new(o, "restart_strategy", jstr(restart));
    reply_json(c, HTTP_OK, o);
}

/* The request's body as a JSON object ({} when empty), or NULL after answering 400. */
static json_t *body_json(rest_call *c) {
    struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
    size_t n = in ? evbuffer_get_length(in) : 0;
    if (n == 0) return jcheck(json_object());
    json_error_t e;
    json_t *o = json_loadb((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n, 0, &e);
    if (!o || !json_is_object(o)) {
        reply_error(c, HTTP_BADREQUEST, "Request body is not a JSON object: %s", o ? "" : e.text);
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A string field of a request body: NULL when absent or null; false after answering 400. */
static bool body_string(rest_call *c, json_t *o, const char *key, const char **out) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) {
        reply_error(c, HTTP_BADREQUEST, "Field '%s' must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool body_bool(rest_call *c, json_t *o, const char *key, bool *out) {
    json_t *v = json_object_get(o, key);
    *out = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v)) {
        reply_error(c, HTTP_BADREQUEST, "Field '%s' must be true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static void trigger_reply(rest_call *c, int rc, const flint_err *err, const char *id) {
    if (rc) {
        int code = rc == FLINT_NOT_FOUND ? HTTP_NOTFOUND : rc == FLINT_STATE ? HTTP_CONFLICT_ : HTTP_BADREQUEST;
        reply_error(c, code, "%s", err->msg);
        return;
    }
    reply_json(c, HTTP_ACCEPTED_, jcheck(json_pack("{s:s}", "request-id", id)));
}

/* POST /jobs/:jobid/savepoints {"target-directory", "cancel-job"}: 202 {"request-id"}. */
static void h_job_savepoint_trigger(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    json_t *o = body_json(c);
    if (!o) return;
    const char *dir;
    bool cancel;
    if (body_string(c, o, "target-directory", &dir) && body_bool(c, o, "cancel-job", &cancel)) {
        char id[33];
        flint_err err = {0};
        int rc = jm_dispatcher_trigger_savepoint(c->rest->jm->dispatcher, job->id,
                                                 FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT, dir, cancel,
                                                 jm_time_now(), id, &err);
        trigger_reply(c, rc, &err, id);
    }
    json_decref(o);
}

/* POST /jobs/:jobid/stop {"targetDirectory", "drain"}: 202 {"request-id"}. */
static void h_job_stop(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    json_t *o = body_json(c);
    if (!o) return;
    const char *dir;
    bool drain;
    if (body_string(c, o, "targetDirectory", &dir) && body_bool(c, o, "drain", &drain)) {
        char id[33];
        flint_err err = {0};
        int rc = jm_dispatcher_trigger_savepoint(c->rest->jm->dispatcher, job->id,
                                                 drain ? FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_TERMINATE
                                                       : FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_SUSPEND,
                                                 dir, false, jm_time_now(), id, &err);
        trigger_reply(c, rc, &err, id);
    }
    json_decref(o);
}

/* GET /jobs/:jobid/savepoints/:triggerid: Flink's asynchronous operation result. */
static void h_job_savepoint_status(rest_call *c) {
    const jm_job *job = find_job(c);
    if (!job) return;
    flint_err err = {0};
    const jm_cp_trigger *t = jm_dispatcher_savepoint_status(c->rest->jm->dispatcher, job->id, c->params[1], &err);
    if (!t) {
        reply_error(c, HTTP_NOTFOUND, "%s", err.msg);
        return;
    }
    json_t *op;
    if (!t->done)
        op = json_null();
    else if (t->ok)
        op = jcheck(json_pack("{s:o}", "location", jstr(t->location)));
    else
        op = jcheck(json_pack("{s:{s:s, s:o}}", "failure-cause", "class", "flint.CheckpointException",
                              "stack-trace", jstr(t->failure)));
    reply_json(c, HTTP_OK, jcheck(json_pack("{s:{s:s}, s:o}", "status", "id", t->done ? "COMPLETED" : "IN_PROGRESS",
                                            "operation", op)));
}

/* The route table. First match wins, so literal patterns go before ":name" patterns that would
 * also match them ("/jobs/overview" before "/jobs/:jobid"). A path matching several patterns
 * with other methods answers 405 listing all of them. */
static const rest_route routes[] = {
    {METHODS_GET, "/", h_index},
    {METHODS_GET, "/config", h_config},
    {METHODS_GET, "/overview", h_overview},
    {METHODS_GET, "/jobmanager/config", h_jm_config},
    {METHODS_GET, "/taskmanagers", h_taskmanagers},
    {METHODS_GET, "/taskmanagers/:taskmanagerid", h_taskmanager},
    {METHODS_GET, "/jobs", h_jobs},
    {METHODS_GET, "/jobs/overview", h_jobs_overview},
    {METHODS_GET, "/jobs/:jobid", h_job},
    {EVHTTP_REQ_PATCH, "/jobs/:jobid", h_job_cancel},
    {METHODS_GET, "/jobs/:jobid/exceptions", h_job_exceptions},
    {METHODS_GET, "/jobs/:jobid/checkpoints", h_job_checkpoints},
    {METHODS_GET, "/jobs/:jobid/checkpoints/config", h_job_checkpoints_config},
    {METHODS_GET, "/jobs/:jobid/checkpoints/details/:checkpointid", h_job_checkpoint_details},
    {EVHTTP_REQ_POST, "/jobs/:jobid/savepoints", h_job_savepoint_trigger},
    {METHODS_GET, "/jobs/:jobid/savepoints/:triggerid", h_job_savepoint_status},
    {EVHTTP_REQ_POST, "/jobs/:jobid/stop", h_job_stop},
    {METHODS_GET, "/jobs/:jobid/vertices/:vertexid", h_job_vertex},
    {METHODS_GET, "/jobs/:jobid/vertices/:vertexid/backpressure", h_job_vertex_backpressure},
    /* issue 8: metrics, watermarks, plan, logs, Prometheus (rest_metrics.c) */
    {METHODS_GET, "/jobmanager/metrics", rest_h_jobmanager_metrics},
    {METHODS_GET, "/jobmanager/log", rest_h_jobmanager_log},
    {METHODS_GET, "/taskmanagers/:taskmanagerid/metrics", rest_h_taskmanager_metrics},
    {METHODS_GET, "/taskmanagers/:taskmanagerid/log", rest_h_taskmanager_log},
    {METHODS_GET, "/jobs/:jobid/plan", rest_h_job_plan},
    {METHODS_GET, "/jobs/:jobid/metrics", rest_h_job_metrics},
    {METHODS_GET, "/jobs/:jobid/vertices/:vertexid/metrics", rest_h_vertex_metrics},
    {METHODS_GET, "/jobs/:jobid/vertices/:vertexid/subtasks/metrics", rest_h_vertex_subtasks_metrics},
    {METHODS_GET, "/jobs/:jobid/vertices/:vertexid/watermarks", rest_h_vertex_watermarks},
    {METHODS_GET, "/metrics", rest_h_prometheus},
};

/* ---- Routing --------------------------------------------------------------------------------- */

/* Whether a raw (still encoded) path may be routed: no encoded slash, backslash, NUL or percent
 * (which would hide a double encoding such as %252f), no literal backslash. */
static bool raw_path_ok(const char *raw) {
    static const char *const banned[] = {"%2f", "%5c", "%00", "%25"};
    if (raw[0] != '/' || strchr(raw, '\\')) return false;
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strcasestr(raw, banned[i])) return false;
    return true;
}

/* Whether a decoded path (len bytes, may hold a NUL) may be routed: no NUL, control byte,
 * backslash or "..". */
static bool decoded_path_ok(const char *path, size_t len) {
    if (len == 0 || len > REST_MAX_PATH || strlen(path) != len || path[0] != '/') return false;
    if (strstr(path, "..") || strchr(path, '\\')) return false;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

/* Split a checked path into segments. A trailing slash is ignored ("/overview/"); an empty
 * segment elsewhere ("/jobs//overview") or too many segments fail. */
static bool path_split(const char *path, rest_path *out) {
    assert(path[0] == '/' && strlen(path) <= REST_MAX_PATH);
    strcpy(out->buf, path);
    out->nseg = 0;
    char *s = out->buf + 1;
    while (*s) {
        char *slash = strchr(s, '/');
        if (slash == s) return false;
        if (out->nseg == REST_MAX_SEGS) return false;
        out->seg[out->nseg++] = s;
        if (!slash) break;
        *slash = '\0';
        s = slash + 1;
    }
    return true;
}

/* Match a pattern ("/taskmanagers/:taskmanagerid") against a split path, collecting the ":name"
 * segments into c->params. */
static bool route_match(const char *pattern, const rest_path *p, rest_call *c) {
    assert(pattern[0] == '/');
    int i = 0;
    c->nparams = 0;
    for (const char *s = pattern + 1; *s;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (i == p->nseg) return false;
        if (s[0] == ':') {
            assert(c->nparams < REST_MAX_PARAMS);
            c->params[c->nparams++] = p->seg[i];
        } else if (strlen(p->seg[i]) != n || memcmp(p->seg[i], s, n) != 0) {
            return false;
        }
        i++;
        s += n + (slash ? 1 : 0);
    }
    return i == p->nseg;
}

static const char *method_name(enum evhttp_cmd_type m) {
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

/* "GET, HEAD" for a method mask. */
static void allow_text(unsigned methods, char *buf, size_t len) {
    assert(len > 0);
    buf[0] = '\0';
    for (unsigned bit = 1; bit <= EVHTTP_REQ_PATCH; bit <<= 1) {
        if (!(methods & bit)) continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", used ? ", " : "", method_name(bit));
    }
}

static void reply_method_not_allowed(rest_call *c, unsigned allowed) {
    char allow[128];
    allow_text(allowed, allow, sizeof allow);
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", allow);
    json_t *path = jpath(c->raw_path);
    char *msg = xasprintf("Method %s is not allowed on %s; allowed: %s",
                          method_name(evhttp_request_get_command(c->req)),
                          json_string_value(path), allow);
    json_decref(path);
    reply_error_json(c, HTTP_BADMETHOD, jstr(msg));
    free(msg);
}

/* Route a checked, split path: a handler, an asset, 405 or 404. */
static void dispatch(rest_call *c) {
    unsigned method = evhttp_request_get_command(c->req);
    unsigned allowed = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_match(routes[i].pattern, c->path, c)) continue;
        if (routes[i].methods & method) {
            routes[i].fn(c);
            return;
        }
        allowed |= routes[i].methods;
    }
    if (!allowed && c->path->nseg == 1) {
        char name[REST_MAX_PATH + 2];
        snprintf(name, sizeof name, "/%s", c->path->seg[0]);
        const web_asset *a = find_asset(name);
        if (a && (method & METHODS_GET)) {
            reply_asset(c, a);
            return;
        }
        if (a) allowed = METHODS_GET;
    }
    if (allowed)
        reply_method_not_allowed(c, allowed);
    else
        reply_not_found(c);
}

static void on_request(struct evhttp_request *req, void *arg) {
    jm_rest *rest = arg;
    rest_call c = {.rest = rest, .req = req, .raw_path = "?"};
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    if (!uri) {
        reply_error(&c, HTTP_BADREQUEST, "Bad request URI");
        return;
    }
    const char *raw = evhttp_uri_get_path(uri);
    if (!raw || !raw[0]) raw = "/";
    c.raw_path = raw;

    rest_path path;
    bool ok = raw_path_ok(raw);
    if (ok) {
        size_t len = 0;
        char *decoded = evhttp_uridecode(raw, 0, &len);
        ok = decoded && decoded_path_ok(decoded, len) && path_split(decoded, &path);
        free(decoded);
    }
    if (!ok) {
        log_debug("refused %s %.200s", method_name(evhttp_request_get_command(req)), raw);
        reply_not_found(&c);
        return;
    }
    c.path = &path;
    dispatch(&c);
    log_debug("%s %.200s -> %d", method_name(evhttp_request_get_command(req)), raw,
              evhttp_request_get_response_code(req));
}

/* ---- Lifecycle ------------------------------------------------------------------------------- */

static int bound_port(struct evhttp_bound_socket *sock) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* The first address host resolves to, as numeric text, so that a name that does not resolve is
 * reported here (evhttp would only log it) and binding uses the address we name in messages. */
static int resolve_numeric(const char *host, char *ip, size_t len, flint_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc == 0)
        rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, (socklen_t)len, NULL, 0, NI_NUMERICHOST);
    if (ai) freeaddrinfo(ai);
    if (rc != 0)
        return flint_err_set(err, FLINT_UNAVAILABLE, "cannot resolve '%s': %s", host,
                             gai_strerror(rc));
    return 0;
}

jm_rest *jm_rest_start(struct jobmanager *jm, const char *host, int port, flint_err *err) {
    assert(jm && jm->base && jm->cfg && jm->rm);
    assert(port >= 0 && port <= 65535);
    const char *bind_host = (host && host[0]) ? host : "0.0.0.0";
    char ip[NI_MAXHOST];
    if (resolve_numeric(bind_host, ip, sizeof ip, err) != 0) return NULL;
    jm_rest *rest = XNEW(jm_rest);
    rest->jm = jm;
    rest->http = evhttp_new(jm->base);
    if (!rest->http) {
        free(rest);
        flint_err_set(err, FLINT_NOMEM, "cannot create the REST server");
        return NULL;
    }
    evhttp_set_allowed_methods(rest->http, METHODS_ALL);   /* so that we answer 405 ourselves */
    evhttp_set_max_headers_size(rest->http, REST_MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(rest->http, REST_MAX_BODY_SIZE);
    evhttp_set_timeout(rest->http, REST_TIMEOUT_S);
    evhttp_set_gencb(rest->http, on_request, rest);

    errno = 0;
    rest->sock = evhttp_bind_socket_with_handle(rest->http, ip, (ev_uint16_t)port);
    if (!rest->sock || (rest->port = bound_port(rest->sock)) < 0) {
        int e = errno;
        flint_err_set(err, FLINT_UNAVAILABLE, "cannot listen on %s:%d: %s", bind_host, port,
                      e ? strerror(e) : "cannot bind");
        evhttp_free(rest->http);
        free(rest);
        return NULL;
    }
    bool v6 = strchr(bind_host, ':') != NULL;
    log_debug("REST endpoint and web status page on http://%s%s%s:%d/", v6 ? "[" : "", bind_host,
             v6 ? "]" : "", rest->port);
    return rest;
}

int jm_rest_port(const jm_rest *rest) {
    assert(rest);
    return rest->port;
}

void jm_rest_free(jm_rest *rest) {
    if (!rest) return;
    evhttp_free(rest->http);   /* closes the listener and every connection */
    free(rest);
}

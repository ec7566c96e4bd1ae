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
#include "jm_rm.h"
#include "jm_server.h"
#include "rest/rest.h"
#include "rest/web_assets.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Limits: no endpoint takes a body yet, and no browser needs more than a few KiB of headers. */
#define REST_MAX_HEADERS_SIZE (16 * 1024)
#define REST_MAX_BODY_SIZE (64 * 1024)
#define REST_TIMEOUT_S 30          /* an idle or stalled connection is closed after this */
#define REST_MAX_PATH 1024         /* decoded path length */
#define REST_MAX_SEGS 16
#define REST_MAX_PARAMS 4
#define REST_ERROR_PATH_MAX 200    /* how much of a bad path an error message echoes */

#define JSON_TYPE "application/json; charset=UTF-8"
#define HIDDEN_CONTENT "******"   /* Flink's mask for sensitive config values */
#define METHODS_GET (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define METHODS_ALL                                                                            \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

struct jm_rest {
    jobmanager *jm;                   /* not owned */
    struct evhttp *http;
    struct evhttp_bound_socket *sock; /* owned by http */
    int port;                         /* bound */
};

/* A request's decoded path split into segments: "/jobs/overview" -> {"jobs", "overview"}. */
typedef struct rest_path {
    char buf[REST_MAX_PATH + 1];
    const char *seg[REST_MAX_SEGS];
    int nseg;
} rest_path;

/* One request being answered. params are the segments matched by ":name" in the route's
 * pattern, in order; they point into path. */
typedef struct rest_call {
    jm_rest *rest;
    struct evhttp_request *req;
    const char *raw_path;             /* as received, for messages */
    const rest_path *path;
    const char *params[REST_MAX_PARAMS];
    int nparams;
} rest_call;

typedef void (*rest_handler)(rest_call *call);

typedef struct rest_route {
    unsigned methods;                 /* EVHTTP_REQ_* mask */
    const char *pattern;              /* "/taskmanagers/:taskmanagerid" */
    rest_handler fn;
} rest_route;

/* ---- JSON helpers ---------------------------------------------------------------------------- */

/* jansson returns NULL only when out of memory or on a malformed format: both are bugs or fatal. */
static json_t *jcheck(json_t *v) {
    if (!v) {
        log_error("cannot build JSON (out of memory?)");
        abort();
    }
    return v;
}

/* A JSON string from text that may come from outside (config values, taskmanager ids, request
 * paths): invalid UTF-8 and control bytes become '?', so the answer is always valid JSON. */
static json_t *jstr(const char *s) {
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
static json_t *jpath(const char *path) {
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
static void reply_bytes(rest_call *c, int code, const char *type, const void *data, size_t len) {
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
static void reply_json(rest_call *c, int code, json_t *body) {
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
static void reply_error_json(rest_call *c, int code, json_t *msg) {
    json_t *errors = jcheck(json_array());
    json_array_append_new(errors, msg);
    reply_json(c, code, jcheck(json_pack("{s:o}", "errors", errors)));
}

static void reply_error(rest_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(rest_call *c, int code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error_json(c, code, jstr(msg));
}

static void reply_not_found(rest_call *c) {
    json_t *path = jpath(c->raw_path);
    char *msg = xasprintf("Not found: %s", json_string_value(path));
    json_decref(path);
    reply_error_json(c, HTTP_NOTFOUND, jstr(msg));
    free(msg);
}

/* ---- Cluster data ---------------------------------------------------------------------------- */

/* Job counts by state for /overview. Jobs arrive with the dispatcher (a later issue): it fills
 * these from its registry. */
typedef struct job_counts {
    int running, finished, cancelled, failed;
} job_counts;

static job_counts count_jobs(const jobmanager *jm) {
    assert(jm);
    job_counts n = {0, 0, 0, 0};
    return n;
}

/* Append one object per job to jobs: {"id","status"} for /jobs, Flink's job overview
 * ({"jid","name","state","start-time","end-time","duration","last-modification","tasks":{...}})
 * for /jobs/overview. Empty until the dispatcher exists (a later issue). */
static void add_jobs(const jobmanager *jm, json_t *jobs, bool overview) {
    assert(jm && json_is_array(jobs));
    (void)overview;
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
static int64_t mono_to_wall_ms(int64_t mono_ms) {
    return time_wall_ms() - (time_mono_ms() - mono_ms);
}

/* Flink's taskmanager info object. */
static json_t *tm_json(const jm_tm *tm) {
    assert(tm);
    char path[sizeof tm->host + sizeof tm->resource_id + 64];
    tm_path(tm, path, sizeof path);
    json_t *hw = jcheck(json_pack("{s:i, s:I, s:I, s:I}",
                                  "cpuCores", tm->hardware.cpu_cores,
                                  "physicalMemory", (json_int_t)tm->hardware.physical_memory,
                                  "freeMemory", (json_int_t)tm->hardware.free_memory,
                                  "managedMemory", (json_int_t)tm->hardware.managed_memory));
    return jcheck(json_pack("{s:o, s:o, s:i, s:i, s:I, s:i, s:i, s:o, s:o, s:o}",
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
    job_counts jobs = count_jobs(jm);
    reply_json(c, HTTP_OK,
               jcheck(json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s}",
                                "taskmanagers", jm_rm_count(jm->rm),
                                "slots-total", jm_rm_slots_total(jm->rm),
                                "slots-available", jm_rm_slots_free(jm->rm),
                                "jobs-running", jobs.running,
                                "jobs-finished", jobs.finished,
                                "jobs-cancelled", jobs.cancelled,
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
    json_t *features = jcheck(json_pack("{s:b, s:b, s:b, s:b}", "web-submit", 0, "web-cancel", 0,
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
    for (int i = 0, n = jm_rm_count(rm); i < n; i++) json_array_append_new(tms, tm_json(jm_rm_get(rm, i)));
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
    reply_json(c, HTTP_OK, tm_json(tm));
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

/* The route table. First match wins, so literal patterns go before ":name" patterns that would
 * also match them ("/jobs/overview" before a future "/jobs/:jobid"). */
static const rest_route routes[] = {
    {METHODS_GET, "/", h_index},
    {METHODS_GET, "/config", h_config},
    {METHODS_GET, "/overview", h_overview},
    {METHODS_GET, "/jobmanager/config", h_jm_config},
    {METHODS_GET, "/taskmanagers", h_taskmanagers},
    {METHODS_GET, "/taskmanagers/:taskmanagerid", h_taskmanager},
    {METHODS_GET, "/jobs", h_jobs},
    {METHODS_GET, "/jobs/overview", h_jobs_overview},
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

/* What the REST server's files share (rest.c: routing, responses, the cluster and job handlers;
 * rest_metrics.c: metrics, watermarks, plan, logs and the Prometheus endpoint of issue 8). Not an
 * API for anything outside jobmanager/rest/. */
#ifndef FLINT_REST_INTERNAL_H
#define FLINT_REST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

#include "jm_job.h"
#include "jm_rm.h"
#include "jm_server.h"

#define REST_MAX_PATH 1024         /* decoded path length */
#define REST_MAX_SEGS 16
#define REST_MAX_PARAMS 4

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

/* ---- rest.c ---- */

/* JSON values (abort on out of memory); jstr makes any text valid JSON; jpath shortens a path
 * for messages. */
json_t *jcheck(json_t *v);
json_t *jstr(const char *s);
json_t *jpath(const char *path);
/* Answers: bytes (copied) with a content type; JSON (body stolen); Flink's {"errors":[msg]}. */
void reply_bytes(rest_call *c, int code, const char *type, const void *data, size_t len);
void reply_json(rest_call *c, int code, json_t *body);
void reply_error_json(rest_call *c, int code, json_t *msg);
void reply_error(rest_call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void reply_not_found(rest_call *c);
/* The job of params[0] / vertex of params[1], or NULL after answering 404. */
jm_job *find_job(rest_call *c);
jm_vertex *find_vertex(rest_call *c, const jm_job *job);
/* A query parameter (copied into buf), or NULL. */
const char *query_param(rest_call *c, const char *name, char *buf, size_t len);
/* Flink's plan object of a job. */
json_t *plan_json(const jm_job *job);
int64_t mono_to_wall_ms(int64_t mono_ms);
double ratio_of(int64_t ms_per_second);

/* ---- rest_metrics.c ---- */

/* Add Flink's "metrics" and "memoryConfiguration" objects of a taskmanager to its info object o. */
void rest_tm_add_metrics(const jobmanager *jm, const jm_tm *tm, json_t *o);
void rest_h_jobmanager_metrics(rest_call *c);
void rest_h_jobmanager_log(rest_call *c);
void rest_h_taskmanager_metrics(rest_call *c);
void rest_h_taskmanager_log(rest_call *c);
void rest_h_job_plan(rest_call *c);
void rest_h_job_metrics(rest_call *c);
void rest_h_vertex_metrics(rest_call *c);
void rest_h_vertex_subtasks_metrics(rest_call *c);
void rest_h_vertex_watermarks(rest_call *c);
void rest_h_prometheus(rest_call *c);

#endif

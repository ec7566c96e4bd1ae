/* The harness of the jobmanager suites that run over real sockets (check_jm_server.c,
 * check_jm_cpserver.c): a jobmanager and two fake taskmanagers on one event loop in a thread,
 * the fake taskmanagers' registration, and the client side (RPC calls, job states, plain HTTP to
 * REST). The suite writes what its fake taskmanagers answer (the on_message handler) and what they
 * do on each 20 ms tick. Header-only; a suite includes it once. */
#ifndef FLINT_CHECK_JM_CLUSTER_H
#define FLINT_CHECK_JM_CLUSTER_H

#include <arpa/inet.h>
#include <assert.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "jm_server.h"
#include "rpc/rpc.h"
#include "util/alloc.h"

/* ---- fake taskmanagers (run on the jobmanager's loop thread) ---- */

typedef struct ftm {
    const char *rid;
    int data_port;
    rpc_conn *conn;
    atomic_int registered, releases, close_now;
} ftm;

static jobmanager jm;
static struct event_base *base;
static ftm tms[2] = {{.rid = "tm-a", .data_port = 4001}, {.rid = "tm-b", .data_port = 4002}};
static atomic_int stop_loop;
static pthread_t loop_thread;
static char tmpdir[64];
static struct event *poll_ev;
static void (*cluster_tick)(void);

static void ignore_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)c, (void)status, (void)msg, (void)reply, (void)ud;
}

static void send_update(ftm *t, const char *job_id, const char *exec_id, const char *state) {
    Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    m.job_id = (char *)job_id;
    m.execution_id = (char *)exec_id;
    m.state = (char *)state;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_UPDATE_TASK_EXECUTION_STATE;
    env.update_task_execution_state = &m;
    rpc_call(t->conn, &env, 5000, ignore_reply, NULL);
}

static void ack(rpc_conn *c, rpc_envelope *req) {
    Flint__Rpc__Ack a = FLINT__RPC__ACK__INIT;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_ACK;
    env.ack = &a;
    rpc_reply(c, req, &env);
}

static void ftm_registered(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)c, (void)reply;
    ck_assert_msg(status == FLINT_OK, "registration failed: %s", msg ? msg : "");
    ((ftm *)ud)->registered = 1;
}

static void ftm_open(rpc_conn *c, void *ud) {
    ftm *t = ud;
    Flint__Rpc__RegisterTaskManager m = FLINT__RPC__REGISTER_TASK_MANAGER__INIT;
    m.resource_id = (char *)t->rid;
    m.host = "127.0.0.1";
    m.data_port = (uint32_t)t->data_port;
    m.num_slots = 2;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER;
    env.register_task_manager = &m;
    rpc_call(c, &env, 5000, ftm_registered, t);
}

static void ftm_close(rpc_conn *c, int status, const char *reason, void *ud) {
    (void)c, (void)status, (void)reason;
    ((ftm *)ud)->conn = NULL;
}

/* ---- the loop thread ---- */

static void on_poll(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what, (void)ud;
    if (stop_loop) event_base_loopbreak(base);
    if (cluster_tick) cluster_tick();
}

static void *run_loop(void *arg) {
    (void)arg;
    event_base_dispatch(base);
    return NULL;
}

/* Makes tmpdir, a fresh directory named after the suite, for the jobmanager's files. */
static void cluster_tmpdir(const char *suite) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/%s.XXXXXX", suite);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Starts the jobmanager in tmpdir with the n settings kv on top of the addresses, and registers
 * both fake taskmanagers, which answer with on_message and run tick (may be NULL) every 20 ms on
 * the loop thread. */
static void cluster_start(const char *const (*kv)[2], size_t n,
                          void (*on_message)(rpc_conn *, rpc_envelope *, void *), void (*tick)(void)) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    const char *common[][2] = {{"jobmanager.rpc.address", "127.0.0.1"}, {"jobmanager.rpc.port", "0"},
                               {"rest.address", "127.0.0.1"}, {"rest.port", "0"},
                               {"io.tmp.dirs", tmpdir}, {"rpc.ask.timeout", "2 s"}};
    assert(tmpdir[0]);
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        ck_assert_msg(config_set(cfg, common[i][0], common[i][1], "test", &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(config_set(cfg, kv[i][0], kv[i][1], "test", &err) == 0, "%s", err.msg);
    cluster_tick = tick;
    base = event_base_new();
    ck_assert_msg(jm_start(&jm, cfg, base, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        rpc_handlers h = {.on_message = on_message, .on_open = ftm_open, .on_close = ftm_close, .ud = &tms[i]};
        tms[i].conn = rpc_connect(base, "127.0.0.1", jm.rpc_port, 1 << 20, &h, &err);
        ck_assert_ptr_nonnull(tms[i].conn);
    }
    poll_ev = event_new(base, -1, EV_PERSIST, on_poll, NULL);
    struct timeval tv = {0, 20000};
    event_add(poll_ev, &tv);
    pthread_create(&loop_thread, NULL, run_loop, NULL);
    for (int i = 0; i < 250 && !(tms[0].registered && tms[1].registered); i++) usleep(20000);
    ck_assert(tms[0].registered && tms[1].registered);
}

/* Stops the loop, the fake taskmanagers and the jobmanager (tmpdir is left to the suite). */
static void cluster_stop(void) {
    stop_loop = 1;
    pthread_join(loop_thread, NULL);
    for (int i = 0; i < 2; i++)
        if (tms[i].conn) rpc_close(tms[i].conn);
    event_free(poll_ev);
    jm_stop(&jm);
    event_base_free(base);
}

/* ---- client side ---- */

static rpc_envelope *call(rpc_envelope *req, flint_err *err) {
    rpc_envelope *reply = NULL;
    int rc = rpc_call_sync("127.0.0.1", jm.rpc_port, req, 5000, 16 << 20, &reply, err);
    return rc ? NULL : reply;
}

/* The job's state through GetJob (caller frees nothing: copied into buf). */
static const char *job_state(const char *job_id, char *buf, size_t len) {
    Flint__Rpc__GetJob m = FLINT__RPC__GET_JOB__INIT;
    m.job_id = (char *)job_id;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_GET_JOB;
    req.get_job = &m;
    flint_err err = {0};
    rpc_envelope *reply = call(&req, &err);
    ck_assert_msg(reply != NULL, "%s", err.msg);
    ck_assert_int_eq(reply->body_case, FLINT__RPC__ENVELOPE__BODY_JOB_DETAILS);
    snprintf(buf, len, "%s", reply->job_details->state);
    rpc_envelope_free(reply);
    return buf;
}

static void wait_state(const char *job_id, const char *want) {
    char buf[32];
    for (int i = 0; i < 250; i++) {
        if (!strcmp(job_state(job_id, buf, sizeof buf), want)) return;
        usleep(20000);
    }
    ck_abort_msg("job %s is %s, not %s", job_id, buf, want);
}

/* A plain HTTP request to the REST endpoint with a JSON body (NULL for none): the status and the
 * parsed JSON reply (caller json_decref's). */
static json_t *http(const char *method, const char *path, const char *body, int *status) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)jm.rest_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    ck_assert_int_lt(n, (int)sizeof req);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 17, got = 0;
    char *buf = xmalloc(cap + 1);
    ssize_t r;
    while ((r = read(fd, buf + got, cap - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    ck_assert_int_eq(sscanf(buf, "HTTP/1.%*d %d", status), 1);
    char *b = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(b);
    json_error_t jerr;
    json_t *j = json_loads(b + 4, 0, &jerr);
    ck_assert_msg(j != NULL, "bad JSON from %s: %s", path, b + 4);
    free(buf);
    return j;
}

static json_t *get_ok(const char *path) {
    int status;
    json_t *j = http("GET", path, NULL, &status);
    ck_assert_msg(status == 200, "GET %s: %d", path, status);
    return j;
}

static int64_t jint(json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

#endif

/* Checkpoints, savepoints and restarts through the jobmanager's real RPC and REST endpoints, in
 * one process: a jobmanager with checkpoints every 200 ms and two fake taskmanagers that answer
 * TriggerCheckpoint by acknowledging the checkpoint for every task of the job (with keyed state),
 * finish their tasks after a stop-with-savepoint, and can fail a task -- or that answer
 * TriggerCheckpoint with FLINT_UNSUPPORTED, as a taskmanager without checkpointing does: the job
 * must keep running. The test is the client (TriggerSavepoint, GetSavepointStatus, GetJob over
 * RPC) and a REST user (/checkpoints, /checkpoints/config, POST /savepoints, GET
 * /savepoints/:triggerid, POST /stop). */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_jm_helpers.h"
#include "config/config.h"
#include "jm_restore.h"
#include "jm_server.h"
#include "rpc/rpc.h"
#include "util/log.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH
#define JOB_A "c0000000000000000000000000000001"
#define JOB_B "c0000000000000000000000000000002"

/* ---- fake taskmanagers (on the jobmanager's loop thread) ---- */

typedef struct ftm {
    const char *rid;
    int data_port;
    rpc_conn *conn;
    atomic_int registered;
} ftm;

typedef struct task {
    char exec_id[33], job_id[33], op_id[33];
    int tm, subtask, parallelism, maxp;
    bool alive;
} task;

static ftm tms[2] = {{.rid = "tm-a", .data_port = 4001}, {.rid = "tm-b", .data_port = 4002}};
static task tasks[256];
static int n_tasks;
static int64_t last_acked;
static atomic_int unsupported, fail_one, deploys, restored_deploys, completes, aborts;

static void ignore_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)c, (void)status, (void)msg, (void)reply, (void)ud;
}

static void send_update(int tm, const char *job_id, const char *exec_id, const char *state) {
    Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    m.job_id = (char *)job_id;
    m.execution_id = (char *)exec_id;
    m.state = (char *)state;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_UPDATE_TASK_EXECUTION_STATE;
    env.update_task_execution_state = &m;
    rpc_call(tms[tm].conn, &env, 5000, ignore_reply, NULL);
}

static void ack(rpc_conn *c, rpc_envelope *req) {
    Flint__Rpc__Ack a = FLINT__RPC__ACK__INIT;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_ACK;
    env.ack = &a;
    rpc_reply(c, req, &env);
}

static void send_ack(const task *t, int64_t id) {
    Flint__Checkpoint__KeyGroupRange r = FLINT__CHECKPOINT__KEY_GROUP_RANGE__INIT;
    jm_key_group_range(t->maxp, t->parallelism, t->subtask, &r.start, &r.end);
    Flint__Checkpoint__StreamStateHandle file = FLINT__CHECKPOINT__STREAM_STATE_HANDLE__INIT;
    uint8_t b[3] = {1, 2, 3};
    file.data.data = b;
    file.data.len = 3;
    file.size = 3;
    Flint__Checkpoint__KeyedStateHandle kh = FLINT__CHECKPOINT__KEYED_STATE_HANDLE__INIT, *khp = &kh;
    kh.format = "canonical-v1";
    kh.key_group_range = &r;
    kh.file = &file;
    kh.state_size = 3;
    Flint__Checkpoint__OperatorSubtaskState st = FLINT__CHECKPOINT__OPERATOR_SUBTASK_STATE__INIT, *stp = &st;
    st.operator_id = (char *)t->op_id;
    st.n_keyed_state = 1;
    st.keyed_state = &khp;
    st.state_size = 3;
    Flint__Checkpoint__SubtaskCheckpointMetrics mt = FLINT__CHECKPOINT__SUBTASK_CHECKPOINT_METRICS__INIT;
    mt.state_size = 3;
    mt.alignment_duration_ms = 1;
    Flint__Checkpoint__AcknowledgeCheckpoint m = FLINT__CHECKPOINT__ACKNOWLEDGE_CHECKPOINT__INIT;
    m.job_id = (char *)t->job_id;
    m.execution_id = (char *)t->exec_id;
    m.checkpoint_id = id;
    m.n_operators = 1;
    m.operators = &stp;
    m.metrics = &mt;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_ACKNOWLEDGE_CHECKPOINT;
    env.acknowledge_checkpoint = &m;
    rpc_call(tms[t->tm].conn, &env, 5000, ignore_reply, NULL);
}

static task *find_task(const char *exec_id) {
    for (int i = 0; i < n_tasks; i++)
        if (!strcmp(tasks[i].exec_id, exec_id)) return &tasks[i];
    return NULL;
}

static void ftm_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    int me = (int)((ftm *)ud - tms);
    switch (env->body_case) {
    case FLINT__RPC__ENVELOPE__BODY_DEPLOY_TASK: {
        const Flint__Rpc__TaskDeploymentDescriptor *tdd = env->deploy_task->tdd;
        ack(c, env);
        deploys++;
        if (tdd->restore) restored_deploys++;
        ck_assert_ptr_nonnull(tdd->checkpointing);
        if (n_tasks < 256) {
            task *t = &tasks[n_tasks++];
            snprintf(t->exec_id, 33, "%s", tdd->execution_id);
            snprintf(t->job_id, 33, "%s", tdd->job_id);
            snprintf(t->op_id, 33, "%s", tdd->vertex->operators[0]->operator_id);
            t->tm = me;
            t->subtask = tdd->subtask_index;
            t->parallelism = tdd->vertex->parallelism;
            t->maxp = tdd->max_parallelism;
            t->alive = true;
        }
        send_update(me, tdd->job_id, tdd->execution_id, "INITIALIZING");
        send_update(me, tdd->job_id, tdd->execution_id, "RUNNING");
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_CANCEL_TASK: {
        ack(c, env);
        task *t = find_task(env->cancel_task->execution_id);
        if (t && t->alive) {
            t->alive = false;
            send_update(me, t->job_id, t->exec_id, "CANCELED");
        }
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_RELEASE_JOB: ack(c, env); break;
    case FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT: {
        const Flint__Checkpoint__TriggerCheckpoint *m = env->trigger_checkpoint;
        if (unsupported) {
            rpc_reply_error(c, env, FLINT_UNSUPPORTED, "the taskmanager does not handle trigger_checkpoint");
            break;
        }
        ack(c, env);
        struct stat st;
        ck_assert_int_eq(stat(m->target_directory, &st), 0);   /* the jobmanager made it */
        if (m->checkpoint_id <= last_acked) break;              /* the other source's trigger */
        last_acked = m->checkpoint_id;
        for (int i = 0; i < n_tasks; i++)
            if (tasks[i].alive && !strcmp(tasks[i].job_id, m->job_id)) send_ack(&tasks[i], m->checkpoint_id);
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE: {
        const Flint__Checkpoint__NotifyCheckpointComplete *m = env->notify_checkpoint_complete;
        ack(c, env);
        completes++;
        task *t = find_task(m->execution_id);
        if (t && t->alive && (m->type == FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_SUSPEND ||
                              m->type == FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_TERMINATE)) {
            t->alive = false;
            send_update(me, t->job_id, t->exec_id, "FINISHED");
        }
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_ABORTED:
        ack(c, env);
        aborts++;
        break;
    default:
        if (env->id) rpc_reply_error(c, env, FLINT_UNSUPPORTED, "fake taskmanager");
    }
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

static jobmanager jm;
static struct event_base *base;
static atomic_int stop_loop;
static pthread_t loop_thread;
static char tmpdir[64];
static struct event *poll_ev;

static void on_poll(evutil_socket_t fd, short what, void *ud) {
    (void)fd, (void)what, (void)ud;
    if (stop_loop) event_base_loopbreak(base);
    if (fail_one) {
        fail_one = 0;
        for (int i = n_tasks - 1; i >= 0; i--)
            if (tasks[i].alive) {
                tasks[i].alive = false;
                Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
                m.job_id = tasks[i].job_id;
                m.execution_id = tasks[i].exec_id;
                m.state = "FAILED";
                m.error = "injected failure";
                rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
                env.body_case = FLINT__RPC__ENVELOPE__BODY_UPDATE_TASK_EXECUTION_STATE;
                env.update_task_execution_state = &m;
                rpc_call(tms[tasks[i].tm].conn, &env, 5000, ignore_reply, NULL);
                break;
            }
    }
}

static void *run_loop(void *arg) {
    (void)arg;
    event_base_dispatch(base);
    return NULL;
}

static void start_cluster(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_jm_cpserver.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    flint_config *cfg = config_new();
    flint_err err = {0};
    char cpdir[128];
    snprintf(cpdir, sizeof cpdir, "%s/checkpoints", tmpdir);
    const char *kv[][2] = {{"jobmanager.rpc.address", "127.0.0.1"}, {"jobmanager.rpc.port", "0"},
                           {"rest.address", "127.0.0.1"}, {"rest.port", "0"},
                           {"io.tmp.dirs", tmpdir}, {"slot.request.timeout", "2 s"},
                           {"rpc.ask.timeout", "2 s"}, {"execution.checkpointing.interval", "200 ms"},
                           {"state.checkpoints.dir", cpdir}, {"restart-strategy.fixed-delay.delay", "100 ms"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(config_set(cfg, kv[i][0], kv[i][1], "test", &err) == 0, "%s", err.msg);
    base = event_base_new();
    ck_assert_msg(jm_start(&jm, cfg, base, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        rpc_handlers h = {.on_message = ftm_message, .on_open = ftm_open, .on_close = ftm_close, .ud = &tms[i]};
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

static void stop_cluster(void) {
    stop_loop = 1;
    pthread_join(loop_thread, NULL);
    for (int i = 0; i < 2; i++)
        if (tms[i].conn) rpc_close(tms[i].conn);
    event_free(poll_ev);
    jm_stop(&jm);
    event_base_free(base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- client side ---- */

static rpc_envelope *call(rpc_envelope *req, flint_err *err) {
    rpc_envelope *reply = NULL;
    int rc = rpc_call_sync("127.0.0.1", jm.rpc_port, req, 5000, 16 << 20, &reply, err);
    return rc ? NULL : reply;
}

static void submit(const char *job_id) {
    int par[] = {2, 2};
    test_edge e = {0, 1, HASH};
    Flint__Graph__JobGraph *g = test_graph(job_id, 2, par, NULL, 1, &e);
    Flint__Rpc__SubmitJob m = FLINT__RPC__SUBMIT_JOB__INIT;
    m.graph = g;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB;
    req.submit_job = &m;
    flint_err err = {0};
    rpc_envelope *reply = call(&req, &err);
    flint__graph__job_graph__free_unpacked(g, NULL);
    ck_assert_msg(reply != NULL, "%s", err.msg);
    rpc_envelope_free(reply);
}

static const char *job_state(const char *job_id, char *buf, size_t len) {
    Flint__Rpc__GetJob m = FLINT__RPC__GET_JOB__INIT;
    m.job_id = (char *)job_id;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_GET_JOB;
    req.get_job = &m;
    flint_err err = {0};
    rpc_envelope *reply = call(&req, &err);
    ck_assert_msg(reply != NULL, "%s", err.msg);
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

/* Checkpoint counts of a job through REST. */
static int64_t count(const char *job_id, const char *which) {
    char path[128];
    snprintf(path, sizeof path, "/jobs/%s/checkpoints", job_id);
    json_t *j = get_ok(path);
    int64_t n = jint(json_object_get(j, "counts"), which);
    json_decref(j);
    return n;
}

static void wait_count(const char *job_id, const char *which, int64_t at_least) {
    for (int i = 0; i < 250; i++) {
        if (count(job_id, which) >= at_least) return;
        usleep(20000);
    }
    ck_abort_msg("job %s: %s checkpoints stayed below %lld", job_id, which, (long long)at_least);
}

/* TriggerSavepoint over RPC; the trigger id (or "" with err on refusal). */
static int rpc_savepoint(const char *job_id, const char *dir, char id[33], flint_err *err) {
    Flint__Rpc__TriggerSavepoint m = FLINT__RPC__TRIGGER_SAVEPOINT__INIT;
    m.job_id = (char *)job_id;
    m.target_directory = (char *)(dir ? dir : "");
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT;
    req.trigger_savepoint = &m;
    rpc_envelope *reply = call(&req, err);
    if (!reply) return err->code;
    ck_assert_int_eq(reply->body_case, FLINT__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT_RESPONSE);
    snprintf(id, 33, "%s", reply->trigger_savepoint_response->trigger_id);
    rpc_envelope_free(reply);
    return 0;
}

/* Poll GetSavepointStatus until COMPLETED: the location ("" on failure, cause in failure). */
static void rpc_wait_savepoint(const char *job_id, const char *id, char *location, size_t len, char *failure,
                               size_t flen) {
    for (int i = 0; i < 250; i++) {
        Flint__Rpc__GetSavepointStatus m = FLINT__RPC__GET_SAVEPOINT_STATUS__INIT;
        m.job_id = (char *)job_id;
        m.trigger_id = (char *)id;
        rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
        req.body_case = FLINT__RPC__ENVELOPE__BODY_GET_SAVEPOINT_STATUS;
        req.get_savepoint_status = &m;
        flint_err err = {0};
        rpc_envelope *reply = call(&req, &err);
        ck_assert_msg(reply != NULL, "%s", err.msg);
        const Flint__Rpc__SavepointStatus *st = reply->savepoint_status;
        if (!strcmp(st->status, "COMPLETED")) {
            snprintf(location, len, "%s", st->location);
            snprintf(failure, flen, "%s", st->failure_cause);
            rpc_envelope_free(reply);
            return;
        }
        ck_assert_str_eq(st->status, "IN_PROGRESS");
        rpc_envelope_free(reply);
        usleep(20000);
    }
    ck_abort_msg("savepoint %s never completed", id);
}

/* Poll GET /jobs/:jobid/savepoints/:triggerid until COMPLETED; returns the operation (decref). */
static json_t *rest_wait_savepoint(const char *job_id, const char *id) {
    char path[200];
    snprintf(path, sizeof path, "/jobs/%s/savepoints/%s", job_id, id);
    for (int i = 0; i < 250; i++) {
        json_t *j = get_ok(path);
        const char *st = json_string_value(json_object_get(json_object_get(j, "status"), "id"));
        if (!strcmp(st, "COMPLETED")) {
            json_t *op = json_incref(json_object_get(j, "operation"));
            json_decref(j);
            return op;
        }
        ck_assert_str_eq(st, "IN_PROGRESS");
        ck_assert(json_is_null(json_object_get(j, "operation")));
        json_decref(j);
        usleep(20000);
    }
    ck_abort_msg("savepoint %s never completed", id);
    return NULL;
}

START_TEST(checkpoints_savepoints_restart_and_stop) {
    start_cluster();
    submit(JOB_A);
    wait_state(JOB_A, "RUNNING");
    wait_count(JOB_A, "completed", 2);

    /* REST: statistics with Flink's fields, and the configuration */
    char path[256];
    snprintf(path, sizeof path, "/jobs/%s/checkpoints", JOB_A);
    json_t *j = get_ok(path);
    json_t *latest = json_object_get(json_object_get(j, "latest"), "completed");
    ck_assert(json_is_object(latest));
    ck_assert_msg(strstr(json_string_value(json_object_get(latest, "external_path")), "/chk-"), "no external path");
    ck_assert_int_eq(jint(latest, "num_subtasks"), 4);
    ck_assert_int_eq(jint(latest, "num_acknowledged_subtasks"), 4);
    ck_assert_int_eq(jint(latest, "state_size"), 12);
    ck_assert_str_eq(json_string_value(json_object_get(latest, "status")), "COMPLETED");
    const char *fields[] = {"id", "status", "is_savepoint", "trigger_timestamp", "latest_ack_timestamp",
                            "state_size", "end_to_end_duration", "alignment_buffered", "num_subtasks",
                            "num_acknowledged_subtasks", "checkpoint_type"};
    json_t *hist = json_object_get(j, "history");
    ck_assert_int_ge(json_array_size(hist), 2);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(json_object_get(json_array_get(hist, 0), fields[i]), "history entry without %s", fields[i]);
    json_t *sum = json_object_get(j, "summary");
    ck_assert_int_eq(jint(json_object_get(sum, "state_size"), "max"), 12);
    ck_assert(json_is_null(json_object_get(json_object_get(j, "latest"), "restored")));
    int64_t first = jint(json_array_get(hist, 0), "id");
    json_decref(j);
    snprintf(path, sizeof path, "/jobs/%s/checkpoints/details/%lld", JOB_A, (long long)first);
    j = get_ok(path);
    ck_assert_int_eq(jint(j, "id"), first);
    json_decref(j);
    int st404;
    snprintf(path, sizeof path, "/jobs/%s/checkpoints/details/99999", JOB_A);
    j = http("GET", path, NULL, &st404);
    ck_assert_int_eq(st404, 404);
    json_decref(j);
    snprintf(path, sizeof path, "/jobs/%s/checkpoints/config", JOB_A);
    j = get_ok(path);
    ck_assert_int_eq(jint(j, "interval"), 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "mode")), "exactly_once");
    ck_assert_int_eq(jint(j, "tolerable_failed_checkpoints"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "state_backend")), "HashMapStateBackend");
    json_decref(j);

    /* a savepoint over RPC */
    char id[33], loc[512], fail[512], dir[128];
    flint_err err = {0};
    ck_assert_int_eq(rpc_savepoint(JOB_A, NULL, id, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "state.savepoints.dir"), "%s", err.msg);
    snprintf(dir, sizeof dir, "%s/sp", tmpdir);
    ck_assert_int_eq(rpc_savepoint(JOB_A, dir, id, &err), 0);
    rpc_wait_savepoint(JOB_A, id, loc, sizeof loc, fail, sizeof fail);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s/savepoint-c00000-", dir);
    ck_assert_msg(!strncmp(loc, prefix, strlen(prefix)), "location %s (failure %s)", loc, fail);
    char meta[600];
    snprintf(meta, sizeof meta, "%s/_metadata", loc);
    Flint__Checkpoint__CheckpointMetadata *m = NULL;
    ck_assert_int_eq(jm_metadata_read(meta, &m, &err), 0);
    ck_assert(m->is_savepoint);
    flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);

    /* a savepoint through REST */
    int status;
    char body[300];
    snprintf(body, sizeof body, "{\"target-directory\": \"%s/sp2\", \"cancel-job\": false}", tmpdir);
    snprintf(path, sizeof path, "/jobs/%s/savepoints", JOB_A);
    j = http("POST", path, body, &status);
    ck_assert_int_eq(status, 202);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "request-id")));
    json_decref(j);
    json_t *op = rest_wait_savepoint(JOB_A, id);
    ck_assert_msg(strstr(json_string_value(json_object_get(op, "location")), "/sp2/savepoint-c00000-"), "no location");
    json_decref(op);
    j = http("POST", path, "{\"target-directory\": 5}", &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    j = http("POST", path, "not json", &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    snprintf(path, sizeof path, "/jobs/%s/savepoints/0000", JOB_A);
    j = http("GET", path, NULL, &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);

    /* a task fails: the job restarts and every task restores the latest checkpoint */
    int before = deploys;
    fail_one = 1;
    for (int i = 0; i < 250 && deploys < before + 4; i++) usleep(20000);
    ck_assert_int_eq(deploys, before + 4);
    ck_assert_int_eq(restored_deploys, 4);
    wait_state(JOB_A, "RUNNING");
    int64_t done = count(JOB_A, "completed");
    wait_count(JOB_A, "completed", done + 1);
    snprintf(path, sizeof path, "/jobs/%s/checkpoints", JOB_A);
    j = get_ok(path);
    ck_assert_int_eq(jint(json_object_get(j, "counts"), "restored"), 1);
    json_decref(j);
    snprintf(path, sizeof path, "/jobs/%s/exceptions", JOB_A);
    j = get_ok(path);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(j, "exceptionHistory"), "entries")), 1);
    json_decref(j);

    /* stop with a savepoint through REST: the tasks finish after it */
    snprintf(body, sizeof body, "{\"targetDirectory\": \"%s/sp3\", \"drain\": false}", tmpdir);
    snprintf(path, sizeof path, "/jobs/%s/stop", JOB_A);
    j = http("POST", path, body, &status);
    ck_assert_int_eq(status, 202);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "request-id")));
    json_decref(j);
    op = rest_wait_savepoint(JOB_A, id);
    ck_assert_msg(json_object_get(op, "location"), "stop failed: %s",
                  json_dumps(op, 0));
    json_decref(op);
    wait_state(JOB_A, "FINISHED");
    /* FINISHED: the job's checkpoints are gone, its savepoints stay */
    char jobdir[200];
    snprintf(jobdir, sizeof jobdir, "%s/checkpoints/%s", tmpdir, JOB_A);
    struct stat st;
    ck_assert_int_ne(stat(jobdir, &st), 0);
    ck_assert_int_eq(stat(meta, &st), 0);
    stop_cluster();
}
END_TEST

START_TEST(taskmanagers_without_checkpointing) {
    unsupported = 1;
    start_cluster();
    submit(JOB_B);
    wait_state(JOB_B, "RUNNING");
    wait_count(JOB_B, "failed", 3);   /* declined as UNSUPPORTED, never counted */
    char buf[32];
    ck_assert_str_eq(job_state(JOB_B, buf, sizeof buf), "RUNNING");
    ck_assert_int_eq(count(JOB_B, "completed"), 0);
    char path[128];
    snprintf(path, sizeof path, "/jobs/%s/checkpoints", JOB_B);
    json_t *j = get_ok(path);
    json_t *failed = json_object_get(json_object_get(j, "latest"), "failed");
    ck_assert_msg(strstr(json_string_value(json_object_get(failed, "failure_message")), "does not handle"), "%s",
                  json_string_value(json_object_get(failed, "failure_message")));
    json_decref(j);
    /* a savepoint fails with the reason, the job runs on */
    char id[33], loc[512], fail[512], dir[128];
    flint_err err = {0};
    snprintf(dir, sizeof dir, "%s/sp", tmpdir);
    ck_assert_int_eq(rpc_savepoint(JOB_B, dir, id, &err), 0);
    rpc_wait_savepoint(JOB_B, id, loc, sizeof loc, fail, sizeof fail);
    ck_assert_str_eq(loc, "");
    ck_assert_msg(strstr(fail, "does not handle"), "%s", fail);
    ck_assert_str_eq(job_state(JOB_B, buf, sizeof buf), "RUNNING");
    /* unknown jobs */
    ck_assert_int_eq(rpc_savepoint("c00000000000000000000000000000ff", dir, id, &err), FLINT_NOT_FOUND);
    stop_cluster();
}
END_TEST

int main(void) {
    log_init("check", NULL, LOG_ERROR);
    Suite *s = suite_create("jm_cpserver");
    TCase *tc = tcase_create("rpc_rest");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, checkpoints_savepoints_restart_and_stop);
    tcase_add_test(tc, taskmanagers_without_checkpointing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

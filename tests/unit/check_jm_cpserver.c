/* Checkpoints, savepoints and restarts through the jobmanager's real RPC and REST endpoints, in
 * one process: a jobmanager with checkpoints every 200 ms and two fake taskmanagers that answer
 * TriggerCheckpoint by acknowledging the checkpoint for every task of the job (with keyed state),
 * finish their tasks after a stop-with-savepoint, and can fail a task -- or that answer
 * TriggerCheckpoint with FLINT_UNSUPPORTED, as a taskmanager without checkpointing does: the job
 * must keep running. The test is the client (TriggerSavepoint, GetSavepointStatus, GetJob over
 * RPC) and a REST user (/checkpoints, /checkpoints/config, POST /savepoints, GET
 * /savepoints/:triggerid, POST /stop). */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_jm_cluster.h"
#include "check_jm_helpers.h"
#include "jm_restore.h"
#include "util/log.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH
#define JOB_A "c0000000000000000000000000000001"
#define JOB_B "c0000000000000000000000000000002"

/* ---- what the fake taskmanagers answer ---- */

typedef struct task {
    char exec_id[33], job_id[33], op_id[33];
    int tm, subtask, parallelism, maxp;
    bool alive;
} task;

static task tasks[256];
static int n_tasks;
static int64_t last_acked;
static atomic_int unsupported, fail_one, deploys, restored_deploys, completes, aborts;

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
        send_update(&tms[me], tdd->job_id, tdd->execution_id, "INITIALIZING");
        send_update(&tms[me], tdd->job_id, tdd->execution_id, "RUNNING");
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_CANCEL_TASK: {
        ack(c, env);
        task *t = find_task(env->cancel_task->execution_id);
        if (t && t->alive) {
            t->alive = false;
            send_update(&tms[me], t->job_id, t->exec_id, "CANCELED");
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
            send_update(&tms[me], t->job_id, t->exec_id, "FINISHED");
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

/* Once fail_one is set: the last live task reports FAILED. */
static void fail_task(void) {
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

static void start_cluster(void) {
    cluster_tmpdir("check_jm_cpserver");
    char cpdir[128];
    snprintf(cpdir, sizeof cpdir, "%s/checkpoints", tmpdir);
    const char *const kv[][2] = {{"slot.request.timeout", "2 s"}, {"execution.checkpointing.interval", "200 ms"},
                                 {"state.checkpoints.dir", cpdir}, {"restart-strategy.fixed-delay.delay", "100 ms"}};
    cluster_start(kv, sizeof kv / sizeof kv[0], ftm_message, fail_task);
}

static void stop_cluster(void) {
    cluster_stop();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- client side ---- */

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

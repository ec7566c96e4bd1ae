/* The jobmanager's job gateways end to end over real sockets, in one process: a jobmanager and
 * two fake taskmanagers (2 slots each: they answer DeployTask, report task states and metrics,
 * answer CancelTask and ReleaseJob) run on an event loop in a thread, while the test acts as the
 * client (SubmitJob, GetJob, ListJobs, CancelJob, FetchArtifact over RPC) and as a REST user
 * (plain HTTP). Covers: a job that finishes, cancel through PATCH /jobs/:jobid, backpressure from
 * heartbeat metrics, a lost taskmanager, too few slots, bad submissions, /overview counts. */
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
#include "util/log.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH
#define JOB_FINISHING "f0000000000000000000000000000001"   /* 'f': tasks finish at once */
#define JOB_FOREVER "c0000000000000000000000000000002"     /* others run until canceled */
#define JOB_LOST "10000000000000000000000000000003"
#define JOB_TOO_BIG "20000000000000000000000000000004"

/* ---- what the fake taskmanagers answer ---- */

static void send_metrics(ftm *t, const char *job_id, const char *exec_id, int subtask) {
    Flint__Rpc__TaskMetrics m = FLINT__RPC__TASK_METRICS__INIT, *mp = &m;
    m.job_id = (char *)job_id;
    m.execution_id = (char *)exec_id;
    m.subtask = subtask;
    m.num_records_in = 100;
    m.num_records_out = 50;
    m.num_bytes_in = 1000;
    m.num_bytes_out = 500;
    m.back_pressured_time_ms_per_second = 700;
    m.busy_time_ms_per_second = 200;
    m.idle_time_ms_per_second = 100;
    Flint__Rpc__Heartbeat hb = FLINT__RPC__HEARTBEAT__INIT;
    hb.resource_id = (char *)t->rid;
    hb.n_tasks = 1;
    hb.tasks = &mp;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    rpc_call(t->conn, &env, 5000, ignore_reply, NULL);
}

/* CancelTask names only the execution: remember each task's job. */
static char task_jobs[64][2][33];
static int n_task_jobs;

static void ftm_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    ftm *t = ud;
    switch (env->body_case) {
    case FLINT__RPC__ENVELOPE__BODY_DEPLOY_TASK: {
        const Flint__Rpc__TaskDeploymentDescriptor *tdd = env->deploy_task->tdd;
        ck_assert_ptr_nonnull(tdd);
        ck_assert_ptr_nonnull(tdd->vertex);
        ack(c, env);
        if (n_task_jobs < 64) {
            snprintf(task_jobs[n_task_jobs][0], 33, "%s", tdd->execution_id);
            snprintf(task_jobs[n_task_jobs][1], 33, "%s", tdd->job_id);
            n_task_jobs++;
        }
        send_update(t, tdd->job_id, tdd->execution_id, "INITIALIZING");
        send_update(t, tdd->job_id, tdd->execution_id, "RUNNING");
        if (tdd->job_id[0] == 'f')
            send_update(t, tdd->job_id, tdd->execution_id, "FINISHED");
        else
            send_metrics(t, tdd->job_id, tdd->execution_id, tdd->subtask_index);
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_CANCEL_TASK:
        ack(c, env);
        for (int i = 0; i < n_task_jobs; i++)
            if (!strcmp(task_jobs[i][0], env->cancel_task->execution_id))
                send_update(t, task_jobs[i][1], task_jobs[i][0], "CANCELED");
        break;
    case FLINT__RPC__ENVELOPE__BODY_RELEASE_JOB:
        ack(c, env);
        t->releases++;
        break;
    default:
        if (env->id) rpc_reply_error(c, env, FLINT_UNSUPPORTED, "fake taskmanager");
    }
}

/* A fake taskmanager told to close_now drops its connection, as a lost taskmanager does. */
static void close_lost(void) {
    for (int i = 0; i < 2; i++)
        if (tms[i].close_now && tms[i].conn) {
            rpc_close(tms[i].conn);
            tms[i].conn = NULL;
        }
}

static void start_cluster(void) {
    cluster_tmpdir("check_jm_server");
    const char *const kv[][2] = {{"slot.request.timeout", "500 ms"}};
    cluster_start(kv, sizeof kv / sizeof kv[0], ftm_message, close_lost);
}

static void stop_cluster(void) {
    char *store = xasprintf("%s/flint-jm-%s", tmpdir, jm.id);
    struct stat st;
    ck_assert_int_eq(stat(store, &st), 0);
    cluster_stop();
    ck_assert_int_ne(stat(store, &st), 0);   /* the artifact store is gone */
    free(store);
    rmdir(tmpdir);
}

/* ---- client side ---- */

static int submit(const char *job_id, int nv, const int *par, int ne, const test_edge *edges,
                  const void *artifact, size_t len, flint_err *err) {
    Flint__Graph__JobGraph *g = test_graph(job_id, nv, par, NULL, ne, edges);
    char sha[SHA256_HEX_LEN];
    char *saved = g->artifact_sha256;
    if (artifact) {
        sha256_hex(artifact, len, sha);
        g->artifact_sha256 = sha;
    }
    Flint__Rpc__SubmitJob m = FLINT__RPC__SUBMIT_JOB__INIT;
    m.graph = g;
    m.artifact.data = (uint8_t *)artifact;
    m.artifact.len = len;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB;
    req.submit_job = &m;
    rpc_envelope *reply = call(&req, err);
    g->artifact_sha256 = saved;
    flint__graph__job_graph__free_unpacked(g, NULL);
    if (!reply) return err->code;
    ck_assert_int_eq(reply->body_case, FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB_RESPONSE);
    ck_assert_str_eq(reply->submit_job_response->job_id, job_id);
    rpc_envelope_free(reply);
    return 0;
}

static const char *jstring(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

START_TEST(jobs_over_rpc_and_rest) {
    start_cluster();
    char path[256];
    flint_err err = {0};

    /* 1. a job that finishes, with an artifact */
    const char art[] = "pretend shared object";
    int par[] = {2, 2};
    test_edge e = {0, 1, HASH};
    ck_assert_int_eq(submit(JOB_FINISHING, 2, par, 1, &e, art, sizeof art, &err), 0);
    wait_state(JOB_FINISHING, "FINISHED");
    for (int i = 0; i < 100 && tms[0].releases + tms[1].releases < 2; i++) usleep(20000);
    ck_assert_int_eq(tms[0].releases, 1);
    ck_assert_int_eq(tms[1].releases, 1);

    Flint__Rpc__FetchArtifact fa = FLINT__RPC__FETCH_ARTIFACT__INIT;
    char sha[SHA256_HEX_LEN];
    sha256_hex(art, sizeof art, sha);
    fa.sha256 = sha;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT;
    req.fetch_artifact = &fa;
    rpc_envelope *reply = call(&req, &err);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->fetch_artifact_response->artifact.len, sizeof art);
    ck_assert_mem_eq(reply->fetch_artifact_response->artifact.data, art, sizeof art);
    rpc_envelope_free(reply);

    json_t *j = get_ok("/jobs");
    ck_assert_str_eq(jstring(json_array_get(json_object_get(j, "jobs"), 0), "id"), JOB_FINISHING);
    ck_assert_str_eq(jstring(json_array_get(json_object_get(j, "jobs"), 0), "status"), "FINISHED");
    json_decref(j);
    j = get_ok("/jobs/overview");
    json_t *ov = json_array_get(json_object_get(j, "jobs"), 0);
    ck_assert_str_eq(jstring(ov, "jid"), JOB_FINISHING);
    ck_assert_str_eq(jstring(ov, "name"), "Test Job");
    ck_assert_str_eq(jstring(ov, "state"), "FINISHED");
    ck_assert_int_eq(jint(json_object_get(ov, "tasks"), "total"), 4);
    ck_assert_int_eq(jint(json_object_get(ov, "tasks"), "finished"), 4);
    ck_assert_int_gt(json_integer_value(json_object_get(ov, "end-time")), 0);
    json_decref(j);
    j = get_ok("/jobs/" JOB_FINISHING);
    ck_assert_str_eq(jstring(j, "state"), "FINISHED");
    ck_assert(json_is_false(json_object_get(j, "isStoppable")));
    json_t *v0 = json_array_get(json_object_get(j, "vertices"), 0);
    ck_assert_str_eq(jstring(v0, "id"), "f00000000000000000000000" "00000001");
    ck_assert_str_eq(jstring(v0, "status"), "FINISHED");
    ck_assert_int_eq(jint(v0, "parallelism"), 2);
    ck_assert_int_eq(jint(json_object_get(v0, "tasks"), "FINISHED"), 2);
    ck_assert(json_is_true(json_object_get(json_object_get(v0, "metrics"), "read-records-complete")));
    ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(j, "timestamps"), "FINISHED")), 0);
    ck_assert_int_eq(jint(json_object_get(j, "status-counts"), "FINISHED"), 4);
    json_t *nodes = json_object_get(json_object_get(j, "plan"), "nodes");
    ck_assert_int_eq(json_array_size(nodes), 2);
    json_t *in = json_array_get(json_object_get(json_array_get(nodes, 1), "inputs"), 0);
    ck_assert_str_eq(jstring(in, "ship_strategy"), "HASH");
    ck_assert_str_eq(jstring(in, "id"), jstring(v0, "id"));
    json_decref(j);

    /* 2. a job that runs until canceled through REST */
    int par2[] = {2};
    ck_assert_int_eq(submit(JOB_FOREVER, 1, par2, 0, NULL, NULL, 0, &err), 0);
    wait_state(JOB_FOREVER, "RUNNING");
    j = get_ok("/overview");
    ck_assert_int_eq(jint(j, "slots-total"), 4);
    ck_assert_int_eq(jint(j, "slots-available"), 2);
    ck_assert_int_eq(jint(j, "jobs-running"), 1);
    ck_assert_int_eq(jint(j, "jobs-finished"), 1);
    json_decref(j);
    j = get_ok("/taskmanagers");
    ck_assert_int_eq(jint(json_array_get(json_object_get(j, "taskmanagers"), 0), "freeSlots"), 1);
    json_decref(j);
    /* backpressure: the fake reports 700 ms/s back-pressured -> high */
    snprintf(path, sizeof path, "/jobs/%s/vertices/1/backpressure", JOB_FOREVER);
    for (int i = 0; i < 100; i++) {
        j = get_ok(path);
        if (!strcmp(jstring(j, "backpressure-level"), "high")) break;
        json_decref(j);
        j = NULL;
        usleep(20000);
    }
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(jstring(j, "status"), "ok");
    json_t *sub = json_array_get(json_object_get(j, "subtasks"), 0);
    ck_assert_str_eq(jstring(sub, "backpressure-level"), "high");
    ck_assert(json_real_value(json_object_get(sub, "ratio")) > 0.69);
    ck_assert(json_real_value(json_object_get(sub, "busyRatio")) > 0.19);
    ck_assert_int_eq(jint(sub, "attempt-number"), 0);
    json_decref(j);
    int status;
    j = http("PATCH", "/jobs/" JOB_FOREVER "?mode=cancel", NULL, &status);
    ck_assert_int_eq(status, 202);
    ck_assert_int_eq(json_object_size(j), 0);
    json_decref(j);
    wait_state(JOB_FOREVER, "CANCELED");
    j = http("PATCH", "/jobs/" JOB_FOREVER "?mode=cancel", NULL, &status);
    ck_assert_int_eq(status, 409);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "errors"), 0)),
                     "Job " JOB_FOREVER " is already CANCELED");
    json_decref(j);
    j = http("PATCH", "/jobs/" JOB_FOREVER "?mode=stop", NULL, &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    j = get_ok("/overview");
    ck_assert_int_eq(jint(j, "slots-available"), 4);
    ck_assert_int_eq(jint(j, "jobs-cancelled"), 1);
    json_decref(j);

    /* 3. a lost taskmanager fails the job that runs on it */
    int par4[] = {4};
    ck_assert_int_eq(submit(JOB_LOST, 1, par4, 0, NULL, NULL, 0, &err), 0);
    wait_state(JOB_LOST, "RUNNING");
    tms[1].close_now = 1;
    wait_state(JOB_LOST, "FAILED");
    j = get_ok("/jobs/" JOB_LOST "/exceptions");
    ck_assert_msg(strstr(jstring(j, "root-exception"), "TaskManager tm-b at 127.0.0.1 lost") != NULL,
                  "%s", jstring(j, "root-exception"));
    ck_assert_int_gt(json_integer_value(json_object_get(j, "timestamp")), 0);
    json_t *entry = json_array_get(json_object_get(json_object_get(j, "exceptionHistory"), "entries"), 0);
    ck_assert_str_eq(jstring(entry, "exceptionName"), "flint.TaskManagerLostException");
    ck_assert_str_eq(jstring(entry, "location"), "127.0.0.1:4002");
    ck_assert_int_eq(json_array_size(json_object_get(entry, "concurrentExceptions")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(j, "all-exceptions")), 2);
    json_decref(j);

    /* 4. too few slots: fails after slot.request.timeout (500 ms) */
    int par5[] = {5};
    ck_assert_int_eq(submit(JOB_TOO_BIG, 1, par5, 0, NULL, NULL, 0, &err), 0);
    wait_state(JOB_TOO_BIG, "FAILED");
    j = get_ok("/jobs/" JOB_TOO_BIG "/exceptions");
    ck_assert_str_eq(jstring(j, "root-exception"),
                     "Could not acquire the minimum required resources: the job needs 5 slots, the "
                     "cluster has 2 (2 free)");
    ck_assert_int_eq(json_array_size(json_object_get(j, "all-exceptions")), 0);
    ck_assert_str_eq(jstring(json_array_get(json_object_get(json_object_get(j, "exceptionHistory"), "entries"), 0),
                             "exceptionName"), "flint.NoResourceAvailableException");
    json_decref(j);

    /* 5. errors */
    ck_assert_int_eq(submit(JOB_TOO_BIG, 1, par5, 0, NULL, NULL, 0, &err), FLINT_EXISTS);
    int bad[] = {2, 4};
    test_edge fwd = {0, 1, FLINT__GRAPH__PARTITIONER__FORWARD};
    ck_assert_int_eq(submit("30000000000000000000000000000005", 2, bad, 1, &fwd, NULL, 0, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "a forward edge needs equal parallelism"));
    Flint__Rpc__CancelJob cj = FLINT__RPC__CANCEL_JOB__INIT;
    cj.job_id = "99999999999999999999999999999999";
    rpc_envelope creq = FLINT__RPC__ENVELOPE__INIT;
    creq.body_case = FLINT__RPC__ENVELOPE__BODY_CANCEL_JOB;
    creq.cancel_job = &cj;
    ck_assert_ptr_null(call(&creq, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, ": Job 99999999999999999999999999999999 not found"));
    j = http("GET", "/jobs/99999999999999999999999999999999", NULL, &status);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "errors"), 0)),
                     "Job 99999999999999999999999999999999 not found");
    json_decref(j);
    j = http("GET", "/jobs/" JOB_LOST "/vertices/77/backpressure", NULL, &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);

    /* ListJobs: newest first */
    Flint__Rpc__ListJobsRequest lj = FLINT__RPC__LIST_JOBS_REQUEST__INIT;
    rpc_envelope lreq = FLINT__RPC__ENVELOPE__INIT;
    lreq.body_case = FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_REQUEST;
    lreq.list_jobs_request = &lj;
    reply = call(&lreq, &err);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->list_jobs_response->n_jobs, 4);
    ck_assert_str_eq(reply->list_jobs_response->jobs[0]->job_id, JOB_TOO_BIG);
    ck_assert_str_eq(reply->list_jobs_response->jobs[3]->job_id, JOB_FINISHING);
    ck_assert_str_eq(reply->list_jobs_response->jobs[3]->state, "FINISHED");
    rpc_envelope_free(reply);

    stop_cluster();
}
END_TEST

int main(void) {
    log_set_level(getenv("CHECK_JM_LOG") ? LOG_INFO : LOG_ERROR);
    Suite *s = suite_create("jm_server");
    TCase *tc = tcase_create("jobs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, jobs_over_rpc_and_rest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

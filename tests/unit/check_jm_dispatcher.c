/* Unit tests of the dispatcher and the artifact store: submission checks (duplicate ids, artifact
 * hashes), the job registry (newest first, counts), cancel errors, routing of deployment outcomes
 * and lost taskmanagers (through the resource manager's lost hook), metrics, and the protobuf
 * views the client gateway sends. No sockets: the transport records what would be sent. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_jm_helpers.h"
#include "jm_artifacts.h"
#include "jm_dispatcher.h"
#include "util/log.h"
#include "util/sha256.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH

typedef struct fake {
    int deploys, cancels, releases;
    char released_on[8][128];
} fake;

static int f_deploy(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex,
                    Flint__Rpc__TaskDeploymentDescriptor *tdd, flint_err *err) {
    (void)tm, (void)job, (void)ex, (void)tdd, (void)err;
    ((fake *)ud)->deploys++;
    return 0;
}

static int f_cancel(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex) {
    (void)tm, (void)job, (void)ex;
    ((fake *)ud)->cancels++;
    return 0;
}

static void f_release(void *ud, jm_tm *tm, const char *job_id) {
    fake *f = ud;
    (void)job_id;
    if (f->releases < 8) snprintf(f->released_on[f->releases], 128, "%s", tm->resource_id);
    f->releases++;
}

/* A fixture: rm with tm-a and tm-b (2 slots each), an artifact store in a fresh directory and a
 * dispatcher whose lost hook is wired as jm_server does. */
typedef struct fixture {
    char tmp[64];
    jm_rm *rm;
    jm_artifacts *arts;
    jm_dispatcher *d;
    fake f;
} fixture;

static fixture *fx;

static void on_lost(jm_tm *tm, const char *reason, void *ud) {
    jm_dispatcher_tm_lost(ud, tm, reason, test_time(1000));
}

static void setup(void) {
    fx = XNEW(fixture);
    snprintf(fx->tmp, sizeof fx->tmp, "/tmp/check_jm_dispatcher.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fx->tmp));
    fx->rm = jm_rm_new(1000);
    test_register(fx->rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(fx->rm, "tm-b", "10.0.0.2", 5000, 2, 2);
    flint_err err = {0};
    fx->arts = jm_artifacts_open(fx->tmp, "abc", &err);
    ck_assert_msg(fx->arts != NULL, "%s", err.msg);
    jm_dispatcher_config cfg = {.slot_request_timeout_ms = 5000, .ask_timeout_ms = 1000,
                                .default_max_parallelism = 128};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &fx->f};
    fx->d = jm_dispatcher_new(fx->rm, fx->arts, &cfg, &t);
    jm_rm_set_lost_hook(fx->rm, on_lost, fx->d);
}

static void teardown(void) {
    jm_dispatcher_free(fx->d);
    jm_artifacts_close(fx->arts);
    jm_rm_free(fx->rm);
    rmdir(fx->tmp);
    free(fx);
}

static jm_job *submit(const char *id, int nv, const int *par, int ne, const test_edge *edges) {
    Flint__Graph__JobGraph *g = test_graph(id, nv, par, NULL, ne, edges);
    jm_job *job = NULL;
    flint_err err = {0};
    int rc = jm_dispatcher_submit(fx->d, g, NULL, 0, test_time(1), &job, &err);
    flint__graph__job_graph__free_unpacked(g, NULL);
    ck_assert_msg(rc == 0, "%s", err.msg);
    return job;
}

static void update(jm_job *job, int v, int s, const char *rid, const char *state, const char *error,
                   int expect) {
    Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    m.job_id = job->id;
    m.execution_id = job->vertices[v].execs[s].id;
    m.state = (char *)state;
    m.error = (char *)(error ? error : "");
    flint_err err = {0};
    ck_assert_int_eq(jm_dispatcher_update_task(fx->d, rid, &m, test_time(10), &err), expect);
}

START_TEST(submit_registers_and_refuses_duplicates) {
    int par[] = {2, 2};
    test_edge e = {0, 1, HASH};
    jm_job *job = submit(TEST_JOB_ID, 2, par, 1, &e);
    ck_assert_int_eq(job->state, JM_JOB_CREATED);
    ck_assert_ptr_eq(jm_dispatcher_find(fx->d, TEST_JOB_ID), job);
    ck_assert_int_eq(fx->f.deploys, 0);
    jm_dispatcher_start(fx->d, job, test_time(2));
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    ck_assert_int_eq(fx->f.deploys, 4);
    ck_assert_int_eq(jm_rm_slots_free(fx->rm), 2);

    Flint__Graph__JobGraph *g = test_graph(TEST_JOB_ID, 2, par, NULL, 1, &e);
    flint_err err = {0};
    ck_assert_int_eq(jm_dispatcher_submit(fx->d, g, NULL, 0, test_time(3), NULL, &err), FLINT_EXISTS);
    ck_assert_str_eq(err.msg, "Job " TEST_JOB_ID " has already been submitted");
    flint__graph__job_graph__free_unpacked(g, NULL);
    ck_assert_int_eq(jm_dispatcher_count(fx->d), 1);

    /* a second job: listed first */
    jm_job *second = submit("ffffffffffffffffffffffffffffffff", 1, par, 0, NULL);
    ck_assert_ptr_eq(jm_dispatcher_get(fx->d, 0), second);
    ck_assert_ptr_eq(jm_dispatcher_get(fx->d, 1), job);
    jm_job_counts c = jm_dispatcher_job_counts(fx->d);
    ck_assert_int_eq(c.running, 2);
    ck_assert_int_eq(c.finished + c.canceled + c.failed, 0);
}
END_TEST

START_TEST(artifacts_are_checked_and_stored) {
    const char data[] = "\x7f" "ELF pretend shared object";
    char sha[SHA256_HEX_LEN];
    sha256_hex(data, sizeof data, sha);
    int par[] = {1};
    flint_err err = {0};

    /* names an artifact but uploads none */
    Flint__Graph__JobGraph *g = test_graph(TEST_JOB_ID, 1, par, NULL, 0, NULL);
    char *saved = g->artifact_sha256;
    g->artifact_sha256 = sha;
    ck_assert_int_eq(jm_dispatcher_submit(fx->d, g, NULL, 0, test_time(1), NULL, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "no artifact was uploaded"));
    /* wrong bytes */
    ck_assert_int_eq(jm_dispatcher_submit(fx->d, g, "other", 5, test_time(1), NULL, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "has sha256"));
    ck_assert_ptr_nonnull(strstr(err.msg, sha));
    ck_assert_int_eq(jm_dispatcher_count(fx->d), 0);
    ck_assert(!jm_artifacts_has(fx->arts, sha));
    /* right bytes: stored, and a later job may name it without uploading again */
    ck_assert_int_eq(jm_dispatcher_submit(fx->d, g, data, sizeof data, test_time(1), NULL, &err), 0);
    ck_assert(jm_artifacts_has(fx->arts, sha));
    char *path = xasprintf("%s/%s.so", jm_artifacts_dir(fx->arts), sha);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, sizeof data);
    free(path);
    void *back = NULL;
    size_t len = 0;
    ck_assert_int_eq(jm_artifacts_get(fx->arts, sha, &back, &len, &err), 0);
    ck_assert_int_eq(len, sizeof data);
    ck_assert_mem_eq(back, data, len);
    free(back);
    ck_assert_int_eq(jm_artifacts_get(fx->arts, "00", &back, &len, &err), FLINT_NOT_FOUND);
    char other[SHA256_HEX_LEN];
    sha256_hex("x", 1, other);
    ck_assert_int_eq(jm_artifacts_get(fx->arts, other, &back, &len, &err), FLINT_NOT_FOUND);
    char *want = xasprintf("Artifact %s not found", other);
    ck_assert_str_eq(err.msg, want);
    free(want);

    g->job_id[0] = 'f';
    ck_assert_int_eq(jm_dispatcher_submit(fx->d, g, NULL, 0, test_time(1), NULL, &err), 0);
    g->artifact_sha256 = saved;
    flint__graph__job_graph__free_unpacked(g, NULL);
    ck_assert_int_eq(jm_dispatcher_count(fx->d), 2);
}
END_TEST

START_TEST(artifact_store_directory_is_removed) {
    char tmp[] = "/tmp/check_jm_arts.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    char *dirs = xasprintf("%s;/elsewhere", tmp);
    flint_err err = {0};
    jm_artifacts *a = jm_artifacts_open(dirs, "0011", &err);
    free(dirs);
    ck_assert_ptr_nonnull(a);
    char *want = xasprintf("%s/flint-jm-0011/artifacts", tmp);
    ck_assert_str_eq(jm_artifacts_dir(a), want);
    char sha[SHA256_HEX_LEN];
    sha256_hex("abc", 3, sha);
    ck_assert_int_eq(jm_artifacts_put(a, "abc", 3, sha, &err), 0);
    ck_assert_int_eq(jm_artifacts_put(a, "abc", 3, sha, &err), 0);   /* again: fine */
    jm_artifacts_close(a);
    struct stat st;
    ck_assert_int_ne(stat(want, &st), 0);
    free(want);
    ck_assert_int_eq(rmdir(tmp), 0);   /* empty again */

    ck_assert_ptr_null(jm_artifacts_open("/proc/no/such/dir", "0011", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "io.tmp.dirs"));
}
END_TEST

START_TEST(cancel_errors_name_the_job) {
    flint_err err = {0};
    ck_assert_int_eq(jm_dispatcher_cancel(fx->d, "00000000000000000000000000000000", test_time(1), &err),
                     FLINT_NOT_FOUND);
    ck_assert_str_eq(err.msg, "Job 00000000000000000000000000000000 not found");
    int par[] = {1};
    jm_job *job = submit(TEST_JOB_ID, 1, par, 0, NULL);
    jm_dispatcher_start(fx->d, job, test_time(2));
    update(job, 0, 0, "tm-a", "RUNNING", NULL, 0);
    update(job, 0, 0, "tm-a", "FINISHED", NULL, 0);
    ck_assert_int_eq(job->state, JM_JOB_FINISHED);
    ck_assert_int_eq(jm_dispatcher_cancel(fx->d, TEST_JOB_ID, test_time(3), &err), FLINT_STATE);
    ck_assert_str_eq(err.msg, "Job " TEST_JOB_ID " is already FINISHED");
    jm_job_counts c = jm_dispatcher_job_counts(fx->d);
    ck_assert_int_eq(c.running, 0);
    ck_assert_int_eq(c.finished, 1);
}
END_TEST

START_TEST(updates_are_checked_against_the_sender) {
    int par[] = {2};
    jm_job *job = submit(TEST_JOB_ID, 1, par, 0, NULL);
    jm_dispatcher_start(fx->d, job, test_time(2));
    ck_assert_str_eq(job->vertices[0].execs[1].loc.resource_id, "tm-b");
    update(job, 0, 1, "tm-a", "RUNNING", NULL, FLINT_INVALID);
    update(job, 0, 1, "tm-b", "RUNNING", NULL, 0);
    Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    m.job_id = "ffffffffffffffffffffffffffffffff";
    m.execution_id = job->vertices[0].execs[0].id;
    m.state = "RUNNING";
    flint_err err = {0};
    ck_assert_int_eq(jm_dispatcher_update_task(fx->d, "tm-a", &m, test_time(3), &err), FLINT_NOT_FOUND);
    ck_assert_str_eq(err.msg, "Job ffffffffffffffffffffffffffffffff not found");
}
END_TEST

START_TEST(lost_taskmanager_fails_the_job_and_frees_slots) {
    int par[] = {2, 2};
    test_edge e = {0, 1, HASH};
    jm_job *job = submit(TEST_JOB_ID, 2, par, 1, &e);
    jm_dispatcher_start(fx->d, job, test_time(2));
    for (int v = 0; v < 2; v++) {
        update(job, v, 0, "tm-a", "RUNNING", NULL, 0);
        update(job, v, 1, "tm-b", "RUNNING", NULL, 0);
    }
    ck_assert_int_eq(jm_rm_slots_free(fx->rm), 2);
    ck_assert_int_eq(jm_rm_unregister(fx->rm, "tm-a", "connection closed (reset by peer)"), 0);
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    ck_assert_int_eq(fx->f.cancels, 2);   /* tm-b's two tasks */
    ck_assert_str_eq(job->exceptions[job->root_exception].message,
                     "V0 (1/2) on 10.0.0.1:4000: TaskManager tm-a at 10.0.0.1 lost: connection closed "
                     "(reset by peer)");
    update(job, 0, 1, "tm-b", "CANCELED", NULL, 0);
    update(job, 1, 1, "tm-b", "CANCELED", NULL, 0);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_int_eq(fx->f.releases, 1);
    ck_assert_str_eq(fx->f.released_on[0], "tm-b");
    ck_assert_int_eq(jm_rm_slots_free(fx->rm), 2);   /* tm-b's, all free; tm-a is gone */
    ck_assert_int_eq(jm_rm_slots_total(fx->rm), 2);

    /* the client's view */
    Flint__Rpc__JobDetails *d = jm_job_details_new(job);
    ck_assert_str_eq(d->state, "FAILED");
    ck_assert_int_eq(d->n_vertices, 2);
    ck_assert_str_eq(d->vertices[0]->status, "FAILED");
    ck_assert_int_eq(d->vertices[0]->parallelism, 2);
    ck_assert_int_eq(d->vertices[0]->n_tasks, JM_EXEC_STATE_COUNT);
    int failed = -1, canceled = -1;
    for (size_t i = 0; i < d->vertices[0]->n_tasks; i++) {
        if (!strcmp(d->vertices[0]->tasks[i]->key, "FAILED")) failed = d->vertices[0]->tasks[i]->value;
        if (!strcmp(d->vertices[0]->tasks[i]->key, "CANCELED")) canceled = d->vertices[0]->tasks[i]->value;
    }
    ck_assert_int_eq(failed, 1);
    ck_assert_int_eq(canceled, 1);
    ck_assert_ptr_nonnull(d->root_exception);
    ck_assert_ptr_nonnull(strstr(d->root_exception->exception, "TaskManager tm-a at 10.0.0.1 lost"));
    ck_assert_str_eq(d->root_exception->task_name, "V0 (1/2)");
    ck_assert_str_eq(d->root_exception->location, "10.0.0.1:4000");
    ck_assert_int_eq(d->n_exceptions, 2);
    ck_assert_int_ne(d->end_time, -1);
    /* packs */
    ck_assert_int_gt(flint__rpc__job_details__get_packed_size(d), 0);
    jm_job_details_free(d);
    Flint__Rpc__JobSummary *s = jm_job_summary_new(job);
    ck_assert_str_eq(s->state, "FAILED");
    ck_assert_str_eq(s->name, "Test Job");
    jm_job_summary_free(s);
}
END_TEST

START_TEST(deployment_outcomes) {
    int par[] = {2};
    jm_job *job = submit(TEST_JOB_ID, 1, par, 0, NULL);
    jm_dispatcher_start(fx->d, job, test_time(2));
    jm_dispatcher_deploy_result(fx->d, TEST_JOB_ID, job->vertices[0].execs[0].id, FLINT_OK, NULL, test_time(3));
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    jm_dispatcher_deploy_result(fx->d, TEST_JOB_ID, "unknown", FLINT_TIMEOUT, "x", test_time(3));
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    jm_dispatcher_deploy_result(fx->d, TEST_JOB_ID, job->vertices[0].execs[1].id, FLINT_CLOSED,
                                "connection to 10.0.0.2:7 closed before the reply: eof", test_time(4));
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    ck_assert_str_eq(job->exceptions[0].message,
                     "V0 (2/2) on 10.0.0.2:5000: TaskManager tm-b at 10.0.0.2 lost: connection to "
                     "10.0.0.2:7 closed before the reply: eof");
    /* the CancelTask for subtask 0 is refused: canceled */
    jm_dispatcher_cancel_result(fx->d, TEST_JOB_ID, job->vertices[0].execs[0].id, FLINT_NOT_FOUND,
                                "no such task", test_time(5));
    ck_assert_int_eq(job->state, JM_JOB_FAILED);

    jm_job *other = submit("ffffffffffffffffffffffffffffffff", 1, par, 0, NULL);
    jm_dispatcher_start(fx->d, other, test_time(6));
    jm_dispatcher_deploy_result(fx->d, other->id, other->vertices[0].execs[0].id, FLINT_TIMEOUT,
                                "no reply from 10.0.0.1:6 within 1000 ms", test_time(7));
    ck_assert_str_eq(other->exceptions[0].message,
                     "V0 (1/2) on 10.0.0.1:4000: Could not deploy the task: no reply from 10.0.0.1:6 "
                     "within 1000 ms");
    /* the other task never confirms its cancel: after rpc.ask.timeout it counts as canceled */
    jm_dispatcher_tick(fx->d, test_time(7 + 999));
    ck_assert_int_eq(other->state, JM_JOB_FAILING);
    jm_dispatcher_tick(fx->d, test_time(7 + 1000));
    ck_assert_int_eq(other->state, JM_JOB_FAILED);
}
END_TEST

START_TEST(metrics_reach_their_task) {
    int par[] = {2};
    jm_job *job = submit(TEST_JOB_ID, 1, par, 0, NULL);
    jm_dispatcher_start(fx->d, job, test_time(2));
    Flint__Rpc__TaskMetrics m = FLINT__RPC__TASK_METRICS__INIT;
    m.job_id = job->id;
    m.execution_id = job->vertices[0].execs[1].id;
    m.num_records_in = 7;
    m.num_records_out = 9;
    m.num_bytes_in = 70;
    m.num_bytes_out = 90;
    m.back_pressured_time_ms_per_second = 800;
    jm_dispatcher_metrics(fx->d, "tm-a", &m);   /* wrong taskmanager: ignored */
    ck_assert(!job->vertices[0].execs[1].has_metrics);
    jm_dispatcher_metrics(fx->d, "tm-b", &m);
    ck_assert(job->vertices[0].execs[1].has_metrics);
    ck_assert_int_eq(job->vertices[0].execs[1].metrics.back_pressured_ms, 800);
    Flint__Rpc__JobDetails *d = jm_job_details_new(job);
    ck_assert_int_eq(d->vertices[0]->read_records, 7);
    ck_assert_int_eq(d->vertices[0]->write_records, 9);
    ck_assert_int_eq(d->vertices[0]->read_bytes, 70);
    ck_assert_int_eq(d->vertices[0]->write_bytes, 90);
    ck_assert_str_eq(d->vertices[0]->status, "CREATED");   /* both DEPLOYING */
    jm_job_details_free(d);

    /* the final metrics ride along with FINISHED */
    Flint__Rpc__UpdateTaskExecutionState u = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    Flint__Rpc__TaskMetrics fin = FLINT__RPC__TASK_METRICS__INIT;
    fin.num_records_in = 42;
    u.job_id = job->id;
    u.execution_id = job->vertices[0].execs[0].id;
    u.state = "FINISHED";
    u.metrics = &fin;
    ck_assert_int_eq(jm_dispatcher_update_task(fx->d, "tm-a", &u, test_time(5), NULL), 0);
    ck_assert_int_eq(job->vertices[0].execs[0].metrics.records_in, 42);
    jm_task_metrics sum;
    jm_vertex_io(&job->vertices[0], &sum);
    ck_assert_int_eq(sum.records_in, 49);
}
END_TEST

START_TEST(reregistration_counts_as_lost) {
    int par[] = {1};
    jm_job *job = submit(TEST_JOB_ID, 1, par, 0, NULL);
    jm_dispatcher_start(fx->d, job, test_time(2));
    ck_assert_str_eq(job->vertices[0].execs[0].loc.resource_id, "tm-a");
    test_register(fx->rm, "tm-a", "10.0.0.1", 4000, 2, 9);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_ptr_nonnull(strstr(job->exceptions[0].message, "TaskManager tm-a at 10.0.0.1 lost: it registered again"));
    ck_assert_int_eq(jm_rm_slots_free(fx->rm), 4);
}
END_TEST

int main(void) {
    log_set_level(LOG_ERROR);
    Suite *s = suite_create("jm_dispatcher");
    TCase *tc = tcase_create("dispatcher");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, submit_registers_and_refuses_duplicates);
    tcase_add_test(tc, artifacts_are_checked_and_stored);
    tcase_add_test(tc, cancel_errors_name_the_job);
    tcase_add_test(tc, updates_are_checked_against_the_sender);
    tcase_add_test(tc, lost_taskmanager_fails_the_job_and_frees_slots);
    tcase_add_test(tc, deployment_outcomes);
    tcase_add_test(tc, metrics_reach_their_task);
    tcase_add_test(tc, reregistration_counts_as_lost);
    suite_add_tcase(s, tc);
    tc = tcase_create("artifacts");
    tcase_add_test(tc, artifact_store_directory_is_removed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

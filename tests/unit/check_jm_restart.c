/* Unit tests of restart strategies (jm_restart: none, fixed-delay attempts and delay, failure-rate
 * windows, Flink's defaults) and of recovery through the dispatcher: a failed task or a lost
 * taskmanager -> RESTARTING, every task canceled, slots released, the delay, redeployment of every
 * task as the next attempt with the restore descriptor of the latest completed checkpoint,
 * waiting for slots of a replacement taskmanager, the exception history keeping every failure,
 * and the job failing once the strategy gives up. No sockets: transports record what is sent. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_jm_helpers.h"
#include "config/config.h"
#include "jm_dispatcher.h"
#include "jm_restart.h"
#include "util/log.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH

/* ---- restart strategies ---- */

static jm_restart_config load(const char *const *kv, int n, bool checkpointing) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    for (int i = 0; i < n; i++) ck_assert_msg(config_set(cfg, kv[2 * i], kv[2 * i + 1], "test", &err) == 0, "%s", err.msg);
    jm_restart_config c;
    ck_assert_msg(jm_restart_config_load(cfg, checkpointing, &c, &err) == 0, "%s", err.msg);
    config_free(cfg);
    return c;
}

START_TEST(defaults_follow_flink) {
    jm_restart_config c = load(NULL, 0, false);
    ck_assert_int_eq(c.type, JM_RESTART_NONE);
    c = load(NULL, 0, true);
    ck_assert_int_eq(c.type, JM_RESTART_FIXED_DELAY);
    ck_assert_int_eq(c.attempts, 2147483647);
    ck_assert_int_eq(c.delay_ms, 1000);
    char buf[128];
    jm_restart_describe(&c, buf, sizeof buf);
    ck_assert_str_eq(buf, "fixed-delay (2147483647 attempts, 1 s delay)");
    const char *kv[] = {"restart-strategy.type", "none"};
    ck_assert_int_eq(load(kv, 1, true).type, JM_RESTART_NONE);
    flint_config *cfg = config_new();
    flint_err err = {0};
    config_set(cfg, "restart-strategy.type", "sometimes", "test", &err);
    ck_assert_int_eq(jm_restart_config_load(cfg, true, &c, &err), FLINT_CONFIG);
    ck_assert_msg(strstr(err.msg, "restart-strategy.type"), "%s", err.msg);
    config_free(cfg);
}
END_TEST

START_TEST(none_never_restarts) {
    jm_restart_config c = {.type = JM_RESTART_NONE};
    jm_restart *r = jm_restart_new(&c);
    int64_t d;
    ck_assert(!jm_restart_on_failure(r, 0, &d));
    jm_restart_free(r);
}
END_TEST

START_TEST(fixed_delay_attempts_and_delay) {
    const char *kv[] = {"restart-strategy.type", "fixed-delay", "restart-strategy.fixed-delay.attempts", "3",
                        "restart-strategy.fixed-delay.delay", "250 ms"};
    jm_restart_config c = load(kv, 3, false);
    jm_restart *r = jm_restart_new(&c);
    int64_t d = -1;
    for (int i = 0; i < 3; i++) {
        ck_assert(jm_restart_on_failure(r, i * 10, &d));
        ck_assert_int_eq(d, 250);
    }
    ck_assert(!jm_restart_on_failure(r, 1000000, &d));   /* attempts are never forgotten */
    ck_assert_int_eq(jm_restart_count(r), 3);
    jm_restart_free(r);
    c.attempts = 0;
    r = jm_restart_new(&c);
    ck_assert(!jm_restart_on_failure(r, 0, &d));
    jm_restart_free(r);
}
END_TEST

START_TEST(failure_rate_windows) {
    const char *kv[] = {"restart-strategy.type", "failure-rate",
                        "restart-strategy.failure-rate.max-failures-per-interval", "2",
                        "restart-strategy.failure-rate.failure-rate-interval", "1 s",
                        "restart-strategy.failure-rate.delay", "100 ms"};
    jm_restart_config c = load(kv, 4, false);
    jm_restart *r = jm_restart_new(&c);
    int64_t d;
    ck_assert(jm_restart_on_failure(r, 0, &d));
    ck_assert_int_eq(d, 100);
    ck_assert(jm_restart_on_failure(r, 500, &d));
    ck_assert(jm_restart_on_failure(r, 1200, &d));    /* 0 left the window: 500, 1200 */
    ck_assert(!jm_restart_on_failure(r, 1400, &d));   /* 500, 1200, 1400: three in one second */
    jm_restart_free(r);
    r = jm_restart_new(&c);
    for (int i = 0; i < 20; i++) ck_assert(jm_restart_on_failure(r, i * 600, &d));   /* a slow trickle */
    jm_restart_free(r);
}
END_TEST

/* ---- recovery through the dispatcher ---- */

typedef struct fake {
    int deploys, cancels, releases, triggers, completes;
    int restored_deploys;         /* deployments that carried a restore descriptor */
    int64_t restored_id;
    int attempt;
    char deployed_on[16][128];
} fake;

static fake F;
static char tmp[64];
static jm_rm *rm;
static jm_dispatcher *d;
static flint_config *cfg;

static int f_deploy(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex,
                    Flint__Rpc__TaskDeploymentDescriptor *tdd, flint_err *err) {
    (void)ud, (void)job, (void)err;
    if (F.deploys < 16) snprintf(F.deployed_on[F.deploys], 128, "%s", tm->resource_id);
    F.deploys++;
    F.attempt = tdd->attempt;
    ck_assert_int_eq(tdd->attempt, ex->attempt);
    ck_assert_ptr_nonnull(tdd->checkpointing);
    ck_assert(tdd->checkpointing->enabled);
    if (tdd->restore) {
        F.restored_deploys++;
        F.restored_id = tdd->restore->checkpoint_id;
        ck_assert_int_eq(tdd->restore->n_operators, 1);
        ck_assert_str_eq(tdd->restore->operators[0]->operator_id, tdd->vertex->operators[0]->operator_id);
    }
    return 0;
}

static int f_cancel(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex) {
    (void)ud, (void)tm, (void)job, (void)ex;
    F.cancels++;
    return 0;
}

static void f_release(void *ud, jm_tm *tm, const char *job_id) {
    (void)ud, (void)tm, (void)job_id;
    F.releases++;
}

static int f_trigger(void *ud, jm_tm *tm, const Flint__Checkpoint__TriggerCheckpoint *m, flint_err *err) {
    (void)ud, (void)tm, (void)m, (void)err;
    F.triggers++;
    return 0;
}

static void f_complete(void *ud, jm_tm *tm, const Flint__Checkpoint__NotifyCheckpointComplete *m) {
    (void)ud, (void)tm, (void)m;
    F.completes++;
}

static void on_lost(jm_tm *tm, const char *reason, void *ud) {
    jm_dispatcher_tm_lost(ud, tm, reason, test_time(5000));
}

static void setup(void) {
    memset(&F, 0, sizeof F);
    snprintf(tmp, sizeof tmp, "/tmp/check_jm_restart.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    cfg = config_new();
    flint_err err = {0};
    char dir[128];
    snprintf(dir, sizeof dir, "%s/checkpoints", tmp);
    const char *kv[][2] = {{"execution.checkpointing.interval", "100 ms"},
                           {"restart-strategy.fixed-delay.attempts", "3"},
                           {"restart-strategy.fixed-delay.delay", "500 ms"},
                           {"state.checkpoints.dir", dir}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(config_set(cfg, kv[i][0], kv[i][1], "test", &err) == 0, "%s", err.msg);
    rm = jm_rm_new(100000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(rm, "tm-b", "10.0.0.2", 5000, 2, 2);
    jm_dispatcher_config dc = {.slot_request_timeout_ms = 3000, .ask_timeout_ms = 1000,
                               .default_max_parallelism = 128, .cfg = cfg};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, NULL};
    d = jm_dispatcher_new(rm, NULL, &dc, &t);
    jm_cp_transport ct = {.trigger = f_trigger, .notify_complete = f_complete};
    jm_dispatcher_set_cp_transport(d, &ct);
    jm_rm_set_lost_hook(rm, on_lost, d);
}

static void teardown(void) {
    jm_dispatcher_free(d);
    jm_rm_free(rm);
    config_free(cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

static void update(jm_job *job, jm_exec *ex, const char *state, const char *error, int64_t at) {
    Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    m.job_id = job->id;
    m.execution_id = ex->id;
    m.state = (char *)state;
    m.error = (char *)(error ? error : "");
    flint_err err = {0};
    ck_assert_msg(jm_dispatcher_update_task(d, NULL, &m, test_time(at), &err) == 0, "%s", err.msg);
}

/* Every task of the job reports state (unless already terminal). */
static void all(jm_job *job, const char *state, int64_t at) {
    for (int v = 0; v < job->n_vertices; v++)
        for (int s = 0; s < job->vertices[v].parallelism; s++) {
            jm_exec *ex = &job->vertices[v].execs[s];
            if (!jm_exec_state_terminal(ex->state)) update(job, ex, state, NULL, at);
        }
}

/* Acknowledge checkpoint id for every task, with keyed state of its key groups. */
static void ack_all(jm_job *job, int64_t id, int64_t at) {
    for (int v = 0; v < job->n_vertices; v++)
        for (int s = 0; s < job->vertices[v].parallelism; s++) {
            const jm_vertex *jv = &job->vertices[v];
            Flint__Checkpoint__KeyGroupRange r = FLINT__CHECKPOINT__KEY_GROUP_RANGE__INIT;
            jm_key_group_range(jv->max_parallelism, jv->parallelism, s, &r.start, &r.end);
            Flint__Checkpoint__StreamStateHandle file = FLINT__CHECKPOINT__STREAM_STATE_HANDLE__INIT;
            uint8_t b = 7;
            file.data.data = &b;
            file.data.len = 1;
            Flint__Checkpoint__KeyedStateHandle kh = FLINT__CHECKPOINT__KEYED_STATE_HANDLE__INIT, *khp = &kh;
            kh.key_group_range = &r;
            kh.file = &file;
            Flint__Checkpoint__OperatorSubtaskState st = FLINT__CHECKPOINT__OPERATOR_SUBTASK_STATE__INIT, *stp = &st;
            st.operator_id = jv->def->operators[0]->operator_id;
            st.n_keyed_state = 1;
            st.keyed_state = &khp;
            Flint__Checkpoint__AcknowledgeCheckpoint m = FLINT__CHECKPOINT__ACKNOWLEDGE_CHECKPOINT__INIT;
            m.job_id = job->id;
            m.execution_id = jv->execs[s].id;
            m.checkpoint_id = id;
            m.n_operators = 1;
            m.operators = &stp;
            flint_err err = {0};
            ck_assert_msg(jm_dispatcher_ack_checkpoint(d, jv->execs[s].loc.resource_id, &m, test_time(at), &err) == 0,
                          "%s", err.msg);
        }
}

static jm_job *submit_running_p(int p) {
    int par[] = {p, p};
    test_edge e = {0, 1, HASH};
    Flint__Graph__JobGraph *g = test_graph(TEST_JOB_ID, 2, par, NULL, 1, &e);
    jm_job *job = NULL;
    flint_err err = {0};
    int rc = jm_dispatcher_submit(d, g, NULL, 0, test_time(0), &job, &err);
    flint__graph__job_graph__free_unpacked(g, NULL);
    ck_assert_msg(rc == 0, "%s", err.msg);
    jm_dispatcher_start(d, job, test_time(0));
    ck_assert_int_eq(F.deploys, 2 * p);
    ck_assert_int_eq(F.restored_deploys, 0);
    all(job, "RUNNING", 10);
    return job;
}

static jm_job *submit_running(void) { return submit_running_p(2); }

START_TEST(task_failure_restarts_from_the_latest_checkpoint) {
    jm_job *job = submit_running();
    jm_dispatcher_tick(d, test_time(60));
    ck_assert_int_eq(F.triggers, 0);
    jm_dispatcher_tick(d, test_time(110));   /* RUNNING at 10, interval 100 */
    ck_assert_int_eq(F.triggers, 2);
    ack_all(job, 1, 120);
    ck_assert_int_eq(F.completes, 4);
    jm_cp_stats st;
    jm_cp_get_stats(jm_dispatcher_job_checkpoints(d, job), &st);
    ck_assert_int_eq(st.completed, 1);

    /* a task fails: RESTARTING, the others are canceled, nothing is redeployed yet */
    update(job, &job->vertices[1].execs[0], "FAILED", "boom", 1000);
    ck_assert_int_eq(job->state, JM_JOB_RESTARTING);
    ck_assert_int_eq(F.cancels, 3);
    jm_dispatcher_tick(d, test_time(1100));
    ck_assert_int_eq(F.deploys, 4);
    all(job, "CANCELED", 1200);
    ck_assert_int_eq(job->state, JM_JOB_RESTARTING);
    jm_dispatcher_tick(d, test_time(1499));
    ck_assert_int_eq(F.deploys, 4);
    jm_dispatcher_tick(d, test_time(1500));   /* failure + 500 ms */
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    ck_assert_int_eq(F.deploys, 8);
    ck_assert_int_eq(F.attempt, 1);
    ck_assert_int_eq(F.restored_deploys, 4);
    ck_assert_int_eq(F.restored_id, 1);
    ck_assert_int_eq(F.releases, 2);   /* ReleaseJob to both taskmanagers */
    ck_assert_int_eq(job->vertices[0].execs[0].attempt, 1);
    ck_assert_int_eq(jm_rm_slots_free(rm), 2);   /* slot sharing: 2 slots for 4 subtasks */
    jm_cp_get_stats(jm_dispatcher_job_checkpoints(d, job), &st);
    ck_assert_int_eq(st.restored, 1);
    ck_assert_int_eq(st.restored_id, 1);
    ck_assert(job->timestamps[JM_JOB_RESTARTING] > 0);

    /* the next checkpoint gets the next id */
    all(job, "RUNNING", 1600);
    jm_dispatcher_tick(d, test_time(1700));
    ck_assert_int_eq(F.triggers, 4);
    ack_all(job, 2, 1710);
    jm_cp_get_stats(jm_dispatcher_job_checkpoints(d, job), &st);
    ck_assert_int_eq(st.completed, 2);
}
END_TEST

START_TEST(lost_taskmanager_waits_for_a_replacement) {
    jm_job *job = submit_running_p(4);   /* all four slots */
    ck_assert_int_eq(jm_rm_unregister(rm, "tm-b", "connection closed"), 0);
    ck_assert_int_eq(job->state, JM_JOB_RESTARTING);
    all(job, "CANCELED", 5100);
    jm_dispatcher_tick(d, test_time(5500));   /* lost at 5000 + 500 */
    /* two slots are left, four are needed: the job waits for slots */
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    ck_assert_int_eq(F.deploys, 8);
    ck_assert_int_eq(F.restored_deploys, 0);   /* no checkpoint was completed: empty state */
    ck_assert_int_eq(jm_sched_waiting(jm_dispatcher_sched(d)), 1);
    test_register(rm, "tm-c", "10.0.0.3", 6000, 2, 3);
    jm_dispatcher_resources_changed(d, test_time(6000));
    ck_assert_int_eq(F.deploys, 16);
    int on_c = 0;
    for (int i = 8; i < 16; i++) {
        ck_assert_str_ne(F.deployed_on[i], "tm-b");
        on_c += strcmp(F.deployed_on[i], "tm-c") == 0;
    }
    ck_assert_int_eq(on_c, 4);
    /* the exception history keeps the failures of the lost taskmanager */
    ck_assert_int_eq(job->n_exceptions, 4);   /* tm-b ran 4 of the 8 subtasks */
    ck_assert_int_eq(job->root_exception, 0);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(job->exceptions[i].root, 0);
    ck_assert_msg(strstr(job->exceptions[0].message, "tm-b"), "%s", job->exceptions[0].message);
}
END_TEST

START_TEST(gives_up_after_the_attempts) {
    jm_job *job = submit_running();
    int64_t t = 1000;
    for (int i = 0; i < 3; i++, t += 1000) {
        update(job, &job->vertices[0].execs[1], "FAILED", "boom", t);
        ck_assert_int_eq(job->state, JM_JOB_RESTARTING);
        update(job, &job->vertices[1].execs[1], "FAILED", "canceling", t + 1);   /* it was canceled anyway */
        all(job, "CANCELED", t + 10);
        jm_dispatcher_tick(d, test_time(t + 500));
        ck_assert_int_eq(job->state, JM_JOB_RUNNING);
        ck_assert_int_eq(job->vertices[0].execs[0].attempt, i + 1);
        all(job, "RUNNING", t + 600);
    }
    update(job, &job->vertices[0].execs[1], "FAILED", "the last straw", t);
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    all(job, "CANCELED", t + 10);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    /* four roots: one per run */
    int roots = 0;
    for (int i = 0; i < job->n_exceptions; i++) roots += job->exceptions[i].root == i;
    ck_assert_int_eq(roots, 4);
    ck_assert_int_eq(job->n_exceptions, 4);
    ck_assert_msg(strstr(job->exceptions[job->root_exception].message, "the last straw"), "%s",
                  job->exceptions[job->root_exception].message);
}
END_TEST

START_TEST(cancel_while_restarting) {
    jm_job *job = submit_running();
    update(job, &job->vertices[0].execs[0], "FAILED", "boom", 1000);
    ck_assert_int_eq(job->state, JM_JOB_RESTARTING);
    flint_err err = {0};
    ck_assert_int_eq(jm_dispatcher_cancel(d, job->id, test_time(1100), &err), 0);
    ck_assert_int_eq(job->state, JM_JOB_CANCELLING);
    all(job, "CANCELED", 1200);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    jm_dispatcher_tick(d, test_time(5000));
    ck_assert_int_eq(F.deploys, 4);
    ck_assert_int_eq(jm_rm_slots_free(rm), 4);
}
END_TEST

START_TEST(unusable_checkpoints_fail_the_restart) {
    jm_job *job = submit_running();
    jm_dispatcher_tick(d, test_time(110));
    ack_all(job, 1, 120);
    /* a task reports it cannot restore checkpoint 1 */
    update(job, &job->vertices[0].execs[0], "FAILED", "boom", 1000);
    all(job, "CANCELED", 1010);
    jm_dispatcher_tick(d, test_time(1500));
    ck_assert_int_eq(F.restored_deploys, 4);
    Flint__Checkpoint__StateRestoreFailure rf = FLINT__CHECKPOINT__STATE_RESTORE_FAILURE__INIT;
    rf.checkpoint_id = 1;
    rf.path = "/somewhere/keyed-0";
    rf.message = "bad magic";
    Flint__Rpc__UpdateTaskExecutionState m = FLINT__RPC__UPDATE_TASK_EXECUTION_STATE__INIT;
    m.job_id = job->id;
    m.execution_id = job->vertices[1].execs[0].id;
    m.state = "FAILED";
    m.error = "cannot restore";
    m.restore_failure = &rf;
    flint_err err = {0};
    ck_assert_int_eq(jm_dispatcher_update_task(d, NULL, &m, test_time(1600), &err), 0);
    ck_assert_int_eq(job->state, JM_JOB_RESTARTING);
    all(job, "CANCELED", 1610);
    jm_dispatcher_tick(d, test_time(2200));
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_msg(strstr(job->exceptions[job->root_exception].message, "/somewhere/keyed-0: bad magic"), "%s",
                  job->exceptions[job->root_exception].message);
}
END_TEST

int main(void) {
    log_init("check", NULL, LOG_ERROR);
    Suite *s = suite_create("jm_restart");
    TCase *tc = tcase_create("strategies");
    tcase_add_test(tc, defaults_follow_flink);
    tcase_add_test(tc, none_never_restarts);
    tcase_add_test(tc, fixed_delay_attempts_and_delay);
    tcase_add_test(tc, failure_rate_windows);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("recovery");
    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_add_test(tr, task_failure_restarts_from_the_latest_checkpoint);
    tcase_add_test(tr, lost_taskmanager_waits_for_a_replacement);
    tcase_add_test(tr, gives_up_after_the_attempts);
    tcase_add_test(tr, cancel_while_restarting);
    tcase_add_test(tr, unusable_checkpoints_fail_the_restart);
    suite_add_tcase(s, tr);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Unit tests of the task executor's job execution against a fake jobmanager on loopback RPC:
 * DeployTask answered at once, then the task's states in order (DEPLOYING, INITIALIZING, RUNNING,
 * FINISHED with final metrics), slots and per-task metrics in heartbeats, CancelTask, ReleaseJob,
 * a deployment naming a user function without an artifact, refused deployments, and the loss of
 * the jobmanager canceling every task and freeing every slot. */
#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "rpc/rpc.h"
#include "tm_deploy.h"
#include "tm_executor.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include "check_op_helpers.h"

#define DEADLINE_MS 30000
#define JOB "0123456789abcdef0123456789abcdef"

typedef struct fake_jm {
    struct event_base *base;
    rpc_server *srv;
    rpc_conn *tm;                  /* the registered taskmanager's connection */
    char log[64][160];             /* "<execution>:<STATE>[:<error>]" */
    int nlog;
    int64_t final_records_out;     /* from the last terminal update with metrics */
    char slot_jobs[4][40];         /* the last heartbeat's slots */
    int nslots, heartbeats, hb_tasks;
    int64_t hb_records_out;
    int replies, errors;
    char last_error[512];
} fake_jm;

static fake_jm J;

static void reply_ack(rpc_conn *c, rpc_envelope *req) {
    Flint__Rpc__Ack ack = FLINT__RPC__ACK__INIT;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    rpc_reply(c, req, &env);
}

static void jm_on_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    switch (env->body_case) {
    case FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER: {
        J.tm = c;
        Flint__Rpc__RegisterTaskManagerResponse r = FLINT__RPC__REGISTER_TASK_MANAGER_RESPONSE__INIT;
        r.jobmanager_id = "fakejm";
        r.heartbeat_interval_ms = 50;
        r.heartbeat_timeout_ms = 10000;
        reply.body_case = FLINT__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER_RESPONSE;
        reply.register_task_manager_response = &r;
        rpc_reply(c, env, &reply);
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_HEARTBEAT: {
        Flint__Rpc__Heartbeat *hb = env->heartbeat;
        J.heartbeats++;
        J.nslots = (int)hb->n_slots;
        for (size_t i = 0; i < hb->n_slots && i < 4; i++)
            snprintf(J.slot_jobs[i], sizeof J.slot_jobs[i], "%s", hb->slots[i]->job_id);
        J.hb_tasks = (int)hb->n_tasks;
        J.hb_records_out = 0;
        for (size_t i = 0; i < hb->n_tasks; i++) J.hb_records_out += hb->tasks[i]->num_records_out;
        Flint__Rpc__HeartbeatResponse r = FLINT__RPC__HEARTBEAT_RESPONSE__INIT;
        r.registered = true;
        reply.body_case = FLINT__RPC__ENVELOPE__BODY_HEARTBEAT_RESPONSE;
        reply.heartbeat_response = &r;
        rpc_reply(c, env, &reply);
        break;
    }
    case FLINT__RPC__ENVELOPE__BODY_UPDATE_TASK_EXECUTION_STATE: {
        Flint__Rpc__UpdateTaskExecutionState *u = env->update_task_execution_state;
        if (J.nlog < 64)
            snprintf(J.log[J.nlog++], sizeof J.log[0], "%s:%s%s%.100s", u->execution_id, u->state,
                     u->error[0] ? ":" : "", u->error);
        if (u->metrics) J.final_records_out = u->metrics->num_records_out;
        reply_ack(c, env);
        break;
    }
    default:
        rpc_reply_error(c, env, FLINT_UNSUPPORTED, "fake jm");
    }
}

static void jm_on_accept(rpc_conn *c, void *ud) {
    rpc_handlers h = {.on_message = jm_on_message, .ud = ud};
    rpc_conn_set_handlers(c, &h);
}

static void on_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    J.replies++;
    if (status) {
        J.errors++;
        snprintf(J.last_error, sizeof J.last_error, "%s", msg ? msg : "");
    }
}

/* Run the loop until cond() holds (true) or the deadline passes (false). */
static bool run_until(bool (*cond)(void)) {
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    while (!cond()) {
        if (time_mono_ms() > deadline) return false;
        struct timeval tv = {0, 5000};
        event_base_loopexit(J.base, &tv);
        event_base_dispatch(J.base);
    }
    return true;
}

static int count_log(const char *needle) {
    int n = 0;
    for (int i = 0; i < J.nlog; i++) n += strstr(J.log[i], needle) != NULL;
    return n;
}

static bool registered(void) { return J.tm != NULL && J.heartbeats > 0; }

static taskmanager TM;
static char tmpdir[64];

static void setup(void) {
    memset(&J, 0, sizeof J);
    J.base = event_base_new();
    flint_err err = {0};
    J.srv = rpc_listen(J.base, "127.0.0.1", 0, 1 << 24, jm_on_accept, NULL, &err);
    ck_assert_msg(J.srv != NULL, "%s", err.msg);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/flint-check-tmx-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    flint_config *cfg = config_new();
    char port[16];
    snprintf(port, sizeof port, "%d", rpc_server_port(J.srv));
    ck_assert_int_eq(config_set(cfg, "jobmanager.rpc.address", "127.0.0.1", "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "jobmanager.rpc.port", port, "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "taskmanager.numberOfTaskSlots", "2", "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "io.tmp.dirs", tmpdir, "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "cluster.registration.max-timeout", "100ms", "test", &err), 0);
    ck_assert_int_eq(tm_start(&TM, cfg, J.base, &err), 0);
    ck_assert(run_until(registered));
}

static void teardown(void) {
    tm_stop(&TM);
    rpc_server_free(J.srv);
    event_base_free(J.base);
    rmdir(tmpdir);
}

/* A one-vertex task: source (with its params) -> sink, in slot `slot`. */
static void deploy(const char *exec, int slot, Flint__Graph__OperatorDef *src, Flint__Graph__OperatorDef *sink) {
    Flint__Rpc__TaskDeploymentDescriptor d = FLINT__RPC__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    d.job_id = JOB;
    d.job_name = "test";
    d.execution_id = (char *)exec;
    d.slot_index = slot;
    d.artifact_sha256 = "";
    d.max_parallelism = 128;
    d.buffer_timeout_ms = 10;
    Flint__Graph__JobVertex v = FLINT__GRAPH__JOB_VERTEX__INIT;
    v.name = "vertex";
    v.parallelism = 1;
    Flint__Graph__OperatorDef *ops[2] = {src, sink};
    src->chained_outputs = xcalloc(1, sizeof(int32_t));
    src->n_chained_outputs = 1;
    src->chained_outputs[0] = 1;
    v.operators = ops;
    v.n_operators = 2;
    d.vertex = &v;
    Flint__Rpc__DeployTask m = FLINT__RPC__DEPLOY_TASK__INIT;
    m.tdd = &d;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_DEPLOY_TASK;
    env.deploy_task = &m;
    ck_assert_int_eq(rpc_call(J.tm, &env, 5000, on_reply, NULL), 0);
    flint__graph__operator_def__free_unpacked(src, NULL);
    flint__graph__operator_def__free_unpacked(sink, NULL);
}

static void send_simple(rpc_envelope *env) { ck_assert_int_eq(rpc_call(J.tm, env, 5000, on_reply, NULL), 0); }

static void cancel(const char *exec) {
    Flint__Rpc__CancelTask m = FLINT__RPC__CANCEL_TASK__INIT;
    m.execution_id = (char *)exec;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_CANCEL_TASK;
    env.cancel_task = &m;
    send_simple(&env);
}

static void release(void) {
    Flint__Rpc__ReleaseJob m = FLINT__RPC__RELEASE_JOB__INIT;
    m.job_id = JOB;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_RELEASE_JOB;
    env.release_job = &m;
    send_simple(&env);
}

static Flint__Graph__OperatorDef *sequence(const char *to) {
    return mkop("source.sequence", "", "value BIGINT", "from", "1", "to", to, NULL);
}

static Flint__Graph__OperatorDef *datagen(void) {
    return mkop("source.datagen", "", "id BIGINT", "count", "-1", NULL);
}

static bool finished_a(void) { return count_log("a:FINISHED") == 1; }
static int hb_mark;
static bool fresh_heartbeat(void) { return J.heartbeats > hb_mark + 1; }

START_TEST(deploy_runs_to_finished_and_release_frees_the_slot) {
    deploy("a", 1, sequence("1000"), mkop("sink.blackhole", "value BIGINT", "", NULL));
    ck_assert(run_until(finished_a));
    ck_assert_int_eq(J.errors, 0);
    ck_assert_int_ge(J.replies, 1);
    ck_assert_str_eq(J.log[0], "a:DEPLOYING");
    ck_assert_str_eq(J.log[1], "a:INITIALIZING");
    ck_assert_str_eq(J.log[2], "a:RUNNING");
    ck_assert_str_eq(J.log[3], "a:FINISHED");
    /* The slot stays the job's until ReleaseJob. */
    hb_mark = J.heartbeats;
    ck_assert(run_until(fresh_heartbeat));
    ck_assert_int_eq(J.nslots, 2);
    ck_assert_str_eq(J.slot_jobs[0], "");
    ck_assert_str_eq(J.slot_jobs[1], JOB);
    ck_assert_int_eq(tm_deploy_task_count(&TM), 0);
    release();
    hb_mark = J.heartbeats;
    ck_assert(run_until(fresh_heartbeat));
    ck_assert_str_eq(J.slot_jobs[1], "");
}
END_TEST

static bool a_running(void) { return count_log("a:RUNNING") == 1; }
static bool a_canceled(void) { return count_log("a:CANCELED") == 1; }
static bool hb_has_task(void) { return J.hb_tasks == 1 && J.heartbeats > hb_mark; }

START_TEST(cancel_an_unbounded_task) {
    deploy("a", 0, datagen(), mkop("sink.blackhole", "id BIGINT", "", NULL));
    ck_assert(run_until(a_running));
    hb_mark = J.heartbeats;
    ck_assert(run_until(hb_has_task));
    cancel("a");
    cancel("no-such-execution"); /* acknowledged: nothing to do */
    ck_assert(run_until(a_canceled));
    ck_assert_int_eq(count_log("a:CANCELING"), 1);
    ck_assert_int_eq(J.errors, 0);
    ck_assert_int_eq(tm_deploy_task_count(&TM), 0);
}
END_TEST

static bool b_failed(void) { return count_log("b:FAILED") == 1; }

START_TEST(missing_user_function_fails_the_deployment) {
    Flint__Graph__OperatorDef *m = mkop("sink.fn", "value BIGINT", "", "fn", "my_sink", NULL);
    deploy("b", 0, sequence("10"), m);
    ck_assert(run_until(b_failed));
    ck_assert_int_eq(count_log("b:FAILED:user function 'my_sink' not found: the job has no artifact"), 1);
    ck_assert_int_eq(count_log("b:INITIALIZING"), 0); /* it never started */
}
END_TEST

static bool one_reply(void) { return J.replies >= 1; }
static bool two_replies(void) { return J.replies >= 2; }
static bool three_replies(void) { return J.replies >= 3; }

START_TEST(refused_deployments) {
    deploy("c", 5, sequence("10"), mkop("sink.blackhole", "value BIGINT", "", NULL));
    ck_assert(run_until(one_reply));
    ck_assert_int_eq(J.errors, 1);
    ck_assert_ptr_nonnull(strstr(J.last_error, "slot 5 out of range"));
    /* A slot held by another job. */
    deploy("d", 0, datagen(), mkop("sink.blackhole", "id BIGINT", "", NULL));
    ck_assert(run_until(two_replies));
    ck_assert_int_eq(J.errors, 1);
    Flint__Graph__OperatorDef *src = sequence("10"), *sink = mkop("sink.blackhole", "value BIGINT", "", NULL);
    Flint__Rpc__TaskDeploymentDescriptor d = FLINT__RPC__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    d.job_id = "ffffffffffffffffffffffffffffffff";
    d.execution_id = "e";
    d.slot_index = 0;
    d.artifact_sha256 = "";
    Flint__Graph__JobVertex v = FLINT__GRAPH__JOB_VERTEX__INIT;
    v.name = "other";
    v.parallelism = 1;
    Flint__Graph__OperatorDef *ops[2] = {src, sink};
    v.operators = ops;
    v.n_operators = 2;
    d.vertex = &v;
    Flint__Rpc__DeployTask m = FLINT__RPC__DEPLOY_TASK__INIT;
    m.tdd = &d;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_DEPLOY_TASK;
    env.deploy_task = &m;
    ck_assert_int_eq(rpc_call(J.tm, &env, 5000, on_reply, NULL), 0);
    ck_assert(run_until(three_replies));
    ck_assert_int_eq(J.errors, 2);
    ck_assert_ptr_nonnull(strstr(J.last_error, "slot 0 is held by job " JOB));
    flint__graph__operator_def__free_unpacked(src, NULL);
    flint__graph__operator_def__free_unpacked(sink, NULL);
}
END_TEST

static bool no_tasks(void) { return tm_deploy_task_count(&TM) == 0; }
static bool d_running(void) { return count_log("d:RUNNING") == 1; }

START_TEST(losing_the_jobmanager_cancels_everything) {
    deploy("d", 0, datagen(), mkop("sink.blackhole", "id BIGINT", "", NULL));
    deploy("e", 1, datagen(), mkop("sink.blackhole", "id BIGINT", "", NULL));
    ck_assert(run_until(d_running));
    rpc_close(J.tm); /* as if the jobmanager died */
    J.tm = NULL;
    ck_assert(run_until(no_tasks));
    for (int i = 0; i < TM.num_slots; i++) ck_assert_str_eq(TM.slots[i].job_id, "");
    /* It registers again, with free slots. */
    J.heartbeats = 0;
    ck_assert(run_until(registered));
    hb_mark = 0;
    ck_assert(run_until(fresh_heartbeat));
    ck_assert_str_eq(J.slot_jobs[0], "");
    ck_assert_int_eq(J.hb_tasks, 0);
}
END_TEST

START_TEST(stop_with_running_tasks) {
    deploy("d", 0, datagen(), mkop("sink.blackhole", "id BIGINT", "", NULL));
    ck_assert(run_until(d_running));
    /* teardown stops the taskmanager with the task still running */
}
END_TEST

Suite *tm_executor_suite(void) {
    Suite *s = suite_create("tm_executor");
    TCase *tc = tcase_create("jobs");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, deploy_runs_to_finished_and_release_frees_the_slot);
    tcase_add_test(tc, cancel_an_unbounded_task);
    tcase_add_test(tc, missing_user_function_fails_the_deployment);
    tcase_add_test(tc, refused_deployments);
    tcase_add_test(tc, losing_the_jobmanager_cancels_everything);
    tcase_add_test(tc, stop_with_running_tasks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    evthread_use_pthreads();
    SRunner *sr = srunner_create(tm_executor_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Unit tests of slot allocation and the scheduler: the resource manager's slot table (round robin
 * spread, all-or-nothing, release), slot sharing (a job of max parallelism 4 fits 2x2 slots, 5
 * does not), waiting for slots and the slot request timeout, deployment through a recording
 * transport, release of a finished job, and failed sends. No sockets: the transport is fake. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_jm_helpers.h"
#include "jm_job.h"
#include "jm_rm.h"
#include "jm_scheduler.h"
#include "util/log.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH

/* ---- recording transport ---- */

typedef struct sent {
    char kind;                    /* 'D'eploy, 'C'ancel, 'R'elease */
    char tm[128];
    char id[80];                  /* execution id or job id */
    int subtask, slot;
} sent;

typedef struct fake {
    sent msgs[128];
    int n;
    int fail_deploy_at;           /* the n-th deploy (1-based) fails to send; 0 never */
    int deploys;
} fake;

static int f_deploy(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex,
                    Flint__Rpc__TaskDeploymentDescriptor *tdd, flint_err *err) {
    fake *f = ud;
    (void)job;
    ck_assert_str_eq(tdd->execution_id, ex->id);
    ck_assert_str_eq(tm->resource_id, ex->loc.resource_id);
    ck_assert_int_eq(ex->state, JM_EXEC_DEPLOYING);
    if (++f->deploys == f->fail_deploy_at)
        return flint_err_set(err, FLINT_CLOSED, "Could not send the task to TaskManager %s", tm->resource_id);
    sent *m = &f->msgs[f->n++];
    m->kind = 'D';
    snprintf(m->tm, sizeof m->tm, "%s", tm->resource_id);
    snprintf(m->id, sizeof m->id, "%s", ex->id);
    m->subtask = tdd->subtask_index;
    m->slot = tdd->slot_index;
    return 0;
}

static int f_cancel(void *ud, jm_tm *tm, const jm_job *job, const jm_exec *ex) {
    fake *f = ud;
    (void)job;
    sent *m = &f->msgs[f->n++];
    m->kind = 'C';
    snprintf(m->tm, sizeof m->tm, "%s", tm->resource_id);
    snprintf(m->id, sizeof m->id, "%s", ex->id);
    return 0;
}

static void f_release(void *ud, jm_tm *tm, const char *job_id) {
    fake *f = ud;
    sent *m = &f->msgs[f->n++];
    m->kind = 'R';
    snprintf(m->tm, sizeof m->tm, "%s", tm->resource_id);
    snprintf(m->id, sizeof m->id, "%s", job_id);
}

static int count_kind(const fake *f, char kind) {
    int n = 0;
    for (int i = 0; i < f->n; i++) n += f->msgs[i].kind == kind;
    return n;
}

/* The job ops wire the job to the scheduler, as the dispatcher does. */
static int op_cancel(void *ud, jm_job *job, jm_exec *ex) { return jm_sched_cancel_task(ud, job, ex); }
static void op_terminal(void *ud, jm_job *job, jm_time now) { jm_sched_job_terminal(ud, job, now); }
static const jm_job_ops ops = {.cancel_task = op_cancel, .terminal = op_terminal};

static jm_job *new_job(const char *id, int nv, const int *par, const char *const *groups, int ne,
                       const test_edge *edges, jm_sched *s) {
    jm_job *job = jm_job_new(test_graph(id, nv, par, groups, ne, edges), 128, test_time(0));
    jm_job_set_ops(job, &ops, s, 1000);
    return job;
}

static void finish_all(jm_job *job, int64_t t) {
    for (int i = 0; i < job->n_vertices; i++)
        for (int k = 0; k < job->vertices[i].parallelism; k++)
            ck_assert_int_eq(jm_job_update_task(job, job->vertices[i].execs[k].id, "FINISHED", NULL,
                                                test_time(t), NULL), 0);
}

/* ---- the slot table ---- */

START_TEST(allocation_spreads_round_robin) {
    jm_rm *rm = jm_rm_new(1000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(rm, "tm-b", "10.0.0.2", 5000, 2, 2);
    jm_slot_ref refs[5];
    ck_assert_int_eq(jm_rm_allocate(rm, TEST_JOB_ID, 5, refs), FLINT_UNAVAILABLE);
    ck_assert_int_eq(jm_rm_slots_free(rm), 4);
    ck_assert_int_eq(jm_rm_allocate(rm, TEST_JOB_ID, 4, refs), 0);
    ck_assert_str_eq(refs[0].tm->resource_id, "tm-a");
    ck_assert_int_eq(refs[0].index, 0);
    ck_assert_str_eq(refs[1].tm->resource_id, "tm-b");
    ck_assert_int_eq(refs[1].index, 0);
    ck_assert_str_eq(refs[2].tm->resource_id, "tm-a");
    ck_assert_int_eq(refs[2].index, 1);
    ck_assert_str_eq(refs[3].tm->resource_id, "tm-b");
    ck_assert_int_eq(refs[3].index, 1);
    ck_assert_int_eq(jm_rm_slots_free(rm), 0);
    ck_assert_int_eq(jm_rm_find(rm, "tm-a")->free_slots, 0);
    ck_assert_str_eq(jm_rm_find(rm, "tm-b")->slot_job[1], TEST_JOB_ID);
    ck_assert_int_eq(jm_rm_job_slots(rm, TEST_JOB_ID), 4);
    ck_assert_int_eq(jm_rm_allocate(rm, "ffffffffffffffffffffffffffffffff", 1, refs), FLINT_UNAVAILABLE);
    ck_assert_int_eq(jm_rm_release_job(rm, TEST_JOB_ID), 4);
    ck_assert_int_eq(jm_rm_slots_free(rm), 4);
    ck_assert_int_eq(jm_rm_job_slots(rm, TEST_JOB_ID), 0);

    /* successive one-slot jobs spread too */
    ck_assert_int_eq(jm_rm_allocate(rm, "11111111111111111111111111111111", 1, refs), 0);
    ck_assert_int_eq(jm_rm_allocate(rm, "22222222222222222222222222222222", 1, refs + 1), 0);
    ck_assert_ptr_ne(refs[0].tm, refs[1].tm);
    jm_rm_free(rm);
}
END_TEST

START_TEST(lost_taskmanagers_are_not_allocated_from) {
    jm_rm *rm = jm_rm_new(1000);
    jm_tm *a = test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(rm, "tm-b", "10.0.0.2", 5000, 1, 2);
    a->lost = true;
    jm_slot_ref refs[2];
    ck_assert_int_eq(jm_rm_allocate(rm, TEST_JOB_ID, 2, refs), FLINT_UNAVAILABLE);
    ck_assert_int_eq(jm_rm_allocate(rm, TEST_JOB_ID, 1, refs), 0);
    ck_assert_str_eq(refs[0].tm->resource_id, "tm-b");
    jm_rm_free(rm);
}
END_TEST

/* ---- scheduling ---- */

START_TEST(max_parallelism_4_fits_2x2_with_slot_sharing) {
    jm_rm *rm = jm_rm_new(1000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(rm, "tm-b", "10.0.0.2", 5000, 2, 2);
    fake f = {0};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &f};
    jm_sched *s = jm_sched_new(rm, 5000, &t);
    int par[] = {4, 2, 4};
    test_edge edges[] = {{0, 1, HASH}, {1, 2, HASH}};
    jm_job *job = new_job(TEST_JOB_ID, 3, par, NULL, 2, edges, s);
    jm_sched_schedule(s, job, test_time(1));
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    ck_assert_int_eq(jm_sched_waiting(s), 0);
    ck_assert_int_eq(count_kind(&f, 'D'), 10);
    ck_assert_int_eq(jm_rm_slots_free(rm), 0);
    /* subtask i of every vertex shares job slot i; slots alternate over the taskmanagers */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < par[i]; k++) {
            const jm_exec *ex = &job->vertices[i].execs[k];
            ck_assert_int_eq(ex->state, JM_EXEC_DEPLOYING);
            ck_assert_str_eq(ex->loc.resource_id, k % 2 == 0 ? "tm-a" : "tm-b");
            ck_assert_int_eq(ex->loc.slot_index, k / 2);
            ck_assert_str_eq(ex->loc.host, k % 2 == 0 ? "10.0.0.1" : "10.0.0.2");
            ck_assert_int_eq(ex->loc.data_port, k % 2 == 0 ? 4000 : 5000);
        }
    /* it finishes: ReleaseJob to both taskmanagers, slots free again */
    finish_all(job, 5);
    ck_assert_int_eq(job->state, JM_JOB_FINISHED);
    ck_assert_int_eq(count_kind(&f, 'R'), 2);
    ck_assert_str_eq(f.msgs[f.n - 1].id, TEST_JOB_ID);
    ck_assert_int_eq(jm_rm_slots_free(rm), 4);
    jm_job_free(job);
    jm_sched_free(s);
    jm_rm_free(rm);
}
END_TEST

START_TEST(max_parallelism_5_waits_then_fails) {
    jm_rm *rm = jm_rm_new(1000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(rm, "tm-b", "10.0.0.2", 5000, 2, 2);
    fake f = {0};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &f};
    jm_sched *s = jm_sched_new(rm, 5000, &t);
    int par[] = {5, 1};
    test_edge e = {0, 1, HASH};
    jm_job *job = new_job(TEST_JOB_ID, 2, par, NULL, 1, &e, s);
    jm_sched_schedule(s, job, test_time(10));
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);   /* RUNNING from scheduling on, as Flink */
    ck_assert_int_eq(job->vertices[0].execs[4].state, JM_EXEC_SCHEDULED);
    ck_assert_int_eq(jm_sched_waiting(s), 1);
    ck_assert_int_eq(f.n, 0);
    ck_assert_int_eq(jm_rm_slots_free(rm), 4);   /* nothing taken while waiting */
    jm_sched_tick(s, test_time(5009));
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    jm_sched_tick(s, test_time(5010));
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_int_eq(jm_sched_waiting(s), 0);
    ck_assert_str_eq(job->exceptions[job->root_exception].message,
                     "Could not acquire the minimum required resources: the job needs 5 slots, the "
                     "cluster has 4 (4 free)");
    ck_assert_str_eq(job->exceptions[job->root_exception].name, "flint.NoResourceAvailableException");
    ck_assert_int_eq(job->vertices[0].execs[0].state, JM_EXEC_CANCELED);
    ck_assert_int_eq(f.n, 0);
    jm_job_free(job);
    jm_sched_free(s);
    jm_rm_free(rm);
}
END_TEST

START_TEST(waiting_job_deploys_when_slots_appear) {
    jm_rm *rm = jm_rm_new(1000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    fake f = {0};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &f};
    jm_sched *s = jm_sched_new(rm, 5000, &t);
    int par2[] = {2}, par3[] = {3};
    jm_job *first = new_job("11111111111111111111111111111111", 1, par2, NULL, 0, NULL, s);
    jm_job *second = new_job("22222222222222222222222222222222", 1, par3, NULL, 0, NULL, s);
    jm_sched_schedule(s, first, test_time(1));
    ck_assert_int_eq(count_kind(&f, 'D'), 2);
    jm_sched_schedule(s, second, test_time(2));
    ck_assert_int_eq(jm_sched_waiting(s), 1);
    /* a taskmanager with 1 slot: still not enough (needs 3, 1 free) */
    test_register(rm, "tm-b", "10.0.0.2", 5000, 1, 2);
    jm_sched_retry(s, test_time(3));
    ck_assert_int_eq(jm_sched_waiting(s), 1);
    /* the first job finishes: its 2 slots are freed and the second deploys at once */
    finish_all(first, 4);
    ck_assert_int_eq(first->state, JM_JOB_FINISHED);
    ck_assert_int_eq(jm_sched_waiting(s), 0);
    ck_assert_int_eq(count_kind(&f, 'D'), 5);
    ck_assert_int_eq(second->vertices[0].execs[2].state, JM_EXEC_DEPLOYING);
    ck_assert_int_eq(jm_rm_slots_free(rm), 0);
    /* cancel it: CancelTask to all three, then canceled, then released */
    ck_assert_int_eq(jm_job_cancel(second, test_time(5), NULL), 0);
    ck_assert_int_eq(count_kind(&f, 'C'), 3);
    for (int k = 0; k < 3; k++)
        jm_job_update_task(second, second->vertices[0].execs[k].id, "CANCELED", NULL, test_time(6), NULL);
    ck_assert_int_eq(second->state, JM_JOB_CANCELED);
    ck_assert_int_eq(jm_rm_slots_free(rm), 3);
    jm_job_free(first);
    jm_job_free(second);
    jm_sched_free(s);
    jm_rm_free(rm);
}
END_TEST

START_TEST(cancel_while_waiting_forgets_the_request) {
    jm_rm *rm = jm_rm_new(1000);
    fake f = {0};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &f};
    jm_sched *s = jm_sched_new(rm, 5000, &t);
    int par[] = {1};
    jm_job *job = new_job(TEST_JOB_ID, 1, par, NULL, 0, NULL, s);
    jm_sched_schedule(s, job, test_time(1));
    ck_assert_int_eq(jm_sched_waiting(s), 1);
    ck_assert_int_eq(jm_job_cancel(job, test_time(2), NULL), 0);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    ck_assert_int_eq(jm_sched_waiting(s), 0);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    jm_sched_retry(s, test_time(3));
    ck_assert_int_eq(f.n, 0);
    jm_job_free(job);
    jm_sched_free(s);
    jm_rm_free(rm);
}
END_TEST

START_TEST(failed_send_fails_the_job) {
    jm_rm *rm = jm_rm_new(1000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 4, 1);
    fake f = {.fail_deploy_at = 2};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &f};
    jm_sched *s = jm_sched_new(rm, 5000, &t);
    int par[] = {4};
    jm_job *job = new_job(TEST_JOB_ID, 1, par, NULL, 0, NULL, s);
    jm_sched_schedule(s, job, test_time(1));
    /* subtask 0 deployed, subtask 1 could not be sent: FAILING, subtask 0 canceled, 2 and 3
     * never deployed */
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    ck_assert_int_eq(count_kind(&f, 'D'), 1);
    ck_assert_int_eq(count_kind(&f, 'C'), 1);
    ck_assert_int_eq(job->vertices[0].execs[1].state, JM_EXEC_FAILED);
    ck_assert_int_eq(job->vertices[0].execs[2].state, JM_EXEC_CANCELED);
    ck_assert_ptr_nonnull(strstr(job->exceptions[job->root_exception].message,
                                 "V0 (2/4) on 10.0.0.1:4000: Could not send the task"));
    jm_job_update_task(job, job->vertices[0].execs[0].id, "CANCELED", NULL, test_time(2), NULL);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_int_eq(count_kind(&f, 'R'), 1);
    ck_assert_int_eq(jm_rm_slots_free(rm), 4);
    jm_job_free(job);
    jm_sched_free(s);
    jm_rm_free(rm);
}
END_TEST

START_TEST(two_groups_need_their_sum) {
    jm_rm *rm = jm_rm_new(1000);
    test_register(rm, "tm-a", "10.0.0.1", 4000, 2, 1);
    test_register(rm, "tm-b", "10.0.0.2", 5000, 2, 2);
    fake f = {0};
    jm_sched_transport t = {f_deploy, f_cancel, f_release, &f};
    jm_sched *s = jm_sched_new(rm, 5000, &t);
    int par[] = {2, 3};
    const char *groups[] = {"default", "other"};
    test_edge e = {0, 1, HASH};
    jm_job *job = new_job(TEST_JOB_ID, 2, par, groups, 1, &e, s);
    jm_sched_schedule(s, job, test_time(1));
    ck_assert_int_eq(job->slots_needed, 5);
    ck_assert_int_eq(jm_sched_waiting(s), 1);
    jm_job_free(job);
    jm_sched_free(s);
    jm_rm_free(rm);
}
END_TEST

int main(void) {
    log_set_level(LOG_ERROR);
    Suite *su = suite_create("jm_sched");
    TCase *tc = tcase_create("slots");
    tcase_add_test(tc, allocation_spreads_round_robin);
    tcase_add_test(tc, lost_taskmanagers_are_not_allocated_from);
    suite_add_tcase(su, tc);
    tc = tcase_create("scheduling");
    tcase_add_test(tc, max_parallelism_4_fits_2x2_with_slot_sharing);
    tcase_add_test(tc, max_parallelism_5_waits_then_fails);
    tcase_add_test(tc, waiting_job_deploys_when_slots_appear);
    tcase_add_test(tc, cancel_while_waiting_forgets_the_request);
    tcase_add_test(tc, failed_send_fails_the_job);
    tcase_add_test(tc, two_groups_need_their_sum);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

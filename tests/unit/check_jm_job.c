/* Unit tests of the job master (jm_job) and the deployment descriptors: graph validation,
 * execution graph expansion (partitions, gates, channels, partition ids, slot sharing), the job
 * state machine (finish, failure with root cause, cancel, lost taskmanager, cancel timeouts),
 * vertex status aggregation and backpressure levels. Driven with explicit times, no sockets. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_jm_helpers.h"
#include "jm_job.h"
#include "jm_scheduler.h"
#include "util/log.h"

#define FWD FLINT__GRAPH__PARTITIONER__FORWARD
#define HASH FLINT__GRAPH__PARTITIONER__HASH
#define REB FLINT__GRAPH__PARTITIONER__REBALANCE

/* ---- fake ops: record cancels and terminal calls ---- */

typedef struct recorder {
    char cancels[64][33];
    int n_cancels;
    int terminal_calls;
    int fail_cancel;              /* cancel_task returns this */
} recorder;

static int rec_cancel(void *ud, jm_job *job, jm_exec *ex) {
    recorder *r = ud;
    (void)job;
    ck_assert_int_eq(ex->state, JM_EXEC_CANCELING);
    if (r->n_cancels < 64) snprintf(r->cancels[r->n_cancels++], 33, "%s", ex->id);
    return r->fail_cancel;
}

static void rec_terminal(void *ud, jm_job *job, jm_time now) {
    recorder *r = ud;
    (void)now;
    ck_assert(jm_job_is_terminal(job));
    r->terminal_calls++;
}

static const jm_job_ops rec_ops = {.cancel_task = rec_cancel, .terminal = rec_terminal};

/* A job from vertices/edges, started, with every job slot i on tm-a (even i) or tm-b (odd i),
 * slot index i / 2, and every subtask deploying. */
static jm_job *running_job(int nv, const int *par, int ne, const test_edge *edges, recorder *r) {
    jm_job *job = jm_job_new(test_graph(TEST_JOB_ID, nv, par, NULL, ne, edges), 128, test_time(0));
    jm_job_set_ops(job, &rec_ops, r, 1000);
    jm_job_start(job, test_time(1));
    for (int k = 0; k < job->slots_needed; k++) {
        jm_location loc = k % 2 == 0 ? test_loc("tm-a", "10.0.0.1", 4000, k / 2)
                                     : test_loc("tm-b", "10.0.0.2", 5000, k / 2);
        jm_job_assign_slot(job, k, &loc);
    }
    for (int i = 0; i < job->n_vertices; i++)
        for (int s = 0; s < job->vertices[i].parallelism; s++)
            jm_job_deploying(job, &job->vertices[i].execs[s], test_time(2));
    return job;
}

static void report(jm_job *job, int v, int s, const char *state, const char *error, int64_t t) {
    flint_err err = {0};
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[v].execs[s].id, state, error, test_time(t), &err), 0);
}

static void report_all(jm_job *job, const char *state, int64_t t) {
    for (int i = 0; i < job->n_vertices; i++)
        for (int s = 0; s < job->vertices[i].parallelism; s++) report(job, i, s, state, NULL, t);
}

/* ---- validation ---- */

static int validate(Flint__Graph__JobGraph *g, flint_err *err) {
    int rc = jm_job_validate(g, 128, err);
    flint__graph__job_graph__free_unpacked(g, NULL);
    return rc;
}

START_TEST(validation_names_the_problem) {
    flint_err err = {0};
    int p2[] = {2, 2}, p24[] = {2, 4}, p0[] = {0, 1}, pbig[] = {200, 1};
    test_edge fwd = {0, 1, FWD}, hash = {0, 1, HASH};
    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 2, p2, NULL, 1, &fwd), &err), 0);
    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 2, p24, NULL, 1, &hash), &err), 0);

    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 2, p24, NULL, 1, &fwd), &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "Forward edge 10"));
    ck_assert_ptr_nonnull(strstr(err.msg, "equal parallelism"));

    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 0, p2, NULL, 0, NULL), &err), FLINT_INVALID);
    ck_assert_str_eq(err.msg, "The job graph has no vertices");

    ck_assert_int_eq(validate(test_graph("xyz", 2, p2, NULL, 0, NULL), &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "job id 'xyz'"));
    ck_assert_int_eq(validate(test_graph("0123456789ABCDEF0123456789ABCDEF", 2, p2, NULL, 0, NULL), &err),
                     FLINT_INVALID);

    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 2, p0, NULL, 0, NULL), &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "'V0' (id 1) has parallelism 0"));
    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 2, pbig, NULL, 0, NULL), &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "parallelism 200; expected 1..128"));

    Flint__Graph__JobGraph *g = test_graph(TEST_JOB_ID, 2, p2, NULL, 1, &fwd);
    g->edges[0]->target_vertex = 9;
    ck_assert_int_eq(validate(g, &err), FLINT_INVALID);
    ck_assert_str_eq(err.msg, "Edge 10 goes to vertex 9, which does not exist");

    g = test_graph(TEST_JOB_ID, 2, p24, NULL, 1, &hash);
    g->edges[0]->n_key_fields = 0;
    ck_assert_int_eq(validate(g, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "has no key"));

    test_edge cyc[] = {{0, 1, HASH}, {1, 0, HASH}};
    ck_assert_int_eq(validate(test_graph(TEST_JOB_ID, 2, p2, NULL, 2, cyc), &err), FLINT_INVALID);
    ck_assert_str_eq(err.msg, "The job graph has a cycle");

    g = test_graph(TEST_JOB_ID, 2, p2, NULL, 0, NULL);
    g->vertices[1]->id = 1;
    ck_assert_int_eq(validate(g, &err), FLINT_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "Two vertices"));

    g = test_graph(TEST_JOB_ID, 2, p2, NULL, 0, NULL);
    char *saved = g->artifact_sha256;
    g->artifact_sha256 = "abc";
    ck_assert_int_eq(jm_job_validate(g, 128, &err), FLINT_INVALID);
    g->artifact_sha256 = saved;   /* the unpacked message must not free our literal */
    flint__graph__job_graph__free_unpacked(g, NULL);
    ck_assert_ptr_nonnull(strstr(err.msg, "artifact_sha256"));

    ck_assert_int_eq(jm_job_validate(NULL, 128, &err), FLINT_INVALID);
}
END_TEST

/* ---- execution graph expansion ---- */

static int is_hex32(const char *s) {
    if (strlen(s) != 32) return 0;
    for (int i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", s[i])) return 0;
    return 1;
}

START_TEST(expansion_partitions_gates_channels) {
    /* A(2) -FORWARD-> B(2) -HASH-> C(3) -REBALANCE-> D(2) */
    int par[] = {2, 2, 3, 2};
    test_edge edges[] = {{0, 1, FWD}, {1, 2, HASH}, {2, 3, REB}};
    recorder r = {0};
    jm_job *job = running_job(4, par, 3, edges, &r);
    ck_assert_int_eq(job->n_execs, 9);
    ck_assert_int_eq(job->n_groups, 1);
    ck_assert_int_eq(job->slots_needed, 3);
    ck_assert_str_eq(job->vertices[0].id, "0123456789abcdef0123456700000001");
    ck_assert_ptr_eq(jm_job_find_vertex(job, "0123456789ABCDEF0123456700000003"), &job->vertices[2]);
    ck_assert_ptr_eq(jm_job_find_vertex(job, "4"), &job->vertices[3]);
    ck_assert_ptr_null(jm_job_find_vertex(job, "5"));
    ck_assert_ptr_null(jm_job_find_vertex(job, "x"));

    /* execution ids: 32 hex, all different */
    for (int i = 0; i < 4; i++)
        for (int s = 0; s < par[i]; s++) {
            const jm_exec *ex = &job->vertices[i].execs[s];
            ck_assert(is_hex32(ex->id));
            ck_assert_int_eq(ex->job_slot, s);
            ck_assert_ptr_eq(jm_job_find_exec(job, ex->id), ex);
            for (int j = 0; j < 4; j++)
                for (int t = 0; t < par[j]; t++)
                    if (i != j || s != t) ck_assert_str_ne(ex->id, job->vertices[j].execs[t].id);
        }

    /* A subtask 1: one partition for edge 10 with one subpartition, no gates; slot 1 on tm-b */
    Flint__Rpc__TaskDeploymentDescriptor *tdd = jm_tdd_build(job, &job->vertices[0].execs[1]);
    ck_assert_str_eq(tdd->job_id, TEST_JOB_ID);
    ck_assert_str_eq(tdd->job_name, "Test Job");
    ck_assert_str_eq(tdd->execution_id, job->vertices[0].execs[1].id);
    ck_assert_int_eq(tdd->subtask_index, 1);
    ck_assert_int_eq(tdd->attempt, 0);
    ck_assert_int_eq(tdd->slot_index, 0);
    ck_assert_int_eq(tdd->vertex->id, 1);
    ck_assert_int_eq(tdd->max_parallelism, 128);
    ck_assert_int_eq(tdd->buffer_timeout_ms, 100);
    ck_assert_int_eq(tdd->n_in_edges, 0);
    ck_assert_int_eq(tdd->n_out_edges, 1);
    ck_assert_int_eq(tdd->n_gates, 0);
    ck_assert_int_eq(tdd->n_partitions, 1);
    ck_assert_int_eq(tdd->partitions[0]->edge_id, 10);
    ck_assert_str_eq(tdd->partitions[0]->partition_id, TEST_JOB_ID ".10.1.0");
    ck_assert_int_eq(tdd->partitions[0]->num_subpartitions, 1);
    jm_tdd_free(tdd);

    /* B subtask 1: forward gate with one channel from A subtask 1, subpartition 0, on tm-b;
     * HASH partition with 3 subpartitions */
    tdd = jm_tdd_build(job, &job->vertices[1].execs[1]);
    ck_assert_int_eq(tdd->n_gates, 1);
    ck_assert_int_eq(tdd->gates[0]->edge_id, 10);
    ck_assert_int_eq(tdd->gates[0]->input_index, 0);
    ck_assert_int_eq(tdd->gates[0]->n_channels, 1);
    ck_assert_str_eq(tdd->gates[0]->channels[0]->partition_id, TEST_JOB_ID ".10.1.0");
    ck_assert_int_eq(tdd->gates[0]->channels[0]->subpartition, 0);
    ck_assert_str_eq(tdd->gates[0]->channels[0]->producer_resource_id, "tm-b");
    ck_assert_str_eq(tdd->gates[0]->channels[0]->host, "10.0.0.2");
    ck_assert_int_eq(tdd->gates[0]->channels[0]->data_port, 5000);
    ck_assert_int_eq(tdd->n_partitions, 1);
    ck_assert_str_eq(tdd->partitions[0]->partition_id, TEST_JOB_ID ".11.1.0");
    ck_assert_int_eq(tdd->partitions[0]->num_subpartitions, 3);
    ck_assert_int_eq(tdd->n_in_edges, 1);
    ck_assert_int_eq(tdd->in_edges[0]->id, 10);
    ck_assert_int_eq(tdd->out_edges[0]->id, 11);
    jm_tdd_free(tdd);

    /* C subtask 2 (slot 2 on tm-a): HASH gate with a channel per B subtask reading subpartition 2;
     * REBALANCE partition with 2 subpartitions */
    tdd = jm_tdd_build(job, &job->vertices[2].execs[2]);
    ck_assert_int_eq(tdd->slot_index, 1);
    ck_assert_int_eq(tdd->gates[0]->n_channels, 2);
    for (int c = 0; c < 2; c++) {
        char want[80];
        snprintf(want, sizeof want, TEST_JOB_ID ".11.%d.0", c);
        ck_assert_str_eq(tdd->gates[0]->channels[c]->partition_id, want);
        ck_assert_int_eq(tdd->gates[0]->channels[c]->subpartition, 2);
    }
    ck_assert_str_eq(tdd->gates[0]->channels[0]->producer_resource_id, "tm-a");
    ck_assert_str_eq(tdd->gates[0]->channels[1]->producer_resource_id, "tm-b");
    ck_assert_int_eq(tdd->partitions[0]->num_subpartitions, 2);
    jm_tdd_free(tdd);

    /* D subtask 0: REBALANCE gate with 3 channels reading subpartition 0; a sink: no partitions */
    tdd = jm_tdd_build(job, &job->vertices[3].execs[0]);
    ck_assert_int_eq(tdd->gates[0]->edge_id, 12);
    ck_assert_int_eq(tdd->gates[0]->n_channels, 3);
    ck_assert_str_eq(tdd->gates[0]->channels[2]->partition_id, TEST_JOB_ID ".12.2.0");
    ck_assert_int_eq(tdd->gates[0]->channels[2]->subpartition, 0);
    ck_assert_int_eq(tdd->n_partitions, 0);
    jm_tdd_free(tdd);
    jm_job_free(job);
}
END_TEST

START_TEST(expansion_orders_gates_by_edge_id) {
    /* A union: C(2) reads A(2) over edge 10 (REBALANCE) and B(1) over edge 11 (input 1) */
    int par[] = {2, 1, 2};
    test_edge edges[] = {{1, 2, REB}, {0, 2, REB}};   /* ids 10: B->C, 11: A->C */
    recorder r = {0};
    jm_job *job = running_job(3, par, 2, edges, &r);
    Flint__Rpc__TaskDeploymentDescriptor *tdd = jm_tdd_build(job, &job->vertices[2].execs[1]);
    ck_assert_int_eq(tdd->n_gates, 2);
    ck_assert_int_eq(tdd->gates[0]->edge_id, 10);
    ck_assert_int_eq(tdd->gates[0]->n_channels, 1);
    ck_assert_int_eq(tdd->gates[1]->edge_id, 11);
    ck_assert_int_eq(tdd->gates[1]->n_channels, 2);
    ck_assert_int_eq(tdd->gates[1]->channels[1]->subpartition, 1);
    jm_tdd_free(tdd);
    jm_job_free(job);
}
END_TEST

START_TEST(slot_sharing_groups_add_up) {
    int par[] = {4, 2, 3};
    const char *groups[] = {"", "default", "heavy"};
    jm_job *job = jm_job_new(test_graph(TEST_JOB_ID, 3, par, groups, 0, NULL), 128, test_time(0));
    ck_assert_int_eq(job->n_groups, 2);
    ck_assert_int_eq(job->slots_needed, 7);   /* max(4, 2) + 3 */
    ck_assert_int_eq(job->vertices[1].execs[1].job_slot, 1);
    ck_assert_int_eq(job->vertices[2].execs[0].job_slot, 4);
    ck_assert_int_eq(job->vertices[2].execs[2].job_slot, 6);
    jm_job_free(job);
}
END_TEST

/* ---- state machine ---- */

START_TEST(all_finished_is_finished) {
    int par[] = {2, 2};
    test_edge e = {0, 1, FWD};
    recorder r = {0};
    jm_job *job = running_job(2, par, 1, &e, &r);
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    ck_assert_int_eq(job->vertices[0].execs[0].state, JM_EXEC_DEPLOYING);
    report_all(job, "INITIALIZING", 3);
    report_all(job, "RUNNING", 4);
    ck_assert_int_eq(job->vertices[1].execs[1].state, JM_EXEC_RUNNING);
    report(job, 0, 0, "INITIALIZING", NULL, 5);   /* never backwards */
    ck_assert_int_eq(job->vertices[0].execs[0].state, JM_EXEC_RUNNING);
    report(job, 0, 0, "FINISHED", NULL, 6);
    report(job, 0, 1, "FINISHED", NULL, 6);
    report(job, 1, 0, "FINISHED", NULL, 7);
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    ck_assert_int_eq(r.terminal_calls, 0);
    report(job, 1, 1, "FINISHED", NULL, 8);
    ck_assert_int_eq(job->state, JM_JOB_FINISHED);
    ck_assert_int_eq(r.terminal_calls, 1);
    ck_assert_int_eq(job->end_time, test_time(8).wall_ms);
    ck_assert_int_eq(job->timestamps[JM_JOB_RUNNING], test_time(1).wall_ms);
    ck_assert_int_eq(job->timestamps[JM_JOB_FINISHED], test_time(8).wall_ms);
    ck_assert_int_eq(job->root_exception, -1);
    /* late updates are ignored */
    report(job, 1, 1, "FAILED", "late", 9);
    ck_assert_int_eq(job->state, JM_JOB_FINISHED);
    ck_assert_int_eq(r.terminal_calls, 1);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_cancel(job, test_time(10), &err), FLINT_STATE);
    ck_assert_str_eq(err.msg, "Job " TEST_JOB_ID " is already FINISHED");
    jm_job_free(job);
}
END_TEST

START_TEST(one_failure_fails_the_job_with_root_cause) {
    int par[] = {2, 2};
    test_edge e = {0, 1, HASH};
    recorder r = {0};
    jm_job *job = running_job(2, par, 1, &e, &r);
    report_all(job, "RUNNING", 3);
    report(job, 0, 0, "FINISHED", NULL, 4);
    report(job, 1, 1, "FAILED", "division by zero", 5);
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    ck_assert_int_eq(job->vertices[1].execs[1].state, JM_EXEC_FAILED);
    ck_assert_str_eq(job->vertices[1].execs[1].failure, "division by zero");
    /* the two unfinished others are being canceled */
    ck_assert_int_eq(r.n_cancels, 2);
    ck_assert_str_eq(r.cancels[0], job->vertices[0].execs[1].id);
    ck_assert_str_eq(r.cancels[1], job->vertices[1].execs[0].id);
    ck_assert_int_eq(job->vertices[0].execs[1].state, JM_EXEC_CANCELING);
    ck_assert_int_eq(job->root_exception, 0);
    ck_assert_str_eq(job->exceptions[0].message, "V1 (2/2) on 10.0.0.2:5000: division by zero");
    ck_assert_str_eq(job->exceptions[0].task, "V1 (2/2)");
    ck_assert_str_eq(job->exceptions[0].location, "10.0.0.2:5000");
    ck_assert_str_eq(job->exceptions[0].resource_id, "tm-b");
    ck_assert_str_eq(job->exceptions[0].name, "flint.TaskException");
    ck_assert_int_eq(job->exceptions[0].timestamp, test_time(5).wall_ms);
    /* a canceled task that reports FAILED or FINISHED counts as CANCELED, not as another failure */
    report(job, 0, 1, "FAILED", "interrupted", 6);
    ck_assert_int_eq(job->vertices[0].execs[1].state, JM_EXEC_CANCELED);
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    report(job, 1, 0, "CANCELED", NULL, 7);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_int_eq(job->n_exceptions, 1);
    ck_assert_int_eq(r.terminal_calls, 1);
    /* vertex statuses */
    int counts[JM_EXEC_STATE_COUNT];
    jm_vertex_state_counts(&job->vertices[0], counts);
    ck_assert_int_eq(jm_vertex_aggregate_state(counts, 2), JM_EXEC_CANCELED);
    jm_vertex_state_counts(&job->vertices[1], counts);
    ck_assert_int_eq(jm_vertex_aggregate_state(counts, 2), JM_EXEC_FAILED);
    jm_job_free(job);
}
END_TEST

START_TEST(cancel_cancels_every_task) {
    int par[] = {2, 1};
    test_edge e = {0, 1, REB};
    recorder r = {0};
    jm_job *job = running_job(2, par, 1, &e, &r);
    report(job, 0, 0, "RUNNING", NULL, 3);
    report(job, 1, 0, "FINISHED", NULL, 3);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_cancel(job, test_time(4), &err), 0);
    ck_assert_int_eq(job->state, JM_JOB_CANCELLING);
    ck_assert_int_eq(r.n_cancels, 2);   /* the finished one is left alone */
    ck_assert_int_eq(jm_job_cancel(job, test_time(5), &err), 0);   /* again: nothing new */
    ck_assert_int_eq(r.n_cancels, 2);
    report(job, 0, 0, "CANCELED", NULL, 6);
    ck_assert_int_eq(job->state, JM_JOB_CANCELLING);
    report(job, 0, 1, "RUNNING", NULL, 6);   /* a late RUNNING does not undo CANCELING */
    ck_assert_int_eq(job->vertices[0].execs[1].state, JM_EXEC_CANCELING);
    report(job, 0, 1, "CANCELED", NULL, 7);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    ck_assert_int_eq(r.terminal_calls, 1);
    ck_assert_int_eq(job->root_exception, -1);
    ck_assert_int_eq(jm_job_cancel(job, test_time(8), &err), FLINT_STATE);
    ck_assert_str_eq(err.msg, "Job " TEST_JOB_ID " is already CANCELED");
    jm_job_free(job);
}
END_TEST

START_TEST(cancel_before_scheduling_and_unreachable_tasks) {
    int par[] = {3};
    recorder r = {0};
    jm_job *job = jm_job_new(test_graph(TEST_JOB_ID, 1, par, NULL, 0, NULL), 128, test_time(0));
    jm_job_set_ops(job, &rec_ops, &r, 1000);
    ck_assert_int_eq(jm_job_cancel(job, test_time(1), NULL), 0);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    ck_assert_int_eq(r.n_cancels, 0);
    ck_assert_int_eq(r.terminal_calls, 1);
    jm_job_free(job);

    /* CancelTask cannot be sent: CANCELED at once */
    recorder r2 = {.fail_cancel = FLINT_UNAVAILABLE};
    job = running_job(1, par, 0, NULL, &r2);
    ck_assert_int_eq(jm_job_cancel(job, test_time(3), NULL), 0);
    ck_assert_int_eq(r2.n_cancels, 3);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    jm_job_free(job);
}
END_TEST

START_TEST(unconfirmed_cancel_times_out) {
    int par[] = {2};
    recorder r = {0};
    jm_job *job = running_job(1, par, 0, NULL, &r);   /* cancel timeout 1000 ms */
    report_all(job, "RUNNING", 3);
    ck_assert_int_eq(jm_job_cancel(job, test_time(100), NULL), 0);
    report(job, 0, 0, "CANCELED", NULL, 200);
    jm_job_tick(job, test_time(1099));
    ck_assert_int_eq(job->state, JM_JOB_CANCELLING);
    jm_job_tick(job, test_time(1100));
    ck_assert_int_eq(job->vertices[0].execs[1].state, JM_EXEC_CANCELED);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    ck_assert_int_eq(r.terminal_calls, 1);
    jm_job_free(job);

    /* a refused CancelTask counts as canceled too */
    recorder r2 = {0};
    job = running_job(1, par, 0, NULL, &r2);
    jm_job_cancel(job, test_time(5), NULL);
    jm_job_cancel_failed(job, &job->vertices[0].execs[0], "no such task", test_time(6));
    jm_job_cancel_failed(job, &job->vertices[0].execs[1], "no such task", test_time(6));
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
    jm_job_free(job);
}
END_TEST

START_TEST(lost_taskmanager_fails_its_tasks) {
    int par[] = {2, 2};
    test_edge e = {0, 1, HASH};
    recorder r = {0};
    jm_job *job = running_job(2, par, 1, &e, &r);   /* subtask 0s on tm-a, 1s on tm-b */
    report_all(job, "RUNNING", 3);
    const char *msg = "TaskManager tm-a at 10.0.0.1 lost: connection closed (reset by peer)";
    ck_assert_int_eq(jm_job_tm_lost(job, "tm-a", msg, test_time(4)), 2);
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    ck_assert_int_eq(job->vertices[0].execs[0].state, JM_EXEC_FAILED);
    ck_assert_int_eq(job->vertices[1].execs[0].state, JM_EXEC_FAILED);
    ck_assert_int_eq(job->n_exceptions, 2);
    ck_assert_int_eq(job->root_exception, 0);
    ck_assert_str_eq(job->exceptions[0].message,
                     "V0 (1/2) on 10.0.0.1:4000: TaskManager tm-a at 10.0.0.1 lost: connection closed "
                     "(reset by peer)");
    ck_assert_str_eq(job->exceptions[0].name, "flint.TaskManagerLostException");
    /* only the tasks on tm-b get a CancelTask */
    ck_assert_int_eq(r.n_cancels, 2);
    ck_assert_str_eq(r.cancels[0], job->vertices[0].execs[1].id);
    ck_assert_str_eq(r.cancels[1], job->vertices[1].execs[1].id);
    /* tm-b going too while canceling: its CANCELING tasks are CANCELED */
    ck_assert_int_eq(jm_job_tm_lost(job, "tm-b", "gone", test_time(5)), 2);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_int_eq(job->n_exceptions, 2);
    ck_assert_int_eq(r.terminal_calls, 1);
    jm_job_free(job);
}
END_TEST

START_TEST(deployment_failure_and_global_failure) {
    int par[] = {2};
    recorder r = {0};
    jm_job *job = running_job(1, par, 0, NULL, &r);
    jm_job_deploy_failed(job, &job->vertices[0].execs[1], "flint.DeploymentException",
                         "symbol 'split' not found in the job artifact", test_time(3));
    ck_assert_int_eq(job->state, JM_JOB_FAILING);
    ck_assert_str_eq(job->exceptions[job->root_exception].message,
                     "V0 (2/2) on 10.0.0.2:5000: symbol 'split' not found in the job artifact");
    report(job, 0, 0, "CANCELED", NULL, 4);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    jm_job_free(job);

    /* no slots: the job fails as a whole, its scheduled tasks are canceled without messages */
    recorder r2 = {0};
    job = jm_job_new(test_graph(TEST_JOB_ID, 1, par, NULL, 0, NULL), 128, test_time(0));
    jm_job_set_ops(job, &rec_ops, &r2, 1000);
    jm_job_start(job, test_time(1));
    jm_job_fail(job, "flint.NoResourceAvailableException", "Could not acquire the minimum required "
                "resources: the job needs 2 slots, the cluster has 1 (1 free)", test_time(2));
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert_int_eq(r2.n_cancels, 0);
    ck_assert_int_eq(r2.terminal_calls, 1);
    ck_assert_int_eq(job->vertices[0].execs[0].state, JM_EXEC_CANCELED);
    ck_assert_ptr_null(job->exceptions[0].task);
    ck_assert_ptr_nonnull(strstr(job->exceptions[0].message, "the job needs 2 slots"));
    ck_assert_int_eq(job->timestamps[JM_JOB_FAILING], test_time(2).wall_ms);
    jm_job_free(job);
}
END_TEST

START_TEST(bad_updates_are_refused) {
    int par[] = {1};
    recorder r = {0};
    jm_job *job = running_job(1, par, 0, NULL, &r);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_update_task(job, "nope", "RUNNING", NULL, test_time(3), &err), FLINT_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "Execution nope of job " TEST_JOB_ID " not found"));
    const char *id = job->vertices[0].execs[0].id;
    ck_assert_int_eq(jm_job_update_task(job, id, "SLEEPING", NULL, test_time(3), &err), FLINT_INVALID);
    ck_assert_int_eq(jm_job_update_task(job, id, "SCHEDULED", NULL, test_time(3), &err), FLINT_INVALID);
    ck_assert_int_eq(jm_job_update_task(job, id, NULL, NULL, test_time(3), &err), FLINT_INVALID);
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);
    /* FAILED without a message still names something */
    ck_assert_int_eq(jm_job_update_task(job, id, "FAILED", "", test_time(4), &err), 0);
    ck_assert_str_eq(job->exceptions[0].message, "V0 (1/1) on 10.0.0.1:4000: unknown error");
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    jm_job_free(job);
}
END_TEST

/* ---- aggregation ---- */

START_TEST(vertex_status_aggregation) {
    int c[JM_EXEC_STATE_COUNT];
#define SET(...) do { memset(c, 0, sizeof c); int kv[] = {__VA_ARGS__}; \
        for (size_t i_ = 0; i_ < sizeof kv / sizeof kv[0]; i_ += 2) c[kv[i_]] = kv[i_ + 1]; } while (0)
    SET(JM_EXEC_CREATED, 4);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_CREATED);
    SET(JM_EXEC_SCHEDULED, 2, JM_EXEC_DEPLOYING, 2);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_CREATED);
    SET(JM_EXEC_DEPLOYING, 2, JM_EXEC_RUNNING, 2);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_RUNNING);
    SET(JM_EXEC_INITIALIZING, 1, JM_EXEC_RUNNING, 3);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_INITIALIZING);
    SET(JM_EXEC_FINISHED, 3, JM_EXEC_DEPLOYING, 1);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_RUNNING);
    SET(JM_EXEC_FINISHED, 4);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_FINISHED);
    SET(JM_EXEC_FINISHED, 3, JM_EXEC_CANCELED, 1);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_CANCELED);
    SET(JM_EXEC_CANCELED, 3, JM_EXEC_CANCELING, 1);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_CANCELING);
    SET(JM_EXEC_CANCELING, 3, JM_EXEC_FAILED, 1);
    ck_assert_int_eq(jm_vertex_aggregate_state(c, 4), JM_EXEC_FAILED);
#undef SET
    ck_assert_str_eq(jm_exec_state_name(JM_EXEC_INITIALIZING), "INITIALIZING");
    ck_assert_str_eq(jm_job_state_name(JM_JOB_CANCELLING), "CANCELLING");
    ck_assert_int_eq(jm_exec_state_parse("CANCELING"), JM_EXEC_CANCELING);
    ck_assert_int_eq(jm_exec_state_parse("running"), -1);
}
END_TEST

START_TEST(backpressure_levels) {
    ck_assert_str_eq(jm_backpressure_level(0.0), "ok");
    ck_assert_str_eq(jm_backpressure_level(0.10), "ok");
    ck_assert_str_eq(jm_backpressure_level(0.101), "low");
    ck_assert_str_eq(jm_backpressure_level(0.5), "low");
    ck_assert_str_eq(jm_backpressure_level(0.501), "high");
    ck_assert_str_eq(jm_backpressure_level(1.0), "high");
    ck_assert_str_eq(jm_backpressure_level(100 / 1000.0), "ok");
    ck_assert_str_eq(jm_backpressure_level(500 / 1000.0), "low");
}
END_TEST

START_TEST(metrics_add_up_per_vertex) {
    int par[] = {3};
    recorder r = {0};
    jm_job *job = running_job(1, par, 0, NULL, &r);
    for (int s = 0; s < 2; s++) {
        jm_task_metrics m = {.records_in = 10 + s, .records_out = 20, .bytes_in = 100, .bytes_out = 200,
                             .back_pressured_ms = 600};
        jm_job_set_metrics(job, &job->vertices[0].execs[s], &m);
    }
    jm_task_metrics sum;
    jm_vertex_io(&job->vertices[0], &sum);
    ck_assert_int_eq(sum.records_in, 21);
    ck_assert_int_eq(sum.records_out, 40);
    ck_assert_int_eq(sum.bytes_in, 200);
    ck_assert_int_eq(sum.bytes_out, 400);
    jm_job_free(job);
}
END_TEST

int main(void) {
    log_set_level(LOG_ERROR);
    Suite *s = suite_create("jm_job");
    TCase *tc = tcase_create("graph");
    tcase_add_test(tc, validation_names_the_problem);
    tcase_add_test(tc, expansion_partitions_gates_channels);
    tcase_add_test(tc, expansion_orders_gates_by_edge_id);
    tcase_add_test(tc, slot_sharing_groups_add_up);
    suite_add_tcase(s, tc);
    tc = tcase_create("states");
    tcase_add_test(tc, all_finished_is_finished);
    tcase_add_test(tc, one_failure_fails_the_job_with_root_cause);
    tcase_add_test(tc, cancel_cancels_every_task);
    tcase_add_test(tc, cancel_before_scheduling_and_unreachable_tasks);
    tcase_add_test(tc, unconfirmed_cancel_times_out);
    tcase_add_test(tc, lost_taskmanager_fails_its_tasks);
    tcase_add_test(tc, deployment_failure_and_global_failure);
    tcase_add_test(tc, bad_updates_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("aggregation");
    tcase_add_test(tc, vertex_status_aggregation);
    tcase_add_test(tc, backpressure_levels);
    tcase_add_test(tc, metrics_add_up_per_vertex);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

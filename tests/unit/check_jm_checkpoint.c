/* Unit tests of the checkpoint coordinator (jm_checkpoint): trigger at the sources, every task
 * acknowledging -> completed (_metadata written, tasks notified), timeout and decline -> aborted
 * (tasks notified), tolerable failed checkpoints, UNSUPPORTED replies that do not count, the
 * periodic trigger with min pause and max concurrent checkpoints, num-retained with
 * reference-counted shared files, retention when the job ends, savepoints and stop-with-savepoint,
 * restore of the latest checkpoint with fallback past a corrupted or missing _metadata, and the
 * _metadata format's checks. No sockets: the ops record what would be sent; files go to a fresh
 * directory under /tmp. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_jm_helpers.h"
#include "jm_checkpoint.h"
#include "jm_restore.h"
#include "util/log.h"

#define HASH FLINT__GRAPH__PARTITIONER__HASH
#define CKPT FLINT__CHECKPOINT__CHECKPOINT_TYPE__CHECKPOINT
#define SAVEPOINT FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT

/* ---- fixture: a running job (V0 source x2 -> hash -> V1 x2) and its coordinator ---- */

typedef struct rec {
    int triggers, completes, aborts, fails, cancels;
    int vertex_triggers[2];       /* triggers per vertex */
    int64_t last_trigger_id, last_complete_id, last_abort_id;
    int last_abort_reason;
    char fail_msg[600];
    int trigger_rc;               /* what ops.trigger returns */
} rec;

static rec R;
static const char *ack_file;      /* when set, ack_ex names this file (relative) instead of inline state */
static jm_job *job;
static jm_cp *cp;
static char tmp[64];

static int op_cancel(void *ud, jm_job *j, jm_exec *ex) {
    (void)ud, (void)j, (void)ex;
    return 0;
}

static void op_state(void *ud, jm_job *j, jm_job_state old, jm_time now) {
    (void)ud, (void)j, (void)old;
    if (cp) jm_cp_job_state(cp, now);
}

static void op_task_state(void *ud, jm_job *j, jm_exec *ex, jm_exec_state old, jm_time now) {
    (void)ud, (void)j;
    if (cp) jm_cp_task_state(cp, ex, old, now);
}

static const jm_job_ops job_ops = {.cancel_task = op_cancel, .state_changed = op_state,
                                   .task_state_changed = op_task_state};

static int c_trigger(void *ud, jm_job *j, jm_exec *ex, const Flint__Checkpoint__TriggerCheckpoint *m, flint_err *err) {
    (void)ud, (void)j;
    ck_assert_str_eq(m->execution_id, ex->id);
    ck_assert_int_eq(ex->state, JM_EXEC_RUNNING);
    R.triggers++;
    R.vertex_triggers[ex->vertex->index]++;
    R.last_trigger_id = m->checkpoint_id;
    if (R.trigger_rc) return flint_err_set(err, R.trigger_rc, "refused by the fake");
    return 0;
}

static void c_complete(void *ud, jm_job *j, jm_exec *ex, const Flint__Checkpoint__NotifyCheckpointComplete *m) {
    (void)ud, (void)j, (void)ex;
    R.completes++;
    R.last_complete_id = m->checkpoint_id;
}

static void c_aborted(void *ud, jm_job *j, jm_exec *ex, const Flint__Checkpoint__NotifyCheckpointAborted *m) {
    (void)ud, (void)j, (void)ex;
    R.aborts++;
    R.last_abort_id = m->checkpoint_id;
    R.last_abort_reason = m->reason;
}

static void c_fail(void *ud, jm_job *j, const char *msg, jm_time now) {
    (void)ud, (void)j, (void)now;
    R.fails++;
    snprintf(R.fail_msg, sizeof R.fail_msg, "%s", msg);
}

static void c_cancel(void *ud, jm_job *j, jm_time now) {
    (void)ud, (void)j, (void)now;
    R.cancels++;
}

static const jm_cp_ops cp_ops = {c_trigger, c_complete, c_aborted, c_fail, c_cancel};

static jm_cp_config config(void) {
    jm_cp_config c;
    memset(&c, 0, sizeof c);
    c.interval_ms = 0;
    c.exactly_once = true;
    c.timeout_ms = 1000;
    c.max_concurrent = 1;
    c.num_retained = 1;
    snprintf(c.checkpoints_dir, sizeof c.checkpoints_dir, "%s/checkpoints", tmp);
    snprintf(c.backend, sizeof c.backend, "hashmap");
    return c;
}

/* The job (CREATED) and its coordinator with config c; then RUNNING with every task RUNNING. */
static int edge_partitioner = HASH;   /* of the fixture's edge */

static void start(const jm_cp_config *c) {
    int par[] = {2, 2};
    test_edge e = {0, 1, edge_partitioner};
    Flint__Graph__JobGraph *g = test_graph(TEST_JOB_ID, 2, par, NULL, 1, &e);
    flint_err err = {0};
    ck_assert_int_eq(jm_graph_assign_operator_ids(g, &err), 0);
    job = jm_job_new(g, 128, test_time(0));
    jm_job_set_ops(job, &job_ops, NULL, 1000);
    cp = jm_cp_new(job, c, &cp_ops, NULL);
    jm_job_start(job, test_time(0));
    jm_location a = test_loc("tm-a", "10.0.0.1", 4000, 0), b = test_loc("tm-b", "10.0.0.2", 4000, 0);
    jm_job_assign_slot(job, 0, &a);
    jm_job_assign_slot(job, 1, &b);
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++) {
            jm_exec *ex = &job->vertices[v].execs[s];
            jm_job_deploying(job, ex, test_time(0));
            ck_assert_int_eq(jm_job_update_task(job, ex->id, "RUNNING", NULL, test_time(0), &err), 0);
        }
}

static void setup(void) {
    memset(&R, 0, sizeof R);
    snprintf(tmp, sizeof tmp, "/tmp/check_jm_checkpoint.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    job = NULL;
    cp = NULL;
    edge_partitioner = HASH;
}

static void teardown(void) {
    jm_cp_free(cp);
    cp = NULL;
    jm_job_free(job);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...) {
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    struct stat st;
    return stat(path, &st) == 0;
}

static void touch(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    close(fd);
}

/* Acknowledge checkpoint id for subtask s of vertex v: keyed state of its key groups (inline) and,
 * with shared != NULL, shared files (absolute paths) in an incremental handle. */
static int ack_ex(int v, int s, int64_t id, const char *const *shared, int nshared, int64_t size) {
    const jm_vertex *jv = &job->vertices[v];
    Flint__Checkpoint__KeyGroupRange r = FLINT__CHECKPOINT__KEY_GROUP_RANGE__INIT;
    jm_key_group_range(jv->max_parallelism, jv->parallelism, s, &r.start, &r.end);
    Flint__Checkpoint__StreamStateHandle file = FLINT__CHECKPOINT__STREAM_STATE_HANDLE__INIT;
    uint8_t data[4] = {1, 2, 3, 4};
    file.data.data = data;
    file.data.len = 4;
    file.size = 4;
    int64_t *offs = xcalloc((size_t)(r.end - r.start + 1), sizeof *offs);
    Flint__Checkpoint__StreamStateHandle sh[8];
    Flint__Checkpoint__NamedFile nf[8], *nfp[8];
    for (int i = 0; i < nshared; i++) {
        flint__checkpoint__stream_state_handle__init(&sh[i]);
        sh[i].path = (char *)shared[i];
        sh[i].size = 10;
        flint__checkpoint__named_file__init(&nf[i]);
        nf[i].name = (char *)"sst";
        nf[i].handle = &sh[i];
        nfp[i] = &nf[i];
    }
    Flint__Checkpoint__KeyedStateHandle kh = FLINT__CHECKPOINT__KEYED_STATE_HANDLE__INIT, *khp = &kh;
    kh.format = (char *)(shared ? "rocksdb-incremental-v1" : "hashmap-v1");
    kh.key_group_range = &r;
    if (shared) {
        kh.n_shared_files = (size_t)nshared;
        kh.shared_files = nfp;
    } else {
        if (ack_file) {
            file.path = (char *)ack_file;
            file.data.len = 0;
        }
        kh.file = &file;
        kh.n_key_group_offsets = (size_t)(r.end - r.start + 1);
        kh.key_group_offsets = offs;
    }
    kh.state_size = size;
    Flint__Checkpoint__OperatorSubtaskState st = FLINT__CHECKPOINT__OPERATOR_SUBTASK_STATE__INIT, *stp = &st;
    st.operator_id = jv->def->operators[0]->operator_id;
    st.n_keyed_state = 1;
    st.keyed_state = &khp;
    st.state_size = size;
    Flint__Checkpoint__SubtaskCheckpointMetrics mt = FLINT__CHECKPOINT__SUBTASK_CHECKPOINT_METRICS__INIT;
    mt.alignment_duration_ms = 5;
    mt.bytes_processed_during_alignment = 100;
    Flint__Checkpoint__AcknowledgeCheckpoint m = FLINT__CHECKPOINT__ACKNOWLEDGE_CHECKPOINT__INIT;
    m.job_id = job->id;
    m.execution_id = job->vertices[v].execs[s].id;
    m.checkpoint_id = id;
    m.n_operators = 1;
    m.operators = &stp;
    m.metrics = &mt;
    flint_err err = {0};
    int rc = jm_cp_acknowledge(cp, &m, test_time(50), &err);
    free(offs);
    return rc;
}

static void ack_all(int64_t id) {
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++) ck_assert_int_eq(ack_ex(v, s, id, NULL, 0, 1000), 0);
}

static void ack_all_shared(int64_t id, const char *const *shared, int n) {
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++) ck_assert_int_eq(ack_ex(v, s, id, shared, n, 1000), 0);
}

static int64_t trigger(int64_t at) {
    int64_t id = 0;
    flint_err err = {0};
    ck_assert_msg(jm_cp_trigger_checkpoint(cp, test_time(at), &id, &err) == 0, "%s", err.msg);
    return id;
}

static void decline(int64_t id, int reason) {
    Flint__Checkpoint__DeclineCheckpoint m = FLINT__CHECKPOINT__DECLINE_CHECKPOINT__INIT;
    m.job_id = job->id;
    m.execution_id = job->vertices[1].execs[0].id;
    m.checkpoint_id = id;
    m.reason = reason;
    m.message = "disk full";
    flint_err err = {0};
    ck_assert_int_eq(jm_cp_decline(cp, &m, test_time(60), &err), 0);
}

/* ---- tests ---- */

START_TEST(ack_all_completes) {
    jm_cp_config c = config();
    start(&c);
    int64_t id = trigger(10);
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(R.triggers, 2);   /* the two source subtasks */
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);
    ck_assert(exists("%s/checkpoints/%s/chk-1", tmp, TEST_JOB_ID));
    ck_assert(exists("%s/checkpoints/%s/shared", tmp, TEST_JOB_ID));
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++) {
            ck_assert_int_eq(jm_cp_completed_count(cp), 0);
            ck_assert_int_eq(ack_ex(v, s, 1, NULL, 0, 1000), 0);
        }
    ck_assert_int_eq(ack_ex(0, 0, 1, NULL, 0, 1000), 0);   /* late duplicate: ignored */
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(jm_cp_completed_count(cp), 1);
    ck_assert_int_eq(R.completes, 4);
    ck_assert_int_eq(R.last_complete_id, 1);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.total, 1);
    ck_assert_int_eq(st.completed, 1);
    ck_assert_int_eq(st.in_progress, 0);
    ck_assert_ptr_nonnull(st.latest_completed);
    ck_assert_int_eq(st.latest_completed->state_size, 4000);
    ck_assert_int_eq(st.latest_completed->alignment_buffered, 400);
    ck_assert_int_eq(st.latest_completed->num_acknowledged_subtasks, 4);
    ck_assert_int_eq(st.latest_completed->end_to_end_duration, 40);
    ck_assert_int_eq(st.n_history, 1);
    ck_assert_int_eq(st.state_size.max, 4000);

    /* the _metadata round trip */
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoints/%s/chk-1/_metadata", tmp, TEST_JOB_ID);
    Flint__Checkpoint__CheckpointMetadata *m = NULL;
    flint_err err = {0};
    ck_assert_msg(jm_metadata_read(path, &m, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(m->job_id, TEST_JOB_ID);
    ck_assert_int_eq(m->checkpoint_id, 1);
    ck_assert(!m->is_savepoint);
    ck_assert_int_eq(m->n_operators, 2);
    ck_assert_int_eq(m->operators[1]->n_subtasks, 2);
    ck_assert_int_eq(m->operators[1]->subtasks[1]->subtask, 1);
    ck_assert_int_eq(m->operators[1]->max_parallelism, 128);
    ck_assert_str_eq(m->operators[0]->operator_id, job->vertices[0].def->operators[0]->operator_id);
    flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
    ck_assert(!exists("%s/checkpoints/%s/chk-1/_metadata.tmp", tmp, TEST_JOB_ID));

    /* acknowledgements that do not fit */
    ck_assert_int_eq(ack_ex(0, 0, 7, NULL, 0, 1), FLINT_NOT_FOUND);
}
END_TEST

START_TEST(timeout_aborts) {
    jm_cp_config c = config();
    c.tolerable_failed = 5;
    start(&c);
    trigger(0);
    ck_assert_int_eq(ack_ex(0, 0, 1, NULL, 0, 10), 0);
    jm_cp_tick(cp, test_time(999));
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);
    jm_cp_tick(cp, test_time(1000));
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(R.aborts, 4);
    ck_assert_int_eq(R.last_abort_reason, FLINT__CHECKPOINT__FAILURE_REASON__EXPIRED);
    ck_assert(!exists("%s/checkpoints/%s/chk-1", tmp, TEST_JOB_ID));
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.failed, 1);
    ck_assert_ptr_nonnull(st.latest_failed);
    ck_assert_str_eq(st.latest_failed->failure_message, "Checkpoint expired before completing.");
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 1);
    ck_assert_int_eq(R.fails, 0);
    /* a late acknowledgement of the aborted checkpoint is fine */
    ck_assert_int_eq(ack_ex(1, 0, 1, NULL, 0, 10), 0);
}
END_TEST

START_TEST(decline_aborts_and_tolerance) {
    jm_cp_config c = config();
    c.tolerable_failed = 1;
    start(&c);
    decline(trigger(0), FLINT__CHECKPOINT__FAILURE_REASON__DECLINED);
    ck_assert_int_eq(R.aborts, 4);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 1);
    ck_assert_int_eq(R.fails, 0);
    /* a success resets the count */
    ack_all(trigger(100));
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    decline(trigger(200), FLINT__CHECKPOINT__FAILURE_REASON__ASYNC_EXCEPTION);
    ck_assert_int_eq(R.fails, 0);
    /* not counted: the task was not ready */
    decline(trigger(300), FLINT__CHECKPOINT__FAILURE_REASON__TASK_NOT_READY);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 1);
    decline(trigger(400), FLINT__CHECKPOINT__FAILURE_REASON__DECLINED);
    ck_assert_int_eq(R.fails, 1);
    ck_assert_msg(strstr(R.fail_msg, "Exceeded checkpoint tolerable failure threshold"), "%s", R.fail_msg);
    ck_assert_msg(strstr(R.fail_msg, "disk full"), "%s", R.fail_msg);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.failed, 4);
    ck_assert_int_eq(st.completed, 1);
    ck_assert_int_eq(st.total, 5);
    ck_assert_int_eq(st.n_history, 5);
}
END_TEST

START_TEST(unsupported_taskmanager_does_not_fail_the_job) {
    jm_cp_config c = config();
    c.tolerable_failed = 0;
    start(&c);
    /* the taskmanager answered the trigger with FLINT_UNSUPPORTED */
    int64_t id = trigger(0);
    jm_cp_trigger_result(cp, job->vertices[0].execs[0].id, id, FLINT_UNSUPPORTED,
                         "the taskmanager does not handle trigger_checkpoint", test_time(5));
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(R.last_abort_reason, FLINT__CHECKPOINT__FAILURE_REASON__UNSUPPORTED);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    ck_assert_int_eq(R.fails, 0);
    /* the trigger cannot even be sent as unsupported */
    R.trigger_rc = FLINT_UNSUPPORTED;
    trigger(10);
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(R.fails, 0);
    /* any other trigger failure counts */
    R.trigger_rc = FLINT_CLOSED;
    trigger(20);
    ck_assert_int_eq(R.fails, 1);
    ck_assert_int_eq(job->state, JM_JOB_RUNNING);   /* the fake fail_job does nothing */
}
END_TEST

START_TEST(periodic_min_pause_max_concurrent) {
    jm_cp_config c = config();
    c.interval_ms = 100;
    c.timeout_ms = 100000;
    c.max_concurrent = 2;
    start(&c);   /* RUNNING at t=0: the first trigger is due at 100 */
    ck_assert_int_eq(jm_cp_next_trigger_ms(cp), 100);
    jm_cp_tick(cp, test_time(99));
    ck_assert_int_eq(R.triggers, 0);
    jm_cp_tick(cp, test_time(100));
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);
    jm_cp_tick(cp, test_time(150));
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);
    jm_cp_tick(cp, test_time(200));
    ck_assert_int_eq(jm_cp_pending_count(cp), 2);
    jm_cp_tick(cp, test_time(300));   /* max concurrent reached: waits */
    ck_assert_int_eq(jm_cp_pending_count(cp), 2);
    ack_all(2);                        /* completing 2 subsumes 1 */
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(R.last_abort_reason, FLINT__CHECKPOINT__FAILURE_REASON__SUBSUMED);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    jm_cp_tick(cp, test_time(310));
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);
    ck_assert_int_eq(R.last_trigger_id, 3);
    jm_cp_free(cp);
    jm_job_free(job);
    cp = NULL;
    job = NULL;

    /* min pause: one at a time, and not before min-pause after the previous one ended */
    c.max_concurrent = 5;
    c.min_pause_ms = 200;
    memset(&R, 0, sizeof R);
    start(&c);
    jm_cp_tick(cp, test_time(100));
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);
    jm_cp_tick(cp, test_time(200));
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);   /* min pause: never concurrent */
    ack_all(1);                                     /* completes at t=50 (the acks' time) */
    jm_cp_tick(cp, test_time(240));
    ck_assert_int_eq(R.triggers, 2);                /* 50 + 200 = 250 */
    jm_cp_tick(cp, test_time(250));
    ck_assert_int_eq(R.triggers, 4);
    ck_assert_int_eq(R.last_trigger_id, 2);
}
END_TEST

START_TEST(retention_and_shared_refcounts) {
    jm_cp_config c = config();
    c.num_retained = 2;
    start(&c);
    char shared[3][600];
    const char *names[] = {"A", "B", "C"};
    for (int i = 0; i < 3; i++)
        snprintf(shared[i], sizeof shared[i], "%s/checkpoints/%s/shared/%s", tmp, TEST_JOB_ID, names[i]);
    const char *s1[] = {shared[0], shared[1]}, *s2[] = {shared[0], shared[2]};
    trigger(0);
    touch(shared[0]);
    touch(shared[1]);
    ack_all_shared(1, s1, 2);
    ck_assert_int_eq(jm_cp_shared_refs(cp, shared[0]), 1);   /* once per checkpoint, not per handle */
    trigger(100);
    touch(shared[2]);
    ack_all_shared(2, s2, 2);
    ck_assert_int_eq(jm_cp_shared_refs(cp, shared[0]), 2);
    ck_assert_int_eq(jm_cp_completed_count(cp), 2);
    trigger(200);
    ack_all_shared(3, s2, 2);
    /* chk-1 subsumed: its directory and B (only it used B) are gone; A and C stay */
    ck_assert_int_eq(jm_cp_completed_count(cp), 2);
    ck_assert_int_eq(jm_cp_completed_id(cp, 0), 2);
    ck_assert(!exists("%s/checkpoints/%s/chk-1", tmp, TEST_JOB_ID));
    ck_assert(exists("%s/checkpoints/%s/chk-2/_metadata", tmp, TEST_JOB_ID));
    ck_assert(exists("%s/checkpoints/%s/chk-3/_metadata", tmp, TEST_JOB_ID));
    ck_assert(!exists("%s", shared[1]));
    ck_assert(exists("%s", shared[0]));
    ck_assert(exists("%s", shared[2]));
    ck_assert_int_eq(jm_cp_shared_refs(cp, shared[0]), 2);
    ck_assert_int_eq(jm_cp_shared_refs(cp, shared[1]), 0);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert(st.history[2]->discarded);   /* chk-1 */

    /* an aborted checkpoint's new shared file goes; registered ones stay */
    char d[600];
    snprintf(d, sizeof d, "%s/checkpoints/%s/shared/D", tmp, TEST_JOB_ID);
    touch(d);
    const char *s4[] = {shared[0], d};
    trigger(300);
    ck_assert_int_eq(ack_ex(0, 0, 4, s4, 2, 10), 0);
    jm_cp_tick(cp, test_time(300 + 1000));
    ck_assert(!exists("%s", d));
    ck_assert(exists("%s", shared[0]));

    /* the job finishes: every checkpoint goes, and the job's directory with them */
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++)
            jm_job_update_task(job, job->vertices[v].execs[s].id, "FINISHED", NULL, test_time(2000), NULL);
    ck_assert_int_eq(job->state, JM_JOB_FINISHED);
    ck_assert_int_eq(jm_cp_completed_count(cp), 0);
    ck_assert(!exists("%s/checkpoints/%s", tmp, TEST_JOB_ID));
}
END_TEST

static void cancel_job(void) {
    flint_err err = {0};
    ck_assert_int_eq(jm_job_cancel(job, test_time(500), &err), 0);
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++)
            jm_job_update_task(job, job->vertices[v].execs[s].id, "CANCELED", NULL, test_time(600), NULL);
    ck_assert_int_eq(job->state, JM_JOB_CANCELED);
}

START_TEST(retention_on_cancel) {
    jm_cp_config c = config();
    c.retention = JM_CP_RETAIN_ON_CANCELLATION;
    start(&c);
    ack_all(trigger(0));
    trigger(100);   /* pending when the job is canceled: aborted, not counted */
    cancel_job();
    ck_assert_int_eq(R.last_abort_reason, FLINT__CHECKPOINT__FAILURE_REASON__JOB_FAILOVER);
    ck_assert(exists("%s/checkpoints/%s/chk-1/_metadata", tmp, TEST_JOB_ID));
    ck_assert(!exists("%s/checkpoints/%s/chk-2", tmp, TEST_JOB_ID));
    jm_cp_free(cp);
    jm_job_free(job);
    cp = NULL;
    job = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s/checkpoints", tmp);
    ck_assert_int_eq(system(cmd), 0);

    c.retention = JM_CP_DELETE_ON_CANCELLATION;
    start(&c);
    ack_all(trigger(0));
    cancel_job();
    ck_assert(!exists("%s/checkpoints/%s/chk-1", tmp, TEST_JOB_ID));
    jm_cp_free(cp);
    jm_job_free(job);
    cp = NULL;
    job = NULL;

    /* DELETE_ON_CANCELLATION keeps checkpoints of a failed job */
    start(&c);
    ack_all(trigger(0));
    jm_job_fail(job, "flint.Test", "boom", test_time(700));
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++)
            jm_job_update_task(job, job->vertices[v].execs[s].id, "CANCELED", NULL, test_time(800), NULL);
    ck_assert_int_eq(job->state, JM_JOB_FAILED);
    ck_assert(exists("%s/checkpoints/%s/chk-1/_metadata", tmp, TEST_JOB_ID));
}
END_TEST

START_TEST(savepoints_and_stop) {
    jm_cp_config c = config();
    start(&c);
    char id[33];
    flint_err err = {0};
    ck_assert_int_eq(jm_cp_trigger_savepoint(cp, SAVEPOINT, NULL, false, test_time(0), id, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "state.savepoints.dir"), "%s", err.msg);
    ck_assert_int_eq(jm_cp_trigger_savepoint(cp, SAVEPOINT, "relative/dir", false, test_time(0), id, &err),
                     FLINT_INVALID);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/savepoints/", tmp);
    ck_assert_msg(jm_cp_trigger_savepoint(cp, SAVEPOINT, dir, true, test_time(0), id, &err) == 0, "%s", err.msg);
    const jm_cp_trigger *t = jm_cp_find_trigger(cp, id);
    ck_assert_ptr_nonnull(t);
    ck_assert(!t->done);
    ack_all(t->checkpoint_id);
    ck_assert(t->done && t->ok);
    char prefix[400];
    snprintf(prefix, sizeof prefix, "%s/savepoints/savepoint-012345-", tmp);
    ck_assert_msg(strncmp(t->location, prefix, strlen(prefix)) == 0, "%s", t->location);
    ck_assert_int_eq(strlen(t->location), strlen(prefix) + 12);
    ck_assert(exists("%s/_metadata", t->location));
    ck_assert_int_eq(R.cancels, 1);   /* cancel-job */
    Flint__Checkpoint__CheckpointMetadata *m = NULL;
    char mp[600];
    snprintf(mp, sizeof mp, "%s/_metadata", t->location);
    ck_assert_int_eq(jm_metadata_read(mp, &m, &err), 0);
    ck_assert(m->is_savepoint);
    flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_ptr_nonnull(st.latest_savepoint);
    ck_assert_ptr_null(st.latest_completed);

    /* stop: complete once the job finished */
    ck_assert_int_eq(jm_cp_trigger_savepoint(cp, FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_SUSPEND, dir, false,
                                             test_time(100), id, &err), 0);
    t = jm_cp_find_trigger(cp, id);
    ack_all(t->checkpoint_id);
    ck_assert(!t->done && t->waiting_for_stop);
    ck_assert_int_eq(jm_cp_trigger_savepoint(cp, SAVEPOINT, dir, false, test_time(100), id, &err), FLINT_STATE);
    jm_cp_tick(cp, test_time(150));
    ck_assert_int_eq(R.triggers, 4);   /* no periodic checkpoints while stopping (none configured anyway) */
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++)
            jm_job_update_task(job, job->vertices[v].execs[s].id, "FINISHED", NULL, test_time(200), NULL);
    ck_assert(t->done && t->ok);
    ck_assert(exists("%s/_metadata", t->location));   /* savepoints are never deleted */
    ck_assert_ptr_null(jm_cp_find_trigger(cp, "00000000000000000000000000000000"));
}
END_TEST

START_TEST(savepoint_failure_is_reported) {
    jm_cp_config c = config();
    start(&c);
    char id[33], dir[300];
    flint_err err = {0};
    snprintf(dir, sizeof dir, "%s/sp", tmp);
    ck_assert_int_eq(jm_cp_trigger_savepoint(cp, SAVEPOINT, dir, false, test_time(0), id, &err), 0);
    const jm_cp_trigger *t = jm_cp_find_trigger(cp, id);
    decline(t->checkpoint_id, FLINT__CHECKPOINT__FAILURE_REASON__DECLINED);
    ck_assert(t->done && !t->ok);
    ck_assert_msg(strstr(t->failure, "disk full"), "%s", t->failure);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);   /* savepoints never count */
}
END_TEST

static void corrupt(const char *path) {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 40, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(ch ^ 0x5a, f);
    fclose(f);
}

START_TEST(restore_falls_back_past_corruption) {
    jm_cp_config c = config();
    c.num_retained = 3;
    start(&c);
    ack_all(trigger(0));
    ack_all(trigger(100));
    ack_all(trigger(200));
    jm_restore *plan = NULL;
    flint_err err = {0};
    ck_assert_int_eq(jm_cp_restore_latest(cp, test_time(300), &plan, &err), 0);
    ck_assert_ptr_nonnull(plan);
    ck_assert_int_eq(jm_restore_checkpoint_id(plan), 3);
    jm_restore_free(plan);

    char path[600];
    snprintf(path, sizeof path, "%s/checkpoints/%s/chk-3/_metadata", tmp, TEST_JOB_ID);
    corrupt(path);
    ck_assert_int_eq(jm_cp_restore_latest(cp, test_time(300), &plan, &err), 0);
    ck_assert_int_eq(jm_restore_checkpoint_id(plan), 2);
    jm_restore_free(plan);

    snprintf(path, sizeof path, "%s/checkpoints/%s/chk-2/_metadata", tmp, TEST_JOB_ID);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(jm_cp_restore_latest(cp, test_time(300), &plan, &err), 0);
    ck_assert_int_eq(jm_restore_checkpoint_id(plan), 1);
    jm_restore_free(plan);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.restored, 3);
    ck_assert_int_eq(st.restored_id, 1);

    /* a task could not restore chk-1 either: nothing is left, and the error names a file */
    jm_cp_restore_failed(cp, 1, "bad state file");
    ck_assert_int_eq(jm_cp_restore_latest(cp, test_time(300), &plan, &err), FLINT_INVALID);
    ck_assert_ptr_null(plan);
    ck_assert_msg(strstr(err.msg, "chk-3/_metadata is corrupted: checksum mismatch"), "%s", err.msg);

    /* checkpoint ids go on after a restore */
    ck_assert_int_eq(trigger(400), 4);
}
END_TEST

START_TEST(restore_checks_state_files) {
    jm_cp_config c = config();
    c.num_retained = 2;
    start(&c);
    char shared[600];
    snprintf(shared, sizeof shared, "%s/checkpoints/%s/shared/X", tmp, TEST_JOB_ID);
    const char *s1[] = {shared};
    trigger(0);
    touch(shared);
    ack_all_shared(1, s1, 1);
    ack_all(trigger(100));
    /* chk-2 is fine; make chk-1's state file vanish and fall back the other way */
    jm_restore *plan = NULL;
    flint_err err = {0};
    jm_cp_restore_failed(cp, 2, "a task failed to restore it");
    ck_assert_int_eq(unlink(shared), 0);
    ck_assert_int_eq(jm_cp_restore_latest(cp, test_time(300), &plan, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "shared/X of checkpoint 1 is missing"), "%s", err.msg);
}
END_TEST

START_TEST(metadata_format_checks) {
    Flint__Checkpoint__CheckpointMetadata m = FLINT__CHECKPOINT__CHECKPOINT_METADATA__INIT;
    m.format_version = JM_METADATA_VERSION;
    m.job_id = TEST_JOB_ID;
    m.checkpoint_id = 7;
    ck_assert_int_eq(jm_metadata_write(tmp, &m, NULL), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/_metadata", tmp);
    Flint__Checkpoint__CheckpointMetadata *r = NULL;
    flint_err err = {0};
    ck_assert_int_eq(jm_metadata_read(path, &r, &err), 0);
    ck_assert_int_eq(r->checkpoint_id, 7);
    flint__checkpoint__checkpoint_metadata__free_unpacked(r, NULL);

    /* truncated */
    ck_assert_int_eq(truncate(path, 35), 0);
    ck_assert_int_eq(jm_metadata_read(path, &r, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "is corrupted") && strstr(err.msg, path), "%s", err.msg);
    /* not a metadata file */
    FILE *f = fopen(path, "w");
    fputs("this is not a checkpoint metadata file at all, really", f);
    fclose(f);
    ck_assert_int_eq(jm_metadata_read(path, &r, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "not a Flint checkpoint metadata file"), "%s", err.msg);
    /* missing */
    unlink(path);
    ck_assert_int_eq(jm_metadata_read(path, &r, &err), FLINT_NOT_FOUND);
    ck_assert_msg(strstr(err.msg, path), "%s", err.msg);
    /* a field that restore relies on */
    m.checkpoint_id = 0;
    ck_assert_int_eq(jm_metadata_write(tmp, &m, NULL), 0);
    ck_assert_int_eq(jm_metadata_read(path, &r, &err), FLINT_INVALID);
    m.checkpoint_id = 3;
    m.format_version = 9;
    ck_assert_int_eq(jm_metadata_write(tmp, &m, NULL), 0);
    ck_assert_int_eq(jm_metadata_read(path, &r, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "format version"), "%s", err.msg);
}
END_TEST

START_TEST(job_failover_aborts_without_counting) {
    jm_cp_config c = config();
    c.interval_ms = 100;
    start(&c);
    trigger(0);
    jm_job_fail(job, "flint.Test", "boom", test_time(10));   /* no restart strategy: FAILING */
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    ck_assert_int_eq(jm_cp_next_trigger_ms(cp), -1);
    jm_cp_tick(cp, test_time(1000));
    ck_assert_int_eq(R.triggers, 2);
    flint_err err = {0};
    ck_assert_int_eq(jm_cp_trigger_checkpoint(cp, test_time(1000), NULL, &err), FLINT_STATE);
}
END_TEST

START_TEST(not_all_tasks_running) {
    jm_cp_config c = config();
    start(&c);
    flint_err err = {0};
    jm_job_update_task(job, job->vertices[0].execs[0].id, "FINISHED", NULL, test_time(5), &err);
    ck_assert_int_eq(jm_cp_trigger_checkpoint(cp, test_time(10), NULL, &err), FLINT_STATE);
    ck_assert_msg(strstr(err.msg, "Not all required tasks"), "%s", err.msg);
    ck_assert_int_eq(R.triggers, 0);
}
END_TEST

/* A source that finishes while a checkpoint waits for its acknowledgement aborts it at once (not
 * at the timeout), without counting; one that acknowledged first does not. */
START_TEST(finished_task_aborts_pending) {
    jm_cp_config c = config();
    c.timeout_ms = 600000;
    start(&c);
    int64_t id = trigger(10);
    ck_assert_int_eq(ack_ex(0, 1, id, NULL, 0, 1000), 0);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[0].execs[1].id, "FINISHED", NULL, test_time(20), &err), 0);
    ck_assert_int_eq(jm_cp_pending_count(cp), 1);   /* it acknowledged: nothing owed */
    ck_assert_int_eq(R.aborts, 0);
    ck_assert_int_eq(ack_ex(1, 0, id, NULL, 0, 1000), 0);
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[0].execs[0].id, "FINISHED", NULL, test_time(30), &err), 0);
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(R.aborts, 2);   /* the two RUNNING tasks (V1), not the finished sources */
    ck_assert_int_eq(R.last_abort_id, id);
    ck_assert_int_eq(R.last_abort_reason, FLINT__CHECKPOINT__FAILURE_REASON__NOT_ALL_TASKS_RUNNING);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.failed, 1);
    ck_assert_ptr_nonnull(st.latest_failed);
    ck_assert_msg(strstr(st.latest_failed->failure_message, "FINISHED before it acknowledged checkpoint 1"), "%s",
                  st.latest_failed->failure_message);
    ck_assert(!exists("%s/checkpoints/%s/chk-1", tmp, TEST_JOB_ID));
    ck_assert_int_eq(ack_ex(1, 1, id, NULL, 0, 1000), 0);   /* late: answered, discarded */
    ck_assert_int_eq(jm_cp_completed_count(cp), 0);
    ck_assert_int_eq(R.fails, 0);
}
END_TEST

/* Checkpoints after tasks finish: a finished task counts as acknowledged with its acknowledgement
 * of the latest completed checkpoint, its files linked into the new checkpoint's directory (the
 * old one is deleted when subsumed); only running sources are triggered; savepoints still need
 * every task running. */
START_TEST(finished_tasks_reuse_last_ack) {
    jm_cp_config c = config();
    c.after_tasks_finish = true;
    start(&c);
    int64_t id1 = trigger(10);
    char path[700];
    snprintf(path, sizeof path, "%s/checkpoints/%s/chk-1/src0-keyed", tmp, TEST_JOB_ID);
    touch(path);
    ack_file = "src0-keyed";
    ck_assert_int_eq(ack_ex(0, 0, id1, NULL, 0, 1000), 0);
    ack_file = NULL;
    for (int i = 1; i < 4; i++) ck_assert_int_eq(ack_ex(i / 2, i % 2, id1, NULL, 0, 1000), 0);
    ck_assert_int_eq(jm_cp_completed_count(cp), 1);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[0].execs[0].id, "FINISHED", NULL, test_time(20), &err), 0);
    ck_assert_int_eq(R.triggers, 2);
    int64_t id2 = trigger(30);
    ck_assert_int_eq(R.triggers, 3);   /* the running source only */
    char sp[33];
    char dir[600];
    snprintf(dir, sizeof dir, "%s/sp", tmp);
    ck_assert_int_eq(jm_cp_trigger_savepoint(cp, SAVEPOINT, dir, false, test_time(30), sp, &err), FLINT_STATE);
    ck_assert_msg(strstr(err.msg, "has FINISHED (savepoints need every task RUNNING"), "%s", err.msg);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.history[0]->num_acknowledged_subtasks, 1);
    for (int i = 1; i < 4; i++) ck_assert_int_eq(ack_ex(i / 2, i % 2, id2, NULL, 0, 1000), 0);
    ck_assert_int_eq(jm_cp_completed_id(cp, jm_cp_completed_count(cp) - 1), id2);
    ck_assert(!exists("%s/checkpoints/%s/chk-1", tmp, TEST_JOB_ID));   /* subsumed */
    ck_assert(exists("%s/checkpoints/%s/chk-2/src0-keyed", tmp, TEST_JOB_ID));
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.latest_completed->state_size, 4000);
    /* chk-2 restores the finished source's state */
    jm_restore *plan = NULL;
    ck_assert_msg(jm_cp_restore_latest(cp, test_time(40), &plan, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(plan);
    const Flint__Checkpoint__CheckpointMetadata *m = jm_restore_metadata(plan);
    ck_assert_int_eq(m->checkpoint_id, id2);
    ck_assert_int_eq(m->operators[0]->n_subtasks, 2);
    ck_assert_str_eq(m->operators[0]->subtasks[0]->keyed_state[0]->file->path, "src0-keyed");
    jm_restore_free(plan);
    /* the second source finishes too: the tasks downstream, which no barrier can reach any more,
     * are triggered themselves and complete the next checkpoint with the sources' last state */
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[0].execs[1].id, "FINISHED", NULL, test_time(50), &err), 0);
    memset(R.vertex_triggers, 0, sizeof R.vertex_triggers);
    int64_t id3 = trigger(60);
    ck_assert_int_eq(R.vertex_triggers[0], 0);
    ck_assert_int_eq(R.vertex_triggers[1], 2);
    for (int s = 0; s < 2; s++) ck_assert_int_eq(ack_ex(1, s, id3, NULL, 0, 1000), 0);
    ck_assert_int_eq(jm_cp_completed_id(cp, jm_cp_completed_count(cp) - 1), id3);
    ck_assert(exists("%s/checkpoints/%s/chk-3/src0-keyed", tmp, TEST_JOB_ID));
    /* V1 finishes after it: nothing is left to checkpoint */
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(jm_job_update_task(job, job->vertices[1].execs[s].id, "FINISHED", NULL, test_time(70), &err), 0);
    ck_assert_int_eq(jm_cp_trigger_checkpoint(cp, test_time(80), NULL, &err), FLINT_STATE);
    ck_assert_int_eq(R.fails, 0);
}
END_TEST

/* A task is triggered as soon as the upstream subtasks it reads finished, not all of the
 * upstream vertex: with a forward edge V1[0] reads V0[0] only, so it is triggered while V0[1]
 * runs on, and V1[1] gets its barrier from V0[1]. Without checkpoints after tasks finish only
 * sources are triggered. */
START_TEST(downstream_of_finished_is_triggered) {
    edge_partitioner = FLINT__GRAPH__PARTITIONER__FORWARD;
    jm_cp_config c = config();
    c.after_tasks_finish = true;
    start(&c);
    int64_t id1 = trigger(10);
    ack_all(id1);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[0].execs[0].id, "FINISHED", NULL, test_time(20), &err), 0);
    memset(R.vertex_triggers, 0, sizeof R.vertex_triggers);
    int64_t id2 = trigger(30);
    ck_assert_int_eq(R.vertex_triggers[0], 1);   /* V0[1] */
    ck_assert_int_eq(R.vertex_triggers[1], 1);   /* V1[0] */
    ck_assert_int_eq(ack_ex(0, 1, id2, NULL, 0, 1000), 0);
    ck_assert_int_eq(ack_ex(1, 0, id2, NULL, 0, 1000), 0);
    ck_assert_int_eq(ack_ex(1, 1, id2, NULL, 0, 1000), 0);
    ck_assert_int_eq(jm_cp_completed_id(cp, jm_cp_completed_count(cp) - 1), id2);
    jm_cp_free(cp);
    jm_job_free(job);
    cp = NULL;
    job = NULL;
    memset(&R, 0, sizeof R);
    c.after_tasks_finish = false;
    start(&c);
    ck_assert_int_eq(ack_ex(0, 0, trigger(10), NULL, 0, 1000), 0);
    ck_assert_int_eq(R.vertex_triggers[0], 2);
    ck_assert_int_eq(R.vertex_triggers[1], 0);
}
END_TEST

/* A task that fails while a checkpoint is pending aborts it as a failover (not counted). */
START_TEST(failed_task_aborts_pending) {
    jm_cp_config c = config();
    start(&c);
    trigger(10);
    flint_err err = {0};
    ck_assert_int_eq(jm_job_update_task(job, job->vertices[1].execs[1].id, "FAILED", "boom", test_time(20), &err), 0);
    ck_assert_int_eq(jm_cp_pending_count(cp), 0);
    ck_assert_int_eq(jm_cp_consecutive_failures(cp), 0);
    jm_cp_stats st;
    jm_cp_get_stats(cp, &st);
    ck_assert_int_eq(st.latest_failed->failure_reason, FLINT__CHECKPOINT__FAILURE_REASON__JOB_FAILOVER);
}
END_TEST

int main(void) {
    log_init("check", NULL, LOG_ERROR);
    Suite *s = suite_create("jm_checkpoint");
    TCase *tc = tcase_create("coordinator");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ack_all_completes);
    tcase_add_test(tc, timeout_aborts);
    tcase_add_test(tc, decline_aborts_and_tolerance);
    tcase_add_test(tc, unsupported_taskmanager_does_not_fail_the_job);
    tcase_add_test(tc, periodic_min_pause_max_concurrent);
    tcase_add_test(tc, retention_and_shared_refcounts);
    tcase_add_test(tc, retention_on_cancel);
    tcase_add_test(tc, savepoints_and_stop);
    tcase_add_test(tc, savepoint_failure_is_reported);
    tcase_add_test(tc, restore_falls_back_past_corruption);
    tcase_add_test(tc, restore_checks_state_files);
    tcase_add_test(tc, metadata_format_checks);
    tcase_add_test(tc, job_failover_aborts_without_counting);
    tcase_add_test(tc, not_all_tasks_running);
    tcase_add_test(tc, finished_task_aborts_pending);
    tcase_add_test(tc, failed_task_aborts_pending);
    tcase_add_test(tc, finished_tasks_reuse_last_ack);
    tcase_add_test(tc, downstream_of_finished_is_triggered);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Unit tests of the taskmanager's task machinery: partitioners' channel selection, the task
 * mailbox, the artifact cache (FetchArtifact from a fake jobmanager over loopback RPC, sha256
 * check, dlopen per job), and whole tasks on real threads and network stacks: a chain without
 * network, producer and consumers over local and remote channels with HASH partitioning, cancel
 * of an unbounded job, and a malformed record failing its task. */
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "metrics/metrics.h"
#include "network/tm_net.h"
#include "row/row_key.h"
#include "rpc/rpc.h"
#include "task/mailbox.h"
#include "task/partitioner.h"
#include "task/task.h"
#include "tm_artifacts.h"
#include "util/alloc.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#include "check_op_helpers.h"

#define DEADLINE_MS 30000

/* ---- partitioners ------------------------------------------------------------------------ */

START_TEST(forward_and_broadcast) {
    tm_partitioner p;
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__FORWARD, 1, 3, 4, 128);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(tm_partitioner_next(&p), 0);
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__BROADCAST, 4, 0, 1, 128);
    ck_assert_int_eq(tm_partitioner_next(&p), TM_PARTITION_ALL);
}
END_TEST

START_TEST(rebalance_round_robin_from_subtask_offset) {
    tm_partitioner p;
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__REBALANCE, 3, 1, 2, 128);
    int want[] = {1, 2, 0, 1, 2, 0, 1};
    for (int i = 0; i < 7; i++) ck_assert_int_eq(tm_partitioner_next(&p), want[i]);
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__REBALANCE, 3, 4, 5, 128);
    ck_assert_int_eq(tm_partitioner_next(&p), 1); /* 4 % 3 */
}
END_TEST

START_TEST(rescale_subsets) {
    tm_partitioner p;
    /* 2 producers -> 4 consumers: producer 0 feeds 0,1; producer 1 feeds 2,3. */
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__RESCALE, 4, 0, 2, 128);
    int a[] = {0, 1, 0, 1};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(tm_partitioner_next(&p), a[i]);
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__RESCALE, 4, 1, 2, 128);
    int b[] = {2, 3, 2, 3};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(tm_partitioner_next(&p), b[i]);
    /* 4 producers -> 2 consumers: producers 0,1 feed 0; 2,3 feed 1. */
    int want[] = {0, 0, 1, 1};
    for (int sub = 0; sub < 4; sub++) {
        tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__RESCALE, 2, sub, 4, 128);
        for (int i = 0; i < 3; i++) ck_assert_int_eq(tm_partitioner_next(&p), want[sub]);
    }
    /* 3 producers -> 7 consumers: every consumer is fed by exactly one producer. */
    int fed[7] = {0};
    for (int sub = 0; sub < 3; sub++) {
        tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__RESCALE, 7, sub, 3, 128);
        int seen[7] = {0};
        for (int i = 0; i < 14; i++) seen[tm_partitioner_next(&p)] = 1;
        for (int c = 0; c < 7; c++) fed[c] += seen[c];
    }
    for (int c = 0; c < 7; c++) ck_assert_int_eq(fed[c], 1);
}
END_TEST

START_TEST(shuffle_spreads_over_all_channels) {
    tm_partitioner p;
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__SHUFFLE, 5, 0, 1, 128);
    int count[5] = {0};
    for (int i = 0; i < 10000; i++) {
        int c = tm_partitioner_next(&p);
        ck_assert(c >= 0 && c < 5);
        count[c]++;
    }
    for (int c = 0; c < 5; c++) ck_assert_int_gt(count[c], 1500);
}
END_TEST

START_TEST(hash_follows_key_groups) {
    tm_partitioner p;
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__HASH, 3, 0, 1, 128);
    for (uint64_t h = 0; h < 100000; h += 7919) {
        int kg = row_key_group(h * 0x9e3779b97f4a7c15ULL, 128);
        ck_assert_int_eq(tm_partitioner_hash(&p, h * 0x9e3779b97f4a7c15ULL), row_key_group_to_subtask(kg, 128, 3));
    }
    /* key group k of max parallelism 4 at parallelism 2: 0,1 -> 0; 2,3 -> 1 */
    tm_partitioner_init(&p, FLINT__GRAPH__PARTITIONER__HASH, 2, 0, 1, 4);
    ck_assert_int_eq(tm_partitioner_hash(&p, 4 + 1), 0);
    ck_assert_int_eq(tm_partitioner_hash(&p, 4 + 2), 1);
    ck_assert_int_eq(tm_partitioner_hash(&p, 3), 1);
}
END_TEST

/* ---- mailbox ---------------------------------------------------------------------------------- */

static int signals;
static void count_signal(void *ud) { __atomic_add_fetch((int *)ud, 1, __ATOMIC_SEQ_CST); }

typedef struct order {
    int log[64];
    int n;
    tm_mailbox *mb;
} order;

static void record(void *arg) {
    order *o = *(order **)arg;
    int v = ((int *)arg)[sizeof(order *) / sizeof(int)];
    o->log[o->n++] = v;
}

typedef struct mail_arg {
    order *o;
    int v;
} mail_arg;

static void record2(void *arg) {
    mail_arg *a = arg;
    a->o->log[a->o->n++] = a->v;
}

static mail_arg late = {NULL, 99};
static void put_another(void *arg) {
    mail_arg *a = arg;
    a->o->log[a->o->n++] = a->v;
    late.o = a->o;
    tm_mailbox_put(a->o->mb, record2, &late);
}

START_TEST(mailbox_runs_in_order) {
    (void)record;
    order o = {0};
    signals = 0;
    o.mb = tm_mailbox_new(count_signal, &signals);
    ck_assert(!tm_mailbox_has_mail(o.mb));
    ck_assert_int_eq(tm_mailbox_run(o.mb), 0);
    mail_arg a[3] = {{&o, 1}, {&o, 2}, {&o, 3}};
    tm_mailbox_put(o.mb, record2, &a[0]);
    tm_mailbox_put(o.mb, put_another, &a[1]);
    tm_mailbox_put(o.mb, record2, &a[2]);
    ck_assert(tm_mailbox_has_mail(o.mb));
    ck_assert_int_eq(signals, 3);
    ck_assert_int_eq(tm_mailbox_run(o.mb), 3);
    ck_assert_int_eq(o.n, 3);
    ck_assert_int_eq(o.log[0], 1);
    ck_assert_int_eq(o.log[1], 2);
    ck_assert_int_eq(o.log[2], 3);
    /* The mail put while running runs on the next call. */
    ck_assert(tm_mailbox_has_mail(o.mb));
    ck_assert_int_eq(tm_mailbox_run(o.mb), 1);
    ck_assert_int_eq(o.log[3], 99);
    tm_mailbox_put(o.mb, record2, &a[0]); /* dropped by free */
    tm_mailbox_free(o.mb);
}
END_TEST

typedef struct putter {
    tm_mailbox *mb;
    int *counter;
} putter;

static void bump(void *arg) { (*(int *)arg)++; }

static void *put_many(void *arg) {
    putter *p = arg;
    for (int i = 0; i < 1000; i++) tm_mailbox_put(p->mb, bump, p->counter);
    return NULL;
}

START_TEST(mailbox_from_other_threads_wakes_the_task) {
    tm_waker *w = tm_waker_new();
    tm_mailbox *mb = tm_mailbox_new((void (*)(void *))tm_waker_signal, w);
    int counter = 0;
    putter p = {mb, &counter};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, put_many, &p);
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    while (counter < 4000 && time_mono_ms() < deadline) {
        tm_waker_wait(w, time_mono_ms() + 1000);
        tm_mailbox_run(mb);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    tm_mailbox_run(mb);
    ck_assert_int_eq(counter, 4000);
    tm_mailbox_free(mb);
    tm_waker_free(w);
}
END_TEST

/* ---- artifacts over loopback RPC ------------------------------------------------------------------ */

static char *example_path(const char *name) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    return xasprintf("%s/../examples/%s", exe, name);
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s (build the examples first)", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = xmalloc(*len);
    ck_assert_int_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

typedef struct fake_jm {
    struct event_base *base;
    rpc_server *srv;
    uint8_t *bytes;
    size_t len;
    bool corrupt;
    int fetches;
} fake_jm;

static void jm_on_message(rpc_conn *c, rpc_envelope *env, void *ud) {
    fake_jm *jm = ud;
    ck_assert_int_eq(env->body_case, FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT);
    jm->fetches++;
    Flint__Rpc__FetchArtifactResponse r = FLINT__RPC__FETCH_ARTIFACT_RESPONSE__INIT;
    r.artifact.data = jm->bytes;
    r.artifact.len = jm->corrupt ? jm->len / 2 : jm->len;
    rpc_envelope reply = FLINT__RPC__ENVELOPE__INIT;
    reply.body_case = FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT_RESPONSE;
    reply.fetch_artifact_response = &r;
    rpc_reply(c, env, &reply);
}

static void jm_on_accept(rpc_conn *c, void *ud) {
    rpc_handlers h = {.on_message = jm_on_message, .ud = ud};
    rpc_conn_set_handlers(c, &h);
}

typedef struct result {
    int calls, status;
    char error[600];
    void *dl;
    struct event_base *base;
} result;

static void on_ready(int status, const char *error, void *dl, void *ud) {
    result *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    r->dl = dl;
    event_base_loopbreak(r->base);
}

static void on_client_open(rpc_conn *c, void *ud) { event_base_loopbreak(ud); }

START_TEST(artifacts_fetch_verify_load_release) {
    fake_jm jm = {0};
    jm.base = event_base_new();
    char *so = example_path("wordcount.so");
    jm.bytes = read_file(so, &jm.len);
    char sha[SHA256_HEX_LEN];
    sha256_hex(jm.bytes, jm.len, sha);
    flint_err err = {0};
    jm.srv = rpc_listen(jm.base, "127.0.0.1", 0, 1 << 26, jm_on_accept, &jm, &err);
    ck_assert_msg(jm.srv != NULL, "%s", err.msg);
    rpc_handlers h = {.on_open = on_client_open, .ud = jm.base};
    rpc_conn *c = rpc_connect(jm.base, "127.0.0.1", rpc_server_port(jm.srv), 1 << 26, &h, &err);
    ck_assert_ptr_nonnull(c);
    event_base_dispatch(jm.base);

    char tmp[] = "/tmp/flint-check-tm-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    /* A directory left by a killed taskmanager (a pid that is gone) is removed at start. */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char *stale = xasprintf("%s/flint-tm-%ld", tmp, (long)child);
    char *stale_file = xasprintf("%s/artifacts", stale);
    ck_assert_int_eq(mkdir(stale, 0700), 0);
    ck_assert_int_eq(mkdir(stale_file, 0700), 0);
    char *dirs = xasprintf(" %s ;/elsewhere", tmp);
    tm_artifacts *a = tm_artifacts_new(dirs, &err);
    ck_assert_int_ne(access(stale, F_OK), 0);
    free(stale);
    free(stale_file);
    ck_assert_msg(a != NULL, "%s", err.msg);
    char *want_dir = xasprintf("%s/flint-tm-%ld/artifacts", tmp, (long)getpid());
    ck_assert_str_eq(tm_artifacts_dir(a), want_dir);

    /* Two tasks of job A: one fetch, one load. */
    result r1 = {.base = jm.base}, r2 = {.base = jm.base};
    tm_artifacts_acquire(a, c, 10000, "jobA", sha, on_ready, &r1);
    tm_artifacts_acquire(a, c, 10000, "jobA", sha, on_ready, &r2);
    ck_assert_int_eq(r1.calls + r2.calls, 0);
    while (r1.calls + r2.calls < 2) event_base_dispatch(jm.base);
    ck_assert_int_eq(jm.fetches, 1);
    ck_assert_int_eq(r1.status, FLINT_OK);
    ck_assert_ptr_nonnull(r1.dl);
    ck_assert_ptr_eq(r1.dl, r2.dl);
    ck_assert_ptr_nonnull(dlsym(r1.dl, "tokenize"));
    char *cached = xasprintf("%s/%s.so", want_dir, sha);
    ck_assert_int_eq(access(cached, R_OK), 0);

    /* A second job: from the cache, at once. */
    result r3 = {.base = jm.base};
    tm_artifacts_acquire(a, c, 10000, "jobB", sha, on_ready, &r3);
    ck_assert_int_eq(r3.calls, 1);
    ck_assert_int_eq(jm.fetches, 1);

    /* Released jobs are unloaded once their tasks are gone. */
    tm_artifacts_release_job(a, "jobA");
    ck_assert(tm_artifacts_job_loaded(a, "jobA"));
    tm_artifacts_put(a, "jobA");
    tm_artifacts_put(a, "jobA");
    ck_assert(!tm_artifacts_job_loaded(a, "jobA"));
    tm_artifacts_put(a, "jobB");
    tm_artifacts_release_job(a, "jobB");
    ck_assert(!tm_artifacts_job_loaded(a, "jobB"));

    /* A corrupt transfer is refused; so is a bad sha; no artifact needs nothing. */
    jm.corrupt = true;
    char other[SHA256_HEX_LEN];
    sha256_hex("other", 5, other);
    result r4 = {.base = jm.base};
    tm_artifacts_acquire(a, c, 10000, "jobC", other, on_ready, &r4);
    while (!r4.calls) event_base_dispatch(jm.base);
    ck_assert_int_eq(r4.status, FLINT_PROTOCOL);
    ck_assert_ptr_nonnull(strstr(r4.error, "has sha256"));
    tm_artifacts_put(a, "jobC");
    result r5 = {.base = jm.base};
    tm_artifacts_acquire(a, c, 10000, "jobD", "not-a-sha", on_ready, &r5);
    ck_assert_int_eq(r5.status, FLINT_INVALID);
    result r6 = {.base = jm.base};
    tm_artifacts_acquire(a, c, 10000, "jobE", "", on_ready, &r6);
    ck_assert_int_eq(r6.status, FLINT_OK);
    ck_assert_ptr_null(r6.dl);
    /* Without a jobmanager connection an uncached artifact fails at once. */
    result r7 = {.base = jm.base};
    tm_artifacts_acquire(a, NULL, 10000, "jobF", other, on_ready, &r7);
    ck_assert_int_eq(r7.calls, 1);
    ck_assert_ptr_nonnull(strstr(r7.error, "not connected"));
    tm_artifacts_put(a, "jobF");

    rpc_close(c);
    tm_artifacts_free(a);
    char *root = xasprintf("%s/flint-tm-%ld", tmp, (long)getpid());
    ck_assert_int_ne(access(root, F_OK), 0); /* removed */
    rmdir(tmp);
    rpc_server_free(jm.srv);
    event_base_free(jm.base);
    free(root);
    free(cached);
    free(want_dir);
    free(dirs);
    free(jm.bytes);
    free(so);
}
END_TEST

/* ---- whole tasks ---------------------------------------------------------------------------------------- */

static void chain_to(Flint__Graph__OperatorDef *d, int target) {
    d->chained_outputs = xrealloc(d->chained_outputs, (d->n_chained_outputs + 1) * sizeof(int32_t));
    d->chained_outputs[d->n_chained_outputs++] = target;
}

static void output_edge(Flint__Graph__OperatorDef *d, int edge) {
    d->output_edges = xrealloc(d->output_edges, (d->n_output_edges + 1) * sizeof(int32_t));
    d->output_edges[d->n_output_edges++] = edge;
}

static Flint__Graph__JobEdge *mkedge(int id, Flint__Graph__Partitioner part, const char *schema, int key_field) {
    Flint__Graph__JobEdge *e = XNEW(Flint__Graph__JobEdge);
    flint__graph__job_edge__init(e);
    e->id = id;
    e->partitioner = part;
    e->schema = xstrdup(schema);
    if (key_field >= 0) {
        e->key_fields = xcalloc(1, sizeof(int32_t));
        e->key_fields[0] = key_field;
        e->n_key_fields = 1;
    }
    return e;
}

/* A deployment descriptor of a vertex (of parallelism p) made of n operators. */
static Flint__Rpc__TaskDeploymentDescriptor *mktdd(const char *vname, int subtask, int p, int n,
                                                   Flint__Graph__OperatorDef **ops) {
    Flint__Rpc__TaskDeploymentDescriptor *d = XNEW(Flint__Rpc__TaskDeploymentDescriptor);
    flint__rpc__task_deployment_descriptor__init(d);
    d->job_id = xstrdup("00112233445566778899aabbccddeeff");
    d->job_name = xstrdup("test");
    d->execution_id = xasprintf("%s-%d", vname, subtask);
    d->subtask_index = subtask;
    d->artifact_sha256 = xstrdup("");
    d->max_parallelism = 128;
    d->buffer_timeout_ms = 10;
    Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(v);
    v->name = xstrdup(vname);
    v->parallelism = p;
    v->max_parallelism = 128;
    v->operators = xcalloc((size_t)n, sizeof *v->operators);
    for (int i = 0; i < n; i++) v->operators[v->n_operators++] = ops[i];
    d->vertex = v;
    return d;
}

static void add_out(Flint__Rpc__TaskDeploymentDescriptor *d, Flint__Graph__JobEdge *e, const char *pid, int nsub) {
    d->out_edges = xrealloc(d->out_edges, (d->n_out_edges + 1) * sizeof *d->out_edges);
    d->out_edges[d->n_out_edges++] = e;
    Flint__Rpc__ResultPartitionDescriptor *pd = XNEW(Flint__Rpc__ResultPartitionDescriptor);
    flint__rpc__result_partition_descriptor__init(pd);
    pd->edge_id = e->id;
    pd->partition_id = xstrdup(pid);
    pd->num_subpartitions = (uint32_t)nsub;
    d->partitions = xrealloc(d->partitions, (d->n_partitions + 1) * sizeof *d->partitions);
    d->partitions[d->n_partitions++] = pd;
}

/* One gate reading subpartition sub of the given partitions (one channel each). */
static void add_gate(Flint__Rpc__TaskDeploymentDescriptor *d, Flint__Graph__JobEdge *e, int nch,
                     const char *const *pids, int sub, const char *rid, int port) {
    d->in_edges = xrealloc(d->in_edges, (d->n_in_edges + 1) * sizeof *d->in_edges);
    d->in_edges[d->n_in_edges++] = e;
    Flint__Rpc__InputGateDescriptor *g = XNEW(Flint__Rpc__InputGateDescriptor);
    flint__rpc__input_gate_descriptor__init(g);
    g->edge_id = e->id;
    g->channels = xcalloc((size_t)nch, sizeof *g->channels);
    for (int i = 0; i < nch; i++) {
        Flint__Rpc__InputChannelDescriptor *c = XNEW(Flint__Rpc__InputChannelDescriptor);
        flint__rpc__input_channel_descriptor__init(c);
        c->partition_id = xstrdup(pids[i]);
        c->subpartition = (uint32_t)sub;
        c->producer_resource_id = xstrdup(rid);
        c->host = xstrdup("127.0.0.1");
        c->data_port = (uint32_t)port;
        g->channels[g->n_channels++] = c;
    }
    d->gates = xrealloc(d->gates, (d->n_gates + 1) * sizeof *d->gates);
    d->gates[d->n_gates++] = g;
}

/* Copies, so that the edge can be in a producer's and a consumer's descriptor. */
static Flint__Graph__JobEdge *edge_copy(const Flint__Graph__JobEdge *e) {
    uint8_t buf[1024];
    size_t n = flint__graph__job_edge__pack(e, buf);
    return flint__graph__job_edge__unpack(NULL, n, buf);
}

/* The states a task reported, in order. */
typedef struct states {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tm_task_state seq[16];
    int n;
    char error[512];
} states;

static void on_state(tm_task *t, tm_task_state s, const char *error, void *ud) {
    states *st = ud;
    pthread_mutex_lock(&st->mu);
    if (st->n < 16) st->seq[st->n++] = s;
    if (error) snprintf(st->error, sizeof st->error, "%s", error);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void states_init(states *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void states_destroy(states *s) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Wait for a terminal state; returns it. */
static tm_task_state wait_end(states *s) {
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    pthread_mutex_lock(&s->mu);
    while ((s->n == 0 || !tm_task_state_is_terminal(s->seq[s->n - 1])) && time_mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    tm_task_state last = s->n ? s->seq[s->n - 1] : TM_TASK_DEPLOYING;
    pthread_mutex_unlock(&s->mu);
    ck_assert_msg(tm_task_state_is_terminal(last), "the task did not end in time");
    return last;
}

static bool wait_state(states *s, tm_task_state want) {
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool got = false;
        for (int i = 0; i < s->n; i++) got |= s->seq[i] == want;
        pthread_mutex_unlock(&s->mu);
        if (got) return true;
        if (time_mono_ms() > deadline) return false;
        usleep(2000);
    }
}

static tm_net *mknet(const char *rid, int *port) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    tm_net *n = tm_net_new(cfg, rid, &err);
    config_free(cfg);
    ck_assert_msg(n != NULL, "%s", err.msg);
    if (port) {
        *port = tm_net_listen(n, "127.0.0.1", 0, &err);
        ck_assert_msg(*port > 0, "%s", err.msg);
    }
    return n;
}

typedef struct running {
    Flint__Rpc__TaskDeploymentDescriptor *tdd;
    tm_task *task;
    states st;
} running;

/* AcknowledgeCheckpoints the tasks sent (execution id, checkpoint id). */
static struct {
    pthread_mutex_t mu;
    char exec[32][40];
    int64_t id[32];
    int n;
} acks = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void capture_ack(void *ud, const Flint__Rpc__Envelope *env) {
    (void)ud;
    if (env->body_case != FLINT__RPC__ENVELOPE__BODY_ACKNOWLEDGE_CHECKPOINT) return;
    pthread_mutex_lock(&acks.mu);
    if (acks.n < 32) {
        snprintf(acks.exec[acks.n], sizeof acks.exec[0], "%s", env->acknowledge_checkpoint->execution_id);
        acks.id[acks.n++] = env->acknowledge_checkpoint->checkpoint_id;
    }
    pthread_mutex_unlock(&acks.mu);
}

static bool acked(const char *exec, int64_t id) {
    int64_t deadline = time_mono_ms() + DEADLINE_MS;
    for (;;) {
        bool got = false;
        pthread_mutex_lock(&acks.mu);
        for (int i = 0; i < acks.n; i++) got |= acks.id[i] == id && strcmp(acks.exec[i], exec) == 0;
        pthread_mutex_unlock(&acks.mu);
        if (got) return true;
        if (time_mono_ms() > deadline) return false;
        usleep(2000);
    }
}

static void start(running *r, tm_net *net) {
    states_init(&r->st);
    tm_task_config cfg = {.net = net, .on_state = on_state, .ud = &r->st, .send_to_jm = capture_ack};
    r->task = tm_task_new(r->tdd, &cfg);
    flint_err err = {0};
    ck_assert_msg(tm_task_start(r->task, &err) == 0, "%s", err.msg);
}

static void finish(running *r) {
    tm_task_join(r->task);
    tm_task_free(r->task);
    flint__rpc__task_deployment_descriptor__free_unpacked(r->tdd, NULL);
    states_destroy(&r->st);
}

static char *tmpdir(void) {
    char tmpl[] = "/tmp/flint-check-tm-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static void rm_rf(const char *dir) {
    char *cmd = xasprintf("rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

/* Numbers in the file, one per line: count them and add them up. */
static void scan_numbers(const char *path, int64_t *count, int64_t *sum, int subtask, int parallelism) {
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    long long v;
    flint_schema *s;
    flint_schema_parse("value BIGINT", &s, NULL);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    while (fscanf(f, "%lld", &v) == 1) {
        (*count)++;
        *sum += v;
        if (parallelism > 1) { /* the value must be in the subtask its key group maps to */
            flint_row_builder_reset(&b);
            flint_row_set_long(&b, 0, v);
            flint_row r = flint_row_builder_row(&b);
            int f0 = 0;
            int kg = row_key_group(row_key_hash_row(&r, &f0, 1), 128);
            ck_assert_int_eq(row_key_group_to_subtask(kg, 128, parallelism), subtask);
        }
    }
    flint_row_builder_free(&b);
    flint_schema_free(s);
    fclose(f);
}

START_TEST(chain_without_network_finishes) {
    tm_net *net = mknet("tm-a", NULL);
    char *dir = tmpdir();
    Flint__Graph__OperatorDef *ops[2] = {
        mkop("source.sequence", "", "value BIGINT", "from", "1", "to", "5000", NULL),
        mkop("sink.text_file", "value BIGINT", "", "path", dir, NULL),
    };
    chain_to(ops[0], 1);
    running r = {.tdd = mktdd("seq", 0, 1, 2, ops)};
    start(&r, net);
    ck_assert_int_eq(wait_end(&r.st), TM_TASK_FINISHED);
    ck_assert_int_eq(r.st.n, 3);
    ck_assert_int_eq(r.st.seq[0], TM_TASK_INITIALIZING);
    ck_assert_int_eq(r.st.seq[1], TM_TASK_RUNNING);
    char *part = xasprintf("%s/part-0", dir);
    int64_t count = 0, sum = 0;
    scan_numbers(part, &count, &sum, 0, 1);
    ck_assert_int_eq(count, 5000);
    ck_assert_int_eq(sum, 5000LL * 5001 / 2);
    ck_assert_str_eq(tm_task_name(r.task), "seq (1/1)");
    /* One counter per direct hop: the sink's numRecordsIn is the source's numRecordsOut. */
    metric_set ms;
    metric_set_init(&ms);
    tm_task_metric_dump(r.task, &ms);
    const metric_value *out = metric_set_find(&ms, "source.sequence", "numRecordsOut");
    const metric_value *in = metric_set_find(&ms, "sink.text_file", "numRecordsIn");
    ck_assert(out && in);
    ck_assert_int_eq((int64_t)out->value, 5000);
    ck_assert_int_eq((int64_t)in->value, 5000);
    metric_set_clear(&ms);
    finish(&r);
    tm_net_free(net);
    rm_rf(dir);
    free(part);
    free(dir);
}
END_TEST

/* A producer (sequence 1..N, HASH on the value) on net A and two consumers (text files), one on
 * net A (a local channel) and one on net B (a remote channel). */
START_TEST(hash_exchange_over_local_and_remote_channels) {
    int port_a, port_b;
    tm_net *a = mknet("tm-a", &port_a), *b = mknet("tm-b", &port_b);
    char *dir = tmpdir();
    const int N = 20000;
    char to[16];
    snprintf(to, sizeof to, "%d", N);
    Flint__Graph__JobEdge *e = mkedge(1, FLINT__GRAPH__PARTITIONER__HASH, "value BIGINT", 0);
    Flint__Graph__OperatorDef *pops[1] = {mkop("source.sequence", "", "value BIGINT", "from", "1", "to", to, NULL)};
    output_edge(pops[0], 1);
    running prod = {.tdd = mktdd("producer", 0, 1, 1, pops)};
    const char *pid = "00112233445566778899aabbccddeeff.1.0.0";
    add_out(prod.tdd, edge_copy(e), pid, 2);
    running cons[2];
    for (int j = 0; j < 2; j++) {
        Flint__Graph__OperatorDef *cops[1] = {mkop("sink.text_file", "value BIGINT", "", "path", dir, NULL)};
        cons[j].tdd = mktdd("consumer", j, 2, 1, cops);
        add_gate(cons[j].tdd, edge_copy(e), 1, &pid, j, "tm-a", port_a);
    }
    start(&cons[1], b); /* consumers first: the partition appears later */
    start(&cons[0], a);
    usleep(20000);
    start(&prod, a);
    ck_assert_int_eq(wait_end(&prod.st), TM_TASK_FINISHED);
    for (int j = 0; j < 2; j++) ck_assert_msg(wait_end(&cons[j].st) == TM_TASK_FINISHED, "%s", cons[j].st.error);
    int64_t count = 0, sum = 0;
    for (int j = 0; j < 2; j++) {
        char *part = xasprintf("%s/part-%d", dir, j);
        int64_t c0 = count;
        scan_numbers(part, &count, &sum, j, 2);
        ck_assert_int_gt(count - c0, N / 4); /* both got a fair share */
        free(part);
    }
    ck_assert_int_eq(count, N);
    ck_assert_int_eq(sum, (int64_t)N * (N + 1) / 2);
    tm_task_metrics m;
    tm_task_metrics_get(prod.task, &m);
    ck_assert_int_eq(m.records_out, N);
    ck_assert_int_eq(m.records_in, 0);
    int64_t in = 0;
    for (int j = 0; j < 2; j++) {
        tm_task_metrics_get(cons[j].task, &m);
        in += m.records_in;
        ck_assert_int_gt(m.bytes_in, 0);
    }
    ck_assert_int_eq(in, N);
    finish(&prod);
    for (int j = 0; j < 2; j++) finish(&cons[j]);
    flint__graph__job_edge__free_unpacked(e, NULL);
    tm_net_free(b);
    tm_net_free(a);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* What the coordinator sends: a trigger (CHECKPOINT into dir), a completion or an abort. */
static void cp_message(running *r, int what, int64_t id, const char *dir) {
    Flint__Checkpoint__TriggerCheckpoint t = FLINT__CHECKPOINT__TRIGGER_CHECKPOINT__INIT;
    Flint__Checkpoint__NotifyCheckpointComplete c = FLINT__CHECKPOINT__NOTIFY_CHECKPOINT_COMPLETE__INIT;
    Flint__Checkpoint__NotifyCheckpointAborted a = FLINT__CHECKPOINT__NOTIFY_CHECKPOINT_ABORTED__INIT;
    Flint__Rpc__Envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = what;
    t.job_id = c.job_id = a.job_id = r->tdd->job_id;
    t.execution_id = c.execution_id = a.execution_id = r->tdd->execution_id;
    t.checkpoint_id = c.checkpoint_id = a.checkpoint_id = id;
    t.type = FLINT__CHECKPOINT__CHECKPOINT_TYPE__CHECKPOINT;
    t.mode = FLINT__CHECKPOINT__CHECKPOINTING_MODE__EXACTLY_ONCE;
    char *target = xasprintf("%s/chk-%lld", dir, (long long)id), *shared = xasprintf("%s/shared", dir);
    if (what == FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT) ck_assert_int_eq(mkdir(target, 0755), 0);
    t.target_directory = target;
    t.shared_directory = shared;
    if (what == FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT) env.trigger_checkpoint = &t;   /* a oneof */
    else if (what == FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE) env.notify_checkpoint_complete = &c;
    else env.notify_checkpoint_aborted = &a;
    tm_task_checkpoint_message(r->task, &env);
    free(target);
    free(shared);
}

/* Checkpoints after tasks finish: a consumer whose producer finished, and whose final checkpoint
 * was aborted, gets no barrier any more; the coordinator triggers it directly, and it takes the
 * checkpoint (its input has ended) and finishes once that completed. */
START_TEST(downstream_of_finished_is_triggered) {
    int port;
    tm_net *net = mknet("tm-a", &port), *netb = mknet("tm-b", NULL);
    char *dir = tmpdir(), *out = xasprintf("%s/out", dir), *shared = xasprintf("%s/shared", dir);
    ck_assert_int_eq(mkdir(shared, 0755), 0);
    ck_assert_int_eq(mkdir(out, 0755), 0);
    Flint__Checkpoint__TaskCheckpointConfig cc = FLINT__CHECKPOINT__TASK_CHECKPOINT_CONFIG__INIT;
    cc.enabled = cc.final_checkpoints = true;
    cc.mode = FLINT__CHECKPOINT__CHECKPOINTING_MODE__EXACTLY_ONCE;
    cc.interval_ms = 1000;
    cc.job_directory = dir;
    cc.shared_directory = shared;
    cc.state_backend = "hashmap";
    Flint__Graph__JobEdge *e = mkedge(1, FLINT__GRAPH__PARTITIONER__FORWARD, "value BIGINT", 0);
    Flint__Graph__OperatorDef *pops[1] = {mkop("source.sequence", "", "value BIGINT", "from", "1", "to", "1000", NULL)};
    output_edge(pops[0], 1);
    running prod = {.tdd = mktdd("producer", 0, 1, 1, pops)};
    const char *pid = "00112233445566778899aabbccddeeff.1.0.0";
    add_out(prod.tdd, edge_copy(e), pid, 1);
    Flint__Graph__OperatorDef *cops[1] = {mkop("sink.text_file", "value BIGINT", "", "path", out, NULL)};
    running cons = {.tdd = mktdd("consumer", 0, 1, 1, cops)};
    add_gate(cons.tdd, edge_copy(e), 1, &pid, 0, "tm-a", port);
    prod.tdd->checkpointing = cons.tdd->checkpointing = &cc;
    start(&cons, netb);
    start(&prod, net);
    ck_assert(wait_state(&prod.st, TM_TASK_RUNNING));
    /* checkpoints through the producer until one is its final one: it finishes on its completion */
    int64_t id = 0;
    for (bool done = false; !done && id < 20;) {
        cp_message(&prod, FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT, ++id, dir);
        ck_assert(acked("producer-0", id) && acked("consumer-0", id));
        cp_message(&prod, FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE, id, dir);
        for (int i = 0; i < 50 && !(done = tm_task_ended(prod.task)); i++) usleep(10000);
        if (!done) cp_message(&cons, FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE, id, dir);
    }
    ck_assert_int_eq(wait_end(&prod.st), TM_TASK_FINISHED);
    /* the consumer's final checkpoint (the same one) is aborted for it: it waits */
    cp_message(&cons, FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_ABORTED, id, dir);
    usleep(200000);
    ck_assert(!tm_task_ended(cons.task));
    cp_message(&cons, FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT, ++id, dir);
    ck_assert(acked("consumer-0", id));
    cp_message(&cons, FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE, id, dir);
    ck_assert_msg(wait_end(&cons.st) == TM_TASK_FINISHED, "%s", cons.st.error);
    char *part = xasprintf("%s/part-0", out);
    int64_t count = 0, sum = 0;
    scan_numbers(part, &count, &sum, 0, 1);
    ck_assert_int_eq(count, 1000);
    free(part);
    prod.tdd->checkpointing = cons.tdd->checkpointing = NULL;   /* on the stack */
    finish(&prod);
    finish(&cons);
    flint__graph__job_edge__free_unpacked(e, NULL);
    tm_net_free(netb);
    tm_net_free(net);
    rm_rf(dir);
    free(shared);
    free(out);
    free(dir);
}
END_TEST

START_TEST(cancel_stops_an_unbounded_job) {
    tm_net *net = mknet("tm-a", NULL);
    Flint__Graph__JobEdge *e = mkedge(1, FLINT__GRAPH__PARTITIONER__REBALANCE, "id BIGINT, s STRING", -1);
    Flint__Graph__OperatorDef *pops[1] = {
        mkop("source.datagen", "", "id BIGINT, s STRING", "count", "-1", "rate", "0", NULL)};
    output_edge(pops[0], 1);
    running prod = {.tdd = mktdd("gen", 0, 1, 1, pops)};
    const char *pid = "00112233445566778899aabbccddeeff.1.0.0";
    add_out(prod.tdd, edge_copy(e), pid, 1);
    Flint__Graph__OperatorDef *cops[1] = {mkop("sink.blackhole", "id BIGINT, s STRING", "", NULL)};
    running cons = {.tdd = mktdd("hole", 0, 1, 1, cops)};
    add_gate(cons.tdd, edge_copy(e), 1, &pid, 0, "tm-a", 0);
    start(&prod, net);
    start(&cons, net);
    ck_assert(wait_state(&prod.st, TM_TASK_RUNNING));
    ck_assert(wait_state(&cons.st, TM_TASK_RUNNING));
    usleep(300000);
    tm_task_metrics m;
    tm_task_metrics_get(cons.task, &m);
    ck_assert_int_gt(m.records_in, 0);
    ck_assert(!tm_task_ended(prod.task));
    /* The consumer first: canceling the producer first may fail the consumer (its input ends in
     * an error) before its own cancel arrives, which is fine in a job but not in this test. */
    tm_task_cancel(cons.task);
    tm_task_cancel(cons.task); /* idempotent */
    ck_assert_int_eq(wait_end(&cons.st), TM_TASK_CANCELED);
    tm_task_cancel(prod.task);
    ck_assert_int_eq(wait_end(&prod.st), TM_TASK_CANCELED);
    ck_assert(tm_task_ended(prod.task));
    finish(&prod);
    finish(&cons);
    flint__graph__job_edge__free_unpacked(e, NULL);
    ck_assert_int_eq(tm_net_segments_available(net), tm_net_segments_total(net));
    tm_net_free(net);
}
END_TEST

/* The producer writes BIGINT rows but the consumer's edge says STRING: the consumer must fail with
 * a clear message, not crash. The producer is canceled (its consumer is gone). */
START_TEST(malformed_records_fail_the_consumer) {
    tm_net *net = mknet("tm-a", NULL);
    Flint__Graph__JobEdge *pe = mkedge(1, FLINT__GRAPH__PARTITIONER__FORWARD, "value BIGINT", -1);
    Flint__Graph__JobEdge *ce = mkedge(1, FLINT__GRAPH__PARTITIONER__FORWARD, "s STRING", -1);
    Flint__Graph__OperatorDef *pops[1] = {mkop("source.sequence", "", "value BIGINT", "from", "1000", "to", "2000", NULL)};
    output_edge(pops[0], 1);
    running prod = {.tdd = mktdd("producer", 0, 1, 1, pops)};
    const char *pid = "00112233445566778899aabbccddeeff.1.0.0";
    add_out(prod.tdd, pe, pid, 1);
    Flint__Graph__OperatorDef *cops[1] = {mkop("sink.blackhole", "s STRING", "", NULL)};
    running cons = {.tdd = mktdd("consumer", 0, 1, 1, cops)};
    add_gate(cons.tdd, ce, 1, &pid, 0, "tm-a", 0);
    start(&prod, net);
    start(&cons, net);
    ck_assert_int_eq(wait_end(&cons.st), TM_TASK_FAILED);
    ck_assert_msg(strstr(cons.st.error, "malformed record on input gate 0, channel 0") != NULL, "%s", cons.st.error);
    tm_task_state ps = wait_end(&prod.st);
    if (ps != TM_TASK_FINISHED) tm_task_cancel(prod.task);
    finish(&prod);
    finish(&cons);
    tm_net_free(net);
}
END_TEST

START_TEST(bad_descriptors_fail_cleanly) {
    tm_net *net = mknet("tm-a", NULL);
    /* A sink without input. */
    Flint__Graph__OperatorDef *ops[1] = {mkop("sink.blackhole", "value BIGINT", "", NULL)};
    running r = {.tdd = mktdd("lonely", 0, 1, 1, ops)};
    start(&r, net);
    ck_assert_int_eq(wait_end(&r.st), TM_TASK_FAILED);
    ck_assert_ptr_nonnull(strstr(r.st.error, "needs an input"));
    finish(&r);
    /* An operator feeding an edge the task has no partition for. */
    Flint__Graph__OperatorDef *ops2[1] = {mkop("source.sequence", "", "value BIGINT", "from", "1", "to", "2", NULL)};
    output_edge(ops2[0], 7);
    running r2 = {.tdd = mktdd("dangling", 0, 1, 1, ops2)};
    start(&r2, net);
    ck_assert_int_eq(wait_end(&r2.st), TM_TASK_FAILED);
    ck_assert_ptr_nonnull(strstr(r2.st.error, "no partition for it"));
    finish(&r2);
    tm_net_free(net);
}
END_TEST

Suite *tm_task_suite(void) {
    Suite *s = suite_create("tm_task");
    TCase *tc = tcase_create("partitioner");
    tcase_add_test(tc, forward_and_broadcast);
    tcase_add_test(tc, rebalance_round_robin_from_subtask_offset);
    tcase_add_test(tc, rescale_subsets);
    tcase_add_test(tc, shuffle_spreads_over_all_channels);
    tcase_add_test(tc, hash_follows_key_groups);
    suite_add_tcase(s, tc);
    tc = tcase_create("mailbox");
    tcase_add_test(tc, mailbox_runs_in_order);
    tcase_add_test(tc, mailbox_from_other_threads_wakes_the_task);
    suite_add_tcase(s, tc);
    tc = tcase_create("artifacts");
    tcase_add_test(tc, artifacts_fetch_verify_load_release);
    suite_add_tcase(s, tc);
    tc = tcase_create("tasks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, chain_without_network_finishes);
    tcase_add_test(tc, hash_exchange_over_local_and_remote_channels);
    tcase_add_test(tc, cancel_stops_an_unbounded_job);
    tcase_add_test(tc, downstream_of_finished_is_triggered);
    tcase_add_test(tc, malformed_records_fail_the_consumer);
    tcase_add_test(tc, bad_descriptors_fail_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    evthread_use_pthreads();
    SRunner *sr = srunner_create(tm_task_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

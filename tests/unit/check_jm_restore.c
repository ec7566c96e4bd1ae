/* Unit tests of restore on the jobmanager's side (jm_restore): key-group ranges, keyed state
 * redistributed for a new parallelism (2 -> 4, 4 -> 2, 3 -> 5: every key group restored exactly
 * once, full handles cut to the new ranges), incremental handles passed whole, operator list state
 * round robin, union state to all, broadcast state one copy each, source splits and pending
 * commits round robin (kept in place at the same parallelism), mapping by operator id with
 * --allowNonRestoredState, max parallelism checks, operator ids, savepoint paths and names. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_jm_helpers.h"
#include "jm_restore.h"
#include "util/log.h"

#define MAXP 128

static char tmp[64];

static void setup(void) {
    snprintf(tmp, sizeof tmp, "/tmp/check_jm_restore.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

/* A one-vertex graph at parallelism p with operator ids assigned. */
static Flint__Graph__JobGraph *graph(int p) {
    Flint__Graph__JobGraph *g = test_graph(TEST_JOB_ID, 1, &p, NULL, 0, NULL);
    flint_err err = {0};
    ck_assert_int_eq(jm_graph_assign_operator_ids(g, &err), 0);
    return g;
}

static void add(void ***arr, size_t *n, void *item) {
    *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = item;
}

static Flint__Checkpoint__NamedOperatorState *named(const char *name, int mode, int n, int64_t base) {
    Flint__Checkpoint__NamedOperatorState *s = xmalloc(sizeof *s);
    flint__checkpoint__named_operator_state__init(s);
    s->name = xstrdup(name);
    s->mode = mode;
    s->n_offsets = (size_t)n;
    s->offsets = xmalloc((size_t)n * sizeof *s->offsets);
    for (int i = 0; i < n; i++) s->offsets[i] = base + i;
    return s;
}

/* Metadata of operator op_id at parallelism oldp: per subtask a full keyed handle of its key
 * groups (offset of key group k = 10 k) in file "keyed-<s>", operator state in "op-<s>" (3 split
 * elements at offsets 100 s + 0..2, one union element, one broadcast element), one source split
 * and one pending commit named after the subtask. */
static Flint__Checkpoint__CheckpointMetadata *meta(const char *op_id, int oldp) {
    Flint__Checkpoint__CheckpointMetadata *m = xmalloc(sizeof *m);
    flint__checkpoint__checkpoint_metadata__init(m);
    m->format_version = JM_METADATA_VERSION;
    m->job_id = xstrdup(TEST_JOB_ID);
    m->checkpoint_id = 42;
    m->is_savepoint = true;
    Flint__Checkpoint__OperatorState *o = xmalloc(sizeof *o);
    flint__checkpoint__operator_state__init(o);
    o->operator_id = xstrdup(op_id);
    o->name = xstrdup("Map");
    o->parallelism = oldp;
    o->max_parallelism = MAXP;
    for (int s = 0; s < oldp; s++) {
        Flint__Checkpoint__OperatorSubtaskState *st = xmalloc(sizeof *st);
        flint__checkpoint__operator_subtask_state__init(st);
        st->operator_id = xstrdup(op_id);
        st->subtask = s;
        st->state_size = 1000;
        Flint__Checkpoint__KeyedStateHandle *h = xmalloc(sizeof *h);
        flint__checkpoint__keyed_state_handle__init(h);
        h->format = xstrdup("canonical-v1");
        h->key_group_range = xmalloc(sizeof *h->key_group_range);
        flint__checkpoint__key_group_range__init(h->key_group_range);
        jm_key_group_range(MAXP, oldp, s, &h->key_group_range->start, &h->key_group_range->end);
        int n = h->key_group_range->end - h->key_group_range->start + 1;
        h->n_key_group_offsets = (size_t)n;
        h->key_group_offsets = xmalloc((size_t)n * sizeof *h->key_group_offsets);
        for (int k = 0; k < n; k++) h->key_group_offsets[k] = 10 * (h->key_group_range->start + k);
        h->file = xmalloc(sizeof *h->file);
        flint__checkpoint__stream_state_handle__init(h->file);
        h->file->path = xasprintf("keyed-%d", s);
        h->state_size = 1000;
        add((void ***)&st->keyed_state, &st->n_keyed_state, h);

        Flint__Checkpoint__OperatorStateHandle *oh = xmalloc(sizeof *oh);
        flint__checkpoint__operator_state_handle__init(oh);
        oh->file = xmalloc(sizeof *oh->file);
        flint__checkpoint__stream_state_handle__init(oh->file);
        oh->file->path = xasprintf("op-%d", s);
        add((void ***)&oh->states, &oh->n_states,
            named("list", FLINT__CHECKPOINT__DISTRIBUTION_MODE__SPLIT_DISTRIBUTE, 3, 100 * s));
        add((void ***)&oh->states, &oh->n_states, named("union", FLINT__CHECKPOINT__DISTRIBUTION_MODE__UNION, 1, 50));
        add((void ***)&oh->states, &oh->n_states,
            named("bcast", FLINT__CHECKPOINT__DISTRIBUTION_MODE__BROADCAST, 1, 70));
        add((void ***)&st->operator_state, &st->n_operator_state, oh);

        Flint__Checkpoint__SourceSplitState *sp = xmalloc(sizeof *sp);
        flint__checkpoint__source_split_state__init(sp);
        sp->split_id = xasprintf("split-%d", s);
        sp->position = 1000 + s;
        add((void ***)&st->source_splits, &st->n_source_splits, sp);
        Flint__Checkpoint__PendingCommit *pc = xmalloc(sizeof *pc);
        flint__checkpoint__pending_commit__init(pc);
        pc->id = xasprintf("part-%d", s);
        pc->checkpoint_id = 42;
        add((void ***)&st->pending_commits, &st->n_pending_commits, pc);
        add((void ***)&o->subtasks, &o->n_subtasks, st);
    }
    add((void ***)&m->operators, &m->n_operators, o);
    return m;
}

static jm_restore *plan_for(Flint__Graph__JobGraph *g, int oldp) {
    jm_restore *r = NULL;
    flint_err err = {0};
    char path[200];
    snprintf(path, sizeof path, "%s/sp/_metadata", tmp);
    int rc = jm_restore_new(meta(g->vertices[0]->operators[0]->operator_id, oldp), path, g, MAXP, false, &r, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    return r;
}

/* Restore oldp -> newp and check every piece of state lands exactly once (or as specified). */
static void rescale(int oldp, int newp) {
    Flint__Graph__JobGraph *g = graph(newp);
    jm_restore *r = plan_for(g, oldp);
    int covered[MAXP] = {0};
    int list_elems[64] = {0}, splits[16] = {0}, commits[16] = {0};
    int union_total = 0, bcast_total = 0;
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s/sp/", tmp);
    for (int i = 0; i < newp; i++) {
        Flint__Checkpoint__TaskRestore *t = jm_restore_task(r, g->vertices[0], newp, MAXP, i);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->checkpoint_id, 42);
        ck_assert(t->from_savepoint);
        int s, e;
        jm_key_group_range(MAXP, newp, i, &s, &e);
        ck_assert_int_eq(t->key_group_range->start, s);
        ck_assert_int_eq(t->key_group_range->end, e);
        ck_assert_int_eq(t->n_operators, 1);
        Flint__Checkpoint__OperatorRestore *o = t->operators[0];
        for (size_t k = 0; k < o->n_keyed_state; k++) {
            Flint__Checkpoint__KeyedStateHandle *h = o->keyed_state[k];
            ck_assert_int_ge(h->key_group_range->start, s);
            ck_assert_int_le(h->key_group_range->end, e);
            ck_assert_int_eq(h->n_key_group_offsets, h->key_group_range->end - h->key_group_range->start + 1);
            ck_assert_msg(strncmp(h->file->path, prefix, strlen(prefix)) == 0, "%s", h->file->path);
            for (int kg = h->key_group_range->start; kg <= h->key_group_range->end; kg++) {
                covered[kg]++;
                ck_assert_int_eq(h->key_group_offsets[kg - h->key_group_range->start], 10 * kg);
                /* the file is the old subtask's that owned the key group */
                char want[300];
                snprintf(want, sizeof want, "%skeyed-%d", prefix, jm_key_group_subtask(MAXP, oldp, kg));
                ck_assert_str_eq(h->file->path, want);
            }
        }
        int u = 0, b = 0;
        for (size_t k = 0; k < o->n_operator_state; k++) {
            Flint__Checkpoint__OperatorStateHandle *oh = o->operator_state[k];
            ck_assert(oh->file->path[0] == '/');
            for (size_t n = 0; n < oh->n_states; n++) {
                Flint__Checkpoint__NamedOperatorState *ns = oh->states[n];
                if (!strcmp(ns->name, "list"))
                    for (size_t x = 0; x < ns->n_offsets; x++) list_elems[ns->offsets[x] / 100 * 3 + ns->offsets[x] % 100]++;
                if (!strcmp(ns->name, "union")) u += (int)ns->n_offsets;
                if (!strcmp(ns->name, "bcast")) b += (int)ns->n_offsets;
            }
        }
        ck_assert_int_eq(u, oldp);   /* union: every element */
        ck_assert_int_eq(b, 1);      /* broadcast: one copy */
        union_total += u;
        bcast_total += b;
        for (size_t k = 0; k < o->n_source_splits; k++) splits[o->source_splits[k]->position - 1000]++;
        for (size_t k = 0; k < o->n_pending_commits; k++) commits[atoi(o->pending_commits[k]->id + 5)]++;
        if (oldp == newp) {
            ck_assert_int_eq(o->n_source_splits, 1);
            ck_assert_int_eq(o->source_splits[0]->position, 1000 + i);
        }
        jm_restore_task_free(t);
    }
    for (int kg = 0; kg < MAXP; kg++) ck_assert_msg(covered[kg] == 1, "key group %d restored %d times", kg, covered[kg]);
    for (int x = 0; x < 3 * oldp; x++) ck_assert_int_eq(list_elems[x], 1);
    for (int x = 0; x < oldp; x++) {
        ck_assert_int_eq(splits[x], 1);
        ck_assert_int_eq(commits[x], 1);
    }
    ck_assert_int_eq(union_total, oldp * newp);
    ck_assert_int_eq(bcast_total, newp);
    jm_restore_free(r);
    flint__graph__job_graph__free_unpacked(g, NULL);
}

START_TEST(key_group_ranges) {
    /* Flink's KeyGroupRangeAssignment: contiguous, covering, consistent with the owner rule */
    int ps[] = {1, 2, 3, 4, 5, 7, 128};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        int p = ps[k], next = 0;
        for (int i = 0; i < p; i++) {
            int s, e;
            jm_key_group_range(MAXP, p, i, &s, &e);
            ck_assert_int_eq(s, next);
            ck_assert_int_ge(e, s);
            for (int kg = s; kg <= e; kg++) ck_assert_int_eq(jm_key_group_subtask(MAXP, p, kg), i);
            next = e + 1;
        }
        ck_assert_int_eq(next, MAXP);
    }
    int s, e;
    jm_key_group_range(128, 3, 1, &s, &e);
    ck_assert_int_eq(s, 43);
    ck_assert_int_eq(e, 85);
}
END_TEST

START_TEST(rescale_2_to_4) { rescale(2, 4); }
END_TEST
START_TEST(rescale_4_to_2) { rescale(4, 2); }
END_TEST
START_TEST(rescale_3_to_5) { rescale(3, 5); }
END_TEST
START_TEST(same_parallelism_keeps_state_in_place) { rescale(3, 3); }
END_TEST

/* A source with splits only (no keyed, operator state or commits), 2 -> 4: subtasks 2 and 3 get
 * no split but still an (empty) restore, so they restore owning none instead of starting over. */
START_TEST(sources_dealt_no_split_still_restore) {
    Flint__Graph__JobGraph *g = graph(4);
    jm_restore *r = NULL;
    flint_err err = {0};
    Flint__Checkpoint__CheckpointMetadata *m = meta(g->vertices[0]->operators[0]->operator_id, 2);
    for (size_t s = 0; s < m->operators[0]->n_subtasks; s++) {
        Flint__Checkpoint__OperatorSubtaskState *st = m->operators[0]->subtasks[s];
        for (size_t k = 0; k < st->n_keyed_state; k++) flint__checkpoint__keyed_state_handle__free_unpacked(st->keyed_state[k], NULL);
        for (size_t k = 0; k < st->n_operator_state; k++)
            flint__checkpoint__operator_state_handle__free_unpacked(st->operator_state[k], NULL);
        for (size_t k = 0; k < st->n_pending_commits; k++) flint__checkpoint__pending_commit__free_unpacked(st->pending_commits[k], NULL);
        st->n_keyed_state = st->n_operator_state = st->n_pending_commits = 0;
    }
    ck_assert_int_eq(jm_restore_new(m, "/sp/_metadata", g, MAXP, false, &r, &err), 0);
    for (int i = 0; i < 4; i++) {
        Flint__Checkpoint__TaskRestore *t = jm_restore_task(r, g->vertices[0], 4, MAXP, i);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->n_operators, 1);
        ck_assert_int_eq(t->operators[0]->n_source_splits, i < 2 ? 1 : 0);
        if (i < 2) ck_assert_int_eq(t->operators[0]->source_splits[0]->position, 1000 + i);
        jm_restore_task_free(t);
    }
    jm_restore_free(r);
    flint__graph__job_graph__free_unpacked(g, NULL);
}
END_TEST

START_TEST(incremental_handles_pass_whole) {
    Flint__Graph__JobGraph *g = graph(4);
    Flint__Checkpoint__CheckpointMetadata *m = meta(g->vertices[0]->operators[0]->operator_id, 2);
    /* turn subtask 0's handle into an incremental one (no offsets, shared files) */
    Flint__Checkpoint__KeyedStateHandle *h = m->operators[0]->subtasks[0]->keyed_state[0];
    free(h->key_group_offsets);
    h->key_group_offsets = NULL;
    h->n_key_group_offsets = 0;
    Flint__Checkpoint__NamedFile *nf = xmalloc(sizeof *nf);
    flint__checkpoint__named_file__init(nf);
    nf->name = xstrdup("000001.sst");
    nf->handle = xmalloc(sizeof *nf->handle);
    flint__checkpoint__stream_state_handle__init(nf->handle);
    nf->handle->path = xstrdup("/abs/shared/000001.sst");
    add((void ***)&h->shared_files, &h->n_shared_files, nf);
    jm_restore *r = NULL;
    flint_err err = {0};
    ck_assert_int_eq(jm_restore_new(m, "/x/chk-3/_metadata", g, MAXP, false, &r, &err), 0);
    /* old subtask 0 owned 0..63: new subtasks 0 (0..31) and 1 (32..63) both get it whole */
    for (int i = 0; i < 2; i++) {
        Flint__Checkpoint__TaskRestore *t = jm_restore_task(r, g->vertices[0], 4, MAXP, i);
        ck_assert_int_eq(t->operators[0]->n_keyed_state, 1);
        Flint__Checkpoint__KeyedStateHandle *k = t->operators[0]->keyed_state[0];
        ck_assert_int_eq(k->key_group_range->start, 0);
        ck_assert_int_eq(k->key_group_range->end, 63);
        ck_assert_str_eq(k->shared_files[0]->handle->path, "/abs/shared/000001.sst");
        ck_assert_str_eq(k->file->path, "/x/chk-3/keyed-0");
        jm_restore_task_free(t);
    }
    Flint__Checkpoint__TaskRestore *t = jm_restore_task(r, g->vertices[0], 4, MAXP, 3);
    ck_assert_int_eq(t->operators[0]->n_keyed_state, 1);
    ck_assert_int_eq(t->operators[0]->keyed_state[0]->key_group_range->start, 96);
    jm_restore_task_free(t);
    jm_restore_free(r);
    flint__graph__job_graph__free_unpacked(g, NULL);
}
END_TEST

START_TEST(mapping_by_operator_id) {
    Flint__Graph__JobGraph *g = graph(2);
    jm_restore *r = NULL;
    flint_err err = {0};
    /* state of an operator the job does not have */
    Flint__Checkpoint__CheckpointMetadata *m = meta("00000000000000000000000000000abc", 2);
    ck_assert_int_eq(jm_restore_new(m, "/sp/_metadata", g, MAXP, false, &r, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "Cannot map checkpoint/savepoint state for operator "
                                  "00000000000000000000000000000abc") &&
                      strstr(err.msg, "--allowNonRestoredState") && strstr(err.msg, "/sp/_metadata"),
                  "%s", err.msg);
    m = meta("00000000000000000000000000000abc", 2);
    ck_assert_int_eq(jm_restore_new(m, "/sp/_metadata", g, MAXP, true, &r, &err), 0);
    ck_assert_ptr_null(jm_restore_task(r, g->vertices[0], 2, MAXP, 0));   /* nothing for it */
    jm_restore_free(r);
    /* an operator without state may go missing */
    m = meta("00000000000000000000000000000abc", 1);
    flint__checkpoint__operator_subtask_state__free_unpacked(m->operators[0]->subtasks[0], NULL);
    m->operators[0]->n_subtasks = 0;
    ck_assert_int_eq(jm_restore_new(m, "/sp/_metadata", g, MAXP, false, &r, &err), 0);
    jm_restore_free(r);
    /* keyed state cannot change max parallelism */
    m = meta(g->vertices[0]->operators[0]->operator_id, 2);
    m->operators[0]->max_parallelism = 64;
    ck_assert_int_eq(jm_restore_new(m, "/sp/_metadata", g, MAXP, false, &r, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "max parallelism 64"), "%s", err.msg);
    flint__graph__job_graph__free_unpacked(g, NULL);
}
END_TEST

START_TEST(operator_ids) {
    int p2[] = {2, 3}, p5[] = {5, 1};
    test_edge e = {0, 1, FLINT__GRAPH__PARTITIONER__HASH};
    Flint__Graph__JobGraph *a = test_graph(TEST_JOB_ID, 2, p2, NULL, 1, &e);
    Flint__Graph__JobGraph *b = test_graph(TEST_JOB_ID, 2, p5, NULL, 1, &e);
    flint_err err = {0};
    ck_assert_int_eq(jm_graph_assign_operator_ids(a, &err), 0);
    ck_assert_int_eq(jm_graph_assign_operator_ids(b, &err), 0);
    for (int v = 0; v < 2; v++) {
        const char *id = a->vertices[v]->operators[0]->operator_id;
        ck_assert_int_eq(strlen(id), 32);
        ck_assert_str_eq(id, b->vertices[v]->operators[0]->operator_id);   /* parallelism does not matter */
    }
    ck_assert_str_ne(a->vertices[0]->operators[0]->operator_id, a->vertices[1]->operators[0]->operator_id);
    flint__graph__job_graph__free_unpacked(b, NULL);
    /* a uid decides alone: the same uid on another node id gives the same id */
    b = test_graph(TEST_JOB_ID, 2, p2, NULL, 1, &e);
    Flint__Graph__JobGraph *c = test_graph(TEST_JOB_ID, 2, p2, NULL, 1, &e);
    b->vertices[1]->operators[0]->uid = xstrdup("counter");
    c->vertices[1]->operators[0]->uid = xstrdup("counter");
    c->vertices[1]->operators[0]->node_id = 77;
    ck_assert_int_eq(jm_graph_assign_operator_ids(b, &err), 0);
    ck_assert_int_eq(jm_graph_assign_operator_ids(c, &err), 0);
    ck_assert_str_eq(b->vertices[1]->operators[0]->operator_id, c->vertices[1]->operators[0]->operator_id);
    ck_assert_str_ne(b->vertices[1]->operators[0]->operator_id, a->vertices[1]->operators[0]->operator_id);
    flint__graph__job_graph__free_unpacked(a, NULL);
    flint__graph__job_graph__free_unpacked(b, NULL);
    flint__graph__job_graph__free_unpacked(c, NULL);
    /* one set by the submitter must be well-formed and unique */
    c = test_graph(TEST_JOB_ID, 2, p2, NULL, 1, &e);
    c->vertices[0]->operators[0]->operator_id = xstrdup("XYZ");
    ck_assert_int_eq(jm_graph_assign_operator_ids(c, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "expected 32 lower-case hex digits"), "%s", err.msg);
    free(c->vertices[0]->operators[0]->operator_id);
    c->vertices[0]->operators[0]->operator_id = xstrdup("0123456789abcdef0123456789abcdef");
    c->vertices[1]->operators[0]->operator_id = xstrdup("0123456789abcdef0123456789abcdef");
    ck_assert_int_eq(jm_graph_assign_operator_ids(c, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "have the same operator id"), "%s", err.msg);
    flint__graph__job_graph__free_unpacked(c, NULL);
}
END_TEST

START_TEST(savepoint_paths) {
    char dir[200], meta_file[256];
    snprintf(dir, sizeof dir, "%s/savepoint-012345-abcdefabcdef", tmp);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char *mp = NULL, *d = NULL;
    flint_err err = {0};
    /* a directory without _metadata */
    ck_assert_int_eq(jm_savepoint_resolve(dir, &mp, &d, &err), FLINT_NOT_FOUND);
    ck_assert_msg(strstr(err.msg, "_metadata"), "%s", err.msg);
    Flint__Checkpoint__CheckpointMetadata m = FLINT__CHECKPOINT__CHECKPOINT_METADATA__INIT;
    m.format_version = JM_METADATA_VERSION;
    m.job_id = TEST_JOB_ID;
    m.checkpoint_id = 1;
    ck_assert_int_eq(jm_metadata_write(dir, &m, &err), 0);
    snprintf(meta_file, sizeof meta_file, "%s/_metadata", dir);
    /* the directory, with or without a trailing slash, or the file itself */
    char with_slash[210];
    snprintf(with_slash, sizeof with_slash, "%s//", dir);
    const char *forms[] = {dir, with_slash, meta_file};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(jm_savepoint_resolve(forms[i], &mp, &d, &err), 0);
        ck_assert_str_eq(mp, meta_file);
        ck_assert_str_eq(d, dir);
        free(mp);
        free(d);
    }
    char missing[220];
    snprintf(missing, sizeof missing, "%s/nope", tmp);
    ck_assert_int_eq(jm_savepoint_resolve(missing, &mp, &d, &err), FLINT_NOT_FOUND);
    ck_assert_msg(strstr(err.msg, missing), "%s", err.msg);
    ck_assert_int_eq(jm_savepoint_resolve("", &mp, &d, &err), FLINT_INVALID);

    /* names: <dir>/savepoint-<6 of the job id>-<12 hex> */
    char name[300], name2[300];
    jm_savepoint_dir_name("/data/sp/", TEST_JOB_ID, name, sizeof name);
    jm_savepoint_dir_name("/data/sp", TEST_JOB_ID, name2, sizeof name2);
    ck_assert_int_eq(strlen(name), strlen("/data/sp/savepoint-012345-") + 12);
    ck_assert(strncmp(name, "/data/sp/savepoint-012345-", 26) == 0);
    for (const char *p = name + 26; *p; p++) ck_assert(strchr("0123456789abcdef", *p));
    ck_assert_str_ne(name, name2);

    /* the state files a savepoint names must be there */
    Flint__Checkpoint__CheckpointMetadata *full = meta("0123456789abcdef0123456789abcdef", 1);
    ck_assert_int_eq(jm_metadata_check_files(full, dir, &err), FLINT_NOT_FOUND);
    ck_assert_msg(strstr(err.msg, "keyed-0 of checkpoint 42 is missing"), "%s", err.msg);
    flint__checkpoint__checkpoint_metadata__free_unpacked(full, NULL);
}
END_TEST

int main(void) {
    log_init("check", NULL, LOG_ERROR);
    Suite *s = suite_create("jm_restore");
    TCase *tc = tcase_create("restore");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, key_group_ranges);
    tcase_add_test(tc, rescale_2_to_4);
    tcase_add_test(tc, rescale_4_to_2);
    tcase_add_test(tc, rescale_3_to_5);
    tcase_add_test(tc, same_parallelism_keeps_state_in_place);
    tcase_add_test(tc, sources_dealt_no_split_still_restore);
    tcase_add_test(tc, incremental_handles_pass_whole);
    tcase_add_test(tc, mapping_by_operator_id);
    tcase_add_test(tc, operator_ids);
    tcase_add_test(tc, savepoint_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

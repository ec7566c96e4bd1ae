/* Unit tests of rescalable source positions (taskmanager/operators/src_split.h and the sources
 * that use them: source.datagen, source.elements, source.nexmark, and source.sequence's ranges):
 * subtasks run part of the way at one parallelism and snapshot; their splits are dealt out as the
 * jobmanager deals them (round robin in subtask order; a subtask dealt none restores empty); the
 * new subtasks restore and run to the end. The union of everything emitted must be the rows of a
 * run at parallelism 1, each exactly once. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexmark/nexmark.h"
#include "operators/operator.h"
#include "operators/src_split.h"
#include "task/chain.h"
#include "util/alloc.h"

/* ---- a source vertex and its rows --------------------------------------------------------------- */

/* A vertex of one source operator: kind, output schema, then key/value params, NULL-ended. */
static Flint__Graph__JobVertex *source(const char *kind, const char *schema, ...) {
    Flint__Graph__OperatorDef *d = XNEW(Flint__Graph__OperatorDef);
    flint__graph__operator_def__init(d);
    d->kind = xstrdup(kind);
    d->name = xstrdup(kind);
    d->operator_id = xstrdup("0123456789abcdef0123456789abcdef");
    d->input_schema = xstrdup("");
    d->output_schema = xstrdup(schema);
    d->params = xcalloc(8, sizeof *d->params);
    va_list ap;
    va_start(ap, schema);
    for (const char *k; (k = va_arg(ap, const char *));) {
        Flint__Graph__KeyValue *p = XNEW(Flint__Graph__KeyValue);
        flint__graph__key_value__init(p);
        p->key = xstrdup(k);
        p->value = xstrdup(va_arg(ap, const char *));
        d->params[d->n_params++] = p;
    }
    va_end(ap);
    Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(v);
    v->name = xstrdup("source vertex");
    v->parallelism = 1;
    v->operators = xcalloc(1, sizeof *v->operators);
    v->operators[v->n_operators++] = d;
    return v;
}

typedef struct rows {
    char **v;
    int64_t n, cap;
    int time_field;          /* >= 0: check that this BIGINT field never decreases */
    int64_t last_time;
    bool ordered;
} rows;

static int collect(void *ud, const flint_row *row) {
    rows *r = ud;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->v = xrealloc(r->v, (size_t)r->cap * sizeof *r->v);
    }
    char buf[8192];
    flint_row_format(row, "|", buf, sizeof buf);
    r->v[r->n++] = xstrdup(buf);
    if (r->time_field >= 0) {
        int64_t t = flint_row_get_long(row, r->time_field);
        r->ordered &= t >= r->last_time;
        r->last_time = t;
    }
    return FLINT_OK;
}

static void rows_free(rows *r) {
    for (int64_t i = 0; i < r->n; i++) free(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ---- running subtasks ----------------------------------------------------------------------------- */

typedef struct subtask {
    tm_runtime rt;
    tm_chain c;
    rows out;
} subtask;

static void subtask_open(subtask *s, const Flint__Graph__JobVertex *v, int i, int p, int time_field) {
    memset(s, 0, sizeof *s);
    s->rt = (tm_runtime){.subtask = i, .parallelism = p, .max_parallelism = 128, .task_name = "source vertex",
                         .artifact = ""};
    s->out.time_field = time_field;
    s->out.last_time = INT64_MIN;
    s->out.ordered = true;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&s->c, v, &s->rt, &err) == 0, "%s", err.msg);
    tm_chain_add_output(&s->c, 0, collect, &s->out);
    ck_assert_msg(tm_chain_open(&s->c) == 0, "%s", s->rt.err.msg);
}

/* At most calls produce() calls (-1: to the end). Returns whether the source ended. */
static bool subtask_run(subtask *s, int calls) {
    tm_op *op = s->c.ops[0];
    for (int k = 0; calls < 0 || k < calls; k++) {
        tm_source_status st;
        int64_t wake = 0;
        ck_assert_msg(op->kind->produce(op, 0, &st, &wake) == 0, "%s", s->rt.err.msg);
        ck_assert_int_ne(st, TM_SOURCE_WAIT);
        if (st == TM_SOURCE_END) return true;
    }
    return false;
}

/* Close the subtask, moving its rows to all (checking their order first, if asked). */
static void subtask_close(subtask *s, rows *all) {
    tm_chain_close(&s->c);
    ck_assert_msg(s->out.ordered, "subtask %d of %d: rows out of order", s->rt.subtask, s->rt.parallelism);
    for (int64_t i = 0; i < s->out.n; i++) {
        if (all->n == all->cap) {
            all->cap = all->cap ? 2 * all->cap : 1024;
            all->v = xrealloc(all->v, (size_t)all->cap * sizeof *all->v);
        }
        all->v[all->n++] = s->out.v[i];
    }
    free(s->out.v);
}

/* A run through the parallelisms ps[0], ps[1], ... ps[n-1]: at each but the last, subtask i
 * makes 1 + i % 3 produce() calls, then every subtask snapshots; the splits are dealt to the next
 * parallelism's subtasks as the jobmanager deals them (in subtask order, round robin when the
 * parallelism changes, else each to its own subtask; every subtask restores, some with none);
 * the last runs to the end. All rows, sorted. */
static rows run_rescaled(const Flint__Graph__JobVertex *v, const int *ps, int n, int time_field) {
    rows all = {.time_field = -1};
    Flint__Checkpoint__OperatorSubtaskState *snap = NULL;
    int oldp = 0;
    size_t nsplits = 0, first_nsplits = 0;
    for (int k = 0; k < n; k++) {
        int p = ps[k];
        Flint__Checkpoint__OperatorSubtaskState *next = xcalloc((size_t)p, sizeof *next);
        for (int i = 0; i < p; i++) {
            subtask s;
            subtask_open(&s, v, i, p, time_field);
            tm_op *op = s.c.ops[0];
            if (snap) {
                Flint__Checkpoint__OperatorRestore r;
                flint__checkpoint__operator_restore__init(&r);
                r.source_splits = xcalloc(nsplits + 1, sizeof *r.source_splits);
                int64_t split_k = 0;
                for (int o = 0; o < oldp; o++)
                    for (size_t x = 0; x < snap[o].n_source_splits; x++, split_k++)
                        if (oldp == p ? o == i : split_k % p == i) r.source_splits[r.n_source_splits++] = snap[o].source_splits[x];
                ck_assert_msg(op->kind->initialize_state(op, &r) == 0, "%s", s.rt.err.msg);
                free(r.source_splits);
            }
            if (k == n - 1) {
                subtask_run(&s, -1);
            } else {
                subtask_run(&s, 1 + i % 3);
                flint__checkpoint__operator_subtask_state__init(&next[i]);
                ck_assert_int_eq(op->kind->snapshot_state(op, 1, &next[i]), 0);
            }
            subtask_close(&s, &all);
        }
        for (int o = 0; snap && o < oldp; o++) {
            for (size_t x = 0; x < snap[o].n_source_splits; x++)
                flint__checkpoint__source_split_state__free_unpacked(snap[o].source_splits[x], NULL);
            free(snap[o].source_splits);
        }
        free(snap);
        snap = next, oldp = p;
        /* Splits are neither made nor lost: as many after every rescale as at first. */
        nsplits = 0;
        for (int i = 0; k < n - 1 && i < p; i++) nsplits += next[i].n_source_splits;
        if (k == 0) first_nsplits = nsplits;
        if (k < n - 1) ck_assert_int_eq(nsplits, first_nsplits);
    }
    free(snap);
    qsort(all.v, (size_t)all.n, sizeof *all.v, cmp_str);
    return all;
}

/* Every rescaling of v gives the rows of one run at parallelism 1, each once. */
static void check_rescales(const Flint__Graph__JobVertex *v, int time_field, int64_t want_rows) {
    static const int runs[][4] = {{2, 4}, {4, 2}, {3, 2}, {2, 4, 2}, {2, 2}, {1, 5, 3}};
    static const int lens[] = {2, 2, 2, 3, 2, 3};
    int one_p[] = {1};
    rows one = run_rescaled(v, one_p, 1, time_field);
    ck_assert_int_eq(one.n, want_rows);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        rows got = run_rescaled(v, runs[k], lens[k], time_field);
        ck_assert_msg(got.n == one.n, "%s, run %zu: %lld rows, want %lld", v->operators[0]->kind, k,
                      (long long)got.n, (long long)one.n);
        for (int64_t i = 0; i < one.n; i++)
            ck_assert_msg(!strcmp(got.v[i], one.v[i]), "%s, run %zu: row %lld is '%s', want '%s'",
                          v->operators[0]->kind, k, (long long)i, got.v[i], one.v[i]);
        rows_free(&got);
    }
    rows_free(&one);
}

/* ---- tests -------------------------------------------------------------------------------------- */

START_TEST(datagen_rescales) {
    Flint__Graph__JobVertex *v =
        source("source.datagen", "id BIGINT, name STRING, d DOUBLE", "count", "5000", "seed", "3", NULL);
    check_rescales(v, -1, 5000);
    flint__graph__job_vertex__free_unpacked(v, NULL);
}
END_TEST

START_TEST(elements_rescale_in_order) {
    char *text = xcalloc(3000, 16);
    size_t len = 0;
    for (int i = 0; i < 3000; i++) len += (size_t)sprintf(text + len, "%s%d,e%d", i ? "\n" : "", i, i);
    Flint__Graph__JobVertex *v = source("source.elements", "n BIGINT, s STRING", "rows", text, NULL);
    free(text);
    check_rescales(v, 0, 3000);
    flint__graph__job_vertex__free_unpacked(v, NULL);
}
END_TEST

START_TEST(sequence_rescales) {
    Flint__Graph__JobVertex *v = source("source.sequence", "value BIGINT", "from", "1", "to", "5000", NULL);
    check_rescales(v, -1, 5000);
    flint__graph__job_vertex__free_unpacked(v, NULL);
}
END_TEST

START_TEST(nexmark_rescales_on_one_timeline) {
    /* Every event as a row, its dateTime (field 1) in order within every subtask, also one that
     * owns several splits. */
    Flint__Graph__JobVertex *v = source("source.nexmark", nexmark_table_schema(NEXMARK_TABLE_ALL), "table", "all",
                                        "events", "60017", "seed", "11", NULL);
    check_rescales(v, 1, 60017);
    flint__graph__job_vertex__free_unpacked(v, NULL);
}
END_TEST

START_TEST(restore_refuses_bad_splits) {
    static const struct {
        const char *kind, *schema, *param, *value, *split;
        int64_t position;
        const char *want;
    } cases[] = {
        {"source.datagen", "id BIGINT", "count", "10", "datagen:2/2", 0,
         "cannot restore split 'datagen:2/2': not one of this datagen source's splits ('datagen:<r>/<m>'"},
        {"source.datagen", "id BIGINT", "count", "10", "seq:1..5", 0, "split 'seq:1..5': not one of this datagen"},
        {"source.datagen", "id BIGINT", "count", "10", "datagen:1/2x", 0, "split 'datagen:1/2x': not one"},
        {"source.elements", "n BIGINT", "rows", "1", "elements:0/0", 0, "split 'elements:0/0': not one"},
        {"source.nexmark", "", "table", "bid", "nexmark:1/2", 10,
         "cannot restore split 'nexmark:1/2': position 10 is not in one of its units"},
        {"source.datagen", "id BIGINT", "count", "10", "datagen:1/3", 5, "split 'datagen:1/3': position 5 is not"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *schema = cases[k].schema[0] ? cases[k].schema : nexmark_table_schema(NEXMARK_TABLE_BID);
        Flint__Graph__JobVertex *v = source(cases[k].kind, schema, cases[k].param, cases[k].value, NULL);
        subtask s;
        subtask_open(&s, v, 0, 1, -1);
        Flint__Checkpoint__SourceSplitState sp, *spp = &sp;
        flint__checkpoint__source_split_state__init(&sp);
        sp.split_id = (char *)cases[k].split;
        sp.position = cases[k].position;
        Flint__Checkpoint__OperatorRestore r;
        flint__checkpoint__operator_restore__init(&r);
        r.source_splits = &spp;
        r.n_source_splits = 1;
        tm_op *op = s.c.ops[0];
        ck_assert_int_ne(op->kind->initialize_state(op, &r), 0);
        ck_assert_msg(strstr(s.rt.err.msg, cases[k].want), "%s: %s", cases[k].split, s.rt.err.msg);
        rows none = {0};
        subtask_close(&s, &none);
        rows_free(&none);
        flint__graph__job_vertex__free_unpacked(v, NULL);
    }
}
END_TEST

Suite *src_split_suite(void) {
    Suite *s = suite_create("src_split");
    TCase *tc = tcase_create("rescale");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, datagen_rescales);
    tcase_add_test(tc, elements_rescale_in_order);
    tcase_add_test(tc, sequence_rescales);
    tcase_add_test(tc, nexmark_rescales_on_one_timeline);
    tcase_add_test(tc, restore_refuses_bad_splits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(src_split_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests of the taskmanager's operators, run as chains without a network: rolling keyed
 * aggregations and reduce (Flink's semantics), the user-function operators and their context,
 * failures, the sources (elements, sequence, datagen, text file, socket) and the sinks. */
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "state/tm_state.h"
#include "operators/operator.h"
#include "task/chain.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include "check_op_helpers.h"

/* ---- building operator definitions -------------------------------------------------------- */

static void add_user_param(Flint__Graph__OperatorDef *d, const char *k, const char *v) {
    d->user_params = xrealloc(d->user_params, (d->n_user_params + 1) * sizeof *d->user_params);
    d->user_params[d->n_user_params++] = kv(k, v);
}

/* A vertex of the given operators chained in a line (op i feeds op i+1). */
static Flint__Graph__JobVertex *mkvertex(int n, ...) {
    Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(v);
    v->name = xstrdup("test vertex");
    v->parallelism = 1;
    v->operators = xcalloc((size_t)n, sizeof *v->operators);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) v->operators[v->n_operators++] = va_arg(ap, Flint__Graph__OperatorDef *);
    va_end(ap);
    for (int i = 0; i + 1 < n; i++) {
        v->operators[i]->chained_outputs = xcalloc(1, sizeof(int32_t));
        v->operators[i]->chained_outputs[0] = i + 1;
        v->operators[i]->n_chained_outputs = 1;
    }
    return v;
}

static void free_vertex(Flint__Graph__JobVertex *v) {
    /* Everything was allocated with malloc, as protobuf-c's default allocator does. */
    flint__graph__job_vertex__free_unpacked(v, NULL);
}

/* ---- user functions, resolved through the runtime's table -------------------------------------- */

static int opens, closes;

static void double_value(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    flint_row_set_long(out, 0, flint_row_get_long(in, 0) * 2);
}
static bool is_even(flint_ctx *ctx, const flint_row *in) { return flint_row_get_long(in, 0) % 2 == 0; }
static void split(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    size_t len;
    const char *s = flint_row_get_string(in, 0, &len);
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ') i++;
        size_t st = i;
        while (i < len && s[i] != ' ') i++;
        if (i > st) {
            flint_row_builder *b = flint_out_row(out);
            flint_row_set_string(b, 0, s + st, i - st);
            flint_row_set_long(b, 1, 1);
            flint_emit(out);
        }
    }
}
/* process: emit the row "times" times (an operator parameter), tagged with the job param. */
static void repeat(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    const char *times = flint_ctx_param(ctx, "times");
    const char *tag = flint_ctx_param(ctx, "tag");
    for (int i = 0; i < (times ? atoi(times) : 1); i++) {
        flint_row_builder *b = flint_out_row(out);
        flint_row_set_long(b, 0, flint_row_get_long(in, 0));
        flint_row_set_cstring(b, 1, tag ? tag : "none");
        flint_emit(out);
    }
}
static void sum_reduce(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    flint_row_copy_field(out, 0, acc, 0);
    flint_row_set_long(out, 1, flint_row_get_long(acc, 1) + flint_row_get_long(in, 1));
    flint_row_copy_field(out, 2, in, 2);   /* the latest tag */
}
static void key_mod3(flint_ctx *ctx, const flint_row *in, flint_row_builder *key) {
    flint_row_set_long(key, 0, flint_row_get_long(in, 0) % 3);
}
static void fail_on_3(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    if (flint_row_get_long(in, 0) == 3) flint_ctx_fail(ctx, "three is right out (%s)", flint_ctx_task_name(ctx));
    flint_row_set_long(out, 0, flint_row_get_long(in, 0));
}
static int counting_open(flint_ctx *ctx) {
    opens++;
    flint_ctx_set_user_data(ctx, &opens);
    return 0;
}
static void counting_close(flint_ctx *ctx) {
    ck_assert_ptr_eq(flint_ctx_user_data(ctx), &opens);
    closes++;
}
static int refusing_open(flint_ctx *ctx) { return 7; }
static int64_t sunk_sum;
static void summing_sink(flint_ctx *ctx, const flint_row *in) { sunk_sum += flint_row_get_long(in, 0); }

static struct {
    const char *name;
    void (*fn)(void);
} udfs[] = {
    {"double_value", (void (*)(void))double_value}, {"is_even", (void (*)(void))is_even},
    {"split", (void (*)(void))split},               {"repeat", (void (*)(void))repeat},
    {"sum_reduce", (void (*)(void))sum_reduce},     {"key_mod3", (void (*)(void))key_mod3},
    {"fail_on_3", (void (*)(void))fail_on_3},       {"counting_open", (void (*)(void))counting_open},
    {"counting_close", (void (*)(void))counting_close}, {"refusing_open", (void (*)(void))refusing_open},
    {"summing_sink", (void (*)(void))summing_sink},
};

static void *resolve(void *ud, const char *name) {
    for (size_t i = 0; i < sizeof udfs / sizeof *udfs; i++)
        if (strcmp(udfs[i].name, name) == 0) {
            void *p;
            memcpy(&p, &udfs[i].fn, sizeof p);
            return p;
        }
    return NULL;
}

/* ---- running chains ------------------------------------------------------------------------------ */

#define MAXOUT 4096
typedef struct capture {
    char *lines[MAXOUT];
    int n;
} capture;

static int capture_row(void *ud, const flint_row *row) {
    capture *c = ud;
    char buf[512];
    flint_row_format(row, " ", buf, sizeof buf);
    ck_assert_int_lt(c->n, MAXOUT);
    c->lines[c->n++] = xstrdup(buf);
    return FLINT_OK;
}

static void capture_free(capture *c) {
    for (int i = 0; i < c->n; i++) free(c->lines[i]);
    c->n = 0;
}

static tm_runtime mkrt(int subtask, int parallelism) {
    tm_runtime rt = {.subtask = subtask, .parallelism = parallelism, .max_parallelism = 128,
                     .task_name = "test vertex (1/1)", .resolve = resolve, .artifact = "abc123"};
    return rt;
}

/* Feed rows (text, fields split on ',') of the head's input schema through the chain of v and
 * capture what the last operator emits. Returns the first failing status (0 when all went well). */
static int run_rows(Flint__Graph__JobVertex *v, tm_runtime *rt, capture *out, int n, const char *const *rows) {
    tm_chain c;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&c, v, rt, &err) == 0, "%s", err.msg);
    if (out) tm_chain_add_output(&c, c.n - 1, capture_row, out);
    int rc = tm_chain_open(&c);
    flint_row_builder b;
    flint_row_builder_init(&b, c.ops[0]->in_schema);
    for (int i = 0; i < n && !rc; i++) {
        flint_row_builder_reset(&b);
        ck_assert_msg(flint_row_parse(&b, rows[i], strlen(rows[i]), ',', &err) == 0, "%s", err.msg);
        flint_row row = flint_row_builder_row(&b);
        rc = tm_op_process(c.ops[0], &row);
    }
    if (!rc) rc = tm_chain_end_input(&c);
    flint_row_builder_free(&b);
    tm_chain_close(&c);
    return rc ? rc : rt->failed ? FLINT_ERR : 0;
}

/* Run a source chain to its end (or max_calls produce calls). */
static int run_source(Flint__Graph__JobVertex *v, tm_runtime *rt, capture *out, int max_calls) {
    tm_chain c;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&c, v, rt, &err) == 0, "%s", err.msg);
    if (out) tm_chain_add_output(&c, c.n - 1, capture_row, out);
    int rc = tm_chain_open(&c);
    for (int i = 0; !rc && i < max_calls; i++) {
        tm_source_status st;
        int64_t wake = 0;
        rc = c.ops[0]->kind->produce(c.ops[0], time_mono_ms() + 50, &st, &wake);
        if (rc || st == TM_SOURCE_END) break;
        if (st == TM_SOURCE_WAIT) {
            int64_t d = wake - time_mono_ms();
            if (d > 0) usleep((useconds_t)d * 1000);
        }
    }
    if (!rc) rc = tm_chain_end_input(&c);
    tm_chain_close(&c);
    return rc ? rc : rt->failed ? FLINT_ERR : 0;
}

static void expect_lines(const capture *c, int n, const char *const *want) {
    ck_assert_int_eq(c->n, n);
    for (int i = 0; i < n; i++) ck_assert_str_eq(c->lines[i], want[i]);
}

#define ROWS(...) (const char *const[]){__VA_ARGS__}
#define NROWS(...) (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define RUN(v, rt, out, ...) run_rows(v, rt, out, NROWS(__VA_ARGS__), ROWS(__VA_ARGS__))

static const char *AGG_SCHEMA = "w STRING, n BIGINT, tag STRING";

static Flint__Graph__JobVertex *agg_vertex(const char *agg, const char *field) {
    return mkvertex(1, mkop("aggregate", AGG_SCHEMA, AGG_SCHEMA, "key.fields", "0", "agg", agg, "field", field, NULL));
}

/* ---- keyed rolling aggregations ---------------------------------------------------------------------- */

START_TEST(sum_keeps_first_row_fields) {
    Flint__Graph__JobVertex *v = agg_vertex("sum", "1");
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(RUN(v, &rt, &out, "a,1,x", "b,2,y", "a,3,z", "a,10,q", "b,-5,r"), 0);
    expect_lines(&out, 5, ROWS("a 1 x", "b 2 y", "a 4 x", "a 14 x", "b -3 y"));
    capture_free(&out);
    free_vertex(v);
}
END_TEST

START_TEST(min_and_max_update_one_field) {
    Flint__Graph__JobVertex *v = agg_vertex("min", "1");
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(RUN(v, &rt, &out, "a,5,x", "a,3,y", "a,7,z", "b,1,w"), 0);
    expect_lines(&out, 4, ROWS("a 5 x", "a 3 x", "a 3 x", "b 1 w"));
    capture_free(&out);
    free_vertex(v);
    v = agg_vertex("max", "1");
    rt = mkrt(0, 1);
    ck_assert_int_eq(RUN(v, &rt, &out, "a,5,x", "a,3,y", "a,7,z"), 0);
    expect_lines(&out, 3, ROWS("a 5 x", "a 5 x", "a 7 x"));
    capture_free(&out);
    free_vertex(v);
}
END_TEST

START_TEST(min_by_and_max_by_take_whole_rows_first_wins_ties) {
    Flint__Graph__JobVertex *v = agg_vertex("min_by", "1");
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(RUN(v, &rt, &out, "a,5,x", "a,3,y", "a,3,z", "a,7,w", "a,2,v"), 0);
    expect_lines(&out, 5, ROWS("a 5 x", "a 3 y", "a 3 y", "a 3 y", "a 2 v"));
    capture_free(&out);
    free_vertex(v);
    v = agg_vertex("max_by", "1");
    rt = mkrt(0, 1);
    ck_assert_int_eq(RUN(v, &rt, &out, "a,5,x", "a,3,y", "a,5,z", "a,7,w"), 0);
    expect_lines(&out, 4, ROWS("a 5 x", "a 5 x", "a 5 x", "a 7 w"));
    capture_free(&out);
    free_vertex(v);
}
END_TEST

START_TEST(aggregations_over_int_double_and_nulls) {
    const char *schema = "k BIGINT, i INT, d DOUBLE";
    Flint__Graph__JobVertex *v =
        mkvertex(1, mkop("aggregate", schema, schema, "key.fields", "0", "agg", "sum", "field", "1", NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    /* INT sums wrap as Java's int does; a NULL value leaves the aggregate alone. */
    ck_assert_int_eq(RUN(v, &rt, &out, "1,2147483647,0.5", "1,1,1", "1,null,2", "2,null,1", "2,4,1"), 0);
    expect_lines(&out, 5, ROWS("1 2147483647 0.5", "1 -2147483648 0.5", "1 -2147483648 0.5", "2 null 1", "2 4 1"));
    capture_free(&out);
    free_vertex(v);
    v = mkvertex(1, mkop("aggregate", schema, schema, "key.fields", "0", "agg", "sum", "field", "2", NULL));
    rt = mkrt(0, 1);
    ck_assert_int_eq(RUN(v, &rt, &out, "1,1,0.25", "1,2,0.5"), 0);
    expect_lines(&out, 2, ROWS("1 1 0.25", "1 1 0.75"));
    capture_free(&out);
    free_vertex(v);
}
END_TEST

START_TEST(aggregate_with_composite_key) {
    const char *schema = "a STRING, b INT, n BIGINT";
    Flint__Graph__JobVertex *v =
        mkvertex(1, mkop("aggregate", schema, schema, "key.fields", "0,1", "agg", "sum", "field", "2", NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(RUN(v, &rt, &out, "x,1,1", "x,2,1", "x,1,1", "y,1,5"), 0);
    expect_lines(&out, 4, ROWS("x 1 1", "x 2 1", "x 1 2", "y 1 5"));
    capture_free(&out);
    free_vertex(v);
}
END_TEST

START_TEST(aggregate_refuses_bad_configuration) {
    tm_runtime rt = mkrt(0, 1);
    Flint__Graph__JobVertex *v = agg_vertex("sum", "2"); /* a STRING field */
    ck_assert_int_ne(RUN(v, &rt, NULL, "a,1,x"), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "cannot sum field 'tag' of type STRING"));
    free_vertex(v);
    rt = mkrt(0, 1);
    v = agg_vertex("median", "1");
    ck_assert_int_ne(RUN(v, &rt, NULL, "a,1,x"), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "unknown aggregation 'median'"));
    free_vertex(v);
    rt = mkrt(0, 1);
    v = mkvertex(1, mkop("aggregate", AGG_SCHEMA, AGG_SCHEMA, "key.fields", "5", "agg", "sum", "field", "1", NULL));
    ck_assert_int_ne(RUN(v, &rt, NULL, "a,1,x"), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "key.fields"));
    free_vertex(v);
}
END_TEST

START_TEST(reduce_with_user_function_and_key_selector) {
    const char *schema = "v BIGINT, n BIGINT, tag STRING";
    Flint__Graph__JobVertex *v = mkvertex(
        1, mkop("reduce", schema, schema, "fn", "sum_reduce", "key.selector", "key_mod3", "key.schema", "k BIGINT", NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    /* keys: 1 % 3 = 1, 4 % 3 = 1, 2 % 3 = 2: the first row of a key passes as it is. */
    ck_assert_int_eq(RUN(v, &rt, &out, "1,10,a", "4,5,b", "2,1,c", "7,1,d"), 0);
    expect_lines(&out, 4, ROWS("1 10 a", "1 15 b", "2 1 c", "1 16 d"));
    capture_free(&out);
    free_vertex(v);
}
END_TEST

/* ---- user-function operators ------------------------------------------------------------------------ */

START_TEST(map_filter_flat_map_process_chain) {
    Flint__Graph__OperatorDef *fm = mkop("flat_map", "line STRING", "w STRING, n BIGINT", "fn", "split", NULL);
    Flint__Graph__OperatorDef *agg =
        mkop("aggregate", "w STRING, n BIGINT", "w STRING, n BIGINT", "key.fields", "0", "agg", "sum", "field", "1", NULL);
    Flint__Graph__JobVertex *v = mkvertex(2, fm, agg);
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(RUN(v, &rt, &out, "to be or", "not to be"), 0);
    expect_lines(&out, 6, ROWS("to 1", "be 1", "or 1", "not 1", "to 2", "be 2"));
    capture_free(&out);
    free_vertex(v);

    Flint__Graph__OperatorDef *m = mkop("map", "value BIGINT", "value BIGINT", "fn", "double_value", NULL);
    Flint__Graph__OperatorDef *f = mkop("filter", "value BIGINT", "value BIGINT", "fn", "is_even", NULL);
    Flint__Graph__OperatorDef *p = mkop("process", "value BIGINT", "value BIGINT, tag STRING", "fn", "repeat", NULL);
    add_user_param(p, "times", "2");
    v = mkvertex(3, f, m, p);
    Flint__Graph__KeyValue *job_params[] = {kv("tag", "job"), kv("times", "9")};
    rt = mkrt(0, 1);
    rt.job_params = job_params;
    rt.n_job_params = 2;
    ck_assert_int_eq(RUN(v, &rt, &out, "1", "2", "3", "4"), 0);
    /* even values pass, are doubled, then repeated twice (the operator's "times" wins over the
     * job's), tagged with the job parameter. */
    expect_lines(&out, 4, ROWS("4 job", "4 job", "8 job", "8 job"));
    capture_free(&out);
    free_vertex(v);
    for (int i = 0; i < 2; i++) flint__graph__key_value__free_unpacked(job_params[i], NULL);
}
END_TEST

START_TEST(project_copies_fields_and_refuses_bad_plans) {
    Flint__Graph__JobVertex *v =
        mkvertex(1, mkop("project", "w STRING, n BIGINT, x DOUBLE", "x DOUBLE, w STRING", "fields", "2,0", NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(RUN(v, &rt, &out, "a,1,2.5", "bb,2,0.5"), 0);
    expect_lines(&out, 2, ROWS("2.5 a", "0.5 bb"));
    capture_free(&out);
    free_vertex(v);
    /* The plan is checked when the operator opens: types, indexes. */
    v = mkvertex(1, mkop("project", "w STRING, n BIGINT, x DOUBLE", "x DOUBLE, w STRING", "fields", "2,1", NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(RUN(v, &rt, NULL, "a,1,2.5"), 0);
    ck_assert_msg(strstr(rt.err.msg, "parameter 'fields': projection field 1 ('w'): STRING, but input field 1 ('n') is BIGINT"),
                  "%s", rt.err.msg);
    free_vertex(v);
    v = mkvertex(1, mkop("project", "w STRING, n BIGINT, x DOUBLE", "x DOUBLE, w STRING", "fields", "2,3", NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(RUN(v, &rt, NULL, "a,1,2.5"), 0);
    ck_assert_msg(strstr(rt.err.msg, "parameter 'fields': "), "%s", rt.err.msg);
    free_vertex(v);
}
END_TEST

START_TEST(sink_fn_and_open_close) {
    Flint__Graph__OperatorDef *s = mkop("sink.fn", "value BIGINT", "", "fn", "summing_sink", "fn.open", "counting_open",
                                        "fn.close", "counting_close", NULL);
    Flint__Graph__JobVertex *v = mkvertex(1, s);
    tm_runtime rt = mkrt(0, 1);
    opens = closes = 0;
    sunk_sum = 0;
    ck_assert_int_eq(RUN(v, &rt, NULL, "1", "2", "39"), 0);
    ck_assert_int_eq(sunk_sum, 42);
    ck_assert_int_eq(opens, 1);
    ck_assert_int_eq(closes, 1);
    free_vertex(v);
}
END_TEST

START_TEST(user_failures_fail_the_chain) {
    Flint__Graph__OperatorDef *m = mkop("map", "value BIGINT", "value BIGINT", "fn", "fail_on_3", NULL);
    free(m->name);
    m->name = xstrdup("Picky Map");
    Flint__Graph__JobVertex *v = mkvertex(1, m);
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_ne(RUN(v, &rt, &out, "1", "2", "3", "4"), 0);
    ck_assert_int_eq(out.n, 2);
    ck_assert_str_eq(rt.err.msg, "Picky Map: three is right out (test vertex (1/1))");
    capture_free(&out);
    free_vertex(v);

    /* A missing symbol names the function and the artifact. */
    v = mkvertex(1, mkop("map", "value BIGINT", "value BIGINT", "fn", "no_such_fn", NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(RUN(v, &rt, NULL, "1"), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "user function 'no_such_fn' not found in artifact abc123"));
    free_vertex(v);

    /* An open function returning non-zero fails the task; its close is not called. */
    v = mkvertex(1, mkop("sink.fn", "value BIGINT", "", "fn", "summing_sink", "fn.open", "refusing_open", "fn.close",
                         "counting_close", NULL));
    rt = mkrt(0, 1);
    closes = 0;
    ck_assert_int_ne(RUN(v, &rt, NULL, "1"), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "open function 'refusing_open' failed"));
    ck_assert_int_eq(closes, 0);
    free_vertex(v);

    /* An unknown kind. */
    v = mkvertex(1, mkop("teleport", "value BIGINT", "value BIGINT", NULL));
    rt = mkrt(0, 1);
    tm_chain c;
    flint_err err = {0};
    ck_assert_int_ne(tm_chain_build(&c, v, &rt, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown kind 'teleport'"));
    tm_chain_close(&c);
    free_vertex(v);
}
END_TEST

/* ---- sources ---------------------------------------------------------------------------------------------- */

START_TEST(sequence_is_split_among_subtasks) {
    int64_t seen[101] = {0};
    for (int sub = 0; sub < 3; sub++) {
        Flint__Graph__JobVertex *v =
            mkvertex(2, mkop("source.sequence", "", "value BIGINT", "from", "1", "to", "100", NULL),
                     mkop("sink.blackhole", "value BIGINT", "", NULL));
        tm_runtime rt = mkrt(sub, 3);
        capture out = {0};
        tm_chain c;
        flint_err err = {0};
        ck_assert_int_eq(tm_chain_build(&c, v, &rt, &err), 0);
        tm_chain_add_output(&c, 0, capture_row, &out);
        ck_assert_int_eq(tm_chain_open(&c), 0);
        tm_source_status st = TM_SOURCE_MORE;
        int64_t wake;
        while (st != TM_SOURCE_END) ck_assert_int_eq(c.ops[0]->kind->produce(c.ops[0], 0, &st, &wake), 0);
        tm_chain_close(&c);
        ck_assert_int_ge(out.n, 33);
        ck_assert_int_le(out.n, 34);
        for (int i = 0; i < out.n; i++) seen[atoi(out.lines[i])]++;
        capture_free(&out);
        free_vertex(v);
    }
    for (int i = 1; i <= 100; i++) ck_assert_int_eq(seen[i], 1);
}
END_TEST

START_TEST(elements_parse_and_split) {
    Flint__Graph__JobVertex *v = mkvertex(1, mkop("source.elements", "", "w STRING, n INT", "rows", "a,1\nb,2\nc,3", NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(run_source(v, &rt, &out, 100), 0);
    expect_lines(&out, 3, ROWS("a 1", "b 2", "c 3"));
    capture_free(&out);
    rt = mkrt(1, 2);
    ck_assert_int_eq(run_source(v, &rt, &out, 100), 0);
    expect_lines(&out, 1, ROWS("b 2"));
    capture_free(&out);
    free_vertex(v);
    v = mkvertex(1, mkop("source.elements", "", "w STRING, n INT", "rows", "a,1\nb,two", NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(run_source(v, &rt, &out, 100), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "element 2 ('b,two')"));
    free_vertex(v);
}
END_TEST

START_TEST(datagen_counts_over_all_subtasks) {
    const char *schema = "id BIGINT, v INT, name STRING, d DOUBLE, ok BOOLEAN";
    int seen[1000] = {0};
    char first_run[64] = "";
    for (int sub = 0; sub < 2; sub++) {
        Flint__Graph__JobVertex *v =
            mkvertex(1, mkop("source.datagen", "", schema, "count", "1000", "rate", "0", "seed", "7", NULL));
        tm_runtime rt = mkrt(sub, 2);
        capture out = {0};
        ck_assert_int_eq(run_source(v, &rt, &out, 1000), 0);
        ck_assert_int_eq(out.n, 500);
        for (int i = 0; i < out.n; i++) {
            int id = atoi(out.lines[i]);
            ck_assert_int_eq(id % 2, sub);
            seen[id]++;
        }
        if (sub == 0) snprintf(first_run, sizeof first_run, "%s", out.lines[1]);
        capture_free(&out);
        /* The same seed gives the same rows. */
        if (sub == 0) {
            rt = mkrt(0, 2);
            ck_assert_int_eq(run_source(v, &rt, &out, 1000), 0);
            ck_assert_str_eq(out.lines[1], first_run);
            capture_free(&out);
        }
        free_vertex(v);
    }
    for (int i = 0; i < 1000; i++) ck_assert_int_eq(seen[i], 1);
}
END_TEST

/* Every datagen row is well-formed (the source writes them in place, in the layout of flint/row.h);
 * STRING and BYTES values are 10 characters of [a-z0-9], all 36 of them close to evenly. */
typedef struct datagen_seen {
    int rows;
    int chars[256];
} datagen_seen;

static int check_datagen_row(void *ud, const flint_row *row) {
    datagen_seen *seen = ud;
    flint_err err = {0};
    ck_assert_msg(flint_row_check(row->schema, row->data, row->len, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(flint_row_get_long(row, 0), seen->rows);
    for (int f = 1; f <= 2; f++) {
        size_t len;
        const char *p = flint_row_get_string(row, f, &len);
        ck_assert_int_eq(len, 10);
        for (size_t k = 0; k < len; k++) {
            ck_assert_msg((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= '0' && p[k] <= '9'), "character %d", p[k]);
            seen->chars[(unsigned char)p[k]]++;
        }
    }
    ck_assert_int_ne(flint_row_get_long(row, 3), seen->rows);
    ck_assert_int_eq(flint_row_get_long(row, 4), INT64_C(1700000000000) + seen->rows);
    seen->rows++;
    return FLINT_OK;
}

START_TEST(datagen_rows_are_well_formed) {
    Flint__Graph__JobVertex *v = mkvertex(1, mkop("source.datagen", "", "id BIGINT, name STRING, raw BYTES, n BIGINT, "
                                                   "t TIMESTAMP(3), v INT, d DOUBLE, ok BOOLEAN",
                                                   "count", "3000", "seed", "3", NULL));
    tm_runtime rt = mkrt(0, 1);
    tm_chain c;
    flint_err err = {0};
    ck_assert_int_eq(tm_chain_build(&c, v, &rt, &err), 0);
    datagen_seen *seen = xcalloc(1, sizeof *seen);
    tm_chain_add_output(&c, 0, check_datagen_row, seen);
    ck_assert_int_eq(tm_chain_open(&c), 0);
    tm_source_status st = TM_SOURCE_MORE;
    int64_t wake;
    while (st != TM_SOURCE_END) ck_assert_int_eq(c.ops[0]->kind->produce(c.ops[0], 0, &st, &wake), 0);
    ck_assert_int_eq(seen->rows, 3000);
    /* 60 000 characters: about 1667 of each (1875 for the 4 that 8 of 256 bytes map to). */
    const char *alnum = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (const char *p = alnum; *p; p++)
        ck_assert_msg(seen->chars[(unsigned char)*p] > 1400 && seen->chars[(unsigned char)*p] < 2100, "'%c': %d", *p,
                      seen->chars[(unsigned char)*p]);
    tm_chain_close(&c);
    free(seen);
    free_vertex(v);
}
END_TEST

START_TEST(datagen_rate_limit_waits_instead_of_spinning) {
    Flint__Graph__JobVertex *v =
        mkvertex(1, mkop("source.datagen", "", "id BIGINT", "count", "-1", "rate", "200", "seed", "1", NULL));
    tm_runtime rt = mkrt(0, 1);
    tm_chain c;
    flint_err err = {0};
    ck_assert_int_eq(tm_chain_build(&c, v, &rt, &err), 0);
    capture out = {0};
    tm_chain_add_output(&c, 0, capture_row, &out);
    ck_assert_int_eq(tm_chain_open(&c), 0);
    int64_t start = time_mono_ms();
    int calls = 0, waits = 0;
    while (time_mono_ms() - start < 300) {
        tm_source_status st;
        int64_t wake = 0;
        ck_assert_int_eq(c.ops[0]->kind->produce(c.ops[0], 0, &st, &wake), 0);
        calls++;
        if (st == TM_SOURCE_WAIT) {
            waits++;
            ck_assert_int_gt(wake, time_mono_ms() - 1);
            int64_t d = wake - time_mono_ms();
            if (d > 0) usleep((useconds_t)d * 1000);
        }
    }
    /* 200 rows/s for 0.3 s: about 60, and the source asked to wait rather than being polled. */
    ck_assert_int_ge(out.n, 45);
    ck_assert_int_le(out.n, 75);
    ck_assert_int_gt(waits, 10);
    ck_assert_int_lt(calls, 200);
    tm_chain_close(&c);
    capture_free(&out);
    free_vertex(v);
}
END_TEST

START_TEST(text_file_lines) {
    char path[] = "/tmp/flint-check-tm-XXXXXX";
    int fd = mkstemp(path);
    const char text[] = "first line\r\nsecond\n\nlast without newline";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)sizeof text - 1);
    close(fd);
    Flint__Graph__JobVertex *v = mkvertex(1, mkop("source.text_file", "", "line STRING", "path", path, NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(run_source(v, &rt, &out, 100), 0);
    expect_lines(&out, 4, ROWS("first line", "second", "", "last without newline"));
    capture_free(&out);
    /* Other subtasks read nothing. */
    rt = mkrt(1, 2);
    ck_assert_int_eq(run_source(v, &rt, &out, 100), 0);
    ck_assert_int_eq(out.n, 0);
    free_vertex(v);
    unlink(path);
    v = mkvertex(1, mkop("source.text_file", "", "line STRING", "path", "/nonexistent/file", NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(run_source(v, &rt, &out, 100), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "cannot open '/nonexistent/file'"));
    free_vertex(v);
}
END_TEST

typedef struct server {
    int fd, port;
    const char *send;
} server;

static void *serve_once(void *arg) {
    server *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c >= 0) {
        /* In two pieces, the first ending mid-line. */
        size_t n = strlen(s->send), half = n / 2;
        ck_assert_int_eq(write(c, s->send, half), (ssize_t)half);
        usleep(50000);
        ck_assert_int_eq(write(c, s->send + half, n - half), (ssize_t)(n - half));
        close(c);
    }
    return NULL;
}

START_TEST(socket_lines_until_close) {
    server s = {.send = "hello world\r\nsecond line\nno newline at the end"};
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s.fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s.fd, 1), 0);
    socklen_t al = sizeof a;
    getsockname(s.fd, (struct sockaddr *)&a, &al);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    pthread_t th;
    pthread_create(&th, NULL, serve_once, &s);
    Flint__Graph__JobVertex *v = mkvertex(1, mkop("source.socket", "", "line STRING", "host", "127.0.0.1", "port", port, NULL));
    tm_runtime rt = mkrt(0, 1);
    capture out = {0};
    ck_assert_int_eq(run_source(v, &rt, &out, 1000), 0);
    pthread_join(th, NULL);
    expect_lines(&out, 3, ROWS("hello world", "second line", "no newline at the end"));
    ck_assert_int_gt(rt.idle_ns, 0);
    capture_free(&out);
    free_vertex(v);
    /* Nobody listens any more: the connection is refused. */
    close(s.fd);
    v = mkvertex(1, mkop("source.socket", "", "line STRING", "host", "127.0.0.1", "port", port, NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(run_source(v, &rt, &out, 10), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "cannot connect to 127.0.0.1:"));
    free_vertex(v);
}
END_TEST

/* ---- sinks ---------------------------------------------------------------------------------------------------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = xcalloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(text_file_sink_writes_part_files) {
    char dir[] = "/tmp/flint-check-tm-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *out_dir = xasprintf("%s/a/b", dir);
    Flint__Graph__JobVertex *v = mkvertex(1, mkop("sink.text_file", "w STRING, n BIGINT", "", "path", out_dir, NULL));
    tm_runtime rt = mkrt(2, 4);
    ck_assert_int_eq(RUN(v, &rt, NULL, "hello,1", "world,22", ",3"), 0);
    char *part = xasprintf("%s/part-2", out_dir);
    char *got = slurp(part);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "hello 1\nworld 22\n 3\n");
    free(got);
    unlink(part);
    free(part);
    free_vertex(v);
    /* A path that is a file, not a directory. */
    char *file = xasprintf("%s/a/b/file", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    v = mkvertex(1, mkop("sink.text_file", "w STRING, n BIGINT", "", "path", file, NULL));
    rt = mkrt(0, 1);
    ck_assert_int_ne(RUN(v, &rt, NULL, "x,1"), 0);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "cannot create directory"));
    free_vertex(v);
    unlink(file);
    free(file);
    char *cmd = xasprintf("rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    free(out_dir);
}
END_TEST

START_TEST(print_sink_prefixes_subtask_when_parallel) {
    tm_print_out = tmpfile();
    Flint__Graph__JobVertex *v = mkvertex(1, mkop("sink.print", "w STRING, n BIGINT", "", NULL));
    tm_runtime rt = mkrt(1, 3);
    ck_assert_int_eq(RUN(v, &rt, NULL, "hello,1", "x,2"), 0);
    rt = mkrt(0, 1);
    ck_assert_int_eq(RUN(v, &rt, NULL, "solo,3"), 0);
    rewind(tm_print_out);
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, tm_print_out);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "2> hello 1\n2> x 2\nsolo 3\n");
    fclose(tm_print_out);
    tm_print_out = NULL;
    free_vertex(v);
}
END_TEST

/* ---- chains ---------------------------------------------------------------------------------------------------- */

static int order_log[16], order_n;
static int log_and_pass(void *ud, const flint_row *row) {
    order_log[order_n++] = (int)(intptr_t)ud;
    return FLINT_OK;
}

START_TEST(chain_fans_out_and_ends_once_per_operator) {
    /* op0 (map) feeds op1 and op2 (both filters) which both feed op3 (a sink): op3 has two
     * chained inputs and must end once, after both. */
    Flint__Graph__OperatorDef *m = mkop("map", "value BIGINT", "value BIGINT", "fn", "double_value", NULL);
    Flint__Graph__OperatorDef *f1 = mkop("filter", "value BIGINT", "value BIGINT", "fn", "is_even", NULL);
    Flint__Graph__OperatorDef *f2 = mkop("filter", "value BIGINT", "value BIGINT", "fn", "is_even", NULL);
    Flint__Graph__OperatorDef *s = mkop("sink.fn", "value BIGINT", "", "fn", "summing_sink", NULL);
    Flint__Graph__JobVertex *v = mkvertex(4, m, f1, f2, s);
    /* rewire: 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3 */
    free(m->chained_outputs);
    m->chained_outputs = xcalloc(2, sizeof(int32_t));
    m->chained_outputs[0] = 1;
    m->chained_outputs[1] = 2;
    m->n_chained_outputs = 2;
    f1->chained_outputs[0] = 3;
    ck_assert_int_eq(f2->chained_outputs[0], 3);
    tm_runtime rt = mkrt(0, 1);
    tm_chain c;
    flint_err err = {0};
    ck_assert_int_eq(tm_chain_build(&c, v, &rt, &err), 0);
    ck_assert_int_eq(c.ops[3]->n_inputs, 2);
    tm_chain_add_output(&c, 1, log_and_pass, (void *)1);
    tm_chain_add_output(&c, 2, log_and_pass, (void *)2);
    ck_assert_int_eq(tm_chain_open(&c), 0);
    sunk_sum = 0;
    order_n = 0;
    flint_row_builder b;
    flint_row_builder_init(&b, c.ops[0]->in_schema);
    flint_row_set_long(&b, 0, 5);
    flint_row row = flint_row_builder_row(&b);
    ck_assert_int_eq(tm_op_process(c.ops[0], &row), 0);
    ck_assert_int_eq(sunk_sum, 20); /* 10 through both branches */
    ck_assert_int_eq(order_n, 2);
    ck_assert_int_eq(order_log[0], 1); /* depth first, in order */
    ck_assert_int_eq(order_log[1], 2);
    ck_assert_int_eq(tm_chain_end_input(&c), 0);
    ck_assert_int_eq(c.ops[3]->ended_inputs, 2);
    flint_row_builder_free(&b);
    tm_chain_close(&c);
    free_vertex(v);
}
END_TEST

START_TEST(keyed_state_grows_and_replaces) {
    /* The rolling aggregations' state: value state of the hashmap backend (check_state.c tests
     * both backends in depth). */
    tm_state_config cfg = {.type = TM_BACKEND_HASHMAP, .max_parallelism = 128, .kg_first = 0, .kg_last = 127};
    tm_state_backend *b;
    tm_state *s;
    flint_err err = {0};
    ck_assert_int_eq(tm_state_backend_open(&cfg, &b, &err), 0);
    ck_assert_int_eq(tm_state_register(b, "agg", TM_STATE_VALUE, 0, &s, &err), 0);
    char key[32];
    const uint8_t *v;
    size_t n;
    for (int i = 0; i < 10000; i++) {
        int kl = snprintf(key, sizeof key, "key-%d", i);
        int64_t val = i;
        tm_state_set_key_hashed(b, key, (size_t)kl);
        tm_state_value_put(s, NULL, 0, &val, sizeof val);
    }
    ck_assert_int_eq(tm_state_count(s), 10000);
    for (int i = 0; i < 10000; i += 7) {
        int kl = snprintf(key, sizeof key, "key-%d", i);
        tm_state_set_key_hashed(b, key, (size_t)kl);
        ck_assert(tm_state_value_get(s, NULL, 0, &v, &n));
        int64_t val;
        memcpy(&val, v, 8);
        ck_assert_int_eq(val, i);
    }
    tm_state_set_key_hashed(b, "nope", 4);
    ck_assert(!tm_state_value_get(s, NULL, 0, &v, &n));
    /* A longer value replaces a shorter one; the empty key is a key. */
    char big[300];
    memset(big, 'x', sizeof big);
    tm_state_set_key_hashed(b, "key-1", 5);
    tm_state_value_put(s, NULL, 0, big, sizeof big);
    ck_assert(tm_state_value_get(s, NULL, 0, &v, &n));
    ck_assert_int_eq(n, 300);
    ck_assert_int_eq(tm_state_count(s), 10000);
    tm_state_set_key_hashed(b, "", 0);
    tm_state_value_put(s, NULL, 0, "e", 1);
    ck_assert(tm_state_value_get(s, NULL, 0, &v, &n));
    /* Putting a value that lives in the stored value itself. */
    tm_state_set_key_hashed(b, "key-1", 5);
    ck_assert(tm_state_value_get(s, NULL, 0, &v, &n));
    tm_state_value_put(s, NULL, 0, v + 1, 10);
    ck_assert(tm_state_value_get(s, NULL, 0, &v, &n));
    ck_assert_int_eq(n, 10);
    ck_assert_int_eq(v[0], 'x');
    tm_state_backend_close(b);
}
END_TEST

Suite *tm_ops_suite(void) {
    Suite *s = suite_create("tm_ops");
    TCase *tc = tcase_create("keyed");
    tcase_add_test(tc, sum_keeps_first_row_fields);
    tcase_add_test(tc, min_and_max_update_one_field);
    tcase_add_test(tc, min_by_and_max_by_take_whole_rows_first_wins_ties);
    tcase_add_test(tc, aggregations_over_int_double_and_nulls);
    tcase_add_test(tc, aggregate_with_composite_key);
    tcase_add_test(tc, aggregate_refuses_bad_configuration);
    tcase_add_test(tc, reduce_with_user_function_and_key_selector);
    tcase_add_test(tc, keyed_state_grows_and_replaces);
    suite_add_tcase(s, tc);
    tc = tcase_create("udf");
    tcase_add_test(tc, map_filter_flat_map_process_chain);
    tcase_add_test(tc, project_copies_fields_and_refuses_bad_plans);
    tcase_add_test(tc, sink_fn_and_open_close);
    tcase_add_test(tc, user_failures_fail_the_chain);
    tcase_add_test(tc, chain_fans_out_and_ends_once_per_operator);
    suite_add_tcase(s, tc);
    tc = tcase_create("sources");
    tcase_add_test(tc, sequence_is_split_among_subtasks);
    tcase_add_test(tc, elements_parse_and_split);
    tcase_add_test(tc, datagen_counts_over_all_subtasks);
    tcase_add_test(tc, datagen_rate_limit_waits_instead_of_spinning);
    tcase_add_test(tc, datagen_rows_are_well_formed);
    tcase_add_test(tc, text_file_lines);
    tcase_add_test(tc, socket_lines_until_close);
    suite_add_tcase(s, tc);
    tc = tcase_create("sinks");
    tcase_add_test(tc, text_file_sink_writes_part_files);
    tcase_add_test(tc, print_sink_prefixes_subtask_when_parallel);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(tm_ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

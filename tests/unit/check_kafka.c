/* Unit tests of the Kafka connectors (taskmanager/connectors/) against librdkafka's mock cluster
 * in the test process: partition assignment, the formats, the source (startup modes, bounded
 * reading, metadata columns, parse errors, dead letters, per-partition watermarks and idleness,
 * partition discovery, snapshot and exact restore, offsets committed on checkpoint completion) and
 * the sink (delivery, partitioners, transactions per checkpoint). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "connectors/formats.h"
#include "connectors/kafka.h"
#include "operators/operator.h"
#include "task/chain.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include "check_op_helpers.h"

/* ---- the mock cluster ------------------------------------------------------------------------------ */

static rd_kafka_t *mock_rk, *prod;
static rd_kafka_mock_cluster_t *mc;
static char bootstrap[512];

static void mock_up(void) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(mock_rk);
    mc = rd_kafka_mock_cluster_new(mock_rk, 3);
    ck_assert_ptr_nonnull(mc);
    snprintf(bootstrap, sizeof bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(prod);
}

static void mock_down(void) {
    if (prod) rd_kafka_destroy(prod);
    if (mc) rd_kafka_mock_cluster_destroy(mc);
    if (mock_rk) rd_kafka_destroy(mock_rk);
    prod = mock_rk = NULL;
    mc = NULL;
}

static void topic(const char *name, int partitions) {
    ck_assert_int_eq(rd_kafka_mock_topic_create(mc, name, partitions, 1), 0);
}

/* Produce one record (key may be NULL; ts 0: now) and wait for it. */
static void send_rec(const char *t, int partition, const char *key, const char *value, int64_t ts) {
    rd_kafka_resp_err_t e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_PARTITION(partition),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
                                              RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_TIMESTAMP(ts),
                                              RD_KAFKA_V_END);
    ck_assert_int_eq(e, 0);
}

static void flush_prod(void) { ck_assert_int_eq(rd_kafka_flush(prod, 10000), 0); }

/* Every record of topic t (all partitions from the start) as "p:key:value" lines, followed by
 * "|name=value,..." when the record has headers (a header without a value: its name alone). */
static int consume_all(const char *t, char ***out) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "check-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, t, NULL);
    ck_assert_int_eq(rd_kafka_metadata(c, 0, rkt, &md, 5000), 0);
    int np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) rd_kafka_topic_partition_list_add(l, t, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    int eofs = 0, n = 0, cap = 16;
    char **lines = xmalloc((size_t)cap * sizeof *lines);
    int64_t deadline = time_mono_ms() + 10000;
    while (eofs < np && time_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eofs++;
        else if (!m->err) {
            if (n == cap) lines = xrealloc(lines, (size_t)(cap *= 2) * sizeof *lines);
            char hs[512] = "";
            rd_kafka_headers_t *h;
            const char *name;
            const void *val;
            size_t vl, hl = 0;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
                for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &vl) == 0 && hl < 400; i++)
                    hl += (size_t)snprintf(hs + hl, sizeof hs - hl, "%s%s%s%.*s", i ? "," : "|", name, val ? "=" : "",
                                           (int)vl, val ? (const char *)val : "");
            lines[n++] = xasprintf("%d:%.*s:%.*s%s", m->partition, (int)m->key_len, m->key ? (char *)m->key : "",
                                   (int)m->len, m->payload ? (char *)m->payload : "", hs);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    *out = lines;
    return n;
}

static void free_lines(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* ---- operators --------------------------------------------------------------------------------------- */

/* An operator of kind with schemas and key/value params (NULL-ended), alone in a vertex. */
static Flint__Graph__JobVertex *vertex(const char *kind, const char *in, const char *out, ...) {
    va_list ap;
    va_start(ap, out);
    Flint__Graph__OperatorDef *d = mkopv(kind, in, out, ap);
    va_end(ap);
    Flint__Graph__JobVertex *v = XNEW(Flint__Graph__JobVertex);
    flint__graph__job_vertex__init(v);
    v->name = xstrdup("kafka test");
    v->parallelism = 1;
    v->operators = xcalloc(1, sizeof *v->operators);
    v->operators[v->n_operators++] = d;
    return v;
}

static void free_vertex(Flint__Graph__JobVertex *v) { flint__graph__job_vertex__free_unpacked(v, NULL); }

static tm_runtime mkrt(int subtask, int parallelism) {
    tm_runtime rt = {.subtask = subtask, .parallelism = parallelism, .max_parallelism = 128,
                     .task_name = "kafka test", .auto_watermark_interval_ms = 50};
    return rt;
}

#define MAXOUT 20000
typedef struct capture {
    char *lines[MAXOUT];
    int n;
    int64_t wms[1024];
    int nwm;
    int idle_changes;
    bool idle;
} capture;

static int capture_row(void *ud, const flint_row *row) {
    capture *c = ud;
    char buf[1024];
    flint_row_format(row, " ", buf, sizeof buf);
    ck_assert_int_lt(c->n, MAXOUT);
    c->lines[c->n++] = xstrdup(buf);
    return FLINT_OK;
}
static int capture_wm(void *ud, int64_t wm) {
    capture *c = ud;
    if (c->nwm < 1024) c->wms[c->nwm++] = wm;
    return FLINT_OK;
}
static int capture_idle(void *ud, bool idle) {
    capture *c = ud;
    c->idle = idle;
    c->idle_changes++;
    return FLINT_OK;
}
static void capture_free(capture *c) {
    for (int i = 0; i < c->n; i++) free(c->lines[i]);
    c->n = c->nwm = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A running chain (one operator). */
typedef struct run {
    tm_chain c;
    tm_runtime rt;
    capture *out;
} run;

static int run_open(run *r, Flint__Graph__JobVertex *v, int subtask, int p, capture *out, capture *side,
                    const char *side_tag) {
    r->rt = mkrt(subtask, p);
    r->out = out;
    flint_err err = {0};
    ck_assert_msg(tm_chain_build(&r->c, v, &r->rt, &err) == 0, "%s", err.msg);
    if (out) {
        tm_output o = {.fn = capture_row, .ud = out, .wm_fn = capture_wm, .idle_fn = capture_idle};
        tm_chain_add_output_tagged(&r->c, 0, &o, NULL);
    }
    if (side) {
        tm_output o = {.fn = capture_row, .ud = side};
        tm_chain_add_output_tagged(&r->c, 0, &o, side_tag);
    }
    return tm_chain_open(&r->c);
}

static tm_op *head(run *r) { return r->c.ops[0]; }

/* produce() until the source ends, until `until` rows were captured (until > 0), or ms passed.
 * Returns the status (FLINT_OK also on time out); *ended: the source ended. */
static int run_source(run *r, int until, int64_t ms, bool *ended) {
    int64_t deadline = time_mono_ms() + ms;
    if (ended) *ended = false;
    while (time_mono_ms() < deadline) {
        tm_source_status st = TM_SOURCE_MORE;
        int64_t wake = 0, next;
        int rc = head(r)->kind->produce(head(r), time_mono_ms() + 20, &st, &wake);
        if (rc) return rc;
        if ((rc = tm_runtime_run_ticks(&r->rt, time_mono_ms(), &next))) return rc;
        if (st == TM_SOURCE_END) {
            if (ended) *ended = true;
            return FLINT_OK;
        }
        if (until > 0 && r->out && r->out->n >= until) return FLINT_OK;
        if (st == TM_SOURCE_WAIT) usleep(2000);
    }
    return FLINT_OK;
}

static void run_close(run *r) {
    tm_chain_close(&r->c);
    free(r->rt.ticks);   /* the task frees its runtime's ticks */
    r->rt.ticks = NULL;
}

#define SRC_SCHEMA "v STRING, k STRING METADATA"

/* ---- assignment ------------------------------------------------------------------------------------- */

START_TEST(split_owner_matches_flink) {
    ck_assert_int_eq(kafka_java_string_hash("a"), 97);
    ck_assert_int_eq(kafka_java_string_hash("topic"), 110546223);
    ck_assert_int_eq(kafka_java_string_hash("orders"), -1008770331);
    /* ((hash * 31) & 0x7fffffff) % p + partition) % p, values from Java */
    int want_topic[] = {1, 2, 3, 0}, want_orders[] = {3, 0, 1, 2};
    for (int p = 0; p < 4; p++) {
        ck_assert_int_eq(kafka_split_owner("topic", p, 4), want_topic[p]);
        ck_assert_int_eq(kafka_split_owner("orders", p, 4), want_orders[p]);
        ck_assert_int_eq(kafka_split_owner("orders", p, 1), 0);
    }
}
END_TEST

/* ---- formats ---------------------------------------------------------------------------------------- */

static int decode(const char *format, const char *schema_text, const char *data, char *out, size_t cap, flint_err *err) {
    flint_schema *s;
    ck_assert_int_eq(flint_schema_parse(schema_text, &s, err), 0);
    int n = flint_schema_field_count(s), cols[64];
    for (int i = 0; i < n; i++) cols[i] = i;
    fmt f;
    ck_assert_int_eq(fmt_init(&f, format, s, cols, n, false, NULL, NULL, "", err), 0);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_row_builder_reset(&b);
    int rc = fmt_decode(&f, data, strlen(data), &b, err);
    if (!rc) {
        flint_row r = flint_row_builder_row(&b);
        flint_row_format(&r, "|", out, cap);
    }
    flint_row_builder_free(&b);
    fmt_free(&f);
    flint_schema_free(s);
    return rc;
}

static void encode(const char *format, const char *schema_text, const char *row_text, char *out, size_t cap) {
    flint_schema *s;
    flint_err err = {0};
    ck_assert_int_eq(flint_schema_parse(schema_text, &s, &err), 0);
    int n = flint_schema_field_count(s), cols[64];
    for (int i = 0; i < n; i++) cols[i] = i;
    fmt f;
    ck_assert_int_eq(fmt_init(&f, format, s, cols, n, true, NULL, NULL, "", &err), 0);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    ck_assert_msg(flint_row_parse(&b, row_text, strlen(row_text), ',', &err) == 0, "%s", err.msg);
    flint_row r = flint_row_builder_row(&b);
    const void *p;
    size_t len;
    ck_assert_msg(fmt_encode(&f, &r, &p, &len, &err) == 0, "%s", err.msg);
    ck_assert_uint_lt(len, cap);
    memcpy(out, p, len);
    out[len] = '\0';
    flint_row_builder_free(&b);
    fmt_free(&f);
    flint_schema_free(s);
}

START_TEST(json_decodes_by_name_with_types) {
    char out[512];
    flint_err err = {0};
    const char *schema = "name STRING, n INT, big BIGINT, x DOUBLE, ok BOOLEAN, ts TIMESTAMP(3), raw BYTES, missing STRING";
    ck_assert_int_eq(decode("json", schema,
                            "{\"n\": 7, \"name\": \"é\", \"big\": \"12345678901\", \"x\": 1.5, \"ok\": true, "
                            "\"ts\": \"2023-11-14 22:13:20.123\", \"raw\": \"AAH/\", \"extra\": [1]}",
                            out, sizeof out, &err),
                     0);
    ck_assert_str_eq(out, "é|7|12345678901|1.5|true|1700000000123|0001ff|null");
    ck_assert_int_eq(decode("json", "n INT, s STRING", "{\"n\": 1700000000000, \"s\": {\"a\": 1}}", out, sizeof out, &err),
                     FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "field 'n'") && strstr(err.msg, "out of range"), "%s", err.msg);
    ck_assert_int_eq(decode("json", "n BIGINT", "{\"n\": \"abc\"}", out, sizeof out, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "expected BIGINT"), "%s", err.msg);
    ck_assert_int_eq(decode("json", "b BOOLEAN", "{\"b\": 1}", out, sizeof out, &err), FLINT_INVALID);
    ck_assert_int_eq(decode("json", "n BIGINT", "{\"n\": 1", out, sizeof out, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "not JSON"), "%s", err.msg);
    ck_assert_int_eq(decode("json", "n BIGINT", "[1]", out, sizeof out, &err), FLINT_INVALID);
    /* objects into STRING columns are their JSON text */
    ck_assert_int_eq(decode("json", "s STRING, t TIMESTAMP(3)", "{\"s\": {\"a\": 1}, \"t\": 5}", out, sizeof out, &err), 0);
    ck_assert_str_eq(out, "{\"a\":1}|5");
}
END_TEST

START_TEST(csv_quotes_nulls_and_errors) {
    char out[512];
    flint_err err = {0};
    ck_assert_int_eq(decode("csv", "a STRING, b INT, c STRING, d DOUBLE", "x,\"1\",\"he said \"\"hi\"\", ok\",", out,
                            sizeof out, &err),
                     0);
    ck_assert_str_eq(out, "x|1|he said \"hi\", ok|null");
    ck_assert_int_eq(decode("csv", "a STRING, b INT", "x,1,2", out, sizeof out, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "expected 2 fields"), "%s", err.msg);
    ck_assert_int_eq(decode("csv", "a STRING, b INT", "x,y", out, sizeof out, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "field 'b'"), "%s", err.msg);
    ck_assert_int_eq(decode("csv", "a STRING", "\"open", out, sizeof out, &err), FLINT_INVALID);
    char enc[256];
    encode("csv", "a STRING, b BIGINT, c STRING, d STRING", "x,5,a\"b,", enc, sizeof enc);
    ck_assert_str_eq(enc, "x,5,\"a\"\"b\",\"\"");
    ck_assert_int_eq(decode("csv", "a STRING, b BIGINT, c STRING, d STRING", enc, out, sizeof out, &err), 0);
    ck_assert_str_eq(out, "x|5|a\"b|");
}
END_TEST

START_TEST(json_and_text_encode) {
    char enc[256];
    encode("json", "w STRING, n BIGINT, x DOUBLE, t TIMESTAMP(3), b BOOLEAN, z INT", "hi,3,0.1,1700000000123,true,null",
           enc, sizeof enc);
    ck_assert_str_eq(enc, "{\"w\":\"hi\",\"n\":3,\"x\":0.10000000000000001,\"t\":\"2023-11-14 22:13:20.123\",\"b\":true,\"z\":null}");
    encode("text", "w STRING, n BIGINT", "hi,3", enc, sizeof enc);
    ck_assert_str_eq(enc, "hi 3");
    encode("raw", "w BYTES", "00ff41", enc, sizeof enc);
    ck_assert_int_eq((unsigned char)enc[1], 0xff);
    char out[64];
    flint_err err = {0};
    ck_assert_int_eq(decode("text", "line STRING", "ok line", out, sizeof out, &err), 0);
    ck_assert_int_eq(decode("text", "line STRING", "bad \xff", out, sizeof out, &err), FLINT_INVALID);
    ck_assert_msg(strstr(err.msg, "UTF-8"), "%s", err.msg);
}
END_TEST

START_TEST(timestamps_and_base64) {
    int64_t ms;
    ck_assert(fmt_parse_timestamp("2023-11-14T22:13:20.123Z", 24, &ms));
    ck_assert_int_eq(ms, 1700000000123);
    ck_assert(fmt_parse_timestamp("-5", 2, &ms));
    ck_assert_int_eq(ms, -5);
    ck_assert(!fmt_parse_timestamp("2023-02-29", 10, &ms));
    char buf[32];
    fmt_timestamp_text(-1, buf);
    ck_assert_str_eq(buf, "1969-12-31 23:59:59.999");
    char b64[16];
    fmt_base64_encode("ab", 2, b64);
    ck_assert_str_eq(b64, "YWI=");
    unsigned char raw[8];
    size_t n;
    ck_assert(fmt_base64_decode("YWI=", 4, raw, &n));
    ck_assert_int_eq(n, 2);
    ck_assert(!fmt_base64_decode("Y*I=", 4, raw, &n));
}
END_TEST

/* ---- the source ------------------------------------------------------------------------------------- */

/* 3 partitions x 50 records "p<partition>-<i>" keyed "k<i>". */
static void fill_topic(const char *t, int partitions, int per) {
    topic(t, partitions);
    for (int p = 0; p < partitions; p++)
        for (int i = 0; i < per; i++) {
            char k[16], v[32];
            snprintf(k, sizeof k, "k%d", i);
            snprintf(v, sizeof v, "p%d-%d", p, i);
            send_rec(t, p, k, v, 0);
        }
    flush_prod();
}

START_TEST(bounded_source_reads_each_record_once) {
    mock_up();
    fill_topic("t", 3, 50);
    capture out = {0};
    run r;
    Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING, k STRING, p INT, o BIGINT, t STRING", "bootstrap.servers",
                                        bootstrap, "topics", "t", "bounded", "true", "metadata",
                                        "1=key,2=partition,3=offset,4=topic", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
    bool ended;
    ck_assert_int_eq(run_source(&r, 0, 10000, &ended), 0);
    ck_assert(ended);
    ck_assert_int_eq(out.n, 150);
    qsort(out.lines, (size_t)out.n, sizeof *out.lines, cmp_str);
    for (int i = 1; i < out.n; i++) ck_assert_str_ne(out.lines[i - 1], out.lines[i]);
    /* "p1-7 k7 1 7 t" */
    bool found = false;
    for (int i = 0; i < out.n; i++) found |= strcmp(out.lines[i], "p1-7 k7 1 7 t") == 0;
    ck_assert(found);
    kafka_source_stats st;
    kafka_source_get_stats(head(&r), &st);
    ck_assert_int_eq(st.partitions, 3);
    ck_assert_int_eq(st.finished, 3);
    run_close(&r);
    capture_free(&out);
    free_vertex(v);
    mock_down();
}
END_TEST

/* The headers metadata column: binary, look-alike, empty, valueless and repeated headers. */
START_TEST(source_headers_column) {
    mock_up();
    topic("hs", 1);
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "bin", -1, "\xff\x00", 2);
    rd_kafka_header_add(h, "look", -1, "AAE=", -1);
    rd_kafka_header_add(h, "e", -1, "", 0);
    rd_kafka_header_add(h, "n", -1, NULL, 0);
    rd_kafka_header_add(h, "bin", -1, "x", -1);
    ck_assert_int_eq(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("hs"), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE("v", 1),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                     0);
    send_rec("hs", 0, NULL, "w", 0);
    flush_prod();
    capture out = {0};
    run r;
    Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING, h STRING", "bootstrap.servers", bootstrap, "topics",
                                        "hs", "bounded", "true", "metadata", "1=headers", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
    ck_assert_int_eq(run_source(&r, 0, 10000, NULL), 0);
    ck_assert_int_eq(out.n, 2);
    ck_assert_str_eq(out.lines[0], "v {\"bin\":[{\"base64\":\"/wA=\"},\"x\"],\"look\":\"AAE=\",\"e\":\"\",\"n\":null}");
    ck_assert_str_eq(out.lines[1], "w {}");
    run_close(&r);
    capture_free(&out);
    free_vertex(v);
    mock_down();
}
END_TEST

START_TEST(subtasks_split_the_partitions) {
    mock_up();
    fill_topic("orders", 4, 10);
    int total = 0;
    for (int sub = 0; sub < 3; sub++) {
        capture out = {0};
        run r;
        Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING, p INT", "bootstrap.servers", bootstrap, "topics",
                                            "orders", "bounded", "true", "metadata", "1=partition", NULL);
        ck_assert_int_eq(run_open(&r, v, sub, 3, &out, NULL, NULL), 0);
        ck_assert_int_eq(run_source(&r, 0, 10000, NULL), 0);
        for (int i = 0; i < out.n; i++) {
            int p = atoi(strrchr(out.lines[i], ' ') + 1);
            ck_assert_int_eq(kafka_split_owner("orders", p, 3), sub);
        }
        total += out.n;
        run_close(&r);
        capture_free(&out);
        free_vertex(v);
    }
    ck_assert_int_eq(total, 40);
    mock_down();
}
END_TEST

START_TEST(snapshot_and_restore_are_exact) {
    mock_up();
    fill_topic("t", 4, 500);
    char *all[2100];
    int nall = 0;
    kafka_split *sp;
    int n;
    {
        capture out = {0};
        run r;
        Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "t",
                                            "group.id", "g1", "records-per-second", "3000", NULL);
        ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
        ck_assert_int_eq(run_source(&r, 700, 10000, NULL), 0);
        ck_assert_int_ge(out.n, 700);
        ck_assert_int_lt(out.n, 2000);
        flint_err err = {0};
        ck_assert_int_eq(kafka_source_snapshot(head(&r), 7, &sp, &n, &err), 0);
        ck_assert_int_eq(n, 5);   /* 4 partitions + the marker */
        int64_t sum = 0;
        for (int i = 0; i < n; i++) sum += sp[i].position;
        ck_assert_int_eq(sum, out.n);
        int at_snapshot = out.n;   /* rows after the snapshot would be read again after a restore */
        /* completion commits the positions to the group */
        ck_assert_int_eq(kafka_source_checkpoint_complete(head(&r), 7), 0);
        run_source(&r, 0, 300, NULL);   /* serves the commit's result */
        kafka_source_stats st;
        kafka_source_get_stats(head(&r), &st);
        ck_assert_int_eq(st.commits, 1);
        for (int i = 0; i < at_snapshot; i++) all[nall++] = xstrdup(out.lines[i]);
        run_close(&r);
        capture_free(&out);
        free_vertex(v);
    }
    {
        /* the committed offsets, seen by another consumer of the group */
        char errs[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errs, sizeof errs);
        rd_kafka_conf_set(conf, "group.id", "g1", errs, sizeof errs);
        rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errs, sizeof errs);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
        for (int p = 0; p < 4; p++) rd_kafka_topic_partition_list_add(l, "t", p);
        ck_assert_int_eq(rd_kafka_committed(c, l, 5000), 0);
        for (int i = 0; i < n; i++) {
            if (sp[i].id[0] == '#') continue;
            int p = atoi(strrchr(sp[i].id, '-') + 1);
            ck_assert_int_eq(l->elems[p].offset, sp[i].position);
        }
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(c);
    }
    {
        /* a new attempt restored from the snapshot reads exactly the rest */
        capture out = {0};
        run r;
        Flint__Graph__JobVertex *v =
            vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "t", "startup.mode", "latest", NULL);
        ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
        flint_err err = {0};
        ck_assert_int_eq(kafka_source_restore(head(&r), sp, n, &err), 0);
        ck_assert_int_eq(run_source(&r, 2000 - nall, 10000, NULL), 0);
        run_source(&r, 0, 200, NULL);   /* nothing more comes */
        ck_assert_int_eq(out.n, 2000 - nall);
        for (int i = 0; i < out.n; i++) all[nall++] = xstrdup(out.lines[i]);
        run_close(&r);
        capture_free(&out);
        free_vertex(v);
    }
    qsort(all, (size_t)nall, sizeof *all, cmp_str);
    ck_assert_int_eq(nall, 2000);
    for (int i = 1; i < nall; i++) ck_assert_str_ne(all[i - 1], all[i]);
    for (int i = 0; i < nall; i++) free(all[i]);
    kafka_splits_free(sp, n);
    mock_down();
}
END_TEST

START_TEST(restore_at_another_parallelism) {
    mock_up();
    fill_topic("r", 4, 300);
    char **all = xmalloc(4000 * sizeof *all);
    int nall = 0;
    kafka_split *old[2];
    int nold[2];
    for (int sub = 0; sub < 2; sub++) {
        capture out = {0};
        run r;
        Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "r",
                                            "records-per-second", "2000", NULL);
        ck_assert_int_eq(run_open(&r, v, sub, 2, &out, NULL, NULL), 0);
        ck_assert_int_eq(run_source(&r, 150, 10000, NULL), 0);
        flint_err err = {0};
        ck_assert_int_eq(kafka_source_snapshot(head(&r), 1, &old[sub], &nold[sub], &err), 0);
        for (int i = 0; i < out.n; i++) all[nall++] = xstrdup(out.lines[i]);
        run_close(&r);
        capture_free(&out);
        free_vertex(v);
    }
    /* As the jobmanager deals them out at parallelism 3: element k (old subtask order) to k % 3. */
    kafka_split *flat[16];
    int nflat = 0;
    for (int sub = 0; sub < 2; sub++)
        for (int i = 0; i < nold[sub]; i++) flat[nflat++] = &old[sub][i];
    for (int sub = 0; sub < 3; sub++) {
        kafka_split mine[16];
        int n = 0;
        for (int k = sub; k < nflat; k += 3) mine[n++] = *flat[k];
        ck_assert_int_gt(n, 0);
        capture out = {0};
        run r;
        Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "r", NULL);
        ck_assert_int_eq(run_open(&r, v, sub, 3, &out, NULL, NULL), 0);
        flint_err err = {0};
        ck_assert_int_eq(kafka_source_restore(head(&r), mine, n, &err), 0);
        int before;
        do {
            before = out.n;
            run_source(&r, 0, 400, NULL);
        } while (out.n > before);
        for (int i = 0; i < out.n; i++) all[nall++] = xstrdup(out.lines[i]);
        run_close(&r);
        capture_free(&out);
        free_vertex(v);
    }
    qsort(all, (size_t)nall, sizeof *all, cmp_str);
    ck_assert_int_eq(nall, 1200);
    for (int i = 1; i < nall; i++) ck_assert_str_ne(all[i - 1], all[i]);
    for (int i = 0; i < nall; i++) free(all[i]);
    free(all);
    kafka_splits_free(old[0], nold[0]);
    kafka_splits_free(old[1], nold[1]);
    mock_down();
}
END_TEST

START_TEST(startup_modes) {
    mock_up();
    topic("s", 2);
    for (int i = 0; i < 10; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        send_rec("s", i % 2, NULL, v, 1000 + i * 100);   /* timestamps 1000, 1100, ... */
    }
    flush_prod();
    /* commit group offsets: partition 0 at 3, partition 1 none */
    {
        char errs[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errs, sizeof errs);
        rd_kafka_conf_set(conf, "group.id", "g", errs, sizeof errs);
        rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errs, sizeof errs);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, "s", 0)->offset = 3;
        ck_assert_int_eq(rd_kafka_commit(c, l, 0), 0);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(c);
    }
    struct {
        const char *mode, *extra_k, *extra_v, *reset;
        int want;
    } cases[] = {
        {"earliest", NULL, NULL, NULL, 10},
        {"latest", NULL, NULL, NULL, 0},
        {"timestamp", "startup.timestamp", "1450", NULL, 5},        /* 1500..1900 */
        {"group-offsets", "group.id", "g", "earliest", 2 + 5},      /* p0 from 3 (offsets 3,4), p1 all */
        {"group-offsets", "group.id", "g", "latest", 2},
        {"specific-offsets", "startup.specific-offsets", "s:1:4", NULL, 1 + 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capture out = {0};
        run r;
        Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "s",
                                            "bounded", "true", "startup.mode", cases[i].mode, "startup.reset",
                                            cases[i].reset ? cases[i].reset : "earliest", cases[i].extra_k, cases[i].extra_v,
                                            NULL);
        ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
        bool ended;
        ck_assert_int_eq(run_source(&r, 0, 10000, &ended), 0);
        ck_assert(ended);
        ck_assert_msg(out.n == cases[i].want, "%s %s: %d rows, want %d", cases[i].mode, cases[i].reset ? cases[i].reset : "",
                      out.n, cases[i].want);
        run_close(&r);
        capture_free(&out);
        free_vertex(v);
    }
    /* group offsets with reset none and a partition without a committed offset: the job fails */
    capture out = {0};
    run r;
    Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "s", "bounded",
                                        "true", "startup.mode", "group-offsets", "group.id", "g", "startup.reset", "none", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
    ck_assert_int_ne(run_source(&r, 0, 10000, NULL), 0);
    ck_assert_msg(strstr(r.rt.err.msg, "partition 1 has no committed offset"), "%s", r.rt.err.msg);
    run_close(&r);
    free_vertex(v);
    mock_down();
}
END_TEST

START_TEST(parse_errors_fail_skip_or_dead_letter) {
    mock_up();
    topic("j", 1);
    send_rec("j", 0, NULL, "{\"n\": 1}", 0);
    send_rec("j", 0, "bad-key", "{\"n\": oops}", 0);
    send_rec("j", 0, NULL, "{\"n\": 3}", 0);
    flush_prod();
    for (int mode = 0; mode < 3; mode++) {
        capture out = {0}, side = {0};
        run r;
        Flint__Graph__JobVertex *v =
            vertex("source.kafka", "", "n BIGINT", "bootstrap.servers", bootstrap, "topics", "j", "bounded", "true", "format",
                   "json", "ignore-parse-errors", mode == 1 ? "true" : "false", "dead-letter.tag", mode == 2 ? "dlq" : NULL,
                   "side.dlq", mode == 2 ? FLINT_KAFKA_DEAD_LETTER_SCHEMA : NULL, NULL);
        ck_assert_int_eq(run_open(&r, v, 0, 1, &out, mode == 2 ? &side : NULL, "dlq"), 0);
        int rc = run_source(&r, 0, 10000, NULL);
        kafka_source_stats st;
        kafka_source_get_stats(head(&r), &st);
        if (mode == 0) {
            ck_assert_int_ne(rc, 0);
            ck_assert_msg(strstr(r.rt.err.msg, "topic j, partition 0, offset 1") && strstr(r.rt.err.msg, "not JSON"), "%s",
                          r.rt.err.msg);
        } else {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(out.n, 2);
            ck_assert_int_eq(st.parse_errors, 1);
        }
        if (mode == 2) {
            ck_assert_int_eq(side.n, 1);
            ck_assert_int_eq(st.dead_lettered, 1);
            ck_assert_msg(strncmp(side.lines[0], "j 0 1 ", 6) == 0 && strstr(side.lines[0], "6261642d6b6579"), "%s",
                          side.lines[0]);
        }
        run_close(&r);
        capture_free(&out);
        capture_free(&side);
        free_vertex(v);
    }
    mock_down();
}
END_TEST

START_TEST(watermarks_per_partition_and_idleness) {
    mock_up();
    topic("w", 2);
    for (int i = 0; i < 5; i++) send_rec("w", 0, NULL, "a", 10000 + i * 1000);   /* up to 14000 */
    send_rec("w", 1, NULL, "b", 2000);
    flush_prod();
    capture out = {0};
    run r;
    Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING", "bootstrap.servers", bootstrap, "topics", "w",
                                        "watermarks", "true", "out_of_orderness", "100", "idleness", "400", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
    ck_assert_int_eq(run_source(&r, 6, 5000, NULL), 0);
    run_source(&r, 0, 150, NULL);
    /* partition 1 holds the watermark back: 2000 - 100 - 1 */
    ck_assert_int_ge(out.nwm, 1);
    ck_assert_int_eq(out.wms[out.nwm - 1], 1899);
    /* partition 0 goes on, partition 1 goes idle: partition 0's watermark alone */
    for (int i = 0; i < 8; i++) {
        send_rec("w", 0, NULL, "a", 15000 + i * 1000);
        flush_prod();
        run_source(&r, 0, 100, NULL);
    }
    /* (a loaded machine may deliver the last record late: a little longer, within the idleness) */
    for (int k = 0; k < 3 && out.wms[out.nwm - 1] != 22000 - 101; k++) run_source(&r, 0, 100, NULL);
    ck_assert_int_eq(out.wms[out.nwm - 1], 22000 - 101);
    ck_assert(!out.idle);
    /* both idle: the subtask is idle */
    run_source(&r, 0, 800, NULL);
    ck_assert(out.idle);
    /* a record wakes it (the record's timestamp is its Kafka timestamp) */
    send_rec("w", 1, NULL, "c", 30000);
    flush_prod();
    run_source(&r, out.n + 1, 3000, NULL);
    ck_assert(!out.idle);
    run_close(&r);
    capture_free(&out);
    free_vertex(v);
    mock_down();
}
END_TEST

START_TEST(discovers_new_topics_and_partitions) {
    mock_up();
    topic("d-a", 2);
    send_rec("d-a", 0, NULL, "1", 0);
    flush_prod();
    capture out = {0};
    run r;
    Flint__Graph__JobVertex *v = vertex("source.kafka", "", "v STRING, t STRING", "bootstrap.servers", bootstrap,
                                        "topic-pattern", "d-.*", "discovery.interval", "200", "metadata", "1=topic", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, &out, NULL, NULL), 0);
    ck_assert_int_eq(run_source(&r, 1, 5000, NULL), 0);
    ck_assert_int_eq(out.n, 1);
    /* A topic created later, and records written to it before it is discovered: all read. */
    topic("d-b", 3);
    topic("other", 1);
    send_rec("d-b", 2, NULL, "2", 0);
    send_rec("d-b", 0, NULL, "3", 0);
    send_rec("other", 0, NULL, "x", 0);
    flush_prod();
    ck_assert_int_eq(run_source(&r, 3, 5000, NULL), 0);
    run_source(&r, 0, 300, NULL);
    ck_assert_int_eq(out.n, 3);
    kafka_source_stats st;
    kafka_source_get_stats(head(&r), &st);
    ck_assert_int_eq(st.partitions, 5);
    run_close(&r);
    capture_free(&out);
    free_vertex(v);
    mock_down();
}
END_TEST

/* ---- the sink --------------------------------------------------------------------------------------- */

static void sink_rows(run *r, int from, int to) {
    flint_row_builder b;
    flint_row_builder_init(&b, head(r)->in_schema);
    for (int i = from; i < to; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%d", i % 7);
        snprintf(v, sizeof v, "v%d", i);
        flint_row_builder_reset(&b);
        flint_row_set_cstring(&b, 0, k);
        flint_row_set_cstring(&b, 1, v);
        flint_row row = flint_row_builder_row(&b);
        ck_assert_int_eq(tm_op_process(head(r), &row), 0);
    }
    flint_row_builder_free(&b);
}

START_TEST(sink_writes_keys_and_partitions) {
    mock_up();
    topic("out", 4);
    topic("fixed", 4);
    topic("rr", 4);
    const char *parts[] = {"default", "fixed", "round-robin"}, *topics[] = {"out", "fixed", "rr"};
    for (int k = 0; k < 3; k++) {
        run r;
        Flint__Graph__JobVertex *v = vertex("sink.kafka", "k STRING, v STRING", "", "bootstrap.servers", bootstrap, "topic",
                                            topics[k], "key.fields", "0", "format", "json", "value.fields", "1", "partitioner",
                                            parts[k], NULL);
        ck_assert_int_eq(run_open(&r, v, 2, 3, NULL, NULL, NULL), 0);
        sink_rows(&r, 0, 100);
        ck_assert_int_eq(tm_chain_end_input(&r.c), 0);
        run_close(&r);
        free_vertex(v);
        char **lines;
        int n = consume_all(topics[k], &lines);
        ck_assert_int_eq(n, 100);
        int per[4] = {0};
        for (int i = 0; i < n; i++) per[lines[i][0] - '0']++;
        if (k == 1) ck_assert_int_eq(per[2], 100);   /* subtask 2 -> partition 2 */
        if (k == 2) for (int p = 0; p < 4; p++) ck_assert_int_eq(per[p], 25);
        if (k == 0) {
            /* equal keys, equal partitions */
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    const char *ki = strchr(lines[i], ':') + 1, *kj = strchr(lines[j], ':') + 1;
                    if (strncmp(ki, kj, 3) == 0 && ki[2] == ':' && kj[2] == ':') ck_assert_int_eq(lines[i][0], lines[j][0]);
                }
            bool found = false;
            for (int i = 0; i < n; i++) found |= strstr(lines[i], ":k3:{\"v\":\"v10\"}") != NULL;
            ck_assert(found);
        }
        free_lines(lines, n);
    }
    mock_down();
}
END_TEST

/* Headers collected by fmt_headers_decode. */
typedef struct hdr_list {
    fmt_header h[16];
    int n;
} hdr_list;

static void collect_header(void *ud, const char *name, const void *value, size_t len) {
    hdr_list *l = ud;
    ck_assert_int_lt(l->n, 16);
    fmt_header *h = &l->h[l->n++];
    h->name = xstrdup(name);
    h->value = value ? memcpy(xmalloc(len + 1), value, len) : NULL;
    h->len = len;
}

static void hdr_list_free(hdr_list *l) {
    for (int i = 0; i < l->n; i++) free((void *)l->h[i].name), free((void *)l->h[i].value);
    l->n = 0;
}

/* The headers JSON: text as strings, other bytes as {"base64"}, null, repeats as arrays; exact
 * round trip; plain strings accepted; anything else refused naming the header. */
START_TEST(headers_json_round_trip) {
    const fmt_header in[] = {{"bin", "\xff\x00\x01", 3},   {"look", "AAE=", 4}, {"empty", "", 0}, {"none", NULL, 0},
                             {"r", "one", 3},              {"bin", "t", 1},     {"r", NULL, 0},   {"r", "\x80", 1},
                             {"nul", "a\0b", 3}};
    size_t n = sizeof in / sizeof in[0];
    flint_err err = {0};
    char *text = fmt_headers_encode(in, n, &err);
    ck_assert_str_eq(text, "{\"bin\":[{\"base64\":\"/wAB\"},\"t\"],\"look\":\"AAE=\",\"empty\":\"\",\"none\":null,"
                           "\"r\":[\"one\",null,{\"base64\":\"gA==\"}],\"nul\":\"a\\u0000b\"}");
    hdr_list l = {0};
    ck_assert_int_eq(fmt_headers_decode(text, strlen(text), collect_header, &l, &err), 0);
    /* grouped by name in the order of first appearance, each name's values in order */
    const int order[] = {0, 5, 1, 2, 3, 4, 6, 7, 8};
    ck_assert_int_eq(l.n, (int)n);
    for (size_t i = 0; i < n; i++) {
        const fmt_header *want = &in[order[i]], *got = &l.h[i];
        ck_assert_str_eq(got->name, want->name);
        ck_assert_int_eq(got->value == NULL, want->value == NULL);
        ck_assert_uint_eq(got->len, want->len);
        if (want->value) ck_assert(memcmp(got->value, want->value, want->len) == 0);
    }
    hdr_list_free(&l);
    free(text);
    ck_assert_int_eq(fmt_headers_decode("{}", 2, collect_header, &l, &err), 0);
    ck_assert_int_eq(l.n, 0);
    ck_assert_ptr_null(fmt_headers_encode((fmt_header[]){{"\xff", "v", 1}}, 1, &err));
    ck_assert_str_eq(err.msg, "header 1: the name is not valid UTF-8");
    static const char *const bad[][2] = {
        {"[1]", "no JSON object (not an object)"},
        {"{\"n\":5}", "header 'n': expected a string, null, {\"base64\": \"...\"} or an array of them, got an integer"},
        {"{\"o\":{\"base64\":\"AA==\",\"x\":1}}", "header 'o': expected a string, null, {\"base64\": \"...\"} or an array "
                                                 "of them, got an object with other fields"},
        {"{\"o\":{\"b64\":\"AA==\"}}", "header 'o': expected a string, null, {\"base64\": \"...\"} or an array of them, "
                                       "got an object with other fields"},
        {"{\"b\":{\"base64\":\"*\"}}", "header 'b': malformed base64"},
        {"{\"a\":[[\"x\"]]}", "header 'a': an array inside its array"},
        {"{\"a\":[true]}", "header 'a': expected a string, null, {\"base64\": \"...\"} or an array of them, got true"},
        {"{\"a\":\"1\",\"a\":\"2\"}", "no JSON object (duplicate object key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_ne(fmt_headers_decode(bad[i][0], strlen(bad[i][0]), collect_header, &l, &err), 0);
        ck_assert_msg(strncmp(err.msg, bad[i][1], strlen(bad[i][1])) == 0, "%s: %s", bad[i][0], err.msg);
        hdr_list_free(&l);
    }
}
END_TEST

/* Static headers, then those of the headers field (a JSON object); a bad one fails the task. */
START_TEST(sink_writes_headers) {
    mock_up();
    topic("hdr", 1);
    const char *rows[][2] = {{"a", "{\"x\":\"1\",\"y\":null,\"r\":[\"AAE=\",{\"base64\":\"/w==\"},null],\"e\":\"\"}"},
                             {"b", NULL},
                             {"c", "[1]"}};
    for (int k = 0; k < 2; k++) {   /* k 0: the good rows; 1: the bad one */
        run r;
        Flint__Graph__JobVertex *v = vertex("sink.kafka", "v STRING, h STRING", "", "bootstrap.servers", bootstrap,
                                            "topic", "hdr", "value.fields", "0", "headers.field", "1", "header.origin",
                                            "flint", NULL);
        ck_assert_int_eq(run_open(&r, v, 0, 1, NULL, NULL, NULL), 0);
        flint_row_builder b;
        flint_row_builder_init(&b, head(&r)->in_schema);
        for (int i = k ? 2 : 0; i < (k ? 3 : 2); i++) {
            flint_row_builder_reset(&b);
            flint_row_set_cstring(&b, 0, rows[i][0]);
            if (rows[i][1]) flint_row_set_cstring(&b, 1, rows[i][1]);
            else flint_row_set_null(&b, 1);
            flint_row row = flint_row_builder_row(&b);
            int rc = tm_op_process(head(&r), &row);
            if (k == 0) ck_assert_int_eq(rc, 0);
            else ck_assert_int_ne(rc, 0);
        }
        flint_row_builder_free(&b);
        if (k == 0) ck_assert_int_eq(tm_chain_end_input(&r.c), 0);
        else ck_assert_msg(strstr(r.rt.err.msg, "the headers field 'h': no JSON object (not an object): [1]"), "%s",
                           r.rt.err.msg);
        run_close(&r);
        free_vertex(v);
    }
    char **lines;
    int n = consume_all("hdr", &lines);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(lines[0], "0::a|origin=flint,x=1,y,r=AAE=,r=\xff,r,e=");
    ck_assert_str_eq(lines[1], "0::b|origin=flint");
    free_lines(lines, n);
    mock_down();
}
END_TEST

START_TEST(sink_exactly_once_commits_per_checkpoint) {
    mock_up();
    topic("tx", 2);
    run r;
    Flint__Graph__JobVertex *v = vertex("sink.kafka", "k STRING, v STRING", "", "bootstrap.servers", bootstrap, "topic", "tx",
                                        "delivery", "exactly-once", "transactional.id.prefix", "chk", "format", "csv", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, NULL, NULL, NULL), 0);
    kafka_sink_stats st;
    sink_rows(&r, 0, 50);
    flint_err err = {0};
    ck_assert_int_eq(kafka_sink_snapshot(head(&r), 1, &err), 0);
    kafka_sink_get_stats(head(&r), &st);
    ck_assert_int_eq(st.pending, 1);
    ck_assert_int_eq(st.txn_begun, 2);
    sink_rows(&r, 50, 80);
    ck_assert_int_eq(kafka_sink_snapshot(head(&r), 2, &err), 0);
    /* a third: every other producer of the pool (3) waits for its checkpoint: declined */
    ck_assert_int_ne(kafka_sink_snapshot(head(&r), 3, &err), 0);
    ck_assert_msg(strstr(err.msg, "waits for its checkpoint"), "%s", err.msg);
    ck_assert(!r.rt.failed);
    ck_assert_int_eq(kafka_sink_checkpoint_complete(head(&r), 2), 0);   /* commits 1 and 2 */
    kafka_sink_get_stats(head(&r), &st);
    ck_assert_int_eq(st.txn_committed, 2);
    ck_assert_int_eq(st.pending, 0);
    sink_rows(&r, 80, 100);
    ck_assert_int_eq(tm_chain_end_input(&r.c), 0);                      /* commits the open one */
    kafka_sink_get_stats(head(&r), &st);
    ck_assert_int_eq(st.txn_committed, 3);
    ck_assert_int_eq(st.pending, 0);
    ck_assert_int_eq(st.delivered, 100);
    run_close(&r);
    free_vertex(v);
    char **lines;
    int n = consume_all("tx", &lines);
    ck_assert_int_eq(n, 100);
    free_lines(lines, n);
    /* A new attempt aborts what the old one left open. */
    ck_assert_int_eq(run_open(&r, v = vertex("sink.kafka", "k STRING, v STRING", "", "bootstrap.servers", bootstrap, "topic",
                                             "tx", "delivery", "exactly-once", "transactional.id.prefix", "chk", NULL),
                              0, 1, NULL, NULL, NULL),
                     0);
    sink_rows(&r, 0, 10);
    run_close(&r);   /* canceled: the open transaction is aborted */
    free_vertex(v);
    mock_down();
}
END_TEST

START_TEST(sink_at_least_once_fails_on_delivery_errors) {
    mock_up();
    topic("al", 1);
    run r;
    Flint__Graph__JobVertex *v = vertex("sink.kafka", "k STRING, v STRING", "", "bootstrap.servers", bootstrap, "topic", "al",
                                        "properties.message.timeout.ms", "1500", NULL);
    ck_assert_int_eq(run_open(&r, v, 0, 1, NULL, NULL, NULL), 0);
    sink_rows(&r, 0, 10);
    flint_err err = {0};
    ck_assert_int_eq(kafka_sink_snapshot(head(&r), 1, &err), 0);
    rd_kafka_mock_broker_set_down(mc, -1);
    sink_rows(&r, 10, 20);
    ck_assert_int_ne(kafka_sink_snapshot(head(&r), 2, &err), 0);
    ck_assert(r.rt.failed);
    ck_assert_msg(strstr(r.rt.err.msg, "could not be delivered"), "%s", r.rt.err.msg);
    rd_kafka_mock_broker_set_up(mc, -1);
    run_close(&r);
    free_vertex(v);
    mock_down();
}
END_TEST

Suite *kafka_suite(void) {
    Suite *s = suite_create("kafka");
    TCase *t = tcase_create("formats");
    tcase_add_test(t, split_owner_matches_flink);
    tcase_add_test(t, json_decodes_by_name_with_types);
    tcase_add_test(t, csv_quotes_nulls_and_errors);
    tcase_add_test(t, json_and_text_encode);
    tcase_add_test(t, timestamps_and_base64);
    tcase_add_test(t, headers_json_round_trip);
    suite_add_tcase(s, t);
    t = tcase_create("source");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, bounded_source_reads_each_record_once);
    tcase_add_test(t, subtasks_split_the_partitions);
    tcase_add_test(t, source_headers_column);
    tcase_add_test(t, snapshot_and_restore_are_exact);
    tcase_add_test(t, restore_at_another_parallelism);
    tcase_add_test(t, startup_modes);
    tcase_add_test(t, parse_errors_fail_skip_or_dead_letter);
    tcase_add_test(t, watermarks_per_partition_and_idleness);
    tcase_add_test(t, discovers_new_topics_and_partitions);
    suite_add_tcase(s, t);
    t = tcase_create("sink");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, sink_writes_keys_and_partitions);
    tcase_add_test(t, sink_writes_headers);
    tcase_add_test(t, sink_exactly_once_commits_per_checkpoint);
    tcase_add_test(t, sink_at_least_once_fails_on_delivery_errors);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(kafka_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

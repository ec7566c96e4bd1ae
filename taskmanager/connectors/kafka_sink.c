/* sink.kafka: rows as Kafka records with librdkafka (Flink's KafkaSink). Key and value come from
 * formats (formats.h), the topic from the options or a field, the partition from librdkafka's
 * partitioner (murmur2, as Kafka's Java client), a fixed subtask -> partition mapping or round
 * robin, the headers from params "header.<name>" (static) and a field holding a JSON object.
 * Delivery guarantees and the transactional producer pool: see kafka.h. Delivery reports are
 * served on the task thread (polls in process, in a tick and in flush). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#define LOG_MODULE "kafka"
#include "config/config.h"
#include "connectors/formats.h"
#include "checkpoint/cp_task.h"
#include "connectors/kafka.h"
#include "operators/operator.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define POLL_EVERY 1024               /* records between delivery-report polls */
#define QUEUE_FULL_LIMIT_MS 60000     /* give up when the producer queue stays full this long */
#define TXN_TIMEOUT_MS 30000          /* init/commit/abort of a transaction */
#define DEFAULT_POOL 3

typedef enum delivery { D_AT_LEAST_ONCE, D_NONE, D_EXACTLY_ONCE } delivery;
typedef enum partitioner { P_DEFAULT, P_FIXED, P_ROUND_ROBIN } partitioner;

typedef struct kk_producer {
    rd_kafka_t *rk;
    char *txn_id;                     /* EXACTLY_ONCE */
    bool in_txn;
    int64_t pending;                  /* the checkpoint its flushed transaction waits for, or -1 */
} kk_producer;

typedef struct topic_info {
    char *name;
    int partitions;
    int64_t fetched_ms;
} topic_info;

typedef struct kk_state {
    tm_op *op;
    delivery delivery;
    partitioner partitioner;
    kk_producer *pool;
    int npool, cur;
    fmt value, key;
    bool has_key;
    int topic_field;
    int headers_field;                /* a JSON object of headers, -1 */
    rd_kafka_headers_t *headers;      /* the static headers, NULL when none */
    char *topic;
    char topic_buf[256];
    topic_info *topics;
    int ntopics;
    int64_t rr;
    int64_t flush_timeout_ms;
    int64_t since_poll;
    bool ended;
    /* delivery reports */
    int64_t failed_unreported;
    char first_error[384];
    kafka_sink_stats stats;
} kk_state;

static const char *param_or(tm_op *op, const char *k, const char *def) {
    const char *v = tm_op_param(op, k);
    return v ? v : def;
}

static const char *fmt_opt(void *ud, const char *key) { return tm_op_param(ud, key); }

/* "1,3" -> indexes. */
static int parse_indexes(const char *s, int *out, int max) {
    int n = 0;
    for (const char *p = s; p && *p && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        out[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    kk_state *s = opaque;
    if (!m->err) {
        s->stats.delivered++;
        return;
    }
    s->stats.failed++;
    if (s->failed_unreported++ == 0)
        snprintf(s->first_error, sizeof s->first_error, "topic %s partition %d: %s", rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_err2str(m->err));
    if (s->delivery == D_NONE && (s->stats.failed <= 10 || s->stats.failed % 1000 == 0))
        log_warn("%s: a record could not be delivered (%" PRId64 " so far; delivery guarantee NONE): topic %s: %s",
                 s->op->rt->task_name, s->stats.failed, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    kk_state *s = opaque;
    log_warn("%s: kafka producer: %s: %s", s->op->rt->task_name, rd_kafka_err2name(err), reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    if (level <= 3) log_warn("librdkafka %s: %s", fac, buf);
}

/* A delivery that failed since the last check: fails the task (NONE: counted and logged only). */
static int check_deliveries(tm_op *op, kk_state *s) {
    if (!s->failed_unreported || s->delivery == D_NONE) {
        s->failed_unreported = 0;
        return FLINT_OK;
    }
    return tm_op_fail(op, "%" PRId64 " record(s) could not be delivered to Kafka, the first: %s", s->failed_unreported,
                      s->first_error);
}

static int conf_set(tm_op *op, rd_kafka_conf_t *conf, const char *k, const char *v) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return tm_op_fail(op, "librdkafka property '%s' = '%s': %s", k, v, errstr);
    return FLINT_OK;
}

/* A duration setting of the job (its config over the taskmanager's), ms; def when unset. */
static int64_t job_duration(tm_op *op, const char *key, int64_t def) {
    tm_runtime *rt = op->rt;
    for (size_t i = 0; i < rt->n_job_config; i++)
        if (strcmp(rt->job_config[i]->key, key) == 0) {
            int64_t ms;
            if (str_parse_duration_ms(rt->job_config[i]->value, &ms) == 0) return ms;
        }
    if (rt->tm_config) {
        int k = config_find(key);
        if (k >= 0) return config_int(rt->tm_config, (config_key)k);
    }
    return def;
}

static int new_producer(tm_op *op, kk_state *s, const char *txn_id, rd_kafka_t **out) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[512];
    int rc = conf_set(op, conf, "bootstrap.servers", tm_op_param(op, "bootstrap.servers"));
    if (!rc) {
        snprintf(buf, sizeof buf, "%s-%d", param_or(op, "client.id.prefix", "flint-kafka-sink"), op->rt->subtask);
        rc = conf_set(op, conf, "client.id", buf);
    }
    /* Kafka's Java client hashes keys with murmur2: records land where a Java producer puts them. */
    if (!rc && s->partitioner == P_DEFAULT) rc = conf_set(op, conf, "partitioner", "murmur2_random");
    for (size_t i = 0; !rc && i < op->def->n_params; i++) {
        const char *k = op->def->params[i]->key;
        if (str_starts_with(k, "properties.")) rc = conf_set(op, conf, k + 11, op->def->params[i]->value);
    }
    if (!rc && txn_id) rc = conf_set(op, conf, "transactional.id", txn_id);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    char errstr[512];
    *out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!*out) {
        rd_kafka_conf_destroy(conf);
        return tm_op_fail(op, "cannot create the Kafka producer: %s", errstr);
    }
    return FLINT_OK;
}

static int txn_error(tm_op *op, const char *what, const char *txn_id, rd_kafka_error_t *e) {
    int rc = tm_op_fail(op, "%s (transactional.id %s): %s", what, txn_id, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return rc;
}

static int begin_txn(tm_op *op, kk_state *s, kk_producer *p) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(p->rk);
    if (e) return txn_error(op, "beginning a transaction", p->txn_id, e);
    p->in_txn = true;
    s->stats.txn_begun++;
    log_debug("%s: began a transaction on %s", op->rt->task_name, p->txn_id);
    return FLINT_OK;
}

static int kk_tick(tm_op *op, int64_t now_ms);

static int kk_open(tm_op *op) {
    kk_state *s = XNEW(kk_state);
    op->state = s;
    s->op = op;
    s->topic_field = -1;
    s->headers_field = -1;
    if (!op->in_schema) return tm_op_fail(op, "the sink has no input schema");
    const char *d = param_or(op, "delivery", "at-least-once");
    s->delivery = strcmp(d, "none") == 0 ? D_NONE : strcmp(d, "exactly-once") == 0 ? D_EXACTLY_ONCE : D_AT_LEAST_ONCE;
    const char *p = param_or(op, "partitioner", "default");
    s->partitioner = strcmp(p, "fixed") == 0 ? P_FIXED : strcmp(p, "round-robin") == 0 ? P_ROUND_ROBIN : P_DEFAULT;
    int rc;
    int64_t v;
    if ((rc = tm_op_param_int(op, "topic.field", -1, &v))) return rc;
    s->topic_field = (int)v;
    if (s->topic_field < 0) {
        const char *t;
        if ((rc = tm_op_param_req(op, "topic", &t))) return rc;
        s->topic = xstrdup(t);
    }
    if ((rc = tm_op_param_int(op, "headers.field", -1, &v))) return rc;
    s->headers_field = (int)v;
    for (size_t i = 0; i < op->def->n_params; i++) {
        const char *k = op->def->params[i]->key, *hv = op->def->params[i]->value;
        if (!str_starts_with(k, "header.")) continue;
        if (!s->headers) s->headers = rd_kafka_headers_new(4);
        rd_kafka_header_add(s->headers, k + 7, -1, hv, -1);
    }
    int nf = flint_schema_field_count(op->in_schema);
    int *idx = xcalloc((size_t)nf + 1, sizeof *idx);
    flint_err err = {0};
    int n = parse_indexes(tm_op_param(op, "value.fields"), idx, nf);
    if (!tm_op_param(op, "value.fields")) {
        n = 0;
        for (int i = 0; i < nf; i++)
            if (i != s->topic_field && i != s->headers_field) idx[n++] = i;
    }
    if (n < 0) rc = tm_op_fail(op, "bad value.fields parameter");
    else if (fmt_init(&s->value, param_or(op, "format", "text"), op->in_schema, idx, n, true, fmt_opt, op, "", &err))
        rc = tm_op_fail(op, "value format: %s", err.msg);
    if (!rc && tm_op_param(op, "key.fields")) {
        n = parse_indexes(tm_op_param(op, "key.fields"), idx, nf);
        if (n <= 0) rc = tm_op_fail(op, "bad key.fields parameter");
        else if (fmt_init(&s->key, param_or(op, "key.format", "csv"), op->in_schema, idx, n, true, fmt_opt, op, "key.", &err))
            rc = tm_op_fail(op, "key format: %s", err.msg);
        else s->has_key = true;
    }
    free(idx);
    if (rc) return rc;
    if ((rc = tm_op_param_int(op, "sink.flush-timeout.ms", 60000, &s->flush_timeout_ms))) return rc;

    if (s->delivery != D_EXACTLY_ONCE) {
        s->pool = XNEW(kk_producer);
        s->npool = 1;
        s->pool[0].pending = -1;
        if ((rc = new_producer(op, s, NULL, &s->pool[0].rk))) return rc;
    } else {
        const char *prefix;
        if ((rc = tm_op_param_req(op, "transactional.id.prefix", &prefix))) return rc;
        int64_t pool;
        if ((rc = tm_op_param_int(op, "sink.transaction-pool-size", DEFAULT_POOL, &pool))) return rc;
        if (pool < 2) pool = 2;
        s->npool = (int)pool;
        s->pool = xcalloc((size_t)s->npool, sizeof *s->pool);
        for (int i = 0; i < s->npool; i++) {
            kk_producer *pr = &s->pool[i];
            pr->pending = -1;
            pr->txn_id = xasprintf("%s-%d-%d", prefix, op->rt->subtask, i);
            if ((rc = new_producer(op, s, pr->txn_id, &pr->rk))) return rc;
            /* Fences older producers of this id and aborts the transaction an earlier attempt left
             * open (Flink's abort of lingering transactions on restore). */
            rd_kafka_error_t *e = rd_kafka_init_transactions(pr->rk, TXN_TIMEOUT_MS);
            if (e) return txn_error(op, "initializing transactions", pr->txn_id, e);
        }
        log_info("%s: transactional producers %s-%d-0..%d initialized (open transactions of earlier attempts aborted)",
                 op->rt->task_name, prefix, op->rt->subtask, s->npool - 1);
        /* transaction.timeout.ms must outlast a checkpoint interval plus a restart, or the broker
         * aborts transactions that are still to be committed. */
        int64_t txn_timeout = 60000;   /* librdkafka's default */
        const char *tt = tm_op_param(op, "properties.transaction.timeout.ms");
        if (tt) str_parse_int(tt, &txn_timeout);
        int64_t interval = job_duration(op, "execution.checkpointing.interval", 0);
        int64_t restart = job_duration(op, "restart-strategy.fixed-delay.delay", 1000);
        if (interval <= 0)
            log_warn("%s: EXACTLY_ONCE without checkpoints (execution.checkpointing.interval): records are committed "
                     "only at the end of input",
                     op->rt->task_name);
        else if (txn_timeout < interval + restart)
            log_warn("%s: transaction.timeout.ms (%" PRId64 " ms) is shorter than the checkpoint interval (%" PRId64
                     " ms) plus the restart delay (%" PRId64 " ms): the broker may abort transactions before they are "
                     "committed",
                     op->rt->task_name, txn_timeout, interval, restart);
        if ((rc = begin_txn(op, s, &s->pool[0]))) return rc;
    }
    tm_op_every(op, 100, kk_tick);
    return FLINT_OK;
}

/* Partitions of topic (metadata, cached for 30 s); -1 with the task failed on error. */
static int topic_partitions(tm_op *op, kk_state *s, const char *topic) {
    int64_t now = time_mono_ms();
    topic_info *ti = NULL;
    for (int i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].name, topic) == 0) ti = &s->topics[i];
    if (ti && now - ti->fetched_ms < 30000) return ti->partitions;
    rd_kafka_t *rk = s->pool[s->cur].rk;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int n = -1;
    if (!e && md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (n <= 0) {
        if (ti) return ti->partitions;   /* keep the old count through a broker outage */
        tm_op_fail(op, "cannot get the partitions of topic %s: %s", topic,
                   e ? rd_kafka_err2str(e) : "unknown topic");
        return -1;
    }
    if (!ti) {
        s->topics = xrealloc(s->topics, (size_t)(s->ntopics + 1) * sizeof *s->topics);
        ti = &s->topics[s->ntopics++];
        ti->name = xstrdup(topic);
    }
    ti->partitions = n;
    ti->fetched_ms = now;
    return n;
}

static void add_header(void *h, const char *name, const void *value, size_t len) {
    rd_kafka_header_add(h, name, -1, value, (ssize_t)len);
}

/* The headers of row's record (*out NULL when it has none; the caller owns them). */
static int record_headers(tm_op *op, kk_state *s, const flint_row *row, rd_kafka_headers_t **out) {
    *out = NULL;
    bool field = s->headers_field >= 0 && !flint_row_is_null(row, s->headers_field);
    if (!field) {
        if (s->headers) *out = rd_kafka_headers_copy(s->headers);
        return FLINT_OK;
    }
    rd_kafka_headers_t *h = s->headers ? rd_kafka_headers_copy(s->headers) : rd_kafka_headers_new(4);
    size_t len;
    const char *text = flint_row_get_string(row, s->headers_field, &len);
    flint_err err = {0};
    if (fmt_headers_decode(text, len, add_header, h, &err)) {
        rd_kafka_headers_destroy(h);
        return tm_op_fail(op, "the headers field '%s': %s: %.*s", flint_schema_field_name(op->in_schema, s->headers_field),
                          err.msg, (int)(len < 80 ? len : 80), text);
    }
    *out = h;
    return FLINT_OK;
}

static int kk_process(tm_op *op, const flint_row *row) {
    kk_state *s = op->state;
    int rc = check_deliveries(op, s);
    if (rc) return rc;
    const char *topic = s->topic;
    if (s->topic_field >= 0) {
        size_t len;
        if (flint_row_is_null(row, s->topic_field)) return tm_op_fail(op, "the topic field is NULL");
        const char *t = flint_row_get_string(row, s->topic_field, &len);
        if (len == 0 || len >= sizeof s->topic_buf) return tm_op_fail(op, "the topic field holds no valid topic name");
        memcpy(s->topic_buf, t, len);
        s->topic_buf[len] = '\0';
        topic = s->topic_buf;
    }
    flint_err err = {0};
    const void *val, *key = NULL;
    size_t vlen, klen = 0;
    if (fmt_encode(&s->value, row, &val, &vlen, &err)) return tm_op_fail(op, "value: %s", err.msg);
    if (s->has_key && fmt_encode(&s->key, row, &key, &klen, &err)) return tm_op_fail(op, "key: %s", err.msg);
    int32_t partition = RD_KAFKA_PARTITION_UA;
    if (s->partitioner != P_DEFAULT) {
        int n = topic_partitions(op, s, topic);
        if (n < 0) return FLINT_ERR;
        partition = s->partitioner == P_FIXED ? op->rt->subtask % n : (int32_t)(s->rr++ % n);
    }
    int64_t ts = op->rt->timestamp != FLINT_NO_TIMESTAMP ? op->rt->timestamp : 0;
    rd_kafka_headers_t *hdrs;
    if ((rc = record_headers(op, s, row, &hdrs))) return rc;
    rd_kafka_t *rk = s->pool[s->cur].rk;
    int64_t waited_since = 0;
    for (;;) {
        /* On success the record owns hdrs; on failure they are still ours. */
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_TIMESTAMP(ts < 0 ? 0 : ts),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!e) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rc = tm_op_fail(op, "producing to topic %s: %s", topic, rd_kafka_err2str(e));
        /* The producer's queue is full (a slow or unreachable broker): wait for deliveries. */
        int64_t now = time_mono_ms();
        if (!waited_since) waited_since = now;
        else if (!rc && now - waited_since > QUEUE_FULL_LIMIT_MS)
            rc = tm_op_fail(op, "producing to topic %s: the producer queue stayed full for %d s", topic,
                            QUEUE_FULL_LIMIT_MS / 1000);
        if (!rc) {
            rd_kafka_poll(rk, 100);
            rc = check_deliveries(op, s);
        }
        if (rc) {
            if (hdrs) rd_kafka_headers_destroy(hdrs);
            return rc;
        }
    }
    s->stats.records++;
    if (++s->since_poll >= POLL_EVERY) {
        s->since_poll = 0;
        rd_kafka_poll(rk, 0);
    }
    return FLINT_OK;
}

static int kk_tick(tm_op *op, int64_t now_ms) {
    kk_state *s = op->state;
    for (int i = 0; i < s->npool; i++) rd_kafka_poll(s->pool[i].rk, 0);
    return check_deliveries(op, s);
}

/* Flush producer p: wait for every delivery report (up to the flush timeout). */
static int flush(tm_op *op, kk_state *s, kk_producer *p, flint_err *err) {
    rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, (int)s->flush_timeout_ms);
    if (e) {
        return flint_err_set(err, FLINT_TIMEOUT, "flushing the Kafka producer: %s (%d record(s) outstanding after %" PRId64 " ms)",
                             rd_kafka_err2str(e), rd_kafka_outq_len(p->rk), s->flush_timeout_ms);
    }
    if (s->failed_unreported && s->delivery != D_NONE) {
        flint_err_set(err, FLINT_IO, "%" PRId64 " record(s) could not be delivered to Kafka, the first: %s",
                      s->failed_unreported, s->first_error);
        check_deliveries(op, s);   /* and fail the task: records of this checkpoint are lost */
        return FLINT_IO;
    }
    s->failed_unreported = 0;
    return FLINT_OK;
}

int kafka_sink_snapshot(tm_op *op, int64_t checkpoint_id, flint_err *err) {
    kk_state *s = op->state;
    if (!s) return flint_err_set(err, FLINT_STATE, "Kafka sink: snapshot before open");
    if (s->delivery == D_NONE) return FLINT_OK;
    kk_producer *cur = &s->pool[s->cur];
    if (s->delivery == D_AT_LEAST_ONCE) return flush(op, s, cur, err);
    /* EXACTLY_ONCE: the next transaction needs a free producer. */
    int next = -1;
    for (int k = 1; k < s->npool && next < 0; k++) {
        int j = (s->cur + k) % s->npool;
        if (s->pool[j].pending < 0) next = j;
    }
    if (next < 0)
        return flint_err_set(err, FLINT_UNAVAILABLE,
                             "Kafka sink: every transactional producer (%d) waits for its checkpoint to complete "
                             "(sink.transaction-pool-size)",
                             s->npool);
    int rc = flush(op, s, cur, err);
    if (rc) return rc;
    cur->pending = checkpoint_id;
    log_info("%s: transaction on %s flushed for checkpoint %" PRId64 ", pending its completion", op->rt->task_name,
             cur->txn_id, checkpoint_id);
    s->cur = next;
    return begin_txn(op, s, &s->pool[next]);
}

static int commit(tm_op *op, kk_state *s, kk_producer *p, const char *why) {
    rd_kafka_error_t *e = rd_kafka_commit_transaction(p->rk, TXN_TIMEOUT_MS);
    if (e) {
        if (rd_kafka_error_is_retriable(e)) {
            log_warn("%s: committing the transaction of %s failed, retrying later: %s", op->rt->task_name, p->txn_id,
                     rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return FLINT_UNAVAILABLE;
        }
        if (rd_kafka_error_txn_requires_abort(e)) {
            rd_kafka_error_t *a = rd_kafka_abort_transaction(p->rk, TXN_TIMEOUT_MS);
            if (a) rd_kafka_error_destroy(a);
            s->stats.txn_aborted++;
            p->in_txn = false;
        }
        return txn_error(op, "committing a transaction", p->txn_id, e);
    }
    p->in_txn = false;
    p->pending = -1;
    s->stats.txn_committed++;
    log_info("%s: committed the transaction of %s (%s)", op->rt->task_name, p->txn_id, why);
    return FLINT_OK;
}

int kafka_sink_checkpoint_complete(tm_op *op, int64_t checkpoint_id) {
    kk_state *s = op->state;
    if (!s || s->delivery != D_EXACTLY_ONCE) return FLINT_OK;
    /* Oldest first: every transaction flushed for a checkpoint up to this one. */
    for (;;) {
        kk_producer *oldest = NULL;
        for (int i = 0; i < s->npool; i++)
            if (s->pool[i].pending >= 0 && s->pool[i].pending <= checkpoint_id &&
                (!oldest || s->pool[i].pending < oldest->pending))
                oldest = &s->pool[i];
        if (!oldest) return FLINT_OK;
        char why[64];
        snprintf(why, sizeof why, "checkpoint %" PRId64, oldest->pending);
        int rc = commit(op, s, oldest, why);
        if (rc == FLINT_UNAVAILABLE) return FLINT_OK;   /* retried at the next completion */
        if (rc) return rc;
    }
}

static int kk_end_input(tm_op *op) {
    kk_state *s = op->state;
    s->ended = true;
    flint_err err = {0};
    if (s->delivery != D_EXACTLY_ONCE) {
        if (flush(op, s, &s->pool[0], &err)) return op->rt->failed ? FLINT_ERR : tm_op_fail(op, "%s", err.msg);
        return FLINT_OK;
    }
    /* A final checkpoint follows (checkpoints after tasks finish, docs/checkpointing-protocol.md):
     * its snapshot makes the open transaction pending, its completion commits it. Else no
     * checkpoint follows, so everything pending and the open transaction are committed now. */
    bool final = tm_cp_final_checkpoint(op->rt->cp);
    int rc = final ? FLINT_OK : kafka_sink_checkpoint_complete(op, INT64_MAX - 1);
    if (rc) return rc;
    kk_producer *cur = &s->pool[s->cur];
    if (flush(op, s, cur, &err)) return op->rt->failed ? FLINT_ERR : tm_op_fail(op, "%s", err.msg);
    if (final) return FLINT_OK;
    return commit(op, s, cur, "end of input") == FLINT_OK ? FLINT_OK : tm_op_fail(op, "committing at the end of input failed");
}

static void kk_close(tm_op *op) {
    kk_state *s = op->state;
    if (!s) return;
    for (int i = 0; i < s->npool; i++) {
        kk_producer *p = &s->pool[i];
        free(p->txn_id);
        if (!p->rk) continue;
        if (!s->ended) {
            /* Canceled or failed: what is not committed is dropped (the restore replays it). */
            if (p->in_txn) {
                rd_kafka_error_t *e = rd_kafka_abort_transaction(p->rk, 5000);
                if (e) rd_kafka_error_destroy(e);
                else s->stats.txn_aborted++;
            }
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        }
        rd_kafka_destroy(p->rk);
    }
    if (s->stats.failed)
        log_warn("%s: %" PRId64 " record(s) were not delivered to Kafka", op->rt->task_name, s->stats.failed);
    free(s->pool);
    if (s->headers) rd_kafka_headers_destroy(s->headers);
    fmt_free(&s->value);
    if (s->has_key) fmt_free(&s->key);
    for (int i = 0; i < s->ntopics; i++) free(s->topics[i].name);
    free(s->topics);
    free(s->topic);
    free(s);
    op->state = NULL;
}

void kafka_sink_get_stats(tm_op *op, kafka_sink_stats *st) {
    kk_state *s = op->state;
    memset(st, 0, sizeof *st);
    if (!s) return;
    *st = s->stats;
    for (int i = 0; i < s->npool; i++) st->pending += s->pool[i].pending >= 0;
}

/* ---- the task's checkpoint callbacks (operator.h, checkpoint/cp_task.h) --------------------------------- */

static int kk_snapshot_state(tm_op *op, int64_t checkpoint_id, Flint__Checkpoint__OperatorSubtaskState *out) {
    kk_state *s = op->state;
    flint_err err = {0};
    int rc = kafka_sink_snapshot(op, checkpoint_id, &err);
    if (rc) {
        /* A delivery failure has failed the task already; anything else only declines. */
        log_warn("%s: declining checkpoint %" PRId64 ": %s", op->rt->task_name, checkpoint_id, err.msg);
        return rc;
    }
    if (s->delivery == D_EXACTLY_ONCE) {
        /* The pending transaction, as Flink's KafkaCommittable (for the logs of a restore: librdkafka
         * cannot resume another producer's transaction). */
        for (int i = 0; i < s->npool; i++)
            if (s->pool[i].pending == checkpoint_id)
                tm_cp_add_commit(out, s->pool[i].txn_id, checkpoint_id, s->pool[i].txn_id, strlen(s->pool[i].txn_id));
    }
    return FLINT_OK;
}

static int kk_initialize_state(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    kk_state *s = op->state;
    for (size_t i = 0; i < r->n_pending_commits; i++) {
        const Flint__Checkpoint__PendingCommit *pc = r->pending_commits[i];
        char *id = xstrndup((const char *)pc->data.data, pc->data.len);
        bool ours = false;
        for (int k = 0; k < s->npool; k++) ours |= s->pool[k].txn_id && strcmp(s->pool[k].txn_id, id) == 0;
        if (!ours && s->delivery == D_EXACTLY_ONCE) {
            /* An id outside this attempt's pool (another prefix or parallelism): fence it too. */
            rd_kafka_t *rk = NULL;
            if (new_producer(op, s, id, &rk) == FLINT_OK) {
                rd_kafka_error_t *e = rd_kafka_init_transactions(rk, TXN_TIMEOUT_MS);
                if (e) rd_kafka_error_destroy(e);
                rd_kafka_destroy(rk);
            }
        }
        log_warn("%s: restored the pending transaction %s of checkpoint %lld: librdkafka cannot resume another "
                 "producer's transaction, so if it was not committed before the failure it was aborted "
                 "(docs/connectors.md, \"Exactly-once limits\")",
                 op->rt->task_name, id, (long long)pc->checkpoint_id);
        free(id);
    }
    return FLINT_OK;
}

static int kk_notify_complete(tm_op *op, int64_t checkpoint_id) { return kafka_sink_checkpoint_complete(op, checkpoint_id); }

const tm_op_kind tm_op_SINK_KAFKA = {.name = "sink.kafka",
                                     .open = kk_open,
                                     .process = kk_process,
                                     .end_input = kk_end_input,
                                     .close = kk_close,
                                     .snapshot_state = kk_snapshot_state,
                                     .initialize_state = kk_initialize_state,
                                     .notify_checkpoint_complete = kk_notify_complete};

/* source.kafka: rows from Kafka partitions with librdkafka (Flink's KafkaSource). Each subtask owns
 * the partitions kafka_split_owner gives it and reads them with manual assignment (no group
 * rebalancing); a discovery thread finds partitions (at start, then every discovery interval) and
 * resolves where each starts (earliest, latest, timestamp, committed or specific offsets; bounded:
 * also where it stops), so the task thread never waits on metadata. The task thread polls records
 * in batches, decodes values with the format (formats.h), fills METADATA columns, keeps per
 * partition the next offset and, with a watermark strategy, the largest timestamp: the watermark
 * is the minimum over partitions that are not idle. Checkpoint hooks and split layout: kafka.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define LOG_MODULE "kafka"
#include "config/config.h"
#include "connectors/formats.h"
#include "checkpoint/cp_task.h"
#include "connectors/kafka.h"
#include "operators/operator.h"
#include "operators/time_ops.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define BATCH 512                   /* records per produce() call */
#define META_TIMEOUT_MS 5000        /* one metadata / offsets request of the discovery thread */
#define FIRST_DISCOVERY_LIMIT_MS 60000  /* fail when the first discovery cannot finish in this time */
#define MAX_PENDING_COMMITS 64
#define KS_MARKER "#kafka-source/"     /* the split holding the known partitions (not a topic name) */

/* ---- partition assignment (Flink's KafkaSourceEnumerator) -------------------------------------- */

int32_t kafka_java_string_hash(const char *s) {
    uint32_t h = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = 31 * h + *p;
    return (int32_t)h;
}

int kafka_split_owner(const char *topic, int32_t partition, int parallelism) {
    uint32_t h = (uint32_t)kafka_java_string_hash(topic) * 31u;
    int start = (int)((h & 0x7fffffffu) % (uint32_t)parallelism);
    return (int)(((int64_t)start + partition) % parallelism);
}

void kafka_splits_free(kafka_split *splits, int n) {
    for (int i = 0; i < n; i++) {
        free(splits[i].id);
        free(splits[i].data);
    }
    free(splits);
}

/* ---- state ----------------------------------------------------------------------------------------- */

typedef enum startup_mode { SM_EARLIEST, SM_LATEST, SM_GROUP, SM_TIMESTAMP, SM_SPECIFIC } startup_mode;
typedef enum reset_mode { RS_EARLIEST, RS_LATEST, RS_NONE } reset_mode;

typedef struct ks_part {
    int topic;                  /* index into topics */
    int32_t partition;
    int64_t next;               /* the next offset to emit */
    int64_t stop;               /* bounded: exclusive end; INT64_MAX when unbounded */
    int64_t max_ts;             /* watermarks: largest timestamp emitted (INT64_MIN: none yet) */
    int64_t last_active_ms;     /* monotonic: a record, or the assignment */
    int64_t skip_before_ts;     /* TIMESTAMP startup read from the start: skip records before this
                                   timestamp up to the first one at or after it (INT64_MIN: none) */
    bool idle, finished, assigned;
} ks_part;

typedef struct ks_topic {
    char *name;
    const rd_kafka_topic_t *rkt;   /* as seen on messages, for a fast lookup */
    int *part_index;            /* partition -> index into parts, -1 */
    int n_part_index;
    int known;                  /* partitions seen (discovery, restored "known" counts) */
} ks_topic;

/* A partition the discovery thread resolved for the task thread. */
typedef struct ks_ready {
    char *topic;
    int32_t partition;
    int64_t start, stop;
    int64_t skip_before_ts;
} ks_ready;

typedef struct pending_commit {
    int64_t checkpoint_id;
    rd_kafka_topic_partition_list_t *offsets;
} pending_commit;

typedef struct ks_state {
    tm_op *op;
    rd_kafka_t *rk;
    char *bootstrap;
    char *group;                /* the user's group, or NULL (a generated one is used) */
    bool commit_enabled;
    /* subscription */
    char **topic_list;
    int n_topic_list;
    regex_t re;
    bool has_re;
    /* startup */
    startup_mode startup;
    reset_mode reset;
    int64_t startup_ts;
    char *specific;             /* "t:p:o,..." */
    bool bounded;
    int64_t discovery_ms;       /* < 0: only at start */
    /* formats and columns */
    fmt value;
    flint_row_builder b;
    int nmeta;
    int meta_col[8];
    enum { MK_KEY, MK_TOPIC, MK_PARTITION, MK_OFFSET, MK_TIMESTAMP, MK_TIMESTAMP_TYPE, MK_HEADERS } meta_kind[8];
    bool ignore_errors;
    int dl_side;                /* dead letter side output, -1 */
    flint_schema *dl_schema;
    flint_row_builder dl_b;
    /* event time */
    bool watermarks;
    int ts_field;
    flint_type ts_type;
    flint_timestamp_fn ts_fn;
    int64_t bound, idleness;
    int64_t emitted_wm;
    bool out_idle;
    /* partitions owned (task thread) */
    ks_topic *topics;
    int ntopics, cap_topics;
    ks_part *parts;
    int nparts, cap_parts;
    int n_finished;
    bool started;               /* the discovery thread runs */
    bool discovered;            /* the task thread saw the first discovery round complete */
    int64_t started_ms;         /* monotonic */
    bool restored;
    kafka_split *restore;       /* held from kafka_source_restore until start */
    int n_restore;
    /* discovery thread: everything below under mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool thread_started, stop_thread;
    bool first_done;            /* the first discovery round completed */
    ks_ready *ready;
    int nready, cap_ready;
    char fatal[256];            /* a discovery error that fails the task */
    char last_error[256];       /* the latest transient discovery error */
    struct {                    /* the thread's own view of known partitions */
        char **names;
        int *counts;
        int n;
    } seen;
    /* checkpoints */
    pending_commit pending[MAX_PENDING_COMMITS];
    int npending;
    kafka_source_stats stats;
    int64_t last_error_log_ms;
    /* records-per-second (a Flint extension): this subtask's share */
    double rate;
    int64_t rate_start_ms, rate_emitted;
} ks_state;

static int ks_tick(tm_op *op, int64_t now_ms);

/* ---- helpers ------------------------------------------------------------------------------------ */

static const char *param_or(tm_op *op, const char *k, const char *def) {
    const char *v = tm_op_param(op, k);
    return v ? v : def;
}

static bool param_bool(tm_op *op, const char *k, bool def) {
    const char *v = tm_op_param(op, k);
    bool b;
    if (!v || str_parse_bool(v, &b)) return def;
    return b;
}

static const char *fmt_opt(void *ud, const char *key) { return tm_op_param(ud, key); }

static int topic_index(ks_state *s, const char *name, bool add) {
    for (int i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].name, name) == 0) return i;
    if (!add) return -1;
    if (s->ntopics == s->cap_topics) {
        s->cap_topics = s->cap_topics ? s->cap_topics * 2 : 4;
        s->topics = xrealloc(s->topics, (size_t)s->cap_topics * sizeof *s->topics);
    }
    ks_topic *t = &s->topics[s->ntopics];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    return s->ntopics++;
}

static ks_part *find_part(ks_state *s, int ti, int32_t partition) {
    ks_topic *t = &s->topics[ti];
    if (partition < 0 || partition >= t->n_part_index || t->part_index[partition] < 0) return NULL;
    return &s->parts[t->part_index[partition]];
}

static ks_part *add_part(ks_state *s, const char *topic, int32_t partition, int64_t next, int64_t stop) {
    int ti = topic_index(s, topic, true);
    ks_topic *t = &s->topics[ti];
    if (partition >= t->n_part_index) {
        int n = partition + 1;
        t->part_index = xrealloc(t->part_index, (size_t)n * sizeof *t->part_index);
        for (int i = t->n_part_index; i < n; i++) t->part_index[i] = -1;
        t->n_part_index = n;
    }
    if (t->part_index[partition] >= 0) return &s->parts[t->part_index[partition]];
    if (s->nparts == s->cap_parts) {
        s->cap_parts = s->cap_parts ? s->cap_parts * 2 : 8;
        s->parts = xrealloc(s->parts, (size_t)s->cap_parts * sizeof *s->parts);
    }
    ks_part *p = &s->parts[s->nparts];
    memset(p, 0, sizeof *p);
    p->topic = ti;
    p->partition = partition;
    p->next = next;
    p->stop = stop;
    p->max_ts = INT64_MIN;
    p->skip_before_ts = INT64_MIN;
    p->last_active_ms = time_mono_ms();
    t->part_index[partition] = s->nparts++;
    if (partition + 1 > t->known) t->known = partition + 1;
    return p;
}

/* ---- the discovery thread ------------------------------------------------------------------------ */

static bool topic_wanted(ks_state *s, const char *name) {
    if (s->has_re) {
        if (name[0] == '_' && name[1] == '_') return false;   /* internal topics (__consumer_offsets) */
        return regexec(&s->re, name, 0, NULL, 0) == 0;
    }
    for (int i = 0; i < s->n_topic_list; i++)
        if (strcmp(s->topic_list[i], name) == 0) return true;
    return false;
}

static int seen_count(ks_state *s, const char *name) {
    for (int i = 0; i < s->seen.n; i++)
        if (strcmp(s->seen.names[i], name) == 0) return s->seen.counts[i];
    return 0;
}

static void seen_set(ks_state *s, const char *name, int count) {
    for (int i = 0; i < s->seen.n; i++)
        if (strcmp(s->seen.names[i], name) == 0) {
            if (count > s->seen.counts[i]) s->seen.counts[i] = count;
            return;
        }
    s->seen.names = xrealloc(s->seen.names, (size_t)(s->seen.n + 1) * sizeof *s->seen.names);
    s->seen.counts = xrealloc(s->seen.counts, (size_t)(s->seen.n + 1) * sizeof *s->seen.counts);
    s->seen.names[s->seen.n] = xstrdup(name);
    s->seen.counts[s->seen.n++] = count;
}

/* The specific offset of topic/partition, or -1. */
static int64_t specific_offset(ks_state *s, const char *topic, int32_t partition) {
    if (!s->specific) return -1;
    size_t tl = strlen(topic);
    for (const char *p = s->specific; *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        long long part, off;
        if (l > tl + 1 && strncmp(p, topic, tl) == 0 && p[tl] == ':' && sscanf(p + tl + 1, "%lld:%lld", &part, &off) == 2 &&
            part == partition)
            return off;
        p += l;
    }
    return -1;
}

/* Resolve where the new partitions list[0..n) start (and stop), by mode. Returns 0, or -1 with a
 * message in why (retry later), or -2 with a fatal one. */
static int resolve(ks_state *s, ks_ready *list, int n, startup_mode mode, char *why, size_t whylen) {
    if (n == 0) return 0;
    int64_t *lo = xcalloc((size_t)n, sizeof *lo), *hi = xcalloc((size_t)n, sizeof *hi);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(s->rk, list[i].topic, list[i].partition, &lo[i], &hi[i], META_TIMEOUT_MS);
        if (e) {
            snprintf(why, whylen, "cannot get the offsets of topic %s partition %d: %s", list[i].topic,
                     list[i].partition, rd_kafka_err2str(e));
            rc = -1;
        }
    }
    rd_kafka_topic_partition_list_t *tl = NULL;
    if (!rc && (mode == SM_TIMESTAMP || mode == SM_GROUP || mode == SM_SPECIFIC)) {
        tl = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++) {
            rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(tl, list[i].topic, list[i].partition);
            tp->offset = mode == SM_TIMESTAMP ? s->startup_ts : RD_KAFKA_OFFSET_INVALID;
        }
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (mode == SM_TIMESTAMP) e = rd_kafka_offsets_for_times(s->rk, tl, META_TIMEOUT_MS);
        else if (s->group) e = rd_kafka_committed(s->rk, tl, META_TIMEOUT_MS);
        if (e) {
            snprintf(why, whylen, "cannot get the %s offsets: %s", mode == SM_TIMESTAMP ? "timestamp" : "committed",
                     rd_kafka_err2str(e));
            rc = -1;
        }
    }
    for (int i = 0; i < n && !rc; i++) {
        int64_t start = lo[i];
        switch (mode) {
        case SM_EARLIEST: start = lo[i]; break;
        case SM_LATEST: start = hi[i]; break;
        case SM_TIMESTAMP: {
            /* The broker's answer; without one (no record at or after the timestamp yet, or a
             * broker that cannot look up timestamps, as the mock cluster) read from the start and
             * skip records up to the first one at or after the timestamp: the same offset. */
            int64_t o = tl->elems[i].err ? -1 : tl->elems[i].offset;
            if (o >= 0) {
                start = o;
            } else {
                start = lo[i];
                list[i].skip_before_ts = s->startup_ts;
            }
            break;
        }
        case SM_GROUP:
        case SM_SPECIFIC: {
            int64_t o = mode == SM_SPECIFIC ? specific_offset(s, list[i].topic, list[i].partition) : -1;
            if (o < 0 && s->group && !tl->elems[i].err) o = tl->elems[i].offset;
            if (o >= 0) {
                start = o;
            } else if (s->reset == RS_NONE) {
                snprintf(why, whylen,
                         "topic %s partition %d has no committed offset for group '%s' and the reset strategy is "
                         "none",
                         list[i].topic, list[i].partition, s->group ? s->group : "");
                rc = -2;
            } else {
                start = s->reset == RS_LATEST ? hi[i] : lo[i];
            }
            break;
        }
        }
        list[i].start = start;
        list[i].stop = s->bounded ? hi[i] : INT64_MAX;
    }
    if (tl) rd_kafka_topic_partition_list_destroy(tl);
    free(lo);
    free(hi);
    return rc;
}

/* One discovery round. Returns 0, -1 (retry), -2 (fatal, in s->fatal). */
static int discover(ks_state *s, bool first) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 1, NULL, &md, META_TIMEOUT_MS);
    char why[512] = "";
    if (e) {
        snprintf(why, sizeof why, "cannot fetch metadata from %s: %s", s->bootstrap, rd_kafka_err2str(e));
        log_warn("%s: partition discovery: %s", s->op->rt->task_name, why);
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_error, sizeof s->last_error, "%s", why);
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    ks_ready *list = NULL;
    int n = 0, cap = 0;
    struct {
        const char *name;
        int count;
    } *counts = xcalloc((size_t)md->topic_cnt + 1, sizeof *counts);
    int nc = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (t->err || !topic_wanted(s, t->topic)) continue;
        counts[nc].name = t->topic;
        counts[nc++].count = t->partition_cnt;
        int prev = seen_count(s, t->topic);
        for (int p = prev; p < t->partition_cnt; p++) {
            if (kafka_split_owner(t->topic, p, s->op->rt->parallelism) != s->op->rt->subtask) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                list = xrealloc(list, (size_t)cap * sizeof *list);
            }
            list[n].topic = xstrdup(t->topic);
            list[n].partition = p;
            list[n].start = list[n].stop = 0;
            list[n].skip_before_ts = INT64_MIN;
            n++;
        }
    }
    if (first && s->n_topic_list) {
        for (int i = 0; i < s->n_topic_list; i++) {
            bool found = false;
            for (int k = 0; k < nc; k++) found |= strcmp(counts[k].name, s->topic_list[i]) == 0;
            if (!found)
                log_warn("%s: topic '%s' does not exist (yet): it is read once it appears%s", s->op->rt->task_name,
                         s->topic_list[i], s->bounded ? " (not in bounded mode)" : "");
        }
    }
    /* Partitions found after the first round (and, after a restore, any the state does not know)
     * start at their earliest offset, as Flink's newly discovered partitions. */
    startup_mode mode = first && !s->restored ? s->startup : SM_EARLIEST;
    int rc = resolve(s, list, n, mode, why, sizeof why);
    if (rc == 0) {
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++) {
            if (s->nready == s->cap_ready) {
                s->cap_ready = s->cap_ready ? s->cap_ready * 2 : 16;
                s->ready = xrealloc(s->ready, (size_t)s->cap_ready * sizeof *s->ready);
            }
            s->ready[s->nready++] = list[i];
        }
        for (int k = 0; k < nc; k++) seen_set(s, counts[k].name, counts[k].count);
        s->first_done = true;
        pthread_mutex_unlock(&s->mu);
        if (n) log_info("%s: %d new partition(s) assigned%s", s->op->rt->task_name, n, first ? " at start" : "");
    } else {
        for (int i = 0; i < n; i++) free(list[i].topic);
        if (rc == -2) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->fatal, sizeof s->fatal, "%s", why);
            pthread_mutex_unlock(&s->mu);
        } else {
            log_warn("%s: partition discovery: %s", s->op->rt->task_name, why);
            pthread_mutex_lock(&s->mu);
            snprintf(s->last_error, sizeof s->last_error, "%s", why);
            pthread_mutex_unlock(&s->mu);
        }
    }
    free(list);
    free(counts);
    rd_kafka_metadata_destroy(md);
    return rc;
}

static void *discovery_main(void *arg) {
    ks_state *s = arg;
    bool first = true;
    pthread_mutex_lock(&s->mu);
    while (!s->stop_thread) {
        pthread_mutex_unlock(&s->mu);
        int rc = discover(s, first);
        pthread_mutex_lock(&s->mu);
        if (rc == -2) break;
        if (rc == 0) first = false;
        if (rc == 0 && s->discovery_ms < 0) break;
        int64_t wait_ms = rc ? 1000 : s->discovery_ms;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        while (!s->stop_thread) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- open / close --------------------------------------------------------------------------------- */

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    ks_state *s = opaque;
    /* Transient errors (a broker down, all brokers down) are retried by librdkafka: log them. */
    int64_t now = time_mono_ms();
    if (now - s->last_error_log_ms >= 5000 || err == RD_KAFKA_RESP_ERR__FATAL) {
        s->last_error_log_ms = now;
        log_warn("%s: kafka: %s: %s", s->op->rt->task_name, rd_kafka_err2name(err), reason);
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    if (level <= 3) log_warn("librdkafka %s: %s", fac, buf);
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                      void *opaque) {
    ks_state *s = opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        s->stats.commit_failures++;
        log_warn("%s: committing offsets to group '%s' failed: %s", s->op->rt->task_name, s->group,
                 rd_kafka_err2str(err));
    } else if (!err) {
        s->stats.commits++;
    }
}

static int conf_set(tm_op *op, rd_kafka_conf_t *conf, const char *k, const char *v) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return tm_op_fail(op, "librdkafka property '%s' = '%s': %s", k, v, errstr);
    return FLINT_OK;
}

static const char *meta_names[] = {"key", "topic", "partition", "offset", "timestamp", "timestamp-type", "headers"};

static int parse_columns(tm_op *op, ks_state *s) {
    int nf = flint_schema_field_count(op->out_schema);
    bool *meta = xcalloc((size_t)nf + 1, sizeof *meta);
    const char *m = tm_op_param(op, "metadata");
    for (const char *p = m; p && *p;) {
        int col;
        char key[32];
        int used = 0;
        if (sscanf(p, "%d=%31[^,]%n", &col, key, &used) != 2 || col < 0 || col >= nf || s->nmeta == 8) {
            free(meta);
            return tm_op_fail(op, "bad metadata parameter '%s'", m);
        }
        int k = 0;
        while (k < 7 && strcmp(meta_names[k], key) != 0) k++;
        if (k == 7) {
            free(meta);
            return tm_op_fail(op, "unknown metadata key '%s'", key);
        }
        s->meta_col[s->nmeta] = col;
        s->meta_kind[s->nmeta++] = k;
        meta[col] = true;
        p += used;
        if (*p == ',') p++;
    }
    int *cols = xcalloc((size_t)nf + 1, sizeof *cols), nv = 0;
    for (int i = 0; i < nf; i++)
        if (!meta[i]) cols[nv++] = i;
    flint_err err = {0};
    int rc = fmt_init(&s->value, param_or(op, "format", "text"), op->out_schema, cols, nv, false, fmt_opt, op, "", &err);
    free(cols);
    free(meta);
    if (rc) return tm_op_fail(op, "value format: %s", err.msg);
    return FLINT_OK;
}

static int ks_open(tm_op *op) {
    ks_state *s = XNEW(ks_state);
    op->state = s;
    s->op = op;
    s->ts_field = -1;
    s->dl_side = -1;
    s->emitted_wm = INT64_MIN;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!op->out_schema) return tm_op_fail(op, "the source has no output schema");
    flint_row_builder_init(&s->b, op->out_schema);
    int rc = parse_columns(op, s);
    if (rc) return rc;

    const char *v;
    if ((rc = tm_op_param_req(op, "bootstrap.servers", &v))) return rc;
    s->bootstrap = xstrdup(v);
    if ((v = tm_op_param(op, "topics"))) {
        char *copy = xstrdup(v), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            s->topic_list = xrealloc(s->topic_list, (size_t)(s->n_topic_list + 1) * sizeof *s->topic_list);
            s->topic_list[s->n_topic_list++] = xstrdup(str_trim(t));
        }
        free(copy);
    } else if ((v = tm_op_param(op, "topic-pattern"))) {
        char *anchored = xasprintf("^(%s)$", v);
        int r = regcomp(&s->re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (r) return tm_op_fail(op, "topic pattern '%s' does not compile", v);
        s->has_re = true;
    } else {
        return tm_op_fail(op, "neither topics nor topic-pattern given");
    }
    if ((v = tm_op_param(op, "group.id"))) s->group = xstrdup(v);
    s->commit_enabled = s->group && param_bool(op, "commit.offsets.on.checkpoint", true);

    const char *sm = param_or(op, "startup.mode", "earliest");
    s->startup = strcmp(sm, "latest") == 0          ? SM_LATEST
                 : strcmp(sm, "group-offsets") == 0  ? SM_GROUP
                 : strcmp(sm, "timestamp") == 0      ? SM_TIMESTAMP
                 : strcmp(sm, "specific-offsets") == 0 ? SM_SPECIFIC
                                                     : SM_EARLIEST;
    const char *rs = param_or(op, "startup.reset", "earliest");
    s->reset = strcmp(rs, "latest") == 0 ? RS_LATEST : strcmp(rs, "none") == 0 ? RS_NONE : RS_EARLIEST;
    if ((rc = tm_op_param_int(op, "startup.timestamp", 0, &s->startup_ts))) return rc;
    if ((v = tm_op_param(op, "startup.specific-offsets"))) s->specific = xstrdup(v);
    s->bounded = param_bool(op, "bounded", false);
    if ((rc = tm_op_param_int(op, "discovery.interval", -1, &s->discovery_ms))) return rc;
    if ((v = tm_op_param(op, "records-per-second"))) {
        double r;
        if (str_parse_double(v, &r) || !(r > 0)) return tm_op_fail(op, "records-per-second: expected a positive number, got '%s'", v);
        s->rate = r / op->rt->parallelism;
    }
    if (s->discovery_ms == 0) s->discovery_ms = -1;

    /* Event time. */
    s->watermarks = param_bool(op, "watermarks", false);
    int64_t f;
    if ((rc = tm_op_param_int(op, "ts.field", -1, &f))) return rc;
    if (f >= 0) {
        if (f >= flint_schema_field_count(op->out_schema)) return tm_op_fail(op, "timestamp field %lld out of range", (long long)f);
        s->ts_field = (int)f;
        s->ts_type = flint_schema_field_type(op->out_schema, s->ts_field);
    } else if (tm_op_param(op, "fn")) {
        void (*fn)(void);
        if ((rc = tm_op_symbol(op, "fn", true, &fn))) return rc;
        s->ts_fn = (flint_timestamp_fn)fn;
        if ((rc = tm_op_udf_open(op))) return rc;
    }
    if ((rc = tm_op_param_int(op, "out_of_orderness", 0, &s->bound)) ||
        (rc = tm_op_param_int(op, "idleness", 0, &s->idleness)))
        return rc;

    /* Records that do not parse. */
    s->ignore_errors = param_bool(op, "ignore-parse-errors", false);
    if ((v = tm_op_param(op, "dead-letter.tag"))) {
        s->dl_side = tm_op_side_output(op, v);
        if (s->dl_side >= 0 && op->sides[s->dl_side].n_outs == 0) s->dl_side = -1;   /* declared, not consumed */
        if (s->dl_side < 0) {
            log_warn("%s: the dead-letter side output '%s' has no consumer: records that do not parse fail the job%s",
                     op->rt->task_name, v, s->ignore_errors ? " (ignore-parse-errors: they are skipped)" : "");
        } else {
            flint_err err = {0};
            if (flint_schema_parse(FLINT_KAFKA_DEAD_LETTER_SCHEMA, &s->dl_schema, &err))
                return tm_op_fail(op, "dead letter schema: %s", err.msg);
            flint_row_builder_init(&s->dl_b, s->dl_schema);
        }
    }

    /* The consumer. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[512];
    rc = conf_set(op, conf, "bootstrap.servers", s->bootstrap);
    if (!rc) {
        /* assign() needs a group; without the user's, one nobody else uses (never committed). */
        if (s->group) {
            rc = conf_set(op, conf, "group.id", s->group);
        } else {
            char hex[17];
            str_random_hex(hex, 8);
            snprintf(buf, sizeof buf, "flint-kafka-source-%s", hex);
            rc = conf_set(op, conf, "group.id", buf);
        }
    }
    if (!rc) {
        snprintf(buf, sizeof buf, "%s-%d", param_or(op, "client.id.prefix", "flint-kafka-source"), op->rt->subtask);
        rc = conf_set(op, conf, "client.id", buf);
    }
    if (!rc) rc = conf_set(op, conf, "enable.partition.eof", "true");
    if (!rc) rc = conf_set(op, conf, "auto.offset.reset", s->reset == RS_NONE ? "error" : s->reset == RS_LATEST ? "latest" : "earliest");
    /* The user's librdkafka properties. */
    for (size_t i = 0; !rc && i < op->def->n_params; i++) {
        const char *k = op->def->params[i]->key;
        if (str_starts_with(k, "properties.")) rc = conf_set(op, conf, k + 11, op->def->params[i]->value);
    }
    /* Flint owns offsets: never auto-commit, never store. */
    if (!rc) rc = conf_set(op, conf, "enable.auto.commit", "false");
    if (!rc) rc = conf_set(op, conf, "enable.auto.offset.store", "false");
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    char errstr[512];
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        return tm_op_fail(op, "cannot create the Kafka consumer: %s", errstr);
    }
    /* Errors and commit results come through rd_kafka_consumer_poll too. */
    rd_kafka_poll_set_consumer(s->rk);
    if (s->watermarks) {
        int64_t every = op->rt->auto_watermark_interval_ms > 0 ? op->rt->auto_watermark_interval_ms : 200;
        tm_op_every(op, every, ks_tick);
    }
    return FLINT_OK;
}

static void ks_close(tm_op *op) {
    ks_state *s = op->state;
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop_thread = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->rk) {
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    if (s->ts_fn) tm_op_udf_close(op);
    for (int i = 0; i < s->npending; i++) rd_kafka_topic_partition_list_destroy(s->pending[i].offsets);
    for (int i = 0; i < s->nready; i++) free(s->ready[i].topic);
    free(s->ready);
    for (int i = 0; i < s->seen.n; i++) free(s->seen.names[i]);
    free(s->seen.names);
    free(s->seen.counts);
    for (int i = 0; i < s->ntopics; i++) {
        free(s->topics[i].name);
        free(s->topics[i].part_index);
    }
    free(s->topics);
    free(s->parts);
    kafka_splits_free(s->restore, s->n_restore);
    for (int i = 0; i < s->n_topic_list; i++) free(s->topic_list[i]);
    free(s->topic_list);
    if (s->has_re) regfree(&s->re);
    fmt_free(&s->value);
    if (s->b.schema) flint_row_builder_free(&s->b);
    if (s->dl_schema) {
        flint_row_builder_free(&s->dl_b);
        flint_schema_free(s->dl_schema);
    }
    free(s->bootstrap);
    free(s->group);
    free(s->specific);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    op->state = NULL;
}

/* ---- restore and start ----------------------------------------------------------------------------- */

/* "topic-partition" -> topic (in buf) and partition. */
static bool split_id_parse(const char *id, char *topic, size_t cap, int32_t *partition) {
    const char *dash = strrchr(id, '-');
    if (!dash || dash == id || (size_t)(dash - id) >= cap) return false;
    for (const char *c = id; c < dash; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-')) return false;
    char *end;
    long p = strtol(dash + 1, &end, 10);
    if (!dash[1] || *end || p < 0 || p > INT32_MAX) return false;
    memcpy(topic, id, (size_t)(dash - id));
    topic[dash - id] = '\0';
    *partition = (int32_t)p;
    return true;
}

int kafka_source_restore(tm_op *op, const kafka_split *splits, int n, flint_err *err) {
    ks_state *s = op->state;
    if (!s || s->started) return flint_err_set(err, FLINT_STATE, "Kafka source: restore after the source started");
    kafka_splits_free(s->restore, s->n_restore);
    s->restore = xcalloc((size_t)(n ? n : 1), sizeof *s->restore);
    s->n_restore = n;
    for (int i = 0; i < n; i++) {
        char topic[256];
        int32_t part;
        if (strncmp(splits[i].id, KS_MARKER, strlen(KS_MARKER)) != 0 &&
            !split_id_parse(splits[i].id, topic, sizeof topic, &part))
            return flint_err_set(err, FLINT_INVALID, "Kafka source: bad split id '%s'", splits[i].id);
        s->restore[i].id = xstrdup(splits[i].id);
        s->restore[i].position = splits[i].position;
        s->restore[i].data = splits[i].data ? xstrdup(splits[i].data) : NULL;
    }
    s->restored = true;
    return FLINT_OK;
}

/* Apply the restored splits, then start the discovery thread. */
static int start(tm_op *op, ks_state *s) {
    s->started = true;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(s->n_restore + 1);
    int n_parts = 0;
    for (int i = 0; i < s->n_restore; i++) {
        char topic[256];
        int32_t part;
        bool marker = strncmp(s->restore[i].id, KS_MARKER, strlen(KS_MARKER)) == 0;
        if (!marker && !split_id_parse(s->restore[i].id, topic, sizeof topic, &part)) continue;
        int64_t stop = INT64_MAX, skip_ts = INT64_MIN;
        for (const char *d = s->restore[i].data; d && *d;) {
            const char *nl = strchr(d, '\n');
            size_t l = nl ? (size_t)(nl - d) : strlen(d);
            long long st;
            if (strncmp(d, "stop=", 5) == 0 && sscanf(d + 5, "%lld", &st) == 1) stop = st;
            if (strncmp(d, "skip-before-ts=", 15) == 0 && sscanf(d + 15, "%lld", &st) == 1) skip_ts = st;
            if (strncmp(d, "known=", 6) == 0) {
                /* topic:count,... */
                char *copy = xstrndup(d + 6, l - 6), *save = NULL;
                for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
                    char *c = strrchr(e, ':');
                    if (!c) continue;
                    *c = '\0';
                    seen_set(s, e, atoi(c + 1));
                }
                free(copy);
            }
            d += l + (nl ? 1 : 0);
        }
        if (marker) continue;
        n_parts++;
        if (!s->bounded) stop = INT64_MAX;
        ks_part *p = add_part(s, topic, part, s->restore[i].position, stop);
        p->skip_before_ts = skip_ts;
        seen_set(s, topic, part + 1);
        if (p->next >= p->stop) {
            p->finished = true;
            s->n_finished++;
        } else {
            rd_kafka_topic_partition_list_add(assign, topic, part)->offset = p->next;
            p->assigned = true;
        }
    }
    /* The thread's seen counts also cover the restored ones: copy them to the topics' known. */
    for (int i = 0; i < s->seen.n; i++) {
        int ti = topic_index(s, s->seen.names[i], true);
        if (s->seen.counts[i] > s->topics[ti].known) s->topics[ti].known = s->seen.counts[i];
    }
    int rc = FLINT_OK;
    if (assign->cnt) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(s->rk, assign);
        if (e) {
            rc = tm_op_fail(op, "assigning the restored partitions: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    if (s->restored)
        log_info("%s: restored %d partition(s) from the checkpoint", op->rt->task_name, n_parts);
    rd_kafka_topic_partition_list_destroy(assign);
    if (rc) return rc;
    s->started_ms = time_mono_ms();
    if (pthread_create(&s->thread, NULL, discovery_main, s) != 0)
        return tm_op_fail(op, "cannot start the partition discovery thread");
    s->thread_started = true;
    return FLINT_OK;
}

/* Take the partitions the discovery thread resolved. */
static int take_ready(tm_op *op, ks_state *s, bool *first_done) {
    pthread_mutex_lock(&s->mu);
    if (s->fatal[0]) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", s->fatal);
        pthread_mutex_unlock(&s->mu);
        return tm_op_fail(op, "%s", msg);
    }
    ks_ready *ready = s->ready;
    int n = s->nready;
    s->ready = NULL;
    s->nready = s->cap_ready = 0;
    *first_done = s->first_done;
    /* Known counts for snapshots. */
    for (int i = 0; i < s->seen.n; i++) {
        int ti = topic_index(s, s->seen.names[i], true);
        if (s->seen.counts[i] > s->topics[ti].known) s->topics[ti].known = s->seen.counts[i];
    }
    pthread_mutex_unlock(&s->mu);
    if (n == 0) {
        free(ready);
        return FLINT_OK;
    }
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        ks_part *p = add_part(s, ready[i].topic, ready[i].partition, ready[i].start, ready[i].stop);
        p->skip_before_ts = ready[i].skip_before_ts;
        if (p->next >= p->stop) {
            p->finished = true;
            s->n_finished++;
        } else {
            rd_kafka_topic_partition_list_add(assign, ready[i].topic, ready[i].partition)->offset = p->next;
            p->assigned = true;
        }
        log_debug("%s: reading topic %s partition %d from offset %" PRId64, op->rt->task_name, ready[i].topic,
                  ready[i].partition, ready[i].start);
        free(ready[i].topic);
    }
    free(ready);
    int rc = FLINT_OK;
    if (assign->cnt) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(s->rk, assign);
        if (e) {
            rc = tm_op_fail(op, "assigning partitions: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(assign);
    return rc;
}

static void finish_part(ks_state *s, ks_part *p) {
    if (p->finished) return;
    p->finished = true;
    s->n_finished++;
    if (p->assigned) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, s->topics[p->topic].name, p->partition);
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(s->rk, l);
        if (e) rd_kafka_error_destroy(e);
        rd_kafka_topic_partition_list_destroy(l);
        p->assigned = false;
    }
}

/* ---- records ------------------------------------------------------------------------------------------ */

/* The record's headers as JSON (fmt_headers_encode) into column col; fails on a name that is not UTF-8. */
static int set_headers(ks_state *s, int col, const rd_kafka_message_t *m, flint_err *err) {
    rd_kafka_headers_t *hdrs = NULL;
    size_t n = rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_header_cnt(hdrs) : 0;
    fmt_header *h = xmalloc((n ? n : 1) * sizeof *h);
    size_t k = 0;
    while (k < n && rd_kafka_header_get_all(hdrs, k, &h[k].name, &h[k].value, &h[k].len) == RD_KAFKA_RESP_ERR_NO_ERROR) k++;
    char *text = fmt_headers_encode(h, k, err);
    free(h);
    if (!text) return FLINT_INVALID;
    if (flint_schema_field_type(s->b.schema, col) == FLINT_BYTES) flint_row_set_bytes(&s->b, col, text, strlen(text));
    else flint_row_set_string(&s->b, col, text, strlen(text));
    free(text);
    return FLINT_OK;
}

static int fill_metadata(ks_state *s, const rd_kafka_message_t *m, const char *topic, flint_err *err) {
    for (int i = 0; i < s->nmeta; i++) {
        int c = s->meta_col[i];
        flint_type t = flint_schema_field_type(s->b.schema, c);
        rd_kafka_timestamp_type_t tt;
        int64_t ts;
        switch (s->meta_kind[i]) {
        case MK_KEY:
            if (!m->key) flint_row_set_null(&s->b, c);
            else if (t == FLINT_BYTES) flint_row_set_bytes(&s->b, c, m->key, m->key_len);
            else flint_row_set_string(&s->b, c, m->key, m->key_len);
            break;
        case MK_TOPIC: flint_row_set_cstring(&s->b, c, topic); break;
        case MK_PARTITION:
            if (t == FLINT_INT) flint_row_set_int(&s->b, c, m->partition);
            else flint_row_set_long(&s->b, c, m->partition);
            break;
        case MK_OFFSET: flint_row_set_long(&s->b, c, m->offset); break;
        case MK_TIMESTAMP:
            ts = rd_kafka_message_timestamp(m, &tt);
            if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) flint_row_set_null(&s->b, c);
            else flint_row_set_long(&s->b, c, ts);
            break;
        case MK_TIMESTAMP_TYPE:
            rd_kafka_message_timestamp(m, &tt);
            flint_row_set_cstring(&s->b, c, tt == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? "CreateTime"
                                            : tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "LogAppendTime"
                                                                                       : "NoTimestampType");
            break;
        case MK_HEADERS:
            if (set_headers(s, c, m, err)) return FLINT_INVALID;
            break;
        }
    }
    return FLINT_OK;
}

/* A record that does not parse: fail, skip or dead-letter it. */
static int parse_error(tm_op *op, ks_state *s, const rd_kafka_message_t *m, const char *topic, const char *why) {
    metric_counter_inc(&op->num_records_in_errors);
    if (s->dl_side >= 0) {
        s->stats.dead_lettered++;
        flint_row_builder *b = &s->dl_b;
        flint_row_builder_reset(b);
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        flint_row_set_cstring(b, 0, topic);
        flint_row_set_int(b, 1, m->partition);
        flint_row_set_long(b, 2, m->offset);
        if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) flint_row_set_null(b, 3);
        else flint_row_set_long(b, 3, ts);
        if (m->key) flint_row_set_bytes(b, 4, m->key, m->key_len);
        else flint_row_set_null(b, 4);
        if (m->payload) flint_row_set_bytes(b, 5, m->payload, m->len);
        else flint_row_set_null(b, 5);
        flint_row_set_cstring(b, 6, why);
        flint_row row = flint_row_builder_row(b);
        return tm_op_emit_side(op, s->dl_side, &row);
    }
    if (s->ignore_errors) {
        /* Counted (numRecordsInErrors) and logged: the first ones, then every 1000th. */
        int64_t n = metric_counter_get(&op->num_records_in_errors);
        if (n <= 10 || n % 1000 == 0)
            log_warn("%s: skipped a record that does not parse (%" PRId64 " so far): topic %s, partition %d, offset %" PRId64
                     ": %s",
                     op->rt->task_name, n, topic, m->partition, m->offset, why);
        return FLINT_OK;
    }
    return tm_op_fail(op,
                      "cannot parse the record at topic %s, partition %d, offset %" PRId64
                      " (format %s): %s (set format.ignore-parse-errors to skip such records, or a dead-letter side "
                      "output)",
                      topic, m->partition, m->offset, param_or(op, "format", "text"), why);
}

static int on_record(tm_op *op, ks_state *s, const rd_kafka_message_t *m) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    int ti = -1;
    for (int i = 0; i < s->ntopics; i++)
        if (s->topics[i].rkt == m->rkt) {
            ti = i;
            break;
        }
    if (ti < 0) {
        ti = topic_index(s, topic, false);
        if (ti < 0) return FLINT_OK;   /* not ours (an unassigned leftover) */
        s->topics[ti].rkt = m->rkt;
    }
    ks_part *p = find_part(s, ti, m->partition);
    if (!p || p->finished || m->offset < p->next) return FLINT_OK;
    if (m->offset >= p->stop) {
        finish_part(s, p);
        return FLINT_OK;
    }
    if (__builtin_expect(p->skip_before_ts != INT64_MIN, 0)) {
        rd_kafka_timestamp_type_t tt;
        if (rd_kafka_message_timestamp(m, &tt) < p->skip_before_ts) {
            p->next = m->offset + 1;
            if (p->next >= p->stop) finish_part(s, p);
            return FLINT_OK;
        }
        p->skip_before_ts = INT64_MIN;
    }
    int rc = FLINT_OK;
    flint_row_builder_reset(&s->b);
    flint_err err = {0};
    if (fmt_decode(&s->value, m->payload, m->len, &s->b, &err) || fill_metadata(s, m, topic, &err)) {
        rc = parse_error(op, s, m, topic, err.msg);
    } else {
        flint_row row = flint_row_builder_row(&s->b);
        int64_t ts;
        if (s->ts_field >= 0) {
            if (flint_row_is_null(&row, s->ts_field))
                return tm_op_fail(op, "topic %s, partition %d, offset %" PRId64 ": the timestamp field '%s' is NULL", topic,
                                  m->partition, m->offset, flint_schema_field_name(op->out_schema, s->ts_field));
            ts = s->ts_type == FLINT_INT ? flint_row_get_int(&row, s->ts_field) : flint_row_get_long(&row, s->ts_field);
        } else if (s->ts_fn) {
            ts = s->ts_fn(&op->ctx, &row);
            if (op->ctx.failed) return tm_op_check_ctx(op);
        } else {
            rd_kafka_timestamp_type_t tt;
            ts = rd_kafka_message_timestamp(m, &tt);
            if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) ts = FLINT_NO_TIMESTAMP;
        }
        if (s->watermarks) {
            if (s->out_idle) {
                s->out_idle = false;
                if ((rc = tm_op_emit_idle(op, false))) return rc;
            }
            if (ts != FLINT_NO_TIMESTAMP && ts > p->max_ts) p->max_ts = ts;
            p->idle = false;
            p->last_active_ms = time_mono_ms();
        }
        s->stats.records++;
        s->rate_emitted++;
        rc = tm_op_emit_ts(op, &row, ts);
    }
    p->next = m->offset + 1;
    if (p->next >= p->stop) finish_part(s, p);
    return rc;
}

/* End of a partition reached (enable.partition.eof): bounded partitions may be done (the stop
 * offset can lie past the last record, after transaction markers). */
static void on_eof(ks_state *s, const rd_kafka_message_t *m) {
    if (!s->bounded) return;
    int ti = topic_index(s, rd_kafka_topic_name(m->rkt), false);
    if (ti < 0) return;
    ks_part *p = find_part(s, ti, m->partition);
    if (!p || p->finished) return;
    if (m->offset > p->next) p->next = m->offset;
    if (p->next >= p->stop) finish_part(s, p);
}

static int ks_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    ks_state *s = op->state;
    int rc;
    *st = TM_SOURCE_MORE;
    if (!s->started && (rc = start(op, s))) return rc;
    bool first_done = false;
    if ((rc = take_ready(op, s, &first_done))) return rc;
    if (first_done) {
        s->discovered = true;
    } else if (time_mono_ms() - s->started_ms > FIRST_DISCOVERY_LIMIT_MS) {
        /* The brokers stayed unreachable: fail (the restart strategy may try again). */
        char why[256];
        pthread_mutex_lock(&s->mu);
        snprintf(why, sizeof why, "%s", s->last_error[0] ? s->last_error : "no answer");
        pthread_mutex_unlock(&s->mu);
        return tm_op_fail(op, "no partitions could be discovered within %d s: %s", FIRST_DISCOVERY_LIMIT_MS / 1000, why);
    }
    if (s->bounded && first_done && s->n_finished == s->nparts) {
        *st = TM_SOURCE_END;
        return FLINT_OK;
    }
    int64_t now = time_mono_ms();
    int budget = BATCH;
    if (s->rate > 0) {
        /* As the datagen source: records due by now; a backlog over a second is forgotten. */
        if (!s->rate_start_ms) s->rate_start_ms = now;
        int64_t due = (int64_t)((double)(now - s->rate_start_ms) * s->rate / 1000.0) + 1;
        if (due - s->rate_emitted > (int64_t)s->rate + 1) {
            s->rate_start_ms = now - (int64_t)((double)s->rate_emitted * 1000.0 / s->rate);
            due = s->rate_emitted + 1;
        }
        if (due <= s->rate_emitted) {
            *st = TM_SOURCE_WAIT;
            *wake = s->rate_start_ms + (int64_t)((double)s->rate_emitted * 1000.0 / s->rate) + 1;
            if (*wake <= now) *wake = now + 1;
            return FLINT_OK;
        }
        if (due - s->rate_emitted < budget) budget = (int)(due - s->rate_emitted);
    }
    int timeout = deadline <= now ? 0 : deadline - now > 100 ? 100 : (int)(deadline - now);
    int64_t t0 = time_mono_ns();
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, timeout);
    op->rt->idle_ns += time_mono_ns() - t0;
    for (int n = 0; m && n < budget; n++) {
        rc = FLINT_OK;
        if (!m->err) {
            rc = on_record(op, s, m);
        } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            on_eof(s, m);
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                   m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            rc = tm_op_fail(op, "reading topic %s partition %d: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition,
                            rd_kafka_message_errstr(m));
        } else {
            error_cb(s->rk, m->err, rd_kafka_message_errstr(m), s);
        }
        rd_kafka_message_destroy(m);
        if (rc) return rc;
        m = n + 1 < budget ? rd_kafka_consumer_poll(s->rk, 0) : NULL;
    }
    if (m) rd_kafka_message_destroy(m);
    if (s->bounded && first_done && s->n_finished == s->nparts) *st = TM_SOURCE_END;
    return FLINT_OK;
}

/* ---- watermarks ------------------------------------------------------------------------------------- */

static int ks_tick(tm_op *op, int64_t now_ms) {
    ks_state *s = op->state;
    if (!s->started) return FLINT_OK;
    int64_t wm = INT64_MAX;
    int active = 0;
    for (int i = 0; i < s->nparts; i++) {
        ks_part *p = &s->parts[i];
        if (p->finished) continue;
        if (!p->idle && s->idleness > 0 && now_ms - p->last_active_ms >= s->idleness) p->idle = true;
        if (p->idle) continue;
        active++;
        int64_t w = tm_bounded_watermark(p->max_ts, s->bound);
        if (w < wm) wm = w;
    }
    if (active == 0) {
        /* Every partition idle, or none to read once discovery ran: the subtask is idle, as
         * Flink's source reader without active splits. (A bounded source that is done ends with
         * the MAX watermark instead.) */
        bool done = s->bounded && s->n_finished == s->nparts;
        if (!s->out_idle && !done && s->discovered) {
            s->out_idle = true;
            return tm_op_emit_idle(op, true);
        }
        return FLINT_OK;
    }
    if (s->out_idle) {
        s->out_idle = false;
        int rc = tm_op_emit_idle(op, false);
        if (rc) return rc;
    }
    if (wm == INT64_MIN || wm <= s->emitted_wm) return FLINT_OK;
    s->emitted_wm = wm;
    return tm_op_emit_watermark(op, wm);
}

/* ---- checkpoints ------------------------------------------------------------------------------------ */

int kafka_source_snapshot(tm_op *op, int64_t checkpoint_id, kafka_split **out, int *n, flint_err *err) {
    ks_state *s = op->state;
    *out = NULL;
    *n = 0;
    if (!s) return flint_err_set(err, FLINT_STATE, "Kafka source: snapshot before open");
    if (!s->started) {
        /* Not started: nothing assigned yet; the restored splits are still the state. */
        kafka_split *sp = xcalloc((size_t)(s->n_restore ? s->n_restore : 1), sizeof *sp);
        for (int i = 0; i < s->n_restore; i++) {
            sp[i].id = xstrdup(s->restore[i].id);
            sp[i].position = s->restore[i].position;
            sp[i].data = s->restore[i].data ? xstrdup(s->restore[i].data) : NULL;
        }
        *out = sp;
        *n = s->n_restore;
        return FLINT_OK;
    }
    /* The known partition counts, shared by every split. */
    size_t kcap = 64, klen = 0;
    char *known = xmalloc(kcap);
    klen = (size_t)snprintf(known, kcap, "known=");
    for (int i = 0; i < s->ntopics; i++) {
        size_t need = strlen(s->topics[i].name) + 16;
        if (klen + need >= kcap) {
            kcap = (klen + need) * 2;
            known = xrealloc(known, kcap);
        }
        klen += (size_t)snprintf(known + klen, kcap - klen, "%s%s:%d", i ? "," : "", s->topics[i].name, s->topics[i].known);
    }
    kafka_split *sp = xcalloc((size_t)s->nparts + 1, sizeof *sp);
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(s->nparts + 1);
    for (int i = 0; i < s->nparts; i++) {
        ks_part *p = &s->parts[i];
        const char *topic = s->topics[p->topic].name;
        sp[i].id = xasprintf("%s-%d", topic, p->partition);
        sp[i].position = p->next;
        /* Every split also carries the known partitions: a subtask restored at another
         * parallelism learns them from any split it receives. */
        char stop[40] = "", skip[48] = "";
        if (s->bounded) snprintf(stop, sizeof stop, "stop=%" PRId64 "\n", p->stop);
        if (p->skip_before_ts != INT64_MIN) snprintf(skip, sizeof skip, "skip-before-ts=%" PRId64 "\n", p->skip_before_ts);
        sp[i].data = xasprintf("%s%s%s", stop, skip, known);
        rd_kafka_topic_partition_list_add(offs, topic, p->partition)->offset = p->next;
    }
    /* The marker: the partitions this subtask knew of; also tells a subtask that owned no
     * partition that it is restored. */
    sp[s->nparts].id = xasprintf("%s%d", KS_MARKER, op->rt->subtask);
    sp[s->nparts].position = 0;
    sp[s->nparts].data = known;
    *out = sp;
    *n = s->nparts + 1;
    if (s->commit_enabled) {
        if (s->npending == MAX_PENDING_COMMITS) {
            rd_kafka_topic_partition_list_destroy(s->pending[0].offsets);
            memmove(s->pending, s->pending + 1, (MAX_PENDING_COMMITS - 1) * sizeof *s->pending);
            s->npending--;
        }
        s->pending[s->npending].checkpoint_id = checkpoint_id;
        s->pending[s->npending++].offsets = offs;
    } else {
        rd_kafka_topic_partition_list_destroy(offs);
    }
    return FLINT_OK;
}

int kafka_source_checkpoint_complete(tm_op *op, int64_t checkpoint_id) {
    ks_state *s = op->state;
    if (!s || !s->commit_enabled) return FLINT_OK;
    int latest = -1;
    for (int i = 0; i < s->npending; i++)
        if (s->pending[i].checkpoint_id <= checkpoint_id) latest = i;
    if (latest < 0) return FLINT_OK;
    rd_kafka_topic_partition_list_t *offs = s->pending[latest].offsets;
    if (offs->cnt) {
        /* Asynchronous: the result comes to commit_cb from a later poll. A failed commit is only
         * logged (Flink's behaviour): the checkpoint, not the group, is what recovery uses. */
        rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, offs, 1);
        if (e) {
            s->stats.commit_failures++;
            log_warn("%s: committing offsets of checkpoint %" PRId64 " failed: %s", op->rt->task_name, checkpoint_id,
                     rd_kafka_err2str(e));
        }
    }
    for (int i = 0; i <= latest; i++) rd_kafka_topic_partition_list_destroy(s->pending[i].offsets);
    memmove(s->pending, s->pending + latest + 1, (size_t)(s->npending - latest - 1) * sizeof *s->pending);
    s->npending -= latest + 1;
    return FLINT_OK;
}

void kafka_source_get_stats(tm_op *op, kafka_source_stats *st) {
    ks_state *s = op->state;
    memset(st, 0, sizeof *st);
    if (!s) return;
    *st = s->stats;
    st->parse_errors = metric_counter_get(&op->num_records_in_errors);
    st->partitions = s->nparts;
    st->finished = s->n_finished;
}

/* ---- the task's checkpoint callbacks (operator.h, checkpoint/cp_task.h) --------------------------------- */

static int ks_snapshot_state(tm_op *op, int64_t checkpoint_id, Flint__Checkpoint__OperatorSubtaskState *out) {
    kafka_split *sp;
    int n;
    flint_err err = {0};
    if (kafka_source_snapshot(op, checkpoint_id, &sp, &n, &err)) return tm_op_fail(op, "%s", err.msg);
    for (int i = 0; i < n; i++) tm_cp_add_split(out, sp[i].id, sp[i].position, sp[i].data, sp[i].data ? strlen(sp[i].data) : 0);
    kafka_splits_free(sp, n);
    return FLINT_OK;
}

static int ks_initialize_state(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    int n = (int)r->n_source_splits;
    kafka_split *sp = xcalloc((size_t)n + 1, sizeof *sp);
    for (int i = 0; i < n; i++) {
        const Flint__Checkpoint__SourceSplitState *ss = r->source_splits[i];
        sp[i].id = xstrdup(ss->split_id ? ss->split_id : "");
        sp[i].position = ss->position;
        sp[i].data = ss->data.len ? xstrndup((const char *)ss->data.data, ss->data.len) : NULL;
    }
    flint_err err = {0};
    int rc = kafka_source_restore(op, sp, n, &err);
    kafka_splits_free(sp, n);
    return rc ? tm_op_fail(op, "%s", err.msg) : FLINT_OK;
}

static int ks_notify_complete(tm_op *op, int64_t checkpoint_id) { return kafka_source_checkpoint_complete(op, checkpoint_id); }

const tm_op_kind tm_op_SOURCE_KAFKA = {.name = "source.kafka",
                                       .open = ks_open,
                                       .produce = ks_produce,
                                       .close = ks_close,
                                       .snapshot_state = ks_snapshot_state,
                                       .initialize_state = ks_initialize_state,
                                       .notify_checkpoint_complete = ks_notify_complete};

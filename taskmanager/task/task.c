/* Task threads and their mailbox loop (see task.h). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_MODULE "task"
#include "checkpoint/cp_task.h"
#include "operators/keys.h"
#include "row/row_key.h"
#include "task/chain.h"
#include "task/mailbox.h"
#include "task/partitioner.h"
#include "task/task.h"
#include "task/tm_timers.h"
#include "task/tm_valve.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

#define INPUT_BATCH 512          /* elements between two mailbox checks */
#define SUSPEND_WAIT_MS 60000    /* longest wait for a stop savepoint's completion at the end */

static const char *const state_names[] = {"DEPLOYING", "INITIALIZING", "RUNNING", "FINISHED",
                                          "CANCELING", "CANCELED", "FAILED"};

const char *tm_task_state_name(tm_task_state s) {
    return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : "UNKNOWN";
}

bool tm_task_state_is_terminal(tm_task_state s) {
    return s == TM_TASK_FINISHED || s == TM_TASK_CANCELED || s == TM_TASK_FAILED;
}

/* A network output of the chain: one job edge, its result partition and record writer. */
typedef struct net_out {
    tm_task *task;
    const Flint__Graph__JobEdge *edge;
    const Flint__Rpc__ResultPartitionDescriptor *pd;
    tm_partition *partition;
    tm_writer *writer;
    tm_partitioner part;
    bool keyed, by_selector;
    tm_keys keys;
    tm_op *producer;             /* the operator feeding it */
    const char *tag;             /* a side output's tag, or "" */
} net_out;

/* An input gate's records: their schema, for checking rows that arrive from the network; which
 * input of the head they feed; the event time of each channel. */
typedef struct gate_info {
    flint_schema *schema;
    int nfields;
    bool input2;                 /* the head's second input (process2) */
    int n_channels;
    int ch_base;                 /* its channels in the task's valve */
} gate_info;

struct tm_task {
    const Flint__Rpc__TaskDeploymentDescriptor *tdd;
    tm_task_config cfg;
    char *artifact;
    char *name;
    pthread_t thread;
    bool started;
    tm_waker *waker;
    tm_mailbox *mailbox;
    atomic_bool cancel_requested;
    atomic_bool ended;
    bool canceled;               /* task thread: the cancel mail ran */
    struct tm_cp *cp;            /* checkpoints (issue 6, checkpoint/cp_task.h) */

    /* task thread only */
    tm_runtime rt;
    tm_chain chain;
    net_out *outs;
    int n_outs;
    tm_input *input;
    gate_info *gates;
    int n_gates;
    int64_t buffer_timeout_ms;
    tm_valve valve;              /* the input's watermark: min over the active channels */

    /* Metrics, read by the executor's thread at any time (tm_task_metrics_get): the counters of
     * the writers and the input (thread-safe in tm_net) while they exist, their last values once
     * the task tore them down, and the idle time, published as NET publishes backpressure: the
     * total so far plus the start of a wait under way, under a sequence counter. */
    pthread_mutex_t m_mu;        /* outs/input lifetime vs. readers; the rate sample */
    _Atomic int64_t idle_ns, idle_start;
    atomic_uint idle_seq;
    bool torn_down;
    tm_task_metrics final;       /* counts at tear-down */
    int64_t final_bp_ns;
    int64_t s_ns, s_idle_ns, s_bp_ns;   /* the previous sample of the rates */
    int64_t r_bp, r_busy, r_idle;       /* the rates computed then */

    /* issue 8 (tm_task_metrics_update, tm_task_metric_dump), under m_mu unless atomic: */
    metric_gauge m_out_wm;       /* the last watermark sent to the network outputs */
    bool m_ops_live;             /* chain.ops may be read (built, not yet closed) */
    struct op_snap *m_ops;       /* operator metrics frozen before the chain closed */
    int m_nops;
    metric_meter m_rin, m_rout, m_bin, m_bout;
    metric_meter *m_op_meters;   /* per operator: records in, records out */
    int m_n_op_meters;
    metric_histogram m_mail_latency;
    _Atomic int64_t m_mail_sent_ns;   /* a latency mail is under way since then (0: none) */
};

/* An operator's metrics once its instance is gone. */
typedef struct op_snap {
    char *name;
    int64_t in, out, in_wm, out_wm;
    int64_t in_errors;           /* numRecordsInErrors, reported when source */
    bool source;
} op_snap;

/* ---- metrics ------------------------------------------------------------------------------
 * Counts are cumulative. Busy/idle/backpressured time are rates in ms per second over the time
 * since the previous read (the executor reads at each heartbeat): idle is time waiting for input
 * (or for a source's rate limit), backpressured is time writers waited for a buffer, busy is the
 * rest, as Flink's busyTimeMsPerSecond, idleTimeMsPerSecond and backPressuredTimeMsPerSecond.
 * Reads do not depend on the task thread, so a task blocked on backpressure still reports. */

#define RATE_MIN_WINDOW_NS 100000000   /* reads closer than this reuse the last rates */

/* Task thread: a wait (for input or a rate limit) starts / ends. */
static void idle_begin(tm_task *t) {
    atomic_fetch_add(&t->idle_seq, 1);
    atomic_store(&t->idle_start, time_mono_ns());
    atomic_fetch_add(&t->idle_seq, 1);
}

static void idle_end(tm_task *t) {
    int64_t t0 = atomic_load(&t->idle_start);
    atomic_fetch_add(&t->idle_seq, 1);
    atomic_store(&t->idle_ns, atomic_load(&t->idle_ns) + (time_mono_ns() - t0));
    atomic_store(&t->idle_start, 0);
    atomic_fetch_add(&t->idle_seq, 1);
}

/* Task thread: time spent waiting inside an operator (the socket source's poll). */
static void idle_add_source(tm_task *t) {
    if (!t->rt.idle_ns) return;
    atomic_fetch_add(&t->idle_seq, 1);
    atomic_store(&t->idle_ns, atomic_load(&t->idle_ns) + t->rt.idle_ns);
    atomic_fetch_add(&t->idle_seq, 1);
    t->rt.idle_ns = 0;
}

static int64_t idle_total(tm_task *t, int64_t now) {
    unsigned s1, s2;
    int64_t ns, start;
    do {
        s1 = atomic_load(&t->idle_seq);
        ns = atomic_load(&t->idle_ns);
        start = atomic_load(&t->idle_start);
        s2 = atomic_load(&t->idle_seq);
    } while (s1 != s2 || (s1 & 1));
    return ns + (start ? now - start : 0);
}

/* Counters of the writers and the input; m_mu held. */
static int64_t read_counts(tm_task *t, tm_task_metrics *m) {
    if (t->torn_down) {
        *m = t->final;
        return t->final_bp_ns;
    }
    memset(m, 0, sizeof *m);
    int64_t bp = 0;
    for (int i = 0; i < t->n_outs; i++) {
        if (!t->outs[i].writer) continue;
        tm_writer_metrics wm;
        tm_writer_metrics_get(t->outs[i].writer, &wm);
        bp += wm.back_pressured_ns;
        m->records_out += wm.records_out;
        m->bytes_out += wm.bytes_out;
    }
    if (t->input) {
        tm_input_metrics im;
        tm_input_metrics_get(t->input, &im);
        m->records_in = im.records_in;
        m->bytes_in = im.bytes_in;
    }
    return bp;
}

static void extra_locked(tm_task *t, tm_task_metrics *m);

void tm_task_metrics_get(tm_task *t, tm_task_metrics *m) {
    pthread_mutex_lock(&t->m_mu);
    int64_t now = time_mono_ns();
    int64_t bp = read_counts(t, m);
    int64_t idle = idle_total(t, now);
    int64_t elapsed = now - t->s_ns;
    if (elapsed >= RATE_MIN_WINDOW_NS) {
        int64_t idle_ms = (idle - t->s_idle_ns) * 1000 / elapsed;
        int64_t bp_ms = (bp - t->s_bp_ns) * 1000 / elapsed;
        idle_ms = idle_ms < 0 ? 0 : idle_ms > 1000 ? 1000 : idle_ms;
        bp_ms = bp_ms < 0 ? 0 : bp_ms > 1000 - idle_ms ? 1000 - idle_ms : bp_ms;
        t->r_idle = idle_ms;
        t->r_bp = bp_ms;
        t->r_busy = 1000 - idle_ms - bp_ms;
        t->s_ns = now;
        t->s_idle_ns = idle;
        t->s_bp_ns = bp;
    }
    m->back_pressured_ms_per_s = t->r_bp;
    m->busy_ms_per_s = t->r_busy;
    m->idle_ms_per_s = t->r_idle;
    extra_locked(t, m);
    m->records_in_per_s = metric_meter_rate(&t->m_rin);
    m->records_out_per_s = metric_meter_rate(&t->m_rout);
    m->bytes_in_per_s = metric_meter_rate(&t->m_bin);
    m->bytes_out_per_s = metric_meter_rate(&t->m_bout);
    pthread_mutex_unlock(&t->m_mu);
}

/* ---- metrics of issue 8 -------------------------------------------------------------------------- */

#define METER_WINDOW_MS 5000          /* numRecordsInPerSecond & co: the rate of the last 5 s */
#define MAIL_LATENCY_WINDOW 60        /* mailboxLatencyMs: the last 60 measurements, as Flink */

/* An operator's metrics now; s->name is the operator's (not a copy). */
static void op_snap_read(const tm_op *op, op_snap *s) {
    s->name = (char *)(op->def && op->def->name ? op->def->name : "operator");
    s->in = metric_counter_get(op->in_from ? &op->in_from->num_records_out : &op->num_records_in);
    s->out = metric_counter_get(&op->num_records_out);
    s->in_errors = metric_counter_get(&op->num_records_in_errors);
    s->in_wm = metric_gauge_get(&op->current_input_watermark);
    s->out_wm = metric_gauge_get(&op->current_output_watermark);
    s->source = op->kind && op->kind->produce;   /* kind is NULL when the operator failed to open */
}

static void freeze_op_metrics(tm_task *t) {
    pthread_mutex_lock(&t->m_mu);
    if (t->m_ops_live && !t->m_ops) {
        t->m_nops = t->chain.n;
        t->m_ops = xcalloc((size_t)t->m_nops + 1, sizeof *t->m_ops);
        for (int i = 0; i < t->chain.n; i++) {
            op_snap_read(t->chain.ops[i], &t->m_ops[i]);
            t->m_ops[i].name = xstrdup(t->m_ops[i].name);
        }
    }
    t->m_ops_live = false;
    pthread_mutex_unlock(&t->m_mu);
}

/* The operators' metrics now (live or frozen); m_mu held. Returns how many were written to *out
 * (caller frees the array, not the names). */
static int op_metrics_locked(tm_task *t, op_snap **out) {
    *out = NULL;
    if (t->m_ops_live) {
        op_snap *a = xcalloc((size_t)t->chain.n + 1, sizeof *a);
        for (int i = 0; i < t->chain.n; i++) op_snap_read(t->chain.ops[i], &a[i]);
        *out = a;
        return t->chain.n;
    }
    if (t->m_ops) {
        op_snap *a = xcalloc((size_t)t->m_nops + 1, sizeof *a);
        memcpy(a, t->m_ops, (size_t)t->m_nops * sizeof *a);
        *out = a;
        return t->m_nops;
    }
    return 0;
}

/* Watermarks and buffer usage; m_mu held. */
static void extra_locked(tm_task *t, tm_task_metrics *m) {
    op_snap *ops;
    int n = op_metrics_locked(t, &ops);
    m->input_watermark = n > 0 ? ops[0].in_wm : INT64_MIN;
    m->output_watermark = metric_gauge_get(&t->m_out_wm);
    if (t->n_outs == 0 && !t->torn_down && n > 0) m->output_watermark = ops[n - 1].out_wm;
    free(ops);
    m->in_pool_usage = m->out_pool_usage = 0;
    if (t->torn_down) return;
    int q = 0, cap = 0;
    for (int i = 0; i < t->n_outs; i++) {
        if (!t->outs[i].partition) continue;
        int qi, ci;
        tm_partition_buffers(t->outs[i].partition, &qi, &ci);
        q += qi;
        cap += ci;
    }
    if (cap > 0) m->out_pool_usage = q > cap ? 1.0 : (double)q / cap;
    if (t->input) {
        tm_input_buffers(t->input, &q, &cap);
        if (cap > 0) m->in_pool_usage = q > cap ? 1.0 : (double)q / cap;
    }
}

static void latency_mail(void *arg) {
    tm_task *t = arg;
    int64_t sent = atomic_exchange(&t->m_mail_sent_ns, 0);
    if (sent > 0) metric_histogram_update(&t->m_mail_latency, (time_mono_ns() - sent) / 1000000);
}

void tm_task_metrics_update(tm_task *t, int64_t now_ns) {
    tm_task_metrics m;
    pthread_mutex_lock(&t->m_mu);
    read_counts(t, &m);
    metric_meter_update(&t->m_rin, m.records_in, now_ns);
    metric_meter_update(&t->m_rout, m.records_out, now_ns);
    metric_meter_update(&t->m_bin, m.bytes_in, now_ns);
    metric_meter_update(&t->m_bout, m.bytes_out, now_ns);
    op_snap *ops;
    int n = op_metrics_locked(t, &ops);
    if (n > 0 && !t->m_op_meters) {
        t->m_op_meters = xcalloc((size_t)n * 2, sizeof *t->m_op_meters);
        t->m_n_op_meters = n;
        for (int i = 0; i < 2 * n; i++) metric_meter_init(&t->m_op_meters[i], METER_WINDOW_MS);
    }
    for (int i = 0; i < n && i < t->m_n_op_meters; i++) {
        metric_meter_update(&t->m_op_meters[2 * i], ops[i].in, now_ns);
        metric_meter_update(&t->m_op_meters[2 * i + 1], ops[i].out, now_ns);
    }
    free(ops);
    pthread_mutex_unlock(&t->m_mu);
    int64_t expected = 0;
    if (!atomic_load(&t->ended) && atomic_compare_exchange_strong(&t->m_mail_sent_ns, &expected, now_ns))
        tm_mailbox_put(t->mailbox, latency_mail, t);
}

void tm_task_metric_dump(tm_task *t, metric_set *out) {
    tm_task_metrics m;
    tm_task_metrics_get(t, &m);
    metric_set_add(out, NULL, "numRecordsIn", METRIC_KIND_COUNTER, (double)m.records_in);
    metric_set_add(out, NULL, "numRecordsOut", METRIC_KIND_COUNTER, (double)m.records_out);
    metric_set_add(out, NULL, "numBytesIn", METRIC_KIND_COUNTER, (double)m.bytes_in);
    metric_set_add(out, NULL, "numBytesOut", METRIC_KIND_COUNTER, (double)m.bytes_out);
    metric_set_add(out, NULL, "numRecordsInPerSecond", METRIC_KIND_METER, m.records_in_per_s);
    metric_set_add(out, NULL, "numRecordsOutPerSecond", METRIC_KIND_METER, m.records_out_per_s);
    metric_set_add(out, NULL, "numBytesInPerSecond", METRIC_KIND_METER, m.bytes_in_per_s);
    metric_set_add(out, NULL, "numBytesOutPerSecond", METRIC_KIND_METER, m.bytes_out_per_s);
    metric_set_add(out, NULL, "backPressuredTimeMsPerSecond", METRIC_KIND_GAUGE, (double)m.back_pressured_ms_per_s);
    metric_set_add(out, NULL, "busyTimeMsPerSecond", METRIC_KIND_GAUGE, (double)m.busy_ms_per_s);
    metric_set_add(out, NULL, "idleTimeMsPerSecond", METRIC_KIND_GAUGE, (double)m.idle_ms_per_s);
    metric_set_add(out, NULL, "currentInputWatermark", METRIC_KIND_GAUGE, (double)m.input_watermark);
    metric_set_add(out, NULL, "currentOutputWatermark", METRIC_KIND_GAUGE, (double)m.output_watermark);
    metric_set_add(out, NULL, "inPoolUsage", METRIC_KIND_GAUGE, m.in_pool_usage);
    metric_set_add(out, NULL, "outPoolUsage", METRIC_KIND_GAUGE, m.out_pool_usage);
    metric_hist_stats st;
    metric_histogram_stats(&t->m_mail_latency, &st);
    metric_set_add_hist(out, NULL, "mailboxLatencyMs", &st);
    pthread_mutex_lock(&t->m_mu);
    op_snap *ops;
    int n = op_metrics_locked(t, &ops);
    for (int i = 0; i < n; i++) {
        metric_set_add(out, ops[i].name, "numRecordsIn", METRIC_KIND_COUNTER, (double)ops[i].in);
        metric_set_add(out, ops[i].name, "numRecordsOut", METRIC_KIND_COUNTER, (double)ops[i].out);
        if (ops[i].source)
            metric_set_add(out, ops[i].name, "numRecordsInErrors", METRIC_KIND_COUNTER, (double)ops[i].in_errors);
        metric_set_add(out, ops[i].name, "currentInputWatermark", METRIC_KIND_GAUGE, (double)ops[i].in_wm);
        metric_set_add(out, ops[i].name, "currentOutputWatermark", METRIC_KIND_GAUGE, (double)ops[i].out_wm);
        if (i < t->m_n_op_meters) {
            metric_set_add(out, ops[i].name, "numRecordsInPerSecond", METRIC_KIND_METER,
                           metric_meter_rate(&t->m_op_meters[2 * i]));
            metric_set_add(out, ops[i].name, "numRecordsOutPerSecond", METRIC_KIND_METER,
                           metric_meter_rate(&t->m_op_meters[2 * i + 1]));
        }
    }
    free(ops);
    pthread_mutex_unlock(&t->m_mu);
}

/* ---- failures ------------------------------------------------------------------------------- */

static int task_fail(tm_task *t, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int task_fail(tm_task *t, int code, const char *fmt, ...) {
    if (!t->rt.failed) {
        t->rt.failed = true;
        t->rt.err.code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->rt.err.msg, sizeof t->rt.err.msg, fmt, ap);
        va_end(ap);
    }
    return code ? code : FLINT_ERR;
}

/* ---- network outputs --------------------------------------------------------------------------- */

static int net_out_write(void *ud, const flint_row *row) {
    net_out *o = ud;
    int sub;
    if (o->keyed) {
        uint64_t h;
        if (o->by_selector) {
            const uint8_t *key;
            size_t len;
            flint_err err = {0};
            if (tm_keys_get(&o->keys, row, &key, &len, &err)) {
                o->producer->ctx.failed = false;
                return tm_op_fail(o->producer, "key selector '%s': %s", o->edge->key_selector, err.msg);
            }
            h = row_key_hash(key, len);
        } else {
            h = row_key_hash_row(row, o->keys.fields, o->keys.nfields);
        }
        sub = tm_partitioner_hash(&o->part, h);
    } else {
        sub = tm_partitioner_next(&o->part);
    }
    if (row->len >= (1u << 30))
        return tm_op_fail(o->producer, "a row of %u bytes is too large for the network (limit 1 GiB)", row->len);
    int64_t ts = o->task->rt.timestamp;
    int rc;
    if (__builtin_expect(ts == FLINT_NO_TIMESTAMP, 1))
        rc = sub == TM_PARTITION_ALL ? tm_writer_broadcast(o->writer, TM_ELEM_RECORD, row->data, row->len)
                                     : tm_writer_emit(o->writer, sub, TM_ELEM_RECORD, row->data, row->len);
    else
        rc = sub == TM_PARTITION_ALL ? tm_writer_broadcast_ts(o->writer, ts, row->data, row->len)
                                     : tm_writer_emit_ts(o->writer, sub, ts, row->data, row->len);
    if (rc && rc != FLINT_CANCELED)
        return task_fail(o->task, rc, "writing to result partition %s: %s", o->pd->partition_id, flint_strerror(rc));
    return rc;
}

/* Watermarks and idle statuses go to every subpartition of every network output. */
static int net_out_watermark(void *ud, int64_t wm) {
    net_out *o = ud;
    metric_gauge_set(&o->task->m_out_wm, wm);
    int rc = tm_writer_watermark(o->writer, wm);
    if (rc && rc != FLINT_CANCELED)
        return task_fail(o->task, rc, "writing to result partition %s: %s", o->pd->partition_id, flint_strerror(rc));
    return rc;
}

static int net_out_idle(void *ud, bool idle) {
    net_out *o = ud;
    int rc = tm_writer_status(o->writer, idle);
    if (rc && rc != FLINT_CANCELED)
        return task_fail(o->task, rc, "writing to result partition %s: %s", o->pd->partition_id, flint_strerror(rc));
    return rc;
}

static const Flint__Graph__JobEdge *find_edge(Flint__Graph__JobEdge *const *edges, size_t n, int id) {
    for (size_t i = 0; i < n; i++)
        if (edges[i]->id == id) return edges[i];
    return NULL;
}

/* Make the result partitions and writers of the task's out edges and attach them to the
 * operators that feed them. */
static int setup_outputs(tm_task *t) {
    const Flint__Rpc__TaskDeploymentDescriptor *d = t->tdd;
    const Flint__Graph__JobVertex *v = d->vertex;
    t->outs = xcalloc(d->n_partitions + 1, sizeof *t->outs);
    for (size_t i = 0; i < d->n_partitions; i++) {
        const Flint__Rpc__ResultPartitionDescriptor *pd = d->partitions[i];
        net_out *o = &t->outs[t->n_outs++];
        o->task = t;
        o->pd = pd;
        o->edge = find_edge(d->out_edges, d->n_out_edges, pd->edge_id);
        if (!o->edge)
            return task_fail(t, FLINT_INVALID, "result partition %s names edge %d, which is not an output of the task",
                             pd->partition_id, pd->edge_id);
        if (pd->num_subpartitions < 1)
            return task_fail(t, FLINT_INVALID, "result partition %s has no subpartitions", pd->partition_id);
        /* The operator whose output_edges lists the edge (and the side output it carries). */
        o->tag = "";
        for (size_t k = 0; k < v->n_operators && !o->producer; k++)
            for (size_t j = 0; j < v->operators[k]->n_output_edges; j++)
                if (v->operators[k]->output_edges[j] == o->edge->id) {
                    o->producer = t->chain.ops[k];
                    if (j < v->operators[k]->n_output_edge_tags) o->tag = v->operators[k]->output_edge_tags[j];
                    break;
                }
        if (!o->producer)
            return task_fail(t, FLINT_INVALID, "no operator of '%s' feeds edge %d", v->name, o->edge->id);
        flint_err err = {0};
        o->partition = tm_partition_create(t->cfg.net, pd->partition_id, (int)pd->num_subpartitions, &err);
        if (!o->partition)
            return task_fail(t, err.code ? err.code : FLINT_ERR, "cannot create result partition %s: %s",
                             pd->partition_id, err.msg);
        o->writer = tm_writer_new(o->partition, t->buffer_timeout_ms, t->waker);
        tm_partitioner_init(&o->part, o->edge->partitioner, (int)pd->num_subpartitions, t->rt.subtask,
                            t->rt.parallelism, t->rt.max_parallelism);
        if (o->edge->partitioner == FLINT__GRAPH__PARTITIONER__HASH) {
            o->keyed = true;
            const flint_schema *schema = o->producer->out_schema;
            int side = o->tag[0] ? tm_op_side_output(o->producer, o->tag) : -1;
            if (side >= 0 && o->producer->sides[side].schema) schema = o->producer->sides[side].schema;
            if (o->edge->key_selector && o->edge->key_selector[0]) {
                o->by_selector = true;
                void (*fn)(void);
                if (tm_runtime_symbol(&t->rt, o->edge->key_selector, &fn, &err) ||
                    tm_keys_init_selector(&o->keys, (flint_key_fn)fn, &o->producer->ctx, o->edge->key_schema, &err))
                    return task_fail(t, FLINT_INVALID, "edge %d: %s", o->edge->id, err.msg);
            } else {
                if (!schema) return task_fail(t, FLINT_INVALID, "edge %d: the producer has no output schema", o->edge->id);
                if (tm_keys_init_array(&o->keys, o->edge->key_fields, (int)o->edge->n_key_fields, schema, &err))
                    return task_fail(t, FLINT_INVALID, "edge %d: %s", o->edge->id, err.msg);
            }
        }
        tm_output out = {.fn = net_out_write, .ud = o, .wm_fn = net_out_watermark, .idle_fn = net_out_idle};
        tm_chain_add_output_tagged(&t->chain, o->producer->index, &out, o->tag);
    }
    /* Every out edge of an operator needs its partition. */
    for (size_t k = 0; k < v->n_operators; k++)
        for (size_t j = 0; j < v->operators[k]->n_output_edges; j++) {
            int id = v->operators[k]->output_edges[j];
            bool found = false;
            for (int i = 0; i < t->n_outs; i++) found |= t->outs[i].edge->id == id;
            if (!found)
                return task_fail(t, FLINT_INVALID, "operator '%s' feeds edge %d, but the task has no partition for it",
                                 v->operators[k]->name, id);
        }
    return FLINT_OK;
}

/* ---- input ------------------------------------------------------------------------------------ */

static int setup_input(tm_task *t) {
    const Flint__Rpc__TaskDeploymentDescriptor *d = t->tdd;
    if (d->n_gates == 0) return FLINT_OK;
    tm_op *head = t->chain.ops[0];
    if (!head->kind->process)
        return task_fail(t, FLINT_INVALID, "operator '%s' (%s) takes no input, but the task has %zu input gates",
                         head->def->name, head->kind->name, d->n_gates);
    t->input = tm_input_new(t->cfg.net, t->waker);
    t->gates = xcalloc(d->n_gates, sizeof *t->gates);
    t->n_gates = (int)d->n_gates;
    int nch = 0;
    for (size_t g = 0; g < d->n_gates; g++) {
        const Flint__Rpc__InputGateDescriptor *gd = d->gates[g];
        const Flint__Graph__JobEdge *e = find_edge(d->in_edges, d->n_in_edges, gd->edge_id);
        const char *schema = e && e->schema && e->schema[0] ? e->schema : head->def->input_schema;
        flint_err err = {0};
        if (!schema || !schema[0] || flint_schema_parse(schema, &t->gates[g].schema, &err))
            return task_fail(t, FLINT_INVALID, "input gate %zu (edge %d): bad schema '%s': %s", g, gd->edge_id,
                             schema ? schema : "", err.msg);
        t->gates[g].nfields = flint_schema_field_count(t->gates[g].schema);
        t->gates[g].input2 = (e ? e->input_index : gd->input_index) == 1;
        if (t->gates[g].input2 && !head->kind->process2)
            return task_fail(t, FLINT_INVALID, "operator '%s' (%s) has one input, but gate %zu feeds a second",
                             head->def->name, head->kind->name, g);
        t->gates[g].n_channels = (int)gd->n_channels;
        t->gates[g].ch_base = nch;
        nch += (int)gd->n_channels;
        tm_channel_desc *ch = xcalloc(gd->n_channels + 1, sizeof *ch);
        for (size_t c = 0; c < gd->n_channels; c++) {
            const Flint__Rpc__InputChannelDescriptor *cd = gd->channels[c];
            ch[c] = (tm_channel_desc){cd->partition_id, (int)cd->subpartition, cd->producer_resource_id, cd->host,
                                      (int)cd->data_port};
        }
        tm_input_add_gate(t->input, (int)gd->n_channels, ch);
        free(ch);
    }
    tm_valve_init(&t->valve, nch);
    flint_err err = {0};
    int rc = tm_input_start(t->input, &err);
    if (rc) return task_fail(t, rc, "cannot start the input: %s", err.msg);
    return FLINT_OK;
}

/* ---- the mailbox loop ---------------------------------------------------------------------------- */

static void cancel_mail(void *arg) {
    tm_task *t = arg;
    t->canceled = true;
}

/* Run the mailbox; FLINT_CANCELED once the task was canceled. */
static int run_mailbox(tm_task *t) {
    tm_mailbox_run(t->mailbox);
    if (t->canceled) return FLINT_CANCELED;
    return tm_cp_run_requests(t->cp);   /* checkpoint triggers and notifications */
}

/* Flush the writers whose buffer timeout is due; returns the next deadline. */
static int64_t flush_due(tm_task *t, int64_t now, int *rc) {
    int64_t next = INT64_MAX;
    *rc = FLINT_OK;
    for (int i = 0; i < t->n_outs; i++) {
        int64_t dl = tm_writer_flush_deadline(t->outs[i].writer);
        if (dl <= now) {
            int r = tm_writer_flush(t->outs[i].writer);
            if (r && !*rc) *rc = r;
            dl = tm_writer_flush_deadline(t->outs[i].writer);
        }
        if (dl < next) next = dl;
    }
    return next;
}

/* Sleep on the waker until deadline (or a signal), counting the time as idle. */
static void idle_wait(tm_task *t, int64_t deadline) {
    idle_begin(t);
    tm_waker_wait(t->waker, deadline);
    idle_end(t);
}

/* ---- event time: watermarks over channels, ticks and processing-time timers ----------------------- */

/* Give the head what the valve says (a two-input head gets the min over both inputs). */
static int valve_out(tm_task *t, int what) {
    tm_op *head = t->chain.ops[0];
    int rc;
    if ((what & TM_VALVE_IDLE) && (rc = tm_op_emit_idle(head, true))) return rc;
    if ((what & TM_VALVE_ACTIVE) && (rc = tm_op_emit_idle(head, false))) return rc;
    if (what & TM_VALVE_WATERMARK) return tm_op_watermark(head, t->valve.out_wm);
    return FLINT_OK;
}

/* A watermark or status element of a channel. */
static int channel_time(tm_task *t, const tm_element *el) {
    if (el->gate < 0 || el->gate >= t->n_gates)
        return task_fail(t, FLINT_PROTOCOL, "a watermark arrived on unknown input gate %d", el->gate);
    gate_info *g = &t->gates[el->gate];
    if (el->channel < 0 || el->channel >= g->n_channels)
        return task_fail(t, FLINT_PROTOCOL, "a watermark arrived on unknown channel %d of gate %d", el->channel, el->gate);
    int ch = g->ch_base + el->channel;
    return valve_out(t, el->kind == TM_ELEM_WATERMARK ? tm_valve_watermark(&t->valve, ch, el->timestamp)
                                                      : tm_valve_status(&t->valve, ch, el->data[0] != 0));
}

/* The end of all input: the head's watermark goes to the end of time (sources end their output
 * with it, as Flink's; this covers inputs whose producers were idle at the end). */
static int input_time_end(tm_task *t) {
    tm_op *head = t->chain.ops[0];
    int rc;
    if (t->valve.out_idle) {
        t->valve.out_idle = false;
        if ((rc = tm_op_emit_idle(head, false))) return rc;
    }
    if (t->valve.out_wm == FLINT_MAX_WATERMARK) return FLINT_OK;
    t->valve.out_wm = FLINT_MAX_WATERMARK;
    return tm_op_watermark(head, FLINT_MAX_WATERMARK);
}

/* Run the operators' due ticks and processing-time timers; *next: when the next is due
 * (monotonic ms, INT64_MAX when none). */
static int run_time(tm_task *t, int64_t now, int64_t *next) {
    *next = INT64_MAX;
    if (tm_cp_final_checkpoint(t->cp)) return FLINT_OK;   /* none after the end of data (Flink's quiesce) */
    int rc;
    if (t->rt.n_ticks && (rc = tm_runtime_run_ticks(&t->rt, now, next))) return rc;
    int64_t pt = tm_timers_next_processing_time(t->rt.timers);
    if (pt == INT64_MAX) return FLINT_OK;
    int64_t epoch = tm_timers_now_ms();
    if (pt <= epoch) {
        t->rt.timestamp = FLINT_NO_TIMESTAMP;
        if ((rc = tm_timers_fire_processing_time(t->rt.timers, epoch))) return rc;
        pt = tm_timers_next_processing_time(t->rt.timers);
        if (pt == INT64_MAX) return FLINT_OK;
    }
    int64_t wait = pt - epoch;
    if (wait > 3600000) wait = 3600000;   /* far away (and no overflow): look again in an hour */
    if (wait < 0) wait = 0;
    if (now + wait < *next) *next = now + wait;
    return FLINT_OK;
}

static int drain_input(tm_task *t);

static int process_element(tm_task *t, const tm_element *el) {
    if (__builtin_expect(el->kind != TM_ELEM_RECORD, 0)) {
        if (el->kind == TM_ELEM_WATERMARK || el->kind == TM_ELEM_STATUS) return channel_time(t, el);
        if (el->kind == TM_ELEM_EVENT) {   /* checkpoint barriers, end of data */
            int rc = tm_cp_on_event(t->cp, el);
            return rc || !tm_cp_input_drained(t->cp) ? rc : drain_input(t);
        }
        if (el->kind == TM_ELEM_CHANNEL_END) return tm_cp_channel_ended(t->cp, el->gate, el->channel);
        if (el->kind == TM_ELEM_GATE_END) return tm_cp_gate_ended(t->cp, el->gate);
        return FLINT_OK;
    }
    if (el->gate < 0 || el->gate >= t->n_gates)
        return task_fail(t, FLINT_PROTOCOL, "a record arrived on unknown input gate %d", el->gate);
    gate_info *g = &t->gates[el->gate];
    flint_err err;   /* filled on failure only: not cleared per record */
    if (flint_row_check(g->schema, el->data, el->len, &err)) {
        const Flint__Rpc__InputGateDescriptor *gd = t->tdd->gates[el->gate];
        const char *pid = el->channel >= 0 && (size_t)el->channel < gd->n_channels
                              ? gd->channels[el->channel]->partition_id : "?";
        return task_fail(t, FLINT_PROTOCOL, "malformed record on input gate %d, channel %d (partition %s): %s",
                         el->gate, el->channel, pid, err.msg);
    }
    flint_row row = flint_row_view(g->schema, el->data, el->len, g->nfields);
    t->rt.timestamp = el->timestamp;
    if (__builtin_expect(g->input2, 0)) return tm_op_process2(t->chain.ops[0], &row);
    return tm_op_process(t->chain.ops[0], &row);
}

/* Send event type to every output (after flushing). */
static int send_event(tm_task *t, tm_event_type type) {
    for (int i = 0; i < t->n_outs; i++) {
        int rc = tm_writer_event(t->outs[i].writer, type, NULL, 0);
        if (rc) return rc == FLINT_CANCELED ? rc : task_fail(t, rc, "ending result partition %s: %s",
                                                              t->outs[i].pd->partition_id, flint_strerror(rc));
    }
    return FLINT_OK;
}

/* End of data: end the chain (not after a stop-with-savepoint's suspend savepoint: nothing may be
 * emitted after it) and, when a final checkpoint follows (tm_cp_end_data), say so downstream. */
static int end_data(tm_task *t) {
    bool final = tm_cp_end_data(t->cp);
    int rc = tm_cp_suspended(t->cp) ? FLINT_OK : tm_chain_end_input(&t->chain);
    return rc || !final ? rc : send_event(t, TM_EVENT_END_OF_DATA);
}

/* Every input channel delivered its end of data (a final checkpoint follows): end event time
 * and the data now; barriers still come. */
static int drain_input(tm_task *t) {
    int rc = input_time_end(t);
    return rc ? rc : end_data(t);
}

/* End of input: end the data (unless done), wait for the final checkpoint if one follows
 * (triggers and notifications go on), end every partition. */
static int finish_input(tm_task *t) {
    int rc = tm_cp_final_checkpoint(t->cp) ? FLINT_OK : end_data(t);
    while (!rc && !tm_cp_final_done(t->cp)) {
        rc = run_mailbox(t);
        if (!rc && !tm_cp_final_done(t->cp)) idle_wait(t, time_mono_ms() + 100);
    }
    return rc ? rc : send_event(t, TM_EVENT_END_OF_PARTITION);
}

static int run_input_loop(tm_task *t) {
    for (;;) {
        int rc = run_mailbox(t);
        if (rc) return rc;
        tm_element el;
        int n = 0;
        while (n < INPUT_BATCH && (rc = tm_input_next(t->input, &el)) == FLINT_OK) {
            n++;
            int prc = process_element(t, &el);
            if (prc) return prc;
        }
        if (rc == FLINT_CLOSED) {
            tm_cp_input_ended(t->cp);
            /* stop-with-savepoint: its completion may come after the end of the input */
            for (int64_t until = time_mono_ms() + SUSPEND_WAIT_MS; tm_cp_suspend_pending(t->cp);) {
                int mrc = run_mailbox(t);
                if (mrc) return mrc;
                if (time_mono_ms() >= until) break;
                idle_wait(t, time_mono_ms() + 50);
            }
            int erc = tm_cp_suspended(t->cp) ? FLINT_OK : input_time_end(t);
            return erc ? erc : finish_input(t);
        }
        if (rc != FLINT_OK && rc != FLINT_UNAVAILABLE) {
            const char *why = tm_input_error(t->input);
            return task_fail(t, rc, "input failed: %s", why && why[0] ? why : flint_strerror(rc));
        }
        int64_t now = time_mono_ms();
        int64_t tnext;
        int trc = run_time(t, now, &tnext);
        if (trc) return trc;
        int frc;
        int64_t deadline = flush_due(t, now, &frc);
        if (frc && frc != FLINT_CANCELED) return task_fail(t, frc, "flushing: %s", flint_strerror(frc));
        if (tnext < deadline) deadline = tnext;
        if (rc == FLINT_UNAVAILABLE) idle_wait(t, deadline);
    }
}

static int run_source_loop(tm_task *t) {
    tm_op *head = t->chain.ops[0];
    for (;;) {
        int rc = run_mailbox(t);
        if (rc) return rc;
        bool drain;
        if (tm_cp_source_stop(t->cp, &drain)) {   /* stop-with-savepoint completed */
            if (!drain) return finish_input(t);
            rc = tm_op_watermark(head, FLINT_MAX_WATERMARK);
            return rc ? rc : finish_input(t);
        }
        int64_t now = time_mono_ms();
        int64_t tnext;
        rc = run_time(t, now, &tnext);
        if (rc) return rc;
        int frc;
        int64_t deadline = flush_due(t, now, &frc);
        if (frc && frc != FLINT_CANCELED) return task_fail(t, frc, "flushing: %s", flint_strerror(frc));
        if (tnext < deadline) deadline = tnext;
        if (now + 100 < deadline) deadline = now + 100; /* check the mailbox at least this often */
        if (tm_cp_source_paused(t->cp)) {   /* a stop savepoint is under way: emit nothing */
            idle_wait(t, deadline);
            continue;
        }
        tm_source_status st = TM_SOURCE_MORE;
        int64_t wake = 0;
        t->rt.timestamp = FLINT_NO_TIMESTAMP;
        rc = head->kind->produce(head, deadline, &st, &wake);
        idle_add_source(t);
        if (rc) return rc;
        if (st == TM_SOURCE_END) {
            /* Sources end event time with their output (Flink's MAX_WATERMARK). */
            rc = tm_op_watermark(head, FLINT_MAX_WATERMARK);
            return rc ? rc : finish_input(t);
        }
        if (st == TM_SOURCE_WAIT) {
            now = time_mono_ms();
            rc = run_time(t, now, &tnext);
            if (rc) return rc;
            deadline = flush_due(t, now, &frc);
            if (frc && frc != FLINT_CANCELED) return task_fail(t, frc, "flushing: %s", flint_strerror(frc));
            if (tnext < deadline) deadline = tnext;
            if (wake < deadline) deadline = wake;
            if (deadline > now) idle_wait(t, deadline);
        }
    }
}

/* ---- set up, run, tear down ------------------------------------------------------------------------ */

static void report(tm_task *t, tm_task_state s, const char *error) {
    if (t->cfg.on_state) t->cfg.on_state(t, s, error, t->cfg.ud);
}

static int setup(tm_task *t) {
    const Flint__Rpc__TaskDeploymentDescriptor *d = t->tdd;
    flint_err err = {0};
    if (tm_chain_build(&t->chain, d->vertex, &t->rt, &err)) return task_fail(t, err.code ? err.code : FLINT_INVALID, "%s", err.msg);
    tm_op *head = t->chain.ops[0];
    if (!head->kind->produce && d->n_gates == 0)
        return task_fail(t, FLINT_INVALID, "operator '%s' (%s) needs an input, but the task has no input gates",
                         head->def->name, head->kind->name);
    /* The metrics reader walks the writers and the input: they appear under its lock. */
    pthread_mutex_lock(&t->m_mu);
    t->m_ops_live = true;
    int rc = setup_outputs(t);
    if (!rc) rc = setup_input(t);
    pthread_mutex_unlock(&t->m_mu);
    if (rc) return rc;
    /* Checkpoints: state is restored while the operators open (tm_state_op_open) and by the
     * kinds once the chain is open, before the task runs. */
    tm_writer **ws = xcalloc((size_t)t->n_outs + 1, sizeof *ws);
    int nch = 0;
    for (int i = 0; i < t->n_outs; i++) ws[i] = t->outs[i].writer;
    for (int g = 0; g < t->n_gates; g++) nch += t->gates[g].n_channels;
    tm_cp_attach(t->cp, &t->chain, ws, t->n_outs, t->input, nch);
    free(ws);
    rc = tm_chain_open(&t->chain);
    return rc ? rc : tm_cp_restore_finish(t->cp);
}

static void teardown(tm_task *t, bool finished) {
    pthread_mutex_lock(&t->m_mu);
    t->final_bp_ns = read_counts(t, &t->final);
    t->torn_down = true;
    pthread_mutex_unlock(&t->m_mu);
    for (int i = 0; i < t->n_outs; i++) {
        net_out *o = &t->outs[i];
        if (o->writer) tm_writer_free(o->writer);
        if (o->partition) tm_partition_release(o->partition, !finished);
        if (o->keyed) tm_keys_free(&o->keys);
    }
    free(t->outs);
    t->outs = NULL;
    t->n_outs = 0;
    if (t->input) tm_input_free(t->input);
    t->input = NULL;
    for (int g = 0; g < t->n_gates; g++) {
        flint_schema_free(t->gates[g].schema);
    }
    free(t->gates);
    t->gates = NULL;
    t->n_gates = 0;
}

static void *task_main(void *arg) {
    tm_task *t = arg;
    report(t, TM_TASK_INITIALIZING, NULL);
    int rc = setup(t);
    if (!rc && !atomic_load(&t->cancel_requested)) {
        report(t, TM_TASK_RUNNING, NULL);
        rc = t->chain.ops[0]->kind->produce ? run_source_loop(t) : run_input_loop(t);
    }
    bool canceled = atomic_load(&t->cancel_requested);
    bool ok = rc == FLINT_OK && !t->rt.failed && !canceled;
    tm_cp_stop(t->cp, ok);   /* before the state backends close */
    /* Operators close after their partitions ended (sinks flush their files here): a failure in
     * close still fails the task. Their metrics outlive them. */
    freeze_op_metrics(t);
    tm_chain_close(&t->chain);
    ok = ok && !t->rt.failed;
    teardown(t, ok);
    tm_task_state final;
    const char *error = NULL;
    if (canceled) {
        final = TM_TASK_CANCELED;
    } else if (ok) {
        final = TM_TASK_FINISHED;
    } else {
        final = TM_TASK_FAILED;
        if (!t->rt.failed) task_fail(t, rc, "%s", flint_strerror(rc));
        error = t->rt.err.msg;
    }
    if (final == TM_TASK_FAILED) log_warn("%s failed: %s", t->name, error);
    else log_info("%s switched to %s", t->name, tm_task_state_name(final));
    atomic_store(&t->ended, true);
    report(t, final, error);
    return NULL;
}

/* ---- the executor's side ------------------------------------------------------------------------------ */

/* pipeline.auto-watermark-interval: the job's (-D, flint_env_set_config), else the
 * taskmanager's, else the default. */
static int64_t auto_watermark_interval(const struct flint_config *tm_cfg, const Flint__Rpc__TaskDeploymentDescriptor *tdd) {
    const char *key = config_info(CFG_PIPELINE_AUTO_WATERMARK_INTERVAL)->name;
    for (size_t i = 0; i < tdd->n_config; i++) {
        if (!tdd->config[i]->key || strcmp(tdd->config[i]->key, key) != 0) continue;
        flint_config *c = config_new();
        flint_err err = {0};
        int64_t v = -1;
        if (config_set(c, key, tdd->config[i]->value, "job", &err) == FLINT_OK)
            v = config_int(c, CFG_PIPELINE_AUTO_WATERMARK_INTERVAL);
        else
            log_warn("%s: %s; using the default", key, err.msg);
        config_free(c);
        if (v > 0) return v;
    }
    if (tm_cfg) return config_int(tm_cfg, CFG_PIPELINE_AUTO_WATERMARK_INTERVAL);
    return 200;
}

static void signal_waker(void *ud) { tm_waker_signal(ud); }

tm_task *tm_task_new(const Flint__Rpc__TaskDeploymentDescriptor *tdd, const tm_task_config *cfg) {
    assert(tdd && tdd->vertex && cfg);
    tm_task *t = XNEW(tm_task);
    t->tdd = tdd;
    t->cfg = *cfg;
    t->artifact = xstrdup(cfg->artifact ? cfg->artifact : "");
    t->cfg.artifact = t->artifact;
    const Flint__Graph__JobVertex *v = tdd->vertex;
    int p = v->parallelism > 0 ? v->parallelism : 1;
    t->name = xasprintf("%s (%d/%d)", v->name && v->name[0] ? v->name : "task", tdd->subtask_index + 1, p);
    t->waker = tm_waker_new();
    t->mailbox = tm_mailbox_new(signal_waker, t->waker);
    tm_cp_env cpe = {.tdd = tdd, .rt = &t->rt, .mailbox = t->mailbox, .send = cfg->send_to_jm, .send_ud = cfg->ud,
                     .task_name = t->name};
    t->cp = tm_cp_new(&cpe);
    t->rt.cp = t->cp;
    atomic_init(&t->cancel_requested, false);
    atomic_init(&t->ended, false);
    pthread_mutex_init(&t->m_mu, NULL);
    atomic_init(&t->idle_ns, 0);
    atomic_init(&t->idle_start, 0);
    atomic_init(&t->idle_seq, 0);
    t->s_ns = time_mono_ns();
    metric_gauge_init(&t->m_out_wm, INT64_MIN);
    metric_meter_init(&t->m_rin, METER_WINDOW_MS);
    metric_meter_init(&t->m_rout, METER_WINDOW_MS);
    metric_meter_init(&t->m_bin, METER_WINDOW_MS);
    metric_meter_init(&t->m_bout, METER_WINDOW_MS);
    metric_histogram_init(&t->m_mail_latency, MAIL_LATENCY_WINDOW);
    atomic_init(&t->m_mail_sent_ns, 0);
    t->buffer_timeout_ms = tdd->buffer_timeout_ms;
    t->rt.subtask = tdd->subtask_index;
    t->rt.parallelism = p;
    t->rt.max_parallelism = tdd->max_parallelism > 0 ? tdd->max_parallelism
                            : v->max_parallelism > 0 ? v->max_parallelism
                                                     : 128;
    t->rt.task_name = t->name;
    t->rt.job_params = tdd->params;
    t->rt.n_job_params = tdd->n_params;
    t->rt.tm_config = cfg->config;
    t->rt.job_config = tdd->config;
    t->rt.n_job_config = tdd->n_config;
    t->rt.execution_id = tdd->execution_id;
    t->rt.dl = cfg->dl;
    t->rt.artifact = t->artifact;
    /* Event time: timers by key group; no record timestamp yet; the watermark interval. */
    t->rt.timers = tm_timers_new(t->rt.max_parallelism);
    t->rt.timestamp = FLINT_NO_TIMESTAMP;
    t->rt.auto_watermark_interval_ms = auto_watermark_interval(cfg->config, tdd);
    return t;
}

int tm_task_start(tm_task *t, flint_err *err) {
    int rc = pthread_create(&t->thread, NULL, task_main, t);
    if (rc) return flint_err_set(err, FLINT_ERR, "cannot start a thread for %s: %s", t->name, strerror(rc));
    t->started = true;
    char tname[16];
    snprintf(tname, sizeof tname, "task-%d", t->tdd->subtask_index);
    pthread_setname_np(t->thread, tname);
    return FLINT_OK;
}

void tm_task_cancel(tm_task *t) {
    if (atomic_exchange(&t->cancel_requested, true)) return;
    tm_waker_cancel(t->waker);
    tm_mailbox_put(t->mailbox, cancel_mail, t);
}

void tm_task_join(tm_task *t) {
    if (!t->started) return;
    pthread_join(t->thread, NULL);
    t->started = false;
}

bool tm_task_join_timeout(tm_task *t, int64_t timeout_ms) {
    if (!t->started) return true;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    if (pthread_timedjoin_np(t->thread, NULL, &ts) != 0) return false;
    t->started = false;
    return true;
}

void tm_task_free(tm_task *t) {
    if (!t) return;
    assert(!t->started);
    tm_cp_free(t->cp);
    tm_mailbox_free(t->mailbox);
    tm_waker_free(t->waker);
    pthread_mutex_destroy(&t->m_mu);
    for (int i = 0; i < t->m_nops; i++) free(t->m_ops[i].name);
    free(t->m_ops);
    free(t->m_op_meters);
    metric_histogram_destroy(&t->m_mail_latency);
    tm_timers_free(t->rt.timers);
    tm_valve_free(&t->valve);
    free(t->rt.ticks);
    free(t->artifact);
    free(t->name);
    free(t);
}

const char *tm_task_name(const tm_task *t) { return t->name; }
bool tm_task_ended(tm_task *t) { return atomic_load(&t->ended); }

/* ---- checkpoints (issue 6) ---------------------------------------------------------------------------- */

void tm_task_checkpoint_message(tm_task *t, const Flint__Rpc__Envelope *env) {
    switch (env->body_case) {
    case FLINT__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT: tm_cp_post_trigger(t->cp, env->trigger_checkpoint); break;
    case FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE:
        tm_cp_post_complete(t->cp, env->notify_checkpoint_complete->checkpoint_id);
        break;
    case FLINT__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_ABORTED:
        tm_cp_post_aborted(t->cp, env->notify_checkpoint_aborted->checkpoint_id);
        break;
    default: break;
    }
}

const Flint__Checkpoint__StateRestoreFailure *tm_task_restore_failure(const tm_task *t) {
    return t ? tm_cp_restore_failure(t->cp) : NULL;
}

/* The checkpoint side of a task (cp_task.h): requests from the executor, barrier alignment,
 * synchronous snapshots in the task thread, the asynchronous part on the task's checkpoint thread,
 * acknowledgements and declines, notifications, restore, stop-with-savepoint, final checkpoints
 * (end of data, then a checkpoint before the task finishes). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "checkpoint"
#include "checkpoint/cp_barrier.h"
#include "checkpoint/cp_state.h"
#include "checkpoint/cp_task.h"
#include "config/config.h"
#include "operators/operator.h"
#include "row/row_key.h"
#include "state/tm_state_int.h"
#include "task/chain.h"
#include "task/mailbox.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

typedef Flint__Checkpoint__CheckpointType cp_type;
#define T_CHECKPOINT FLINT__CHECKPOINT__CHECKPOINT_TYPE__CHECKPOINT
#define T_SAVEPOINT FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT
#define T_SUSPEND FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_SUSPEND
#define T_TERMINATE FLINT__CHECKPOINT__CHECKPOINT_TYPE__SAVEPOINT_TERMINATE

#define R_DECLINED FLINT__CHECKPOINT__FAILURE_REASON__DECLINED
#define R_NOT_READY FLINT__CHECKPOINT__FAILURE_REASON__TASK_NOT_READY
#define R_CLOSING FLINT__CHECKPOINT__FAILURE_REASON__TASK_CLOSING
#define R_SUBSUMED FLINT__CHECKPOINT__FAILURE_REASON__SUBSUMED
#define R_EOS FLINT__CHECKPOINT__FAILURE_REASON__INPUT_END_OF_STREAM
#define R_ASYNC FLINT__CHECKPOINT__FAILURE_REASON__ASYNC_EXCEPTION

/* ---- requests from the executor ------------------------------------------------------------- */

typedef enum req_kind { REQ_TRIGGER, REQ_COMPLETE, REQ_ABORTED } req_kind;

typedef struct req {
    req_kind kind;
    int64_t id;
    tm_barrier barrier;           /* REQ_TRIGGER */
    struct req *next;
} req;

/* ---- what the synchronous part captured, per operator ------------------------------------------ */

typedef enum ks_kind { KS_NONE, KS_MEM, KS_VIEW, KS_RDB_INCR } ks_kind;

typedef struct op_snap {
    int index;
    const char *operator_id;      /* the deployment descriptor's */
    ks_kind ks;
    const char *format, *backend;
    int first, last;              /* key groups */
    cp_buf mem;                   /* KS_MEM (no keyed backend): the keyed state file */
    int64_t *offsets;             /* KS_MEM, KS_VIEW: per key group */
    cp_keyed_view *view;          /* KS_VIEW: a full snapshot, written by the checkpoint thread */
    cp_buf timers;                /* KS_VIEW: per key group (toffs); KS_RDB_INCR: the meta file */
    size_t *toffs;
    char *local_dir;              /* KS_RDB_INCR: the RocksDB checkpoint */
    cp_buf opfile;                /* operator state file */
    Flint__Checkpoint__OperatorStateHandle *oh;
    Flint__Checkpoint__OperatorSubtaskState *extra;   /* splits and commits of the kind */
} op_snap;

typedef struct cp_job {
    int64_t id;
    tm_barrier barrier;
    bool savepoint;
    int64_t sync_ms, alignment_ms, align_bytes, start_delay_ms;
    int n;
    op_snap *ops;
    atomic_bool aborted;
    struct cp_job *next;
} cp_job;

/* An SST file uploaded to shared/ by this task attempt. */
typedef struct sst_up {
    char *name;                   /* local name ("000012.sst") */
    char *path;                   /* absolute path under shared/ */
    int64_t size, checkpoint_id;
    bool confirmed;               /* its checkpoint completed: later checkpoints may reference it */
} sst_up;

typedef struct op_info {
    sst_up *ups;
    int n_ups, cap_ups;
    bool state_restored;          /* tm_cp_restore_op ran for it */
} op_info;

struct tm_cp {
    tm_cp_env env;
    const Flint__Rpc__TaskDeploymentDescriptor *tdd;
    const Flint__Checkpoint__TaskCheckpointConfig *cfg;   /* may be NULL */
    bool is_source;
    bool exactly_once;
    bool final_checkpoints;       /* TaskCheckpointConfig.final_checkpoints */

    pthread_mutex_t mu;           /* requests, jobs, uploads */
    req *rhead, *rtail;
    atomic_bool has_req;

    /* task thread */
    tm_chain *chain;
    tm_writer **writers;
    int n_writers;
    tm_input *input;
    int *gate_base;               /* flat channel index of each gate's first channel */
    int n_gates;
    tm_aligner al;
    int64_t align_bytes0;
    bool running, stopped;
    int64_t pause_id;             /* source: a stop-with-savepoint savepoint in progress */
    int pause_type;
    bool stop_now, stop_drain;
    int64_t suspend_id;           /* took a SAVEPOINT_SUSPEND: end without end of input */
    bool suspend_notified;        /* ... and it completed */
    /* checkpoints after tasks finish (task thread) */
    int n_eod;                    /* input channels that delivered their end of data */
    bool data_ended;              /* tm_cp_end_data said yes: a final checkpoint follows */
    int64_t final_id;             /* the first checkpoint snapshotted after that, 0 */
    bool final_done;              /* ... or a later one completed */
    op_info *ops;
    int n_ops;
    Flint__Checkpoint__StateRestoreFailure *rfail;

    /* the checkpoint thread */
    pthread_t thread;
    bool thread_started, thread_stop;
    pthread_cond_t cv;
    cp_job *jhead, *jtail;
    cp_job *current;              /* being written */
};

/* ---- messages to the jobmanager ----------------------------------------------------------------- */

void tm_cp_decline_for(tm_cp_send_fn send, void *ud, const char *job_id, const char *execution_id,
                       int64_t checkpoint_id, int reason, const char *message) {
    if (!send) return;
    Flint__Checkpoint__DeclineCheckpoint d = FLINT__CHECKPOINT__DECLINE_CHECKPOINT__INIT;
    d.job_id = (char *)job_id;
    d.execution_id = (char *)execution_id;
    d.checkpoint_id = checkpoint_id;
    d.reason = reason;
    d.message = (char *)(message ? message : "");
    Flint__Rpc__Envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_DECLINE_CHECKPOINT;
    env.decline_checkpoint = &d;
    send(ud, &env);
}

static void decline(tm_cp *cp, int64_t id, int reason, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void decline(tm_cp *cp, int64_t id, int reason, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_info("%s declines checkpoint %lld: %s", cp->env.task_name, (long long)id, msg);
    tm_cp_decline_for(cp->env.send, cp->env.send_ud, cp->tdd->job_id, cp->tdd->execution_id, id, reason, msg);
}

/* ---- life cycle ------------------------------------------------------------------------------------ */

tm_cp *tm_cp_new(const tm_cp_env *env) {
    assert(env && env->tdd && env->rt);
    tm_cp *cp = XNEW(tm_cp);
    cp->env = *env;
    cp->tdd = env->tdd;
    cp->cfg = env->tdd->checkpointing;
    cp->is_source = env->tdd->n_gates == 0;
    cp->exactly_once = !cp->cfg || cp->cfg->mode == FLINT__CHECKPOINT__CHECKPOINTING_MODE__EXACTLY_ONCE;
    cp->final_checkpoints = cp->cfg && cp->cfg->enabled && cp->cfg->final_checkpoints;
    pthread_mutex_init(&cp->mu, NULL);
    pthread_cond_init(&cp->cv, NULL);
    atomic_init(&cp->has_req, false);
    cp->n_ops = (int)env->tdd->vertex->n_operators;
    cp->ops = xcalloc((size_t)cp->n_ops + 1, sizeof *cp->ops);
    tm_aligner_init(&cp->al, 0, cp->exactly_once);
    return cp;
}

static void op_snap_free(op_snap *s) {
    cp_buf_free(&s->mem);
    free(s->offsets);
    cp_keyed_view_free(s->view);
    cp_buf_free(&s->timers);
    free(s->toffs);
    if (s->local_dir) cp_rm_rf(s->local_dir);
    free(s->local_dir);
    cp_buf_free(&s->opfile);
    if (s->oh) flint__checkpoint__operator_state_handle__free_unpacked(s->oh, NULL);
    if (s->extra) flint__checkpoint__operator_subtask_state__free_unpacked(s->extra, NULL);
}

static void job_free(cp_job *j) {
    if (!j) return;
    for (int i = 0; i < j->n; i++) op_snap_free(&j->ops[i]);
    free(j->ops);
    free(j);
}

void tm_cp_free(tm_cp *cp) {
    if (!cp) return;
    assert(!cp->thread_started);
    for (req *r = cp->rhead, *n; r; r = n) {
        n = r->next;
        free(r);
    }
    for (cp_job *j = cp->jhead, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (int i = 0; i < cp->n_ops; i++) {
        for (int k = 0; k < cp->ops[i].n_ups; k++) {
            free(cp->ops[i].ups[k].name);
            free(cp->ops[i].ups[k].path);
        }
        free(cp->ops[i].ups);
    }
    free(cp->ops);
    if (cp->rfail) flint__checkpoint__state_restore_failure__free_unpacked(cp->rfail, NULL);
    tm_aligner_free(&cp->al);
    free(cp->writers);
    free(cp->gate_base);
    pthread_cond_destroy(&cp->cv);
    pthread_mutex_destroy(&cp->mu);
    free(cp);
}

const Flint__Checkpoint__StateRestoreFailure *tm_cp_restore_failure(const tm_cp *cp) {
    return cp ? cp->rfail : NULL;
}

void tm_cp_attach(tm_cp *cp, tm_chain *chain, tm_writer *const *writers, int n_writers, tm_input *input,
                  int n_channels) {
    cp->chain = chain;
    free(cp->writers);
    cp->writers = xcalloc((size_t)n_writers + 1, sizeof *cp->writers);
    if (n_writers) memcpy(cp->writers, writers, (size_t)n_writers * sizeof *writers);
    cp->n_writers = n_writers;
    cp->input = input;
    tm_aligner_free(&cp->al);
    tm_aligner_init(&cp->al, input ? n_channels : 0, cp->exactly_once);
    if (input) {
        cp->n_gates = tm_input_gate_count(input);
        free(cp->gate_base);
        cp->gate_base = xcalloc((size_t)cp->n_gates + 1, sizeof *cp->gate_base);
        int base = 0;
        for (int g = 0; g < cp->n_gates; g++) {
            cp->gate_base[g] = base;
            base += tm_input_channel_count(input, g);
        }
    }
}

/* ---- requests -------------------------------------------------------------------------------------- */

static void wake(void *arg) { (void)arg; }

static void post(tm_cp *cp, req *r) {
    pthread_mutex_lock(&cp->mu);
    if (cp->rtail) cp->rtail->next = r;
    else cp->rhead = r;
    cp->rtail = r;
    atomic_store(&cp->has_req, true);
    pthread_mutex_unlock(&cp->mu);
    /* The mail only wakes the task: the loop runs tm_cp_run_requests after its mailbox. */
    if (cp->env.mailbox) tm_mailbox_put(cp->env.mailbox, wake, NULL);
}

void tm_cp_post_trigger(tm_cp *cp, const Flint__Checkpoint__TriggerCheckpoint *m) {
    req *r = XNEW(req);
    r->kind = REQ_TRIGGER;
    r->id = m->checkpoint_id;
    r->barrier.checkpoint_id = m->checkpoint_id;
    r->barrier.timestamp = m->timestamp;
    r->barrier.type = m->type;
    r->barrier.mode = m->mode;
    snprintf(r->barrier.target, sizeof r->barrier.target, "%s", m->target_directory ? m->target_directory : "");
    snprintf(r->barrier.shared, sizeof r->barrier.shared, "%s", m->shared_directory ? m->shared_directory : "");
    post(cp, r);
}

void tm_cp_post_complete(tm_cp *cp, int64_t checkpoint_id) {
    req *r = XNEW(req);
    r->kind = REQ_COMPLETE;
    r->id = checkpoint_id;
    post(cp, r);
}

void tm_cp_post_aborted(tm_cp *cp, int64_t checkpoint_id) {
    req *r = XNEW(req);
    r->kind = REQ_ABORTED;
    r->id = checkpoint_id;
    post(cp, r);
}

/* ---- the kinds' own state --------------------------------------------------------------------------- */

/* A malloc'ed copy of len bytes as a protobuf bytes field (empty when len is 0). */
static ProtobufCBinaryData bytes_copy(const void *data, size_t len) {
    ProtobufCBinaryData b = {0, NULL};
    if (len) {
        b.data = xmalloc(len);
        memcpy(b.data, data, len);
        b.len = len;
    }
    return b;
}

void tm_cp_add_split(Flint__Checkpoint__OperatorSubtaskState *out, const char *split_id, int64_t position,
                     const void *data, size_t len) {
    Flint__Checkpoint__SourceSplitState *s = xmalloc(sizeof *s);
    flint__checkpoint__source_split_state__init(s);
    s->split_id = xstrdup(split_id);
    s->position = position;
    s->data = bytes_copy(data, len);
    out->source_splits = xrealloc(out->source_splits, (out->n_source_splits + 1) * sizeof *out->source_splits);
    out->source_splits[out->n_source_splits++] = s;
}

void tm_cp_add_commit(Flint__Checkpoint__OperatorSubtaskState *out, const char *id, int64_t checkpoint_id,
                      const void *data, size_t len) {
    Flint__Checkpoint__PendingCommit *c = xmalloc(sizeof *c);
    flint__checkpoint__pending_commit__init(c);
    c->id = xstrdup(id);
    c->checkpoint_id = checkpoint_id;
    c->data = bytes_copy(data, len);
    out->pending_commits = xrealloc(out->pending_commits, (out->n_pending_commits + 1) * sizeof *out->pending_commits);
    out->pending_commits[out->n_pending_commits++] = c;
}

/* ---- restore ------------------------------------------------------------------------------------------ */

static const Flint__Checkpoint__OperatorRestore *find_restore(const tm_cp *cp, const char *operator_id) {
    const Flint__Checkpoint__TaskRestore *tr = cp->tdd->restore;
    if (!tr || !operator_id) return NULL;
    for (size_t i = 0; i < tr->n_operators; i++)
        if (tr->operators[i]->operator_id && strcmp(tr->operators[i]->operator_id, operator_id) == 0)
            return tr->operators[i];
    return NULL;
}

static void record_failure(tm_cp *cp, const char *path, const char *msg) {
    if (cp->rfail) return;
    cp->rfail = xmalloc(sizeof *cp->rfail);
    flint__checkpoint__state_restore_failure__init(cp->rfail);
    cp->rfail->checkpoint_id = cp->tdd->restore ? cp->tdd->restore->checkpoint_id : 0;
    cp->rfail->path = xstrdup(path && path[0] ? path : (cp->tdd->restore ? cp->tdd->restore->metadata_path : ""));
    cp->rfail->message = xstrdup(msg);
}

static tm_timer_queue *get_queue(void *ud) { return tm_op_timers(ud); }

/* The key groups of this subtask (for operators without a keyed backend). */
static void task_key_groups(const tm_runtime *rt, int *first, int *last) {
    int maxp = rt->max_parallelism > 0 ? rt->max_parallelism : 128;
    int p = rt->parallelism > 0 ? rt->parallelism : 1;
    row_key_group_range(rt->subtask, maxp, p, first, last);
}

/* io.tmp.dirs' first directory (scratch space for restoring incremental handles). */
static void tmp_dir(const tm_runtime *rt, char *out, size_t len) {
    const char *d = rt->tm_config ? config_str(rt->tm_config, CFG_IO_TMP_DIRS) : NULL;
    if (!d || !d[0]) d = "/tmp";
    size_t n = strcspn(d, ";,:|");
    snprintf(out, len, "%.*s", (int)n, d);
}

/* Record an SST file in shared/ that checkpoints of oi's operator may reference. */
static void ups_add(tm_cp *cp, op_info *oi, const char *name, const char *path, int64_t size, int64_t id,
                    bool confirmed) {
    pthread_mutex_lock(&cp->mu);
    if (oi->n_ups == oi->cap_ups) {
        oi->cap_ups = oi->cap_ups ? 2 * oi->cap_ups : 16;
        oi->ups = xrealloc(oi->ups, (size_t)oi->cap_ups * sizeof *oi->ups);
    }
    oi->ups[oi->n_ups++] = (sst_up){xstrdup(name), xstrdup(path), size, id, confirmed};
    pthread_mutex_unlock(&cp->mu);
}

/* After a native restore the backend's SST files are h's shared files: those in this job's
 * shared/ (a failover) count as uploaded, so the next checkpoint references them instead of
 * linking them all again. Another job's files are not referenced (Flink's no-claim restore). */
static void adopt_restored_files(tm_cp *cp, int index, const Flint__Checkpoint__KeyedStateHandle *h) {
    const char *shared = cp->cfg ? cp->cfg->shared_directory : "";
    size_t sl = strlen(shared);
    if (!sl || index < 0 || index >= cp->n_ops) return;
    for (size_t f = 0; f < h->n_shared_files; f++) {
        const Flint__Checkpoint__NamedFile *nf = h->shared_files[f];
        const char *path = nf->handle ? nf->handle->path : "";
        if (strncmp(path, shared, sl) == 0 && path[sl] == '/')
            ups_add(cp, &cp->ops[index], nf->name, path, nf->handle->size, cp->tdd->restore->checkpoint_id, true);
    }
}

int tm_cp_restore_op(tm_cp *cp, tm_op *op, tm_state_backend *keyed) {
    if (!cp || !cp->tdd->restore) return FLINT_OK;
    const Flint__Checkpoint__OperatorRestore *r = find_restore(cp, op->def->operator_id);
    if (!r) return FLINT_OK;
    if (op->index >= 0 && op->index < cp->n_ops) cp->ops[op->index].state_restored = true;
    int first, last;
    if (keyed) first = keyed->cfg.kg_first, last = keyed->cfg.kg_last;
    else task_key_groups(op->rt, &first, &last);
    flint_err err = {0};
    const char *bad = "";
    int rc = FLINT_OK;
    int64_t t0 = time_mono_ms();
    for (size_t k = 0; k < r->n_keyed_state && !rc; k++) {
        const Flint__Checkpoint__KeyedStateHandle *h = r->keyed_state[k];
        if (h->format && strcmp(h->format, "rocksdb-incremental-v1") == 0) {
            char *scratch;
            const char *rd = keyed ? cp_rdb_dir(keyed) : NULL;
            /* Scratch space the backend's sweep of dead processes' directories also removes:
             * inside the RocksDB instance's directory, or named like one. */
            if (rd) {
                scratch = xasprintf("%s/restore-%zu", rd, k);
            } else {
                char t[1024];
                tmp_dir(op->rt, t, sizeof t);
                scratch = xasprintf("%s/flint-state-restore-%s-op%d-%d-%zu", t, cp->tdd->execution_id, op->index,
                                    (int)getpid(), k);
            }
            bool native = cp_rdb_restores_natively(h, keyed, first, last);
            rc = cp_restore_keyed_incremental(h, keyed, first, last, scratch, get_queue, op, &bad, &err);
            if (!rc && native) adopt_restored_files(cp, op->index, h);
            free(scratch);
        } else if (h->format && (!strcmp(h->format, "canonical-v1") || !strcmp(h->format, "hashmap-v1") ||
                                 !strcmp(h->format, "rocksdb-full-v1"))) {
            rc = cp_restore_keyed_full(h, keyed, first, last, get_queue, op, &bad, &err);
        } else {
            bad = h->file && h->file->path ? h->file->path : "";
            rc = flint_err_set(&err, FLINT_UNSUPPORTED, "keyed state of unknown format '%s'", h->format ? h->format : "");
        }
    }
    if (!rc && r->n_operator_state) rc = cp_opstate_restore(op, r->operator_state, r->n_operator_state, &bad, &err);
    if (rc) {
        record_failure(cp, bad, err.msg);
        return tm_op_fail(op, "restoring %s %lld (%s): %s", cp->tdd->restore->from_savepoint ? "savepoint" : "checkpoint",
                          (long long)cp->tdd->restore->checkpoint_id, cp->tdd->restore->metadata_path, err.msg);
    }
    if (r->n_keyed_state || r->n_operator_state)
        log_info("%s: restored the state of operator '%s' from %s %lld in %lld ms", cp->env.task_name, op->def->name,
                 cp->tdd->restore->from_savepoint ? "savepoint" : "checkpoint",
                 (long long)cp->tdd->restore->checkpoint_id, (long long)(time_mono_ms() - t0));
    return FLINT_OK;
}

int tm_cp_restore_finish(tm_cp *cp) {
    if (cp->tdd->restore && cp->chain) {
        for (int i = 0; i < cp->chain->n; i++) {
            tm_op *op = cp->chain->ops[i];
            const Flint__Checkpoint__OperatorRestore *r = find_restore(cp, op->def->operator_id);
            if (!r) continue;
            if ((r->n_keyed_state || r->n_operator_state) && !cp->ops[i].state_restored)
                log_warn("%s: operator '%s' (%s) has keyed or operator state in %s, but it keeps none: skipped",
                         cp->env.task_name, op->def->name, op->kind->name, cp->tdd->restore->metadata_path);
            /* Empty: a source whose splits all went to other subtasks; it restores owning none. */
            bool empty = !r->n_keyed_state && !r->n_operator_state && !r->n_source_splits && !r->n_pending_commits;
            if (!r->n_source_splits && !r->n_pending_commits && !empty) continue;
            if (!op->kind->initialize_state) {
                if (empty) continue;
                log_warn("%s: operator '%s' (%s) cannot restore its positions or commits: skipped", cp->env.task_name,
                         op->def->name, op->kind->name);
                continue;
            }
            int rc = op->kind->initialize_state(op, r);
            if (rc) {
                record_failure(cp, cp->tdd->restore->metadata_path, op->rt->err.msg);
                return rc;
            }
        }
    }
    cp->running = true;
    return FLINT_OK;
}

/* ---- the synchronous part ------------------------------------------------------------------------------- */

static bool has_timers(const tm_op *op) {
    return op->timers && (tm_timer_queue_count(op->timers, FLINT_EVENT_TIME) ||
                          tm_timer_queue_count(op->timers, FLINT_PROCESSING_TIME));
}

static int capture_op(tm_cp *cp, cp_job *job, tm_op *op, op_snap *s, flint_err *err) {
    s->index = op->index;
    s->operator_id = op->def->operator_id;
    tm_state_backend *kb = tm_state_op_keyed(op);
    int rc = FLINT_OK;
    if (kb || has_timers(op)) {
        if (kb) s->first = kb->cfg.kg_first, s->last = kb->cfg.kg_last;
        else task_key_groups(op->rt, &s->first, &s->last);
        int n = s->last - s->first + 1;
        bool rocks = kb && tm_state_backend_type(kb) == TM_BACKEND_ROCKSDB;
        s->backend = kb ? tm_backend_type_name(tm_state_backend_type(kb)) : "hashmap";
        if (rocks && !job->savepoint && cp->cfg && cp->cfg->incremental) {
            s->ks = KS_RDB_INCR;
            s->format = "rocksdb-incremental-v1";
            /* inside the instance's directory: removed with it, also after a crash */
            s->local_dir = xasprintf("%s/chk-%lld", cp_rdb_dir(kb), (long long)job->id);
            cp_rm_rf(s->local_dir);
            if ((rc = cp_rdb_checkpoint(kb, s->local_dir, &s->timers, err))) return rc;
            /* timers into the meta file: u32 key groups, then u16 kg + timers for each */
            cp_buf tb = {0};
            size_t *toffs = xcalloc((size_t)n + 1, sizeof *toffs);
            cp_timers_capture(op->timers, s->first, s->last, &tb, toffs);
            cp_buf_u32(&s->timers, (uint32_t)n);
            for (int k = 0; k < n; k++) {
                cp_buf_u16(&s->timers, (uint16_t)(s->first + k));
                cp_buf_add(&s->timers, tb.p + toffs[k], toffs[k + 1] - toffs[k]);
            }
            cp_buf_free(&tb);
            free(toffs);
        } else if (kb) {
            s->ks = KS_VIEW;
            s->format = job->savepoint ? "canonical-v1" : rocks ? "rocksdb-full-v1" : "hashmap-v1";
            if (!(s->view = cp_keyed_view_new(kb, err))) return FLINT_ERR;
            s->toffs = xcalloc((size_t)n + 1, sizeof *s->toffs);
            cp_timers_capture(op->timers, s->first, s->last, &s->timers, s->toffs);
        } else {
            s->ks = KS_MEM;
            s->format = job->savepoint ? "canonical-v1" : "hashmap-v1";
            s->offsets = xcalloc((size_t)n, sizeof *s->offsets);
            if ((rc = cp_keyed_capture_mem(kb, op->timers, s->first, s->last, &s->mem, s->offsets, err))) return rc;
        }
    }
    if ((rc = cp_opstate_capture(op, &s->opfile, &s->oh, err))) return rc;
    if (op->kind->snapshot_state) {
        s->extra = xmalloc(sizeof *s->extra);
        flint__checkpoint__operator_subtask_state__init(s->extra);
        if ((rc = op->kind->snapshot_state(op, job->id, s->extra)))
            return flint_err_set(err, rc, "operator '%s': %s", op->def->name, op->rt->err.msg);
    }
    return FLINT_OK;
}

static void start_thread(tm_cp *cp);

/* Snapshot every operator (head first), send the barrier on, queue the asynchronous part. */
static int take_snapshot(tm_cp *cp, const tm_barrier *b, int64_t alignment_ns, int64_t align_bytes) {
    int64_t t0 = time_mono_ns();
    cp_job *job = XNEW(cp_job);
    job->id = b->checkpoint_id;
    job->barrier = *b;
    job->savepoint = b->type != T_CHECKPOINT;
    job->alignment_ms = alignment_ns / 1000000;
    job->align_bytes = align_bytes;
    int64_t delay = time_wall_ms() - b->timestamp;
    job->start_delay_ms = delay > 0 ? delay : 0;
    atomic_init(&job->aborted, false);
    job->n = cp->chain ? cp->chain->n : 0;
    job->ops = xcalloc((size_t)job->n + 1, sizeof *job->ops);
    flint_err err = {0};
    int rc = FLINT_OK;
    for (int i = 0; i < job->n && !rc; i++) rc = capture_op(cp, job, cp->chain->ops[i], &job->ops[i], &err);
    if (rc) {
        /* An operator that failed (tm_op_fail) fails the task; anything else declines. */
        bool failed = cp->env.rt->failed;
        decline(cp, job->id, failed ? R_DECLINED : R_ASYNC, "the snapshot failed: %s", err.msg);
        job_free(job);
        return failed ? rc : FLINT_OK;
    }
    job->sync_ms = (time_mono_ns() - t0) / 1000000;
    /* The barrier goes on in-band, after every record emitted before it. */
    uint8_t payload[TM_BARRIER_MAX];
    size_t plen = tm_barrier_encode(b, payload);
    for (int i = 0; i < cp->n_writers; i++) {
        rc = tm_writer_event(cp->writers[i], TM_EVENT_CHECKPOINT_BARRIER, payload, (uint32_t)plen);
        if (rc) {
            job_free(job);
            if (rc == FLINT_CANCELED) return rc;
            cp->env.rt->failed = true;
            cp->env.rt->err.code = rc;
            snprintf(cp->env.rt->err.msg, sizeof cp->env.rt->err.msg, "sending the barrier of checkpoint %lld: %s",
                     (long long)b->checkpoint_id, flint_strerror(rc));
            return rc;
        }
    }
    if (cp->data_ended && !cp->final_id) cp->final_id = b->checkpoint_id;
    if (b->type == T_SUSPEND || b->type == T_TERMINATE) {
        if (cp->is_source) {
            cp->pause_id = b->checkpoint_id;
            cp->pause_type = b->type;
        } else if (b->type == T_SUSPEND) {
            cp->suspend_id = b->checkpoint_id;
        }
    }
    pthread_mutex_lock(&cp->mu);
    if (cp->jtail) cp->jtail->next = job;
    else cp->jhead = job;
    cp->jtail = job;
    pthread_cond_broadcast(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    start_thread(cp);
    log_debug("%s: %s %lld, synchronous part %lld ms", cp->env.task_name, job->savepoint ? "savepoint" : "checkpoint",
              (long long)job->id, (long long)job->sync_ms);
    return FLINT_OK;
}

/* ---- the asynchronous part (the checkpoint thread) ----------------------------------------------------------- */

static Flint__Checkpoint__StreamStateHandle *handle_new(const char *path, int64_t size) {
    Flint__Checkpoint__StreamStateHandle *h = xmalloc(sizeof *h);
    flint__checkpoint__stream_state_handle__init(h);
    h->path = xstrdup(path);
    h->size = size;
    return h;
}

static Flint__Checkpoint__NamedFile *named_file(const char *name, const char *path, int64_t size) {
    Flint__Checkpoint__NamedFile *f = xmalloc(sizeof *f);
    flint__checkpoint__named_file__init(f);
    f->name = xstrdup(name);
    f->handle = handle_new(path, size);
    return f;
}

/* The file name of an exclusive file of op in job (relative to the target directory). */
static char *excl_name(tm_cp *cp, const op_snap *s, const char *kind) {
    return xasprintf("%s-%s-%s", cp->tdd->execution_id, s->operator_id, kind);
}

typedef struct written {
    char **paths;
    int n;
} written;

static void written_add(written *w, const char *path) {
    w->paths = xrealloc(w->paths, (size_t)(w->n + 1) * sizeof *w->paths);
    w->paths[w->n++] = xstrdup(path);
}

static void written_free(written *w, bool remove_files) {
    for (int i = 0; i < w->n; i++) {
        if (remove_files) unlink(w->paths[i]);
        free(w->paths[i]);
    }
    free(w->paths);
}

static bool job_aborted(tm_cp *cp, cp_job *j) {
    (void)cp;
    return atomic_load(&j->aborted);
}

/* The keyed state file of a view, written key group by key group. */
static int write_view(tm_cp *cp, cp_job *j, op_snap *s, const char *path, int64_t *size, flint_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return flint_err_set(err, FLINT_IO, "cannot create %s: %s", path, strerror(errno));
    int n = s->last - s->first + 1;
    s->offsets = xcalloc((size_t)n, sizeof *s->offsets);
    cp_buf blk = {0}, sec = {0};
    int64_t off = 0;
    int rc = FLINT_OK;
    for (int k = 0; k < n && !rc; k++) {
        if (job_aborted(cp, j)) {
            rc = FLINT_CANCELED;
            break;
        }
        blk.len = sec.len = 0;
        if ((rc = cp_keyed_view_block(s->view, s->first + k, &blk, err))) break;
        cp_section_add(&sec, blk.p, blk.len, s->timers.p + s->toffs[k], s->toffs[k + 1] - s->toffs[k]);
        s->offsets[k] = off;
        if (fwrite(sec.p, 1, sec.len, f) != sec.len)
            rc = flint_err_set(err, FLINT_IO, "writing %s: %s", path, strerror(errno));
        off += (int64_t)sec.len;
    }
    cp_buf_free(&blk);
    cp_buf_free(&sec);
    if (!rc && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = flint_err_set(err, FLINT_IO, "writing %s: %s", path, strerror(errno));
    if (fclose(f) != 0 && !rc) rc = flint_err_set(err, FLINT_IO, "closing %s: %s", path, strerror(errno));
    *size = off;
    return rc;
}

/* Upload the files of a RocksDB checkpoint: new SST files to shared/, the rest to the target. */
static int write_rdb_incr(tm_cp *cp, cp_job *j, op_snap *s, Flint__Checkpoint__KeyedStateHandle *h, written *w,
                          int64_t *state_size, int64_t *new_bytes, flint_err *err) {
    const char *target = j->barrier.target, *shared = j->barrier.shared;
    if (!shared[0]) return flint_err_set(err, FLINT_INVALID, "no shared directory for an incremental checkpoint");
    DIR *d = opendir(s->local_dir);
    if (!d) return flint_err_set(err, FLINT_IO, "cannot read %s: %s", s->local_dir, strerror(errno));
    op_info *oi = &cp->ops[s->index];
    int rc = FLINT_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        if (job_aborted(cp, j)) {
            rc = FLINT_CANCELED;
            break;
        }
        char *src = xasprintf("%s/%s", s->local_dir, name);
        struct stat st;
        if (stat(src, &st) != 0) {
            rc = flint_err_set(err, FLINT_IO, "cannot stat %s: %s", src, strerror(errno));
            free(src);
            break;
        }
        size_t nl = strlen(name);
        bool sst = nl > 4 && strcmp(name + nl - 4, ".sst") == 0;
        *state_size += st.st_size;
        if (sst) {
            char *reuse = NULL;
            pthread_mutex_lock(&cp->mu);
            for (int k = 0; k < oi->n_ups && !reuse; k++)
                if (oi->ups[k].confirmed && strcmp(oi->ups[k].name, name) == 0) reuse = xstrdup(oi->ups[k].path);
            pthread_mutex_unlock(&cp->mu);
            if (!reuse) {
                char *dst = xasprintf("%s/%s-%s-c%lld-%s", shared, cp->tdd->execution_id, s->operator_id,
                                      (long long)j->id, name);
                int64_t copied;
                rc = cp_link_or_copy(src, dst, &copied, err);
                if (!rc) {
                    written_add(w, dst);
                    *new_bytes += st.st_size;
                    ups_add(cp, oi, name, dst, st.st_size, j->id, false);
                    reuse = dst;
                } else {
                    free(dst);
                }
            }
            if (reuse) {
                h->shared_files = xrealloc(h->shared_files, (h->n_shared_files + 1) * sizeof *h->shared_files);
                h->shared_files[h->n_shared_files++] = named_file(name, reuse, st.st_size);
                free(reuse);
            }
        } else {
            char *rel = xasprintf("%s-%s-%s", cp->tdd->execution_id, s->operator_id, name);
            char *dst = xasprintf("%s/%s", target, rel);
            rc = cp_copy_file(src, dst, err);
            if (!rc) {
                written_add(w, dst);
                *new_bytes += st.st_size;
                h->private_files = xrealloc(h->private_files, (h->n_private_files + 1) * sizeof *h->private_files);
                h->private_files[h->n_private_files++] = named_file(name, rel, st.st_size);
            }
            free(rel);
            free(dst);
        }
        free(src);
    }
    closedir(d);
    if (rc) return rc;
    char *rel = excl_name(cp, s, "meta");
    char *path = xasprintf("%s/%s", target, rel);
    rc = cp_write_file(path, s->timers.p, s->timers.len, err);
    if (!rc) {
        written_add(w, path);
        h->meta_data = handle_new(rel, (int64_t)s->timers.len);
        *state_size += (int64_t)s->timers.len;
        *new_bytes += (int64_t)s->timers.len;
    }
    free(rel);
    free(path);
    return rc;
}

static Flint__Checkpoint__KeyGroupRange *kg_range(int first, int last) {
    Flint__Checkpoint__KeyGroupRange *r = xmalloc(sizeof *r);
    flint__checkpoint__key_group_range__init(r);
    r->start = first;
    r->end = last;
    return r;
}

/* Write everything of one operator; its OperatorSubtaskState (NULL: nothing to report). */
static int write_op(tm_cp *cp, cp_job *j, op_snap *s, written *w, Flint__Checkpoint__OperatorSubtaskState **out,
                    flint_err *err) {
    *out = NULL;
    const char *target = j->barrier.target;
    Flint__Checkpoint__OperatorSubtaskState *o = s->extra;
    s->extra = NULL;
    if (!o) {
        o = xmalloc(sizeof *o);
        flint__checkpoint__operator_subtask_state__init(o);
    }
    o->operator_id = xstrdup(s->operator_id);
    int rc = FLINT_OK;
    if (s->ks != KS_NONE) {
        Flint__Checkpoint__KeyedStateHandle *h = xmalloc(sizeof *h);
        flint__checkpoint__keyed_state_handle__init(h);
        h->format = xstrdup(s->format);
        h->backend = xstrdup(s->backend);
        h->key_group_range = kg_range(s->first, s->last);
        o->keyed_state = xmalloc(sizeof *o->keyed_state);
        o->keyed_state[0] = h;
        o->n_keyed_state = 1;
        int n = s->last - s->first + 1;
        if (s->ks == KS_RDB_INCR) {
            int64_t size = 0, fresh = 0;
            h->backend_id = xasprintf("%s-%s", cp->tdd->execution_id, s->operator_id);
            rc = write_rdb_incr(cp, j, s, h, w, &size, &fresh, err);
            h->state_size = size;
            h->checkpointed_size = fresh;
        } else {
            char *rel = excl_name(cp, s, "keyed");
            char *path = xasprintf("%s/%s", target, rel);
            int64_t size = 0;
            if (s->ks == KS_MEM) {
                rc = cp_write_file(path, s->mem.p, s->mem.len, err);
                size = (int64_t)s->mem.len;
            } else {
                rc = write_view(cp, j, s, path, &size, err);
            }
            written_add(w, path);
            h->file = handle_new(rel, size);
            h->key_group_offsets = xmalloc((size_t)n * sizeof *h->key_group_offsets);
            memcpy(h->key_group_offsets, s->offsets, (size_t)n * sizeof *h->key_group_offsets);
            h->n_key_group_offsets = (size_t)n;
            h->state_size = h->checkpointed_size = size;
            free(rel);
            free(path);
        }
        o->state_size += h->state_size;
        o->checkpointed_size += h->checkpointed_size;
    }
    if (!rc && s->oh) {
        char *rel = excl_name(cp, s, "operator");
        char *path = xasprintf("%s/%s", target, rel);
        rc = cp_write_file(path, s->opfile.p, s->opfile.len, err);
        written_add(w, path);
        s->oh->file = handle_new(rel, (int64_t)s->opfile.len);
        o->operator_state = xmalloc(sizeof *o->operator_state);
        o->operator_state[0] = s->oh;
        o->n_operator_state = 1;
        s->oh = NULL;
        o->state_size += (int64_t)s->opfile.len;
        o->checkpointed_size += (int64_t)s->opfile.len;
        free(rel);
        free(path);
    }
    if (rc || (!o->n_keyed_state && !o->n_operator_state && !o->n_source_splits && !o->n_pending_commits)) {
        flint__checkpoint__operator_subtask_state__free_unpacked(o, NULL);
        return rc;
    }
    *out = o;
    return FLINT_OK;
}

static void run_job(tm_cp *cp, cp_job *j) {
    int64_t t0 = time_mono_ns();
    Flint__Checkpoint__AcknowledgeCheckpoint ack = FLINT__CHECKPOINT__ACKNOWLEDGE_CHECKPOINT__INIT;
    Flint__Checkpoint__SubtaskCheckpointMetrics met = FLINT__CHECKPOINT__SUBTASK_CHECKPOINT_METRICS__INIT;
    ack.operators = xcalloc((size_t)j->n + 1, sizeof *ack.operators);
    written w = {0};
    flint_err err = {0};
    int rc = FLINT_OK;
    for (int i = 0; i < j->n && !rc; i++) {
        if (job_aborted(cp, j)) {
            rc = FLINT_CANCELED;
            break;
        }
        Flint__Checkpoint__OperatorSubtaskState *o = NULL;
        rc = write_op(cp, j, &j->ops[i], &w, &o, &err);
        if (o) {
            ack.operators[ack.n_operators++] = o;
            met.state_size += o->state_size;
            met.checkpointed_size += o->checkpointed_size;
        }
        /* the view and the RocksDB checkpoint are done with: free them now */
        cp_keyed_view_free(j->ops[i].view);
        j->ops[i].view = NULL;
        if (j->ops[i].local_dir) cp_rm_rf(j->ops[i].local_dir);
    }
    if (!rc && job_aborted(cp, j)) rc = FLINT_CANCELED;
    if (rc) {
        if (rc != FLINT_CANCELED)
            decline(cp, j->id, R_ASYNC, "writing the snapshot failed: %s", err.msg);
        written_free(&w, true);
        /* uploads of this checkpoint are no use: the coordinator deletes them */
        pthread_mutex_lock(&cp->mu);
        for (int i = 0; i < cp->n_ops; i++) {
            op_info *oi = &cp->ops[i];
            for (int k = 0; k < oi->n_ups;)
                if (oi->ups[k].checkpoint_id == j->id && !oi->ups[k].confirmed) {
                    free(oi->ups[k].name);
                    free(oi->ups[k].path);
                    oi->ups[k] = oi->ups[--oi->n_ups];
                } else {
                    k++;
                }
        }
        pthread_mutex_unlock(&cp->mu);
    } else {
        written_free(&w, false);
        met.sync_duration_ms = j->sync_ms;
        met.async_duration_ms = (time_mono_ns() - t0) / 1000000;
        met.alignment_duration_ms = j->alignment_ms;
        met.bytes_processed_during_alignment = j->align_bytes;
        met.start_delay_ms = j->start_delay_ms;
        ack.job_id = cp->tdd->job_id;
        ack.execution_id = cp->tdd->execution_id;
        ack.checkpoint_id = j->id;
        ack.metrics = &met;
        Flint__Rpc__Envelope env = FLINT__RPC__ENVELOPE__INIT;
        env.body_case = FLINT__RPC__ENVELOPE__BODY_ACKNOWLEDGE_CHECKPOINT;
        env.acknowledge_checkpoint = &ack;
        if (cp->env.send) cp->env.send(cp->env.send_ud, &env);
        log_debug("%s: acknowledged %lld (%lld bytes, async %lld ms)", cp->env.task_name, (long long)j->id,
                  (long long)met.state_size, (long long)met.async_duration_ms);
    }
    for (size_t i = 0; i < ack.n_operators; i++)
        flint__checkpoint__operator_subtask_state__free_unpacked(ack.operators[i], NULL);
    free(ack.operators);
}

static void *thread_main(void *arg) {
    tm_cp *cp = arg;
    pthread_mutex_lock(&cp->mu);
    for (;;) {
        while (!cp->jhead && !cp->thread_stop) pthread_cond_wait(&cp->cv, &cp->mu);
        if (cp->thread_stop) break;
        cp_job *j = cp->jhead;
        cp->jhead = j->next;
        if (!cp->jhead) cp->jtail = NULL;
        cp->current = j;
        pthread_mutex_unlock(&cp->mu);
        run_job(cp, j);
        job_free(j);
        pthread_mutex_lock(&cp->mu);
        cp->current = NULL;
        pthread_cond_broadcast(&cp->cv);   /* tm_cp_stop may wait for it */
    }
    pthread_mutex_unlock(&cp->mu);
    return NULL;
}

static void start_thread(tm_cp *cp) {
    if (cp->thread_started) return;
    if (pthread_create(&cp->thread, NULL, thread_main, cp) != 0) {
        log_error("%s: cannot start the checkpoint thread; snapshots are written in the task thread", cp->env.task_name);
        pthread_mutex_lock(&cp->mu);
        while (cp->jhead) {
            cp_job *j = cp->jhead;
            cp->jhead = j->next;
            if (!cp->jhead) cp->jtail = NULL;
            pthread_mutex_unlock(&cp->mu);
            run_job(cp, j);
            job_free(j);
            pthread_mutex_lock(&cp->mu);
        }
        pthread_mutex_unlock(&cp->mu);
        return;
    }
    char name[16];
    snprintf(name, sizeof name, "cp-%d", cp->tdd->subtask_index);
    pthread_setname_np(cp->thread, name);
    cp->thread_started = true;
}

/* ---- requests in the task thread -------------------------------------------------------------------------- */

static int on_trigger_downstream(tm_cp *cp, const tm_barrier *b);

static int on_trigger(tm_cp *cp, const tm_barrier *b) {
    if (!cp->running) {
        decline(cp, b->checkpoint_id, R_NOT_READY, "the task is not running yet");
        return FLINT_OK;
    }
    if (!cp->is_source) return on_trigger_downstream(cp, b);
    if (cp->stopped || cp->pause_id || cp->stop_now) {
        decline(cp, b->checkpoint_id, R_CLOSING, "the task is finishing");
        return FLINT_OK;
    }
    if (b->type == T_TERMINATE && cp->chain && cp->chain->n) {
        /* stop --drain: the end of event time first, so that windows fire before the savepoint */
        int rc = tm_op_watermark(cp->chain->ops[0], FLINT_MAX_WATERMARK);
        if (rc) return rc;
    }
    return take_snapshot(cp, b, 0, 0);
}

static int notify_ops(tm_cp *cp, int64_t id, bool complete) {
    if (!cp->chain || !cp->running) return FLINT_OK;
    for (int i = 0; i < cp->chain->n; i++) {
        tm_op *op = cp->chain->ops[i];
        if (!op->opened || !op->kind) continue;
        int (*fn)(tm_op *, int64_t) = complete ? op->kind->notify_checkpoint_complete
                                               : op->kind->notify_checkpoint_aborted;
        if (!fn) continue;
        int rc = fn(op, id);
        if (rc) return rc;
    }
    return FLINT_OK;
}

static void on_complete(tm_cp *cp, int64_t id) {
    pthread_mutex_lock(&cp->mu);
    for (int i = 0; i < cp->n_ops; i++)
        for (int k = 0; k < cp->ops[i].n_ups; k++)
            if (cp->ops[i].ups[k].checkpoint_id <= id) cp->ops[i].ups[k].confirmed = true;
    pthread_mutex_unlock(&cp->mu);
    if (cp->suspend_id && id >= cp->suspend_id) cp->suspend_notified = true;
    if (cp->final_id && id >= cp->final_id) cp->final_done = true;
    if (cp->pause_id && id >= cp->pause_id) {
        log_info("%s: the stop savepoint %lld completed: finishing", cp->env.task_name, (long long)id);
        cp->stop_now = true;
        cp->stop_drain = cp->pause_type == T_TERMINATE;
        cp->pause_id = 0;
    }
}

static void on_aborted(tm_cp *cp, int64_t id) {
    int64_t was = tm_aligner_abort(&cp->al, id);
    if (was && cp->input) tm_input_unblock_all(cp->input);
    pthread_mutex_lock(&cp->mu);
    for (cp_job *j = cp->jhead; j; j = j->next)
        if (j->id == id) atomic_store(&j->aborted, true);
    if (cp->current && cp->current->id == id) atomic_store(&cp->current->aborted, true);
    for (int i = 0; i < cp->n_ops; i++) {
        op_info *oi = &cp->ops[i];
        for (int k = 0; k < oi->n_ups;)
            if (oi->ups[k].checkpoint_id == id && !oi->ups[k].confirmed) {
                free(oi->ups[k].name);
                free(oi->ups[k].path);
                oi->ups[k] = oi->ups[--oi->n_ups];
            } else {
                k++;
            }
    }
    pthread_mutex_unlock(&cp->mu);
    if (cp->pause_id == id) {
        log_info("%s: the stop savepoint %lld was aborted: resuming", cp->env.task_name, (long long)id);
        cp->pause_id = 0;
    }
    if (cp->suspend_id == id) cp->suspend_id = 0;
}

int tm_cp_run_requests(tm_cp *cp) {
    if (!cp || !atomic_load_explicit(&cp->has_req, memory_order_acquire)) return FLINT_OK;
    pthread_mutex_lock(&cp->mu);
    req *r = cp->rhead;
    cp->rhead = cp->rtail = NULL;
    atomic_store(&cp->has_req, false);
    pthread_mutex_unlock(&cp->mu);
    int rc = FLINT_OK;
    while (r) {
        req *next = r->next;
        if (!rc) {
            switch (r->kind) {
            case REQ_TRIGGER: rc = on_trigger(cp, &r->barrier); break;
            case REQ_COMPLETE:
                on_complete(cp, r->id);
                rc = notify_ops(cp, r->id, true);
                break;
            case REQ_ABORTED:
                on_aborted(cp, r->id);
                rc = notify_ops(cp, r->id, false);
                break;
            }
        } else if (r->kind == REQ_TRIGGER) {
            decline(cp, r->id, R_CLOSING, "the task is failing");
        }
        free(r);
        r = next;
    }
    return rc;
}

/* ---- barriers from the input ------------------------------------------------------------------------------- */

static int64_t input_bytes(tm_cp *cp) {
    if (!cp->input) return 0;
    tm_input_metrics m;
    tm_input_metrics_get(cp->input, &m);
    return m.bytes_in;
}

/* The flat index of channel of gate, or -1 when there is no such channel. */
static int flat_channel(const tm_cp *cp, int gate, int channel) {
    if (gate < 0 || gate >= cp->n_gates || channel < 0 || channel >= tm_input_channel_count(cp->input, gate)) return -1;
    return cp->gate_base[gate] + channel;
}

static void end_of_data(tm_cp *cp, int gate, int channel) {
    int ch = flat_channel(cp, gate, channel);
    if (ch < 0 || cp->al.drained[ch]) return;
    tm_aligner_on_end_of_data(&cp->al, ch);
    cp->n_eod++;
}

static void decline_ended(tm_cp *cp, int64_t id) {
    decline(cp, id, R_EOS, "an input channel ended before the barrier of checkpoint %lld arrived", (long long)id);
}

/* Every channel delivered the barrier of b: snapshot. */
static int aligned(tm_cp *cp, const tm_barrier *b, int64_t alignment_ns) {
    if (!cp->running || cp->stopped) {
        decline(cp, b->checkpoint_id, R_CLOSING, "the task is finishing");
        return FLINT_OK;
    }
    return take_snapshot(cp, b, alignment_ns, input_bytes(cp) - cp->align_bytes0);
}

/* Carry out what the aligner said about barrier (or trigger) b, except blocking and the snapshot. */
static void align_actions(tm_cp *cp, const tm_align_result *r, const tm_barrier *b, bool was_pending) {
    if (r->aborted) decline(cp, r->aborted, R_SUBSUMED, "checkpoint %lld overtook it", (long long)b->checkpoint_id);
    if (r->ended) decline_ended(cp, r->ended);
    if (r->unblock_all) tm_input_unblock_all(cp->input);
    if ((!was_pending || r->aborted) && (r->trigger || tm_aligner_pending(&cp->al))) cp->align_bytes0 = input_bytes(cp);
}

/* A trigger for a non-source task: its upstream tasks have all finished (checkpoints after tasks
 * finish), so the checkpoint is taken once every channel ended, after the records still in them. */
static int on_trigger_downstream(tm_cp *cp, const tm_barrier *b) {
    if (!cp->final_checkpoints) {
        decline(cp, b->checkpoint_id, R_DECLINED, "TriggerCheckpoint reached a task that is not a source");
        return FLINT_OK;
    }
    if (b->checkpoint_id <= cp->al.max_seen) {
        decline(cp, b->checkpoint_id, R_SUBSUMED, "a newer checkpoint reached the task first");
        return FLINT_OK;
    }
    bool was_pending = tm_aligner_pending(&cp->al) != 0;
    tm_align_result r = tm_aligner_on_trigger(&cp->al, b, time_mono_ns());
    align_actions(cp, &r, b, was_pending);
    return r.trigger ? aligned(cp, b, r.alignment_ns) : FLINT_OK;
}

int tm_cp_on_event(tm_cp *cp, const tm_element *el) {
    if (!cp || el->len < 4) return FLINT_OK;
    uint32_t type = (uint32_t)el->data[0] | (uint32_t)el->data[1] << 8 | (uint32_t)el->data[2] << 16 |
                    (uint32_t)el->data[3] << 24;
    if (type == TM_EVENT_END_OF_DATA) {
        end_of_data(cp, el->gate, el->channel);
        return FLINT_OK;
    }
    if (type != TM_EVENT_CHECKPOINT_BARRIER) return FLINT_OK;
    tm_barrier b;
    if (!tm_barrier_decode(el->data + 4, el->len - 4, &b)) {
        log_warn("%s: a malformed checkpoint barrier on gate %d, channel %d: ignored", cp->env.task_name, el->gate,
                 el->channel);
        return FLINT_OK;
    }
    int ch = flat_channel(cp, el->gate, el->channel);
    if (ch < 0) return FLINT_OK;
    bool was_pending = tm_aligner_pending(&cp->al) != 0;
    tm_align_result r = tm_aligner_on_barrier(&cp->al, ch, &b, time_mono_ns());
    align_actions(cp, &r, &b, was_pending);
    if (r.block) tm_input_block(cp->input, el->gate, el->channel);
    return r.trigger ? aligned(cp, &b, r.alignment_ns) : FLINT_OK;
}

void tm_cp_input_ended(tm_cp *cp) {
    if (!cp) return;
    int64_t id = tm_aligner_abort(&cp->al, 0);
    if (!id) return;
    if (cp->input) tm_input_unblock_all(cp->input);
    decline(cp, id, R_EOS, "an input ended before the barrier of checkpoint %lld arrived", (long long)id);
}

int tm_cp_channel_ended(tm_cp *cp, int gate, int channel) {
    int ch = cp ? flat_channel(cp, gate, channel) : -1;
    if (ch < 0) return FLINT_OK;
    tm_align_result r = tm_aligner_on_end(&cp->al, ch, time_mono_ns());
    if (r.unblock_all) tm_input_unblock_all(cp->input);
    if (r.ended) decline_ended(cp, r.ended);
    return r.trigger ? aligned(cp, &cp->al.barrier, r.alignment_ns) : FLINT_OK;
}

int tm_cp_gate_ended(tm_cp *cp, int gate) {
    if (!cp || gate < 0 || gate >= cp->n_gates) return FLINT_OK;
    int n = tm_input_channel_count(cp->input, gate), rc = FLINT_OK;
    for (int i = 0; i < n && !rc; i++) rc = tm_cp_channel_ended(cp, gate, i);   /* those not reported alone */
    return rc;
}

bool tm_cp_input_drained(const tm_cp *cp) {
    return cp && cp->final_checkpoints && !cp->is_source && !cp->data_ended && cp->al.n > 0 &&
           cp->n_eod == cp->al.n && !tm_cp_suspended(cp);
}

bool tm_cp_end_data(tm_cp *cp) {
    if (!cp || !cp->final_checkpoints || cp->data_ended || tm_cp_suspended(cp)) return false;
    if (cp->is_source ? cp->stop_now || cp->pause_id : cp->al.n == 0 || cp->n_eod < cp->al.n) return false;
    cp->data_ended = true;
    return true;
}

bool tm_cp_final_checkpoint(const tm_cp *cp) { return cp && cp->data_ended; }

bool tm_cp_final_done(const tm_cp *cp) {
    /* Once every upstream task finished, the coordinator triggers this task itself. */
    return !cp || !cp->data_ended || cp->final_done;
}

bool tm_cp_source_paused(const tm_cp *cp) { return cp && cp->pause_id != 0; }

bool tm_cp_source_stop(const tm_cp *cp, bool *drain) {
    if (!cp || !cp->stop_now) return false;
    *drain = cp->stop_drain;
    return true;
}

bool tm_cp_suspend_pending(const tm_cp *cp) {
    return cp && !cp->is_source && cp->suspend_id && !cp->suspend_notified;
}

bool tm_cp_suspended(const tm_cp *cp) {
    return cp && ((cp->is_source && cp->stop_now && !cp->stop_drain) || (!cp->is_source && cp->suspend_id));
}

void tm_cp_stop(tm_cp *cp, bool finished) {
    if (!cp || cp->stopped) return;
    cp->stopped = true;
    /* what is queued or aligning can no longer complete */
    pthread_mutex_lock(&cp->mu);
    req *r = cp->rhead;
    cp->rhead = cp->rtail = NULL;
    atomic_store(&cp->has_req, false);
    pthread_mutex_unlock(&cp->mu);
    for (req *n; r; r = n) {
        n = r->next;
        if (r->kind == REQ_TRIGGER) decline(cp, r->id, R_CLOSING, "the task is finishing");
        free(r);
    }
    int64_t id = tm_aligner_abort(&cp->al, 0);
    if (id) decline(cp, id, R_CLOSING, "the task ended while aligning barriers");
    if (cp->thread_started) {
        /* A task that finished lets its queued snapshots complete (their acknowledgements still
         * count); a failed or canceled one gives them up. */
        pthread_mutex_lock(&cp->mu);
        if (!finished) {
            for (cp_job *j = cp->jhead; j; j = j->next) atomic_store(&j->aborted, true);
            if (cp->current) atomic_store(&cp->current->aborted, true);
        }
        while (finished && (cp->jhead || cp->current)) pthread_cond_wait(&cp->cv, &cp->mu);
        cp->thread_stop = true;
        pthread_cond_broadcast(&cp->cv);
        pthread_mutex_unlock(&cp->mu);
        pthread_join(cp->thread, NULL);
        cp->thread_started = false;
    }
    /* jobs left in the queue hold views of the state backends, which close next */
    for (cp_job *j = cp->jhead, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    cp->jhead = cp->jtail = NULL;
}

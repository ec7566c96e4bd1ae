/* The checkpoint coordinator (see jm_checkpoint.h and docs/checkpointing-protocol.md). */
#define _XOPEN_SOURCE 700
#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define LOG_MODULE "checkpoint"
#include "jm_checkpoint.h"
#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strutil.h"

#define CP_TYPE(x) FLINT__CHECKPOINT__CHECKPOINT_TYPE__##x
#define CP_REASON(x) FLINT__CHECKPOINT__FAILURE_REASON__##x

/* ---- configuration --------------------------------------------------------------------------- */

flint_config *jm_cp_job_config(const flint_config *cluster, const Flint__Graph__JobGraph *g, flint_err *err) {
    flint_config *cfg = cluster ? config_clone(cluster) : config_new();
    for (size_t i = 0; g && i < g->n_config; i++) {
        const Flint__Graph__KeyValue *kv = g->config[i];
        if (!kv->key || !kv->key[0] || config_find(kv->key) < 0) continue;   /* unknown: the job's own */
        if (config_set(cfg, kv->key, kv->value ? kv->value : "", "the job's configuration", err)) {
            config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

const char *jm_cp_retention_name(jm_cp_retention r) {
    switch (r) {
    case JM_CP_NO_EXTERNALIZED: return "NO_EXTERNALIZED_CHECKPOINTS";
    case JM_CP_DELETE_ON_CANCELLATION: return "DELETE_ON_CANCELLATION";
    case JM_CP_RETAIN_ON_CANCELLATION: return "RETAIN_ON_CANCELLATION";
    }
    return "UNKNOWN";
}

/* A relative directory of the configuration is taken relative to the jobmanager's working
 * directory: tasks get absolute paths. */
static void absolutize_dir(char *dir, size_t len) {
    if (dir[0] == '/' || !dir[0]) return;
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd)) return;
    char *abs = xasprintf("%s/%s", cwd, dir);
    if (strlen(abs) < len) memcpy(dir, abs, strlen(abs) + 1);
    free(abs);
}

int jm_cp_config_load(const flint_config *cfg, jm_cp_config *out, flint_err *err) {
    memset(out, 0, sizeof *out);
    out->interval_ms = config_int(cfg, CFG_CHECKPOINTING_INTERVAL);
    const char *mode = config_str(cfg, CFG_CHECKPOINTING_MODE);
    if (!strcasecmp(mode, "EXACTLY_ONCE"))
        out->exactly_once = true;
    else if (!strcasecmp(mode, "AT_LEAST_ONCE"))
        out->exactly_once = false;
    else
        return flint_err_set(err, FLINT_CONFIG,
                             "execution.checkpointing.mode: expected EXACTLY_ONCE or AT_LEAST_ONCE, got '%.60s'", mode);
    out->timeout_ms = config_int(cfg, CFG_CHECKPOINTING_TIMEOUT);
    out->min_pause_ms = config_int(cfg, CFG_CHECKPOINTING_MIN_PAUSE);
    out->max_concurrent = (int)config_int(cfg, CFG_CHECKPOINTING_MAX_CONCURRENT);
    out->tolerable_failed = (int)config_int(cfg, CFG_CHECKPOINTING_TOLERABLE_FAILED);
    out->num_retained = (int)config_int(cfg, CFG_STATE_CHECKPOINTS_NUM_RETAINED);
    out->after_tasks_finish = config_bool(cfg, CFG_CHECKPOINTING_AFTER_TASKS_FINISH);
    const char *ret = config_str(cfg, CFG_CHECKPOINTING_RETENTION);
    if (!strcasecmp(ret, "NO_EXTERNALIZED_CHECKPOINTS"))
        out->retention = JM_CP_NO_EXTERNALIZED;
    else if (!strcasecmp(ret, "DELETE_ON_CANCELLATION"))
        out->retention = JM_CP_DELETE_ON_CANCELLATION;
    else if (!strcasecmp(ret, "RETAIN_ON_CANCELLATION"))
        out->retention = JM_CP_RETAIN_ON_CANCELLATION;
    else
        return flint_err_set(err, FLINT_CONFIG,
                             "execution.checkpointing.externalized-checkpoint-retention: expected "
                             "NO_EXTERNALIZED_CHECKPOINTS, DELETE_ON_CANCELLATION or RETAIN_ON_CANCELLATION, got '%.60s'",
                             ret);
    const char *dir = config_str(cfg, CFG_STATE_CHECKPOINTS_DIR);
    if (dir && dir[0]) {
        snprintf(out->checkpoints_dir, sizeof out->checkpoints_dir, "%s", dir);
    } else {
        const char *tmp = config_str(cfg, CFG_IO_TMP_DIRS);
        size_t n = strcspn(tmp, ";,");
        snprintf(out->checkpoints_dir, sizeof out->checkpoints_dir, "%.*s/flint-checkpoints", (int)n,
                 n ? tmp : "/tmp");
        out->checkpoints_dir_default = true;
    }
    absolutize_dir(out->checkpoints_dir, sizeof out->checkpoints_dir);
    size_t n = strlen(out->checkpoints_dir);
    while (n > 1 && out->checkpoints_dir[n - 1] == '/') out->checkpoints_dir[--n] = '\0';
    snprintf(out->savepoints_dir, sizeof out->savepoints_dir, "%s", config_str(cfg, CFG_STATE_SAVEPOINTS_DIR));
    if (out->savepoints_dir[0]) absolutize_dir(out->savepoints_dir, sizeof out->savepoints_dir);
    snprintf(out->backend, sizeof out->backend, "%s", config_str(cfg, CFG_STATE_BACKEND_TYPE));
    out->incremental = config_bool(cfg, CFG_STATE_BACKEND_INCREMENTAL);
    return 0;
}

const char *jm_cp_reason_name(int reason) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&flint__checkpoint__failure_reason__descriptor, reason);
    return v ? v->name : "UNKNOWN";
}

bool jm_cp_reason_counts(int reason) {
    switch (reason) {
    case CP_REASON(DECLINED):
    case CP_REASON(ASYNC_EXCEPTION):
    case CP_REASON(EXPIRED):
    case CP_REASON(FINALIZE_FAILURE):
    case CP_REASON(IO_ERROR):
    case CP_REASON(TRIGGER_FAILED):
        return true;
    default:
        return false;
    }
}

static const char *type_name(int type) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&flint__checkpoint__checkpoint_type__descriptor, type);
    return v ? v->name : "UNKNOWN";
}

static bool is_savepoint_type(int type) { return type != CP_TYPE(CHECKPOINT); }

/* ---- file helpers ---------------------------------------------------------------------------- */

static int mkdirs(const char *path, flint_err *err) {
    char *failed = NULL;
    if (fs_mkdirs(path, 0755, &failed) == 0) return FLINT_OK;
    int rc = flint_err_set(err, FLINT_IO, "cannot create directory %s: %s", failed, strerror(errno));
    free(failed);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
        log_warn("cannot delete %s: %s", path, strerror(errno));
    return 0;
}

/* Delete a directory we made, with everything in it. */
static void rm_tree(const char *path) {
    if (!path || !path[0] || strcmp(path, "/") == 0) return;
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* ---- the shared-file registry ---------------------------------------------------------------- */

typedef struct shared_ent {
    char *path;                   /* NULL: empty slot; TOMB: deleted */
    int refs;
} shared_ent;

static char tomb_;
#define TOMB (&tomb_)

typedef struct shared_reg {
    shared_ent *slots;
    size_t cap, used;             /* used counts tombstones too */
} shared_reg;

static size_t reg_find(const shared_reg *r, const char *path, bool *found) {
    size_t mask = r->cap - 1, i = XXH64(path, strlen(path), 0) & mask, tomb = (size_t)-1;
    for (;; i = (i + 1) & mask) {
        char *p = r->slots[i].path;
        if (!p) {
            *found = false;
            return tomb != (size_t)-1 ? tomb : i;
        }
        if (p == TOMB) {
            if (tomb == (size_t)-1) tomb = i;
        } else if (strcmp(p, path) == 0) {
            *found = true;
            return i;
        }
    }
}

static void reg_grow(shared_reg *r) {
    shared_reg old = *r;
    r->cap = old.cap ? old.cap * 2 : 64;
    r->slots = xcalloc(r->cap, sizeof *r->slots);
    r->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].path || old.slots[i].path == TOMB) continue;
        bool found;
        size_t j = reg_find(r, old.slots[i].path, &found);
        r->slots[j] = old.slots[i];
        r->used++;
    }
    free(old.slots);
}

static int reg_refs(const shared_reg *r, const char *path) {
    if (!r->cap) return 0;
    bool found;
    size_t i = reg_find(r, path, &found);
    return found ? r->slots[i].refs : 0;
}

static void reg_ref(shared_reg *r, const char *path) {
    if ((r->used + 1) * 4 >= r->cap * 3) reg_grow(r);
    bool found;
    size_t i = reg_find(r, path, &found);
    if (found) {
        r->slots[i].refs++;
        return;
    }
    if (!r->slots[i].path) r->used++;
    r->slots[i].path = xstrdup(path);
    r->slots[i].refs = 1;
}

/* Drop one reference; returns true when it was the last. */
static bool reg_unref(shared_reg *r, const char *path) {
    if (!r->cap) return false;
    bool found;
    size_t i = reg_find(r, path, &found);
    if (!found) return false;
    if (--r->slots[i].refs > 0) return false;
    free(r->slots[i].path);
    r->slots[i].path = TOMB;
    return true;
}

static void reg_free(shared_reg *r) {
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i].path && r->slots[i].path != TOMB) free(r->slots[i].path);
    free(r->slots);
}

/* ---- the coordinator ------------------------------------------------------------------------- */

typedef struct cp_task {
    int v, s;                     /* vertex index, subtask */
    char exec_id[33];
    Flint__Checkpoint__AcknowledgeCheckpoint *ack;   /* owned; NULL until acknowledged */
} cp_task;

typedef struct cp_pending {
    int64_t id;
    int type;
    int64_t trigger_wall, trigger_mono, deadline_mono;
    char *dir;                    /* where its files go: chk-<n> or the savepoint directory */
    cp_task *tasks;
    int n_tasks, n_acked;
    jm_cp_record *rec;            /* in the history */
    int trigger;                  /* index of its savepoint request, -1 */
} cp_pending;

typedef struct cp_completed {
    int64_t id;
    bool savepoint;
    bool owned;                   /* ours to delete when subsumed or when the job ends */
    bool unusable;                /* a restore from it failed */
    char *why;                    /* unusable: why (names the file) */
    char *dir, *metadata_path;
    char **shared;                /* distinct shared files it references (registered) */
    int n_shared;
    jm_cp_record *rec;            /* its history record, if still in the history (not owned) */
} cp_completed;

/* An execution's acknowledgement in the latest completed checkpoint (for tasks that finish). */
typedef struct cp_last {
    char exec_id[33];
    Flint__Checkpoint__AcknowledgeCheckpoint *ack;   /* owned; NULL when none */
    char *dir;                    /* the checkpoint's directory its relative paths lie in */
} cp_last;

typedef struct summary_ring {
    int64_t v[JM_CP_SUMMARY];
    int n, head;
} summary_ring;

struct jm_cp {
    jm_job *job;                  /* not owned */
    jm_cp_config c;
    jm_cp_ops ops;
    void *ud;
    char *job_dir, *shared_dir;
    int64_t next_id;
    cp_pending **pending;         /* trigger order */
    int n_pending;
    cp_completed **completed;     /* oldest first */
    int n_completed;
    shared_reg reg;
    cp_last *last;                /* [job->n_execs], job order (vertices, then subtasks) */
    /* periodic triggering */
    bool armed;
    int64_t next_trigger_ms;
    int64_t last_completion_ms;   /* monotonic end of the latest checkpoint (completed or not); -1 */
    bool stopping;                /* a stop-with-savepoint completed: no more checkpoints */
    int consecutive_failures;
    bool warned_unsupported;
    jm_job_state last_state;
    /* statistics */
    int64_t n_total, n_completed_stat, n_failed, n_restored;
    jm_cp_record **history;       /* newest first, owned */
    int n_history;
    jm_cp_record *latest_completed, *latest_savepoint, *latest_failed;   /* owned copies */
    bool has_restored;
    int64_t restored_id, restore_ts;
    bool restored_sp;
    char *restored_path;
    summary_ring s_state, s_ckpt, s_e2e, s_align;
    jm_cp_trigger triggers[JM_CP_TRIGGERS];
    int n_triggers;               /* ring: the newest JM_CP_TRIGGERS */
};

jm_cp *jm_cp_new(jm_job *job, const jm_cp_config *c, const jm_cp_ops *ops, void *ud) {
    assert(job && c);
    jm_cp *cp = XNEW(jm_cp);
    cp->job = job;
    cp->c = *c;
    if (cp->c.max_concurrent < 1) cp->c.max_concurrent = 1;
    if (cp->c.num_retained < 1) cp->c.num_retained = 1;
    if (cp->c.timeout_ms < 1) cp->c.timeout_ms = 600000;
    if (ops) cp->ops = *ops;
    cp->ud = ud;
    cp->job_dir = xasprintf("%s/%s", c->checkpoints_dir, job->id);
    cp->shared_dir = xasprintf("%s/shared", cp->job_dir);
    cp->next_id = 1;
    cp->last_completion_ms = -1;
    cp->next_trigger_ms = -1;
    cp->last_state = job->state;
    cp->last = xcalloc((size_t)job->n_execs + 1, sizeof *cp->last);
    return cp;
}

static void record_free(jm_cp_record *r) {
    if (!r) return;
    free(r->external_path);
    free(r->failure_message);
    free(r);
}

static jm_cp_record *record_copy(const jm_cp_record *r) {
    jm_cp_record *c = XNEW(jm_cp_record);
    *c = *r;
    c->external_path = r->external_path ? xstrdup(r->external_path) : NULL;
    c->failure_message = r->failure_message ? xstrdup(r->failure_message) : NULL;
    return c;
}

static void pending_free(cp_pending *p) {
    for (int i = 0; i < p->n_tasks; i++)
        if (p->tasks[i].ack) flint__checkpoint__acknowledge_checkpoint__free_unpacked(p->tasks[i].ack, NULL);
    free(p->tasks);
    free(p->dir);
    free(p);
}

static void completed_free(cp_completed *c) {
    free(c->why);
    for (int i = 0; i < c->n_shared; i++) free(c->shared[i]);
    free(c->shared);
    free(c->dir);
    free(c->metadata_path);
    free(c);
}

void jm_cp_free(jm_cp *cp) {
    if (!cp) return;
    for (int i = 0; i < cp->n_pending; i++) pending_free(cp->pending[i]);
    free(cp->pending);
    for (int i = 0; i < cp->n_completed; i++) completed_free(cp->completed[i]);
    free(cp->completed);
    reg_free(&cp->reg);
    for (int i = 0; i < cp->job->n_execs; i++) {
        if (cp->last[i].ack) flint__checkpoint__acknowledge_checkpoint__free_unpacked(cp->last[i].ack, NULL);
        free(cp->last[i].dir);
    }
    free(cp->last);
    for (int i = 0; i < cp->n_history; i++) record_free(cp->history[i]);
    free(cp->history);
    record_free(cp->latest_completed);
    record_free(cp->latest_savepoint);
    record_free(cp->latest_failed);
    free(cp->restored_path);
    for (int i = 0; i < JM_CP_TRIGGERS; i++) {
        free(cp->triggers[i].location);
        free(cp->triggers[i].failure);
    }
    free(cp->job_dir);
    free(cp->shared_dir);
    free(cp);
}

const jm_cp_config *jm_cp_get_config(const jm_cp *cp) { return &cp->c; }
const char *jm_cp_job_dir(const jm_cp *cp) { return cp->job_dir; }
const char *jm_cp_shared_dir(const jm_cp *cp) { return cp->shared_dir; }
int jm_cp_pending_count(const jm_cp *cp) { return cp->n_pending; }
int jm_cp_completed_count(const jm_cp *cp) { return cp->n_completed; }
int64_t jm_cp_completed_id(const jm_cp *cp, int i) { return cp->completed[i]->id; }
const char *jm_cp_completed_dir(const jm_cp *cp, int i) { return cp->completed[i]->dir; }
int jm_cp_shared_refs(const jm_cp *cp, const char *path) { return reg_refs(&cp->reg, path); }
int64_t jm_cp_next_trigger_ms(const jm_cp *cp) { return cp->armed ? cp->next_trigger_ms : -1; }
int jm_cp_consecutive_failures(const jm_cp *cp) { return cp->consecutive_failures; }

/* ---- statistics helpers ---------------------------------------------------------------------- */

static void history_add(jm_cp *cp, jm_cp_record *r) {
    cp->history = xrealloc(cp->history, (size_t)(cp->n_history + 1) * sizeof *cp->history);
    memmove(cp->history + 1, cp->history, (size_t)cp->n_history * sizeof *cp->history);
    cp->history[0] = r;
    cp->n_history++;
    /* Drop the oldest records that are no longer in progress beyond the history size. */
    for (int i = cp->n_history - 1; i >= 0 && cp->n_history > JM_CP_HISTORY; i--) {
        if (cp->history[i]->status == JM_CP_IN_PROGRESS) continue;
        for (int k = 0; k < cp->n_completed; k++)
            if (cp->completed[k]->rec == cp->history[i]) cp->completed[k]->rec = NULL;
        record_free(cp->history[i]);
        memmove(cp->history + i, cp->history + i + 1, (size_t)(cp->n_history - i - 1) * sizeof *cp->history);
        cp->n_history--;
    }
}

static void ring_add(summary_ring *r, int64_t v) {
    r->v[(r->head + r->n) % JM_CP_SUMMARY] = v;
    if (r->n < JM_CP_SUMMARY) r->n++;
    else r->head = (r->head + 1) % JM_CP_SUMMARY;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static jm_cp_summary summarize(const summary_ring *r) {
    jm_cp_summary s = {0};
    s.count = r->n;
    if (!r->n) return s;
    int64_t *v = xmalloc((size_t)r->n * sizeof *v);
    int64_t sum = 0;
    for (int i = 0; i < r->n; i++) {
        v[i] = r->v[(r->head + i) % JM_CP_SUMMARY];
        sum += v[i];
    }
    qsort(v, (size_t)r->n, sizeof *v, cmp_i64);
    s.min = v[0];
    s.max = v[r->n - 1];
    s.avg = sum / r->n;
#define PCT(q) v[(int)((q) * (r->n - 1) + 0.5)]
    s.p50 = PCT(0.5);
    s.p90 = PCT(0.9);
    s.p95 = PCT(0.95);
    s.p99 = PCT(0.99);
    s.p999 = PCT(0.999);
#undef PCT
    free(v);
    return s;
}

void jm_cp_get_stats(const jm_cp *cp, jm_cp_stats *out) {
    memset(out, 0, sizeof *out);
    out->restored = cp->n_restored;
    out->total = cp->n_total;
    out->in_progress = cp->n_pending;
    out->completed = cp->n_completed_stat;
    out->failed = cp->n_failed;
    out->history = (const jm_cp_record *const *)cp->history;
    out->n_history = cp->n_history;
    out->latest_completed = cp->latest_completed;
    out->latest_savepoint = cp->latest_savepoint;
    out->latest_failed = cp->latest_failed;
    out->has_restored = cp->has_restored;
    out->restored_id = cp->restored_id;
    out->restore_timestamp = cp->restore_ts;
    out->restored_is_savepoint = cp->restored_sp;
    out->restored_path = cp->restored_path;
    out->state_size = summarize(&cp->s_state);
    out->checkpointed_size = summarize(&cp->s_ckpt);
    out->end_to_end_duration = summarize(&cp->s_e2e);
    out->alignment_buffered = summarize(&cp->s_align);
}

/* ---- savepoint requests ---------------------------------------------------------------------- */

static int trigger_new(jm_cp *cp, int type, bool cancel_job) {
    int i = cp->n_triggers++ % JM_CP_TRIGGERS;
    jm_cp_trigger *t = &cp->triggers[i];
    free(t->location);
    free(t->failure);
    memset(t, 0, sizeof *t);
    str_random_hex(t->id, 16);
    t->type = type;
    t->cancel_job = cancel_job;
    return i;
}

const jm_cp_trigger *jm_cp_find_trigger(const jm_cp *cp, const char *id) {
    if (!id) return NULL;
    int n = cp->n_triggers < JM_CP_TRIGGERS ? cp->n_triggers : JM_CP_TRIGGERS;
    for (int i = 0; i < n; i++)
        if (strcasecmp(cp->triggers[i].id, id) == 0) return &cp->triggers[i];
    return NULL;
}

static void trigger_done(jm_cp_trigger *t, bool ok, const char *location, const char *failure) {
    t->done = true;
    t->ok = ok;
    t->waiting_for_stop = false;
    free(t->location);
    free(t->failure);
    t->location = location ? xstrdup(location) : NULL;
    t->failure = failure ? xstrdup(failure) : NULL;
}

/* ---- executions ------------------------------------------------------------------------------ */

static jm_exec *task_exec(jm_cp *cp, const cp_task *t) {
    jm_exec *ex = &cp->job->vertices[t->v].execs[t->s];
    return strcmp(ex->id, t->exec_id) == 0 ? ex : NULL;
}

/* The acknowledgement a finished execution ex (index i in job order) contributes to new
 * checkpoints: its last one, taken after its end of data (with checkpoints after tasks finish,
 * a task finishes only once such a checkpoint completed). NULL when it has none. */
static const cp_last *finished_ack(const jm_cp *cp, int i, const jm_exec *ex) {
    const cp_last *l = &cp->last[i];
    if (!cp->c.after_tasks_finish || ex->state != JM_EXEC_FINISHED || !l->ack) return NULL;
    return strcmp(l->exec_id, ex->id) == 0 ? l : NULL;
}

/* Whether a checkpoint of type can start: every task RUNNING, or (checkpoints only) FINISHED with
 * an acknowledgement to reuse while some task still runs. */
static bool tasks_ready(const jm_cp *cp, int type) {
    const jm_job *job = cp->job;
    bool running = false;
    for (int v = 0, i = 0; v < job->n_vertices; v++)
        for (int s = 0; s < job->vertices[v].parallelism; s++, i++) {
            const jm_exec *ex = &job->vertices[v].execs[s];
            if (ex->state == JM_EXEC_RUNNING) {
                running = true;
                continue;
            }
            if (is_savepoint_type(type) || !finished_ack(cp, i, ex)) return false;
        }
    return running;
}

/* A FINISHED task of job, or NULL. */
static const jm_exec *finished_task(const jm_job *job) {
    for (int v = 0; v < job->n_vertices; v++)
        for (int s = 0; s < job->vertices[v].parallelism; s++)
            if (job->vertices[v].execs[s].state == JM_EXEC_FINISHED) return &job->vertices[v].execs[s];
    return NULL;
}

/* Whether the running task ex is triggered (Flink's checkpoint plan): a source, or (checkpoints
 * after tasks finish) a task whose every upstream subtask finished, which no barrier can reach
 * through the network any more. */
static bool trigger_target(const jm_cp *cp, const jm_exec *ex) {
    const jm_vertex *jv = ex->vertex;
    if (ex->state != JM_EXEC_RUNNING) return false;
    if (jv->n_in == 0) return true;
    if (!cp->c.after_tasks_finish) return false;
    for (int e = 0; e < jv->n_in; e++) {
        const jm_vertex *src = jm_job_vertex_by_graph_id(cp->job, jv->in_edges[e]->source_vertex);
        int *producers = xmalloc((size_t)src->parallelism * sizeof *producers), sub;
        int n = jm_gate_channels(cp->job, jv->in_edges[e], ex->subtask, producers, &sub);
        bool finished = true;
        for (int k = 0; k < n && finished; k++) finished = src->execs[producers[k]].state == JM_EXEC_FINISHED;
        free(producers);
        if (!finished) return false;
    }
    return true;
}

/* ---- abort ----------------------------------------------------------------------------------- */

static void remove_pending(jm_cp *cp, cp_pending *p) {
    for (int i = 0; i < cp->n_pending; i++)
        if (cp->pending[i] == p) {
            memmove(cp->pending + i, cp->pending + i + 1, (size_t)(cp->n_pending - i - 1) * sizeof *cp->pending);
            cp->n_pending--;
            return;
        }
}

/* Delete the shared files of ack that no completed checkpoint references. */
static void drop_unregistered_shared(jm_cp *cp, const Flint__Checkpoint__AcknowledgeCheckpoint *ack) {
    for (size_t o = 0; o < ack->n_operators; o++) {
        const Flint__Checkpoint__OperatorSubtaskState *st = ack->operators[o];
        for (size_t k = 0; k < st->n_keyed_state; k++)
            for (size_t f = 0; f < st->keyed_state[k]->n_shared_files; f++) {
                const Flint__Checkpoint__StreamStateHandle *h = st->keyed_state[k]->shared_files[f]->handle;
                if (!h || !h->path || h->path[0] != '/' || !under(h->path, cp->shared_dir)) continue;
                if (reg_refs(&cp->reg, h->path) == 0 && unlink(h->path) != 0 && errno != ENOENT)
                    log_warn("cannot delete %s: %s", h->path, strerror(errno));
            }
    }
}

static int64_t latest_completed_id(const jm_cp *cp) {
    return cp->n_completed ? cp->completed[cp->n_completed - 1]->id : 0;
}

/* Fail job if counted failures exceeded the tolerance; called last. */
static void check_tolerance(jm_cp *cp, const char *why, jm_time now) {
    if (cp->consecutive_failures <= cp->c.tolerable_failed) return;
    char *msg = xasprintf("Exceeded checkpoint tolerable failure threshold. The latest checkpoint failed due "
                          "to: %s (execution.checkpointing.tolerable-failed-checkpoints: %d)",
                          why, cp->c.tolerable_failed);
    cp->consecutive_failures = 0;
    log_warn("Job %s: %s", cp->job->id, msg);
    if (cp->ops.fail_job) cp->ops.fail_job(cp->ud, cp->job, msg, now);
    free(msg);
}

/* Give up pending checkpoint p. Returns whether the tolerance check must run (the caller calls
 * check_tolerance last). */
static bool abort_pending(jm_cp *cp, cp_pending *p, int reason, const char *message, jm_time now) {
    remove_pending(cp, p);
    bool sp = is_savepoint_type(p->type);
    char *msg = xasprintf("%s", message && message[0] ? message : jm_cp_reason_name(reason));
    log_info("%s %" PRId64 " of job %s aborted (%s): %s", sp ? "Savepoint" : "Checkpoint", p->id, cp->job->id,
             jm_cp_reason_name(reason), msg);
    jm_cp_record *r = p->rec;
    r->status = JM_CP_FAILED;
    r->failure_timestamp = now.wall_ms;
    r->failure_message = xstrdup(msg);
    r->failure_reason = reason;
    r->end_to_end_duration = now.wall_ms - r->trigger_timestamp;
    record_free(cp->latest_failed);
    cp->latest_failed = record_copy(r);
    cp->n_failed++;
    cp->last_completion_ms = now.mono_ms;

    Flint__Checkpoint__NotifyCheckpointAborted n = FLINT__CHECKPOINT__NOTIFY_CHECKPOINT_ABORTED__INIT;
    n.job_id = cp->job->id;
    n.checkpoint_id = p->id;
    n.reason = reason;
    n.message = msg;
    n.latest_completed_checkpoint_id = latest_completed_id(cp);
    for (int i = 0; i < p->n_tasks && cp->ops.notify_aborted; i++) {
        jm_exec *ex = task_exec(cp, &p->tasks[i]);
        if (!ex || ex->state != JM_EXEC_RUNNING || !ex->has_location) continue;
        n.execution_id = ex->id;
        cp->ops.notify_aborted(cp->ud, cp->job, ex, &n);
    }
    for (int i = 0; i < p->n_tasks; i++)
        if (p->tasks[i].ack) drop_unregistered_shared(cp, p->tasks[i].ack);
    rm_tree(p->dir);
    if (p->trigger >= 0) {
        char *f = xasprintf("%s %" PRId64 " failed: %s", sp ? "Savepoint" : "Checkpoint", p->id, msg);
        trigger_done(&cp->triggers[p->trigger], false, NULL, f);
        free(f);
    }
    bool counted = !sp && jm_cp_reason_counts(reason);
    if (counted) cp->consecutive_failures++;
    free(msg);
    pending_free(p);
    return counted;
}

/* Abort and run the tolerance check (for callers with nothing left to do). */
static void abort_and_check(jm_cp *cp, cp_pending *p, int reason, const char *message, jm_time now) {
    char *why = xasprintf("%s", message && message[0] ? message : jm_cp_reason_name(reason));
    if (abort_pending(cp, p, reason, message, now)) check_tolerance(cp, why, now);
    free(why);
}

/* ---- completed store ------------------------------------------------------------------------- */

/* Drop c from the store: release its shared files (deleting ours that nothing references any
 * more) and, when discard and it is ours, delete its directory. */
static void completed_release(jm_cp *cp, cp_completed *c, bool discard) {
    for (int i = 0; i < c->n_shared; i++)
        if (reg_unref(&cp->reg, c->shared[i]) && under(c->shared[i], cp->shared_dir)) {
            if (unlink(c->shared[i]) != 0 && errno != ENOENT)
                log_warn("cannot delete %s: %s", c->shared[i], strerror(errno));
        }
    if (discard && c->owned && !c->savepoint) {
        rm_tree(c->dir);
        if (c->rec) c->rec->discarded = true;
        if (cp->latest_completed && cp->latest_completed->id == c->id) cp->latest_completed->discarded = true;
    }
}

/* Register the distinct shared files of m (paths absolute). */
static void completed_register(jm_cp *cp, cp_completed *c, const Flint__Checkpoint__CheckpointMetadata *m) {
    for (size_t o = 0; o < m->n_operators; o++)
        for (size_t s = 0; s < m->operators[o]->n_subtasks; s++) {
            const Flint__Checkpoint__OperatorSubtaskState *st = m->operators[o]->subtasks[s];
            for (size_t k = 0; k < st->n_keyed_state; k++)
                for (size_t f = 0; f < st->keyed_state[k]->n_shared_files; f++) {
                    const Flint__Checkpoint__StreamStateHandle *h = st->keyed_state[k]->shared_files[f]->handle;
                    if (!h || !h->path || !h->path[0]) continue;
                    char *path = h->path[0] == '/' ? xstrdup(h->path) : xasprintf("%s/%s", c->dir, h->path);
                    bool dup = false;
                    for (int i = 0; i < c->n_shared && !dup; i++) dup = strcmp(c->shared[i], path) == 0;
                    if (dup) {
                        free(path);
                        continue;
                    }
                    c->shared = xrealloc(c->shared, (size_t)(c->n_shared + 1) * sizeof *c->shared);
                    c->shared[c->n_shared++] = path;
                    reg_ref(&cp->reg, path);
                }
        }
}

static void completed_add(jm_cp *cp, cp_completed *c) {
    cp->completed = xrealloc(cp->completed, (size_t)(cp->n_completed + 1) * sizeof *cp->completed);
    cp->completed[cp->n_completed++] = c;
    while (cp->n_completed > cp->c.num_retained) {
        cp_completed *old = cp->completed[0];
        memmove(cp->completed, cp->completed + 1, (size_t)(cp->n_completed - 1) * sizeof *cp->completed);
        cp->n_completed--;
        log_debug("checkpoint %" PRId64 " of job %s is subsumed", old->id, cp->job->id);
        completed_release(cp, old, true);
        completed_free(old);
    }
}

/* Build the metadata of p from its acknowledgements. */
static Flint__Checkpoint__CheckpointMetadata *build_metadata(jm_cp *cp, cp_pending *p, jm_time now) {
    Flint__Checkpoint__CheckpointMetadata *m = xmalloc(sizeof *m);
    flint__checkpoint__checkpoint_metadata__init(m);
    m->format_version = JM_METADATA_VERSION;
    m->job_id = xstrdup(cp->job->id);
    m->job_name = xstrdup(cp->job->name);
    m->checkpoint_id = p->id;
    m->type = p->type;
    m->is_savepoint = is_savepoint_type(p->type);
    m->trigger_timestamp = p->trigger_wall;
    m->completion_timestamp = now.wall_ms;
    m->state_backend = xstrdup(cp->c.backend);
    m->incremental = cp->c.incremental && !m->is_savepoint;
    for (int v = 0; v < cp->job->n_vertices; v++) {
        const jm_vertex *jv = &cp->job->vertices[v];
        for (size_t k = 0; k < jv->def->n_operators; k++) {
            const Flint__Graph__OperatorDef *op = jv->def->operators[k];
            Flint__Checkpoint__OperatorState *os = xmalloc(sizeof *os);
            flint__checkpoint__operator_state__init(os);
            os->operator_id = xstrdup(op->operator_id);
            os->uid = xstrdup(op->uid ? op->uid : "");
            os->name = xstrdup(op->name ? op->name : "");
            os->vertex_id = jv->def->id;
            os->parallelism = jv->parallelism;
            os->max_parallelism = jv->max_parallelism;
            for (int t = 0; t < p->n_tasks; t++) {
                if (p->tasks[t].v != v || !p->tasks[t].ack) continue;
                const Flint__Checkpoint__AcknowledgeCheckpoint *a = p->tasks[t].ack;
                for (size_t o = 0; o < a->n_operators; o++) {
                    if (strcmp(a->operators[o]->operator_id, op->operator_id) != 0) continue;
                    Flint__Checkpoint__OperatorSubtaskState *st = jm_msg_copy(a->operators[o]);
                    st->subtask = p->tasks[t].s;
                    os->subtasks = xrealloc(os->subtasks, (os->n_subtasks + 1) * sizeof *os->subtasks);
                    os->subtasks[os->n_subtasks++] = st;
                }
            }
            m->operators = xrealloc(m->operators, (m->n_operators + 1) * sizeof *m->operators);
            m->operators[m->n_operators++] = os;
        }
    }
    return m;
}

static void notify_complete(jm_cp *cp, int64_t id, int type, int64_t ts) {
    if (!cp->ops.notify_complete) return;
    Flint__Checkpoint__NotifyCheckpointComplete n = FLINT__CHECKPOINT__NOTIFY_CHECKPOINT_COMPLETE__INIT;
    n.job_id = cp->job->id;
    n.checkpoint_id = id;
    n.timestamp = ts;
    n.type = type;
    for (int v = 0; v < cp->job->n_vertices; v++)
        for (int s = 0; s < cp->job->vertices[v].parallelism; s++) {
            jm_exec *ex = &cp->job->vertices[v].execs[s];
            if (ex->state != JM_EXEC_RUNNING || !ex->has_location) continue;
            n.execution_id = ex->id;
            cp->ops.notify_complete(cp->ud, cp->job, ex, &n);
        }
}

/* Count acknowledgement m of p in its statistics. */
static void count_ack(cp_pending *p, const Flint__Checkpoint__AcknowledgeCheckpoint *m, jm_time now) {
    p->n_acked++;
    jm_cp_record *r = p->rec;
    r->num_acknowledged_subtasks = p->n_acked;
    r->latest_ack_timestamp = now.wall_ms;
    r->end_to_end_duration = now.wall_ms - p->trigger_wall;
    int64_t size = 0, ckpt = 0;
    for (size_t o = 0; o < m->n_operators; o++) {
        size += m->operators[o]->state_size;
        ckpt += m->operators[o]->checkpointed_size;
    }
    if (m->metrics) {
        if (m->metrics->state_size > size) size = m->metrics->state_size;
        if (m->metrics->checkpointed_size > ckpt) ckpt = m->metrics->checkpointed_size;
        r->alignment_buffered += m->metrics->bytes_processed_during_alignment;
        if (m->metrics->alignment_duration_ms > r->alignment_duration_max)
            r->alignment_duration_max = m->metrics->alignment_duration_ms;
        if (m->metrics->sync_duration_ms > r->sync_duration_max) r->sync_duration_max = m->metrics->sync_duration_ms;
        if (m->metrics->async_duration_ms > r->async_duration_max)
            r->async_duration_max = m->metrics->async_duration_ms;
    }
    r->state_size += size;
    r->checkpointed_size += ckpt;
}

/* Remember each task's acknowledgement of completed checkpoint or savepoint p (tasks that finish
 * later, on its notification, are counted with it in the next checkpoints). p->tasks is in job
 * order, as cp->last. */
static void keep_last_acks(jm_cp *cp, cp_pending *p) {
    assert(p->n_tasks == cp->job->n_execs);
    for (int i = 0; i < p->n_tasks; i++) {
        cp_last *l = &cp->last[i];
        if (l->ack) flint__checkpoint__acknowledge_checkpoint__free_unpacked(l->ack, NULL);
        free(l->dir);
        snprintf(l->exec_id, sizeof l->exec_id, "%s", p->tasks[i].exec_id);
        l->ack = p->tasks[i].ack;
        p->tasks[i].ack = NULL;
        l->dir = xstrdup(p->dir);
    }
}

/* Every task acknowledged p: write its metadata, store it, notify. */
static void complete_pending(jm_cp *cp, cp_pending *p, jm_time now) {
    bool sp = is_savepoint_type(p->type);
    Flint__Checkpoint__CheckpointMetadata *m = build_metadata(cp, p, now);
    cp_completed *c = XNEW(cp_completed);
    c->id = p->id;
    c->savepoint = sp;
    c->owned = !sp;
    c->dir = xstrdup(p->dir);
    c->metadata_path = xasprintf("%s/%s", p->dir, JM_METADATA_FILE);
    if (!sp) completed_register(cp, c, m);
    flint_err err = {0};
    int rc = jm_metadata_write(p->dir, m, &err);
    flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
    if (rc) {
        completed_release(cp, c, false);
        completed_free(c);
        abort_and_check(cp, p, CP_REASON(FINALIZE_FAILURE), err.msg, now);
        return;
    }
    remove_pending(cp, p);
    jm_cp_record *r = p->rec;
    r->status = JM_CP_COMPLETED;
    r->end_to_end_duration = now.wall_ms - p->trigger_wall;
    r->external_path = xstrdup(p->dir);
    c->rec = r;
    cp->n_completed_stat++;
    cp->consecutive_failures = 0;
    cp->last_completion_ms = now.mono_ms;
    ring_add(&cp->s_state, r->state_size);
    ring_add(&cp->s_ckpt, r->checkpointed_size);
    ring_add(&cp->s_e2e, r->end_to_end_duration);
    ring_add(&cp->s_align, r->alignment_buffered);
    if (sp) {
        record_free(cp->latest_savepoint);
        cp->latest_savepoint = record_copy(r);
    } else {
        record_free(cp->latest_completed);
        cp->latest_completed = record_copy(r);
    }
    log_info("Completed %s %" PRId64 " for job %s (%" PRId64 " bytes, %" PRId64 " ms) in %s",
             sp ? "savepoint" : "checkpoint", p->id, cp->job->id, r->state_size, r->end_to_end_duration, p->dir);
    completed_add(cp, c);
    /* Older pending checkpoints are subsumed (savepoints go on). */
    for (int i = 0; i < cp->n_pending;) {
        cp_pending *o = cp->pending[i];
        if (o->id < p->id && !is_savepoint_type(o->type)) {
            abort_pending(cp, o, CP_REASON(SUBSUMED), "Checkpoint subsumed by a newer completed checkpoint", now);
            i = 0;
        } else {
            i++;
        }
    }
    notify_complete(cp, p->id, p->type, p->trigger_wall);
    keep_last_acks(cp, p);
    int t = p->trigger;
    int type = p->type;
    pending_free(p);
    if (t >= 0) {
        jm_cp_trigger *tr = &cp->triggers[t];
        if (type == CP_TYPE(SAVEPOINT)) {
            trigger_done(tr, true, c->dir, NULL);
            if (tr->cancel_job && cp->ops.cancel_job) cp->ops.cancel_job(cp->ud, cp->job, now);
        } else {
            free(tr->location);
            tr->location = xstrdup(c->dir);
            tr->waiting_for_stop = true;
            tr->stop_deadline_ms = now.mono_ms + cp->c.timeout_ms;
            cp->stopping = true;
        }
    }
}

/* ---- triggering ------------------------------------------------------------------------------ */

/* Copy file src to dst (a new file). */
static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wbx") : NULL;
    char buf[65536];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = -1;
    if (in && ferror(in)) rc = -1;
    if (out && (fflush(out) != 0 || fsync(fileno(out)) != 0)) rc = -1;
    int e = errno;
    if (in) fclose(in);
    if (out && fclose(out) != 0) rc = -1;
    errno = e;
    return rc;
}

/* Link (across file systems: copy) the file of h, a path relative to from, into to under the
 * same name. */
static int link_handle(const Flint__Checkpoint__StreamStateHandle *h, const char *from, const char *to,
                       flint_err *err) {
    if (!h || !h->path || !h->path[0] || h->path[0] == '/') return 0;   /* inline, or absolute: stays */
    char *src = xasprintf("%s/%s", from, h->path), *dst = xasprintf("%s/%s", to, h->path);
    int rc = 0;
    if (link(src, dst) != 0 && errno != EEXIST && (errno != EXDEV || copy_file(src, dst) != 0))
        rc = flint_err_set(err, FLINT_IO, "cannot link %s to %s: %s", src, dst, strerror(errno));
    free(src);
    free(dst);
    return rc;
}

/* Link every file of ack that lies in from (relative paths) into to. */
static int link_ack_files(const Flint__Checkpoint__AcknowledgeCheckpoint *ack, const char *from, const char *to,
                          flint_err *err) {
    int rc = 0;
    for (size_t o = 0; o < ack->n_operators && !rc; o++) {
        const Flint__Checkpoint__OperatorSubtaskState *st = ack->operators[o];
        for (size_t k = 0; k < st->n_keyed_state && !rc; k++) {
            const Flint__Checkpoint__KeyedStateHandle *kh = st->keyed_state[k];
            rc = link_handle(kh->file, from, to, err);
            if (!rc) rc = link_handle(kh->meta_data, from, to, err);
            for (size_t f = 0; f < kh->n_private_files && !rc; f++)
                rc = link_handle(kh->private_files[f]->handle, from, to, err);
        }
        for (size_t k = 0; k < st->n_operator_state && !rc; k++)
            rc = link_handle(st->operator_state[k]->file, from, to, err);
    }
    return rc;
}

/* Checkpoints after tasks finished: each finished task of p counts as acknowledged with its last
 * acknowledgement (taken after its end of data: restoring it replays nothing), its files linked
 * into p's directory so that they outlive the checkpoint they were written for. */
static int reuse_finished(jm_cp *cp, cp_pending *p, jm_time now, flint_err *err) {
    for (int i = 0; i < p->n_tasks; i++) {
        jm_exec *ex = task_exec(cp, &p->tasks[i]);
        const cp_last *l = ex ? finished_ack(cp, i, ex) : NULL;
        if (!l) continue;
        int rc = link_ack_files(l->ack, l->dir, p->dir, err);
        if (rc) return rc;
        Flint__Checkpoint__AcknowledgeCheckpoint *a = jm_msg_copy(l->ack);
        a->checkpoint_id = p->id;
        if (a->metrics) flint__checkpoint__subtask_checkpoint_metrics__free_unpacked(a->metrics, NULL);
        a->metrics = NULL;   /* nothing was written, aligned or waited for */
        for (size_t o = 0; o < a->n_operators; o++) a->operators[o]->checkpointed_size = 0;
        p->tasks[i].ack = a;
        count_ack(p, a, now);
    }
    return 0;
}

static int trigger(jm_cp *cp, int type, const char *sp_dir, int trigger_idx, jm_time now, int64_t *out_id,
                   flint_err *err) {
    jm_job *job = cp->job;
    if (job->state != JM_JOB_RUNNING)
        return flint_err_set(err, FLINT_STATE, "Job %s is %s, not RUNNING: no %s can be taken", job->id,
                             jm_job_state_name(job->state), is_savepoint_type(type) ? "savepoint" : "checkpoint");
    const jm_exec *fin = is_savepoint_type(type) ? finished_task(job) : NULL;
    if (fin) {
        char task[300];
        jm_exec_task_name(fin, task, sizeof task);
        return flint_err_set(err, FLINT_STATE, "Job %s cannot take a savepoint: task %s has FINISHED (savepoints "
                             "need every task RUNNING; checkpoints go on)", job->id, task);
    }
    if (!tasks_ready(cp, type))
        return flint_err_set(err, FLINT_STATE, "Not all required tasks of job %s are currently running", job->id);
    cp_pending *p = XNEW(cp_pending);
    p->id = cp->next_id++;
    p->type = type;
    p->trigger_wall = now.wall_ms;
    p->trigger_mono = now.mono_ms;
    p->deadline_mono = now.mono_ms + cp->c.timeout_ms;
    p->trigger = trigger_idx;
    p->n_tasks = job->n_execs;
    p->tasks = xcalloc((size_t)job->n_execs, sizeof *p->tasks);
    int n = 0;
    for (int v = 0; v < job->n_vertices; v++)
        for (int s = 0; s < job->vertices[v].parallelism; s++) {
            p->tasks[n].v = v;
            p->tasks[n].s = s;
            snprintf(p->tasks[n].exec_id, 33, "%s", job->vertices[v].execs[s].id);
            n++;
        }
    jm_cp_record *r = XNEW(jm_cp_record);
    r->id = p->id;
    r->status = JM_CP_IN_PROGRESS;
    r->type = type;
    r->is_savepoint = is_savepoint_type(type);
    r->trigger_timestamp = now.wall_ms;
    r->num_subtasks = p->n_tasks;
    p->rec = r;
    history_add(cp, r);
    cp->n_total++;
    cp->pending = xrealloc(cp->pending, (size_t)(cp->n_pending + 1) * sizeof *cp->pending);
    cp->pending[cp->n_pending++] = p;
    if (trigger_idx >= 0) cp->triggers[trigger_idx].checkpoint_id = p->id;
    if (out_id) *out_id = p->id;

    if (is_savepoint_type(type)) {
        char dir[2048];
        jm_savepoint_dir_name(sp_dir, job->id, dir, sizeof dir);
        p->dir = xstrdup(dir);
    } else {
        p->dir = xasprintf("%s/chk-%" PRId64, cp->job_dir, p->id);
    }
    flint_err e = {0};
    if (mkdirs(p->dir, &e) || (!is_savepoint_type(type) && mkdirs(cp->shared_dir, &e))) {
        char *d = p->dir;
        p->dir = NULL;   /* not ours: nothing to delete */
        abort_and_check(cp, p, CP_REASON(IO_ERROR), e.msg, now);
        free(d);
        return 0;
    }
    if (reuse_finished(cp, p, now, &e)) {
        abort_and_check(cp, p, CP_REASON(IO_ERROR), e.msg, now);
        return 0;
    }
    log_debug("Triggering %s %" PRId64 " of job %s", type_name(type), p->id, job->id);
    Flint__Checkpoint__TriggerCheckpoint m = FLINT__CHECKPOINT__TRIGGER_CHECKPOINT__INIT;
    m.job_id = job->id;
    m.checkpoint_id = p->id;
    m.timestamp = now.wall_ms;
    m.type = type;
    m.target_directory = p->dir;
    m.shared_directory = is_savepoint_type(type) ? "" : cp->shared_dir;
    m.mode = cp->c.exactly_once ? FLINT__CHECKPOINT__CHECKPOINTING_MODE__EXACTLY_ONCE
                                : FLINT__CHECKPOINT__CHECKPOINTING_MODE__AT_LEAST_ONCE;
    int64_t id = p->id;
    for (int v = 0; v < job->n_vertices; v++) {
        jm_vertex *jv = &job->vertices[v];
        for (int s = 0; s < jv->parallelism; s++) {
            jm_exec *ex = &jv->execs[s];
            if (!trigger_target(cp, ex)) continue;   /* finished (acknowledged already), or a barrier comes */
            m.execution_id = ex->id;
            flint_err te = {0};
            int rc = cp->ops.trigger ? cp->ops.trigger(cp->ud, job, ex, &m, &te)
                                     : flint_err_set(&te, FLINT_UNSUPPORTED, "no checkpoint transport");
            if (rc) {
                jm_cp_trigger_result(cp, ex->id, id, rc, te.msg, now);
                return 0;   /* the checkpoint is aborted; its outcome is in the statistics */
            }
        }
    }
    return 0;
}

int jm_cp_trigger_checkpoint(jm_cp *cp, jm_time now, int64_t *id, flint_err *err) {
    return trigger(cp, CP_TYPE(CHECKPOINT), NULL, -1, now, id, err);
}

int jm_cp_trigger_savepoint(jm_cp *cp, int type, const char *dir, bool cancel_job, jm_time now,
                            char trigger_id[33], flint_err *err) {
    if (type != CP_TYPE(SAVEPOINT) && type != CP_TYPE(SAVEPOINT_SUSPEND) && type != CP_TYPE(SAVEPOINT_TERMINATE))
        return flint_err_set(err, FLINT_INVALID, "Unknown savepoint type %d", type);
    if (!dir || !dir[0]) dir = cp->c.savepoints_dir;
    if (!dir[0])
        return flint_err_set(err, FLINT_INVALID,
                             "No savepoint directory configured. You can either specify a directory "
                             "(flint savepoint <jobid> DIR, flint stop --savepoint-path DIR) or configure a "
                             "cluster-wide default via key 'state.savepoints.dir'.");
    if (dir[0] != '/')
        return flint_err_set(err, FLINT_INVALID, "The savepoint directory '%.200s' is not an absolute path", dir);
    if (cp->stopping)
        return flint_err_set(err, FLINT_STATE, "Job %s is stopping with a savepoint", cp->job->id);
    int t = trigger_new(cp, type, cancel_job);
    int rc = trigger(cp, type, dir, t, now, NULL, err);
    if (rc) {
        trigger_done(&cp->triggers[t], false, NULL, err->msg);
        return rc;
    }
    snprintf(trigger_id, 33, "%s", cp->triggers[t].id);
    return 0;
}

/* ---- messages from tasks --------------------------------------------------------------------- */

static cp_pending *find_pending(const jm_cp *cp, int64_t id) {
    for (int i = 0; i < cp->n_pending; i++)
        if (cp->pending[i]->id == id) return cp->pending[i];
    return NULL;
}

static cp_task *find_task(cp_pending *p, const char *exec_id) {
    for (int i = 0; i < p->n_tasks; i++)
        if (exec_id && strcmp(p->tasks[i].exec_id, exec_id) == 0) return &p->tasks[i];
    return NULL;
}

int jm_cp_acknowledge(jm_cp *cp, const Flint__Checkpoint__AcknowledgeCheckpoint *m, jm_time now, flint_err *err) {
    cp_pending *p = find_pending(cp, m->checkpoint_id);
    if (!p) {
        if (m->checkpoint_id > 0 && m->checkpoint_id < cp->next_id) {
            log_debug("late acknowledgement of checkpoint %" PRId64 " from %s: discarding its state",
                      m->checkpoint_id, m->execution_id);
            drop_unregistered_shared(cp, m);
            return 0;
        }
        return flint_err_set(err, FLINT_NOT_FOUND, "Checkpoint %" PRId64 " of job %s is unknown", m->checkpoint_id,
                             cp->job->id);
    }
    cp_task *t = find_task(p, m->execution_id);
    if (!t)
        return flint_err_set(err, FLINT_NOT_FOUND, "Execution %.40s is not part of checkpoint %" PRId64 " of job %s",
                             m->execution_id ? m->execution_id : "", m->checkpoint_id, cp->job->id);
    if (t->ack) {
        log_debug("duplicate acknowledgement of checkpoint %" PRId64 " from %s", m->checkpoint_id, t->exec_id);
        return 0;
    }
    for (size_t o = 0; o < m->n_operators; o++) {
        const Flint__Checkpoint__OperatorSubtaskState *st = m->operators[o];
        const jm_vertex *v = &cp->job->vertices[t->v];
        bool known = false;
        for (size_t k = 0; k < v->def->n_operators && !known; k++)
            known = st->operator_id && strcmp(v->def->operators[k]->operator_id, st->operator_id) == 0;
        if (!known)
            return flint_err_set(err, FLINT_INVALID,
                                 "Acknowledgement of checkpoint %" PRId64 " names operator %.40s, which is not in "
                                 "vertex '%s'", m->checkpoint_id, st->operator_id ? st->operator_id : "", v->name);
        for (size_t k = 0; k < st->n_keyed_state; k++) {
            const Flint__Checkpoint__KeyGroupRange *r = st->keyed_state[k]->key_group_range;
            if (!r || r->start < 0 || r->end < r->start || r->end >= v->max_parallelism)
                return flint_err_set(err, FLINT_INVALID,
                                     "Acknowledgement of checkpoint %" PRId64 " has a keyed state handle with a "
                                     "bad key-group range", m->checkpoint_id);
        }
    }
    t->ack = jm_msg_copy(m);
    count_ack(p, m, now);
    if (p->n_acked == p->n_tasks) complete_pending(cp, p, now);
    return 0;
}

int jm_cp_decline(jm_cp *cp, const Flint__Checkpoint__DeclineCheckpoint *m, jm_time now, flint_err *err) {
    cp_pending *p = find_pending(cp, m->checkpoint_id);
    if (!p) {
        if (m->checkpoint_id > 0 && m->checkpoint_id < cp->next_id) return 0;   /* already over */
        return flint_err_set(err, FLINT_NOT_FOUND, "Checkpoint %" PRId64 " of job %s is unknown", m->checkpoint_id,
                             cp->job->id);
    }
    cp_task *t = find_task(p, m->execution_id);
    if (!t)
        return flint_err_set(err, FLINT_NOT_FOUND, "Execution %.40s is not part of checkpoint %" PRId64 " of job %s",
                             m->execution_id ? m->execution_id : "", m->checkpoint_id, cp->job->id);
    jm_exec *ex = task_exec(cp, t);
    char task[300] = "?";
    if (ex) jm_exec_task_name(ex, task, sizeof task);
    char *msg = xasprintf("Task %s declined checkpoint %" PRId64 ": %s", task, m->checkpoint_id,
                          m->message && m->message[0] ? m->message : jm_cp_reason_name(m->reason));
    abort_and_check(cp, p, m->reason, msg, now);
    free(msg);
    return 0;
}

void jm_cp_trigger_result(jm_cp *cp, const char *exec_id, int64_t checkpoint_id, int status, const char *message,
                          jm_time now) {
    if (status == FLINT_OK) return;
    cp_pending *p = find_pending(cp, checkpoint_id);
    if (!p) return;
    cp_task *t = find_task(p, exec_id);
    jm_exec *ex = t ? task_exec(cp, t) : NULL;
    char task[300] = "a source task";
    if (ex) jm_exec_task_name(ex, task, sizeof task);
    int reason = status == FLINT_UNSUPPORTED ? CP_REASON(UNSUPPORTED) : CP_REASON(TRIGGER_FAILED);
    if (reason == CP_REASON(UNSUPPORTED) && !cp->warned_unsupported) {
        cp->warned_unsupported = true;
        log_warn("Job %s: the taskmanager of %s cannot take checkpoints (%s); checkpoints of this job are "
                 "declined and the job runs on without them", cp->job->id, task, message ? message : "");
    }
    char *msg = xasprintf("Could not trigger %s %" PRId64 " at %s: %s",
                          is_savepoint_type(p->type) ? "savepoint" : "checkpoint", checkpoint_id, task,
                          message && message[0] ? message : flint_strerror(status));
    abort_and_check(cp, p, reason, msg, now);
    free(msg);
}

/* ---- job state and time ---------------------------------------------------------------------- */

static void abort_all(jm_cp *cp, int reason, const char *msg, jm_time now) {
    while (cp->n_pending > 0) abort_pending(cp, cp->pending[0], reason, msg, now);
}

/* The job ended: delete what the retention policy does not keep. */
static void apply_retention(jm_cp *cp, jm_job_state st) {
    bool discard = st == JM_JOB_FINISHED || (st == JM_JOB_CANCELED && cp->c.retention != JM_CP_RETAIN_ON_CANCELLATION) ||
                   (st == JM_JOB_FAILED && cp->c.retention == JM_CP_NO_EXTERNALIZED) || st == JM_JOB_SUSPENDED;
    if (st == JM_JOB_SUSPENDED) discard = false;
    if (!discard) {
        if (cp->n_completed)
            log_info("Job %s is %s: keeping its retained checkpoints in %s (%s)", cp->job->id, jm_job_state_name(st),
                     cp->job_dir, jm_cp_retention_name(cp->c.retention));
        return;
    }
    while (cp->n_completed > 0) {
        cp_completed *c = cp->completed[--cp->n_completed];
        completed_release(cp, c, true);
        completed_free(c);
    }
    rmdir(cp->shared_dir);   /* only when empty */
    rmdir(cp->job_dir);
}

void jm_cp_job_state(jm_cp *cp, jm_time now) {
    jm_job_state st = cp->job->state;
    if (st == cp->last_state) return;
    cp->last_state = st;
    if (st == JM_JOB_RUNNING) {
        cp->stopping = false;
        cp->armed = cp->c.interval_ms > 0;
        cp->next_trigger_ms = now.mono_ms + cp->c.interval_ms;
        return;
    }
    cp->armed = false;
    bool terminal = jm_job_state_terminal(st);
    char *msg = xasprintf("The job is %s", jm_job_state_name(st));
    abort_all(cp, terminal ? CP_REASON(JOB_FAILOVER) : CP_REASON(JOB_FAILOVER), msg, now);
    free(msg);
    int n = cp->n_triggers < JM_CP_TRIGGERS ? cp->n_triggers : JM_CP_TRIGGERS;
    for (int i = 0; i < n; i++) {
        jm_cp_trigger *t = &cp->triggers[i];
        if (!t->waiting_for_stop) continue;
        if (st == JM_JOB_FINISHED) {
            char *loc = xstrdup(t->location);
            trigger_done(t, true, loc, NULL);
            free(loc);
        } else {
            char *f = xasprintf("The savepoint %s was written, but the job went %s instead of finishing",
                                t->location ? t->location : "", jm_job_state_name(st));
            trigger_done(t, false, NULL, f);
            free(f);
        }
    }
    if (terminal) apply_retention(cp, st);
}

void jm_cp_task_state(jm_cp *cp, const jm_exec *ex, jm_exec_state old, jm_time now) {
    if (old != JM_EXEC_RUNNING || ex->state == JM_EXEC_RUNNING) return;
    int reason = ex->state == JM_EXEC_FINISHED ? CP_REASON(NOT_ALL_TASKS_RUNNING) : CP_REASON(JOB_FAILOVER);
    for (int i = 0; i < cp->n_pending;) {
        cp_pending *p = cp->pending[i];
        const cp_task *t = find_task(p, ex->id);
        if (!t || t->ack) {
            i++;
            continue;
        }
        char task[300];
        jm_exec_task_name(ex, task, sizeof task);
        char *msg = xasprintf("Task %s switched to %s before it acknowledged %s %" PRId64, task,
                              jm_exec_state_name(ex->state), is_savepoint_type(p->type) ? "savepoint" : "checkpoint",
                              p->id);
        bool counted = abort_pending(cp, p, reason, msg, now);   /* removes p from cp->pending */
        assert(!counted);
        (void)counted;
        free(msg);
    }
}

void jm_cp_tick(jm_cp *cp, jm_time now) {
    for (int i = 0; i < cp->n_pending;) {
        cp_pending *p = cp->pending[i];
        if (now.mono_ms < p->deadline_mono) {
            i++;
            continue;
        }
        abort_and_check(cp, p, CP_REASON(EXPIRED), "Checkpoint expired before completing.", now);
        i = 0;
        if (cp->job->state != JM_JOB_RUNNING) return;
    }
    int n = cp->n_triggers < JM_CP_TRIGGERS ? cp->n_triggers : JM_CP_TRIGGERS;
    for (int i = 0; i < n; i++) {
        jm_cp_trigger *t = &cp->triggers[i];
        if (!t->waiting_for_stop || now.mono_ms < t->stop_deadline_ms) continue;
        char *f = xasprintf("The savepoint %s was written, but the job did not finish within %" PRId64 " ms "
                            "(execution.checkpointing.timeout); it keeps running",
                            t->location ? t->location : "", cp->c.timeout_ms);
        trigger_done(t, false, NULL, f);
        free(f);
        cp->stopping = false;
    }
    if (!cp->armed || cp->stopping || cp->job->state != JM_JOB_RUNNING || now.mono_ms < cp->next_trigger_ms) return;
    int running = 0;
    for (int i = 0; i < cp->n_pending; i++)
        if (!is_savepoint_type(cp->pending[i]->type)) running++;
    if (running >= cp->c.max_concurrent) return;   /* retried at the next tick */
    if (cp->c.min_pause_ms > 0) {
        if (running > 0) return;
        if (cp->last_completion_ms >= 0 && now.mono_ms < cp->last_completion_ms + cp->c.min_pause_ms) {
            cp->next_trigger_ms = cp->last_completion_ms + cp->c.min_pause_ms;
            return;
        }
    }
    cp->next_trigger_ms = now.mono_ms + cp->c.interval_ms;
    flint_err err = {0};
    if (trigger(cp, CP_TYPE(CHECKPOINT), NULL, -1, now, NULL, &err))
        log_debug("periodic checkpoint of job %s skipped: %s", cp->job->id, err.msg);
}

/* ---- restore --------------------------------------------------------------------------------- */

void jm_cp_restored_from(jm_cp *cp, const jm_restore *plan, jm_time now) {
    const Flint__Checkpoint__CheckpointMetadata *m = jm_restore_metadata(plan);
    cp_completed *c = XNEW(cp_completed);
    c->id = m->checkpoint_id;
    c->savepoint = m->is_savepoint;
    c->owned = false;
    c->metadata_path = xstrdup(jm_restore_metadata_path(plan));
    const char *slash = strrchr(c->metadata_path, '/');
    c->dir = slash ? xstrndup(c->metadata_path, (size_t)(slash - c->metadata_path)) : xstrdup(".");
    completed_register(cp, c, m);
    completed_add(cp, c);
    if (cp->next_id <= m->checkpoint_id) cp->next_id = m->checkpoint_id + 1;
    cp->n_restored++;
    cp->has_restored = true;
    cp->restored_id = m->checkpoint_id;
    cp->restore_ts = now.wall_ms;
    cp->restored_sp = m->is_savepoint;
    free(cp->restored_path);
    cp->restored_path = xstrdup(c->dir);
}

void jm_cp_restore_failed(jm_cp *cp, int64_t checkpoint_id, const char *message) {
    for (int i = 0; i < cp->n_completed; i++)
        if (cp->completed[i]->id == checkpoint_id && !cp->completed[i]->unusable) {
            cp->completed[i]->unusable = true;
            cp->completed[i]->why = xasprintf("a task could not restore checkpoint %" PRId64 " from %s: %s",
                                              checkpoint_id, cp->completed[i]->metadata_path,
                                              message && message[0] ? message : "unknown error");
            log_warn("Job %s: checkpoint %" PRId64 " cannot be restored (%s); restarts fall back to an older one",
                     cp->job->id, checkpoint_id, message ? message : "");
        }
}

int jm_cp_restore_latest(jm_cp *cp, jm_time now, jm_restore **out, flint_err *err) {
    *out = NULL;
    if (cp->n_completed == 0) return 0;
    char first[2048] = "";   /* every reason, newest first */
    for (int i = cp->n_completed - 1; i >= 0; i--) {
        cp_completed *c = cp->completed[i];
        if (c->unusable) {
            size_t n = strlen(first);
            snprintf(first + n, sizeof first - n, "%s%s", n ? "; " : "", c->why ? c->why : "unusable");
            continue;
        }
        Flint__Checkpoint__CheckpointMetadata *m = NULL;
        flint_err e = {0};
        int rc = jm_metadata_read(c->metadata_path, &m, &e);
        if (!rc && (m->checkpoint_id != c->id || strcmp(m->job_id, cp->job->id) != 0) && c->owned)
            rc = flint_err_set(&e, FLINT_INVALID, "%s is corrupted: it holds checkpoint %" PRId64 " of job %s",
                               c->metadata_path, m->checkpoint_id, m->job_id);
        if (!rc) rc = jm_metadata_check_files(m, c->dir, &e);
        jm_restore *plan = NULL;
        if (!rc) {
            rc = jm_restore_new(m, c->metadata_path, cp->job->graph, cp->job->default_max_parallelism, true,
                                &plan, &e);
            m = NULL;
        }
        if (m) flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
        if (rc) {
            log_warn("Job %s: cannot restore checkpoint %" PRId64 ": %s%s", cp->job->id, c->id, e.msg,
                     i > 0 ? "; falling back to the previous retained checkpoint" : "");
            size_t n = strlen(first);
            snprintf(first + n, sizeof first - n, "%s%s", n ? "; " : "", e.msg);
            c->unusable = true;
            c->why = xstrdup(e.msg);
            continue;
        }
        cp->n_restored++;
        cp->has_restored = true;
        cp->restored_id = c->id;
        cp->restore_ts = now.wall_ms;
        cp->restored_sp = c->savepoint;
        free(cp->restored_path);
        cp->restored_path = xstrdup(c->dir);
        if (cp->next_id <= c->id) cp->next_id = c->id + 1;
        log_info("Job %s restores %s %" PRId64 " from %s", cp->job->id, c->savepoint ? "savepoint" : "checkpoint",
                 c->id, c->metadata_path);
        *out = plan;
        return 0;
    }
    return flint_err_set(err, FLINT_INVALID, "Cannot restore job %s from any retained checkpoint: %s", cp->job->id,
                         first);
}

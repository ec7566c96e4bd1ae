/* sink.file_exactly_once: text lines into a directory with two-phase commits bound to checkpoints
 * (Flink's FileSink with its bucket writer in "part file" terms). Each subtask writes its rows,
 * one line each (flint_row_format with " "), into a hidden in-progress part file
 * ".part-<subtask>-<n>.inprogress"; a checkpoint's snapshot closes it (fsync) and makes it pending
 * (the pending commit names it and its final name "part-<subtask>-<n>"); when the checkpoint
 * completes (NotifyCheckpointComplete) pending parts of it and of older checkpoints are renamed to
 * their final, visible names (fsync of the directory). Readers of the directory (files not
 * starting with '.') only ever see committed parts.
 *
 * Restore: the pending commits of the restored checkpoint are committed again (idempotently: a
 * part already renamed is left alone), and every part the subtask began after that checkpoint
 * (numbered from the "file-sink:<subtask>" marker the snapshot records, a SourceSplitState whose
 * position is the next part number) is deleted: its rows are replayed. New parts are numbered after
 * every part of the subtask in the directory, so a restart never reuses a name.
 *
 * End of a bounded input: when the task takes a final checkpoint (checkpoints after tasks finish,
 * tm_cp_final_checkpoint) the last part is closed at end_input and becomes pending with that
 * checkpoint's snapshot, committed on its completion, as Flink does. Otherwise (the option off,
 * checkpointing disabled, or after a stop-with-savepoint) it is committed at once, and a failure
 * between a sink's end of input and the job's end can then repeat the rows after the last
 * checkpoint. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "sink"
#include "checkpoint/cp_task.h"
#include "operators/operator.h"
#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"

typedef struct pending {
    int64_t checkpoint_id;
    char *tmp, *final;        /* names in the directory */
    int64_t len;
} pending;

typedef struct fsink {
    char *dir;
    int sub;
    int64_t next_part;
    FILE *f;                  /* the in-progress part, NULL between parts */
    char *cur_tmp, *cur_final;
    int64_t cur_len;
    pending *pend;
    int n_pend, cap_pend;
    char *buf;
    size_t cap;
} fsink;

/* The number of a part file name of subtask sub ("part-<sub>-<n>" or ".part-<sub>-<n>.inprogress"),
 * or -1. */
static int64_t part_number(const char *name, int sub) {
    int s;
    long long n;
    int end = 0;
    if (sscanf(name, "part-%d-%lld%n", &s, &n, &end) == 2 && !name[end] && s == sub) return n;
    end = 0;
    if (sscanf(name, ".part-%d-%lld.inprogress%n", &s, &n, &end) == 2 && !name[end] && s == sub) return n;
    return -1;
}

static int64_t scan_next(const char *dir, int sub) {
    int64_t next = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t n = part_number(de->d_name, sub);
        if (n >= next) next = n + 1;
    }
    closedir(d);
    return next;
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static char *path_of(const fsink *s, const char *name) { return xasprintf("%s/%s", s->dir, name); }

/* Rename a pending part to its final name; idempotent. */
static int commit_one(tm_op *op, fsink *s, const char *tmp, const char *final) {
    char *from = path_of(s, tmp), *to = path_of(s, final);
    int rc = FLINT_OK;
    if (rename(from, to) != 0) {
        struct stat st;
        if (errno == ENOENT && stat(to, &st) == 0) {
            /* committed before (a restore commits again) */
        } else if (errno == ENOENT) {
            log_warn("%s: the pending part %s is gone and was never committed", op->rt->task_name, from);
        } else {
            rc = tm_op_fail(op, "cannot commit %s as %s: %s", from, to, strerror(errno));
        }
    }
    free(from);
    free(to);
    return rc;
}

static void pend_add(fsink *s, int64_t cp, char *tmp, char *final, int64_t len) {
    if (s->n_pend == s->cap_pend) {
        s->cap_pend = s->cap_pend ? 2 * s->cap_pend : 8;
        s->pend = xrealloc(s->pend, (size_t)s->cap_pend * sizeof *s->pend);
    }
    s->pend[s->n_pend++] = (pending){cp, tmp, final, len};
}

/* Close the part being written (fsync), NULL when none. */
static int close_part(tm_op *op, fsink *s) {
    if (!s->f) return FLINT_OK;
    int rc = FLINT_OK;
    if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0) rc = tm_op_fail(op, "writing %s/%s: %s", s->dir, s->cur_tmp, strerror(errno));
    if (fclose(s->f) != 0 && !rc) rc = tm_op_fail(op, "closing %s/%s: %s", s->dir, s->cur_tmp, strerror(errno));
    s->f = NULL;
    return rc;
}

/* Commit the pending parts of checkpoints up to id (INT64_MAX: all). */
static int commit_upto(tm_op *op, fsink *s, int64_t id) {
    int rc = FLINT_OK, k = 0, done = 0;
    for (int i = 0; i < s->n_pend; i++) {
        pending *p = &s->pend[i];
        if (p->checkpoint_id <= id && !rc) {
            rc = commit_one(op, s, p->tmp, p->final);
            if (!rc) {
                free(p->tmp);
                free(p->final);
                done++;
                continue;
            }
        }
        s->pend[k++] = *p;
    }
    s->n_pend = k;
    if (done) sync_dir(s->dir);
    return rc;
}

static int fsink_open(tm_op *op) {
    fsink *s = XNEW(fsink);
    op->state = s;
    const char *dir;
    int rc = tm_op_param_req(op, "path", &dir);
    if (rc) return rc;
    if (!dir[0]) return tm_op_fail(op, "parameter 'path' is empty");
    errno = 0;
    if (fs_mkdirs(dir, 0777, NULL)) return tm_op_fail(op, "cannot create directory '%s': %s", dir, strerror(errno));
    s->dir = xstrdup(dir);
    s->sub = op->rt->subtask;
    s->next_part = scan_next(dir, s->sub);
    s->cap = 256;
    s->buf = xmalloc(s->cap);
    return FLINT_OK;
}

static int fsink_process(tm_op *op, const flint_row *row) {
    fsink *s = op->state;
    size_t n = flint_row_format(row, " ", s->buf, s->cap);
    if (n + 2 > s->cap) {
        while (n + 2 > s->cap) s->cap *= 2;
        s->buf = xrealloc(s->buf, s->cap);
        n = flint_row_format(row, " ", s->buf, s->cap);
    }
    s->buf[n++] = '\n';
    if (!s->f) {
        free(s->cur_tmp);
        free(s->cur_final);
        int64_t k = s->next_part++;
        s->cur_tmp = xasprintf(".part-%d-%" PRId64 ".inprogress", s->sub, k);
        s->cur_final = xasprintf("part-%d-%" PRId64, s->sub, k);
        char *path = path_of(s, s->cur_tmp);
        s->f = fopen(path, "w");
        if (!s->f) {
            int rc = tm_op_fail(op, "cannot create %s: %s", path, strerror(errno));
            free(path);
            return rc;
        }
        free(path);
        setvbuf(s->f, NULL, _IOFBF, 1 << 16);
        s->cur_len = 0;
    }
    if (fwrite(s->buf, 1, n, s->f) != n) return tm_op_fail(op, "writing %s/%s: %s", s->dir, s->cur_tmp, strerror(errno));
    s->cur_len += (int64_t)n;
    return FLINT_OK;
}

/* A pending commit's data: "<in-progress name>\n<final name>\n<length>". */
static int fsink_snapshot(tm_op *op, int64_t id, Flint__Checkpoint__OperatorSubtaskState *out) {
    fsink *s = op->state;
    if (s->cur_tmp) {   /* being written, or closed at the end of input */
        int rc = close_part(op, s);
        if (rc) return rc;
        pend_add(s, id, s->cur_tmp, s->cur_final, s->cur_len);
        s->cur_tmp = s->cur_final = NULL;
    }
    for (int i = 0; i < s->n_pend; i++) {
        char *data = xasprintf("%s\n%s\n%" PRId64, s->pend[i].tmp, s->pend[i].final, s->pend[i].len);
        tm_cp_add_commit(out, s->pend[i].final, s->pend[i].checkpoint_id, data, strlen(data));
        free(data);
    }
    char marker[64];
    snprintf(marker, sizeof marker, "file-sink:%d", s->sub);
    tm_cp_add_split(out, marker, s->next_part, NULL, 0);
    return FLINT_OK;
}

static int fsink_complete(tm_op *op, int64_t id) { return commit_upto(op, op->state, id); }

static int fsink_restore(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    fsink *s = op->state;
    int rc = FLINT_OK;
    /* 1. commit what the checkpoint left pending */
    for (size_t i = 0; i < r->n_pending_commits && !rc; i++) {
        const Flint__Checkpoint__PendingCommit *c = r->pending_commits[i];
        char *data = xstrndup((const char *)c->data.data, c->data.len);
        char *nl1 = strchr(data, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
        if (!nl1 || !nl2 || strchr(data, '/') || nl1 == data || nl2 == nl1 + 1) {
            rc = tm_op_fail(op, "a pending commit of checkpoint %lld is malformed", (long long)c->checkpoint_id);
        } else {
            *nl1 = *nl2 = '\0';
            long long len = atoll(nl2 + 1);
            char *tmp = path_of(s, data);
            struct stat st;
            if (stat(tmp, &st) == 0 && st.st_size > len && truncate(tmp, (off_t)len) != 0)
                rc = tm_op_fail(op, "cannot truncate %s to %lld bytes: %s", tmp, len, strerror(errno));
            free(tmp);
            if (!rc) rc = commit_one(op, s, data, nl1 + 1);
        }
        free(data);
    }
    if (rc) return rc;
    if (r->n_pending_commits) sync_dir(s->dir);
    /* 2. parts begun after the checkpoint: their rows are replayed */
    for (size_t i = 0; i < r->n_source_splits; i++) {
        int old;
        if (sscanf(r->source_splits[i]->split_id, "file-sink:%d", &old) != 1) continue;
        int64_t from = r->source_splits[i]->position;
        DIR *d = opendir(s->dir);
        if (!d) return tm_op_fail(op, "cannot read %s: %s", s->dir, strerror(errno));
        struct dirent *de;
        int removed = 0;
        while ((de = readdir(d))) {
            if (de->d_name[0] != '.') continue;
            int64_t n = part_number(de->d_name, old);
            if (n < from) continue;
            char *p = path_of(s, de->d_name);
            if (unlink(p) == 0) removed++;
            free(p);
        }
        closedir(d);
        if (removed)
            log_info("%s: discarded %d in-progress part%s of subtask %d begun after the restored checkpoint",
                     op->rt->task_name, removed, removed == 1 ? "" : "s", old);
        if (old == s->sub && from > s->next_part) s->next_part = from;
    }
    int64_t scanned = scan_next(s->dir, s->sub);
    if (scanned > s->next_part) s->next_part = scanned;
    return FLINT_OK;
}

static int fsink_end_input(tm_op *op) {
    fsink *s = op->state;
    int rc = close_part(op, s);
    if (rc || tm_cp_final_checkpoint(op->rt->cp)) return rc;   /* pending with the final checkpoint */
    if (s->cur_tmp) {
        pend_add(s, INT64_MIN, s->cur_tmp, s->cur_final, s->cur_len);
        s->cur_tmp = s->cur_final = NULL;
    }
    return commit_upto(op, s, INT64_MAX);
}

static void fsink_close(tm_op *op) {
    fsink *s = op->state;
    if (!s) return;
    if (s->f) fclose(s->f);   /* not committed: the next restore discards it */
    for (int i = 0; i < s->n_pend; i++) {
        free(s->pend[i].tmp);
        free(s->pend[i].final);
    }
    free(s->pend);
    free(s->cur_tmp);
    free(s->cur_final);
    free(s->dir);
    free(s->buf);
    free(s);
    op->state = NULL;
}

const tm_op_kind tm_op_SINK_FILE_EXACTLY_ONCE = {
    .name = "sink.file_exactly_once",
    .open = fsink_open,
    .process = fsink_process,
    .end_input = fsink_end_input,
    .close = fsink_close,
    .snapshot_state = fsink_snapshot,
    .initialize_state = fsink_restore,
    .notify_checkpoint_complete = fsink_complete,
};

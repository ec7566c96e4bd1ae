/* Operator ids, key groups, _metadata files, savepoint paths and restore plans (see jm_restore.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define LOG_MODULE "restore"
#include "jm_restore.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"

#define META_MAGIC "FLNTMETA"
#define META_HEADER 32
#define META_MAX_SIZE (1LL << 30)

void *jm_msg_copy(const void *msg) {
    const ProtobufCMessage *m = msg;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    free(buf);
    if (!c) {
        log_error("cannot copy a %s (out of memory?)", m->descriptor->name);
        abort();
    }
    return c;
}

/* ---- operator ids ---------------------------------------------------------------------------- */

static bool is_hex32(const char *s) {
    if (!s || strlen(s) != 32) return false;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static void hash_hex(const void *data, size_t len, char out[33]) {
    XXH128_hash_t h = XXH3_128bits(data, len);
    snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64, (uint64_t)h.low64);
}

typedef struct opref {
    int v, k;                     /* vertex index, operator index */
} opref;

typedef struct idctx {
    Flint__Graph__JobGraph *g;
    char (**ids)[33];             /* [vertex][op] */
    int **state;                  /* 0 new, 1 in progress, 2 done */
} idctx;

static int vertex_index(const Flint__Graph__JobGraph *g, int id) {
    for (size_t i = 0; i < g->n_vertices; i++)
        if (g->vertices[i]->id == id) return (int)i;
    return -1;
}

static void op_id(idctx *c, int v, int k) {
    if (c->state[v][k] == 2) return;
    c->state[v][k] = 1;
    const Flint__Graph__JobVertex *jv = c->g->vertices[v];
    const Flint__Graph__OperatorDef *op = jv->operators[k];
    if (op->operator_id && op->operator_id[0]) {
        snprintf(c->ids[v][k], 33, "%s", op->operator_id);
    } else if (op->uid && op->uid[0]) {
        char *s = xasprintf("uid:%s", op->uid);
        hash_hex(s, strlen(s), c->ids[v][k]);
        free(s);
    } else {
        /* node id, kind, then the ids of the inputs in a stable order */
        size_t cap = 64, len = 0;
        char *buf = xmalloc(cap);
        len = (size_t)snprintf(buf, cap, "node:%d:%s", op->node_id, op->kind ? op->kind : "");
        if (len >= cap) {
            cap = len + 64;
            buf = xrealloc(buf, cap);
            snprintf(buf, cap, "node:%d:%s", op->node_id, op->kind ? op->kind : "");
        }
        opref in[256];
        int nin = 0;
        if (k > 0) {
            for (size_t j = 0; j < jv->n_operators && nin < 256; j++)
                for (size_t o = 0; o < jv->operators[j]->n_chained_outputs; o++)
                    if (jv->operators[j]->chained_outputs[o] == k && c->state[v][j] != 1)
                        in[nin++] = (opref){v, (int)j};
        } else {
            for (size_t e = 0; e < c->g->n_edges && nin < 256; e++) {
                const Flint__Graph__JobEdge *ed = c->g->edges[e];
                if (ed->target_vertex != jv->id) continue;
                int sv = vertex_index(c->g, ed->source_vertex);
                if (sv < 0 || ed->source_operator < 0 ||
                    (size_t)ed->source_operator >= c->g->vertices[sv]->n_operators)
                    continue;
                if (c->state[sv][ed->source_operator] == 1) continue;   /* a cycle: validated away */
                in[nin++] = (opref){sv, ed->source_operator};
            }
        }
        char (*ins)[40] = xcalloc((size_t)nin + 1, sizeof *ins);
        for (int i = 0; i < nin; i++) {
            op_id(c, in[i].v, in[i].k);
            snprintf(ins[i], sizeof ins[i], ":%d:%s", c->g->vertices[in[i].v]->operators[in[i].k]->node_id,
                     c->ids[in[i].v][in[i].k]);
        }
        qsort(ins, (size_t)nin, sizeof *ins, (int (*)(const void *, const void *))strcmp);
        for (int i = 0; i < nin; i++) {
            size_t l = strlen(ins[i]);
            if (len + l + 1 > cap) {
                cap = 2 * (len + l + 1);
                buf = xrealloc(buf, cap);
            }
            memcpy(buf + len, ins[i], l + 1);
            len += l;
        }
        hash_hex(buf, len, c->ids[v][k]);
        free(ins);
        free(buf);
    }
    c->state[v][k] = 2;
}

int jm_graph_assign_operator_ids(Flint__Graph__JobGraph *g, flint_err *err) {
    for (size_t v = 0; v < g->n_vertices; v++)
        for (size_t k = 0; k < g->vertices[v]->n_operators; k++) {
            const char *id = g->vertices[v]->operators[k]->operator_id;
            if (id && id[0] && !is_hex32(id))
                return flint_err_set(err, FLINT_INVALID,
                                     "Operator '%s' has the operator id '%.60s': expected 32 lower-case hex digits",
                                     g->vertices[v]->operators[k]->name, id);
        }
    idctx c = {.g = g};
    c.ids = xcalloc(g->n_vertices + 1, sizeof *c.ids);
    c.state = xcalloc(g->n_vertices + 1, sizeof *c.state);
    for (size_t v = 0; v < g->n_vertices; v++) {
        c.ids[v] = xcalloc(g->vertices[v]->n_operators + 1, sizeof **c.ids);
        c.state[v] = xcalloc(g->vertices[v]->n_operators + 1, sizeof **c.state);
    }
    for (size_t v = 0; v < g->n_vertices; v++)
        for (size_t k = 0; k < g->vertices[v]->n_operators; k++) op_id(&c, (int)v, (int)k);
    int rc = 0;
    for (size_t v = 0; v < g->n_vertices && !rc; v++)
        for (size_t k = 0; k < g->vertices[v]->n_operators && !rc; k++)
            for (size_t w = 0; w <= v && !rc; w++)
                for (size_t j = 0; j < (w == v ? k : g->vertices[w]->n_operators) && !rc; j++)
                    if (strcmp(c.ids[v][k], c.ids[w][j]) == 0)
                        rc = flint_err_set(err, FLINT_INVALID,
                                           "Operators '%s' and '%s' have the same operator id %s",
                                           g->vertices[w]->operators[j]->name,
                                           g->vertices[v]->operators[k]->name, c.ids[v][k]);
    for (size_t v = 0; v < g->n_vertices; v++) {
        for (size_t k = 0; k < g->vertices[v]->n_operators && !rc; k++) {
            Flint__Graph__OperatorDef *op = g->vertices[v]->operators[k];
            if (op->operator_id && op->operator_id[0]) continue;
            /* protobuf-c frees strings that are not the default; the graph is an unpacked copy. */
            if (op->operator_id && op->operator_id != protobuf_c_empty_string) free(op->operator_id);
            op->operator_id = xstrdup(c.ids[v][k]);
        }
        free(c.ids[v]);
        free(c.state[v]);
    }
    free(c.ids);
    free(c.state);
    return rc;
}

/* ---- key groups ------------------------------------------------------------------------------ */

void jm_key_group_range(int maxp, int p, int i, int *start, int *end) {
    assert(maxp > 0 && p > 0 && p <= maxp && i >= 0 && i < p);
    *start = (int)(((int64_t)i * maxp + p - 1) / p);
    *end = (int)((((int64_t)i + 1) * maxp - 1) / p);
}

int jm_key_group_subtask(int maxp, int p, int kg) { return (int)((int64_t)kg * p / maxp); }

/* ---- _metadata ------------------------------------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void be64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int jm_metadata_write(const char *dir, const Flint__Checkpoint__CheckpointMetadata *m, flint_err *err) {
    size_t n = flint__checkpoint__checkpoint_metadata__get_packed_size(m);
    uint8_t *buf = xmalloc(META_HEADER + n);
    memcpy(buf, META_MAGIC, 8);
    be32(buf + 8, JM_METADATA_VERSION);
    be32(buf + 12, 0);
    be64(buf + 16, n);
    flint__checkpoint__checkpoint_metadata__pack(m, buf + META_HEADER);
    be64(buf + 24, XXH64(buf + META_HEADER, n, 0));
    char *tmp = xasprintf("%s/%s.tmp", dir, JM_METADATA_FILE);
    char *path = xasprintf("%s/%s", dir, JM_METADATA_FILE);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, buf, META_HEADER + n) != 0 || fsync(fd) != 0) {
        rc = flint_err_set(err, FLINT_IO, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
    } else if (close(fd) != 0 || rename(tmp, path) != 0) {
        rc = flint_err_set(err, FLINT_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    free(tmp);
    free(path);
    free(buf);
    return rc;
}

static bool range_ok(const Flint__Checkpoint__KeyGroupRange *r, int maxp) {
    return r && r->start >= 0 && r->end >= r->start && (maxp <= 0 || r->end < maxp);
}

/* Field checks of a decoded _metadata: what restore relies on. */
static int check_metadata(const Flint__Checkpoint__CheckpointMetadata *m, const char *path, flint_err *err) {
    if (m->format_version != JM_METADATA_VERSION)
        return flint_err_set(err, FLINT_INVALID, "%s has format version %u; this jobmanager reads version %d",
                             path, m->format_version, JM_METADATA_VERSION);
    if (!m->job_id || !m->job_id[0] || m->checkpoint_id <= 0)
        return flint_err_set(err, FLINT_INVALID, "%s is corrupted: no job id or checkpoint id", path);
    for (size_t i = 0; i < m->n_operators; i++) {
        const Flint__Checkpoint__OperatorState *o = m->operators[i];
        if (!is_hex32(o->operator_id) || o->parallelism < 1 || o->max_parallelism < 1 ||
            o->parallelism > o->max_parallelism)
            return flint_err_set(err, FLINT_INVALID, "%s is corrupted: operator %zu has a bad id or parallelism",
                                 path, i);
        for (size_t s = 0; s < o->n_subtasks; s++) {
            const Flint__Checkpoint__OperatorSubtaskState *st = o->subtasks[s];
            if (st->subtask < 0 || st->subtask >= o->parallelism)
                return flint_err_set(err, FLINT_INVALID, "%s is corrupted: operator %s has subtask %d of %d",
                                     path, o->operator_id, st->subtask, o->parallelism);
            for (size_t k = 0; k < st->n_keyed_state; k++) {
                const Flint__Checkpoint__KeyedStateHandle *h = st->keyed_state[k];
                if (!range_ok(h->key_group_range, o->max_parallelism))
                    return flint_err_set(err, FLINT_INVALID,
                                         "%s is corrupted: operator %s subtask %d has a bad key-group range",
                                         path, o->operator_id, st->subtask);
            }
        }
    }
    return 0;
}

int jm_metadata_read(const char *path, Flint__Checkpoint__CheckpointMetadata **out, flint_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return flint_err_set(err, errno == ENOENT ? FLINT_NOT_FOUND : FLINT_IO, "cannot read %s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return flint_err_set(err, FLINT_IO, "cannot read %s: not a regular file", path);
    }
    if (st.st_size < META_HEADER || st.st_size > META_MAX_SIZE) {
        fclose(f);
        return flint_err_set(err, FLINT_INVALID, "%s is corrupted: %lld bytes is not a checkpoint metadata file",
                             path, (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = xmalloc(size);
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    int rc = 0;
    if (got != size) {
        rc = flint_err_set(err, FLINT_IO, "cannot read %s: short read", path);
    } else if (memcmp(buf, META_MAGIC, 8) != 0) {
        rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: not a Flint checkpoint metadata file", path);
    } else if (rd32(buf + 8) != JM_METADATA_VERSION) {
        rc = flint_err_set(err, FLINT_INVALID, "%s has format version %u; this jobmanager reads version %d",
                           path, rd32(buf + 8), JM_METADATA_VERSION);
    } else if (rd64(buf + 16) != size - META_HEADER) {
        rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: %zu bytes of metadata, the header says %" PRIu64,
                           path, size - META_HEADER, rd64(buf + 16));
    } else if (XXH64(buf + META_HEADER, size - META_HEADER, 0) != rd64(buf + 24)) {
        rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: checksum mismatch", path);
    } else {
        Flint__Checkpoint__CheckpointMetadata *m =
            flint__checkpoint__checkpoint_metadata__unpack(NULL, size - META_HEADER, buf + META_HEADER);
        if (!m) {
            rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: cannot decode it", path);
        } else if ((rc = check_metadata(m, path, err)) != 0) {
            flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
        } else {
            *out = m;
        }
    }
    free(buf);
    return rc;
}

/* The absolute path of a handle's file, or NULL for inline state. Caller frees. */
static char *resolve(const char *dir, const Flint__Checkpoint__StreamStateHandle *h) {
    if (!h || !h->path || !h->path[0]) return NULL;
    if (h->path[0] == '/') return xstrdup(h->path);
    return xasprintf("%s/%s", dir, h->path);
}

static int check_file(const char *dir, const Flint__Checkpoint__StreamStateHandle *h, int64_t id,
                      flint_err *err) {
    char *p = resolve(dir, h);
    if (!p) return 0;
    struct stat st;
    int rc = 0;
    if (stat(p, &st) != 0)
        rc = flint_err_set(err, FLINT_NOT_FOUND, "state file %s of checkpoint %" PRId64 " is missing (%s)", p, id,
                           strerror(errno));
    else if (!S_ISREG(st.st_mode) || st.st_size < h->size)
        rc = flint_err_set(err, FLINT_INVALID,
                           "state file %s of checkpoint %" PRId64 " is corrupted: %lld bytes, expected %" PRId64,
                           p, id, (long long)st.st_size, h->size);
    free(p);
    return rc;
}

int jm_metadata_check_files(const Flint__Checkpoint__CheckpointMetadata *m, const char *dir, flint_err *err) {
    int rc = 0;
    for (size_t i = 0; i < m->n_operators && !rc; i++) {
        const Flint__Checkpoint__OperatorState *o = m->operators[i];
        for (size_t s = 0; s < o->n_subtasks && !rc; s++) {
            const Flint__Checkpoint__OperatorSubtaskState *st = o->subtasks[s];
            for (size_t k = 0; k < st->n_keyed_state && !rc; k++) {
                const Flint__Checkpoint__KeyedStateHandle *h = st->keyed_state[k];
                rc = check_file(dir, h->file, m->checkpoint_id, err);
                if (!rc) rc = check_file(dir, h->meta_data, m->checkpoint_id, err);
                for (size_t f = 0; f < h->n_shared_files && !rc; f++)
                    rc = check_file(dir, h->shared_files[f]->handle, m->checkpoint_id, err);
                for (size_t f = 0; f < h->n_private_files && !rc; f++)
                    rc = check_file(dir, h->private_files[f]->handle, m->checkpoint_id, err);
            }
            for (size_t k = 0; k < st->n_operator_state && !rc; k++)
                rc = check_file(dir, st->operator_state[k]->file, m->checkpoint_id, err);
        }
    }
    return rc;
}

int64_t jm_metadata_state_size(const Flint__Checkpoint__CheckpointMetadata *m) {
    int64_t n = 0;
    for (size_t i = 0; i < m->n_operators; i++)
        for (size_t s = 0; s < m->operators[i]->n_subtasks; s++) n += m->operators[i]->subtasks[s]->state_size;
    return n;
}

/* ---- savepoint paths ------------------------------------------------------------------------- */

int jm_savepoint_resolve(const char *path, char **metadata_path, char **dir, flint_err *err) {
    *metadata_path = *dir = NULL;
    if (!path || !path[0]) return flint_err_set(err, FLINT_INVALID, "No savepoint path given");
    char *p = xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
    struct stat st;
    if (stat(p, &st) != 0) {
        int e = errno;
        flint_err_set(err, FLINT_NOT_FOUND, "Cannot find the savepoint %s: %s", p, strerror(e));
        free(p);
        return FLINT_NOT_FOUND;
    }
    if (S_ISDIR(st.st_mode)) {
        *metadata_path = xasprintf("%s/%s", p, JM_METADATA_FILE);
        *dir = p;
        if (stat(*metadata_path, &st) != 0) {
            flint_err_set(err, FLINT_NOT_FOUND, "Cannot find the savepoint metadata file %s: %s", *metadata_path,
                          strerror(errno));
            free(*metadata_path);
            free(*dir);
            *metadata_path = *dir = NULL;
            return FLINT_NOT_FOUND;
        }
        return 0;
    }
    *metadata_path = p;
    const char *slash = strrchr(p, '/');
    *dir = slash ? (slash == p ? xstrdup("/") : xstrndup(p, (size_t)(slash - p))) : xstrdup(".");
    return 0;
}

void jm_savepoint_dir_name(const char *base, const char *job_id, char *out, size_t len) {
    char rnd[13];
    str_random_hex(rnd, 6);
    size_t n = strlen(base);
    while (n > 1 && base[n - 1] == '/') n--;
    snprintf(out, len, "%.*s/savepoint-%.6s-%s", (int)n, base, job_id, rnd);
}

/* ---- restore plans --------------------------------------------------------------------------- */

struct jm_restore {
    Flint__Checkpoint__CheckpointMetadata *m;   /* owned */
    char *path;                                 /* the _metadata file */
    char *dir;                                  /* its directory: base of relative paths */
};

void jm_restore_free(jm_restore *r) {
    if (!r) return;
    if (r->m) flint__checkpoint__checkpoint_metadata__free_unpacked(r->m, NULL);
    free(r->path);
    free(r->dir);
    free(r);
}

int64_t jm_restore_checkpoint_id(const jm_restore *r) { return r->m->checkpoint_id; }
bool jm_restore_is_savepoint(const jm_restore *r) { return r->m->is_savepoint; }
const char *jm_restore_metadata_path(const jm_restore *r) { return r->path; }
const Flint__Checkpoint__CheckpointMetadata *jm_restore_metadata(const jm_restore *r) { return r->m; }

static bool subtask_has_state(const Flint__Checkpoint__OperatorSubtaskState *s) {
    return s->n_keyed_state || s->n_operator_state || s->n_source_splits || s->n_pending_commits;
}

static bool operator_has_state(const Flint__Checkpoint__OperatorState *o) {
    for (size_t s = 0; s < o->n_subtasks; s++)
        if (subtask_has_state(o->subtasks[s])) return true;
    return false;
}

static bool operator_has_keyed(const Flint__Checkpoint__OperatorState *o) {
    for (size_t s = 0; s < o->n_subtasks; s++)
        if (o->subtasks[s]->n_keyed_state) return true;
    return false;
}

static const Flint__Graph__JobVertex *find_operator(const Flint__Graph__JobGraph *g, const char *id) {
    for (size_t v = 0; v < g->n_vertices; v++)
        for (size_t k = 0; k < g->vertices[v]->n_operators; k++)
            if (!strcmp(g->vertices[v]->operators[k]->operator_id, id)) return g->vertices[v];
    return NULL;
}

int jm_restore_new(Flint__Checkpoint__CheckpointMetadata *m, const char *metadata_path,
                   const Flint__Graph__JobGraph *g, int default_maxp, bool allow_non_restored,
                   jm_restore **out, flint_err *err) {
    *out = NULL;
    for (size_t i = 0; i < m->n_operators; i++) {
        const Flint__Checkpoint__OperatorState *o = m->operators[i];
        if (!operator_has_state(o)) continue;
        const Flint__Graph__JobVertex *v = find_operator(g, o->operator_id);
        if (!v) {
            if (allow_non_restored) {
                log_info("Skipping the state of operator %s (%s%s%s): the job has no such operator "
                         "(--allowNonRestoredState)", o->operator_id, o->name,
                         o->uid[0] ? ", uid " : "", o->uid);
                continue;
            }
            int rc = flint_err_set(err, FLINT_INVALID,
                                   "Failed to rollback to checkpoint/savepoint %s. Cannot map checkpoint/savepoint "
                                   "state for operator %s (%s%s%s) to the new program, because the operator is not "
                                   "available in the new program. If you want to allow to skip this, you can set "
                                   "the --allowNonRestoredState option on the CLI.",
                                   metadata_path, o->operator_id, o->name, o->uid[0] ? ", uid " : "", o->uid);
            flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
            return rc;
        }
        int maxp = v->max_parallelism > 0 ? v->max_parallelism
                   : g->max_parallelism > 0 ? g->max_parallelism : default_maxp;
        if (operator_has_keyed(o) && maxp != o->max_parallelism) {
            int rc = flint_err_set(err, FLINT_INVALID,
                                   "Failed to rollback to checkpoint/savepoint %s. The max parallelism %d of "
                                   "operator %s (%s) in the checkpoint differs from its max parallelism %d in "
                                   "the job: keyed state cannot be redistributed. Keep the max parallelism.",
                                   metadata_path, o->max_parallelism, o->operator_id, o->name, maxp);
            flint__checkpoint__checkpoint_metadata__free_unpacked(m, NULL);
            return rc;
        }
    }
    jm_restore *r = XNEW(jm_restore);
    r->m = m;
    r->path = xstrdup(metadata_path);
    const char *slash = strrchr(metadata_path, '/');
    r->dir = slash ? (slash == metadata_path ? xstrdup("/") : xstrndup(metadata_path, (size_t)(slash - metadata_path)))
                   : xstrdup(".");
    *out = r;
    return 0;
}

/* Growable arrays of message pointers. */
#define PUSH(arr, n, item)                                               \
    do {                                                                 \
        (arr) = xrealloc((arr), ((n) + 1) * sizeof *(arr));              \
        (arr)[(n)++] = (item);                                           \
    } while (0)

/* Make a copied handle's path absolute. */
static void absolutize(const char *dir, Flint__Checkpoint__StreamStateHandle *h) {
    if (!h || !h->path || !h->path[0] || h->path[0] == '/') return;
    char *p = xasprintf("%s/%s", dir, h->path);
    free(h->path);
    h->path = p;
}

static void absolutize_keyed(const char *dir, Flint__Checkpoint__KeyedStateHandle *h) {
    absolutize(dir, h->file);
    absolutize(dir, h->meta_data);
    for (size_t f = 0; f < h->n_shared_files; f++) absolutize(dir, h->shared_files[f]->handle);
    for (size_t f = 0; f < h->n_private_files; f++) absolutize(dir, h->private_files[f]->handle);
}

/* The part of keyed handle h for key groups [s, e], or NULL when they do not meet. Full handles
 * (a file and one offset per key group) are cut to the intersection; others are copied whole. */
static Flint__Checkpoint__KeyedStateHandle *keyed_slice(const Flint__Checkpoint__KeyedStateHandle *h, int s,
                                                        int e) {
    const Flint__Checkpoint__KeyGroupRange *r = h->key_group_range;
    int is = r->start > s ? r->start : s, ie = r->end < e ? r->end : e;
    if (is > ie) return NULL;
    Flint__Checkpoint__KeyedStateHandle *c = jm_msg_copy(h);
    bool full = h->file && h->n_key_group_offsets == (size_t)(r->end - r->start + 1);
    if (!full || (is == r->start && ie == r->end)) return c;
    size_t n = (size_t)(ie - is + 1);
    int64_t *offs = xmalloc(n * sizeof *offs);
    memcpy(offs, h->key_group_offsets + (is - r->start), n * sizeof *offs);
    free(c->key_group_offsets);
    c->key_group_offsets = offs;
    c->n_key_group_offsets = n;
    c->key_group_range->start = is;
    c->key_group_range->end = ie;
    /* the share of the state size, proportionally */
    int64_t total = r->end - r->start + 1;
    c->state_size = h->state_size * (int64_t)n / total;
    c->checkpointed_size = h->checkpointed_size * (int64_t)n / total;
    return c;
}

/* The subtask states of operator o, indexed by subtask (NULL where none). */
static const Flint__Checkpoint__OperatorSubtaskState **by_subtask(const Flint__Checkpoint__OperatorState *o) {
    const Flint__Checkpoint__OperatorSubtaskState **a = xcalloc((size_t)o->parallelism + 1, sizeof *a);
    for (size_t s = 0; s < o->n_subtasks; s++) a[o->subtasks[s]->subtask] = o->subtasks[s];
    return a;
}

/* Operator state of o for new subtask i of p. */
static void restore_operator_state(const Flint__Checkpoint__OperatorState *o,
                                   const Flint__Checkpoint__OperatorSubtaskState **subs, int p, int i,
                                   const char *dir, Flint__Checkpoint__OperatorRestore *out) {
    int oldp = o->parallelism;
    /* Per state name: elements counted so far (SPLIT), and the owners (BROADCAST). */
    typedef struct nstate { const char *name; int64_t count; int *owners; int n_owners; } nstate;
    nstate *names = NULL;
    size_t n_names = 0;
    for (int s = 0; s < oldp; s++) {
        if (!subs[s]) continue;
        for (size_t h = 0; h < subs[s]->n_operator_state; h++) {
            const Flint__Checkpoint__OperatorStateHandle *oh = subs[s]->operator_state[h];
            for (size_t k = 0; k < oh->n_states; k++) {
                size_t j = 0;
                while (j < n_names && strcmp(names[j].name, oh->states[k]->name)) j++;
                if (j == n_names) {
                    names = xrealloc(names, (n_names + 1) * sizeof *names);
                    names[n_names++] = (nstate){oh->states[k]->name, 0, NULL, 0};
                }
                if (oh->states[k]->mode == FLINT__CHECKPOINT__DISTRIBUTION_MODE__BROADCAST &&
                    (names[j].n_owners == 0 || names[j].owners[names[j].n_owners - 1] != s)) {
                    names[j].owners = xrealloc(names[j].owners, (size_t)(names[j].n_owners + 1) * sizeof(int));
                    names[j].owners[names[j].n_owners++] = s;
                }
            }
        }
    }
    for (int s = 0; s < oldp; s++) {
        if (!subs[s]) continue;
        for (size_t h = 0; h < subs[s]->n_operator_state; h++) {
            const Flint__Checkpoint__OperatorStateHandle *oh = subs[s]->operator_state[h];
            Flint__Checkpoint__OperatorStateHandle *nh = NULL;
            for (size_t k = 0; k < oh->n_states; k++) {
                const Flint__Checkpoint__NamedOperatorState *ns = oh->states[k];
                size_t j = 0;
                while (strcmp(names[j].name, ns->name)) j++;
                int64_t *sel = xmalloc((ns->n_offsets + 1) * sizeof *sel);
                size_t nsel = 0;
                switch (ns->mode) {
                case FLINT__CHECKPOINT__DISTRIBUTION_MODE__UNION:
                    for (size_t e = 0; e < ns->n_offsets; e++) sel[nsel++] = ns->offsets[e];
                    break;
                case FLINT__CHECKPOINT__DISTRIBUTION_MODE__BROADCAST:
                    if (names[j].owners[i % names[j].n_owners] == s)
                        for (size_t e = 0; e < ns->n_offsets; e++) sel[nsel++] = ns->offsets[e];
                    break;
                default:   /* SPLIT_DISTRIBUTE: round robin; kept in place at the same parallelism */
                    for (size_t e = 0; e < ns->n_offsets; e++) {
                        int64_t k2 = names[j].count++;
                        if (oldp == p ? s == i : k2 % p == i) sel[nsel++] = ns->offsets[e];
                    }
                    break;
                }
                if (nsel == 0) {
                    free(sel);
                    continue;
                }
                if (!nh) {
                    nh = xmalloc(sizeof *nh);
                    flint__checkpoint__operator_state_handle__init(nh);
                    nh->file = jm_msg_copy(oh->file);
                    absolutize(dir, nh->file);
                }
                Flint__Checkpoint__NamedOperatorState *c = xmalloc(sizeof *c);
                flint__checkpoint__named_operator_state__init(c);
                c->name = xstrdup(ns->name);
                c->mode = ns->mode;
                c->offsets = sel;
                c->n_offsets = nsel;
                PUSH(nh->states, nh->n_states, c);
            }
            if (nh) PUSH(out->operator_state, out->n_operator_state, nh);
        }
    }
    for (size_t j = 0; j < n_names; j++) free(names[j].owners);
    free(names);
}

static Flint__Checkpoint__OperatorRestore *restore_operator(const Flint__Checkpoint__OperatorState *o, int p,
                                                            int i, int kg_start, int kg_end, const char *dir) {
    const Flint__Checkpoint__OperatorSubtaskState **subs = by_subtask(o);
    Flint__Checkpoint__OperatorRestore *r = xmalloc(sizeof *r);
    flint__checkpoint__operator_restore__init(r);
    r->operator_id = xstrdup(o->operator_id);
    int oldp = o->parallelism;
    int64_t split_k = 0, commit_k = 0;
    bool has_splits = false;
    for (int s = 0; s < oldp; s++) {
        const Flint__Checkpoint__OperatorSubtaskState *st = subs[s];
        if (!st) continue;
        for (size_t k = 0; k < st->n_keyed_state; k++) {
            Flint__Checkpoint__KeyedStateHandle *h = keyed_slice(st->keyed_state[k], kg_start, kg_end);
            if (!h) continue;
            absolutize_keyed(dir, h);
            PUSH(r->keyed_state, r->n_keyed_state, h);
        }
        has_splits |= st->n_source_splits > 0;
        for (size_t k = 0; k < st->n_source_splits; k++, split_k++)
            if (oldp == p ? s == i : split_k % p == i)
                PUSH(r->source_splits, r->n_source_splits, jm_msg_copy(st->source_splits[k]));
        for (size_t k = 0; k < st->n_pending_commits; k++, commit_k++)
            if (oldp == p ? s == i : commit_k % p == i)
                PUSH(r->pending_commits, r->n_pending_commits, jm_msg_copy(st->pending_commits[k]));
    }
    restore_operator_state(o, subs, p, i, dir, r);
    free(subs);
    /* A source whose splits all went to other subtasks still restores, empty (Flink's
     * isRestored): it owns no split, rather than starting over. */
    if (!has_splits && !r->n_keyed_state && !r->n_operator_state && !r->n_pending_commits) {
        flint__checkpoint__operator_restore__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

Flint__Checkpoint__TaskRestore *jm_restore_task(const jm_restore *r, const Flint__Graph__JobVertex *v, int p,
                                                int maxp, int subtask) {
    assert(r && v && p > 0 && subtask >= 0 && subtask < p && maxp >= p);
    int s, e;
    jm_key_group_range(maxp, p, subtask, &s, &e);
    Flint__Checkpoint__TaskRestore *t = NULL;
    for (size_t k = 0; k < v->n_operators; k++) {
        const char *id = v->operators[k]->operator_id;
        for (size_t i = 0; i < r->m->n_operators; i++) {
            const Flint__Checkpoint__OperatorState *o = r->m->operators[i];
            if (strcmp(o->operator_id, id) != 0) continue;
            Flint__Checkpoint__OperatorRestore *op = restore_operator(o, p, subtask, s, e, r->dir);
            if (!op) continue;
            if (!t) {
                t = xmalloc(sizeof *t);
                flint__checkpoint__task_restore__init(t);
                t->checkpoint_id = r->m->checkpoint_id;
                t->from_savepoint = r->m->is_savepoint;
                t->metadata_path = xstrdup(r->path);
                t->key_group_range = xmalloc(sizeof *t->key_group_range);
                flint__checkpoint__key_group_range__init(t->key_group_range);
                t->key_group_range->start = s;
                t->key_group_range->end = e;
                t->max_parallelism = maxp;
            }
            PUSH(t->operators, t->n_operators, op);
        }
    }
    return t;
}

void jm_restore_task_free(Flint__Checkpoint__TaskRestore *t) {
    if (t) flint__checkpoint__task_restore__free_unpacked(t, NULL);
}

/* RocksDB snapshots for checkpoints (cp_state.h): a full snapshot reads a DB snapshot on the
 * checkpoint thread and writes the backend-independent key-group blocks; an incremental one is a
 * RocksDB checkpoint (a flush, then hard links of the SST files) whose new files are uploaded.
 * Restoring an incremental one into a RocksDB backend at the handle's own key groups hard-links
 * its files into the backend's directory and opens them as the backend's database (Flink's
 * incremental restore: no entry is read); otherwise (another backend, rescaling) its files are
 * opened read-only and the entries of the subtask's key groups are added to the backend.
 * Knows the RocksDB backend's key layout (state/tm_state_rocksdb.c):
 *     u16 key group (BE) | u32 key length (BE) | key | u32 namespace length (BE) | ns [| user key]
 * and writes blocks in the format of tm_state_snapshot (state/tm_state.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "checkpoint/cp_state.h"
#include "state/tm_state_int.h"
#include "util/alloc.h"

typedef struct rstate {
    char *name;
    int kind;
    int64_t ttl;
    rocksdb_column_family_handle_t *cf;   /* the live backend's (view) or our own (restore) */
} rstate;

struct cp_rdb_view {
    rocksdb_t *db;
    const rocksdb_snapshot_t *snap;
    rstate *st;
    int n;
};

static inline uint32_t get32be(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The block of key group kg over the states st[0..n) of db (at snapshot snap, may be NULL). */
static int write_block(rocksdb_t *db, const rocksdb_snapshot_t *snap, rstate *st, int n, int kg, cp_buf *out,
                       flint_err *err) {
    cp_buf_add(out, "FKG1", 4);
    cp_buf_u16(out, (uint16_t)kg);
    uint8_t lo[2] = {(uint8_t)(kg >> 8), (uint8_t)kg}, hi[2] = {(uint8_t)((kg + 1) >> 8), (uint8_t)(kg + 1)};
    int rc = FLINT_OK;
    for (int s = 0; s < n && !rc; s++) {
        rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
        if (snap) rocksdb_readoptions_set_snapshot(ro, snap);
        rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, 2);
        rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, 2);
        rocksdb_readoptions_set_fill_cache(ro, 0);
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, st[s].cf);
        bool header = false;
        for (rocksdb_iter_seek(it, (const char *)lo, 2); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
            if (kl < 10 || (k[0] << 8 | k[1]) != kg) continue;
            uint32_t klen = get32be(k + 2);
            if ((size_t)klen > kl - 10) continue;
            uint32_t nslen = get32be(k + 6 + klen);
            if ((size_t)nslen > kl - 10 - klen) continue;
            size_t uklen = kl - 10 - klen - nslen;
            if (st[s].kind != TM_STATE_MAP && uklen) continue;
            if (!header) {
                header = true;
                size_t nl = strlen(st[s].name);
                cp_buf_u8(out, 1);
                cp_buf_u16(out, (uint16_t)nl);
                cp_buf_add(out, st[s].name, nl);
                cp_buf_u8(out, (uint8_t)st[s].kind);
                cp_buf_u64(out, (uint64_t)st[s].ttl);
            }
            cp_buf_u8(out, 1);
            cp_buf_u32(out, klen);
            cp_buf_add(out, k + 6, klen);
            cp_buf_u32(out, nslen);
            cp_buf_add(out, k + 10 + klen, nslen);
            if (st[s].kind == TM_STATE_MAP) {
                cp_buf_u32(out, (uint32_t)uklen);
                cp_buf_add(out, k + 10 + klen + nslen, uklen);
            }
            cp_buf_u32(out, (uint32_t)vl);
            cp_buf_add(out, v, vl);
        }
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        if (e) {
            rc = flint_err_set(err, FLINT_IO, "rocksdb: reading state '%s': %s", st[s].name, e);
            rocksdb_free(e);
        }
        rocksdb_iter_destroy(it);
        rocksdb_readoptions_destroy(ro);
        if (header) cp_buf_u8(out, 0);
    }
    cp_buf_u8(out, 0);
    return rc;
}

cp_rdb_view *cp_rdb_view_new(tm_state_backend *b, flint_err *err) {
    rocksdb_t *db = tm_state_rocksdb_db(b);
    if (!db) {
        flint_err_set(err, FLINT_INVALID, "not a RocksDB backend");
        return NULL;
    }
    cp_rdb_view *v = XNEW(cp_rdb_view);
    v->db = db;
    v->snap = rocksdb_create_snapshot(db);
    v->n = b->n_states;
    v->st = xcalloc((size_t)v->n + 1, sizeof *v->st);
    for (int i = 0; i < v->n; i++) {
        v->st[i].name = xstrdup(b->states[i]->name);
        v->st[i].kind = b->states[i]->kind;
        v->st[i].ttl = b->states[i]->ttl_ms;
        v->st[i].cf = tm_state_rocksdb_cf(b->states[i]);
    }
    return v;
}

int cp_rdb_view_block(cp_rdb_view *v, int kg, cp_buf *out, flint_err *err) {
    return write_block(v->db, v->snap, v->st, v->n, kg, out, err);
}

void cp_rdb_view_free(cp_rdb_view *v) {
    if (!v) return;
    rocksdb_release_snapshot(v->db, v->snap);
    for (int i = 0; i < v->n; i++) free(v->st[i].name);
    free(v->st);
    free(v);
}

const char *cp_rdb_dir(tm_state_backend *b) { return tm_state_rocksdb_dir(b); }

int cp_rdb_checkpoint(tm_state_backend *b, const char *dir, cp_buf *meta, flint_err *err) {
    rocksdb_t *db = tm_state_rocksdb_db(b);
    if (!db) return flint_err_set(err, FLINT_INVALID, "not a RocksDB backend");
    char *e = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(db, &e);
    if (!e) rocksdb_checkpoint_create(cp, dir, 0, &e);
    if (cp) rocksdb_checkpoint_object_destroy(cp);
    if (e) {
        int rc = flint_err_set(err, FLINT_IO, "rocksdb checkpoint into %s: %s", dir, e);
        rocksdb_free(e);
        return rc;
    }
    cp_buf_add(meta, "FRIM", 4);
    cp_buf_u32(meta, (uint32_t)b->n_states);
    for (int i = 0; i < b->n_states; i++) {
        tm_state *st = b->states[i];
        size_t nl = strlen(st->name), cl = 0;
        cp_buf_u16(meta, (uint16_t)nl);
        cp_buf_add(meta, st->name, nl);
        cp_buf_u8(meta, (uint8_t)st->kind);
        cp_buf_u64(meta, (uint64_t)st->ttl_ms);
        char *cf = rocksdb_column_family_handle_get_name(tm_state_rocksdb_cf(st), &cl);
        cp_buf_u16(meta, (uint16_t)cl);
        cp_buf_add(meta, cf, cl);
        rocksdb_free(cf);
    }
    return FLINT_OK;
}

/* ---- restoring an incremental handle ---------------------------------------------------------- */

static char *merge_full(void *st, const char *key, size_t klen, const char *existing, size_t elen,
                        const char *const *ops, const size_t *lens, int n, unsigned char *success, size_t *out_len) {
    (void)st, (void)key, (void)klen;
    size_t total = existing ? elen : 0;
    for (int i = 0; i < n; i++) total += lens[i];
    char *r = malloc(total ? total : 1);
    if (!r) {
        *success = 0;
        return NULL;
    }
    size_t off = 0;
    if (existing && elen) memcpy(r, existing, elen), off = elen;
    for (int i = 0; i < n; i++) memcpy(r + off, ops[i], lens[i]), off += lens[i];
    *out_len = total;
    *success = 1;
    return r;
}

static char *merge_partial(void *st, const char *key, size_t klen, const char *const *ops, const size_t *lens, int n,
                           unsigned char *success, size_t *out_len) {
    return merge_full(st, key, klen, NULL, 0, ops, lens, n, success, out_len);
}

static void merge_delete(void *st, const char *v, size_t len) {
    (void)st, (void)len;
    free((void *)v);
}
static void merge_destroy(void *st) { (void)st; }
static const char *merge_name(void *st) {
    (void)st;
    return "flint-list-append";   /* the backend's list merge operator */
}

typedef struct meta_rd {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} meta_rd;

static const uint8_t *mtake(meta_rd *m, size_t n) {
    if (m->bad || m->len - m->pos < n) {
        m->bad = true;
        return NULL;
    }
    const uint8_t *r = m->p + m->pos;
    m->pos += n;
    return r;
}
static uint32_t mu16(meta_rd *m) {
    const uint8_t *p = mtake(m, 2);
    return p ? (uint32_t)(p[0] | p[1] << 8) : 0;
}
static uint32_t mu32(meta_rd *m) {
    const uint8_t *p = mtake(m, 4);
    return p ? tm_get32le(p) : 0;
}

/* The files of h under their local names in dir: the shared SST files hard-linked (copied across
 * file systems; a database never writes into its SST files), the private ones (MANIFEST,
 * CURRENT, OPTIONS) linked too unless copy_private (a database opened read-write on them). */
static int place_files(const Flint__Checkpoint__KeyedStateHandle *h, const char *dir, bool copy_private,
                       const char *what, const char **bad, flint_err *err) {
    int rc = FLINT_OK;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        size_t nf = pass ? h->n_private_files : h->n_shared_files;
        Flint__Checkpoint__NamedFile *const *fs = pass ? h->private_files : h->shared_files;
        for (size_t i = 0; i < nf && !rc; i++) {
            const char *name = fs[i]->name;
            if (!name || !name[0] || strchr(name, '/') || !fs[i]->handle)
                return flint_err_set(err, FLINT_INVALID, "%s: a file without a proper name", what);
            char *dst = xasprintf("%s/%s", dir, name);
            const char *src = fs[i]->handle->path;
            if (src[0]) {
                int64_t copied;
                *bad = src;
                struct stat sb;
                if (stat(src, &sb) != 0)
                    rc = flint_err_set(err, FLINT_IO, "cannot read %s: %s", src, strerror(errno));
                else if (fs[i]->handle->size > 0 && sb.st_size != fs[i]->handle->size)
                    rc = flint_err_set(err, FLINT_INVALID, "%s has %lld bytes, the checkpoint says %lld", src,
                                       (long long)sb.st_size, (long long)fs[i]->handle->size);
                else if (pass && copy_private)
                    rc = cp_copy_file(src, dst, err);
                else
                    rc = cp_link_or_copy(src, dst, &copied, err);
            } else {
                rc = cp_write_file(dst, fs[i]->handle->data.data, fs[i]->handle->data.len, err);
            }
            free(dst);
        }
    }
    return rc;
}

/* Flink's incremental restore: the files of h become b's database (b: RocksDB, no state yet, the
 * handle's key groups), whose column families cfnames[0..n) the states st[0..n) take over. */
static int restore_native(const Flint__Checkpoint__KeyedStateHandle *h, tm_state_backend *b, const rstate *st,
                          char *const *cfnames, uint32_t n, const char *what, const char **bad, flint_err *err) {
    const char *dir = cp_rdb_dir(b);
    int rc = tm_state_rocksdb_reset(b, err);
    if (rc) return rc;
    if ((rc = place_files(h, dir, true, what, bad, err))) {
        /* back to an empty database */
        flint_err ignored = {0};
        cp_rm_rf(dir);
        if (mkdir(dir, 0755) == 0) tm_state_rocksdb_reopen(b, 0, NULL, NULL, &ignored);
        return rc;
    }
    *bad = (h->meta_data && h->meta_data->path) ? h->meta_data->path : "";
    char **names = xcalloc((size_t)n + 1, sizeof *names);
    for (uint32_t i = 0; i < n; i++) names[i] = st[i].name;
    rc = tm_state_rocksdb_reopen(b, (int)n, cfnames, names, err);
    free(names);
    if (rc) {
        flint_err_prefix(err, "%s", what);
        return rc;
    }
    for (uint32_t i = 0; i < n && !rc; i++) {
        tm_state *s;
        rc = tm_state_register(b, st[i].name, (tm_state_kind)st[i].kind, st[i].ttl, &s, err);
    }
    return rc;
}

/* The slow way (another backend, other key groups: rescaling): the files of h opened read-only in
 * scratch (removed after), and the entries of key groups [first, last] added to b. cfnames[0] is
 * "default", cfnames[1..n] the states'. */
static int restore_reinsert(const Flint__Checkpoint__KeyedStateHandle *h, tm_state_backend *b, rstate *st,
                            char *const *cfnames, uint32_t n, int first, int last, const char *scratch,
                            const char *what, const char **bad, flint_err *err) {
    cp_rm_rf(scratch);
    if (mkdir(scratch, 0755) != 0) return flint_err_set(err, FLINT_IO, "cannot create %s: %s", scratch, strerror(errno));
    int rc = place_files(h, scratch, false, what, bad, err);
    if (rc) {
        cp_rm_rf(scratch);
        return rc;
    }
    *bad = (h->meta_data && h->meta_data->path) ? h->meta_data->path : "";
    rocksdb_options_t *opts = rocksdb_options_create(), **cfopts = xcalloc((size_t)n + 1, sizeof *cfopts);
    rocksdb_options_set_info_log_level(opts, 3);
    rocksdb_column_family_handle_t **cfs = xcalloc((size_t)n + 1, sizeof *cfs);
    for (uint32_t i = 0; i <= n; i++) {
        cfopts[i] = rocksdb_options_create();
        rocksdb_options_set_merge_operator(cfopts[i], rocksdb_mergeoperator_create(NULL, merge_destroy, merge_full,
                                                                                     merge_partial, merge_delete,
                                                                                     merge_name));
    }
    char *e = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(opts, scratch, (int)n + 1,
                                                                (const char *const *)cfnames,
                                                                (const rocksdb_options_t *const *)cfopts, cfs, 0, &e);
    if (e) {
        rc = flint_err_set(err, FLINT_INVALID, "%s: the checkpoint's RocksDB files do not open: %s", what, e);
        rocksdb_free(e);
        db = NULL;
    }
    for (uint32_t i = 0; i < n && db; i++) st[i].cf = cfs[i + 1];
    const Flint__Checkpoint__KeyGroupRange *r = h->key_group_range;
    int lo = r && r->start > first ? r->start : first, hi = r && r->end < last ? r->end : last;
    cp_buf blk = {0};
    for (int kg = lo; kg <= hi && db && !rc; kg++) {
        blk.len = 0;
        if ((rc = write_block(db, NULL, st, (int)n, kg, &blk, err))) break;
        if (blk.len <= 7) continue;   /* nothing in this key group */
        if (!b) {
            rc = flint_err_set(err, FLINT_STATE, "%s holds keyed state for an operator that is not keyed", what);
            break;
        }
        cp_mem_in in = {blk.p, blk.len, 0};
        if ((rc = tm_state_restore(b, cp_mem_read, &in, err))) flint_err_prefix(err, "%s, key group %d", what, kg);
    }
    cp_buf_free(&blk);
    if (db) {
        for (uint32_t i = 0; i <= n; i++)
            if (cfs[i]) rocksdb_column_family_handle_destroy(cfs[i]);
        rocksdb_close(db);
    }
    for (uint32_t i = 0; i <= n; i++) rocksdb_options_destroy(cfopts[i]);
    free(cfopts);
    free(cfs);
    rocksdb_options_destroy(opts);
    cp_rm_rf(scratch);
    return rc;
}

/* The timers of the meta file (after its state list): u32 key groups, each u16 kg, u32 T, timers. */
static int restore_timers(meta_rd *m, int first, int last, cp_queue_fn get_q, void *ud, const char *what,
                          flint_err *err) {
    int rc = FLINT_OK;
    uint32_t nkg = mu32(m);
    for (uint32_t i = 0; i < nkg && !rc && !m->bad; i++) {
        int kg = (int)mu16(m);
        size_t start = m->pos;
        uint32_t nt = mu32(m);
        for (uint32_t t = 0; t < nt && !m->bad; t++) {
            mtake(m, 9);
            uint32_t kl = mu32(m);
            mtake(m, kl);
            uint32_t nl = mu32(m);
            mtake(m, nl);
        }
        if (m->bad) break;
        rc = cp_timers_restore(m->p + start, m->pos - start, kg, first, last, get_q, ud, err);
    }
    if (!rc && m->bad) rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: truncated timers", what);
    return rc;
}

bool cp_rdb_restores_natively(const Flint__Checkpoint__KeyedStateHandle *h, tm_state_backend *b, int first,
                              int last) {
    const Flint__Checkpoint__KeyGroupRange *r = h->key_group_range;
    return b && tm_state_rocksdb_db(b) && b->n_states == 0 && r && r->start == first && r->end == last;
}

int cp_restore_keyed_incremental(const Flint__Checkpoint__KeyedStateHandle *h, tm_state_backend *b, int first,
                                 int last, const char *scratch, cp_queue_fn get_q, void *ud, const char **bad,
                                 flint_err *err) {
    *bad = h->meta_data && h->meta_data->path ? h->meta_data->path : "";
    cp_buf meta = {0};
    int rc = cp_read_handle(h->meta_data, &meta, err);
    if (rc) return rc;
    const char *what = (*bad)[0] ? *bad : "inline incremental meta data";
    meta_rd m = {meta.p, meta.len, 0, false};
    const uint8_t *magic = mtake(&m, 4);
    if (!magic || memcmp(magic, "FRIM", 4) != 0) {
        cp_buf_free(&meta);
        return flint_err_set(err, FLINT_INVALID, "%s is corrupted: not an incremental RocksDB meta file", what);
    }
    uint32_t n = mu32(&m);
    if (n > 100000) m.bad = true;
    uint32_t nalloc = 0;   /* states (and column family names after "default") allocated */
    rstate *st = xcalloc((size_t)(m.bad ? 0 : n) + 1, sizeof *st);
    char **cfnames = xcalloc((size_t)(m.bad ? 0 : n) + 2, sizeof *cfnames);
    cfnames[0] = xstrdup("default");
    for (uint32_t i = 0; i < n && !m.bad; i++) {
        uint32_t nl = mu16(&m);
        const uint8_t *name = mtake(&m, nl);
        const uint8_t *kind = mtake(&m, 1);
        const uint8_t *ttl = mtake(&m, 8);
        uint32_t cl = mu16(&m);
        const uint8_t *cf = mtake(&m, cl);
        if (m.bad) break;
        st[i].name = xstrndup((const char *)name, nl);
        st[i].kind = *kind;
        st[i].ttl = (int64_t)tm_get64le(ttl);
        cfnames[i + 1] = xstrndup((const char *)cf, cl);
        nalloc = i + 1;
    }
    if (m.bad) {
        rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: truncated state list", what);
    } else {
        if (cp_rdb_restores_natively(h, b, first, last))
            rc = restore_native(h, b, st, cfnames + 1, n, what, bad, err);
        else
            rc = restore_reinsert(h, b, st, cfnames, n, first, last, scratch, what, bad, err);
    }
    if (!rc) rc = restore_timers(&m, first, last, get_q, ud, what, err);
    for (uint32_t i = 0; i < nalloc; i++) free(st[i].name);
    for (uint32_t i = 0; i <= nalloc; i++) free(cfnames[i]);
    free(cfnames);
    free(st);
    cp_buf_free(&meta);
    return rc;
}

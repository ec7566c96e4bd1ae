/* The rocksdb state backend (Flink's EmbeddedRocksDBStateBackend) over RocksDB's C API: one
 * RocksDB instance per operator instance in <io.tmp.dirs>/flint-state-<name>/ (removed on close;
 * durability comes from checkpoints, so the WAL is off), a column family per state, one LRU block
 * cache shared by the instance's column families (state.backend.rocksdb.block-cache-size) and
 * state.backend.rocksdb.writebuffer.size per column family. Keys:
 *     u16 key group (big-endian) | u32 key length | key | u32 namespace length | namespace [| user key]
 * (lengths big-endian), so a key group is one contiguous key range (snapshots, rescaling) and one
 * map (key, namespace) a contiguous prefix. Lists append through a merge operator that
 * concatenates their length-prefixed elements, so adding never reads the list. Point reads and
 * writes go through a write-back cache (tm_state_rdbcache.h), written to RocksDB in batches and
 * before anything reads RocksDB in bulk (iterators, clearing a map, checkpoints). */
#include <assert.h>
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>
#include <xxhash.h>

#include "state/tm_state_int.h"
#include "state/tm_state_rdbcache.h"
#include "util/alloc.h"

typedef struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *dbopts, *cfopts;
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    char *dir;
    /* column families of a restored checkpoint, each taken by the state of that name when it
     * registers (tm_state_rocksdb_reopen) */
    rocksdb_column_family_handle_t **adopt_cf;
    char **adopt_name;
    int n_adopt;
    rocksdb_pinnableslice_t *pin;        /* the last get's value (views point into it) */
    rc_cache *wc;                        /* the write-back cache of point reads and writes */
    uint8_t *kbuf, *vbuf;
    size_t kcap, vcap;
} rdb;

/* The write-back cache: 64k keys, or 16 MiB of keys and values, between batches. */
#define WC_ENTRIES 65536
#define WC_BYTES (16u << 20)

typedef struct rdb_state {
    rocksdb_column_family_handle_t *cf;
} rdb_state;

/* ---- the list merge operator: concatenation ----------------------------------------------------- */

static char *concat(const char *first, size_t flen, const char *const *ops, const size_t *lens, int n, size_t *out_len) {
    size_t total = first ? flen : 0;
    for (int i = 0; i < n; i++) total += lens[i];
    char *r = malloc(total ? total : 1);
    if (!r) return NULL;
    size_t off = 0;
    if (first && flen) {
        memcpy(r, first, flen);
        off = flen;
    }
    for (int i = 0; i < n; i++) {
        if (lens[i]) memcpy(r + off, ops[i], lens[i]);
        off += lens[i];
    }
    *out_len = total;
    return r;
}

static char *merge_full(void *st, const char *key, size_t klen, const char *existing, size_t elen,
                        const char *const *ops, const size_t *lens, int n, unsigned char *success, size_t *out_len) {
    (void)st;
    (void)key;
    (void)klen;
    char *r = concat(existing, elen, ops, lens, n, out_len);
    *success = r != NULL;
    return r;
}

static char *merge_partial(void *st, const char *key, size_t klen, const char *const *ops, const size_t *lens, int n,
                           unsigned char *success, size_t *out_len) {
    (void)st;
    (void)key;
    (void)klen;
    char *r = concat(NULL, 0, ops, lens, n, out_len);
    *success = r != NULL;
    return r;
}

static void merge_delete(void *st, const char *v, size_t len) {
    (void)st;
    (void)len;
    free((void *)v);
}

static void merge_destroy(void *st) { (void)st; }
static const char *merge_name(void *st) {
    (void)st;
    return "flint-list-append";
}

/* ---- files ------------------------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) == 0) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove the instance directories in tmp that a dead process left behind (a killed taskmanager):
 * names end in "-<pid>-<seq>" (tm_state_op_config); a pid that is alive, or a name of another
 * form, is left alone. */
static void sweep_stale(const char *tmp) {
    DIR *dir = opendir(tmp);
    if (!dir) return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *n = de->d_name;
        if (strncmp(n, "flint-state-", 12) != 0) continue;
        const char *last = strrchr(n, '-');
        if (!last || last == n) continue;
        const char *p = last - 1;
        while (p > n && *p >= '0' && *p <= '9') p--;
        if (*p != '-' || p + 1 == last) continue;
        long pid = strtol(p + 1, NULL, 10);
        if (pid <= 1 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *path = xasprintf("%s/%s", tmp, n);
        rm_rf(path);
        free(path);
    }
    closedir(dir);
}

/* ---- keys -------------------------------------------------------------------------------------- */

static inline void put32be(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t get32be(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The RocksDB key of (current key, ns[, uk]) in r->kbuf; returns its length. */
static size_t make_key(tm_state_backend *b, const void *ns, size_t nl, const void *uk, size_t ukl) {
    rdb *r = b->impl;
    size_t n = 2 + 4 + b->klen + 4 + nl + ukl;
    if (n > r->kcap) {
        r->kcap = n < 256 ? 256 : 2 * n;
        r->kbuf = xrealloc(r->kbuf, r->kcap);
    }
    uint8_t *p = r->kbuf;
    p[0] = (uint8_t)(b->kg >> 8);
    p[1] = (uint8_t)b->kg;
    put32be(p + 2, (uint32_t)b->klen);
    if (b->klen) memcpy(p + 6, b->key, b->klen);
    p += 6 + b->klen;
    put32be(p, (uint32_t)nl);
    if (nl) memcpy(p + 4, ns, nl);
    p += 4 + nl;
    if (ukl) memcpy(p, uk, ukl);
    return n;
}

/* The value pieces joined (into r->vbuf unless there is just one). */
static const char *join(rdb *r, const tm_slice *parts, int np, size_t *len) {
    if (np == 1) {
        *len = parts[0].n;
        return parts[0].p;
    }
    size_t n = 0;
    for (int i = 0; i < np; i++) n += parts[i].n;
    if (n > r->vcap) {
        r->vcap = n < 256 ? 256 : 2 * n;
        r->vbuf = xrealloc(r->vbuf, r->vcap);
    }
    size_t off = 0;
    for (int i = 0; i < np; i++) {
        if (parts[i].n) memcpy(r->vbuf + off, parts[i].p, parts[i].n);
        off += parts[i].n;
    }
    *len = n;
    return (const char *)r->vbuf;
}

static int check(tm_state_backend *b, char *err, const char *what, const tm_state *st) {
    if (!err) return FLINT_OK;
    tm_state_backend_fail(b, "rocksdb %s%s%s: %s", what, st ? " of state " : "", st ? st->name : "", err);
    rocksdb_free(err);
    return FLINT_IO;
}

/* ---- the backend table ------------------------------------------------------------------------- */

static int rdb_open(tm_state_backend *b, flint_err *err) {
    rdb *r = XNEW(rdb);
    /* io.tmp.dirs may list several directories (separated by ';', ',', ':' or '|'): instances
     * spread over them by a hash of their name */
    const char *seps = ";,:|", *d = b->tmp_dir;
    int ndirs = 0;
    for (const char *p = d; *p; p += strcspn(p, seps), p += *p ? 1 : 0)
        if (strcspn(p, seps)) ndirs++;
    int pick = ndirs > 1 ? (int)(XXH3_64bits(b->name, strlen(b->name)) % (uint64_t)ndirs) : 0;
    for (;;) {
        size_t n = strcspn(d, seps);
        if (n && pick-- == 0) break;
        if (!d[n]) break;
        d += n + 1;
    }
    char *tmp = xstrndup(d, strcspn(d, seps));
    if (!tmp[0]) {
        free(tmp);
        tmp = xstrdup("/tmp");
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) {
        flint_err_set(err, FLINT_IO, "rocksdb: cannot create io.tmp.dirs directory %s: %s", tmp,
                      strerror(errno));
        free(tmp);
        free(r);
        return FLINT_IO;
    }
    char name[201];
    snprintf(name, sizeof name, "%s", b->name);
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
              *c == '_' || *c == '.'))
            *c = '_';
    r->dir = xasprintf("%s/flint-state-%s", tmp, name);
    rm_rf(r->dir); /* a stale one from a crashed run */
    sweep_stale(tmp);
    free(tmp);

    r->cache = rocksdb_cache_create_lru((size_t)(b->cfg.block_cache_size > 0 ? b->cfg.block_cache_size : 8 << 20));
    r->bbto = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(r->bbto, r->cache);
    rocksdb_block_based_options_set_filter_policy(r->bbto, rocksdb_filterpolicy_create_bloom(10));
    size_t wbs = (size_t)(b->cfg.write_buffer_size > 0 ? b->cfg.write_buffer_size : 16 << 20);

    r->cfopts = rocksdb_options_create();
    rocksdb_options_set_write_buffer_size(r->cfopts, wbs);
    rocksdb_options_set_block_based_table_factory(r->cfopts, r->bbto);
    rocksdb_options_set_merge_operator(r->cfopts, rocksdb_mergeoperator_create(NULL, merge_destroy, merge_full,
                                                                                 merge_partial, merge_delete, merge_name));

    r->dbopts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(r->dbopts, 1);
    rocksdb_options_set_write_buffer_size(r->dbopts, 1 << 20); /* the unused default column family */
    rocksdb_options_set_block_based_table_factory(r->dbopts, r->bbto);
    rocksdb_options_set_info_log_level(r->dbopts, 3 /* ERROR */);
    rocksdb_options_set_keep_log_file_num(r->dbopts, 1);
    rocksdb_options_set_max_background_jobs(r->dbopts, 2);

    char *e = NULL;
    r->db = rocksdb_open(r->dbopts, r->dir, &e);
    if (e) {
        flint_err_set(err, FLINT_IO, "rocksdb: cannot open %s: %s", r->dir, e);
        rocksdb_free(e);
        rocksdb_options_destroy(r->dbopts);
        rocksdb_options_destroy(r->cfopts);
        rocksdb_block_based_options_destroy(r->bbto);
        rocksdb_cache_destroy(r->cache);
        rm_rf(r->dir);
        free(r->dir);
        free(r);
        return FLINT_IO;
    }
    r->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(r->wo, 1);
    r->ro = rocksdb_readoptions_create();
    /* RocksDB counts every key comparison in its thread-local perf context by default (two TLS
     * lookups per comparison through the shared library's __tls_get_addr: a fifth of a put's
     * instructions). Nothing reads the counts: off for this thread, the task's, which uses the
     * backend. */
    rocksdb_set_perf_level(rocksdb_disable);
    r->wc = rc_new(WC_ENTRIES, WC_BYTES);
    b->impl = r;
    return FLINT_OK;
}

/* Drop the column families of a restore that no state took. */
static void adopt_free(rdb *r) {
    for (int i = 0; i < r->n_adopt; i++) {
        if (r->adopt_cf[i]) rocksdb_column_family_handle_destroy(r->adopt_cf[i]);
        free(r->adopt_name[i]);
    }
    free(r->adopt_cf);
    free(r->adopt_name);
    r->adopt_cf = NULL;
    r->adopt_name = NULL;
    r->n_adopt = 0;
}

static void rdb_close(tm_state_backend *b) {
    rdb *r = b->impl;
    if (!r) return;
    if (r->pin) rocksdb_pinnableslice_destroy(r->pin);
    for (int i = 0; i < b->n_states; i++) {
        rdb_state *s = b->states[i]->impl;
        if (!s) continue;
        rocksdb_column_family_handle_destroy(s->cf);
        free(s);
    }
    adopt_free(r);
    rc_free(r->wc);                    /* what is dirty goes with the instance's directory */
    if (r->db) rocksdb_close(r->db);   /* NULL after a failed reset */
    rocksdb_writeoptions_destroy(r->wo);
    rocksdb_readoptions_destroy(r->ro);
    rocksdb_options_destroy(r->dbopts);
    rocksdb_options_destroy(r->cfopts);
    rocksdb_block_based_options_destroy(r->bbto);
    rocksdb_cache_destroy(r->cache);
    rm_rf(r->dir);
    free(r->dir);
    free(r->kbuf);
    free(r->vbuf);
    free(r);
    b->impl = NULL;
}

static int rdb_add_state(tm_state *st, flint_err *err) {
    rdb *r = st->b->impl;
    char *e = NULL;
    char cfname[1100];
    snprintf(cfname, sizeof cfname, "s%d-%s", st->index, st->name);
    rocksdb_column_family_handle_t *cf = NULL;
    for (int i = 0; i < r->n_adopt && !cf; i++)
        if (r->adopt_cf[i] && strcmp(r->adopt_name[i], st->name) == 0) {
            cf = r->adopt_cf[i];
            r->adopt_cf[i] = NULL;
        }
    if (!cf) cf = rocksdb_create_column_family(r->db, r->cfopts, cfname, &e);
    if (e) {
        flint_err_set(err, FLINT_IO, "rocksdb: cannot create the column family of state '%s': %s", st->name, e);
        rocksdb_free(e);
        return FLINT_IO;
    }
    rdb_state *s = XNEW(rdb_state);
    s->cf = cf;
    st->impl = s;
    return FLINT_OK;
}

static inline rocksdb_column_family_handle_t *cf_of(const tm_state *st) { return ((rdb_state *)st->impl)->cf; }

static inline rc_db wdb(const rdb *r) { return (rc_db){r->db, r->wo}; }

static bool rdb_get(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl, const uint8_t **v,
                    size_t *len) {
    tm_state_backend *b = st->b;
    rdb *r = b->impl;
    size_t kl = make_key(b, ns, nl, uk, ukl);
    if (r->pin) {
        rocksdb_pinnableslice_destroy(r->pin);
        r->pin = NULL;
    }
    rc_begin_read(r->wc);
    switch (rc_get(r->wc, cf_of(st), r->kbuf, kl, v, len)) {
    case RC_PRESENT: return true;
    case RC_ABSENT: return false;
    case RC_MISS: break;
    }
    char *e = NULL;
    r->pin = rocksdb_get_pinned_cf(r->db, r->ro, cf_of(st), (const char *)r->kbuf, kl, &e);
    if (e) {
        check(b, e, "get", st);
        return false;
    }
    if (!r->pin) {
        if (rc_note_absent(r->wc, wdb(r), cf_of(st), r->kbuf, kl, &e)) check(b, e, "write", st);
        return false;
    }
    *v = (const uint8_t *)rocksdb_pinnableslice_value(r->pin, len);
    if (!*v) *v = (const uint8_t *)"";
    return true;
}

static int rdb_put(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl, const tm_slice *parts,
                   int np) {
    tm_state_backend *b = st->b;
    rdb *r = b->impl;
    size_t kl = make_key(b, ns, nl, uk, ukl), vl;
    const char *v = join(r, parts, np, &vl);
    char *e = NULL;
    rc_put(r->wc, wdb(r), cf_of(st), r->kbuf, kl, v, vl, &e);
    return check(b, e, "put", st);
}

static int rdb_append(tm_state *st, const void *ns, size_t nl, const tm_slice *parts, int np) {
    tm_state_backend *b = st->b;
    rdb *r = b->impl;
    size_t kl = make_key(b, ns, nl, NULL, 0), vl;
    const char *v = join(r, parts, np, &vl);
    char *e = NULL;
    if (!rc_evict(r->wc, wdb(r), cf_of(st), r->kbuf, kl, &e))
        rocksdb_merge_cf(r->db, r->wo, cf_of(st), (const char *)r->kbuf, kl, v, vl, &e);
    return check(b, e, "merge", st);
}

static int rdb_del(tm_state *st, const void *ns, size_t nl, const void *uk, size_t ukl) {
    tm_state_backend *b = st->b;
    rdb *r = b->impl;
    size_t kl = make_key(b, ns, nl, uk, ukl);
    char *e = NULL;
    rc_del(r->wc, wdb(r), cf_of(st), r->kbuf, kl, &e);
    return check(b, e, "delete", st);
}

/* ---- iteration --------------------------------------------------------------------------------- */

struct tm_raw_iter {
    tm_state *st;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    uint8_t *lower, *upper;              /* the bounds (must outlive the iterator) */
    size_t llen, ulen;
    bool started;
};

static tm_raw_iter *iter_bounded(tm_state *st, const uint8_t *lower, size_t llen, const uint8_t *upper, size_t ulen) {
    rdb *r = st->b->impl;
    char *e = NULL;
    rc_flush(r->wc, wdb(r), &e);   /* the iterator reads RocksDB */
    check(st->b, e, "write", st);
    tm_raw_iter *it = XNEW(tm_raw_iter);
    it->st = st;
    it->lower = xmalloc(llen ? llen : 1);
    memcpy(it->lower, lower, llen);
    it->llen = llen;
    it->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(it->ro, (const char *)it->lower, llen);
    if (upper) {
        it->upper = xmalloc(ulen ? ulen : 1);
        memcpy(it->upper, upper, ulen);
        it->ulen = ulen;
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)it->upper, ulen);
    }
    it->it = rocksdb_create_iterator_cf(r->db, it->ro, cf_of(st));
    return it;
}

static tm_raw_iter *rdb_iter_range(tm_state *st, int first, int last) {
    uint8_t lo[2] = {(uint8_t)(first >> 8), (uint8_t)first};
    uint8_t hi[2] = {(uint8_t)((last + 1) >> 8), (uint8_t)(last + 1)};
    return iter_bounded(st, lo, 2, last + 1 < 65536 ? hi : NULL, 2);
}

static tm_raw_iter *rdb_iter_map(tm_state *st, const void *ns, size_t nl) {
    tm_state_backend *b = st->b;
    rdb *r = b->impl;
    size_t kl = make_key(b, ns, nl, NULL, 0);
    /* the prefix's successor: the last byte below 0xff incremented, the rest cut */
    uint8_t *succ = xmalloc(kl);
    memcpy(succ, r->kbuf, kl);
    size_t sl = kl;
    while (sl > 0 && succ[sl - 1] == 0xff) sl--;
    if (sl > 0) succ[sl - 1]++;
    tm_raw_iter *it = iter_bounded(st, r->kbuf, kl, sl ? succ : NULL, sl);
    free(succ);
    return it;
}

static bool parse_key(const tm_state *st, const uint8_t *k, size_t kl, tm_state_entry *e) {
    if (kl < 10) return false;
    e->key_group = k[0] << 8 | k[1];
    uint32_t n = get32be(k + 2);
    if ((size_t)n > kl - 10) return false;
    e->key = k + 6;
    e->klen = n;
    const uint8_t *p = k + 6 + n;
    uint32_t m = get32be(p);
    if ((size_t)m > kl - 10 - n) return false;
    e->ns = p + 4;
    e->nslen = m;
    e->ukey = p + 4 + m;
    e->uklen = kl - 10 - n - m;
    if (st->kind != TM_STATE_MAP) {
        if (e->uklen) return false;
        e->ukey = NULL;
    }
    return true;
}

static bool rdb_iter_next(tm_raw_iter *it, tm_state_entry *e) {
    if (!it->started) {
        rocksdb_iter_seek(it->it, (const char *)it->lower, it->llen);
        it->started = true;
    } else {
        rocksdb_iter_next(it->it);
    }
    for (; rocksdb_iter_valid(it->it); rocksdb_iter_next(it->it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it->it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it->it, &vl);
        if (!parse_key(it->st, k, kl, e)) continue; /* not ours: skip */
        e->value = v ? v : (const uint8_t *)"";
        e->vlen = vl;
        return true;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    check(it->st->b, err, "iterate", it->st);
    return false;
}

static void rdb_iter_close(tm_raw_iter *it) {
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ro);
    free(it->lower);
    free(it->upper);
    free(it);
}

static int rdb_clear_map(tm_state *st, const void *ns, size_t nl) {
    tm_state_backend *b = st->b;
    rdb *r = b->impl;
    tm_raw_iter *it = rdb_iter_map(st, ns, nl);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_iter_seek(it->it, (const char *)it->lower, it->llen);
    int n = 0;
    for (; rocksdb_iter_valid(it->it); rocksdb_iter_next(it->it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it->it, &kl);
        rocksdb_writebatch_delete_cf(wb, cf_of(st), k, kl);
        n++;
    }
    char *e = NULL;
    /* the cached entries of these keys (clean: iter_map flushed) go stale */
    for (rocksdb_iter_seek(it->it, (const char *)it->lower, it->llen); !e && rocksdb_iter_valid(it->it);
         rocksdb_iter_next(it->it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it->it, &kl);
        rc_evict(r->wc, wdb(r), cf_of(st), (const uint8_t *)k, kl, &e);
    }
    rdb_iter_close(it);
    if (n && !e) rocksdb_write(r->db, r->wo, wb, &e);
    rocksdb_writebatch_destroy(wb);
    return check(b, e, "clear", st);
}

const tm_state_backend_vt tm_state_rocksdb_vt = {
    .name = "rocksdb",
    .open = rdb_open,
    .close = rdb_close,
    .add_state = rdb_add_state,
    .get = rdb_get,
    .put = rdb_put,
    .append = rdb_append,
    .del = rdb_del,
    .clear_map = rdb_clear_map,
    .iter_map = rdb_iter_map,
    .iter_range = rdb_iter_range,
    .iter_next = rdb_iter_next,
    .iter_close = rdb_iter_close,
};

/* ---- issue 6: what checkpoints need (tm_state_int.h) ------------------------------------------ */

void *tm_state_rocksdb_db(tm_state_backend *b) {
    if (!b || b->vt != &tm_state_rocksdb_vt || !b->impl) return NULL;
    rdb *r = b->impl;
    char *e = NULL;
    /* checkpoints read the database: the cache's writes first */
    if (r->db && rc_flush(r->wc, wdb(r), &e)) check(b, e, "write", NULL);
    return r->db;
}

void *tm_state_rocksdb_cf(tm_state *st) {
    return st && st->b->vt == &tm_state_rocksdb_vt && st->impl ? cf_of(st) : NULL;
}

int tm_state_rocksdb_reset(tm_state_backend *b, flint_err *err) {
    assert(b->vt == &tm_state_rocksdb_vt && b->impl && b->n_states == 0);
    rdb *r = b->impl;
    if (r->pin) rocksdb_pinnableslice_destroy(r->pin);
    r->pin = NULL;
    adopt_free(r);
    rocksdb_close(r->db);
    r->db = NULL;
    rm_rf(r->dir);
    if (mkdir(r->dir, 0755) != 0)
        return flint_err_set(err, FLINT_IO, "rocksdb: cannot create %s: %s", r->dir, strerror(errno));
    return FLINT_OK;
}

int tm_state_rocksdb_reopen(tm_state_backend *b, int n, char *const *cf_names, char *const *state_names,
                            flint_err *err) {
    assert(b->vt == &tm_state_rocksdb_vt && b->impl && b->n_states == 0 && n >= 0);
    rdb *r = b->impl;
    assert(!r->db);
    const char **names = xcalloc((size_t)n + 1, sizeof *names);
    const rocksdb_options_t **opts = xcalloc((size_t)n + 1, sizeof *opts);
    rocksdb_column_family_handle_t **cfs = xcalloc((size_t)n + 1, sizeof *cfs);
    names[0] = "default";
    opts[0] = r->dbopts;
    for (int i = 0; i < n; i++) names[i + 1] = cf_names[i], opts[i + 1] = r->cfopts;
    char *e = NULL;
    r->db = rocksdb_open_column_families(r->dbopts, r->dir, n + 1, names, opts, cfs, &e);
    int rc = FLINT_OK;
    if (e) {
        rc = flint_err_set(err, FLINT_INVALID, "rocksdb: the checkpoint's files in %s do not open: %s", r->dir, e);
        rocksdb_free(e);
        /* back to an empty instance, so that the backend stays usable */
        rm_rf(r->dir);
        r->db = rocksdb_open(r->dbopts, r->dir, &e);
        if (e) {
            tm_state_backend_fail(b, "rocksdb: cannot open %s: %s", r->dir, e);
            rocksdb_free(e);
            r->db = NULL;
        }
    } else {
        rocksdb_column_family_handle_destroy(cfs[0]);
        r->n_adopt = n;
        r->adopt_cf = xcalloc((size_t)n + 1, sizeof *r->adopt_cf);
        r->adopt_name = xcalloc((size_t)n + 1, sizeof *r->adopt_name);
        for (int i = 0; i < n; i++) r->adopt_cf[i] = cfs[i + 1], r->adopt_name[i] = xstrdup(state_names[i]);
    }
    free(names);
    free(opts);
    free(cfs);
    return rc;
}

const char *tm_state_rocksdb_dir(tm_state_backend *b) {
    return b && b->vt == &tm_state_rocksdb_vt && b->impl ? ((rdb *)b->impl)->dir : NULL;
}

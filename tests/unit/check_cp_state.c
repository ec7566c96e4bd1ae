/* Unit tests for what task snapshots hold (taskmanager/checkpoint/cp_state.h): keyed state files
 * with per-key-group sections and timers, written from a view of the hashmap backend (copy on
 * write: the view written on another thread while the task updates, removes and inserts, with
 * two views live at once, equals the state when it was taken, and the live state has the writes)
 * or from a RocksDB snapshot, restored into the other backend at another parallelism (handles cut to
 * a subtask's key groups as the jobmanager cuts them); incremental RocksDB checkpoints (hard
 * links, a meta file) restored into the hashmap backend, into RocksDB at the same key groups (the
 * files become the database) and at others (re-inserted); operator list and broadcast state in the
 * protocol's element layout; corrupted files named in errors. */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/cp_state.h"
#include "operators/operator.h"
#include "row/row_key.h"
#include "state/tm_state_int.h"
#include "util/alloc.h"

#define MAXP 128
#define NKEYS 300

static char tmpdir[256];
static int seq;

static tm_state_backend *open_range(int type, int first, int last) {
    char name[64];
    snprintf(name, sizeof name, "cpcheck-%d-%d", (int)getpid(), seq++);
    tm_state_config cfg = {.type = type ? TM_BACKEND_ROCKSDB : TM_BACKEND_HASHMAP, .max_parallelism = MAXP,
                           .kg_first = first, .kg_last = last, .tmp_dir = tmpdir, .name = name,
                           .block_cache_size = 8 << 20, .write_buffer_size = 4 << 20};
    tm_state_backend *b = NULL;
    flint_err err = {0};
    ck_assert_msg(tm_state_backend_open(&cfg, &b, &err) == 0, "open: %s", err.msg);
    return b;
}

static tm_state *reg(tm_state_backend *b, const char *name, tm_state_kind kind) {
    tm_state *st = NULL;
    flint_err err = {0};
    ck_assert_msg(tm_state_register(b, name, kind, 0, &st, &err) == 0, "%s", err.msg);
    return st;
}

static void keyname(int i, char *buf) { sprintf(buf, "key-%d", i); }
static int kg_of(const char *k) { return row_key_group(row_key_hash((const uint8_t *)k, strlen(k)), MAXP); }

static int fire_nothing(void *owner, const tm_timer *t) {
    (void)owner, (void)t;
    return 0;
}

/* NKEYS keys: value "v<i>", a list of i % 3 + 1 elements, a map of two entries; a timer at 1000+i
 * (event time) and one at 5000+i (processing time) for every key. */
static void fill(tm_state_backend *b, tm_timer_queue *q) {
    tm_state *v = reg(b, "value", TM_STATE_VALUE), *l = reg(b, "list", TM_STATE_LIST), *m = reg(b, "map", TM_STATE_MAP);
    for (int i = 0; i < NKEYS; i++) {
        char k[32], val[32];
        keyname(i, k);
        ck_assert(tm_state_set_key_hashed(b, k, strlen(k)));
        sprintf(val, "v%d", i);
        ck_assert_int_eq(tm_state_value_put(v, NULL, 0, val, strlen(val)), 0);
        for (int e = 0; e <= i % 3; e++) ck_assert_int_eq(tm_state_list_add(l, "ns", 2, val, strlen(val)), 0);
        ck_assert_int_eq(tm_state_map_put(m, NULL, 0, "a", 1, val, strlen(val)), 0);
        ck_assert_int_eq(tm_state_map_put(m, NULL, 0, "b", 1, "x", 1), 0);
        if (q) {
            tm_timer_register(q, FLINT_EVENT_TIME, (const uint8_t *)k, strlen(k), kg_of(k), NULL, 0, 1000 + i);
            tm_timer_register(q, FLINT_PROCESSING_TIME, (const uint8_t *)k, strlen(k), kg_of(k), (const uint8_t *)"w", 1,
                              5000 + i);
        }
    }
}

/* Every key of [first, last] is there with its state; no other key. */
static void verify(tm_state_backend *b, int first, int last) {
    tm_state *v = reg(b, "value", TM_STATE_VALUE), *l = reg(b, "list", TM_STATE_LIST), *m = reg(b, "map", TM_STATE_MAP);
    int mine = 0;
    for (int i = 0; i < NKEYS; i++) {
        char k[32], want[32];
        keyname(i, k);
        int kg = kg_of(k);
        if (kg < first || kg > last) continue;
        mine++;
        tm_state_set_key(b, k, strlen(k), kg);
        sprintf(want, "v%d", i);
        const uint8_t *p;
        size_t n;
        ck_assert_msg(tm_state_value_get(v, NULL, 0, &p, &n), "key %s lost", k);
        ck_assert(n == strlen(want) && memcmp(p, want, n) == 0);
        ck_assert(tm_state_list_get(l, "ns", 2, &p, &n));
        const uint8_t *pos = p, *end = p + n, *el;
        size_t len;
        int els = 0;
        while (tm_state_list_next(&pos, end, &el, &len)) els++;
        ck_assert_int_eq(els, i % 3 + 1);
        ck_assert(tm_state_map_get(m, NULL, 0, "a", 1, &p, &n) && n == strlen(want));
        ck_assert(tm_state_map_contains(m, NULL, 0, "b", 1));
    }
    ck_assert_uint_eq(tm_state_count(v), (size_t)mine);
}

static void verify_timers(tm_timer_queue *q, int first, int last) {
    size_t want = 0;
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        keyname(i, k);
        int kg = kg_of(k);
        if (kg >= first && kg <= last) want++;
    }
    ck_assert_uint_eq(tm_timer_queue_count(q, FLINT_EVENT_TIME), want);
    ck_assert_uint_eq(tm_timer_queue_count(q, FLINT_PROCESSING_TIME), want);
}

static tm_timer_queue *the_queue;
static tm_timer_queue *get_q(void *ud) {
    (void)ud;
    return the_queue;
}

/* A full handle over file path with offsets for key groups [0, MAXP-1], cut to [s, e]. */
static Flint__Checkpoint__KeyedStateHandle *full_handle(const char *path, int64_t size, const int64_t *offs, int s,
                                                         int e, const char *format) {
    Flint__Checkpoint__KeyedStateHandle *h = xmalloc(sizeof *h);
    flint__checkpoint__keyed_state_handle__init(h);
    h->format = xstrdup(format);
    h->key_group_range = xmalloc(sizeof *h->key_group_range);
    flint__checkpoint__key_group_range__init(h->key_group_range);
    h->key_group_range->start = s;
    h->key_group_range->end = e;
    h->file = xmalloc(sizeof *h->file);
    flint__checkpoint__stream_state_handle__init(h->file);
    h->file->path = xstrdup(path);
    h->file->size = size;
    h->n_key_group_offsets = (size_t)(e - s + 1);
    h->key_group_offsets = xmalloc(h->n_key_group_offsets * sizeof(int64_t));
    memcpy(h->key_group_offsets, offs + s, h->n_key_group_offsets * sizeof(int64_t));
    return h;
}

/* Snapshot a backend of type src with timers into a file from a view, then restore it at
 * parallelism 3 into backends of type dst. */
static void full_roundtrip(int src, int dst) {
    tm_timers *ts = tm_timers_new(MAXP);
    tm_timer_queue *q = tm_timers_queue_new(ts, NULL, fire_nothing);
    tm_state_backend *b = open_range(src, 0, MAXP - 1);
    fill(b, q);
    int64_t offs[MAXP];
    cp_buf file = {0};
    flint_err err = {0};
    {
        cp_keyed_view *v = cp_keyed_view_new(b, &err);
        ck_assert_msg(v != NULL, "%s", err.msg);
        cp_buf tb = {0}, blk = {0};
        size_t toffs[MAXP + 1];
        cp_timers_capture(q, 0, MAXP - 1, &tb, toffs);
        /* writes after the view do not show in it */
        tm_state *extra = reg(b, "value", TM_STATE_VALUE);
        tm_state_set_key_hashed(b, "late", 4);
        tm_state_value_put(extra, NULL, 0, "z", 1);
        for (int kg = 0; kg < MAXP; kg++) {
            blk.len = 0;
            ck_assert_msg(cp_keyed_view_block(v, kg, &blk, &err) == 0, "%s", err.msg);
            offs[kg] = (int64_t)file.len;
            cp_section_add(&file, blk.p, blk.len, tb.p + toffs[kg], toffs[kg + 1] - toffs[kg]);
        }
        cp_keyed_view_free(v);
        cp_buf_free(&tb);
        cp_buf_free(&blk);
    }
    char path[400];
    snprintf(path, sizeof path, "%s/keyed-%d-%d", tmpdir, src, dst);
    ck_assert_msg(cp_write_file(path, file.p, file.len, &err) == 0, "%s", err.msg);
    for (int sub = 0; sub < 3; sub++) {
        int first, last;
        row_key_group_range(sub, MAXP, 3, &first, &last);
        tm_state_backend *r = open_range(dst, first, last);
        tm_timers *ts2 = tm_timers_new(MAXP);
        the_queue = tm_timers_queue_new(ts2, NULL, fire_nothing);
        Flint__Checkpoint__KeyedStateHandle *h = full_handle(path, (int64_t)file.len, offs, first, last, "canonical-v1");
        const char *bad = NULL;
        ck_assert_msg(cp_restore_keyed_full(h, r, first, last, get_q, NULL, &bad, &err) == 0, "%s", err.msg);
        verify(r, first, last);
        verify_timers(the_queue, first, last);
        tm_state *extra = reg(r, "value", TM_STATE_VALUE);
        ck_assert(!tm_state_set_key_hashed(r, "late", 4) || !tm_state_value_get(extra, NULL, 0, &(const uint8_t *){0},
                                                                                 &(size_t){0}));
        flint__checkpoint__keyed_state_handle__free_unpacked(h, NULL);
        tm_timers_free(ts2);
        tm_state_backend_close(r);
    }
    /* a corrupted offset: the error names the file */
    tm_state_backend *r = open_range(dst, 0, MAXP - 1);
    int64_t bad_offs[MAXP];
    memcpy(bad_offs, offs, sizeof bad_offs);
    bad_offs[5] += 3;
    Flint__Checkpoint__KeyedStateHandle *h = full_handle(path, (int64_t)file.len, bad_offs, 0, MAXP - 1, "hashmap-v1");
    const char *bad = NULL;
    the_queue = q;
    ck_assert_int_ne(cp_restore_keyed_full(h, r, 0, MAXP - 1, get_q, NULL, &bad, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "corrupted"));
    ck_assert_str_eq(bad, path);
    flint__checkpoint__keyed_state_handle__free_unpacked(h, NULL);
    tm_state_backend_close(r);
    cp_buf_free(&file);
    tm_timers_free(ts);
    tm_state_backend_close(b);
}

START_TEST(test_hashmap_to_rocksdb) { full_roundtrip(0, 1); }
END_TEST

START_TEST(test_rocksdb_to_hashmap) { full_roundtrip(1, 0); }
END_TEST

START_TEST(test_hashmap_to_hashmap) { full_roundtrip(0, 0); }
END_TEST

/* ---- copy-on-write views of the hashmap backend ------------------------------------------------- */

typedef struct view_job {
    tm_state_view *v;
    cp_buf out;
    int rc;
} view_job;

/* The checkpoint thread's part: the blocks of every key group of the view. */
static void *write_view(void *arg) {
    view_job *j = arg;
    flint_err err = {0};
    j->rc = tm_state_view_snapshot(j->v, 0, MAXP - 1, cp_buf_write_fn, &j->out, &err);
    return NULL;
}

static void live_snapshot(tm_state_backend *b, cp_buf *out) {
    flint_err err = {0};
    out->len = 0;
    ck_assert_msg(tm_state_snapshot(b, 0, MAXP - 1, cp_buf_write_fn, out, &err) == 0, "%s", err.msg);
}

static void assert_same(const cp_buf *a, const cp_buf *b, const char *what) {
    ck_assert_msg(a->len == b->len && memcmp(a->p, b->p, a->len) == 0, "%s: %zu bytes, want %zu", what, a->len,
                  b->len);
}

/* Round r of writes on the keys of fill: updates, appends, removals (a map emptied through its
 * iterator), then `fresh` new keys (enough to grow the tables). */
static void churn(tm_state_backend *b, int r, int fresh) {
    tm_state *v = reg(b, "value", TM_STATE_VALUE), *l = reg(b, "list", TM_STATE_LIST), *m = reg(b, "map", TM_STATE_MAP);
    for (int i = 0; i < NKEYS + fresh; i++) {
        char k[32], val[32];
        sprintf(k, i < NKEYS ? "key-%d" : "key-%d-%d", i, r);
        ck_assert(tm_state_set_key_hashed(b, k, strlen(k)));
        sprintf(val, "r%d-%d", r, i);
        size_t n = strlen(val);
        switch (i < NKEYS ? (i + r) % 4 : 0) {
        case 0: /* update, append, overwrite, insert */
            ck_assert_int_eq(tm_state_value_put(v, NULL, 0, val, n), 0);
            ck_assert_int_eq(tm_state_list_add(l, "ns", 2, val, n), 0);
            ck_assert_int_eq(tm_state_map_put(m, NULL, 0, "a", 1, val, n), 0);
            ck_assert_int_eq(tm_state_map_put(m, NULL, 0, val, n, "y", 1), 0);
            break;
        case 1: /* remove the lot */
            ck_assert_int_eq(tm_state_clear(v, NULL, 0), 0);
            ck_assert_int_eq(tm_state_clear(l, "ns", 2), 0);
            ck_assert_int_eq(tm_state_clear(m, NULL, 0), 0);
            break;
        case 2: { /* remove one user key, then every other while iterating */
            ck_assert_int_eq(tm_state_map_remove(m, NULL, 0, "a", 1), 0);
            tm_state_iter *it = tm_state_map_iter(m, NULL, 0);
            tm_state_entry e;
            while (tm_state_iter_next(it, &e)) ck_assert_int_eq(tm_state_map_remove(m, NULL, 0, e.ukey, e.uklen), 0);
            tm_state_iter_close(it);
            break;
        }
        default: { /* replace the list, update in place */
            const void *one[1] = {val};
            ck_assert_int_eq(tm_state_list_update(l, "ns", 2, 1, one, &n), 0);
            ck_assert_int_eq(tm_state_value_put(v, NULL, 0, val, n), 0);
        }
        }
    }
}

START_TEST(test_hashmap_view_copy_on_write) {
    /* b takes views; model gets the same writes and no view: their live states must stay equal */
    tm_state_backend *b = open_range(0, 0, MAXP - 1), *model = open_range(0, 0, MAXP - 1);
    fill(b, NULL);
    fill(model, NULL);
    cp_buf ref1 = {0}, ref2 = {0}, live = {0}, want = {0};
    live_snapshot(b, &ref1);
    flint_err err = {0};
    view_job j1 = {.v = tm_state_view_new(b, &err)}, j2 = {0};
    ck_assert_msg(j1.v != NULL, "%s", err.msg);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_view, &j1), 0);   /* written while b changes */
    churn(b, 1, 3000);
    churn(model, 1, 3000);
    live_snapshot(b, &ref2);
    j2.v = tm_state_view_new(b, &err);   /* a second view while the first is live */
    churn(b, 2, 3000);
    churn(model, 2, 3000);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(j1.rc, 0);
    assert_same(&j1.out, &ref1, "the first view");
    tm_state_view_free(j1.v);   /* the older one goes first */
    tm_state_view_free(tm_state_view_new(b, &err));   /* a newer one dropped unwritten (aborted) */
    churn(b, 3, 1000);
    churn(model, 3, 1000);
    write_view(&j2);
    ck_assert_int_eq(j2.rc, 0);
    assert_same(&j2.out, &ref2, "the second view");
    tm_state_view_free(j2.v);
    live_snapshot(b, &live);
    live_snapshot(model, &want);
    assert_same(&live, &want, "the live state");
    /* what the first view wrote is the state as filled */
    tm_state_backend *r = open_range(0, 0, MAXP - 1);
    cp_mem_in in = {j1.out.p, j1.out.len, 0};
    ck_assert_msg(tm_state_restore(r, cp_mem_read, &in, &err) == 0, "%s", err.msg);
    verify(r, 0, MAXP - 1);
    tm_state_backend_close(r);
    /* RocksDB has no such views (its own DB snapshots instead) */
    r = open_range(1, 0, MAXP - 1);
    ck_assert_ptr_null(tm_state_view_new(r, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "rocksdb"));
    tm_state_backend_close(r);
    cp_buf_free(&j1.out);
    cp_buf_free(&j2.out);
    cp_buf_free(&ref1);
    cp_buf_free(&ref2);
    cp_buf_free(&live);
    cp_buf_free(&want);
    tm_state_backend_close(b);   /* asserts that every retired object was freed with the views */
    tm_state_backend_close(model);
}
END_TEST

/* ---- incremental -------------------------------------------------------------------------------- */

static Flint__Checkpoint__NamedFile *named(const char *name, const char *path) {
    Flint__Checkpoint__NamedFile *f = xmalloc(sizeof *f);
    flint__checkpoint__named_file__init(f);
    f->name = xstrdup(name);
    f->handle = xmalloc(sizeof *f->handle);
    flint__checkpoint__stream_state_handle__init(f->handle);
    f->handle->path = xstrdup(path);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    f->handle->size = st.st_size;
    return f;
}

START_TEST(test_incremental) {
    tm_timers *ts = tm_timers_new(MAXP);
    tm_timer_queue *q = tm_timers_queue_new(ts, NULL, fire_nothing);
    tm_state_backend *b = open_range(1, 0, MAXP - 1);
    fill(b, q);
    char dir[400], meta_path[400];
    snprintf(dir, sizeof dir, "%s/chk-incr", cp_rdb_dir(b));
    cp_buf meta = {0};
    flint_err err = {0};
    ck_assert_msg(cp_rdb_checkpoint(b, dir, &meta, &err) == 0, "%s", err.msg);
    /* the meta file's timers: u32 key groups, u16 kg + timers each */
    cp_buf tb = {0};
    size_t toffs[MAXP + 1];
    cp_timers_capture(q, 0, MAXP - 1, &tb, toffs);
    cp_buf_u32(&meta, MAXP);
    for (int kg = 0; kg < MAXP; kg++) {
        cp_buf_u16(&meta, (uint16_t)kg);
        cp_buf_add(&meta, tb.p + toffs[kg], toffs[kg + 1] - toffs[kg]);
    }
    snprintf(meta_path, sizeof meta_path, "%s/incr-meta", tmpdir);
    ck_assert_int_eq(cp_write_file(meta_path, meta.p, meta.len, &err), 0);
    Flint__Checkpoint__KeyedStateHandle h = FLINT__CHECKPOINT__KEYED_STATE_HANDLE__INIT;
    Flint__Checkpoint__KeyGroupRange range = FLINT__CHECKPOINT__KEY_GROUP_RANGE__INIT;
    range.end = MAXP - 1;
    h.format = "rocksdb-incremental-v1";
    h.key_group_range = &range;
    Flint__Checkpoint__StreamStateHandle mh = FLINT__CHECKPOINT__STREAM_STATE_HANDLE__INIT;
    mh.path = meta_path;
    mh.size = (int64_t)meta.len;
    h.meta_data = &mh;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    Flint__Checkpoint__NamedFile *files[64];
    int nsst = 0, npriv = 0;
    Flint__Checkpoint__NamedFile *sst[32], *priv[32];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[800];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (strstr(de->d_name, ".sst")) sst[nsst++] = named(de->d_name, p);
        else priv[npriv++] = named(de->d_name, p);
        ck_assert(nsst < 32 && npriv < 32);
    }
    closedir(d);
    (void)files;
    ck_assert_int_gt(nsst, 0);
    h.shared_files = sst;
    h.n_shared_files = (size_t)nsst;
    h.private_files = priv;
    h.n_private_files = (size_t)npriv;
    /* restore at parallelism 2 into hashmap backends: each gets only its key groups */
    for (int sub = 0; sub < 2; sub++) {
        int first, last;
        row_key_group_range(sub, MAXP, 2, &first, &last);
        tm_state_backend *r = open_range(0, first, last);
        tm_timers *ts2 = tm_timers_new(MAXP);
        the_queue = tm_timers_queue_new(ts2, NULL, fire_nothing);
        char scratch[400];
        snprintf(scratch, sizeof scratch, "%s/scratch-%d", tmpdir, sub);
        const char *bad = NULL;
        ck_assert_msg(cp_restore_keyed_incremental(&h, r, first, last, scratch, get_q, NULL, &bad, &err) == 0, "%s",
                      err.msg);
        verify(r, first, last);
        verify_timers(the_queue, first, last);
        struct stat st;
        ck_assert_int_ne(stat(scratch, &st), 0);   /* removed */
        tm_timers_free(ts2);
        tm_state_backend_close(r);
    }
    /* into RocksDB at the handle's key groups: the files become the database (the SST files
     * hard-linked, nothing re-inserted), and the instance goes on writing */
    {
        tm_state_backend *r = open_range(1, 0, MAXP - 1);
        tm_timers *ts2 = tm_timers_new(MAXP);
        the_queue = tm_timers_queue_new(ts2, NULL, fire_nothing);
        char scratch[400], linked[800];
        snprintf(scratch, sizeof scratch, "%s/scratch-native", tmpdir);
        const char *bad = NULL;
        ck_assert(cp_rdb_restores_natively(&h, r, 0, MAXP - 1));   /* the task adopts the SST files */
        ck_assert_msg(cp_restore_keyed_incremental(&h, r, 0, MAXP - 1, scratch, get_q, NULL, &bad, &err) == 0, "%s",
                      err.msg);
        struct stat a, l;
        snprintf(linked, sizeof linked, "%s/%s", cp_rdb_dir(r), sst[0]->name);
        ck_assert_int_eq(stat(sst[0]->handle->path, &a), 0);
        ck_assert_msg(stat(linked, &l) == 0 && l.st_ino == a.st_ino, "%s is not a hard link of the checkpoint's file",
                      linked);
        verify(r, 0, MAXP - 1);
        verify_timers(the_queue, 0, MAXP - 1);
        ck_assert(!cp_rdb_restores_natively(&h, r, 0, MAXP - 1));   /* it has states now */
        tm_state *v = reg(r, "value", TM_STATE_VALUE);
        ck_assert(tm_state_set_key_hashed(r, "new", 3));
        ck_assert_int_eq(tm_state_value_put(v, NULL, 0, "n", 1), 0);
        ck_assert_uint_eq(tm_state_count(v), NKEYS + 1);
        tm_timers_free(ts2);
        tm_state_backend_close(r);
        ck_assert_int_eq(stat(sst[0]->handle->path, &a), 0);   /* the checkpoint keeps its file */
    }
    /* into RocksDB at other key groups (rescaling): the entries are re-inserted */
    {
        int first, last;
        row_key_group_range(1, MAXP, 2, &first, &last);
        tm_state_backend *r = open_range(1, first, last);
        tm_timers *ts2 = tm_timers_new(MAXP);
        the_queue = tm_timers_queue_new(ts2, NULL, fire_nothing);
        char scratch[400];
        snprintf(scratch, sizeof scratch, "%s/scratch-rescale", tmpdir);
        ck_assert(!cp_rdb_restores_natively(&h, r, first, last));
        const char *bad = NULL;
        ck_assert_msg(cp_restore_keyed_incremental(&h, r, first, last, scratch, get_q, NULL, &bad, &err) == 0, "%s",
                      err.msg);
        verify(r, first, last);
        verify_timers(the_queue, first, last);
        tm_timers_free(ts2);
        tm_state_backend_close(r);
    }
    /* a missing SST file is named, on either path; a RocksDB backend stays usable */
    char gone[800];
    snprintf(gone, sizeof gone, "%s", sst[0]->handle->path);
    ck_assert_int_eq(unlink(gone), 0);
    for (int type = 0; type < 2; type++) {
        tm_state_backend *r = open_range(type, 0, MAXP - 1);
        const char *bad = NULL;
        char scratch[400];
        snprintf(scratch, sizeof scratch, "%s/scratch-x", tmpdir);
        ck_assert_int_ne(cp_restore_keyed_incremental(&h, r, 0, MAXP - 1, scratch, get_q, NULL, &bad, &err), 0);
        ck_assert_ptr_nonnull(strstr(err.msg, gone));
        ck_assert_str_eq(bad, gone);
        tm_state *v = reg(r, "value", TM_STATE_VALUE);
        ck_assert(tm_state_set_key_hashed(r, "k", 1));
        ck_assert_int_eq(tm_state_value_put(v, NULL, 0, "x", 1), 0);
        ck_assert_uint_eq(tm_state_count(v), 1);
        tm_state_backend_close(r);
    }
    for (int i = 0; i < nsst; i++) flint__checkpoint__named_file__free_unpacked(sst[i], NULL);
    for (int i = 0; i < npriv; i++) flint__checkpoint__named_file__free_unpacked(priv[i], NULL);
    cp_buf_free(&meta);
    cp_buf_free(&tb);
    tm_timers_free(ts);
    tm_state_backend_close(b);
}
END_TEST

/* ---- operator state ------------------------------------------------------------------------------- */

typedef struct op_fixture {
    tm_runtime rt;
    Flint__Graph__OperatorDef def;
    tm_op op;
} op_fixture;

static void op_open(op_fixture *f, int subtask, int p) {
    memset(f, 0, sizeof *f);
    flint__graph__operator_def__init(&f->def);
    f->def.name = "opstate";
    f->rt.subtask = subtask;
    f->rt.parallelism = p;
    f->rt.max_parallelism = MAXP;
    f->rt.execution_id = "exec";
    f->op.rt = &f->rt;
    f->op.def = &f->def;
    ck_assert_int_eq(tm_state_op_open(&f->op, NULL), 0);
}

START_TEST(test_operator_state) {
    flint_schema *sch = NULL, *ks = NULL;
    flint_err err = {0};
    ck_assert_int_eq(flint_schema_parse("name STRING, n BIGINT", &sch, &err), 0);
    ck_assert_int_eq(flint_schema_parse("rule STRING", &ks, &err), 0);
    flint_row_builder rb, kb;
    flint_row_builder_init(&rb, sch);
    flint_row_builder_init(&kb, ks);
    flint_state_desc ld = {.name = "offsets", .schema = "name STRING, n BIGINT"};
    flint_state_desc bd = {.name = "rules", .schema = "name STRING, n BIGINT", .key_schema = "rule STRING"};
    op_fixture f;
    op_open(&f, 0, 1);
    flint_ctx *ctx = &f.op.ctx;
    /* nothing yet: no handle */
    cp_buf file = {0};
    Flint__Checkpoint__OperatorStateHandle *h = NULL;
    ck_assert_int_eq(cp_opstate_capture(&f.op, &file, &h, &err), 0);
    ck_assert_ptr_null(h);
    flint_state *ls = flint_state_operator_list(ctx, &ld);
    flint_state *bs = flint_state_broadcast(ctx, &bd);
    for (int i = 0; i < 5; i++) {
        flint_row_builder_reset(&rb);
        flint_row_set_cstring(&rb, 0, "off");
        flint_row_set_long(&rb, 1, i);
        flint_row r = flint_row_builder_row(&rb);
        flint_list_add(ls, &r);
    }
    ctx->broadcast_writable = true;
    for (int i = 0; i < 2; i++) {
        flint_row_builder_reset(&kb);
        flint_row_set_cstring(&kb, 0, i ? "r2" : "r1");
        flint_row_builder_reset(&rb);
        flint_row_set_cstring(&rb, 0, "rule");
        flint_row_set_long(&rb, 1, 10 + i);
        flint_row k = flint_row_builder_row(&kb), v = flint_row_builder_row(&rb);
        flint_map_put(bs, &k, &v);
    }
    ctx->broadcast_writable = false;
    ck_assert(!ctx->failed);
    ck_assert_int_eq(cp_opstate_capture(&f.op, &file, &h, &err), 0);
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(h->n_states, 2);
    for (size_t s = 0; s < h->n_states; s++) {
        if (!strcmp(h->states[s]->name, "offsets")) {
            ck_assert_int_eq(h->states[s]->mode, FLINT__CHECKPOINT__DISTRIBUTION_MODE__SPLIT_DISTRIBUTE);
            ck_assert_uint_eq(h->states[s]->n_offsets, 5);
            /* elements: 4-byte big-endian length, then the bytes */
            const uint8_t *p = file.p + h->states[s]->offsets[1];
            uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            ck_assert_uint_gt(len, 0);
            ck_assert_int_eq(h->states[s]->offsets[1] + 4 + (int64_t)len, h->states[s]->offsets[2]);
        } else {
            ck_assert_str_eq(h->states[s]->name, "rules");
            ck_assert_int_eq(h->states[s]->mode, FLINT__CHECKPOINT__DISTRIBUTION_MODE__BROADCAST);
            ck_assert_uint_eq(h->states[s]->n_offsets, 1);
        }
    }
    char path[400];
    snprintf(path, sizeof path, "%s/opstate", tmpdir);
    ck_assert_int_eq(cp_write_file(path, file.p, file.len, &err), 0);
    h->file = xmalloc(sizeof *h->file);
    flint__checkpoint__stream_state_handle__init(h->file);
    h->file->path = xstrdup(path);
    h->file->size = (int64_t)file.len;
    tm_state_op_close(&f.op, NULL);

    /* restored into subtask 1 of 2: the jobmanager assigned every element to it */
    op_fixture g;
    op_open(&g, 1, 2);
    const char *bad = NULL;
    ck_assert_msg(cp_opstate_restore(&g.op, &h, 1, &bad, &err) == 0, "%s", err.msg);
    ctx = &g.op.ctx;
    ls = flint_state_operator_list(ctx, &ld);
    bs = flint_state_broadcast(ctx, &bd);
    flint_state_iter *it = flint_list_iter(ls);
    flint_row k, v;
    int n = 0;
    int64_t sum = 0;
    while (flint_state_iter_next(it, NULL, &v)) n++, sum += flint_row_get_long(&v, 1);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(sum, 0 + 1 + 2 + 3 + 4);
    flint_row_builder_reset(&kb);
    flint_row_set_cstring(&kb, 0, "r2");
    k = flint_row_builder_row(&kb);
    ck_assert(flint_map_get(bs, &k, &v));
    ck_assert_int_eq(flint_row_get_long(&v, 1), 11);
    ck_assert(!ctx->failed);
    tm_state_op_close(&g.op, NULL);

    /* a truncated file is named */
    ck_assert_int_eq(truncate(path, 6), 0);
    op_open(&g, 0, 1);
    h->file->size = 0;
    ck_assert_int_ne(cp_opstate_restore(&g.op, &h, 1, &bad, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    tm_state_op_close(&g.op, NULL);

    flint__checkpoint__operator_state_handle__free_unpacked(h, NULL);
    cp_buf_free(&file);
    flint_row_builder_free(&rb);
    flint_row_builder_free(&kb);
    flint_schema_free(sch);
    flint_schema_free(ks);
}
END_TEST

static Suite *cp_state_suite(void) {
    Suite *s = suite_create("cp_state");
    TCase *tc = tcase_create("keyed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hashmap_to_rocksdb);
    tcase_add_test(tc, test_rocksdb_to_hashmap);
    tcase_add_test(tc, test_hashmap_to_hashmap);
    tcase_add_test(tc, test_hashmap_view_copy_on_write);
    tcase_add_test(tc, test_incremental);
    suite_add_tcase(s, tc);
    tc = tcase_create("operator");
    tcase_add_test(tc, test_operator_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/flint-check-cp-state-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(cp_state_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    cp_rm_rf(tmpdir);
    return failed ? 1 : 0;
}

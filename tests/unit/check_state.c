/* Unit tests of the keyed state backends (taskmanager/state): ONE suite run against both backends
 * (every test of the "backend" case is a loop test: iteration 0 is hashmap, 1 is rocksdb): every
 * kind, namespaces, TTL with an injected clock, iteration, clear, many keys, large values,
 * snapshots by key group restored into fresh backends of either type (the format is
 * backend-independent) and at other key group ranges; a RocksDB state far larger than its block
 * cache; the public state API (flint_state_* through an operator's context), operator list and
 * broadcast state; and a throughput printout of both backends. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "operators/operator.h"
#include "row/row_key.h"
#include "state/tm_state_int.h"
#include "util/alloc.h"
#include "util/timeutil.h"

/* ---- helpers ------------------------------------------------------------------------------------ */

static int64_t fake_now = 1000000;
static int64_t fake_clock(void *ud) {
    (void)ud;
    return fake_now;
}

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/flint-check-state-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static int count_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static tm_state_backend *open_range(int type, int first, int last, int maxp) {
    tm_state_config cfg = {.type = type ? TM_BACKEND_ROCKSDB : TM_BACKEND_HASHMAP,
                           .max_parallelism = maxp,
                           .kg_first = first,
                           .kg_last = last,
                           .tmp_dir = tmpdir,
                           .name = "check",
                           .block_cache_size = 8 << 20,
                           .write_buffer_size = 4 << 20,
                           .clock = fake_clock};
    static int seq;
    char name[64];
    snprintf(name, sizeof name, "check-%d-%d", (int)getpid(), seq++);
    cfg.name = name;
    tm_state_backend *b = NULL;
    flint_err err = {0};
    int rc = tm_state_backend_open(&cfg, &b, &err);
    ck_assert_msg(rc == 0, "open: %s", err.msg);
    return b;
}

static tm_state_backend *open_backend(int type) { return open_range(type, 0, 127, 128); }

static tm_state *reg(tm_state_backend *b, const char *name, tm_state_kind kind, int64_t ttl) {
    tm_state *st = NULL;
    flint_err err = {0};
    int rc = tm_state_register(b, name, kind, ttl, &st, &err);
    ck_assert_msg(rc == 0, "register %s: %s", name, err.msg);
    return st;
}

static void key(tm_state_backend *b, const char *k) { tm_state_set_key_hashed(b, k, strlen(k)); }

static int key_group_of(const char *k, int maxp) { return row_key_group(row_key_hash((const uint8_t *)k, strlen(k)), maxp); }

/* The value of st under (current key, ns) as a string ("" when absent is distinguished: NULL). */
static char *vget(tm_state *st, const char *ns) {
    const uint8_t *v;
    size_t n;
    if (!tm_state_value_get(st, ns, ns ? strlen(ns) : 0, &v, &n)) return NULL;
    static char buf[4][4096];
    static int i;
    char *r = buf[i++ % 4];
    snprintf(r, 4096, "%.*s", (int)n, (const char *)v);
    return r;
}

static void vput(tm_state *st, const char *ns, const char *v) {
    ck_assert_int_eq(tm_state_value_put(st, ns, ns ? strlen(ns) : 0, v, strlen(v)), 0);
}

/* A list as "a,b,c" ("" when empty). */
static char *lget(tm_state *st, const char *ns) {
    static char buf[8192];
    buf[0] = '\0';
    const uint8_t *blob, *el;
    size_t n, len;
    if (!tm_state_list_get(st, ns, ns ? strlen(ns) : 0, &blob, &n)) return buf;
    const uint8_t *pos = blob, *end = blob + n;
    size_t off = 0;
    while (tm_state_list_next(&pos, end, &el, &len))
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%.*s", off ? "," : "", (int)len, (const char *)el);
    return buf;
}

static void ladd(tm_state *st, const char *ns, const char *v) {
    ck_assert_int_eq(tm_state_list_add(st, ns, ns ? strlen(ns) : 0, v, strlen(v)), 0);
}

static char *mget(tm_state *st, const char *ns, const char *uk) {
    const uint8_t *v;
    size_t n;
    if (!tm_state_map_get(st, ns, ns ? strlen(ns) : 0, uk, strlen(uk), &v, &n)) return NULL;
    static char buf[4096];
    snprintf(buf, sizeof buf, "%.*s", (int)n, (const char *)v);
    return buf;
}

static void mput(tm_state *st, const char *ns, const char *uk, const char *v) {
    ck_assert_int_eq(tm_state_map_put(st, ns, ns ? strlen(ns) : 0, uk, strlen(uk), v, strlen(v)), 0);
}

/* Memory writer/reader for snapshots. */
typedef struct membuf {
    uint8_t *p;
    size_t len, cap, pos;
} membuf;

static int mem_write(void *ud, const void *data, size_t len) {
    membuf *m = ud;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->p = xrealloc(m->p, m->cap);
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return 0;
}

static long mem_read(void *ud, void *buf, size_t len) {
    membuf *m = ud;
    size_t k = m->len - m->pos < len ? m->len - m->pos : len;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (long)k;
}

/* A reader that hands out at most 7 bytes a call (block and entry boundaries anywhere). */
static long mem_read_small(void *ud, void *buf, size_t len) { return mem_read(ud, buf, len < 7 ? len : 7); }

static void snap(tm_state_backend *b, int first, int last, membuf *m) {
    flint_err err = {0};
    int rc = tm_state_snapshot(b, first, last, mem_write, m, &err);
    ck_assert_msg(rc == 0, "snapshot: %s", err.msg);
}

static void restore(tm_state_backend *b, membuf *m) {
    flint_err err = {0};
    m->pos = 0;
    int rc = tm_state_restore(b, mem_read, m, &err);
    ck_assert_msg(rc == 0, "restore: %s", err.msg);
}

/* ---- the shared backend suite ----------------------------------------------------------------- */

START_TEST(value_state_per_key_and_namespace) {
    tm_state_backend *b = open_backend(_i);
    tm_state *st = reg(b, "v", TM_STATE_VALUE, 0);
    key(b, "alice");
    ck_assert_ptr_null(vget(st, NULL));
    vput(st, NULL, "1");
    vput(st, "w1", "in-window-1");
    vput(st, "w2", "in-window-2");
    key(b, "bob");
    ck_assert_ptr_null(vget(st, NULL));
    ck_assert_ptr_null(vget(st, "w1"));
    vput(st, NULL, "2");
    key(b, "alice");
    ck_assert_str_eq(vget(st, NULL), "1");
    ck_assert_str_eq(vget(st, "w1"), "in-window-1");
    ck_assert_str_eq(vget(st, "w2"), "in-window-2");
    /* overwrite: longer, shorter, empty */
    vput(st, NULL, "a much longer value than before");
    ck_assert_str_eq(vget(st, NULL), "a much longer value than before");
    vput(st, NULL, "s");
    ck_assert_str_eq(vget(st, NULL), "s");
    vput(st, NULL, "");
    ck_assert_str_eq(vget(st, NULL), "");
    /* clear drops one namespace of one key */
    ck_assert_int_eq(tm_state_clear(st, "w1", 2), 0);
    ck_assert_ptr_null(vget(st, "w1"));
    ck_assert_str_eq(vget(st, "w2"), "in-window-2");
    key(b, "bob");
    ck_assert_str_eq(vget(st, NULL), "2");
    /* the empty key is a key; namespaces with a NUL byte and prefixes of each other differ */
    key(b, "");
    vput(st, NULL, "empty");
    ck_assert_int_eq(tm_state_value_put(st, "a\0b", 3, "x", 1), 0);
    ck_assert_int_eq(tm_state_value_put(st, "a", 1, "y", 1), 0);
    ck_assert_str_eq(vget(st, NULL), "empty");
    ck_assert_str_eq(vget(st, "a"), "y");
    /* two states of one backend are separate; reducing/aggregating are value-shaped */
    tm_state *r = reg(b, "r", TM_STATE_REDUCING, 0);
    tm_state *a = reg(b, "a", TM_STATE_AGGREGATING, 0);
    ck_assert_ptr_null(vget(r, NULL));
    vput(r, NULL, "sum=3");
    vput(a, NULL, "acc");
    ck_assert_str_eq(vget(st, NULL), "empty");
    ck_assert_str_eq(vget(r, NULL), "sum=3");
    ck_assert_str_eq(vget(a, NULL), "acc");
    ck_assert_int_eq(tm_state_count(st), 6);
    ck_assert_int_eq(tm_state_backend_error(b, NULL), 0);
    tm_state_backend_close(b);
}
END_TEST

/* tm_state_value_overwrite: in place (hashmap), by read-patch-put (rocksdb, TTL); a view taken
 * before keeps the old bytes; no value, or one too short, is an error, not a write. */
START_TEST(value_overwrite) {
    tm_state_backend *b = open_backend(_i);
    tm_state *st = reg(b, "v", TM_STATE_VALUE, 0);
    tm_state *tt = reg(b, "t", TM_STATE_VALUE, 60000);
    const uint8_t *v;
    size_t n;
    key(b, "alice");
    vput(st, NULL, "abcdef");
    vput(st, "w", "window");
    tm_state_view *view = _i == 0 ? tm_state_view_new(b, NULL) : NULL;
    ck_assert_int_eq(tm_state_value_overwrite(st, NULL, 0, 2, "XY", 2, &v, &n), 0);
    ck_assert_int_eq((int)n, 6);
    ck_assert_int_eq(memcmp(v, "abXYef", 6), 0);
    ck_assert_str_eq(vget(st, NULL), "abXYef");
    ck_assert_str_eq(vget(st, "w"), "window");
    ck_assert_int_eq(tm_state_value_overwrite(st, NULL, 0, 5, "Z", 1, &v, &n), 0);
    ck_assert_str_eq(vget(st, NULL), "abXYeZ");
    if (view) { /* the view still holds the value as it was when it was taken */
        membuf m = {0};
        flint_err err = {0};
        ck_assert_int_eq(tm_state_view_snapshot(view, 0, 127, mem_write, &m, &err), 0);
        tm_state_view_free(view);
        tm_state_backend *c = open_backend(0);
        restore(c, &m);
        key(c, "alice");
        ck_assert_str_eq(vget(reg(c, "v", TM_STATE_VALUE, 0), NULL), "abcdef");
        tm_state_backend_close(c);
        free(m.p);
    }
    /* with TTL: patched through a put, the write time renewed */
    vput(tt, NULL, "12345678");
    ck_assert_int_eq(tm_state_value_overwrite(tt, NULL, 0, 0, "ab", 2, &v, &n), 0);
    ck_assert_int_eq(memcmp(v, "ab345678", 8), 0);
    ck_assert_str_eq(vget(tt, NULL), "ab345678");
    /* past the end, or no value: refused */
    ck_assert_int_ne(tm_state_value_overwrite(st, NULL, 0, 5, "ZZ", 2, &v, &n), 0);
    flint_err err = {0};
    ck_assert_int_ne(tm_state_backend_error(b, &err), 0);
    ck_assert_msg(strstr(err.msg, "no value of 7 bytes or more to overwrite"), "%s", err.msg);
    ck_assert_str_eq(vget(st, NULL), "abXYeZ");
    tm_state_backend_close(b);
    b = open_backend(_i);
    st = reg(b, "v", TM_STATE_VALUE, 0);
    key(b, "bob");
    ck_assert_int_ne(tm_state_value_overwrite(st, NULL, 0, 0, "x", 1, &v, &n), 0);
    ck_assert_ptr_null(vget(st, NULL));
    tm_state_backend_close(b);
}
END_TEST

START_TEST(registration_rules) {
    tm_state_backend *b = open_backend(_i);
    tm_state *st = reg(b, "s", TM_STATE_VALUE, 0), *again = NULL, *other = NULL;
    flint_err err = {0};
    ck_assert_int_eq(tm_state_register(b, "s", TM_STATE_VALUE, 0, &again, &err), 0);
    ck_assert_ptr_eq(st, again);
    ck_assert_int_ne(tm_state_register(b, "s", TM_STATE_LIST, 0, &other, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "value state"));
    ck_assert_int_ne(tm_state_register(b, "s", TM_STATE_VALUE, 1000, &other, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "TTL"));
    ck_assert_int_ne(tm_state_register(b, "", TM_STATE_VALUE, 0, &other, &err), 0);
    ck_assert_str_eq(tm_state_name(st), "s");
    ck_assert_int_eq(tm_state_kind_of(st), TM_STATE_VALUE);
    ck_assert_ptr_eq(tm_state_backend_of(st), b);
    ck_assert_int_eq(tm_state_backend_type(b), _i ? TM_BACKEND_ROCKSDB : TM_BACKEND_HASHMAP);
    /* the current key */
    key(b, "k1");
    size_t kl;
    const uint8_t *k = tm_state_current_key(b, &kl);
    ck_assert_int_eq(kl, 2);
    ck_assert_int_eq(memcmp(k, "k1", 2), 0);
    ck_assert_int_eq(tm_state_current_key_group(b), key_group_of("k1", 128));
    tm_state_backend_close(b);
}
END_TEST

START_TEST(list_state) {
    tm_state_backend *b = open_backend(_i);
    tm_state *st = reg(b, "l", TM_STATE_LIST, 0);
    key(b, "k");
    ck_assert_str_eq(lget(st, NULL), "");
    ladd(st, NULL, "a");
    ladd(st, NULL, "bb");
    ladd(st, NULL, "");
    ladd(st, NULL, "ccc");
    ck_assert_str_eq(lget(st, NULL), "a,bb,,ccc");
    ladd(st, "ns", "other");
    ck_assert_str_eq(lget(st, "ns"), "other");
    key(b, "k2");
    ck_assert_str_eq(lget(st, NULL), "");
    ladd(st, NULL, "z");
    key(b, "k");
    const void *vals[2] = {"x", "yy"};
    size_t lens[2] = {1, 2};
    ck_assert_int_eq(tm_state_list_update(st, NULL, 0, 2, vals, lens), 0);
    ck_assert_str_eq(lget(st, NULL), "x,yy");
    ladd(st, NULL, "after");
    ck_assert_str_eq(lget(st, NULL), "x,yy,after");
    ck_assert_int_eq(tm_state_list_update(st, NULL, 0, 0, NULL, NULL), 0);
    ck_assert_str_eq(lget(st, NULL), "");
    ck_assert_str_eq(lget(st, "ns"), "other");
    ck_assert_int_eq(tm_state_clear(st, "ns", 2), 0);
    ck_assert_str_eq(lget(st, "ns"), "");
    key(b, "k2");
    ck_assert_str_eq(lget(st, NULL), "z");
    /* a long list */
    key(b, "long");
    char v[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof v, "%d", i);
        ladd(st, NULL, v);
    }
    const uint8_t *blob, *el;
    size_t n, len;
    ck_assert(tm_state_list_get(st, NULL, 0, &blob, &n));
    const uint8_t *pos = blob;
    int i = 0;
    while (tm_state_list_next(&pos, blob + n, &el, &len)) {
        snprintf(v, sizeof v, "%d", i++);
        ck_assert_int_eq(len, strlen(v));
        ck_assert_int_eq(memcmp(el, v, len), 0);
    }
    ck_assert_int_eq(i, 5000);
    tm_state_backend_close(b);
}
END_TEST

START_TEST(map_state) {
    tm_state_backend *b = open_backend(_i);
    tm_state *st = reg(b, "m", TM_STATE_MAP, 0);
    key(b, "k");
    ck_assert_ptr_null(mget(st, NULL, "a"));
    ck_assert(!tm_state_map_contains(st, NULL, 0, "a", 1));
    mput(st, NULL, "a", "1");
    mput(st, NULL, "b", "2");
    mput(st, NULL, "", "empty user key");
    mput(st, "ns", "a", "ns-1");
    ck_assert_str_eq(mget(st, NULL, "a"), "1");
    ck_assert_str_eq(mget(st, NULL, ""), "empty user key");
    ck_assert_str_eq(mget(st, "ns", "a"), "ns-1");
    ck_assert(tm_state_map_contains(st, NULL, 0, "b", 1));
    mput(st, NULL, "a", "one");
    ck_assert_str_eq(mget(st, NULL, "a"), "one");
    key(b, "k2");
    ck_assert_ptr_null(mget(st, NULL, "a"));
    mput(st, NULL, "a", "k2's");
    key(b, "k");
    /* iteration over the current key's map */
    tm_state_iter *it = tm_state_map_iter(st, NULL, 0);
    tm_state_entry e;
    int seen = 0;
    while (tm_state_iter_next(it, &e)) {
        seen++;
        ck_assert_int_eq(e.klen, 1);
        ck_assert_int_eq(e.key[0], 'k');
        ck_assert_int_eq(e.nslen, 0);
        if (e.uklen == 1 && e.ukey[0] == 'a') ck_assert_int_eq(memcmp(e.value, "one", 3), 0);
        else if (e.uklen == 1 && e.ukey[0] == 'b') ck_assert_int_eq(memcmp(e.value, "2", 1), 0);
        else ck_assert_int_eq(e.uklen, 0);
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(seen, 3);
    /* removing while iterating (the entry just returned) */
    for (int i = 0; i < 200; i++) {
        char uk[16];
        snprintf(uk, sizeof uk, "u%d", i);
        mput(st, "big", uk, "v");
    }
    it = tm_state_map_iter(st, "big", 3);
    seen = 0;
    while (tm_state_iter_next(it, &e)) {
        char uk[16];
        snprintf(uk, sizeof uk, "%.*s", (int)e.uklen, (const char *)e.ukey);
        ck_assert_int_eq(tm_state_map_remove(st, "big", 3, uk, strlen(uk)), 0);
        seen++;
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(seen, 200);
    it = tm_state_map_iter(st, "big", 3);
    ck_assert(!tm_state_iter_next(it, &e));
    tm_state_iter_close(it);
    /* remove, and removing the last user key empties the map */
    ck_assert_int_eq(tm_state_map_remove(st, NULL, 0, "b", 1), 0);
    ck_assert_ptr_null(mget(st, NULL, "b"));
    ck_assert_int_eq(tm_state_map_remove(st, NULL, 0, "nope", 4), 0);
    ck_assert_int_eq(tm_state_map_remove(st, "ns", 2, "a", 1), 0);
    ck_assert_ptr_null(mget(st, "ns", "a"));
    /* clear drops the whole map of (key, ns) */
    ck_assert_int_eq(tm_state_clear(st, NULL, 0), 0);
    ck_assert_ptr_null(mget(st, NULL, "a"));
    ck_assert_ptr_null(mget(st, NULL, ""));
    key(b, "k2");
    ck_assert_str_eq(mget(st, NULL, "a"), "k2's");
    ck_assert_int_eq(tm_state_count(st), 1);
    tm_state_backend_close(b);
}
END_TEST

START_TEST(ttl_expires_after_write) {
    tm_state_backend *b = open_backend(_i);
    fake_now = 1000000;
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 100);
    tm_state *l = reg(b, "l", TM_STATE_LIST, 100);
    tm_state *m = reg(b, "m", TM_STATE_MAP, 100);
    tm_state *keep = reg(b, "keep", TM_STATE_VALUE, 0);
    key(b, "k");
    vput(v, NULL, "v0");
    vput(keep, NULL, "forever");
    ladd(l, NULL, "early");
    mput(m, NULL, "a", "early");
    fake_now += 60;
    ladd(l, NULL, "late");
    mput(m, NULL, "b", "late");
    ck_assert_str_eq(vget(v, NULL), "v0");
    ck_assert_str_eq(lget(l, NULL), "early,late");
    fake_now += 50; /* 110 after the first writes, 50 after the second */
    ck_assert_ptr_null(vget(v, NULL));
    ck_assert_str_eq(lget(l, NULL), "late");
    ck_assert_ptr_null(mget(m, NULL, "a"));
    ck_assert_str_eq(mget(m, NULL, "b"), "late");
    ck_assert_str_eq(vget(keep, NULL), "forever");
    /* a write renews */
    vput(v, NULL, "v1");
    fake_now += 99;
    ck_assert_str_eq(vget(v, NULL), "v1");
    fake_now += 1;
    ck_assert_ptr_null(vget(v, NULL));
    /* iteration and snapshots leave expired entries out */
    key(b, "fresh");
    vput(v, NULL, "f");
    mput(m, NULL, "c", "f");
    ladd(l, NULL, "f");
    key(b, "stale");
    vput(v, NULL, "s");
    fake_now += 100;
    key(b, "fresh2");
    vput(v, NULL, "f2");
    tm_state_iter *it = tm_state_iter_all(v);
    tm_state_entry e;
    int n = 0;
    while (tm_state_iter_next(it, &e)) {
        n++;
        ck_assert_int_eq(e.vlen, 2);
        ck_assert_int_eq(memcmp(e.value, "f2", 2), 0);
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(n, 1);
    membuf mb = {0};
    snap(b, 0, 127, &mb);
    tm_state_backend *r = open_backend(_i);
    restore(r, &mb);
    tm_state *rv, *rl, *rm;
    flint_err err = {0};
    ck_assert_int_eq(tm_state_register(r, "v", TM_STATE_VALUE, 100, &rv, &err), 0);
    ck_assert_int_eq(tm_state_register(r, "l", TM_STATE_LIST, 100, &rl, &err), 0);
    ck_assert_int_eq(tm_state_register(r, "m", TM_STATE_MAP, 100, &rm, &err), 0);
    ck_assert_int_eq(tm_state_count(rv), 1);
    ck_assert_int_eq(tm_state_count(rl), 0);
    ck_assert_int_eq(tm_state_count(rm), 0);
    key(r, "fresh2");
    ck_assert_str_eq(vget(rv, NULL), "f2");
    /* restored entries keep their write time: they expire on schedule */
    fake_now += 100;
    ck_assert_ptr_null(vget(rv, NULL));
    free(mb.p);
    tm_state_backend_close(r);
    tm_state_backend_close(b);
}
END_TEST

START_TEST(iterate_all_entries_in_key_group_order) {
    tm_state_backend *b = open_backend(_i);
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
    tm_state *m = reg(b, "m", TM_STATE_MAP, 0);
    tm_state *l = reg(b, "l", TM_STATE_LIST, 0);
    enum { N = 3000 };
    char k[32], ns[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        key(b, k);
        snprintf(ns, sizeof ns, "w%d", i % 3);
        vput(v, ns, k);
        mput(m, NULL, "x", k);
        mput(m, NULL, "y", k);
        ladd(l, ns, k);
        ladd(l, ns, k);
    }
    key(b, "unchanged");
    int *seen = xcalloc(N, sizeof *seen);
    tm_state_iter *it = tm_state_iter_all(v);
    tm_state_entry e;
    int last_kg = -1, n = 0;
    while (tm_state_iter_next(it, &e)) {
        ck_assert_int_ge(e.key_group, last_kg);
        last_kg = e.key_group;
        snprintf(k, sizeof k, "%.*s", (int)e.klen, (const char *)e.key);
        ck_assert_int_eq(e.key_group, key_group_of(k, 128));
        int i = atoi(k + 4);
        ck_assert_int_eq(e.vlen, e.klen);
        ck_assert_int_eq(memcmp(e.value, e.key, e.klen), 0);
        ck_assert_int_eq(e.nslen, 2);
        ck_assert_int_eq(e.ns[1] - '0', i % 3);
        seen[i]++;
        n++;
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(n, N);
    for (int i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
    /* maps: one entry per user key */
    n = 0;
    it = tm_state_iter_all(m);
    while (tm_state_iter_next(it, &e)) {
        ck_assert_int_eq(e.uklen, 1);
        n++;
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(n, 2 * N);
    /* lists: one entry per list, the whole blob */
    n = 0;
    it = tm_state_iter_all(l);
    while (tm_state_iter_next(it, &e)) {
        ck_assert_int_eq(e.vlen, 2 * (4 + e.klen));
        n++;
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(n, N);
    /* the iteration did not move the current key */
    size_t kl;
    const uint8_t *cur = tm_state_current_key(b, &kl);
    ck_assert_int_eq(kl, 9);
    ck_assert_int_eq(memcmp(cur, "unchanged", 9), 0);
    /* clearing what was just returned (cleanup): every even key's value and map entry "x" */
    it = tm_state_iter_all(v);
    while (tm_state_iter_next(it, &e)) {
        snprintf(k, sizeof k, "%.*s", (int)e.klen, (const char *)e.key);
        snprintf(ns, sizeof ns, "%.*s", (int)e.nslen, (const char *)e.ns);
        if (atoi(k + 4) % 2) continue;
        tm_state_set_key(b, e.key, e.klen, e.key_group);
        ck_assert_int_eq(tm_state_clear(v, ns, strlen(ns)), 0);
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(tm_state_count(v), N / 2);
    it = tm_state_iter_all(m);
    n = 0;
    while (tm_state_iter_next(it, &e)) {
        n++;
        tm_state_set_key(b, e.key, e.klen, e.key_group);
        ck_assert_int_eq(tm_state_map_remove(m, e.ns, e.nslen, e.ukey, e.uklen), 0);
    }
    tm_state_iter_close(it);
    ck_assert_int_eq(n, 2 * N);
    ck_assert_int_eq(tm_state_count(m), 0);
    free(seen);
    tm_state_backend_close(b);
}
END_TEST

START_TEST(many_keys) {
    tm_state_backend *b = open_backend(_i);
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
    enum { N = 100000 };
    char k[32];
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "k%d", i);
        tm_state_set_key_hashed(b, k, (size_t)kl);
        int64_t x = (int64_t)i * 3;
        if (tm_state_value_put(v, NULL, 0, &x, 8)) ck_abort_msg("put %d", i);
    }
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "k%d", i);
        tm_state_set_key_hashed(b, k, (size_t)kl);
        const uint8_t *p;
        size_t n;
        int64_t x = -1;
        if (tm_state_value_get(v, NULL, 0, &p, &n) && n == 8) memcpy(&x, p, 8);
        if (x != (int64_t)i * 3) ck_abort_msg("key %d: %lld", i, (long long)x);
    }
    ck_assert_int_eq(tm_state_count(v), N);
    tm_state_backend_close(b);
}
END_TEST

START_TEST(large_values) {
    tm_state_backend *b = open_backend(_i);
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
    tm_state *l = reg(b, "l", TM_STATE_LIST, 0);
    tm_state *m = reg(b, "m", TM_STATE_MAP, 0);
    size_t big = 5u << 20;
    uint8_t *p = xmalloc(big);
    for (size_t i = 0; i < big; i++) p[i] = (uint8_t)(i * 7 + 3);
    key(b, "big");
    ck_assert_int_eq(tm_state_value_put(v, NULL, 0, p, big), 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(tm_state_list_add(l, NULL, 0, p, 1u << 20), 0);
    ck_assert_int_eq(tm_state_map_put(m, NULL, 0, p, 1000, p, 2u << 20), 0);
    membuf mb = {0};
    snap(b, 0, 127, &mb);
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *q, *el;
        size_t n, len;
        key(b, "big");
        ck_assert(tm_state_value_get(v, NULL, 0, &q, &n));
        ck_assert_int_eq(n, big);
        ck_assert_int_eq(memcmp(q, p, big), 0);
        ck_assert(tm_state_list_get(l, NULL, 0, &q, &n));
        const uint8_t *pos = q;
        int cnt = 0;
        while (tm_state_list_next(&pos, q + n, &el, &len)) {
            ck_assert_int_eq(len, 1u << 20);
            ck_assert_int_eq(memcmp(el, p, len), 0);
            cnt++;
        }
        ck_assert_int_eq(cnt, 3);
        ck_assert(tm_state_map_get(m, NULL, 0, p, 1000, &q, &n));
        ck_assert_int_eq(n, 2u << 20);
        ck_assert_int_eq(memcmp(q, p, n), 0);
        /* the second pass: the same from a restored copy in the other backend */
        tm_state_backend_close(b);
        b = open_backend(!_i);
        restore(b, &mb);
        flint_err err = {0};
        ck_assert_int_eq(tm_state_register(b, "v", TM_STATE_VALUE, 0, &v, &err), 0);
        ck_assert_int_eq(tm_state_register(b, "l", TM_STATE_LIST, 0, &l, &err), 0);
        ck_assert_int_eq(tm_state_register(b, "m", TM_STATE_MAP, 0, &m, &err), 0);
    }
    free(mb.p);
    free(p);
    tm_state_backend_close(b);
}
END_TEST

/* Fill a backend with every kind over many keys and namespaces. */
enum { SNAP_KEYS = 2000 };

static void fill(tm_state_backend *b) {
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
    tm_state *l = reg(b, "l", TM_STATE_LIST, 0);
    tm_state *m = reg(b, "m", TM_STATE_MAP, 0);
    tm_state *r = reg(b, "r", TM_STATE_REDUCING, 0);
    tm_state *a = reg(b, "a", TM_STATE_AGGREGATING, 0);
    reg(b, "empty", TM_STATE_VALUE, 0);
    char k[32], val[64];
    for (int i = 0; i < SNAP_KEYS; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        if (key_group_of(k, 128) < b->cfg.kg_first || key_group_of(k, 128) > b->cfg.kg_last) continue;
        key(b, k);
        snprintf(val, sizeof val, "v-%d", i);
        vput(v, NULL, val);
        vput(v, "ns", "namespaced");
        ladd(l, NULL, val);
        ladd(l, NULL, "second");
        mput(m, NULL, "uk1", val);
        mput(m, "w", "uk2", "w-value");
        vput(r, NULL, "reduced");
        vput(a, NULL, "acc");
    }
}

/* Check a backend holds exactly fill()'s entries of the key groups in [first, last]. */
static void verify(tm_state_backend *b, int first, int last) {
    flint_err err = {0};
    tm_state *v, *l, *m, *r, *a;
    ck_assert_int_eq(tm_state_register(b, "v", TM_STATE_VALUE, 0, &v, &err), 0);
    ck_assert_int_eq(tm_state_register(b, "l", TM_STATE_LIST, 0, &l, &err), 0);
    ck_assert_int_eq(tm_state_register(b, "m", TM_STATE_MAP, 0, &m, &err), 0);
    ck_assert_int_eq(tm_state_register(b, "r", TM_STATE_REDUCING, 0, &r, &err), 0);
    ck_assert_int_eq(tm_state_register(b, "a", TM_STATE_AGGREGATING, 0, &a, &err), 0);
    char k[32], val[64];
    int mine = 0;
    for (int i = 0; i < SNAP_KEYS; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        int kg = key_group_of(k, 128);
        if (kg < b->cfg.kg_first || kg > b->cfg.kg_last) continue;
        key(b, k);
        snprintf(val, sizeof val, "v-%d", i);
        if (kg < first || kg > last) {
            ck_assert_ptr_null(vget(v, NULL));
            continue;
        }
        mine++;
        ck_assert_str_eq(vget(v, NULL), val);
        ck_assert_str_eq(vget(v, "ns"), "namespaced");
        char expect[128];
        snprintf(expect, sizeof expect, "%s,second", val);
        ck_assert_str_eq(lget(l, NULL), expect);
        ck_assert_str_eq(mget(m, NULL, "uk1"), val);
        ck_assert_str_eq(mget(m, "w", "uk2"), "w-value");
        ck_assert_str_eq(vget(r, NULL), "reduced");
        ck_assert_str_eq(vget(a, NULL), "acc");
    }
    ck_assert_int_eq(tm_state_count(v), 2 * (size_t)mine);
    ck_assert_int_eq(tm_state_count(l), mine);
    ck_assert_int_eq(tm_state_count(m), 2 * (size_t)mine);
}

START_TEST(snapshot_restore_by_key_group_across_backends) {
    tm_state_backend *src = open_backend(_i);
    fill(src);
    membuf lo = {0}, hi = {0}, all = {0};
    snap(src, 0, 63, &lo);
    snap(src, 64, 127, &hi);
    snap(src, 0, 127, &all);
    for (int dst = 0; dst < 2; dst++) {
        /* the same split as two subtasks of parallelism 2 */
        tm_state_backend *a = open_range(dst, 0, 63, 128), *b = open_range(dst, 64, 127, 128);
        restore(a, &lo);
        restore(b, &hi);
        verify(a, 0, 63);
        verify(b, 64, 127);
        tm_state_backend_close(a);
        tm_state_backend_close(b);
        /* rescaling: every old snapshot read whole, only the new range kept */
        tm_state_backend *c = open_range(dst, 32, 95, 128);
        restore(c, &lo);
        restore(c, &hi);
        verify(c, 32, 95);
        /* its snapshot of a sub-range restores on (into the other type, through a tiny reader) */
        membuf part = {0};
        snap(c, 40, 50, &part);
        tm_state_backend *d = open_range(!dst, 32, 95, 128);
        flint_err err = {0};
        ck_assert_int_eq(tm_state_restore(d, mem_read_small, &part, &err), 0);
        verify(d, 40, 50);
        tm_state_backend_close(d);
        tm_state_backend_close(c);
        free(part.p);
        /* the whole snapshot into one backend */
        tm_state_backend *e = open_range(dst, 0, 127, 128);
        restore(e, &all);
        verify(e, 0, 127);
        /* ... and its own snapshot is the same bytes' worth of entries */
        membuf again = {0};
        snap(e, 0, 127, &again);
        ck_assert_int_eq(again.len, all.len);
        free(again.p);
        tm_state_backend_close(e);
    }
    /* an empty key group range still writes its blocks: 7 bytes each */
    tm_state_backend *empty = open_backend(_i);
    membuf eb = {0};
    snap(empty, 0, 127, &eb);
    ck_assert_int_eq(eb.len, 128 * 7);
    tm_state_backend_close(empty);
    free(eb.p);
    free(lo.p);
    free(hi.p);
    free(all.p);
    tm_state_backend_close(src);
}
END_TEST

START_TEST(restore_refuses_bad_input) {
    tm_state_backend *src = open_backend(_i);
    fill(src);
    membuf mb = {0};
    snap(src, 0, 127, &mb);
    tm_state_backend_close(src);
    flint_err err = {0};
    /* every truncation is an error or a clean prefix; never a crash */
    for (size_t cut = 1; cut < mb.len; cut += mb.len / 97 + 1) {
        tm_state_backend *b = open_backend(_i);
        membuf t = {mb.p, cut, cut, 0};
        (void)tm_state_restore(b, mem_read, &t, &err);
        tm_state_backend_close(b);
    }
    tm_state_backend *b = open_backend(_i);
    membuf junk = {(uint8_t *)"JUNKJUNKJUNK", 12, 12, 0};
    ck_assert_int_ne(tm_state_restore(b, mem_read, &junk, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "restore"));
    membuf t = {mb.p, mb.len - 3, mb.len - 3, 0};
    ck_assert_int_ne(tm_state_restore(b, mem_read, &t, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
    /* a state of another kind under the same name */
    tm_state_backend *c = open_backend(_i);
    reg(c, "v", TM_STATE_LIST, 0);
    mb.pos = 0;
    ck_assert_int_ne(tm_state_restore(c, mem_read, &mb, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "'v'"));
    tm_state_backend_close(c);
    tm_state_backend_close(b);
    free(mb.p);
}
END_TEST

/* ---- RocksDB: state far larger than the block cache ------------------------------------------- */

START_TEST(rocksdb_state_larger_than_block_cache) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/big", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    tm_state_config cfg = {.type = TM_BACKEND_ROCKSDB, .max_parallelism = 128, .kg_first = 0, .kg_last = 127,
                           .tmp_dir = dir, .name = "big", .block_cache_size = 8 << 20,
                           .write_buffer_size = 8 << 20};
    tm_state_backend *b;
    flint_err err = {0};
    ck_assert_int_eq(tm_state_backend_open(&cfg, &b, &err), 0);
    ck_assert_int_eq(count_dir(dir), 1); /* flint-state-big */
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
    enum { N = 200000, VL = 1024 };
    uint8_t val[VL];
    char k[32];
    int64_t t0 = time_mono_ms();
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "key-%d", i);
        for (int j = 0; j < VL; j += 8) {
            uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + (uint64_t)j;
            memcpy(val + j, &x, 8);
        }
        tm_state_set_key_hashed(b, k, (size_t)kl);
        if (tm_state_value_put(v, NULL, 0, val, VL)) ck_abort_msg("put %d failed", i);
    }
    int64_t t1 = time_mono_ms();
    for (int i = N - 1; i >= 0; i -= 1) {
        int kl = snprintf(k, sizeof k, "key-%d", i);
        tm_state_set_key_hashed(b, k, (size_t)kl);
        const uint8_t *p;
        size_t n;
        /* (plain checks: every ck_assert records its location, too slow for 25M of them) */
        if (!tm_state_value_get(v, NULL, 0, &p, &n)) ck_abort_msg("key %d missing", i);
        if (n != VL) ck_abort_msg("key %d: %zu bytes", i, n);
        for (int j = 0; j < VL; j += 8) {
            uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + (uint64_t)j, y;
            memcpy(&y, p + j, 8);
            if (x != y) ck_abort_msg("key %d byte %d differs", i, j);
        }
    }
    int64_t t2 = time_mono_ms();
    printf("rocksdb %d x %d B with an 8 MB block cache: put %.0f/s, verified get %.0f/s\n", N, VL,
           N * 1000.0 / (double)(t1 - t0 + 1), N * 1000.0 / (double)(t2 - t1 + 1));
    ck_assert_int_eq(tm_state_backend_error(b, NULL), 0);
    tm_state_backend_close(b);
    ck_assert_int_eq(count_dir(dir), 0); /* the instance's directory is gone */
    rmdir(dir);
}
END_TEST

START_TEST(rocksdb_spreads_over_tmp_dirs) {
    char d1[300], d2[300], list[700];
    snprintf(d1, sizeof d1, "%s/d1", tmpdir);
    snprintf(d2, sizeof d2, "%s/d2", tmpdir);
    snprintf(list, sizeof list, "%s;%s", d1, d2); /* d2 is made on demand */
    ck_assert_int_eq(mkdir(d1, 0755), 0);
    tm_state_backend *bs[8];
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "spread/%d", i); /* '/' is replaced in the directory name */
        tm_state_config cfg = {.type = TM_BACKEND_ROCKSDB, .max_parallelism = 128, .kg_first = 0, .kg_last = 127,
                               .tmp_dir = list, .name = name};
        flint_err err = {0};
        ck_assert_msg(tm_state_backend_open(&cfg, &bs[i], &err) == 0, "%s", err.msg);
        reg(bs[i], "v", TM_STATE_VALUE, 0);
    }
    ck_assert_int_gt(count_dir(d1), 0);
    ck_assert_int_gt(count_dir(d2), 0);
    ck_assert_int_eq(count_dir(d1) + count_dir(d2), 8);
    for (int i = 0; i < 8; i++) tm_state_backend_close(bs[i]);
    ck_assert_int_eq(count_dir(d1) + count_dir(d2), 0);
}
END_TEST

START_TEST(rocksdb_removes_dirs_of_dead_processes) {
    char dir[300], dead[400], alive[400], other[400];
    snprintf(dir, sizeof dir, "%s/sweep", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    snprintf(dead, sizeof dead, "%s/flint-state-exec-op0-%d-3", dir, (int)child);
    snprintf(alive, sizeof alive, "%s/flint-state-exec-op0-%d-3", dir, (int)getppid());
    snprintf(other, sizeof other, "%s/flint-state-handmade", dir);
    ck_assert_int_eq(mkdir(dead, 0755), 0);
    ck_assert_int_eq(mkdir(alive, 0755), 0);
    ck_assert_int_eq(mkdir(other, 0755), 0);
    char f[500];
    snprintf(f, sizeof f, "%s/000001.sst", dead);
    FILE *fp = fopen(f, "w");
    ck_assert_ptr_nonnull(fp);
    fclose(fp);
    tm_state_config cfg = {.type = TM_BACKEND_ROCKSDB, .max_parallelism = 128, .kg_first = 0, .kg_last = 127,
                           .tmp_dir = dir, .name = "sweeper"};
    tm_state_backend *b;
    flint_err err = {0};
    ck_assert_int_eq(tm_state_backend_open(&cfg, &b, &err), 0);
    struct stat sb;
    ck_assert_int_ne(stat(dead, &sb), 0);
    ck_assert_int_eq(stat(alive, &sb), 0);
    ck_assert_int_eq(stat(other, &sb), 0);
    tm_state_backend_close(b);
    rmdir(alive);
    rmdir(other);
}
END_TEST

/* ---- throughput printout (reports, does not assert times) --------------------------------------- */

/* RocksDB's copy of (current key, no namespace) of value state st, read past the write cache (which
 * tm_state_rocksdb_db writes out first): its value as a string, NULL when absent. */
static char *raw_get(tm_state_backend *b, tm_state *st, const char *k) {
    rocksdb_t *db = tm_state_rocksdb_db(b);
    uint8_t rk[64];
    size_t kl = strlen(k);
    int kg = key_group_of(k, 128);
    rk[0] = (uint8_t)(kg >> 8), rk[1] = (uint8_t)kg;
    rk[2] = rk[3] = rk[4] = 0, rk[5] = (uint8_t)kl;
    memcpy(rk + 6, k, kl);
    memset(rk + 6 + kl, 0, 4);
    char *e = NULL;
    size_t vl;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *v = rocksdb_get_cf(db, ro, tm_state_rocksdb_cf(st), (const char *)rk, 10 + kl, &vl, &e);
    rocksdb_readoptions_destroy(ro);
    ck_assert_ptr_null(e);
    static char buf[256];
    if (!v) return NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)vl, v);
    rocksdb_free(v);
    return buf;
}

/* The write-back cache of the rocksdb backend (tm_state_rdbcache.h): writes reach RocksDB when a
 * checkpoint exports the database, a key written and deleted in the cache never does, a value view
 * outlives the cache emptying itself under writes of other keys, lists merged into and maps
 * cleared after cached writes read back right, and many rounds of filling the cache lose
 * nothing. */
START_TEST(rocksdb_write_cache) {
    tm_state_backend *b = open_backend(1);
    tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
    tm_state *l = reg(b, "l", TM_STATE_LIST, 0);
    tm_state *m = reg(b, "m", TM_STATE_MAP, 0);
    key(b, "a");
    vput(v, NULL, "one");
    vput(v, NULL, "two");
    ck_assert_str_eq(raw_get(b, v, "a"), "two");       /* exported: written */
    key(b, "tmp");
    vput(v, NULL, "x");
    ck_assert_int_eq(tm_state_clear(v, NULL, 0), 0);
    ck_assert_ptr_null(raw_get(b, v, "tmp"));          /* never reached RocksDB */
    key(b, "a");
    ck_assert_int_eq(tm_state_clear(v, NULL, 0), 0);
    ck_assert_ptr_null(raw_get(b, v, "a"));            /* the delete did */
    ck_assert_ptr_null(vget(v, NULL));

    /* a view stays valid while 140 000 puts of other keys empty the cache (64k keys) twice */
    key(b, "keep");
    vput(v, NULL, "kept value");
    const uint8_t *p;
    size_t n;
    ck_assert(tm_state_value_get(v, NULL, 0, &p, &n));
    char k[32];
    for (int i = 0; i < 140000; i++) {
        int kl = snprintf(k, sizeof k, "k%d", i);
        tm_state_set_key_hashed(b, k, (size_t)kl);
        if (tm_state_value_put(v, NULL, 0, k, (size_t)kl)) ck_abort_msg("put %d", i);
    }
    ck_assert_int_eq((int)n, 10);
    ck_assert_int_eq(memcmp(p, "kept value", 10), 0);
    for (int i = 0; i < 140000; i += 7) {
        int kl = snprintf(k, sizeof k, "k%d", i);
        tm_state_set_key_hashed(b, k, (size_t)kl);
        if (!tm_state_value_get(v, NULL, 0, &p, &n) || n != (size_t)kl || memcmp(p, k, n))
            ck_abort_msg("key %s lost", k);
    }
    ck_assert_int_eq(tm_state_count(v), 140001);

    key(b, "list");
    const void *els[] = {"p", "q"};
    size_t lens[] = {1, 1};
    ck_assert_int_eq(tm_state_list_update(l, NULL, 0, 2, els, lens), 0);
    ladd(l, NULL, "r");
    ck_assert_str_eq(lget(l, NULL), "p,q,r");
    key(b, "map");
    mput(m, "ns", "x", "1");
    mput(m, "ns", "y", "2");
    ck_assert_str_eq(mget(m, "ns", "y"), "2");
    ck_assert_int_eq(tm_state_clear(m, "ns", 2), 0);
    ck_assert_ptr_null(mget(m, "ns", "x"));
    ck_assert_ptr_null(mget(m, "ns", "y"));
    mput(m, "ns", "z", "3");
    ck_assert_int_eq(tm_state_count(m), 1);
    ck_assert_int_eq(tm_state_backend_error(b, NULL), 0);
    tm_state_backend_close(b);
}
END_TEST

START_TEST(throughput_printout) {
    for (int type = 0; type < 2; type++) {
        tm_state_backend *b = open_backend(type);
        tm_state *v = reg(b, "v", TM_STATE_VALUE, 0);
        enum { N = 200000 };
        char k[32];
        int64_t val[4] = {1, 2, 3, 4};
        int64_t t0 = time_mono_ns();
        for (int i = 0; i < N; i++) {
            int kl = snprintf(k, sizeof k, "key-%d", i % 50000);
            tm_state_set_key_hashed(b, k, (size_t)kl);
            val[0] = i;
            tm_state_value_put(v, NULL, 0, val, sizeof val);
        }
        int64_t t1 = time_mono_ns();
        int64_t sum = 0;
        for (int i = 0; i < N; i++) {
            int kl = snprintf(k, sizeof k, "key-%d", i % 50000);
            tm_state_set_key_hashed(b, k, (size_t)kl);
            const uint8_t *p;
            size_t n;
            if (tm_state_value_get(v, NULL, 0, &p, &n)) sum += p[0];
        }
        int64_t t2 = time_mono_ns();
        printf("%s: put %.2f M/s, get %.2f M/s (%d ops over 50000 keys, 32-byte values)\n",
               type ? "rocksdb" : "hashmap", N * 1e3 / (double)(t1 - t0), N * 1e3 / (double)(t2 - t1), N);
        ck_assert_int_ne(sum, 0);
        tm_state_backend_close(b);
    }
}
END_TEST

/* ---- the public API ------------------------------------------------------------------------------ */

typedef struct api_fixture {
    tm_runtime rt;
    Flint__Graph__OperatorDef def;
    Flint__Graph__KeyValue kv_type, kv_tmp;
    Flint__Graph__KeyValue *job_config[2];
    tm_op op;
    tm_state_backend *b;
} api_fixture;

static void api_open(api_fixture *f, int type, bool keyed, int subtask, int parallelism) {
    memset(f, 0, sizeof *f);
    flint__graph__operator_def__init(&f->def);
    f->def.name = "state-test";
    flint__graph__key_value__init(&f->kv_type);
    flint__graph__key_value__init(&f->kv_tmp);
    f->kv_type.key = "state.backend.type";
    f->kv_type.value = type ? "rocksdb" : "hashmap";
    f->kv_tmp.key = "io.tmp.dirs";
    f->kv_tmp.value = tmpdir;
    f->job_config[0] = &f->kv_type;
    f->job_config[1] = &f->kv_tmp;
    f->rt.subtask = subtask;
    f->rt.parallelism = parallelism;
    f->rt.max_parallelism = 128;
    f->rt.job_config = f->job_config;
    f->rt.n_job_config = 2;
    f->rt.execution_id = "exec-1";
    f->op.rt = &f->rt;
    f->op.def = &f->def;
    ck_assert_int_eq(tm_state_op_open(&f->op, keyed ? &f->b : NULL), 0);
    if (keyed) {
        ck_assert_int_eq(tm_state_backend_type(f->b), type ? TM_BACKEND_ROCKSDB : TM_BACKEND_HASHMAP);
        f->b->cfg.clock = fake_clock;
    }
}

static void api_close(api_fixture *f) { tm_state_op_close(&f->op, f->b); }

static flint_schema *schema(const char *text) {
    flint_schema *s;
    flint_err err = {0};
    ck_assert_int_eq(flint_schema_parse(text, &s, &err), 0);
    return s;
}

/* A row "name STRING, n BIGINT" in builder b. */
static flint_row mkrow(flint_row_builder *b, const char *name, int64_t n) {
    flint_row_builder_reset(b);
    flint_row_set_cstring(b, 0, name);
    flint_row_set_long(b, 1, n);
    return flint_row_builder_row(b);
}

void check_sum_reduce(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, acc, 0);
    flint_row_set_long(out, 1, flint_row_get_long(acc, 1) + flint_row_get_long(in, 1));
}

/* average: accumulator (sum BIGINT, count BIGINT), result (avg DOUBLE) */
void check_avg_create(flint_ctx *ctx, flint_row_builder *acc) {
    (void)ctx;
    flint_row_set_long(acc, 0, 0);
    flint_row_set_long(acc, 1, 0);
}
void check_avg_add(flint_ctx *ctx, const flint_row *acc, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(acc, 0) + flint_row_get_long(in, 1));
    flint_row_set_long(out, 1, flint_row_get_long(acc, 1) + 1);
}
void check_avg_result(flint_ctx *ctx, const flint_row *acc, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_double(out, 0, (double)flint_row_get_long(acc, 0) / (double)flint_row_get_long(acc, 1));
}

START_TEST(api_keyed_state_kinds) {
    api_fixture f;
    api_open(&f, _i, true, 0, 1);
    flint_ctx *ctx = &f.op.ctx;
    flint_schema *sch = schema("name STRING, n BIGINT"), *ks = schema("word STRING");
    flint_row_builder rb, kb;
    flint_row_builder_init(&rb, sch);
    flint_row_builder_init(&kb, ks);
    flint_state_desc vd = {.name = "count", .schema = "name STRING, n BIGINT"};
    flint_state *vs = flint_state_value(ctx, &vd);
    ck_assert(!ctx->failed);
    ck_assert_ptr_eq(flint_state_value(ctx, &vd), vs); /* the same name: the same state */
    flint_state_desc ld = {.name = "seen", .schema = "name STRING, n BIGINT"};
    flint_state *ls = flint_state_list(ctx, &ld);
    flint_state_desc md = {.name = "words", .schema = "name STRING, n BIGINT", .key_schema = "word STRING"};
    flint_state *ms = flint_state_map(ctx, &md);
    flint_state_desc rd = {.name = "sum", .schema = "name STRING, n BIGINT", .reduce_fn = FLINT_FN(check_sum_reduce)};
    flint_state *rs = flint_state_reducing(ctx, &rd);
    flint_state_desc ad = {.name = "avg", .schema = "sum BIGINT, count BIGINT",
                           .agg_create = FLINT_FN(check_avg_create), .agg_add = FLINT_FN(check_avg_add),
                           .agg_result = FLINT_FN(check_avg_result), .result_schema = "avg DOUBLE"};
    flint_state *as = flint_state_aggregating(ctx, &ad);
    ck_assert_msg(!ctx->failed, "%s", ctx->error);

    flint_row out, k, v;
    for (int round = 0; round < 2; round++) {
        tm_state_set_key_hashed(f.b, "alice", 5);
        ck_assert(!flint_value_get(vs, &out));
        flint_row r = mkrow(&rb, "alice", 1);
        flint_value_update(vs, &r);
        ck_assert(flint_value_get(vs, &out));
        ck_assert_int_eq(flint_row_get_long(&out, 1), 1);
        for (int i = 1; i <= 4; i++) {
            r = mkrow(&rb, "alice", i);
            flint_list_add(ls, &r);
            flint_state_add(rs, &r);
            flint_state_add(as, &r);
        }
        ck_assert(flint_state_get(rs, &out));
        ck_assert_int_eq(flint_row_get_long(&out, 1), 10);
        ck_assert(flint_state_get(as, &out));
        ck_assert(flint_row_get_double(&out, 0) == 2.5);
        flint_state_iter *it = flint_list_iter(ls);
        int n = 0;
        while (flint_state_iter_next(it, NULL, &v)) ck_assert_int_eq(flint_row_get_long(&v, 1), ++n);
        ck_assert_int_eq(n, 4);
        flint_row rows[2] = {mkrow(&rb, "x", 7), {0}};
        flint_row_builder rb2;
        flint_row_builder_init(&rb2, sch);
        rows[1] = mkrow(&rb2, "y", 8);
        flint_list_update(ls, 2, rows);
        flint_row_builder_free(&rb2);
        it = flint_list_iter(ls);
        ck_assert(flint_state_iter_next(it, NULL, &v));
        ck_assert_int_eq(flint_row_get_long(&v, 1), 7);
        flint_state_iter_close(it); /* unfinished */
        /* maps keyed by rows */
        flint_row_builder_reset(&kb);
        flint_row_set_cstring(&kb, 0, "hello");
        flint_row key = flint_row_builder_row(&kb);
        r = mkrow(&rb, "hello", 42);
        flint_map_put(ms, &key, &r);
        ck_assert(flint_map_contains(ms, &key));
        ck_assert(flint_map_get(ms, &key, &out));
        ck_assert_int_eq(flint_row_get_long(&out, 1), 42);
        flint_row_builder_reset(&kb);
        flint_row_set_cstring(&kb, 0, "world");
        key = flint_row_builder_row(&kb);
        flint_map_put(ms, &key, &r);
        it = flint_map_iter(ms);
        n = 0;
        while (flint_state_iter_next(it, &k, &v)) {
            size_t len;
            const char *w = flint_row_get_string(&k, 0, &len);
            ck_assert(len == 5 && (memcmp(w, "hello", 5) == 0 || memcmp(w, "world", 5) == 0));
            n++;
        }
        ck_assert_int_eq(n, 2);
        flint_map_remove(ms, &key);
        ck_assert(!flint_map_contains(ms, &key));
        /* another key sees nothing */
        tm_state_set_key_hashed(f.b, "bob", 3);
        ck_assert(!flint_value_get(vs, &out));
        ck_assert(!flint_state_get(rs, &out));
        ck_assert_ptr_null(flint_list_iter(ls));
        ck_assert(!flint_state_iter_next(flint_map_iter(ms), &k, &v));
        /* clear each for alice, then round 2 does it all again */
        tm_state_set_key_hashed(f.b, "alice", 5);
        flint_state_clear(vs);
        flint_state_clear(ls);
        flint_state_clear(ms);
        flint_state_clear(rs);
        flint_state_clear(as);
        ck_assert(!flint_value_get(vs, &out));
        ck_assert(!flint_state_get(as, &out));
    }
    ck_assert_msg(!ctx->failed, "%s", ctx->error);
    /* misuse fails the context with the state's name */
    flint_state_add(vs, &out);
    ck_assert(ctx->failed);
    ck_assert_ptr_nonnull(strstr(ctx->error, "'count'"));
    flint_ctx_clear_failure(ctx);
    flint_row wrong = mkrow(&rb, "x", 1);
    flint_state_desc wd = {.name = "other", .schema = "x INT"};
    flint_state *ws = flint_state_value(ctx, &wd);
    flint_value_update(ws, &wrong);
    ck_assert(ctx->failed);
    ck_assert_ptr_nonnull(strstr(ctx->error, "x INT"));
    flint_ctx_clear_failure(ctx);
    flint_state_desc bad = {.name = "bad", .schema = "x NOTATYPE"};
    ck_assert_ptr_nonnull(flint_state_value(ctx, &bad)); /* a dummy */
    ck_assert(ctx->failed);
    flint_ctx_clear_failure(ctx);
    flint_state_desc kindclash = {.name = "count", .schema = "name STRING, n BIGINT"};
    flint_value_get(flint_state_list(ctx, &kindclash), &out);
    ck_assert(ctx->failed);
    flint_row_builder_free(&rb);
    flint_row_builder_free(&kb);
    flint_schema_free(sch);
    flint_schema_free(ks);
    api_close(&f);
}
END_TEST

START_TEST(api_ttl) {
    api_fixture f;
    api_open(&f, _i, true, 0, 1);
    flint_ctx *ctx = &f.op.ctx;
    fake_now = 5000000;
    flint_state_desc d = {.name = "last", .schema = "name STRING, n BIGINT", .ttl_ms = 1000};
    flint_state *s = flint_state_value(ctx, &d);
    flint_schema *sch = schema("name STRING, n BIGINT");
    flint_row_builder rb;
    flint_row_builder_init(&rb, sch);
    tm_state_set_key_hashed(f.b, "k", 1);
    flint_row r = mkrow(&rb, "k", 1), out;
    flint_value_update(s, &r);
    fake_now += 999;
    ck_assert(flint_value_get(s, &out));
    fake_now += 1;
    ck_assert(!flint_value_get(s, &out));
    ck_assert(!ctx->failed);
    flint_row_builder_free(&rb);
    flint_schema_free(sch);
    api_close(&f);
}
END_TEST

START_TEST(api_operator_list_and_broadcast_state) {
    /* two old subtasks with 5 and 2 elements; restored at parallelism 3 */
    membuf snaps = {0};
    flint_schema *sch = schema("name STRING, n BIGINT"), *ks = schema("rule STRING");
    flint_row_builder rb, kb;
    flint_row_builder_init(&rb, sch);
    flint_row_builder_init(&kb, ks);
    flint_state_desc ld = {.name = "offsets", .schema = "name STRING, n BIGINT"};
    flint_state_desc bd = {.name = "rules", .schema = "name STRING, n BIGINT", .key_schema = "rule STRING"};
    int sizes[2] = {5, 2};
    for (int sub = 0; sub < 2; sub++) {
        api_fixture f;
        api_open(&f, 0, false, sub, 2);
        flint_ctx *ctx = &f.op.ctx;
        flint_state *ls = flint_state_operator_list(ctx, &ld);
        flint_state *bs = flint_state_broadcast(ctx, &bd);
        for (int i = 0; i < sizes[sub]; i++) {
            flint_row r = mkrow(&rb, sub ? "b" : "a", i);
            flint_list_add(ls, &r);
        }
        flint_row_builder_reset(&kb);
        flint_row_set_cstring(&kb, 0, "r1");
        flint_row key = flint_row_builder_row(&kb), r = mkrow(&rb, "rule one", 1), out;
        flint_map_put(bs, &key, &r); /* not on the broadcast side: refused */
        ck_assert(ctx->failed);
        ck_assert_ptr_nonnull(strstr(ctx->error, "read-only"));
        flint_ctx_clear_failure(ctx);
        ctx->broadcast_writable = true;
        flint_map_put(bs, &key, &r);
        ctx->broadcast_writable = false;
        ck_assert(flint_map_get(bs, &key, &out)); /* readable anywhere */
        ck_assert_int_eq(flint_row_get_long(&out, 1), 1);
        /* keyed state is not for non-keyed operators */
        flint_state_desc vd = {.name = "v", .schema = "x INT"};
        flint_state_value(ctx, &vd);
        ck_assert(ctx->failed);
        ck_assert_ptr_nonnull(strstr(ctx->error, "keyed operator"));
        flint_ctx_clear_failure(ctx);
        flint_err err = {0};
        ck_assert_int_eq(tm_state_op_snapshot_operator(&f.op, mem_write, &snaps, &err), 0);
        api_close(&f);
    }
    int total = 0;
    for (int sub = 0; sub < 3; sub++) {
        api_fixture f;
        api_open(&f, 0, false, sub, 3);
        flint_err err = {0};
        snaps.pos = 0;
        ck_assert_int_eq(tm_state_op_restore_operator(&f.op, mem_read, &snaps, &err), 0);
        flint_ctx *ctx = &f.op.ctx;
        flint_state *ls = flint_state_operator_list(ctx, &ld);
        flint_state *bs = flint_state_broadcast(ctx, &bd);
        flint_state_iter *it = flint_list_iter(ls);
        flint_row v, k;
        int n = 0;
        while (flint_state_iter_next(it, NULL, &v)) n++;
        ck_assert_int_eq(n, sub == 0 ? 3 : 2); /* 7 elements round robin over 3 */
        total += n;
        it = flint_map_iter(bs);
        n = 0;
        while (flint_state_iter_next(it, &k, &v)) n++;
        ck_assert_int_eq(n, 1); /* every instance has the whole broadcast state */
        ck_assert(!ctx->failed);
        api_close(&f);
    }
    ck_assert_int_eq(total, 7);
    free(snaps.p);
    flint_row_builder_free(&rb);
    flint_row_builder_free(&kb);
    flint_schema_free(sch);
    flint_schema_free(ks);
}
END_TEST

START_TEST(api_without_state_support) {
    flint_ctx ctx = {0};
    flint_state_desc d = {.name = "x", .schema = "x INT"};
    flint_state *s = flint_state_value(&ctx, &d);
    ck_assert_ptr_nonnull(s);
    ck_assert(ctx.failed);
    flint_row out;
    ck_assert(!flint_value_get(s, &out)); /* a harmless dummy */
    ck_assert_ptr_null(flint_list_iter(s));
    ck_assert(!flint_state_iter_next(NULL, NULL, NULL));
}
END_TEST

START_TEST(op_config_from_job_and_defaults) {
    api_fixture f;
    api_open(&f, 1, true, 1, 4);
    ck_assert_int_eq(f.b->cfg.kg_first, 32);
    ck_assert_int_eq(f.b->cfg.kg_last, 63);
    ck_assert_int_eq(f.b->cfg.block_cache_size, 8 << 20);
    ck_assert_int_eq(f.b->cfg.write_buffer_size, 16 << 20);
    ck_assert_ptr_nonnull(strstr(f.b->name, "exec-1-op0"));
    api_close(&f);
    /* a bad backend type fails the operator */
    api_fixture g;
    memset(&g, 0, sizeof g);
    tm_runtime rt = {.subtask = 0, .parallelism = 1, .max_parallelism = 128};
    Flint__Graph__KeyValue kv;
    flint__graph__key_value__init(&kv);
    kv.key = "state.backend.type";
    kv.value = "leveldb";
    Flint__Graph__KeyValue *kvs[1] = {&kv};
    rt.job_config = kvs;
    rt.n_job_config = 1;
    Flint__Graph__OperatorDef def;
    flint__graph__operator_def__init(&def);
    def.name = "op";
    g.op.rt = &rt;
    g.op.def = &def;
    tm_state_backend *b = NULL;
    ck_assert_int_ne(tm_state_op_open(&g.op, &b), 0);
    ck_assert(rt.failed);
    ck_assert_ptr_nonnull(strstr(rt.err.msg, "leveldb"));
    tm_state_op_close(&g.op, b);
}
END_TEST

static void rm_tmpdir(void) {
    if (!tmpdir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) { /* best effort */
    }
    tmpdir[0] = '\0';
}

Suite *state_suite(void) {
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 120);
    /* loop index 0: hashmap, 1: rocksdb */
    tcase_add_loop_test(tc, value_state_per_key_and_namespace, 0, 2);
    tcase_add_loop_test(tc, value_overwrite, 0, 2);
    tcase_add_loop_test(tc, registration_rules, 0, 2);
    tcase_add_loop_test(tc, list_state, 0, 2);
    tcase_add_loop_test(tc, map_state, 0, 2);
    tcase_add_loop_test(tc, ttl_expires_after_write, 0, 2);
    tcase_add_loop_test(tc, iterate_all_entries_in_key_group_order, 0, 2);
    tcase_add_loop_test(tc, many_keys, 0, 2);
    tcase_add_loop_test(tc, large_values, 0, 2);
    tcase_add_loop_test(tc, snapshot_restore_by_key_group_across_backends, 0, 2);
    tcase_add_loop_test(tc, restore_refuses_bad_input, 0, 2);
    suite_add_tcase(s, tc);
    TCase *api = tcase_create("api");
    tcase_add_loop_test(api, api_keyed_state_kinds, 0, 2);
    tcase_add_loop_test(api, api_ttl, 0, 2);
    tcase_add_test(api, api_operator_list_and_broadcast_state);
    tcase_add_test(api, api_without_state_support);
    tcase_add_test(api, op_config_from_job_and_defaults);
    suite_add_tcase(s, api);
    TCase *big = tcase_create("rocksdb");
    tcase_set_timeout(big, 300);
    tcase_add_test(big, rocksdb_state_larger_than_block_cache);
    tcase_add_test(big, rocksdb_spreads_over_tmp_dirs);
    tcase_add_test(big, rocksdb_removes_dirs_of_dead_processes);
    tcase_add_test(big, rocksdb_write_cache);
    tcase_add_test(big, throughput_printout);
    suite_add_tcase(s, big);
    return s;
}

int main(void) {
    make_tmpdir(); /* before the tests fork: they all share it */
    SRunner *sr = srunner_create(state_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    rm_tmpdir();
    return failed ? 1 : 0;
}

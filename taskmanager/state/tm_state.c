/* The generic half of the keyed state backends (see tm_state.h): opening a backend of a type,
 * registration, the current key, TTL (the write time stored before each value, list element and
 * map value; expired entries dropped on access and left out of snapshots and iterations), list
 * blobs, and the backend-independent snapshot format. The primitive operations come from the
 * backend's table (tm_state_int.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "row/row_key.h"
#include "state/tm_state_int.h"
#include "util/alloc.h"
#include "util/timeutil.h"

/* ---- backends ------------------------------------------------------------------------------- */

bool tm_backend_type_parse(const char *name, tm_backend_type *out) {
    if (!name) return false;
    if (strcmp(name, "hashmap") == 0) *out = TM_BACKEND_HASHMAP;
    else if (strcmp(name, "rocksdb") == 0) *out = TM_BACKEND_ROCKSDB;
    else return false;
    return true;
}

const char *tm_backend_type_name(tm_backend_type t) { return t == TM_BACKEND_ROCKSDB ? "rocksdb" : "hashmap"; }

int tm_state_backend_open(const tm_state_config *cfg, tm_state_backend **out, flint_err *err) {
    assert(cfg && out);
    *out = NULL;
    if (cfg->max_parallelism < 1 || cfg->max_parallelism > 32768)
        return flint_err_set(err, FLINT_INVALID, "state backend: max parallelism %d out of range 1..32768",
                             cfg->max_parallelism);
    if (cfg->kg_first < 0 || cfg->kg_last >= cfg->max_parallelism || cfg->kg_first > cfg->kg_last)
        return flint_err_set(err, FLINT_INVALID, "state backend: bad key group range [%d, %d] of %d",
                             cfg->kg_first, cfg->kg_last, cfg->max_parallelism);
    tm_state_backend *b = XNEW(tm_state_backend);
    b->vt = cfg->type == TM_BACKEND_ROCKSDB ? &tm_state_rocksdb_vt : &tm_state_hashmap_vt;
    b->cfg = *cfg;
    b->tmp_dir = xstrdup(cfg->tmp_dir && cfg->tmp_dir[0] ? cfg->tmp_dir : "/tmp");
    b->name = xstrdup(cfg->name && cfg->name[0] ? cfg->name : "state");
    b->cfg.tmp_dir = b->tmp_dir;
    b->cfg.name = b->name;
    b->kg = cfg->kg_first;
    int rc = b->vt->open(b, err);
    if (rc) {
        free(b->tmp_dir);
        free(b->name);
        free(b);
        return rc;
    }
    *out = b;
    return FLINT_OK;
}

void tm_state_backend_close(tm_state_backend *b) {
    if (!b) return;
    b->vt->close(b);
    for (int i = 0; i < b->n_states; i++) {
        free(b->states[i]->name);
        free(b->states[i]);
    }
    free(b->states);
    free(b->key);
    free(b->scratch);
    free(b->scratch2);
    free(b->tmp_dir);
    free(b->name);
    free(b);
}

tm_backend_type tm_state_backend_type(const tm_state_backend *b) { return b->cfg.type; }

int tm_state_backend_error(const tm_state_backend *b, flint_err *err) {
    if (!b->err_code) return FLINT_OK;
    return flint_err_set(err, b->err_code, "%s", b->err_msg);
}

int tm_state_backend_fail(tm_state_backend *b, const char *fmt, ...) {
    if (!b->err_code) {
        b->err_code = FLINT_IO;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err_msg, sizeof b->err_msg, fmt, ap);
        va_end(ap);
    }
    return FLINT_IO;
}

int64_t tm_state_backend_now(const tm_state_backend *b) {
    return b->cfg.clock ? b->cfg.clock(b->cfg.clock_ud) : time_wall_ms();
}

/* ---- states ------------------------------------------------------------------------------- */

static const char *kind_name(tm_state_kind k) {
    switch (k) {
    case TM_STATE_VALUE: return "value";
    case TM_STATE_LIST: return "list";
    case TM_STATE_MAP: return "map";
    case TM_STATE_REDUCING: return "reducing";
    case TM_STATE_AGGREGATING: return "aggregating";
    }
    return "?";
}

static tm_state *find_state(tm_state_backend *b, const char *name, size_t len) {
    for (int i = 0; i < b->n_states; i++)
        if (strlen(b->states[i]->name) == len && memcmp(b->states[i]->name, name, len) == 0) return b->states[i];
    return NULL;
}

int tm_state_register(tm_state_backend *b, const char *name, tm_state_kind kind, int64_t ttl_ms, tm_state **out,
                      flint_err *err) {
    assert(b && out);
    *out = NULL;
    if (!name || !name[0]) return flint_err_set(err, FLINT_INVALID, "a state needs a name");
    if (strlen(name) > 1024) return flint_err_set(err, FLINT_INVALID, "state name too long (%zu bytes)", strlen(name));
    if (kind < TM_STATE_VALUE || kind > TM_STATE_AGGREGATING)
        return flint_err_set(err, FLINT_INVALID, "state '%s': unknown kind %d", name, (int)kind);
    if (ttl_ms < 0) ttl_ms = 0;
    tm_state *st = find_state(b, name, strlen(name));
    if (st) {
        if (st->kind != kind)
            return flint_err_set(err, FLINT_STATE, "state '%s' is %s state, not %s state", name, kind_name(st->kind),
                                 kind_name(kind));
        if ((st->ttl_ms > 0) != (ttl_ms > 0))
            return flint_err_set(err, FLINT_STATE, "state '%s': TTL cannot be switched %s for existing state", name,
                                 ttl_ms > 0 ? "on" : "off");
        st->ttl_ms = ttl_ms;
        *out = st;
        return FLINT_OK;
    }
    st = XNEW(tm_state);
    st->b = b;
    st->name = xstrdup(name);
    st->kind = kind;
    st->ttl_ms = ttl_ms;
    st->index = b->n_states;
    int rc = b->vt->add_state(st, err);
    if (rc) {
        free(st->name);
        free(st);
        return rc;
    }
    if (b->n_states == b->cap_states) {
        b->cap_states = b->cap_states ? 2 * b->cap_states : 8;
        b->states = xrealloc(b->states, (size_t)b->cap_states * sizeof *b->states);
    }
    b->states[b->n_states++] = st;
    *out = st;
    return FLINT_OK;
}

const char *tm_state_name(const tm_state *st) { return st->name; }
tm_state_kind tm_state_kind_of(const tm_state *st) { return st->kind; }
tm_state_backend *tm_state_backend_of(const tm_state *st) { return st->b; }

/* ---- the current key ------------------------------------------------------------------------- */

static void set_key(tm_state_backend *b, const void *key, size_t len, int key_group, uint64_t hash) {
    if (len > b->kcap) {
        b->kcap = len < 64 ? 64 : 2 * len;
        b->key = xrealloc(b->key, b->kcap);
    }
    if (len) memcpy(b->key, key, len);
    b->klen = len;
    b->kg = key_group;
    b->khash = hash;
}

void tm_state_set_key(tm_state_backend *b, const void *key, size_t len, int key_group) {
    assert(key_group >= b->cfg.kg_first && key_group <= b->cfg.kg_last);
    set_key(b, key, len, key_group, XXH3_64bits(len ? key : "", len));
}

bool tm_state_set_key_hashed(tm_state_backend *b, const void *key, size_t len) {
    uint64_t h = row_key_hash(len ? key : "", len); /* XXH3_64bits: also the hashmap's hash */
    int kg = row_key_group(h, b->cfg.max_parallelism);
    if (kg < b->cfg.kg_first || kg > b->cfg.kg_last) return false;
    set_key(b, key, len, kg, h);
    return true;
}

const uint8_t *tm_state_current_key(const tm_state_backend *b, size_t *len) {
    *len = b->klen;
    return b->key ? b->key : (const uint8_t *)"";
}

int tm_state_current_key_group(const tm_state_backend *b) { return b->kg; }

/* ---- TTL helpers ------------------------------------------------------------------------------ */

static inline bool expired(const tm_state *st, int64_t written, int64_t now) {
    return st->ttl_ms > 0 && written <= now - st->ttl_ms;
}

static uint8_t *scratch(tm_state_backend *b, size_t n) {
    if (n > b->scap) {
        b->scap = n < 256 ? 256 : 2 * n;
        b->scratch = xrealloc(b->scratch, b->scap);
    }
    return b->scratch;
}

static uint8_t *scratch2(tm_state_backend *b, size_t n) {
    if (n > b->scap2) {
        b->scap2 = n < 256 ? 256 : 2 * n;
        b->scratch2 = xrealloc(b->scratch2, b->scap2);
    }
    return b->scratch2;
}

/* A TTL list blob (elements whose bytes start with their write time) filtered at now into out
 * (stored form, out_stored) and/or (payload only, out_plain); either may be NULL. Returns the
 * number of expired elements; lengths in *stored_len / *plain_len. */
static size_t ttl_filter_list(const tm_state *st, const uint8_t *blob, size_t len, int64_t now, uint8_t *out_stored,
                              size_t *stored_len, uint8_t *out_plain, size_t *plain_len) {
    const uint8_t *pos = blob, *end = blob + len, *el;
    size_t n, dropped = 0, sl = 0, pl = 0;
    while (tm_state_list_next(&pos, end, &el, &n)) {
        if (n < 8 || expired(st, (int64_t)tm_get64le(el), now)) {
            dropped++;
            continue;
        }
        if (out_stored) {
            tm_put32le(out_stored + sl, (uint32_t)n);
            memcpy(out_stored + sl + 4, el, n);
        }
        sl += 4 + n;
        if (out_plain) {
            tm_put32le(out_plain + pl, (uint32_t)(n - 8));
            memcpy(out_plain + pl + 4, el + 8, n - 8);
        }
        pl += 4 + n - 8;
    }
    if (stored_len) *stored_len = sl;
    if (plain_len) *plain_len = pl;
    return dropped;
}

/* A stored value (value state, map value) read at now: false when expired (or malformed). */
static bool ttl_strip(const tm_state *st, int64_t now, const uint8_t **v, size_t *len) {
    if (st->ttl_ms <= 0) return true;
    if (*len < 8 || expired(st, (int64_t)tm_get64le(*v), now)) return false;
    *v += 8;
    *len -= 8;
    return true;
}

/* ---- value, reducing and aggregating ---------------------------------------------------------- */

static bool point_get(tm_state *st, const void *ns, size_t nslen, const void *uk, size_t uklen, const uint8_t **val,
                      size_t *len) {
    tm_state_backend *b = st->b;
    const uint8_t *v;
    size_t n;
    if (!b->vt->get(st, ns, nslen, uk, uklen, &v, &n)) return false;
    if (st->ttl_ms > 0 && !ttl_strip(st, tm_state_backend_now(b), &v, &n)) {
        b->vt->del(st, ns, nslen, uk, uklen); /* cleanup on access */
        return false;
    }
    *val = v;
    *len = n;
    return true;
}

static int point_put(tm_state *st, const void *ns, size_t nslen, const void *uk, size_t uklen, const void *val,
                     size_t len) {
    tm_state_backend *b = st->b;
    uint8_t ts[8];
    tm_slice parts[2];
    int np = 0;
    if (st->ttl_ms > 0) {
        tm_put64le(ts, (uint64_t)tm_state_backend_now(b));
        parts[np++] = (tm_slice){ts, 8};
    }
    parts[np++] = (tm_slice){val ? val : "", len};
    return b->vt->put(st, ns, nslen, uk, uklen, parts, np);
}

bool tm_state_value_get(tm_state *st, const void *ns, size_t nslen, const uint8_t **val, size_t *len) {
    assert(st->kind != TM_STATE_LIST && st->kind != TM_STATE_MAP);
    return point_get(st, ns, nslen, NULL, 0, val, len);
}

int tm_state_value_put(tm_state *st, const void *ns, size_t nslen, const void *val, size_t len) {
    assert(st->kind != TM_STATE_LIST && st->kind != TM_STATE_MAP);
    if (len > UINT32_MAX - 16) return tm_state_backend_fail(st->b, "state '%s': value of %zu bytes", st->name, len);
    return point_put(st, ns, nslen, NULL, 0, val, len);
}

int tm_state_value_overwrite(tm_state *st, const void *ns, size_t nslen, size_t off, const void *bytes, size_t n,
                             const uint8_t **val, size_t *len) {
    assert(st->kind != TM_STATE_LIST && st->kind != TM_STATE_MAP && (bytes || n == 0));
    tm_state_backend *b = st->b;
    if (b->vt->overwrite && st->ttl_ms <= 0) return b->vt->overwrite(st, ns, nslen, off, bytes, n, val, len);
    const uint8_t *v;
    size_t vn;
    if (!point_get(st, ns, nslen, NULL, 0, &v, &vn) || off + n > vn)
        return tm_state_backend_fail(b, "state '%s': no value of %zu bytes or more to overwrite", st->name, off + n);
    uint8_t *copy = scratch2(b, vn);
    memcpy(copy, v, vn);
    if (n) memcpy(copy + off, bytes, n);
    int rc = point_put(st, ns, nslen, NULL, 0, copy, vn);
    if (rc) return rc;
    *val = copy;
    *len = vn;
    return FLINT_OK;
}

/* ---- list ------------------------------------------------------------------------------------- */

int tm_state_list_add(tm_state *st, const void *ns, size_t nslen, const void *val, size_t len) {
    assert(st->kind == TM_STATE_LIST);
    if (len > UINT32_MAX - 16) return tm_state_backend_fail(st->b, "state '%s': element of %zu bytes", st->name, len);
    uint8_t hdr[12];
    size_t hl = 4;
    if (st->ttl_ms > 0) {
        tm_put32le(hdr, (uint32_t)(len + 8));
        tm_put64le(hdr + 4, (uint64_t)tm_state_backend_now(st->b));
        hl = 12;
    } else {
        tm_put32le(hdr, (uint32_t)len);
    }
    tm_slice parts[2] = {{hdr, hl}, {val ? val : "", len}};
    return st->b->vt->append(st, ns, nslen, parts, 2);
}

bool tm_state_list_get(tm_state *st, const void *ns, size_t nslen, const uint8_t **blob, size_t *len) {
    assert(st->kind == TM_STATE_LIST);
    tm_state_backend *b = st->b;
    const uint8_t *v;
    size_t n;
    if (!b->vt->get(st, ns, nslen, NULL, 0, &v, &n)) return false;
    if (st->ttl_ms > 0) {
        int64_t now = tm_state_backend_now(b);
        uint8_t *plain = scratch(b, n);
        size_t pl, sl;
        size_t dropped = ttl_filter_list(st, v, n, now, NULL, NULL, plain, &pl);
        if (dropped) { /* cleanup on access: write back what is left */
            uint8_t *stored = scratch2(b, n);
            ttl_filter_list(st, v, n, now, stored, &sl, NULL, NULL);
            if (sl) {
                tm_slice part = {stored, sl};
                b->vt->put(st, ns, nslen, NULL, 0, &part, 1);
            } else {
                b->vt->del(st, ns, nslen, NULL, 0);
            }
        }
        v = b->scratch;
        n = pl;
    }
    if (n == 0) return false;
    *blob = v;
    *len = n;
    return true;
}

int tm_state_list_update(tm_state *st, const void *ns, size_t nslen, int n, const void *const *vals,
                         const size_t *lens) {
    assert(st->kind == TM_STATE_LIST);
    tm_state_backend *b = st->b;
    if (n <= 0) return b->vt->del(st, ns, nslen, NULL, 0);
    size_t hl = st->ttl_ms > 0 ? 12 : 4, total = 0;
    for (int i = 0; i < n; i++) total += hl + lens[i];
    uint8_t *buf = scratch2(b, total), *p = buf;
    uint64_t now = st->ttl_ms > 0 ? (uint64_t)tm_state_backend_now(b) : 0;
    for (int i = 0; i < n; i++) {
        tm_put32le(p, (uint32_t)(lens[i] + hl - 4));
        if (st->ttl_ms > 0) tm_put64le(p + 4, now);
        if (lens[i]) memcpy(p + hl, vals[i], lens[i]);
        p += hl + lens[i];
    }
    tm_slice part = {buf, total};
    return b->vt->put(st, ns, nslen, NULL, 0, &part, 1);
}

/* ---- map -------------------------------------------------------------------------------------- */

bool tm_state_map_get(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen, const uint8_t **val,
                      size_t *len) {
    assert(st->kind == TM_STATE_MAP);
    return point_get(st, ns, nslen, ukey ? ukey : "", uklen, val, len);
}

int tm_state_map_put(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen, const void *val,
                     size_t len) {
    assert(st->kind == TM_STATE_MAP);
    return point_put(st, ns, nslen, ukey ? ukey : "", uklen, val, len);
}

int tm_state_map_remove(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen) {
    assert(st->kind == TM_STATE_MAP);
    return st->b->vt->del(st, ns, nslen, ukey ? ukey : "", uklen);
}

bool tm_state_map_contains(tm_state *st, const void *ns, size_t nslen, const void *ukey, size_t uklen) {
    const uint8_t *v;
    size_t n;
    return tm_state_map_get(st, ns, nslen, ukey, uklen, &v, &n);
}

/* ---- any kind --------------------------------------------------------------------------------- */

int tm_state_clear(tm_state *st, const void *ns, size_t nslen) {
    if (st->kind == TM_STATE_MAP) return st->b->vt->clear_map(st, ns, nslen);
    return st->b->vt->del(st, ns, nslen, NULL, 0);
}

/* ---- iteration ---------------------------------------------------------------------------------- */

struct tm_state_iter {
    tm_state *st;
    tm_raw_iter *raw;
    int64_t now;
    uint8_t *buf;             /* TTL lists: the filtered blob */
    size_t cap;
};

static tm_state_iter *iter_new(tm_state *st, tm_raw_iter *raw) {
    tm_state_iter *it = XNEW(tm_state_iter);
    it->st = st;
    it->raw = raw;
    it->now = st->ttl_ms > 0 ? tm_state_backend_now(st->b) : 0;
    return it;
}

tm_state_iter *tm_state_map_iter(tm_state *st, const void *ns, size_t nslen) {
    assert(st->kind == TM_STATE_MAP);
    return iter_new(st, st->b->vt->iter_map(st, ns, nslen));
}

tm_state_iter *tm_state_iter_all(tm_state *st) {
    return iter_new(st, st->b->vt->iter_range(st, st->b->cfg.kg_first, st->b->cfg.kg_last));
}

bool tm_state_iter_next(tm_state_iter *it, tm_state_entry *e) {
    tm_state *st = it->st;
    while (it->raw && st->b->vt->iter_next(it->raw, e)) {
        if (st->ttl_ms <= 0) return true;
        if (st->kind == TM_STATE_LIST) {
            if (e->vlen > it->cap) {
                it->cap = 2 * e->vlen;
                it->buf = xrealloc(it->buf, it->cap);
            }
            size_t pl;
            ttl_filter_list(st, e->value, e->vlen, it->now, NULL, NULL, it->buf, &pl);
            if (!pl) continue;
            e->value = it->buf;
            e->vlen = pl;
            return true;
        }
        if (ttl_strip(st, it->now, &e->value, &e->vlen)) return true;
    }
    return false;
}

void tm_state_iter_close(tm_state_iter *it) {
    if (!it) return;
    if (it->raw) it->st->b->vt->iter_close(it->raw);
    free(it->buf);
    free(it);
}

size_t tm_state_count(tm_state *st) {
    tm_raw_iter *raw = st->b->vt->iter_range(st, st->b->cfg.kg_first, st->b->cfg.kg_last);
    size_t n = 0;
    tm_state_entry e;
    while (st->b->vt->iter_next(raw, &e)) n++;
    st->b->vt->iter_close(raw);
    return n;
}

/* ---- snapshots --------------------------------------------------------------------------------- */

#define SNAP_MAGIC "FKG1"

typedef struct snap_out {
    tm_state_write_fn write;
    void *ud;
    uint8_t buf[65536];
    size_t len;
    int rc;
} snap_out;

static void out_flush(snap_out *o) {
    if (o->len && !o->rc) o->rc = o->write(o->ud, o->buf, o->len);
    o->len = 0;
}

static void out_bytes(snap_out *o, const void *p, size_t n) {
    if (o->rc) return;
    if (o->len + n > sizeof o->buf) {
        out_flush(o);
        if (n > sizeof o->buf) {
            if (!o->rc) o->rc = o->write(o->ud, p, n);
            return;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_u8(snap_out *o, uint8_t v) { out_bytes(o, &v, 1); }
static void out_u32(snap_out *o, uint32_t v) {
    uint8_t b[4];
    tm_put32le(b, v);
    out_bytes(o, b, 4);
}
static void out_blob(snap_out *o, const void *p, size_t n) {
    out_u32(o, (uint32_t)n);
    out_bytes(o, p, n);
}

/* Opens the entries of state s in key group kg (a backend's raw iterator). */
typedef tm_raw_iter *(*snap_open_fn)(void *ud, int s, int kg);

/* The blocks of key groups [kg_first, kg_last] of the states sts[0..n) into o, TTL at now. */
static void write_blocks(const tm_state_backend_vt *vt, tm_state *const *sts, int n, int64_t now, int kg_first,
                         int kg_last, snap_open_fn open, void *oud, snap_out *o) {
    uint8_t *fbuf = NULL;
    size_t fcap = 0;
    for (int kg = kg_first; kg <= kg_last && !o->rc; kg++) {
        out_bytes(o, SNAP_MAGIC, 4);
        uint8_t kgb[2] = {(uint8_t)kg, (uint8_t)(kg >> 8)};
        out_bytes(o, kgb, 2);
        for (int s = 0; s < n && !o->rc; s++) {
            const tm_state *st = sts[s];
            tm_raw_iter *raw = open(oud, s, kg);
            tm_state_entry e;
            bool header = false;
            while (vt->iter_next(raw, &e)) {
                const uint8_t *v = e.value;
                size_t vlen = e.vlen;
                if (st->ttl_ms > 0) { /* cleanup on snapshot: expired entries are not written */
                    if (st->kind == TM_STATE_LIST) {
                        if (vlen > fcap) {
                            fcap = 2 * vlen;
                            fbuf = xrealloc(fbuf, fcap);
                        }
                        ttl_filter_list(st, v, vlen, now, fbuf, &vlen, NULL, NULL);
                        if (!vlen) continue;
                        v = fbuf;
                    } else if (vlen < 8 || expired(st, (int64_t)tm_get64le(v), now)) {
                        continue;
                    }
                }
                if (!header) {
                    header = true;
                    out_u8(o, 1);
                    size_t nl = strlen(st->name);
                    uint8_t h[2] = {(uint8_t)nl, (uint8_t)(nl >> 8)};
                    out_bytes(o, h, 2);
                    out_bytes(o, st->name, nl);
                    out_u8(o, (uint8_t)st->kind);
                    uint8_t t[8];
                    tm_put64le(t, (uint64_t)st->ttl_ms);
                    out_bytes(o, t, 8);
                }
                out_u8(o, 1);
                out_blob(o, e.key, e.klen);
                out_blob(o, e.ns, e.nslen);
                if (st->kind == TM_STATE_MAP) out_blob(o, e.ukey, e.uklen);
                out_blob(o, v, vlen);
            }
            vt->iter_close(raw);
            if (header) out_u8(o, 0);
        }
        out_u8(o, 0);
    }
    out_flush(o);
    free(fbuf);
}

/* Run write_blocks into write(ud); the writer's status. */
static int snapshot_to(const tm_state_backend_vt *vt, tm_state *const *sts, int n, int64_t now, int kg_first,
                       int kg_last, snap_open_fn open, void *oud, tm_state_write_fn write, void *ud) {
    snap_out *o = XNEW(snap_out);
    o->write = write;
    o->ud = ud;
    write_blocks(vt, sts, n, now, kg_first, kg_last, open, oud, o);
    int rc = o->rc;
    free(o);
    return rc;
}

static tm_raw_iter *open_live(void *ud, int s, int kg) {
    tm_state_backend *b = ud;
    return b->vt->iter_range(b->states[s], kg, kg);
}

int tm_state_snapshot(tm_state_backend *b, int kg_first, int kg_last, tm_state_write_fn write, void *ud,
                      flint_err *err) {
    assert(b && write);
    if (kg_first < b->cfg.kg_first || kg_last > b->cfg.kg_last || kg_first > kg_last + 1)
        return flint_err_set(err, FLINT_INVALID, "snapshot of key groups [%d, %d] outside the backend's [%d, %d]",
                             kg_first, kg_last, b->cfg.kg_first, b->cfg.kg_last);
    int rc = snapshot_to(b->vt, b->states, b->n_states, tm_state_backend_now(b), kg_first, kg_last, open_live, b,
                         write, ud);
    if (rc) return flint_err_set(err, rc, "snapshot: the writer failed (%s)", flint_strerror(rc));
    return tm_state_backend_error(b, err);
}

/* ---- views (asynchronous snapshots) ------------------------------------------------------------- */

struct tm_state_view {
    const tm_state_backend_vt *vt;
    void *impl;                          /* the backend's view */
    tm_state **st;                       /* copies of the states at the view (name owned, no impl) */
    int n, kg_first, kg_last;
    int64_t now;                         /* TTL: the clock at the view */
};

tm_state_view *tm_state_view_new(tm_state_backend *b, flint_err *err) {
    assert(b);
    if (!b->vt->view_new) {
        flint_err_set(err, FLINT_INVALID, "the %s state backend has no copy-on-write views", b->vt->name);
        return NULL;
    }
    tm_state_view *v = XNEW(tm_state_view);
    v->vt = b->vt;
    v->n = b->n_states;
    v->kg_first = b->cfg.kg_first;
    v->kg_last = b->cfg.kg_last;
    v->now = tm_state_backend_now(b);
    v->st = xcalloc((size_t)v->n + 1, sizeof *v->st);
    for (int i = 0; i < v->n; i++) {
        v->st[i] = XNEW(tm_state);
        *v->st[i] = *b->states[i];
        v->st[i]->b = NULL;
        v->st[i]->impl = NULL;
        v->st[i]->name = xstrdup(b->states[i]->name);
    }
    v->impl = b->vt->view_new(b);
    return v;
}

static tm_raw_iter *open_view(void *ud, int s, int kg) {
    tm_state_view *v = ud;
    return v->vt->view_iter(v->impl, s, kg);
}

int tm_state_view_snapshot(tm_state_view *v, int kg_first, int kg_last, tm_state_write_fn write, void *ud,
                           flint_err *err) {
    assert(v && write);
    if (kg_first < v->kg_first || kg_last > v->kg_last || kg_first > kg_last + 1)
        return flint_err_set(err, FLINT_INVALID, "snapshot of key groups [%d, %d] outside the view's [%d, %d]",
                             kg_first, kg_last, v->kg_first, v->kg_last);
    int rc = snapshot_to(v->vt, v->st, v->n, v->now, kg_first, kg_last, open_view, v, write, ud);
    if (rc) return flint_err_set(err, rc, "snapshot: the writer failed (%s)", flint_strerror(rc));
    return FLINT_OK;
}

void tm_state_view_free(tm_state_view *v) {
    if (!v) return;
    v->vt->view_free(v->impl);
    for (int i = 0; i < v->n; i++) {
        free(v->st[i]->name);
        free(v->st[i]);
    }
    free(v->st);
    free(v);
}

typedef struct snap_in {
    tm_state_read_fn read;
    void *ud;
    uint8_t buf[65536];
    size_t pos, len;
    bool eof, failed;
} snap_in;

/* Fill up to n bytes; false at the end of the input (or on error: in->failed). */
static bool in_bytes(snap_in *in, void *dst, size_t n) {
    uint8_t *d = dst;
    while (n) {
        if (in->pos == in->len) {
            if (in->eof) return false;
            if (n >= sizeof in->buf) { /* large: straight into dst */
                long r = in->read(in->ud, d, n);
                if (r < 0) in->failed = true;
                if (r <= 0) {
                    in->eof = true;
                    return false;
                }
                d += r;
                n -= (size_t)r;
                continue;
            }
            long r = in->read(in->ud, in->buf, sizeof in->buf);
            if (r < 0) in->failed = true;
            if (r <= 0) {
                in->eof = true;
                return false;
            }
            in->pos = 0;
            in->len = (size_t)r;
        }
        size_t k = in->len - in->pos < n ? in->len - in->pos : n;
        memcpy(d, in->buf + in->pos, k);
        in->pos += k;
        d += k;
        n -= k;
    }
    return true;
}

/* True at the end of the input (refills the buffer when it is empty). */
static bool in_at_end(snap_in *in) {
    if (in->pos < in->len) return false;
    if (in->eof) return true;
    long r = in->read(in->ud, in->buf, sizeof in->buf);
    if (r < 0) in->failed = true;
    if (r <= 0) {
        in->eof = true;
        return true;
    }
    in->pos = 0;
    in->len = (size_t)r;
    return false;
}

static bool in_u8(snap_in *in, uint8_t *v) { return in_bytes(in, v, 1); }
static bool in_u32(snap_in *in, uint32_t *v) {
    uint8_t b[4];
    if (!in_bytes(in, b, 4)) return false;
    *v = tm_get32le(b);
    return true;
}
/* A length-prefixed blob into *buf (grown). */
static bool in_blob(snap_in *in, uint8_t **buf, size_t *cap, size_t *len) {
    uint32_t n;
    if (!in_u32(in, &n)) return false;
    if (n > *cap) {
        *cap = n < 64 ? 64 : n;
        *buf = xrealloc(*buf, *cap);
    }
    *len = n;
    return n == 0 || in_bytes(in, *buf, n);
}

int tm_state_restore(tm_state_backend *b, tm_state_read_fn read, void *ud, flint_err *err) {
    assert(b && read);
    snap_in *in = XNEW(snap_in);
    in->read = read;
    in->ud = ud;
    uint8_t *k = NULL, *ns = NULL, *uk = NULL, *v = NULL, *f = NULL;
    size_t kc = 0, nsc = 0, ukc = 0, vc = 0, fc = 0, kl, nsl, ukl = 0, vl;
    /* keep the current key */
    size_t saved_len = b->klen;
    uint8_t *saved = saved_len ? xmalloc(saved_len) : NULL;
    if (saved_len) memcpy(saved, b->key, saved_len);
    int saved_kg = b->kg;
    int64_t now = tm_state_backend_now(b);
    int rc = FLINT_OK;
    long blocks = 0;
#define BAD(...) do { rc = flint_err_set(err, FLINT_INVALID, __VA_ARGS__); goto out; } while (0)
    for (;;) {
        char magic[4];
        if (in_at_end(in)) {
            if (in->failed) BAD("restore: the reader failed");
            break;
        }
        if (!in_bytes(in, magic, 4)) BAD("restore: truncated input");
        if (memcmp(magic, SNAP_MAGIC, 4) != 0) BAD("restore: not a key group block (block %ld)", blocks);
        uint8_t kgb[2];
        if (!in_bytes(in, kgb, 2)) BAD("restore: truncated block");
        int kg = kgb[0] | kgb[1] << 8;
        bool mine = kg >= b->cfg.kg_first && kg <= b->cfg.kg_last;
        blocks++;
        for (;;) {
            uint8_t more;
            if (!in_u8(in, &more)) BAD("restore: truncated block of key group %d", kg);
            if (!more) break;
            uint8_t h[2];
            if (!in_bytes(in, h, 2)) BAD("restore: truncated state header");
            size_t nl = (size_t)(h[0] | h[1] << 8);
            char name[1100];
            if (nl == 0 || nl >= sizeof name || !in_bytes(in, name, nl)) BAD("restore: bad state name");
            name[nl] = '\0';
            uint8_t kind;
            uint8_t t[8];
            if (!in_u8(in, &kind) || !in_bytes(in, t, 8)) BAD("restore: truncated state header");
            int64_t ttl = (int64_t)tm_get64le(t);
            if (kind < TM_STATE_VALUE || kind > TM_STATE_AGGREGATING) BAD("restore: state '%s' of unknown kind %d", name, kind);
            tm_state *st = NULL;
            if (mine) {
                st = find_state(b, name, nl);
                if (st && (st->ttl_ms > 0) != (ttl > 0))
                    BAD("restore: state '%s' has TTL %s in the snapshot but %s here", name, ttl > 0 ? "on" : "off",
                        st->ttl_ms > 0 ? "on" : "off");
                if (!st && (rc = tm_state_register(b, name, (tm_state_kind)kind, ttl, &st, err))) goto out;
                if (st->kind != kind) BAD("restore: state '%s' is %s state here but %s state in the snapshot", name,
                                          kind_name(st->kind), kind_name((tm_state_kind)kind));
            }
            for (;;) {
                if (!in_u8(in, &more)) BAD("restore: truncated state '%s'", name);
                if (!more) break;
                if (!in_blob(in, &k, &kc, &kl) || !in_blob(in, &ns, &nsc, &nsl) ||
                    (kind == TM_STATE_MAP && !in_blob(in, &uk, &ukc, &ukl)) || !in_blob(in, &v, &vc, &vl))
                    BAD("restore: truncated entry of state '%s'", name);
                if (!mine) continue;
                const uint8_t *val = v;
                size_t len = vl;
                if (st->ttl_ms > 0) {
                    if (st->kind == TM_STATE_LIST) {
                        if (vl > fc) {
                            fc = 2 * vl;
                            f = xrealloc(f, fc);
                        }
                        ttl_filter_list(st, v, vl, now, f, &len, NULL, NULL);
                        val = f;
                        if (!len) continue;
                    } else if (vl < 8 || expired(st, (int64_t)tm_get64le(v), now)) {
                        continue;
                    }
                }
                tm_state_set_key(b, k, kl, kg);
                tm_slice part = {val, len};
                if ((rc = b->vt->put(st, ns, nsl, kind == TM_STATE_MAP ? (uk ? uk : (uint8_t *)"") : NULL,
                                     kind == TM_STATE_MAP ? ukl : 0, &part, 1))) {
                    tm_state_backend_error(b, err);
                    goto out;
                }
            }
        }
    }
#undef BAD
out:
    if (saved_len || b->klen) tm_state_set_key(b, saved ? saved : (uint8_t *)"", saved_len, saved_kg);
    free(saved);
    free(k);
    free(ns);
    free(uk);
    free(v);
    free(f);
    free(in);
    return rc;
}

/* Snapshot contents of a task: keyed state sections with timers, consistent views of keyed
 * state for asynchronous snapshots, operator state, file helpers (cp_state.h). RocksDB views and
 * incremental checkpoints are in cp_rocksdb.c. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/cp_state.h"
#include "operators/operator.h"
#include "state/tm_state_int.h"
#include "util/alloc.h"

#define SECTION_MAGIC "FCKG"
#define MAX_BLOCK ((uint64_t)1 << 40)

/* ---- buffers ---------------------------------------------------------------------------------- */

void cp_buf_add(cp_buf *b, const void *data, size_t n) {
    if (!n) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void cp_buf_u8(cp_buf *b, uint8_t v) { cp_buf_add(b, &v, 1); }
void cp_buf_u16(cp_buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    cp_buf_add(b, x, 2);
}
void cp_buf_u32(cp_buf *b, uint32_t v) {
    uint8_t x[4];
    tm_put32le(x, v);
    cp_buf_add(b, x, 4);
}
void cp_buf_u64(cp_buf *b, uint64_t v) {
    uint8_t x[8];
    tm_put64le(x, v);
    cp_buf_add(b, x, 8);
}
void cp_buf_free(cp_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
int cp_buf_write_fn(void *ud, const void *data, size_t len) {
    cp_buf_add(ud, data, len);
    return 0;
}

long cp_mem_read(void *ud, void *buf, size_t len) {
    cp_mem_in *m = ud;
    size_t k = m->len - m->pos < len ? m->len - m->pos : len;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (long)k;
}

/* ---- timers ----------------------------------------------------------------------------------- */

typedef struct tvisit {
    cp_buf *b;
    uint32_t n;
} tvisit;

static int visit_timer(void *ud, const tm_timer *t) {
    tvisit *v = ud;
    cp_buf_u8(v->b, (uint8_t)t->domain);
    cp_buf_u64(v->b, (uint64_t)t->time);
    cp_buf_u32(v->b, (uint32_t)t->key_len);
    cp_buf_add(v->b, t->key, t->key_len);
    cp_buf_u32(v->b, (uint32_t)t->ns_len);
    cp_buf_add(v->b, t->ns, t->ns_len);
    v->n++;
    return 0;
}

void cp_timers_capture(const tm_timer_queue *q, int first, int last, cp_buf *tb, size_t *toffs) {
    for (int kg = first; kg <= last; kg++) {
        toffs[kg - first] = tb->len;
        size_t at = tb->len;
        cp_buf_u32(tb, 0);
        tvisit v = {tb, 0};
        if (q) tm_timer_queue_foreach_key_group(q, kg, visit_timer, &v);
        tm_put32le(tb->p + at, v.n);
    }
    toffs[last - first + 1] = tb->len;
}

int cp_timers_restore(const uint8_t *tb, size_t len, int kg, int first, int last, cp_queue_fn get_q, void *ud,
                      flint_err *err) {
    if (len < 4) return flint_err_set(err, FLINT_INVALID, "truncated timers of key group %d", kg);
    uint32_t n = tm_get32le(tb);
    size_t pos = 4;
    bool mine = kg >= first && kg <= last;
    tm_timer_queue *q = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (len - pos < 17) return flint_err_set(err, FLINT_INVALID, "truncated timer of key group %d", kg);
        uint8_t d = tb[pos];
        int64_t time = (int64_t)tm_get64le(tb + pos + 1);
        uint32_t kl = tm_get32le(tb + pos + 9);
        pos += 13;
        if (len - pos < (size_t)kl + 4) return flint_err_set(err, FLINT_INVALID, "truncated timer of key group %d", kg);
        const uint8_t *key = tb + pos;
        pos += kl;
        uint32_t nl = tm_get32le(tb + pos);
        pos += 4;
        if (len - pos < nl) return flint_err_set(err, FLINT_INVALID, "truncated timer of key group %d", kg);
        const uint8_t *ns = tb + pos;
        pos += nl;
        if (!mine) continue;
        if (d != FLINT_EVENT_TIME && d != FLINT_PROCESSING_TIME)
            return flint_err_set(err, FLINT_INVALID, "a timer of unknown time domain %d", d);
        if (!q && !(q = get_q(ud)))
            return flint_err_set(err, FLINT_STATE, "the snapshot has timers but the operator has no timer service");
        tm_timer_register(q, (flint_time_domain)d, key, kl, kg, ns, nl, time);
    }
    return FLINT_OK;
}

/* ---- keyed state sections --------------------------------------------------------------------- */

void cp_section_add(cp_buf *out, const void *block, size_t blen, const void *timers, size_t tlen) {
    cp_buf_add(out, SECTION_MAGIC, 4);
    cp_buf_u64(out, blen);
    cp_buf_add(out, block, blen);
    cp_buf_add(out, timers, tlen);
}

int cp_keyed_capture_mem(tm_state_backend *b, const tm_timer_queue *q, int first, int last, cp_buf *out,
                         int64_t *offsets, flint_err *err) {
    int n = last - first + 1;
    cp_buf tb = {0}, block = {0};
    size_t *toffs = xcalloc((size_t)n + 1, sizeof *toffs);
    cp_timers_capture(q, first, last, &tb, toffs);
    int rc = FLINT_OK;
    for (int kg = first; kg <= last && !rc; kg++) {
        offsets[kg - first] = (int64_t)out->len;
        block.len = 0;
        if (b) {
            rc = tm_state_snapshot(b, kg, kg, cp_buf_write_fn, &block, err);
        } else { /* an empty block: no states */
            uint8_t e[7] = {'F', 'K', 'G', '1', (uint8_t)kg, (uint8_t)(kg >> 8), 0};
            cp_buf_add(&block, e, 7);
        }
        if (!rc) cp_section_add(out, block.p, block.len, tb.p + toffs[kg - first], toffs[kg - first + 1] - toffs[kg - first]);
    }
    cp_buf_free(&block);
    cp_buf_free(&tb);
    free(toffs);
    return rc;
}

struct cp_keyed_view {
    cp_rdb_view *rdb;                    /* one of the two */
    tm_state_view *hm;
};

cp_keyed_view *cp_keyed_view_new(tm_state_backend *b, flint_err *err) {
    cp_keyed_view *v = XNEW(cp_keyed_view);
    if (tm_state_backend_type(b) == TM_BACKEND_ROCKSDB) v->rdb = cp_rdb_view_new(b, err);
    else v->hm = tm_state_view_new(b, err);
    if (v->rdb || v->hm) return v;
    free(v);
    return NULL;
}

int cp_keyed_view_block(cp_keyed_view *v, int kg, cp_buf *out, flint_err *err) {
    if (v->rdb) return cp_rdb_view_block(v->rdb, kg, out, err);
    return tm_state_view_snapshot(v->hm, kg, kg, cp_buf_write_fn, out, err);
}

void cp_keyed_view_free(cp_keyed_view *v) {
    if (!v) return;
    cp_rdb_view_free(v->rdb);
    tm_state_view_free(v->hm);
    free(v);
}

/* Read exactly n bytes at the file position; false on a short read. */
static bool read_exact(FILE *f, void *buf, size_t n) { return n == 0 || fread(buf, 1, n, f) == n; }

int cp_restore_keyed_full(const Flint__Checkpoint__KeyedStateHandle *h, tm_state_backend *b, int first, int last,
                          cp_queue_fn get_q, void *ud, const char **bad, flint_err *err) {
    const Flint__Checkpoint__StreamStateHandle *fh = h->file;
    const Flint__Checkpoint__KeyGroupRange *r = h->key_group_range;
    *bad = fh && fh->path ? fh->path : "";
    if (!fh || !r) return flint_err_set(err, FLINT_INVALID, "a full keyed state handle without file or key groups");
    int n = r->end - r->start + 1;
    if (n < 1 || h->n_key_group_offsets != (size_t)n)
        return flint_err_set(err, FLINT_INVALID, "%s: %zu key group offsets for key groups %d..%d",
                             fh->path[0] ? fh->path : "inline state", h->n_key_group_offsets, r->start, r->end);
    FILE *f = NULL;
    if (fh->path[0]) {
        f = fopen(fh->path, "rb");
        if (!f) return flint_err_set(err, FLINT_IO, "cannot open %s: %s", fh->path, strerror(errno));
    } else {
        f = fmemopen(fh->data.data, fh->data.len, "rb");
        if (!f) return flint_err_set(err, FLINT_IO, "cannot read inline state: %s", strerror(errno));
    }
    const char *what = fh->path[0] ? fh->path : "inline keyed state";
    uint8_t *blk = NULL, *tb = NULL;
    size_t bcap = 0, tcap = 0;
    int rc = FLINT_OK;
    for (int k = 0; k < n && !rc; k++) {
        int kg = r->start + k;
        if (kg < first || kg > last) continue;
        uint8_t hdr[12];
        if (fseeko(f, (off_t)h->key_group_offsets[k], SEEK_SET) || !read_exact(f, hdr, 12) ||
            memcmp(hdr, SECTION_MAGIC, 4) != 0) {
            rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: no key group section %d at offset %lld", what, kg,
                               (long long)h->key_group_offsets[k]);
            break;
        }
        uint64_t blen = tm_get64le(hdr + 4);
        if (blen > MAX_BLOCK || (blen > bcap && !(blk = xrealloc(blk, bcap = (size_t)blen))) ||
            !read_exact(f, blk, (size_t)blen)) {
            rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: key group %d is truncated", what, kg);
            break;
        }
        if (b) {
            cp_mem_in m = {blk, (size_t)blen, 0};
            if ((rc = tm_state_restore(b, cp_mem_read, &m, err))) {
                flint_err_prefix(err, "%s, key group %d", what, kg);
                break;
            }
        } else if (blen > 7) {
            rc = flint_err_set(err, FLINT_STATE, "%s holds keyed state for an operator that is not keyed", what);
            break;
        }
        /* timers: u32 T then T variable-size entries: read them entry by entry */
        cp_buf t = {0};
        uint8_t c4[4];
        if (!read_exact(f, c4, 4)) {
            rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: key group %d has no timers", what, kg);
            break;
        }
        cp_buf_add(&t, c4, 4);
        uint32_t nt = tm_get32le(c4);
        for (uint32_t i = 0; i < nt && !rc; i++) {
            uint8_t th[13], l4[4];
            if (!read_exact(f, th, 13)) rc = FLINT_INVALID;
            uint32_t kl = rc ? 0 : tm_get32le(th + 9);
            if (!rc) cp_buf_add(&t, th, 13);
            size_t need = kl;
            if (!rc && (need > tcap) && !(tb = xrealloc(tb, tcap = need + 1))) rc = FLINT_INVALID;
            if (!rc && !read_exact(f, tb, kl)) rc = FLINT_INVALID;
            if (!rc) cp_buf_add(&t, tb, kl);
            if (!rc && !read_exact(f, l4, 4)) rc = FLINT_INVALID;
            uint32_t nl = rc ? 0 : tm_get32le(l4);
            if (!rc) cp_buf_add(&t, l4, 4);
            if (!rc && nl > tcap && !(tb = xrealloc(tb, tcap = nl + 1))) rc = FLINT_INVALID;
            if (!rc && !read_exact(f, tb, nl)) rc = FLINT_INVALID;
            if (!rc) cp_buf_add(&t, tb, nl);
        }
        if (rc) rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: truncated timers of key group %d", what, kg);
        else if ((rc = cp_timers_restore(t.p, t.len, kg, first, last, get_q, ud, err)))
            flint_err_prefix(err, "%s", what);
        cp_buf_free(&t);
    }
    free(blk);
    free(tb);
    fclose(f);
    return rc;
}

/* ---- operator state --------------------------------------------------------------------------- */

/* A cursor over a FOS1 stream. */
typedef struct cur {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} cur;

static const uint8_t *take(cur *c, size_t n) {
    if (c->bad || c->len - c->pos < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *r = c->p + c->pos;
    c->pos += n;
    return r;
}
static uint8_t take_u8(cur *c) {
    const uint8_t *p = take(c, 1);
    return p ? *p : 0;
}
static uint32_t take_u32(cur *c) {
    const uint8_t *p = take(c, 4);
    return p ? tm_get32le(p) : 0;
}

static void put_be32(cp_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    cp_buf_add(b, x, 4);
}

int cp_opstate_capture(tm_op *op, cp_buf *out, Flint__Checkpoint__OperatorStateHandle **h, flint_err *err) {
    *h = NULL;
    cp_buf fos = {0};
    int rc = tm_state_op_snapshot_operator(op, cp_buf_write_fn, &fos, err);
    if (rc) {
        cp_buf_free(&fos);
        return rc;
    }
    cur c = {fos.p, fos.len, 0, false};
    const uint8_t *magic = take(&c, 4);
    if (!magic || memcmp(magic, "FOS1", 4) != 0) {
        cp_buf_free(&fos);
        return flint_err_set(err, FLINT_ERR, "operator state snapshot: bad format");
    }
    Flint__Checkpoint__OperatorStateHandle *oh = NULL;
    cp_buf map = {0};
    while (!c.bad && take_u8(&c)) {
        const uint8_t *nlp = take(&c, 2);
        size_t nl = nlp ? (size_t)(nlp[0] | nlp[1] << 8) : 0;
        const uint8_t *name = take(&c, nl);
        uint8_t kind = take_u8(&c);
        if (c.bad) break;
        Flint__Checkpoint__NamedOperatorState *ns = xmalloc(sizeof *ns);
        flint__checkpoint__named_operator_state__init(ns);
        ns->name = xstrndup((const char *)name, nl);
        ns->mode = kind == FLINT_STATE_BROADCAST ? FLINT__CHECKPOINT__DISTRIBUTION_MODE__BROADCAST
                                                 : FLINT__CHECKPOINT__DISTRIBUTION_MODE__SPLIT_DISTRIBUTE;
        if (!oh) {
            oh = xmalloc(sizeof *oh);
            flint__checkpoint__operator_state_handle__init(oh);
        }
        oh->states = xrealloc(oh->states, (oh->n_states + 1) * sizeof *oh->states);
        oh->states[oh->n_states++] = ns;
        map.len = 0;
        while (!c.bad && take_u8(&c)) {
            if (kind == FLINT_STATE_BROADCAST) {
                uint32_t kl = take_u32(&c);
                const uint8_t *k = take(&c, kl);
                uint32_t vl = take_u32(&c);
                const uint8_t *v = take(&c, vl);
                if (c.bad) break;
                cp_buf_u32(&map, kl);
                cp_buf_add(&map, k, kl);
                cp_buf_u32(&map, vl);
                cp_buf_add(&map, v, vl);
            } else {
                uint32_t el = take_u32(&c);
                const uint8_t *e = take(&c, el);
                if (c.bad) break;
                ns->offsets = xrealloc(ns->offsets, (ns->n_offsets + 1) * sizeof *ns->offsets);
                ns->offsets[ns->n_offsets++] = (int64_t)out->len;
                put_be32(out, el);
                cp_buf_add(out, e, el);
            }
        }
        if (kind == FLINT_STATE_BROADCAST && !c.bad) {
            ns->offsets = xmalloc(sizeof *ns->offsets);
            ns->offsets[0] = (int64_t)out->len;
            ns->n_offsets = 1;
            put_be32(out, (uint32_t)map.len);
            cp_buf_add(out, map.p, map.len);
        }
    }
    cp_buf_free(&map);
    cp_buf_free(&fos);
    if (c.bad) {
        if (oh) flint__checkpoint__operator_state_handle__free_unpacked(oh, NULL);
        return flint_err_set(err, FLINT_ERR, "operator state snapshot: truncated");
    }
    *h = oh;
    return FLINT_OK;
}

int cp_opstate_restore(tm_op *op, Flint__Checkpoint__OperatorStateHandle *const *hs, size_t n, const char **bad,
                       flint_err *err) {
    cp_buf fos = {0}, file = {0};
    int rc = FLINT_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const Flint__Checkpoint__OperatorStateHandle *h = hs[i];
        *bad = h->file && h->file->path ? h->file->path : "";
        const char *what = (*bad)[0] ? *bad : "inline operator state";
        file.len = 0;
        if ((rc = cp_read_handle(h->file, &file, err))) break;
        cp_buf_add(&fos, "FOS1", 4);
        for (size_t s = 0; s < h->n_states && !rc; s++) {
            const Flint__Checkpoint__NamedOperatorState *ns = h->states[s];
            bool bc = ns->mode == FLINT__CHECKPOINT__DISTRIBUTION_MODE__BROADCAST;
            size_t nl = strlen(ns->name);
            if (!nl || nl > 1000) {
                rc = flint_err_set(err, FLINT_INVALID, "%s: bad state name", what);
                break;
            }
            cp_buf_u8(&fos, 1);
            cp_buf_u16(&fos, (uint16_t)nl);
            cp_buf_add(&fos, ns->name, nl);
            cp_buf_u8(&fos, bc ? FLINT_STATE_BROADCAST : FLINT_STATE_OPERATOR_LIST);
            for (size_t e = 0; e < ns->n_offsets && !rc; e++) {
                int64_t off = ns->offsets[e];
                if (off < 0 || (uint64_t)off + 4 > file.len) {
                    rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: element of '%s' at %lld is outside the file",
                                       what, ns->name, (long long)off);
                    break;
                }
                const uint8_t *p = file.p + off;
                uint32_t el = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
                if ((uint64_t)off + 4 + el > file.len) {
                    rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: element of '%s' is truncated", what, ns->name);
                    break;
                }
                if (!bc) {
                    cp_buf_u8(&fos, 1);
                    cp_buf_u32(&fos, el);
                    cp_buf_add(&fos, p + 4, el);
                    continue;
                }
                cur c = {p + 4, el, 0, false};
                while (!c.bad && c.pos < c.len) {
                    uint32_t kl = take_u32(&c);
                    const uint8_t *k = take(&c, kl);
                    uint32_t vl = take_u32(&c);
                    const uint8_t *v = take(&c, vl);
                    if (c.bad) break;
                    cp_buf_u8(&fos, 1);
                    cp_buf_u32(&fos, kl);
                    cp_buf_add(&fos, k, kl);
                    cp_buf_u32(&fos, vl);
                    cp_buf_add(&fos, v, vl);
                }
                if (c.bad) rc = flint_err_set(err, FLINT_INVALID, "%s is corrupted: broadcast state '%s'", what, ns->name);
            }
            cp_buf_u8(&fos, 0);
        }
        cp_buf_u8(&fos, 0);
    }
    if (!rc && fos.len) {
        cp_mem_in m = {fos.p, fos.len, 0};
        rc = tm_state_op_restore_operator_assigned(op, cp_mem_read, &m, err);
    }
    cp_buf_free(&fos);
    cp_buf_free(&file);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------------ */

int cp_write_file(const char *path, const void *data, size_t len, flint_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return flint_err_set(err, FLINT_IO, "cannot create %s: %s", path, strerror(errno));
    const uint8_t *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return flint_err_set(err, FLINT_IO, "writing %s: %s", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return flint_err_set(err, FLINT_IO, "fsync of %s: %s", path, strerror(e));
    }
    if (close(fd) != 0) return flint_err_set(err, FLINT_IO, "closing %s: %s", path, strerror(errno));
    return FLINT_OK;
}

int cp_read_handle(const Flint__Checkpoint__StreamStateHandle *h, cp_buf *out, flint_err *err) {
    if (!h) return flint_err_set(err, FLINT_INVALID, "a state handle without file or data");
    if (!h->path || !h->path[0]) {
        cp_buf_add(out, h->data.data, h->data.len);
        return FLINT_OK;
    }
    FILE *f = fopen(h->path, "rb");
    if (!f) return flint_err_set(err, FLINT_IO, "cannot open %s: %s", h->path, strerror(errno));
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) cp_buf_add(out, buf, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad) return flint_err_set(err, FLINT_IO, "reading %s failed", h->path);
    if (h->size > 0 && (int64_t)out->len < h->size)
        return flint_err_set(err, FLINT_INVALID, "%s is truncated: %zu of %lld bytes", h->path, out->len,
                             (long long)h->size);
    return FLINT_OK;
}

int cp_copy_file(const char *src, const char *dst, flint_err *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return flint_err_set(err, FLINT_IO, "cannot open %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return flint_err_set(err, FLINT_IO, "cannot create %s: %s", dst, strerror(e));
    }
    char buf[65536];
    int rc = FLINT_OK;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = flint_err_set(err, FLINT_IO, "reading %s: %s", src, strerror(errno));
            break;
        }
        if (r == 0) break;
        for (ssize_t off = 0; off < r && !rc;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) rc = flint_err_set(err, FLINT_IO, "writing %s: %s", dst, strerror(errno));
            else off += w;
        }
        if (rc) break;
    }
    if (!rc && fsync(out) != 0) rc = flint_err_set(err, FLINT_IO, "fsync of %s: %s", dst, strerror(errno));
    close(in);
    if (close(out) != 0 && !rc) rc = flint_err_set(err, FLINT_IO, "closing %s: %s", dst, strerror(errno));
    return rc;
}

int cp_link_or_copy(const char *src, const char *dst, int64_t *copied, flint_err *err) {
    *copied = 0;
    if (link(src, dst) == 0) return FLINT_OK;
    if (errno == EEXIST) {
        unlink(dst);
        if (link(src, dst) == 0) return FLINT_OK;
    }
    if (errno == ENOENT) return flint_err_set(err, FLINT_IO, "cannot read %s: %s", src, strerror(errno));
    int rc = cp_copy_file(src, dst, err);
    struct stat st;
    if (!rc && stat(dst, &st) == 0) *copied = st.st_size;
    return rc;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void cp_rm_rf(const char *path) {
    struct stat st;
    if (path && path[0] && lstat(path, &st) == 0) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

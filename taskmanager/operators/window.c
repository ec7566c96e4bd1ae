/* The window operator (Flink's WindowOperator and EvictingWindowOperator): keyed windows with
 * their contents in the state backend, one namespace per window, and their timers in the task's
 * timer service (window.h of graph_window.c lists the parameters; window_core.h the decisions).
 *
 * Per element (its timestamp, or the wall clock for processing-time windows): the assigner gives
 * its windows; late windows (cleanup time <= watermark) are skipped; sessions first merge the new
 * window into the key's active windows (their contents, trigger counts and timers move into the
 * merged window); the element is added to each window's contents, the trigger decides (fire,
 * purge), and a cleanup timer is registered at the window's end - 1 + allowed lateness. An element
 * no window took that is late (ts + allowed lateness <= watermark) goes to the late-data side
 * output unchanged (or is dropped and counted). Timers: the trigger decides; at the cleanup time
 * the window's state goes.
 *
 * Contents: an accumulator value (reduce: a row of the input schema; built-in aggregates: a small
 * fixed record; user aggregates: a row of the accumulator schema), or, for process window
 * functions and with evictors, the list of elements, each stored as its 8-byte timestamp then the
 * row. Results: (key columns, window_start, window_end, result columns) with timestamp window_end
 * - 1 (count windows: NULL bounds, no timestamp); process functions emit their own rows. */
#include <stdlib.h>
#include <string.h>

#include "operators/keys.h"
#include "operators/operator.h"
#include "operators/time_ops.h"
#include "operators/window_core.h"
#include "operators/window_ops.h"
#include "row/row_key.h"
#include "state/tm_state.h"
#include "util/alloc.h"
#include "util/strutil.h"

typedef enum fn_kind { FN_REDUCE, FN_BUILTIN, FN_USER_AGG, FN_PROCESS } fn_kind;
typedef enum builtin_kind { AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX, AGG_AVG } builtin_kind;

/* The built-in aggregates' accumulator: rows (count) or non-NULL values seen, and the value (sum,
 * min or max; avg keeps the sum), an int64 or a double's bits. */
typedef struct bacc {
    int64_t n;
    int64_t v;
} bacc;

typedef struct win_state win_state;

/* Elements of a window loaded for firing: a copy of the list, split into rows and timestamps. */
typedef struct elist {
    uint8_t *blob;
    size_t bcap;
    const uint8_t **eptr;
    size_t *elen;
    int64_t *ets;
    bool *evict;
    int n, cap;
} elist;

/* A process window function's elements (the kept ones of s->el[0]). */
typedef struct win_iter {
    flint_state_iter base;
    win_state *s;
    int i;
} win_iter;

struct win_state {
    tm_op *op;
    tm_keys keys;
    flint_schema *key_schema;
    flint_row_builder keyb;
    bool keyb_ready;
    flint_window_spec spec;
    tm_trigger trigger;
    tm_evictor evictor;
    int64_t lateness;
    int late_side;
    fn_kind fn;
    builtin_kind agg;
    int field;
    flint_type ftype;
    flint_reduce_fn reduce;
    flint_agg_create_fn create;
    flint_agg_add_fn add;
    flint_agg_merge_fn merge;
    flint_agg_result_fn result;
    flint_process_window_fn process;
    flint_join_fn join;         /* window joins: two inputs, each with its key and element list */
    bool is_join;
    tm_keys keys2;
    flint_schema *in2_schema;
    tm_state *contents2;
    flint_schema *acc_schema, *res_schema;
    int nkey, nres;
    int *res_src;               /* reduce: the input field of each result column */
    flint_row_builder accb, accb2, resb, outb;
    bool list;                  /* contents are element lists */
    tm_state_backend *backend;
    tm_state *contents, *counts, *wset;
    tm_window *assigned;
    int max_assigned;
    tm_window_set set;
    tm_window *merged;
    int cap_merged;
    uint8_t *ebuf;              /* an element: timestamp + row */
    size_t ecap;
    uint8_t *blob;              /* scratch: a copy of a list being merged */
    size_t bcap;
    elist el[2];                /* the elements of a firing window (joins: both sides) */
    flint_collector coll;
    int emit_rc;
    win_iter iter;
    tm_window cur;              /* the trigger context's window */
    uint8_t cur_ns[TM_WINDOW_NS_LEN];
    int cb_rc;                  /* the first failure inside a trigger callback */
    int64_t late_dropped;
};

/* ---- helpers ------------------------------------------------------------------------------------ */

static int state_fail(tm_op *op, win_state *s, const char *what) {
    flint_err err = {0};
    if (tm_state_backend_error(s->backend, &err)) return tm_op_fail(op, "%s: %s", what, err.msg);
    return tm_op_fail(op, "%s failed", what);
}

static void ensure(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    *p = xrealloc(*p, c * elem);
    *cap = c;
}

/* The current key as a row (decoded from the backend's current key). */
static int key_row(tm_op *op, win_state *s, flint_row *out) {
    size_t klen;
    const uint8_t *key = tm_state_current_key(s->backend, &klen);
    if (tm_key_decode(key, klen, &s->keyb)) return tm_op_fail(op, "cannot decode a key of (%s)", flint_schema_text(s->key_schema));
    *out = flint_row_builder_row(&s->keyb);
    op->ctx.current_key = *out;
    return FLINT_OK;
}

/* ---- trigger context ---------------------------------------------------------------------------- */

static void tc_register(void *ud, flint_time_domain d, int64_t t) {
    win_state *s = ud;
    size_t klen;
    const uint8_t *key = tm_state_current_key(s->backend, &klen);
    tm_timer_register(s->op->timers, d, key, klen, tm_state_current_key_group(s->backend), s->cur_ns,
                      TM_WINDOW_NS_LEN, t);
}

static void tc_delete(void *ud, flint_time_domain d, int64_t t) {
    win_state *s = ud;
    size_t klen;
    const uint8_t *key = tm_state_current_key(s->backend, &klen);
    tm_timer_delete(s->op->timers, d, key, klen, tm_state_current_key_group(s->backend), s->cur_ns,
                    TM_WINDOW_NS_LEN, t);
}

static int64_t count_get(win_state *s, const uint8_t *ns) {
    const uint8_t *v;
    size_t len;
    int64_t c = 0;
    if (tm_state_value_get(s->counts, ns, TM_WINDOW_NS_LEN, &v, &len) && len == 8) memcpy(&c, v, 8);
    return c;
}

static int64_t tc_count_add(void *ud, int64_t delta) {
    win_state *s = ud;
    int64_t c = count_get(s, s->cur_ns) + delta;
    if (tm_state_value_put(s->counts, s->cur_ns, TM_WINDOW_NS_LEN, &c, 8) && !s->cb_rc) s->cb_rc = FLINT_ERR;
    return c;
}

static void tc_count_clear(void *ud) {
    win_state *s = ud;
    if (tm_state_clear(s->counts, s->cur_ns, TM_WINDOW_NS_LEN) && !s->cb_rc) s->cb_rc = FLINT_ERR;
}

static tm_trigger_ctx trigger_ctx(tm_op *op, win_state *s, tm_window w) {
    s->cur = w;
    tm_window_ns_encode(w, s->cur_ns);
    int64_t now = s->trigger.kind == TM_TRIG_PROCESSING_TIME ? tm_timers_now_ms() : 0; /* only it looks */
    tm_trigger_ctx c = {op->watermark, now, s, tc_register, tc_delete, tc_count_add, tc_count_clear};
    return c;
}

static void cleanup_timer(tm_op *op, win_state *s, tm_window w, bool del) {
    int64_t t = tm_window_cleanup_time(&s->spec, w, s->lateness);
    if (t == INT64_MAX) return;
    flint_time_domain d = tm_window_is_event_time(&s->spec) ? FLINT_EVENT_TIME : FLINT_PROCESSING_TIME;
    uint8_t ns[TM_WINDOW_NS_LEN];
    tm_window_ns_encode(w, ns);
    size_t klen;
    const uint8_t *key = tm_state_current_key(s->backend, &klen);
    int kg = tm_state_current_key_group(s->backend);
    if (del) tm_timer_delete(op->timers, d, key, klen, kg, ns, TM_WINDOW_NS_LEN, t);
    else tm_timer_register(op->timers, d, key, klen, kg, ns, TM_WINDOW_NS_LEN, t);
}

/* ---- merging window sets -------------------------------------------------------------------------- */

static void set_load(win_state *s) {
    s->set.n = 0;
    const uint8_t *v;
    size_t len;
    if (!tm_state_value_get(s->wset, NULL, 0, &v, &len)) return;
    for (size_t i = 0; i + TM_WINDOW_NS_LEN <= len; i += TM_WINDOW_NS_LEN)
        tm_window_set_add(&s->set, tm_window_ns_decode(v + i));
}

static int set_save(win_state *s) {
    if (s->set.n == 0) return tm_state_clear(s->wset, NULL, 0);
    size_t need = (size_t)s->set.n * TM_WINDOW_NS_LEN;
    ensure((void **)&s->ebuf, &s->ecap, need, 1);
    for (int i = 0; i < s->set.n; i++) tm_window_ns_encode(s->set.w[i], s->ebuf + (size_t)i * TM_WINDOW_NS_LEN);
    return tm_state_value_put(s->wset, NULL, 0, s->ebuf, need);
}

/* ---- accumulators ------------------------------------------------------------------------------------ */

static int cmp_val(flint_type t, int64_t a, int64_t b) {
    if (t == FLINT_DOUBLE) {
        double x, y;
        memcpy(&x, &a, 8);
        memcpy(&y, &b, 8);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    return a < b ? -1 : a > b ? 1 : 0;
}

static int64_t add_val(flint_type t, builtin_kind k, int64_t a, int64_t b) {
    if (t == FLINT_DOUBLE) {
        double x, y;
        memcpy(&x, &a, 8);
        memcpy(&y, &b, 8);
        x += y;
        memcpy(&a, &x, 8);
        return a;
    }
    if (t == FLINT_INT && k == AGG_SUM) return (int64_t)(int32_t)((uint32_t)a + (uint32_t)b); /* Java's int */
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* Fold b into a (both accumulators of s's aggregate). */
static void bacc_merge(const win_state *s, bacc *a, const bacc *b) {
    if (s->agg == AGG_COUNT) {
        a->n += b->n;
        return;
    }
    if (!b->n) return;
    if (!a->n) {
        *a = *b;
        return;
    }
    switch (s->agg) {
    case AGG_SUM:
    case AGG_AVG: a->v = add_val(s->ftype, s->agg, a->v, b->v); break;
    case AGG_MIN: if (cmp_val(s->ftype, b->v, a->v) < 0) a->v = b->v; break;
    case AGG_MAX: if (cmp_val(s->ftype, b->v, a->v) > 0) a->v = b->v; break;
    default: break;
    }
    a->n += b->n;
}

static void bacc_add(const win_state *s, bacc *a, const flint_row *in) {
    if (s->agg == AGG_COUNT) {
        a->n++;
        return;
    }
    if (flint_row_is_null(in, s->field)) return;
    int64_t v = (int64_t)flint_row_slot_(in, s->field);
    if (s->ftype == FLINT_INT) v = (int64_t)(int32_t)v;
    bacc one = {1, v};
    bacc_merge(s, a, &one);
}

static bool bacc_get(win_state *s, const uint8_t *ns, bacc *a) {
    const uint8_t *v;
    size_t len;
    memset(a, 0, sizeof *a);
    if (!tm_state_value_get(s->contents, ns, TM_WINDOW_NS_LEN, &v, &len) || len != sizeof *a) return false;
    memcpy(a, v, sizeof *a);
    return true;
}

/* Run the user function after a call: the ctx failure becomes the operator's. */
#define CHECK_CTX(op)                                        \
    do {                                                     \
        if ((op)->ctx.failed) return tm_op_check_ctx(op);    \
    } while (0)

/* acc (a view) folded with in into *out (s->accb or accb2, whichever does not hold acc). */
static int user_fold(tm_op *op, win_state *s, const flint_row *acc, const flint_row *in, flint_row_builder *out,
                     bool merge) {
    flint_row_builder_reset(out);
    if (merge) s->merge(&op->ctx, acc, in, out);
    else if (s->fn == FN_REDUCE) s->reduce(&op->ctx, acc, in, out);
    else s->add(&op->ctx, acc, in, out);
    CHECK_CTX(op);
    return FLINT_OK;
}

static flint_row acc_view(win_state *s, const uint8_t *v, size_t len) {
    const flint_schema *sc = s->fn == FN_REDUCE ? s->op->in_schema : s->acc_schema;
    return flint_row_view(sc, v, (uint32_t)len, flint_schema_field_count(sc));
}

/* Add one element to window ns's contents. */
static int contents_add(tm_op *op, win_state *s, const uint8_t *ns, const flint_row *in, int64_t ts, int side) {
    if (s->list) {
        size_t need = 8 + in->len;
        ensure((void **)&s->ebuf, &s->ecap, need, 1);
        memcpy(s->ebuf, &ts, 8);
        memcpy(s->ebuf + 8, in->data, in->len);
        if (tm_state_list_add(side ? s->contents2 : s->contents, ns, TM_WINDOW_NS_LEN, s->ebuf, need))
            return state_fail(op, s, "adding to a window");
        return FLINT_OK;
    }
    if (s->fn == FN_BUILTIN) {
        bacc a;
        bacc_get(s, ns, &a);
        bacc_add(s, &a, in);
        if (tm_state_value_put(s->contents, ns, TM_WINDOW_NS_LEN, &a, sizeof a)) return state_fail(op, s, "updating a window");
        return FLINT_OK;
    }
    const uint8_t *v;
    size_t len;
    bool have = tm_state_value_get(s->contents, ns, TM_WINDOW_NS_LEN, &v, &len);
    const void *put;
    size_t put_len;
    if (s->fn == FN_REDUCE && !have) {
        put = in->data;
        put_len = in->len;
    } else {
        flint_row acc;
        if (!have) { /* user aggregate: a new accumulator */
            flint_row_builder_reset(&s->accb2);
            s->create(&op->ctx, &s->accb2);
            CHECK_CTX(op);
            acc = flint_row_builder_row(&s->accb2);
        } else {
            acc = acc_view(s, v, len);
        }
        int rc = user_fold(op, s, &acc, in, &s->accb, false);
        if (rc) return rc;
        put = s->accb.buf;
        put_len = s->accb.len;
    }
    if (tm_state_value_put(s->contents, ns, TM_WINDOW_NS_LEN, put, put_len)) return state_fail(op, s, "updating a window");
    return FLINT_OK;
}

/* Move the contents (and trigger count) of window m into window to. */
static int contents_merge(tm_op *op, win_state *s, tm_window to, tm_window m) {
    uint8_t tns[TM_WINDOW_NS_LEN], mns[TM_WINDOW_NS_LEN];
    tm_window_ns_encode(to, tns);
    tm_window_ns_encode(m, mns);
    const uint8_t *v;
    size_t len;
    if (s->list) {
        for (int side = 0; side < (s->is_join ? 2 : 1); side++) {
            tm_state *st = side ? s->contents2 : s->contents;
            if (!tm_state_list_get(st, mns, TM_WINDOW_NS_LEN, &v, &len)) continue;
            ensure((void **)&s->blob, &s->bcap, len, 1);
            memcpy(s->blob, v, len);
            const uint8_t *pos = s->blob, *end = s->blob + len, *e;
            size_t elen;
            while (tm_state_list_next(&pos, end, &e, &elen))
                if (tm_state_list_add(st, tns, TM_WINDOW_NS_LEN, e, elen)) return state_fail(op, s, "merging windows");
            if (side && tm_state_clear(st, mns, TM_WINDOW_NS_LEN)) return state_fail(op, s, "merging windows");
        }
    } else if (s->fn == FN_BUILTIN) {
        bacc a, b;
        if (bacc_get(s, mns, &b)) {
            bacc_get(s, tns, &a);
            bacc_merge(s, &a, &b);
            if (tm_state_value_put(s->contents, tns, TM_WINDOW_NS_LEN, &a, sizeof a)) return state_fail(op, s, "merging windows");
        }
    } else if (tm_state_value_get(s->contents, mns, TM_WINDOW_NS_LEN, &v, &len)) {
        /* Keep m's accumulator in accb2 while reading the target's. */
        flint_row_builder_reset(&s->accb2);
        flint_row mv = acc_view(s, v, len);
        flint_row_builder_copy(&s->accb2, &mv);
        flint_row mcopy = flint_row_builder_row(&s->accb2);
        const void *put = s->accb2.buf;
        size_t put_len = s->accb2.len;
        if (tm_state_value_get(s->contents, tns, TM_WINDOW_NS_LEN, &v, &len)) {
            flint_row tv = acc_view(s, v, len);
            int rc = user_fold(op, s, &tv, &mcopy, &s->accb, s->fn == FN_USER_AGG);
            if (rc) return rc;
            put = s->accb.buf;
            put_len = s->accb.len;
        }
        if (tm_state_value_put(s->contents, tns, TM_WINDOW_NS_LEN, put, put_len)) return state_fail(op, s, "merging windows");
    }
    if (tm_state_clear(s->contents, mns, TM_WINDOW_NS_LEN)) return state_fail(op, s, "merging windows");
    if (s->trigger.kind == TM_TRIG_COUNT) {
        int64_t c = count_get(s, mns);
        if (c) {
            c += count_get(s, tns);
            if (tm_state_value_put(s->counts, tns, TM_WINDOW_NS_LEN, &c, 8)) return state_fail(op, s, "merging windows");
        }
    }
    return FLINT_OK;
}

/* ---- firing -------------------------------------------------------------------------------------------- */

static void coll_emit(flint_collector *c, const flint_row *row) {
    win_state *s = c->rt;
    if (s->emit_rc) return;
    s->emit_rc = tm_op_emit(s->op, row);
}

static bool iter_next(flint_state_iter *it, flint_row *key, flint_row *value) {
    (void)key;
    win_iter *wi = (win_iter *)it;
    win_state *s = wi->s;
    elist *l = &s->el[0];
    while (wi->i < l->n && l->evict[wi->i]) wi->i++;
    if (wi->i >= l->n) return false;
    if (value)
        *value = flint_row_view(s->op->in_schema, l->eptr[wi->i], (uint32_t)l->elen[wi->i],
                                flint_schema_field_count(s->op->in_schema));
    wi->i++;
    return true;
}

static void iter_close(flint_state_iter *it) { (void)it; }

/* Copy window ns's element list of st into l (rows, lengths, timestamps); apply the evictor
 * (and drop the evicted elements from the state for good, as Flink's evicting operator does).
 * *any: whether the window has elements. */
static int load_elements(tm_op *op, win_state *s, tm_state *st, const uint8_t *ns, elist *l, bool *any) {
    const uint8_t *v;
    size_t len;
    l->n = 0;
    *any = tm_state_list_get(st, ns, TM_WINDOW_NS_LEN, &v, &len);
    if (!*any) return FLINT_OK;
    ensure((void **)&l->blob, &l->bcap, len, 1);
    memcpy(l->blob, v, len);
    const uint8_t *pos = l->blob, *end = l->blob + len, *e;
    size_t elen;
    while (tm_state_list_next(&pos, end, &e, &elen)) {
        if (elen < 8) return tm_op_fail(op, "a window element of %zu bytes is malformed", elen);
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->eptr = xrealloc(l->eptr, (size_t)l->cap * sizeof *l->eptr);
            l->elen = xrealloc(l->elen, (size_t)l->cap * sizeof *l->elen);
            l->ets = xrealloc(l->ets, (size_t)l->cap * sizeof *l->ets);
            l->evict = xrealloc(l->evict, (size_t)l->cap * sizeof *l->evict);
        }
        memcpy(&l->ets[l->n], e, 8);
        l->eptr[l->n] = e + 8;
        l->elen[l->n] = elen - 8;
        l->evict[l->n] = false;
        l->n++;
    }
    if (s->evictor.kind == TM_EVICT_NONE || st != s->contents) return FLINT_OK;
    int kept = tm_evictor_apply(&s->evictor, l->ets, l->n, l->evict);
    if (kept == l->n) return FLINT_OK;
    const void **vals = xcalloc((size_t)kept + 1, sizeof *vals);
    size_t *lens = xcalloc((size_t)kept + 1, sizeof *lens);
    int k = 0;
    for (int i = 0; i < l->n; i++)
        if (!l->evict[i]) {
            vals[k] = l->eptr[i] - 8;
            lens[k++] = l->elen[i] + 8;
        }
    int rc = tm_state_list_update(st, ns, TM_WINDOW_NS_LEN, kept, vals, lens);
    free(vals);
    free(lens);
    return rc ? state_fail(op, s, "evicting from a window") : FLINT_OK;
}

/* A window join fires: the join function on every pair (left in order, then right in order). */
static int fire_join(tm_op *op, win_state *s, const uint8_t *ns) {
    bool any;
    int rc;
    if ((rc = load_elements(op, s, s->contents, ns, &s->el[0], &any)) || !any) return rc;
    if ((rc = load_elements(op, s, s->contents2, ns, &s->el[1], &any)) || !any) return rc;
    flint_row key;
    if ((rc = key_row(op, s, &key))) return rc;
    int nf1 = flint_schema_field_count(op->in_schema), nf2 = flint_schema_field_count(s->in2_schema);
    for (int i = 0; i < s->el[0].n; i++) {
        flint_row a = flint_row_view(op->in_schema, s->el[0].eptr[i], (uint32_t)s->el[0].elen[i], nf1);
        for (int j = 0; j < s->el[1].n; j++) {
            flint_row b = flint_row_view(s->in2_schema, s->el[1].eptr[j], (uint32_t)s->el[1].elen[j], nf2);
            flint_row_builder_reset(&s->outb);
            s->join(&op->ctx, &a, &b, &s->outb);
            CHECK_CTX(op);
            flint_row out = flint_row_builder_row(&s->outb);
            if ((rc = tm_op_emit(op, &out))) return rc;
        }
    }
    return FLINT_OK;
}

/* Emit (key, window bounds, result) with result from acc (reduce, user aggregate) or a (built-in). */
static int emit_result(tm_op *op, win_state *s, tm_window w, const flint_row *acc, const bacc *a) {
    flint_row key;
    int rc = key_row(op, s, &key);
    if (rc) return rc;
    flint_row res;
    if (s->fn == FN_USER_AGG) {
        flint_row_builder_reset(&s->resb);
        s->result(&op->ctx, acc, &s->resb);
        CHECK_CTX(op);
        res = flint_row_builder_row(&s->resb);
    }
    flint_row_builder *b = &s->outb;
    flint_row_builder_reset(b);
    for (int i = 0; i < s->nkey; i++) flint_row_copy_field(b, i, &key, i);
    if (tm_window_is_global(w)) {
        flint_row_set_null(b, s->nkey);
        flint_row_set_null(b, s->nkey + 1);
    } else {
        flint_row_set_long(b, s->nkey, w.start);
        flint_row_set_long(b, s->nkey + 1, w.end);
    }
    int base = s->nkey + 2;
    if (s->fn == FN_REDUCE) {
        for (int j = 0; j < s->nres; j++) flint_row_copy_field(b, base + j, acc, s->res_src[j]);
    } else if (s->fn == FN_USER_AGG) {
        for (int j = 0; j < s->nres; j++) flint_row_copy_field(b, base + j, &res, j);
    } else if (s->agg == AGG_COUNT) {
        flint_row_set_long(b, base, a->n);
    } else if (!a->n) {
        flint_row_set_null(b, base);
    } else if (s->agg == AGG_AVG) {
        double d;
        if (s->ftype == FLINT_DOUBLE) memcpy(&d, &a->v, 8);
        else d = (double)a->v;
        flint_row_set_double(b, base, d / (double)a->n);
    } else if (s->ftype == FLINT_INT) {
        flint_row_set_int(b, base, (int32_t)a->v);
    } else if (s->ftype == FLINT_DOUBLE) {
        double d;
        memcpy(&d, &a->v, 8);
        flint_row_set_double(b, base, d);
    } else {
        flint_row_set_long(b, base, a->v);
    }
    flint_row out = flint_row_builder_row(b);
    return tm_op_emit(op, &out);
}

/* Flink's emitWindowContents: the window's result downstream (nothing when it is empty). */
static int fire(tm_op *op, win_state *s, tm_window w) {
    uint8_t ns[TM_WINDOW_NS_LEN];
    tm_window_ns_encode(w, ns);
    int64_t saved = op->rt->timestamp;
    op->rt->timestamp = tm_window_is_global(w) ? FLINT_NO_TIMESTAMP : tm_window_max_ts(w);
    int rc = FLINT_OK;
    if (s->is_join) {
        rc = fire_join(op, s, ns);
        goto out;
    }
    if (s->list) {
        bool any;
        if ((rc = load_elements(op, s, s->contents, ns, &s->el[0], &any)) || !any) goto out;
        if (s->fn == FN_PROCESS) {
            flint_row key;
            if ((rc = key_row(op, s, &key))) goto out;
            flint_time_window tw = {tm_window_is_global(w) ? INT64_MIN : w.start, w.end};
            s->iter = (win_iter){{iter_next, iter_close}, s, 0};
            s->emit_rc = FLINT_OK;
            s->process(&op->ctx, &tw, &s->iter.base, &s->coll);
            if (op->ctx.failed) rc = tm_op_check_ctx(op);
            else rc = s->emit_rc;
            goto out;
        }
        /* An evictor before a reduce or an aggregate: fold the kept elements. */
        bacc a = {0, 0};
        flint_row_builder *cur = NULL;
        bool have = false;
        int nf = flint_schema_field_count(op->in_schema);
        elist *l = &s->el[0];
        for (int i = 0; i < l->n; i++) {
            if (l->evict[i]) continue;
            flint_row e = flint_row_view(op->in_schema, l->eptr[i], (uint32_t)l->elen[i], nf);
            if (s->fn == FN_BUILTIN) {
                bacc_add(s, &a, &e);
                have = true;
                continue;
            }
            if (!have) {
                have = true;
                cur = &s->accb;
                flint_row_builder_reset(cur);
                if (s->fn == FN_REDUCE) {
                    flint_row_builder_copy(cur, &e);
                    continue;
                }
                s->create(&op->ctx, cur);
                if (op->ctx.failed) {
                    rc = tm_op_check_ctx(op);
                    goto out;
                }
            }
            flint_row_builder *next = cur == &s->accb ? &s->accb2 : &s->accb;
            flint_row acc = flint_row_builder_row(cur);
            if ((rc = user_fold(op, s, &acc, &e, next, false))) goto out;
            cur = next;
        }
        if (!have) goto out;
        flint_row acc = {0};
        if (cur) acc = flint_row_builder_row(cur);
        rc = emit_result(op, s, w, &acc, &a);
        goto out;
    }
    if (s->fn == FN_BUILTIN) {
        bacc a;
        if (bacc_get(s, ns, &a)) rc = emit_result(op, s, w, NULL, &a);
        goto out;
    }
    const uint8_t *v;
    size_t len;
    if (tm_state_value_get(s->contents, ns, TM_WINDOW_NS_LEN, &v, &len)) {
        /* A copy: the user's result function and the chain downstream may touch state. */
        flint_row_builder_reset(&s->accb2);
        flint_row view = acc_view(s, v, len);
        flint_row_builder_copy(&s->accb2, &view);
        flint_row acc = flint_row_builder_row(&s->accb2);
        rc = emit_result(op, s, w, &acc, NULL);
    }
out:
    op->rt->timestamp = saved;
    return rc;
}

static int apply_result(tm_op *op, win_state *s, tm_window w, tm_trigger_result r) {
    int rc = s->cb_rc ? state_fail(op, s, "trigger state") : FLINT_OK;
    s->cb_rc = FLINT_OK;
    if (!rc && (r & TM_TRIGGER_FIRE)) rc = fire(op, s, w);
    if (!rc && (r & TM_TRIGGER_PURGE)) {
        uint8_t ns[TM_WINDOW_NS_LEN];
        tm_window_ns_encode(w, ns);
        if (tm_state_clear(s->contents, ns, TM_WINDOW_NS_LEN) || (s->is_join && tm_state_clear(s->contents2, ns, TM_WINDOW_NS_LEN)))
            rc = state_fail(op, s, "purging a window");
    }
    return rc;
}

/* Flink's clearAllState: contents, trigger state and timers, the merging set's entry. */
static int clear_all(tm_op *op, win_state *s, tm_window w) {
    tm_trigger_ctx c = trigger_ctx(op, s, w);
    tm_trigger_clear(&s->trigger, w, &c);
    if (tm_state_clear(s->contents, s->cur_ns, TM_WINDOW_NS_LEN) ||
        (s->is_join && tm_state_clear(s->contents2, s->cur_ns, TM_WINDOW_NS_LEN)))
        return state_fail(op, s, "clearing a window");
    if (s->trigger.kind == TM_TRIG_COUNT && tm_state_clear(s->counts, s->cur_ns, TM_WINDOW_NS_LEN))
        return state_fail(op, s, "clearing a window");
    if (tm_window_is_merging(s->spec.kind)) tm_window_set_remove(&s->set, w);
    return FLINT_OK;
}

/* ---- elements ------------------------------------------------------------------------------------------ */

static int add_to_window(tm_op *op, win_state *s, tm_window w, const flint_row *in, int64_t ts, int side) {
    uint8_t ns[TM_WINDOW_NS_LEN];
    tm_window_ns_encode(w, ns);
    int rc = contents_add(op, s, ns, in, ts, side);
    if (rc) return rc;
    tm_trigger_ctx c = trigger_ctx(op, s, w);
    tm_trigger_result r = tm_trigger_on_element(&s->trigger, w, &c);
    if ((rc = apply_result(op, s, w, r))) return rc;
    /* The cleanup timer, unless the trigger just registered that very timer (the default trigger
     * of a window without lateness: both at window_end - 1). */
    bool same = r == TM_TRIGGER_CONTINUE && tm_window_cleanup_time(&s->spec, w, s->lateness) == tm_window_max_ts(w) &&
                (s->trigger.kind == TM_TRIG_EVENT_TIME ? tm_window_is_event_time(&s->spec)
                 : s->trigger.kind == TM_TRIG_PROCESSING_TIME ? tm_window_is_processing_time(&s->spec)
                                                              : false);
    if (!same) cleanup_timer(op, s, w, false);
    return FLINT_OK;
}

static int merge_windows(tm_op *op, win_state *s, tm_window result, int n_merged) {
    tm_trigger_ctx c = trigger_ctx(op, s, result);
    tm_trigger_on_merge(&s->trigger, result, &c);
    for (int i = 0; i < n_merged; i++) {
        tm_window m = s->merged[i];
        int rc = contents_merge(op, s, result, m);
        if (rc) return rc;
        c = trigger_ctx(op, s, m);
        tm_trigger_clear(&s->trigger, m, &c);
        cleanup_timer(op, s, m, true);
    }
    return s->cb_rc ? state_fail(op, s, "merging windows") : FLINT_OK;
}

/* An element of input side (0, or 1 for the second input of a window join). */
static int win_element(tm_op *op, const flint_row *in, int side) {
    win_state *s = op->state;
    int64_t rec_ts = op->rt->timestamp;
    int64_t ts = rec_ts;
    if (tm_window_is_processing_time(&s->spec)) {
        ts = tm_timers_now_ms();
    } else if (tm_window_is_event_time(&s->spec) && rec_ts == FLINT_NO_TIMESTAMP) {
        return tm_op_fail(op, "a record has no timestamp (event-time windows need one: is there a "
                              "flint_assign_timestamps_and_watermarks before the window, or did you mean "
                              "processing-time windows?)");
    }
    const uint8_t *key;
    size_t klen;
    flint_err err = {0};
    if (tm_keys_get(side ? &s->keys2 : &s->keys, in, &key, &klen, &err)) {
        op->ctx.failed = false;
        return tm_op_fail(op, "key selector: %s", err.msg);
    }
    tm_state_set_key_hashed(s->backend, key, klen);
    int n = tm_window_assign(&s->spec, ts, s->assigned, s->max_assigned);
    if (n > s->max_assigned) n = s->max_assigned;
    bool skipped = true;
    int rc = FLINT_OK;
    if (tm_window_is_merging(s->spec.kind)) {
        set_load(s);
        for (int i = 0; i < n && !rc; i++) {
            if (s->cap_merged < s->set.n + 1) {
                s->cap_merged = (s->set.n + 1) * 2;
                s->merged = xrealloc(s->merged, (size_t)s->cap_merged * sizeof *s->merged);
            }
            tm_window actual;
            int n_merged;
            tm_window_set_add_merging(&s->set, s->assigned[i], &actual, s->merged, &n_merged);
            if (n_merged && (rc = merge_windows(op, s, actual, n_merged))) break;
            if (tm_window_is_late(&s->spec, actual, s->lateness, op->watermark)) {
                tm_window_set_remove(&s->set, actual);
                uint8_t ns[TM_WINDOW_NS_LEN];
                tm_window_ns_encode(actual, ns);
                tm_state_clear(s->contents, ns, TM_WINDOW_NS_LEN);
                if (s->is_join) tm_state_clear(s->contents2, ns, TM_WINDOW_NS_LEN);
                continue;
            }
            skipped = false;
            rc = add_to_window(op, s, actual, in, rec_ts, side);
        }
        if (!rc && set_save(s)) rc = state_fail(op, s, "saving the session windows");
    } else {
        for (int i = 0; i < n && !rc; i++) {
            tm_window w = s->assigned[i];
            if (tm_window_is_late(&s->spec, w, s->lateness, op->watermark)) continue;
            skipped = false;
            rc = add_to_window(op, s, w, in, rec_ts, side);
        }
    }
    if (rc) return rc;
    if (skipped && tm_element_is_late(&s->spec, ts, s->lateness, op->watermark)) {
        op->rt->timestamp = rec_ts;
        if (s->late_side >= 0) return tm_op_emit_side(op, s->late_side, in);
        s->late_dropped++;
    }
    return FLINT_OK;
}

static int win_process(tm_op *op, const flint_row *in) { return win_element(op, in, 0); }
static int win_process2(tm_op *op, const flint_row *in) { return win_element(op, in, 1); }

static int win_on_timer(tm_op *op, const tm_timer *t) {
    win_state *s = op->state;
    if (t->ns_len != TM_WINDOW_NS_LEN) return FLINT_OK;
    tm_state_set_key(s->backend, t->key, t->key_len, t->key_group);
    tm_window w = tm_window_ns_decode(t->ns);
    bool merging = tm_window_is_merging(s->spec.kind);
    if (merging) {
        set_load(s);
        if (!tm_window_set_contains(&s->set, w)) return FLINT_OK; /* merged away meanwhile */
    }
    tm_trigger_ctx c = trigger_ctx(op, s, w);
    tm_trigger_result r = tm_trigger_on_time(&s->trigger, w, t->domain, t->time, &c);
    int rc = apply_result(op, s, w, r);
    if (rc) return rc;
    bool own_domain = t->domain == FLINT_EVENT_TIME ? tm_window_is_event_time(&s->spec)
                                                    : !tm_window_is_event_time(&s->spec);
    if (own_domain && t->time == tm_window_cleanup_time(&s->spec, w, s->lateness)) {
        if ((rc = clear_all(op, s, w))) return rc;
    }
    if (merging && set_save(s)) return state_fail(op, s, "saving the session windows");
    return FLINT_OK;
}

/* ---- open / close ------------------------------------------------------------------------------------- */

static int param_i64(tm_op *op, const char *key, int64_t def, int64_t *out) { return tm_op_param_int(op, key, def, out); }

static int parse_spec(tm_op *op, win_state *s) {
    const char *kind = tm_op_param(op, "window.kind");
    static const char *const kinds[] = {"tumbling", "sliding", "session", "count_tumbling", "count_sliding"};
    int k = -1;
    for (int i = 0; i < 5; i++)
        if (kind && strcmp(kind, kinds[i]) == 0) k = i;
    if (k < 0) return tm_op_fail(op, "unknown window kind '%s'", kind ? kind : "");
    s->spec.kind = (flint_window_kind)k;
    const char *dom = tm_op_param(op, "window.domain");
    s->spec.domain = dom && strcmp(dom, "processing") == 0 ? FLINT_PROCESSING_TIME : FLINT_EVENT_TIME;
    int rc;
    if ((rc = param_i64(op, "window.size", 0, &s->spec.size)) || (rc = param_i64(op, "window.slide", 0, &s->spec.slide)) ||
        (rc = param_i64(op, "window.offset", 0, &s->spec.offset)) || (rc = param_i64(op, "window.gap", 0, &s->spec.gap)) ||
        (rc = param_i64(op, "allowed_lateness", 0, &s->lateness)))
        return rc;
    const char *e = tm_window_spec_check(&s->spec);
    if (e) return tm_op_fail(op, "%s", e);
    flint_trigger t = {FLINT_TRIGGER_DEFAULT, 0, false};
    const char *tk = tm_op_param(op, "trigger");
    if (tk) {
        static const char *const tnames[] = {"default", "event_time", "processing_time", "count"};
        int x = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(tk, tnames[i]) == 0) x = i;
        if (x < 0) return tm_op_fail(op, "unknown trigger '%s'", tk);
        t.kind = (flint_trigger_kind)x;
        int64_t purging;
        if ((rc = param_i64(op, "trigger.count", 0, &t.count)) || (rc = param_i64(op, "trigger.purging", 0, &purging))) return rc;
        t.purging = purging != 0;
    }
    if ((e = tm_trigger_resolve(&s->spec, &t, &s->trigger))) return tm_op_fail(op, "%s", e);
    const char *ev = tm_op_param(op, "evictor");
    if (ev) {
        s->evictor.kind = strcmp(ev, "count") == 0 ? TM_EVICT_COUNT : strcmp(ev, "time") == 0 ? TM_EVICT_TIME : TM_EVICT_NONE;
        if (s->evictor.kind == TM_EVICT_NONE) return tm_op_fail(op, "unknown evictor '%s'", ev);
        if ((rc = param_i64(op, "evictor.value", 0, &s->evictor.value))) return rc;
    }
    if (s->spec.kind == FLINT_WINDOW_COUNT_SLIDING && s->evictor.kind == TM_EVICT_NONE)
        s->evictor = (tm_evictor){TM_EVICT_COUNT, s->spec.size};
    s->max_assigned = tm_window_max_assigned(&s->spec);
    s->assigned = xcalloc((size_t)s->max_assigned, sizeof *s->assigned);
    return FLINT_OK;
}

static int open_keys(tm_op *op, win_state *s) {
    flint_err err = {0};
    const char *sel = tm_op_param(op, "key.selector");
    if (sel && sel[0]) {
        void (*fn)(void);
        int rc = tm_op_symbol(op, "key.selector", true, &fn);
        if (rc) return rc;
        const char *ks = tm_op_param(op, "key.schema");
        if (tm_keys_init_selector(&s->keys, (flint_key_fn)fn, &op->ctx, ks, &err))
            return tm_op_fail(op, "key selector '%s': %s", sel, err.msg);
        if (flint_schema_parse(ks, &s->key_schema, &err)) return tm_op_fail(op, "key.schema: %s", err.msg);
    } else {
        const char *fields = tm_op_param(op, "key.fields");
        if (!fields || !fields[0]) return tm_op_fail(op, "no key: neither 'key.fields' nor 'key.selector' is set");
        if (tm_keys_init_fields(&s->keys, fields, op->in_schema, &err))
            return tm_op_fail(op, "key.fields '%s': %s", fields, err.msg);
        char *text = tm_key_schema_text(op->in_schema, s->keys.fields, s->keys.nfields);
        int rc = flint_schema_parse(text, &s->key_schema, &err);
        free(text);
        if (rc) return tm_op_fail(op, "key columns: %s", err.msg);
    }
    if (tm_op_param(op, "in2.schema")) {
        /* A window join: the second input's key. */
        const char *f2 = tm_op_param(op, "key2.fields"), *sel2 = tm_op_param(op, "key2.selector");
        flint_schema *in2 = NULL;
        if (flint_schema_parse(tm_op_param(op, "in2.schema"), &in2, &err)) return tm_op_fail(op, "in2.schema: %s", err.msg);
        int rc = FLINT_OK;
        if (f2 && f2[0]) {
            if (tm_keys_init_fields(&s->keys2, f2, in2, &err)) rc = tm_op_fail(op, "key2.fields '%s': %s", f2, err.msg);
        } else if (sel2 && sel2[0]) {
            void (*fn)(void);
            rc = tm_op_symbol(op, "key2.selector", true, &fn);
            if (!rc && tm_keys_init_selector(&s->keys2, (flint_key_fn)fn, &op->ctx, tm_op_param(op, "key2.schema"), &err))
                rc = tm_op_fail(op, "key selector '%s': %s", sel2, err.msg);
        } else {
            rc = tm_op_fail(op, "no key for the second input: neither 'key2.fields' nor 'key2.selector' is set");
        }
        flint_schema_free(in2);
        if (rc) return rc;
    }
    flint_row_builder_init(&s->keyb, s->key_schema);
    s->keyb_ready = true;
    s->nkey = flint_schema_field_count(s->key_schema);
    return FLINT_OK;
}

static int open_function(tm_op *op, win_state *s) {
    const char *fn = tm_op_param(op, "function");
    int rc;
    void (*p)(void);
    flint_err err = {0};
    if (!fn) return tm_op_fail(op, "parameter 'function' is missing");
    if (strcmp(fn, "join") == 0) {
        s->fn = FN_PROCESS;
        s->is_join = true;
        s->list = true;
        if ((rc = tm_op_symbol(op, "fn", true, &p))) return rc;
        s->join = (flint_join_fn)p;
        if (!op->out_schema) return tm_op_fail(op, "the operator has no output schema");
        const char *in2 = tm_op_param(op, "in2.schema");
        if (!in2 || flint_schema_parse(in2, &s->in2_schema, &err)) return tm_op_fail(op, "in2.schema: %s", in2 ? err.msg : "missing");
        flint_row_builder_init(&s->outb, op->out_schema);
        return FLINT_OK;
    }
    if (strcmp(fn, "process") == 0) {
        s->fn = FN_PROCESS;
        if ((rc = tm_op_symbol(op, "fn", true, &p))) return rc;
        s->process = (flint_process_window_fn)p;
        flint_row_builder_init(&s->coll.out, op->out_schema);
        s->coll.emit = coll_emit;
        s->coll.rt = s;
        s->list = true;
        return FLINT_OK;
    }
    if (!op->out_schema) return tm_op_fail(op, "the operator has no output schema");
    int nout = flint_schema_field_count(op->out_schema);
    s->nres = nout - s->nkey - 2;
    if (s->nres < 0) return tm_op_fail(op, "the output schema (%s) lacks the key and window columns", flint_schema_text(op->out_schema));
    if (strcmp(fn, "reduce") == 0) {
        s->fn = FN_REDUCE;
        if ((rc = tm_op_symbol(op, "fn", true, &p))) return rc;
        s->reduce = (flint_reduce_fn)p;
        s->res_src = xcalloc((size_t)s->nres + 1, sizeof *s->res_src);
        for (int j = 0; j < s->nres; j++) {
            const char *name = flint_schema_field_name(op->out_schema, s->nkey + 2 + j);
            s->res_src[j] = flint_schema_field_index(op->in_schema, name);
            if (s->res_src[j] < 0) return tm_op_fail(op, "result column '%s' is not a field of the input", name);
        }
        flint_row_builder_init(&s->accb, op->in_schema);
        flint_row_builder_init(&s->accb2, op->in_schema);
    } else if (strcmp(fn, "aggregate") == 0) {
        const char *agg = tm_op_param(op, "agg");
        if (agg && strcmp(agg, "user") == 0) {
            s->fn = FN_USER_AGG;
            void (*c)(void), (*a)(void), (*m)(void), (*r)(void);
            if ((rc = tm_op_symbol(op, "agg.create", true, &c)) || (rc = tm_op_symbol(op, "agg.add", true, &a)) ||
                (rc = tm_op_symbol(op, "agg.merge", true, &m)) || (rc = tm_op_symbol(op, "agg.result", true, &r)))
                return rc;
            s->create = (flint_agg_create_fn)c;
            s->add = (flint_agg_add_fn)a;
            s->merge = (flint_agg_merge_fn)m;
            s->result = (flint_agg_result_fn)r;
            const char *acc = tm_op_param(op, "acc.schema"), *res = tm_op_param(op, "result.schema");
            if (!acc || flint_schema_parse(acc, &s->acc_schema, &err)) return tm_op_fail(op, "acc.schema: %s", acc ? err.msg : "missing");
            if (!res || flint_schema_parse(res, &s->res_schema, &err)) return tm_op_fail(op, "result.schema: %s", res ? err.msg : "missing");
            if (flint_schema_field_count(s->res_schema) != s->nres)
                return tm_op_fail(op, "result.schema (%s) does not match the output schema", flint_schema_text(s->res_schema));
            flint_row_builder_init(&s->accb, s->acc_schema);
            flint_row_builder_init(&s->accb2, s->acc_schema);
            flint_row_builder_init(&s->resb, s->res_schema);
        } else {
            s->fn = FN_BUILTIN;
            static const char *const names[] = {"count", "sum", "min", "max", "avg"};
            int k = -1;
            for (int i = 0; i < 5; i++)
                if (agg && strcmp(agg, names[i]) == 0) k = i;
            if (k < 0) return tm_op_fail(op, "unknown aggregate '%s'", agg ? agg : "");
            s->agg = (builtin_kind)k;
            if (s->agg != AGG_COUNT) {
                int64_t f;
                if ((rc = param_i64(op, "field", -1, &f))) return rc;
                if (f < 0 || f >= flint_schema_field_count(op->in_schema)) return tm_op_fail(op, "field %lld out of range", (long long)f);
                s->field = (int)f;
                s->ftype = flint_schema_field_type(op->in_schema, s->field);
            }
            if (s->nres != 1) return tm_op_fail(op, "a built-in aggregate has one result column");
        }
    } else {
        return tm_op_fail(op, "unknown window function '%s'", fn);
    }
    s->list = s->evictor.kind != TM_EVICT_NONE;
    flint_row_builder_init(&s->outb, op->out_schema);
    return FLINT_OK;
}

static int win_open(tm_op *op) {
    win_state *s = XNEW(win_state);
    op->state = s;
    s->op = op;
    s->late_side = -1;
    if (!op->in_schema) return tm_op_fail(op, "the operator has no input schema");
    int rc;
    if ((rc = parse_spec(op, s)) || (rc = open_keys(op, s)) || (rc = open_function(op, s))) return rc;
    const char *tag = tm_op_param(op, "late.tag");
    if (tag && tag[0]) s->late_side = tm_op_side_output(op, tag);
    if (!tm_op_timers(op)) return tm_op_fail(op, "windows need the task's timer service");
    if ((rc = tm_state_op_open(op, &s->backend))) return rc;
    flint_err err = {0};
    if (tm_state_register(s->backend, "window-contents", s->list ? TM_STATE_LIST : TM_STATE_AGGREGATING, 0, &s->contents, &err) ||
        (s->is_join && tm_state_register(s->backend, "window-contents-2", TM_STATE_LIST, 0, &s->contents2, &err)) ||
        (s->trigger.kind == TM_TRIG_COUNT &&
         tm_state_register(s->backend, "window-trigger-count", TM_STATE_VALUE, 0, &s->counts, &err)) ||
        (tm_window_is_merging(s->spec.kind) &&
         tm_state_register(s->backend, "window-sessions", TM_STATE_VALUE, 0, &s->wset, &err)))
        return tm_op_fail(op, "window state: %s", err.msg);
    return tm_op_udf_open(op);
}

static void win_close(tm_op *op) {
    win_state *s = op->state;
    if (!s) return;
    if (op->opened) tm_op_udf_close(op);
    if (s->backend) tm_state_op_close(op, s->backend);
    tm_keys_free(&s->keys);
    if (s->keyb_ready) flint_row_builder_free(&s->keyb);
    flint_schema_free(s->key_schema);
    if (s->accb.schema) flint_row_builder_free(&s->accb);
    if (s->accb2.schema) flint_row_builder_free(&s->accb2);
    if (s->resb.schema) flint_row_builder_free(&s->resb);
    if (s->outb.schema) flint_row_builder_free(&s->outb);
    if (s->coll.out.schema) flint_row_builder_free(&s->coll.out);
    flint_schema_free(s->acc_schema);
    flint_schema_free(s->res_schema);
    free(s->res_src);
    free(s->assigned);
    tm_window_set_free(&s->set);
    free(s->merged);
    free(s->ebuf);
    free(s->blob);
    for (int i = 0; i < 2; i++) {
        free(s->el[i].blob);
        free(s->el[i].eptr);
        free(s->el[i].elen);
        free(s->el[i].ets);
        free(s->el[i].evict);
    }
    tm_keys_free(&s->keys2);
    flint_schema_free(s->in2_schema);
    free(s);
    op->state = NULL;
}

bool tm_window_op_stats_get(tm_op *op, tm_window_op_stats *out) {
    memset(out, 0, sizeof *out);
    if (!op || !op->state || !op->kind) return false;
    if (strcmp(op->kind->name, "interval_join") == 0) return tm_interval_join_stats(op, out);
    if (strcmp(op->kind->name, "window") != 0 && strcmp(op->kind->name, "window_join") != 0) return false;
    win_state *s = op->state;
    if (!s->backend) return false;
    tm_state *all[] = {s->contents, s->contents2, s->counts, s->wset};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) out->state_entries += tm_state_count(all[i]);
    if (op->timers) {
        out->event_timers = tm_timer_queue_count(op->timers, FLINT_EVENT_TIME);
        out->processing_timers = tm_timer_queue_count(op->timers, FLINT_PROCESSING_TIME);
    }
    out->late_dropped = s->late_dropped;
    return true;
}

const tm_op_kind tm_op_WINDOW = {
    .name = "window",
    .open = win_open,
    .process = win_process,
    .on_timer = win_on_timer,
    .close = win_close,
};

/* Window joins: Flink's JoinedStreams (a coGroup over a window operator): both inputs buffered per
 * key and window, every pair joined when the window fires. */
const tm_op_kind tm_op_WINDOW_JOIN = {
    .name = "window_join",
    .open = win_open,
    .process = win_process,
    .process2 = win_process2,
    .on_timer = win_on_timer,
    .close = win_close,
};

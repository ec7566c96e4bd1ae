/* The public state API (flint_state_value & co., see flint.h) on the taskmanager's side: the
 * table libflint dispatches to (flint_ctx.state_ops), keyed states over the operator's backend
 * (tm_state.h) scoped to its current key, operator list and broadcast state of any operator in a
 * small in-memory backend of its own, and the operator wiring (tm_state_op_open/close, config).
 * Rows are stored as their bytes; map user keys as the key row rebuilt (canonical bytes). */
#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/cp_task.h"
#include "config/config.h"
#include "operators/operator.h"
#include "row/row_key.h"
#include "state/tm_state_int.h"
#include "util/alloc.h"

typedef struct api_state api_state;

/* What an operator's context holds (ctx->state_ud). */
typedef struct tm_state_ctx {
    tm_op *op;
    tm_state_backend *b;                 /* keyed state (NULL: not keyed) */
    tm_state_backend *ob;                /* operator list and broadcast states (made on first use) */
    api_state **states;
    int n, cap;
} tm_state_ctx;

struct api_state {
    flint_state base;
    tm_state_ctx *sc;
    flint_state_kind kind;
    char *name;
    tm_state *st;
    flint_schema *schema, *key_schema, *result_schema;   /* owned */
    flint_reduce_fn reduce;
    flint_agg_create_fn create;
    flint_agg_add_fn add;
    flint_agg_result_fn result;
    flint_row_builder b1, b2, br, kb;    /* reduce/create, add, result outputs; canonical map keys */
    bool has_b1, has_b2, has_br, has_kb;
    const flint_schema *ok_schema, *ok_kschema;          /* checked already */
};

static flint_ctx *ctx_of(api_state *s) { return &s->sc->op->ctx; }

static const char *kind_word(flint_state_kind k) {
    switch (k) {
    case FLINT_STATE_VALUE: return "value";
    case FLINT_STATE_LIST: return "list";
    case FLINT_STATE_MAP: return "map";
    case FLINT_STATE_REDUCING: return "reducing";
    case FLINT_STATE_AGGREGATING: return "aggregating";
    case FLINT_STATE_OPERATOR_LIST: return "operator list";
    case FLINT_STATE_BROADCAST: return "broadcast";
    }
    return "?";
}

static bool want(api_state *s, bool ok, const char *what) {
    if (!ok) flint_ctx_fail(ctx_of(s), "state '%s' is %s state: %s does not apply", s->name, kind_word(s->kind), what);
    return ok;
}

/* After a backend operation: turn an I/O error into the task's failure. */
static void io_check(api_state *s) {
    flint_err err = {0};
    if (tm_state_backend_error(tm_state_backend_of(s->st), &err))
        flint_ctx_fail(ctx_of(s), "state '%s': %s", s->name, err.msg);
}

static bool writable(api_state *s) {
    if (s->kind != FLINT_STATE_BROADCAST || ctx_of(s)->broadcast_writable) return true;
    flint_ctx_fail(ctx_of(s), "broadcast state '%s' is read-only here: write it while processing the broadcast input",
                   s->name);
    return false;
}

/* A row given for schema sch: the same schema (checked once per schema pointer) or a bare row of
 * as many fields. */
static bool row_fits(api_state *s, const flint_row *r, const flint_schema *sch, const flint_schema **ok, const char *what) {
    if (!r || !r->data) {
        flint_ctx_fail(ctx_of(s), "state '%s': no %s row", s->name, what);
        return false;
    }
    if (r->schema == sch || (r->schema && r->schema == *ok)) return true;
    if (r->schema ? flint_schema_equal(r->schema, sch) : r->nfields == flint_schema_field_count(sch)) {
        if (r->schema) *ok = r->schema;
        return true;
    }
    flint_ctx_fail(ctx_of(s), "state '%s': a %s row of (%s) where the state holds (%s)", s->name, what,
                   r->schema ? flint_schema_text(r->schema) : "?", flint_schema_text(sch));
    return false;
}

static flint_row view(const flint_schema *sch, const uint8_t *p, size_t n) {
    return flint_row_view(sch, p, (uint32_t)n, flint_schema_field_count(sch));
}

/* The canonical bytes of a map key row (rebuilt field by field). */
static bool map_key(api_state *s, const flint_row *key, const uint8_t **p, size_t *n) {
    if (!row_fits(s, key, s->key_schema, &s->ok_kschema, "map key")) return false;
    flint_row_builder_reset(&s->kb);
    int nf = flint_schema_field_count(s->key_schema);
    for (int i = 0; i < nf; i++) flint_row_copy_field(&s->kb, i, key, i);
    *p = s->kb.buf;
    *n = s->kb.len;
    return true;
}

/* ---- value -------------------------------------------------------------------------------------- */

static bool op_value_get(flint_state *st, flint_row *out) {
    api_state *s = (api_state *)st;
    if (!want(s, s->kind == FLINT_STATE_VALUE, "flint_value_get")) return false;
    const uint8_t *v;
    size_t n;
    if (!tm_state_value_get(s->st, NULL, 0, &v, &n)) {
        io_check(s);
        return false;
    }
    if (out) *out = view(s->schema, v, n);
    return true;
}

static void op_value_update(flint_state *st, const flint_row *value) {
    api_state *s = (api_state *)st;
    if (!want(s, s->kind == FLINT_STATE_VALUE, "flint_value_update")) return;
    if (!value) { /* Flink: update(null) clears */
        tm_state_clear(s->st, NULL, 0);
    } else {
        if (!row_fits(s, value, s->schema, &s->ok_schema, "value")) return;
        tm_state_value_put(s->st, NULL, 0, value->data, value->len);
    }
    io_check(s);
}

/* ---- lists -------------------------------------------------------------------------------------- */

static bool is_list(api_state *s) { return s->kind == FLINT_STATE_LIST || s->kind == FLINT_STATE_OPERATOR_LIST; }

static void op_list_add(flint_state *st, const flint_row *value) {
    api_state *s = (api_state *)st;
    if (!want(s, is_list(s), "flint_list_add") || !row_fits(s, value, s->schema, &s->ok_schema, "list element")) return;
    tm_state_list_add(s->st, NULL, 0, value->data, value->len);
    io_check(s);
}

static void op_list_update(flint_state *st, int n, const flint_row *values) {
    api_state *s = (api_state *)st;
    if (!want(s, is_list(s), "flint_list_update")) return;
    if (n <= 0) {
        tm_state_clear(s->st, NULL, 0);
        io_check(s);
        return;
    }
    const void **ptrs = xmalloc((size_t)n * sizeof *ptrs);
    size_t *lens = xmalloc((size_t)n * sizeof *lens);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        ok = row_fits(s, &values[i], s->schema, &s->ok_schema, "list element");
        ptrs[i] = values[i].data;
        lens[i] = values[i].len;
    }
    if (ok) tm_state_list_update(s->st, NULL, 0, n, (const void *const *)ptrs, lens);
    free(ptrs);
    free(lens);
    io_check(s);
}

typedef struct list_iter {
    flint_state_iter base;
    const flint_schema *schema;
    uint8_t *buf;                        /* a copy: the list may change while iterating */
    const uint8_t *pos, *end;
} list_iter;

static void list_iter_close(flint_state_iter *it) {
    list_iter *li = (list_iter *)it;
    free(li->buf);
    free(li);
}

static bool list_iter_next(flint_state_iter *it, flint_row *key, flint_row *value) {
    list_iter *li = (list_iter *)it;
    const uint8_t *el;
    size_t n;
    if (!tm_state_list_next(&li->pos, li->end, &el, &n)) {
        list_iter_close(it);
        return false;
    }
    if (key) *key = (flint_row){0};
    if (value) *value = view(li->schema, el, n);
    return true;
}

static flint_state_iter *op_list_iter(flint_state *st) {
    api_state *s = (api_state *)st;
    if (!want(s, is_list(s), "flint_list_iter")) return NULL;
    const uint8_t *blob;
    size_t n;
    if (!tm_state_list_get(s->st, NULL, 0, &blob, &n)) {
        io_check(s);
        return NULL;
    }
    list_iter *li = XNEW(list_iter);
    li->base.next = list_iter_next;
    li->base.close = list_iter_close;
    li->schema = s->schema;
    li->buf = xmalloc(n);
    memcpy(li->buf, blob, n);
    li->pos = li->buf;
    li->end = li->buf + n;
    return &li->base;
}

/* ---- maps --------------------------------------------------------------------------------------- */

static bool is_map(api_state *s) { return s->kind == FLINT_STATE_MAP || s->kind == FLINT_STATE_BROADCAST; }

static bool op_map_get(flint_state *st, const flint_row *key, flint_row *out) {
    api_state *s = (api_state *)st;
    const uint8_t *k, *v;
    size_t kl, n;
    if (!want(s, is_map(s), "flint_map_get") || !map_key(s, key, &k, &kl)) return false;
    if (!tm_state_map_get(s->st, NULL, 0, k, kl, &v, &n)) {
        io_check(s);
        return false;
    }
    if (out) *out = view(s->schema, v, n);
    return true;
}

static void op_map_put(flint_state *st, const flint_row *key, const flint_row *value) {
    api_state *s = (api_state *)st;
    const uint8_t *k;
    size_t kl;
    if (!want(s, is_map(s), "flint_map_put") || !writable(s) || !map_key(s, key, &k, &kl) ||
        !row_fits(s, value, s->schema, &s->ok_schema, "map value"))
        return;
    tm_state_map_put(s->st, NULL, 0, k, kl, value->data, value->len);
    io_check(s);
}

static void op_map_remove(flint_state *st, const flint_row *key) {
    api_state *s = (api_state *)st;
    const uint8_t *k;
    size_t kl;
    if (!want(s, is_map(s), "flint_map_remove") || !writable(s) || !map_key(s, key, &k, &kl)) return;
    tm_state_map_remove(s->st, NULL, 0, k, kl);
    io_check(s);
}

static bool op_map_contains(flint_state *st, const flint_row *key) {
    api_state *s = (api_state *)st;
    const uint8_t *k;
    size_t kl;
    if (!want(s, is_map(s), "flint_map_contains") || !map_key(s, key, &k, &kl)) return false;
    bool r = tm_state_map_contains(s->st, NULL, 0, k, kl);
    if (!r) io_check(s);
    return r;
}

typedef struct map_iter {
    flint_state_iter base;
    api_state *s;
    tm_state_iter *it;
} map_iter;

static void map_iter_close(flint_state_iter *it) {
    map_iter *mi = (map_iter *)it;
    tm_state_iter_close(mi->it);
    free(mi);
}

static bool map_iter_next(flint_state_iter *it, flint_row *key, flint_row *value) {
    map_iter *mi = (map_iter *)it;
    tm_state_entry e;
    if (!tm_state_iter_next(mi->it, &e)) {
        io_check(mi->s);
        map_iter_close(it);
        return false;
    }
    if (key) *key = view(mi->s->key_schema, e.ukey, e.uklen);
    if (value) *value = view(mi->s->schema, e.value, e.vlen);
    return true;
}

static flint_state_iter *op_map_iter(flint_state *st) {
    api_state *s = (api_state *)st;
    if (!want(s, is_map(s), "flint_map_iter")) return NULL;
    map_iter *mi = XNEW(map_iter);
    mi->base.next = map_iter_next;
    mi->base.close = map_iter_close;
    mi->s = s;
    mi->it = tm_state_map_iter(s->st, NULL, 0);
    return &mi->base;
}

/* ---- reducing and aggregating ------------------------------------------------------------------- */

static void op_add(flint_state *st, const flint_row *value) {
    api_state *s = (api_state *)st;
    if (!want(s, s->kind == FLINT_STATE_REDUCING || s->kind == FLINT_STATE_AGGREGATING, "flint_state_add")) return;
    flint_ctx *ctx = ctx_of(s);
    const uint8_t *v;
    size_t n;
    bool have = tm_state_value_get(s->st, NULL, 0, &v, &n);
    if (s->kind == FLINT_STATE_REDUCING) {
        if (!row_fits(s, value, s->schema, &s->ok_schema, "value")) return;
        if (!have) {
            tm_state_value_put(s->st, NULL, 0, value->data, value->len);
        } else {
            flint_row acc = view(s->schema, v, n);
            flint_row_builder_reset(&s->b1);
            s->reduce(ctx, &acc, value, &s->b1);
            if (ctx->failed) return;
            tm_state_value_put(s->st, NULL, 0, s->b1.buf, s->b1.len);
        }
    } else {
        flint_row acc;
        if (have) {
            acc = view(s->schema, v, n);
        } else {
            flint_row_builder_reset(&s->b1);
            s->create(ctx, &s->b1);
            if (ctx->failed) return;
            acc = flint_row_builder_row(&s->b1);
        }
        flint_row_builder_reset(&s->b2);
        s->add(ctx, &acc, value, &s->b2);
        if (ctx->failed) return;
        tm_state_value_put(s->st, NULL, 0, s->b2.buf, s->b2.len);
    }
    io_check(s);
}

static bool op_get(flint_state *st, flint_row *out) {
    api_state *s = (api_state *)st;
    if (!want(s, s->kind == FLINT_STATE_REDUCING || s->kind == FLINT_STATE_AGGREGATING, "flint_state_get")) return false;
    const uint8_t *v;
    size_t n;
    if (!tm_state_value_get(s->st, NULL, 0, &v, &n)) {
        io_check(s);
        return false;
    }
    flint_row acc = view(s->schema, v, n);
    if (s->kind == FLINT_STATE_AGGREGATING && s->result) {
        flint_row_builder_reset(&s->br);
        s->result(ctx_of(s), &acc, &s->br);
        if (ctx_of(s)->failed) return false;
        if (out) *out = flint_row_builder_row(&s->br);
        return true;
    }
    if (out) *out = acc;
    return true;
}

static void op_clear(flint_state *st) {
    api_state *s = (api_state *)st;
    if (!writable(s)) return;
    tm_state_clear(s->st, NULL, 0);
    io_check(s);
}

/* ---- creation ----------------------------------------------------------------------------------- */

static flint_state *op_create(flint_ctx *ctx, flint_state_kind kind, const flint_state_desc *d);

static const flint_state_ops api_ops = {
    .create = op_create,
    .value_get = op_value_get,
    .value_update = op_value_update,
    .list_add = op_list_add,
    .list_update = op_list_update,
    .list_iter = op_list_iter,
    .map_get = op_map_get,
    .map_put = op_map_put,
    .map_remove = op_map_remove,
    .map_contains = op_map_contains,
    .map_iter = op_map_iter,
    .add = op_add,
    .get = op_get,
    .clear = op_clear,
};

static void api_state_free(api_state *s) {
    if (s->has_b1) flint_row_builder_free(&s->b1);
    if (s->has_b2) flint_row_builder_free(&s->b2);
    if (s->has_br) flint_row_builder_free(&s->br);
    if (s->has_kb) flint_row_builder_free(&s->kb);
    flint_schema_free(s->schema);
    flint_schema_free(s->key_schema);
    flint_schema_free(s->result_schema);
    free(s->name);
    free(s);
}

static bool parse_schema(flint_ctx *ctx, const char *name, const char *what, const char *text, flint_schema **out) {
    flint_err err = {0};
    if (!text || !text[0]) {
        flint_ctx_fail(ctx, "state '%s': the descriptor has no %s", name, what);
        return false;
    }
    if (flint_schema_parse(text, out, &err)) {
        flint_ctx_fail(ctx, "state '%s': %s: %s", name, what, err.msg);
        return false;
    }
    return true;
}

/* The operator list/broadcast backend: one fixed (empty) key in key group 0. */
static tm_state_backend *op_backend(tm_state_ctx *sc, flint_err *err) {
    if (sc->ob) return sc->ob;
    tm_state_config cfg = {.type = TM_BACKEND_HASHMAP, .max_parallelism = 1, .kg_first = 0, .kg_last = 0};
    if (tm_state_backend_open(&cfg, &sc->ob, err)) return NULL;
    tm_state_set_key(sc->ob, "", 0, 0);
    return sc->ob;
}

static flint_state *op_create(flint_ctx *ctx, flint_state_kind kind, const flint_state_desc *d) {
    tm_state_ctx *sc = ctx->state_ud;
    assert(sc);
    for (int i = 0; i < sc->n; i++)
        if (strcmp(sc->states[i]->name, d->name) == 0) {
            if (sc->states[i]->kind == kind) return &sc->states[i]->base;
            flint_ctx_fail(ctx, "state '%s' exists as %s state; it cannot also be %s state", d->name,
                           kind_word(sc->states[i]->kind), kind_word(kind));
            return NULL;
        }
    bool op_state = kind == FLINT_STATE_OPERATOR_LIST || kind == FLINT_STATE_BROADCAST;
    if (!op_state && !sc->b) {
        flint_ctx_fail(ctx, "keyed state '%s' needs a keyed operator (after key_by)", d->name);
        return NULL;
    }
    api_state *s = XNEW(api_state);
    s->base.ops = &api_ops;
    s->sc = sc;
    s->kind = kind;
    s->name = xstrdup(d->name);
    bool ok = parse_schema(ctx, d->name, kind == FLINT_STATE_AGGREGATING ? "accumulator schema" : "schema", d->schema,
                           &s->schema);
    if (ok && (kind == FLINT_STATE_MAP || kind == FLINT_STATE_BROADCAST))
        ok = parse_schema(ctx, d->name, "key schema", d->key_schema, &s->key_schema);
    if (ok && kind == FLINT_STATE_AGGREGATING && d->result_schema && d->result_schema[0])
        ok = parse_schema(ctx, d->name, "result schema", d->result_schema, &s->result_schema);
    if (ok && kind == FLINT_STATE_REDUCING && !(ok = d->reduce_fn.ptr != NULL))
        flint_ctx_fail(ctx, "reducing state '%s' needs a reduce_fn", d->name);
    if (ok && kind == FLINT_STATE_AGGREGATING && !(ok = d->agg_create.ptr && d->agg_add.ptr))
        flint_ctx_fail(ctx, "aggregating state '%s' needs agg_create and agg_add", d->name);
    if (ok && kind == FLINT_STATE_AGGREGATING && d->agg_result.ptr && !s->result_schema) {
        flint_ctx_fail(ctx, "aggregating state '%s': agg_result needs a result_schema", d->name);
        ok = false;
    }
    if (!ok) {
        api_state_free(s);
        return NULL;
    }
    s->reduce = (flint_reduce_fn)d->reduce_fn.ptr;
    s->create = (flint_agg_create_fn)d->agg_create.ptr;
    s->add = (flint_agg_add_fn)d->agg_add.ptr;
    s->result = (flint_agg_result_fn)d->agg_result.ptr;
    if (kind == FLINT_STATE_REDUCING || kind == FLINT_STATE_AGGREGATING) {
        flint_row_builder_init(&s->b1, s->schema);
        s->has_b1 = true;
        flint_row_builder_init(&s->b2, s->schema);
        s->has_b2 = true;
        if (s->result_schema) {
            flint_row_builder_init(&s->br, s->result_schema);
            s->has_br = true;
        }
    }
    if (s->key_schema) {
        flint_row_builder_init(&s->kb, s->key_schema);
        s->has_kb = true;
    }
    static const tm_state_kind tk[] = {
        [FLINT_STATE_VALUE] = TM_STATE_VALUE,         [FLINT_STATE_LIST] = TM_STATE_LIST,
        [FLINT_STATE_MAP] = TM_STATE_MAP,             [FLINT_STATE_REDUCING] = TM_STATE_REDUCING,
        [FLINT_STATE_AGGREGATING] = TM_STATE_AGGREGATING, [FLINT_STATE_OPERATOR_LIST] = TM_STATE_LIST,
        [FLINT_STATE_BROADCAST] = TM_STATE_MAP,
    };
    flint_err err = {0};
    tm_state_backend *b = op_state ? op_backend(sc, &err) : sc->b;
    if (!b || tm_state_register(b, d->name, tk[kind], op_state ? 0 : d->ttl_ms, &s->st, &err)) {
        flint_ctx_fail(ctx, "state '%s': %s", d->name, err.msg);
        api_state_free(s);
        return NULL;
    }
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? 2 * sc->cap : 4;
        sc->states = xrealloc(sc->states, (size_t)sc->cap * sizeof *sc->states);
    }
    sc->states[sc->n++] = s;
    return &s->base;
}

/* ---- operators ---------------------------------------------------------------------------------- */

static const char *job_conf(const tm_op *op, const char *key) {
    for (size_t i = 0; i < op->rt->n_job_config; i++) {
        const Flint__Graph__KeyValue *kv = op->rt->job_config[i];
        if (kv && kv->key && strcmp(kv->key, key) == 0) return kv->value;
    }
    return NULL;
}

int tm_state_op_config(tm_op *op, tm_state_config *cfg, char tmp_buf[1024], char name_buf[256], flint_err *err) {
    static const config_key keys[] = {CFG_STATE_BACKEND_TYPE, CFG_IO_TMP_DIRS, CFG_STATE_BACKEND_ROCKSDB_BLOCK_CACHE_SIZE,
                                      CFG_STATE_BACKEND_ROCKSDB_WRITE_BUFFER_SIZE};
    flint_config *c = op->rt->tm_config ? config_clone(op->rt->tm_config) : config_new();
    int rc = FLINT_OK;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !rc; i++) {
        const char *name = config_info(keys[i])->name, *v = job_conf(op, name);
        if (v) rc = config_set(c, name, v, "job configuration", err);
    }
    if (!rc) {
        memset(cfg, 0, sizeof *cfg);
        const char *type = config_str(c, CFG_STATE_BACKEND_TYPE);
        if (!tm_backend_type_parse(type, &cfg->type))
            rc = flint_err_set(err, FLINT_CONFIG, "state.backend.type: expected hashmap or rocksdb, got '%s'", type);
        snprintf(tmp_buf, 1024, "%s", config_str(c, CFG_IO_TMP_DIRS) ? config_str(c, CFG_IO_TMP_DIRS) : "/tmp");
        cfg->tmp_dir = tmp_buf;
        cfg->block_cache_size = config_int(c, CFG_STATE_BACKEND_ROCKSDB_BLOCK_CACHE_SIZE);
        cfg->write_buffer_size = config_int(c, CFG_STATE_BACKEND_ROCKSDB_WRITE_BUFFER_SIZE);
    }
    config_free(c);
    if (rc) return rc;
    const tm_runtime *rt = op->rt;
    int maxp = rt->max_parallelism > 0 ? rt->max_parallelism : 128;
    int par = rt->parallelism > 0 ? rt->parallelism : 1;
    cfg->max_parallelism = maxp;
    row_key_group_range(rt->subtask, maxp, par, &cfg->kg_first, &cfg->kg_last);
    if (cfg->kg_first > cfg->kg_last)
        return flint_err_set(err, FLINT_CONFIG, "parallelism %d is above the max parallelism %d", par, maxp);
    static atomic_uint seq;
    snprintf(name_buf, 256, "%s-op%d-%d-%u", rt->execution_id && rt->execution_id[0] ? rt->execution_id : "task",
             op->index, (int)getpid(), atomic_fetch_add(&seq, 1));
    cfg->name = name_buf;
    return FLINT_OK;
}

int tm_state_op_open(tm_op *op, tm_state_backend **b) {
    tm_state_ctx *sc = XNEW(tm_state_ctx);
    sc->op = op;
    op->ctx.state_ops = &api_ops;
    op->ctx.state_ud = sc;
    /* Issue 6: state restored from a checkpoint before the user's open function sees it. */
    if (!b) return tm_cp_restore_op(op->rt->cp, op, NULL);
    *b = NULL;
    tm_state_config cfg;
    char tmp[1024], name[256];
    flint_err err = {0};
    if (tm_state_op_config(op, &cfg, tmp, name, &err) || tm_state_backend_open(&cfg, b, &err))
        return tm_op_fail(op, "state backend: %s", err.msg);
    sc->b = *b;
    return tm_cp_restore_op(op->rt->cp, op, *b);
}

tm_state_backend *tm_state_op_keyed(tm_op *op) {
    tm_state_ctx *sc = op->ctx.state_ud;
    return sc && op->ctx.state_ops == &api_ops ? sc->b : NULL;
}

void tm_state_op_close(tm_op *op, tm_state_backend *b) {
    tm_state_ctx *sc = op->ctx.state_ud;
    if (sc && op->ctx.state_ops == &api_ops) {
        for (int i = 0; i < sc->n; i++) api_state_free(sc->states[i]);
        free(sc->states);
        tm_state_backend_close(sc->ob);
        if (sc->b && sc->b != b) tm_state_backend_close(sc->b);
        free(sc);
        op->ctx.state_ops = NULL;
        op->ctx.state_ud = NULL;
    }
    tm_state_backend_close(b);
}

/* ---- operator state snapshots -------------------------------------------------------------------
 * "FOS1", then per state: u8 1, u16 name length, name, u8 kind (flint_state_kind), entries
 * (u8 1, then OPERATOR_LIST: u32 len + element; BROADCAST: u32 len + key, u32 len + value),
 * u8 0; then u8 0. */

static int w32(tm_state_write_fn write, void *ud, uint32_t v) {
    uint8_t b[4];
    tm_put32le(b, v);
    return write(ud, b, 4);
}

int tm_state_op_snapshot_operator(tm_op *op, tm_state_write_fn write, void *ud, flint_err *err) {
    tm_state_ctx *sc = op->ctx.state_ud;
    int rc = write(ud, "FOS1", 4);
    static const uint8_t one = 1, zero = 0;
    for (int i = 0; sc && sc->ob && i < sc->ob->n_states && !rc; i++) {
        tm_state *st = sc->ob->states[i];
        uint8_t kind = st->kind == TM_STATE_LIST ? FLINT_STATE_OPERATOR_LIST : FLINT_STATE_BROADCAST;
        size_t nl = strlen(st->name);
        uint8_t h[2] = {(uint8_t)nl, (uint8_t)(nl >> 8)};
        if ((rc = write(ud, &one, 1)) || (rc = write(ud, h, 2)) || (rc = write(ud, st->name, nl)) ||
            (rc = write(ud, &kind, 1)))
            break;
        tm_state_iter *it = tm_state_iter_all(st);
        tm_state_entry e;
        while (!rc && tm_state_iter_next(it, &e)) {
            if (st->kind == TM_STATE_LIST) {
                const uint8_t *pos = e.value, *end = e.value + e.vlen, *el;
                size_t n;
                while (!rc && tm_state_list_next(&pos, end, &el, &n))
                    if (!(rc = write(ud, &one, 1)) && !(rc = w32(write, ud, (uint32_t)n))) rc = write(ud, el, n);
            } else if (!(rc = write(ud, &one, 1)) && !(rc = w32(write, ud, (uint32_t)e.uklen)) &&
                       !(rc = write(ud, e.ukey, e.uklen)) && !(rc = w32(write, ud, (uint32_t)e.vlen))) {
                rc = write(ud, e.value, e.vlen);
            }
        }
        tm_state_iter_close(it);
        if (!rc) rc = write(ud, &zero, 1);
    }
    if (!rc) rc = write(ud, &zero, 1);
    if (rc) return flint_err_set(err, rc, "operator state snapshot: the writer failed (%s)", flint_strerror(rc));
    return FLINT_OK;
}

/* Read exactly n bytes; false at the end or on an error. */
static bool rd(tm_state_read_fn read, void *ud, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n) {
        long r = read(ud, p, n);
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool rd_blob(tm_state_read_fn read, void *ud, uint8_t **buf, size_t *cap, size_t *len) {
    uint8_t b[4];
    if (!rd(read, ud, b, 4)) return false;
    size_t n = tm_get32le(b);
    if (n > *cap) {
        *cap = n;
        *buf = xrealloc(*buf, n);
    }
    *len = n;
    return n == 0 || rd(read, ud, *buf, n);
}

static int restore_operator(tm_op *op, tm_state_read_fn read, void *ud, bool all, flint_err *err);

int tm_state_op_restore_operator(tm_op *op, tm_state_read_fn read, void *ud, flint_err *err) {
    return restore_operator(op, read, ud, false, err);
}

int tm_state_op_restore_operator_assigned(tm_op *op, tm_state_read_fn read, void *ud, flint_err *err) {
    return restore_operator(op, read, ud, true, err);
}

static int restore_operator(tm_op *op, tm_state_read_fn read, void *ud, bool all, flint_err *err) {
    tm_state_ctx *sc = op->ctx.state_ud;
    if (!sc) return flint_err_set(err, FLINT_STATE, "operator state restore before tm_state_op_open");
    tm_state_backend *ob = op_backend(sc, err);
    if (!ob) return FLINT_ERR;
    int sub = op->rt->subtask, par = op->rt->parallelism > 0 ? op->rt->parallelism : 1;
    /* per state name: elements counted over all snapshots */
    char **names = NULL;
    long *counts = NULL;
    int nnames = 0;
    uint8_t *k = NULL, *v = NULL;
    size_t kc = 0, vc = 0, kl, vl;
    int rc = FLINT_OK;
#define BAD(...) do { rc = flint_err_set(err, FLINT_INVALID, __VA_ARGS__); goto out; } while (0)
    for (;;) {
        char magic[4];
        long r = read(ud, magic, 1);
        if (r == 0) break;
        if (r < 0 || !rd(read, ud, magic + 1, 3) || memcmp(magic, "FOS1", 4) != 0) BAD("operator state: not a snapshot");
        for (;;) {
            uint8_t more, h[2], kind;
            if (!rd(read, ud, &more, 1)) BAD("operator state: truncated");
            if (!more) break;
            char name[1100];
            if (!rd(read, ud, h, 2)) BAD("operator state: truncated");
            size_t nl = (size_t)(h[0] | h[1] << 8);
            if (!nl || nl >= sizeof name || !rd(read, ud, name, nl) || !rd(read, ud, &kind, 1))
                BAD("operator state: bad state header");
            name[nl] = '\0';
            if (kind != FLINT_STATE_OPERATOR_LIST && kind != FLINT_STATE_BROADCAST)
                BAD("operator state '%s': unknown kind %d", name, kind);
            tm_state *st;
            if ((rc = tm_state_register(ob, name, kind == FLINT_STATE_OPERATOR_LIST ? TM_STATE_LIST : TM_STATE_MAP, 0,
                                        &st, err)))
                goto out;
            int ni = 0;
            while (ni < nnames && strcmp(names[ni], name) != 0) ni++;
            if (ni == nnames) {
                names = xrealloc(names, (size_t)(nnames + 1) * sizeof *names);
                counts = xrealloc(counts, (size_t)(nnames + 1) * sizeof *counts);
                names[nnames] = xstrdup(name);
                counts[nnames++] = 0;
            }
            for (;;) {
                if (!rd(read, ud, &more, 1)) BAD("operator state '%s': truncated", name);
                if (!more) break;
                if (kind == FLINT_STATE_OPERATOR_LIST) {
                    if (!rd_blob(read, ud, &v, &vc, &vl)) BAD("operator state '%s': truncated", name);
                    if (all || counts[ni]++ % par == sub) tm_state_list_add(st, NULL, 0, v, vl);
                } else {
                    if (!rd_blob(read, ud, &k, &kc, &kl) || !rd_blob(read, ud, &v, &vc, &vl))
                        BAD("operator state '%s': truncated", name);
                    tm_state_map_put(st, NULL, 0, k, kl, v, vl);
                }
            }
        }
    }
#undef BAD
out:
    for (int i = 0; i < nnames; i++) free(names[i]);
    free(names);
    free(counts);
    free(k);
    free(v);
    return rc;
}

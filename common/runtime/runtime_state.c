/* The state half of the public job API (flint_state_*, flint_value_*, flint_list_*, flint_map_*,
 * iterators): thin dispatchers over the taskmanager's table in flint_ctx.state_ops (see
 * runtime.h), living in libflint so that job artifacts resolve them wherever they are loaded.
 * A state that could not be created is a dummy whose operations do nothing and read nothing:
 * the creation already failed the task with the reason. */
#include <assert.h>
#include <stddef.h>

#include "runtime/runtime.h"

static bool dead_get(flint_state *st, flint_row *out) { (void)st; (void)out; return false; }
static void dead_put(flint_state *st, const flint_row *v) { (void)st; (void)v; }
static void dead_update(flint_state *st, int n, const flint_row *v) { (void)st; (void)n; (void)v; }
static flint_state_iter *dead_iter(flint_state *st) { (void)st; return NULL; }
static bool dead_map_get(flint_state *st, const flint_row *k, flint_row *o) { (void)st; (void)k; (void)o; return false; }
static void dead_map_put(flint_state *st, const flint_row *k, const flint_row *v) { (void)st; (void)k; (void)v; }
static bool dead_map_has(flint_state *st, const flint_row *k) { (void)st; (void)k; return false; }
static void dead_clear(flint_state *st) { (void)st; }

static const flint_state_ops dead_ops = {
    .value_get = dead_get, .value_update = dead_put, .list_add = dead_put, .list_update = dead_update,
    .list_iter = dead_iter, .map_get = dead_map_get, .map_put = dead_map_put, .map_remove = dead_put,
    .map_contains = dead_map_has, .map_iter = dead_iter, .add = dead_put, .get = dead_get, .clear = dead_clear,
};
static flint_state dead_state = {&dead_ops};

static flint_state *create(flint_ctx *ctx, flint_state_kind kind, const flint_state_desc *desc) {
    assert(ctx);
    if (!desc || !desc->name || !desc->name[0]) {
        flint_ctx_fail(ctx, "a state descriptor needs a name");
        return &dead_state;
    }
    if (!ctx->state_ops || !ctx->state_ops->create) {
        flint_ctx_fail(ctx, "state '%s': this operator has no state (keyed state needs a keyed operator)",
                       desc->name);
        return &dead_state;
    }
    flint_state *st = ctx->state_ops->create(ctx, kind, desc);
    return st ? st : &dead_state;
}

flint_state *flint_state_value(flint_ctx *ctx, const flint_state_desc *d) { return create(ctx, FLINT_STATE_VALUE, d); }
flint_state *flint_state_list(flint_ctx *ctx, const flint_state_desc *d) { return create(ctx, FLINT_STATE_LIST, d); }
flint_state *flint_state_map(flint_ctx *ctx, const flint_state_desc *d) { return create(ctx, FLINT_STATE_MAP, d); }
flint_state *flint_state_reducing(flint_ctx *ctx, const flint_state_desc *d) { return create(ctx, FLINT_STATE_REDUCING, d); }
flint_state *flint_state_aggregating(flint_ctx *ctx, const flint_state_desc *d) {
    return create(ctx, FLINT_STATE_AGGREGATING, d);
}
flint_state *flint_state_operator_list(flint_ctx *ctx, const flint_state_desc *d) {
    return create(ctx, FLINT_STATE_OPERATOR_LIST, d);
}
flint_state *flint_state_broadcast(flint_ctx *ctx, const flint_state_desc *d) { return create(ctx, FLINT_STATE_BROADCAST, d); }

#define ST(st) ((st) ? (st) : &dead_state)

bool flint_value_get(flint_state *st, flint_row *out) { return ST(st)->ops->value_get(ST(st), out); }
void flint_value_update(flint_state *st, const flint_row *value) { ST(st)->ops->value_update(ST(st), value); }
void flint_list_add(flint_state *st, const flint_row *value) { ST(st)->ops->list_add(ST(st), value); }
void flint_list_update(flint_state *st, int n, const flint_row *values) { ST(st)->ops->list_update(ST(st), n, values); }
flint_state_iter *flint_list_iter(flint_state *st) { return ST(st)->ops->list_iter(ST(st)); }
bool flint_map_get(flint_state *st, const flint_row *key, flint_row *out) { return ST(st)->ops->map_get(ST(st), key, out); }
void flint_map_put(flint_state *st, const flint_row *key, const flint_row *value) {
    ST(st)->ops->map_put(ST(st), key, value);
}
void flint_map_remove(flint_state *st, const flint_row *key) { ST(st)->ops->map_remove(ST(st), key); }
bool flint_map_contains(flint_state *st, const flint_row *key) { return ST(st)->ops->map_contains(ST(st), key); }
flint_state_iter *flint_map_iter(flint_state *st) { return ST(st)->ops->map_iter(ST(st)); }
void flint_state_add(flint_state *st, const flint_row *value) { ST(st)->ops->add(ST(st), value); }
bool flint_state_get(flint_state *st, flint_row *out) { return ST(st)->ops->get(ST(st), out); }
void flint_state_clear(flint_state *st) { ST(st)->ops->clear(ST(st)); }

/* A NULL iterator is an empty one (a dummy state's, or an empty list's). */
bool flint_state_iter_next(flint_state_iter *it, flint_row *key, flint_row *value) {
    return it ? it->next(it, key, value) : false;
}
void flint_state_iter_close(flint_state_iter *it) {
    if (it) it->close(it);
}

/* Benchmark job: keyed value state of a chosen size, kept while checkpoints are taken (the
 * `checkpoint` and `recovery` benchmarks).
 *
 *   flint run -p 2 build/bench/jobs/keyed_state.so [--keys N] [--value-bytes B] [--rate R]
 *
 * datagen (id, R rows/s over all subtasks, unbounded) -> fill (flat_map) -> keyBy(k) -> store
 * (keyed process: value state (k, v)) -> blackhole. The first row of each source subtask fills
 * that subtask's share of the keys 0..N-1 at full speed (subtask i of p: the keys i, i+p, ...),
 * so the state reaches N values of B random letters (about N * (B + 40) bytes, incompressible
 * enough that RocksDB's compression does not shrink it); then every row updates one key
 * (mix(id) % N) with a new value. A restored source goes on from its checkpointed position,
 * so a restore does not fill again. At parallelism p on p taskmanagers the keyed exchange crosses
 * them: every keyed task has p input channels to align barriers on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

#define VALUE_MAX (1 << 20)

typedef struct fill_data {
    int64_t keys;
    size_t value_len;
    uint64_t rng;
    char *value;
} fill_data;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A new value of random lowercase letters, 8 from each 64-bit random number. */
static void new_value(fill_data *d) {
    for (size_t i = 0; i < d->value_len; i += 8) {
        d->rng = mix64(d->rng + UINT64_C(0x9e3779b97f4a7c15));
        uint64_t r = d->rng;
        for (size_t k = i; k < i + 8 && k < d->value_len; k++, r >>= 8) d->value[k] = (char)('a' + (r & 0xff) % 26);
    }
}

static void emit_key(fill_data *d, flint_collector *out, int64_t k) {
    new_value(d);
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_long(b, 0, k);
    flint_row_set_string(b, 1, d->value, d->value_len);
    flint_emit(out);
}

int fill_open(flint_ctx *ctx) {
    fill_data *d = calloc(1, sizeof *d);
    const char *k = flint_ctx_param(ctx, "keys"), *v = flint_ctx_param(ctx, "value-bytes");
    long long keys = k ? atoll(k) : 100000, len = v ? atoll(v) : 1000;
    if (!d || keys < 1 || len < 0 || len > VALUE_MAX) {
        free(d);
        flint_ctx_fail(ctx, "keyed_state: --keys must be >= 1 and --value-bytes in 0..%d", VALUE_MAX);
        return 1;
    }
    d->keys = keys;
    d->value_len = (size_t)len;
    d->value = malloc(d->value_len + 1);
    d->rng = (uint64_t)flint_ctx_subtask(ctx) + 1;
    if (!d->value) {
        free(d);
        return 1;
    }
    flint_ctx_set_user_data(ctx, d);
    return 0;
}

void fill_close(flint_ctx *ctx) {
    fill_data *d = flint_ctx_user_data(ctx);
    if (!d) return;
    free(d->value);
    free(d);
}

/* flat_map (id) -> (k, v): the subtask's share of the keys on its first row, then one update. */
void fill(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    fill_data *d = flint_ctx_user_data(ctx);
    int64_t id = flint_row_get_long(in, 0);
    int p = flint_ctx_parallelism(ctx), sub = flint_ctx_subtask(ctx);
    if (id == sub)
        for (int64_t k = sub; k < d->keys; k += p) emit_key(d, out, k);
    emit_key(d, out, (int64_t)(mix64((uint64_t)id) % (uint64_t)d->keys));
}

int store_open(flint_ctx *ctx) {
    flint_state_desc desc = {.name = "value", .schema = "k BIGINT, v STRING"};
    flint_state *st = flint_state_value(ctx, &desc);
    flint_ctx_set_user_data(ctx, st);
    return st ? 0 : 1;
}

/* keyed process on (k, v) keyed by k: the row becomes the key's value. */
void store(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)out;
    flint_value_update(flint_ctx_user_data(ctx), in);
}

static const char usage[] = "usage: keyed_state.so [--keys N] [--value-bytes B] [--rate ROWS_PER_SECOND]";

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *keys = "100000", *value = "1000", *rate = "1000";
    for (int i = 1; i < argc; i += 2) {
        const char **dst = strcmp(argv[i], "--keys") == 0          ? &keys
                           : strcmp(argv[i], "--value-bytes") == 0 ? &value
                           : strcmp(argv[i], "--rate") == 0        ? &rate
                                                                   : NULL;
        if (!dst || i + 1 >= argc) {
            flint_env_fail(env, "%s '%s'; %s", dst ? "missing value of" : "unknown argument", argv[i], usage);
            return FLINT_INVALID;
        }
        *dst = argv[i + 1];
    }
    char *end;
    double rps = strtod(rate, &end);
    if (*end || !(rps > 0)) {
        flint_env_fail(env, "--rate: expected rows per second > 0, got '%s'", rate);
        return FLINT_INVALID;
    }
    flint_stream *src = flint_uid(flint_source_datagen(env, "id BIGINT", -1, rps), "keyed-state-source");
    flint_stream *kv = flint_name(flint_flat_map(src, FLINT_FN(fill), "k BIGINT, v STRING"), "Fill");
    flint_param(kv, "keys", keys);
    flint_param(kv, "value-bytes", value);
    flint_with_close(flint_with_open(kv, FLINT_FN(fill_open)), FLINT_FN(fill_close));
    flint_uid(kv, "keyed-state-fill");
    flint_stream *st = flint_keyed_process(flint_key_by(kv, "k"), FLINT_FN(store), (flint_fn){0}, "k BIGINT");
    flint_uid(flint_with_open(flint_name(st, "Store"), FLINT_FN(store_open)), "keyed-state-store");
    flint_sink_blackhole(st);
    return flint_execute(env, "Keyed State");
}

/* Test jobs of tests/cluster/test_time.sh: connected streams, side outputs, broadcast state and
 * processing-time timers, one per --mode, each writing text part files under --output DIR.
 *
 *   flint run build/tests/jobs/time_jobs.so --mode MODE --output DIR
 *
 * connect_keyed  A (k, v) for k1..k20 and B (k, w) for k5..k25, connected by key: a keyed
 *                co_process keeps each side in value state and writes "k v w" once both came.
 * connect        the same streams, not keyed: "A v" and "B w" for every row.
 * side           1..100 through a process function: even numbers to the main output (DIR/main),
 *                odd ones to side output "odd" as (n, n*n) (DIR/odd, parallelism 1: over the
 *                network), numbers > 90 also to side output "big" as a string (DIR/big, chained);
 *                and a keyed process sending n % 10 == 0 to its side output "tens" (DIR/tens).
 * broadcast      1..10 and broadcast rules a, b, c: every parallel instance stores each rule in
 *                broadcast state and writes "rule <r> <subtask>"; rows write "n <n>".
 * broadcast_ro   as broadcast, but the non-broadcast side writes broadcast state: must fail.
 * proctime       10 rows at 10 rows/s keyed by id; rows 0..4 register a processing-time timer
 *                100 ms ahead; on_timer writes "fired <id> <ok>" (ok 1: on time, right key). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

static const char *const A_ROWS[] = {"k1,1",   "k2,2",   "k3,3",   "k4,4",   "k5,5",   "k6,6",   "k7,7",
                                     "k8,8",   "k9,9",   "k10,10", "k11,11", "k12,12", "k13,13", "k14,14",
                                     "k15,15", "k16,16", "k17,17", "k18,18", "k19,19", "k20,20"};
static const char *const B_ROWS[] = {"k5,500",   "k6,600",   "k7,700",   "k8,800",   "k9,900",   "k10,1000",
                                     "k11,1100", "k12,1200", "k13,1300", "k14,1400", "k15,1500", "k16,1600",
                                     "k17,1700", "k18,1800", "k19,1900", "k20,2000", "k21,2100", "k22,2200",
                                     "k23,2300", "k24,2400", "k25,2500"};

/* ---- connect_keyed ---------------------------------------------------------------------------- */

typedef struct pair_data {
    flint_state *a, *b;
    flint_schema *schema;
    flint_row_builder vb;
} pair_data;

int pair_open(flint_ctx *ctx) {
    pair_data *d = calloc(1, sizeof *d);
    flint_err err = {0};
    flint_schema_parse("v BIGINT", &d->schema, &err);
    flint_row_builder_init(&d->vb, d->schema);
    flint_state_desc da = {.name = "a", .schema = "v BIGINT"}, db = {.name = "b", .schema = "v BIGINT"};
    d->a = flint_state_value(ctx, &da);
    d->b = flint_state_value(ctx, &db);
    flint_ctx_set_user_data(ctx, d);
    return d->a && d->b ? 0 : 1;
}

void pair_close(flint_ctx *ctx) {
    pair_data *d = flint_ctx_user_data(ctx);
    if (!d) return;
    flint_row_builder_free(&d->vb);
    flint_schema_free(d->schema);
    free(d);
}

/* Store this side's value; when the other side is there, write "k a b". */
static void pair_side(flint_ctx *ctx, const flint_row *in, flint_collector *out, bool first) {
    pair_data *d = flint_ctx_user_data(ctx);
    flint_row_builder_reset(&d->vb);
    flint_row_set_long(&d->vb, 0, flint_row_get_long(in, 1));
    flint_row v = flint_row_builder_row(&d->vb);
    flint_value_update(first ? d->a : d->b, &v);
    flint_row other;
    if (!flint_value_get(first ? d->b : d->a, &other)) return;
    flint_row key = flint_ctx_current_key(ctx);
    flint_row_builder *b = flint_out_row(out);
    flint_row_copy_field(b, 0, &key, 0);
    flint_row_set_long(b, 1, first ? flint_row_get_long(in, 1) : flint_row_get_long(&other, 0));
    flint_row_set_long(b, 2, first ? flint_row_get_long(&other, 0) : flint_row_get_long(in, 1));
    flint_emit(out);
}
void pair_a(flint_ctx *ctx, const flint_row *in, flint_collector *out) { pair_side(ctx, in, out, true); }
void pair_b(flint_ctx *ctx, const flint_row *in, flint_collector *out) { pair_side(ctx, in, out, false); }

/* ---- connect ------------------------------------------------------------------------------------ */

static void tagged(flint_collector *out, const char *src, const flint_row *in) {
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_cstring(b, 0, src);
    flint_row_set_long(b, 1, flint_row_get_long(in, 1));
    flint_emit(out);
}
void from_a(flint_ctx *ctx, const flint_row *in, flint_collector *out) { (void)ctx; tagged(out, "A", in); }
void from_b(flint_ctx *ctx, const flint_row *in, flint_collector *out) { (void)ctx; tagged(out, "B", in); }

/* ---- side outputs ---------------------------------------------------------------------------------- */

void split_parity(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx;
    int64_t n = flint_row_get_long(in, 0);
    if (n % 2 == 0) {
        flint_emit_row(out, in);
    } else {
        flint_row_builder *b = flint_side_out_row(out, "odd");
        flint_row_set_long(b, 0, n);
        flint_row_set_long(b, 1, n * n);
        flint_emit_side(out, "odd");
    }
    if (n > 90) {
        flint_row_builder *b = flint_side_out_row(out, "big");
        char s[32];
        snprintf(s, sizeof s, "big-%lld", (long long)n);
        flint_row_set_cstring(b, 0, s);
        flint_emit_side(out, "big");
    }
}

void keyed_tens(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    int64_t n = flint_row_get_long(in, 0);
    if (n % 10 == 0) {
        flint_row key = flint_ctx_current_key(ctx);
        flint_row_builder *b = flint_side_out_row(out, "tens");
        flint_row_set_long(b, 0, n);
        flint_row_set_long(b, 1, flint_row_get_long(&key, 0));
        flint_emit_side(out, "tens");
    }
}

void mod3(flint_ctx *ctx, const flint_row *in, flint_row_builder *key) {
    (void)ctx;
    flint_row_set_long(key, 0, flint_row_get_long(in, 0) % 3);
}

/* ---- broadcast ---------------------------------------------------------------------------------- */

typedef struct bc_data {
    flint_state *rules;
    flint_schema *ks, *vs;
    flint_row_builder kb, vb;
} bc_data;

int bc_open(flint_ctx *ctx) {
    bc_data *d = calloc(1, sizeof *d);
    flint_err err = {0};
    flint_schema_parse("rule STRING", &d->ks, &err);
    flint_schema_parse("seen BIGINT", &d->vs, &err);
    flint_row_builder_init(&d->kb, d->ks);
    flint_row_builder_init(&d->vb, d->vs);
    flint_state_desc desc = {.name = "rules", .key_schema = "rule STRING", .schema = "seen BIGINT"};
    d->rules = flint_state_broadcast(ctx, &desc);
    flint_ctx_set_user_data(ctx, d);
    return d->rules ? 0 : 1;
}

void bc_close(flint_ctx *ctx) {
    bc_data *d = flint_ctx_user_data(ctx);
    if (!d) return;
    flint_row_builder_free(&d->kb);
    flint_row_builder_free(&d->vb);
    flint_schema_free(d->ks);
    flint_schema_free(d->vs);
    free(d);
}

static void put_rule(bc_data *d, const char *rule, size_t len) {
    flint_row_builder_reset(&d->kb);
    flint_row_set_string(&d->kb, 0, rule, len);
    flint_row_builder_reset(&d->vb);
    flint_row_set_long(&d->vb, 0, 1);
    flint_row k = flint_row_builder_row(&d->kb), v = flint_row_builder_row(&d->vb);
    flint_map_put(d->rules, &k, &v);
}

void bc_rule(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    bc_data *d = flint_ctx_user_data(ctx);
    size_t len;
    const char *r = flint_row_get_string(in, 0, &len);
    put_rule(d, r, len);
    flint_row k = flint_row_builder_row(&d->kb);
    if (!flint_map_contains(d->rules, &k)) flint_ctx_fail(ctx, "broadcast state lost rule %.*s", (int)len, r);
    flint_row_builder *b = flint_out_row(out);
    char s[64];
    snprintf(s, sizeof s, "rule %.*s %d", (int)len, r, flint_ctx_subtask(ctx));
    flint_row_set_cstring(b, 0, s);
    flint_emit(out);
}

void bc_value(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx;
    flint_row_builder *b = flint_out_row(out);
    char s[64];
    snprintf(s, sizeof s, "n %lld", (long long)flint_row_get_long(in, 0));
    flint_row_set_cstring(b, 0, s);
    flint_emit(out);
}

void bc_value_writes(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    put_rule(flint_ctx_user_data(ctx), "x", 1);   /* not allowed here: the task fails */
    bc_value(ctx, in, out);
}

/* ---- processing time ---------------------------------------------------------------------------- */

typedef struct pt_data {
    flint_state *at;
    flint_schema *s;
    flint_row_builder b;
} pt_data;

int pt_open(flint_ctx *ctx) {
    pt_data *d = calloc(1, sizeof *d);
    flint_err err = {0};
    flint_schema_parse("at BIGINT", &d->s, &err);
    flint_row_builder_init(&d->b, d->s);
    flint_state_desc desc = {.name = "at", .schema = "at BIGINT"};
    d->at = flint_state_value(ctx, &desc);
    flint_ctx_set_user_data(ctx, d);
    return d->at ? 0 : 1;
}

void pt_close(flint_ctx *ctx) {
    pt_data *d = flint_ctx_user_data(ctx);
    if (!d) return;
    flint_row_builder_free(&d->b);
    flint_schema_free(d->s);
    free(d);
}

void pt_process(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)out;
    pt_data *d = flint_ctx_user_data(ctx);
    if (flint_row_get_long(in, 0) >= 5) return;
    int64_t at = flint_ctx_current_processing_time(ctx) + 100;
    flint_row_builder_reset(&d->b);
    flint_row_set_long(&d->b, 0, at);
    flint_row v = flint_row_builder_row(&d->b);
    flint_value_update(d->at, &v);
    flint_timer_register_processing_time(ctx, at);
    flint_timer_register_processing_time(ctx, at);   /* the same timer: fires once */
}

void pt_on_timer(flint_ctx *ctx, int64_t time, flint_time_domain domain, flint_collector *out) {
    pt_data *d = flint_ctx_user_data(ctx);
    flint_row at, key = flint_ctx_current_key(ctx);
    bool ok = domain == FLINT_PROCESSING_TIME && flint_value_get(d->at, &at) &&
              flint_row_get_long(&at, 0) == time && flint_ctx_current_processing_time(ctx) >= time &&
              flint_ctx_timestamp(ctx) == FLINT_NO_TIMESTAMP;
    flint_row_builder *b = flint_out_row(out);
    char s[64];
    snprintf(s, sizeof s, "fired %lld %d", (long long)flint_row_get_long(&key, 0), ok);
    flint_row_set_cstring(b, 0, s);
    flint_emit(out);
}

/* ---- main ------------------------------------------------------------------------------------------ */

static char *path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *mode = NULL, *output = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
        else if (strcmp(argv[i], "--output") == 0) output = argv[i + 1];
    }
    if (!mode || !output) {
        flint_env_fail(env, "usage: time_jobs.so --mode MODE --output DIR");
        return FLINT_INVALID;
    }
    char *p1 = path(output, "main"), *p2 = path(output, "odd"), *p3 = path(output, "big"),
         *p4 = path(output, "tens");
    if (strcmp(mode, "connect_keyed") == 0 || strcmp(mode, "connect") == 0) {
        flint_stream *a = flint_from_elements(env, "k STRING, v BIGINT", 20, A_ROWS);
        flint_stream *b = flint_from_elements(env, "k STRING, w BIGINT", 21, B_ROWS);
        flint_stream *r;
        if (strcmp(mode, "connect") == 0) {
            r = flint_co_process(flint_connect(a, b), FLINT_FN(from_a), FLINT_FN(from_b), (flint_fn){0},
                                 "src STRING, n BIGINT");
        } else {
            r = flint_co_process(flint_connect_keyed(flint_key_by(a, "k"), flint_key_by(b, "k")), FLINT_FN(pair_a),
                                 FLINT_FN(pair_b), (flint_fn){0}, "k STRING, a BIGINT, b BIGINT");
            r = flint_with_close(flint_with_open(r, FLINT_FN(pair_open)), FLINT_FN(pair_close));
        }
        flint_sink_text_file(r, p1);
    } else if (strcmp(mode, "side") == 0) {
        flint_stream *s = flint_from_sequence(env, 1, 100);
        flint_stream *even = flint_process(s, FLINT_FN(split_parity), "n BIGINT");
        flint_stream *odd = flint_side_output(even, "odd", "n BIGINT, sq BIGINT");
        flint_stream *big = flint_side_output(even, "big", "s STRING");
        flint_sink_text_file(even, p1);
        flint_set_parallelism(flint_sink_text_file(odd, p2), 1);
        flint_sink_text_file(big, p3);
        flint_stream *k = flint_keyed_process(flint_key_by_fn(s, FLINT_FN(mod3), "m BIGINT"), FLINT_FN(keyed_tens),
                                              (flint_fn){0}, "n BIGINT");
        flint_sink_blackhole(k);
        flint_sink_text_file(flint_side_output(k, "tens", "n BIGINT, m BIGINT"), p4);
    } else if (strcmp(mode, "broadcast") == 0 || strcmp(mode, "broadcast_ro") == 0) {
        static const char *const rules[] = {"a", "b", "c"};
        flint_stream *s = flint_from_sequence(env, 1, 10);
        flint_stream *bc = flint_set_parallelism(flint_from_elements(env, "rule STRING", 3, rules), 1);
        flint_fn value = strcmp(mode, "broadcast") == 0 ? FLINT_FN(bc_value) : FLINT_FN(bc_value_writes);
        flint_stream *r = flint_broadcast_process(s, bc, value, FLINT_FN(bc_rule), "line STRING");
        r = flint_with_close(flint_with_open(r, FLINT_FN(bc_open)), FLINT_FN(bc_close));
        flint_sink_text_file(r, p1);
    } else if (strcmp(mode, "proctime") == 0) {
        flint_stream *s = flint_source_datagen(env, "id BIGINT", 10, 10);
        flint_stream *r = flint_keyed_process(flint_key_by(s, "id"), FLINT_FN(pt_process), FLINT_FN(pt_on_timer),
                                              "line STRING");
        r = flint_with_close(flint_with_open(r, FLINT_FN(pt_open)), FLINT_FN(pt_close));
        flint_sink_text_file(r, p1);
    } else {
        flint_env_fail(env, "unknown mode '%s'", mode);
    }
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    return flint_execute(env, mode);
}

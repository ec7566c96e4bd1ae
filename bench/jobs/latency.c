/* Benchmark job: source-to-sink latency across two taskmanagers (the `latency` benchmark).
 * datagen (id) at a fixed rate -> map stamping CLOCK_MONOTONIC ns -> a sink in its own slot
 * sharing group, so that on taskmanagers with one slot each the sink runs in the other process
 * and every record crosses the loopback network. The sink records now - stamp per record (both
 * clocks are the same machine's monotonic clock), skips the first --skip records (start-up:
 * connection set-up, partition requests), and at close writes to --output FILE:
 *   count N
 *   p50 NS
 *   p99 NS
 *   p999 NS
 *   max NS
 *
 *   flint run -D execution.buffer-timeout=1ms build/bench/jobs/latency.so \
 *       --count 400000 --rate 100000 --skip 100000 --output /tmp/lat.txt */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <flint/flint.h>

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void stamp(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_set_long(out, 0, flint_row_get_long(in, 0));
    flint_row_set_long(out, 1, mono_ns());
}

typedef struct lat_state {
    int64_t *lat;
    size_t n, cap;
    int64_t skip;
} lat_state;

int lat_open(flint_ctx *ctx) {
    lat_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    const char *skip = flint_ctx_param(ctx, "skip");
    s->skip = skip ? atoll(skip) : 0;
    s->cap = 1 << 20;
    s->lat = malloc(s->cap * sizeof *s->lat);
    if (!s->lat) {
        free(s);
        return -1;
    }
    flint_ctx_set_user_data(ctx, s);
    return 0;
}

void lat_sink(flint_ctx *ctx, const flint_row *in) {
    int64_t now = mono_ns();
    lat_state *s = flint_ctx_user_data(ctx);
    if (flint_row_get_long(in, 0) < s->skip) return;
    if (s->n == s->cap) {
        int64_t *bigger = realloc(s->lat, 2 * s->cap * sizeof *s->lat);
        if (!bigger) {
            flint_ctx_fail(ctx, "out of memory for %zu latencies", 2 * s->cap);
            return;
        }
        s->lat = bigger;
        s->cap *= 2;
    }
    s->lat[s->n++] = now - flint_row_get_long(in, 1);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of the sorted v[0..n). */
static int64_t quantile(const int64_t *v, size_t n, double q) {
    if (n == 0) return -1;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

void lat_close(flint_ctx *ctx) {
    lat_state *s = flint_ctx_user_data(ctx);
    if (!s) return;
    const char *path = flint_ctx_param(ctx, "output");
    if (path) {
        qsort(s->lat, s->n, sizeof *s->lat, cmp_i64);
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "count %zu\np50 %lld\np99 %lld\np999 %lld\nmax %lld\n", s->n,
                    (long long)quantile(s->lat, s->n, 0.5), (long long)quantile(s->lat, s->n, 0.99),
                    (long long)quantile(s->lat, s->n, 0.999), (long long)(s->n ? s->lat[s->n - 1] : -1));
            if (fclose(f) == 0) rename(tmp, path);
        }
    }
    free(s->lat);
    free(s);
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *count = "400000", *rate = "100000", *skip = "100000", *output = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument %s needs a value", argv[i]);
            return FLINT_INVALID;
        }
        if (strcmp(argv[i], "--count") == 0) count = argv[i + 1];
        else if (strcmp(argv[i], "--rate") == 0) rate = argv[i + 1];
        else if (strcmp(argv[i], "--skip") == 0) skip = argv[i + 1];
        else if (strcmp(argv[i], "--output") == 0) output = argv[i + 1];
        else {
            flint_env_fail(env, "unknown argument %s; usage: [--count N] [--rate R] [--skip N] --output FILE", argv[i]);
            return FLINT_INVALID;
        }
    }
    if (!output) {
        flint_env_fail(env, "--output FILE is required");
        return FLINT_INVALID;
    }
    flint_env_set_parallelism(env, 1);
    flint_stream *src = flint_source_datagen(env, "id BIGINT", atoll(count), atof(rate));
    flint_stream *stamped = flint_name(flint_map(src, FLINT_FN(stamp), "id BIGINT, sent_ns BIGINT"), "Stamp");
    flint_stream *sink = flint_name(flint_sink(stamped, FLINT_FN(lat_sink)), "Latency sink");
    flint_slot_sharing_group(sink, "sink");
    flint_param(sink, "skip", skip);
    flint_param(sink, "output", output);
    flint_with_open(sink, FLINT_FN(lat_open));
    flint_with_close(sink, FLINT_FN(lat_close));
    return flint_execute(env, "Latency");
}

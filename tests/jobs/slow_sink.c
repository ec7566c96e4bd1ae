/* A test job for backpressure (tests/cluster): a fast source behind a slow sink.
 *
 *   flint run build/tests/jobs/slow_sink.so --output DIR [--count N] [--sleep-ms MS]
 *                                           [--payload-bytes B] [--rate R]
 *
 * datagen (id BIGINT, unbounded unless --count, as fast as possible unless --rate) -> a map that
 * adds a payload of B bytes (default 512, so network buffers fill after a few dozen rows) ->
 * rebalance -> a sink function that sleeps MS ms (default 5) per row and writes the row's id as
 * a line to DIR/part-<subtask>. The source is backpressured; when the job ends every id
 * 0..N-1 is in exactly one part file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <flint/flint.h>

#define MAX_PAYLOAD 65536
static const unsigned char zeros[MAX_PAYLOAD];

typedef struct sink_state {
    FILE *f;
    long sleep_ms;
} sink_state;

void add_payload(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    const char *b = flint_ctx_param(ctx, "payload-bytes");
    long n = b ? atol(b) : 0;
    if (n < 0 || n > MAX_PAYLOAD) n = MAX_PAYLOAD;
    flint_row_set_long(out, 0, flint_row_get_long(in, 0));
    flint_row_set_bytes(out, 1, zeros, (size_t)n);
}

int slow_sink_open(flint_ctx *ctx) {
    const char *dir = flint_ctx_param(ctx, "output");
    const char *ms = flint_ctx_param(ctx, "sleep-ms");
    if (!dir) {
        flint_ctx_fail(ctx, "slow_sink: no output directory");
        return -1;
    }
    mkdir(dir, 0777);
    char path[4096];
    snprintf(path, sizeof path, "%s/part-%d", dir, flint_ctx_subtask(ctx));
    sink_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->f = fopen(path, "w");
    if (!s->f) {
        flint_ctx_fail(ctx, "slow_sink: cannot create %s: %s", path, strerror(errno));
        free(s);
        return -1;
    }
    s->sleep_ms = ms ? atol(ms) : 5;
    flint_ctx_set_user_data(ctx, s);
    return 0;
}

void slow_sink(flint_ctx *ctx, const flint_row *in) {
    sink_state *s = flint_ctx_user_data(ctx);
    if (s->sleep_ms > 0) {
        struct timespec ts = {s->sleep_ms / 1000, (s->sleep_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    fprintf(s->f, "%lld\n", (long long)flint_row_get_long(in, 0));
}

void slow_sink_close(flint_ctx *ctx) {
    sink_state *s = flint_ctx_user_data(ctx);
    if (!s) return;
    fclose(s->f);
    free(s);
    flint_ctx_set_user_data(ctx, NULL);
}

static const char usage[] =
    "usage: slow_sink.so --output DIR [--count N] [--sleep-ms MS] [--payload-bytes B] [--rate R]";

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *output = NULL, *sleep_ms = "5", *payload = "512";
    long long count = -1;
    double rate = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", argv[i], usage);
            return FLINT_INVALID;
        }
        const char *v = argv[i + 1];
        char *end = NULL;
        if (strcmp(argv[i], "--output") == 0) output = v;
        else if (strcmp(argv[i], "--sleep-ms") == 0 && strtol(v, &end, 10) >= 0 && !*end) sleep_ms = v;
        else if (strcmp(argv[i], "--payload-bytes") == 0 && strtol(v, &end, 10) >= 0 && !*end &&
                 atol(v) <= MAX_PAYLOAD) payload = v;
        else if (strcmp(argv[i], "--count") == 0 && (count = strtoll(v, &end, 10)) >= 0 && !*end) {}
        else if (strcmp(argv[i], "--rate") == 0 && (rate = strtod(v, &end)) >= 0 && !*end) {}
        else {
            flint_env_fail(env, "bad argument '%s %s'; %s", argv[i], v, usage);
            return FLINT_INVALID;
        }
    }
    if (!output) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    flint_env_set_param(env, "output", output);
    flint_env_set_param(env, "sleep-ms", sleep_ms);
    flint_env_set_param(env, "payload-bytes", payload);
    flint_stream *ids = flint_source_datagen(env, "id BIGINT", count, rate);
    flint_stream *rows = flint_name(flint_map(ids, FLINT_FN(add_payload), "id BIGINT, payload BYTES"), "Payload");
    flint_stream *sink = flint_sink(flint_rebalance(rows), FLINT_FN(slow_sink));
    sink = flint_with_open(sink, FLINT_FN(slow_sink_open));
    sink = flint_with_close(sink, FLINT_FN(slow_sink_close));
    flint_name(sink, "Slow Sink");
    return flint_execute(env, "Slow Sink");
}

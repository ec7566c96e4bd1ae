/* Benchmark job: a keyed exchange (the `shuffle` benchmark and issue 3's keyBy figure).
 * datagen (id) -> map (k = id % keys, n = 1, payload) -> keyBy(k) -> rolling count (sum of n)
 * -> blackhole. At parallelism 2 on two taskmanagers with one slot each, half of the records
 * cross the loopback network between the taskmanagers, the other half a local channel.
 *
 *   flint run -p 2 build/bench/jobs/keyby_count.so [--count N] [--keys K] [--payload-bytes B]
 *
 * The payload is B bytes (default 4) cut from a fixed string, so a serialized row is
 * 36 + B bytes (bitmap 8, three slots 24, the payload) plus a 4-byte length on the wire: 40
 * bytes by default, 1024 with --payload-bytes 988. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

#define PAYLOAD_MAX 65536

typedef struct keyed_state {
    int64_t keys;
    size_t payload_len;
    char text[PAYLOAD_MAX + 64];
} keyed_state;

void to_keyed(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    keyed_state *s = flint_ctx_user_data(ctx);
    int64_t id = flint_row_get_long(in, 0);
    flint_row_set_long(out, 0, id % s->keys);
    flint_row_set_long(out, 1, 1);
    flint_row_set_string(out, 2, s->text + (id & 63), s->payload_len);
}

int keyed_open(flint_ctx *ctx) {
    keyed_state *s = malloc(sizeof *s);
    if (!s) return -1;
    const char *k = flint_ctx_param(ctx, "keys"), *p = flint_ctx_param(ctx, "payload-bytes");
    s->keys = k ? atoll(k) : 1000;
    if (s->keys < 1) s->keys = 1;
    long long len = p ? atoll(p) : 4;
    s->payload_len = len < 0 ? 0 : len > PAYLOAD_MAX ? PAYLOAD_MAX : (size_t)len;
    for (size_t i = 0; i < sizeof s->text; i++) s->text[i] = (char)('a' + (i * 7 + i / 26) % 26);
    flint_ctx_set_user_data(ctx, s);
    return 0;
}

void keyed_close(flint_ctx *ctx) { free(flint_ctx_user_data(ctx)); }

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *count = "10000000", *keys = "1000", *payload = "4";
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument %s needs a value", argv[i]);
            return FLINT_INVALID;
        }
        if (strcmp(argv[i], "--count") == 0) count = argv[i + 1];
        else if (strcmp(argv[i], "--keys") == 0) keys = argv[i + 1];
        else if (strcmp(argv[i], "--payload-bytes") == 0) payload = argv[i + 1];
        else {
            flint_env_fail(env, "unknown argument %s; usage: [--count N] [--keys K] [--payload-bytes B]", argv[i]);
            return FLINT_INVALID;
        }
    }
    flint_stream *src = flint_source_datagen(env, "id BIGINT", atoll(count), 0);
    flint_stream *keyed = flint_name(flint_map(src, FLINT_FN(to_keyed), "k BIGINT, n BIGINT, payload STRING"), "Key");
    flint_param(keyed, "keys", keys);
    flint_param(keyed, "payload-bytes", payload);
    flint_with_open(keyed, FLINT_FN(keyed_open));
    flint_with_close(keyed, FLINT_FN(keyed_close));
    flint_sink_blackhole(flint_name(flint_sum(flint_key_by(keyed, "k"), "n"), "Count"));
    return flint_execute(env, "KeyBy Count");
}

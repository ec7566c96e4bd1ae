/* WordCount from Kafka to Kafka: lines of an input topic, words counted per event-time tumbling
 * window (event time = the Kafka record timestamps, watermarks per partition inside the source),
 * results written as JSON records to an output topic, keyed by the word.
 *
 *   flint run build/examples/kafka_wordcount.so --bootstrap-servers B --input-topic IN
 *       --output-topic OUT [--window-ms N (10000)] [--out-of-orderness-ms M (0)]
 *       [--idleness-ms I (0)] [--bounded] [--group-id G]
 *       [--delivery none|at-least-once|exactly-once] [--transactional-id-prefix P]
 *
 * Output records: key "<word>", value {"word":"flint","window_start":1700000000000,
 * "window_end":1700000010000,"count":3} (window bounds in epoch ms, end exclusive). Words are
 * lower-cased runs of letters and digits. With scripts/kafka-local.sh (docs/connectors.md):
 *
 *   B=$(scripts/kafka-local.sh start --topic lines:4 --topic counts:4)
 *   printf 'to be or not to be\n' | kcat -P -b "$B" -t lines
 *   flint run -d build/examples/kafka_wordcount.so --bootstrap-servers "$B" --input-topic lines \
 *       --output-topic counts --window-ms 5000
 *   kcat -C -b "$B" -t counts -f '%k %s\n' */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* flat_map: a line -> (word, 1) for each word. */
void split_words(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx;
    size_t len;
    const char *s = flint_row_get_string(in, 0, &len);
    char word[256];
    size_t i = 0;
    while (i < len) {
        while (i < len && !isalnum((unsigned char)s[i])) i++;
        size_t n = 0;
        while (i < len && isalnum((unsigned char)s[i])) {
            if (n < sizeof word) word[n++] = (char)tolower((unsigned char)s[i]);
            i++;
        }
        if (n == 0) continue;
        flint_row_builder *b = flint_out_row(out);
        flint_row_set_string(b, 0, word, n);
        flint_row_set_long(b, 1, 1);
        flint_emit(out);
    }
}

/* (word, window_start, window_end, count) -> (word, window_start ms, window_end ms, count) */
void window_result(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, in, 0);
    flint_row_set_long(out, 1, flint_row_get_long(in, 1));
    flint_row_set_long(out, 2, flint_row_get_long(in, 2));
    flint_row_copy_field(out, 3, in, 3);
}

static const char usage[] =
    "usage: kafka_wordcount.so --bootstrap-servers B --input-topic IN --output-topic OUT [--window-ms N] "
    "[--out-of-orderness-ms M] [--idleness-ms I] [--bounded] [--group-id G] "
    "[--delivery none|at-least-once|exactly-once] [--transactional-id-prefix P]";

static int parse_ms(flint_env *env, const char *name, const char *v, int64_t min, int64_t *out) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*v == '\0' || *end || x < min) {
        flint_env_fail(env, "%s: expected a number of milliseconds >= %lld, got '%s'", name, (long long)min, v);
        return -1;
    }
    *out = x;
    return 0;
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *bootstrap = NULL, *in_topic = NULL, *out_topic = NULL, *group = NULL, *prefix = NULL;
    int64_t window = 10000, ooo = 0, idleness = 0;
    bool bounded = false;
    flint_kafka_delivery delivery = FLINT_KAFKA_AT_LEAST_ONCE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--bounded") == 0) {
            bounded = true;
            continue;
        }
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", a, usage);
            return FLINT_INVALID;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (strcmp(a, "--bootstrap-servers") == 0) bootstrap = v;
        else if (strcmp(a, "--input-topic") == 0) in_topic = v;
        else if (strcmp(a, "--output-topic") == 0) out_topic = v;
        else if (strcmp(a, "--group-id") == 0) group = v;
        else if (strcmp(a, "--transactional-id-prefix") == 0) prefix = v;
        else if (strcmp(a, "--window-ms") == 0) rc = parse_ms(env, a, v, 1, &window);
        else if (strcmp(a, "--out-of-orderness-ms") == 0) rc = parse_ms(env, a, v, 0, &ooo);
        else if (strcmp(a, "--idleness-ms") == 0) rc = parse_ms(env, a, v, 0, &idleness);
        else if (strcmp(a, "--delivery") == 0) {
            if (strcmp(v, "none") == 0) delivery = FLINT_KAFKA_NONE;
            else if (strcmp(v, "at-least-once") == 0) delivery = FLINT_KAFKA_AT_LEAST_ONCE;
            else if (strcmp(v, "exactly-once") == 0) delivery = FLINT_KAFKA_EXACTLY_ONCE;
            else rc = -1, flint_env_fail(env, "--delivery: expected none, at-least-once or exactly-once, got '%s'", v);
        } else {
            flint_env_fail(env, "unknown argument '%s'; %s", a, usage);
            return FLINT_INVALID;
        }
        if (rc) return FLINT_INVALID;
    }
    if (!bootstrap || !in_topic || !out_topic) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    /* Timestamps: the Kafka record timestamps; watermarks per partition. */
    flint_watermark_strategy ws = {.max_out_of_orderness_ms = ooo, .idleness_ms = idleness};
    flint_kafka_source_options src = {
        .bootstrap_servers = bootstrap,
        .topics = in_topic,
        .group_id = group,
        .format = "text",
        .bounded = bounded,
        .watermarks = &ws,
    };
    flint_stream *lines = flint_uid(flint_source_kafka(env, "line STRING", &src), "lines");
    flint_stream *words = flint_flat_map(lines, FLINT_FN(split_words), "word STRING, n BIGINT");
    flint_windowed_stream *w = flint_window(
        flint_key_by(words, "word"),
        (flint_window_spec){.kind = FLINT_WINDOW_TUMBLING, .domain = FLINT_EVENT_TIME, .size = window});
    flint_stream *counts = flint_uid(flint_window_count(w), "window-counts");
    flint_stream *out = flint_map(counts, FLINT_FN(window_result),
                                  "word STRING, window_start BIGINT, window_end BIGINT, count BIGINT");
    flint_kafka_sink_options sink = {
        .bootstrap_servers = bootstrap,
        .topic = out_topic,
        .key_fields = "word",
        .format = "json",
        .delivery = delivery,
        .transactional_id_prefix = prefix,
    };
    flint_sink_kafka(out, &sink);
    return flint_execute(env, "Kafka WordCount");
}

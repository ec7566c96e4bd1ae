/* A test job for the Kafka connectors: records of a topic (or a topic pattern) through to text
 * files or another topic, with the source's and sink's options from the command line.
 *
 *   kafka_pipe.so --bootstrap B (--topic T | --pattern REGEX) [--schema S] [--format F]
 *       [--bounded] [--rate N] [--group G] [--startup earliest|latest|group|group-latest|group-none|
 *       timestamp:MS|specific:T:P:O,...] [--discovery-ms N] [--ignore-parse-errors]
 *       [--dead-letter DIR] [--out-dir DIR | --out-topic O [--out-format F] [--key FIELDS]
 *       [--delivery none|at-least-once|exactly-once] [--prefix P] [--partitioner default|fixed|round-robin]
 *       [--headers-field F] [--header NAME=VALUE]...]
 *       [--watermarks OOO_MS] [--prop KEY=VALUE]...
 *
 * Default schema "v STRING" with the text format. With --watermarks the rows go through a
 * process function that appends the current watermark, so tests see event time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* Append the row's timestamp and the operator's watermark (as text) to its text form. */
void with_time(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    char buf[4096];
    flint_row_format(in, " ", buf, sizeof buf);
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_cstring(b, 0, buf);
    flint_row_set_long(b, 1, flint_ctx_timestamp(ctx));
    flint_row_set_long(b, 2, flint_ctx_current_watermark(ctx));
    flint_emit(out);
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *bootstrap = NULL, *topic = NULL, *pattern = NULL, *schema = "v STRING", *format = "text";
    const char *group = NULL, *startup = "earliest", *dead_letter = NULL, *out_dir = NULL, *out_topic = NULL;
    const char *out_format = "text", *key = NULL, *delivery = "at-least-once", *prefix = NULL, *partitioner = "default";
    const char *rate = NULL, *headers_field = NULL;
    bool bounded = false, ignore = false;
    int64_t discovery = 0, ooo = -1;
    const char *props[64], *headers[34];
    int np = 0, nh = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--bounded") == 0) { bounded = true; continue; }
        if (strcmp(a, "--ignore-parse-errors") == 0) { ignore = true; continue; }
        if (i + 1 >= argc) {
            flint_env_fail(env, "%s needs a value", a);
            return FLINT_INVALID;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--bootstrap") == 0) bootstrap = v;
        else if (strcmp(a, "--topic") == 0) topic = v;
        else if (strcmp(a, "--pattern") == 0) pattern = v;
        else if (strcmp(a, "--schema") == 0) schema = v;
        else if (strcmp(a, "--format") == 0) format = v;
        else if (strcmp(a, "--rate") == 0) rate = v;
        else if (strcmp(a, "--group") == 0) group = v;
        else if (strcmp(a, "--startup") == 0) startup = v;
        else if (strcmp(a, "--discovery-ms") == 0) discovery = atoll(v);
        else if (strcmp(a, "--dead-letter") == 0) dead_letter = v;
        else if (strcmp(a, "--out-dir") == 0) out_dir = v;
        else if (strcmp(a, "--out-topic") == 0) out_topic = v;
        else if (strcmp(a, "--out-format") == 0) out_format = v;
        else if (strcmp(a, "--key") == 0) key = v;
        else if (strcmp(a, "--delivery") == 0) delivery = v;
        else if (strcmp(a, "--prefix") == 0) prefix = v;
        else if (strcmp(a, "--partitioner") == 0) partitioner = v;
        else if (strcmp(a, "--watermarks") == 0) ooo = atoll(v);
        else if (strcmp(a, "--headers-field") == 0) headers_field = v;
        else if ((strcmp(a, "--prop") == 0 && np < 60) || (strcmp(a, "--header") == 0 && nh < 32)) {
            char *eq = strchr(v, '=');
            if (!eq) {
                flint_env_fail(env, "%s: expected NAME=VALUE, got '%s'", a, v);
                return FLINT_INVALID;
            }
            *eq = '\0';
            const char **list = a[2] == 'p' ? props : headers;
            int *n = a[2] == 'p' ? &np : &nh;
            list[(*n)++] = v;
            list[(*n)++] = eq + 1;
        } else {
            flint_env_fail(env, "unknown argument '%s'", a);
            return FLINT_INVALID;
        }
    }
    if (rate) {
        props[np++] = "records-per-second";
        props[np++] = rate;
    }
    props[np] = NULL;
    headers[nh] = NULL;
    flint_watermark_strategy ws = {.max_out_of_orderness_ms = ooo < 0 ? 0 : ooo};
    flint_kafka_source_options o = {
        .bootstrap_servers = bootstrap,
        .topics = topic,
        .topic_pattern = pattern,
        .group_id = group,
        .format = format,
        .bounded = bounded,
        .discovery_interval_ms = discovery,
        .ignore_parse_errors = ignore,
        .dead_letter_tag = dead_letter ? "dead-letters" : NULL,
        .watermarks = ooo >= 0 ? &ws : NULL,
        .properties = props,
    };
    if (strcmp(startup, "latest") == 0) o.startup = FLINT_KAFKA_LATEST;
    else if (strcmp(startup, "group") == 0) o.startup = FLINT_KAFKA_GROUP_OFFSETS;
    else if (strcmp(startup, "group-latest") == 0) o.startup = FLINT_KAFKA_GROUP_OFFSETS, o.reset = FLINT_KAFKA_RESET_LATEST;
    else if (strcmp(startup, "group-none") == 0) o.startup = FLINT_KAFKA_GROUP_OFFSETS, o.reset = FLINT_KAFKA_RESET_NONE;
    else if (strncmp(startup, "timestamp:", 10) == 0) o.startup = FLINT_KAFKA_TIMESTAMP, o.startup_timestamp_ms = atoll(startup + 10);
    else if (strncmp(startup, "specific:", 9) == 0) o.startup = FLINT_KAFKA_SPECIFIC_OFFSETS, o.startup_offsets = startup + 9;
    flint_stream *src = flint_uid(flint_source_kafka(env, schema, &o), "source");
    flint_stream *rows = src;
    if (ooo >= 0) rows = flint_process(src, FLINT_FN(with_time), "row STRING, ts BIGINT, wm BIGINT");
    if (dead_letter)
        flint_sink_text_file(flint_side_output(src, "dead-letters", FLINT_KAFKA_DEAD_LETTER_SCHEMA), dead_letter);
    if (out_topic) {
        flint_kafka_sink_options so = {
            .bootstrap_servers = bootstrap,
            .topic = out_topic,
            .key_fields = key,
            .format = out_format,
            .transactional_id_prefix = prefix,
            .headers = headers,
            .headers_field = headers_field,
        };
        if (strcmp(delivery, "none") == 0) so.delivery = FLINT_KAFKA_NONE;
        else if (strcmp(delivery, "exactly-once") == 0) so.delivery = FLINT_KAFKA_EXACTLY_ONCE;
        if (strcmp(partitioner, "fixed") == 0) so.partitioner = FLINT_KAFKA_PARTITIONER_FIXED;
        else if (strcmp(partitioner, "round-robin") == 0) so.partitioner = FLINT_KAFKA_PARTITIONER_ROUND_ROBIN;
        flint_uid(flint_sink_kafka(rows, &so), "sink");
    } else {
        flint_sink_text_file(rows, out_dir ? out_dir : "/dev/null");
    }
    return flint_execute(env, "Kafka Pipe");
}

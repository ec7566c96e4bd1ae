/* Keyed count over Kafka: every record's value is a key; for each record the job writes the key's
 * running count, "<key> <count>", so that the output shows exactly-once processing end to end
 * (for a key seen n times: the lines "k 1" ... "k n", each once).
 *
 *   flint run build/examples/kafka_keyed_count.so --bootstrap-servers B --topic T --output DIR
 *       [--bounded] [--records-per-second N] [--group-id G]
 *
 * Offsets are checkpointed source state and the output goes through the exactly-once file sink
 * (part files DIR/part-<subtask>-<n>, committed when a checkpoint completes): with checkpointing
 * on (-D execution.checkpointing.interval=200ms) the committed output stays exact when a
 * taskmanager fails and the job restarts from its latest checkpoint. --bounded stops at the end
 * offsets seen at start (the job finishes); --records-per-second limits the source (over all its
 * subtasks), so that a run lasts long enough to be interrupted. With --group-id the offsets of
 * completed checkpoints are committed to that group. Start a cluster to read from with
 * scripts/kafka-local.sh (docs/connectors.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* value -> (key, 1) */
void to_pair(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, in, 0);
    flint_row_set_long(out, 1, 1);
}

static const char usage[] = "usage: kafka_keyed_count.so --bootstrap-servers B --topic T --output DIR [--bounded] "
                            "[--records-per-second N] [--group-id G]";

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *bootstrap = NULL, *topic = NULL, *output = NULL, *group = NULL, *rate = NULL;
    bool bounded = false;
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
        if (strcmp(a, "--bootstrap-servers") == 0) bootstrap = v;
        else if (strcmp(a, "--topic") == 0) topic = v;
        else if (strcmp(a, "--output") == 0) output = v;
        else if (strcmp(a, "--group-id") == 0) group = v;
        else if (strcmp(a, "--records-per-second") == 0) {
            char *end;
            double r = strtod(v, &end);
            if (*end || !(r > 0)) {
                flint_env_fail(env, "--records-per-second: expected a positive number, got '%s'", v);
                return FLINT_INVALID;
            }
            rate = v;
        } else {
            flint_env_fail(env, "unknown argument '%s'; %s", a, usage);
            return FLINT_INVALID;
        }
    }
    if (!bootstrap || !topic || !output) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    const char *props[] = {"records-per-second", rate, NULL};
    flint_kafka_source_options src = {
        .bootstrap_servers = bootstrap,
        .topics = topic,
        .group_id = group,
        .format = "text",
        .startup = FLINT_KAFKA_EARLIEST,
        .bounded = bounded,
        .properties = rate ? props : NULL,
    };
    flint_stream *keys = flint_uid(flint_source_kafka(env, "key STRING", &src), "kafka-source");
    flint_stream *pairs = flint_map(keys, FLINT_FN(to_pair), "key STRING, n BIGINT");
    flint_stream *counts = flint_uid(flint_sum(flint_key_by(pairs, "key"), "n"), "count");
    flint_uid(flint_sink_file_exactly_once(counts, output), "sink");
    return flint_execute(env, "Kafka Keyed Count");
}

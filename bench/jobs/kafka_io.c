/* Benchmark jobs for the Kafka connectors (bench/kafka.sh):
 *   kafka_io.so --read --bootstrap B --topic T          bounded source (text) -> blackhole
 *   kafka_io.so --write N --bootstrap B --topic T       datagen (N rows) -> Kafka sink (at least once)
 * [--delivery none|at-least-once|exactly-once] for --write. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *bootstrap = NULL, *topic = NULL, *delivery = "at-least-once";
    int64_t write = -1;
    bool read = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--read") == 0) read = true;
        else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc) write = atoll(argv[++i]);
        else if (strcmp(argv[i], "--bootstrap") == 0 && i + 1 < argc) bootstrap = argv[++i];
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) topic = argv[++i];
        else if (strcmp(argv[i], "--delivery") == 0 && i + 1 < argc) delivery = argv[++i];
        else {
            flint_env_fail(env, "usage: kafka_io.so (--read | --write N) --bootstrap B --topic T [--delivery D]");
            return FLINT_INVALID;
        }
    }
    if (read) {
        flint_kafka_source_options o = {.bootstrap_servers = bootstrap, .topics = topic, .bounded = true};
        flint_sink_blackhole(flint_source_kafka(env, "line STRING", &o));
        return flint_execute(env, "Kafka read");
    }
    flint_stream *rows = flint_source_datagen(env, "id BIGINT, payload STRING", write, 0);
    flint_kafka_sink_options o = {.bootstrap_servers = bootstrap, .topic = topic, .format = "text"};
    if (strcmp(delivery, "none") == 0) o.delivery = FLINT_KAFKA_NONE;
    else if (strcmp(delivery, "exactly-once") == 0) {
        o.delivery = FLINT_KAFKA_EXACTLY_ONCE;
        o.transactional_id_prefix = "bench";
    }
    flint_sink_kafka(rows, &o);
    return flint_execute(env, "Kafka write");
}

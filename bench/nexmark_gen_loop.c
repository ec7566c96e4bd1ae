/* Baseline of the Nexmark benchmarks: the generator alone, in a plain loop, doing what the
 * source.nexmark operator does per event at parallelism 1 (nexmark_gen_row of the same table into
 * a reused row builder, and the events of other types generated and dropped, from libflint: the
 * very code the taskmanager runs) and discarding the rows.
 *
 *   nexmark_gen_loop [--events N] [--table bid|auction|person|all] [--seed S]
 *
 * Prints one line:
 *   nexmark_gen_loop <events/s per core> events/s/core <events> events <rows> rows <cpu s> cpu_s <wall s> s
 * (events of every type count, as the queries count them; per core = events / CPU seconds of
 * this single-threaded process). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <flint/row.h>

#include "nexmark/nexmark.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int64_t events = 10000000, seed = 0;
    const char *table_name = "bid";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) events = atoll(argv[++i]);
        else if (strcmp(argv[i], "--table") == 0 && i + 1 < argc) table_name = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: nexmark_gen_loop [--events N] [--table bid|auction|person|all] [--seed S]\n");
            return 2;
        }
    }
    nexmark_table table;
    if (events < 1 || !nexmark_table_parse(table_name, &table)) {
        fprintf(stderr, "nexmark_gen_loop: --events must be positive and --table one of bid, auction, person, all\n");
        return 2;
    }
    flint_schema *schema = NULL;
    flint_err err = {0};
    if (flint_schema_parse(nexmark_table_schema(table), &schema, &err)) {
        fprintf(stderr, "nexmark_gen_loop: %s\n", err.msg);
        return 1;
    }
    nexmark_config cfg;
    nexmark_config_init(&cfg);
    cfg.seed = seed;
    nexmark_gen *g = nexmark_gen_new(&cfg);
    flint_row_builder b;
    flint_row_builder_init(&b, schema);
    static nexmark_event dropped;

    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
    uint64_t rows = 0, bytes = 0;
    for (int64_t n = 0; n < events; n++) {
        if (nexmark_gen_row(g, n, table, &b)) {
            flint_row row = flint_row_builder_row(&b);
            rows++;
            bytes += row.len; /* discarded; only its length is kept so the work is observable */
        } else {
            nexmark_gen_event(g, n, &dropped);
        }
    }
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0, wall = clock_s(CLOCK_MONOTONIC) - w0;
    printf("nexmark_gen_loop %.0f events/s/core %lld events %llu rows %.3f cpu_s %.3f s %.1f bytes/row\n",
           (double)events / cpu, (long long)events, (unsigned long long)rows, cpu, wall,
           rows ? (double)bytes / (double)rows : 0.0);
    flint_row_builder_free(&b);
    nexmark_gen_free(g);
    flint_schema_free(schema);
    return 0;
}

/* The expected results of the Nexmark example queries, computed straight from the generator
 * (common/nexmark) in one loop, for tests/cluster/test_nexmark.sh to compare the jobs' output with.
 *
 *   nexmark_ref --query q0|q1|q2|person|auction|bid|all --events N [--seed S] [--rate R]
 *
 * Prints one row per line in the text sink's form (fields joined by ' '), in event order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flint/row.h"
#include "nexmark/nexmark.h"

static void usage(void) {
    fprintf(stderr, "usage: nexmark_ref --query q0|q1|q2|person|auction|bid|all --events N [--seed S] [--rate R]\n");
    exit(2);
}

static int64_t parse_i64(const char *what, const char *s) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "nexmark_ref: %s: expected an integer, got '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static flint_schema *schema(const char *text) {
    flint_schema *s = NULL;
    flint_err err = {0};
    if (flint_schema_parse(text, &s, &err)) {
        fprintf(stderr, "nexmark_ref: %s\n", err.msg);
        exit(1);
    }
    return s;
}

int main(int argc, char **argv) {
    const char *query = NULL;
    int64_t events = -1, seed = 0;
    double rate = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--query") == 0) query = argv[i + 1];
        else if (strcmp(argv[i], "--events") == 0) events = parse_i64("--events", argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = parse_i64("--seed", argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0) rate = strtod(argv[i + 1], NULL);
        else usage();
    }
    if (!query || events < 0) usage();

    nexmark_config cfg;
    nexmark_config_init(&cfg);
    cfg.seed = seed;
    nexmark_config_set_rate(&cfg, rate);
    nexmark_gen *g = nexmark_gen_new(&cfg);

    nexmark_table table;
    const char *out_text;
    int q = -1;
    if (nexmark_table_parse(query, &table)) {
        out_text = nexmark_table_schema(table);
    } else if (strcmp(query, "q0") == 0) {
        q = 0, out_text = "auction BIGINT, bidder BIGINT, price BIGINT, dateTime TIMESTAMP(3), extra STRING";
    } else if (strcmp(query, "q1") == 0) {
        q = 1, out_text = "auction BIGINT, bidder BIGINT, price DOUBLE, dateTime TIMESTAMP(3), extra STRING";
    } else if (strcmp(query, "q2") == 0) {
        q = 2, out_text = "auction BIGINT, price BIGINT";
    } else {
        usage();
        return 2;
    }
    flint_schema *out_schema = schema(out_text);
    flint_row_builder b;
    flint_row_builder_init(&b, out_schema);
    nexmark_event *ev = malloc(sizeof *ev);
    size_t cap = 4096;
    char *line = malloc(cap);
    if (!ev || !line) return 1;

    for (int64_t n = 0; n < events; n++) {
        if (q < 0) {
            if (!nexmark_gen_row(g, n, table, &b)) continue;
        } else {
            if (nexmark_event_type_of(n) != NEXMARK_BID) continue;
            nexmark_gen_event(g, n, ev);
            const nexmark_bid *bid = &ev->bid;
            flint_row_builder_reset(&b);
            if (q == 2) {
                if (bid->auction % 123 != 0) continue;
                flint_row_set_long(&b, 0, bid->auction);
                flint_row_set_long(&b, 1, bid->price);
            } else {
                flint_row_set_long(&b, 0, bid->auction);
                flint_row_set_long(&b, 1, bid->bidder);
                if (q == 1) flint_row_set_double(&b, 2, 0.908 * (double)bid->price);
                else flint_row_set_long(&b, 2, bid->price);
                flint_row_set_long(&b, 3, bid->date_time);
                flint_row_set_string(&b, 4, bid->extra.ptr, bid->extra.len);
            }
        }
        flint_row row = flint_row_builder_row(&b);
        size_t len = flint_row_format(&row, " ", line, cap);
        if (len >= cap) {
            cap = len + 1;
            line = realloc(line, cap);
            if (!line) return 1;
            flint_row_format(&row, " ", line, cap);
        }
        fputs(line, stdout);
        putchar('\n');
    }
    free(line);
    free(ev);
    flint_row_builder_free(&b);
    flint_schema_free(out_schema);
    nexmark_gen_free(g);
    return fflush(stdout) == 0 ? 0 : 1;
}

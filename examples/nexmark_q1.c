/* Nexmark q1 (currency conversion): every bid with its price in euros, as the benchmark's
 *
 *   SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid
 *
 * (price is a BIGINT of cents; the converted price is a DOUBLE).
 *
 *   flint run build/examples/nexmark_q1.so --events N [--rate R] [--seed S] [--output DIR]
 *
 * --events N: events generated over all source subtasks (of every type: the 46 bids of each 50;
 * -1 runs until canceled); --rate R: events per second over all subtasks (default: as fast as
 * possible); --seed S: the generator's seed (default 0); --output DIR: write the rows as text
 * part files to DIR instead of discarding them (the blackhole sink). See docs/nexmark.md. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* Bid (auction, bidder, price, channel, url, dateTime, extra) -> (auction, bidder, 0.908 * price,
 * dateTime, extra) */
void nexmark_q1_convert(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, in, 0);
    flint_row_copy_field(out, 1, in, 1);
    flint_row_set_double(out, 2, 0.908 * (double)flint_row_get_long(in, 2));
    flint_row_copy_field(out, 3, in, 5);
    flint_row_copy_field(out, 4, in, 6);
}

#define USAGE "usage: nexmark_q1.so --events N [--rate R] [--seed S] [--output DIR]"

typedef struct nexmark_args {
    int64_t events, seed;
    double rate;
    const char *output;
} nexmark_args;

static int parse_args(flint_env *env, int argc, char **argv, nexmark_args *a) {
    bool have_events = false;
    a->events = -1, a->seed = 0, a->rate = 0, a->output = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!val) {
            flint_env_fail(env, "argument '%s' needs a value; " USAGE, opt);
            return FLINT_INVALID;
        }
        if (strcmp(opt, "--events") == 0) {
            a->events = strtoll(val, &end, 10);
            have_events = true;
        } else if (strcmp(opt, "--seed") == 0) {
            a->seed = strtoll(val, &end, 10);
        } else if (strcmp(opt, "--rate") == 0) {
            a->rate = strtod(val, &end);
            if (a->rate < 0) end = NULL;
        } else if (strcmp(opt, "--output") == 0) {
            a->output = val;
            continue;
        } else {
            flint_env_fail(env, "unknown argument '%s'; " USAGE, opt);
            return FLINT_INVALID;
        }
        if (!end || end == val || *end) {
            flint_env_fail(env, "%s: '%s' is not a valid %s; " USAGE, opt, val,
                           strcmp(opt, "--rate") == 0 ? "non-negative number" : "integer");
            return FLINT_INVALID;
        }
    }
    if (!have_events) {
        flint_env_fail(env, "--events is required (-1 for an unbounded run); " USAGE);
        return FLINT_INVALID;
    }
    return FLINT_OK;
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    nexmark_args a;
    if (parse_args(env, argc, argv, &a)) return FLINT_INVALID;
    flint_stream *bids = flint_source_nexmark(env, "bid", a.events, a.rate, a.seed);
    flint_stream *out = flint_name(flint_map(bids, FLINT_FN(nexmark_q1_convert),
                                             "auction BIGINT, bidder BIGINT, price DOUBLE, "
                                             "dateTime TIMESTAMP(3), extra STRING"),
                                   "Q1: Currency Conversion");
    if (a.output)
        flint_sink_text_file(out, a.output);
    else
        flint_sink_blackhole(out);
    return flint_execute(env, "Nexmark Q1");
}

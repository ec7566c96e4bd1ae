/* The Nexmark query examples' command line and job main (nexmark_q0.c, nexmark_q1.c,
 * nexmark_q2.c), shared as static functions: each example builds into its own job artifact against the public headers
 * only, so this header is included, not linked (the Makefile rebuilds the examples when it
 * changes and does not build it as a job).
 *
 *   <query>.so --events N [--rate R] [--seed S] [--output DIR]
 *
 * --events N: events generated over all source subtasks (of every type: the 46 bids of each 50;
 * -1 runs until canceled); --rate R: events per second over all subtasks (default: as fast as
 * possible); --seed S: the generator's seed (default 0); --output DIR: write the rows as text
 * part files to DIR instead of discarding them (the blackhole sink). See docs/nexmark.md. */
#ifndef FLINT_EXAMPLES_NEXMARK_ARGS_H
#define FLINT_EXAMPLES_NEXMARK_ARGS_H
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

#define NEXMARK_ARGS_USAGE "--events N [--rate R] [--seed S] [--output DIR]"

typedef struct nexmark_args {
    int64_t events, seed;
    double rate;
    const char *output;         /* NULL: the blackhole sink */
} nexmark_args;

/* argv (of the job named job, for messages) into *a. FLINT_INVALID, with the environment failed
 * naming the bad argument and the usage, when it is not a valid command line. */
static int nexmark_args_parse(flint_env *env, const char *job, int argc, char **argv, nexmark_args *a) {
    bool have_events = false;
    a->events = -1, a->seed = 0, a->rate = 0, a->output = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!val) {
            flint_env_fail(env, "argument '%s' needs a value; usage: %s " NEXMARK_ARGS_USAGE, opt, job);
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
            flint_env_fail(env, "unknown argument '%s'; usage: %s " NEXMARK_ARGS_USAGE, opt, job);
            return FLINT_INVALID;
        }
        if (!end || end == val || *end) {
            flint_env_fail(env, "%s: '%s' is not a valid %s; usage: %s " NEXMARK_ARGS_USAGE, opt, val,
                           strcmp(opt, "--rate") == 0 ? "non-negative number" : "integer", job);
            return FLINT_INVALID;
        }
    }
    if (!have_events) {
        flint_env_fail(env, "--events is required (-1 for an unbounded run); usage: %s " NEXMARK_ARGS_USAGE, job);
        return FLINT_INVALID;
    }
    return FLINT_OK;
}

/* The job main of a query over the bids: parse the command line (of the artifact named job),
 * build the bids source, query it, end the result in the sink the arguments ask for (text part
 * files under --output, else a blackhole) and execute the job as name. */
static int nexmark_query_main(flint_env *env, int argc, char **argv, const char *job, const char *name,
                              flint_stream *(*query)(flint_stream *bids)) {
    nexmark_args a;
    if (nexmark_args_parse(env, job, argc, argv, &a)) return FLINT_INVALID;
    flint_stream *out = query(flint_source_nexmark(env, "bid", a.events, a.rate, a.seed));
    if (a.output)
        flint_sink_text_file(out, a.output);
    else
        flint_sink_blackhole(out);
    return flint_execute(env, name);
}

#endif

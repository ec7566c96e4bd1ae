/* Nexmark q0 (pass-through): every bid, as the benchmark's
 *
 *   SELECT auction, bidder, price, dateTime, extra FROM bid
 *
 *   flint run build/examples/nexmark_q0.so --events N [--rate R] [--seed S] [--output DIR]
 *
 * Arguments: examples/nexmark_args.h; see docs/nexmark.md. */
#include <flint/flint.h>

#include "nexmark_args.h"

/* The query over the bids: a projection (no user function), planned once per subtask as Flink
 * plans the SQL query's. */
static flint_stream *nexmark_q0(flint_stream *bids) {
    return flint_name(flint_project(bids, "auction, bidder, price, dateTime, extra"), "Q0: Pass Through");
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    return nexmark_query_main(env, argc, argv, "nexmark_q0.so", "Nexmark Q0", nexmark_q0);
}

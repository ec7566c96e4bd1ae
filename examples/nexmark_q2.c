/* Nexmark q2 (selection): the bids of a few auctions, as the benchmark's
 *
 *   SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
 *
 *   flint run build/examples/nexmark_q2.so --events N [--rate R] [--seed S] [--output DIR]
 *
 * Arguments: examples/nexmark_args.h; see docs/nexmark.md. */
#include <flint/flint.h>

#include "nexmark_args.h"

/* Keep the bids of auctions whose id is a multiple of 123. */
bool nexmark_q2_select(flint_ctx *ctx, const flint_row *in) {
    (void)ctx;
    return flint_row_get_long(in, 0) % 123 == 0;
}

/* Bid -> (auction, price) */
void nexmark_q2_project(flint_ctx *ctx, const flint_row *in, flint_row_builder *out) {
    (void)ctx;
    flint_row_copy_field(out, 0, in, 0);
    flint_row_copy_field(out, 1, in, 2);
}

/* The query over the bids. */
static flint_stream *nexmark_q2(flint_stream *bids) {
    flint_stream *kept = flint_name(flint_filter(bids, FLINT_FN(nexmark_q2_select)), "Q2: auction % 123 = 0");
    return flint_name(flint_map(kept, FLINT_FN(nexmark_q2_project), "auction BIGINT, price BIGINT"), "Q2: Selection");
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    return nexmark_query_main(env, argc, argv, "nexmark_q2.so", "Nexmark Q2", nexmark_q2);
}

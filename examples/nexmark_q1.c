/* Nexmark q1 (currency conversion): every bid with its price in euros, as the benchmark's
 *
 *   SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid
 *
 * (price is a BIGINT of cents; the converted price is a DOUBLE).
 *
 *   flint run build/examples/nexmark_q1.so --events N [--rate R] [--seed S] [--output DIR]
 *
 * Arguments: examples/nexmark_args.h; see docs/nexmark.md. */
#include <flint/flint.h>

#include "nexmark_args.h"

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

/* The query over the bids. */
static flint_stream *nexmark_q1(flint_stream *bids) {
    return flint_name(flint_map(bids, FLINT_FN(nexmark_q1_convert),
                                "auction BIGINT, bidder BIGINT, price DOUBLE, dateTime TIMESTAMP(3), extra STRING"),
                      "Q1: Currency Conversion");
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    return nexmark_query_main(env, argc, argv, "nexmark_q1.so", "Nexmark Q1", nexmark_q1);
}

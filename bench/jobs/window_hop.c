/* Benchmark job `window_hop`: Nexmark q5's inner aggregation, bids counted per auction in
 * event-time windows of 10 s sliding by 2 s (Flink SQL's
 *   SELECT auction, window_start, window_end, count(*) FROM TABLE(HOP(TABLE bid,
 *       DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) GROUP BY auction, ...
 * with the benchmark's watermark dateTime - 4 s).
 *
 *   flint run -p P build/bench/jobs/window_hop.so [--events N] [--seed S] [--size-ms 10000]
 *       [--slide-ms 2000] [--output DIR]
 *
 * --events N: Nexmark events over all source subtasks (46 of each 50 are bids; default 10M);
 * the counts go to a blackhole sink unless --output DIR writes them as text part files
 * ("auction window_start window_end count"). Every bid lands in size/slide (5) windows, each a
 * (key, window) entry of the state backend (-D state.backend.type=hashmap|rocksdb) with its
 * timer; the input ends with the final watermark, so every window fires. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

int flint_job_main(flint_env *env, int argc, char **argv) {
    long long events = 10000000, seed = 0, size = 10000, slide = 2000;
    const char *output = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument %s needs a value", argv[i]);
            return FLINT_INVALID;
        }
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--events") == 0) events = atoll(v);
        else if (strcmp(a, "--seed") == 0) seed = atoll(v);
        else if (strcmp(a, "--size-ms") == 0) size = atoll(v);
        else if (strcmp(a, "--slide-ms") == 0) slide = atoll(v);
        else if (strcmp(a, "--output") == 0) output = v;
        else {
            flint_env_fail(env, "unknown argument %s; usage: [--events N] [--seed S] [--size-ms MS] [--slide-ms MS] [--output DIR]", a);
            return FLINT_INVALID;
        }
    }
    flint_stream *bids = flint_source_nexmark(env, "bid", events, 0, seed);
    flint_watermark_strategy ws = {.timestamp_field = "dateTime", .max_out_of_orderness_ms = 4000};
    bids = flint_assign_timestamps_and_watermarks(bids, ws);
    flint_windowed_stream *w = flint_window(flint_key_by(bids, "auction"),
                                            (flint_window_spec){.kind = FLINT_WINDOW_SLIDING, .domain = FLINT_EVENT_TIME,
                                                                .size = size, .slide = slide});
    flint_stream *counts = flint_name(flint_window_count(w), "Hop Count");
    if (output) flint_sink_text_file(counts, output);
    else flint_sink_blackhole(counts);
    return flint_execute(env, "Window Hop");
}

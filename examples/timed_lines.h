/* The line parser of the event-time examples that read text files (interval_join.c,
 * session_clicks.c), shared as the flat_map function parse_timed_line: each example builds into
 * its own job artifact against the public headers only, so this header is included, not linked
 * (the Makefile rebuilds the examples when it changes and does not build it as a job).
 * parse_timed_line is not static: the job names it with FLINT_FN and the taskmanager finds it in
 * the artifact by that name. */
#ifndef FLINT_EXAMPLES_TIMED_LINES_H
#define FLINT_EXAMPLES_TIMED_LINES_H
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* flat_map: "<timestamp_ms> <name> [<text>]" -> (ts BIGINT, name STRING, text STRING, "" when
 * absent); lines without a whole-number timestamp and a name, or longer than 511 bytes, are
 * skipped. */
void parse_timed_line(flint_ctx *ctx, const flint_row *in, flint_collector *out) {
    (void)ctx;
    size_t len;
    const char *s = flint_row_get_string(in, 0, &len);
    char buf[512];
    if (len >= sizeof buf) return;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *save = NULL;
    char *ts = strtok_r(buf, " \t\r", &save), *name = strtok_r(NULL, " \t\r", &save);
    char *text = strtok_r(NULL, " \t\r", &save);
    if (!ts || !name) return;
    char *end;
    long long t = strtoll(ts, &end, 10);
    if (*end) return;
    flint_row_builder *b = flint_out_row(out);
    flint_row_set_long(b, 0, t);
    flint_row_set_cstring(b, 1, name);
    flint_row_set_cstring(b, 2, text ? text : "");
    flint_emit(out);
}

#endif

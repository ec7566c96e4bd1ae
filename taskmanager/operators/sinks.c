/* Built-in sinks: sink.print (the taskmanager's stdout, which the scripts send to its .out file;
 * "<subtask+1>> row" when the sink runs with parallelism above 1, as Flink's print()),
 * sink.text_file (one part file "part-<subtask>" per subtask in a directory, one line per row)
 * and sink.blackhole. Rows are formatted with flint_row_format(row, " ") into a reused buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operators/operator.h"
#include "util/alloc.h"
#include "util/fsutil.h"

typedef struct sink_state {
    char *buf;
    size_t cap;
    size_t prefix;             /* print: length of "<n>> " */
    FILE *f;                   /* text file */
    char *path;
} sink_state;

static sink_state *state_new(tm_op *op) {
    sink_state *s = XNEW(sink_state);
    s->cap = 256;
    s->buf = xmalloc(s->cap);
    op->state = s;
    return s;
}

/* Format row as a line (after the prefix already in buf) and return its length with '\n'. */
static size_t format_line(sink_state *s, const flint_row *row) {
    size_t n = flint_row_format(row, " ", s->buf + s->prefix, s->cap - s->prefix);
    if (s->prefix + n + 2 > s->cap) {
        while (s->prefix + n + 2 > s->cap) s->cap *= 2;
        s->buf = xrealloc(s->buf, s->cap);
        n = flint_row_format(row, " ", s->buf + s->prefix, s->cap - s->prefix);
    }
    s->buf[s->prefix + n] = '\n';
    return s->prefix + n + 1;
}

/* ---- sink.print ---------------------------------------------------------------------------------- */

static int print_open(tm_op *op) {
    sink_state *s = state_new(op);
    if (op->rt->parallelism > 1) s->prefix = (size_t)snprintf(s->buf, s->cap, "%d> ", op->rt->subtask + 1);
    return FLINT_OK;
}

static int print_process(tm_op *op, const flint_row *row) {
    sink_state *s = op->state;
    size_t len = format_line(s, row);
    FILE *out = tm_print_out ? tm_print_out : stdout;
    /* One fwrite per line: stdio locks the stream, so lines of several print sinks never mix; the
     * taskmanager makes stdout line-buffered, so each line reaches the .out file at once. */
    if (fwrite(s->buf, 1, len, out) != len) return tm_op_fail(op, "writing to stdout: %s", strerror(errno));
    return FLINT_OK;
}

static void sink_close(tm_op *op) {
    sink_state *s = op->state;
    if (!s) return;
    if (s->f && fclose(s->f) != 0) tm_op_fail(op, "writing '%s': %s", s->path, strerror(errno));
    free(s->path);
    free(s->buf);
    free(s);
    op->state = NULL;
}

/* ---- sink.text_file ------------------------------------------------------------------------------ */

static int text_file_open(tm_op *op) {
    sink_state *s = state_new(op);
    const char *dir;
    int rc = tm_op_param_req(op, "path", &dir);
    if (rc) return rc;
    if (!dir[0]) return tm_op_fail(op, "parameter 'path' is empty");
    errno = 0;
    if (fs_mkdirs(dir, 0777, NULL)) return tm_op_fail(op, "cannot create directory '%s': %s", dir, strerror(errno));
    s->path = xasprintf("%s/part-%d", dir, op->rt->subtask);
    s->f = fopen(s->path, "w");
    if (!s->f) return tm_op_fail(op, "cannot create '%s': %s", s->path, strerror(errno));
    setvbuf(s->f, NULL, _IOFBF, 1 << 16);
    return FLINT_OK;
}

static int text_file_process(tm_op *op, const flint_row *row) {
    sink_state *s = op->state;
    size_t len = format_line(s, row);
    if (fwrite(s->buf, 1, len, s->f) != len) return tm_op_fail(op, "writing '%s': %s", s->path, strerror(errno));
    return FLINT_OK;
}

/* ---- sink.blackhole ------------------------------------------------------------------------------ */

static int blackhole_process(tm_op *op, const flint_row *row) { return FLINT_OK; }

static void print_close(tm_op *op) {
    fflush(tm_print_out ? tm_print_out : stdout);
    sink_close(op);
}

const tm_op_kind tm_op_SINK_PRINT = {.name = "sink.print", .open = print_open, .process = print_process, .close = print_close};
const tm_op_kind tm_op_SINK_TEXT_FILE = {.name = "sink.text_file", .open = text_file_open, .process = text_file_process, .close = sink_close};
const tm_op_kind tm_op_SINK_BLACKHOLE = {.name = "sink.blackhole", .process = blackhole_process};

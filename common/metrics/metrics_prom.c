/* The Prometheus text exposition format, version 0.0.4 (see metrics.h): samples collected by
 * family, then written family by family with their HELP and TYPE lines. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "util/alloc.h"
#include "util/strutil.h"

typedef struct prom_family {
    char *name;                   /* sanitized, with the flint_<scope>_ prefix */
    const char *help;             /* static */
    metric_kind kind;
    char *buf;                    /* its sample lines */
    size_t len, cap;
} prom_family;

struct prom_writer {
    prom_family *f;
    int n, cap;
};

prom_writer *prom_new(void) { return XNEW(prom_writer); }

static void buf_add(prom_family *f, const char *s, size_t n) {
    if (f->len + n + 1 > f->cap) {
        while (f->len + n + 1 > f->cap) f->cap = f->cap ? f->cap * 2 : 256;
        f->buf = xrealloc(f->buf, f->cap);
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
    f->buf[f->len] = '\0';
}

static void buf_str(prom_family *f, const char *s) { buf_add(f, s, strlen(s)); }

/* A metric name: [a-zA-Z_:][a-zA-Z0-9_:]*; anything else becomes '_'. */
static char *sanitize(const char *scope, const char *metric) {
    char *s = xasprintf("flint_%s_%s", scope, metric);
    for (char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
        if (!ok) *p = '_';
    }
    return s;
}

static prom_family *family(prom_writer *w, const char *name, metric_kind kind, const char *metric) {
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->f[i].name, name) == 0) return &w->f[i];
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->f = xrealloc(w->f, (size_t)w->cap * sizeof *w->f);
    }
    prom_family *f = &w->f[w->n++];
    memset(f, 0, sizeof *f);
    f->name = xstrdup(name);
    f->kind = kind;
    f->help = metric_help(metric);
    return f;
}

/* A label value with \\, \" and \n escaped, control bytes and invalid UTF-8 left to the reader
 * (values come from our own names). */
static void add_label_value(prom_family *f, const char *v) {
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\') buf_str(f, "\\\\");
        else if (*p == '"') buf_str(f, "\\\"");
        else if (*p == '\n') buf_str(f, "\\n");
        else buf_add(f, p, 1);
    }
}

static void add_labels(prom_family *f, const prom_label *labels, int n, const char *extra_name, const char *extra) {
    if (n == 0 && !extra_name) return;
    buf_str(f, "{");
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (!first) buf_str(f, ",");
        first = false;
        buf_str(f, labels[i].name);
        buf_str(f, "=\"");
        add_label_value(f, labels[i].value);
        buf_str(f, "\"");
    }
    if (extra_name) {
        if (!first) buf_str(f, ",");
        buf_str(f, extra_name);
        buf_str(f, "=\"");
        add_label_value(f, extra);
        buf_str(f, "\"");
    }
    buf_str(f, "}");
}

static void add_value(prom_family *f, double v) {
    char num[64];
    if (isnan(v)) snprintf(num, sizeof num, "NaN");
    else if (isinf(v)) snprintf(num, sizeof num, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 9e15) snprintf(num, sizeof num, "%lld", (long long)v);
    else snprintf(num, sizeof num, "%.17g", v);
    buf_str(f, " ");
    buf_str(f, num);
    buf_str(f, "\n");
}

void prom_add(prom_writer *w, const char *scope, const metric_value *v, const prom_label *labels, int nlabels) {
    assert(w && scope && v);
    char *name = sanitize(scope, v->name);
    prom_family *f = family(w, name, v->kind, v->name);
    if (v->kind != METRIC_KIND_HISTOGRAM) {
        buf_str(f, name);
        add_labels(f, labels, nlabels, NULL, NULL);
        add_value(f, v->value);
    } else {
        static const char *const qs[] = {"0.5", "0.75", "0.9", "0.95", "0.98", "0.99", "0.999"};
        const metric_hist_stats *st = &v->hist;
        double vals[] = {st->p50, st->p75, st->p90, st->p95, st->p98, st->p99, st->p999};
        for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
            buf_str(f, name);
            add_labels(f, labels, nlabels, "quantile", qs[i]);
            add_value(f, st->count ? vals[i] : NAN);
        }
        buf_str(f, name);
        buf_str(f, "_sum");
        add_labels(f, labels, nlabels, NULL, NULL);
        add_value(f, st->mean * (double)st->count);
        buf_str(f, name);
        buf_str(f, "_count");
        add_labels(f, labels, nlabels, NULL, NULL);
        add_value(f, (double)st->count);
    }
    free(name);
}

char *prom_finish(prom_writer *w, size_t *len) {
    prom_family out = {0};
    buf_str(&out, "");
    for (int i = 0; i < w->n; i++) {
        prom_family *f = &w->f[i];
        static const char *const types[] = {"counter", "gauge", "gauge", "summary"};
        char head[1024];
        snprintf(head, sizeof head, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->kind]);
        buf_str(&out, head);
        if (f->buf) buf_add(&out, f->buf, f->len);
        free(f->buf);
        free(f->name);
    }
    free(w->f);
    free(w);
    if (len) *len = out.len;
    return out.buf;
}

/* Metric dumps to and from protobuf (rpc.proto MetricValue): what taskmanagers ship with their
 * heartbeats and the jobmanager stores (see metrics_proto.h). */
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_proto.h"
#include "util/alloc.h"

static void stats_to(Flint__Rpc__HistogramStats *p, const metric_hist_stats *s) {
    flint__rpc__histogram_stats__init(p);
    p->count = s->count;
    p->min = s->min;
    p->max = s->max;
    p->mean = s->mean;
    p->stddev = s->stddev;
    p->p50 = s->p50;
    p->p75 = s->p75;
    p->p90 = s->p90;
    p->p95 = s->p95;
    p->p98 = s->p98;
    p->p99 = s->p99;
    p->p999 = s->p999;
}

static void stats_from(metric_hist_stats *s, const Flint__Rpc__HistogramStats *p) {
    memset(s, 0, sizeof *s);
    if (!p) return;
    s->count = p->count;
    s->min = p->min;
    s->max = p->max;
    s->mean = p->mean;
    s->stddev = p->stddev;
    s->p50 = p->p50;
    s->p75 = p->p75;
    s->p90 = p->p90;
    s->p95 = p->p95;
    s->p98 = p->p98;
    s->p99 = p->p99;
    s->p999 = p->p999;
}

Flint__Rpc__MetricValue **metric_set_to_proto(const metric_set *s, size_t *n) {
    *n = (size_t)s->n;
    if (s->n == 0) return NULL;
    Flint__Rpc__MetricValue **ptrs = xcalloc((size_t)s->n, sizeof *ptrs);
    /* One block: the values, then their histogram statistics (freed through ptrs[0]). */
    Flint__Rpc__MetricValue *vals = xcalloc((size_t)s->n, sizeof *vals + sizeof(Flint__Rpc__HistogramStats));
    Flint__Rpc__HistogramStats *hists = (Flint__Rpc__HistogramStats *)(vals + s->n);
    for (int i = 0; i < s->n; i++) {
        const metric_value *v = &s->v[i];
        Flint__Rpc__MetricValue *p = &vals[i];
        flint__rpc__metric_value__init(p);
        p->name = xstrdup(v->name);
        p->operator_ = xstrdup(v->op ? v->op : "");
        p->kind = (Flint__Rpc__MetricKind)v->kind;
        p->value = v->value;
        if (v->kind == METRIC_KIND_HISTOGRAM) {
            stats_to(&hists[i], &v->hist);
            p->histogram = &hists[i];
        }
        ptrs[i] = p;
    }
    return ptrs;
}

void metric_proto_free(Flint__Rpc__MetricValue **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        free(v[i]->name);
        free(v[i]->operator_);
    }
    if (n > 0) free(v[0]);   /* the block of values and statistics */
    free(v);
}

void metric_set_from_proto(metric_set *dst, Flint__Rpc__MetricValue *const *v, size_t n) {
    metric_set_clear(dst);
    for (size_t i = 0; i < n; i++) {
        const Flint__Rpc__MetricValue *p = v[i];
        if (!p->name || !p->name[0]) continue;
        metric_kind k = (unsigned)p->kind <= METRIC_KIND_HISTOGRAM ? (metric_kind)p->kind : METRIC_KIND_GAUGE;
        metric_value *mv = metric_set_add(dst, p->operator_, p->name, k, p->value);
        if (k == METRIC_KIND_HISTOGRAM) stats_from(&mv->hist, p->histogram);
    }
}

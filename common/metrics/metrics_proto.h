/* Metric dumps as protobuf (rpc.proto MetricValue): taskmanagers ship them, the jobmanager reads
 * them back. */
#ifndef FLINT_METRICS_PROTO_H
#define FLINT_METRICS_PROTO_H

#include <stddef.h>

#include "metrics/metrics.h"
#include "rpc.pb-c.h"

/* The values of s as protobuf messages (*n of them; NULL when none), strings copied. Free with
 * metric_proto_free. */
Flint__Rpc__MetricValue **metric_set_to_proto(const metric_set *s, size_t *n);
void metric_proto_free(Flint__Rpc__MetricValue **v, size_t n);
/* Replace dst's values with copies of v[0..n). Values without a name are skipped. */
void metric_set_from_proto(metric_set *dst, Flint__Rpc__MetricValue *const *v, size_t n);

#endif

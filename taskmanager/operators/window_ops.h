/* What the window and join operators (window.c, join.c) tell the tests and metrics. */
#ifndef FLINT_TM_WINDOW_OPS_H
#define FLINT_TM_WINDOW_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "operators/operator.h"

typedef struct tm_window_op_stats {
    size_t state_entries;        /* entries of all the operator's states (windows, buffers) */
    size_t event_timers, processing_timers;
    int64_t late_dropped;        /* late records dropped (no side output consumes them) */
} tm_window_op_stats;

/* An opened window, window_join or interval_join operator's numbers; false for other kinds. */
bool tm_window_op_stats_get(tm_op *op, tm_window_op_stats *out);
/* The interval join's part of it (join.c). */
bool tm_interval_join_stats(tm_op *op, tm_window_op_stats *out);

#endif

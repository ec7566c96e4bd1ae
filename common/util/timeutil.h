/* Clocks: monotonic milliseconds for timeouts and intervals, wall-clock milliseconds for what
 * users see (REST timestamps, log lines). */
#ifndef FLINT_TIMEUTIL_H
#define FLINT_TIMEUTIL_H

#include <stdint.h>

int64_t time_mono_ms(void);   /* CLOCK_MONOTONIC, ms */
int64_t time_mono_ns(void);   /* CLOCK_MONOTONIC, ns */
int64_t time_wall_ms(void);   /* CLOCK_REALTIME, ms since the epoch */

#endif

/* The watermark valve of a task's input (Flink's StatusWatermarkValve): the watermark and idle
 * status of every input channel (of every gate, both inputs of a two-input operator together),
 * combined into the input's watermark = the min over the active channels, and an idle status
 * when every channel is idle. A channel that becomes active again behind the combined watermark
 * is left out until it catches up, so it never moves the watermark back. Task thread only. */
#ifndef FLINT_TM_VALVE_H
#define FLINT_TM_VALVE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tm_valve {
    int n;
    int64_t *wm;              /* per channel, INT64_MIN at first */
    bool *idle;               /* per channel */
    int64_t out_wm;           /* the combined watermark given out so far (INT64_MIN at first) */
    bool out_idle;            /* idle was given out (and not active since) */
} tm_valve;

/* What an input did to the combined output (a bit set; ACTIVE comes before WATERMARK). */
enum {
    TM_VALVE_ACTIVE = 1,      /* the input was idle and is active again */
    TM_VALVE_IDLE = 2,        /* every channel is idle now */
    TM_VALVE_WATERMARK = 4    /* out_wm advanced */
};

void tm_valve_init(tm_valve *v, int n_channels);
void tm_valve_free(tm_valve *v);
/* A watermark of channel ch; returns the TM_VALVE_* bits (new watermark in v->out_wm). */
int tm_valve_watermark(tm_valve *v, int ch, int64_t wm);
/* An idle (true) / active status of channel ch. */
int tm_valve_status(tm_valve *v, int ch, bool idle);

#endif

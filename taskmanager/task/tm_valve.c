/* The watermark valve of a task's input (see tm_valve.h). */
#include <stdlib.h>

#include "task/tm_valve.h"
#include "util/alloc.h"

void tm_valve_init(tm_valve *v, int n) {
    v->n = n;
    v->wm = xcalloc((size_t)n + 1, sizeof *v->wm);
    v->idle = xcalloc((size_t)n + 1, sizeof *v->idle);
    for (int i = 0; i < n; i++) v->wm[i] = INT64_MIN;
    v->out_wm = INT64_MIN;
    v->out_idle = false;
}

void tm_valve_free(tm_valve *v) {
    free(v->wm);
    free(v->idle);
    v->wm = NULL;
    v->idle = NULL;
    v->n = 0;
}

static int combine(tm_valve *v) {
    int64_t min = INT64_MAX;
    bool active = false, counted = false;
    for (int i = 0; i < v->n; i++) {
        if (v->idle[i]) continue;
        active = true;
        if (v->wm[i] < v->out_wm) continue;   /* re-activated behind: not aligned yet */
        counted = true;
        if (v->wm[i] < min) min = v->wm[i];
    }
    if (!active) {
        if (v->out_idle || v->n == 0) return 0;
        v->out_idle = true;
        return TM_VALVE_IDLE;
    }
    int out = 0;
    if (v->out_idle) {
        v->out_idle = false;
        out |= TM_VALVE_ACTIVE;
    }
    if (counted && min > v->out_wm) {
        v->out_wm = min;
        out |= TM_VALVE_WATERMARK;
    }
    return out;
}

int tm_valve_watermark(tm_valve *v, int ch, int64_t wm) {
    if (ch < 0 || ch >= v->n || wm <= v->wm[ch]) return 0;
    v->wm[ch] = wm;
    if (v->idle[ch]) return 0;
    return combine(v);
}

int tm_valve_status(tm_valve *v, int ch, bool idle) {
    if (ch < 0 || ch >= v->n || v->idle[ch] == idle) return 0;
    v->idle[ch] = idle;
    return combine(v);
}

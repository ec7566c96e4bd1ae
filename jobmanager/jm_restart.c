/* Restart strategies (see jm_restart.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jm_restart.h"
#include "util/alloc.h"
#include "util/strutil.h"

struct jm_restart {
    jm_restart_config c;
    int64_t restarts;
    int64_t *failures;            /* failure-rate: times of the latest failures, a ring */
    int64_t n_failures, cap, head;
};

const char *jm_restart_type_name(jm_restart_type t) {
    switch (t) {
    case JM_RESTART_NONE: return "none";
    case JM_RESTART_FIXED_DELAY: return "fixed-delay";
    case JM_RESTART_FAILURE_RATE: return "failure-rate";
    }
    return "unknown";
}

int jm_restart_config_load(const flint_config *cfg, bool checkpointing, jm_restart_config *out,
                           flint_err *err) {
    memset(out, 0, sizeof *out);
    const char *t = config_str(cfg, CFG_RESTART_STRATEGY_TYPE);
    if (!t || !t[0]) {
        out->type = checkpointing ? JM_RESTART_FIXED_DELAY : JM_RESTART_NONE;
    } else if (!strcasecmp(t, "none") || !strcasecmp(t, "off") || !strcasecmp(t, "disable")) {
        out->type = JM_RESTART_NONE;
    } else if (!strcasecmp(t, "fixed-delay") || !strcasecmp(t, "fixeddelay")) {
        out->type = JM_RESTART_FIXED_DELAY;
    } else if (!strcasecmp(t, "failure-rate") || !strcasecmp(t, "failurerate")) {
        out->type = JM_RESTART_FAILURE_RATE;
    } else {
        return flint_err_set(err, FLINT_CONFIG,
                             "restart-strategy.type: expected none, fixed-delay or failure-rate, got '%.60s'", t);
    }
    if (out->type == JM_RESTART_FIXED_DELAY) {
        out->attempts = config_int(cfg, CFG_RESTART_FIXED_DELAY_ATTEMPTS);
        out->delay_ms = config_int(cfg, CFG_RESTART_FIXED_DELAY_DELAY);
    } else if (out->type == JM_RESTART_FAILURE_RATE) {
        out->max_failures = config_int(cfg, CFG_RESTART_FAILURE_RATE_MAX);
        out->interval_ms = config_int(cfg, CFG_RESTART_FAILURE_RATE_INTERVAL);
        out->delay_ms = config_int(cfg, CFG_RESTART_FAILURE_RATE_DELAY);
    }
    return 0;
}

void jm_restart_describe(const jm_restart_config *c, char *buf, size_t len) {
    char d[32], i[32];
    str_format_duration(c->delay_ms, d, sizeof d);
    switch (c->type) {
    case JM_RESTART_NONE: snprintf(buf, len, "none"); break;
    case JM_RESTART_FIXED_DELAY:
        snprintf(buf, len, "fixed-delay (%" PRId64 " attempt%s, %s delay)", c->attempts,
                 c->attempts == 1 ? "" : "s", d);
        break;
    case JM_RESTART_FAILURE_RATE:
        str_format_duration(c->interval_ms, i, sizeof i);
        snprintf(buf, len, "failure-rate (%" PRId64 " failure%s per %s, %s delay)", c->max_failures,
                 c->max_failures == 1 ? "" : "s", i, d);
        break;
    }
}

jm_restart *jm_restart_new(const jm_restart_config *c) {
    assert(c);
    jm_restart *r = XNEW(jm_restart);
    r->c = *c;
    if (c->type == JM_RESTART_FAILURE_RATE) {
        /* Only the latest max_failures + 1 failures matter; bound the ring for huge settings. */
        r->cap = c->max_failures + 1;
        if (r->cap > 4096 || r->cap < 1) r->cap = 4096;
        r->failures = xcalloc((size_t)r->cap, sizeof *r->failures);
    }
    return r;
}

void jm_restart_free(jm_restart *r) {
    if (!r) return;
    free(r->failures);
    free(r);
}

const jm_restart_config *jm_restart_get_config(const jm_restart *r) { return &r->c; }

int64_t jm_restart_count(const jm_restart *r) { return r->restarts; }

bool jm_restart_on_failure(jm_restart *r, int64_t now_ms, int64_t *delay_ms) {
    *delay_ms = 0;
    switch (r->c.type) {
    case JM_RESTART_NONE:
        return false;
    case JM_RESTART_FIXED_DELAY:
        if (r->restarts >= r->c.attempts) return false;
        break;
    case JM_RESTART_FAILURE_RATE: {
        /* Record, then count the failures in (now - interval, now]. */
        r->failures[(r->head + r->n_failures) % r->cap] = now_ms;
        if (r->n_failures < r->cap) r->n_failures++;
        else r->head = (r->head + 1) % r->cap;
        int64_t in_window = 0;
        for (int64_t k = 0; k < r->n_failures; k++)
            if (now_ms - r->failures[(r->head + k) % r->cap] < r->c.interval_ms) in_window++;
        if (in_window > r->c.max_failures) return false;
        break;
    }
    }
    r->restarts++;
    *delay_ms = r->c.delay_ms;
    return true;
}

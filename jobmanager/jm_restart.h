/* Restart strategies: whether a job that failed restarts, and after how long (Flink's
 * restart-strategy.* keys). Pure logic with times passed in, so the job master's failover path is
 * tested without clocks.
 *   none          never restart
 *   fixed-delay   restart up to `attempts` times (Integer.MAX_VALUE by default), each after `delay`
 *   failure-rate  restart after `delay` while at most `max-failures-per-interval` failures fall in
 *                 any window of `failure-rate-interval`; the failure that exceeds it fails the job
 * restart-strategy.type empty: fixed-delay when checkpointing is enabled, else none (Flink). */
#ifndef FLINT_JM_RESTART_H
#define FLINT_JM_RESTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "flint/status.h"

typedef enum jm_restart_type {
    JM_RESTART_NONE,
    JM_RESTART_FIXED_DELAY,
    JM_RESTART_FAILURE_RATE,
} jm_restart_type;

typedef struct jm_restart_config {
    jm_restart_type type;
    int64_t attempts;             /* fixed-delay */
    int64_t delay_ms;             /* fixed-delay and failure-rate */
    int64_t max_failures;         /* failure-rate: per interval */
    int64_t interval_ms;          /* failure-rate */
} jm_restart_config;

/* The strategy cfg configures (a job's effective configuration). checkpointing_enabled picks the
 * default when restart-strategy.type is empty. FLINT_CONFIG naming the key for an unknown type
 * (Flink's aliases are accepted: fixeddelay, fixed-delay, failurerate, failure-rate, none, off,
 * disable). */
int jm_restart_config_load(const flint_config *cfg, bool checkpointing_enabled, jm_restart_config *out,
                           flint_err *err);
/* "fixed-delay" ...; never NULL. */
const char *jm_restart_type_name(jm_restart_type t);
/* One line for logs and REST: "fixed-delay (3 attempts, 1 s delay)". */
void jm_restart_describe(const jm_restart_config *c, char *buf, size_t len);

typedef struct jm_restart jm_restart;

/* Free with jm_restart_free. */
jm_restart *jm_restart_new(const jm_restart_config *c);
void jm_restart_free(jm_restart *r);
const jm_restart_config *jm_restart_get_config(const jm_restart *r);

/* A failure at monotonic time now_ms: records it and returns true when the job may restart, with
 * the wait before redeploying in *delay_ms (OUT), false when it must fail. */
bool jm_restart_on_failure(jm_restart *r, int64_t now_ms, int64_t *delay_ms);
/* Restarts granted so far. */
int64_t jm_restart_count(const jm_restart *r);

#endif

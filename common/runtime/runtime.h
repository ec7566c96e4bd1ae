/* The runtime side of the public job API (flint_ctx_*, flint_out_row, flint_emit, flint_emit_row):
 * the layouts of flint_ctx and flint_collector, which the taskmanager fills in. The functions live
 * in libflint (runtime.c), so a job artifact, which is linked against nothing, resolves them in
 * whichever process loads it: the taskmanager calls them for real, the client only needs them to
 * exist when it dlopen()s the artifact with RTLD_NOW. Nothing here knows about tasks or threads:
 * a collector hands rows to the runtime through its emit callback. */
#ifndef FLINT_RUNTIME_H
#define FLINT_RUNTIME_H

#include <stdbool.h>

#include "flint/flint.h"
#include "jobgraph.pb-c.h"

/* How libflint reaches the taskmanager's timer service for the context's operator (issue 5):
 * register (del false) or delete a timer of the current key. */
typedef struct flint_ctx_timer_ops {
    void (*timer)(void *ud, flint_time_domain domain, int64_t time, bool del);
} flint_ctx_timer_ops;

/* How libflint reaches the taskmanager's state for the context's operator (issue 5; filled by
 * taskmanager/state/tm_state_api.c). Every flint_state and flint_state_iter starts with the
 * header below, so the flint_value_* / flint_list_* / ... functions of runtime_state.c just
 * dispatch; a state whose creation failed is a no-op dummy (the task fails with the reason). */
typedef enum flint_state_kind {
    FLINT_STATE_VALUE = 1, FLINT_STATE_LIST, FLINT_STATE_MAP, FLINT_STATE_REDUCING,
    FLINT_STATE_AGGREGATING, FLINT_STATE_OPERATOR_LIST, FLINT_STATE_BROADCAST
} flint_state_kind;

typedef struct flint_state_ops {
    /* NULL after failing ctx (flint_ctx_fail) with the reason. */
    flint_state *(*create)(flint_ctx *ctx, flint_state_kind kind, const flint_state_desc *desc);
    bool (*value_get)(flint_state *st, flint_row *out);
    void (*value_update)(flint_state *st, const flint_row *value);
    void (*list_add)(flint_state *st, const flint_row *value);
    void (*list_update)(flint_state *st, int n, const flint_row *values);
    flint_state_iter *(*list_iter)(flint_state *st);
    bool (*map_get)(flint_state *st, const flint_row *key, flint_row *out);
    void (*map_put)(flint_state *st, const flint_row *key, const flint_row *value);
    void (*map_remove)(flint_state *st, const flint_row *key);
    bool (*map_contains)(flint_state *st, const flint_row *key);
    flint_state_iter *(*map_iter)(flint_state *st);
    void (*add)(flint_state *st, const flint_row *value);
    bool (*get)(flint_state *st, flint_row *out);
    void (*clear)(flint_state *st);
} flint_state_ops;

struct flint_state {
    const flint_state_ops *ops;
};

/* An iterator: anyone (state, window operators) may implement one. next returns false at the end
 * (after freeing the iterator); close frees an unfinished one. */
struct flint_state_iter {
    bool (*next)(flint_state_iter *it, flint_row *key, flint_row *value);
    void (*close)(flint_state_iter *it);
};

/* The context of one operator instance (one operator of one subtask). Used by one thread. */
struct flint_ctx {
    int subtask;                          /* 0-based */
    int parallelism;
    const char *task_name;                /* "Map -> Sink (2/4)"; not owned */
    /* flint_ctx_param looks in the operator's parameters first, then the job's (not owned). */
    Flint__Graph__KeyValue *const *op_params;
    size_t n_op_params;
    Flint__Graph__KeyValue *const *job_params;
    size_t n_job_params;
    void *user_data;                      /* flint_ctx_set_user_data */
    /* Event time, keys and timers (issue 5), filled by the taskmanager; NULL/zero means none. */
    const int64_t *timestamp;             /* the current record's (tm_runtime.timestamp) */
    const int64_t *watermark;             /* the operator's (tm_op.watermark) */
    flint_row current_key;                /* keyed operators: the current key (schema NULL: none) */
    const flint_ctx_timer_ops *timer_ops; /* keyed operators with timers */
    void *timer_ud;
    bool broadcast_writable;              /* flint_broadcast_process: in its broadcast side */
    const flint_state_ops *state_ops;     /* keyed/operator state (NULL: none; calls fail) */
    void *state_ud;                       /* the taskmanager's (tm_state_api.c) */
    bool failed;                          /* flint_ctx_fail was called; the first message wins */
    char error[512];
};

/* A collector (flat_map, process): the builder of the next output row and where rows go. */
struct flint_collector {
    flint_row_builder out;                /* of the operator's output schema */
    /* Hand one row to the runtime (the operator's outputs); the row is only borrowed. */
    void (*emit)(flint_collector *c, const flint_row *row);
    /* Side outputs (issue 5; NULL when the operator has none): the reset builder of tag's schema
     * (NULL for an undeclared tag), and emit what it built. */
    flint_row_builder *(*side_row)(flint_collector *c, const char *tag);
    void (*side_emit)(flint_collector *c, const char *tag);
    void *rt;                             /* the runtime's own pointer */
};

/* Clear a context's failure (before reusing it in tests). */
static inline void flint_ctx_clear_failure(flint_ctx *ctx) {
    ctx->failed = false;
    ctx->error[0] = '\0';
}

#endif

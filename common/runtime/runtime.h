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
    bool failed;                          /* flint_ctx_fail was called; the first message wins */
    char error[512];
};

/* A collector (flat_map, process): the builder of the next output row and where rows go. */
struct flint_collector {
    flint_row_builder out;                /* of the operator's output schema */
    /* Hand one row to the runtime (the operator's outputs); the row is only borrowed. */
    void (*emit)(flint_collector *c, const flint_row *row);
    void *rt;                             /* the runtime's own pointer */
};

/* Clear a context's failure (before reusing it in tests). */
static inline void flint_ctx_clear_failure(flint_ctx *ctx) {
    ctx->failed = false;
    ctx->error[0] = '\0';
}

#endif

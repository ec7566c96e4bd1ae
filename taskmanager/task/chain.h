/* An operator chain: the operators of one job vertex as instances (tm_op), wired as the job graph
 * says (OperatorDef.chained_outputs), run by one task thread. operators[0] is the head: the task
 * feeds it (or runs it, a source). Network outputs are attached by the task with
 * tm_chain_add_output. */
#ifndef FLINT_TM_CHAIN_H
#define FLINT_TM_CHAIN_H

#include "operators/operator.h"

typedef struct tm_chain {
    tm_op **ops;
    int n;
    tm_runtime *rt;        /* not owned */
} tm_chain;

/* Make the instances of v's operators (their schemas parsed, chained outputs linked). Nothing is
 * opened yet. FLINT_OK, or an error in err (unknown kind, bad schema, bad wiring). */
int tm_chain_build(tm_chain *c, const Flint__Graph__JobVertex *v, tm_runtime *rt, flint_err *err);
/* Add a callback output to operator index op (after its chained outputs). */
void tm_chain_add_output(tm_chain *c, int op, tm_output_fn fn, void *ud);
/* The same with watermark/idle callbacks (out->fn, ud, wm_fn, idle_fn), to the side output tag
 * ("" or NULL: the main output). */
void tm_chain_add_output_tagged(tm_chain *c, int op, const tm_output *out, const char *tag);
/* Open every operator, the tail first (so every operator's outputs are ready before it runs). On
 * failure the message is in c->rt->err; opened operators are closed by tm_chain_close. */
int tm_chain_open(tm_chain *c);
/* The head's input has ended: end_input on each operator once all its chained inputs have ended,
 * from the head down, so rows emitted at the end flow before the next operator's end. */
int tm_chain_end_input(tm_chain *c);
/* Close every opened operator (head first) and free the instances. */
void tm_chain_close(tm_chain *c);

#endif

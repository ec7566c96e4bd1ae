/* The jobmanager's REST server (libevent evhttp, JSON by jansson): Flink's REST paths and field
 * names, and the web status page compiled into the binary. */
#ifndef FLINT_JM_REST_H
#define FLINT_JM_REST_H

#include "flint/status.h"

struct jobmanager;
typedef struct jm_rest jm_rest;

/* Serve on host:port (port 0 picks a free one). NULL with err on failure. */
jm_rest *jm_rest_start(struct jobmanager *jm, const char *host, int port, flint_err *err);
int jm_rest_port(const jm_rest *rest);
void jm_rest_free(jm_rest *rest);

#endif

/* Shared helpers of the jobmanager unit suites (check_jm_*.c): small job graphs built in code and
 * fake taskmanager registrations. Header-only; each suite includes it once. */
#ifndef FLINT_CHECK_JM_HELPERS_H
#define FLINT_CHECK_JM_HELPERS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jm_job.h"
#include "jm_rm.h"
#include "jobgraph.pb-c.h"
#include "util/alloc.h"

#define TEST_JOB_ID "0123456789abcdef0123456789abcdef"

/* One edge of a test graph: vertex indexes and the partitioner. */
typedef struct test_edge {
    int src, dst;
    Flint__Graph__Partitioner part;
} test_edge;

/* A job graph with nv vertices (graph id = index + 1, name "V<index>", parallelism par[i], slot
 * sharing group groups[i] or default when groups is NULL, one "map" operator each) and ne edges
 * (edge id = 10 + index; HASH edges key on field 0). Returned as an unpacked message (free with
 * flint__graph__job_graph__free_unpacked, or hand it to jm_job_new). */
static inline Flint__Graph__JobGraph *test_graph(const char *job_id, int nv, const int *par,
                                                 const char *const *groups, int ne,
                                                 const test_edge *edges) {
    Flint__Graph__JobGraph g = FLINT__GRAPH__JOB_GRAPH__INIT;
    g.job_id = (char *)job_id;
    g.name = "Test Job";
    g.max_parallelism = 128;
    g.buffer_timeout_ms = 100;
    Flint__Graph__JobVertex *vs = xcalloc((size_t)nv + 1, sizeof *vs);
    Flint__Graph__JobVertex **vp = xcalloc((size_t)nv + 1, sizeof *vp);
    Flint__Graph__OperatorDef *ops = xcalloc((size_t)nv + 1, sizeof *ops);
    Flint__Graph__OperatorDef **opp = xcalloc((size_t)nv + 1, sizeof *opp);
    char (*names)[16] = xcalloc((size_t)nv + 1, sizeof *names);
    for (int i = 0; i < nv; i++) {
        flint__graph__job_vertex__init(&vs[i]);
        flint__graph__operator_def__init(&ops[i]);
        ops[i].node_id = i + 1;
        ops[i].kind = "map";
        ops[i].name = "Map";
        opp[i] = &ops[i];
        snprintf(names[i], sizeof names[i], "V%d", i);
        vs[i].id = i + 1;
        vs[i].name = names[i];
        vs[i].parallelism = par[i];
        vs[i].slot_sharing_group = groups && groups[i] ? (char *)groups[i] : "";
        vs[i].n_operators = 1;
        vs[i].operators = &opp[i];
        vp[i] = &vs[i];
    }
    g.n_vertices = (size_t)nv;
    g.vertices = vp;
    Flint__Graph__JobEdge *es = xcalloc((size_t)ne + 1, sizeof *es);
    Flint__Graph__JobEdge **ep = xcalloc((size_t)ne + 1, sizeof *ep);
    int32_t key0 = 0;
    for (int i = 0; i < ne; i++) {
        flint__graph__job_edge__init(&es[i]);
        es[i].id = 10 + i;
        es[i].source_vertex = edges[i].src + 1;
        es[i].target_vertex = edges[i].dst + 1;
        es[i].partitioner = edges[i].part;
        es[i].schema = "word STRING";
        if (edges[i].part == FLINT__GRAPH__PARTITIONER__HASH) {
            es[i].n_key_fields = 1;
            es[i].key_fields = &key0;
        }
        ep[i] = &es[i];
    }
    g.n_edges = (size_t)ne;
    g.edges = ep;
    size_t n = flint__graph__job_graph__get_packed_size(&g);
    uint8_t *buf = xmalloc(n);
    flint__graph__job_graph__pack(&g, buf);
    Flint__Graph__JobGraph *copy = flint__graph__job_graph__unpack(NULL, n, buf);
    free(buf);
    free(vs);
    free(vp);
    free(ops);
    free(opp);
    free(names);
    free(es);
    free(ep);
    return copy;
}

static inline jm_time test_time(int64_t ms) {
    jm_time t = {1700000000000 + ms, ms};
    return t;
}

static inline jm_location test_loc(const char *rid, const char *host, int port, int slot) {
    jm_location l;
    memset(&l, 0, sizeof l);
    snprintf(l.resource_id, sizeof l.resource_id, "%s", rid);
    snprintf(l.host, sizeof l.host, "%s", host);
    l.data_port = port;
    l.slot_index = slot;
    return l;
}

/* Register a fake taskmanager (its "connection" is only an identity). */
static inline jm_tm *test_register(jm_rm *rm, const char *rid, const char *host, int port, int slots,
                                   int conn_id) {
    Flint__Rpc__RegisterTaskManager m = FLINT__RPC__REGISTER_TASK_MANAGER__INIT;
    m.resource_id = (char *)rid;
    m.host = (char *)host;
    m.data_port = (uint32_t)port;
    m.num_slots = (uint32_t)slots;
    rpc_conn *replaced;
    if (jm_rm_register(rm, &m, (rpc_conn *)(intptr_t)(0x1000 + conn_id), 0, &replaced, NULL) != 0)
        return NULL;
    return jm_rm_find(rm, rid);
}

#endif

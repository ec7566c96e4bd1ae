/* Inside the stream graph: the structures behind flint_env and flint_stream, shared by the API
 * (graph_env.c) and the job graph builder (graph_build.c). Not for use outside common/graph. */
#ifndef FLINT_GRAPH_INTERNAL_H
#define FLINT_GRAPH_INTERNAL_H

#include "graph/graph.h"

/* A list of key/value strings; setting a key again replaces its value (order of first set). */
typedef struct graph_kvs {
    char **keys, **values;
    int n, cap;
} graph_kvs;

void graph_kvs_set(graph_kvs *kv, const char *key, const char *value);
const char *graph_kvs_get(const graph_kvs *kv, const char *key);
void graph_kvs_free(graph_kvs *kv);

/* How an operator chains (Flink's ChainingStrategy). */
typedef enum graph_chaining {
    GRAPH_CHAIN_ALWAYS,     /* chains with its input and its outputs when the rules allow */
    GRAPH_CHAIN_HEAD,       /* start_new_chain: never chains with its input */
    GRAPH_CHAIN_NEVER       /* disable_chaining: neither with its input nor its outputs */
} graph_chaining;

/* A user function an operator names. */
typedef struct graph_fnref {
    char *role;             /* "fn", "fn.open", "fn.close", "key.selector" */
    char *symbol;
    void (*ptr)(void);
} graph_fnref;

#define GRAPH_MAX_FNS 8        /* fn, fn.open, fn.close, key.selector, agg.create/add/merge/result */

/* How records are keyed on an edge into a keyed operator: field indexes or a selector. */
typedef struct graph_key {
    int *fields;            /* field indexes of the input schema */
    int nfields;
    char *selector;         /* key-selector symbol, or NULL */
    void (*selector_ptr)(void);
    char *key_schema;       /* the selector's key columns (canonical text) */
} graph_key;

/* A stream node: one operator of the stream graph. */
typedef struct graph_node {
    int id;                 /* 1, 2, ... in creation order (a topological order) */
    graph_op_kind kind;
    const char *api;        /* the API call that made it ("map", "sum"), for messages */
    char *name;
    bool named;             /* name set by flint_name */
    char *uid;              /* NULL when not set */
    int parallelism;        /* 0: not set */
    bool non_parallel;      /* always parallelism 1 (text file and socket sources) */
    char *slot_sharing_group; /* NULL: inherited from the inputs */
    graph_chaining chaining;
    flint_schema *in_schema;  /* NULL for sources */
    flint_schema *out_schema; /* NULL for sinks and after a schema error */
    graph_kvs params, user_params;
    graph_fnref fns[GRAPH_MAX_FNS];
    int nfns;
    bool takes_udf;         /* the operator runs a user function (with_open/with_close allowed) */
    const graph_key *key;   /* keyed operators: their key (owned by env) */
} graph_node;

/* A stream edge between two nodes. */
typedef struct graph_edge {
    int id;                 /* 1, 2, ... in creation order */
    graph_node *src, *dst;
    int partitioner;        /* a Flint__Graph__Partitioner, or -1: FORWARD or REBALANCE by parallelism */
    const graph_key *key;   /* HASH: the key (owned by env) */
    const char *tag;        /* a side output of src (owned by env), NULL: its main output */
    const flint_schema *schema;   /* the side output's schema (owned by env), NULL: src's */
    int input_index;        /* 1: the second input of a TWO_INPUT dst (graph_time.c sets it) */
} graph_edge;

/* One input of what a stream stands for: a node and the partitioning of the next edge. */
typedef struct graph_input {
    graph_node *node;
    int partitioner;        /* -1: default */
    const graph_key *key;
    const char *tag;        /* side output (flint_side_output): tag and schema, owned by env */
    const flint_schema *schema;
} graph_input;

struct flint_stream {
    flint_env *env;
    graph_input *inputs;    /* one for an operator's stream; several after a union */
    int ninputs;
    const char *what;       /* NULL for an operator's own stream, else "rebalance", "union", ... */
    bool is_sink;
};

struct flint_keyed_stream {
    flint_env *env;
    flint_stream *stream;   /* the input with HASH partitioning pending */
    const graph_key *key;
};

struct flint_env {
    graph_env_defaults defaults;
    int parallelism;        /* flint_env_set_parallelism, 0: not set */
    int max_parallelism;    /* 0: not set */
    int64_t buffer_timeout_ms;
    bool buffer_timeout_set;
    bool chaining_disabled;
    graph_kvs config, params;

    graph_node **nodes;
    int nnodes, cap_nodes;
    graph_edge **edges;
    int nedges, cap_edges;
    flint_stream **streams;       /* every stream handed out, freed with env */
    int nstreams, cap_streams;
    flint_keyed_stream **keyed;
    int nkeyed, cap_keyed;
    graph_key **keys;
    int nkeys, cap_keys;
    void **owned;                 /* graph_env_own: freed (free()) with env */
    int nowned, cap_owned;
    flint_schema **owned_schemas; /* graph_env_own_schema: freed with env */
    int nowned_schemas, cap_owned_schemas;

    /* The first error: code, and either a whole message (node NULL) or a message about a node,
     * composed with the node's current name so that a later flint_name shows in it. */
    int err_code;
    const graph_node *err_node;
    char *err_text;
    char *err_msg;

    graph_execute_fn hook;
    void *hook_ud;
    bool executed;
    Flint__Graph__JobGraph *job;
};

/* How messages name a node: its name, plus the API call when the name does not say it
 * ("Keyed Aggregation (sum)", "tokenize (flat_map)", but "Map"). Returns a new string. */
char *graph_node_label(const graph_node *n);

/* ---- helpers of graph_env.c for the other API files (graph_time.c, graph_window.c) ---------- */
/* A new node of kind (api: the API call for messages; name: its default name). */
graph_node *graph_node_new(flint_env *env, graph_op_kind kind, const char *api, const char *name);
/* The stream of node n's output. */
flint_stream *graph_op_stream(flint_env *env, graph_node *n);
/* Connect every input of in to n (edges in creation order); returns in's schema (NULL: unknown)
 * and sets n->in_schema to a copy. */
const flint_schema *graph_connect_input(flint_env *env, graph_node *n, flint_stream *in);
/* The schema of what s carries; NULL when unknown or a sink. */
const flint_schema *graph_stream_schema(const flint_stream *s);
/* A keyed operator on ks: node connected to ks with its key params (key.fields or key.selector +
 * key.schema); output schema = input schema. */
graph_node *graph_keyed_op(flint_keyed_stream *ks, graph_op_kind kind, const char *api, const char *name);
/* Record user function fn in role ("fn", "agg.add", ...) of n (checked: a FLINT_FN). */
void graph_set_fn(flint_env *env, graph_node *n, const char *role, flint_fn fn);
/* The key params of a keyed input of n under prefix ("key", or "key2" for a two-input
 * operator's second input): <prefix>.fields, or <prefix>.selector (a user function) and
 * <prefix>.schema. */
void graph_key_params(flint_env *env, graph_node *n, const graph_key *k, const char *prefix);
/* Parse a column list for n; NULL after recording an error naming what. */
flint_schema *graph_parse_schema(flint_env *env, graph_node *n, const char *what, const char *text);
/* Record an error about node n (the first error wins). */
void graph_node_fail(graph_node *n, flint_env *env, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Free p (with free()) when env is freed. */
void graph_env_own(flint_env *env, void *p);
/* Free s (flint_schema_free) when env is freed. */
void graph_env_own_schema(flint_env *env, flint_schema *s);
/* graph_window.c: checks that need the whole graph (a late-data side output declared with the
 * window's input schema). FLINT_OK or an error naming the operator. */
int graph_window_check(const flint_env *env, flint_err *err);

#endif

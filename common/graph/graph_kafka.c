/* The Kafka half of the job API (flint.h, "Kafka connectors"): flint_source_kafka and
 * flint_sink_kafka as stream graph nodes. Everything that can be checked before submission is
 * checked here (schemas with METADATA columns, formats against the columns they fill, startup
 * options, topic patterns, properties); the taskmanager side (taskmanager/connectors/) reads the
 * parameters written here. Parameter names are listed in docs/connectors.md ("Operator
 * parameters"). */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph/graph_internal.h"
#include "row/row_key.h"
#include "util/alloc.h"
#include "util/strutil.h"

#define KAFKA_DEFAULT_DISCOVERY_MS 300000   /* Flink's partition.discovery.interval.ms default */

static void set_int(graph_node *n, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    graph_kvs_set(&n->params, key, buf);
}

/* ---- metadata columns ------------------------------------------------------------------------- */

typedef struct meta_key {
    const char *name;
    flint_type types[2];
    int ntypes;
} meta_key;

static const meta_key meta_keys[] = {
    {"key", {FLINT_BYTES, FLINT_STRING}, 2},
    {"topic", {FLINT_STRING}, 1},
    {"partition", {FLINT_INT, FLINT_BIGINT}, 2},
    {"offset", {FLINT_BIGINT}, 1},
    {"timestamp", {FLINT_TIMESTAMP, FLINT_BIGINT}, 2},
    {"timestamp-type", {FLINT_STRING}, 1},
    {"headers", {FLINT_STRING, FLINT_BYTES}, 2},
};

static const meta_key *meta_find(const char *name) {
    for (size_t i = 0; i < sizeof meta_keys / sizeof meta_keys[0]; i++)
        if (strcmp(meta_keys[i].name, name) == 0) return &meta_keys[i];
    return NULL;
}

/* Whether word w (length n) is keyword kw, any case. */
static bool is_word(const char *w, size_t n, const char *kw) {
    return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

/* Split schema text into the plain column list (returned, new) and the metadata columns:
 * "name TYPE METADATA [FROM 'key'] [VIRTUAL]". *meta gets "name=key,..." (new; column names, the
 * indexes are resolved after parsing). NULL after recording an error. */
static char *split_metadata(flint_env *env, graph_node *n, const char *text, char **meta) {
    size_t cap = strlen(text) + 1, used = 0, mused = 0;
    char *plain = xmalloc(cap), *m = xmalloc(cap * 2 + 1);
    m[0] = plain[0] = '\0';
    const char *p = text;
    while (*p) {
        /* One column: up to a comma outside parentheses. */
        int depth = 0;
        const char *q = p;
        while (*q && !(*q == ',' && depth == 0)) {
            if (*q == '(') depth++;
            else if (*q == ')') depth--;
            q++;
        }
        /* Tokens of [p, q). */
        const char *tok[16];
        size_t len[16];
        int nt = 0;
        const char *r = p;
        while (r < q && nt < 16) {
            while (r < q && isspace((unsigned char)*r)) r++;
            if (r >= q) break;
            const char *s = r;
            if (*r == '\'') {
                r++;
                while (r < q && *r != '\'') r++;
                if (r < q) r++;
            } else {
                int d = 0;
                while (r < q && (d > 0 || !isspace((unsigned char)*r))) {
                    if (*r == '(') d++;
                    else if (*r == ')') d--;
                    r++;
                }
            }
            tok[nt] = s;
            len[nt] = (size_t)(r - s);
            nt++;
        }
        int mi = -1;
        for (int i = 0; i < nt; i++)
            if (is_word(tok[i], len[i], "METADATA")) {
                mi = i;
                break;
            }
        size_t keep = mi < 0 ? (size_t)(q - p) : (size_t)(tok[mi] - p);
        if (used) plain[used++] = ',';
        memcpy(plain + used, p, keep);
        used += keep;
        plain[used] = '\0';
        if (mi >= 0) {
            if (mi < 2) {
                graph_node_fail(n, env, "schema: METADATA needs a column name and type before it ('%.*s')",
                                (int)(q - p), p);
                goto bad;
            }
            char key[64];
            int k = mi + 1;
            size_t klen = len[0];
            if (klen >= sizeof key) klen = sizeof key - 1;
            memcpy(key, tok[0], klen);   /* default: the column's name */
            key[klen] = '\0';
            if (k < nt && is_word(tok[k], len[k], "FROM")) {
                if (k + 1 >= nt || len[k + 1] < 2 || tok[k + 1][0] != '\'' || tok[k + 1][len[k + 1] - 1] != '\'') {
                    graph_node_fail(n, env, "schema: expected METADATA FROM '<key>' in '%.*s'", (int)(q - p), p);
                    goto bad;
                }
                klen = len[k + 1] - 2;
                if (klen >= sizeof key) klen = sizeof key - 1;
                memcpy(key, tok[k + 1] + 1, klen);
                key[klen] = '\0';
                k += 2;
            }
            if (k < nt && is_word(tok[k], len[k], "VIRTUAL")) k++;
            if (k < nt) {
                graph_node_fail(n, env, "schema: unexpected '%.*s' after METADATA in '%.*s'", (int)len[k], tok[k],
                                (int)(q - p), p);
                goto bad;
            }
            if (!meta_find(key)) {
                graph_node_fail(n, env,
                                "schema: unknown metadata key '%s' (key, topic, partition, offset, timestamp, "
                                "timestamp-type, headers)",
                                key);
                goto bad;
            }
            mused += (size_t)sprintf(m + mused, "%s%.*s=%s", mused ? "," : "", (int)len[0], tok[0], key);
        }
        p = *q ? q + 1 : q;
    }
    *meta = m;
    return plain;
bad:
    free(plain);
    free(m);
    return NULL;
}

/* ---- formats ------------------------------------------------------------------------------------ */

static bool format_known(const char *f) {
    return strcmp(f, "raw") == 0 || strcmp(f, "text") == 0 || strcmp(f, "json") == 0 || strcmp(f, "csv") == 0;
}

/* Check that format fits the columns cols[0..n) of s (what: "value", "key"); sink: writing. */
static bool format_fits(flint_env *env, graph_node *n, const char *what, const char *format, const flint_schema *s,
                        const int *cols, int ncols, bool sink) {
    if (!format_known(format)) {
        graph_node_fail(n, env, "unknown %s format '%s' (raw, text, json or csv)", what, format);
        return false;
    }
    bool raw = strcmp(format, "raw") == 0, text = strcmp(format, "text") == 0;
    if (raw || (text && !sink)) {
        if (ncols != 1) {
            graph_node_fail(n, env, "the %s format '%s' needs exactly one %s column, the schema has %d", what, format,
                            raw ? "BYTES or STRING" : "STRING", ncols);
            return false;
        }
        flint_type t = flint_schema_field_type(s, cols[0]);
        if (t != FLINT_STRING && (text || t != FLINT_BYTES)) {
            graph_node_fail(n, env, "the %s format '%s' needs a %s column; '%s' is %s", what, format,
                            raw ? "BYTES or STRING" : "STRING", flint_schema_field_name(s, cols[0]), flint_type_name(t));
            return false;
        }
    }
    return true;
}

/* ---- properties ----------------------------------------------------------------------------------- */

typedef enum prop_type { P_BOOL, P_CHAR, P_DURATION, P_STRING, P_CHOICE, P_INT, P_RATE } prop_type;

typedef struct prop_def {
    const char *key;
    prop_type type;
    const char *choices;      /* P_CHOICE: '|'-separated */
} prop_def;

static const prop_def source_props[] = {
    {"format.ignore-parse-errors", P_BOOL, NULL},
    {"json.ignore-parse-errors", P_BOOL, NULL},
    {"csv.ignore-parse-errors", P_BOOL, NULL},
    {"json.fail-on-missing-field", P_BOOL, NULL},
    {"csv.field-delimiter", P_CHAR, NULL},
    {"csv.quote-character", P_CHAR, NULL},
    {"partition.discovery.interval.ms", P_DURATION, NULL},
    {"commit.offsets.on.checkpoint", P_BOOL, NULL},
    {"client.id.prefix", P_STRING, NULL},
    {"records-per-second", P_RATE, NULL},
    {NULL, 0, NULL},
};

static const prop_def sink_props[] = {
    {"csv.field-delimiter", P_CHAR, NULL},
    {"csv.quote-character", P_CHAR, NULL},
    {"key.csv.field-delimiter", P_CHAR, NULL},
    {"value.fields-include", P_CHOICE, "ALL|EXCEPT_KEY"},
    {"sink.flush-timeout.ms", P_DURATION, NULL},
    {"sink.transaction-pool-size", P_INT, NULL},
    {"client.id.prefix", P_STRING, NULL},
    {NULL, 0, NULL},
};

static bool choice_ok(const char *choices, const char *v) {
    size_t vl = strlen(v);
    for (const char *c = choices; *c;) {
        const char *e = strchr(c, '|');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == vl && strncasecmp(c, v, l) == 0) return true;
        c += l + (e ? 1 : 0);
    }
    return false;
}

/* Copy the user's properties into n's params, checking connector keys. */
static void put_properties(flint_env *env, graph_node *n, const char *const *props, const prop_def *defs) {
    if (!props) return;
    for (int i = 0; props[i]; i += 2) {
        const char *k = props[i], *v = props[i + 1];
        if (!v) {
            graph_node_fail(n, env, "property '%s' has no value (properties are key, value pairs ending in NULL)", k);
            return;
        }
        if (str_starts_with(k, "properties.")) {
            if (!k[11]) {
                graph_node_fail(n, env, "property 'properties.' names no librdkafka key");
                return;
            }
            if (strcmp(k, "properties.bootstrap.servers") == 0 || strcmp(k, "properties.group.id") == 0 ||
                strcmp(k, "properties.transactional.id") == 0) {
                graph_node_fail(n, env, "property '%s': set it through the options struct, not as a property", k);
                return;
            }
            graph_kvs_set(&n->params, k, v);
            continue;
        }
        const prop_def *d = defs;
        while (d->key && strcmp(d->key, k) != 0) d++;
        if (!d->key) {
            graph_node_fail(n, env,
                            "unknown property '%s' (librdkafka settings take the prefix 'properties.'; "
                            "connector keys are listed in docs/connectors.md)",
                            k);
            return;
        }
        bool ok = true;
        bool b;
        int64_t ms;
        switch (d->type) {
        case P_BOOL: ok = str_parse_bool(v, &b) == 0; break;
        case P_CHAR: ok = strlen(v) == 1 || strcmp(v, "\\t") == 0; break;
        case P_DURATION: ok = str_parse_duration_ms(v, &ms) == 0 || (str_parse_int(v, &ms) == 0 && ms < 0); break;
        case P_STRING: ok = true; break;
        case P_CHOICE: ok = choice_ok(d->choices, v); break;
        case P_INT: ok = str_parse_int(v, &ms) == 0 && ms >= 2 && ms <= 100; break;
        case P_RATE: {
            double r;
            ok = str_parse_double(v, &r) == 0 && r > 0 && r < 1e12;
            break;
        }
        }
        if (!ok) {
            static const char *const expect[] = {"true or false", "one character (or \\t)", "a duration such as '30 s'",
                                                 "a string", "one of", "a number from 2 to 100",
                                                 "a positive number of records per second"};
            graph_node_fail(n, env, "property '%s': expected %s%s%s, got '%s'", k, expect[d->type],
                            d->choices ? " " : "", d->choices ? d->choices : "", v);
            return;
        }
        graph_kvs_set(&n->params, k, v);
    }
}

static bool prop_bool(const char *const *props, const char *key, bool def) {
    if (!props) return def;
    for (int i = 0; props[i] && props[i + 1]; i += 2) {
        bool b;
        if (strcmp(props[i], key) == 0 && str_parse_bool(props[i + 1], &b) == 0) return b;
    }
    return def;
}

static const char *prop_get(const char *const *props, const char *key) {
    if (!props) return NULL;
    for (int i = 0; props[i] && props[i + 1]; i += 2)
        if (strcmp(props[i], key) == 0) return props[i + 1];
    return NULL;
}

/* A topic name as Kafka allows it: [a-zA-Z0-9._-]{1,249}. */
static bool topic_ok(const char *t, size_t len) {
    if (len == 0 || len > 249) return false;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)t[i]) || t[i] == '.' || t[i] == '_' || t[i] == '-')) return false;
    return true;
}

/* ---- the source ---------------------------------------------------------------------------------- */

static const char *startup_name(flint_kafka_startup s) {
    switch (s) {
    case FLINT_KAFKA_EARLIEST: return "earliest";
    case FLINT_KAFKA_LATEST: return "latest";
    case FLINT_KAFKA_GROUP_OFFSETS: return "group-offsets";
    case FLINT_KAFKA_TIMESTAMP: return "timestamp";
    case FLINT_KAFKA_SPECIFIC_OFFSETS: return "specific-offsets";
    }
    return NULL;
}

/* "topic:partition:offset,..." */
static bool specific_offsets_ok(graph_node *n, flint_env *env, const char *s) {
    if (!s || !*s) {
        graph_node_fail(n, env, "FLINT_KAFKA_SPECIFIC_OFFSETS needs startup_offsets (\"topic:partition:offset,...\")");
        return false;
    }
    char *copy = xstrdup(s), *save = NULL;
    bool ok = true;
    for (char *e = strtok_r(copy, ",", &save); e && ok; e = strtok_r(NULL, ",", &save)) {
        char *t = str_trim(e);
        char *c1 = strchr(t, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        int64_t part, off;
        if (!c1 || !c2 || !topic_ok(t, (size_t)(c1 - t))) ok = false;
        if (ok) {
            *c1 = *c2 = '\0';
            ok = str_parse_int(c1 + 1, &part) == 0 && part >= 0 && part <= INT32_MAX && str_parse_int(c2 + 1, &off) == 0 &&
                 off >= 0;
            *c1 = *c2 = ':';
        }
        if (!ok) graph_node_fail(n, env, "startup_offsets: expected topic:partition:offset, got '%s'", t);
    }
    free(copy);
    return ok;
}

flint_stream *flint_source_kafka(flint_env *env, const char *schema, const flint_kafka_source_options *o) {
    if (!env) return NULL;
    static const flint_kafka_source_options none = {0};
    if (!o) o = &none;
    graph_node *n = graph_node_new(env, GRAPH_OP_SOURCE_KAFKA, "source_kafka", "Source: Kafka");
    if (o->topics && *o->topics) {
        char *name = xasprintf("Source: Kafka %s", o->topics);
        free(n->name);
        n->name = name;
    }
    /* The schema, its metadata columns and the value columns. */
    char *meta = NULL, *plain = schema ? split_metadata(env, n, schema, &meta) : NULL;
    if (!schema) graph_node_fail(n, env, "schema missing");
    if (plain) n->out_schema = graph_parse_schema(env, n, "schema", plain);
    free(plain);
    const flint_schema *s = n->out_schema;
    int nf = s ? flint_schema_field_count(s) : 0;
    bool *is_meta = xcalloc((size_t)(nf ? nf : 1), sizeof *is_meta);
    if (s && meta && *meta) {
        char *save = NULL, *mparam = xmalloc(strlen(meta) * 2 + 32);
        size_t mlen = 0;
        mparam[0] = '\0';
        for (char *e = strtok_r(meta, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(e, '=');
            *eq = '\0';
            int f = flint_schema_field_index(s, e);
            const meta_key *mk = meta_find(eq + 1);
            flint_type t = flint_schema_field_type(s, f);
            bool tok = false;
            for (int k = 0; k < mk->ntypes; k++) tok |= mk->types[k] == t;
            if (!tok) {
                graph_node_fail(n, env, "metadata column '%s' FROM '%s' is %s; expected %s%s%s", e, mk->name,
                                flint_type_name(t), flint_type_name(mk->types[0]), mk->ntypes > 1 ? " or " : "",
                                mk->ntypes > 1 ? flint_type_name(mk->types[1]) : "");
                break;
            }
            is_meta[f] = true;
            mlen += (size_t)sprintf(mparam + mlen, "%s%d=%s", mlen ? "," : "", f, mk->name);
        }
        graph_kvs_set(&n->params, "metadata", mparam);
        free(mparam);
    }
    free(meta);
    int *vcols = xcalloc((size_t)(nf ? nf : 1), sizeof *vcols), nv = 0;
    for (int i = 0; i < nf; i++)
        if (!is_meta[i]) vcols[nv++] = i;
    const char *format = o->format && *o->format ? o->format : "text";
    graph_kvs_set(&n->params, "format", format);
    if (s && nv > 0) format_fits(env, n, "value", format, s, vcols, nv, false);
    else if (!format_known(format)) graph_node_fail(n, env, "unknown value format '%s' (raw, text, json or csv)", format);

    /* Connection, topics, group. */
    if (!o->bootstrap_servers || !*o->bootstrap_servers) graph_node_fail(n, env, "bootstrap_servers missing");
    graph_kvs_set(&n->params, "bootstrap.servers", o->bootstrap_servers ? o->bootstrap_servers : "");
    bool has_topics = o->topics && *o->topics, has_pattern = o->topic_pattern && *o->topic_pattern;
    if (has_topics == has_pattern) {
        graph_node_fail(n, env, "give either topics or topic_pattern%s", has_topics ? ", not both" : "");
    } else if (has_topics) {
        char *copy = xstrdup(o->topics), *save = NULL, *list = xmalloc(strlen(o->topics) + 1);
        size_t l = 0;
        list[0] = '\0';
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            t = str_trim(t);
            if (!topic_ok(t, strlen(t))) {
                graph_node_fail(n, env, "'%s' is not a valid topic name ([a-zA-Z0-9._-], 1 to 249 characters)", t);
                break;
            }
            l += (size_t)sprintf(list + l, "%s%s", l ? "," : "", t);
        }
        if (l == 0) graph_node_fail(n, env, "topics lists no topic");
        graph_kvs_set(&n->params, "topics", list);
        free(copy);
        free(list);
    } else {
        regex_t re;
        char *anchored = xasprintf("^(%s)$", o->topic_pattern);
        int rc = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char msg[256];
            regerror(rc, &re, msg, sizeof msg);
            graph_node_fail(n, env, "topic_pattern '%s' is not a POSIX extended regular expression: %s", o->topic_pattern,
                            msg);
        } else {
            regfree(&re);
        }
        free(anchored);
        graph_kvs_set(&n->params, "topic-pattern", o->topic_pattern);
    }
    if (o->group_id) {
        if (!*o->group_id) graph_node_fail(n, env, "group_id is empty (NULL: no group)");
        graph_kvs_set(&n->params, "group.id", o->group_id);
    }

    /* Where to start and stop. */
    const char *sm = startup_name(o->startup);
    if (!sm) {
        graph_node_fail(n, env, "unknown startup mode %d", (int)o->startup);
        sm = "earliest";
    }
    graph_kvs_set(&n->params, "startup.mode", sm);
    const char *reset = o->reset == FLINT_KAFKA_RESET_EARLIEST ? "earliest"
                        : o->reset == FLINT_KAFKA_RESET_LATEST ? "latest"
                        : o->reset == FLINT_KAFKA_RESET_NONE   ? "none"
                                                               : NULL;
    if (!reset) {
        graph_node_fail(n, env, "unknown reset strategy %d", (int)o->reset);
        reset = "earliest";
    }
    graph_kvs_set(&n->params, "startup.reset", reset);
    if (o->startup == FLINT_KAFKA_GROUP_OFFSETS && !o->group_id)
        graph_node_fail(n, env, "FLINT_KAFKA_GROUP_OFFSETS needs a group_id");
    if (o->startup == FLINT_KAFKA_TIMESTAMP) {
        if (o->startup_timestamp_ms < 0)
            graph_node_fail(n, env, "startup_timestamp_ms must not be negative (got %lld)", (long long)o->startup_timestamp_ms);
        set_int(n, "startup.timestamp", o->startup_timestamp_ms);
    }
    if (o->startup == FLINT_KAFKA_SPECIFIC_OFFSETS && specific_offsets_ok(n, env, o->startup_offsets))
        graph_kvs_set(&n->params, "startup.specific-offsets", o->startup_offsets);
    graph_kvs_set(&n->params, "bounded", o->bounded ? "true" : "false");
    int64_t disc = o->discovery_interval_ms == 0 ? (o->bounded ? -1 : KAFKA_DEFAULT_DISCOVERY_MS)
                   : o->discovery_interval_ms < 0 ? -1
                                                  : o->discovery_interval_ms;
    const char *pd = prop_get(o->properties, "partition.discovery.interval.ms");
    int64_t pdms;
    if (pd && (str_parse_duration_ms(pd, &pdms) == 0 || str_parse_int(pd, &pdms) == 0))
        disc = pdms <= 0 ? -1 : pdms;
    if (o->bounded) disc = -1;   /* as Flink: a bounded source reads the partitions it found at start */
    set_int(n, "discovery.interval", disc);

    /* Event time. */
    const flint_watermark_strategy *ws = o->watermarks;
    if (ws) {
        graph_kvs_set(&n->params, "watermarks", "true");
        if (ws->timestamp_field) {
            int i = s ? flint_schema_field_index(s, ws->timestamp_field) : -1;
            if (s && i < 0) {
                graph_node_fail(n, env, "timestamp field '%s' not found in (%s)", ws->timestamp_field, flint_schema_text(s));
            } else if (s) {
                flint_type t = flint_schema_field_type(s, i);
                if (t != FLINT_TIMESTAMP && t != FLINT_BIGINT && t != FLINT_INT)
                    graph_node_fail(n, env, "timestamp field '%s' is %s; expected TIMESTAMP(3) or BIGINT (epoch ms)",
                                    ws->timestamp_field, flint_type_name(t));
                set_int(n, "ts.field", i);
            }
        } else if (ws->timestamp_fn.ptr || ws->timestamp_fn.name) {
            n->takes_udf = true;
            graph_set_fn(env, n, "fn", ws->timestamp_fn);
        }
        if (ws->max_out_of_orderness_ms < 0 || ws->idleness_ms < 0)
            graph_node_fail(n, env, "the watermark strategy's out-of-orderness and idleness must not be negative");
        set_int(n, "out_of_orderness", ws->max_out_of_orderness_ms);
        set_int(n, "idleness", ws->idleness_ms);
    }

    /* Records that do not parse. */
    bool ignore = o->ignore_parse_errors || prop_bool(o->properties, "format.ignore-parse-errors", false) ||
                  prop_bool(o->properties, "json.ignore-parse-errors", false) ||
                  prop_bool(o->properties, "csv.ignore-parse-errors", false);
    graph_kvs_set(&n->params, "ignore-parse-errors", ignore ? "true" : "false");
    if (o->dead_letter_tag) {
        const char *t = o->dead_letter_tag;
        bool ok = *t != '\0';
        for (const char *c = t; ok && *c; c++)
            if (*c == ',' || *c == ';' || *c == '=' || (unsigned char)*c < ' ') ok = false;
        if (!ok) {
            graph_node_fail(n, env, "dead_letter_tag '%s' is empty or has ',', ';', '=' or control characters", t);
        } else {
            flint_schema *dl = NULL;
            flint_err err = {0};
            if (flint_schema_parse(FLINT_KAFKA_DEAD_LETTER_SCHEMA, &dl, &err) == 0) {
                char key[300];
                snprintf(key, sizeof key, "side.%s", t);
                graph_kvs_set(&n->params, key, flint_schema_text(dl));
                flint_schema_free(dl);
            }
            graph_kvs_set(&n->params, "dead-letter.tag", t);
        }
    }
    put_properties(env, n, o->properties, source_props);
    free(is_meta);
    free(vcols);
    return graph_op_stream(env, n);
}

/* ---- the sink ---------------------------------------------------------------------------------- */

static const char *indexes_text(const int *idx, int n, char *buf, size_t cap) {
    size_t l = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && l + 12 < cap; i++) l += (size_t)snprintf(buf + l, cap - l, "%s%d", i ? "," : "", idx[i]);
    return buf;
}

/* Record headers: static ones as params "header.<name>", the headers field as "headers.field".
 * Returns the headers field's index, -1 without one. */
static int sink_headers(flint_env *env, graph_node *n, const flint_schema *s, const flint_kafka_sink_options *o) {
    for (int i = 0; o->headers && o->headers[i]; i += 2) {
        const char *name = o->headers[i], *v = o->headers[i + 1];
        if (!v) {
            graph_node_fail(n, env, "header '%s' has no value (headers are name, value pairs ending in NULL)", name);
            break;
        }
        if (!*name) {
            graph_node_fail(n, env, "a header without a name");
            continue;
        }
        char *key = xasprintf("header.%s", name);
        graph_kvs_set(&n->params, key, v);
        free(key);
    }
    if (!o->headers_field || !s) return -1;
    int f = flint_schema_field_index(s, o->headers_field);
    if (f < 0) {
        graph_node_fail(n, env, "headers field '%s' not found in (%s)", o->headers_field, flint_schema_text(s));
        return -1;
    }
    flint_type t = flint_schema_field_type(s, f);
    if (t != FLINT_STRING && t != FLINT_BYTES) {
        graph_node_fail(n, env, "headers field '%s' is %s; expected STRING or BYTES (a JSON object)", o->headers_field,
                        flint_type_name(t));
        return -1;
    }
    set_int(n, "headers.field", f);
    return f;
}

flint_stream *flint_sink_kafka(flint_stream *in, const flint_kafka_sink_options *o) {
    if (!in) return NULL;
    flint_env *env = in->env;
    static const flint_kafka_sink_options none = {0};
    if (!o) o = &none;
    graph_node *n = graph_node_new(env, GRAPH_OP_SINK_KAFKA, "sink_kafka", "Sink: Kafka");
    if (o->topic && *o->topic) {
        char *name = xasprintf("Sink: Kafka %s", o->topic);
        free(n->name);
        n->name = name;
    }
    const flint_schema *s = graph_connect_input(env, n, in);
    int nf = s ? flint_schema_field_count(s) : 0;

    if (!o->bootstrap_servers || !*o->bootstrap_servers) graph_node_fail(n, env, "bootstrap_servers missing");
    graph_kvs_set(&n->params, "bootstrap.servers", o->bootstrap_servers ? o->bootstrap_servers : "");
    bool has_topic = o->topic && *o->topic, has_field = o->topic_field && *o->topic_field;
    int topic_field = -1;
    if (has_topic == has_field) {
        graph_node_fail(n, env, "give either topic or topic_field%s", has_topic ? ", not both" : "");
    } else if (has_topic) {
        if (!topic_ok(o->topic, strlen(o->topic)))
            graph_node_fail(n, env, "'%s' is not a valid topic name ([a-zA-Z0-9._-], 1 to 249 characters)", o->topic);
        graph_kvs_set(&n->params, "topic", o->topic);
    } else if (s) {
        topic_field = flint_schema_field_index(s, o->topic_field);
        if (topic_field < 0)
            graph_node_fail(n, env, "topic field '%s' not found in (%s)", o->topic_field, flint_schema_text(s));
        else if (flint_schema_field_type(s, topic_field) != FLINT_STRING)
            graph_node_fail(n, env, "topic field '%s' is %s; expected STRING", o->topic_field,
                            flint_type_name(flint_schema_field_type(s, topic_field)));
        else
            set_int(n, "topic.field", topic_field);
    }

    int headers_field = sink_headers(env, n, s, o);
    char buf[FLINT_MAX_FIELDS * 6];
    int kidx[FLINT_MAX_FIELDS], nk = 0;
    if (o->key_fields && s) {
        flint_err err = {0};
        nk = row_key_fields_parse(s, o->key_fields, kidx, FLINT_MAX_FIELDS, &err);
        if (nk < 0) {
            graph_node_fail(n, env, "key_fields \"%s\": %s", o->key_fields, err.msg);
            nk = 0;
        } else {
            graph_kvs_set(&n->params, "key.fields", indexes_text(kidx, nk, buf, sizeof buf));
            const char *kf = o->key_format && *o->key_format ? o->key_format : "csv";
            graph_kvs_set(&n->params, "key.format", kf);
            format_fits(env, n, "key", kf, s, kidx, nk, true);
        }
    }
    /* Value columns: all but the topic and headers fields (and the key fields with
     * value.fields-include EXCEPT_KEY). */
    const char *inc = prop_get(o->properties, "value.fields-include");
    bool except_key = inc && strcasecmp(inc, "EXCEPT_KEY") == 0;
    int vidx[FLINT_MAX_FIELDS], nv = 0;
    for (int i = 0; i < nf; i++) {
        if (i == topic_field || i == headers_field) continue;
        bool is_key = false;
        for (int k = 0; k < nk; k++) is_key |= kidx[k] == i;
        if (is_key && except_key) continue;
        vidx[nv++] = i;
    }
    const char *format = o->format && *o->format ? o->format : "text";
    graph_kvs_set(&n->params, "format", format);
    if (s) {
        graph_kvs_set(&n->params, "value.fields", indexes_text(vidx, nv, buf, sizeof buf));
        format_fits(env, n, "value", format, s, vidx, nv, true);
    }

    const char *part = o->partitioner == FLINT_KAFKA_PARTITIONER_DEFAULT       ? "default"
                       : o->partitioner == FLINT_KAFKA_PARTITIONER_FIXED       ? "fixed"
                       : o->partitioner == FLINT_KAFKA_PARTITIONER_ROUND_ROBIN ? "round-robin"
                                                                               : NULL;
    if (!part) {
        graph_node_fail(n, env, "unknown partitioner %d", (int)o->partitioner);
        part = "default";
    }
    graph_kvs_set(&n->params, "partitioner", part);
    const char *dg = o->delivery == FLINT_KAFKA_AT_LEAST_ONCE   ? "at-least-once"
                     : o->delivery == FLINT_KAFKA_NONE          ? "none"
                     : o->delivery == FLINT_KAFKA_EXACTLY_ONCE ? "exactly-once"
                                                               : NULL;
    if (!dg) {
        graph_node_fail(n, env, "unknown delivery guarantee %d", (int)o->delivery);
        dg = "at-least-once";
    }
    graph_kvs_set(&n->params, "delivery", dg);
    if (o->delivery == FLINT_KAFKA_EXACTLY_ONCE) {
        const char *p = o->transactional_id_prefix;
        if (!p || !*p) graph_node_fail(n, env, "EXACTLY_ONCE needs a transactional_id_prefix (unique per job)");
        else graph_kvs_set(&n->params, "transactional.id.prefix", p);
    } else if (o->transactional_id_prefix) {
        graph_kvs_set(&n->params, "transactional.id.prefix", o->transactional_id_prefix);
    }
    put_properties(env, n, o->properties, sink_props);
    return graph_op_stream(env, n);
}

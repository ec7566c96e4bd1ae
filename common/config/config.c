/* Configuration loading and typed access (see config.h). */
#include <assert.h>
#include <errno.h>
#include <libgen.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define LOG_MODULE "config"
#include "config/config.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"

static const config_key_info key_table[CFG_COUNT] = {
#define CONFIG_KEY(id, name, type, def, min, max, doc) {name, CONFIG_##type, def, min, max, doc},
#include "config/config_keys.def"
#undef CONFIG_KEY
};

/* A known key's current value: its text, and the parsed number for numeric types. */
typedef struct config_value {
    char *text;
    bool set;
    union { int64_t i; double d; bool b; } v;
} config_value;

/* An unknown key, kept so that it can be shown; value and origin are owned. */
typedef struct config_extra {
    char *key, *value;
} config_extra;

struct flint_config {
    config_value values[CFG_COUNT];
    config_extra *extra;
    size_t nextra, capextra;
    int unknown;
};

const config_key_info *config_info(config_key key) {
    assert(key < CFG_COUNT);
    return &key_table[key];
}

int config_find(const char *name) {
    for (int i = 0; i < CFG_COUNT; i++)
        if (strcmp(key_table[i].name, name) == 0) return i;
    return -1;
}

const char *config_type_name(config_type type) {
    static const char *names[] = {"String", "Integer", "Boolean", "Double", "Duration", "MemorySize"};
    return names[type];
}

static const char *expected_form(config_type type) {
    switch (type) {
    case CONFIG_INT: return "an integer";
    case CONFIG_BOOL: return "true or false";
    case CONFIG_DOUBLE: return "a number";
    case CONFIG_DURATION: return "a duration such as '500 ms', '10 s' or '1 min'";
    case CONFIG_MEMSIZE: return "a memory size such as '32kb', '64 mb' or '1g'";
    case CONFIG_STRING: break;
    }
    return "a string";
}

/* Parse text as key's type into *out and check the bounds; err says what was expected. */
static int parse_value(config_key key, const char *text, config_value *out, flint_err *err) {
    const config_key_info *ki = &key_table[key];
    int rc = 0;
    switch (ki->type) {
    case CONFIG_STRING: return 0;
    case CONFIG_INT: rc = str_parse_int(text, &out->v.i); break;
    case CONFIG_BOOL: rc = str_parse_bool(text, &out->v.b); break;
    case CONFIG_DOUBLE: rc = str_parse_double(text, &out->v.d); break;
    case CONFIG_DURATION:
        /* A duration key whose minimum is -1 takes "-1" for "never" (execution.buffer-timeout). */
        rc = (ki->min < 0 && str_parse_int(text, &out->v.i) == 0 && out->v.i == -1)
                 ? 0 : str_parse_duration_ms(text, &out->v.i);
        break;
    case CONFIG_MEMSIZE: rc = str_parse_memsize(text, &out->v.i); break;
    }
    if (rc)
        return flint_err_set(err, FLINT_CONFIG, "%s: expected %s, got '%s'", ki->name,
                             expected_form(ki->type), text);
    bool bounded = ki->type == CONFIG_INT || ki->type == CONFIG_DURATION || ki->type == CONFIG_MEMSIZE;
    if (bounded && (out->v.i < ki->min || out->v.i > ki->max)) {
        char lo[32], hi[32];
        if (ki->type == CONFIG_DURATION) {
            str_format_duration(ki->min, lo, sizeof lo);
            str_format_duration(ki->max, hi, sizeof hi);
        } else if (ki->type == CONFIG_MEMSIZE) {
            str_format_memsize(ki->min, lo, sizeof lo);
            str_format_memsize(ki->max, hi, sizeof hi);
        } else {
            snprintf(lo, sizeof lo, "%" PRId64, ki->min);
            snprintf(hi, sizeof hi, "%" PRId64, ki->max);
        }
        return flint_err_set(err, FLINT_CONFIG, "%s: '%s' is out of range, expected %s to %s",
                             ki->name, text, lo, hi);
    }
    return 0;
}

flint_config *config_new(void) {
    flint_config *cfg = XNEW(flint_config);
    for (int i = 0; i < CFG_COUNT; i++) {
        flint_err err;
        int rc = parse_value(i, key_table[i].def, &cfg->values[i], &err);
        assert(rc == 0 && "a default in config_keys.def does not parse");
        (void)rc;
        cfg->values[i].text = xstrdup(key_table[i].def);
    }
    return cfg;
}

void config_free(flint_config *cfg) {
    if (!cfg) return;
    for (int i = 0; i < CFG_COUNT; i++) free(cfg->values[i].text);
    for (size_t i = 0; i < cfg->nextra; i++) {
        free(cfg->extra[i].key);
        free(cfg->extra[i].value);
    }
    free(cfg->extra);
    free(cfg);
}

static void extra_put(flint_config *cfg, const char *key, const char *value) {
    for (size_t i = 0; i < cfg->nextra; i++) {
        if (strcmp(cfg->extra[i].key, key) == 0) {
            free(cfg->extra[i].value);
            cfg->extra[i].value = xstrdup(value);
            return;
        }
    }
    if (cfg->nextra == cfg->capextra) {
        cfg->capextra = cfg->capextra ? cfg->capextra * 2 : 8;
        cfg->extra = xrealloc(cfg->extra, cfg->capextra * sizeof *cfg->extra);
    }
    cfg->extra[cfg->nextra++] = (config_extra){xstrdup(key), xstrdup(value)};
}

flint_config *config_clone(const flint_config *cfg) {
    flint_config *c = XNEW(flint_config);
    for (int i = 0; i < CFG_COUNT; i++) {
        c->values[i] = cfg->values[i];
        c->values[i].text = xstrdup(cfg->values[i].text);
    }
    for (size_t i = 0; i < cfg->nextra; i++) extra_put(c, cfg->extra[i].key, cfg->extra[i].value);
    c->unknown = cfg->unknown;
    return c;
}

int config_set(flint_config *cfg, const char *key, const char *value, const char *origin,
               flint_err *err) {
    int id = config_find(key);
    if (id < 0) {
        log_warn("%s: unknown configuration key '%s' (kept, but nothing reads it)", origin, key);
        cfg->unknown++;
        extra_put(cfg, key, value);
        return 0;
    }
    config_value nv = {0};
    if (parse_value(id, value, &nv, err)) {
        flint_err_prefix(err, "%s: ", origin);
        return FLINT_CONFIG;
    }
    free(cfg->values[id].text);
    nv.text = xstrdup(value);
    nv.set = true;
    cfg->values[id] = nv;
    return 0;
}

int config_set_override(flint_config *cfg, const char *kv, flint_err *err) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return flint_err_set(err, FLINT_CONFIG, "-D %s: expected key=value", kv);
    char *key = xstrndup(kv, (size_t)(eq - kv));
    str_trim(key);
    if (!key[0]) {
        free(key);
        return flint_err_set(err, FLINT_CONFIG, "-D %s: expected key=value", kv);
    }
    int rc = config_set(cfg, key, eq + 1, "-D", err);
    free(key);
    return rc;
}

/* ---- YAML ------------------------------------------------------------------------------ */

/* Keys and values of one file, collected before any is applied. */
typedef struct yaml_entry { char *key, *value; int line; } yaml_entry;
typedef struct yaml_doc {
    const char *path;
    yaml_parser_t parser;
    yaml_entry *items;
    size_t n, cap;
} yaml_doc;

static void doc_add(yaml_doc *d, const char *key, const char *value, int line) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = xrealloc(d->items, d->cap * sizeof *d->items);
    }
    d->items[d->n++] = (yaml_entry){xstrdup(key), xstrdup(value), line};
}

static void doc_free(yaml_doc *d) {
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].key);
        free(d->items[i].value);
    }
    free(d->items);
    yaml_parser_delete(&d->parser);
}

static int doc_next(yaml_doc *d, yaml_event_t *ev, flint_err *err) {
    if (yaml_parser_parse(&d->parser, ev)) return 0;
    const yaml_parser_t *p = &d->parser;
    /* An unclosed quote or bracket is found at the end of the file: also say where it started. */
    char started[48] = "";
    if (p->context && p->context_mark.line != p->problem_mark.line)
        snprintf(started, sizeof started, " that started at line %zu", p->context_mark.line + 1);
    return flint_err_set(err, FLINT_CONFIG, "%s:%zu:%zu: malformed YAML: %s%s%s%s", d->path,
                         p->problem_mark.line + 1, p->problem_mark.column + 1,
                         p->problem ? p->problem : "syntax error", p->context ? " " : "",
                         p->context ? p->context : "", started);
}

static int doc_error(yaml_doc *d, const yaml_event_t *ev, const char *what, flint_err *err) {
    return flint_err_set(err, FLINT_CONFIG, "%s:%zu: %s", d->path, ev->start_mark.line + 1, what);
}

/* A sequence of scalars becomes one value joined with ';' (Flink's list separator). */
static int parse_sequence(yaml_doc *d, const char *key, int line, flint_err *err) {
    size_t cap = 64, len = 0;
    char *joined = xmalloc(cap);
    joined[0] = '\0';
    for (;;) {
        yaml_event_t ev;
        if (doc_next(d, &ev, err)) { free(joined); return FLINT_CONFIG; }
        if (ev.type == YAML_SEQUENCE_END_EVENT) { yaml_event_delete(&ev); break; }
        if (ev.type != YAML_SCALAR_EVENT) {
            int rc = doc_error(d, &ev, "a list may only hold plain values", err);
            yaml_event_delete(&ev);
            free(joined);
            return rc;
        }
        size_t vlen = ev.data.scalar.length;
        while (len + vlen + 2 > cap) cap *= 2;
        joined = xrealloc(joined, cap);
        if (len) joined[len++] = ';';
        memcpy(joined + len, ev.data.scalar.value, vlen);
        len += vlen;
        joined[len] = '\0';
        yaml_event_delete(&ev);
    }
    doc_add(d, key, joined, line);
    free(joined);
    return 0;
}

/* Read key/value pairs until the mapping ends; nested mappings extend the key with '.'. */
static int parse_mapping(yaml_doc *d, const char *prefix, int depth, flint_err *err) {
    if (depth > 16) return flint_err_set(err, FLINT_CONFIG, "%s: nested too deeply", d->path);
    for (;;) {
        yaml_event_t kev;
        if (doc_next(d, &kev, err)) return FLINT_CONFIG;
        if (kev.type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&kev); return 0; }
        if (kev.type != YAML_SCALAR_EVENT || kev.data.scalar.length == 0) {
            int rc = doc_error(d, &kev, "expected a key", err);
            yaml_event_delete(&kev);
            return rc;
        }
        char *key = prefix[0] ? xasprintf("%s.%s", prefix, (char *)kev.data.scalar.value)
                              : xstrdup((char *)kev.data.scalar.value);
        int line = (int)kev.start_mark.line + 1;
        yaml_event_delete(&kev);

        yaml_event_t vev;
        int rc = doc_next(d, &vev, err);
        if (rc == 0) {
            switch (vev.type) {
            case YAML_SCALAR_EVENT: doc_add(d, key, (char *)vev.data.scalar.value, line); break;
            case YAML_MAPPING_START_EVENT: rc = parse_mapping(d, key, depth + 1, err); break;
            case YAML_SEQUENCE_START_EVENT: rc = parse_sequence(d, key, line, err); break;
            default: rc = doc_error(d, &vev, "anchors and aliases are not supported", err); break;
            }
            yaml_event_delete(&vev);
        }
        free(key);
        if (rc) return rc;
    }
}

/* Parse the whole stream: nothing, or one document holding one mapping. */
static int parse_document(yaml_doc *d, flint_err *err) {
    for (;;) {
        yaml_event_t ev;
        if (doc_next(d, &ev, err)) return FLINT_CONFIG;
        yaml_event_type_t t = ev.type;
        int rc = 0;
        if (t == YAML_MAPPING_START_EVENT)
            rc = parse_mapping(d, "", 0, err);
        else if (t == YAML_SCALAR_EVENT && ev.data.scalar.length > 0)
            rc = doc_error(d, &ev, "expected 'key: value' lines, got a plain value", err);
        else if (t == YAML_SEQUENCE_START_EVENT)
            rc = doc_error(d, &ev, "expected 'key: value' lines, got a list", err);
        yaml_event_delete(&ev);
        if (rc) return rc;
        if (t == YAML_STREAM_END_EVENT) return 0;
    }
}

int config_load_file(flint_config *cfg, const char *path, flint_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return flint_err_set(err, FLINT_CONFIG, "%s: cannot open: %s", path, strerror(errno));
    yaml_doc d = {.path = path};
    yaml_parser_initialize(&d.parser);
    yaml_parser_set_input_file(&d.parser, f);
    int rc = parse_document(&d, err);
    fclose(f);
    /* Check every value before applying any, so a bad file changes nothing. */
    for (size_t i = 0; rc == 0 && i < d.n; i++) {
        int id = config_find(d.items[i].key);
        config_value probe = {0};
        if (id >= 0 && parse_value(id, d.items[i].value, &probe, err)) {
            flint_err_prefix(err, "%s:%d: ", path, d.items[i].line);
            rc = FLINT_CONFIG;
        }
    }
    for (size_t i = 0; rc == 0 && i < d.n; i++) {
        char origin[512];
        snprintf(origin, sizeof origin, "%s:%d", path, d.items[i].line);
        rc = config_set(cfg, d.items[i].key, d.items[i].value, origin, err);
    }
    doc_free(&d);
    return rc;
}

int config_load_dir(flint_config *cfg, const char *dir, flint_err *err) {
    char *path = xasprintf("%s/flint.yaml", dir);
    int rc = config_load_file(cfg, path, err);
    free(path);
    return rc;
}

char *config_default_dir(void) {
    const char *env = getenv("FLINT_CONF_DIR");
    if (env && env[0]) return xstrdup(env);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return xstrdup("conf");
    exe[n] = '\0';
    return xasprintf("%s/../../conf", dirname(exe));
}

flint_config *config_load_program(const char *dir, char *const *overrides, int noverrides,
                                  flint_err *err) {
    flint_config *cfg = config_new();
    char *def = dir ? NULL : config_default_dir();
    char *path = xasprintf("%s/flint.yaml", dir ? dir : def);
    int rc = 0;
    if (dir || access(path, F_OK) == 0) rc = config_load_file(cfg, path, err);
    for (int i = 0; rc == 0 && i < noverrides; i++) rc = config_set_override(cfg, overrides[i], err);
    if (rc == 0) rc = config_validate(cfg, err);
    free(path);
    free(def);
    if (rc) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

int config_validate(const flint_config *cfg, flint_err *err) {
    if (config_int(cfg, CFG_HEARTBEAT_TIMEOUT) <= config_int(cfg, CFG_HEARTBEAT_INTERVAL))
        return flint_err_set(err, FLINT_CONFIG,
                             "heartbeat.timeout (%s) must be larger than heartbeat.interval (%s)",
                             config_str(cfg, CFG_HEARTBEAT_TIMEOUT),
                             config_str(cfg, CFG_HEARTBEAT_INTERVAL));
    if (config_int(cfg, CFG_CLUSTER_REGISTRATION_MAX_TIMEOUT) <
        config_int(cfg, CFG_CLUSTER_REGISTRATION_INITIAL_TIMEOUT))
        return flint_err_set(err, FLINT_CONFIG,
                             "cluster.registration.max-timeout must not be smaller than "
                             "cluster.registration.initial-timeout");
    const char *backend = config_str(cfg, CFG_STATE_BACKEND_TYPE);
    if (strcmp(backend, "hashmap") != 0 && strcmp(backend, "rocksdb") != 0)
        return flint_err_set(err, FLINT_CONFIG, "state.backend.type: expected hashmap or rocksdb, got '%s'",
                             backend);
    static const struct { config_key key; const char *choices[4]; } choice_keys[] = {
        {CFG_CHECKPOINTING_MODE, {"EXACTLY_ONCE", "AT_LEAST_ONCE"}},
        {CFG_CHECKPOINTING_RETENTION,
         {"NO_EXTERNALIZED_CHECKPOINTS", "DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION"}},
        {CFG_RESTART_STRATEGY_TYPE, {"", "none", "fixed-delay", "failure-rate"}},
    };
    for (size_t i = 0; i < sizeof choice_keys / sizeof choice_keys[0]; i++) {
        const char *v = config_str(cfg, choice_keys[i].key);
        bool ok = false;
        char expected[160] = "";
        for (int c = 0; c < 4 && choice_keys[i].choices[c]; c++) {
            if (strcasecmp(v, choice_keys[i].choices[c]) == 0) ok = true;
            if (choice_keys[i].choices[c][0])
                snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s",
                         expected[0] ? ", " : "", choice_keys[i].choices[c]);
        }
        if (!ok)
            return flint_err_set(err, FLINT_CONFIG, "%s: expected one of %s, got '%s'",
                                 config_info(choice_keys[i].key)->name, expected, v);
    }
    if (log_level_parse(config_str(cfg, CFG_ENV_LOG_LEVEL)) < 0)
        return flint_err_set(err, FLINT_CONFIG,
                             "env.log.level: expected DEBUG, INFO, WARN or ERROR, got '%s'",
                             config_str(cfg, CFG_ENV_LOG_LEVEL));
    return 0;
}

/* ---- access ----------------------------------------------------------------------------- */

const char *config_str(const flint_config *cfg, config_key key) {
    assert(key < CFG_COUNT);
    return cfg->values[key].text;
}

int64_t config_int(const flint_config *cfg, config_key key) {
    assert(key < CFG_COUNT);
    config_type t = key_table[key].type;
    assert(t == CONFIG_INT || t == CONFIG_DURATION || t == CONFIG_MEMSIZE);
    (void)t;
    return cfg->values[key].v.i;
}

bool config_bool(const flint_config *cfg, config_key key) {
    assert(key < CFG_COUNT && key_table[key].type == CONFIG_BOOL);
    return cfg->values[key].v.b;
}

double config_double(const flint_config *cfg, config_key key) {
    assert(key < CFG_COUNT && key_table[key].type == CONFIG_DOUBLE);
    return cfg->values[key].v.d;
}

const char *config_get(const flint_config *cfg, const char *key) {
    int id = config_find(key);
    if (id >= 0) return cfg->values[id].text;
    for (size_t i = 0; i < cfg->nextra; i++)
        if (strcmp(cfg->extra[i].key, key) == 0) return cfg->extra[i].value;
    return NULL;
}

bool config_is_set(const flint_config *cfg, config_key key) {
    assert(key < CFG_COUNT);
    return cfg->values[key].set;
}

void config_foreach_set(const flint_config *cfg,
                        void (*fn)(const char *key, const char *value, void *ud), void *ud) {
    for (int i = 0; i < CFG_COUNT; i++)
        if (cfg->values[i].set) fn(key_table[i].name, cfg->values[i].text, ud);
    for (size_t i = 0; i < cfg->nextra; i++) fn(cfg->extra[i].key, cfg->extra[i].value, ud);
}

int config_unknown_count(const flint_config *cfg) { return cfg->unknown; }

void config_write_markdown(FILE *out) {
    fputs("# Flint configuration reference\n\n"
          "Generated from `common/config/config_keys.def` by `make docs`; do not edit by hand.\n\n"
          "Keys go in `conf/flint.yaml` (flat `key: value` lines or nested maps) or on any\n"
          "program's command line as `-D key=value`. Durations take `ms`, `s`, `min`, `h`, `d`\n"
          "(a bare number is milliseconds); memory sizes take `b`, `kb`, `mb`, `gb`, `tb`\n"
          "(1024-based). Unknown keys are warned about with file and line; a bad value stops\n"
          "the program with file, line and the expected form.\n\n"
          "| Key | Type | Default | Description |\n|---|---|---|---|\n", out);
    for (int i = 0; i < CFG_COUNT; i++) {
        const config_key_info *ki = &key_table[i];
        fprintf(out, "| `%s` | %s | %s%s%s | %s |\n", ki->name, config_type_name(ki->type),
                ki->def[0] ? "`" : "(none)", ki->def, ki->def[0] ? "`" : "", ki->doc);
    }
}

/* Configuration: conf/flint.yaml read with libyaml, typed values checked against the key table
 * (config_keys.def), and -D key=value overrides. Flat keys ("rest.port: 8081") and nested maps
 * ("rest: {port: 8081}") both work, as in Flink's config.yaml. Unknown keys are kept (and shown by
 * /jobmanager/config) with a warning naming file and line; a bad value or malformed YAML is an
 * error naming file, line and the expected form. */
#ifndef FLINT_CONFIG_H
#define FLINT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "flint/status.h"

typedef enum config_key {
#define CONFIG_KEY(id, name, type, def, min, max, doc) CFG_##id,
#include "config/config_keys.def"
#undef CONFIG_KEY
    CFG_COUNT
} config_key;

typedef enum config_type {
    CONFIG_STRING, CONFIG_INT, CONFIG_BOOL, CONFIG_DOUBLE, CONFIG_DURATION, CONFIG_MEMSIZE
} config_type;

/* One line of the key table. */
typedef struct config_key_info {
    const char *name;
    config_type type;
    const char *def;
    int64_t min, max;
    const char *doc;
} config_key_info;

typedef struct flint_config flint_config;

/* A configuration holding every key's default. The caller frees it with config_free. */
flint_config *config_new(void);
void config_free(flint_config *cfg);
/* A deep copy; the caller frees it. */
flint_config *config_clone(const flint_config *cfg);

/* Merge a YAML file into cfg. Unknown keys are warned about (log) and kept. On error nothing of
 * this file is applied and err names the file, line and what was expected. */
int config_load_file(flint_config *cfg, const char *path, flint_err *err);
/* Load DIR/flint.yaml; a missing directory or file is an error naming it. */
int config_load_dir(flint_config *cfg, const char *dir, flint_err *err);
/* Set one key from its text form; origin ("-D", "conf/flint.yaml:3") goes into messages. */
int config_set(flint_config *cfg, const char *key, const char *value, const char *origin,
               flint_err *err);
/* Apply a "key=value" override as given to -D. */
int config_set_override(flint_config *cfg, const char *kv, flint_err *err);
/* Cross-key checks (heartbeat.timeout > heartbeat.interval, ...), run after loading. */
int config_validate(const flint_config *cfg, flint_err *err);

/* Typed getters by key id. config_int returns INT values, DURATION in ms and MEMSIZE in bytes.
 * Strings stay owned by cfg until the key is set again or cfg is freed. */
const char *config_str(const flint_config *cfg, config_key key);
int64_t config_int(const flint_config *cfg, config_key key);
bool config_bool(const flint_config *cfg, config_key key);
double config_double(const flint_config *cfg, config_key key);

/* The text of any key, known or not, or NULL when an unknown key was never set. */
const char *config_get(const flint_config *cfg, const char *key);
/* Whether a known key was set (by file or -D) rather than left at its default. */
bool config_is_set(const flint_config *cfg, config_key key);

/* Every entry that differs from its default or is unknown, in table order then file order:
 * calls fn(key, value, ud) for each. Used by /jobmanager/config and `flint config`. */
void config_foreach_set(const flint_config *cfg,
                        void (*fn)(const char *key, const char *value, void *ud), void *ud);
/* Number of unknown keys seen (each was warned about). */
int config_unknown_count(const flint_config *cfg);

/* The key table. config_find returns a key id or -1. */
const config_key_info *config_info(config_key key);
int config_find(const char *name);
const char *config_type_name(config_type type);

/* The configuration directory a program uses when none is given: $FLINT_CONF_DIR, else conf/ of
 * the installation (<dir of the executable>/../../conf). Returns a new string, caller frees. */
char *config_default_dir(void);
/* A program's configuration: DIR/flint.yaml (dir NULL: config_default_dir, where a missing
 * flint.yaml just means defaults), then the -D overrides in order, then config_validate.
 * Returns a new configuration (caller frees) or NULL with err. */
flint_config *config_load_program(const char *dir, char *const *overrides, int noverrides,
                                  flint_err *err);

/* Write the key table as the Markdown reference (docs/config.md). */
void config_write_markdown(FILE *out);

#endif

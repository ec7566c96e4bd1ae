/* Unit tests for common/config: defaults from the key table, YAML loading (flat keys, nested maps,
 * lists), -D overrides, unknown keys, error reports naming file, line and the expected form,
 * malformed YAML, all-or-nothing loading, cross-key validation, cloning, and the generated
 * docs/config.md. YAML files are written to a fresh mkdtemp directory per test. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/log.h"

/* ---- fixture: a temporary directory and the files written into it ------------------------ */

#define MAX_FILES 16

static char tmpdir[256];
static char files[MAX_FILES][PATH_MAX];
static int nfiles;

static void tmp_setup(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/flint-check-config-XXXXXX", base && base[0] ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    nfiles = 0;
}

static void tmp_teardown(void) {
    for (int i = 0; i < nfiles; i++) unlink(files[i]);
    nfiles = 0;
    rmdir(tmpdir);
}

/* tmpdir/name into out[PATH_MAX]. */
static void tmp_path(char *out, const char *name) {
    ck_assert_int_lt(snprintf(out, PATH_MAX, "%s/%s", tmpdir, name), PATH_MAX);
}

/* Write text to tmpdir/name and return its path (valid until the test ends). */
static const char *write_file(const char *name, const char *text) {
    char want[PATH_MAX];
    tmp_path(want, name);
    char *path = NULL;
    for (int i = 0; i < nfiles && !path; i++)
        if (strcmp(files[i], want) == 0) path = files[i];
    if (!path) {
        ck_assert_int_lt(nfiles, MAX_FILES);
        path = files[nfiles++];
        snprintf(path, PATH_MAX, "%s", want);
    }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* Load text as a YAML file into cfg; returns the status, err filled on failure. */
static int load_text(flint_config *cfg, const char *text, const char **path, flint_err *err) {
    const char *p = write_file("flint.yaml", text);
    if (path) *path = p;
    return config_load_file(cfg, p, err);
}

/* err->msg contains "<path>:<line>:" */
static void assert_names_line(const flint_err *err, const char *path, int line) {
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s:%d:", path, line);
    ck_assert_msg(strstr(err->msg, want) != NULL, "message '%s' does not name '%s'", err->msg, want);
}

static void assert_contains(const char *haystack, const char *needle) {
    ck_assert_msg(strstr(haystack, needle) != NULL, "'%s' does not contain '%s'", haystack, needle);
}

/* ---- defaults and the key table ----------------------------------------------------------- */

START_TEST(test_defaults) {
    flint_config *cfg = config_new();
    ck_assert_str_eq(config_str(cfg, CFG_JOBMANAGER_RPC_ADDRESS), "localhost");
    ck_assert_int_eq(config_int(cfg, CFG_JOBMANAGER_RPC_PORT), 6123);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 8081);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_INTERVAL), 10000);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_TIMEOUT), 50000);
    ck_assert_int_eq(config_int(cfg, CFG_CLUSTER_REGISTRATION_INITIAL_TIMEOUT), 100);
    ck_assert_int_eq(config_int(cfg, CFG_RPC_MAX_FRAME_SIZE), 10 << 20);
    ck_assert_int_eq(config_int(cfg, CFG_TASKMANAGER_NUM_SLOTS), 1);
    ck_assert_str_eq(config_str(cfg, CFG_REST_BIND_ADDRESS), "");
    ck_assert_str_eq(config_str(cfg, CFG_HEARTBEAT_INTERVAL), "10 s");
    for (int i = 0; i < CFG_COUNT; i++) ck_assert(!config_is_set(cfg, i));
    ck_assert_int_eq(config_unknown_count(cfg), 0);
    ck_assert_str_eq(config_get(cfg, "rest.port"), "8081");
    ck_assert_ptr_null(config_get(cfg, "no.such.key"));
    flint_err err = {0};
    ck_assert_int_eq(config_validate(cfg, &err), 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_key_table) {
    for (int i = 0; i < CFG_COUNT; i++) {
        const config_key_info *ki = config_info(i);
        ck_assert_int_eq(config_find(ki->name), i); /* names are unique */
        ck_assert_uint_gt(strlen(ki->doc), 0);
        ck_assert_ptr_nonnull(config_type_name(ki->type));
        if (ki->type == CONFIG_INT || ki->type == CONFIG_DURATION || ki->type == CONFIG_MEMSIZE)
            ck_assert_msg(ki->min <= ki->max, "%s: min > max", ki->name);
    }
    ck_assert_int_eq(config_find("rest.port"), CFG_REST_PORT);
    ck_assert_int_eq(config_find("rest.portx"), -1);
    ck_assert_int_eq(config_find(""), -1);
    ck_assert_str_eq(config_type_name(CONFIG_DURATION), "Duration");
    ck_assert_str_eq(config_type_name(CONFIG_MEMSIZE), "MemorySize");
}
END_TEST

/* ---- loading YAML ------------------------------------------------------------------------- */

START_TEST(test_flat_keys) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    int rc = load_text(cfg,
                       "# Flint test configuration\n"
                       "rest.port: 9000\n"
                       "jobmanager.rpc.address: jm.example.org\n"
                       "heartbeat.interval: 2 s\n"
                       "heartbeat.timeout: '1 min'\n"
                       "rpc.max-frame-size: 64 mb\n"
                       "taskmanager.numberOfTaskSlots: \"4\"\n",
                       NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9000);
    ck_assert_str_eq(config_str(cfg, CFG_JOBMANAGER_RPC_ADDRESS), "jm.example.org");
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_INTERVAL), 2000);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_TIMEOUT), 60000);
    ck_assert_str_eq(config_str(cfg, CFG_HEARTBEAT_TIMEOUT), "1 min");
    ck_assert_int_eq(config_int(cfg, CFG_RPC_MAX_FRAME_SIZE), 64 << 20);
    ck_assert_int_eq(config_int(cfg, CFG_TASKMANAGER_NUM_SLOTS), 4);
    ck_assert(config_is_set(cfg, CFG_REST_PORT));
    ck_assert(!config_is_set(cfg, CFG_JOBMANAGER_RPC_PORT));
    ck_assert_int_eq(config_unknown_count(cfg), 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_nested_flow_map) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    int rc = load_text(cfg, "rest: {port: 9000, address: web.example.org}\n"
                            "jobmanager: {rpc: {port: 7000}}\n",
                       NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9000);
    ck_assert_str_eq(config_str(cfg, CFG_REST_ADDRESS), "web.example.org");
    ck_assert_int_eq(config_int(cfg, CFG_JOBMANAGER_RPC_PORT), 7000);
    ck_assert_int_eq(config_unknown_count(cfg), 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_nested_block_map) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    int rc = load_text(cfg,
                       "rest:\n"
                       "  port: 9001\n"
                       "heartbeat:\n"
                       "  interval: 500 ms\n"
                       "  timeout: 3 s\n"
                       "taskmanager:\n"
                       "  numberOfTaskSlots: 8\n"
                       "  data:\n"
                       "    port: 6200\n"
                       "rest.address: mixed.example.org\n",
                       NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9001);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_INTERVAL), 500);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_TIMEOUT), 3000);
    ck_assert_int_eq(config_int(cfg, CFG_TASKMANAGER_NUM_SLOTS), 8);
    ck_assert_int_eq(config_int(cfg, CFG_TASKMANAGER_DATA_PORT), 6200);
    ck_assert_str_eq(config_str(cfg, CFG_REST_ADDRESS), "mixed.example.org");
    config_free(cfg);
}
END_TEST

START_TEST(test_lists_joined) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    int rc = load_text(cfg,
                       "env.java.opts: [-Xmx1g, -Dfoo=bar, x]\n"
                       "io.tmp.dirs:\n"
                       "  - /tmp/a\n"
                       "  - /tmp/b\n"
                       "empty.list: []\n"
                       "rest.address: [a.example.org, b.example.org]\n",
                       NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(config_get(cfg, "env.java.opts"), "-Xmx1g;-Dfoo=bar;x");
    ck_assert_str_eq(config_get(cfg, "io.tmp.dirs"), "/tmp/a;/tmp/b");
    ck_assert_str_eq(config_get(cfg, "empty.list"), "");
    ck_assert_str_eq(config_str(cfg, CFG_REST_ADDRESS), "a.example.org;b.example.org");
    config_free(cfg);
}
END_TEST

START_TEST(test_later_value_wins) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(load_text(cfg, "rest.port: 1000\nrest:\n  port: 2000\n", NULL, &err), 0);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 2000);
    /* A second file merges over the first. */
    const char *second = write_file("second.yaml", "heartbeat.interval: 1 s\n");
    ck_assert_int_eq(config_load_file(cfg, second, &err), 0);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 2000);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_INTERVAL), 1000);
    config_free(cfg);
}
END_TEST

START_TEST(test_empty_file) {
    static const char *texts[] = {"", "\n\n", "# only a comment\n", "---\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        flint_config *cfg = config_new();
        flint_err err = {0};
        char name[32];
        snprintf(name, sizeof name, "empty%zu.yaml", i);
        const char *path = write_file(name, texts[i]);
        ck_assert_msg(config_load_file(cfg, path, &err) == 0, "text %zu: %s", i, err.msg);
        ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 8081);
        ck_assert(!config_is_set(cfg, CFG_REST_PORT));
        config_free(cfg);
    }
}
END_TEST

START_TEST(test_missing_file) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    char path[PATH_MAX];
    tmp_path(path, "does-not-exist.yaml");
    ck_assert_int_eq(config_load_file(cfg, path, &err), FLINT_CONFIG);
    ck_assert_int_eq(err.code, FLINT_CONFIG);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "No such file");

    char dir[PATH_MAX];
    tmp_path(dir, "no-such-dir");
    ck_assert_int_eq(config_load_dir(cfg, dir, &err), FLINT_CONFIG);
    assert_contains(err.msg, dir);
    assert_contains(err.msg, "flint.yaml");
    config_free(cfg);
}
END_TEST

START_TEST(test_load_dir) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    write_file("flint.yaml", "rest.port: 9100\n");
    ck_assert_msg(config_load_dir(cfg, tmpdir, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9100);
    config_free(cfg);
}
END_TEST

START_TEST(test_load_program) {
    write_file("flint.yaml", "rest.port: 9100\njobmanager.rpc.port: 7100\n");
    char *overrides[] = {"rest.port=9200", "heartbeat.interval=1 s"};
    flint_err err = {0};
    flint_config *cfg = config_load_program(tmpdir, overrides, 2, &err);
    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9200);         /* -D beats the file */
    ck_assert_int_eq(config_int(cfg, CFG_JOBMANAGER_RPC_PORT), 7100); /* file beats default */
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_INTERVAL), 1000);
    config_free(cfg);

    /* The result is validated: an interval above the timeout is refused. */
    char *bad[] = {"heartbeat.interval=60 s"};
    cfg = config_load_program(tmpdir, bad, 1, &err);
    ck_assert_ptr_null(cfg);
    assert_contains(err.msg, "heartbeat.timeout");
}
END_TEST

/* ---- unknown keys -------------------------------------------------------------------------- */

START_TEST(test_unknown_key_kept) {
    char logpath[PATH_MAX];
    tmp_path(logpath, "test.log");
    ck_assert_int_lt(nfiles, MAX_FILES);
    snprintf(files[nfiles++], PATH_MAX, "%s", logpath);
    ck_assert_int_eq(log_init("test", logpath, LOG_INFO), 0);

    flint_config *cfg = config_new();
    flint_err err = {0};
    const char *path;
    int rc = load_text(cfg,
                       "rest.port: 9000\n"
                       "state.backend.flavour: rocksdb\n"
                       "metrics:\n"
                       "  reporter: jmx\n",
                       &path, &err);
    log_shutdown();
    ck_assert_msg(rc == 0, "an unknown key is an error: %s", err.msg);
    ck_assert_int_eq(config_unknown_count(cfg), 2);
    ck_assert_str_eq(config_get(cfg, "state.backend.flavour"), "rocksdb");
    ck_assert_str_eq(config_get(cfg, "metrics.reporter"), "jmx");
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9000);

    /* The warning names the file, the line and the key. */
    FILE *f = fopen(logpath, "r");
    ck_assert_ptr_nonnull(f);
    char log[4096] = "";
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:2: unknown configuration key 'state.backend.flavour'", path);
    assert_contains(log, want);
    snprintf(want, sizeof want, "%s:4: unknown configuration key 'metrics.reporter'", path);
    assert_contains(log, want);
    config_free(cfg);
}
END_TEST

typedef struct seen { char text[1024]; } seen;

static void collect(const char *key, const char *value, void *ud) {
    seen *s = ud;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "%s=%s;", key, value);
}

START_TEST(test_foreach_set) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    int rc = load_text(cfg, "zz.unknown: 1\nrest.port: 9000\naa.unknown: 2\njobmanager.rpc.port: 7000\n",
                       NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    seen s = {""};
    config_foreach_set(cfg, collect, &s);
    /* Known keys in table order, then unknown keys in file order. */
    ck_assert_str_eq(s.text, "jobmanager.rpc.port=7000;rest.port=9000;zz.unknown=1;aa.unknown=2;");
    config_free(cfg);
}
END_TEST

/* ---- -D overrides --------------------------------------------------------------------------- */

START_TEST(test_override) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(cfg, "rest.port=9002", &err), 0);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9002);
    ck_assert(config_is_set(cfg, CFG_REST_PORT));
    ck_assert_int_eq(config_set_override(cfg, "heartbeat.timeout=2 min", &err), 0);
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_TIMEOUT), 120000);
    /* Only the first '=' splits: the value may contain more. */
    ck_assert_int_eq(config_set_override(cfg, "env.log.dir=/var/log/a=b", &err), 0);
    ck_assert_str_eq(config_str(cfg, CFG_ENV_LOG_DIR), "/var/log/a=b");
    /* An empty value is a value (for strings). */
    ck_assert_int_eq(config_set_override(cfg, "rest.address=", &err), 0);
    ck_assert_str_eq(config_str(cfg, CFG_REST_ADDRESS), "");
    /* Spaces around the key are ignored. */
    ck_assert_int_eq(config_set_override(cfg, " jobmanager.rpc.port =7001", &err), 0);
    ck_assert_int_eq(config_int(cfg, CFG_JOBMANAGER_RPC_PORT), 7001);
    config_free(cfg);
}
END_TEST

START_TEST(test_override_unknown_key) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(cfg, "pipeline.name=wordcount", &err), 0);
    ck_assert_int_eq(config_unknown_count(cfg), 1);
    ck_assert_str_eq(config_get(cfg, "pipeline.name"), "wordcount");
    ck_assert_int_eq(config_set_override(cfg, "pipeline.name=other", &err), 0);
    ck_assert_str_eq(config_get(cfg, "pipeline.name"), "other");
    config_free(cfg);
}
END_TEST

START_TEST(test_override_malformed) {
    static const char *bad[] = {"foo", "", "=x", "=", " =x", "rest.port"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        flint_config *cfg = config_new();
        flint_err err = {0};
        ck_assert_msg(config_set_override(cfg, bad[i], &err) == FLINT_CONFIG,
                      "'%s' was accepted", bad[i]);
        ck_assert_int_eq(err.code, FLINT_CONFIG);
        assert_contains(err.msg, "-D");
        assert_contains(err.msg, "key=value");
        ck_assert_int_eq(config_unknown_count(cfg), 0);
        config_free(cfg);
    }
}
END_TEST

START_TEST(test_override_bad_value) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(cfg, "rest.port=eighty", &err), FLINT_CONFIG);
    assert_contains(err.msg, "-D");
    assert_contains(err.msg, "rest.port");
    assert_contains(err.msg, "integer");
    assert_contains(err.msg, "eighty");
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 8081);
    ck_assert(!config_is_set(cfg, CFG_REST_PORT));

    ck_assert_int_eq(config_set_override(cfg, "heartbeat.interval=10 parsecs", &err), FLINT_CONFIG);
    assert_contains(err.msg, "duration");
    ck_assert_int_eq(config_set_override(cfg, "rest.port=65536", &err), FLINT_CONFIG);
    assert_contains(err.msg, "out of range");
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 8081);
    config_free(cfg);
}
END_TEST

/* ---- bad values in files ---------------------------------------------------------------------- */

/* Load text, which must fail with FLINT_CONFIG naming path:line and every word in want[]. */
static void assert_load_fails(const char *text, int line, const char *const *want, size_t nwant) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    const char *path;
    ck_assert_msg(load_text(cfg, text, &path, &err) == FLINT_CONFIG, "accepted: %s", text);
    ck_assert_int_eq(err.code, FLINT_CONFIG);
    assert_names_line(&err, path, line);
    for (size_t i = 0; i < nwant; i++) assert_contains(err.msg, want[i]);
    config_free(cfg);
}

#define LOAD_FAILS(text, line, ...)                                                      \
    do {                                                                                 \
        static const char *const want_[] = {__VA_ARGS__};                                \
        assert_load_fails(text, line, want_, sizeof want_ / sizeof want_[0]);            \
    } while (0)

START_TEST(test_bad_values) {
    LOAD_FAILS("rest.port: 9000\n# comment\nheartbeat.interval: soon\n", 3,
               "heartbeat.interval", "duration", "'soon'");
    LOAD_FAILS("rest.port: eighty\n", 1, "rest.port", "integer", "'eighty'");
    LOAD_FAILS("rest.port:\n", 1, "rest.port", "integer");
    LOAD_FAILS("a: 1\nb: 2\nrpc.max-frame-size: lots\n", 3, "rpc.max-frame-size", "memory size");
    LOAD_FAILS("heartbeat:\n  interval: 10 s\n  timeout: 10 parsecs\n", 3, "heartbeat.timeout",
               "duration", "10 parsecs");
    LOAD_FAILS("rest: {port: 1.5}\n", 1, "rest.port", "integer");
    LOAD_FAILS("taskmanager.numberOfTaskSlots: [1, 2]\n", 1, "taskmanager.numberOfTaskSlots",
               "integer", "1;2");
}
END_TEST

START_TEST(test_out_of_range) {
    LOAD_FAILS("rest.port: 70000\n", 1, "rest.port", "out of range", "0 to 65535");
    LOAD_FAILS("rest.port: -1\n", 1, "rest.port", "out of range");
    LOAD_FAILS("\ntaskmanager.numberOfTaskSlots: 0\n", 2, "taskmanager.numberOfTaskSlots",
               "out of range", "1 to 1024");
    LOAD_FAILS("heartbeat.interval: 5 ms\n", 1, "heartbeat.interval", "out of range", "10 ms");
    LOAD_FAILS("heartbeat.interval: 2 d\n", 1, "heartbeat.interval", "out of range", "1 d");
    LOAD_FAILS("rpc.max-frame-size: 100b\n", 1, "rpc.max-frame-size", "out of range", "1kb");
    LOAD_FAILS("rpc.max-frame-size: 4gb\n", 1, "rpc.max-frame-size", "out of range");
}
END_TEST

START_TEST(test_bounds_inclusive) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set(cfg, "rest.port", "65535", "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "rest.port", "0", "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "heartbeat.interval", "10 ms", "test", &err), 0);
    ck_assert_int_eq(config_set(cfg, "rpc.max-frame-size", "1kb", "test", &err), 0);
    ck_assert_int_eq(config_int(cfg, CFG_RPC_MAX_FRAME_SIZE), 1024);
    ck_assert_int_eq(config_set(cfg, "rpc.max-frame-size", "1023", "test", &err), FLINT_CONFIG);
    assert_contains(err.msg, "test: rpc.max-frame-size");
    ck_assert_int_eq(config_int(cfg, CFG_RPC_MAX_FRAME_SIZE), 1024);
    config_free(cfg);
}
END_TEST

/* ---- malformed YAML ------------------------------------------------------------------------- */

START_TEST(test_malformed_yaml) {
    LOAD_FAILS("rest.port: 1\nrest.address: \"abc\n", 3, "malformed YAML", "quoted scalar",
               "line 2");
    LOAD_FAILS("rest.port: 1\nrest.address: 'abc\nrest.port: 2\n", 4, "malformed YAML", "line 2");
    LOAD_FAILS("rest:\n  port: 1\n address: x\n", 3, "malformed YAML");
    LOAD_FAILS("rest:\n    port: 1\n  address: x\n", 3, "malformed YAML");
    LOAD_FAILS("rest.port: 1\nrest:\n\tport: 1\n", 3, "malformed YAML");
    LOAD_FAILS("rest.port: 1\n\trest.address: x\n", 2, "malformed YAML", "tab");
    LOAD_FAILS("rest: {port: 1\n", 2, "malformed YAML");
    LOAD_FAILS("rest.port: 1\nkey: value: other\n", 2, "malformed YAML");
}
END_TEST

START_TEST(test_wrong_shape) {
    LOAD_FAILS("# a list\n- rest.port\n- 9000\n", 2, "list");
    LOAD_FAILS("\nhello\n", 2, "plain value");
    LOAD_FAILS("rest.port: 1\nmetrics: &m {a: 1}\nother: *m\n", 3, "aliases");
    LOAD_FAILS("env.java.opts: [a, {b: 2}]\n", 1, "list");
    LOAD_FAILS("env.java.opts: [a, [b]]\n", 1, "list");
    LOAD_FAILS("? [a, b]\n: 1\n", 1, "key");
}
END_TEST

START_TEST(test_nested_too_deeply) {
    char text[512] = "";
    for (int i = 0; i < 20; i++) strcat(text, "a: {");
    strcat(text, "b: 1");
    for (int i = 0; i < 20; i++) strcat(text, "}");
    strcat(text, "\n");
    flint_config *cfg = config_new();
    flint_err err = {0};
    const char *path;
    ck_assert_int_eq(load_text(cfg, text, &path, &err), FLINT_CONFIG);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "nested too deeply");
    ck_assert_int_eq(config_unknown_count(cfg), 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_binary_garbage) {
    /* Bytes that are not UTF-8 and a NUL in the middle: an error, not a crash. */
    flint_config *cfg = config_new();
    const char *path = write_file("garbage.yaml", "");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    static const unsigned char junk[] = {'a', ':', ' ', 0xff, 0xfe, 0x00, 0x80, '\n', 0xc3, '\n'};
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    flint_err err = {0};
    ck_assert_int_eq(config_load_file(cfg, path, &err), FLINT_CONFIG);
    assert_contains(err.msg, path);
    ck_assert_int_eq(config_unknown_count(cfg), 0);
    config_free(cfg);
}
END_TEST

/* ---- an error applies nothing ----------------------------------------------------------------- */

static void assert_untouched(const flint_config *cfg) {
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 8081);
    ck_assert_str_eq(config_str(cfg, CFG_REST_PORT), "8081");
    ck_assert_str_eq(config_str(cfg, CFG_REST_ADDRESS), "localhost");
    ck_assert_int_eq(config_int(cfg, CFG_HEARTBEAT_INTERVAL), 10000);
    ck_assert(!config_is_set(cfg, CFG_REST_PORT));
    ck_assert(!config_is_set(cfg, CFG_REST_ADDRESS));
    ck_assert_int_eq(config_unknown_count(cfg), 0);
    ck_assert_ptr_null(config_get(cfg, "some.unknown"));
}

START_TEST(test_error_applies_nothing) {
    static const char *texts[] = {
        /* a bad value after good ones */
        "rest.port: 9000\nrest.address: x.org\nsome.unknown: 1\nheartbeat.interval: soon\n",
        /* a bad value before good ones */
        "heartbeat.interval: soon\nrest.port: 9000\nsome.unknown: 1\n",
        /* malformed YAML after good lines */
        "rest.port: 9000\nsome.unknown: 1\nrest.address: \"x.org\n",
        /* out of range in a nested map */
        "rest:\n  port: 9000\n  address: x.org\nsome:\n  unknown: 1\nheartbeat: {interval: 1 ms}\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        flint_config *cfg = config_new();
        flint_err err = {0};
        ck_assert_msg(load_text(cfg, texts[i], NULL, &err) == FLINT_CONFIG, "text %zu accepted", i);
        assert_untouched(cfg);
        config_free(cfg);
    }
}
END_TEST

START_TEST(test_error_keeps_earlier_file) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    const char *first = write_file("first.yaml", "rest.port: 9000\n");
    ck_assert_int_eq(config_load_file(cfg, first, &err), 0);
    const char *second = write_file("second.yaml", "rest.port: 9100\nrest.address: [\n");
    ck_assert_int_eq(config_load_file(cfg, second, &err), FLINT_CONFIG);
    assert_contains(err.msg, second);
    ck_assert_int_eq(config_int(cfg, CFG_REST_PORT), 9000);
    ck_assert_str_eq(config_str(cfg, CFG_REST_ADDRESS), "localhost");
    config_free(cfg);
}
END_TEST

/* ---- validation ----------------------------------------------------------------------------- */

START_TEST(test_validate_heartbeat) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(cfg, "heartbeat.interval=50 s", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), FLINT_CONFIG); /* equal: refused */
    assert_contains(err.msg, "heartbeat.timeout");
    assert_contains(err.msg, "heartbeat.interval");
    ck_assert_int_eq(config_set_override(cfg, "heartbeat.timeout=10 s", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), FLINT_CONFIG); /* smaller: refused */
    ck_assert_int_eq(config_set_override(cfg, "heartbeat.timeout=50001", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), 0); /* one ms more: fine */
    config_free(cfg);
}
END_TEST

START_TEST(test_validate_other) {
    flint_config *cfg = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(cfg, "cluster.registration.max-timeout=50 ms", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), FLINT_CONFIG);
    assert_contains(err.msg, "cluster.registration.max-timeout");
    ck_assert_int_eq(config_set_override(cfg, "cluster.registration.max-timeout=100 ms", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), 0);

    ck_assert_int_eq(config_set_override(cfg, "env.log.level=chatty", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), FLINT_CONFIG);
    assert_contains(err.msg, "env.log.level");
    assert_contains(err.msg, "chatty");
    ck_assert_int_eq(config_set_override(cfg, "env.log.level=debug", &err), 0);
    ck_assert_int_eq(config_validate(cfg, &err), 0);
    config_free(cfg);
}
END_TEST

/* ---- cloning -------------------------------------------------------------------------------- */

START_TEST(test_clone_independent) {
    flint_config *a = config_new();
    flint_err err = {0};
    ck_assert_int_eq(config_set_override(a, "rest.port=9000", &err), 0);
    ck_assert_int_eq(config_set_override(a, "rest.address=a.org", &err), 0);
    ck_assert_int_eq(config_set_override(a, "x.unknown=1", &err), 0);

    flint_config *b = config_clone(a);
    ck_assert_int_eq(config_int(b, CFG_REST_PORT), 9000);
    ck_assert_str_eq(config_str(b, CFG_REST_ADDRESS), "a.org");
    ck_assert(config_is_set(b, CFG_REST_PORT));
    ck_assert_str_eq(config_get(b, "x.unknown"), "1");
    ck_assert_int_eq(config_unknown_count(b), 1);
    ck_assert_ptr_ne(config_str(a, CFG_REST_ADDRESS), config_str(b, CFG_REST_ADDRESS));

    /* Changing the clone leaves the original alone, and the other way round. */
    ck_assert_int_eq(config_set_override(b, "rest.port=9100", &err), 0);
    ck_assert_int_eq(config_set_override(b, "x.unknown=2", &err), 0);
    ck_assert_int_eq(config_set_override(a, "rest.address=changed.org", &err), 0);
    ck_assert_int_eq(config_int(a, CFG_REST_PORT), 9000);
    ck_assert_str_eq(config_get(a, "x.unknown"), "1");
    ck_assert_str_eq(config_str(b, CFG_REST_ADDRESS), "a.org");

    /* The clone outlives the original (ASan catches shared memory). */
    config_free(a);
    ck_assert_int_eq(config_int(b, CFG_REST_PORT), 9100);
    ck_assert_str_eq(config_str(b, CFG_REST_ADDRESS), "a.org");
    ck_assert_str_eq(config_get(b, "x.unknown"), "2");
    config_free(b);
}
END_TEST

/* ---- docs/config.md -------------------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

START_TEST(test_markdown_lists_every_key) {
    char *md = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&md, &len);
    ck_assert_ptr_nonnull(out);
    config_write_markdown(out);
    ck_assert_int_eq(fclose(out), 0);
    for (int i = 0; i < CFG_COUNT; i++) {
        char row[256];
        snprintf(row, sizeof row, "| `%s` | %s |", config_info(i)->name,
                 config_type_name(config_info(i)->type));
        ck_assert_msg(strstr(md, row) != NULL, "docs lack a row for %s", config_info(i)->name);
    }
    assert_contains(md, "| `rest.port` | Integer | `8081` |");
    assert_contains(md, "| `rest.bind-address` | String | (none) |");
    free(md);
}
END_TEST

START_TEST(test_docs_up_to_date) {
    char *md = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&md, &len);
    ck_assert_ptr_nonnull(out);
    config_write_markdown(out);
    ck_assert_int_eq(fclose(out), 0);

    size_t flen = 0;
    char *file = read_all("docs/config.md", &flen);
    ck_assert_msg(file != NULL, "cannot read docs/config.md (run from the repository root)");
    ck_assert_msg(flen == len && memcmp(file, md, len) == 0,
                  "docs/config.md is out of date with common/config/config_keys.def: run make docs");
    free(file);
    free(md);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");

    TCase *tc = tcase_create("defaults");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_key_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_flat_keys);
    tcase_add_test(tc, test_nested_flow_map);
    tcase_add_test(tc, test_nested_block_map);
    tcase_add_test(tc, test_lists_joined);
    tcase_add_test(tc, test_later_value_wins);
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_load_dir);
    tcase_add_test(tc, test_load_program);
    suite_add_tcase(s, tc);

    tc = tcase_create("unknown");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_unknown_key_kept);
    tcase_add_test(tc, test_foreach_set);
    suite_add_tcase(s, tc);

    tc = tcase_create("override");
    tcase_add_test(tc, test_override);
    tcase_add_test(tc, test_override_unknown_key);
    tcase_add_test(tc, test_override_malformed);
    tcase_add_test(tc, test_override_bad_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_out_of_range);
    tcase_add_test(tc, test_bounds_inclusive);
    tcase_add_test(tc, test_malformed_yaml);
    tcase_add_test(tc, test_wrong_shape);
    tcase_add_test(tc, test_nested_too_deeply);
    tcase_add_test(tc, test_binary_garbage);
    tcase_add_test(tc, test_error_applies_nothing);
    tcase_add_test(tc, test_error_keeps_earlier_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_test(tc, test_validate_heartbeat);
    tcase_add_test(tc, test_validate_other);
    tcase_add_test(tc, test_clone_independent);
    suite_add_tcase(s, tc);

    tc = tcase_create("docs");
    tcase_add_test(tc, test_markdown_lists_every_key);
    tcase_add_test(tc, test_docs_up_to_date);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

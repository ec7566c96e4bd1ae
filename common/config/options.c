/* Shared command-line options and daemon start-up (see options.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "main"
#include "config/options.h"
#include "flint/version.h"
#include "util/alloc.h"
#include "util/log.h"

int options_take(options *o, int argc, char **argv, int *i, flint_err *err) {
    const char *a = argv[*i];
    const char *val = NULL;
    if (strcmp(a, "-D") == 0 || strcmp(a, "--config-dir") == 0 || strcmp(a, "--log-file") == 0) {
        if (*i + 1 >= argc) return flint_err_set(err, FLINT_INVALID, "%s needs an argument", a), -1;
        val = argv[++*i];
    } else if (strncmp(a, "-D", 2) == 0) {
        val = a + 2;
    } else if (strncmp(a, "--config-dir=", 13) == 0) {
        o->config_dir = a + 13;
        ++*i;
        return 1;
    } else {
        return 0;
    }
    if (strcmp(a, "--config-dir") == 0) {
        o->config_dir = val;
    } else if (strcmp(a, "--log-file") == 0) {
        o->log_file = val;
    } else {
        const char *eq = strchr(val, '=');
        if (!eq || eq == val || strspn(val, " \t") == (size_t)(eq - val))
            return flint_err_set(err, FLINT_INVALID, "-D %s: expected key=value", val), -1;
        o->overrides = xrealloc(o->overrides, (size_t)(o->noverrides + 1) * sizeof *o->overrides);
        o->overrides[o->noverrides++] = (char *)val;
    }
    ++*i;
    return 1;
}

flint_config *options_load_config(const options *o, flint_err *err) {
    return config_load_program(o->config_dir, o->overrides, o->noverrides, err);
}

void options_free(options *o) {
    free(o->overrides);
    o->overrides = NULL;
    o->noverrides = 0;
}

static void daemon_usage(FILE *out, const char *prog) {
    fprintf(out,
            "Usage: %s [--config-dir DIR] [-D key=value]... [--log-file FILE]\n"
            "  --config-dir DIR   configuration directory holding flint.yaml\n"
            "                     (default: $FLINT_CONF_DIR, else conf/ of the installation)\n"
            "  -D key=value       set a configuration key (see docs/config.md); repeatable\n"
            "  --log-file FILE    append the log to FILE instead of stderr\n"
            "  -h, --help         show this help\n"
            "  --version          show the version\n",
            prog);
}

flint_config *options_daemon_init(const char *prog, const char *component, int argc, char **argv,
                                  int *exit_code) {
    options o = {0};
    flint_err err = {0};
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            daemon_usage(stdout, prog);
            options_free(&o);
            *exit_code = 0;
            return NULL;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog, FLINT_VERSION);
            options_free(&o);
            *exit_code = 0;
            return NULL;
        }
        int r = options_take(&o, argc, argv, &i, &err);
        if (r == 1) continue;
        if (r == 0) flint_err_set(&err, FLINT_INVALID, "unknown option '%s'", argv[i]);
        fprintf(stderr, "%s: %s (see %s --help)\n", prog, err.msg, prog);
        options_free(&o);
        *exit_code = 2;
        return NULL;
    }
    /* Open the log first, so that warnings about the configuration land in it. */
    if (log_init(component, o.log_file, LOG_INFO) != 0) {
        fprintf(stderr, "%s: cannot open log file %s: %m\n", prog, o.log_file);
        options_free(&o);
        *exit_code = 1;
        return NULL;
    }
    flint_config *cfg = options_load_config(&o, &err);
    options_free(&o);
    if (!cfg) {
        log_error("%s", err.msg);
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        *exit_code = 1;
        return NULL;
    }
    log_set_level((log_level)log_level_parse(config_str(cfg, CFG_ENV_LOG_LEVEL)));
    return cfg;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    log_info("received %s, shutting down", strsignal((int)sig));
    event_base_loopbreak(arg);
}

void options_daemon_run(struct event_base *base) {
    signal(SIGPIPE, SIG_IGN);
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
}

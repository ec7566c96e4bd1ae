/* The command-line options every Flint program shares (--config-dir DIR, -D key=value,
 * -Dkey=value) and the start-up of the two daemons (config, log file, signals, event loop). */
#ifndef FLINT_OPTIONS_H
#define FLINT_OPTIONS_H

#include <event2/event.h>
#include <stdbool.h>

#include "config/config.h"

typedef struct options {
    const char *config_dir;   /* NULL: config_default_dir() */
    const char *log_file;     /* daemons only; NULL: stderr */
    char **overrides;         /* "key=value" strings pointing into argv; owned array */
    int noverrides;
} options;

/* If argv[*i] is a shared option, consume it (and its argument), advance *i and return 1; return
 * 0 when it is not one; return -1 with err when its argument is missing. */
int options_take(options *o, int argc, char **argv, int *i, flint_err *err);
/* Load the configuration the options name (config_load_program). */
flint_config *options_load_config(const options *o, flint_err *err);
void options_free(options *o);

/* Daemon start-up: parse argv (shared options, --log-file FILE, -h/--help), load the config,
 * open the log. Returns the config (caller frees), or NULL after printing the reason on stderr
 * with *exit_code set (2 usage, 1 config or log file, 0 for --help). */
flint_config *options_daemon_init(const char *prog, const char *component, int argc, char **argv,
                                  int *exit_code);
/* Run base until SIGTERM or SIGINT (logged), with SIGPIPE ignored. */
void options_daemon_run(struct event_base *base);

#endif

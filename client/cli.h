/* The `flint` command-line client: verbs in Flink's style (list, overview, config, ...), each a
 * function taking the parsed common options. */
#ifndef FLINT_CLI_H
#define FLINT_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "config/options.h"
#include "rpc/rpc.h"

/* Exit codes: 0 success, 1 failure (jobmanager unreachable, request failed), 2 usage error. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

typedef struct cli {
    const char *verb;
    options opts;
    const char *jobmanager;    /* -m host:port, or NULL for the configured address */
    char **args;               /* positional arguments after the verb (point into argv) */
    int nargs;
    flint_config *cfg;         /* loaded from opts before the verb runs; owned */
    bool detached;             /* run -d: print the job id and return */
    int parallelism;           /* run/info -p N; 0 when not given (then parallelism.default) */
    const char *savepoint_path;   /* run -s PATH: restore from this savepoint; NULL when not given */
    bool allow_non_restored;   /* run -n: skip savepoint state of operators the job no longer has */
    const char *stop_dir;      /* stop --savepoint-path DIR; NULL: state.savepoints.dir */
    bool drain;                /* stop --drain */
} cli;

/* Send req to the jobmanager and wait for the reply (rpc.ask.timeout). On failure prints one line
 * ("flint: cannot reach the jobmanager at H:P: ...") and returns NULL. Caller frees the reply
 * with rpc_envelope_free. */
rpc_envelope *cli_request(cli *c, rpc_envelope *req);

/* Print a usage error for the verb (one line, then a hint to --help) and return CLI_USAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Verbs. */
int cli_list(cli *c);
int cli_overview(cli *c);
int cli_config(cli *c);
/* cli_job.c: run [-d] [-p N] [-s PATH [-n]] job.so [args], info [-p N] job.so [args],
 * cancel JOBID, savepoint JOBID [DIR], stop [--savepoint-path DIR] [--drain] JOBID */
int cli_run(cli *c);
int cli_info(cli *c);
int cli_cancel(cli *c);
int cli_savepoint(cli *c);
int cli_stop(cli *c);

/* cli_status.c (issue 8): status JOBID; the table of flint list; run's progress line (updated in
 * place on a terminal, a plain line every few seconds otherwise; clear it before printing a
 * line of your own). */
int cli_status(cli *c);
int cli_list_table(const Flint__Rpc__ListJobsResponse *l);
typedef struct cli_progress {
    bool tty;
    bool shown;                /* a progress line is on the terminal */
    int64_t last_plain_ms;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_update(cli_progress *p, const Flint__Rpc__JobDetails *d);
void cli_progress_clear(cli_progress *p);

#endif

/* flint: the command-line client. Parses the verb and the options every verb shares, loads the
 * configuration and runs the verb (see cli.h). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flint/version.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strutil.h"

/* Verb flags: which verb-specific options it takes, and whether its arguments after the first
 * belong to a job (run and info pass them to flint_job_main untouched). */
enum { VERB_DETACHED = 1, VERB_PARALLELISM = 2, VERB_JOB_ARGS = 4, VERB_RESTORE = 8, VERB_STOP = 16 };

typedef struct verb {
    const char *name;
    int (*run)(cli *c);
    int max_args;
    const char *args;       /* positional arguments, for the usage line */
    const char *summary;
    int flags;
} verb;

static const verb verbs[] = {
    {"run", cli_run, 1, "job.so [job arguments...]",
     "Run a job: load the artifact, build and check its job graph, submit it and follow it "
     "until it ends (-d: print the job id and return).",
     VERB_DETACHED | VERB_PARALLELISM | VERB_JOB_ARGS | VERB_RESTORE},
    {"info", cli_info, 1, "job.so [job arguments...]",
     "Print the job graph a job would submit (vertices, chained operators, parallelism, edges); "
     "the jobmanager is not contacted.",
     VERB_PARALLELISM | VERB_JOB_ARGS},
    {"list", cli_list, 0, "", "List the jobs of the cluster and their states.", 0},
    {"status", cli_status, 1, "JOBID",
     "Show a job: state, records in/out per second, checkpoints, and a table of its vertices "
     "(parallelism, records, backpressure, busy time, watermark).", 0},
    {"cancel", cli_cancel, 1, "JOBID", "Cancel a running job.", 0},
    {"savepoint", cli_savepoint, 2, "JOBID [DIR]",
     "Take a savepoint of a running job into DIR (default: state.savepoints.dir) and print its path; "
     "the job keeps running.", 0},
    {"stop", cli_stop, 1, "JOBID",
     "Stop a running job with a savepoint: the sources stop, a final savepoint is taken and the job "
     "finishes; prints the savepoint's path.", VERB_STOP},
    {"overview", cli_overview, 0, "", "Show the cluster: taskmanagers, slots and jobs.", 0},
    {"config", cli_config, 64, "[KEY...]",
     "Print the effective value of each KEY (all keys set when none is given).", 0},
};
#define NVERBS (sizeof verbs / sizeof verbs[0])

static const char common_help[] =
    "  -m, --jobmanager HOST:PORT  the jobmanager's RPC address\n"
    "                              (default: jobmanager.rpc.address:jobmanager.rpc.port)\n"
    "  -D key=value                set a configuration key; repeatable\n"
    "  --config-dir DIR            configuration directory holding flint.yaml\n"
    "                              (default: $FLINT_CONF_DIR, else conf/ of the installation)\n"
    "  -h, --help                  show help\n";

static void usage_main(FILE *out) {
    fprintf(out, "Usage: flint <verb> [options] [args]\n\nVerbs:\n");
    for (size_t i = 0; i < NVERBS; i++) fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out, "\nOptions of every verb:\n%s\nRun 'flint <verb> --help' for a verb's usage.\n",
            common_help);
}

static void usage_verb(FILE *out, const verb *v) {
    fprintf(out, "Usage: flint %s [options] %s\n\n%s\n\nOptions:\n", v->name, v->args, v->summary);
    if (v->flags & VERB_DETACHED)
        fprintf(out, "  -d, --detached              print the job id once submitted and return\n");
    if (v->flags & VERB_PARALLELISM)
        fprintf(out, "  -p, --parallelism N         parallelism of operators that set none and whose\n"
                     "                              job sets none (default: parallelism.default)\n");
    if (v->flags & VERB_RESTORE)
        fprintf(out, "  -s, --fromSavepoint PATH    start from a savepoint or retained checkpoint\n"
                     "                              (its directory or its _metadata file)\n"
                     "  -n, --allowNonRestoredState skip savepoint state of operators that are no\n"
                     "                              longer in the job\n");
    if (v->flags & VERB_STOP)
        fprintf(out, "  -p, --savepoint-path DIR    where the savepoint goes\n"
                     "                              (default: state.savepoints.dir)\n"
                     "  -d, --drain                 end the sources' input first (MAX watermark): event\n"
                     "                              time windows fire before the savepoint\n");
    fprintf(out, "%s", common_help);
    if (v->flags & VERB_JOB_ARGS)
        fprintf(out, "\nOptions go before job.so; everything after it is passed to the job's\n"
                     "flint_job_main (argv[0] is the path of job.so).\n");
}

int cli_usage_error(const cli *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "flint%s%s: ", c->verb ? " " : "", c->verb ? c->verb : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'flint %s%s--help')\n", c->verb ? c->verb : "", c->verb ? " " : "");
    va_end(ap);
    return CLI_USAGE;
}

rpc_envelope *cli_request(cli *c, rpc_envelope *req) {
    char host[256];
    int port;
    if (c->jobmanager) {
        if (str_parse_hostport(c->jobmanager, host, sizeof host, &port)) {
            fprintf(stderr, "flint: -m %s: expected HOST:PORT\n", c->jobmanager);
            return NULL;
        }
    } else {
        snprintf(host, sizeof host, "%s", config_str(c->cfg, CFG_JOBMANAGER_RPC_ADDRESS));
        port = (int)config_int(c->cfg, CFG_JOBMANAGER_RPC_PORT);
    }
    rpc_envelope *reply = NULL;
    flint_err err = {0};
    int rc = rpc_call_sync(host, port, req, config_int(c->cfg, CFG_RPC_ASK_TIMEOUT),
                           (size_t)config_int(c->cfg, CFG_RPC_MAX_FRAME_SIZE), &reply, &err);
    if (rc == FLINT_OK) return reply;
    if (rc == FLINT_UNAVAILABLE || rc == FLINT_CLOSED || rc == FLINT_TIMEOUT)
        fprintf(stderr, "flint: cannot reach the jobmanager at %s\n", err.msg);
    else
        fprintf(stderr, "flint: the jobmanager refused the request: %s\n", err.msg);
    return NULL;
}

static const verb *find_verb(const char *name) {
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0) return &verbs[i];
    return NULL;
}

/* Parse everything after the verb; returns -1 to go on, else an exit code. */
static int parse_args(cli *c, const verb *v, int argc, char **argv) {
    flint_err err = {0};
    c->args = xcalloc((size_t)argc, sizeof *c->args);
    for (int i = 2; i < argc;) {
        const char *a = argv[i];
        if ((v->flags & VERB_JOB_ARGS) && c->nargs >= 1) {   /* the job's own arguments */
            c->args[c->nargs++] = argv[i++];
            continue;
        }
        if ((v->flags & VERB_DETACHED) && (strcmp(a, "-d") == 0 || strcmp(a, "--detached") == 0)) {
            c->detached = true;
            i++;
            continue;
        }
        if ((v->flags & VERB_PARALLELISM) && (strcmp(a, "-p") == 0 || strcmp(a, "--parallelism") == 0)) {
            int64_t p;
            if (i + 1 >= argc) return cli_usage_error(c, "%s needs a number", a);
            if (str_parse_int(argv[i + 1], &p) || p < 1 || p > 32768)
                return cli_usage_error(c, "%s %s: expected a parallelism in 1..32768", a, argv[i + 1]);
            c->parallelism = (int)p;
            i += 2;
            continue;
        }
        if ((v->flags & VERB_RESTORE) &&
            (strcmp(a, "-s") == 0 || strcmp(a, "--fromSavepoint") == 0 || strcmp(a, "--from-savepoint") == 0)) {
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage_error(c, "%s needs a savepoint path", a);
            c->savepoint_path = argv[i + 1];
            i += 2;
            continue;
        }
        if ((v->flags & VERB_RESTORE) && (strcmp(a, "-n") == 0 || strcmp(a, "--allowNonRestoredState") == 0 ||
                                          strcmp(a, "--allow-non-restored-state") == 0)) {
            c->allow_non_restored = true;
            i++;
            continue;
        }
        if ((v->flags & VERB_STOP) && (strcmp(a, "-p") == 0 || strcmp(a, "--savepoint-path") == 0 ||
                                       strcmp(a, "--savepointPath") == 0)) {
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage_error(c, "%s needs a directory", a);
            c->stop_dir = argv[i + 1];
            i += 2;
            continue;
        }
        if ((v->flags & VERB_STOP) && (strcmp(a, "-d") == 0 || strcmp(a, "--drain") == 0)) {
            c->drain = true;
            i++;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage_verb(stdout, v);
            return CLI_OK;
        }
        if (strcmp(a, "-m") == 0 || strcmp(a, "--jobmanager") == 0) {
            if (i + 1 >= argc) return cli_usage_error(c, "%s needs HOST:PORT", a);
            c->jobmanager = argv[i + 1];
            char host[256];
            int port;
            if (str_parse_hostport(c->jobmanager, host, sizeof host, &port))
                return cli_usage_error(c, "%s %s: expected HOST:PORT", a, c->jobmanager);
            i += 2;
            continue;
        }
        int r = options_take(&c->opts, argc, argv, &i, &err);
        if (r < 0) return cli_usage_error(c, "%s", err.msg);
        if (r == 1) continue;
        if (a[0] == '-' && a[1]) return cli_usage_error(c, "unknown option '%s'", a);
        if (c->nargs >= v->max_args) return cli_usage_error(c, "unexpected argument '%s'", a);
        c->args[c->nargs++] = argv[i++];
    }
    if (c->opts.log_file) return cli_usage_error(c, "--log-file is for the daemons");
    if (c->allow_non_restored && !c->savepoint_path)
        return cli_usage_error(c, "-n (--allowNonRestoredState) needs -s PATH");
    return -1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a jobmanager that hangs up is an error reply, not a kill */
    log_init("client", NULL, LOG_WARN);
    if (argc < 2) {
        usage_main(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage_main(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        printf("flint %s\n", FLINT_VERSION);
        return CLI_OK;
    }
    cli c = {0};
    const verb *v = find_verb(argv[1]);
    if (!v) return cli_usage_error(&c, "unknown verb '%s'", argv[1]);
    c.verb = v->name;
    int rc = parse_args(&c, v, argc, argv);
    if (rc < 0) {
        flint_err err = {0};
        c.cfg = options_load_config(&c.opts, &err);
        if (!c.cfg) {
            fprintf(stderr, "flint: %s\n", err.msg);
            rc = CLI_FAILED;
        } else {
            rc = v->run(&c);
        }
    }
    config_free(c.cfg);
    options_free(&c.opts);
    free(c.args);
    return rc;
}

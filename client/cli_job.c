/* Verbs about jobs: run (load the artifact, run its main, chain, check, submit, follow; -s restores
 * a savepoint), info (the plan, without contacting the jobmanager), cancel, savepoint and stop
 * (trigger, then poll the request until the jobmanager reports its outcome). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_artifact.h"
#include "graph/graph.h"
#include "util/alloc.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define FOLLOW_INTERVAL_MS 200

/* One run of a job's main, shared with the execute hook. */
typedef struct job_run {
    cli *c;
    cli_artifact art;
    bool info;              /* print the plan instead of submitting */
    bool reported;          /* an error was printed already */
    bool submitted;
    bool planned;           /* info: the plan was printed */
    int exit_code;          /* after submission: how the job ended (or 0 when detached) */
} job_run;

static void print_time(FILE *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(out, "%s", buf);
}

static void sleep_ms(int64_t ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The jobmanager's address; NULL after printing why it is not valid. */
static bool jm_address(cli *c, char *host, size_t hostlen, int *port) {
    if (c->jobmanager) {
        if (str_parse_hostport(c->jobmanager, host, hostlen, port)) {
            fprintf(stderr, "flint: -m %s: expected HOST:PORT\n", c->jobmanager);
            return false;
        }
    } else {
        snprintf(host, hostlen, "%s", config_str(c->cfg, CFG_JOBMANAGER_RPC_ADDRESS));
        *port = (int)config_int(c->cfg, CFG_JOBMANAGER_RPC_PORT);
    }
    return true;
}

static bool jm_state_final(const char *s) {
    return strcmp(s, "FINISHED") == 0 || strcmp(s, "FAILED") == 0 || strcmp(s, "CANCELED") == 0;
}

/* Poll GetJob until the job reaches a terminal state, printing each state change and, while it
 * runs, its progress (cli_status.c). Returns the exit code: 0 FINISHED, 1 FAILED, CANCELED or
 * contact lost. */
static int follow(cli *c, const char *job_id) {
    char host[256];
    int port;
    if (!jm_address(c, host, sizeof host, &port)) return CLI_FAILED;
    int64_t timeout = config_int(c->cfg, CFG_RPC_ASK_TIMEOUT);
    size_t max_frame = (size_t)config_int(c->cfg, CFG_RPC_MAX_FRAME_SIZE);
    int64_t last_ok = time_mono_ms();
    char last[32] = "";
    cli_progress progress;
    cli_progress_init(&progress);
    for (;;) {
        Flint__Rpc__GetJob msg = FLINT__RPC__GET_JOB__INIT;
        msg.job_id = (char *)job_id;
        rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
        req.body_case = FLINT__RPC__ENVELOPE__BODY_GET_JOB;
        req.get_job = &msg;
        rpc_envelope *reply = NULL;
        flint_err err = {0};
        int rc = rpc_call_sync(host, port, &req, timeout, max_frame, &reply, &err);
        if (rc == FLINT_UNAVAILABLE || rc == FLINT_CLOSED || rc == FLINT_TIMEOUT) {
            if (time_mono_ms() - last_ok > timeout) {
                cli_progress_clear(&progress);
                fprintf(stderr,
                        "flint: lost contact with the jobmanager while following job %s: %s\n"
                        "The job may still be running; see 'flint list'.\n",
                        job_id, err.msg);
                return CLI_FAILED;
            }
            sleep_ms(FOLLOW_INTERVAL_MS);
            continue;
        }
        if (rc != FLINT_OK) {
            cli_progress_clear(&progress);
            fprintf(stderr, "flint: cannot follow job %s: %s\n", job_id, err.msg);
            return CLI_FAILED;
        }
        if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_JOB_DETAILS) {
            fprintf(stderr, "flint: unexpected answer from the jobmanager (%s)\n", rpc_body_name(reply));
            rpc_envelope_free(reply);
            return CLI_FAILED;
        }
        last_ok = time_mono_ms();
        Flint__Rpc__JobDetails *d = reply->job_details;
        const char *state = d->state ? d->state : "";
        if (strcmp(state, last) != 0) {
            cli_progress_clear(&progress);
            snprintf(last, sizeof last, "%s", state);
            print_time(stdout);
            printf(" Job %s (%s) switched to %s\n", job_id, d->name ? d->name : "", state);
            fflush(stdout);
        }
        int done = -1;
        if (jm_state_final(state)) cli_progress_clear(&progress);
        if (strcmp(state, "FINISHED") == 0) {
            if (d->end_time > 0 && d->start_time > 0 && d->end_time >= d->start_time)
                printf("Job Runtime: %lld ms\n", (long long)(d->end_time - d->start_time));
            done = CLI_OK;
        } else if (strcmp(state, "FAILED") == 0) {
            const char *cause = d->root_exception && d->root_exception->exception &&
                                        *d->root_exception->exception
                                    ? d->root_exception->exception
                                    : "unknown (the jobmanager reported no exception)";
            fflush(stdout);
            fprintf(stderr, "Caused by: %s\n", cause);
            done = CLI_FAILED;
        } else if (strcmp(state, "CANCELED") == 0) {
            done = CLI_FAILED;
        }
        if (done < 0) cli_progress_update(&progress, d);
        rpc_envelope_free(reply);
        if (done >= 0) {
            fflush(stdout);
            return done;
        }
        sleep_ms(FOLLOW_INTERVAL_MS);
    }
}

/* path made absolute against the working directory (the jobmanager has another one); caller
 * frees. */
static char *absolute_path(const char *path) {
    if (path[0] == '/') return xstrdup(path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return xstrdup(path);
    return xasprintf("%s/%s", cwd, path);
}

/* Submit job (and the artifact when it names user functions); prints the job id. */
static int submit(job_run *r, flint_env *env, Flint__Graph__JobGraph *job) {
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (*job->artifact_sha256) {
        char hex[SHA256_HEX_LEN];
        flint_err err = {0};
        if (cli_artifact_read(&r->art, &bytes, &len, hex, &err))
            return graph_env_fail(env, err.code, "%s", err.msg);
        if (strcmp(hex, job->artifact_sha256) != 0)
            fprintf(stderr, "flint: warning: %s changed while the job was built\n", r->art.path);
        free(job->artifact_sha256);
        job->artifact_sha256 = xstrdup(hex);
    }
    Flint__Rpc__SubmitJob msg = FLINT__RPC__SUBMIT_JOB__INIT;
    msg.graph = job;
    msg.artifact.data = bytes;
    msg.artifact.len = len;
    char *savepoint = NULL;
    if (r->c->savepoint_path) {
        savepoint = absolute_path(r->c->savepoint_path);
        msg.savepoint_path = savepoint;
        msg.allow_non_restored_state = r->c->allow_non_restored;
    }
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB;
    req.submit_job = &msg;
    size_t size = flint__rpc__envelope__get_packed_size(&req);
    size_t max_frame = (size_t)config_int(r->c->cfg, CFG_RPC_MAX_FRAME_SIZE);
    if (size > max_frame) {
        free(bytes);
        free(savepoint);
        return graph_env_fail(env, FLINT_TOO_LARGE,
                              "%s: the job with its artifact is %zu bytes, more than "
                              "rpc.max-frame-size (%zu bytes)",
                              r->art.path, size, max_frame);
    }
    rpc_envelope *reply = cli_request(r->c, &req);
    free(bytes);
    free(savepoint);
    if (!reply) {
        r->reported = true;
        return graph_env_fail(env, FLINT_UNAVAILABLE, "the job was not submitted");
    }
    if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_SUBMIT_JOB_RESPONSE) {
        int rc = graph_env_fail(env, FLINT_PROTOCOL, "unexpected answer from the jobmanager (%s)",
                                rpc_body_name(reply));
        rpc_envelope_free(reply);
        return rc;
    }
    const char *id = reply->submit_job_response->job_id;
    if (id && *id && strcmp(id, job->job_id) != 0) {
        free(job->job_id);
        job->job_id = xstrdup(id);
    }
    rpc_envelope_free(reply);
    r->submitted = true;
    printf("Job has been submitted with JobID %s\n", job->job_id);
    fflush(stdout);
    return FLINT_OK;
}

/* flint_execute's hook: the graph is built and valid; check symbols, then plan or submit. */
static int on_execute(flint_env *env, Flint__Graph__JobGraph *job, void *ud) {
    job_run *r = ud;
    flint_err err = {0};
    if (cli_artifact_check_udfs(&r->art, env, &err)) return graph_env_fail(env, err.code, "%s", err.msg);
    if (graph_env_udf_count(env) > 0) {
        char hex[SHA256_HEX_LEN];
        if (sha256_file_hex(r->art.path, hex, &err)) return graph_env_fail(env, err.code, "%s", err.msg);
        free(job->artifact_sha256);
        job->artifact_sha256 = xstrdup(hex);
    }
    if (r->info) {
        graph_plan_print(job, stdout);
        fflush(stdout);
        r->planned = true;
        return FLINT_OK;
    }
    int rc = submit(r, env, job);
    if (rc) return rc;
    if (r->c->detached) return FLINT_OK;
    /* Attached: flint_execute returns when the job is over, as Flink's execute(). */
    r->exit_code = follow(r->c, job->job_id);
    if (r->exit_code != CLI_OK)
        return graph_env_fail(env, FLINT_ERR, "job %s did not finish", job->job_id);
    return FLINT_OK;
}

/* Split "key=value" (a -D override) into env's job configuration. */
static void add_override(flint_env *env, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq) return;   /* config_load_program rejected it already */
    char *key = xstrndup(kv, (size_t)(eq - kv));
    graph_env_add_config(env, str_trim(key), eq + 1);
    free(key);
}

/* run and info: load job.so, call its main with an env whose flint_execute does the rest. */
static int run_job(cli *c, bool info) {
    if (c->nargs < 1) return cli_usage_error(c, "missing the job artifact (job.so)");
    job_run r = {.c = c, .info = info};
    flint_err err = {0};
    const char *path = c->args[0];
    if (cli_artifact_open(&r.art, path, &err)) {
        fprintf(stderr, "flint %s: %s\n", c->verb, err.msg);
        return CLI_FAILED;
    }
    graph_env_defaults d = {
        .parallelism = c->parallelism > 0 ? c->parallelism : (int)config_int(c->cfg, CFG_PARALLELISM_DEFAULT),
        .max_parallelism = (int)config_int(c->cfg, CFG_PIPELINE_MAX_PARALLELISM),
        .buffer_timeout_ms = config_int(c->cfg, CFG_EXECUTION_BUFFER_TIMEOUT),
    };
    flint_env *env = graph_env_new(&d);
    for (int i = 0; i < c->opts.noverrides; i++) add_override(env, c->opts.overrides[i]);
    graph_env_set_execute_hook(env, on_execute, &r);

    /* The job's argv: the artifact path, then everything after it on the command line. */
    int argc = c->nargs;
    char **argv = xcalloc((size_t)argc + 1, sizeof *argv);
    for (int i = 0; i < argc; i++) argv[i] = c->args[i];
    int rc = r.art.main(env, argc, argv);
    fflush(stdout);

    int exit_code;
    if (r.submitted) {
        exit_code = c->detached ? CLI_OK : r.exit_code;
    } else if (graph_env_executed(env) && graph_env_error_code(env)) {
        if (!r.reported) fprintf(stderr, "flint %s: %s\n", c->verb, flint_env_error(env));
        exit_code = CLI_FAILED;
    } else if (graph_env_executed(env) && rc == 0) {
        exit_code = CLI_OK;    /* info: the plan is printed */
    } else if (graph_env_executed(env)) {
        fprintf(stderr, "flint %s: flint_job_main returned %d after flint_execute\n", c->verb, rc);
        exit_code = CLI_FAILED;
    } else if (rc != 0) {
        const char *why = flint_env_error(env);
        fprintf(stderr, "flint %s: flint_job_main returned %d: %s\n", c->verb, rc,
                why ? why : "no reason given");
        exit_code = CLI_FAILED;
    } else {
        const char *why = flint_env_error(env);
        fprintf(stderr, "flint %s: flint_job_main returned 0 without calling flint_execute%s%s; "
                        "nothing was submitted\n",
                c->verb, why ? ": " : "", why ? why : "");
        exit_code = CLI_FAILED;
    }
    free(argv);
    graph_env_free(env);
    cli_artifact_close(&r.art);
    return exit_code;
}

int cli_run(cli *c) { return run_job(c, false); }

int cli_info(cli *c) { return run_job(c, true); }

static bool is_job_id(const char *s) {
    size_t n = strlen(s);
    if (n != 32) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

int cli_cancel(cli *c) {
    if (c->nargs < 1) return cli_usage_error(c, "missing the job id");
    const char *id = c->args[0];
    if (!is_job_id(id)) return cli_usage_error(c, "'%s' is not a job id (32 hex digits)", id);
    Flint__Rpc__CancelJob msg = FLINT__RPC__CANCEL_JOB__INIT;
    msg.job_id = (char *)id;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_CANCEL_JOB;
    req.cancel_job = &msg;
    printf("Cancelling job %s.\n", id);
    fflush(stdout);
    rpc_envelope *reply = cli_request(c, &req);
    if (!reply) return CLI_FAILED;
    if (reply->body_case == FLINT__RPC__ENVELOPE__BODY_ERROR) {
        fprintf(stderr, "flint cancel: %s\n", reply->error->message);
        rpc_envelope_free(reply);
        return CLI_FAILED;
    }
    rpc_envelope_free(reply);
    printf("Cancelled job %s.\n", id);
    return CLI_OK;
}

/* Poll GetSavepointStatus until the request is COMPLETED. Prints the outcome; returns the exit
 * code. */
static int wait_savepoint(cli *c, const char *job_id, const char *trigger_id) {
    char host[256];
    int port;
    if (!jm_address(c, host, sizeof host, &port)) return CLI_FAILED;
    int64_t timeout = config_int(c->cfg, CFG_RPC_ASK_TIMEOUT);
    size_t max_frame = (size_t)config_int(c->cfg, CFG_RPC_MAX_FRAME_SIZE);
    int64_t last_ok = time_mono_ms();
    for (;;) {
        Flint__Rpc__GetSavepointStatus msg = FLINT__RPC__GET_SAVEPOINT_STATUS__INIT;
        msg.job_id = (char *)job_id;
        msg.trigger_id = (char *)trigger_id;
        rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
        req.body_case = FLINT__RPC__ENVELOPE__BODY_GET_SAVEPOINT_STATUS;
        req.get_savepoint_status = &msg;
        rpc_envelope *reply = NULL;
        flint_err err = {0};
        int rc = rpc_call_sync(host, port, &req, timeout, max_frame, &reply, &err);
        if (rc == FLINT_UNAVAILABLE || rc == FLINT_CLOSED || rc == FLINT_TIMEOUT) {
            if (time_mono_ms() - last_ok > timeout) {
                fprintf(stderr, "flint %s: lost contact with the jobmanager while waiting for the savepoint: %s\n",
                        c->verb, err.msg);
                return CLI_FAILED;
            }
            sleep_ms(FOLLOW_INTERVAL_MS);
            continue;
        }
        if (rc != FLINT_OK) {
            fprintf(stderr, "flint %s: %s\n", c->verb, err.msg);
            return CLI_FAILED;
        }
        if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_SAVEPOINT_STATUS) {
            fprintf(stderr, "flint: unexpected answer from the jobmanager (%s)\n", rpc_body_name(reply));
            rpc_envelope_free(reply);
            return CLI_FAILED;
        }
        last_ok = time_mono_ms();
        const Flint__Rpc__SavepointStatus *st = reply->savepoint_status;
        if (st->status && strcmp(st->status, "COMPLETED") == 0) {
            int code = CLI_OK;
            if (st->location && st->location[0]) {
                printf("Savepoint completed. Path: %s\n", st->location);
                if (strcmp(c->verb, "savepoint") == 0)
                    printf("You can resume your program from this savepoint with the run command.\n");
            } else {
                fprintf(stderr, "flint %s: the savepoint failed: %s\n", c->verb,
                        st->failure_cause && st->failure_cause[0] ? st->failure_cause : "unknown cause");
                code = CLI_FAILED;
            }
            rpc_envelope_free(reply);
            fflush(stdout);
            return code;
        }
        rpc_envelope_free(reply);
        sleep_ms(FOLLOW_INTERVAL_MS);
    }
}

/* The trigger id of a TriggerSavepoint / StopWithSavepoint answer, or NULL after printing why. */
static char *trigger_answer(cli *c, rpc_envelope *reply) {
    if (!reply) return NULL;
    char *id = NULL;
    if (reply->body_case == FLINT__RPC__ENVELOPE__BODY_ERROR)
        fprintf(stderr, "flint %s: %s\n", c->verb, reply->error->message);
    else if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT_RESPONSE)
        fprintf(stderr, "flint: unexpected answer from the jobmanager (%s)\n", rpc_body_name(reply));
    else
        id = xstrdup(reply->trigger_savepoint_response->trigger_id);
    rpc_envelope_free(reply);
    return id;
}

int cli_savepoint(cli *c) {
    if (c->nargs < 1) return cli_usage_error(c, "missing the job id");
    const char *id = c->args[0];
    if (!is_job_id(id)) return cli_usage_error(c, "'%s' is not a job id (32 hex digits)", id);
    char *dir = c->nargs > 1 ? absolute_path(c->args[1]) : NULL;
    Flint__Rpc__TriggerSavepoint msg = FLINT__RPC__TRIGGER_SAVEPOINT__INIT;
    msg.job_id = (char *)id;
    if (dir) msg.target_directory = dir;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT;
    req.trigger_savepoint = &msg;
    printf("Triggering savepoint for job %s.\n", id);
    fflush(stdout);
    char *trigger = trigger_answer(c, cli_request(c, &req));
    free(dir);
    if (!trigger) return CLI_FAILED;
    printf("Waiting for response...\n");
    fflush(stdout);
    int rc = wait_savepoint(c, id, trigger);
    free(trigger);
    return rc;
}

int cli_stop(cli *c) {
    if (c->nargs < 1) return cli_usage_error(c, "missing the job id");
    const char *id = c->args[0];
    if (!is_job_id(id)) return cli_usage_error(c, "'%s' is not a job id (32 hex digits)", id);
    char *dir = c->stop_dir ? absolute_path(c->stop_dir) : NULL;
    Flint__Rpc__StopWithSavepoint msg = FLINT__RPC__STOP_WITH_SAVEPOINT__INIT;
    msg.job_id = (char *)id;
    if (dir) msg.target_directory = dir;
    msg.drain = c->drain;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_STOP_WITH_SAVEPOINT;
    req.stop_with_savepoint = &msg;
    printf("Suspending job \"%s\" with a savepoint%s.\n", id, c->drain ? " (draining its input first)" : "");
    fflush(stdout);
    char *trigger = trigger_answer(c, cli_request(c, &req));
    free(dir);
    if (!trigger) return CLI_FAILED;
    int rc = wait_savepoint(c, id, trigger);
    free(trigger);
    return rc;
}

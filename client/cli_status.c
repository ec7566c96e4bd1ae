/* What the CLI shows about running jobs (issue 8): `flint status JOBID` (a job and its vertices as a
 * compact table) and the progress of `flint run` while it follows a job: one line updated in
 * place on a terminal, a plain line every few seconds otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define PLAIN_EVERY_MS 5000        /* not a terminal: a progress line this often */
#define NAME_WIDTH 34

/* ---- formatting ------------------------------------------------------------------------------ */

/* 12, 1.2k, 12.3M: a count or rate in little room. */
static void fmt_num(double v, char *buf, size_t len) {
    const char *units = " kMGT";
    int u = 0;
    while (v >= 999.5 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%.0f", v);
    else snprintf(buf, len, v < 9.95 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static void fmt_bytes(int64_t b, char *buf, size_t len) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

/* 45s, 3m 07s, 2h 05m, 3d 04h */
static void fmt_elapsed(int64_t ms, char *buf, size_t len) {
    if (ms < 0) ms = 0;
    int64_t s = ms / 1000;
    if (s < 60) snprintf(buf, len, "%llds", (long long)s);
    else if (s < 3600) snprintf(buf, len, "%lldm %02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400) snprintf(buf, len, "%lldh %02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
    else snprintf(buf, len, "%lldd %02lldh", (long long)(s / 86400), (long long)(s / 3600 % 24));
}

static void fmt_time(int64_t wall_ms, char *buf, size_t len) {
    if (wall_ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_watermark(int64_t wm, char *buf, size_t len) {
    if (wm == INT64_MIN || wm <= -9000000000000000000LL) {
        snprintf(buf, len, "-");
        return;
    }
    if (wm >= 9000000000000000000LL) {
        snprintf(buf, len, "end");
        return;
    }
    time_t t = (time_t)(wm / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%H:%M:%S", &tm);
}

static const char *bp_level(int64_t ms) { return ms <= 100 ? "OK" : ms <= 500 ? "LOW" : "HIGH"; }

/* The checkpoint part of a summary: "chk #5 3s ago (1.2 MiB, 35 ms)", or "no checkpoint". */
static void fmt_checkpoint(const Flint__Rpc__JobDetails *d, char *buf, size_t len) {
    if (d->last_checkpoint_id <= 0) {
        if (d->failed_checkpoints > 0) snprintf(buf, len, "no checkpoint (%lld failed)", (long long)d->failed_checkpoints);
        else snprintf(buf, len, "no checkpoint");
        return;
    }
    char ago[32], size[32];
    fmt_elapsed(time_wall_ms() - d->last_checkpoint_timestamp, ago, sizeof ago);
    fmt_bytes(d->last_checkpoint_size, size, sizeof size);
    snprintf(buf, len, "chk #%lld %s ago (%s, %lld ms)", (long long)d->last_checkpoint_id, ago, size,
             (long long)d->last_checkpoint_duration);
}

static int64_t job_elapsed(const Flint__Rpc__JobDetails *d) {
    if (d->start_time <= 0) return 0;
    return (d->end_time > 0 ? d->end_time : time_wall_ms()) - d->start_time;
}

/* "RUNNING  1m 05s  in 12.3k rec/s  out 12.1k rec/s  chk #5 3s ago (1.2 MiB, 35 ms)" */
static void progress_text(const Flint__Rpc__JobDetails *d, char *buf, size_t len) {
    char el[32], in[32], out[32], cp[128];
    fmt_elapsed(job_elapsed(d), el, sizeof el);
    fmt_num(d->records_in_per_second, in, sizeof in);
    fmt_num(d->records_out_per_second, out, sizeof out);
    fmt_checkpoint(d, cp, sizeof cp);
    snprintf(buf, len, "%-10.16s %8s  in %6.16s rec/s  out %6.16s rec/s  %.120s", d->state ? d->state : "?", el, in, out, cp);
}

/* ---- progress of flint run -------------------------------------------------------------------------- */

void cli_progress_init(cli_progress *p) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDOUT_FILENO) == 1;
    p->last_plain_ms = time_mono_ms();
}

void cli_progress_clear(cli_progress *p) {
    if (p->tty && p->shown) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        p->shown = false;
    }
}

void cli_progress_update(cli_progress *p, const Flint__Rpc__JobDetails *d) {
    char line[256];
    if (!d->state || strcmp(d->state, "RUNNING") != 0) return;
    progress_text(d, line, sizeof line);
    if (p->tty) {
        fprintf(stdout, "\r\033[K%s", line);
        fflush(stdout);
        p->shown = true;
    } else if (time_mono_ms() - p->last_plain_ms >= PLAIN_EVERY_MS) {
        p->last_plain_ms = time_mono_ms();
        fprintf(stdout, "%s\n", line);
        fflush(stdout);
    }
}

/* ---- flint status --------------------------------------------------------------------------------- */

static bool is_job_id(const char *s) {
    if (strlen(s) != 32) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))) return false;
    return true;
}

/* "Source: lines -> Map" cut to width with "..." */
static void cut(const char *s, char *buf, size_t width) {
    size_t n = strlen(s ? s : "");
    if (n <= width) snprintf(buf, width + 1, "%s", s ? s : "");
    else snprintf(buf, width + 1, "%.*s...", (int)(width - 3), s);
}

int cli_status(cli *c) {
    if (c->nargs < 1) return cli_usage_error(c, "missing the job id");
    const char *id = c->args[0];
    if (!is_job_id(id)) return cli_usage_error(c, "'%s' is not a job id (32 hex digits)", id);
    Flint__Rpc__GetJob msg = FLINT__RPC__GET_JOB__INIT;
    msg.job_id = (char *)id;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_GET_JOB;
    req.get_job = &msg;
    rpc_envelope *reply = cli_request(c, &req);
    if (!reply) return CLI_FAILED;
    if (reply->body_case == FLINT__RPC__ENVELOPE__BODY_ERROR) {
        fprintf(stderr, "flint status: %s\n", reply->error->message);
        rpc_envelope_free(reply);
        return CLI_FAILED;
    }
    if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_JOB_DETAILS) {
        fprintf(stderr, "flint: unexpected answer from the jobmanager (%s)\n", rpc_body_name(reply));
        rpc_envelope_free(reply);
        return CLI_FAILED;
    }
    const Flint__Rpc__JobDetails *d = reply->job_details;
    char started[32], el[32], in[32], out[32], tin[32], tout[32], cp[128];
    fmt_time(d->start_time, started, sizeof started);
    fmt_elapsed(job_elapsed(d), el, sizeof el);
    fmt_num(d->records_in_per_second, in, sizeof in);
    fmt_num(d->records_out_per_second, out, sizeof out);
    fmt_num((double)d->records_in, tin, sizeof tin);
    fmt_num((double)d->records_out, tout, sizeof tout);
    fmt_checkpoint(d, cp, sizeof cp);
    printf("Job          %s (%s)\n", d->name ? d->name : "", d->job_id ? d->job_id : id);
    printf("State        %s, %s since %s\n", d->state ? d->state : "?", el, started);
    printf("Records      in %s/s (%s total), out %s/s (%s total)\n", in, tin, out, tout);
    printf("Checkpoints  %lld completed, %lld failed; %s\n", (long long)d->completed_checkpoints,
           (long long)d->failed_checkpoints, d->last_checkpoint_id > 0 ? cp : "none completed");
    printf("Restarts     %d\n", d->num_restarts);
    if (d->root_exception && d->root_exception->exception && d->root_exception->exception[0]) {
        char first[200];
        snprintf(first, sizeof first, "%s", d->root_exception->exception);
        char *nl = strchr(first, '\n');
        if (nl) *nl = '\0';
        printf("Exception    %s\n", first);
    }
    printf("\n%-*s %4s  %-12s %11s %11s %8s %8s  %-12s %5s  %s\n", NAME_WIDTH, "VERTEX", "PAR", "STATUS",
           "RECORDS IN", "RECORDS OUT", "IN/S", "OUT/S", "BACKPRESSURE", "BUSY", "WATERMARK");
    for (size_t i = 0; i < d->n_vertices; i++) {
        const Flint__Rpc__VertexStatus *v = d->vertices[i];
        char name[NAME_WIDTH + 1], ri[32], ro[32], rin[32], rout[32], bp[32], busy[24], wm[32];
        cut(v->name, name, NAME_WIDTH);
        fmt_num((double)v->read_records, ri, sizeof ri);
        fmt_num((double)v->write_records, ro, sizeof ro);
        fmt_num(v->records_in_per_second, rin, sizeof rin);
        fmt_num(v->records_out_per_second, rout, sizeof rout);
        bool running = v->status && strcmp(v->status, "RUNNING") == 0;
        if (running)
            snprintf(bp, sizeof bp, "%s %3lld%%", bp_level(v->back_pressured_ms_per_second),
                     (long long)(v->back_pressured_ms_per_second / 10));
        else
            snprintf(bp, sizeof bp, "-");
        if (running) snprintf(busy, sizeof busy, "%lld%%", (long long)(v->busy_ms_per_second / 10));
        else snprintf(busy, sizeof busy, "-");
        fmt_watermark(v->watermark, wm, sizeof wm);
        printf("%-*s %4d  %-12s %11s %11s %8s %8s  %-12s %5s  %s\n", NAME_WIDTH, name, v->parallelism,
               v->status ? v->status : "?", ri, ro, rin, rout, bp, busy, wm);
    }
    rpc_envelope_free(reply);
    return CLI_OK;
}

/* ---- flint list ----------------------------------------------------------------------------------- */

int cli_list_table(const Flint__Rpc__ListJobsResponse *l) {
    if (l->n_jobs == 0) {
        printf("No running jobs.\nNo scheduled jobs.\n");
        return CLI_OK;
    }
    printf("%-32s  %-24s  %-11s  %-19s  %9s  %s\n", "JOB ID", "NAME", "STATE", "START TIME", "DURATION", "TASKS");
    for (size_t i = 0; i < l->n_jobs; i++) {
        const Flint__Rpc__JobSummary *j = l->jobs[i];
        char name[25], when[32], dur[32], tasks[32];
        cut(j->name, name, 24);
        fmt_time(j->start_time, when, sizeof when);
        fmt_elapsed(j->duration, dur, sizeof dur);
        if (j->tasks_total > 0) snprintf(tasks, sizeof tasks, "%d/%d running", j->tasks_running, j->tasks_total);
        else snprintf(tasks, sizeof tasks, "-");
        printf("%-32s  %-24s  %-11s  %-19s  %9s  %s\n", j->job_id, name, j->state, when, dur, tasks);
    }
    return CLI_OK;
}

/* Verbs about the cluster itself: overview, list, config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"


static void format_bytes(int64_t b, char *buf, size_t len) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

int cli_overview(cli *c) {
    Flint__Rpc__OverviewRequest msg = FLINT__RPC__OVERVIEW_REQUEST__INIT;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_OVERVIEW_REQUEST;
    req.overview_request = &msg;
    rpc_envelope *reply = cli_request(c, &req);
    if (!reply) return CLI_FAILED;
    if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_OVERVIEW_RESPONSE) {
        fprintf(stderr, "flint: unexpected answer from the jobmanager (%s)\n", rpc_body_name(reply));
        rpc_envelope_free(reply);
        return CLI_FAILED;
    }
    Flint__Rpc__OverviewResponse *o = reply->overview_response;
    printf("Flint %s\n", o->flint_version);
    printf("Taskmanagers: %zu    Slots: %u total, %u available\n", o->n_taskmanagers, o->slots_total,
           o->slots_available);
    printf("Jobs: %u running, %u finished, %u cancelled, %u failed\n", o->jobs_running,
           o->jobs_finished, o->jobs_cancelled, o->jobs_failed);
    if (o->n_taskmanagers) {
        printf("\n%-40s %-22s %5s %5s %6s %10s %10s\n", "TASKMANAGER", "ADDRESS", "SLOTS", "FREE",
               "CORES", "MEMORY", "HEARTBEAT");
        for (size_t i = 0; i < o->n_taskmanagers; i++) {
            Flint__Rpc__TaskManagerInfo *t = o->taskmanagers[i];
            char addr[300], mem[32], hb[32];
            snprintf(addr, sizeof addr, "%s:%u", t->host, t->data_port);
            format_bytes(t->hardware ? t->hardware->physical_memory : 0, mem, sizeof mem);
            snprintf(hb, sizeof hb, "%.1f s ago", (double)t->time_since_last_heartbeat / 1000.0);
            printf("%-40s %-22s %5u %5u %6d %10s %10s\n", t->resource_id, addr, t->slots_number,
                   t->free_slots, t->hardware ? t->hardware->cpu_cores : 0, mem, hb);
        }
    }
    rpc_envelope_free(reply);
    return CLI_OK;
}

int cli_list(cli *c) {
    Flint__Rpc__ListJobsRequest msg = FLINT__RPC__LIST_JOBS_REQUEST__INIT;
    rpc_envelope req = FLINT__RPC__ENVELOPE__INIT;
    req.body_case = FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_REQUEST;
    req.list_jobs_request = &msg;
    rpc_envelope *reply = cli_request(c, &req);
    if (!reply) return CLI_FAILED;
    if (reply->body_case != FLINT__RPC__ENVELOPE__BODY_LIST_JOBS_RESPONSE) {
        fprintf(stderr, "flint: unexpected answer from the jobmanager (%s)\n", rpc_body_name(reply));
        rpc_envelope_free(reply);
        return CLI_FAILED;
    }
    cli_list_table(reply->list_jobs_response);
    rpc_envelope_free(reply);
    return CLI_OK;
}

static void print_entry(const char *key, const char *value, void *ud) {
    (void)ud;
    printf("%s: %s\n", key, value);
}

int cli_config(cli *c) {
    if (c->nargs == 0) {
        config_foreach_set(c->cfg, print_entry, NULL);
        return CLI_OK;
    }
    int rc = CLI_OK;
    for (int i = 0; i < c->nargs; i++) {
        const char *v = config_get(c->cfg, c->args[i]);
        if (!v) {
            fprintf(stderr, "flint config: unknown key '%s'\n", c->args[i]);
            rc = CLI_FAILED;
            continue;
        }
        printf("%s\n", v);
    }
    return rc;
}

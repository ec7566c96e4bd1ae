/* flint-jobmanager: the cluster's coordinator (see jm_server.h). */
#include <stdio.h>

#define LOG_MODULE "main"
#include "config/options.h"
#include "jm_server.h"
#include "util/log.h"

int main(int argc, char **argv) {
    int code;
    flint_config *cfg = options_daemon_init("flint-jobmanager", "jobmanager", argc, argv, &code);
    if (!cfg) return code;
    struct event_base *base = event_base_new();
    jobmanager jm;
    flint_err err = {0};
    if (jm_start(&jm, cfg, base, &err)) {
        log_error("cannot start: %s", err.msg);
        fprintf(stderr, "flint-jobmanager: %s\n", err.msg);
        event_base_free(base);
        return 1;
    }
    options_daemon_run(base);
    jm_stop(&jm);
    event_base_free(base);
    log_info("stopped");
    log_shutdown();
    return 0;
}

/* flint-taskmanager: runs the subtasks the jobmanager deploys into its slots (see tm_executor.h). */
#include <event2/thread.h>
#include <stdio.h>

#define LOG_MODULE "main"
#include "config/options.h"
#include "tm_executor.h"
#include "util/log.h"

int main(int argc, char **argv) {
    int code;
    flint_config *cfg = options_daemon_init("flint-taskmanager", "taskmanager", argc, argv, &code);
    if (!cfg) return code;
    /* Task threads wake the executor's loop (event_active): the base must be thread-aware. */
    evthread_use_pthreads();
    /* The print sink writes whole lines to stdout, which the scripts send to the .out file:
     * line buffering makes each line reach it at once, complete. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct event_base *base = event_base_new();
    taskmanager tm;
    flint_err err = {0};
    if (tm_start(&tm, cfg, base, &err)) {
        log_error("cannot start: %s", err.msg);
        fprintf(stderr, "flint-taskmanager: %s\n", err.msg);
        event_base_free(base);
        return 1;
    }
    options_daemon_run(base);
    tm_stop(&tm);
    event_base_free(base);
    log_info("stopped");
    log_shutdown();
    return 0;
}

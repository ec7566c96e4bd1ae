#!/usr/bin/env bash
# Start or stop a taskmanager daemon on this host (Flink's bin/taskmanager.sh).
#   taskmanager.sh start [-D key=value]...             in the background: log and .out in the log dir,
#                                                      pid in $FLINT_PID_DIR/flint-$USER-taskmanager.pid
#   taskmanager.sh start-foreground [-D key=value]...  in this terminal, logging to stderr
#   taskmanager.sh stop | stop-all                     the newest instance | every instance
# Several instances may run on one host; each gets its own index n in its log file name.
# Arguments after the verb go to flint-taskmanager. See docs/operations.md.
set -euo pipefail
# shellcheck source=scripts/config.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/config.sh"

flint_daemon_main taskmanager "$@"

#!/usr/bin/env bash
# Start or stop the jobmanager daemon on this host (Flink's bin/jobmanager.sh).
#   jobmanager.sh start [-D key=value]...             in the background: log and .out in the log dir,
#                                                     pid in $FLINT_PID_DIR/flint-$USER-jobmanager.pid
#   jobmanager.sh start-foreground [-D key=value]...  in this terminal, logging to stderr
#   jobmanager.sh stop | stop-all                     the newest instance | every instance
# Arguments after the verb go to flint-jobmanager. See docs/operations.md.
set -euo pipefail
# shellcheck source=scripts/config.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/config.sh"

flint_daemon_main jobmanager "$@"

#!/usr/bin/env bash
# A local Kafka-protocol cluster for demos and tests: build/bin/flint-kafka-local (librdkafka's
# mock cluster on loopback) in the background, with a pid file. See docs/connectors.md.
#
#   kafka-local.sh start [--brokers N] [--topic NAME:PARTITIONS]...   prints the bootstrap servers
#   kafka-local.sh stop                                                SIGTERM (SIGKILL after the timeout)
#   kafka-local.sh status                                              running or not, and its servers
#   kafka-local.sh bootstrap                                           the bootstrap servers
#   kafka-local.sh ctl COMMAND...                                      a control command, e.g. "down 2",
#                                                                      "up 2", "topic new:4"; prints the answer
#
# Files: $FLINT_PID_DIR/flint-$USER-kafka-local.pid (pid directory as the daemons': env.pid.dir,
# default /tmp), .ctl next to it (the control FIFO), and flint-$USER-kafka-local.out (stdout: the
# bootstrap servers on the first line, then the answers to commands) and .log (stderr) in the log
# directory. The data lives in memory: stop loses it.
set -euo pipefail
# shellcheck source=scripts/config.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/config.sh"

usage() {
    sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
verb=$1
shift

BIN=$(flint_require_binary flint-kafka-local) || exit 1
# The pid and log directories as the daemons use them; without a readable configuration (or the
# client), the defaults.
if [ -d "$FLINT_CONF_DIR" ] && [ -x "$FLINT_BIN_DIR/flint" ] && (flint_resolve_dirs) >/dev/null 2>&1; then
    flint_resolve_dirs
else
    FLINT_PID_DIR_EFFECTIVE=${FLINT_PID_DIR:-/tmp}
    FLINT_LOG_DIR_EFFECTIVE=${FLINT_LOG_DIR:-$FLINT_HOME/log}
fi
PID_FILE=$FLINT_PID_DIR_EFFECTIVE/flint-$FLINT_IDENT_STRING-kafka-local.pid
CTL=$FLINT_PID_DIR_EFFECTIVE/flint-$FLINT_IDENT_STRING-kafka-local.ctl
OUT=$FLINT_LOG_DIR_EFFECTIVE/flint-$FLINT_IDENT_STRING-kafka-local.out
LOG=$FLINT_LOG_DIR_EFFECTIVE/flint-$FLINT_IDENT_STRING-kafka-local.log

# The pid of the running cluster (a live flint-kafka-local), or nothing.
running_pid() {
    local pid
    [ -f "$PID_FILE" ] || return 0
    pid=$(tr -cd '0-9' <"$PID_FILE")
    flint_pid_is_daemon "$pid" kafka-local && echo "$pid"
    return 0
}

bootstrap() { head -n 1 "$OUT" 2>/dev/null; }

case $verb in
    start)
        pid=$(running_pid)
        [ -z "$pid" ] || flint_die "already running (pid $pid) at $(bootstrap); stop it first"
        mkdir -p "$FLINT_PID_DIR_EFFECTIVE" "$FLINT_LOG_DIR_EFFECTIVE"
        rm -f "$CTL"
        flint_rotate "$OUT"
        flint_rotate "$LOG"
        nohup "$BIN" --control "$CTL" "$@" >"$OUT" 2>"$LOG" </dev/null &
        pid=$!
        echo "$pid" >"$PID_FILE"
        # Wait for its first line (the bootstrap servers), or its exit.
        for _ in $(seq 1 100); do
            line=$(bootstrap)
            if [[ $line == *:* ]]; then
                echo "$line"
                exit 0
            fi
            flint_pid_alive "$pid" || break
            sleep 0.05
        done
        rm -f "$PID_FILE"
        kill "$pid" 2>/dev/null || true
        flint_die "flint-kafka-local did not start: $(tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' ')"
        ;;
    stop)
        pid=$(running_pid)
        if [ -z "$pid" ]; then
            echo "no flint-kafka-local to stop"
            rm -f "$PID_FILE"
            exit 0
        fi
        kill -TERM "$pid"
        for _ in $(seq 1 $((FLINT_STOP_TIMEOUT * 10))); do
            flint_pid_alive "$pid" || break
            sleep 0.1
        done
        flint_pid_alive "$pid" && kill -KILL "$pid"
        rm -f "$PID_FILE" "$CTL"
        echo "stopped flint-kafka-local (pid $pid)"
        ;;
    status)
        pid=$(running_pid)
        if [ -n "$pid" ]; then
            echo "running (pid $pid): $(bootstrap)"
        else
            echo "not running"
            exit 1
        fi
        ;;
    bootstrap)
        [ -n "$(running_pid)" ] || flint_die "not running"
        bootstrap
        ;;
    ctl)
        [ $# -ge 1 ] || usage
        [ -n "$(running_pid)" ] || flint_die "not running"
        lines=$(wc -l <"$OUT")
        printf '%s\n' "$*" >"$CTL"
        # The answer is the next "ok ..." or "error: ..." line of its output.
        for _ in $(seq 1 50); do
            answer=$(tail -n +"$((lines + 1))" "$OUT" | grep -m1 -E '^(ok|error:)' || true)
            if [ -n "$answer" ]; then
                echo "$answer"
                [[ $answer == ok* ]]
                exit
            fi
            sleep 0.05
        done
        flint_die "no answer to '$*'"
        ;;
    *) usage ;;
esac

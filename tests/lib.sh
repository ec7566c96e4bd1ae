#!/usr/bin/env bash
# Shared helpers of the cluster and system tests (sourced): a temp dir per test, free ports, a
# conf dir, daemons started in the background with short heartbeats, bounded waits, REST/JSON
# getters, PASS/FAIL reporting, and a cleanup that kills every process the test started (on
# success, failure, Ctrl-C or a timeout's SIGTERM) and keeps the daemons' logs of a failed test
# in build/test-logs/<test>.d/ (of every test with FLINT_TEST_KEEP=1).
#
# A test prints one line per case: "PASS <name>" or "FAIL <name>: <reason>" (tests/run.sh counts
# them) and ends with `finish`.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BIN_DIR=$ROOT/build/bin
FREEPORT=$ROOT/build/tests/freeport
TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/flint-$TEST_NAME.XXXXXX")
TEST_LOG_KEEP=$ROOT/build/test-logs/$TEST_NAME.d
FAILURES=0
CONF_DIR=$TEST_TMP/conf

# Short timings so that losses and re-registrations happen within a second or two.
HB_INTERVAL_MS=200
HB_TIMEOUT_MS=1500
HB_ARGS=(-D "heartbeat.interval=${HB_INTERVAL_MS}ms" -D "heartbeat.timeout=${HB_TIMEOUT_MS}ms"
         -D cluster.registration.initial-timeout=50ms -D cluster.registration.max-timeout=500ms)

declare -A DAEMON_PID=()      # name -> pid of daemons started with start_jm / start_tm
_PIDS=()                      # every background process this test started
_CLEANUP_HOOKS=()             # extra commands run by cleanup (before the pids are killed)

# ---- reporting ----------------------------------------------------------------------------

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1: $2"
    FAILURES=$((FAILURES + 1))
}
# check NAME REASON CMD...: PASS when CMD succeeds, else FAIL with REASON.
check() {
    local name=$1 reason=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$reason"; fi
}
# abort NAME REASON: FAIL and stop the test (the remaining cases cannot run).
abort() {
    fail "$1" "$2"
    exit 1
}
finish() {
    [ "$FAILURES" -eq 0 ]
    exit $?
}

# ---- time and waiting ---------------------------------------------------------------------

now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/}
    echo $((t / 1000))
}

# wait_until TIMEOUT_SECONDS CMD...: run CMD every 0.1 s until it succeeds (0) or the time is up
# (1). TIMEOUT may be fractional ("1.5").
wait_until() {
    local timeout=$1 deadline
    shift
    deadline=$(($(now_ms) + $(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')))
    while :; do
        "$@" && return 0
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# ---- processes ----------------------------------------------------------------------------

# alive PID: the process exists and has not exited (a zombie counts as exited).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}
dead() { ! alive "$1"; }

# wait_exit PID TIMEOUT: wait for a child of this shell to exit and set EXIT_STATUS to its exit
# status. Returns 1 (EXIT_STATUS=running) when it still runs after TIMEOUT seconds.
# (Not for $(...): a subshell cannot wait for this shell's children.)
EXIT_STATUS=""
wait_exit() {
    local pid=$1
    EXIT_STATUS=running
    wait_until "$2" dead "$pid" || return 1
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
    return 0
}

# track PID: kill PID in cleanup (for processes started by hand).
track() { _PIDS+=("$1"); }
# on_cleanup CMD: run the command string CMD (eval) during cleanup.
on_cleanup() { _CLEANUP_HOOKS+=("$1"); }

# test_daemon_pids: live flint daemons whose arguments name a path in this test's temp dir.
test_daemon_pids() {
    local f pid argv0 args
    for f in /proc/[0-9]*/cmdline; do
        IFS= read -r -d '' argv0 <"$f" 2>/dev/null || continue
        case $argv0 in
            *flint-jobmanager | *flint-taskmanager) ;;
            *) continue ;;
        esac
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        args=$(tr '\0' '\n' <"$f" 2>/dev/null) || continue
        grep -qF -- "$TEST_TMP/" <<<"$args" && alive "$pid" && echo "$pid"
    done
}

# start_daemon TYPE NAME ARG...: start flint-TYPE in the background with the test's conf dir,
# logging to $TEST_TMP/NAME.log (stdout and stderr to NAME.out); DAEMON_PID[NAME] is its pid.
start_daemon() {
    local type=$1 name=$2
    shift 2
    "$BIN_DIR/flint-$type" --config-dir "$CONF_DIR" --log-file "$TEST_TMP/$name.log" \
        "${HB_ARGS[@]}" "$@" >>"$TEST_TMP/$name.out" 2>&1 </dev/null &
    DAEMON_PID[$name]=$!
    _PIDS+=($!)
}
start_jm() { start_daemon jobmanager "$@"; }
start_tm() { start_daemon taskmanager "$@"; }
pid_of() { echo "${DAEMON_PID[$1]}"; }

# stop_daemon NAME: SIGTERM (SIGKILL after 10 s); sets EXIT_STATUS ("killed" if it needed SIGKILL).
stop_daemon() {
    local pid=${DAEMON_PID[$1]}
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    if ! wait_exit "$pid" 10; then
        kill -KILL "$pid" 2>/dev/null
        wait_exit "$pid" 5
        # shellcheck disable=SC2034  # read by the tests
        EXIT_STATUS=killed
    fi
}

# log_tail NAME: the last lines of a daemon's log and .out, for failure messages.
log_tail() {
    tail -n 3 "$TEST_TMP/$1.log" "$TEST_TMP/$1.out" 2>/dev/null | tr '\n' ' ' | cut -c1-400
}

_cleanup() {
    local rc=$? pid hook left=()
    trap - EXIT INT TERM
    for hook in "${_CLEANUP_HOOKS[@]}"; do
        eval "$hook" || true
    done
    # Daemons started through the scripts are not this shell's children: find them by the
    # test's temp dir on their command line (--config-dir, --log-file), wherever they came from.
    mapfile -t -O "${#_PIDS[@]}" _PIDS < <(test_daemon_pids)
    for pid in "${_PIDS[@]}"; do
        if alive "$pid"; then
            kill -CONT "$pid" 2>/dev/null
            kill -TERM "$pid" 2>/dev/null
            left+=("$pid")
        fi
    done
    for pid in "${left[@]}"; do
        wait_until 5 dead "$pid" || kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    if [ "$FAILURES" -gt 0 ] || [ "$rc" -ne 0 ] || [ -n "${FLINT_TEST_KEEP:-}" ]; then
        rm -rf "$TEST_LOG_KEEP"
        mkdir -p "$TEST_LOG_KEEP"
        (cd "$TEST_TMP" && find . \( -name '*.log*' -o -name '*.out*' -o -name '*.yaml' -o -name '*.txt' \) \
            -type f -exec cp --parents {} "$TEST_LOG_KEEP/" \;) 2>/dev/null
        echo "(daemon logs of $TEST_NAME kept in ${TEST_LOG_KEEP#"$ROOT"/})"
    fi
    rm -rf "$TEST_TMP"
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- setup --------------------------------------------------------------------------------

# require_built: the programs and test tools exist (freeport is built when missing).
require_built() {
    local b
    for b in flint-jobmanager flint-taskmanager flint; do
        [ -x "$BIN_DIR/$b" ] || abort setup "$BIN_DIR/$b is missing: run make"
    done
    if [ ! -x "$FREEPORT" ]; then
        make -C "$ROOT" --no-print-directory build/tests/freeport >/dev/null 2>&1 ||
            abort setup "build/tests/freeport is missing and could not be built"
    fi
    command -v curl >/dev/null || abort setup "curl is not installed (scripts/install-deps.sh)"
    command -v jq >/dev/null || abort setup "jq is not installed (scripts/install-deps.sh)"
}

# free_ports N: N distinct free loopback ports, one per line.
free_ports() { "$FREEPORT" "$1"; }

# write_conf DIR KEY=VALUE...: DIR/flint.yaml with one "key: value" line per argument.
write_conf() {
    local dir=$1 kv
    shift
    mkdir -p "$dir"
    : >"$dir/flint.yaml"
    for kv in "$@"; do
        printf '%s: %s\n' "${kv%%=*}" "${kv#*=}" >>"$dir/flint.yaml"
    done
}

# start_local_cluster N KEY=VALUE...: a jobmanager "jm" on free loopback ports (sets RPC_PORT,
# REST_PORT and REST_BASE) and taskmanagers "tm1".."tmN", configured with the given keys besides
# the addresses and ports; passes cluster_up, or aborts the test when they do not come up.
start_local_cluster() {
    local n=$1 i
    shift
    read -r RPC_PORT REST_PORT <<<"$(free_ports 2 | tr '\n' ' ')"
    REST_BASE=http://127.0.0.1:$REST_PORT
    write_conf "$CONF_DIR" jobmanager.rpc.address=127.0.0.1 "jobmanager.rpc.port=$RPC_PORT" \
        rest.address=127.0.0.1 "rest.port=$REST_PORT" "$@"
    start_jm jm
    wait_until 10 rest_up || abort cluster_up "no REST answer within 10 s: $(log_tail jm)"
    for ((i = 1; i <= n; i++)); do start_tm "tm$i"; done
    wait_until 10 tm_count_is "$n" ||
        abort cluster_up "$(overview taskmanagers) of $n taskmanagers after 10 s: $(log_tail tm1)"
    pass cluster_up
}

# start_kafka_local ARG...: the local Kafka-protocol cluster (build/bin/flint-kafka-local ARG...)
# on loopback, stopped with the test, its first output line (the bootstrap servers) and later ones
# in $TEST_TMP/kafka.out, its log in kafka.log; sets B (the bootstrap servers) and KCAT (kcat
# against it). Aborts the test when the tool or kcat is missing or no servers are printed.
start_kafka_local() {
    local tool=$BIN_DIR/flint-kafka-local
    [ -x "$tool" ] || abort setup "$tool is missing: run make"
    command -v kcat >/dev/null || abort setup "kcat is not installed (scripts/install-deps.sh)"
    "$tool" "$@" >"$TEST_TMP/kafka.out" 2>"$TEST_TMP/kafka.log" </dev/null &
    track $!
    wait_until 10 kafka_servers_printed ||
        abort kafka_local_up "no bootstrap servers printed: $(cat "$TEST_TMP/kafka.log")"
    B=$(head -n 1 "$TEST_TMP/kafka.out")
    # shellcheck disable=SC2034  # for the test that sourced this file
    KCAT=(kcat -b "$B" -X log_level=0)
}
kafka_servers_printed() { [[ $(head -n 1 "$TEST_TMP/kafka.out" 2>/dev/null) == *:* ]]; }

# set_conf_key FILE KEY VALUE: replace the uncommented "KEY:" line of a flint.yaml, or append it.
set_conf_key() {
    local file=$1 key=$2 value=$3 tmp
    tmp=$file.tmp
    if grep -q "^$key:" "$file"; then
        awk -v k="$key" -v v="$value" 'index($0, k ":") == 1 { print k ": " v; next } { print }' \
            "$file" >"$tmp" && mv "$tmp" "$file"
    else
        printf '%s: %s\n' "$key" "$value" >>"$file"
    fi
}

# ---- REST ---------------------------------------------------------------------------------

REST_BASE=""   # set by each test: http://127.0.0.1:<rest.port>

rest_get() { curl -sS --max-time 3 "$REST_BASE$1" 2>/dev/null; }
# rest_json PATH JQ: the jq result (raw) of GET PATH; empty when the request failed.
rest_json() { rest_get "$1" | jq -r "$2" 2>/dev/null; }
# http_code [CURL_ARG...] PATH: the status code of a request.
http_code() {
    local path=${!#}
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${@:1:$#-1}" "$REST_BASE$path" 2>/dev/null
}
overview() { rest_json /overview ".\"$1\""; }
# tm_count_is N: /overview answers with "taskmanagers": N.
tm_count_is() { [ "$(overview taskmanagers)" = "$1" ]; }
rest_up() { [ -n "$(overview taskmanagers)" ]; }

# send_bytes HOST PORT: send stdin to HOST:PORT over TCP and close (errors ignored; 10 s max).
send_bytes() {
    # shellcheck disable=SC2016  # $0 and $1 are the inner shell's
    timeout 10 bash -c 'cat >"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
    return 0
}

# no_crash_reports: no sanitizer report or crash marker in any log or .out of this test.
no_crash_reports() {
    ! grep -rlE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Segmentation fault|core dumped' \
        "$TEST_TMP" --include='*.log*' --include='*.out*' >/dev/null 2>&1
}

# ---- daemons started through the scripts ----------------------------------------------------

# pidfile_pids DIR: the pids listed in the *.pid files under DIR, one per line.
pidfile_pids() {
    find "$1" -name '*.pid' -type f -exec cat {} + 2>/dev/null | tr -cs '0-9' '\n' | sed '/^$/d'
}

# is_flint_daemon PID: a live flint-jobmanager or flint-taskmanager process.
is_flint_daemon() {
    alive "$1" && ps -p "$1" -o args= 2>/dev/null | grep -qE 'flint-(jobmanager|taskmanager)'
}

# kill_pidfile_daemons DIR: kill every live flint daemon listed in a pid file under DIR (the
# cleanup of tests that start daemons through the scripts, which are not this shell's children).
kill_pidfile_daemons() {
    local pid left=()
    for pid in $(pidfile_pids "$1"); do
        if is_flint_daemon "$pid"; then
            kill -CONT "$pid" 2>/dev/null
            kill -TERM "$pid" 2>/dev/null
            left+=("$pid")
        fi
    done
    for pid in "${left[@]}"; do
        wait_until 5 dead "$pid" || kill -KILL "$pid" 2>/dev/null
    done
}

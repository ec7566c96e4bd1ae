#!/usr/bin/env bash
# scripts/start-cluster.sh and stop-cluster.sh on this host, with a copy of the shipped conf/
# (two "localhost" workers, free ports, pid and log dirs in the test's temp dir): the cluster
# comes up with two taskmanagers, log and .out files and pid files are where they belong, and
# stop-cluster.sh leaves no daemon and no pid file. Also: the shipped conf files are valid, and a
# broken flint.yaml stops start-cluster.sh before anything starts.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built

IDENT=${USER:-$(id -un)}
HOST=${HOSTNAME:-$(uname -n)}
PID_DIR=$TEST_TMP/pid
LOG_DIR=$TEST_TMP/log
# shellcheck disable=SC2016  # expanded at cleanup
on_cleanup 'kill_pidfile_daemons "$TEST_TMP"'

# ---- the shipped conf ----
mapfile -t KEYS < <(sed -nE 's/^#?([a-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)+):( .*)?$/\1/p' "$ROOT/conf/flint.yaml")
err=$("$BIN_DIR/flint" config --config-dir "$ROOT/conf" "${KEYS[@]}" 2>&1 >/dev/null)
rc=$?
if [ "${#KEYS[@]}" -ge 10 ] && [ "$rc" -eq 0 ] && [ -z "$err" ]; then
    pass shipped_conf_valid
else
    fail shipped_conf_valid "conf/flint.yaml names ${#KEYS[@]} keys; flint config on them exited $rc: $err"
fi
out=$("$BIN_DIR/flint" config --config-dir "$ROOT/conf" jobmanager.rpc.port rest.port taskmanager.numberOfTaskSlots 2>&1 | tr '\n' ' ')
check shipped_conf_defaults "conf/flint.yaml gives '$out', expected '6123 8081 1 '" test "$out" = "6123 8081 1 "
check shipped_masters_workers "conf/masters must be 'localhost:8081' and conf/workers 'localhost'" \
    test "$(grep -v '^#' "$ROOT/conf/masters" | sed '/^$/d')" = localhost:8081 -a \
         "$(grep -v '^#' "$ROOT/conf/workers" | sed '/^$/d')" = localhost

# ---- a cluster conf: the shipped files with free ports and short heartbeats ----
read -r RPC_PORT REST_PORT <<<"$(free_ports 2 | tr '\n' ' ')"
REST_BASE=http://localhost:$REST_PORT
mkdir -p "$CONF_DIR"
cp "$ROOT/conf/flint.yaml" "$CONF_DIR/"
set_conf_key "$CONF_DIR/flint.yaml" jobmanager.rpc.port "$RPC_PORT"
set_conf_key "$CONF_DIR/flint.yaml" rest.port "$REST_PORT"
set_conf_key "$CONF_DIR/flint.yaml" heartbeat.interval "200 ms"
set_conf_key "$CONF_DIR/flint.yaml" heartbeat.timeout "1500 ms"
set_conf_key "$CONF_DIR/flint.yaml" cluster.registration.max-timeout "500 ms"
printf 'localhost:%s\n' "$REST_PORT" >"$CONF_DIR/masters"
printf '# two taskmanagers on this host\nlocalhost\n\nlocalhost   # the second\n' >"$CONF_DIR/workers"
export FLINT_CONF_DIR=$CONF_DIR FLINT_PID_DIR=$PID_DIR FLINT_LOG_DIR=$LOG_DIR FLINT_STOP_TIMEOUT=10

out=$("$ROOT/scripts/start-cluster.sh" 2>&1)
rc=$?
echo "$out" >"$TEST_TMP/start-cluster.txt"
check start_cluster_rc "start-cluster.sh exited $rc: $out" test "$rc" -eq 0
if [ "$(grep -c "^Starting taskmanager daemon on host $HOST\.$" <<<"$out")" = 2 ] &&
   grep -q "^Starting jobmanager daemon on host $HOST\.$" <<<"$out"; then
    pass start_cluster_output
else
    fail start_cluster_output "expected 'Starting jobmanager daemon on host $HOST.' and twice 'Starting taskmanager daemon on host $HOST.': $out"
fi

if wait_until 10 tm_count_is 2; then
    pass start_cluster_overview
else
    fail start_cluster_overview "/overview shows '$(overview taskmanagers)' taskmanagers 10 s after start-cluster.sh, expected 2"
fi

missing=()
for f in jobmanager-0 taskmanager-0 taskmanager-1; do
    for ext in log out; do
        [ -f "$LOG_DIR/flint-$IDENT-$f-$HOST.$ext" ] || missing+=("flint-$IDENT-$f-$HOST.$ext")
    done
    [ -s "$LOG_DIR/flint-$IDENT-$f-$HOST.log" ] || missing+=("(empty) flint-$IDENT-$f-$HOST.log")
done
check log_and_out_files "missing in $LOG_DIR: ${missing[*]} (found: $(find "$LOG_DIR" -type f -printf '%f ' 2>/dev/null))" \
    test ${#missing[@]} -eq 0

mapfile -t JM_PIDS < <(cat "$PID_DIR/flint-$IDENT-jobmanager.pid" 2>/dev/null)
mapfile -t TM_PIDS < <(cat "$PID_DIR/flint-$IDENT-taskmanager.pid" 2>/dev/null)
ALL_PIDS=("${JM_PIDS[@]}" "${TM_PIDS[@]}")
live=0
for pid in "${ALL_PIDS[@]}"; do is_flint_daemon "$pid" && live=$((live + 1)); done
if [ ${#JM_PIDS[@]} -eq 1 ] && [ ${#TM_PIDS[@]} -eq 2 ] && [ "$live" -eq 3 ]; then
    pass pid_files
else
    fail pid_files "expected 1 jobmanager and 2 taskmanager pids of live daemons in $PID_DIR, got jm=(${JM_PIDS[*]}) tm=(${TM_PIDS[*]}), $live alive"
fi

# ---- stop-cluster.sh ----
out=$("$ROOT/scripts/stop-cluster.sh" 2>&1)
rc=$?
echo "$out" >"$TEST_TMP/stop-cluster.txt"
check stop_cluster_rc "stop-cluster.sh exited $rc: $out" test "$rc" -eq 0
left=()
for pid in "${ALL_PIDS[@]}"; do is_flint_daemon "$pid" && left+=("$pid"); done
check stop_cluster_no_daemon "daemons still running after stop-cluster.sh returned: ${left[*]}" test ${#left[@]} -eq 0
pidfiles=$(find "$PID_DIR" -name '*.pid' 2>/dev/null | tr '\n' ' ')
check pid_files_removed "pid files left: $pidfiles" test -z "$pidfiles"
check rest_down "the REST endpoint still answers after stop-cluster.sh" wait_until 2 eval '! rest_up'

out=$("$ROOT/scripts/stop-cluster.sh" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -q "No taskmanager daemon to stop" <<<"$out" && grep -q "No jobmanager daemon to stop" <<<"$out"; then
    pass stop_cluster_idempotent
else
    fail stop_cluster_idempotent "a second stop-cluster.sh exited $rc: $out"
fi

# ---- a broken flint.yaml: start-cluster.sh fails with file:line and starts nothing ----
set_conf_key "$CONF_DIR/flint.yaml" heartbeat.interval "soon"
out=$("$ROOT/scripts/start-cluster.sh" 2>&1)
rc=$?
started=$(pidfile_pids "$PID_DIR" | while read -r p; do is_flint_daemon "$p" && echo "$p"; done | tr '\n' ' ')
if [ "$rc" -eq 1 ] && grep -qE 'flint\.yaml:[0-9]+' <<<"$out" && [ -z "$started" ]; then
    pass start_cluster_bad_conf
else
    fail start_cluster_bad_conf "start-cluster.sh with a bad heartbeat.interval exited $rc (expected 1 with file:line), daemons started: '$started': $out"
fi

check no_crash_reports "a log or .out file holds a sanitizer report or crash" no_crash_reports
finish

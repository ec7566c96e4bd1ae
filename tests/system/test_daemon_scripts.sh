#!/usr/bin/env bash
# scripts/jobmanager.sh and taskmanager.sh on their own: log and pid dirs from flint.yaml
# (env.log.dir, env.pid.dir), arguments passed on to the daemon, several instances with their
# own log index, stop (newest) and stop-all, log rotation, start-foreground, a daemon that cannot
# start, stale and foreign pids in a pid file, and usage errors.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built

IDENT=${USER:-$(id -un)}
HOST=${HOSTNAME:-$(uname -n)}
PID_DIR=$TEST_TMP/cfgpid
LOG_DIR=$TEST_TMP/cfglog
JM_SH=$ROOT/scripts/jobmanager.sh
TM_SH=$ROOT/scripts/taskmanager.sh
JM_PIDFILE=$PID_DIR/flint-$IDENT-jobmanager.pid
TM_PIDFILE=$PID_DIR/flint-$IDENT-taskmanager.pid
# shellcheck disable=SC2016  # expanded at cleanup
on_cleanup 'kill_pidfile_daemons "$TEST_TMP"'

read -r RPC_PORT REST_PORT <<<"$(free_ports 2 | tr '\n' ' ')"
REST_BASE=http://127.0.0.1:$REST_PORT
write_conf "$CONF_DIR" jobmanager.rpc.address=127.0.0.1 "jobmanager.rpc.port=$RPC_PORT" \
    rest.address=127.0.0.1 "rest.port=$REST_PORT" \
    "heartbeat.interval=200 ms" "heartbeat.timeout=1500 ms" "cluster.registration.max-timeout=500 ms" \
    "env.log.dir=$LOG_DIR" "env.pid.dir=$PID_DIR"
export FLINT_CONF_DIR=$CONF_DIR
unset FLINT_PID_DIR FLINT_LOG_DIR

lines() { if [ -f "$1" ]; then grep -c . "$1"; else echo 0; fi; }
slots_total_is() { [ "$(overview slots-total)" = "$1" ]; }

# ---- usage ----
"$JM_SH" >/dev/null 2>&1
rc1=$?
"$TM_SH" restart >/dev/null 2>&1
rc2=$?
"$TM_SH" stop -D x=y >/dev/null 2>&1
rc3=$?
check script_usage "no verb / unknown verb / stop with arguments exited $rc1/$rc2/$rc3, expected 2/2/2" \
    test "$rc1$rc2$rc3" = 222

out=$(FLINT_CONF_DIR=$TEST_TMP/nowhere "$JM_SH" start 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && grep -q nowhere <<<"$out"; then
    pass script_missing_conf_dir
else
    fail script_missing_conf_dir "jobmanager.sh start with a missing FLINT_CONF_DIR exited $rc: $out"
fi

# ---- jobmanager.sh start: dirs from flint.yaml ----
out=$("$JM_SH" start 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = "Starting jobmanager daemon on host $HOST." ] &&
   [ -s "$LOG_DIR/flint-$IDENT-jobmanager-0-$HOST.log" ] && [ -f "$LOG_DIR/flint-$IDENT-jobmanager-0-$HOST.out" ] &&
   [ "$(lines "$JM_PIDFILE")" = 1 ]; then
    pass jm_start_conf_dirs
else
    fail jm_start_conf_dirs "jobmanager.sh start exited $rc ('$out'); expected its log in $LOG_DIR and its pid in $JM_PIDFILE (found: $(find "$TEST_TMP" -name 'flint-*' -printf '%P ' 2>/dev/null))"
fi
JM_PID=$(head -n 1 "$JM_PIDFILE" 2>/dev/null)
wait_until 10 rest_up || abort jm_up "the jobmanager started by jobmanager.sh does not answer on $REST_BASE"

# ---- a second jobmanager on the same ports cannot start: exit 1 with the reason ----
out=$("$JM_SH" start 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && grep -q "Error starting jobmanager" <<<"$out" && grep -q "flint-jobmanager:" <<<"$out" &&
   [ "$(lines "$JM_PIDFILE")" = 1 ]; then
    pass jm_start_failure_reported
else
    fail jm_start_failure_reported "a jobmanager.sh start on busy ports exited $rc with '$out' and left $(lines "$JM_PIDFILE") pids (expected exit 1, the daemon's reason, 1 pid)"
fi

# ---- taskmanager.sh: arguments, instances, stop, rotation, stop-all ----
out=$("$TM_SH" start -D taskmanager.numberOfTaskSlots=3 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && wait_until 10 slots_total_is 3; then
    pass tm_start_args
else
    fail tm_start_args "taskmanager.sh start -D taskmanager.numberOfTaskSlots=3 exited $rc ('$out'); slots-total is '$(overview slots-total)', expected 3"
fi
out=$("$TM_SH" start 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -q "1 instance(s) of taskmanager are already running" <<<"$out" &&
   wait_until 10 tm_count_is 2 && [ "$(lines "$TM_PIDFILE")" = 2 ] &&
   [ -f "$LOG_DIR/flint-$IDENT-taskmanager-1-$HOST.log" ]; then
    pass tm_second_instance
else
    fail tm_second_instance "second taskmanager.sh start exited $rc ('$out'); taskmanagers=$(overview taskmanagers), $(lines "$TM_PIDFILE") pids, files: $(find "$LOG_DIR" -printf '%f ')"
fi
mapfile -t TMP < <(cat "$TM_PIDFILE" 2>/dev/null)
out=$("$TM_SH" stop 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "${#TMP[@]}" = 2 ] && dead "${TMP[1]}" && is_flint_daemon "${TMP[0]}" &&
   [ "$(cat "$TM_PIDFILE")" = "${TMP[0]}" ] && wait_until 3 tm_count_is 1; then
    pass tm_stop_newest
else
    fail tm_stop_newest "taskmanager.sh stop exited $rc ('$out'); pids before: ${TMP[*]}, after: $(tr '\n' ' ' <"$TM_PIDFILE" 2>/dev/null)"
fi
# The freed index 1 is used again, and the old log of index 1 is rotated to .log.1.
out=$("$TM_SH" start 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -f "$LOG_DIR/flint-$IDENT-taskmanager-1-$HOST.log.1" ] &&
   [ -f "$LOG_DIR/flint-$IDENT-taskmanager-1-$HOST.out.1" ] && [ ! -e "$LOG_DIR/flint-$IDENT-taskmanager-2-$HOST.log" ] &&
   wait_until 10 tm_count_is 2; then
    pass tm_index_reuse_and_rotation
else
    fail tm_index_reuse_and_rotation "after stop and start: exit $rc, files: $(find "$LOG_DIR" -printf '%f ')"
fi

# A stale pid (a process that is gone) and a foreign one (a live process that is no taskmanager)
# in the pid file: stop-all must leave the foreign process alone.
sleep 60 &
FOREIGN=$!
track "$FOREIGN"
true &
STALE=$!
wait "$STALE"
mapfile -t TMP < <(cat "$TM_PIDFILE" 2>/dev/null)
printf '%s\n' "$STALE" "$FOREIGN" >>"$TM_PIDFILE"
out=$("$TM_SH" stop-all 2>&1)
rc=$?
left=()
for p in "${TMP[@]}"; do alive "$p" && left+=("$p"); done
if [ "$rc" -eq 0 ] && [ ${#TMP[@]} -eq 2 ] && [ ${#left[@]} -eq 0 ] && alive "$FOREIGN" &&
   [ ! -e "$TM_PIDFILE" ] && [ "$(grep -c '^Stopping taskmanager daemon' <<<"$out")" = 2 ]; then
    pass tm_stop_all
else
    fail tm_stop_all "taskmanager.sh stop-all exited $rc ('$out'); still running: ${left[*]}; foreign pid alive: $(alive "$FOREIGN" && echo yes || echo NO); pid file: $(tr '\n' ' ' <"$TM_PIDFILE" 2>/dev/null)"
fi
kill "$FOREIGN" 2>/dev/null

out=$("$TM_SH" stop 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = "No taskmanager daemon to stop on host $HOST." ]; then
    pass tm_stop_nothing
else
    fail tm_stop_nothing "taskmanager.sh stop with nothing running exited $rc: '$out'"
fi

# ---- stop on a stopped (SIGSTOP) daemon: it is resumed to see its SIGTERM, no SIGKILL needed ----
"$TM_SH" start >/dev/null 2>&1
STOPPED=$(cat "$TM_PIDFILE" 2>/dev/null)
kill -STOP "$STOPPED" 2>/dev/null
t0=$(now_ms)
out=$(FLINT_STOP_TIMEOUT=5 "$TM_SH" stop 2>&1)
rc=$?
dt=$(($(now_ms) - t0))
if [ "$rc" -eq 0 ] && dead "$STOPPED" && [ "$dt" -lt 4000 ] && ! grep -q SIGKILL <<<"$out"; then
    pass tm_stop_suspended
else
    fail tm_stop_suspended "taskmanager.sh stop on a SIGSTOPped taskmanager took $dt ms, exit $rc: $out"
fi
wait_until 3 tm_count_is 0

# ---- start-foreground: runs in this process, in the pid file, stoppable with stop ----
"$TM_SH" start-foreground -D taskmanager.numberOfTaskSlots=2 >"$TEST_TMP/foreground.out" 2>&1 &
FG=$!
track "$FG"
if wait_until 10 tm_count_is 1 && [ "$(cat "$TM_PIDFILE" 2>/dev/null)" = "$FG" ] && is_flint_daemon "$FG"; then
    pass tm_start_foreground
else
    fail tm_start_foreground "taskmanager.sh start-foreground: taskmanagers=$(overview taskmanagers), pid file '$(cat "$TM_PIDFILE" 2>/dev/null)', expected the script's own pid $FG"
fi
"$TM_SH" stop >/dev/null 2>&1
wait_exit "$FG" 10
check tm_foreground_stop "taskmanager.sh stop on a foreground taskmanager: it exited with '$EXIT_STATUS', expected 0" \
    test "$EXIT_STATUS" = 0

# ---- jobmanager.sh stop ----
out=$("$JM_SH" stop 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = "Stopping jobmanager daemon (pid: $JM_PID) on host $HOST." ] && dead "$JM_PID" &&
   [ ! -e "$JM_PIDFILE" ]; then
    pass jm_stop
else
    fail jm_stop "jobmanager.sh stop exited $rc ('$out'); jobmanager $JM_PID alive: $(alive "$JM_PID" && echo yes || echo no); pid file exists: $([ -e "$JM_PIDFILE" ] && echo yes || echo no)"
fi

# ---- FLINT_LOG_DIR and FLINT_PID_DIR win over flint.yaml ----
out=$(FLINT_LOG_DIR=$TEST_TMP/envlog FLINT_PID_DIR=$TEST_TMP/envpid "$JM_SH" start 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -f "$TEST_TMP/envlog/flint-$IDENT-jobmanager-0-$HOST.log" ] &&
   [ -f "$TEST_TMP/envpid/flint-$IDENT-jobmanager.pid" ]; then
    pass env_dirs_override
else
    fail env_dirs_override "with FLINT_LOG_DIR/FLINT_PID_DIR: exit $rc ('$out'); files: $(find "$TEST_TMP/envlog" "$TEST_TMP/envpid" -printf '%P ' 2>/dev/null)"
fi
out=$(FLINT_LOG_DIR=$TEST_TMP/envlog FLINT_PID_DIR=$TEST_TMP/envpid "$JM_SH" stop-all 2>&1)
rc=$?
check env_dirs_stop_all "jobmanager.sh stop-all with FLINT_LOG_DIR/FLINT_PID_DIR exited $rc: $out" \
    test "$rc" -eq 0 -a ! -e "$TEST_TMP/envpid/flint-$IDENT-jobmanager.pid"

running=$(pidfile_pids "$TEST_TMP" | while read -r p; do is_flint_daemon "$p" && echo "$p"; done | tr '\n' ' ')
check nothing_left "daemons still running: $running" test -z "$running"
check no_crash_reports "a log or .out file holds a sanitizer report or crash" no_crash_reports
finish

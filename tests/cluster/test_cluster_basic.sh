#!/usr/bin/env bash
# A jobmanager and two taskmanagers (2 slots each) on loopback: registration, REST overview and
# taskmanager list, the client's overview/list, losing a taskmanager (closed connection, silent
# peer), re-registration after SIGCONT and after a jobmanager restart, garbage and oversized
# frames on every port, clean exit on SIGTERM, and REST errors (404, 405, path traversal).
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built

read -r RPC_PORT REST_PORT <<<"$(free_ports 2 | tr '\n' ' ')"
REST_BASE=http://127.0.0.1:$REST_PORT
JM_ADDR=127.0.0.1:$RPC_PORT
write_conf "$CONF_DIR" \
    jobmanager.rpc.address=127.0.0.1 "jobmanager.rpc.port=$RPC_PORT" \
    rest.address=127.0.0.1 "rest.port=$REST_PORT" \
    taskmanager.numberOfTaskSlots=2
# A longer heartbeat timeout than the default of lib.sh, so that a loss noticed through the
# closed connection (well under a second) is told apart from one noticed at the timeout.
HB_TIMEOUT_MS=3000
HB_ARGS=(-D "heartbeat.interval=${HB_INTERVAL_MS}ms" -D "heartbeat.timeout=${HB_TIMEOUT_MS}ms"
         -D cluster.registration.initial-timeout=50ms -D cluster.registration.max-timeout=500ms)

# tm_ids: the ids of the registered taskmanagers, one per line.
tm_ids() { rest_json /taskmanagers '.taskmanagers[].id'; }
# tm_registered ID: ID is in /taskmanagers.
tm_registered() { tm_ids | grep -qxF -- "$1"; }
# both_registered: two taskmanagers, and tm1 and tm2 both alive.
both_up() { tm_count_is 2 && alive "$(pid_of tm1)" && alive "$(pid_of tm2)"; }

start_jm jm
wait_until 10 rest_up || abort jm_starts "no REST answer on $REST_BASE/overview within 10 s: $(log_tail jm)"
pass jm_starts

start_tm tm1
start_tm tm2
wait_until 10 tm_count_is 2 ||
    abort tms_register "/overview shows $(overview taskmanagers) taskmanagers after 10 s, expected 2: $(log_tail tm1)"
pass tms_register

# ---- REST: overview and taskmanagers ----
ov=$(rest_get /overview)
if [ "$(jq -r '.taskmanagers, ."slots-total", ."slots-available"' <<<"$ov" 2>/dev/null | tr '\n' ' ')" = "2 4 4 " ]; then
    pass overview_counts
else
    fail overview_counts "expected taskmanagers 2, slots-total 4, slots-available 4; got $ov"
fi

tms=$(rest_get /taskmanagers)
if jq -e '(.taskmanagers | length) == 2 and all(.taskmanagers[];
        (.id | type) == "string" and (.path | type) == "string" and .dataPort > 0
        and .slotsNumber == 2 and .freeSlots == 2 and .hardware.cpuCores > 0)' \
        <<<"$tms" >/dev/null 2>&1; then
    pass taskmanagers_list
else
    fail taskmanagers_list "expected 2 entries with id, path, dataPort > 0, 2 slots, hardware.cpuCores > 0; got $tms"
fi
mapfile -t IDS < <(tm_ids)
mapfile -t DATA_PORTS < <(rest_json /taskmanagers '.taskmanagers[].dataPort')

# ---- client ----
out=$("$BIN_DIR/flint" overview -m "$JM_ADDR" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -qF -- "${IDS[0]:-?}" <<<"$out" && grep -qF -- "${IDS[1]:-?}" <<<"$out"; then
    pass flint_overview
else
    fail flint_overview "flint overview -m $JM_ADDR exited $rc and/or does not show both taskmanagers (${IDS[*]}): $out"
fi

out=$("$BIN_DIR/flint" overview --config-dir "$CONF_DIR" 2>&1)
rc=$?
check flint_overview_from_conf "without -m (address from flint.yaml) exited $rc: $out" \
    test "$rc" -eq 0 -a -n "$out"

out=$("$BIN_DIR/flint" list -m "$JM_ADDR" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && ! grep -qE '[0-9a-f]{32}' <<<"$out"; then
    pass flint_list_empty
else
    fail flint_list_empty "flint list -m $JM_ADDR exited $rc (expected 0 and no job): $out"
fi

# ---- REST errors ----
code=$(http_code /no/such/path)
check rest_404 "GET /no/such/path answered $code, expected 404" test "$code" = 404
code=$(http_code -X POST /overview)
check rest_405 "POST /overview answered $code, expected 405" test "$code" = 405
code=$(http_code /jobmanager/logs/..%252f..%252fetc%252fpasswd)
body=$(curl -s --max-time 3 "$REST_BASE/jobmanager/logs/..%252f..%252fetc%252fpasswd")
check rest_traversal_encoded "GET /jobmanager/logs/..%252f..%252fetc%252fpasswd answered $code, expected 404" \
    test "$code" = 404 -a "${body#*root:}" = "$body"
code=$(http_code --path-as-is /../../etc/passwd)
body=$(curl -s --path-as-is --max-time 3 "$REST_BASE/../../etc/passwd")
check rest_traversal_dotdot "GET /../../etc/passwd answered $code, expected 404" \
    test "$code" = 404 -a "${body#*root:}" = "$body"

# ---- garbage on every port: nobody crashes, nobody is dropped ----
head -c 200000 /dev/urandom | send_bytes 127.0.0.1 "$RPC_PORT"
head -c 200000 /dev/urandom | send_bytes 127.0.0.1 "$REST_PORT"
for p in "${DATA_PORTS[@]}"; do
    head -c 200000 /dev/urandom | send_bytes 127.0.0.1 "$p"
done
# A frame header announcing 2 GiB: the jobmanager must refuse it and close the connection
# rather than wait for (or allocate) the body.
exec {fd}<>"/dev/tcp/127.0.0.1/$RPC_PORT"
printf '\x7f\xff\xff\xff' >&"$fd"
if timeout 5 cat <&"$fd" >/dev/null 2>&1; then
    pass oversized_frame_closed
else
    fail oversized_frame_closed "the jobmanager kept the connection open 5 s after a 0x7fffffff frame header"
fi
exec {fd}<&-

survived() {
    alive "$(pid_of jm)" && both_up && tm_registered "${IDS[0]}" && tm_registered "${IDS[1]}"
}
# Give a crash or a dropped registration time to show, then require everything to be as before.
sleep 0.5
if wait_until 5 survived; then
    pass garbage_survived
else
    fail garbage_survived "after garbage on the RPC, REST and data ports: jm alive=$(alive "$(pid_of jm)" && echo y || echo n), tm1 alive=$(alive "$(pid_of tm1)" && echo y || echo n), tm2 alive=$(alive "$(pid_of tm2)" && echo y || echo n), /overview taskmanagers=$(overview taskmanagers)"
fi

# ---- jobmanager restart: the taskmanagers come back on their own ----
stop_daemon jm
check jm_sigterm_exit0 "jobmanager exited with '$EXIT_STATUS' on SIGTERM, expected 0" test "$EXIT_STATUS" = 0
start_jm jm2
if wait_until 10 tm_count_is 2; then
    pass jm_restart_reregister
else
    fail jm_restart_reregister "after restarting the jobmanager on the same ports /overview shows '$(overview taskmanagers)' taskmanagers after 10 s, expected 2: $(log_tail jm2)"
fi

# ---- a silent peer (SIGSTOP) is dropped at the heartbeat timeout, and comes back ----
wait_until 5 both_up
kill -STOP "$(pid_of tm1)"
t0=$(now_ms)
if wait_until $((HB_TIMEOUT_MS / 1000 + 5)) tm_count_is 1; then
    dt=$(($(now_ms) - t0))
    if [ "$dt" -ge $((HB_TIMEOUT_MS - HB_INTERVAL_MS - 500)) ]; then
        pass silent_tm_dropped
    else
        fail silent_tm_dropped "a stopped taskmanager was dropped after $dt ms, before heartbeat.timeout ($HB_TIMEOUT_MS ms)"
    fi
else
    fail silent_tm_dropped "a SIGSTOPped taskmanager is still counted $((HB_TIMEOUT_MS / 1000 + 5)) s later (heartbeat.timeout $HB_TIMEOUT_MS ms)"
fi
kill -CONT "$(pid_of tm1)"
if wait_until 8 both_up; then
    pass silent_tm_reregisters
else
    fail silent_tm_reregisters "after SIGCONT the taskmanager did not re-register within 8 s (/overview taskmanagers=$(overview taskmanagers)): $(log_tail tm1)"
fi

# ---- a killed taskmanager is dropped at once (closed connection) ----
# (stderr off meanwhile: bash reports the killed job with a "Killed" line)
exec {saved_stderr}>&2 2>/dev/null
kill -KILL "$(pid_of tm2)"
t0=$(now_ms)
if wait_until 1.5 tm_count_is 1; then
    pass killed_tm_dropped_fast
else
    fail killed_tm_dropped_fast "after kill -9 of a taskmanager /overview still showed 2 taskmanagers after 1.5 s (heartbeat.timeout is $HB_TIMEOUT_MS ms; a closed connection must be noticed at once)"
fi
wait_exit "$(pid_of tm2)" 5
exec 2>&"$saved_stderr" {saved_stderr}>&-

# ---- SIGTERM: a taskmanager exits 0 and is gone from the overview ----
stop_daemon tm1
check tm_sigterm_exit0 "taskmanager exited with '$EXIT_STATUS' on SIGTERM, expected 0 within 10 s" \
    test "$EXIT_STATUS" = 0
if wait_until 2 tm_count_is 0; then
    pass tm_sigterm_unregistered
else
    fail tm_sigterm_unregistered "2 s after the last taskmanager exited /overview shows $(overview taskmanagers) taskmanagers, expected 0"
fi

stop_daemon jm2
check jm2_sigterm_exit0 "restarted jobmanager exited with '$EXIT_STATUS' on SIGTERM, expected 0" \
    test "$EXIT_STATUS" = 0
check no_crash_reports "a log or .out file holds a sanitizer report or crash: $(grep -rlE 'Sanitizer|runtime error:' "$TEST_TMP" 2>/dev/null | tr '\n' ' ')" \
    no_crash_reports

finish

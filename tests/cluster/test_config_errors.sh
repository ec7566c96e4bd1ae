#!/usr/bin/env bash
# Configuration and command-line errors: bad values and malformed YAML stop a daemon with exit 1
# and file:line, an unknown key is a warning, a bad -D or a port in use is exit 1, the client
# answers usage errors with exit 2 and one line, an unreachable jobmanager with exit 1 and one
# line, and `flint config` prints effective values (the cluster scripts depend on it).
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built

read -r RPC_PORT REST_PORT DEAD_PORT <<<"$(free_ports 3 | tr '\n' ' ')"
REST_BASE=http://127.0.0.1:$REST_PORT
BASE_CONF=(jobmanager.rpc.address=127.0.0.1 "jobmanager.rpc.port=$RPC_PORT"
           rest.address=127.0.0.1 "rest.port=$REST_PORT")

# run_daemon TYPE CONF_DIR ARG...: run a daemon that is expected to exit at once (10 s at most);
# sets RC and ERR (its stderr). RC=timeout when it kept running.
run_daemon() {
    local type=$1 dir=$2
    shift 2
    ERR=$(timeout -k 2 10 "$BIN_DIR/flint-$type" --config-dir "$dir" "$@" 2>&1 >/dev/null)
    RC=$?
    [ "$RC" -eq 124 ] && RC=timeout
}

# expect_config_error NAME TYPE PATTERN ARG...: exit 1 and a message matching PATTERN (ERE).
expect_config_error() {
    local name=$1 type=$2 pattern=$3
    shift 3
    run_daemon "$type" "$CONF_DIR" "$@"
    if [ "$RC" = 1 ] && grep -qE -- "$pattern" <<<"$ERR"; then
        pass "$name"
    else
        fail "$name" "flint-$type exited with $RC (expected 1) and printed '$ERR' (expected /$pattern/)"
    fi
}

# ---- bad value in flint.yaml: file and line ----
write_conf "$CONF_DIR" "${BASE_CONF[@]}" "heartbeat.interval=soon"
expect_config_error jm_bad_value jobmanager "flint\.yaml:5:.*heartbeat\.interval"
expect_config_error tm_bad_value taskmanager "flint\.yaml:5:.*heartbeat\.interval"
write_conf "$CONF_DIR" "${BASE_CONF[@]}" "taskmanager.numberOfTaskSlots=0"
expect_config_error jm_out_of_range jobmanager "flint\.yaml:5:.*numberOfTaskSlots"

# ---- malformed YAML: file and line ----
write_conf "$CONF_DIR" "${BASE_CONF[@]}"
printf 'rest.address: [127.0.0.1\nparallelism.default: 1\n' >>"$CONF_DIR/flint.yaml"
expect_config_error jm_malformed_yaml jobmanager "flint\.yaml:[0-9]+.*(YAML|yaml)"
printf 'a: b\n  c: d\n' >"$CONF_DIR/flint.yaml"
expect_config_error jm_malformed_indent jobmanager "flint\.yaml:[0-9]+"

# ---- cross-key check and -D ----
write_conf "$CONF_DIR" "${BASE_CONF[@]}"
expect_config_error jm_timeout_below_interval jobmanager "heartbeat\.timeout" \
    -D heartbeat.interval=2s -D heartbeat.timeout=1s
expect_config_error jm_bad_override jobmanager "-D.*rest\.port" -D rest.port=eighty
expect_config_error tm_bad_override taskmanager "-D.*numberOfTaskSlots" -D taskmanager.numberOfTaskSlots=many
expect_config_error jm_missing_conf_dir jobmanager "$TEST_TMP/nowhere" --config-dir "$TEST_TMP/nowhere"

run_daemon jobmanager "$CONF_DIR" --no-such-option
check jm_bad_option "flint-jobmanager --no-such-option exited $RC, expected 2" test "$RC" = 2

# ---- unknown key: a warning naming it, and the daemon runs ----
write_conf "$CONF_DIR" "${BASE_CONF[@]}" "no.such.key=1"
start_jm jm
if wait_until 10 rest_up; then
    # The warning belongs in the log file (--log-file), where the scripts' users look, not only
    # on stderr (the .out file).
    if grep -qE "flint\.yaml:5.*no\.such\.key" "$TEST_TMP/jm.log"; then
        pass jm_unknown_key_warns
    elif grep -qE "flint\.yaml:5.*no\.such\.key" "$TEST_TMP/jm.out"; then
        fail jm_unknown_key_warns "the warning about no.such.key went to stderr (the .out file), not to the --log-file log"
    else
        fail jm_unknown_key_warns "no warning naming no.such.key and flint.yaml:5: $(log_tail jm)"
    fi
else
    fail jm_unknown_key_warns "the jobmanager did not start with an unknown key: $(log_tail jm)"
fi

# ---- a port that is in use: exit 1 with a message ----
if alive "$(pid_of jm)"; then
    run_daemon jobmanager "$CONF_DIR" -D "rest.port=$DEAD_PORT"
    if [ "$RC" = 1 ] && [ -n "$ERR" ]; then
        pass jm_rpc_port_in_use
    else
        fail jm_rpc_port_in_use "a second jobmanager on RPC port $RPC_PORT exited with $RC (expected 1): $ERR"
    fi
    run_daemon jobmanager "$CONF_DIR" -D "jobmanager.rpc.port=$DEAD_PORT"
    if [ "$RC" = 1 ] && [ -n "$ERR" ]; then
        pass jm_rest_port_in_use
    else
        fail jm_rest_port_in_use "a second jobmanager on REST port $REST_PORT exited with $RC (expected 1): $ERR"
    fi
fi
stop_daemon jm
check jm_sigterm_exit0 "jobmanager exited with '$EXIT_STATUS' on SIGTERM, expected 0" test "$EXIT_STATUS" = 0

# ---- client: usage errors exit 2 with one line, an unreachable jobmanager exits 1 with one line ----
# expect_client NAME WANT_RC ARG...: flint ARG... exits WANT_RC with exactly one line on stderr.
expect_client() {
    local name=$1 want=$2 err rc lines
    shift 2
    err=$(timeout -k 2 15 "$BIN_DIR/flint" "$@" 2>&1 >/dev/null)
    rc=$?
    lines=$(printf '%s' "$err" | grep -c '')
    if [ "$rc" = "$want" ] && [ "$lines" = 1 ]; then
        pass "$name"
    else
        fail "$name" "flint $* exited $rc (expected $want) with $lines lines on stderr (expected 1): $err"
    fi
}
expect_client flint_bad_option 2 list --no-such-option
expect_client flint_bad_verb 2 frobnicate
expect_client flint_no_verb_option 2 --no-such-option
expect_client flint_missing_m_value 2 list -m
t0=$(now_ms)
expect_client flint_unreachable 1 list -m "127.0.0.1:$DEAD_PORT"
dt=$(($(now_ms) - t0))
check flint_unreachable_fast "flint list against a closed port took $dt ms (a refused connection needs no timeout)" \
    test "$dt" -lt 5000
expect_client flint_overview_unreachable 1 overview -m "127.0.0.1:$DEAD_PORT"

# ---- flint config: effective values after flint.yaml and -D ----
write_conf "$CONF_DIR" "${BASE_CONF[@]}" "env.pid.dir=$TEST_TMP/pids"
out=$("$BIN_DIR/flint" config --config-dir "$CONF_DIR" -D env.log.level=DEBUG \
      rest.port env.pid.dir env.log.level env.log.dir heartbeat.interval 2>&1)
want=$(printf '%s\n' "$REST_PORT" "$TEST_TMP/pids" DEBUG "" "10 s")
check flint_config_values "flint config printed '$out', expected '$want'" test "$out" = "$want"
expect_client flint_config_unknown_key 1 config --config-dir "$CONF_DIR" no.such.key
write_conf "$CONF_DIR" "${BASE_CONF[@]}" "rest.port=x"
expect_client flint_config_bad_conf 1 config --config-dir "$CONF_DIR" rest.port

check no_crash_reports "a log or .out file holds a sanitizer report or crash" no_crash_reports
finish

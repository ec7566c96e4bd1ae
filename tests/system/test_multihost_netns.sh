#!/usr/bin/env bash
# A cluster over three "hosts": network namespaces h1, h2, h3 joined by a bridge that lives in a
# fourth namespace (nothing touches the root namespace's network), addresses 198.18.X.1-3/24.
# start-cluster.sh runs inside h1 (the master, started locally) and reaches the workers h2 and h3
# through FLINT_SSH=tests/flint-netns-ssh, as it would reach other machines through ssh. Checks:
# both taskmanagers register from their own addresses, every daemon runs in its own host, logs
# and pid files are on each host, and stop-cluster.sh (inside h1) leaves nothing running. Then
# the same from the root namespace, where the master is remote too (jobmanager.sh over "ssh").
# Needs root for ip netns (the test fails, not skips, when namespaces are not available).
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built

# 198.18.0.0/15 is reserved for benchmarking networks; X from our pid keeps parallel runs apart
# (each run has its own namespaces anyway).
NET=198.$((18 + ($$ / 256) % 2)).$(($$ % 256))
H1=$NET.1 H2=$NET.2 H3=$NET.3
NS1=flint-$$-h1 NS2=flint-$$-h2 NS3=flint-$$-h3 NSBR=flint-$$-br
ALL_NS=("$NS1" "$NS2" "$NS3" "$NSBR")
CREATED_NS=()

# Kill everything that runs in our namespaces, then delete them.
netns_cleanup() {
    local ns pid pids=()
    kill_pidfile_daemons "$TEST_TMP"
    for ns in "${CREATED_NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -CONT "$pid" 2>/dev/null
            kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
        done
    done
    for pid in "${pids[@]}"; do
        wait_until 5 dead "$pid" || kill -KILL "$pid" 2>/dev/null
    done
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null || echo "warning: could not delete network namespace $ns" >&2
    done
}
on_cleanup netns_cleanup

# ---- the network ----
command -v ip >/dev/null || abort multihost "ip netns not available: the ip command (iproute2) is missing"
for ns in "${ALL_NS[@]}"; do
    # A namespace of this name is a leftover of a killed run that had our pid: remove it.
    if ip netns list 2>/dev/null | grep -q "^$ns\b"; then
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    fi
    if ! err=$(ip netns add "$ns" 2>&1); then
        abort multihost "ip netns not available: ip netns add $ns: $err"
    fi
    CREATED_NS+=("$ns")
    ip -n "$ns" link set lo up
done
setup_net() {
    local i ns
    ip -n "$NSBR" link add br0 type bridge &&
    ip -n "$NSBR" link set br0 up || return 1
    for i in 1 2 3; do
        ns=flint-$$-h$i
        ip -n "$NSBR" link add "veth$i" type veth peer name eth0 netns "$ns" &&
        ip -n "$NSBR" link set "veth$i" master br0 &&
        ip -n "$NSBR" link set "veth$i" up &&
        ip -n "$ns" addr add "$NET.$i/24" dev eth0 &&
        ip -n "$ns" link set eth0 up || return 1
    done
}
if ! err=$(setup_net 2>&1); then
    abort multihost "could not build the bridge and veth pairs: $err"
fi
# Reachable: a TCP connection from h1 to a closed port of h2/h3 is refused at once.
reachable() {
    local err
    err=$(ip netns exec "$NS1" timeout 2 bash -c "exec 3<>/dev/tcp/$1/9" 2>&1)
    grep -q "refused" <<<"$err"
}
if wait_until 5 reachable "$H2" && wait_until 5 reachable "$H3"; then
    pass netns_network
else
    abort netns_network "h1 cannot reach $H2 and $H3 through the bridge"
fi

# ---- the cluster conf: every host sees the same files, as with a shared installation ----
read -r RPC_PORT REST_PORT <<<"$(free_ports 2 | tr '\n' ' ')"
REST_BASE=http://$H1:$REST_PORT
for h in h1 h2 h3; do mkdir -p "$TEST_TMP/$h"; done
write_conf "$CONF_DIR" "jobmanager.rpc.address=$H1" "jobmanager.rpc.port=$RPC_PORT" \
    "rest.address=$H1" "rest.port=$REST_PORT" taskmanager.numberOfTaskSlots=2 \
    "heartbeat.interval=200 ms" "heartbeat.timeout=1500 ms" "cluster.registration.max-timeout=500 ms" \
    "env.pid.dir=$TEST_TMP/h1/pid" "env.log.dir=$TEST_TMP/h1/log"
printf '%s\n' "$H1" >"$CONF_DIR/masters"
printf '%s\n' "$H2" "$H3" >"$CONF_DIR/workers"

# in_h1 CMD...: run CMD inside h1 with the cluster's environment.
in_h1() {
    ip netns exec "$NS1" env -u FLINT_PID_DIR -u FLINT_LOG_DIR \
        FLINT_CONF_DIR="$CONF_DIR" FLINT_SSH="$ROOT/tests/flint-netns-ssh" \
        FLINT_SSH_OPTS="-o BatchMode=yes -o ConnectTimeout=5" \
        FLINT_NETNS_HOSTS="$H1=$NS1:$TEST_TMP/h1 $H2=$NS2:$TEST_TMP/h2 $H3=$NS3:$TEST_TMP/h3" \
        "$@"
}
# REST from inside h1 (the root namespace has no route to the hosts).
rest_get() { ip netns exec "$NS1" curl -sS --max-time 3 "$REST_BASE$1" 2>/dev/null; }

out=$(in_h1 "$ROOT/scripts/start-cluster.sh" 2>&1)
rc=$?
echo "$out" >"$TEST_TMP/start-cluster.txt"
if [ "$rc" -eq 0 ] && grep -q "^$H2: Starting taskmanager daemon" <<<"$out" &&
   grep -q "^$H3: Starting taskmanager daemon" <<<"$out" && grep -q "^Starting jobmanager daemon" <<<"$out"; then
    pass start_cluster_netns
else
    fail start_cluster_netns "start-cluster.sh inside $NS1 exited $rc: $out"
fi

if wait_until 15 tm_count_is 2; then
    pass overview_two_taskmanagers
else
    fail overview_two_taskmanagers "/overview (from h1) shows '$(overview taskmanagers)' taskmanagers 15 s after start-cluster.sh, expected 2"
fi

# Each taskmanager must be known by its own host's address (the address it uses to reach the
# jobmanager), not a loopback one.
tms=$(rest_get /taskmanagers)
has_host() {
    jq -e --arg re "(^|[^0-9.])${1//./\\.}([^0-9]|$)" \
        '[.taskmanagers[] | tostring | select(test($re))] | length == 1' <<<"$tms" >/dev/null 2>&1
}
if has_host "$H2" && has_host "$H3" && ! grep -q '127\.0\.0\.1' <<<"$tms"; then
    pass taskmanagers_hosts
else
    fail taskmanagers_hosts "/taskmanagers should list one taskmanager at $H2 and one at $H3: $tms"
fi

# Every daemon runs in the namespace of its host.
ns_has() { ip netns pids "$1" 2>/dev/null | xargs -r ps -o args= -p 2>/dev/null | grep -c "flint-$2"; }
if [ "$(ns_has "$NS1" jobmanager)" = 1 ] && [ "$(ns_has "$NS2" taskmanager)" = 1 ] &&
   [ "$(ns_has "$NS3" taskmanager)" = 1 ] && [ "$(ns_has "$NS1" taskmanager)" = 0 ]; then
    pass daemons_on_their_hosts
else
    fail daemons_on_their_hosts "expected the jobmanager in h1 and one taskmanager in each of h2, h3; found jm(h1)=$(ns_has "$NS1" jobmanager) tm(h1)=$(ns_has "$NS1" taskmanager) tm(h2)=$(ns_has "$NS2" taskmanager) tm(h3)=$(ns_has "$NS3" taskmanager)"
fi

IDENT=${USER:-$(id -un)}
HOST=${HOSTNAME:-$(uname -n)}
missing=()
for f in h1/log/flint-$IDENT-jobmanager-0-$HOST.log h2/log/flint-$IDENT-taskmanager-0-$HOST.log \
         h3/log/flint-$IDENT-taskmanager-0-$HOST.log h1/pid/flint-$IDENT-jobmanager.pid \
         h2/pid/flint-$IDENT-taskmanager.pid h3/pid/flint-$IDENT-taskmanager.pid; do
    [ -s "$TEST_TMP/$f" ] || missing+=("$f")
done
check files_on_each_host "missing: ${missing[*]}" test ${#missing[@]} -eq 0

# ---- stop-cluster.sh inside h1: nothing left on any host ----
out=$(in_h1 "$ROOT/scripts/stop-cluster.sh" 2>&1)
rc=$?
echo "$out" >"$TEST_TMP/stop-cluster.txt"
check stop_cluster_netns "stop-cluster.sh inside $NS1 exited $rc: $out" test "$rc" -eq 0
hosts_empty() {
    local ns
    for ns in "$NS1" "$NS2" "$NS3"; do
        [ -z "$(ip netns pids "$ns" 2>/dev/null | while read -r p; do alive "$p" && echo "$p"; done)" ] || return 1
    done
}
if wait_until 3 hosts_empty; then
    pass nothing_left_running
else
    fail nothing_left_running "processes still running in the hosts after stop-cluster.sh: $(for ns in "$NS1" "$NS2" "$NS3"; do ip netns pids "$ns"; done | xargs -r ps -o pid=,args= -p | tr '\n' ';')"
fi
pidfiles=$(find "$TEST_TMP" -name '*.pid' -printf '%P ' 2>/dev/null)
check pid_files_removed "pid files left: $pidfiles" test -z "$pidfiles"

# ---- the same cluster driven from outside: the master is remote too ----
# start-cluster.sh in the root namespace, where none of the hosts is local: the jobmanager is
# started through FLINT_SSH on h1 as well (jobmanager.sh start over "ssh").
in_root() {
    env -u FLINT_PID_DIR -u FLINT_LOG_DIR FLINT_CONF_DIR="$CONF_DIR" FLINT_SSH="$ROOT/tests/flint-netns-ssh" \
        FLINT_NETNS_HOSTS="$H1=$NS1:$TEST_TMP/h1 $H2=$NS2:$TEST_TMP/h2 $H3=$NS3:$TEST_TMP/h3" "$@"
}
out=$(in_root "$ROOT/scripts/start-cluster.sh" 2>&1)
rc=$?
echo "$out" >"$TEST_TMP/start-cluster-remote.txt"
if [ "$rc" -eq 0 ] && grep -q "^$H1: Starting jobmanager daemon" <<<"$out" && wait_until 15 tm_count_is 2 &&
   [ "$(ns_has "$NS1" jobmanager)" = 1 ]; then
    pass remote_master_start
else
    fail remote_master_start "start-cluster.sh from the root namespace exited $rc, jobmanagers in h1: $(ns_has "$NS1" jobmanager), /overview taskmanagers: '$(overview taskmanagers)': $out"
fi
out=$(in_root "$ROOT/scripts/stop-cluster.sh" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && wait_until 3 hosts_empty && [ -z "$(find "$TEST_TMP" -name '*.pid')" ]; then
    pass remote_master_stop
else
    fail remote_master_stop "stop-cluster.sh from the root namespace exited $rc and left: $(for ns in "$NS1" "$NS2" "$NS3"; do ip netns pids "$ns"; done | xargs -r ps -o pid=,args= -p | tr '\n' ';') $(find "$TEST_TMP" -name '*.pid' -printf '%P ')"
fi

check no_crash_reports "a log or .out file holds a sanitizer report or crash" no_crash_reports
finish

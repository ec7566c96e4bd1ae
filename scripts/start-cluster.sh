#!/usr/bin/env bash
# Start a Flint cluster (Flink's bin/start-cluster.sh): a jobmanager on each host of conf/masters
# (host[:webport]; this host when the file is missing), then one taskmanager per line of
# conf/workers. Lines naming this host (localhost, 127.0.0.1, its name or one of its addresses)
# start locally; any other host through ${FLINT_SSH:-ssh} -n $FLINT_SSH_OPTS host -- command,
# with the same installation path and FLINT_CONF_DIR (and FLINT_PID_DIR / FLINT_LOG_DIR when set)
# passed on. Exits 1 when any daemon failed to start. See docs/operations.md.
set -euo pipefail
# shellcheck source=scripts/config.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/config.sh"

case ${1:-} in
    "") ;;
    -h | --help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "usage: $(basename "$0")   (takes no arguments; see conf/masters and conf/workers)" >&2; exit 2 ;;
esac

# Read the configuration once here, so that a broken flint.yaml stops everything before any
# daemon starts.
flint_resolve_dirs

masters=()
if [ -f "$FLINT_CONF_DIR/masters" ]; then
    mapfile -t masters < <(flint_read_hosts "$FLINT_CONF_DIR/masters")
fi
[ ${#masters[@]} -gt 0 ] || masters=(localhost)
[ -f "$FLINT_CONF_DIR/workers" ] ||
    flint_die "no workers file: list the taskmanager hosts in $FLINT_CONF_DIR/workers, one per line"
workers=()
mapfile -t workers < <(flint_read_hosts "$FLINT_CONF_DIR/workers")

failed=0 total=0 jobs=()

# start_on HOST SCRIPT ARG...: run scripts/SCRIPT on HOST; remote hosts run in parallel.
start_on() {
    local host=$1
    shift
    total=$((total + 1))
    if flint_is_local_host "$host"; then
        "$FLINT_SCRIPTS_DIR/$1" "${@:2}" || failed=$((failed + 1))
    else
        ( flint_remote "$host" "$(flint_remote_script_command "$@")" 2>&1 | sed -u "s/^/$host: /" ) &
        jobs+=($!)
    fi
}

wait_remote() {
    local pid
    for pid in "${jobs[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
    jobs=()
}

echo "Starting cluster."
for entry in "${masters[@]}"; do
    flint_split_host_port "$entry"
    args=(start)
    [ -n "$FLINT_ENTRY_PORT" ] && args+=(-D "rest.port=$FLINT_ENTRY_PORT")
    start_on "$FLINT_ENTRY_HOST" jobmanager.sh "${args[@]}"
done
wait_remote

if [ ${#workers[@]} -eq 0 ]; then
    echo "No workers in $FLINT_CONF_DIR/workers: no taskmanager started."
fi
for entry in "${workers[@]}"; do
    flint_split_host_port "$entry"
    start_on "$FLINT_ENTRY_HOST" taskmanager.sh start
done
wait_remote

if [ "$failed" -gt 0 ]; then
    echo "$(basename "$0"): $failed of $total daemons failed to start (logs in $FLINT_LOG_DIR_EFFECTIVE on each host)" >&2
    exit 1
fi

#!/usr/bin/env bash
# Stop a Flint cluster (Flink's bin/stop-cluster.sh): every taskmanager on the hosts of
# conf/workers, then every jobmanager on the hosts of conf/masters, by their pid files
# ("stop-all" on each host, once per host). Remote hosts are reached as in start-cluster.sh.
# Exits 1 when a daemon could not be stopped. See docs/operations.md.
set -euo pipefail
# shellcheck source=scripts/config.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/config.sh"

case ${1:-} in
    "") ;;
    -h | --help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "usage: $(basename "$0")   (takes no arguments; see conf/masters and conf/workers)" >&2; exit 2 ;;
esac

flint_resolve_dirs

masters=() workers=()
if [ -f "$FLINT_CONF_DIR/masters" ]; then
    mapfile -t masters < <(flint_read_hosts "$FLINT_CONF_DIR/masters")
fi
[ ${#masters[@]} -gt 0 ] || masters=(localhost)
if [ -f "$FLINT_CONF_DIR/workers" ]; then
    mapfile -t workers < <(flint_read_hosts "$FLINT_CONF_DIR/workers")
fi

failed=0

# stop_all_on SCRIPT ENTRY...: "SCRIPT stop-all" once on each distinct host (this host once,
# whatever name it goes by); remote hosts in parallel.
stop_all_on() {
    local script=$1 entry host local_done=0 jobs=() pid
    local -A seen=()
    shift
    for entry in "$@"; do
        flint_split_host_port "$entry"
        host=$FLINT_ENTRY_HOST
        if flint_is_local_host "$host"; then
            [ "$local_done" -eq 1 ] && continue
            local_done=1
            "$FLINT_SCRIPTS_DIR/$script" stop-all || failed=$((failed + 1))
        else
            [ -n "${seen[$host]:-}" ] && continue
            seen[$host]=1
            ( flint_remote "$host" "$(flint_remote_script_command "$script" stop-all)" 2>&1 |
                sed -u "s/^/$host: /" ) &
            jobs+=($!)
        fi
    done
    for pid in "${jobs[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
}

stop_all_on taskmanager.sh "${workers[@]}"
stop_all_on jobmanager.sh "${masters[@]}"

if [ "$failed" -gt 0 ]; then
    echo "$(basename "$0"): stopping failed on $failed host(s)" >&2
    exit 1
fi

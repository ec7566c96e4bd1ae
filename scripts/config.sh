#!/usr/bin/env bash
# Shared by the cluster scripts (sourced, never run): where Flint lives, the effective log and pid
# directories, conf/masters and conf/workers, and the daemon start/stop logic behind
# jobmanager.sh and taskmanager.sh (Flink's config.sh and flink-daemon.sh in one file).
#
# Environment (all optional):
#   FLINT_CONF_DIR    configuration directory (default: $FLINT_HOME/conf); exported to children
#   FLINT_LOG_DIR     log directory (default: env.log.dir, else $FLINT_HOME/log)
#   FLINT_PID_DIR     pid file directory (default: env.pid.dir, else /tmp)
#   FLINT_STOP_TIMEOUT  seconds to wait for a daemon to exit after SIGTERM before SIGKILL (10)
#   FLINT_SSH, FLINT_SSH_OPTS  used by start-cluster.sh / stop-cluster.sh for remote hosts

# FLINT_HOME: the installation (parent of scripts/), found through symlinks.
_flint_script=${BASH_SOURCE[0]}
while [ -L "$_flint_script" ]; do
    _flint_target=$(readlink "$_flint_script")
    case $_flint_target in
        /*) _flint_script=$_flint_target ;;
        *) _flint_script=$(dirname "$_flint_script")/$_flint_target ;;
    esac
done
FLINT_HOME=$(cd "$(dirname "$_flint_script")/.." && pwd -P)
unset _flint_script _flint_target
FLINT_SCRIPTS_DIR=$FLINT_HOME/scripts
FLINT_BIN_DIR=$FLINT_HOME/build/bin
FLINT_CONF_DIR=${FLINT_CONF_DIR:-$FLINT_HOME/conf}
export FLINT_HOME FLINT_CONF_DIR

FLINT_IDENT_STRING=${USER:-$(id -un 2>/dev/null || echo unknown)}
FLINT_HOSTNAME=${HOSTNAME:-$(uname -n)}
FLINT_STOP_TIMEOUT=${FLINT_STOP_TIMEOUT:-10}

flint_die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# flint_require_binary NAME: the path of build/bin/NAME, or exit with a hint.
flint_require_binary() {
    local bin=$FLINT_BIN_DIR/$1
    [ -x "$bin" ] || flint_die "$bin not found or not executable: build Flint first (make)"
    printf '%s\n' "$bin"
}

# flint_config_values KEY...: the effective value of each key (one per line), as the daemons see
# them with the same --config-dir. The client does the YAML parsing; no grepping here.
flint_config_values() {
    local client values err
    client=$(flint_require_binary flint) || exit 1
    [ -d "$FLINT_CONF_DIR" ] || flint_die "configuration directory $FLINT_CONF_DIR does not exist"
    if ! values=$("$client" config --config-dir "$FLINT_CONF_DIR" "$@" 2>/dev/null); then
        err=$("$client" config --config-dir "$FLINT_CONF_DIR" "$@" 2>&1 >/dev/null)
        flint_die "cannot read the configuration in $FLINT_CONF_DIR: ${err:-flint config failed}"
    fi
    printf '%s\n' "$values"
}

# Sets FLINT_LOG_DIR_EFFECTIVE and FLINT_PID_DIR_EFFECTIVE (environment first, then flint.yaml,
# then the defaults). Relative directories in flint.yaml are taken from FLINT_HOME.
flint_resolve_dirs() {
    local values=() out log_dir pid_dir
    # jobmanager.rpc.port last: never empty, so $(...) cannot eat an empty value's line.
    out=$(flint_config_values env.log.dir env.pid.dir jobmanager.rpc.port) || exit 1
    mapfile -t values <<<"$out"
    [ ${#values[@]} -eq 3 ] || flint_die "flint config printed ${#values[@]} values for 3 keys: $out"
    log_dir=${FLINT_LOG_DIR:-${values[0]}}
    pid_dir=${FLINT_PID_DIR:-${values[1]}}
    log_dir=${log_dir:-$FLINT_HOME/log}
    pid_dir=${pid_dir:-/tmp}
    case $log_dir in /*) ;; *) log_dir=$FLINT_HOME/$log_dir ;; esac
    case $pid_dir in /*) ;; *) pid_dir=$FLINT_HOME/$pid_dir ;; esac
    FLINT_LOG_DIR_EFFECTIVE=$log_dir
    FLINT_PID_DIR_EFFECTIVE=$pid_dir
}

# ---- conf/masters and conf/workers ------------------------------------------------------------

# flint_read_hosts FILE: the file's hosts, one per line, without comments and blank lines.
flint_read_hosts() {
    local file=$1 line
    [ -f "$file" ] || flint_die "$file does not exist"
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [ -n "$line" ] && printf '%s\n' "$line"
    done <"$file"
}

# flint_split_host_port ENTRY: sets FLINT_ENTRY_HOST and FLINT_ENTRY_PORT (empty when absent).
# Accepts host, host:port, [v6addr] and [v6addr]:port.
# shellcheck disable=SC2034  # read by the scripts that source this file
flint_split_host_port() {
    local e=$1
    FLINT_ENTRY_HOST=$e FLINT_ENTRY_PORT=
    if [[ $e =~ ^\[([^]]+)\](:([0-9]+))?$ ]]; then
        FLINT_ENTRY_HOST=${BASH_REMATCH[1]} FLINT_ENTRY_PORT=${BASH_REMATCH[3]}
    elif [[ $e =~ ^([^:]+):([0-9]+)$ ]]; then
        FLINT_ENTRY_HOST=${BASH_REMATCH[1]} FLINT_ENTRY_PORT=${BASH_REMATCH[2]}
    elif [[ $e == *:* && $e != *:*:* ]]; then
        flint_die "bad host entry '$e': expected host, host:port or [address]:port"
    fi
}

# flint_is_local_host HOST: whether HOST names this machine (in this network namespace):
# localhost, a loopback address, this host's name, or one of its interface addresses.
flint_is_local_host() {
    local h=$1 addr
    case $h in
        localhost | localhost.localdomain | 127.* | ::1 | "$FLINT_HOSTNAME" | "${FLINT_HOSTNAME%%.*}")
            return 0 ;;
    esac
    for addr in $(hostname -I 2>/dev/null); do
        [ "$addr" = "$h" ] && return 0
    done
    return 1
}

# flint_remote HOST COMMAND: run COMMAND (one string, already quoted) on HOST through
# ${FLINT_SSH:-ssh} -n $FLINT_SSH_OPTS HOST -- COMMAND.
flint_remote() {
    local host=$1 cmd=$2 ssh_cmd=() ssh_opts=()
    read -r -a ssh_cmd <<<"${FLINT_SSH:-ssh}"
    read -r -a ssh_opts <<<"${FLINT_SSH_OPTS:-}"
    "${ssh_cmd[@]}" -n "${ssh_opts[@]}" "$host" -- "$cmd" </dev/null
}

# flint_remote_script_command SCRIPT ARG...: the command line that runs scripts/SCRIPT on another
# host of the same installation, passing on FLINT_CONF_DIR and (when set) FLINT_PID_DIR and
# FLINT_LOG_DIR as environment assignments.
flint_remote_script_command() {
    local script=$1 cmd var
    shift
    cmd=""
    for var in FLINT_CONF_DIR FLINT_PID_DIR FLINT_LOG_DIR FLINT_STOP_TIMEOUT; do
        if [ -n "${!var:-}" ]; then
            cmd+="$var=$(printf '%q' "${!var}") "
        fi
    done
    cmd+=$(printf '%q' "$FLINT_SCRIPTS_DIR/$script")
    [ $# -gt 0 ] && cmd+=$(printf ' %q' "$@")
    printf '%s\n' "$cmd"
}

# ---- daemons ----------------------------------------------------------------------------------

# flint_pid_alive PID: the process exists and is not a zombie.
flint_pid_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
        [ "$state" != Z ] || return 1
    fi
    return 0
}

# flint_pid_suspended PID: PID is stopped by a signal (state T in /proc/PID/stat).
flint_pid_suspended() {
    local state
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$state" = T ]
}

# flint_pid_is_daemon PID TYPE: PID is a live flint-TYPE process (guards against reused pids).
flint_pid_is_daemon() {
    local pid=$1 type=$2 argv0=""
    flint_pid_alive "$pid" || return 1
    if [ -r "/proc/$pid/cmdline" ]; then
        IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null
    else
        argv0=$(ps -p "$pid" -o args= 2>/dev/null) || return 1
        argv0=${argv0%% *}
    fi
    [ "${argv0##*/}" = "flint-$type" ]
}

# flint_pid_cmdline PID: the process's arguments, one per line.
flint_pid_cmdline() {
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null
}

# flint_rotate FILE: keep up to 5 old copies (FILE.1 newest .. FILE.5 oldest), like Flink.
flint_rotate() {
    local file=$1 i
    [ -f "$file" ] || return 0
    for ((i = 4; i >= 1; i--)); do
        [ -f "$file.$i" ] && mv -f "$file.$i" "$file.$((i + 1))"
    done
    mv -f "$file" "$file.1"
}

# flint_daemon_setup TYPE: sets the variables the daemon functions below share.
flint_daemon_setup() {
    FLINT_DAEMON_TYPE=$1
    FLINT_DAEMON_BIN=$(flint_require_binary "flint-$1") || exit 1
    flint_resolve_dirs
    FLINT_PID_FILE=$FLINT_PID_DIR_EFFECTIVE/flint-$FLINT_IDENT_STRING-$1.pid
    FLINT_LOG_PREFIX=$FLINT_LOG_DIR_EFFECTIVE/flint-$FLINT_IDENT_STRING-$1
}

# Hold an exclusive lock on the pid directory while the pid file is read and rewritten, so that
# daemons started or stopped at the same time on one host do not lose each other's pids.
flint_lock_pid_dir() {
    mkdir -p "$FLINT_PID_DIR_EFFECTIVE" || flint_die "cannot create pid directory $FLINT_PID_DIR_EFFECTIVE"
    exec {FLINT_LOCK_FD}<"$FLINT_PID_DIR_EFFECTIVE"
    if command -v flock >/dev/null 2>&1; then
        flock "$FLINT_LOCK_FD"
    fi
}

flint_unlock_pid_dir() {
    if [ -n "${FLINT_LOCK_FD:-}" ]; then
        exec {FLINT_LOCK_FD}<&-
        FLINT_LOCK_FD=
    fi
}

# flint_live_pids: the pids in the pid file that are still this kind of daemon, oldest first.
flint_live_pids() {
    local pid
    [ -f "$FLINT_PID_FILE" ] || return 0
    while IFS= read -r pid || [ -n "$pid" ]; do
        pid=${pid//[[:space:]]/}
        flint_pid_is_daemon "$pid" "$FLINT_DAEMON_TYPE" && printf '%s\n' "$pid"
    done <"$FLINT_PID_FILE"
}

# flint_write_pids PID...: replace the pid file's content (remove the file when there is none).
flint_write_pids() {
    if [ $# -eq 0 ]; then
        rm -f "$FLINT_PID_FILE"
    else
        printf '%s\n' "$@" >"$FLINT_PID_FILE.tmp.$$" && mv -f "$FLINT_PID_FILE.tmp.$$" "$FLINT_PID_FILE"
    fi
}

# flint_daemon_start ARG...: start the daemon in the background, detached from this shell.
flint_daemon_start() {
    local type=$FLINT_DAEMON_TYPE live=() n pid log out used i
    mkdir -p "$FLINT_LOG_DIR_EFFECTIVE" || flint_die "cannot create log directory $FLINT_LOG_DIR_EFFECTIVE"
    flint_lock_pid_dir
    mapfile -t live < <(flint_live_pids)
    if [ ${#live[@]} -gt 0 ]; then
        echo "[INFO] ${#live[@]} instance(s) of $type are already running on host $FLINT_HOSTNAME."
    fi
    # Instance index n: the smallest one whose log file no running instance writes.
    used=$(for pid in "${live[@]}"; do flint_pid_cmdline "$pid"; done)
    n=0
    while grep -qxF -- "$FLINT_LOG_PREFIX-$n-$FLINT_HOSTNAME.log" <<<"$used"; do
        n=$((n + 1))
    done
    log=$FLINT_LOG_PREFIX-$n-$FLINT_HOSTNAME.log
    out=$FLINT_LOG_PREFIX-$n-$FLINT_HOSTNAME.out
    flint_rotate "$log"
    flint_rotate "$out"

    echo "Starting $type daemon on host $FLINT_HOSTNAME."
    # setsid: the daemon leaves this terminal's process group, so a Ctrl-C or hangup meant for
    # the script does not reach it (nohup covers the hangup when setsid is missing).
    local detach=()
    command -v setsid >/dev/null 2>&1 && detach=(setsid)
    "${detach[@]}" nohup "$FLINT_DAEMON_BIN" --config-dir "$FLINT_CONF_DIR" --log-file "$log" "$@" \
        >"$out" 2>&1 </dev/null {FLINT_LOCK_FD}<&- &
    pid=$!
    # Record the pid at once, so that a script interrupted from here on leaves no daemon that
    # stop cannot find.
    flint_write_pids "${live[@]}" "$pid"
    # A daemon that cannot start (bad configuration, port in use) exits at once: say so here
    # rather than leave a dead pid behind. Give it half a second.
    for ((i = 0; i < 5; i++)); do
        flint_pid_alive "$pid" || break
        sleep 0.1
    done
    if ! flint_pid_alive "$pid"; then
        flint_write_pids "${live[@]}"
        flint_unlock_pid_dir
        echo "Error starting $type daemon on host $FLINT_HOSTNAME; the end of $out:" >&2
        tail -n 5 "$out" | sed 's/^/  /' >&2
        exit 1
    fi
    flint_unlock_pid_dir
}

# flint_daemon_start_foreground ARG...: run the daemon in this process (logs on stderr); its pid
# goes into the pid file so that "stop" works on it too.
flint_daemon_start_foreground() {
    local live=()
    flint_lock_pid_dir
    mapfile -t live < <(flint_live_pids)
    flint_write_pids "${live[@]}" "$$"
    flint_unlock_pid_dir
    exec "$FLINT_DAEMON_BIN" --config-dir "$FLINT_CONF_DIR" "$@"
}

# flint_wait_gone TIMEOUT PID...: wait until every PID has exited; print those still alive.
flint_wait_gone() {
    local timeout=$1 deadline pid alive
    shift
    deadline=$((SECONDS + timeout))
    while :; do
        alive=()
        for pid in "$@"; do
            flint_pid_alive "$pid" && alive+=("$pid")
        done
        if [ ${#alive[@]} -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; then
            break
        fi
        sleep 0.1
    done
    [ ${#alive[@]} -eq 0 ] || printf '%s\n' "${alive[@]}"
}

# flint_daemon_stop_pids PID...: SIGTERM, wait FLINT_STOP_TIMEOUT seconds, then SIGKILL.
flint_daemon_stop_pids() {
    local type=$FLINT_DAEMON_TYPE pid left=()
    for pid in "$@"; do
        echo "Stopping $type daemon (pid: $pid) on host $FLINT_HOSTNAME."
        kill -TERM "$pid" 2>/dev/null || true
        # A stopped (SIGSTOP) daemon must be resumed to see its SIGTERM. Only then: a SIGCONT
        # arriving while a running daemon exits can upset its exit handlers (LeakSanitizer's).
        if flint_pid_suspended "$pid"; then kill -CONT "$pid" 2>/dev/null || true; fi
    done
    mapfile -t left < <(flint_wait_gone "$FLINT_STOP_TIMEOUT" "$@")
    for pid in "${left[@]}"; do
        echo "The $type daemon (pid: $pid) did not stop within $FLINT_STOP_TIMEOUT s; killing it (SIGKILL)."
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ ${#left[@]} -gt 0 ]; then
        mapfile -t left < <(flint_wait_gone 5 "${left[@]}")
        [ ${#left[@]} -eq 0 ] || flint_die "could not stop $type daemon(s): ${left[*]}"
    fi
}

# flint_daemon_stop: stop the newest running instance.
flint_daemon_stop() {
    local live=() newest
    flint_lock_pid_dir
    mapfile -t live < <(flint_live_pids)
    if [ ${#live[@]} -eq 0 ]; then
        flint_write_pids
        flint_unlock_pid_dir
        echo "No $FLINT_DAEMON_TYPE daemon to stop on host $FLINT_HOSTNAME."
        return 0
    fi
    newest=${live[${#live[@]} - 1]}
    unset 'live[${#live[@]}-1]'
    flint_daemon_stop_pids "$newest"
    flint_write_pids "${live[@]}"
    flint_unlock_pid_dir
}

# flint_daemon_stop_all: stop every running instance.
flint_daemon_stop_all() {
    local live=()
    flint_lock_pid_dir
    mapfile -t live < <(flint_live_pids)
    if [ ${#live[@]} -eq 0 ]; then
        flint_write_pids
        flint_unlock_pid_dir
        echo "No $FLINT_DAEMON_TYPE daemon to stop on host $FLINT_HOSTNAME."
        return 0
    fi
    flint_daemon_stop_pids "${live[@]}"
    flint_write_pids
    flint_unlock_pid_dir
}

# flint_daemon_main TYPE VERB ARG...: the body of jobmanager.sh and taskmanager.sh.
flint_daemon_main() {
    local type=$1 usage
    shift
    usage="usage: $(basename "$0") start|start-foreground [-D key=value]... | stop | stop-all"
    if [ $# -eq 0 ]; then
        echo "$usage" >&2
        exit 2
    fi
    local verb=$1
    shift
    case $verb in
        start | start-foreground | stop | stop-all) ;;
        -h | --help | help) echo "$usage"; exit 0 ;;
        *) echo "$(basename "$0"): unknown command '$verb'" >&2; echo "$usage" >&2; exit 2 ;;
    esac
    if { [ "$verb" = stop ] || [ "$verb" = stop-all ]; } && [ $# -gt 0 ]; then
        echo "$(basename "$0"): '$verb' takes no arguments" >&2
        exit 2
    fi
    flint_daemon_setup "$type"
    case $verb in
        start) flint_daemon_start "$@" ;;
        start-foreground) flint_daemon_start_foreground "$@" ;;
        stop) flint_daemon_stop ;;
        stop-all) flint_daemon_stop_all ;;
    esac
}

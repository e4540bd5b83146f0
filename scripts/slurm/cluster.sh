#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this host, everything (config, munge key and socket,
# state, spool, logs, pids) inside one directory.  See scripts/slurm/README.md.
#
#   scripts/slurm/cluster.sh start  DIR   # start (or reuse) munged + slurmctld + slurmd; prints the
#                                          # client environment as `export ...` lines on stdout
#   scripts/slurm/cluster.sh stop   DIR   # cancel our jobs, stop the daemons started from DIR
#   scripts/slurm/cluster.sh status DIR   # exit 0 when the cluster in DIR is up and the node usable
#   scripts/slurm/cluster.sh env    DIR   # print the client environment again
#
# Needs the Debian packages slurm-wlm and munge (scripts/install-deps.sh installs them).  Works as
# root (daemons as root, any user's jobs) or as any other user (daemons as that user, that user's
# jobs; no sudo).  Status messages go to stderr; stdout carries only the `export` lines.
# Tunables (environment, read by `start`): SLURM_CLUSTER_TIMEOUT (s to wait for the node, default
# 30), SLURM_CLUSTER_MIN_JOB_AGE (s a finished job stays visible, 300), SLURM_CLUSTER_KILL_WAIT (s
# between SIGTERM and SIGKILL, 5), SLURM_CLUSTER_CRED_EXPIRE (s, >= 5, delays a requeued job's
# restart, 5), SLURM_CLUSTER_PORT (first TCP port tried, 16817).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
case "$cmd" in
    start) mkdir -p "$2" ;;
    stop|status|env) [ -d "$2" ] || { echo "cluster.sh: no cluster directory $2" >&2; [ "$cmd" = stop ]; exit; } ;;
    *) usage ;;
esac
DIR=$(cd "$2" && pwd -P)
case "$DIR" in *[[:space:]]*) echo "cluster.sh: error: DIR must not contain white space: $DIR" >&2; exit 1 ;; esac

TIMEOUT=${SLURM_CLUSTER_TIMEOUT:-30}
MIN_JOB_AGE=${SLURM_CLUSTER_MIN_JOB_AGE:-300}
KILL_WAIT=${SLURM_CLUSTER_KILL_WAIT:-5}
FIRST_PORT=${SLURM_CLUSTER_PORT:-16817}
CRED_EXPIRE=${SLURM_CLUSTER_CRED_EXPIRE:-5}

CONF=$DIR/slurm.conf
MUNGE_DIR=$DIR/munge
SOCKET=$MUNGE_DIR/munge.socket
RUN=$DIR/run
LOGS=$DIR/log
# Every daemon we start carries this in its environment: pid files are trusted only when the process
# has it, and `stop` never touches anybody else's processes.
MARKER="DECOUPLED_SLURM_CLUSTER=$DIR"

say() { echo "cluster.sh: $*" >&2; }
die() { echo "cluster.sh: error: $*" >&2; exit 1; }

# --- user ---------------------------------------------------------------------------------------
# As root the daemons run as root and jobs of any user can run.  As another user every daemon runs
# as that user (SlurmUser = SlurmdUser = that user, unprivileged ports): a one-user cluster, no sudo
# needed, and only that user's jobs run.
ME=$(id -un)

need_tools() {
    local missing=()
    for t in munged slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
        command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: install the Debian packages slurm-wlm and munge (scripts/install-deps.sh slurm-wlm munge)"
}
export PATH="$PATH:/usr/sbin:/sbin"

# --- processes ----------------------------------------------------------------------------------
# pid_of NAME: the pid in RUN/NAME.pid if that process is alive and is the daemon NAME.
pid_of() {
    local f=$RUN/$1.pid pid comm
    [ -r "$f" ] || return 1
    pid=$(tr -dc 0-9 <"$f")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    # slurmd/slurmctld are alternatives to slurmd-wlm/slurmctld-wlm on Debian.
    case "$comm" in "$1"|"$1"-wlm) ;; *) return 1 ;; esac
    # ...and it was started from this directory.
    grep -qsxzF -- "$MARKER" "/proc/$pid/environ" || return 1
    echo "$pid"
}

# leftover_pids: the slurmstepd processes of our slurmd (they outlive it; they run in LOGS and hold
# LOGS/slurmd.log open, but do not inherit our environment) with all their descendants (the jobs),
# and anything else still carrying MARKER.
leftover_pids() {
    local p f fd seeds=() all
    for f in /proc/[0-9]*/comm; do
        [ "$(cat "$f" 2>/dev/null)" = slurmstepd ] || continue
        p=${f#/proc/}; p=${p%/comm}
        if [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$LOGS" ]; then seeds+=("$p"); continue; fi
        for fd in /proc/"$p"/fd/*; do
            [ "$(readlink "$fd" 2>/dev/null)" = "$LOGS/slurmd.log" ] && { seeds+=("$p"); break; }
        done
    done
    for f in $(grep -lsxzF -- "$MARKER" /proc/[0-9]*/environ 2>/dev/null || true); do
        p=${f#/proc/}; p=${p%/environ}
        [ "$p" = "$$" ] || seeds+=("$p")
    done
    [ ${#seeds[@]} -gt 0 ] || return 0
    # Add descendants: repeat over the (pid, ppid) table until nothing new is found.
    all=" ${seeds[*]} "
    local table changed=1
    table=$(proc_table)
    while [ $changed -eq 1 ]; do
        changed=0
        while read -r p pp; do
            case "$all" in *" $pp "*) case "$all" in *" $p "*) ;; *) all="$all$p "; changed=1 ;; esac ;; esac
        done <<<"$table"
    done
    echo "$all"
}

# proc_table: "pid ppid" lines from /proc (procps may not be installed).
proc_table() {
    local f st
    for f in /proc/[0-9]*/stat; do
        st=$(cat "$f" 2>/dev/null) || continue
        st=${st##*) }   # after "pid (comm) ": "state ppid ..."
        f=${f#/proc/}
        # shellcheck disable=SC2086
        set -- $st
        echo "${f%/stat} $2"
    done
}

wait_gone() { # wait_gone SECONDS PID...: 0 when all exited
    local deadline=$((SECONDS + $1)) p alive; shift
    while :; do
        alive=()
        for p in "$@"; do [ -d "/proc/$p" ] && alive+=("$p"); done
        [ ${#alive[@]} -eq 0 ] && return 0
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

# stop_pids GRACE LABEL PID...: SIGTERM, wait up to GRACE seconds, then SIGKILL.
stop_pids() {
    local grace=$1 label=$2; shift 2
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    if ! wait_gone "$grace" "$@"; then
        say "$label did not exit after SIGTERM, sending SIGKILL"
        kill -KILL "$@" 2>/dev/null || true
        wait_gone 5 "$@" || die "$label (pids $*) survived SIGKILL"
    fi
}

# --- configuration -------------------------------------------------------------------------------
port_busy() { # port_busy PORT: some socket on this host listens on or is bound to PORT
    local hex
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v h=":$hex" 'NR>1 && substr($2, length($2)-4) == h {f=1} END {exit !f}'
}

pick_ports() {
    local p=$FIRST_PORT
    while [ "$p" -lt $((FIRST_PORT + 200)) ]; do
        if ! port_busy "$p" && ! port_busy $((p + 1)); then echo "$p $((p + 1))"; return; fi
        p=$((p + 2))
    done
    die "no free pair of TCP ports in $FIRST_PORT..$((FIRST_PORT + 200))"
}

write_config() {
    local node ctl_port d_port hw
    node=$(hostname -s)
    read -r ctl_port d_port < <(pick_ports)
    # The hardware line slurmd itself detects, e.g.
    # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    hw=$(slurmd -C 2>/dev/null | sed -n 's/^NodeName=[^ ]* //p' | head -n1)
    [ -n "$hw" ] || hw="CPUs=$(nproc)"
    mkdir -p "$DIR/state" "$DIR/spool" "$LOGS" "$RUN" "$DIR/tmp"
    : >"$DIR/plugstack.conf"
    cat >"$CONF" <<EOF
# Generated by scripts/slurm/cluster.sh for a one-node test cluster; rewritten at every start.
ClusterName=decoupled
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=$ME
SlurmdUser=$ME
AuthType=auth/munge
CredType=cred/munge
# Our own munged.  cred_expire also delays the restart of a requeued job (default 120 s).
AuthInfo=socket=$SOCKET,cred_expire=$CRED_EXPIRE
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
PlugStackConfig=$DIR/plugstack.conf
TmpFS=$DIR/tmp
# No cgroups (containers): processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
# No slurmdbd: no sacct.  Finished jobs stay visible to scontrol/squeue for MinJobAge seconds and
# every job end (including each requeue) is appended to the jobcomp file.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.txt
SchedulerType=sched/backfill
# A tiny cluster: run the scheduling loops often, so that requeued or throttled tasks start at once.
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
KillWait=$KILL_WAIT
InactiveLimit=0
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node $hw State=UNKNOWN
# Preemption by partition: a job in "urgent" requeues the jobs of "debug" it needs the CPUs of.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$node MaxTime=INFINITE State=UP PriorityTier=2
EOF
    echo "$node" >"$RUN/node"
}

make_munge_key() {
    local key=$MUNGE_DIR/munge.key
    mkdir -p "$MUNGE_DIR"
    chmod 0755 "$MUNGE_DIR"  # the socket must be reachable by every user; munged wants no group/other write
    [ -s "$key" ] && return 0
    if command -v mungekey >/dev/null || [ -x /usr/sbin/mungekey ]; then
        mungekey --create --keyfile="$key" >/dev/null
    else
        dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$key"
}

# --- client environment --------------------------------------------------------------------------
print_env() {
    echo "export SLURM_CONF=$CONF"
    echo "export DECOUPLED_SLURM_DIR=$DIR"
}

# --- logs ----------------------------------------------------------------------------------------
show_logs() {
    local f
    for f in "$MUNGE_DIR/munged.log" "$LOGS/slurmctld.log" "$LOGS/slurmd.log"; do
        [ -e "$f" ] || continue
        echo "----- tail of $f" >&2
        tail -n 25 "$f" >&2 || true
    done
}

# failed_start MESSAGE: show the logs, stop whatever this start got running, and fail.
failed_start() {
    show_logs
    say "stopping what was started"
    stop >/dev/null 2>&1 || true
    die "$*"
}

# --- readiness -----------------------------------------------------------------------------------
node_state() { SLURM_CONF=$CONF sinfo -h -N -n "$(cat "$RUN/node")" -o '%T' 2>/dev/null | head -n1; }
ctld_up() { SLURM_CONF=$CONF scontrol ping 2>/dev/null | grep -q 'is UP'; }

wait_ready() {
    local deadline=$((SECONDS + TIMEOUT)) state=""
    while :; do
        for d in munged slurmctld slurmd; do
            pid_of $d >/dev/null || failed_start "$d is not running (see the logs above)"
        done
        if ctld_up; then
            state=$(node_state)
            case "$state" in
                idle|mixed|allocated|completing) return 0 ;;
                drain*|down*|fail*|inval*)
                    SLURM_CONF=$CONF scontrol show node "$(cat "$RUN/node")" >&2 || true
                    failed_start "the node is $state" ;;
            esac
        fi
        if [ $SECONDS -ge $deadline ]; then
            failed_start "the cluster in $DIR was not ready after ${TIMEOUT}s (controller: $(ctld_up && echo up || echo down), node: ${state:-unknown})"
        fi
        sleep 0.3
    done
}

# --- commands ------------------------------------------------------------------------------------
start() {
    need_tools
    local running=0 d
    for d in munged slurmctld slurmd; do pid_of $d >/dev/null && running=$((running + 1)); done
    if [ $running -eq 3 ]; then
        say "reusing the cluster running in $DIR"
        wait_ready
        print_env
        return 0
    fi
    [ $running -gt 0 ] && { say "a partial cluster is running in $DIR: stopping it first"; stop; }

    [ ${#SOCKET} -lt 100 ] || die "DIR is too long for a Unix socket path ($SOCKET): use a shorter DIR"
    make_munge_key
    write_config
    rm -f "$SOCKET" "$SOCKET.lock" "$RUN"/*.pid

    say "starting munged, slurmctld, slurmd in $DIR"
    # munged refuses to run as root without --force; its key, socket, pid, log and seed live in DIR.
    local force=()
    [ "$(id -u)" -eq 0 ] && force=(--force)
    env "$MARKER" munged "${force[@]}" \
        --socket="$SOCKET" --key-file="$MUNGE_DIR/munge.key" --pid-file="$RUN/munged.pid" \
        --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
        || failed_start "munged failed to start"
    env "$MARKER" SLURM_CONF="$CONF" slurmctld -f "$CONF" \
        || failed_start "slurmctld failed to start"
    env "$MARKER" SLURM_CONF="$CONF" slurmd -f "$CONF" -N "$(cat "$RUN/node")" \
        || failed_start "slurmd failed to start"
    # The daemons write their pid files after forking: give them a moment.
    local deadline=$((SECONDS + 10))
    for d in munged slurmctld slurmd; do
        until pid_of $d >/dev/null; do
            [ $SECONDS -lt $deadline ] || failed_start "$d did not come up"
            sleep 0.1
        done
    done
    wait_ready
    say "cluster up: $(SLURM_CONF=$CONF sinfo -h -o '%P %c cpus %T' | tr '\n' ' ')"
    print_env
}

stop() {
    local pids p d
    if pid_of slurmctld >/dev/null; then
        # Cancel whatever is still queued or running, so that no job survives the daemons.
        local jobs
        jobs=$(SLURM_CONF=$CONF squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')
        if [ -n "${jobs// /}" ]; then
            say "cancelling jobs $jobs"
            # shellcheck disable=SC2086
            SLURM_CONF=$CONF scancel $jobs 2>/dev/null || true
            local deadline=$((SECONDS + KILL_WAIT + 10))
            while [ -n "$(SLURM_CONF=$CONF squeue -h -t R,CG,S -o '%A' 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do
                sleep 0.3
            done
        fi
    fi
    # The daemons take a second or two each to shut down: stop them together.
    pids=()
    for d in slurmd slurmctld munged; do p=$(pid_of $d) && pids+=("$p"); done
    [ ${#pids[@]} -eq 0 ] || stop_pids 15 "the daemons" "${pids[@]}"
    # slurmstepd (and through it any job) outlives slurmd: end those of our slurmd.
    read -ra pids <<<"$(leftover_pids)"
    if [ ${#pids[@]} -gt 0 ]; then
        say "ending leftover processes ${pids[*]}"
        stop_pids 3 "leftover processes" "${pids[@]}"
    fi
    rm -f "$RUN"/*.pid
    say "stopped the cluster in $DIR"
}

status() {
    local d p rc=0
    for d in munged slurmctld slurmd; do
        if p=$(pid_of $d); then echo "$d: running (pid $p)"; else echo "$d: not running"; rc=1; fi
    done
    if [ $rc -eq 0 ]; then
        SLURM_CONF=$CONF scontrol ping || rc=1
        SLURM_CONF=$CONF sinfo -N -o '%N %P %c %T' || rc=1
        SLURM_CONF=$CONF squeue -o '%.12i %.9P %.12j %.8T %.10M %R' || rc=1
    fi
    return $rc
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) print_env ;;
    *) usage ;;
esac

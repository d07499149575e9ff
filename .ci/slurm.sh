#!/usr/bin/env bash
# Start a throwaway one-node SLURM (munged, slurmctld, slurmd) on loopback for the tests marked
# `slurm`. Sourced by .ci/run beside .ci/postgres.sh. Exports SLURM_CONF and
# BASSET_HPO_TEST_SLURM (the partition) when the node is idle; otherwise prints why and exports
# BASSET_HPO_TEST_SLURM_SKIP (the tests skip with that reason). Never fails the CI by itself:
# only the tests judge. Stops the daemons on exit.
set -euo pipefail

slurm_dir=$(mktemp -d /tmp/basset-ci-slurm.XXXXXX)
chmod 755 "$slurm_dir"  # munged runs as munge
slurm_pids=()

slurm_stop() {
    local pid
    if [ -n "${SLURM_CONF:-}" ] && [ "${#slurm_pids[@]}" -gt 0 ]; then
        # Every job of this private cluster is a test's: cancel them so no job step outlives it.
        scancel --user="$(id -un)" 2>/dev/null || true
        slurm_wait 20 bash -c '[ -z "$(squeue -h -o %A)" ]' || true
    fi
    for pid in "${slurm_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${slurm_pids[@]}"; do
        slurm_wait 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$slurm_dir"
}

# Start a daemon that stays in the foreground (-D / -F), in the background, and remember its pid.
slurm_daemon() {
    "$@" >>"$slurm_dir/$(basename "$1").out" 2>&1 &
    slurm_pids+=($!)
}

# Wait up to $1 seconds for the command after it to succeed; its status 3 gives up at once.
slurm_wait() {
    local seconds=$1 status; shift
    for _ in $(seq $((seconds * 5))); do
        status=0; "$@" >/dev/null 2>&1 || status=$?
        [ "$status" = 0 ] && return 0
        [ "$status" = 3 ] && return 1
        sleep 0.2
    done
    return 1
}

# The node $1 is idle (status 3 when a daemon has died: no point waiting).
slurm_node_idle() {
    local pid
    for pid in "${slurm_pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 3; done
    sinfo -h -n "$1" -o %T | grep -qx idle
}

slurm_start() {
    local tool missing=""
    for tool in munged slurmctld slurmd sbatch squeue sinfo scancel; do
        command -v "$tool" >/dev/null || missing=yes
    done
    if [ -n "$missing" ]; then
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; } \
            || { echo "apt-get could not install slurm-wlm and munge"; return 1; }
    fi
    local host munge=$slurm_dir/munge
    host=$(hostname -s)
    mkdir -p "$munge" "$slurm_dir/state" "$slurm_dir/spool"
    # A private munge key and socket: nothing of the machine's own munge is used or changed.
    dd if=/dev/urandom of="$munge/munge.key" bs=1024 count=1 status=none
    chmod 700 "$munge" && chmod 400 "$munge/munge.key" && chown -R munge:munge "$munge"
    slurm_daemon runuser -u munge -- munged -F --force --key-file="$munge/munge.key" \
        --socket="$munge/socket" --pid-file="$munge/pid" --seed-file="$munge/seed" \
        --log-file="$munge/log"
    slurm_wait 10 test -S "$munge/socket" || { echo "munged did not start: $(tail -n 3 "$munge/log" "$slurm_dir/runuser.out" 2>&1)"; return 1; }
    chmod 755 "$munge"  # clients (sbatch, slurmd) reach the socket; the key stays 0400

    cat >"$slurm_dir/slurm.conf" <<EOF
ClusterName=basset-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SlurmdPort=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge/socket
StateSaveLocation=$slurm_dir/state
SlurmdSpoolDir=$slurm_dir/spool
SlurmctldPidFile=$slurm_dir/slurmctld.pid
SlurmdPidFile=$slurm_dir/slurmd.pid
SlurmctldLogFile=$slurm_dir/slurmctld.log
SlurmdLogFile=$slurm_dir/slurmd.log
# No cgroups (a container may not delegate them): processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$slurm_dir/slurm.conf
    slurm_daemon slurmctld -D -i -f "$SLURM_CONF"
    slurm_daemon slurmd -D -f "$SLURM_CONF"
    if ! slurm_wait 30 slurm_node_idle "$host"; then
        echo "the SLURM node did not become idle: $(sinfo -h -o '%N %T %E' 2>&1 | head -n 1);" \
            "$(tail -n 2 "$slurm_dir/slurmctld.log" "$slurm_dir/slurmd.log" "$slurm_dir"/*.out 2>&1 | tr '\n' ' ')"
        return 1
    fi
}

previous_exit_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
trap "slurm_stop; $previous_exit_trap" EXIT
if slurm_start >"$slurm_dir/start.out" 2>&1; then
    export BASSET_HPO_TEST_SLURM=debug
    echo "SLURM for the tests: one node ($(hostname -s), 2 CPUs), partition debug, $SLURM_CONF"
else
    unset SLURM_CONF  # no client may wait for a controller that is not there
    export BASSET_HPO_TEST_SLURM_SKIP="SLURM could not start: $(tr '\n' ' ' <"$slurm_dir/start.out")"
    echo "$BASSET_HPO_TEST_SLURM_SKIP"
fi

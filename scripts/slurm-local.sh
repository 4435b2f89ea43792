#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages, for trying `emolab run --slurm`
# and `emolab sweep --slurm` without a cluster (and for the live-Slurm test in CI).
#
#   scripts/slurm-local.sh install   # apt-get install slurmctld slurmd slurm-client munge (root)
#   scripts/slurm-local.sh start     # write the config, start munged, slurmctld, slurmd; wait for idle
#   scripts/slurm-local.sh status    # sinfo
#   scripts/slurm-local.sh stop      # stop the daemons by their pid files
#
# No systemd is assumed (containers, CI): the daemons are started by hand. There is no slurmdbd,
# so `sacct` has no data; emolab reads job states from `squeue` and `scontrol`. The node gets
# every CPU and 90% of the memory of this machine, in one partition `local`.
#
# The config is written to /etc/slurm/slurm.conf (where sbatch, squeue and scontrol look) unless
# a slurm.conf that this script did not write is already there: then it stops, leaving a real
# cluster's configuration alone. State and logs go to $SLURM_LOCAL_DIR (default /tmp/emolab-slurm).
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/emolab-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by emolab scripts/slurm-local.sh"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "slurm-local: $1 needs root (the daemons run as root here)" >&2
        exit 1
    fi
}

install() {
    need_root install
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        echo "slurm-local: slurmctld, slurmd, slurm-client and munge are installed"
        return
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
    echo "slurm-local: installed $(slurmctld -V)"
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    if [ -f "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
        echo "slurm-local: $CONF exists and was not written by this script; not touching it" >&2
        exit 1
    fi
    mkdir -p /etc/slurm "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
$MARK
ClusterName=emolab-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
MinJobAge=600
MaxArraySize=10001
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((mem / cpus))
EOF
}

start_munge() {
    if [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
        return
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    # As the munge user (munged refuses to run as root by default).
    if command -v runuser >/dev/null; then
        runuser -u munge -- munged
    else
        su -s /bin/sh munge -c munged
    fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    need_root start
    command -v slurmctld >/dev/null || { echo "slurm-local: Slurm is not installed (run: $0 install)" >&2; exit 1; }
    write_conf
    start_munge
    alive "$DIR/slurmctld.pid" || slurmctld -c
    alive "$DIR/slurmd.pid" || slurmd -c
    local host
    host=$(hostname -s)
    for _ in $(seq 1 60); do
        state=$(sinfo -h -n "$host" -o '%T' 2>/dev/null || true)
        case "$state" in
            idle* | mixed* | allocated*)
                echo "slurm-local: node $host is $state (partition local); stop with: $0 stop"
                return
                ;;
        esac
        sleep 1
    done
    echo "slurm-local: node $host did not become idle in 60 s (state: ${state:-none}); logs in $DIR/log" >&2
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    exit 1
}

stop() {
    for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" /run/munge/munged.pid; do
        if alive "$f"; then
            pid=$(cat "$f")
            kill "$pid"
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        fi
    done
    echo "slurm-local: stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *)
        echo "usage: $0 install|start|status|stop" >&2
        exit 2
        ;;
esac

#!/bin/sh
# slurm_local.sh - a throwaway single-node Slurm cluster from Debian 12's packages
# (slurmctld + slurmd from slurm-wlm, munged from munge), for the tests and the
# benchmark, the way the device tests start their own sshd.
#
#   slurm_local.sh start DIR   starts munged, slurmctld and slurmd with their
#                              key, socket, config, state, spool and logs all in
#                              DIR (created), on free ports; prints
#                              SLURM_CONF=DIR/slurm.conf once the node is idle
#   slurm_local.sh stop DIR    cancels every job, stops the daemons and kills any
#                              job step left over; nothing keeps running
#
# What is configured around, and why (a container, root, no systemd, no database):
#  - munged runs in the foreground with its own key and socket in DIR (--force:
#    it refuses root otherwise); slurm finds the socket through AuthInfo=socket=.
#  - ProctrackType=proctrack/linuxproc and TaskPlugin=task/none: the cgroup
#    plugins need a delegated cgroup hierarchy this machine does not give.
#  - AccountingStorageType=accounting_storage/none: slurmdbd needs a MySQL/MariaDB
#    server, so there is no `sacct` here.  starhil reads job states with
#    `squeue --json --states=all` (finished jobs stay in the controller for
#    MinJobAge seconds, one hour here) and falls back to `sacct` only for jobs
#    the controller has forgotten, as on a real cluster with accounting.
#  - JobAcctGatherType=jobacct_gather/none, MpiDefault=none (no PMIx library).
#  - SlurmUser=root: the daemons and the jobs run as the user running this.
#  - SchedulerParameters=batch_sched_delay=0: batch jobs start at once instead
#    of up to 3 s later (Slurm's default), which keeps the tests short.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# kills (SIGKILL) every process that has DIR in its command line or an open file
# under DIR: job shells (DIR/spool/.../slurm_script) and slurmstepd (its log)
kill_leftovers() {
    pids=$( { grep -lF "$dir/" /proc/[0-9]*/cmdline 2>/dev/null || true; } | cut -d/ -f3)
    for c in $( { grep -l '^slurmstepd' /proc/[0-9]*/comm 2>/dev/null || true; } | cut -d/ -f3); do
        ls -l "/proc/$c/fd" 2>/dev/null | grep -qF "$dir/" && pids="$pids $c"
    done
    for pid in $pids; do
        [ "$pid" = "$$" ] || kill -9 "$pid" 2>/dev/null || true
    done
}

stop_pidfile() {
    f=$1
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 10 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
}

case "$cmd" in
start)
    for b in munged mungekey slurmctld slurmd sbatch squeue; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || {
            echo "slurm_local: $b not installed (Debian packages slurmctld slurmd slurm-client munge)" >&2; exit 3; }
    done
    PATH="$PATH:/usr/sbin"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
    chmod 700 "$dir/munge"
    chmod 755 "$dir"
    mungekey --create --keyfile="$dir/munge/munge.key" --bits=1024
    munged -F -f --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" \
        --log-file="$dir/munge/munged.log" --pid-file="$dir/munge/munged.pid" \
        --seed-file="$dir/munge/munged.seed" >"$dir/log/munged.out" 2>&1 &
    echo $! >"$dir/munged.run"
    i=0
    while [ ! -S "$dir/munge/munge.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$dir/munge/munge.sock" ] || { echo "slurm_local: munged did not start:" >&2; cat "$dir/log/munged.out" >&2; exit 1; }
    ctld_port=$(free_port)
    d_port=$(free_port)
    while [ "$d_port" = "$ctld_port" ]; do d_port=$(free_port); done
    cat >"$dir/slurm.conf" <<EOF
# written by tests/helpers/slurm_local.sh (see there why each plugin is chosen)
ClusterName=starhiltest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
SchedulerParameters=batch_sched_delay=0
MessageTimeout=20
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 &
    echo $! >"$dir/slurmctld.run"
    slurmd -D -N localhost -f "$dir/slurm.conf" >"$dir/log/slurmd.out" 2>&1 &
    echo $! >"$dir/slurmd.run"
    i=0
    state=""
    while [ $i -lt 300 ]; do
        state=$(sinfo -h -o %T 2>/dev/null || true)
        [ "$state" = "idle" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    if [ "$state" != "idle" ]; then
        echo "slurm_local: node not idle after 30 s (state '$state'); logs:" >&2
        tail -n 20 "$dir/log/slurmctld.out" "$dir/log/slurmd.out" >&2 || true
        "$0" stop "$dir"
        exit 1
    fi
    echo "SLURM_CONF=$dir/slurm.conf"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    PATH="$PATH:/usr/sbin"
    if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.run" ]; then
        SLURM_CONF="$dir/slurm.conf" scancel --quiet --user="$(id -un)" 2>/dev/null || true
    fi
    stop_pidfile "$dir/slurmd.run"
    stop_pidfile "$dir/slurmctld.run"
    kill_leftovers
    stop_pidfile "$dir/munged.run"
    kill_leftovers
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A private single-node Slurm cluster from Debian's packages (munge, slurmctld, slurmd,
# slurm-client), for trying tools/slurm/ out and for its test (tests/slurm_test.sh):
#
#   tools/slurm/local-cluster.sh start DIR    # prints: export SLURM_CONF=DIR/slurm.conf
#   tools/slurm/local-cluster.sh stop DIR
#
# Everything (config, munge key and socket, state, spool, logs, pids) lives in DIR; the ports are
# free ones picked at start; the node is this machine with all its CPUs. The daemons run as root
# (as slurmd must to run jobs); `start` fails with one line, exit 3, where they cannot start.
# `stop` ends exactly the daemons `start` started, by their pids.
set -euo pipefail
cmd=${1:-} dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: local-cluster.sh start|stop DIR" >&2
  exit 2
fi

stop() {
  for d in slurmd slurmctld munged; do
    local pid_file=$dir/run/$d.pid
    [ -f "$pid_file" ] || continue
    local pid
    pid=$(cat "$pid_file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pid_file"
  done
}

cannot() {
  echo "local-cluster: cannot start: $*" >&2
  stop
  exit 3
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: local-cluster.sh start|stop DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || cannot "the daemons run as root (this is $(id -un))"
for bin in munged slurmctld slurmd sbatch sinfo scontrol; do
  command -v "$bin" >/dev/null || cannot "no $bin (Debian: munge slurmctld slurmd slurm-client)"
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir"/{state,spool,log,run,munge}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
[ -f "$dir/munge/munge.key" ] || { dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null; chmod 400 "$dir/munge/munge.key"; }
cat >"$dir/slurm.conf" <<CONF
ClusterName=fervid-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" \
  --force || cannot "munged did not start ($dir/log/munged.log)"
slurmctld -f "$SLURM_CONF" || cannot "slurmctld did not start ($dir/log/slurmctld.log)"
slurmd -f "$SLURM_CONF" || cannot "slurmd did not start ($dir/log/slurmd.log)"
for _ in $(seq 100); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.2
done
cannot "the node did not come up ($dir/log/slurmctld.log, $dir/log/slurmd.log)"

#!/usr/bin/env bash
# A real single-node Slurm on this machine, for tests and for trying the sbatch scripts:
#   cluster/slurm/local.sh up     installs munge and Slurm if missing, writes a minimal
#                                 configuration under a private state folder, starts munged,
#                                 slurmctld and slurmd, and waits until the node is idle
#   cluster/slurm/local.sh down   stops them and removes everything `up` made
#   cluster/slurm/local.sh status sinfo and squeue
# Needs root. The configuration lives in FAIRTUNE_SLURM_STATE (default /tmp/fairtune-slurm);
# /etc/slurm/slurm.conf and /etc/munge/munge.key are written only if absent, and removed by
# `down` only if `up` wrote them.
set -euo pipefail
state=${FAIRTUNE_SLURM_STATE:-/tmp/fairtune-slurm}
cpus=${FAIRTUNE_SLURM_CPUS:-$(nproc)}
host=$(hostname)

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null && return
  echo "installing munge and Slurm (slurmctld slurmd slurm-client munge)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

# Whether the daemon whose pid file is $1 runs (a killed one may linger a moment as a zombie).
alive() {
  [ -s "$1" ] || return 1
  local status
  status=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
  [ -n "$status" ] && [ "${status#Z}" = "$status" ]
}

up() {
  [ "$(id -u)" -eq 0 ] || { echo "local.sh: needs root (it starts munged, slurmctld and slurmd)" >&2; exit 1; }
  if alive "$state/slurmctld.pid"; then
    echo "Slurm is already up (state in $state)"
    return
  fi
  install
  # A controller that died without `down` (a killed test run) leaves its saved jobs behind; a
  # new controller would recover them as still running on the node and hold its CPUs until
  # the node-failure timeout. Start from empty job state (what `made` lists is kept for `down`).
  if alive "$state/slurmd.pid"; then
    kill "$(cat "$state/slurmd.pid")" 2>/dev/null || true
    sleep 1
  fi
  if [ -d "$state/spool" ]; then
    echo "removing the saved state of a Slurm that was not stopped with \`down\`"
    rm -rf "$state/spool" "$state/run"
  fi
  mkdir -p "$state"/{spool/ctld,spool/d,log,run}
  touch "$state/made"
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    head -c 1024 /dev/urandom >/etc/munge/munge.key
    echo /etc/munge/munge.key >>"$state/made"
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if ! pgrep -x munged >/dev/null; then
    if id munge >/dev/null 2>&1; then su -s /bin/sh munge -c munged 2>/dev/null || munged --force; else munged --force; fi
    echo munged >>"$state/made"
  fi
  for _ in $(seq 100); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  mkdir -p /etc/slurm
  if [ ! -e /etc/slurm/slurm.conf ]; then
    cat >/etc/slurm/slurm.conf <<EOF
ClusterName=fairtune
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
JobRequeue=1
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    echo /etc/slurm/slurm.conf >>"$state/made"
  fi
  slurmctld -D -c >"$state/log/slurmctld.out" 2>&1 &
  echo $! >"$state/slurmctld.pid"
  slurmd -D >"$state/log/slurmd.out" 2>&1 &
  echo $! >"$state/slurmd.pid"
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^idle'; then
      echo "Slurm is up: node $host, $cpus CPUs, partition local (state in $state)"
      return
    fi
    sleep 1
  done
  echo "local.sh: the node did not become idle within 60 s; logs in $state/log" >&2
  tail -n 5 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
  exit 1
}

down() {
  [ -d "$state" ] || { echo "nothing to stop (no $state)"; return; }
  scancel --user=root >/dev/null 2>&1 || true
  for daemon in slurmd slurmctld; do
    if [ -s "$state/$daemon.pid" ]; then kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true; fi
  done
  sleep 1
  for daemon in slurmd slurmctld; do
    if [ -s "$state/$daemon.pid" ]; then kill -9 "$(cat "$state/$daemon.pid")" 2>/dev/null || true; fi
  done
  if [ -f "$state/made" ]; then
    while read -r item; do
      case "$item" in
        munged)
          pkill -x munged 2>/dev/null || true
          for _ in $(seq 50); do pgrep -x munged >/dev/null || break; sleep 0.1; done ;;
        /*) rm -f "$item" ;;
      esac
    done <"$state/made"
  fi
  rm -rf "$state"
  echo "Slurm stopped; $state removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) sinfo && squeue ;;
  *) echo "usage: cluster/slurm/local.sh up|down|status" >&2; exit 2 ;;
esac

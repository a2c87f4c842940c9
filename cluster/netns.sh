#!/usr/bin/env bash
# A local multi-host harness: N network namespaces ("hosts" ft-h1..ft-hN, addresses
# 198.18.0.1..N from the benchmarking range) joined by a bridge in namespace ft-sw, and mpirun
# across them over TCP. Traffic stays inside these namespaces.
#
#   cluster/netns.sh up [N]                 create N hosts (default 2)
#   cluster/netns.sh run NP -- COMMAND...   mpirun -np NP COMMAND, one rank per host, over TCP
#   cluster/netns.sh down                   remove every namespace this script made
#
# Needs root (CAP_NET_ADMIN) and iproute2.
set -euo pipefail

prefix=ft
subnet=198.18.0
state=${FAIRTUNE_NETNS_STATE:-/tmp/fairtune-netns}

hosts() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-h[0-9]+$" | sort -V; }

up() {
  local n=${1:-2}
  down >/dev/null 2>&1 || true
  ip netns add ${prefix}-sw
  ip -n ${prefix}-sw link add ${prefix}br type bridge
  ip -n ${prefix}-sw link set ${prefix}br up
  ip -n ${prefix}-sw link set lo up
  for i in $(seq 1 "$n"); do
    local ns=${prefix}-h$i
    ip netns add "$ns"
    ip link add ${prefix}h${i}e netns "$ns" type veth peer name ${prefix}h${i}s netns ${prefix}-sw
    ip -n ${prefix}-sw link set ${prefix}h${i}s master ${prefix}br up
    ip -n "$ns" addr add ${subnet}.$i/24 dev ${prefix}h${i}e
    ip -n "$ns" link set ${prefix}h${i}e up
    ip -n "$ns" link set lo up
  done
  mkdir -p "$state"
  # The launch agent: mpirun calls it like ssh (AGENT HOST COMMAND...); it runs the command
  # inside the namespace that owns HOST's address.
  cat >"$state/agent" <<AGENT
#!/bin/sh
host=\$1
shift
ns=${prefix}-h\${host##*.}
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
  chmod +x "$state/agent"
  : >"$state/hostfile"
  for i in $(seq 1 "$n"); do echo "${subnet}.$i slots=1" >>"$state/hostfile"; done
  echo "up: $n hosts ($(hosts | tr '\n' ' '))"
}

down() {
  for ns in $(hosts) ${prefix}-sw; do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$state"
  echo "down"
}

run() {
  local np=$1
  shift
  [ "${1:-}" = "--" ] && shift
  [ -f "$state/hostfile" ] || { echo "netns.sh: no hosts: run 'cluster/netns.sh up' first" >&2; exit 2; }
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  ip netns exec ${prefix}-h1 mpirun -np "$np" --hostfile "$state/hostfile" \
    --mca plm_rsh_agent "$state/agent" \
    --mca btl tcp,self --mca btl_tcp_if_include ${subnet}.0/24 --mca oob_tcp_if_include ${subnet}.0/24 \
    -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x PATH ${LD_LIBRARY_PATH:+-x LD_LIBRARY_PATH} \
    "$@"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  run) shift; run "$@" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

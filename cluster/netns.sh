#!/usr/bin/env bash
# A local multi-host harness: N network namespaces ("hosts" ft-h1..ft-hN, addresses
# 198.18.0.1..N from the benchmarking range) joined by a bridge in namespace ft-sw, and mpirun
# across them over TCP. Traffic stays inside these namespaces.
#
#   cluster/netns.sh up [N] [--rate-gbps B] [--delay-ms D]
#                                           create N hosts (default 2), links shaped as below
#   cluster/netns.sh shape [--rate-gbps B] [--delay-ms D]
#                                           reshape the hosts' links (no option: unshaped)
#   cluster/netns.sh run NP -- COMMAND...   mpirun -np NP COMMAND, one rank per host, over TCP
#   cluster/netns.sh down                   remove every namespace this script made
#
# --rate-gbps B limits each host's link to B Gb/s in each direction, like a node's Ethernet port:
# a token bucket (tc tbf) on both ends of the host's veth, 10 ms of line rate as burst and up to
# 100 ms of queue. --delay-ms D adds D ms one way (tc netem), where the kernel has netem; without
# it the script says so and stops. Unshaped, the veth moves several GB/s with microseconds of
# latency.
#
# Needs root (CAP_NET_ADMIN) and iproute2.
set -euo pipefail

prefix=ft
subnet=198.18.0
state=${FAIRTUNE_NETNS_STATE:-/tmp/fairtune-netns}

hosts() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-h[0-9]+$" | sort -V; }

# Parses --rate-gbps and --delay-ms into $rate_kbit and $delay_ms.
shaping_options() {
  rate_kbit=""
  delay_ms=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --rate-gbps)
        [ $# -ge 2 ] || { echo "netns.sh: --rate-gbps needs a value (Gb/s, e.g. 0.1 for 100 Mb/s)" >&2; exit 2; }
        rate_kbit=$(awk -v g="$2" 'BEGIN { if (g + 0 <= 0) exit 1; printf "%d", g * 1000000 }') \
          || { echo "netns.sh: --rate-gbps '$2' is not a positive number of Gb/s" >&2; exit 2; }
        shift 2 ;;
      --delay-ms)
        [ $# -ge 2 ] || { echo "netns.sh: --delay-ms needs a value (milliseconds, one way)" >&2; exit 2; }
        delay_ms=$(awk -v d="$2" 'BEGIN { if (d + 0 < 0 || d "" !~ /^[0-9.]+$/) exit 1; print d }') \
          || { echo "netns.sh: --delay-ms '$2' is not a number of milliseconds" >&2; exit 2; }
        shift 2 ;;
      *) echo "netns.sh: unknown option '$1' (use --rate-gbps B, --delay-ms D)" >&2; exit 2 ;;
    esac
  done
}

# Shapes one end of a veth: shape_device NAMESPACE DEVICE.
shape_device() {
  local ns=$1 dev=$2
  ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
  local parent=root
  if [ -n "$delay_ms" ] && [ "$delay_ms" != 0 ]; then
    ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "${delay_ms}ms" limit 100000
    parent="parent 1: handle 2:"
  fi
  if [ -n "$rate_kbit" ]; then
    # Burst: 10 ms of line rate, at least 128 KB (segmentation-offloaded packets reach 64 KB).
    local burst=$(( rate_kbit * 10 / 8 ))
    [ "$burst" -lt 131072 ] && burst=131072
    ip netns exec "$ns" tc qdisc add dev "$dev" $parent tbf rate "${rate_kbit}kbit" burst "$burst" latency 100ms
  fi
}

shape() {
  shaping_options "$@"
  local hosts_up
  hosts_up=$(hosts)
  [ -n "$hosts_up" ] || { echo "netns.sh: no hosts: run 'cluster/netns.sh up' first" >&2; exit 2; }
  if [ -n "$delay_ms" ] && [ "$delay_ms" != 0 ]; then
    # Before anything changes: does this kernel have netem?
    if ! ip netns exec ${prefix}-sw tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
      echo "netns.sh: this kernel has no netem (tc qdisc netem failed), so --delay-ms cannot add latency; shape bandwidth alone with --rate-gbps (links left as they were)" >&2
      exit 3
    fi
    ip netns exec ${prefix}-sw tc qdisc del dev lo root
  fi
  for ns in $hosts_up; do
    local i=${ns##*-h}
    shape_device "$ns" ${prefix}h${i}e
    shape_device ${prefix}-sw ${prefix}h${i}s
  done
  local what="unshaped"
  [ -n "$rate_kbit" ] && what="$(awk -v k="$rate_kbit" 'BEGIN { printf "%g", k / 1e6 }') Gb/s"
  [ -n "$delay_ms" ] && what="$what, ${delay_ms} ms one way"
  mkdir -p "$state"
  echo "$what" >"$state/links"
  echo "links: $what"
}

up() {
  local n=2
  if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then n=$1; shift; fi
  shaping_options "$@"
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
  if [ -n "$rate_kbit$delay_ms" ]; then shape ${rate_kbit:+--rate-gbps $(awk -v k="$rate_kbit" 'BEGIN { print k / 1e6 }')} ${delay_ms:+--delay-ms $delay_ms}; fi
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
  # --bind-to none: every "host" is this machine, and mpirun would bind each host's first rank
  # to the same core 0.
  ip netns exec ${prefix}-h1 mpirun -np "$np" --bind-to none --hostfile "$state/hostfile" \
    --mca plm_rsh_agent "$state/agent" \
    --mca btl tcp,self --mca btl_tcp_if_include ${subnet}.0/24 --mca oob_tcp_if_include ${subnet}.0/24 \
    -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x PATH ${LD_LIBRARY_PATH:+-x LD_LIBRARY_PATH} \
    "$@"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  shape) shift; shape "$@" ;;
  down) down ;;
  run) shift; run "$@" ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

#!/usr/bin/env bash
# The scaling model against real steps: on 2, 3 and 4 local hosts (cluster/netns.sh) with links
# shaped to several rates, measures the collective profile (bench --comm, on 2 hosts, once per
# link) and the real training step under mpirun (bench, median of --steps), then predicts the
# same step from one process (bench --predict-ranks with the 2-host profile) and prints predicted
# against measured. The predictions run as many copies at once as the real run has ranks, so that
# their computation shares the cores as the ranks' does; the slowest copy's is the prediction, as
# a synchronized step goes at the pace of its slowest rank (with more ranks than cores, the copies
# that the scheduler favoured run faster than any rank of the real, synchronized run).
#
# Usage (root): scripts/bench_scaling.sh [OUT]   (default OUT: bench-scaling/)
#   LINKS="unshaped 1 0.3 0.1"   link rates in Gb/s ("unshaped": the plain veth)
#   HOSTS="2 3 4"   OBJECTIVES="attributes simclr"   STEPS=5
#   COLLECTIVES="priority fifo"   WIRES="fp32 bf16"   the schedules and gradient wires measured
#   MODEL="--model resnet18 --width 0.5 --image-size 32 --stem small"   BATCH=32
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

out=${1:-bench-scaling}
links=${LINKS:-unshaped 1 0.3 0.1}
host_counts=${HOSTS:-2 3 4}
objectives=${OBJECTIVES:-attributes simclr}
schedules=${COLLECTIVES:-priority fifo}
wires=${WIRES:-fp32 bf16}
steps=${STEPS:-5}
batch=${BATCH:-32}
read -r -a model <<<"${MODEL:---model resnet18 --width 0.5 --image-size 32 --stem small}"
[ "$(id -u)" = 0 ] || { echo "bench_scaling.sh: network namespaces need root" >&2; exit 2; }

swift build -c release --product fairtune >/dev/null
binary=$PWD/.build/release/fairtune
mkdir -p "$out"
trap 'cluster/netns.sh down >/dev/null 2>&1 || true' EXIT
# Ranks that wait yield the core (several ranks share these cores; a spinning one would slow the
# others' computation).
export OMPI_MCA_mpi_yield_when_idle=1

field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
largest() { python3 -c "import sys; print(max(float(x) for x in sys.argv[1:]))" "$@"; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; ${model[*]}, global batch $batch, one thread a rank"
rows=$out/predicted-vs-measured.md
{
  echo "| link | hosts | step | collectives, wire | measured ms | predicted ms | error | the step waits most on |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$rows"
cat "$rows"
for link in $links; do
  shaping=()
  [ "$link" = unshaped ] || shaping=(--rate-gbps "$link")
  profile=$out/profile-$link.json
  for hosts in $host_counts; do
    cluster/netns.sh up "$hosts" "${shaping[@]}" >/dev/null
    if [ ! -f "$profile" ]; then
      cluster/netns.sh run 2 -- "$binary" bench "${model[@]}" --batch "$batch" --threads 1 --comm --out "$profile" >"$out/profile-$link.txt" 2>&1
    fi
    for objective in $objectives; do
      for schedule in $schedules; do
        for wire in $wires; do
          options=(--collectives "$schedule" --gradient-wire "$wire")
          measured=$(cluster/netns.sh run "$hosts" -- "$binary" bench "${model[@]}" --objective "$objective" --batch "$batch" --threads 1 \
            --steps "$steps" "${options[@]}" --json 2>/dev/null | field step_seconds)
          name=$link-$hosts-$objective-$schedule-$wire
          pids=()
          for ((i = 0; i < hosts; i++)); do
            "$binary" bench "${model[@]}" --objective "$objective" --batch "$batch" --threads 1 --steps "$steps" "${options[@]}" \
              --predict-ranks "$hosts" --comm-profile "$profile" --json >"$out/predict-$name-$i.txt" 2>&1 &
            pids+=($!)
          done
          wait "${pids[@]}"
          predictions=()
          for ((i = 0; i < hosts; i++)); do predictions+=("$(field predicted_step_seconds <"$out/predict-$name-$i.txt")"); done
          predicted=$(largest "${predictions[@]}")
          bottleneck=$(field bottleneck <"$out/predict-$name-0.txt")
          step=$([ "$objective" = simclr ] && echo "pretraining" || echo "full fine-tuning")
          label=$([ "$link" = unshaped ] && echo "unshaped veth" || echo "$link Gb/s")
          python3 - "$label" "$hosts" "$step" "$schedule, $wire" "$measured" "$predicted" "$bottleneck" <<'EOF' | tee -a "$rows"
import sys
label, hosts, step, options, measured, predicted, bottleneck = sys.argv[1:]
m, p = float(measured), float(predicted)
print(f"| {label} | {hosts} | {step} | {options} | {m * 1000:.0f} | {p * 1000:.0f} | {100 * (p - m) / m:+.0f}% | {bottleneck} |")
EOF
        done
      done
    done
  done
done
echo "wrote $rows and the profiles (profile-LINK.json, .txt) to $out/"

#!/usr/bin/env bash
# Data-parallel figures, medians of RUNS runs: 1 rank x 2 threads against 2 ranks x 1 thread
# (scaling), synchronized against local BatchNorm (its cost), the hidden fraction of the gradient
# all-reduce and the all-reduce calls per step; then the same 2-rank run across two network
# namespaces over TCP (skipped without root).
# Usage: scripts/bench_mpi.sh [RUNS] [MODEL...]   (defaults: 3; resnet18 resnet50)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
runs=${1:-3}
shift || true
models=("$@")
((${#models[@]})) || models=(resnet18 resnet50)
swift build -c release --product fairtune >/dev/null
bin=$PWD/.build/release/fairtune
common=(--image-size 64 --batch 64 --steps 8 --warmup 2 --json)

field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(eval('d' + ''.join('[%r]' % k for k in '$1'.split('.'))))"; }
med() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

printf "%-9s %9s %9s %7s %9s %8s %7s %6s\n" model 1x2img/s 2x1img/s scaling localBN syncBN% hidden calls
for model in "${models[@]}"; do
  single=() sync=() local=() hidden=() calls=()
  for ((i = 0; i < runs; i++)); do
    single+=("$("$bin" bench --model "$model" "${common[@]}" --threads 2 | field images_per_second)")
    out=$(mpirun --oversubscribe -np 2 "$bin" bench --model "$model" "${common[@]}" --bn sync)
    sync+=("$(field images_per_second <<<"$out")")
    hidden+=("$(field mpi.hidden_fraction <<<"$out")")
    calls+=("$(field mpi.allreduce_calls_per_step <<<"$out")")
    local+=("$(mpirun --oversubscribe -np 2 "$bin" bench --model "$model" "${common[@]}" --bn local | field images_per_second)")
  done
  s=$(med "${single[@]}") y=$(med "${sync[@]}") l=$(med "${local[@]}") h=$(med "${hidden[@]}") c=$(med "${calls[@]}")
  python3 -c "print('%-9s %9.1f %9.1f %6.2fx %9.1f %7.1f%% %6.0f%% %6d' % ('$model', $s, $y, $y / $s, $l, 100 * ($l / $y - 1), 100 * $h, $c))"
done
echo "(img/s medians of $runs runs, 64 px, global batch 64; syncBN% = extra step time of sync over local BN)"

if [ "$(id -u)" -eq 0 ] && cluster/netns.sh up 2 >/dev/null 2>&1; then
  trap 'cluster/netns.sh down >/dev/null 2>&1' EXIT
  out=$(cluster/netns.sh run 2 -- "$bin" bench --model resnet18 --width 0.5 "${common[@]}")
  printf "2 hosts over TCP (netns), resnet18 width 0.5: %.1f img/s, %.0f%% of the gradient all-reduce hidden, all-reduce %.2f GB/s, sync BN %.1f ms per step\n" \
    "$(field images_per_second <<<"$out")" "$(python3 -c "print(100 * $(field mpi.hidden_fraction <<<"$out"))")" \
    "$(field mpi.allreduce_gb_per_second <<<"$out")" "$(python3 -c "print(1000 * $(field mpi.sync_bn_seconds <<<"$out"))")"
fi

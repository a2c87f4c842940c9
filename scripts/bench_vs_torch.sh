#!/usr/bin/env bash
# fairtune's training step against PyTorch's on the same machine, run alternately (so both see
# the same load), medians of RUNS runs: img/s on both sides, the ratio, GFLOP/s, the sgemm ceiling.
# Usage: scripts/bench_vs_torch.sh [RUNS] [MODEL...]   (defaults: 3 runs; resnet18 resnet50)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

runs=${1:-3}
shift || true
models=("$@")
((${#models[@]})) || models=(resnet18 resnet50)
size=${IMAGE_SIZE:-64}
batch=${BATCH:-64}
steps=${STEPS:-10}
threads=${THREADS:-2}

venv=${FAIRTUNE_TORCH_VENV:-$HOME/.cache/fairtune/torch-venv}
if ! "$venv/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  echo "creating $venv with PyTorch (once; several GB)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch torchvision
fi
swift build -c release --product fairtune >/dev/null

field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
med() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

printf "%-9s %10s %10s %7s %9s %9s %7s\n" model fairtune torch ratio GFLOP/s sgemm "%ceil"
for model in "${models[@]}"; do
  ours=() theirs=() gflops=() sgemm=()
  for ((i = 0; i < runs; i++)); do
    out=$(.build/release/fairtune bench --model "$model" --image-size "$size" --batch "$batch" --steps "$steps" --threads "$threads" --json)
    ours+=("$(field images_per_second <<<"$out")")
    gflops+=("$(field gflops <<<"$out")")
    sgemm+=("$(field sgemm_gflops <<<"$out")")
    ref=$("$venv/bin/python" scripts/bench_torch.py --model "$model" --image-size "$size" --batch "$batch" --steps "$steps" --threads "$threads")
    theirs+=("$(field images_per_second <<<"$ref")")
  done
  o=$(med "${ours[@]}")
  t=$(med "${theirs[@]}")
  g=$(med "${gflops[@]}")
  s=$(med "${sgemm[@]}")
  python3 -c "print('%-9s %10.1f %10.1f %6.2fx %9.1f %9.1f %6.0f%%' % ('$model', $o, $t, $o / $t, $g, $s, 100 * $g / $s))"
done
echo "(img/s medians of $runs runs; ${size}px, batch $batch, $threads threads; ratio = fairtune / torch)"

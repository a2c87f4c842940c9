#!/usr/bin/env bash
# fairtune's training step against PyTorch's on the same machine, run alternately (so both see
# the same load), medians of RUNS runs: img/s on both sides, the ratio, GFLOP/s, the sgemm ceiling.
# PyTorch runs in four modes (fp32 and autocast bf16, NCHW and channels_last) and fairtune in fp32
# and with --precision bf16 (fp32 where the CPU or the build has no bfloat16 kernels); each side's
# best mode is compared, and the line says which mode won and which side.
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

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); bfloat16 instructions: $(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx512_bf16\|amx_bf16' | sort -u | xargs || true)"
printf "%-9s %-22s %10s %9s %9s\n" model mode "img/s" GFLOP/s sgemm
for model in "${models[@]}"; do
  declare -A rate=()
  declare -A samples=()
  for ((i = 0; i < runs; i++)); do
    for precision in fp32 bf16; do
      out=$(.build/release/fairtune bench --model "$model" --image-size "$size" --batch "$batch" --steps "$steps" --threads "$threads" --precision "$precision" --json 2>/dev/null)
      samples["fairtune $precision"]+="$(field images_per_second <<<"$out") "
      samples["fairtune $precision gflops"]+="$(field gflops <<<"$out") "
      samples["fairtune $precision sgemm"]+="$(field sgemm_gflops <<<"$out") "
    done
    for layout in "" --channels-last; do
      for cast in "" --autocast-bf16; do
        ref=$("$venv/bin/python" scripts/bench_torch.py --model "$model" --image-size "$size" --batch "$batch" --steps "$steps" --threads "$threads" $layout $cast)
        samples["torch ${cast:+bf16}${cast:-fp32}${layout:+ channels_last}"]+="$(field images_per_second <<<"$ref") "
      done
    done
  done
  for mode in "fairtune fp32" "fairtune bf16" "torch fp32" "torch fp32 channels_last" "torch bf16" "torch bf16 channels_last"; do
    # shellcheck disable=SC2086
    rate[$mode]=$(med ${samples[$mode]})
    if [[ $mode == fairtune* ]]; then
      # shellcheck disable=SC2086
      printf "%-9s %-22s %10.1f %9.1f %9.1f\n" "$model" "$mode" "${rate[$mode]}" "$(med ${samples["$mode gflops"]})" "$(med ${samples["$mode sgemm"]})"
    else
      printf "%-9s %-22s %10.1f\n" "$model" "$mode" "${rate[$mode]}"
    fi
  done
  best_ours="fairtune fp32"
  [ "$(python3 -c "print(${rate["fairtune bf16"]} > ${rate["fairtune fp32"]})")" = True ] && best_ours="fairtune bf16"
  best_theirs="torch fp32"
  for mode in "torch fp32 channels_last" "torch bf16" "torch bf16 channels_last"; do
    [ "$(python3 -c "print(${rate[$mode]} > ${rate[$best_theirs]})")" = True ] && best_theirs=$mode
  done
  python3 -c "
o, t = ${rate[$best_ours]}, ${rate[$best_theirs]}
print('%-9s best: %s %.1f img/s against %s %.1f: %.2fx, %s wins' % ('$model', '$best_ours', o, '$best_theirs', t, o / t, 'fairtune' if o > t else 'PyTorch'))"
  unset rate samples
done
echo "(img/s medians of $runs runs; ${size}px, batch $batch, $threads threads; GFLOP/s and the sgemm ceiling are fairtune's)"

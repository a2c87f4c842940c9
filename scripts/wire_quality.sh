#!/usr/bin/env bash
# The bfloat16 gradient wire's quality (docs/scaling.md): SimCLR pretraining on 2 ranks with the
# fp32 wire and with the bf16 wire, two seeds each, on the tiny preset's data and model (2,000
# train faces at 32 px, ResNet-18 at quarter width, 10 epochs at batch 64); then the linear probe
# (frozen, the head solved by L-BFGS) on each backbone. Prints each run's kNN monitor at the end
# and its probe's test mean F1, and the spread over the seeds.
# Usage: scripts/wire_quality.sh OUT   (about 10 minutes on 2 cores; mpirun as root needs
#   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/wire_quality.sh OUT}
bin=$PWD/.build/release/fairtune
[ -x "$bin" ] || swift build -c release --product fairtune
mkdir -p "$out"
if [ ! -s "$out/packed/labels.bin" ]; then
  "$bin" synth --out "$out/data" --train 2000 --val 300 --test 1000 --image-size 48 --seed 0 >"$out/synth.log" 2>&1
  "$bin" pack --celeba "$out/data" --out "$out/packed" --image-size 32 >"$out/pack.log" 2>&1
fi
model=(--model resnet18 --width 0.25 --stem small --image-size 32)
printf '| wire | seed | kNN monitor at the end | probe test mean F1 |\n| --- | --- | --- | --- |\n'
for wire in fp32 bf16; do
  for seed in 0 1; do
    run=$out/$wire-$seed
    [ -s "$run/final.ckpt" ] || mpirun --oversubscribe -np 2 "$bin" pretrain --data "$out/packed" --out "$run" "${model[@]}" --batch 64 --epochs 10 \
      --lr 2.4 --min-crop-scale 0.7 --monitor-images 192 --seed "$seed" --threads 1 --gradient-wire "$wire" >"$run.log" 2>&1
    [ -s "$run-probe/run.json" ] || "$bin" finetune --data "$out/packed" --from "$run/final.ckpt" --strategy frozen --head converged \
      --weight-decay 1e-4 --batch 64 --out "$run-probe" >"$run-probe.log" 2>&1
    knn=$(python3 -c "import json,sys; print([json.loads(l)['knn_mean_f1'] for l in open(sys.argv[1]) if 'knn_mean_f1' in l][-1])" "$run/metrics.jsonl")
    "$bin" fairness --attributes "$out/data/list_attr_celeba.txt" --partition "$out/data/list_eval_partition.txt" --bootstrap 0 \
      --scores "$run-probe/scores-test.csv" --scores-train "$run-probe/scores-train.csv" --out "$run-probe/fairness" >/dev/null 2>&1
    f1=$(grep -A4 "^## Test mean F1" "$run-probe/fairness/table1.md" | tail -1 | awk -F'|' '{gsub(/ /, "", $3); print $3}')
    printf '| %s | %s | %.4f | %s |\n' "$wire" "$seed" "$knn" "$f1"
  done
done

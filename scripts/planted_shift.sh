#!/usr/bin/env bash
# The planted effect at the tiny preset's scale (docs/mechanism.md): for each photometric shift
# given, a backbone pretrained for 10 epochs on the shifted faces (the tiny preset's model and
# recipe: ResNet-18 at quarter width, 32 px, crops of 70-100%, no blur), then frozen and bn-recal
# fine-tuned on the unshifted faces under the converged head (L-BFGS, weight decay 1e-4) and under
# a trained head (SGD, lr 1, 3 epochs), and bn-recal - frozen compared paired on 1,000 test images.
# "none" is the control: the same faces unshifted.
# Usage: scripts/planted_shift.sh OUT SHIFT...   e.g. scripts/planted_shift.sh runs/planted none strong contrast=0.1,brightness=0.4
# Prints a row per shift: the first BatchNorm's and the mean distance (|dmean|/sd, |log var ratio|)
# of the pretrained statistics from the unshifted data, then mean F1 and all worst differences.
# About 2 minutes a shift on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/planted_shift.sh OUT SHIFT...}
shift
[ $# -ge 1 ] || { echo "usage: scripts/planted_shift.sh OUT SHIFT... (none, strong, or contrast=C,brightness=B,cast=K)" >&2; exit 2; }
bin=${FAIRTUNE:-.build/release/fairtune}
[ -x "$bin" ] || swift build -c release --product fairtune
mkdir -p "$out"
faces=(--train 2000 --val 300 --test 1000 --image-size 48 --seed 0)
model=(--model resnet18 --width 0.25 --stem small --image-size 32)
labels=(--attributes "$out/none/data/list_attr_celeba.txt" --partition "$out/none/data/list_eval_partition.txt" --bootstrap 1000)
prepare() {
  local dir=$1 shift_=$2
  mkdir -p "$dir"
  [ -s "$dir/packed/labels.bin" ] && return
  "$bin" synth --out "$dir/data" "${faces[@]}" --shift "$shift_" >"$dir/synth.log" 2>&1
  "$bin" pack --celeba "$dir/data" --out "$dir/packed" --image-size 32 >"$dir/pack.log" 2>&1
}
prepare "$out/none" none
compare() {
  local a=$1 b=$2 dir=$3
  [ -s "$dir/comparison.md" ] || "$bin" fairness "${labels[@]}" --scores "$a/scores-test.csv" --scores-train "$a/scores-train.csv" \
    --compare "$b/scores-test.csv" --compare-train "$b/scores-train.csv" --out "$dir" >"$dir.log" 2>&1
  echo "$(grep -E '^Mean F1' "$dir/comparison.md" | sed -E 's/.*difference ([^ ]+ \[[^]]+\]( \*)?).*/\1/') / $(grep -E '^\| all \|' "$dir/comparison.md" | awk -F'|' '{gsub(/^ +| +$/, "", $9); print $9}')"
}
printf '| shift | first BatchNorm | mean over layers | converged head: mean F1 / all worst | trained head: mean F1 / all worst |\n| --- | --- | --- | --- | --- |\n'
for s in "$@"; do
  dir=$out/$(tr -c 'A-Za-z0-9.\n' '_' <<<"$s")
  prepare "$dir" "$s"
  [ -s "$dir/pretrain/final.ckpt" ] || "$bin" pretrain --data "$dir/packed" --out "$dir/pretrain" "${model[@]}" --batch 64 --epochs 10 --lr 2.4 \
    --min-crop-scale 0.7 --temperature 0.1 --monitor-images 192 --seed 0 >"$dir/pretrain.log" 2>&1
  distance=$("$bin" inspect "$dir/pretrain/final.ckpt" --bn-data "$out/none/packed" --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(f\"{d['layers'][0]['mean']:.3f} / {d['layers'][0]['log_variance']:.3f} | {d['mean']:.3f} / {d['log_variance']:.3f}\")")
  for s2 in frozen bn-recal; do
    [ -s "$dir/$s2-converged/run.json" ] || "$bin" finetune --data "$out/none/packed" --from "$dir/pretrain/final.ckpt" --strategy "$s2" --head converged \
      --weight-decay 1e-4 --batch 64 --out "$dir/$s2-converged" >"$dir/$s2-converged.log" 2>&1
    [ -s "$dir/$s2-trained/run.json" ] || "$bin" finetune --data "$out/none/packed" --from "$dir/pretrain/final.ckpt" --strategy "$s2" --optimizer sgd \
      --lr 1 --epochs 3 --batch 64 --out "$dir/$s2-trained" >"$dir/$s2-trained.log" 2>&1
  done
  printf '| %s | %s | %s | %s |\n' "$s" "$distance" "$(compare "$dir/bn-recal-converged" "$dir/frozen-converged" "$dir/compare-converged")" \
    "$(compare "$dir/bn-recal-trained" "$dir/frozen-trained" "$dir/compare-trained")"
done
echo "(bn-recal minus frozen, paired on 1000 bootstrap resamples of the 1,000 unshifted test faces, 95% intervals, * excludes 0)"

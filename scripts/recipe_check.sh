#!/usr/bin/env bash
# Decides a preset's SimCLR pretraining recipe at full length, not from short screens: on the
# small preset's data (synthesised once into OUT), pretrains a backbone with each recipe given for
# the preset's 25 epochs at its batch, rate and warmup, with the kNN monitor; then trains the
# linear probe (frozen, the head solved by L-BFGS) on each backbone and on a random one, and
# compares each probe with the random one and with the first recipe's, paired on the same
# bootstrap resamples of the test images (fairness --compare).
# Usage: scripts/recipe_check.sh OUT NAME=OPTIONS...
#   e.g. scripts/recipe_check.sh runs/recipe mild="--min-crop-scale 0.7" simclr="--min-crop-scale 0.08 --blur"
# Prints a row per recipe: the monitor at the start and end, the pretraining minutes, the probe's
# test mean F1, and its differences (95% intervals) from the random-backbone probe and from the
# first recipe's probe. About 20 minutes a recipe on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/recipe_check.sh OUT NAME=OPTIONS...}
shift
[ $# -ge 1 ] || { echo "usage: scripts/recipe_check.sh OUT NAME=OPTIONS... (at least one recipe)" >&2; exit 2; }
bin=.build/release/fairtune
[ -x "$bin" ] || swift build -c release --product fairtune
mkdir -p "$out"
# The small preset's data and model (Sources/Pipeline/Presets.swift).
[ -s "$out/data/list_attr_celeba.txt" ] || "$bin" synth --out "$out/data" --train 8000 --val 1000 --test 2000 --image-size 64 --seed 0 >"$out/synth.log"
[ -s "$out/packed/labels.bin" ] || "$bin" pack --celeba "$out/data" --image-size 64 --out "$out/packed" >"$out/pack.log"
model=(--model resnet18 --width 0.5 --stem imagenet --image-size 64)
probe=(--strategy frozen --head converged --weight-decay 1e-4 --batch 128)
labels=(--attributes "$out/data/list_attr_celeba.txt" --partition "$out/data/list_eval_partition.txt" --bootstrap 1000)

[ -s "$out/random-probe/run.json" ] || "$bin" finetune --data "$out/packed" --random-backbone "${probe[@]}" "${model[@]}" --out "$out/random-probe" >"$out/random-probe.log" 2>&1
# comparison.md's mean F1 line for a probe against another: both test mean F1s and the paired
# difference with its 95% interval.
compare() {
  local dir=$1 other=$2 name=$3
  "$bin" fairness "${labels[@]}" --scores "$dir/scores-test.csv" --scores-train "$dir/scores-train.csv" \
    --compare "$other/scores-test.csv" --compare-train "$other/scores-train.csv" --out "$dir/compare-$name" >/dev/null 2>&1
  grep -m1 "^Mean F1 over" "$dir/compare-$name/comparison.md"
}
# The test mean F1 of the first model of a mean F1 line, and the difference with its interval.
first_f1() { sed -E 's/.*: scores-test ([0-9.]+),.*/\1/' <<<"$1"; }
difference() { sed -E 's/.*difference ([-0-9.]+ \[[-0-9.]+, [-0-9.]+\]( \*)?).*/\1/' <<<"$1"; }
first=""
printf '%-10s %-34s %8s %8s %8s %8s  %-28s %s\n' recipe options "knn 0" "knn end" minutes probe "minus random" "minus first"
for recipe in "$@"; do
  name=${recipe%%=*}
  options=${recipe#*=}
  # shellcheck disable=SC2086
  [ -s "$out/$name/final.ckpt" ] || "$bin" pretrain --data "$out/packed" --out "$out/$name" "${model[@]}" --batch 256 --epochs 25 --lr 0.3 \
    --warmup-epochs 2.5 --temperature 0.1 --monitor-images 768 --seed 0 $options >"$out/$name.log" 2>&1
  [ -s "$out/$name-probe/run.json" ] || "$bin" finetune --data "$out/packed" --from "$out/$name/final.ckpt" "${probe[@]}" --out "$out/$name-probe" >"$out/$name-probe.log" 2>&1
  read -r knn0 knn1 minutes < <(python3 - "$out/$name/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
knn = [r["knn_mean_f1"] for r in rows if "knn_mean_f1" in r]
seconds = max((r.get("elapsed_seconds", 0) for r in rows), default=0) or sum(r.get("step_seconds", 0) for r in rows)
print(f"{knn[0]:.3f} {knn[-1]:.3f} {seconds / 60:.1f}")
EOF
)
  line=$(compare "$out/$name-probe" "$out/random-probe" random)
  f1=$(first_f1 "$line")
  random=$(difference "$line")
  versus=""
  [ -n "$first" ] && versus=$(difference "$(compare "$out/$name-probe" "$out/$first-probe" "$first")")
  [ -n "$first" ] || first=$name
  printf '%-10s %-34s %8s %8s %8s %8s  %-28s %s\n' "$name" "$options" "$knn0" "$knn1" "$minutes" "$f1" "$random" "$versus"
done
echo "(probe: test mean F1 of the linear probe, thresholds from train; differences paired on 1000 resamples, 95% intervals, * excludes 0)"

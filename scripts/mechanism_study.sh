#!/usr/bin/env bash
# The paper's mechanism as a curve (docs/mechanism.md): on the small preset's data, backbones
# pretrained with smaller and larger crops (and without blur), and one pretrained on a
# photometrically shifted copy of the faces (the planted effect); for each, the standardised
# distance of its BatchNorm statistics from the clean fine-tuning data's (fairtune inspect
# --bn-data), and the paired differences bn-recal - frozen and bn-stats - frozen on test mean F1
# and the all-pairs worst-group F1, under the trained head and under the converged head.
#
# Usage: scripts/mechanism_study.sh OUT REFERENCE
#   REFERENCE: a finished `fairtune reproduce --preset small` run. Its data, its pretrained
#   backbone (crops of 8-100% with blur, seed 0: the first row) and its strategies' selected
#   settings (backbones/b2/<strategy>/options.json) are reused, so that only the pretraining
#   recipe differs between rows. About 12 minutes a row on 2 cores.
# Writes OUT/mechanism.md (the table) and OUT/mechanism.csv (the figure's data,
# scripts/mechanism_figure.py).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/mechanism_study.sh OUT REFERENCE}
ref=${2:?usage: scripts/mechanism_study.sh OUT REFERENCE}
bin=${FAIRTUNE:-.build/release/fairtune}
[ -x "$bin" ] || swift build -c release --product fairtune
for f in "$ref/packed/labels.bin" "$ref/pretrain/final.ckpt" "$ref/data/list_attr_celeba.txt"; do
  [ -s "$f" ] || { echo "mechanism_study.sh: $f is missing; REFERENCE must be a finished reproduce --preset small run" >&2; exit 2; }
done
for s in frozen bn-stats bn-recal; do
  [ -s "$ref/backbones/b2/$s/options.json" ] || { echo "mechanism_study.sh: $ref/backbones/b2/$s/options.json is missing (the selected settings of $s)" >&2; exit 2; }
done
mkdir -p "$out"
model=(--model resnet18 --width 0.5 --stem imagenet --image-size 64)
labels=(--attributes "$ref/data/list_attr_celeba.txt" --partition "$ref/data/list_eval_partition.txt" --bootstrap 1000)

# The planted effect's pretraining data: the same faces and labels under the strong shift.
if [ ! -s "$out/shifted-packed/labels.bin" ]; then
  "$bin" synth --out "$out/shifted-data" --train 8000 --val 1000 --test 2000 --image-size 64 --seed 0 --shift strong >"$out/shifted-synth.log" 2>&1
  "$bin" pack --celeba "$out/shifted-data" --image-size 64 --out "$out/shifted-packed" >"$out/shifted-pack.log" 2>&1
fi

# A strategy's selected settings from the reference run, as finetune options.
selected() {
  python3 - "$ref/backbones/b2/$1/options.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
args = []
for key in ("optimizer", "lr", "momentum", "weight-decay", "schedule", "warmup-epochs", "epochs", "batch", "seed"):
    if o.get(key) not in (None, ""): args += ["--" + key, o[key]]
if o.get("nesterov") == "true": args.append("--nesterov")
print(" ".join(args))
PY
}
decay() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['weight-decay'] or '0')" "$ref/backbones/b2/$1/options.json"; }

# finetune into DIR unless it finished.
tune() {
  local dir=$1
  shift
  [ -s "$dir/run.json" ] || "$bin" finetune --data "$ref/packed" --out "$dir" "$@" >"$dir.log" 2>&1
}
# comparison.md of A against B (paired on the same resamples).
compare() {
  local a=$1 b=$2 dir=$3
  [ -s "$dir/comparison.md" ] || "$bin" fairness "${labels[@]}" --scores "$a/scores-test.csv" --scores-train "$a/scores-train.csv" \
    --compare "$b/scores-test.csv" --compare-train "$b/scores-train.csv" --out "$dir" >"$dir.log" 2>&1
}

rows=(
  "crop-0.08-blur|crops of 8-100%, blur (SimCLR's, the small preset's)|"
  "crop-0.3-blur|crops of 30-100%, blur|--min-crop-scale 0.3 --blur"
  "crop-0.7-blur|crops of 70-100%, blur|--min-crop-scale 0.7 --blur"
  "crop-0.08|crops of 8-100%, no blur|--min-crop-scale 0.08"
  "planted-shift|SimCLR's, on faces under the strong photometric shift|--min-crop-scale 0.08 --blur"
)
for row in "${rows[@]}"; do
  IFS='|' read -r name description options <<<"$row"
  dir=$out/$name
  mkdir -p "$dir"
  backbone=$dir/pretrain/final.ckpt
  if [ "$name" = crop-0.08-blur ]; then
    backbone=$ref/pretrain/final.ckpt
  elif [ ! -s "$backbone" ]; then
    data=$ref/packed
    [ "$name" = planted-shift ] && data=$out/shifted-packed
    echo "[$name] pretraining ($description)"
    # shellcheck disable=SC2086
    "$bin" pretrain --data "$data" --out "$dir/pretrain" "${model[@]}" --batch 256 --epochs 25 --lr 0.3 --warmup-epochs 2.5 \
      --temperature 0.1 --monitor-images 768 --seed 0 $options >"$dir/pretrain.log" 2>&1
  fi
  echo "[$name] BatchNorm statistics, fine-tuning, comparisons"
  [ -s "$dir/distance.json" ] || "$bin" inspect "$backbone" --bn-data "$ref/packed" --json >"$dir/distance.json"
  for s in frozen bn-stats bn-recal; do
    # shellcheck disable=SC2046
    tune "$dir/$s" --from "$backbone" --strategy "$s" $(selected "$s")
  done
  # The converged head (Part 17's second column): L-BFGS on each model's frozen features, at the
  # strategy's selected weight decay; bn-stats' from its own fine-tuned statistics.
  tune "$dir/frozen-converged" --from "$backbone" --strategy frozen --head converged --weight-decay "$(decay frozen)" --batch 128
  tune "$dir/bn-recal-converged" --from "$backbone" --strategy bn-recal --head converged --weight-decay "$(decay bn-recal)" --batch 128
  tune "$dir/bn-stats-converged" --from "$dir/bn-stats/final.ckpt" --strategy frozen --head converged --weight-decay "$(decay bn-stats)" --batch 128
  compare "$dir/bn-recal" "$dir/frozen" "$dir/compare-bn-recal"
  compare "$dir/bn-stats" "$dir/frozen" "$dir/compare-bn-stats"
  compare "$dir/bn-recal-converged" "$dir/frozen-converged" "$dir/compare-bn-recal-converged"
  compare "$dir/bn-stats-converged" "$dir/frozen-converged" "$dir/compare-bn-stats-converged"
done

python3 - "$out" "${rows[@]}" <<'PY'
import json, re, sys
out, rows = sys.argv[1], sys.argv[2:]
number = r"(-?[0-9.]+)"
interval = number + r" \[" + number + r", " + number + r"\]"
def comparison(path):
    text = open(path).read()
    mean = re.search(r"difference " + interval, re.search(r"^Mean F1 over.*$", text, re.M).group(0))
    cells = [c.strip() for c in re.search(r"^\| all \|.*$", text, re.M).group(0).strip("|").split("|")]
    worst = re.match(interval, cells[-1])
    return [float(x) for x in mean.groups()], [float(x) for x in worst.groups()]
csv = ["row,description,distance_mean,distance_log_variance,first_layer_mean,first_layer_log_variance,head,comparison,mean_f1,mean_f1_low,mean_f1_high,all_worst,all_worst_low,all_worst_high"]
md = ["| pretraining | distance to the data (mean over layers: \\|Δmean\\|/sd, \\|log var ratio\\|) | first layer | head | bn-recal - frozen: mean F1 | all worst | bn-stats - frozen: mean F1 | all worst |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |"]
fmt = lambda v: f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" + (" *" if v[1] > 0 or v[2] < 0 else "")
for row in rows:
    name, description, _ = row.split("|")
    d = json.load(open(f"{out}/{name}/distance.json"))
    first = d["layers"][0]
    for head, suffix in (("trained", ""), ("converged", "-converged")):
        cells = []
        for strategy in ("bn-recal", "bn-stats"):
            mean, worst = comparison(f"{out}/{name}/compare-{strategy}{suffix}/comparison.md")
            cells += [fmt(mean), fmt(worst)]
            csv.append(",".join(map(str, [name, '"' + description + '"', d["mean"], d["log_variance"], first["mean"], first["log_variance"], head, strategy] + mean + worst)))
        md.append(f"| {description} | {d['mean']:.3f} / {d['log_variance']:.3f} | {first['mean']:.3f} / {first['log_variance']:.3f} | {head} | " + " | ".join(cells) + " |")
open(f"{out}/mechanism.csv", "w").write("\n".join(csv) + "\n")
open(f"{out}/mechanism.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY

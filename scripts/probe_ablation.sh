#!/usr/bin/env bash
# The full-length SimCLR ablation of docs/pretraining.md: pretrain on the data of a finished
# `fairtune reproduce --preset small` run with one setting changed from the preset's recipe, then
# train the run's linear probe (the frozen strategy with the settings of its random-backbone probe)
# on the new backbone, and compare it, paired on the same bootstrap resamples of the test images,
# with the probe on a random backbone and with the probe on the run's own backbone.
# Prints one row: the settings, the monitor (kNN validation mean F1) at the start, at the end and
# at its highest, the pretraining seconds, the probe's test mean F1, and its differences from the
# random-backbone probe and from the preset backbone's probe, with 95% basic intervals.
# Usage: scripts/probe_ablation.sh RUN OUT NAME [pretrain options that replace the preset's...]
#   e.g. scripts/probe_ablation.sh runs/small ablation color-0.5 --color-strength 0.5
#        scripts/probe_ablation.sh runs/small ablation preset      (the run's backbone itself)
# About 17 minutes a row on 2 cores (25 epochs of pretraining; the probe takes under a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: scripts/probe_ablation.sh RUN OUT NAME [pretrain options...]}
out=${2:?usage: scripts/probe_ablation.sh RUN OUT NAME [pretrain options...]}
name=${3:?usage: scripts/probe_ablation.sh RUN OUT NAME [pretrain options...]}
shift 3
bin=.build/release/fairtune
for f in pretrain/final.ckpt pretrain/options.json probe-random/options.json probe-random/scores-test.csv data/list_attr_celeba.txt; do
  [ -s "$run/$f" ] || { echo "probe_ablation.sh: $run/$f is missing: give the directory of a finished fairtune reproduce run" >&2; exit 1; }
done
mkdir -p "$out/$name"
# The preset's pretraining options, from the run's options.json; NAME's options replace them.
mapfile -t pretrain < <(python3 - "$run/pretrain/options.json" "$@" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
crop = dict(p.split("=") for p in o["augment"].split())
model = o["model"].split()  # "resnet18 width 0.5 stem imagenet size 64"
opts = {"--model": model[0], "--width": model[2], "--stem": model[4], "--image-size": model[6],
        "--batch": o["batch"], "--epochs": o["epochs"], "--lr": o["lr"], "--warmup-epochs": o["warmup-epochs"],
        "--seed": o["seed"], "--temperature": o["temperature"], "--min-crop-scale": crop["crop"],
        "--color-strength": crop["s"]}
flags = []
if crop.get("blur") == "true": flags.append("--blur")
args, i = sys.argv[2:], 0
while i < len(args):
    a = args[i]
    if i + 1 < len(args) and not args[i + 1].startswith("--"):
        opts[a] = args[i + 1]; i += 2
    else:
        flags.append(a); i += 1
for k, v in opts.items(): print(k); print(v)
for f in sorted(set(flags)): print(f)
EOF
)
data=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data'])" "$run/pretrain/options.json")
[ -d "$data" ] || data="$run/packed"
if [ "$name" = preset ]; then
  backbone="$run/pretrain/final.ckpt"
  pre="$run/pretrain"
else
  pre="$out/$name/pretrain"
  [ -f "$pre/final.ckpt" ] || "$bin" pretrain --data "$data" --out "$pre" "${pretrain[@]}" >"$out/$name/pretrain.log" 2>&1
  backbone="$pre/final.ckpt"
fi
# The probe: the run's random-backbone probe's settings, on this backbone.
mapfile -t probe < <(python3 - "$run/probe-random/options.json" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
for k in ["batch", "epochs", "lr", "optimizer", "schedule", "weight-decay", "seed", "warmup-epochs"]:
    if o.get(k): print("--" + k); print(o[k])
EOF
)
train_probe() { # BACKBONE DIR
  [ -f "$2/probe/run.json" ] ||
    "$bin" finetune --data "$data" --from "$1" --strategy frozen "${probe[@]}" --out "$2/probe" >"$2/probe.log" 2>&1
}
mkdir -p "$out/preset"
train_probe "$run/pretrain/final.ckpt" "$out/preset"
train_probe "$backbone" "$out/$name"
compare() {
  "$bin" fairness --attributes "$run/data/list_attr_celeba.txt" --partition "$run/data/list_eval_partition.txt" \
    --scores "$out/$name/probe/scores-test.csv" --scores-train "$out/$name/probe/scores-train.csv" \
    --compare "$1/scores-test.csv" --compare-train "$1/scores-train.csv" --bootstrap 1000 --interval basic \
    --out "$out/$name/compare-$2" | sed -n 's/.*mean F1 \([0-9.]*\) against \([0-9.]*\), difference \([-0-9.]*\) .*\[\(.*\)\])$/\1 \2 \3 \4/p'
}
read -r probeF1 _ randomDifference randomInterval < <(compare "$run/probe-random" random)
read -r _ _ presetDifference presetInterval < <(compare "$out/preset/probe" preset)
python3 - "$pre/metrics.jsonl" "$name" "$*" "$probeF1" "$randomDifference" "$randomInterval" "$presetDifference" "$presetInterval" <<'EOF'
import json, sys
metrics, name, args, probe, random, interval, preset, presetInterval = sys.argv[1:]
knn, seconds = [], 0.0
for line in open(metrics):
    r = json.loads(line)
    if "knn_mean_f1" in r: knn.append(r["knn_mean_f1"])
    seconds += r.get("step_seconds", 0) + r.get("monitor_seconds", 0)
def difference(value, interval):
    lo, hi = (float(x) for x in interval.split(", "))
    return f"{float(value):+.3f} [{lo:+.3f}, {hi:+.3f}]"
print(f"| {name} | {args or 'the preset'} | {knn[0]:.3f} -> {knn[-1]:.3f} (highest {max(knn):.3f}) | {seconds:.0f} | {float(probe):.3f} | "
      f"{difference(random, interval)} | {difference(preset, presetInterval)} |")
EOF

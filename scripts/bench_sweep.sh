#!/usr/bin/env bash
# Sweep throughput on the synthetic data: 12 trials (two strategies, 6 each) with one group of
# 2 ranks vs two groups of 1 rank (plus the coordinator rank in both), then the same two groups
# under --scheduler asha. Prints trials per hour, the coordinator's own time per trial against
# the mean trial time, and the ASHA saving with the best validation F1 of each run.
# Usage: scripts/bench_sweep.sh [MAX_EPOCHS] [TRAIN_IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
epochs=${1:-4}
images=${2:-2000}
swift build -c release --product fairtune >/dev/null
bin=$PWD/.build/release/fairtune
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
model=(--model resnet18 --width 0.25 --stem small --image-size 32 --threads 1)

"$bin" synth --out "$work/raw" --train "$images" --val 300 --test 300 --image-size 48 --seed 1 >/dev/null
"$bin" pack --celeba "$work/raw" --image-size 32 --out "$work/packed" >/dev/null
"$bin" pretrain --data "$work/packed" --out "$work/pre" --batch 64 --epochs 1 "${model[@]}" >/dev/null

run() {  # name group-size extra...
  local name=$1 size=$2
  shift 2
  local start end
  start=$(date +%s.%N)
  mpirun --oversubscribe -np 3 "$bin" sweep --data "$work/packed" --from "$work/pre/final.ckpt" --strategies bn-stats,full \
    --trials 6 --max-epochs "$epochs" --batch 64 --seed 1 --group-size "$size" --out "$work/$name" "${model[@]}" "$@" >"$work/$name.log" 2>&1
  end=$(date +%s.%N)
  echo "$name $(echo "$end - $start" | bc)" >>"$work/walls"
}
run one-group-of-2 2
run two-groups-of-1 1
run two-groups-of-1-asha 1 --scheduler asha

python3 - "$work" "$epochs" <<'PY'
import csv, re, statistics, sys
work = sys.argv[1]
walls = dict(line.split() for line in open(f"{work}/walls"))
print(f"12 trials (bn-stats and full, 6 each, up to {sys.argv[2]} epochs drawn), 3 ranks (1 coordinator)")
print("%-24s %9s %11s %12s %14s %10s %s" % ("run", "wall (s)", "trials/h", "trial (s)", "coord/trial", "epochs", "best val F1 (bn-stats, full)"))
rows = {}
for name, wall in walls.items():
    wall = float(wall)
    trials = list(csv.DictReader(open(f"{work}/{name}/trials.csv")))
    rows[name] = trials
    coordinator = float(re.search(r"coordinator time: ([0-9.]+) s", open(f"{work}/{name}.log").read()).group(1))
    mean_trial = statistics.mean(float(t["seconds"]) for t in trials)
    epochs = sum(int(t["epochs_run"] or 0) for t in trials)
    best = {s: max(float(t["validation_mean_f1"]) for t in trials if t["strategy"] == s) for s in ("bn-stats", "full")}
    print("%-24s %9.1f %11.0f %12.1f %8.4f s %4.2f%% %6d   %.4f, %.4f" % (name, wall, 12 * 3600 / wall, mean_trial,
          coordinator / len(trials), 100 * coordinator / len(trials) / mean_trial, epochs, best["bn-stats"], best["full"]))
fifo, asha = float(walls["two-groups-of-1"]), float(walls["two-groups-of-1-asha"])
stopped = sum(t["status"] == "stopped" for t in rows["two-groups-of-1-asha"])
print(f"ASHA: {stopped} of 12 trials stopped early; wall time {asha:.1f} s vs {fifo:.1f} s ({100 * (1 - asha / fifo):.0f}% saved)")
print(f"two groups of 1 / one group of 2: {float(walls['one-group-of-2']) / fifo:.2f}x the trial throughput")
PY

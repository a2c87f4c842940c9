#!/usr/bin/env bash
# Training time per strategy on synthetic data (ResNet-50 at half width, 64 px by default):
# median step time of each of the five strategies and supervised over one epoch, the paper's
# ratios supervised / bn-stats (4.4x) and full / bn-stats-skip (1.33x), and the checkpoint
# figures (compression, write rate, training-thread stall).
# Usage: scripts/bench_strategies.sh [TRAIN_IMAGES] [WIDTH]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
images=${1:-2048}
width=${2:-0.5}
swift build -c release --product fairtune >/dev/null
bin=$PWD/.build/release/fairtune
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=(--model resnet50 --width "$width" --stem imagenet --image-size 64)

"$bin" synth --out "$work/raw" --train "$images" --val 64 --test 64 --image-size 64 --seed 1 >/dev/null
"$bin" pack --celeba "$work/raw" --image-size 64 --out "$work/packed" >/dev/null
"$bin" pretrain --data "$work/packed" --out "$work/pre" --batch 64 --steps 2 "${model[@]}" >/dev/null
for s in frozen bn-stats bn-stats-affine bn-stats-skip full supervised; do
  from=(--from "$work/pre/final.ckpt")
  [ "$s" = supervised ] && from=()
  "$bin" finetune --data "$work/packed" --out "$work/ft-$s" --strategy "$s" "${from[@]}" --batch 64 --epochs 1 \
    --checkpoint-every 8 "${model[@]}" >/dev/null
done

python3 - "$work" <<'PY'
import json, statistics, sys
work = sys.argv[1]
steps, epochs, tables, stalls, writes = {}, {}, {}, {}, []
for s in ["frozen", "bn-stats", "bn-stats-affine", "bn-stats-skip", "full", "supervised"]:
    records = [json.loads(l) for l in open(f"{work}/ft-{s}/metrics.jsonl")]
    times = [r["step_seconds"] for r in records if "step_seconds" in r]
    steps[s] = statistics.median(times[1:])  # the first step sizes buffers
    epochs[s] = sum(times)
    run = json.load(open(f"{work}/ft-{s}/run.json"))
    tables[s] = run.get("feature_table", {}).get("seconds", 0.0)
    stalls[s] = [(r["checkpoint_stall_seconds"], steps[s]) for r in records if "checkpoint_stall_seconds" in r]
    writes += [r for r in records if "checkpoint_bytes" in r]
print("%-16s %12s %10s %12s %14s" % ("strategy", "step (ms)", "img/s", "epoch (s)", "+ table (s)"))
for s, t in steps.items():
    print("%-16s %12.1f %10.1f %12.2f %14s" % (s, 1000 * t, 64 / t, epochs[s], "%.2f" % tables[s] if tables[s] else "-"))
print("frozen: the backbone's features of every image are computed once (the table), then each step runs only the head")
print("supervised / bn-stats: %.2fx (paper 4.4x); full / bn-stats-skip: %.2fx (paper 1.33x)"
      % (steps["supervised"] / steps["bn-stats"], steps["full"] / steps["bn-stats-skip"]))
if writes:
    raw = sum(w["checkpoint_raw_bytes"] for w in writes)
    stored = sum(w["checkpoint_bytes"] for w in writes)
    seconds = sum(w["checkpoint_write_seconds"] for w in writes)
    print("checkpoints: %d written, compression %.3fx, %.0f MB/s (raw MB per second of encode+write on the writer thread)"
          % (len(writes), raw / stored, raw / 1e6 / seconds))
for s, pairs in stalls.items():
    if pairs:
        print("checkpoint stall on the training thread, %-16s median %6.2f ms = %6.1f%% of its step"
              % (s + ":", 1000 * statistics.median(a for a, _ in pairs), 100 * statistics.median(a / b for a, b in pairs)))
PY

#!/usr/bin/env bash
# Times the fairness metrics on synthetic CelebA-sized data (162,770 train and 19,962 test
# images, 40 attributes) in a release build: the popcount pair counts and the weighted bootstrap
# against one pass over the test images per (task, condition) pair, which must agree exactly.
# Usage: scripts/bench_fairness.sh [RESAMPLES [BASELINE_RESAMPLES]]
set -euo pipefail
cd "$(dirname "$0")/.."
resamples="${1:-1000}"
baseline="${2:-$resamples}"
scratch="${SCRATCH_PATH:-.build-fairness}"
swift build -c release --scratch-path "$scratch" --product fairtune
"$scratch/release/fairtune" fairness --bench --bootstrap "$resamples" --bench-baseline-resamples "$baseline"

#!/usr/bin/env bash
# Times the data pipeline in a release build: synthetic faces per second, libjpeg-turbo's raw
# decode rate on those files, pack (decode + crop + resize), the loader with SimCLR's two views
# on 1 and 2 threads, and the share of a ResNet-18 training step spent waiting for data; then
# trains a small ResNet-18 briefly and prints each attribute's test accuracy against the
# majority-class baseline (the learnability check; a few minutes on 2 cores).
# Usage: scripts/bench_data.sh [IMAGES [LEARN_STEPS]]
set -euo pipefail
cd "$(dirname "$0")/.."
images="${1:-10000}"
learn_steps="${2:-1500}"
scratch="${SCRATCH_PATH:-.build-data-bench}"
swift build -c release --scratch-path "$scratch" --product fairtune
"$scratch/release/fairtune" bench-data --images "$images" --learn-steps "$learn_steps"

#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job. For now: the training-step benchmark
# of a small ResNet-18 on 64 px images; later, the whole pipeline on the built-in dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

swift build -c release --product fairtune
.build/release/fairtune bench --model resnet18 --image-size 64 --batch 64 --steps 10 "$@"

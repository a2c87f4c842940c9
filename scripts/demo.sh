#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: the whole experiment on the built-in
# synthetic faces (`fairtune reproduce --preset tiny`, a few minutes on 2 cores). Pass another
# preset or options through: scripts/demo.sh --preset small --out runs/small
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

swift build -c release --product fairtune
args=("$@")
((${#args[@]})) || args=(--preset tiny --out runs/demo)
.build/release/fairtune reproduce "${args[@]}"

#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the XCTest suites (the multi-process
# ones drive the release binary under mpirun), the command-line checks, the bad-input matrix,
# the whole pipeline on the tiny preset, the concurrency suites under ThreadSanitizer, and 30 s
# of libFuzzer on each reader of outside data.
# Usage: scripts/test.sh [--sanitize]
#   --sanitize  instead: every XCTest suite under AddressSanitizer, then under ThreadSanitizer
#               (scripts/sanitize.sh address thread; about 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "" | --sanitize) ;;
  *) echo "usage: scripts/test.sh [--sanitize]" >&2; exit 2 ;;
esac
source scripts/setup.sh
if [ "${1:-}" = --sanitize ]; then
  exec scripts/sanitize.sh address thread
fi

swift build -c release --product fairtune
# A single-node Slurm for the sbatch tests (SlurmTests skip without one); stopped at the end.
if [ "$(id -u)" -eq 0 ] && [ -z "${FAIRTUNE_NO_SLURM:-}" ]; then
  if cluster/slurm/local.sh up; then trap 'cluster/slurm/local.sh down' EXIT; else echo "warning: no local Slurm; the Slurm tests will be skipped"; fi
fi
swift build --build-tests
mkdir -p .build
FAIRTUNE_BINARY="$PWD/.build/release/fairtune" swift test --skip-build 2>&1 | tee .build/test.log
scripts/cli_checks.sh .build/release/fairtune
scripts/bad_inputs.sh "$PWD/.build/release/fairtune"
scripts/pipeline_checks.sh .build/release/fairtune
scripts/sanitize.sh --concurrency thread
scripts/fuzz.sh "${FAIRTUNE_FUZZ_SECONDS:-30}"

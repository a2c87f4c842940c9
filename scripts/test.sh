#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

swift build --build-tests
swift test --skip-build 2>&1 | tee .build/test.log
# The command-line checks use the release binary, as users do.
swift build -c release --product fairtune
scripts/cli_checks.sh .build/release/fairtune

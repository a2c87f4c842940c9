#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test stage: the XCTest suites (the
# multi-process ones drive the release binary under mpirun), the command-line checks, the
# bad-input matrix, the whole pipeline on the tiny preset, the concurrency suites under
# ThreadSanitizer, and 30 s of libFuzzer on each reader of outside data. Every stage runs even
# when an earlier one failed (a stage that needs the build is skipped only when the build
# failed); a summary line per stage closes the run, and the exit status is non-zero if any
# stage failed.
# Usage: scripts/test.sh [--only STAGE,...] [--sanitize]
#   --only      run just these stages (build xctest cli bad-inputs pipeline tsan fuzz); the
#               build runs whenever a stage needs it
#   --sanitize  instead: every XCTest suite under AddressSanitizer, then under ThreadSanitizer
#               (scripts/sanitize.sh address thread; about 15 minutes on 2 cores)
set -uo pipefail
cd "$(dirname "$0")/.."
all_stages=(build xctest cli bad-inputs pipeline tsan fuzz)
only=""
sanitize=false
usage() { echo "usage: scripts/test.sh [--only STAGE,...] [--sanitize]; the stages are ${all_stages[*]}" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=true ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift ;;
    *) usage ;;
  esac
  shift
done
stages=("${all_stages[@]}")
if [ -n "$only" ]; then
  IFS=, read -r -a stages <<<"$only"
  for s in "${stages[@]}"; do [[ " ${all_stages[*]} " == *" $s "* ]] || { echo "scripts/test.sh: unknown stage '$s'" >&2; usage; }; done
  [[ " ${stages[*]} " == *" build "* ]] || stages=(build "${stages[@]}")
fi

set -e
source scripts/setup.sh
set +e
scripts/machine.sh
if $sanitize; then
  exec scripts/sanitize.sh address thread
fi

bin="$PWD/.build/release/fairtune"
build() { swift build -c release --product fairtune && swift build --build-tests; }
xctest() {
  mkdir -p .build
  FAIRTUNE_BINARY="$bin" swift test --skip-build 2>&1 | tee .build/test.log
}
cli() { scripts/cli_checks.sh "$bin"; }
bad-inputs() { scripts/bad_inputs.sh "$bin"; }
pipeline() { scripts/pipeline_checks.sh "$bin"; }
tsan() { scripts/sanitize.sh --concurrency thread; }
fuzz() { scripts/fuzz.sh "${FAIRTUNE_FUZZ_SECONDS:-30}"; }

# A single-node Slurm for the sbatch tests (SlurmTests skip without one); stopped at the end.
if [[ " ${stages[*]} " == *" xctest "* ]] && [ "$(id -u)" -eq 0 ] && [ -z "${FAIRTUNE_NO_SLURM:-}" ]; then
  if cluster/slurm/local.sh up; then trap 'cluster/slurm/local.sh down' EXIT; else echo "warning: no local Slurm; the Slurm tests will be skipped"; fi
fi

summary=()
failed=0
passed=0
run_start=$(date +%s)
for stage in "${stages[@]}"; do
  if [ "$stage" != build ] && [ "$stage" != tsan ] && [ "$stage" != fuzz ] && [ "${build_failed:-}" = yes ]; then
    # tsan and fuzz build their own instrumented copies, so they still run.
    summary+=("$(printf '%-11s %-16s %s' "$stage" skipped "(the build failed)")")
    failed=$((failed + 1))
    continue
  fi
  echo
  echo "=== stage $stage"
  start=$(date +%s)
  "$stage"
  status=$?
  seconds=$(($(date +%s) - start))
  if [ "$status" -eq 0 ]; then
    result=passed
    passed=$((passed + 1))
  else
    result="FAILED (exit $status)"
    failed=$((failed + 1))
    [ "$stage" = build ] && build_failed=yes
  fi
  summary+=("$(printf '%-11s %-16s %dm %02ds' "$stage" "$result" $((seconds / 60)) $((seconds % 60)))")
done
total=$(($(date +%s) - run_start))
echo
echo "=== summary ($(scripts/machine.sh --short))"
printf '%s\n' "${summary[@]}"
printf 'total %dm %02ds\n' $((total / 60)) $((total % 60))
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

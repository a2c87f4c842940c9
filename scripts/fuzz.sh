#!/usr/bin/env bash
# Fuzzes every reader of outside data with libFuzzer under AddressSanitizer (and its leak check).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  how long each target runs (default 30, as in CI)
#   TARGET   checkpoint safetensors attributes partition scores packed journal space (default: all)
# Two targets run at a time. Each starts from its committed seeds (fuzz/corpus/TARGET) and the
# corpus it grew before (.build-fuzz/corpus/TARGET, not committed). A crash, trap, sanitizer
# report, leak, timeout (10 s on one input) or out-of-memory (2 GB) fails the run; the input is
# kept as .build-fuzz/artifacts/TARGET-crash-* : replay it with
#   swift run fairtune-fuzz replay TARGET FILE
# and, once fixed, commit it under fuzz/regressions/TARGET/ (FuzzTargetsTests replays those).
# Prints a table of executions and coverage per target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "fuzz.sh: SECONDS must be a positive whole number, not '$seconds'" >&2; exit 2; }
all=(checkpoint safetensors attributes partition scores packed journal space)
targets=("${@:-${all[@]}}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'; the targets are ${all[*]}" >&2; exit 2; }
done

# The modules, instrumented for coverage and checked by AddressSanitizer (debug: every
# overflow and bounds check stays in), then the driver linked against their objects.
build=.build-fuzz
modules=(Support Logging Experiment Tensors NN Distributed CelebAFormat Data Fairness Training FuzzTargets)
mkdir -p "$build"
swift build --build-path "$build" --target FuzzTargets --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address >"$build/build.log" 2>&1 ||
  { tail -40 "$build/build.log" >&2; echo "fuzz.sh: the instrumented build failed (log: $build/build.log)" >&2; exit 1; }
bin=$(swift build --build-path "$build" --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address --show-bin-path)
objects=()
for m in "${modules[@]}"; do
  [ -d "$bin/$m.build" ] || { echo "fuzz.sh: the build made no $bin/$m.build" >&2; exit 1; }
  objects+=("$bin/$m.build"/*.o)
done
includes=()
for shim in Sources/C*/; do includes+=(-I "$shim"); done
for flag in $(pkg-config --cflags ompi-c openblas libzstd libturbojpeg); do includes+=(-Xcc "$flag"); done
swiftc -sanitize=fuzzer,address -parse-as-library -g -module-name FuzzDriver fuzz/driver.swift \
  -I "$bin/Modules" -I "$bin" "${includes[@]}" "${objects[@]}" -o "$build/fuzzer" >"$build/link.log" 2>&1 ||
  { grep -v "Cannot export local symbol" "$build/link.log" | tail -30 >&2; echo "fuzz.sh: linking the fuzzer failed" >&2; exit 1; }

mkdir -p "$build/artifacts" "$build/logs"
run() {
  local t=$1
  mkdir -p "$build/corpus/$t"
  FAIRTUNE_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=1 "$build/fuzzer" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$build/corpus/$t" "fuzz/corpus/$t" >"$build/logs/$t.log" 2>&1
}
declare -A status
pending=("${targets[@]}")
while [ ${#pending[@]} -gt 0 ]; do
  pair=("${pending[@]:0:2}")
  pending=("${pending[@]:2}")
  pids=()
  for t in "${pair[@]}"; do run "$t" & pids+=($!); done
  for i in "${!pair[@]}"; do
    if wait "${pids[$i]}"; then status[${pair[$i]}]=clean; else status[${pair[$i]}]="FAILED (exit $?)"; fi
  done
done

failed=0
printf '%-12s %12s %10s %8s %8s %8s  %s\n' target executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  printf '%-12s %12s %10s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "${status[$t]}"
  if [ "${status[$t]}" != clean ]; then
    failed=1
    echo "---- $t: $log" >&2
    grep -E 'ERROR|Fatal error|fairtune|SUMMARY|artifact|Test unit written' "$log" | head -20 >&2 || true
  fi
done
exit $failed

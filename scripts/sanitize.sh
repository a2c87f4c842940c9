#!/usr/bin/env bash
# Runs the XCTest suites under a sanitizer, in a build folder of its own (.build-SANITIZER).
# Usage: scripts/sanitize.sh [--concurrency] address|thread ...
#   --concurrency  only the suites where threads meet (the prefetching loader and its stop,
#                  the checkpoint writer and its slots, the frozen feature table, the parallel
#                  kernels and bootstraps, the in-process communicator, the sweep's coordinator
#                  and groups); CI runs this under thread
# The multi-process tests drive a fairtune built with the same sanitizer (release, so that
# training finishes): ASan checks every rank's memory, TSan the prefetch threads, the checkpoint
# writer and the kernels of every rank. Leak checking covers the test process (every suite
# that runs fairtune's code in-process) but not the ranks started under mpirun: OpenMPI's
# plugins leave allocations at exit whose stacks LeakSanitizer cannot name or suppress. The
# readers' leaks are checked by scripts/fuzz.sh.
# Any sanitizer report fails the run (halt_on_error); reports are in .build-SANITIZER/test.log.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=()
if [ "${1:-}" = --concurrency ]; then
  # The tests of a rank that dies or hangs time the whole job's teardown, which they test
  # without a sanitizer in the xctest stage: under ThreadSanitizer a rank's exit after
  # MPI_Abort once outlived the job's 120 s limit. The other multi-process tests stay here.
  filter=(--filter 'LoaderTests|TrainerTests|SamplerTests|ReducerTests|TensorsTests|SweepTests|MeanF1Tests|IndependentMetricsTests|MPIRunTests|CheckpointTests|FeatureCacheTests|InProcessCollectiveTests|InProcessDataParallelTests|InProcessSweepTests'
    --skip 'MPIRunTests.test(ADeadRankStopsTheJob|AHungRankStopsTheJobWithinTheTimeout)')
  shift
fi
[ $# -gt 0 ] || { echo "usage: scripts/sanitize.sh [--concurrency] address|thread ..." >&2; exit 2; }
for sanitizer in "$@"; do
  case "$sanitizer" in
    address)
      export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
      export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0:exitcode=0"  # the log decides (below)
      export FAIRTUNE_RANK_ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 ;;
    thread) export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ;;
    *) echo "sanitize.sh: unknown sanitizer '$sanitizer' (use address or thread)" >&2; exit 2 ;;
  esac
  build=".build-$sanitizer"
  echo "== $sanitizer sanitizer: building $build"
  swift build -c release --build-path "$build" --sanitize="$sanitizer" --product fairtune
  swift build --build-path "$build" --sanitize="$sanitizer" --build-tests
  echo "== $sanitizer sanitizer: tests ${filter[*]:-(all)}"
  set +e
  FAIRTUNE_BINARY="$PWD/$build/release/fairtune" swift test --build-path "$build" --sanitize="$sanitizer" --skip-build "${filter[@]}" 2>&1 | tee "$build/test.log"
  status=${PIPESTATUS[0]}
  set -e
  # A memory error, a race, or a direct leak fails. Indirect leaks alone (objects reachable only
  # from a suppressed toolchain leak: XCTest keeps test instances alive) are reported, not fatal.
  if grep -qE '^(==[0-9]+==ERROR: (AddressSanitizer|ThreadSanitizer)|WARNING: ThreadSanitizer|Direct leak of)' "$build/test.log"; then
    echo "sanitize.sh: the $sanitizer sanitizer reported errors (see $build/test.log)" >&2
    exit 1
  fi
  [ "$status" -eq 0 ] || { echo "sanitize.sh: tests failed under the $sanitizer sanitizer" >&2; exit "$status"; }
  echo "== $sanitizer sanitizer: clean"
done

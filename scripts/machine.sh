#!/usr/bin/env bash
# Names the machine a test or benchmark ran on: the CPU model, its vector extensions, the
# OpenBLAS core type in use (its kernels, and so the order of fp32 sums, depend on it) and the
# cores. Usage: scripts/machine.sh [--short]   (--short: one line, for summaries)
set -uo pipefail
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
flags=" $(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1) "
extensions=()
for f in avx2 fma avx512f avx512_bf16 amx_tile amx_bf16; do
  [[ "$flags" == *" $f "* ]] && extensions+=("$f")
done
# The core OpenBLAS chose at load time (OPENBLAS_CORETYPE, when set, overrides it).
core=$(python3 - 2>/dev/null <<'PY'
import ctypes, ctypes.util
for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
    try:
        lib = ctypes.CDLL(name)
    except (OSError, TypeError):
        continue
    lib.openblas_get_corename.restype = ctypes.c_char_p
    print(lib.openblas_get_corename().decode())
    break
PY
)
line="CPU: ${model:-unknown}; ${extensions[*]:-no avx2}; OpenBLAS core ${core:-unknown}; $(nproc) cores"
if [ "${1:-}" = --short ]; then
  echo "$line"
else
  echo "$line"
  [ -n "${OPENBLAS_CORETYPE:-}" ] && echo "  OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is set"
  echo "  $(swift --version 2>/dev/null | head -1)"
fi

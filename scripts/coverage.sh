#!/usr/bin/env bash
# CPU line coverage of the runtime (cpp/src/runtime/): an instrumented CPU-only build in
# build-cov/ (its library and Python module go to build-cov/py/edge_sdk, beside a copy of the
# Python package, so the normal in-place build is untouched), the C++ unit tests and the runtime
# Python tests run against it, then gcov's per-line counts summed per source file (a line is
# executed when any object file that compiles it executed it).
#
# Files of cpp/src/runtime/ that the CPU build does not compile (trt/: TensorRT and CUDA) have no
# gcov data; they are listed with their code lines (scripts/gpu_only_lines.py's count) as
# unexecuted, and the summary gives the figure with and without them.
#
# Usage: bash scripts/coverage.sh [--no-build] [--no-python] [--report]     (after scripts/setup.sh)
#   --report: only the summary of the counts the last run left in build-cov/
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
build=build-cov
do_build=1
do_python=1
do_tests=1
for a in "$@"; do
  case "$a" in
    --no-build) do_build=0 ;;
    --no-python) do_python=0 ;;
    --report) do_build=0; do_tests=0 ;;
    *) echo "unknown option $a"; exit 2 ;;
  esac
done
pkg="$PWD/$build/py/edge_sdk"
if [ $do_build = 1 ]; then
  rm -rf "$build/py"
  mkdir -p "$build/py"
  # The Python sources only: the instrumented library and module are built into this copy.
  $PY - "$pkg" <<'PYEOF'
import shutil, sys
shutil.copytree("edge_sdk", sys.argv[1], ignore=shutil.ignore_patterns("*.so", "*.so.*", "__pycache__"))
PYEOF
  cmake -S . -B "$build" -G Ninja -DEDGE_SDK_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage -DCMAKE_EXE_LINKER_FLAGS=--coverage \
    -DEDGE_SDK_INPLACE_DIR="$pkg" > /dev/null
  cmake --build "$build"
fi
if [ $do_tests = 1 ]; then
find "$build" -name '*.gcda' -delete
echo "== C++ unit tests (instrumented)"
(cd "$build" && ctest --output-on-failure -E trt_backend_compile_check) | tail -3
fi
if [ $do_tests = 1 ] && [ $do_python = 1 ]; then
  echo "== runtime Python tests (instrumented)"
  # The instrumented package first on sys.path, and the tests' own rootdir entry appended after it.
  $PY -c "import sys; sys.path.insert(0, '$PWD/$build/py'); import pytest, edge_sdk; \
assert edge_sdk.__file__.startswith('$PWD/$build/py'), edge_sdk.__file__; \
sys.exit(pytest.main(sys.argv[1:]))" -q -p no:cacheprovider --import-mode=append tests/test_runtime.py \
    tests/test_runtime_kinds.py tests/test_runtime_parity.py tests/test_recon_runtime.py tests/test_cli_runtime.py | tail -3
fi
echo "== gcov summary of cpp/src/runtime/"
$PY - "$build" <<'PYEOF'
import glob, json, os, subprocess, sys, pathlib
build = sys.argv[1]
root = pathlib.Path.cwd()
runtime = root / "cpp" / "src" / "runtime"
lines = {}  # source path -> {line: executed}
objdir = os.path.join(build, "CMakeFiles", "edge_sdk_core.dir")
for gcda in sorted(glob.glob(os.path.join(objdir, "**", "*.gcda"), recursive=True)):
    out = subprocess.run(["gcov", "--json-format", "--stdout", os.path.abspath(gcda)], capture_output=True, text=True,
                         cwd=build, check=True).stdout
    for doc in out.splitlines():
        if not doc.strip():
            continue
        for f in json.loads(doc)["files"]:
            p = pathlib.Path(f["file"])
            p = (root / build / p).resolve() if not p.is_absolute() else p.resolve()
            if runtime not in p.parents:
                continue
            d = lines.setdefault(p, {})
            for ln in f["lines"]:
                d[ln["line_number"]] = d.get(ln["line_number"], False) or ln["count"] > 0
sys.path.insert(0, str(root / "scripts"))
from gpu_only_lines import code_lines
tot_e = tot_n = 0
print(f"{'executed':>8} {'lines':>6} {'%':>6}  file")
for p in sorted(lines):
    e, n = sum(lines[p].values()), len(lines[p])
    tot_e += e
    tot_n += n
    print(f"{e:8d} {n:6d} {100.0 * e / max(n, 1):6.1f}  {p.relative_to(root)}")
print(f"{tot_e:8d} {tot_n:6d} {100.0 * tot_e / max(tot_n, 1):6.1f}  total of the files the CPU build compiles")
missing = 0
for p in sorted(runtime.rglob("*")):
    # Sources never compiled, and the headers of trt/ (only those sources include them).
    uncompiled = p.suffix in {".cpp", ".cu"} or (p.suffix in {".cuh", ".hpp"} and "trt" in p.parts)
    if uncompiled and p not in lines:
        n = code_lines(p.read_text())
        missing += n
        print(f"{0:8d} {n:6d} {0.0:6.1f}  {p.relative_to(root)} (not compiled by the CPU build; code lines)")
print(f"{tot_e:8d} {tot_n + missing:6d} {100.0 * tot_e / max(tot_n + missing, 1):6.1f}  total with those counted as unexecuted")
PYEOF

#!/usr/bin/env bash
# The C/C++ SDK as a host program sees it: installs the built SDK into a temporary prefix
# (cmake --install), checks that the library exports exactly the C ABI of c_api.h, builds the
# consumer tests (cpp/sdk_tests) and the example host (cpp/examples/host) against the INSTALLED
# SDK only (find_package(edge_sdk)), and runs them on fixtures written by make_fixtures.py.
#
# Usage: bash scripts/test_sdk.sh [BUILD_DIR]    (default: build; run after scripts/setup.sh)
# Env:   EDGE_SDK_STRESS_BATCHES (default 500 batches per thread), KEEP=1 keeps the temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
PY=${PYTHON:-python3}
work=$(mktemp -d -t edge_sdk_test.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
export EDGE_SDK_NUM_THREADS=${EDGE_SDK_NUM_THREADS:-1}

echo "== install the SDK into $work/prefix"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
lib=$(ls "$work"/prefix/lib*/libedge_sdk.so.* | head -1)

echo "== exported C symbols = the functions declared in c_api.h"
grep -oE 'EDGE_API [^;(]*\b(edge_[a-z_0-9]+)\(' "$work/prefix/include/edge_sdk/c_api.h" | grep -oE 'edge_[a-z_0-9]+\($' | tr -d '(' | sort > "$work/declared.txt"
nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^edge_/ {print $3}' | sort > "$work/exported.txt"
if ! diff -u "$work/declared.txt" "$work/exported.txt"; then echo "FAIL: exported C symbols differ from c_api.h"; exit 1; fi
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
abi_major=$(sed -n 's/^#define EDGE_ABI_VERSION_MAJOR \([0-9]*\).*/\1/p' "$work/prefix/include/edge_sdk/c_api.h")
# The SONAME follows the C ABI's major version (docs/C_API.md): a host linked today keeps loading
# every minor release, and refuses a library whose ABI broke.
if [ -z "$abi_major" ] || [ "$soname" != "libedge_sdk.so.$abi_major" ]; then
  echo "FAIL: SONAME '$soname', expected libedge_sdk.so.<EDGE_ABI_VERSION_MAJOR = '$abi_major'>"; exit 1
fi
echo "$(wc -l < "$work/exported.txt") C functions, SONAME $soname (ABI major $abi_major)"

echo "== fixtures"
$PY cpp/sdk_tests/make_fixtures.py "$work/fixtures"
ort=$($PY -m edge_sdk.cli config --onnxruntime-lib)
export EDGE_SDK_ONNXRUNTIME_LIB="$ort"

echo "== consumer tests: configure and build against the installed SDK"
cmake -S cpp/sdk_tests -B "$work/tests" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/tests.log"
cmake --build "$work/tests" >> "$work/tests.log" || { cat "$work/tests.log"; exit 1; }
mkdir -p "$work/out"
echo "== test_c_api (C99)"
"$work/tests/test_c_api" "$work/fixtures" "$work/out"
$PY cpp/sdk_tests/check_results.py "$work/fixtures" "$work/out"
echo "== test_cpp_api (C++17 wrapper)"
"$work/tests/test_cpp_api" "$work/fixtures"
echo "== test_concurrency"
"$work/tests/test_concurrency" "$work/fixtures" "${EDGE_SDK_STRESS_BATCHES:-500}"
echo "== test_hot_path_alloc"
"$work/tests/test_hot_path_alloc" "$work/fixtures" 200

echo "== example host program (cpp/examples/host) against the installed SDK"
cmake -S cpp/examples/host -B "$work/host" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/host.log"
cmake --build "$work/host" >> "$work/host.log" || { cat "$work/host.log"; exit 1; }
"$work/host/edge_host" --bundle "$work/fixtures/regions" --frames "$work/fixtures/frames" --rate 50 --cycles 12 \
  --deadline-ms 500 --threads 1
echo "SDK tests passed"

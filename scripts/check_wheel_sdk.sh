#!/usr/bin/env bash
# The C/C++ SDK inside the Python wheel: builds the wheel (pip wheel, a full build: minutes),
# unpacks it into a temporary site folder, asks `edge-sdk config` where the CMake package is, and
# builds and runs the example hosts against it. Not part of scripts/test.sh (time); run after
# packaging changes.
#
# Usage: bash scripts/check_wheel_sdk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
work=$(mktemp -d -t edge_sdk_wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== pip wheel (EDGE_SDK_CUDA=OFF)"
$PY -m pip wheel . --no-deps --no-build-isolation -w "$work/dist" -C cmake.define.EDGE_SDK_CUDA=OFF \
  -C build-dir="$work/build" > "$work/wheel.log" 2>&1 || { tail -30 "$work/wheel.log"; exit 1; }
wheel=$(ls "$work"/dist/*.whl)
echo "$(basename "$wheel"):"
$PY -m zipfile -l "$wheel" | grep -E "libedge_sdk|include/|share/cmake" | awk '{print "  " $1}'
mkdir -p "$work/site"
$PY -m zipfile -e "$wheel" "$work/site"
export PYTHONPATH="$work/site"
cmake_dir=$(cd "$work" && $PY -m edge_sdk.cli config --cmake-dir)
case "$cmake_dir" in "$work/site/"*) ;; *) echo "FAIL: config --cmake-dir gave $cmake_dir, not the unpacked wheel"; exit 1 ;; esac
echo "== edge-sdk config --cmake-dir: $cmake_dir"
# The config must be the installed (relocatable) one, pointing into the wheel, not a build tree's.
grep -q '${_IMPORT_PREFIX}/edge_sdk/libedge_sdk.so' "$cmake_dir"/edge_sdkTargets-*.cmake \
  || { echo "FAIL: the wheel's CMake config does not point at the wheel's library"; exit 1; }
$PY cpp/sdk_tests/make_fixtures.py "$work/fixtures" > /dev/null
cmake -S cpp/examples/host -B "$work/host" -G Ninja -Dedge_sdk_DIR="$cmake_dir" > /dev/null
cmake --build "$work/host" > /dev/null
EDGE_SDK_ONNXRUNTIME_LIB=$(cd "$work" && $PY -m edge_sdk.cli config --onnxruntime-lib) \
  "$work/host/edge_host" --bundle "$work/fixtures/regions" --frames "$work/fixtures/frames" --rate 50 --cycles 6 --quiet
# The OpenCV example host too, where OpenCV's development files are installed (CI installs them).
if cmake -S cpp/examples/opencv_host -B "$work/opencv_host" -G Ninja -Dedge_sdk_DIR="$cmake_dir" > "$work/opencv_host.log" 2>&1; then
  cmake --build "$work/opencv_host" > /dev/null
  EDGE_SDK_ONNXRUNTIME_LIB=$(cd "$work" && $PY -m edge_sdk.cli config --onnxruntime-lib) \
    "$work/opencv_host/edge_opencv_host" --bundle "$work/fixtures/plain" --video "$work/fixtures/png/plain_%03d.png" \
    --threads 1 > "$work/opencv_video.txt"
  $PY cpp/sdk_tests/check_opencv_host.py "$work/fixtures" "$work/opencv_video.txt"
elif grep -q "OpenCV not found" "$work/opencv_host.log"; then
  echo "SKIPPED the OpenCV example host: $(grep -o "OpenCV not found.*" "$work/opencv_host.log" | head -1)"
  if [ "${EDGE_SDK_REQUIRE_FULL:-0}" = 1 ]; then exit 1; fi
else
  cat "$work/opencv_host.log"; exit 1
fi
echo "wheel SDK: ok"

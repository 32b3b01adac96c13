#!/usr/bin/env bash
# Installs everything the SDK, its tests and benchmarks need from the package registries, then
# builds the compiled core in place (edge_sdk/_core*.so) so the source tree imports directly.
# Usage: bash scripts/setup.sh            (CUDA kernels built when nvcc is found)
#        EDGE_SDK_CUDA=OFF bash scripts/setup.sh   (CPU-only build)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

echo "== system packages"
# libssl-dev: libcrypto's headers (bundle signatures are verified with OpenSSL's Ed25519); strace:
# the tests that kill a writer at each rename. Installed only where missing, by package name.
missing=()
[ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
command -v strace > /dev/null || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
  else
    echo "missing system packages: ${missing[*]} (install them with your package manager)"
  fi
fi

echo "== python packages (versions from requirements/constraints.txt)"
# Every pip call, and the isolated build environment of 'pip install .', reads the pins from here.
# EDGE_SDK_UNPINNED=1 (scripts/check_drift.sh) installs the newest versions instead.
if [ "${EDGE_SDK_UNPINNED:-0}" != 1 ]; then export PIP_CONSTRAINT="$PWD/requirements/constraints.txt"; fi
# torch 2.13.0 from the default index is a CPU build here; installed first so nothing pulls a CUDA one.
$PY -m pip install -q "torch==2.13.0"
$PY -m pip install -q -r requirements/dev.txt
# Type stubs of TensorRT's Python API, for mypy on converters/trt_builder.py. --no-deps: the stubs
# declare a dependency on tensorrt itself, whose libraries cannot be installed on machines without
# NVIDIA's package index; only the .pyi files are wanted.
$PY -m pip install -q --no-deps "tensorrt-stubs==10.13.0.35.1"

echo "== ONNX Runtime headers"
bash scripts/fetch_onnxruntime_headers.sh

echo "== TensorRT headers (compile check of the TensorRT backend)"
bash scripts/fetch_tensorrt_headers.sh

echo "== Triton serving environment (scripts/setup_triton.sh: .venv-triton, for edge-sdk triton and its tests)"
bash scripts/setup_triton.sh

echo "== build (in place)"
cmake -S . -B build -G Ninja -DEDGE_SDK_CUDA="${EDGE_SDK_CUDA:-AUTO}" >/dev/null
cmake --build build

echo "== the edge-sdk command"
# A launcher for this source tree in the Python's scripts folder (on PATH in a venv), so the
# README's `edge-sdk ...` works after setup; `pip install .` replaces it with the packaged one.
# An edge-sdk that is not such a launcher is left alone.
bin=$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
py_abs=$($PY -c 'import sys; print(sys.executable)')
marker="# edge-sdk launcher of a source tree (scripts/setup.sh)"
if [ -w "$bin" ] && { [ ! -e "$bin/edge-sdk" ] || grep -qF "$marker" "$bin/edge-sdk"; }; then
  tmp=$(mktemp "$bin/.edge-sdk.XXXXXX")
  printf '#!/bin/sh\n%s\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec "%s" -m edge_sdk.cli "$@"\n' \
    "$marker" "$PWD" "$py_abs" > "$tmp"
  chmod 755 "$tmp" && mv -f "$tmp" "$bin/edge-sdk"
  case ":$PATH:" in
    *":$bin:"*) echo "edge-sdk -> $bin/edge-sdk" ;;
    *) echo "edge-sdk written to $bin/edge-sdk; that folder is not on PATH: export PATH=\"$bin:\$PATH\"" ;;
  esac
elif [ -e "$bin/edge-sdk" ]; then
  echo "edge-sdk: an installed one is kept ($bin/edge-sdk)"
else
  echo "edge-sdk: $bin is not writable; run the CLI as: $PY -m edge_sdk.cli ..."
fi

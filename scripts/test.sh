#!/usr/bin/env bash
# The test command: sets up (scripts/setup.sh), then runs the C++ unit tests (CTest) and pytest.
# Tests that need a GPU, TensorRT or ../shared/datasets skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== C++ tests (ctest)"
(cd build && ctest --output-on-failure)
echo "== Python tests (pytest)"
python3 -m pytest -q -ra "$@"

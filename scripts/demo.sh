#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m edge_sdk.demo "$@"

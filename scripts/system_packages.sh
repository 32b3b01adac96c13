#!/usr/bin/env bash
# Debian packages the full test suite uses beyond Python's: chromium (the HTML report is checked in
# a real headless browser) and libopencv-dev (the OpenCV example host that scripts/test_sdk.sh and
# scripts/check_wheel_sdk.sh build). Installed only when missing, and only where apt-get runs as
# root; elsewhere the tests that need them skip with the reason (a failure under CI's
# EDGE_SDK_REQUIRE_FULL=1).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/include/opencv4/opencv2/core.hpp ] || need+=(libopencv-dev)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "system packages missing (${need[*]}): install them with apt-get as root; their tests will skip" >&2
  exit 0
fi
echo "== apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

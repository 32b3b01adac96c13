#!/usr/bin/env bash
# Finds dependency drift on purpose (not part of CI): copies the committed tree to a scratch folder,
# makes a new venv there, installs the NEWEST versions of requirements/dev.txt (no constraints; torch
# stays 2.13.0, the CPU build), builds, runs the tests, and prints every package whose version
# differs from requirements/constraints.txt. When the tests pass, the printed pins are the ones to
# take into constraints.txt.
# Usage: bash scripts/check_drift.sh [pytest args...]     (about the time of a CI run)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY_BASE=${PYTHON:-python3}
work=$(mktemp -d /tmp/edge-sdk-drift.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== scratch tree and venv in $work"
git archive HEAD | tar -x -C "$work"
[ -d third_party ] && cp -r third_party "$work/"
$PY_BASE -m venv "$work/venv"
PY="$work/venv/bin/python"
$PY -m pip install -q --upgrade pip

echo "== newest versions (EDGE_SDK_UNPINNED=1 scripts/setup.sh)"
(cd "$work" && PYTHON="$PY" EDGE_SDK_UNPINNED=1 PIP_CONSTRAINT= bash scripts/setup.sh) || { echo "setup failed"; exit 1; }

echo "== tests with the newest versions"
(cd "$work" && (cd build && ctest --output-on-failure -j1 >"$work/ctest.log" 2>&1); echo "ctest exit $?"; tail -3 "$work/ctest.log")
(cd "$work" && $PY -m pytest -q -p no:cacheprovider "$@" > "$work/pytest.log" 2>&1)
status=$?
grep -E "^(FAILED|ERROR) " "$work/pytest.log" | head -20
grep -E "[0-9]+ (passed|failed)" "$work/pytest.log" | tail -1

echo "== packages that moved against requirements/constraints.txt"
$PY -m pip freeze > "$work/freeze.txt" 2>/dev/null
$PY - "$root/requirements/constraints.txt" "$work/freeze.txt" <<'PY'
import re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = {}
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" in line:
        n, v = line.split("==", 1)
        pins[norm(n)] = v
now = {}
for line in open(sys.argv[2]):
    if "==" in line:
        n, v = line.strip().split("==", 1)
        now[norm(n)] = v.split("+")[0]
moved = [(n, pins[n], now[n]) for n in sorted(pins) if n in now and now[n] != pins[n].split("+")[0]]
new = [(n, now[n]) for n in sorted(now) if n not in pins]
gone = [n for n in sorted(pins) if n not in now]
for n, a, b in moved:
    print(f"moved  {n}: {a} -> {b}")
for n, b in new:
    print(f"new    {n}=={b}")
for n in gone:
    print(f"absent {n} (pinned, not installed now)")
print(f"{len(moved)} moved, {len(new)} new, {len(gone)} absent of {len(pins)} pinned")
PY
echo "pytest exit status with the newest versions: $status"
exit "$status"

#!/usr/bin/env bash
# The kernel pytest files once per CPU instruction-set path. The kernels pick their path once per
# process (cpp/src/kernels/cpu_isa.hpp), so the main pytest run only tests this CPU's best one;
# here each lower path runs in its own pytest process with EDGE_SDK_CPU_ISA set, against the same
# float64 / scipy / torch references. A path this CPU cannot run is reported and left out (it
# would silently run a lower one). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
FILES=(tests/test_ssim.py tests/test_heatmap.py tests/test_preprocess.py tests/test_mahalanobis.py tests/test_knn.py)
best=$("$PY" -c 'from edge_sdk.kernels.mahalanobis import cpu_isa; print(cpu_isa())')
echo "== kernel tests per CPU path (this CPU's best: $best, run by the main pytest run)"
for isa in generic avx2; do
  used=$(EDGE_SDK_CPU_ISA=$isa "$PY" -c 'from edge_sdk.kernels.mahalanobis import cpu_isa; print(cpu_isa())')
  if [ "$used" != "$isa" ]; then
    echo "-- EDGE_SDK_CPU_ISA=$isa: not run, this CPU runs $used for it (lacks $isa)"
    continue
  fi
  [ "$isa" = "$best" ] && { echo "-- $isa: the best path, already run"; continue; }
  echo "-- EDGE_SDK_CPU_ISA=$isa"
  EDGE_SDK_CPU_ISA=$isa "$PY" -m pytest -q -ra -p no:cacheprovider -m "not gpu" "${FILES[@]}" "$@"
done

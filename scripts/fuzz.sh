#!/usr/bin/env bash
# Fuzzes the bundle loader (cpp/fuzz/fuzz_bundle.cpp: manifest JSON and schema, safetensors,
# ONNX, tar archives, whole bundles with resealed checksums, signature.json) for a bounded time.
# libFuzzer + AddressSanitizer + UBSan with clang (`apt-get install clang`); without clang, a
# gcc build with the sanitizers and the plain mutation driver (cpp/fuzz/driver.cpp).
#
# Usage: bash scripts/fuzz.sh [SECONDS] [--driver]     (default 60: the CI budget)
# Env:   FUZZ_BUILD (default build-fuzz), FUZZ_JOBS (libFuzzer -jobs, default 1)
# Findings are written to $FUZZ_BUILD/findings/ (crash-*, leak-*, timeout-*, oom-*); exit status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=60
mode=auto
for a in "$@"; do
  case "$a" in
    --driver) mode=driver ;;
    *) secs=$a ;;
  esac
done
build=${FUZZ_BUILD:-build-fuzz}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
if [ "$mode" = auto ] && command -v clang++ > /dev/null; then
  cxx=clang++ cc=clang flags="$san -fsanitize=fuzzer-no-link" driver=OFF
else
  cxx=g++ cc=gcc flags="$san" driver=ON
fi
mkdir -p "$build"
echo "== build ($cxx, $([ $driver = ON ] && echo "mutation driver" || echo libFuzzer)) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=$cxx -DCMAKE_C_COMPILER=$cc \
  -DCMAKE_CXX_FLAGS="$flags" -DEDGE_SDK_CUDA=OFF -DEDGE_SDK_TENSORRT=OFF -DEDGE_SDK_PYTHON=OFF -DEDGE_SDK_TESTS=OFF \
  -DEDGE_SDK_FUZZ=ON -DEDGE_SDK_FUZZ_DRIVER=$driver > "$build/configure.log" || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target fuzz_bundle

# Seeds: fresh ones from real bundles when the Python stack is there, else the committed small ones.
seeds="$build/seeds"
rm -rf "$seeds"
if ! python3 cpp/fuzz/make_seeds.py "$seeds" > "$build/seeds.log" 2>&1; then
  echo "(make_seeds.py failed, using cpp/fuzz/seeds: $(tail -1 "$build/seeds.log"))"
  seeds=cpp/fuzz/seeds
fi
corpus="$build/corpus"
findings="$build/findings"
mkdir -p "$corpus" "$findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== fuzz for ${secs} s"
if [ $driver = ON ]; then
  "$build/fuzz_bundle" -max_total_time="$secs" "$corpus" "$seeds"
else
  # -malloc_limit_mb: one allocation beyond it is a finding (the loader must refuse before
  # allocating what a bundle declares); -max_len fits the seed archives.
  jobs=()
  if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
  "$build/fuzz_bundle" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -timeout=10 \
    "${jobs[@]}" -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" "$seeds" 2>&1 | tee "$build/fuzz.log" | grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' || true
  status=${PIPESTATUS[0]}
  if ls "$findings"/* > /dev/null 2>&1 || [ "$status" != 0 ]; then
    echo "FINDINGS in $findings (exit $status); replay one with: $build/fuzz_bundle FILE"
    exit 1
  fi
fi
echo "fuzzing found nothing"

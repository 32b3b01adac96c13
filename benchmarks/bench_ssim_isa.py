"""CPU SSIM by code path: the baseline x86-64 (SSE2) build of the kernel vs the AVX2+FMA and
AVX-512 clones picked at run time.

The path is chosen once per process (EDGE_SDK_CPU_ISA=generic|avx2 forces a lower one), so each
path is timed in a child process of this one run, on the same inputs: 8 float32 image pairs of
256 x 256 (a batch check) and of 64 x 64 (the reconstruction models' "small" preset), at 1 and 2
threads. The paths must agree to float rounding before their timings are compared.
Target: the dispatched path >= 2x faster than the kernel before dispatch and register blocking
(8.2 ms and 0.57 ms single-threaded on the machine where it was written; see docs/RESULTS.md, "Kernel speed (CPU)").

    python benchmarks/bench_ssim_isa.py [--repeats 30] [--out benchmarks/results/bench_ssim_isa.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from _common import REPO, median_seconds, write_json

SHAPES = [(8, 256, 256), (8, 64, 64)]
THREADS = [1, 2]


def inputs(shape):
    rng = np.random.default_rng(0)
    a = rng.random(shape, dtype=np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    return a, b


def child(repeats: int) -> None:
    import edge_sdk
    from edge_sdk import kernels
    from edge_sdk.kernels.mahalanobis import cpu_isa

    record = {"isa": cpu_isa(), "seconds": {}, "values": {}}
    for shape in SHAPES:
        a, b = inputs(shape)
        key = "x".join(map(str, shape))
        record["values"][key] = kernels.ssim(a, b).tolist()
        for threads in THREADS:
            edge_sdk.set_num_threads(threads)
            reps = repeats if shape[1] > 64 else repeats * 10
            record["seconds"][f"{key}/{threads}"] = median_seconds(lambda: kernels.ssim(a, b), reps)
    print(json.dumps(record))


def run_path(isa: str | None, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("EDGE_SDK_CPU_ISA", None)
    if isa:
        env["EDGE_SDK_CPU_ISA"] = isa
    proc = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(repeats)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child (EDGE_SDK_CPU_ISA={isa}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_ssim_isa.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.repeats)
        return 0

    paths = {}
    for isa in ("generic", "avx2", None):
        rec = run_path(isa, args.repeats)
        paths.setdefault(rec["isa"], rec)  # a CPU without AVX-512 (or AVX2) repeats a path
    best = rec["isa"]  # the last run: nothing forced
    ref = paths["generic"]["values"]
    worst = max(float(np.abs(np.array(p["values"][k]) - np.array(ref[k])).max())
                for p in paths.values() for k in ref)
    print(f"CPU SSIM by code path (dispatched: {best}), median of {args.repeats} "
          f"(x10 for 64 x 64); max |difference| between paths = {worst:.1e}")
    if worst > 1e-5:
        print("  ERROR: the code paths disagree; timings not comparable")
        return 1
    print(f"  {'batch / threads':<18}" + "".join(f"{isa:>10}" for isa in paths) + "   generic/best")
    for key in paths["generic"]["seconds"]:
        row = [paths[isa]["seconds"][key] for isa in paths]
        ratio = paths["generic"]["seconds"][key] / paths[best]["seconds"][key]
        print(f"  {key:<18}" + "".join(f"{t * 1e3:8.3f}ms" for t in row) + f"   {ratio:8.2f}x")
    write_json(args.out, {"benchmark": "ssim_isa", "dispatched": best,
                          "seconds": {isa: p["seconds"] for isa, p in paths.items()},
                          "max_abs_difference_between_paths": worst})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

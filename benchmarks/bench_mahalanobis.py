"""Mahalanobis speed: edge_sdk.kernels.mahalanobis vs the batched-matmul formulation anomalib uses.

Both run in one process, on the same inputs, with the same thread count (default 2), interleaved
round by round (the machine may be shared); the script prints median times and the ratio
anomalib-style time / ours. Target: >= 2x.

anomalib (PaDiM, ``AnomalyMapGenerator.compute_distance``) keeps the inverse covariance computed
at fit time and scores with

    delta = (embedding - mean).permute(2, 0, 1)                  # (HW, B, C)
    distances = (torch.matmul(delta, inv_covariance) * delta).sum(2).permute(1, 0)
    distances = distances.clamp(0).sqrt()

on embeddings laid out (B, C, H*W). The ratio is taken against the per-location form of that
formula, ``delta = x - mean; sqrt(((delta @ inv_cov) * delta).sum(-1))``, given its most
favourable layout, (L, N, C) contiguous, so that torch runs plain contiguous batched GEMMs. With
--anomalib-exact, anomalib's exact code on its (B, C, HW) layout is timed too: torch's batched
matmul on that permuted delta (channel stride HW) is far slower (seconds at L=4096), so it is off
by default. Ours takes features (N, L, C), mean (L, C) and the Cholesky factors (L, C, C).

    python benchmarks/bench_mahalanobis.py [--n 16] [--l 4096] [--c 100] [--threads 2] [--rounds 15]
                                           [--anomalib-exact] [--out benchmarks/results/bench_mahalanobis.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from _common import REPO, cuda_device, median_seconds, pin_threads, write_json

TARGET = 2.0


def anomalib_compute_distance(embedding, mean, inv_covariance):
    """anomalib's PaDiM distance: embedding (B, C, HW), mean (C, HW), inv_covariance (HW, C, C)."""
    import torch

    delta = (embedding - mean).permute(2, 0, 1)
    distances = (torch.matmul(delta, inv_covariance) * delta).sum(2).permute(1, 0)
    return distances.clamp(0).sqrt()


def matmul_per_location(x_lnc, mean, inv_cov):
    """The same formula per location: x_lnc (L, N, C) contiguous, mean (L, C) -> (L, N)."""
    delta = x_lnc - mean[:, None]
    return ((delta @ inv_cov) * delta).sum(-1).clamp(0).sqrt()


def make_inputs(n: int, l: int, c: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    samples = c + 10
    a = torch.randn(l, c, samples, generator=g)
    cov = a @ a.transpose(1, 2) / samples + 0.01 * torch.eye(c)  # PaDiM's regularization
    chol = torch.linalg.cholesky(cov)
    inv_cov = torch.linalg.inv(cov)  # anomalib precomputes this at fit time
    mean = torch.randn(l, c, generator=g)
    x = mean + torch.randn(n, l, c, generator=g)
    return x, mean, chol, inv_cov


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--l", type=int, default=4096)
    ap.add_argument("--c", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--anomalib-exact", action="store_true", help="also time anomalib's code on (B, C, HW)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_mahalanobis.json")
    args = ap.parse_args()
    n, l, c = args.n, args.l, args.c

    pin_threads(args.threads)
    import torch

    from edge_sdk import kernels
    from edge_sdk.kernels.mahalanobis import cpu_isa

    x, mean, chol, inv_cov = make_inputs(n, l, c)
    # Each contender gets its inputs in its own layout, prepared outside the timing.
    x_np = np.ascontiguousarray(x.numpy())
    mean_np = np.ascontiguousarray(mean.numpy())
    chol_np = np.ascontiguousarray(chol.numpy())
    x_lnc = x.transpose(0, 1).contiguous()  # (L, N, C)
    embedding = x.permute(0, 2, 1).contiguous()  # (B, C, HW)
    mean_chw = mean.T.contiguous()  # (C, HW)
    inv_cov = inv_cov.contiguous()

    ours, baseline, exact = "edge_sdk.kernels.mahalanobis", "batched matmul per location", "anomalib compute_distance"
    candidates = {
        ours: (lambda: kernels.mahalanobis(x_np, mean_np, chol_np), lambda r: r),
        baseline: (lambda: matmul_per_location(x_lnc, mean, inv_cov), lambda r: r.T.numpy()),
    }
    if args.anomalib_exact:
        candidates[exact] = (lambda: anomalib_compute_distance(embedding, mean_chw, inv_cov), lambda r: r.numpy())

    # Same numbers first: float64 reference (triangular solve) on a subset of locations.
    sub = slice(0, min(l, 256))
    delta = (x[:, sub].double() - mean[sub].double()).permute(1, 2, 0)  # (L', C, N)
    ref = torch.linalg.solve_triangular(chol[sub].double(), delta, upper=False).norm(dim=1).T.numpy()
    errors = {}
    with torch.no_grad():
        for name, (fn, as_nl) in candidates.items():
            errors[name] = float(np.max(np.abs(as_nl(fn())[:, sub] - ref) / ref))  # also the warm-up
    print(f"Mahalanobis distance, N={n} L={l} C={c}, {args.threads} threads, torch {torch.__version__}, "
          f"edge_sdk CPU path {cpu_isa()}; median of {args.rounds} interleaved rounds (machine may be shared)")
    if errors[ours] > 1e-4:
        print(f"  ERROR: ours is off the float64 reference by {errors[ours]:.1e} (> 1e-4)")
        return 1

    times = {name: [] for name in candidates}
    with torch.no_grad():
        for _ in tqdm(range(args.rounds), desc="rounds", leave=False):
            for name, (fn, _) in candidates.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    for name in candidates:
        print(f"  {name:30s} {med[name] * 1e3:9.2f} ms (min {min(times[name]) * 1e3:8.2f})  "
              f"max rel err vs float64 {errors[name]:.1e}  time / ours {med[name] / med[ours]:6.2f}")
    ratio = med[baseline] / med[ours]
    record = {
        "benchmark": "mahalanobis", "n": n, "l": l, "c": c, "threads": args.threads, "cpu_path": cpu_isa(),
        "seconds": {"edge_sdk_cpu": med[ours], "batched_matmul_per_location": med[baseline]},
        "speedup": {"vs_batched_matmul": ratio},
        "target_vs_batched_matmul": TARGET,
        "max_rel_error_vs_float64": errors,
    }
    if args.anomalib_exact:
        record["seconds"]["anomalib_compute_distance"] = med[exact]
        record["speedup"]["vs_anomalib_compute_distance"] = med[exact] / med[ours]
    print(f"ratio anomalib-style (batched matmul per location) / ours: {ratio:.2f}x (target >= {TARGET:g}x)")
    if args.anomalib_exact:
        print(f"ratio anomalib's exact code / ours: {med[exact] / med[ours]:.2f}x")
    dev = cuda_device()
    if dev:
        np.testing.assert_allclose(kernels.mahalanobis(x_np, mean_np, chol_np, device=dev),
                                   kernels.mahalanobis(x_np, mean_np, chol_np), rtol=1e-5)
        t_gpu = median_seconds(lambda: kernels.mahalanobis(x_np, mean_np, chol_np, device=dev), 5)
        record["seconds"]["edge_sdk_" + dev] = t_gpu
        print(f"  edge_sdk ({dev}) {t_gpu * 1e3:9.2f} ms (host-pointer call: includes copies)")
    ok = ratio >= TARGET
    record["target_met"] = ok
    print(f"  target {'MET' if ok else 'NOT MET'}")
    write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

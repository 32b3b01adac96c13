"""Mahalanobis scoring: edge_sdk.kernels.mahalanobis vs the batched-matmul formulation anomalib uses.

Both run in the same process, on the same inputs, interleaved round by round, with the same thread
count; the script prints the median times and their ratio (anomalib-style / ours).

anomalib (PaDiM, ``AnomalyMapGenerator.compute_distance``) keeps the inverse covariance computed
at fit time and scores with

    delta = (embedding - mean).permute(2, 0, 1)                  # (HW, B, C)
    distances = (torch.matmul(delta, inv_covariance) * delta).sum(2).permute(1, 0)
    distances = distances.clamp(0).sqrt()

on embeddings laid out (B, C, H*W). The reference point for the ratio is the per-location form of
that formula, ``delta = x - mean; sqrt(((delta @ inv_cov) * delta).sum(-1))``, given its most
favourable layout (L, N, C) contiguous, so that torch runs plain contiguous batched GEMMs. With
--anomalib-exact, anomalib's exact code on its (B, C, HW) layout is timed too: torch's batched
matmul on that permuted delta (channel stride HW) is far slower here (seconds at L=4096), so it is
off by default. Ours takes features (N, L, C), mean (L, C) and the Cholesky
factors (L, C, C).

Usage: python benchmarks/bench_mahalanobis.py [--n 16] [--l 4096] [--c 100] [--threads 2] [--rounds 15]
                                              [--anomalib-exact]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import edge_sdk  # noqa: E402
from edge_sdk import kernels  # noqa: E402
from edge_sdk.kernels.mahalanobis import cpu_isa  # noqa: E402


def anomalib_compute_distance(embedding: torch.Tensor, mean: torch.Tensor, inv_covariance: torch.Tensor) -> torch.Tensor:
    """anomalib's PaDiM distance: embedding (B, C, HW), mean (C, HW), inv_covariance (HW, C, C)."""
    delta = (embedding - mean).permute(2, 0, 1)
    distances = (torch.matmul(delta, inv_covariance) * delta).sum(2).permute(1, 0)
    return distances.clamp(0).sqrt()


def matmul_per_location(x_lnc: torch.Tensor, mean: torch.Tensor, inv_cov: torch.Tensor) -> torch.Tensor:
    """The same formula per location: x_lnc (L, N, C) contiguous, mean (L, C) -> (L, N)."""
    delta = x_lnc - mean[:, None]
    return ((delta @ inv_cov) * delta).sum(-1).clamp(0).sqrt()


def make_inputs(n: int, l: int, c: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    samples = c + 10
    a = torch.randn(l, c, samples, generator=g)
    cov = a @ a.transpose(1, 2) / samples + 0.01 * torch.eye(c)  # PaDiM's regularization
    chol = torch.linalg.cholesky(cov)
    inv_cov = torch.linalg.inv(cov)  # anomalib precomputes this at fit time
    mean = torch.randn(l, c, generator=g)
    x = mean + torch.randn(n, l, c, generator=g)
    return x, mean, chol, inv_cov


def median_ms(times):
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--l", type=int, default=4096)
    ap.add_argument("--c", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--anomalib-exact", action="store_true", help="also time anomalib's code on (B, C, HW)")
    args = ap.parse_args()
    n, l, c = args.n, args.l, args.c

    torch.set_num_threads(args.threads)
    edge_sdk.set_num_threads(args.threads)
    x, mean, chol, inv_cov = make_inputs(n, l, c)
    # Each side gets its inputs in its own layout, prepared outside the timing.
    x_np = np.ascontiguousarray(x.numpy())
    mean_np = np.ascontiguousarray(mean.numpy())
    chol_np = np.ascontiguousarray(chol.numpy())
    x_lnc = x.transpose(0, 1).contiguous()  # (L, N, C)
    embedding = x.permute(0, 2, 1).contiguous()  # (B, C, HW)
    mean_chw = mean.T.contiguous()  # (C, HW)
    inv_cov = inv_cov.contiguous()

    ours, baseline, exact = "edge_sdk.kernels.mahalanobis", "batched matmul per location", "anomalib compute_distance"
    candidates = {
        ours: lambda: kernels.mahalanobis(x_np, mean_np, chol_np),
        baseline: lambda: matmul_per_location(x_lnc, mean, inv_cov),
    }
    if args.anomalib_exact:
        candidates[exact] = lambda: anomalib_compute_distance(embedding, mean_chw, inv_cov)
    as_nl = {ours: lambda r: r, baseline: lambda r: r.T, exact: lambda r: r}
    results = {name: np.asarray(as_nl[name](fn())) for name, fn in candidates.items()}  # warm-up + outputs
    times = {name: [] for name in candidates}
    for _ in tqdm(range(args.rounds), desc="rounds", leave=False):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    # Accuracy against a float64 reference on a subset of locations.
    sub = slice(0, min(l, 256))
    ch64 = chol[sub].double()
    delta = (x[:, sub].double() - mean[sub].double()).permute(1, 2, 0)  # (L', C, N)
    ref = torch.linalg.solve_triangular(ch64, delta, upper=False).norm(dim=1).T.numpy()

    print(f"Mahalanobis distance, N={n} L={l} C={c}, {args.threads} threads "
          f"(torch {torch.__version__}, edge_sdk CPU path {cpu_isa()}), median of {args.rounds} rounds")
    print("note: the machine is shared with other jobs; timings are noisy, the ratio within one run is what counts")
    ours_ms = median_ms(times[ours])
    for name in candidates:
        out = results[name]
        err = np.max(np.abs(out[:, sub] - ref) / ref)
        ms = median_ms(times[name])
        print(f"  {name:32s} {ms:8.2f} ms  (min {1e3 * min(times[name]):7.2f})  max rel err vs float64 {err:.1e}"
              f"  time / ours {ms / ours_ms:5.2f}")
    ratio = median_ms(times[baseline]) / ours_ms
    print(f"ratio anomalib-style (batched matmul per location) / ours: {ratio:.2f}x (target >= 2x)")
    if args.anomalib_exact:
        print(f"ratio anomalib's exact code / ours: {median_ms(times[exact]) / ours_ms:.2f}x")


if __name__ == "__main__":
    main()

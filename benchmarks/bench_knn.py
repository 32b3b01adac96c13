"""k-NN speed: edge_sdk.kernels.knn vs faiss IndexFlatL2 (exact search over BLAS sgemm).

Q=16384 queries, M=65536 bank vectors, D=160, k=1, both with the same thread count (default 2),
side by side in one run, same data (standard normal float32). Target: faiss time / ours >= 1.0.
Both results are checked against a float64 brute force on a sample of queries before timing.
Our time covers the whole call (bank mean and norms, packing, scan, exact re-rank, input checks);
faiss's covers `search` only (`add` is done once beforehand). A float16 bank is timed too, and the
CUDA kernel when a device is present (host-pointer call: includes the copies).

    python benchmarks/bench_knn.py [--threads 2] [--repeats 3] [--out benchmarks/results/bench_knn.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _common import REPO, cuda_device, median_seconds, pin_threads, write_json

TARGET_VS_FAISS = 1.0


def exact_reference(queries, bank, k):
    """float64 brute force: distances and indices ordered by (distance, index)."""
    q = queries.astype(np.float64)
    b = bank.astype(np.float64)
    d2 = np.empty((q.shape[0], b.shape[0]))
    for c0 in range(0, b.shape[0], 4096):
        d2[:, c0 : c0 + 4096] = ((q[:, None, :] - b[None, c0 : c0 + 4096]) ** 2).sum(-1)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d2, idx, 1)), idx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=16384)
    ap.add_argument("--bank", type=int, default=65536)
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", type=int, default=64, help="queries checked against float64")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_knn.json")
    args = ap.parse_args()

    pin_threads(args.threads)
    import faiss

    from edge_sdk import kernels

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    bank = rng.standard_normal((args.bank, args.dim), dtype=np.float32)
    bank16 = bank.astype(np.float16)
    index = faiss.IndexFlatL2(args.dim)
    index.add(bank)
    k = args.k

    def ours(bank_=bank, device="cpu"):
        return kernels.knn(queries, bank_, k, device=device)

    def theirs():
        return index.search(queries, k)

    # Same answers first (a sample against float64; faiss returns squared distances).
    s = min(args.sample, args.queries)
    ref_d, ref_i = exact_reference(queries[:s], bank, k)
    ref16_d, ref16_i = exact_reference(queries[:s], bank16.astype(np.float32), k)
    sample = queries[:s]
    od, oi = kernels.knn(sample, bank, k)
    hd, hi = kernels.knn(sample, bank16, k)
    fd2, fi = index.search(sample, k)
    fd = np.sqrt(np.maximum(fd2, 0))
    err = {
        "edge_sdk": float(np.max(np.abs(od - ref_d) / ref_d)),
        "edge_sdk_float16_bank": float(np.max(np.abs(hd - ref16_d) / ref16_d)),
        "faiss": float(np.max(np.abs(fd - ref_d) / ref_d)),
    }
    same = {
        "edge_sdk": float(np.mean(oi == ref_i)),
        "edge_sdk_float16_bank": float(np.mean(hi == ref16_i)),
        "faiss": float(np.mean(fi == ref_i)),
    }
    flops = 2.0 * args.queries * args.bank * args.dim
    print(f"k-NN Q={args.queries} M={args.bank} D={args.dim} k={k}, {args.threads} threads, "
          f"median of {args.repeats} (machine may be shared)")
    print(f"  vs float64 on {s} queries (indices equal, max relative distance error):")
    for name in err:
        print(f"    {name:22s} {same[name]:.4f}  {err[name]:.1e}")
    if same["edge_sdk"] < 1.0 or err["edge_sdk"] > 1e-4 or same["edge_sdk_float16_bank"] < 1.0:
        print("  ERROR: edge_sdk disagrees with the float64 reference; timings not comparable")
        return 1

    t_ours = median_seconds(ours, args.repeats)
    t_half = median_seconds(lambda: ours(bank16), args.repeats)
    t_faiss = median_seconds(theirs, args.repeats)
    record = {
        "benchmark": "knn", "queries": args.queries, "bank": args.bank, "dim": args.dim, "k": k,
        "threads": args.threads,
        "seconds": {"edge_sdk_cpu": t_ours, "edge_sdk_cpu_float16_bank": t_half, "faiss_IndexFlatL2": t_faiss},
        "speedup": {"vs_faiss": t_faiss / t_ours, "float16_bank_vs_faiss": t_faiss / t_half},
        "target_vs_faiss": TARGET_VS_FAISS,
        "sample_max_relative_error": err, "sample_indices_equal": same,
    }
    print(f"  edge_sdk (cpu)           {t_ours:8.3f} s  {flops / t_ours / 1e9:6.0f} GFLOP/s")
    print(f"  edge_sdk (cpu, f16 bank) {t_half:8.3f} s  {flops / t_half / 1e9:6.0f} GFLOP/s")
    print(f"  faiss IndexFlatL2        {t_faiss:8.3f} s  {flops / t_faiss / 1e9:6.0f} GFLOP/s")
    print(f"  ratio faiss / ours = {t_faiss / t_ours:.2f} (target >= {TARGET_VS_FAISS:g}); "
          f"with a float16 bank {t_faiss / t_half:.2f}")
    dev = cuda_device()
    if dev:
        gd, gi = kernels.knn(sample, bank, k, device=dev)
        np.testing.assert_allclose(gd, od, rtol=1e-4)
        t_gpu = median_seconds(lambda: ours(device=dev), args.repeats)
        record["seconds"]["edge_sdk_" + dev] = t_gpu
        print(f"  edge_sdk ({dev})       {t_gpu:8.3f} s (host-pointer call: includes copies)")
    ok = t_faiss / t_ours >= TARGET_VS_FAISS
    record["target_met"] = ok
    print(f"  target {'MET' if ok else 'NOT MET'}")
    write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""k-NN speed: edge_sdk.kernels.knn against faiss IndexFlatL2 (exact search, BLAS sgemm), side by
side in one run, same data, same thread count. Prints the ratio faiss time / our time (>= 1.0:
we are at least as fast) and checks both against a float64 reference on a sample of queries.

    python benchmarks/bench_knn.py                    # Q=16384, M=65536, D=160, k=1, 2 threads
    python benchmarks/bench_knn.py --half             # also time a float16 bank

Our time covers the whole call (bank mean and norms, packing, scan, exact re-rank, checks of the
inputs); faiss's covers only `search` (its `add` is done beforehand, untimed).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def exact_reference(queries, bank, k):
    q = queries.astype(np.float64)
    b = bank.astype(np.float64)
    d2 = np.empty((q.shape[0], b.shape[0]))
    for c0 in range(0, b.shape[0], 8192):
        blk = b[c0 : c0 + 8192]
        d2[:, c0 : c0 + 8192] = ((q[:, None, :] - blk[None]) ** 2).sum(-1)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d2, idx, 1)), idx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=16384)
    ap.add_argument("--bank", type=int, default=65536)
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sample", type=int, default=128, help="queries checked against float64")
    ap.add_argument("--half", action="store_true", help="also time a float16 bank")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import faiss

    import edge_sdk
    from edge_sdk import kernels

    faiss.omp_set_num_threads(args.threads)
    edge_sdk.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    bank = rng.standard_normal((args.bank, args.dim), dtype=np.float32)
    flops = 2.0 * args.queries * args.bank * args.dim
    print(f"Q={args.queries} M={args.bank} D={args.dim} k={args.k} threads={args.threads} "
          f"({os.cpu_count()} CPUs visible; other processes may share them)")

    index = faiss.IndexFlatL2(args.dim)
    index.add(bank)
    # warm-up (thread pools, page faults) on a slice
    index.search(queries[:512], args.k)
    kernels.knn(queries[:512], bank, args.k)

    t_faiss, (fd2, fi) = best_time(lambda: index.search(queries, args.k), args.repeats)
    t_ours, (od, oi) = best_time(lambda: kernels.knn(queries, bank, args.k), args.repeats)
    print(f"faiss IndexFlatL2: {t_faiss:.3f} s ({flops / t_faiss / 1e9:.0f} GFLOP/s)")
    print(f"edge_sdk knn     : {t_ours:.3f} s ({flops / t_ours / 1e9:.0f} GFLOP/s)")
    print(f"ratio faiss / ours = {t_faiss / t_ours:.2f}  (target >= 1.0)")

    s = min(args.sample, args.queries)
    ref_d, ref_i = exact_reference(queries[:s], bank, args.k)
    ours_ok = np.mean(oi[:s] == ref_i)
    faiss_ok = np.mean(fi[:s] == ref_i)
    ours_err = np.max(np.abs(od[:s] - ref_d) / np.maximum(ref_d, 1e-30))
    faiss_err = np.max(np.abs(np.sqrt(np.maximum(fd2[:s], 0)) - ref_d) / np.maximum(ref_d, 1e-30))
    print(f"vs float64 on {s} queries: indices equal ours {ours_ok:.4f}, faiss {faiss_ok:.4f}; "
          f"max relative distance error ours {ours_err:.1e}, faiss {faiss_err:.1e}")
    print(f"ours vs faiss on all queries: indices equal {np.mean(oi == fi):.4f}")

    if args.half:
        bank16 = bank.astype(np.float16)
        kernels.knn(queries[:512], bank16, args.k)
        t_half, (hd, hi) = best_time(lambda: kernels.knn(queries, bank16, args.k), args.repeats)
        ref_d, ref_i = exact_reference(queries[:s], bank16.astype(np.float32), args.k)
        print(f"edge_sdk knn, float16 bank: {t_half:.3f} s (ratio faiss float32 / ours float16 = "
              f"{t_faiss / t_half:.2f}); indices equal float64 on the rounded bank: "
              f"{np.mean(hi[:s] == ref_i):.4f}")


if __name__ == "__main__":
    main()

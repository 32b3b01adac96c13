"""k-NN speed: edge_sdk.kernels.knn vs faiss IndexFlatL2 (exact search over BLAS sgemm), and
repeated searches of one bank: knn() per call vs a prepared KnnIndex.

1. vs faiss: Q=16384 queries, M=65536 bank vectors, D=160, k=1, both with the same thread count
   (default 2), side by side in one run, same data (standard normal float32). Target: faiss time /
   ours >= 1.0. Both results are checked against a float64 brute force on a sample of queries
   before timing. Our time covers the whole call (bank mean and norms, packing, scan, exact
   re-rank, input checks); faiss's covers `search` only (`add` is done once beforehand). A float16
   bank is timed too, and the CUDA kernel when a device is present (host-pointer call: includes
   the copies).
2. repeated search (PatchCore scoring every batch against one memory bank): bank 80,000 x 384
   (float32 and float16), queries = one batch of 8 images x 1024 locations, k=1; and the
   reweighting's per-image support query (1 query, k=9). knn(queries, bank) per call vs
   KnnIndex(bank).search(queries) with the index built once (build time reported apart).
   Results are checked identical (bit for bit) before timing; the two are timed alternately
   (median of --repeats each). Reported: ratio and time saved per call.

3. the float32 scan (AVX-512) against the bfloat16 one (AVX512-BF16) on the same banks (PatchCore-
   shaped: one image of 1024 queries per search, k=1): results checked identical, then timed
   alternately; and which of the two `auto` keeps for each bank (skipped without AVX512-BF16).

    python benchmarks/bench_knn.py [--threads 2] [--repeats 3] [--only faiss|repeated|isa]
                                   [--out benchmarks/results/bench_knn.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
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


def interleaved_medians(fa, fb, repeats: int) -> tuple[float, float]:
    """Median seconds of fa and fb, timed alternately (a, b, a, b, ...) after one warm-up each,
    so that a change in the load of a shared machine hits both alike."""
    fa()
    fb()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def repeated_search(args) -> dict:
    """knn() per call vs a prepared KnnIndex on the same bank, PatchCore-shaped."""
    from edge_sdk import kernels

    rng = np.random.default_rng(1)
    nq = args.images * args.locations
    # post-ReLU-like features: non-negative, away from the origin (what a PatchCore bank holds)
    bank = np.abs(rng.standard_normal((args.rep_bank, args.rep_dim), dtype=np.float32))
    queries = np.abs(rng.standard_normal((nq, args.rep_dim), dtype=np.float32))
    support_query = bank[rng.integers(0, args.rep_bank)][None].copy()
    out = {"bank": args.rep_bank, "dim": args.rep_dim, "queries": nq,
           "images": args.images, "locations": args.locations, "cases": {}}
    print(f"repeated search: bank {args.rep_bank} x {args.rep_dim}, {args.images} images x "
          f"{args.locations} locations = {nq} queries, {args.threads} threads, median of "
          f"{args.repeats} alternated calls each (machine may be shared)")
    for dtype in (np.float32, np.float16):
        b = bank.astype(dtype)
        t0 = time.perf_counter()
        index = kernels.KnnIndex(b)
        t_build = time.perf_counter() - t0
        name = np.dtype(dtype).name
        for label, qs, k in (("batch", queries, 1), ("support_query", support_query, 9)):
            want = kernels.knn(qs, b, k)
            got = index.search(qs, k)
            if not (np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])):
                raise SystemExit(f"ERROR: KnnIndex.search differs from knn() ({name}, {label})")
            t_knn, t_index = interleaved_medians(lambda: kernels.knn(qs, b, k),
                                                 lambda: index.search(qs, k), args.repeats)
            case = f"{name}_{label}"
            out["cases"][case] = {
                "k": k, "queries": int(qs.shape[0]), "knn_per_call_s": t_knn,
                "index_search_s": t_index, "ratio": t_knn / t_index,
                "saved_per_call_ms": 1e3 * (t_knn - t_index), "index_build_s": t_build,
            }
            print(f"  {case:22s} knn() {1e3 * t_knn:9.1f} ms   KnnIndex.search {1e3 * t_index:9.1f} ms"
                  f"   ratio {t_knn / t_index:6.2f}   saved {1e3 * (t_knn - t_index):8.1f} ms/call")
        print(f"  {name} index: built once in {1e3 * t_build:.0f} ms, "
              f"{index.nbytes / 2**20:.0f} MiB (bank copy + panels)")
        out["cases"][f"{name}_batch"]["index_mib"] = index.nbytes / 2**20
    # a PatchCore batch with reweighting = one batch search + one support query per image
    for name in ("float32", "float16"):
        c, sq = out["cases"][f"{name}_batch"], out["cases"][f"{name}_support_query"]
        per_knn = c["knn_per_call_s"] + args.images * sq["knn_per_call_s"]
        per_index = c["index_search_s"] + args.images * sq["index_search_s"]
        out["cases"][f"{name}_patchcore_batch_with_reweighting"] = {
            "knn_per_call_s": per_knn, "index_search_s": per_index, "ratio": per_knn / per_index,
            "saved_per_call_ms": 1e3 * (per_knn - per_index)}
        print(f"  {name}: batch + {args.images} reweighting queries: knn() {1e3 * per_knn:.1f} ms, "
              f"KnnIndex {1e3 * per_index:.1f} ms, ratio {per_knn / per_index:.2f}, "
              f"saved {1e3 * (per_knn - per_index):.1f} ms per batch")
    return out


def vs_faiss(args, record: dict) -> int:
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
    record.update({
        "queries": args.queries, "bank": args.bank, "dim": args.dim, "k": k,
        "seconds": {"edge_sdk_cpu": t_ours, "edge_sdk_cpu_float16_bank": t_half, "faiss_IndexFlatL2": t_faiss},
        "speedup": {"vs_faiss": t_faiss / t_ours, "float16_bank_vs_faiss": t_faiss / t_half},
        "target_vs_faiss": TARGET_VS_FAISS,
        "sample_max_relative_error": err, "sample_indices_equal": same,
    })
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
    return 0


ISA_CASES = (  # (name, bank rows, dim, queries): PatchCore-shaped banks, one image of 32 x 32 queries
    ("post-ReLU |normal|", 4096, 152, 1024),
    ("post-ReLU |normal|", 16384, 384, 1024),
    ("low-rank features", 8192, 256, 1024),
    ("normal, offset 1", 50000, 64, 1024),
    ("near-duplicate clusters", 4096, 64, 1024),
)


def isa_comparison(args) -> dict:
    """The float32 scan (AVX-512) against the bfloat16 one (AVX512-BF16) on the same prepared bank:
    identical results required, interleaved timing, and which one `auto` picks for the bank."""
    from edge_sdk import _core

    if "avx512bf16" not in _core.knn_isas():
        print("isa comparison skipped: this CPU has no AVX512-BF16")
        return {"skipped": "no AVX512-BF16"}
    rng = np.random.default_rng(2)
    out = []
    print(f"isa comparison: one image of queries per search, k=1, {args.threads} threads, median of {args.repeats * 5} "
          "alternated calls")
    for name, m, d, nq in ISA_CASES:
        if name.startswith("post-ReLU"):
            bank = np.abs(rng.standard_normal((m, d), dtype=np.float32))
            queries = np.abs(rng.standard_normal((nq, d), dtype=np.float32))
        elif name.startswith("low-rank"):
            basis = rng.standard_normal((16, d)).astype(np.float32) / 4
            bank, queries = (np.maximum(rng.standard_normal((n, 16)).astype(np.float32) @ basis, 0)
                             + 0.05 * rng.standard_normal((n, d)).astype(np.float32) for n in (m, nq))
            bank, queries = bank.astype(np.float32), queries.astype(np.float32)
        elif name.startswith("normal"):
            bank = (1 + rng.standard_normal((m, d))).astype(np.float32)
            queries = (1 + rng.standard_normal((nq, d))).astype(np.float32)
        else:
            centres = (20 + 10 * rng.standard_normal((10, d))).astype(np.float32)
            bank = (centres[rng.integers(0, 10, m)] + 1e-3 * rng.standard_normal((m, d))).astype(np.float32)
            queries = (centres[rng.integers(0, 10, nq)] + 1e-3).astype(np.float32)
        f32, b16 = _core.KnnIndex(bank, isa="avx512"), _core.KnnIndex(bank, isa="avx512bf16")
        r32, r16 = f32.search(queries, 1), b16.search(queries, 1)
        if not (np.array_equal(r32[0], r16[0]) and np.array_equal(r32[1], r16[1])):
            raise SystemExit(f"isa comparison: {name} {m}x{d}: the bfloat16 scan's results differ")
        t32, t16 = interleaved_medians(lambda: f32.search(queries, 1), lambda: b16.search(queries, 1), args.repeats * 5)
        auto = _core.KnnIndex(bank).isa
        row = {"bank": name, "rows": m, "dim": d, "queries": nq, "avx512_ms": t32 * 1e3, "avx512bf16_ms": t16 * 1e3,
               "ratio": t32 / t16, "auto": auto, "identical": True}
        out.append(row)
        print(f"  {name:24s} {m:6d} x {d:4d}: avx512 {t32 * 1e3:7.2f} ms, avx512bf16 {t16 * 1e3:7.2f} ms "
              f"(x{t32 / t16:.2f}), identical results; auto picks {auto}")
    return {"cases": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=16384)
    ap.add_argument("--bank", type=int, default=65536)
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", type=int, default=64, help="queries checked against float64")
    ap.add_argument("--only", choices=("faiss", "repeated", "isa"), help="run one of the comparisons")
    ap.add_argument("--rep-bank", type=int, default=80_000, help="repeated search: bank rows")
    ap.add_argument("--rep-dim", type=int, default=384, help="repeated search: feature dimension")
    ap.add_argument("--images", type=int, default=8, help="repeated search: images per batch")
    ap.add_argument("--locations", type=int, default=1024, help="repeated search: locations per image")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_knn.json")
    args = ap.parse_args()

    pin_threads(args.threads)
    record = {"benchmark": "knn", "threads": args.threads}
    if args.only in (None, "faiss"):
        rc = vs_faiss(args, record)
        if rc:
            return rc
    if args.only in (None, "repeated"):
        record["repeated_search"] = repeated_search(args)
    if args.only in (None, "isa"):
        record["isa"] = isa_comparison(args)
    write_json(args.out, record)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())

"""SSIM speed: edge_sdk.kernels.ssim vs pytorch_msssim.ssim and skimage's structural_similarity.

60 single-channel 256 x 256 float32 image pairs, every contender with the same thread count
(default 2): our pool, torch intra-op threads, and a 2-worker thread pool over the images for
skimage (it has no threads of its own). Same SSIM definition everywhere (11-tap Gaussian window,
sigma 1.5, population covariance, data_range 1); the values are cross-checked before timing.
Target: ours >= 3x faster than pytorch_msssim.

    python benchmarks/bench_ssim.py [--threads 2] [--repeats 3] [--out benchmarks/results/bench_ssim.json]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import REPO, cuda_device, median_seconds, pin_threads, write_json

TARGET_VS_PYTORCH_MSSSIM = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_ssim.json")
    args = ap.parse_args()

    pin_threads(args.threads)
    import pytorch_msssim
    import torch
    from skimage.metrics import structural_similarity

    from edge_sdk import kernels

    rng = np.random.default_rng(0)
    shape = (args.n, args.size, args.size)
    a = rng.random(shape, dtype=np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    ta, tb = torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None]

    def ours(device="cpu"):
        return kernels.ssim(a, b, device=device)

    def msssim():
        with torch.no_grad():
            return pytorch_msssim.ssim(ta, tb, data_range=1.0, size_average=False).numpy()

    pad = 5  # skimage averages over the map cropped by (window - 1) / 2: the same valid region as ours

    def skimage_one(i):
        _, full = structural_similarity(a[i], b[i], gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0, full=True)
        return full[pad:-pad, pad:-pad].mean()

    def skimage_all():
        with ThreadPoolExecutor(args.threads) as ex:
            return np.array(list(ex.map(skimage_one, range(args.n))))

    # Same numbers first: a speed comparison of different definitions would mean nothing.
    ref, theirs, sk = ours(), msssim(), skimage_all()
    agree_msssim = float(np.abs(ref - theirs).max())
    agree_skimage = float(np.abs(ref - sk).max())
    print(f"SSIM on {args.n} x {args.size} x {args.size}, {args.threads} threads, median of {args.repeats}")
    print(f"  max |ours - pytorch_msssim| = {agree_msssim:.2e}, max |ours - skimage| = {agree_skimage:.2e}")
    if agree_msssim > 1e-4 or agree_skimage > 1e-4:
        print("  ERROR: the implementations disagree; timings not comparable")
        return 1

    t_ours = median_seconds(ours, args.repeats)
    t_msssim = median_seconds(msssim, args.repeats)
    t_sk = median_seconds(skimage_all, max(1, args.repeats // 3))
    record = {
        "benchmark": "ssim", "n": args.n, "size": args.size, "threads": args.threads,
        "seconds": {"edge_sdk_cpu": t_ours, "pytorch_msssim": t_msssim, "skimage": t_sk},
        "speedup": {"vs_pytorch_msssim": t_msssim / t_ours, "vs_skimage": t_sk / t_ours},
        "target_vs_pytorch_msssim": TARGET_VS_PYTORCH_MSSSIM,
        "max_abs_difference": {"pytorch_msssim": agree_msssim, "skimage": agree_skimage},
    }
    print(f"  edge_sdk (cpu)   {t_ours * 1e3:9.1f} ms")
    print(f"  pytorch_msssim   {t_msssim * 1e3:9.1f} ms   ours is {t_msssim / t_ours:5.2f}x faster (target >= {TARGET_VS_PYTORCH_MSSSIM:g}x)")
    print(f"  skimage          {t_sk * 1e3:9.1f} ms   ours is {t_sk / t_ours:5.2f}x faster")
    dev = cuda_device()
    if dev:
        np.testing.assert_allclose(ours(dev), ref, atol=1e-5)
        t_gpu = median_seconds(lambda: ours(dev), args.repeats)
        record["seconds"]["edge_sdk_" + dev] = t_gpu
        print(f"  edge_sdk ({dev}) {t_gpu * 1e3:9.1f} ms (host-pointer call: includes copies)")
    ok = t_msssim / t_ours >= TARGET_VS_PYTORCH_MSSSIM
    record["target_met"] = ok
    print(f"  target {'MET' if ok else 'NOT MET'}")
    write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

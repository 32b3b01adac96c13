"""Heatmap post-processing speed: edge_sdk resize_blur (the map path: both steps as one banded
operator) and resize_bilinear + gaussian_blur (two passes) vs torch interpolate +
scipy.ndimage.gaussian_filter, and preprocess vs its torch equivalent (plain and antialiased).

A batch of 60 anomaly maps 64 x 64 -> bilinear 256 x 256 -> Gaussian blur sigma 4 (radius 16);
same thread count for everyone (default 2: our pool, torch intra-op threads, a 2-worker thread
pool over the maps for scipy). Preprocessing: 60 RGB uint8 images 256 x 256 -> 224 x 224
normalized NCHW; antialiased: 8 RGB uint8 frames 1024 x 1024 (MVTec AD's size) -> 256 x 256, against
torch's interpolate(antialias=True) and our plain resize. Results are cross-checked before timing.

    python benchmarks/bench_heatmap.py [--threads 2] [--repeats 3] [--out benchmarks/results/bench_heatmap.json]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import REPO, cuda_device, median_seconds, pin_threads, write_json

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--sigma", type=float, default=4.0)
    ap.add_argument("--grid", type=int, default=64, help="anomaly map size G (G x G -> 256 x 256; PaDiM's grid is 32)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_heatmap.json")
    args = ap.parse_args()

    pin_threads(args.threads)
    import torch
    from scipy import ndimage

    from edge_sdk import kernels

    rng = np.random.default_rng(0)
    maps = rng.random((args.n, args.grid, args.grid), dtype=np.float32)
    size = (256, 256)

    def ours(device="cpu"):
        return kernels.resize_blur(maps, size, args.sigma, device=device)

    def ours_two_pass():
        return kernels.gaussian_blur(kernels.resize_bilinear(maps, size), args.sigma)

    def reference():
        with torch.no_grad():
            up = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=size, mode="bilinear",
                                                 align_corners=False, antialias=False)[:, 0].numpy()
        blur = lambda m: ndimage.gaussian_filter(m, args.sigma, mode="reflect", truncate=4.0)
        with ThreadPoolExecutor(args.threads) as ex:
            return np.stack(list(ex.map(blur, up)))

    images = rng.integers(0, 256, (args.n, 256, 256, 3), dtype=np.uint8)
    mean_t = torch.tensor(MEAN).view(1, 3, 1, 1)
    std_t = torch.tensor(STD).view(1, 3, 1, 1)

    def ours_pre(device="cpu"):
        return kernels.preprocess(images, (224, 224), mean=MEAN, std=STD, device=device)

    def torch_pre():
        with torch.no_grad():
            t = torch.from_numpy(images).permute(0, 3, 1, 2).float() * (1 / 255)
            t = torch.nn.functional.interpolate(t, size=(224, 224), mode="bilinear", align_corners=False, antialias=False)
            return ((t - mean_t) / std_t).numpy()

    frames = rng.integers(0, 256, (8, 1024, 1024, 3), dtype=np.uint8)

    def ours_pre_aa(antialias=True, device="cpu"):
        return kernels.preprocess(frames, (256, 256), mean=MEAN, std=STD, antialias=antialias, device=device)

    def torch_pre_aa():
        with torch.no_grad():
            t = torch.from_numpy(frames).permute(0, 3, 1, 2).float() * (1 / 255)
            t = torch.nn.functional.interpolate(t, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
            return ((t - mean_t) / std_t).numpy()

    diff_post = max(float(np.abs(ours() - reference()).max()), float(np.abs(ours_two_pass() - reference()).max()))
    diff_pre = max(float(np.abs(ours_pre() - torch_pre()).max()), float(np.abs(ours_pre_aa() - torch_pre_aa()).max()))
    print(f"heatmap post-processing, {args.threads} threads, median of {args.repeats}")
    print(f"  max |ours - reference|: resize+blur {diff_post:.2e}, preprocess {diff_pre:.2e}")
    if diff_post > 1e-5 or diff_pre > 1e-4:
        print("  ERROR: results disagree; timings not comparable")
        return 1

    t_ours = median_seconds(ours, args.repeats)
    t_two = median_seconds(ours_two_pass, args.repeats)
    t_ref = median_seconds(reference, args.repeats)
    t_ours_pre = median_seconds(ours_pre, args.repeats)
    t_torch_pre = median_seconds(torch_pre, args.repeats)
    t_ours_aa = median_seconds(ours_pre_aa, args.repeats)
    t_ours_plain = median_seconds(lambda: ours_pre_aa(False), args.repeats)
    t_torch_aa = median_seconds(torch_pre_aa, args.repeats)
    record = {
        "benchmark": "heatmap", "n": args.n, "grid": args.grid, "threads": args.threads, "sigma": args.sigma,
        "seconds": {"resize_blur_edge_sdk_cpu": t_ours, "resize_then_blur_edge_sdk_cpu": t_two,
                    "resize_blur_torch_scipy": t_ref,
                    "preprocess_edge_sdk_cpu": t_ours_pre, "preprocess_torch": t_torch_pre,
                    "preprocess_1024_antialias_edge_sdk_cpu": t_ours_aa, "preprocess_1024_plain_edge_sdk_cpu": t_ours_plain,
                    "preprocess_1024_antialias_torch": t_torch_aa},
        "speedup": {"resize_blur_vs_torch_scipy": t_ref / t_ours, "resize_blur_vs_two_pass": t_two / t_ours,
                    "preprocess_vs_torch": t_torch_pre / t_ours_pre,
                    "preprocess_antialias_vs_torch": t_torch_aa / t_ours_aa},
        "max_abs_difference": {"resize_blur": diff_post, "preprocess": diff_pre},
    }
    print(f"  resize {args.grid}->256 + blur: edge_sdk {t_ours * 1e3:8.1f} ms, torch+scipy {t_ref * 1e3:8.1f} ms"
          f"  -> ours {t_ref / t_ours:5.2f}x faster (two passes: {t_two * 1e3:.1f} ms, {t_two / t_ours:.2f}x)")
    print(f"  preprocess 256->224:   edge_sdk {t_ours_pre * 1e3:8.1f} ms, torch       {t_torch_pre * 1e3:8.1f} ms"
          f"  -> ours {t_torch_pre / t_ours_pre:5.2f}x faster")
    print(f"  8 x 1024->256 antialiased: edge_sdk {t_ours_aa * 1e3:6.1f} ms, torch {t_torch_aa * 1e3:6.1f} ms"
          f"  -> ours {t_torch_aa / t_ours_aa:5.2f}x faster (plain resize: {t_ours_plain * 1e3:.1f} ms)")
    dev = cuda_device()
    if dev:
        np.testing.assert_allclose(ours(dev), ours(), atol=1e-5)
        record["seconds"]["resize_blur_edge_sdk_" + dev] = median_seconds(lambda: ours(dev), args.repeats)
        record["seconds"]["preprocess_edge_sdk_" + dev] = median_seconds(lambda: ours_pre(dev), args.repeats)
        np.testing.assert_allclose(ours_pre_aa(device=dev), ours_pre_aa(), atol=1e-5)
        record["seconds"]["preprocess_1024_antialias_edge_sdk_" + dev] = median_seconds(
            lambda: ours_pre_aa(device=dev), args.repeats)
        print(f"  {dev} (host-pointer calls, include copies): resize+blur "
              f"{record['seconds']['resize_blur_edge_sdk_' + dev] * 1e3:.1f} ms, preprocess "
              f"{record['seconds']['preprocess_edge_sdk_' + dev] * 1e3:.1f} ms")
    write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

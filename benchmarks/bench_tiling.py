"""Overlapping tiles vs the whole frame resized, on a synthetic high-resolution set with small defects.

Frames: the synthetic "tile" texture (edge_sdk.data.synthetic) rendered at --frame x --frame
pixels, with its defects drawn at the scale of a 256-pixel image (scratches and cracks 1-2 pixels
wide, spots of 8-15 pixels) anywhere in the frame: small against the frame, as in high-resolution
inspection. The same PaDiM recipe is trained two ways on the same good frames:

- whole: each frame resized (antialiased) to the --input network input, as without tiling;
- tiled: `edge_sdk.tiling.fit_tiled` on --tile x --tile tiles with --stride (the runtime's grid),
  exported with input.tiling; the runtime cuts the tiles, judges them in batches, stitches their
  maps (--merge) and scores the frame as the largest tile score.

Both are exported to bundles and judged by the C++ runtime (edge_sdk.Runtime, CPU); reported: image
AUROC, pixel AUROC (on the maps at frame resolution), and the runtime's latency per frame (median
of --repeats timed single-frame calls after a warm-up; --threads threads).

Usage: python benchmarks/bench_tiling.py [--frame 768] [--tile 256] [--stride 128] [--input 256]
       [--train 16] [--test 24] [--threads 2] [--merge mean] [--out benchmarks/results/tiling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import pin_threads  # noqa: E402


def small_defect_frames(n_train: int, n_test: int, size: int, seed: int = 0):
    """(train, test) Samples: good frames, and test frames of which ~60 % carry one small defect."""
    from edge_sdk.data import Sample
    from edge_sdk.data import synthetic as syn

    style = syn._tile_style(seed)
    defects = ("scratch", "crack", "spot")

    def frame(split, i, defect):
        rng = np.random.default_rng([seed, split, i])
        good, scene = syn._tile_good(rng, size, style)
        mask = None
        img = good
        if defect is not None:
            scene = {"size": size, "s": 1.0}  # defects at a 256-pixel image's scale: small in the frame
            bad, alpha = syn._tile_defect(rng, good, scene, defect)
            if defect == "spot":  # its radius scales with the frame: redraw it at the 256-pixel scale
                cx, cy = rng.uniform(0.1, 0.9, 2) * size
                alpha = syn.blob_coverage(rng, cx, cy, rng.uniform(8, 15), size, size, aspect=rng.uniform(0.6, 1.0),
                                          roughness=0.3, soft=1.2)
                bad = syn._blend(good, alpha, good * rng.uniform(0.35, 0.55))
            mask = syn._mask(syn._to_output(good, False), syn._to_output(bad, False), alpha)
            img = bad
        out = syn._to_output(img, False) + rng.normal(0, 2.0 / 255.0, (size, size, 3)).astype(np.float32)
        return Sample(image=syn._quantize(out), mask=mask, label=int(defect is not None),
                      defect_type=defect or "good", path=None)

    train = [frame(0, i, None) for i in range(n_train)]
    n_bad = int(round(0.6 * n_test))
    plan = [None] * (n_test - n_bad) + [defects[i % len(defects)] for i in range(n_bad)]
    test = [frame(1, i, d) for i, d in enumerate(plan)]
    return train, test


def judge(bundle, test, threads: int, repeats: int) -> dict:
    import edge_sdk
    from edge_sdk import metrics

    rt = edge_sdk.Runtime(bundle, threads=threads, max_batch=32)
    frames = [s.image for s in test]
    res = rt.predict(frames)
    labels = np.array([s.label for s in test])
    masks = [s.mask if s.mask is not None else np.zeros(s.image.shape[:2], np.uint8) for s in test]
    rt.predict(frames[0])  # warm-up at batch 1
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        rt.predict(frames[k % len(frames)])
        times.append(time.perf_counter() - t0)
    return {"image_auroc": round(float(metrics.image_auroc(labels, res.scores)), 4),
            "pixel_auroc": round(float(metrics.pixel_auroc(masks, list(res.heatmaps))), 4),
            "latency_ms_per_frame": round(1000 * statistics.median(times), 1),
            "units_per_frame": max(1, len(rt.region_names)), "errors": sum(e is not None for e in res.errors)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frame", type=int, default=768)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--input", type=int, default=256)
    ap.add_argument("--merge", choices=("mean", "max"), default="mean")
    ap.add_argument("--train", type=int, default=16)
    ap.add_argument("--test", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    pin_threads(args.threads)
    from edge_sdk.converters import export_bundle
    from edge_sdk.models import PaDiM
    from edge_sdk.tiling import Tiling, fit_tiled

    t0 = time.perf_counter()
    train, test = small_defect_frames(args.train, args.test, args.frame)
    record = {"frame": args.frame, "tile": args.tile, "stride": args.stride, "input": args.input, "merge": args.merge,
              "train_frames": args.train, "test_frames": args.test,
              "test_defective": int(sum(s.label for s in test)), "threads": args.threads,
              "data_seconds": round(time.perf_counter() - t0, 1)}
    recipe = dict(input_size=args.input, d=100, seed=0, blur_sigma=4.0)
    with tempfile.TemporaryDirectory() as work:
        for how in ("whole", "tiled"):
            t0 = time.perf_counter()
            model = PaDiM(**recipe)
            if how == "whole":
                model.fit(train, progress=False)
            else:
                tiling = Tiling(args.tile, args.tile, args.stride, args.stride, args.merge).for_frame(args.frame,
                                                                                                     args.frame)
                fit_tiled(model, train, tiling, progress=False)
            fit_s = time.perf_counter() - t0
            parts = model.export_parts()
            if how == "tiled":
                parts.tiling = tiling.to_dict()
            bundle = export_bundle(parts, os.path.join(work, how), model_type="padim").bundle
            row = judge(bundle, test, args.threads, args.repeats)
            row["train_seconds"] = round(fit_s, 1)
            record[how] = row
            print(how, json.dumps(row), flush=True)
    print(json.dumps(record, indent=2))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

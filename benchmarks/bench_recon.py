"""Reconstruction models on the vial line: accuracy and speed.

1. Synthetic vial-strip set (`edge-sdk synth vial-strip`): ResGANAD and GRD-Net (preset small) and,
   when available, PatchCore are trained on the region patches of good strips. Test products are
   split in two halves (stratified by defect kind): per-region thresholds are calibrated on the
   first (max accuracy where a region has defects, else the 99 % quantile of good scores) and
   decisions are evaluated on the second at patch, strip and run level (k-of-n, 7 of 10), also
   with the thresholds re-tuned after aggregation at strip and at run level on the first half
   (`regions.retune_thresholds`, what `edge-sdk threshold --level` does to a bundle).
   Image AUROC is reported per patch (all regions) and per defect kind. With --frames K the
   strips are acquired as K handled frames with moving bubbles: models train on the frames and the
   lowest / highest images of each acquisition (what the runtime judges for a bundle exported with
   --acquisition-frames K) and a strip decision covers the K + 2 images of an acquisition.
2. Magnetic Tile Defect (../shared/datasets/magnetic_tile or $EDGE_SDK_MTD), when present: image
   AUROC of the same models (DifferNet protocol split of the data layer).
3. Speed: a batch of 60 x 1 x 256 x 256 uint8 patches through `predict` (kernels.preprocess ->
   torch network -> SSIM / mask kernels) with the small configuration: p50 / p99 per batch.
4. FLOPs per 256 x 256 patch of the full configuration (torch.utils.flop_counter), for the GPU
   estimate.

Run once, at the end, on a quiet machine if possible; data are cached in out/bench_recon/, results
go to benchmarks/results/bench_recon.json.
    python benchmarks/bench_recon.py [--quick] [--epochs N] [--threads T] [--skip mtd,patchcore,...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from pathlib import Path

from _common import REPO, pin_threads, write_json

ROOT = str(REPO)

import torch  # noqa: E402

import edge_sdk  # noqa: E402
from edge_sdk import metrics  # noqa: E402
from edge_sdk.data import load_dataset  # noqa: E402
from edge_sdk.data.vial_strip import make_vial_strip_dataset  # noqa: E402
from edge_sdk.models.grdnet import GRDNet  # noqa: E402
from edge_sdk.models.recon_config import make_config  # noqa: E402
from edge_sdk.models.resganad import ResGANAD  # noqa: E402
from edge_sdk.regions import (RegionLayout, RegionPatches, calibrate_region_thresholds,  # noqa: E402
                              evaluate_decisions, per_acquisition, product_ids, retune_thresholds)


class Subset:
    """Frames `indices` of a data set (keeps `paths` for product ids)."""

    def __init__(self, ds, indices):
        self.ds, self.indices = ds, list(indices)
        self.paths = [ds.paths[i] for i in self.indices]
        self.labels = ds.labels[self.indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.ds[self.indices[i]]


def split_products(test) -> tuple[list[int], list[int]]:
    """Frame indices of two halves of the test products, stratified by defect type."""
    prods = product_ids(test.paths)
    kinds = test.defect_types
    by_kind: dict[str, list[int]] = {}
    for p, k in dict.fromkeys(zip(prods.tolist(), kinds)):
        by_kind.setdefault(k, []).append(p)
    cal = {p for ps in by_kind.values() for p in ps[0::2]}
    a = [i for i, p in enumerate(prods) if p in cal]
    b = [i for i, p in enumerate(prods) if p not in cal]
    return a, b


def score(model, patches, desc):
    t = time.perf_counter()
    res = model.score_dataset(patches, progress=True, desc=desc)
    return res["scores"].astype(np.float64), time.perf_counter() - t


def frame_panel(model, frames, masks, lay, thresholds, path):
    """PNG: per frame, the strip with region boxes (red = rejected, green = accepted) and the defect
    outline (yellow), next to its heatmap (each region's map min-max normalized, pasted in place)."""
    from PIL import Image
    from scipy import ndimage

    from edge_sdk import kernels

    rows = []
    for frame, mask in zip(frames, masks):
        patches = lay.cut(frame)
        pred = model.predict(patches)
        maps = np.stack(pred.maps) if isinstance(pred.maps, list) else pred.maps
        heat = np.zeros(frame.shape[:2], np.float32)
        norm = kernels.minmax_normalize(np.ascontiguousarray(maps, dtype=np.float32))
        rgb = np.repeat(frame[..., None], 3, axis=2).copy()
        for k, r in enumerate(lay.regions):
            heat[r.y:r.y + r.height, r.x:r.x + r.width] = norm[k]
            colour = (220, 30, 30) if pred.scores[k] >= thresholds[k] else (30, 180, 30)
            rgb[r.y:r.y + r.height, [r.x, r.x + r.width - 1]] = colour
            rgb[[r.y, r.y + r.height - 1], r.x:r.x + r.width] = colour
        if mask is not None:
            edge = ndimage.binary_dilation(mask > 0, iterations=2) & ~(mask > 0)
            rgb[edge] = (255, 220, 0)
        hot = (np.stack([heat, heat ** 2, heat ** 4], axis=-1) * 255).astype(np.uint8)
        rows.append(np.concatenate([rgb, np.full((rgb.shape[0], 8, 3), 255, np.uint8), hot], axis=1))
        rows.append(np.full((8, rows[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(path, optimize=True)
    return path


class PastedFrames:
    """Good calibration frames with one real defect pasted into each (defect pasting): a labelled
    calibration set made from few real defects (the library: first acquisition of each defective
    calibration product)."""

    def __init__(self, test, cal_idx, seed=0):
        from edge_sdk.data import Sample
        from edge_sdk.synthesis import DefectLibrary, paste_defect

        prods = product_ids(test.paths)
        first = {}
        for i in cal_idx:
            first.setdefault(prods[i], i)
        lib_frames = [test[i] for i in first.values() if test.labels[i] == 1]
        library = DefectLibrary.from_images([f.image for f in lib_frames], [f.mask for f in lib_frames],
                                            [f.defect_type for f in lib_frames], margin=3)
        rng = np.random.default_rng(seed)
        self.samples, self.paths = [], []
        for i in cal_idx:
            if test.labels[i] == 1:
                continue
            good = test[i]
            img, mask, d = paste_defect(good.image, library, rng, position="near", jitter=6, match="multiplicative")
            self.samples.append(Sample(image=img, mask=mask, label=1, defect_type=d.kind, path=None))
            self.paths.append(test.paths[i])
        self.library_size = len(library)
        self.labels = np.ones(len(self.samples), np.int64)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


def units(scores, labels, patches, r, frames):
    """(scores (N, R), labels (N, R), products (N,)) of the strip decision's units: each frame, or
    with acquisitions of K frames each acquisition (its K + 2 images merged: `per_acquisition`)."""
    s, y = scores.reshape(-1, r), labels.reshape(-1, r)
    if not frames:
        return s, y, product_ids(patches.dataset.paths)
    s, y, names = per_acquisition(s, y, patches.dataset.paths)
    return s, y, product_ids(names)


def image_kinds(patches):
    """Per frame of `patches`: 'frame', 'lowest' or 'highest' (from the _f00 / _lo / _hi suffix)."""
    def kind(path):
        stem = os.path.splitext(os.path.basename(path))[0]
        return {"lo": "lowest", "hi": "highest"}.get(stem.rsplit("_", 1)[-1], "frame")
    return np.array([kind(p) for p in patches.dataset.paths])


def vial_benchmark(models, root, args, results):
    lay = RegionLayout.load(root)
    train = RegionPatches(load_dataset(root, "mvtec", "train", gray=True), lay)
    test = load_dataset(root, "mvtec", "test", gray=True)
    cal_idx, ev_idx = split_products(test)
    cal, ev = RegionPatches(Subset(test, cal_idx), lay), RegionPatches(Subset(test, ev_idx), lay)
    cal_y, ev_y = cal.labels, ev.labels
    ev_kind = np.array([test.defect_types[ev_idx[f]] for f in ev.frame_index])
    r = len(lay)
    pasted = RegionPatches(PastedFrames(test, cal_idx), lay)
    pasted_y = pasted.labels
    cal_good = cal_y == 0
    print(f"vial strips: {len(train)} training patches, calibration {len(cal)} patches "
          f"({int(cal_y.sum())} defective), evaluation {len(ev)} patches ({int(ev_y.sum())} defective); "
          f"pasted calibration: {len(pasted.dataset)} good calibration frames with a pasted defect "
          f"({int(pasted_y.sum())} defective patches, library of {pasted.dataset.library_size} real defects)")
    out = {}
    for name, make in models.items():
        t0 = time.perf_counter()
        model = make()
        model.fit(train, progress=True)
        fit_s = time.perf_counter() - t0
        s_cal, _ = score(model, cal, f"{name} calibration")
        s_ev, ev_s = score(model, ev, f"{name} evaluation")
        thr, used = calibrate_region_thresholds(s_cal, cal_y, cal.region_names, method="auto", quantile=0.99,
                                                names=lay.names)
        t = np.array([thr[n] for n in lay.names])
        cal_u, ev_u = units(s_cal, cal_y, cal, r, args.frames), units(s_ev, ev_y, ev, r, args.frames)
        dec = evaluate_decisions(*ev_u[:2], t, lay.names, products=ev_u[2], k=7)
        # thresholds re-tuned after aggregation (strip, then run level) on the calibration half,
        # judged on the evaluation half
        retuned = {}
        for level in ("strip", "run"):
            t_l, info = retune_thresholds(*cal_u[:2], t, level=level, products=cal_u[2], k=7)
            d_l = evaluate_decisions(*ev_u[:2], t_l, lay.names, products=ev_u[2], k=7)
            retuned[level] = {"delta": info["delta"], "calibration_before": info["before"],
                              "calibration_after": info["after"], "strip": d_l["strip"], "run": d_l["run"]}
        by_image = {}
        if args.frames:  # what each kind of image catches, per image (not merged)
            kinds_ev = image_kinds(ev)
            for kind in ("frame", "lowest", "highest"):
                sel = kinds_ev == kind
                s_k, y_k = s_ev.reshape(-1, r)[sel], ev_y.reshape(-1, r)[sel]
                rej = (s_k >= t).any(axis=1) | np.isnan(s_k).any(axis=1)
                lab = y_k.any(axis=1)
                frame_kind = np.array([test.defect_types[ev_idx[f]] for f in np.flatnonzero(sel)])
                by_image[kind] = {"images": int(sel.sum()), "tnr": float((~rej[~lab]).mean()),
                                  "tpr": float(rej[lab].mean()) if lab.any() else None,
                                  "tpr_per_defect": {d: float(rej[lab & (frame_kind == d)].mean())
                                                     for d in sorted(set(frame_kind[lab]))}}
        # the same, with thresholds from pasted defects (good calibration patches + pasted ones)
        s_pasted, _ = score(model, pasted, f"{name} pasted")
        keep = pasted_y == 1
        thr_p, _ = calibrate_region_thresholds(np.concatenate([s_cal[cal_good], s_pasted[keep]]),
                                               np.concatenate([cal_y[cal_good], pasted_y[keep]]),
                                               list(np.array(cal.region_names)[cal_good]) +
                                               list(np.array(pasted.region_names)[keep]),
                                               method="auto", quantile=0.99, names=lay.names)
        dec_pasted = evaluate_decisions(*ev_u[:2], np.array([thr_p[n] for n in lay.names]), lay.names,
                                        products=ev_u[2], k=7)
        # scores of different regions live on different scales (that is why thresholds are per
        # region): AUROC over all patches is given raw and with each region's scores standardized
        # by the mean / std of its good calibration patches.
        z_ev = np.empty_like(s_ev)
        cal_names, ev_names = np.array(cal.region_names), np.array(ev.region_names)
        for n in lay.names:
            good = s_cal[(cal_names == n) & (cal_y == 0)]
            sel = ev_names == n
            z_ev[sel] = (s_ev[sel] - good.mean()) / max(good.std(), 1e-12)
        per_kind = {}
        for k in sorted(set(ev_kind[ev_y == 1])):
            sel = (ev_y == 0) | (ev_kind == k)
            per_kind[k] = metrics.image_auroc(ev_y[sel], z_ev[sel])
        parts = {}
        for part in ("cap", "neck", "body", "bottom"):
            sel = np.array([n.endswith("_" + part) for n in ev.region_names])
            reg = [dec["patch"]["regions"][n] for n in lay.names if n.endswith("_" + part)]
            parts[part] = {m: float(np.nanmean([x[m] for x in reg])) if any(np.isfinite(x[m]) for x in reg)
                           else None for m in ("accuracy", "tpr", "tnr")}
            if ev_y[sel].any():
                parts[part]["auroc"] = metrics.image_auroc(ev_y[sel], s_ev[sel])
        out[name] = {"fit_seconds": round(fit_s, 1), "ms_per_patch_eval": round(1000 * ev_s / len(ev), 3),
                     "patch_auroc_raw": metrics.image_auroc(ev_y, s_ev),
                     "patch_auroc": metrics.image_auroc(ev_y, z_ev), "auroc_per_defect": per_kind,
                     "per_part": parts, "decisions": dec, "threshold_methods": used,
                     "decisions_pasted_calibration": {k: dec_pasted[k] for k in ("strip", "run")} |
                     {"patch_all": dec_pasted["patch"]["all"]},
                     "decisions_retuned": retuned, "strip_unit": "acquisition" if args.frames else "frame"}
        if by_image:
            out[name]["per_image_kind"] = by_image
        print(f"{name}: patch AUROC {out[name]['patch_auroc']:.3f} (region-standardized; raw "
              f"{out[name]['patch_auroc_raw']:.3f})  per defect "
              + ", ".join(f"{k} {v:.3f}" for k, v in per_kind.items()))
        print(f"  patch acc {dec['patch']['all']['accuracy']:.3f} TPR {dec['patch']['all']['tpr']:.3f} "
              f"TNR {dec['patch']['all']['tnr']:.3f} | strip acc {dec['strip']['accuracy']:.3f} TPR "
              f"{dec['strip']['tpr']:.3f} TNR {dec['strip']['tnr']:.3f} | run (7/10) acc {dec['run']['accuracy']:.3f} "
              f"TPR {dec['run']['tpr']:.3f} TNR {dec['run']['tnr']:.3f}")
        for level, v in retuned.items():
            print(f"  thresholds re-tuned at {level} level (calibration half, d = {v['delta']:+.3f} sd): strip acc "
                  f"{v['strip']['accuracy']:.3f} TPR {v['strip']['tpr']:.3f} TNR {v['strip']['tnr']:.3f} | run (7/10) "
                  f"acc {v['run']['accuracy']:.3f} TPR {v['run']['tpr']:.3f} TNR {v['run']['tnr']:.3f}")
        for kind, v in by_image.items():
            print(f"  {kind} images ({v['images']}): TNR {v['tnr']:.3f} TPR {v['tpr'] if v['tpr'] is None else round(v['tpr'], 3)}"
                  " per defect " + ", ".join(f"{d} {x:.3f}" for d, x in v["tpr_per_defect"].items()))
        dp = dec_pasted
        print(f"  thresholds from pasted defects: patch acc {dp['patch']['all']['accuracy']:.3f} TPR "
              f"{dp['patch']['all']['tpr']:.3f} TNR {dp['patch']['all']['tnr']:.3f} | strip acc "
              f"{dp['strip']['accuracy']:.3f} | run (7/10) acc {dp['run']['accuracy']:.3f} TPR {dp['run']['tpr']:.3f} "
              f"TNR {dp['run']['tnr']:.3f}")
        for part, v in parts.items():
            print(f"  {part:7s} " + " ".join(f"{k} {x:.3f}" if x is not None else f"{k} -" for k, x in v.items()))
        # one evaluation frame per defect kind (first acquisition), as a picture
        picks = {}
        for j, i in enumerate(ev_idx):
            picks.setdefault(test.defect_types[i], j)
        sub = ev.dataset
        chosen = [sub[j] for j in picks.values()]
        png = REPO / "benchmarks" / "results" / f"bench_recon_{name}_frames.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        out[name]["frames_png"] = str(frame_panel(model, [c.image for c in chosen], [c.mask for c in chosen],
                                                  lay, t, png))
    results["vial_strip"] = out


def mtd_benchmark(models, args, results):
    path = os.environ.get("EDGE_SDK_MTD") or os.path.join(ROOT, "..", "shared", "datasets", "magnetic_tile")
    if not os.path.isdir(path):
        print(f"MTD: skipped (not found at {path})")
        results["mtd"] = {"skipped": f"not found at {path}"}
        return
    train = load_dataset(path, "mtd", "train", gray=True)
    test = load_dataset(path, "mtd", "test", gray=True)
    out = {}
    for name, make in models.items():
        t0 = time.perf_counter()
        model = make()
        model.fit(train, progress=True)
        fit_s = time.perf_counter() - t0
        res = model.score_dataset(test, progress=True, desc=f"{name} MTD")
        y, s = res["labels"], res["scores"]
        thr = model.calibration["threshold"]
        out[name] = {"fit_seconds": round(fit_s, 1), "image_auroc": metrics.image_auroc(y, s),
                     "at_calibrated_threshold": metrics.threshold_metrics(y, s, thr)}
        print(f"MTD {name}: image AUROC {out[name]['image_auroc']:.3f}  "
              + " ".join(f"{k} {v:.3f}" for k, v in out[name]["at_calibrated_threshold"].items()))
    results["mtd"] = {"train_images": len(train), "test_images": len(test), "models": out}


def speed_benchmark(args, results):
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (60, 256, 256), dtype=np.uint8)
    out = {}
    for cls in (ResGANAD, GRDNet):
        model = cls("small", seed=0)
        model._fitted = True  # untrained weights time the same as trained ones
        for m in model._trainable() + [model.discriminator]:
            m.eval()
        runtime_speed(model, batch, args, out)
        model.predict(batch)  # warm-up
        times = []
        for _ in range(args.speed_runs):
            t = time.perf_counter()
            model.predict(batch)
            times.append(time.perf_counter() - t)
        times = np.array(times) * 1000
        out[cls.name] = {"batch": "60 x 1 x 256 x 256 uint8", "input_size": model.config.size,
                         "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                         "runs": args.speed_runs, "torch_threads": torch.get_num_threads(),
                         "kernel_threads": edge_sdk.get_num_threads()}
        print(f"speed {cls.name} (small, {model.config.size}x{model.config.size} input): 60 patches "
              f"p50 {out[cls.name]['p50_ms']:.1f} ms, p99 {out[cls.name]['p99_ms']:.1f} ms per batch")
    results["speed"] = out


def runtime_speed(model, batch, args, out):
    """The same batch through a bundle of the (untrained, timing-only) model and the C++ runtime."""
    import tempfile

    from edge_sdk._native import core

    if "onnxruntime" not in core.available_backends():
        out[f"{model.name}_runtime"] = {"skipped": "runtime built without the ONNX Runtime backend"}
        return
    from edge_sdk.converters.onnx_export import export_bundle
    from edge_sdk.runtime import Runtime

    model.calibration = {"threshold": 0.5, "min": 0.0, "max": 1.0}  # timing only: any calibration will do
    with tempfile.TemporaryDirectory() as d:
        export_bundle(model.export_parts(), os.path.join(d, "b"), model_type=model.name)
        rt = Runtime(os.path.join(d, "b"), threads=args.threads or 0, max_batch=60)
        rt.predict(batch)
        times = []
        for _ in range(args.speed_runs):
            t = time.perf_counter()
            rt.predict(batch)
            times.append(time.perf_counter() - t)
    model.calibration = None
    times = np.array(times) * 1000
    out[f"{model.name}_runtime"] = {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                                    "runs": args.speed_runs, "threads": args.threads or "all"}
    print(f"speed {model.name} through the C++ runtime (bundle, ONNX Runtime): 60 patches p50 "
          f"{out[f'{model.name}_runtime']['p50_ms']:.1f} ms, p99 {out[f'{model.name}_runtime']['p99_ms']:.1f} ms")


def flops(results):
    from torch.utils.flop_counter import FlopCounterMode

    from edge_sdk.models.recon_nets import MaskHead, MaskUNet, Reconstructor, make_coder

    c = make_config("full")
    kw = dict(channels=1, size=c.size, filters=c.filters, stages=c.stages, blocks=c.blocks, latent=c.latent, top=c.top)
    # The earlier ResNet-V2 variant at the width it had as the full preset (32 filters, 3 blocks).
    v2 = dict(kw, filters=32, blocks=3)
    out = {}
    with torch.device("meta"):
        rec = Reconstructor(*make_coder(c.arch, **kw))
        head = MaskHead(MaskUNet(1, c.unet_filters, c.unet_depth))
        x = torch.empty(1, 1, c.size, c.size)
        with FlopCounterMode(display=False) as fc:
            y = rec(x)
        out["resganad_full_reconstructor"] = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            head(x, y)
        out["grdnet_full_mask_unet"] = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            Reconstructor(*make_coder("resnetv2", **v2))(x)
        out["resganad_resnetv2_32_filters_reconstructor"] = fc.get_total_flops()
    out["grdnet_full_total"] = out["resganad_full_reconstructor"] + out["grdnet_full_mask_unet"]
    params = {}
    rec_cpu = Reconstructor(*make_coder(c.arch, **kw))
    params["resganad_full_reconstructor"] = sum(p.numel() for p in rec_cpu.parameters())
    params["grdnet_full_mask_unet"] = sum(p.numel() for p in MaskUNet(1, c.unet_filters, c.unet_depth).parameters())
    for k, v in out.items():
        print(f"FLOPs per 256x256 patch, {k}: {v / 1e9:.2f} GFLOP (x60 per cycle: {60 * v / 1e12:.2f} TFLOP)")
    results["flops_per_patch"] = out
    results["params"] = params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny data and 2 epochs (smoke test of this script)")
    ap.add_argument("--epochs", type=int, help="training epochs (default: the small preset's)")
    ap.add_argument("--threads", type=int, default=None, help="torch and kernel threads (default: all)")
    ap.add_argument("--speed-runs", type=int, default=30)
    ap.add_argument("--data", default=os.path.join(ROOT, "out", "bench_recon"))
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/bench_recon.json)")
    ap.add_argument("--models", default="resganad,grdnet,patchcore",
                    help="comma list of models to compare (resganad, grdnet, patchcore, resganad_abc, resganad_abc4)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: vial,mtd,speed,flops,patchcore")
    ap.add_argument("--frames", type=int, default=0, metavar="K",
                    help="vial strips acquired as K handled frames each (moving bubbles): models train and are judged "
                         "on the K frames and the lowest / highest images of each acquisition, the strip decision is "
                         "per acquisition (default 0: one frame an acquisition)")
    ap.add_argument("--count", type=int, default=None, help="good training strips of the vial set (default 40)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        pin_threads(args.threads)
    results = {"note": "shared machine (up to 8 jobs on 2 cores): timings are indicative",
               "load_average_at_start": os.getloadavg(), "torch": torch.__version__}
    epochs = 2 if args.quick else args.epochs
    kw = {"epochs": epochs} if epochs else {}
    # resganad_abc / _abc4: the published A/B/C network (the full preset's) at CPU widths, beside the
    # small preset's ResNet-V2 encoder.
    models = {"resganad": lambda: ResGANAD("small", seed=0, **kw), "grdnet": lambda: GRDNet("small", seed=0, **kw),
              "resganad_abc": lambda: ResGANAD("small", seed=0, arch="abc", filters=2, top=64, **kw),
              "resganad_abc4": lambda: ResGANAD("small", seed=0, arch="abc", filters=4, top=128, **kw)}
    if "patchcore" not in skip:
        try:
            from edge_sdk.models.patchcore import PatchCore
            models["patchcore"] = lambda: PatchCore(input_size=128, seed=0)
        except ImportError as exc:
            print(f"PatchCore: not available ({exc}); compared models: ResGANAD, GRD-Net")
    wanted = set(filter(None, args.models.split(",")))
    models = {k: v for k, v in models.items() if k in wanted}
    results["epochs"] = epochs or make_config("small").epochs
    if "vial" not in skip:
        sizes = dict(count=4, products=16, acquisitions=10, region_size=64) if args.quick else \
            dict(count=40, products=32, acquisitions=10, region_size=128)
        if args.count:
            sizes["count"] = args.count
        if args.frames:
            sizes["frames"] = args.frames
        tag = (("quick" if args.quick else "full") + (f"_count{args.count}" if args.count else "")
               + (f"_frames{args.frames}" if args.frames else ""))
        folder = os.path.join(args.data, tag)
        root = os.path.join(folder, "vial_strip")
        if not os.path.isdir(root):
            make_vial_strip_dataset(folder, seed=0, **sizes)
        results["vial_strip_set"] = sizes
        vial_benchmark(models, root, args, results)
    if "mtd" not in skip and not args.quick:
        mtd_benchmark(models, args, results)
    if "speed" not in skip:
        speed_benchmark(args, results)
    if "flops" not in skip:
        flops(results)
    out = args.out or REPO / "benchmarks" / "results" / ("bench_recon_quick.json" if args.quick else "bench_recon.json")
    write_json(out, json.loads(json.dumps(results, default=float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""TensorRT engines on this GPU (run by benchmarks/gpu_check): for PaDiM, PatchCore and
ResGANAD trained briefly on the synthetic tile set, the bundle's gated precision variants
(converters/precision_bundle.py), one engine per variant (converters/trt_builder.py: strongly
typed, batch profile 1/60/64, a timing cache shared by the builds), and the parity of
edge_sdk.Runtime(..., backend="tensorrt") (whole cycle on the GPU) against onnxruntime on the CPU:

  fp32 engine      vs onnxruntime fp32: scores within 1e-3 relative (no TF32), same verdicts
                   except scores within 1e-3 of the threshold, heatmaps within 1e-3 of the map range
  fp16/int8 engine vs onnxruntime fp32 (the reference): the accuracy gate's criteria (verdicts
                   agree on >= 99.5 %, AUROC drop <= 0.005); drift against onnxruntime running the
                   same ONNX variant is reported

The bundles (with their engines) stay in --out-dir for the latency step of gpu_check
(`edge-sdk bench --backend tensorrt`, batch 1 and 60). Exit status 0 only when every check
passes; 2 without a GPU, TensorRT or a build with the TensorRT backend (the message says which).

    python benchmarks/bench_trt.py [--out-dir benchmarks/results/gpu_check/trt] [--models ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from _common import REPO, pin_threads, write_json

from bench_precision import synthetic_splits, train_model  # noqa: E402  (same models and data)


def preconditions() -> str | None:
    import edge_sdk
    from edge_sdk.converters import trt_builder as tb

    if not any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        return "no CUDA device visible to edge_sdk (edge_sdk.devices())"
    if "tensorrt" not in edge_sdk.runtime.available_backends():
        return ("this edge_sdk build has no TensorRT backend: configure with the CUDA toolkit and TensorRT "
                "(TENSORRT_ROOT, or EDGE_TRT_LIBRARY + TensorRT headers) and rebuild")
    try:
        tb.require_tensorrt()
    except tb.TensorRTUnavailable as exc:
        return str(exc)
    return None


def predict_all(rt, images, batch: int = 60):
    scores, verdicts, maps = [], [], []
    for i in range(0, len(images), batch):
        res = rt.predict(images[i:i + batch])
        scores.append(res.scores)
        verdicts.append(res.verdicts)
        maps.extend(res.heatmaps)
    return np.concatenate(scores), np.concatenate(verdicts), maps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="padim,patchcore,resganad")
    ap.add_argument("--train", type=int, default=40)
    ap.add_argument("--calib", type=int, default=40)
    ap.add_argument("--gate", type=int, default=200)
    ap.add_argument("--threads", type=int, default=4, help="CPU threads (training, onnxruntime reference)")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results" / "gpu_check" / "trt"))
    args = ap.parse_args(argv)
    problem = preconditions()
    if problem:
        print(f"bench_trt: cannot run: {problem}", file=sys.stderr)
        return 2
    pin_threads(args.threads)
    import edge_sdk
    from edge_sdk.converters import export_bundle
    from edge_sdk.converters import trt_builder as tb
    from edge_sdk.converters.engine_bundle import ensure_engines
    from edge_sdk.converters.engine_manifest import read_manifest
    from edge_sdk.converters.precision_bundle import add_precision_variants
    from edge_sdk import metrics

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record: dict = {"schema": "edge-sdk-bench-trt", "models": [], "failures": []}
    failures = record["failures"]
    splits = {}
    for name in [m for m in args.models.split(",") if m]:
        gray = name == "resganad"
        if gray not in splits:
            splits[gray] = synthetic_splits(args.train, args.calib, args.gate, gray)
        train, calib, gate = splits[gray]
        print(f"== {name}: training on {len(train)} synthetic images", flush=True)
        model, _ = train_model(name, train, calib, args.threads)
        bundle = out / f"{name}.bundle"
        export_bundle(model.export_parts(), bundle, model_type=model.name, overwrite=True)
        images = [np.ascontiguousarray(s.image) for s in gate]
        labels = np.array([s.label for s in gate])
        add_precision_variants(bundle, ["fp16", "int8"], calibration_images=[s.image for s in train[:64]],
                               validation_images=images, validation_labels=labels, threads=args.threads)
        manifest = json.loads((bundle / "manifest.json").read_text())
        present = sorted({n["precision"] for n in manifest["networks"]})
        thr = float(manifest["calibration"]["threshold"])
        ref32 = predict_all(edge_sdk.Runtime(bundle, threads=args.threads, max_batch=60), images)
        auroc32 = metrics.image_auroc(labels, ref32[0])
        row: dict = {"model": name, "precisions": present, "gate_images": len(images), "auroc_fp32_cpu": auroc32,
                     "engines": {}}
        for p in present:
            t0 = time.perf_counter()
            opts = tb.BuildOptions(precision=p, profile=(1, 60, 64), timing_cache=out / "timing.cache")
            engines = ensure_engines(bundle, p, device="cuda:0", max_batch=60, build_options=opts)
            build_s = time.perf_counter() - t0
            rt = edge_sdk.Runtime(bundle, device="cuda:0", backend="tensorrt", precision=p, max_batch=60)
            trt = predict_all(rt, images)
            same = ref32 if p == "fp32" else predict_all(
                edge_sdk.Runtime(bundle, threads=args.threads, precision=p, max_batch=60), images)
            rel = np.abs(trt[0] - same[0]) / np.maximum(np.abs(same[0]), 1e-12)
            agree32 = float(np.mean(trt[1] == ref32[1]))
            auroc = metrics.image_auroc(labels, trt[0])
            map_err = max(float(np.max(np.abs(a - b)) / max(float(np.ptp(b)), 1e-12)) for a, b in zip(trt[2], same[2]))
            e = {"engines": [str(x.name) for x in engines], "build_or_load_seconds": round(build_s, 1),
                 "trtexec": [read_manifest(x).get("trtexec") for x in engines], "backend": rt.backend,
                 "score_rel_diff_vs_onnxruntime_same_variant": {"max": float(rel.max()), "mean": float(rel.mean())},
                 "heatmap_max_diff_vs_same_variant_over_range": map_err,
                 "verdict_agreement_vs_fp32_cpu": agree32, "auroc": auroc, "auroc_drop_vs_fp32_cpu": auroc32 - auroc}
            row["engines"][p] = e
            if p == "fp32":
                near = np.abs(ref32[0] - thr) <= 1e-3 * max(abs(thr), 1e-6)
                flips = int(np.sum((trt[1] != ref32[1]) & ~near))
                if rel.max() > 1e-3 or flips or map_err > 1e-3:
                    failures.append(f"{name} fp32: scores max rel diff {rel.max():.2e} (<= 1e-3), {flips} verdict "
                                    f"flip(s) away from the threshold, heatmap diff {map_err:.2e} (<= 1e-3)")
            elif agree32 < 0.995 or auroc32 - auroc > 0.005:
                failures.append(f"{name} {p}: verdict agreement with fp32 {agree32:.4f} (>= 0.995), AUROC drop "
                                f"{auroc32 - auroc:+.4f} (<= 0.005)")
            print(f"{name:<10} {p:<5} rel diff vs onnxruntime {p}: max {rel.max():.2e} mean {rel.mean():.2e}; "
                  f"verdicts vs fp32 {100 * agree32:.2f} %; AUROC {auroc:.4f} (fp32 CPU {auroc32:.4f}); "
                  f"heatmaps {map_err:.1e}", flush=True)
        record["models"].append(row)
        write_json(out / "bench_trt.json", record)
    write_json(out / "bench_trt.json", record)
    if failures:
        print("bench_trt: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("bench_trt: all engine parity checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

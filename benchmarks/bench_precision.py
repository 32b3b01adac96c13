"""Reduced-precision variants measured on the CPU through edge_sdk.Runtime (onnxruntime; the bf16
variant on openvino, the one backend that computes it, on a CPU with bfloat16 arithmetic): for PatchCore, PaDiM and ResGANAD, each variant's image AUROC against fp32, its
verdict agreement with fp32, its score drift (mean / max relative, max absolute) and the accuracy
gate's decision (verdicts agree on >= 99.5 % of images and AUROC drops by <= 0.005).

The models are trained here on the synthetic tile set (edge_sdk.data.synthetic, seeded): PatchCore
and PaDiM on RGB 256 x 256 images (EfficientNet-Lite0 taps), ResGANAD (preset "small", 64 x 64
gray) on the same scenes in gray. Each test image is used once: a labelled calibration split sets
the threshold (F1 on it, as `fit(val_dataset=...)` does), the gate runs on the other, larger split
(400 images by default, so one flipped verdict is 0.25 %, below the 0.5 % the gate allows: a
refusal means at least two flips). int8 is calibrated on good training images
(converters/precision.py: Q/DQ, per-channel symmetric weights, the input quantizer over the whole
pixel range). Every figure comes from `edge_sdk.converters.precision_bundle.add_precision_variants`, the
code path of `edge-sdk export --precision fp32,fp16,int8`.

With --mtd, PatchCore and PaDiM are also measured on the Magnetic Tile Defect set
(../shared/datasets/magnetic_tile or $EDGE_SDK_MTD; DifferNet split; the gate on its test split,
the threshold from a 0.99 quantile of held-out good training images).

Run once, at the end (the machine may be shared; only accuracy figures are reported, no timings):
    python benchmarks/bench_precision.py [--models patchcore,padim,resganad] [--train 100]
        [--calib 100] [--gate 400] [--threads 2] [--mtd] [--out benchmarks/results/bench_precision.json]
Prints one table per data set and writes the JSON record.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, pin_threads, write_json

MODELS = ("patchcore", "padim", "resganad")


def log(msg: str) -> None:
    print(msg, flush=True)


def default_mtd() -> str:
    env = os.environ.get("EDGE_SDK_MTD")
    if env:
        return env
    for root in (REPO.parent, REPO.parent.parent):
        if (root / "shared" / "datasets" / "magnetic_tile").is_dir():
            return str(root / "shared" / "datasets" / "magnetic_tile")
    return str(REPO.parent / "shared" / "datasets" / "magnetic_tile")


def synthetic_splits(n_train: int, n_calib: int, n_gate: int, gray: bool, seed: int = 0):
    """(train, calibration, gate) Sample lists of the synthetic tile set; the test images are split
    at random (seeded), so both test splits hold good and anomalous images in the same proportion."""
    from edge_sdk.data.synthetic import make_samples

    train, test = make_samples("tile", n_train, n_calib + n_gate, 256, seed, gray, anomaly_fraction=0.5,
                               progress=True)
    order = np.random.default_rng(seed + 1).permutation(len(test))
    return train, [test[i] for i in order[:n_calib]], [test[i] for i in order[n_calib:]]


def train_model(name: str, train, calib, threads: int):
    from edge_sdk.models.padim import PaDiM
    from edge_sdk.models.patchcore import PatchCore
    from edge_sdk.models.resganad import ResGANAD

    t0 = time.perf_counter()
    if name == "patchcore":
        model = PatchCore(input_size=256, coreset_ratio=0.1, seed=0)
    elif name == "padim":
        model = PaDiM(input_size=256, seed=0)
    elif name == "resganad":
        model = ResGANAD("small", seed=0)
    else:
        raise SystemExit(f"--models: unknown model {name!r} (expected {', '.join(MODELS)})")
    if calib is not None:
        model.fit(train, val_dataset=calib)  # F1-optimal threshold on the labelled split
    else:  # held-out good training images, 0.99 quantile
        model.fit(train, val_fraction=0.1)  # 0.99 quantile of held-out good images
    return model, time.perf_counter() - t0


def measure(name: str, model, train, gate, workdir: str, threads: int, precisions: list[str],
            int8_methods: list[str]) -> dict:
    """Exports the model, adds the gated variants and returns the record of each variant. int8 is
    calibrated with int8_methods[0]; each further method is gated on a fresh copy of the fp32
    bundle and recorded as "int8/<method>" (for comparison; not in the bundle)."""
    import shutil

    from edge_sdk.converters import export_bundle
    from edge_sdk.converters.precision_bundle import add_precision_variants
    from edge_sdk.bundle import read_bundle

    bundle = os.path.join(workdir, f"{name}.bundle")
    export_bundle(model.export_parts(), bundle, model_type=model.name, overwrite=True)
    calibration = [np.ascontiguousarray(s.image) for s in train[:64]]
    images = [np.ascontiguousarray(s.image) for s in gate]
    labels = np.array([s.label for s in gate], dtype=np.int64)
    t0 = time.perf_counter()
    fresh = os.path.join(workdir, f"{name}.fp32-only.bundle")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(bundle, fresh)
    reports = add_precision_variants(bundle, precisions, calibration_images=calibration, validation_images=images,
                                     validation_labels=labels, threads=threads, int8_method=int8_methods[0], log=log)
    if "int8" in precisions:
        for method in int8_methods[1:]:
            copy = os.path.join(workdir, f"{name}.{method}.bundle")
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(fresh, copy)
            log(f"int8 calibrated with {method}")
            r = add_precision_variants(copy, ["int8"], calibration_images=calibration, validation_images=images,
                                       validation_labels=labels, threads=threads, int8_method=method, log=log)
            reports[f"int8/{method}"] = r["int8"]
    present = sorted({n["precision"] for n in read_bundle(bundle).manifest["networks"]})
    return {
        "model": name,
        "calibration": model.calibration,
        "gate_images": len(labels),
        "gate_anomalous": int(labels.sum()),
        "variants": {p: dataclasses.asdict(r) for p, r in reports.items()},
        "bundle_precisions": present,
        "gate_seconds": round(time.perf_counter() - t0, 1),
    }


def table(title: str, rows: list[dict]) -> str:
    head = (f"{'model':<10} {'variant':<15} {'images':>6} {'AUROC fp32':>10} {'AUROC':>7} {'drop':>8} "
            f"{'agree %':>8} {'flips':>5} {'drift mean':>10} {'drift max':>9} {'abs max':>9}  gate")
    lines = [title, head, "-" * len(head)]
    for row in rows:
        for p, r in row["variants"].items():
            flips = int(round((1 - r["verdict_agreement"]) * r["images"]))
            fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
            lines.append(f"{row['model']:<10} {p:<15} {r['images']:>6} {fmt(r['auroc_fp32'], '.4f'):>10} "
                         f"{fmt(r['auroc'], '.4f'):>7} {fmt(r['auroc_drop'], '+.4f'):>8} "
                         f"{100 * r['verdict_agreement']:>8.2f} {flips:>5} {r['score_drift_mean']:>10.2e} "
                         f"{r['score_drift_max']:>9.2e} {r['score_abs_drift_max']:>9.2e}  "
                         + ("accepted" if r["accepted"] else "REFUSED: " + "; ".join(r["reasons"])))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precisions", default="fp16,int8")
    ap.add_argument("--train", type=int, default=100, help="good training images (synthetic)")
    ap.add_argument("--calib", type=int, default=100, help="labelled test images that set the threshold")
    ap.add_argument("--gate", type=int, default=400, help="labelled test images of the accuracy gate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--int8-methods", default="minmax",
                    help="activation range estimators for int8, comma-separated (minmax, percentile, entropy); the "
                         "first is the bundle's, the others are gated for comparison")
    ap.add_argument("--mtd", action="store_true", help="also PatchCore and PaDiM on the Magnetic Tile Defect set")
    ap.add_argument("--no-synthetic", action="store_true", help="only the Magnetic Tile Defect set (with --mtd)")
    ap.add_argument("--data", default=default_mtd(), help="Magnetic Tile Defect root (default: $EDGE_SDK_MTD, "
                                                            "../shared/datasets/magnetic_tile from the repository "
                                                            "or from a worktree beside it)")
    ap.add_argument("--workdir", help="where bundles are written (default: a temporary folder)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_precision.json"))
    args = ap.parse_args(argv)
    pin_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    precisions = [p for p in args.precisions.split(",") if p]
    int8_methods = [m for m in args.int8_methods.split(",") if m]
    record: dict = {"schema": "edge-sdk-bench-precision", "threads": args.threads, "precisions": precisions,
                    "int8_methods": int8_methods,
                    "gate": {"min_verdict_agreement": 0.995, "max_auroc_drop": 0.005},
                    "note": "CPU, onnxruntime through edge_sdk.Runtime (bf16: openvino, the one backend that "
                            "computes it); machine shared with other jobs (no timings reported)", "synthetic": [], "mtd": []}
    with tempfile.TemporaryDirectory(prefix="bench_precision.") as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        record["synthetic_data"] = {"kind": "tile", "size": 256, "train": args.train, "calibration": args.calib,
                                    "gate": args.gate, "anomaly_fraction": 0.5, "seed": 0}
        splits = {}
        for name in ([] if args.no_synthetic else models):
            gray = name == "resganad"
            if gray not in splits:
                log(f"synthetic tile set ({'gray' if gray else 'RGB'}): {args.train} train, {args.calib} "
                    f"calibration, {args.gate} gate images")
                splits[gray] = synthetic_splits(args.train, args.calib, args.gate, gray)
            train, calib, gate = splits[gray]
            log(f"== {name}: training on {len(train)} images")
            model, fit_s = train_model(name, train, calib, args.threads)
            row = measure(name, model, train, gate, workdir, args.threads, precisions, int8_methods)
            row["fit_seconds"] = round(fit_s, 1)
            record["synthetic"].append(row)
            write_json(Path(args.out), record)
        if args.mtd:
            if not os.path.isdir(args.data):
                raise SystemExit(f"--mtd: {args.data} not found (set EDGE_SDK_MTD or --data)")
            from edge_sdk.data import load_dataset

            train = load_dataset(args.data, "mtd", "train", seed=0)
            test = load_dataset(args.data, "mtd", "test", seed=0)
            gate = [test[i] for i in range(len(test))]
            for name in [m for m in models if m != "resganad"]:
                log(f"== {name} on MTD: training on {len(train)} images, gate on {len(gate)}")
                model, fit_s = train_model(name, train, None, args.threads)
                row = measure(name, model, [train[i] for i in range(64)], gate, workdir, args.threads, precisions,
                              int8_methods)
                row["fit_seconds"] = round(fit_s, 1)
                record["mtd"].append(row)
                write_json(Path(args.out), record)
    print()
    if record["synthetic"]:
        print(table(f"Synthetic tile set, gate on {args.gate} images (CPU, edge_sdk.Runtime)",
                    record["synthetic"]))
    if record["mtd"]:
        print()
        print(table("Magnetic Tile Defect, gate on its test split", record["mtd"]))
    write_json(Path(args.out), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())

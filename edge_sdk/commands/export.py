"""`edge-sdk export MODEL_DIR --out BUNDLE`: a trained model -> ONNX network(s) + bundle."""

from __future__ import annotations

import os

from edge_sdk.cli import bounded_float, bounded_int
from edge_sdk.commands.train import add_data_arguments, open_dataset


def _k_of_n(text: str) -> tuple[int, int]:
    import argparse

    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--run-vote: expected K/N, e.g. 7/10, got {text!r}") from None
    if not 1 <= k <= n <= 1024:
        raise argparse.ArgumentTypeError(f"--run-vote: expected 1 <= K <= N <= 1024, got {text!r}")
    return k, n


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model directory into a bundle (ONNX + arrays + manifest)",
                       description="Reopens the model saved in MODEL_DIR, exports its network(s) to ONNX "
                                   "(opset >= 17, dynamic batch), checks them against PyTorch on random inputs "
                                   "and on real images (--data), refuses a graph outside the tolerance, and "
                                   "writes the bundle atomically. Prints the parity report.")
    p.add_argument("model_dir", help="directory written by the model's save() (edge-sdk train --out)")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--archive", help="also pack the bundle into this single file (uncompressed tar)")
    # The data set options of train / eval (every layout's flags): its first good training images
    # are the real inputs of the parity check; its test split gates precision variants.
    add_data_arguments(p, required=False)
    p.add_argument("--real", type=bounded_int("--real", 0, 10_000), default=8, metavar="N", help="real images compared (default 8)")
    p.add_argument("--tolerance", type=bounded_float("--tolerance", 1e-12, 1.0), default=None,
                   help="largest accepted max|onnx - torch| / max|torch| per output (default 1e-4)")
    p.add_argument("--opset", type=bounded_int("--opset", 17, 30), default=17, help="ONNX opset (>= 17)")
    p.add_argument("--on-size-mismatch", choices=("resize", "reject"), default="resize",
                   help="what the runtime does with images of another size than the input (default resize)")
    p.add_argument("--review-band", type=bounded_float("--review-band", 0.0, 0.5), default=0.0,
                   help="normalized scores within this distance of 0.5 are judged 'review' (default 0)")
    p.add_argument("--run-vote", metavar="K/N", type=_k_of_n,
                   help="run vote of a product acquired N times: rejected when K acquisitions are (default 7/10; "
                        "the C ABI's edge_run_vote and Python's Runtime.run_vote apply it)")
    p.add_argument("--acquisition-frames", metavar="K", type=bounded_int("--acquisition-frames", 2, 1024),
                   help="an acquisition is K frames, judged with their two rank-filter images (per-pixel lowest and "
                        "highest) as K + 2 images (input.acquisition; Runtime.predict_acquisition, the C ABI's "
                        "edge_run_acquisition)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--precision", default="fp32",
                   help="precision variants to add, e.g. fp32,fp16,int8 (bf16: computed by OpenVINO, gated on a CPU with "
                        "bfloat16 arithmetic): each is calibrated (int8: on --calibration good "
                        "training images of --data) and admitted only if, on the test split of --data, verdicts agree with "
                        "fp32 on >= 99.5%% of images and image AUROC drops by <= 0.005 (converters/precision.py)")
    p.add_argument("--calibration", type=bounded_int("--calibration", 1, 100_000), default=64, metavar="N", help="good training images for int8 (default 64)")
    p.add_argument("--validation", type=bounded_int("--validation", 0, 10**7), default=0, metavar="N",
                   help="test images for the accuracy gate (default 0 = all)")
    p.set_defaults(func=run)


class _Steps:
    """Export's stages on stderr with their times: minutes of ONNX export and checks are not silent."""

    def __init__(self):
        import sys
        import time

        self._clock, self._err, self._t0, self._name = time.perf_counter, sys.stderr, None, None

    def __call__(self, name: str) -> None:
        self.done()
        self._name, self._t0 = name, self._clock()
        print(f"export: {name} ...", file=self._err, flush=True)

    def done(self) -> None:
        if self._name is not None:
            print(f"export: {self._name}: {self._clock() - self._t0:.1f} s", file=self._err, flush=True)
        self._name = None


def real_images(args, n: int, gray: bool):
    """The first n good training images of the data set of ``args`` (uint8 HWC / HW)."""
    import numpy as np

    ds = open_dataset(args, "train", gray=gray)
    k = min(n, len(ds))
    return [np.ascontiguousarray(ds[i].image) for i in range(k)]


def run(args) -> int:
    from edge_sdk.converters import ExportError, export_bundle
    from edge_sdk.converters.onnx_export import DEFAULT_TOLERANCE, preprocess_images
    from edge_sdk.bundle import BundleError, pack_bundle
    from edge_sdk.cli import UserError
    from edge_sdk.models import load_model

    if args.data and not args.layout:
        raise UserError("--data needs --layout (mvtec, folder or mtd)")
    # Refused before the minutes of export, and in the CLI's words (the writer names its argument).
    for flag, path in (("--out", args.out), ("--archive", args.archive)):
        if path and os.path.lexists(path) and not args.overwrite:
            raise UserError(f"{flag} {path}: exists (pass --overwrite to replace it)")
    step = _Steps()
    try:
        step("loading the model")
        model = load_model(args.model_dir)
        parts = model.export_parts()
        from edge_sdk.tiling import tiling_of_model

        tiling = tiling_of_model(model)  # trained on tiles (`train --tile`): the bundle cuts and stitches them
        if tiling is not None:
            parts.tiling = tiling.to_dict()
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise UserError(f"{args.model_dir}: {exc}") from exc
    real = None
    if args.data:
        step(f"reading {args.real} real image(s) of {args.data}")
        gray = int(parts.preprocess["channels"]) == 1
        imgs = real_images(args, args.real, gray)
        real = preprocess_images(imgs, parts.preprocess)
    step("exporting ONNX, checking it against PyTorch, writing and validating the bundle")
    try:
        report = export_bundle(parts, args.out, model_type=model.name,
                               real_images=real, tolerance=args.tolerance or DEFAULT_TOLERANCE, opset=args.opset,
                               on_size_mismatch=args.on_size_mismatch, review_band=args.review_band,
                               run_vote=args.run_vote, acquisition_frames=args.acquisition_frames,
                               overwrite=args.overwrite, extra=getattr(parts, "metadata", None) or None)
    except (ExportError, BundleError) as exc:
        raise UserError(str(exc)) from exc
    step.done()
    print(report)
    if real is None:
        print("  real inputs: none compared (give --data to check the graph on real images)")
    _add_variants(args, parts)
    if args.archive:
        try:
            print(f"archive: {pack_bundle(args.out, args.archive, overwrite=args.overwrite)}")
        except BundleError as exc:
            raise UserError(f"--archive: {exc}") from exc
    return 0


def _add_variants(args, parts) -> None:
    """--precision: gated fp16/int8 variants (converters/precision_bundle.py); prints the gate report."""
    import numpy as np

    from edge_sdk.converters.precision import PrecisionError, parse_precisions
    from edge_sdk.converters.precision_bundle import add_precision_variants
    from edge_sdk.cli import UserError

    try:
        wanted = [p for p in parse_precisions(args.precision) if p != "fp32"]
    except PrecisionError as exc:
        raise UserError(str(exc)) from exc
    if not wanted:
        return
    if not args.data:
        raise UserError("--precision: fp16/int8 variants need --data (good training images to calibrate on and a "
                        "labelled test split for the accuracy gate)")
    gray = int(parts.preprocess["channels"]) == 1
    calib = real_images(args, args.calibration, gray)
    test = open_dataset(args, "test", gray=gray)
    n = len(test) if args.validation <= 0 else min(args.validation, len(test))
    samples = [test[i] for i in range(n)]
    try:
        reports = add_precision_variants(args.out, wanted, calibration_images=calib,
                                         validation_images=[np.ascontiguousarray(s.image) for s in samples],
                                         validation_labels=[s.label for s in samples])
    except (PrecisionError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    refused = [p for p, r in reports.items() if not r.accepted]
    if refused:
        print(f"precision: refused (absent from the bundle): {', '.join(refused)}")


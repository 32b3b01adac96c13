"""Adds fp16 / int8 / bf16 variants of a bundle's networks, each admitted only by the accuracy gate.

For every requested precision the variant of each fp32 network is made (converters/precision.py),
put into a scratch copy of the bundle, and the whole model -- preprocessing, network, the
post-processing kernels and the decision, i.e. ``edge_sdk.Runtime(bundle, precision=...)`` -- is
run on the validation images in fp32 and in the variant. The variant is written into the bundle
(``edge_sdk.bundle.add_networks``, atomic) only if the gate accepts it; a refused variant is absent,
and asking the runtime for it is an error. The bf16 variant is run by the one backend that computes
it (OpenVINO), and only on a CPU where it really computes in bfloat16: elsewhere the gate would
measure float32 and admit a variant it never saw.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import precision as P


def _runtime(bundle: Path, precision: str, threads: int | None):
    import edge_sdk

    backend = P.BACKEND_OF.get(precision, "onnxruntime")
    try:
        rt = edge_sdk.Runtime(bundle, precision=precision, threads=threads, heatmaps=False, backend=backend)
    except RuntimeError as e:  # BackendError: the library is missing or cannot compile the network
        raise P.PrecisionError(f"{precision}: the {backend} backend cannot run the variant here: {e}") from e
    if precision == "bf16" and ", bf16" not in rt.backend:
        raise P.PrecisionError(f"bf16: {rt.backend} computes the variant in float32 on this CPU (no AVX512-BF16 "
                               "or AMX), so the gate cannot measure it; add it on a CPU with bfloat16 arithmetic")
    return rt


def _runtime_scores(bundle: Path, precision: str, images: Sequence[np.ndarray], threads: int | None,
                    batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rt = _runtime(bundle, precision, threads)
    scores, codes = [], []
    for start in range(0, len(images), batch):
        res = rt.predict([np.asarray(images[i]) for i in range(start, min(len(images), start + batch))])
        scores.append(res.scores)
        codes.append(res.verdict_codes)
    return np.concatenate(scores).astype(np.float64), np.concatenate(codes)


def add_precision_variants(
    bundle: str | os.PathLike,
    precisions: Sequence[str],
    *,
    calibration_images: Sequence[np.ndarray],
    validation_images: Sequence[np.ndarray],
    validation_labels: Sequence[int] | np.ndarray,
    threads: int | None = None,
    int8_method: str = "minmax",
    log: Callable[[str], None] = print,
    **gate_options: float,
) -> dict[str, P.GateReport]:
    """Makes, gates and (if accepted) adds each variant in ``precisions`` (fp32 is the reference and
    always present). ``calibration_images``: good training images (uint8 HWC or HW) for int8;
    ``validation_images`` / ``validation_labels`` (0 good, 1 anomalous): the gate's set. Returns
    {precision: GateReport}; refused variants are reported, not written. ``gate_options``:
    min_verdict_agreement / max_auroc_drop of :func:`converters.precision.accuracy_gate`."""
    import onnx

    from edge_sdk.bundle import add_networks, read_bundle

    wanted = [p for p in P.parse_precisions(precisions) if p != "fp32"]
    if not wanted:
        return {}
    if len(validation_images) == 0 or len(validation_images) != len(validation_labels):
        raise P.PrecisionError(f"validation: {len(validation_images)} images for {len(validation_labels)} labels; "
                               "the gate needs a labelled validation set")
    src = read_bundle(bundle)
    bundle = Path(src.path)
    if not bundle.is_dir():
        raise P.PrecisionError(f"{bundle}: precision variants are added to a bundle directory (pack it afterwards)")
    pre = src.manifest["input"]
    fp32 = [n for n in src.manifest["networks"] if n["precision"] == "fp32"]
    labels = np.asarray(validation_labels).astype(np.int64)

    reports: dict[str, P.GateReport] = {}
    accepted: dict[str, tuple[dict, object]] = {}
    with tempfile.TemporaryDirectory(prefix=".precision-", dir=bundle.parent) as tmp_dir:
        tmp = Path(tmp_dir)
        for net in fp32:
            (tmp / net["file"]).write_bytes(src.networks[net["file"]])
        ref = None
        for p in wanted:
            variants: dict[str, tuple[dict, object]] = {}
            for net in fp32:
                file = f"{Path(net['file']).stem}.{p}.onnx"
                out = tmp / p / file
                if p == "fp16":
                    P.make_fp16(tmp / net["file"], out)
                elif p == "bf16":
                    P.make_bf16(tmp / net["file"], out)
                else:
                    batches = P.calibration_batches(calibration_images, pre)
                    P.make_int8(tmp / net["file"], out, batches, method=int8_method,
                                input_range=P.input_value_range(pre))
                entry = {**net, "precision": p, "file": file}
                variants[file] = (entry, onnx.load(str(out)))
            candidate = tmp / f"bundle-{p}"
            shutil.copytree(bundle, candidate, ignore=shutil.ignore_patterns("engines"))
            add_networks(candidate, variants)
            if ref is None:
                log(f"gate: fp32 on {len(labels)} validation images")
                ref = _runtime_scores(candidate, "fp32", validation_images, threads)
            log(f"gate: {p} on {len(labels)} validation images")
            s, v = _runtime_scores(candidate, p, validation_images, threads)
            report = P.accuracy_gate(p, labels, ref[0], ref[1], s, v, **gate_options)
            reports[p] = report
            log("gate: " + report.summary())
            if report.accepted:
                accepted.update(variants)
    if accepted:
        add_networks(bundle, accepted)
    return reports

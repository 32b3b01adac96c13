"""Precision variants added to a real bundle through the accuracy gate, and selected by the runtime
(edge_sdk.Runtime(bundle, precision=...)); a refused variant is absent and asking for it is an error."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

import edge_sdk  # noqa: E402
from edge_sdk.converters import export_bundle  # noqa: E402
from edge_sdk.converters.precision_bundle import add_precision_variants  # noqa: E402
from edge_sdk.bundle import read_bundle  # noqa: E402
from tests.bundle_helpers import ssim_parts  # noqa: E402

pytestmark = pytest.mark.onnxruntime


def _images(rng, n, anomalous=0):
    imgs = [rng.integers(60, 200, (32, 32), dtype=np.uint8) for _ in range(n)]
    labels = np.zeros(n, np.int64)
    for i in range(anomalous):
        y, x = rng.integers(0, 20, 2)
        imgs[i][y:y + 12, x:x + 12] = 255
        labels[i] = 1
    return imgs, labels


def test_variants_pass_or_are_refused_by_the_gate(tmp_path, rng):
    torch.set_num_threads(1)
    parts = ssim_parts(seed=int(rng.integers(1000)))
    bundle = export_bundle(parts, tmp_path / "b", model_type="resganad").bundle
    calib, _ = _images(rng, 8)
    val, labels = _images(rng, 24, anomalous=12)
    logs = []
    reports = add_precision_variants(bundle, "fp16", calibration_images=calib, validation_images=val,
                                     validation_labels=labels, threads=1, log=logs.append)
    r = reports["fp16"]
    assert r.accepted, r.summary()
    assert r.images == 24 and r.verdict_agreement == 1.0 and r.score_drift_max < 1e-3
    assert any("fp16" in line and "accepted" in line for line in logs)
    b = read_bundle(bundle)  # validated, fp16 listed and checksummed
    assert {(n["name"], n["precision"]) for n in b.manifest["networks"]} == {("reconstructor", "fp32"),
                                                                             ("reconstructor", "fp16")}
    s32 = edge_sdk.Runtime(bundle, threads=1).predict(val).scores
    s16 = edge_sdk.Runtime(bundle, precision="fp16", threads=1).predict(val).scores
    assert np.abs(s16 - s32).max() <= 1e-3 * np.abs(s32).max()
    assert np.isfinite(s16).all()
    assert 0 < np.abs(s16 - s32).max()  # fp16 really ran

    # An unreachable agreement threshold refuses int8: absent from the bundle, a clear error.
    reports = add_precision_variants(bundle, ["int8"], calibration_images=calib, validation_images=val,
                                     validation_labels=labels, threads=1, log=logs.append,
                                     min_verdict_agreement=1.01)
    assert not reports["int8"].accepted and "verdict agreement" in reports["int8"].reasons[0]
    assert "int8" not in {n["precision"] for n in read_bundle(bundle).manifest["networks"]}
    with pytest.raises(ValueError, match="no \"int8\" variant.*accuracy gate"):
        edge_sdk.Runtime(bundle, precision="int8", threads=1)


def test_gate_needs_a_labelled_set(tmp_path, rng):
    from edge_sdk.converters.precision import PrecisionError

    bundle = export_bundle(ssim_parts(), tmp_path / "b", model_type="resganad").bundle
    with pytest.raises(PrecisionError, match="validation"):
        add_precision_variants(bundle, "fp16", calibration_images=[], validation_images=[], validation_labels=[])


def test_int8_variant_accepted_and_run_by_the_runtime(tmp_path, rng):
    """With the default gate an int8 variant of a network whose defects stand out is admitted; the
    runtime then runs it (Q/DQ in float on the CPU, as the gate scored it), with the gate's scores."""
    torch.set_num_threads(1)
    parts = ssim_parts(seed=int(rng.integers(1000)))
    bundle = export_bundle(parts, tmp_path / "b", model_type="resganad").bundle
    calib, _ = _images(rng, 16)
    val, labels = _images(rng, 24, anomalous=12)
    reports = add_precision_variants(bundle, ["int8"], calibration_images=calib, validation_images=val,
                                     validation_labels=labels, threads=1, log=lambda _: None)
    r = reports["int8"]
    assert r.accepted, r.summary()
    assert r.verdict_agreement >= 0.95 and r.auroc_drop is not None and r.auroc_drop <= 0.01
    assert "int8" in {n["precision"] for n in read_bundle(bundle).manifest["networks"]}
    s32 = edge_sdk.Runtime(bundle, threads=1).predict(val).scores
    s8 = edge_sdk.Runtime(bundle, precision="int8", threads=1).predict(val).scores
    assert np.isfinite(s8).all() and 0 < np.abs(s8 - s32).max()  # int8 really ran
    assert np.abs(s8 - s32).max() <= r.score_abs_drift_max * (1 + 1e-6) + 1e-7  # what the gate measured

"""Each post-processing kind of the runtime against the models' recipe written out in Python with
edge_sdk.kernels and the PyTorch networks (tests/bundle_helpers.py), on small networks fitted to
random images: scores to 1e-4 relative, identical verdicts, heatmaps to 1e-5."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk
import edge_sdk.bundle
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import embedding_parts, embedding_reference, mask_parts, mask_reference

pytestmark = pytest.mark.onnxruntime


def _images(rng, n=5, size=(32, 40)):
    imgs = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]
    imgs.append(rng.integers(0, 256, (45, 51), dtype=np.uint8))  # gray, other size: replicated, resized
    return imgs


def _calibration(scores):
    """Threshold halfway between two middle scores (as edge_sdk.calibration places it), so both
    verdicts occur and none hinges on the last bit."""
    s = np.sort(scores.astype(np.float64))
    mid = len(s) // 2
    return {"threshold": float((s[mid - 1] + s[mid]) / 2), "min": float(s[0]), "max": float(s[-1]) + 1e-3}


def _check(res, ref_scores, ref_maps, parts):
    np.testing.assert_allclose(res.scores, ref_scores, rtol=1e-4, atol=1e-6)
    thr = parts.calibration["threshold"]
    assert list(res.verdicts) == list(np.where(ref_scores >= thr, "reject", "accept"))
    for got, want in zip(res.heatmaps, ref_maps):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind,image_score,reweight,bank", [
    ("mahalanobis", "max_blurred", False, np.float32),
    ("mahalanobis", "max_raw", False, np.float32),
    ("knn", "max_raw", False, np.float32),
    ("knn", "max_raw", True, np.float32),
    ("knn", "max_raw", False, np.float16),
    ("mhbc", "max_raw", False, np.float32),
])
def test_embedding_kinds(tmp_path, rng, kind, image_score, reweight, bank):
    torch.set_num_threads(1)
    parts = embedding_parts(kind, image_score=image_score, reweight=reweight, bank_dtype=bank)
    imgs = _images(rng)
    ref_scores, ref_maps = embedding_reference(parts, imgs)
    # thresholds between the scores, so both verdicts occur
    parts.calibration = _calibration(ref_scores)
    out = export_bundle(parts, tmp_path / "b", model_type=kind).bundle
    rt = edge_sdk.Runtime(out, threads=1, max_batch=4)
    res = rt.predict(imgs)
    _check(res, ref_scores, ref_maps, parts)
    assert set(res.verdicts) == {"accept", "reject"}


def test_mask_kind_two_networks(tmp_path, rng):
    torch.set_num_threads(1)
    parts = mask_parts()
    imgs = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(4)] + [rng.integers(0, 256, (40, 36, 1), np.uint8)]
    ref_scores, ref_maps = mask_reference(parts, imgs)
    parts.calibration = _calibration(ref_scores)
    report = export_bundle(parts, tmp_path / "b", model_type="grdnet", real_images=imgs[:2])
    out = report.bundle
    # each network compared on its own inputs: the mask head on the PyTorch reconstruction
    assert sorted((p.network, p.inputs) for p in report.parity) == [
        ("mask_head", "random"), ("mask_head", "real"), ("reconstructor", "random"), ("reconstructor", "real")]
    head = [n for n in edge_sdk.bundle.validate_bundle(out)["networks"] if n["name"] == "mask_head"][0]
    assert [i["meaning"] for i in head["inputs"]] == ["preprocessed image (N, C, H, W)", "output of network reconstructor"]
    rt = edge_sdk.Runtime(out, threads=1, max_batch=3)
    res = rt.predict(imgs)
    _check(res, ref_scores, ref_maps, parts)
    assert (res.heatmaps[0][:, :8] == 0).all()  # outside the ROI


def test_kind_fields_are_checked(tmp_path):
    parts = embedding_parts("mahalanobis")
    parts.postprocess["grid"] = [9, 10]
    out = export_bundle(parts, tmp_path / "b", model_type="padim").bundle
    with pytest.raises(ValueError, match=r"postprocess\.features_output: output \"features\" must have shape "
                                         r"\[-1, 90, 6\]"):
        edge_sdk.Runtime(out)
    parts = embedding_parts("knn")
    parts.postprocess["arrays"] = {"bank": "nope"}
    out = export_bundle(parts, tmp_path / "c", model_type="patchcore").bundle
    with pytest.raises(ValueError, match=r"postprocess\.arrays\.bank"):
        edge_sdk.Runtime(out)


def test_non_finite_features_only_fail_their_image(tmp_path, rng):
    # NaN pixels give NaN features: the Mahalanobis kernel refuses them; that image is "review",
    # the others in the same batch are judged.
    parts = embedding_parts("mahalanobis")
    out = export_bundle(parts, tmp_path / "b", model_type="padim").bundle
    rt = edge_sdk.Runtime(out, threads=1)
    imgs = [rng.integers(0, 256, (32, 40, 3)).astype(np.float32) for _ in range(3)]
    imgs[1][5, 5, 0] = np.nan
    res = rt.predict(imgs)
    assert list(res.verdicts == "review") == [False, True, False]
    assert "post-processing failed" in res.errors[1] and res.errors[0] is None
    ref, _ = embedding_reference(parts, [imgs[0].astype(np.uint8), imgs[2].astype(np.uint8)])
    np.testing.assert_allclose(res.scores[[0, 2]], ref, rtol=1e-4)

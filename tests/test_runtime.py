"""The C++ runtime through edge_sdk.Runtime: loading, preprocessing, ONNX Runtime, the
post-processing kernels, decisions, regions, and bad input. Parity with the trained models
themselves is in tests/test_runtime_parity.py."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk
from edge_sdk import bundle as eb
from edge_sdk._native import core
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import ssim_parts, ssim_reference

pytestmark = pytest.mark.onnxruntime


@pytest.fixture(scope="module")
def ssim_bundle(tmp_path_factory):
    torch.set_num_threads(1)
    parts = ssim_parts()
    out = export_bundle(parts, tmp_path_factory.mktemp("ssim") / "b", model_type="resganad").bundle
    return out, parts


@pytest.fixture(scope="module")
def rt(ssim_bundle):
    return edge_sdk.Runtime(ssim_bundle[0], threads=1)


def test_loads_and_describes(rt):
    assert "onnxruntime" in rt.backend and "CPUExecutionProvider" in rt.backend
    assert rt.input_size == (32, 32)
    assert rt.manifest["postprocess"]["kind"] == "ssim"
    assert "Runtime(" in repr(rt)


def test_ssim_kind_matches_reference(rt, ssim_bundle, rng):
    parts = ssim_bundle[1]
    images = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(5)]
    images += [rng.integers(0, 256, (48, 40, 1), dtype=np.uint8)]  # another size: resized, map at its size
    res = rt.predict(images)
    ref_scores, ref_maps = ssim_reference(parts, images)
    np.testing.assert_allclose(res.scores, ref_scores, rtol=1e-4, atol=1e-6)
    assert isinstance(res.heatmaps, list)  # sizes differ
    for got, want in zip(res.heatmaps, ref_maps):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5)
    thr = parts.calibration["threshold"]
    expected = np.where(ref_scores >= thr, "reject", "accept")
    assert list(res.verdicts) == list(expected)
    want_norm = np.clip((ref_scores - thr) / (parts.calibration["max"] - parts.calibration["min"]) + 0.5, 0, 1)
    np.testing.assert_allclose(res.normalized, want_norm, atol=1e-5)
    assert res.errors == [None] * 6
    assert set(res.times) == {"preprocess", "host_to_device", "network", "postprocess", "device_to_host", "decision",
                              "total", "maps"}
    assert res.times["total"] >= res.times["network"] > 0
    assert res.times["postprocess"] >= res.times["maps"] > 0  # maps: the heatmap part of post-processing


def test_batch_chunks_and_float_input_agree(ssim_bundle, rng):
    # max_batch 2 with 5 images: three network calls; float32 images give the same numbers as uint8.
    rt2 = edge_sdk.Runtime(ssim_bundle[0], threads=1, max_batch=2)
    imgs = rng.integers(0, 256, (5, 32, 32), dtype=np.uint8)
    a = rt2.predict(imgs)
    b = rt2.predict(imgs.astype(np.float32))
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.heatmaps, b.heatmaps)
    assert a.heatmaps.shape == (5, 32, 32)
    single = rt2.predict(imgs[3])
    assert len(single) == 1 and single.scores[0] == a.scores[3]
    one = single[0]
    assert one.verdict in ("accept", "reject") and one.heatmap.shape == (32, 32) and one.error is None


def test_heatmaps_off(ssim_bundle, rng):
    rt2 = edge_sdk.Runtime(ssim_bundle[0], threads=1, heatmaps=False)
    res = rt2.predict(rng.integers(0, 256, (2, 32, 32), dtype=np.uint8))
    assert res.heatmaps is None and np.isfinite(res.scores).all()


def test_bad_images_are_named_and_never_accepted(rt, rng):
    good = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    f64 = good.astype(np.float64)
    with pytest.raises(ValueError, match=r"image 1: 3 channels, but the model takes single-channel"):
        rt.predict([good, rgb])
    with pytest.raises(ValueError, match=r"image 0: dtype float64 is not supported"):
        rt.predict([f64])
    res = rt.predict([good, rgb, f64, good], on_error="review")
    assert list(res.verdicts[1:3]) == ["review", "review"]
    assert res.verdicts[0] != "review" and res.verdicts[3] != "review"
    assert np.isnan(res.scores[1]) and "3 channels" in res.errors[1] and "float64" in res.errors[2]
    assert res.heatmaps[1] is None and res.heatmaps[0].shape == (32, 32)
    assert res.scores[0] == res.scores[3]
    with pytest.raises(ValueError, match=r"expected \(H, W\), \(H, W, C\)"):
        rt.predict(np.zeros((1, 2, 3, 4, 5), np.uint8))
    with pytest.raises(TypeError, match=r"images\[0\]: expected a numpy array"):
        rt.predict([[1, 2, 3]])


def test_non_finite_pixels_give_review(rt):
    img = np.full((32, 32), 100.0, np.float32)
    img[3, 4] = np.nan
    res = rt.predict([img, np.full((32, 32), 100.0, np.float32)])
    assert res.verdicts[0] == "review" and res.errors[0] is not None
    assert res.verdicts[1] != "review"


def test_size_policy_reject(tmp_path, rng):
    parts = ssim_parts()
    out = export_bundle(parts, tmp_path / "b", model_type="resganad", on_size_mismatch="reject").bundle
    rt = edge_sdk.Runtime(out, threads=1)
    rt.predict(rng.integers(0, 256, (32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"image 0: size 40x32 differs from the input size 32x32 and "
                                         r"input.on_size_mismatch is \"reject\""):
        rt.predict(rng.integers(0, 256, (40, 32), dtype=np.uint8))


def test_review_band(tmp_path, rng):
    # threshold at the median score of these images with a band: the ones near it become "review".
    parts = ssim_parts()
    imgs = rng.integers(0, 256, (8, 32, 32), dtype=np.uint8)
    scores, _ = ssim_reference(parts, list(imgs))
    # the threshold at one of the scores, so that at least that image lies in the band whatever the draw
    parts.calibration = {"threshold": float(np.sort(scores)[3]), "min": float(scores.min()), "max": float(scores.max())}
    out = export_bundle(parts, tmp_path / "b", model_type="resganad", review_band=0.2).bundle
    res = edge_sdk.Runtime(out, threads=1).predict(imgs)
    near = np.abs(res.normalized - 0.5) < 0.2
    assert near.any()
    assert (res.verdicts[near] == "review").all()
    assert (res.verdicts[~near] == np.where(res.scores[~near] >= parts.calibration["threshold"], "reject", "accept")).all()
    # verdict_codes are the C ABI's edge_verdict codes
    c_codes = {"review": 0, "accept": 1, "reject": 2}
    assert res.verdict_codes.tolist() == [c_codes[v] for v in res.verdicts]


def test_verdict_codes_are_the_c_abi_codes():
    from edge_sdk.runtime import VERDICTS

    # EDGE_VERDICT_REVIEW = 0, ACCEPT = 1, REJECT = 2 (c_api.h): zeroed memory reads as review
    assert VERDICTS == ("review", "accept", "reject")
    assert [core.verdict_name(c) for c in range(3)] == list(VERDICTS)
    assert core.verdict_name(3) == "review" and core.verdict_name(-1) == "review"


def test_regions_cut_frames_and_decide_per_region(tmp_path, rng):
    frame = {"width": 64, "height": 40}
    regions = [dict(name="left", x=0, y=0, width=30, height=40, threshold=0.1),
               dict(name="right", x=34, y=4, width=30, height=30, threshold=10.0)]
    parts = ssim_parts(regions=regions, frame=frame)
    out = export_bundle(parts, tmp_path / "b", model_type="resganad").bundle
    m = eb.validate_bundle(out)
    assert m["frame"] == frame and [r["name"] for r in m["regions"]] == ["left", "right"]
    assert "frame" not in m["postprocess"]
    rt = edge_sdk.Runtime(out, threads=1)
    assert rt.region_names == ["left", "right"]
    frames = rng.integers(0, 256, (3, 40, 64), dtype=np.uint8)
    res = rt.predict(frames)
    for i, f in enumerate(frames):
        crops = [np.ascontiguousarray(f[r["y"]:r["y"] + r["height"], r["x"]:r["x"] + r["width"]]) for r in regions]
        ref, ref_maps = ssim_reference(parts, crops)
        np.testing.assert_allclose(res.regions.scores[i], ref, rtol=1e-4)
        want = np.where(ref >= np.array([0.1, 10.0]), "reject", "accept")
        assert list(res.regions.verdicts[i]) == list(want)
        assert res.verdicts[i] == ("reject" if (want == "reject").any() else "accept")
        # heatmap: the regions' maps pasted into the frame
        heat = res.heatmaps[i]
        assert heat.shape == (40, 64)
        np.testing.assert_allclose(heat[0:40, 0:30], ref_maps[0], atol=1e-5)
        np.testing.assert_allclose(heat[4:34, 34:64], ref_maps[1], atol=1e-5)
        assert (heat[:, 30:34] == 0).all()
    # the left region (threshold 0.1) rejects every frame here; per-region results are reported
    assert (res.regions.verdicts[:, 0] == "reject").all() and (res.verdicts == "reject").all()
    assert res[0].regions["right"]["verdict"] == "accept"
    with pytest.raises(ValueError, match=r"frame of 40x60 \(height x width\), the bundle's regions are laid out on 40x64"):
        rt.predict(np.zeros((40, 60), np.uint8))


def test_precision_variant_missing_is_clear(ssim_bundle):
    with pytest.raises(ValueError, match=r"precision: the bundle has no \"fp16\" variant of network \"reconstructor\""):
        edge_sdk.Runtime(ssim_bundle[0], precision="fp16", threads=1)


def test_device_without_provider_is_clear(ssim_bundle):
    with pytest.raises(RuntimeError, match="has no CUDAExecutionProvider"):
        edge_sdk.Runtime(ssim_bundle[0], device="cuda:0", threads=1)
    with pytest.raises(ValueError, match="device"):
        edge_sdk.Runtime(ssim_bundle[0], device="gpu7", threads=1)


def test_bad_options(ssim_bundle):
    with pytest.raises(ValueError, match="max_batch"):
        edge_sdk.Runtime(ssim_bundle[0], max_batch=0)
    with pytest.raises(ValueError, match=r"max_batch: expected 1\.\.4096"):
        edge_sdk.Runtime(ssim_bundle[0], max_batch=10**9)
    with pytest.raises(ValueError, match=r"warmup: expected 0\.\.100, got 1000000"):
        edge_sdk.Runtime(ssim_bundle[0], warmup=10**6)
    # thread counts are bounded (4x the hardware threads, at most 256) instead of exhausting the machine
    with pytest.raises(ValueError, match=r"^threads: expected 0\.\.\d+ .*got 100000"):
        edge_sdk.Runtime(ssim_bundle[0], threads=100000)
    with pytest.raises(ValueError, match=r"^threads: expected 0\.\.\d+ .*got -1"):
        edge_sdk.Runtime(ssim_bundle[0], threads=-1)
    with pytest.raises(ValueError, match=r"^threads: expected 1\.\.\d+ .*got 100000"):
        edge_sdk.set_num_threads(100000)
    with pytest.raises(ValueError, match="backend"):
        edge_sdk.Runtime(ssim_bundle[0], backend="directml")
    with pytest.raises(eb.BundleError, match="no such bundle"):
        edge_sdk.Runtime(ssim_bundle[0].parent / "missing")


def test_runtime_refuses_bad_bundle(ssim_bundle, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(ssim_bundle[0], b)
    (b / "reconstructor.onnx").write_bytes(b"garbage")
    with pytest.raises(eb.BundleError, match=r"reconstructor\.onnx: \d+ bytes"):
        edge_sdk.Runtime(b)


def test_onnxruntime_info():
    info = core.onnxruntime_info("")
    assert info["version"] and "CPUExecutionProvider" in info["providers"] and info["api_version"] >= 17


def test_byte_order_shapes_and_dtypes_are_never_misread(rt, rng):
    gray = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    ref = rt.predict([gray.astype(np.float32)])
    # big-endian float32: the same pixels, the same score (not a near-black image)
    big = gray.astype(">f4")
    assert not big.dtype.isnative
    np.testing.assert_array_equal(rt.predict([big]).scores, ref.scores)
    np.testing.assert_array_equal(rt.predict(big).scores, ref.scores)
    # (H, W, 2/4/5): refused, naming the shape, instead of judged as 32 gray images
    for c in (2, 4, 5):
        with pytest.raises(ValueError, match=rf"shape \(32, 32, {c}\) is ambiguous.*{c} channels"):
            rt.predict(rng.integers(0, 256, (32, 32, c), dtype=np.uint8))
    assert len(rt.predict(rng.integers(0, 256, (3, 32, 32), dtype=np.uint8))) == 3  # a gray batch still is one
    with pytest.raises(ValueError, match="3 channels, but the model takes single-channel"):
        rt.predict(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))  # (H, W, 3): one colour image, not refused here
    # dtypes the runtime has no name for: refused with the real dtype and shape
    for bad, name in ((gray.astype(np.uint16), "uint16"), (gray.astype(np.complex64), "complex64"),
                      (gray.astype(object), "object")):
        with pytest.raises(ValueError, match=rf"image 0: dtype {name} \(shape \(32, 32\)\) is not supported"):
            rt.predict([bad])
        res = rt.predict([gray, bad, gray], on_error="review")
        assert list(res.verdicts)[1] == "review" and name in res.errors[1] and np.isnan(res.scores[1])
        assert res.errors[0] is None and res.heatmaps[1] is None and res.heatmaps[0].shape == (32, 32)
        np.testing.assert_array_equal(res.scores[[0, 2]], rt.predict([gray, gray]).scores)
    only_bad = rt.predict([gray.astype(np.uint16)], on_error="review")
    assert list(only_bad.verdicts) == ["review"] and only_bad.times["total"] == 0.0

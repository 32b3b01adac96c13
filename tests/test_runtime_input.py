"""Float images follow the bundle's input.value_range: stated ranges are mapped onto it, images
that do not fit are refused with the reason, never rescaled by guess."""

from pathlib import Path

import numpy as np
import pytest

import edge_sdk

pytestmark = pytest.mark.onnxruntime

BUNDLE = Path(__file__).resolve().parent / "data" / "gpu_fixtures" / "mahalanobis.bundle"


@pytest.fixture(scope="module")
def rt():
    if "onnxruntime" not in edge_sdk.runtime.available_backends():
        pytest.skip("no ONNX Runtime backend in this build")
    return edge_sdk.Runtime(BUNDLE, threads=1)


def test_the_bundle_states_its_range(rt):
    assert rt.manifest["input"]["value_range"] == [0.0, 255.0]


def test_float_images_in_the_bundles_range_score_like_uint8(rt, rng):
    u8 = rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    ref = rt.predict(u8).scores
    np.testing.assert_array_equal(rt.predict(u8.astype(np.float32)).scores, ref)
    np.testing.assert_array_equal(rt.predict(u8.astype(np.float32), value_range=(0, 255)).scores, ref)


def test_a_stated_range_is_mapped_onto_the_bundles(rt, rng):
    u8 = rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    ref = rt.predict(u8).scores
    unit = (u8 / 255.0).astype(np.float32)
    np.testing.assert_allclose(rt.predict(unit, value_range=(0, 1)).scores, ref, rtol=1e-5)
    signed = (u8 / 127.5 - 1.0).astype(np.float32)
    np.testing.assert_allclose(rt.predict(signed, value_range=(-1, 1)).scores, ref, rtol=1e-5)


def test_unit_range_floats_are_refused_not_guessed(rt, rng):
    unit = rng.random((32, 40, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"image 0: float values in \[.*\] look like the 0\.\.1 convention.*"
                                         r"value_range=\(0, 1\)"):
        rt.predict(unit)
    res = rt.predict([unit, (unit * 255).astype(np.uint8)], on_error="review")
    assert res.verdicts[0] == "review" and "value_range" in res.errors[0] and np.isnan(res.scores[0])
    assert res.verdicts[1] in ("accept", "reject") and res.errors[1] is None


def test_out_of_range_floats_are_refused(rt, rng):
    x = rng.random((32, 40, 3), dtype=np.float32) * 1000
    with pytest.raises(ValueError, match=r"outside the bundle's input\.value_range \[0, 255\]"):
        rt.predict(x)
    with pytest.raises(ValueError, match="value_range: expected finite"):
        rt.predict(x, value_range=(1, 1))
    with pytest.raises(ValueError, match=r"value_range: expected \(min, max\)"):
        rt.predict(x, value_range="wide")


def test_nan_pixels_still_reach_the_runtime_and_are_review(rt):
    x = np.full((32, 40, 3), 100, np.float32)
    x[0, 0, 0] = np.nan
    res = rt.predict(x)
    assert res.verdicts[0] == "review" and np.isnan(res.scores[0])

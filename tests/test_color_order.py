"""BGR input (OpenCV's order) is read in place: the preprocessing kernel and the runtime give, bit
for bit, what the RGB image with its channels reversed gives; gray images are unaffected; any other
order is refused naming color_order."""

from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk import kernels
from tests.gpu import requires_cuda

FIXTURES = Path(__file__).resolve().parent / "data" / "gpu_fixtures"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def bgr(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images[..., ::-1])


def _images(rng, dtype, shape):
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return (rng.random(shape) * 255).astype(np.float32)  # the bundles' input.value_range


# same size (the fast path), shrinking and growing, plain and antialiased resampling
SIZES = [((41, 67), False), ((16, 24), False), ((16, 24), True), ((90, 101), False), ((90, 101), True)]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("size,antialias", SIZES)
def test_preprocess_bgr_equals_the_rgb_reference(rng, dtype, size, antialias):
    rgb = _images(rng, dtype, (3, 41, 67, 3))
    kw = dict(mean=MEAN, std=STD, antialias=antialias)
    ref = kernels.preprocess(rgb, size, **kw)
    np.testing.assert_array_equal(kernels.preprocess(bgr(rgb), size, color_order="bgr", **kw), ref)
    np.testing.assert_array_equal(kernels.preprocess(rgb, size, color_order="rgb", **kw), ref)
    # and it is not a no-op: read as RGB, the BGR image is another input
    assert not np.array_equal(kernels.preprocess(bgr(rgb), size, **kw), ref)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size,antialias", SIZES)
def test_preprocess_gray_is_unaffected(rng, channels, size, antialias):
    gray = rng.integers(0, 256, (2, 41, 67, 1), dtype=np.uint8)
    kw = dict(mean=MEAN[:channels], std=STD[:channels], channels=channels, antialias=antialias)
    np.testing.assert_array_equal(kernels.preprocess(gray, size, color_order="bgr", **kw),
                                  kernels.preprocess(gray, size, **kw))


def test_preprocess_refuses_other_orders(rng):
    images = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    for bad in ("BGR", "bgra", "", "x" * 10_000):
        with pytest.raises(ValueError, match=r'color_order: expected "rgb" or "bgr", got "'):
            kernels.preprocess(images, (4, 4), mean=MEAN, std=STD, color_order=bad)
    with pytest.raises(TypeError, match="color_order: expected"):
        kernels.preprocess(images, (4, 4), mean=MEAN, std=STD, color_order=1)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("size,antialias", SIZES)
def test_preprocess_bgr_on_the_gpu(rng, dtype, size, antialias):
    rgb = _images(rng, dtype, (3, 41, 67, 3))
    kw = dict(mean=MEAN, std=STD, antialias=antialias, device="cuda:0")
    np.testing.assert_array_equal(kernels.preprocess(bgr(rgb), size, color_order="bgr", **kw),
                                  kernels.preprocess(rgb, size, **kw))


# ---- the runtime ----------------------------------------------------------------------------------

def _runtime(name: str, device: str = "cpu"):
    if "onnxruntime" not in edge_sdk.runtime.available_backends():
        pytest.skip("no ONNX Runtime backend in this build")
    # the network on ONNX Runtime's CPU provider: the pipeline's kernels run on `device`
    return edge_sdk.Runtime(FIXTURES / f"{name}.bundle", device=device, threads=1, provider="cpu")


def _assert_same(a, b):
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.normalized, b.normalized)
    np.testing.assert_array_equal(a.verdicts, b.verdicts)
    np.testing.assert_array_equal(np.stack(a.heatmaps), np.stack(b.heatmaps))


@pytest.mark.onnxruntime
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(32, 40), (57, 73)])  # the input size, and one the runtime resizes
def test_runtime_bgr_equals_the_rgb_reference(rng, dtype, shape):
    rt = _runtime("mahalanobis")
    rgb = _images(rng, dtype, (3, *shape, 3))
    ref = rt.predict(rgb)
    _assert_same(rt.predict(bgr(rgb), color_order="bgr"), ref)
    # one BGR image, and a list of them
    _assert_same(rt.predict(bgr(rgb[:1])[0], color_order="bgr"), rt.predict(rgb[0]))
    _assert_same(rt.predict(list(bgr(rgb)), color_order="bgr"), ref)
    assert not np.array_equal(rt.predict(bgr(rgb)).scores, ref.scores)


@pytest.mark.onnxruntime
def test_runtime_gray_is_unaffected(rng):
    rt = _runtime("ssim")
    gray = rng.integers(0, 256, (2, 32, 32), dtype=np.uint8)
    _assert_same(rt.predict(gray, color_order="bgr"), rt.predict(gray))


@pytest.mark.onnxruntime
def test_runtime_refuses_other_orders(rng):
    rt = _runtime("mahalanobis")
    images = rng.integers(0, 256, (2, 32, 40, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r'color_order: expected "rgb" or "bgr", got "BGR"'):
        rt.predict(images, color_order="BGR")
    # refused before any image is looked at, also when no image would reach the runtime
    with pytest.raises(ValueError, match="color_order"):
        rt.predict([np.zeros((4, 4), np.uint16)], on_error="review", color_order="hsv")
    with pytest.raises(TypeError, match="color_order"):
        rt.predict(images, color_order=None)


@requires_cuda
@pytest.mark.onnxruntime
def test_runtime_bgr_on_the_gpu(rng):
    rt = _runtime("mahalanobis", device="cuda:0")
    rgb = rng.integers(0, 256, (3, 57, 73, 3), dtype=np.uint8)
    _assert_same(rt.predict(bgr(rgb), color_order="bgr"), rt.predict(rgb))

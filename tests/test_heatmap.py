"""Heatmap kernels against independent references: torch interpolate (resize), scipy.ndimage
(blur, float64), NumPy float64 (differences and normalizations)."""

import numpy as np
import pytest

import edge_sdk
from edge_sdk import kernels

torch = pytest.importorskip("torch")
ndimage = pytest.importorskip("scipy.ndimage")


def torch_resize(x, size):
    t = torch.from_numpy(x)[:, None]
    out = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=False)
    return out[:, 0].numpy()


def scipy_blur(x, sigma):
    return np.stack([ndimage.gaussian_filter(p.astype(np.float64), sigma, mode="reflect", truncate=4.0) for p in x])


# ---- resize_bilinear -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "shape,size",
    [
        ((4, 64, 64), (256, 256)),   # anomaly map upsampling (x4)
        ((2, 256, 256), (64, 64)),   # downsampling
        ((3, 37, 53), (11, 90)),     # odd sizes, down in y and up in x
        ((2, 9, 13), (9, 40)),       # one axis unchanged
        ((2, 1, 1), (5, 7)),         # 1x1 source
        ((2, 5, 7), (1, 1)),         # 1x1 target
        ((1, 1, 17), (3, 4)),        # single row
        ((2, 31, 29), (31, 29)),     # identity
        ((1, 300, 200), (123, 77)),  # non-integer ratios
    ],
)
def test_resize_matches_torch(rng, shape, size):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    out = kernels.resize_bilinear(x, size)
    assert out.shape == (shape[0],) + size and out.dtype == np.float32
    np.testing.assert_allclose(out, torch_resize(x, size), atol=1e-6 * 3, rtol=1e-6)


def test_resize_identity_is_exact(rng):
    x = rng.random((2, 20, 30), dtype=np.float32)
    np.testing.assert_array_equal(kernels.resize_bilinear(x, (20, 30)), x)


def test_resize_constant_stays_constant(rng):
    x = np.full((1, 13, 7), 0.3, np.float32)
    np.testing.assert_allclose(kernels.resize_bilinear(x, (50, 3)), 0.3, atol=1e-7)


def test_resize_accepts_numpy_ints_and_thread_count_independent(rng):
    x = rng.random((8, 64, 64), dtype=np.float32)
    before = edge_sdk.get_num_threads()
    try:
        edge_sdk.set_num_threads(1)
        one = kernels.resize_bilinear(x, (np.int64(255), 257))
        blur_one = kernels.gaussian_blur(x[:, :61, :47].copy(), 2.7)
        edge_sdk.set_num_threads(3)
        three = kernels.resize_bilinear(x, (255, 257))
        blur_three = kernels.gaussian_blur(x[:, :61, :47].copy(), 2.7)
    finally:
        edge_sdk.set_num_threads(before)
    np.testing.assert_array_equal(one, three)
    np.testing.assert_array_equal(blur_one, blur_three)


# ---- gaussian_blur -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "shape,sigma",
    [
        ((3, 64, 64), 4.0),
        ((2, 256, 256), 4.0),
        ((2, 37, 53), 1.5),
        ((1, 40, 33), 2.3),
        ((2, 30, 30), 0.1),    # radius 0: identity
        ((1, 20, 20), 31.0),   # radius 124 >> image: repeated reflection
    ],
)
def test_blur_matches_scipy(rng, shape, sigma):
    x = rng.random(shape)
    out = kernels.gaussian_blur(x.astype(np.float32), sigma)
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_allclose(out, scipy_blur(x, sigma), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(2, 1, 1), (1, 5, 7), (1, 1, 9), (2, 17, 3), (1, 2, 40)])
def test_blur_images_smaller_than_the_radius_match_scipy(rng, shape):
    # sigma 4 -> radius 16, larger than these images: scipy reflects repeatedly, and so do we.
    x = rng.random(shape)
    np.testing.assert_allclose(kernels.gaussian_blur(x.astype(np.float32), 4.0), scipy_blur(x, 4.0), atol=1e-5)


def test_blur_default_sigma_is_4_and_large_values(rng):
    x = (rng.random((2, 48, 48)) * 1000.0).astype(np.float32)
    ref = scipy_blur(x, 4.0)
    np.testing.assert_allclose(kernels.gaussian_blur(x), ref, rtol=1e-5, atol=1e-3)


def test_blur_preserves_constant_and_mass(rng):
    c = np.full((1, 25, 25), 2.5, np.float32)
    np.testing.assert_allclose(kernels.gaussian_blur(c, 3.0), 2.5, atol=1e-5)


# ---- element-wise ------------------------------------------------------------------------------

# ---- resize_blur ---------------------------------------------------------------------------------

def torch_resize_f64(x, size):
    t = torch.from_numpy(x.astype(np.float64))[:, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


@pytest.mark.parametrize(
    "shape,size,sigma",
    [
        ((3, 32, 32), (256, 256), 4.0),   # PaDiM / PatchCore grid -> 256 x 256 map
        ((2, 16, 16), (600, 210), 4.0),   # MTD-like image sizes, other aspect
        ((2, 7, 13), (100, 333), 2.5),    # odd sizes
        ((2, 64, 64), (64, 64), 4.0),     # same size: a plain blur
        ((2, 8, 8), (5, 9), 1.0),         # output smaller than the kernel (reflected repeatedly)
        ((1, 300, 200), (40, 30), 6.0),   # strong downsampling: wide band, two-pass fallback
        ((2, 32, 32), (256, 256), 0.0),   # no blur: resize_bilinear
    ],
)
def test_resize_blur_equals_resize_then_blur_in_float64(rng, shape, size, sigma):
    x = rng.standard_normal(shape).astype(np.float32)
    got = kernels.resize_blur(x, size, sigma)
    up = torch_resize_f64(x, size)
    ref = scipy_blur(up, sigma) if sigma > 0 else up
    assert got.shape == (shape[0], *size) and got.dtype == np.float32
    # float32 sums of the resize taps and of about 8 sigma blur taps per pass, all weights positive
    # and summing to 1: the rounding error is a few tens of eps of the largest input (measured up to
    # 8.5 eps on seed 709465832, above the earlier 1e-6 = 8.4 eps bound)
    atol = 32 * np.finfo(np.float32).eps * np.abs(x).max()
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    two = kernels.resize_bilinear(x, size)
    two = kernels.gaussian_blur(two, sigma) if sigma > 0 else two
    np.testing.assert_allclose(got, two, rtol=0, atol=atol)


def test_resize_blur_thread_count_independent_and_bad_sigma(rng):
    x = rng.random((5, 32, 32), dtype=np.float32)
    before = edge_sdk.get_num_threads()
    try:
        edge_sdk.set_num_threads(1)
        one = kernels.resize_blur(x, (250, 260), 4.0)
        edge_sdk.set_num_threads(3)
        three = kernels.resize_blur(x, (250, 260), 4.0)
    finally:
        edge_sdk.set_num_threads(before)
    np.testing.assert_array_equal(one, three)
    for s in (-1.0, float("nan"), float("inf"), 40.0):
        with pytest.raises(ValueError, match="sigma"):
            kernels.resize_blur(x, (64, 64), s)
    with pytest.raises(ValueError, match="size: expected"):
        kernels.resize_blur(x, (0, 64), 4.0)
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        kernels.resize_blur(x.astype(np.float64), (64, 64), 4.0)


@pytest.mark.parametrize("shape", [(7,), (3, 17, 19), (2, 3, 4, 5), (70000,)])
def test_abs_diff(rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    out = kernels.abs_diff(a, b)
    assert out.shape == shape
    np.testing.assert_array_equal(out, np.abs(a - b))


def test_minmax_normalize(rng):
    x = (rng.standard_normal((5, 33, 21)) * 7 + 3).astype(np.float32)
    x[2] = 1.25  # constant image -> zeros
    out = kernels.minmax_normalize(x)
    x64 = x.astype(np.float64)
    lo = x64.min(axis=(1, 2), keepdims=True)
    hi = x64.max(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(hi > lo, (x64 - lo) / (hi - lo), 0.0)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert np.all(out[2] == 0) and not np.isnan(out).any()
    assert out.min() >= 0 and out.max() <= 1
    for i in (0, 1, 3, 4):
        assert out[i].min() == 0 and out[i].max() == 1


def test_minmax_large_plane_uses_whole_plane(rng):
    x = rng.random((2, 400, 400), dtype=np.float32)  # more than one chunk of 65536 per plane
    x[0, 399, 399] = 5.0
    x[1, 0, 0] = -1.0
    out = kernels.minmax_normalize(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(out[0], (x64[0] - x64[0].min()) / (5.0 - x64[0].min()), atol=1e-6)
    np.testing.assert_allclose(out[1], (x64[1] + 1.0) / (x64[1].max() + 1.0), atol=1e-6)
    assert out[0, 399, 399] == 1.0 and out[1, 0, 0] == 0.0


@pytest.mark.parametrize("shape", [(10,), (4, 30, 30), (2, 3, 8, 8)])
def test_calibrated_normalize(rng, shape):
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    t, lo, hi = 1.5, -2.0, 6.0
    out = kernels.calibrated_normalize(x, t, lo, hi)
    ref = np.clip((x.astype(np.float64) - t) / (hi - lo) + 0.5, 0, 1)
    assert out.shape == shape
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert kernels.calibrated_normalize(np.array([t], np.float32), t, lo, hi)[0] == 0.5


# ---- bad input -----------------------------------------------------------------------------------

def test_bad_inputs_name_the_argument(rng):
    x = rng.random((2, 16, 16), dtype=np.float32)
    with pytest.raises(TypeError, match="x: expected dtype float32, got float64"):
        kernels.resize_bilinear(x.astype(np.float64), (8, 8))
    with pytest.raises(TypeError, match="x: expected a numpy array"):
        kernels.gaussian_blur(x.tolist())
    with pytest.raises(ValueError, match="x: expected 3 dimensions"):
        kernels.resize_bilinear(x[0], (8, 8))
    with pytest.raises(ValueError, match="x: expected 3 dimensions"):
        kernels.minmax_normalize(x[None])
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        kernels.gaussian_blur(x.transpose(0, 2, 1))
    with pytest.raises(ValueError, match="x: empty"):
        kernels.resize_bilinear(x[:0], (8, 8))
    with pytest.raises(ValueError, match="x: empty"):
        kernels.gaussian_blur(x[:, :0])
    bad = x.copy()
    bad[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match="x: contains NaN or infinity"):
        kernels.resize_bilinear(bad, (8, 8))
    with pytest.raises(ValueError, match="x: contains NaN or infinity"):
        kernels.gaussian_blur(bad)
    with pytest.raises(ValueError, match="x: image 1 contains NaN or infinity"):
        kernels.minmax_normalize(bad)
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="x: image 1 contains NaN or infinity"):
        kernels.minmax_normalize(bad)
    with pytest.raises(ValueError, match="x: contains NaN"):
        kernels.calibrated_normalize(bad, 0.5, 0.0, 1.0)
    with pytest.raises(ValueError, match="b: contains NaN"):
        kernels.abs_diff(x, bad)
    with pytest.raises(ValueError, match="a and b: shapes differ"):
        kernels.abs_diff(x, x[:1])
    with pytest.raises(ValueError, match="size: expected positive"):
        kernels.resize_bilinear(x, (0, 8))
    with pytest.raises(TypeError, match="size: expected"):
        kernels.resize_bilinear(x, 8)
    with pytest.raises(TypeError, match="size: expected two ints"):
        kernels.resize_bilinear(x, (8.0, 8))
    with pytest.raises(ValueError, match="size: expected"):
        kernels.resize_bilinear(x, (8, 100000))
    for s in (0.0, -1.0, float("nan"), float("inf"), 40.0):
        with pytest.raises(ValueError, match="sigma"):
            kernels.gaussian_blur(x, s)
    with pytest.raises(TypeError, match="sigma"):
        kernels.gaussian_blur(x, "4")
    with pytest.raises(ValueError, match="max, min: expected max > min"):
        kernels.calibrated_normalize(x, 0.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="max, min: expected max > min"):
        kernels.calibrated_normalize(x, 0.5, 2.0, 1.0)
    with pytest.raises(ValueError, match="threshold: expected a finite"):
        kernels.calibrated_normalize(x, float("nan"), 0.0, 1.0)
    huge = np.array([[[-3e38, 3e38]]], np.float32)
    with pytest.raises(ValueError, match="x: image 0 has a value range"):
        kernels.minmax_normalize(huge)
    with pytest.raises(ValueError, match="device"):
        kernels.gaussian_blur(x, device="tpu")
    with pytest.raises(TypeError, match="device"):
        kernels.abs_diff(x, x, device=0)


def test_cuda_request_without_device_is_clear_error(rng):
    if any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        pytest.skip("a CUDA device is present; covered by the GPU parity tests")
    x = rng.random((1, 16, 16), dtype=np.float32)
    for call in (
        lambda: kernels.resize_bilinear(x, (8, 8), device="cuda:0"),
        lambda: kernels.gaussian_blur(x, device="cuda"),
        lambda: kernels.resize_blur(x, (32, 32), 4.0, device="cuda:0"),
        lambda: kernels.abs_diff(x, x, device="cuda:0"),
        lambda: kernels.minmax_normalize(x, device="cuda:0"),
        lambda: kernels.calibrated_normalize(x, 0.5, 0.0, 1.0, device="cuda:0"),
    ):
        with pytest.raises(ValueError, match="CUDA"):
            call()

"""GPU-vs-CPU parity of the kernels (CUDA twins share the per-element arithmetic, so results agree
to float32 rounding of a different summation order). Selected by `pytest -m gpu`; skipped with a
reason where no CUDA device is present (benchmarks/gpu_check runs them on a GPU machine)."""

import numpy as np
import pytest

from edge_sdk import kernels
from tests.gpu import requires_cuda

pytestmark = requires_cuda

DEV = "cuda:0"


@pytest.mark.parametrize("shape,size", [((4, 64, 64), (256, 256)), ((3, 37, 53), (11, 90)),
                                        ((2, 1, 1), (5, 7)), ((2, 256, 256), (64, 64)), ((1, 20, 30), (20, 30))])
def test_resize_parity(rng, shape, size):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    np.testing.assert_allclose(kernels.resize_bilinear(x, size, device=DEV),
                               kernels.resize_bilinear(x, size), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape,sigma", [((3, 256, 256), 4.0), ((2, 37, 53), 1.5), ((1, 5, 7), 4.0),
                                         ((2, 1, 1), 4.0), ((1, 64, 64), 31.0), ((2, 30, 30), 0.1)])
def test_blur_parity(rng, shape, sigma):
    x = rng.random(shape, dtype=np.float32)
    np.testing.assert_allclose(kernels.gaussian_blur(x, sigma, device=DEV), kernels.gaussian_blur(x, sigma),
                               atol=2e-6, rtol=1e-6)


def test_elementwise_parity(rng):
    a = rng.standard_normal((5, 33, 47)).astype(np.float32)
    b = rng.standard_normal((5, 33, 47)).astype(np.float32)
    np.testing.assert_array_equal(kernels.abs_diff(a, b, device=DEV), kernels.abs_diff(a, b))
    a[3] = 2.0  # constant image -> zeros on both
    np.testing.assert_allclose(kernels.minmax_normalize(a, device=DEV), kernels.minmax_normalize(a), atol=1e-7)
    np.testing.assert_allclose(kernels.calibrated_normalize(a, 0.3, -1.0, 2.5, device=DEV),
                               kernels.calibrated_normalize(a, 0.3, -1.0, 2.5), atol=1e-7)


def test_minmax_gpu_errors_match_cpu(rng):
    x = rng.random((3, 16, 16), dtype=np.float32)
    x[2, 4, 5] = np.nan
    with pytest.raises(ValueError, match="x: image 2 contains NaN or infinity"):
        kernels.minmax_normalize(x, device=DEV)
    x[2, 4, 5] = -np.inf
    with pytest.raises(ValueError, match="x: image 2 contains NaN or infinity"):
        kernels.minmax_normalize(x, device=DEV)


@pytest.mark.parametrize("dtype,c,channels", [(np.uint8, 3, 3), (np.uint8, 1, 3), (np.uint8, 1, 1), (np.float32, 3, 3)])
def test_preprocess_parity(rng, dtype, c, channels):
    shape = (3, 123, 97, c)
    images = rng.integers(0, 256, shape).astype(dtype)
    kw = dict(mean=[0.485, 0.456, 0.406][:channels], std=[0.229, 0.224, 0.225][:channels], channels=channels)
    np.testing.assert_allclose(kernels.preprocess(images, (224, 224), device=DEV, **kw),
                               kernels.preprocess(images, (224, 224), **kw), atol=1e-5, rtol=1e-6)
    # antialiased: shrinking (123 -> 64), enlarging (97 -> 160) and an unchanged axis
    for size in ((64, 64), (123, 160), (40, 97)):
        np.testing.assert_allclose(kernels.preprocess(images, size, antialias=True, device=DEV, **kw),
                                   kernels.preprocess(images, size, antialias=True, **kw), atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 3, 40, 33), (60, 1, 256, 256)])
def test_ssim_parity(rng, shape):
    a = rng.random(shape, dtype=np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    m_gpu, map_gpu = kernels.ssim(a, b, return_map=True, device=DEV)
    m_cpu, map_cpu = kernels.ssim(a, b, return_map=True)
    np.testing.assert_allclose(m_gpu, m_cpu, atol=1e-5)
    np.testing.assert_allclose(map_gpu, map_cpu, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(3, 16, 37, 53), (2, 5, 64, 64, 3), (1, 2, 1, 1)])
def test_frame_extremes_parity(rng, dtype, shape):
    frames = rng.integers(0, 256, shape).astype(dtype)
    lo, hi = kernels.frame_extremes(frames, device=DEV)
    np.testing.assert_array_equal(lo, frames.min(axis=1))
    np.testing.assert_array_equal(hi, frames.max(axis=1))

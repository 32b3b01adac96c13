import numpy as np
import pytest

import edge_sdk
from edge_sdk import kernels

torch = pytest.importorskip("torch")
pytorch_msssim = pytest.importorskip("pytorch_msssim")


def ref_ssim_f64(a, b, window=11, sigma=1.5, k1=0.01, k2=0.03, data_range=1.0):
    """Independent float64 reference: direct 2-D Gaussian window, valid region, population stats."""
    from scipy.signal import correlate2d

    x = np.arange(window) - window // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    w2 = np.outer(g, g)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if a.ndim == 3:
        a, b = a[:, None], b[:, None]
    out = np.zeros(a.shape[0])
    maps = []
    for i in range(a.shape[0]):
        per_c = []
        cmaps = []
        for c in range(a.shape[1]):
            f = lambda z: correlate2d(z, w2, mode="valid")
            mx, my = f(a[i, c]), f(b[i, c])
            vx = f(a[i, c] ** 2) - mx**2
            vy = f(b[i, c] ** 2) - my**2
            cxy = f(a[i, c] * b[i, c]) - mx * my
            m = ((2 * mx * my + c1) / (mx**2 + my**2 + c1)) * ((2 * cxy + c2) / (vx + vy + c2))
            per_c.append(m.mean())
            cmaps.append(m)
        out[i] = np.mean(per_c)
        maps.append(cmaps)
    return out, np.array(maps)


def pair(rng, shape, noise=0.1, dtype=np.float32):
    a = rng.random(shape).astype(dtype)
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1).astype(dtype)
    return a, b


@pytest.mark.parametrize("shape", [(1, 11, 11), (3, 37, 53), (2, 1, 64, 64), (2, 3, 40, 33), (60, 1, 64, 64)])
def test_matches_pytorch_msssim(rng, shape):
    a, b = pair(rng, shape)
    ours = kernels.ssim(a, b)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if a.ndim == 3:
        ta, tb = ta[:, None], tb[:, None]
    ref = pytorch_msssim.ssim(ta, tb, data_range=1.0, size_average=False).numpy()
    assert ours.shape == (shape[0],)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("window,sigma,data_range", [(11, 1.5, 1.0), (7, 1.0, 1.0), (5, 2.0, 255.0), (1, 1.0, 1.0)])
def test_matches_float64_reference_with_map(rng, window, sigma, data_range):
    a, b = pair(rng, (2, 2, 29, 31))
    a, b = a * data_range, b * data_range
    mean, smap = kernels.ssim(a, b, window=window, sigma=sigma, data_range=data_range, return_map=True)
    ref_mean, ref_map = ref_ssim_f64(a, b, window, sigma, data_range=data_range)
    assert smap.shape == (2, 2, 29 - window + 1, 31 - window + 1)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-5)
    np.testing.assert_allclose(smap, ref_map, atol=1e-4)


def test_map_shape_3d(rng):
    a, b = pair(rng, (4, 20, 30))
    mean, smap = kernels.ssim(a, b, return_map=True)
    assert smap.shape == (4, 10, 20)
    np.testing.assert_allclose(smap.reshape(4, -1).mean(1), mean, atol=1e-6)


def test_matches_skimage(rng):
    skm = pytest.importorskip("skimage.metrics")
    a, b = pair(rng, (1, 48, 48))
    ours = kernels.ssim(a, b)[0]
    # skimage with the same definition crops (window-1)/2 at each border: its mean is over the
    # same valid region as ours.
    _, full = skm.structural_similarity(
        a[0].astype(np.float64), b[0].astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, full=True,
    )
    assert abs(ours - full[5:-5, 5:-5].mean()) < 1e-5


def test_identical_images_give_one(rng):
    a = rng.random((3, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(kernels.ssim(a, a.copy()), 1.0, atol=1e-6)


def test_large_batch_matches_and_thread_count_independent(rng):
    a, b = pair(rng, (60, 1, 256, 256))
    before = edge_sdk.get_num_threads()
    try:
        edge_sdk.set_num_threads(1)
        one = kernels.ssim(a, b)
        edge_sdk.set_num_threads(3)
        three = kernels.ssim(a, b)
    finally:
        edge_sdk.set_num_threads(before)
    np.testing.assert_array_equal(one, three)
    ref = pytorch_msssim.ssim(torch.from_numpy(a), torch.from_numpy(b), data_range=1.0, size_average=False).numpy()
    np.testing.assert_allclose(one, ref, atol=1e-5)


def test_bad_inputs_name_the_argument(rng):
    a, b = pair(rng, (2, 16, 16))
    with pytest.raises(TypeError, match="a: expected dtype float32, got float64"):
        kernels.ssim(a.astype(np.float64), b)
    with pytest.raises(TypeError, match="b: expected a numpy array"):
        kernels.ssim(a, b.tolist())
    with pytest.raises(ValueError, match="a and b: shapes differ"):
        kernels.ssim(a, b[:1])
    with pytest.raises(ValueError, match="a: expected 3 or 4 dimensions"):
        kernels.ssim(a[0], b[0])
    with pytest.raises(ValueError, match="b: expected a C-contiguous"):
        kernels.ssim(a, np.asfortranarray(b))
    with pytest.raises(ValueError, match="a: empty"):
        kernels.ssim(a[:0], b[:0])
    bad = b.copy()
    bad[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match="b: contains NaN"):
        kernels.ssim(a, bad)
    with pytest.raises(ValueError, match="window: expected an odd size"):
        kernels.ssim(a, b, window=4)
    with pytest.raises(ValueError, match="at least window=11"):
        kernels.ssim(a[:, :8, :8].copy(), b[:, :8, :8].copy())
    with pytest.raises(ValueError, match="sigma"):
        kernels.ssim(a, b, sigma=0.0)
    with pytest.raises(ValueError, match="device"):
        kernels.ssim(a, b, device="tpu")


def test_cuda_request_without_device_is_clear_error(rng):
    if any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        pytest.skip("a CUDA device is present; covered by the GPU parity tests")
    a, b = pair(rng, (1, 16, 16))
    with pytest.raises(ValueError, match="CUDA"):
        kernels.ssim(a, b, device="cuda:0")

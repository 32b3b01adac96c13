"""preprocess against a PyTorch reference: x * scale, interpolate (bilinear, align_corners=False,
antialias=False or True), channel replication, (x - mean) / std; the antialiased resize also
against a float64 NumPy reference of the filter."""

import numpy as np
import pytest

from edge_sdk import kernels

torch = pytest.importorskip("torch")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torch_preprocess(images, size, mean, std, channels=3, scale=1 / 255, antialias=False):
    t = torch.from_numpy(images).float() * scale           # (N, H, W, C)
    t = t.permute(0, 3, 1, 2).contiguous()                 # NCHW
    t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    if channels == 3 and t.shape[1] == 1:
        t = t.repeat(1, 3, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((t - m) / s).numpy()


@pytest.mark.parametrize(
    "shape,size",
    [((2, 64, 64, 3), (224, 224)), ((3, 300, 257, 3), (256, 256)), ((1, 37, 53, 3), (11, 90)),
     ((2, 1, 1, 3), (4, 5)), ((2, 20, 20, 3), (20, 20))],
)
def test_rgb_uint8_matches_torch(rng, shape, size):
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    out = kernels.preprocess(images, size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert out.shape == (shape[0], 3) + size and out.dtype == np.float32
    np.testing.assert_allclose(out, torch_preprocess(images, size, IMAGENET_MEAN, IMAGENET_STD), atol=1e-5, rtol=1e-6)


def test_gray_replicated_to_three_channels(rng):
    images = rng.integers(0, 256, (2, 45, 61, 1), dtype=np.uint8)
    out = kernels.preprocess(images, (32, 48), mean=IMAGENET_MEAN, std=IMAGENET_STD, channels=3)
    np.testing.assert_allclose(out, torch_preprocess(images, (32, 48), IMAGENET_MEAN, IMAGENET_STD), atol=1e-5)
    # same resampled plane, different normalization per channel
    np.testing.assert_allclose(out[:, 1] * IMAGENET_STD[1] + IMAGENET_MEAN[1],
                               out[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0], atol=1e-5)


def test_gray_single_channel(rng):
    images = rng.integers(0, 256, (3, 50, 40, 1), dtype=np.uint8)
    out = kernels.preprocess(images, (25, 80), mean=[0.5], std=[0.25], channels=1)
    assert out.shape == (3, 1, 25, 80)
    np.testing.assert_allclose(out, torch_preprocess(images, (25, 80), [0.5], [0.25], channels=1), atol=1e-5)


def test_float_input_and_scale(rng):
    images = rng.random((2, 33, 29, 3), dtype=np.float32)
    out = kernels.preprocess(images, (64, 64), mean=(0.0, 0.1, 0.2), std=(1.0, 2.0, 0.5), scale=1.0)
    np.testing.assert_allclose(out, torch_preprocess(images, (64, 64), (0.0, 0.1, 0.2), (1.0, 2.0, 0.5), scale=1.0), atol=1e-5)


def test_equals_resize_bilinear_per_channel(rng):
    # preprocess resamples exactly as resize_bilinear (one implementation of the resampling).
    images = rng.integers(0, 256, (2, 70, 50, 3), dtype=np.uint8)
    out = kernels.preprocess(images, (35, 91), mean=(0, 0, 0), std=(1, 1, 1), scale=1.0)
    for c in range(3):
        plane = np.ascontiguousarray(images[..., c]).astype(np.float32)
        np.testing.assert_array_equal(out[:, c], kernels.resize_bilinear(plane, (35, 91)))


def test_bad_inputs_name_the_argument(rng):
    images = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    kw = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    with pytest.raises(TypeError, match="images: expected dtype uint8 or float32, got float64"):
        kernels.preprocess(images.astype(np.float64), (8, 8), **kw)
    with pytest.raises(TypeError, match="images: expected a numpy array"):
        kernels.preprocess(images.tolist(), (8, 8), **kw)
    with pytest.raises(ValueError, match="images: expected 4 dimensions"):
        kernels.preprocess(images[..., 0], (8, 8), **kw)
    with pytest.raises(ValueError, match="images: expected a C-contiguous"):
        kernels.preprocess(images[:, ::2], (8, 8), **kw)
    with pytest.raises(ValueError, match="images: empty"):
        kernels.preprocess(images[:0], (8, 8), **kw)
    with pytest.raises(ValueError, match="images: expected 1 or 3 channels"):
        kernels.preprocess(np.zeros((1, 8, 8, 4), np.uint8), (8, 8), **kw)
    with pytest.raises(ValueError, match="channels: 1 output channel needs single-channel"):
        kernels.preprocess(images, (8, 8), mean=[0.5], std=[0.5], channels=1)
    with pytest.raises(ValueError, match="channels: expected 1 or 3"):
        kernels.preprocess(images, (8, 8), mean=[0.5] * 2, std=[0.5] * 2, channels=2)
    with pytest.raises(ValueError, match="mean: expected 3 value"):
        kernels.preprocess(images, (8, 8), mean=[0.5], std=IMAGENET_STD)
    with pytest.raises(ValueError, match="std: entry 1 must be finite and > 0"):
        kernels.preprocess(images, (8, 8), mean=IMAGENET_MEAN, std=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="mean: entry 2 is not finite"):
        kernels.preprocess(images, (8, 8), mean=(0, 0, float("nan")), std=IMAGENET_STD)
    with pytest.raises(ValueError, match="scale"):
        kernels.preprocess(images, (8, 8), scale=0.0, **kw)
    with pytest.raises(ValueError, match="size"):
        kernels.preprocess(images, (8, -1), **kw)
    bad = images.astype(np.float32)
    bad[0, 1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="images: contains NaN"):
        kernels.preprocess(bad, (8, 8), **kw)
    with pytest.raises(TypeError, match="mean"):
        kernels.preprocess(images, (8, 8), mean="abc", std=IMAGENET_STD)


@pytest.mark.parametrize("c,channels,dtype", [(3, 3, np.uint8), (1, 3, np.uint8), (1, 1, np.uint8), (3, 3, np.float32),
                                              (1, 1, np.float32)])
def test_same_size_skips_resampling_bit_exactly(rng, c, channels, dtype):
    # At an unchanged size the resampling weights are exactly 1 and 0: the fast path must give the
    # reference's bits, for every layout it serves (RGB, gray replicated, gray, float input).
    images = rng.integers(0, 256, (3, 41, 67, c)).astype(dtype)
    mean, std = IMAGENET_MEAN[:channels], IMAGENET_STD[:channels]
    scale = 1 / 255 if dtype == np.uint8 else 0.5
    out = kernels.preprocess(images, (41, 67), mean=mean, std=std, channels=channels, scale=scale)
    ref = torch_preprocess(images, (41, 67), mean, std, channels=channels, scale=scale)
    np.testing.assert_array_equal(out, ref)


# ---- antialias=True: torch's interpolate(antialias=True) / PIL's BILINEAR -------------------------

def triangle_matrix(n_in, n_out):
    """float64 (n_out, n_in) resampling matrix of the antialiased bilinear filter, from its
    definition: output i averages the inputs whose centres lie within `support` of its centre
    under the triangle filter stretched by the scale when shrinking, weights normalized to 1."""
    scale = n_in / n_out
    support, stretch = (scale, scale) if scale >= 1 else (1.0, 1.0)
    centres = (np.arange(n_in) + 0.5)
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        c = scale * (i + 0.5)
        lo, hi = max(int(c - support + 0.5), 0), min(int(c + support + 0.5), n_in)
        w = np.clip(1 - np.abs(centres[lo:hi] - c) / stretch, 0, None)
        m[i, lo:hi] = w / w.sum()
    return m


@pytest.mark.parametrize("shape,size", [
    ((2, 300, 120, 1), (256, 256)),   # a narrow MTD tile: height shrunk, width enlarged
    ((1, 632, 403, 3), (256, 256)),   # shrunk 2.5x / 1.6x
    ((2, 37, 1000, 3), (64, 64)),     # extreme ratio
    ((2, 33, 29, 3), (64, 90)),       # enlarged both ways
    ((2, 1, 1, 3), (4, 5)),
])
def test_antialias_matches_torch_and_a_float64_reference(rng, shape, size):
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    out = kernels.preprocess(images, size, mean=IMAGENET_MEAN, std=IMAGENET_STD, antialias=True)
    assert out.shape == (shape[0], 3) + size and out.dtype == np.float32
    np.testing.assert_allclose(out, torch_preprocess(images, size, IMAGENET_MEAN, IMAGENET_STD, antialias=True), atol=1e-5)
    my, mx = triangle_matrix(shape[1], size[0]), triangle_matrix(shape[2], size[1])
    v = np.einsum("yh,nhwc,xw->ncyx", my, images.astype(np.float64) / 255, mx, optimize=True)
    if v.shape[1] == 1:
        v = np.repeat(v, 3, axis=1)
    ref = (v - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[:, None, None]
    np.testing.assert_allclose(out, ref, atol=2e-5)


def test_antialias_float_input_gray_and_single_channel(rng):
    images = rng.random((2, 90, 70, 1), dtype=np.float32)
    out = kernels.preprocess(images, (32, 48), mean=[0.5], std=[0.25], channels=1, scale=1.0, antialias=True)
    np.testing.assert_allclose(out, torch_preprocess(images, (32, 48), [0.5], [0.25], channels=1, scale=1.0, antialias=True),
                               atol=1e-5)


def test_antialias_is_the_identity_at_the_input_size(rng):
    images = rng.integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    kw = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    np.testing.assert_array_equal(kernels.preprocess(images, (40, 50), antialias=True, **kw),
                                  kernels.preprocess(images, (40, 50), **kw))
    # one axis unchanged: that axis is not resampled
    a = kernels.preprocess(images, (40, 20), antialias=True, **kw)
    np.testing.assert_allclose(a, torch_preprocess(images, (40, 20), IMAGENET_MEAN, IMAGENET_STD, antialias=True), atol=1e-5)


def test_antialias_keeps_a_thin_line_that_plain_sampling_skips():
    # A 1-pixel line in a 640-pixel-wide image shrunk to 256: plain bilinear reads 2 of every 2.5
    # columns and misses the line at some positions; the averaging resize never does.
    plain_min, aa_min = np.inf, np.inf
    for x in range(10):
        img = np.zeros((1, 64, 640, 1), np.uint8)
        img[0, :, 300 + x] = 255
        kw = dict(mean=[0.0], std=[1.0], channels=1)
        plain_min = min(plain_min, kernels.preprocess(img, (64, 256), **kw).max())
        aa_min = min(aa_min, kernels.preprocess(img, (64, 256), antialias=True, **kw).max())
    assert plain_min == 0.0
    assert aa_min > 0.15


def test_antialias_must_be_a_bool(rng):
    images = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="antialias"):
        kernels.preprocess(images, (4, 4), mean=IMAGENET_MEAN, std=IMAGENET_STD, antialias="yes")

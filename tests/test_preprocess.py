"""preprocess against a PyTorch reference: x * scale, interpolate (bilinear, align_corners=False,
antialias=False), channel replication, (x - mean) / std."""

import numpy as np
import pytest

from edge_sdk import kernels

torch = pytest.importorskip("torch")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torch_preprocess(images, size, mean, std, channels=3, scale=1 / 255):
    t = torch.from_numpy(images).float() * scale           # (N, H, W, C)
    t = t.permute(0, 3, 1, 2).contiguous()                 # NCHW
    t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=False)
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

"""Heatmap post-processing kernels: resize, blur, difference, normalizations.

The same C++ functions run inside the runtime; these wrappers only check the scalar arguments.
Arrays must be float32, C-contiguous, non-empty and finite (TypeError / ValueError naming the
argument otherwise).
"""

from __future__ import annotations

import numpy as np

from edge_sdk._native import core as _core
from edge_sdk.kernels._args import as_device, as_float, as_size


def resize_bilinear(x: np.ndarray, size, *, device: str = "cpu") -> np.ndarray:
    """Bilinear resize of each image of x (N, H, W) to size = (out_h, out_w).

    Equal to ``torch.nn.functional.interpolate(x[:, None], size, mode="bilinear",
    align_corners=False, antialias=False)[:, 0]`` (same float32 arithmetic; no antialiasing, so
    strong downsampling aliases exactly as torch does). Returns float32 (N, out_h, out_w).
    """
    out_h, out_w = as_size(size)
    return _core.resize_bilinear(x, out_h, out_w, as_device(device))


def gaussian_blur(x: np.ndarray, sigma: float = 4.0, *, device: str = "cpu") -> np.ndarray:
    """Gaussian blur of each image of x (N, H, W), same shape out.

    Equal to ``scipy.ndimage.gaussian_filter(x[i], sigma, mode="reflect", truncate=4.0)``:
    separable kernel of radius ``int(4 * sigma + 0.5)`` (size 2 * radius + 1), border reflected
    about the edge (d c b a | a b c d | d c b a). Images smaller than the radius are reflected
    repeatedly, as scipy does, so any size gives scipy's result. 0 < sigma < 32.125
    (radius at most 128).
    """
    return _core.gaussian_blur(x, as_float(sigma, "sigma"), as_device(device))


def resize_blur(x: np.ndarray, size, sigma: float = 4.0, *, device: str = "cpu") -> np.ndarray:
    """``gaussian_blur(resize_bilinear(x, size), sigma)`` computed as one operator.

    Both steps are linear and separable, so along each axis their composition is a banded matrix
    (weights computed in double): a score grid of a few dozen cells becomes a blurred image-size
    map in a few multiply-adds per pixel. Equal to the two steps up to float rounding (about 1e-7
    relative). ``sigma=0`` is ``resize_bilinear``. The heatmap path of the embedding models and
    of the runtime. Returns float32 (N, out_h, out_w).
    """
    out_h, out_w = as_size(size)
    return _core.resize_blur(x, out_h, out_w, as_float(sigma, "sigma"), as_device(device))


def abs_diff(a: np.ndarray, b: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """|a - b| element-wise for two float32 arrays of the same (any) shape."""
    return _core.abs_diff(a, b, as_device(device))


def minmax_normalize(x: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Per image of x (N, H, W): (x - min) / (max - min), in [0, 1].

    An image with max == min gives zeros (not NaN). An image holding NaN or infinity raises
    ValueError naming x and the image index.
    """
    return _core.minmax_normalize(x, as_device(device))


def calibrated_normalize(x: np.ndarray, threshold: float, min: float, max: float, *,
                         device: str = "cpu") -> np.ndarray:
    """clip((x - threshold) / (max - min) + 0.5, 0, 1) element-wise, any shape.

    threshold, min, max: the calibration of a model (raw-score threshold, min/max of the scores
    of normal images, see ``edge_sdk.calibration.normalization_stats``); 0.5 marks the threshold.
    max <= min raises ValueError. Computed in float32.
    """
    return _core.calibrated_normalize(
        x, as_float(threshold, "threshold"), as_float(min, "min"), as_float(max, "max"),
        as_device(device),
    )

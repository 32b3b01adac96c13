"""Structural similarity (SSIM) kernel."""

from __future__ import annotations

import numpy as np

from edge_sdk._native import core as _core


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
    return_map: bool = False,
    device: str = "cpu",
):
    """Mean structural similarity per image.

    a, b: float32, shape (N, H, W) or (N, C, H, W), same shape, finite.
    Gaussian window of ``window`` taps (odd) and standard deviation ``sigma``; population
    statistics; C1 = (k1 * data_range)^2, C2 = (k2 * data_range)^2 -- the definition of
    ``pytorch_msssim.ssim``.

    Padding convention: none ("valid" filtering), so the SSIM map has shape
    (N[, C], H - window + 1, W - window + 1); the per-image value is the mean of the map over
    its pixels, then over channels.

    Returns the per-image SSIM, shape (N,), float32; with ``return_map=True`` the tuple
    (ssim, map).
    """
    return _core.ssim(a, b, window, sigma, k1, k2, data_range, return_map, device)


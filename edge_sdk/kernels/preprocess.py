"""Image preprocessing kernel: the single conversion from images to network input used by
training, export and the C++ runtime."""

from __future__ import annotations

import numpy as np

from edge_sdk._native import core as _core
from edge_sdk.kernels._args import as_color_order, as_device, as_float, as_floats, as_size


def preprocess(images: np.ndarray, size, *, mean, std, channels: int = 3, scale: float = 1 / 255,
               antialias: bool = False, device: str = "cpu", color_order: str = "rgb") -> np.ndarray:
    """Images to normalized network input.

    images: (N, H, W, C) uint8 or float32 (finite), C-contiguous, HWC with C = 1 or 3 (RGB, or BGR
    with color_order="bgr").
    size: (out_h, out_w). mean, std: one value per output channel (std > 0).
    channels: 3 (a single input channel is replicated) or 1 (needs C == 1; RGB is never
    converted to gray silently).

    For each image: v = pixel * scale (float32), bilinear resize of v to size exactly as
    ``resize_bilinear`` (torch interpolate, align_corners=False, antialias=False), channel
    replication if needed, then (v - mean[c]) / std[c]. Returns float32 (N, channels, out_h, out_w).
    antialias=True resizes as torch's interpolate(antialias=True) (PIL's BILINEAR): when shrinking,
    each output averages every input pixel under a triangle filter stretched by the scale, so thin
    structures are not skipped between samples. At an unchanged size both are the identity.
    color_order="bgr" reads 3-channel images as OpenCV stores them (BGR): output channel c comes from
    input channel 2 - c, with exactly the arithmetic of the RGB image (no conversion pass, no copy);
    single-channel images read the same either way.
    """
    if not isinstance(antialias, (bool, np.bool_)):
        raise TypeError(f"antialias: expected True or False, got {antialias!r}")
    out_h, out_w = as_size(size)
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)):
        raise TypeError(f"channels: expected 1 or 3, got {channels!r}")
    return _core.preprocess(
        images, out_h, out_w, as_floats(mean, "mean"), as_floats(std, "std"), int(channels),
        as_float(scale, "scale"), as_device(device), bool(antialias), as_color_order(color_order),
    )

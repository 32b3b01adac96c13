"""Rank-filter images of an acquisition (the C++ kernel in cpp/src/kernels/rank.cpp)."""

from __future__ import annotations

import numpy as np

from edge_sdk._native import core as _core
from edge_sdk.kernels._args import as_device


def frame_extremes(frames: np.ndarray, *, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) value per pixel over the K frames of each acquisition.

    frames: (N, K, H, W) or (N, K, H, W, C), uint8 or float32 (no NaN), 2 <= K <= 1024. Returns
    two arrays of shape (N, H, W[, C]) and the input's dtype. On a vial line what moved between the
    frames (bubbles, drops) shows only in the lowest (darker) image; a defect fixed to the part
    shows in both.
    """
    return tuple(_core.frame_extremes(frames, as_device(device)))

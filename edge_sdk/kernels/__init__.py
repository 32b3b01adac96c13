"""Post-processing kernels of the runtime, callable from Python.

Each function is a thin wrapper over the C++ core (`edge_sdk._core`), the same code the C++
runtime runs, on the CPU (multi-threaded, GIL released) or on a CUDA device (``device="cuda:N"``).
Inputs must be C-contiguous arrays of the stated dtype; anything else raises TypeError or
ValueError naming the argument. Nothing is converted silently.
"""

from edge_sdk.kernels.heatmap import (
    abs_diff,
    calibrated_normalize,
    gaussian_blur,
    minmax_normalize,
    resize_bilinear,
    resize_blur,
)
from edge_sdk.kernels.knn import KnnIndex, knn
from edge_sdk.kernels.mahalanobis import local_nearest, mahalanobis, whiten
from edge_sdk.kernels.preprocess import preprocess
from edge_sdk.kernels.rank import frame_extremes
from edge_sdk.kernels.ssim import ssim

__all__ = [
    "ssim",
    "frame_extremes",
    "knn",
    "KnnIndex",
    "mahalanobis",
    "whiten",
    "local_nearest",
    "resize_bilinear",
    "resize_blur",
    "gaussian_blur",
    "abs_diff",
    "minmax_normalize",
    "calibrated_normalize",
    "preprocess",
]

"""Post-processing kernels of the runtime, callable from Python.

Each function is a thin wrapper over the C++ core (`edge_sdk._core`), the same code the C++
runtime runs, on the CPU (multi-threaded, GIL released) or on a CUDA device (``device="cuda:N"``).
Inputs must be C-contiguous arrays of the stated dtype; anything else raises TypeError or
ValueError naming the argument. Nothing is converted silently.
"""

from edge_sdk.kernels.mahalanobis import local_nearest, mahalanobis, whiten
from edge_sdk.kernels.ssim import ssim

__all__ = ["ssim", "mahalanobis", "whiten", "local_nearest"]

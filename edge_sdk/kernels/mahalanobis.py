"""Per-location Gaussian scoring kernels: Mahalanobis distance (PaDiM), whitening and the nearest
per-location centroid (MhBC-PatchCore).

Layouts: ``features`` and ``z`` are (N, L, C) -- N vectors (images) at each of L locations
(feature-map positions), C channels; ``mean`` is (L, C); ``chol`` is (L, C, C), the lower
Cholesky factor of each location's covariance (``np.linalg.cholesky(cov + eps * I)``). Only the
lower triangle of ``chol`` is read (as ``scipy.linalg.solve_triangular(..., lower=True)``).

The distance is computed by forward substitution with the Cholesky factor, never from an inverted
covariance, so ill-conditioned covariances lose no more accuracy than the factor itself carries.

Errors: a wrong dtype raises TypeError; a wrong rank, shape, layout, an empty array, NaN or
infinity in an input, a chol diagonal entry that is not finite and > 0, or a result that overflows
float32 raises ValueError naming the argument and the location.
"""

from __future__ import annotations

import numpy as np

from edge_sdk._native import core as _core


def mahalanobis(features: np.ndarray, mean: np.ndarray, chol: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Mahalanobis distance of each feature vector to its location's Gaussian.

    features: float32 (N, L, C); mean: float32 (L, C); chol: float32 (L, C, C) lower Cholesky
    factors of the covariances. All C-contiguous and finite.

    Returns float32 (N, L): ``||chol[l]^-1 (features[n, l] - mean[l])||`` (the square root of the
    quadratic form, as PaDiM's anomaly map).
    """
    return _core.mahalanobis(features, mean, chol, device)


def whiten(features: np.ndarray, mean: np.ndarray, chol: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Whitened features: ``z[n, l] = chol[l]^-1 (features[n, l] - mean[l])``.

    Same arguments as :func:`mahalanobis`; returns float32 (N, L, C). ``||z[n, l]||`` is the
    Mahalanobis distance; in whitened space Euclidean distances are Mahalanobis distances
    (MhBC-PatchCore's memory bank lives there).
    """
    return _core.whiten(features, mean, chol, device)


def local_nearest(z: np.ndarray, centroids: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Euclidean distance (not squared) of each vector to the nearest centroid of its location.

    z: float32 (N, L, C); centroids: float32 (L, K, C), K >= 1 centroids per location.
    Returns float32 (N, L): ``min_k ||z[n, l] - centroids[l, k]||``, computed from the
    differences directly (no ``|a|^2 - 2ab + |b|^2`` cancellation).
    """
    return _core.local_nearest(z, centroids, device)


def cpu_isa() -> str:
    """The CPU code path in use: "avx512", "avx2" or "generic" (EDGE_SDK_CPU_ISA forces a lower one).

    One choice per process, shared by the dispatched CPU kernels (Mahalanobis, SSIM)."""
    return _core.mahalanobis_cpu_isa()

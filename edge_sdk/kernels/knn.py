"""k-nearest-neighbour search (Euclidean): the scoring kernel of PatchCore."""

from __future__ import annotations

import numbers

import numpy as np

from edge_sdk._native import core as _core
from edge_sdk.kernels._args import as_device


def knn(queries: np.ndarray, bank: np.ndarray, k: int = 1, *, device: str = "cpu"):
    """The k nearest rows of ``bank`` to each row of ``queries``.

    queries: float32 (Q, D), finite. bank: float32 or float16 (M, D), finite; float16 halves the
    memory of a large bank and is widened to float32 for the arithmetic (distances are computed
    in float32/float64, not in half precision). 1 <= k <= M.

    Returns ``(distances, indices)``: distances (Q, k) float32, Euclidean (not squared),
    ascending along each row; indices (Q, k) int64 rows of ``bank``. The result is exact (every
    candidate is re-ranked with float64 sums of squared differences and the selection is
    certified against the float32 rounding of the fast scan); equal distances are ordered by the
    lower index. Memory is bounded: the (Q, M) distance matrix is never formed.

    On ``device="cuda:N"`` the scan sums squared differences in float32 and re-ranks
    k + 8 candidates in float64: the indices can differ from the CPU only between neighbours
    whose distances agree to about 1e-5 relative.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k: expected an int, got {type(k).__name__}")
    return _core.knn(queries, bank, int(k), as_device(device))

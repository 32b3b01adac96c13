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

    Each call prepares the bank (mean, norms, packing) anew; to search one bank repeatedly,
    build a :class:`KnnIndex` once.
    """
    return _core.knn(queries, bank, _as_k(k), as_device(device))


def _as_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k: expected an int, got {type(k).__name__}")
    return int(k)


class KnnIndex:
    """A bank prepared once for repeated :func:`knn` searches (PatchCore scoring every batch
    against the same memory bank).

    ``KnnIndex(bank)`` checks the bank (float32 or float16 (M, D), finite) as :func:`knn` does,
    keeps a private read-only copy of it (``.bank``; changing the caller's array afterwards has no
    effect) and computes once what :func:`knn` recomputes on every call: the bank mean, the norms
    and the packed panels of the CPU micro-kernel. ``search(queries, k)`` then returns exactly
    what ``knn(queries, bank, k)`` returns, bit for bit (the same code: ``knn`` is build +
    search).

    Memory: the copy of the bank plus about one float32 copy of it (the panels); ``nbytes``.
    Searches may run concurrently from several threads (the GIL is released; they share the
    kernel thread pool, so their parallel sections take turns).

    On ``device="cuda:N"`` the bank is copied to the device once and each search runs the CUDA
    kernel of :func:`knn` on it (the queries and results are copied per call); results equal
    ``knn(queries, bank, k, device="cuda:N")``.
    """

    def __init__(self, bank: np.ndarray, *, device: str = "cpu"):
        self._index = _core.KnnIndex(bank, as_device(device))

    def search(self, queries: np.ndarray, k: int = 1):
        """``(distances (Q, k) float32, indices (Q, k) int64)`` of the k nearest bank rows to
        each row of ``queries`` (float32 (Q, D), finite), as :func:`knn`."""
        return self._index.search(queries, _as_k(k))

    @property
    def rows(self) -> int:
        """M, the number of bank rows."""
        return self._index.rows

    @property
    def dim(self) -> int:
        """D, the feature dimension."""
        return self._index.dim

    @property
    def bank(self) -> np.ndarray:
        """The index's read-only copy of the bank."""
        return self._index.bank

    @property
    def isa(self) -> str:
        """Instruction set of the CPU scan: "avx512bf16" (bfloat16 dot products, chosen by `auto` where the
        bank suits it; results identical), "avx512", "avx2" or "scalar" ("cuda" on a GPU)."""
        return self._index.isa

    @property
    def device(self) -> str:
        """Where the searches run: "cpu" or "cuda:N"."""
        return self._index.device

    @property
    def nbytes(self) -> int:
        """Memory held: the bank copy, the packed panels, norms and mean."""
        return self._index.nbytes

    def __repr__(self) -> str:
        return (f"KnnIndex(rows={self.rows}, dim={self.dim}, dtype={self.bank.dtype}, "
                f"device={self.device!r}, isa={self.isa!r})")

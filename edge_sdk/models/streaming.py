"""Streaming statistics over feature batches: per-location Gaussians and per-location online k-means.

Both see the training features one batch at a time, so memory depends on the feature grid and
dimension, never on the number of training images.
"""

from __future__ import annotations

import numpy as np
import torch


class StreamingGaussian:
    """Per-location mean and covariance of (N, L, C) feature batches, accumulated in float64.

    Batches are merged with the pairwise update of Chan, Golub & LeVeque (1979): each batch
    contributes its own mean and centred scatter matrix M2 = sum (x - mean_b)(x - mean_b)^T, and
    the running sums combine as

        delta = mean_b - mean_a,  n = n_a + n_b
        mean  = mean_a + delta * n_b / n
        M2    = M2_a + M2_b + delta delta^T * n_a n_b / n

    which avoids the cancellation of E[x x^T] - mu mu^T when features have a large mean.
    """

    def __init__(self, locations: int, channels: int):
        self.locations, self.channels = int(locations), int(channels)
        self.count = 0
        self.mean = torch.zeros(self.locations, self.channels, dtype=torch.float64)
        self.m2 = torch.zeros(self.locations, self.channels, self.channels, dtype=torch.float64)

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        x = torch.as_tensor(features).to(torch.float64)
        if x.ndim != 3 or x.shape[1:] != (self.locations, self.channels):
            raise ValueError(f"features: expected (N, {self.locations}, {self.channels}), got {tuple(x.shape)}")
        nb = x.shape[0]
        if nb == 0:
            return
        mean_b = x.mean(dim=0)
        centred = (x - mean_b).permute(1, 2, 0)  # (L, C, N)
        na = self.count
        n = na + nb
        delta = mean_b - self.mean
        self.mean += delta * (nb / n)
        # in place (baddbmm_): no (L, C, C) temporary per batch
        self.m2.baddbmm_(centred, centred.transpose(1, 2))
        if na:
            self.m2.baddbmm_(delta[:, :, None], delta[:, None, :], alpha=na * nb / n)
        self.count = n

    def covariance(self, ddof: int = 1) -> torch.Tensor:
        """Sample covariance (L, C, C), float64 (unbiased with ddof=1)."""
        return self.m2 * self._cov_scale(ddof)

    def _cov_scale(self, ddof: int) -> float:
        if self.count <= ddof:
            raise ValueError(f"covariance needs more than {ddof} samples, got {self.count}")
        return 1.0 / (self.count - ddof)

    def cholesky(self, eps: float, *, dtype: torch.dtype = torch.float32, ddof: int = 1) -> torch.Tensor:
        """Lower Cholesky factor of covariance + eps * I (L, C, C) as ``dtype``, factored in float64
        block by block (no full-size float64 copy of the covariance)."""
        return regularized_cholesky(self.m2, eps, scale=self._cov_scale(ddof), dtype=dtype)


def fit_location_kmeans(batches, locations: int, channels: int, k: int) -> torch.Tensor:
    """Per-location online k-means (``OnlineKMeans``) over batches (N, L, C) in the training order
    -> centroids (L, K, C) float64.

    Across ranks (torchrun) each rank's batches hold its shard of the order (order[rank::W], see
    ``distributed.shard``). Every round gathers one batch of each rank and puts the rows back in the
    training order; each rank then runs the sequential k-means on its share of the locations (they
    are independent) and the shares are gathered at the end: the result is one process's, with the
    k-means work divided among the ranks."""
    from edge_sdk.models import distributed

    if not distributed.active():
        kmeans = OnlineKMeans(locations, channels, k)
        for z in batches:
            kmeans.update(z)
        return kmeans.result()
    w, r = distributed.world_size(), distributed.rank()
    mine = np.array_split(np.arange(locations), w)[r]
    lo, hi = (int(mine[0]), int(mine[-1]) + 1) if len(mine) else (0, 0)
    kmeans = OnlineKMeans(hi - lo, channels, k) if hi > lo else None
    starts = [0] * w  # rows of each rank's shard seen so far
    it = iter(batches)
    while True:
        z = next(it, None)
        local = (np.zeros((0, locations, channels), np.float32) if z is None
                 else np.ascontiguousarray(np.asarray(z, dtype=np.float32)))
        parts = distributed.gather_rows(local)
        if all(p.shape[0] == 0 for p in parts):
            break
        # the t-th image of rank q's shard is image t * W + q of the training order
        keys = [(starts[q] + j) * w + q for q in range(w) for j in range(parts[q].shape[0])]
        for q in range(w):
            starts[q] += parts[q].shape[0]
        if kmeans is not None:
            rows = np.concatenate(parts)[np.argsort(keys, kind="stable")]
            kmeans.update(rows[:, lo:hi])
    share = kmeans.result().numpy() if kmeans is not None else np.zeros((0, k, channels))
    return torch.from_numpy(np.concatenate(distributed.gather_rows(share)))


def fit_location_gaussians(batches, locations: int, channels: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """One pass over feature batches (N, L, C) -> per-location mean (L, C) and Cholesky factor of
    covariance + eps I (L, C, C), float32; the float64 statistics are freed before returning."""
    from edge_sdk.models import distributed

    stats = StreamingGaussian(locations, channels)
    for feats in batches:
        stats.update(feats)
    distributed.merge_gaussian(stats)  # across ranks (training with torchrun): every rank's images
    return stats.mean.to(torch.float32).numpy(), stats.cholesky(eps).numpy()


def regularized_cholesky(cov: torch.Tensor, eps: float, *, scale: float = 1.0, dtype: torch.dtype | None = None,
                         block: int = 128) -> torch.Tensor:
    """Lower Cholesky factor of scale * cov + eps * I for each location (L, C, C), computed in the
    precision of ``cov`` (float64 from ``StreamingGaussian``) and returned as ``dtype``.

    eps > 0 keeps the factor well defined when features are fewer than channels or collinear.
    Locations are factored ``block`` at a time, so the only full-size allocation is the result.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    out = torch.empty(cov.shape, dtype=dtype or cov.dtype)
    for start in range(0, cov.shape[0], block):
        reg = cov[start:start + block] * scale
        reg.diagonal(dim1=1, dim2=2).add_(eps)
        chol, info = torch.linalg.cholesky_ex(reg)
        if int(info.max()) != 0:
            bad = start + int(torch.nonzero(info)[0, 0])
            raise ValueError(f"covariance of location {bad} is not positive definite even with eps={eps}; "
                             "raise eps (the regularization)")
        out[start:start + block] = chol
    return out


class OnlineKMeans:
    """Per-location sequential k-means (MacQueen, 1967) on (N, L, C) batches.

    Each location keeps K centroids. The first K samples seen initialise them (the caller
    shuffles the data with its seed); every later sample moves its nearest centroid c by
    (z - c) / n_c, n_c being the number of samples that centroid has absorbed. Samples are taken
    one image at a time (all locations at once), which is the exact sequential algorithm.
    """

    def __init__(self, locations: int, channels: int, k: int):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.locations, self.channels, self.k = int(locations), int(channels), int(k)
        self.centroids = torch.zeros(self.locations, self.k, self.channels, dtype=torch.float64)
        self.counts = torch.zeros(self.locations, self.k, dtype=torch.float64)
        self.seen = 0

    def update(self, z: torch.Tensor | np.ndarray) -> None:
        z = torch.as_tensor(z).to(torch.float64)
        if z.ndim != 3 or z.shape[1:] != (self.locations, self.channels):
            raise ValueError(f"z: expected (N, {self.locations}, {self.channels}), got {tuple(z.shape)}")
        rows = torch.arange(self.locations)
        for sample in z:  # (L, C)
            if self.seen < self.k:
                self.centroids[:, self.seen] = sample
                self.counts[:, self.seen] = 1
            else:
                # Assignment needs the index of the nearest centroid, which the scoring kernel
                # (local_nearest: distances only) does not return; training-side only.
                d2 = ((self.centroids - sample[:, None, :]) ** 2).sum(-1)  # (L, K)
                j = d2.argmin(dim=1)
                self.counts[rows, j] += 1
                self.centroids[rows, j] += (sample - self.centroids[rows, j]) / self.counts[rows, j, None]
            self.seen += 1

    def result(self) -> torch.Tensor:
        """Centroids (L, K, C) float64. With fewer samples than K, the unused slots repeat the
        first centroid (harmless for nearest-centroid scoring)."""
        if self.seen == 0:
            raise ValueError("k-means saw no samples")
        c = self.centroids.clone()
        for j in range(min(self.seen, self.k), self.k):
            c[:, j] = c[:, 0]
        return c

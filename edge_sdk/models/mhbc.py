"""MhBC-PatchCore: per-location Mahalanobis-whitened nearest-centroid scoring.

Features as PatchCore (``PatchFeatures``: 3x3-aggregated taps at stride 8 and 16, upsampled to
stride 8, optional projection). Training makes two streaming passes over the images:

1. per-location mean mu_l and covariance S_l in float64, merged batch by batch with the stable
   update of Chan et al. (``StreamingGaussian``); L_l = cholesky(S_l + eps I);
2. the whitened features z = L_l^-1 (phi - mu_l) (``kernels.whiten``) feed a per-location online
   k-means with K centroids (``OnlineKMeans``), the location's memory.

Score of a location: distance of its whitened feature to the nearest of its K centroids
(``kernels.local_nearest``, k = 1). With K = 1 the centroid is the whitened mean (about 0), and the
score is the Mahalanobis distance of PaDiM on these features. Image score: max of the raw grid by
default. Memory: L * (C + C^2 + K * C) floats, independent of the number of training images.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from edge_sdk import kernels
from edge_sdk.models.base import EmbeddingModel, ProjectedFeatures
from edge_sdk.models.features import PatchFeatures, random_orthonormal
from edge_sdk.models.streaming import fit_location_gaussians, fit_location_kmeans
from edge_sdk.models.registry import register_model


@register_model("mhbc", family="embedding")
class MhBC(ProjectedFeatures, EmbeddingModel):
    kind = "mhbc"
    default_layers = ("stride8", "stride16")
    default_image_score = "max_raw"

    def __init__(self, *, k: int = 4, eps: float = 0.01, projection_dim: int | None = None, neighbourhood: int = 3,
                 **kw):
        super().__init__(**kw)
        if neighbourhood < 1 or neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be a positive odd number, got {neighbourhood}")
        self.neighbourhood = int(neighbourhood)
        if k < 1:
            raise ValueError(f"k (centroids per location) must be >= 1, got {k}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.k, self.eps = int(k), float(eps)
        total = sum(t.channels for t in self.backbone.taps)
        self.projection_dim = projection_dim
        self.projection = (random_orthonormal(total, int(projection_dim), self.seed)
                           if projection_dim is not None else None)
        self.mean: np.ndarray | None = None
        self.chol: np.ndarray | None = None
        self.centroids: np.ndarray | None = None

    def _build_network(self):
        return PatchFeatures(self.backbone, self.projection, self.neighbourhood)

    def _fit_passes(self, passes: Callable[[str], Iterator[torch.Tensor]], n_images: int) -> None:
        if n_images < 2:
            raise ValueError(f"MhBC needs at least 2 training images, got {n_images}")
        h, w = self.grid
        self.mean, self.chol = fit_location_gaussians(passes("mhbc 1/2: features + covariance"), h * w,
                                                      self.feature_dim, self.eps)
        whitened = (kernels.whiten(np.ascontiguousarray(feats.numpy()), self.mean, self.chol, device=self.device)
                    for feats in passes("mhbc 2/2: whitening + k-means"))
        centroids = fit_location_kmeans(whitened, h * w, self.feature_dim, self.k)
        self.centroids = centroids.to(torch.float32).contiguous().numpy()

    def is_fitted(self) -> bool:
        return self.centroids is not None

    def _patch_scores(self, feats: np.ndarray):
        z = kernels.whiten(feats, self.mean, self.chol, device=self.device)
        return kernels.local_nearest(z, self.centroids, device=self.device), None

    def _settings(self) -> dict:
        return {"k": self.k, "eps": self.eps, "projection_dim": self.projection_dim,
                "neighbourhood": self.neighbourhood}

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "chol": self.chol, "centroids": self.centroids}

    def _restore(self, arrays) -> None:
        self.mean = np.ascontiguousarray(arrays["mean"], dtype=np.float32)
        self.chol = np.ascontiguousarray(arrays["chol"], dtype=np.float32)
        self.centroids = np.ascontiguousarray(arrays["centroids"], dtype=np.float32)

    def _postprocess_extra(self) -> dict:
        return {"arrays": {"mean": "mean", "chol": "chol", "centroids": "centroids"}, "k": 1}

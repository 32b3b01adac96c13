"""PaDiM (Defard et al., 2021): a Gaussian per feature-map location, Mahalanobis distance as score.

Features: the backbone taps (stride 8 and 16 by default: 40 + 112 channels on a 32 x 32 grid at
256 x 256; the paper's stride-4 tap is available but did not help on Magnetic Tile and makes the
model four times larger) nearest-upsampled to the finest tapped grid and concatenated, then a
fixed random subset of d channels (seeded). Training streams over the images accumulating each
location's mean and covariance in float64 (``StreamingGaussian``); the model keeps the mean and the
lower Cholesky factor of cov + eps * I (eps = 0.01 by default, as in the paper's reference code).
Scores: ``kernels.mahalanobis``. Image score: by default the maximum of the blurred anomaly map
("max_blurred"), as anomalib does; "max_raw" takes the maximum of the raw location grid.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from edge_sdk import kernels
from edge_sdk.models.base import EmbeddingModel
from edge_sdk.models.features import PadimFeatures
from edge_sdk.models.streaming import fit_location_gaussians
from edge_sdk.models.registry import register_model


@register_model("padim", family="embedding")
class PaDiM(EmbeddingModel):
    kind = "mahalanobis"
    default_layers = ("stride8", "stride16")
    default_image_score = "max_blurred"

    def __init__(self, *, d: int | None = 100, eps: float = 0.01, **kw):
        super().__init__(**kw)
        total = sum(t.channels for t in self.backbone.taps)
        self.d = total if d is None else int(d)
        if not 1 <= self.d <= total:
            raise ValueError(f"d must be in 1..{total} (channels of the tapped layers), got {d}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.eps = float(eps)
        g = torch.Generator().manual_seed(self.seed)
        self.channel_index = torch.sort(torch.randperm(total, generator=g)[: self.d]).values
        self.mean: np.ndarray | None = None
        self.chol: np.ndarray | None = None

    def _build_network(self):
        return PadimFeatures(self.backbone, self.channel_index)

    def _fit_passes(self, passes: Callable[[str], Iterator[torch.Tensor]], n_images: int) -> None:
        if n_images < 2:
            raise ValueError(f"PaDiM needs at least 2 training images, got {n_images}")
        h, w = self.grid
        self.mean, self.chol = fit_location_gaussians(passes("padim: features + covariance"), h * w,
                                                      self.feature_dim, self.eps)

    def is_fitted(self) -> bool:
        return self.mean is not None and self.chol is not None

    def _patch_scores(self, feats: np.ndarray):
        return kernels.mahalanobis(feats, self.mean, self.chol, device=self.device), None

    def _settings(self) -> dict:
        return {"d": self.d, "eps": self.eps}

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "chol": self.chol}

    def _network_arrays(self) -> dict[str, np.ndarray]:
        return {"channel_index": self.channel_index.numpy().astype(np.int64)}

    def _restore_network_arrays(self, arrays) -> None:
        idx = torch.from_numpy(np.asarray(arrays["channel_index"], dtype=np.int64))
        if idx.shape != (self.d,):
            raise ValueError(f"saved channel_index has shape {tuple(idx.shape)}, expected ({self.d},)")
        self.channel_index = idx

    def _restore(self, arrays) -> None:
        self.mean = np.ascontiguousarray(arrays["mean"], dtype=np.float32)
        self.chol = np.ascontiguousarray(arrays["chol"], dtype=np.float32)

    def _postprocess_extra(self) -> dict:
        return {"arrays": {"mean": "mean", "chol": "chol"}}

"""PatchCore (Roth et al., 2022): nearest-neighbour distance to a memory bank of normal patches.

Features (``PatchFeatures``): taps at stride 8 and 16 by default, each averaged over its 3x3
neighbourhood, the coarser one bilinearly upsampled to stride 8, concatenated (40 + 112 = 152
channels for EfficientNet-Lite0), optionally projected to ``projection_dim`` by a fixed random
orthonormal matrix. Memory bank: ``coreset_ratio`` (10 % by default) of all training patches,
chosen by the streaming approximate greedy coreset (``coreset.StreamingCoreset``).

Scores: ``kernels.knn`` (k = 1) distance of each patch to the bank. Image score: the maximum raw
patch score ("max_raw", before upsampling and blur). With ``reweight=True`` it is multiplied by the
paper's weight w = 1 - softmax(d)[0] over the distances d of that patch to the ``num_neighbors``
bank entries nearest to its own nearest neighbour m* (m* first), as in anomalib.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from edge_sdk import kernels
from edge_sdk.models import distributed
from edge_sdk.models.base import EmbeddingModel, ProjectedFeatures
from edge_sdk.models.coreset import StreamingCoreset
from edge_sdk.models.features import PatchFeatures, random_orthonormal
from edge_sdk.models.registry import register_model


@register_model("patchcore", family="embedding")
class PatchCore(ProjectedFeatures, EmbeddingModel):
    kind = "knn"
    default_layers = ("stride8", "stride16")
    default_image_score = "max_raw"

    def __init__(self, *, coreset_ratio: float = 0.1, projection_dim: int | None = None,
                 coreset_chunk: int = 16384, coreset_projection_dim: int | None = 128,
                 reweight: bool = False, num_neighbors: int = 9, bank_dtype: str = "float32",
                 neighbourhood: int = 3, **kw):
        super().__init__(**kw)
        if neighbourhood < 1 or neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be a positive odd number, got {neighbourhood}")
        self.neighbourhood = int(neighbourhood)
        if not 0 < coreset_ratio <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        if num_neighbors < 1:
            raise ValueError(f"num_neighbors must be >= 1, got {num_neighbors}")
        if bank_dtype not in ("float32", "float16"):
            raise ValueError(f"bank_dtype must be 'float32' or 'float16', got {bank_dtype!r}")
        self.coreset_ratio = float(coreset_ratio)
        self.coreset_chunk = int(coreset_chunk)
        self.coreset_projection_dim = coreset_projection_dim
        self.reweight = bool(reweight)
        self.num_neighbors = int(num_neighbors)
        self.bank_dtype = bank_dtype
        total = sum(t.channels for t in self.backbone.taps)
        self.projection_dim = projection_dim
        self.projection = (random_orthonormal(total, int(projection_dim), self.seed)
                           if projection_dim is not None else None)
        self.bank: np.ndarray | None = None

    def _build_network(self):
        return PatchFeatures(self.backbone, self.projection, self.neighbourhood)

    def _fit_passes(self, passes: Callable[[str], Iterator[torch.Tensor]], n_images: int) -> None:
        # Across ranks (torchrun) each rank reduces the patches of its shard of the images with the
        # same chunk-wise rule (its own seed, distributed.rank_seed); the memory bank is the union of
        # the ranks' coresets, which keeps coreset_ratio of every chunk as one process does.
        coreset = StreamingCoreset(self.feature_dim, self.coreset_ratio, chunk_size=self.coreset_chunk,
                                   projection_dim=self.coreset_projection_dim, seed=distributed.rank_seed(self.seed))
        for feats in passes("patchcore: features + coreset"):
            coreset.add(feats.reshape(-1, feats.shape[-1]))
        local = coreset.finish().numpy() if coreset.seen else np.zeros((0, self.feature_dim), np.float32)
        parts = distributed.gather_rows(local)
        self.bank = np.concatenate(parts).astype(self.bank_dtype)
        seen = int(distributed.all_sum(torch.tensor([coreset.seen], dtype=torch.int64))[0])
        self._fit_info = {"patches_seen": seen, "bank_size": int(self.bank.shape[0])}
        if len(parts) > 1:
            self._fit_info["processes"] = len(parts)

    def is_fitted(self) -> bool:
        return self.bank is not None

    def _nearest(self, feats: np.ndarray, k: int = 1):
        q = np.ascontiguousarray(feats.reshape(-1, feats.shape[-1]))
        return kernels.knn(q, self.bank, k=k, device=self.device)

    def _patch_scores(self, feats: np.ndarray):
        dist, idx = self._nearest(feats)
        n = feats.shape[0]
        return dist[:, 0].reshape(n, -1), idx[:, 0].reshape(n, -1)

    def _raw_image_scores(self, grid: np.ndarray, feats: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        n = grid.shape[0]
        flat = grid.reshape(n, -1)
        best = flat.argmax(axis=1)
        scores = flat[np.arange(n), best].astype(np.float32)
        if not self.reweight:
            return scores
        b = min(self.num_neighbors, self.bank.shape[0])
        nn_index = nearest[np.arange(n), best]
        # Support set: the b bank entries nearest to m* (m* itself first), through the kernel.
        anchors = np.ascontiguousarray(self.bank[nn_index], dtype=np.float32)  # queries are float32
        _, support = kernels.knn(anchors, self.bank, k=b, device=self.device)
        for i in range(n):
            patch = np.ascontiguousarray(feats[i, best[i]][None].astype(np.float32))
            d, _ = kernels.knn(patch, np.ascontiguousarray(self.bank[support[i]]), k=b, device=self.device)
            d = d[0].astype(np.float64)
            # m* is the nearest bank entry to the patch, so it comes first in ascending order.
            weight = 1.0 - 1.0 / np.exp(d - d[0]).sum()
            scores[i] = np.float32(weight * scores[i])
        return scores

    def _settings(self) -> dict:
        return {"neighbourhood": self.neighbourhood, "coreset_ratio": self.coreset_ratio,
                "projection_dim": self.projection_dim, "coreset_chunk": self.coreset_chunk, "coreset_projection_dim": self.coreset_projection_dim,
                "reweight": self.reweight, "num_neighbors": self.num_neighbors, "bank_dtype": self.bank_dtype}

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank}

    def _restore(self, arrays) -> None:
        self.bank = np.ascontiguousarray(arrays["bank"]).astype(self.bank_dtype, copy=False)

    def _postprocess_extra(self) -> dict:
        return {"arrays": {"bank": "bank"}, "k": 1,
                "reweighting": {"enabled": self.reweight, "num_neighbors": self.num_neighbors}}

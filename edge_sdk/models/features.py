"""The network part of each embedding model: backbone taps -> the feature tensor the kernels consume.

These modules are what goes into ONNX. Each takes the preprocessed float32 (N, 3, H, W) tensor
and returns features (N, L, C), L = h * w locations of the finest tapped grid in row-major order,
exactly the layout of ``edge_sdk.kernels.mahalanobis`` / ``whiten`` (N, L, C) and, reshaped to
(N * L, C), of ``edge_sdk.kernels.knn`` queries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edge_sdk.models.backbone import FeatureBackbone


def _finest(feats: list[torch.Tensor]) -> int:
    return max(range(len(feats)), key=lambda i: feats[i].shape[-1] * feats[i].shape[-2])


class PadimFeatures(nn.Module):
    """PaDiM embedding: taps nearest-upsampled to the finest grid, concatenated, then a fixed
    random subset of channels (``channel_index``, int64 buffer)."""

    def __init__(self, backbone: FeatureBackbone, channel_index: torch.Tensor):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("channel_index", channel_index.to(torch.int64).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def head(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The tap outputs (in the backbone's tap order) -> features (N, L, C); apart so that taps
        computed once can feed several embeddings (edge_sdk.tune)."""
        size = feats[_finest(feats)].shape[-2:]
        feats = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="nearest") for f in feats]
        emb = torch.cat(feats, dim=1).index_select(1, self.channel_index)
        return emb.flatten(2).transpose(1, 2).contiguous()


class PatchFeatures(nn.Module):
    """PatchCore embedding: each tap averaged over its 3x3 neighbourhood (locally aware patch
    features; border windows average only the pixels inside), bilinearly upsampled to the finest
    grid (align_corners=False), concatenated, then optionally projected by a fixed matrix
    (``projection`` (C, d) buffer) to d dimensions."""

    def __init__(self, backbone: FeatureBackbone, projection: torch.Tensor | None = None, neighbourhood: int = 3):
        super().__init__()
        if neighbourhood < 1 or neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be a positive odd number, got {neighbourhood}")
        self.backbone = backbone
        self.neighbourhood = int(neighbourhood)
        if projection is not None:
            self.register_buffer("projection", projection.to(torch.float32).clone())
        else:
            self.projection = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def head(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The tap outputs (in the backbone's tap order) -> features (N, L, C) (see PadimFeatures.head)."""
        if self.neighbourhood > 1:
            p = self.neighbourhood // 2
            feats = [F.avg_pool2d(f, self.neighbourhood, stride=1, padding=p, count_include_pad=False)
                     for f in feats]
        size = feats[_finest(feats)].shape[-2:]
        feats = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                 for f in feats]
        emb = torch.cat(feats, dim=1).flatten(2).transpose(1, 2)
        if self.projection is not None:
            emb = torch.matmul(emb, self.projection)
        return emb.contiguous()


class PerImageStandardized(nn.Module):
    """``inner`` applied to each image's channels standardized to zero mean and unit variance over
    the pixels (population variance, + ``eps``). In the network, so the runtime's fixed preprocess
    (bilinear resize, mean/std) stays as it is and the exported graph does the rest; it removes the
    exposure and contrast differences between images (Magnetic Tile: image AUROC +0.03).

    With ``highpass`` (an odd window w), each pixel first loses the mean of the w x w box around it
    (border pixels: the mean of the part of the box inside the image), which also removes slow
    shading across the image (Magnetic Tile, MhBC: w = 127 on 256 x 256, +0.004 over plain
    standardization). The box mean is two 1-D average pools (separable; exports as AveragePool)."""

    def __init__(self, inner: nn.Module, eps: float = 1e-6, highpass: int | None = None):
        super().__init__()
        if highpass is not None and (highpass < 3 or highpass % 2 == 0):
            raise ValueError(f"highpass window must be an odd number >= 3, got {highpass}")
        self.inner = inner
        self.eps = float(eps)
        self.highpass = None if highpass is None else int(highpass)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.highpass is not None:
            w = self.highpass
            box = F.avg_pool2d(x, (w, 1), 1, (w // 2, 0), count_include_pad=False)
            x = x - F.avg_pool2d(box, (1, w), 1, (0, w // 2), count_include_pad=False)
        mu = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mu).pow(2).mean(dim=(2, 3), keepdim=True)
        return self.inner((x - mu) / torch.sqrt(var + self.eps))


def random_orthonormal(dim_in: int, dim_out: int, seed: int) -> torch.Tensor:
    """(dim_in, dim_out) matrix with orthonormal columns from a seeded Gaussian (QR); projecting
    onto it keeps distances approximately (Johnson-Lindenstrauss) and never stretches them."""
    if not 0 < dim_out <= dim_in:
        raise ValueError(f"projection dimension must be in 1..{dim_in}, got {dim_out}")
    g = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(dim_in, dim_out, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # unique QR: deterministic sign
    return q.to(torch.float32)

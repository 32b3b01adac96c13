"""Small networks and ExportParts-like objects for the bundle, converter and runtime tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def tiny_backbone(channels: int = 3, features: int = 8, seed: int = 0):
    """A small CNN: (N, C, H, W) -> (N, features, H/4, W/4), deterministic weights."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, features, 3, stride=2, padding=1), torch.nn.AvgPool2d(3, 1, 1),
    )
    return net.eval()


def tiny_parts(size=(32, 40), channels: int = 3, features: int = 8, kind: str = "knn", seed: int = 0,
               regions=None):
    """ExportParts-shaped namespace (see CONTRACTS.md) around tiny_backbone."""
    h, w = size
    rng = np.random.default_rng(seed)
    net = tiny_backbone(channels, features, seed)
    return SimpleNamespace(
        networks={"backbone": (net, ["image"], ["features"])},
        arrays={"memory_bank": rng.standard_normal((50, features)).astype(np.float32),
                "ids": np.arange(5, dtype=np.int64)},
        preprocess=dict(height=h, width=w, channels=channels, mean=[0.485, 0.456, 0.406][:channels] if channels == 3 else [0.5],
                        std=[0.229, 0.224, 0.225][:channels] if channels == 3 else [0.25], scale=1 / 255,
                        resize="bilinear", antialias=False),
        postprocess={"kind": kind, "feature_output": "features", "grid": [h // 4, w // 4], "k": 1,
                     "upsample": "bilinear", "blur_sigma": 4.0, "score": "max_blurred"},
        calibration={"threshold": 2.5, "min": 0.5, "max": 6.0},
        regions=regions,
    )

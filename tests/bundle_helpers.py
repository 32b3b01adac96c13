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


def tiny_autoencoder(channels: int = 1, seed: int = 0):
    """(N, C, H, W) -> (N, C, H, W) reconstruction, deterministic weights."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, channels, 3, padding=1), torch.nn.Sigmoid(),
    )
    return net.eval()


def ssim_parts(size: int = 32, channels: int = 1, blur_sigma: float = 2.0, seed: int = 0, regions=None, frame=None,
               calibration=None):
    """ExportParts of a reconstruction model, as ResGANAD exports them (postprocess kind "ssim")."""
    post = {"kind": "ssim", "network": "reconstructor", "input": "input", "reconstruction_output": "reconstruction",
            "ssim": {"window": 7, "sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0},
            "image_score": "one_minus_mean_ssim", "map": "abs_diff_channel_mean", "map_upsample": "bilinear",
            "map_size": "input", "blur_sigma": blur_sigma, "heatmap": "minmax_per_patch"}
    if frame is not None:
        post["frame"] = frame
    return SimpleNamespace(
        networks={"reconstructor": (tiny_autoencoder(channels, seed), ["input"], ["reconstruction"])},
        arrays={},
        preprocess=dict(height=size, width=size, channels=channels, mean=[0.0] * channels, std=[1.0] * channels,
                        scale=1 / 255, resize="bilinear", antialias=False),
        postprocess=post,
        calibration=calibration or {"threshold": 0.5, "min": 0.3, "max": 0.7},
        regions=regions,
    )


def ssim_reference(parts, images):
    """What a reconstruction model's predict computes (ResGANAD's recipe), with edge_sdk.kernels and
    the PyTorch network: (scores (N,), maps list at each image's size)."""
    import torch

    from edge_sdk import kernels

    pre = parts.preprocess
    post = parts.postprocess
    net = parts.networks["reconstructor"][0]
    scores, maps = [], []
    for img in images:
        img = img if img.ndim == 3 else img[..., None]
        x = kernels.preprocess(np.ascontiguousarray(img[None]), (pre["height"], pre["width"]), mean=pre["mean"],
                               std=pre["std"], channels=pre["channels"], scale=pre["scale"])
        with torch.no_grad():
            x_hat = np.ascontiguousarray(net(torch.from_numpy(x)).numpy())
        scores.append(1.0 - kernels.ssim(x, x_hat, **post["ssim"])[0])
        diff = kernels.abs_diff(x, x_hat).mean(axis=1, dtype=np.float32)
        m = kernels.resize_bilinear(np.ascontiguousarray(diff), img.shape[:2])
        if post["blur_sigma"] > 0:
            m = kernels.gaussian_blur(m, post["blur_sigma"])
        maps.append(m[0])
    return np.asarray(scores, np.float32), maps

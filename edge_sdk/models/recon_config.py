"""Settings of the reconstruction models (ResGANAD, GRD-Net): the architecture, losses,
optimization, augmentation and scoring fields, and the two presets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass
class ReconConfig:
    # architecture ("resnetv2" is the default of a saved config without the field; presets use "abc")
    arch: str = "resnetv2"
    top: int = 1024
    size: int = 64
    channels: int = 1
    filters: int = 4
    stages: int = 4
    blocks: int = 1
    latent: int = 64
    bottleneck: str = "dense"
    disc_filters: int = 8
    # losses
    w_adv: float = 1.0
    w_con: float = 50.0
    w_enc: float = 1.0
    w_noise: float = 3.0
    w_huber: float = 2.0
    w_ssim: float = 1.0
    huber_delta: float = 1.0
    # optimization
    lr: float = 1.5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 32
    epochs: int = 40
    cycle_epochs: int = 10
    restart_decay: float = 1.0 / 3.0
    # augmentation
    perlin_probability: float = 0.75
    perlin_scale_range: tuple = (0, 6)
    perlin_octaves: int = 1
    perlin_threshold: float = 0.5
    perlin_beta: tuple = (0.5, 1.0)
    rotation: float = math.pi / 8
    vflip: float = 0.5
    # scoring (SSIM exactly as the kernel / runtime)
    ssim_window: int = 11
    ssim_sigma: float = 1.5
    ssim_k1: float = 0.01
    ssim_k2: float = 0.03
    blur_sigma: float = 0.0
    # GRD-Net only (ignored by ResGANAD)
    unet_filters: int = 8
    unet_depth: int = 3
    focal_gamma: float = 2.0
    w_focal: float = 1.0
    mask_blur_sigma: float = 4.0

    def validate(self) -> "ReconConfig":
        if self.channels not in (1, 3):
            raise ValueError(f"channels: expected 1 or 3, got {self.channels}")
        for name in ("size", "filters", "stages", "blocks", "latent", "disc_filters", "batch_size", "epochs",
                     "cycle_epochs", "unet_filters", "unet_depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if self.arch not in ("abc", "resnetv2"):
            raise ValueError(f"arch: expected 'abc' or 'resnetv2', got {self.arch!r}")
        if self.arch == "abc" and self.bottleneck != "dense":
            raise ValueError(f"bottleneck: the abc architecture has a dense bottleneck, got {self.bottleneck!r}")
        if not 1 <= int(self.top) <= 65536:
            raise ValueError(f"top: expected 1..65536 channels, got {self.top}")
        if self.bottleneck not in ("dense", "conv"):
            raise ValueError(f"bottleneck: expected 'dense' or 'conv', got {self.bottleneck!r}")
        if self.size < self.ssim_window:
            raise ValueError(f"size: {self.size} is smaller than ssim_window={self.ssim_window}")
        if not 0 <= self.perlin_probability <= 1 or not 0 <= self.vflip <= 1:
            raise ValueError("perlin_probability and vflip: expected probabilities in [0, 1]")
        if not 0 <= self.rotation <= math.pi / 2:
            raise ValueError(f"rotation: expected 0..pi/2 (larger rotations are defects on this product), got {self.rotation}")
        if self.blur_sigma < 0 or self.mask_blur_sigma < 0:
            raise ValueError("blur_sigma, mask_blur_sigma: expected >= 0")
        return self

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# "full" is the published configuration (GPU): the A/B/C network ("abc", recon_abc.py), 256 x 256
# input, 16 x 16 x 1024 before the dense bottleneck. 2 filters put it at 0.71 GFLOP and 61 MiB of
# activations a patch, which is what the published 0.17 ms a patch on the RTX A4500 allows
# (benchmarks/gpu_estimate.py: 0.173 ms a patch at batch 60; 3 filters: 0.24 ms; 4 filters: 0.30 ms).
# "small" trains in minutes on 2 CPU cores: 64 x 64 input and a larger learning rate (1e-3: at
# 1.5e-4 the generator and the U-Net are far from converged after the few epochs a CPU affords). It
# keeps the ResNet-V2 encoder: at this budget it beat the A/B/C network on the synthetic vial strips
# (patch AUROC 0.811 vs 0.710 / 0.738 with 2 / 4 filters; docs/RESULTS.md).
PRESETS = {
    "small": dict(arch="resnetv2", size=64, filters=4, blocks=1, disc_filters=8, unet_filters=8, unet_depth=3,
                  epochs=20, cycle_epochs=10, lr=1e-3),
    "full": dict(arch="abc", size=256, filters=2, top=1024, disc_filters=64, unet_filters=64, unet_depth=4,
                 epochs=300, cycle_epochs=50, lr=1.5e-4),
}


def make_config(preset: str = "small", **overrides) -> ReconConfig:
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    known = {f.name for f in fields(ReconConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    return ReconConfig(**{**PRESETS[preset], **overrides}).validate()

"""Training pieces shared by ResGANAD and GRD-Net: the learning-rate schedule, the augmentation of
good patches, and the losses that are not plain torch ones."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from edge_sdk.synthesis.perlin import perlin_batch


def restart_factor(step: int, cycle: int, decay: float) -> float:
    """Cosine decay with warm restarts: within restart k (cycles of `cycle` steps) the learning rate
    goes from decay^k times the base rate down to 0 along half a cosine (each restart peaks at
    `decay` times the previous peak; 1/3 for ResGANAD)."""
    k, t = divmod(step, max(1, cycle))
    return (decay**k) * 0.5 * (1.0 + math.cos(math.pi * t / max(1, cycle)))


def augment_geometry(x: torch.Tensor, gen: torch.Generator, max_angle: float, vflip: float) -> torch.Tensor:
    """Random rotation in [-max_angle, max_angle] (bilinear, border padding) and vertical flip
    (upside down) with probability `vflip`. Never a horizontal flip, never beyond +-pi/2: on the
    vial line those look like defects."""
    n = x.shape[0]
    if max_angle > 0:
        ang = (torch.rand(n, generator=gen) * 2.0 - 1.0) * max_angle
        c, s = torch.cos(ang), torch.sin(ang)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = c, -s, s, c
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if vflip > 0:
        flip = (torch.rand(n, generator=gen) < vflip).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-2), x)
    return x


def perlin_perturb(x: torch.Tensor, rng: np.random.Generator, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """X* and the mask M of Perlin anomalies applied with probability cfg.perlin_probability."""
    xs, m = perlin_batch(x.detach().cpu().numpy(), rng, probability=cfg.perlin_probability,
                         scale_range=tuple(cfg.perlin_scale_range), octaves=cfg.perlin_octaves,
                         threshold=cfg.perlin_threshold, beta_range=tuple(cfg.perlin_beta))
    return torch.from_numpy(xs).to(x), torch.from_numpy(m).to(x)


def masked_l2(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Noise loss: mean squared error over the perturbed pixels only (0 when nothing was perturbed)."""
    m = mask.expand_as(x)
    return ((x_hat - x) ** 2 * m).sum() / m.sum().clamp_min(1.0)


def focal_loss(prob: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, eps: float = 1e-6) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) of predicted probabilities against a binary mask, pixel mean."""
    p = prob.clamp(eps, 1.0 - eps)
    pt = torch.where(target > 0.5, p, 1.0 - p)
    return (-((1.0 - pt) ** gamma) * torch.log(pt)).mean()

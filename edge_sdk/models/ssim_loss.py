"""Differentiable SSIM for training, with exactly the definition of the SSIM kernel
(`edge_sdk.kernels.ssim`): Gaussian window (taps computed in float64 then cast, normalized),
separable "valid" filtering (no padding), population statistics, C1 = (k1 * L)^2,
C2 = (k2 * L)^2, per-image value = mean of the map over pixels then channels.

Training with the same definition the runtime scores with is what lets a threshold chosen on
PyTorch scores transfer to the deployed bundle unchanged; tests/test_recon_ssim.py checks the two
agree to 1e-5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_taps", "ssim", "ssim_map", "SSIMLoss"]


def gaussian_taps(window: int, sigma: float) -> torch.Tensor:
    """1-D Gaussian taps at offsets i - window//2, computed in float64 and normalized (as the
    kernel's `gaussian_taps`), returned as float64."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window: expected an odd size >= 1, got {window}")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma: expected a positive finite value, got {sigma}")
    x = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable valid filtering of every channel of x (N, C, H, W)."""
    c = x.shape[1]
    w = taps.to(dtype=x.dtype, device=x.device)
    wv = w.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    wh = w.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    return F.conv2d(F.conv2d(x, wv, groups=c), wh, groups=c)


def ssim_map(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
) -> torch.Tensor:
    """SSIM map (N, C, H - window + 1, W - window + 1) of a, b (N, C, H, W) or (N, H, W)."""
    if a.shape != b.shape:
        raise ValueError(f"a and b: shapes differ ({tuple(a.shape)} vs {tuple(b.shape)})")
    if a.dim() == 3:
        a, b = a.unsqueeze(1), b.unsqueeze(1)
    if a.dim() != 4:
        raise ValueError(f"a: expected 3 or 4 dimensions (N[,C],H,W), got {a.dim()}")
    if a.shape[-1] < window or a.shape[-2] < window:
        raise ValueError(f"a: images of {a.shape[-2]}x{a.shape[-1]} are smaller than window={window}")
    taps = gaussian_taps(window, sigma)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    mx, my = _filter(a, taps), _filter(b, taps)
    exx, eyy, exy = _filter(a * a, taps), _filter(b * b, taps), _filter(a * b, taps)
    vx = exx - mx * mx
    vy = eyy - my * my
    cxy = exy - mx * my
    cs = (2.0 * cxy + c2) / (vx + vy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return lum * cs


def ssim(a: torch.Tensor, b: torch.Tensor, **kwargs) -> torch.Tensor:
    """Per-image SSIM (N,): mean of the map over pixels, then over channels."""
    return ssim_map(a, b, **kwargs).mean(dim=(-1, -2)).mean(dim=1)


class SSIMLoss(torch.nn.Module):
    """1 - mean SSIM over the batch (the patch score averaged), for the contextual loss."""

    def __init__(self, window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
                 data_range: float = 1.0):
        super().__init__()
        gaussian_taps(window, sigma)  # validates now rather than at the first batch
        self.params = dict(window=window, sigma=sigma, k1=k1, k2=k2, data_range=data_range)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim(a, b, **self.params).mean()

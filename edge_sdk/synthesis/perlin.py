"""Perlin-noise anomalies in the style of DRAEM (Zavrtanik et al., ICCV 2021), as used to train
ResGANAD and GRD-Net on good images only.

A fractal Perlin field is thresholded into a blob-shaped mask M; inside M the image is blended
with a noise texture: X* = (1 - M) X + (1 - beta) M X + beta N, beta ~ U(beta_range), where the
returned ``noise`` N is the texture already restricted to M (zero outside), so the formula holds
exactly with the three returned arrays.

Parameters (all documented defaults follow DRAEM):
- ``scale_range=(0, 6)``: the lattice resolution along each axis is 2**e with e drawn uniformly
  from the integers in [scale_range[0], scale_range[1]) -- small e gives large blobs, large e
  small ones; the two axes are drawn independently (elongated blobs).
- ``octaves=1``: number of fractal octaves; octave o has twice the frequency of octave o-1 and
  ``persistence`` (0.5) times its amplitude.
- ``threshold=0.5``: M = noise > threshold (the field lies roughly in [-1, 1]).
- ``rotate=True``: the lattice is rotated by a random angle, so blobs are not axis-aligned.
- Deterministic: everything is drawn from the given ``numpy.random.Generator`` (or seed).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["PerlinAnomaly", "perlin_noise", "perlin_mask", "perlin_anomaly", "perlin_batch"]


class PerlinAnomaly(NamedTuple):
    image: np.ndarray  # perturbed image X*, same shape and dtype float32 as the input
    mask: np.ndarray  # (H, W) float32 in {0, 1}
    noise: np.ndarray  # texture restricted to the mask, same shape as image (zero outside M)
    beta: float  # blend factor used (0 when the mask is empty)


def _rng(seed_or_rng) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _perlin_octave(shape: tuple[int, int], res: tuple[float, float], angle: float, rng) -> np.ndarray:
    """One octave of gradient noise sampled at pixel centres, `res` lattice cells per image side."""
    h, w = shape
    ys = (np.arange(h) + 0.5) / h * res[0]
    xs = (np.arange(w) + 0.5) / w * res[1]
    yy, xx = np.meshgrid(ys - res[0] / 2, xs - res[1] / 2, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    u = c * yy - s * xx
    v = s * yy + c * xx
    u -= u.min()
    v -= v.min()
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - iu, v - iv
    theta = rng.random((int(iu.max()) + 2, int(iv.max()) + 2)) * 2.0 * math.pi
    gu, gv = np.cos(theta), np.sin(theta)

    def corner(du: int, dv: int) -> np.ndarray:
        a, b = iu + du, iv + dv
        return gu[a, b] * (fu - du) + gv[a, b] * (fv - dv)

    tu, tv = _fade(fu), _fade(fv)
    n0 = corner(0, 0) * (1 - tu) + corner(1, 0) * tu
    n1 = corner(0, 1) * (1 - tu) + corner(1, 1) * tu
    return math.sqrt(2.0) * (n0 * (1 - tv) + n1 * tv)


def perlin_noise(shape: tuple[int, int], seed_or_rng=None, *, scale_range=(0, 6), octaves: int = 1,
                 persistence: float = 0.5, rotate: bool = True) -> np.ndarray:
    """Fractal Perlin field of `shape` (H, W), float32, roughly in [-1, 1] (see module doc)."""
    rng = _rng(seed_or_rng)
    lo, hi = int(scale_range[0]), int(scale_range[1])
    if not (0 <= lo < hi):
        raise ValueError(f"scale_range: expected integers 0 <= low < high, got {scale_range}")
    if octaves < 1:
        raise ValueError(f"octaves: expected >= 1, got {octaves}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape: expected (H, W) with H, W >= 1, got {shape}")
    res = (2.0 ** rng.integers(lo, hi), 2.0 ** rng.integers(lo, hi))
    angle = float(rng.uniform(-math.pi / 2, math.pi / 2)) if rotate else 0.0
    total = np.zeros(shape, np.float64)
    amp = 1.0
    for o in range(octaves):
        total += amp * _perlin_octave(shape, (res[0] * 2**o, res[1] * 2**o), angle, rng)
        amp *= persistence
    return total.astype(np.float32)


def perlin_mask(shape: tuple[int, int], seed_or_rng=None, *, threshold: float = 0.5, min_area: int = 1,
                max_tries: int = 10, **noise_kwargs) -> np.ndarray:
    """Binary blob mask (H, W) float32: a Perlin field above `threshold`. Redrawn up to
    `max_tries` times until it covers at least `min_area` pixels (may stay smaller after that)."""
    rng = _rng(seed_or_rng)
    mask = np.zeros(shape, np.float32)
    for _ in range(max(1, max_tries)):
        mask = (perlin_noise(shape, rng, **noise_kwargs) > threshold).astype(np.float32)
        if mask.sum() >= min_area:
            break
    return mask


def perlin_anomaly(image: np.ndarray, seed_or_rng=None, *, threshold: float = 0.5,
                   beta_range=(0.5, 1.0), source: np.ndarray | None = None, min_area: int = 1,
                   max_tries: int = 10, **noise_kwargs) -> PerlinAnomaly:
    """Perturb `image` ((H, W) or (C, H, W), float in [0, 1]) with one Perlin anomaly.

    `source`: texture blended into the mask (same shape as image); by default an independent
    fractal Perlin field rescaled to [0, 1]. Returns PerlinAnomaly(image, mask, noise, beta)."""
    rng = _rng(seed_or_rng)
    x = np.asarray(image, dtype=np.float32)
    if x.ndim not in (2, 3):
        raise ValueError(f"image: expected (H, W) or (C, H, W), got shape {x.shape}")
    lo, hi = float(beta_range[0]), float(beta_range[1])
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"beta_range: expected 0 <= low <= high <= 1, got {beta_range}")
    hw = x.shape[-2:]
    mask = perlin_mask(hw, rng, threshold=threshold, min_area=min_area, max_tries=max_tries, **noise_kwargs)
    if source is None:
        tex = perlin_noise(hw, rng, **noise_kwargs)
        tex = (tex - tex.min()) / max(float(tex.max() - tex.min()), 1e-6)
        tex = np.broadcast_to(tex, x.shape)
    else:
        tex = np.asarray(source, dtype=np.float32)
        if tex.shape != x.shape:
            raise ValueError(f"source: expected shape {x.shape} (as image), got {tex.shape}")
    beta = float(rng.uniform(lo, hi)) if mask.any() else 0.0
    noise = (tex * mask).astype(np.float32)
    perturbed = (1.0 - mask) * x + (1.0 - beta) * mask * x + beta * noise
    return PerlinAnomaly(perturbed.astype(np.float32), mask, noise, beta)


def perlin_batch(images: np.ndarray, seed_or_rng=None, *, probability: float = 0.75, **kwargs):
    """Perturb each image of a batch (N, C, H, W) with probability `probability`.

    Returns (perturbed (N, C, H, W) float32, masks (N, 1, H, W) float32); untouched images keep
    an all-zero mask."""
    rng = _rng(seed_or_rng)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"images: expected (N, C, H, W), got shape {x.shape}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability: expected a value in [0, 1], got {probability}")
    out = x.copy()
    masks = np.zeros((x.shape[0], 1) + x.shape[2:], np.float32)
    for i in range(x.shape[0]):
        if rng.random() < probability:
            a = perlin_anomaly(x[i], rng, **kwargs)
            out[i], masks[i, 0] = a.image, a.mask
    return out, masks

"""CutPaste anomalies (Li et al., CVPR 2021): a rectangle cut from one place of a good image and
pasted at another, with a small brightness change. Unlike a Perlin blob (a foreign texture in a
smooth-edged region) it is the part's own texture out of place with a straight edge: a structurally
different test of a model, used beside Perlin anomalies so that a choice made on synthetic anomalies
does not fit one kind.

Patch area: ``area_range`` (default 2-15 %) of the image, aspect ratio log-uniform in
``aspect_range`` (0.3-3.3), both as in the paper; brightness scaled by 1 +- ``jitter`` (0.1).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["cutpaste"]


def _as_hwc(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3) or min(x.shape[:2]) < 4:
        raise ValueError(f"image: expected (H, W) or (H, W, C) with C in (1, 3) and H, W >= 4, got shape "
                         f"{np.shape(image)}")
    return x


def cutpaste(image: np.ndarray, seed_or_rng=None, *, area_range=(0.02, 0.15), aspect_range=(0.3, 3.3),
             jitter: float = 0.1):
    """One CutPaste anomaly in ``image`` ((H, W) or (H, W, C), uint8 or float).

    Returns (image of the input's dtype and shape, mask (H, W) uint8 in {0, 1}: where the patch was
    pasted)."""
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
    lo, hi = float(area_range[0]), float(area_range[1])
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"area_range: expected 0 < low <= high < 1, got {area_range}")
    alo, ahi = float(aspect_range[0]), float(aspect_range[1])
    if not 0.0 < alo <= ahi:
        raise ValueError(f"aspect_range: expected 0 < low <= high, got {aspect_range}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter: expected a value in [0, 1), got {jitter}")
    src_dtype, src_shape = np.asarray(image).dtype, np.shape(image)
    x = _as_hwc(image).astype(np.float32)
    h, w = x.shape[:2]
    area = rng.uniform(lo, hi) * h * w
    aspect = math.exp(rng.uniform(math.log(alo), math.log(ahi)))
    ph = int(np.clip(round(math.sqrt(area * aspect)), 2, h - 1))
    pw = int(np.clip(round(math.sqrt(area / aspect)), 2, w - 1))
    sy, sx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    # the paste position differs from the cut one by at least half the patch along one axis, so
    # the patch is never pasted (almost) back where it came from
    for _ in range(20):
        ty, tx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        if abs(ty - sy) >= ph // 2 or abs(tx - sx) >= pw // 2:
            break
    scale = 1.0 + float(rng.uniform(-jitter, jitter)) if jitter > 0 else 1.0
    out = x.copy()
    out[ty:ty + ph, tx:tx + pw] = x[sy:sy + ph, sx:sx + pw] * scale
    mask = np.zeros((h, w), np.uint8)
    mask[ty:ty + ph, tx:tx + pw] = 1
    if np.issubdtype(src_dtype, np.integer):
        info = np.iinfo(src_dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(src_dtype).reshape(src_shape), mask

"""Thin scratches: a curved line a few pixels wide, darker or brighter than the part. Cracks and
scratches are the defects a resize most easily loses and a Perlin blob never resembles, so they
test what blobs cannot (thin structures, antialiasing, fine taps).

The line is a quadratic Bezier curve between two random points whose length is ``length_range``
(default 20-60 %) of the image's shorter side; its width is ``width_range`` (0.4-1.2 %) of that
side, at least 1 pixel; the intensity changes by ``contrast_range`` (25-60 of 255 for uint8
images, the same share of the range otherwise) in one direction, fading over one pixel at the edge.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["scratch"]


def scratch(image: np.ndarray, seed_or_rng=None, *, length_range=(0.2, 0.6), width_range=(0.004, 0.012),
            contrast_range=(0.1, 0.24)):
    """One thin scratch in ``image`` ((H, W) or (H, W, C), uint8 or float in [0, 1]).

    Returns (image of the input's dtype and shape, mask (H, W) uint8 in {0, 1}: the line's
    footprint)."""
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
    for name, (lo, hi), top in (("length_range", length_range, 2.0), ("width_range", width_range, 0.5),
                                ("contrast_range", contrast_range, 1.0)):
        if not 0.0 < float(lo) <= float(hi) <= top:
            raise ValueError(f"{name}: expected 0 < low <= high <= {top}, got {(lo, hi)}")
    x = np.asarray(image)
    src_dtype, src_shape = x.dtype, x.shape
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3) or min(x.shape[:2]) < 8:
        raise ValueError(f"image: expected (H, W) or (H, W, C) with C in (1, 3) and H, W >= 8, got shape {src_shape}")
    h, w = x.shape[:2]
    side = min(h, w)
    length = rng.uniform(*length_range) * side
    angle = rng.uniform(0.0, math.pi)
    cy, cx = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w)
    dy, dx = 0.5 * length * math.sin(angle), 0.5 * length * math.cos(angle)
    bend = rng.uniform(-0.25, 0.25) * length  # control point off the chord: a gently curved line
    p0, p2 = np.array([cy - dy, cx - dx]), np.array([cy + dy, cx + dx])
    p1 = (p0 + p2) / 2 + bend * np.array([math.cos(angle), -math.sin(angle)])
    t = np.linspace(0.0, 1.0, max(8, int(length)))[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
    width = max(1, int(round(rng.uniform(*width_range) * side)))
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).line([(float(px), float(py)) for py, px in pts], fill=255, width=width, joint="curve")
    mask = (np.asarray(canvas) > 0).astype(np.uint8)
    alpha = np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.6)), np.float32)[:, :, None] / 255.0
    full = 255.0 if np.issubdtype(src_dtype, np.integer) else 1.0
    delta = float(rng.uniform(*contrast_range)) * full * (1.0 if rng.random() < 0.5 else -1.0)
    out = x.astype(np.float32) + alpha * delta
    if np.issubdtype(src_dtype, np.integer):
        info = np.iinfo(src_dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    else:
        out = np.clip(out, 0.0, 1.0)
    return out.astype(src_dtype).reshape(src_shape), mask

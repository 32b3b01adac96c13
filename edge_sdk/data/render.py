"""Rasterization helpers for the synthetic generator: smooth noise, anti-aliased polylines and blobs.

Every shape is returned as a coverage map ``alpha`` in [0, 1] (1 = pixel fully covered) so that the
rendering and the defect mask come from the same geometry."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish variance noise varying over about ``cells`` periods per side (bicubic
    upsampling of a coarse random grid)."""
    g = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = np.asarray(Image.fromarray(g).resize((w + 2 * w // cells + 2, h + 2 * h // cells + 2),
                                                          Image.BICUBIC), dtype=np.float32)
    oy, ox = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    out = big[oy:oy + h, ox:ox + w]
    return (out - out.mean()) / (out.std() + 1e-6)


def blurred_points(rng: np.random.Generator, h: int, w: int, count: int, sigma: float) -> np.ndarray:
    """Grain: ``count`` signed impulses blurred by ``sigma`` pixels, scaled to unit peak."""
    img = np.zeros((h, w), np.float32)
    ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
    np.add.at(img, (ys, xs), rng.choice([-1.0, 1.0], count).astype(np.float32) * rng.uniform(0.4, 1.0, count))
    img = ndimage.gaussian_filter(img, sigma, mode="wrap")
    return img / (np.abs(img).max() + 1e-6)


def polyline_coverage(points: np.ndarray, half_width: float, h: int, w: int) -> np.ndarray:
    """Coverage of a stroke of ``half_width`` pixels along the polyline ``points`` (K, 2) as (x, y)."""
    alpha = np.zeros((h, w), np.float32)
    pad = half_width + 2
    x0 = int(max(0, np.floor(points[:, 0].min() - pad)))
    x1 = int(min(w, np.ceil(points[:, 0].max() + pad) + 1))
    y0 = int(max(0, np.floor(points[:, 1].min() - pad)))
    y1 = int(min(h, np.ceil(points[:, 1].max() + pad) + 1))
    if x1 <= x0 or y1 <= y0:
        return alpha
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    px, py = xx + 0.5, yy + 0.5  # pixel centres
    best = np.full(px.shape, np.inf, np.float32)
    for (ax, ay), (bx, by) in zip(points[:-1], points[1:]):
        dx, dy = bx - ax, by - ay
        L2 = dx * dx + dy * dy
        t = np.zeros_like(px) if L2 == 0 else np.clip(((px - ax) * dx + (py - ay) * dy) / L2, 0.0, 1.0)
        d = np.hypot(px - (ax + t * dx), py - (ay + t * dy))
        np.minimum(best, d, out=best)
    alpha[y0:y1, x0:x1] = np.clip(half_width + 0.5 - best, 0.0, 1.0)
    return alpha


def blob_coverage(rng: np.random.Generator, cx: float, cy: float, radius: float, h: int, w: int, *,
                  aspect: float = 1.0, roughness: float = 0.2, soft: float = 1.0) -> np.ndarray:
    """Coverage of an irregular blob: an ellipse (``aspect`` = minor/major) at a random angle whose radius
    is modulated by a few random harmonics of relative amplitude ``roughness``; the edge ramps over
    ``soft`` pixels."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    th = rng.uniform(0, np.pi)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    u = dx * np.cos(th) + dy * np.sin(th)
    v = (-dx * np.sin(th) + dy * np.cos(th)) / aspect
    r = np.hypot(u, v)
    ang = np.arctan2(v, u)
    rad = np.ones_like(r)
    for k in (2, 3, 5):
        rad += roughness / k * rng.uniform(-1, 1) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    edge = radius * rad
    return np.clip((edge - r) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def random_walk(rng: np.random.Generator, start: tuple[float, float], length: float, step: float,
                angle: float, wiggle: float, *, persistence: float = 0.6, bend: float = 0.0) -> np.ndarray:
    """A polyline from ``start`` of total ``length`` in steps of ``step``. The heading deviates from
    ``angle`` by a mean-reverting random term (``wiggle`` radians per step, memory ``persistence``) and
    turns steadily by ``bend`` radians per step: jagged cracks that still progress, curved scratches."""
    n = max(2, int(length / step))
    pts = [np.array(start, np.float64)]
    dev = 0.0
    for i in range(n):
        dev = persistence * dev + rng.normal(0.0, wiggle)
        a = angle + bend * i + dev
        pts.append(pts[-1] + step * np.array([np.cos(a), np.sin(a)]))
    return np.array(pts, np.float32)

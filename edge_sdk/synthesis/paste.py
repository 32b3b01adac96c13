"""Defect pasting: cut real defects out of defective images by their masks and paste them into
good images, to calibrate thresholds and test models when few real defects exist.

Each connected component of a defect mask becomes one library entry (the crop of the image
around it, its mask and the brightness of the background ring around it). Pasting puts an entry
at a plausible position -- near where it was found ("near", with a jitter, for defects tied to a
place such as deformed bottoms) or anywhere, optionally only where an `allowed` mask permits --
and matches brightness: the defect is pasted as its deviation from its own background ring, added
to (or multiplied onto) the target's background ring at the new place, so a dark spot stays a
dark spot of the same contrast on a brighter or darker part. Edges are feathered over `feather`
pixels; the returned mask is the binary defect footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Defect", "DefectLibrary", "paste_defect"]


@dataclass(frozen=True)
class Defect:
    crop: np.ndarray  # (h, w) or (h, w, C) float32 pixels around the defect
    mask: np.ndarray  # (h, w) bool footprint of the defect in the crop
    background: np.ndarray  # (C,) mean of the ring around the defect in the source, per channel
    origin: tuple[float, float]  # top-left of the crop as a fraction of the source (y, x)
    kind: str


def _as_hwc(image: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ValueError(f"{name}: expected (H, W) or (H, W, C) with C in (1, 3), got shape {np.shape(image)}")
    return x.astype(np.float32)


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=width) & ~mask


class DefectLibrary:
    """Defects cut from defective images by their masks (one entry per connected component)."""

    def __init__(self, defects: list[Defect]):
        self.defects = list(defects)

    def __len__(self) -> int:
        return len(self.defects)

    @classmethod
    def from_images(cls, images, masks, kinds=None, *, margin: int = 4, min_area: int = 4) -> "DefectLibrary":
        """`images`: sequence of (H, W[, C]) arrays; `masks`: matching (H, W) arrays, nonzero = defect;
        `kinds`: optional defect type name per image. Components smaller than `min_area` pixels are
        skipped; `margin` pixels of background are kept around each defect (its brightness ring)."""
        defects = []
        kinds = list(kinds) if kinds is not None else ["defect"] * len(images)
        if not (len(images) == len(masks) == len(kinds)):
            raise ValueError(f"images, masks, kinds: lengths differ ({len(images)}, {len(masks)}, {len(kinds)})")
        for i, (image, mask) in enumerate(zip(images, masks)):
            x = _as_hwc(image, f"images[{i}]")
            m = np.asarray(mask) > 0
            if m.shape != x.shape[:2]:
                raise ValueError(f"masks[{i}]: shape {m.shape} differs from the image's {x.shape[:2]}")
            labels, n = ndimage.label(m)
            for j, sl in enumerate(ndimage.find_objects(labels), start=1):
                comp = labels[sl] == j
                if comp.sum() < min_area:
                    continue
                y0, y1 = max(sl[0].start - margin, 0), min(sl[0].stop + margin, m.shape[0])
                x0, x1 = max(sl[1].start - margin, 0), min(sl[1].stop + margin, m.shape[1])
                cmask = labels[y0:y1, x0:x1] == j
                crop = x[y0:y1, x0:x1]
                ring = _ring(cmask, max(margin, 1)) & ~m[y0:y1, x0:x1]
                if not ring.any():  # defect fills its crop: fall back on the whole non-defect crop
                    ring = ~m[y0:y1, x0:x1]
                bg = crop[ring].mean(axis=0) if ring.any() else np.full(x.shape[2], np.nan, np.float32)
                if not np.all(np.isfinite(bg)):
                    continue  # no background to match brightness against
                defects.append(Defect(crop.copy(), cmask, bg.astype(np.float32),
                                      (y0 / m.shape[0], x0 / m.shape[1]), str(kinds[i])))
        return cls(defects)

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> "DefectLibrary":
        """All anomalous samples (label 1 with a mask) of an `edge_sdk.data` data set."""
        images, masks, kinds = [], [], []
        for i in range(len(dataset)):
            s = dataset[i]
            if s.label == 1 and s.mask is not None:
                images.append(s.image)
                masks.append(s.mask)
                kinds.append(s.defect_type)
        return cls.from_images(images, masks, kinds, **kwargs)


def paste_defect(image: np.ndarray, library: DefectLibrary, seed_or_rng=None, *, position: str = "near",
                 jitter: int = 16, allowed: np.ndarray | None = None, match: str = "additive",
                 feather: float = 1.5, max_tries: int = 50):
    """Paste one defect of `library` into `image` ((H, W) or (H, W, C), uint8 or float).

    position: "near" (the defect's original relative place, +- `jitter` pixels) or "anywhere".
    allowed: optional (H, W) mask; the whole defect footprint must fall inside it.
    match: "additive" (pixel - source ring + target ring), "multiplicative" (pixel * target ring /
    source ring; suits back-lit transmission images) or "none".
    Returns (image of the input's dtype and shape, mask (H, W) uint8 in {0, 1}, the Defect used).
    Raises ValueError when no position satisfies `allowed` after `max_tries` draws."""
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
    if len(library) == 0:
        raise ValueError("library: no defects to paste (empty defect library)")
    if position not in ("near", "anywhere"):
        raise ValueError(f"position: expected 'near' or 'anywhere', got {position!r}")
    if match not in ("additive", "multiplicative", "none"):
        raise ValueError(f"match: expected 'additive', 'multiplicative' or 'none', got {match!r}")
    src_dtype, src_shape = np.asarray(image).dtype, np.shape(image)
    x = _as_hwc(image, "image")
    h, w, c = x.shape
    if allowed is not None:
        allowed = np.asarray(allowed) > 0
        if allowed.shape != (h, w):
            raise ValueError(f"allowed: shape {allowed.shape} differs from the image's {(h, w)}")
    for _ in range(max(1, max_tries)):
        d = library.defects[int(rng.integers(len(library)))]
        dh, dw = d.mask.shape
        if dh > h or dw > w or d.crop.shape[2] != c:
            continue
        if position == "near":
            y0 = int(round(d.origin[0] * h)) + int(rng.integers(-jitter, jitter + 1))
            x0 = int(round(d.origin[1] * w)) + int(rng.integers(-jitter, jitter + 1))
            y0, x0 = int(np.clip(y0, 0, h - dh)), int(np.clip(x0, 0, w - dw))
        else:
            y0, x0 = int(rng.integers(0, h - dh + 1)), int(rng.integers(0, w - dw + 1))
        if allowed is not None and not allowed[y0:y0 + dh, x0:x0 + dw][d.mask].all():
            continue
        target = x[y0:y0 + dh, x0:x0 + dw]
        ring = _ring(d.mask, 2)
        tbg = target[ring].mean(axis=0) if ring.any() else target.mean(axis=(0, 1))
        if match == "additive":
            pasted = d.crop - d.background + tbg
        elif match == "multiplicative":
            pasted = d.crop * (tbg / np.maximum(d.background, 1e-3))
        else:
            pasted = d.crop
        # Feathered alpha: 1 deep inside the footprint, falling to 0 over `feather` pixels at its edge.
        inside = ndimage.distance_transform_edt(np.pad(d.mask, 1))[1:-1, 1:-1]
        alpha = np.clip(inside / max(feather, 1e-6), 0.0, 1.0)[:, :, None] if feather > 0 else d.mask[:, :, None].astype(np.float32)
        out = x.copy()
        out[y0:y0 + dh, x0:x0 + dw] = alpha * pasted + (1.0 - alpha) * target
        mask = np.zeros((h, w), np.uint8)
        mask[y0:y0 + dh, x0:x0 + dw] = d.mask
        if np.issubdtype(src_dtype, np.integer):
            info = np.iinfo(src_dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(src_dtype).reshape(src_shape)
        return out, mask, d
    raise ValueError(f"allowed: no plausible position found for any defect after {max_tries} tries")

"""The images a benchmark feeds the runtime: random pixels of the bundle's input spec (or of a
preset's shape), or real images from a folder. Everything is prepared before timing starts, so
neither generation nor file decoding is measured."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_sdk.bench.config import BenchError


@dataclass
class InputPool:
    """Images cycled through to fill batches. ``images``: list of (H, W, C) arrays. ``source``:
    description for the record."""

    images: list[np.ndarray]
    source: str
    shape: tuple[int, int, int] | None  # common (H, W, C), None when sizes differ
    dtype: str

    def batch(self, start: int, size: int) -> np.ndarray | list[np.ndarray]:
        """``size`` images starting at ``start`` (wrapping around), stacked when they share one
        shape (the form a camera pipeline hands over)."""
        n = len(self.images)
        picked = [self.images[(start + i) % n] for i in range(size)]
        if self.shape is not None:
            return np.stack(picked)
        return picked


def bundle_image_shape(manifest: dict) -> tuple[int, int, int]:
    """(H, W, C) of the images the bundle expects: its frame for region bundles, else its input."""
    inp = manifest["input"]
    c = int(inp["channels"])
    if manifest.get("regions"):
        frame = manifest["frame"]
        return int(frame["height"]), int(frame["width"]), c
    return int(inp["height"]), int(inp["width"]), c


def _dtype(manifest: dict) -> str:
    dtypes = manifest["input"].get("dtypes", ["uint8"])
    return "uint8" if "uint8" in dtypes else "float32"


def random_pool(manifest: dict, count: int, shape: tuple[int, int, int] | None = None, seed: int = 0) -> InputPool:
    """``count`` distinct random images (seeded) of ``shape`` (default: the bundle's)."""
    h, w, c = shape if shape is not None else bundle_image_shape(manifest)
    dtype = _dtype(manifest)
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(max(1, count)):
        a = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        images.append(a if dtype == "uint8" else a.astype(np.float32))
    what = "preset/--shape" if shape is not None else "the bundle's input spec"
    return InputPool(images, f"random {dtype} {h}x{w}x{c} ({what}), seed {seed}", (h, w, c), dtype)


def folder_pool(folder: str, manifest: dict, limit: int = 256) -> InputPool:
    """Up to ``limit`` images from ``folder`` (sorted names), read as the bundle takes them: single
    channel for 1-channel models, RGB otherwise. Sizes may differ (the runtime resizes)."""
    from edge_sdk.data.imageio import list_images, read_image
    from edge_sdk.data.sample import DataError

    try:
        paths = list_images(folder, what="--images folder")
    except DataError as exc:
        raise BenchError(str(exc)) from None
    if not paths:
        raise BenchError(f"--images: no image files (.png, .jpg, .bmp, .tif) in {folder}")
    gray = int(manifest["input"]["channels"]) == 1
    dtype = _dtype(manifest)
    images = []
    for p in paths[:limit]:
        try:
            a = read_image(p, gray=gray)
        except DataError as exc:
            raise BenchError(f"--images: {exc}") from None
        if a.ndim == 2:
            a = a[:, :, None]
        a = np.ascontiguousarray(a)
        images.append(a if dtype == "uint8" else a.astype(np.float32))
    shapes = {a.shape for a in images}
    shape = next(iter(shapes)) if len(shapes) == 1 else None
    desc = f"{len(images)} image(s) from {folder}" + ("" if shape else " (several sizes)")
    return InputPool(images, desc, shape, dtype)

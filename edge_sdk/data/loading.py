"""`load_dataset`: one entry point over the layouts, and `iter_batches` for DataLoader-free batching."""

from __future__ import annotations

import os
from collections.abc import Iterator

from edge_sdk.data.dataset import ImageDataset
from edge_sdk.data.layouts import LAYOUTS
from edge_sdk.data.sample import DataError, Sample

SPLITS = ("train", "test")


def load_dataset(root, layout: str, split: str, *, category: str | None = None, seed: int = 0,
                 gray: bool = False, classes: bool = False, **layout_options) -> ImageDataset:
    """A lazy, indexable data set of `Sample` for one split.

    root: the data set folder. layout: "mvtec" (``category`` picks the category folder; optional when
    root is a category folder or holds only one), "folder" (options ``normal_dir`` (default "good"),
    ``abnormal_dir``, ``mask_dir``, ``test_fraction`` (0.2), ``defect_type``) or "mtd" (Magnetic Tile
    Defect as published; option ``test_fraction`` (0.2)) or "classes" (one folder per class,
    `edge_sdk.data.classes`; options ``normal_dir``, ``test_fraction``). split: "train" (good images only) or "test".
    seed: the train/test split of good images ("folder", "mtd"); same seed, same files -> same split.
    gray: images as (H, W) uint8 instead of (H, W, 3) RGB.
    classes: every class in both splits, for supervised classifiers (`edge_sdk.data.classes`): the
    layout's images pooled and split again, stratified by defect type (``test_fraction``, 0.2).
    Structure is checked here; pixels are read on access. Raises `DataError` naming the file or folder.
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; known layouts: {sorted(LAYOUTS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    if classes:
        from edge_sdk.data.classes import load_classes

        return load_classes(root, layout, split, category=category, seed=seed, gray=gray, **layout_options)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"data set root not found (or not a folder): {root}")
    if layout in ("folder", "mtd", "classes"):
        layout_options["seed"] = seed
    entries, name = LAYOUTS[layout](root, split, category, **layout_options)
    return ImageDataset(entries, gray=gray, name=name, split=split)


def iter_batches(dataset, batch_size: int, *, same_size: bool = False) -> Iterator[list[Sample]]:
    """Lists of up to ``batch_size`` samples, in data set order.

    With ``same_size=True`` every batch holds images of one (height, width) only (read from file
    headers first), so a batch stacks into one (N, H, W, C) array for the preprocessing kernel; order is
    kept within each size and ``Sample.index`` says where each sample sits in the data set. Without it,
    images of different sizes must be resized one by one to the model size before they are stacked.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = len(dataset)
    if not same_size:
        for start in range(0, n, batch_size):
            yield [dataset[i] for i in range(start, min(start + batch_size, n))]
        return
    if hasattr(dataset, "image_size"):
        sizes = [dataset.image_size(i) for i in range(n)]
    else:  # an in-memory sequence of Samples
        sizes = [tuple(dataset[i].image.shape[:2]) for i in range(n)]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sizes):
        groups.setdefault(s, []).append(i)
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            batch = [dataset[i] for i in idx[start:start + batch_size]]
            for i, s in zip(idx[start:start + batch_size], batch):
                if s.index is None:
                    s.index = i
            yield batch


def stack_images(samples: list[Sample]):
    """(N, H, W, C) or (N, H, W) uint8 array of the samples' images; DataError when sizes differ."""
    import numpy as np

    if not samples:
        raise DataError("stack_images: no samples")
    shapes = {s.image.shape for s in samples}
    if len(shapes) != 1:
        raise DataError(f"stack_images: images of different shapes {sorted(shapes)}; resize each to the "
                        f"model size first or use iter_batches(..., same_size=True)")
    return np.stack([s.image for s in samples])

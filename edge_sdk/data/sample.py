"""The unit every loader yields (`Sample`) and the one error type of the data layer (`DataError`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DataError(ValueError):
    """A data set cannot be read as asked: missing root, empty folder, unreadable image, mask without
    image, image/mask size mismatch, unknown layout or split. The message names the file or folder."""


@dataclass
class Sample:
    """One image of a data set.

    image: (H, W, 3) uint8 RGB (grayscale sources replicated to 3 channels), or (H, W) uint8 when the
        data set was loaded with ``gray=True``.
    mask: (H, W) uint8 in {0, 1} (1 = defect pixel) for anomalous images that have a mask; None for
        good images and for anomalous images whose layout has no masks.
    label: 0 good, 1 anomalous.
    defect_type: "good" for good images, else the defect class (folder name).
    path: the image file, or None for images made in memory.
    index: position of the sample in its data set (lets batches grouped by size be put back in order).
    """

    image: np.ndarray
    mask: np.ndarray | None
    label: int
    defect_type: str
    path: str | None = None
    index: int | None = None

    def mask_or_zeros(self) -> np.ndarray:
        """The mask, or an all-zero (H, W) uint8 mask when there is none (good images for pixel metrics)."""
        if self.mask is not None:
            return self.mask
        return np.zeros(self.image.shape[:2], dtype=np.uint8)

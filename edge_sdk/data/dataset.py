"""`ImageDataset`: a sized, indexable list of `Sample` whose images are read from disk on access."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_sdk.data.imageio import image_size, read_image, read_mask
from edge_sdk.data.sample import DataError, Sample


@dataclass(frozen=True)
class Entry:
    """Where one sample lives. ``mask_path`` of a good image (MTD ships all-zero masks) is only checked
    to be empty: good samples carry ``mask=None``."""

    image_path: str
    mask_path: str | None
    label: int
    defect_type: str


class ImageDataset:
    """Lazy data set: ``len(ds)``, ``ds[i]`` (reads image and mask), iteration, and metadata without
    reading pixels (``labels``, ``defect_types``, ``paths``, ``image_size(i)``)."""

    def __init__(self, entries: list[Entry], *, gray: bool = False, name: str = "", split: str = ""):
        self.entries = list(entries)
        self.gray = bool(gray)
        self.name = name
        self.split = split

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ImageDataset(self.entries[i], gray=self.gray, name=self.name, split=self.split)
        n = len(self.entries)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"data set index must be an int or a slice, got {type(i).__name__}")
        idx = int(i) + n if i < 0 else int(i)
        if not 0 <= idx < n:
            raise IndexError(f"data set index {i} out of range for {n} samples")
        return self._load(idx)

    def __iter__(self):
        for i in range(len(self.entries)):
            yield self._load(i)

    def __repr__(self) -> str:
        n_bad = int(self.labels.sum()) if self.entries else 0
        return (f"ImageDataset({self.name!r}, split={self.split!r}, {len(self)} samples, "
                f"{len(self) - n_bad} good, {n_bad} anomalous, gray={self.gray})")

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.entries], dtype=np.int64)

    @property
    def defect_types(self) -> list[str]:
        return [e.defect_type for e in self.entries]

    @property
    def paths(self) -> list[str]:
        return [e.image_path for e in self.entries]

    def image_size(self, i: int) -> tuple[int, int]:
        """(height, width) of sample i from the file header (no decoding)."""
        return image_size(self.entries[i].image_path)

    def _load(self, idx: int) -> Sample:
        e = self.entries[idx]
        image = read_image(e.image_path, gray=self.gray)
        mask = None
        if e.mask_path is not None:
            mask = read_mask(e.mask_path, image.shape[:2], image_path=e.image_path)
            if e.label == 0:
                if mask.any():
                    raise DataError(f"mask {e.mask_path} of good image {e.image_path} marks "
                                    f"{int(mask.sum())} defect pixels")
                mask = None
        return Sample(image=image, mask=mask, label=e.label, defect_type=e.defect_type,
                      path=e.image_path, index=idx)

"""Data sets for training and evaluation: MVTec AD, a generic folder layout and Magnetic Tile Defect,
loaded lazily with Pillow into `Sample` objects; `synthetic` makes MVTec-layout sets from a seed.

    ds = load_dataset(root, "mvtec", "test", category="bottle")
    for batch in iter_batches(ds, 16): ...
"""

from edge_sdk.data.dataset import Entry, ImageDataset
from edge_sdk.data.loading import iter_batches, load_dataset, stack_images
from edge_sdk.data.sample import DataError, Sample

__all__ = ["Sample", "DataError", "ImageDataset", "Entry", "load_dataset", "iter_batches", "stack_images"]

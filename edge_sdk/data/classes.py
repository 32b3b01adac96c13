"""Labelled data for supervised classifiers: every class (good and each defect type) in both splits.

The anomaly layouts keep defective images out of training (train = good only). A classifier needs
every class in training, so `load_classes` pools a layout's two splits (MVTec: train/good plus
test/<type>; MTD: MT_Free plus MT_<Defect>; folder: the good and abnormal folders) and splits the
pool again, stratified by defect type: ``round(test_fraction * n_type)`` images of each type,
chosen with the seed, form the test split (`split.split_labelled`); the rest is training.

The `classes` layout is one folder per class directly under the root (``good/`` is the good class
unless ``normal_dir`` names another); a defect image's mask, when it has one, lies beside it as
``<stem>_mask.png`` (nonzero = defect). Under the anomaly models it behaves as the folder layout
with several abnormal folders: good images split train/test, every defect image in test.
"""

from __future__ import annotations

import os

from edge_sdk.data.dataset import Entry, ImageDataset
from edge_sdk.data.imageio import list_images
from edge_sdk.data.sample import DataError
from edge_sdk.data.split import split_good, split_labelled

MASK_SUFFIX = "_mask"
# More folders than this under the root is most likely a wrong root (a whole disk), not classes.
MAX_CLASSES = 256
DEFAULT_TEST_FRACTION = 0.2


def class_folder(root: str, name: str) -> list[tuple[str, str | None]]:
    """(image, mask or None) pairs of one class folder: images whose stem does not end in
    ``_mask``, each paired with ``<stem>_mask.*`` when present. A mask without its image is an
    error naming it (a misspelt image name would otherwise go unnoticed)."""
    folder = os.path.join(root, name)
    files = list_images(folder, what=f"class folder {name!r}")
    masks = {os.path.splitext(os.path.basename(p))[0][: -len(MASK_SUFFIX)]: p for p in files
             if os.path.splitext(p)[0].endswith(MASK_SUFFIX)}
    images = [p for p in files if not os.path.splitext(p)[0].endswith(MASK_SUFFIX)]
    stems = {os.path.splitext(os.path.basename(p))[0] for p in images}
    orphans = sorted(m for s, m in masks.items() if s not in stems)
    if orphans:
        raise DataError(f"mask without image: {orphans[0]} (no image with stem "
                        f"{os.path.splitext(os.path.basename(orphans[0]))[0][: -len(MASK_SUFFIX)]!r} in {folder})")
    if not images:
        raise DataError(f"class folder contains no images (.png .jpg .jpeg .bmp .tif .tiff): {folder}")
    return [(p, masks.get(os.path.splitext(os.path.basename(p))[0])) for p in images]


def class_names(root: str) -> list[str]:
    """The class folders of ``root`` (hidden folders skipped), sorted."""
    if not os.path.isdir(root):
        raise DataError(f"data set root not found (or not a folder): {root}")
    names = sorted(n for n in os.listdir(root) if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))
    if len(names) > MAX_CLASSES:
        raise DataError(f"{root}: {len(names)} folders; the classes layout takes at most {MAX_CLASSES} classes")
    return names


def classes_entries(root: str, split: str, category: str | None, *, normal_dir: str = "good",
                    test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = 0,
                    **options) -> tuple[list[Entry], str]:
    """The `classes` layout for the anomaly models (see module doc): good images of ``normal_dir``
    split train/test with ``test_fraction`` and ``seed``; the test split also holds every image of
    the other class folders (defect type = folder name)."""
    if options:
        raise DataError(f"layout 'classes' has no option(s) {sorted(options)}; allowed: "
                        "['normal_dir', 'test_fraction']")
    names = class_names(root)
    if normal_dir not in names:
        raise DataError(f"classes layout: no folder {normal_dir!r} of good images in {root} (folders: {names})")
    defects = [n for n in names if n != normal_dir]
    good = dict(class_folder(root, normal_dir))
    train, test_good = split_good(list(good), test_fraction, seed)
    name = os.path.basename(os.path.normpath(root))
    if split == "train":
        if not train:
            raise DataError(f"test_fraction={test_fraction} leaves no training image in {os.path.join(root, normal_dir)}")
        return [Entry(p, None, 0, "good") for p in train], name
    entries = [Entry(p, None, 0, "good") for p in test_good]
    for d in defects:
        entries += [Entry(p, m, 1, d) for p, m in class_folder(root, d)]
    return entries, name


def load_classes(root, layout: str, split: str, *, category: str | None = None, seed: int = 0, gray: bool = False,
                 test_fraction: float = DEFAULT_TEST_FRACTION, **layout_options) -> ImageDataset:
    """One split of a labelled data set with every class in both splits (see module doc). The
    same root, layout, seed and fraction give the same split; train and test never share an image."""
    from edge_sdk.data.layouts import LAYOUTS

    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"test_fraction must be in (0, 1) for a labelled split, got {test_fraction}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"data set root not found (or not a folder): {root}")
    if layout in ("folder", "mtd", "classes"):
        layout_options["seed"] = seed
    entries, name = [], ""
    for part in ("train", "test"):
        got, name = LAYOUTS[layout](root, part, category, **layout_options)
        entries += got
    seen: set[str] = set()
    pooled = []
    for e in entries:  # the layouts' two splits never overlap; a duplicate path would leak into both
        if e.image_path not in seen:
            seen.add(e.image_path)
            pooled.append(e)
    types = {e.defect_type for e in pooled}
    if "good" not in types or len(types) < 2:
        raise DataError(f"{root}: a classifier needs good images and at least one defect type; found {sorted(types)}")
    test, train = split_labelled(ImageDataset(pooled, gray=gray, name=name, split="pool"), test_fraction, seed)
    out = train if split == "train" else test
    return ImageDataset(out.entries, gray=gray, name=name, split=split)

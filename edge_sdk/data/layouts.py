"""The folder layouts `load_dataset` understands. Each builder turns a root folder into the list of
`Entry` of one split, checking structure (folders, image/mask pairing) without decoding pixels."""

from __future__ import annotations

import os

from edge_sdk.data.dataset import Entry
from edge_sdk.data.imageio import is_image_file, list_images
from edge_sdk.data.sample import DataError
from edge_sdk.data.split import split_good


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _require_nonempty(paths: list[str], folder: str, what: str) -> list[str]:
    if not paths:
        raise DataError(f"{what} contains no images (.png .jpg .jpeg .bmp .tif .tiff): {folder}")
    return paths


def _reject_unknown_options(layout: str, options: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataError(f"layout {layout!r} has no option(s) {unknown}; allowed: {list(allowed)}")


# --------------------------------------------------------------------------------------------- MVTec AD

def _mvtec_category_dir(root: str, category: str | None) -> tuple[str, str]:
    def is_category(d: str) -> bool:
        return os.path.isdir(os.path.join(d, "train")) or os.path.isdir(os.path.join(d, "test"))

    if category is not None:
        d = os.path.join(root, category)
        if not os.path.isdir(d):
            raise DataError(f"MVTec category folder not found: {d}")
        return d, category
    if is_category(root):
        return root, os.path.basename(os.path.normpath(root))
    found = sorted(n for n in os.listdir(root) if is_category(os.path.join(root, n)))
    if len(found) == 1:
        return os.path.join(root, found[0]), found[0]
    if not found:
        raise DataError(f"no MVTec category (a folder with train/ and test/) in {root}")
    raise DataError(f"{root} holds several MVTec categories {found}: pass category=")


def mvtec_entries(root: str, split: str, category: str | None, **options) -> tuple[list[Entry], str]:
    """``<root>/<category>/train/good``, ``<category>/test/<type>``, ``<category>/ground_truth/<type>/<stem>_mask.png``.
    Defect types without a ground_truth folder have no masks; with one, every image needs its mask and
    every mask its image."""
    _reject_unknown_options("mvtec", options, ())
    cat_dir, name = _mvtec_category_dir(root, category)
    if split == "train":
        folder = os.path.join(cat_dir, "train", "good")
        paths = _require_nonempty(list_images(folder, what="MVTec train folder"), folder, "MVTec train folder")
        return [Entry(p, None, 0, "good") for p in paths], name

    test_dir = os.path.join(cat_dir, "test")
    if not os.path.isdir(test_dir):
        raise DataError(f"MVTec test folder not found: {test_dir}")
    types = sorted(n for n in os.listdir(test_dir) if os.path.isdir(os.path.join(test_dir, n)))
    if not types:
        raise DataError(f"MVTec test folder has no defect-type folders: {test_dir}")
    entries: list[Entry] = []
    for t in types:
        folder = os.path.join(test_dir, t)
        paths = _require_nonempty(list_images(folder, what="MVTec test folder"), folder, "MVTec test folder")
        if t == "good":
            entries += [Entry(p, None, 0, "good") for p in paths]
            continue
        gt_dir = os.path.join(cat_dir, "ground_truth", t)
        if not os.path.isdir(gt_dir):
            entries += [Entry(p, None, 1, t) for p in paths]
            continue
        masks = {n: os.path.join(gt_dir, n) for n in os.listdir(gt_dir) if is_image_file(n)}
        used = set()
        for p in paths:
            want = f"{_stem(p)}_mask.png"
            if want not in masks:
                raise DataError(f"mask {os.path.join(gt_dir, want)} of image {p} is missing")
            used.add(want)
            entries.append(Entry(p, masks[want], 1, t))
        orphans = sorted(set(masks) - used)
        if orphans:
            raise DataError(f"mask without image: {os.path.join(gt_dir, orphans[0])} (no {t}/"
                            f"{orphans[0][:-len('_mask.png')] if orphans[0].endswith('_mask.png') else orphans[0]}"
                            f".* in {folder}){f' and {len(orphans) - 1} more' if len(orphans) > 1 else ''}")
    return entries, name


# --------------------------------------------------------------------------------------------- folder

def _resolve(root: str, d: str | None) -> str | None:
    if d is None:
        return None
    return d if os.path.isabs(d) else os.path.join(root, d)


def _match_masks(images: list[str], mask_dir: str) -> dict[str, str]:
    """image path -> mask path, matched by stem (``<stem>.*`` or ``<stem>_mask.*``)."""
    masks = list_images(mask_dir, what="mask folder")
    by_stem: dict[str, str] = {}
    for m in masks:
        s = _stem(m)
        key = s[: -len("_mask")] if s.endswith("_mask") else s
        if key in by_stem:
            raise DataError(f"two masks for image stem {key!r}: {by_stem[key]} and {m}")
        by_stem[key] = m
    image_stems = {_stem(p) for p in images}
    orphans = sorted(m for k, m in by_stem.items() if k not in image_stems)
    if orphans:
        raise DataError(f"mask without image: {orphans[0]} (no image with stem {_stem(orphans[0])!r})"
                        f"{f' and {len(orphans) - 1} more' if len(orphans) > 1 else ''}")
    return {p: by_stem[_stem(p)] for p in images if _stem(p) in by_stem}


FOLDER_OPTIONS = ("normal_dir", "abnormal_dir", "mask_dir", "test_fraction", "defect_type")


def folder_entries(root: str, split: str, category: str | None, *, normal_dir: str = "good",
                   abnormal_dir: str | None = None, mask_dir: str | None = None, test_fraction: float = 0.2,
                   defect_type: str | None = None, seed: int = 0, **options) -> tuple[list[Entry], str]:
    """Generic layout: good images in ``normal_dir``, anomalous ones in ``abnormal_dir`` (optional),
    masks of anomalous images in ``mask_dir`` (optional) matched by stem. Relative folders are taken
    inside ``root``. Good images are split train/test with ``test_fraction`` and ``seed``; the test
    split also holds every anomalous image (defect type = ``defect_type`` or the abnormal folder's name)."""
    _reject_unknown_options("folder", options, ())
    normal = _resolve(root, normal_dir)
    good = _require_nonempty(list_images(normal, what="normal image folder"), normal, "normal image folder")
    train, test_good = split_good(good, test_fraction, seed)
    name = os.path.basename(os.path.normpath(root))
    if split == "train":
        if not train:
            raise DataError(f"test_fraction={test_fraction} leaves no training image in {normal}")
        return [Entry(p, None, 0, "good") for p in train], name
    entries = [Entry(p, None, 0, "good") for p in test_good]
    if abnormal_dir is not None:
        abnormal = _resolve(root, abnormal_dir)
        bad = _require_nonempty(list_images(abnormal, what="abnormal image folder"), abnormal,
                                "abnormal image folder")
        if os.path.samefile(abnormal, normal):
            raise DataError(f"normal_dir and abnormal_dir are the same folder: {normal}")
        t = defect_type or os.path.basename(os.path.normpath(abnormal))
        pairs = _match_masks(bad, _resolve(root, mask_dir)) if mask_dir is not None else {}
        # As in mvtec: with a mask folder every anomalous image needs its mask (a missing one would
        # silently count the image as having no defect pixels in pixel metrics).
        unmasked = [p for p in bad if p not in pairs] if mask_dir is not None else []
        if unmasked:
            raise DataError(f"mask of image {unmasked[0]} is missing in {_resolve(root, mask_dir)} "
                            f"(<stem>.* or <stem>_mask.*; {len(unmasked)} of {len(bad)} anomalous images have none)")
        entries += [Entry(p, pairs.get(p), 1, t) for p in bad]
    elif mask_dir is not None:
        raise DataError("folder layout: mask_dir given without abnormal_dir")
    if not entries:
        raise DataError(f"folder layout: the test split is empty (no abnormal_dir and test_fraction=0) in {root}")
    return entries, name


# --------------------------------------------------------------------------------------------- MTD

def mtd_entries(root: str, split: str, category: str | None, *, test_fraction: float = 0.2, seed: int = 0,
                **options) -> tuple[list[Entry], str]:
    """Magnetic Tile Defect as published: ``MT_Free/Imgs/*.jpg`` good (all-zero ``<stem>.png`` masks),
    ``MT_<Defect>/Imgs/*.jpg`` + ``<stem>.png`` masks. Protocol (DifferNet): train on a random 80 % of
    MT_Free chosen with ``seed``, test on the other 20 % plus every defective image."""
    _reject_unknown_options("mtd", options, ())

    def pairs(d: str) -> list[tuple[str, str]]:
        folder = os.path.join(root, d, "Imgs")
        if not os.path.isdir(folder):
            raise DataError(f"MTD folder not found: {folder}")
        names = [n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n))]
        jpgs = sorted(n for n in names if n.lower().endswith((".jpg", ".jpeg")))
        pngs = {n for n in names if n.lower().endswith(".png")}
        _require_nonempty(jpgs, folder, "MTD image folder")
        stems = {os.path.splitext(n)[0] for n in jpgs}
        orphans = sorted(p for p in pngs if os.path.splitext(p)[0] not in stems)
        if orphans:
            raise DataError(f"mask without image: {os.path.join(folder, orphans[0])}")
        out = []
        for n in jpgs:
            m = os.path.splitext(n)[0] + ".png"
            if m not in pngs:
                raise DataError(f"mask {os.path.join(folder, m)} of image {os.path.join(folder, n)} is missing")
            out.append((os.path.join(folder, n), os.path.join(folder, m)))
        return out

    free = dict(pairs("MT_Free"))
    train, test_good = split_good(list(free), test_fraction, seed)
    if split == "train":
        return [Entry(p, free[p], 0, "good") for p in train], "magnetic_tile"
    entries = [Entry(p, free[p], 0, "good") for p in test_good]
    defects = sorted(n for n in os.listdir(root) if n.startswith("MT_") and n != "MT_Free"
                     and os.path.isdir(os.path.join(root, n)))
    if not defects:
        raise DataError(f"no MT_<Defect> folders in {root}")
    for d in defects:
        entries += [Entry(p, m, 1, d[3:].lower()) for p, m in pairs(d)]
    return entries, "magnetic_tile"


# The classes layout (one folder per class) lives with the labelled splits of the classifiers.
from edge_sdk.data.classes import classes_entries  # noqa: E402

LAYOUTS = {"mvtec": mvtec_entries, "folder": folder_entries, "mtd": mtd_entries, "classes": classes_entries}

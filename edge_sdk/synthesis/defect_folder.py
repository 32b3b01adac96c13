"""Defects on disk, for `edge-sdk synth cut` and `edge-sdk synth paste`, and defective images made
from good ones.

A defect folder is one sub-folder per defect class holding cut defects as ``<name>.png`` with
their masks beside them as ``<name>_mask.png`` (nonzero = defect), the classes layout's convention
(edge_sdk.data.classes); a folder with images directly in it is one class named after it. The
crops carry no position, so defects read from a folder are pasted anywhere in the good image.

`paste_folder` writes what it makes in the same form -- ``<out>/<class>/<k>.png`` and
``<k>_mask.png`` plus ``synth.json`` with its parameters -- so a folder of good images beside them
makes a `classes` data set. Writes are atomic (a temporary folder renamed into place).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from edge_sdk.atomic import atomic_directory
from edge_sdk.data.classes import class_folder, class_names
from edge_sdk.data.imageio import list_images, read_image, read_mask, without_masks
from edge_sdk.data.sample import DataError
from edge_sdk.synthesis.paste import DefectLibrary, paste_defect

MARKER = "synth.json"
MAX_IMAGES = 1_000_000


def read_defect_folder(folder: str | os.PathLike) -> dict[str, DefectLibrary]:
    """Class name -> DefectLibrary of the cut defects in ``folder`` (see module doc). DataError
    naming the file for an image without its mask or a mask of another size."""
    folder = os.fspath(folder)
    subs = class_names(folder)
    groups = [(name, class_folder(folder, name)) for name in subs] if subs else \
        [(os.path.basename(os.path.normpath(folder)), class_folder(os.path.dirname(os.path.abspath(folder)),
                                                                 os.path.basename(os.path.abspath(folder))))]
    out = {}
    for name, pairs in groups:
        images, masks = [], []
        for image_path, mask_path in pairs:
            if mask_path is None:
                raise DataError(f"cut defect {image_path} has no mask (<stem>_mask.png beside it)")
            img = read_image(image_path)
            images.append(img)
            masks.append(read_mask(mask_path, img.shape[:2], image_path=image_path))
        library = DefectLibrary.from_images(images, masks, [name] * len(images))
        if len(library) == 0:
            raise DataError(f"{os.path.join(folder, name)}: no defect of at least 4 pixels in its masks")
        out[name] = library
    return out


def _write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def write_defect_folder(library: DefectLibrary, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Each defect of ``library`` as ``<out>/<kind>/<k>.png`` + ``<k>_mask.png``, atomically."""
    counters: dict[str, int] = {}
    with atomic_directory(out, is_ours=_is_defect_folder, what="a defect folder (synth.json)",
                          overwrite=overwrite) as tmp:
        for d in library.defects:
            k = counters.get(d.kind, 0)
            counters[d.kind] = k + 1
            folder = tmp / d.kind
            folder.mkdir(exist_ok=True)
            crop = np.clip(np.rint(d.crop), 0, 255).astype(np.uint8)
            _write_png(folder / f"{k:05d}.png", crop[..., 0] if crop.shape[2] == 1 else crop)
            _write_png(folder / f"{k:05d}_mask.png", d.mask.astype(np.uint8) * np.uint8(255))
        (tmp / MARKER).write_text(json.dumps({"made_by": "edge-sdk synth cut", "counts": counters}, indent=2) + "\n")
    return Path(out).absolute()


def paste_folder(good_dir: str | os.PathLike, libraries: dict[str, DefectLibrary], out: str | os.PathLike, *,
                 count: int, seed: int = 0, match: str = "additive", overwrite: bool = False,
                 progress: bool = True) -> dict:
    """``count`` defective images per class: a good image of ``good_dir`` drawn with the seed, one
    defect of the class pasted in anywhere (paste_defect); written with their masks as in the module
    doc. Returns the counts per class."""
    if not 1 <= int(count) <= MAX_IMAGES:
        raise ValueError(f"count: expected 1..{MAX_IMAGES}, got {count}")
    # masks kept beside the good images (Magnetic Tile Defect's all-black MT_Free masks) are not
    # good images
    good = without_masks(list_images(os.fspath(good_dir), what="good image folder"))
    if not good:
        raise DataError(f"good image folder contains no images: {good_dir}")
    rng = np.random.default_rng(seed)
    made: dict[str, int] = {}
    with atomic_directory(out, is_ours=_is_defect_folder, what="a folder written by edge-sdk synth (synth.json)",
                          overwrite=overwrite) as tmp:
        for name in sorted(libraries):
            folder = tmp / name
            folder.mkdir()
            made[name] = 0
            it = range(int(count))
            if progress:
                from tqdm import tqdm

                it = tqdm(it, desc=f"pasting {name}", unit="img")
            for k in it:
                for _attempt in range(20):  # the drawn defect larger than the drawn good image: draw again
                    path = good[int(rng.integers(len(good)))]
                    try:
                        img, mask, _ = paste_defect(read_image(path), libraries[name], rng, position="anywhere",
                                                    match=match)
                    except ValueError:
                        continue
                    _write_png(folder / f"{k:05d}.png", img)
                    _write_png(folder / f"{k:05d}_mask.png", mask * np.uint8(255))
                    made[name] += 1
                    break
        (tmp / MARKER).write_text(json.dumps({"made_by": "edge-sdk synth paste", "good": os.fspath(good_dir),
                                              "count": int(count), "seed": int(seed), "match": match,
                                              "made": made}, indent=2) + "\n")
    return made


def _is_defect_folder(path) -> bool:
    return (Path(path) / MARKER).is_file()

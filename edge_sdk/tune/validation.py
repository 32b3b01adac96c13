"""Validation images for the automatic choice, made without the test split.

A seeded share of the good training images is held out; each held-out image stays in the set as a
good image and also gives one anomalous image, the synthesis kinds taken in turn (a seeded
shuffle): Perlin anomalies as in DRAEM, CutPaste patches and thin scratches (edge_sdk.synthesis),
and pasted real defects when the user gives a folder of cut defects. Labelled images the user gives
(the folder layout's labelled validation split, or --val-data) join as their own source with their
own good images.

The figure a candidate is ranked by is the mean over the sources of the image AUROC of the good
images of its group against that source's anomalies, so each kind of anomaly weighs the same
whatever its count, and no single synthesis decides the choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from edge_sdk.metrics import image_auroc
from edge_sdk.synthesis import DefectLibrary, cutpaste, paste_defect, perlin_anomaly, scratch

SYNTHESES = ("perlin", "cutpaste", "scratch")
PASTE = "paste"  # added to the kinds when a defect library is given
MIN_GOOD_IMAGES = 10  # fewer good training images leave too few to fit and to hold out
MAX_HELD_OUT = 256  # held-out good images (each also gives one anomalous image)
MAX_LABELLED = 512  # labelled validation images used by the search
MAX_DEFECT_IMAGES = 1024  # images read from a defect folder


@dataclass
class ValidationSet:
    """In-memory validation images: ``images`` (H, W, 3) uint8, ``labels`` 0/1, ``sources``
    ("good" or the anomaly's kind), ``groups`` ("synthetic" or "labelled": which good images an
    anomaly is ranked against), and the record of how they were made."""

    images: list[np.ndarray]
    labels: np.ndarray
    sources: list[str]
    groups: list[str]
    record: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def anomaly_sources(self) -> list[str]:
        return sorted({s for s, y in zip(self.sources, self.labels) if y == 1})

    def aurocs(self, scores: np.ndarray) -> dict:
        """{"auroc": mean over the sources, "sources": {source: AUROC}} of image scores (N,)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(self),):
            raise ValueError(f"scores: expected shape ({len(self)},), got {scores.shape}")
        groups, sources = np.asarray(self.groups), np.asarray(self.sources)
        per = {}
        for src in self.anomaly_sources:
            bad = (sources == src) & (self.labels == 1)
            grp = groups[bad][0]
            good = (groups == grp) & (self.labels == 0)
            sel = bad | good
            per[src] = round(float(image_auroc(self.labels[sel], scores[sel])), 6)
        return {"auroc": round(float(np.mean(list(per.values()))), 6), "sources": per}


def hold_out(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(fit indices, held-out indices) of n good training images: a seeded ``fraction``, at least 4
    and at most MAX_HELD_OUT images, held out; ValueError naming the argument otherwise."""
    if n < MIN_GOOD_IMAGES:
        raise ValueError(f"training data: {n} good images; the automatic choice needs at least {MIN_GOOD_IMAGES} "
                         f"(some are held out to validate the candidates on)")
    if not 0.05 <= fraction <= 0.5:
        raise ValueError(f"holdout: expected a fraction in [0.05, 0.5], got {fraction}")
    k = int(np.clip(round(fraction * n), 4, MAX_HELD_OUT))
    order = np.random.default_rng([int(seed), 0x7A17]).permutation(n).tolist()
    return sorted(order[k:]), sorted(order[:k])


def load_defect_folder(folder: str | os.PathLike) -> DefectLibrary:
    """A DefectLibrary from a folder of defect images (any size) with their masks in
    ``<folder>/masks`` (``<stem>.*`` or ``<stem>_mask.*``, nonzero = defect); ValueError naming the
    folder or file otherwise."""
    from edge_sdk.data import DataError
    from edge_sdk.data.imageio import list_images, read_image, read_mask
    from edge_sdk.data.layouts import _match_masks

    folder = os.fspath(folder)
    try:
        images = list_images(folder, what="defect folder")
        if not images:
            raise ValueError(f"defect folder {folder}: no images")
        if len(images) > MAX_DEFECT_IMAGES:
            raise ValueError(f"defect folder {folder}: {len(images)} images, at most {MAX_DEFECT_IMAGES} are read")
        pairs = _match_masks(images, os.path.join(folder, "masks"))
        missing = [p for p in images if p not in pairs]
        if missing:
            raise ValueError(f"defect folder {folder}: image {missing[0]} has no mask in {folder}/masks "
                             f"({len(missing)} of {len(images)} lack one)")
        imgs, masks = [], []
        for p in images:
            img = read_image(p)
            imgs.append(img)
            masks.append(read_mask(pairs[p], img.shape[:2], image_path=p))
    except DataError as exc:
        raise ValueError(str(exc)) from exc
    library = DefectLibrary.from_images(imgs, masks)
    if len(library) == 0:
        raise ValueError(f"defect folder {folder}: no defect of at least 4 pixels in its masks")
    return library


def synthesize(image: np.ndarray, kind: str, rng: np.random.Generator,
               library: DefectLibrary | None = None) -> np.ndarray:
    """One anomalous uint8 (H, W, 3) image of ``kind`` made from a good one."""
    h, w = image.shape[:2]
    if kind == "perlin":
        x = image.transpose(2, 0, 1).astype(np.float32) / 255.0
        # a blob of at least 0.5 % of the image: smaller ones vanish in the network's 8-pixel grid
        a = perlin_anomaly(x, rng, min_area=max(4, int(0.005 * h * w)), max_tries=20)
        return np.clip(np.rint(a.image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    if kind == "cutpaste":
        return cutpaste(image, rng)[0]
    if kind == "scratch":
        return scratch(image, rng)[0]
    if kind == PASTE:
        if library is None:
            raise ValueError("library: pasting needs a defect library")
        return paste_defect(image, library, rng, position="anywhere")[0]
    raise ValueError(f"kind: expected one of {SYNTHESES + (PASTE,)}, got {kind!r}")


def _as_rgb(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[:, :, None]
    return np.ascontiguousarray(np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x)


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def build(train, held_out: list[int], seed: int, *, kinds=SYNTHESES, library: DefectLibrary | None = None,
          labelled=None) -> ValidationSet:
    """The validation set from the good training images ``train[held_out]``, the synthesis ``kinds``
    (+ "paste" with a ``library``), and an optional labelled data set (its first MAX_LABELLED images)."""
    kinds = tuple(kinds) + ((PASTE,) if library is not None else ())
    bad = [k for k in kinds if k not in SYNTHESES + (PASTE,)]
    if not kinds or bad:
        raise ValueError(f"kinds: expected some of {SYNTHESES}, got {list(kinds)}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    turn = rng.permutation(len(held_out))
    images, labels, sources, groups = [], [], [], []
    made: dict[str, int] = {}
    for j, i in enumerate(held_out):
        good = _as_rgb(train[i].image)
        kind = kinds[int(turn[j]) % len(kinds)]
        try:
            anomalous = synthesize(good, kind, rng, library)
        except ValueError:
            if kind != PASTE:
                raise
            kind = "perlin"  # no pasted defect fits this image (too small): a Perlin anomaly instead
            anomalous = synthesize(good, kind, rng, library)
        if _is_gray(good):  # gray parts stay gray (textures and pasted defects may bring colour)
            anomalous = np.repeat(np.round(anomalous.mean(axis=2, keepdims=True)).astype(np.uint8), 3, axis=2)
        made[kind] = made.get(kind, 0) + 1
        images += [good, anomalous]
        labels += [0, 1]
        sources += ["good", kind]
        groups += ["synthetic", "synthetic"]
    record = {"held_out_good": len(held_out), "synthetic_anomalous": made, "kinds": list(kinds), "seed": int(seed),
              "defect_library": len(library) if library is not None else None}
    if labelled is not None and len(labelled):
        n = min(len(labelled), MAX_LABELLED)
        lab = [labelled[i] for i in range(n)]
        if len({int(s.label) for s in lab}) == 2:
            images += [_as_rgb(s.image) for s in lab]
            labels += [int(s.label) for s in lab]
            sources += ["labelled" if int(s.label) else "good" for s in lab]
            groups += ["labelled"] * n
            record["labelled"] = {"good": sum(1 for s in lab if not s.label), "anomalous": sum(1 for s in lab if s.label)}
    return ValidationSet(images, np.asarray(labels, np.int64), sources, groups, record)

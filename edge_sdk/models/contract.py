"""The contract every model follows, whatever its family (embedding: PaDiM, PatchCore, MhBC in
base.py; reconstruction: ResGANAD, GRD-Net in resganad.py / grdnet.py), and the helpers they share.

    model.fit(dataset, val_dataset=None, val_fraction=0.1, threshold_method=None, quantile=0.99,
              calibrate=True, progress=True, **training options) -> model
    model.predict(images) -> Prediction(scores, maps)
    model.calibrate(dataset, indices, threshold_method=None, quantile=0.99, progress=True,
                    source="validation") -> calibration dict
    model.save(model_dir) -> Path;  Model.load(model_dir, device="cpu") -> model
    model.export_parts() -> ExportParts (what the converter turns into a bundle)

`fit` and `calibrate` are written once here: a model supplies its training (`_train`), its
`predict`, `save` / `load` / `export_parts`, and registers with @register_model (registry.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from edge_sdk import kernels
from edge_sdk.models.export_parts import ExportParts


@dataclass
class Prediction:
    """scores: (N,) float32 raw image scores (higher = more anomalous).
    maps: raw anomaly maps at each input image's size: (N, H, W) float32 when all inputs share one
    size, otherwise a list of (H_i, W_i) arrays."""

    scores: np.ndarray
    maps: np.ndarray | list[np.ndarray]


def as_image_list(images) -> list[np.ndarray]:
    """Accepts (N, H, W) gray, (N, H, W, C) with C in {1, 3}, or a sequence of (H, W[, C]) arrays,
    all uint8; returns a list of (H, W, C) uint8 C-contiguous arrays."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3 and images.shape[-1] <= 8:
            # (H, W, C) of one colour / RGBA image, read as a batch of H gray images of W x C pixels
            # before: refused instead (a gray batch is never this narrow)
            raise ValueError(f"images: shape {images.shape} looks like one image with {images.shape[-1]} channel(s), "
                             "not a batch (N, H, W); pass a batch (N, H, W, C) or a list of images")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"images: expected (N, H, W) or (N, H, W, C), got shape {images.shape}")
        items = list(images)
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        raise TypeError(f"images: expected a numpy array or a list of arrays, got {type(images).__name__}")
    out = []
    for i, img in enumerate(items):
        img = np.asarray(img)
        if img.dtype != np.uint8:
            raise TypeError(f"images[{i}]: expected uint8, got {img.dtype}")
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3 or img.shape[2] not in (1, 3) or img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f"images[{i}]: expected (H, W), (H, W, 1) or (H, W, 3), got {img.shape}")
        out.append(np.ascontiguousarray(img))
    if not out:
        raise ValueError("images: empty batch")
    return out


def _groups_by_shape(items: Sequence[np.ndarray]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(items):
        groups.setdefault(a.shape, []).append(i)
    return groups


def maps_at_sizes(grid: np.ndarray, sizes: Sequence[tuple[int, int]], sigma: float,
                  device: str = "cpu") -> list[np.ndarray]:
    """(N, h, w) grid -> one map per image at its own size: ``kernels.resize_blur`` (bilinear
    resize, then Gaussian blur when sigma > 0), images of one size in one call."""
    out: list = [None] * len(sizes)
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(sizes):
        groups.setdefault(tuple(s), []).append(i)
    for size, idx in groups.items():
        maps = kernels.resize_blur(np.ascontiguousarray(grid[idx]), size, sigma, device=device)
        for j, i in enumerate(idx):
            out[i] = maps[j]
    return out


def split_training(n: int, seed: int, val_fraction: float, min_images: int,
                   hold_out: bool = True) -> tuple[list[int], list[int]]:
    """Seeded shuffle of n training images -> (train indices, held-out indices): with ``hold_out``,
    a ``val_fraction`` is held out for calibration when there are at least ``min_images``."""
    if n == 0:
        raise ValueError("training data set is empty")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n).tolist()
    if hold_out and val_fraction > 0 and n >= min_images:
        n_val = max(1, int(round(val_fraction * n)))
        return order[n_val:], order[:n_val]
    return order, []


def score_batches(predict: Callable, batches: Iterable[list], keep_maps: bool = False) -> dict:
    """Runs ``predict`` over batches of Samples: scores (N,) float32, labels (N,) int64 and, with
    keep_maps, the maps and masks (all-zero for good samples; a mask of another size than its map
    is an error naming the sample)."""
    scores, labels, maps, masks = [], [], [], []
    for samples in batches:
        pred = predict([s.image for s in samples])
        scores.append(pred.scores)
        labels += [int(s.label) for s in samples]
        if keep_maps:
            for s, m in zip(samples, list(pred.maps)):
                mask = s.mask if s.mask is not None else np.zeros(m.shape, dtype=np.uint8)
                if mask.shape != m.shape:
                    raise ValueError(f"mask of {s.path} has shape {mask.shape}, its image {m.shape}")
                maps.append(m)
                masks.append(mask)
    out = {"scores": np.concatenate(scores).astype(np.float32), "labels": np.asarray(labels, dtype=np.int64)}
    if keep_maps:
        out["maps"], out["masks"] = maps, masks
    return out


def _tqdm(iterable, progress: bool, **kw):
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, **kw)


class AnomalyModel:
    """Base of every model (see the module doc). ``name`` / ``family`` are set by @register_model."""

    name = ""
    family = ""
    kind = ""  # the bundle's postprocess kind
    # fit holds out val_fraction of the training images for calibration only from this many on
    min_held_out_images = 20

    seed: int
    calibration: dict | None
    metrics: dict
    training_info: dict

    # -- what each model supplies ---------------------------------------------------------------
    def _train(self, dataset, indices: list[int], *, progress: bool, **options) -> dict:
        """Trains on ``dataset[indices]`` (good images only); returns facts for ``training_info``
        (at least fit_seconds)."""
        raise NotImplementedError

    def _score_batch_size(self) -> int:
        raise NotImplementedError

    def predict(self, images) -> Prediction:
        raise NotImplementedError

    def is_fitted(self) -> bool:
        raise NotImplementedError

    def save(self, model_dir: str | os.PathLike) -> Path:
        raise NotImplementedError

    @classmethod
    def load(cls, model_dir: str | os.PathLike, *, device: str = "cpu") -> "AnomalyModel":
        raise NotImplementedError

    def export_parts(self) -> ExportParts:
        raise NotImplementedError

    @classmethod
    def _own_config(cls, model_dir: str | os.PathLike) -> dict:
        """config.json of ``model_dir``, checked to hold this class's kind (ModelFormatError naming
        the directory and both kinds otherwise): the first step of every ``load``."""
        from edge_sdk.models import storage

        config = storage.read_config(model_dir)
        if config.get("model") != cls.name:
            raise storage.ModelFormatError(f"{model_dir}: holds a {config.get('model')!r} model, not {cls.name!r}")
        return config

    def _calibrate_regions(self, dataset, res: dict, method: str, quantile: float) -> None:
        """Hook after the image threshold is chosen (per-region thresholds of region layouts)."""

    # -- written once ---------------------------------------------------------------------------
    def fit(self, dataset, *, val_dataset=None, val_fraction: float = 0.1, threshold_method: str | None = None,
            quantile: float = 0.99, calibrate: bool = True, progress: bool = True, **options) -> "AnomalyModel":
        """Trains on the good images of ``dataset`` (a sized, indexable data set of Samples), then
        calibrates (threshold + normalization statistics) on ``val_dataset`` when given (F1-optimal
        threshold when it holds anomalies, else a quantile of its scores); otherwise on a held-out
        ``val_fraction`` of the training images (chosen with the seed; a quantile threshold). With
        fewer than ``min_held_out_images`` training images nothing is held out and the training
        images themselves are scored (biased low; calibration source "train"). ``calibrate=False``
        trains on every image and skips calibration (call ``calibrate`` later; export needs it).
        ``options`` go to the model's training (e.g. ``epochs`` of the reconstruction models)."""
        order, held_out = split_training(len(dataset), self.seed, val_fraction, self.min_held_out_images,
                                         hold_out=calibrate and val_dataset is None)
        facts = self._train(dataset, order, progress=progress, **options)
        self.training_info = {"train_images": len(order), "seed": self.seed, **facts}
        if not calibrate:
            return self
        if val_dataset is not None:
            self.calibrate(val_dataset, range(len(val_dataset)), threshold_method, quantile, progress, "validation")
        elif held_out:
            self.calibrate(dataset, held_out, threshold_method, quantile, progress, "held_out_train")
        else:
            self.calibrate(dataset, order, threshold_method, quantile, progress, "train")
        return self

    def score_dataset(self, dataset, indices: Sequence[int] | None = None, *, progress: bool = True,
                      desc: str = "scoring", keep_maps: bool = False) -> dict:
        """scores (N,), labels (N,) and indices (N,) of the given samples (default: all), scored in
        batches, each sample loaded once; with keep_maps also the maps and masks (all-zero masks
        for good samples)."""
        indices = list(range(len(dataset))) if indices is None else list(indices)
        size = self._score_batch_size()
        batches = [indices[i:i + size] for i in range(0, len(indices), size)]
        samples = ([dataset[i] for i in b] for b in _tqdm(batches, progress, desc=desc, unit="batch"))
        out = score_batches(self.predict, samples, keep_maps)
        out["indices"] = np.asarray(indices, np.int64)
        return out

    def calibrate(self, dataset, indices, threshold_method: str | None = None, quantile: float = 0.99,
                  progress: bool = True, source: str = "validation") -> dict:
        """Chooses the threshold and normalization statistics on the given samples and stores them
        (``calibration``, and ``metrics`` when they hold both classes); see
        `edge_sdk.calibration.calibrate_scores`."""
        from edge_sdk.calibration import calibrate_scores

        res = self._score_across_ranks(dataset, list(indices), progress)
        self.calibration, self.metrics = calibrate_scores(res["scores"], res["labels"], threshold_method, quantile,
                                                          source)
        self._calibrate_regions(dataset, res, self.calibration["method"], quantile)
        return self.calibration

    def _score_across_ranks(self, dataset, indices: list[int], progress: bool) -> dict:
        """score_dataset of ``indices``; across ranks (torchrun) each rank scores its shard and every
        rank gets all scores, labels and indices in the given order."""
        from edge_sdk.models import distributed

        if not distributed.active():
            return self.score_dataset(dataset, indices, progress=progress, desc="calibrating")
        local = distributed.shard(indices)
        if local:
            res = self.score_dataset(dataset, local, progress=progress and distributed.is_main(), desc="calibrating")
        else:
            res = {"scores": np.zeros(0, np.float32), "labels": np.zeros(0, np.int64), "indices": np.zeros(0, np.int64)}
        return {k: distributed.unshard(distributed.gather_rows(np.asarray(res[k]))) for k in ("scores", "labels", "indices")}

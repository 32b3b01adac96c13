"""What PaDiM, PatchCore and MhBC-PatchCore share: input handling, feature extraction over a data
set in batches, the anomaly-map path through the kernels, calibration, saving and export.

Scoring path of every embedding model (identical in the runtime, from ``export_parts``):

    uint8 images -> kernels.preprocess (bilinear resize to input_size, antialiased by default,
    ImageNet mean/std)
    -> network ([per-image channel standardization, input_norm="per_image"] + backbone + aggregation;
       torch / ONNX) -> features (N, L, C)
    -> per-location scores through the model's kernel(s) -> grid (N, h, w)
    -> kernels.resize_blur to each image's own size (bilinear, then Gaussian blur sigma)
    -> map (N, H, W); image score = max of the raw grid ("max_raw") or of the blurred map ("max_blurred").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from edge_sdk import kernels
from edge_sdk.atomic import sha256_file
from edge_sdk.models import storage
from edge_sdk.models.backbone import (CustomBackbone, FeatureBackbone, Lite0Backbone, backbone_from_config,
                                      lite0_weights_path)
from edge_sdk.models.export_parts import ExportParts
from edge_sdk.models.features import PerImageStandardized

IMAGE_SCORE_MODES = ("max_raw", "max_blurred")
# "fixed": the preprocess's mean/std only; "per_image": then each image's channels standardized
# inside the network (features.PerImageStandardized), exported with it; "per_image_highpass": the
# same after subtracting each pixel's highpass_window x highpass_window box mean.
INPUT_NORM_MODES = ("fixed", "per_image", "per_image_highpass")


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


class EmbeddingModel:
    """Base of the embedding-similarity models. Subclasses set ``name``, ``kind`` and implement
    ``_build_network``, ``_fit_passes``, ``_patch_scores``, ``_model_arrays``, ``_settings``,
    ``_restore`` and ``_postprocess_extra``."""

    name = "embedding"
    kind = ""
    default_layers: tuple[str, ...] = ("stride8", "stride16")
    default_image_score = "max_raw"

    def __init__(self, *, backbone: FeatureBackbone | None = None, layers: Sequence[str] | None = None,
                 input_size: int | Sequence[int] = 256, batch_size: int = 8, blur_sigma: float = 4.0,
                 image_score: str | None = None, input_norm: str = "fixed", highpass_window: int = 127,
                 antialias: bool = True, seed: int = 0, device: str = "cpu"):
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if min(self.input_size) < 32:
            raise ValueError(f"input_size must be at least 32 x 32, got {self.input_size}")
        if backbone is not None and layers is not None:
            raise ValueError("give either backbone (with its own taps) or layers, not both")
        self.backbone = backbone if backbone is not None else Lite0Backbone(layers or self.default_layers)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.blur_sigma = float(blur_sigma)
        if self.blur_sigma < 0:
            raise ValueError(f"blur_sigma must be >= 0, got {blur_sigma}")
        self.image_score = image_score or self.default_image_score
        if self.image_score not in IMAGE_SCORE_MODES:
            raise ValueError(f"image_score must be one of {IMAGE_SCORE_MODES}, got {self.image_score!r}")
        if input_norm not in INPUT_NORM_MODES:
            raise ValueError(f"input_norm must be one of {INPUT_NORM_MODES}, got {input_norm!r}")
        self.input_norm = input_norm
        if highpass_window < 3 or highpass_window % 2 == 0:
            raise ValueError(f"highpass_window must be an odd number >= 3, got {highpass_window}")
        self.highpass_window = int(highpass_window)
        if not isinstance(antialias, (bool, np.bool_)):
            raise TypeError(f"antialias must be True or False, got {antialias!r}")
        self.antialias = bool(antialias)
        self.seed = int(seed)
        self.device = device
        self.calibration: dict | None = None
        self.metrics: dict = {}
        self.training_info: dict = {}
        self.network: nn.Module | None = None
        self.grid: tuple[int, int] | None = None
        self.feature_dim: int | None = None
        self._fit_info: dict = {}

    # -- network -------------------------------------------------------------------------------
    def _build_network(self) -> nn.Module:
        raise NotImplementedError

    def _ensure_network(self) -> nn.Module:
        if self.network is None:
            net = self._build_network()
            if self.input_norm == "per_image":
                net = PerImageStandardized(net)
            elif self.input_norm == "per_image_highpass":
                net = PerImageStandardized(net, highpass=self.highpass_window)
            self.network = net.eval().to(self.device)
            zeros = torch.zeros(1, 3, *self.input_size, device=self.device)
            with torch.no_grad():
                probe = self.network(zeros)
                feats = self.backbone(zeros)
            fine = max(feats, key=lambda f: f.shape[-1] * f.shape[-2])
            self.grid = (int(fine.shape[-2]), int(fine.shape[-1]))
            self.feature_dim = int(probe.shape[-1])
            if probe.shape[1] != self.grid[0] * self.grid[1]:
                raise AssertionError("network output does not match the finest tap grid")
        return self.network

    # -- input -> features ---------------------------------------------------------------------
    def _preprocess(self, items: list[np.ndarray]) -> np.ndarray:
        kw = dict(mean=list(self.backbone.mean), std=list(self.backbone.std), channels=3, scale=1.0 / 255.0,
                  antialias=self.antialias, device=self.device)
        groups = _groups_by_shape(items)
        if len(groups) == 1:
            return kernels.preprocess(np.stack(items), self.input_size, **kw)
        out = np.empty((len(items), 3, *self.input_size), dtype=np.float32)
        for _, idx in groups.items():
            out[idx] = kernels.preprocess(np.stack([items[i] for i in idx]), self.input_size, **kw)
        return out

    def features(self, images) -> np.ndarray:
        """Features (N, L, C) float32 of uint8 images, as the runtime's network produces them."""
        items = as_image_list(images)
        net = self._ensure_network()
        x = torch.from_numpy(self._preprocess(items)).to(self.device)
        with torch.inference_mode():
            f = net(x)
        return np.ascontiguousarray(f.cpu().numpy(), dtype=np.float32)

    def _iter_dataset(self, dataset, indices: Sequence[int], desc: str, progress: bool,
                      check_good: bool = False) -> Iterator[list]:
        """Batches of Samples (each loaded once), with a progress bar."""
        batches = [indices[i:i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        for batch in _tqdm(batches, progress, desc=desc, unit="batch"):
            samples = []
            for i in batch:
                sample = dataset[i]
                if check_good and int(sample.label) != 0:
                    raise ValueError(f"training data must contain good images only; sample {i} "
                                     f"({getattr(sample, 'path', None)}) is labelled anomalous")
                samples.append(sample)
            yield samples

    def _feature_passes(self, dataset, indices: Sequence[int], progress: bool) -> Callable[[str], Iterator[torch.Tensor]]:
        def one_pass(desc: str) -> Iterator[torch.Tensor]:
            for samples in self._iter_dataset(dataset, indices, desc, progress, check_good=True):
                yield torch.from_numpy(self.features([s.image for s in samples]))
        return one_pass

    # -- training ------------------------------------------------------------------------------
    def _fit_passes(self, passes: Callable[[str], Iterator[torch.Tensor]], n_images: int) -> None:
        raise NotImplementedError

    def fit(self, dataset, *, val_dataset=None, val_fraction: float = 0.1, threshold_method: str | None = None,
            quantile: float = 0.99, calibrate: bool = True, progress: bool = True) -> "EmbeddingModel":
        """Trains on the good images of ``dataset`` (a sized, indexable data set of Samples).

        Calibration (threshold + normalization statistics) uses ``val_dataset`` when given (F1-optimal
        threshold when it holds anomalies, else a quantile of its scores); otherwise ``val_fraction``
        of the training images are held out (chosen with the seed) for a quantile threshold. With
        fewer than 20 training images nothing is held out and the training images themselves are
        scored (biased low; recorded as calibration source "train"). ``calibrate=False`` skips
        calibration (call ``calibrate`` later on data of your choice).
        """
        order, held_out = split_training(len(dataset), self.seed, val_fraction, min_images=20,
                                         hold_out=val_dataset is None)
        self._ensure_network()
        t0 = time.perf_counter()
        self._fit_passes(self._feature_passes(dataset, order, progress), len(order))
        fit_s = time.perf_counter() - t0
        self.training_info = {"train_images": len(order), "fit_seconds": round(fit_s, 3), "seed": self.seed,
                              **self._fit_info}
        if not calibrate:
            pass
        elif val_dataset is not None:
            self.calibrate(val_dataset, range(len(val_dataset)), threshold_method, quantile, progress, "validation")
        elif held_out:
            self.calibrate(dataset, held_out, threshold_method, quantile, progress, "held_out_train")
        else:
            self.calibrate(dataset, order, threshold_method, quantile, progress, "train")
        return self

    def score_dataset(self, dataset, indices: Sequence[int] | None = None, *, progress: bool = True,
                      desc: str = "scoring", keep_maps: bool = False):
        """Scores, labels (and maps, masks if keep_maps) of the given samples, in batches."""
        indices = list(range(len(dataset))) if indices is None else list(indices)
        return score_batches(self.predict, self._iter_dataset(dataset, indices, desc, progress), keep_maps)

    def calibrate(self, dataset, indices, threshold_method: str | None = None, quantile: float = 0.99,
                  progress: bool = True, source: str = "validation") -> dict:
        """Chooses the threshold and normalization statistics on the given samples and stores them."""
        from edge_sdk import calibration, metrics

        res = self.score_dataset(dataset, list(indices), progress=progress, desc="calibrating")
        scores, labels = res["scores"], res["labels"]
        has_anomalies = bool((labels == 1).any()) and bool((labels == 0).any())
        method = threshold_method or ("f1" if has_anomalies else "quantile")
        if method in ("f1", "accuracy") and not has_anomalies:
            raise ValueError(f"threshold method {method!r} needs validation data with good and anomalous images")
        threshold = calibration.choose_threshold(scores, labels if has_anomalies else None, method=method,
                                                 quantile=quantile)
        normal = scores[labels == 0] if (labels == 0).any() else scores
        stats = calibration.normalization_stats(normal, threshold)
        self.calibration = {"threshold": float(stats["threshold"]), "min": float(stats["min"]),
                            "max": float(stats["max"]), "method": method,
                            "quantile": quantile if method == "quantile" else None,
                            "source": source, "images": int(len(scores))}
        self.metrics = {}
        if has_anomalies:
            self.metrics = {"image_auroc": float(metrics.image_auroc(labels, scores)),
                            "auprc": float(metrics.auprc(labels, scores)),
                            **{k: float(v) for k, v in metrics.threshold_metrics(labels, scores, threshold).items()},
                            "source": source}
        return self.calibration

    # -- scoring -------------------------------------------------------------------------------
    def _patch_scores(self, feats: np.ndarray):
        """(N, L, C) features -> ((N, L) float32 raw per-location scores through the kernels,
        anything ``_raw_image_scores`` needs besides them)."""
        raise NotImplementedError

    def location_scores(self, feats: np.ndarray) -> np.ndarray:
        """(N, L) raw per-location scores of network features."""
        return self._patch_scores(feats)[0]

    def _raw_image_scores(self, grid: np.ndarray, feats: np.ndarray, extra) -> np.ndarray:
        return grid.reshape(grid.shape[0], -1).max(axis=1)

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise RuntimeError(f"{type(self).__name__} is not trained: call fit() or load()")

    def is_fitted(self) -> bool:
        raise NotImplementedError

    def anomaly_maps(self, grid: np.ndarray, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """(N, h, w) raw grid -> maps at each image's size: bilinear upsampling then Gaussian blur."""
        return maps_at_sizes(grid, sizes, self.blur_sigma, self.device)

    def predict(self, images) -> Prediction:
        """Raw image scores and anomaly maps of a batch of uint8 images (see ``as_image_list``)."""
        self._check_fitted()
        items = as_image_list(images)
        feats = self.features(items)
        n = feats.shape[0]
        loc, extra = self._patch_scores(feats)
        grid = loc.reshape(n, *self.grid).astype(np.float32, copy=False)
        maps = self.anomaly_maps(grid, [a.shape[:2] for a in items])
        if self.image_score == "max_raw":
            scores = self._raw_image_scores(grid, feats, extra)
        else:
            scores = np.array([m.max() for m in maps], dtype=np.float32)
        if len({m.shape for m in maps}) == 1:
            maps = np.stack(maps)
        return Prediction(scores=np.asarray(scores, dtype=np.float32), maps=maps)

    # -- saving --------------------------------------------------------------------------------
    def _settings(self) -> dict:
        raise NotImplementedError

    def _model_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _network_arrays(self) -> dict[str, np.ndarray]:
        """Arrays that shape the network besides the backbone (channel subset, projection)."""
        return {}

    def _common_settings(self) -> dict:
        return {"input_size": list(self.input_size), "batch_size": self.batch_size, "blur_sigma": self.blur_sigma,
                "image_score": self.image_score, "input_norm": self.input_norm,
                "highpass_window": self.highpass_window, "antialias": self.antialias, "seed": self.seed}

    def save(self, model_dir: str | os.PathLike) -> Path:
        """Writes config.json + arrays.safetensors (+ backbone.safetensors for a custom backbone)."""
        self._check_fitted()
        backbone_cfg = self.backbone.describe()
        tensors = {"arrays": {**self._model_arrays(), **self._network_arrays()}}
        if isinstance(self.backbone, Lite0Backbone):
            backbone_cfg["weights_sha256"] = sha256_file(lite0_weights_path())
        elif isinstance(self.backbone, CustomBackbone):
            tensors["backbone"] = {k: v.detach().cpu().contiguous().numpy()
                                   for k, v in self.backbone.state_dict().items()}
        config = {"model": self.name, "settings": {**self._common_settings(), **self._settings()},
                  "backbone": backbone_cfg, "grid": list(self.grid), "feature_dim": self.feature_dim,
                  "calibration": self.calibration, "metrics": self.metrics, "training": self.training_info}
        return storage.write_model_dir(model_dir, config, tensors)

    @classmethod
    def load(cls, model_dir: str | os.PathLike, *, device: str = "cpu") -> "EmbeddingModel":
        config = storage.read_config(model_dir)
        if config.get("model") != cls.name:
            raise storage.ModelFormatError(f"{model_dir}: holds a {config.get('model')!r} model, not {cls.name!r}")
        arrays = storage.read_tensors(model_dir, config, "arrays")
        bcfg = dict(config["backbone"])
        state = None
        if bcfg.get("kind") == "custom":
            state = {k: torch.from_numpy(v) for k, v in storage.read_tensors(model_dir, config, "backbone").items()}
        elif bcfg.get("kind") == "efficientnet_lite0" and bcfg.get("pretrained", True):
            sha = sha256_file(lite0_weights_path())
            if bcfg.get("weights_sha256") != sha:
                raise storage.ModelFormatError(
                    f"{model_dir}: trained with EfficientNet-Lite0 weights sha256 {bcfg.get('weights_sha256')}, "
                    f"installed package has {sha}")
        bcfg.pop("weights_sha256", None)
        backbone = backbone_from_config(bcfg, state)
        settings = dict(config["settings"])
        settings.setdefault("antialias", False)  # saved before the option existed: resized without it
        model = cls(backbone=backbone, device=device, **settings)
        model._restore_network_arrays(arrays)
        model._restore(arrays)
        model.calibration = config.get("calibration")
        model.metrics = config.get("metrics") or {}
        model.training_info = config.get("training") or {}
        model._ensure_network()
        if list(model.grid) != list(config["grid"]) or model.feature_dim != config["feature_dim"]:
            raise storage.ModelFormatError(f"{model_dir}: network rebuilt with grid {model.grid} x {model.feature_dim}, "
                                           f"saved {config['grid']} x {config['feature_dim']}")
        return model

    def _restore_network_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    # -- export --------------------------------------------------------------------------------
    def _postprocess_extra(self) -> dict:
        raise NotImplementedError

    def export_parts(self) -> ExportParts:
        self._check_fitted()
        if self.calibration is None:
            raise RuntimeError("model is not calibrated (fit() calibrates; or call calibrate())")
        h, w = self.input_size
        post = {"kind": self.kind, "network": "features", "features_output": "features",
                "grid": list(self.grid), "channels": self.feature_dim,
                "map_upsample": "bilinear", "map_size": "input", "blur_sigma": self.blur_sigma,
                "image_score": self.image_score, **self._postprocess_extra()}
        parts = ExportParts(
            networks={"features": (self._ensure_network(), ["input"], ["features"])},
            arrays={k: np.ascontiguousarray(v) for k, v in self._model_arrays().items()},
            preprocess={"height": h, "width": w, "channels": 3, "mean": list(self.backbone.mean),
                        "std": list(self.backbone.std), "scale": 1.0 / 255.0, "resize": "bilinear",
                        "antialias": self.antialias},
            postprocess=post,
            calibration={k: self.calibration[k] for k in ("threshold", "min", "max")},
            metadata={"model": self.name, "settings": {**self._common_settings(), **self._settings()},
                      "backbone": self.backbone.describe(), "metrics": self.metrics},
        )
        return parts.validate()


def model_size_bytes(model_dir: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(model_dir).iterdir() if p.is_file())


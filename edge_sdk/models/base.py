"""What PaDiM, PatchCore and MhBC-PatchCore share beyond the model contract (contract.py: fit,
calibrate): input handling, feature extraction over a data set in batches, the anomaly-map path
through the kernels, saving and export.

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
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from edge_sdk import kernels
from edge_sdk.atomic import sha256_file
from edge_sdk.models import storage
from edge_sdk.models.backbone import (CustomBackbone, FeatureBackbone, Lite0Backbone, backbone_from_config,
                                      lite0_weights_path)
from edge_sdk.models.contract import AnomalyModel, Prediction, _groups_by_shape, _tqdm, as_image_list, maps_at_sizes
from edge_sdk.models.export_parts import ExportParts
from edge_sdk.models.features import PerImageStandardized

IMAGE_SCORE_MODES = ("max_raw", "max_blurred")
# "fixed": the preprocess's mean/std only; "per_image": then each image's channels standardized
# inside the network (features.PerImageStandardized), exported with it; "per_image_highpass": the
# same after subtracting each pixel's highpass_window x highpass_window box mean.
INPUT_NORM_MODES = ("fixed", "per_image", "per_image_highpass")


def preprocess_images(items: list[np.ndarray], input_size: tuple[int, int], backbone: FeatureBackbone,
                      antialias: bool, device: str = "cpu") -> np.ndarray:
    """(H, W, C) uint8 images of any sizes -> the network input (N, 3, h, w) float32: the
    ``kernels.preprocess`` every embedding model (and the runtime) applies, images of one size in one call."""
    kw = dict(mean=list(backbone.mean), std=list(backbone.std), channels=3, scale=1.0 / 255.0,
              antialias=antialias, device=device)
    groups = _groups_by_shape(items)
    if len(groups) == 1:
        return kernels.preprocess(np.stack(items), input_size, **kw)
    out = np.empty((len(items), 3, *input_size), dtype=np.float32)
    for _, idx in groups.items():
        out[idx] = kernels.preprocess(np.stack([items[i] for i in idx]), input_size, **kw)
    return out


class ProjectedFeatures:
    """Saving and reopening the optional fixed random projection of the patch features (PatchCore,
    MhBC: ``projection_dim`` / ``projection``), which is part of the exported network."""

    projection_dim: int | None
    projection: torch.Tensor | None

    def _network_arrays(self) -> dict[str, np.ndarray]:
        return {"projection": self.projection.numpy()} if self.projection is not None else {}

    def _restore_network_arrays(self, arrays) -> None:
        if self.projection_dim is not None:
            self.projection = torch.from_numpy(np.asarray(arrays["projection"], dtype=np.float32))


class EmbeddingModel(AnomalyModel):
    """Base of the embedding-similarity models. Subclasses register (@register_model), set ``kind`` and implement
    ``_build_network``, ``_fit_passes``, ``_patch_scores``, ``_model_arrays``, ``_settings``,
    ``_restore`` and ``_postprocess_extra``."""

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
        return preprocess_images(items, self.input_size, self.backbone, self.antialias, self.device)

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

    def _train(self, dataset, indices: list[int], *, progress: bool) -> dict:
        from edge_sdk.models import distributed

        self._ensure_network()
        t0 = time.perf_counter()
        # across ranks (torchrun) each rank extracts the features of its shard; _fit_passes merges
        local = distributed.shard(indices)
        self._fit_passes(self._feature_passes(dataset, local, progress and distributed.is_main()), len(indices))
        return {"fit_seconds": round(time.perf_counter() - t0, 3), **self._fit_info}

    def _score_batch_size(self) -> int:
        return self.batch_size

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
        scores, maps = self.scores_from_features(self.features(items), [a.shape[:2] for a in items],
                                                 (self.image_score,))
        if len({m.shape for m in maps}) == 1:
            maps = np.stack(maps)
        return Prediction(scores=scores[self.image_score], maps=maps)

    def scores_from_features(self, feats: np.ndarray, sizes: Sequence[tuple[int, int]],
                             modes: Sequence[str] = IMAGE_SCORE_MODES) -> tuple[dict[str, np.ndarray], list]:
        """Network features (N, L, C) of images of the given (H, W) sizes -> ({image score mode:
        (N,) float32 raw image scores}, maps at each size). Several modes at once cost one scoring
        (the automatic search scores both from the same features)."""
        self._check_fitted()
        unknown = [m for m in modes if m not in IMAGE_SCORE_MODES]
        if unknown:
            raise ValueError(f"modes: {unknown} not among {IMAGE_SCORE_MODES}")
        n = feats.shape[0]
        loc, extra = self._patch_scores(feats)
        grid = loc.reshape(n, *self.grid).astype(np.float32, copy=False)
        maps = self.anomaly_maps(grid, sizes)
        scores = {}
        for mode in modes:
            if mode == "max_raw":
                scores[mode] = np.asarray(self._raw_image_scores(grid, feats, extra), dtype=np.float32)
            else:
                scores[mode] = np.array([m.max() for m in maps], dtype=np.float32)
        return scores, maps

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
        config = cls._own_config(model_dir)
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
                      "backbone": self.backbone.describe(), "metrics": self.metrics,
                      "training": self.training_info},
        )
        return parts.validate()


def model_size_bytes(model_dir: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(model_dir).iterdir() if p.is_file())


"""Supervised defect classifier: EfficientNet-Lite0 fine-tuned on labelled images (good and one or
more defect classes), with a class activation map (CAM) per image and a three-way verdict.

Scoring path (the runtime reproduces it from `export_parts`, postprocess kind "classifier"):

    uint8 images -> kernels.preprocess (antialiased bilinear resize to input_size, ImageNet mean/std)
    -> CamGraph (classifier_net.py; torch / ONNX) -> probabilities (N, K), score = 1 - P(good),
       cam (N, h, w) of the most probable defect class, in [0, 1]
    -> kernels.resize_blur of the cam to each image's own size -> map
    -> verdict by class_decision.class_verdicts: reject when a defect class reaches the reject
       threshold, accept when P(good) reaches the accept threshold, else review (eject)

Training (`fit`, classifier_train.py): the stem and the first ``freeze_blocks`` blocks stay as
pretrained, the other layers learn at ``backbone_lr`` times the head's rate ``lr``; a seeded split of the labelled training images, stratified by
class (``val_fraction`` of each), is held out for early stopping and for calibrating the two
thresholds (class_decision.calibrate_thresholds: a target false-accept rate, a target false-reject
rate); the test split is never seen. ``defects_per_class`` keeps only that many real images of each
defect class (seeded), and ``synthetic`` adds that many images per defect class made by pasting the
training split's own defects into its good images (synthesis/paste.py). ``init_from`` starts from
the weights of a classifier trained before on the same split instead of ImageNet's (`_start_from`);
with ``epochs=0`` that model is only measured and calibrated again with this one's settings (e.g.
``cam_dense``, the dense CAM of classifier_net.dense_copy, ``tta``, the mean over the flipped views
training augments with, or another ``blur_sigma``).
``distill_from`` names a classifier of the same split whose predictions the network also learns
(classifier_train.distillation_loss, weighted ``distill_weight``). After every epoch, and for the
saved figures, the validation split is scored by ``measure``: the bundle's prediction path.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from edge_sdk import kernels
from edge_sdk.class_decision import calibrate_thresholds, class_verdicts, rates, top_class
from edge_sdk.class_metrics import cam_localization, classification_metrics
from edge_sdk.models import storage
from edge_sdk.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from edge_sdk.models.classifier_net import CAM_STRIDES, CamGraph, Lite0Classifier, test_time_flips
from edge_sdk.models.classifier_train import GUIDANCE_LOSSES, SELECTIONS
from edge_sdk.models.contract import AnomalyModel, Prediction, _groups_by_shape, _tqdm, as_image_list, maps_at_sizes
from edge_sdk.models.export_parts import ExportParts
from edge_sdk.models.registry import register_model

MAX_CLASSES = 256
# Rotation of the training augmentation: within +-pi/8 (a tile is seen tilted, never on its side).
MAX_ANGLE = np.pi / 8


@dataclass
class ClassPrediction(Prediction):
    """Prediction plus the classes: probabilities (N, K) float32, top_class (N,) int64 (-1 when a
    probability is not finite), verdicts (N,) int8 codes (0 review, 1 accept, 2 reject) once the
    thresholds are calibrated, else None. ``maps`` are the CAMs of the most probable defect class."""

    probabilities: np.ndarray
    top_class: np.ndarray
    verdicts: np.ndarray | None


def _check(name: str, value, lo, hi, kind=float):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    v = kind(value)
    if not (lo <= v <= hi):
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], got {value!r}")
    return v


def _model_dir_option(option: str, path: str | os.PathLike | None) -> Path | None:
    """A model directory an option names, checked when the options are, before any image is read."""
    if path is None:
        return None
    try:
        storage.read_config(path)
    except storage.ModelFormatError as exc:
        raise storage.ModelFormatError(f"{option}: {exc}") from exc
    return Path(path)


@register_model("classifier", family="supervised")
class DefectClassifier(AnomalyModel):
    """See the module doc. ``classes`` (class names, the good one among them) is taken from the
    training data when not given; class ids are the positions in that list."""

    kind = "classifier"

    def __init__(self, *, input_size: int | Sequence[int] = 160, batch_size: int = 16, epochs: int = 8,
                 lr: float = 1e-3, backbone_lr: float = 0.1, freeze_blocks: int = 5, weight_decay: float = 1e-4,
                 patience: int = 3, val_fraction: float = 0.2, class_weight_power: float = 1.0,
                 cam_guidance: float = 0.0, cam_guidance_decay: float = 0.0, cam_guidance_loss: str = "mass",
                 select_by: str = "macro_f1", distill_from: str | os.PathLike | None = None,
                 distill_weight: float = 1.0, hflip: bool = False, cam_stride: int = 16, cam_dense: bool = False,
                 tta: bool = False, blur_sigma: float = 4.0,
                 max_false_accept: float = 0.01, max_false_reject: float = 0.01, synthetic: int = 0,
                 defects_per_class: int | None = None, max_cache_mb: int = 2048, good_class: str = "good",
                 classes: Sequence[str] | None = None, pretrained: bool = True, init_from: str | os.PathLike | None = None,
                 seed: int = 0, device: str = "cpu"):
        if isinstance(input_size, (int, np.integer)):
            input_size = (input_size, input_size)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if min(self.input_size) < 32 or max(self.input_size) > 4096:
            raise ValueError(f"input_size: expected 32..4096 pixels a side, got {self.input_size}")
        self.batch_size = _check("batch_size", batch_size, 2, 4096, int)
        self.epochs = _check("epochs", epochs, 0, 10_000, int)
        self.lr = _check("lr", lr, 1e-8, 1.0)
        self.backbone_lr = _check("backbone_lr", backbone_lr, 0.0, 1.0)
        self.freeze_blocks = _check("freeze_blocks", freeze_blocks, 0, 16, int)
        self.weight_decay = _check("weight_decay", weight_decay, 0.0, 1.0)
        self.patience = _check("patience", patience, 1, 10_000, int)
        self.val_fraction = _check("val_fraction", val_fraction, 0.01, 0.9)
        self.class_weight_power = _check("class_weight_power", class_weight_power, 0.0, 1.0)
        self.cam_guidance = _check("cam_guidance", cam_guidance, 0.0, 100.0)
        self.cam_guidance_decay = _check("cam_guidance_decay", cam_guidance_decay, 0.0, 1.0)
        if cam_guidance_loss not in GUIDANCE_LOSSES:
            raise ValueError(f"cam_guidance_loss: expected one of {GUIDANCE_LOSSES}, got {cam_guidance_loss!r}")
        self.cam_guidance_loss = cam_guidance_loss
        if select_by not in SELECTIONS:
            raise ValueError(f"select_by: expected one of {SELECTIONS}, got {select_by!r}")
        self.select_by = select_by
        self.distill_from = _model_dir_option("distill_from", distill_from)
        if self.distill_from is not None and self.epochs == 0:
            raise ValueError("distill_from: needs training (epochs 0 trains nothing to distil into)")
        self.distill_weight = _check("distill_weight", distill_weight, 0.0, 100.0)
        self.hflip = bool(hflip)
        if cam_stride not in CAM_STRIDES:
            raise ValueError(f"cam_stride: expected one of {CAM_STRIDES}, got {cam_stride!r}")
        self.cam_stride = int(cam_stride)
        self.cam_dense = bool(cam_dense)
        self.tta = bool(tta)
        self.blur_sigma = _check("blur_sigma", blur_sigma, 0.0, 100.0)
        self.max_false_accept = _check("max_false_accept", max_false_accept, 0.0, 0.99)
        self.max_false_reject = _check("max_false_reject", max_false_reject, 0.0, 0.99)
        self.synthetic = _check("synthetic", synthetic, 0, 100_000, int)
        self.defects_per_class = (None if defects_per_class is None
                                  else _check("defects_per_class", defects_per_class, 1, 10**7, int))
        self.max_cache_mb = _check("max_cache_mb", max_cache_mb, 16, 1 << 20, int)
        self.good_class = str(good_class)
        self.classes = None if classes is None else [str(c) for c in classes]
        if self.classes is not None:
            self._check_classes(self.classes)
        self.pretrained = bool(pretrained)
        self.init_from = _model_dir_option("init_from", init_from)
        self.seed = int(seed)
        self.device = device
        self.net: Lite0Classifier | None = None
        self.graph: CamGraph | None = None
        self.grid: tuple[int, int] | None = None
        self.calibration: dict | None = None
        self.metrics: dict = {}
        self.training_info: dict = {}

    def _check_classes(self, classes: list[str]) -> None:
        if not 2 <= len(classes) <= MAX_CLASSES:
            raise ValueError(f"classes: expected 2..{MAX_CLASSES} class names, got {len(classes)}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes: names repeat: {classes}")
        if self.good_class not in classes:
            raise ValueError(f"classes: the good class {self.good_class!r} is not among {classes}")

    @property
    def good(self) -> int:
        return self.classes.index(self.good_class)

    def class_index(self, defect_type: str, where: str = "") -> int:
        """Index of a data set's defect type; ValueError naming it when the model has no such class."""
        try:
            return self.classes.index(defect_type)
        except ValueError:
            raise ValueError(f"{where or 'defect type'} {defect_type!r} is not a class of this model "
                             f"({', '.join(self.classes)})") from None

    # -- network -------------------------------------------------------------------------------
    def _build(self, pretrained: bool) -> None:
        torch.manual_seed(self.seed)  # the new head's initial weights
        self.net = Lite0Classifier(len(self.classes), cam_stride=self.cam_stride, pretrained=pretrained,
                                   freeze_blocks=self.freeze_blocks).to(self.device)
        self._set_graph()

    def _set_graph(self) -> None:
        self.net.eval()
        self.graph = CamGraph(self.net, self.good, dense=self.cam_dense,
                              flips=test_time_flips(self.tta, self.hflip)).eval()
        with torch.no_grad():
            cam = self.graph(torch.zeros(1, 3, *self.input_size, device=self.device))[2]
        self.grid = (int(cam.shape[1]), int(cam.shape[2]))

    def is_fitted(self) -> bool:
        return self.net is not None and self.classes is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise RuntimeError("DefectClassifier is not trained: call fit() or load()")

    def _score_batch_size(self) -> int:
        return self.batch_size

    # -- input ---------------------------------------------------------------------------------
    def preprocess(self, items: list[np.ndarray]) -> np.ndarray:
        """(N, 3, h, w) float32 network input: antialiased bilinear resize, ImageNet mean / std."""
        kw = dict(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), channels=3, scale=1.0 / 255.0, antialias=True)
        out = np.empty((len(items), 3, *self.input_size), np.float32)
        for _, idx in _groups_by_shape(items).items():
            out[idx] = kernels.preprocess(np.stack([items[i] for i in idx]), self.input_size, **kw)
        return out

    # -- training ------------------------------------------------------------------------------
    def fit(self, dataset, *, val_dataset=None, progress: bool = True, val_fraction=None, threshold_method=None,
            quantile=None, calibrate: bool = True) -> "DefectClassifier":
        """Trains on the labelled ``dataset`` (every class; e.g. ``load_dataset(..., classes=True)``),
        holding out a stratified share of it (the model's ``val_fraction``; or ``val_dataset``) for
        early stopping and threshold calibration. The contract's options for good images
        (val_fraction, threshold_method, quantile) are accepted from callers of every model and do
        not apply; ``calibrate=False`` is refused (the validation split is part of training)."""
        if not calibrate:
            raise ValueError("calibrate=False: a classifier always calibrates on its validation split")
        if self.epochs == 0 and self.init_from is None:
            raise ValueError("epochs: 0 (no training) needs init_from, a trained model to start from")
        from edge_sdk.data.split import split_labelled
        from edge_sdk.models.classifier_train import ResizedImages, train_classifier

        types = list(getattr(dataset, "defect_types", []))
        if not types:
            raise ValueError("training data set: empty, or not a labelled image data set (ImageDataset)")
        if self.classes is None:
            found = sorted(set(types))
            if self.good_class not in found:
                raise ValueError(f"training data set: no image of the good class {self.good_class!r} "
                                 f"(classes found: {found})")
            self.classes = [self.good_class] + [t for t in found if t != self.good_class]
            self._check_classes(self.classes)
        for t in set(types):
            self.class_index(t, "training data set: defect type")
        if val_dataset is None:
            val, train = split_labelled(dataset, self.val_fraction, self.seed)
        else:
            val, train = val_dataset, dataset
        train = self._limit_defects(train)
        y_train = np.array([self.class_index(t) for t in train.defect_types], np.int64)
        y_val = np.array([self.class_index(t, "validation data set: defect type") for t in val.defect_types], np.int64)
        if not ((y_val == self.good).any() and (y_val != self.good).any()):
            raise ValueError(f"validation split: {len(y_val)} image(s) without both good and defective ones; "
                             "give more labelled images or a larger validation fraction")
        if self.epochs and self.select_by != "macro_f1" and not self._has_masks(val):
            raise ValueError(f"select_by: {self.select_by!r} needs validation images with defect masks (none in "
                             "the validation split)")
        # the starting weights first: a model that does not fit this split is refused before any work
        self._build(self.pretrained and self.init_from is None)
        start = self._start_from(self.init_from, len(y_val)) if self.init_from is not None else {}
        teacher, taught = self._teacher(len(y_val))
        if self.epochs == 0:  # the starting model as it is, measured and calibrated with this model's settings
            y_all, synth = y_train, {}
            masks: dict = {}
            facts = {"history": [], "best_epoch": 0, "epochs_run": 0, "fit_seconds": 0.0}
        else:
            limit = self.max_cache_mb << 20
            images = ResizedImages(lambda i: train[i].image, len(train), self.input_size, max_bytes=limit,
                                   progress=progress, desc="resizing training images")
            masks = self._training_masks(train, progress) if self.cam_guidance > 0 else {}
            synth = self._synthesize(train, images, masks, progress) if self.synthetic else {}
            y_all = np.concatenate([y_train, np.array(synth.get("labels", []), np.int64)])
            facts = train_classifier(self.net, images, y_all, names=self.classes,
                                     validate=lambda: self._epoch_figures(val),
                                     epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                     weight_decay=self.weight_decay, patience=self.patience, max_angle=MAX_ANGLE,
                                     vflip=0.5, hflip=self.hflip, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                     seed=self.seed, backbone_lr=self.backbone_lr,
                                     class_weight_power=self.class_weight_power, masks=masks,
                                     cam_weight=self.cam_guidance, cam_decay=self.cam_guidance_decay,
                                     cam_loss=self.cam_guidance_loss, teacher=teacher,
                                     distill_weight=self.distill_weight, select=self.select_by, progress=progress)
        self._set_graph()
        self.training_info = {"train_images": int(len(y_all)), "real_train_images": int(len(y_train)),
                              "synthetic_images": int(len(synth.get("labels", []))),
                              "validation_images": int(len(y_val)), "seed": self.seed,
                              "masks_guiding_the_cam": int(len(masks)),
                              "class_counts": {c: int((y_all == k).sum()) for k, c in enumerate(self.classes)},
                              **start, **taught, **facts}
        self.calibrate(val, range(len(val)), progress=progress)
        return self

    def _start_from(self, model_dir: Path, validation_images: int) -> dict:
        """Starts training from the weights of a classifier trained before (e.g. at another CAM stride
        or input size, which the weights fit as they fit the ImageNet ones) instead of ImageNet's."""
        source = self._same_split_model(model_dir, validation_images, "init_from")
        if self.epochs == 0 and source.cam_stride != self.cam_stride:
            raise ValueError(f"init_from {model_dir}: trained at CAM stride {source.cam_stride}; without training "
                             f"(epochs 0) it cannot run at stride {self.cam_stride} (cam_dense evaluates it at half "
                             "its stride)")
        self.net.load_state_dict(source.net.state_dict(), strict=True)
        return {"initialized_from": {"model_dir": str(model_dir.resolve()), "cam_stride": source.cam_stride,
                                     "input_size": list(source.input_size),
                                     "validation": source.metrics.get("validation")}}

    def _same_split_model(self, model_dir: Path, validation_images: int, option: str) -> "DefectClassifier":
        """A classifier trained before that this training builds on (``option``: init_from,
        distill_from). It must have the same classes and have been trained with the same split
        (seed, validation fraction, validation size): otherwise this training's validation images,
        which choose the epoch and the thresholds, could be images it learned from."""
        source = DefectClassifier.load(model_dir)
        where = f"{option} {model_dir}"
        if source.classes != self.classes:
            raise ValueError(f"{where}: classes {source.classes}, this training's are {self.classes}")
        theirs = (source.seed, source.val_fraction, source.training_info.get("validation_images"))
        ours = (self.seed, self.val_fraction, validation_images)
        if theirs != ours:
            raise ValueError(f"{where}: trained with split seed {theirs[0]}, validation fraction {theirs[1]} "
                             f"and {theirs[2]} validation images; this training has {ours[0]}, {ours[1]} and "
                             f"{ours[2]}: its validation split would hold images that model learned from")
        return source

    def _teacher(self, validation_images: int) -> tuple:
        """(the distill_from network in eval mode, or None; what training_info records of it)."""
        if self.distill_from is None or self.epochs == 0:
            return None, {}
        source = self._same_split_model(self.distill_from, validation_images, "distill_from")
        teacher = source.net.to(self.device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher, {"distilled_from": {"model_dir": str(self.distill_from.resolve()),
                                            "validation": source.metrics.get("validation")}}

    def _training_masks(self, train, progress: bool) -> dict:
        """Training image index -> its defect mask at the input size (classifier_train.resize_mask),
        for the defective images that have one: what CAM guidance pulls the map toward. Bounded by a
        quarter of the image memory limit."""
        from edge_sdk.models.classifier_train import resize_mask

        out: dict[int, np.ndarray] = {}
        per_mask = self.input_size[0] * self.input_size[1]
        for i in _tqdm(self._defective(train), progress, desc="reading training defect masks", unit="img"):
            mask = train[i].mask
            if mask is None or not np.asarray(mask).any():
                continue
            if (len(out) + 1) * per_mask > (self.max_cache_mb << 20) // 4:
                raise ValueError(f"training defect masks: more than a quarter of the memory limit of "
                                 f"{self.max_cache_mb} MiB (raise --max-cache-mb)")
            out[i] = resize_mask(mask, self.input_size)
        if not out:
            print("classifier: no defective training image has a mask; the map is not guided", file=sys.stderr)
        return out

    def _defective(self, split) -> list[int]:
        return [i for i, t in enumerate(split.defect_types) if t != self.good_class]

    def _has_masks(self, split) -> bool:
        """Whether a defective image of ``split`` has a defect mask (its map can be scored)."""
        for i in self._defective(split):
            mask = split[i].mask
            if mask is not None and np.asarray(mask).any():
                return True
        return False

    def _limit_defects(self, train):
        """``defects_per_class`` real images of each defect class (seeded choice), every good one."""
        if self.defects_per_class is None:
            return train
        from edge_sdk.data.dataset import ImageDataset

        rng = np.random.default_rng(self.seed)
        keep = []
        by_type: dict[str, list[int]] = {}
        for i, t in enumerate(train.defect_types):
            by_type.setdefault(t, []).append(i)
        for t in sorted(by_type):
            idx = sorted(by_type[t], key=lambda i: train.paths[i])
            if t != self.good_class and len(idx) > self.defects_per_class:
                idx = sorted(idx[j] for j in rng.permutation(len(idx))[: self.defects_per_class])
            keep += idx
        keep.sort()
        return ImageDataset([train.entries[i] for i in keep], gray=train.gray, name=train.name, split=train.split)

    def _synthesize(self, train, images, masks: dict, progress: bool) -> dict:
        """``synthetic`` images per defect class: a random good training image with one of that
        class's training defects pasted in (DefectLibrary of the masked defect images). With CAM
        guidance, their paste masks join ``masks``."""
        from edge_sdk.models.classifier_train import resize_mask
        from edge_sdk.synthesis.paste import DefectLibrary, paste_defect

        rng = np.random.default_rng(self.seed + 1)
        types = train.defect_types
        good = [i for i, t in enumerate(types) if t == self.good_class]
        if not good:
            raise ValueError("synthetic: the training split has no good image to paste defects into")
        labels = []
        for c, name in enumerate(self.classes):
            if name == self.good_class:
                continue
            samples = [train[i] for i, t in enumerate(types) if t == name]
            samples = [s for s in samples if s.mask is not None and s.mask.any()]
            if not samples:
                print(f"classifier: synthetic: no masked training image of class {name!r}; none made",
                      file=sys.stderr)
                continue
            library = DefectLibrary.from_images([s.image for s in samples], [s.mask for s in samples], [name] * len(samples))
            if len(library) == 0:
                continue
            made = 0
            for _ in _tqdm(range(self.synthetic), progress, desc=f"synthetic {name}", unit="img", leave=False):
                for _attempt in range(20):  # a defect larger than the drawn good image: draw again
                    base = train[good[int(rng.integers(len(good)))]].image
                    try:
                        img, mask, _d = paste_defect(base, library, rng)
                    except ValueError:
                        continue
                    if self.cam_guidance > 0 and np.asarray(mask).any():
                        masks[len(images)] = resize_mask(mask, self.input_size)
                    images.add(img)
                    labels.append(c)
                    made += 1
                    break
            if made < self.synthetic:
                print(f"classifier: synthetic: {made} of {self.synthetic} {name!r} images made (its defects do "
                      "not fit the good images drawn)", file=sys.stderr)
        return {"labels": labels}

    # -- scoring -------------------------------------------------------------------------------
    def predict(self, images) -> ClassPrediction:
        """Probabilities, top class, verdicts (when calibrated), score 1 - P(good) and the CAM of
        the most probable defect class at each image's own size."""
        self._check_fitted()
        items = as_image_list(images)
        x = torch.from_numpy(self.preprocess(items)).to(self.device)
        with torch.inference_mode():
            probs, score, cam = self.graph(x)
        probs = np.ascontiguousarray(probs.cpu().numpy(), dtype=np.float32)
        maps = maps_at_sizes(np.ascontiguousarray(cam.cpu().numpy(), dtype=np.float32),
                             [a.shape[:2] for a in items], self.blur_sigma, self.device)
        if len({m.shape for m in maps}) == 1:
            maps = np.stack(maps)
        verdicts = None
        if self.calibration is not None:
            verdicts, top = class_verdicts(probs, self.good, self.calibration["accept_threshold"],
                                           self.calibration["reject_threshold"])
        else:
            top = top_class(probs)
        return ClassPrediction(scores=np.ascontiguousarray(score.cpu().numpy()[:, 0], dtype=np.float32), maps=maps,
                               probabilities=probs, top_class=top, verdicts=verdicts)

    def predict_dataset(self, dataset, indices=None, *, progress: bool = True, desc: str = "classifying",
                        keep_maps: bool = False) -> dict:
        """probabilities (N, K), true class indices, scores, and with keep_maps the maps and masks
        (all-zero for images without one) of the given samples, in batches."""
        indices = list(range(len(dataset))) if indices is None else list(indices)
        probs, classes, scores, maps, masks = [], [], [], [], []
        batches = [indices[b:b + self.batch_size] for b in range(0, len(indices), self.batch_size)]
        for batch in _tqdm(batches, progress, desc=desc, unit="batch"):
            samples = [dataset[i] for i in batch]
            pred = self.predict([s.image for s in samples])
            probs.append(pred.probabilities)
            scores.append(pred.scores)
            classes += [self.class_index(s.defect_type, f"{s.path}: defect type") for s in samples]
            if keep_maps:
                for s, m in zip(samples, list(pred.maps)):
                    maps.append(m)
                    masks.append(s.mask_or_zeros())
        out = {"probabilities": np.concatenate(probs), "classes": np.asarray(classes, np.int64),
               "scores": np.concatenate(scores), "indices": np.asarray(indices, np.int64)}
        if keep_maps:
            out["maps"], out["masks"] = maps, masks
        return out

    def measure(self, dataset, indices=None, *, progress: bool = True, desc: str = "measuring") -> tuple[dict, dict]:
        """One pass over labelled images, a batch at a time through ``predict`` (the bundle's path):
        (predict_dataset's results, figures). Figures: accuracy and macro-F1 of the top class, the
        mean cross-entropy of the true class, and the CAM accuracy and IoU (class_metrics.
        cam_localization) of the correctly classified defective images, each map at its image's own
        size against its mask. What training logs and selects by after every epoch, and what
        calibrate stores: one measurement."""
        self._check_fitted()
        indices = list(range(len(dataset))) if indices is None else list(indices)
        if not indices:
            raise ValueError("measure: no labelled image to measure")
        probs, classes, scores = [], [], []
        hits, ious, images, skipped = 0.0, 0.0, 0, 0
        batches = [indices[b:b + self.batch_size] for b in range(0, len(indices), self.batch_size)]
        for batch in _tqdm(batches, progress, desc=desc, unit="batch"):
            samples = [dataset[i] for i in batch]
            pred = self.predict([s.image for s in samples])
            y = [self.class_index(s.defect_type, f"{s.path}: defect type") for s in samples]
            probs.append(pred.probabilities)
            scores.append(pred.scores)
            classes += y
            top = top_class(pred.probabilities)
            correct = [j for j in range(len(samples)) if y[j] != self.good and top[j] == y[j]]
            loc = cam_localization([pred.maps[j] for j in correct], [samples[j].mask_or_zeros() for j in correct])
            skipped += loc["cam_skipped_without_mask"]
            if loc["cam_images"]:  # means of the batches, weighted by their images
                images += loc["cam_images"]
                hits += loc["cam_accuracy"] * loc["cam_images"]
                ious += loc["cam_iou"] * loc["cam_images"]
        res = {"probabilities": np.concatenate(probs), "classes": np.asarray(classes, np.int64),
               "scores": np.concatenate(scores), "indices": np.asarray(indices, np.int64)}
        m = classification_metrics(res["classes"], top_class(res["probabilities"]), self.classes)
        p_true = res["probabilities"][np.arange(len(classes)), res["classes"]].astype(np.float64)
        figures = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                   "loss": float(np.mean(-np.log(np.clip(np.nan_to_num(p_true), 1e-30, 1.0)))),
                   "cam_accuracy": hits / images if images else None, "cam_iou": ious / images if images else None,
                   "cam_images": images, "cam_skipped_without_mask": skipped}
        return res, figures

    def _epoch_figures(self, val) -> dict:
        """``measure`` of the validation split with the weights the network has now (training's
        per-epoch validation, classifier_train.train_classifier)."""
        self._set_graph()  # the dense map is a copy of the network: made again from its new weights
        _, f = self.measure(val, progress=False)
        return {"val_loss": f["loss"], "val_accuracy": f["accuracy"], "val_macro_f1": f["macro_f1"],
                "val_cam_accuracy": f["cam_accuracy"], "val_cam_images": f["cam_images"]}

    def calibrate(self, dataset, indices=None, threshold_method=None, quantile: float = 0.99, progress: bool = True,
                  source: str = "validation") -> dict:
        """Accept / reject thresholds on labelled images (class_decision.calibrate_thresholds) for
        the model's false-accept / false-reject targets; stores them in ``calibration`` with the
        rates they give, and ``measure``'s figures of these images in ``metrics``."""
        res, f = self.measure(dataset, indices, progress=progress, desc="calibrating")
        cal = calibrate_thresholds(res["probabilities"], res["classes"], self.good,
                                   max_false_accept=self.max_false_accept, max_false_reject=self.max_false_reject)
        # In the anomaly models' terms: score = 1 - P(good) is accepted below 1 - accept threshold.
        self.calibration = {"threshold": 1.0 - cal["accept_threshold"], "min": 0.0, "max": 1.0,
                            "method": "class_thresholds", "source": source, "images": int(len(res["classes"])), **cal}
        codes, _ = class_verdicts(res["probabilities"], self.good, cal["accept_threshold"], cal["reject_threshold"])
        self.metrics = {"validation": {**{k: v for k, v in f.items() if k != "loss"},
                                       **rates(codes, res["classes"] != self.good)}}
        return self.calibration

    # -- saving --------------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {"input_size": list(self.input_size), "batch_size": self.batch_size, "epochs": self.epochs,
                "lr": self.lr, "backbone_lr": self.backbone_lr, "freeze_blocks": self.freeze_blocks,
                "weight_decay": self.weight_decay, "patience": self.patience,
                "val_fraction": self.val_fraction, "class_weight_power": self.class_weight_power,
                "cam_guidance": self.cam_guidance, "cam_guidance_decay": self.cam_guidance_decay,
                "cam_guidance_loss": self.cam_guidance_loss, "select_by": self.select_by,
                "distill_weight": self.distill_weight,
                "hflip": self.hflip, "cam_stride": self.cam_stride, "cam_dense": self.cam_dense,
                "tta": self.tta,
                "blur_sigma": self.blur_sigma, "max_false_accept": self.max_false_accept,
                "max_false_reject": self.max_false_reject, "synthetic": self.synthetic,
                "defects_per_class": self.defects_per_class, "max_cache_mb": self.max_cache_mb,
                "good_class": self.good_class, "seed": self.seed}

    def save(self, model_dir: str | os.PathLike) -> Path:
        """config.json (settings, classes, calibration, metrics, training facts) + arrays.safetensors
        (every weight of the fine-tuned network)."""
        self._check_fitted()
        state = {k: v.detach().cpu().contiguous().numpy() for k, v in self.net.state_dict().items()}
        config = {"model": self.name, "settings": self._settings(), "classes": self.classes, "grid": list(self.grid),
                  "calibration": self.calibration, "metrics": self.metrics, "training": self.training_info}
        return storage.write_model_dir(model_dir, config, {"arrays": state})

    @classmethod
    def load(cls, model_dir: str | os.PathLike, *, device: str = "cpu") -> "DefectClassifier":
        config = cls._own_config(model_dir)
        classes = config.get("classes")
        if not isinstance(classes, list):
            raise storage.ModelFormatError(f"{model_dir}/config.json: 'classes' missing or not a list")
        try:
            model = cls(**config["settings"], classes=classes, device=device)
        except (TypeError, ValueError, KeyError) as exc:
            raise storage.ModelFormatError(f"{model_dir}/config.json: settings: {exc}") from exc
        arrays = storage.read_tensors(model_dir, config, "arrays")
        torch.manual_seed(model.seed)
        model.net = Lite0Classifier(len(classes), cam_stride=model.cam_stride, pretrained=False).to(device)
        try:
            model.net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, strict=True)
        except RuntimeError as exc:
            raise storage.ModelFormatError(f"{model_dir}/arrays.safetensors: weights do not fit the network "
                                           f"({str(exc).splitlines()[0]})") from None
        model._set_graph()
        if list(model.grid) != list(config.get("grid") or []):
            raise storage.ModelFormatError(f"{model_dir}: CAM grid {model.grid} rebuilt, {config.get('grid')} saved")
        model.calibration = config.get("calibration")
        model.metrics = config.get("metrics") or {}
        model.training_info = config.get("training") or {}
        return model

    # -- export --------------------------------------------------------------------------------
    def export_parts(self) -> ExportParts:
        self._check_fitted()
        if self.calibration is None:
            raise RuntimeError("model is not calibrated (fit() calibrates; or call calibrate())")
        h, w = self.input_size
        post = {"kind": "classifier", "network": "classifier", "probabilities_output": "probabilities",
                "score_output": "score", "cam_output": "cam", "grid": list(self.grid),
                "classes": [{"id": k, "name": c} for k, c in enumerate(self.classes)], "good_class": self.good,
                "accept_threshold": float(self.calibration["accept_threshold"]),
                "reject_threshold": float(self.calibration["reject_threshold"]),
                "image_score": "one_minus_p_good", "map": "cam_top_defect", "map_upsample": "bilinear",
                "map_size": "input", "blur_sigma": self.blur_sigma, "heatmap": "raw"}
        parts = ExportParts(
            networks={"classifier": (self.graph, ["input"], ["probabilities", "score", "cam"])},
            arrays={},
            preprocess={"height": h, "width": w, "channels": 3, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                        "scale": 1.0 / 255.0, "resize": "bilinear", "antialias": True},
            postprocess=post,
            calibration={k: self.calibration[k] for k in ("threshold", "min", "max")},
            metadata={"model": self.name, "settings": self._settings(), "classes": self.classes,
                      "metrics": self.metrics,
                      "calibration": {k: self.calibration.get(k) for k in
                                      ("accept_threshold", "reject_threshold", "max_false_accept",
                                       "max_false_reject", "validation", "source")}},
            # The CAM is divided by its own maximum per image: where that maximum is small (a weak
            # defect class) float32 rounding is magnified; it is a [0, 1] display map, held to the
            # runtime's heatmap tolerance (1e-3 absolute, converters/verify.py) like every heatmap.
            tolerances={"cam": 1e-3},
        )
        return parts.validate()

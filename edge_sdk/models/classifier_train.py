"""Fine-tuning of the defect classifier (classifier_net.py): the training images held at the input
size, the class weights, and the loop with early stopping on a validation split.

Training images are resized once to the network input (THE preprocessing kernel, antialiased, as
the bundle resizes) and kept as uint8 up to a byte limit; images beyond it are read and resized
again on each use, so memory stays bounded whatever the data set. Each batch is normalized with
the ImageNet statistics and augmented with recon_train.augment_geometry (rotation within
+-max_angle, vertical flip), and a horizontal flip when asked. The loss is cross-entropy with class
weights (n / (K n_k))^p: p = 1 makes a rare defect class count as much as the good class, but also
moves every decision toward the rare classes (good images called crack); p = 0.5 weighs them less
steeply, p = 0 not at all.

CAM guidance (``cam_weight`` > 0): a classification loss alone lets the network find a defect class
by whatever correlates with it, and its activation map then often peaks beside the defect. For
defective training images with a mask, the loss adds ``cam_weight`` times -log(sum_cells
softmax(CAM_y) * cover), where CAM_y is the true class's map on the feature cells and cover is the
share of each cell's pixels inside the mask, divided by its largest value (the mask goes through
the same augmentation as its image): the map's mass is pulled onto the cells the defect covers.
With ``cam_decay`` F > 0 the weight falls linearly to 0 over the first F of the training steps
(guidance_weight), so the map is placed early and the last steps learn the classes alone.
``cam_loss`` "peak" asks less: only that the map's highest cell inside the defect (normalized
cover >= 0.5) exceed the highest cell the defect does not touch by PEAK_MARGIN, a hinge that is 0
once it does. That is what CAM accuracy scores (the peak inside the mask), and an image that meets
it no longer pulls against the classification loss, where the mass loss pulls on every image and
every cell.

AdamW with cosine decay, the new head at the learning rate and the pretrained layers at
``backbone_lr`` times it (a large step would wreck the ImageNet features the few epochs of a CPU
budget build on); after every epoch the caller's ``validate`` measures the network (the model
scores its validation split through its own prediction path, DefectClassifier.measure: the images
resized in float as the bundle does, the map at each image's own size, so the log, the kept epoch
and the saved figures are one measurement), and the weights of the epoch with the best ``select``
figure (then the lowest validation loss) are kept; training stops after ``patience`` epochs
without improvement. ``select`` "macro_f1" is the validation macro-F1; "macro_f1+cam" the mean of
it and the validation CAM accuracy, so that the kept epoch is the one a choice between trainings
by that mean would prefer.
"""

from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from edge_sdk import kernels
from edge_sdk.models.contract import _tqdm
from edge_sdk.models.recon_train import augment_geometry


def resize_uint8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W[, C]) uint8 -> (3, h, w) uint8 at the network input size (antialiased bilinear, the
    preprocessing kernel's resize; gray replicated to 3 channels)."""
    img = image if image.ndim == 3 else image[..., None]
    v = kernels.preprocess(np.ascontiguousarray(img[None]), size, mean=[0.0] * 3, std=[1.0] * 3, channels=3,
                           scale=1.0, antialias=True)[0]
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


class ResizedImages:
    """Images at the input size, (3, h, w) uint8 each: the first ones in memory up to ``max_bytes``,
    the others loaded (``load(i)`` -> uint8 image) and resized on each use. ``add`` appends images
    made in memory (synthetic defects), which are always kept and count against the limit."""

    def __init__(self, load, count: int, size: tuple[int, int], *, max_bytes: int, progress: bool = True,
                 desc: str = "resizing"):
        self.load, self.size = load, (int(size[0]), int(size[1]))
        self.per_image = 3 * self.size[0] * self.size[1]
        self.max_bytes = int(max_bytes)
        keep = min(count, self.max_bytes // self.per_image)
        self.cached = np.empty((keep, 3, *self.size), np.uint8)
        for i in _tqdm(range(keep), progress, desc=desc, unit="img"):
            self.cached[i] = resize_uint8(load(i), self.size)
        self.count = count
        self.extra: list[np.ndarray] = []

    def __len__(self) -> int:
        return self.count + len(self.extra)

    def add(self, image: np.ndarray) -> None:
        if (len(self.cached) + len(self.extra) + 1) * self.per_image > self.max_bytes:
            raise ValueError(f"synthetic images: more than the memory limit of {self.max_bytes >> 20} MiB "
                             f"at {self.size[0]} x {self.size[1]} (lower --synthetic or raise --max-cache-mb)")
        self.extra.append(resize_uint8(image, self.size))

    def batch(self, idx) -> np.ndarray:
        out = np.empty((len(idx), 3, *self.size), np.uint8)
        for j, i in enumerate(idx):
            i = int(i)
            if i < len(self.cached):
                out[j] = self.cached[i]
            elif i < self.count:
                out[j] = resize_uint8(self.load(i), self.size)
            else:
                out[j] = self.extra[i - self.count]
        return out


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) mask (non-zero = defect) -> (h, w) uint8 share of each pixel inside the defect, 0..255
    (the same antialiased resize as the images)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)[None, ..., None] * np.uint8(255)
    v = kernels.preprocess(np.ascontiguousarray(m), size, mean=[0.0], std=[1.0], channels=1, scale=1.0,
                           antialias=True)[0, 0]
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def cell_cover(masks: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, 1, H, W) masks in [0, 1] -> (B, h, w) share of each feature cell inside the defect. Cell i
    is centred on input pixel stride * i (classifier_net.cell_offset), so it pools the stride pixels
    around that one."""
    lo = stride // 2
    padded = F.pad(masks, (lo, stride - lo - 1, lo, stride - lo - 1))
    return F.avg_pool2d(padded, stride, stride)[:, 0]


GUIDANCE_LOSSES = ("mass", "peak")
# In the map's own units (a cell's share of the class logit, as the mass loss's softmax reads them):
# the inside peak wins by a factor e in that softmax. Normalizing by the map's spread instead let
# the network flatten the map and blow the gradient up.
PEAK_MARGIN = 1.0


def cam_guidance_loss(net, feats: torch.Tensor, labels: torch.Tensor, cover: torch.Tensor,
                      kind: str = "mass") -> torch.Tensor:
    """Mean over the images of the guidance loss ``kind`` (module doc): "mass", -log(sum_cells
    softmax(CAM_y) * cover / max(cover)); "peak", max(0, top_outside - top_inside + PEAK_MARGIN), 0 for an
    image with no cell on either side.
    ``cover`` (B, h, w) of the images that have a mask, ``feats`` theirs."""
    cam = torch.einsum("bc,bchw->bhw", net.net._fc.weight[labels], feats).flatten(1)
    w = cover.flatten(1)
    w = w / w.amax(dim=1, keepdim=True).clamp_min(1e-6)
    if kind == "mass":
        inside = (torch.softmax(cam, dim=1) * w).sum(dim=1)
        return -torch.log(inside.clamp_min(1e-6)).mean()
    if kind != "peak":
        raise ValueError(f"cam guidance loss: expected one of {GUIDANCE_LOSSES}, got {kind!r}")
    low = torch.finfo(cam.dtype).min
    inside = w >= 0.5
    top_in = cam.masked_fill(~inside, low).amax(dim=1)
    outside = w <= 0  # cells the defect only grazes count on neither side
    top_out = cam.masked_fill(~outside, low).amax(dim=1)
    gap = torch.relu(top_out - top_in + PEAK_MARGIN)
    # A defect rotated almost out of view (cover under the clamp above) has no inside cell: without
    # this its gap would be ~3.4e38, a loss that overflows the logged figure.
    judged = outside.any(dim=1) & inside.any(dim=1)
    return torch.where(judged, gap, torch.zeros_like(gap)).mean()


# Hinton et al.'s softened softmax: the teacher's small probabilities (which defect a good tile
# resembles) carry what it learned; T^2 keeps the gradient's scale that of the cross-entropy.
DISTILL_TEMPERATURE = 2.0


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = DISTILL_TEMPERATURE):
    """T^2 KL(softmax(teacher / T) || softmax(student / T)) of (B, K) logits, mean over the images."""
    t = F.log_softmax(teacher / temperature, dim=1)
    s = F.log_softmax(student / temperature, dim=1)
    return temperature ** 2 * F.kl_div(s, t, log_target=True, reduction="batchmean")


def guidance_weight(weight: float, decay: float, step: int, total: int) -> float:
    """The CAM guidance weight at ``step`` of ``total``: ``weight`` throughout when ``decay`` is 0,
    else falling linearly from ``weight`` at step 0 to 0 at step decay * total, and 0 after."""
    if decay <= 0.0:
        return float(weight)
    return float(weight) * max(0.0, 1.0 - step / (decay * total))


def normalize(batch: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 (B, 3, h, w) -> float32 network input: x / 255, then (x - mean[c]) / std[c]."""
    x = torch.from_numpy(batch).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (x - m) / s


def class_weights(labels: np.ndarray, k: int, power: float = 1.0) -> np.ndarray:
    """(n / (K n_k))^power per class (1 for a class without images: it has no loss terms anyway)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return (np.where(counts > 0, len(labels) / (k * np.maximum(counts, 1)), 1.0) ** float(power)).astype(np.float32)


SELECTIONS = ("macro_f1", "macro_f1+cam")


def _selection_score(row: dict, select: str) -> float:
    if select == "macro_f1":
        return row["val_macro_f1"]
    return 0.5 * (row["val_macro_f1"] + (row["val_cam_accuracy"] or 0.0))  # no map measured counts as 0


def train_classifier(net, train: ResizedImages, train_labels: np.ndarray, *, names, validate, epochs: int, batch_size: int, lr: float, weight_decay: float, patience: int,
                     max_angle: float, vflip: float, hflip: bool, mean, std, seed: int, backbone_lr: float = 0.1,
                     class_weight_power: float = 1.0, masks: dict | None = None, cam_weight: float = 0.0,
                     cam_decay: float = 0.0, cam_loss: str = "mass", teacher=None, distill_weight: float = 0.0,
                     select: str = "macro_f1", progress: bool = True) -> dict:
    """The loop of the module doc (layers the network froze stay as they are). ``net`` is trained in
    place and left with the best epoch's weights, in eval mode. ``masks``: training image index ->
    (h, w) uint8 defect share at the input size (resize_mask), for CAM guidance. ``validate()``
    measures the network as it is after each epoch: a dict with val_loss, val_accuracy, val_macro_f1 and,
    for ``select`` "macro_f1+cam", val_cam_accuracy (None when no map was scored) and
    val_cam_images. ``teacher``: a trained network (eval mode) whose logits on the same augmented
    batch the network is pulled toward with ``distill_weight`` times distillation_loss, so that the
    classes it learned hold while guidance moves the map. ``select``: one of SELECTIONS. Returns the per-epoch history, the best epoch and
    the seconds spent."""
    if len(train_labels) < 2:
        raise ValueError(f"training split: {len(train_labels)} image(s); a classifier needs more")
    if cam_loss not in GUIDANCE_LOSSES:
        raise ValueError(f"cam_loss: expected one of {GUIDANCE_LOSSES}, got {cam_loss!r}")
    if select not in SELECTIONS:
        raise ValueError(f"select: expected one of {SELECTIONS}, got {select!r}")
    try:
        return _train(net, train, train_labels, names=names, validate=validate, epochs=epochs, batch_size=batch_size,
                      lr=lr, weight_decay=weight_decay, patience=patience, max_angle=max_angle, vflip=vflip,
                      hflip=hflip, mean=mean, std=std, seed=seed, backbone_lr=backbone_lr,
                      class_weight_power=class_weight_power, masks=masks or {}, cam_weight=cam_weight,
                      cam_decay=cam_decay, cam_loss=cam_loss, teacher=teacher, distill_weight=distill_weight,
                      select=select, progress=progress)
    finally:
        torch.set_flush_denormal(False)


def _train(net, train, train_labels, *, names, validate, epochs, batch_size, lr, weight_decay, patience,
           max_angle, vflip, hflip, mean, std, seed, backbone_lr, class_weight_power, masks, cam_weight,
           cam_decay, cam_loss, teacher, distill_weight, select, progress) -> dict:
    k, n = len(names), len(train_labels)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    weights = torch.from_numpy(class_weights(train_labels, k, class_weight_power))
    backbone, head = net.parameter_groups()
    opt = torch.optim.AdamW([{"params": backbone, "lr": lr * backbone_lr}, {"params": head, "lr": lr}],
                            weight_decay=weight_decay, fused=True)
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    labels_t = torch.from_numpy(train_labels.astype(np.int64))
    history: list[dict] = []
    best, best_key, best_epoch, stale = None, None, -1, 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        # Fine-tuned weights and gradients drift into subnormal floats, which x86 CPUs compute about
        # ten times slower (measured: 10 s against 1 s a step); training does not need them.
        # Validation keeps the default, so it measures what the saved model will predict.
        torch.set_flush_denormal(True)
        net.train()
        order = rng.permutation(n)
        batches = [order[b:b + batch_size] for b in range(0, n, batch_size)]
        if len(batches) > 1 and len(batches[-1]) < 2:  # batch norm cannot train on a single image
            batches[-2] = np.concatenate(batches[-2:])
            batches.pop()
        bar = _tqdm(batches, progress, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)
        total_loss = 0.0
        for idx in bar:
            x = normalize(train.batch(idx), mean, std)
            w_cam = guidance_weight(cam_weight, cam_decay, sched.last_epoch, total)  # last_epoch counts steps
            guided = np.array([w_cam > 0 and int(i) in masks for i in idx])
            if guided.any():  # the masks ride along as a fourth channel, so they get the same geometry
                m = np.zeros((len(idx), 1, *x.shape[-2:]), np.float32)
                for j in np.flatnonzero(guided):
                    m[j, 0] = masks[int(idx[j])] / 255.0
                x = torch.cat([x, torch.from_numpy(m)], dim=1)
            x = augment_geometry(x, gen, max_angle, vflip)
            if hflip:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            x, m = x[:, :3], x[:, 3:]
            feats = net.feature_map(x)
            logits = net.head(feats)
            loss = F.cross_entropy(logits, labels_t[idx], weight=weights)
            if teacher is not None and distill_weight > 0:
                with torch.no_grad():
                    taught = teacher(x)
                loss = loss + distill_weight * distillation_loss(logits, taught)
            if guided.any():
                sel = torch.from_numpy(np.flatnonzero(guided))
                cover = cell_cover(m[sel], net.cam_stride)
                seen = cover.amax(dim=(1, 2)) > 0  # a defect the rotation left in view
                if seen.any():
                    sel, cover = sel[seen], cover[seen]
                    loss = loss + w_cam * cam_guidance_loss(net, feats[sel], labels_t[idx][sel], cover,
                                                             cam_loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.item()) * len(idx)
            if progress:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        torch.set_flush_denormal(False)
        row = {"epoch": epoch + 1, "train_loss": total_loss / n, **validate()}
        history.append(row)
        key = (_selection_score(row, select), -row["val_loss"])
        if best_key is None or key > best_key:
            best, best_key, best_epoch, stale = copy.deepcopy(net.state_dict()), key, epoch + 1, 0
        else:
            stale += 1
        if progress:
            print(f"classifier: epoch {epoch + 1}: train loss {row['train_loss']:.4f}, validation loss "
                  f"{row['val_loss']:.4f}, accuracy {row['val_accuracy']:.3f}, macro-F1 {row['val_macro_f1']:.3f}"
                  f"{_cam_text(row)}{' (best)' if stale == 0 else ''}", file=sys.stderr, flush=True)
        if stale >= patience:
            break
    net.load_state_dict(best)
    net.eval()
    return {"history": history, "best_epoch": best_epoch, "epochs_run": len(history),
            "fit_seconds": round(time.perf_counter() - t0, 3)}


def _cam_text(row: dict) -> str:
    if "val_cam_accuracy" not in row:
        return ""
    acc = row["val_cam_accuracy"]
    return f", CAM accuracy {'-' if acc is None else f'{acc:.3f}'} ({row['val_cam_images']})"

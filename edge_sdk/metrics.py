"""Evaluation metrics of anomaly detection, image level and pixel level.

Conventions: label 1 / mask 1 = anomalous; a higher score = more anomalous; at a threshold ``t`` a
sample is called anomalous when ``score >= t`` (the same rule as `edge_sdk.calibration`).
Metrics that need both classes raise ValueError when one is missing, rather than returning a number.

- `image_auroc`: exact (Mann-Whitney with average ranks for ties; equals sklearn's roc_auc_score).
- `pixel_auroc`: exact up to ``max_exact_pixels`` pixels, above that a quantile-binned ROC (65536
  bins from a subsample; pixels sharing a bin count as ties, error well below 1e-3).
- `pro_score`: the MVTec AD "per-region overlap" (Bergmann et al., IJCV 2021, and its official
  evaluation code): ground-truth regions are the 8-connected components of each mask; at each
  threshold, PRO = mean over all regions of the fraction of the region predicted anomalous, FPR =
  fraction of defect-free pixels (all images) predicted anomalous; the PRO(FPR) curve is integrated
  (trapezoid, interpolated at the limit) from 0 to ``fpr_limit`` and divided by ``fpr_limit``.
- `auprc`: average precision (step-wise sum of precision x recall increments, as sklearn's
  average_precision_score), the usual summary of the precision-recall curve.
- `threshold_metrics`: F1, accuracy, TPR (recall), TNR, precision at one threshold.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.stats import rankdata

_EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


# ------------------------------------------------------------------------------------------ checks

def _labels_scores(labels, scores, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({s.shape[0]}) differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (good) or 1 (anomalous), found {np.unique(y)[:5].tolist()}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} NaN/inf values")
    y = y.astype(bool)
    if need_both:
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.size:
            which = "anomalous" if n_pos == 0 else "good"
            raise ValueError(f"labels hold only one class (no {which} samples among {y.size}); "
                             "the metric needs both good and anomalous samples")
    return y, s


def _pixel_pairs(masks, maps) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mask bool, map float64) per image; a None mask means a defect-free image."""
    maps_list = list(maps)
    masks_list = [None] * len(maps_list) if masks is None else list(masks)
    if len(masks_list) != len(maps_list):
        raise ValueError(f"masks ({len(masks_list)}) and maps ({len(maps_list)}) differ in number of images")
    if not maps_list:
        raise ValueError("no images given")
    out = []
    for i, (m, a) in enumerate(zip(masks_list, maps_list)):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"maps[{i}] must be 2-D (H, W), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"maps[{i}] contains NaN/inf values")
        if m is None:
            mb = np.zeros(a.shape, dtype=bool)
        else:
            m = np.asarray(m)
            if m.shape != a.shape:
                raise ValueError(f"masks[{i}] has shape {m.shape} but maps[{i}] has shape {a.shape}")
            if m.dtype != bool and not np.isin(m, (0, 1)).all():
                raise ValueError(f"masks[{i}] must be binary (0/1 or bool), found values "
                                 f"{np.unique(m)[:5].tolist()}")
            mb = m.astype(bool)
        out.append((mb, a))
    return out


# ------------------------------------------------------------------------------------------ AUROC

def _auroc_exact(y: np.ndarray, s: np.ndarray) -> float:
    ranks = rankdata(s)  # average ranks: ties count one half, as the trapezoidal ROC does
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def image_auroc(labels, scores) -> float:
    """Area under the ROC curve of image scores (exact; ties count one half)."""
    y, s = _labels_scores(labels, scores)
    return _auroc_exact(y, s)


MAX_BOOTSTRAP_REPS = 100_000


def image_auroc_bootstrap(labels, scores, other=None, *, reps: int = 2000, level: float = 0.95,
                          seed: int = 0) -> dict:
    """Percentile bootstrap interval of the image AUROC, stratified: good and anomalous images are
    resampled separately, as a test split fixes how many of each it has.

    With ``other`` (another model's scores on the same images) also the paired difference
    AUROC(scores) - AUROC(other), both computed on the same resamples: how far apart two models
    really are on this test set. Returns {"auroc", "low", "high", "reps", "level"} and, with other,
    {"difference", "difference_low", "difference_high"}."""
    y, s = _labels_scores(labels, scores)
    o = None
    if other is not None:
        _, o = _labels_scores(labels, other)
    if not 1 <= int(reps) <= MAX_BOOTSTRAP_REPS:
        raise ValueError(f"reps: expected 1..{MAX_BOOTSTRAP_REPS}, got {reps}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a value in (0, 1), got {level}")
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    rng = np.random.default_rng(seed)
    aucs, diffs = np.empty(reps), np.empty(reps)
    for r in range(reps):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        aucs[r] = _auroc_exact(y[idx], s[idx])
        if o is not None:
            diffs[r] = aucs[r] - _auroc_exact(y[idx], o[idx])
    tail = 100.0 * (1.0 - float(level)) / 2.0
    out = {"auroc": _auroc_exact(y, s), "low": float(np.percentile(aucs, tail)),
           "high": float(np.percentile(aucs, 100.0 - tail)), "reps": int(reps), "level": float(level)}
    if o is not None:
        out.update(difference=out["auroc"] - _auroc_exact(y, o), difference_low=float(np.percentile(diffs, tail)),
                   difference_high=float(np.percentile(diffs, 100.0 - tail)))
    return out


def _auroc_binned(pairs, bins: int, rng_seed: int = 0) -> float:
    total = sum(a.size for _, a in pairs)
    rng = np.random.default_rng(rng_seed)
    take = max(1, min(total, 4 * bins * 8) // len(pairs))
    sample = np.concatenate([a.ravel()[rng.integers(0, a.size, min(take, a.size))] for _, a in pairs])
    edges = np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)[1:-1]))
    pos = np.zeros(edges.size + 1, dtype=np.float64)
    neg = np.zeros(edges.size + 1, dtype=np.float64)
    for m, a in pairs:
        idx = np.searchsorted(edges, a.ravel(), side="right")
        mm = m.ravel()
        pos += np.bincount(idx[mm], minlength=edges.size + 1)
        neg += np.bincount(idx[~mm], minlength=edges.size + 1)
    n_pos, n_neg = pos.sum(), neg.sum()
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))


def pixel_auroc(masks, maps, *, max_exact_pixels: int = 20_000_000, bins: int = 65536) -> float:
    """Area under the ROC curve over all pixels of all images.

    masks: per image (H, W) 0/1 (or None for a defect-free image); maps: per image (H, W) anomaly
    scores of the same size (lists allow images of different sizes; arrays (N, H, W) work too).
    Exact (as sklearn's roc_auc_score on the flattened pixels) up to ``max_exact_pixels`` pixels;
    beyond, a quantile-binned ROC with ``bins`` bins (agrees with the exact value to ~1e-5 on maps
    with continuous scores)."""
    pairs = _pixel_pairs(masks, maps)
    n_pos = sum(int(m.sum()) for m, _ in pairs)
    total = sum(m.size for m, _ in pairs)
    if n_pos == 0 or n_pos == total:
        which = "defect" if n_pos == 0 else "defect-free"
        raise ValueError(f"the masks hold no {which} pixels among {total}; pixel AUROC needs both")
    if total <= max_exact_pixels:
        y = np.concatenate([m.ravel() for m, _ in pairs])
        s = np.concatenate([a.ravel() for _, a in pairs])
        return _auroc_exact(y, s)
    return _auroc_binned(pairs, int(bins))


# ------------------------------------------------------------------------------------------ PRO

def pro_curve(masks, maps) -> tuple[np.ndarray, np.ndarray]:
    """(fprs, pros) at every distinct score used as threshold (descending), with (0, 0) prepended and
    (1, 1) appended, as the MVTec AD evaluation code computes it."""
    pairs = _pixel_pairs(masks, maps)
    scores, fp_step, pro_step = [], [], []
    n_ok, n_regions = 0, 0
    for m, a in pairs:
        lab, n = ndimage.label(m, structure=_EIGHT_CONNECTED)
        n_regions += n
        ok = lab == 0
        n_ok += int(ok.sum())
        sizes = np.bincount(lab.ravel(), minlength=n + 1).astype(np.float64)
        inv = np.zeros(n + 1)
        inv[1:] = 1.0 / sizes[1:]
        scores.append(a.ravel())
        fp_step.append(ok.ravel())
        pro_step.append(inv[lab.ravel()])  # each region sums to 1; divided by the region count below
    if n_regions == 0:
        raise ValueError("the masks hold no defect region; PRO needs at least one")
    if n_ok == 0:
        raise ValueError("the masks hold no defect-free pixel; PRO needs some (its x axis is their FPR)")
    s = np.concatenate(scores)
    order = np.argsort(-s, kind="stable")
    s = s[order]
    fprs = np.cumsum(np.concatenate(fp_step)[order], dtype=np.float64) / n_ok
    pros = np.cumsum(np.concatenate(pro_step)[order]) / n_regions
    keep = np.append(np.diff(s) != 0, True)  # one point per distinct threshold (after all its ties)
    fprs = np.clip(fprs[keep], None, 1.0)
    pros = np.clip(pros[keep], None, 1.0)
    return np.concatenate(([0.0], fprs, [1.0])), np.concatenate(([0.0], pros, [1.0]))


def _trapezoid_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Area under the piecewise-linear y(x) (x ascending) from x[0] to x_max, interpolating at x_max."""
    inside = x <= x_max
    xi, yi = x[inside], y[inside]
    area = float(np.sum(0.5 * (yi[1:] + yi[:-1]) * (xi[1:] - xi[:-1])))
    if xi[-1] < x_max:
        j = int(np.searchsorted(x, x_max, side="right"))  # first point beyond x_max
        y_at = y[j - 1] + (y[j] - y[j - 1]) * (x_max - x[j - 1]) / (x[j] - x[j - 1])
        area += 0.5 * (y_at + y[j - 1]) * (x_max - x[j - 1])
    return area


def pro_score(masks, maps, fpr_limit: float = 0.3) -> float:
    """Normalized area under the PRO curve up to ``fpr_limit`` (MVTec AD AU-PRO; 1.0 is perfect)."""
    if not 0.0 < float(fpr_limit) <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    fprs, pros = pro_curve(masks, maps)
    return _trapezoid_to(fprs, pros, float(fpr_limit)) / float(fpr_limit)


# ------------------------------------------------------------------------------------------ PR, threshold

def auprc(labels, scores) -> float:
    """Average precision: sum over distinct thresholds (descending) of (recall increase) x precision."""
    recall, precision, _ = pr_curve(labels, scores)
    return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))


def _descending_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tp, fp at each distinct score taken as the threshold (descending), and those scores."""
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.append(np.flatnonzero(np.diff(s) != 0), s.size - 1)
    tps = np.cumsum(y)[last].astype(np.float64)
    return tps, (last + 1) - tps, s[last]


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) from (0, 0) to (1, 1), one point per distinct score (``score >=
    threshold`` anomalous; the first point's threshold is +inf)."""
    y, s = _labels_scores(labels, scores)
    tps, fps, t = _descending_counts(y, s)
    fpr = np.concatenate(([0.0], fps / fps[-1]))
    tpr = np.concatenate(([0.0], tps / tps[-1]))
    return fpr, tpr, np.concatenate(([np.inf], t))


def pr_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, thresholds), one point per distinct score, descending thresholds (the
    steps `auprc` sums)."""
    y, s = _labels_scores(labels, scores)
    tps, fps, t = _descending_counts(y, s)
    return tps / tps[-1], tps / (tps + fps), t


def confusion(labels, scores, threshold: float) -> dict:
    """Counts tp, fp, tn, fn with ``score >= threshold`` called anomalous."""
    y, s = _labels_scores(labels, scores, need_both=False)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    pred = s >= threshold
    return {"tp": int((pred & y).sum()), "fp": int((pred & ~y).sum()),
            "tn": int((~pred & ~y).sum()), "fn": int((~pred & y).sum())}


def threshold_metrics(labels, scores, threshold: float) -> dict:
    """f1, accuracy, tpr (recall), tnr, precision at ``threshold`` (``score >= threshold`` is anomalous),
    plus the counts tp, fp, tn, fn. Precision (and so F1) is 0 when nothing is called anomalous."""
    _labels_scores(labels, scores)  # both classes needed: TPR and TNR must be defined
    c = confusion(labels, scores, threshold)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    tpr = tp / (tp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"f1": f1, "accuracy": (tp + tn) / (tp + fp + tn + fn), "tpr": tpr, "tnr": tn / (tn + fp),
            "precision": precision, **c}

"""Choosing the decision threshold on raw anomaly scores, the statistics of `calibrated_normalize`, and
the k-of-n rule for judging a run of verdicts.

Decision rule everywhere: a score ``>= threshold`` is anomalous (as in `edge_sdk.metrics`).

- ``method="f1"`` / ``"accuracy"`` (labelled validation set with both classes): the threshold that
  maximizes F1 / accuracy on it. Candidates lie between consecutive distinct scores (midpoints), so
  the validation decisions do not depend on whether a runtime compares with ``>=`` or ``>``, and a
  margin is left on both sides. Ties of the criterion go to the highest threshold (fewest alarms).
- ``method="quantile"`` (good images only): the ``quantile`` of the normal scores (linear
  interpolation); about ``1 - quantile`` of good parts are then rejected.

`normalization_stats` takes ``min`` and ``max`` from the normal validation scores: they are always
available (no anomalies needed), and the normal spread then maps to a width of 1 around the
threshold (0.5), so normalized scores of good parts stay below 0.5 and anomalies climb towards 1.
"""

from __future__ import annotations

import numpy as np

from edge_sdk.metrics import _labels_scores

METHODS = ("f1", "accuracy", "quantile")


def _candidates(s: np.ndarray) -> np.ndarray:
    """Thresholds between each pair of consecutive distinct scores, plus one below all and one above."""
    u = np.unique(s)
    mids = (u[:-1] + u[1:]) / 2.0
    return np.concatenate(([u[0]], mids, [np.nextafter(u[-1], np.inf)]))


def _sweep(y: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tp, fp, tn (fn follows) at every threshold ``t`` (ascending), with ``s >= t`` anomalous."""
    pos = np.sort(s[y])
    neg = np.sort(s[~y])
    tp = pos.size - np.searchsorted(pos, t, side="left")
    fp = neg.size - np.searchsorted(neg, t, side="left")
    return tp, fp, neg.size - fp


def choose_threshold(scores, labels=None, method: str = "f1", quantile: float = 0.99) -> float:
    """Decision threshold on raw scores (``score >= threshold`` is anomalous). See the module doc.

    scores: validation scores (1-D). labels: 0 good / 1 anomalous, required for "f1" and "accuracy";
    for "quantile" it is optional and, when given, only the good samples' scores are used."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "quantile":
        if not 0.0 < float(quantile) <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        s = np.asarray(scores, dtype=np.float64)
        if labels is not None:
            y, s = _labels_scores(labels, scores, need_both=False)
            s = s[~y]
        if s.ndim != 1 or s.size == 0:
            raise ValueError(f"quantile calibration needs a 1-D array of good-image scores, got shape {s.shape}")
        if not np.isfinite(s).all():
            raise ValueError("scores contain NaN/inf values")
        return float(np.quantile(s, float(quantile)))
    if labels is None:
        raise ValueError(f"method {method!r} needs labels (0 good / 1 anomalous); use method='quantile' "
                         "with good images only")
    y, s = _labels_scores(labels, scores)
    t = _candidates(s)
    tp, fp, tn = _sweep(y, s, t)
    fn = int(y.sum()) - tp
    if method == "f1":
        crit = np.where(tp > 0, 2.0 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    else:
        crit = (tp + tn) / y.size
    best = np.flatnonzero(crit == crit.max())[-1]  # highest threshold among the best
    return float(t[best])


# Below this many normal scores their range is a poor measure of the normal spread (3 scores span
# about 1.7 standard deviations, 30 about 4.1), and a too-narrow spread clips most good parts to 0.
MIN_SPREAD_SCORES = 30
RANGE_OF_30_NORMAL_DRAWS = 4.086  # expected range of 30 draws from a normal distribution, in sigmas


def normalization_stats(scores_normal, threshold: float) -> dict:
    """``dict(threshold, min, max)`` for `edge_sdk.kernels.calibrated_normalize`, with min and max of the
    normal validation scores (see the module doc). Needs at least two distinct scores. With fewer than
    ``MIN_SPREAD_SCORES`` scores, max - min is at least the range that many normal draws would show
    (4.09 sample standard deviations), widened symmetrically about the middle of the scores."""
    s = np.asarray(scores_normal, dtype=np.float64)
    if s.ndim != 1 or s.size < 2:
        raise ValueError(f"scores_normal must be 1-D with at least 2 scores, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores_normal contain NaN/inf values")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    lo, hi = float(s.min()), float(s.max())
    if hi <= lo:
        raise ValueError(f"scores_normal are all equal ({lo}); max - min would be 0 in calibrated_normalize")
    if s.size < MIN_SPREAD_SCORES:
        spread = max(hi - lo, RANGE_OF_30_NORMAL_DRAWS * float(s.std(ddof=1)))
        mid = 0.5 * (lo + hi)
        lo, hi = mid - 0.5 * spread, mid + 0.5 * spread
    return {"threshold": float(threshold), "min": lo, "max": hi}


def calibrate_scores(scores, labels, threshold_method: str | None = None, quantile: float = 0.99,
                     source: str = "validation") -> tuple[dict, dict]:
    """The one calibration of every model: (calibration, metrics) from the raw scores and labels
    (0 good, 1 anomalous) of a calibration set.

    calibration: threshold (``threshold_method``, default "f1" when both classes are present, else
    "quantile"), min / max of `normalization_stats`, the method, the quantile (quantile method
    only), ``source`` and the number of images. metrics: image AUROC, AUPRC and the threshold
    metrics when both classes are present, else {}. ValueError for "f1" / "accuracy" without
    both classes."""
    from edge_sdk import metrics

    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels)
    both = bool((labels == 1).any()) and bool((labels == 0).any())
    method = threshold_method or ("f1" if both else "quantile")
    if method in ("f1", "accuracy") and not both:
        raise ValueError(f"threshold method {method!r} needs validation data with good and anomalous images")
    threshold = choose_threshold(scores, labels if both else None, method=method, quantile=quantile)
    normal = scores[labels == 0] if (labels == 0).any() else scores
    stats = normalization_stats(normal, threshold)
    calibration = {"threshold": float(stats["threshold"]), "min": float(stats["min"]), "max": float(stats["max"]),
                   "method": method, "quantile": quantile if method == "quantile" else None, "source": source,
                   "images": int(len(scores))}
    found = {}
    if both:
        found = {"image_auroc": float(metrics.image_auroc(labels, scores)),
                 "auprc": float(metrics.auprc(labels, scores)),
                 **{k: float(v) for k, v in metrics.threshold_metrics(labels, scores, threshold).items()},
                 "source": source}
    return calibration, found


def _check_k_n(k, n) -> None:
    for name, v in (("k", k), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if k > n:
        raise ValueError(f"k ({k}) must not exceed n ({n})")


def k_of_n_decision(verdicts, k: int = 7, n: int = 10) -> np.ndarray | bool:
    """Run-level decision: anomalous when at least ``k`` of ``n`` per-image verdicts are anomalous.

    verdicts: (..., n) bools or 0/1 (True = anomalous), e.g. n views of one part, or n consecutive
    parts of a run. Returns a bool (1-D input) or a bool array over the leading axes."""
    _check_k_n(k, n)
    v = np.asarray(verdicts)
    if v.ndim == 0 or v.shape[-1] != n:
        raise ValueError(f"verdicts must have n={n} entries on the last axis, got shape {v.shape}")
    if not np.isin(v, (0, 1)).all():
        raise ValueError("verdicts must be booleans or 0/1")
    out = v.astype(bool).sum(axis=-1) >= k
    return bool(out) if out.ndim == 0 else out


def k_of_n_stream(verdicts, k: int = 7, n: int = 10) -> np.ndarray:
    """Sliding k-of-n over a 1-D stream of verdicts: element i (i >= n-1) says whether at least k of
    verdicts[i-n+1 .. i] are anomalous; returns len(verdicts) - n + 1 bools."""
    _check_k_n(k, n)
    v = np.asarray(verdicts)
    if v.ndim != 1 or v.size < n:
        raise ValueError(f"verdicts must be a 1-D stream of at least n={n} entries, got shape {v.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(v, n)
    return np.asarray(k_of_n_decision(windows, k, n))

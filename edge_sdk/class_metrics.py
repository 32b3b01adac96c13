"""Metrics of supervised defect classifiers: class accuracy, macro-F1, per-class precision and
recall, the confusion matrix, and how well the class activation maps point at the defect.

- confusion[i][j]: images of true class i predicted as class j.
- precision / recall / F1 of a class with no prediction / no image are 0 (scikit-learn's
  ``zero_division=0``); macro-F1 is the plain mean over the classes that have images.
- CAM accuracy: among the correctly classified defective images that have a mask with a defect
  pixel, the share whose map peak (first maximum, row-major) lies on a defect pixel.
- CAM IoU: on the same images, intersection over union of (map >= 0.5) and the mask, averaged.
"""

from __future__ import annotations

import numpy as np


def classification_metrics(true, pred, names) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 / support and the confusion matrix of
    class indices ``true`` and ``pred`` (N,) over the classes ``names`` (K). A prediction of -1
    (not judged) counts as wrong for its image and as a prediction of no class."""
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    k = len(names)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"true, pred: expected two (N,) arrays, got shapes {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("true: no images")
    if t.min() < 0 or t.max() >= k:
        raise ValueError(f"true: class indices must lie in 0..{k - 1}")
    if p.min() < -1 or p.max() >= k:
        raise ValueError(f"pred: class indices must lie in -1..{k - 1}")
    conf = np.zeros((k, k), np.int64)
    judged = p >= 0
    np.add.at(conf, (t[judged], p[judged]), 1)
    support = np.bincount(t, minlength=k)
    predicted = conf.sum(axis=0)
    tp = np.diag(conf)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0
    return {
        "accuracy": float((t == p).mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class": {str(names[i]): {"precision": float(precision[i]), "recall": float(recall[i]),
                                      "f1": float(f1[i]), "support": int(support[i])} for i in range(k)},
        "confusion": {"classes": [str(n) for n in names], "matrix": conf.tolist(),
                      "rows": "true class", "columns": "predicted class", "not_judged": int((~judged).sum())},
    }


def cam_localization(maps, masks, threshold: float = 0.5) -> dict:
    """CAM accuracy and mean IoU (see the module doc) over (map, mask) pairs of equal shapes, the
    caller having kept the correctly classified defective images; pairs whose mask has no defect
    pixel are not counted (``skipped``)."""
    hits, ious, skipped = [], [], 0
    for i, (m, g) in enumerate(zip(maps, masks)):
        m, g = np.asarray(m, dtype=np.float32), np.asarray(g) > 0
        if m.shape != g.shape:
            raise ValueError(f"maps[{i}]: shape {m.shape} differs from its mask's {g.shape}")
        if not g.any():
            skipped += 1
            continue
        if not np.isfinite(m).all():
            hits.append(False)
            ious.append(0.0)
            continue
        hits.append(bool(g.flat[int(np.argmax(m))]))
        on = m >= threshold
        ious.append(float((on & g).sum() / (on | g).sum()))
    n = len(hits)
    return {"cam_accuracy": float(np.mean(hits)) if n else None, "cam_iou": float(np.mean(ious)) if n else None,
            "cam_images": n, "cam_skipped_without_mask": skipped, "cam_iou_threshold": float(threshold)}

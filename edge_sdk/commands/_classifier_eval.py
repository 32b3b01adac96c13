"""`edge-sdk eval` on a supervised classifier: class metrics (accuracy, macro-F1, per-class precision
and recall, confusion matrix), CAM localization (accuracy of the map peak, IoU at 0.5) and the
three-way decision's rates (eject = review), besides the image AUROC of 1 - P(good); and heatmap
sheets of the class activation maps. Not a subcommand (the name starts with "_")."""

from __future__ import annotations

import os
import time

import numpy as np

from edge_sdk.class_decision import class_verdicts, rates, top_class
from edge_sdk.class_metrics import cam_localization, classification_metrics
from edge_sdk.runtime import VERDICTS

CAM_TICKS = ((0.0, "0"), (0.5, "0.5 (IoU cut)"), (1.0, "peak"))


def evaluate(model, dataset, *, progress: bool = True) -> tuple[dict, dict]:
    """Metrics of a DefectClassifier on a labelled ``dataset`` and the raw results (scores, labels,
    maps, masks, probabilities, true classes, top classes, verdict codes)."""
    from edge_sdk import metrics

    t0 = time.perf_counter()
    res = model.predict_dataset(dataset, progress=progress, desc="evaluating", keep_maps=True)
    seconds = time.perf_counter() - t0
    probs, y, good = res["probabilities"], res["classes"], model.good
    cal = model.calibration or {}
    if "accept_threshold" in cal:
        codes, top = class_verdicts(probs, good, cal["accept_threshold"], cal["reject_threshold"])
    else:  # not calibrated: classes only, nothing judged
        codes = np.zeros(len(y), np.int8)
        top = top_class(probs)
    defect = y != good
    correct = np.flatnonzero(defect & (top == y))
    out = {"model": model.name, "images": int(len(y)), "anomalous": int(defect.sum()),
           "image_auroc": (float(metrics.image_auroc(defect.astype(np.int64), res["scores"]))
                           if defect.any() and (~defect).any() else None),
           **classification_metrics(y, top, model.classes),
           **cam_localization([res["maps"][i] for i in correct], [res["masks"][i] for i in correct]),
           "accept_threshold": cal.get("accept_threshold"), "reject_threshold": cal.get("reject_threshold")}
    decision = rates(codes, defect)
    out["eject_rate"] = decision["eject_rate"]
    out["decision"] = decision
    out["seconds"] = round(seconds, 3)
    out["ms_per_image"] = round(1000.0 * seconds / max(1, len(y)), 2)
    raw = {"scores": res["scores"], "labels": defect.astype(np.int64), "maps": res["maps"], "masks": res["masks"],
           "probabilities": probs, "classes": y, "top_class": top, "verdicts": codes}
    return out, raw


def write_heatmaps(model, dataset, res: dict, folder: str, count: int) -> list[str]:
    """Sheets image | CAM of the most probable defect class | ground truth for a few images (mostly
    defective), captioned with the verdict, that class's probability and the true class."""
    from edge_sdk.commands.eval import pick_for_heatmaps
    from edge_sdk.heatmap_png import panels, save_png

    names = model.classes
    defects = [k for k in range(len(names)) if k != model.good]
    paths = []
    for i in pick_for_heatmaps(res["labels"], count):
        s = dataset[i]
        p = res["probabilities"][i]
        d = defects[int(np.argmax(p[defects]))]
        word = VERDICTS[int(res["verdicts"][i])]
        top = int(res["top_class"][i])
        caption = (f"{word.upper()}   top {names[top] if top >= 0 else '-'}   P({names[d]}) {p[d]:.3f}   "
                   f"P({names[model.good]}) {p[model.good]:.3f}   (true: {s.defect_type})")
        stem = os.path.splitext(os.path.basename(s.path))[0] if s.path else f"{i:04d}"
        path = os.path.join(folder, f"{i:04d}_{s.defect_type}_{stem}.png")
        save_png(panels(s.image, np.clip(res["maps"][i], 0.0, 1.0), caption, truth=True, mask=s.mask,
                        ticks=CAM_TICKS, heat_label=f"CAM of {names[d]}"), path)
        paths.append(path)
    return paths

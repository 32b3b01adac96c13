"""Parity of a bundle run by the C++ runtime with the PyTorch model it came from, on the same images.

Figures (the acceptance criteria of the runtime: scores to 1e-4 relative, identical verdicts,
heatmaps to 1e-3 after normalization):

- ``max_score_rel_diff``: max |s_runtime - s_torch| / max(|s_torch|, 1e-12) over the judged units;
  a unit passes within 1e-4 relative or 1e-6 absolute (a score near 0, such as a classifier's
  1 - P(good) of a clearly good image, carries float32's absolute rounding, not a relative one);
- ``verdict_agreement``: fraction of units where the runtime's verdict equals the PyTorch model's:
  ``score >= threshold`` -> reject, else accept, for anomaly models ("review" from the runtime
  counts as disagreement); the model's own three-way verdicts for classifiers;
- ``max_heatmap_abs_diff``: max |n(m_runtime) - n(m_torch)| over all pixels, n = the bundle's
  ``calibrated_normalize`` (threshold, min, max), the display normalization of heatmaps;
- plus the raw-map difference and counts. A unit is an image, or a region of a frame when the bundle
  defines regions (then the PyTorch model scores the cut-out region patches).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

SCORE_REL_TOLERANCE = 1e-4
SCORE_ABS_FLOOR = 1e-6
HEATMAP_ABS_TOLERANCE = 1e-3


def _units(manifest: dict, images: Sequence[np.ndarray]):
    """(patches for the PyTorch model, thresholds per patch)."""
    cal = manifest["calibration"]
    regions = manifest.get("regions") or []
    if not regions:
        return list(images), [cal["threshold"]] * len(images)
    patches, thresholds = [], []
    for img in images:
        for r in regions:
            patches.append(np.ascontiguousarray(img[r["y"]:r["y"] + r["height"], r["x"]:r["x"] + r["width"]]))
            thresholds.append(r["threshold"])
    return patches, thresholds


def compare(runtime, model, images: Sequence[np.ndarray], *, batch: int = 16, progress: bool = False) -> dict[str, Any]:
    """Runs ``runtime`` (edge_sdk.Runtime) and ``model`` (its ``predict``) on ``images`` and
    returns the figures of the module doc."""
    from edge_sdk import kernels
    from edge_sdk.runtime import VERDICTS  # names of the C ABI's verdict codes, as the runtime reports them

    manifest = runtime.manifest
    cal = manifest["calibration"]
    regions = manifest.get("regions") or []
    rt_scores, rt_verdicts, rt_maps, errors = [], [], [], []
    pt_scores, pt_maps, pt_verdicts = [], [], []
    chunks = range(0, len(images), batch)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="verify", unit="batch")
    for b in chunks:
        imgs = list(images[b:b + batch])
        res = runtime.predict(imgs, on_error="review")
        patches, _ = _units(manifest, imgs)
        pred = model.predict(patches)
        pt_scores.append(np.asarray(pred.scores, np.float64))
        pt_maps += [np.asarray(m) for m in pred.maps]
        if getattr(pred, "verdicts", None) is not None:  # a classifier: its own three-way rule
            pt_verdicts += [VERDICTS[int(c)] for c in pred.verdicts]
        errors += [e for e in res.errors if e]
        if regions:
            rt_scores.append(res.regions.scores.reshape(-1).astype(np.float64))
            rt_verdicts += list(res.regions.verdicts.reshape(-1))
            for i, img in enumerate(imgs):
                heat = res.heatmaps[i] if res.heatmaps is not None else None
                for r in regions:
                    rt_maps.append(None if heat is None else heat[r["y"]:r["y"] + r["height"], r["x"]:r["x"] + r["width"]])
        else:
            rt_scores.append(res.scores.astype(np.float64))
            rt_verdicts += list(res.verdicts)
            rt_maps += list(res.heatmaps) if res.heatmaps is not None else [None] * len(imgs)
    s_rt, s_pt = np.concatenate(rt_scores), np.concatenate(pt_scores)
    _, thresholds = _units(manifest, images)
    if len(pt_verdicts) == len(s_pt):
        want = np.asarray(pt_verdicts)
    else:
        want = np.where(s_pt >= np.asarray(thresholds), "reject", "accept")
    agree = np.asarray(rt_verdicts) == want
    rel = np.abs(s_rt - s_pt) / np.maximum(np.abs(s_pt), 1e-12)
    scores_ok = np.abs(s_rt - s_pt) <= SCORE_REL_TOLERANCE * np.abs(s_pt) + SCORE_ABS_FLOOR
    heat_norm, heat_raw, heat_rel = 0.0, 0.0, 0.0
    for a, b in zip(rt_maps, pt_maps):
        if a is None:
            continue
        a = np.ascontiguousarray(a, np.float32)
        b = np.ascontiguousarray(b, np.float32)
        if a.shape != b.shape:
            heat_norm = heat_raw = float("inf")
            continue
        na = kernels.calibrated_normalize(a, cal["threshold"], cal["min"], cal["max"])
        nb = kernels.calibrated_normalize(b, cal["threshold"], cal["min"], cal["max"])
        heat_norm = max(heat_norm, float(np.max(np.abs(na - nb))))
        d = float(np.max(np.abs(a.astype(np.float64) - b)))
        heat_raw = max(heat_raw, d)
        heat_rel = max(heat_rel, d / max(float(np.max(np.abs(b))), 1e-12))
    finite = np.isfinite(rel)
    out = {
        "images": len(images),
        "units": int(len(s_pt)),
        "regions": [r["name"] for r in regions],
        "max_score_rel_diff": float(rel[finite].max()) if finite.any() else float("inf"),
        "max_score_abs_diff": float(np.abs(s_rt - s_pt)[finite].max()) if finite.any() else float("inf"),
        "unjudged": int((~finite).sum()),
        "verdict_agreement": float(agree.mean()) if len(agree) else 1.0,
        "verdict_disagreements": int((~agree).sum()),
        "max_heatmap_abs_diff": heat_norm,
        "max_heatmap_raw_abs_diff": heat_raw,
        "max_heatmap_raw_rel_diff": heat_rel,
        "heatmaps_compared": int(sum(m is not None for m in rt_maps)),
        "errors": errors[:20],
        "backend": runtime.backend,
        "precision": runtime.precision,
        "scores_outside_tolerance": int((~scores_ok[finite]).sum()),
        "tolerances": {"score_rel": SCORE_REL_TOLERANCE, "score_abs": SCORE_ABS_FLOOR,
                       "heatmap_abs": HEATMAP_ABS_TOLERANCE},
    }
    out["passed"] = bool(finite.any() and scores_ok[finite].all() and out["verdict_agreement"] == 1.0 and
                         out["unjudged"] == 0 and out["max_heatmap_abs_diff"] <= HEATMAP_ABS_TOLERANCE)
    return out

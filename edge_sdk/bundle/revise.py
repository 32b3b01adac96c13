"""A new version of a bundle with another decision threshold or review band.

Bundles are validated artefacts: a changed threshold is a new bundle, written beside the old one
(never an edit in place), whose manifest records in `lineage` what changed, from what to what, why,
when and from which manifest (its sha256). Networks and arrays are carried over unchanged; a
signature does not carry over (the manifest it signed changed) and TensorRT engines are not copied
(their manifests name the ONNX files, whose embedded manifest changed): re-sign and rebuild.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
from typing import Any

import numpy as np

from edge_sdk.bundle.schema import BundleError


def _float32(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or not math.isfinite(float(np.float32(v))):
        raise BundleError(f"{name}: expected a finite float32, got {value!r}")
    return v


def decision_of(manifest: dict) -> dict:
    """The decision fields a revision may change: threshold, normalization span, review band, and
    the per-region thresholds of a region bundle."""
    cal = manifest.get("calibration") or {}
    out = {"threshold": cal.get("threshold"), "min": cal.get("min"), "max": cal.get("max"),
           "review_band": (manifest.get("decision") or {}).get("review_band", 0.0)}
    if manifest.get("regions"):
        out["regions"] = {r["name"]: r.get("threshold") for r in manifest["regions"]}
    return out


def revise_decision(bundle: str | os.PathLike, out: str | os.PathLike, *, reason: str,
                    threshold: float | None = None, review_band: float | None = None,
                    region_thresholds: dict[str, float] | None = None, method: dict | None = None,
                    overwrite: bool = False) -> dict:
    """Writes the bundle at ``bundle`` with a new ``threshold`` and/or ``review_band`` to ``out``
    (atomically, validated by the runtime's validator before it appears) and returns the lineage
    entry it recorded. The normalization keeps its span (max - min) and moves with the threshold,
    so a normalized score of 0.5 stays the threshold. ``method`` describes how the value was chosen
    (e.g. a target false-accept rate and the data). A region bundle is judged by its per-region
    thresholds: it takes ``region_thresholds`` (region name -> threshold, every region), not
    ``threshold``."""
    from edge_sdk.bundle.reader import manifest_bytes, read_bundle
    from edge_sdk.bundle.writer import write_bundle
    from edge_sdk import __version__

    if not (isinstance(reason, str) and reason.strip()):
        raise BundleError("reason: a revision of a validated bundle needs a reason (recorded in its lineage)")
    if threshold is None and review_band is None and region_thresholds is None:
        raise BundleError("nothing to change: give a threshold, region thresholds and/or a review band")
    if os.path.abspath(os.fspath(out)) == os.path.abspath(os.fspath(bundle)):
        raise BundleError(f"{out}: a revision is a new bundle version; write it beside {bundle}, not over it")
    b = read_bundle(bundle, trusted_keys_from_env=False)
    if b.manifest.get("regions") and threshold is not None:
        raise BundleError(f"{bundle}: has per-region thresholds (regions[].threshold); set those (region "
                          "thresholds), not the image threshold")
    if region_thresholds is not None:
        names = [r["name"] for r in b.manifest.get("regions") or []]
        if not names:
            raise BundleError(f"{bundle}: has no regions; region thresholds apply to region bundles only")
        if sorted(region_thresholds) != sorted(names):
            raise BundleError(f"region_thresholds: expected one threshold for each region {names}, got "
                              f"{sorted(region_thresholds)}")
    if (b.manifest.get("postprocess") or {}).get("kind") == "classifier":
        raise BundleError(f"{bundle}: a classifier bundle is judged by postprocess.accept_threshold and "
                          "reject_threshold, not by calibration.threshold; retrain with other --max-false-accept / "
                          "--max-false-reject targets")
    stored = manifest_bytes(b.path)
    manifest: dict[str, Any] = {k: v for k, v in b.manifest.items() if k != "files"}
    old = decision_of(manifest)
    cal = dict(manifest["calibration"])
    if threshold is not None:
        t = _float32("threshold", threshold)
        shift = t - float(cal["threshold"])
        cal = {**cal, "threshold": t, "min": float(cal["min"]) + shift, "max": float(cal["max"]) + shift}
        manifest["calibration"] = cal
    if region_thresholds is not None:
        manifest["regions"] = [{**r, "threshold": _float32(f"regions.{r['name']}.threshold",
                                                           region_thresholds[r["name"]])}
                               for r in manifest["regions"]]
    if review_band is not None:
        rb = float(review_band)
        if not 0.0 <= rb < 0.5:
            raise BundleError(f"review_band: expected a number in [0, 0.5), got {review_band!r}")
        manifest["decision"] = {**(manifest.get("decision") or {}), "review_band": rb}
    entry = {"change": "decision", "previous_manifest_sha256": hashlib.sha256(stored).hexdigest(),
             "previous_bundle": str(b.path), "old": old, "new": decision_of(manifest), "reason": reason.strip(),
             "method": method or {"kind": "value"},
             "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "sdk_version": __version__}
    manifest["lineage"] = list(manifest.get("lineage") or []) + [entry]
    write_bundle(out, manifest, dict(b.networks), b.arrays, overwrite=overwrite)
    return entry


def threshold_for_rate(good: np.ndarray, defective: np.ndarray, *, false_accept: float | None = None,
                       false_reject: float | None = None) -> tuple[float, dict]:
    """The threshold (reject when score >= threshold) that keeps the false-accept rate (defective
    units accepted) or the false-reject rate (good units rejected) at or below the target on the
    given scores, and the rates it gives there."""
    good = np.sort(np.asarray(good, np.float64))
    bad = np.sort(np.asarray(defective, np.float64))
    if (false_accept is None) == (false_reject is None):
        raise ValueError("give exactly one of false_accept, false_reject")
    if false_accept is not None:
        if bad.size == 0:
            raise ValueError("a false-accept target needs defective images in the data")
        k = int(math.floor(false_accept * bad.size + 1e-9))  # defective units allowed below the threshold
        t = float(bad[k]) if k < bad.size else float(np.nextafter(bad[-1], np.inf))
    else:
        if good.size == 0:
            raise ValueError("a false-reject target needs good images in the data")
        k = int(math.floor(false_reject * good.size + 1e-9))  # good units allowed at or above the threshold
        t = float(np.nextafter(good[good.size - k - 1], np.inf)) if k < good.size else float(good[0])
    rates = {"false_accept_rate": float(np.mean(bad < t)) if bad.size else None,
             "false_reject_rate": float(np.mean(good >= t)) if good.size else None,
             "good": int(good.size), "defective": int(bad.size)}
    return t, rates

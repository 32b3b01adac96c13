"""The three-way decision of supervised classifiers and the calibration of its two thresholds.

Rule (written for the runtime in decision_math.hpp, `classify_verdict`; this is its NumPy twin,
tested equal): with class probabilities p (K,), the good class g, the accept threshold t_a and the
reject threshold t_r,

    top class  = the first index of max(p)
    reject (2) when max over defect classes of p >= t_r   (a defect is confident; checked first:
               rejecting is always safe)
    accept (1) when p[g] >= t_a
    review (0) otherwise ("eject": a person or a second station looks at it), and whenever p holds
               a NaN or infinity (then the top class is -1)

Calibration on a labelled validation split (never the test split): t_a is the lowest threshold
under which at most ``max_false_accept`` of the defective validation images would be accepted, t_r
the lowest under which at most ``max_false_reject`` of the good ones would be rejected; both at
least 0.5 (accepting needs good to be the more probable side, rejecting a defect class above one
half). Candidates lie midway between consecutive distinct probabilities of the validation images, as
in `edge_sdk.calibration`, so a margin is left on both sides. The images neither threshold decides
are the review (eject) rate the targets cost; it is reported with the thresholds.
"""

from __future__ import annotations

import math

import numpy as np

from edge_sdk.runtime import VERDICTS

REVIEW, ACCEPT, REJECT = (VERDICTS.index(word) for word in ("review", "accept", "reject"))
MIN_THRESHOLD = 0.5


def _probabilities(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities: expected (N, K) with K >= 2 classes, got shape {p.shape}")
    return p


def _check_rule(k: int, good: int, accept: float, reject: float) -> None:
    if not 0 <= int(good) < k:
        raise ValueError(f"good: class index {good} outside 0..{k - 1}")
    for name, t in (("accept", accept), ("reject", reject)):
        if not (math.isfinite(float(t)) and 0.0 < float(t) <= 1.0):
            raise ValueError(f"{name} threshold: expected a number in (0, 1], got {t!r}")


def top_class(probs) -> np.ndarray:
    """(N,) int64 first index of the largest probability, -1 where a probability is not finite."""
    p = _probabilities(probs)
    return np.where(np.isfinite(p).all(axis=1), p.argmax(axis=1), -1).astype(np.int64)


def top_defect(probs, good: int) -> np.ndarray:
    """(N,) largest probability among the defect classes (every class but ``good``)."""
    p = _probabilities(probs)
    return np.delete(p, int(good), axis=1).max(axis=1)


def class_verdicts(probs, good: int, accept: float, reject: float) -> tuple[np.ndarray, np.ndarray]:
    """(verdict codes (N,) int8, top class (N,) int64) of the rule in the module doc."""
    p = _probabilities(probs)
    _check_rule(p.shape[1], good, accept, reject)
    top = top_class(p)
    finite = top >= 0
    # float32 probability against the double threshold, as the runtime compares them
    p_good = p[:, int(good)].astype(np.float64)
    q = np.where(finite, top_defect(np.where(finite[:, None], p, 0), good), np.nan).astype(np.float64)
    codes = np.full(len(p), REVIEW, np.int8)
    codes[finite & (p_good >= float(accept))] = ACCEPT
    codes[finite & (q >= float(reject))] = REJECT
    return codes, top


def _lowest_threshold(values: np.ndarray, negatives: np.ndarray, allowed: int) -> float:
    """The lowest candidate t (midpoints of the distinct ``values``, and one above them all) with at
    most ``allowed`` of ``negatives`` >= t."""
    u = np.unique(values.astype(np.float64))
    cands = np.concatenate(([u[0]], (u[:-1] + u[1:]) / 2.0, [np.nextafter(u[-1], np.inf)]))
    neg = np.sort(negatives.astype(np.float64))
    above = neg.size - np.searchsorted(neg, cands, side="left")
    return float(cands[np.flatnonzero(above <= allowed)[0]])


def rates(codes, is_defect) -> dict:
    """Shares of the decision over labelled images: false accepts among the defective, false
    rejects among the good, and reviews (ejects) among all."""
    codes = np.asarray(codes)
    d = np.asarray(is_defect, dtype=bool)
    n_d, n_g = int(d.sum()), int((~d).sum())
    return {
        "images": int(codes.size), "defective": n_d, "good": n_g,
        "accept": int((codes == ACCEPT).sum()), "reject": int((codes == REJECT).sum()),
        "review": int((codes == REVIEW).sum()),
        "false_accept_rate": float(((codes == ACCEPT) & d).sum() / n_d) if n_d else None,
        "false_reject_rate": float(((codes == REJECT) & ~d).sum() / n_g) if n_g else None,
        "eject_rate": float((codes == REVIEW).mean()) if codes.size else None,
    }


def calibrate_thresholds(probs, classes, good: int, *, max_false_accept: float = 0.01,
                         max_false_reject: float = 0.01) -> dict:
    """Accept / reject thresholds on validation probabilities (N, K) with true class indices
    ``classes`` (N,); see the module doc. Returns the thresholds, the targets and the rates they
    give on these images. ValueError naming the argument when the split lacks good or defective
    images or holds non-finite probabilities."""
    p = _probabilities(probs)
    y = np.asarray(classes, dtype=np.int64)
    if y.shape != (len(p),):
        raise ValueError(f"classes: expected shape ({len(p)},), got {y.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities: NaN or infinite values in the validation probabilities")
    for name, v in (("max_false_accept", max_false_accept), ("max_false_reject", max_false_reject)):
        if not 0.0 <= float(v) < 1.0:
            raise ValueError(f"{name}: expected a share in [0, 1), got {v}")
    _check_rule(p.shape[1], good, 1.0, 1.0)
    defect = y != int(good)
    if not defect.any() or defect.all():
        raise ValueError(f"validation split: needs good and defective images to calibrate on; it has "
                         f"{int((~defect).sum())} good and {int(defect.sum())} defective")
    p_good, q = p[:, int(good)], top_defect(p, good)
    # floor(share * n) wrong decisions allowed (a target of 1 % on 60 images allows none)
    fa = int(math.floor(float(max_false_accept) * int(defect.sum()) + 1e-9))
    fr = int(math.floor(float(max_false_reject) * int((~defect).sum()) + 1e-9))
    accept = max(MIN_THRESHOLD, _lowest_threshold(p_good, p_good[defect], fa))
    reject = max(MIN_THRESHOLD, _lowest_threshold(q, q[~defect], fr))
    # a threshold above 1 would never be met by a probability: 1 is the strictest usable one
    accept, reject = min(accept, 1.0), min(reject, 1.0)
    codes, _ = class_verdicts(p, good, accept, reject)
    return {"accept_threshold": accept, "reject_threshold": reject, "max_false_accept": float(max_false_accept),
            "max_false_reject": float(max_false_reject), "validation": rates(codes, defect)}

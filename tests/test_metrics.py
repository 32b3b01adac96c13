"""Metrics against scikit-learn and a slow threshold-sweep reference of PRO, on fresh random data."""

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from edge_sdk.metrics import (auprc, image_auroc, image_auroc_bootstrap, pixel_auroc, pro_curve, pro_score,
                              threshold_metrics)


def _labels(rng, n, p=0.4):
    y = (rng.random(n) < p).astype(int)
    y[0], y[1] = 0, 1  # both classes
    return y


@pytest.mark.parametrize("n", [2, 7, 100, 5000])
def test_image_auroc_and_auprc_match_sklearn(rng, n):
    y = _labels(rng, n)
    for s in (rng.standard_normal(n) + y,            # continuous
              np.round(rng.random(n) * 4 + y),       # many ties
              np.zeros(n)):                           # all tied
        assert image_auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert auprc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert image_auroc(y, y * 1.0) == 1.0 and image_auroc(y, -y * 1.0) == 0.0
    assert auprc(y, y * 1.0) == 1.0


def test_one_class_and_bad_input_raise():
    with pytest.raises(ValueError, match="one class"):
        image_auroc([0, 0, 0], [1, 2, 3])
    with pytest.raises(ValueError, match="one class"):
        auprc([1, 1], [1, 2])
    with pytest.raises(ValueError, match="one class"):
        threshold_metrics([0, 0], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match="differ in length"):
        image_auroc([0, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        image_auroc([0, 1], [np.nan, 2])
    with pytest.raises(ValueError, match="labels must be 0"):
        image_auroc([0, 2], [1, 2])
    with pytest.raises(ValueError, match="no defect pixels"):
        pixel_auroc([np.zeros((3, 3))], [np.ones((3, 3))])
    with pytest.raises(ValueError, match="no defect-free"):
        pixel_auroc([np.ones((3, 3))], [np.ones((3, 3))])
    with pytest.raises(ValueError, match="masks\\[1\\] has shape"):
        pixel_auroc([np.ones((3, 3)), np.zeros((2, 3))], [np.ones((3, 3)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="binary"):
        pixel_auroc([np.full((3, 3), 255)], [np.ones((3, 3))])
    with pytest.raises(ValueError, match="no defect region"):
        pro_score([None, np.zeros((4, 4))], [np.ones((4, 4))] * 2)
    with pytest.raises(ValueError, match="fpr_limit"):
        pro_score([np.eye(4)], [np.ones((4, 4))], fpr_limit=0)


def _random_masks_maps(rng, n=6, h=24, w=20, signal=1.0):
    masks, maps = [], []
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        if i % 3:
            for _ in range(int(rng.integers(1, 4))):
                y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
                m[y:y + int(rng.integers(1, 6)), x:x + int(rng.integers(1, 6))] = 1
        masks.append(m if m.any() else None)
        maps.append(rng.standard_normal((h, w)) + signal * m)
    return masks, maps


def test_pixel_auroc_matches_sklearn(rng):
    masks, maps = _random_masks_maps(rng, n=8)
    flat_y = np.concatenate([(np.zeros_like(a) if m is None else m).ravel() for m, a in zip(masks, maps)])
    flat_s = np.concatenate([a.ravel() for a in maps])
    ref = roc_auc_score(flat_y, flat_s)
    assert pixel_auroc(masks, maps) == pytest.approx(ref, abs=1e-12)
    # array inputs, and images of different sizes
    assert pixel_auroc(np.stack([m if m is not None else np.zeros((24, 20)) for m in masks]),
                       np.stack(maps)) == pytest.approx(ref, abs=1e-12)
    m2, a2 = _random_masks_maps(rng, n=3, h=13, w=31)
    y2 = np.concatenate([flat_y] + [(np.zeros_like(a) if m is None else m).ravel() for m, a in zip(m2, a2)])
    s2 = np.concatenate([flat_s] + [a.ravel() for a in a2])
    assert pixel_auroc(masks + m2, maps + a2) == pytest.approx(roc_auc_score(y2, s2), abs=1e-12)


def test_pixel_auroc_binned_path_close_to_exact(rng):
    masks, maps = _random_masks_maps(rng, n=12, h=256, w=256, signal=0.7)
    maps = [np.exp(a) for a in maps]  # skewed scores
    maps[0] = np.round(maps[0], 1)   # some ties
    exact = pixel_auroc(masks, maps)
    binned = pixel_auroc(masks, maps, max_exact_pixels=0)
    assert abs(binned - exact) < 1e-4, (binned, exact)


def _pro_reference(masks, maps, limit):
    """Straightforward: every distinct score as threshold; regions by 8-connected labelling; then the
    trapezoid of PRO over FPR from 0 to the limit, the last piece interpolated."""
    masks = [np.zeros(a.shape, bool) if m is None else m.astype(bool) for m, a in zip(masks, maps)]
    regions = []
    for i, m in enumerate(masks):
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [(i, lab == k) for k in range(1, n + 1)]
    n_ok = sum((~m).sum() for m in masks)
    pts = [(0.0, 0.0)]
    for t in np.unique(np.concatenate([a.ravel() for a in maps]))[::-1]:
        fpr = sum(((a >= t) & ~m).sum() for a, m in zip(maps, masks)) / n_ok
        pro = np.mean([((maps[i] >= t) & r).sum() / r.sum() for i, r in regions])
        pts.append((fpr, pro))
    pts.append((1.0, 1.0))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        if x0 >= limit:
            break
        if x1 > limit:
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += 0.5 * (y0 + y1) * (x1 - x0)
    return area / limit


@pytest.mark.parametrize("limit", [0.3, 0.05, 1.0])
def test_pro_matches_slow_reference(rng, limit):
    masks, maps = _random_masks_maps(rng, n=5, h=14, w=12, signal=1.5)
    assert pro_score(masks, maps, limit) == pytest.approx(_pro_reference(masks, maps, limit), abs=1e-12)
    tied = [np.round(a) for a in maps]  # heavy ties
    assert pro_score(masks, tied, limit) == pytest.approx(_pro_reference(masks, tied, limit), abs=1e-12)


def test_pro_regions_are_weighted_equally():
    """One big region found, one small region missed: PRO counts each region once, whatever its size
    (unlike pixel TPR); diagonal-touching pixels are one region (8-connectivity)."""
    m = np.zeros((20, 20), np.uint8)
    m[2:12, 2:12] = 1            # 100 px, found
    m[15, 15] = m[16, 16] = 1    # 2 px diagonal: one region, missed
    a = np.zeros((20, 20))
    a[2:12, 2:12] = 1.0
    fprs, pros = pro_curve([m], [a])
    assert pros[1] == pytest.approx(0.5) and fprs[1] == 0.0
    # perfect maps give 1, constant maps give the area under the diagonal from (0,0) to (1,1)
    assert pro_score([m], [m.astype(float)]) == pytest.approx(1.0)
    assert pro_score([m], [np.zeros((20, 20))]) == pytest.approx(0.15)  # integral of x from 0 to 0.3, / 0.3


def test_threshold_metrics(rng):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    y = _labels(rng, 300)
    s = rng.standard_normal(300) + 1.5 * y
    for t in (-5.0, 0.0, 0.7, float(np.sort(s)[150]), 9.0):
        got = threshold_metrics(y, s, t)
        pred = (s >= t).astype(int)
        assert got["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
        assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert got["tpr"] == pytest.approx(recall_score(y, pred))
        assert got["tnr"] == pytest.approx(recall_score(1 - y, 1 - pred))
        assert got["precision"] == pytest.approx(precision_score(y, pred, zero_division=0))
        assert got["tp"] + got["fp"] + got["tn"] + got["fn"] == 300
    with pytest.raises(ValueError, match="finite"):
        threshold_metrics(y, s, float("nan"))


@pytest.mark.parametrize("n", [7, 200])
def test_roc_and_pr_curves_match_sklearn(rng, n):
    from sklearn.metrics import precision_recall_curve, roc_curve as sk_roc

    from edge_sdk.metrics import pr_curve, roc_curve

    labels = rng.integers(0, 2, n)
    labels[:2] = (0, 1)
    scores = np.round(rng.random(n) * 10) / 10  # ties
    fpr, tpr, thr = roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thr = sk_roc(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    recall, precision, pthr = pr_curve(labels, scores)
    sk_p, sk_r, sk_t = precision_recall_curve(labels, scores)
    # sklearn: ascending thresholds, with a final (recall 0, precision 1) point
    np.testing.assert_allclose(recall, sk_r[:-1][::-1])
    np.testing.assert_allclose(precision, sk_p[:-1][::-1])
    np.testing.assert_allclose(pthr, sk_t[::-1])


def test_auroc_bootstrap_matches_sklearn_on_the_same_resamples(rng):
    y = _labels(rng, 60)
    a, b = rng.standard_normal(60) + y, rng.standard_normal(60) + 0.5 * y
    got = image_auroc_bootstrap(y, a, b, reps=300, level=0.9, seed=3)
    # The same stratified draws, scored by scikit-learn.
    r = np.random.default_rng(3)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    aucs, diffs = [], []
    for _ in range(300):
        idx = np.concatenate([r.choice(pos, pos.size), r.choice(neg, neg.size)])
        aucs.append(roc_auc_score(y[idx], a[idx]))
        diffs.append(aucs[-1] - roc_auc_score(y[idx], b[idx]))
    assert got["auroc"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert (got["low"], got["high"]) == pytest.approx(tuple(np.percentile(aucs, [5, 95])), abs=1e-12)
    assert got["difference"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert (got["difference_low"], got["difference_high"]) == pytest.approx(tuple(np.percentile(diffs, [5, 95])),
                                                                            abs=1e-12)


def test_auroc_bootstrap_covers_the_true_auroc():
    # Scores N(0, 1) for good and N(1, 1) for anomalous images: true AUROC = Phi(1 / sqrt(2)).
    from scipy.stats import norm

    truth, hits, sims = norm.cdf(1 / np.sqrt(2)), 0, 200
    rng = np.random.default_rng(7)
    for i in range(sims):
        y = np.repeat([0, 1], [60, 40])
        ci = image_auroc_bootstrap(y, rng.standard_normal(100) + y, reps=400, seed=i)
        assert ci["low"] <= ci["auroc"] <= ci["high"]
        hits += ci["low"] <= truth <= ci["high"]
    assert 0.88 <= hits / sims <= 0.99, hits  # nominal 0.95; percentile intervals run a little narrow


def test_auroc_bootstrap_paired_difference_and_bad_input(rng):
    y = _labels(rng, 80)
    s = rng.standard_normal(80) + y
    same = image_auroc_bootstrap(y, s, s.copy(), reps=50)
    assert same["difference"] == same["difference_low"] == same["difference_high"] == 0.0
    better = image_auroc_bootstrap(y, 4.0 * y + 0.1 * rng.standard_normal(80), s, reps=200)
    assert better["difference_low"] > 0
    with pytest.raises(ValueError, match="reps: expected 1..100000"):
        image_auroc_bootstrap(y, s, reps=0)
    with pytest.raises(ValueError, match="level"):
        image_auroc_bootstrap(y, s, level=1.0)
    with pytest.raises(ValueError, match="differ in length"):
        image_auroc_bootstrap(y, s, s[:5])

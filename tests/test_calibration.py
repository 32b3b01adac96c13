"""Threshold choice against brute force over all thresholds, normalization stats, k-of-n rule."""

import numpy as np
import pytest

from edge_sdk.calibration import (choose_threshold, k_of_n_decision, k_of_n_stream, normalization_stats)
from edge_sdk.metrics import threshold_metrics


def _data(rng, n=200, ties=False):
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    s = rng.standard_normal(n) + 1.2 * y
    return y, (np.round(s, 1) if ties else s)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("method,key", [("f1", "f1"), ("accuracy", "accuracy")])
def test_optimal_threshold_is_optimal(rng, method, key, ties):
    y, s = _data(rng, ties=ties)
    t = choose_threshold(s, y, method=method)
    got = threshold_metrics(y, s, t)[key]
    # brute force: every observed score as a threshold, and one above all
    best = max(threshold_metrics(y, s, c)[key] for c in np.append(np.unique(s), s.max() + 1))
    assert got == pytest.approx(best, abs=1e-12)
    # the threshold sits strictly between scores: '>=' and '>' decide the same on the validation set
    assert not np.any(s == t) or t == s.min()
    assert np.array_equal(s >= t, s > t) or t == s.min()


def test_accuracy_can_choose_to_reject_nothing():
    y = np.array([0] * 9 + [1])
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.35])  # the anomaly is not separable
    t = choose_threshold(s, y, method="accuracy")
    assert threshold_metrics(y, s, t)["accuracy"] == pytest.approx(0.9)
    assert (s >= t).sum() == 0 and t > s.max()


def test_quantile_threshold(rng):
    s = rng.standard_normal(1001)
    t = choose_threshold(s, method="quantile", quantile=0.99)
    assert t == pytest.approx(np.quantile(s, 0.99))
    assert (s >= t).mean() == pytest.approx(0.01, abs=2e-3)
    # with labels, anomalies are ignored
    y = np.r_[np.zeros(1001, int), np.ones(5, int)]
    assert choose_threshold(np.r_[s, [50.0] * 5], y, method="quantile", quantile=0.99) == pytest.approx(t)
    assert choose_threshold(s, method="quantile", quantile=1.0) == s.max()


def test_choose_threshold_errors(rng):
    y, s = _data(rng)
    with pytest.raises(ValueError, match="needs labels"):
        choose_threshold(s, method="f1")
    with pytest.raises(ValueError, match="one class"):
        choose_threshold(s, np.zeros_like(y), method="f1")
    with pytest.raises(ValueError, match="method"):
        choose_threshold(s, y, method="youden")
    with pytest.raises(ValueError, match="quantile"):
        choose_threshold(s, method="quantile", quantile=0.0)
    with pytest.raises(ValueError, match="good-image scores"):
        choose_threshold([], method="quantile")


def test_normalization_stats(rng):
    s = rng.random(50) * 3 + 1
    st = normalization_stats(s, 3.5)
    assert st == {"threshold": 3.5, "min": float(s.min()), "max": float(s.max())}
    # the threshold maps to 0.5 in calibrated_normalize: clip((x - t) / (max - min) + 0.5, 0, 1)
    x = np.array([st["threshold"]])
    assert float(np.clip((x - st["threshold"]) / (st["max"] - st["min"]) + 0.5, 0, 1)[0]) == 0.5
    with pytest.raises(ValueError, match="all equal"):
        normalization_stats([2.0, 2.0, 2.0], 2.0)
    with pytest.raises(ValueError, match="at least 2"):
        normalization_stats([1.0], 2.0)
    with pytest.raises(ValueError, match="threshold"):
        normalization_stats(s, float("inf"))


def test_normalization_from_few_scores_keeps_good_parts_off_zero(rng):
    """A 0.99 quantile of 3 good scores is about their maximum, and their range about 1.7 sigma: the
    display normalization then clipped most good parts to 0. Below 30 scores the spread is the range
    30 normal draws would show, so further good parts of the same distribution are clipped
    to 0 half as often, and from 30 scores on the range is used as it is."""
    from edge_sdk import kernels

    clipped_range, clipped_stats = [], []
    for _ in range(200):
        few = rng.normal(10.0, 2.0, 3)
        t = float(np.quantile(few, 0.99))
        st = normalization_stats(few, t)
        assert st["max"] - st["min"] >= 4.086 * few.std(ddof=1) - 1e-12
        assert np.isclose(0.5 * (st["min"] + st["max"]), 0.5 * (few.min() + few.max()))
        later = rng.normal(10.0, 2.0, 100).astype(np.float32)
        normed = kernels.calibrated_normalize(later, t, st["min"], st["max"])
        clipped_stats.append(float((normed == 0.0).mean()))
        narrow = np.clip((later - t) / (few.max() - few.min()) + 0.5, 0, 1)
        clipped_range.append(float((narrow == 0.0).mean()))
    # measured over 2000 draws: 50 % of good parts clipped to 0 with the plain range, 23 % now (the
    # standard deviation of 3 scores is itself noisy)
    assert np.mean(clipped_range) > 0.4
    assert np.mean(clipped_stats) < 0.3 and np.mean(clipped_stats) < 0.6 * np.mean(clipped_range)
    many = rng.normal(10.0, 2.0, 30)
    assert normalization_stats(many, 12.0) == {"threshold": 12.0, "min": float(many.min()), "max": float(many.max())}


def test_k_of_n(rng):
    assert k_of_n_decision([1] * 7 + [0] * 3) is True
    assert k_of_n_decision([1] * 6 + [0] * 4) is False
    v = rng.random((50, 10)) < 0.6
    np.testing.assert_array_equal(k_of_n_decision(v, 7, 10), v.sum(axis=1) >= 7)
    stream = rng.random(40) < 0.5
    ref = np.array([stream[i:i + 5].sum() >= 3 for i in range(36)])
    np.testing.assert_array_equal(k_of_n_stream(stream, 3, 5), ref)
    with pytest.raises(ValueError, match="n=10"):
        k_of_n_decision([1] * 9)
    with pytest.raises(ValueError, match="exceed"):
        k_of_n_decision([1] * 10, k=11)
    with pytest.raises(ValueError, match="booleans"):
        k_of_n_decision([2] * 10)
    with pytest.raises(ValueError, match="positive int"):
        k_of_n_stream(stream, 3, 0)

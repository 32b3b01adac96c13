"""edge_sdk.bench statistics, budget verdict, options and the comparison of two records, on
synthetic numbers (no runtime needed, no timing)."""

import json

import numpy as np
import pytest

from edge_sdk.bench import compare_records, format_table, load_record
from edge_sdk.bench.config import BenchConfig, BenchError, apply_preset, parse_batches, parse_shape
from edge_sdk.bench.stats import (bootstrap_ratio_ci, budget_verdict, cycle_latencies, iqr_overlap,
                                  summarize)


def test_summary_percentiles_match_numpy(rng):
    x = rng.lognormal(1.0, 0.6, size=int(rng.integers(5, 400)))
    s = summarize(x)
    for name, q in (("p25", 25), ("p50", 50), ("p75", 75), ("p90", 90), ("p99", 99)):
        assert s[name] == pytest.approx(np.percentile(x, q), rel=1e-12)
    assert s["max"] == x.max() and s["min"] == x.min() and s["count"] == x.size
    assert s["mean"] == pytest.approx(x.mean())
    with pytest.raises(ValueError, match="no samples"):
        summarize([])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, np.nan])


def test_cycles_are_consecutive_groups():
    calls = [1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_array_equal(cycle_latencies(calls, 3), [6, 15])  # the incomplete last group is dropped
    np.testing.assert_array_equal(cycle_latencies(calls, 1), calls)
    with pytest.raises(ValueError, match="calls_per_cycle"):
        cycle_latencies(calls, 0)


def test_budget_verdict_by_hand():
    cycles = np.array([100.0] * 95 + [400.0] * 4 + [600.0])  # 99 of 100 within 500 ms
    v = budget_verdict(cycles, 500.0, 60, required_fraction=0.99)
    assert v["cycles"] == 100 and v["cycles_within_budget"] == 99
    assert v["fraction_within_budget"] == pytest.approx(0.99)
    assert v["fits"] is True
    q = np.quantile(cycles, 0.99)
    assert v["cycle_ms_at_required_fraction"] == pytest.approx(q)
    assert v["max_units_per_minute"] == pytest.approx(60 * 60000 / q)
    assert v["line_units_per_minute"] == pytest.approx(60 * 60000 / 500)
    # One more slow cycle: 98 % within, below the required 99 %.
    v2 = budget_verdict(np.append(cycles[1:], 700.0), 500.0, 60)
    assert v2["fraction_within_budget"] == pytest.approx(0.98) and v2["fits"] is False
    # A cycle exactly at the budget is within it.
    assert budget_verdict([500.0, 500.0], 500.0, 1)["fraction_within_budget"] == 1.0
    # A looser requirement turns the same measurements into a fit.
    assert budget_verdict(np.append(cycles[1:], 700.0), 500.0, 60, required_fraction=0.95)["fits"] is True


@pytest.mark.parametrize("kwargs, match", [
    (dict(budget_ms=0.0), "budget_ms"), (dict(budget_ms=float("nan")), "budget_ms"),
    (dict(units_per_cycle=0), "units_per_cycle"), (dict(required_fraction=0.0), "required_fraction"),
    (dict(required_fraction=1.5), "required_fraction")])
def test_budget_verdict_bad_arguments(kwargs, match):
    args = dict(budget_ms=500.0, units_per_cycle=60, required_fraction=0.99)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        budget_verdict([1.0, 2.0], **args)


def test_bootstrap_interval(rng):
    a = rng.normal(10.0, 1.0, 300)
    # The same measurements in another order (a fresh draw would fall outside a 95 % interval
    # in 5 % of runs, and the test with it).
    same = rng.permutation(a)
    half = a * 0.5 + rng.normal(0, 0.05, 300)
    med = lambda x: np.median(x, axis=1)  # noqa: E731
    r, lo, hi = bootstrap_ratio_ci(a, same, med)
    assert r == pytest.approx(np.median(same) / np.median(a))
    assert lo <= 1.0 <= hi
    r, lo, hi = bootstrap_ratio_ci(a, half, med)
    assert hi < 1.0 and lo <= r <= hi and r == pytest.approx(0.5, rel=0.05)
    # Same seed, same interval.
    assert bootstrap_ratio_ci(a, half, med, seed=3) == bootstrap_ratio_ci(a, half, med, seed=3)


def test_iqr_overlap():
    assert iqr_overlap(1, 3, 2, 4) and iqr_overlap(1, 3, 3, 5)
    assert not iqr_overlap(1, 2, 2.5, 4)


# ---- comparison of two records ------------------------------------------------------------------

def _record(rng, scale=1.0, batches=(1, 8), n=200, samples=True, device="cpu", budget=False):
    results = []
    for b in batches:
        calls = rng.gamma(20.0, 0.5 * b, n) * scale
        net = calls * 0.8
        r = {
            "batch": b,
            "latency_ms": {"per_batch": summarize(calls), "per_image": summarize(calls / b),
                           "runtime_total_per_batch": summarize(calls * 0.95)},
            "throughput_images_per_s": float(b * n / (calls.sum() / 1e3)),
            "breakdown": {s: {"mean_ms": 0.0, "p50_ms": 0.0} for s in
                          ("preprocess", "host_to_device", "network", "postprocess", "device_to_host", "decision")},
            "memory": {"peak_rss_bytes": 100 * 2**20, "peak_device_bytes": None},
            "cycle_ms": summarize(calls),
            "budget": {"units_per_cycle": b, "max_units_per_minute": 1000.0} if budget else None,
        }
        r["breakdown"]["network"] = {"mean_ms": float(net.mean()), "p50_ms": float(np.median(net))}
        if samples:
            zeros = [0.0] * n
            r["samples"] = {"call_ms": calls.tolist(), "call_images": [b] * n, "cycle_ms": calls.tolist(),
                            "stages_ms": {"preprocess": zeros, "host_to_device": zeros, "network": net.tolist(),
                                          "postprocess": zeros, "device_to_host": zeros, "decision": zeros,
                                          "total": (calls * 0.95).tolist()}}
        results.append(r)
    return {"schema": "edge-sdk-bench", "schema_version": 1, "results": results,
            "config": {"device": device, "precision": "fp32"}, "environment": {"cpu_model": "x"},
            "bundle": {"sha256": "0" * 64}}


def _rows(cmp, metric, batch=8):
    return next(r for r in cmp["rows"] if r["metric"] == metric and r["batch"] == batch)


def test_compare_flags_a_real_speedup(rng):
    a, b = _record(rng), _record(rng, scale=0.5)
    cmp = compare_records(a, b)
    row = _rows(cmp, "latency p50 per batch")
    assert row["ratio"] == pytest.approx(b["results"][1]["latency_ms"]["per_batch"]["p50"] /
                                         a["results"][1]["latency_ms"]["per_batch"]["p50"])
    assert row["significant"] is True and row["better"] == "B" and row["ci_high"] < 1.0
    thr = _rows(cmp, "throughput")
    assert thr["ratio"] > 1.5 and thr["significant"] is True and thr["better"] == "B"
    net = _rows(cmp, "stage network p50")
    assert net["significant"] is True
    # Stages that are zero on both sides (host<->device copies on the CPU) are left out.
    assert not any(r["metric"] == "stage host_to_device p50" for r in cmp["rows"])
    # Single values carry no spread.
    assert _rows(cmp, "latency max per batch")["significant"] is None
    assert _rows(cmp, "peak RSS")["significant"] is None


def test_compare_flags_noise_as_insignificant(rng):
    # Run-to-run noise: B holds A's calls in another order, each off by up to 0.5 %.
    a = _record(rng)
    b = json.loads(json.dumps(a))
    for r in b["results"]:
        calls = np.asarray(r["samples"]["call_ms"])
        calls = rng.permutation(calls) * rng.uniform(0.995, 1.005, calls.size)
        r["samples"]["call_ms"] = calls.tolist()
        r["latency_ms"]["per_batch"] = summarize(calls)
        r["latency_ms"]["per_image"] = summarize(calls / r["batch"])
    cmp = compare_records(a, b)
    row = _rows(cmp, "latency p50 per batch")
    assert row["significant"] is False and row["better"] == ""
    assert row["ci_low"] <= 1.0 <= row["ci_high"]
    text = format_table(cmp, "a.json", "b.json")
    assert "insignificant" in text and "a.json" in text


def test_compare_without_samples_uses_iqr(rng):
    a, b = _record(rng, samples=False), _record(rng, scale=0.3, samples=False)
    row = _rows(compare_records(a, b), "latency p50 per batch")
    assert row["significant"] is True and row["ci_low"] is None and row["better"] == "B"
    c = _record(rng, samples=False)
    assert _rows(compare_records(a, c), "latency p50 per batch")["significant"] is False


def test_compare_reports_mismatches(rng):
    a = _record(rng, batches=(1, 8))
    b = _record(rng, batches=(8, 60), device="cuda:0")
    cmp = compare_records(a, b)
    assert cmp["batches"] == [8] and cmp["only_in_a"] == [1] and cmp["only_in_b"] == [60]
    assert cmp["differences"]["config.device"] == ("cpu", "cuda:0")


def test_load_record_errors(tmp_path, rng):
    with pytest.raises(BenchError, match="no such benchmark record"):
        load_record(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BenchError, match="bad.json"):
        load_record(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(BenchError, match="not an edge-sdk bench record"):
        load_record(other)
    rec = _record(rng)
    del rec["results"][0]["memory"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(rec))
    with pytest.raises(BenchError, match=r"results\[0\] lacks field 'memory'"):
        load_record(partial)


# ---- options -------------------------------------------------------------------------------------

def test_option_parsing_and_validation():
    assert parse_batches("1, 8,60") == (1, 8, 60)
    assert parse_shape("256x256x1") == (256, 256, 1) and parse_shape("64x48") == (64, 48, 3)
    with pytest.raises(BenchError, match="--batch"):
        parse_batches("1,eight")
    with pytest.raises(BenchError, match="--shape"):
        parse_shape("256xx")
    for kwargs, match in ((dict(batches=(0,)), "--batch"), (dict(batches=(8, 8)), "repeated"),
                          (dict(iterations=0), "--iterations"), (dict(budget_ms=-1.0), "--budget"),
                          (dict(batches=(1, 120), units_per_cycle=60), r"\[120\] exceed --units 60"),
                          (dict(precision="fp8"), "--precision"), (dict(backend="tensorflow"), "--backend"),
                          (dict(threads=0), "--threads"), (dict(required_fraction=2.0), "--required")):
        with pytest.raises(BenchError, match=match):
            BenchConfig("b", **kwargs).validate()


def test_cycle_layout():
    cfg = BenchConfig("b", batches=(1, 8, 60), units_per_cycle=60).validate()
    assert cfg.call_sizes(8) == [8] * 7 + [4] and cfg.calls_per_cycle(8) == 8
    assert cfg.call_sizes(60) == [60] and cfg.call_sizes(1) == [1] * 60
    assert BenchConfig("b", batches=(8,)).call_sizes(8) == [8]  # no units: one call per cycle


def test_presets():
    cfg = apply_preset(BenchConfig("b"), "vial-line", batches_given=False, budget_given=False, units_given=False)
    assert cfg.batches == (1, 8, 60) and cfg.image_shape == (256, 256, 1)
    assert cfg.budget_ms == 500.0 and cfg.units_per_cycle == 60
    cfg = apply_preset(BenchConfig("b", batches=(60,), budget_ms=250.0), "vial-line", batches_given=True,
                       budget_given=True, units_given=False)
    assert cfg.batches == (60,) and cfg.budget_ms == 250.0
    cfg = apply_preset(BenchConfig("b"), "mvtec", batches_given=False, budget_given=False, units_given=False)
    assert cfg.batches == (1, 8) and cfg.image_shape == (256, 256, 3) and cfg.budget_ms is None
    with pytest.raises(BenchError, match="--preset"):
        apply_preset(BenchConfig("b"), "nope", batches_given=False, budget_given=False, units_given=False)
    with pytest.raises(BenchError, match="excludes --images"):
        apply_preset(BenchConfig("b", images_dir="x"), "mvtec", batches_given=False, budget_given=False,
                     units_given=False)

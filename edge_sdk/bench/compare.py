"""Comparing two benchmark records: per-metric ratios B / A for each batch size both measured,
each flagged insignificant when the run-to-run spread covers the difference.

Significance: for metrics computed from samples (latency percentiles, stage medians, throughput)
a percentile-bootstrap confidence interval (95 %, 2000 resamples, fixed seed) of the ratio; the
difference is insignificant when the interval contains 1. When a record carries no samples, the
medians are judged by overlap of the inter-quartile ranges. Single measurements (peak memory,
maximum latency) carry no spread: their ratio is shown, unflagged ("n/a"), and name no winner.
The intervals cover the spread within each run, not a change of machine load between the runs:
the table shows each run's load average so that such a comparison can be discounted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from edge_sdk.bench.runner import STAGES
from edge_sdk.bench.stats import bootstrap_ratio_ci, iqr_overlap

LEVEL = 0.95


@dataclass
class Row:
    batch: int
    metric: str
    unit: str
    a: float | None
    b: float | None
    ratio: float | None           # b / a
    ci_low: float | None
    ci_high: float | None
    significant: bool | None      # None: no spread to judge by
    better: str                   # "A", "B" or "" (equal / not judged)
    lower_is_better: bool


def _median(x: np.ndarray) -> np.ndarray:
    return np.median(x, axis=1)


def _pct(q: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.percentile(x, q, axis=1)


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1)


def _full_calls(result: dict, key: str | None = None) -> np.ndarray | None:
    s = result.get("samples")
    if not s:
        return None
    if key is not None and key not in s["stages_ms"]:
        return None
    mask = np.asarray(s["call_images"]) == result["batch"]
    v = np.asarray(s["call_ms"] if key is None else s["stages_ms"][key], np.float64)
    return v[mask] if mask.any() else None


def _stage_p50(result: dict, stage: str) -> float | None:
    if stage == "total":
        return result["latency_ms"]["runtime_total_per_batch"]["p50"]
    key = "postprocess_maps" if stage == "maps" else stage
    return result["breakdown"].get(key, {}).get("p50_ms")


def _row(batch, metric, unit, a, b, lower_is_better, ci=None, significant=None) -> Row:
    ratio = (b / a) if (a is not None and b is not None and a != 0) else None
    lo, hi = (ci if ci is not None else (None, None))
    better = ""
    # Only a difference judged against the spread names a winner (single values carry none).
    if ratio is not None and significant is True and ratio != 1.0:
        b_better = ratio < 1.0 if lower_is_better else ratio > 1.0
        better = "B" if b_better else "A"
    return Row(batch, metric, unit, a, b, ratio, lo, hi, significant, better, lower_is_better)


def _sample_row(batch, metric, unit, sa, sb, stat, value_a, value_b, lower_is_better, *, seed: int,
                iqr: tuple | None = None) -> Row:
    if sa is not None and sb is not None and sa.size >= 2 and sb.size >= 2:
        if stat(sa[None, :])[0] == 0 or stat(sb[None, :])[0] == 0:
            return _row(batch, metric, unit, value_a, value_b, lower_is_better)
        ratio, lo, hi = bootstrap_ratio_ci(sa, sb, stat, level=LEVEL, seed=seed)
        return _row(batch, metric, unit, value_a, value_b, lower_is_better, (lo, hi), not (lo <= 1.0 <= hi))
    if iqr is not None:
        return _row(batch, metric, unit, value_a, value_b, lower_is_better, None, not iqr_overlap(*iqr))
    return _row(batch, metric, unit, value_a, value_b, lower_is_better)


def compare_records(a: dict, b: dict, *, seed: int = 0) -> dict:
    """-> {"rows": [Row as dict...], "batches": [...], "only_in_a": [...], "only_in_b": [...],
    "differences": {field: (a, b)}} for two loaded records (``report.load_record``)."""
    ra = {r["batch"]: r for r in a["results"]}
    rb = {r["batch"]: r for r in b["results"]}
    common = sorted(set(ra) & set(rb))
    rows: list[Row] = []
    for batch in common:
        x, y = ra[batch], rb[batch]
        la, lb = x["latency_ms"]["per_batch"], y["latency_ms"]["per_batch"]
        ca, cb = _full_calls(x), _full_calls(y)
        for q, name in ((50, "p50"), (90, "p90"), (99, "p99")):
            iqr = (la["p25"], la["p75"], lb["p25"], lb["p75"]) if name == "p50" and "p25" in la and "p25" in lb else None
            rows.append(_sample_row(batch, f"latency {name} per batch", "ms", ca, cb, _median if q == 50 else _pct(q),
                                    la[name], lb[name], True, seed=seed, iqr=iqr))
        rows.append(_row(batch, "latency max per batch", "ms", la["max"], lb["max"], True))
        rows.append(_sample_row(batch, "latency p50 per image", "ms", ca, cb, _median,
                                x["latency_ms"]["per_image"]["p50"], y["latency_ms"]["per_image"]["p50"], True, seed=seed))
        # Throughput of full calls = batch / mean latency: the ratio of throughputs is the inverse
        # ratio of mean latencies, bootstrapped as such.
        ta, tb = x["throughput_images_per_s"], y["throughput_images_per_s"]
        if ca is not None and cb is not None and ca.size >= 2 and cb.size >= 2:
            ratio, lo, hi = bootstrap_ratio_ci(cb, ca, _mean, level=LEVEL, seed=seed)  # mean(A)/mean(B)
            rows.append(_row(batch, "throughput", "images/s", ta, tb, False, (lo, hi), not (lo <= 1.0 <= hi)))
        else:
            rows.append(_row(batch, "throughput", "images/s", ta, tb, False))
        for stage in (*STAGES, "maps", "total"):
            sa, sb = _full_calls(x, stage), _full_calls(y, stage)
            va = float(np.median(sa)) if sa is not None else _stage_p50(x, stage)
            vb = float(np.median(sb)) if sb is not None else _stage_p50(y, stage)
            if va is None or vb is None:
                continue
            if not va and not vb:
                continue  # stage absent on both paths (host<->device copies on the CPU)
            label = "runtime total" if stage == "total" else f"stage {stage}"
            rows.append(_sample_row(batch, f"{label} p50", "ms", sa, sb, _median, va, vb, True, seed=seed))
        if x.get("budget") and y.get("budget") and x["budget"]["units_per_cycle"] == y["budget"]["units_per_cycle"]:
            cya = np.asarray(x["samples"]["cycle_ms"]) if x.get("samples") else None
            cyb = np.asarray(y["samples"]["cycle_ms"]) if y.get("samples") else None
            rows.append(_sample_row(batch, "cycle p99", "ms", cya, cyb, _pct(99), x["cycle_ms"]["p99"], y["cycle_ms"]["p99"],
                                    True, seed=seed))
            rows.append(_row(batch, "max units/min", "units/min", x["budget"]["max_units_per_minute"],
                             y["budget"]["max_units_per_minute"], False))
        rows.append(_row(batch, "peak RSS", "MiB", x["memory"]["peak_rss_bytes"] / 2**20, y["memory"]["peak_rss_bytes"] / 2**20,
                         True))
        da, db = x["memory"].get("peak_device_bytes"), y["memory"].get("peak_device_bytes")
        if da is not None and db is not None:
            rows.append(_row(batch, "peak device memory", "MiB", da / 2**20, db / 2**20, True))
    differences = {}
    for section, keys in (("config", ("device", "backend", "provider", "precision", "threads", "heatmaps", "preset",
                                      "images_dir", "image_shape")),
                          ("environment", ("cpu_model", "threads", "gpu_name", "gpu_driver", "onnxruntime_version",
                                           "openvino_version", "tensorrt_version", "sdk_version", "backend")),
                          ("bundle", ("sha256",))):
        for k in keys:
            va, vb = a.get(section, {}).get(k), b.get(section, {}).get(k)
            if va != vb:
                differences[f"{section}.{k}"] = (va, vb)
    loads = (a.get("environment", {}).get("load_average_1min_before"), b.get("environment", {}).get("load_average_1min_before"))
    return {"rows": [asdict(r) for r in rows], "batches": common, "only_in_a": sorted(set(ra) - set(rb)),
            "load_before": loads,
            "only_in_b": sorted(set(rb) - set(ra)), "differences": differences, "level": LEVEL}


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if unit == "MiB" or abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def format_table(cmp: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Markdown table of a comparison."""
    lines = [f"A = {name_a}", f"B = {name_b}", ""]
    if cmp["differences"]:
        lines.append("Differences between the runs: " + "; ".join(f"{k}: {va!r} -> {vb!r}" for k, (va, vb) in
                                                                  cmp["differences"].items()))
        lines.append("")
    loads = cmp.get("load_before", (None, None))
    if None not in loads:
        lines.append(f"1-min load average when each run started: A {loads[0]:.2f}, B {loads[1]:.2f}. The confidence "
                     "intervals cover the spread within each run; a change of machine load between the runs is not "
                     "covered (compare runs taken under the same conditions).")
        lines.append("")
    if cmp["only_in_a"] or cmp["only_in_b"]:
        lines.append(f"Batch sizes only in A: {cmp['only_in_a'] or '-'}; only in B: {cmp['only_in_b'] or '-'}")
        lines.append("")
    lines += ["| batch | metric | A | B | B/A | 95 % CI of B/A | difference | better |", "|---:|:---|---:|---:|---:|:---|:---|:---|"]
    for r in cmp["rows"]:
        ci = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["ci_low"] is not None else "-"
        sig = {True: "significant", False: "insignificant", None: "n/a (single value)"}[r["significant"]]
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"| {r['batch']} | {r['metric']} ({r['unit']}) | {_fmt(r['a'], r['unit'])} | {_fmt(r['b'], r['unit'])} | "
                     f"{ratio} | {ci} | {sig} | {r['better'] or '-'} |")
    lines += ["", "B/A < 1 means B is lower (faster for latencies; slower for throughput). A difference is "
              "insignificant when the bootstrap confidence interval of the ratio contains 1 (run-to-run spread)."]
    return "\n".join(lines)

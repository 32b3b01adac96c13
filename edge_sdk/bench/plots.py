"""PNG plots of a benchmark record (matplotlib, Agg backend: no display needed).

- latency histogram per batch size with p50 and p99 marked;
- batch-size sweep: per-image latency (p50, with the p90-p99 spread) and throughput;
- per-image stage breakdown (stacked bars);
- cycle-time histogram against the budget, when the record has one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edge_sdk.atomic import atomic_path

STAGE_COLOURS = {
    "preprocess": "#4c72b0", "host_to_device": "#8172b3", "network": "#dd8452", "postprocess_scoring": "#55a868",
    "postprocess_maps": "#a6d96a",
    "device_to_host": "#937860", "decision": "#c44e52", "runtime_other": "#8c8c8c", "binding": "#cccccc",
}
STAGE_LABELS = {
    "preprocess": "preprocess", "host_to_device": "host->device", "network": "network",
    "postprocess_scoring": "scoring kernels", "postprocess_maps": "anomaly maps", "device_to_host": "device->host", "decision": "decision",
    "runtime_other": "runtime other", "binding": "Python binding",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lays out, writes the PNG atomically (temp + rename) and closes the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def _title(record: dict) -> str:
    c, b = record["config"], record["bundle"]
    return (f"{b['model_type']} ({Path(b['path']).name}), {c['device']}, {c['backend']}, {c['precision']}, "
            f"{record['environment']['threads']} thread(s)")


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def latency_histogram(record: dict, path: Path) -> Path:
    plt = _pyplot()
    results = record["results"]
    rows, cols = _grid(len(results))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(results):]:
        ax.set_visible(False)
    for ax, r in zip(axes.ravel(), results):
        s = r["samples"]
        ms = np.asarray(s["call_ms"])[np.asarray(s["call_images"]) == r["batch"]]
        lat = r["latency_ms"]["per_batch"]
        nbins = min(60, max(10, int(np.sqrt(ms.size)) * 2))
        # A long tail (scheduler preemption on a shared machine) squeezes the bulk into one bin
        # on a linear axis: use logarithmic bins then.
        log_x = ms.min() > 0 and ms.max() / ms.min() > 20
        bins = np.geomspace(ms.min(), ms.max(), nbins + 1) if log_x else nbins
        ax.hist(ms, bins=bins, color="#4c72b0", alpha=0.8)
        if log_x:
            ax.set_xscale("log")
        for key, colour, style in (("p50", "#2ca02c", "-"), ("p99", "#d62728", "--")):
            ax.axvline(lat[key], color=colour, linestyle=style, linewidth=1.6, label=f"{key} {lat[key]:.2f} ms")
        ax.set_title(f"batch {r['batch']}  ({ms.size} calls, max {lat['max']:.2f} ms)", fontsize=10)
        ax.set_xlabel("latency per batch (ms)" + (", log scale" if log_x else ""))
        ax.set_ylabel("calls")
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
        ax.grid(alpha=0.3)
    fig.suptitle("Latency per predict call\n" + _title(record), fontsize=10)
    return _save(fig, path)


def batch_sweep(record: dict, path: Path) -> Path:
    plt = _pyplot()
    results = sorted(record["results"], key=lambda r: r["batch"])
    b = np.array([r["batch"] for r in results])
    p50 = np.array([r["latency_ms"]["per_image"]["p50"] for r in results])
    p90 = np.array([r["latency_ms"]["per_image"]["p90"] for r in results])
    p99 = np.array([r["latency_ms"]["per_image"]["p99"] for r in results])
    thr = np.array([r["throughput_images_per_s"] for r in results])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(b, p50, "o-", color="#4c72b0", label="p50")
    a1.fill_between(b, p90, p99, color="#4c72b0", alpha=0.2, label="p90 - p99")
    a1.plot(b, p99, "v:", color="#d62728", markersize=4, label="p99")
    a1.set_ylabel("latency per image (ms)")
    if p50.min() > 0 and p99.max() / p50.min() > 20:
        a1.set_yscale("log")
    else:
        a1.set_ylim(bottom=0)
    a2.plot(b, thr, "s-", color="#dd8452")
    for x, y in zip(b, thr):
        a2.annotate(f"{y:.0f}" if y >= 100 else f"{y:.3g}", (x, y), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    a2.set_ylabel("throughput (images/s)")
    a2.set_ylim(0, thr.max() * 1.2 if thr.size else 1)
    for ax in (a1, a2):
        ax.set_xlabel("batch size")
        if b.size > 1 and b.max() / b.min() >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(b)
        ax.set_xticklabels([str(v) for v in b])
        ax.grid(alpha=0.3)
    a1.legend(fontsize=8)
    fig.suptitle("Batch-size sweep\n" + _title(record), fontsize=10)
    return _save(fig, path)


def breakdown(record: dict, path: Path) -> Path:
    plt = _pyplot()
    results = sorted(record["results"], key=lambda r: r["batch"])
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(results) + 1.8))
    y = np.arange(len(results))
    left = np.zeros(len(results))
    for stage, colour in STAGE_COLOURS.items():
        def mean_ms(r, stage=stage):
            bd = r["breakdown"]
            if stage == "postprocess_scoring" and stage not in bd:  # records without the split
                stage = "postprocess"
            return max(bd.get(stage, {}).get("mean_ms", 0.0), 0.0)

        v = np.array([mean_ms(r) / r["batch"] for r in results])
        if not np.any(v > 0):
            continue
        ax.barh(y, v, left=left, color=colour, label=STAGE_LABELS[stage], edgecolor="white", linewidth=0.5)
        left += v
    ax.set_yticks(y)
    ax.set_yticklabels([f"batch {r['batch']}" for r in results])
    ax.invert_yaxis()
    ax.set_xlabel("mean time per image (ms)")
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28 if len(results) < 3 else -0.18))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Where the time goes\n" + _title(record), fontsize=10)
    return _save(fig, path)


def cycle_histogram(record: dict, path: Path) -> Path | None:
    results = [r for r in record["results"] if r.get("budget")]
    if not results:
        return None
    plt = _pyplot()
    rows, cols = _grid(len(results))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(results):]:
        ax.set_visible(False)
    for ax, r in zip(axes.ravel(), results):
        bud = r["budget"]
        cyc = np.asarray(r["samples"]["cycle_ms"])
        ax.hist(cyc, bins=min(60, max(10, int(np.sqrt(cyc.size)) * 2)), color="#55a868" if bud["fits"] else "#c44e52",
                alpha=0.8)
        ax.axvline(bud["budget_ms"], color="black", linewidth=1.8, label=f"budget {bud['budget_ms']:g} ms")
        ax.set_title(f"batch {r['batch']}: {bud['units_per_cycle']} units in {r['calls_per_cycle']} call(s)\n"
                     f"{100 * bud['fraction_within_budget']:.1f} % within budget, "
                     f"{'fits' if bud['fits'] else 'does NOT fit'}", fontsize=9)
        ax.set_xlabel("cycle time (ms)")
        ax.set_ylabel("cycles")
        ax.set_xlim(left=0, right=max(bud["budget_ms"], float(cyc.max())) * 1.08)
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
        ax.grid(alpha=0.3)
    fig.suptitle("Cycle time against the budget\n" + _title(record), fontsize=10)
    return _save(fig, path)


def write_plots(record: dict, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [latency_histogram(record, out_dir / "latency_hist.png"), batch_sweep(record, out_dir / "batch_sweep.png"),
             breakdown(record, out_dir / "breakdown.png")]
    c = cycle_histogram(record, out_dir / "cycle_budget.png")
    if c is not None:
        paths.append(c)
    return paths

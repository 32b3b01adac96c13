"""Writing a benchmark record: JSON (everything, samples included), a Markdown summary and the
PNG plots, each written atomically (temp + rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge_sdk.atomic import write_text
from edge_sdk.bench.config import BenchError
from edge_sdk.bench.runner import SCHEMA, SCHEMA_VERSION, STAGES


def _atomic_text(path: Path, text: str) -> Path:
    write_text(path, text)
    return Path(path)


def write_json(record: dict, path: Path) -> Path:
    return _atomic_text(path, json.dumps(record, indent=1) + "\n")


def load_record(path: str | os.PathLike) -> dict:
    """A benchmark record from its JSON file, checked to be one (errors name the file)."""
    p = Path(path)
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{p}: no such benchmark record") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{p}: not a readable JSON benchmark record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise BenchError(f"{p}: not an edge-sdk bench record (field 'schema' is not {SCHEMA!r})")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(f"{p}: schema_version {record.get('schema_version')!r}; this edge-sdk reads {SCHEMA_VERSION}")
    if not isinstance(record.get("results"), list) or not record["results"]:
        raise BenchError(f"{p}: field 'results' is missing or empty")
    for i, r in enumerate(record["results"]):
        for key in ("batch", "latency_ms", "throughput_images_per_s", "breakdown", "memory"):
            if key not in r:
                raise BenchError(f"{p}: results[{i}] lacks field {key!r}")
    return record


def _mib(v) -> str:
    return "n/a" if v is None else f"{v / 2**20:.0f}"


def markdown(record: dict) -> str:
    c, b, e = record["config"], record["bundle"], record["environment"]
    lines = [
        f"# Latency benchmark: {b['model_type']} ({Path(b['path']).name})",
        "",
        f"- bundle: `{b['path']}`, sha256 (manifest) `{b['sha256'][:16]}...`, input {b['input']['height']}x"
        f"{b['input']['width']}x{b['input']['channels']}, post-processing `{b['postprocess_kind']}`",
        f"- run: device `{c['device']}`, backend `{c['backend']}`" + (f" / `{c['provider']}`" if c.get("provider") else "")
        + f", precision `{c['precision']}`, threads {e['threads']}, heatmaps {'on' if c['heatmaps'] else 'off'}, "
        f"{c['iterations']} cycles per batch size after {c['warmup']} warm-up calls"
        + (f", preset `{c['preset']}`" if c.get("preset") else ""),
        f"- inputs: {record['inputs']['source']}",
        f"- machine: {e['cpu_model']}, {e['cpu_cores']} cores ({e['cpu_cores_usable']} usable)"
        + (f", GPU {e['gpu_name']} (driver {e['gpu_driver']}, CUDA {e['cuda_driver_version']})" if e.get("gpu_name") else "")
        + f"; backend {e['backend']}; ONNX Runtime {e['onnxruntime_version']}"
        + (f", OpenVINO {e['openvino_version']}" if e.get("openvino_version") else "")
        + (f", TensorRT {e['tensorrt_version']}" if e.get("tensorrt_version") else "") + f"; edge-sdk {e['sdk_version']}",
        f"- recorded {record['created']}",
    ]
    for n in record.get("notes", []):
        lines.append(f"- **note:** {n}")
    lines += ["", "## Latency and throughput", "",
              "| batch | p50 | p90 | p99 | max (ms/batch) | p50 | p99 (ms/image) | throughput (img/s) | peak RSS (MiB) | device (MiB) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in record["results"]:
        lb, li = r["latency_ms"]["per_batch"], r["latency_ms"]["per_image"]
        m = r["memory"]
        lines.append(f"| {r['batch']} | {lb['p50']:.2f} | {lb['p90']:.2f} | {lb['p99']:.2f} | {lb['max']:.2f} | "
                     f"{li['p50']:.3f} | {li['p99']:.3f} | {r['throughput_images_per_s']:.1f} | {_mib(m['peak_rss_bytes'])} | "
                     f"{_mib(m.get('peak_device_bytes'))} |")
    lines += ["", "Latency: wall time around `Runtime.predict`; per image = per batch / batch size. "
              "Peak RSS: " + record["results"][0]["memory"]["peak_rss_scope"] + " peak of the process. Device memory: "
              + record["results"][0]["memory"]["device_memory_note"] + ".", "",
              "## Breakdown (mean ms per batch; share of the runtime's total)", "",
              "| batch | " + " | ".join(STAGES) + " | (scoring / maps) | runtime other | binding | outside network "
              "(without scoring) |",
              "|---:|" + "---:|" * (len(STAGES) + 4)]
    for r in record["results"]:
        bd = r["breakdown"]
        cells = [f"{bd[s]['mean_ms']:.3f} ({100 * bd[s]['fraction_of_runtime_total']:.0f} %)" for s in STAGES]
        split = (f"{bd['postprocess_scoring']['mean_ms']:.3f} / {bd['postprocess_maps']['mean_ms']:.3f}"
                 if "postprocess_maps" in bd else "-")
        lines.append(f"| {r['batch']} | " + " | ".join(cells) + f" | {split} | {bd['runtime_other']['mean_ms']:.3f} | "
                     f"{bd['binding']['mean_ms']:.3f} | {100 * r['outside_network_fraction']:.1f} % "
                     f"({100 * r.get('outside_network_and_scoring_fraction', float('nan')):.1f} %) |")
    lines += ["", "Stages: " + record["timing"]["stages"] + ". Post-processing = the model's scoring kernels "
              "(k-NN, Mahalanobis, SSIM, ...) + anomaly maps (resize + blur). Outside network = (total - network) / "
              "total; without scoring: also minus the scoring kernels (preprocessing, maps, decision, glue).", ""]
    if any(r.get("budget") for r in record["results"]):
        lines += ["## Cycle budget", "",
                  "| batch | units/cycle | calls/cycle | cycle p50 | cycle p99 | cycle max (ms) | within budget | verdict | "
                  "max units/min |", "|---:|---:|---:|---:|---:|---:|---:|:---|---:|"]
        for r in record["results"]:
            bud = r["budget"]
            if not bud:
                continue
            cy = r["cycle_ms"]
            lines.append(f"| {r['batch']} | {bud['units_per_cycle']} | {r['calls_per_cycle']} | {cy['p50']:.1f} | "
                         f"{cy['p99']:.1f} | {cy['max']:.1f} | {100 * bud['fraction_within_budget']:.1f} % "
                         f"({bud['cycles_within_budget']}/{bud['cycles']}) | "
                         f"{'**fits**' if bud['fits'] else '**does not fit**'} | {bud['max_units_per_minute']:.0f} |")
        bud0 = next(r["budget"] for r in record["results"] if r.get("budget"))
        lines += ["", f"Budget {bud0['budget_ms']:g} ms per cycle of {bud0['units_per_cycle']} units "
                  f"(line rate {bud0['line_units_per_minute']:.0f} units/min). Fits when at least "
                  f"{100 * bud0['required_fraction']:g} % of cycles finish within the budget; max units/min = units per "
                  f"cycle x 60000 / the cycle time met by {100 * bud0['required_fraction']:g} % of cycles (back to back, "
                  "nothing else running).", ""]
    lines += ["## Plots", "", "![latency histogram](latency_hist.png)", "", "![batch sweep](batch_sweep.png)", "",
              "![breakdown](breakdown.png)", ""]
    if any(r.get("budget") for r in record["results"]):
        lines += ["![cycle budget](cycle_budget.png)", ""]
    return "\n".join(lines)


def write_report(record: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """bench.json, bench.md and the PNG plots into ``out_dir`` (created)."""
    from edge_sdk.bench.plots import write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": write_json(record, out / "bench.json"), "markdown": _atomic_text(out / "bench.md", markdown(record))}
    for p in write_plots(record, out):
        files[p.stem] = p
    return files

"""Latency of the trained models' bundles through `edge-sdk bench` (edge_sdk.bench) on one device,
each backend that is available, batch sizes 1 and 60 by default; on a GPU also a CPU run of the
same bundles and the comparison GPU / CPU. Part of benchmarks/gpu_check.

For PatchCore, PaDiM (3 x 256 x 256 colour images) and ResGANAD (60 gray 256 x 256 patches per
cycle, 500 ms budget: the vial line), trained small on the synthetic set (as
benchmarks/bench_runtime_compare.py does) or from --model-dir NAME=DIR. Writes, per model and
backend, the bench folder (bench.json, bench.md, PNGs) under --out, and a summary JSON.

A backend the build or the installed libraries do not have is reported with the runtime's error;
the run fails only when the default backend (onnxruntime) cannot run on the device.

    python benchmarks/bench_latency.py --device cuda:0 [--batches 1,60] [--backends onnxruntime,tensorrt]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import REPO, write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--models", default="patchcore,padim,resganad")
    ap.add_argument("--model-dir", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--batches", default="1,60")
    ap.add_argument("--backends", default="onnxruntime,tensorrt",
                    help="network backends to try (onnxruntime must work; others are reported when missing)")
    ap.add_argument("--providers", default="default,tensorrt",
                    help="ONNX Runtime execution providers to try on a GPU (default = from the device)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-iterations", type=int, default=5, help="iterations of the CPU reference run (GPU device)")
    ap.add_argument("--train-images", type=int, default=16)
    ap.add_argument("--resganad-preset", default="small", choices=["small", "full"])
    ap.add_argument("--resganad-epochs", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8, help="(images kept from the synthetic test set for export checks)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "latency"))
    args = ap.parse_args(argv)
    args.model_dir = list(args.model_dir)

    import torch

    import edge_sdk
    from bench_runtime_compare import export, train_model
    from edge_sdk.bench import BenchConfig, BenchError, compare_records, format_table, run_bench, write_report
    from edge_sdk.bench.report import _atomic_text

    torch.set_num_threads(1)
    edge_sdk.set_num_threads(args.threads)
    batches = tuple(int(b) for b in args.batches.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = args.device.startswith("cuda")
    summary, failed = [], False
    with tempfile.TemporaryDirectory(prefix="bench_latency_") as tmp:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            print(f"\n== {name}")
            model, images = train_model(name, args, Path(tmp))
            bundle = export(model, name, images, Path(tmp))
            vial = name == "resganad"
            common = dict(batches=batches, threads=args.threads, precision=args.precision, warmup=args.warmup,
                          image_shape=(256, 256, 1) if vial else (256, 256, 3),
                          budget_ms=500.0 if vial else None, units_per_cycle=max(60, max(batches)) if vial else None)
            runs = []
            if gpu:
                runs += [("onnxruntime", None if p == "default" else p) for p in args.providers.split(",")]
                runs += [(b, None) for b in args.backends.split(",") if b != "onnxruntime"]
            else:
                runs += [(b, None) for b in args.backends.split(",")]
            records = {}
            for backend, provider in runs:
                label = backend + (f"-{provider}" if provider else "")
                cfg = BenchConfig(str(bundle), device=args.device, backend=backend, provider=provider,
                                  iterations=args.iterations, **common)
                try:
                    rec = run_bench(cfg, progress=True)
                except BenchError as exc:
                    required = backend == "onnxruntime" and provider is None
                    failed |= required
                    print(f"  {label}: {'FAILED' if required else 'not available'}: {exc}")
                    summary.append({"model": name, "run": label, "device": args.device, "error": str(exc),
                                    "required": required})
                    continue
                write_report(rec, out / name / label)
                records[label] = rec
                for r in rec["results"]:
                    lb = r["latency_ms"]["per_batch"]
                    bud = r.get("budget")
                    print(f"  {label} batch {r['batch']}: p50 {lb['p50']:.2f} ms, p99 {lb['p99']:.2f} ms, "
                          f"{r['throughput_images_per_s']:.0f} img/s"
                          + (f"; cycle of {bud['units_per_cycle']}: {100 * bud['fraction_within_budget']:.0f} % within "
                             f"{bud['budget_ms']:g} ms ({'fits' if bud['fits'] else 'does not fit'})" if bud else ""))
                    summary.append({"model": name, "run": label, "device": args.device, "batch": r["batch"],
                                    "p50_ms": lb["p50"], "p99_ms": lb["p99"], "max_ms": lb["max"],
                                    "images_per_s": r["throughput_images_per_s"],
                                    "breakdown_mean_ms": {k: v["mean_ms"] for k, v in r["breakdown"].items()},
                                    "peak_device_bytes": r["memory"]["peak_device_bytes"], "budget": bud})
            if gpu and "onnxruntime" in records:
                cfg = BenchConfig(str(bundle), device="cpu", iterations=args.cpu_iterations, **common)
                cpu = run_bench(cfg, progress=True)
                write_report(cpu, out / name / "cpu")
                cmp = compare_records(cpu, records["onnxruntime"])
                table = format_table(cmp, f"{name} cpu", f"{name} {args.device} onnxruntime")
                _atomic_text(out / name / "compare_cpu_gpu.md", "# CPU vs GPU\n\n" + table + "\n")
                print(table)
    write_json(out / "summary.json", {"benchmark": "bench_latency", "device": args.device, "batches": list(batches),
                                      "runs": summary, "failed": failed})
    print(json.dumps({"failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

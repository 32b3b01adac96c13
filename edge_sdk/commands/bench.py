"""`edge-sdk bench`: latency of a bundle on this machine (tail latency, breakdown, memory, cycle
budget verdict), written as JSON + Markdown + PNG plots; `--compare A.json B.json` puts two runs
side by side."""

from __future__ import annotations

from edge_sdk.cli import bounded_float, bounded_int, threads_option
from edge_sdk.commands._runtime import add_backend_arguments

import re
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="measure a bundle's latency on this machine, or compare two benchmark records",
        description="Times the runtime on BUNDLE for each batch size: latency p50/p90/p99/max per batch and per "
                    "image, throughput, the stage breakdown, peak memory and, with --budget, whether a cycle "
                    "fits the budget. Writes bench.json, bench.md and PNG plots into --out. "
                    "With --compare A.json B.json: per-metric ratios B/A, flagged when run-to-run spread makes "
                    "a difference insignificant.")
    p.add_argument("bundle", nargs="?", help="bundle directory or archive")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two bench.json records instead")
    p.add_argument("--device", default="cpu", help="cpu or cuda:N (default cpu)")
    add_backend_arguments(p)
    p.add_argument("--provider", default=None,
                   help="ONNX Runtime execution provider (cpu, cuda, tensorrt; default from --device)")
    p.add_argument("--precision", default="fp32", help="network variant of the bundle: fp32, fp16, int8 or bf16 (bf16: backend openvino)")
    p.add_argument("--batch", default=None, help="batch sizes, comma-separated (default 1,8, or the preset's)")
    p.add_argument("--iterations", type=bounded_int("--iterations", 1, 1_000_000), default=100, help="timed cycles per batch size (default 100)")
    p.add_argument("--warmup", type=bounded_int("--warmup", 0, 100_000), default=10, help="untimed calls per batch size (default 10)")
    p.add_argument("--threads", type=threads_option("--threads"), default=None, help="CPU threads of the runtime (default: all cores)")
    p.add_argument("--images", default=None, metavar="FOLDER",
                   help="real images from FOLDER (default: random data of the bundle's input spec)")
    p.add_argument("--shape", default=None, metavar="HxWxC", help="size of generated images (default: the bundle's)")
    p.add_argument("--budget", type=bounded_float("--budget", 1e-3, 1e7), default=None, metavar="MS", help="cycle budget in milliseconds")
    p.add_argument("--units", type=bounded_int("--units", 1, 1_000_000), default=None,
                   help="units (images) per cycle (default: one batch); a cycle is ceil(units/batch) calls")
    p.add_argument("--required", type=bounded_float("--required", 0.0, 1.0), default=0.99,
                   help="share of cycles that must meet the budget (default 0.99)")
    p.add_argument("--preset", default=None, choices=["vial-line", "mvtec"],
                   help="vial-line: 60 single-channel 256x256 patches per cycle, 500 ms, batches 1,8,60; "
                        "mvtec: 3x256x256 colour images, batches 1,8")
    p.add_argument("--no-heatmaps", action="store_true", help="verdicts only (heatmaps not computed)")
    p.add_argument("--max-seconds", type=bounded_float("--max-seconds", 1e-3, 1e6), default=None,
                   help="stop measuring a batch size after this long (at least one cycle)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0, help="seed of the random images")
    p.add_argument("--out", default=None, help="output folder (default bench-<bundle>-<device>-<precision>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _default_out(args) -> Path:
    name = Path(args.bundle.rstrip("/")).name.removesuffix(".tar")
    return Path(re.sub(r"[^A-Za-z0-9_.-]+", "-", f"bench-{name}-{args.device}-{args.precision}"))


def _config(args):
    from edge_sdk.bench.config import BenchConfig, BenchError, apply_preset, parse_batches, parse_shape

    if args.preset and args.shape:
        raise BenchError(f"--shape and --preset {args.preset} exclude each other (the preset sets the image shape)")
    cfg = BenchConfig(
        bundle=args.bundle, device=args.device, backend=args.backend, provider=args.provider,
        openvino_device=args.openvino_device, precision=args.precision,
        batches=parse_batches(args.batch) if args.batch else (1, 8), iterations=args.iterations, warmup=args.warmup,
        threads=args.threads, images_dir=args.images, image_shape=parse_shape(args.shape) if args.shape else None,
        budget_ms=args.budget, units_per_cycle=args.units, required_fraction=args.required,
        heatmaps=not args.no_heatmaps, max_seconds=args.max_seconds, seed=args.seed)
    if args.preset:
        cfg = apply_preset(cfg, args.preset, batches_given=args.batch is not None, budget_given=args.budget is not None,
                           units_given=args.units is not None)
    return cfg.validate()


def _print_summary(record: dict) -> None:
    print(f"{'batch':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'p50 ms/img':>11} {'img/s':>9} "
          f"{'outside net':>11}  budget")
    for r in record["results"]:
        lb = r["latency_ms"]["per_batch"]
        bud = r.get("budget")
        verdict = "-" if not bud else (f"{'fits' if bud['fits'] else 'DOES NOT FIT'} "
                                       f"({100 * bud['fraction_within_budget']:.1f} % of cycles <= {bud['budget_ms']:g} ms; "
                                       f"max {bud['max_units_per_minute']:.0f} units/min)")
        print(f"{r['batch']:>6} {lb['p50']:>9.2f} {lb['p99']:>9.2f} {lb['max']:>9.2f} "
              f"{r['latency_ms']['per_image']['p50']:>11.3f} {r['throughput_images_per_s']:>9.1f} "
              f"{100 * r['outside_network_fraction']:>10.1f}%  {verdict}")


def _compare(args) -> int:
    from edge_sdk.bench import compare_records, format_table, load_record
    from edge_sdk.bench.report import _atomic_text

    a_path, b_path = args.compare
    a, b = load_record(a_path), load_record(b_path)
    cmp = compare_records(a, b)
    if not cmp["batches"]:
        from edge_sdk.bench.config import BenchError

        raise BenchError(f"--compare: the records share no batch size ({a_path}: {[r['batch'] for r in a['results']]}, "
                         f"{b_path}: {[r['batch'] for r in b['results']]})")
    table = format_table(cmp, a_path, b_path)
    print(table)
    if args.out:
        import json

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_text(out / "compare.md", "# Benchmark comparison\n\n" + table + "\n")
        _atomic_text(out / "compare.json", json.dumps({"a": str(a_path), "b": str(b_path), **cmp}, indent=1) + "\n")
        print(f"written: {out / 'compare.md'}, {out / 'compare.json'}")
    return 0


def run(args) -> int:
    from edge_sdk.bench.config import BenchError
    from edge_sdk.cli import UserError

    try:
        if args.compare:
            if args.bundle:
                raise BenchError("give either BUNDLE or --compare A.json B.json, not both")
            return _compare(args)
        if not args.bundle:
            raise BenchError("BUNDLE is required (or --compare A.json B.json)")
        from edge_sdk.bench import run_bench, write_report

        cfg = _config(args)
        record = run_bench(cfg, progress=not args.no_progress)
        out = Path(args.out) if args.out else _default_out(args)
        files = write_report(record, out)
        _print_summary(record)
        print("written: " + ", ".join(str(p) for p in files.values()))
        return 0
    except BenchError as exc:
        raise UserError(str(exc)) from None

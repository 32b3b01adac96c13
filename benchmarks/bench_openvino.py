"""ONNX Runtime against OpenVINO as the runtime's network backend, side by side in one run: the same
bundle, the same images, the same thread count, the whole pipeline (edge_sdk.Runtime.predict:
preprocess kernel -> network -> post-processing kernels -> heatmaps -> decision) with only the
backend changed.

Models: PaDiM and PatchCore (EfficientNet-Lite0 features at 256 x 256), trained small on the
synthetic tile set inside the script (bench_runtime_compare's trainer), or loaded with --model-dir.
Per model and batch size: one runtime per backend, a warm-up round, then --repeats rounds with the
backends interleaved round-robin (_common.shuffled_rounds: each call follows the other backend's,
never its own, and comes after a --settle-ms pause so the previous one's worker threads are asleep); the median of the call's wall time and of
its network stage (Results.times) is reported, with the ratio ONNX Runtime / OpenVINO (> 1: OpenVINO
faster). Also recorded: the score agreement of the two backends and what backend="auto" picks.

    python benchmarks/bench_openvino.py [--models padim,patchcore] [--batches 1,8] [--threads 2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="padim,patchcore")
    p.add_argument("--model-dir", action="append", default=[], metavar="NAME=DIR",
                   help="use a trained model dir (edge_sdk.models save format) instead of training one")
    p.add_argument("--batches", default="1,8", help="batch sizes, comma-separated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15, help="timed rounds (median reported)")
    p.add_argument("--settle-ms", type=float, default=20.0, help="pause before each timed call")
    p.add_argument("--train-images", type=int, default=40, help="synthetic training images per model")
    p.add_argument("--size", type=int, default=256, help="input size of the models")
    p.add_argument("--work", default=None, help="folder for model dirs and bundles (default: a temp folder)")
    p.add_argument("--out", default=None, help="JSON record (default benchmarks/results/bench_openvino.json)")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Before NumPy loads its BLAS: the same thread count everywhere.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    os.environ["EDGE_SDK_NUM_THREADS"] = str(ARGS.threads)

import statistics  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from _common import REPO, shuffled_rounds, write_json  # noqa: E402

BACKENDS = ("onnxruntime", "openvino")


def bench_one(name: str, args, batches: list[int], work: Path) -> dict:
    import torch

    import edge_sdk
    from bench_runtime_compare import export, train_model

    print(f"\n== {name}")
    torch.set_num_threads(1)  # training and export: one thread copes best with a busy machine
    trainer_args = SimpleNamespace(model_dir=args.model_dir, train_images=args.train_images, size=args.size,
                                   batch=max(batches), threads=args.threads)
    model, images = train_model(name, trainer_args, work)
    bundle = export(model, name, images, work)
    rows = []
    for batch in batches:
        x = images[:batch]
        rts = {b: edge_sdk.Runtime(bundle, threads=args.threads, max_batch=batch, backend=b) for b in BACKENDS}
        auto = edge_sdk.Runtime(bundle, threads=args.threads, max_batch=batch, backend="auto").backend
        ref = {b: rt.predict(x) for b, rt in rts.items()}
        a, o = ref["onnxruntime"], ref["openvino"]
        parity = {"scores_max_rel": float(np.max(np.abs(o.scores - a.scores) / np.maximum(np.abs(a.scores), 1e-12))),
                  "verdicts_equal": bool(np.array_equal(o.verdict_codes, a.verdict_codes))}
        for rt in rts.values():  # warm-up round
            rt.predict(x)
        wall: dict[str, list[float]] = {b: [] for b in BACKENDS}
        net: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for order in shuffled_rounds(list(BACKENDS), args.repeats):
            for b in order:
                time.sleep(args.settle_ms / 1e3)
                t0 = time.perf_counter()
                res = rts[b].predict(x)
                wall[b].append(1e3 * (time.perf_counter() - t0))
                net[b].append(res.times["network"])
        med = {b: statistics.median(v) for b, v in wall.items()}
        med_net = {b: statistics.median(v) for b, v in net.items()}
        row = {"batch": batch, "median_ms": med, "network_median_ms": med_net,
               "ratio_ort_over_ov": med["onnxruntime"] / med["openvino"],
               "network_ratio_ort_over_ov": med_net["onnxruntime"] / med_net["openvino"],
               "all_ms": wall, "all_network_ms": net, "parity": parity,
               "backends": {b: rt.backend for b, rt in rts.items()}, "auto": auto}
        print(f"  batch {batch}: median ms onnxruntime {med['onnxruntime']:.2f}, openvino {med['openvino']:.2f} "
              f"(ratio {row['ratio_ort_over_ov']:.2f}); network {med_net['onnxruntime']:.2f} vs "
              f"{med_net['openvino']:.2f} (ratio {row['network_ratio_ort_over_ov']:.2f}); scores max rel "
              f"{parity['scores_max_rel']:.1e}, verdicts equal {parity['verdicts_equal']}")
        print(f"  auto: {auto.split('; auto: ', 1)[-1]}")
        rows.append(row)
    return {"model": name, "bundle": str(bundle), "input": rts["openvino"].manifest["input"],
            "image_shape": list(images.shape[1:]), "threads": args.threads, "repeats": args.repeats, "rows": rows}


def setup(args) -> tuple[list[str], list[int]] | None:
    """Threads pinned, the SDK's OpenVINO backend checked, --models and --batches parsed: (models,
    batches), or None with the reason on stderr. Shared with bench_anomalib.py."""
    import torch

    import edge_sdk

    torch.set_num_threads(args.threads)
    edge_sdk.set_num_threads(args.threads)
    if "openvino" not in edge_sdk.runtime.available_backends() or not edge_sdk.runtime.find_openvino_library():
        print("needs the OpenVINO backend and the openvino wheel (pip install openvino)", file=sys.stderr)
        return None
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    bad = [n for n in names if n not in ("patchcore", "padim")]
    if bad:
        print(f"--models: unknown {bad} (padim, patchcore)", file=sys.stderr)
        return None
    return names, [int(b) for b in args.batches.split(",") if b.strip()]


def main() -> int:
    args = ARGS or parse_args()
    parsed = setup(args)
    if parsed is None:
        return 2
    names, batches = parsed
    import edge_sdk
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_openvino_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = [bench_one(n, args, batches, work) for n in names]
    load_after = os.getloadavg()[0]
    info = edge_sdk._core.openvino_info(edge_sdk.runtime.find_openvino_library())
    print(f"\n== summary ({args.threads} threads, median of {args.repeats} interleaved rounds; 1-min load "
          f"{load_before:.1f} before, {load_after:.1f} after; OpenVINO {info['version'].split('-')[0]})")
    print("| model | batch | ONNX Runtime ms | OpenVINO ms | ratio ORT/OV | network ms ORT | network ms OV | "
          "network ratio | auto picks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for row in r["rows"]:
            md, mn = row["median_ms"], row["network_median_ms"]
            pick = row["auto"].split("; auto: picked ", 1)[-1].split(" ", 1)[0]
            print(f"| {r['model']} | {row['batch']} | {md['onnxruntime']:.1f} | {md['openvino']:.1f} | "
                  f"{row['ratio_ort_over_ov']:.2f} | {mn['onnxruntime']:.1f} | {mn['openvino']:.1f} | "
                  f"{row['network_ratio_ort_over_ov']:.2f} | {pick} |")
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / "bench_openvino.json"
    write_json(out, {"benchmark": "bench_openvino", "threads": args.threads, "batches": batches,
                     "openvino": info["version"], "load_average_before": load_before, "load_average_after": load_after,
                     "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runtime latency of one trained classifier exported as several graphs, side by side in one run:
``strided`` (the activation map at the trained stride), ``dense`` (the same network evaluated at
half its stride, `--cam-dense`), each optionally ``+flips`` (test-time flips, `--tta`: the views
training flipped the images into, in one batch).

Every bundle is exported from the one model dir (ONNX Runtime, float32, the given threads); batches
of the given images (or of random tiles at the model's input size) are timed alternately, so that
load on a shared machine falls on all. Reports p50 / p90 milliseconds per batch and each graph's
ratio to the first one at each batch size.

Usage: python benchmarks/bench_classifier_graphs.py MODEL_DIR [--graphs strided,dense,dense+flips]
       [--batch 1,8] [--iterations 40] [--threads 2] [--images DIR]
       [--out benchmarks/results/classifier_graphs.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, pin_threads, write_json


def _images(folder: str | None, size: tuple[int, int], n: int):
    import numpy as np

    if folder is None:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]
    from PIL import Image

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    if not files:
        raise SystemExit(f"--images {folder}: no image files")
    return [np.asarray(Image.open(files[i % len(files)]).convert("RGB")) for i in range(n)]


def main() -> int:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--graphs", default="strided,dense",
                    help="comma-separated: strided or dense, each optionally +flips (default strided,dense)")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "classifier_graphs.json"))
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    if not (1 <= args.iterations <= 10_000 and 1 <= args.threads <= 256 and all(1 <= b <= 256 for b in batches)):
        raise SystemExit("--iterations 1..10000, --threads 1..256, --batch sizes 1..256")
    graphs = [g.strip() for g in args.graphs.split(",")]
    known = {"strided", "dense", "strided+flips", "dense+flips"}
    if len(set(graphs)) != len(graphs) or not set(graphs) <= known:
        raise SystemExit(f"--graphs: distinct names among {sorted(known)}, got {args.graphs!r}")
    pin_threads(args.threads)

    import edge_sdk
    from edge_sdk.converters import export_bundle
    from edge_sdk.models import load_model

    model = load_model(args.model_dir)
    if model.kind != "classifier":
        raise SystemExit(f"{args.model_dir}: a {model.kind} model, not a classifier")
    imgs = _images(args.images, model.input_size, max(batches))
    runtimes, grids = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in graphs:
            model.cam_dense, model.tta = name.startswith("dense"), name.endswith("+flips")
            model._set_graph()
            grids[name] = list(model.grid)
            bundle = export_bundle(model.export_parts(), Path(tmp) / name, model_type="classifier").bundle
            runtimes[name] = edge_sdk.Runtime(bundle, threads=args.threads, max_batch=max(batches))
        times = {(n, b): [] for n in runtimes for b in batches}
        for b in batches:
            for rt in runtimes.values():
                rt.predict(imgs[:b])  # warm-up
            for _ in range(args.iterations):
                for n, rt in runtimes.items():
                    t0 = time.perf_counter()
                    rt.predict(imgs[:b])
                    times[(n, b)].append(1000 * (time.perf_counter() - t0))
    rows, base = [], graphs[0]
    for b in batches:
        p50 = {n: float(np.percentile(times[(n, b)], 50)) for n in runtimes}
        p90 = {n: float(np.percentile(times[(n, b)], 90)) for n in runtimes}
        rows.append({"batch": b, **{f"{n}_p50_ms": round(p50[n], 2) for n in runtimes},
                     **{f"{n}_p90_ms": round(p90[n], 2) for n in runtimes},
                     **{f"{n}_over_{base}_p50": round(p50[n] / p50[base], 2) for n in graphs[1:]}})
        print(f"batch {b}: " + ", ".join(f"{n} p50 {p50[n]:.2f} ms (p90 {p90[n]:.2f}, {p50[n] / p50[base]:.2f} x "
                                         f"{base})" for n in graphs))
    record = {"model_dir": str(Path(args.model_dir).resolve()), "input_size": list(model.input_size),
              "grids": grids, "threads": args.threads, "iterations": args.iterations, "rows": rows}
    write_json(Path(args.out), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())

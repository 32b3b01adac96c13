"""PaDiM's post-processing with the Cholesky factor stored in bfloat16 (the bf16 variant) against
float32 (the fp32 variant), in the runtime, side by side in one run.

One PaDiM bundle (EfficientNet-Lite0, stride 8 + 16, d 100 on a 32 x 32 grid: a 20 MB packed
factor in float32, 10 MB in bfloat16) trained small on the synthetic tile set, with its bf16
variant admitted by the accuracy gate. Two runtimes on the OpenVINO backend, `precision="fp32"`
and `precision="bf16"`; only their post-processing stage (`Results.times["postprocess"]`: the
Mahalanobis solve, the score grid, its maximum) is compared, the network stages differ by design.
Per batch size: --repeats rounds, the two runtimes in a shuffled order each round; "warm" times a
call right after another of the same runtime, "cold" after touching a 64 MB buffer (another
model's data through the caches, as on a line that runs several). Medians; ratio = fp32 / bf16.
Skipped, with the reason, on a CPU without bfloat16 arithmetic (the gate cannot admit the variant).

    python benchmarks/bench_bf16_tables.py [--batches 1,8] [--repeats 40] [--threads 2]
                                           [--out benchmarks/results/bench_bf16_tables.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from _common import REPO, pin_threads, shuffled_rounds, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_bf16_tables.json")
    args = ap.parse_args()
    pin_threads(args.threads)
    import torch

    import edge_sdk
    from bench_anomalib import _add_bf16
    from bench_runtime_compare import export, train_model

    batches = [int(b) for b in args.batches.split(",")]
    record = {"benchmark": "bf16_tables", "threads": args.threads, "repeats": args.repeats, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        torch.set_num_threads(1)
        targs = SimpleNamespace(model_dir=[], train_images=40, size=256, batch=max(batches), threads=args.threads)
        model, images = train_model("padim", targs, work)
        bundle = export(model, "padim", images, work)
        gate = _add_bf16(bundle, targs, max(max(batches), 8))
        record["gate"] = gate
        if not gate.get("accepted"):
            print(f"skipped: {gate.get('skipped') or gate}")
            record["skipped"] = gate.get("skipped") or "bf16 variant refused"
            write_json(args.out, record)
            return 0
        evict = np.zeros(64 << 20, np.uint8)
        print(f"PaDiM d {int(model.d)}, grid {model.grid}; post-processing stage, median of {args.repeats} rounds")
        for batch in batches:
            x = np.ascontiguousarray(images[:batch])
            rts = {p: edge_sdk.Runtime(bundle, threads=args.threads, max_batch=batch, backend="openvino", precision=p)
                   for p in ("fp32", "bf16")}
            for rt in rts.values():
                rt.predict(x)
            for mode in ("warm", "cold"):
                post = {p: [] for p in rts}
                for order in shuffled_rounds(list(rts), args.repeats, seed=batch):
                    for p in order:
                        if mode == "warm":
                            rts[p].predict(x)
                        else:
                            evict += 1
                        time.sleep(0.005)
                        post[p].append(rts[p].predict(x).times["postprocess"])
                med = {p: statistics.median(v) for p, v in post.items()}
                row = {"batch": batch, "mode": mode, "postprocess_ms": med, "ratio_fp32_over_bf16": med["fp32"] / med["bf16"],
                       "all_ms": post}
                record["rows"].append(row)
                print(f"  batch {batch} {mode}: fp32 factor {med['fp32']:.3f} ms, bf16 factor {med['bf16']:.3f} ms "
                      f"(x{med['fp32'] / med['bf16']:.2f})", flush=True)
    write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

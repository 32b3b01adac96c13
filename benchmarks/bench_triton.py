"""Serving through Triton against the in-process runtime, side by side in one run: requests/s and
p50 / p99 latency of a bundle served by tritonserver (Python backend, dynamic batching, one
instance, `edge-sdk triton`) against `edge_sdk.Runtime.predict` in this process at batch 1 and 8,
with the same runtime thread count.

- in-process batch 1: one image per predict call, back to back (a call's time is its latency);
- in-process batch 8: eight images per call (requests/s counts images);
- Triton, 1 client: one batch-1 request at a time over gRPC (the serving overhead);
- Triton, C clients: C concurrent clients (default 8) of batch-1 requests over gRPC; the dynamic
  batcher groups them (preferred batch 4, 8; queue delay --queue-delay-us).

The clients run in the serving venv (tritonclient) on the same machine, so on a small machine they
take CPU from the server: the figures are an end-to-end bound for a loopback deployment. Ratios are
Triton / in-process (requests/s: > 1 Triton serves more; latency: > 1 Triton is slower).

    python benchmarks/bench_triton.py [--bundle DIR] [--threads 1] [--requests 200] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default=str(REPO / "tests" / "data" / "gpu_fixtures" / "mahalanobis.bundle"),
                   help="the bundle (default: the small Mahalanobis fixture bundle, 32 x 40 input)")
    p.add_argument("--image-size", type=int, default=256, help="side of the synthetic tile images sent")
    p.add_argument("--threads", type=int, default=1, help="runtime threads, in-process and in the Triton instance")
    p.add_argument("--requests", type=int, default=200, help="requests per client (and in-process calls)")
    p.add_argument("--clients", type=int, default=8, help="concurrent Triton clients")
    p.add_argument("--queue-delay-us", type=int, default=500)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_triton.json"))
    return p.parse_args(argv)


def stats(latencies, wall, images):
    import numpy as np

    lat = np.asarray(latencies) * 1e3
    return {"requests_per_s": images / wall, "p50_ms": float(np.median(lat)), "p99_ms": float(np.quantile(lat, 0.99)),
            "images": images, "wall_s": wall}


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["EDGE_SDK_NUM_THREADS"] = str(args.threads)
    import numpy as np

    import edge_sdk
    from edge_sdk.data.synthetic import make_dataset
    from edge_sdk.data import load_dataset
    from edge_sdk.serving import triton_repo as tr
    from edge_sdk.serving.triton_server import Server, environment, find_env

    work = Path(tempfile.mkdtemp(prefix="bench_triton-"))
    root = make_dataset(work / "data", kind="tile", n_train=2, n_test=16, size=args.image_size, seed=0)
    images = [np.ascontiguousarray(s.image) for s in load_dataset(root, "mvtec", "test", category="tile")]
    n = args.requests

    rt = edge_sdk.Runtime(args.bundle, threads=args.threads, max_batch=8)
    rt.predict(images[:8])
    lat = []
    t0 = time.perf_counter()
    for r in range(n):
        t = time.perf_counter()
        rt.predict(images[r % len(images)][None])
        lat.append(time.perf_counter() - t)
    inproc1 = stats(lat, time.perf_counter() - t0, n)
    lat = []
    t0 = time.perf_counter()
    for r in range(max(1, n // 8)):
        t = time.perf_counter()
        rt.predict([images[(8 * r + k) % len(images)] for k in range(8)])
        lat.append(time.perf_counter() - t)
    inproc8 = stats(lat, time.perf_counter() - t0, 8 * len(lat))

    repo = work / "repo"
    tr.write_repository([args.bundle], repo, names=["bench"],
                        options=tr.ServeOptions(threads=args.threads, max_batch=8, preferred_batch=[4, 8],
                                                queue_delay_us=args.queue_delay_us))
    env = find_env()
    np.savez(work / "images.npz", **{str(i): a for i, a in enumerate(images)})

    def drive(server, clients, requests, name):
        job = {"url": server.grpc_url, "protocol": "grpc", "model": "bench", "images": str(work / "images.npz"),
               "out": str(work / f"{name}.npz"), "clients": clients, "requests": requests, "heatmaps": True}
        (work / f"{name}.json").write_text(json.dumps(job))
        r = subprocess.run([str(env.python), "-m", "edge_sdk.serving.triton_client", str(work / f"{name}.json")],
                           env=environment(env), capture_output=True, text=True, check=True)
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        out = np.load(job["out"])
        assert summary["errors"] == 0, set(out["error"])
        return stats(out["latency"], summary["wall"], summary["requests"])

    with Server(repo, log=work / "server.log") as server:
        drive(server, 2, 20, "warmup")
        metrics0 = _metrics(server)
        triton1 = drive(server, 1, n, "one_client")
        tritonc = drive(server, args.clients, n, "clients")
        metrics1 = _metrics(server)
    count = metrics1["nv_inference_count"] - metrics0["nv_inference_count"]
    execs = metrics1["nv_inference_exec_count"] - metrics0["nv_inference_exec_count"]
    record = {
        "bundle": args.bundle, "threads": args.threads, "image_size": args.image_size, "requests": n,
        "clients": args.clients, "queue_delay_us": args.queue_delay_us, "runtime_backend": rt.backend,
        "inprocess_batch1": inproc1, "inprocess_batch8": inproc8, "triton_1_client": triton1,
        f"triton_{args.clients}_clients": tritonc, "triton_mean_batch": count / execs if execs else None,
        "ratios": {
            "triton_1_client_vs_batch1": _ratios(triton1, inproc1),
            f"triton_{args.clients}_clients_vs_batch1": _ratios(tritonc, inproc1),
            f"triton_{args.clients}_clients_vs_batch8": _ratios(tritonc, inproc8),
        },
    }
    print(json.dumps(record, indent=2))
    write_json(Path(args.out), record)


def _ratios(a, b):
    return {k: a[k] / b[k] for k in ("requests_per_s", "p50_ms", "p99_ms")}


def _metrics(server) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        for name in ("nv_inference_count", "nv_inference_exec_count"):
            if line.startswith(name + "{") and 'model="bench"' in line:
                out[name] = float(line.rsplit(" ", 1)[1])
    return out


if __name__ == "__main__":
    main()

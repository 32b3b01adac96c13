"""A small Triton client for models written by `edge-sdk triton` (tritonclient, HTTP or gRPC).

It runs in the serving environment (tritonclient's pins conflict with the SDK's own: protobuf,
ml-dtypes), so the tests and benchmarks drive it as a program:

    .venv-triton/bin/python -m edge_sdk.serving.triton_client JOB.json

JOB.json: {"url", "protocol" ("http" | "grpc"), "model", "images": NPZ (arrays "0", "1", ...),
"out": NPZ, "mode": "load" (C clients, each R requests of image (c * 7 + r) % N, a batch of one)
or "raw" (each array sent once as it is, whatever its dtype or shape), "clients", "requests",
"heatmaps" (bool), "progress": a file that gets a line per 50 requests done, "until": a file; each
client goes on past its R requests until the file exists, then sends 20 more}.
The out NPZ holds, per request, the image index, client, latency (s), error text ("" when none),
model version, and SCORE / NORMALIZED / VERDICT / VERSION (/ HEATMAP, or HEATMAP_<row> where the
images differ in size) of the first image.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import numpy as np

OUTPUTS = ("SCORE", "NORMALIZED", "VERDICT", "VERSION")


def make_client(protocol: str, url: str, concurrency: int = 1):
    if protocol == "http":
        import tritonclient.http as t

        return t, t.InferenceServerClient(url, concurrency=concurrency, network_timeout=120.0)
    if protocol == "grpc":
        import tritonclient.grpc as t

        return t, t.InferenceServerClient(url)
    raise ValueError(f"protocol: expected 'http' or 'grpc', got {protocol!r}")


def infer(t, client, model: str, batch: np.ndarray, outputs=OUTPUTS, version: str = "") -> tuple[dict, str]:
    """One request: ({output name: array}, model version that answered)."""
    from tritonclient.utils import np_to_triton_dtype

    inp = t.InferInput("IMAGE", list(batch.shape), np_to_triton_dtype(batch.dtype))
    if t.__name__.endswith("http"):
        inp.set_data_from_numpy(batch, binary_data=True)
        outs = [t.InferRequestedOutput(o, binary_data=True) for o in outputs]
    else:
        inp.set_data_from_numpy(batch)
        outs = [t.InferRequestedOutput(o) for o in outputs]
    res = client.infer(model, [inp], model_version=version, outputs=outs)
    resp = res.get_response()
    got_version = resp["model_version"] if isinstance(resp, dict) else resp.model_version
    return {o: res.as_numpy(o) for o in outputs}, str(got_version)


def run(job: dict) -> dict:
    data = np.load(job["images"])
    images = [data[k] for k in sorted(data.files, key=int)]
    outputs = OUTPUTS + (("HEATMAP",) if job.get("heatmaps") else ())
    rows: list[dict] = []
    lock = threading.Lock()
    progress = job.get("progress")

    def record(row):
        with lock:
            rows.append(row)
            if progress and len(rows) % 50 == 0:
                with open(progress, "a") as f:
                    f.write(f"{len(rows)}\n")

    def one(t, client, client_id, index, batch):
        t0 = time.perf_counter()
        try:
            out, version = infer(t, client, job["model"], batch, outputs)
            row = {k: v[0] for k, v in out.items()}
            row.update(error="", model_version=version)
        except Exception as exc:  # recorded: the caller counts and shows errors
            row = {"error": f"{type(exc).__name__}: {exc}", "model_version": ""}
        row.update(index=index, client=client_id, latency=time.perf_counter() - t0)
        record(row)

    start = time.perf_counter()
    if job.get("mode", "load") == "raw":
        t, client = make_client(job["protocol"], job["url"])
        for i, a in enumerate(images):
            one(t, client, 0, i, a)
    else:
        n_clients, n_req = int(job["clients"]), int(job["requests"])

        until = job.get("until")

        def worker(c):
            t, client = make_client(job["protocol"], job["url"])
            r, extra = 0, None
            # R requests; with "until", on until that file exists, then 20 more (e.g. past a version swap)
            while r < n_req or (until and (extra is None or extra > 0)):
                if until and extra is None and os.path.exists(until):
                    extra = 20
                elif extra is not None:
                    extra -= 1
                i = (c * 7 + r) % len(images)
                one(t, client, c, i, images[i][None])
                r += 1

        threads = [threading.Thread(target=worker, args=(c,)) for c in range(n_clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    wall = time.perf_counter() - start
    out = {"index": np.array([r["index"] for r in rows]), "client": np.array([r["client"] for r in rows]),
           "latency": np.array([r["latency"] for r in rows]), "error": np.array([r["error"] for r in rows]),
           "model_version": np.array([r["model_version"] for r in rows]), "wall": np.array(wall)}
    ok = [r for r in rows if not r["error"]]
    for o in outputs:
        if ok and all(o in r for r in ok):
            if o == "HEATMAP" and len({r[o].shape for r in ok}) > 1:  # images of several sizes: one per row
                out.update({f"HEATMAP_{k}": r[o] for k, r in enumerate(rows) if not r["error"]})
                continue
            shape = ok[0][o].shape
            arr = np.full((len(rows), *shape), np.nan if o != "VERDICT" and o != "VERSION" else -1,
                          ok[0][o].dtype if o in ("VERDICT", "VERSION") else np.float32)
            for k, r in enumerate(rows):
                if not r["error"]:
                    arr[k] = r[o]
            out[o] = arr
    np.savez(job["out"], **out)
    return {"requests": len(rows), "errors": int(sum(1 for r in rows if r["error"])), "wall": wall}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        summary = run(json.load(f))
    print(json.dumps(summary))

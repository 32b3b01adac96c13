"""Probes the runtime as an attacker and a clumsy integrator would, and counts what happened: mutated
bundles (bytes flipped with and without re-sealed checksums, manifest fields set to hostile values
and re-sealed everywhere they are pinned) and malformed images, each loaded and run through
edge_sdk.Runtime in a worker process, so a crash or a hang is counted instead of ending the probe.

    python benchmarks/probe_reliability.py BUNDLE [BUNDLE ...] [--cases 300] [--seed 0] [--out probe.json]

Outcomes per case: refused (an exception naming the problem), judged (loaded and ran; every verdict
checked), crash (the worker died by a signal), hang (no answer within --timeout s). A "wrong accept"
is an "accept" verdict that the runtime could not have judged: a non-finite score or heatmap, an
error text, or an image that is malformed (NaN pixels, a dtype or shape the bundle cannot take).
The probe exits 1 when any case crashed, hung or accepted wrongly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOSTILE_VALUES = [0, -1, 1e-300, 1e300, 1e39, 1e-46, -1e300, 2**63, "x", None, [], {}, True]


def _numeric_paths(d, prefix=()):
    """Paths of every number inside the manifest's input, postprocess and calibration sections."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _numeric_paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _numeric_paths(v, prefix + (i,))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        yield prefix


def _seal(bundle: Path, manifest: dict) -> None:
    """Writes the manifest, re-embeds it in every ONNX file's metadata and re-seals every checksum:
    what someone who can write the bundle (but holds no signing key) can do."""
    import onnx

    from edge_sdk.bundle import manifest_for_onnx

    embedded = json.dumps(manifest_for_onnx(manifest), sort_keys=True, separators=(",", ":"))
    for net in manifest.get("networks", []):
        f = bundle / net["file"]
        if f.exists():
            m = onnx.load(str(f))
            for p in m.metadata_props:
                if p.key == "edge_sdk.manifest":
                    p.value = embedded
            f.write_bytes(m.SerializeToString())
    for name in list(manifest.get("files", {})):
        f = bundle / name
        if f.exists():
            data = f.read_bytes()
            manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def make_bundle_case(src: Path, dst: Path, rng: np.random.Generator) -> str:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    files = sorted(manifest["files"]) + ["manifest.json"]
    kind = rng.choice(["flip", "flip_resealed", "field"], p=[0.3, 0.3, 0.4])
    if kind == "field":
        paths = [p for sec in ("input", "postprocess", "calibration", "regions") if sec in manifest
                 for p in _numeric_paths(manifest[sec], (sec,))]
        path = paths[rng.integers(len(paths))]
        value = HOSTILE_VALUES[rng.integers(len(HOSTILE_VALUES))]
        d = manifest
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
        _seal(dst, manifest)
        return f"field {'.'.join(map(str, path))} = {value!r}"
    name = files[rng.integers(len(files))]
    data = bytearray((dst / name).read_bytes())
    pos = int(rng.integers(len(data)))
    data[pos] ^= 1 << int(rng.integers(8))
    (dst / name).write_bytes(bytes(data))
    if kind == "flip_resealed" and name != "manifest.json":
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (dst / "manifest.json").write_text(json.dumps(manifest))
    return f"{kind} {name}[{pos}]"


def image_cases(manifest: dict, rng: np.random.Generator) -> list[tuple[str, object, bool]]:
    """(label, image(s), must_not_accept). must_not_accept marks images the runtime cannot judge."""
    h, w, c = manifest["input"]["height"], manifest["input"]["width"], manifest["input"]["channels"]
    shape = (h, w, 3) if c == 3 else (h, w)
    good = rng.integers(0, 256, shape, dtype=np.uint8)
    nan = good.astype(np.float32)
    nan[h // 2, w // 2] = np.nan
    cases = [
        ("uint8", good, False),
        ("float32 NaN pixel", nan, True),
        ("float32 inf pixel", np.where(nan != nan, np.inf, nan).astype(np.float32), True),
        ("big-endian float32", good.astype(">f4"), False),
        ("uint16", good.astype(np.uint16) * 257, True),
        ("int8", good.astype(np.int8), True),
        ("complex64", good.astype(np.complex64), True),
        ("bool", good > 128, True),
        ("object", good.astype(object), True),
        ("(H, W, 2)", rng.integers(0, 256, (h, w, 2), dtype=np.uint8), True),
        ("(H, W, 4)", rng.integers(0, 256, (h, w, 4), dtype=np.uint8), True),
        ("(H, W, 5)", rng.integers(0, 256, (h, w, 5), dtype=np.uint8), True),
        ("empty (0, 0)", np.zeros((0, 0), np.uint8), True),
        ("1 x 1", np.zeros((1, 1, 3) if c == 3 else (1, 1), np.uint8), False),
        ("non-contiguous", good[:, ::-1], False),
        ("(N, H, W, C) batch of 3", np.stack([good] * 3), False),
    ]
    return cases


def _worker(conn) -> None:
    import edge_sdk

    while True:
        job = conn.recv()
        if job is None:
            return
        out = {"outcome": "judged", "wrong_accepts": 0, "detail": ""}
        try:
            rt = edge_sdk.Runtime(job["bundle"], threads=1, warmup=0)
            thr = float(rt.manifest["calibration"]["threshold"])
            images = job["images"] or [("uint8", np.random.default_rng(0).integers(
                0, 256, (rt.input_size[0], rt.input_size[1], 3) if rt.manifest["input"]["channels"] == 3
                else rt.input_size, dtype=np.uint8), False)]
            for label, img, must_not_accept in images:
                try:
                    r = rt.predict(img, on_error="review")
                except Exception as e:  # noqa: BLE001 - a refusal is an outcome
                    out["detail"] += f"[{label}: refused {type(e).__name__}] "
                    continue
                for i in range(len(r)):
                    if r.verdicts[i] != "accept":
                        continue
                    heat = None if r.heatmaps is None else r.heatmaps[i]
                    bad = (not np.isfinite(r.scores[i]) or r.scores[i] >= thr or r.errors[i] is not None
                           or (heat is not None and not np.isfinite(heat).all()) or must_not_accept)
                    if bad:
                        out["wrong_accepts"] += 1
                        if out["wrong_accepts"] <= 2:
                            out["detail"] += f"[{label}: WRONG ACCEPT score {r.scores[i]}] "
        except Exception as e:  # noqa: BLE001
            out = {"outcome": "refused", "wrong_accepts": 0, "detail": f"{type(e).__name__}: {str(e)[:200]}"}
        conn.send(out)


class Pool:
    def __init__(self, timeout: float):
        self.timeout, self.proc = timeout, None

    def run(self, job: dict) -> dict:
        if self.proc is None or not self.proc.is_alive():
            self.conn, child = mp.Pipe()
            self.proc = mp.get_context("spawn").Process(target=_worker, args=(child,), daemon=True)
            self.proc.start()
        self.conn.send(job)
        if not self.conn.poll(self.timeout):
            self.proc.kill()
            self.proc = None
            return {"outcome": "hang", "wrong_accepts": 0, "detail": f"no answer in {self.timeout} s"}
        try:
            return self.conn.recv()
        except EOFError:
            self.proc.join()
            code = self.proc.exitcode
            self.proc = None
            return {"outcome": "crash", "wrong_accepts": 0, "detail": f"worker exit code {code}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--cases", type=int, default=300, help="mutated bundles in all (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    pool = Pool(args.timeout)
    results = []
    with tempfile.TemporaryDirectory(prefix="edge-probe-") as tmp:
        for b in args.bundles:  # malformed images on each intact bundle
            manifest = json.loads((b / "manifest.json").read_text())
            for label, img, mna in image_cases(manifest, rng):
                r = pool.run({"bundle": str(b), "images": [(label, img, mna)]})
                results.append({"case": f"image {label}", "bundle": b.name, **r})
        for k in range(args.cases):
            src = args.bundles[k % len(args.bundles)]
            dst = Path(tmp) / f"case{k}"
            what = make_bundle_case(src, dst, rng)
            r = pool.run({"bundle": str(dst), "images": None})
            results.append({"case": what, "bundle": src.name, **r})
            shutil.rmtree(dst, ignore_errors=True)
            if (k + 1) % 50 == 0:
                print(f"{k + 1}/{args.cases} mutated bundles", flush=True)
    if pool.proc is not None:
        pool.conn.send(None)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    wrong = sum(r["wrong_accepts"] for r in results)
    summary = {"cases": len(results), **counts, "cases_with_wrong_accepts": sum(1 for r in results if r["wrong_accepts"]),
               "wrong_accepts": wrong,
               "bundle_mutations": sum(1 for r in results if not r["case"].startswith("image")),
               "image_cases": sum(1 for r in results if r["case"].startswith("image"))}
    print(json.dumps(summary))
    for r in results:
        if r["outcome"] in ("crash", "hang") or r["wrong_accepts"]:
            print(f"  {r['outcome']}: {r['bundle']} {r['case']}: {r['detail']}")
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "results": results}, indent=1, default=str))
    return 1 if wrong or counts.get("crash") or counts.get("hang") else 0


if __name__ == "__main__":
    sys.exit(main())

"""How late a deadline returns, through the C ABI (`edge_run` with `deadline_ms`), and how fast the
next cycle starts after an overrun cancels a network call.

The "slow" fixture of the SDK tests (a network of many similar convolutions, ~100+ ms an image on
this CPU), max_batch 1, one context, one thread. For each of `--repeats` cycles of 6 images the
budget is 2.5 x the median time of one image (so the worker is inside a network call when it
passes); the overshoot is the call's wall time minus the budget. docs/C_API.md states the figures.

    python benchmarks/bench_deadline.py [--repeats 15] [--out JSON]
"""

from __future__ import annotations

import argparse
import ctypes as C
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, write_json

import numpy as np  # noqa: E402


class OpenOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("device", C.c_char_p), ("backend", C.c_char_p),
                ("precision", C.c_char_p), ("onnxruntime_library", C.c_char_p), ("threads", C.c_int32),
                ("contexts", C.c_int32), ("max_batch", C.c_int32), ("heatmaps", C.c_int32),
                ("deadline_ms", C.c_double), ("review_band", C.c_double), ("trusted_keys", C.c_char_p)]


class Image(C.Structure):
    _fields_ = [("data", C.c_void_p), ("height", C.c_int32), ("width", C.c_int32), ("channels", C.c_int32),
                ("dtype", C.c_int32), ("row_stride", C.c_int64)]


class ImageResult(C.Structure):
    _fields_ = [("score", C.c_float), ("normalized", C.c_float), ("verdict", C.c_int32), ("status", C.c_int32),
                ("review", C.c_uint32), ("heatmap_height", C.c_int32), ("heatmap_width", C.c_int32),
                ("reserved", C.c_uint32), ("heatmap_offset", C.c_int64)]


class BatchOutputs(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("results", C.POINTER(ImageResult)), ("results_capacity", C.c_size_t),
                ("regions", C.c_void_p), ("regions_capacity", C.c_size_t), ("heatmaps", C.c_void_p),
                ("heatmaps_capacity", C.c_size_t), ("elapsed_ms", C.c_double), ("judged", C.c_uint32),
                ("not_judged", C.c_uint32), ("deadline_exceeded", C.c_int32), ("reserved", C.c_int32)]


def load_library():
    import edge_sdk

    lib = C.CDLL(str(Path(edge_sdk.__file__).parent / "libedge_sdk.so"))
    lib.edge_open.argtypes = [C.c_char_p, C.POINTER(OpenOptions), C.POINTER(C.c_void_p)]
    lib.edge_run.argtypes = [C.c_void_p, C.POINTER(Image), C.c_size_t, C.c_double, C.POINTER(BatchOutputs)]
    lib.edge_close.argtypes = [C.c_void_p]
    lib.edge_last_error.restype = C.c_char_p
    return lib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15, choices=range(3, 1001), metavar="3..1000")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_deadline.json")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "cpp" / "sdk_tests"))
    import make_fixtures as fx
    from edge_sdk.sdk import onnxruntime_library

    lib = load_library()
    tmp = Path(tempfile.mkdtemp(prefix="edge_deadline_"))
    images_np = fx._images(np.random.default_rng(0), 6, 256, 256)
    bundle = fx._export(fx._heavy_parts(256), tmp / "slow", None)

    opt = OpenOptions(struct_size=C.sizeof(OpenOptions), threads=1, contexts=1, max_batch=1, review_band=-1.0,
                      onnxruntime_library=str(onnxruntime_library()).encode())
    rt = C.c_void_p()
    if lib.edge_open(str(bundle).encode(), C.byref(opt), C.byref(rt)) != 0:
        raise SystemExit(f"edge_open: {lib.edge_last_error().decode()}")
    imgs = (Image * 6)(*[Image(data=images_np[i].ctypes.data, height=256, width=256, channels=3, dtype=1)  # EDGE_DTYPE_UINT8
                         for i in range(6)])
    res = (ImageResult * 6)()
    out = BatchOutputs(struct_size=C.sizeof(BatchOutputs), results=res, results_capacity=6)

    def run(count, deadline):
        t = time.perf_counter()
        status = lib.edge_run(rt, imgs, count, deadline, C.byref(out))
        return status, (time.perf_counter() - t) * 1e3

    run(1, 0)  # warm
    one = statistics.median(run(1, 0)[1] for _ in range(args.repeats))
    budget = 2.5 * one
    overshoot, after_cancel = [], []
    for _ in range(args.repeats):
        status, ms = run(6, budget)
        assert status != 0 and out.deadline_exceeded == 1, "the budget should pass inside the cycle"
        overshoot.append(ms - budget)
        run(6, 0)  # let the abandoned chunk end: the next measurement starts idle
        # An overrun at 10 % of a network call cancels it: the next cycle starts about at once.
        run(1, 0.1 * one)
        after_cancel.append(run(1, 0)[1])
    lib.edge_close(rt)
    rec = {"benchmark": "deadline", "repeats": args.repeats, "one_image_ms_median": one, "budget_ms": budget,
           "overshoot_ms": {"median": statistics.median(overshoot), "min": min(overshoot), "max": max(overshoot),
                            "all": overshoot},
           "cycle_after_cancelled_call_ms": {"median": statistics.median(after_cancel), "max": max(after_cancel),
                                             "vs_one_image": statistics.median(after_cancel) / one}}
    print(f"one image {one:.1f} ms (median); budget {budget:.1f} ms for 6 images")
    print(f"returned after the budget: median {rec['overshoot_ms']['median']:.2f} ms, "
          f"min {min(overshoot):.2f}, max {max(overshoot):.2f} ms ({args.repeats} cycles)")
    print(f"cycle right after an overrun at 10% of a network call: median {rec['cycle_after_cancelled_call_ms']['median']:.1f}"
          f" ms = {rec['cycle_after_cancelled_call_ms']['vs_one_image']:.2f} x one image (waiting for the call: ~1.9 x)")
    write_json(args.out, json.loads(json.dumps(rec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

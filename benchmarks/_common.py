"""Shared pieces of the benchmark scripts: thread pinning, timing, and the JSON record.

Timings are taken side by side in one run of a script; each method is warmed up once and then
timed `repeats` times, and the median is reported (the machine may be shared)."""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pin_threads(threads: int) -> None:
    """Same thread count for every contender: our pool, torch intra-op, BLAS/OpenMP."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    import edge_sdk

    torch.set_num_threads(threads)
    edge_sdk.set_num_threads(threads)


def median_seconds(fn, repeats: int = 3) -> float:
    fn()  # warm-up (allocations, thread start, lazy initialisation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cuda_device() -> str | None:
    import edge_sdk

    return "cuda:0" if any(d["kind"] == "cuda" for d in edge_sdk.devices()) else None


def write_json(path: Path, record: dict) -> None:
    """Atomic write (temp + rename) of the results with the machine description."""
    record = dict(record)
    record["machine"] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    from edge_sdk import atomic  # late: importing edge_sdk loads NumPy, after callers set thread counts

    atomic.write_json(path, record)
    print(f"results written to {path}")


def shuffled_rounds(names: list[str], repeats: int, seed: int = 0) -> list[list[str]]:
    """A shuffled order per round, never starting with the previous round's last contender.

    Alternating a fixed order with its reverse calls the contenders at both ends twice in a row at
    every round boundary, with their data still in the caches: PaDiM's batch-1 call then measured
    6 ms there and 12 ms elsewhere, which made the median of one runtime of two identical ones
    half as large again. Shuffled rounds give every contender every predecessor."""
    rng = random.Random(seed)
    rounds: list[list[str]] = []
    for _ in range(repeats):
        order = names[:]
        rng.shuffle(order)
        if rounds and len(order) > 1 and order[0] == rounds[-1][-1]:
            order[0], order[-1] = order[-1], order[0]
        rounds.append(order)
    return rounds

"""Runs a benchmark: for each batch size, opens the bundle in the runtime, warms up, times whole
cycles of predict calls, and summarizes them into the record (see ``run_bench``).

Two clocks are recorded per call: the caller's wall time around ``Runtime.predict``
(``time.perf_counter_ns``, monotonic: what an application waiting for the verdicts sees, binding
included) and the runtime's own per-stage times (``Results.times``: the C++ runtime's monotonic
clock on the CPU path; on a GPU path whatever the backend measures, see the record's ``timing``)."""

from __future__ import annotations

import datetime as _dt
import gc
import os
import time
from typing import Callable

import numpy as np

from edge_sdk.bench import environment, memory
from edge_sdk.bench.config import BenchConfig, BenchError
from edge_sdk.bench.inputs import InputPool, folder_pool, random_pool
from edge_sdk.bench.stats import budget_verdict, summarize

SCHEMA = "edge-sdk-bench"
SCHEMA_VERSION = 1
STAGES = ("preprocess", "host_to_device", "network", "postprocess", "device_to_host", "decision")


def _round(values, digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


def _open_runtime(config: BenchConfig, batch: int):
    import edge_sdk

    try:
        return edge_sdk.Runtime(config.bundle, device=config.device, threads=config.threads, precision=config.precision,
                                backend=config.backend, provider=config.provider, max_batch=batch,
                                heatmaps=config.heatmaps, warmup=1, openvino_device=config.openvino_device)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BenchError(f"cannot run {config.bundle} on device {config.device!r} with backend {config.backend!r}"
                         f"{'/' + config.provider if config.provider else ''}, precision {config.precision!r}: {exc}") from None


def _check_first_call(rt, x, config: BenchConfig, batch: int) -> int:
    """Runs one call and refuses inputs the runtime cannot judge (the benchmark would otherwise
    time a path that skips the network). Returns the number of images it did not judge."""
    try:
        res = rt.predict(x)
    except ValueError as exc:
        raise BenchError(f"the bundle refuses the benchmark's images ({exc}); choose --images, --shape or a "
                         "--preset the bundle accepts") from None
    bad = [e for e in res.errors if e]
    if len(bad) == len(res.errors):
        raise BenchError(f"batch {batch}: the runtime judged none of the images: {bad[0]}")
    return len(bad)


def _measure_batch(config: BenchConfig, pool: InputPool, batch: int, progress: bool, log: Callable[[str], None]) -> dict:
    rss = memory.PeakRss()
    gc.collect()
    rss.reset()
    t_open = time.perf_counter()
    rt = _open_runtime(config, batch)
    open_s = time.perf_counter() - t_open
    sizes = config.call_sizes(batch)
    # Inputs of one cycle, built before timing; consecutive calls see different images.
    cycle_inputs = [pool.batch(j * batch, s) for j, s in enumerate(sizes)]
    unjudged = _check_first_call(rt, cycle_inputs[0], config, batch)
    full_batch = pool.batch(0, batch)
    for _ in range(config.warmup):
        rt.predict(full_batch)

    call_ms: list[float] = []
    call_images: list[int] = []
    stage_ms: dict[str, list[float]] = {s: [] for s in (*STAGES, "total", "maps")}
    cycle_ms: list[float] = []
    stopped_early = False
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.iterations, desc=f"batch {batch}", unit="cycle", leave=True, dynamic_ncols=True)
    t_start = time.perf_counter()
    try:
        for it in range(config.iterations):
            cyc = 0.0
            for x, s in zip(cycle_inputs, sizes):
                t0 = time.perf_counter_ns()
                res = rt.predict(x)
                dt = (time.perf_counter_ns() - t0) / 1e6
                cyc += dt
                call_ms.append(dt)
                call_images.append(s)
                for k in stage_ms:
                    stage_ms[k].append(float(res.times.get(k, 0.0)))
            cycle_ms.append(cyc)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"last cycle {cyc:.1f} ms")
            if config.max_seconds is not None and time.perf_counter() - t_start > config.max_seconds \
                    and it + 1 < config.iterations:
                stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()
    measure_s = time.perf_counter() - t_start
    dev_bytes, dev_note = memory.device_memory_bytes(config.device)
    backend_desc = rt.backend
    del rt
    peak_rss = rss.peak_bytes()
    if stopped_early:
        log(f"batch {batch}: stopped after {len(cycle_ms)} of {config.iterations} cycles (--max-seconds "
            f"{config.max_seconds:g})")
    return _summarize_batch(config, batch, call_ms, call_images, stage_ms, cycle_ms, {
        "peak_rss_bytes": peak_rss, "peak_rss_scope": rss.scope,
        "peak_device_bytes": dev_bytes, "device_memory_note": dev_note,
    }, extra={"open_seconds": open_s, "measure_seconds": measure_s, "stopped_early": stopped_early,
              "unjudged_images_first_call": unjudged, "backend": backend_desc})


def _summarize_batch(config: BenchConfig, batch: int, call_ms, call_images, stage_ms, cycle_ms, mem: dict,
                     extra: dict) -> dict:
    # Figures are computed from the values as stored (nanosecond resolution), so anyone can
    # recompute them from the record's samples.
    call_ms, cycle_ms = _round(call_ms), _round(cycle_ms)
    stage_ms = {k: _round(v) for k, v in stage_ms.items()}
    call = np.asarray(call_ms, np.float64)
    n_img = np.asarray(call_images, np.int64)
    full = n_img == batch
    stages = {k: np.asarray(v, np.float64) for k, v in stage_ms.items()}
    wall_full = call[full]
    total_full = stages["total"][full]
    breakdown = {}
    for k in STAGES:
        v = stages[k][full]
        breakdown[k] = {"mean_ms": float(v.mean()), "p50_ms": float(np.median(v)),
                        "fraction_of_runtime_total": float(v.sum() / total_full.sum()) if total_full.sum() > 0 else 0.0}
    # Runtime time not attributed to a stage (unit layout, result buffers), and the binding's
    # share (Python <-> C++ conversion of images and results) between the caller and the runtime.
    other = total_full - sum(stages[k][full] for k in STAGES)
    binding = wall_full - total_full
    breakdown["runtime_other"] = {"mean_ms": float(other.mean()), "p50_ms": float(np.median(other))}
    breakdown["binding"] = {"mean_ms": float(binding.mean()), "p50_ms": float(np.median(binding))}
    # Post-processing split: the model's scoring kernels (k-NN, Mahalanobis, SSIM, ...) and the
    # anomaly maps (resize + blur; heatmaps and map-based scores).
    maps = stages["maps"][full]
    scoring = stages["postprocess"][full] - maps
    for name, v in (("postprocess_scoring", scoring), ("postprocess_maps", maps)):
        breakdown[name] = {"mean_ms": float(v.mean()), "p50_ms": float(np.median(v)),
                           "fraction_of_runtime_total": float(v.sum() / total_full.sum()) if total_full.sum() > 0 else 0.0}
    outside = total_full - stages["network"][full]
    result = {
        "batch": batch,
        "calls": int(call.size),
        "full_calls": int(full.sum()),
        "images": int(n_img.sum()),
        "cycles": len(cycle_ms),
        "calls_per_cycle": config.calls_per_cycle(batch),
        "units_per_cycle": int(sum(config.call_sizes(batch))),
        "latency_ms": {
            "per_batch": summarize(wall_full, "batch latency"),
            "per_image": summarize(wall_full / batch, "per-image latency"),
            "runtime_total_per_batch": summarize(total_full, "runtime total"),
        },
        "throughput_images_per_s": float(n_img.sum() / (call.sum() / 1e3)),
        "breakdown": breakdown,
        "outside_network_fraction": float(outside.sum() / total_full.sum()) if total_full.sum() > 0 else 0.0,
        # ... and without the model's scoring kernels: preprocessing, maps, decision, glue.
        "outside_network_and_scoring_fraction": (float((outside - scoring).sum() / total_full.sum())
                                                 if total_full.sum() > 0 else 0.0),
        "cycle_ms": summarize(cycle_ms, "cycle time"),
        "memory": mem,
        "budget": (budget_verdict(cycle_ms, config.budget_ms, int(sum(config.call_sizes(batch))), config.required_fraction)
                   if config.budget_ms is not None else None),
        "samples": {
            "call_ms": call_ms,
            "call_images": [int(v) for v in n_img],
            "cycle_ms": cycle_ms,
            "stages_ms": stage_ms,
        },
    }
    result.update(extra)
    return result


def _effective_threads(config: BenchConfig) -> int:
    if config.threads:
        return config.threads
    env = int(os.environ.get("EDGE_SDK_NUM_THREADS", "0") or 0)
    return env if env > 0 else environment.usable_cores()


def _read_manifest(bundle: str) -> dict:
    from edge_sdk.bundle import validate_bundle

    if not os.path.exists(bundle):
        raise BenchError(f"bundle not found: {bundle}")
    try:
        return validate_bundle(bundle)
    except (ValueError, OSError) as exc:
        raise BenchError(f"not a valid bundle: {exc}") from None


def make_pool(config: BenchConfig, manifest: dict) -> InputPool:
    if config.images_dir is not None:
        return folder_pool(config.images_dir, manifest)
    return random_pool(manifest, count=min(max(config.batches), 64), shape=config.image_shape, seed=config.seed)


def run_bench(config: BenchConfig, *, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Measures every batch size of ``config`` and returns the record (a JSON-ready dict; see
    docs/ARCHITECTURE.md, "Latency benchmarking", for its fields)."""
    config.validate()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    manifest = _read_manifest(config.bundle)
    pool = make_pool(config, manifest)
    results = []
    for b in config.batches:
        log(f"batch {b}: {config.iterations} cycle(s) of {config.calls_per_cycle(b)} call(s), warm-up {config.warmup}")
        results.append(_measure_batch(config, pool, b, progress, log))
    threads = _effective_threads(config)
    on_gpu = config.device.startswith("cuda")
    record = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": {
            "path": os.path.abspath(config.bundle),
            "sha256": environment.bundle_checksum(config.bundle),
            "sha256_of": "manifest.json (which holds the sha256 of every other file)",
            "model_type": manifest["model"]["type"],
            "postprocess_kind": manifest["postprocess"]["kind"],
            "input": {k: manifest["input"][k] for k in ("height", "width", "channels")},
            "regions": len(manifest.get("regions") or []),
            "precisions": sorted({n["precision"] for n in manifest["networks"]}),
        },
        "config": config.to_json(),
        "inputs": {"source": pool.source, "shape": list(pool.shape) if pool.shape else None, "dtype": pool.dtype,
                   "distinct_images": len(pool.images)},
        "environment": environment.describe(threads, results[0]["backend"] if results else None),
        "timing": {
            "latency": "wall time around Runtime.predict in the calling process (time.perf_counter_ns, monotonic)",
            "stages": ("runtime Results.times: " + ("stage times as the GPU backend measures them"
                                                   if on_gpu else "C++ std::chrono::steady_clock (monotonic) per stage; "
                                                   "host<->device copies are 0 on the CPU")),
            "per_image": "batch latency / batch size",
            "throughput": "images of all timed calls / their summed wall time",
        },
        "results": results,
    }
    record["environment"]["load_average_1min_before"] = load_before
    cores = os.cpu_count() or 1
    if load_before is not None and load_before > 0.25 * cores:
        record["notes"] = [f"other work was running when the benchmark started (1-min load average {load_before:.2f} "
                           f"on {cores} cores): figures include interference"]
    return record

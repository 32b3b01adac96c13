"""The machine and software a benchmark ran on, and the identity of the bundle, for the record.

Nothing here imports torch or creates a CUDA context: GPU facts come from the driver's libraries
(edge_sdk.gpu_info; none without a driver), library versions from package metadata and from the
runtime's own description of the backend it loaded."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

from edge_sdk import gpu_info


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; os.cpu_count() where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpus() -> list[dict]:
    """Index, name, driver release, compute capability and memory of each NVIDIA GPU
    (edge_sdk.gpu_info), [] without a driver."""
    release = gpu_info.driver_release()
    return [{"index": g.index, "name": g.name, "driver": release,
             "compute_capability": list(g.compute_capability) if g.compute_capability else None,
             "memory_total_mib": round(g.total_memory / 2**20, 1) if g.total_memory is not None else None}
            for g in gpu_info.gpus()]


def tensorrt_version() -> str | None:
    """TensorRT's Python package version when installed (the engine builder uses it)."""
    for name in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_cu12", "tensorrt-libs"):
        v = _package_version(name)
        if v:
            return v
    return None


def bundle_checksum(bundle: str | os.PathLike) -> str:
    """sha256 of the bundle's manifest.json. The manifest lists the sha256 of every other file of
    the bundle (checked by the validator when the runtime opens it), so this one digest pins the
    whole bundle, and is the same for a bundle directory and its packed archive."""
    p = Path(bundle)
    if p.is_dir():
        data = (p / "manifest.json").read_bytes()
    else:
        from edge_sdk.bundle.reader import read_archive_files

        data = read_archive_files(p, ["manifest.json"])["manifest.json"]
    return hashlib.sha256(data).hexdigest()


def describe(threads: int, backend_description: str | None = None) -> dict:
    """The environment block of a benchmark record."""
    import edge_sdk

    gpu_list = gpus()
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable_cores(),
        "threads": threads,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "gpus": gpu_list,
        "gpu_name": gpu_list[0]["name"] if gpu_list else None,
        "gpu_driver": gpu_list[0]["driver"] if gpu_list else None,
        "cuda_driver_version": gpu_info.cuda_driver_version() if gpu_list else None,
        "edge_sdk_built_with_cuda": edge_sdk.built_with_cuda(),
        "tensorrt_version": tensorrt_version(),
        "onnxruntime_version": _package_version("onnxruntime") or _package_version("onnxruntime-gpu"),
        "openvino_version": _package_version("openvino"),
        "backend": backend_description,
        "sdk_version": edge_sdk.__version__,
        "python": sys.version.split()[0],
        "numpy": _package_version("numpy"),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }

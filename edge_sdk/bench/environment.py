"""The machine and software a benchmark ran on, and the identity of the bundle, for the record.

Nothing here imports torch or initializes CUDA: GPU facts come from ``nvidia-smi`` (absent on
machines without a driver), library versions from package metadata and from the runtime's own
description of the backend it loaded."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


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


def _nvidia_smi(query: list[str]) -> list[list[str]] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *query], capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line.strip()]


def gpus() -> list[dict]:
    """Name, driver, memory of each NVIDIA GPU (nvidia-smi), [] without a driver."""
    rows = _nvidia_smi(["--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader,nounits"])
    if not rows:
        return []
    out = []
    for r in rows:
        if len(r) >= 4:
            out.append({"index": int(r[0]) if r[0].isdigit() else r[0], "name": r[1], "driver": r[2],
                        "memory_total_mib": float(r[3]) if r[3].replace(".", "", 1).isdigit() else r[3]})
    return out


def cuda_driver_version() -> str | None:
    """The CUDA version the driver supports (from nvidia-smi's banner), None without a driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    marker = "CUDA Version:"
    i = out.find(marker)
    return out[i + len(marker):].split()[0] if i >= 0 else None


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
        "cuda_driver_version": cuda_driver_version() if gpu_list else None,
        "edge_sdk_built_with_cuda": edge_sdk.built_with_cuda(),
        "tensorrt_version": tensorrt_version(),
        "onnxruntime_version": _package_version("onnxruntime") or _package_version("onnxruntime-gpu"),
        "backend": backend_description,
        "sdk_version": edge_sdk.__version__,
        "python": sys.version.split()[0],
        "numpy": _package_version("numpy"),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }

"""Facts about this machine's NVIDIA GPUs, read one way: the driver's own libraries through ctypes
(libcuda for the devices and the CUDA version the driver supports, NVML for the driver release,
libcudart for the CUDA runtime a process would load). Nothing here needs the CUDA toolkit, torch,
nvidia-smi or a CUDA build of edge_sdk; every fact is None (or the list empty) without a driver.

``edge_sdk.devices()`` is a different question: what the C++ runtime of this build can use.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

# CUdevice_attribute values of the driver API
_CC_MAJOR, _CC_MINOR = 75, 76


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str | None
    compute_capability: tuple[int, int] | None
    total_memory: int | None  # bytes


def _version_text(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def _libcuda():
    """The initialized driver library, or None without a driver."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    return cuda if cuda.cuInit(0) == 0 else None


def cuda_driver_version() -> str | None:
    """The CUDA version the driver supports ("12.8"), None without a driver."""
    cuda = _libcuda()
    version = ctypes.c_int()
    if cuda is None or cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return _version_text(version.value)


def gpu(index: int) -> Gpu | None:
    """Name, compute capability and memory of CUDA device ``index``; None when there is no such device."""
    cuda = _libcuda()
    dev = ctypes.c_int()
    if cuda is None or cuda.cuDeviceGet(ctypes.byref(dev), index) != 0:
        return None
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(), ctypes.c_int()
    cc_ok = (cuda.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, dev) == 0
             and cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, dev) == 0)
    memory = ctypes.c_size_t()
    mem_ok = cuda.cuDeviceTotalMem_v2(ctypes.byref(memory), dev) == 0
    return Gpu(index=index, name=name.value.decode() if cuda.cuDeviceGetName(name, 256, dev) == 0 else None,
               compute_capability=(major.value, minor.value) if cc_ok else None,
               total_memory=int(memory.value) if mem_ok else None)


def gpus() -> list[Gpu]:
    """Every CUDA device the driver lists, [] without a driver."""
    cuda = _libcuda()
    count = ctypes.c_int()
    if cuda is None or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    return [g for g in (gpu(i) for i in range(count.value)) if g is not None]


def driver_release() -> str | None:
    """The driver release ("570.86.15") from NVML, None without a driver."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    buf = ctypes.create_string_buffer(96)
    try:
        return buf.value.decode() if nvml.nvmlSystemGetDriverVersion(buf, 96) == 0 else None
    finally:
        nvml.nvmlShutdown()


def cuda_runtime_version() -> str | None:
    """The CUDA runtime a process here loads (libcudart), or None."""
    for name in ("libcudart.so.13", "libcudart.so.12", "libcudart.so"):
        try:
            rt = ctypes.CDLL(name)
        except OSError:
            continue
        v = ctypes.c_int()
        if rt.cudaRuntimeGetVersion(ctypes.byref(v)) == 0:
            return _version_text(v.value)
    return None

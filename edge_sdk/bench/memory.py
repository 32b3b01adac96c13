"""Peak memory of a benchmark phase: resident set of this process (Linux VmHWM, reset per phase
through /proc/self/clear_refs) and device memory held by this process (nvidia-smi)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess


def _vm_hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakRss:
    """Peak resident memory since ``reset()``. Where the kernel lets the process reset its
    high-water mark (writing 5 to /proc/self/clear_refs, Linux >= 4.0) the peak is that of the
    phase; otherwise it is the process's lifetime peak (``scope`` says which)."""

    def __init__(self) -> None:
        self.scope = "process lifetime"

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            self.scope = "phase"
        except OSError:
            self.scope = "process lifetime"

    def peak_bytes(self) -> int:
        v = _vm_hwm_bytes()
        if v is not None:
            return v
        # ru_maxrss: kilobytes on Linux, bytes on macOS.
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(r) if os.uname().sysname == "Darwin" else int(r) * 1024


def device_memory_bytes(device: str) -> tuple[int | None, str]:
    """(bytes of GPU memory this process holds on the device, how it was measured), or (None,
    why not). nvidia-smi reports the process's allocation including the CUDA context; the
    runtime's allocators keep what they reserved, so read after a phase it is that phase's peak."""
    if not device.startswith("cuda"):
        return None, f"not applicable (device {device})"
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "not measured: nvidia-smi not found"
    index = device.split(":", 1)[1] if ":" in device else "0"
    try:
        uuid = subprocess.run([exe, "-i", index, "--query-gpu=uuid", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20, check=True).stdout.strip()
        rows = subprocess.run([exe, "--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"not measured: nvidia-smi failed ({exc})"
    pid = str(os.getpid())
    for line in rows.strip().splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) >= 3 and cols[0] == pid and cols[1] == uuid:
            try:
                return int(float(cols[2]) * 1024 * 1024), "nvidia-smi used_memory of this process (includes the CUDA context)"
            except ValueError:
                return None, f"not measured: nvidia-smi reported {cols[2]!r}"
    return None, "not measured: nvidia-smi lists no memory of this process on the device (containers may hide PIDs)"

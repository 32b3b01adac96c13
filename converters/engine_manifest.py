"""The manifest written beside each TensorRT engine, what this machine is, and whether an engine
may run here.

A serialized TensorRT engine is specific to the TensorRT version and the GPU it was built on, and is
only as right as the ONNX file it came from. The manifest (``<engine>.json``) records those facts;
:func:`engine_differences` compares it with the machine and with what the bundle expects, and
returns what differs, one entry per field, so a loader can refuse with a message that names it.
The C++ TensorRT backend applies the same rules (``cpp/src/runtime/engine_manifest.cpp``); both
are tested on the cases in ``tests/data/engine_manifest_cases.json``.

Rules (an engine is refused when any holds):
- ``tensorrt_version``: not exactly the TensorRT version of this process (engines are built without
  version compatibility);
- ``gpu.compute_capability`` or ``gpu.name``: not this GPU's (engines are built for one SM, and
  TensorRT tunes kernels for the exact device model);
- ``cuda_runtime_version``: newer than what this machine's driver supports;
- ``source_onnx_sha256``: not the sha256 of the bundle's ONNX file for this network and precision;
- ``precision``: not the requested one;
- ``profiles``: the largest batch the runtime will run exceeds the profile's max, or the input's
  non-batch dimensions differ from the bundle's.
A different driver release alone is not a reason (the driver is backward compatible); it is reported
as a note.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from edge_sdk import gpu_info

SCHEMA = "edge_sdk.engine"
SCHEMA_VERSION = 1
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str, "schema_version": int, "engine_file": str, "engine_sha256": str, "network": str,
    "precision": str, "source_onnx": str, "source_onnx_sha256": str, "tensorrt_version": str,
    "cuda_runtime_version": (str, type(None)), "cuda_driver_version": (str, type(None)),
    "driver_version": (str, type(None)), "gpu": dict, "inputs": list, "outputs": list,
    "profiles": list, "builder": dict,
}


class EngineManifestError(ValueError):
    """A manifest that cannot be read or lacks a field; the message names the file and field."""


@dataclass
class Difference:
    field: str
    message: str


@dataclass
class MachineInfo:
    """What an engine is checked against. Any unknown fact is None (and then not compared)."""

    tensorrt_version: str | None = None
    cuda_driver_version: str | None = None  # the CUDA version the driver supports, "12.8"
    driver_version: str | None = None  # the driver release, "570.86.15"
    gpu_name: str | None = None
    compute_capability: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        cc = list(self.compute_capability) if self.compute_capability else None
        return {"tensorrt_version": self.tensorrt_version, "cuda_driver_version": self.cuda_driver_version,
                "driver_version": self.driver_version, "gpu_name": self.gpu_name, "compute_capability": cc}


@dataclass
class Expected:
    """What the bundle and the caller require of the engine."""

    source_onnx_sha256: str | None = None
    precision: str | None = None
    max_batch: int | None = None  # the largest batch the runtime will enqueue
    input_shapes: dict[str, Sequence[int]] | None = None  # name -> (C,H,W) without the batch axis


@dataclass
class CheckResult:
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def message(self, engine: str | os.PathLike[str]) -> str:
        lines = [f"{engine}: the engine does not match this machine or bundle:"]
        lines += [f"  {d.field}: {d.message}" for d in self.differences]
        return "\n".join(lines)


def manifest_path(engine: str | os.PathLike[str]) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def validate_manifest(m: Any, source: str = "engine manifest") -> dict[str, Any]:
    """Checks the fields and their types; returns m. Raises EngineManifestError naming the field."""
    if not isinstance(m, dict):
        raise EngineManifestError(f"{source}: expected a JSON object")
    for key, typ in REQUIRED.items():
        if key not in m:
            raise EngineManifestError(f"{source}: missing field {key!r}")
        if not isinstance(m[key], typ) or isinstance(m[key], bool):
            raise EngineManifestError(f"{source}: field {key!r} has the wrong type ({type(m[key]).__name__})")
    if m["schema"] != SCHEMA:
        raise EngineManifestError(f"{source}: field 'schema' is {m['schema']!r}, expected {SCHEMA!r}")
    if m["schema_version"] != SCHEMA_VERSION:
        raise EngineManifestError(f"{source}: unsupported schema_version {m['schema_version']} (this SDK reads {SCHEMA_VERSION})")
    gpu = m["gpu"]
    cc = gpu.get("compute_capability")
    if not isinstance(gpu.get("name"), str) or not (isinstance(cc, list) and len(cc) == 2 and all(isinstance(v, int) for v in cc)):
        raise EngineManifestError(f"{source}: field 'gpu' needs 'name' (string) and 'compute_capability' [major, minor]")
    for i, p in enumerate(m["profiles"]):
        if not isinstance(p, dict):
            raise EngineManifestError(f"{source}: profiles[{i}] is not an object")
        for name, s in p.items():
            if not (isinstance(s, dict) and all(isinstance(s.get(k), list) for k in ("min", "opt", "max"))):
                raise EngineManifestError(f"{source}: profiles[{i}].{name} needs 'min', 'opt' and 'max' shapes")
    return m


def read_manifest(engine: str | os.PathLike[str]) -> dict[str, Any]:
    path = manifest_path(engine)
    if not path.is_file():
        raise EngineManifestError(f"{path}: engine manifest not found (every engine is written with one)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineManifestError(f"{path}: not readable JSON ({exc})") from exc
    return validate_manifest(data, str(path))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def engine_differences(manifest: dict[str, Any], machine: MachineInfo, expected: Expected) -> CheckResult:
    """Compares a validated manifest with the machine and the expectations (see module doc)."""
    r = CheckResult()
    d = r.differences
    if machine.tensorrt_version is not None and manifest["tensorrt_version"] != machine.tensorrt_version:
        d.append(Difference("tensorrt_version", f"engine built with TensorRT {manifest['tensorrt_version']}, "
                                                f"this process has TensorRT {machine.tensorrt_version}"))
    gpu = manifest["gpu"]
    if machine.compute_capability is not None and tuple(gpu["compute_capability"]) != tuple(machine.compute_capability):
        want = "{}.{}".format(*gpu["compute_capability"])
        have = "{}.{}".format(*machine.compute_capability)
        d.append(Difference("gpu.compute_capability", f"engine built for sm {want}, this GPU is sm {have}"))
    if machine.gpu_name is not None and gpu["name"] != machine.gpu_name:
        d.append(Difference("gpu.name", f"engine built on {gpu['name']!r}, this GPU is {machine.gpu_name!r}"))
    need = manifest["cuda_runtime_version"]
    if need is not None and machine.cuda_driver_version is not None:
        if _version_tuple(machine.cuda_driver_version)[:2] < _version_tuple(need)[:2]:
            d.append(Difference("cuda_runtime_version", f"engine needs CUDA {need}, this driver supports "
                                                        f"CUDA {machine.cuda_driver_version}"))
    if machine.driver_version is not None and manifest["driver_version"] not in (None, machine.driver_version):
        r.notes.append(f"driver_version: built with driver {manifest['driver_version']}, this machine has "
                       f"{machine.driver_version} (not a reason to rebuild)")
    if expected.source_onnx_sha256 is not None and manifest["source_onnx_sha256"] != expected.source_onnx_sha256:
        d.append(Difference("source_onnx_sha256", f"engine built from {manifest['source_onnx']} with sha256 "
                                                  f"{manifest['source_onnx_sha256'][:12]}..., the bundle's file has "
                                                  f"{expected.source_onnx_sha256[:12]}..."))
    if expected.precision is not None and manifest["precision"] != expected.precision:
        d.append(Difference("precision", f"engine is {manifest['precision']}, {expected.precision} was asked for"))
    profile = manifest["profiles"][0] if manifest["profiles"] else {}
    if expected.max_batch is not None:
        for name, s in profile.items():
            if expected.max_batch > s["max"][0] or expected.max_batch < s["min"][0]:
                d.append(Difference("profiles", f"input {name!r} accepts batches {s['min'][0]}..{s['max'][0]}, "
                                                f"the runtime needs {expected.max_batch}"))
    if expected.input_shapes is not None:
        for name, shape in expected.input_shapes.items():
            s = profile.get(name)
            if s is None:
                d.append(Difference("profiles", f"engine has no optimization profile for input {name!r}"))
            elif list(s["max"][1:]) != list(shape):
                d.append(Difference("profiles", f"input {name!r} is {list(s['max'][1:])} per image in the engine, "
                                                f"{list(shape)} in the bundle"))
    return r


# ---- this machine ---------------------------------------------------------------------------------

def machine_info(device_index: int = 0, tensorrt_version: str | None = None) -> MachineInfo:
    """This machine's facts for device ``device_index`` (edge_sdk.gpu_info)."""
    device = gpu_info.gpu(device_index)
    return MachineInfo(tensorrt_version=tensorrt_version, cuda_driver_version=gpu_info.cuda_driver_version(),
                       driver_version=gpu_info.driver_release(), gpu_name=device.name if device else None,
                       compute_capability=device.compute_capability if device else None)

"""TensorRT engines of a bundle: which ONNX file each is built from, and which engine in
``BUNDLE/engines/`` may run on this machine (rebuilding it from the bundle's ONNX when allowed).

Engines are machine-specific, so they live in the bundle's reserved ``engines/`` folder, outside
the checksummed file list, each with its manifest (converters/engine_manifest.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from edge_sdk.atomic import sha256_file

from . import engine_manifest as em

ENGINES_DIR = "engines"


class EngineSelectionError(ValueError):
    """No usable engine; the message lists every candidate and what differs."""


def _manifest(bundle: Path) -> dict[str, Any]:
    """The manifest of a bundle checked by THE validator (edge_sdk.bundle, i.e. edge::load_bundle):
    an engine is only as trustworthy as the bundle it claims to come from."""
    from edge_sdk.bundle import validate_bundle

    if not (bundle / "manifest.json").is_file():
        raise ValueError(f"{bundle / 'manifest.json'}: not found; {bundle} is not a bundle directory")
    manifest: dict[str, Any] = validate_bundle(bundle)
    return manifest


def network_files(bundle: str | os.PathLike[str], precision: str) -> list[tuple[str, Path]]:
    """(network name, ONNX path) of every network of the bundle in ``precision``. A variant that
    failed the accuracy gate was never written, and asking for it is an error naming the ones present."""
    bundle = Path(bundle)
    doc = _manifest(bundle)
    out, present = [], set()
    for i, n in enumerate(doc["networks"]):
        if not isinstance(n, dict) or not all(isinstance(n.get(k), str) for k in ("name", "precision", "file")):
            raise ValueError(f"{bundle / 'manifest.json'}: networks[{i}] needs 'name', 'precision' and 'file' strings")
        present.add(n["precision"])
        if n["precision"] == precision:
            out.append((n["name"], bundle / n["file"]))
    if not out:
        raise ValueError(f"{bundle}: no {precision} variant of the network (the bundle has "
                         f"{', '.join(sorted(present)) or 'none'}; a variant that failed the accuracy gate is "
                         "not written, see `edge-sdk inspect`)")
    return out


def onnx_sha256(bundle: str | os.PathLike[str], file: str) -> str:
    """The sha256 the bundle's manifest lists for ``file``."""
    doc = _manifest(Path(bundle))
    entry = doc["files"].get(file)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise ValueError(f"{Path(bundle) / 'manifest.json'}: files.{file}.sha256 missing")
    return str(entry["sha256"])


def find_engine(
    bundle: str | os.PathLike[str],
    network: str,
    precision: str,
    machine: em.MachineInfo,
    *,
    max_batch: int,
    input_shapes: dict[str, Sequence[int]] | None = None,
    engines_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    build_options: Any = None,
) -> Path:
    """The engine of ``network`` in ``precision`` that matches this machine and the bundle.

    Candidates are ``<engines_dir>/<network>.<precision>.*.engine`` with a manifest. When none
    matches: with ``rebuild`` the engine is rebuilt from the bundle's ONNX (needs TensorRT; the
    profile's max batch is raised to ``max_batch`` if needed), otherwise EngineSelectionError says,
    for each candidate, what differs.
    """
    bundle = Path(bundle)
    files = dict(network_files(bundle, precision))
    if network not in files:
        raise EngineSelectionError(f"{bundle}: no network {network!r} in {precision}")
    onnx = files[network]
    expected = em.Expected(source_onnx_sha256=onnx_sha256(bundle, onnx.name), precision=precision,
                           max_batch=max_batch, input_shapes=input_shapes)
    folder = Path(engines_dir) if engines_dir else bundle / ENGINES_DIR
    problems = []
    for engine in sorted(folder.glob(f"{network}.{precision}.*.engine")):
        try:
            result = em.engine_differences(em.read_manifest(engine), machine, expected)
        except em.EngineManifestError as exc:
            problems.append(f"  {engine.name}: {exc}")
            continue
        if result.ok:
            if sha256_file(engine) != em.read_manifest(engine)["engine_sha256"]:
                problems.append(f"  {engine.name}: engine_sha256: the file does not match its manifest (corrupt?)")
                continue
            return engine
        problems += [f"  {engine.name}: {d.field}: {d.message}" for d in result.differences]
    if rebuild:
        from . import trt_builder as tb

        options = build_options or tb.BuildOptions(precision=precision)
        options.precision = precision
        lo, opt, hi = options.profile
        options.profile = (min(lo, max_batch), min(max(opt, 1), max(hi, max_batch)), max(hi, max_batch))
        tb.require_tensorrt()
        if machine.compute_capability is None:
            raise tb.TensorRTUnavailable("cannot rebuild the engine: no CUDA device found")
        if options.timing_cache is None:
            options.timing_cache = folder / "timing.cache"
        engine = folder / tb.engine_file_name(network, precision, machine.compute_capability)
        tb.build_engine(onnx, engine, network=network, options=options)
        return engine
    if not problems:
        raise EngineSelectionError(f"{folder}: no {precision} engine for network {network!r}; build one with "
                                   f"`edge-sdk build-engine {bundle} --precision {precision}` (or allow rebuilding)")
    raise EngineSelectionError(f"{folder}: no {precision} engine for network {network!r} matches this machine "
                               "and bundle:\n" + "\n".join(problems) +
                               f"\nRebuild with `edge-sdk build-engine {bundle} --precision {precision}` "
                               "(or allow rebuilding).")


def _cuda_index(device: str) -> int:
    """"cuda" / "cuda:N" -> N; anything else is refused (engines are built on a GPU)."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"device: TensorRT engines are built and run on a CUDA device ('cuda:N'), got {device!r}")


def ensure_engines(
    bundle: str | os.PathLike[str],
    precision: str,
    *,
    device: str = "cuda:0",
    max_batch: int = 16,
    engines_dir: str | os.PathLike[str] | None = None,
    build_options: Any = None,
) -> list[Path]:
    """An engine for every network of the bundle in ``precision`` that matches this machine and the
    bundle: the one present, or one rebuilt from the bundle's ONNX (TensorRT's Python package and a
    GPU needed; TensorRTUnavailable says what is missing). Call it before
    ``edge_sdk.Runtime(..., backend="tensorrt")``: the runtime loads engines, it never builds them."""
    from . import trt_builder as tb

    index = _cuda_index(device)
    tb.require_tensorrt()
    import tensorrt as trt

    machine = em.machine_info(index, trt.__version__)
    doc = _manifest(Path(bundle))
    out: list[Path] = []
    for name, _ in network_files(bundle, precision):
        entry = next(n for n in doc["networks"] if n["name"] == name and n["precision"] == precision)
        shapes: dict[str, Sequence[int]] = {str(t["name"]): [int(d) for d in t["shape"][1:]] for t in entry["inputs"]}
        options = build_options or tb.BuildOptions(precision=precision, device_index=index)
        out.append(find_engine(bundle, name, precision, machine, max_batch=max_batch, input_shapes=shapes,
                               engines_dir=engines_dir, rebuild=True, build_options=options))
    return out

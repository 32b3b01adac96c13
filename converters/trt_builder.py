"""Builds a serialized TensorRT engine from an ONNX network (any precision variant) and writes the
engine manifest beside it.

The network is created strongly typed: precision comes from the ONNX graph (float32, the float16
variant, or the Q/DQ int8 variant of converters/precision.py), never from builder flags, which
TensorRT 10 deprecates and TensorRT 11 removes. One optimization profile covers the batch axis
(min/opt/max); the other input dimensions are the ONNX file's. A timing cache file is read before and
written after each build, so rebuilding (another precision, another bundle with the same backbone)
reuses the kernel timings. The equivalent ``trtexec`` command line is returned with the manifest.

Engine building from ONNX lives here, in Python, because TensorRT's ONNX parser ships with the
TensorRT Python package; the C++ runtime only deserializes engines. This module is type-checked
with mypy against ``tensorrt-stubs`` (tests/test_trt_builder.py), since TensorRT itself cannot be
installed on machines without NVIDIA's package index.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from edge_sdk import gpu_info
from edge_sdk.atomic import sha256_file, write_bytes, write_json

from . import engine_manifest as em

if TYPE_CHECKING:  # the real module is imported where it is used, after require_tensorrt()
    import tensorrt


class TensorRTUnavailable(RuntimeError):
    """TensorRT's Python package (or a GPU) is missing; the message says what to install."""


class EngineBuildError(RuntimeError):
    """TensorRT refused the network; the message names the ONNX nodes involved."""


@dataclass
class BuildOptions:
    precision: str = "fp32"  # which ONNX variant the engine is built from (recorded, not a flag)
    profile: tuple[int, int, int] = (1, 60, 64)  # batch min, opt, max
    workspace_mib: int = 4096
    timing_cache: Path | None = None
    optimization_level: int = 3
    device_index: int = 0
    # TF32 for float32 layers. Off by default: a float32 engine then computes what the float32
    # reference (onnxruntime) does, and reduced precision only comes from a gated ONNX variant.
    tf32: bool = False


@dataclass
class TensorSpec:
    name: str
    shape: list[int]  # -1 for a dynamic dimension
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}


def require_tensorrt() -> None:
    """Raises TensorRTUnavailable unless TensorRT's Python package works. tensorrt-stubs installs a
    `tensorrt/` folder of .pyi files that Python imports as an empty namespace package, so success
    is checked by content, not by the import alone."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(_missing_message()) from exc
    if not hasattr(trt, "Builder"):
        raise TensorRTUnavailable(_missing_message())


def _missing_message() -> str:
    return ("TensorRT's Python package is not installed (`import tensorrt` failed; only type stubs, if "
            "anything, are present). Install TensorRT 10 for your CUDA version (`pip install tensorrt` "
            "with NVIDIA's package index reachable) on a machine with an NVIDIA GPU, then run this again.")


def parse_profile(text: str | Sequence[int], arg: str = "--profile") -> tuple[int, int, int]:
    """"1,60,64" -> (1, 60, 64): batch min, opt, max with 1 <= min <= opt <= max."""
    try:
        parts = [int(p) for p in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise ValueError(f"{arg}: expected three integers MIN,OPT,MAX, got {text!r}") from None
    if len(parts) != 3:
        raise ValueError(f"{arg}: expected three integers MIN,OPT,MAX, got {text!r}")
    lo, opt, hi = parts
    if not 1 <= lo <= opt <= hi:
        raise ValueError(f"{arg}: need 1 <= MIN <= OPT <= MAX, got {lo},{opt},{hi}")
    return lo, opt, hi


def onnx_io(onnx_path: str | os.PathLike[str]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX file as written in the graph (dynamic dimensions as -1)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}

    def spec(v: Any) -> TensorSpec:
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return TensorSpec(v.name, dims, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name)

    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    return inputs, [spec(v) for v in model.graph.output]


def profile_shapes(inputs: Sequence[TensorSpec], profile: tuple[int, int, int],
                   source: str = "onnx") -> dict[str, dict[str, list[int]]]:
    """min/opt/max shapes of every input: the batch axis from the profile, the rest from the graph."""
    out: dict[str, dict[str, list[int]]] = {}
    for t in inputs:
        if not t.shape:
            raise EngineBuildError(f"{source}: input {t.name!r} is a scalar; expected a batch axis first")
        rest = t.shape[1:]
        if any(d < 0 for d in rest):
            raise EngineBuildError(f"{source}: input {t.name!r} has dynamic dimensions besides the batch axis "
                                   f"({t.shape}); export it with a fixed image size")
        if t.shape[0] >= 0 and profile != (t.shape[0],) * 3:
            raise EngineBuildError(f"{source}: input {t.name!r} has a fixed batch of {t.shape[0]}, the profile asks "
                                   f"for {profile[0]}..{profile[2]}; export it with a dynamic batch axis")
        out[t.name] = {k: [b, *rest] for k, b in zip(("min", "opt", "max"), profile)}
    return out


def trtexec_command(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str],
                    shapes: dict[str, dict[str, list[int]]], options: BuildOptions) -> str:
    """The trtexec command line that builds the same engine (for reproducing a build by hand)."""
    def fmt(key: str) -> str:
        return ",".join(f"{name}:{'x'.join(str(d) for d in s[key])}" for name, s in shapes.items())

    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}", "--stronglyTyped",
            f"--minShapes={fmt('min')}", f"--optShapes={fmt('opt')}", f"--maxShapes={fmt('max')}",
            f"--memPoolSize=workspace:{options.workspace_mib}M",
            f"--builderOptimizationLevel={options.optimization_level}", f"--device={options.device_index}"]
    if options.timing_cache is not None:
        args.append(f"--timingCacheFile={options.timing_cache}")
    if not options.tf32:
        args.append("--noTF32")
    return " ".join(shlex.quote(a) for a in args)


def parser_errors(parser: "tensorrt.OnnxParser") -> str:
    """Every ONNX parser error with the node index, name and operator it concerns."""
    lines = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        where = f"node {e.node()} ({e.node_operator()} {e.node_name()!r})" if e.node() >= 0 else "graph"
        lines.append(f"  {where}: {e.code()}: {e.desc()}")
    return "\n".join(lines)


def build_engine(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], *, network: str,
                 options: BuildOptions, verbose: bool = False) -> dict[str, Any]:
    """Builds the engine, writes it and its manifest (``<engine>.json``) atomically, and returns
    the manifest (with the trtexec equivalent under "trtexec")."""
    require_tensorrt()
    import tensorrt as trt

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: ONNX file not found")
    inputs, outputs = onnx_io(onnx_path)
    shapes = profile_shapes(inputs, options.profile, str(onnx_path))
    machine = em.machine_info(options.device_index, trt.__version__)
    if machine.compute_capability is None:
        raise TensorRTUnavailable(f"no CUDA device {options.device_index} (or no NVIDIA driver) on this machine")

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network_def = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network_def, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise EngineBuildError(f"{onnx_path}: TensorRT's ONNX parser refused the network:\n{parser_errors(parser)}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.optimization_level
    if not options.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    for name, s in shapes.items():
        profile.set_shape(name, trt.Dims(s["min"]), trt.Dims(s["opt"]), trt.Dims(s["max"]))
    config.add_optimization_profile(profile)

    cache_in = b""
    if options.timing_cache is not None and options.timing_cache.is_file():
        cache_in = options.timing_cache.read_bytes()
    cache = config.create_timing_cache(cache_in)
    # A cache from another TensorRT version or GPU is ignored by TensorRT rather than trusted.
    config.set_timing_cache(cache, ignore_mismatch=False)

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network_def, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT could not build an engine (see the log above)")
    seconds = time.perf_counter() - start

    engine_path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(engine_path, memoryview(serialized))
    if options.timing_cache is not None:
        options.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(options.timing_cache, memoryview(config.get_timing_cache().serialize()))

    manifest: dict[str, Any] = {
        "schema": em.SCHEMA, "schema_version": em.SCHEMA_VERSION,
        "engine_file": engine_path.name, "engine_sha256": sha256_file(engine_path),
        "network": network, "precision": options.precision,
        "source_onnx": onnx_path.name, "source_onnx_sha256": sha256_file(onnx_path),
        "tensorrt_version": trt.__version__,
        "cuda_runtime_version": gpu_info.cuda_runtime_version(),
        "cuda_driver_version": machine.cuda_driver_version,
        "driver_version": machine.driver_version,
        "gpu": {"name": machine.gpu_name, "compute_capability": list(machine.compute_capability)},
        "inputs": [t.to_dict() for t in inputs], "outputs": [t.to_dict() for t in outputs],
        "profiles": [shapes],
        "builder": {"strongly_typed": True, "workspace_bytes": options.workspace_mib << 20,
                    "optimization_level": options.optimization_level, "tf32": options.tf32,
                    "timing_cache": str(options.timing_cache) if options.timing_cache else None,
                    "hardware_compatibility": "none", "version_compatible": False,
                    "build_seconds": round(seconds, 3)},
        "created_unix": int(time.time()),
        "trtexec": trtexec_command(onnx_path, engine_path, shapes, options),
    }
    em.validate_manifest(manifest, str(em.manifest_path(engine_path)))
    write_json(em.manifest_path(engine_path), manifest)
    return manifest


def engine_file_name(network: str, precision: str, compute_capability: tuple[int, int]) -> str:
    """`<network>.<precision>.sm<major><minor>.engine`: one file per GPU architecture, so a bundle
    copied between machines can carry engines for each."""
    return f"{network}.{precision}.sm{compute_capability[0]}{compute_capability[1]}.engine"

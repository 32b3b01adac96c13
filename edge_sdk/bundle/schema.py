"""Manifest schema version 1: constants and the builder of a manifest from a model's export parts.

docs/BUNDLE.md is the reference for every field. The builder checks what it is given and names
the field at fault; the complete check (types, ranges, files, checksums, ONNX consistency) is the
C++ validator, which :func:`edge_sdk.bundle.write_bundle` runs before a bundle is put in place.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edge_sdk._native import core as _core

SCHEMA_VERSION = 1
FORMAT = "edge-sdk-bundle"
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.safetensors"
ONNX_META_MANIFEST = "edge_sdk.manifest"
ONNX_META_SCHEMA = "edge_sdk.schema_version"
ONNX_META_NETWORK = "edge_sdk.network"
POSTPROCESS_KINDS = ("mahalanobis", "knn", "mhbc", "ssim", "mask", "classifier")
PRECISIONS = ("fp32", "fp16", "int8", "bf16")
ARRAY_DTYPES = ("float32", "float16", "int64")

#: Raised for a bundle that cannot be used (ValueError subclass; the message names the file or field).
BundleError = _core.BundleError


def _finite(value: Any, field: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise BundleError(f"{field}: expected a number, got {value!r}") from None
    if not math.isfinite(f):
        raise BundleError(f"{field}: expected a finite number, got {f}")
    return f


def _int(value: Any, field: str, lo: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < lo:
        raise BundleError(f"{field}: expected an integer >= {lo}, got {value!r}")
    return int(value)


def _group(value: Any, region: str) -> str:
    g = str(value)
    if not 1 <= len(g) <= 64:
        raise BundleError(f"regions.{region}.group: expected a name of 1 to 64 characters, got {value!r}")
    return g


def input_spec(
    preprocess: Mapping[str, Any],
    *,
    on_size_mismatch: str = "resize",
    dtypes: Iterable[str] = ("uint8", "float32"),
    value_range: Sequence[float] = (0.0, 255.0),
) -> dict:
    """The manifest's ``input`` section from an ExportParts ``preprocess`` dict
    (height, width, channels, mean, std, scale, resize="bilinear", antialias=False|True)."""
    p = dict(preprocess)
    channels = _int(p["channels"], "preprocess.channels")
    if channels not in (1, 3):
        raise BundleError(f"preprocess.channels: expected 1 or 3, got {channels}")
    mean = [_finite(v, "preprocess.mean") for v in np.atleast_1d(p["mean"])]
    std = [_finite(v, "preprocess.std") for v in np.atleast_1d(p["std"])]
    if len(mean) != channels or len(std) != channels:
        raise BundleError(f"preprocess.mean/std: need {channels} value(s) each, got {len(mean)} and {len(std)}")
    if on_size_mismatch not in ("resize", "reject"):
        raise BundleError(f"on_size_mismatch: expected 'resize' or 'reject', got {on_size_mismatch!r}")
    antialias = p.get("antialias", False)
    if not isinstance(antialias, (bool, np.bool_)):
        raise BundleError(f"preprocess.antialias: expected true or false, got {antialias!r}")
    return {
        "height": _int(p["height"], "preprocess.height"),
        "width": _int(p["width"], "preprocess.width"),
        "channels": channels,
        "color_order": "RGB" if channels == 3 else "GRAY",
        "mean": mean,
        "std": std,
        "scale": _finite(p.get("scale", 1.0 / 255.0), "preprocess.scale"),
        "value_range": [_finite(v, "value_range") for v in value_range],
        "resize": str(p.get("resize", "bilinear")),
        "antialias": bool(antialias),
        "on_size_mismatch": on_size_mismatch,
        "dtypes": list(dtypes),
    }


def network_entry(
    name: str,
    file: str,
    inputs: Sequence[tuple[str, Sequence[int], str]],
    outputs: Sequence[tuple[str, Sequence[int], str]],
    precision: str = "fp32",
) -> dict:
    """One ``networks`` entry. inputs/outputs: (tensor name, shape with -1 as batch axis, meaning)."""
    if precision not in PRECISIONS:
        raise BundleError(f"networks.precision: expected one of {PRECISIONS}, got {precision!r}")

    def tensors(items, what):
        out = []
        for tname, shape, meaning in items:
            shape = [int(d) for d in shape]
            if not shape or shape[0] != -1:
                raise BundleError(f"networks.{what} '{tname}': the first (batch) dimension must be -1, got {shape}")
            out.append({"name": str(tname), "shape": shape, "dtype": "float32", "meaning": str(meaning)})
        return out

    return {"name": name, "precision": precision, "file": file,
            "inputs": tensors(inputs, "inputs"), "outputs": tensors(outputs, "outputs")}


MAX_ACQUISITION_FRAMES = 1024  # the rank kernel's bound (kernels/rank.hpp)

def build_manifest(
    *,
    model_type: str,
    input: Mapping[str, Any],
    networks: Sequence[Mapping[str, Any]],
    arrays: Mapping[str, np.ndarray],
    postprocess: Mapping[str, Any],
    calibration: Mapping[str, Any],
    regions: Sequence[Mapping[str, Any]] | None = None,
    frame: Mapping[str, Any] | None = None,
    tiling: Mapping[str, Any] | None = None,
    review_band: float = 0.0,
    run_vote: tuple[int, int] | None = None,
    acquisition_frames: int | None = None,
    model_name: str = "",
    sdk_version: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """A schema-1 manifest without its ``files`` section (added by the writer).

    regions: optional list of dict(name, x, y, width, height, threshold) in pixels of frames of
    size ``frame`` (dict(width, height)); each region is cut out, resized to the input and judged
    with its own raw-score threshold (see edge_sdk.regions). run_vote: (k, n) of the run vote of a
    product acquired n times (decision.run; the runtime's default is 7 of 10). tiling: optional
    ``input.tiling`` dict(tile=[h, w], stride=[sy, sx], merge="mean"|"max") over frames of size
    ``frame`` (see edge_sdk.tiling); regions and tiling exclude each other. acquisition_frames: K
    of ``input.acquisition``, the frames of one acquisition, judged with their two rank-filter
    images as K + 2 images (the runtime's input policy; C ABI edge_run_acquisition)."""
    if sdk_version is None:
        sdk_version = _core.__version__
    kind = postprocess.get("kind")
    if kind not in POSTPROCESS_KINDS:
        raise BundleError(f"postprocess.kind: expected one of {POSTPROCESS_KINDS}, got {kind!r}")
    cal = {k: _finite(calibration[k], f"calibration.{k}") for k in ("threshold", "min", "max")}
    if not cal["max"] > cal["min"]:
        raise BundleError(f"calibration: expected min < max, got min={cal['min']} max={cal['max']}")
    tensors = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.name not in ARRAY_DTYPES:
            raise BundleError(f"arrays.{name}: dtype {a.dtype} not supported (use one of {ARRAY_DTYPES})")
        tensors[name] = {"dtype": a.dtype.name, "shape": [int(d) for d in a.shape]}
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sdk_version": str(sdk_version),
        "model": {"type": str(model_type), "name": str(model_name)},
        "input": dict(input),
        "networks": [dict(n) for n in networks],
        "arrays": {"file": ARRAYS_FILE, "tensors": tensors},
        "postprocess": _jsonable(postprocess, "postprocess"),
        "calibration": cal,
        "decision": {"review_band": _finite(review_band, "decision.review_band")},
    }
    if acquisition_frames is not None:
        k = _int(acquisition_frames, "input.acquisition.frames", 2)
        if k > MAX_ACQUISITION_FRAMES:
            raise BundleError(f"input.acquisition.frames: expected 2..{MAX_ACQUISITION_FRAMES}, got {k}")
        manifest["input"]["acquisition"] = {"frames": k}
    if run_vote is not None:
        k, n = (_int(v, f"decision.run.{name}", 1) for v, name in zip(run_vote, ("k", "n")))
        if not (k <= n <= 1024):
            raise BundleError(f"decision.run: expected 1 <= k <= n <= 1024, got k={k} n={n}")
        manifest["decision"]["run"] = {"k": k, "n": n}
    if regions:
        if frame is None:
            raise BundleError("frame: regions are cut from frames; give the frame size {'width', 'height'}")
        manifest["frame"] = {"width": _int(frame["width"], "frame.width"), "height": _int(frame["height"], "frame.height")}
        manifest["regions"] = [
            {
                "name": str(r["name"]),
                "x": _int(r["x"], f"regions.{r['name']}.x", 0),
                "y": _int(r["y"], f"regions.{r['name']}.y", 0),
                "width": _int(r["width"], f"regions.{r['name']}.width"),
                "height": _int(r["height"], f"regions.{r['name']}.height"),
                "threshold": _finite(r["threshold"], f"regions.{r['name']}.threshold"),
                **({"group": _group(r["group"], r["name"])} if r.get("group") is not None else {}),
            }
            for r in regions
        ]
    if tiling:
        if regions:
            raise BundleError("input.tiling: tiling and regions exclude each other (tiles are generated regions)")
        if frame is None:
            raise BundleError("frame: tiles are cut from frames; give the frame size {'width', 'height'}")
        manifest["frame"] = {"width": _int(frame["width"], "frame.width"), "height": _int(frame["height"], "frame.height")}
        merge = tiling.get("merge", "mean")
        if merge not in ("mean", "max"):
            raise BundleError(f"input.tiling.merge: expected 'mean' or 'max', got {merge!r}")
        manifest["input"]["tiling"] = {
            "tile": [_int(v, f"input.tiling.tile[{i}]") for i, v in enumerate(tiling["tile"])],
            "stride": [_int(v, f"input.tiling.stride[{i}]") for i, v in enumerate(tiling["stride"])],
            "merge": merge,
        }
    if extra:
        manifest["model"]["info"] = _jsonable(extra, "model.info")
    return manifest


def _jsonable(value: Any, field: str) -> Any:
    """Plain JSON types from dicts/lists/tuples/NumPy scalars; refuses NaN and other objects."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size <= 64:
        return [_jsonable(v, f"{field}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite(value, field)
    if value is None or isinstance(value, str):
        return value
    raise BundleError(f"{field}: {type(value).__name__} cannot be written to the manifest")


def manifest_for_onnx(manifest: Mapping[str, Any]) -> dict:
    """The manifest as embedded in each ONNX file's metadata_props: all but ``files``."""
    m = copy.deepcopy(dict(manifest))
    m.pop("files", None)
    return m

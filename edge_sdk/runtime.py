"""Inference on a bundle through the C++ runtime (``edge_sdk._core.Runtime``).

    rt = edge_sdk.Runtime("bundle/", device="cpu", threads=2)
    res = rt.predict(images)           # one image (H, W[, C]) or a batch (N, H, W[, C]) / list
    res.scores, res.normalized, res.verdicts, res.heatmaps, res.regions

The runtime preprocesses, runs the network (ONNX Runtime, loaded at run time), the
post-processing kernels and the decision in C++ with the GIL released. Verdicts are "accept",
"reject" (score >= threshold) or "review" (the image could not be judged, or its score lies in
the bundle's review band): an image that was not judged is never accepted.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge_sdk._native import core as _core
from edge_sdk.kernels._args import as_color_order

# Names by verdict code: the C ABI's edge_verdict (0 review, 1 accept, 2 reject), which the C++
# runtime uses too, so zeroed memory reads as review.
VERDICTS = tuple(_core.verdict_name(code) for code in range(3))  # index = the C ABI's verdict code
_VERDICT_NAMES = np.array(VERDICTS)


def _wheel_library(env_var: str, package: str, pattern: str) -> str:
    """env ``env_var``, else the newest file matching ``pattern`` (relative to the package folder)
    inside the installed wheel of ``package``, found without importing it (a provider plugin is not
    the library), else ""."""
    env = os.environ.get(env_var)
    if env:
        return env
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return ""
    libs = sorted(p for p in glob.glob(os.path.join(os.path.dirname(spec.origin), pattern))
                  if "providers" not in os.path.basename(p))
    return libs[-1] if libs else ""


def find_onnxruntime_library() -> str:
    """The ONNX Runtime shared library: env EDGE_SDK_ONNXRUNTIME_LIB, else the one inside the
    installed ``onnxruntime`` wheel, else "" (the C++ loader then searches beside edge_sdk and on
    the loader path)."""
    return _wheel_library("EDGE_SDK_ONNXRUNTIME_LIB", "onnxruntime", os.path.join("capi", "libonnxruntime.so*"))


def find_openvino_library() -> str:
    """OpenVINO's C API library: env EDGE_SDK_OPENVINO_LIB, else the one inside the installed
    ``openvino`` wheel (``openvino/libs/libopenvino_c.so.<version>``), else "" (the C++ loader then
    searches beside edge_sdk and on the loader path)."""
    return _wheel_library("EDGE_SDK_OPENVINO_LIB", "openvino", os.path.join("libs", "libopenvino_c.so*"))


@dataclass
class RegionResults:
    """Per-region results of frames: arrays of shape (N, R), regions in ``names`` order."""

    names: list[str]
    scores: np.ndarray
    normalized: np.ndarray
    verdicts: np.ndarray


@dataclass
class ImageResult:
    score: float
    normalized: float
    verdict: str
    heatmap: np.ndarray | None
    regions: dict[str, dict[str, Any]] | None
    error: str | None
    groups: dict[str, dict[str, Any]] | None = None
    top_class: str | None = None        # classifier bundles: name of the most probable class
    probabilities: dict[str, float] | None = None  # classifier bundles: class name -> probability


@dataclass
class Results:
    """Results of one predict call, N images.

    scores: (N,) float32 raw scores (NaN where not judged). normalized: (N,) float32 calibrated
    scores in [0, 1] (0.5 at the threshold). verdicts: (N,) str array of "accept"/"reject"/"review";
    verdict_codes: (N,) int8, the C ABI's codes (0 review, 1 accept, 2 reject; VERDICTS names
    them). heatmaps: raw anomaly maps at each image's own size, as an
    (N, H, W) float32 array when all share one size, else a list (None entries for images not
    judged); None when heatmaps are off. regions: RegionResults for bundles with regions, else
    None. groups: RegionResults of the region groups (regions[].group, e.g. the vials of a strip:
    the largest normalized score of a group's regions, its raw score, and the product rule over
    them), else None. errors: per image, why it was not judged (None when it was). times: milliseconds per
    stage of the call (preprocess, host_to_device, network, postprocess, device_to_host, decision,
    total), and maps: the part of postprocess spent resizing/blurring anomaly maps.

    Classifier bundles (postprocess kind "classifier") add class_names (K,), class_probabilities
    (N, K) float32 (NaN rows where not judged) and top_class (N,) int64 (index into class_names,
    -1 where not judged); their verdicts come from the probabilities (reject: a confident defect
    class, accept: a confident good class, review: neither) and heatmaps are the class activation
    maps of the most probable defect class, in [0, 1]. None for the other kinds.
    """

    scores: np.ndarray
    normalized: np.ndarray
    verdicts: np.ndarray
    verdict_codes: np.ndarray
    heatmaps: np.ndarray | list | None
    regions: RegionResults | None
    errors: list[str | None]
    times: dict[str, float]
    groups: RegionResults | None = None
    class_names: list[str] | None = None
    class_probabilities: np.ndarray | None = None
    top_class: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, i: int) -> ImageResult:
        heat = None
        if self.heatmaps is not None:
            heat = self.heatmaps[i]
        def per_name(rr):
            return None if rr is None else {
                name: {"score": float(rr.scores[i, k]), "normalized": float(rr.normalized[i, k]),
                       "verdict": str(rr.verdicts[i, k])} for k, name in enumerate(rr.names)}

        top, probs = None, None
        if self.class_names is not None:
            k = int(self.top_class[i])
            top = self.class_names[k] if k >= 0 else None
            probs = {name: float(p) for name, p in zip(self.class_names, self.class_probabilities[i])}
        return ImageResult(float(self.scores[i]), float(self.normalized[i]), str(self.verdicts[i]), heat,
                           per_name(self.regions), self.errors[i], per_name(self.groups), top, probs)


# A 3-D array whose last axis is this small and not 1 or 3 looks like channels (RGBA, gray +
# alpha) as much as like a batch of narrow gray images: refused rather than guessed (one RGBA
# image was once judged as 256 gray images of 256 x 4 pixels).
_AMBIGUOUS_LAST_AXIS = (2, 4, 5, 6, 7, 8)

# dtypes the C++ runtime tells apart (it refuses all but uint8 / float32 by name); any other
# (uint16, complex, object, ...) it would misname, so they are refused here with their real name
_KNOWN_KINDS = {("u", 1), ("f", 2), ("f", 4), ("f", 8), ("i", 1), ("i", 2), ("i", 4), ("i", 8), ("b", 1)}


# Results.times keys (a call where no image reached the runtime reports zeros)
_STAGES = ("preprocess", "host_to_device", "network", "postprocess", "device_to_host", "decision", "total", "maps")


def _native(a: np.ndarray) -> np.ndarray:
    """C-contiguous, in the machine's byte order (the C++ side reads raw memory: a big-endian
    float32 image read as little-endian is noise near zero, judged as a black image)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def _as_image_list(images) -> tuple[list[np.ndarray], bool]:
    """-> (list of (H, W[, C]) C-contiguous native-byte-order arrays, single). One image: (H, W)
    or (H, W, C) with C in {1, 3}; a batch: (N, H, W) gray, (N, H, W, C), or a list/tuple of
    images. A 3-D array with 2 or 4 to 8 on its last axis is refused as ambiguous (an RGBA image is
    not silently read as a batch): drop alpha (``a[..., :3]``) or pass a list. Dtypes are kept
    (see `_unreadable`); non-contiguous or byte-swapped arrays are copied."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3 and images.shape[-1] in _AMBIGUOUS_LAST_AXIS:
            raise ValueError(f"images: shape {images.shape} is ambiguous: one image with {images.shape[-1]} channels "
                             f"(only 1 or 3 are read; drop alpha with a[..., :3]) or {images.shape[0]} gray images "
                             f"{images.shape[1]} x {images.shape[2]} (pass them as a list)")
        if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3)):
            return [_native(images)], True
        if images.ndim in (3, 4):
            return [_native(a) for a in images], False
        raise ValueError(f"images: expected (H, W), (H, W, C), (N, H, W) or (N, H, W, C), got shape {images.shape}")
    if isinstance(images, (list, tuple)):
        out = []
        for i, a in enumerate(images):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"images[{i}]: expected a numpy array, got {type(a).__name__}")
            out.append(_native(a))
        return out, False
    raise TypeError(f"images: expected a numpy array or a list of arrays, got {type(images).__name__}")


def _unreadable(a: np.ndarray, i: int) -> str | None:
    """Why image ``i`` cannot even be handed to the runtime (a dtype it has no name for), else None."""
    if (a.dtype.kind, a.dtype.itemsize) not in _KNOWN_KINDS:
        return f"image {i}: dtype {a.dtype} (shape {a.shape}) is not supported (uint8 or float32)"
    return None


class Runtime:
    """A loaded, validated and warmed-up bundle.

    bundle: directory or archive. device: "cpu" or "cuda[:N]" (network on ONNX Runtime's CUDA
    provider where the installed onnxruntime has it; a clear error otherwise). threads: CPU threads
    of the kernels and the network (None: all cores, or EDGE_SDK_NUM_THREADS). precision: network
    variant of the bundle ("fp32", "fp16", "int8", or "bf16" on the openvino backend). provider: ONNX Runtime execution provider
    ("cpu", "cuda", "tensorrt"; default from device). max_batch: network batch (larger calls run
    in chunks). heatmaps: compute heatmaps (off is faster when only verdicts are needed).

    backend: "onnxruntime" (default), "openvino" (the bundle's ONNX networks compiled by OpenVINO,
    whose C API library comes from the installed ``openvino`` wheel, or ``openvino_library`` /
    EDGE_SDK_OPENVINO_LIB; device="cpu", OpenVINO's own device is ``openvino_device``: "CPU" by
    default, "GPU" / "NPU" / "AUTO" where OpenVINO finds them; float32 asked of its CPU and GPU plugins),
    "tensorrt" (serialized engines of the bundle's ``engines/``
    folder, or ``engines_dir``, built for this GPU by ``edge-sdk build-engine``; needs a build with
    TensorRT and device="cuda:N"; every chunk then runs the whole cycle on the GPU, through the same
    pipeline code as the CPU's) or "auto" (TensorRT when the build has it, the device is CUDA and a
    matching engine is there; on the CPU, ONNX Runtime or OpenVINO, whichever runs each network
    faster at load: both are timed there, a few calls each at batch 1, and ``backend`` says which was
    picked and the times; the pick is kept for that network and thread count for the rest of the
    process, so runtimes opened later run the same library; else ONNX Runtime). Missing or stale engines are built beforehand on the converter
    side (``edge_sdk.converters.engine_bundle.ensure_engines`` or ``edge-sdk build-engine``): the
    runtime only loads. cuda_graph: replay each TensorRT engine's
    work as a CUDA graph. trt_cache_dir: engine cache of ONNX Runtime's TensorRT provider
    (provider="tensorrt"; precision="fp16" gives it the fp16 ONNX file). trusted_keys: Ed25519
    public keys (PEM files or folders of them) the bundle's signature must verify against, besides
    those of EDGE_SDK_TRUSTED_KEYS; with a key configured, an unsigned or wrongly signed bundle is
    refused (``edge-sdk sign``; docs/BUNDLE.md).
    Raises BundleError (bad bundle), BackendError (ONNX Runtime / OpenVINO / TensorRT missing or failing, no
    matching engine: the message lists each candidate and what differs), ValueError (bad option),
    each naming the file, field or option.
    """

    def __init__(self, bundle: str | os.PathLike, device: str = "cpu", threads: int | None = None,
                 precision: str = "fp32", *, backend: str = "onnxruntime", provider: str | None = None,
                 onnxruntime_library: str | None = None, max_batch: int = 16, heatmaps: bool = True,
                 warmup: int = 1, engines_dir: str | os.PathLike | None = None, cuda_graph: bool = False,
                 trt_cache_dir: str | os.PathLike | None = None,
                 trusted_keys: Sequence[str | os.PathLike] | None = None,
                 openvino_library: str | None = None, openvino_device: str | None = None):
        if threads is None:
            threads = int(os.environ.get("EDGE_SDK_NUM_THREADS", "0") or 0)
        library = onnxruntime_library if onnxruntime_library is not None else find_onnxruntime_library()
        self.path = Path(bundle)
        self._rt = _core.Runtime(os.fspath(bundle), device, int(threads), precision, backend, provider or "",
                                 library, int(max_batch), bool(heatmaps), int(warmup),
                                 os.fspath(engines_dir) if engines_dir else "", bool(cuda_graph),
                                 os.fspath(trt_cache_dir) if trt_cache_dir else "",
                                 [os.fspath(k) for k in (trusted_keys or [])],
                                 openvino_library if openvino_library is not None else find_openvino_library(),
                                 openvino_device or "")
        self.manifest: dict = json.loads(self._rt.manifest)
        post = self.manifest.get("postprocess") or {}
        self.class_names: list[str] | None = (
            [str(c["name"]) for c in post["classes"]] if post.get("kind") == "classifier" else None)
        self.device, self.precision, self.heatmaps_enabled = device, precision, bool(heatmaps)

    @property
    def backend(self) -> str:
        """Which library, version and execution provider run the network."""
        return self._rt.backend

    @property
    def region_names(self) -> list[str]:
        return list(self._rt.region_names)

    @property
    def group_names(self) -> list[str]:
        """Names of the region groups (regions[].group), in result order; [] without groups."""
        return list(self._rt.group_names)

    @property
    def tiling(self):
        """The bundle's ``input.tiling`` as an `edge_sdk.tiling.Tiling` (with the frame size), or
        None. With tiling, ``region_names`` are the tiles (``tile_<row>_<col>``), ``Results.regions``
        the tile results, each heatmap the stitched frame map and each score the largest tile score."""
        t = self.manifest["input"].get("tiling")
        if not t:
            return None
        from edge_sdk.tiling import Tiling

        return Tiling.from_dict(t, self.manifest.get("frame"))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.manifest["input"]["height"], self.manifest["input"]["width"]

    def _float_convention(self, items: list[np.ndarray], value_range) -> dict[int, str]:
        """Float images against the bundle's ``input.value_range`` (uint8 is 0..255 by definition).
        With ``value_range=(lo, hi)`` the caller states the images' range and they are mapped
        linearly onto the bundle's; without it they must already lie in the bundle's range, and
        images in [0, 1] for a bundle expecting more are refused rather than guessed at (read as
        0..255 they are near black and score wrongly). Returns index -> reason for refused images;
        converts ``items`` in place."""
        b_lo, b_hi = (float(v) for v in self.manifest["input"].get("value_range", (0.0, 255.0)))
        if value_range is not None:
            try:
                lo, hi = (float(v) for v in value_range)
            except (TypeError, ValueError):
                raise ValueError(f"value_range: expected (min, max), got {value_range!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError(f"value_range: expected finite (min, max) with max > min, got {value_range!r}")
        refused = {}
        slack = 1e-3 * (b_hi - b_lo)
        for i, a in enumerate(items):
            if a.dtype.kind != "f":
                continue
            if value_range is not None:
                if (lo, hi) != (b_lo, b_hi):
                    a = ((a.astype(np.float64) - lo) * ((b_hi - b_lo) / (hi - lo)) + b_lo).astype(np.float32)
                    items[i] = np.ascontiguousarray(a)
                    continue
            finite = a[np.isfinite(a)]
            if finite.size == 0:
                continue  # all NaN / inf: the runtime judges nothing and says why
            mn, mx = float(finite.min()), float(finite.max())
            where = f"image {i}: float values in [{mn:.4g}, {mx:.4g}]"
            if mn < b_lo - slack or mx > b_hi + slack:
                refused[i] = (f"{where} are outside the bundle's input.value_range [{b_lo:g}, {b_hi:g}]; "
                              f"pass value_range=(min, max) to map them onto it")
            elif value_range is None and b_hi - b_lo > 1.0 + slack and 0.0 < mx <= 1.0 and mn >= 0.0:
                refused[i] = (f"{where} look like the 0..1 convention, but the bundle expects [{b_lo:g}, {b_hi:g}] "
                              f"(input.value_range): pass value_range=(0, 1) to convert them, or "
                              f"value_range=({b_lo:g}, {b_hi:g}) if they are dark images already in that range")
        return refused

    def predict_acquisition(self, frames, **kwargs) -> Results:
        """Judges an acquisition: its K frames (2 <= K <= 1024, alike in size, channels and dtype;
        a list or a (K, H, W[, C]) array) and the two rank-filter images made from them, the
        per-pixel lowest (what moved between frames shows here) and highest (only what is fixed
        to the part): K + 2 results, frames first, then lowest, then highest
        (`kernels.frame_extremes`, the C ABI's edge_run_acquisition). A bundle that declares its
        acquisitions (``input.acquisition.frames``, `acquisition_frames`) takes exactly that many
        frames. Keyword arguments are predict's."""
        from edge_sdk.kernels import frame_extremes

        stack = np.ascontiguousarray(np.stack([np.asarray(f) for f in frames]) if isinstance(frames, (list, tuple))
                                     else np.asarray(frames))
        want = self.acquisition_frames
        if want is not None and len(stack) != want:
            raise ValueError(f"frames: the bundle's acquisitions are {want} frames (input.acquisition.frames), "
                             f"got {len(stack)}")
        lo, hi = frame_extremes(stack[None])
        return self.predict(list(stack) + [lo[0], hi[0]], **kwargs)

    @property
    def acquisition_frames(self) -> int | None:
        """K of the bundle's ``input.acquisition`` (frames of one acquisition), or None."""
        acq = self.manifest["input"].get("acquisition")
        return None if acq is None else int(acq["frames"])

    def run_vote(self, *, max_open: int = 4096):
        """A `edge_sdk.run_vote.RunVote` with this bundle's rule (decision.run, default 7 of 10):
        feed it each acquisition's verdict under its product's id (as the C ABI's edge_run_vote)."""
        from edge_sdk.run_vote import RunVote

        return RunVote.for_manifest(self.manifest, max_open=max_open)

    def predict(self, images, *, on_error: str = "raise", value_range=None, color_order: str = "rgb") -> Results:
        """Judges one image or a batch: (H, W), (H, W, 1 or 3), (N, H, W), (N, H, W, C) or a list.
        A 3-D array with 2 or 4 to 8 on its last axis is refused as ambiguous (RGBA? a batch of
        narrow gray images?): drop alpha with ``a[..., :3]`` or pass a list. Byte-swapped arrays
        are converted to native order; dtypes the runtime has no name for (uint16, complex,
        object, ...) are unusable images, named with their dtype and shape. on_error="raise" raises
        ValueError when an image itself is unusable (dtype, channels, size the bundle refuses),
        naming it; on_error="review" returns such images as "review" with the reason in
        ``errors``. Images the runtime could not judge for other reasons (non-finite score, a
        kernel refusing the features) are always returned as "review" with the reason.

        Float images follow the bundle's ``input.value_range`` (``self.manifest["input"]``, usually
        [0, 255] like uint8). ``value_range=(min, max)`` states the range of float images and maps
        them onto the bundle's; without it, float images outside the bundle's range, or in [0, 1]
        for a bundle expecting [0, 255], are unusable images (never silently rescaled).

        color_order: channel order of 3-channel images, "rgb" (default) or "bgr" (OpenCV's
        ``cv2.imread`` / ``VideoCapture`` frames, passed as they are: the runtime reads channel
        2 - c where the RGB image has channel c, no copy, identical results). Gray images are
        unaffected."""
        if on_error not in ("raise", "review"):
            raise ValueError(f"on_error: expected 'raise' or 'review', got {on_error!r}")
        color_order = as_color_order(color_order)
        items, _ = _as_image_list(images)
        refused = {i: why for i, a in enumerate(items) if (why := _unreadable(a, i)) is not None}
        readable = [a if i not in refused else np.zeros((1, 1), np.uint8) for i, a in enumerate(items)]
        refused.update(self._float_convention(readable, value_range))
        items = [readable[i] if i not in refused else a for i, a in enumerate(items)]
        if refused and on_error == "raise":
            raise ValueError("; ".join(refused.values()))
        raw = self._predict_raw(items, refused, color_order)
        if on_error == "raise":
            bad = [e for e, inv in zip(raw["errors"], raw["invalid_input"]) if inv]
            if bad:
                raise ValueError("; ".join(bad))
        heat = None
        if self.heatmaps_enabled:
            maps = raw["heatmaps"]
            shapes = {m.shape for m in maps if m is not None}
            heat = np.stack(maps) if maps and all(m is not None for m in maps) and len(shapes) == 1 else maps
        regions = None
        if self.region_names:
            regions = RegionResults(self.region_names, raw["region_scores"], raw["region_normalized"],
                                    _VERDICT_NAMES[raw["region_verdicts"]])
        groups = None
        if self.group_names:
            groups = RegionResults(self.group_names, raw["group_scores"], raw["group_normalized"],
                                   _VERDICT_NAMES[raw["group_verdicts"]])
        codes = raw["verdicts"]
        classes = {}
        if self.class_names is not None:
            classes = dict(class_names=list(self.class_names), class_probabilities=raw["class_probabilities"],
                           top_class=raw["top_class"])
        return Results(scores=raw["scores"], normalized=raw["normalized"], verdicts=_VERDICT_NAMES[codes],
                       verdict_codes=codes, heatmaps=heat, regions=regions, errors=list(raw["errors"]),
                       times=dict(raw["times"]), groups=groups, **classes)

    def _predict_raw(self, items: list[np.ndarray], refused: dict[int, str], color_order: str) -> dict:
        """The C++ predict on the images it can read; ``refused`` ones (index -> reason) are put
        back in place as not judged ("review", NaN scores, no heatmap), as the runtime itself
        returns an image it refuses."""
        if not refused:
            return self._rt.predict(items, color_order)
        kept = [i for i in range(len(items)) if i not in refused]
        part = self._rt.predict([items[i] for i in kept], color_order) if kept else None
        review = VERDICTS.index("review")
        n, r, g = len(items), len(self.region_names), len(self.group_names)
        raw = {"scores": np.full(n, np.nan, np.float32), "normalized": np.full(n, np.nan, np.float32),
               "verdicts": np.full(n, review, np.int8), "heatmaps": [None] * n, "errors": [None] * n,
               "invalid_input": [False] * n, "region_scores": np.full((n, r), np.nan, np.float32),
               "region_normalized": np.full((n, r), np.nan, np.float32),
               "region_verdicts": np.full((n, r), review, np.int8),
               "group_scores": np.full((n, g), np.nan, np.float32),
               "group_normalized": np.full((n, g), np.nan, np.float32),
               "group_verdicts": np.full((n, g), review, np.int8),
               "class_probabilities": np.full((n, len(self.class_names or [])), np.nan, np.float32),
               "top_class": np.full(n, -1, np.int64),
               "times": part["times"] if part else dict.fromkeys(_STAGES, 0.0)}
        for i, why in refused.items():
            raw["errors"][i], raw["invalid_input"][i] = why, True
        for j, i in enumerate(kept):
            for key in ("scores", "normalized", "verdicts", "class_probabilities", "top_class"):
                raw[key][i] = part[key][j]
            for key in ("heatmaps", "errors", "invalid_input"):
                raw[key][i] = part[key][j]
            if r:
                for key in ("region_scores", "region_normalized", "region_verdicts", "group_scores",
                            "group_normalized", "group_verdicts"):
                    raw[key][i] = part[key][j]
        return raw

    def __repr__(self) -> str:
        m = self.manifest
        return (f"Runtime({str(self.path)!r}, model={m['model']['type']}, input={self.input_size}, "
                f"device={self.device!r}, precision={self.precision!r}, backend={self.backend!r})")


def available_backends() -> list[str]:
    """Network backends compiled into this build ("onnxruntime" when its headers were found,
    "openvino" unless built with EDGE_SDK_OPENVINO=OFF, "tensorrt" when TensorRT's headers and
    library were). A listed backend still needs its library at run time."""
    return list(_core.available_backends())
